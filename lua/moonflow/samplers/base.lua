-- The sampler base (diffuse_nnx's Samplers): a time grid, the loop over its
-- intervals, and classifier-free guidance. Subclasses define
--   forward(rng, net, x, t_curr, t_next, opts)   one step, t_curr -> t_next
--   last_step(rng, net, x, t_curr, t_last, opts) the final step (the model
--                                                is never evaluated at t_last)
-- Both return x_next and, when asked (opts.want_denoised), the denoised
-- estimate x - t_curr d of that step. The grid lives on the host as Lua
-- numbers; each update is one fused kernel (core.sampler_*), and a whole
-- sample reads nothing back from the device.
local mf = require "moonflow"
local A = require "moonflow.autograd"

local B = {}
B.__index = B
B.__name = "moonflow.samplers.Sampler"

local function is_num(v) return type(v) == "number" and v == v and v > -math.huge and v < math.huge end
B.is_num = is_num

-- error naming "moonflow.<Class>:<method>" at the caller's caller
function B:fail(method, msg, ...)
  error(("moonflow.%s%s: " .. msg):format(self.name or "samplers", method and (":" .. method) or "", ...), 3)
end

local dists = { uniform = "uniform", exp = "exp" }
local defaults = {
  uniform = { t_start = 1.0, t_end = 0.0, t_shift_base = 4096, t_shift_cur = 4096 },
  exp = { sigma_min = 0.002, sigma_max = 80.0, rho = 7.0 },
}
local base_keys = { num_sampling_steps = true, sampling_time_dist = true, sampling_time_kwargs = true,
  t_start = true, t_end = true, t_shift_base = true, t_shift_cur = true, sigma_min = true, sigma_max = true, rho = true }

-- A class: Class{opts} constructs; Class.extend(name, keys, dist) derives.
function B.extend(parent, name, keys, default_dist)
  local cls = setmetatable({}, { __index = parent, __call = function(c, o) return c.new(c, o) end })
  cls.__index = cls
  cls.__name = "moonflow.samplers." .. name
  cls.__tostring = parent.__tostring -- metamethods are not inherited through __index
  cls.name = name
  cls.keys = setmetatable(keys or {}, { __index = parent.keys })
  cls.default_dist = default_dist or parent.default_dist
  return cls
end
B.keys = base_keys
-- Euler(num_sampling_steps=50, sampling_time_dist=uniform)
function B.__tostring(self)
  return ("%s(num_sampling_steps=%d, sampling_time_dist=%s)"):format(self.name or "Sampler",
    self.num_sampling_steps, tostring(self.sampling_time_dist))
end
B.default_dist = "uniform"

function B.new(cls, o)
  o = o or {}
  local self = setmetatable({}, cls)
  if type(o) ~= "table" then self:fail(nil, "expected an options table, got %s", type(o)) end
  for k in pairs(o) do
    if not cls.keys[k] then self:fail(nil, "unknown option %s", tostring(k)) end
  end
  local n = o.num_sampling_steps or 50
  if math.type(n) ~= "integer" or n < 1 then
    self:fail(nil, "num_sampling_steps must be a positive integer, got %s", tostring(n))
  end
  self.num_sampling_steps = n
  local dist = o.sampling_time_dist or cls.default_dist
  local key = type(dist) == "string" and dist:lower():gsub("_", "") or nil
  if not dists[key] then self:fail(nil, "sampling_time_dist must be \"uniform\" or \"exp\", got %s", tostring(dist)) end
  self.sampling_time_dist = key
  -- seed-style sampling_time_kwargs, overridden by flat options
  local kw = {}
  for k, v in pairs(defaults[key]) do kw[k] = v end
  local given = o.sampling_time_kwargs or {}
  if type(given) ~= "table" then self:fail(nil, "sampling_time_kwargs must be a table, got %s", type(given)) end
  for k, v in pairs(given) do
    if defaults[key][k] == nil then self:fail(nil, "sampling_time_kwargs.%s does not apply to the %s grid", tostring(k), key) end
    kw[k] = v
  end
  for k in pairs(defaults[key]) do if o[k] ~= nil then kw[k] = o[k] end end
  for k in pairs(base_keys) do
    if defaults.uniform[k] ~= nil or defaults.exp[k] ~= nil then
      if o[k] ~= nil and defaults[key][k] == nil then self:fail(nil, "%s does not apply to the %s grid", k, key) end
    end
  end
  for k, v in pairs(kw) do
    if not is_num(v) then self:fail(nil, "%s must be a finite number, got %s", k, tostring(v)) end
  end
  if key == "uniform" and not (kw.t_shift_base > 0 and kw.t_shift_cur > 0) then
    self:fail(nil, "t_shift_base %s and t_shift_cur %s must be positive", kw.t_shift_base, kw.t_shift_cur)
  end
  if key == "exp" and not (kw.sigma_min > 0 and kw.sigma_max > kw.sigma_min and kw.rho > 0) then
    self:fail(nil, "need 0 < sigma_min < sigma_max and rho > 0, got sigma_min %s, sigma_max %s, rho %s",
      kw.sigma_min, kw.sigma_max, kw.rho)
  end
  self.sampling_time_kwargs = kw
  if self.init then self:init(o) end
  return self
end

-- The time grid of `steps` points (Lua numbers), as diffuse_nnx:
--   "uniform": t_i = linspace(t_start, t_end, steps), shifted by
--              r = sqrt(t_shift_cur / t_shift_base): r t / (1 + (r - 1) t)
--   "exp":     sigma_i = (smax^(1/rho) + i/(steps-1) (smin^(1/rho) - smax^(1/rho)))^rho,
--              i = 0 .. steps-1, then a final 0 (steps + 1 points)
-- sample() asks for num_sampling_steps + 1 points.
function B:sample_t(steps)
  if math.type(steps) ~= "integer" or steps < 2 then
    self:fail("sample_t", "steps must be an integer >= 2 (grid points), got %s", tostring(steps))
  end
  local kw, t = self.sampling_time_kwargs, {}
  if self.sampling_time_dist == "uniform" then
    local r = math.sqrt(kw.t_shift_cur / kw.t_shift_base)
    for i = 0, steps - 1 do
      local u = kw.t_start + (kw.t_end - kw.t_start) * i / (steps - 1)
      t[i + 1] = r * u / (1 + (r - 1) * u)
    end
  else
    local a, b = kw.sigma_max ^ (1 / kw.rho), kw.sigma_min ^ (1 / kw.rho)
    for i = 0, steps - 1 do t[i + 1] = (a + i / (steps - 1) * (b - a)) ^ kw.rho end
    t[steps + 1] = 0
  end
  return t
end

------------------------------------------------------------ guidance
local sample_keys = { g_net = true, guidance_scale = true, num_sampling_steps = true,
  custom_timegrid = true, cond = true, callback = true }

-- the null label of a model (an interface holding a network, or a network)
local function num_classes(m)
  if type(m) ~= "table" then return nil end
  local n = rawget(m, "num_classes") or m.num_classes
  if n == nil and type(m.network) == "table" then n = m.network.num_classes end
  return n
end

-- The per-call state of forward/last_step: models, scale, conditions.
function B:prepare(net, x, opts, method)
  if type(opts) == "table" and rawget(opts, "_prepared") then return opts end
  method = method or "forward"
  opts = opts or {}
  if type(opts) ~= "table" then self:fail(method, "opts must be a table, got %s", type(opts)) end
  if type(net) ~= "table" or type(net.pred) ~= "function" then
    self:fail(method, "net must be an interface with :pred (e.g. mf.interfaces.SiT{network = ...}), got %s", type(net))
  end
  if not mf.is_tensor(x) or (x:dtype() ~= "f32" and x:dtype() ~= "f64") or x:dim() < 1 then
    self:fail(method, "x must be an f32 or f64 tensor {B, ...}, got %s", mf.is_tensor(x) and x:dtype() or type(x))
  end
  local scale = opts.guidance_scale == nil and 1 or opts.guidance_scale
  if not is_num(scale) then self:fail(method, "guidance_scale must be a finite number, got %s", tostring(scale)) end
  local g = opts.g_net or net
  if type(g) ~= "table" or type(g.pred) ~= "function" then
    self:fail(method, "g_net must be an interface with :pred, got %s", type(g))
  end
  local cond = opts.cond
  if mf.is_tensor(cond) then cond = { y = cond } end -- a label tensor, as the interfaces take it
  if cond ~= nil and type(cond) ~= "table" then self:fail(method, "cond must be a table {y = ...}, got %s", type(cond)) end
  local st = { _prepared = true, net = net, g_net = g, scale = scale, guided = scale ~= 1, cond = cond,
    want_denoised = opts.want_denoised, num_steps = opts.num_steps or self.num_sampling_steps }
  if st.guided then
    if cond and cond.y ~= nil then
      local null = num_classes(g) or num_classes(net)
      if math.type(null) ~= "integer" then
        self:fail(method, "guidance needs the null label: the model declares no num_classes")
      end
      local u = {}
      for k, v in pairs(cond) do u[k] = v end
      u.y = mf.full({ x:shape()[1] }, null, { dtype = "i32" })
      st.ucond = u
    elseif opts.g_net and opts.g_net ~= net then
      st.ucond = cond -- guidance by another model under the same condition
    else
      self:fail(method, "guidance_scale %s needs labels cond.y (the unconditional call uses the null label) or a separate g_net", scale)
    end
  end
  return st
end

-- c (conditional) and u (unconditional, only when guided) from call(model, cond)
function B.both(st, call)
  local c = call(st.net, st.cond)
  if not st.guided then return c, nil end
  return c, call(st.g_net, st.ucond)
end

-- a {B} tensor of time t in x's dtype, marked all_same: every row holds t,
-- so a network may embed it once (nn.TimestepEmbedding does)
function B.tvec(t, x)
  local v = mf.full({ x:shape()[1] }, t, { dtype = x:dtype() })
  v.all_same = true
  return v
end

-- The generator of the noise: a Generator, or the sample stream of an Rngs.
function B:generator(rng, method)
  local mt = getmetatable(rng)
  if mt and mt.__name == "moonflow.Rngs" then rng = rng.sample; mt = getmetatable(rng) end
  if not (mt and mt.__name == "moonflow.Generator") then
    self:fail(method, "rng must be an mf.Generator (or mf.Rngs), got %s", type(rng))
  end
  return rng
end

------------------------------------------------------------ the loop
function B:timegrid(opts)
  local grid = opts.custom_timegrid
  if grid ~= nil then
    if mf.is_tensor(grid) then grid = grid:tolist() end -- one read, before sampling starts
    if type(grid) ~= "table" or #grid < 2 then
      self:fail("sample", "custom_timegrid must list at least 2 times, got %s", type(grid) == "table" and #grid or type(grid))
    end
    for i, v in ipairs(grid) do
      if not is_num(v) then self:fail("sample", "custom_timegrid[%d] is %s, not a finite number", i, tostring(v)) end
    end
    return grid
  end
  local n = opts.num_sampling_steps or self.num_sampling_steps
  if math.type(n) ~= "integer" or n < 1 then
    self:fail("sample", "num_sampling_steps must be a positive integer, got %s", tostring(n))
  end
  return self:sample_t(n + 1)
end

-- x_final from noise x: x is scaled by the first grid value, forward runs
-- over every interval but the last, last_step over the last one.
-- opts: g_net, guidance_scale, num_sampling_steps, custom_timegrid, cond,
-- callback (called as callback{i, steps, t, x, denoised} after each step).
function B:sample(rng, net, x, opts)
  opts = opts or {}
  if type(opts) ~= "table" then self:fail("sample", "opts must be a table, got %s", type(opts)) end
  for k in pairs(opts) do
    if not sample_keys[k] then self:fail("sample", "unknown option %s", tostring(k)) end
  end
  local cb = opts.callback
  if cb ~= nil and type(cb) ~= "function" and not (getmetatable(cb) or {}).__call then
    self:fail("sample", "callback must be a function, got %s", type(cb))
  end
  local grid = self:timegrid(opts)
  local n = #grid - 1
  return A.no_grad(function()
    local st = self:prepare(net, x, { g_net = opts.g_net, guidance_scale = opts.guidance_scale, cond = opts.cond,
      want_denoised = cb ~= nil, num_steps = n }, "sample")
    if grid[1] ~= 1 then x = x * grid[1] end
    for i = 1, n do
      local step = i < n and self.forward or self.last_step
      local den
      x, den = step(self, rng, net, x, grid[i], grid[i + 1], st)
      if cb then cb { i = i, steps = n, t = grid[i + 1], x = x, denoised = den } end
    end
    return x
  end)
end

return B
