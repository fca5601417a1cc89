/* Kernel launchers. Each allocates its output (unless it writes in place),
   enqueues without waiting, and returns 0, or -1 with the error set.
   Op names are the kernel names of cl/elementwise.cl and cl/reduce.cl. */
#ifndef MF_OPS_H
#define MF_OPS_H

#include "tensor.h"

/* (nd, shape, strides) of an operand as the kernels read it: nd = 0 when it
   is contiguous with exactly the output's shape. */
typedef struct {
  cl_int nd;
  cl_int8 shape, st;
} mf_walk;
void mf_walk_of(mf_walk *w, const mf_tensor *t, int out_ndim, const int64_t *out_shape);
/* Work-items for a grid-stride loop over n elements. */
size_t mf_grid(size_t n);
/* Kernel "<prefix>_<dtype>" or an error "<what> is not supported for <dtype>". */
cl_kernel mf_typed_kernel(const char *prefix, mf_dtype dt);
/* clSetKernelArg over a list; returns -1 on the first failure. */
int mf_args(cl_kernel k, int n, ...);
#define MF_ARG(x) sizeof(x), (const void *)&(x)

int mf_unary(mf_tensor *out, const char *op, const mf_tensor *a);
int mf_binary(mf_tensor *out, const char *op, const mf_tensor *a, const mf_tensor *b);
/* a op s, or s op a when rev */
int mf_binary_scalar(mf_tensor *out, const char *op, const mf_tensor *a, double s, int rev);
/* a := a op b (b broadcast to a's shape), a any view */
int mf_binary_inplace(const char *op, mf_tensor *a, const mf_tensor *b);
int mf_binary_scalar_inplace(const char *op, mf_tensor *a, double s);
int mf_where(mf_tensor *out, const mf_tensor *m, const mf_tensor *a, const mf_tensor *b);
int mf_clamp(mf_tensor *out, const mf_tensor *a, double lo, double hi);
/* dst := src (same shape, any dtypes, any layouts) */
int mf_copy(mf_tensor *dst, const mf_tensor *src);
/* a view of a when it is contiguous, else a packed copy */
int mf_contiguous(mf_tensor *out, const mf_tensor *a);
int mf_cast(mf_tensor *out, const mf_tensor *a, mf_dtype dt);
int mf_fill(mf_tensor *t, double v);               /* t contiguous */
int mf_arange(mf_tensor *t, double start, double step); /* t contiguous */

/* op: "sum", "sumsq", "max", "min"; reduces the dims whose bit is set in
   mask (bit d for dim d, 0-based) */
int mf_reduce(mf_tensor *out, const char *op, const mf_tensor *a, unsigned mask, int keepdim);

/* 2-D [m,k]x[k,n] or batched 3-D [b,m,k]x[b,k,n]; transposed views are passed
   to CLBlast as flags. */
int mf_matmul(mf_tensor *out, const mf_tensor *a, const mf_tensor *b);

int mf_cat(mf_tensor *out, const mf_tensor *const *ts, int n, int dim);
/* out = a indexed along dim by idx (1-D i32, 0-based) */
int mf_index_select(mf_tensor *out, const mf_tensor *a, int dim, const mf_tensor *idx);
/* out (a zeroed tensor of `size` along dim) accumulates g's slices at idx: vjp of index_select */
int mf_index_add(mf_tensor *out, const mf_tensor *g, int dim, const mf_tensor *idx, int64_t size);
int mf_gather(mf_tensor *out, const mf_tensor *a, int dim, const mf_tensor *idx);
/* vjp of gather: out of shape `like` */
int mf_scatter_add(mf_tensor *out, const mf_tensor *like, int dim, const mf_tensor *idx,
                   const mf_tensor *g);

/* Philox draws into contiguous out; *offset advances past the counters used. */
int mf_rand_uniform(mf_tensor *out, uint64_t seed, uint64_t *offset, double lo, double hi);
int mf_rand_normal(mf_tensor *out, uint64_t seed, uint64_t *offset, double mean, double std);
int mf_rand_int(mf_tensor *out, uint64_t seed, uint64_t *offset, int32_t lo, int32_t hi);

#endif
