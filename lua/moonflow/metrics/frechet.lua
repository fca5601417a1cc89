-- Frechet distance between the Gaussians fitted to two sets of feature rows:
--   FD = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^1/2)
-- with mu the mean and S the unbiased covariance 1/(n - 1) sum (x - mu)(x - mu)^T
-- (numpy's np.cov, as the standard FID code). The moments are computed on the
-- device (one matmul each), the F x F matrices read back once, and
-- tr((S_a S_b)^1/2) = sum_k sqrt(max(l_k, 0)) over the eigenvalues of
-- S_a^1/2 S_b S_a^1/2 is taken in doubles through LAPACKE (src/linalg.c).
local core = require "moonflow.core"
local A = require "moonflow.autograd"

local M = {}

M.max_features = 4096 -- src/lua/l_linalg.c's bound (F x F doubles on the host)

local function fail(fn, fmt, ...) error(("moonflow.metrics.%s: " .. fmt):format(fn, ...), 3) end

local function shape_str(s) return "{" .. table.concat(s, ", ") .. "}" end

-- x {n, F} (more trailing dims are flattened) with n >= 2
local function rows(fn, what, x)
  if not A.is_tensor(x) then fail(fn, "%s must be a tensor of feature rows, got %s", what, type(x)) end
  local s = x:shape()
  if #s < 2 then fail(fn, "%s has shape %s, expected {n, F}", what, shape_str(s)) end
  if s[1] < 2 then fail(fn, "%s has %d row(s); a covariance needs at least 2", what, s[1]) end
  local dt = core.dtype(x)
  if dt ~= "f32" and dt ~= "f64" then fail(fn, "%s has dtype %s, expected f32 or f64", what, dt) end
  return #s == 2 and x or x:reshape({ s[1], -1 })
end

local function default_dtype() return core.device().fp64 and "f64" or "f32" end

-- moments(x[, {dtype}]) -> mu {F}, cov {F, F} on the device: mu = mean of the
-- rows, cov = Xc^T Xc / (n - 1) with Xc = X - mu
function M.moments(x, opts)
  local a = rows("moments", "x", x)
  local dt = opts and opts.dtype or default_dtype()
  return A.no_grad(function()
    if core.dtype(a) ~= dt then a = a:to(dt) end
    local n = a:shape()[1]
    local mu = a:mean(1)
    local xc = a - mu
    local cov = core.matmul(xc:transpose(1, 2), xc) / (n - 1)
    return mu, cov
  end)
end

-- frechet_from_moments(mu_a, cov_a, mu_b, cov_b) -> fd, tr((S_a S_b)^1/2)
function M.frechet_from_moments(mu_a, cov_a, mu_b, cov_b)
  return core.linalg_frechet(mu_a:contiguous(), cov_a:contiguous(), mu_b:contiguous(), cov_b:contiguous())
end

-- frechet_distance(a {n, F}, b {m, F}[, {dtype = f64 if the device has it}])
-- -> FD (a number), and tr((S_a S_b)^1/2) beside it
function M.frechet_distance(a, b, opts)
  local fn = "frechet_distance"
  a, b = rows(fn, "feats_a", a), rows(fn, "feats_b", b)
  local fa, fb = a:shape()[2], b:shape()[2]
  if fa ~= fb then fail(fn, "feats_a has %d features per row, feats_b has %d", fa, fb) end
  if fa > M.max_features then fail(fn, "%d features per row, at most %d are supported", fa, M.max_features) end
  local mu_a, cov_a = M.moments(a, opts)
  local mu_b, cov_b = M.moments(b, opts)
  local fd, trs = M.frechet_from_moments(mu_a, cov_a, mu_b, cov_b)
  return fd, trs
end

return M
