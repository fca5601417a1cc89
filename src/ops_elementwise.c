#include "ops_elementwise.h"

#include <stdio.h>
#include <string.h>

#include "launch.h"
#include "runtime.h"

static int launch_unary(mf_tensor *out, const char *op, const mf_tensor *a) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "un_%s", op);
  cl_kernel k = mf_typed_kernel(prefix, a->dtype);
  if (!k) return -1;
  mf_walk w;
  mf_walk_of(&w, a, out->ndim, out->shape);
  cl_int oo = (cl_int)out->offset, oa = (cl_int)a->offset, n = (cl_int)mf_numel(out);
  if (mf_args(k, 8, MF_ARG(out->st->buf), MF_ARG(oo), MF_ARG(a->st->buf), MF_ARG(oa), MF_ARG(n),
              MF_ARG(w.nd), MF_ARG(w.shape), MF_ARG(w.st)))
    return -1;
  return mf_launch(k, mf_grid((size_t)n), 0);
}

int mf_unary(mf_tensor *out, const char *op, const mf_tensor *a) {
  if (mf_empty(out, a->dtype, a->ndim, a->shape)) return -1;
  if (launch_unary(out, op, a) == 0) return 0;
  mf_tensor_free(out);
  return -1;
}

/* out (contiguous, already shaped) = a op b */
static int launch_binary(mf_tensor *out, const char *op, const mf_tensor *a, const mf_tensor *b) {
  if (a->dtype != b->dtype)
    return mf_fail("dtypes %s and %s differ (convert one with :to())", mf_dtype_name(a->dtype),
                   mf_dtype_name(b->dtype));
  char prefix[64];
  snprintf(prefix, sizeof prefix, "bin_%s", op);
  cl_kernel k = mf_typed_kernel(prefix, a->dtype);
  if (!k) return -1;
  mf_walk wa, wb;
  mf_walk_of(&wa, a, out->ndim, out->shape);
  mf_walk_of(&wb, b, out->ndim, out->shape);
  if (wa.nd || wb.nd) { /* one walks: both walk */
    mf_walk_full(&wa, a, out->ndim, out->shape);
    mf_walk_full(&wb, b, out->ndim, out->shape);
  }
  cl_int oo = (cl_int)out->offset, oa = (cl_int)a->offset, ob = (cl_int)b->offset;
  cl_int n = (cl_int)mf_numel(out);
  if (mf_args(k, 11, MF_ARG(out->st->buf), MF_ARG(oo), MF_ARG(a->st->buf), MF_ARG(oa),
              MF_ARG(b->st->buf), MF_ARG(ob), MF_ARG(n), MF_ARG(wa.nd), MF_ARG(wa.shape), MF_ARG(wa.st),
              MF_ARG(wb.st)))
    return -1;
  return mf_launch(k, mf_grid((size_t)n), 0);
}

int mf_binary(mf_tensor *out, const char *op, const mf_tensor *a, const mf_tensor *b) {
  int nd;
  int64_t sh[MF_MAX_DIMS];
  if (mf_broadcast_shape(a->ndim, a->shape, b->ndim, b->shape, &nd, sh)) return -1;
  if (a->dtype != b->dtype)
    return mf_fail("dtypes %s and %s differ (convert one with :to())", mf_dtype_name(a->dtype),
                   mf_dtype_name(b->dtype));
  if (mf_empty(out, a->dtype, nd, sh)) return -1;
  if (launch_binary(out, op, a, b) == 0) return 0;
  mf_tensor_free(out);
  return -1;
}

static int launch_scalar(mf_tensor *out, const char *op, const mf_tensor *a, double s, int rev) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "bins_%s", op);
  cl_kernel k = mf_typed_kernel(prefix, a->dtype);
  if (!k) return -1;
  mf_walk w;
  mf_walk_of(&w, a, out->ndim, out->shape);
  mf_scalar sv;
  size_t ss = mf_scalar_of(&sv, a->dtype, s);
  cl_int oo = (cl_int)out->offset, oa = (cl_int)a->offset, n = (cl_int)mf_numel(out), r = rev;
  if (mf_args(k, 10, MF_ARG(out->st->buf), MF_ARG(oo), MF_ARG(a->st->buf), MF_ARG(oa), ss,
              (const void *)&sv, MF_ARG(r), MF_ARG(n), MF_ARG(w.nd), MF_ARG(w.shape), MF_ARG(w.st)))
    return -1;
  return mf_launch(k, mf_grid((size_t)n), 0);
}

int mf_binary_scalar(mf_tensor *out, const char *op, const mf_tensor *a, double s, int rev) {
  if (mf_empty(out, a->dtype, a->ndim, a->shape)) return -1;
  if (launch_scalar(out, op, a, s, rev) == 0) return 0;
  mf_tensor_free(out);
  return -1;
}

/* b is another layout of a's storage: elements written early would be read
   late (x:add_(x:t()), shifted narrows). The same layout is safe. */
static int aliases(const mf_tensor *a, const mf_tensor *b) {
  if (a->st != b->st) return 0;
  int same = a->offset == b->offset && a->ndim == b->ndim;
  for (int i = 0; same && i < a->ndim; ++i) same = a->shape[i] == b->shape[i] && a->strides[i] == b->strides[i];
  return !same;
}

/* In place: a contiguous target is written directly (each element reads
   only its own inputs first); any other view, or an operand aliasing the
   target, goes through a temporary. */
int mf_binary_inplace(const char *op, mf_tensor *a, const mf_tensor *b) {
  int nd;
  int64_t sh[MF_MAX_DIMS];
  if (mf_broadcast_shape(a->ndim, a->shape, b->ndim, b->shape, &nd, sh)) return -1;
  int same = nd == a->ndim;
  for (int i = 0; same && i < nd; ++i) same = sh[i] == a->shape[i];
  if (!same) {
    char x[128], y[128];
    return mf_fail("in-place result of shape %s cannot hold the broadcast of %s",
                   mf_shape_str(x, sizeof x, a->ndim, a->shape), mf_shape_str(y, sizeof y, b->ndim, b->shape));
  }
  if (mf_is_contiguous(a) && !aliases(a, b)) return launch_binary(a, op, a, b);
  mf_tensor t;
  if (mf_binary(&t, op, a, b)) return -1;
  int rc = mf_copy(a, &t);
  mf_tensor_free(&t);
  return rc;
}

int mf_binary_scalar_inplace(const char *op, mf_tensor *a, double s) {
  if (mf_is_contiguous(a)) return launch_scalar(a, op, a, s, 0);
  mf_tensor t;
  if (mf_binary_scalar(&t, op, a, s, 0)) return -1;
  int rc = mf_copy(a, &t);
  mf_tensor_free(&t);
  return rc;
}

int mf_where(mf_tensor *out, const mf_tensor *m, const mf_tensor *a, const mf_tensor *b) {
  int n1, nd;
  int64_t s1[MF_MAX_DIMS], sh[MF_MAX_DIMS];
  if (mf_broadcast_shape(a->ndim, a->shape, b->ndim, b->shape, &n1, s1)) return -1;
  if (mf_broadcast_shape(m->ndim, m->shape, n1, s1, &nd, sh)) return -1;
  if (a->dtype != b->dtype || m->dtype != a->dtype)
    return mf_fail("dtypes %s (mask), %s and %s differ", mf_dtype_name(m->dtype),
                   mf_dtype_name(a->dtype), mf_dtype_name(b->dtype));
  cl_kernel k = mf_typed_kernel("where", a->dtype);
  if (!k) return -1;
  if (mf_empty(out, a->dtype, nd, sh)) return -1;
  mf_walk wm, wa, wb;
  mf_walk_full(&wm, m, nd, sh);
  mf_walk_full(&wa, a, nd, sh);
  mf_walk_full(&wb, b, nd, sh);
  cl_int om = (cl_int)m->offset, oa = (cl_int)a->offset, ob = (cl_int)b->offset;
  cl_int n = (cl_int)mf_numel(out);
  if (mf_args(k, 13, MF_ARG(out->st->buf), MF_ARG(m->st->buf), MF_ARG(om), MF_ARG(a->st->buf),
              MF_ARG(oa), MF_ARG(b->st->buf), MF_ARG(ob), MF_ARG(n), MF_ARG(wm.nd),
              MF_ARG(wm.shape), MF_ARG(wm.st), MF_ARG(wa.st), MF_ARG(wb.st)) ||
      mf_launch(k, mf_grid((size_t)n), 0)) {
    mf_tensor_free(out);
    return -1;
  }
  return 0;
}

int mf_clamp(mf_tensor *out, const mf_tensor *a, double lo, double hi) {
  cl_kernel k = mf_typed_kernel("clamp", a->dtype);
  if (!k) return -1;
  if (mf_empty(out, a->dtype, a->ndim, a->shape)) return -1;
  mf_walk w;
  mf_walk_of(&w, a, a->ndim, a->shape);
  mf_scalar l, h;
  size_t ss = mf_scalar_of(&l, a->dtype, lo);
  mf_scalar_of(&h, a->dtype, hi);
  cl_int oa = (cl_int)a->offset, n = (cl_int)mf_numel(out);
  if (mf_args(k, 9, MF_ARG(out->st->buf), MF_ARG(a->st->buf), MF_ARG(oa), ss, (const void *)&l, ss,
              (const void *)&h, MF_ARG(n), MF_ARG(w.nd), MF_ARG(w.shape), MF_ARG(w.st)) ||
      mf_launch(k, mf_grid((size_t)n), 0)) {
    mf_tensor_free(out);
    return -1;
  }
  return 0;
}

int mf_copy(mf_tensor *dst, const mf_tensor *src) {
  char prefix[32];
  snprintf(prefix, sizeof prefix, "copy_%s", mf_dtype_name(src->dtype));
  cl_kernel k = mf_typed_kernel(prefix, dst->dtype);
  if (!k) return -1;
  int both = mf_is_contiguous(dst) && mf_is_contiguous(src);
  mf_walk wo, wa;
  if (both) {
    memset(&wo, 0, sizeof wo);
    memset(&wa, 0, sizeof wa);
  } else {
    mf_walk_full(&wo, dst, dst->ndim, dst->shape);
    mf_walk_full(&wa, src, dst->ndim, dst->shape);
  }
  cl_int oo = (cl_int)dst->offset, oa = (cl_int)src->offset, n = (cl_int)mf_numel(dst);
  if (mf_args(k, 9, MF_ARG(dst->st->buf), MF_ARG(oo), MF_ARG(src->st->buf), MF_ARG(oa), MF_ARG(n),
              MF_ARG(wo.nd), MF_ARG(wo.shape), MF_ARG(wo.st), MF_ARG(wa.st)))
    return -1;
  return mf_launch(k, mf_grid((size_t)n), 0);
}

int mf_contiguous(mf_tensor *out, const mf_tensor *a) {
  if (mf_is_contiguous(a)) {
    mf_view_of(out, a);
    return 0;
  }
  return mf_cast(out, a, a->dtype);
}

/* (declared in tensor.h) a packed copy first when t is not contiguous */
int mf_to_host(const mf_tensor *t, void *data) {
  size_t es = mf_dtype_size(t->dtype);
  mf_device_errors_fetch(); /* queued before the read: no extra round trip */
  if (mf_is_contiguous(t))
    return mf_read(t->st->buf, (size_t)t->offset * es, (size_t)mf_numel(t) * es, data) || mf_device_errors() ? -1 : 0;
  mf_tensor c;
  if (mf_contiguous(&c, t)) return -1;
  int rc = mf_read(c.st->buf, 0, (size_t)mf_numel(&c) * es, data) || mf_device_errors();
  mf_tensor_free(&c);
  return rc ? -1 : 0;
}

int mf_cast(mf_tensor *out, const mf_tensor *a, mf_dtype dt) {
  if (mf_empty(out, dt, a->ndim, a->shape)) return -1;
  if (mf_copy(out, a) == 0) return 0;
  mf_tensor_free(out);
  return -1;
}

int mf_fill(mf_tensor *t, double v) {
  cl_kernel k = mf_typed_kernel("fill", t->dtype);
  if (!k) return -1;
  mf_scalar sv;
  size_t ss = mf_scalar_of(&sv, t->dtype, v);
  cl_int oo = (cl_int)t->offset, n = (cl_int)mf_numel(t);
  if (mf_args(k, 4, MF_ARG(t->st->buf), MF_ARG(oo), ss, (const void *)&sv, MF_ARG(n))) return -1;
  return mf_launch(k, mf_grid((size_t)n), 0);
}

int mf_arange(mf_tensor *t, double start, double step) {
  cl_kernel k = mf_typed_kernel("arange", t->dtype);
  if (!k) return -1;
  mf_scalar a, b;
  size_t ss = mf_scalar_of(&a, t->dtype, start);
  mf_scalar_of(&b, t->dtype, step);
  cl_int n = (cl_int)mf_numel(t);
  if (mf_args(k, 4, MF_ARG(t->st->buf), ss, (const void *)&a, ss, (const void *)&b, MF_ARG(n)))
    return -1;
  return mf_launch(k, mf_grid((size_t)n), 0);
}
