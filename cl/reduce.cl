/* Row reductions over a contiguous [rows, cols] block.
   Work-item (r, p) of rows x P folds its share of row r into out[r * P + p];
   a second launch with P = 1 finishes when P > 1. GPUs: the share is
   a[r, p], a[r, p + P], ... (coalesced). CPUs: the p-th of P contiguous
   runs, 64 elements a step as four T16 vectors.
   Sums use Kahan compensation: error O(eps) instead of O(cols * eps). */

/* s + x with compensation c (lost low part, negated), scalar or vector */
#define MF_KAHAN(TT, s, c, x)                                                  \
  {                                                                            \
    TT y_ = (x) - c, t_ = s + y_;                                              \
    c = (t_ - s) - y_;                                                         \
    s = t_;                                                                    \
  }

#ifdef MF_CPU
/* Items g = (r, p) of rows x P, an equal share of them per work-item (the
   host launches fewer work-items than items when rows are narrow); item g folds
   [lo, hi) of row r, non-empty when P <= cols. MF_RED_END closes the loop. */
#define MF_RED_RUN(T)                                                          \
  int G_ = get_global_size(0), w_ = get_global_id(0);                          \
  int g1_ = (int)((long)rows * P * (w_ + 1) / G_);                             \
  for (int g = (int)((long)rows * P * w_ / G_); g < g1_; ++g) {                \
    int r = g / P, p = g - r * P;                                              \
    int lo = P == 1 ? 0 : (int)((long)cols * p / P);                           \
    int hi = P == 1 ? cols : (int)((long)cols * (p + 1) / P);                  \
    global const T *row = a + oa + (long)r * cols;                             \
    int k = lo;
#define MF_RED_END }

/* four Kahan chains (one is latency bound), merged, then the 16 lanes */
#define MF_RED_SUM(name, T, suf, f)                                            \
  kernel void red_##name##_##suf(global T *out, global const T *a, int oa,     \
                                 int rows, int cols, int P) {                  \
    MF_RED_RUN(T)                                                              \
    T s = (T)0, c = (T)0;                                                      \
    if (hi - k >= 64) { /* short runs (narrow rows) skip the vector set-up */  \
      T##16 s0 = 0, c0 = 0, s1 = 0, c1 = 0, s2 = 0, c2 = 0, s3 = 0, c3 = 0, x; \
      for (; k + 64 <= hi; k += 64) {                                          \
        x = vload16(0, row + k); MF_KAHAN(T##16, s0, c0, f)                    \
        x = vload16(1, row + k); MF_KAHAN(T##16, s1, c1, f)                    \
        x = vload16(2, row + k); MF_KAHAN(T##16, s2, c2, f)                    \
        x = vload16(3, row + k); MF_KAHAN(T##16, s3, c3, f)                    \
      }                                                                        \
      MF_KAHAN(T##16, s0, c0, s1) MF_KAHAN(T##16, s0, c0, -c1)                 \
      MF_KAHAN(T##16, s0, c0, s2) MF_KAHAN(T##16, s0, c0, -c2)                 \
      MF_KAHAN(T##16, s0, c0, s3) MF_KAHAN(T##16, s0, c0, -c3)                 \
      T sv[16], cv[16];                                                        \
      vstore16(s0, 0, sv);                                                     \
      vstore16(c0, 0, cv);                                                     \
      for (int j = 0; j < 16; ++j) {                                           \
        MF_KAHAN(T, s, c, sv[j])                                               \
        MF_KAHAN(T, s, c, -cv[j])                                              \
      }                                                                        \
    }                                                                          \
    for (; k < hi; ++k) {                                                      \
      T x = row[k];                                                            \
      MF_KAHAN(T, s, c, f)                                                     \
    }                                                                          \
    out[g] = s;                                                                \
    MF_RED_END                                                                 \
  }

/* m := x where `better` holds, 16 lanes at a time, then the lanes */
#define MF_RED_CMP(name, T, suf, better)                                       \
  kernel void red_##name##_##suf(global T *out, global const T *a, int oa,     \
                                 int rows, int cols, int P) {                  \
    MF_RED_RUN(T)                                                              \
    T m = row[k++];                                                            \
    if (k + 16 <= hi) {                                                        \
      T##16 mv = vload16(0, row + k);                                          \
      for (k += 16; k + 16 <= hi; k += 16) {                                   \
        T##16 x = vload16(0, row + k), m = mv;                                 \
        mv = (better) ? x : m;                                                 \
      }                                                                        \
      T lane[16];                                                              \
      vstore16(mv, 0, lane);                                                   \
      for (int j = 0; j < 16; ++j) {                                           \
        T x = lane[j];                                                         \
        if (better) m = x;                                                     \
      }                                                                        \
    }                                                                          \
    for (; k < hi; ++k) {                                                      \
      T x = row[k];                                                            \
      if (better) m = x;                                                       \
    }                                                                          \
    out[g] = m;                                                                \
    MF_RED_END                                                                 \
  }

/* Column reductions of a contiguous [A, R, I] block over R (CPU only; the
   host uses them when the reduced dims are one block with I >= 16):
   out[b, i] = fold_r x[b, r, i]. Work-item (b, g) owns columns
   [64 g, 64 g + 64) of block b and reads them row by row (256 contiguous
   bytes a row) into four T16 chains; a last partial group goes 16 and then
   1 column at a time. */
#define MF_REDC_HEAD(T)                                                        \
  int G = (I + 63) / 64, w = get_global_id(0);                                 \
  if (w >= A * G) return;                                                      \
  int blk = w / G, i0 = (w - blk * G) * 64, ni = min(64, I - i0);              \
  global const T *base = a + oa + (long)blk * R * I + i0;                      \
  global T *o = out + (long)blk * I + i0;

#define MF_REDC_SUM(name, T, suf, f)                                           \
  kernel void redc_##name##_##suf(global T *out, global const T *a, int oa,    \
                                  int A, int R, int I) {                       \
    MF_REDC_HEAD(T)                                                            \
    int j = 0;                                                                 \
    if (ni == 64) {                                                            \
      T##16 s0 = 0, c0 = 0, s1 = 0, c1 = 0, s2 = 0, c2 = 0, s3 = 0, c3 = 0, x; \
      for (int r = 0; r < R; ++r) {                                            \
        global const T *row = base + (long)r * I;                              \
        x = vload16(0, row); MF_KAHAN(T##16, s0, c0, f)                        \
        x = vload16(1, row); MF_KAHAN(T##16, s1, c1, f)                        \
        x = vload16(2, row); MF_KAHAN(T##16, s2, c2, f)                        \
        x = vload16(3, row); MF_KAHAN(T##16, s3, c3, f)                        \
      }                                                                        \
      vstore16(s0, 0, o); vstore16(s1, 1, o);                                  \
      vstore16(s2, 2, o); vstore16(s3, 3, o);                                  \
      return;                                                                  \
    }                                                                          \
    for (; j + 16 <= ni; j += 16) {                                            \
      T##16 s = 0, c = 0, x;                                                   \
      for (int r = 0; r < R; ++r) {                                            \
        x = vload16(0, base + (long)r * I + j);                                \
        MF_KAHAN(T##16, s, c, f)                                               \
      }                                                                        \
      vstore16(s, 0, o + j);                                                   \
    }                                                                          \
    for (; j < ni; ++j) {                                                      \
      T s = 0, c = 0, x;                                                       \
      for (int r = 0; r < R; ++r) {                                            \
        x = base[(long)r * I + j];                                             \
        MF_KAHAN(T, s, c, f)                                                   \
      }                                                                        \
      o[j] = s;                                                                \
    }                                                                          \
  }

#define MF_REDC_CMP(name, T, suf, better)                                      \
  kernel void redc_##name##_##suf(global T *out, global const T *a, int oa,    \
                                  int A, int R, int I) {                       \
    MF_REDC_HEAD(T)                                                            \
    int j = 0;                                                                 \
    for (; j + 16 <= ni; j += 16) {                                            \
      T##16 mv = vload16(0, base + j);                                         \
      for (int r = 1; r < R; ++r) {                                            \
        T##16 x = vload16(0, base + (long)r * I + j), m = mv;                  \
        mv = (better) ? x : m;                                                 \
      }                                                                        \
      vstore16(mv, 0, o + j);                                                  \
    }                                                                          \
    for (; j < ni; ++j) {                                                      \
      T m = base[j];                                                           \
      for (int r = 1; r < R; ++r) {                                            \
        T x = base[(long)r * I + j];                                           \
        if (better) m = x;                                                     \
      }                                                                        \
      o[j] = m;                                                                \
    }                                                                          \
  }

#define MF_REDC_ALL(T, suf)                                                    \
  MF_REDC_SUM(sum, T, suf, x)                                                  \
  MF_REDC_SUM(sumsq, T, suf, x * x)                                            \
  /* x != x: NaN (a plain compare; isnan is a slow call on PoCL) */            \
  MF_REDC_CMP(max, T, suf, x > m || x != x)                                    \
  MF_REDC_CMP(min, T, suf, x < m || x != x)

MF_REDC_ALL(float, f32)
MF_REDC_SUM(sum, int, i32, x)
MF_REDC_CMP(max, int, i32, x > m)
MF_REDC_CMP(min, int, i32, x < m)
#ifdef MF_FP64
MF_REDC_ALL(double, f64)
#endif
#else
#define MF_RED_SUM(name, T, suf, f)                                            \
  kernel void red_##name##_##suf(global T *out, global const T *a, int oa,     \
                                 int rows, int cols, int P) {                  \
    int g = get_global_id(0);                                                  \
    if (g >= rows * P) return;                                                 \
    int r = g / P, p = g - r * P;                                              \
    global const T *row = a + oa + (long)r * cols;                             \
    T s = (T)0, c = (T)0;                                                      \
    for (int k = p; k < cols; k += P) {                                        \
      T x = row[k];                                                            \
      MF_KAHAN(T, s, c, f)                                                     \
    }                                                                          \
    out[g] = s;                                                                \
  }

#define MF_RED_CMP(name, T, suf, better)                                       \
  kernel void red_##name##_##suf(global T *out, global const T *a, int oa,     \
                                 int rows, int cols, int P) {                  \
    int g = get_global_id(0);                                                  \
    if (g >= rows * P) return;                                                 \
    int r = g / P, p = g - r * P;                                              \
    global const T *row = a + oa + (long)r * cols;                             \
    T m = row[p];                                                              \
    for (int k = p + P; k < cols; k += P) {                                    \
      T x = row[k];                                                            \
      if (better) m = x;                                                       \
    }                                                                          \
    out[g] = m;                                                                \
  }
#endif

#define MF_REDUCTIONS(T, suf)                                                  \
  MF_RED_SUM(sum, T, suf, x)                                                   \
  MF_RED_SUM(sumsq, T, suf, x * x)                                             \
  MF_RED_CMP(max, T, suf, x > m || x != x)                                     \
  MF_RED_CMP(min, T, suf, x < m || x != x)

MF_REDUCTIONS(float, f32)
MF_RED_SUM(sum, int, i32, x)
MF_RED_CMP(max, int, i32, x > m)
MF_RED_CMP(min, int, i32, x < m)
#ifdef MF_FP64
MF_REDUCTIONS(double, f64)
#endif
