-- The fused diffusion kernels (cl/diffusion.cl) as differentiable ops:
-- noising and target in one kernel, per-sample weighted squared error in one
-- reduction, the preconditioning coefficients, the RF conversions (float64).
-- Each op states its forward, vjp and jvp together, as in moonflow.ops.
local core = require "moonflow.core"
local A = require "moonflow.autograd"
local O = require "moonflow.ops"

local C = core
local is_tensor = A.is_tensor
local D = {}

local function needs_grad(t) return is_tensor(t) and (t._node ~= nil or t._leaf == true) end

-- {B} -> {B, 1, ..., 1} with nd dims in all, for broadcasting over a row
local function col(v, nd)
  local s = { C.numel(v) }
  for i = 2, nd do s[i] = 1 end
  return C.reshape(v, s)
end
D.col = col

-- A per-row parameter for data x: a number (one value for every row) or a
-- tensor of B or 1 values; returned as a flat tensor in x's dtype
-- (differentiable when it is a tensor).
function D.row_param(p, x, fn)
  local dt = C.dtype(x)
  if type(p) == "number" then return C.full({ 1 }, p, dt) end
  if not is_tensor(p) then
    error(("moonflow.%s: t must be a number or a tensor, got %s"):format(fn or "diffusion", type(p)), 3)
  end
  local B, n = (x:shape())[1] or 1, C.numel(p)
  if n ~= B and n ~= 1 then
    error(("moonflow.%s: t has %d values for a batch of %d rows"):format(fn or "diffusion", n, B), 3)
  end
  p = O.to(p, dt)
  if C.dim(p) ~= 1 then p = O.reshape(p, { n }) end
  return p
end

-- first or second half of a stacked {2, ...} tensor, as `shape`
local function half(g, i, shape) return C.reshape(C.narrow(g, 1, i, 1), shape) end

-- rowwise sum of u v as {B}; the per-row gradient of a broadcast parameter
-- is summed back to one value
local function rowdot(u, v, p)
  local r = C.rowred(u, v, nil, 1, "dot")
  if C.numel(p) == 1 and C.numel(r) ~= 1 then r = C.reshape(C.reduce("sum", r, nil, false), { 1 }) end
  return r
end

------------------------------------------------------------ noising + target
-- Y[1] = a_r x + b_r n,  Y[2] = c_r x + d_r n, in one kernel (cl/diffusion.cl)
--   kind "sit": a = 1 - t, b = t, c = -1, d = 1; p = t
--   kind "edm": a = 1, b = sigma, c = 1, d = 0;  p = sigma
--   kind "general": p = {B, 4} rows (a, b, c, d)
-- vjp: (gx, gn) = (a g1 + c g2, b g1 + d g2), the same kernel transposed;
-- d/dt (sit): dY[1] = n - x, dY[2] = 0; d/dsigma (edm): dY[1] = n.
local nt = O.def("noise_target", {
  forward = function(ctx, x, n, p, kind)
    ctx.x, ctx.n, ctx.p, ctx.kind, ctx.shape = x, n, p, kind, x:shape()
    return C.noise_target(x, n, p, kind, false, true)
  end,
  vjp = function(ctx, g)
    local s = ctx.shape
    local g1, g2 = half(g, 1, s), half(g, 2, s)
    local gg = C.noise_target(g1, g2, ctx.p, ctx.kind, true, true)
    local gp
    if needs_grad(ctx.p) then
      local x, n, p = ctx.x, ctx.n, ctx.p
      if ctx.kind == "sit" then gp = rowdot(g1, C.binary("sub", n, x), p)
      elseif ctx.kind == "edm" then gp = rowdot(g1, n, p)
      else
        local parts = { rowdot(g1, x, p), rowdot(g1, n, p), rowdot(g2, x, p), rowdot(g2, n, p) }
        for i = 1, 4 do parts[i] = C.reshape(parts[i], { C.numel(parts[i]), 1 }) end
        gp = C.reshape(C.cat(parts, 2), p:shape())
      end
    end
    return half(gg, 1, s), half(gg, 2, s), gp
  end,
  jvp = function(ctx, tx, tn, tp)
    local x, n, p, kind = ctx.x, ctx.n, ctx.p, ctx.kind
    local z = C.full(ctx.shape, 0, C.dtype(x))
    local out = C.noise_target(tx or z, tn or z, p, kind, false, true)
    if tp then
      local nd = #ctx.shape
      if kind == "general" then
        -- dY[1] = da x + db n, dY[2] = dc x + dd n: the kernel on the tangent rows
        out = C.binary("add", out, C.noise_target(x, n, tp, "general", false, true))
      else
        local dx = kind == "sit" and C.binary("sub", n, x) or n
        local d1 = C.binary("mul", col(tp, nd), dx)
        C.binary_("add", C.narrow(out, 1, 1, 1), C.reshape(d1, { 1, table.unpack(ctx.shape) }))
      end
    end
    return out
  end,
})

local function stacked(x, n, p, kind)
  local y = A.apply(nt, x, n, p, kind)
  local s = x:shape()
  local first = O.reshape(O.narrow(y, 1, 1, 1), s)
  local second = O.reshape(O.narrow(y, 1, 2, 1), s)
  return first, second
end

local function check_pair(fn, x, n)
  if not (is_tensor(x) and is_tensor(n)) then
    error(("moonflow.%s: x and n must be tensors, got %s and %s"):format(fn, type(x), type(n)), 3)
  end
  local a, b = table.concat(x:shape(), ", "), table.concat(n:shape(), ", ")
  if a ~= b then error(("moonflow.%s: x {%s} and n {%s} differ in shape"):format(fn, a, b), 3) end
end

-- SiT / RF: x_t = (1 - t) x + t n, target = n - x (one kernel)
function D.sit_noise_target(x, n, t)
  check_pair("sit_noise_target", x, n)
  return stacked(x, n, D.row_param(t, x, "sit_noise_target"), "sit")
end

-- EDM: x_t = x + sigma n, target = x (one kernel)
function D.edm_noise_target(x, n, sigma)
  check_pair("edm_noise_target", x, n)
  return stacked(x, n, D.row_param(sigma, x, "edm_noise_target"), "edm")
end

-- General: coefs {B, 4} (or {4}) rows (a, b, c, d): a x + b n, c x + d n
function D.noise_target(x, n, coefs)
  check_pair("noise_target", x, n)
  if not is_tensor(coefs) then error("moonflow.noise_target: coefs must be a {B, 4} tensor", 2) end
  return stacked(x, n, O.to(coefs, C.dtype(x)), "general")
end

--------------------------------------------------- per-sample squared error
-- L_r = s w_r sum_j (a_rj - b_rj)^2 in one reduction; s = 1/cols for a mean.
-- dL/da = 2 s w (a - b) = -dL/db;  dL/dw_r = s sum_j (a - b)^2.
local wsse = O.def("wsse", {
  forward = function(ctx, a, b, w, s)
    ctx.a, ctx.b, ctx.w, ctx.s = a, b, w, s
    return C.rowred(a, b, w, s, "sqerr")
  end,
  vjp = function(ctx, g)
    local a, b, w, s = ctx.a, ctx.b, ctx.w, ctx.s
    local ga = C.rowred_grad(a, b, w, g, s, "sqerr")
    local gw
    if needs_grad(w) then
      gw = C.binary("mul", g, C.rowred(a, b, nil, s, "sqerr"))
      gw = A.sum_to(gw, w:shape())
    end
    if w then return ga, C.unary("neg", ga), gw end
    return ga, C.unary("neg", ga)
  end,
  jvp = function(ctx, ta, tb, tw)
    local a, b, w, s = ctx.a, ctx.b, ctx.w, ctx.s
    local out
    if ta or tb then
      local d = ta and tb and C.binary("sub", ta, tb) or ta or C.unary("neg", tb)
      out = C.rowred(C.binary("sub", a, b), d, w, 2 * s, "dot")
    end
    if tw then
      local e = C.binary("mul", tw, C.rowred(a, b, nil, s, "sqerr"))
      out = out and C.binary("add", out, e) or C.contiguous(C.expand(e, { (a:shape())[1] or 1 }))
    end
    return out or C.full({ (a:shape())[1] or 1 }, 0, C.dtype(a))
  end,
})

-- Per-sample (weighted) squared error {B}: opts.reduce = "mean" (over all
-- dims but the first, the default) or "sum"; w a {B} tensor, a number or nil.
function D.wsse(a, b, w, opts)
  if not (is_tensor(a) and is_tensor(b)) then
    error(("moonflow.wsse: a and b must be tensors, got %s and %s"):format(type(a), type(b)), 2)
  end
  local reduce = opts and opts.reduce or "mean"
  if reduce ~= "mean" and reduce ~= "sum" then
    error(("moonflow.wsse: reduce must be \"mean\" or \"sum\", got %s"):format(tostring(reduce)), 2)
  end
  local B = (a:shape())[1] or 1
  local s = reduce == "mean" and B > 0 and 1 / (C.numel(a) // math.max(B, 1)) or 1
  if b:dtype() ~= a:dtype() then b = O.to(b, a:dtype()) end
  if type(w) == "number" then s, w = s * w, nil end
  if w ~= nil then w = D.row_param(w, a, "wsse") end
  return A.apply(wsse, a, b, w, s)
end

-------------------------------------------------------------- coefficients
-- Elementwise functions of t with their derivatives from the same kernel;
-- param is x_sigma (EDM) or the shift (t_shift). Formulas in cl/diffusion.cl.
-- the names are the kernel's (MF_COEFS in src/kernel_names.h), as a set
D.COEF = {}
for _, name in ipairs(C.diff_coefs) do D.COEF[name] = true end
local coef = O.def("coef", {
  forward = function(ctx, t, which, param)
    ctx.t, ctx.which, ctx.param = t, which, param
    return C.diff_coef(t, which, param, false)
  end,
  vjp = function(ctx, g) return C.binary("mul", g, C.diff_coef(ctx.t, ctx.which, ctx.param, true)) end,
  jvp = function(ctx, tt) return C.binary("mul", tt, C.diff_coef(ctx.t, ctx.which, ctx.param, true)) end,
})

function D.coef(name, t, param)
  if not D.COEF[name] then error(("moonflow.coef: unknown coefficient %s"):format(tostring(name)), 2) end
  if not is_tensor(t) then error(("moonflow.coef: t must be a tensor, got %s"):format(type(t)), 2) end
  if C.dtype(t) == "i32" then t = O.to(t, "f32") end
  return A.apply(coef, t, name, param or 0)
end

-- z = Phi^-1(u), not differentiable (used for sampling)
function D.ndtri(u) return C.ndtri(u) end

---------------------------------------------------------- RF conversions
-- out = (A_t a + B_t b) / D_t computed in float64 (t an f64 tensor of B or
-- 1 values, a constant to autograd); linear in (a, b), so the vjp and the
-- jvp are the same kernel with one term switched off.
-- the conversions by name (MF_RF_OPS in src/kernel_names.h), as a set
D.RF = {}
for _, name in ipairs(C.rf_ops) do D.RF[name] = true end
local rf = O.def("rf_conv", {
  forward = function(ctx, a, b, t, op)
    ctx.t, ctx.op = t, op
    return C.rf_conv(a, b, t, op, true, true)
  end,
  vjp = function(ctx, g)
    return C.rf_conv(g, g, ctx.t, ctx.op, true, false), C.rf_conv(g, g, ctx.t, ctx.op, false, true)
  end,
  jvp = function(ctx, ta, tb)
    return C.rf_conv(ta or tb, tb or ta, ctx.t, ctx.op, ta ~= nil, tb ~= nil)
  end,
})
function D.rf_conv(name, a, b, t64)
  return A.apply(rf, a, b, t64, name)
end

return D
