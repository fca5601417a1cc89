-- Layers: Linear, Sequential, ModuleList, MLP, LayerNorm, Embedding,
-- TimestepEmbedding, activations, Dropout.
local core = require "moonflow.core"
local O = require "moonflow.ops"
local R = require "moonflow.random"
local Module = require "moonflow.nn.module"
local F = require "moonflow.nn.functional"

local L = {}

-- The generator for parameter init: opts.rngs.params, opts.generator, or the default.
local function param_gen(opts)
  if opts and opts.generator then return opts.generator end
  if opts and opts.rngs then return opts.rngs.params end
  return R.default
end
L.param_gen = param_gen

local function check_int(v, what, fn)
  if math.type(v) ~= "integer" or v < 1 then
    error(("moonflow.nn.%s: %s must be a positive integer, got %s"):format(fn, what, tostring(v)), 3)
  end
end

--------------------------------------------------------------------- Linear
-- y = x W^T + b, W {out, in}. Init as PyTorch: W, b ~ U(-1/sqrt(in), 1/sqrt(in));
-- opts.zero_init zeroes both; opts.bias = false drops b.
local Linear = Module:extend("Linear")
L.Linear = Linear
function Linear.new(in_features, out_features, opts)
  opts = opts or {}
  check_int(in_features, "in_features", "Linear")
  check_int(out_features, "out_features", "Linear")
  local m = Module.create(Linear)
  m.in_features, m.out_features = in_features, out_features
  local dt = opts.dtype or "f32"
  local k = 1 / math.sqrt(in_features)
  local g = param_gen(opts)
  if opts.zero_init then
    m:register_parameter("weight", core.full({ out_features, in_features }, 0, dt))
  else
    m:register_parameter("weight", g:uniform({ out_features, in_features }, { low = -k, high = k, dtype = dt }))
  end
  if opts.bias ~= false then
    if opts.zero_init then
      m:register_parameter("bias", core.full({ out_features }, 0, dt))
    else
      m:register_parameter("bias", g:uniform({ out_features }, { low = -k, high = k, dtype = dt }))
    end
  end
  return m
end
-- lin(x [, act [, r]]) = act(x W^T + b) + r, fused into one kernel after the matmul
function Linear:forward(x, act, r)
  local s = x:shape()
  if s[#s] ~= self.in_features then
    error(("moonflow.nn.Linear: input has %d features (shape {%s}), expected %d"):format(
      s[#s] or 0, table.concat(s, ", "), self.in_features), 2)
  end
  return F.linear(x, self.weight, self.bias, act, r)
end
function Linear:extra_repr()
  return ("%d, %d%s"):format(self.in_features, self.out_features, self.bias and "" or ", bias=false")
end

---------------------------------------------------------------- activations
local function activation(name, fn)
  local cls = Module:extend(name)
  cls.new = function() return Module.create(cls) end
  cls.forward = function(_, x) return fn(x) end
  L[name] = cls
  return cls
end
activation("SiLU", O.silu)
activation("GELU", O.gelu)
activation("ReLU", O.relu)
activation("Tanh", O.tanh)
activation("Sigmoid", O.sigmoid)
activation("Identity", function(x) return x end)

local act_by_name = { silu = "SiLU", gelu = "GELU", relu = "ReLU", tanh = "Tanh", sigmoid = "Sigmoid", identity = "Identity" }
-- an activation module from a name ("silu") or a module
function L.activation(a)
  if a == nil then return L.SiLU() end
  if Module.is_module(a) then return a end
  local cls = act_by_name[tostring(a):lower()]
  if not cls then error(("moonflow.nn: unknown activation %s"):format(tostring(a)), 3) end
  return L[cls]()
end

-------------------------------------------------------------------- Dropout
-- y = x keep / (1 - p) in training, x in eval; opts.rngs.dropout or opts.generator
local Dropout = Module:extend("Dropout")
L.Dropout = Dropout
function Dropout.new(p, opts)
  p = p or 0.5
  if type(p) ~= "number" or p < 0 or p > 1 then
    error(("moonflow.nn.Dropout: p must be in [0, 1], got %s"):format(tostring(p)), 2)
  end
  local m = Module.create(Dropout)
  m.p = p
  m.generator = opts and (opts.generator or (opts.rngs and opts.rngs.dropout)) or nil
  return m
end
function Dropout:forward(x)
  if not self.training or self.p == 0 then return x end
  return F.dropout(x, self.p, self.generator or R.default)
end
function Dropout:extra_repr() return ("p=%g"):format(self.p) end

----------------------------------------------------------------- Sequential
-- Children named "0", "1", ... as PyTorch's (so state_dict names match a
-- PyTorch copy); m[i] and m:at(i) are the i-th child, 1-based as Lua's
-- lists. forward feeds each output to the next.
local Sequential = Module:extend("Sequential")
L.Sequential = Sequential
function Sequential.new(...)
  local first = ...
  local list = (type(first) == "table" and not Module.is_module(first)) and first or { ... }
  local m = Module.create(Sequential)
  for i, c in ipairs(list) do m:add_module(tostring(i - 1), c) end
  return m
end
function Sequential:__len() return #self._children end
function Sequential:at(i) return self._children[i] and self[self._children[i]] end
function Sequential:append(c) return self:add_module(tostring(#self._children), c) end
function Sequential:forward(x, ...)
  for _, c in ipairs(self._children) do x = self[c](x, ...) end
  return x
end
Sequential.__len = Sequential.__len

-- A list of modules (no forward), named "0", "1", ...; m:at(i) or m[i] is the i-th
local ModuleList = Module:extend("ModuleList")
L.ModuleList = ModuleList
function ModuleList.new(list)
  local m = Module.create(ModuleList)
  for i, c in ipairs(list or {}) do m:add_module(tostring(i - 1), c) end
  return m
end
ModuleList.at = Sequential.at
-- m[2] is the second child, named "1" (the class methods are also copied
-- raw, so code that inspects the metatable without indexing still finds them)
local function int_index(cls)
  for k, v in pairs(Module) do
    if type(v) == "function" and rawget(cls, k) == nil and k:sub(1, 2) ~= "__" then cls[k] = v end
  end
  cls.__index = function(t, k)
    if type(k) == "number" then return t.at(t, k) end
    return cls[k]
  end
end
int_index(Sequential)
int_index(ModuleList)
ModuleList.append = Sequential.append
ModuleList.__len = Sequential.__len

------------------------------------------------------------------------ MLP
-- MLP{sizes = {in, h1, ..., out}, act = "silu", zero_init_last}: Linear layers
-- with the activation between them (none after the last).
local MLP = Module:extend("MLP")
L.MLP = MLP
function MLP.new(opts)
  if type(opts) ~= "table" or type(opts.sizes) ~= "table" or #opts.sizes < 2 then
    error("moonflow.nn.MLP: expected {sizes = {in, ..., out}}", 2)
  end
  local m = Module.create(MLP)
  m.sizes = opts.sizes
  m.act_name = opts.act or "silu"
  local layers = {}
  local n = #opts.sizes - 1
  for i = 1, n do
    local lo = { rngs = opts.rngs, generator = opts.generator, dtype = opts.dtype,
      zero_init = (i == n and opts.zero_init_last) or nil }
    layers[#layers + 1] = Linear(opts.sizes[i], opts.sizes[i + 1], lo)
    if i < n then layers[#layers + 1] = L.activation(m.act_name) end
  end
  m:add_module("layers", Sequential(layers))
  return m
end
function MLP:forward(x) return self.layers(x) end

------------------------------------------------------------------ LayerNorm
-- y = (x - mean) / sqrt(var + eps) * weight + bias over the last dim
local LayerNorm = Module:extend("LayerNorm")
L.LayerNorm = LayerNorm
function LayerNorm.new(dim, opts)
  opts = opts or {}
  check_int(dim, "dim", "LayerNorm")
  local m = Module.create(LayerNorm)
  m.dim, m.eps = dim, opts.eps or 1e-5
  m.affine = opts.elementwise_affine ~= false
  if m.affine then
    local dt = opts.dtype or "f32"
    m:register_parameter("weight", core.full({ dim }, 1, dt))
    m:register_parameter("bias", core.full({ dim }, 0, dt))
  end
  return m
end
-- ln(x [, c [, act]]) = act(LN(x) w + b + c), one fused kernel
function LayerNorm:forward(x, c, act)
  local s = x:shape()
  if s[#s] ~= self.dim then
    error(("moonflow.nn.LayerNorm: input's last dim is %d (shape {%s}), expected %d"):format(
      s[#s] or 0, table.concat(s, ", "), self.dim), 2)
  end
  return F.layer_norm(x, self.weight, self.bias, self.eps, c, act)
end
function LayerNorm:extra_repr() return ("%d, eps=%g"):format(self.dim, self.eps) end

------------------------------------------------------------------ Embedding
-- Rows of weight {num, dim} ~ N(0, std^2) (std 1 as PyTorch; DiT uses 0.02).
-- opts.null_row adds one extra row (index num) for the guidance null label.
local Embedding = Module:extend("Embedding")
L.Embedding = Embedding
function Embedding.new(num, dim, opts)
  opts = opts or {}
  check_int(num, "num_embeddings", "Embedding")
  check_int(dim, "dim", "Embedding")
  local m = Module.create(Embedding)
  m.num_embeddings = num + (opts.null_row and 1 or 0)
  m.dim = dim
  m:register_parameter("weight", param_gen(opts):normal({ m.num_embeddings, dim },
    { mean = 0, std = opts.std or 1, dtype = opts.dtype or "f32" }))
  return m
end
-- idx: i32 {B} of 0-based rows
function Embedding:forward(idx)
  if not F.is_tensor(idx) or core.dtype(idx) ~= "i32" or core.dim(idx) ~= 1 then
    error(("moonflow.nn.Embedding: indices must be a 1-D i32 tensor, got %s"):format(
      F.is_tensor(idx) and (core.dtype(idx) .. " {" .. table.concat(idx:shape(), ", ") .. "}") or type(idx)), 2)
  end
  return O.index_select(self.weight, 1, idx)
end
function Embedding:extra_repr() return ("%d, %d"):format(self.num_embeddings, self.dim) end

---------------------------------------------------------- TimestepEmbedding
-- DiT's timestep embedder: sinusoidal features of (scale * t) with
-- freq_dim frequencies, then Linear(freq_dim, hidden), SiLU, Linear(hidden, hidden).
-- opts: freq_dim (256), max_period (10000), scale (1000: t in [0, 1] spans
-- the frequencies as DiT's t in [0, 1000] does).
local TimestepEmbedding = Module:extend("TimestepEmbedding")
L.TimestepEmbedding = TimestepEmbedding
function TimestepEmbedding.new(hidden, opts)
  opts = opts or {}
  check_int(hidden, "hidden", "TimestepEmbedding")
  local m = Module.create(TimestepEmbedding)
  m.hidden = hidden
  m.freq_dim = opts.freq_dim or 256
  m.max_period = opts.max_period or 10000
  m.scale = opts.scale or 1000
  local lo = { rngs = opts.rngs, generator = opts.generator, dtype = opts.dtype }
  m:add_module("linear1", Linear(m.freq_dim, hidden, lo))
  m:add_module("linear2", Linear(hidden, hidden, lo))
  return m
end
-- t: {B} tensor (or a number with opts B)
function TimestepEmbedding:forward(t)
  -- t.all_same marks a {B} tensor whose rows hold one time (a sampler's step,
  -- lua/moonflow/samplers): embed one row and expand it, a third of the
  -- sampler's matrix products saved
  local B = core.numel(t)
  if B > 1 and t.all_same and core.dim(t) == 1 then
    return O.contiguous(O.expand(self:forward(O.narrow(t, 1, 1, 1)), { B, self.hidden }))
  end
  local dt = core.dtype(self.linear1.weight)
  if core.dtype(t) ~= dt then t = O.to(t, dt) end
  local f = F.timestep_features(t, self.freq_dim, self.max_period, self.scale, dt)
  return self.linear2(self.linear1(f, "silu"))
end
function TimestepEmbedding:extra_repr() return ("%d, freq_dim=%d"):format(self.hidden, self.freq_dim) end

return L
