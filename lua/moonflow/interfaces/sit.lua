-- SiT: flow matching (diffuse_nnx SiTInterface).
--   transport: x_t = (1 - t) x + t n, t in [0, 1]
--   loss:      L = E || D(x_t, t) - (n - x) ||^2
--   sampling:  x = x_t - t D(x_t, t)
local core = require "moonflow.core"
local O = require "moonflow.ops"
local D = require "moonflow.diffusion"
local Interface = require "moonflow.interfaces.base"

local C = core
local SiT = Interface:extend("SiT")
SiT.SUPPORTED = { uniform = true, logitnormal = true }
SiT.DEFAULTS = {
  train_time_dist_type = "uniform", t_mu = 0.0, t_sigma = 1.0, n_mu = 0.0, n_sigma = 1.0,
  x_sigma = 0.5, t_shift_base = 4096,
}

-- opts: network, train_time_dist_type, t_mu, t_sigma, n_mu, n_sigma,
-- x_sigma, t_shift_base, rngs
function SiT.new(opts, cls)
  cls = cls or SiT
  local self = setmetatable({}, cls)
  return Interface.init(self, cls, opts, cls.DEFAULTS)
end

local function like(t, v)
  if type(t) == "number" then return v end
  return C.full(t:shape(), v, C.dtype(t))
end

-- c_in = 1
function SiT:c_in(t) return like(t, 1) end
-- c_out = 1
function SiT:c_out(t) return like(t, 1) end
-- c_skip = 0
function SiT:c_skip(t) return like(t, 0) end
-- c_noise = t
function SiT:c_noise(t) return t end

-- x_t = (1 - t) x + t n   (the fused kernel; t a {B} tensor or a number)
function SiT:sample_x_t(x, n, t)
  local xt = D.sit_noise_target(x, n, t)
  return xt
end

-- v = n - x
function SiT:target(x, n, t) return O.sub(n, x) end

-- v = D(c_in x_t, c_noise(t)) with c_in = 1, c_noise = t
function SiT:pred(x_t, t, cond)
  local out = self:call_network(x_t, self:_t(t, x_t, "SiT.pred"), Interface.cond_of(cond))
  return out
end

-- score = -(x_t + (1 - t) v) / t. From x_t = (1 - t) x + t n and v = E[n - x | x_t]:
-- E[n | x_t] = x_t + (1 - t) v, and grad log p_t(x_t) = -E[n | x_t] / t.
-- (The diffuse_nnx docstring, -x_t - (1 - t) D, drops the division by t.)
function SiT:score(x_t, t, cond)
  local tb = self:_t(t, x_t, "SiT.score")
  local v = self:pred(x_t, tb, cond)
  local one_minus = O.sub(1, tb)
  return O.neg(O.div(O.add(x_t, Interface.scale(one_minus, v)), Interface.bcast_right(tb, x_t)))
end

-- the t_shift for data x: sqrt(prod(x.shape[2..]) / t_shift_base)
function SiT:shift_of(x)
  local s, d = x:shape(), 1
  for i = 2, #s do d = d * s[i] end
  return math.sqrt(d / self.t_shift_base)
end

-- L = mean_flat((D(x_t, t) - (n - x))^2) per sample, with
--   t = t_shift(sample_t, sqrt(prod(x.shape[2..]) / t_shift_base)), n ~ N(n_mu, n_sigma^2);
-- x_t and the target come from one kernel, the loss from one reduction.
-- opts.return_aux adds out (the prediction) and features.
function SiT:loss(x, cond, opts)
  local B = (x:shape())[1]
  local dt = C.dtype(x)
  local t = Interface.t_shift(self:sample_t({ B }, dt), self:shift_of(x))
  local n = self:sample_n(x:shape(), dt)
  local x_t, target = D.sit_noise_target(x, n, t)
  local out, features = self:call_network(x_t, t, Interface.cond_of(cond))
  local res = { loss = D.wsse(out, target) }
  if opts and opts.return_aux then
    res.out, res.features, res.t, res.n, res.x_t, res.target = out, features, t, n, x_t, target
  end
  return res
end

return SiT
