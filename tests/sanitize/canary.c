/* The sanitize mode's self-test: a Lua C module with one leak and one heap overflow,
   loaded by the stock lua5.4 exactly as core.so is (LD_PRELOAD of libasan, the same
   ASAN/LSAN options and suppressions). scripts/check.sh sanitize requires both to be
   reported, so a setup that silences the sanitizers cannot pass as clean. */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

static void *volatile kept;

static int leak(lua_State *L) {
  kept = malloc(100);
  memset(kept, 1, 100);
  kept = NULL; /* the only pointer is gone: LeakSanitizer must report 100 bytes */
  return 0;
}

static int overflow(lua_State *L) {
  char *p = malloc(8);
  int i = (int)luaL_optinteger(L, 1, 8);
  p[i] = 1; /* one past the end: AddressSanitizer must report a heap-buffer-overflow */
  free(p);
  return 0;
}

int luaopen_canary(lua_State *L) {
  static const luaL_Reg fns[] = {{"leak", leak}, {"overflow", overflow}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
