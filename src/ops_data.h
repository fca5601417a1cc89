/* Data launchers (cl/data.cl). Operands are
   contiguous f32 tensors with offset 0; the binding ensures it. */
#ifndef MF_OPS_DATA_H
#define MF_OPS_DATA_H

#include "tensor.h"

/* out {n, 2} from u {n, 3} uniforms and z {n, 2} normals; kind and the
   parameters as in cl/data.cl */
int mf_toy2d(mf_tensor *out, int kind, const mf_tensor *u, const mf_tensor *z, double s, double p1,
             double p2);

#endif
