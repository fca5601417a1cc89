-- softmax and log_softmax (cl/softmax.cl) and gelu's tanh approximation:
-- values against closed forms in Lua doubles, gradients (f64, both modes)
-- against central differences.
local mf = require "moonflow"
local G = require "autograd_check"
local H = require "helpers"

local softmax_rows = require("reference").softmax_rows

describe("softmax", function()
  for _, dt in ipairs { "f32", "f64" } do
    it("rows of " .. dt .. " equal the closed form, long rows (vector body + tail) included", function()
      for _, cols in ipairs { 3, 16, 37, 1024 } do
        local rows = H.rand_table({ 5, cols }, cols, -4, 4)
        local x = mf.tensor(rows, dt)
        local tol = dt == "f64" and 1e-13 or 2e-6
        H.close(H.flatten(mf.softmax(x, 2):totable()), H.flatten(softmax_rows(rows)), tol, 1e-12, "softmax " .. cols)
        H.close(H.flatten(x:log_softmax():totable()), H.flatten(softmax_rows(rows, true)), tol, tol * 10,
          "log_softmax " .. cols)
      end
    end)
  end

  it("is stable for large values (1000: exp would overflow without the max)", function()
    local x = mf.tensor({ { 1000, 1001, 1002 }, { -1000, 0, 1000 } }, "f32")
    local p = x:softmax():totable()
    local e = math.exp(1)
    local d = 1 + e + e * e
    H.close(p[1], { 1 / d, e / d, e * e / d }, 1e-6, 1e-7, "softmax")
    H.close(p[2], { 0, 0, 1 }, 0, 0, "softmax")
    local l = x:log_softmax():totable()
    -- f32 near 1000 keeps ~6e-5 absolute
    H.close(l[1], { -math.log(d), 1 - math.log(d), 2 - math.log(d) }, 0, 1e-4, "log_softmax")
    H.close(l[2], { -2000, -1000, 0 }, 1e-7, 1e-7, "log_softmax")
  end)

  it("over a dim other than the last (and a negative dim)", function()
    local rows = H.rand_table({ 4, 3, 5 }, 3, -2, 2)
    local x = mf.tensor(rows, "f64")
    local y = mf.softmax(x, 2):totable()
    local z = mf.log_softmax(x, -2):totable()
    for i = 1, 4 do
      for k = 1, 5 do
        local col = {}
        for j = 1, 3 do col[j] = rows[i][j][k] end
        local p, lp = softmax_rows({ col })[1], softmax_rows({ col }, true)[1]
        for j = 1, 3 do
          H.close({ y[i][j][k], z[i][j][k] }, { p[j], lp[j] }, 1e-13, 1e-14, "dim 2")
        end
      end
    end
    assert.same({ 4, 3, 5 }, mf.softmax(x, 1):shape())
  end)

  it("vjp and jvp vs finite differences (last dim, dim 1, a 3-D tensor)", function()
    G.check("softmax", function(x) return x:softmax() end, { { { 3, 5 }, lo = -3, hi = 3 } })
    G.check("log_softmax", function(x) return x:log_softmax() end, { { { 3, 5 }, lo = -3, hi = 3 } })
    G.check("softmax dim 1", function(x) return mf.softmax(x, 1) end, { { { 4, 3 }, lo = -3, hi = 3 } })
    G.check("log_softmax dim 2 of 3", function(x) return mf.log_softmax(x, 2) end, { { { 2, 3, 4 }, lo = -3, hi = 3 } })
    -- the vector body (16 lanes) of the derivative kernels
    G.check("softmax 20 cols", function(x) return x:softmax() * x end, { { { 2, 20 }, lo = -2, hi = 2 } })
    G.check("log_softmax 20 cols", function(x) return x:log_softmax() * x end, { { { 2, 20 }, lo = -2, hi = 2 } })
  end)

  it("rejects bad dims and dtypes with the function's name", function()
    local x = mf.zeros({ 2, 3 })
    assert.has_error(function() mf.softmax(x, 3) end, "moonflow.softmax: dim 3 out of range for a tensor with 2 dims")
    assert.has_error(function() mf.log_softmax(mf.zeros({ 2 }, "i32")) end,
      "moonflow.log_softmax: dtype i32, expected f32 or f64")
  end)
end)

-- Both kernel shapes (row runs for CPUs, a work-group per row for GPUs) run
-- on any device: each against the closed form and finite differences, with
-- rows shorter and longer than a group's 64 items.
describe("softmax in both kernel shapes", function()
  for _, path in ipairs { "run", "wg" } do
    it(path, function()
      local prev = mf.core.nn_path(path)
      local ok, err = pcall(function()
        for _, cols in ipairs { 5, 100 } do
          local rows = H.rand_table({ 7, cols }, cols + 1, -3, 3)
          local x = mf.tensor(rows, "f64")
          H.close(H.flatten(x:softmax():totable()), H.flatten(softmax_rows(rows)), 1e-13, 1e-14, path)
          H.close(H.flatten(x:log_softmax():totable()), H.flatten(softmax_rows(rows, true)), 1e-13, 1e-13, path)
        end
        local big = mf.tensor({ { 1000, 1001, 1002 } }, "f32")
        assert.is_true(math.abs(big:softmax():tolist()[3] - 0.66524096) < 1e-6)
        G.check("softmax " .. path, function(x) return x:softmax() * x end, { { { 2, 70 }, lo = -2, hi = 2 } })
        G.check("log_softmax " .. path, function(x) return x:log_softmax() * x end, { { { 2, 70 }, lo = -2, hi = 2 } })
      end)
      mf.core.nn_path(prev)
      if not ok then error(err, 0) end
    end)
  end
end)

describe("gelu tanh approximation", function()
  local c = math.sqrt(2 / math.pi)
  local function gt(x) return 0.5 * x * (1 + math.tanh(c * (x + 0.044715 * x ^ 3))) end
  local function gt_d(x)
    local u = math.tanh(c * (x + 0.044715 * x ^ 3))
    return 0.5 * (1 + u) + 0.5 * x * (1 - u * u) * c * (1 + 3 * 0.044715 * x * x)
  end

  it("gelu(x, \"tanh\") and its derivative equal the closed form; gelu(x) stays exact", function()
    local xs = { -4, -1.5, -0.3, 0, 0.2, 1, 2.5, 6 }
    local x = mf.tensor(xs, "f64")
    local want, dwant = {}, {}
    for i, v in ipairs(xs) do want[i], dwant[i] = gt(v), gt_d(v) end
    H.close(mf.nn.F.gelu(x, "tanh"):tolist(), want, 1e-14, 1e-15, "gelu tanh")
    H.close(x:gelu("tanh"):tolist(), want, 1e-14, 1e-15, "method")
    H.close(mf.core.unary("gelu_tanh_grad", x):tolist(), dwant, 1e-14, 1e-15, "gelu tanh'")
    -- the exact gelu differs (by up to ~1e-3 near 2)
    local exact = x:gelu():tolist()
    assert.is_true(math.abs(exact[7] - want[7]) > 1e-4)
    assert.has_error(function() x:gelu("fast") end, 'moonflow.gelu: approximate must be "none" or "tanh", got fast')
  end)

  it("vjp and jvp vs finite differences", function()
    G.check("gelu tanh", function(x) return x:gelu("tanh") end, { { { 3, 4 }, lo = -3, hi = 3 } })
  end)

  it("is an activation of the fused layers (\"gelu_tanh\"), equal to the composite", function()
    local g = mf.Generator(3)
    local x = g:normal({ 5, 20 }, { dtype = "f64" })
    local w = g:normal({ 7, 20 }, { dtype = "f64" })
    local b = g:normal({ 7 }, { dtype = "f64" })
    local y = mf.nn.F.linear(x, w, b, "gelu_tanh")
    local r = mf.nn.F.linear_composite(x, w, b, "gelu_tanh")
    H.close(y:tolist(), r:tolist(), 1e-13, 1e-13, "linear gelu_tanh")
    local ln = mf.nn.F.layer_norm(x, nil, nil, 1e-5, nil, "gelu_tanh")
    local lr = mf.nn.F.layer_norm_composite(x, nil, nil, 1e-5):gelu("tanh")
    H.close(ln:tolist(), lr:tolist(), 1e-12, 1e-12, "layer_norm gelu_tanh")
    G.check("linear gelu_tanh", function(xx, ww, bb) return mf.nn.F.linear(xx, ww, bb, "gelu_tanh") end,
      { { { 3, 4 } }, { { 5, 4 } }, { { 5 } } })
  end)
end)
