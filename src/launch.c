/* Launch helpers shared by the kernel launchers (see launch.h). */
#include "launch.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "runtime.h"

void mf_walk_of(mf_walk *w, const mf_tensor *t, int ond, const int64_t *osh) {
  memset(w, 0, sizeof *w);
  int same = t->ndim == ond && mf_is_contiguous(t);
  for (int i = 0; same && i < ond; ++i) same = t->shape[i] == osh[i];
  if (same) return;
  /* t broadcast to the output shape: missing or size-1 dims read with stride 0 */
  w->nd = ond ? ond : 1;
  for (int i = 0; i < ond; ++i) {
    int j = i - (ond - t->ndim);
    w->shape.s[i] = (cl_int)osh[i];
    w->st.s[i] = (j < 0 || (t->shape[j] == 1 && osh[i] != 1)) ? 0 : (cl_int)t->strides[j];
  }
  if (ond == 0) { w->shape.s[0] = 1; w->st.s[0] = 0; }
}

size_t mf_grid(size_t n) {
  mf_runtime *r = mf_rt();
  size_t cu = (size_t)(r && r->info.compute_units > 0 ? r->info.compute_units : 1);
  if (r && r->info.is_gpu) { /* grid-stride: enough work-items to fill the GPU */
    size_t cap = cu * 2048;
    return n < cap ? n : cap;
  }
  /* CPU: each work-item takes one contiguous run (MF_FOR); runs of at least
     4096 elements, up to 16 runs per core so PoCL's threads balance */
  size_t g = (n + 4095) / 4096, cap = cu * 16;
  return g < 1 ? 1 : g > cap ? cap : g;
}

cl_kernel mf_typed_kernel(const char *prefix, mf_dtype dt) {
  char name[96];
  snprintf(name, sizeof name, "%s_%s", prefix, mf_dtype_name(dt));
  mf_runtime *r = mf_rt();
  if (!r) return NULL;
  if (dt == MF_F64 && !r->fp64) {
    mf_fail("dtype f64 needs cl_khr_fp64, which %s lacks%s", r->info.name,
            r->info.fp64 ? " (disabled by MOONFLOW_DISABLE_FP64)" : "");
    return NULL;
  }
  cl_kernel k = mf_kernel(name);
  if (!k) {
    const char *op = strchr(prefix, '_');
    mf_fail("%s is not supported for dtype %s", op ? op + 1 : prefix, mf_dtype_name(dt));
  }
  return k;
}

int mf_args(cl_kernel k, int n, ...) {
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; ++i) {
    size_t sz = va_arg(ap, size_t);
    const void *p = va_arg(ap, const void *);
    cl_int e = clSetKernelArg(k, (cl_uint)i, sz, p);
    if (e != CL_SUCCESS) {
      va_end(ap);
      return mf_fail("clSetKernelArg %d: %s", i, mf_cl_error_name(e));
    }
  }
  va_end(ap);
  return 0;
}

size_t mf_scalar_of(mf_scalar *s, mf_dtype dt, double v) {
  switch (dt) {
    case MF_F32: s->f = (cl_float)v; return sizeof(cl_float);
    case MF_F64: s->d = v; return sizeof(cl_double);
    default: /* saturating: clamp's infinite bounds and NaN must not be UB */
      s->i = v >= 2147483647.0 ? 2147483647 : v <= -2147483648.0 ? (cl_int)-2147483647 - 1 : v == v ? (cl_int)v : 0;
      return sizeof(cl_int);
  }
}

void mf_walk_full(mf_walk *w, const mf_tensor *t, int ond, const int64_t *osh) {
  mf_walk_of(w, t, ond, osh);
  if (w->nd) return;
  int64_t cs[MF_MAX_DIMS];
  mf_contiguous_strides(ond, osh, cs);
  w->nd = ond ? ond : 1;
  for (int i = 0; i < ond; ++i) { w->shape.s[i] = (cl_int)osh[i]; w->st.s[i] = (cl_int)cs[i]; }
  if (ond == 0) { w->shape.s[0] = 1; w->st.s[0] = 0; }
}
