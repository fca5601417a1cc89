-- EDM (Karras et al. 2022; diffuse_nnx EDMInterface). Here t is sigma.
--   transport: x_t = x + sigma n
--   denoiser:  D(x_t, sigma) = c_skip x_t + c_out F(c_in x_t, c_noise(sigma))
--   loss:      L = lambda(sigma) || D(x_t, sigma) - x ||^2, lambda = (sigma^2 + sd^2) / (sigma sd)^2
--   tangent:   dx/dsigma = (x_t - D) / sigma
-- with sd = x_sigma, the data standard deviation.
local core = require "moonflow.core"
local O = require "moonflow.ops"
local D = require "moonflow.diffusion"
local Interface = require "moonflow.interfaces.base"

local C = core
local EDM = Interface:extend("EDM")
EDM.SUPPORTED = { uniform = true, lognormal = true, logitnormal = true }
EDM.DEFAULTS = {
  train_time_dist_type = "lognormal", t_mu = 0.0, t_sigma = 1.0, n_mu = 0.0, n_sigma = 1.0, x_sigma = 0.5,
}

-- opts: network, train_time_dist_type, t_mu, t_sigma, n_mu, n_sigma, x_sigma, rngs
function EDM.new(opts)
  local self = setmetatable({}, EDM)
  return Interface.init(self, EDM, opts, EDM.DEFAULTS)
end

-- a coefficient of sigma: a number in Lua doubles, a tensor by kernel
local function coef(self, name, t, f)
  if type(t) == "number" then return f(t, self.x_sigma) end
  return D.coef(name, t, self.x_sigma)
end

-- c_in = 1 / sqrt(sd^2 + sigma^2)
function EDM:c_in(t) return coef(self, "edm_c_in", t, function(s, sd) return 1 / math.sqrt(sd * sd + s * s) end) end
-- c_out = sigma sd / sqrt(sigma^2 + sd^2)
function EDM:c_out(t) return coef(self, "edm_c_out", t, function(s, sd) return s * sd / math.sqrt(s * s + sd * sd) end) end
-- c_skip = sd^2 / (sigma^2 + sd^2)
function EDM:c_skip(t) return coef(self, "edm_c_skip", t, function(s, sd) return sd * sd / (s * s + sd * sd) end) end
-- c_noise = log(sigma) / 4
function EDM:c_noise(t) return coef(self, "edm_c_noise", t, function(s) return math.log(s) / 4 end) end
-- lambda = (sigma^2 + sd^2) / (sigma sd)^2, the loss weight
function EDM:loss_weight(t)
  return coef(self, "edm_weight", t, function(s, sd) return (s * s + sd * sd) / (s * sd) ^ 2 end)
end

-- x_t = x + sigma n   (the fused kernel)
function EDM:sample_x_t(x, n, t)
  local xt = D.edm_noise_target(x, n, t)
  return xt
end

-- target = x
function EDM:target(x, n, t) return x end

-- D(x_t, sigma) = c_skip x_t + c_out F(c_in x_t, c_noise(sigma)); returns D, F, features
function EDM:denoise(x_t, t, cond)
  local s = self:_t(t, x_t, "EDM.denoise")
  local F, features = self:call_network(Interface.scale(self:c_in(s), x_t), self:c_noise(s), Interface.cond_of(cond))
  local Dx = O.add(Interface.scale(self:c_skip(s), x_t), Interface.scale(self:c_out(s), F))
  return Dx, F, features
end

-- v = (x_t - D(x_t, sigma)) / sigma
function EDM:pred(x_t, t, cond)
  local s = self:_t(t, x_t, "EDM.pred")
  local Dx = self:denoise(x_t, s, cond)
  return O.div(O.sub(x_t, Dx), Interface.bcast_right(s, x_t))
end

-- score = (D(x_t, sigma) - x_t) / sigma^2 (Tweedie: E[x | x_t] = x_t + sigma^2 grad log p).
-- diffuse_nnx's EDM score, -(x_t - v) / sigma^2 with v the tangent above, is
-- not the score of the noised marginal; this is.
function EDM:score(x_t, t, cond)
  local s = self:_t(t, x_t, "EDM.score")
  local Dx = self:denoise(x_t, s, cond)
  return O.div(O.sub(Dx, x_t), Interface.bcast_right(O.square(s), x_t))
end

-- L = lambda(sigma) mean_flat((D(x_t, sigma) - x)^2) per sample, sigma ~ sample_t,
-- n ~ N(n_mu, n_sigma^2): x_t and target from one kernel, the weighted loss
-- from one reduction. opts.return_aux adds out (D), features.
function EDM:loss(x, cond, opts)
  local B = (x:shape())[1]
  local dt = C.dtype(x)
  local s = self:sample_t({ B }, dt)
  local n = self:sample_n(x:shape(), dt)
  local x_t, target = D.edm_noise_target(x, n, s)
  local Dx, F, features = self:denoise(x_t, s, cond)
  local res = { loss = D.wsse(Dx, target, self:loss_weight(s)) }
  if opts and opts.return_aux then
    res.out, res.features, res.t, res.n, res.x_t, res.target, res.F = Dx, features, s, n, x_t, target, F
  end
  return res
end

return EDM
