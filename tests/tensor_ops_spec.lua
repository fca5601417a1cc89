-- Every elementwise op against Lua-double references: dtypes, broadcasting,
-- number operands on either side, non-contiguous inputs, in-place variants.
local mf = require "moonflow"
local H = require "helpers"

local function f32(x) return (string.unpack("f", string.pack("f", x))) end
local function round32(t) return H.map(f32, t) end

-- erf by its Maclaurin series, exact to ~1e-14 for |x| <= 3:
-- erf x = 2/sqrt(pi) sum_n (-1)^n x^(2n+1) / (n! (2n+1))
local function erf(x)
  local term, sum, n = x, x, 0
  repeat
    n = n + 1
    term = -term * x * x / n
    local d = term / (2 * n + 1)
    sum = sum + d
  until math.abs(d) < 1e-17 * math.abs(sum)
  return sum * 2 / math.sqrt(math.pi)
end

local function sign(x) return x > 0 and 1 or (x < 0 and -1 or 0) end
local function sigmoid(x) return 1 / (1 + math.exp(-x)) end
local function transpose(m)
  local out = {}
  for j = 1, #m[1] do
    out[j] = {}
    for i = 1, #m do out[j][i] = m[i][j] end
  end
  return out
end
local function cols(m, a, b) -- columns a..b of a matrix
  local out = {}
  for i = 1, #m do
    out[i] = {}
    for j = a, b do out[i][#out[i] + 1] = m[i][j] end
  end
  return out
end
local function b2n(b) return b and 1 or 0 end

-- name -> Lua reference, input range, f32 relative tolerance
local unary = {
  neg = { function(x) return -x end, -3, 3, 0 },
  exp = { math.exp, -4, 4, 3e-6 },
  log = { math.log, 0.01, 5, 3e-6 },
  sqrt = { math.sqrt, 0, 9, 1e-6 },
  rsqrt = { function(x) return 1 / math.sqrt(x) end, 0.05, 9, 3e-6 },
  sin = { math.sin, -6, 6, 3e-6 },
  cos = { math.cos, -6, 6, 3e-6 },
  tanh = { function(x) return (math.exp(x) - math.exp(-x)) / (math.exp(x) + math.exp(-x)) end, -4, 4, 3e-6 },
  erf = { erf, -3, 3, 3e-6 },
  sigmoid = { sigmoid, -8, 8, 3e-6 },
  silu = { function(x) return x * sigmoid(x) end, -8, 8, 3e-6 },
  gelu = { function(x) return 0.5 * x * (1 + erf(x / math.sqrt(2))) end, -3, 3, 3e-6 },
  relu = { function(x) return math.max(x, 0) end, -2, 2, 0 },
  abs = { math.abs, -2, 2, 0 },
  square = { function(x) return x * x end, -3, 3, 1e-7 },
  sign = { sign, -2, 2, 0 },
  recip = { function(x) return 1 / x end, 0.1, 4, 1e-7 },
  floor = { math.floor, -5, 5, 0 },
}

describe("unary ops", function()
  for name, spec in pairs(unary) do
    local ref, lo, hi, rtol = spec[1], spec[2], spec[3], spec[4]
    it(name .. " matches Lua on f32, f64 and strided views", function()
      local data = round32(H.rand_table({ 5, 7 }, #name, lo, hi))
      if name == "sign" or name == "relu" or name == "abs" then data[1][1] = 0 end
      local expect = H.map(ref, data)
      local x = mf.tensor(data)
      -- atol covers results near zero, where relative error is meaningless
      H.close(x[name](x):totable(), expect, rtol, rtol, name .. " f32")
      local xd = mf.tensor(data, "f64")
      H.close(xd[name](xd):totable(), expect, 1e-13, 1e-14, name .. " f64")
      -- transposed view
      local xt = x:t()
      assert.is_false(xt:is_contiguous())
      H.close(xt[name](xt):totable(), transpose(expect), rtol, rtol, name .. " transposed")
      -- narrowed (offset and gaps) and expanded (stride 0) views
      local xn = x:narrow(2, 3, 4)
      H.close(xn[name](xn):totable(), cols(expect, 3, 6), rtol, rtol, name .. " narrow")
      local xe = x:narrow(1, 2, 1):expand { 3, 7 }
      H.close(xe[name](xe):totable(), { expect[2], expect[2], expect[2] }, rtol, rtol, name .. " expand")
      -- 0-d
      H.close(mf.tensor(data[1][2])[name](mf.tensor(data[1][2])):item(), expect[1][2], rtol, rtol, name .. " 0-d")
    end)
  end

  it("unary minus, neg, abs and square on i32", function()
    local data = { { -3, 0, 7 }, { 2147483647, -5, 1 } }
    local x = mf.tensor(data, "i32")
    assert.same({ { 3, 0, -7 }, { -2147483647, 5, -1 } }, (-x):totable())
    assert.same({ { 3, 0, 7 }, { 2147483647, 5, 1 } }, x:abs():totable())
    assert.same({ { 9, 0, 49 } }, x:narrow(1, 1, 1):square():totable())
    assert.same({ { 3, -2147483647 }, { 0, 5 }, { -7, -1 } }, x:t():neg():totable())
  end)

  it("nan and inf propagate the IEEE way", function()
    local x = mf.tensor({ -1, 0, math.huge, -math.huge })
    local l = x:log():totable()
    assert.is_true(l[1] ~= l[1])
    assert.equal(-math.huge, l[2])
    assert.equal(math.huge, l[3])
    H.close(x:sigmoid():totable(), { sigmoid(-1), 0.5, 1, 0 }, 1e-6, 0)
    assert.same({ 0, 0, math.huge, 0 }, x:relu():totable())
  end)
end)

-- name -> Lua reference over (x, y)
local binary = {
  add = function(x, y) return x + y end,
  sub = function(x, y) return x - y end,
  mul = function(x, y) return x * y end,
  div = function(x, y) return x / y end,
  maximum = math.max,
  minimum = math.min,
  pow = function(x, y) return x ^ y end,
  lt = function(x, y) return b2n(x < y) end,
  le = function(x, y) return b2n(x <= y) end,
  gt = function(x, y) return b2n(x > y) end,
  ge = function(x, y) return b2n(x >= y) end,
  eq = function(x, y) return b2n(x == y) end,
  ne = function(x, y) return b2n(x ~= y) end,
}
local floats_only = { div = true, pow = true }
local operator = { add = "+", sub = "-", mul = "*", div = "/" }

-- operands: positive for pow and div, small integers (ties) for comparisons
local function operands(name, shape, seed)
  if name == "pow" or name == "div" then
    return round32(H.rand_table(shape, seed, 0.5, 2))
  end
  return H.map(function(v) return math.floor(v * 2) / 2 end, H.rand_table(shape, seed, -2, 2))
end

local function bcast(x, y, f) -- {3,1} op {4} -> {3,4}
  local out = {}
  for i = 1, #x do
    out[i] = {}
    for j = 1, #y do out[i][j] = f(x[i][1], y[j]) end
  end
  return out
end

describe("binary ops", function()
  for name, ref in pairs(binary) do
    local rtol = (name == "pow") and 4e-6 or 1e-7
    it(name .. " matches Lua: dtypes, broadcasting, numbers, views", function()
      local a, b = operands(name, { 4, 5 }, 11), operands(name, { 4, 5 }, 12)
      local expect = H.map(ref, a, b)
      local dts = floats_only[name] and { "f32", "f64" } or { "f32", "f64", "i32" }
      for _, dt in ipairs(dts) do
        local ad, bd = a, b
        if dt == "i32" then
          ad = H.map(function(v) return math.floor(v * 2) end, a)
          bd = H.map(function(v) return math.floor(v * 2) end, b)
        end
        local e = H.map(ref, ad, bd)
        local x, y = mf.tensor(ad, dt), mf.tensor(bd, dt)
        local r = x[name](x, y)
        assert.equal(dt, r:dtype())
        H.close(r:totable(), e, dt == "f64" and 1e-14 or rtol, 0, name .. " " .. dt)
        if dt == "i32" then assert.equal("integer", math.type(r:totable()[1][1])) end
      end
      local x, y = mf.tensor(a), mf.tensor(b)
      if operator[name] then
        local r = load("local x, y = ...; return x " .. operator[name] .. " y")(x, y)
        H.close(r:totable(), expect, rtol, 0, name .. " operator")
      end
      -- broadcasting {3,1} with {4}
      local c, d = operands(name, { 3, 1 }, 13), operands(name, { 4 }, 14)
      local r = mf.tensor(c)[name](mf.tensor(c), mf.tensor(d))
      assert.same({ 3, 4 }, r:shape())
      H.close(r:totable(), bcast(c, d, ref), rtol, 0, name .. " broadcast")
      local r2 = mf.tensor(d)[name](mf.tensor(d), mf.tensor(c))
      H.close(r2:totable(), bcast(c, d, function(p, q) return ref(q, p) end), rtol, 0, name .. " broadcast reversed")
      -- 0-d tensors on either side
      local s = a[2][3]
      local st = mf.tensor(s)
      H.close(x[name](x, st):totable(), H.map(function(v) return ref(v, s) end, a), rtol, 0, name .. " tensor op 0-d")
      H.close(st[name](st, x):totable(), H.map(function(v) return ref(s, v) end, a), rtol, 0, name .. " 0-d op tensor")
      assert.same({}, st[name](st, st):shape())
      -- Lua numbers on either side
      H.close(x[name](x, s):totable(), H.map(function(v) return ref(v, s) end, a), rtol, 0, name .. " tensor op number")
      H.close(mf.core.binary(name, s, x):totable(), H.map(function(v) return ref(s, v) end, a), rtol, 0,
        name .. " number op tensor")
      -- transposed, narrowed and expanded operands
      local xt, yt = x:t(), mf.tensor(transpose(b))
      H.close(xt[name](xt, yt):totable(), transpose(expect), rtol, 0, name .. " transposed")
      H.close(yt[name](yt, xt):totable(), transpose(H.map(ref, b, a)), rtol, 0, name .. " transposed second")
      local xn, yn = x:narrow(2, 2, 3), y:narrow(2, 1, 3)
      H.close(xn[name](xn, yn):totable(), H.map(ref, cols(a, 2, 4), cols(b, 1, 3)), rtol, 0, name .. " narrow")
      local row = y:narrow(1, 3, 1):expand { 4, 5 }
      H.close(x[name](x, row):totable(), H.map(ref, a, { b[3], b[3], b[3], b[3] }), rtol, 0, name .. " expand")
      H.close(xt[name](xt, 1.5):totable(), transpose(H.map(function(v) return ref(v, 1.5) end, a)), rtol, 0,
        name .. " strided op number")
    end)
  end

  it("operators take numbers on either side", function()
    local a = round32(H.rand_table({ 2, 3 }, 3, 0.5, 2))
    local x = mf.tensor(a)
    H.close((2 - x):totable(), H.map(function(v) return 2 - v end, a), 1e-7)
    H.close((3 / x):totable(), H.map(function(v) return 3 / v end, a), 1e-7)
    H.close((x * 4 + 1):totable(), H.map(function(v) return v * 4 + 1 end, a), 1e-7)
    H.close((x ^ 2):totable(), H.map(function(v) return v * v end, a), 1e-6)
    H.close((2 ^ x):totable(), H.map(function(v) return 2 ^ v end, a), 4e-6)
    H.close(((-x) ^ 2):totable(), H.map(function(v) return v * v end, a), 1e-6) -- negative base, integer power
    H.close((x ^ x):totable(), H.map(function(v) return v ^ v end, a), 4e-6)
    local i = mf.tensor({ 1, 2, 3 }, "i32")
    assert.same({ 3, 4, 5 }, (i + 2):totable())
    assert.same({ 9, 8, 7 }, (10 - i):totable())
    assert.same({ -2, -4, -6 }, (i * -2):totable())
  end)
end)

describe("clamp and where", function()
  it("clamp with both bounds, one bound, a table and on i32", function()
    local a = round32(H.rand_table({ 4, 3 }, 21, -3, 3))
    local x = mf.tensor(a)
    local function cl(lo, hi) return function(v) return math.min(math.max(v, lo), hi) end end
    H.close(x:clamp(-1, 0.5):totable(), H.map(cl(-1, 0.5), a), 0, 0)
    H.close(x:clamp(0):totable(), H.map(cl(0, math.huge), a), 0, 0)
    H.close(x:clamp(nil, 1):totable(), H.map(cl(-math.huge, 1), a), 0, 0)
    H.close(x:clamp { min = -2, max = 2 }:totable(), H.map(cl(-2, 2), a), 0, 0)
    H.close(x:t():clamp(-1, 1):totable(), transpose(H.map(cl(-1, 1), a)), 0, 0)
    H.close(mf.tensor(a, "f64"):clamp(-1, 0.5):totable(), H.map(cl(-1, 0.5), a), 0, 0)
    assert.same({ 0, 0, 2, 5, 5 }, mf.tensor({ -9, 0, 2, 5, 12 }, "i32"):clamp(0, 5):totable())
    -- one-sided and fractional bounds on i32: the integers within [lo, hi]
    assert.same({ 0, 0, 2, 5, 2147483647 }, mf.tensor({ -9, 0, 2, 5, 2147483647 }, "i32"):clamp(0):totable())
    assert.same({ -9, 0, 2, 3, 3 }, mf.tensor({ -9, 0, 2, 5, 12 }, "i32"):clamp(nil, 3):totable())
    assert.same({ 2, 2, 2, 2, 2 }, mf.tensor({ -9, 0, 2, 5, 12 }, "i32"):clamp(1.5, 2.5):totable())
  end)

  it("where selects with broadcasting, numbers and views", function()
    local a = round32(H.rand_table({ 3, 4 }, 31))
    local b = round32(H.rand_table({ 3, 4 }, 32))
    local x, y = mf.tensor(a), mf.tensor(b)
    local m = x:gt(y)
    H.close(mf.where(m, x, y):totable(), H.map(math.max, a, b), 0, 0)
    -- mask {3,1}, a {4}, b 0-d
    local mc = mf.tensor({ { 1 }, { 0 }, { 1 } })
    local r = mf.where(mc, mf.tensor({ 1, 2, 3, 4 }), mf.tensor(-1))
    assert.same({ { 1, 2, 3, 4 }, { -1, -1, -1, -1 }, { 1, 2, 3, 4 } }, r:totable())
    -- numbers for a and b
    assert.same({ { 5 }, { 7 }, { 5 } }, mf.where(mc, 5, 7):totable())
    assert.same({ { 5, 5 }, { 7, 7 }, { 5, 5 } }, mf.where(mc, mf.tensor({ 5, 5 }), 7):totable())
    -- transposed mask and operands, f64 and i32
    local e = H.map(function(p, q) return p > q and p or q end, transpose(a), transpose(b))
    H.close(mf.where(m:t(), x:t(), y:t()):totable(), e, 0, 0)
    H.close(mf.where(m:t(), x:t():to("f64"), y:t():to("f64")):totable(), e, 0, 0)
    local xi = mf.tensor({ 1, 2, 3 }, "i32")
    assert.same({ 1, 0, 3 }, mf.where(mf.tensor({ 1, 0, 1 }, "i32"), xi, mf.tensor(0, "i32")):totable())
  end)
end)

describe("in-place ops", function()
  local function base() return { { 1, 2, 3, 4 }, { 5, 6, 7, 8 }, { 9, 10, 11, 12 } } end

  it("add_ sub_ mul_ div_ on contiguous tensors with tensors and numbers", function()
    local x = mf.tensor(base())
    local s = x:storage()
    assert.equal(x, x:add_(1))
    x:mul_(mf.tensor({ 1, 2, 1, 2 })) -- broadcast row
    x:sub_(mf.tensor({ { 1 }, { 2 }, { 3 } }))
    x:div_(2)
    local e = H.map(function(v, j) return ((v + 1) * j - 0) end, base(), { { 1, 2, 1, 2 }, { 1, 2, 1, 2 }, { 1, 2, 1, 2 } })
    e = H.map(function(v, r) return (v - r) / 2 end, e, { { 1, 1, 1, 1 }, { 2, 2, 2, 2 }, { 3, 3, 3, 3 } })
    assert.same(e, x:totable())
    assert.equal(s, x:storage())
    local d = mf.tensor(base(), "f64")
    d:div_(mf.tensor(3, "f64"))
    H.close(d:totable(), H.map(function(v) return v / 3 end, base()), 1e-15, 0)
    local i = mf.tensor({ 1, 2, 3 }, "i32")
    i:add_(5):mul_(mf.tensor({ 2, 2, 2 }, "i32"))
    assert.same({ 12, 14, 16 }, i:totable())
    local m = mf.tensor({ 1, 5, 3 })
    m:maximum_(2):minimum_(mf.tensor({ 4, 4, 4 }))
    assert.same({ 2, 4, 3 }, m:totable())
  end)

  it("writes through strided views into the base tensor", function()
    local x = mf.tensor(base())
    x:narrow(2, 2, 2):add_(100) -- columns 2..3
    x:t():narrow(1, 4, 1):mul_(-1) -- column 4, via a transposed view
    x:narrow(1, 3, 1):sub_(mf.tensor({ { 1, 1, 1, 1 } }))
    x:t():narrow(2, 1, 1):div_(mf.tensor({ 2, 2, 2, 2 }):reshape { 4, 1 }) -- row 1
    local e = base()
    for r = 1, 3 do
      e[r][2], e[r][3] = e[r][2] + 100, e[r][3] + 100
      e[r][4] = -e[r][4]
    end
    for c = 1, 4 do e[3][c] = e[3][c] - 1 end
    for c = 1, 4 do e[1][c] = e[1][c] / 2 end
    assert.same(e, x:totable())
  end)

  it("copy_ and fill_ on contiguous and strided views, with broadcasting and casts", function()
    local x = mf.zeros({ 3, 4 })
    x:copy_(mf.tensor(base()))
    assert.same(base(), x:totable())
    x:narrow(2, 1, 2):copy_(mf.tensor({ -1, -2 })) -- broadcast into a strided view
    x:t():narrow(2, 3, 1):fill_(7) -- row 3 via a transposed view
    x:narrow(2, 4, 1):copy_(mf.tensor({ { 10 }, { 20 }, { 30 } }, "i32")) -- cast i32 -> f32
    local e = base()
    for r = 1, 3 do e[r][1], e[r][2] = -1, -2 end
    for c = 1, 4 do e[3][c] = 7 end
    e[1][4], e[2][4], e[3][4] = 10, 20, 30
    assert.same(e, x:totable())
    local y = mf.tensor(base(), "f64")
    y:t():copy_(mf.tensor(base()):t())
    y:fill_(2.5)
    assert.same({ 2.5, 2.5, 2.5, 2.5 }, y:totable()[3])
    y:copy_(1.25)
    assert.same({ 1.25, 1.25, 1.25, 1.25 }, y:totable()[1])
    y:zero_()
    assert.same(0, y:sum():item())
  end)

  it("operands that alias the target (transposes, shifted narrows) read the old values", function()
    local n = 70
    local base = {}
    for i = 1, n do base[i] = {} for j = 1, n do base[i][j] = (i - 1) * n + (j - 1) end end
    local x = mf.tensor(base)
    x:add_(x:t())
    local e = {}
    for i = 1, n do e[i] = {} for j = 1, n do e[i][j] = base[i][j] + base[j][i] end end
    assert.same(e, x:totable())
    local y = mf.tensor(base)
    y:copy_(y:t())
    assert.same(transpose(base), y:totable())
    local z = mf.arange(10)
    z:narrow(1, 2, 9):copy_(z:narrow(1, 1, 9)) -- shift right by one
    assert.same({ 0, 0, 1, 2, 3, 4, 5, 6, 7, 8 }, z:totable())
    local w = mf.arange(10)
    w:narrow(1, 1, 9):sub_(w:narrow(1, 2, 9)) -- w[i] - w[i + 1], old values
    assert.same({ -1, -1, -1, -1, -1, -1, -1, -1, -1, 9 }, w:totable())
    local r = mf.tensor({ { 1, 2 }, { 3, 4 } })
    r:mul_(r:narrow(1, 1, 1)) -- every row times the old first row
    assert.same({ { 1, 4 }, { 3, 8 } }, r:totable())
    local s = mf.tensor({ 1, 2, 3 })
    s:mul_(s) -- the same layout is fine in place
    assert.same({ 1, 4, 9 }, s:totable())
  end)

  it("refuses in-place ops on tensors autograd tracks", function()
    local w = mf.ones({ 2 }):requires_grad()
    H.errors(function() w:add_(1) end, "moonflow.add_", "requires grad")
  end)
end)

-- Sizes that span several work-items' runs and 16-lane vector steps with a
-- tail, at an element offset that is not a multiple of 16.
describe("large tensors at an offset", function()
  local n = 10007
  local function data(seed, lo, hi)
    local t = H.rand_table({ n + 3 }, seed, lo, hi)
    return round32(t)
  end
  local function view(t, dt) return mf.tensor(t, dt):narrow(1, 4, n) end
  local function tail(t) return { table.unpack(t, 4, n + 3) } end

  it("every unary op", function()
    for name, spec in pairs(unary) do
      local ref, lo, hi, rtol = spec[1], spec[2], spec[3], spec[4]
      local a = data(#name + 100, lo, hi)
      local x = view(a)
      assert.equal(3, x:storage_offset())
      H.close(x[name](x):tolist(), H.map(ref, tail(a)), rtol, rtol, name .. " f32")
      H.close(view(a, "f64")[name](view(a, "f64")):tolist(), H.map(ref, tail(a)), 1e-13, 1e-14, name .. " f64")
    end
  end)

  it("every binary op, tensor-tensor and with numbers on either side", function()
    for name, ref in pairs(binary) do
      local a, b = data(7, 0.5, 2), data(8, 0.5, 2)
      if not floats_only[name] then -- ties for the comparisons
        a = H.map(function(v) return math.floor(v * 4) / 4 end, a)
        b = H.map(function(v) return math.floor(v * 4) / 4 end, b)
      end
      local rtol = name == "pow" and 4e-6 or 1e-7
      local x, y = view(a), view(b)
      H.close(x[name](x, y):tolist(), H.map(ref, tail(a), tail(b)), rtol, 0, name)
      H.close(x[name](x, 1.25):tolist(), H.map(function(v) return ref(v, 1.25) end, tail(a)), rtol, 0, name .. " s")
      H.close(mf.core.binary(name, 1.25, x):tolist(), H.map(function(v) return ref(1.25, v) end, tail(a)), rtol, 0,
        name .. " rev")
      if not floats_only[name] then
        local ai = H.map(function(v) return math.floor(v * 8) end, a)
        local bi = H.map(function(v) return math.floor(v * 8) end, b)
        H.close(view(ai, "i32")[name](view(ai, "i32"), view(bi, "i32")):tolist(), H.map(ref, tail(ai), tail(bi)), 0, 0,
          name .. " i32")
      end
    end
  end)

  it("where, clamp, copy_, fill_ and in-place ops", function()
    local a, b = data(9, -2, 2), data(10, -2, 2)
    local x, y = view(a), view(b)
    local ta, tb = tail(a), tail(b)
    H.close(mf.where(x:gt(y), x, y):tolist(), H.map(math.max, ta, tb), 0, 0, "where")
    H.close(x:clamp(-0.5, 0.25):tolist(), H.map(function(v) return math.min(math.max(v, -0.5), 0.25) end, ta), 0, 0)
    local z = mf.zeros({ n + 5 })
    z:narrow(1, 2, n):copy_(x)
    local zt = z:tolist()
    H.close({ table.unpack(zt, 2, n + 1) }, ta, 0, 0, "copy_")
    assert.equal(0, zt[1])
    assert.equal(0, zt[n + 2])
    z:narrow(1, 3, n):fill_(2)
    zt = z:tolist()
    assert.equal(0, zt[1])
    assert.equal(2, zt[3])
    assert.equal(2, zt[n + 2])
    assert.equal(0, zt[n + 3])
    local w = view(a)
    w:mul_(y):add_(1)
    H.close(w:tolist(), H.map(function(p, q) return f32(p * q) + 1 end, ta, tb), 1e-7, 1e-7, "in place")
  end)
end)

-- Strided operands large enough for several work-item runs: each run starts
-- mid-row and walks rows (transposes, gaps, broadcast rows and columns).
describe("large strided operands", function()
  local R, C = 101, 103
  local a = round32(H.rand_table({ R, C }, 201, -2, 2))
  local b = round32(H.rand_table({ C, R }, 202, -2, 2))
  local x, y = mf.tensor(a), mf.tensor(b)
  local at = transpose(a)

  it("unary and scalar ops on transposed and narrowed views", function()
    H.close(x:t():exp():totable(), H.map(math.exp, at), 3e-6, 3e-6, "exp of a transpose")
    H.close(x:t():mul(2):totable(), H.map(function(v) return 2 * v end, at), 0, 0, "transpose * 2")
    H.close(mf.core.binary("sub", 1, x:t()):totable(), H.map(function(v) return 1 - v end, at), 1e-7, 0, "1 - transpose")
    H.close(x:narrow(2, 3, 90):neg():totable(), H.map(function(v) return -v end, cols(a, 3, 92)), 0, 0, "neg of a narrow")
    H.close(x:t():clamp(-0.5, 0.5):totable(), H.map(function(v) return math.min(math.max(v, -0.5), 0.5) end, at), 0, 0)
  end)

  it("binary ops mixing transposed, contiguous, row and column broadcasts", function()
    -- x^T (strided) + y (contiguous), both {C, R}
    H.close((x:t() + y):totable(), H.map(function(p, q) return p + q end, at, b), 1e-7, 0, "x^T + y")
    H.close((y - x:t()):totable(), H.map(function(p, q) return q - p end, at, b), 1e-7, 0, "y - x^T")
    -- a bias row {C} and a column scale {R, 1}
    local row = round32(H.rand_table({ C }, 203))
    local col = round32(H.rand_table({ R, 1 }, 204))
    local e = {}
    for i = 1, R do e[i] = {} for j = 1, C do e[i][j] = (a[i][j] + row[j]) * col[i][1] end end
    H.close(((x + mf.tensor(row)) * mf.tensor(col)):totable(), e, 1e-6, 1e-7, "bias row, column scale")
    -- an expanded row against a transpose
    local r1 = mf.tensor({ b[1] }):expand { C, R } -- b's first row repeated
    local e2 = {}
    for i = 1, C do e2[i] = {} for j = 1, R do e2[i][j] = math.max(at[i][j], b[1][j]) end end
    H.close(x:t():maximum(r1):totable(), e2, 0, 0, "maximum with an expanded row")
    -- a 3-D permutation, several runs each starting mid-row
    local d = round32(H.rand_table({ 17, 19, 23 }, 205))
    local p = mf.tensor(d):permute { 3, 1, 2 } -- {23, 17, 19}
    local q = mf.tensor(d):permute { 3, 1, 2 }:contiguous()
    local ep = {}
    for k = 1, 23 do ep[k] = {} for i = 1, 17 do ep[k][i] = {} for j = 1, 19 do ep[k][i][j] = d[i][j][k] end end end
    H.close(q:totable(), ep, 0, 0, "packed permute")
    H.close((p * p):totable(), H.map(function(v) return v * v end, ep), 1e-7, 0, "permuted square")
    H.close(p:lt(q:narrow(1, 1, 1)):totable(),
      H.map(function(v, w) return b2n(v < w) end, ep, (function()
        local first = {}
        for k = 1, 23 do first[k] = ep[1] end
        return first
      end)()), 0, 0, "lt against a broadcast slice")
  end)

  it("where, copies and casts through strided views", function()
    local mask = mf.tensor(H.map(function(v) return v > 0 and 1 or 0 end, at))
    local e = {}
    for i = 1, C do e[i] = {} for j = 1, R do e[i][j] = at[i][j] > 0 and at[i][j] or b[i][j] end end
    H.close(mf.where(mask, x:t(), y):totable(), e, 0, 0, "where with a transposed operand")
    local colmask = mf.tensor(H.rand_table({ C, 1 }, 206)):gt(0)
    local ec = {}
    local cm = colmask:totable()
    for i = 1, C do ec[i] = {} for j = 1, R do ec[i][j] = cm[i][1] == 1 and at[i][j] or -7 end end
    H.close(mf.where(colmask, x:t(), -7):totable(), ec, 0, 0, "where with a column mask and a number")
    H.close(x:t():contiguous():totable(), at, 0, 0, "transposing copy")
    H.close(x:t():to("f64"):totable(), at, 0, 0, "transposing cast")
    local z = mf.zeros({ C, R + 4 })
    z:narrow(2, 3, R):copy_(x:t())
    local zt = z:totable()
    for i = 1, C, 17 do
      assert.equal(0, zt[i][1])
      assert.equal(at[i][1], zt[i][3])
      assert.equal(at[i][R], zt[i][R + 2])
      assert.equal(0, zt[i][R + 4])
    end
    z:t():narrow(1, 3, R):add_(x) -- the same block, through a transpose, += x
    local zt2 = z:totable()
    for i = 1, C, 13 do
      for j = 1, R, 7 do H.close(zt2[i][j + 2], 2 * at[i][j], 0, 0, "strided add_") end
    end
  end)
end)
