-- Rectified-flow helpers (fastgen's flow_matching module): the forward
-- process, its inversions and timestep sampling. RF convention:
-- alpha_t = 1 - t, sigma_t = t, x_t = (1 - t) x_0 + t eps, t in [0, 1].
--
-- Precision. Every conversion runs in float64 inside, its operands entering
-- as they are (an f64 eps is not rounded to an f32 x0 first), and returns
-- fastgen's dtype: x0's for add_noise, x0_to_eps, x0_to_flow, noisy_latents'
-- (argument 2) for pred_noise_to_pred_x0, pred_x0_from_flow. On a device
-- without cl_khr_fp64 (or with MOONFLOW_DISABLE_FP64=1) the same functions
-- run in float-float arithmetic (hi + lo pairs of f32, about 48 bits). To carry f64-accurate
-- values where f64 tensors cannot exist, data enter and leave as rf.FF
-- values: rf.ff(nested Lua doubles | number | tensor) splits them into
-- (hi, lo) exactly, and ff:totable() gives back Lua doubles. t may be a Lua
-- number (exact), a tensor of B or 1 values, or an rf.FF. When any operand
-- is an rf.FF the float-float kernel runs and returns an rf.FF; otherwise
-- plain tensors go through the float64 kernel (or float-float with the low
-- parts zero when there is no fp64, returning f32). The float64 path is
-- differentiable in its data operands (t is a constant); the float-float
-- path is not recorded by autograd.
local core = require "moonflow.core"
local A = require "moonflow.autograd"
local O = require "moonflow.ops"
local D = require "moonflow.diffusion"
local Rnd = require "moonflow.random"

local C = core
local is_tensor = A.is_tensor
local R = {}

local function has_fp64() return core.device().fp64 end

--------------------------------------------------------------- float-float
local FF = {}
FF.__index = FF
FF.__name = "moonflow.rf.FF"
R.FF = FF

local function is_ff(x) return getmetatable(x) == FF end
R.is_ff = is_ff

-- nearest f32 of a double, on the host
local function f32(v) return (string.unpack("<f", string.pack("<f", v))) end

local function ff_new(hi, lo) return setmetatable({ hi = hi, lo = lo }, FF) end

-- rf.ff(x): an exact (hi, lo) split of nested Lua doubles, a number, an f64
-- tensor (split on the device) or an f32 tensor (lo = 0); an FF is returned as is.
function R.ff(x)
  if is_ff(x) then return x end
  if is_tensor(x) then
    local dt = C.dtype(x)
    if dt == "f64" then return ff_new(C.rf_split(x)) end
    if dt == "i32" then x = C.to(x, "f32") end
    return ff_new(C.contiguous(x), C.full(x:shape(), 0, "f32"))
  end
  if type(x) ~= "number" and type(x) ~= "table" then
    error(("moonflow.rf.ff: expected numbers, a nested table or a tensor, got %s"):format(type(x)), 2)
  end
  local function lo_of(v)
    if type(v) == "table" then
      local o = {}
      for i, e in ipairs(v) do o[i] = lo_of(e) end
      return o
    end
    if type(v) ~= "number" then error(("moonflow.rf.ff: element %s is not a number"):format(tostring(v)), 3) end
    return v - f32(v) -- exact in double; itself a float after rounding
  end
  return ff_new(C.tensor(x, "f32"), C.tensor(lo_of(x), "f32"))
end

function FF:shape() return self.hi:shape() end
function FF:numel() return C.numel(self.hi) end
-- Lua doubles hi + lo, nested like the shape
function FF:totable()
  local h, l = C.totable(self.hi), C.totable(self.lo)
  local function add(a, b)
    if type(a) ~= "table" then return a + b end
    local o = {}
    for i = 1, #a do o[i] = add(a[i], b[i]) end
    return o
  end
  return add(h, l)
end
-- a plain tensor: f32 (hi, the rounded value) or f64 (hi + lo)
function FF:to(dtype)
  if dtype == nil or dtype == "f32" then return self.hi end
  return C.binary("add", C.to(self.hi, "f64"), C.to(self.lo, "f64"))
end
FF.__tostring = function(self)
  return ("rf.FF(shape={%s})"):format(table.concat(self:shape(), ", "))
end

--------------------------------------------------------------- conversions
local function check(fn, x, what)
  if not (is_tensor(x) or is_ff(x)) then
    error(("moonflow.rf.%s: %s must be a tensor or an rf.FF, got %s"):format(fn, what, type(x)), 3)
  end
end

local function shape_str(x) return "{" .. table.concat(x:shape(), ", ") .. "}" end

-- t as f64 {B} or {1} for the float64 kernel
local function t64(fn, t, B)
  if type(t) == "number" then return C.full({ 1 }, t, "f64") end
  local n = C.numel(t)
  if n ~= B and n ~= 1 then
    error(("moonflow.rf.%s: t has %d values for a batch of %d"):format(fn, n, B), 3)
  end
  return C.reshape(C.to(t, "f64"), { n })
end

-- (hi, lo|nil) of an operand for the float-float kernel
local function parts(x)
  if is_ff(x) then return x.hi, x.lo end
  if C.dtype(x) == "f64" then return C.rf_split(x) end
  if C.dtype(x) ~= "f32" then x = C.to(x, "f32") end
  return x, nil
end

local function t_parts(fn, t, B)
  if type(t) == "number" then
    local hi = f32(t)
    return C.full({ 1 }, hi, "f32"), C.full({ 1 }, t - hi, "f32")
  end
  local n = is_ff(t) and t:numel() or C.numel(t)
  if n ~= B and n ~= 1 then
    error(("moonflow.rf.%s: t has %d values for a batch of %d"):format(fn, n, B), 3)
  end
  local hi, lo = parts(t)
  hi = C.reshape(hi, { n })
  if lo then lo = C.reshape(lo, { n }) end
  return hi, lo
end

-- the argument whose dtype a result takes (fastgen's original_dtype)
local KEEP = { add_noise = 1, pred_noise_to_pred_x0 = 2, pred_x0_from_flow = 2, x0_to_eps = 1, x0_to_flow = 1 }

local function conv(fn, a, b, t)
  check(fn, a, "argument 1")
  check(fn, b, "argument 2")
  if not (type(t) == "number" or is_tensor(t) or is_ff(t)) then
    error(("moonflow.rf.%s: t must be a number, a tensor or an rf.FF, got %s"):format(fn, type(t)), 2)
  end
  if shape_str(a) ~= shape_str(b) then
    error(("moonflow.rf.%s: shapes %s and %s differ"):format(fn, shape_str(a), shape_str(b)), 2)
  end
  local B = (a:shape())[1] or 1
  local ff_in = is_ff(a) or is_ff(b) or is_ff(t)
  if not ff_in and has_fp64() then
    if C.dtype(a) == C.dtype(b) then return D.rf_conv(fn, a, b, t64(fn, t, B)) end
    -- mixed dtypes: both exactly to f64, one rounding to the kept dtype at the end
    local out = C.dtype(KEEP[fn] == 2 and b or a)
    return O.to(D.rf_conv(fn, O.to(a, "f64"), O.to(b, "f64"), t64(fn, t, B)), out)
  end
  local ah, al = parts(a)
  local bh, bl = parts(b)
  local th, tl = t_parts(fn, t, B)
  local hi, lo = C.rf_conv_ff(ah, al, bh, bl, th, tl, fn, true, true, ff_in)
  if ff_in then return ff_new(hi, lo) end
  return hi
end

-- x_t = (1 - t) x_0 + t eps
function R.add_noise(x0, eps, t) return conv("add_noise", x0, eps, t) end
-- x_0 = (x_t - t eps) / max(1 - t, 1e-6)
function R.pred_noise_to_pred_x0(pred_noise, noisy_latents, t)
  return conv("pred_noise_to_pred_x0", pred_noise, noisy_latents, t)
end
-- x_0 = x_t - t v  (v = eps - x_0)
function R.pred_x0_from_flow(pred_flow, noisy_latents, t)
  return conv("pred_x0_from_flow", pred_flow, noisy_latents, t)
end
-- eps = (x_t - (1 - t) x_0) / max(t, 1e-6)
function R.x0_to_eps(x0, x_t, t) return conv("x0_to_eps", x0, x_t, t) end
-- v = (x_t - x_0) / max(t, 1e-6)  (the same guard as x0_to_eps, so t = 0 gives no inf)
function R.x0_to_flow(x0, x_t, t) return conv("x0_to_flow", x0, x_t, t) end

-- alpha_t = 1 - t and sigma_t = t, in float64, returned in t's dtype
local function coef(fn, t, alpha)
  if type(t) == "number" then return alpha and 1 - t or t end
  check(fn, t, "t")
  if not is_ff(t) and has_fp64() then
    if not alpha then return O.clone(t) end
    return O.to(O.sub(1, O.to(t, "f64")), C.dtype(t))
  end
  -- float-float: (1 - t) 1 + t 0, or t itself
  local ff_in = is_ff(t)
  local th, tl = parts(t)
  if not alpha then return ff_in and ff_new(C.clone(th), C.clone(tl)) or C.clone(th) end
  local shape = th:shape()
  local flat = C.reshape(th, { C.numel(th) })
  local one = C.full(flat:shape(), 1, "f32")
  local hi, lo = C.rf_conv_ff(one, nil, one, nil, flat, tl and C.reshape(tl, flat:shape()) or nil,
    "add_noise", true, false, ff_in)
  if ff_in then return ff_new(C.reshape(hi, shape), C.reshape(lo, shape)) end
  return C.reshape(hi, shape)
end
function R.rf_alpha(t) return coef("rf_alpha", t, true) end
function R.rf_sigma(t) return coef("rf_sigma", t, false) end

---------------------------------------------------------- timestep sampling
-- erfc in Lua doubles: the Taylor series of erf for |x| < 2.5, a Lentz
-- continued fraction beyond (both to about 1e-16 relative).
local function erfc(x)
  if x < 0 then return 2 - erfc(-x) end
  if x < 2.5 then
    local s, term = x, x
    for k = 1, 200 do -- about 40 terms at x = 2.5; x = 0 stops at once
      term = -term * x * x / k
      local add = term / (2 * k + 1)
      s = s + add
      if math.abs(add) <= 1e-17 * math.abs(s) then break end
    end
    return 1 - 2 / math.sqrt(math.pi) * s
  end
  -- erfc x = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
  local tiny = 1e-300
  local f, c, d = x, x, 0
  for k = 1, 200 do
    local a = k / 2
    d = x + a * d
    d = d == 0 and tiny or d
    c = x + a / c
    c = c == 0 and tiny or c
    d = 1 / d
    local delta = c * d
    f = f * delta
    if math.abs(delta - 1) < 1e-16 then break end
  end
  return math.exp(-x * x) / math.sqrt(math.pi) / f
end
-- standard normal CDF
local function Phi(z) return 0.5 * erfc(-z / math.sqrt(2)) end
R._Phi = Phi

local TYPES = { uniform = true, logitnormal = true, lognormal = true, shifted = true, polynomial = true }

local function generator(opts, fn)
  local g = opts and (opts.generator or opts.rng or opts.rngs)
  if g == nil then return Rnd.default end
  if getmetatable(g) and getmetatable(g).__name == "moonflow.Rngs" then return g.time end
  if type(g) ~= "table" or type(g.uniform) ~= "function" then
    error(("moonflow.rf.%s: opts.generator must be an mf.Generator, got %s"):format(fn, type(g)), 3)
  end
  return g
end

local function num(cfg, k, default, fn)
  local v = cfg[k]
  if v == nil then return default end
  if type(v) ~= "number" then
    error(("moonflow.rf.%s: cfg.%s must be a number, got %s"):format(fn, k, type(v)), 3)
  end
  return v
end

-- n training timesteps from cfg = {time_dist_type, min_t (0), max_t (1),
-- p_mean (0), p_std (1), shift (1)}; opts = {generator, dtype ("f32")}.
--   uniform:     U(min_t, max_t)
--   logitnormal: sigmoid(N(p_mean, p_std)) (max_t - min_t) + min_t
--   lognormal:   exp(N(p_mean, p_std)) truncated to (max(min_t, 1e-12), max_t)
--                as fastgen: u uniform between Phi of the log-bounds, z = Phi^-1(u)
--                in float64
--   shifted:     shift t / (1 + (shift - 1) t) of t ~ U(min_t, max_t)
--   polynomial:  uniform over linspace(min_t, max_t, 1000)
-- all clamped to [min_t, max_t].
function R.sample_timesteps(n, cfg, opts)
  local fn = "sample_timesteps"
  if math.type(n) ~= "integer" or n < 0 then
    error(("moonflow.rf.%s: n must be a non-negative integer, got %s"):format(fn, tostring(n)), 2)
  end
  if type(cfg) ~= "table" then error(("moonflow.rf.%s: cfg must be a table, got %s"):format(fn, type(cfg)), 2) end
  local kind = cfg.time_dist_type
  if type(kind) ~= "string" then
    error(("moonflow.rf.%s: cfg.time_dist_type must be a string, got %s"):format(fn, type(kind)), 2)
  end
  local key = kind:lower():gsub("[_%-]", "")
  if not TYPES[key] then
    error(("moonflow.rf.%s: unknown time_dist_type %q (uniform, logitnormal, lognormal, shifted, polynomial)")
      :format(fn, kind), 2)
  end
  local lo, hi = num(cfg, "min_t", 0, fn), num(cfg, "max_t", 1, fn)
  if not (lo <= hi) then error(("moonflow.rf.%s: min_t %s is above max_t %s"):format(fn, lo, hi), 2) end
  local mu, sd, shift = num(cfg, "p_mean", 0, fn), num(cfg, "p_std", 1, fn), num(cfg, "shift", 1, fn)
  local g = generator(opts, fn)
  local out_dt = opts and opts.dtype or "f32"
  local dt = has_fp64() and "f64" or "f32" -- float64 inside where the device has it
  local t
  if key == "uniform" then
    t = g:uniform({ n }, { low = lo, high = hi, dtype = dt })
  elseif key == "logitnormal" then
    t = C.binary("add", C.binary("mul", C.unary("sigmoid", g:normal({ n }, { mean = mu, std = sd, dtype = dt })), hi - lo), lo)
  elseif key == "lognormal" then
    local ulo = Phi((math.log(math.max(lo, 1e-12)) - mu) / sd)
    local uhi = Phi((math.log(hi) - mu) / sd)
    local u = g:uniform({ n }, { low = ulo, high = uhi, dtype = dt })
    t = C.unary("exp", C.binary("add", C.binary("mul", D.ndtri(u), sd), mu))
  elseif key == "shifted" then
    t = D.coef("t_shift", g:uniform({ n }, { low = lo, high = hi, dtype = dt }), shift)
  else
    local i = g:randint({ n }, 0, 1000)
    t = C.binary("add", C.binary("mul", C.to(i, dt), (hi - lo) / 999), lo)
  end
  t = C.clamp(t, lo, hi)
  if C.dtype(t) ~= out_dt then t = C.to(t, out_dt) end
  return t
end

-- n starting timesteps drawn uniformly from t_list[1 .. #t_list - 1]
-- (t_list[#t_list] must be 0: the end of the inference trajectory).
function R.sample_from_t_list(n, t_list, opts)
  local fn = "sample_from_t_list"
  if math.type(n) ~= "integer" or n < 0 then
    error(("moonflow.rf.%s: n must be a non-negative integer, got %s"):format(fn, tostring(n)), 2)
  end
  if is_tensor(t_list) then t_list = C.flat(t_list) end
  if type(t_list) ~= "table" then
    error(("moonflow.rf.%s: t_list must be a list of numbers, got %s"):format(fn, type(t_list)), 2)
  end
  if #t_list < 2 then
    error(("moonflow.rf.%s: t_list needs at least 2 entries, got %d"):format(fn, #t_list), 2)
  end
  for i, v in ipairs(t_list) do
    if type(v) ~= "number" then
      error(("moonflow.rf.%s: t_list[%d] is a %s, not a number"):format(fn, i, type(v)), 2)
    end
  end
  if t_list[#t_list] ~= 0 then
    error(("moonflow.rf.%s: the last entry of t_list must be 0, got %s"):format(fn, tostring(t_list[#t_list])), 2)
  end
  local g = generator(opts, fn)
  local dt = opts and opts.dtype or "f32"
  local head = {}
  for i = 1, #t_list - 1 do head[i] = t_list[i] end
  local idx = g:randint({ n }, 0, #head)
  return C.index_select(C.tensor(head, dt), 1, idx)
end

return R
