/* Binding of the sampler kernels. */
#include "lmf.h"

void lmf_open_sampler(lua_State *L) {
  static const luaL_Reg fns[] = {{NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
