#!/usr/bin/python3
"""PyTorch peer of scripts/bench/train.lua: the same VelocityMLP (dim 2,
hidden 256, depth 4) and SiT training step with AdamW, at batch 256 and 4096.
Run through scripts/bench_torch.py (section "train": run(ctx)) or alone.
A benchmark peer only, never a dependency: exits 0 when torch is missing."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch_net import velocity_mlp  # noqa: E402


def run(ctx):
    torch = ctx.torch
    VelocityMLP = velocity_mlp(torch)
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
