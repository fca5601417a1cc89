-- The tensor API: constructors, methods, operators and printing over the
-- C core, with autograd through moonflow.ops.
local core = require "moonflow.core"
local A = require "moonflow.autograd"
local O = require "moonflow.ops"
local format = require "moonflow.format"

local T = {}
local M = core.methods -- methods every tensor has
local mt = core.metatable
local is_tensor = A.is_tensor

-- opts is a dtype string ("f64") or a table {dtype = "f64"}; nil is f32
local function opts_dtype(opts, fn)
  if type(opts) == "string" then return opts end
  if opts ~= nil and type(opts) ~= "table" then
    error(("moonflow.%s: options must be a dtype string or a table, got %s"):format(fn, tostring(opts)), 3)
  end
  return opts and opts.dtype or "f32"
end

---------------------------------------------------------------- creation
function T.tensor(data, opts)
  local dt = opts_dtype(opts, "tensor")
  if is_tensor(data) then -- a copy, in its own dtype unless one is asked for
    if opts == nil or type(opts) == "table" and opts.dtype == nil then dt = core.dtype(data) end
    return O.to(O.clone(data), dt)
  end
  if type(data) ~= "table" and type(data) ~= "number" then
    error(("moonflow.tensor: expected a nested table or a number, got %s"):format(type(data)), 2)
  end
  return core.tensor(data, dt)
end
-- the last argument of core.full / core.empty names the function in errors
function T.zeros(shape, opts) return core.full(shape, 0, opts_dtype(opts, "zeros"), "zeros") end
function T.ones(shape, opts) return core.full(shape, 1, opts_dtype(opts, "ones"), "ones") end
function T.full(shape, value, opts) return core.full(shape, value, opts_dtype(opts, "full"), "full") end
function T.empty(shape, opts) return core.empty(shape, opts_dtype(opts, "empty"), "empty") end
function T.zeros_like(t) return core.full(t:shape(), 0, core.dtype(t)) end
function T.ones_like(t) return core.full(t:shape(), 1, core.dtype(t)) end
function T.full_like(t, v) return core.full(t:shape(), v, core.dtype(t)) end

-- arange(stop) | arange(start, stop[, step][, opts]): start, start + step, ... < stop
function T.arange(a, b, c, d)
  local start, stop, step, opts
  if b == nil or type(b) == "table" or type(b) == "string" then start, stop, step, opts = 0, a, 1, b
  elseif c == nil or type(c) == "table" or type(c) == "string" then start, stop, step, opts = a, b, 1, c
  else start, stop, step, opts = a, b, c, d end
  if step == 0 then error("moonflow.arange: step is 0", 2) end
  local n = math.max(0, math.ceil((stop - start) / step))
  return core.arange(n, start, step, opts_dtype(opts, "arange"))
end

-- n points from a to b inclusive
function T.linspace(a, b, n, opts)
  if math.type(n) ~= "integer" or n < 1 then error(("moonflow.linspace: n must be a positive integer, got %s"):format(n), 2) end
  local step = n > 1 and (b - a) / (n - 1) or 0
  return core.arange(n, a, step, opts_dtype(opts, "linspace"))
end

T.from_bytes = core.from_bytes
-- set_memory_limit(bytes | nil) -> previous limit: caps the pool below the
-- device's global memory (nil restores that); see README "Out of memory"
T.set_memory_limit = core.set_memory_limit
T.is_tensor = is_tensor

---------------------------------------------------------------- metadata
M.shape = core.shape
M.size = function(t, d)
  local s = core.shape(t)
  if d == nil then return s end
  return s[d < 0 and d + #s + 1 or d]
end
M.dim = core.dim
M.numel = core.numel
M.dtype = core.dtype
M.strides = core.strides
M.totable = core.totable
M.tolist = core.flat
M.item = core.item
M.tobytes = core.tobytes
M.is_contiguous = function(t) return (select(5, core.info(t))) end
M.storage_offset = function(t) return (select(4, core.info(t))) end
M.storage = core.storage

------------------------------------------------------------------ autograd
-- t:requires_grad([flag]) marks a leaf whose gradient accumulates in t.grad
function M.requires_grad(t, flag)
  if flag == false then t._leaf = nil else t._leaf = true end
  return t
end
function M.requires_grad_(t, flag) return M.requires_grad(t, flag) end
function M.needs_grad(t) return t._node ~= nil or t._leaf == true end
function M.backward(t, g) A.backward(t, g) end
-- a handle on the same storage that records nothing
function M.detach(t) return core.reshape(t, core.shape(t)) end
function M.zero_grad(t) t.grad = nil end

------------------------------------------------------------ differentiable
-- every unary op of the binding's list (src/kernel_names.h) that ops.lua
-- defines; silu_grad and gelu_grad are derivatives, not methods
for _, name in ipairs(core.unary_ops) do
  if O[name] then M[name] = O[name] end
end
M.pow = O.pow
M.clamp = function(t, lo, hi)
  if type(lo) == "table" then lo, hi = lo.min or lo[1], lo.max or lo[2] end
  return O.clamp(t, lo, hi)
end
for _, name in ipairs { "add", "sub", "mul", "div", "maximum", "minimum", "lt", "le", "gt", "ge", "eq", "ne" } do
  M[name] = O[name]
end
M.matmul = O.matmul
-- t:softmax([dim]), t:log_softmax([dim]): over dim (default the last)
M.softmax, M.log_softmax = O.softmax, O.log_softmax
M.reshape = function(t, ...)
  local s = ...
  if type(s) ~= "table" then s = { ... } end
  return O.reshape(t, s)
end
M.view = M.reshape
M.permute = function(t, ...)
  local p = ...
  if type(p) ~= "table" then p = { ... } end
  return O.permute(t, p)
end
-- t:select(dim, i): the slice at index i of dim (1-based; negative counts
-- from the end), that dim removed. A view of t's storage; when autograd
-- records t it is a narrow and a reshape (differentiable, and a copy).
function M.select(t, dim, i)
  if t._node == nil and not t._leaf or not A.grad_enabled() then return core.select(t, dim, i) end
  local s = core.shape(t)
  local d = math.tointeger(dim)
  d = d and d < 0 and d + #s + 1 or d
  local v = core.select(t, dim, i) -- checks dim and i, names them in errors
  local z = i < 0 and i + s[d] + 1 or i
  return O.reshape(O.narrow(t, d, z, 1), core.shape(v))
end
-- t[i] and t[{i, j, ...}] (Torch7): select along dims 1, 2, ...; a result
-- with no dims left is a Lua number, so a 1-D t[i] is a number and a 2-D
-- t[i] a row view
mt.__getitem = function(t, key)
  local v = t
  if type(key) == "number" then v = M.select(t, 1, key)
  else
    if #key > core.dim(t) then
      error(("moonflow.index: %d indices for a tensor with %d dims"):format(#key, core.dim(t)), 3)
    end
    for _, i in ipairs(key) do v = M.select(v, 1, i) end
  end
  if core.dim(v) == 0 then return core.item(v) end
  return v
end
M.transpose = O.transpose
M.t = function(t) return O.transpose(t, 1, 2) end
M.narrow = O.narrow
M.expand = function(t, ...)
  local s = ...
  if type(s) ~= "table" then s = { ... } end
  return O.expand(t, s)
end
M.contiguous = O.contiguous
M.clone = O.clone
M.to = O.to
-- x:index_select(dim, idx), x:gather(dim, idx): i32 indices from 0. One
-- outside [0, size - 1] (negative too) is flagged on the device and raised
-- at the next read (item, totable, tobytes, save) or mf.synchronize(),
-- naming the op, the index, its position and the range (ops_index.c).
M.index_select = O.index_select
M.gather = O.gather
M.flatten = function(t) return O.reshape(t, { core.numel(t) }) end
M.unsqueeze = function(t, d)
  local s = core.shape(t)
  local z = math.tointeger(d)
  z = z and z < 0 and z + #s + 2 or z
  if not z or z < 1 or z > #s + 1 then
    error(("moonflow.unsqueeze: dim %s out of range for a tensor with %d dims"):format(tostring(d), #s), 2)
  end
  table.insert(s, z, 1)
  return O.reshape(t, s)
end
M.squeeze = function(t, d)
  local s, out = core.shape(t), {}
  for i, v in ipairs(s) do
    if not (v == 1 and (d == nil or d == i or d == i - #s - 1)) then out[#out + 1] = v end
  end
  return O.reshape(t, out)
end

-- reductions: t:sum(), t:sum(2), t:sum({1, 2}, true), t:sum{dims = 2, keepdim = true}
local function red_args(dims, keepdim)
  if type(dims) == "table" and (dims.dims ~= nil or dims.keepdim ~= nil or dims.correction ~= nil) then
    return dims.dims, dims.keepdim, dims.correction
  end
  return dims, keepdim
end
for _, name in ipairs { "sum", "mean", "max", "min", "norm" } do
  local f = O[name]
  M[name] = function(t, dims, keepdim)
    local d, k = red_args(dims, keepdim)
    return f(t, d, k)
  end
end
M.var = function(t, dims, keepdim, correction)
  local d, k, c = red_args(dims, keepdim)
  return O.var(t, d, k, c or correction)
end
M.std = function(t, ...) return O.sqrt(M.var(t, ...)) end

------------------------------------------------------------------ in place
-- Not recorded: use them on tensors that autograd does not track, or
-- under mf.no_grad (how parameters are set by hand).
local function guard(t, fn)
  if (t._node ~= nil or t._leaf) and A.grad_enabled() then
    error(("moonflow.%s: in-place op on a tensor that requires grad"):format(fn), 3)
  end
end
for _, name in ipairs { "add", "sub", "mul", "div", "maximum", "minimum", "pow" } do
  M[name .. "_"] = function(t, other)
    guard(t, name .. "_")
    return core.binary_(name, t, other)
  end
end
function M.copy_(t, src)
  guard(t, "copy_")
  if type(src) == "number" then return core.fill_(t, src) end
  if core.dtype(src) ~= core.dtype(t) then src = core.to(src, core.dtype(t)) end
  return core.copy_(t, src)
end
function M.fill_(t, v) guard(t, "fill_"); return core.fill_(t, v) end
function M.zero_(t) guard(t, "zero_"); return core.fill_(t, 0) end

----------------------------------------------------------------- operators
local function arith(name)
  local f = O[name]
  return function(a, b)
    if type(a) ~= "number" and not is_tensor(a) or type(b) ~= "number" and not is_tensor(b) then
      local ta, tb = is_tensor(a) and "tensor" or type(a), is_tensor(b) and "tensor" or type(b)
      error(("moonflow.%s: cannot combine %s and %s"):format(name, ta, tb), 2)
    end
    return f(a, b)
  end
end
mt.__add = arith("add")
mt.__sub = arith("sub")
mt.__mul = arith("mul")
mt.__div = arith("div")
mt.__pow = function(a, b) return O.pow(a, b) end
mt.__unm = function(a) return O.neg(a) end
mt.__len = function(t) return core.shape(t)[1] or 0 end
mt.__tostring = format.tensor
mt.__concat = function(a, b) return tostring(a) .. tostring(b) end

T.matmul = O.matmul
T.softmax, T.log_softmax = O.softmax, O.log_softmax
T.cat = O.cat
T.where = O.where
function T.stack(list, dim)
  dim = dim or 1
  local parts = {}
  for i, t in ipairs(list) do parts[i] = M.unsqueeze(t, dim) end
  return O.cat(parts, dim)
end
for _, name in ipairs { "exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "abs", "square" } do
  T[name] = O[name]
end
T.maximum, T.minimum = O.maximum, O.minimum

return T
