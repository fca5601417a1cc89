local mf = require "moonflow"
local H = require "helpers"

-- Lua double reference: V-statistic energy distance over all pairs
local function ref_ed(X, Y)
  local function d(p, q)
    local s = 0
    for i = 1, #p do s = s + (p[i] - q[i]) ^ 2 end
    return math.sqrt(s)
  end
  local function md(P, Q)
    local s = 0
    for _, p in ipairs(P) do for _, q in ipairs(Q) do s = s + d(p, q) end end
    return s / (#P * #Q)
  end
  return 2 * md(X, Y) - md(X, X) - md(Y, Y), md(X, X)
end

-- erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7)
local function erf(x)
  local s = x < 0 and -1 or 1
  x = math.abs(x)
  local t = 1 / (1 + 0.3275911 * x)
  local y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * math.exp(-x * x)
  return s * y
end

local has64 = pcall(mf.zeros, { 1 }, { dtype = "f64" })

describe("metrics.energy_distance", function()
  -- the f32 values the tensors hold
  local X = mf.tensor(H.rand_table({ 50, 3 }, 1, -1, 2)):totable()
  local Y = mf.tensor(H.rand_table({ 40, 3 }, 2, -2, 1)):totable()
  local ref, dxx = ref_ed(X, Y)

  it("matches the Lua double V-statistic", function()
    local ed = mf.metrics.energy_distance(mf.tensor(X), mf.tensor(Y))
    -- f32 distances carry ~1e-7 relative error each; ED is a difference of O(dxx) means
    H.close(ed, ref, 0, 2e-5 * dxx)
    if has64 then H.close(mf.metrics.energy_distance(mf.tensor(X), mf.tensor(Y), { dtype = "f64" }), ref, 0, 1e-9 * dxx) end
  end)

  it("gives the same value when the pair matrix is cut into many blocks", function()
    local saved = mf.metrics.block_elements
    mf.metrics.block_elements = 7 * 40 -- 7-row blocks, the last one short
    local ok, ed = pcall(mf.metrics.energy_distance, mf.tensor(X), mf.tensor(Y))
    mf.metrics.block_elements = saved
    assert(ok, ed)
    H.close(ed, ref, 0, 2e-5 * dxx)
  end)

  it("flattens image-shaped rows, is symmetric and zero on identical sets", function()
    local x = mf.tensor(X):reshape({ 50, 3, 1 })
    local y = mf.tensor(Y):reshape({ 40, 1, 3 })
    H.close(mf.metrics.energy_distance(x, y), ref, 0, 2e-5 * dxx)
    H.close(mf.metrics.energy_distance(mf.tensor(Y), mf.tensor(X)), ref, 0, 2e-5 * dxx)
    H.close(mf.metrics.energy_distance(mf.tensor(X), mf.tensor(X)), 0, 0, 1e-5 * dxx)
  end)

  it("has the closed-form mean sqrt(pi) (1/n + 1/m) for two N(0, I_2) sets", function()
    -- |X - X'| is Rayleigh with sigma^2 = 2: E|X - X'| = sqrt(pi); E[ED_V] = E|X - X'| (1/n + 1/m)
    local src = mf.data.mixture({ means = { { 0, 0 } }, stds = { 1 } })
    local mean, se = mf.metrics.energy_floor(src, 400, { m = 300, repeats = 24, seed = 3, method = "sampled" })
    local expect = math.sqrt(math.pi) * (1 / 400 + 1 / 300)
    assert.is_true(se > 0 and se < 0.3 * expect, ("se %g"):format(se))
    if math.abs(mean - expect) > 5 * se then
      error(("floor %.6f, expected %.6f +- %.6f"):format(mean, expect, 5 * se))
    end
    -- the default estimates E|X - X'| from two fresh sets of max(n, m, 1000) points:
    -- |X - Y| has sd sqrt(4 - pi) ~ 0.93, so the estimate's se is below 0.93 sqrt(2 / 1000)
    local floor, delta = mf.metrics.energy_floor(src, 400, { m = 300, seed = 3 })
    local tol = 5 * 0.93 * math.sqrt(2 / 1000)
    H.close(delta, math.sqrt(math.pi), 0, tol)
    H.close(floor, expect, 0, tol * (1 / 400 + 1 / 300))
  end)

  it("measures a shift: N(0, 1) against N(1, 1) in 1-D", function()
    -- X - Y ~ N(-1, 2): E|X - Y| = (2 / sqrt(pi)) exp(-1/4) + erf(1/2); E|X - X'| = 2 / sqrt(pi)
    local n, reps = 300, 16
    local true_ed = 2 * (2 / math.sqrt(math.pi) * math.exp(-0.25) + erf(0.5)) - 4 / math.sqrt(math.pi)
    local expect = true_ed + 2 / math.sqrt(math.pi) * (2 / n)
    local g = mf.Generator(9)
    local vals, s = {}, 0
    for r = 1, reps do
      vals[r] = mf.metrics.energy_distance(g:normal({ n, 1 }), g:normal({ n, 1 }, { mean = 1 }))
      s = s + vals[r]
    end
    local mean, v = s / reps, 0
    for _, e in ipairs(vals) do v = v + (e - mean) ^ 2 end
    local se = math.sqrt(v / (reps - 1) / reps)
    if math.abs(mean - expect) > 5 * se then
      error(("ED %.6f, expected %.6f +- %.6f"):format(mean, expect, 5 * se))
    end
  end)

  it("leaves the source's own stream alone when measuring the floor", function()
    local src = mf.data.toy("two_moons", { generator = mf.Generator(1) })
    local st = src:get_state()
    local a = mf.metrics.energy_floor(src, 100)
    local b = mf.metrics.energy_floor(src, 100, { repeats = 2, method = "sampled" })
    assert.are.same(st, src:get_state())
    assert.are.equal(a, (mf.metrics.energy_floor(src, 100))) -- fixed seed: same value
    assert.are.equal(b, (mf.metrics.energy_floor(src, 100, { repeats = 2, method = "sampled" })))
  end)

  it("rejects mismatched or non-tensor inputs", function()
    H.errors(function() mf.metrics.energy_distance(mf.zeros({ 3, 2 }), mf.zeros({ 3, 3 })) end,
      "moonflow.metrics.energy_distance", "x has 2 values per row, y has 3")
    H.errors(function() mf.metrics.energy_distance({}, mf.zeros({ 3, 3 })) end, "moonflow.metrics.energy_distance", "x must be a tensor")
    H.errors(function() mf.metrics.energy_floor({}, 10) end, "moonflow.metrics.energy_floor", "batch")
    H.errors(function() mf.metrics.energy_floor(mf.data.toy("rings"), 10, { method = "guess" }) end,
      "moonflow.metrics.energy_floor", "method", "guess")
  end)
end)
