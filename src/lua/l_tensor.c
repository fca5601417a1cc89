/* Tensor creation, metadata, views and host read-back. */
#include <string.h>

#include "lmf.h"

static void push_shape(lua_State *L, int n, const int64_t *s) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; ++i) {
    lua_pushinteger(L, s[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

/* Host scratch memory as a userdata left on the stack: the collector frees
   it even when an error unwinds. */
static void *scratch(lua_State *L, size_t n) { return lua_newuserdatauv(L, n ? n : 1, 0); }

/* host values (doubles) -> dtype, packed */
static void pack(void *dst, const double *v, int64_t n, mf_dtype dt) {
  for (int64_t i = 0; i < n; ++i) {
    if (dt == MF_F32) ((float *)dst)[i] = (float)v[i];
    else if (dt == MF_F64) ((double *)dst)[i] = v[i];
    else ((int32_t *)dst)[i] = (int32_t)v[i];
  }
}

static double unpack(const void *src, int64_t i, mf_dtype dt) {
  if (dt == MF_F32) return ((const float *)src)[i];
  if (dt == MF_F64) return ((const double *)src)[i];
  return ((const int32_t *)src)[i];
}

/* Shape of a nested table: follows first elements. */
static int nested_shape(lua_State *L, int idx, int64_t *shape) {
  int n = 0;
  lua_pushvalue(L, idx);
  while (lua_istable(L, -1)) {
    if (n == MF_MAX_DIMS) luaL_error(L, "moonflow.tensor: more than %d nested levels", MF_MAX_DIMS);
    shape[n++] = (int64_t)lua_rawlen(L, -1);
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
  }
  lua_pop(L, 1);
  return n;
}

static void fill_nested(lua_State *L, int idx, int d, int nd, const int64_t *shape, double *out,
                        int64_t *pos) {
  if (d == nd) {
    int ok;
    lua_Number v = lua_tonumberx(L, idx, &ok);
    if (!ok) luaL_error(L, "moonflow.tensor: element %d is a %s, not a number", (int)*pos + 1, luaL_typename(L, idx));
    out[(*pos)++] = v;
    return;
  }
  if (!lua_istable(L, idx) || (int64_t)lua_rawlen(L, idx) != shape[d])
    luaL_error(L, "moonflow.tensor: ragged nested table: level %d should hold %d entries", d + 1, (int)shape[d]);
  for (int64_t i = 1; i <= shape[d]; ++i) {
    lua_rawgeti(L, idx, i);
    fill_nested(L, lua_gettop(L), d + 1, nd, shape, out, pos);
    lua_pop(L, 1);
  }
}

static int push_new(lua_State *L, mf_tensor *t, const char *fn) {
  (void)fn;
  lmf_push(L, t);
  return 1;
}

/* tensor(nested_table_or_number, dtype) */
static int l_tensor(lua_State *L) {
  mf_dtype dt = lmf_dtype(L, 2, "tensor");
  int64_t shape[MF_MAX_DIMS];
  int nd = nested_shape(L, 1, shape);
  int64_t n = mf_shape_numel(nd, shape); /* before sizing host buffers by it */
  if (n < 0) return lmf_fail(L, "tensor");
  double *v = scratch(L, (size_t)n * sizeof(double));
  int64_t pos = 0;
  fill_nested(L, 1, 0, nd, shape, v, &pos);
  for (int64_t i = 0; dt == MF_I32 && i < n; ++i) /* no silent truncation to i32 */
    if (!(v[i] >= -2147483648.0 && v[i] <= 2147483647.0 && v[i] == (double)(int32_t)v[i]))
      return luaL_error(L, "moonflow.tensor: element %d is %f, not an i32 integer", (int)i + 1, (lua_Number)v[i]);
  void *host = scratch(L, (size_t)n * mf_dtype_size(dt));
  pack(host, v, n, dt);
  mf_tensor t;
  int rc = mf_empty(&t, dt, nd, shape);
  if (!rc && (rc = mf_from_host(&t, host))) mf_tensor_free(&t);
  if (rc) return lmf_fail(L, "tensor");
  return push_new(L, &t, "tensor");
}

/* empty(shape, dtype) */
static int l_empty(lua_State *L) {
  const char *fn = luaL_optstring(L, 3, "empty"); /* the Lua function, for errors */
  int64_t shape[MF_MAX_DIMS];
  int nd = lmf_shape(L, 1, fn, shape);
  mf_dtype dt = lmf_dtype(L, 2, fn);
  mf_tensor t;
  if (mf_empty(&t, dt, nd, shape)) return lmf_fail(L, fn);
  return push_new(L, &t, "empty");
}

/* full(shape, value, dtype, name): name ("zeros", ...) is the function errors name */
static int l_full(lua_State *L) {
  const char *fn = luaL_optstring(L, 4, "full");
  int64_t shape[MF_MAX_DIMS];
  int nd = lmf_shape(L, 1, fn, shape);
  if (lua_type(L, 2) != LUA_TNUMBER)
    return luaL_error(L, "moonflow.%s: the fill value must be a number, got %s", fn, luaL_typename(L, 2));
  double v = lua_tonumber(L, 2);
  mf_dtype dt = lmf_dtype(L, 3, fn);
  lmf_check_scalar(L, dt, v, fn);
  mf_tensor t;
  if (mf_empty(&t, dt, nd, shape)) return lmf_fail(L, fn);
  if (mf_fill(&t, v)) {
    mf_tensor_free(&t);
    return lmf_fail(L, fn);
  }
  return push_new(L, &t, "full");
}

/* arange(n, start, step, dtype): start + i * step for i < n */
static int l_arange(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  double start = luaL_checknumber(L, 2), step = luaL_checknumber(L, 3);
  mf_dtype dt = lmf_dtype(L, 4, "arange");
  lmf_check_scalar(L, dt, start, "arange");
  lmf_check_scalar(L, dt, step, "arange");
  if (n < 0) return luaL_error(L, "moonflow.arange: negative length %d", (int)n);
  int64_t sh[1] = {n};
  mf_tensor t;
  if (mf_empty(&t, dt, 1, sh)) return lmf_fail(L, "arange");
  if (mf_arange(&t, start, step)) {
    mf_tensor_free(&t);
    return lmf_fail(L, "arange");
  }
  return push_new(L, &t, "arange");
}

/* from_bytes(string, shape, dtype): packed little-endian host bytes */
static int l_from_bytes(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  int64_t shape[MF_MAX_DIMS];
  int nd = lmf_shape(L, 2, "from_bytes", shape);
  mf_dtype dt = lmf_dtype(L, 3, "from_bytes");
  int64_t n = mf_shape_numel(nd, shape);
  if (n < 0) return lmf_fail(L, "from_bytes");
  if ((size_t)n * mf_dtype_size(dt) != len)
    return luaL_error(L, "moonflow.from_bytes: %d bytes do not hold %d %s elements", (int)len, (int)n,
                      mf_dtype_name(dt));
  mf_tensor t;
  if (mf_empty(&t, dt, nd, shape)) return lmf_fail(L, "from_bytes");
  if (mf_from_host(&t, s)) {
    mf_tensor_free(&t);
    return lmf_fail(L, "from_bytes");
  }
  return push_new(L, &t, "from_bytes");
}

static void *read_back(lua_State *L, mf_tensor *t, const char *fn) {
  size_t bytes = (size_t)mf_numel(t) * mf_dtype_size(t->dtype);
  void *host = scratch(L, bytes);
  if (mf_to_host(t, host)) lmf_fail(L, fn);
  return host;
}

static int l_tobytes(lua_State *L) {
  mf_tensor *t = lmf_check(L, 1, "tobytes");
  void *host = read_back(L, t, "tobytes");
  lua_pushlstring(L, host, (size_t)mf_numel(t) * mf_dtype_size(t->dtype));
  return 1;
}

static void push_value(lua_State *L, const void *host, int64_t i, mf_dtype dt) {
  if (dt == MF_I32) lua_pushinteger(L, ((const int32_t *)host)[i]);
  else lua_pushnumber(L, unpack(host, i, dt));
}

static void build(lua_State *L, const void *host, mf_dtype dt, int d, int nd, const int64_t *shape,
                  int64_t *pos) {
  if (d == nd) {
    push_value(L, host, (*pos)++, dt);
    return;
  }
  lua_createtable(L, (int)shape[d], 0);
  for (int64_t i = 1; i <= shape[d]; ++i) {
    build(L, host, dt, d + 1, nd, shape, pos);
    lua_rawseti(L, -2, i);
  }
}

static int l_totable(lua_State *L) {
  mf_tensor *t = lmf_check(L, 1, "totable");
  void *host = read_back(L, t, "totable");
  int64_t pos = 0;
  build(L, host, t->dtype, 0, t->ndim, t->shape, &pos);
  return 1;
}

/* flat(t): the values in C order as a flat Lua array */
static int l_flat(lua_State *L) {
  mf_tensor *t = lmf_check(L, 1, "flat");
  void *host = read_back(L, t, "flat");
  int64_t n = mf_numel(t);
  lua_createtable(L, (int)n, 0);
  for (int64_t i = 0; i < n; ++i) {
    push_value(L, host, i, t->dtype);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int l_item(lua_State *L) {
  mf_tensor *t = lmf_check(L, 1, "item");
  if (mf_numel(t) != 1) {
    char b[128];
    return luaL_error(L, "moonflow.item: a tensor of shape %s has %d elements, not 1",
                      mf_shape_str(b, sizeof b, t->ndim, t->shape), (int)mf_numel(t));
  }
  void *host = read_back(L, t, "item");
  push_value(L, host, 0, t->dtype);
  return 1;
}

static int l_shape(lua_State *L) {
  mf_tensor *t = lmf_check(L, 1, "shape");
  push_shape(L, t->ndim, t->shape);
  return 1;
}

static int l_strides(lua_State *L) {
  mf_tensor *t = lmf_check(L, 1, "strides");
  push_shape(L, t->ndim, t->strides);
  return 1;
}

static int l_info(lua_State *L) { /* dim, numel, dtype, offset, contiguous */
  mf_tensor *t = lmf_check(L, 1, "info");
  lua_pushinteger(L, t->ndim);
  lua_pushinteger(L, mf_numel(t));
  lua_pushstring(L, mf_dtype_name(t->dtype));
  lua_pushinteger(L, t->offset);
  lua_pushboolean(L, mf_is_contiguous(t));
  return 5;
}

static int l_dim(lua_State *L) { lua_pushinteger(L, lmf_check(L, 1, "dim")->ndim); return 1; }
static int l_numel(lua_State *L) { lua_pushinteger(L, mf_numel(lmf_check(L, 1, "numel"))); return 1; }
static int l_dtype(lua_State *L) { lua_pushstring(L, mf_dtype_name(lmf_check(L, 1, "dtype")->dtype)); return 1; }

/* storage identity, so tests can tell views from copies */
static int l_storage(lua_State *L) {
  mf_tensor *t = lmf_check(L, 1, "storage");
  lua_pushlightuserdata(L, t->st);
  return 1;
}

/* ---- views ---- */

/* pushes v (a view made by a call that returned rc); rc != 0: v's
   reference is dropped and the error raised, naming fn */
static int push_view(lua_State *L, mf_tensor *v, int rc, const char *fn) {
  if (rc) {
    mf_tensor_free(v);
    return lmf_fail(L, fn);
  }
  lmf_push(L, v);
  return 1;
}

/* reshape(t, shape): a view when t is contiguous, else a packed copy.
   One size may be -1 (inferred). */
static int l_reshape(lua_State *L) {
  mf_tensor *t = lmf_check(L, 1, "reshape");
  luaL_checktype(L, 2, LUA_TTABLE);
  int n = (int)lua_rawlen(L, 2), infer = -1;
  if (n > MF_MAX_DIMS) return luaL_error(L, "moonflow.reshape: %d dims, at most %d", n, MF_MAX_DIMS);
  int64_t sh[MF_MAX_DIMS];
  for (int i = 0; i < n; ++i) {
    lua_rawgeti(L, 2, i + 1);
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < -1 || v > 2147483647 || (v == -1 && infer >= 0))
      return luaL_error(L, "moonflow.reshape: size %d must be an integer in [0, 2^31) or one -1, got %s", i + 1,
                        luaL_tolstring(L, -1, NULL));
    lua_pop(L, 1);
    if (v == -1) infer = i;
    sh[i] = v == -1 ? 1 : v;
  }
  int64_t numel = mf_numel(t), known = mf_shape_numel(n, sh); /* checked: no overflow */
  if (known < 0) {
    char b[160];
    if (infer >= 0) sh[infer] = -1;
    return luaL_error(L, "moonflow.reshape: shape %s has more elements than a tensor holds (2^31 - 1: kernels "
                      "index with 32-bit ints)", mf_shape_str(b, sizeof b, n, sh));
  }
  if (infer >= 0) sh[infer] = known ? numel / known : 0;
  if (mf_shape_numel(n, sh) != numel) {
    char a[128], b[128];
    return luaL_error(L, "moonflow.reshape: cannot view shape %s (%d elements) as %s",
                      mf_shape_str(a, sizeof a, t->ndim, t->shape), (int)numel,
                      mf_shape_str(b, sizeof b, n, sh));
  }
  mf_tensor c;
  if (mf_contiguous(&c, t)) return lmf_fail(L, "reshape");
  if (mf_reshape_view(&c, n, sh)) {
    mf_tensor_free(&c);
    return lmf_fail(L, "reshape");
  }
  lmf_push(L, &c);
  return 1;
}

static int l_permute(lua_State *L) {
  mf_tensor *t = lmf_check(L, 1, "permute");
  luaL_checktype(L, 2, LUA_TTABLE);
  if ((int)lua_rawlen(L, 2) != t->ndim)
    return luaL_error(L, "moonflow.permute: %d dims given for a tensor with %d", (int)lua_rawlen(L, 2), t->ndim);
  int perm[MF_MAX_DIMS], seen[MF_MAX_DIMS] = {0};
  for (int i = 0; i < t->ndim; ++i) {
    lua_rawgeti(L, 2, i + 1);
    perm[i] = lmf_dim(L, -1, t->ndim, "permute");
    lua_pop(L, 1);
    if (seen[perm[i]]++) return luaL_error(L, "moonflow.permute: dim %d repeated", perm[i] + 1);
  }
  mf_tensor v;
  mf_view_of(&v, t);
  return push_view(L, &v, mf_permute(&v, perm), "permute");
}

/* narrow(t, dim, start, length), start 1-based */
static int l_narrow(lua_State *L) {
  mf_tensor *t = lmf_check(L, 1, "narrow");
  int d = lmf_dim(L, 2, t->ndim, "narrow");
  lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
  if (start < 1 || len < 0 || start - 1 > t->shape[d] || len > t->shape[d] - (start - 1)) /* no overflow */
    return luaL_error(L, "moonflow.narrow: elements %I..%I out of range 1..%I of dim %d", (lua_Integer)start,
                      len > LUA_MAXINTEGER - start ? LUA_MAXINTEGER : start + len - 1, (lua_Integer)t->shape[d], d + 1);
  mf_tensor v;
  mf_view_of(&v, t);
  return push_view(L, &v, mf_narrow(&v, d, start - 1, len), "narrow");
}

static int l_expand(lua_State *L) {
  mf_tensor *t = lmf_check(L, 1, "expand");
  int64_t sh[MF_MAX_DIMS];
  luaL_checktype(L, 2, LUA_TTABLE);
  int n = (int)lua_rawlen(L, 2);
  if (n < t->ndim || n > MF_MAX_DIMS)
    return luaL_error(L, "moonflow.expand: cannot expand %d dims to %d", t->ndim, n);
  for (int i = 0; i < n; ++i) {
    lua_rawgeti(L, 2, i + 1);
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    lua_pop(L, 1);
    int j = i - (n - t->ndim);
    if (ok && v == -1 && j >= 0) v = t->shape[j];
    sh[i] = ok && v >= 0 && v <= 2147483647 ? v : -1;
  }
  for (int i = 0; i < n; ++i) {
    int j = i - (n - t->ndim);
    int64_t v = sh[i];
    if (v < 0 || (j >= 0 && t->shape[j] != v && t->shape[j] != 1)) {
      char a[128], b[128];
      return luaL_error(L, "moonflow.expand: shape %s cannot expand to %s",
                        mf_shape_str(a, sizeof a, t->ndim, t->shape), mf_shape_str(b, sizeof b, n, sh));
    }
  }
  if (mf_shape_numel(n, sh) < 0) return lmf_fail(L, "expand");
  mf_tensor v;
  mf_view_of(&v, t);
  return push_view(L, &v, mf_expand(&v, n, sh), "expand");
}

static int l_contiguous(lua_State *L) {
  mf_tensor *t = lmf_check(L, 1, "contiguous"), c;
  if (mf_contiguous(&c, t)) return lmf_fail(L, "contiguous");
  lmf_push(L, &c);
  return 1;
}

static int l_clone(lua_State *L) {
  mf_tensor *t = lmf_check(L, 1, "clone"), c;
  if (mf_cast(&c, t, t->dtype)) return lmf_fail(L, "clone");
  lmf_push(L, &c);
  return 1;
}

static int l_to(lua_State *L) {
  mf_tensor *t = lmf_check(L, 1, "to"), c;
  mf_dtype dt = lmf_dtype(L, 2, "to");
  if (dt == t->dtype) {
    lua_settop(L, 1);
    return 1;
  }
  if (mf_cast(&c, t, dt)) return lmf_fail(L, "to");
  lmf_push(L, &c);
  return 1;
}

void lmf_open_tensor(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"tensor", l_tensor}, {"empty", l_empty}, {"full", l_full}, {"arange", l_arange},
      {"from_bytes", l_from_bytes}, {"tobytes", l_tobytes}, {"totable", l_totable},
      {"flat", l_flat}, {"item", l_item}, {"shape", l_shape}, {"strides", l_strides},
      {"info", l_info}, {"dim", l_dim}, {"numel", l_numel}, {"dtype", l_dtype},
      {"storage", l_storage}, {"reshape", l_reshape}, {"permute", l_permute},
      {"narrow", l_narrow}, {"expand", l_expand}, {"contiguous", l_contiguous},
      {"clone", l_clone}, {"to", l_to}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
