-- mf.nn.F.attention's three paths on one device: "host" (core.nn_path "auto"
-- on a CPU device with OpenBLAS: one native kernel per forward and backward,
-- sgemm and a C softmax per head, src/attention_host.c), "run" materializes
-- the scores with device kernels, "wg" runs the flash-style tiles of
-- cl/attention.cl (the GPU path: 32-row tiles, running max and sum). Values
-- against Lua doubles, the paths against each other (values, vjp, jvp) in f32
-- and f64, vjp and jvp against central differences, and the memory they hold.
local mf = require "moonflow"
local G = require "autograd_check"
local H = require "helpers"
local F = mf.nn.F
local core = mf.core

-- softmax(scale q k^T) v per head, in Lua doubles
local function attention_lua(q, k, v, scale)
  local out = {}
  for b = 1, #q do
    out[b] = {}
    for h = 1, #q[b] do
      local Q, K, V, rows = q[b][h], k[b][h], v[b][h], {}
      for i = 1, #Q do
        local s, m = {}, -math.huge
        for j = 1, #K do
          local x = 0
          for c = 1, #Q[i] do x = x + Q[i][c] * K[j][c] end
          s[j] = scale * x
          m = math.max(m, s[j])
        end
        local z = 0
        for j = 1, #K do s[j] = math.exp(s[j] - m); z = z + s[j] end
        rows[i] = {}
        for c = 1, #V[1] do
          local a = 0
          for j = 1, #K do a = a + s[j] / z * V[j][c] end
          rows[i][c] = a
        end
      end
      out[b][h] = rows
    end
  end
  return out
end

-- the host path serves "auto" on a CPU device unless MOONFLOW_GEMM keeps products on the device
local gemm_env = os.getenv("MOONFLOW_GEMM")
local HOST = core.device().type ~= "gpu" and gemm_env ~= "device" and gemm_env ~= "clblast"

-- path "host" runs under "auto" and asserts that the host path serves it
-- the vjp of attention for one cotangent g, in Lua doubles (composite formula):
--   P = softmax(s Q K^T), dV = P^T G, dP = G V^T, dS = P o (dP - rowsum(P o dP)),
--   dQ = s dS K, dK = s dS^T Q
local function attention_vjp_lua(q, k, v, g, scale)
  local dq, dk, dv = {}, {}, {}
  for b = 1, #q do
    dq[b], dk[b], dv[b] = {}, {}, {}
    for h = 1, #q[b] do
      local Q, K, V, Gh = q[b][h], k[b][h], v[b][h], g[b][h]
      local n, m, d, e = #Q, #K, #Q[1], #V[1]
      local P, dS = {}, {}
      for i = 1, n do
        local s, mx, z = {}, -math.huge, 0
        for j = 1, m do
          local x = 0
          for c = 1, d do x = x + Q[i][c] * K[j][c] end
          s[j] = scale * x
          mx = math.max(mx, s[j])
        end
        for j = 1, m do s[j] = math.exp(s[j] - mx); z = z + s[j] end
        for j = 1, m do s[j] = s[j] / z end
        P[i] = s
        local dp, r = {}, 0
        for j = 1, m do
          local x = 0
          for c = 1, e do x = x + Gh[i][c] * V[j][c] end
          dp[j] = x
          r = r + s[j] * x
        end
        dS[i] = {}
        for j = 1, m do dS[i][j] = s[j] * (dp[j] - r) end
      end
      local DQ, DK, DV = {}, {}, {}
      for i = 1, n do
        DQ[i] = {}
        for c = 1, d do
          local x = 0
          for j = 1, m do x = x + dS[i][j] * K[j][c] end
          DQ[i][c] = scale * x
        end
      end
      for j = 1, m do
        DK[j], DV[j] = {}, {}
        for c = 1, d do
          local x = 0
          for i = 1, n do x = x + dS[i][j] * Q[i][c] end
          DK[j][c] = scale * x
        end
        for c = 1, e do
          local x = 0
          for i = 1, n do x = x + P[i][j] * Gh[i][c] end
          DV[j][c] = x
        end
      end
      dq[b][h], dk[b][h], dv[b][h] = DQ, DK, DV
    end
  end
  return dq, dk, dv
end

local function with_path(path, fn)
  local prev = core.nn_path(path == "host" and "auto" or path)
  if path == "host" then assert.is_true(core.nn_attn_host(), "the host attention path does not serve") end
  local ok, err = pcall(fn)
  core.nn_path(prev)
  if not ok then error(err, 0) end
end

local function rand(shape, seed, dt, lo, hi) return mf.tensor(H.rand_table(shape, seed, lo or -1.5, hi or 1.5), dt) end

-- o, dq, dk, dv and the jvp along (tq, tk, tv) on one path; tangents may be nil
local function everything(path, q, k, v, w, tq, tk, tv, opts)
  local got
  with_path(path, function()
    local a, b, c = q:clone():requires_grad(), k:clone():requires_grad(), v:clone():requires_grad()
    local o = F.attention(a, b, c, opts)
    o:backward(w)
    local args, tans, f = {}, {}, nil
    -- only the inputs with a tangent are jvp arguments; the others are constants
    local fixed = { q, k, v }
    local slot = {}
    for i, t in ipairs { tq or false, tk or false, tv or false } do
      if t then args[#args + 1], tans[#tans + 1], slot[#args + 1] = fixed[i], t, i end
    end
    f = function(...)
      local x = { q, k, v }
      for j, y in ipairs { ... } do x[slot[j]] = y end
      return F.attention(x[1], x[2], x[3], opts)
    end
    local _, t = mf.autograd.jvp(f, args, tans)
    got = { o = o:tolist(), dq = a.grad:tolist(), dk = b.grad:tolist(), dv = c.grad:tolist(), jvp = t:tolist() }
  end)
  return got
end

local WHAT = { "o", "dq", "dk", "dv", "jvp" }
-- the paths the device has besides "run" (the reference here: the composite formula's kernels)
local OTHERS = HOST and { "wg", "host" } or { "wg" }

describe("attention, host, tiled (wg) and materialized (run) paths", function()
  after_each(function() core.nn_path("auto") end)

  for _, dt in ipairs { "f64", "f32" } do
    it(("agree in values, vjp and jvp (%s; N = 37, M = 70: not multiples of the 32-row tile; d = 5, e = 7; scale 0.3)")
      :format(dt), function()
      local q, k, v = rand({ 2, 3, 37, 5 }, 1, dt), rand({ 2, 3, 70, 5 }, 2, dt), rand({ 2, 3, 70, 7 }, 3, dt)
      local w = rand({ 2, 3, 37, 7 }, 4, dt)
      local tq, tk, tv = rand({ 2, 3, 37, 5 }, 5, dt), rand({ 2, 3, 70, 5 }, 6, dt), rand({ 2, 3, 70, 7 }, 7, dt)
      local opts = { scale = 0.3 }
      local run = everything("run", q, k, v, w, tq, tk, tv, opts)
      local tol = dt == "f64" and 1e-13 or 3e-6
      local want = H.flatten(attention_lua(q:totable(), k:totable(), v:totable(), 0.3))
      for _, path in ipairs(OTHERS) do
        local got = everything(path, q, k, v, w, tq, tk, tv, opts)
        for _, what in ipairs(WHAT) do H.close(got[what], run[what], tol, tol, path .. " " .. dt .. " " .. what) end
        H.close(got.o, want, tol, tol, path .. " " .. dt .. " o vs Lua doubles")
      end
    end)
  end

  it("agree with only some tangents (q, k, v alone and in pairs) and the default scale", function()
    local q, k, v = rand({ 1, 2, 33, 4 }, 8, "f64"), rand({ 1, 2, 40, 4 }, 9, "f64"), rand({ 1, 2, 40, 3 }, 10, "f64")
    local w = rand({ 1, 2, 33, 3 }, 11, "f64")
    local tq, tk, tv = rand({ 1, 2, 33, 4 }, 12, "f64"), rand({ 1, 2, 40, 4 }, 13, "f64"), rand({ 1, 2, 40, 3 }, 14, "f64")
    for _, set in ipairs { { tq }, { nil, tk }, { nil, nil, tv }, { tq, tk }, { nil, tk, tv }, { tq, nil, tv } } do
      local run = everything("run", q, k, v, w, set[1], set[2], set[3])
      local name = (set[1] and "q" or "") .. (set[2] and "k" or "") .. (set[3] and "v" or "")
      for _, path in ipairs(OTHERS) do
        local got = everything(path, q, k, v, w, set[1], set[2], set[3])
        for _, what in ipairs(WHAT) do H.close(got[what], run[what], 1e-13, 1e-13, path .. " " .. name .. " " .. what) end
      end
    end
  end)

  it("the tiled path: vjp and jvp vs central differences (two tiles of queries and keys, cross-attention)", function()
    with_path("wg", function()
      G.check("tiled attention", function(q, k, v) return F.attention(q, k, v, { scale = 0.8 }) end,
        { { { 1, 2, 35, 3 } }, { { 1, 2, 33, 3 } }, { { 1, 2, 33, 2 } } })
      G.check("tiled self-attention", function(x) return F.attention(x, x, x) end, { { { 1, 1, 34, 3 } } })
    end)
  end)

  it("agree on views: the heads split of one qkv projection {B, N, 3 h d}, N = 40", function()
    local x = rand({ 2, 40, 3 * 2 * 4 }, 22, "f64")
    local y = x:reshape({ 2, 40, 3, 2, 4 }):permute({ 3, 1, 4, 2, 5 }) -- {3, B, h, N, d}
    local q, k, v = y:narrow(1, 1, 1):reshape({ 2, 2, 40, 4 }), y:narrow(1, 2, 1):reshape({ 2, 2, 40, 4 }),
      y:narrow(1, 3, 1):reshape({ 2, 2, 40, 4 })
    local w = rand({ 2, 2, 40, 4 }, 23, "f64")
    local run = everything("run", q, k, v, w, q * 0.5, k * 2, v * -1)
    for _, path in ipairs(OTHERS) do
      local got = everything(path, q, k, v, w, q * 0.5, k * 2, v * -1)
      for _, what in ipairs(WHAT) do H.close(got[what], run[what], 1e-13, 1e-13, path .. " views " .. what) end
    end
  end)

  it("the tiled and host paths keep large logits finite (f32, scores up to ~90: exp would overflow unshifted)", function()
    -- key j's score grows with j, so each tile raises the running max
    local N, M, d = 3, 70, 2
    local qt, kt, vt = {}, {}, {}
    for i = 1, N do qt[i] = { 3 + i, 1 } end
    for j = 1, M do kt[j] = { 3 * j / M, -0.5 + j / M } end
    for j = 1, M do vt[j] = { math.sin(j), math.cos(j), j / M } end
    local want = H.flatten(attention_lua({ { qt } }, { { kt } }, { { vt } }, 4))
    for _, path in ipairs(OTHERS) do
      with_path(path, function()
        local o = F.attention(mf.tensor({ { qt } }, "f32"), mf.tensor({ { kt } }, "f32"), mf.tensor({ { vt } }, "f32"),
          { scale = 4 })
        H.close(o:tolist(), want, 1e-5, 1e-6, path .. " large logits")
      end)
    end
  end)

  it("the tiled and host paths' device memory does not grow with N M (forward and backward at N = M = 1024)", function()
    local N, d = 1024, 4
    local q, k, v = rand({ 1, 1, N, d }, 15, "f32"), rand({ 1, 1, N, d }, 16, "f32"), rand({ 1, 1, N, d }, 17, "f32")
    local w = rand({ 1, 1, N, d }, 18, "f32")
    local grew = {}
    for _, path in ipairs { "run", table.unpack(OTHERS) } do
      with_path(path, function()
        local a, b, c = q:clone():requires_grad(), k:clone():requires_grad(), v:clone():requires_grad()
        collectgarbage()
        mf.synchronize()
        local base = mf.memory().in_use
        mf.reset_peak()
        F.attention(a, b, c):backward(w)
        mf.synchronize()
        grew[path] = mf.memory().peak - base
      end)
    end
    local scores = N * N * 4
    -- the materialized path holds at least the scores; the tiles a few {N, d} blocks
    assert.is_true(grew.run >= scores, ("run grew by %d bytes, scores are %d"):format(grew.run, scores))
    assert.is_true(grew.wg < 16 * N * d * 4, ("wg grew by %d bytes (N d = %d elements)"):format(grew.wg, N * d))
    -- the host path's scores live in per-thread host scratch, never on the device
    if HOST then
      assert.is_true(grew.host < 16 * N * d * 4, ("host grew by %d bytes (N d = %d elements)"):format(grew.host, N * d))
    end
  end)

  it("on a CPU device \"auto\" is the host path: no scores on the device (f32 and f64, N = M = 512, one head)", function()
    if not HOST then return pending("a GPU device, or MOONFLOW_GEMM = " .. tostring(gemm_env)) end
    local N, d = 512, 8
    for _, dt in ipairs { "f32", "f64" } do
      local q, k, v = rand({ 1, 1, N, d }, 31, dt), rand({ 1, 1, N, d }, 32, dt), rand({ 1, 1, N, d }, 33, dt)
      local w = rand({ 1, 1, N, d }, 34, dt)
      with_path("auto", function()
        local a, b, c = q:clone():requires_grad(), k:clone():requires_grad(), v:clone():requires_grad()
        collectgarbage()
        mf.synchronize()
        local base = mf.memory().in_use
        mf.reset_peak()
        F.attention(a, b, c):backward(w)
        mf.synchronize()
        local grew, scores = mf.memory().peak - base, N * N * (dt == "f64" and 8 or 4)
        assert.is_true(grew < scores / 4, ("%s: auto grew by %d bytes, the scores are %d"):format(dt, grew, scores))
      end)
    end
    assert.is_true(core.nn_attn_host())
    with_path("run", function() assert.is_false(core.nn_attn_host()) end)
    with_path("wg", function() assert.is_false(core.nn_attn_host()) end)
  end)

  for _, dt in ipairs { "f64", "f32" } do
    it(("the host path against the composite formula in Lua doubles (%s; B = 1, h = 3, N = 37, M = 53, d = 24, e = 40)")
      :format(dt), function()
      if not HOST then return pending("a GPU device, or MOONFLOW_GEMM = " .. tostring(gemm_env)) end
      local q, k, v = rand({ 1, 3, 37, 24 }, 41, dt, -1, 1), rand({ 1, 3, 53, 24 }, 42, dt, -1, 1),
        rand({ 1, 3, 53, 40 }, 43, dt)
      local w = rand({ 1, 3, 37, 40 }, 44, dt)
      local tq, tk, tv = rand({ 1, 3, 37, 24 }, 45, dt), rand({ 1, 3, 53, 24 }, 46, dt), rand({ 1, 3, 53, 40 }, 47, dt)
      local scale = 0.35
      local qt, kt, vt = q:totable(), k:totable(), v:totable()
      local o = H.flatten(attention_lua(qt, kt, vt, scale))
      local dq, dk, dv = attention_vjp_lua(qt, kt, vt, w:totable(), scale)
      dq, dk, dv = H.flatten(dq), H.flatten(dk), H.flatten(dv)
      local run = everything("run", q, k, v, w, tq, tk, tv, { scale = scale })
      -- f32: a few ulps of the largest terms (|s| up to ~8, sums over 24..53 terms)
      local tol = dt == "f64" and 1e-13 or 1e-5
      -- P kept by the forward (the default at this size) and recomputed by the
      -- backward; each head whole and in blocks of 8 query rows (8 + 8 + 8 + 8 + 5)
      local mod = require "moonflow.nn.attention"
      for _, case in ipairs { { true }, { false }, { true, 8 }, { false, 8 } } do
        local keep, rows = case[1], case[2]
        local prev = mod.keep_scores
        local block = core.nn_attn_host_block(rows and rows * 53 * (dt == "f64" and 8 or 4))
        mod.keep_scores = keep
        local ok, host = pcall(everything, "host", q, k, v, w, tq, tk, tv, { scale = scale })
        mod.keep_scores = prev
        core.nn_attn_host_block(block)
        if not ok then error(host, 0) end
        local what = ("%s keep %s rows %s "):format(dt, tostring(keep), tostring(rows or 37))
        H.close(host.o, o, tol, tol, what .. "o")
        H.close(host.dq, dq, tol, tol, what .. "dq")
        H.close(host.dk, dk, tol, tol, what .. "dk")
        H.close(host.dv, dv, tol, tol, what .. "dv")
        H.close(host.jvp, run.jvp, tol, tol, what .. "jvp")
      end
    end)
  end

  it("the host path: vjp and jvp vs central differences (cross- and self-attention, f64)", function()
    if not HOST then return pending("a GPU device, or MOONFLOW_GEMM = " .. tostring(gemm_env)) end
    with_path("host", function()
      G.check("host attention", function(q, k, v) return F.attention(q, k, v, { scale = 0.8 }) end,
        { { { 1, 3, 5, 3 } }, { { 1, 3, 7, 3 } }, { { 1, 3, 7, 2 } } })
      G.check("host self-attention", function(x) return F.attention(x, x, x) end, { { { 2, 1, 6, 3 } } })
    end)
  end)

  it("the host kernels' binding rejects bad operands with a clear error", function()
    if not HOST then return pending("a GPU device, or MOONFLOW_GEMM = " .. tostring(gemm_env)) end
    local q, k, v = mf.zeros({ 2, 3, 4 }, "f64"), mf.zeros({ 2, 5, 4 }, "f64"), mf.zeros({ 2, 5, 6 }, "f64")
    H.errors(function() core.nn_attn_host_fwd(q, mf.zeros({ 2, 5, 3 }, "f64"), v, 1) end,
      "moonflow.attention: host attention: k must be {2, 5, 4}")
    H.errors(function() core.nn_attn_host_fwd(q, k, v:to("f32"), 1) end,
      "moonflow.attention: host attention: v is f32, expected f64")
    H.errors(function() core.nn_attn_host_fwd(q, mf.zeros({ 2, 0, 4 }, "f64"), mf.zeros({ 2, 0, 6 }, "f64"), 1) end,
      "moonflow.attention: host attention: no keys (M = 0)")
    local o, lse, p = core.nn_attn_host_fwd(q, k, v, 1, true)
    local g = mf.zeros({ 2, 3, 6 }, "f64")
    H.errors(function() core.nn_attn_host_bwd(mf.zeros({ 2, 3, 5 }, "f64"), q, k, v, o, lse, p, 1) end,
      "moonflow.attention: host attention: the cotangent must be {2, 3, 6}")
    H.errors(function() core.nn_attn_host_bwd(g, q, k, v, o, mf.zeros({ 2, 4 }, "f64"), nil, 1) end,
      "moonflow.attention: host attention: the log-sum-exps must be a contiguous f64 {2, 3}")
    H.errors(function() core.nn_attn_host_bwd(g, q, k, v, o, lse, mf.zeros({ 2, 5, 3 }, "f64"), 1) end,
      "moonflow.attention: host attention: the kept P must be {2, 3, 5}")
    H.errors(function() core.nn_attn_host_bwd(g, q, k, v, o, lse, p:to("f32"), 1) end,
      "moonflow.attention: host attention: the kept P is f32, expected f64")
    H.errors(function() core.nn_attn_host_block(-1) end, "moonflow.attention: block of -1 bytes, expected a positive size")
  end)

  it("falls back to the materialized path for head sizes over 128 (forced wg)", function()
    local q, k, v = rand({ 1, 1, 3, 130 }, 19, "f64", -0.3, 0.3), rand({ 1, 1, 4, 130 }, 20, "f64", -0.3, 0.3),
      rand({ 1, 1, 4, 2 }, 21, "f64")
    -- "auto": the tiles on a GPU, the materialized scores on a CPU
    with_path("auto", function() assert.equal(core.device().type == "gpu", core.nn_attn_tiled(128, 128)) end)
    with_path("run", function() assert.is_false(core.nn_attn_tiled(128, 128)) end)
    with_path("wg", function()
      assert.is_false(core.nn_attn_tiled(130, 2))
      assert.is_false(core.nn_attn_tiled(2, 129))
      assert.is_true(core.nn_attn_tiled(128, 1))
      H.close(F.attention(q, k, v):tolist(), H.flatten(attention_lua(q:totable(), k:totable(), v:totable(),
        1 / math.sqrt(130))), 1e-13, 1e-13, "d = 130")
    end)
  end)

  it("the kernels' launchers reject bad operands with a clear error", function()
    local q, k, v = mf.zeros({ 2, 3, 4 }, "f64"), mf.zeros({ 2, 5, 4 }, "f64"), mf.zeros({ 2, 5, 6 }, "f64")
    H.errors(function() core.nn_attn_fwd(q, mf.zeros({ 2, 5, 3 }, "f64"), v, 1) end,
      "moonflow.attention: attention: k must be {2, 5, 4}")
    H.errors(function() core.nn_attn_fwd(q, k, v:to("f32"), 1) end, "moonflow.attention: attention: v is f32, expected f64")
    H.errors(function() core.nn_attn_fwd(q, mf.zeros({ 2, 0, 4 }, "f64"), mf.zeros({ 2, 0, 6 }, "f64"), 1) end,
      "moonflow.attention: attention: no keys (M = 0)")
    local o, lse = core.nn_attn_fwd(q, k, v, 1)
    H.errors(function() core.nn_attn_bwd(mf.zeros({ 2, 3, 5 }, "f64"), q, k, v, o, lse, 1) end,
      "moonflow.attention: attention: the cotangent must be {2, 3, 6}")
    H.errors(function() core.nn_attn_jvp(nil, q, nil, q, k, v, o, lse, 1) end,
      "moonflow.attention: attention: the tangent of k must be {2, 5, 4}")
  end)
end)
