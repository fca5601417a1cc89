/* Ops: argument checks, then one launcher call each. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lmf.h"

/* the unary kernels, listed once in src/kernel_names.h (core.unary_ops for Lua) */
static const char *const unary_ops[] = {MF_UNARY_OPS(LMF_NAME, _, _) NULL};
static const char *const binary_ops[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "lt",
                                         "le", "gt", "ge", "eq", "ne", NULL};
static const char *const reduce_ops[] = {"sum", "sumsq", "max", "min", NULL};

/* unary(op, t) */
static int l_unary(lua_State *L) {
  const char *op = lmf_opname(L, 1, unary_ops, "unary");
  mf_tensor *a = lmf_test(L, 2), out;
  if (!a) return luaL_error(L, "moonflow.%s: expected a tensor, got %s", op, luaL_typename(L, 2));
  if (mf_unary(&out, op, a)) return lmf_fail(L, op);
  lmf_push(L, &out);
  return 1;
}

/* binary(op, a, b): a or b may be a number */
static int l_binary(lua_State *L) {
  const char *op = lmf_opname(L, 1, binary_ops, "binary");
  mf_tensor *a = lmf_test(L, 2), *b = lmf_test(L, 3), out;
  int rc;
  if (a && b) rc = mf_binary(&out, op, a, b);
  else if (a && lua_type(L, 3) == LUA_TNUMBER) {
    lmf_check_scalar(L, a->dtype, lua_tonumber(L, 3), op);
    rc = mf_binary_scalar(&out, op, a, lua_tonumber(L, 3), 0);
  } else if (b && lua_type(L, 2) == LUA_TNUMBER) {
    lmf_check_scalar(L, b->dtype, lua_tonumber(L, 2), op);
    rc = mf_binary_scalar(&out, op, b, lua_tonumber(L, 2), 1);
  }
  else
    return luaL_error(L, "moonflow.%s: expected tensors or numbers, got %s and %s", op, luaL_typename(L, 2),
                      luaL_typename(L, 3));
  if (rc) return lmf_fail(L, op);
  lmf_push(L, &out);
  return 1;
}

/* binary_(op, a, b): a := a op b, returns a */
static int l_binary_(lua_State *L) {
  const char *op = lmf_opname(L, 1, binary_ops, "binary_");
  char name[32];
  snprintf(name, sizeof name, "%s_", op);
  mf_tensor *a = lmf_check(L, 2, name), *b = lmf_test(L, 3);
  int rc;
  if (b) rc = mf_binary_inplace(op, a, b);
  else if (lua_type(L, 3) == LUA_TNUMBER) {
    lmf_check_scalar(L, a->dtype, lua_tonumber(L, 3), name);
    rc = mf_binary_scalar_inplace(op, a, lua_tonumber(L, 3));
  }
  else return luaL_error(L, "moonflow.%s: argument 2 must be a tensor or a number, got %s", name, luaL_typename(L, 3));
  if (rc) return lmf_fail(L, name);
  lua_settop(L, 2);
  return 1;
}

static int l_where(lua_State *L) {
  mf_tensor *m = lmf_check(L, 1, "where"), *a = lmf_check(L, 2, "where"), *b = lmf_check(L, 3, "where"), out;
  if (mf_where(&out, m, a, b)) return lmf_fail(L, "where");
  lmf_push(L, &out);
  return 1;
}

static int l_clamp(lua_State *L) {
  mf_tensor *a = lmf_check(L, 1, "clamp"), out;
  double lo = luaL_optnumber(L, 2, -HUGE_VAL), hi = luaL_optnumber(L, 3, HUGE_VAL);
  if (a->dtype == MF_I32) { lo = ceil(lo); hi = floor(hi); } /* the integers within [lo, hi] */
  if (lo > hi) return luaL_error(L, "moonflow.clamp: low %f is above high %f", lo, hi);
  if (mf_clamp(&out, a, lo, hi)) return lmf_fail(L, "clamp");
  lmf_push(L, &out);
  return 1;
}

/* copy_(dst, src): dst := src (src broadcast to dst's shape), returns dst */
static int l_copy_(lua_State *L) {
  mf_tensor *d = lmf_check(L, 1, "copy_"), *s = lmf_check(L, 2, "copy_");
  mf_tensor v;
  /* a source in the target's storage is copied out first: otherwise elements
     written early would be read late (shifted narrows, x:copy_(x:t())) */
  if (s->st == d->st) {
    if (mf_cast(&v, s, s->dtype)) return lmf_fail(L, "copy_");
  } else {
    mf_view_of(&v, s);
  }
  int nd;
  int64_t sh[MF_MAX_DIMS];
  int rc = mf_broadcast_shape(d->ndim, d->shape, s->ndim, s->shape, &nd, sh);
  if (!rc && (nd != d->ndim || memcmp(sh, d->shape, sizeof(int64_t) * (size_t)nd))) {
    char x[128], y[128];
    rc = mf_fail("shape %s cannot be copied into %s", mf_shape_str(x, sizeof x, s->ndim, s->shape),
                 mf_shape_str(y, sizeof y, d->ndim, d->shape));
  }
  if (!rc) {
    rc = mf_expand(&v, d->ndim, d->shape) || mf_copy(d, &v);
  }
  mf_tensor_free(&v);
  if (rc) return lmf_fail(L, "copy_");
  lua_settop(L, 1);
  return 1;
}

static int l_fill_(lua_State *L) {
  mf_tensor *t = lmf_check(L, 1, "fill_");
  double v = luaL_checknumber(L, 2);
  lmf_check_scalar(L, t->dtype, v, "fill_");
  int rc;
  if (mf_is_contiguous(t)) rc = mf_fill(t, v);
  else {
    mf_tensor tmp;
    rc = mf_empty(&tmp, t->dtype, t->ndim, t->shape) || mf_fill(&tmp, v) || mf_copy(t, &tmp);
    if (tmp.st) mf_tensor_free(&tmp);
  }
  if (rc) return lmf_fail(L, "fill_");
  lua_settop(L, 1);
  return 1;
}

/* reduce(op, t, dims|nil, keepdim, name): dims 1-based, nil for all */
static int l_reduce(lua_State *L) {
  const char *op = lmf_opname(L, 1, reduce_ops, "reduce");
  const char *name = luaL_optstring(L, 5, op);
  mf_tensor *a = lmf_test(L, 2), out;
  if (!a) return luaL_error(L, "moonflow.%s: expected a tensor, got %s", name, luaL_typename(L, 2));
  unsigned mask = 0;
  if (lua_isnoneornil(L, 3)) mask = (1u << a->ndim) - 1;
  else if (lua_isinteger(L, 3)) mask = 1u << lmf_dim(L, 3, a->ndim, name);
  else {
    luaL_checktype(L, 3, LUA_TTABLE);
    for (int i = 1; i <= (int)lua_rawlen(L, 3); ++i) {
      lua_rawgeti(L, 3, i);
      mask |= 1u << lmf_dim(L, lua_gettop(L), a->ndim, name);
      lua_pop(L, 1);
    }
  }
  if (mf_reduce(&out, op, a, mask, lua_toboolean(L, 4))) return lmf_fail(L, name);
  lmf_push(L, &out);
  return 1;
}

static int l_matmul(lua_State *L) {
  mf_tensor *a = lmf_check(L, 1, "matmul"), *b = lmf_check(L, 2, "matmul"), out;
  char x[128], y[128];
  mf_shape_str(x, sizeof x, a->ndim, a->shape);
  mf_shape_str(y, sizeof y, b->ndim, b->shape);
  if (a->ndim != b->ndim || a->ndim < 2 || a->ndim > 3)
    return luaL_error(L, "moonflow.matmul: shapes %s and %s: need two 2-D or two 3-D tensors", x, y);
  int n = a->ndim;
  if (a->shape[n - 1] != b->shape[n - 2] || (n == 3 && a->shape[0] != b->shape[0]))
    return luaL_error(L, "moonflow.matmul: shapes %s and %s do not multiply", x, y);
  if (a->dtype != b->dtype || a->dtype == MF_I32)
    return luaL_error(L, "moonflow.matmul: dtypes %s and %s: need both f32 or both f64",
                      mf_dtype_name(a->dtype), mf_dtype_name(b->dtype));
  if (mf_matmul(&out, a, b)) return lmf_fail(L, "matmul");
  lmf_push(L, &out);
  return 1;
}

/* cat(list, dim) */
static int l_cat(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int n = (int)lua_rawlen(L, 1);
  if (n == 0) return luaL_error(L, "moonflow.cat: empty list");
  const mf_tensor *ts[256];
  if (n > 256) return luaL_error(L, "moonflow.cat: %d tensors, at most 256", n);
  for (int i = 0; i < n; ++i) {
    lua_rawgeti(L, 1, i + 1);
    ts[i] = lmf_test(L, -1);
    if (!ts[i]) return luaL_error(L, "moonflow.cat: entry %d is a %s, not a tensor", i + 1, luaL_typename(L, -1));
    lua_pop(L, 1); /* the list keeps it alive */
  }
  int d = lmf_dim(L, 2, ts[0]->ndim, "cat");
  for (int i = 1; i < n; ++i) {
    int ok = ts[i]->ndim == ts[0]->ndim && ts[i]->dtype == ts[0]->dtype;
    for (int j = 0; ok && j < ts[0]->ndim; ++j) ok = j == d || ts[i]->shape[j] == ts[0]->shape[j];
    if (!ok) {
      char x[128], y[128];
      return luaL_error(L, "moonflow.cat: entry %d (%s %s) does not match entry 1 (%s %s) outside dim %d", i + 1,
                        mf_shape_str(x, sizeof x, ts[i]->ndim, ts[i]->shape), mf_dtype_name(ts[i]->dtype),
                        mf_shape_str(y, sizeof y, ts[0]->ndim, ts[0]->shape), mf_dtype_name(ts[0]->dtype), d + 1);
    }
  }
  mf_tensor out;
  if (mf_cat(&out, ts, n, d)) return lmf_fail(L, "cat");
  lmf_push(L, &out);
  return 1;
}

static mf_tensor *check_index(lua_State *L, int idx, const char *fn) {
  mf_tensor *i = lmf_check(L, idx, fn);
  if (i->dtype != MF_I32)
    luaL_error(L, "moonflow.%s: indices must be i32, got %s", fn, mf_dtype_name(i->dtype));
  return i;
}

/* index_select(t, dim, idx): idx 1-D i32 holding 0-based rows */
static int l_index_select(lua_State *L) {
  mf_tensor *a = lmf_check(L, 1, "index_select"), out;
  int d = lmf_dim(L, 2, a->ndim, "index_select");
  mf_tensor *i = check_index(L, 3, "index_select");
  if (i->ndim != 1) return luaL_error(L, "moonflow.index_select: indices must be 1-D, got %d dims", i->ndim);
  if (mf_index_select(&out, a, d, i)) return lmf_fail(L, "index_select");
  lmf_push(L, &out);
  return 1;
}

/* index_add(g, dim, idx, size): the vjp of index_select */
static int l_index_add(lua_State *L) {
  mf_tensor *g = lmf_check(L, 1, "index_add"), out;
  int d = lmf_dim(L, 2, g->ndim, "index_add");
  mf_tensor *i = check_index(L, 3, "index_add");
  lua_Integer size = luaL_checkinteger(L, 4);
  if (mf_index_add(&out, g, d, i, size)) return lmf_fail(L, "index_add");
  lmf_push(L, &out);
  return 1;
}

static int check_gather(lua_State *L, mf_tensor *a, mf_tensor *i, int d) {
  int ok = i->ndim == a->ndim;
  for (int j = 0; ok && j < a->ndim; ++j) ok = j == d || i->shape[j] <= a->shape[j];
  if (!ok) {
    char x[128], y[128];
    return luaL_error(L, "moonflow.gather: index shape %s does not fit source shape %s",
                      mf_shape_str(x, sizeof x, i->ndim, i->shape), mf_shape_str(y, sizeof y, a->ndim, a->shape));
  }
  return 0;
}

/* gather(t, dim, idx): out[m] = t[m with m[dim] = idx[m]] (0-based idx) */
static int l_gather(lua_State *L) {
  mf_tensor *a = lmf_check(L, 1, "gather"), out;
  int d = lmf_dim(L, 2, a->ndim, "gather");
  mf_tensor *i = check_index(L, 3, "gather");
  check_gather(L, a, i, d);
  if (mf_gather(&out, a, d, i)) return lmf_fail(L, "gather");
  lmf_push(L, &out);
  return 1;
}

/* scatter_add(like, dim, idx, g): the vjp of gather */
static int l_scatter_add(lua_State *L) {
  mf_tensor *like = lmf_check(L, 1, "scatter_add"), out;
  int d = lmf_dim(L, 2, like->ndim, "scatter_add");
  mf_tensor *i = check_index(L, 3, "scatter_add");
  mf_tensor *g = lmf_check(L, 4, "scatter_add");
  check_gather(L, like, i, d);
  if (mf_scatter_add(&out, like, d, i, g)) return lmf_fail(L, "scatter_add");
  lmf_push(L, &out);
  return 1;
}

/* rand(kind, shape, seed, offset, a, b, dtype) -> tensor, new offset.
   kind: "uniform" (a = low, b = high), "normal" (mean, std), "int" (low, high) */
static int l_rand(lua_State *L) {
  const char *kind = luaL_checkstring(L, 1);
  int64_t shape[MF_MAX_DIMS];
  int nd = lmf_shape(L, 2, kind, shape);
  uint64_t seed = (uint64_t)luaL_checkinteger(L, 3), off = (uint64_t)luaL_checkinteger(L, 4);
  double a = luaL_checknumber(L, 5), b = luaL_checknumber(L, 6);
  int isint = strcmp(kind, "randint") == 0;
  mf_dtype dt = isint ? MF_I32 : lmf_dtype(L, 7, kind);
  if (dt == MF_I32 && !isint) return luaL_error(L, "moonflow.%s: dtype must be f32 or f64", kind);
  if (isint && !(a >= -2147483648.0 && b <= 2147483647.0))
    return luaL_error(L, "moonflow.randint: bounds [%f, %f) must lie within the i32 range", a, b);
  if (isint && !(b > a)) return luaL_error(L, "moonflow.randint: empty range [%d, %d)", (int)a, (int)b);
  if (strcmp(kind, "uniform") == 0 && !(b >= a))
    return luaL_error(L, "moonflow.uniform: low %f is above high %f", a, b);
  if (strcmp(kind, "normal") == 0 && !(b >= 0)) return luaL_error(L, "moonflow.normal: std %f is negative", b);
  mf_tensor out;
  if (mf_empty(&out, dt, nd, shape)) return lmf_fail(L, kind);
  int rc = isint ? mf_rand_int(&out, seed, &off, (int32_t)a, (int32_t)b)
           : strcmp(kind, "normal") == 0 ? mf_rand_normal(&out, seed, &off, a, b)
                                         : mf_rand_uniform(&out, seed, &off, a, b);
  if (rc) {
    mf_tensor_free(&out);
    return lmf_fail(L, kind);
  }
  lmf_push(L, &out);
  lua_pushinteger(L, (lua_Integer)off);
  return 2;
}

void lmf_open_ops(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"unary", l_unary}, {"binary", l_binary}, {"binary_", l_binary_}, {"where", l_where},
      {"clamp", l_clamp}, {"copy_", l_copy_}, {"fill_", l_fill_}, {"reduce", l_reduce},
      {"matmul", l_matmul}, {"cat", l_cat}, {"index_select", l_index_select},
      {"index_add", l_index_add}, {"gather", l_gather}, {"scatter_add", l_scatter_add},
      {"rand", l_rand}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
  lmf_set_names(L, unary_ops, "unary_ops");
}

void lmf_set_names(lua_State *L, const char *const *names, const char *field) {
  lua_newtable(L);
  for (int i = 0; names[i]; ++i) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, field);
}
