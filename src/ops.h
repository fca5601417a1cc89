/* All the kernel launchers (each src/ops_*.c has its own header) and the
   launch helpers, for the binding and the C tests. */
#ifndef MF_OPS_H
#define MF_OPS_H

#include "launch.h"
#include "ops_elementwise.h"
#include "ops_random.h"
#include "ops_reduce.h"
#include "tensor.h"

/* 2-D [m,k]x[k,n] or batched 3-D [b,m,k]x[b,k,n]; transposed views are passed
   to CLBlast as flags (src/blas.c). */
int mf_matmul(mf_tensor *out, const mf_tensor *a, const mf_tensor *b);
/* releases CLBlast's cached programs (when the state closes; CLBlast rebuilds them on use) */
void mf_blas_release(void);

/* src/ops_index.c */
int mf_cat(mf_tensor *out, const mf_tensor *const *ts, int n, int dim);
/* out = a indexed along dim by idx (1-D i32, 0-based) */
int mf_index_select(mf_tensor *out, const mf_tensor *a, int dim, const mf_tensor *idx);
/* out (a zeroed tensor of `size` along dim) accumulates g's slices at idx: vjp of index_select */
int mf_index_add(mf_tensor *out, const mf_tensor *g, int dim, const mf_tensor *idx, int64_t size);
int mf_gather(mf_tensor *out, const mf_tensor *a, int dim, const mf_tensor *idx);
/* vjp of gather: out of shape `like` */
int mf_scatter_add(mf_tensor *out, const mf_tensor *like, int dim, const mf_tensor *idx,
                   const mf_tensor *g);

/* src/ops_attention.c: flash-style attention (cl/attention.cl) over heads
   q {BH, N, d}, k {BH, M, d}, v {BH, M, e}, all contiguous at offset 0.
   1 when the tiled kernels serve these sizes (mf_nn path "wg", or "auto" on a
   GPU; d, e <= MF_ATTN_DMAX), else 0: the materialized path. */
#define MF_ATTN_DMAX 128
int mf_attn_tiled(int64_t d, int64_t e);
/* o {BH, N, e} = softmax(s q k^T) v, lse {BH, N} its row log-sum-exps */
int mf_attn_fwd(mf_tensor *o, mf_tensor *lse, const mf_tensor *q, const mf_tensor *k, const mf_tensor *v, double s);
/* dq, dk, dv for the cotangent g {BH, N, e} of o */
int mf_attn_bwd(mf_tensor *dq, mf_tensor *dk, mf_tensor *dv, const mf_tensor *g, const mf_tensor *q,
                const mf_tensor *k, const mf_tensor *v, const mf_tensor *o, const mf_tensor *lse, double s);
/* the tangent of o for tangents tq, tk, tv (each NULL for zero) */
int mf_attn_jvp(mf_tensor *out, const mf_tensor *tq, const mf_tensor *tk, const mf_tensor *tv, const mf_tensor *q,
                const mf_tensor *k, const mf_tensor *v, const mf_tensor *o, const mf_tensor *lse, double s);

#endif
