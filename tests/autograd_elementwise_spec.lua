-- Gradient checks (float64, central differences, both modes) for every
-- unary and binary op of ops.lua, with broadcasting.
local mf = require "moonflow"
local G = require "autograd_check"

local S = { 3, 4 }

describe("unary ops: vjp and jvp vs finite differences", function()
  local cases = {
    neg = {}, exp = {}, sin = {}, cos = {}, tanh = {}, sigmoid = {}, silu = {}, gelu = {}, erf = {},
    square = {},
    log = { lo = 0.2, hi = 2 }, sqrt = { lo = 0.2, hi = 2 }, rsqrt = { lo = 0.2, hi = 2 },
    recip = { lo = 0.3, hi = 2 },
    relu = { avoid = { 0 } }, abs = { avoid = { 0 } },
  }
  for name, o in pairs(cases) do
    it(name, function()
      G.check(name, function(x) return x[name](x) end,
        { { S, lo = o.lo or -2, hi = o.hi or 2, avoid = o.avoid } })
    end)
  end

  it("sign and floor have zero derivative", function()
    G.check("sign", function(x) return x:sign() + x end, { { S, avoid = { 0 } } })
    G.check("floor", function(x) return x:floor() * 2 + x end, { { S, lo = 0.1, hi = 0.9 } })
  end)

  it("pow with a number exponent and a number base", function()
    G.check("x^2.5", function(x) return x ^ 2.5 end, { { S, lo = 0.2, hi = 2 } })
    G.check("x^-1.5", function(x) return x:pow(-1.5) end, { { S, lo = 0.2, hi = 2 } })
    G.check("3^x", function(x) return mf.Tensor.pow(3, x) end, { { S } })
  end)

  it("clamp", function()
    G.check("clamp", function(x) return x:clamp(-0.5, 0.6) end, { { S, lo = -1, hi = 1, avoid = { -0.5, 0.6 } } })
    G.check("clamp low", function(x) return x:clamp(0.1) end, { { S, avoid = { 0.1 } } })
  end)

  it("alias, clone, contiguous, to", function()
    G.check("alias", function(x) return mf.autograd.alias(x) * x end, { { S } })
    G.check("clone", function(x) return x:clone() * 2 end, { { S } })
    G.check("contiguous", function(x) return x:t():contiguous() end, { { S } })
    G.check("to f32 and back", function(x) return (x:to("f32") * 3):to("f64") end, { { S } },
      { h = 1e-3, rtol = 1e-3, atol = 1e-4 })
  end)
end)

describe("binary ops with broadcasting", function()
  local shapes = {
    { { 3, 4 }, { 3, 4 } },
    { { 3, 4 }, { 4 } },
    { { 3, 1 }, { 1, 4 } },
    { { 2, 3, 4 }, { 3, 1 } },
    { {}, { 2, 3 } },
  }
  local ops = {
    add = function(a, b) return a + b end,
    sub = function(a, b) return a - b end,
    mul = function(a, b) return a * b end,
    div = function(a, b) return a / b end,
    maximum = function(a, b) return a:maximum(b) end,
    minimum = function(a, b) return a:minimum(b) end,
    pow = function(a, b) return a ^ b end,
  }
  for name, f in pairs(ops) do
    it(name, function()
      for k, sh in ipairs(shapes) do
        local a = { sh[1], lo = -2, hi = 2 }
        local b = { sh[2], lo = -2, hi = 2, avoid = { 0 } }
        if name == "div" then b.lo, b.hi = 0.5, 2 end
        if name == "pow" then a.lo, a.hi, b.lo, b.hi = 0.3, 2, -1.5, 1.5 end
        if name == "maximum" or name == "minimum" then
          a.lo, a.hi = 0.05, 0.95 -- a in (0, 1) and b in [-2, -1.05] u [1.05, 2]: never tied
          b.avoid, b.gap = { 0 }, 1.05
        end
        G.check(("%s case %d"):format(name, k), f, { a, b }, { seed = 100 + k })
      end
    end)
  end

  it("numbers on either side are constants", function()
    G.check("x * 3 - 2", function(x) return x * 3 - 2 end, { { S } })
    G.check("2 - x", function(x) return 2 - x end, { { S } })
    G.check("1 / x", function(x) return 1 / x end, { { S, lo = 0.5, hi = 2 } })
  end)

  it("where picks per element; the mask is constant", function()
    local m = mf.tensor({ { 1, 0, 1, 0 }, { 0, 0, 1, 1 }, { 1, 1, 0, 0 } }, { dtype = "f64" })
    G.check("where", function(a, b) return mf.where(m, a, b) end, { { S }, { { 4 } } })
    G.check("where number", function(a) return mf.where(m, a, 0.5) end, { { S } })
  end)
end)
