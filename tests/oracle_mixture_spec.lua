-- mf.oracle.GaussianMixture: sampling, and the exact fields of the noised
-- marginals against Lua doubles, autograd, Tweedie and the continuity equation.
local mf = require "moonflow"
local H = require "helpers"

local fp64 = mf.device().fp64
local DT = fp64 and "f64" or "f32"
local TOL = fp64 and 1e-9 or 2e-4 -- relative; f32 keeps ~1e-6 per op

local spec = { means = { { -2, 0 }, { 2, 1 }, { 0, -1.5 } }, stds = { 0.5, 0.3, 0.4 }, weights = { 0.3, 0.5, 0.2 } }
local gm = mf.oracle.GaussianMixture(spec)

-- Lua-double reference of the linear path x_t = (1 - t) x + t n at one point:
-- component k of p_t is N(a mu_k, V_k I), a = 1 - t, V_k = a^2 s_k^2 + t^2.
local function ref(x, t, only)
  local K, D = #spec.means, #x
  local a = 1 - t
  local l, V, m = {}, {}, -math.huge
  for k = 1, K do
    if only == nil or only == k - 1 or only == K then
      V[k] = a * a * spec.stds[k] ^ 2 + t * t
      local sq = 0
      for d = 1, D do sq = sq + (x[d] - a * spec.means[k][d]) ^ 2 end
      l[k] = math.log(gm.weights[k]) - D / 2 * math.log(2 * math.pi * V[k]) - sq / (2 * V[k])
      m = math.max(m, l[k])
    end
  end
  local Z = 0
  for k in pairs(l) do Z = Z + math.exp(l[k] - m) end
  local score, pm, v = {}, {}, {}
  for d = 1, D do score[d], pm[d], v[d] = 0, 0, 0 end
  for k in pairs(l) do
    local r = math.exp(l[k] - m) / Z
    local s2 = spec.stds[k] ^ 2
    for d = 1, D do
      local dk = x[d] - a * spec.means[k][d]
      score[d] = score[d] - r * dk / V[k]
      pm[d] = pm[d] + r * (spec.means[k][d] + a * s2 / V[k] * dk)
      -- E[n - x | x_t, k] = (t - a s^2) / V (x_t - a mu) - mu
      v[d] = v[d] + r * ((t - a * s2) / V[k] * dk - spec.means[k][d])
    end
  end
  return m + math.log(Z), score, pm, v
end

-- f applied to each row of a list of rows
local function each(f, rows)
  local out = {}
  for i, p in ipairs(rows) do out[i] = f(p) end
  return out
end

local xs = { { 0.3, -0.2 }, { -2.5, 0.4 }, { 2.2, 1.1 }, { 8, -7 }, { -40, 60 }, { 0.9, -1.3 } }
local ts = { 0, 1e-7, 0.05, 0.5, 0.93, 1 - 1e-7, 1 }

describe("oracle GaussianMixture", function()
  it("validates its options", function()
    H.errors(function() mf.oracle.GaussianMixture { means = {}, stds = {} } end, "moonflow.oracle.GaussianMixture", "means")
    H.errors(function() mf.oracle.GaussianMixture { means = { { 0, 1 }, { 1 } }, stds = 1 } end, "means[2] has 1 values")
    H.errors(function() mf.oracle.GaussianMixture { means = { { 0 } }, stds = { -1 } } end, "stds[1] is -1")
    H.errors(function() mf.oracle.GaussianMixture { means = { { 0 }, { 1 } }, stds = 1, weights = { 1 } } end,
      "weights has 1 entries for 2 components")
    H.errors(function() gm:velocity(mf.zeros({ 4, 3 }, { dtype = DT }), 0.5) end, "expected {B, 2}")
    H.errors(function() gm:velocity(mf.zeros({ 4, 2 }, { dtype = DT }), mf.zeros({ 3 }, { dtype = DT })) end,
      "t has 3 values for a batch of 4")
    H.errors(function() gm:average_velocity(mf.zeros({ 4, 2 }), 0.5, 0.2) end, "needs a single component")
  end)

  it("knows its moments in closed form", function()
    local m, C = gm:moments(0)
    H.close(m, { 0.4, 0.2 }, 1e-14, 1e-14)
    -- sum_k w_k (s_k^2 I + mu_k mu_k^T) - m m^T
    local c11 = 0.3 * (0.25 + 4) + 0.5 * (0.09 + 4) + 0.2 * 0.16 - 0.16
    local c12 = 0.3 * 0 + 0.5 * 2 + 0 - 0.08
    local c22 = 0.3 * 0.25 + 0.5 * (0.09 + 1) + 0.2 * (0.16 + 2.25) - 0.04
    H.close(C, { { c11, c12 }, { c12, c22 } }, 1e-13, 1e-13)
    local mt, Ct = gm:moments(1) -- pure noise
    H.close(mt, { 0, 0 }, 0, 1e-15)
    H.close(Ct, { { 1, 0 }, { 0, 1 } }, 1e-14, 1e-15)
  end)

  it("samples the mixture: moments and labels within 5 standard errors", function()
    local n = 200000
    local x, y = gm:sample(n, mf.Generator(11), { dtype = DT })
    assert.same({ n, 2 }, x:shape())
    assert.equal("i32", y:dtype())
    local m, C = gm:moments(0)
    local xm = x:mean(1):totable()
    for d = 1, 2 do
      assert(math.abs(xm[d] - m[d]) < 5 * math.sqrt(C[d][d] / n), ("mean %d: %g vs %g"):format(d, xm[d], m[d]))
    end
    -- sample covariance vs C, with Var[(x_i - m_i)(x_j - m_j)] from the mixture's 4th moments
    local xc = x - mf.tensor({ m }, { dtype = DT })
    local S = (mf.matmul(xc:t(), xc) / n):totable()
    for i = 1, 2 do
      for j = 1, 2 do
        local e4 = 0
        for k = 1, 3 do
          local s2 = spec.stds[k] ^ 2
          local ai, aj = spec.means[k][i] - m[i], spec.means[k][j] - m[j]
          e4 = e4 + gm.weights[k] * (i == j and ai ^ 4 + 6 * ai * ai * s2 + 3 * s2 * s2 or (ai * ai + s2) * (aj * aj + s2))
        end
        local se = math.sqrt((e4 - C[i][j] ^ 2) / n)
        assert(math.abs(S[i][j] - C[i][j]) < 5 * se, ("cov %d%d: %g vs %g (se %g)"):format(i, j, S[i][j], C[i][j], se))
      end
    end
    -- label frequencies: binomial standard errors
    local counts = { 0, 0, 0 }
    for _, v in ipairs(y:tolist()) do counts[v + 1] = counts[v + 1] + 1 end
    for k = 1, 3 do
      local p = gm.weights[k]
      assert(math.abs(counts[k] / n - p) < 5 * math.sqrt(p * (1 - p) / n), "label " .. k)
    end
  end)

  it("gives the exact log-density, score, posterior mean and velocity of the linear path", function()
    for _, t in ipairs(ts) do
      local x = mf.tensor(xs, { dtype = DT })
      local tv = mf.full({ #xs }, t, { dtype = DT })
      local lp, sc, pm, v = gm:log_density(x, tv):totable(), gm:score(x, tv):totable(),
          gm:posterior_mean(x, tv):totable(), gm:velocity(x, t):totable()
      for i, p in ipairs(xs) do
        local rl, rs, rp, rv = ref(p, t)
        local what = ("t=%g x=(%g,%g)"):format(t, p[1], p[2])
        H.close(lp[i], rl, TOL, TOL, "log p " .. what)
        H.close(sc[i], rs, TOL, TOL, "score " .. what)
        H.close(pm[i], rp, TOL, TOL, "E[x|x_t] " .. what)
        H.close(v[i], rv, TOL, TOL, "velocity " .. what)
      end
    end
  end)

  it("one fused kernel per field (no differentiation) agrees with the differentiable ops", function()
    local ops = mf.oracle.GaussianMixture { means = spec.means, stds = spec.stds, weights = spec.weights, fused = false }
    local x = mf.tensor(xs, { dtype = DT })
    local y = mf.tensor({ 0, 3, 2, 1, 3, 5 }, { dtype = "i32" }) -- 5: not a label (NaN)
    local t = mf.tensor({ 0, 1e-7, 0.3, 0.8, 1 - 1e-7, 1 }, { dtype = DT })
    local sg = mf.tensor({ 1e-4, 0.05, 0.7, 3, 80, 0.2 }, { dtype = DT })
    for _, c in ipairs { {}, { y = y } } do
      for _, f in ipairs { "velocity", "score", "posterior_mean" } do
        H.close(gm[f](gm, x, t, c):totable(), ops[f](ops, x, t, c):totable(), TOL, TOL, f)
      end
      for _, f in ipairs { "edm_denoiser", "edm_score" } do
        H.close(gm[f](gm, x, sg, c):totable(), ops[f](ops, x, sg, c):totable(), TOL, TOL, f)
      end
      H.close(gm:edm_raw(x, sg, 0.7, c):totable(), ops:edm_raw(x, sg, 0.7, c):totable(), TOL, TOL, "edm_raw")
    end
    mf.reset_stats()
    gm:velocity(x, t)
    assert.equal(1, mf.stats().launches)
  end)

  it("has the closed forms at the ends: v = -x at t = 0, v = x - E[x] and score = -x at t = 1", function()
    local x = mf.tensor(xs, { dtype = DT })
    H.close(gm:velocity(x, 0):totable(), H.map(function(a) return -a end, xs), TOL, TOL)
    local m = gm:mean()
    H.close(gm:velocity(x, 1):totable(), each(function(p) return { p[1] - m[1], p[2] - m[2] } end, xs), TOL, TOL)
    H.close(gm:score(x, 1):totable(), H.map(function(a) return -a end, xs), TOL, TOL)
  end)

  it("stays finite far from every component and at t = 0 and 1 in f32", function()
    local x = mf.tensor({ { 1e3, -1e3 }, { -300, 0 }, { 0, 0 } })
    for _, t in ipairs { 0, 1e-6, 0.5, 1 - 1e-6, 1 } do
      for _, f in ipairs { "score", "velocity", "posterior_mean", "log_density" } do
        for _, v in ipairs(H.flatten(gm[f](gm, x, t):totable())) do
          assert(v == v and math.abs(v) < math.huge, ("%s at t=%g is %s"):format(f, t, tostring(v)))
        end
      end
    end
    -- far out, the nearest component (by the scaled distance) takes all responsibility
    H.close(gm:posterior_mean(mf.tensor({ { 1e3, -1e3 } }), 0):totable(), { { 1e3, -1e3 } }, 1e-5)
  end)

  if fp64 then
    it("score is the gradient of the log-density (backward through the oracle)", function()
      for _, t in ipairs { 0.02, 0.4, 0.97 } do
        local x = mf.tensor(xs, { dtype = "f64" }):requires_grad()
        gm:log_density(x, t):sum():backward()
        H.close(x.grad:totable(), gm:score(mf.tensor(xs, { dtype = "f64" }), t):totable(), 1e-10, 1e-12, "t=" .. t)
      end
    end)

    it("the velocity satisfies the continuity equation d/dt log p + div v + v . score = 0", function()
      local x = mf.tensor(xs, { dtype = "f64" })
      local B = #xs
      for _, t in ipairs { 0.1, 0.5, 0.9 } do
        local tv = mf.full({ B }, t, { dtype = "f64" })
        -- d/dt log p_t(x) by forward mode through the oracle
        local _, dlp = mf.autograd.jvp(function(tt) return gm:log_density(x, tt) end, tv, mf.ones({ B }, { dtype = "f64" }))
        -- div v = sum_d (d v_d / d x_d), one jvp per coordinate direction
        local div = mf.zeros({ B }, { dtype = "f64" })
        for d = 1, 2 do
          local e = {}
          for i = 1, B do e[i] = { d == 1 and 1 or 0, d == 2 and 1 or 0 } end
          local _, dv = mf.autograd.jvp(function(xx) return gm:velocity(xx, tv) end, x, mf.tensor(e, { dtype = "f64" }))
          div = div + dv:narrow(2, d, 1):reshape { B }
        end
        local vs = (gm:velocity(x, tv) * gm:score(x, tv)):sum(2)
        local res = (dlp + div + vs):totable()
        H.close(res, H.map(function() return 0 end, res), 0, 1e-9, "t=" .. t)
      end
    end)
  end

  it("EDM path: Tweedie D = x + sigma^2 score, the score of p_sigma, F reconstructs D", function()
    local x = mf.tensor(xs, { dtype = DT })
    for _, sigma in ipairs { 1e-4, 0.05, 0.7, 80 } do
      local D = gm:edm_denoiser(x, sigma)
      local sc = gm:edm_score(x, sigma)
      H.close(D:totable(), (x + sc * (sigma * sigma)):totable(), TOL, TOL * math.max(1, sigma), "sigma " .. sigma)
      -- on the EDM path the components are N(mu_k, (s_k^2 + sigma^2) I): the linear
      -- path at t with V = a^2 s^2 + t^2 maps onto it by x_t / a, sigma = t / a
      local t = sigma / (1 + sigma)
      local a = 1 - t
      H.close(sc:totable(), (gm:score(x * a, t) * a):totable(), 1e3 * TOL, 1e3 * TOL, "scaled score " .. sigma)
      for _, xsig in ipairs { 0.5, 1.3 } do
        local c_skip = xsig ^ 2 / (sigma ^ 2 + xsig ^ 2)
        local c_out = sigma * xsig / math.sqrt(sigma ^ 2 + xsig ^ 2)
        local F = gm:edm_raw(x, sigma, xsig)
        H.close((x * c_skip + F * c_out):totable(), D:totable(), TOL, TOL, "F sigma " .. sigma)
      end
    end
    if fp64 then
      local xg = mf.tensor(xs, { dtype = "f64" }):requires_grad()
      gm:edm_log_density(xg, 0.3):sum():backward()
      H.close(xg.grad:totable(), gm:edm_score(mf.tensor(xs, { dtype = "f64" }), 0.3):totable(), 1e-10, 1e-12)
    end
  end)

  it("labels select a component; the null label keeps the mixture", function()
    local x = mf.tensor(xs, { dtype = DT })
    local B = #xs
    for k = 0, 3 do
      local y = mf.full({ B }, k, { dtype = "i32" })
      local v = gm:velocity(x, 0.6, { y = y }):totable()
      local sc = gm:score(x, 0.6, { y = y }):totable()
      for i, p in ipairs(xs) do
        local _, rs, _, rv = ref(p, 0.6, k)
        H.close(v[i], rv, TOL, TOL, "label " .. k)
        H.close(sc[i], rs, TOL, TOL, "label " .. k)
      end
    end
  end)

  it("one Gaussian: the flow map integrates the velocity, u = (x_t - x_r)/(t - r), u(t, t) = v", function()
    local g1 = mf.oracle.GaussianMixture { means = { { 1.5, -0.5 } }, stds = { 0.35 } }
    local x = mf.tensor(xs, { dtype = DT })
    local B = #xs
    -- the flow map against RK4 on the exact velocity in Lua doubles (t = 0.9 -> 0.2)
    local function vel(p, t)
      local a, s2 = 1 - t, 0.35 ^ 2
      local V = a * a * s2 + t * t
      return { (t - a * s2) / V * (p[1] - a * 1.5) - 1.5, (t - a * s2) / V * (p[2] + a * 0.5) + 0.5 }
    end
    local xr = g1:flow_map(x, 0.9, 0.2):totable()
    for i, p in ipairs(xs) do
      local y, t, h = { p[1], p[2] }, 0.9, -0.7 / 400
      for _ = 1, 400 do
        local k1 = vel(y, t)
        local k2 = vel({ y[1] + h / 2 * k1[1], y[2] + h / 2 * k1[2] }, t + h / 2)
        local k3 = vel({ y[1] + h / 2 * k2[1], y[2] + h / 2 * k2[2] }, t + h / 2)
        local k4 = vel({ y[1] + h * k3[1], y[2] + h * k3[2] }, t + h)
        for d = 1, 2 do y[d] = y[d] + h / 6 * (k1[d] + 2 * k2[d] + 2 * k3[d] + k4[d]) end
        t = t + h
      end
      H.close(xr[i], y, 1e3 * TOL, 1e3 * TOL, "flow map " .. i)
    end
    local t = mf.tensor({ 0.9, 0.5, 1, 0.3, 0.7, 0.01 }, { dtype = DT })
    local r = mf.tensor({ 0.2, 0.5, 0, 0.1, 0.7 - 1e-9, 0 }, { dtype = DT })
    local u = g1:average_velocity(x, t, r):totable()
    local xr2 = g1:flow_map(x, t, r):totable()
    local tt, rr = t:totable(), r:totable()
    for i = 1, B do
      if tt[i] - rr[i] > 0.05 then
        H.close(u[i], { (xs[i][1] - xr2[i][1]) / (tt[i] - rr[i]), (xs[i][2] - xr2[i][2]) / (tt[i] - rr[i]) }, 100 * TOL, 100 * TOL, "u " .. i)
      end
    end
    -- r = t: the instantaneous velocity, without cancellation
    local v = g1:velocity(x, t):totable()
    H.close(u[2], v[2], TOL, TOL, "u(t, t)")
    H.close(u[5], v[5], math.max(1e-7, TOL), math.max(1e-7, TOL), "u(t, t - 1e-9)")
    -- one Gaussian from pure noise in one jump: x_0 = mu + s n
    local n = mf.tensor(xs, { dtype = DT })
    H.close((n - g1:average_velocity(n, 1, 0)):totable(),
      each(function(p) return { 1.5 + 0.35 * p[1], -0.5 + 0.35 * p[2] } end, xs), TOL, TOL)
  end)
end)
