/* Launchers of cl/data.cl (toy data). */
#include "ops.h"
#include "ops_data.h"
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
