-- Creation, metadata, host read-back and printing of tensors.
local mf = require "moonflow"
local H = require "helpers"

local f32 = function(x) return string.unpack("f", string.pack("f", x)) end

describe("mf.tensor from nested tables", function()
  it("keeps shape and values in f32, f64 and i32", function()
    local data = { { 1.5, -2.25, 3 }, { 4, 5.125, -6 } }
    for _, dt in ipairs { "f32", "f64" } do
      local t = mf.tensor(data, { dtype = dt })
      assert.same({ 2, 3 }, t:shape())
      assert.equal(dt, t:dtype())
      assert.same(data, t:totable())
    end
    local i = mf.tensor({ { 1, -2 }, { 3, 2147483647 } }, "i32")
    assert.equal("i32", i:dtype())
    assert.same({ { 1, -2 }, { 3, 2147483647 } }, i:totable())
    assert.equal("integer", math.type(i:totable()[1][1]))
  end)

  it("rounds to f32 and keeps full precision in f64", function()
    local x = 0.1
    assert.equal(f32(x), mf.tensor({ x }):totable()[1])
    assert.equal(x, mf.tensor({ x }, "f64"):totable()[1])
    assert.equal(1 / 3, mf.tensor({ { { 1 / 3 } } }, "f64"):item())
  end)

  it("builds 0-d tensors from numbers and deep nests up to 8 dims", function()
    local s = mf.tensor(2.5)
    assert.same({}, s:shape())
    assert.equal(0, s:dim())
    assert.equal(1, s:numel())
    assert.equal(2.5, s:item())
    assert.equal(2.5, s:totable())
    local deep = { { { { { { { { 7, 8 } } } } } } } }
    local d = mf.tensor(deep)
    assert.same({ 1, 1, 1, 1, 1, 1, 1, 2 }, d:shape())
    assert.same(deep, d:totable())
  end)

  it("accepts empty tables as zero-size dims", function()
    local e = mf.tensor({})
    assert.same({ 0 }, e:shape())
    assert.equal(0, e:numel())
    assert.same({}, e:totable())
    assert.same({ 2, 0 }, mf.tensor({ {}, {} }):shape())
  end)

  it("rejects ragged tables and non-numbers", function()
    H.errors(function() mf.tensor({ { 1, 2 }, { 3 } }) end, "moonflow.tensor", "ragged")
    H.errors(function() mf.tensor({ { 1, 2 }, 3 }) end, "moonflow.tensor", "ragged")
    H.errors(function() mf.tensor({ 1, { 2 } }) end, "moonflow.tensor", "table")
    H.errors(function() mf.tensor({ 1, "x" }) end, "moonflow.tensor", "element 2", "string")
    H.errors(function() mf.tensor("abc") end, "moonflow.tensor", "string")
    H.errors(function() mf.tensor({ 1 }, "f16") end, "moonflow.tensor", "f16")
  end)

  it("rejects i32 values that are not integers in range", function()
    H.errors(function() mf.tensor({ 1.5 }, "i32") end, "moonflow.tensor", "1.5", "i32")
    H.errors(function() mf.tensor({ 2 ^ 31 }, "i32") end, "moonflow.tensor", "i32")
  end)

  it("copies an existing tensor", function()
    local a = mf.tensor({ 1, 2, 3 })
    local b = mf.tensor(a, "f64")
    assert.equal("f64", b:dtype())
    assert.same({ 1, 2, 3 }, b:totable())
    local c = mf.tensor(a)
    assert.are_not.equal(a:storage(), c:storage())
    assert.equal("f64", mf.tensor(b):dtype()) -- keeps its dtype unless one is asked for
    assert.equal("f64", mf.tensor(b, {}):dtype())
    assert.equal("i32", mf.tensor(b, { dtype = "i32" }):dtype())
  end)
end)

describe("constructors", function()
  it("zeros, ones and full fill every element", function()
    for _, dt in ipairs { "f32", "f64", "i32" } do
      local z, o, f = mf.zeros({ 2, 3 }, { dtype = dt }), mf.ones({ 4 }, dt), mf.full({ 3, 1, 2 }, -7, { dtype = dt })
      assert.same({ { 0, 0, 0 }, { 0, 0, 0 } }, z:totable())
      assert.same({ 1, 1, 1, 1 }, o:totable())
      assert.same({ { { -7, -7 } }, { { -7, -7 } }, { { -7, -7 } } }, f:totable())
      assert.equal(dt, z:dtype())
      assert.equal(dt, f:dtype())
    end
    assert.equal("f32", mf.zeros({ 2 }):dtype())
    assert.same({ 0 }, mf.zeros({ 0 }):shape())
    assert.equal(3.25, mf.full({}, 3.25):item())
  end)

  it("arange matches Lua's own loop", function()
    local function lua_arange(a, b, s)
      local out = {}
      local n = math.max(0, math.ceil((b - a) / s))
      for i = 0, n - 1 do out[#out + 1] = a + i * s end
      return out
    end
    assert.same({ 0, 1, 2, 3, 4 }, mf.arange(5):totable())
    assert.same({ 2, 3, 4 }, mf.arange(2, 5):totable())
    assert.same({ 10, 7, 4, 1 }, mf.arange(10, 0, -3, "i32"):totable())
    H.close(mf.arange(0, 1, 0.1):totable(), lua_arange(0, 1, 0.1), 1e-6, 1e-7)
    assert.equal(10, mf.arange(0, 1, 0.1):numel())
    H.close(mf.arange(-1.5, 2.25, 0.25, { dtype = "f64" }):totable(), lua_arange(-1.5, 2.25, 0.25), 0, 0)
    assert.equal(0, mf.arange(3, 3):numel())
    assert.equal("i32", mf.arange(4, { dtype = "i32" }):dtype())
  end)

  it("linspace includes both ends", function()
    local n, a, b = 7, -1, 2
    local ref = {}
    for i = 0, n - 1 do ref[i + 1] = a + (b - a) * i / (n - 1) end
    H.close(mf.linspace(a, b, n):totable(), ref, 1e-6, 1e-6)
    H.close(mf.linspace(a, b, n, { dtype = "f64" }):totable(), ref, 1e-15, 1e-15)
    assert.same({ 3 }, mf.linspace(3, 9, 1):totable())
    H.errors(function() mf.linspace(0, 1, 0) end, "moonflow.linspace", "0")
  end)

  it("zeros_like / ones_like / full_like follow shape and dtype", function()
    local t = mf.tensor({ { 1, 2 } }, "f64")
    local z = mf.zeros_like(t)
    assert.same({ 1, 2 }, z:shape())
    assert.equal("f64", z:dtype())
    assert.same({ { 1, 1 } }, mf.ones_like(t):totable())
    assert.same({ { 5, 5 } }, mf.full_like(t, 5):totable())
  end)
end)

describe("metadata and read-back", function()
  it("reports shape, dim, numel and dtype", function()
    local t = mf.zeros({ 2, 3, 4 })
    assert.same({ 2, 3, 4 }, t:shape())
    assert.equal(3, t:dim())
    assert.equal(24, t:numel())
    assert.equal("f32", t:dtype())
    assert.equal(3, t:size(2))
    assert.equal(4, t:size(-1))
    assert.equal(2, #t)
  end)

  it("item reads one element and totable nests like the shape", function()
    assert.equal(42, mf.tensor({ { 42 } }):item())
    assert.equal(-3, mf.tensor({ -3 }, "i32"):item())
    assert.equal("integer", math.type(mf.tensor({ -3 }, "i32"):item()))
    local data = H.rand_table({ 2, 3, 2 }, 5)
    H.close(mf.tensor(data, "f64"):totable(), data, 0, 0)
    assert.same({ 1, 2, 3, 4 }, mf.tensor({ { 1, 2 }, { 3, 4 } }):tolist())
  end)
end)

describe("tostring", function()
  it("prints small tensors like numpy with shape and dtype", function()
    local s = tostring(mf.tensor({ { 1, 2.5 }, { -3, 4 } }))
    assert.equal("tensor([[ 1.0000,  2.5000],\n        [-3.0000,  4.0000]], shape={2, 2}, dtype=f32)", s)
    assert.equal("tensor([1., 2., 3.], shape={3}, dtype=f32)", tostring(mf.tensor({ 1, 2, 3 })))
    assert.equal("tensor([ 1, -2], shape={2}, dtype=i32)", tostring(mf.tensor({ 1, -2 }, "i32")))
    assert.equal("tensor(5., shape={}, dtype=f64)", tostring(mf.tensor(5, "f64")))
    assert.equal("tensor([], shape={0}, dtype=f32)", tostring(mf.zeros({ 0 })))
  end)

  it("uses scientific notation for wide ranges and names nan and inf", function()
    local s = tostring(mf.tensor({ 1e-6, 1e9 }))
    assert.truthy(s:find("1.0000e-06", 1, true), s)
    assert.truthy(s:find("1.0000e+09", 1, true), s)
    local z = mf.tensor({ 0, 1, -1 })
    local s2 = tostring(z / 0)
    assert.truthy(s2:find("nan", 1, true) and s2:find("-inf", 1, true) and s2:find(" inf", 1, true), s2)
  end)

  it("separates 3-d blocks with a blank line", function()
    local s = tostring(mf.arange(8, "i32"):reshape { 2, 2, 2 })
    assert.equal("tensor([[[0, 1],\n         [2, 3]],\n\n        [[4, 5],\n         [6, 7]]], shape={2, 2, 2}, dtype=i32)", s)
  end)

  it("prints all of 1000 elements and truncates past that with ...", function()
    local full = tostring(mf.arange(1000, "i32"))
    assert.falsy(full:find("...", 1, true))
    assert.truthy(full:find("999]", 1, true))
    local s = tostring(mf.arange(1001, "i32"))
    assert.equal("tensor([   0,    1,    2, ...,  998,  999, 1000], shape={1001}, dtype=i32)", s)
    local m = tostring(mf.arange(2000, "i32"):reshape { 40, 50 })
    local lines = {}
    for l in m:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal(7, #lines) -- three rows, "...", three rows
    assert.truthy(lines[1]:find("[[   0,    1,    2, ...,   47,   48,   49]", 1, true), lines[1])
    assert.truthy(lines[4]:find("...", 1, true))
    assert.truthy(lines[7]:find("1999]], shape={40, 50}, dtype=i32)", 1, true), lines[7])
  end)
end)
