/* Launchers of cl/attention.cl: flash-style attention over heads, the GPU
   path of mf.nn.F.attention (declared in ops.h). */
#include <stdio.h>

#include "launch.h"
#include "ops.h"
#include "ops_nn.h"
#include "runtime.h"

#define AT_WG 32 /* rows per work-group and per local tile (cl/attention.cl) */

int mf_attn_tiled(int64_t d, int64_t e) {
  if (d < 1 || e < 1 || d > MF_ATTN_DMAX || e > MF_ATTN_DMAX) return 0;
  int path = mf_nn_get_path();
  if (path >= 0) return path;
  mf_runtime *r = mf_rt();
  return r && r->info.is_gpu;
}

/* the shape of one operand: {bh, rows, cols}, dtype dt, contiguous at 0 */
static int need3(const char *what, const mf_tensor *t, mf_dtype dt, int64_t bh, int64_t rows, int64_t cols) {
  if (t->dtype != dt)
    return mf_fail("attention: %s is %s, expected %s", what, mf_dtype_name(t->dtype), mf_dtype_name(dt));
  if (t->ndim != 3 || t->shape[0] != bh || t->shape[1] != rows || (cols >= 0 && t->shape[2] != cols))
    return mf_fail("attention: %s must be {%lld, %lld, %lld}", what, (long long)bh, (long long)rows,
                   (long long)(cols >= 0 ? cols : t->ndim == 3 ? t->shape[2] : 0));
  if (!mf_is_contiguous(t) || t->offset != 0) return mf_fail("attention: %s must be contiguous", what);
  return 0;
}

typedef struct {
  int bh, n, m, d, e;
  mf_dtype dt;
  size_t esz;
} at_dims;

/* q {BH, N, d}, k {BH, M, d}, v {BH, M, e} (o and lse when given) */
static int dims(at_dims *a, const mf_tensor *q, const mf_tensor *k, const mf_tensor *v, const mf_tensor *o,
                const mf_tensor *lse) {
  mf_dtype dt = q->dtype;
  if (dt != MF_F32 && dt != MF_F64) return mf_fail("attention: dtype %s, expected f32 or f64", mf_dtype_name(dt));
  if (q->ndim != 3 || k->ndim != 3 || v->ndim != 3) return mf_fail("attention: q, k, v must be 3-D {B h, rows, cols}");
  int64_t bh = q->shape[0], n = q->shape[1], d = q->shape[2], m = k->shape[1], e = v->shape[2];
  if (need3("q", q, dt, bh, n, d) || need3("k", k, dt, bh, m, d) || need3("v", v, dt, bh, m, e) ||
      (o && need3("o", o, dt, bh, n, e)))
    return -1;
  if (m < 1) return mf_fail("attention: no keys (M = 0)");
  if (lse && (lse->dtype != dt || lse->ndim != 2 || lse->shape[0] != bh || lse->shape[1] != n ||
              !mf_is_contiguous(lse) || lse->offset != 0))
    return mf_fail("attention: the log-sum-exps must be a contiguous %s {%lld, %lld}", mf_dtype_name(dt),
                   (long long)bh, (long long)n);
  if (d < 1 || e < 1 || d > MF_ATTN_DMAX || e > MF_ATTN_DMAX)
    return mf_fail("attention: the tiled kernels take head sizes 1..%d, got d = %lld, e = %lld", MF_ATTN_DMAX,
                   (long long)d, (long long)e);
  *a = (at_dims){(int)bh, (int)n, (int)m, (int)d, (int)e, dt, dt == MF_F64 ? sizeof(cl_double) : sizeof(cl_float)};
  return 0;
}

typedef struct {
  cl_kernel k;
  cl_uint i;
  int err;
  size_t local_bytes;
} atl;

static void a_set(atl *a, size_t sz, const void *p) {
  if (a->err) return;
  cl_int e = clSetKernelArg(a->k, a->i++, sz, p);
  if (e != CL_SUCCESS) a->err = mf_fail("attention: clSetKernelArg %u: %s", a->i - 1, mf_cl_error_name(e));
}
static void a_mem(atl *a, const mf_tensor *t) { a_set(a, sizeof(cl_mem), &t->st->buf); }
static void a_int(atl *a, int v) {
  cl_int x = v;
  a_set(a, sizeof x, &x);
}
/* a local tile of `elems` elements (at least one: a zero size is invalid) */
static void a_local(atl *a, const at_dims *d, int elems) {
  size_t bytes = (size_t)(elems > 0 ? elems : 1) * d->esz;
  a->local_bytes += bytes;
  a_set(a, bytes, NULL);
}
/* the sizes and the scale, common to every kernel */
static void a_dims(atl *a, const at_dims *d, double s) {
  a_int(a, d->n);
  a_int(a, d->m);
  a_int(a, d->d);
  a_int(a, d->e);
  cl_float f = (cl_float)s;
  cl_double x = s;
  if (d->dt == MF_F64) a_set(a, sizeof x, &x);
  else a_set(a, sizeof f, &f);
}

static int start(atl *a, const char *name, mf_dtype dt) {
  a->i = 0;
  a->err = 0;
  a->local_bytes = 0;
  a->k = mf_typed_kernel(name, dt);
  return a->k ? 0 : -1;
}

/* one work-group per AT_WG rows of each head; the tiles must fit the
   device's local memory */
static int go(atl *a, const at_dims *d, int rows) {
  if (a->err) return -1;
  mf_runtime *r = mf_rt();
  cl_ulong have = 0;
  if (clGetDeviceInfo(r->device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof have, &have, NULL) == CL_SUCCESS &&
      a->local_bytes > have)
    return mf_fail("attention: the tiles need %zu bytes of local memory, the device has %llu", a->local_bytes,
                   (unsigned long long)have);
  size_t groups = (size_t)d->bh * (size_t)((rows + AT_WG - 1) / AT_WG);
  return mf_launch(a->k, groups * AT_WG, AT_WG);
}

static int new3(mf_tensor *t, mf_dtype dt, int bh, int rows, int cols) {
  int64_t s[3] = {bh, rows, cols};
  return mf_empty(t, dt, cols >= 0 ? 3 : 2, s);
}

int mf_attn_fwd(mf_tensor *o, mf_tensor *lse, const mf_tensor *q, const mf_tensor *k, const mf_tensor *v, double s) {
  at_dims d;
  atl a;
  if (dims(&d, q, k, v, NULL, NULL) || start(&a, "at_fwd", d.dt)) return -1;
  if (new3(o, d.dt, d.bh, d.n, d.e)) return -1;
  if (new3(lse, d.dt, d.bh, d.n, -1)) {
    mf_tensor_free(o);
    return -1;
  }
  a_mem(&a, o);
  a_mem(&a, lse);
  a_mem(&a, q);
  a_mem(&a, k);
  a_mem(&a, v);
  a_dims(&a, &d, s);
  a_local(&a, &d, AT_WG * d.d);
  a_local(&a, &d, AT_WG * d.e);
  if (go(&a, &d, d.n)) {
    mf_tensor_free(o);
    mf_tensor_free(lse);
    return -1;
  }
  return 0;
}

int mf_attn_bwd(mf_tensor *dq, mf_tensor *dk, mf_tensor *dv, const mf_tensor *g, const mf_tensor *q,
                const mf_tensor *k, const mf_tensor *v, const mf_tensor *o, const mf_tensor *lse, double s) {
  at_dims d;
  atl a, b;
  if (dims(&d, q, k, v, o, lse) || need3("the cotangent", g, d.dt, d.bh, d.n, d.e)) return -1;
  if (start(&a, "at_bwd_q", d.dt) || start(&b, "at_bwd_kv", d.dt)) return -1;
  mf_tensor dd; /* D = rowsum(g o o), from the first kernel to the second */
  int64_t dds[2] = {d.bh, d.n};
  if (mf_empty(&dd, d.dt, 2, dds)) return -1;
  if (new3(dq, d.dt, d.bh, d.n, d.d)) goto fail_dd;
  if (new3(dk, d.dt, d.bh, d.m, d.d)) goto fail_dq;
  if (new3(dv, d.dt, d.bh, d.m, d.e)) goto fail_dk;
  a_mem(&a, dq);
  a_mem(&a, &dd);
  a_mem(&a, g);
  a_mem(&a, q);
  a_mem(&a, k);
  a_mem(&a, v);
  a_mem(&a, o);
  a_mem(&a, lse);
  a_dims(&a, &d, s);
  a_local(&a, &d, AT_WG * d.d);
  a_local(&a, &d, AT_WG * d.e);
  a_mem(&b, dk);
  a_mem(&b, dv);
  a_mem(&b, g);
  a_mem(&b, q);
  a_mem(&b, k);
  a_mem(&b, v);
  a_mem(&b, lse);
  a_mem(&b, &dd);
  a_dims(&b, &d, s);
  a_local(&b, &d, AT_WG * d.d);
  a_local(&b, &d, AT_WG * d.e);
  a_local(&b, &d, 2 * AT_WG);
  if (go(&a, &d, d.n) || go(&b, &d, d.m)) goto fail_dv;
  mf_tensor_free(&dd);
  return 0;
fail_dv:
  mf_tensor_free(dv);
fail_dk:
  mf_tensor_free(dk);
fail_dq:
  mf_tensor_free(dq);
fail_dd:
  mf_tensor_free(&dd);
  return -1;
}

int mf_attn_jvp(mf_tensor *out, const mf_tensor *tq, const mf_tensor *tk, const mf_tensor *tv, const mf_tensor *q,
                const mf_tensor *k, const mf_tensor *v, const mf_tensor *o, const mf_tensor *lse, double s) {
  at_dims d;
  atl a;
  if (dims(&d, q, k, v, o, lse)) return -1;
  if ((tq && need3("the tangent of q", tq, d.dt, d.bh, d.n, d.d)) ||
      (tk && need3("the tangent of k", tk, d.dt, d.bh, d.m, d.d)) ||
      (tv && need3("the tangent of v", tv, d.dt, d.bh, d.m, d.e)))
    return -1;
  if (start(&a, "at_jvp", d.dt) || new3(out, d.dt, d.bh, d.n, d.e)) return -1;
  a_mem(&a, out);
  a_mem(&a, tq ? tq : q); /* stand-ins for absent tangents: never read */
  a_mem(&a, tk ? tk : k);
  a_mem(&a, tv ? tv : v);
  a_mem(&a, q);
  a_mem(&a, k);
  a_mem(&a, v);
  a_mem(&a, o);
  a_mem(&a, lse);
  a_dims(&a, &d, s);
  a_int(&a, (tq ? 1 : 0) | (tk ? 2 : 0) | (tv ? 4 : 0));
  a_local(&a, &d, AT_WG * d.d);
  a_local(&a, &d, AT_WG * d.e);
  a_local(&a, &d, tk ? AT_WG * d.d : 1);
  a_local(&a, &d, tv ? AT_WG * d.e : 1);
  if (go(&a, &d, d.n)) {
    mf_tensor_free(out);
    return -1;
  }
  return 0;
}
