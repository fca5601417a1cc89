-- cl/nn.cl's work-group kernels (nnwg_*: one group of 64 per row, local-memory
-- reductions and barriers) on oclgrind: fused linear with bias, activation and
-- residual, its backward (activation grad, column sums), fused layer norm forward,
-- backward and jvp. References: Lua doubles, and the composite layers for gradients.
local mf = require "moonflow"
local H = require "helpers"
local F = mf.nn.functional

local function silu(v) return v / (1 + math.exp(-v)) end

describe("nn kernels on the GPU shapes", function()
  it("linear: silu(x W^T + b) + r, rows wider than a work-group, and its gradients", function()
    local R, I, O = 5, 3, 70
    local x, w, b, r = H.rand_table({ R, I }, 1), H.rand_table({ O, I }, 2), H.rand_table({ O }, 3),
      H.rand_table({ R, O }, 4)
    local f = function(v) return mf.tensor(v, { dtype = "f64" }) end
    local X, W, Bb = f(x):requires_grad(), f(w):requires_grad(), f(b):requires_grad()
    local y = F.linear(X, W, Bb, "silu", f(r))
    local want = {}
    for i = 1, R do
      want[i] = {}
      for o = 1, O do
        local z = b[o]
        for k = 1, I do z = z + x[i][k] * w[o][k] end
        want[i][o] = silu(z) + r[i][o]
      end
    end
    H.close(y:totable(), want, 1e-12, 1e-12, "forward")
    y:sum():backward()
    local Xc, Wc, Bc = f(x):requires_grad(), f(w):requires_grad(), f(b):requires_grad()
    F.linear_composite(Xc, Wc, Bc, "silu"):sum():backward()
    H.close(X.grad:totable(), Xc.grad:totable(), 1e-12, 1e-12, "dx")
    H.close(W.grad:totable(), Wc.grad:totable(), 1e-12, 1e-12, "dW")
    H.close(Bb.grad:totable(), Bc.grad:totable(), 1e-12, 1e-12, "db (column sums)")
  end)

  it("layer norm over rows of 100 (two passes of a 64-wide group) and its gradients", function()
    local R, D = 4, 100
    local x, w, b = H.rand_table({ R, D }, 5), H.rand_table({ D }, 6), H.rand_table({ D }, 7)
    local f = function(v) return mf.tensor(v, { dtype = "f64" }) end
    local X, W, Bb = f(x):requires_grad(), f(w):requires_grad(), f(b):requires_grad()
    local y = F.layer_norm(X, W, Bb, 1e-5)
    local want = {}
    for i = 1, R do
      local mu, var = 0, 0
      for j = 1, D do mu = mu + x[i][j] / D end
      for j = 1, D do var = var + (x[i][j] - mu) ^ 2 / D end
      want[i] = {}
      for j = 1, D do want[i][j] = (x[i][j] - mu) / math.sqrt(var + 1e-5) * w[j] + b[j] end
    end
    H.close(y:totable(), want, 1e-10, 1e-10, "forward")
    local c = H.rand_table({ R, D }, 8)
    local loss = (y * f(c)):sum()
    loss:backward()
    local Xc, Wc, Bc = f(x):requires_grad(), f(w):requires_grad(), f(b):requires_grad()
    local loss = (F.layer_norm_composite(Xc, Wc, Bc, 1e-5) * f(c)):sum()
    loss:backward()
    H.close(X.grad:totable(), Xc.grad:totable(), 1e-10, 1e-10, "dx")
    H.close(W.grad:totable(), Wc.grad:totable(), 1e-10, 1e-10, "dw")
    H.close(Bb.grad:totable(), Bc.grad:totable(), 1e-10, 1e-10, "db")
  end)
end)

-- every activation, dtype and both kernel shapes ("wg": a work-group per row, the
-- GPU default; "run": runs of rows per work-item, the CPU default), fused against the
-- composite layers: forward, backward (vjp) and forward-mode (jvp)
describe("nn kernels: every activation, dtype and kernel shape", function()
  local core = require "moonflow.core"
  after_each(function() core.nn_path("auto") end)
  for _, path in ipairs { "wg", "run" } do
    for _, dt in ipairs { "f32", "f64" } do
      it(path .. " " .. dt, function()
        core.nn_path(path)
        local tol = dt == "f32" and 2e-5 or 1e-10
        local f = function(v) return mf.tensor(v, { dtype = dt }) end
        local x, w, b = H.rand_table({ 3, 70 }, 1), H.rand_table({ 70 }, 2), H.rand_table({ 70 }, 3)
        local lw, c = H.rand_table({ 5, 70 }, 4), H.rand_table({ 3, 70 }, 5)
        for _, a in ipairs { "silu", "gelu", "relu", "tanh", "none" } do
          local act = a ~= "none" and a or nil
          local what = ("%s %s %s"):format(path, dt, a)
          -- linear with activation: forward and gradients against the composite
          local X, W = f(x):requires_grad(), f(lw):requires_grad()
          local y = F.linear(X, W, f(H.rand_table({ 5 }, 6)), act)
          local Xc, Wc = f(x):requires_grad(), f(lw):requires_grad()
          local yc = F.linear_composite(Xc, Wc, f(H.rand_table({ 5 }, 6)), act)
          H.close(y:totable(), yc:totable(), tol, tol, what .. " linear")
          y:sum():backward()
          yc:sum():backward()
          H.close(X.grad:totable(), Xc.grad:totable(), tol, tol, what .. " linear dx")
          H.close(W.grad:totable(), Wc.grad:totable(), tol, tol, what .. " linear dW")
          -- layer norm + conditioning + activation: forward, backward and jvp
          local ln = function(xx) return F.layer_norm(xx, f(w), f(b), 1e-5, f(c), act) end
          local lnc = function(xx)
            local z = F.layer_norm_composite(xx, f(w), f(b), 1e-5) + f(c)
            return act and mf.nn.functional[act](z) or z
          end
          local A = f(x):requires_grad()
          local Ac = f(x):requires_grad()
          local ya, yb = ln(A), lnc(Ac)
          H.close(ya:totable(), yb:totable(), tol, tol, what .. " layer_norm")
          ya:sum():backward()
          yb:sum():backward()
          H.close(A.grad:totable(), Ac.grad:totable(), tol * 10, tol * 10, what .. " layer_norm dx")
          local dir = f(H.rand_table({ 3, 70 }, 7))
          local _, t1 = mf.autograd.jvp(ln, { f(x) }, { dir })
          local _, t2 = mf.autograd.jvp(lnc, { f(x) }, { dir })
          H.close(t1:totable(), t2:totable(), tol * 10, tol * 10, what .. " layer_norm jvp")
        end
      end)
    end
  end
end)
