-- Fused layer ops (kernels in cl/nn.cl), each with its forward, vjp and jvp:
--   linear: y = act(x W^T + b) + r      (matmul, then one epilogue kernel)
--   ln:     y = act(LN(x) w + b + c)    (one kernel per row; backward 2 kernels)
-- x is 2-D here; functional.lua reshapes other ranks.
local core = require "moonflow.core"
local A = require "moonflow.autograd"
local O = require "moonflow.ops"

local C = core
local is_tensor = A.is_tensor
local Fz = {}

-- contiguous with offset 0 (what the kernels index)
local function packed(t)
  local _, _, _, off, contig = C.info(t)
  if contig and off == 0 then return t end
  return C.clone(t) -- one packed copy of any view (contiguous() first would copy twice)
end
Fz.packed = packed

-- The gradient buffer preset on a leaf (a view into a model's flat gradient
-- buffer): rules add into it directly and return no cotangent for the leaf,
-- which saves the tape's separate accumulation (same sum, one launch less).
local function grad_sink(t)
  if not (is_tensor(t) and t._leaf) then return nil end
  local g = t.grad
  if g and C.dtype(g) == C.dtype(t) and select(5, C.info(g)) then return g end
  return nil
end

local function mT(x) return C.permute(x, { 2, 1 }) end
local function add_opt(a, b)
  if a == nil then return b end
  if b == nil then return a end
  return C.binary("add", a, b)
end

-- the cotangents of the tensors among args (x, w, b, r|c), in order; nil holes kept
local function unpack_present(args, grads)
  local vals, k = {}, 0
  for i = 1, 4 do
    if is_tensor(args[i]) then k = k + 1; vals[k] = grads[i] end
  end
  return table.unpack(vals, 1, k)
end

------------------------------------------------------------------ linear
-- y = act(x W^T + b) + r;  pre = x W^T + b
-- vjp: gp = g act'(pre); gx = gp W; gW = gp^T x; gb = colsum gp; gr = g
-- jvp: ty = act'(pre) (tx W^T + x tW^T + tb) + tr
local linear = O.def("linear", {
  forward = function(ctx, x, w, b, r, act)
    x = packed(x)
    local z = C.matmul(x, mT(w))
    if r ~= nil then r = packed(r) end
    local y = C.nn_bias_act(z, b, r, act)
    ctx.x, ctx.w, ctx.b, ctx.r, ctx.act = x, w, b, r, act
    if act then ctx.pre = z end
    return y
  end,
  vjp = function(ctx, g)
    local needs = ctx.needs or { true, true, true, true }
    g = packed(g)
    local gp = ctx.act and C.nn_act_grad(g, ctx.pre, ctx.act) or g
    local gx = needs[1] and C.matmul(gp, ctx.w) or nil
    local gw = needs[2] and C.matmul(mT(gp), ctx.x) or nil
    local gb
    if ctx.b and needs[3] then
      local sink = grad_sink(ctx.b)
      if sink then C.nn_colsum(gp, sink) else gb = C.nn_colsum(gp) end
    end
    local gr = ctx.r and needs[4] and g or nil
    return unpack_present({ ctx.x, ctx.w, ctx.b, ctx.r }, { gx, gw, gb, gr })
  end,
  jvp = function(ctx, ...)
    local t = { ... } -- positional: one tangent (or nil) per argument
    local tpre = add_opt(t[1] and C.matmul(t[1], mT(ctx.w)), t[2] and C.matmul(ctx.x, mT(t[2])))
    local shape = { ctx.x:shape()[1], ctx.w:shape()[1] }
    if t[3] then tpre = tpre and C.binary("add", tpre, t[3]) or C.contiguous(C.expand(t[3], shape)) end
    local ty
    if tpre then ty = ctx.act and C.nn_act_grad(packed(tpre), ctx.pre, ctx.act) or tpre end
    ty = add_opt(ty, t[4])
    return ty or C.full(shape, 0, C.dtype(ctx.x))
  end,
})

-- the activations compiled into the kernels (MF_ACTIVATIONS, src/kernel_names.h)
local ACTS = {}
for _, name in ipairs(C.nn_activations) do ACTS[name] = true end
local function check_act(act, fn)
  if act == "none" then return nil end
  if act ~= nil and not ACTS[act] then
    error(("moonflow.%s: unknown activation %s (%s)"):format(fn, tostring(act),
      table.concat(C.nn_activations, ", ")), 3)
  end
  return act
end

-- x {rows, in}, w {out, in}, b {out} | nil, r {rows, out} | nil, act name | nil
function Fz.linear(x, w, b, r, act)
  act = check_act(act, "linear")
  return A.apply(linear, x, w, b, r, act)
end

---------------------------------------------------------------------- ln
-- y = act(pre), pre = xh w + b + c, xh = (x - mu) rstd
-- vjp: gp = g act'(pre) (= gc); u = gp w; gx = rstd (u - mean u - xh mean(u xh));
--      gw = colsum(gp xh); gb = colsum gp
-- jvp: the normalization's Jacobian is symmetric, so txh is the same row
--      formula on tx; ty = act'(pre) (txh w + xh tw + tb + tc)
local ln = O.def("layer_norm", {
  forward = function(ctx, x, w, b, c, eps, act)
    x = packed(x)
    if c ~= nil then c = packed(c) end
    local y, mean, rstd = C.nn_ln_fwd(x, w, b, c, eps, act)
    ctx.x, ctx.w, ctx.b, ctx.c, ctx.act, ctx.mean, ctx.rstd = x, w, b, c, act, mean, rstd
    return y
  end,
  vjp = function(ctx, g)
    local needs = ctx.needs or { true, true, true, true }
    local gx, gp = C.nn_ln_bwd(packed(g), ctx.x, ctx.mean, ctx.rstd, ctx.w, ctx.b, ctx.c, ctx.act)
    local gw, gb
    if (ctx.w and needs[2]) or (ctx.b and needs[3]) then
      local sw, sb = grad_sink(ctx.w), grad_sink(ctx.b)
      if sw and sb then
        C.nn_ln_wgrad(gp, ctx.x, ctx.mean, ctx.rstd, sw, sb)
      else
        gw, gb = C.nn_ln_wgrad(gp, ctx.x, ctx.mean, ctx.rstd)
      end
    end
    return unpack_present({ ctx.x, ctx.w, ctx.b, ctx.c },
      { needs[1] and gx or nil, ctx.w and gw or nil, ctx.b and gb or nil, ctx.c and gp or nil })
  end,
  jvp = function(ctx, ...)
    local t = { ... } -- positional: one tangent (or nil) per argument
    if not t[2] and not t[3] and (t[1] or t[4]) then
      -- constant w, b (the usual case): one fused kernel
      return C.nn_ln_jvp(t[1] and packed(t[1]), t[4] and packed(t[4]), ctx.x, ctx.mean, ctx.rstd,
        ctx.w, ctx.b, ctx.c, ctx.act)
    end
    local rows = ctx.x:shape()[1]
    local mean, rstd = C.reshape(ctx.mean, { rows, 1 }), C.reshape(ctx.rstd, { rows, 1 })
    local xh = C.binary("mul", C.binary("sub", ctx.x, mean), rstd)
    local tpre
    if t[1] then
      local txh = C.nn_ln_bwd(packed(t[1]), ctx.x, ctx.mean, ctx.rstd, nil, nil, nil, nil)
      tpre = ctx.w and C.binary("mul", txh, ctx.w) or txh
    end
    if t[2] then tpre = add_opt(tpre, C.binary("mul", xh, t[2])) end
    if t[3] then tpre = add_opt(tpre, C.contiguous(C.expand(t[3], ctx.x:shape()))) end
    if t[4] then tpre = add_opt(tpre, t[4]) end
    if not tpre then return C.full(ctx.x:shape(), 0, C.dtype(ctx.x)) end
    if not ctx.act then return tpre end
    local pre = ctx.w and C.binary("mul", xh, ctx.w) or xh
    if ctx.b then pre = C.binary("add", pre, ctx.b) end
    if ctx.c then pre = C.binary("add", pre, ctx.c) end
    return C.nn_act_grad(packed(tpre), packed(pre), ctx.act)
  end,
})

-- x {rows, cols}; w, b {cols} | nil; c {rows, cols} | nil; act name | nil
function Fz.layer_norm(x, w, b, c, eps, act)
  act = check_act(act, "layer_norm")
  return A.apply(ln, x, w, b, c, eps or 1e-5, act)
end

return Fz
