/* luaopen_moonflow_core: the Tensor metatable, shared helpers, and the
   registration of every binding file. */
#include <string.h>

#include "lmf.h"

/* device bytes allocated since the collector last heard of them */
static size_t gc_pending;

int lmf_fail(lua_State *L, const char *fn) {
  return luaL_error(L, "moonflow.%s: %s", fn, mf_last_error());
}

mf_tensor *lmf_test(lua_State *L, int idx) {
  mf_tensor *t = luaL_testudata(L, idx, LMF_TENSOR);
  return t && t->st ? t : NULL;
}

mf_tensor *lmf_check(lua_State *L, int idx, const char *fn) {
  mf_tensor *t = lmf_test(L, idx);
  if (!t)
    luaL_error(L, "moonflow.%s: argument %d must be a tensor, got %s", fn, idx, luaL_typename(L, idx));
  return t;
}

mf_tensor *lmf_push(lua_State *L, mf_tensor *t) {
  mf_tensor *u = lua_newuserdatauv(L, sizeof *u, 1);
  *u = *t;
  luaL_setmetatable(L, LMF_TENSOR);
  /* Lua sees a small userdata; step the collector by the device bytes it holds
     so that temporaries are reclaimed at the pace they are made. */
  if (u->offset == 0 && u->st->refs == 1) {
    gc_pending += u->st->bytes;
    if (gc_pending >= (1 << 18)) {
      lua_gc(L, LUA_GCSTEP, (int)(gc_pending >> 10));
      gc_pending = 0;
    }
  }
  return u;
}

int lmf_shape(lua_State *L, int idx, const char *fn, int64_t *shape) {
  if (lua_isinteger(L, idx)) {
    shape[0] = lua_tointeger(L, idx);
    if (shape[0] < 0 || shape[0] > 2147483647)
      luaL_error(L, "moonflow.%s: size %I is out of range [0, 2^31)", fn, (lua_Integer)shape[0]);
    return 1;
  }
  if (!lua_istable(L, idx))
    return luaL_error(L, "moonflow.%s: shape must be a table of sizes, got %s", fn, luaL_typename(L, idx));
  int n = (int)lua_rawlen(L, idx);
  if (n > MF_MAX_DIMS) return luaL_error(L, "moonflow.%s: %d dims, at most %d are supported", fn, n, MF_MAX_DIMS);
  for (int i = 0; i < n; ++i) {
    lua_rawgeti(L, idx, i + 1);
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < 0 || v > 2147483647)
      return luaL_error(L, "moonflow.%s: size %d of the shape must be an integer in [0, 2^31), got %s", fn, i + 1,
                        luaL_tolstring(L, -1, NULL));
    lua_pop(L, 1);
    shape[i] = v;
  }
  return n;
}

mf_dtype lmf_dtype(lua_State *L, int idx, const char *fn) {
  if (lua_isnoneornil(L, idx)) return MF_F32;
  const char *s = lua_tostring(L, idx);
  int d = s ? mf_dtype_from_name(s) : -1;
  if (d < 0) luaL_error(L, "moonflow.%s: unknown dtype %s (use \"f32\", \"f64\" or \"i32\")", fn, s ? s : luaL_typename(L, idx));
  if (d == MF_F64) {
    mf_runtime *r = mf_rt();
    if (!r) lmf_fail(L, fn);
    if (!r->fp64)
      luaL_error(L, "moonflow.%s: dtype f64 needs cl_khr_fp64, which %s lacks%s", fn, r->info.name,
                 r->info.fp64 ? " (disabled by MOONFLOW_DISABLE_FP64)" : "");
  }
  return (mf_dtype)d;
}

int lmf_dim(lua_State *L, int idx, int ndim, const char *fn) {
  int ok;
  lua_Integer d = lua_tointegerx(L, idx, &ok);
  if (!ok) luaL_error(L, "moonflow.%s: a dim must be an integer, got %s", fn, luaL_tolstring(L, idx, NULL));
  lua_Integer z = d < 0 ? d + ndim : d - 1;
  if (z < 0 || z >= ndim)
    luaL_error(L, "moonflow.%s: dim %I out of range for a tensor with %d dims", fn, d, ndim);
  return (int)z;
}

const char *lmf_opname(lua_State *L, int idx, const char *const *ops, const char *fn) {
  const char *s = luaL_checkstring(L, idx);
  for (int i = 0; ops[i]; ++i)
    if (strcmp(ops[i], s) == 0) return ops[i];
  luaL_error(L, "moonflow.%s: unknown op %s", fn, s);
  return NULL;
}

void lmf_check_scalar(lua_State *L, mf_dtype dt, double v, const char *fn) {
  if (dt == MF_I32 && !(v >= -2147483648.0 && v <= 2147483647.0 && v == (double)(int32_t)v))
    luaL_error(L, "moonflow.%s: %f is not an i32 value; convert the tensor with :to(\"f32\")", fn, (lua_Number)v);
}

static int t_gc(lua_State *L) {
  mf_tensor *t = luaL_checkudata(L, 1, LMF_TENSOR);
  if (t->st) mf_tensor_free(t);
  return 0;
}

/* select(t, dim, i): the view of t at index i (1-based, negative from the
   end) of dim, that dim removed; a 1-D tensor gives a 0-d view. */
static int l_select(lua_State *L) {
  mf_tensor *t = lmf_check(L, 1, "select");
  if (t->ndim == 0) return luaL_error(L, "moonflow.select: a 0-d tensor has no dim to select from");
  int d = lmf_dim(L, 2, t->ndim, "select");
  int ok;
  lua_Integer i = lua_tointegerx(L, 3, &ok);
  if (!ok) return luaL_error(L, "moonflow.select: the index must be an integer, got %s", luaL_tolstring(L, 3, NULL));
  lua_Integer n = t->shape[d];
  lua_Integer z = i < 0 ? i + n : i - 1;
  if (z < 0 || z >= n)
    return luaL_error(L, "moonflow.select: index %I out of range for dim %d of size %I", i, d + 1, n);
  mf_tensor v;
  mf_view_of(&v, t);
  v.offset += z * v.strides[d];
  for (int k = d; k + 1 < v.ndim; ++k) {
    v.shape[k] = v.shape[k + 1];
    v.strides[k] = v.strides[k + 1];
  }
  v.ndim -= 1;
  lmf_push(L, &v);
  return 1;
}

/* __index: methods first (string keys: one raw lookup), then the tensor's
   own fields (grad, ...); numbers and tables go to the metatable's
   __getitem (t[i], t[{i, j}]: tensor.lua). */
static int t_index(lua_State *L) {
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  int kt = lua_type(L, 2);
  if (kt == LUA_TNUMBER || kt == LUA_TTABLE) {
    lua_getmetatable(L, 1);
    if (lua_getfield(L, -1, "__getitem") == LUA_TFUNCTION) {
      lua_pushvalue(L, 1);
      lua_pushvalue(L, 2);
      lua_call(L, 2, 1);
      return 1;
    }
    lua_pushnil(L);
    return 1;
  }
  if (lua_getiuservalue(L, 1, 1) != LUA_TTABLE) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

static int t_newindex(lua_State *L) {
  if (lua_getiuservalue(L, 1, 1) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, 1, 1);
  }
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rawset(L, -3);
  return 0;
}

/* Waits for the queue when the state closes: pending writes end in a
   callback inside this library, which must not run after Lua unloads it.
   Then CLBlast's programs go while the OpenCL runtime is still whole. */
static int finish_at_close(lua_State *L) {
  (void)L;
  if (mf_rt_started()) {
    mf_finish();
    mf_blas_release();
  }
  return 0;
}

int luaopen_moonflow_core(lua_State *L) {
  /* created after the loader's library handle, so finalized before it */
  lua_newuserdatauv(L, 1, 0);
  lua_newtable(L);
  lua_pushcfunction(L, finish_at_close);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, "moonflow.closer");
  /* lua5.4 (lua.c) starts in generational mode, where a tensor that is still
     on the stack during one step turns old and only a major collection frees
     it: device memory would grow in a loop. lmf_push's stepping needs the
     incremental collector. */
  lua_gc(L, LUA_GCINC, 0, 0, 0);
  lua_newtable(L); /* module */
  luaL_newmetatable(L, LMF_TENSOR);
  lua_newtable(L); /* methods */
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "methods");
  lua_pushcclosure(L, t_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, t_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, t_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushstring(L, "moonflow.Tensor");
  lua_setfield(L, -2, "__name");
  lua_setfield(L, -2, "metatable");
  lmf_open_runtime(L);
  lmf_open_tensor(L);
  lmf_open_ops(L);
  lmf_open_diffusion(L);
  lmf_open_optim(L);
  lmf_open_io(L);
  lmf_open_sampler(L);
  lmf_open_repl(L);
  lmf_open_fs(L);
  lmf_open_linalg(L);
  lua_pushcfunction(L, l_select);
  lua_setfield(L, -2, "select");
  return 1;
}
