/* mf.nn.F.attention on CPU OpenCL devices: one native kernel per forward and
   per backward, OpenBLAS products and a C softmax per head (attention_host.c). */
#ifndef MF_ATTENTION_HOST_H
#define MF_ATTENTION_HOST_H

#include "tensor.h"

/* Whether the host path serves attention now: the host BLAS serves the
   device (blas_host.h) and core.nn_path is "auto". */
int mf_attn_host(void);

/* The bytes of scores one block of query rows may hold (1 MiB); bytes > 0
   sets it (tests make blocks of a few rows). Returns the previous value. */
size_t mf_attn_host_block(size_t bytes);

/* q {BH, N, d}, k {BH, M, d}, v {BH, M, e}, contiguous, f32 or f64:
   o {BH, N, e} = softmax(s q k^T) v and lse {BH, N} the rows' log-sum-exps
   of s q k^T; p non-NULL: P = softmax(s q k^T) {BH, N, M} kept there too.
   0 when enqueued, -1 on error (set; also where the host path does not serve). */
int mf_attn_host_fwd(mf_tensor *o, mf_tensor *lse, mf_tensor *p, const mf_tensor *q, const mf_tensor *k,
                     const mf_tensor *v, double s);

/* The cotangents of q, k, v for the cotangent g {BH, N, e} of o, from the
   forward's o, lse and P where it was kept (else NULL: recomputed per block).
   0 when enqueued, -1 on error (set). */
int mf_attn_host_bwd(mf_tensor *dq, mf_tensor *dk, mf_tensor *dv, const mf_tensor *g, const mf_tensor *q,
                     const mf_tensor *k, const mf_tensor *v, const mf_tensor *o, const mf_tensor *lse,
                     const mf_tensor *p, double s);

#endif
