-- Euler-Maruyama on the reverse-time SDE that keeps the model's marginals:
--   dx = [v(x, t) - w(t)/2 score(x, t)] dt + sqrt(w(t)) dW   (t decreasing)
--   x_next = x + h d + sqrt(w(t_curr) |h|) z,  d = v - w/2 score,  h = t_next - t_curr,
-- one fused kernel per step (drift, guidance and the Philox noise); the last
-- step is noise-free. Diffusion coefficients w(t), scaled by diffusion_coeff_norm (c):
--   constant  c                 linear  c t
--   linear_kl c (t^2/(1-t) + t) (infinite at t = 1: start below 1)
--   cos       (c cos(pi t) + 1)^2 / 4      concave (c sin(pi t) + 1)^2 / 4
-- or any Lua function of t (a number) returning w(t) >= 0.
local core = require "moonflow.core"
local Base = require "moonflow.samplers.base"

local both, tvec = Base.both, Base.tvec

local coeffs = {
  constant = function(c) return function(t) return c end end,
  linear_kl = function(c) return function(t) return c * (t * t / (1 - t) + t) end end,
  linear = function(c) return function(t) return c * t end end,
  cos = function(c) return function(t) return 0.25 * (c * math.cos(math.pi * t) + 1) ^ 2 end end,
  concave = function(c) return function(t) return 0.25 * (c * math.sin(math.pi * t) + 1) ^ 2 end end,
}

local EM = Base:extend("EulerMaruyama", { diffusion_coeff = true, diffusion_coeff_norm = true })
EM.coeffs = coeffs

function EM:init(o)
  local norm = o.diffusion_coeff_norm or 1.0
  if not Base.is_num(norm) then self:fail(nil, "diffusion_coeff_norm must be a finite number, got %s", tostring(norm)) end
  -- default "linear": diffuse_nnx defaults to linear_kl, which is infinite at its own t_start = 1
  local c = o.diffusion_coeff or "linear"
  if type(c) == "function" or (getmetatable(c) or {}).__call then
    self.diffusion_coeff_fn = c
  elseif type(c) == "string" and coeffs[c:lower()] then
    self.diffusion_coeff_fn = coeffs[c:lower()](norm)
  else
    self:fail(nil, "diffusion_coeff must be constant, linear_kl, linear, cos, concave or a function, got %s", tostring(c))
  end
  self.diffusion_coeff = c
  self.diffusion_coeff_norm = norm
end

function EM:w(t, method)
  local w = self.diffusion_coeff_fn(t)
  if not Base.is_num(w) or w < 0 then
    self:fail(method, "diffusion coefficient %s is %s at t = %.17g; it must be finite and >= 0%s",
      type(self.diffusion_coeff) == "string" and self.diffusion_coeff or "function",
      type(w) == "number" and ("%.17g"):format(w) or tostring(w), t,
      self.diffusion_coeff == "linear_kl" and " (linear_kl: start below t = 1, e.g. t_start = 0.99)" or "")
  end
  return w
end

local function step(self, rng, net, x, t_curr, t_next, opts, noise)
  local st = self:prepare(net, x, opts)
  local w = self:w(t_curr, noise and "forward" or "last_step")
  local g = noise and self:generator(rng, "forward") or nil
  local h = t_next - t_curr
  local tc = tvec(t_curr, x)
  local vc, vu = both(st, function(m, cond) return m:pred(x, tc, cond) end)
  local sc, su = both(st, function(m, cond) return m:score(x, tc, cond) end)
  local nz = noise and math.sqrt(w * math.abs(h)) or 0
  local out, off = core.sampler_em(x, vc, sc, vu, su, h, w / 2, st.scale, nz, g and g.seed or 0, g and g.offset or 0)
  if g then g.offset = off end
  if st.want_denoised then return out, core.sampler_step(x, vc, vu, -t_curr, st.scale) end
  return out
end

function EM:forward(rng, net, x, t_curr, t_next, opts) return step(self, rng, net, x, t_curr, t_next, opts, true) end
function EM:last_step(rng, net, x, t_curr, t_next, opts) return step(self, rng, net, x, t_curr, t_next, opts, false) end

return EM
