-- Shared by the samplers specs: the test mixture, its interfaces, and a
-- moment check whose tolerance follows from the sample size (standard errors
-- from the mixture's exact 4th moments) plus a stated discretization allowance.
local mf = require "moonflow"

local S = {}

S.spec = { means = { { -2, 0 }, { 2, 1 }, { 0, -1.5 } }, stds = { 0.5, 0.3, 0.4 }, weights = { 0.3, 0.5, 0.2 } }
S.gm = mf.oracle.GaussianMixture(S.spec)

function S.sit(gm) gm = gm or S.gm; return mf.interfaces.SiT { network = gm:network("sit") } end
function S.edm(gm, xs)
  gm = gm or S.gm
  xs = xs or 0.5
  return mf.interfaces.EDM { network = gm:network("edm", { x_sigma = xs }), x_sigma = xs }
end

-- standard error of the sample covariance entry (i, j) about the exact mean m
local function cov_se(gm, m, C, i, j, n)
  local e4 = 0
  for k = 1, gm.num_components do
    local s2 = gm.stds[k] ^ 2
    local ai, aj = gm.means[k][i] - m[i], gm.means[k][j] - m[j]
    e4 = e4 + gm.weights[k] * (i == j and ai ^ 4 + 6 * ai * ai * s2 + 3 * s2 * s2 or (ai * ai + s2) * (aj * aj + s2))
  end
  return math.sqrt((e4 - C[i][j] ^ 2) / n)
end

-- Asserts that samples x {n, D} have the mixture's mean and covariance:
-- |error| <= 5 standard errors + bias (the allowance for the step count).
function S.check_moments(x, gm, bias_mean, bias_cov, what)
  local n, D = x:shape()[1], x:shape()[2]
  local m, C = gm:moments(0)
  local xm = x:mean(1):totable()
  local xc = x - mf.tensor({ m }, { dtype = x:dtype() })
  local Sx = (mf.matmul(xc:t(), xc) / n):totable()
  for d = 1, D do
    local tol = 5 * math.sqrt(C[d][d] / n) + bias_mean
    assert(math.abs(xm[d] - m[d]) <= tol,
      ("%s: mean[%d] = %.5f, exact %.5f, tolerance %.4f"):format(what, d, xm[d], m[d], tol))
  end
  for i = 1, D do
    for j = i, D do
      local tol = 5 * cov_se(gm, m, C, i, j, n) + bias_cov
      assert(math.abs(Sx[i][j] - C[i][j]) <= tol,
        ("%s: cov[%d][%d] = %.5f, exact %.5f, tolerance %.4f"):format(what, i, j, Sx[i][j], C[i][j], tol))
    end
  end
end

-- launches counted over fn()
function S.launches(fn)
  mf.reset_stats()
  local r = fn()
  return mf.stats().launches, r
end

return S
