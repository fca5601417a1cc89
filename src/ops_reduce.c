#include "ops_reduce.h"

#include <stdio.h>
#include <string.h>

#include "launch.h"
#include "ops_elementwise.h"
#include "runtime.h"

/* out[r * P + p] = fold of row r's elements p, p + P, ... */
static int launch_rows(mf_tensor *out, const char *op, const mf_tensor *a, int rows, int cols, int P) {
  char prefix[32];
  snprintf(prefix, sizeof prefix, "red_%s", op);
  cl_kernel k = mf_typed_kernel(prefix, a->dtype);
  if (!k) return -1;
  cl_int oa = (cl_int)a->offset;
  if (mf_args(k, 6, MF_ARG(out->st->buf), MF_ARG(a->st->buf), MF_ARG(oa), MF_ARG(rows), MF_ARG(cols),
              MF_ARG(P)))
    return -1;
  size_t items = (size_t)rows * (size_t)P, global = items;
  mf_runtime *r = mf_rt();
  if (!r->info.is_gpu) { /* CPU (perf): narrow rows go many to a work-item, ~4096 elements each */
    size_t cu = (size_t)(r->info.compute_units > 0 ? r->info.compute_units : 1);
    size_t want = ((size_t)rows * (size_t)cols + 4095) / 4096;
    if (want > cu * 16) want = cu * 16;
    if (want < global) global = want < 1 ? 1 : want;
  }
  return mf_launch(k, global, 0);
}

/* Partials per row. GPU: enough work-items to fill the device, each folding
   at least 256 elements. CPU: about 16 runs per core in all, each of at least
   4096 elements (a work-item costs PoCL more than a short run saves). */
static int partials(int rows, int cols) {
  mf_runtime *r = mf_rt();
  if (rows < 1) return 1; /* nothing to reduce; avoids dividing by 0 */
  int gpu = r->info.is_gpu, cu = r->info.compute_units > 0 ? r->info.compute_units : 1;
  int want = cu * (gpu ? 2048 : 16), run = gpu ? 256 : 4096;
  int P = (want + rows - 1) / rows;
  if (P > cols / run) P = cols / run;
  return P < 1 ? 1 : P;
}

/* CPU devices (perf): when a is contiguous and the reduced dims are one
   block [A][R][I] with I >= 16 columns after it, redc_* folds the columns in
   place instead of transposing a copy first. 1 done, 0 not applicable, -1 error. */
static int reduce_cols(mf_tensor *out, const char *op, const mf_tensor *a, unsigned mask, int ond,
                       const int64_t *osh) {
  mf_runtime *r = mf_rt();
  if (!r || r->info.is_gpu || !mf_is_contiguous(a) || mask == 0) return 0;
  int d0 = 0, d1;
  while (!(mask >> d0 & 1)) ++d0;
  for (d1 = d0; d1 + 1 < a->ndim && (mask >> (d1 + 1) & 1); ++d1) {}
  if (mask >> (d1 + 1)) return 0; /* more than one block of reduced dims */
  int64_t A = 1, R = 1, I = 1;
  for (int d = 0; d < a->ndim; ++d) *(d < d0 ? &A : d <= d1 ? &R : &I) *= a->shape[d];
  if (I < 16 || R < 1 || A < 1) return 0;
  char name[32];
  snprintf(name, sizeof name, "redc_%s", op);
  cl_kernel k = mf_typed_kernel(name, a->dtype);
  if (!k) return -1;
  if (mf_empty(out, a->dtype, ond, osh)) return -1;
  cl_int oa = (cl_int)a->offset, cA = (cl_int)A, cR = (cl_int)R, cI = (cl_int)I;
  if (mf_args(k, 6, MF_ARG(out->st->buf), MF_ARG(a->st->buf), MF_ARG(oa), MF_ARG(cA), MF_ARG(cR), MF_ARG(cI)) ||
      mf_launch(k, (size_t)A * (size_t)((I + 63) / 64), 0)) {
    mf_tensor_free(out);
    return -1;
  }
  return 1;
}

int mf_reduce(mf_tensor *out, const char *op, const mf_tensor *a, unsigned mask, int keepdim) {
  int perm[MF_MAX_DIMS], np = 0, ond = 0;
  int64_t osh[MF_MAX_DIMS];
  int64_t rows = 1, cols = 1;
  for (int d = 0; d < a->ndim; ++d)
    if (!(mask >> d & 1)) {
      perm[np++] = d;
      rows *= a->shape[d];
    }
  for (int d = 0; d < a->ndim; ++d) {
    if (mask >> d & 1) {
      perm[np++] = d;
      cols *= a->shape[d];
      if (keepdim) osh[ond++] = 1;
    } else {
      osh[ond++] = a->shape[d];
    }
  }
  if (cols == 0 && strcmp(op, "sum") && strcmp(op, "sumsq"))
    return mf_fail("%s of an empty selection has no value", op);
  if (rows > 0 && cols > 0) {
    int done = reduce_cols(out, op, a, mask, ond, osh);
    if (done) return done < 0 ? -1 : 0;
  }
  mf_tensor v, c;
  mf_view_of(&v, a);
  int rc = mf_permute(&v, perm) || mf_contiguous(&c, &v);
  mf_tensor_free(&v);
  if (rc) return -1;
  if (mf_empty(out, a->dtype, ond, osh)) goto fail_c;
  if (cols == 0) {
    rc = mf_fill(out, 0);
    mf_tensor_free(&c);
    if (rc) mf_tensor_free(out);
    return rc;
  }
  int P = partials((int)rows, (int)cols);
  if (P == 1) {
    if (launch_rows(out, op, &c, (int)rows, (int)cols, 1)) goto fail_out;
  } else {
    mf_tensor part;
    int64_t psh[1] = {rows * P};
    if (mf_empty(&part, a->dtype, 1, psh)) goto fail_out;
    /* partial sums of squares add up as plain sums */
    const char *second = strcmp(op, "sumsq") == 0 ? "sum" : op;
    rc = launch_rows(&part, op, &c, (int)rows, (int)cols, P) ||
         launch_rows(out, second, &part, (int)rows, P, 1);
    mf_tensor_free(&part);
    if (rc) goto fail_out;
  }
  mf_tensor_free(&c);
  return 0;
fail_out:
  mf_tensor_free(out);
fail_c:
  mf_tensor_free(&c);
  return -1;
}
