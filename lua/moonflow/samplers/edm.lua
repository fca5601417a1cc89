-- The EDM stochastic sampler (Karras et al. 2022, Algorithm 2) on the path
-- x + sigma n, with d = pred(x, sigma) = (x - D(x; sigma)) / sigma:
--   gamma = min(S_churn / N, sqrt 2 - 1) if S_tmin <= sigma_i <= S_tmax, else 0
--   sigma_hat = sigma_i (1 + gamma),  x_hat = x_i + sqrt(sigma_hat^2 - sigma_i^2) S_noise z
--   x_next = x_hat + (sigma_next - sigma_hat) d(x_hat, sigma_hat)
--   and unless sigma_next = 0 (or this is the last step) the Heun correction
--   x_next = x_hat + (sigma_next - sigma_hat) (d(x_hat, sigma_hat) + d(x_next, sigma_next)) / 2.
-- N is the number of steps of the grid. diffuse_nnx left this sampler a stub.
local core = require "moonflow.core"
local Base = require "moonflow.samplers.base"

local both, tvec = Base.both, Base.tvec

local EDM = Base:extend("EDM", { S_churn = true, S_tmin = true, S_tmax = true, S_noise = true }, "exp")

function EDM:init(o)
  self.S_churn = o.S_churn or 0
  self.S_tmin = o.S_tmin or 0
  self.S_tmax = o.S_tmax or math.huge
  self.S_noise = o.S_noise or 1
  for _, k in ipairs { "S_churn", "S_tmin", "S_noise" } do
    if not Base.is_num(self[k]) or self[k] < 0 then self:fail(nil, "%s must be a number >= 0, got %s", k, tostring(self[k])) end
  end
  if type(self.S_tmax) ~= "number" or not (self.S_tmax >= self.S_tmin) then
    self:fail(nil, "S_tmax must be a number >= S_tmin, got %s", tostring(self.S_tmax))
  end
end

local function step(self, rng, net, x, t_curr, t_next, opts, last)
  local method = last and "last_step" or "forward"
  local st = self:prepare(net, x, opts, method)
  local gamma = 0
  if self.S_churn > 0 and t_curr >= self.S_tmin and t_curr <= self.S_tmax then
    gamma = math.min(self.S_churn / st.num_steps, math.sqrt(2) - 1)
  end
  local sh, xh = t_curr * (1 + gamma), x
  if gamma > 0 then
    local g = self:generator(rng, method)
    local off
    xh, off = core.sampler_noise(x, math.sqrt(sh * sh - t_curr * t_curr) * self.S_noise, g.seed, g.offset)
    g.offset = off
  end
  local h = t_next - sh
  local ts = tvec(sh, xh)
  local c1, u1 = both(st, function(m, cond) return m:pred(xh, ts, cond) end)
  local den
  if last or t_next == 0 then
    local out
    if st.want_denoised then out, den = core.sampler_step(xh, c1, u1, h, st.scale, "x", -sh)
    else out = core.sampler_step(xh, c1, u1, h, st.scale) end
    return out, den
  end
  local xp, d1 = core.sampler_step(xh, c1, u1, h, st.scale, "d")
  local tn = tvec(t_next, xh)
  local c2, u2 = both(st, function(m, cond) return m:pred(xp, tn, cond) end)
  local out = core.sampler_heun(xh, d1, c2, u2, h, st.scale)
  if st.want_denoised then den = core.sampler_step(xh, d1, nil, -sh, 1) end
  return out, den
end

function EDM:forward(rng, net, x, t_curr, t_next, opts) return step(self, rng, net, x, t_curr, t_next, opts, false) end
function EDM:last_step(rng, net, x, t_curr, t_next, opts) return step(self, rng, net, x, t_curr, t_next, opts, true) end

return EDM
