#include <string.h>

#include "ops.h"
#include "runtime.h"

/* ---- out-of-range indices: flagged on the device, raised at the next read.
   Checking on the host would read the indices back (a sync per lookup);
   like a GPU framework's device-side assert, the kernels record the first
   bad index in a small buffer and mf_to_host reports it. */

enum { OP_INDEX_SELECT, OP_INDEX_ADD, OP_GATHER, OP_SCATTER_ADD, OP_COUNT };
static const char *const op_names[OP_COUNT] = {"index_select", "index_add", "gather", "scatter_add"};

#define REC 5 /* {flag, tag, index, position (0-based, C order in idx), size} */
static cl_mem rec_buf;
static int pending; /* an index kernel ran since the last check */

/* the record buffer (made zeroed on first use) for a launch of `op` over dim */
static int record_args(int op, int dim, cl_mem *buf, cl_int *tag) {
  if (!rec_buf) {
    mf_runtime *r = mf_rt();
    cl_int zero[REC] = {0}, e;
    if (!r) return -1;
    rec_buf = clCreateBuffer(r->ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof zero, zero, &e);
    if (e != CL_SUCCESS) {
      rec_buf = NULL;
      return mf_fail("index error record: clCreateBuffer: %s", mf_cl_error_name(e));
    }
  }
  pending = 1;
  *buf = rec_buf;
  *tag = op * MF_MAX_DIMS + dim;
  return 0;
}

/* fetched: a non-blocking read of the record is queued into rec_host */
static cl_int rec_host[REC];
static int fetched;
static cl_int fetch_error;

void mf_device_errors_fetch(void) {
  if (!pending) return;
  pending = 0;
  fetched = 1;
  /* direct: a check is not a transfer the stats count */
  fetch_error = clEnqueueReadBuffer(mf_rt()->queue, rec_buf, CL_FALSE, 0, sizeof rec_host, rec_host, 0, NULL, NULL);
}

int mf_device_errors(void) {
  mf_device_errors_fetch();
  if (!fetched) return 0;
  fetched = 0;
  mf_runtime *r = mf_rt();
  cl_int e = fetch_error == CL_SUCCESS ? clFinish(r->queue) : fetch_error;
  if (e != CL_SUCCESS) return mf_fail("reading the index error record: %s", mf_cl_error_name(e));
  const cl_int *rec = rec_host;
  if (!rec[0]) return 0;
  static const cl_int zero[REC] = {0};
  e = clEnqueueWriteBuffer(r->queue, rec_buf, CL_TRUE, 0, sizeof zero, zero, 0, NULL, NULL);
  if (e != CL_SUCCESS) return mf_fail("clearing the index error record: %s", mf_cl_error_name(e));
  int op = rec[1] / MF_MAX_DIMS, dim = rec[1] % MF_MAX_DIMS + 1;
  const char *name = op >= 0 && op < OP_COUNT ? op_names[op] : "an index op";
  if (rec[4] == 0)
    return mf_fail("%s was given index %d at position %d of its indices, but dim %d is empty (found on the device; "
                   "reported at the next read or synchronize)", name, rec[2], rec[3] + 1, dim);
  return mf_fail("%s was given index %d at position %d of its indices, outside [0, %d] for dim %d of size %d "
                 "(found on the device; reported at the next read or synchronize)", name, rec[2], rec[3] + 1, rec[4] - 1, dim, rec[4]);
}

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
    int rc = mf_narrow(&slot, dim, at, ts[i]->shape[dim]) || (mf_numel(&slot) && mf_copy(&slot, ts[i]));
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

static int index_launch(int op, int dim, mf_tensor *out, const mf_tensor *src, const mf_tensor *idx,
                        cl_int outer, cl_int nidx, cl_int inner, cl_int size) {
  cl_kernel k = mf_typed_kernel(op_names[op], src->dtype);
  cl_mem rec;
  cl_int tag;
  if (!k || record_args(op, dim, &rec, &tag)) return -1;
  mf_tensor ci;
  if (mf_contiguous(&ci, idx)) return -1;
  cl_int os = (cl_int)src->offset, oi = (cl_int)ci.offset;
  int rc = mf_args(k, 11, MF_ARG(out->st->buf), MF_ARG(src->st->buf), MF_ARG(os), MF_ARG(ci.st->buf),
                   MF_ARG(oi), MF_ARG(outer), MF_ARG(nidx), MF_ARG(inner), MF_ARG(size), MF_ARG(rec),
                   MF_ARG(tag)) ||
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
    rc = index_launch(OP_INDEX_SELECT, dim, out, &c, idx, outer, (cl_int)sh[dim], inner, (cl_int)a->shape[dim]);
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
    rc = index_launch(OP_INDEX_ADD, dim, out, &c, idx, outer, (cl_int)g->shape[dim], inner, (cl_int)size);
    if (rc) mf_tensor_free(out);
  }
  mf_tensor_free(&c);
  return rc;
}

int mf_gather(mf_tensor *out, const mf_tensor *a, int dim, const mf_tensor *idx) {
  cl_kernel k = mf_typed_kernel("gather", a->dtype);
  cl_mem rec;
  cl_int tag;
  if (!k || record_args(OP_GATHER, dim, &rec, &tag)) return -1;
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
    rc = mf_args(k, 13, MF_ARG(out->st->buf), MF_ARG(a->st->buf), MF_ARG(oa), MF_ARG(ci.st->buf),
                 MF_ARG(oi), MF_ARG(n), MF_ARG(nd), MF_ARG(w.shape), MF_ARG(w.st), MF_ARG(cd),
                 MF_ARG(size), MF_ARG(rec), MF_ARG(tag)) ||
         mf_launch(k, mf_grid((size_t)n), 0);
    if (rc) mf_tensor_free(out);
  }
  mf_tensor_free(&ci);
  return rc;
}

int mf_scatter_add(mf_tensor *out, const mf_tensor *like, int dim, const mf_tensor *idx,
                   const mf_tensor *g) {
  cl_kernel k = mf_typed_kernel("scatter_add", g->dtype);
  cl_mem rec;
  cl_int tag;
  if (!k || record_args(OP_SCATTER_ADD, dim, &rec, &tag)) return -1;
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
    rc = mf_args(k, 11, MF_ARG(out->st->buf), MF_ARG(cg.st->buf), MF_ARG(ci.st->buf), MF_ARG(lines),
                 MF_ARG(nd), MF_ARG(w.shape), MF_ARG(w.st), MF_ARG(cd), MF_ARG(size), MF_ARG(rec), MF_ARG(tag)) ||
         mf_launch(k, mf_grid((size_t)lines), 0);
  }
  if (rc && out->st) mf_tensor_free(out);
  mf_tensor_free(&ci);
  mf_tensor_free(&cg);
  return rc;
}
