/* Devices, stats and memory reports. */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lmf.h"

static void push_info(lua_State *L, const mf_device_info *d, int index) {
  lua_createtable(L, 0, 9);
  lua_pushinteger(L, index);
  lua_setfield(L, -2, "index");
  lua_pushstring(L, d->name);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, d->vendor);
  lua_setfield(L, -2, "vendor");
  lua_pushstring(L, d->platform);
  lua_setfield(L, -2, "platform");
  lua_pushstring(L, d->version);
  lua_setfield(L, -2, "version");
  lua_pushstring(L, d->is_gpu ? "gpu" : "cpu");
  lua_setfield(L, -2, "type");
  lua_pushboolean(L, d->fp64);
  lua_setfield(L, -2, "fp64");
  lua_pushinteger(L, (lua_Integer)d->global_mem);
  lua_setfield(L, -2, "global_memory");
  lua_pushinteger(L, (lua_Integer)d->max_alloc); /* the largest single buffer */
  lua_setfield(L, -2, "max_alloc");
  lua_pushinteger(L, d->compute_units);
  lua_setfield(L, -2, "compute_units");
}

static int l_devices(lua_State *L) {
  mf_device_info infos[32];
  int n = mf_list_devices(infos, 32);
  if (n < 0) return lmf_fail(L, "devices");
  lua_createtable(L, n, 0);
  for (int i = 0; i < n && i < 32; ++i) {
    push_info(L, &infos[i], i);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int l_device(lua_State *L) {
  mf_runtime *r = mf_rt();
  if (!r) return lmf_fail(L, "device");
  push_info(L, &r->info, -1);
  lua_pushboolean(L, r->fp64);
  lua_setfield(L, -2, "fp64");
  lua_pushboolean(L, r->info.fp64);
  lua_setfield(L, -2, "fp64_hardware");
  return 1;
}

#define SETI(name, v) (lua_pushinteger(L, (lua_Integer)(v)), lua_setfield(L, -2, name))

static int l_stats(lua_State *L) {
  lua_createtable(L, 0, 8);
  SETI("launches", mf_stat.launches);
  SETI("reads", mf_stat.reads);
  SETI("read_bytes", mf_stat.read_bytes);
  SETI("writes", mf_stat.writes);
  SETI("write_bytes", mf_stat.write_bytes);
  SETI("allocs", mf_stat.allocs);
  SETI("alloc_bytes", mf_stat.alloc_bytes);
  SETI("reuses", mf_stat.reuses);
  return 1;
}

static int l_reset_stats(lua_State *L) {
  (void)L;
  memset(&mf_stat, 0, sizeof mf_stat);
  return 0;
}

static int l_memory(lua_State *L) {
  mf_memory m;
  if (mf_memory_get(&m)) return lmf_fail(L, "memory");
  lua_createtable(L, 0, 5);
  SETI("in_use", m.in_use);
  SETI("cached", m.cached);
  SETI("peak", m.peak);
  SETI("buffers", m.buffers);
  SETI("limit", m.limit);
  return 1;
}

/* set_memory_limit(bytes | nil) -> the previous limit; nil: the device's global memory */
static int l_set_memory_limit(lua_State *L) {
  mf_memory m;
  if (mf_memory_get(&m)) return lmf_fail(L, "set_memory_limit");
  lua_Integer v = 0;
  if (!lua_isnoneornil(L, 1)) {
    int ok;
    v = lua_tointegerx(L, 1, &ok);
    if (!ok || v < 1)
      return luaL_error(L, "moonflow.set_memory_limit: limit %s is not a positive byte count", luaL_tolstring(L, 1, NULL));
  }
  if (mf_memory_set_limit((uint64_t)v)) return lmf_fail(L, "set_memory_limit");
  lua_pushinteger(L, (lua_Integer)m.limit);
  return 1;
}

static int l_reset_peak(lua_State *L) {
  (void)L;
  mf_memory_reset_peak();
  return 0;
}

static int l_trim(lua_State *L) {
  (void)L;
  mf_memory_trim();
  return 0;
}

static int l_finish(lua_State *L) {
  if (mf_finish() || mf_device_errors()) return lmf_fail(L, "synchronize");
  return 0;
}

/* monotonic seconds, for benchmarks and progress */
static int l_clock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + 1e-9 * (lua_Number)ts.tv_nsec);
  return 1;
}

/* isatty(fd): whether progress output goes to a terminal */
static int l_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_optinteger(L, 1, 1)));
  return 1;
}

void lmf_open_runtime(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"devices", l_devices}, {"device", l_device}, {"stats", l_stats},
      {"reset_stats", l_reset_stats}, {"memory", l_memory}, {"reset_peak", l_reset_peak},
      {"set_memory_limit", l_set_memory_limit},
      {"trim", l_trim}, {"synchronize", l_finish}, {"clock", l_clock}, {"isatty", l_isatty}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
