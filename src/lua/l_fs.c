/* File-system needs of the application, without a shell: mkdir -p, a
   run-folder lock (flock, released by the OS when the process dies), listing
   a directory, and whether a process is alive. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lmf.h"

#define LMF_LOCK "moonflow.Lock"

/* fs_mkdir_p(path): creates path and its missing parents (mode 0777 & umask) */
static int l_mkdir_p(lua_State *L) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  if (len == 0) return luaL_error(L, "moonflow.fs_mkdir_p: empty path");
  if (len >= 4096) return luaL_error(L, "moonflow.fs_mkdir_p: path of %d bytes is too long", (int)len);
  if (strlen(path) != len) return luaL_error(L, "moonflow.fs_mkdir_p: path contains a zero byte");
  char buf[4096];
  memcpy(buf, path, len + 1);
  /* every prefix ending before a '/', then the whole path */
  for (size_t i = 1; i <= len; ++i) {
    if (buf[i] != '/' && buf[i] != '\0') continue;
    char c = buf[i];
    buf[i] = '\0';
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
      return luaL_error(L, "moonflow.fs_mkdir_p: cannot create %s: %s", buf, strerror(errno));
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
      return luaL_error(L, "moonflow.fs_mkdir_p: %s exists and is not a directory", buf);
    buf[i] = c;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int lock_gc(lua_State *L) {
  int *fd = luaL_checkudata(L, 1, LMF_LOCK);
  if (*fd >= 0) close(*fd);
  *fd = -1;
  return 0;
}

/* fs_lock(path) -> handle | nil, pid or nil, message.
   An exclusive flock on path (created if missing), not inherited by child
   processes; the holder's pid is written into the file. The lock lasts while
   the handle lives (or until handle:unlock()); the OS drops it when the
   process dies, so a killed run leaves no stale lock. */
static int l_lock(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int *h = lua_newuserdatauv(L, sizeof *h, 0);
  *h = -1;
  luaL_setmetatable(L, LMF_LOCK);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return luaL_error(L, "moonflow.fs_lock: cannot open %s: %s", path, strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char text[32] = {0};
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    close(fd);
    if (err != EWOULDBLOCK) return luaL_error(L, "moonflow.fs_lock: cannot lock %s: %s", path, strerror(err));
    long pid = 0;
    lua_pushnil(L);
    if (n > 0 && sscanf(text, "%ld", &pid) == 1 && pid > 0)
      lua_pushinteger(L, pid);
    else
      lua_pushnil(L);
    lua_pushfstring(L, "%s is locked by another process", path);
    return 3;
  }
  *h = fd;
  char text[32];
  int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n)
    return luaL_error(L, "moonflow.fs_lock: cannot write %s: %s", path, strerror(errno));
  return 1;
}

/* fs_list(path) -> {names}, without "." and ".." */
static int l_list(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  DIR *d = opendir(path);
  if (!d) return luaL_error(L, "moonflow.fs_list: cannot open %s: %s", path, strerror(errno));
  lua_newtable(L);
  int i = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, -2, ++i);
  }
  closedir(d);
  return 1;
}

/* fs_pid_alive(pid): whether a process with that id exists */
static int l_pid_alive(lua_State *L) {
  lua_Integer pid = luaL_checkinteger(L, 1);
  if (pid <= 0 || pid > 0x7fffffff) return luaL_error(L, "moonflow.fs_pid_alive: bad pid %I", pid);
  lua_pushboolean(L, kill((pid_t)pid, 0) == 0 || errno == EPERM);
  return 1;
}

static int l_getpid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getpid());
  return 1;
}

void lmf_open_fs(lua_State *L) {
  luaL_newmetatable(L, LMF_LOCK);
  lua_pushcfunction(L, lock_gc);
  lua_setfield(L, -2, "__gc");
  lua_newtable(L);
  lua_pushcfunction(L, lock_gc);
  lua_setfield(L, -2, "unlock");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"fs_mkdir_p", l_mkdir_p}, {"fs_lock", l_lock},     {"fs_list", l_list},
                                 {"fs_pid_alive", l_pid_alive}, {"fs_getpid", l_getpid}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
