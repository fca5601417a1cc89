-- VelocityMLP: a residual MLP velocity network for low-dimensional data,
-- following the network protocol net(x, t, cond) -> out, features.
--   c   = t_embed(t) [+ y_embed(y)] [+ dt_embed(dt)]        {B, H}
--   h_0 = in_proj(x) + c
--   h_k = h_{k-1} + blocks[k].linear(silu(blocks[k].norm(h_{k-1}) + c))   k = 1..depth
-- (blocks[k] is the child named k - 1: parameter names are PyTorch's,
-- blocks.0.linear.weight, ..., so a PyTorch copy of this network loads
-- moonflow's state dict with load_state_dict(strict=True))
--   out = out_proj(silu(final_norm(h_depth)))
-- features[k] = h_k. Labels y are i32 {B}, 0-based; y = num_classes is the
-- null label (classifier-free guidance), and a missing y means null.
local core = require "moonflow.core"
local O = require "moonflow.ops"
local A = require "moonflow.autograd"
local Module = require "moonflow.nn.module"
local L = require "moonflow.nn.layers"

local Block = Module:extend("VelocityBlock")
function Block.new(hidden, opts)
  local m = Module.create(Block)
  m:add_module("norm", L.LayerNorm(hidden, { dtype = opts.dtype }))
  m:add_module("linear", L.Linear(hidden, hidden, opts))
  return m
end
-- h + linear(silu(norm(h) + c)): two fused kernels and a matmul
function Block:forward(h, c)
  return self.linear(self.norm(h, c, "silu"), nil, h)
end

local VelocityMLP = Module:extend("VelocityMLP")

local function posint(v, what)
  if math.type(v) ~= "integer" or v < 1 then
    error(("moonflow.nn.VelocityMLP: %s must be a positive integer, got %s"):format(what, tostring(v)), 3)
  end
end

-- opts: dim, hidden (256), depth (4), num_classes, use_dt, rngs | generator,
-- dtype ("f32"), freq_dim (256), t_scale (1000)
function VelocityMLP.new(opts)
  if type(opts) ~= "table" then error("moonflow.nn.VelocityMLP: expected an options table {dim = ...}", 2) end
  posint(opts.dim, "dim")
  local hidden, depth = opts.hidden or 256, opts.depth or 4
  posint(hidden, "hidden")
  posint(depth, "depth")
  if opts.num_classes ~= nil then posint(opts.num_classes, "num_classes") end
  local m = Module.create(VelocityMLP)
  m.dim, m.hidden_size, m.depth = opts.dim, hidden, depth
  m.num_classes, m.use_dt = opts.num_classes, opts.use_dt and true or false
  local lo = { rngs = opts.rngs, generator = opts.generator, dtype = opts.dtype }
  local eo = { rngs = opts.rngs, generator = opts.generator, dtype = opts.dtype,
    freq_dim = opts.freq_dim, scale = opts.t_scale }
  m:add_module("in_proj", L.Linear(opts.dim, hidden, lo))
  m:add_module("t_embed", L.TimestepEmbedding(hidden, eo))
  if m.num_classes then
    m:add_module("y_embed", L.Embedding(m.num_classes, hidden,
      { null_row = true, std = 0.02, rngs = opts.rngs, generator = opts.generator, dtype = opts.dtype }))
  end
  if m.use_dt then m:add_module("dt_embed", L.TimestepEmbedding(hidden, eo)) end
  local blocks = {}
  for k = 1, depth do blocks[k] = Block(hidden, lo) end
  m:add_module("blocks", L.ModuleList(blocks))
  m:add_module("final_norm", L.LayerNorm(hidden, { dtype = opts.dtype }))
  m:add_module("out_proj", L.Linear(hidden, opts.dim,
    { rngs = opts.rngs, generator = opts.generator, dtype = opts.dtype, zero_init = opts.zero_init_out }))
  m:flatten()
  return m
end

-- a {B} tensor of the network's dtype from a number, a {} or {B} tensor
local function per_sample(v, B, dt, what)
  if type(v) == "number" then return core.full({ B }, v, dt) end
  if not A.is_tensor(v) then
    error(("moonflow.nn.VelocityMLP: %s must be a number or a {B} tensor, got %s"):format(what, type(v)), 3)
  end
  local s = v:shape()
  if #s == 0 then v = O.expand(O.reshape(v, { 1 }), { B })
  elseif not (#s == 1 and s[1] == B) then
    error(("moonflow.nn.VelocityMLP: %s has shape {%s}, expected {%d}"):format(what, table.concat(s, ", "), B), 3)
  end
  if core.dtype(v) ~= dt then v = O.to(v, dt) end
  return v
end

function VelocityMLP:forward(x, t, cond)
  if not A.is_tensor(x) then error(("moonflow.nn.VelocityMLP: x must be a tensor, got %s"):format(type(x)), 2) end
  local xs = x:shape()
  local B = xs[1]
  local feat = 1
  for i = 2, #xs do feat = feat * xs[i] end
  if #xs < 2 or feat ~= self.dim then
    error(("moonflow.nn.VelocityMLP: x has shape {%s}, expected {B, %d}"):format(table.concat(xs, ", "), self.dim), 2)
  end
  local dt = self:dtype()
  local x2 = #xs == 2 and x or O.reshape(x, { B, feat })
  if core.dtype(x2) ~= dt then x2 = O.to(x2, dt) end
  local c = self.t_embed(per_sample(t, B, dt, "t"))
  cond = cond or {}
  if self.num_classes then
    local y = cond.y
    if y == nil then y = core.full({ B }, self.num_classes, "i32")
    elseif type(y) == "number" then y = core.full({ B }, y, "i32") end
    local ys = y:shape()
    if core.dtype(y) ~= "i32" or #ys ~= 1 or ys[1] ~= B then
      error(("moonflow.nn.VelocityMLP: cond.y must be an i32 {%d} tensor of labels, got %s {%s}"):format(
        B, core.dtype(y), table.concat(ys, ", ")), 2)
    end
    c = O.add(c, self.y_embed(y))
  elseif cond.y ~= nil then
    error("moonflow.nn.VelocityMLP: cond.y given but the network was built without num_classes", 2)
  end
  if self.use_dt then
    c = O.add(c, self.dt_embed(per_sample(cond.dt == nil and 0 or cond.dt, B, dt, "cond.dt")))
  end
  local h = self.in_proj(x2, nil, c)
  local features = {}
  for k = 1, self.depth do
    h = self.blocks[k](h, c)
    features[k] = h
  end
  local out = self.out_proj(self.final_norm(h, nil, "silu"))
  if #xs ~= 2 then out = O.reshape(out, xs) end
  return out, features
end

function VelocityMLP:extra_repr()
  return ("dim=%d, hidden=%d, depth=%d%s%s"):format(self.dim, self.hidden_size, self.depth,
    self.num_classes and (", num_classes=" .. self.num_classes) or "", self.use_dt and ", use_dt" or "")
end

return VelocityMLP
