/* Launchers of cl/data.cl (toy data) and cl/metrics.cl (distances). */
#include "ops_data.h"

#include "launch.h"
#include "runtime.h"

int mf_toy2d(mf_tensor *out, int kind, const mf_tensor *u, const mf_tensor *z, double s, double p1,
             double p2) {
  int64_t n = u->shape[0], sh[2] = {n, 2};
  if (mf_empty(out, MF_F32, 2, sh)) return -1;
  if (n == 0) return 0;
  cl_kernel k = mf_kernel("toy2d_f32");
  cl_int cn = (cl_int)n, ck = kind;
  cl_float fs = (cl_float)s, f1 = (cl_float)p1, f2 = (cl_float)p2;
  if (!k || mf_args(k, 8, MF_ARG(out->st->buf), MF_ARG(u->st->buf), MF_ARG(z->st->buf), MF_ARG(cn),
                    MF_ARG(ck), MF_ARG(fs), MF_ARG(f1), MF_ARG(f2)) ||
      mf_launch(k, mf_grid((size_t)n), 0)) {
    mf_tensor_free(out);
    return -1;
  }
  return 0;
}

int mf_pair_dist(mf_tensor *out, const mf_tensor *ab, const mf_tensor *a2, const mf_tensor *b2) {
  int64_t k = ab->shape[0], m = ab->shape[1];
  if (mf_empty(out, ab->dtype, 2, ab->shape)) return -1;
  if (k * m == 0) return 0;
  cl_kernel kern = mf_typed_kernel("pair_dist", ab->dtype);
  cl_int ck = (cl_int)k, cm = (cl_int)m;
  if (!kern || mf_args(kern, 6, MF_ARG(out->st->buf), MF_ARG(ab->st->buf), MF_ARG(a2->st->buf),
                       MF_ARG(b2->st->buf), MF_ARG(ck), MF_ARG(cm)) ||
      mf_launch(kern, mf_grid((size_t)(k * m)), 0)) {
    mf_tensor_free(out);
    return -1;
  }
  return 0;
}
