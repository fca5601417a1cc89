-- DiT's image-side ops: patchify / unpatchify (views and one copy),
-- fixed 2-D sine-cosine position embeddings, adaLN modulation.
local core = require "moonflow.core"
local O = require "moonflow.ops"
local A = require "moonflow.autograd"
local Fz = require "moonflow.nn.fused"

local P = {}

local function shape_str(s) return "{" .. table.concat(s, ", ") .. "}" end

local function check_tensor(fn, what, t, nd)
  if not A.is_tensor(t) then error(("moonflow.nn.F.%s: %s must be a tensor, got %s"):format(fn, what, type(t)), 3) end
  if nd and core.dim(t) ~= nd then
    error(("moonflow.nn.F.%s: %s must have %d dims, got shape %s"):format(fn, what, nd, shape_str(t:shape())), 3)
  end
end

local function check_p(fn, p)
  if math.type(p) ~= "integer" or p < 1 then
    error(("moonflow.nn.F.%s: patch size must be a positive integer, got %s"):format(fn, tostring(p)), 3)
  end
end

-- x {B, C, H, W} -> tokens {B, (H/p)(W/p), p p C}: the token of patch (i, j)
-- (row-major) holds x[b, c, i p + u, j p + v] at feature (u p + v) C + c
-- (DiT's unpatchify einsum 'nhwpqc->nchpwq', read backwards).
function P.patchify(x, p)
  check_tensor("patchify", "x", x, 4)
  check_p("patchify", p)
  local s = x:shape()
  local B, Cc, H, W = s[1], s[2], s[3], s[4]
  if H % p ~= 0 or W % p ~= 0 then
    error(("moonflow.nn.F.patchify: H = %d and W = %d must be divisible by the patch size %d"):format(H, W, p), 2)
  end
  local h, w = H // p, W // p
  local v = O.reshape(O.contiguous(x), { B, Cc, h, p, w, p }) -- b c i u j v
  v = O.contiguous(O.permute(v, { 1, 3, 5, 4, 6, 2 }))          -- b i j u v c
  return O.reshape(v, { B, h * w, p * p * Cc })
end

-- tokens {B, (H/p)(W/p), p p C} -> {B, C, H, W}, the inverse of patchify
function P.unpatchify(t, p, C, H, W)
  check_tensor("unpatchify", "tokens", t, 3)
  check_p("unpatchify", p)
  for _, v in ipairs { { "C", C }, { "H", H }, { "W", W } } do
    if math.type(v[2]) ~= "integer" or v[2] < 1 then
      error(("moonflow.nn.F.unpatchify: %s must be a positive integer, got %s"):format(v[1], tostring(v[2])), 2)
    end
  end
  if H % p ~= 0 or W % p ~= 0 then
    error(("moonflow.nn.F.unpatchify: H = %d and W = %d must be divisible by the patch size %d"):format(H, W, p), 2)
  end
  local s = t:shape()
  local h, w = H // p, W // p
  if s[2] ~= h * w or s[3] ~= p * p * C then
    error(("moonflow.nn.F.unpatchify: tokens of shape %s, expected {B, %d, %d} for p = %d, C = %d, H = %d, W = %d")
      :format(shape_str(s), h * w, p * p * C, p, C, H, W), 2)
  end
  local B = s[1]
  local v = O.reshape(O.contiguous(t), { B, h, w, p, p, C })    -- b i j u v c
  v = O.contiguous(O.permute(v, { 1, 6, 2, 4, 3, 5 }))          -- b c i u j v
  return O.reshape(v, { B, C, H, W })
end

-- {grid_h grid_w, dim} fixed embeddings (MAE / DiT get_2d_sincos_pos_embed):
-- token r = i grid_w + j (row i, column j); the first dim/2 features encode
-- the column j, the last dim/2 the row i (DiT's meshgrid(w, h) puts w first),
-- each half as [sin(pos w_k), cos(pos w_k)], w_k = 10000^(-k / (dim/4)),
-- k = 0 .. dim/4 - 1. Computed in doubles, then uploaded in dtype.
function P.pos_embed_2d_table(dim, gh, gw)
  local q = dim // 4
  local rows = {}
  for i = 0, gh - 1 do
    for j = 0, gw - 1 do
      local r = {}
      for half, pos in ipairs { j, i } do
        local at = (half - 1) * 2 * q
        for k = 0, q - 1 do
          local a = pos * 10000 ^ (-k / q)
          r[at + k + 1] = math.sin(a)
          r[at + q + k + 1] = math.cos(a)
        end
      end
      rows[#rows + 1] = r
    end
  end
  return rows
end

function P.pos_embed_2d(dim, grid_h, grid_w, dtype)
  grid_w = grid_w or grid_h
  if math.type(dim) ~= "integer" or dim < 4 or dim % 4 ~= 0 then
    error(("moonflow.nn.F.pos_embed_2d: dim must be a positive multiple of 4, got %s"):format(tostring(dim)), 2)
  end
  for _, g in ipairs { grid_h, grid_w } do
    if math.type(g) ~= "integer" or g < 1 then
      error(("moonflow.nn.F.pos_embed_2d: grid sizes must be positive integers, got %s"):format(tostring(g)), 2)
    end
  end
  return core.tensor(P.pos_embed_2d_table(dim, grid_h, grid_w), dtype or "f32")
end

-- shift, scale {B, D} as {B, 1, D} against x {B, N, D}
local function per_sample(fn, what, v, B, D)
  check_tensor(fn, what, v, 2)
  local s = v:shape()
  if s[1] ~= B or s[2] ~= D then
    error(("moonflow.nn.F.%s: %s has shape %s, expected {%d, %d}"):format(fn, what, shape_str(s), B, D), 3)
  end
  return O.reshape(v, { B, 1, D })
end

local function check_x(fn, x, shift, scale)
  check_tensor(fn, "x", x, 3)
  local s = x:shape()
  return per_sample(fn, "shift", shift, s[1], s[3]), per_sample(fn, "scale", scale, s[1], s[3])
end

-- adaLN: x (1 + scale) + shift, x {B, N, D}, shift and scale {B, D}
function P.modulate(x, shift, scale)
  local sh, sc = check_x("modulate", x, shift, scale)
  return O.add(O.mul(x, O.add(sc, 1)), sh)
end

-- modulate(LayerNorm(x) without affine, shift, scale), composed: the fused
-- LayerNorm row kernel (nn/fused.lua), then two broadcast kernels (the
-- reference the fused op below is tested against); eps 1e-6 by default (DiT's)
function P.layer_norm_modulate_composite(x, shift, scale, eps)
  local sh, sc = check_x("layer_norm_modulate_composite", x, shift, scale)
  local s = x:shape()
  local x2 = O.reshape(O.contiguous(x), { s[1] * s[2], s[3] })
  local xn = O.reshape(Fz.layer_norm(x2, nil, nil, nil, eps or 1e-6, nil), s)
  return O.add(O.mul(xn, O.add(sc, 1)), sh)
end

-- The same in one kernel per row (cl/nn.cl, lnm_*), xh = (x - mu) rstd:
--   y = xh (1 + scale[b]) + shift[b]
--   vjp: u = g (1 + scale[b]), gx = rstd (u - mean u - xh mean(u xh)),
--        gshift[b] = sum_n g, gscale[b] = sum_n g xh
--   jvp: ty = txh (1 + scale[b]) + xh tscale[b] + tshift[b],
--        txh = rstd (tx - mean tx - xh mean(tx xh))
local packed = O.packed
local lnm = O.def("layer_norm_modulate", {
  forward = function(ctx, x, shift, scale, eps)
    local s = x:shape()
    local x2 = core.reshape(packed(x), { s[1] * s[2], s[3] })
    local sc = packed(scale)
    local y, mean, rstd = core.nn_lnm_fwd(x2, packed(shift), sc, s[2], eps)
    ctx.x2, ctx.sc, ctx.mean, ctx.rstd, ctx.shape = x2, sc, mean, rstd, s
    return core.reshape(y, s)
  end,
  vjp = function(ctx, g)
    local gx, gsh, gsc = core.nn_lnm_bwd(packed(g), ctx.x2, ctx.mean, ctx.rstd, ctx.sc, ctx.shape[2])
    return core.reshape(gx, ctx.shape), gsh, gsc
  end,
  jvp = function(ctx, tx, tsh, tsc)
    local s = ctx.shape
    local ty = core.nn_lnm_jvp(tx and core.reshape(packed(tx), { s[1] * s[2], s[3] }), tsh and packed(tsh),
      tsc and packed(tsc), ctx.x2, ctx.mean, ctx.rstd, ctx.sc, s[2])
    return core.reshape(ty, s)
  end,
})

function P.layer_norm_modulate(x, shift, scale, eps)
  check_x("layer_norm_modulate", x, shift, scale)
  local dt = core.dtype(x)
  if core.dtype(shift) ~= dt or core.dtype(scale) ~= dt then
    error(("moonflow.nn.F.layer_norm_modulate: x, shift, scale must share a dtype, got %s, %s, %s")
      :format(dt, core.dtype(shift), core.dtype(scale)), 2)
  end
  eps = eps or 1e-6
  if type(eps) ~= "number" or not (eps >= 0) then
    error(("moonflow.nn.F.layer_norm_modulate: eps must be a number >= 0, got %s"):format(tostring(eps)), 2)
  end
  return A.apply(lnm, x, shift, scale, eps)
end

return P
