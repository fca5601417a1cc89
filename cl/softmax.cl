/* Softmax over the last dim of a contiguous [rows, cols] block, one kernel
   per mode (MF_SOFTMAX_MODES of src/kernel_names.h), in the two shapes of
   nn.cl (the launcher picks by device type; core.nn_path forces either):
   run (sm_<mode>_<dtype>, CPUs): a work-item takes a run of rows (mf_run)
     and walks each row in 16-lane vectors (PoCL vectorizes exp so);
   work-group (smwg_<mode>_<dtype>, GPUs): a work-group of NN_WG items per
     row, item l taking columns l, l + NN_WG, ..., sums and maxima reduced
     in local memory (nn_wsum of nn.cl, sm_wmax here).
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

/* ... and the work-group shape: the same formulas, one row per group */
#define SMWG_COLS for (int k = l; k < cols; k += NN_WG)
#define SMWG_BODY_softmax(T, suf)                                              \
  T m = -INFINITY, s = (T)0;                                                   \
  SMWG_COLS m = fmax(m, ar[k]);                                                \
  m = sm_wmax_##suf(red, m, l);                                                \
  SMWG_COLS { T e = exp(ar[k] - m); orow[k] = e; s += e; }                     \
  T q = (T)1 / nn_wsum_##suf(red, s, l);                                       \
  SMWG_COLS orow[k] *= q;
#define SMWG_BODY_log_softmax(T, suf)                                          \
  T m = -INFINITY, s = (T)0;                                                   \
  SMWG_COLS m = fmax(m, ar[k]);                                                \
  m = sm_wmax_##suf(red, m, l);                                                \
  SMWG_COLS s += exp(ar[k] - m);                                               \
  T c = m + log(nn_wsum_##suf(red, s, l));                                     \
  SMWG_COLS orow[k] = ar[k] - c;
#define SMWG_BODY_softmax_d(T, suf)                                            \
  T s = (T)0;                                                                  \
  SMWG_COLS s += ar[k] * br[k];                                                \
  s = nn_wsum_##suf(red, s, l);                                                \
  SMWG_COLS orow[k] = br[k] * (ar[k] - s);
#define SMWG_BODY_log_softmax_vjp(T, suf)                                      \
  T s = (T)0;                                                                  \
  SMWG_COLS s += ar[k];                                                        \
  s = nn_wsum_##suf(red, s, l);                                                \
  SMWG_COLS orow[k] = ar[k] - exp(br[k]) * s;
#define SMWG_BODY_log_softmax_jvp(T, suf)                                      \
  T s = (T)0;                                                                  \
  SMWG_COLS s += exp(br[k]) * ar[k];                                           \
  s = nn_wsum_##suf(red, s, l);                                                \
  SMWG_COLS orow[k] = ar[k] - s;

#define MF_SMWG_KERNEL(mode, T, suf)                                           \
  kernel __attribute__((reqd_work_group_size(NN_WG, 1, 1)))                    \
  void smwg_##mode##_##suf(global T *out, global const T *a,                   \
                           global const T *b, int rows, int cols) {            \
    local T red[NN_WG];                                                        \
    int l = get_local_id(0);                                                   \
    long base = (long)get_group_id(0) * cols;                                  \
    global const T *ar = a + base, *br = b + base;                             \
    global T *orow = out + base;                                               \
    (void)rows; /* one work-group per row */                                   \
    (void)br;                                                                  \
    SMWG_BODY_##mode(T, suf)                                                   \
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
  /* max of v over the work-group, returned to every item */                 \
  inline T sm_wmax_##suf(local T *red, T v, int l) {                           \
    barrier(CLK_LOCAL_MEM_FENCE);                                              \
    red[l] = v;                                                                \
    barrier(CLK_LOCAL_MEM_FENCE);                                              \
    for (int s = NN_WG / 2; s > 0; s >>= 1) {                                  \
      if (l < s) red[l] = fmax(red[l], red[l + s]);                            \
      barrier(CLK_LOCAL_MEM_FENCE);                                            \
    }                                                                          \
    return red[0];                                                             \
  }                                                                            \
  MF_SOFTMAX_MODES(MF_SM_KERNEL, T, suf)                                       \
  MF_SOFTMAX_MODES(MF_SMWG_KERNEL, T, suf)

MF_SM(float, f32)
#ifdef MF_FP64
MF_SM(double, f64)
#endif
