/* Launchers of cl/nn.cl (fused layer kernels). */
#include "ops_nn.h"

#include <stdio.h>

#include "launch.h"
#include "runtime.h"

#define NN_WG 64    /* work-group size of the row kernels (cl/nn.cl) */
#define NN_CHUNK 64 /* rows per partial column sum */

/* kernel shape: -1 by device type, 0 runs (nn_*), 1 work-groups (nnwg_*) */
static int nn_path = -1;

void mf_nn_set_path(int path) { nn_path = path; }
int mf_nn_get_path(void) { return nn_path; }

static int is_gpu(void) {
  if (nn_path >= 0) return nn_path;
  mf_runtime *r = mf_rt();
  return r && r->info.is_gpu;
}

/* Row kernels: in the work-group shape one group per row; in the run shape
   work-items taking runs of rows (nn_run), as many as mf_grid gives the
   elements. */
static int launch_rows(cl_kernel k, int rows, int cols) {
  if (!rows) return 0;
  if (is_gpu()) return mf_launch(k, (size_t)rows * NN_WG, NN_WG);
  size_t g = mf_grid((size_t)rows * (size_t)(cols > 0 ? cols : 1));
  return mf_launch(k, g < (size_t)rows ? g : (size_t)rows, 0);
}

#define ACT_NAME(name, A, B) #name,
static const char *const act_names[] = {MF_ACTIVATIONS(ACT_NAME, _, _)};

typedef struct argl_s {
  cl_kernel k;
  cl_uint i;
  int err;
} argl;

static void a_mem(argl *a, const mf_tensor *t) {
  if (a->err) return;
  cl_int e = clSetKernelArg(a->k, a->i++, sizeof(cl_mem), &t->st->buf);
  if (e != CL_SUCCESS) a->err = mf_fail("clSetKernelArg %u: %s", a->i, mf_cl_error_name(e));
}
static void a_int(argl *a, int v) {
  if (a->err) return;
  cl_int x = v;
  cl_int e = clSetKernelArg(a->k, a->i++, sizeof x, &x);
  if (e != CL_SUCCESS) a->err = mf_fail("clSetKernelArg %u: %s", a->i, mf_cl_error_name(e));
}
static void a_real(argl *a, mf_dtype dt, double v) {
  if (a->err) return;
  cl_float f = (cl_float)v;
  cl_double d = v;
  cl_int e = dt == MF_F64 ? clSetKernelArg(a->k, a->i++, sizeof d, &d) : clSetKernelArg(a->k, a->i++, sizeof f, &f);
  if (e != CL_SUCCESS) a->err = mf_fail("clSetKernelArg %u: %s", a->i, mf_cl_error_name(e));
}
/* an optional operand: (buffer, offset) of t, or of `stand` with offset 0 */
static void a_opt(argl *a, const mf_tensor *t, const mf_tensor *stand) {
  a_mem(a, t ? t : stand);
  a_int(a, t ? (int)t->offset : 0);
}

static int rows_cols(const mf_tensor *x, int *rows, int *cols) {
  int64_t c = x->ndim ? x->shape[x->ndim - 1] : 1;
  int64_t n = mf_numel(x);
  *cols = (int)c;
  *rows = c ? (int)(n / c) : 0;
  return 0;
}

/* a contiguous operand of dt with n elements (offset 0 required when !any_offset) */
static int need(const char *fn, const char *what, const mf_tensor *t, mf_dtype dt, int64_t n, int zero_off) {
  if (!t) return 0;
  if (t->dtype != dt) return mf_fail("%s: %s is %s, expected %s", fn, what, mf_dtype_name(t->dtype), mf_dtype_name(dt));
  if (!mf_is_contiguous(t) || (zero_off && t->offset != 0)) return mf_fail("%s: %s must be contiguous", fn, what);
  if (mf_numel(t) != n) return mf_fail("%s: %s has %lld elements, expected %lld", fn, what, (long long)mf_numel(t), (long long)n);
  return 0;
}

static int start(argl *a, const char *prefix, mf_dtype dt) {
  a->i = 0;
  a->err = 0;
  a->k = mf_typed_kernel(prefix, dt);
  return a->k ? 0 : -1;
}

/* the kernel "<base>_<act>_<dtype>" */
static int start_act(argl *a, const char *base, enum mf_activation act, mf_dtype dt) {
  char prefix[64];
  a->k = NULL;
  a->err = 0;
  if ((int)act < 0 || act >= MF_ACTIVATION_COUNT) return mf_fail("unknown activation code %d", (int)act);
  snprintf(prefix, sizeof prefix, "%s%s_%s", is_gpu() ? "nnwg" : "nn", base + 2, act_names[act]);
  return start(a, prefix, dt);
}

static int fresh(mf_tensor *out, const mf_tensor *like) { return mf_empty(out, like->dtype, like->ndim, like->shape); }

int mf_nn_bias_act(mf_tensor *y, mf_tensor *z, const mf_tensor *b, const mf_tensor *r, enum mf_activation act) {
  int rows, cols;
  rows_cols(z, &rows, &cols);
  mf_dtype dt = z->dtype;
  if (need("bias_act", "input", z, dt, mf_numel(z), 1) || need("bias_act", "bias", b, dt, cols, 0) ||
      need("bias_act", "residual", r, dt, mf_numel(z), 0))
    return -1;
  argl a;
  if (start_act(&a, "nn_bias_act", act, dt)) return -1;
  if (act != MF_ACTIVATION_none) {
    if (fresh(y, z)) return -1;
  } else {
    mf_view_of(y, z);
  }
  a_mem(&a, y);
  a_mem(&a, z);
  a_opt(&a, b, z);
  a_int(&a, b != NULL);
  a_opt(&a, r, z);
  a_int(&a, r != NULL);
  a_int(&a, rows);
  a_int(&a, cols);
  if (a.err || launch_rows(a.k, rows, cols)) {
    mf_tensor_free(y);
    return -1;
  }
  return 0;
}

int mf_nn_act_grad(mf_tensor *gp, const mf_tensor *g, const mf_tensor *pre, enum mf_activation act) {
  int64_t n = mf_numel(pre);
  if (need("act_grad", "pre-activation", pre, pre->dtype, n, 1) || need("act_grad", "gradient", g, pre->dtype, n, 1))
    return -1;
  argl a;
  if (start_act(&a, "nn_act_grad", act, pre->dtype) || fresh(gp, pre)) return -1;
  a_mem(&a, gp);
  a_mem(&a, g);
  a_mem(&a, pre);
  a_int(&a, (int)n);
  if (a.err || mf_launch(a.k, mf_grid((size_t)n), 0)) {
    mf_tensor_free(gp);
    return -1;
  }
  return 0;
}

/* pass 1 of the column sums into part ([P, cols], or [P, 2 cols] when ln) */
static int colsum_part(mf_tensor *part, const mf_tensor *a, const mf_tensor *x, const mf_tensor *mean,
                       const mf_tensor *rstd, int rows, int cols, int P) {
  argl k;
  if (start(&k, is_gpu() ? "nnwg_colsum_part" : "nn_colsum_part", a->dtype)) return -1;
  int ln = x != NULL;
  a_mem(&k, part);
  a_mem(&k, a);
  a_mem(&k, ln ? x : a);
  a_mem(&k, ln ? mean : a);
  a_mem(&k, ln ? rstd : a);
  a_int(&k, ln);
  a_int(&k, rows);
  a_int(&k, cols);
  a_int(&k, NN_CHUNK);
  a_int(&k, P);
  if (k.err) return -1;
  /* CPUs: a work-item per chunk; GPUs: per (chunk, column) */
  return mf_launch(k.k, is_gpu() ? mf_grid((size_t)P * (size_t)cols) : (size_t)P, 0);
}

/* pass 2: out[c] (+)= sum_r a[oa + r lda + c], r < rows, c < cols */
static int colsum_strided(mf_tensor *out, const mf_tensor *a, int oa, int lda, int rows, int cols, int acc) {
  argl k;
  if (start(&k, "nn_colsum", a->dtype)) return -1;
  a_mem(&k, out);
  a_int(&k, (int)out->offset);
  a_mem(&k, a);
  a_int(&k, oa);
  a_int(&k, lda);
  a_int(&k, rows);
  a_int(&k, cols);
  a_int(&k, acc);
  if (k.err) return -1;
  return mf_launch(k.k, mf_grid((size_t)cols), 0);
}

/* over a contiguous [rows, cols] block */
static int colsum_rows(mf_tensor *out, const mf_tensor *a, int rows, int cols, int acc) {
  return colsum_strided(out, a, (int)a->offset, cols, rows, cols, acc);
}

int mf_nn_colsum(mf_tensor *out, const mf_tensor *x, int acc) {
  int rows, cols;
  rows_cols(x, &rows, &cols);
  if (need("colsum", "input", x, x->dtype, mf_numel(x), 1)) return -1;
  if (acc) {
    if (need("colsum", "output", out, x->dtype, cols, 0)) return -1;
  } else {
    int64_t sh[1] = {cols};
    if (mf_empty(out, x->dtype, 1, sh)) return -1;
  }
  int rc;
  if (rows <= NN_CHUNK) {
    rc = colsum_rows(out, x, rows, cols, acc);
  } else {
    int P = (rows + NN_CHUNK - 1) / NN_CHUNK;
    mf_tensor part;
    int64_t ps[2] = {P, cols};
    rc = mf_empty(&part, x->dtype, 2, ps);
    if (!rc) {
      rc = colsum_part(&part, x, NULL, NULL, NULL, rows, cols, P) || colsum_rows(out, &part, P, cols, acc);
      mf_tensor_free(&part);
    }
  }
  if (rc && !acc) mf_tensor_free(out);
  return rc;
}

static int ln_checks(const char *fn, const mf_tensor *x, const mf_tensor *w, const mf_tensor *b, const mf_tensor *c,
                     int cols) {
  mf_dtype dt = x->dtype;
  return need(fn, "input", x, dt, mf_numel(x), 1) || need(fn, "weight", w, dt, cols, 0) ||
         need(fn, "bias", b, dt, cols, 0) || need(fn, "added input", c, dt, mf_numel(x), 0);
}

int mf_nn_ln_fwd(mf_tensor *y, mf_tensor *mean, mf_tensor *rstd, const mf_tensor *x, const mf_tensor *w,
                 const mf_tensor *b, const mf_tensor *c, double eps, enum mf_activation act) {
  int rows, cols;
  rows_cols(x, &rows, &cols);
  if (ln_checks("layer_norm", x, w, b, c, cols)) return -1;
  argl a;
  if (start_act(&a, "nn_ln_fwd", act, x->dtype)) return -1;
  int64_t rs[1] = {rows};
  if (fresh(y, x)) return -1;
  if (mf_empty(mean, x->dtype, 1, rs)) { mf_tensor_free(y); return -1; }
  if (mf_empty(rstd, x->dtype, 1, rs)) { mf_tensor_free(y); mf_tensor_free(mean); return -1; }
  a_mem(&a, y);
  a_mem(&a, mean);
  a_mem(&a, rstd);
  a_mem(&a, x);
  a_opt(&a, w, x);
  a_opt(&a, b, x);
  a_opt(&a, c, x);
  a_int(&a, rows);
  a_int(&a, cols);
  a_real(&a, x->dtype, eps);
  a_int(&a, (w ? 1 : 0) | (b ? 2 : 0) | (c ? 4 : 0));
  if (a.err || launch_rows(a.k, rows, cols)) {
    mf_tensor_free(y);
    mf_tensor_free(mean);
    mf_tensor_free(rstd);
    return -1;
  }
  return 0;
}

int mf_nn_ln_bwd(mf_tensor *gx, mf_tensor *gpre, const mf_tensor *g, const mf_tensor *x, const mf_tensor *mean,
                 const mf_tensor *rstd, const mf_tensor *w, const mf_tensor *b, const mf_tensor *c, enum mf_activation act) {
  int rows, cols;
  rows_cols(x, &rows, &cols);
  if (ln_checks("layer_norm", x, w, b, c, cols) || need("layer_norm", "gradient", g, x->dtype, mf_numel(x), 1) ||
      need("layer_norm", "mean", mean, x->dtype, rows, 1) || need("layer_norm", "rstd", rstd, x->dtype, rows, 1))
    return -1;
  argl a;
  if (start_act(&a, "nn_ln_bwd", act, x->dtype)) return -1;
  if (fresh(gx, x)) return -1;
  if (fresh(gpre, x)) { mf_tensor_free(gx); return -1; }
  a_mem(&a, gx);
  a_mem(&a, gpre);
  a_mem(&a, g);
  a_mem(&a, x);
  a_mem(&a, mean);
  a_mem(&a, rstd);
  a_opt(&a, w, x);
  a_opt(&a, b, x);
  a_opt(&a, c, x);
  a_int(&a, rows);
  a_int(&a, cols);
  a_int(&a, (w ? 1 : 0) | (b ? 2 : 0) | (c ? 4 : 0));
  if (a.err || launch_rows(a.k, rows, cols)) {
    mf_tensor_free(gx);
    mf_tensor_free(gpre);
    return -1;
  }
  return 0;
}

int mf_nn_ln_wgrad_acc(mf_tensor *gw, mf_tensor *gb, const mf_tensor *gpre, const mf_tensor *x,
                       const mf_tensor *mean, const mf_tensor *rstd) {
  int rows, cols;
  rows_cols(x, &rows, &cols);
  mf_dtype dt = x->dtype;
  if (need("layer_norm", "input", x, dt, mf_numel(x), 1) || need("layer_norm", "gradient", gpre, dt, mf_numel(x), 1) ||
      need("layer_norm", "mean", mean, dt, rows, 1) || need("layer_norm", "rstd", rstd, dt, rows, 1) ||
      need("layer_norm", "weight gradient", gw, dt, cols, 0) || need("layer_norm", "bias gradient", gb, dt, cols, 0))
    return -1;
  int P = (rows + NN_CHUNK - 1) / NN_CHUNK;
  mf_tensor part;
  int64_t ps[2] = {P, 2 * (int64_t)cols};
  if (mf_empty(&part, dt, 2, ps)) return -1;
  int rc = colsum_part(&part, gpre, x, mean, rstd, rows, cols, P) ||
           colsum_strided(gw, &part, 0, 2 * cols, P, cols, 1) || colsum_strided(gb, &part, cols, 2 * cols, P, cols, 1);
  mf_tensor_free(&part);
  return rc;
}

int mf_nn_ln_wgrad(mf_tensor *gw, mf_tensor *gb, const mf_tensor *gpre, const mf_tensor *x,
                   const mf_tensor *mean, const mf_tensor *rstd) {
  int rows, cols;
  rows_cols(x, &rows, &cols);
  mf_dtype dt = x->dtype;
  if (need("layer_norm", "input", x, dt, mf_numel(x), 1) || need("layer_norm", "gradient", gpre, dt, mf_numel(x), 1) ||
      need("layer_norm", "mean", mean, dt, rows, 1) || need("layer_norm", "rstd", rstd, dt, rows, 1))
    return -1;
  /* both sums in one {2 cols} buffer: gw = [0, cols), gb = [cols, 2 cols) */
  mf_tensor both;
  int64_t bs[1] = {2 * (int64_t)cols};
  if (mf_empty(&both, dt, 1, bs)) return -1;
  int P = (rows + NN_CHUNK - 1) / NN_CHUNK, rc;
  if (P <= 1) {
    rc = colsum_part(&both, gpre, x, mean, rstd, rows, cols, 1);
  } else {
    mf_tensor part;
    int64_t ps[2] = {P, 2 * (int64_t)cols};
    rc = mf_empty(&part, dt, 2, ps);
    if (!rc) {
      rc = colsum_part(&part, gpre, x, mean, rstd, rows, cols, P) || colsum_rows(&both, &part, P, 2 * cols, 0);
      mf_tensor_free(&part);
    }
  }
  if (!rc) {
    mf_view_of(gw, &both);
    mf_view_of(gb, &both);
    if (mf_narrow(gw, 0, 0, cols) || mf_narrow(gb, 0, cols, cols)) {
      mf_tensor_free(gw);
      mf_tensor_free(gb);
      rc = -1;
    }
  }
  mf_tensor_free(&both);
  return rc;
}

int mf_nn_ln_jvp(mf_tensor *ty, const mf_tensor *tx, const mf_tensor *tc, const mf_tensor *x, const mf_tensor *mean,
                 const mf_tensor *rstd, const mf_tensor *w, const mf_tensor *b, const mf_tensor *c, enum mf_activation act) {
  int rows, cols;
  rows_cols(x, &rows, &cols);
  mf_dtype dt = x->dtype;
  if (ln_checks("layer_norm", x, w, b, c, cols) || need("layer_norm", "x tangent", tx, dt, mf_numel(x), 1) ||
      need("layer_norm", "added tangent", tc, dt, mf_numel(x), 0) || need("layer_norm", "mean", mean, dt, rows, 1) ||
      need("layer_norm", "rstd", rstd, dt, rows, 1))
    return -1;
  argl a;
  if (start_act(&a, "nn_ln_jvp", act, dt)) return -1;
  if (fresh(ty, x)) return -1;
  a_mem(&a, ty);
  a_mem(&a, tx ? tx : x);
  a_opt(&a, tc, x);
  a_mem(&a, x);
  a_mem(&a, mean);
  a_mem(&a, rstd);
  a_opt(&a, w, x);
  a_opt(&a, b, x);
  a_opt(&a, c, x);
  a_int(&a, rows);
  a_int(&a, cols);
  a_int(&a, (w ? 1 : 0) | (b ? 2 : 0) | (c ? 4 : 0) | (tc ? 8 : 0) | (tx ? 16 : 0));
  if (a.err || launch_rows(a.k, rows, cols)) {
    mf_tensor_free(ty);
    return -1;
  }
  return 0;
}

/* row kernels with one shape on every device: runs of rows per work-item */
static int launch_runs(cl_kernel k, int rows, int cols) {
  if (!rows) return 0;
  size_t g = mf_grid((size_t)rows * (size_t)(cols > 0 ? cols : 1));
  return mf_launch(k, g < (size_t)rows ? g : (size_t)rows, 0);
}

#define SM_NAME(name, A, B) #name,
static const char *const sm_names[] = {MF_SOFTMAX_MODES(SM_NAME, _, _)};

int mf_nn_softmax(mf_tensor *out, const mf_tensor *a, const mf_tensor *b, enum mf_softmax_mode mode) {
  int rows, cols;
  rows_cols(a, &rows, &cols);
  mf_dtype dt = a->dtype;
  if ((int)mode < 0 || mode >= MF_SOFTMAX_COUNT) return mf_fail("softmax: unknown mode %d", (int)mode);
  int fwd = mode == MF_SOFTMAX_softmax || mode == MF_SOFTMAX_log_softmax;
  if (dt != MF_F32 && dt != MF_F64) return mf_fail("softmax: dtype %s, expected f32 or f64", mf_dtype_name(dt));
  if (need("softmax", "input", a, dt, mf_numel(a), 1) || (!fwd && need("softmax", "output", b, dt, mf_numel(a), 1)))
    return -1;
  argl k;
  char prefix[48];
  snprintf(prefix, sizeof prefix, "%s_%s", is_gpu() ? "smwg" : "sm", sm_names[mode]);
  if (start(&k, prefix, dt) || fresh(out, a)) return -1;
  a_mem(&k, out);
  a_mem(&k, a);
  a_mem(&k, fwd ? a : b);
  a_int(&k, rows);
  a_int(&k, cols);
  if (k.err || (is_gpu() ? launch_rows(k.k, rows, cols) : launch_runs(k.k, rows, cols))) {
    mf_tensor_free(out);
    return -1;
  }
  return 0;
}

/* LayerNorm + adaLN modulation (cl/nn.cl, lnm_*): x {rows = B N, cols},
   shift and scale {B, cols} */
static int lnm_checks(const char *fn, const mf_tensor *x, const mf_tensor *sh, const mf_tensor *sc, int N, int *rows,
                      int *cols) {
  rows_cols(x, rows, cols);
  mf_dtype dt = x->dtype;
  if (dt != MF_F32 && dt != MF_F64) return mf_fail("%s: dtype %s, expected f32 or f64", fn, mf_dtype_name(dt));
  if (N < 1 || *rows % N) return mf_fail("%s: %d rows are not a whole number of samples of %d tokens", fn, *rows, N);
  int64_t per = (int64_t)(*rows / N) * *cols;
  return need(fn, "input", x, dt, mf_numel(x), 1) || need(fn, "shift", sh, dt, per, 1) ||
         need(fn, "scale", sc, dt, per, 1);
}

int mf_nn_lnm_fwd(mf_tensor *y, mf_tensor *mean, mf_tensor *rstd, const mf_tensor *x, const mf_tensor *sh,
                  const mf_tensor *sc, int N, double eps) {
  int rows, cols;
  if (lnm_checks("layer_norm_modulate", x, sh, sc, N, &rows, &cols)) return -1;
  argl a;
  if (start(&a, "lnm_fwd", x->dtype)) return -1;
  int64_t rs[1] = {rows};
  if (fresh(y, x)) return -1;
  if (mf_empty(mean, x->dtype, 1, rs)) { mf_tensor_free(y); return -1; }
  if (mf_empty(rstd, x->dtype, 1, rs)) { mf_tensor_free(y); mf_tensor_free(mean); return -1; }
  a_mem(&a, y);
  a_mem(&a, mean);
  a_mem(&a, rstd);
  a_mem(&a, x);
  a_mem(&a, sh);
  a_mem(&a, sc);
  a_int(&a, rows);
  a_int(&a, cols);
  a_int(&a, N);
  a_real(&a, x->dtype, eps);
  if (a.err || launch_runs(a.k, rows, cols)) {
    mf_tensor_free(y);
    mf_tensor_free(mean);
    mf_tensor_free(rstd);
    return -1;
  }
  return 0;
}

static int lnm_stats(const char *fn, const mf_tensor *x, const mf_tensor *mean, const mf_tensor *rstd, int rows) {
  return need(fn, "mean", mean, x->dtype, rows, 1) || need(fn, "rstd", rstd, x->dtype, rows, 1);
}

/* work-items of lnm_wgrad: one per sample, up to 16 per compute unit */
static size_t lnm_samples(int B) {
  mf_runtime *r = mf_rt();
  size_t cap = (size_t)(r && r->info.compute_units > 0 ? r->info.compute_units : 1) * 16;
  return (size_t)B < cap ? (size_t)B : cap;
}

int mf_nn_lnm_bwd(mf_tensor *gx, mf_tensor *gsh, mf_tensor *gsc, const mf_tensor *g, const mf_tensor *x,
                  const mf_tensor *mean, const mf_tensor *rstd, const mf_tensor *sc, int N) {
  const char *fn = "layer_norm_modulate";
  int rows, cols;
  if (lnm_checks(fn, x, sc, sc, N, &rows, &cols) || lnm_stats(fn, x, mean, rstd, rows) ||
      need(fn, "gradient", g, x->dtype, mf_numel(x), 1))
    return -1;
  int B = rows / N;
  int64_t ps[2] = {B, cols};
  argl a, w;
  if (start(&a, "lnm_bwd", x->dtype) || start(&w, "lnm_wgrad", x->dtype)) return -1;
  if (fresh(gx, x)) return -1;
  if (mf_empty(gsh, x->dtype, 2, ps)) { mf_tensor_free(gx); return -1; }
  if (mf_empty(gsc, x->dtype, 2, ps)) { mf_tensor_free(gx); mf_tensor_free(gsh); return -1; }
  a_mem(&a, gx);
  a_mem(&a, g);
  a_mem(&a, x);
  a_mem(&a, mean);
  a_mem(&a, rstd);
  a_mem(&a, sc);
  a_int(&a, rows);
  a_int(&a, cols);
  a_int(&a, N);
  a_mem(&w, gsh);
  a_mem(&w, gsc);
  a_mem(&w, g);
  a_mem(&w, x);
  a_mem(&w, mean);
  a_mem(&w, rstd);
  a_int(&w, B);
  a_int(&w, cols);
  a_int(&w, N);
  if (a.err || w.err || launch_runs(a.k, rows, cols) ||
      (B > 0 && cols > 0 && mf_launch(w.k, lnm_samples(B), 0))) {
    mf_tensor_free(gx);
    mf_tensor_free(gsh);
    mf_tensor_free(gsc);
    return -1;
  }
  return 0;
}

int mf_nn_lnm_jvp(mf_tensor *ty, const mf_tensor *tx, const mf_tensor *tsh, const mf_tensor *tsc, const mf_tensor *x,
                  const mf_tensor *mean, const mf_tensor *rstd, const mf_tensor *sc, int N) {
  const char *fn = "layer_norm_modulate";
  int rows, cols;
  if (lnm_checks(fn, x, sc, sc, N, &rows, &cols) || lnm_stats(fn, x, mean, rstd, rows)) return -1;
  int64_t per = (int64_t)(rows / N) * cols;
  if (need(fn, "x tangent", tx, x->dtype, mf_numel(x), 1) || need(fn, "shift tangent", tsh, x->dtype, per, 1) ||
      need(fn, "scale tangent", tsc, x->dtype, per, 1))
    return -1;
  argl a;
  if (start(&a, "lnm_jvp", x->dtype) || fresh(ty, x)) return -1;
  a_mem(&a, ty);
  a_mem(&a, tx ? tx : x);
  a_mem(&a, tsh ? tsh : sc);
  a_mem(&a, tsc ? tsc : sc);
  a_mem(&a, x);
  a_mem(&a, mean);
  a_mem(&a, rstd);
  a_mem(&a, sc);
  a_int(&a, rows);
  a_int(&a, cols);
  a_int(&a, N);
  a_int(&a, (tx ? 1 : 0) | (tsh ? 2 : 0) | (tsc ? 4 : 0));
  if (a.err || launch_runs(a.k, rows, cols)) {
    mf_tensor_free(ty);
    return -1;
  }
  return 0;
}
