-- Module: the base of every network. A module holds parameters (ordered
-- names) and child modules (ordered names); dotted names address them
-- (blocks.2.linear.weight). flatten() moves every parameter of a tree into
-- ONE contiguous device buffer (each parameter a view into it) and presets
-- every .grad to a view into a second buffer, so an optimizer or EMA touches
-- the whole model with one kernel.
local core = require "moonflow.core"
local A = require "moonflow.autograd"

local Module = {}
Module.__index = Module
Module.__name = "Module"

local ALIGN = 16 -- elements; each parameter starts on a 64-byte boundary (f32)

-- instances call forward: m(x, ...) == m:forward(x, ...)
local function call(self, ...) return self:forward(...) end
Module.__call = call
Module.__tostring = function(self) return self:repr() end

-- A subclass: local Linear = Module:extend("Linear"); Linear(...) -> Linear.new(...)
function Module:extend(name)
  local cls = {}
  for k, v in pairs(self) do
    if type(k) == "string" and k:sub(1, 2) == "__" then cls[k] = v end -- metamethods are raw
  end
  cls.__index = cls
  cls.__name = name
  cls.super = self
  return setmetatable(cls, {
    __index = self,
    __call = function(c, ...) return c.new(...) end,
  })
end

-- A bare instance of class cls (subclasses call this in new()).
function Module.create(cls)
  local m = setmetatable({}, cls)
  rawset(m, "_params", {})
  rawset(m, "_children", {})
  m.training = true
  return m
end

function Module.new() return Module.create(Module) end

function Module.is_module(x)
  return type(x) == "table" and rawget(x, "_params") ~= nil and rawget(x, "_children") ~= nil
end

function Module:register_parameter(name, t)
  if not A.is_tensor(t) then
    error(("moonflow.nn.Module.register_parameter: %s is a %s, not a tensor"):format(name, type(t)), 2)
  end
  if not self:_has_param(name) then table.insert(self._params, name) end
  t:requires_grad()
  self[name] = t
  return t
end

function Module:_has_param(name)
  for _, n in ipairs(self._params) do if n == name then return true end end
  return false
end

function Module:add_module(name, m)
  name = tostring(name)
  if not Module.is_module(m) then
    error(("moonflow.nn.Module.add_module: %s is not a module"):format(name), 2)
  end
  local seen = false
  for _, n in ipairs(self._children) do if n == name then seen = true end end
  if not seen then table.insert(self._children, name) end
  self[name] = m
  return m
end

function Module:forward()
  error(("moonflow.nn.%s: forward is not defined"):format(self.__name), 2)
end

------------------------------------------------------------------ traversal
-- visits (name, param, owner, field) in order: own parameters, then children
local function walk(m, prefix, fn)
  for _, n in ipairs(m._params) do fn(prefix .. n, m[n], m, n) end
  for _, c in ipairs(m._children) do walk(m[c], prefix .. c .. ".", fn) end
end

-- for name, p in m:named_parameters() do ... end (in registration order)
function Module:named_parameters()
  local list = {}
  walk(self, "", function(name, p) list[#list + 1] = { name, p } end)
  local i = 0
  return function()
    i = i + 1
    local e = list[i]
    if e then return e[1], e[2] end
  end
end

function Module:parameters()
  local out = {}
  walk(self, "", function(_, p) out[#out + 1] = p end)
  return out
end

function Module:named_modules(prefix, out)
  out = out or {}
  prefix = prefix or ""
  out[#out + 1] = { prefix, self }
  for _, c in ipairs(self._children) do
    self[c]:named_modules(prefix == "" and c or prefix .. "." .. c, out)
  end
  return out
end

function Module:children()
  local out = {}
  for _, c in ipairs(self._children) do out[#out + 1] = self[c] end
  return out
end

function Module:num_parameters()
  local n = 0
  for _, p in ipairs(self:parameters()) do n = n + core.numel(p) end
  return n
end

function Module:train(mode)
  if mode == nil then mode = true end
  self.training = mode
  for _, c in ipairs(self._children) do self[c]:train(mode) end
  return self
end

function Module:eval() return self:train(false) end

------------------------------------------------------------------ flat buffers
-- Layout of the tree: list of {name, owner, field, shape, offset, numel}
-- with offsets aligned to ALIGN elements, and the total length.
local function layout(m)
  local items, off = {}, 0
  walk(m, "", function(name, p, owner, field)
    local n = core.numel(p)
    items[#items + 1] = { name = name, owner = owner, field = field, shape = p:shape(), offset = off, numel = n }
    off = off + math.ceil(n / ALIGN) * ALIGN
  end)
  return items, math.max(off, ALIGN)
end

local function view(flat, it)
  return core.reshape(core.narrow(flat, 1, it.offset + 1, it.numel), it.shape)
end

-- Points every parameter of the tree at flat (and its grad at gflat when
-- given). Parameters become leaves requiring grad only when gflat is given.
local function bind(m, flat, gflat)
  local items = layout(m)
  for _, it in ipairs(items) do
    local p = view(flat, it)
    if gflat then
      p:requires_grad()
      p.grad = view(gflat, it)
    end
    it.owner[it.field] = p
  end
  return items
end

-- Packs every parameter into one flat buffer of dtype opts.dtype (default:
-- the parameters' dtype) and the gradients into another. Idempotent for a
-- root whose buffers exist; call it on the root after building a model.
function Module:flatten(opts)
  opts = opts or {}
  local items, total = layout(self)
  local dt = opts.dtype or (items[1] and core.dtype(items[1].owner[items[1].field])) or "f32"
  if rawget(self, "_flat") and core.dtype(self._flat) == dt and core.numel(self._flat) == total then
    return self
  end
  local flat = core.full({ total }, 0, dt)
  A.no_grad(function()
    for _, it in ipairs(items) do
      local src = it.owner[it.field]
      if core.dtype(src) ~= dt then src = core.to(src, dt) end
      core.copy_(view(flat, it), src)
    end
  end)
  local gflat = core.full({ total }, 0, dt)
  bind(self, flat, gflat)
  -- children no longer own buffers of their own
  for _, e in ipairs(self:named_modules()) do
    rawset(e[2], "_flat", nil); rawset(e[2], "_gflat", nil)
  end
  rawset(self, "_flat", flat)
  rawset(self, "_gflat", gflat)
  rawset(self, "_layout", items)
  return self
end

-- The flat parameter and gradient buffers (flattening on first use).
function Module:flat_parameters()
  if not rawget(self, "_flat") then self:flatten() end
  return self._flat
end

function Module:flat_gradients()
  if not rawget(self, "_flat") then self:flatten() end
  return self._gflat
end

function Module:dtype()
  local p = self:parameters()[1]
  return p and core.dtype(p) or "f32"
end

-- Converts the whole model to dtype (re-flattening into new buffers).
function Module:to(dtype)
  rawset(self, "_flat", nil)
  return self:flatten { dtype = dtype }
end

-- Zeroes the gradients: one fill over the flat gradient buffer.
function Module:zero_grad()
  local g = rawget(self, "_gflat")
  if g then
    core.fill_(g, 0)
    -- a .grad replaced by the user points back into the buffer
    for _, it in ipairs(self._layout) do
      local p = it.owner[it.field]
      if p.grad == nil or core.storage(p.grad) ~= core.storage(g) then p.grad = view(g, it) end
    end
  else
    for _, p in ipairs(self:parameters()) do p.grad = nil end
  end
end

-- A module of the same structure whose parameters are views into `flat`
-- (a buffer laid out like this module's), recording no gradients. EMA uses
-- it for ema.network.
function Module:clone_structure(flat)
  local map = {}
  local function copy(m)
    if map[m] then return map[m] end
    local c = setmetatable({}, getmetatable(m))
    map[m] = c
    for k, v in pairs(m) do
      if Module.is_module(v) then c[k] = copy(v)
      elseif type(v) == "table" and not A.is_tensor(v) and k ~= "_layout" then
        local t = {}
        for kk, vv in pairs(v) do t[kk] = Module.is_module(vv) and copy(vv) or vv end
        c[k] = t
      else
        c[k] = v
      end
    end
    rawset(c, "_flat", nil); rawset(c, "_gflat", nil); rawset(c, "_layout", nil)
    return c
  end
  local c = copy(self)
  local items = bind(c, flat, nil)
  rawset(c, "_flat", flat)
  rawset(c, "_layout", items)
  return c
end

---------------------------------------------------------------- state dicts
-- {dotted name = tensor}: the live parameter views (save copies them out).
function Module:state_dict()
  local sd = {}
  walk(self, "", function(name, p) sd[name] = p end)
  return sd
end

local function shape_str(s) return "{" .. table.concat(s, ", ") .. "}" end

-- _prepare_load(sd, opts) -> apply(): checks sd against the parameters
-- (missing or unexpected names, non-tensors, shapes, an integer tensor for a
-- float parameter) without changing anything; mf.io.load checks every
-- target this way before it applies any. opts.strict = false ignores
-- missing and unexpected names.
function Module:_prepare_load(sd, opts)
  local function bad(fmt, ...) error(("moonflow.nn.load_state_dict: " .. fmt):format(...), 0) end
  local strict = not (opts and opts.strict == false)
  if type(sd) ~= "table" or A.is_tensor(sd) then bad("expected a table of tensors, got %s", type(sd)) end
  local own, plan = self:state_dict(), {}
  local missing, unexpected = {}, {}
  for name, p in pairs(own) do
    local src = sd[name]
    if src == nil then
      missing[#missing + 1] = name
    else
      if not A.is_tensor(src) then bad("%s is a %s, not a tensor", name, type(src)) end
      local a, b = shape_str(src:shape()), shape_str(p:shape())
      if a ~= b then bad("%s has shape %s in the state dict but %s in the model", name, a, b) end
      if (core.dtype(src) == "i32") ~= (core.dtype(p) == "i32") then
        bad("%s is %s in the state dict but %s in the model", name, core.dtype(src), core.dtype(p))
      end
      plan[#plan + 1] = { p, src }
    end
  end
  for name in pairs(sd) do
    if own[name] == nil then unexpected[#unexpected + 1] = tostring(name) end
  end
  if strict and (#missing > 0 or #unexpected > 0) then
    table.sort(missing); table.sort(unexpected)
    bad("missing %s; unexpected %s", #missing > 0 and table.concat(missing, ", ") or "none",
      #unexpected > 0 and table.concat(unexpected, ", ") or "none")
  end
  return function()
    A.no_grad(function()
      for _, e in ipairs(plan) do
        local p, src = e[1], e[2]
        if core.dtype(src) ~= core.dtype(p) then src = core.to(src, core.dtype(p)) end
        core.copy_(p, src)
      end
    end)
  end
end

-- Copies sd's tensors into the parameters; a failure changes nothing.
function Module:load_state_dict(sd, opts)
  local ok, apply = pcall(self._prepare_load, self, sd, opts)
  if not ok then error(apply, 2) end
  apply()
  return self
end

------------------------------------------------------------------ printing
function Module:extra_repr() return "" end

function Module:repr(indent)
  indent = indent or ""
  local head = self.__name .. "(" .. self:extra_repr()
  if #self._children == 0 then return head .. ")" end
  local lines = { head .. (self:extra_repr() ~= "" and ", " or "") .. "children:" }
  for _, c in ipairs(self._children) do
    lines[#lines + 1] = indent .. "  (" .. c .. "): " .. self[c]:repr(indent .. "  ")
  end
  lines[#lines + 1] = indent .. ")"
  return table.concat(lines, "\n")
end

return Module
