/* Binding of the host linear algebra (src/linalg.c, LAPACKE): the Frechet
   distance from device moments, and symmetric eigenvalues for checks. */
#include "../linalg.h"
#include "lmf.h"

#define MAX_N 4096

static const char *shape_of(lua_State *L, const mf_tensor *t) {
  char buf[128];
  return lua_pushstring(L, mf_shape_str(buf, sizeof buf, t->ndim, t->shape));
}

static mf_tensor *float_tensor(lua_State *L, int idx, const char *fn) {
  mf_tensor *t = lmf_check(L, idx, fn);
  if (t->dtype != MF_F32 && t->dtype != MF_F64)
    luaL_error(L, "moonflow.%s: argument %d has dtype %s, expected f32 or f64", fn, idx, mf_dtype_name(t->dtype));
  return t;
}

/* linalg_frechet(mu_a {n}, cov_a {n, n}, mu_b {n}, cov_b {n, n}) -> fd, tr((A B)^1/2) */
static int l_frechet(lua_State *L) {
  const char *fn = "linalg_frechet";
  mf_tensor *t[4];
  for (int i = 0; i < 4; ++i) t[i] = float_tensor(L, i + 1, fn);
  int64_t n = t[0]->ndim == 1 ? t[0]->shape[0] : -1;
  if (n < 1 || n > MAX_N)
    return luaL_error(L, "moonflow.%s: mean a has shape %s, expected {n} with 1 <= n <= %d", fn, shape_of(L, t[0]),
                      MAX_N);
  for (int i = 1; i < 4; ++i) {
    int mu = i % 2 == 0;
    if (t[i]->ndim != (mu ? 1 : 2) || t[i]->shape[0] != n || (!mu && t[i]->shape[1] != n))
      return luaL_error(L, "moonflow.%s: argument %d has shape %s, expected %s{%d%s}", fn, i + 1, shape_of(L, t[i]),
                        mu ? "a mean " : "a covariance ", (int)n, mu ? "" : lua_pushfstring(L, ", %d", (int)n));
  }
  double fd, trs;
  if (mf_frechet_tensors(t[0], t[1], t[2], t[3], &fd, &trs)) return lmf_fail(L, fn);
  lua_pushnumber(L, fd);
  lua_pushnumber(L, trs);
  return 2;
}

/* linalg_eigvalsh(a {n, n}) -> {ascending eigenvalues} of the symmetric a
   (its upper triangle is read) */
static int l_eigvalsh(lua_State *L) {
  const char *fn = "linalg_eigvalsh";
  mf_tensor *a = float_tensor(L, 1, fn);
  if (a->ndim != 2 || a->shape[0] != a->shape[1] || a->shape[0] < 1 || a->shape[0] > MAX_N)
    return luaL_error(L, "moonflow.%s: matrix has shape %s, expected {n, n} with 1 <= n <= %d", fn, shape_of(L, a),
                      MAX_N);
  int n = (int)a->shape[0];
  double *m = lua_newuserdatauv(L, sizeof(double) * ((size_t)n * n + n), 0); /* freed by the collector */
  double *w = m + (size_t)n * n;
  if (a->dtype == MF_F64) {
    if (mf_to_host(a, m)) return lmf_fail(L, fn);
  } else {
    float *f = lua_newuserdatauv(L, sizeof(float) * (size_t)n * n, 0);
    if (mf_to_host(a, f)) return lmf_fail(L, fn);
    for (size_t i = 0; i < (size_t)n * n; ++i) m[i] = f[i];
  }
  if (mf_sym_eig(n, m, w, 0)) return lmf_fail(L, fn);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; ++i) {
    lua_pushnumber(L, w[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

void lmf_open_linalg(lua_State *L) {
  static const luaL_Reg fns[] = {{"linalg_frechet", l_frechet}, {"linalg_eigvalsh", l_eigvalsh}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
