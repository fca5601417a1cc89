"""moonflow's VelocityMLP in PyTorch, shared by the bench_torch_*.py peers:
  c   = t_embed(t) [+ y_embed(y)] [+ dt_embed(dt)]
  h_0 = in_proj(x) + c;  h_k = h_{k-1} + linear(silu(norm(h_{k-1}) + c))
  out = out_proj(silu(final_norm(h_depth)))
with sinusoidal features of 1000 t (256 frequencies), Linear, SiLU, Linear
as the time embedding (lua/moonflow/nn/velocity_mlp.lua)."""
import math


def velocity_mlp(torch):
    """The VelocityMLP class for this torch module (imported by the caller)."""
    nn = torch.nn
    silu = torch.nn.functional.silu

    class TimestepEmbedding(nn.Module):
        def __init__(self, hidden, freq_dim=256, scale=1000.0, max_period=10000.0):
            super().__init__()
            half = freq_dim // 2
            f = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half) * scale
            self.register_buffer("freqs", f[None, :], persistent=False)  # not a weight: checkpoints load strictly
            self.linear1 = nn.Linear(freq_dim, hidden)
            self.linear2 = nn.Linear(hidden, hidden)

        def forward(self, t):
            a = t[:, None] * self.freqs
            return self.linear2(silu(self.linear1(torch.cat([torch.cos(a), torch.sin(a)], dim=1))))

    class Block(nn.Module):
        def __init__(self, hidden):
            super().__init__()
            self.norm = nn.LayerNorm(hidden)
            self.linear = nn.Linear(hidden, hidden)

        def forward(self, h, c):
            return h + self.linear(silu(self.norm(h) + c))

    class VelocityMLP(nn.Module):
        def __init__(self, dim=2, hidden=256, depth=4, num_classes=None, use_dt=False):
            super().__init__()
            self.in_proj = nn.Linear(dim, hidden)
            self.t_embed = TimestepEmbedding(hidden)
            self.y_embed = nn.Embedding(num_classes + 1, hidden) if num_classes else None
            self.dt_embed = TimestepEmbedding(hidden) if use_dt else None
            self.blocks = nn.ModuleList([Block(hidden) for _ in range(depth)])
            self.final_norm = nn.LayerNorm(hidden)
            self.out_proj = nn.Linear(hidden, dim)

        def forward(self, x, t, y=None, dt=None):
            c = self.t_embed(t)
            if self.y_embed is not None and y is not None:
                c = c + self.y_embed(y)
            if self.dt_embed is not None and dt is not None:
                c = c + self.dt_embed(dt)
            h = self.in_proj(x) + c
            for b in self.blocks:
                h = b(h, c)
            return self.out_proj(silu(self.final_norm(h)))

    return VelocityMLP
