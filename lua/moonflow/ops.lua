-- Differentiable ops: each states its forward, its vjp and its jvp together.
-- Inside rules, tensors are combined with the raw kernels (C) or with these
-- same ops; recording is off there, so either is fine.
local core = require "moonflow.core"
local A = require "moonflow.autograd"

local apply, sum_to, is_tensor = A.apply, A.sum_to, A.is_tensor
local C = core
local O = {}

local function un(op, x) return C.unary(op, x) end
local function bin(op, a, b) return C.binary(op, a, b) end
local function mul(a, b) return C.binary("mul", a, b) end
local function add(a, b) return C.binary("add", a, b) end
local function sub(a, b) return C.binary("sub", a, b) end
local function div(a, b) return C.binary("div", a, b) end
local function shape_of(x) return is_tensor(x) and x:shape() or {} end

-- a + b where either may be nil (a zero tangent)
local function add_opt(a, b)
  if a == nil then return b end
  if b == nil then return a end
  return add(a, b)
end

local function def(name, op)
  op.name = name
  O[name .. "_op"] = op
  return op
end

-- identity: a new handle on the same storage, recorded like any op
local identity = def("alias", {
  forward = function(ctx, x) return C.reshape(x, x:shape()) end,
  vjp = function(ctx, g) return g end,
  jvp = function(ctx, t) return t end,
})
function A.alias(x) return apply(identity, x) end
O.alias = A.alias

---------------------------------------------------------------- unary ops
-- Each entry: forward kernel name and d out / d x as a function of (x, y).
local unary_rules = {
  -- y = -x
  neg = function(x, y, g) return un("neg", g) end,
  -- y = e^x, dy = y
  exp = function(x, y, g) return mul(g, y) end,
  -- y = log x, dy = 1/x
  log = function(x, y, g) return div(g, x) end,
  -- y = sqrt x, dy = 1 / (2 y)
  sqrt = function(x, y, g) return div(g, bin("mul", y, 2)) end,
  -- y = x^-1/2, dy = -y / (2 x)
  rsqrt = function(x, y, g) return mul(g, div(bin("mul", y, -0.5), x)) end,
  -- y = sin x, dy = cos x
  sin = function(x, y, g) return mul(g, un("cos", x)) end,
  -- y = cos x, dy = -sin x
  cos = function(x, y, g) return mul(g, un("neg", un("sin", x))) end,
  -- y = tanh x, dy = 1 - y^2
  tanh = function(x, y, g) return mul(g, bin("sub", 1, un("square", y))) end,
  -- y = sigmoid x, dy = y (1 - y)
  sigmoid = function(x, y, g) return mul(g, mul(y, bin("sub", 1, y))) end,
  -- y = x sigmoid x, dy = s (1 + x (1 - s))
  silu = function(x, y, g) return mul(g, un("silu_grad", x)) end,
  -- y = x Phi(x), dy = Phi(x) + x phi(x)
  gelu = function(x, y, g) return mul(g, un("gelu_grad", x)) end,
  -- y = x (1 + tanh u) / 2, u = sqrt(2/pi) (x + 0.044715 x^3) (cl/activations.cl)
  gelu_tanh = function(x, y, g) return mul(g, un("gelu_tanh_grad", x)) end,
  -- y = max(x, 0), dy = [x > 0]
  relu = function(x, y, g) return mul(g, bin("gt", x, 0)) end,
  -- y = |x|, dy = sign x
  abs = function(x, y, g) return mul(g, un("sign", x)) end,
  -- y = x^2, dy = 2 x
  square = function(x, y, g) return mul(g, bin("mul", x, 2)) end,
  -- y = 1/x, dy = -y^2
  recip = function(x, y, g) return mul(g, un("neg", un("square", y))) end,
  -- y = erf x, dy = 2/sqrt(pi) e^(-x^2)
  erf = function(x, y, g)
    return mul(g, bin("mul", un("exp", un("neg", un("square", x))), 1.1283791670955126))
  end,
}

-- zero derivative almost everywhere
local piecewise_constant = { sign = true, floor = true }

-- One op per unary kernel, in the binding's order (core.unary_ops, listed
-- once in src/kernel_names.h); silu_grad and gelu_grad are derivatives,
-- used by the rules above, not ops of their own.
local kernels = {}
for _, name in ipairs(C.unary_ops) do
  kernels[name] = true
  local rule = unary_rules[name]
  local op
  if rule then
    op = def(name, {
      forward = function(ctx, x)
        local y = un(name, x)
        ctx.x, ctx.y = x, y
        return y
      end,
      -- the derivative is linear in g: the same rule gives vjp and jvp
      vjp = function(ctx, g) return rule(ctx.x, ctx.y, g) end,
      jvp = function(ctx, t) return rule(ctx.x, ctx.y, t) end,
    })
  elseif piecewise_constant[name] then
    op = def(name, {
      forward = function(ctx, x) ctx.x = x; return un(name, x) end,
      vjp = function(ctx, g) return nil end,
      jvp = function(ctx, t) return C.full(ctx.x:shape(), 0, C.dtype(ctx.x)) end,
    })
  end
  if op then O[name] = function(x) return apply(op, x) end end
end
for name in pairs(unary_rules) do
  assert(kernels[name], "moonflow.ops: no unary kernel " .. name .. " for its rule")
end

-- gelu(x) is exact (x Phi(x)); gelu(x, "tanh") the tanh approximation
local gelu_exact = O.gelu
function O.gelu(x, approximate)
  if approximate == nil or approximate == "none" then return gelu_exact(x) end
  if approximate == "tanh" then return O.gelu_tanh(x) end
  error(("moonflow.gelu: approximate must be \"none\" or \"tanh\", got %s"):format(tostring(approximate)), 2)
end

-- y = x^p (p a number), dy = p x^(p-1)
local pow_scalar = def("pow_scalar", {
  forward = function(ctx, x, p) ctx.x, ctx.p = x, p; return bin("pow", x, p) end,
  vjp = function(ctx, g) return mul(g, bin("mul", bin("pow", ctx.x, ctx.p - 1), ctx.p)) end,
  jvp = function(ctx, t) return mul(t, bin("mul", bin("pow", ctx.x, ctx.p - 1), ctx.p)) end,
})
-- y = s^x (s a number), dy = y log s
local rpow_scalar = def("rpow_scalar", {
  forward = function(ctx, s, x) ctx.y, ctx.ls = bin("pow", s, x), math.log(s); return ctx.y end,
  vjp = function(ctx, g) return mul(g, bin("mul", ctx.y, ctx.ls)) end,
  jvp = function(ctx, _, t) return mul(t, bin("mul", ctx.y, ctx.ls)) end,
})

-- y = clamp(x, lo, hi), dy = [lo <= x <= hi]
local clamp = def("clamp", {
  forward = function(ctx, x, lo, hi)
    ctx.x, ctx.lo, ctx.hi = x, lo, hi
    return C.clamp(x, lo, hi)
  end,
  vjp = function(ctx, g)
    local m = ctx.mask or mul(bin("ge", ctx.x, ctx.lo or -math.huge), bin("le", ctx.x, ctx.hi or math.huge))
    ctx.mask = m
    return mul(g, m)
  end,
  jvp = function(ctx, t)
    return mul(t, mul(bin("ge", ctx.x, ctx.lo or -math.huge), bin("le", ctx.x, ctx.hi or math.huge)))
  end,
})
function O.clamp(x, lo, hi) return apply(clamp, x, lo, hi) end

--------------------------------------------------------------- binary ops
-- Numbers are constants; tensors broadcast. Rules return per-input
-- cotangents, summed back to each input's shape.

local function binop(name, forward, dA, dB)
  -- dA(ctx, g) / dB(ctx, g): cotangent contribution before sum_to
  local op = def(name, {
    forward = function(ctx, a, b)
      ctx.a, ctx.b = a, b
      local y = forward(a, b)
      ctx.y = y
      return y
    end,
    vjp = function(ctx, g)
      local a, b = ctx.a, ctx.b
      local ga = is_tensor(a) and sum_to(dA(ctx, g), a:shape()) or nil
      local gb = is_tensor(b) and sum_to(dB(ctx, g), b:shape()) or nil
      if is_tensor(a) then return ga, gb end
      return gb
    end,
    jvp = function(ctx, ta, tb)
      local r = add_opt(ta and dA(ctx, ta), tb and dB(ctx, tb))
      local ys = ctx.y:shape()
      local rs = r:shape()
      if #rs ~= #ys or table.concat(rs, ",") ~= table.concat(ys, ",") then
        r = C.contiguous(C.expand(r, ys))
      end
      return r
    end,
  })
  return function(a, b) return apply(op, a, b) end
end

-- y = a + b
O.add = binop("add", function(a, b) return bin("add", a, b) end,
  function(ctx, g) return g end, function(ctx, g) return g end)
-- y = a - b
O.sub = binop("sub", function(a, b) return bin("sub", a, b) end,
  function(ctx, g) return g end, function(ctx, g) return un("neg", g) end)
-- y = a b
O.mul = binop("mul", function(a, b) return bin("mul", a, b) end,
  function(ctx, g) return mul(g, ctx.b) end, function(ctx, g) return mul(g, ctx.a) end)
-- y = a / b, dy/da = 1/b, dy/db = -y/b
O.div = binop("div", function(a, b) return bin("div", a, b) end,
  function(ctx, g) return div(g, ctx.b) end,
  function(ctx, g) return un("neg", div(mul(g, ctx.y), ctx.b)) end)
-- y = max(a, b): the gradient goes to the larger (to a on ties)
O.maximum = binop("maximum", function(a, b) return bin("maximum", a, b) end,
  function(ctx, g) return mul(g, bin("ge", ctx.a, ctx.b)) end,
  function(ctx, g) return mul(g, bin("lt", ctx.a, ctx.b)) end)
O.minimum = binop("minimum", function(a, b) return bin("minimum", a, b) end,
  function(ctx, g) return mul(g, bin("le", ctx.a, ctx.b)) end,
  function(ctx, g) return mul(g, bin("gt", ctx.a, ctx.b)) end)
-- y = a^b for tensors: dy/da = b a^(b-1), dy/db = y log a
local pow_tt = binop("pow", function(a, b) return bin("pow", a, b) end,
  function(ctx, g) return mul(g, mul(ctx.b, bin("pow", ctx.a, sub(ctx.b, C.full({}, 1, C.dtype(ctx.b)))))) end,
  function(ctx, g) return mul(g, mul(ctx.y, un("log", ctx.a))) end)

function O.pow(a, b)
  if type(b) == "number" then return apply(pow_scalar, a, b) end
  if type(a) == "number" then return apply(rpow_scalar, a, b) end
  return pow_tt(a, b)
end

-- comparisons: constants to autograd
for _, name in ipairs { "lt", "le", "gt", "ge", "eq", "ne" } do
  O[name] = function(a, b) return bin(name, a, b) end
end

-- y = m ? a : b
local where = def("where", {
  forward = function(ctx, m, a, b)
    ctx.m, ctx.a, ctx.b = m, a, b
    ctx.y = C.where(m, a, b)
    return ctx.y
  end,
  vjp = function(ctx, g)
    local z = C.full({}, 0, C.dtype(g))
    local ga = sum_to(C.where(ctx.m, g, z), ctx.a:shape())
    local gb = sum_to(C.where(ctx.m, z, g), ctx.b:shape())
    return nil, ga, gb
  end,
  jvp = function(ctx, _, ta, tb)
    local ys = ctx.y:shape()
    local z = C.full(ys, 0, C.dtype(ctx.y))
    return C.where(ctx.m, ta or z, tb or z)
  end,
})
function O.where(m, a, b)
  local dt = is_tensor(a) and C.dtype(a) or is_tensor(b) and C.dtype(b) or "f32"
  if type(a) == "number" then a = C.full({}, a, dt) end
  if type(b) == "number" then b = C.full({}, b, dt) end
  if C.dtype(m) ~= dt then m = C.to(m, dt) end
  return apply(where, m, a, b)
end

---------------------------------------------------------------- reductions
-- dims (nil for all, a dim, or a list) as distinct 1-based dims; errors name fn
local function norm_dims(x, dims, fn)
  if not is_tensor(x) then error(("moonflow.%s: expected a tensor, got %s"):format(fn, type(x)), 3) end
  local n = C.dim(x)
  if dims == nil then
    local all = {}
    for i = 1, n do all[i] = i end
    return all
  end
  if type(dims) == "number" then dims = { dims } end
  if type(dims) ~= "table" then
    error(("moonflow.%s: dims must be a dim or a list of dims, got %s"):format(fn, type(dims)), 3)
  end
  local out, seen = {}, {}
  for i, d in ipairs(dims) do
    local z = math.tointeger(d)
    if z and z < 0 then z = z + n + 1 end
    if not z or z < 1 or z > n then
      error(("moonflow.%s: dim %s out of range for a tensor with %d dims"):format(fn, tostring(d), n), 3)
    end
    if seen[z] then error(("moonflow.%s: dim %s repeated"):format(fn, tostring(d)), 3) end
    seen[z] = true
    out[i] = z
  end
  return out
end

local function count(x, dims)
  local s, n = x:shape(), 1
  for _, d in ipairs(dims) do n = n * s[d < 0 and d + #s + 1 or d] end
  return n
end

-- g (reduced shape) broadcast back over x's shape
local function expand_back(g, x, dims, keepdim)
  local xs = x:shape()
  if not keepdim then
    local ks = {}
    for i = 1, #xs do ks[i] = xs[i] end
    for _, d in ipairs(dims) do ks[d < 0 and d + #xs + 1 or d] = 1 end
    g = C.reshape(g, ks)
  end
  return C.expand(g, xs)
end

-- y = sum over dims of x
local sum = def("sum", {
  forward = function(ctx, x, dims, keepdim)
    ctx.x, ctx.dims, ctx.keep = x, dims, keepdim
    return C.reduce("sum", x, dims, keepdim, "sum")
  end,
  vjp = function(ctx, g) return C.contiguous(expand_back(g, ctx.x, ctx.dims, ctx.keep)) end,
  jvp = function(ctx, t) return C.reduce("sum", t, ctx.dims, ctx.keep, "sum") end,
})
function O.sum(x, dims, keepdim)
  return apply(sum, x, norm_dims(x, dims, "sum"), keepdim or false)
end

-- y = sum / n
function O.mean(x, dims, keepdim)
  dims = norm_dims(x, dims, "mean")
  if C.dtype(x) == "i32" then error("moonflow.mean: an i32 tensor has no i32 mean; convert it with :to(\"f32\")", 2) end
  return O.mul(O.sum(x, dims, keepdim), 1 / count(x, dims))
end

-- y = max over dims; the gradient is split evenly between tied maxima
local function extreme(name)
  local op = def(name, {
    forward = function(ctx, x, dims, keepdim)
      ctx.x, ctx.dims, ctx.keep = x, dims, keepdim
      ctx.y = C.reduce(name, x, dims, keepdim, name)
      return ctx.y
    end,
    vjp = function(ctx, g)
      local yk = expand_back(ctx.y, ctx.x, ctx.dims, ctx.keep)
      local m = bin("eq", ctx.x, yk)
      local cnt = C.reduce("sum", m, ctx.dims, true, name)
      return div(mul(m, expand_back(g, ctx.x, ctx.dims, ctx.keep)), cnt)
    end,
    jvp = function(ctx, t)
      local yk = expand_back(ctx.y, ctx.x, ctx.dims, ctx.keep)
      local m = bin("eq", ctx.x, yk)
      local cnt = C.reduce("sum", m, ctx.dims, ctx.keep, name)
      return div(C.reduce("sum", mul(m, t), ctx.dims, ctx.keep, name), cnt)
    end,
  })
  return function(x, dims, keepdim) return apply(op, x, norm_dims(x, dims, name), keepdim or false) end
end
O.max = extreme("max")
O.min = extreme("min")

-- var = sum (x - mean)^2 / (n - correction); correction 1 by default (unbiased)
function O.var(x, dims, keepdim, correction)
  dims = norm_dims(x, dims, "var")
  local n = count(x, dims)
  local d = O.sub(x, O.mean(x, dims, true))
  return O.mul(O.sum(O.square(d), dims, keepdim), 1 / math.max(n - (correction or 1), 1))
end

-- norm = sqrt(sum x^2)
function O.norm(x, dims, keepdim)
  return O.sqrt(O.sum(O.square(x), norm_dims(x, dims, "norm"), keepdim))
end

--------------------------------------------------------------------- views
local reshape = def("reshape", {
  forward = function(ctx, x, shape)
    ctx.s = x:shape()
    local y = C.reshape(x, shape)
    ctx.shape_out = y:shape()
    return y
  end,
  vjp = function(ctx, g) return C.reshape(g, ctx.s) end,
  jvp = function(ctx, t) return C.reshape(t, ctx.shape_out) end,
})
function O.reshape(x, shape) return apply(reshape, x, shape) end

local permute = def("permute", {
  forward = function(ctx, x, perm)
    local y = C.permute(x, perm) -- checks perm first
    local inv = {}
    for i, p in ipairs(perm) do
      local z = p < 0 and p + #perm + 1 or p
      inv[z] = i
    end
    ctx.perm, ctx.inv = perm, inv
    return y
  end,
  vjp = function(ctx, g) return C.permute(g, ctx.inv) end,
  jvp = function(ctx, t) return C.permute(t, ctx.perm) end,
})
function O.permute(x, perm) return apply(permute, x, perm) end

function O.transpose(x, d1, d2)
  local n = C.dim(x)
  d1 = d1 or n - 1
  d2 = d2 or n
  local perm = {}
  for i = 1, n do perm[i] = i end
  for _, d in ipairs { d1, d2 } do
    if math.type(d) ~= "integer" or d < -n or d == 0 or d > n then
      error(("moonflow.transpose: dim %s out of range for a tensor with %d dims"):format(tostring(d), n), 2)
    end
  end
  d1 = d1 < 0 and d1 + n + 1 or d1
  d2 = d2 < 0 and d2 + n + 1 or d2
  perm[d1], perm[d2] = perm[d2], perm[d1]
  return O.permute(x, perm)
end

-- narrow(x, dim, start, len): the vjp pads g with zeros
local narrow = def("narrow", {
  forward = function(ctx, x, dim, start, len)
    ctx.x, ctx.dim, ctx.start, ctx.len = x, dim, start, len
    return C.narrow(x, dim, start, len)
  end,
  vjp = function(ctx, g)
    -- a leaf with its gradient buffer preset (a model's flat gradients): add
    -- g into that slice and return nothing, instead of a zero-filled copy of
    -- the whole leaf that the tape would then add
    local x = ctx.x
    local acc = x._leaf and x.grad
    if acc and C.dtype(acc) == C.dtype(g) then
      C.binary_("add", C.narrow(acc, ctx.dim, ctx.start, ctx.len), g)
      return nil
    end
    local z = C.full(x:shape(), 0, C.dtype(g))
    C.copy_(C.narrow(z, ctx.dim, ctx.start, ctx.len), g)
    return z
  end,
  jvp = function(ctx, t) return C.narrow(t, ctx.dim, ctx.start, ctx.len) end,
})
function O.narrow(x, dim, start, len) return apply(narrow, x, dim, start, len) end

local expand = def("expand", {
  forward = function(ctx, x, shape) ctx.s = x:shape(); ctx.shape = shape; return C.expand(x, shape) end,
  vjp = function(ctx, g) return sum_to(g, ctx.s) end,
  jvp = function(ctx, t) return C.expand(t, ctx.shape) end,
})
function O.expand(x, shape) return apply(expand, x, shape) end

local contiguous = def("contiguous", {
  forward = function(ctx, x) return C.contiguous(x) end,
  vjp = function(ctx, g) return g end,
  jvp = function(ctx, t) return C.contiguous(t) end,
})
function O.contiguous(x)
  local contig = select(5, C.info(x))
  if contig then return x end
  return apply(contiguous, x)
end

local clone = def("clone", {
  forward = function(ctx, x) return C.clone(x) end,
  vjp = function(ctx, g) return g end,
  jvp = function(ctx, t) return C.clone(t) end,
})
function O.clone(x) return apply(clone, x) end

local to = def("to", {
  forward = function(ctx, x, dt) ctx.dt0 = C.dtype(x); ctx.dt = dt; return C.to(x, dt) end,
  vjp = function(ctx, g) return C.to(g, ctx.dt0) end,
  jvp = function(ctx, t) return C.to(t, ctx.dt) end,
})
function O.to(x, dt)
  if C.dtype(x) == (dt or "f32") then return x end
  return apply(to, x, dt)
end

---------------------------------------------------------- matmul and friends
-- C = A B: dA = G B^T, dB = A^T G; tangent dA B + A dB
local function mT(x) local n = C.dim(x); local p = {}; for i = 1, n do p[i] = i end; p[n - 1], p[n] = n, n - 1; return C.permute(x, p) end
local matmul = def("matmul", {
  forward = function(ctx, a, b) ctx.a, ctx.b = a, b; return C.matmul(a, b) end,
  vjp = function(ctx, g)
    local n = ctx.needs or { true, true }
    return n[1] and C.matmul(g, mT(ctx.b)) or nil, n[2] and C.matmul(mT(ctx.a), g) or nil
  end,
  jvp = function(ctx, ta, tb)
    return add_opt(ta and C.matmul(ta, ctx.b), tb and C.matmul(ctx.a, tb))
  end,
})
function O.matmul(a, b) return apply(matmul, a, b) end

-- cat(list, dim): the vjp narrows g back into pieces
local cat = def("cat", {
  forward = function(ctx, dim, ...)
    local list = { ... }
    ctx.dim, ctx.n, ctx.dt = dim, #list, C.dtype(list[1])
    ctx.shapes, ctx.sizes = {}, {}
    for i, t in ipairs(list) do
      local s = t:shape()
      ctx.shapes[i] = s
      ctx.sizes[i] = s[dim < 0 and dim + #s + 1 or dim]
    end
    return C.cat(list, dim)
  end,
  vjp = function(ctx, g)
    local out, at = {}, 1
    for i = 1, ctx.n do
      out[i] = C.contiguous(C.narrow(g, ctx.dim, at, ctx.sizes[i]))
      at = at + ctx.sizes[i]
    end
    return table.unpack(out, 1, ctx.n)
  end,
  jvp = function(ctx, _, ...)
    local ts, parts = { ... }, {}
    for i = 1, ctx.n do parts[i] = ts[i] or C.full(ctx.shapes[i], 0, ctx.dt) end
    return C.cat(parts, ctx.dim)
  end,
})
function O.cat(list, dim)
  if type(list) ~= "table" or #list == 0 then error("moonflow.cat: expected a non-empty list of tensors", 2) end
  for i, t in ipairs(list) do
    if not is_tensor(t) then error(("moonflow.cat: entry %d is a %s, not a tensor"):format(i, type(t)), 2) end
  end
  return apply(cat, dim or 1, table.unpack(list))
end

-- index_select(x, dim, idx): rows of x; vjp adds g's rows back (index_add)
local index_select = def("index_select", {
  forward = function(ctx, x, dim, idx)
    local y = C.index_select(x, dim, idx) -- checks dim first
    ctx.dim, ctx.idx = dim, idx
    ctx.size = x:shape()[dim < 0 and dim + C.dim(x) + 1 or dim]
    return y
  end,
  vjp = function(ctx, g) return C.index_add(g, ctx.dim, ctx.idx, ctx.size) end,
  jvp = function(ctx, t) return C.index_select(t, ctx.dim, ctx.idx) end,
})
function O.index_select(x, dim, idx) return apply(index_select, x, dim, idx) end

-- gather(x, dim, idx): vjp scatters g back with addition
local gather = def("gather", {
  forward = function(ctx, x, dim, idx) ctx.x, ctx.dim, ctx.idx = x, dim, idx; return C.gather(x, dim, idx) end,
  vjp = function(ctx, g) return C.scatter_add(ctx.x, ctx.dim, ctx.idx, g) end,
  jvp = function(ctx, t) return C.gather(t, ctx.dim, ctx.idx) end,
})
function O.gather(x, dim, idx) return apply(gather, x, dim, idx) end

----------------------------------------------------------------- softmax
-- Over the last dim of packed rows, one kernel per mode (cl/softmax.cl):
-- softmax y = e^(x - max) / sum: vjp = jvp = y (g - sum g y) (symmetric Jacobian);
-- log_softmax y = x - max - log sum: vjp g - e^y sum g, jvp t - sum e^y t.
local function packed(t)
  local _, _, _, off, contig = C.info(t)
  if contig and off == 0 then return t end
  return C.clone(t) -- one packed copy of any view (contiguous() first would copy twice)
end
local softmax_last = def("softmax", {
  forward = function(ctx, x)
    ctx.y = C.nn_softmax(packed(x), nil, "softmax")
    return ctx.y
  end,
  vjp = function(ctx, g) return C.nn_softmax(packed(g), ctx.y, "softmax_d") end,
  jvp = function(ctx, t) return C.nn_softmax(packed(t), ctx.y, "softmax_d") end,
})
local log_softmax_last = def("log_softmax", {
  forward = function(ctx, x)
    ctx.y = C.nn_softmax(packed(x), nil, "log_softmax")
    return ctx.y
  end,
  vjp = function(ctx, g) return C.nn_softmax(packed(g), ctx.y, "log_softmax_vjp") end,
  jvp = function(ctx, t) return C.nn_softmax(packed(t), ctx.y, "log_softmax_jvp") end,
})
O.packed = packed

-- over any dim: that dim is swapped to the last (a copy), and back (a view)
local function softmax_along(op, fn)
  return function(x, dim)
    if not is_tensor(x) then error(("moonflow.%s: expected a tensor, got %s"):format(fn, type(x)), 2) end
    local dt = C.dtype(x)
    if dt ~= "f32" and dt ~= "f64" then error(("moonflow.%s: dtype %s, expected f32 or f64"):format(fn, dt), 2) end
    local n = C.dim(x)
    if n == 0 then error(("moonflow.%s: a tensor with no dims has no rows"):format(fn), 2) end
    dim = dim or n
    local d = math.tointeger(dim)
    if d and d < 0 then d = d + n + 1 end
    if not d or d < 1 or d > n then
      error(("moonflow.%s: dim %s out of range for a tensor with %d dims"):format(fn, tostring(dim), n), 2)
    end
    if d == n then return apply(op, x) end
    return O.transpose(apply(op, O.transpose(x, d, n)), d, n)
  end
end
O.softmax = softmax_along(softmax_last, "softmax")
O.log_softmax = softmax_along(log_softmax_last, "log_softmax")

O.def = def
O.apply = apply
O.shape_of = shape_of
return O
