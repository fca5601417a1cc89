-- mf.oracle: a Gaussian mixture whose noised marginals are known exactly,
-- so that interfaces and samplers are tested against exact answers.
--
--   p(x) = sum_k w_k N(x; mu_k, s_k^2 I)   (isotropic components, any dim D)
--
-- Every noised marginal is again a mixture, component k being N(a mu_k, V_k I):
--   linear path x_t = (1 - t) x + t n:  a = 1 - t, V_k = a^2 s_k^2 + t^2
--   EDM path    x_s = x + sigma n:      a = 1,     V_k = s_k^2 + sigma^2
-- The responsibilities r_k(x_t) = softmax_k(log w_k - D/2 log(2 pi V_k) - |x_t - a mu_k|^2 / (2 V_k))
-- are computed by log-sum-exp, and every quantity below is a responsibility-
-- weighted sum of per-component closed forms, built from differentiable
-- moonflow ops (backward and jvp work through them).
--
-- Labels: cond.y (i32 {B}, 0-based) selects component y; the null label K
-- (= num_classes) keeps the whole mixture, so guidance is exact too.
local mf = require "moonflow"
local A = require "moonflow.autograd"
local core = require "moonflow.core"

local O = {}
local GM = {}
GM.__index = GM
GM.__name = "moonflow.oracle.GaussianMixture"

local function fail(fn, msg, ...)
  error(("moonflow.oracle.%s: " .. msg):format(fn, ...), 3)
end

local function is_num(v) return type(v) == "number" and v == v and v > -math.huge and v < math.huge end

-- GaussianMixture{means = {{...}, ...}, stds = {...} | s, weights = {...}?}
function O.GaussianMixture(o)
  local fn = "GaussianMixture"
  if type(o) ~= "table" then fail(fn, "expected an options table {means, stds, weights}, got %s", type(o)) end
  local means = o.means
  if type(means) ~= "table" or #means == 0 then fail(fn, "means must be a non-empty list of points") end
  local K = #means
  local D = type(means[1]) == "table" and #means[1] or 0
  if D == 0 then fail(fn, "means[1] must be a non-empty list of numbers") end
  local mu = {}
  for k = 1, K do
    local m = means[k]
    if type(m) ~= "table" or #m ~= D then fail(fn, "means[%d] has %s values, means[1] has %d", k, type(m) == "table" and #m or type(m), D) end
    mu[k] = {}
    for d = 1, D do
      if not is_num(m[d]) then fail(fn, "means[%d][%d] is %s, not a finite number", k, d, tostring(m[d])) end
      mu[k][d] = m[d]
    end
  end
  local stds = o.stds
  if stds == nil then fail(fn, "stds is missing (one positive number per component)") end
  if type(stds) == "number" then
    local s = {}
    for k = 1, K do s[k] = stds end
    stds = s
  end
  if type(stds) ~= "table" or #stds ~= K then fail(fn, "stds has %s entries for %d components", type(stds) == "table" and #stds or type(stds), K) end
  local s = {}
  for k = 1, K do
    if not is_num(stds[k]) or stds[k] <= 0 then fail(fn, "stds[%d] is %s; each std must be a positive number", k, tostring(stds[k])) end
    s[k] = stds[k]
  end
  local weights = o.weights
  local w, total = {}, 0
  if weights == nil then
    for k = 1, K do w[k] = 1 end
  else
    if type(weights) ~= "table" or #weights ~= K then fail(fn, "weights has %s entries for %d components", type(weights) == "table" and #weights or type(weights), K) end
    for k = 1, K do
      if not is_num(weights[k]) or weights[k] <= 0 then fail(fn, "weights[%d] is %s; each weight must be a positive number", k, tostring(weights[k])) end
      w[k] = weights[k]
    end
  end
  for k = 1, K do total = total + w[k] end
  for k = 1, K do w[k] = w[k] / total end
  -- fused: when nothing is differentiated, each field is one kernel (core.oracle_field)
  return setmetatable({ means = mu, stds = s, weights = w, dim = D, num_components = K,
    num_classes = K, fused = o.fused ~= false, _c = {} }, GM)
end

------------------------------------------------------------ Lua moments
-- Mean and covariance (Lua tables) of component mixture N(a mu_k, V_k I).
local function moments(self, a, V)
  local D, K = self.dim, self.num_components
  local m = {}
  for d = 1, D do
    m[d] = 0
    for k = 1, K do m[d] = m[d] + self.weights[k] * a * self.means[k][d] end
  end
  local C = {}
  for i = 1, D do
    C[i] = {}
    for j = 1, D do
      local v = 0
      for k = 1, K do
        local ci, cj = a * self.means[k][i] - m[i], a * self.means[k][j] - m[j]
        v = v + self.weights[k] * (ci * cj + (i == j and V(k) or 0))
      end
      C[i][j] = v
    end
  end
  return m, C
end

-- mean, covariance of p_t on the linear path (t = 0: the data)
function GM:moments(t)
  t = t or 0
  local a = 1 - t
  return moments(self, a, function(k) return a * a * self.stds[k] ^ 2 + t * t end)
end
function GM:mean() return (self:moments(0)) end
function GM:covariance() return select(2, self:moments(0)) end
-- mean, covariance of x + sigma n
function GM:edm_moments(sigma)
  return moments(self, 1, function(k) return self.stds[k] ^ 2 + sigma * sigma end)
end

------------------------------------------------------------ device constants
-- Per-dtype constant tensors, made once: mu {K, D}, mu3 {1, K, D}, s2 {1, K},
-- logw {1, K}, ks {1, K}, sd {K, 1}, cw {1, K-1}, s2y {K+1, 1}, muy {K+1, D}
-- (s2y and muy have a NaN row for the null label, index K).
function GM:_const(dt)
  local c = self._c[dt]
  if c then return c end
  local K, D = self.num_components, self.dim
  local s2, lw, ks, sd, s2y = {}, {}, {}, {}, {}
  for k = 1, K do
    s2[k], lw[k], ks[k], sd[k], s2y[k] = self.stds[k] ^ 2, math.log(self.weights[k]), k - 1, { self.stds[k] }, { self.stds[k] ^ 2 }
  end
  s2y[K + 1] = { 0 / 0 } -- the null label: no closed-form average velocity
  local muy = { table.unpack(self.means, 1, K) }
  muy[K + 1] = {}
  for d = 1, D do muy[K + 1][d] = 0 / 0 end
  local cw = {}
  local acc = 0
  for k = 1, K - 1 do acc = acc + self.weights[k]; cw[k] = acc end
  c = {
    mu = mf.tensor(self.means, { dtype = dt }),
    s2 = mf.tensor({ s2 }, { dtype = dt }),
    logw = mf.tensor({ lw }, { dtype = dt }),
    ks = mf.tensor({ ks }, { dtype = dt }),
    sd = mf.tensor(sd, { dtype = dt }),
    cw = K > 1 and mf.tensor({ cw }, { dtype = dt }) or nil,
    s2y = mf.tensor(s2y, { dtype = dt }),
    muy = mf.tensor(muy, { dtype = dt }),
  }
  c.mu3 = c.mu:reshape { 1, K, D }
  self._c[dt] = c
  return c
end

------------------------------------------------------------ sampling
-- n samples {n, D} and their component labels (i32 {n}, 0-based), all drawn
-- on the device from generator g (default: mf's default generator).
function GM:sample(n, g, opts)
  if math.type(n) ~= "integer" or n < 1 then fail("sample", "n must be a positive integer, got %s", tostring(n)) end
  g = g or mf.default_generator()
  local dt = opts and opts.dtype or "f32"
  local c = self:_const(dt)
  return A.no_grad(function()
    local idx
    if self.num_components == 1 then
      idx = mf.zeros({ n }, { dtype = "i32" })
    else
      local u = g:uniform({ n, 1 }, { dtype = dt })
      idx = u:ge(c.cw):sum(2):to("i32") -- number of cumulative weights <= u
    end
    local z = g:normal({ n, self.dim }, { dtype = dt })
    return c.mu:index_select(1, idx) + c.sd:index_select(1, idx) * z, idx
  end)
end

------------------------------------------------------------ exact fields
-- x as {B, D} (any {B, ...} with D elements per row), and its original shape.
local function rows(self, x, fn)
  if not mf.is_tensor(x) then fail(fn, "x must be a tensor, got %s", type(x)) end
  local s = x:shape()
  local B = s[1] or 1
  local n = x:numel()
  if #s < 1 or B == 0 or n // B ~= self.dim or n % B ~= 0 then
    fail(fn, "x has shape {%s}, expected {B, %d}", table.concat(s, ", "), self.dim)
  end
  if #s == 2 then return x, s, B end
  return x:reshape { B, self.dim }, s, B
end

-- a time or noise level as a {B, 1} tensor of x's dtype
local function col(t, B, dt, fn, what)
  if type(t) == "number" then return mf.full({ B, 1 }, t, { dtype = dt }) end
  if not mf.is_tensor(t) then fail(fn, "%s must be a number or a {B} tensor, got %s", what, type(t)) end
  if t:numel() ~= B then fail(fn, "%s has %d values for a batch of %d", what, t:numel(), B) end
  if t:dtype() ~= dt then t = t:to(dt) end
  return t:reshape { B, 1 }
end

-- The posterior over components: diff {B, K, D} = x - a mu_k, r {B, K},
-- and a function giving log p(x) {B, 1} (computed only when asked).
function GM:_posterior(x, a, V, cond, dt)
  local c = self:_const(dt)
  local B, K, D = x:shape()[1], self.num_components, self.dim
  local x3 = x:reshape { B, 1, D }
  local diff = a and x3 - a:reshape { B, 1, 1 } * c.mu3 or x3 - c.mu3
  local sq = diff:square():sum(3)
  local logit = c.logw - (math.log(2 * math.pi) * D / 2 + V:log() * (D / 2)) - sq / (V * 2)
  local valid
  if cond and cond.y ~= nil then
    local y = cond.y
    if not mf.is_tensor(y) or y:numel() ~= B then fail("GaussianMixture", "cond.y must be an i32 {B} tensor of labels for a batch of %d", B) end
    local yf = y:to(dt):reshape { B, 1 }
    local allowed = yf:eq(c.ks) + yf:eq(K) -- component y, or all for the null label K
    logit = logit + (allowed - 1) * 1e30
    valid = allowed:max(2, true):detach()
    valid = valid / valid -- 1, or NaN for a label outside 0..K
  end
  local m = logit:max(2, true):detach() -- shift only: a constant to autograd
  local e = (logit - m):exp()
  local Z = e:sum(2, true)
  local r = e / Z
  if valid then r = r * valid end
  return diff, r, function() return m + Z:log() end, c
end

-- sum_k r_k (A_k diff_k + b mu_k) over {B, K} coefficient A and number b
local function combine(r, A_, diff, b, mu)
  local s = r:shape()
  local out = ((r * A_):reshape { s[1], s[2], 1 } * diff):sum(2)
  if b == 1 then out = out + mf.matmul(r, mu)
  elseif b == -1 then out = out - mf.matmul(r, mu)
  elseif b ~= 0 then out = out + mf.matmul(r * b, mu) end
  return out
end

local function linear(self, x, t, fn)
  local x2, shape, B = rows(self, x, fn)
  local dt = x:dtype()
  local tt = col(t, B, dt, fn, "t")
  local a = 1 - tt
  local V = a:square() * self:_const(dt).s2 + tt:square()
  return x2, shape, tt, a, V, dt
end

local function edm(self, x, sigma, fn)
  local x2, shape, B = rows(self, x, fn)
  local dt = x:dtype()
  local sg = col(sigma, B, dt, fn, "sigma")
  local V = sg:square() + self:_const(dt).s2
  return x2, shape, sg, V, dt
end

-- The fused kernel applies unless something is differentiated: grad
-- recording with an input that needs it, or a tangent (inside a jvp).
local function fusable(self, x, t)
  if not self.fused then return false end
  for _, v in ipairs { x, t } do
    if mf.is_tensor(v) then
      if v._tangent ~= nil then return false end
      if A.grad_enabled() and (v._node ~= nil or v._leaf) then return false end
    end
  end
  return true
end

-- field ("velocity", "score", "mean" or "raw", the kernel's names) of the
-- linear path (edm false) or the EDM path, in one kernel
function GM:_fused(field, edm, x_t, t, cond, fn, xs)
  local x, shape, B = rows(self, x_t, fn)
  local dt = x:dtype()
  local tv = col(t, B, dt, fn, edm and "sigma" or "t"):reshape { B }
  local y = cond and cond.y
  if y ~= nil and not (mf.is_tensor(y) and y:dtype() == "i32" and y:numel() == B) then
    fail(fn, "cond.y must be an i32 {B} tensor of labels for a batch of %d", B)
  end
  local c = self:_const(dt)
  return core.oracle_field(x, tv, y, c.mu, c.s2, c.logw, field, edm, xs):reshape(shape)
end

-- log p_t(x_t) {B}, linear path
function GM:log_density(x_t, t, cond)
  local x, _, tt, a, V, dt = linear(self, x_t, t, "log_density")
  local _, _, logp = self:_posterior(x, a, V, cond, dt)
  return logp():reshape { tt:shape()[1] }
end

-- grad log p_t(x_t) = sum_k r_k (-(x_t - a mu_k) / V_k)
function GM:score(x_t, t, cond)
  if fusable(self, x_t, t) then return self:_fused("score", false, x_t, t, cond, "score") end
  local x, shape, _, a, V, dt = linear(self, x_t, t, "score")
  local diff, r = self:_posterior(x, a, V, cond, dt)
  return combine(r, -V:recip(), diff, 0):reshape(shape)
end

-- E[x | x_t] = sum_k r_k (mu_k + a s_k^2 / V_k (x_t - a mu_k))
function GM:posterior_mean(x_t, t, cond)
  if fusable(self, x_t, t) then return self:_fused("mean", false, x_t, t, cond, "posterior_mean") end
  local x, shape, _, a, V, dt = linear(self, x_t, t, "posterior_mean")
  local diff, r, _, c = self:_posterior(x, a, V, cond, dt)
  return combine(r, a * c.s2 / V, diff, 1, c.mu):reshape(shape)
end

-- v = E[n - x | x_t] = sum_k r_k ((t - a s_k^2) / V_k (x_t - a mu_k) - mu_k)
function GM:velocity(x_t, t, cond)
  if fusable(self, x_t, t) then return self:_fused("velocity", false, x_t, t, cond, "velocity") end
  local x, shape, tt, a, V, dt = linear(self, x_t, t, "velocity")
  local diff, r, _, c = self:_posterior(x, a, V, cond, dt)
  return combine(r, (tt - a * c.s2) / V, diff, -1, c.mu):reshape(shape)
end

-- EDM: D(x; sigma) = E[x | x + sigma n] = sum_k r_k (mu_k + s_k^2 / V_k (x - mu_k))
function GM:edm_denoiser(x_s, sigma, cond)
  if fusable(self, x_s, sigma) then return self:_fused("mean", true, x_s, sigma, cond, "edm_denoiser") end
  local x, shape, _, V, dt = edm(self, x_s, sigma, "edm_denoiser")
  local diff, r, _, c = self:_posterior(x, nil, V, cond, dt)
  return combine(r, c.s2 / V, diff, 1, c.mu):reshape(shape)
end

-- EDM: grad log p_sigma = (D - x) / sigma^2 = sum_k r_k (-(x - mu_k) / V_k)
function GM:edm_score(x_s, sigma, cond)
  if fusable(self, x_s, sigma) then return self:_fused("score", true, x_s, sigma, cond, "edm_score") end
  local x, shape, _, V, dt = edm(self, x_s, sigma, "edm_score")
  local diff, r = self:_posterior(x, nil, V, cond, dt)
  return combine(r, -V:recip(), diff, 0):reshape(shape)
end

-- EDM: log p_sigma(x) {B}
function GM:edm_log_density(x_s, sigma, cond)
  local x, _, sg, V, dt = edm(self, x_s, sigma, "edm_log_density")
  local _, _, logp = self:_posterior(x, nil, V, cond, dt)
  return logp():reshape { sg:shape()[1] }
end

-- EDM raw network output F with D = c_skip x + c_out F for data std xs:
--   c_skip = xs^2 / (sigma^2 + xs^2), c_out = sigma xs / sqrt(sigma^2 + xs^2), so
--   F = (D - c_skip x) / c_out
--     = sigma / (xs sqrt(sigma^2 + xs^2)) sum_k r_k (mu_k + (s_k^2 - xs^2) / V_k (x - mu_k)),
-- the form without cancellation as sigma -> 0.
function GM:edm_raw(x_s, sigma, x_sigma, cond)
  if fusable(self, x_s, sigma) then return self:_fused("raw", true, x_s, sigma, cond, "edm_raw", x_sigma) end
  local x, shape, sg, V, dt = edm(self, x_s, sigma, "edm_raw")
  local diff, r, _, c = self:_posterior(x, nil, V, cond, dt)
  local xs2 = x_sigma * x_sigma
  local inner = combine(r, (c.s2 - xs2) / V, diff, 1, c.mu)
  return (inner * (sg / ((sg:square() + xs2):sqrt() * x_sigma))):reshape(shape)
end

------------------------------------------------------------ one Gaussian
local function single(self, fn)
  if self.num_components ~= 1 then
    fail(fn, "needs a single component (the flow map of a mixture has no closed form), this mixture has %d", self.num_components)
  end
end

-- The probability-flow map of one Gaussian from t to r, affine:
--   x_r = a_r mu + sqrt(V_r / V_t) (x_t - a_t mu)
function GM:flow_map(x_t, t, r)
  single(self, "flow_map")
  local x, shape, tt, a, V, dt = linear(self, x_t, t, "flow_map")
  local rr = col(r, tt:shape()[1], dt, "flow_map", "r")
  local ar = 1 - rr
  local Vr = ar:square() * self.stds[1] ^ 2 + rr:square()
  local mu = self:_const(dt).mu
  return (ar * mu + (Vr / V):sqrt() * (x - a * mu)):reshape(shape)
end

-- u(x_t, t, r) = (x_t - x_r) / (t - r) = c (x_t - a_t mu) - mu with
--   c = (1 - sqrt(V_r / V_t)) / (t - r) = ((t + r) - (2 - t - r) s^2) / (V_t (1 + sqrt(V_r / V_t))),
-- exact also at r = t, where u is the velocity.
function GM:average_velocity(x_t, t, r)
  single(self, "average_velocity")
  local x, shape, tt, a, V, dt = linear(self, x_t, t, "average_velocity")
  local rr = col(r, tt:shape()[1], dt, "average_velocity", "r")
  local s2 = self.stds[1] ^ 2
  local ar = 1 - rr
  local Vr = ar:square() * s2 + rr:square()
  local c = ((tt + rr) - (2 - tt - rr) * s2) / (V * ((Vr / V):sqrt() + 1))
  local mu = self:_const(dt).mu
  return (c * (x - a * mu) - mu):reshape(shape)
end

-- With labels, each sample's own component gives u exactly (as above with
-- mu_y, s_y); the null label has no closed form and yields NaN.
function GM:_labelled_average_velocity(x_t, t, r, cond)
  local fn = "network"
  local y = cond and cond.y
  if not mf.is_tensor(y) then
    fail(fn, "meanflow on a mixture of %d components needs labels cond.y (one Gaussian each)", self.num_components)
  end
  local x, shape, tt, _, _, dt = linear(self, x_t, t, fn)
  local B = tt:shape()[1]
  local rr = col(r, B, dt, fn, "r")
  local c = self:_const(dt)
  local mu, s2 = c.muy:index_select(1, y), c.s2y:index_select(1, y)
  local a, ar = 1 - tt, 1 - rr
  local V, Vr = a:square() * s2 + tt:square(), ar:square() * s2 + rr:square()
  local k = ((tt + rr) - (2 - tt - rr) * s2) / (V * ((Vr / V):sqrt() + 1))
  return (k * (x - a * mu) - mu):reshape(shape)
end

GM.network = function(self, kind, opts) return require("moonflow.oracle.network")(self, kind, opts) end

return O
