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

/* Grid-stride loop: consecutive work-items touch consecutive elements. */
#define MF_FOR(i, n) for (int i = get_global_id(0); i < (n); i += get_global_size(0))
