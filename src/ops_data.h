/* Data and metrics launchers (cl/data.cl, cl/metrics.cl). Operands are
   contiguous f32 tensors with offset 0; the binding ensures it. */
#ifndef MF_OPS_DATA_H
#define MF_OPS_DATA_H

#include "tensor.h"

/* out {n, 2} from u {n, 3} uniforms and z {n, 2} normals; kind and the
   parameters as in cl/data.cl */
int mf_toy2d(mf_tensor *out, int kind, const mf_tensor *u, const mf_tensor *z, double s, double p1,
             double p2);

/* out {k, m} = sqrt(max(a2[i] + b2[j] - 2 ab[i, j], 0)); ab {k, m}, a2 {k}, b2 {m},
   all of one float dtype (cl/metrics.cl) */
int mf_pair_dist(mf_tensor *out, const mf_tensor *ab, const mf_tensor *a2, const mf_tensor *b2);

#endif
