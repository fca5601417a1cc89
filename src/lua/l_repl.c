/* REPL history: lua5.4's interactive mode edits lines with GNU readline;
   this module is loaded into the same process and shares readline's history
   list, so it can load it from a file at start and save it at exit. */
#include <readline/history.h>
#include <stdlib.h>
#include <string.h>

#include "lmf.h"

static char history_path[4096];

static void save_history(void) {
  if (history_path[0]) write_history(history_path);
}

/* repl_history(path, max_entries) */
static int l_repl_history(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int max = (int)luaL_optinteger(L, 2, 1000);
  if (strlen(path) >= sizeof history_path) return luaL_error(L, "moonflow.repl_history: path too long");
  int first = history_path[0] == 0;
  strcpy(history_path, path);
  using_history();
  read_history(history_path); /* a missing file is an empty history */
  stifle_history(max);
  if (first) atexit(save_history);
  lua_pushinteger(L, history_length);
  return 1;
}

void lmf_open_repl(lua_State *L) {
  static const luaL_Reg fns[] = {{"repl_history", l_repl_history}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
