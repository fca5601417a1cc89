/* Softmax over the last dim of a contiguous [rows, cols] block, one kernel
   per mode (MF_SOFTMAX_MODES of src/kernel_names.h): sm_<mode>_<dtype>.
   A work-item takes a run of rows (mf_run) and walks each row in 16-lane
   vectors (PoCL vectorizes exp so); the rows are independent, so the kernel
   is correct on any device. A GPU shape (a work-group per row, as nnwg_* of
   nn.cl) would go beside it.
   out, a, b: forward a = x (b unused); derivatives a = g or t, b = y. */
#define SM_ROWS(r, rows) for (int r##_hi = mf_run(rows).y, r = mf_run(rows).x; r < r##_hi; ++r)

/* the loops over a row: 16-lane vectors, then the scalar tail */
#define SM_VEC for (k = 0; k + 16 <= cols; k += 16)
#define SM_TAIL for (; k < cols; ++k)

/* y = exp(x - m) / s, m = max x, s = sum exp(x - m) */
#define SM_BODY_softmax(T, T16, suf)                                           \
  T16 m16 = (T16)(-INFINITY), s16 = (T16)0;                                    \
  T m = -INFINITY, s = (T)0;                                                   \
  SM_VEC m16 = fmax(m16, vload16(0, ar + k));                                  \
  SM_TAIL m = fmax(m, ar[k]);                                                  \
  m = fmax(m, sm_hmax_##suf(m16));                                             \
  SM_VEC {                                                                     \
    T16 e = exp(vload16(0, ar + k) - m);                                       \
    vstore16(e, 0, orow + k);                                                  \
    s16 += e;                                                                  \
  }                                                                            \
  SM_TAIL { T e = exp(ar[k] - m); orow[k] = e; s += e; }                       \
  T q = (T)1 / (s + sm_hsum_##suf(s16));                                       \
  SM_VEC vstore16(vload16(0, orow + k) * q, 0, orow + k);                      \
  SM_TAIL orow[k] *= q;
/* y = x - m - log s */
#define SM_BODY_log_softmax(T, T16, suf)                                       \
  T16 m16 = (T16)(-INFINITY), s16 = (T16)0;                                    \
  T m = -INFINITY, s = (T)0;                                                   \
  SM_VEC m16 = fmax(m16, vload16(0, ar + k));                                  \
  SM_TAIL m = fmax(m, ar[k]);                                                  \
  m = fmax(m, sm_hmax_##suf(m16));                                             \
  SM_VEC s16 += exp(vload16(0, ar + k) - m);                                   \
  SM_TAIL s += exp(ar[k] - m);                                                 \
  T c = m + log(s + sm_hsum_##suf(s16));                                       \
  SM_VEC vstore16(vload16(0, ar + k) - c, 0, orow + k);                        \
  SM_TAIL orow[k] = ar[k] - c;
/* softmax's derivative (vjp and jvp alike): out = y (g - sum g y) */
#define SM_BODY_softmax_d(T, T16, suf)                                         \
  T16 s16 = (T16)0;                                                            \
  T s = (T)0;                                                                  \
  SM_VEC s16 += vload16(0, ar + k) * vload16(0, br + k);                       \
  SM_TAIL s += ar[k] * br[k];                                                  \
  s += sm_hsum_##suf(s16);                                                     \
  SM_VEC vstore16(vload16(0, br + k) * (vload16(0, ar + k) - s), 0, orow + k); \
  SM_TAIL orow[k] = br[k] * (ar[k] - s);
/* log_softmax's vjp: out = g - exp(y) sum g (y the log-probabilities) */
#define SM_BODY_log_softmax_vjp(T, T16, suf)                                   \
  T16 s16 = (T16)0;                                                            \
  T s = (T)0;                                                                  \
  SM_VEC s16 += vload16(0, ar + k);                                            \
  SM_TAIL s += ar[k];                                                          \
  s += sm_hsum_##suf(s16);                                                     \
  SM_VEC vstore16(vload16(0, ar + k) - exp(vload16(0, br + k)) * s, 0, orow + k); \
  SM_TAIL orow[k] = ar[k] - exp(br[k]) * s;
/* log_softmax's jvp: out = t - sum exp(y) t */
#define SM_BODY_log_softmax_jvp(T, T16, suf)                                   \
  T16 s16 = (T16)0;                                                            \
  T s = (T)0;                                                                  \
  SM_VEC s16 += exp(vload16(0, br + k)) * vload16(0, ar + k);                  \
  SM_TAIL s += exp(br[k]) * ar[k];                                             \
  s += sm_hsum_##suf(s16);                                                     \
  SM_VEC vstore16(vload16(0, ar + k) - s, 0, orow + k);                        \
  SM_TAIL orow[k] = ar[k] - s;

#define MF_SM_KERNEL(mode, T, suf)                                             \
  kernel void sm_##mode##_##suf(global T *out, global const T *a,              \
                                global const T *b, int rows, int cols) {       \
    SM_ROWS(row, rows) {                                                       \
      long base = (long)row * cols;                                            \
      global const T *ar = a + base, *br = b + base;                           \
      global T *orow = out + base;                                             \
      int k;                                                                   \
      (void)br;                                                                \
      SM_BODY_##mode(T, T##16, suf)                                            \
    }                                                                          \
  }

#define MF_SM(T, suf)                                                          \
  inline T sm_hsum_##suf(T##16 v) {                                            \
    T##8 a = v.lo + v.hi;                                                      \
    T##4 b = a.lo + a.hi;                                                      \
    T##2 c = b.lo + b.hi;                                                      \
    return c.x + c.y;                                                          \
  }                                                                            \
  inline T sm_hmax_##suf(T##16 v) {                                            \
    T##8 a = fmax(v.lo, v.hi);                                                 \
    T##4 b = fmax(a.lo, a.hi);                                                 \
    T##2 c = fmax(b.lo, b.hi);                                                 \
    return fmax(c.x, c.y);                                                     \
  }                                                                            \
  MF_SOFTMAX_MODES(MF_SM_KERNEL, T, suf)

MF_SM(float, f32)
#ifdef MF_FP64
MF_SM(double, f64)
#endif
