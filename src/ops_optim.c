/* Launchers of cl/optim.cl: one kernel per optimizer step over a flat buffer. */
#include <string.h>

#include "launch.h"
#include "ops_optim.h"
#include "runtime.h"

/* A floating scalar argument in the buffer's dtype. */
static int set_scalar(cl_kernel k, cl_uint i, mf_dtype dt, double v) {
  mf_scalar s;
  size_t sz = mf_scalar_of(&s, dt, v);
  cl_int e = clSetKernelArg(k, i, sz, &s);
  return e == CL_SUCCESS ? 0 : mf_fail("clSetKernelArg %u: %s", i, mf_cl_error_name(e));
}

static int set_buf(cl_kernel k, cl_uint *i, const mf_tensor *t) {
  cl_int off = (cl_int)t->offset;
  cl_int e = clSetKernelArg(k, (*i)++, sizeof(cl_mem), &t->st->buf);
  if (e == CL_SUCCESS) e = clSetKernelArg(k, (*i)++, sizeof(cl_int), &off);
  return e == CL_SUCCESS ? 0 : mf_fail("clSetKernelArg %u: %s", *i, mf_cl_error_name(e));
}

static int set_int(cl_kernel k, cl_uint *i, int v) {
  cl_int x = v;
  cl_int e = clSetKernelArg(k, (*i)++, sizeof(cl_int), &x);
  return e == CL_SUCCESS ? 0 : mf_fail("clSetKernelArg %u: %s", *i, mf_cl_error_name(e));
}

static int set_f(cl_kernel k, cl_uint *i, mf_dtype dt, double v) { return set_scalar(k, (*i)++, dt, v); }

/* every operand contiguous, same dtype (f32/f64) and length as p */
static int check(const char *what, const mf_tensor *p, const mf_tensor *t) {
  if (!t) return 0;
  if (p->dtype == MF_I32) return mf_fail("%s: parameters must be f32 or f64, got i32", what);
  if (t->dtype != p->dtype)
    return mf_fail("%s: dtypes %s and %s differ", what, mf_dtype_name(p->dtype), mf_dtype_name(t->dtype));
  if (!mf_is_contiguous(t)) return mf_fail("%s: buffers must be contiguous", what);
  if (mf_numel(t) != mf_numel(p))
    return mf_fail("%s: buffers of %lld and %lld elements", what, (long long)mf_numel(p), (long long)mf_numel(t));
  return 0;
}

static int check_ss(const char *what, const mf_tensor *p, const mf_tensor *ss) {
  if (!ss) return 0;
  if (ss->dtype != p->dtype || mf_numel(ss) != 1)
    return mf_fail("%s: the squared norm must be one %s element", what, mf_dtype_name(p->dtype));
  return 0;
}

/* (ss, oss, max_norm, clip) arguments; ss stands in for itself when absent */
static int set_clip(cl_kernel k, cl_uint *i, const mf_tensor *p, const mf_tensor *ss, double max_norm) {
  return set_buf(k, i, ss ? ss : p) || set_f(k, i, p->dtype, max_norm) || set_int(k, i, ss != NULL);
}

int mf_adamw(mf_tensor *p, const mf_tensor *g, mf_tensor *m, mf_tensor *v, const mf_adamw_hp *hp,
             const mf_tensor *ss, double max_norm) {
  if (check("adamw", p, p) || check("adamw", p, g) || check("adamw", p, m) || check("adamw", p, v) ||
      check_ss("adamw", p, ss))
    return -1;
  cl_kernel k = mf_typed_kernel("optim_adamw", p->dtype);
  if (!k) return -1;
  int n = (int)mf_numel(p);
  cl_uint i = 0;
  mf_dtype dt = p->dtype;
  if (set_buf(k, &i, p) || set_buf(k, &i, g) || set_buf(k, &i, m) || set_buf(k, &i, v) || set_int(k, &i, n) ||
      set_f(k, &i, dt, hp->lr) || set_f(k, &i, dt, hp->beta1) || set_f(k, &i, dt, hp->beta2) ||
      set_f(k, &i, dt, hp->eps) || set_f(k, &i, dt, hp->weight_decay) || set_f(k, &i, dt, hp->bc1) ||
      set_f(k, &i, dt, hp->bc2) || set_clip(k, &i, p, ss, max_norm))
    return -1;
  return n ? mf_launch(k, mf_grid((size_t)n), 0) : 0;
}

int mf_sgd(mf_tensor *p, const mf_tensor *g, mf_tensor *buf, const mf_sgd_hp *hp, const mf_tensor *ss,
           double max_norm) {
  if (hp->momentum != 0 && !buf) return mf_fail("sgd: momentum %g needs a buffer", hp->momentum);
  if (check("sgd", p, p) || check("sgd", p, g) || check("sgd", p, buf) || check_ss("sgd", p, ss)) return -1;
  cl_kernel k = mf_typed_kernel("optim_sgd", p->dtype);
  if (!k) return -1;
  int n = (int)mf_numel(p);
  cl_uint i = 0;
  mf_dtype dt = p->dtype;
  if (set_buf(k, &i, p) || set_buf(k, &i, g) || set_buf(k, &i, buf ? buf : p) || set_int(k, &i, n) ||
      set_f(k, &i, dt, hp->lr) || set_f(k, &i, dt, hp->momentum) || set_f(k, &i, dt, hp->dampening) ||
      set_f(k, &i, dt, hp->weight_decay) || set_int(k, &i, hp->nesterov) || set_int(k, &i, hp->first) ||
      set_clip(k, &i, p, ss, max_norm))
    return -1;
  return n ? mf_launch(k, mf_grid((size_t)n), 0) : 0;
}

int mf_ema(mf_tensor *shadow, const mf_tensor *p, double decay) {
  if (check("ema", shadow, shadow) || check("ema", shadow, p)) return -1;
  cl_kernel k = mf_typed_kernel("optim_ema", p->dtype);
  if (!k) return -1;
  int n = (int)mf_numel(p);
  cl_uint i = 0;
  if (set_buf(k, &i, shadow) || set_buf(k, &i, p) || set_int(k, &i, n) || set_f(k, &i, p->dtype, decay))
    return -1;
  return n ? mf_launch(k, mf_grid((size_t)n), 0) : 0;
}

int mf_clip_scale(mf_tensor *g, const mf_tensor *ss, double max_norm) {
  if (check("clip_grad_norm", g, g) || check_ss("clip_grad_norm", g, ss)) return -1;
  cl_kernel k = mf_typed_kernel("optim_clip", g->dtype);
  if (!k) return -1;
  int n = (int)mf_numel(g);
  cl_uint i = 0;
  if (set_buf(k, &i, g) || set_int(k, &i, n) || set_buf(k, &i, ss) || set_f(k, &i, g->dtype, max_norm)) return -1;
  return n ? mf_launch(k, mf_grid((size_t)n), 0) : 0;
}
