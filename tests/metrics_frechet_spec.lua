-- mf.metrics.frechet_distance against references in Lua doubles:
--   the same samples' moments (mean, covariance with 1/(n - 1)) put into
--   FD = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^1/2), the trace of the
--   square root by the 2 x 2 closed form sqrt(tr M + 2 sqrt(det M)) or by the
--   Denman-Beavers iteration (Y <- (Y + Z^-1)/2, Z <- (Z + Y^-1)/2 -> M^1/2)
--   for larger F, neither sharing code with LAPACK;
--   the population FD of two Gaussians with known mu, Sigma, within a
--   tolerance that follows from the sample size.
local mf = require "moonflow"
local H = require "helpers"

local dt = mf.device().fp64 and "f64" or "f32"

-- Lua moments of rows (a table of F-vectors): mean, covariance / (n - 1)
local function moments(rows)
  local n, F = #rows, #rows[1]
  local mu = {}
  for j = 1, F do
    local s = 0
    for i = 1, n do s = s + rows[i][j] end
    mu[j] = s / n
  end
  local cov = {}
  for j = 1, F do
    cov[j] = {}
    for k = 1, F do
      local s = 0
      for i = 1, n do s = s + (rows[i][j] - mu[j]) * (rows[i][k] - mu[k]) end
      cov[j][k] = s / (n - 1)
    end
  end
  return mu, cov
end

local function matmul(a, b)
  local n, m, p = #a, #b, #b[1]
  local c = {}
  for i = 1, n do
    c[i] = {}
    for j = 1, p do
      local s = 0
      for k = 1, m do s = s + a[i][k] * b[k][j] end
      c[i][j] = s
    end
  end
  return c
end

-- Gauss-Jordan inverse with partial pivoting
local function inverse(a)
  local n = #a
  local m = {}
  for i = 1, n do
    m[i] = {}
    for j = 1, n do m[i][j] = a[i][j] end
    for j = 1, n do m[i][n + j] = i == j and 1 or 0 end
  end
  for c = 1, n do
    local p = c
    for r = c + 1, n do if math.abs(m[r][c]) > math.abs(m[p][c]) then p = r end end
    m[c], m[p] = m[p], m[c]
    local d = m[c][c]
    for j = 1, 2 * n do m[c][j] = m[c][j] / d end
    for r = 1, n do
      if r ~= c then
        local f = m[r][c]
        for j = 1, 2 * n do m[r][j] = m[r][j] - f * m[c][j] end
      end
    end
  end
  local inv = {}
  for i = 1, n do
    inv[i] = {}
    for j = 1, n do inv[i][j] = m[i][n + j] end
  end
  return inv
end

-- tr(M^1/2) for M with positive real eigenvalues (Denman-Beavers)
local function trace_sqrt(m)
  local n = #m
  local y, z = m, {}
  for i = 1, n do
    z[i] = {}
    for j = 1, n do z[i][j] = i == j and 1 or 0 end
  end
  for _ = 1, 60 do
    local yi, zi = inverse(y), inverse(z)
    local y2, z2 = {}, {}
    for i = 1, n do
      y2[i], z2[i] = {}, {}
      for j = 1, n do
        y2[i][j] = 0.5 * (y[i][j] + zi[i][j])
        z2[i][j] = 0.5 * (z[i][j] + yi[i][j])
      end
    end
    y, z = y2, z2
  end
  local t = 0
  for i = 1, n do t = t + y[i][i] end
  return t
end

local function fd_closed(mu_a, ca, mu_b, cb, trs)
  local d2, tr = 0, 0
  for j = 1, #mu_a do
    d2 = d2 + (mu_a[j] - mu_b[j]) ^ 2
    tr = tr + ca[j][j] + cb[j][j]
  end
  return d2 + tr - 2 * trs
end

-- rows x = mu + z L^T for z ~ N(0, I) drawn on the device
local function gaussian(g, n, mu, L)
  local z = g:normal({ n, #mu }, { dtype = dt })
  return mf.matmul(z, mf.tensor(L, dt):transpose(1, 2)) + mf.tensor(mu, dt)
end

describe("metrics.frechet_distance", function()
  it("equals the closed form of the same samples' moments (F = 2: sqrt(tr M + 2 sqrt(det M)))", function()
    local g = mf.Generator(3)
    local a = gaussian(g, 500, { 0.5, -1 }, { { 1, 0 }, { 0.6, 0.8 } })
    local b = gaussian(g, 300, { -0.2, 0.3 }, { { 2, 0 }, { -0.5, 0.4 } })
    local mu_a, ca = moments(a:totable())
    local mu_b, cb = moments(b:totable())
    local m = matmul(ca, cb)
    local det = m[1][1] * m[2][2] - m[1][2] * m[2][1]
    local trs = math.sqrt(m[1][1] + m[2][2] + 2 * math.sqrt(det))
    local want = fd_closed(mu_a, ca, mu_b, cb, trs)
    local fd, got_trs = mf.metrics.frechet_distance(a, b)
    local rtol = dt == "f64" and 1e-9 or 1e-4
    H.close(fd, want, rtol, 0, "fd")
    H.close(got_trs, trs, rtol, 0, "tr sqrt")
    assert.is_true(want > 1) -- the means differ by ~1.5: a real distance
  end)

  it("equals the closed form of the same samples' moments for F = 5 (non-commuting covariances)", function()
    local g = mf.Generator(11)
    local F = 5
    local La, Lb = H.rand_table({ F, F }, 5, -1, 1), H.rand_table({ F, F }, 6, -1, 1)
    for i = 1, F do La[i][i], Lb[i][i] = La[i][i] + 2, Lb[i][i] + 1.5 end
    local a = gaussian(g, 400, H.rand_table({ F }, 7), La)
    local b = gaussian(g, 700, H.rand_table({ F }, 8), Lb)
    local mu_a, ca = moments(a:totable())
    local mu_b, cb = moments(b:totable())
    local trs = trace_sqrt(matmul(ca, cb))
    local want = fd_closed(mu_a, ca, mu_b, cb, trs)
    local fd, got_trs = mf.metrics.frechet_distance(a, b)
    local rtol = dt == "f64" and 1e-8 or 1e-4
    H.close(got_trs, trs, rtol, 0, "tr sqrt")
    H.close(fd, want, rtol, 0, "fd")
    -- f32 features give the same number to f32 accuracy
    H.close(mf.metrics.frechet_distance(a:to("f32"), b:to("f32")), want, 1e-4, 0, "fd of f32 features")
  end)

  -- Population FD of N(mu_a, Sa) and N(mu_b, Sb) with Sa = Q diag(sa^2) Q^T,
  -- Sb = Q diag(sb^2) Q^T: FD = |mu_a - mu_b|^2 + sum_k (sa_k - sb_k)^2. Per
  -- axis k the estimate errs by 2 d e + e^2 + 2 (sa - sb) e' + e'^2 with
  -- Var e = (sa^2 + sb^2)/n (means), Var e' = (sa^2 + sb^2)/(2n) (stds): the
  -- tolerance is the bias sum (sa^2 + sb^2)(3/2)/n plus F^2 max s^2 / n for the
  -- off-diagonal estimates, plus 6 standard deviations of the linear terms.
  local function population_case(Q, seed)
    local F, n = 3, 20000
    local mu_a, mu_b = { 0.3, -0.5, 1 }, { -0.2, 0.1, 0.6 }
    local sa, sb = { 1, 0.5, 2 }, { 1.5, 0.5, 1 }
    local La, Lb = {}, {}
    for i = 1, F do
      La[i], Lb[i] = {}, {}
      for j = 1, F do La[i][j], Lb[i][j] = Q[i][j] * sa[j], Q[i][j] * sb[j] end
    end
    local g = mf.Generator(seed)
    local a, b = gaussian(g, n, mu_a, La), gaussian(g, n, mu_b, Lb)
    local want, bias, var, smax = 0, 0, 0, 0
    for k = 1, F do
      local d = mu_a[k] - mu_b[k]
      want = want + d * d + (sa[k] - sb[k]) ^ 2
      local s2 = sa[k] ^ 2 + sb[k] ^ 2
      bias = bias + 1.5 * s2 / n
      var = var + 4 * d * d * s2 / n + 4 * (sa[k] - sb[k]) ^ 2 * s2 / (2 * n)
      smax = math.max(smax, sa[k] ^ 2, sb[k] ^ 2)
    end
    local tol = bias + F * F * smax / n + 6 * math.sqrt(var)
    local fd = mf.metrics.frechet_distance(a, b)
    assert.is_true(math.abs(fd - want) <= tol, ("FD %.6f, population %.6f, tolerance %.6f"):format(fd, want, tol))
    assert.is_true(tol < 0.1 * want) -- the check can fail
  end

  it("matches the population FD of Gaussians with diagonal covariances", function()
    population_case({ { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 } }, 21)
  end)

  it("matches the population FD of Gaussians with non-diagonal covariances", function()
    -- a rotation: Q = rotation by 0.6 about (1, 1, 1)/sqrt 3 (Rodrigues)
    local c, s, u = math.cos(0.6), math.sin(0.6), 1 / math.sqrt(3)
    local k = { { 0, -u, u }, { u, 0, -u }, { -u, u, 0 } }
    local Q = {}
    for i = 1, 3 do
      Q[i] = {}
      for j = 1, 3 do Q[i][j] = (i == j and c or 0) + s * k[i][j] + (1 - c) * u * u end
    end
    population_case(Q, 22)
  end)

  it("is 0 for a set against itself and symmetric", function()
    local g = mf.Generator(5)
    local a = gaussian(g, 1000, { 1, 2, 3, 4 }, H.rand_table({ 4, 4 }, 9))
    local b = gaussian(g, 800, { 0, 2, 3, 5 }, H.rand_table({ 4, 4 }, 10))
    local _, trs = mf.metrics.frechet_distance(a, a)
    local self = mf.metrics.frechet_distance(a, a)
    assert.is_true(math.abs(self) <= 1e-6 * trs, ("FD(a, a) = %g, tr = %g"):format(self, trs))
    local ab, ba = mf.metrics.frechet_distance(a, b), mf.metrics.frechet_distance(b, a)
    assert.is_true(ab > 0.5)
    H.close(ba, ab, 1e-6, 0, "symmetry")
  end)

  it("names the problem: mismatched feature dims, too few rows, non-tensors, more dims", function()
    local a = mf.zeros({ 4, 3 })
    H.errors(function() mf.metrics.frechet_distance(a, mf.zeros({ 4, 5 })) end, "moonflow.metrics.frechet_distance",
      "feats_a has 3 features per row, feats_b has 5")
    H.errors(function() mf.metrics.frechet_distance(mf.zeros({ 1, 3 }), a) end, "moonflow.metrics.frechet_distance",
      "feats_a has 1 row(s); a covariance needs at least 2")
    H.errors(function() mf.metrics.frechet_distance(a, {}) end, "moonflow.metrics.frechet_distance",
      "feats_b must be a tensor")
    H.errors(function() mf.metrics.frechet_distance(mf.zeros({ 4 }), a) end, "feats_a has shape {4}, expected {n, F}")
    H.errors(function() mf.core.linalg_frechet(mf.zeros({ 3 }), mf.zeros({ 3, 3 }), mf.zeros({ 3 }), mf.zeros({ 3, 2 })) end,
      "moonflow.linalg_frechet", "argument 4 has shape {3, 2}, expected a covariance {3, 3}")
    -- images {n, C, H, W} are rows of C H W features
    local x = mf.Generator(1):normal({ 6, 1, 2, 2 })
    H.close(mf.metrics.frechet_distance(x, x), 0, 0, 1e-6)
  end)

  it("a nan in the features is an error, not a number", function()
    local a = mf.Generator(2):normal({ 10, 2 })
    local b = mf.tensor({ { 0 / 0, 1 }, { 1, 2 }, { 3, 4 } })
    H.errors(function() mf.metrics.frechet_distance(a, b) end, "moonflow.linalg_frechet", "inf or nan")
  end)
end)
