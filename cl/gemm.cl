/* sgemm for CPU devices (src/blas.c uses it there instead of CLBlast).
   C = A B per batch b, C row-major m x n at c + b m n; both operands are read
   through their strides, so transposed views cost nothing:
     A(i, p) = a[oa + b sa + i ai + p ap],  B(p, j) = bm[ob + b sb + p bp + j bj].
   Work-item w owns a block of GEMM_MB rows x 32 columns of one batch. For
   each block of GEMM_KC values of p it packs B's 32 columns into local
   memory (zero-padded past n; it stays in L1), then walks its rows in
   micro-tiles of 8 x 32: 16 float16 accumulators, per p two vector loads of
   packed B and 8 broadcasts of A, 16 fused multiply-adds. A micro-tile
   starts from 0 at the first p-block and from C afterwards; rows past m
   repeat row m - 1 and are not stored. */
#ifdef MF_CPU
#define GEMM_MB 64
#define GEMM_KC 256

#define GEMM_ROW(r)                                                            \
  {                                                                            \
    float16 av = (float16)(ar##r[0]);                                          \
    ar##r += ap;                                                               \
    c##r##0 = fma(av, b0, c##r##0);                                            \
    c##r##1 = fma(av, b1, c##r##1);                                            \
  }
/* C rows i + r, columns j0..j0+31 <-> accumulators, through t when partial */
#define GEMM_LOAD(r)                                                           \
  c##r##0 = vload16(0, t + 32 * (r));                                          \
  c##r##1 = vload16(1, t + 32 * (r));
#define GEMM_SAVE(r)                                                           \
  vstore16(c##r##0, 0, t + 32 * (r));                                          \
  vstore16(c##r##1, 1, t + 32 * (r));
#define GEMM_ROWPTR(r)                                                         \
  global const float *ar##r = A + (long)min(i + (r), i1 - 1) * ai + (long)p0 * ap;
#define GEMM_EACH(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7)

kernel void gemm_cpu_f32(global float *c, int m, int n, int k,
                         global const float *a, int oa, int sa, int ai, int ap,
                         global const float *bm, int ob, int sb, int bp, int bj) {
  local float bt[GEMM_KC * 32];
  int nb = (n + 31) / 32, mb = (m + GEMM_MB - 1) / GEMM_MB;
  int w = get_global_id(0);
  int bi = w / (mb * nb), rem = w - bi * mb * nb;
  int i0 = (rem / nb) * GEMM_MB, j0 = (rem % nb) * 32;
  int i1 = min(m, i0 + GEMM_MB), jn = min(32, n - j0);
  global const float *A = a + oa + (long)bi * sa;
  global const float *B = bm + ob + (long)bi * sb + (long)j0 * bj;
  global float *C = c + (long)bi * m * n + j0;
  for (int p0 = 0; p0 < k; p0 += GEMM_KC) {
    int kc = min(GEMM_KC, k - p0);
    for (int p = 0; p < kc; ++p) {
      global const float *br = B + (long)(p0 + p) * bp;
      if (bj == 1 && jn == 32) {
        vstore16(vload16(0, br), 0, bt + 32 * p);
        vstore16(vload16(1, br), 1, bt + 32 * p);
      } else {
        for (int j = 0; j < 32; ++j) bt[32 * p + j] = j < jn ? br[(long)j * bj] : 0.0f;
      }
    }
    for (int i = i0; i < i1; i += 8) {
      int full = i + 8 <= i1 && jn == 32;
      global float *cp = C + (long)i * n;
      float t[8 * 32];
      if (p0 == 0) {
        for (int l = 0; l < 8 * 32; ++l) t[l] = 0.0f;
      } else if (full) {
        for (int r = 0; r < 8; ++r) {
          vstore16(vload16(0, cp + (long)r * n), 0, t + 32 * r);
          vstore16(vload16(1, cp + (long)r * n), 1, t + 32 * r);
        }
      } else {
        for (int r = 0; r < 8; ++r)
          for (int j = 0; j < 32; ++j) t[32 * r + j] = i + r < i1 && j < jn ? cp[(long)r * n + j] : 0.0f;
      }
      float16 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;
      GEMM_EACH(GEMM_LOAD)
      GEMM_EACH(GEMM_ROWPTR)
      local const float *bq = bt;
      for (int p = 0; p < kc; ++p, bq += 32) {
        float16 b0 = vload16(0, bq), b1 = vload16(1, bq);
        GEMM_EACH(GEMM_ROW)
      }
      GEMM_EACH(GEMM_SAVE)
      if (full) {
        for (int r = 0; r < 8; ++r) {
          vstore16(vload16(0, t + 32 * r), 0, cp + (long)r * n);
          vstore16(vload16(1, t + 32 * r), 1, cp + (long)r * n);
        }
      } else {
        for (int r = 0; r < 8 && i + r < i1; ++r)
          for (int j = 0; j < jn; ++j) cp[(long)r * n + j] = t[32 * r + j];
      }
    }
  }
}
#endif
