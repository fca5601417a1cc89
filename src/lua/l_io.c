/* Binding of files and data: PNG (libpng), whole-file reads with gzip
   (zlib), zip archives (libzip), atomic writes, element decoding for npy/IDX/safetensors, and the
   launchers of cl/data.cl and cl/metrics.cl. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../io_decode.h"
#include "../io_gzip.h"
#include "../io_png.h"
#include "../io_zip.h"
#include "../ops_data.h"
#include "lmf.h"

/* write_png(path, w, h, channels, bytes): 8-bit rows, top to bottom */
static int l_write_png(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer w = luaL_checkinteger(L, 2), h = luaL_checkinteger(L, 3), c = luaL_checkinteger(L, 4);
  size_t len;
  const char *px = luaL_checklstring(L, 5, &len);
  if (w < 1 || h < 1 || w > 1 << 15 || h > 1 << 15 || c < 1 || c > 4)
    return luaL_error(L, "moonflow.write_png: invalid image %dx%d with %d channels (1..4)", (int)w,
                      (int)h, (int)c);
  if (len != (size_t)(w * h * c))
    return luaL_error(L, "moonflow.write_png: %d bytes given, a %dx%d image with %d channels needs %d",
                      (int)len, (int)w, (int)h, (int)c, (int)(w * h * c));
  if (mf_png_write(path, (int)w, (int)h, (int)c, (const unsigned char *)px)) return lmf_fail(L, "write_png");
  return 0;
}

/* read_png(path) -> w, h, channels, bytes (8 bits per channel) */
static int l_read_png(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int w, h, c;
  unsigned char *px;
  if (mf_png_read(path, &w, &h, &c, &px)) return lmf_fail(L, "read_png");
  lua_pushinteger(L, w);
  lua_pushinteger(L, h);
  lua_pushinteger(L, c);
  lua_pushlstring(L, (const char *)px, (size_t)w * h * c);
  free(px);
  return 4;
}

/* read_file(path[, max_bytes]) -> content, inflated when gzip */
static int l_read_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer max = luaL_optinteger(L, 2, (lua_Integer)1 << 34);
  unsigned char *data;
  size_t len;
  if (mf_file_read(path, (size_t)max, &data, &len)) return lmf_fail(L, "read_file");
  lua_pushlstring(L, (const char *)data, len);
  free(data);
  return 1;
}

/* open_reader(path) -> reader with :read(n) and :close(): a file read in
   a stream, gzip data inflated (src/io_gzip.h), so a loader can read a
   header first and then exactly the bytes it announces. */
#define LMF_READER "moonflow.Reader"

static mf_reader **reader_check(lua_State *L) {
  mf_reader **r = luaL_checkudata(L, 1, LMF_READER);
  if (!*r) luaL_error(L, "moonflow.reader: the reader is closed");
  return r;
}

static int l_open_reader(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  mf_reader **r = lua_newuserdatauv(L, sizeof *r, 0);
  *r = NULL;
  luaL_setmetatable(L, LMF_READER);
  if (mf_reader_open(r, path)) return lmf_fail(L, "open_reader");
  return 1;
}

/* reader:read(n) -> up to n bytes (fewer only at the end), grown in chunks
   so a header that overstates the size costs no more than the real data */
static int l_reader_read(lua_State *L) {
  mf_reader **r = reader_check(L);
  lua_Integer n = luaL_checkinteger(L, 2);
  if (n < 0) return luaL_error(L, "moonflow.reader.read: negative size %I", n);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  size_t left = (size_t)n;
  while (left > 0) {
    size_t want = left < ((size_t)1 << 24) ? left : ((size_t)1 << 24);
    char *p = luaL_prepbuffsize(&b, want);
    size_t got;
    if (mf_reader_read(*r, p, want, &got)) return lmf_fail(L, "read_file");
    luaL_addsize(&b, got);
    left -= got;
    if (got < want) break;
  }
  luaL_pushresult(&b);
  return 1;
}

static int l_reader_close(lua_State *L) {
  mf_reader **r = luaL_checkudata(L, 1, LMF_READER);
  mf_reader_close(*r);
  *r = NULL;
  return 0;
}

/* open_zip(path) -> archive with :entries() -> {{index, name, size}, ...}
   (size as the directory states it), :open(index) -> member with
   :read(n) (up to n bytes, fewer only at its end) and :close(), and
   :close(). A member keeps its archive alive. */
#define LMF_ZIP "moonflow.Zip"
#define LMF_ZIP_MEMBER "moonflow.ZipMember"

static mf_zip **zip_check(lua_State *L) {
  mf_zip **z = luaL_checkudata(L, 1, LMF_ZIP);
  if (!*z) luaL_error(L, "moonflow.zip: the archive is closed");
  return z;
}

static int l_open_zip(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  mf_zip **z = lua_newuserdatauv(L, sizeof *z, 0);
  *z = NULL;
  luaL_setmetatable(L, LMF_ZIP);
  if (mf_zip_open(z, path)) return lmf_fail(L, "open_zip");
  return 1;
}

static int l_zip_entries(lua_State *L) {
  mf_zip **z = zip_check(L);
  int64_t n = mf_zip_count(*z);
  lua_createtable(L, n > 0 && n < INT32_MAX ? (int)n : 0, 0);
  for (int64_t i = 0; i < n; ++i) {
    const char *name;
    uint64_t size;
    if (mf_zip_stat(*z, i, &name, &size)) return lmf_fail(L, "zip.entries");
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)i);
    lua_setfield(L, -2, "index");
    lua_pushstring(L, name);
    lua_setfield(L, -2, "name");
    lua_pushinteger(L, size > (uint64_t)INT64_MAX ? INT64_MAX : (lua_Integer)size);
    lua_setfield(L, -2, "size");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int l_zip_open_member(lua_State *L) {
  mf_zip **z = zip_check(L);
  lua_Integer i = luaL_checkinteger(L, 2);
  if (i < 0 || i >= mf_zip_count(*z))
    return luaL_error(L, "moonflow.zip.open: no member %I", i);
  mf_zip_member **m = lua_newuserdatauv(L, sizeof *m, 1);
  *m = NULL;
  luaL_setmetatable(L, LMF_ZIP_MEMBER);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  if (mf_zip_member_open(*z, (int64_t)i, m)) return lmf_fail(L, "zip.open");
  return 1;
}

static int l_zip_close(lua_State *L) {
  mf_zip **z = luaL_checkudata(L, 1, LMF_ZIP);
  mf_zip_close(*z);
  *z = NULL;
  return 0;
}

static int l_member_read(lua_State *L) {
  mf_zip_member **m = luaL_checkudata(L, 1, LMF_ZIP_MEMBER);
  if (!*m) return luaL_error(L, "moonflow.zip.read: the member is closed");
  lua_Integer n = luaL_checkinteger(L, 2);
  if (n < 0) return luaL_error(L, "moonflow.zip.read: negative size %I", n);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  size_t left = (size_t)n;
  while (left > 0) { /* in chunks: an overstated size costs no more than the real data */
    size_t want = left < ((size_t)1 << 24) ? left : ((size_t)1 << 24);
    char *p = luaL_prepbuffsize(&b, want);
    size_t got;
    if (mf_zip_member_read(*m, p, want, &got)) return lmf_fail(L, "zip.read");
    luaL_addsize(&b, got);
    left -= got;
    if (got < want) break;
  }
  luaL_pushresult(&b);
  return 1;
}

static int l_member_close(lua_State *L) {
  mf_zip_member **m = luaL_checkudata(L, 1, LMF_ZIP_MEMBER);
  mf_zip_member_close(*m);
  *m = NULL;
  return 0;
}

/* write_file(path, string or list of strings[, gzip]): temp file, fsync, rename */
static int l_write_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int gz = lua_toboolean(L, 3);
  int n = lua_istable(L, 2) ? (int)lua_rawlen(L, 2) : 1;
  if (!lua_istable(L, 2)) luaL_checkstring(L, 2);
  const void **chunks = lua_newuserdatauv(L, sizeof(void *) * (size_t)(n ? n : 1), 0);
  size_t *lens = lua_newuserdatauv(L, sizeof(size_t) * (size_t)(n ? n : 1), 0);
  for (int i = 0; i < n; ++i) {
    if (lua_istable(L, 2)) {
      lua_rawgeti(L, 2, i + 1);
      if (!lua_isstring(L, -1))
        return luaL_error(L, "moonflow.write_file: chunk %d is a %s, not a string", i + 1, luaL_typename(L, -1));
      chunks[i] = lua_tolstring(L, -1, &lens[i]); /* stays referenced by the table */
      lua_pop(L, 1);
    } else {
      chunks[i] = lua_tolstring(L, 2, &lens[i]);
    }
  }
  if (mf_file_write_atomic(path, n, chunks, lens, gz)) return lmf_fail(L, "write_file");
  return 0;
}

/* decode(bytes, offset, shape, kind, big_endian, dtype[, scale, shift]) -> tensor:
   elements of `kind` from byte offset (0-based), converted as scale * v + shift */
static int l_decode(lua_State *L) {
  size_t len;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
  lua_Integer off = luaL_checkinteger(L, 2);
  int64_t shape[MF_MAX_DIMS];
  int nd = lmf_shape(L, 3, "decode", shape);
  const char *kname = luaL_checkstring(L, 4);
  int big = lua_toboolean(L, 5);
  mf_dtype dt = lmf_dtype(L, 6, "decode");
  double scale = luaL_optnumber(L, 7, 1.0), shift = luaL_optnumber(L, 8, 0.0);
  int k = mf_src_from_name(kname);
  if (k < 0) return luaL_error(L, "moonflow.decode: unknown element type %s", kname);
  int64_t n = 1;
  for (int i = 0; i < nd; ++i) {
    if (shape[i] < 0 || (shape[i] > 0 && n > INT32_MAX / shape[i]))
      return luaL_error(L, "moonflow.decode: shape has more than %d elements", INT32_MAX);
    n *= shape[i];
  }
  size_t need = (size_t)n * mf_src_size((mf_src_kind)k);
  if (off < 0 || (size_t)off > len || len - (size_t)off < need)
    return luaL_error(L, "moonflow.decode: %d %s elements at byte %d need %d bytes, %d are there",
                      (int)n, kname, (int)off, (int)need, (int)(len - ((size_t)off < len ? (size_t)off : len)));
  void *host = lua_newuserdatauv(L, (size_t)n * mf_dtype_size(dt) + 1, 0);
  if (mf_decode(host, dt, s + off, (mf_src_kind)k, (size_t)n, big, scale, shift)) return lmf_fail(L, "decode");
  mf_tensor t;
  if (mf_empty(&t, dt, nd, shape)) return lmf_fail(L, "decode");
  if (mf_from_host(&t, host)) {
    mf_tensor_free(&t);
    return lmf_fail(L, "decode");
  }
  lmf_push(L, &t);
  return 1;
}

/* a contiguous f32 tensor at offset 0 with `nd` dims (the launchers' contract) */
static mf_tensor *plain_f32(lua_State *L, int idx, int nd, const char *fn) {
  mf_tensor *t = lmf_check(L, idx, fn);
  if (t->dtype != MF_F32 || t->ndim != nd || t->offset != 0 || !mf_is_contiguous(t))
    luaL_error(L, "moonflow.%s: argument %d must be a contiguous f32 tensor with %d dims", fn, idx, nd);
  return t;
}

/* toy2d(kind, u {n, 3}, z {n, 2}, noise, p1, p2) -> {n, 2}; kinds in cl/data.cl */
static int l_toy2d(lua_State *L) {
  lua_Integer kind = luaL_checkinteger(L, 1);
  mf_tensor *u = plain_f32(L, 2, 2, "toy2d"), *z = plain_f32(L, 3, 2, "toy2d");
  if (kind < 0 || kind > 4) return luaL_error(L, "moonflow.toy2d: unknown kind %d", (int)kind);
  if (u->shape[1] != 3 || z->shape[1] != 2 || z->shape[0] != u->shape[0])
    return luaL_error(L, "moonflow.toy2d: expected u {n, 3} and z {n, 2}");
  mf_tensor out;
  if (mf_toy2d(&out, (int)kind, u, z, luaL_checknumber(L, 4), luaL_optnumber(L, 5, 0),
               luaL_optnumber(L, 6, 0)))
    return lmf_fail(L, "toy2d");
  lmf_push(L, &out);
  return 1;
}

/* contiguous, offset 0, float, nd dims */
static mf_tensor *plain_real(lua_State *L, int idx, int nd, const char *fn) {
  mf_tensor *t = lmf_check(L, idx, fn);
  if (t->dtype == MF_I32 || t->ndim != nd || t->offset != 0 || !mf_is_contiguous(t))
    luaL_error(L, "moonflow.%s: argument %d must be a contiguous float tensor with %d dims", fn, idx, nd);
  return t;
}

/* pair_dist(ab {k, m}, a2 {k}, b2 {m}) -> {k, m} distances (cl/metrics.cl) */
static int l_pair_dist(lua_State *L) {
  mf_tensor *ab = plain_real(L, 1, 2, "pair_dist"), *a2 = plain_real(L, 2, 1, "pair_dist");
  mf_tensor *b2 = plain_real(L, 3, 1, "pair_dist");
  if (a2->shape[0] != ab->shape[0] || b2->shape[0] != ab->shape[1] || a2->dtype != ab->dtype ||
      b2->dtype != ab->dtype)
    return luaL_error(L, "moonflow.pair_dist: expected ab {k, m}, a2 {k}, b2 {m} of one dtype");
  mf_tensor out;
  if (mf_pair_dist(&out, ab, a2, b2)) return lmf_fail(L, "pair_dist");
  lmf_push(L, &out);
  return 1;
}

void lmf_open_io(lua_State *L) {
  static const luaL_Reg reader[] = {{"read", l_reader_read}, {"close", l_reader_close},
                                    {"__gc", l_reader_close}, {"__close", l_reader_close},
                                    {NULL, NULL}};
  luaL_newmetatable(L, LMF_READER);
  luaL_setfuncs(L, reader, 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  static const luaL_Reg zip[] = {{"entries", l_zip_entries}, {"open", l_zip_open_member},
                                 {"close", l_zip_close}, {"__gc", l_zip_close},
                                 {"__close", l_zip_close}, {NULL, NULL}};
  static const luaL_Reg member[] = {{"read", l_member_read}, {"close", l_member_close},
                                    {"__gc", l_member_close}, {"__close", l_member_close},
                                    {NULL, NULL}};
  const luaL_Reg *mts[2] = {zip, member};
  const char *mt_names[2] = {LMF_ZIP, LMF_ZIP_MEMBER};
  for (int i = 0; i < 2; ++i) {
    luaL_newmetatable(L, mt_names[i]);
    luaL_setfuncs(L, mts[i], 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
  }
  static const luaL_Reg fns[] = {{"write_png", l_write_png}, {"read_png", l_read_png},
                                 {"read_file", l_read_file}, {"write_file", l_write_file},
                                 {"open_reader", l_open_reader}, {"open_zip", l_open_zip},
                                 {"decode", l_decode}, {"toy2d", l_toy2d},
                                 {"pair_dist", l_pair_dist}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
