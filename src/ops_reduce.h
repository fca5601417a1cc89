/* Launcher of cl/reduce.cl. */
#ifndef MF_OPS_REDUCE_H
#define MF_OPS_REDUCE_H

#include "tensor.h"

/* op: "sum", "sumsq", "max", "min"; reduces the dims whose bit is set in
   mask (bit d for dim d, 0-based) */
int mf_reduce(mf_tensor *out, const char *op, const mf_tensor *a, unsigned mask, int keepdim);

#endif
