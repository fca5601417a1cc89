/* REPL support: lua5.4's interactive mode edits lines with GNU readline;
   this module is loaded into the same process and shares readline's state,
   so it can load the history from a file at start and save it at exit, and
   complete names with Tab through a Lua function. */
#include <stdio.h>
#include <readline/history.h>
#include <readline/readline.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

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

/* Tab: readline calls this between statements, while lua.c waits for a
   line, so the state is free to run the Lua completer fn(text) -> {names}. */
static lua_State *complete_L;
static int complete_ref = LUA_NOREF;

static char **attempt_completion(const char *text, int start, int end) {
  (void)start, (void)end;
  rl_attempted_completion_over = 1; /* no file names */
  lua_State *L = complete_L;
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, complete_ref);
  lua_pushstring(L, text);
  char **m = NULL;
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
    int n = (int)lua_rawlen(L, -1);
    if (n > 0 && (m = calloc((size_t)n + 2, sizeof *m))) {
      size_t common = 0;
      for (int i = 1; i <= n; ++i) {
        lua_rawgeti(L, -1, i);
        const char *c = lua_tostring(L, -1);
        m[i] = strdup(c ? c : "");
        lua_pop(L, 1);
        if (i == 1) common = strlen(m[1]);
        else
          for (size_t k = 0; k < common; ++k)
            if (m[i][k] != m[1][k]) { common = k; break; }
      }
      m[0] = strndup(m[1], common); /* what the word becomes */
      if (n == 1) rl_completion_append_character = '\0';
    }
  }
  lua_settop(L, top);
  return m;
}

/* repl_complete(fn): Tab completes the word before the cursor with fn(word) */
static int l_repl_complete(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_pushvalue(L, 1);
  if (complete_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, complete_ref);
  complete_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  complete_L = L;
  /* '.' and ':' stay inside a word: "mf.nn.Li" is one word to complete */
  rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(,+-*/%^~#[]";
  rl_attempted_completion_function = attempt_completion;
  return 0;
}

/* terminal_width() -> columns of the terminal on stdout, or nil */
static int l_terminal_width(lua_State *L) {
  struct winsize w;
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_col > 0) lua_pushinteger(L, w.ws_col);
  else lua_pushnil(L);
  return 1;
}

void lmf_open_repl(lua_State *L) {
  static const luaL_Reg fns[] = {{"repl_history", l_repl_history}, {"repl_complete", l_repl_complete},
                                 {"terminal_width", l_terminal_width}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
