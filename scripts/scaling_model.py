#!/usr/bin/env python3
"""The step-time model of docs/SCALING.md: one data-parallel step of the
fashion DiT (7,375,376 f32 parameters) on P GPUs, with the gradient exchange
staged through the host in chunks: reads back to back on a read queue, a ring
all-reduce per chunk once its read has landed, the write of each chunk on a
write queue. Prints the tables of docs/SCALING.md."""
MiB = 1 << 20
S = 4 * 7375376          # gradient bytes
B_PCIE = 25e9            # bytes/s each direction, pageable host memory, PCIe Gen5 x16
ALPHA = 5e-6             # s per ring step
LINKS = ((100, 12.5e9), (400, 50e9))


def ring(P, bw, nbytes, alpha=ALPHA):
    """ring all-reduce: reduce-scatter + all-gather"""
    return 2 * (P - 1) * alpha + 2 * (P - 1) / P * nbytes / bw


def exchange(P, bw, c, nbytes=S):
    """seconds from the first read to the last write of a chunked exchange"""
    sizes = [min(c, nbytes - i) for i in range(0, nbytes, c)]
    t, landed = 0.0, []
    for s in sizes:
        t += s / B_PCIE
        landed.append(t)
    mpi = wq = 0.0
    for s, r in zip(sizes, landed):
        mpi = max(mpi, r) + ring(P, bw, s)
        wq = max(wq, mpi) + s / B_PCIE
    return wq


def default_chunk(P):
    return 4 * MiB * ((P + 15) // 16)


for t_c, batch in ((15e-3, 128), (5.5e-3, 32)):
    print(f"per-GPU batch {batch}, T_compute {t_c * 1e3:.1f} ms")
    print("GPUs link  ring_ms exchange_ms step_ms eff  overlap_step_ms eff")
    for P in (8, 64):
        for gb, bw in LINKS:
            x = exchange(P, bw, default_chunk(P))
            # bucketed overlap: the backward (2/3 of compute) hides the exchange,
            # at least one 4 MiB bucket stays exposed
            exposed = max(x - 2 / 3 * t_c, exchange(P, bw, 4 * MiB, 4 * MiB))
            print(f"{P:4d} {gb:3d}G {ring(P, bw, S) * 1e3:7.2f} {x * 1e3:10.2f} {(t_c + x) * 1e3:8.1f} "
                  f"{t_c / (t_c + x):4.2f} {(t_c + exposed) * 1e3:10.1f} {t_c / (t_c + exposed):7.2f}")
print("exchange ms by chunk size")
for P in (8, 64):
    for gb, bw in LINKS:
        print(f"{P:3d} {gb:3d}G", " ".join(f"{c}MiB:{exchange(P, bw, c * MiB) * 1e3:.2f}" for c in (1, 2, 4, 8, 16, 32)))
print(f"bf16 gradients, 8 GPUs, 100G: {exchange(8, 12.5e9, 4 * MiB, S // 2) * 1e3:.2f} ms")
