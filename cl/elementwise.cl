/* Elementwise kernels: unary, binary (broadcast by stride 0), binary with a
   scalar, where, clamp, copy/cast, fill, arange. Output is written at
   out[oo + i] for i in [0, n) (contiguous), inputs are read through
   (nd, shape, strides) or contiguously when nd == 0. */

#define MF_UNARY(name, T, suf, expr)                                           \
  kernel void un_##name##_##suf(global T *out, int oo, global const T *a,      \
                                int oa, int n, int nd, int8 shape, int8 sa) {  \
    if (nd == 0) {                                                             \
      MF_FOR(i, n) { T x = a[oa + i]; out[oo + i] = (expr); }                  \
    } else {                                                                   \
      MF_FOR(i, n) { T x = a[oa + mf_sidx(i, nd, shape, sa)]; out[oo + i] = (expr); } \
    }                                                                          \
  }

#define MF_BINARY(name, T, suf, expr)                                          \
  kernel void bin_##name##_##suf(global T *out, int oo, global const T *a,     \
                                 int oa, global const T *b, int ob, int n,     \
                                 int nd, int8 shape, int8 sa, int8 sb) {       \
    if (nd == 0) {                                                             \
      MF_FOR(i, n) { T x = a[oa + i], y = b[ob + i]; out[oo + i] = (expr); }   \
    } else {                                                                   \
      MF_FOR(i, n) {                                                           \
        T x = a[oa + mf_sidx(i, nd, shape, sa)];                               \
        T y = b[ob + mf_sidx(i, nd, shape, sb)];                               \
        out[oo + i] = (expr);                                                  \
      }                                                                        \
    }                                                                          \
  }                                                                            \
  /* x op s, or s op x when rev != 0 */                                        \
  kernel void bins_##name##_##suf(global T *out, int oo, global const T *a,    \
                                  int oa, T s, int rev, int n, int nd,         \
                                  int8 shape, int8 sa) {                       \
    if (nd == 0 && !rev) {                                                     \
      MF_FOR(i, n) { T x = a[oa + i], y = s; out[oo + i] = (expr); }           \
    } else if (nd == 0) {                                                      \
      MF_FOR(i, n) { T y = a[oa + i], x = s; out[oo + i] = (expr); }           \
    } else {                                                                   \
      MF_FOR(i, n) {                                                           \
        T v = a[oa + mf_sidx(i, nd, shape, sa)];                               \
        T x = rev ? s : v, y = rev ? v : s;                                    \
        out[oo + i] = (expr);                                                  \
      }                                                                        \
    }                                                                          \
  }

/* out = m != 0 ? a : b, all three read through their own strides */
#define MF_WHERE(T, suf)                                                       \
  kernel void where_##suf(global T *out, global const T *m, int om,            \
                          global const T *a, int oa, global const T *b, int ob,\
                          int n, int nd, int8 shape, int8 sm, int8 sa, int8 sb) { \
    MF_FOR(i, n) {                                                             \
      T c = m[om + mf_sidx(i, nd, shape, sm)];                                 \
      out[i] = c != (T)0 ? a[oa + mf_sidx(i, nd, shape, sa)]                   \
                         : b[ob + mf_sidx(i, nd, shape, sb)];                  \
    }                                                                          \
  }

/* out = min(max(x, lo), hi) */
#define MF_CLAMP(T, suf)                                                       \
  kernel void clamp_##suf(global T *out, global const T *a, int oa, T lo,     \
                          T hi, int n, int nd, int8 shape, int8 sa) {          \
    MF_FOR(i, n) {                                                             \
      T x = a[oa + (nd == 0 ? i : mf_sidx(i, nd, shape, sa))];                 \
      out[i] = x < lo ? lo : (x > hi ? hi : x);                                \
    }                                                                          \
  }

/* strided dst <- strided src with conversion; both walk `shape` in C order */
#define MF_COPY(S, ss, D, ds)                                                  \
  kernel void copy_##ss##_##ds(global D *out, int oo, global const S *a,       \
                               int oa, int n, int nd, int8 shape, int8 so,     \
                               int8 sa) {                                      \
    if (nd == 0) {                                                             \
      MF_FOR(i, n) out[oo + i] = (D)a[oa + i];                                 \
    } else {                                                                   \
      MF_FOR(i, n) out[oo + mf_sidx(i, nd, shape, so)] =                       \
          (D)a[oa + mf_sidx(i, nd, shape, sa)];                                \
    }                                                                          \
  }

#define MF_FILL(T, suf)                                                        \
  kernel void fill_##suf(global T *out, int oo, T v, int n) {                  \
    MF_FOR(i, n) out[oo + i] = v;                                              \
  }                                                                            \
  /* out[i] = start + i * step */                                              \
  kernel void arange_##suf(global T *out, T start, T step, int n) {            \
    MF_FOR(i, n) out[i] = start + (T)i * step;                                 \
  }

/* ---- instantiations ---- */

#define MF_FLOAT_UNARIES(T, suf)                                               \
  MF_UNARY(neg, T, suf, -x)                                                    \
  MF_UNARY(exp, T, suf, exp(x))                                                \
  MF_UNARY(log, T, suf, log(x))                                                \
  MF_UNARY(sqrt, T, suf, sqrt(x))                                              \
  MF_UNARY(rsqrt, T, suf, rsqrt(x))                                            \
  MF_UNARY(sin, T, suf, sin(x))                                                \
  MF_UNARY(cos, T, suf, cos(x))                                                \
  MF_UNARY(tanh, T, suf, tanh(x))                                              \
  MF_UNARY(erf, T, suf, erf(x))                                                \
  MF_UNARY(sigmoid, T, suf, (T)1 / ((T)1 + exp(-x)))                           \
  MF_UNARY(silu, T, suf, x / ((T)1 + exp(-x)))                                 \
  /* gelu(x) = x * Phi(x), the exact form */                                   \
  MF_UNARY(gelu, T, suf, (T)0.5 * x * ((T)1 + erf(x * (T)0.70710678118654752)))          \
  MF_UNARY(relu, T, suf, fmax(x, (T)0))                                        \
  MF_UNARY(abs, T, suf, fabs(x))                                               \
  MF_UNARY(square, T, suf, x * x)                                              \
  MF_UNARY(sign, T, suf, sign(x))                                              \
  MF_UNARY(recip, T, suf, (T)1 / x)                                            \
  MF_UNARY(floor, T, suf, floor(x))                                            \
  /* silu'(x) = s (1 + x (1 - s)), s = sigmoid(x) */                           \
  MF_UNARY(silu_grad, T, suf,                                                  \
           ((T)1 / ((T)1 + exp(-x))) * ((T)1 + x * ((T)1 - (T)1 / ((T)1 + exp(-x))))) \
  /* gelu'(x) = Phi(x) + x phi(x) */                                           \
  MF_UNARY(gelu_grad, T, suf,                                                  \
           (T)0.5 * ((T)1 + erf(x * (T)0.70710678118654752)) +                           \
               x * exp((T)-0.5 * x * x) * (T)0.3989422804014327)

#define MF_COMMON_BINARIES(T, suf)                                             \
  MF_BINARY(add, T, suf, x + y)                                                \
  MF_BINARY(sub, T, suf, x - y)                                                \
  MF_BINARY(mul, T, suf, x * y)                                                \
  MF_BINARY(maximum, T, suf, x > y ? x : y)                                    \
  MF_BINARY(minimum, T, suf, x < y ? x : y)                                    \
  MF_BINARY(lt, T, suf, (T)(x < y))                                            \
  MF_BINARY(le, T, suf, (T)(x <= y))                                           \
  MF_BINARY(gt, T, suf, (T)(x > y))                                            \
  MF_BINARY(ge, T, suf, (T)(x >= y))                                           \
  MF_BINARY(eq, T, suf, (T)(x == y))                                           \
  MF_BINARY(ne, T, suf, (T)(x != y))

#define MF_FLOAT_BINARIES(T, suf)                                              \
  MF_BINARY(div, T, suf, x / y)                                                \
  MF_BINARY(pow, T, suf, pow(x, y))

MF_FLOAT_UNARIES(float, f32)
MF_COMMON_BINARIES(float, f32)
MF_FLOAT_BINARIES(float, f32)
MF_WHERE(float, f32)
MF_CLAMP(float, f32)
MF_FILL(float, f32)

MF_UNARY(neg, int, i32, -x)
MF_UNARY(abs, int, i32, abs(x))
MF_UNARY(square, int, i32, x * x)
MF_COMMON_BINARIES(int, i32)
MF_WHERE(int, i32)
MF_CLAMP(int, i32)
MF_FILL(int, i32)

MF_COPY(float, f32, float, f32)
MF_COPY(float, f32, int, i32)
MF_COPY(int, i32, float, f32)
MF_COPY(int, i32, int, i32)

#ifdef MF_FP64
MF_FLOAT_UNARIES(double, f64)
MF_COMMON_BINARIES(double, f64)
MF_FLOAT_BINARIES(double, f64)
MF_WHERE(double, f64)
MF_CLAMP(double, f64)
MF_FILL(double, f64)
MF_COPY(double, f64, double, f64)
MF_COPY(double, f64, float, f32)
MF_COPY(float, f32, double, f64)
MF_COPY(double, f64, int, i32)
MF_COPY(int, i32, double, f64)
#endif
