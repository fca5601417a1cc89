/* Launchers of the diffusion kernels (cl/diffusion.cl). */
#include "ops_diffusion.h"

#include <stdio.h>
#include <string.h>

#include "launch.h"
#include "ops_elementwise.h"
#include "runtime.h"

/* Contiguous views (or packed copies) of up to 16 inputs, released together. */
typedef struct {
  mf_tensor t[16];
  int n;
} packs;

static const mf_tensor *pack(packs *p, const mf_tensor *t) {
  if (!t) return NULL;
  if (mf_contiguous(&p->t[p->n], t)) return NULL;
  return &p->t[p->n++];
}

static void unpack(packs *p) {
  for (int i = 0; i < p->n; ++i) mf_tensor_free(&p->t[i]);
  p->n = 0;
}

static int64_t rows_of(const mf_tensor *t) { return t->ndim ? t->shape[0] : 1; }

static int same_shape(const mf_tensor *a, const mf_tensor *b) {
  if (a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; ++i)
    if (a->shape[i] != b->shape[i]) return 0;
  return 1;
}

static int check_pair(const char *what, const mf_tensor *a, const mf_tensor *b) {
  char x[128], y[128];
  if (!same_shape(a, b))
    return mf_fail("%s: shapes %s and %s differ", what, mf_shape_str(x, sizeof x, a->ndim, a->shape),
                   mf_shape_str(y, sizeof y, b->ndim, b->shape));
  if (a->dtype != b->dtype)
    return mf_fail("%s: dtypes %s and %s differ", what, mf_dtype_name(a->dtype), mf_dtype_name(b->dtype));
  return 0;
}

/* Row stride of a per-row parameter holding k values per row: k when it
   has rows * k elements, 0 when it has k (one row for all). */
static int row_stride(const char *what, const mf_tensor *p, int64_t rows, int k, int *ps) {
  int64_t n = mf_numel(p);
  if (n == rows * k) *ps = k;
  else if (n == k) *ps = 0;
  else {
    char s[128];
    return mf_fail("%s of shape %s: need %d values per row for %d rows (or %d for all)", what,
                   mf_shape_str(s, sizeof s, p->ndim, p->shape), k, (int)rows, k);
  }
  return 0;
}

/* Loop shape: 0 by device (GPU shapes on GPUs, CPU shapes on CPUs), 1 the
   GPU shapes everywhere, 2 the CPU shapes everywhere (tests cover both). */
static int path_force;
int mf_diffusion_path(int mode) {
  int prev = path_force;
  if (mode >= 0 && mode <= 2) path_force = mode;
  return prev;
}
static int gpu_shape(void) {
  if (path_force) return path_force == 1;
  mf_runtime *r = mf_rt();
  return r && r->info.is_gpu;
}

int mf_noise_target(mf_tensor *out, const mf_tensor *x, const mf_tensor *y, const mf_tensor *p,
                    enum mf_nt_kind kind, int tr, int both) {
  if (check_pair("noise_target", x, y)) return -1;
  if (p->dtype != x->dtype)
    return mf_fail("noise_target: parameter dtype %s differs from data dtype %s", mf_dtype_name(p->dtype),
                   mf_dtype_name(x->dtype));
  int64_t rows = rows_of(x), n = mf_numel(x);
  int ps = 0;
  if (row_stride("noise_target: parameters", p, rows, kind == MF_NT_general ? 4 : 1, &ps)) return -1;
  int gpu = gpu_shape();
  cl_kernel k = mf_typed_kernel(gpu ? "diff_nt" : "diff_ntrow", x->dtype);
  if (!k) return -1;
  packs pk = {.n = 0};
  const mf_tensor *xc = pack(&pk, x), *yc = xc ? pack(&pk, y) : NULL, *pc = yc ? pack(&pk, p) : NULL;
  if (!pc) { unpack(&pk); return -1; }
  int64_t sh[MF_MAX_DIMS + 1];
  int nd = x->ndim;
  if (both) {
    sh[0] = 2;
    memcpy(sh + 1, x->shape, sizeof(int64_t) * (size_t)nd);
    nd++;
  } else {
    memcpy(sh, x->shape, sizeof(int64_t) * (size_t)nd);
  }
  if (nd > MF_MAX_DIMS) { unpack(&pk); return mf_fail("noise_target: too many dims"); }
  if (mf_empty(out, x->dtype, nd, sh)) { unpack(&pk); return -1; }
  cl_int o1 = 0, o2 = both ? (cl_int)n : -1, ox = (cl_int)xc->offset, oy = (cl_int)yc->offset;
  cl_int op = (cl_int)pc->offset, cps = ps, ck = kind, ctr = tr, cr = (cl_int)rows;
  cl_int cc = rows ? (cl_int)(n / rows) : 0;
  int rc = (n == 0) ? 0
           : mf_args(k, 14, MF_ARG(out->st->buf), MF_ARG(o1), MF_ARG(o2), MF_ARG(xc->st->buf), MF_ARG(ox),
                     MF_ARG(yc->st->buf), MF_ARG(oy), MF_ARG(pc->st->buf), MF_ARG(op), MF_ARG(cps),
                     MF_ARG(ck), MF_ARG(ctr), MF_ARG(cr), MF_ARG(cc)) ||
                 mf_launch(k, mf_grid(gpu ? (size_t)(n + 3) / 4 : (size_t)n), 0);
  unpack(&pk);
  if (rc) mf_tensor_free(out);
  return rc;
}

/* Shared argument work of mf_rowred and mf_rowred_grad. */
static int rowred_prep(packs *pk, const char *what, const mf_tensor *a, const mf_tensor *b,
                       const mf_tensor *w, const mf_tensor **ac, const mf_tensor **bc,
                       const mf_tensor **wc, int *ws) {
  if (b && check_pair(what, a, b)) return -1;
  if (a->dtype == MF_I32) return mf_fail("%s: needs f32 or f64 data, got i32", what);
  *ws = 0;
  if (w) {
    if (w->dtype != a->dtype)
      return mf_fail("%s: weight dtype %s differs from data dtype %s", what, mf_dtype_name(w->dtype),
                     mf_dtype_name(a->dtype));
    if (row_stride("weights", w, rows_of(a), 1, ws)) return -1;
  }
  *ac = pack(pk, a);
  if (!*ac) return -1;
  *bc = b ? pack(pk, b) : *ac;
  if (!*bc) return -1;
  *wc = w ? pack(pk, w) : *ac;
  if (!*wc) return -1;
  return 0;
}

int mf_rowred(mf_tensor *out, const mf_tensor *a, const mf_tensor *b, const mf_tensor *w, double s,
              enum mf_rowred_mode mode) {
  packs pk = {.n = 0};
  const mf_tensor *ac, *bc, *wc;
  int ws;
  if (rowred_prep(&pk, "rowred", a, b, w, &ac, &bc, &wc, &ws)) { unpack(&pk); return -1; }
  int64_t rows = rows_of(a), n = mf_numel(a), cols = rows ? n / rows : 0;
  int64_t sh[1] = {rows};
  if (mf_empty(out, a->dtype, 1, sh)) { unpack(&pk); return -1; }
  mf_runtime *r = mf_rt();
  int gpu = gpu_shape();
  int narrow = cols <= 32 || !gpu; /* CPUs: a row per work-item */
  cl_kernel k = mf_typed_kernel(narrow ? "diff_rowred1" : "diff_rowred", a->dtype);
  int rc = !k;
  if (!rc && rows > 0) {
    mf_scalar sv;
    size_t ss = mf_scalar_of(&sv, a->dtype, s);
    cl_int oa = (cl_int)ac->offset, ob = (cl_int)bc->offset, ow = (cl_int)wc->offset, cws = ws;
    cl_int hasw = w != NULL, cr = (cl_int)rows, cc = (cl_int)cols, cm = mode;
    rc = mf_args(k, 13, MF_ARG(out->st->buf), MF_ARG(ac->st->buf), MF_ARG(oa), MF_ARG(bc->st->buf),
                 MF_ARG(ob), MF_ARG(wc->st->buf), MF_ARG(ow), MF_ARG(cws), MF_ARG(hasw), MF_ARG(cr),
                 MF_ARG(cc), ss, (const void *)&sv, MF_ARG(cm));
    if (!rc && narrow) {
      size_t g = (size_t)rows;
      if (!gpu) { /* rows spread over the cores, at least 4096 elements each */
        size_t cap = (size_t)(r->info.compute_units > 0 ? r->info.compute_units : 1) * 16;
        size_t by_size = (size_t)(n / 4096) + 1;
        if (g > cap) g = cap;
        if (g > by_size) g = by_size;
      } else {
        g = mf_grid(g);
      }
      rc = mf_launch(k, g, 0);
    } else if (!rc) {
      size_t L = r->info.is_gpu ? 256 : 64, kmax = 0;
      clGetKernelWorkGroupInfo(k, r->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kmax, &kmax, NULL);
      while (kmax && L > kmax) L >>= 1;
      while (L > 1 && (int64_t)L > cols) L >>= 1; /* a power of two for the tree */
      cl_int e = clSetKernelArg(k, 13, L * mf_dtype_size(a->dtype), NULL);
      rc = e != CL_SUCCESS ? mf_fail("rowred: local memory: %s", mf_cl_error_name(e))
                           : mf_launch(k, (size_t)rows * L, L);
    }
  }
  unpack(&pk);
  if (rc) mf_tensor_free(out);
  return rc;
}

int mf_rowred_grad(mf_tensor *out, const mf_tensor *a, const mf_tensor *b, const mf_tensor *w,
                   const mf_tensor *g, double s, enum mf_rowred_mode mode) {
  packs pk = {.n = 0};
  const mf_tensor *ac, *bc, *wc, *gc;
  int ws;
  if (rowred_prep(&pk, "rowred_grad", a, b, w, &ac, &bc, &wc, &ws)) { unpack(&pk); return -1; }
  int64_t rows = rows_of(a), n = mf_numel(a), cols = rows ? n / rows : 0;
  if (g->dtype != a->dtype || mf_numel(g) != rows) {
    unpack(&pk);
    return mf_fail("rowred_grad: the cotangent needs %d %s values, got %d %s", (int)rows,
                   mf_dtype_name(a->dtype), (int)mf_numel(g), mf_dtype_name(g->dtype));
  }
  if (!(gc = pack(&pk, g))) { unpack(&pk); return -1; }
  cl_kernel k = mf_typed_kernel("diff_rowred_grad", a->dtype);
  if (!k) { unpack(&pk); return -1; }
  if (mf_empty(out, a->dtype, a->ndim, a->shape)) { unpack(&pk); return -1; }
  mf_scalar sv;
  size_t ss = mf_scalar_of(&sv, a->dtype, s);
  cl_int oa = (cl_int)ac->offset, ob = (cl_int)bc->offset, ow = (cl_int)wc->offset, og = (cl_int)gc->offset;
  cl_int cws = ws, hasw = w != NULL, cr = (cl_int)rows, cc = (cl_int)cols, cm = mode;
  int rc = n == 0 ? 0
           : mf_args(k, 15, MF_ARG(out->st->buf), MF_ARG(ac->st->buf), MF_ARG(oa), MF_ARG(bc->st->buf),
                     MF_ARG(ob), MF_ARG(wc->st->buf), MF_ARG(ow), MF_ARG(cws), MF_ARG(hasw),
                     MF_ARG(gc->st->buf), MF_ARG(og), MF_ARG(cr), MF_ARG(cc), ss, (const void *)&sv,
                     MF_ARG(cm)) ||
                 mf_launch(k, mf_grid((size_t)n), 0);
  unpack(&pk);
  if (rc) mf_tensor_free(out);
  return rc;
}

int mf_diff_coef(mf_tensor *out, const mf_tensor *t, enum mf_coef which, double param, int deriv) {
  if (t->dtype == MF_I32) return mf_fail("coefficient: t must be f32 or f64, got i32");
  cl_kernel k = mf_typed_kernel("diff_coef", t->dtype);
  if (!k) return -1;
  packs pk = {.n = 0};
  const mf_tensor *tc = pack(&pk, t);
  if (!tc) return -1;
  if (mf_empty(out, t->dtype, t->ndim, t->shape)) { unpack(&pk); return -1; }
  mf_scalar pv;
  size_t ps = mf_scalar_of(&pv, t->dtype, param);
  cl_int ot = (cl_int)tc->offset, n = (cl_int)mf_numel(t), w = which, d = deriv;
  int rc = mf_args(k, 7, MF_ARG(out->st->buf), MF_ARG(tc->st->buf), MF_ARG(ot), MF_ARG(n), MF_ARG(w), ps,
                   (const void *)&pv, MF_ARG(d)) ||
           mf_launch(k, mf_grid((size_t)n), 0);
  unpack(&pk);
  if (rc) mf_tensor_free(out);
  return rc;
}

int mf_ndtri(mf_tensor *out, const mf_tensor *u) {
  if (u->dtype == MF_I32) return mf_fail("ndtri: u must be f32 or f64, got i32");
  cl_kernel k = mf_typed_kernel("diff_ndtri", u->dtype);
  if (!k) return -1;
  packs pk = {.n = 0};
  const mf_tensor *uc = pack(&pk, u);
  if (!uc) return -1;
  if (mf_empty(out, u->dtype, u->ndim, u->shape)) { unpack(&pk); return -1; }
  cl_int ou = (cl_int)uc->offset, n = (cl_int)mf_numel(u);
  int rc = mf_args(k, 4, MF_ARG(out->st->buf), MF_ARG(uc->st->buf), MF_ARG(ou), MF_ARG(n)) ||
           mf_launch(k, mf_grid((size_t)n), 0);
  unpack(&pk);
  if (rc) mf_tensor_free(out);
  return rc;
}

int mf_rf_conv(mf_tensor *out, const mf_tensor *a, const mf_tensor *b, const mf_tensor *t, enum mf_rf_op op,
               int wa, int wb) {
  if (check_pair("rf", a, b)) return -1;
  if (a->dtype == MF_I32) return mf_fail("rf: data must be f32 or f64, got i32");
  if (t->dtype != MF_F64) return mf_fail("rf: t must be f64 here, got %s", mf_dtype_name(t->dtype));
  int64_t rows = rows_of(a), n = mf_numel(a);
  int ts = 0;
  if (row_stride("rf: t", t, rows, 1, &ts)) return -1;
  cl_kernel k = mf_typed_kernel("rf_conv", a->dtype);
  if (!k) return -1;
  packs pk = {.n = 0};
  const mf_tensor *ac = pack(&pk, a), *bc = ac ? pack(&pk, b) : NULL, *tc = bc ? pack(&pk, t) : NULL;
  if (!tc) { unpack(&pk); return -1; }
  if (mf_empty(out, a->dtype, a->ndim, a->shape)) { unpack(&pk); return -1; }
  cl_int oa = (cl_int)ac->offset, ob = (cl_int)bc->offset, ot = (cl_int)tc->offset, cts = ts;
  cl_int cr = (cl_int)rows, cc = rows ? (cl_int)(n / rows) : 0, cop = op, cwa = wa, cwb = wb;
  int rc = n == 0 ? 0
           : mf_args(k, 13, MF_ARG(out->st->buf), MF_ARG(ac->st->buf), MF_ARG(oa), MF_ARG(bc->st->buf),
                     MF_ARG(ob), MF_ARG(tc->st->buf), MF_ARG(ot), MF_ARG(cts), MF_ARG(cr), MF_ARG(cc),
                     MF_ARG(cop), MF_ARG(cwa), MF_ARG(cwb)) ||
                 mf_launch(k, mf_grid((size_t)n), 0);
  unpack(&pk);
  if (rc) mf_tensor_free(out);
  return rc;
}

static int check_lo(const char *what, const mf_tensor *hi, const mf_tensor *lo) {
  if (hi->dtype != MF_F32) return mf_fail("rf (float-float): %s must be f32, got %s", what, mf_dtype_name(hi->dtype));
  return lo ? check_pair(what, hi, lo) : 0;
}

int mf_rf_conv_ff(mf_tensor *ohi, mf_tensor *olo, const mf_tensor *ahi, const mf_tensor *alo,
                  const mf_tensor *bhi, const mf_tensor *blo, const mf_tensor *thi,
                  const mf_tensor *tlo, enum mf_rf_op op, int wa, int wb) {
  if (check_lo("a", ahi, alo) || check_lo("b", bhi, blo) || check_lo("t", thi, tlo) ||
      check_pair("rf (float-float)", ahi, bhi))
    return -1;
  int64_t rows = rows_of(ahi), n = mf_numel(ahi);
  int ts = 0;
  if (row_stride("rf: t", thi, rows, 1, &ts)) return -1;
  cl_kernel k = mf_kernel("rf_conv_ff");
  if (!k) return -1;
  /* the hi and lo parts of each operand are packed alike (fresh, offset 0
     when a copy is needed) so one offset serves both */
  packs pk = {.n = 0};
  const mf_tensor *in[6] = {ahi, alo, bhi, blo, thi, tlo}, *c[6];
  for (int i = 0; i < 6; ++i) {
    c[i] = in[i] ? pack(&pk, in[i]) : NULL;
    if (in[i] && !c[i]) { unpack(&pk); return -1; }
  }
  for (int i = 1; i < 6; i += 2)
    if (c[i] && c[i]->offset != c[i - 1]->offset) {
      /* differing offsets: repack both as fresh tensors */
      mf_tensor h, l;
      if (mf_cast(&h, c[i - 1], MF_F32)) { unpack(&pk); return -1; }
      if (mf_cast(&l, c[i], MF_F32)) { mf_tensor_free(&h); unpack(&pk); return -1; }
      pk.t[pk.n] = h; c[i - 1] = &pk.t[pk.n++];
      pk.t[pk.n] = l; c[i] = &pk.t[pk.n++];
    }
  if (mf_empty(ohi, MF_F32, ahi->ndim, ahi->shape)) { unpack(&pk); return -1; }
  if (olo && mf_empty(olo, MF_F32, ahi->ndim, ahi->shape)) { mf_tensor_free(ohi); unpack(&pk); return -1; }
  cl_mem lob = olo ? olo->st->buf : ohi->st->buf;
  cl_int olo_ok = olo != NULL;
  cl_int oa = (cl_int)c[0]->offset, ob = (cl_int)c[2]->offset, ot = (cl_int)c[4]->offset;
  cl_int ha = c[1] != NULL, hb = c[3] != NULL, ht = c[5] != NULL;
  cl_mem al = (ha ? c[1] : c[0])->st->buf, bl = (hb ? c[3] : c[2])->st->buf, tl = (ht ? c[5] : c[4])->st->buf;
  cl_int cts = ts, cr = (cl_int)rows, cc = rows ? (cl_int)(n / rows) : 0, cop = op, cwa = wa, cwb = wb;
  int rc = n == 0 ? 0
           : mf_args(k, 21, MF_ARG(ohi->st->buf), MF_ARG(lob), MF_ARG(olo_ok), MF_ARG(c[0]->st->buf),
                     MF_ARG(al), MF_ARG(oa), MF_ARG(ha), MF_ARG(c[2]->st->buf), MF_ARG(bl), MF_ARG(ob),
                     MF_ARG(hb), MF_ARG(c[4]->st->buf), MF_ARG(tl), MF_ARG(ot), MF_ARG(ht), MF_ARG(cts),
                     MF_ARG(cr), MF_ARG(cc), MF_ARG(cop), MF_ARG(cwa), MF_ARG(cwb)) ||
                 mf_launch(k, mf_grid((size_t)n), 0);
  unpack(&pk);
  if (rc) {
    mf_tensor_free(ohi);
    if (olo) mf_tensor_free(olo);
  }
  return rc;
}

int mf_rf_split(mf_tensor *hi, mf_tensor *lo, const mf_tensor *v) {
  if (v->dtype != MF_F64) return mf_fail("rf split: needs an f64 tensor, got %s", mf_dtype_name(v->dtype));
  cl_kernel k = mf_typed_kernel("rf_split", MF_F64);
  if (!k) return -1;
  packs pk = {.n = 0};
  const mf_tensor *vc = pack(&pk, v);
  if (!vc) return -1;
  if (mf_empty(hi, MF_F32, v->ndim, v->shape)) { unpack(&pk); return -1; }
  if (mf_empty(lo, MF_F32, v->ndim, v->shape)) { mf_tensor_free(hi); unpack(&pk); return -1; }
  cl_int ov = (cl_int)vc->offset, n = (cl_int)mf_numel(v);
  int rc = mf_args(k, 5, MF_ARG(hi->st->buf), MF_ARG(lo->st->buf), MF_ARG(vc->st->buf), MF_ARG(ov), MF_ARG(n)) ||
           mf_launch(k, mf_grid((size_t)n), 0);
  unpack(&pk);
  if (rc) { mf_tensor_free(hi); mf_tensor_free(lo); }
  return rc;
}
