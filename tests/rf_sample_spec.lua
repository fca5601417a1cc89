-- mf.rf timestep sampling: moments against closed forms (tolerances from the
-- sample size), supports, and errors.
local mf = require "moonflow"
local H = require "helpers"
local rf = mf.rf

local N = 200000

local function moments(t)
  local x = t:to("f32")
  local m = x:mean():item()
  local v = ((x - m) ^ 2):mean():item()
  return m, v, x:min():item(), x:max():item()
end

-- |m - mu| <= 5 sd / sqrt(N)
local function near_mean(m, mu, var, what)
  local tol = 5 * math.sqrt(var / N) + 1e-6
  if math.abs(m - mu) > tol then
    error(("%s: mean %.6g, expected %.6g (tolerance %.3g)"):format(what, m, mu, tol), 2)
  end
end

local function gen(seed) return { generator = mf.Generator(seed) } end

describe("rf.sample_timesteps", function()
  it("the normal CDF behind the truncation, at known values", function()
    H.close({ rf._Phi(0), rf._Phi(1), rf._Phi(-1), rf._Phi(-5), rf._Phi(3) },
      { 0.5, 0.8413447460685429, 0.15865525393145707, 2.866515718791939e-07, 0.9986501019683699 }, 1e-13, 0)
  end)

  it("uniform: mean (a + b)/2, variance (b - a)^2/12, inside [min_t, max_t]", function()
    local t = rf.sample_timesteps(N, { time_dist_type = "uniform", min_t = 0.1, max_t = 0.9 }, gen(1))
    assert.same({ N }, t:shape())
    assert.equal("f32", t:dtype())
    local m, v, lo, hi = moments(t)
    near_mean(m, 0.5, 0.64 / 12, "uniform")
    -- var of (U - mu)^2 is E(U - mu)^4 - var^2 = (b - a)^4 / 80 - ((b - a)^2 / 12)^2
    local vv = 0.8 ^ 4 / 80 - (0.64 / 12) ^ 2
    assert.is_true(math.abs(v - 0.64 / 12) < 5 * math.sqrt(vv / N) + 1e-6, "variance " .. v)
    assert.is_true(lo >= 0.1 and hi <= 0.9)
  end)

  it("logitnormal: logit((t - min)/(max - min)) ~ N(p_mean, p_std^2)", function()
    local t = rf.sample_timesteps(N, { time_dist_type = "logitnormal", p_mean = -0.4, p_std = 0.8 }, gen(2))
    local z = (t / (1 - t)):log()
    local m, v = moments(z)
    near_mean(m, -0.4, 0.64, "logit mean")
    assert.is_true(math.abs(v - 0.64) < 5 * math.sqrt(2 * 0.64 ^ 2 / N), "logit variance " .. v)
  end)

  it("lognormal without effective truncation: mean exp(mu + sigma^2/2)", function()
    local mu, s = -0.5, 0.6
    local t = rf.sample_timesteps(N, { time_dist_type = "lognormal", p_mean = mu, p_std = s,
      min_t = 1e-9, max_t = 1e9 }, gen(3))
    local m = moments(t)
    local mean = math.exp(mu + s * s / 2)
    local var = (math.exp(s * s) - 1) * math.exp(2 * mu + s * s)
    near_mean(m, mean, var, "lognormal")
  end)

  it("lognormal truncated to (min_t, max_t): all inside, truncated mean", function()
    local mu, s, a, b = 0, 1, 0.2, 1.5
    local t = rf.sample_timesteps(N, { time_dist_type = "log_normal", p_mean = mu, p_std = s,
      min_t = a, max_t = b }, gen(4))
    local m, v, lo, hi = moments(t)
    assert.is_true(lo >= a and hi <= b, ("samples in [%g, %g]"):format(lo, hi))
    assert.is_true(lo > a and hi < b, "strictly inside")
    -- E[X | a < X < b] = e^(mu + s^2/2) (Phi(beta - s) - Phi(alpha - s)) / (Phi(beta) - Phi(alpha))
    local Phi = rf._Phi
    local al, be = (math.log(a) - mu) / s, (math.log(b) - mu) / s
    local Z = Phi(be) - Phi(al)
    local mean = math.exp(mu + s * s / 2) * (Phi(be - s) - Phi(al - s)) / Z
    local m2 = math.exp(2 * mu + 2 * s * s) * (Phi(be - 2 * s) - Phi(al - 2 * s)) / Z
    near_mean(m, mean, m2 - mean * mean, "truncated lognormal")
  end)

  it("lognormal with min_t = 0: the lower end maps to 0, never NaN", function()
    local t = rf.sample_timesteps(N, { time_dist_type = "lognormal", min_t = 0, max_t = 1 }, gen(14))
    local _, _, lo, hi = moments(t)
    assert.is_true(lo >= 0 and hi <= 1, ("samples in [%g, %g]"):format(lo, hi))
    assert.equal(0, (t:ne(t)):sum():item(), "no NaN")
  end)

  it("shifted: mean of s u / (1 + (s - 1) u) is s/(s-1) (1 - log(s)/(s-1))", function()
    local s = 3
    local t = rf.sample_timesteps(N, { time_dist_type = "shifted", shift = s }, gen(5))
    local m, v = moments(t)
    near_mean(m, s / (s - 1) * (1 - math.log(s) / (s - 1)), v, "shifted")
  end)

  it("polynomial: values on linspace(min_t, max_t, 1000), uniform over it", function()
    local a, b = 0.02, 0.98
    local t = rf.sample_timesteps(20000, { time_dist_type = "polynomial", min_t = a, max_t = b },
      { generator = mf.Generator(6), dtype = "f64" })
    local step = (b - a) / 999
    for _, v in ipairs(t:tolist()) do
      local k = (v - a) / step
      assert.is_true(math.abs(k - math.floor(k + 0.5)) < 1e-6, "on the grid: " .. v)
    end
    near_mean(moments(t), (a + b) / 2, (b - a) ^ 2 / 12 * N / 20000, "polynomial")
  end)

  it("clamps to [min_t, max_t] and draws from the given generator reproducibly", function()
    local cfg = { time_dist_type = "logitnormal", min_t = 0.3, max_t = 0.6, p_std = 3 }
    local a = rf.sample_timesteps(1000, cfg, gen(7)):tolist()
    local b = rf.sample_timesteps(1000, cfg, gen(7)):tolist()
    assert.same(a, b)
    for _, v in ipairs(a) do assert.is_true(v >= 0.3 - 1e-7 and v <= 0.6 + 1e-7) end
  end)

  it("errors name the bad type and values", function()
    H.errors(function() rf.sample_timesteps(4, { time_dist_type = "beta" }) end, "sample_timesteps", "beta")
    H.errors(function() rf.sample_timesteps(4, { time_dist_type = 3 }) end, "sample_timesteps", "number")
    H.errors(function() rf.sample_timesteps(4, "uniform") end, "sample_timesteps", "cfg", "string")
    H.errors(function() rf.sample_timesteps(2.5, { time_dist_type = "uniform" }) end, "sample_timesteps", "2.5")
    H.errors(function() rf.sample_timesteps(4, { time_dist_type = "uniform", min_t = "a" }) end, "min_t", "string")
    H.errors(function() rf.sample_timesteps(4, { time_dist_type = "uniform", min_t = 0.9, max_t = 0.1 }) end,
      "min_t", "0.9")
  end)
end)

describe("rf.sample_from_t_list", function()
  it("draws uniformly from every entry but the last", function()
    local list = { 0.999, 0.75, 0.5, 0.25, 0 }
    local n = 40000
    local t = rf.sample_from_t_list(n, list, gen(8))
    assert.same({ n }, t:shape())
    local counts = {}
    for _, v in ipairs(t:tolist()) do
      local key = ("%.3f"):format(v)
      counts[key] = (counts[key] or 0) + 1
    end
    assert.is_nil(counts["0.000"])
    -- each of the 4 has p = 1/4: |count - n/4| <= 5 sqrt(n p (1 - p))
    for _, v in ipairs { 0.999, 0.75, 0.5, 0.25 } do
      local c = counts[("%.3f"):format(v)] or 0
      assert.is_true(math.abs(c - n / 4) <= 5 * math.sqrt(n * 0.25 * 0.75), ("count of %g: %d"):format(v, c))
    end
  end)
  it("errors for fewer than 2 entries, a last entry not 0, and bad types", function()
    H.errors(function() rf.sample_from_t_list(3, { 0 }) end, "sample_from_t_list", "at least 2", "1")
    H.errors(function() rf.sample_from_t_list(3, { 0.5, 0.2 }) end, "sample_from_t_list", "last entry", "0.2")
    H.errors(function() rf.sample_from_t_list(3, { 0.5, "x", 0 }) end, "sample_from_t_list", "t_list[2]", "string")
    H.errors(function() rf.sample_from_t_list(3, 0.5) end, "sample_from_t_list", "number")
    H.errors(function() rf.sample_from_t_list(-1, { 1, 0 }) end, "sample_from_t_list", "-1")
  end)
end)
