#!/usr/bin/python3
"""PyTorch peer of scripts/bench.lua: the same figures, printed the same way,
for comparison. Never a dependency: without torch it says so and exits 0.

    /usr/bin/python3 scripts/bench_torch.py [SECTION...]

Sections: "tensor" lives here; any other name loads
scripts/bench_torch_<section>.py and calls its run(ctx) (ctx as below), so
the train, diffusion and sampler benchmarks can add their peers in files of
their own. With no arguments every section that exists runs, in the order
of scripts/bench.lua. Threads: torch.set_num_threads(2) unless
MOONFLOW_TORCH_THREADS says otherwise.
"""
import importlib.util
import os
import subprocess
import sys
import time

SECTIONS = ["tensor", "train", "diffusion", "sampler", "dit"]
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


class Ctx:
    """What every section gets: torch, the build folder, timers, helpers."""

    def __init__(self, torch):
        self.torch = torch
        self.root = ROOT
        self.build = os.environ.get("MOONFLOW_BUILD", os.path.join(ROOT, "build"))
        self.now = time.perf_counter

    def per_call(self, fn, inner=1, reps=5):
        """Best seconds per call of fn over `reps` batches of `inner` calls."""
        fn()
        best = float("inf")
        for _ in range(reps):
            s = self.now()
            for _ in range(inner):
                fn()
            best = min(best, (self.now() - s) / inner)
        return best

    def time(self, fn, reps=5):
        """Best wall time of one fn() (the Lua runner's ctx.time)."""
        return self.per_call(fn, 1, reps)

    def triad(self, runs=3):
        """STREAM triad GB/s of build/bin/stream_triad, best of `runs`, or None."""
        exe = os.path.join(self.build, "bin", "stream_triad")
        best = None
        for _ in range(runs):
            try:
                out = subprocess.run([exe, str(1 << 24), "20"], capture_output=True, text=True, timeout=60)
                v = float(out.stdout.split()[0])
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                return best
            best = v if best is None else max(best, v)
        return best

    @staticmethod
    def ratio(v, limit):
        return "%5.2f" % (v / limit) if limit else "  n/a"


# ---------------------------------------------------------------- tensor
SIZES = [16, 18, 20, 22, 24]
GEMM = [256, 512, 1024, 2048]
COLS = 1024


def bench_tensor(ctx):
    torch = ctx.torch
    inner_for = lambda nbytes: max(1, int(128e6 // nbytes))
    triad0 = ctx.triad()

    ew = {}
    for p in SIZES:
        n = 1 << p
        rows = n // COLS
        x, z = torch.rand(rows, COLS), torch.randn(rows, COLS)
        t = torch.rand(rows, 1)
        out = torch.empty(rows, COLS)
        # lerp(x, z, t) = x + t (z - x) = (1 - t) x + t z: one fused kernel
        fn = lambda: torch.lerp(x, z, t, out=out)
        nbytes = 12 * n + 4 * rows
        ew[p] = nbytes / ctx.per_call(fn, inner_for(nbytes)) / 1e9

    red = {}
    for p in SIZES:
        n = 1 << p
        x = torch.rand(n)
        red[p] = 4 * n / ctx.per_call(lambda: x.sum(), inner_for(4 * n)) / 1e9

    gemm = {}
    for n in GEMM:
        a, b, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
        flops = 2 * n ** 3
        gemm[n] = flops / ctx.per_call(lambda: torch.mm(a, b, out=c), max(1, int(2e9 // flops)), 3) / 1e9

    s, q = torch.rand(16), torch.rand(16)
    N = 10000
    per = float("inf")
    for _ in range(3):
        t0 = ctx.now()
        for _ in range(N):
            s.add_(q)
        per = min(per, (ctx.now() - t0) / N)

    triad1 = ctx.triad()
    limits = [v for v in (triad0, triad1) if v]
    limit = max(limits) if limits else None

    print("machine limits: STREAM triad %s GB/s (host memory, OpenMP, best of 6 runs)"
          % ("%.1f" % limit if limit else "n/a (stream_triad not built)"))
    print("torch %s, %d threads, eager CPU tensors" % (torch.__version__, torch.get_num_threads()))
    print("\nfused elementwise (1 - t) x + t n, t per row, {rows, %d} f32 (one kernel: torch.lerp, out=)" % COLS)
    print("  elements        GB/s   / triad")
    for p in SIZES:
        print("  2^%-2d %9d %7.1f   %s" % (p, 1 << p, ew[p], ctx.ratio(ew[p], limit)))
    print("\nreduction sum over all elements, f32 (torch.sum)")
    print("  elements        GB/s   / triad")
    for p in SIZES:
        print("  2^%-2d %9d %7.1f   %s" % (p, 1 << p, red[p], ctx.ratio(red[p], limit)))
    print("\nsgemm n x n x n, f32 (torch.mm, out=)")
    print("     n     GFLOP/s")
    for n in GEMM:
        print("  %4d %11.1f" % (n, gemm[n]))
    print("\nlaunch overhead: %.2f us per op (%d in-place adds of 16 elements; eager torch runs each at once)"
          % (per * 1e6, N))


BUILTIN = {"tensor": bench_tensor}


def load_section(name):
    """run(ctx) of scripts/bench_torch_<name>.py, or None when there is none."""
    path = os.path.join(HERE, "bench_torch_%s.py" % name)
    if not os.path.exists(path):
        return None
    spec = importlib.util.spec_from_file_location("bench_torch_" + name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.run


def main(argv):
    try:
        import torch
    except Exception:  # any import failure: torch is optional
        print("torch not available")
        return 0
    torch.set_num_threads(int(os.environ.get("MOONFLOW_TORCH_THREADS", "2")))
    ctx = Ctx(torch)
    want = argv or SECTIONS
    print("device: torch CPU, %d threads" % torch.get_num_threads())
    for name in want:
        fn = BUILTIN.get(name) or load_section(name)
        if fn is None:
            if argv:
                print("bench_torch: no section %s (scripts/bench_torch_%s.py)" % (name, name), file=sys.stderr)
                return 1
            continue
        print("\n== %s ==" % name)
        fn(ctx)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
