/* Matrix products on CPU OpenCL devices through the host's OpenBLAS, run as
   native kernels in the device queue (PoCL's buffers are host memory). */
#ifndef MF_BLAS_HOST_H
#define MF_BLAS_HOST_H

#include "tensor.h"

/* out (fresh, contiguous {batch,} m x n) = a b for a CPU device with native
   kernels and OpenBLAS loadable, operands with a BLAS layout (row-major or
   transposed last two dims). Returns 0 when enqueued, 1 when this path does
   not apply (the caller uses another), -1 on error (set). */
int mf_host_gemm(mf_tensor *out, const mf_tensor *a, const mf_tensor *b, int64_t batch, int64_t m, int64_t n,
                 int64_t k);

#endif
