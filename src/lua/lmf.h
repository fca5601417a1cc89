/* Binding helpers shared by the src/lua files. Argument checks and Lua
   errors live in this layer only. */
#ifndef LMF_H
#define LMF_H

#include <lauxlib.h>
#include <lua.h>

#include "../kernel_names.h"
#include "../ops.h"
#include "../runtime.h"

#define LMF_TENSOR "moonflow.Tensor"

/* Raises "moonflow.<fn>: <core error>". */
int lmf_fail(lua_State *L, const char *fn);
/* The tensor at idx, or an argument error naming fn. */
mf_tensor *lmf_check(lua_State *L, int idx, const char *fn);
mf_tensor *lmf_test(lua_State *L, int idx);
/* Pushes a new tensor userdata that takes ownership of *t. */
mf_tensor *lmf_push(lua_State *L, mf_tensor *t);
/* Reads a shape table {d1, d2, ...} (or a single integer) at idx. */
int lmf_shape(lua_State *L, int idx, const char *fn, int64_t *shape);
/* A dtype name at idx ("f32" when nil). */
mf_dtype lmf_dtype(lua_State *L, int idx, const char *fn);
/* A 1-based (or negative, from the end) dim at idx for a tensor of ndim
   dims, returned 0-based. */
int lmf_dim(lua_State *L, int idx, int ndim, const char *fn);
/* The function name passed as the op string at idx, checked against a list. */
const char *lmf_opname(lua_State *L, int idx, const char *const *ops, const char *fn);
/* The strings of a name list of kernel_names.h, for luaL_checkoption:
   static const char *const names[] = {MF_COEFS(LMF_NAME, _, _) NULL}; */
#define LMF_NAME(name, A, B) #name,
/* Sets field `field` of the table on top to the list of names (NULL-ended). */
void lmf_set_names(lua_State *L, const char *const *names, const char *field);

/* A number combined with a tensor of dtype dt: for i32 it must be an
   integer in range (no silent truncation). */
void lmf_check_scalar(lua_State *L, mf_dtype dt, double v, const char *fn);

void lmf_open_tensor(lua_State *L);  /* fills the module table on top */
void lmf_open_ops(lua_State *L);
void lmf_open_runtime(lua_State *L);
void lmf_open_diffusion(lua_State *L); /* l_diffusion.c: noising, targets, losses, RF */
void lmf_open_optim(lua_State *L);     /* l_optim.c: AdamW, SGD, EMA, clipping */
void lmf_open_io(lua_State *L);        /* l_io.c: PNG, gzip */
void lmf_open_sampler(lua_State *L);   /* l_sampler.c: fused sampler updates */
void lmf_open_repl(lua_State *L);      /* l_repl.c: readline history for the REPL */
void lmf_open_fs(lua_State *L);       /* l_fs.c: mkdir -p, run-folder lock, listing, pids */
void lmf_open_linalg(lua_State *L);   /* l_linalg.c: Frechet distance, eigenvalues (LAPACKE) */

#endif
