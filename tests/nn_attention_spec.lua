-- mf.nn.F.attention: softmax(q k^T scale) v as one op, against the formula
-- in Lua doubles and against the same formula composed from single ops
-- (matmul, exp, sum, div); vjp and jvp (f64) against central differences.
local mf = require "moonflow"
local G = require "autograd_check"
local H = require "helpers"
local F = mf.nn.F

-- out[b][h][i][c] = sum_j p_ij v[b][h][j][c], p_ij = e^(s q_i.k_j) / sum_j' ...
local function attention_lua(q, k, v, scale)
  local out = {}
  for b = 1, #q do
    out[b] = {}
    for h = 1, #q[b] do
      out[b][h] = {}
      local Q, K, V = q[b][h], k[b][h], v[b][h]
      for i = 1, #Q do
        local s, m = {}, -math.huge
        for j = 1, #K do
          local d = 0
          for c = 1, #Q[i] do d = d + Q[i][c] * K[j][c] end
          s[j] = scale * d
          m = math.max(m, s[j])
        end
        local z = 0
        for j = 1, #K do s[j] = math.exp(s[j] - m); z = z + s[j] end
        local row = {}
        for c = 1, #V[1] do
          local a = 0
          for j = 1, #K do a = a + s[j] / z * V[j][c] end
          row[c] = a
        end
        out[b][h][i] = row
      end
    end
  end
  return out
end

-- the composite: single differentiable ops
local function attention_composite(q, k, v, scale)
  local s = q:shape()
  local B, h = s[1], s[2]
  local function f3(x) local t = x:shape(); return x:reshape({ t[1] * t[2], t[3], t[4] }) end
  local sc = mf.matmul(f3(q), f3(k):transpose(2, 3)) * scale
  local e = (sc - sc:max(3, true)):exp()
  local p = e / e:sum(3, true)
  local o = mf.matmul(p, f3(v))
  local os = o:shape()
  return o:reshape({ B, h, os[2], os[3] })
end

local function rand(shape, seed, dt) return mf.tensor(H.rand_table(shape, seed, -1.5, 1.5), dt) end

describe("attention", function()
  it("equals the formula in Lua doubles (f64 and f32, default scale 1/sqrt(d), N ~= M, d ~= e)", function()
    local qt = H.rand_table({ 2, 3, 5, 4 }, 1, -2, 2)
    local kt = H.rand_table({ 2, 3, 7, 4 }, 2, -2, 2)
    local vt = H.rand_table({ 2, 3, 7, 6 }, 3, -2, 2)
    local want = H.flatten(attention_lua(qt, kt, vt, 0.5))
    for _, dt in ipairs { "f64", "f32" } do
      local o = F.attention(mf.tensor(qt, dt), mf.tensor(kt, dt), mf.tensor(vt, dt))
      assert.same({ 2, 3, 5, 6 }, o:shape())
      local tol = dt == "f64" and 1e-13 or 2e-6
      H.close(o:tolist(), want, tol, tol, "attention " .. dt)
    end
    local o = F.attention(mf.tensor(qt, "f64"), mf.tensor(kt, "f64"), mf.tensor(vt, "f64"), { scale = 0.3 })
    H.close(o:tolist(), H.flatten(attention_lua(qt, kt, vt, 0.3)), 1e-13, 1e-13, "scale 0.3")
  end)

  it("equals the composite matmul-exp-sum formula at a DiT-like shape (f32, 20 keys: vector rows)", function()
    local q, k, v = rand({ 2, 4, 20, 16 }, 4, "f32"), rand({ 2, 4, 20, 16 }, 5, "f32"), rand({ 2, 4, 20, 16 }, 6, "f32")
    H.close(F.attention(q, k, v):tolist(), attention_composite(q, k, v, 0.25):tolist(), 1e-5, 1e-6, "composite")
  end)

  it("vjp and jvp vs finite differences (all of q, k, v; and only some)", function()
    local specs = { { { 1, 2, 3, 4 } }, { { 1, 2, 5, 4 } }, { { 1, 2, 5, 3 } } }
    G.check("attention", function(q, k, v) return F.attention(q, k, v) end, specs)
    G.check("attention scale 0.7", function(q, k, v) return F.attention(q, k, v, { scale = 0.7 }) end, specs)
    -- self-attention: q = k = v = x (the tangents and cotangents add up)
    G.check("self-attention", function(x) return F.attention(x, x, x) end, { { { 2, 1, 4, 3 } } })
    -- v alone, q alone
    local q0, k0 = rand({ 1, 1, 3, 2 }, 7, "f64"), rand({ 1, 1, 4, 2 }, 8, "f64")
    G.check("attention in v", function(v) return F.attention(q0, k0, v) end, { { { 1, 1, 4, 2 } } })
    G.check("attention in q", function(q) return F.attention(q, k0, k0) end, { { { 1, 1, 3, 2 } } })
  end)

  it("its gradients equal the composite's (f64, a 16+ key vector body)", function()
    local q, k, v = rand({ 1, 2, 6, 5 }, 9, "f64"), rand({ 1, 2, 18, 5 }, 10, "f64"), rand({ 1, 2, 18, 3 }, 11, "f64")
    local w = rand({ 1, 2, 6, 3 }, 12, "f64")
    local grads = {}
    for i, fn in ipairs { F.attention, function(a, b, c) return attention_composite(a, b, c, 1 / math.sqrt(5)) end } do
      local a, b, c = q:clone():requires_grad(), k:clone():requires_grad(), v:clone():requires_grad()
      fn(a, b, c):backward(w)
      local _, t = mf.autograd.jvp(fn, { q, k, v }, { rand({ 1, 2, 6, 5 }, 13, "f64"), k * 0.5, v * -1 })
      grads[i] = { a.grad:tolist(), b.grad:tolist(), c.grad:tolist(), t:tolist() }
    end
    for j, what in ipairs { "dq", "dk", "dv", "jvp" } do H.close(grads[1][j], grads[2][j], 1e-12, 1e-13, what) end
  end)

  it("the CPU (row runs) and GPU (work-group) kernel shapes agree, in both modes", function()
    local q, k, v = rand({ 1, 2, 5, 4 }, 14, "f64"), rand({ 1, 2, 80, 4 }, 15, "f64"), rand({ 1, 2, 80, 3 }, 16, "f64")
    local w = rand({ 1, 2, 5, 3 }, 17, "f64")
    local want = H.flatten(attention_lua(q:totable(), k:totable(), v:totable(), 0.5))
    local got = {}
    for i, path in ipairs { "run", "wg" } do
      local prev = mf.core.nn_path(path)
      local ok, err = pcall(function()
        local a, b, c = q:clone():requires_grad(), k:clone():requires_grad(), v:clone():requires_grad()
        local o = F.attention(a, b, c)
        H.close(o:tolist(), want, 1e-13, 1e-13, path)
        o:backward(w)
        local _, t = mf.autograd.jvp(F.attention, { q, k, v }, { q * 0.5, k * -1, v * 2 })
        got[i] = { a.grad:tolist(), b.grad:tolist(), c.grad:tolist(), t:tolist() }
        G.check("attention " .. path, function(x, y, z) return F.attention(x, y, z) end,
          { { { 1, 1, 2, 3 } }, { { 1, 1, 70, 3 } }, { { 1, 1, 70, 2 } } })
      end)
      mf.core.nn_path(prev)
      if not ok then error(err, 0) end
    end
    for j, what in ipairs { "dq", "dk", "dv", "jvp" } do H.close(got[1][j], got[2][j], 1e-13, 1e-14, what) end
  end)

  it("takes views: the heads split of one qkv projection {B, N, 3 h d} (both modes)", function()
    local function split(x) -- {1, 4, 12} -> q, k, v {1, h = 2, 4, 2}
      local y = x:reshape({ 1, 4, 3, 2, 2 }):permute({ 3, 1, 4, 2, 5 }) -- {3, 1, 2, 4, 2}
      local parts = {}
      for i = 1, 3 do parts[i] = y:narrow(1, i, 1):reshape({ 1, 2, 4, 2 }) end
      return table.unpack(parts)
    end
    G.check("attention of a qkv split", function(x) return F.attention(split(x)) end, { { { 1, 4, 12 } } })
    local x = rand({ 1, 4, 12 }, 18, "f64")
    local q, k, v = split(x)
    H.close(F.attention(q, k, v):tolist(), H.flatten(attention_lua(q:totable(), k:totable(), v:totable(), 1 / math.sqrt(2))),
      1e-13, 1e-13, "views")
  end)

  it("the materialized path's chunks of heads (a ragged last chunk; over 256 heads) equal one chunk", function()
    local mod = require "moonflow.nn.attention"
    local q, k, v = rand({ 2, 5, 5, 4 }, 19, "f64"), rand({ 2, 5, 7, 4 }, 20, "f64"), rand({ 2, 5, 7, 3 }, 21, "f64")
    local w, tq, tk, tv = rand({ 2, 5, 5, 3 }, 22, "f64"), q * 0.5, k * -1, v * 2
    local function all()
      local a, b, c = q:clone():requires_grad(), k:clone():requires_grad(), v:clone():requires_grad()
      local o = F.attention(a, b, c, { scale = 0.4 })
      o:backward(w)
      local _, t = mf.autograd.jvp(function(x, y, z) return F.attention(x, y, z, { scale = 0.4 }) end, { q, k, v },
        { tq, tk, tv })
      return { o:tolist(), a.grad:tolist(), b.grad:tolist(), c.grad:tolist(), t:tolist() }
    end
    local prev_bytes, prev_path = mod.chunk_bytes, mf.core.nn_path("run")
    local ok, err = pcall(function()
      mod.chunk_bytes = 1e9
      local one = all()
      mod.chunk_bytes = 4 * 5 * 7 * 8 -- 4 heads a chunk: 10 = 4 + 4 + 2
      local four = all()
      for j, what in ipairs { "o", "dq", "dk", "dv", "jvp" } do H.close(four[j], one[j], 1e-14, 1e-15, what) end
      H.close(four[1], H.flatten(attention_lua(q:totable(), k:totable(), v:totable(), 0.4)), 1e-13, 1e-13, "o")
      -- 300 heads, one head's scores over the limit: 2 heads a chunk (at most 256 chunks)
      mod.chunk_bytes = 1
      local x = rand({ 1, 300, 2, 2 }, 23, "f64")
      H.close(F.attention(x, x, x):tolist(), H.flatten(attention_lua(x:totable(), x:totable(), x:totable(),
        1 / math.sqrt(2))), 1e-13, 1e-13, "300 heads")
    end)
    mod.chunk_bytes = prev_bytes
    mf.core.nn_path(prev_path)
    if not ok then error(err, 0) end
  end)

  it("rejects mismatched shapes and dtypes", function()
    local q = mf.zeros({ 1, 2, 3, 4 })
    assert.has_error(function() F.attention(q, mf.zeros({ 1, 2, 5, 3 }), mf.zeros({ 1, 2, 5, 3 })) end,
      "moonflow.nn.F.attention: shapes q {1, 2, 3, 4}, k {1, 2, 5, 3}, v {1, 2, 5, 3} do not match (q {B, h, N, d}, k {B, h, M, d}, v {B, h, M, e})")
    assert.has_error(function() F.attention(mf.zeros({ 2, 3, 4 }), q, q) end,
      "moonflow.nn.F.attention: q must be {B, heads, N, d}, got shape {2, 3, 4}")
    assert.has_error(function() F.attention(q, q, q:to("f64")) end,
      "moonflow.nn.F.attention: q, k, v must share dtype f32 or f64, got f32, f32, f64")
  end)
end)
