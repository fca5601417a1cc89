/* Binding of the optim kernels: argument checks, then one launcher call.
   All update their first argument in place and return it. */
#include "../ops_optim.h"
#include "lmf.h"

static double field(lua_State *L, int t, const char *k, double dflt) {
  lua_getfield(L, t, k);
  double v = luaL_optnumber(L, -1, dflt);
  lua_pop(L, 1);
  return v;
}

/* optional squared norm at idx (nil for no clipping) */
static const mf_tensor *opt_ss(lua_State *L, int idx, const char *fn) {
  return lua_isnoneornil(L, idx) ? NULL : lmf_check(L, idx, fn);
}

/* adamw_(p, g, m, v, {lr, beta1, beta2, eps, weight_decay, bc1, bc2}, ss|nil, max_norm) */
static int l_adamw(lua_State *L) {
  mf_tensor *p = lmf_check(L, 1, "adamw"), *g = lmf_check(L, 2, "adamw");
  mf_tensor *m = lmf_check(L, 3, "adamw"), *v = lmf_check(L, 4, "adamw");
  luaL_checktype(L, 5, LUA_TTABLE);
  mf_adamw_hp hp = {field(L, 5, "lr", 1e-3), field(L, 5, "beta1", 0.9), field(L, 5, "beta2", 0.999),
                    field(L, 5, "eps", 1e-8), field(L, 5, "weight_decay", 0), field(L, 5, "bc1", 1),
                    field(L, 5, "bc2", 1)};
  if (!(hp.bc1 > 0 && hp.bc2 > 0))
    return luaL_error(L, "moonflow.adamw: bias corrections %g and %g must be positive", hp.bc1, hp.bc2);
  const mf_tensor *ss = opt_ss(L, 6, "adamw");
  if (mf_adamw(p, g, m, v, &hp, ss, luaL_optnumber(L, 7, 0))) return lmf_fail(L, "adamw");
  lua_settop(L, 1);
  return 1;
}

/* sgd_(p, g, buf|nil, {lr, momentum, dampening, weight_decay, nesterov, first}, ss|nil, max_norm) */
static int l_sgd(lua_State *L) {
  mf_tensor *p = lmf_check(L, 1, "sgd"), *g = lmf_check(L, 2, "sgd");
  mf_tensor *buf = lua_isnoneornil(L, 3) ? NULL : lmf_check(L, 3, "sgd");
  luaL_checktype(L, 4, LUA_TTABLE);
  mf_sgd_hp hp = {field(L, 4, "lr", 1e-3), field(L, 4, "momentum", 0), field(L, 4, "dampening", 0),
                  field(L, 4, "weight_decay", 0), 0, 0};
  lua_getfield(L, 4, "nesterov");
  hp.nesterov = lua_toboolean(L, -1);
  lua_getfield(L, 4, "first");
  hp.first = lua_toboolean(L, -1);
  lua_pop(L, 2);
  const mf_tensor *ss = opt_ss(L, 5, "sgd");
  if (mf_sgd(p, g, buf, &hp, ss, luaL_optnumber(L, 6, 0))) return lmf_fail(L, "sgd");
  lua_settop(L, 1);
  return 1;
}

/* ema_(shadow, p, decay) */
static int l_ema(lua_State *L) {
  mf_tensor *s = lmf_check(L, 1, "ema"), *p = lmf_check(L, 2, "ema");
  double d = luaL_checknumber(L, 3);
  if (!(d >= 0 && d <= 1)) return luaL_error(L, "moonflow.ema: decay %g is outside [0, 1]", d);
  if (mf_ema(s, p, d)) return lmf_fail(L, "ema");
  lua_settop(L, 1);
  return 1;
}

/* clip_scale_(g, ss, max_norm) */
static int l_clip(lua_State *L) {
  mf_tensor *g = lmf_check(L, 1, "clip_grad_norm"), *ss = lmf_check(L, 2, "clip_grad_norm");
  double mx = luaL_checknumber(L, 3);
  if (!(mx > 0)) return luaL_error(L, "moonflow.clip_grad_norm: max_norm %g must be positive", mx);
  if (mf_clip_scale(g, ss, mx)) return lmf_fail(L, "clip_grad_norm");
  lua_settop(L, 1);
  return 1;
}

void lmf_open_nn(lua_State *L); /* l_nn.c: fused layer kernels */

void lmf_open_optim(lua_State *L) {
  lmf_open_nn(L);
  static const luaL_Reg fns[] = {
      {"adamw_", l_adamw}, {"sgd_", l_sgd}, {"ema_", l_ema}, {"clip_scale_", l_clip}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
