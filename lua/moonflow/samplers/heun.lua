-- Heun (second order, deterministic): an Euler predictor, then the trapezoid
--   x_next = x + h/2 (d(x, t_curr) + d(x + h d(x, t_curr), t_next)),  h = t_next - t_curr;
-- the last step is one Euler step (the model is never evaluated at t_last).
local core = require "moonflow.core"
local Base = require "moonflow.samplers.base"
local Euler = require("moonflow.samplers.euler").Euler

local both, tvec = Base.both, Base.tvec

local Heun = Base:extend("Heun")

function Heun:forward(rng, net, x, t_curr, t_next, opts)
  local st = self:prepare(net, x, opts)
  local h = t_next - t_curr
  local tc, tn = tvec(t_curr, x), tvec(t_next, x)
  local c1, u1 = both(st, function(m, cond) return m:pred(x, tc, cond) end)
  local xp, d1 = core.sampler_step(x, c1, u1, h, st.scale, "d")
  local c2, u2 = both(st, function(m, cond) return m:pred(xp, tn, cond) end)
  local out = core.sampler_heun(x, d1, c2, u2, h, st.scale)
  if st.want_denoised then return out, core.sampler_step(x, d1, nil, -t_curr, 1) end
  return out
end

Heun.last_step = Euler.forward

return Heun
