-- Scaled dot-product attention as one differentiable op:
--   S = s Q K^T, P = softmax(S) (rows), O = P V,  s = 1/sqrt(d) by default
-- for Q {B, h, N, d}, K {B, h, M, d}, V {B, h, M, e}. On a CPU the scores
-- are materialized, a chunk of heads at a time: batched gemm (core.matmul),
-- the fused softmax row kernel (cl/softmax.cl). The forward keeps P.
--   vjp: dV = P^T G, dP = G V^T, dS = P o (dP - rowsum(dP o P)),
--        dQ = s dS K, dK = s dS^T Q
--   jvp: dS = s (dQ K^T + Q dK^T), dP = P o (dS - rowsum(P o dS)),
--        dO = dP V + P dV
-- On a GPU (core.nn_path "auto" on a GPU device, or forced "wg") the tiled
-- kernels of cl/attention.cl replace all three: tiles of K and V in local
-- memory, a running max and sum, memory independent of N^2; the forward keeps
-- O and the row log-sum-exps L, the vjp and jvp recompute P = exp(S - L).
-- On a CPU device with OpenBLAS (core.nn_attn_host: path "auto") one native
-- kernel per forward and per backward (src/attention_host.c) runs each head
-- with sgemm and a C softmax in host scratch, keeping O and L like the tiles,
-- and P too where a backward may come and P is no larger than q, k, v and o
-- together (else the backward recomputes it). Its jvp is the materialized
-- one, on the kept P or a recomputed one. Forced "run" is the materialized
-- path whole.
local core = require "moonflow.core"
local A = require "moonflow.autograd"
local O = require "moonflow.ops"

local C = core
local packed = O.packed

local function mT(x) return C.permute(x, { 1, 3, 2 }) end
local function flat3(x, s) return C.reshape(packed(x), { s[1] * s[2], s[3], s[4] }) end

-- The kernel paths (tiled, host) work on {B h, rows, cols} blocks: ctx keeps
-- the packed blocks, the scale and the 4-D shapes to reshape results back.
local function to_blocks(ctx, q, k, v, scale, qs_, ks_, vs_)
  ctx.q3, ctx.k3, ctx.v3, ctx.scale = flat3(q, qs_), flat3(k, ks_), flat3(v, vs_), scale
  ctx.qshape, ctx.kshape, ctx.vshape = qs_, ks_, vs_
end
-- the output's shape {B, h, N, e}
local function out_shape(ctx)
  local s = ctx.qshape
  return { s[1], s[2], s[3], ctx.vshape[4] }
end
-- the cotangent g {B, h, N, e} as a block {B h, N, e}
local function g_block(ctx, g)
  local s = ctx.qshape
  return C.reshape(packed(g), { s[1] * s[2], s[3], ctx.vshape[4] })
end
-- the blocks' dq, dk, dv in the shapes of q, k, v
local function grads(ctx, dq, dk, dv)
  return C.reshape(dq, ctx.qshape), C.reshape(dk, ctx.kshape), C.reshape(dv, ctx.vshape)
end

-- the flash-style kernels (cl/attention.cl)
local function tiled_forward(ctx, q, k, v, scale, qs_, ks_, vs_)
  to_blocks(ctx, q, k, v, scale, qs_, ks_, vs_)
  ctx.tiled = true
  ctx.o, ctx.lse = C.nn_attn_fwd(ctx.q3, ctx.k3, ctx.v3, scale)
  return C.reshape(ctx.o, out_shape(ctx))
end

local function tiled_vjp(ctx, g)
  return grads(ctx, C.nn_attn_bwd(g_block(ctx, g), ctx.q3, ctx.k3, ctx.v3, ctx.o, ctx.lse, ctx.scale))
end

local function tiled_jvp(ctx, tq, tk, tv)
  local t = C.nn_attn_jvp(tq and flat3(tq, ctx.qshape), tk and flat3(tk, ctx.kshape), tv and flat3(tv, ctx.vshape),
    ctx.q3, ctx.k3, ctx.v3, ctx.o, ctx.lse, ctx.scale)
  return C.reshape(t, out_shape(ctx))
end

-- The materialized path runs over chunks of heads, so that one chunk's
-- scores {c, N, M} stay in cache between its gemm, softmax and gemm (on a
-- CPU, all heads at once stream the N^2 blocks through memory three times).
-- M.chunk_bytes: the scores a chunk may hold; scores up to twice that stay
-- one chunk (a GPU takes all heads at once).
local M = { chunk_bytes = 2 * 1024 * 1024 }
-- M.keep_scores: nil (the size rule), true or false: whether the host path keeps P
local MAX_CHUNKS = 256 -- core.cat's limit

local on_gpu -- the device never changes in a process
local function chunk_heads(bh, n, m, dt)
  if on_gpu == nil then on_gpu = C.device().type == "gpu" end
  if on_gpu then return bh end
  local per = n * m * (dt == "f64" and 8 or 4)
  if bh * per <= 2 * M.chunk_bytes then return bh end -- cache-sized already: one launch each
  local c = math.max(1, M.chunk_bytes // math.max(per, 1), -(-bh // MAX_CHUNKS))
  return math.floor(math.min(c, bh))
end

-- runs f(i, first, count) over the chunks; cat(list) joins per-chunk results
local function each_chunk(ctx, f)
  local bh, c = ctx.bh, ctx.chunk
  local i = 0
  for first = 1, bh, c do
    i = i + 1
    f(i, first, math.min(c, bh - first + 1))
  end
end
local function cat(list) return #list == 1 and list[1] or C.cat(list, 1) end
local function part(x, first, count, bh)
  if count == bh then return x end
  return C.narrow(x, 1, first, count)
end

-- the materialized forward on q3, k3, v3 {B h, rows, cols} (packed)
local function materialized_forward(ctx, q3, k3, v3, scale, qs_, ks_, vs_)
  q3 = C.binary("mul", q3, scale) -- s Q
  ctx.qs, ctx.k3, ctx.v3, ctx.scale = q3, k3, v3, scale
  ctx.qshape, ctx.kshape, ctx.vshape = qs_, ks_, vs_
  ctx.bh = qs_[1] * qs_[2]
  ctx.chunk = chunk_heads(ctx.bh, qs_[3], ks_[3], C.dtype(q3))
  local ps, os_ = {}, {}
  each_chunk(ctx, function(i, first, count)
    local qc, kc, vc = part(q3, first, count, ctx.bh), part(k3, first, count, ctx.bh), part(v3, first, count, ctx.bh)
    ps[i] = C.nn_softmax(C.matmul(qc, mT(kc)), nil, "softmax")
    os_[i] = C.matmul(ps[i], vc)
  end)
  ctx.ps = ps
  return C.reshape(cat(os_), out_shape(ctx))
end

-- the host kernels (src/attention_host.c)
local function host_forward(ctx, q, k, v, scale, qs_, ks_, vs_)
  to_blocks(ctx, q, k, v, scale, qs_, ks_, vs_)
  ctx.host = true
  local n, m, d, e = qs_[3], ks_[3], qs_[4], vs_[4]
  local keep = M.keep_scores
  -- P {N, M} within q, k, v, o, and a backward to come (the tape records)
  if keep == nil then keep = A.grad_enabled() and n * m <= (n + m) * (d + e) end
  ctx.o, ctx.lse, ctx.p = C.nn_attn_host_fwd(ctx.q3, ctx.k3, ctx.v3, scale, keep)
  return C.reshape(ctx.o, out_shape(ctx))
end

local function host_vjp(ctx, g)
  return grads(ctx, C.nn_attn_host_bwd(g_block(ctx, g), ctx.q3, ctx.k3, ctx.v3, ctx.o, ctx.lse, ctx.p, ctx.scale))
end

-- the materialized jvp from the forward's ctx (P per chunk)
local function materialized_jvp(ctx, tq, tk, tv)
  local oshape = out_shape(ctx)
  if not (tq or tk or tv) then return C.full(oshape, 0, C.dtype(ctx.qs)) end
  local tq3 = tq and flat3(tq, ctx.qshape)
  local tk3 = tk and flat3(tk, ctx.kshape)
  local tv3 = tv and flat3(tv, ctx.vshape)
  local ks = tq and C.binary("mul", ctx.k3, ctx.scale) or nil -- s K
  local outs = {}
  each_chunk(ctx, function(i, first, count)
    local function pc(x) return part(x, first, count, ctx.bh) end
    local p, ds, out = ctx.ps[i], nil, nil
    if tq3 then ds = C.matmul(pc(tq3), mT(pc(ks))) end
    if tk3 then
      local t = C.matmul(pc(ctx.qs), mT(pc(tk3)))
      ds = ds and C.binary("add", ds, t) or t
    end
    if ds then out = C.matmul(C.nn_softmax(ds, p, "softmax_d"), pc(ctx.v3)) end
    if tv3 then
      local t = C.matmul(p, pc(tv3))
      out = out and C.binary("add", out, t) or t
    end
    outs[i] = out
  end)
  return C.reshape(cat(outs), oshape)
end

-- the jvp after the host forward: the materialized jvp on the kept P (one
-- chunk) or on the materialized forward's
local function host_jvp(ctx, tq, tk, tv)
  local m = {}
  if ctx.p then
    m.qs, m.k3, m.v3, m.scale, m.ps = C.binary("mul", ctx.q3, ctx.scale), ctx.k3, ctx.v3, ctx.scale, { ctx.p }
    m.qshape, m.kshape, m.vshape = ctx.qshape, ctx.kshape, ctx.vshape
    m.bh = ctx.qshape[1] * ctx.qshape[2]
    m.chunk = m.bh
  else
    materialized_forward(m, ctx.q3, ctx.k3, ctx.v3, ctx.scale, ctx.qshape, ctx.kshape, ctx.vshape)
  end
  return materialized_jvp(m, tq, tk, tv)
end

local attention = O.def("attention", {
  forward = function(ctx, q, k, v, scale)
    local qs_, ks_, vs_ = q:shape(), k:shape(), v:shape()
    if ks_[3] > 0 and C.nn_attn_tiled(qs_[4], vs_[4]) then
      return tiled_forward(ctx, q, k, v, scale, qs_, ks_, vs_)
    end
    if ks_[3] > 0 and qs_[4] > 0 and vs_[4] > 0 and C.nn_attn_host() then
      return host_forward(ctx, q, k, v, scale, qs_, ks_, vs_)
    end
    return materialized_forward(ctx, flat3(q, qs_), flat3(k, ks_), flat3(v, vs_), scale, qs_, ks_, vs_)
  end,
  vjp = function(ctx, g)
    if ctx.tiled then return tiled_vjp(ctx, g) end
    if ctx.host then return host_vjp(ctx, g) end
    local needs = ctx.needs or { true, true, true }
    local g3 = g_block(ctx, g)
    local ks = (needs[1]) and C.binary("mul", ctx.k3, ctx.scale) or nil -- s K
    local dqs, dks, dvs = {}, {}, {}
    each_chunk(ctx, function(i, first, count)
      local p, gc = ctx.ps[i], part(g3, first, count, ctx.bh)
      if needs[3] then dvs[i] = C.matmul(mT(p), gc) end
      if needs[1] or needs[2] then
        local ds = C.nn_softmax(C.matmul(gc, mT(part(ctx.v3, first, count, ctx.bh))), p, "softmax_d")
        if needs[1] then dqs[i] = C.matmul(ds, part(ks, first, count, ctx.bh)) end
        if needs[2] then dks[i] = C.matmul(mT(ds), part(ctx.qs, first, count, ctx.bh)) end
      end
    end)
    local dq = needs[1] and C.reshape(cat(dqs), ctx.qshape) or nil
    local dk = needs[2] and C.reshape(cat(dks), ctx.kshape) or nil
    local dv = needs[3] and C.reshape(cat(dvs), ctx.vshape) or nil
    return dq, dk, dv
  end,
  jvp = function(ctx, tq, tk, tv)
    if ctx.tiled then return tiled_jvp(ctx, tq, tk, tv) end
    if ctx.host then return host_jvp(ctx, tq, tk, tv) end
    return materialized_jvp(ctx, tq, tk, tv)
  end,
})

local function shape_str(s) return "{" .. table.concat(s, ", ") .. "}" end

-- attention(q, k, v[, {scale = 1/sqrt(d)}]) -> {B, h, N, e}
local function attention_fn(q, k, v, opts)
  local fn = "moonflow.nn.F.attention"
  for _, a in ipairs { { "q", q }, { "k", k }, { "v", v } } do
    if not A.is_tensor(a[2]) then error(("%s: %s must be a tensor, got %s"):format(fn, a[1], type(a[2])), 2) end
    if C.dim(a[2]) ~= 4 then
      error(("%s: %s must be {B, heads, N, d}, got shape %s"):format(fn, a[1], shape_str(a[2]:shape())), 2)
    end
  end
  local qs, ks, vs = q:shape(), k:shape(), v:shape()
  if qs[1] ~= ks[1] or qs[2] ~= ks[2] or qs[4] ~= ks[4] or ks[1] ~= vs[1] or ks[2] ~= vs[2] or ks[3] ~= vs[3] then
    error(("%s: shapes q %s, k %s, v %s do not match (q {B, h, N, d}, k {B, h, M, d}, v {B, h, M, e})")
      :format(fn, shape_str(qs), shape_str(ks), shape_str(vs)), 2)
  end
  local dt = C.dtype(q)
  if (dt ~= "f32" and dt ~= "f64") or C.dtype(k) ~= dt or C.dtype(v) ~= dt then
    error(("%s: q, k, v must share dtype f32 or f64, got %s, %s, %s"):format(fn, dt, C.dtype(k), C.dtype(v)), 2)
  end
  local scale = opts and opts.scale or 1 / math.sqrt(qs[4])
  if type(scale) ~= "number" then error(("%s: scale must be a number, got %s"):format(fn, type(scale)), 2) end
  return A.apply(attention, q, k, v, scale)
end

M.attention = attention_fn
return M
