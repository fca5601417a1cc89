-- An image encoder of our own (a trained nn.ViT) and the metrics in its
-- features:
--   Encoder.save(path, vit[, metadata]) / Encoder.load(path): a safetensors
--     file of the ViT's state dict with metadata format = "moonflow.encoder/1"
--     and config = the ViT's constructor options as JSON text;
--   enc:logits(x), enc:features(x) {B, F} pooled, enc:tokens(x) {B, N, F},
--     evaluated in batches without gradients;
--   fid_fashion(samples, opts): the Frechet distance of the samples'
--     features to a Fashion-MNIST split's, with the floor (test vs train at
--     the same count) beside it;
--   class_accuracy(samples, labels, encoder): the fraction whose largest
--     logit is at the label.
local core = require "moonflow.core"
local A = require "moonflow.autograd"
local J = require "moonflow.json"
local FR = require "moonflow.metrics.frechet"

local M = {}

local Encoder = {}
Encoder.__index = Encoder
Encoder.__name = "moonflow.metrics.Encoder"
Encoder.format = "moonflow.encoder/1"
M.Encoder = Encoder

local function shape_str(s) return "{" .. table.concat(s, ", ") .. "}" end

local function vit_class() return require("moonflow.nn.vit").ViT end

local function is_vit(v)
  return type(v) == "table" and getmetatable(v) == vit_class()
end

-- Encoder.new(vit[, {batch_size = 500}]): an encoder over an in-memory ViT
function Encoder.new(vit, opts)
  if not is_vit(vit) then
    error(("moonflow.metrics.Encoder.new: expected an nn.ViT, got %s"):format(
      type(vit) == "table" and tostring(vit.__name) or type(vit)), 2)
  end
  vit:eval()
  return setmetatable({ vit = vit, config = vit:config(), hidden_size = vit.hidden_size,
    num_tokens = vit.num_tokens, num_classes = vit.num_classes, input_shape = { vit.in_channels, vit.input_size,
    vit.input_size }, batch_size = opts and opts.batch_size or 500, _moments = {} }, Encoder)
end

-- Encoder.save(path, vit[, metadata]): metadata entries (strings, numbers,
-- booleans; tables as JSON text) ride beside format and config
function Encoder.save(path, vit, metadata)
  if type(path) ~= "string" then error("moonflow.metrics.Encoder.save: path must be a string", 2) end
  if not is_vit(vit) then error("moonflow.metrics.Encoder.save: expected an nn.ViT", 2) end
  local meta = {}
  for k, v in pairs(metadata or {}) do
    if k == "format" or k == "config" then
      error(("moonflow.metrics.Encoder.save: metadata key %s is reserved"):format(k), 2)
    end
    meta[k] = type(v) == "table" and J.encode(v) or v
  end
  meta.format = Encoder.format
  meta.config = J.encode(vit:config())
  return require("moonflow.io").save_safetensors(path, vit:state_dict(), meta)
end

-- the ViT options in a config table, checked (positive integers; mlp_ratio a positive number)
local function check_config(c, bad)
  if type(c) ~= "table" then bad("config is not a JSON object") end
  local out = {}
  for _, k in ipairs(vit_class().config_keys) do
    local v = c[k]
    if k == "mlp_ratio" then
      if type(v) ~= "number" or not (v > 0 and v <= 64) then bad("config.mlp_ratio is %s, expected a positive number", tostring(v)) end
    elseif math.type(v) ~= "integer" or v < 1 or v > 1 << 16 then
      bad("config.%s is %s, expected a positive integer", k, tostring(v))
    end
    out[k] = v
  end
  for k in pairs(c) do
    if out[k] == nil then bad("config has an unknown key %s", tostring(k)) end
  end
  return out
end

-- Encoder.load(path[, {batch_size}]) -> encoder. Everything is checked
-- (format, config, every tensor's name and shape) before an encoder exists;
-- a failed load changes nothing (the ViT's init draws from a private generator).
function Encoder.load(path, opts)
  if type(path) ~= "string" then error("moonflow.metrics.Encoder.load: path must be a string", 2) end
  local function bad(fmt, ...) error(("moonflow.metrics.Encoder.load: %s: " .. fmt):format(path, ...), 0) end
  local ok, tensors, meta = pcall(require("moonflow.io").load_safetensors, path)
  if not ok then error(("moonflow.metrics.Encoder.load: %s"):format(tostring(tensors)), 0) end
  meta = meta or {}
  if meta.format ~= Encoder.format then
    bad("not a moonflow encoder (metadata format is %s, expected %s)", tostring(meta.format), Encoder.format)
  end
  local okj, c = pcall(J.decode, meta.config or "")
  if not okj then bad("metadata config is not JSON: %s", tostring(c)) end
  local cfg = check_config(c, bad)
  local dt
  for _, t in pairs(tensors) do dt = dt or core.dtype(t) end
  cfg.dtype = dt == "f64" and "f64" or "f32"
  cfg.generator = require("moonflow.random").Generator(0)
  local okv, vit = pcall(vit_class(), cfg)
  if not okv then bad("%s", tostring(vit)) end
  local okl, err = pcall(vit.load_state_dict, vit, tensors)
  if not okl then bad("%s", tostring(err)) end
  local enc = Encoder.new(vit, opts)
  enc.path = path
  enc.metadata = meta
  return enc
end

-- x {B, C, S, S} through fn in batches of batch_size, results joined on dim 1
function Encoder:_batched(what, x, fn)
  if not A.is_tensor(x) then
    error(("moonflow.metrics.Encoder:%s: x must be a tensor of images, got %s"):format(what, type(x)), 3)
  end
  local s, want = x:shape(), self.input_shape
  if #s ~= 4 or s[2] ~= want[1] or s[3] ~= want[2] or s[4] ~= want[3] or s[1] < 1 then
    error(("moonflow.metrics.Encoder:%s: x has shape %s, expected {B, %d, %d, %d}"):format(what, shape_str(s),
      want[1], want[2], want[3]), 3)
  end
  return A.no_grad(function()
    local B, bs = s[1], self.batch_size
    if B <= bs then return fn(x) end
    local parts = {}
    for i = 1, B, bs do parts[#parts + 1] = fn(x:narrow(1, i, math.min(bs, B - i + 1))) end
    return core.cat(parts, 1)
  end)
end

function Encoder:logits(x) return self:_batched("logits", x, function(b) return (self.vit(b)) end) end
function Encoder:features(x) return self:_batched("features", x, function(b) return self.vit:features(b) end) end
function Encoder:tokens(x) return self:_batched("tokens", x, function(b) return self.vit:tokens(b) end) end

function Encoder:__tostring()
  return ("moonflow.metrics.Encoder(%s, hidden_size=%d, num_tokens=%d, num_classes=%d)"):format(
    self.path or "in memory", self.hidden_size, self.num_tokens, self.num_classes)
end

-- the moments of the first k features of a Fashion-MNIST split, cached in the encoder
function Encoder:_split_moments(split, k, path)
  local key = ("%s:%d:%s"):format(split, k, path or "")
  local m = self._moments[key]
  if not m then
    local src = require("moonflow.data").fashion_mnist { split = split, path = path,
      generator = require("moonflow.random").Generator(0) }
    local x = src:all()
    if k > src.n then k = src.n end
    local mu, cov = FR.moments(self:features(x:narrow(1, 1, k)))
    m = { mu, cov, k }
    self._moments[key] = m
  end
  return m[1], m[2], m[3]
end

local function encoder_of(fn, e)
  if type(e) == "string" then return Encoder.load(e) end
  if getmetatable(e) == Encoder then return e end
  if is_vit(e) then return Encoder.new(e) end
  error(("moonflow.metrics.%s: encoder must be an Encoder, an nn.ViT or a path, got %s"):format(fn, type(e)), 3)
end

-- fid_fashion(samples {M, 1, 28, 28}, {encoder = enc | vit | path,
--   reference_split = "test", n = 10000, path = Fashion-MNIST folder})
-- -> {fd, floor, n}: with k = min(M, n, split size), fd = FD(features of
-- samples[1..k], features of the reference split's first k images) and
-- floor = FD(the reference's k, the other split's first k): what a perfect
-- model scores at this count. The split moments are cached in the encoder.
function M.fid_fashion(samples, opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("moonflow.metrics.fid_fashion: options must be a table", 2) end
  local enc = encoder_of("fid_fashion", opts.encoder)
  local ref = opts.reference_split or "test"
  if ref ~= "test" and ref ~= "train" then
    error(("moonflow.metrics.fid_fashion: reference_split must be \"test\" or \"train\", got %s"):format(tostring(ref)), 2)
  end
  if not A.is_tensor(samples) or core.dim(samples) ~= 4 then
    error(("moonflow.metrics.fid_fashion: samples must be images {M, 1, 28, 28}, got %s"):format(
      A.is_tensor(samples) and shape_str(samples:shape()) or type(samples)), 2)
  end
  local n = opts.n or 10000
  if math.type(n) ~= "integer" or n < 2 then
    error(("moonflow.metrics.fid_fashion: n must be an integer >= 2, got %s"):format(tostring(n)), 2)
  end
  local k = math.min(samples:shape()[1], n)
  if k < 2 then error("moonflow.metrics.fid_fashion: at least 2 samples are needed", 2) end
  local other = ref == "test" and "train" or "test"
  local mu_r, cov_r, kr = enc:_split_moments(ref, k, opts.path)
  k = kr
  local mu_o, cov_o = enc:_split_moments(other, k, opts.path)
  local mu_s, cov_s = FR.moments(enc:features(samples:narrow(1, 1, k)))
  local fd = FR.frechet_from_moments(mu_s, cov_s, mu_r, cov_r)
  local floor = FR.frechet_from_moments(mu_r, cov_r, mu_o, cov_o)
  return { fd = fd, floor = floor, n = k }
end

-- class_accuracy(samples {B, C, S, S}, labels (i32 {B} or a table), encoder)
-- -> the fraction of rows whose label's logit is the row's largest (one
-- number read back; a tie at the maximum counts as a hit)
function M.class_accuracy(samples, labels, encoder)
  local enc = encoder_of("class_accuracy", encoder)
  if type(labels) == "table" and not A.is_tensor(labels) then labels = core.tensor(labels, "i32") end
  if not A.is_tensor(samples) then error("moonflow.metrics.class_accuracy: samples must be a tensor of images", 2) end
  local B = samples:shape()[1]
  if not A.is_tensor(labels) or core.dtype(labels) ~= "i32" or core.dim(labels) ~= 1 or labels:shape()[1] ~= B then
    error(("moonflow.metrics.class_accuracy: labels must be i32 {%d}, got %s"):format(B, A.is_tensor(labels)
      and (core.dtype(labels) .. " " .. shape_str(labels:shape())) or type(labels)), 2)
  end
  local logits = enc:logits(samples)
  return A.no_grad(function()
    local top = logits:max(2, true)
    local at = logits:gather(2, labels:reshape({ B, 1 }))
    return core.binary("ge", at, top):to("f32"):mean():item()
  end)
end

return M
