#!/usr/bin/python3
"""PyTorch peer of scripts/bench/sampler.lua: 100 Euler steps of the same
VelocityMLP (dim 2, hidden 256, depth 4) at batch 256 and 4096, under
torch.no_grad, 2 threads. A benchmark peer only, never a dependency: exits 0
when torch is missing. Standalone, or as the "sampler" section of
scripts/bench_torch.py (run(ctx))."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch_net import velocity_mlp  # noqa: E402

try:
    import torch
except Exception as e:  # noqa: BLE001
    print(f"torch not available ({e}); skipping the PyTorch sampler benchmark")
    sys.exit(0)

STEPS = 100


VelocityMLP = velocity_mlp(torch)


def euler(net, z, steps=STEPS):
    """x_{i+1} = x_i + (t_{i+1} - t_i) v(x_i, t_i) on linspace(1, 0, steps + 1)."""
    B = z.shape[0]
    grid = [1 - i / steps for i in range(steps + 1)]
    x = z
    with torch.no_grad():
        for i in range(steps):
            t = torch.full((B,), grid[i])
            x = x + (grid[i + 1] - grid[i]) * net(x, t)
    return x


def bench(now=time.perf_counter):
    torch.manual_seed(0)
    for B in (256, 4096):
        net = VelocityMLP().eval()
        z = torch.randn(B, 2)
        euler(net, z)
        reps = 5 if B <= 256 else 2
        best = float("inf")
        for _ in range(reps):
            t0 = now()
            euler(net, z)
            best = min(best, now() - t0)
        print(f"torch sampler Euler x{STEPS} B={B:<5d} {best * 1e3:8.1f} ms/sample()  {B / best:9.0f} samples/s")


def run(ctx):
    bench(ctx.now)


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("MOONFLOW_TORCH_THREADS", "2")))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads (cpu)")
    bench()
