-- Reverse-mode semantics: what is recorded, accumulation, detach, no_grad,
-- repeated forward/backward; forward-mode composition with the tape.
local mf = require "moonflow"
local H = require "helpers"

describe("the tape", function()
  it("backward of a scalar accumulates d loss / d x into .grad", function()
    local xv = { 0.5, -1.0, 2.0 }
    local x = mf.tensor(xv, { dtype = "f64" }):requires_grad()
    local loss = (x * x * 3 + x):sum() -- d/dx = 6x + 1
    loss:backward()
    H.close(x.grad:totable(), { 4, -5, 13 }, 1e-12, 1e-12)
    -- a second forward and backward add to the same .grad
    ;(x * x * 3 + x):sum():backward()
    H.close(x.grad:totable(), { 8, -10, 26 }, 1e-12, 1e-12)
    x:zero_grad()
    assert.is_nil(x.grad)
  end)

  it("backward with a given output gradient", function()
    local x = mf.tensor({ 1, 2 }, { dtype = "f64" }):requires_grad()
    local y = x:exp()
    y:backward(mf.tensor({ 2, -1 }, { dtype = "f64" }))
    H.close(x.grad:totable(), { 2 * math.exp(1), -math.exp(2) }, 1e-12)
    local z = x * 2
    H.errors(function() z:backward() end, "moonflow.backward", "2 elements")
  end)

  it("records nothing for tensors without grad or under no_grad", function()
    local a = mf.tensor { 1, 2 }
    local b = a * 2 + 1
    assert.is_nil(b._node)
    H.errors(function() b:sum():backward() end, "moonflow.backward", "does not require grad")
    local x = mf.tensor({ 1, 2 }):requires_grad()
    local c = mf.no_grad(function() return x * 2 end)
    assert.is_nil(c._node)
    assert.is_true(mf.grad_enabled())
    -- an error inside no_grad restores recording
    pcall(mf.no_grad, function() error("boom") end)
    assert.is_true(mf.grad_enabled())
    assert.is_not_nil((x * 2)._node)
  end)

  it("detach cuts the graph", function()
    local x = mf.tensor({ 1, 3 }, { dtype = "f64" }):requires_grad()
    local y = x * x
    local loss = (y:detach() * x):sum() -- d/dx = x^2 (the detached factor is a constant)
    loss:backward()
    H.close(x.grad:totable(), { 1, 9 }, 1e-12)
    assert.is_nil(y:detach()._node)
  end)

  it("a tensor used twice sums both paths (fan-out)", function()
    local x = mf.tensor({ 2 }, { dtype = "f64" }):requires_grad()
    local y = x * x + x:sin() * x -- 2x + sin x + x cos x
    y:sum():backward()
    H.close(x.grad:totable(), { 4 + math.sin(2) + 2 * math.cos(2) }, 1e-12)
  end)

  it("backward into a preset .grad view writes in place", function()
    local buf = mf.zeros({ 4 }, { dtype = "f64" })
    local x = mf.tensor({ 1, 2 }, { dtype = "f64" }):requires_grad()
    x.grad = buf:narrow(1, 2, 2)
    ;(x * 5):sum():backward()
    H.close(buf:totable(), { 0, 5, 5, 0 }, 0, 0)
  end)
end)

describe("forward mode", function()
  it("jvp returns outputs and tangents in one pass", function()
    local x = mf.tensor({ 0.3, 1.2 }, { dtype = "f64" })
    local v = mf.tensor({ 1, -2 }, { dtype = "f64" })
    local y, ty = mf.autograd.jvp(function(a) return a:sin() * a end, x, v)
    H.close(y:totable(), { 0.3 * math.sin(0.3), 1.2 * math.sin(1.2) }, 1e-12)
    local d = function(a) return math.sin(a) + a * math.cos(a) end
    H.close(ty:totable(), { d(0.3), -2 * d(1.2) }, 1e-12)
    assert.is_nil(x._tangent)
    -- several outputs
    local ys, ts = mf.autograd.jvp(function(a, b) return { a * b, a + b } end, { x, x }, { v, v })
    H.close(ts[1]:totable(), { 2 * 0.3, -2 * 2 * 1.2 }, 1e-12)
    H.close(ts[2]:totable(), { 2, -4 }, 1e-12)
    assert.equal(2, #ys)
    H.errors(function() mf.autograd.jvp(function(a) return a end, { x }, { mf.zeros { 3 } }) end,
      "moonflow.autograd.jvp", "{2}", "{3}")
  end)

  it("composes with reverse mode: the primal carries gradient, the tangent is constant", function()
    local w = mf.tensor({ 0.7 }, { dtype = "f64" }):requires_grad()
    local x = mf.tensor({ 0.4 }, { dtype = "f64" })
    -- u(x) = sin(w x); du/dx along 1 = w cos(w x)
    local u, du = mf.autograd.jvp(function(a) return (a * w):sin() end, x, mf.ones({ 1 }, { dtype = "f64" }))
    assert.is_nil(du._node)
    local loss = (u + du):sum() -- only u's path reaches w: d/dw sin(w x) = x cos(w x)
    loss:backward()
    H.close(w.grad:totable(), { 0.4 * math.cos(0.28) }, 1e-12)
  end)

  it("jvp under no_grad records nothing", function()
    local w = mf.tensor({ 0.7 }, { dtype = "f64" }):requires_grad()
    local u = mf.no_grad(function()
      return (mf.autograd.jvp(function(a) return a * w end, mf.ones { 1 }:to("f64"), mf.ones { 1 }:to("f64")))
    end)
    assert.is_nil(u._node)
  end)
end)
