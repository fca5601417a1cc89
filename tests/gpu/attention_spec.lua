-- cl/attention.cl on oclgrind: the flash-style kernels (at_fwd, at_bwd_q,
-- at_bwd_kv, at_jvp with every tangent subset) in f32 and f64, at sizes
-- with partial tiles (N = 35, M = 33 over 32-row tiles), against the
-- materialized path (gemm + softmax rows) and the forward in Lua doubles.
local mf = require "moonflow"
local H = require "helpers"
local F = mf.nn.F
local core = mf.core

local softmax_rows = require("reference").softmax_rows

local function with_path(path, fn)
  local prev = core.nn_path(path)
  local ok, err = pcall(fn)
  core.nn_path(prev)
  if not ok then error(err, 0) end
end

-- o, dq, dk, dv, the jvp along all tangents, and (subsets) along each alone
local function run_all(path, q, k, v, w, t, opts, subsets)
  local got = {}
  with_path(path, function()
    local a, b, c = q:clone():requires_grad(), k:clone():requires_grad(), v:clone():requires_grad()
    local o = F.attention(a, b, c, opts)
    o:backward(w)
    got = { o:tolist(), a.grad:tolist(), b.grad:tolist(), c.grad:tolist() }
    local f = function(x, y, z) return F.attention(x, y, z, opts) end
    local _, all = mf.autograd.jvp(f, { q, k, v }, { t[1], t[2], t[3] })
    got[#got + 1] = all:tolist()
    if not subsets then return end
    local _, tq = mf.autograd.jvp(function(x) return f(x, k, v) end, { q }, { t[1] })
    local _, tk = mf.autograd.jvp(function(y) return f(q, y, v) end, { k }, { t[2] })
    local _, tv = mf.autograd.jvp(function(z) return f(q, k, z) end, { v }, { t[3] })
    got[6], got[7], got[8] = tq:tolist(), tk:tolist(), tv:tolist()
  end)
  return got
end

local WHAT = { "o", "dq", "dk", "dv", "jvp" }

describe("flash-style attention kernels on the GPU", function()
  after_each(function() core.nn_path("auto") end)

  it("auto takes the tiled kernels on this GPU device", function()
    assert.equal("gpu", core.device().type)
    assert.is_true(core.nn_attn_tiled(3, 2))
  end)

  for _, dt in ipairs { "f64", "f32" } do
    it(("%s: forward, backward and jvp equal the materialized path (N = 35, M = 33, d = 3, e = 2)"):format(dt), function()
      local g = mf.Generator(5)
      local q, k, v = g:normal({ 1, 2, 35, 3 }, { dtype = dt }), g:normal({ 1, 2, 33, 3 }, { dtype = dt }),
        g:normal({ 1, 2, 33, 2 }, { dtype = dt })
      local w = g:normal({ 1, 2, 35, 2 }, { dtype = dt })
      local t = { g:normal({ 1, 2, 35, 3 }, { dtype = dt }), g:normal({ 1, 2, 33, 3 }, { dtype = dt }),
        g:normal({ 1, 2, 33, 2 }, { dtype = dt }) }
      local opts = { scale = 0.7 }
      local tiled = run_all("wg", q, k, v, w, t, opts, true)
      local ref = run_all("run", q, k, v, w, t, opts)
      local tol = dt == "f64" and 1e-12 or 3e-6
      for j, what in ipairs(WHAT) do H.close(tiled[j], ref[j], tol, tol, dt .. " " .. what) end
      -- the jvp is linear in the tangents: each alone (at_jvp's has = 1, 2, 4) sums to all three
      local sum = {}
      for i = 1, #tiled[5] do sum[i] = tiled[6][i] + tiled[7][i] + tiled[8][i] end
      H.close(sum, tiled[5], tol, tol, dt .. " jvp q + jvp k + jvp v")
      -- the forward in Lua doubles
      local Q, K, V = q:totable(), k:totable(), v:totable()
      local want = {}
      for h = 1, 2 do
        local s = {}
        for i = 1, 35 do
          s[i] = {}
          for j = 1, 33 do
            local x = 0
            for c = 1, 3 do x = x + Q[1][h][i][c] * K[1][h][j][c] end
            s[i][j] = 0.7 * x
          end
        end
        local p = softmax_rows(s)
        for i = 1, 35 do
          for c = 1, 2 do
            local x = 0
            for j = 1, 33 do x = x + p[i][j] * V[1][h][j][c] end
            want[#want + 1] = x
          end
        end
      end
      H.close(tiled[1], want, tol, tol, dt .. " o vs Lua doubles")
    end)
  end
end)
