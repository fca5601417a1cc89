-- The kernels' switches are names shared by the C core, the kernels and Lua
-- (src/kernel_names.h): the binding takes the names, never raw integers.
local mf = require "moonflow"
local C = require "moonflow.core"
local H = require "helpers"

describe("kernel switches by name", function()
  it("core.unary_ops lists each unary kernel once, and each runs", function()
    local seen = {}
    for _, name in ipairs(C.unary_ops) do
      assert.is_nil(seen[name], name .. " listed twice")
      seen[name] = true
      local y = C.unary(name, mf.tensor { 0.25, 0.5 })
      assert.equal(2, #y:totable())
    end
    assert.equal(22, #C.unary_ops)
    for _, name in ipairs { "neg", "exp", "gelu", "silu_grad", "gelu_grad" } do assert.is_true(seen[name]) end
    -- the public ops are the kernels' own (ops.lua builds them from the list)
    assert.equal(math.exp(0.5), mf.exp(mf.tensor({ 0.5 }, { dtype = "f64" })):item())
  end)

  it("diff_coef takes the coefficient's name: t_shift = s t / (1 + (s - 1) t)", function()
    local t = mf.tensor({ 0.1, 0.5, 0.9 }, { dtype = "f64" })
    local y = C.diff_coef(t, "t_shift", 3, false):totable()
    for i, v in ipairs { 0.1, 0.5, 0.9 } do assert.equal(3 * v / (1 + 2 * v), y[i]) end
    local d = C.diff_coef(t, "t_shift", 3, true):totable()
    for i, v in ipairs { 0.1, 0.5, 0.9 } do assert.equal(3 / (1 + 2 * v) ^ 2, d[i]) end
    assert.has_error(function() C.diff_coef(t, 9, 3, false) end)
    local ok, e = pcall(C.diff_coef, t, "t_shfit", 3, false)
    assert.is_false(ok)
    assert.matches("invalid option 't_shfit'", e)
  end)

  it("rf_conv_ff takes the conversion's name: add_noise = (1 - t) a + t b", function()
    local a, b = mf.tensor { { 1, 2 }, { 3, 4 } }, mf.tensor { { -1, 0.5 }, { 2, -2 } }
    local t = mf.tensor { 0.25, 0.5 }
    local y = C.rf_conv_ff(a, nil, b, nil, t, nil, "add_noise", true, true, false):totable()
    H.close(y, { { 0.75 - 0.25, 1.5 + 0.125 }, { 1.5 + 1, 2 - 1 } }, 0, 0, "add_noise")
    assert.has_error(function() C.rf_conv_ff(a, nil, b, nil, t, nil, 0, true, true, false) end)
  end)

  it("noise_target and rowred take their kinds and modes by name", function()
    local x, n = mf.tensor { { 1, 2 } }, mf.tensor { { 3, 5 } }
    local y = C.noise_target(x, n, mf.tensor { 0.5 }, "sit", false, true):totable()
    -- x_t = (1 - t) x + t n, target = n - x
    assert.same({ { { 2, 3.5 } }, { { 2, 3 } } }, y)
    assert.same({ 13 }, C.rowred(x, n, nil, 1, "dot"):totable())
    assert.same({ 13 }, C.rowred(x, n, nil, 1, "sqerr"):totable())
    assert.same({ 5 }, C.rowred(x, n, nil, 1, "square"):totable())
    assert.has_error(function() C.rowred(x, n, nil, 1, 0) end)
  end)

  it("oracle_field takes the field's name: score = -(x - a mu) / V", function()
    -- one Gaussian N(mu, 1) on the linear path: a = 1 - t, V = a^2 + t^2
    local x = mf.tensor({ { 0.5, -1 } }, { dtype = "f64" })
    local t = mf.tensor({ 0.3 }, { dtype = "f64" })
    local mu = mf.tensor({ { 0.2, 0.4 } }, { dtype = "f64" })
    local s2, logw = mf.tensor({ 1 }, { dtype = "f64" }), mf.tensor({ 0 }, { dtype = "f64" })
    local y = C.oracle_field(x, t, nil, mu, s2, logw, "score", false):totable()
    local a, V = 0.7, 0.49 + 0.09
    H.close(y, { { -(0.5 - a * 0.2) / V, -(-1 - a * 0.4) / V } }, 1e-14, 0, "score")
    assert.has_error(function() C.oracle_field(x, t, nil, mu, s2, logw, 1, false) end)
  end)
end)

describe("one formula per activation derivative", function()
  it("the elementwise gelu_grad and silu_grad kernels equal the fused layer's bit for bit", function()
    local x = mf.tensor(H.rand_table({ 4, 64 }, 7, -4, 4))
    local g = mf.ones { 4, 64 }
    for _, act in ipairs { "gelu", "silu" } do
      local fused = C.nn_act_grad(g, x, act):totable()
      local elementwise = C.unary(act .. "_grad", x):totable()
      assert.same(fused, elementwise)
    end
  end)
end)
