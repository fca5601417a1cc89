-- cl/data.cl (toy2d) and cl/metrics.cl (pair_dist) on oclgrind: toy points on their
-- exact support, and the energy distance against a Lua double V-statistic.
local mf = require "moonflow"
local H = require "helpers"

local function ref_ed(X, Y)
  local function md(P, Q)
    local s = 0
    for _, p in ipairs(P) do
      for _, q in ipairs(Q) do
        local d = 0
        for i = 1, #p do d = d + (p[i] - q[i]) ^ 2 end
        s = s + math.sqrt(d)
      end
    end
    return s / (#P * #Q)
  end
  return 2 * md(X, Y) - md(X, X) - md(Y, Y), md(X, X)
end

describe("data and metrics kernels on the GPU shapes", function()
  it("two_moons without noise: every point on a moon", function()
    local rows = mf.data.toy("two_moons", { noise = 0, generator = mf.Generator(11) }):batch(300):totable()
    local eps = 2e-5
    for i, r in ipairs(rows) do
      local x, y = r[1], r[2]
      local up = math.abs(math.sqrt((x + 0.5) ^ 2 + (y + 0.25) ^ 2) - 1) < eps and y + 0.25 >= -eps
      local lo = math.abs(math.sqrt((x - 0.5) ^ 2 + (y - 0.25) ^ 2) - 1) < eps and y - 0.25 <= eps
      assert(up or lo, ("row %d = (%.6f, %.6f) on no moon"):format(i, x, y))
    end
  end)

  it("checkerboard: every point in an even cell of [-2, 2)^2", function()
    local rows = mf.data.toy("checkerboard", { generator = mf.Generator(12) }):batch(300):totable()
    for i, r in ipairs(rows) do
      local x, y = r[1], r[2]
      assert(x >= -2 and x < 2 and y >= -2 and y < 2 and (math.floor(x) + math.floor(y)) % 2 == 0,
        ("row %d = (%.6f, %.6f)"):format(i, x, y))
    end
  end)

  it("energy distance in f32 and f64", function()
    local X = mf.tensor(H.rand_table({ 50, 3 }, 1, -1, 2)):totable()
    local Y = mf.tensor(H.rand_table({ 40, 3 }, 2, -2, 1)):totable()
    local ref, dxx = ref_ed(X, Y)
    H.close(mf.metrics.energy_distance(mf.tensor(X), mf.tensor(Y)), ref, 0, 2e-5 * dxx)
    H.close(mf.metrics.energy_distance(mf.tensor(X), mf.tensor(Y), { dtype = "f64" }), ref, 0, 1e-9 * dxx)
  end)
end)
