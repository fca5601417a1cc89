/* Shared by every kernel family. Element offsets and counts are ints:
   a tensor holds fewer than 2^31 elements.
   A strided operand is described by (nd, shape, strides) as int8 vectors:
   nd == 0 means "contiguous, same shape as the output" (the fast path). */
#ifdef MF_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

/* Offset of the i-th element (C order over `shape`) given `st` strides. */
inline int mf_sidx(int i, int nd, int8 shape, int8 st) {
  int sh[8], s[8];
  vstore8(shape, 0, sh);
  vstore8(st, 0, s);
  int off = 0;
  for (int d = nd - 1; d > 0; --d) {
    int q = i / sh[d];
    off += (i - q * sh[d]) * s[d];
    i = q;
  }
  return off + i * s[0];
}

/* The contiguous-run split: work-item g of G takes the run [g R, g R + R)
   of [0, n), R = ceil(n / G) rounded up to 16 (so vector loops stay whole),
   returned as (lo, hi). On CPUs (MF_CPU, set by the runtime) every MF_FOR
   loop runs this way, since PoCL runs a work-group's items one after another
   on one thread: each thread streams through memory and its loop vectorizes.
   A grid stride would jump G elements per step (about 40x slower there).
   Kernels with a CPU shape of their own (nn.cl, diffusion.cl) use it on
   every device. */
inline int2 mf_run(int n) {
  long G = get_global_size(0), g = get_global_id(0);
  long R = (((long)n + G - 1) / G + 15) & ~15L;
  long lo = min((long)n, g * R);
  return (int2)((int)lo, (int)min((long)n, lo + R));
}

#ifdef MF_CPU
#define MF_FOR(i, n) for (int i##_hi = mf_run(n).y, i = mf_run(n).x; i < i##_hi; ++i)
#else
/* Grid-stride loop: consecutive work-items touch consecutive elements
   (coalesced on GPUs). */
#define MF_FOR(i, n) for (int i = get_global_id(0); i < (n); i += get_global_size(0))
#endif
