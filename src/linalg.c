/* Symmetric eigenproblems through LAPACKE (dsyevd) and the Frechet distance
   between Gaussians built on them. No hand-written eigensolver: LAPACK's
   divide and conquer does the decomposition, this file only forms products. */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "linalg.h"
#include "mf.h"

int mf_sym_eig(int n, double *a, double *w, int vectors) {
  if (n < 1) return mf_fail("sym_eig: matrix size %d must be positive", n);
  lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, vectors ? 'V' : 'N', 'U', n, a, n, w);
  if (info < 0) return mf_fail("sym_eig: LAPACKE_dsyevd rejected argument %d", (int)-info);
  if (info > 0) return mf_fail("sym_eig: LAPACKE_dsyevd did not converge (info %d) on a %dx%d matrix", (int)info, n, n);
  return 0;
}

/* c = a b for n x n row-major (i-k-j order: rows of b stream) */
static void matmul(int n, const double *a, const double *b, double *c) {
  memset(c, 0, sizeof(double) * (size_t)n * n);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < n; ++k) {
      double v = a[(size_t)i * n + k];
      const double *bk = b + (size_t)k * n;
      double *ci = c + (size_t)i * n;
      for (int j = 0; j < n; ++j) ci[j] += v * bk[j];
    }
}

static int finite_all(size_t m, const double *x) {
  for (size_t i = 0; i < m; ++i)
    if (!isfinite(x[i])) return 0;
  return 1;
}

int mf_trace_sqrt_product(int n, const double *a, const double *b, double *out) {
  if (n < 1) return mf_fail("trace_sqrt_product: matrix size %d must be positive", n);
  size_t nn = (size_t)n * n;
  if (!finite_all(nn, a) || !finite_all(nn, b)) return mf_fail("trace_sqrt_product: a covariance holds inf or nan");
  double *v = malloc(sizeof(double) * nn), *s = malloc(sizeof(double) * nn), *t = malloc(sizeof(double) * nn);
  double *w = malloc(sizeof(double) * (size_t)n);
  int rc = -1;
  if (!v || !s || !t || !w) {
    mf_fail("trace_sqrt_product: out of host memory for %dx%d matrices", n, n);
    goto done;
  }
  /* A = V diag(w) V^T (the symmetric part: both triangles count equally) */
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) v[(size_t)i * n + j] = 0.5 * (a[(size_t)i * n + j] + a[(size_t)j * n + i]);
  if (mf_sym_eig(n, v, w, 1)) goto done;
  /* S = A^1/2 = V diag(sqrt(max(w, 0))) V^T; t = V diag(sqrt w) first */
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < n; ++k) t[(size_t)i * n + k] = v[(size_t)i * n + k] * sqrt(w[k] > 0 ? w[k] : 0);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      double acc = 0;
      for (int k = 0; k < n; ++k) acc += t[(size_t)i * n + k] * v[(size_t)j * n + k];
      s[(size_t)i * n + j] = acc;
    }
  /* M = S B S, symmetrized against rounding */
  matmul(n, s, b, t);
  matmul(n, t, s, v);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < i; ++j) {
      double m = 0.5 * (v[(size_t)i * n + j] + v[(size_t)j * n + i]);
      v[(size_t)i * n + j] = v[(size_t)j * n + i] = m;
    }
  if (mf_sym_eig(n, v, w, 0)) goto done;
  double tr = 0;
  for (int k = 0; k < n; ++k) tr += sqrt(w[k] > 0 ? w[k] : 0);
  *out = tr;
  rc = 0;
done:
  free(v), free(s), free(t), free(w);
  return rc;
}

int mf_frechet(int n, const double *mu_a, const double *a, const double *mu_b, const double *b, double *out,
               double *trs) {
  double tr_sqrt;
  if (mf_trace_sqrt_product(n, a, b, &tr_sqrt)) return -1;
  double d2 = 0, tra = 0, trb = 0;
  for (int i = 0; i < n; ++i) {
    double d = mu_a[i] - mu_b[i];
    d2 += d * d;
    tra += a[(size_t)i * n + i];
    trb += b[(size_t)i * n + i];
  }
  if (!isfinite(d2)) return mf_fail("frechet: a mean holds inf or nan");
  *out = d2 + tra + trb - 2 * tr_sqrt;
  if (trs) *trs = tr_sqrt;
  return 0;
}

/* t's elements as doubles (C order) into a new buffer */
static double *host_doubles(const mf_tensor *t) {
  size_t m = (size_t)mf_numel(t);
  double *d = malloc(sizeof(double) * (m ? m : 1));
  if (!d) {
    mf_fail("frechet: out of host memory for %zu values", m);
    return NULL;
  }
  if (t->dtype == MF_F64) {
    if (mf_to_host(t, d)) goto fail;
  } else if (t->dtype == MF_F32) {
    float *f = malloc(sizeof(float) * (m ? m : 1));
    if (!f) {
      mf_fail("frechet: out of host memory for %zu values", m);
      goto fail;
    }
    if (mf_to_host(t, f)) {
      free(f);
      goto fail;
    }
    for (size_t i = m; i-- > 0;) d[i] = f[i];
    free(f);
  } else {
    mf_fail("frechet: dtype %s, expected f32 or f64", mf_dtype_name(t->dtype));
    goto fail;
  }
  return d;
fail:
  free(d);
  return NULL;
}

int mf_frechet_tensors(const mf_tensor *mu_a, const mf_tensor *cov_a, const mf_tensor *mu_b,
                       const mf_tensor *cov_b, double *out, double *trs) {
  int64_t n = mu_a->ndim == 1 ? mu_a->shape[0] : -1;
  const mf_tensor *all[4] = {mu_a, cov_a, mu_b, cov_b};
  for (int i = 0; i < 4; ++i) {
    int mu = i % 2 == 0;
    const mf_tensor *t = all[i];
    if (t->ndim != (mu ? 1 : 2) || t->shape[0] != n || (!mu && t->shape[1] != n) || n < 1 || n > 4096)
      return mf_fail("frechet: expected means {n} and covariances {n, n} of one n in [1, 4096]");
  }
  double *h[4] = {NULL, NULL, NULL, NULL};
  int rc = -1;
  for (int i = 0; i < 4; ++i)
    if (!(h[i] = host_doubles(all[i]))) goto done;
  rc = mf_frechet((int)n, h[0], h[1], h[2], h[3], out, trs);
done:
  for (int i = 0; i < 4; ++i) free(h[i]);
  return rc;
}
