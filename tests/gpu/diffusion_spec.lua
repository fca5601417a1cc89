-- cl/diffusion.cl's GPU shapes on oclgrind (4-wide grid stride, a work-group per row
-- for the row reductions): fused noising and targets, the weighted squared error and
-- its gradient, coefficient kernels, ndtri, and the mf.rf conversions.
local mf = require "moonflow"
local H = require "helpers"
local D = mf.diffusion

local function f32(v) return (string.unpack("f", string.pack("f", v))) end

-- both loop shapes run on any device: "gpu" is this device's default, "cpu" is PoCL's
for _, path in ipairs { "gpu", "cpu" } do
for _, dt in ipairs { "f64", "f32" } do
local tol = dt == "f64" and 1e-12 or 2e-6
describe("diffusion kernels, " .. path .. " loop shapes, " .. dt, function()
  before_each(function() mf.core.diffusion_path(path) end)
  after_each(function() mf.core.diffusion_path("auto") end)
  it("SiT noising and target, {3, 700} rows (more than one pass of a group)", function()
    local B, W = 3, 700
    local x, n, tt = H.rand_table({ B, W }, 11), H.rand_table({ B, W }, 12), H.rand_table({ B }, 13, 0, 1)
    if dt == "f32" then x, n, tt = H.map(f32, x), H.map(f32, n), H.map(f32, tt) end
    local f = function(v) return mf.tensor(v, { dtype = dt }) end
    local xt, tg = D.sit_noise_target(f(x), f(n), f(tt))
    local ex, et = {}, {}
    for r = 1, B do
      ex[r], et[r] = {}, {}
      for j = 1, W do
        ex[r][j] = (1 - tt[r]) * x[r][j] + tt[r] * n[r][j]
        et[r][j] = n[r][j] - x[r][j]
      end
    end
    H.close(xt:totable(), ex, tol, tol, "x_t")
    H.close(tg:totable(), et, tol, tol, "target")
  end)

  it("weighted squared error per row, sum and mean, and its gradient", function()
    local B, W = 4, 300
    local a, b, w = H.rand_table({ B, W }, 1), H.rand_table({ B, W }, 2), { 0.5, 1, 2, 3 }
    if dt == "f32" then a, b = H.map(f32, a), H.map(f32, b) end
    local f = function(v) return mf.tensor(v, { dtype = dt }) end
    local A = f(a):requires_grad()
    local l = D.wsse(A, f(b), f(w), { reduce = "sum" })
    local want = {}
    for r = 1, B do
      local s = 0
      for j = 1, W do s = s + (a[r][j] - b[r][j]) ^ 2 end
      want[r] = w[r] * s
    end
    H.close(l:totable(), want, tol * 10, tol, "sum")
    H.close(D.wsse(f(a), f(b)):totable(), H.map(function(s, ww) return s / ww / W end, want, w), tol * 10, tol,
      "mean")
    l:sum():backward()
    local g = {}
    for r = 1, B do
      g[r] = {}
      for j = 1, W do g[r][j] = 2 * w[r] * (a[r][j] - b[r][j]) end
    end
    H.close(A.grad:totable(), g, tol, tol, "d/da")
  end)

  it("EDM coefficients with derivatives, and ndtri at known quantiles", function()
    local s, sd = { 0.05, 0.3, 1, 4.5 }, 0.5
    local t = mf.tensor(s, { dtype = dt }):requires_grad()
    local y = D.coef("edm_c_skip", t, sd)
    H.close(y:totable(), H.map(function(v) return sd ^ 2 / (v ^ 2 + sd ^ 2) end, s), tol, tol)
    y:sum():backward()
    H.close(t.grad:totable(), H.map(function(v) return -2 * v * sd ^ 2 / (v ^ 2 + sd ^ 2) ^ 2 end, s), tol, tol)
    local u = { 0.5, 0.975, 0.001, 1e-10, 0.8413447460685429 }
    local z = { 0, 1.959963984540054, -3.090232306167813, -6.361340902404056, 1 }
    H.close(D.ndtri(mf.tensor(u, { dtype = "f64" })):totable(), z, 1e-12, 1e-12)
    H.close(D.ndtri(mf.tensor(u)):totable(), z, 1e-4, 1e-4)
  end)

  it("rf conversions in f64 and f32 against Lua doubles", function()
    local B, W = 4, 6
    local x0, eps = H.rand_table({ B, W }, 101, -2, 2), H.rand_table({ B, W }, 102, -2, 2)
    local tt = { 0.05, 0.3, 0.71, 0.95 }
    for _, dt in ipairs { "f64", "f32" } do
      local T = function(v) return mf.tensor(v, { dtype = dt }) end
      local xt = mf.rf.add_noise(T(x0), T(eps), T(tt))
      local v = mf.rf.x0_to_flow(T(x0), xt, T(tt))
      local want_xt, want_v = {}, {}
      for r = 1, B do
        want_xt[r], want_v[r] = {}, {}
        for j = 1, W do
          want_xt[r][j] = (1 - tt[r]) * x0[r][j] + tt[r] * eps[r][j]
          want_v[r][j] = (want_xt[r][j] - x0[r][j]) / tt[r]
        end
      end
      local tol = dt == "f64" and 1e-12 or 1e-5
      H.close(xt:totable(), want_xt, tol, tol, "add_noise " .. dt)
      H.close(v:totable(), want_v, tol * 100, tol * 100, "x0_to_flow " .. dt)
    end
  end)
end)
end
end
