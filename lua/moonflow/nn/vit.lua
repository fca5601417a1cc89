-- ViT (Dosovitskiy et al. 2021) as an image encoder / classifier, built from
-- the DiT's pieces (nn/dit.lua's MultiHeadAttention, Mlp, PatchEmbed and
-- F.pos_embed_2d) with timm's parameter names:
--   tokens = patch_embed.proj(patchify(x)) + pos (fixed 2-D sin-cos)
--   block:  x = x + attn(norm1(x)); x = x + mlp(norm2(x))   (pre-LN, affine,
--           eps 1e-6; mlp = fc2(gelu_tanh(fc1 x)))
--   tokens = norm(x) {B, N, hidden}; pooled = mean over the N tokens;
--   logits = head(pooled) {B, num_classes}
-- vit(x) -> logits, tokens; vit:features(x) -> pooled {B, hidden}.
local core = require "moonflow.core"
local O = require "moonflow.ops"
local A = require "moonflow.autograd"
local Module = require "moonflow.nn.module"
local L = require "moonflow.nn.layers"
local F = require "moonflow.nn.functional"
local dit = require "moonflow.nn.dit"
local MHA = dit.MultiHeadAttention

local V = {}

local function posint(v, what)
  if math.type(v) ~= "integer" or v < 1 then
    error(("moonflow.nn.ViT: %s must be a positive integer, got %s"):format(what, tostring(v)), 4)
  end
end

local function shape_str(s) return "{" .. table.concat(s, ", ") .. "}" end

local function lin(i, o, opts)
  return L.Linear(i, o, { rngs = opts.rngs, generator = opts.generator, dtype = opts.dtype })
end

-- the DiT's Mlp and PatchEmbed with the Linear default init (timm's names)
local function dit_opts(opts)
  return { rngs = opts.rngs, generator = opts.generator, dtype = opts.dtype, linear_init = "default" }
end

local Block = Module:extend("ViTBlock")
V.ViTBlock = Block
function Block.new(opts)
  local H = opts.hidden_size
  local m = Module.create(Block)
  local ln = { eps = 1e-6, dtype = opts.dtype }
  m:add_module("norm1", L.LayerNorm(H, ln))
  m:add_module("attn", MHA { dim = H, num_heads = opts.num_heads, qkv_bias = true, rngs = opts.rngs,
    generator = opts.generator, dtype = opts.dtype })
  m:add_module("norm2", L.LayerNorm(H, ln))
  m:add_module("mlp", dit.Mlp(H, math.floor(H * opts.mlp_ratio), dit_opts(opts)))
  return m
end
-- x {B, N, H}: the residual of the MLP rides in fc2's fused kernel
function Block:forward(x)
  x = O.add(x, self.attn(self.norm1(x)))
  return self.mlp(self.norm2(x), x)
end

local ViT = Module:extend("ViT")
V.ViT = ViT

-- the constructor options a checkpoint records (Encoder.save)
ViT.config_keys = { "input_size", "patch_size", "in_channels", "hidden_size", "depth", "num_heads", "mlp_ratio",
  "num_classes" }

function ViT.new(opts)
  if type(opts) ~= "table" then error("moonflow.nn.ViT: expected an options table {input_size, ...}", 2) end
  for _, k in ipairs { "input_size", "patch_size", "in_channels", "hidden_size", "depth", "num_heads", "num_classes" } do
    posint(opts[k], k)
  end
  local S, p, H = opts.input_size, opts.patch_size, opts.hidden_size
  if S % p ~= 0 then error(("moonflow.nn.ViT: input_size %d is not divisible by patch_size %d"):format(S, p), 2) end
  if H % 4 ~= 0 then error(("moonflow.nn.ViT: hidden_size must be a multiple of 4, got %d"):format(H), 2) end
  if H % opts.num_heads ~= 0 then
    error(("moonflow.nn.ViT: hidden_size %d is not divisible by num_heads %d"):format(H, opts.num_heads), 2)
  end
  local ratio = opts.mlp_ratio or 4
  if type(ratio) ~= "number" or not (ratio > 0) or math.floor(H * ratio) < 1 then
    error(("moonflow.nn.ViT: mlp_ratio must be a positive number, got %s"):format(tostring(ratio)), 2)
  end
  local m = Module.create(ViT)
  m.input_size, m.patch_size, m.in_channels, m.hidden_size = S, p, opts.in_channels, H
  m.depth, m.num_heads, m.mlp_ratio, m.num_classes = opts.depth, opts.num_heads, ratio, opts.num_classes
  m.grid = S // p
  m.num_tokens = m.grid * m.grid
  local po = { rngs = opts.rngs, generator = opts.generator, dtype = opts.dtype }
  m:add_module("patch_embed", dit.PatchEmbed(p * p * opts.in_channels, H, dit_opts(opts)))
  local blocks = {}
  for k = 1, m.depth do
    blocks[k] = Block { hidden_size = H, num_heads = opts.num_heads, mlp_ratio = ratio, rngs = opts.rngs,
      generator = opts.generator, dtype = opts.dtype }
  end
  m:add_module("blocks", L.ModuleList(blocks))
  m:add_module("norm", L.LayerNorm(H, { eps = 1e-6, dtype = opts.dtype }))
  m:add_module("head", lin(H, m.num_classes, po))
  m:flatten()
  rawset(m, "_pos", F.pos_embed_2d(H, m.grid, m.grid, m:dtype()))
  return m
end

-- the constructor options of this network (numbers only: JSON metadata)
function ViT:config()
  local c = {}
  for _, k in ipairs(ViT.config_keys) do c[k] = self[k] end
  return c
end

ViT.pos_embed = dit.pos_embed

-- x {B, C, S, S} -> tokens {B, N, hidden} after the final norm
function ViT:tokens(x)
  if not A.is_tensor(x) then error(("moonflow.nn.ViT: x must be a tensor, got %s"):format(type(x)), 3) end
  local xs = x:shape()
  local S, C = self.input_size, self.in_channels
  if #xs ~= 4 or xs[2] ~= C or xs[3] ~= S or xs[4] ~= S then
    error(("moonflow.nn.ViT: x has shape %s, expected {B, %d, %d, %d}"):format(shape_str(xs), C, S, S), 3)
  end
  local dt = self:dtype()
  if core.dtype(x) ~= dt then x = O.to(x, dt) end
  local h = O.add(self.patch_embed(F.patchify(x, self.patch_size)), self:pos_embed())
  for k = 1, self.depth do h = self.blocks[k](h) end
  return self.norm(h)
end

-- vit(x) -> logits {B, num_classes}, tokens {B, N, hidden}
function ViT:forward(x)
  local tokens = self:tokens(x)
  return self.head(O.mean(tokens, { 2 })), tokens
end

-- pooled features {B, hidden}: the mean of the final tokens (the head's input)
function ViT:features(x) return O.mean(self:tokens(x), { 2 }) end

function ViT:extra_repr()
  return ("input_size=%d, patch_size=%d, in_channels=%d, hidden_size=%d, depth=%d, num_heads=%d, num_classes=%d"):format(
    self.input_size, self.patch_size, self.in_channels, self.hidden_size, self.depth, self.num_heads, self.num_classes)
end

return V
