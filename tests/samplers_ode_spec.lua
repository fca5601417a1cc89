-- Deterministic samplers (Euler, Heun) against the exact Gaussian-mixture
-- oracle: grids, marginals, convergence orders, guidance, callbacks, fusion.
local mf = require "moonflow"
local H = require "helpers"
local SH = require "samplers_helpers"

local S = mf.samplers
local gm = SH.gm
local fp64 = mf.device().fp64

describe("samplers: time grids", function()
  it("uniform grid from t_start to t_end, shifted by sqrt(t_shift_cur / t_shift_base)", function()
    H.close(S.Euler { num_sampling_steps = 4 }:sample_t(5), { 1, 0.75, 0.5, 0.25, 0 }, 1e-15, 1e-15)
    -- ratio r = 2: t' = 2 t / (1 + t)
    local s = S.Euler { t_shift_base = 1024, t_shift_cur = 4096, t_start = 0.9, t_end = 0.1 }
    local want = {}
    for i = 0, 4 do
      local u = 0.9 - 0.2 * i
      want[i + 1] = 2 * u / (1 + u)
    end
    H.close(s:sample_t(5), want, 1e-15, 1e-15)
    -- seed-style sampling_time_kwargs work too
    H.close(S.Heun { sampling_time_kwargs = { t_start = 0.5 } }:sample_t(3), { 0.5, 0.25, 0 }, 1e-15, 1e-15)
  end)

  it("EDM grid (smax^(1/rho) + i/(N-1) (smin^(1/rho) - smax^(1/rho)))^rho and a final 0", function()
    local s = S.EDM { sigma_min = 0.002, sigma_max = 80, rho = 7 }
    local g = s:sample_t(6)
    assert.equal(7, #g)
    for i = 0, 5 do
      local want = (80 ^ (1 / 7) + i / 5 * (0.002 ^ (1 / 7) - 80 ^ (1 / 7))) ^ 7
      H.close(g[i + 1], want, 1e-14, 0)
    end
    assert.equal(0, g[7])
    H.close(g[1], 80, 1e-14)
    H.close(g[6], 0.002, 1e-12)
    assert.equal("exp", s.sampling_time_dist)
    assert.equal("exp", S.Euler { sampling_time_dist = "EXP" }.sampling_time_dist)
  end)

  it("rejects bad options with the sampler's name and the value", function()
    H.errors(function() S.Euler { num_sampling_steps = 0 } end, "moonflow.Euler", "num_sampling_steps", "0")
    H.errors(function() S.Heun { sampling_time_dist = "cosine" } end, "moonflow.Heun", "cosine")
    H.errors(function() S.Euler { sigma_min = 0.1 } end, "sigma_min does not apply to the uniform grid")
    H.errors(function() S.Euler { num_steps = 4 } end, "unknown option num_steps")
    H.errors(function() S.EDM { sigma_min = 1, sigma_max = 0.5 } end, "sigma_min < sigma_max")
    H.errors(function() S.Euler {}:sample_t(1) end, "moonflow.Euler:sample_t", "steps")
    local sit = SH.sit()
    local x = mf.zeros { 4, 2 }
    H.errors(function() S.Euler {}:sample(nil, {}, x) end, "moonflow.Euler:sample", "net must be an interface")
    H.errors(function() S.Euler {}:sample(nil, sit, "x") end, "x must be an f32 or f64 tensor")
    H.errors(function() S.Euler {}:sample(nil, sit, x, { guidance = 2 }) end, "unknown option guidance")
    H.errors(function() S.Euler {}:sample(nil, sit, x, { custom_timegrid = { 1 } }) end, "custom_timegrid")
    H.errors(function() S.Euler {}:sample(nil, sit, x, { guidance_scale = 2 }) end,
      "guidance_scale 2 needs labels cond.y")
    H.errors(function() S.Euler {}:sample(nil, sit, x, { guidance_scale = 0 / 0 }) end, "guidance_scale must be a finite number")
  end)
end)

describe("samplers: Euler and Heun from noise", function()
  local n = 32768
  local z = mf.Generator(21):normal { n, 2 }
  local sit = SH.sit()

  it("Euler (100 steps) reproduces the mixture's mean and covariance", function()
    -- allowance: Euler's bias is O(1/N); measured 0.012 (mean) and 0.051 (cov) at N = 100
    local N = 100
    local x = S.Euler { num_sampling_steps = N }:sample(nil, sit, z)
    SH.check_moments(x, gm, 2 / N, 10 / N, "Euler")
  end)

  it("Heun (20 steps) reproduces the mixture's mean and covariance", function()
    -- allowance O(1/N^2); measured 0.009 (mean) and 0.014 (cov) at N = 20
    local N = 20
    local x = S.Heun { num_sampling_steps = N }:sample(nil, sit, z)
    SH.check_moments(x, gm, 8 / N ^ 2, 12 / N ^ 2, "Heun")
  end)

  it("halving the step cuts Euler's error ~2x and Heun's ~4x (fixed noise, fine-grid reference)", function()
    local dt = fp64 and "f64" or "f32"
    local z0 = mf.Generator(5):normal({ 256, 2 }, { dtype = dt })
    local ref = S.Heun { num_sampling_steps = 1024 }:sample(nil, sit, z0)
    -- the median over samples of |x_N - x_ref|: robust to the rare sample
    -- near a basin boundary that a coarse grid sends to another mode
    local function err(s, N)
      local x = s:sample(nil, sit, z0, { num_sampling_steps = N })
      local e = (x - ref):square():sum(2):sqrt():tolist()
      table.sort(e)
      return e[#e // 2]
    end
    local e = {}
    for _, N in ipairs { 32, 64, 128 } do e[N] = err(S.Euler {}, N) end
    for _, N in ipairs { 32, 64 } do
      local r = e[N] / e[2 * N]
      assert(r > 1.8 and r < 2.2, ("Euler error ratio %d -> %d: %.3f (%g / %g)"):format(N, 2 * N, r, e[N], e[2 * N]))
    end
    local h = {}
    for _, N in ipairs { 16, 32, 64 } do h[N] = err(S.Heun {}, N) end
    for _, N in ipairs { 16, 32 } do
      local r = h[N] / h[2 * N]
      assert(r > 3.6 and r < 4.6, ("Heun error ratio %d -> %d: %.3f (%g / %g)"):format(N, 2 * N, r, h[N], h[2 * N]))
    end
    assert(h[32] < e[32] / 10, "Heun is far more accurate than Euler at 32 steps")
  end)

  it("custom_timegrid and num_sampling_steps override the grid; x is scaled by the first value", function()
    local z0 = mf.Generator(6):normal { 64, 2 }
    local s = S.Euler { num_sampling_steps = 7 }
    local a = s:sample(nil, sit, z0, { num_sampling_steps = 3 })
    local b = s:sample(nil, sit, z0, { custom_timegrid = { 1, 2 / 3, 1 / 3, 0 } })
    H.close(a:totable(), b:totable(), 1e-6, 1e-6)
    -- starting at 0.8 multiplies the noise by 0.8 first; one step to 0
    local c = s:sample(nil, sit, z0, { custom_timegrid = { 0.8, 0 } })
    local x8 = z0 * 0.8
    H.close(c:totable(), (x8 - gm:velocity(x8, 0.8) * 0.8):totable(), 1e-5, 1e-5)
  end)
end)

describe("samplers: guidance, callbacks, fusion", function()
  local B = 512
  local z = mf.Generator(8):normal { B, 2 }
  local y = mf.Generator(9):randint({ B }, 0, 3)

  it("guidance scale 1 equals the unguided result exactly, with no extra network call", function()
    for _, name in ipairs { "Euler", "Heun", "EulerMaruyama", "EDM" } do
      local net = gm:network(name == "EDM" and "edm" or "sit")
      local iface = name == "EDM" and mf.interfaces.EDM { network = net } or mf.interfaces.SiT { network = net }
      local s = S[name] { num_sampling_steps = 6, S_churn = name == "EDM" and 5 or nil }
      local a = s:sample(mf.Generator(1), iface, z, { cond = { y = y } })
      local calls = net.calls
      local b = s:sample(mf.Generator(1), iface, z, { cond = { y = y }, guidance_scale = 1 })
      assert.equal(calls, net.calls - calls, name .. " made extra calls")
      assert.same(a:totable(), b:totable())
      -- a label tensor as cond, as the interfaces take it
      assert.same(a:totable(), s:sample(mf.Generator(1), iface, z, { cond = y }):totable())
    end
  end)

  it("guided steps mix conditional and null-label predictions: u + s (c - u)", function()
    local sit = SH.sit()
    local x, t, tn, w = z * 0.7, 0.7, 0.45, 2.5
    local cond, null = { y = y }, { y = mf.full({ B }, 3, { dtype = "i32" }) }
    local function guided(xx, tt)
      local vc, vu = gm:velocity(xx, tt, cond), gm:velocity(xx, tt, null)
      return vu + (vc - vu) * w
    end
    local opts = { cond = cond, guidance_scale = w }
    -- Euler
    local e = S.Euler {}:forward(nil, sit, x, t, tn, opts)
    H.close(e:totable(), (x + guided(x, t) * (tn - t)):totable(), 1e-5, 1e-5, "Euler")
    -- Heun: x + h/2 (d(x, t) + d(x + h d(x, t), t_next))
    local h = tn - t
    local d1 = guided(x, t)
    local d2 = guided(x + d1 * h, tn)
    local hn = S.Heun {}:forward(nil, sit, x, t, tn, opts)
    H.close(hn:totable(), (x + (d1 + d2) * (h / 2)):totable(), 1e-5, 1e-5, "Heun")
    -- the unconditional call really is the whole mixture (null label 3)
    local u = gm:velocity(x, t, null)
    H.close(u:totable(), gm:velocity(x, t):totable(), 1e-6, 1e-6, "null label")
    -- a separate g_net with the same labels: guidance between two models
    local g2 = mf.oracle.GaussianMixture { means = { { 0, 0 }, { 1, 1 }, { -1, 0 } }, stds = 0.6 }
    local gsit = SH.sit(g2)
    local eg = S.Euler {}:forward(nil, sit, x, t, tn, { cond = cond, guidance_scale = w, g_net = gsit })
    local vc, vu = gm:velocity(x, t, cond), g2:velocity(x, t, null)
    H.close(eg:totable(), (x + (vu + (vc - vu) * w) * h):totable(), 1e-5, 1e-5, "g_net")
  end)

  it("marks its step times all_same, which VelocityMLP embeds once with the same result", function()
    local seen
    local spy = setmetatable({ pred = function(self, x, t, c) seen = t; return SH.sit():pred(x, t, c) end }, {})
    S.Euler { num_sampling_steps = 2 }:sample(nil, spy, z)
    assert.is_true(seen.all_same)
    local net = mf.nn.VelocityMLP { dim = 2, hidden = 32, depth = 2, generator = mf.Generator(1) }
    local t1 = mf.full({ B }, 0.37)
    local t2 = mf.full({ B }, 0.37)
    t2.all_same = true
    local a = mf.no_grad(function() return net(z, t1) end)
    local l1 = SH.launches(function() return mf.no_grad(function() return net(z, t1) end) end)
    local b = mf.no_grad(function() return net(z, t2) end)
    H.close(b:totable(), a:totable(), 1e-6, 1e-7)
    -- one embedding row: one copy kernel more, two B-row matrix products fewer
    assert.equal(l1 + 1, SH.launches(function() return mf.no_grad(function() return net(z, t2) end) end))
  end)

  it("calls back after each step with i, t, x and the denoised estimate", function()
    local sit = SH.sit()
    local seen = {}
    local s = S.Euler { num_sampling_steps = 5 }
    local out = s:sample(nil, sit, z, { callback = function(a) seen[#seen + 1] = a end })
    assert.equal(5, #seen)
    local grid = s:sample_t(6)
    for i, a in ipairs(seen) do
      assert.equal(i, a.i)
      assert.equal(5, a.steps)
      H.close(a.t, grid[i + 1], 1e-15, 0)
    end
    assert.same(out:totable(), seen[5].x:totable())
    -- from pure noise at t = 1, v = x - E[x]: the first denoised estimate x - t v is E[x]
    local m = gm:mean()
    local den = seen[1].denoised:totable()
    for i = 1, B, 97 do H.close(den[i], m, 1e-5, 1e-5, "denoised row " .. i) end
    -- Heun reports the estimate of its first evaluation too
    local hs = {}
    S.Heun { num_sampling_steps = 3 }:sample(nil, sit, z, { callback = function(a) hs[#hs + 1] = a end })
    assert.equal(3, #hs)
    H.close(hs[1].denoised:totable()[1], m, 1e-5, 1e-5)
  end)

  it("each update is one fused kernel, and a whole sample reads nothing back", function()
    local sit = SH.sit()
    local x = z * 0.6
    local tc = mf.full({ B }, 0.6)
    local P = SH.launches(function() return sit:pred(x, tc) end)
    local Sc = SH.launches(function() return sit:score(x, tc) end)
    local F = 1 -- a {B} time tensor: one fill
    assert.equal(F + P + 1, SH.launches(function() return S.Euler {}:forward(nil, sit, x, 0.6, 0.3) end), "Euler step")
    assert.equal(2 * (F + P) + 2, SH.launches(function() return S.Heun {}:forward(nil, sit, x, 0.6, 0.3) end), "Heun step")
    assert.equal(F + P + Sc + 1, SH.launches(function()
      return S.EulerMaruyama {}:forward(mf.Generator(0), sit, x, 0.6, 0.3)
    end), "Euler-Maruyama step with its noise")
    for _, s in ipairs { S.Euler { num_sampling_steps = 8 }, S.Heun { num_sampling_steps = 8 },
      S.EulerMaruyama { num_sampling_steps = 8 } } do
      local gen = mf.Generator(3)
      mf.reset_stats()
      local out = s:sample(gen, sit, z, { cond = { y = y }, guidance_scale = 2, callback = function() end })
      local st = mf.stats()
      assert.equal(0, st.reads, s.name .. " read back during sampling")
      assert.equal(0, st.writes, s.name .. " wrote from the host during sampling")
      assert(st.launches > 8)
      assert.equal(B, #out:totable())
    end
    -- EDM with churn (its noise is drawn in the update kernel) and EulerJump on MeanFlow
    local runs = {
      { S.EDM { num_sampling_steps = 8, S_churn = 5 }, mf.interfaces.EDM { network = gm:network("edm") } },
      { S.EulerJump { num_sampling_steps = 2 }, mf.interfaces.MeanFlow { network = gm:network("meanflow") } },
    }
    for _, r in ipairs(runs) do
      mf.reset_stats()
      r[1]:sample(mf.Generator(4), r[2], z, { cond = { y = y }, callback = function() end })
      local st = mf.stats()
      assert.equal(0, st.reads, r[1].name .. " read back during sampling")
      assert.equal(0, st.writes, r[1].name .. " wrote from the host during sampling")
    end
  end)
end)
