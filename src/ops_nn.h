/* Launchers of cl/nn.cl: fused layer epilogues and LayerNorm. Operands are
   contiguous [rows, cols] blocks (2-D views of any contiguous tensor);
   optional operands are NULL. act: MF_ACTIVATION_none, _silu, ... */
#ifndef MF_OPS_NN_H
#define MF_OPS_NN_H

#include "kernel_names.h"
#include "tensor.h"

/* Kernel shape: -1 by device type (default), 0 row runs (CPU shape),
   1 a work-group per row (GPU shape). Both run on any device. */
void mf_nn_set_path(int path);
int mf_nn_get_path(void);

/* pre = z + b; y = act(pre) + r. z is overwritten with pre unless act is none;
   *y is allocated, except for none, where y becomes a view of z. */
int mf_nn_bias_act(mf_tensor *y, mf_tensor *z, const mf_tensor *b, const mf_tensor *r, enum mf_activation act);
/* gp = g act'(pre) */
int mf_nn_act_grad(mf_tensor *gp, const mf_tensor *g, const mf_tensor *pre, enum mf_activation act);
/* out[c] = sum_r a[r, c] (+ out[c] when acc); out allocated when !acc */
int mf_nn_colsum(mf_tensor *out, const mf_tensor *a, int acc);
/* y = act(LN(x) w + b + c) with per-row mean and rstd out */
int mf_nn_ln_fwd(mf_tensor *y, mf_tensor *mean, mf_tensor *rstd, const mf_tensor *x, const mf_tensor *w,
                 const mf_tensor *b, const mf_tensor *c, double eps, enum mf_activation act);
/* gx and gpre (= g act'(pre)) of mf_nn_ln_fwd */
int mf_nn_ln_bwd(mf_tensor *gx, mf_tensor *gpre, const mf_tensor *g, const mf_tensor *x, const mf_tensor *mean,
                 const mf_tensor *rstd, const mf_tensor *w, const mf_tensor *b, const mf_tensor *c, enum mf_activation act);
/* gw = sum_r gpre xh, gb = sum_r gpre */
int mf_nn_ln_wgrad(mf_tensor *gw, mf_tensor *gb, const mf_tensor *gpre, const mf_tensor *x,
                   const mf_tensor *mean, const mf_tensor *rstd);

/* the same sums added into existing gw, gb ({cols} each, contiguous) */
int mf_nn_ln_wgrad_acc(mf_tensor *gw, mf_tensor *gb, const mf_tensor *gpre, const mf_tensor *x,
                       const mf_tensor *mean, const mf_tensor *rstd);

/* tangent of mf_nn_ln_fwd's output for tangents tx of x and tc of c (either
   NULL for zero), w and b constant */
int mf_nn_ln_jvp(mf_tensor *ty, const mf_tensor *tx, const mf_tensor *tc, const mf_tensor *x, const mf_tensor *mean,
                 const mf_tensor *rstd, const mf_tensor *w, const mf_tensor *b, const mf_tensor *c, enum mf_activation act);

/* Softmax over the last dim of contiguous rows (cl/softmax.cl), by mode:
   softmax, log_softmax: out = f(a); softmax_d: out = b (a - sum a b) with b
   the softmax; log_softmax_vjp: out = a - exp(b) sum a, log_softmax_jvp:
   out = a - sum exp(b) a, with b the log_softmax. *out is allocated. */
int mf_nn_softmax(mf_tensor *out, const mf_tensor *a, const mf_tensor *b, enum mf_softmax_mode mode);

/* LayerNorm without affine, then adaLN modulation, over x {B N, cols}
   (contiguous, offset 0) with shift and scale {B, cols}: row r uses sample
   r / N. y = xh (1 + scale) + shift, xh = (x - mean) rstd. */
int mf_nn_lnm_fwd(mf_tensor *y, mf_tensor *mean, mf_tensor *rstd, const mf_tensor *x, const mf_tensor *sh,
                  const mf_tensor *sc, int N, double eps);
/* its cotangents: gx, and gsh = sum over tokens g, gsc = sum over tokens g xh ({B, cols}) */
int mf_nn_lnm_bwd(mf_tensor *gx, mf_tensor *gsh, mf_tensor *gsc, const mf_tensor *g, const mf_tensor *x,
                  const mf_tensor *mean, const mf_tensor *rstd, const mf_tensor *sc, int N);
/* its tangent for tangents of x, shift, scale (each NULL for zero) */
int mf_nn_lnm_jvp(mf_tensor *ty, const mf_tensor *tx, const mf_tensor *tsh, const mf_tensor *tsc, const mf_tensor *x,
                  const mf_tensor *mean, const mf_tensor *rstd, const mf_tensor *sc, int N);

#endif
