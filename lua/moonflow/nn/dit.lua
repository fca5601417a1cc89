-- DiT (Peebles & Xie 2023) over images {B, C, H, W}, in moonflow's modules:
--   MultiHeadAttention{dim, num_heads, qkv_bias}: qkv Linear dim -> 3 dim
--     (applied as three products over its row blocks q, k, v), heads as
--     views, F.attention, proj Linear
--   DiTBlock{hidden_size, num_heads, mlp_ratio}: adaLN-Zero,
--     (shift, scale, gate)_{msa, mlp} = adaLN_modulation(c) (SiLU, Linear, zero init)
--     x = x + gate_msa attn(modulate(LN(x), shift_msa, scale_msa))
--     x = x + gate_mlp mlp(modulate(LN(x), shift_mlp, scale_mlp))
--     LN without affine, eps 1e-6; mlp = fc2(gelu_tanh(fc1 x))
--   DiT{...}: tokens = x_embedder.proj(patchify(x)) + pos (fixed 2-D sin-cos),
--     c = t_embedder(t) [+ dt_embedder(dt)] [+ y_embedder(y)], depth blocks,
--     final_layer (adaLN-Zero modulate, zero-initialized linear), unpatchify.
-- Parameter names are DiT's PyTorch names (blocks.0.attn.qkv.weight, ...);
-- x_embedder.proj is a Linear over patchify's (u, v, c) features, not a
-- conv weight {hidden, C, p, p}.
local core = require "moonflow.core"
local O = require "moonflow.ops"
local A = require "moonflow.autograd"
local Module = require "moonflow.nn.module"
local L = require "moonflow.nn.layers"
local F = require "moonflow.nn.functional"

local D = {}

local function posint(fn, v, what)
  if math.type(v) ~= "integer" or v < 1 then
    error(("moonflow.nn.%s: %s must be a positive integer, got %s"):format(fn, what, tostring(v)), 4)
  end
end

local function shape_str(s) return "{" .. table.concat(s, ", ") .. "}" end

local function lin_opts(opts, extra)
  local o = { rngs = opts.rngs, generator = opts.generator, dtype = opts.dtype }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

-- DiT's init of the transformer's Linear layers: W ~ U(+-sqrt(6 / (in + out))), b = 0
local function xavier(lin, opts)
  local g = L.param_gen(opts)
  local dt = opts.dtype or "f32"
  local a = math.sqrt(6 / (lin.in_features + lin.out_features))
  lin:register_parameter("weight", g:uniform({ lin.out_features, lin.in_features }, { low = -a, high = a, dtype = dt }))
  if lin.bias then lin:register_parameter("bias", core.full({ lin.out_features }, 0, dt)) end
  return lin
end

-- a Linear of the transformer: DiT's xavier init, or the Linear default
-- (PyTorch's) when opts.linear_init == "default", as the ViT encoder has it
local function linear(i, o, opts, extra)
  local lin = L.Linear(i, o, lin_opts(opts, extra))
  if opts.linear_init == "default" then return lin end
  return xavier(lin, opts)
end

---------------------------------------------------------- MultiHeadAttention
local MHA = Module:extend("MultiHeadAttention")
D.MultiHeadAttention = MHA
function MHA.new(opts)
  if type(opts) ~= "table" then error("moonflow.nn.MultiHeadAttention: expected an options table {dim, num_heads}", 2) end
  local dim, heads = opts.dim or opts[1], opts.num_heads or opts[2]
  posint("MultiHeadAttention", dim, "dim")
  posint("MultiHeadAttention", heads, "num_heads")
  if dim % heads ~= 0 then
    error(("moonflow.nn.MultiHeadAttention: dim %d is not divisible by num_heads %d"):format(dim, heads), 2)
  end
  local m = Module.create(MHA)
  m.dim, m.num_heads, m.head_dim = dim, heads, dim // heads
  m:add_module("qkv", linear(dim, 3 * dim, opts, { bias = opts.qkv_bias ~= false }))
  m:add_module("proj", linear(dim, dim, opts))
  return m
end
-- x {B, N, dim} -> {B, N, dim}
function MHA:forward(x)
  local s = x:shape()
  if #s ~= 3 or s[3] ~= self.dim then
    error(("moonflow.nn.MultiHeadAttention: x has shape %s, expected {B, N, %d}"):format(shape_str(s), self.dim), 2)
  end
  local B, N, h, d = s[1], s[2], self.num_heads, self.head_dim
  local W, b, D = self.qkv.weight, self.qkv.bias, self.dim
  -- q, k, v from the row blocks of qkv.weight: three products x W_i^T + b_i,
  -- each {B, N, dim} on its own, so that their gradients need no zero-filled
  -- {B, N, 3 dim} buffers (narrow's vjp) over the activations, only over W
  local function head(i) -- {B, N, dim} -> {B, h, N, d} (a view; attention packs it)
    local wi = O.narrow(W, 1, (i - 1) * D + 1, D)
    local y = F.linear(x, wi, b and O.narrow(b, 1, (i - 1) * D + 1, D))
    return O.permute(O.reshape(y, { B, N, h, d }), { 1, 3, 2, 4 })
  end
  local o = F.attention(head(1), head(2), head(3))
  o = O.reshape(O.contiguous(O.permute(o, { 1, 3, 2, 4 })), { B, N, self.dim })
  return self.proj(o)
end
function MHA:extra_repr() return ("dim=%d, num_heads=%d"):format(self.dim, self.num_heads) end

-------------------------------------------------------------------- DiTBlock
-- timm's Mlp: fc1, GELU (tanh), fc2 (+ r, the residual, added in fc2's kernel)
local Mlp = Module:extend("Mlp")
D.Mlp = Mlp
function Mlp.new(hidden, inner, opts)
  local m = Module.create(Mlp)
  m:add_module("fc1", linear(hidden, inner, opts))
  m:add_module("fc2", linear(inner, hidden, opts))
  return m
end
function Mlp:forward(x, r) return self.fc2(self.fc1(x, "gelu_tanh"), nil, r) end

-- SiLU then a zero-initialized Linear hidden -> k hidden, named as DiT's adaLN_modulation.1
local function ada(hidden, k, opts)
  return L.Sequential(L.SiLU(), L.Linear(hidden, k * hidden, lin_opts(opts, { zero_init = true })))
end

-- the i-th of k chunks of m {B, k H}: as {B, H} (shift, scale) and {B, 1, H} (gate)
local function chunk(m, i, H) return O.narrow(m, 2, (i - 1) * H + 1, H) end
local function gate(m3, i) return O.narrow(m3, 2, i, 1) end

local Block = Module:extend("DiTBlock")
D.DiTBlock = Block
function Block.new(opts)
  if type(opts) ~= "table" then error("moonflow.nn.DiTBlock: expected an options table {hidden_size, num_heads}", 2) end
  local H = opts.hidden_size
  posint("DiTBlock", H, "hidden_size")
  posint("DiTBlock", opts.num_heads, "num_heads")
  local ratio = opts.mlp_ratio or 4
  if type(ratio) ~= "number" or ratio <= 0 then
    error(("moonflow.nn.DiTBlock: mlp_ratio must be a positive number, got %s"):format(tostring(ratio)), 2)
  end
  local m = Module.create(Block)
  m.hidden_size, m.eps = H, 1e-6
  local ao = lin_opts(opts)
  ao.dim, ao.num_heads, ao.qkv_bias = H, opts.num_heads, true
  m:add_module("attn", MHA(ao))
  m:add_module("mlp", Mlp(H, math.floor(H * ratio), opts))
  m:add_module("adaLN_modulation", ada(H, 6, opts))
  return m
end
-- x {B, N, H}, c {B, H}
function Block:forward(x, c)
  local H = self.hidden_size
  local s = x:shape()
  local mod = self.adaLN_modulation(c)
  local m3 = O.reshape(mod, { s[1], 6, H })
  local a = self.attn(F.layer_norm_modulate(x, chunk(mod, 1, H), chunk(mod, 2, H), self.eps))
  x = O.add(x, O.mul(gate(m3, 3), a))
  local f = self.mlp(F.layer_norm_modulate(x, chunk(mod, 4, H), chunk(mod, 5, H), self.eps))
  return O.add(x, O.mul(gate(m3, 6), f))
end
function Block:extra_repr() return ("hidden_size=%d, num_heads=%d"):format(self.hidden_size, self.attn.num_heads) end

----------------------------------------------------------- DiT's embedders
local PatchEmbed = Module:extend("PatchEmbed")
D.PatchEmbed = PatchEmbed
function PatchEmbed.new(in_feat, hidden, opts)
  local m = Module.create(PatchEmbed)
  m:add_module("proj", linear(in_feat, hidden, opts))
  return m
end
function PatchEmbed:forward(tokens) return self.proj(tokens) end

-- DiT's TimestepEmbedder: mlp = Linear(freq, H), SiLU, Linear(H, H) over the
-- sinusoidal features of scale * t; weights ~ N(0, 0.02^2), biases 0 as DiT's init
local TimestepEmbedder = Module:extend("TimestepEmbedder")
function TimestepEmbedder.new(hidden, opts)
  local m = Module.create(TimestepEmbedder)
  m.hidden, m.freq_dim, m.scale = hidden, 256, opts.t_scale or 1000
  local dt = opts.dtype or "f32"
  local g = L.param_gen(opts)
  local l1, l2 = L.Linear(m.freq_dim, hidden, lin_opts(opts)), L.Linear(hidden, hidden, lin_opts(opts))
  for _, l in ipairs { l1, l2 } do
    l:register_parameter("weight", g:normal({ l.out_features, l.in_features }, { mean = 0, std = 0.02, dtype = dt }))
    l:register_parameter("bias", core.full({ l.out_features }, 0, dt))
  end
  m:add_module("mlp", L.Sequential(l1, L.SiLU(), l2))
  return m
end
function TimestepEmbedder:forward(t)
  local B = core.numel(t)
  if B > 1 and t.all_same and core.dim(t) == 1 then -- a sampler's step: embed one row
    return O.contiguous(O.expand(self:forward(O.narrow(t, 1, 1, 1)), { B, self.hidden }))
  end
  local dt = core.dtype(self.mlp[1].weight)
  if core.dtype(t) ~= dt then t = O.to(t, dt) end
  local f = F.timestep_features(t, self.freq_dim, 10000, self.scale, dt)
  return self.mlp[3](self.mlp[1](f, "silu"))
end

local LabelEmbedder = Module:extend("LabelEmbedder")
function LabelEmbedder.new(num_classes, hidden, opts)
  local m = Module.create(LabelEmbedder)
  m:add_module("embedding_table", L.Embedding(num_classes, hidden,
    { null_row = true, std = 0.02, rngs = opts.rngs, generator = opts.generator, dtype = opts.dtype }))
  return m
end
function LabelEmbedder:forward(y) return self.embedding_table(y) end

local FinalLayer = Module:extend("FinalLayer")
function FinalLayer.new(hidden, out, opts)
  local m = Module.create(FinalLayer)
  m.hidden = hidden
  m:add_module("linear", L.Linear(hidden, out, lin_opts(opts, { zero_init = true })))
  m:add_module("adaLN_modulation", ada(hidden, 2, opts))
  return m
end
function FinalLayer:forward(x, c)
  local mod = self.adaLN_modulation(c)
  return self.linear(F.layer_norm_modulate(x, chunk(mod, 1, self.hidden), chunk(mod, 2, self.hidden), 1e-6))
end

------------------------------------------------------------------------- DiT
local DiT = Module:extend("DiT")
D.DiT = DiT

function DiT.new(opts)
  if type(opts) ~= "table" then error("moonflow.nn.DiT: expected an options table {input_size, ...}", 2) end
  for _, k in ipairs { "input_size", "patch_size", "in_channels", "hidden_size", "depth", "num_heads" } do
    posint("DiT", opts[k], k)
  end
  local S, p, H = opts.input_size, opts.patch_size, opts.hidden_size
  if S % p ~= 0 then
    error(("moonflow.nn.DiT: input_size %d is not divisible by patch_size %d"):format(S, p), 2)
  end
  if H % 4 ~= 0 then error(("moonflow.nn.DiT: hidden_size must be a multiple of 4, got %d"):format(H), 2) end
  if H % opts.num_heads ~= 0 then
    error(("moonflow.nn.DiT: hidden_size %d is not divisible by num_heads %d"):format(H, opts.num_heads), 2)
  end
  if opts.num_classes ~= nil then posint("DiT", opts.num_classes, "num_classes") end
  if opts.encoder_depth ~= nil then
    posint("DiT", opts.encoder_depth, "encoder_depth")
    if opts.encoder_depth > opts.depth then
      error(("moonflow.nn.DiT: encoder_depth %d exceeds depth %d"):format(opts.encoder_depth, opts.depth), 2)
    end
  end
  local m = Module.create(DiT)
  m.input_size, m.patch_size, m.in_channels, m.out_channels = S, p, opts.in_channels, opts.in_channels
  m.hidden_size, m.depth, m.num_heads = H, opts.depth, opts.num_heads
  m.num_classes, m.use_dt, m.encoder_depth = opts.num_classes, opts.use_dt and true or false, opts.encoder_depth
  m.grid = S // p
  m.t_scale = opts.t_scale or 1000
  local eo = lin_opts(opts, { t_scale = m.t_scale })
  m:add_module("x_embedder", PatchEmbed(p * p * opts.in_channels, H, opts))
  m:add_module("t_embedder", TimestepEmbedder(H, eo))
  if m.num_classes then m:add_module("y_embedder", LabelEmbedder(m.num_classes, H, opts)) end
  if m.use_dt then m:add_module("dt_embedder", TimestepEmbedder(H, eo)) end
  local blocks = {}
  for k = 1, m.depth do
    blocks[k] = Block(lin_opts(opts, { hidden_size = H, num_heads = opts.num_heads, mlp_ratio = opts.mlp_ratio }))
  end
  m:add_module("blocks", L.ModuleList(blocks))
  m:add_module("final_layer", FinalLayer(H, p * p * m.out_channels, opts))
  m:flatten()
  -- fixed, not a parameter: {N, H}
  rawset(m, "_pos", F.pos_embed_2d(H, m.grid, m.grid, m:dtype()))
  return m
end

-- the fixed position embedding {N, hidden} in the network's dtype (a method
-- of every network with hidden_size, grid and _pos: DiT, ViT)
function D.pos_embed(self)
  local dt = self:dtype()
  if core.dtype(self._pos) ~= dt then rawset(self, "_pos", F.pos_embed_2d(self.hidden_size, self.grid, self.grid, dt)) end
  return self._pos
end
DiT.pos_embed = D.pos_embed

local function per_sample(v, B, dt, what)
  if type(v) == "number" then return core.full({ B }, v, dt) end
  if not A.is_tensor(v) then
    error(("moonflow.nn.DiT: %s must be a number or a {B} tensor, got %s"):format(what, type(v)), 3)
  end
  local s = v:shape()
  if #s == 0 then v = O.expand(O.reshape(v, { 1 }), { B })
  elseif not (#s == 1 and s[1] == B) then
    error(("moonflow.nn.DiT: %s has shape %s, expected {%d}"):format(what, shape_str(s), B), 3)
  end
  if core.dtype(v) ~= dt then v = O.to(v, dt) end
  return v
end

-- net(x {B, C, H, W}, t, cond {y, dt}) -> out {B, C, H, W}, features (tokens {B, N, hidden} after each block)
function DiT:forward(x, t, cond)
  if not A.is_tensor(x) then error(("moonflow.nn.DiT: x must be a tensor, got %s"):format(type(x)), 2) end
  local xs = x:shape()
  local S, C = self.input_size, self.in_channels
  if #xs ~= 4 or xs[2] ~= C or xs[3] ~= S or xs[4] ~= S then
    error(("moonflow.nn.DiT: x has shape %s, expected {B, %d, %d, %d}"):format(shape_str(xs), C, S, S), 2)
  end
  local B = xs[1]
  local dt = self:dtype()
  if core.dtype(x) ~= dt then x = O.to(x, dt) end
  local h = O.add(self.x_embedder(F.patchify(x, self.patch_size)), self:pos_embed())
  local c = self.t_embedder(per_sample(t, B, dt, "t"))
  cond = cond or {}
  if self.use_dt then
    c = O.add(c, self.dt_embedder(per_sample(cond.dt == nil and 0 or cond.dt, B, dt, "cond.dt")))
  end
  if self.num_classes then
    local y = cond.y
    if y == nil then y = core.full({ B }, self.num_classes, "i32")
    elseif type(y) == "number" then y = core.full({ B }, y, "i32") end
    local ys = A.is_tensor(y) and y:shape() or {}
    if not A.is_tensor(y) or core.dtype(y) ~= "i32" or #ys ~= 1 or ys[1] ~= B then
      error(("moonflow.nn.DiT: cond.y must be an i32 {%d} tensor of labels, got %s"):format(
        B, A.is_tensor(y) and (core.dtype(y) .. " " .. shape_str(ys)) or type(y)), 2)
    end
    c = O.add(c, self.y_embedder(y))
  elseif cond.y ~= nil then
    error("moonflow.nn.DiT: cond.y given but the network was built without num_classes", 2)
  end
  local features = {}
  for k = 1, self.depth do
    h = self.blocks[k](h, c)
    features[k] = h
  end
  local out = self.final_layer(h, c)
  return F.unpatchify(out, self.patch_size, self.out_channels, S, S), features
end

function DiT:extra_repr()
  return ("input_size=%d, patch_size=%d, in_channels=%d, hidden_size=%d, depth=%d, num_heads=%d%s%s"):format(
    self.input_size, self.patch_size, self.in_channels, self.hidden_size, self.depth, self.num_heads,
    self.num_classes and (", num_classes=" .. self.num_classes) or "", self.use_dt and ", use_dt" or "")
end

return D
