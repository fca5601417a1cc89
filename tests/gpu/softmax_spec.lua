-- GPU and CPU shapes of cl/softmax.cl and the fused layer_norm_modulate of
-- cl/nn.cl on oclgrind: values against Lua doubles, derivatives (both modes)
-- against the composite formulas, attention against its matmul-softmax form.
local mf = require "moonflow"
local H = require "helpers"
local F = mf.nn.F
local core = mf.core

local softmax_rows = require("reference").softmax_rows

-- y = sum(w * f(x)) through backward and jvp: the derivative kernels run too
local function derivatives(f, x, w)
  local a = x:clone():requires_grad()
  f(a):backward(w)
  local _, t = mf.autograd.jvp(f, { x }, { w })
  return a.grad:totable(), t:totable()
end

describe("softmax kernels on the GPU", function()
  after_each(function() core.nn_path("auto") end)
  for _, path in ipairs { "run", "wg" } do
    for _, dt in ipairs { "f32", "f64" } do
      it(("%s shape, %s: values, vjp and jvp"):format(path, dt), function()
        core.nn_path(path)
        local rows = H.rand_table({ 3, 37 }, 5, -3, 3)
        local x, w = mf.tensor(rows, dt), mf.tensor(H.rand_table({ 3, 37 }, 6), dt)
        local tol = dt == "f64" and 1e-13 or 2e-6
        H.close(H.flatten(x:softmax():totable()), H.flatten(softmax_rows(rows)), tol, 1e-12, "softmax")
        H.close(H.flatten(x:log_softmax():totable()), H.flatten(softmax_rows(rows, true)), tol, tol, "log_softmax")
        for _, name in ipairs { "softmax", "log_softmax" } do
          local fused = { derivatives(function(v) return v[name](v) end, x, w) }
          local composite = { derivatives(function(v)
            local e = (v - v:max(2, true)):exp()
            local s = e:sum(2, true)
            if name == "softmax" then return e / s end
            return v - v:max(2, true) - s:log()
          end, x, w) }
          for j = 1, 2 do H.close(H.flatten(fused[j]), H.flatten(composite[j]), 10 * tol, 10 * tol, name) end
        end
      end)
    end
  end
end)

describe("layer_norm_modulate and attention on the GPU", function()
  it("fused layer_norm_modulate equals the composite, with its derivatives", function()
    local g = mf.Generator(8)
    local x, sh, sc = g:normal({ 2, 3, 20 }, { dtype = "f64" }), g:normal({ 2, 20 }, { dtype = "f64" }),
      g:normal({ 2, 20 }, { dtype = "f64" })
    local w = g:normal({ 2, 3, 20 }, { dtype = "f64" })
    local got = {}
    for i, fn in ipairs { F.layer_norm_modulate, F.layer_norm_modulate_composite } do
      local a, b, c = x:clone():requires_grad(), sh:clone():requires_grad(), sc:clone():requires_grad()
      fn(a, b, c):backward(w)
      local _, t = mf.autograd.jvp(fn, { x, sh, sc }, { w, sh, sc })
      got[i] = { fn(x, sh, sc):totable(), a.grad:totable(), b.grad:totable(), c.grad:totable(), t:totable() }
    end
    for j, what in ipairs { "y", "gx", "gshift", "gscale", "jvp" } do
      H.close(H.flatten(got[1][j]), H.flatten(got[2][j]), 1e-11, 1e-12, what)
    end
  end)

  it("attention equals softmax(q k^T / sqrt(d)) v", function()
    local g = mf.Generator(3)
    local q, k, v = g:normal({ 1, 2, 5, 4 }, { dtype = "f64" }), g:normal({ 1, 2, 6, 4 }, { dtype = "f64" }),
      g:normal({ 1, 2, 6, 3 }, { dtype = "f64" })
    local out = F.attention(q, k, v):totable()
    local Q, K, V = q:totable(), k:totable(), v:totable()
    for h = 1, 2 do
      local s = {}
      for i = 1, 5 do
        s[i] = {}
        for j = 1, 6 do
          local d = 0
          for c = 1, 4 do d = d + Q[1][h][i][c] * K[1][h][j][c] end
          s[i][j] = d / 2
        end
      end
      local p = softmax_rows(s)
      for i = 1, 5 do
        for c = 1, 3 do
          local want = 0
          for j = 1, 6 do want = want + p[i][j] * V[1][h][j][c] end
          H.close({ out[1][h][i][c] }, { want }, 1e-12, 1e-13, "attention")
        end
      end
    end
  end)
end)
