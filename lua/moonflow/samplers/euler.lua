-- Euler (first order, deterministic) and EulerJump (few-step sampling of a
-- MeanFlow model through its average velocity u(x_t, t, r)).
local core = require "moonflow.core"
local Base = require "moonflow.samplers.base"

local both, tvec = Base.both, Base.tvec

-- x_next = x + (t_next - t_curr) d,  d = pred(x, t_curr) (guided: u + s (c - u))
local Euler = Base:extend("Euler")

function Euler:forward(rng, net, x, t_curr, t_next, opts)
  local st = self:prepare(net, x, opts)
  local tc = tvec(t_curr, x)
  local c, u = both(st, function(m, cond) return m:pred(x, tc, cond) end)
  if st.want_denoised then -- aux = x - t_curr d, the clean estimate
    return core.sampler_step(x, c, u, t_next - t_curr, st.scale, "x", -t_curr)
  end
  return core.sampler_step(x, c, u, t_next - t_curr, st.scale)
end
Euler.last_step = Euler.forward

-- x_next = x + (t_next - t_curr) u(x, t_curr, r = t_next): exact when u is
-- the model's exact average velocity, whatever the step.
local EulerJump = Euler:extend("EulerJump")

function EulerJump:forward(rng, net, x, t_curr, t_next, opts)
  local st = self:prepare(net, x, opts)
  local tc, tn = tvec(t_curr, x), tvec(t_next, x)
  local c, u = both(st, function(m, cond) return m:pred(x, tc, tn, cond) end)
  if st.want_denoised then
    return core.sampler_step(x, c, u, t_next - t_curr, st.scale, "x", -t_curr)
  end
  return core.sampler_step(x, c, u, t_next - t_curr, st.scale)
end
EulerJump.last_step = EulerJump.forward

return { Euler = Euler, EulerJump = EulerJump }
