-- The fused diffusion kernels against Lua double references, and their
-- autograd rules against float64 finite differences.
local mf = require "moonflow"
local H = require "helpers"
local D = mf.diffusion
local fp64 = mf.device().fp64

-- rows of a nested {B, ...} table flattened per row
local function rows(t)
  local out = {}
  for i, r in ipairs(t) do out[i] = H.flatten(r) end
  return out
end


-- both kernel loop shapes (GPU: 4-wide grid stride and a work-group per row;
-- CPU: contiguous runs and a row per work-item) run on any device
for _, path in ipairs { "gpu", "cpu" } do
describe("fused noising and target (" .. path .. " loop shapes)", function()
  before_each(function() mf.core.diffusion_path(path) end)
  after_each(function() mf.core.diffusion_path("auto") end)
  for _, shape in ipairs { { 3, 5 }, { 4, 2, 3 }, { 2, 8 }, { 5, 1 }, { 3, 33 } } do
    it("SiT x_t = (1 - t) x + t n and target n - x for shape {" .. table.concat(shape, ",") .. "}", function()
      local B = shape[1]
      local x, n = H.rand_table(shape, 11), H.rand_table(shape, 12)
      local tt = H.rand_table({ B }, 13, 0, 1)
      local xt, tg = D.sit_noise_target(mf.tensor(x), mf.tensor(n), mf.tensor(tt))
      assert.same(shape, xt:shape())
      local xr, nr = rows(x), rows(n)
      local ex, et = {}, {}
      for r = 1, B do
        for j = 1, #xr[r] do
          ex[#ex + 1] = (1 - tt[r]) * xr[r][j] + tt[r] * nr[r][j]
          et[#et + 1] = nr[r][j] - xr[r][j]
        end
      end
      H.close(H.flatten(xt:totable()), ex, 1e-6, 1e-6, "x_t")
      H.close(H.flatten(tg:totable()), et, 1e-6, 1e-6, "target")
    end)
  end

  it("EDM x_t = x + sigma n, target x; a number for t broadcasts", function()
    local x, n = H.rand_table({ 4, 7 }, 1), H.rand_table({ 4, 7 }, 2)
    local xt, tg = D.edm_noise_target(mf.tensor(x), mf.tensor(n), 2.5)
    H.close(xt:totable(), H.map(function(a, b) return a + 2.5 * b end, x, n), 1e-6, 1e-6)
    H.close(tg:totable(), x, 1e-7, 1e-7)
  end)

  it("general per-row (a, b, c, d)", function()
    local x, n = H.rand_table({ 2, 6 }, 3), H.rand_table({ 2, 6 }, 4)
    local cf = { { 1, 2, 3, 4 }, { -1, 0.5, 0, 2 } }
    local xt, tg = D.noise_target(mf.tensor(x), mf.tensor(n), mf.tensor(cf))
    local ex, et = {}, {}
    for r = 1, 2 do
      ex[r], et[r] = {}, {}
      for j = 1, 6 do
        ex[r][j] = cf[r][1] * x[r][j] + cf[r][2] * n[r][j]
        et[r][j] = cf[r][3] * x[r][j] + cf[r][4] * n[r][j]
      end
    end
    H.close(xt:totable(), ex, 1e-6, 1e-6)
    H.close(tg:totable(), et, 1e-6, 1e-6)
  end)

  it("reads views: row offsets and transposed (strided) operands", function()
    local big, nb = H.rand_table({ 6, 5 }, 51), H.rand_table({ 5, 3 }, 52)
    local x = mf.tensor(big):narrow(1, 3, 3)   -- rows 3..5, offset 10
    local n = mf.tensor(nb):transpose(1, 2)    -- {3, 5}, strided
    local t = mf.tensor({ 0.9, 0.2, 0.6, 0.4 }):narrow(1, 2, 3)
    local xt, tg = D.sit_noise_target(x, n, t)
    local tt = { 0.2, 0.6, 0.4 }
    local ex, et = {}, {}
    for r = 1, 3 do
      ex[r], et[r] = {}, {}
      for j = 1, 5 do
        local xv, nv = big[r + 2][j], nb[j][r]
        ex[r][j] = (1 - tt[r]) * xv + tt[r] * nv
        et[r][j] = nv - xv
      end
    end
    H.close(xt:totable(), ex, 1e-6, 1e-6, "x_t")
    H.close(tg:totable(), et, 1e-6, 1e-6, "target")
    local l = D.wsse(x, n, t, { reduce = "sum" }):totable()
    for r = 1, 3 do
      local acc = 0
      for j = 1, 5 do acc = acc + (big[r + 2][j] - nb[j][r]) ^ 2 end
      H.close(l[r], tt[r] * acc, 1e-5, 1e-6, "loss row " .. r)
    end
  end)

  it("names the function and the values on bad input", function()
    H.errors(function() D.sit_noise_target(mf.zeros({ 2, 3 }), mf.zeros({ 2, 4 }), 0.5) end,
      "sit_noise_target", "{2, 3}", "{2, 4}")
    H.errors(function() D.sit_noise_target(mf.zeros({ 2, 3 }), mf.zeros({ 2, 3 }), mf.zeros({ 3 })) end,
      "sit_noise_target", "3 values", "2 rows")
    H.errors(function() D.sit_noise_target(mf.zeros({ 2, 3 }), mf.zeros({ 2, 3 }), "x") end,
      "sit_noise_target", "string")
  end)
end)

describe("per-sample weighted squared error (" .. path .. " loop shapes)", function()
  before_each(function() mf.core.diffusion_path(path) end)
  after_each(function() mf.core.diffusion_path("auto") end)
  for _, shape in ipairs { { 5, 3 }, { 3, 1000 }, { 2, 1024 }, { 4, 2, 33 }, { 1, 7 } } do
    it("one reduction, mean and sum, weighted, shape {" .. table.concat(shape, ",") .. "}", function()
      local B = shape[1]
      local a, b = H.rand_table(shape, 21), H.rand_table(shape, 22)
      local w = H.rand_table({ B }, 23, 0.5, 2)
      local ar, br = rows(a), rows(b)
      local cols = #ar[1]
      local sse = {}
      for r = 1, B do
        local s = 0
        for j = 1, cols do s = s + (ar[r][j] - br[r][j]) ^ 2 end
        sse[r] = s
      end
      local ta, tb = mf.tensor(a), mf.tensor(b)
      H.close(D.wsse(ta, tb):totable(), H.map(function(s) return s / cols end, sse), 1e-5, 1e-6, "mean")
      H.close(D.wsse(ta, tb, nil, { reduce = "sum" }):totable(), sse, 1e-5, 1e-5, "sum")
      H.close(D.wsse(ta, tb, mf.tensor(w), { reduce = "sum" }):totable(),
        H.map(function(s, v) return s * v end, sse, w), 1e-5, 1e-5, "weighted")
      H.close(D.wsse(ta, tb, 3):totable(), H.map(function(s) return 3 * s / cols end, sse), 1e-5, 1e-6, "number weight")
    end)
  end
  it("rejects a bad reduce option", function()
    H.errors(function() D.wsse(mf.zeros({ 2, 2 }), mf.zeros({ 2, 2 }), nil, { reduce = "max" }) end, "wsse", "max")
  end)
end)
end

-- float64 central differences of a scalar function of one f64 leaf
local function fd_check(f, x0, shape, what)
  local leaf = mf.tensor(x0, "f64"):requires_grad()
  f(leaf):backward()
  local g = H.flatten(leaf.grad:totable())
  local flat = H.flatten(x0)
  local h = 1e-6
  local num = {}
  for i = 1, #flat do
    local p, m = {}, {}
    for k = 1, #flat do p[k], m[k] = flat[k], flat[k] end
    p[i], m[i] = flat[i] + h, flat[i] - h
    local fp = f(mf.tensor(p, "f64"):reshape(shape)):item()
    local fm = f(mf.tensor(m, "f64"):reshape(shape)):item()
    num[i] = (fp - fm) / (2 * h)
  end
  H.close(g, num, 1e-6, 1e-8, what)
end

describe("autograd through the fused kernels (float64 finite differences)", function()
  if not fp64 then
    it("needs fp64 for finite differences", function() pending("device without fp64") end)
    return
  end
  local x0, n0 = H.rand_table({ 3, 5 }, 31), H.rand_table({ 3, 5 }, 32)
  local t0 = { 0.2, 0.55, 0.9 }
  local w0 = { 0.5, 1.5, 2 }
  local X = function() return mf.tensor(x0, "f64") end
  local N = function() return mf.tensor(n0, "f64") end
  local T = function() return mf.tensor(t0, "f64") end
  local W = function() return mf.tensor(w0, "f64") end
  -- a scalar that uses both outputs non-trivially
  local function L(xt, tg, w)
    return (D.wsse(xt * xt, tg, w, { reduce = "mean" }) * mf.tensor({ 1, -2, 3 }, "f64")):sum()
  end

  it("SiT: d/dx, d/dn, d/dt", function()
    fd_check(function(x) local a, b = D.sit_noise_target(x, N(), T()); return L(a, b) end, x0, { 3, 5 }, "x")
    fd_check(function(n) local a, b = D.sit_noise_target(X(), n, T()); return L(a, b) end, n0, { 3, 5 }, "n")
    fd_check(function(t) local a, b = D.sit_noise_target(X(), N(), t); return L(a, b) end, t0, { 3 }, "t")
  end)
  it("EDM: d/dx, d/dsigma", function()
    fd_check(function(x) local a, b = D.edm_noise_target(x, N(), T()); return L(a, b) end, x0, { 3, 5 }, "x")
    fd_check(function(s) local a, b = D.edm_noise_target(X(), N(), s); return L(a, b) end, t0, { 3 }, "sigma")
  end)
  it("general coefficients: d/dcoefs", function()
    local c0 = { { 1, 2, 3, 4 }, { -1, 0.5, 0, 2 }, { 0.3, 0.2, -0.7, 1 } }
    fd_check(function(c) local a, b = D.noise_target(X(), N(), c); return L(a, b) end, c0, { 3, 4 }, "coefs")
  end)
  it("weighted loss: d/dw", function()
    fd_check(function(w) local a, b = D.sit_noise_target(X(), N(), T()); return L(a, b, w) end, w0, { 3 }, "w")
  end)
  it("jvp of noising and the loss matches finite differences along a direction", function()
    local dx, dt = H.rand_table({ 3, 5 }, 41), { 0.3, -0.2, 0.1 }
    local function f(x, t)
      local a, b = D.sit_noise_target(x, N(), t)
      return D.wsse(a, b, W())
    end
    local _, tan = mf.autograd.jvp(f, { X(), T() }, { mf.tensor(dx, "f64"), mf.tensor(dt, "f64") })
    local h = 1e-6
    local function at(s)
      local xs = H.map(function(a, d) return a + s * d end, x0, dx)
      local ts = H.map(function(a, d) return a + s * d end, t0, dt)
      return f(mf.tensor(xs, "f64"), mf.tensor(ts, "f64")):totable()
    end
    local num = H.map(function(p, m) return (p - m) / (2 * h) end, at(h), at(-h))
    H.close(tan:totable(), num, 1e-6, 1e-8, "jvp")
  end)
end)

describe("coefficient kernels", function()
  local dt = fp64 and "f64" or "f32"
  local tol = fp64 and 1e-12 or 1e-5
  local s, sd = { 0.05, 0.3, 1, 4.5 }, 0.5
  local ref = {
    edm_c_in = function(v) return 1 / math.sqrt(sd ^ 2 + v ^ 2) end,
    edm_c_out = function(v) return v * sd / math.sqrt(v ^ 2 + sd ^ 2) end,
    edm_c_skip = function(v) return sd ^ 2 / (v ^ 2 + sd ^ 2) end,
    edm_c_noise = function(v) return math.log(v) / 4 end,
    edm_weight = function(v) return (v ^ 2 + sd ^ 2) / (v * sd) ^ 2 end,
    t_shift = function(v) return sd * v / (1 + (sd - 1) * v) end,
  }
  for name, f in pairs(ref) do
    it(name .. " and its derivative", function()
      local t = mf.tensor(s, dt):requires_grad()
      local y = D.coef(name, t, sd)
      H.close(y:totable(), H.map(f, s), tol, tol, name)
      y:sum():backward()
      local h = 1e-5
      H.close(t.grad:totable(), H.map(function(v) return (f(v + h) - f(v - h)) / (2 * h) end, s), 1e-6, 1e-6,
        name .. "'")
    end)
  end
  it("inverse normal CDF at known quantiles", function()
    local u = { 0.5, 0.975, 0.001, 1e-10, 0.8413447460685429 }
    local z = { 0, 1.959963984540054, -3.090232306167813, -6.361340902404056, 1 }
    H.close(D.ndtri(mf.tensor(u, dt)):totable(), z, fp64 and 1e-12 or 1e-4, fp64 and 1e-12 or 1e-4)
    assert.same({ -math.huge, math.huge }, D.ndtri(mf.tensor({ 0, 1 }, dt)):tolist())
  end)
end)
