-- Every creation function takes its dtype as a string or as {dtype = ...}
-- in the opts place, and an unusable dtype is an error naming the function.
local mf = require "moonflow"
local errors = require("helpers").errors

describe("dtype as the opts argument", function()
  local makers = {
    zeros = function(o) return mf.zeros({ 2, 3 }, o) end,
    ones = function(o) return mf.ones({ 2, 3 }, o) end,
    full = function(o) return mf.full({ 2, 3 }, 7, o) end,
    empty = function(o) return mf.empty({ 2, 3 }, o) end,
    tensor = function(o) return mf.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, o) end,
    arange = function(o) return mf.arange(1, 7, o) end,
    linspace = function(o) return mf.linspace(0, 5, 6, o) end,
    rand = function(o) return mf.rand({ 2, 3 }, o) end,
    randn = function(o) return mf.randn({ 2, 3 }, o) end,
    uniform = function(o) return mf.Generator(1):uniform({ 2, 3 }, o) end,
    normal = function(o) return mf.Generator(1):normal({ 2, 3 }, o) end,
  }
  for name, make in pairs(makers) do
    it(name .. " takes \"f64\" and {dtype = \"f64\"} alike", function()
      assert.equal("f64", make("f64"):dtype())
      assert.equal("f64", make({ dtype = "f64" }):dtype())
      assert.equal("f32", make():dtype())
      assert.equal(6, make("f64"):numel())
    end)
  end

  it("randn(shape, \"f64\") draws the same numbers as randn(shape, {dtype = \"f64\"})", function()
    mf.manual_seed(5)
    local a = mf.randn({ 8 }, "f64"):totable()
    mf.manual_seed(5)
    local b = mf.randn({ 8 }, { dtype = "f64" }):totable()
    assert.same(b, a)
  end)

  it("random floats refuse i32 and unknown dtypes by name", function()
    errors(function() mf.randn({ 3, 4 }, "i32") end, "moonflow.randn", "i32")
    errors(function() mf.rand({ 3 }, { dtype = "i32" }) end, "moonflow.rand", "i32")
    errors(function() mf.randn({ 3 }, "f16") end, "moonflow.randn", "f16")
    errors(function() mf.zeros({ 3 }, "float64") end, "zeros", "float64")
    errors(function() mf.randn({ 3 }, 64) end, "moonflow.randn", "64")
  end)
end)
