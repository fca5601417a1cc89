/* Binding of the diffusion kernels. */
#include "lmf.h"

void lmf_open_diffusion(lua_State *L) {
  static const luaL_Reg fns[] = {{NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
