/* Launchers of cl/elementwise.cl. Each allocates its output (unless it
   writes in place), enqueues without waiting, and returns 0, or -1 with the
   error set. Op names are the kernels' (MF_UNARY_OPS in kernel_names.h, the
   binary list in cl/elementwise.cl). */
#ifndef MF_OPS_ELEMENTWISE_H
#define MF_OPS_ELEMENTWISE_H

#include "tensor.h"

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
int mf_fill(mf_tensor *t, double v);                    /* t contiguous */
int mf_arange(mf_tensor *t, double start, double step); /* t contiguous */

#endif
