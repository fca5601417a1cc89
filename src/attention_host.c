/* Attention on CPU OpenCL devices through the host's OpenBLAS: one native
   kernel (blas_host.h) per forward and per backward, the heads split over
   the cores, and for each head, a block of R query rows at a time (the whole
   head while its scores fit mf_attn_host_block's bytes, 1 MiB):
     forward:  S = s Q K^T, L = max_j S + log sum_j exp(S - max_j S),
               P = exp(S - L) (rows), O = P V
     backward: P again from S and L, dP = G V^T, D = rowsum(G o O),
               dS = P o (dP - D), dV = P^T G, dQ = s dS K, dK = s dS^T Q
   (dV and dK sum over the blocks of rows). The scores live in per-thread
   host scratch (2 R M elements), never on the device; or, where the caller
   asks to keep them (small scores), the forward writes P {BH, N, M} to a
   tensor and the backward reads it instead of recomputing it. */
#include "attention_host.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blas_host.h"
#include "ops_elementwise.h"
#include "ops_nn.h"
#include "runtime.h"

static size_t block_bytes = 1 << 20; /* bytes of scores per block of rows */

int mf_attn_host(void) { return mf_nn_get_path() < 0 && mf_host_blas_get() != NULL; }

size_t mf_attn_host_block(size_t bytes) {
  size_t prev = block_bytes;
  if (bytes) block_bytes = bytes;
  return prev;
}

#if defined(__x86_64__) && defined(__GNUC__)
#define MF_VEC __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MF_VEC
#endif
#define LANES 16 /* independent partial maxima and sums: the loops vectorize without reassociation */
/* a > b ? a : b becomes one vector max only where NaNs and signed zeros may be ignored */
#if defined(__GNUC__) && !defined(__clang__)
#define MF_MAXVEC __attribute__((optimize("finite-math-only", "no-signed-zeros")))
#else
#define MF_MAXVEC
#endif

/* e^x in f32 for x <= 88: x = k ln2 + r, |r| <= ln2 / 2, e^r by Cephes'
   expf polynomial (about 1 ulp), 2^k in the exponent bits; 0 below -87. */
static inline float exp_f32(float x) {
  float c = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
  float k = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest (1.5 2^23) */
  float r = c - k * 0.693359375f + k * 2.12194440e-4f;              /* ln2 in two parts */
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t b = ((int32_t)k + 127) << 23;
  float two_k;
  memcpy(&two_k, &b, sizeof two_k);
  return x < -87.0f ? 0.0f : p * two_k;
}

/* the largest of s[0..m-1] (m >= 1; -FLT_MAX for a row of -inf or NaN) */
MF_VEC MF_MAXVEC static float row_max_f32(const float *s, int m) {
  float mx[LANES];
  for (int l = 0; l < LANES; ++l) mx[l] = -FLT_MAX;
  int j = 0;
  for (; j + LANES <= m; j += LANES)
    for (int l = 0; l < LANES; ++l) mx[l] = s[j + l] > mx[l] ? s[j + l] : mx[l];
  for (; j < m; ++j) mx[0] = s[j] > mx[0] ? s[j] : mx[0];
  float top = mx[0];
  for (int l = 1; l < LANES; ++l) top = mx[l] > top ? mx[l] : top;
  return top;
}

/* rows of S (r x m) become P = exp(S - L), L (r) = the rows' log-sum-exps */
MF_VEC static void softmax_rows_f32(float *s, float *lse, int r, int m) {
  for (int i = 0; i < r; ++i, s += m) {
    float z[LANES] = {0};
    float top = row_max_f32(s, m);
    int j = 0;
    for (; j + LANES <= m; j += LANES)
      for (int l = 0; l < LANES; ++l) z[l] += (s[j + l] = exp_f32(s[j + l] - top));
    for (; j < m; ++j) z[0] += (s[j] = exp_f32(s[j] - top));
    float sum = 0.0f;
    for (int l = 0; l < LANES; ++l) sum += z[l];
    float inv = 1.0f / sum;
    for (j = 0; j < m; ++j) s[j] *= inv;
    lse[i] = top + logf(sum);
  }
}

static void softmax_rows_f64(double *s, double *lse, int r, int m) {
  for (int i = 0; i < r; ++i, s += m) {
    double top = -INFINITY, sum = 0.0;
    for (int j = 0; j < m; ++j) top = s[j] > top ? s[j] : top;
    for (int j = 0; j < m; ++j) sum += (s[j] = exp(s[j] - top));
    double inv = 1.0 / sum;
    for (int j = 0; j < m; ++j) s[j] *= inv;
    lse[i] = top + log(sum);
  }
}

/* rows of S become P = exp(S - L) */
MF_VEC static void exp_rows_f32(float *s, const float *lse, int r, int m) {
  for (int i = 0; i < r; ++i, s += m)
    for (int j = 0; j < m; ++j) s[j] = exp_f32(s[j] - lse[i]);
}

static void exp_rows_f64(double *s, const double *lse, int r, int m) {
  for (int i = 0; i < r; ++i, s += m)
    for (int j = 0; j < m; ++j) s[j] = exp(s[j] - lse[i]);
}

/* dP (r x m) becomes dS = P o (dP - D), D_i = G_i . O_i (rows of e) */
MF_VEC static void ds_rows_f32(float *dp, const float *p, const float *g, const float *o, int r, int m, int e) {
  for (int i = 0; i < r; ++i, dp += m, p += m, g += e, o += e) {
    float acc[LANES] = {0};
    int c = 0;
    for (; c + LANES <= e; c += LANES)
      for (int l = 0; l < LANES; ++l) acc[l] += g[c + l] * o[c + l];
    for (; c < e; ++c) acc[0] += g[c] * o[c];
    float d = 0.0f;
    for (int l = 0; l < LANES; ++l) d += acc[l];
    for (int j = 0; j < m; ++j) dp[j] = p[j] * (dp[j] - d);
  }
}

static void ds_rows_f64(double *dp, const double *p, const double *g, const double *o, int r, int m, int e) {
  for (int i = 0; i < r; ++i, dp += m, p += m, g += e, o += e) {
    double d = 0.0;
    for (int c = 0; c < e; ++c) d += g[c] * o[c];
    for (int j = 0; j < m; ++j) dp[j] = p[j] * (dp[j] - d);
  }
}

/* What a native kernel gets: host addresses of the operands (mapped around
   it), the scratch (freed by the kernel), the sizes and the BLAS. */
typedef struct {
  void *q, *k, *v, *g, *o, *lse, *dq, *dk, *dv, *p; /* p: the kept P, or NULL */
  void *scratch;
  size_t per_thread; /* scratch elements per thread */
  int bh, n, m, d, e, rows, f64;
  double s;
  mf_host_blas blas;
} ah_args;

/* row-major C = alpha op(A) op(B) + beta C, ta/tb: whether A/B are transposed */
static void gemm(const ah_args *a, int ta, int tb, int m, int n, int k, double alpha, const void *A, int lda,
                 const void *B, int ldb, double beta, void *C, int ldc) {
  int TA = ta ? MF_CBLAS_TRANS : MF_CBLAS_NOTRANS, TB = tb ? MF_CBLAS_TRANS : MF_CBLAS_NOTRANS;
  if (a->f64) a->blas.dgemm(MF_CBLAS_ROW, TA, TB, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
  else a->blas.sgemm(MF_CBLAS_ROW, TA, TB, m, n, k, (float)alpha, A, lda, B, ldb, (float)beta, C, ldc);
}

/* the address of element i of x (f32 or f64) */
static void *at(const ah_args *a, void *x, size_t i) { return (char *)x + i * (a->f64 ? 8 : 4); }

/* forward over heads lo..hi-1 with thread t's scratch */
static void fwd_heads(void *p, int t, int64_t lo, int64_t hi) {
  const ah_args *a = p;
  int n = a->n, m = a->m, d = a->d, e = a->e;
  void *S = at(a, a->scratch, (size_t)t * a->per_thread);
  for (int64_t h = lo; h < hi; ++h) {
    void *Q = at(a, a->q, (size_t)h * n * d), *K = at(a, a->k, (size_t)h * m * d);
    void *V = at(a, a->v, (size_t)h * m * e), *O = at(a, a->o, (size_t)h * n * e);
    void *L = at(a, a->lse, (size_t)h * n);
    for (int i0 = 0; i0 < n; i0 += a->rows) {
      int r = n - i0 < a->rows ? n - i0 : a->rows;
      if (a->p) S = at(a, a->p, ((size_t)h * n + i0) * m); /* P kept: written in place */
      gemm(a, 0, 1, r, m, d, a->s, at(a, Q, (size_t)i0 * d), d, K, d, 0.0, S, m);
      if (a->f64) softmax_rows_f64(S, at(a, L, i0), r, m);
      else softmax_rows_f32(S, at(a, L, i0), r, m);
      gemm(a, 0, 0, r, e, m, 1.0, S, m, V, e, 0.0, at(a, O, (size_t)i0 * e), e);
    }
  }
}

/* backward over heads lo..hi-1 with thread t's scratch */
static void bwd_heads(void *p, int t, int64_t lo, int64_t hi) {
  const ah_args *a = p;
  int n = a->n, m = a->m, d = a->d, e = a->e;
  void *dS = at(a, a->scratch, (size_t)t * a->per_thread), *P = a->p ? NULL : at(a, dS, (size_t)a->rows * m);
  for (int64_t h = lo; h < hi; ++h) {
    void *Q = at(a, a->q, (size_t)h * n * d), *K = at(a, a->k, (size_t)h * m * d);
    void *V = at(a, a->v, (size_t)h * m * e), *O = at(a, a->o, (size_t)h * n * e);
    void *G = at(a, a->g, (size_t)h * n * e), *L = at(a, a->lse, (size_t)h * n);
    void *dQ = at(a, a->dq, (size_t)h * n * d), *dK = at(a, a->dk, (size_t)h * m * d);
    void *dV = at(a, a->dv, (size_t)h * m * e);
    for (int i0 = 0; i0 < n; i0 += a->rows) {
      int r = n - i0 < a->rows ? n - i0 : a->rows;
      double beta = i0 > 0 ? 1.0 : 0.0; /* dK, dV: the first block writes, the others add */
      void *Qi = at(a, Q, (size_t)i0 * d), *Gi = at(a, G, (size_t)i0 * e);
      if (a->p) P = at(a, a->p, ((size_t)h * n + i0) * m); /* kept by the forward */
      else {
        gemm(a, 0, 1, r, m, d, a->s, Qi, d, K, d, 0.0, P, m);
        if (a->f64) exp_rows_f64(P, at(a, L, i0), r, m);
        else exp_rows_f32(P, at(a, L, i0), r, m);
      }
      gemm(a, 0, 1, r, m, e, 1.0, Gi, e, V, e, 0.0, dS, m);
      if (a->f64) ds_rows_f64(dS, P, Gi, at(a, O, (size_t)i0 * e), r, m, e);
      else ds_rows_f32(dS, P, Gi, at(a, O, (size_t)i0 * e), r, m, e);
      gemm(a, 1, 0, m, e, r, 1.0, P, m, Gi, e, beta, dV, e);
      gemm(a, 0, 0, r, d, m, a->s, dS, m, K, d, 0.0, at(a, dQ, (size_t)i0 * d), d);
      gemm(a, 1, 0, m, d, r, a->s, dS, m, Qi, d, beta, dK, d);
    }
  }
}

static void CL_CALLBACK run_fwd(void *p) {
  ah_args *a = p;
  mf_host_split(a->bh, fwd_heads, a);
  free(a->scratch);
}

static void CL_CALLBACK run_bwd(void *p) {
  ah_args *a = p;
  mf_host_split(a->bh, bwd_heads, a);
  free(a->scratch);
}

/* t is {bh, rows, cols} (cols < 0: {bh, rows}) of dtype dt, contiguous */
static int need(const char *what, const mf_tensor *t, mf_dtype dt, int64_t bh, int64_t rows, int64_t cols) {
  if (t->dtype != dt)
    return mf_fail("host attention: %s is %s, expected %s", what, mf_dtype_name(t->dtype), mf_dtype_name(dt));
  int nd = cols < 0 ? 2 : 3;
  if (t->ndim != nd || t->shape[0] != bh || t->shape[1] != rows || (nd == 3 && t->shape[2] != cols)) {
    if (nd == 2) return mf_fail("host attention: %s must be {%lld, %lld}", what, (long long)bh, (long long)rows);
    return mf_fail("host attention: %s must be {%lld, %lld, %lld}", what, (long long)bh, (long long)rows,
                   (long long)cols);
  }
  if (!mf_is_contiguous(t)) return mf_fail("host attention: %s must be contiguous", what);
  return 0;
}

/* the sizes of q {BH, N, d}, k {BH, M, d}, v {BH, M, e}, the BLAS, and the
   rows per block; o and lse checked when given */
static int setup(ah_args *a, const mf_tensor *q, const mf_tensor *k, const mf_tensor *v, const mf_tensor *o,
                 const mf_tensor *lse, double s) {
  memset(a, 0, sizeof *a);
  const mf_host_blas *blas = mf_host_blas_get();
  if (!blas) return mf_fail("host attention: the host BLAS does not serve this device (a GPU, no OpenBLAS, or "
                            "MOONFLOW_GEMM)");
  mf_dtype dt = q->dtype;
  if (dt != MF_F32 && dt != MF_F64) return mf_fail("host attention: dtype %s, expected f32 or f64", mf_dtype_name(dt));
  if (q->ndim != 3 || k->ndim != 3 || v->ndim != 3)
    return mf_fail("host attention: q, k, v must be 3-D {B h, rows, cols}");
  int64_t bh = q->shape[0], n = q->shape[1], d = q->shape[2], m = k->shape[1], e = v->shape[2];
  if (need("q", q, dt, bh, n, d) || need("k", k, dt, bh, m, d) || need("v", v, dt, bh, m, e) ||
      (o && need("o", o, dt, bh, n, e)))
    return -1;
  if (m < 1) return mf_fail("host attention: no keys (M = 0)");
  if (d < 1 || e < 1) return mf_fail("host attention: head sizes d = %lld, e = %lld, expected at least 1",
                                     (long long)d, (long long)e);
  if (lse && (lse->dtype != dt || lse->ndim != 2 || lse->shape[0] != bh || lse->shape[1] != n ||
              !mf_is_contiguous(lse)))
    return mf_fail("host attention: the log-sum-exps must be a contiguous %s {%lld, %lld}", mf_dtype_name(dt),
                   (long long)bh, (long long)n);
  size_t esz = dt == MF_F64 ? 8 : 4;
  int64_t rows = (int64_t)(block_bytes / ((size_t)m * esz));
  rows = rows < 1 ? 1 : rows > n ? n : rows;
  *a = (ah_args){.bh = (int)bh, .n = (int)n, .m = (int)m, .d = (int)d, .e = (int)e, .rows = (int)rows,
                 .f64 = dt == MF_F64, .s = s, .blas = *blas};
  return 0;
}

/* scratch of `blocks` R x M blocks for each thread that mf_host_split will use */
static int alloc_scratch(ah_args *a, int blocks) {
  a->per_thread = (size_t)blocks * (size_t)a->rows * (size_t)a->m;
  int parts = a->bh < a->blas.threads ? a->bh : a->blas.threads;
  if (parts < 1) parts = 1;
  size_t bytes = (size_t)parts * a->per_thread * (a->f64 ? 8 : 4);
  a->scratch = malloc(bytes ? bytes : 1);
  if (!a->scratch) return mf_fail("host attention: no host memory for %zu bytes of scores", bytes);
  return 0;
}

static int new3(mf_tensor *t, mf_dtype dt, int bh, int rows, int cols) {
  int64_t sh[3] = {bh, rows, cols};
  return mf_empty(t, dt, cols >= 0 ? 3 : 2, sh);
}

int mf_attn_host_fwd(mf_tensor *o, mf_tensor *lse, mf_tensor *p, const mf_tensor *q, const mf_tensor *k,
                     const mf_tensor *v, double s) {
  ah_args a;
  if (setup(&a, q, k, v, NULL, NULL, s)) return -1;
  if (new3(o, q->dtype, a.bh, a.n, a.e)) return -1;
  if (new3(lse, q->dtype, a.bh, a.n, -1)) goto fail_o;
  if (p && new3(p, q->dtype, a.bh, a.n, a.m)) goto fail_lse;
  if ((int64_t)a.bh * a.n == 0) return 0; /* nothing to compute */
  if (alloc_scratch(&a, p ? 0 : 1)) goto fail_p;
  const mf_tensor *ts[6] = {q, k, v, o, lse, p};
  void **slots[6] = {&a.q, &a.k, &a.v, &a.o, &a.lse, &a.p};
  if (mf_host_enqueue(run_fwd, &a, sizeof a, p ? 6 : 5, ts, slots, p ? 3 : 2) == 0) return 0;
  free(a.scratch);
fail_p:
  if (p) mf_tensor_free(p);
fail_lse:
  mf_tensor_free(lse);
fail_o:
  mf_tensor_free(o);
  return -1;
}

int mf_attn_host_bwd(mf_tensor *dq, mf_tensor *dk, mf_tensor *dv, const mf_tensor *g, const mf_tensor *q,
                     const mf_tensor *k, const mf_tensor *v, const mf_tensor *o, const mf_tensor *lse,
                     const mf_tensor *p, double s) {
  ah_args a;
  if (setup(&a, q, k, v, o, lse, s) || need("the cotangent", g, q->dtype, a.bh, a.n, a.e) ||
      (p && need("the kept P", p, q->dtype, a.bh, a.n, a.m)))
    return -1;
  if (new3(dq, q->dtype, a.bh, a.n, a.d)) return -1;
  if (new3(dk, q->dtype, a.bh, a.m, a.d)) goto fail_dq;
  if (new3(dv, q->dtype, a.bh, a.m, a.e)) goto fail_dk;
  if ((int64_t)a.bh * a.m == 0) return 0;
  if (a.n == 0) { /* no queries: dK = dV = 0 */
    if (mf_fill(dk, 0.0) || mf_fill(dv, 0.0)) goto fail_dv;
    return 0;
  }
  if (alloc_scratch(&a, p ? 1 : 2)) goto fail_dv;
  /* read: g, q, k, v, o, lse and the kept P; written: dq, dk, dv */
  const mf_tensor *ts[10] = {g, q, k, v, o, lse};
  void **slots[10] = {&a.g, &a.q, &a.k, &a.v, &a.o, &a.lse};
  int nt = 6;
  if (p) ts[nt] = p, slots[nt++] = &a.p;
  ts[nt] = dq, slots[nt++] = &a.dq;
  ts[nt] = dk, slots[nt++] = &a.dk;
  ts[nt] = dv, slots[nt++] = &a.dv;
  if (mf_host_enqueue(run_bwd, &a, sizeof a, nt, ts, slots, 3) == 0) return 0;
  free(a.scratch);
fail_dv:
  mf_tensor_free(dv);
fail_dk:
  mf_tensor_free(dk);
fail_dq:
  mf_tensor_free(dq);
  return -1;
}
