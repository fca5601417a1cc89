-- Functional forms of the layers. linear and layer_norm run the fused
-- kernels of nn/fused.lua (each with its vjp and jvp); *_composite are the
-- same layers built from single differentiable ops, the reference the fused
-- ones are tested against.
local core = require "moonflow.core"
local O = require "moonflow.ops"
local A = require "moonflow.autograd"

local Fz = require "moonflow.nn.fused"

local F = {}

-- x as {rows, last} (a view when possible), and the leading shape
local function as2d(x)
  local xs = x:shape()
  if #xs == 2 then return x, nil end
  local rows = 1
  for i = 1, #xs - 1 do rows = rows * xs[i] end
  return O.reshape(x, { rows, xs[#xs] }), xs
end

-- y = act(x W^T + b) + r over the last dim of x (fused: matmul + one kernel)
function F.linear(x, w, b, act, r)
  local x2, xs = as2d(x)
  local r2 = r and (as2d(r)) or nil
  local y = Fz.linear(x2, w, b, r2, act)
  if xs then
    local ys = {}
    for i = 1, #xs - 1 do ys[i] = xs[i] end
    ys[#xs] = w:shape()[1]
    y = O.reshape(y, ys)
  end
  return y
end

-- y = act(LN(x) w + b + c) over the last dim (fused: one kernel per row)
function F.layer_norm(x, w, b, eps, c, act)
  local x2, xs = as2d(x)
  local c2 = c and (as2d(c)) or nil
  local y = Fz.layer_norm(x2, w, b, c2, eps or 1e-5, act)
  if xs then y = O.reshape(y, xs) end
  return y
end

local acts = { silu = O.silu, gelu = O.gelu, gelu_tanh = O.gelu_tanh, relu = O.relu, tanh = O.tanh, sigmoid = O.sigmoid }

-- The same two layers composed from single ops (the reference the fused
-- kernels are tested against).
-- y = act(x W^T + b) for x {..., in}, W {out, in}, b {out} or nil, act a name or nil
function F.linear_composite(x, w, b, act)
  local xs = x:shape()
  local n = #xs
  local x2 = x
  if n ~= 2 then
    local rows = 1
    for i = 1, n - 1 do rows = rows * xs[i] end
    x2 = O.reshape(x, { rows, xs[n] })
  end
  local y = O.matmul(x2, O.transpose(w, 1, 2))
  if b then y = O.add(y, b) end
  if act then y = acts[act](y) end
  if n ~= 2 then
    local ys = {}
    for i = 1, n - 1 do ys[i] = xs[i] end
    ys[n] = w:shape()[1]
    y = O.reshape(y, ys)
  end
  return y
end

-- y = (x - mean) / sqrt(var + eps) * w + b over the last dim (biased var)
function F.layer_norm_composite(x, w, b, eps)
  eps = eps or 1e-5
  local d = core.dim(x)
  local mu = O.mean(x, { d }, true)
  local xc = O.sub(x, mu)
  local var = O.mean(O.square(xc), { d }, true)
  local y = O.mul(xc, O.rsqrt(O.add(var, eps)))
  if w then y = O.mul(y, w) end
  if b then y = O.add(y, b) end
  return y
end

F.silu = O.silu
F.gelu = O.gelu -- gelu(x) exact, gelu(x, "tanh") the approximation
F.gelu_tanh = O.gelu_tanh
F.softmax, F.log_softmax = O.softmax, O.log_softmax
F.relu = O.relu
F.tanh = O.tanh
F.sigmoid = O.sigmoid

-- Sinusoidal features of t {B}: [cos(t f_k), sin(t f_k)], f_k = exp(-log(P) k / half)
-- for k = 0..half-1 (DiT's timestep_embedding), t scaled by `scale` first.
local freq_cache = setmetatable({}, { __mode = "v" })
function F.timestep_features(t, dim, max_period, scale, dtype)
  max_period, scale = max_period or 10000, scale or 1
  local half = dim // 2
  local key = ("%d:%g:%g:%s"):format(half, max_period, scale, dtype)
  local f = freq_cache[key]
  if not f then
    local v = {}
    for k = 0, half - 1 do v[k + 1] = scale * math.exp(-math.log(max_period) * k / half) end
    f = core.tensor({ v }, dtype) -- {1, half}
    freq_cache[key] = f
  end
  local B = t:shape()[1]
  local args = O.mul(O.reshape(t, { B, 1 }), f)
  local parts = { O.cos(args), O.sin(args) }
  if dim % 2 == 1 then parts[3] = core.full({ B, 1 }, 0, dtype) end
  return O.cat(parts, 2)
end

-- x * keep / (1 - p) with keep ~ Bernoulli(1 - p) from generator g
function F.dropout(x, p, g)
  if p <= 0 then return x end
  if p >= 1 then return O.mul(x, 0) end
  local u = g:uniform(x:shape(), { dtype = core.dtype(x) })
  local keep = core.binary("ge", u, p)
  return O.mul(x, core.binary("mul", keep, 1 / (1 - p)))
end

-- DiT's ops: patchify, unpatchify, pos_embed_2d, modulate, layer_norm_modulate
for k, v in pairs(require "moonflow.nn.patch") do
  if k ~= "pos_embed_2d_table" then F[k] = v end
end

-- softmax(q k^T scale) v as one op (nn/attention.lua)
F.attention = require("moonflow.nn.attention").attention

-- cross_entropy(logits {B, K}, labels i32 {B}) = mean_b -log_softmax(logits_b)[labels_b]
-- (composed: log_softmax, gather, mean; the gradient is (softmax - onehot) / B)
function F.cross_entropy(logits, labels)
  local fn = "moonflow.nn.F.cross_entropy"
  if not A.is_tensor(logits) or core.dim(logits) ~= 2 then
    error(("%s: logits must be a {B, K} tensor, got %s"):format(fn, A.is_tensor(logits)
      and ("shape {" .. table.concat(logits:shape(), ", ") .. "}") or type(logits)), 2)
  end
  local B = logits:shape()[1]
  if not A.is_tensor(labels) or core.dtype(labels) ~= "i32" or core.dim(labels) ~= 1 or labels:shape()[1] ~= B then
    error(("%s: labels must be an i32 {%d} tensor, got %s"):format(fn, B, A.is_tensor(labels)
      and (core.dtype(labels) .. " {" .. table.concat(labels:shape(), ", ") .. "}") or type(labels)), 2)
  end
  local picked = O.gather(O.log_softmax(logits, 2), 2, O.reshape(labels, { B, 1 }))
  return O.mul(O.mean(picked), -1)
end

F.is_tensor = A.is_tensor
return F
