-- GPU loop shapes of cl/elementwise.cl on oclgrind (scripts/check.sh gpu): grid-stride
-- contiguous runs (n above the 2048 work-items oclgrind's one compute unit gets), the
-- strided shapes of views and broadcasts, scalars, casts, where, clamp, fill, arange.
-- References are Lua doubles.
local mf = require "moonflow"
local H = require "helpers"

local N = 2100 -- > 2048: each work-item loops

local function f32(v) return (string.unpack("f", string.pack("f", v))) end

local function ramp(n, a, b) -- deterministic values in [a, b), exact in f32
  local t = {}
  for i = 1, n do t[i] = f32(a + (b - a) * (((i * 7919) % 1000) / 1000)) end
  return t
end

describe("elementwise on the GPU shapes", function()
  it("unary float ops over a grid-stride run, f32 and f64", function()
    local x = ramp(N, 0.1, 3)
    local refs = {
      exp = math.exp, log = math.log, sqrt = math.sqrt, sin = math.sin, cos = math.cos,
      tanh = function(v) return (math.exp(2 * v) - 1) / (math.exp(2 * v) + 1) end,
      sigmoid = function(v) return 1 / (1 + math.exp(-v)) end,
      relu = function(v) return v > 0 and v or 0 end, neg = function(v) return -v end,
      square = function(v) return v * v end, floor = math.floor, abs = math.abs,
    }
    for _, dt in ipairs { "f32", "f64" } do
      local t = mf.tensor(x, { dtype = dt })
      for name, f in pairs(refs) do
        H.close(t[name](t):totable(), H.map(f, x), dt == "f32" and 2e-6 or 1e-12, 1e-6, name .. " " .. dt)
      end
    end
  end)

  it("i32 neg, abs and square, and binary ops with a scalar on either side", function()
    local v = {}
    for i = 1, N do v[i] = (i * 37) % 201 - 100 end
    local t = mf.tensor(v, { dtype = "i32" })
    assert.same(H.map(function(a) return -a end, v), t:neg():totable())
    assert.same(H.map(math.abs, v), t:abs():totable())
    assert.same(H.map(function(a) return a * a end, v), t:square():totable())
    assert.same(H.map(function(a) return a + 3 end, v), (t + 3):totable())
    assert.same(H.map(function(a) return 5 - a end, v), (5 - t):totable())
  end)

  it("binary ops over broadcast and transposed (strided) operands", function()
    local a = H.rand_table({ 33, 7 }, 1)
    local b = H.rand_table({ 7 }, 2)
    local c = H.rand_table({ 7, 33 }, 3)
    local A, B, Cm = mf.tensor(a), mf.tensor(b), mf.tensor(c)
    local want = {}
    for i = 1, 33 do
      want[i] = {}
      for j = 1, 7 do want[i][j] = (a[i][j] + b[j]) * c[j][i] - math.max(a[i][j], c[j][i]) / 2 end
    end
    local got = (A + B) * Cm:t() - mf.maximum(A, Cm:t()) / 2
    H.close(got:totable(), want, 1e-6, 1e-6)
  end)

  it("pow, div, minimum, comparisons, where and clamp", function()
    local x, y = ramp(N, 0.5, 2), ramp(N, -1, 1)
    local X, Y = mf.tensor(x), mf.tensor(y)
    H.close((X ^ 1.5):totable(), H.map(function(a) return a ^ 1.5 end, x), 2e-6, 1e-6, "pow")
    H.close(X:pow(Y):totable(), H.map(function(a, b) return a ^ b end, x, y), 2e-6, 1e-6, "pow tensor")
    local X64, Y64 = mf.tensor(x, { dtype = "f64" }), mf.tensor(y, { dtype = "f64" })
    H.close(X64:pow(Y64):totable(), H.map(function(a, b) return a ^ b end, x, y), 1e-12, 1e-12, "pow f64")
    H.close((2 ^ Y64):totable(), H.map(function(b) return 2 ^ b end, y), 1e-12, 1e-12, "scalar ^ f64")
    H.close((Y / X):totable(), H.map(function(a, b) return b / a end, x, y), 2e-6, 1e-7, "div")
    H.close(mf.minimum(X, Y):totable(), H.map(math.min, x, y), 0, 0, "minimum")
    H.close(mf.where(Y:gt(0), X, Y):totable(), H.map(function(a, b) return b > 0 and a or b end, x, y), 0, 0, "where")
    H.close(Y:clamp(-0.5, 0.25):totable(), H.map(function(b) return math.min(0.25, math.max(-0.5, b)) end, y), 0, 0)
  end)

  it("fill, arange and casts f32 <-> f64 <-> i32 of strided views", function()
    assert.same(H.map(function() return 2.5 end, ramp(N, 0, 1)), mf.full({ N }, 2.5):totable())
    local r = mf.arange(0, N):totable()
    for i = 1, N, 97 do assert.equal(i - 1, r[i]) end
    local x = H.rand_table({ 5, 9 }, 4, -50, 50)
    local t = mf.tensor(x, { dtype = "f64" }):t()
    local i32 = t:to("i32"):totable()
    for j = 1, 9 do
      for i = 1, 5 do
        local v = x[i][j]
        assert.equal(v < 0 and math.ceil(v) or math.floor(v), i32[j][i])
      end
    end
    H.close(t:to("f32"):to("f64"):totable(), H.map(function(v) return v end, t:totable()), 1e-7, 1e-6)
  end)
end)

-- every binary op and comparison in every dtype, against a tensor and a scalar on
-- either side; where, clamp, fill, arange and every cast
describe("elementwise: every op and dtype", function()
  local ops = {
    add = function(a, b) return a + b end, sub = function(a, b) return a - b end,
    mul = function(a, b) return a * b end, maximum = math.max, minimum = math.min,
    lt = function(a, b) return a < b and 1 or 0 end, le = function(a, b) return a <= b and 1 or 0 end,
    gt = function(a, b) return a > b and 1 or 0 end, ge = function(a, b) return a >= b and 1 or 0 end,
    eq = function(a, b) return a == b and 1 or 0 end, ne = function(a, b) return a ~= b and 1 or 0 end,
  }
  local a, b = {}, {}
  for i = 1, 300 do a[i], b[i] = (i * 37) % 23 - 11, (i * 11) % 19 - 9 end
  for _, dt in ipairs { "f32", "f64", "i32" } do
    it(dt, function()
      local A, B = mf.tensor(a, { dtype = dt }), mf.tensor(b, { dtype = dt })
      for name, f in pairs(ops) do
        assert.same(H.map(f, a, b), mf[name] and mf[name](A, B):totable() or A[name](A, B):totable(), name)
        assert.same(H.map(function(v) return f(v, 3) end, a), A[name](A, 3):totable(), name .. " scalar")
      end
      assert.same(H.map(function(v) return 3 - v end, a), (3 - A):totable())
      assert.same(H.map(function(v) return 2 * v end, a), (2 * A):totable())
      assert.same(H.map(function(u, v) return u > 0 and u or v end, a, b), mf.where(A:gt(0), A, B):totable())
      assert.same(H.map(function(v) return math.min(4, math.max(-4, v)) end, a), A:clamp(-4, 4):totable())
      assert.same({ 7, 7, 7 }, mf.full({ 3 }, 7, { dtype = dt }):totable())
      assert.same({ 0, 1, 2, 3 }, mf.arange(0, 4, 1, { dtype = dt }):totable())
      for _, to in ipairs { "f32", "f64", "i32" } do assert.same(a, A:to(to):totable(), dt .. " -> " .. to) end
    end)
  end

  it("erf, gelu, silu, rsqrt, sign, recip and the gelu and silu gradients, f32 and f64", function()
    local x = ramp(N, -3, 3)
    local erf = function(v) -- Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7)
      local s, z = v < 0 and -1 or 1, math.abs(v)
      local t = 1 / (1 + 0.3275911 * z)
      return s * (1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
        + 0.254829592) * t * math.exp(-z * z))
    end
    local sig = function(v) return 1 / (1 + math.exp(-v)) end
    for _, dt in ipairs { "f32", "f64" } do
      local t = mf.tensor(x, { dtype = dt })
      H.close(t:erf():totable(), H.map(erf, x), 0, 3e-7, "erf " .. dt)
      H.close(t:silu():totable(), H.map(function(v) return v * sig(v) end, x), 1e-5, 1e-6, "silu " .. dt)
      H.close(t:sign():totable(), H.map(function(v) return v > 0 and 1 or v < 0 and -1 or 0 end, x), 0, 0)
      local p = t:abs() + 0.5
      H.close(p:rsqrt():totable(), H.map(function(v) return 1 / math.sqrt(math.abs(v) + 0.5) end, x), 1e-5, 1e-6)
      H.close(p:recip():totable(), H.map(function(v) return 1 / (math.abs(v) + 0.5) end, x), 1e-5, 1e-6)
      local g = mf.tensor(x, { dtype = dt }):requires_grad()
      local loss = g:silu():sum() + g:gelu():sum()
      loss:backward()
      local gelu_grad = function(v)
        local c = 0.5 * (1 + erf(v / math.sqrt(2)))
        return c + v * math.exp(-v * v / 2) / math.sqrt(2 * math.pi)
      end
      H.close(g.grad:totable(), H.map(function(v) return sig(v) * (1 + v * (1 - sig(v))) + gelu_grad(v) end, x),
        1e-4, 1e-5, "silu' + gelu' " .. dt)
    end
  end)
end)
