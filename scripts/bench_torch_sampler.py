#!/usr/bin/python3
"""PyTorch peer of scripts/bench/sampler.lua: 100 Euler steps of the same
VelocityMLP (dim 2, hidden 256, depth 4) at batch 256 and 4096, under
torch.no_grad, 2 threads. A benchmark peer only, never a dependency: exits 0
when torch is missing. Standalone, or as the "sampler" section of
scripts/bench_torch.py (run(ctx))."""
import math
import os
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except Exception as e:  # noqa: BLE001
    print(f"torch not available ({e}); skipping the PyTorch sampler benchmark")
    sys.exit(0)

STEPS = 100


class TimestepEmbedding(nn.Module):
    """Sinusoidal features of 1000 t (256 frequencies), Linear, SiLU, Linear."""

    def __init__(self, hidden, freq_dim=256, scale=1000.0, max_period=10000.0):
        super().__init__()
        half = freq_dim // 2
        f = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half) * scale
        self.register_buffer("freqs", f[None, :])
        self.linear1 = nn.Linear(freq_dim, hidden)
        self.linear2 = nn.Linear(hidden, hidden)

    def forward(self, t):
        a = t[:, None] * self.freqs
        return self.linear2(F.silu(self.linear1(torch.cat([torch.cos(a), torch.sin(a)], dim=1))))


class Block(nn.Module):
    """h + linear(silu(norm(h) + c))"""

    def __init__(self, hidden):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.linear = nn.Linear(hidden, hidden)

    def forward(self, h, c):
        return h + self.linear(F.silu(self.norm(h) + c))


class VelocityMLP(nn.Module):
    def __init__(self, dim=2, hidden=256, depth=4):
        super().__init__()
        self.in_proj = nn.Linear(dim, hidden)
        self.t_embed = TimestepEmbedding(hidden)
        self.blocks = nn.ModuleList([Block(hidden) for _ in range(depth)])
        self.final_norm = nn.LayerNorm(hidden)
        self.out_proj = nn.Linear(hidden, dim)

    def forward(self, x, t):
        c = self.t_embed(t)
        h = self.in_proj(x) + c
        for b in self.blocks:
            h = b(h, c)
        return self.out_proj(F.silu(self.final_norm(h)))


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
