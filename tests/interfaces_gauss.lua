-- Exact networks for Gaussian data x ~ N(mu, s^2 I) (mu per dim), used by
-- the interface specs: the velocity, denoiser and score of every noised
-- marginal in closed form, as networks built from mf ops, and Lua-double
-- references.
local mf = require "moonflow"

local G = {}

function G.new(mu, s)
  local g = setmetatable({ mu = mu, s = s }, { __index = G })
  return g
end

local function col(t, B) return t:reshape({ B, 1 }) end

-- SiT: x_t = (1 - t) x + t n, Sigma_t = (1 - t)^2 s^2 + t^2,
-- E[n | x_t] = t (x_t - (1 - t) mu) / Sigma_t, E[x | x_t] = mu + (1 - t) s^2 (x_t - (1 - t) mu) / Sigma_t,
-- v = E[n - x | x_t]. dt (MeanFlow) is ignored: u(x_t, t, t) = v.
function G:sit_network(dtype)
  local mu = mf.tensor({ self.mu }, dtype)
  local s2 = self.s ^ 2
  local net = { calls = 0, num_classes = 3, hidden_size = 4 }
  return setmetatable(net, { __call = function(_, x, t, cond)
    net.calls = net.calls + 1
    local B = x:shape()[1]
    local tc = col(t, B)
    local sig = (1 - tc) ^ 2 * s2 + tc ^ 2
    local d = x - (1 - tc) * mu
    local En = tc * d / sig
    local Ex = mu + (1 - tc) * s2 * d / sig
    return En - Ex, { x }
  end })
end

-- EDM: x_t = x + sigma n. The network sees (c_in x_t, c_noise) and returns F
-- with c_skip x_t + c_out F = E[x | x_t] = mu + s^2 (x_t - mu) / (s^2 + sigma^2).
function G:edm_network(sd, dtype)
  local mu = mf.tensor({ self.mu }, dtype)
  local s2 = self.s ^ 2
  return setmetatable({ num_classes = 3, hidden_size = 4 }, { __call = function(_, xin, cnoise, cond)
    local B = xin:shape()[1]
    local sigma = col((cnoise * 4):exp(), B)
    local q = sigma ^ 2 + sd * sd
    local x_t = xin * q:sqrt()
    local D = mu + s2 * (x_t - mu) / (s2 + sigma ^ 2)
    local c_skip = sd * sd / q
    local c_out = sigma * sd / q:sqrt()
    return (D - c_skip * x_t) / c_out, { xin }
  end })
end

-- Lua-double references over nested {B, d} tables
function G:sit_score(xt, t)
  local out = {}
  for i, row in ipairs(xt) do
    local ti = type(t) == "table" and t[i] or t
    local sig = (1 - ti) ^ 2 * self.s ^ 2 + ti ^ 2
    out[i] = {}
    for j, v in ipairs(row) do out[i][j] = -(v - (1 - ti) * self.mu[j]) / sig end
  end
  return out
end

function G:sit_velocity(xt, t)
  local out = {}
  for i, row in ipairs(xt) do
    local ti = type(t) == "table" and t[i] or t
    local sig = (1 - ti) ^ 2 * self.s ^ 2 + ti ^ 2
    out[i] = {}
    for j, v in ipairs(row) do
      local d = v - (1 - ti) * self.mu[j]
      out[i][j] = ti * d / sig - (self.mu[j] + (1 - ti) * self.s ^ 2 * d / sig)
    end
  end
  return out
end

function G:edm_score(xt, sigma)
  local out = {}
  for i, row in ipairs(xt) do
    local si = type(sigma) == "table" and sigma[i] or sigma
    out[i] = {}
    for j, v in ipairs(row) do out[i][j] = -(v - self.mu[j]) / (self.s ^ 2 + si ^ 2) end
  end
  return out
end

function G:edm_denoised(xt, sigma)
  local out = {}
  for i, row in ipairs(xt) do
    local si = type(sigma) == "table" and sigma[i] or sigma
    out[i] = {}
    for j, v in ipairs(row) do out[i][j] = self.mu[j] + self.s ^ 2 * (v - self.mu[j]) / (self.s ^ 2 + si ^ 2) end
  end
  return out
end

return G
