-- Interface: the base of every diffusion / flow-matching interface
-- (diffuse_nnx interfaces.continuous.Interfaces). An interface wraps a
-- network net(x, t, cond) -> out, features and defines the preconditioning
-- (c_in, c_out, c_skip, c_noise), the transport path (sample_x_t, target),
-- time and noise sampling, the ODE tangent (pred), the score and the loss.
-- Random streams: rngs.time for t, rngs.noise for n.
local core = require "moonflow.core"
local A = require "moonflow.autograd"
local O = require "moonflow.ops"
local D = require "moonflow.diffusion"
local R = require "moonflow.random"

local C = core
local is_tensor = A.is_tensor

local Interface = {}
Interface.__index = Interface
Interface.__name = "Interface"
Interface.SUPPORTED = { uniform = true, lognormal = true, logitnormal = true }

-- A subclass: local SiT = Interface:extend("SiT"); SiT{...} calls SiT.new{...}
function Interface:extend(name)
  local cls = setmetatable({}, { __index = self, __call = function(c, ...) return c.new(...) end })
  cls.__index = cls
  cls.__name = name
  cls.__tostring = self.__tostring -- metamethods are read raw
  cls.super = self
  return cls
end
setmetatable(Interface, { __call = function(c, ...) return c.new(...) end })

-- "log_normal", "LogNormal", "logit-normal" -> "lognormal", "logitnormal"
function Interface.normalize_dist(name)
  if type(name) ~= "string" then return nil end
  return (name:lower():gsub("[_%-%s]", ""))
end

-- an option of the default's type (a number, or a boolean switch)
local function num_opt(opts, k, default, cls)
  local v = opts[k]
  if v == nil then return default end
  local want = type(default) == "boolean" and "boolean" or "number"
  if type(v) ~= want then
    error(("moonflow.interfaces.%s: %s must be a %s, got %s"):format(cls.__name, k, want, type(v)), 4)
  end
  return v
end
Interface.num_opt = num_opt

-- Fills the options common to every interface (the seeds' keyword arguments).
function Interface.init(self, cls, opts, defaults)
  if type(opts) ~= "table" then
    error(("moonflow.interfaces.%s: expected an options table {network = ...}, got %s"):format(cls.__name, type(opts)), 3)
  end
  local net = opts.network
  if net == nil or (type(net) ~= "table" and type(net) ~= "function" and type(net) ~= "userdata") then
    error(("moonflow.interfaces.%s: network must be a callable net(x, t, cond), got %s"):format(cls.__name, type(net)), 3)
  end
  for k in pairs(opts) do
    if k ~= "network" and k ~= "rngs" and defaults[k] == nil then
      local names = {}
      for d in pairs(defaults) do names[#names + 1] = d end
      table.sort(names)
      error(("moonflow.interfaces.%s: unknown option %s (options: network, rngs, %s)"):format(
        cls.__name, tostring(k), table.concat(names, ", ")), 3)
    end
  end
  self.network = net
  local dist = opts.train_time_dist_type or defaults.train_time_dist_type
  local key = Interface.normalize_dist(dist)
  if not key or not cls.SUPPORTED[key] then
    local names = {}
    for k in pairs(cls.SUPPORTED) do names[#names + 1] = k end
    table.sort(names)
    error(("moonflow.interfaces.%s: train_time_dist_type %s is not supported (use %s)"):format(
      cls.__name, tostring(dist), table.concat(names, ", ")), 3)
  end
  self.train_time_dist_type = key
  for k, v in pairs(defaults) do
    if k ~= "train_time_dist_type" then self[k] = num_opt(opts, k, v, cls) end
  end
  local rngs = opts.rngs
  if rngs == nil then rngs = R.Rngs(0) end
  self.rngs = rngs
  return self
end

------------------------------------------------------------------ statics
-- mean over every dim but the first: {B, ...} -> {B}
function Interface.mean_flat(x)
  local n = C.dim(x)
  if n <= 1 then return x end
  local dims = {}
  for i = 2, n do dims[#dims + 1] = i end
  return O.mean(x, dims)
end

-- x reshaped with trailing 1s to y's rank: {B} -> {B, 1, ..., 1}
function Interface.bcast_right(x, y)
  if type(x) == "number" then return x end
  local xs, yn = x:shape(), C.dim(y)
  if #xs > yn then
    error(("moonflow.interfaces.bcast_right: x has %d dims {%s}, more than y's %d"):format(
      #xs, table.concat(xs, ", "), yn), 2)
  end
  if #xs == yn then return x end
  for i = #xs + 1, yn do xs[i] = 1 end
  return O.reshape(x, xs)
end

-- shift t / (1 + (shift - 1) t)
function Interface.t_shift(t, shift)
  if type(t) == "number" then return shift * t / (1 + (shift - 1) * t) end
  return D.coef("t_shift", t, shift)
end

----------------------------------------------------------------- helpers
-- t as a {B} tensor in x's dtype (a number, a {}, {1} or {B} tensor)
function Interface:_t(t, x, fn)
  local B = (x:shape())[1] or 1
  local dt = C.dtype(x)
  if type(t) == "number" then return C.full({ B }, t, dt) end
  if not is_tensor(t) then
    error(("moonflow.interfaces.%s: t must be a number or a {B} tensor, got %s"):format(fn or self.__name, type(t)), 3)
  end
  local n = C.numel(t)
  if n == 1 and B ~= 1 then t = O.expand(O.reshape(t, { 1 }), { B })
  elseif n ~= B then
    error(("moonflow.interfaces.%s: t has shape {%s} for a batch of %d"):format(
      fn or self.__name, table.concat(t:shape(), ", "), B), 3)
  elseif C.dim(t) ~= 1 then t = O.reshape(t, { B }) end
  if C.dtype(t) ~= dt then t = O.to(t, dt) end
  return t
end

-- {B} coefficient times x: c broadcast over the trailing dims
function Interface.scale(c, x)
  if type(c) == "number" then return c == 1 and x or O.mul(x, c) end
  return O.mul(Interface.bcast_right(c, x), x)
end

-- cond: nil, a table {y = , dt = , ...}, or a label tensor (taken as y)
function Interface.cond_of(cond)
  if cond == nil then return {} end
  if is_tensor(cond) then return { y = cond } end
  if type(cond) ~= "table" then
    error(("moonflow.interfaces: cond must be a table {y = ..., dt = ...} or a label tensor, got %s"):format(type(cond)), 3)
  end
  return cond
end

-- a copy of cond with fields replaced (false removes a field)
function Interface.with(cond, fields)
  local c = {}
  for k, v in pairs(cond or {}) do c[k] = v end
  for k, v in pairs(fields) do
    if v == false then c[k] = nil else c[k] = v end
  end
  return c
end

------------------------------------------------------------------ sampling
-- t ~ the training time distribution, shape `shape` (a table or B):
--   uniform: U(0, 1); lognormal: exp(N(t_mu, t_sigma^2)); logitnormal: sigmoid(N(t_mu, t_sigma^2))
function Interface:sample_t(shape, dtype)
  if type(shape) == "number" then shape = { shape } end
  local g = self.rngs.time
  local k = self.train_time_dist_type
  if k == "uniform" then return g:uniform(shape, { dtype = dtype }) end
  local z = g:normal(shape, { mean = self.t_mu, std = self.t_sigma, dtype = dtype })
  if k == "lognormal" then return O.exp(z) end
  return O.sigmoid(z)
end

-- n ~ N(n_mu, n_sigma^2)
function Interface:sample_n(shape, dtype)
  if type(shape) == "number" then shape = { shape } end
  return self.rngs.noise:normal(shape, { mean = self.n_mu, std = self.n_sigma, dtype = dtype })
end

-- the network call: out, features = network(x, t, cond)
function Interface:call_network(x, t, cond)
  return self.network(x, t, cond)
end

for _, m in ipairs { "c_in", "c_out", "c_skip", "c_noise", "sample_x_t", "target", "pred", "score", "loss" } do
  Interface[m] = function(self)
    error(("moonflow.interfaces.%s: %s is not defined"):format(self.__name or "Interface", m), 2)
  end
end

function Interface:__tostring()
  return ("%s(train_time_dist_type=%s)"):format(self.__name, self.train_time_dist_type)
end

return Interface
