#!/usr/bin/env python3
"""PyTorch peer of scripts/bench/diffusion.lua (moonflow bench diffusion).

Same network (moonflow's VelocityMLP: dim 2, hidden 256, depth 4, 10
classes, a dt embedding), same batches, same steps:
  SiT:      x_t = (1 - t) x + t n, loss = mean_flat((net(x_t, t) - (n - x))^2), backward
  MeanFlow: (t, r) with 75% r = t, half the labels dropped to the null class,
            (u, du/dt) = jvp(net, (x_t, t), (v, 1)), target = v - clip(t - r) du/dt,
            loss = sum((u - sg(target))^2) / sg(sum + 1e-3), backward
and the noising/loss expressions' bandwidth for reference. Prints steps/s.
Exits 0 with a message when torch (or functorch) cannot be imported.
"""
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch_net import velocity_mlp  # noqa: E402

try:
    import torch
    try:
        from torch.func import jvp  # torch >= 2.0
    except ImportError:
        from functorch import jvp  # torch 1.13
except Exception as e:  # noqa: BLE001
    print(f"bench_torch_diffusion: PyTorch not available ({e}); nothing to compare")
    sys.exit(0)

torch.set_num_threads(int(os.environ.get("MOONFLOW_TORCH_THREADS", "2")))
H, DEPTH, CLASSES = 256, 4, 10


_VelocityMLP = velocity_mlp(torch)


def VelocityMLP():
    """The benchmark's network: 10 classes and a dt embedding."""
    return _VelocityMLP(dim=2, hidden=H, depth=DEPTH, num_classes=CLASSES, use_dt=True)


def sit_step(net, x, y):
    B = x.shape[0]
    t, n = torch.rand(B), torch.randn_like(x)
    tc = t[:, None]
    x_t, target = (1 - tc) * x + tc * n, n - x
    out = net(x_t, t, y, torch.zeros(B))
    loss = ((out - target) ** 2).mean(dim=1)
    net.zero_grad(set_to_none=False)
    loss.mean().backward()


def meanflow_step(net, x, y):
    B = x.shape[0]
    a, b = torch.rand(B), torch.rand(B)
    t, r = torch.maximum(a, b), torch.minimum(a, b)
    k = int(B * 0.75)
    r = torch.cat([t[:k], r[k:]])
    n = torch.randn_like(x)
    tc = t[:, None]
    x_t, v = (1 - tc) * x + tc * n, n - x
    m = int((torch.rand(B) < 0.5).sum())
    y = torch.cat([torch.full((m,), CLASSES, dtype=y.dtype), y[m:]])

    def u_fn(z, tt):
        return net(z, tt, y, tt - r)

    u, dudt = jvp(u_fn, (x_t, t), (v, torch.ones(B)))
    target = (v - (t - r).clamp(0, 1)[:, None] * dudt).detach()
    sse = ((u - target) ** 2).sum(dim=1)
    loss = sse / (sse.detach() + 1e-3)
    net.zero_grad(set_to_none=False)
    loss.mean().backward()


def steps_per_second(fn, *args):
    for _ in range(2):
        fn(*args)
    reps, t0 = 0, time.perf_counter()
    while True:
        fn(*args)
        reps += 1
        if time.perf_counter() - t0 > 3 and reps >= 3:
            break
    return reps / (time.perf_counter() - t0)


def bandwidth():
    print(f"{'shape':14s} {'expression':22s} {'GB/s':>9s}")
    for B, D in [(256, 4096), (1024, 12288), (4096, 4096), (65536, 2), (1000, 3071)]:
        x, n, t, w = torch.randn(B, D), torch.randn(B, D), torch.rand(B), torch.rand(B)
        tc = t[:, None]
        cases = [
            ("noise+target", 16 * B * D, lambda: ((1 - tc) * x + tc * n, n - x)),
            ("x_t only", 12 * B * D, lambda: (1 - tc) * x + tc * n),
            ("weighted loss", 8 * B * D, lambda: w * ((x - n) ** 2).mean(dim=1)),
        ]
        for name, nbytes, fn in cases:
            best = math.inf
            for _ in range(5):
                s = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - s)
            print(f"{'{%d, %d}' % (B, D):14s} {name:22s} {nbytes / best / 1e9:9.2f}")


def main():
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    bandwidth()
    print(f"\nloss + backward, VelocityMLP dim 2 hidden {H} depth {DEPTH}, {CLASSES} classes, dt embedding")
    torch.manual_seed(0)
    for B in (256, 1024):
        for name, fn in (("SiT", sit_step), ("MeanFlow", meanflow_step)):
            net = VelocityMLP()
            x, y = torch.randn(B, 2), torch.randint(0, CLASSES, (B,))
            sps = steps_per_second(fn, net, x, y)
            print(f"{name:8s} B={B:<5d} {sps:8.2f} steps/s  {1e3 / sps:8.1f} ms/step")


def run(ctx):
    """The diffusion section of scripts/bench_torch.py."""
    main()


if __name__ == "__main__":
    main()
