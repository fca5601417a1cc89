/* Binding of the fused layer kernels (cl/nn.cl). Opened from l_optim.c. */
#include <string.h>

#include "../attention_host.h"
#include "../ops.h"
#include "../ops_nn.h"
#include "lmf.h"

static const char *const acts[] = {MF_ACTIVATIONS(LMF_NAME, _, _) NULL};

static enum mf_activation act_at(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return MF_ACTIVATION_none;
  return (enum mf_activation)luaL_checkoption(L, idx, NULL, acts);
}

static mf_tensor *opt_t(lua_State *L, int idx, const char *fn) {
  return lua_isnoneornil(L, idx) ? NULL : lmf_check(L, idx, fn);
}

/* nn_bias_act(z, b|nil, r|nil, act) -> y (z holds the pre-activation after) */
static int l_bias_act(lua_State *L) {
  mf_tensor *z = lmf_check(L, 1, "linear"), y;
  if (mf_nn_bias_act(&y, z, opt_t(L, 2, "linear"), opt_t(L, 3, "linear"), act_at(L, 4))) return lmf_fail(L, "linear");
  lmf_push(L, &y);
  return 1;
}

/* nn_act_grad(g, pre, act) -> g act'(pre) */
static int l_act_grad(lua_State *L) {
  mf_tensor *g = lmf_check(L, 1, "linear"), *pre = lmf_check(L, 2, "linear"), out;
  if (mf_nn_act_grad(&out, g, pre, act_at(L, 3))) return lmf_fail(L, "linear");
  lmf_push(L, &out);
  return 1;
}

/* nn_colsum(a) -> {cols}; nn_colsum(a, out) adds into out and returns it */
static int l_colsum(lua_State *L) {
  mf_tensor *a = lmf_check(L, 1, "colsum");
  if (!lua_isnoneornil(L, 2)) {
    mf_tensor *out = lmf_check(L, 2, "colsum");
    if (mf_nn_colsum(out, a, 1)) return lmf_fail(L, "colsum");
    lua_settop(L, 2);
    return 1;
  }
  mf_tensor out;
  if (mf_nn_colsum(&out, a, 0)) return lmf_fail(L, "colsum");
  lmf_push(L, &out);
  return 1;
}

/* nn_ln_fwd(x, w|nil, b|nil, c|nil, eps, act) -> y, mean, rstd */
static int l_ln_fwd(lua_State *L) {
  mf_tensor *x = lmf_check(L, 1, "layer_norm"), y, m, r;
  double eps = luaL_checknumber(L, 5);
  if (!(eps >= 0)) return luaL_error(L, "moonflow.layer_norm: eps %g is negative", eps);
  if (mf_nn_ln_fwd(&y, &m, &r, x, opt_t(L, 2, "layer_norm"), opt_t(L, 3, "layer_norm"), opt_t(L, 4, "layer_norm"),
                   eps, act_at(L, 6)))
    return lmf_fail(L, "layer_norm");
  lmf_push(L, &y);
  lmf_push(L, &m);
  lmf_push(L, &r);
  return 3;
}

/* nn_ln_bwd(g, x, mean, rstd, w|nil, b|nil, c|nil, act) -> gx, gpre */
static int l_ln_bwd(lua_State *L) {
  mf_tensor *g = lmf_check(L, 1, "layer_norm"), *x = lmf_check(L, 2, "layer_norm");
  mf_tensor *m = lmf_check(L, 3, "layer_norm"), *r = lmf_check(L, 4, "layer_norm"), gx, gp;
  if (mf_nn_ln_bwd(&gx, &gp, g, x, m, r, opt_t(L, 5, "layer_norm"), opt_t(L, 6, "layer_norm"),
                   opt_t(L, 7, "layer_norm"), act_at(L, 8)))
    return lmf_fail(L, "layer_norm");
  lmf_push(L, &gx);
  lmf_push(L, &gp);
  return 2;
}

/* nn_ln_wgrad(gpre, x, mean, rstd) -> gw, gb;
   nn_ln_wgrad(gpre, x, mean, rstd, gw, gb) adds into gw and gb */
static int l_ln_wgrad(lua_State *L) {
  mf_tensor *gp = lmf_check(L, 1, "layer_norm"), *x = lmf_check(L, 2, "layer_norm");
  mf_tensor *m = lmf_check(L, 3, "layer_norm"), *r = lmf_check(L, 4, "layer_norm"), gw, gb;
  if (!lua_isnoneornil(L, 5)) {
    mf_tensor *aw = lmf_check(L, 5, "layer_norm"), *ab = lmf_check(L, 6, "layer_norm");
    if (mf_nn_ln_wgrad_acc(aw, ab, gp, x, m, r)) return lmf_fail(L, "layer_norm");
    return 0;
  }
  if (mf_nn_ln_wgrad(&gw, &gb, gp, x, m, r)) return lmf_fail(L, "layer_norm");
  lmf_push(L, &gw);
  lmf_push(L, &gb);
  return 2;
}

/* nn_ln_jvp(tx|nil, tc|nil, x, mean, rstd, w|nil, b|nil, c|nil, act) -> ty */
static int l_ln_jvp(lua_State *L) {
  mf_tensor *tx = opt_t(L, 1, "layer_norm"), *tc = opt_t(L, 2, "layer_norm");
  mf_tensor *x = lmf_check(L, 3, "layer_norm"), *m = lmf_check(L, 4, "layer_norm");
  mf_tensor *r = lmf_check(L, 5, "layer_norm"), ty;
  if (mf_nn_ln_jvp(&ty, tx, tc, x, m, r, opt_t(L, 6, "layer_norm"), opt_t(L, 7, "layer_norm"),
                   opt_t(L, 8, "layer_norm"), act_at(L, 9)))
    return lmf_fail(L, "layer_norm");
  lmf_push(L, &ty);
  return 1;
}

static const char *const sm_modes[] = {MF_SOFTMAX_MODES(LMF_NAME, _, _) NULL};

/* nn_softmax(a, b|nil, mode) -> out (modes: MF_SOFTMAX_MODES) */
static int l_softmax(lua_State *L) {
  mf_tensor *a = lmf_check(L, 1, "softmax"), out;
  mf_tensor *b = opt_t(L, 2, "softmax");
  enum mf_softmax_mode mode = (enum mf_softmax_mode)luaL_checkoption(L, 3, NULL, sm_modes);
  if (mf_nn_softmax(&out, a, b, mode)) return lmf_fail(L, "softmax");
  lmf_push(L, &out);
  return 1;
}

/* nn_lnm_fwd(x, shift, scale, N, eps) -> y, mean, rstd */
static int l_lnm_fwd(lua_State *L) {
  const char *fn = "layer_norm_modulate";
  mf_tensor *x = lmf_check(L, 1, fn), *sh = lmf_check(L, 2, fn), *sc = lmf_check(L, 3, fn), y, m, r;
  int N = (int)luaL_checkinteger(L, 4);
  double eps = luaL_checknumber(L, 5);
  if (!(eps >= 0)) return luaL_error(L, "moonflow.layer_norm_modulate: eps %g is negative", eps);
  if (mf_nn_lnm_fwd(&y, &m, &r, x, sh, sc, N, eps)) return lmf_fail(L, fn);
  lmf_push(L, &y);
  lmf_push(L, &m);
  lmf_push(L, &r);
  return 3;
}

/* nn_lnm_bwd(g, x, mean, rstd, scale, N) -> gx, gshift, gscale */
static int l_lnm_bwd(lua_State *L) {
  const char *fn = "layer_norm_modulate";
  mf_tensor *g = lmf_check(L, 1, fn), *x = lmf_check(L, 2, fn), *m = lmf_check(L, 3, fn);
  mf_tensor *r = lmf_check(L, 4, fn), *sc = lmf_check(L, 5, fn), gx, gsh, gsc;
  if (mf_nn_lnm_bwd(&gx, &gsh, &gsc, g, x, m, r, sc, (int)luaL_checkinteger(L, 6))) return lmf_fail(L, fn);
  lmf_push(L, &gx);
  lmf_push(L, &gsh);
  lmf_push(L, &gsc);
  return 3;
}

/* nn_lnm_jvp(tx|nil, tshift|nil, tscale|nil, x, mean, rstd, scale, N) -> ty */
static int l_lnm_jvp(lua_State *L) {
  const char *fn = "layer_norm_modulate";
  mf_tensor *tx = opt_t(L, 1, fn), *tsh = opt_t(L, 2, fn), *tsc = opt_t(L, 3, fn);
  mf_tensor *x = lmf_check(L, 4, fn), *m = lmf_check(L, 5, fn), *r = lmf_check(L, 6, fn), *sc = lmf_check(L, 7, fn);
  mf_tensor ty;
  if (mf_nn_lnm_jvp(&ty, tx, tsh, tsc, x, m, r, sc, (int)luaL_checkinteger(L, 8))) return lmf_fail(L, fn);
  lmf_push(L, &ty);
  return 1;
}

/* nn_attn_tiled(d, e) -> whether the flash-style kernels serve head sizes
   d, e (path "wg", or "auto" on a GPU) */
static int l_attn_tiled(lua_State *L) {
  lua_pushboolean(L, mf_attn_tiled(luaL_checkinteger(L, 1), luaL_checkinteger(L, 2)));
  return 1;
}

/* nn_attn_fwd(q, k, v, scale) -> o, lse (each {B h, rows, cols}, packed) */
static int l_attn_fwd(lua_State *L) {
  const char *fn = "attention";
  mf_tensor *q = lmf_check(L, 1, fn), *k = lmf_check(L, 2, fn), *v = lmf_check(L, 3, fn), o, lse;
  if (mf_attn_fwd(&o, &lse, q, k, v, luaL_checknumber(L, 4))) return lmf_fail(L, fn);
  lmf_push(L, &o);
  lmf_push(L, &lse);
  return 2;
}

/* nn_attn_bwd(g, q, k, v, o, lse, scale) -> dq, dk, dv */
static int l_attn_bwd(lua_State *L) {
  const char *fn = "attention";
  mf_tensor *g = lmf_check(L, 1, fn), *q = lmf_check(L, 2, fn), *k = lmf_check(L, 3, fn);
  mf_tensor *v = lmf_check(L, 4, fn), *o = lmf_check(L, 5, fn), *lse = lmf_check(L, 6, fn), dq, dk, dv;
  if (mf_attn_bwd(&dq, &dk, &dv, g, q, k, v, o, lse, luaL_checknumber(L, 7))) return lmf_fail(L, fn);
  lmf_push(L, &dq);
  lmf_push(L, &dk);
  lmf_push(L, &dv);
  return 3;
}

/* nn_attn_jvp(tq|nil, tk|nil, tv|nil, q, k, v, o, lse, scale) -> tangent of o */
static int l_attn_jvp(lua_State *L) {
  const char *fn = "attention";
  mf_tensor *tq = opt_t(L, 1, fn), *tk = opt_t(L, 2, fn), *tv = opt_t(L, 3, fn);
  mf_tensor *q = lmf_check(L, 4, fn), *k = lmf_check(L, 5, fn), *v = lmf_check(L, 6, fn);
  mf_tensor *o = lmf_check(L, 7, fn), *lse = lmf_check(L, 8, fn), out;
  if (mf_attn_jvp(&out, tq, tk, tv, q, k, v, o, lse, luaL_checknumber(L, 9))) return lmf_fail(L, fn);
  lmf_push(L, &out);
  return 1;
}

/* nn_attn_host() -> whether the host attention serves (a CPU device with
   OpenBLAS and native kernels, path "auto") */
static int l_attn_host(lua_State *L) {
  lua_pushboolean(L, mf_attn_host());
  return 1;
}

/* nn_attn_host_block([bytes]) -> previous bytes of scores per block of query rows */
static int l_attn_host_block(lua_State *L) {
  lua_Integer b = luaL_optinteger(L, 1, 0);
  if (b < 0) return luaL_error(L, "moonflow.attention: block of %I bytes, expected a positive size", b);
  lua_pushinteger(L, (lua_Integer)mf_attn_host_block((size_t)b));
  return 1;
}

/* nn_attn_host_fwd(q, k, v, scale, keep) -> o, lse, P (kept) or nil */
static int l_attn_host_fwd(lua_State *L) {
  const char *fn = "attention";
  mf_tensor *q = lmf_check(L, 1, fn), *k = lmf_check(L, 2, fn), *v = lmf_check(L, 3, fn), o, lse, p;
  int keep = lua_toboolean(L, 5);
  if (mf_attn_host_fwd(&o, &lse, keep ? &p : NULL, q, k, v, luaL_checknumber(L, 4))) return lmf_fail(L, fn);
  lmf_push(L, &o);
  lmf_push(L, &lse);
  if (keep) lmf_push(L, &p);
  else lua_pushnil(L);
  return 3;
}

/* nn_attn_host_bwd(g, q, k, v, o, lse, P|nil, scale) -> dq, dk, dv */
static int l_attn_host_bwd(lua_State *L) {
  const char *fn = "attention";
  mf_tensor *g = lmf_check(L, 1, fn), *q = lmf_check(L, 2, fn), *k = lmf_check(L, 3, fn);
  mf_tensor *v = lmf_check(L, 4, fn), *o = lmf_check(L, 5, fn), *lse = lmf_check(L, 6, fn), dq, dk, dv;
  mf_tensor *p = opt_t(L, 7, fn);
  if (mf_attn_host_bwd(&dq, &dk, &dv, g, q, k, v, o, lse, p, luaL_checknumber(L, 8))) return lmf_fail(L, fn);
  lmf_push(L, &dq);
  lmf_push(L, &dk);
  lmf_push(L, &dv);
  return 3;
}

/* nn_path([name]) -> previous name: "auto", "run" (CPU shape), "wg" (GPU shape) */
static int l_nn_path(lua_State *L) {
  static const char *const names[] = {"auto", "run", "wg", NULL};
  int prev = mf_nn_get_path();
  lua_pushstring(L, names[prev + 1]);
  if (!lua_isnoneornil(L, 1)) mf_nn_set_path(luaL_checkoption(L, 1, NULL, names) - 1);
  return 1;
}

void lmf_open_nn(lua_State *L) {
  static const luaL_Reg fns[] = {{"nn_bias_act", l_bias_act}, {"nn_act_grad", l_act_grad},
                                 {"nn_colsum", l_colsum},     {"nn_ln_fwd", l_ln_fwd},
                                 {"nn_ln_bwd", l_ln_bwd},     {"nn_ln_wgrad", l_ln_wgrad},
                                 {"nn_ln_jvp", l_ln_jvp},     {"nn_softmax", l_softmax},
                                 {"nn_lnm_fwd", l_lnm_fwd},   {"nn_lnm_bwd", l_lnm_bwd},
                                 {"nn_lnm_jvp", l_lnm_jvp},
                                 {"nn_path", l_nn_path},
                                 {"nn_attn_tiled", l_attn_tiled}, {"nn_attn_fwd", l_attn_fwd},
                                 {"nn_attn_bwd", l_attn_bwd}, {"nn_attn_jvp", l_attn_jvp},
                                 {"nn_attn_host", l_attn_host}, {"nn_attn_host_fwd", l_attn_host_fwd},
                                 {"nn_attn_host_bwd", l_attn_host_bwd}, {"nn_attn_host_block", l_attn_host_block},
                                 {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
  lmf_set_names(L, acts, "nn_activations");
}
