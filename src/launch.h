/* Helpers every kernel launcher (src/ops_*.c, src/blas.c) uses: how an
   operand is walked, the grid, typed kernel lookup, argument setting. */
#ifndef MF_LAUNCH_H
#define MF_LAUNCH_H

#include "tensor.h"

/* (nd, shape, strides) of an operand as the kernels read it: nd = 0 when it
   is contiguous with exactly the output's shape. */
typedef struct {
  cl_int nd;
  cl_int8 shape, st;
} mf_walk;
void mf_walk_of(mf_walk *w, const mf_tensor *t, int out_ndim, const int64_t *out_shape);
/* Like mf_walk_of, but always an explicit walk (nd > 0). */
void mf_walk_full(mf_walk *w, const mf_tensor *t, int out_ndim, const int64_t *out_shape);
/* Work-items for a grid-stride loop over n elements. */
size_t mf_grid(size_t n);
/* Kernel "<prefix>_<dtype>" or an error "<what> is not supported for <dtype>". */
cl_kernel mf_typed_kernel(const char *prefix, mf_dtype dt);
/* clSetKernelArg over a list of (size, pointer) pairs; returns -1 on the first failure. */
int mf_args(cl_kernel k, int n, ...);
#define MF_ARG(x) sizeof(x), (const void *)&(x)

/* A scalar kernel argument in a tensor's dtype: mf_scalar_of stores v
   (i32: saturated, NaN as 0) and returns its size. */
typedef union {
  cl_float f;
  cl_double d;
  cl_int i;
} mf_scalar;
size_t mf_scalar_of(mf_scalar *s, mf_dtype dt, double v);

#endif
