#include "tensor.h"

#include <string.h>

#include "runtime.h"

int64_t mf_numel(const mf_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; ++i) n *= t->shape[i];
  return n;
}

void mf_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides) {
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; --i) {
    strides[i] = s;
    s *= shape[i];
  }
}

int mf_is_contiguous(const mf_tensor *t) {
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; --i) {
    if (t->shape[i] != 1 && t->strides[i] != s) return 0;
    s *= t->shape[i];
  }
  return 1;
}

int64_t mf_shape_numel(int ndim, const int64_t *shape) {
  char b[160];
  int64_t nz = 1; /* product of the non-zero sizes */
  int empty = 0, big = 0;
  double p = 1; /* the same in a double, for the message */
  for (int i = 0; i < ndim; ++i) {
    if (shape[i] < 0 || shape[i] > MF_MAX_NUMEL)
      return mf_fail("shape %s: size %lld is out of range [0, 2^31)", mf_shape_str(b, sizeof b, ndim, shape),
                     (long long)shape[i]);
    if (!shape[i]) {
      empty = 1;
      continue;
    }
    p *= (double)shape[i];
    /* both factors < 2^31: nz * shape[i] < 2^62 cannot overflow */
    if (!big && (nz *= shape[i]) > MF_MAX_NUMEL) big = 1;
  }
  if (big)
    return mf_fail("shape %s %s %.0f elements, more than a tensor holds (2^31 - 1: kernels index with "
                   "32-bit ints)",
                   mf_shape_str(b, sizeof b, ndim, shape), empty ? "is empty but its non-zero sizes make" : "has", p);
  return empty ? 0 : nz;
}

int mf_empty(mf_tensor *out, mf_dtype dt, int ndim, const int64_t *shape) {
  memset(out, 0, sizeof *out);
  int64_t n = mf_shape_numel(ndim, shape);
  if (n < 0) return -1;
  out->st = mf_storage_new((size_t)(n ? n : 1) * mf_dtype_size(dt));
  if (!out->st) return -1;
  out->ndim = ndim;
  out->dtype = dt;
  memcpy(out->shape, shape, sizeof(int64_t) * (size_t)ndim);
  mf_contiguous_strides(ndim, shape, out->strides);
  return 0;
}

int mf_view_check(const mf_tensor *t) {
  /* largest element offset: offset + sum (shape[i] - 1) * strides[i]; every
     term < 2^62 (sizes and strides stay below 2^31), so 8 of them fit */
  int64_t hi = t->offset, cap = (int64_t)(t->st->size / mf_dtype_size(t->dtype));
  int ok = t->offset >= 0;
  for (int i = 0; i < t->ndim; ++i) {
    if (t->shape[i] == 0) return 0; /* addresses nothing */
    ok = ok && t->strides[i] >= 0 && t->strides[i] <= MF_MAX_NUMEL;
    if (ok) hi += (t->shape[i] - 1) * t->strides[i];
  }
  if (mf_shape_numel(t->ndim, t->shape) < 0) return -1;
  if (ok && hi < cap) return 0;
  char a[160], b[160];
  return mf_fail("a view of shape %s, strides %s at offset %lld would reach element %lld of a storage of %lld",
                 mf_shape_str(a, sizeof a, t->ndim, t->shape), mf_shape_str(b, sizeof b, t->ndim, t->strides),
                 (long long)t->offset, (long long)hi, (long long)cap);
}

void mf_view_of(mf_tensor *out, const mf_tensor *t) {
  *out = *t;
  mf_storage_retain(t->st);
}

void mf_tensor_free(mf_tensor *t) {
  mf_storage_release(t->st);
  t->st = NULL;
}

int mf_from_host(mf_tensor *t, const void *data) {
  size_t es = mf_dtype_size(t->dtype);
  return mf_write(t->st->buf, (size_t)t->offset * es, (size_t)mf_numel(t) * es, data);
}

int mf_reshape_view(mf_tensor *t, int ndim, const int64_t *shape) {
  if (!mf_is_contiguous(t)) return -1;
  t->ndim = ndim;
  memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
  mf_contiguous_strides(ndim, shape, t->strides);
  return mf_view_check(t);
}

int mf_permute(mf_tensor *t, const int *perm) {
  int64_t sh[MF_MAX_DIMS], st[MF_MAX_DIMS];
  for (int i = 0; i < t->ndim; ++i) {
    sh[i] = t->shape[perm[i]];
    st[i] = t->strides[perm[i]];
  }
  memcpy(t->shape, sh, sizeof sh);
  memcpy(t->strides, st, sizeof st);
  return mf_view_check(t);
}

int mf_narrow(mf_tensor *t, int dim, int64_t start, int64_t len) {
  t->offset += start * t->strides[dim];
  t->shape[dim] = len;
  return mf_view_check(t);
}

int mf_expand(mf_tensor *t, int ndim, const int64_t *shape) {
  int64_t sh[MF_MAX_DIMS], st[MF_MAX_DIMS];
  int lead = ndim - t->ndim;
  for (int i = 0; i < ndim; ++i) {
    int j = i - lead;
    if (j < 0) { sh[i] = shape[i]; st[i] = 0; continue; }
    if (t->shape[j] == shape[i]) { sh[i] = shape[i]; st[i] = t->strides[j]; }
    else { sh[i] = shape[i]; st[i] = 0; } /* caller checked t->shape[j] == 1 */
  }
  t->ndim = ndim;
  memcpy(t->shape, sh, sizeof sh);
  memcpy(t->strides, st, sizeof st);
  return mf_view_check(t);
}

int mf_broadcast_shape(int na, const int64_t *sa, int nb, const int64_t *sb,
                       int *nout, int64_t *sout) {
  int n = na > nb ? na : nb;
  for (int i = 0; i < n; ++i) {
    int ia = i - (n - na), ib = i - (n - nb);
    int64_t a = ia >= 0 ? sa[ia] : 1, b = ib >= 0 ? sb[ib] : 1;
    if (a != b && a != 1 && b != 1) {
      char x[128], y[128];
      return mf_fail("shapes %s and %s do not broadcast", mf_shape_str(x, sizeof x, na, sa),
                     mf_shape_str(y, sizeof y, nb, sb));
    }
    sout[i] = a == 1 ? b : a;
  }
  *nout = n;
  return 0;
}
