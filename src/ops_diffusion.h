/* Launchers of cl/diffusion.cl. Data are [rows, cols] blocks: rows is the
   first dim (the batch), cols the product of the others. Per-row
   parameters hold rows * k values (or k, broadcast to every row). Each
   returns 0, or -1 with the error set; outputs are fresh contiguous tensors. */
#ifndef MF_OPS_DIFFUSION_H
#define MF_OPS_DIFFUSION_H

#include "kernel_names.h"
#include "tensor.h"

/* Kernel loop shapes: 0 by device type, 1 GPU shapes, 2 CPU shapes, -1
   only asks; returns the previous mode. */
int mf_diffusion_path(int mode);

/* out[1] = a x + b y and out[2] = c x + d y stacked in one {2, shape} tensor
   (both = 1), or just out[1] with x's shape (both = 0); coefficients per
   `kind` from p ({rows} or {1}; {rows, 4} or {4} for MF_NT_general); tr
   swaps b and c (the transposed map, for the vjp). */
int mf_noise_target(mf_tensor *out, const mf_tensor *x, const mf_tensor *y, const mf_tensor *p,
                    enum mf_nt_kind kind, int tr, int both);

/* out {rows} = s w_r sum_j f(a, b): f = (a - b)^2 (sqerr), a b (dot), a^2 (square); w may be NULL */
int mf_rowred(mf_tensor *out, const mf_tensor *a, const mf_tensor *b, const mf_tensor *w, double s,
              enum mf_rowred_mode mode);
/* g_r times the derivative of mf_rowred's row r with respect to a */
int mf_rowred_grad(mf_tensor *out, const mf_tensor *a, const mf_tensor *b, const mf_tensor *w,
                   const mf_tensor *g, double s, enum mf_rowred_mode mode);

/* Elementwise coefficient `which` of t (see cl/diffusion.cl), or its derivative */
int mf_diff_coef(mf_tensor *out, const mf_tensor *t, enum mf_coef which, double param, int deriv);
/* Inverse standard normal CDF */
int mf_ndtri(mf_tensor *out, const mf_tensor *u);

/* RF conversion `op` in float64: out = (wa A_t a + wb B_t b) / D_t, t f64 {rows} or {1} */
int mf_rf_conv(mf_tensor *out, const mf_tensor *a, const mf_tensor *b, const mf_tensor *t,
               enum mf_rf_op op, int wa, int wb);
/* The same in float-float; *_lo may be NULL (zero low parts); olo NULL skips the low output */
int mf_rf_conv_ff(mf_tensor *ohi, mf_tensor *olo, const mf_tensor *ahi, const mf_tensor *alo,
                  const mf_tensor *bhi, const mf_tensor *blo, const mf_tensor *thi,
                  const mf_tensor *tlo, enum mf_rf_op op, int wa, int wb);
/* (hi, lo) f32 pair of an f64 tensor */
int mf_rf_split(mf_tensor *hi, mf_tensor *lo, const mf_tensor *v);

#endif
