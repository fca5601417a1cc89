-- mf.optim: AdamW, SGD, clipping by global gradient norm, learning-rate
-- schedules, and EMA. Each works on a model's flat parameter and gradient
-- buffers: one kernel per step, with clipping as one reduction whose result
-- the update kernel reads on the device (no host read).
local core = require "moonflow.core"
local A = require "moonflow.autograd"

local M = {}

-- an integral count from a state dict (JSON round trips may give floats)
local function count_of(v) return type(v) == "number" and math.tointeger(v) or nil end

-- {params, grads} from a Module (flattening it if needed) or a table
-- {params = tensor, grads = tensor}.
local function buffers(target, fn)
  if type(target) == "table" and target.flat_parameters then
    return target:flat_parameters(), target:flat_gradients(), target
  end
  if type(target) == "table" and A.is_tensor(target.params) and A.is_tensor(target.grads) then
    return target.params, target.grads, nil
  end
  error(("moonflow.optim.%s: expected a module or {params = tensor, grads = tensor}, got %s"):format(fn, type(target)), 3)
end

local function num(v, name, fn, lo, hi)
  if type(v) ~= "number" or v ~= v or (lo and v < lo) or (hi and v > hi) then
    error(("moonflow.optim.%s: %s must be a number%s, got %s"):format(fn, name,
      lo and (" in [" .. lo .. ", " .. (hi or "inf") .. "]") or "", tostring(v)), 3)
  end
  return v
end

------------------------------------------------------------- lr schedules
-- Each returns lr(step) for step = 1, 2, ... (the step about to be taken).
local lr = {}
M.lr = lr

function lr.constant(v) return function() return v end end

-- lr ramps linearly from v / warmup to v over `warmup` steps, then stays
function lr.warmup(v, warmup)
  return function(step) return v * math.min(1, step / math.max(warmup, 1)) end
end
lr.linear_warmup = lr.warmup

-- linear warm-up then a cosine from v down to min_lr at step `total`:
-- lr = min + (v - min) (1 + cos(pi s)) / 2, s = (step - warmup) / (total - warmup)
function lr.cosine(v, total, opts)
  opts = opts or {}
  local warm, lo = opts.warmup or 0, opts.min_lr or 0
  return function(step)
    if step <= warm then return v * step / math.max(warm, 1) end
    local s = math.min(1, (step - warm) / math.max(total - warm, 1))
    return lo + (v - lo) * 0.5 * (1 + math.cos(math.pi * s))
  end
end

local function schedule_of(v, fn)
  if type(v) == "function" then return v end
  if type(v) == "table" and getmetatable(v) and getmetatable(v).__call then return v end
  num(v, "lr", fn, 0)
  return lr.constant(v)
end

----------------------------------------------------------- gradient norm
-- Sum of squared gradients as a one-element device tensor (one reduction).
local function sumsq(g) return core.reduce("sumsq", g, nil, false) end

-- Scales the gradients so their global norm is at most max_norm; returns the
-- norm before clipping as a device tensor (read it with :item() if wanted).
function M.clip_grad_norm(target, max_norm)
  local _, g = buffers(target, "clip_grad_norm")
  num(max_norm, "max_norm", "clip_grad_norm", 0)
  local ss = sumsq(g)
  core.clip_scale_(g, ss, max_norm)
  return core.unary("sqrt", ss)
end

-------------------------------------------------------------------- base
local Optimizer = {}
Optimizer.__index = Optimizer

-- AdamW(lr=0.001, step=10, beta1=0.9, ...): the class, the next step's lr
-- and the hyper-parameters
function Optimizer.describe(self, keys)
  local parts = { ("lr=%.6g"):format(self.schedule(self.step_count + 1)), ("step=%d"):format(self.step_count) }
  for _, k in ipairs(keys) do
    if self[k] ~= nil then parts[#parts + 1] = ("%s=%s"):format(k, tostring(self[k])) end
  end
  return ("%s(%s)"):format(self.name, table.concat(parts, ", "))
end

function Optimizer:zero_grad()
  if self.module then self.module:zero_grad() else core.fill_(self.grads, 0) end
end

-- the learning rate of the next step
function Optimizer:get_lr() return self.schedule(self.step_count + 1) end

-- squared-norm tensor for this step (nil without clipping)
function Optimizer:_ss()
  if not self.max_grad_norm then return nil end
  local ss = sumsq(self.grads)
  self.last_grad_sumsq = ss
  return ss
end

-- the global gradient norm of the last step (a device tensor), when clipping
function Optimizer:grad_norm()
  return self.last_grad_sumsq and core.unary("sqrt", self.last_grad_sumsq) or nil
end

-- Loading a state dict: _prepare_load(sd) checks everything and returns a
-- function that applies it, so mf.io.load can check every target first;
-- load_state_dict is the two in a row.
local function load_fail(fn, fmt, ...)
  error(("moonflow.optim.%s.load_state_dict: " .. fmt):format(fn, ...), 0)
end

-- the check of a saved buffer against its own; returns the copy to run
local function copy_state(dst, src, name, fn)
  if not A.is_tensor(src) then load_fail(fn, "%s is missing", name) end
  if core.numel(src) ~= core.numel(dst) then
    load_fail(fn, "%s has %d elements, the model %d", name, core.numel(src), core.numel(dst))
  end
  if core.dtype(src) == "i32" and core.dtype(dst) ~= "i32" then
    load_fail(fn, "%s is i32, a float buffer is needed", name)
  end
  return function()
    if core.dtype(src) ~= core.dtype(dst) then src = core.to(src, core.dtype(dst)) end
    core.copy_(dst, core.reshape(src, dst:shape()))
  end
end

-- an integer >= 0 (JSON round trips may give integral floats)
local function count_field(sd, key, fn)
  local n = count_of(sd[key])
  if not n or n < 0 then load_fail(fn, "%s must be an integer >= 0, got %s", key, tostring(sd[key])) end
  return n
end

local function check_keys(sd, allowed, fn, where)
  for k in pairs(sd) do
    if not allowed[k] then load_fail(fn, "unexpected key %q%s", tostring(k), where or "") end
  end
end

local function check_number(v, name, fn, lo, hi)
  if type(v) ~= "number" or v ~= v or v < lo or v > hi then
    load_fail(fn, "%s must be a number in [%s, %s], got %s", name, lo, hi, tostring(v))
  end
end

local function state_table(sd, fn)
  if type(sd) ~= "table" or A.is_tensor(sd) then load_fail(fn, "expected a table, got %s", type(sd)) end
end

function Optimizer:load_state_dict(sd)
  local ok, apply = pcall(self._prepare_load, self, sd)
  if not ok then error(apply, 2) end
  apply()
  return self
end

------------------------------------------------------------------- AdamW
-- AdamW(net, {lr = 1e-3 | schedule, betas = {0.9, 0.999}, eps = 1e-8,
--             weight_decay = 0.01, max_grad_norm = nil})
local AdamW = setmetatable({}, { __index = Optimizer })
AdamW.__index = AdamW
AdamW.name = "AdamW"
AdamW.__tostring = function(self) return self:describe { "beta1", "beta2", "eps", "weight_decay", "max_grad_norm" } end

function M.AdamW(target, opts)
  opts = opts or {}
  local p, g, module = buffers(target, "AdamW")
  local self = setmetatable({}, AdamW)
  self.params, self.grads, self.module = p, g, module
  self.schedule = schedule_of(opts.lr or 1e-3, "AdamW")
  local betas = opts.betas or { 0.9, 0.999 }
  self.beta1 = num(betas[1], "betas[1]", "AdamW", 0, 1)
  self.beta2 = num(betas[2], "betas[2]", "AdamW", 0, 1)
  self.eps = num(opts.eps or 1e-8, "eps", "AdamW", 0)
  self.weight_decay = num(opts.weight_decay or 0.01, "weight_decay", "AdamW", 0)
  if opts.max_grad_norm then self.max_grad_norm = num(opts.max_grad_norm, "max_grad_norm", "AdamW", 0) end
  self.m = core.full(p:shape(), 0, core.dtype(p))
  self.v = core.full(p:shape(), 0, core.dtype(p))
  self.step_count = 0
  return self
end

-- One kernel over the flat buffer (plus one reduction when clipping).
function AdamW:step()
  local t = self.step_count + 1
  local rate = self.schedule(t)
  local ss = self:_ss()
  core.adamw_(self.params, self.grads, self.m, self.v, {
    lr = rate, beta1 = self.beta1, beta2 = self.beta2, eps = self.eps, weight_decay = self.weight_decay,
    bc1 = 1 - self.beta1 ^ t, bc2 = 1 - self.beta2 ^ t,
  }, ss, self.max_grad_norm or 0)
  self.step_count = t
  self.last_lr = rate
end

function AdamW:state_dict()
  return { step = self.step_count, exp_avg = self.m, exp_avg_sq = self.v,
    hyper = { beta1 = self.beta1, beta2 = self.beta2, eps = self.eps, weight_decay = self.weight_decay } }
end

local ADAMW_KEYS = { step = true, exp_avg = true, exp_avg_sq = true, hyper = true }
local ADAMW_HYPER = { beta1 = { 0, 1 }, beta2 = { 0, 1 }, eps = { 0, math.huge }, weight_decay = { 0, math.huge } }

-- the saved hyper-parameters are checked, not applied: the optimizer's own
-- configuration stays in force
function AdamW:_prepare_load(sd)
  local fn = "AdamW"
  state_table(sd, fn)
  check_keys(sd, ADAMW_KEYS, fn)
  local step = count_field(sd, "step", fn)
  if sd.hyper ~= nil then
    if type(sd.hyper) ~= "table" or A.is_tensor(sd.hyper) then load_fail(fn, "hyper must be a table") end
    check_keys(sd.hyper, ADAMW_HYPER, fn, " in hyper")
    for k, r in pairs(ADAMW_HYPER) do
      if sd.hyper[k] ~= nil then check_number(sd.hyper[k], "hyper." .. k, fn, r[1], r[2]) end
    end
  end
  local a = copy_state(self.m, sd.exp_avg, "exp_avg", fn)
  local b = copy_state(self.v, sd.exp_avg_sq, "exp_avg_sq", fn)
  return function()
    a(); b()
    self.step_count = step
  end
end

--------------------------------------------------------------------- SGD
-- SGD(net, {lr, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false, max_grad_norm})
local SGD = setmetatable({}, { __index = Optimizer })
SGD.__index = SGD
SGD.__tostring = function(self)
  return self:describe { "momentum", "dampening", "weight_decay", "nesterov", "max_grad_norm" }
end
SGD.name = "SGD"

function M.SGD(target, opts)
  opts = opts or {}
  local p, g, module = buffers(target, "SGD")
  local self = setmetatable({}, SGD)
  self.params, self.grads, self.module = p, g, module
  self.schedule = schedule_of(opts.lr or 1e-2, "SGD")
  self.momentum = num(opts.momentum or 0, "momentum", "SGD", 0)
  self.dampening = num(opts.dampening or 0, "dampening", "SGD", 0, 1)
  self.weight_decay = num(opts.weight_decay or 0, "weight_decay", "SGD", 0)
  self.nesterov = opts.nesterov and true or false
  if self.nesterov and (self.momentum == 0 or self.dampening ~= 0) then
    error("moonflow.optim.SGD: nesterov needs momentum > 0 and dampening 0", 2)
  end
  if opts.max_grad_norm then self.max_grad_norm = num(opts.max_grad_norm, "max_grad_norm", "SGD", 0) end
  if self.momentum ~= 0 then self.buf = core.full(p:shape(), 0, core.dtype(p)) end
  self.step_count = 0
  return self
end

function SGD:step()
  local t = self.step_count + 1
  local rate = self.schedule(t)
  local ss = self:_ss()
  core.sgd_(self.params, self.grads, self.buf, {
    lr = rate, momentum = self.momentum, dampening = self.dampening, weight_decay = self.weight_decay,
    nesterov = self.nesterov, first = t == 1,
  }, ss, self.max_grad_norm or 0)
  self.step_count = t
  self.last_lr = rate
end

function SGD:state_dict()
  return { step = self.step_count, momentum_buffer = self.buf }
end

-- a saved momentum buffer is ignored when this SGD has no momentum
function SGD:_prepare_load(sd)
  local fn = "SGD"
  state_table(sd, fn)
  check_keys(sd, { step = true, momentum_buffer = true }, fn)
  local step = count_field(sd, "step", fn)
  local copy = self.buf and copy_state(self.buf, sd.momentum_buffer, "momentum_buffer", fn)
  return function()
    if copy then copy() end
    self.step_count = step
  end
end

--------------------------------------------------------------------- EMA
-- EMA(net, {decay = 0.999, warmup = false}): shadow = d shadow + (1 - d) params,
-- one kernel per update; with warmup, d_n = min(decay, (1 + n) / (10 + n)).
-- ema.network has net's structure with its parameters viewing the shadow.
local EMA = {}
EMA.__index = EMA
EMA.__tostring = function(self)
  return ("EMA(decay=%s, warmup=%s, updates=%d)"):format(self.decay, tostring(self.warmup), self.num_updates)
end

function M.EMA(net, opts)
  opts = opts or {}
  if type(net) ~= "table" or not net.flat_parameters then
    error(("moonflow.optim.EMA: expected a module, got %s"):format(type(net)), 2)
  end
  local self = setmetatable({}, EMA)
  self.source = net
  self.decay = num(opts.decay or 0.999, "decay", "EMA", 0, 1)
  self.warmup = opts.warmup and true or false
  self.shadow = core.clone(net:flat_parameters())
  self.network = net:clone_structure(self.shadow)
  self.network:eval()
  self.num_updates = 0
  return self
end

function EMA:current_decay()
  local n = self.num_updates
  if self.warmup then return math.min(self.decay, (1 + n) / (10 + n)) end
  return self.decay
end

function EMA:update()
  core.ema_(self.shadow, self.source:flat_parameters(), self:current_decay())
  self.num_updates = self.num_updates + 1
end

-- copies the averaged weights into a module of the same structure
function EMA:copy_to(net)
  local dst = net:flat_parameters()
  if core.numel(dst) ~= core.numel(self.shadow) then
    error(("moonflow.optim.EMA.copy_to: the module has %d flat elements, the shadow %d"):format(
      core.numel(dst), core.numel(self.shadow)), 2)
  end
  A.no_grad(function() core.copy_(dst, core.to(self.shadow, core.dtype(dst))) end)
end

-- {<parameter name> = tensor, ..., num_updates = n, decay = d}: the
-- averaged weights under the model's own names and shapes (views of the
-- shadow), so a checkpoint's ema.<name> tensors load into a copy of the
-- network as they are.
local EMA_FIELDS = { num_updates = true, decay = true }
function EMA:state_dict()
  local sd = self.network:state_dict()
  for k in pairs(EMA_FIELDS) do
    if sd[k] ~= nil then error(("moonflow.optim.EMA.state_dict: a parameter is named %q"):format(k), 2) end
  end
  sd.num_updates, sd.decay = self.num_updates, self.decay
  return sd
end

-- the saved decay is checked, not applied (the EMA's own stays). The
-- weights come named as state_dict gives them; a flat {shadow = tensor}
-- (checkpoints of moonflow.checkpoint/1) is read too.
function EMA:_prepare_load(sd)
  local fn = "EMA"
  state_table(sd, fn)
  local n = count_field(sd, "num_updates", fn)
  if sd.decay ~= nil then check_number(sd.decay, "decay", fn, 0, 1) end
  local weights, copy = {}, nil
  for k, v in pairs(sd) do
    if not EMA_FIELDS[k] and k ~= "shadow" then weights[k] = v end
  end
  if sd.shadow ~= nil then
    if next(weights) ~= nil then
      load_fail(fn, "both a flat shadow and named weights (%s, ...)", tostring(next(weights)))
    end
    copy = copy_state(self.shadow, sd.shadow, "shadow", fn)
  else
    local ok, apply = pcall(self.network._prepare_load, self.network, weights)
    if not ok then load_fail(fn, "%s", tostring(apply):gsub("^moonflow%.nn%.load_state_dict: ", "")) end
    copy = apply -- the network's parameters view the shadow
  end
  return function()
    copy()
    self.num_updates = n
  end
end
EMA.load_state_dict = Optimizer.load_state_dict

return M
