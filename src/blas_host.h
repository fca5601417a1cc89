/* Matrix products on CPU OpenCL devices through the host's OpenBLAS, run as
   native kernels in the device queue (PoCL's buffers are host memory), and
   the pieces other host kernels share (attention_host.c). */
#ifndef MF_BLAS_HOST_H
#define MF_BLAS_HOST_H

#include "tensor.h"

/* out (fresh, contiguous {batch,} m x n) = a b for a CPU device with native
   kernels and OpenBLAS loadable, operands with a BLAS layout (row-major or
   transposed last two dims). Returns 0 when enqueued, 1 when this path does
   not apply (the caller uses another), -1 on error (set). */
int mf_host_gemm(mf_tensor *out, const mf_tensor *a, const mf_tensor *b, int64_t batch, int64_t m, int64_t n,
                 int64_t k);

/* cblas_{s,d}gemm with CBLAS's enum values as ints */
enum { MF_CBLAS_ROW = 101, MF_CBLAS_NOTRANS = 111, MF_CBLAS_TRANS = 112 };
typedef void (*mf_sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float,
                            float *, int);
typedef void (*mf_dgemm_fn)(int, int, int, int, int, int, double, const double *, int, const double *, int,
                            double, double *, int);
#define MF_HOST_MAX_THREADS 16
#define MF_HOST_MAX_BUFFERS 12
typedef struct {
  mf_sgemm_fn sgemm;
  mf_dgemm_fn dgemm;
  int threads; /* the device's compute units, at most MF_HOST_MAX_THREADS */
} mf_host_blas;

/* The host BLAS where this path serves the device (a CPU device with native
   kernels, OpenBLAS loaded, MOONFLOW_GEMM neither device nor clblast), else NULL. */
const mf_host_blas *mf_host_blas_get(void);

/* body(arg, t, lo, hi) over [0, n) split in order into one part per thread
   t < threads, each with a single-threaded OpenBLAS; with one part, a single
   call with OpenBLAS threaded as it is. Returns when every part is done. */
typedef void (*mf_host_body)(void *arg, int t, int64_t lo, int64_t hi);
void mf_host_split(int64_t n, mf_host_body body, void *arg);

/* Enqueues fn(copy of args, size bytes) as a native kernel in the queue, the
   buffers of the n tensors ts mapped around it; before the copy, *slots[i]
   (inside args) gets the host address of ts[i] at its offset. The last
   nwrite tensors are mapped for writing. 0 when enqueued, -1 on error (set). */
int mf_host_enqueue(void(CL_CALLBACK *fn)(void *), void *args, size_t size, int n, const mf_tensor *const *ts,
                    void **const *slots, int nwrite);

#endif
