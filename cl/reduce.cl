/* Row reductions over a contiguous [rows, cols] block.
   Work-item (r, p) of rows x P folds a[r, p], a[r, p + P], a[r, p + 2P], ...
   into out[r * P + p]; a second launch with P = 1 finishes when P > 1.
   Sums use Kahan compensation: error O(eps) instead of O(cols * eps). */

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
      T y = (f) - c;                                                           \
      T t = s + y;                                                             \
      c = (t - s) - y;                                                         \
      s = t;                                                                   \
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

#define MF_REDUCTIONS(T, suf)                                                  \
  MF_RED_SUM(sum, T, suf, x)                                                   \
  MF_RED_SUM(sumsq, T, suf, x * x)                                             \
  MF_RED_CMP(max, T, suf, x > m || isnan(x))                                   \
  MF_RED_CMP(min, T, suf, x < m || isnan(x))

MF_REDUCTIONS(float, f32)
MF_RED_SUM(sum, int, i32, x)
MF_RED_CMP(max, int, i32, x > m)
MF_RED_CMP(min, int, i32, x < m)
#ifdef MF_FP64
MF_REDUCTIONS(double, f64)
#endif
