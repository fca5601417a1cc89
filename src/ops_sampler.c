/* Launchers of the fused sampler updates (cl/sampler.cl). */
#include <string.h>

#include "ops_sampler.h"
#include "launch.h"
#include "ops_elementwise.h"
#include "runtime.h"

#define MAXOPS 6

/* The packed (contiguous) operands of one launch, released together. */
typedef struct {
  mf_tensor t[MAXOPS];
  int n;
} packs;

static void packs_free(packs *p) {
  for (int i = 0; i < p->n; ++i) mf_tensor_free(&p->t[i]);
  p->n = 0;
}

/* Checks that t matches x in shape and dtype and appends its contiguous form. */
static const mf_tensor *pack(packs *p, const mf_tensor *t, const mf_tensor *x, const char *what) {
  int same = t->ndim == x->ndim;
  for (int i = 0; same && i < x->ndim; ++i) same = t->shape[i] == x->shape[i];
  if (!same) {
    char a[128], b[128];
    mf_fail("%s has shape %s but x has %s", what, mf_shape_str(a, sizeof a, t->ndim, t->shape),
            mf_shape_str(b, sizeof b, x->ndim, x->shape));
    return NULL;
  }
  if (t->dtype != x->dtype) {
    mf_fail("%s is %s but x is %s", what, mf_dtype_name(t->dtype), mf_dtype_name(x->dtype));
    return NULL;
  }
  if (mf_contiguous(&p->t[p->n], t)) return NULL;
  return &p->t[p->n++];
}

/* x is f32 or f64 and fits the kernels' int indices */
static int check_real(const mf_tensor *x, const char *fn) {
  if (x->dtype != MF_F32 && x->dtype != MF_F64)
    return mf_fail("%s needs f32 or f64 tensors, got %s", fn, mf_dtype_name(x->dtype));
  if (mf_numel(x) > 0x7fffffff) return mf_fail("%s: tensor too large", fn);
  return 0;
}

#define ARG_T(t) MF_ARG((t)->st->buf), sizeof(cl_int), (const void *)&(cl_int){(cl_int)(t)->offset}

int mf_sampler_step(mf_tensor *out, mf_tensor *aux, int aux_x, const mf_tensor *x,
                    const mf_tensor *c, const mf_tensor *u, double h, double s, double ha) {
  if (check_real(x, "sampler_step")) return -1;
  packs p = {.n = 0};
  const mf_tensor *px = pack(&p, x, x, "x"), *pc = px ? pack(&p, c, x, "the prediction") : NULL;
  const mf_tensor *pu = pc && u ? pack(&p, u, x, "the unconditional prediction") : pc;
  cl_kernel k = pu ? mf_typed_kernel("smp_step", x->dtype) : NULL;
  int rc = -1;
  out->st = NULL;
  if (aux) aux->st = NULL;
  if (k && !mf_empty(out, x->dtype, x->ndim, x->shape) && (!aux || !mf_empty(aux, x->dtype, x->ndim, x->shape))) {
    mf_scalar rh, rs, ra;
    size_t sz = mf_scalar_of(&rh, x->dtype, h);
    mf_scalar_of(&rs, x->dtype, s);
    mf_scalar_of(&ra, x->dtype, ha);
    cl_int flags = (u ? 1 : 0) | (aux ? 2 : 0) | (aux && aux_x ? 4 : 0);
    cl_int n = (cl_int)mf_numel(x);
    const mf_tensor *pa = aux ? aux : out; /* unused when no aux */
    rc = mf_args(k, 15, ARG_T(out), ARG_T(px), ARG_T(pc), ARG_T(pu), ARG_T(pa), sz, (const void *)&rh, sz,
                 (const void *)&rs, sz, (const void *)&ra, MF_ARG(flags), MF_ARG(n));
    if (!rc) rc = mf_launch(k, mf_grid((size_t)n), 0);
  }
  packs_free(&p);
  if (rc) {
    if (out->st) mf_tensor_free(out);
    if (aux && aux->st) mf_tensor_free(aux);
  }
  return rc;
}

int mf_sampler_heun(mf_tensor *out, const mf_tensor *x, const mf_tensor *d1, const mf_tensor *c,
                    const mf_tensor *u, double h, double s) {
  if (check_real(x, "sampler_heun")) return -1;
  packs p = {.n = 0};
  const mf_tensor *px = pack(&p, x, x, "x"), *pd = px ? pack(&p, d1, x, "d1") : NULL;
  const mf_tensor *pc = pd ? pack(&p, c, x, "the prediction") : NULL;
  const mf_tensor *pu = pc && u ? pack(&p, u, x, "the unconditional prediction") : pc;
  cl_kernel k = pu ? mf_typed_kernel("smp_heun", x->dtype) : NULL;
  int rc = -1;
  out->st = NULL;
  if (k && !mf_empty(out, x->dtype, x->ndim, x->shape)) {
    mf_scalar rh, rs;
    size_t sz = mf_scalar_of(&rh, x->dtype, h);
    mf_scalar_of(&rs, x->dtype, s);
    cl_int flags = u ? 1 : 0, n = (cl_int)mf_numel(x);
    rc = mf_args(k, 14, ARG_T(out), ARG_T(px), ARG_T(pd), ARG_T(pc), ARG_T(pu), sz, (const void *)&rh, sz,
                 (const void *)&rs, MF_ARG(flags), MF_ARG(n));
    if (!rc) rc = mf_launch(k, mf_grid((size_t)n), 0);
  }
  packs_free(&p);
  if (rc && out->st) mf_tensor_free(out);
  return rc;
}

/* Philox counters of a draw of n normals: 4 per counter in f32, 2 in f64. */
static size_t counters(const mf_tensor *x) {
  size_t per = x->dtype == MF_F64 ? 2 : 4, n = (size_t)mf_numel(x);
  return (n + per - 1) / per;
}

int mf_sampler_em(mf_tensor *out, const mf_tensor *x, const mf_tensor *vc, const mf_tensor *sc,
                  const mf_tensor *vu, const mf_tensor *su, double h, double hw, double s, double nz,
                  uint64_t seed, uint64_t *offset) {
  if (check_real(x, "sampler_em")) return -1;
  if (!vu != !su) return mf_fail("sampler_em: the unconditional velocity and score come together");
  packs p = {.n = 0};
  const mf_tensor *px = pack(&p, x, x, "x"), *pv = px ? pack(&p, vc, x, "the velocity") : NULL;
  const mf_tensor *ps = pv ? pack(&p, sc, x, "the score") : NULL;
  const mf_tensor *pvu = ps && vu ? pack(&p, vu, x, "the unconditional velocity") : pv;
  const mf_tensor *psu = pvu && su ? pack(&p, su, x, "the unconditional score") : (pvu ? ps : NULL);
  cl_kernel k = psu ? mf_typed_kernel("smp_em", x->dtype) : NULL;
  int rc = -1;
  out->st = NULL;
  if (k && !mf_empty(out, x->dtype, x->ndim, x->shape)) {
    mf_scalar rh, rw, rs, rz;
    size_t sz = mf_scalar_of(&rh, x->dtype, h);
    mf_scalar_of(&rw, x->dtype, hw);
    mf_scalar_of(&rs, x->dtype, s);
    mf_scalar_of(&rz, x->dtype, nz);
    cl_int flags = vu ? 1 : 0, n = (cl_int)mf_numel(x);
    cl_uint2 key = {{(cl_uint)seed, (cl_uint)(seed >> 32)}};
    cl_ulong off = *offset;
    size_t m = counters(x);
    rc = mf_args(k, 20, ARG_T(out), ARG_T(px), ARG_T(pv), ARG_T(ps), ARG_T(pvu), ARG_T(psu), sz,
                 (const void *)&rh, sz, (const void *)&rw, sz, (const void *)&rs, sz, (const void *)&rz,
                 MF_ARG(flags), MF_ARG(n), MF_ARG(key), MF_ARG(off));
    if (!rc) rc = mf_launch(k, mf_grid(m), 0);
    if (!rc && nz != 0) *offset += m;
  }
  packs_free(&p);
  if (rc && out->st) mf_tensor_free(out);
  return rc;
}

int mf_sampler_noise(mf_tensor *out, const mf_tensor *x, double c, uint64_t seed, uint64_t *offset) {
  if (check_real(x, "sampler_noise")) return -1;
  packs p = {.n = 0};
  const mf_tensor *px = pack(&p, x, x, "x");
  cl_kernel k = px ? mf_typed_kernel("smp_noise", x->dtype) : NULL;
  int rc = -1;
  out->st = NULL;
  if (k && !mf_empty(out, x->dtype, x->ndim, x->shape)) {
    mf_scalar rc_;
    size_t sz = mf_scalar_of(&rc_, x->dtype, c);
    cl_int n = (cl_int)mf_numel(x);
    cl_uint2 key = {{(cl_uint)seed, (cl_uint)(seed >> 32)}};
    cl_ulong off = *offset;
    size_t m = counters(x);
    rc = mf_args(k, 8, ARG_T(out), ARG_T(px), sz, (const void *)&rc_, MF_ARG(n), MF_ARG(key), MF_ARG(off));
    if (!rc) rc = mf_launch(k, mf_grid(m), 0);
    if (!rc) *offset += m;
  }
  packs_free(&p);
  if (rc && out->st) mf_tensor_free(out);
  return rc;
}

/* n contiguous elements of dtype dt in t, or an error naming what */
static int check_vec(const mf_tensor *t, mf_dtype dt, int64_t n, const char *what) {
  if (t->dtype != dt) return mf_fail("%s is %s, expected %s", what, mf_dtype_name(t->dtype), mf_dtype_name(dt));
  if (mf_numel(t) != n) return mf_fail("%s has %lld values, expected %lld", what, (long long)mf_numel(t), (long long)n);
  return 0;
}

int mf_oracle_field(mf_tensor *out, const mf_tensor *x, const mf_tensor *t, const mf_tensor *y,
                    const mf_tensor *mu, const mf_tensor *s2, const mf_tensor *logw,
                    enum mf_oracle_field field, int edm, double xs) {
  if (check_real(x, "oracle_field")) return -1;
  if (x->ndim != 2) return mf_fail("x must be {B, D}, got %d dims", x->ndim);
  if ((int)field < 0 || field >= MF_FIELD_COUNT) return mf_fail("unknown field %d", (int)field);
  int64_t B = x->shape[0], D = x->shape[1], K = mu->ndim == 2 ? mu->shape[0] : 0;
  if (mu->ndim != 2 || mu->shape[1] != D) return mf_fail("means must be {K, %lld}", (long long)D);
  if (check_vec(t, x->dtype, B, "t") || check_vec(s2, x->dtype, K, "s2") || check_vec(logw, x->dtype, K, "logw") ||
      check_vec(mu, x->dtype, K * D, "means") || (y && check_vec(y, MF_I32, B, "labels")))
    return -1;
  packs p = {.n = 0};
  const mf_tensor *px = pack(&p, x, x, "x");
  mf_tensor tc, yc, mc, sc, lc;
  const mf_tensor *ins[5] = {t, y, mu, s2, logw};
  mf_tensor *outs[5] = {&tc, &yc, &mc, &sc, &lc};
  int rc = px ? 0 : -1;
  for (int i = 0; i < 5 && !rc; ++i) {
    if (!ins[i]) continue;
    rc = mf_contiguous(&p.t[p.n], ins[i]);
    if (!rc) *outs[i] = p.t[p.n++];
  }
  cl_kernel k = rc ? NULL : mf_typed_kernel("oracle_field", x->dtype);
  rc = -1;
  out->st = NULL;
  if (k && !mf_empty(out, x->dtype, 2, x->shape)) {
    mf_scalar rx;
    size_t sz = mf_scalar_of(&rx, x->dtype, xs);
    cl_int hy = y != NULL, b = (cl_int)B, d = (cl_int)D, kk = (cl_int)K, f = field, e = edm;
    const mf_tensor *py = y ? &yc : &tc; /* not read without labels */
    rc = mf_args(k, 20, MF_ARG(out->st->buf), ARG_T(px), ARG_T(&tc), ARG_T(py), MF_ARG(hy), ARG_T(&mc), ARG_T(&sc),
                 ARG_T(&lc), MF_ARG(b), MF_ARG(d), MF_ARG(kk), MF_ARG(f), MF_ARG(e), sz, (const void *)&rx);
    if (!rc) rc = mf_launch(k, mf_grid((size_t)B), 0);
  }
  packs_free(&p);
  if (rc && out->st) mf_tensor_free(out);
  return rc;
}
