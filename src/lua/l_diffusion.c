/* Binding of the diffusion kernels (src/ops_diffusion.c). These are the raw
   launchers; lua/moonflow/diffusion.lua wraps them as differentiable ops. */
#include "../ops_diffusion.h"
#include "lmf.h"

static mf_tensor *opt_tensor(lua_State *L, int idx, const char *fn) {
  return lua_isnoneornil(L, idx) ? NULL : lmf_check(L, idx, fn);
}

/* the kernels' switches by name (src/kernel_names.h) */
static const char *const nt_kinds[] = {MF_NT_KINDS(LMF_NAME, _, _) NULL};
static const char *const rowred_modes[] = {MF_ROWRED_MODES(LMF_NAME, _, _) NULL};
static const char *const coefs[] = {MF_COEFS(LMF_NAME, _, _) NULL};
static const char *const rf_ops[] = {MF_RF_OPS(LMF_NAME, _, _) NULL};

/* noise_target(x, y, p, kind ("sit", "edm", "general"), tr, both) */
static int l_noise_target(lua_State *L) {
  const char *fn = "noise_target";
  mf_tensor *x = lmf_check(L, 1, fn), *y = lmf_check(L, 2, fn), *p = lmf_check(L, 3, fn), out;
  enum mf_nt_kind kind = (enum mf_nt_kind)luaL_checkoption(L, 4, NULL, nt_kinds);
  if (mf_noise_target(&out, x, y, p, kind, lua_toboolean(L, 5), lua_toboolean(L, 6))) return lmf_fail(L, fn);
  lmf_push(L, &out);
  return 1;
}

/* rowred(a, b|nil, w|nil, s, mode ("sqerr", "dot", "square")) */
static int l_rowred(lua_State *L) {
  const char *fn = "rowred";
  mf_tensor *a = lmf_check(L, 1, fn), *b = opt_tensor(L, 2, fn), *w = opt_tensor(L, 3, fn), out;
  double s = luaL_checknumber(L, 4);
  enum mf_rowred_mode mode = (enum mf_rowred_mode)luaL_checkoption(L, 5, NULL, rowred_modes);
  if (mf_rowred(&out, a, b, w, s, mode)) return lmf_fail(L, fn);
  lmf_push(L, &out);
  return 1;
}

/* rowred_grad(a, b|nil, w|nil, g, s, mode) */
static int l_rowred_grad(lua_State *L) {
  const char *fn = "rowred_grad";
  mf_tensor *a = lmf_check(L, 1, fn), *b = opt_tensor(L, 2, fn), *w = opt_tensor(L, 3, fn);
  mf_tensor *g = lmf_check(L, 4, fn), out;
  double s = luaL_checknumber(L, 5);
  enum mf_rowred_mode mode = (enum mf_rowred_mode)luaL_checkoption(L, 6, NULL, rowred_modes);
  if (mf_rowred_grad(&out, a, b, w, g, s, mode)) return lmf_fail(L, fn);
  lmf_push(L, &out);
  return 1;
}

/* diff_coef(t, which (a name of MF_COEFS), param, deriv) */
static int l_diff_coef(lua_State *L) {
  const char *fn = "diff_coef";
  mf_tensor *t = lmf_check(L, 1, fn), out;
  enum mf_coef which = (enum mf_coef)luaL_checkoption(L, 2, NULL, coefs);
  if (mf_diff_coef(&out, t, which, luaL_optnumber(L, 3, 0), lua_toboolean(L, 4))) return lmf_fail(L, fn);
  lmf_push(L, &out);
  return 1;
}

static int l_ndtri(lua_State *L) {
  mf_tensor *u = lmf_check(L, 1, "ndtri"), out;
  if (mf_ndtri(&out, u)) return lmf_fail(L, "ndtri");
  lmf_push(L, &out);
  return 1;
}

/* rf_conv(a, b, t, op (a name of MF_RF_OPS), wa, wb) */
static int l_rf_conv(lua_State *L) {
  const char *fn = "rf_conv";
  mf_tensor *a = lmf_check(L, 1, fn), *b = lmf_check(L, 2, fn), *t = lmf_check(L, 3, fn), out;
  enum mf_rf_op op = (enum mf_rf_op)luaL_checkoption(L, 4, NULL, rf_ops);
  if (mf_rf_conv(&out, a, b, t, op, lua_toboolean(L, 5), lua_toboolean(L, 6))) return lmf_fail(L, fn);
  lmf_push(L, &out);
  return 1;
}

/* rf_conv_ff(ahi, alo|nil, bhi, blo|nil, thi, tlo|nil, op, wa, wb, want_lo) -> hi[, lo] */
static int l_rf_conv_ff(lua_State *L) {
  const char *fn = "rf_conv_ff";
  mf_tensor *ah = lmf_check(L, 1, fn), *al = opt_tensor(L, 2, fn), *bh = lmf_check(L, 3, fn);
  mf_tensor *bl = opt_tensor(L, 4, fn), *th = lmf_check(L, 5, fn), *tl = opt_tensor(L, 6, fn);
  enum mf_rf_op op = (enum mf_rf_op)luaL_checkoption(L, 7, NULL, rf_ops);
  int want_lo = lua_toboolean(L, 10);
  mf_tensor hi, lo;
  if (mf_rf_conv_ff(&hi, want_lo ? &lo : NULL, ah, al, bh, bl, th, tl, op, lua_toboolean(L, 8),
                    lua_toboolean(L, 9)))
    return lmf_fail(L, fn);
  lmf_push(L, &hi);
  if (!want_lo) return 1;
  lmf_push(L, &lo);
  return 2;
}

static int l_rf_split(lua_State *L) {
  mf_tensor *v = lmf_check(L, 1, "rf_split"), hi, lo;
  if (mf_rf_split(&hi, &lo, v)) return lmf_fail(L, "rf_split");
  lmf_push(L, &hi);
  lmf_push(L, &lo);
  return 2;
}

/* diffusion_path("auto" | "gpu" | "cpu" | nil) -> previous: the kernels' loop
   shapes (tests run both on any device) */
static int l_diffusion_path(lua_State *L) {
  static const char *const names[] = {"auto", "gpu", "cpu", NULL};
  int mode = lua_isnoneornil(L, 1) ? -1 : luaL_checkoption(L, 1, NULL, names);
  lua_pushstring(L, names[mf_diffusion_path(mode)]);
  return 1;
}

void lmf_open_diffusion(lua_State *L) {
  static const luaL_Reg fns[] = {{"noise_target", l_noise_target}, {"rowred", l_rowred},
                                 {"rowred_grad", l_rowred_grad},   {"diff_coef", l_diff_coef},
                                 {"ndtri", l_ndtri},               {"rf_conv", l_rf_conv},
                                 {"rf_conv_ff", l_rf_conv_ff},     {"rf_split", l_rf_split},
                                 {"diffusion_path", l_diffusion_path},
                                 {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
  lmf_set_names(L, coefs, "diff_coefs");
  lmf_set_names(L, rf_ops, "rf_ops");
}
