#!/usr/bin/python3
"""PyTorch peer of scripts/bench/dit.lua: the DiT of Peebles & Xie (2023) in
plain torch, same architecture and parameter count as moonflow's
mf.nn.DiT{input_size = 28, patch_size = 4, in_channels = 1, hidden_size = 256,
depth = 6, num_heads = 4, mlp_ratio = 4, num_classes = 10}: stride-p conv patch
embedding, fixed 2-D sin-cos position embedding, timestep embedder MLP over
256 sinusoidal features (t scaled by 1000), label embedder with a null class,
adaLN-Zero blocks (LayerNorm without affine, eps 1e-6, GELU tanh), final
layer; use_dt adds a second timestep embedder for t - r (MeanFlow).

Figures (median wall time of several reps after warm-up, eager, 2 threads):
  sit64 / sit256  SiT step: loss, backward, AdamW step
  mf64            MeanFlow step: jvp through the DiT (functorch.jvp, forward
                  mode), loss, backward, AdamW step
  euler256        50 Euler steps under no_grad
  attn            attention on {64, 4, 256, 64}: softmax(q k^T s) v composed
                  of matmul, softmax, matmul (torch 1.13 has no fused
                  scaled_dot_product_attention); GFLOP/s with 4 B h N^2 d
                  forward and 12 B h N^2 d forward+backward flops
  sgemm           F.linear without bias (x W^T) at the DiT's shapes

Run as the "dit" section of scripts/bench_torch.py (run(ctx)), alone, or with
--kv [SUBSET] (as scripts/bench/dit.lua calls it): "kv KEY VALUE" lines.
A benchmark peer only, never a dependency: exits 0 when torch is missing.
"""
import math
import os
import statistics
import sys
import time

CFG = dict(input_size=28, patch_size=4, in_channels=1, hidden_size=256, depth=6, num_heads=4,
           mlp_ratio=4, num_classes=10)
GEMMS = [("qkv", 3136, 768, 256), ("attn proj", 3136, 256, 256), ("mlp fc1", 3136, 1024, 256),
         ("mlp fc2", 3136, 256, 1024), ("adaLN", 64, 1536, 256)]
FIGS = ["sit64", "sit256", "mf64", "euler256", "attn", "sgemm"]


def build(torch):
    nn, F = torch.nn, torch.nn.functional

    def modulate(x, shift, scale):
        return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)

    def sincos_2d(dim, grid):
        """MAE's 2-D sin-cos: half the channels embed the row, half the column."""
        def one(d, pos):
            omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2.0))
            out = pos.reshape(-1)[:, None] * omega[None]
            return torch.cat([torch.sin(out), torch.cos(out)], dim=1)
        gh, gw = torch.meshgrid(torch.arange(grid, dtype=torch.float64),
                                torch.arange(grid, dtype=torch.float64), indexing="ij")
        return torch.cat([one(dim // 2, gw), one(dim // 2, gh)], dim=1).float()

    class TimestepEmbedder(nn.Module):
        def __init__(self, hidden, freq=256):
            super().__init__()
            self.freq = freq
            self.mlp = nn.Sequential(nn.Linear(freq, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

        def forward(self, t):
            half = self.freq // 2
            f = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
            a = (1000 * t)[:, None].float() * f[None]
            return self.mlp(torch.cat([torch.cos(a), torch.sin(a)], dim=-1))

    class Attention(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.h, self.d = heads, dim // heads
            self.qkv = nn.Linear(dim, 3 * dim)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):
            B, N, C = x.shape
            qkv = self.qkv(x).reshape(B, N, 3, self.h, self.d).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            o = attention(q, k, v)
            return self.proj(o.transpose(1, 2).reshape(B, N, C))

    class Block(nn.Module):
        def __init__(self, hidden, heads, ratio):
            super().__init__()
            self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
            self.attn = Attention(hidden, heads)
            self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
            inner = int(hidden * ratio)
            self.fc1, self.fc2 = nn.Linear(hidden, inner), nn.Linear(inner, hidden)
            self.ada = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden))

        def forward(self, x, c):
            sm, cm, gm, sf, cf, gf = self.ada(c).chunk(6, dim=1)
            x = x + gm.unsqueeze(1) * self.attn(modulate(self.norm1(x), sm, cm))
            h = F.gelu(self.fc1(modulate(self.norm2(x), sf, cf)), approximate="tanh")
            return x + gf.unsqueeze(1) * self.fc2(h)

    class DiT(nn.Module):
        def __init__(self, input_size, patch_size, in_channels, hidden_size, depth, num_heads, mlp_ratio,
                     num_classes, use_dt=False):
            super().__init__()
            self.p, self.C, self.S = patch_size, in_channels, input_size
            self.x_embedder = nn.Conv2d(in_channels, hidden_size, patch_size, stride=patch_size)
            self.register_buffer("pos", sincos_2d(hidden_size, input_size // patch_size)[None])
            self.t_embedder = TimestepEmbedder(hidden_size)
            self.dt_embedder = TimestepEmbedder(hidden_size) if use_dt else None
            self.y_embedder = nn.Embedding(num_classes + 1, hidden_size)  # row num_classes: the null label
            self.blocks = nn.ModuleList([Block(hidden_size, num_heads, mlp_ratio) for _ in range(depth)])
            self.norm_f = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
            self.final = nn.Linear(hidden_size, patch_size * patch_size * in_channels)
            self.ada_f = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size))
            for blk in self.blocks:  # adaLN-Zero: every block the identity at init
                nn.init.zeros_(blk.ada[1].weight)
                nn.init.zeros_(blk.ada[1].bias)

        def forward(self, x, t, y, dt=None):
            B = x.shape[0]
            h = self.x_embedder(x).flatten(2).transpose(1, 2) + self.pos
            c = self.t_embedder(t) + self.y_embedder(y)
            if self.dt_embedder is not None:
                c = c + self.dt_embedder(dt)
            for blk in self.blocks:
                h = blk(h, c)
            shift, scale = self.ada_f(c).chunk(2, dim=1)
            out = self.final(modulate(self.norm_f(h), shift, scale))
            g, p, C = self.S // self.p, self.p, self.C
            out = out.reshape(B, g, g, p, p, C).permute(0, 5, 1, 3, 2, 4)
            return out.reshape(B, C, g * p, g * p)

    def attention(q, k, v):
        s = torch.matmul(q, k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
        return torch.matmul(torch.softmax(s, dim=-1), v)

    return DiT, attention


def median_time(fn, reps, warm=2, now=time.perf_counter):
    for _ in range(warm):
        fn()
    v = []
    for _ in range(reps):
        s = now()
        fn()
        v.append(now() - s)
    return statistics.median(v)


def bench(torch, subset=None, emit=print):
    from functorch import jvp
    DiT, attention = build(torch)
    want = {k: (not subset or k in subset) for k in FIGS}
    torch.manual_seed(0)
    n0 = sum(p.numel() for p in DiT(**CFG).parameters())
    n1 = sum(p.numel() for p in DiT(**CFG, use_dt=True).parameters())
    print("torch DiT params: %d (use_dt: %d)" % (n0, n1))
    res = {}

    def sit_step(net, opt, x, y):
        B = x.shape[0]
        t, n = torch.rand(B), torch.randn_like(x)
        tc = t[:, None, None, None]
        x_t, target = (1 - tc) * x + tc * n, n - x
        loss = ((net(x_t, t, y) - target) ** 2).flatten(1).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    def mf_step(net, opt, x, y):
        # (t, r) with 75% r = t, half the labels dropped to the null class,
        # (u, du/dt) = jvp(net, (x_t, t), (v, 1)), target = v - (t - r) du/dt
        B = x.shape[0]
        a, b = torch.rand(B), torch.rand(B)
        t, r = torch.maximum(a, b), torch.minimum(a, b)
        k = int(B * 0.75)
        r = torch.cat([t[:k], r[k:]])
        n = torch.randn_like(x)
        tc = t[:, None, None, None]
        x_t, v = (1 - tc) * x + tc * n, n - x
        m = int((torch.rand(B) < 0.5).sum())
        yy = torch.cat([torch.full((m,), 10, dtype=y.dtype), y[m:]])
        u, dudt = jvp(lambda z, tt: net(z, tt, yy, tt - r), (x_t, t), (v, torch.ones(B)))
        target = (v - (t - r)[:, None, None, None] * dudt).detach()
        sse = ((u - target) ** 2).flatten(1).sum(1)
        loss = (sse / (sse.detach() + 1e-3)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for key, B, fn, reps, dt in (("sit64", 64, sit_step, 5, False), ("sit256", 256, sit_step, 3, False),
                                 ("mf64", 64, mf_step, 3, True)):
        if not want[key]:
            continue
        net = DiT(**CFG, use_dt=dt)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
        x, y = torch.randn(B, 1, 28, 28), torch.randint(0, 10, (B,))
        res[key] = 1e3 * median_time(lambda: fn(net, opt, x, y), reps, warm=1)
        print("torch %-8s B=%-4d %9.1f ms/step" % (key, B, res[key]))

    if want["euler256"]:
        net = DiT(**CFG).eval()
        z, y = torch.randn(256, 1, 28, 28), torch.full((256,), 10)

        def euler(steps=50):
            x = z
            with torch.no_grad():
                for i in range(steps):
                    t0, t1 = 1 - i / steps, 1 - (i + 1) / steps
                    x = x + (t1 - t0) * net(x, torch.full((256,), t0), y)
            return x

        euler(2)  # warm-up: a 2-step run, then 3 full runs
        res["euler256"] = 1e3 * median_time(euler, 3, warm=0)
        print("torch Euler x50 B=256 %9.1f ms" % res["euler256"])

    if want["attn"]:
        B, h, N, d = 64, 4, 256, 64
        q, k, v, w = (torch.randn(B, h, N, d) for _ in range(4))
        fl = 4 * B * h * N * N * d
        tf = median_time(lambda: attention(q, k, v), 5)
        qq, kk, vv = (a.clone().requires_grad_() for a in (q, k, v))

        def fb():
            qq.grad = kk.grad = vv.grad = None
            attention(qq, kk, vv).backward(w)
        tb = median_time(fb, 5)
        res["attn_f"], res["attn_fb"] = fl / tf / 1e9, 3 * fl / tb / 1e9
        print("torch attention {64,4,256,64} fwd %7.1f GFLOP/s  fwd+bwd %7.1f GFLOP/s (composite)"
              % (res["attn_f"], res["attn_fb"]))

    if want["sgemm"]:
        F = torch.nn.functional
        for i, (name, M, Nn, K) in enumerate(GEMMS, 1):
            x, W = torch.randn(M, K), torch.randn(Nn, K)
            fl = 2 * M * Nn * K
            inner = max(1, int(2e9 // fl))
            best = float("inf")
            F.linear(x, W)
            for _ in range(5):
                s = time.perf_counter()
                for _ in range(inner):
                    F.linear(x, W)
                best = min(best, (time.perf_counter() - s) / inner)
            res["gemm_%d" % i] = fl / best / 1e9
            print("torch sgemm %-9s %4dx%4dx%4d %7.1f GFLOP/s" % (name, M, Nn, K, res["gemm_%d" % i]))
    for k, v in res.items():
        emit("kv %s %.6g" % (k, v))
    return res


def run(ctx):
    bench(ctx.torch, emit=lambda s: None)


if __name__ == "__main__":
    try:
        import torch
        import functorch  # noqa: F401 - the jvp of the MeanFlow step
    except Exception as e:  # noqa: BLE001 - torch is optional
        print("torch not available (%s); skipping the PyTorch DiT benchmark" % e)
        sys.exit(0)
    torch.set_num_threads(int(os.environ.get("MOONFLOW_TORCH_THREADS", "2")))
    args = sys.argv[1:]
    kv = "--kv" in args
    args = [a for a in args if a != "--kv"]
    subset = set(",".join(args).split(",")) - {""} if args else None
    print("torch %s, %d threads, eager CPU" % (torch.__version__, torch.get_num_threads()))
    bench(torch, subset, emit=print if kv else (lambda s: None))
