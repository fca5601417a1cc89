#!/usr/bin/python3
"""PyTorch peer of scripts/bench/train.lua: the same VelocityMLP (dim 2,
hidden 256, depth 4) and SiT training step with AdamW, at batch 256 and 4096.
Run through scripts/bench_torch.py (section "train": run(ctx)) or alone.
A benchmark peer only, never a dependency: exits 0 when torch is missing."""
import math
import sys
import time


def build(torch):
    nn = torch.nn
    silu = torch.nn.functional.silu

    class TimestepEmbedding(nn.Module):
        # sinusoidal features of 1000 t (256 frequencies), then Linear, SiLU, Linear
        def __init__(self, hidden, freq_dim=256, scale=1000.0, max_period=10000.0):
            super().__init__()
            half = freq_dim // 2
            f = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half) * scale
            self.register_buffer("freqs", f[None, :])
            self.linear1 = nn.Linear(freq_dim, hidden)
            self.linear2 = nn.Linear(hidden, hidden)

        def forward(self, t):
            a = t[:, None] * self.freqs
            return self.linear2(silu(self.linear1(torch.cat([torch.cos(a), torch.sin(a)], dim=1))))

    class Block(nn.Module):
        # h + linear(silu(norm(h) + c))
        def __init__(self, hidden):
            super().__init__()
            self.norm = nn.LayerNorm(hidden)
            self.linear = nn.Linear(hidden, hidden)

        def forward(self, h, c):
            return h + self.linear(silu(self.norm(h) + c))

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
            return self.out_proj(silu(self.final_norm(h)))

    return VelocityMLP


def run(ctx):
    torch = ctx.torch
    VelocityMLP = build(torch)
    torch.manual_seed(0)
    for B in (256, 4096):
        net = VelocityMLP()
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
        x = torch.randn(B, 2)

        def step():
            # x_t = (1 - t) x + t n, target n - x, loss = mean((net(x_t, t) - target)^2)
            n = torch.randn(B, 2)
            t = torch.rand(B)
            tc = t[:, None]
            xt = (1 - tc) * x + tc * n
            loss = ((net(xt, t) - (n - x)) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss

        for _ in range(3):
            step()
        reps = 40 if B <= 256 else 8
        best = ctx.per_call(step, inner=reps, reps=3)
        print("torch train B=%-5d %8.2f steps/s  %8.2f ms/step" % (B, 1 / best, best * 1e3))


class _Ctx:
    def __init__(self, torch):
        self.torch = torch

    def per_call(self, fn, inner=1, reps=5):
        fn()
        best = float("inf")
        for _ in range(reps):
            s = time.perf_counter()
            for _ in range(inner):
                fn()
            best = min(best, (time.perf_counter() - s) / inner)
        return best


if __name__ == "__main__":
    try:
        import torch
    except Exception as e:  # noqa: BLE001 - torch is optional
        print("torch not available (%s)" % e)
        sys.exit(0)
    torch.set_num_threads(2)
    print("torch %s, %d threads (cpu)" % (torch.__version__, torch.get_num_threads()))
    run(_Ctx(torch))
