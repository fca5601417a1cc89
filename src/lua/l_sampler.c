/* Binding of the fused sampler updates (src/ops_sampler.c). The Lua
   samplers (lua/moonflow/samplers/) call these once per update. */
#include <math.h>
#include <string.h>

#include "../ops_sampler.h"
#include "lmf.h"

/* A finite number at idx, or an error naming fn and what it is. */
static double finite_arg(lua_State *L, int idx, const char *fn, const char *what) {
  double v = luaL_checknumber(L, idx);
  if (!isfinite(v)) luaL_error(L, "moonflow.%s: %s is %f, not a finite number", fn, what, v);
  return v;
}

/* A tensor at idx, or NULL when it is nil. */
static mf_tensor *opt_tensor(lua_State *L, int idx, const char *fn) {
  return lua_isnoneornil(L, idx) ? NULL : lmf_check(L, idx, fn);
}

/* Philox seed and offset (integers, as a Generator holds them). */
static void philox(lua_State *L, int idx, const char *fn, uint64_t *seed, uint64_t *off) {
  *seed = (uint64_t)luaL_checkinteger(L, idx);
  lua_Integer o = luaL_checkinteger(L, idx + 1);
  if (o < 0) luaL_error(L, "moonflow.%s: negative generator offset %I", fn, o);
  *off = (uint64_t)o;
}

/* sampler_step(x, c, u|nil, h, s, aux|nil, ha) -> out[, aux]
   d = u ? u + s (c - u) : c; out = x + h d; aux "d" returns d, "x" returns x + ha d */
static int l_step(lua_State *L) {
  const char *fn = "sampler_step";
  mf_tensor *x = lmf_check(L, 1, fn), *c = lmf_check(L, 2, fn), *u = opt_tensor(L, 3, fn);
  double h = finite_arg(L, 4, fn, "the step h"), s = finite_arg(L, 5, fn, "the guidance scale");
  const char *mode = luaL_optstring(L, 6, NULL);
  if (mode && strcmp(mode, "d") && strcmp(mode, "x"))
    return luaL_error(L, "moonflow.%s: aux must be \"d\" or \"x\", got %s", fn, mode);
  double ha = mode && mode[0] == 'x' ? finite_arg(L, 7, fn, "the aux step") : 0;
  mf_tensor out, aux;
  if (mf_sampler_step(&out, mode ? &aux : NULL, mode && mode[0] == 'x', x, c, u, h, s, ha))
    return lmf_fail(L, fn);
  lmf_push(L, &out);
  if (!mode) return 1;
  lmf_push(L, &aux);
  return 2;
}

/* sampler_heun(x, d1, c, u|nil, h, s) -> x + h/2 (d1 + mix(c, u)) */
static int l_heun(lua_State *L) {
  const char *fn = "sampler_heun";
  mf_tensor *x = lmf_check(L, 1, fn), *d1 = lmf_check(L, 2, fn), *c = lmf_check(L, 3, fn);
  mf_tensor *u = opt_tensor(L, 4, fn);
  double h = finite_arg(L, 5, fn, "the step h"), s = finite_arg(L, 6, fn, "the guidance scale");
  mf_tensor out;
  if (mf_sampler_heun(&out, x, d1, c, u, h, s)) return lmf_fail(L, fn);
  lmf_push(L, &out);
  return 1;
}

/* sampler_em(x, vc, sc, vu|nil, su|nil, h, hw, s, nz, seed, offset) -> out, offset */
static int l_em(lua_State *L) {
  const char *fn = "sampler_em";
  mf_tensor *x = lmf_check(L, 1, fn), *vc = lmf_check(L, 2, fn), *sc = lmf_check(L, 3, fn);
  mf_tensor *vu = opt_tensor(L, 4, fn), *su = opt_tensor(L, 5, fn);
  double h = finite_arg(L, 6, fn, "the step h"), hw = finite_arg(L, 7, fn, "w(t)/2");
  double s = finite_arg(L, 8, fn, "the guidance scale"), nz = finite_arg(L, 9, fn, "the noise scale");
  if (nz < 0) return luaL_error(L, "moonflow.%s: the noise scale %f is negative", fn, nz);
  uint64_t seed, off;
  philox(L, 10, fn, &seed, &off);
  mf_tensor out;
  if (mf_sampler_em(&out, x, vc, sc, vu, su, h, hw, s, nz, seed, &off)) return lmf_fail(L, fn);
  lmf_push(L, &out);
  lua_pushinteger(L, (lua_Integer)off);
  return 2;
}

/* sampler_noise(x, c, seed, offset) -> x + c z, offset */
static int l_noise(lua_State *L) {
  const char *fn = "sampler_noise";
  mf_tensor *x = lmf_check(L, 1, fn);
  double c = finite_arg(L, 2, fn, "the noise scale");
  uint64_t seed, off;
  philox(L, 3, fn, &seed, &off);
  mf_tensor out;
  if (mf_sampler_noise(&out, x, c, seed, &off)) return lmf_fail(L, fn);
  lmf_push(L, &out);
  lua_pushinteger(L, (lua_Integer)off);
  return 2;
}

/* oracle_field(x, t, y|nil, mu, s2, logw, field ("velocity", "score",
   "mean", "raw"), edm, xs) -> out {B, D} */
static int l_oracle(lua_State *L) {
  const char *fn = "oracle_field";
  mf_tensor *x = lmf_check(L, 1, fn), *t = lmf_check(L, 2, fn), *y = opt_tensor(L, 3, fn);
  mf_tensor *mu = lmf_check(L, 4, fn), *s2 = lmf_check(L, 5, fn), *lw = lmf_check(L, 6, fn);
  static const char *const fields[] = {MF_ORACLE_FIELDS(LMF_NAME, _, _) NULL};
  enum mf_oracle_field field = (enum mf_oracle_field)luaL_checkoption(L, 7, NULL, fields);
  int edm = lua_toboolean(L, 8);
  double xs = luaL_optnumber(L, 9, 0.5);
  mf_tensor out;
  if (mf_oracle_field(&out, x, t, y, mu, s2, lw, field, edm, xs)) return lmf_fail(L, fn);
  lmf_push(L, &out);
  return 1;
}

void lmf_open_sampler(lua_State *L) {
  static const luaL_Reg fns[] = {{"sampler_step", l_step}, {"sampler_heun", l_heun},
                                 {"sampler_em", l_em}, {"sampler_noise", l_noise}, {"oracle_field", l_oracle},
                                 {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
