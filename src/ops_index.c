#include <string.h>

#include "ops.h"
#include "runtime.h"

int mf_cat(mf_tensor *out, const mf_tensor *const *ts, int n, int dim) {
  const mf_tensor *f = ts[0];
  int64_t sh[MF_MAX_DIMS];
  memcpy(sh, f->shape, sizeof sh);
  sh[dim] = 0;
  for (int i = 0; i < n; ++i) sh[dim] += ts[i]->shape[dim];
  if (mf_empty(out, f->dtype, f->ndim, sh)) return -1;
  int64_t at = 0;
  for (int i = 0; i < n; ++i) {
    mf_tensor slot;
    mf_view_of(&slot, out);
    mf_narrow(&slot, dim, at, ts[i]->shape[dim]);
    int rc = mf_numel(&slot) ? mf_copy(&slot, ts[i]) : 0;
    mf_tensor_free(&slot);
    if (rc) {
      mf_tensor_free(out);
      return -1;
    }
    at += ts[i]->shape[dim];
  }
  return 0;
}

/* a contiguous, seen as [outer, size, inner] around dim */
static void around(const mf_tensor *a, int dim, cl_int *outer, cl_int *inner) {
  int64_t o = 1, in = 1;
  for (int d = 0; d < dim; ++d) o *= a->shape[d];
  for (int d = dim + 1; d < a->ndim; ++d) in *= a->shape[d];
  *outer = (cl_int)o;
  *inner = (cl_int)in;
}

static int index_launch(const char *prefix, mf_tensor *out, const mf_tensor *src, const mf_tensor *idx,
                        cl_int outer, cl_int nidx, cl_int inner, cl_int size) {
  cl_kernel k = mf_typed_kernel(prefix, src->dtype);
  if (!k) return -1;
  mf_tensor ci;
  if (mf_contiguous(&ci, idx)) return -1;
  cl_int os = (cl_int)src->offset, oi = (cl_int)ci.offset;
  int rc = mf_args(k, 9, MF_ARG(out->st->buf), MF_ARG(src->st->buf), MF_ARG(os), MF_ARG(ci.st->buf),
                   MF_ARG(oi), MF_ARG(outer), MF_ARG(nidx), MF_ARG(inner), MF_ARG(size)) ||
           mf_launch(k, mf_grid((size_t)mf_numel(out)), 0);
  mf_tensor_free(&ci);
  return rc;
}

int mf_index_select(mf_tensor *out, const mf_tensor *a, int dim, const mf_tensor *idx) {
  mf_tensor c;
  if (mf_contiguous(&c, a)) return -1;
  int64_t sh[MF_MAX_DIMS];
  memcpy(sh, a->shape, sizeof sh);
  sh[dim] = mf_numel(idx);
  cl_int outer, inner;
  around(a, dim, &outer, &inner);
  int rc = mf_empty(out, a->dtype, a->ndim, sh);
  if (!rc) {
    rc = index_launch("index_select", out, &c, idx, outer, (cl_int)sh[dim], inner, (cl_int)a->shape[dim]);
    if (rc) mf_tensor_free(out);
  }
  mf_tensor_free(&c);
  return rc;
}

int mf_index_add(mf_tensor *out, const mf_tensor *g, int dim, const mf_tensor *idx, int64_t size) {
  mf_tensor c;
  if (mf_contiguous(&c, g)) return -1;
  int64_t sh[MF_MAX_DIMS];
  memcpy(sh, g->shape, sizeof sh);
  sh[dim] = size;
  cl_int outer, inner;
  around(g, dim, &outer, &inner);
  int rc = mf_empty(out, g->dtype, g->ndim, sh);
  if (!rc) {
    rc = index_launch("index_add", out, &c, idx, outer, (cl_int)g->shape[dim], inner, (cl_int)size);
    if (rc) mf_tensor_free(out);
  }
  mf_tensor_free(&c);
  return rc;
}

int mf_gather(mf_tensor *out, const mf_tensor *a, int dim, const mf_tensor *idx) {
  cl_kernel k = mf_typed_kernel("gather", a->dtype);
  if (!k) return -1;
  mf_tensor ci;
  if (mf_contiguous(&ci, idx)) return -1;
  int rc = mf_empty(out, a->dtype, idx->ndim, idx->shape);
  if (!rc) {
    mf_walk w;
    memset(&w, 0, sizeof w);
    for (int d = 0; d < a->ndim; ++d) {
      w.shape.s[d] = (cl_int)idx->shape[d];
      w.st.s[d] = (cl_int)a->strides[d];
    }
    cl_int oa = (cl_int)a->offset, oi = (cl_int)ci.offset, n = (cl_int)mf_numel(out), nd = a->ndim,
           cd = dim, size = (cl_int)a->shape[dim];
    rc = mf_args(k, 11, MF_ARG(out->st->buf), MF_ARG(a->st->buf), MF_ARG(oa), MF_ARG(ci.st->buf),
                 MF_ARG(oi), MF_ARG(n), MF_ARG(nd), MF_ARG(w.shape), MF_ARG(w.st), MF_ARG(cd),
                 MF_ARG(size)) ||
         mf_launch(k, mf_grid((size_t)n), 0);
    if (rc) mf_tensor_free(out);
  }
  mf_tensor_free(&ci);
  return rc;
}

int mf_scatter_add(mf_tensor *out, const mf_tensor *like, int dim, const mf_tensor *idx,
                   const mf_tensor *g) {
  cl_kernel k = mf_typed_kernel("scatter_add", g->dtype);
  if (!k) return -1;
  mf_tensor ci, cg;
  if (mf_contiguous(&ci, idx)) return -1;
  if (mf_contiguous(&cg, g)) {
    mf_tensor_free(&ci);
    return -1;
  }
  int rc = mf_empty(out, g->dtype, like->ndim, like->shape) || mf_fill(out, 0);
  if (!rc) {
    mf_walk w;
    memset(&w, 0, sizeof w);
    for (int d = 0; d < like->ndim; ++d) {
      w.shape.s[d] = (cl_int)idx->shape[d];
      w.st.s[d] = (cl_int)out->strides[d];
    }
    cl_int lines = (cl_int)(mf_numel(idx) / (idx->shape[dim] ? idx->shape[dim] : 1));
    cl_int nd = like->ndim, cd = dim, size = (cl_int)like->shape[dim];
    /* g and idx offsets are folded into contiguous copies only when zero */
    if (ci.offset || cg.offset) {
      mf_tensor a2, b2;
      mf_cast(&a2, &ci, ci.dtype);
      mf_cast(&b2, &cg, cg.dtype);
      mf_tensor_free(&ci);
      mf_tensor_free(&cg);
      ci = a2;
      cg = b2;
    }
    rc = mf_args(k, 9, MF_ARG(out->st->buf), MF_ARG(cg.st->buf), MF_ARG(ci.st->buf), MF_ARG(lines),
                 MF_ARG(nd), MF_ARG(w.shape), MF_ARG(w.st), MF_ARG(cd), MF_ARG(size)) ||
         mf_launch(k, mf_grid((size_t)lines), 0);
  }
  if (rc && out->st) mf_tensor_free(out);
  mf_tensor_free(&ci);
  mf_tensor_free(&cg);
  return rc;
}
