"""Loads a moonflow checkpoint into the PyTorch VelocityMLP a PyTorch user
would write (no export step): load_state_dict(strict=True) for the model
weights (model.<name>) and for the EMA weights (ema.<name>), then prints the
forward pass of both on the inputs of a JSON file, as JSON.

usage: python3 tests/torch_load_check.py CHECKPOINT INPUTS.json
INPUTS.json: {"dim", "hidden", "depth", "num_classes", "use_dt",
              "x": [[...]], "t": [...], "y": [...], "dt": [...]}
Needs torch only (the safetensors file is read with json and struct)."""
import json
import math
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32}


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__", None)
    data = bytearray(blob[8 + n:])
    out = {}
    for name, e in header.items():
        b, t = e["data_offsets"]
        dt = DTYPES[e["dtype"]]
        out[name] = torch.frombuffer(data[b:t], dtype=dt).reshape(e["shape"]).clone() if t > b \
            else torch.zeros(e["shape"], dtype=dt)
    return out


class TimestepEmbedding(nn.Module):
    def __init__(self, hidden, freq_dim=256, scale=1000.0, max_period=10000.0):
        super().__init__()
        half = freq_dim // 2
        # the frequencies in double, rounded once to f32, as moonflow does
        f = [scale * math.exp(-math.log(max_period) * k / half) for k in range(half)]
        self.register_buffer("freqs", torch.tensor([f], dtype=torch.float32), persistent=False)
        self.linear1 = nn.Linear(freq_dim, hidden)
        self.linear2 = nn.Linear(hidden, hidden)

    def forward(self, t):
        a = t[:, None] * self.freqs
        return self.linear2(F.silu(self.linear1(torch.cat([torch.cos(a), torch.sin(a)], dim=1))))


class Block(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.linear = nn.Linear(hidden, hidden)

    def forward(self, h, c):
        return h + self.linear(F.silu(self.norm(h) + c))


class VelocityMLP(nn.Module):
    """lua/moonflow/nn/velocity_mlp.lua; y = num_classes is the null label."""

    def __init__(self, dim, hidden, depth, num_classes=None, use_dt=False):
        super().__init__()
        self.in_proj = nn.Linear(dim, hidden)
        self.t_embed = TimestepEmbedding(hidden)
        if num_classes:
            self.y_embed = nn.Embedding(num_classes + 1, hidden)
        if use_dt:
            self.dt_embed = TimestepEmbedding(hidden)
        self.blocks = nn.ModuleList([Block(hidden) for _ in range(depth)])
        self.final_norm = nn.LayerNorm(hidden)
        self.out_proj = nn.Linear(hidden, dim)

    def forward(self, x, t, y=None, dt=None):
        c = self.t_embed(t)
        if y is not None:
            c = c + self.y_embed(y)
        if dt is not None:
            c = c + self.dt_embed(dt)
        h = self.in_proj(x) + c
        for b in self.blocks:
            h = b(h, c)
        return self.out_proj(F.silu(self.final_norm(h)))


def main():
    ckpt, inputs = sys.argv[1], sys.argv[2]
    with open(inputs) as f:
        cfg = json.load(f)
    tensors = read_safetensors(ckpt)
    x = torch.tensor(cfg["x"], dtype=torch.float32)
    t = torch.tensor(cfg["t"], dtype=torch.float32)
    y = torch.tensor(cfg["y"], dtype=torch.long) if cfg.get("y") is not None else None
    dt = torch.tensor(cfg["dt"], dtype=torch.float32) if cfg.get("dt") is not None else None
    out = {}
    for prefix in ("model", "ema"):
        net = VelocityMLP(cfg["dim"], cfg["hidden"], cfg["depth"], cfg.get("num_classes"), cfg.get("use_dt", False))
        sd = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
        net.load_state_dict(sd, strict=True)
        with torch.no_grad():
            out[prefix] = net(x, t, y, dt).tolist()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
