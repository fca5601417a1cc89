-- cl/sampler.cl on oclgrind: the fused Gaussian-mixture field (oracle_field), Euler
-- and Heun steps (smp_step, smp_heun), Euler-Maruyama (smp_em) and the noise kernel
-- (smp_noise), against Lua doubles of the mixture's exact velocity.
local mf = require "moonflow"
local core = require "moonflow.core"
local H = require "helpers"
local S = mf.samplers

local spec = { means = { { -2, 0 }, { 2, 1 }, { 0, -1.5 } }, stds = { 0.5, 0.3, 0.4 }, weights = { 0.3, 0.5, 0.2 } }
local gm = mf.oracle.GaussianMixture(spec)
local sit = mf.interfaces.SiT { network = gm:network("sit") }

-- velocity of the linear path x_t = (1 - t) x + t n at one point (Lua doubles)
local function vel(x, t)
  local a, l, V, m = 1 - t, {}, {}, -math.huge
  for k = 1, 3 do
    V[k] = a * a * spec.stds[k] ^ 2 + t * t
    local sq = 0
    for d = 1, 2 do sq = sq + (x[d] - a * spec.means[k][d]) ^ 2 end
    l[k] = math.log(spec.weights[k]) - math.log(2 * math.pi * V[k]) - sq / (2 * V[k])
    m = math.max(m, l[k])
  end
  local Z, v = 0, { 0, 0 }
  for k = 1, 3 do Z = Z + math.exp(l[k] - m) end
  for k = 1, 3 do
    local r = math.exp(l[k] - m) / Z
    for d = 1, 2 do
      v[d] = v[d] + r * ((t - a * spec.stds[k] ^ 2) / V[k] * (x[d] - a * spec.means[k][d]) - spec.means[k][d])
    end
  end
  return v
end

local xs = H.rand_table({ 40, 2 }, 5, -3, 3)
local function X() return mf.tensor(xs, { dtype = "f64" }) end

describe("sampler kernels on the GPU shapes", function()
  it("the fused oracle velocity equals the Lua reference", function()
    local v = gm:velocity(X(), 0.4):totable()
    for i, p in ipairs(xs) do H.close(v[i], vel(p, 0.4), 1e-9, 1e-9, "row " .. i) end
  end)

  for _, dt in ipairs { "f64", "f32" } do
  it("an Euler step and a Heun step, " .. dt, function()
    local t, tn = 0.6, 0.45
    local h = tn - t
    local tol = dt == "f64" and 1e-9 or 2e-5
    local x = mf.tensor(xs, { dtype = dt })
    local e = S.Euler {}:forward(nil, sit, x, t, tn):totable()
    local hn = S.Heun {}:forward(nil, sit, x, t, tn):totable()
    for i, p in ipairs(xs) do
      local v1 = vel(p, t)
      local q = { p[1] + h * v1[1], p[2] + h * v1[2] }
      local v2 = vel(q, tn)
      H.close(e[i], q, tol, tol, "Euler row " .. i)
      H.close(hn[i], { p[1] + h / 2 * (v1[1] + v2[1]), p[2] + h / 2 * (v1[2] + v2[2]) }, tol, tol, "Heun row " .. i)
    end
  end)
  end

  it("an Euler-Maruyama step adds sqrt(w |h|) z of the generator's own normal draw", function()
    local s = S.EulerMaruyama { diffusion_coeff = "constant", diffusion_coeff_norm = 0.8 }
    local g, g2 = mf.Generator(77), mf.Generator(77)
    local t, tn = 0.55, 0.5
    local out = s:forward(g, sit, X(), t, tn)
    local zz = g2:normal({ 40, 2 }, { dtype = "f64" })
    local want = X() + (gm:velocity(X(), t) - gm:score(X(), t) * 0.4) * (tn - t) + zz * math.sqrt(0.8 * 0.05)
    H.close(out:totable(), want:totable(), 1e-9, 1e-9)
    assert.same(g2:get_state(), g:get_state())
  end)

  for _, dt in ipairs { "f64", "f32" } do
    it("the noise kernel adds scale z from (seed, offset), " .. dt, function()
      local g = mf.Generator(9)
      local z = g:normal({ 40, 2 }, { dtype = dt }):totable()
      local xh, off = core.sampler_noise(mf.tensor(xs, { dtype = dt }), 0.3, 9, 0)
      assert.equal(g:get_state().offset, off)
      local tol = dt == "f64" and 1e-12 or 1e-6
      H.close(xh:totable(), H.map(function(a, b) return a + 0.3 * b end, xs, z), tol, tol)
    end)
  end

  it("Euler-Maruyama and the fused oracle in f32", function()
    local s = S.EulerMaruyama { diffusion_coeff = "constant", diffusion_coeff_norm = 0.8 }
    local x = mf.tensor(xs)
    local out = s:forward(mf.Generator(5), sit, x, 0.55, 0.5)
    local zz = mf.Generator(5):normal({ 40, 2 })
    local want = x + (gm:velocity(x, 0.55) - gm:score(x, 0.55) * 0.4) * (-0.05) + zz * math.sqrt(0.8 * 0.05)
    H.close(out:totable(), want:totable(), 1e-5, 1e-5)
    local v = gm:velocity(x, 0.4):totable()
    for i, p in ipairs(mf.tensor(xs):totable()) do H.close(v[i], vel(p, 0.4), 1e-4, 1e-4, "row " .. i) end
  end)
end)
