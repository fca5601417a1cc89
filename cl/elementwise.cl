/* Elementwise kernels: unary, binary (broadcast by stride 0), binary with a
   scalar, where, clamp, copy/cast, fill, arange. Output is written at
   out[oo + i] for i in [0, n) (contiguous), inputs are read through
   (nd, shape, strides) or contiguously when nd == 0. */

/* Contiguous fast paths. On CPUs each work-item walks its own run (see
   MF_FOR); with V = VRUN the run goes 16 lanes at a time in T16 vectors,
   which is how PoCL vectorizes builtins such as erf, exp or pow (a scalar
   loop calling them stays scalar). VRUN needs an expression valid for
   vectors too; SRUN keeps scalars (comparisons: (T)(x < y) has no vector
   form). On GPUs both are the grid-stride loop. */
#ifdef MF_CPU
#define MF_VRUN_UN(T, expr)                                                    \
  {                                                                            \
    int2 r_ = mf_run(n);                                                       \
    int i = r_.x;                                                              \
    for (; i + 16 <= r_.y; i += 16) {                                          \
      T##16 x = vload16(0, a + oa + i);                                        \
      vstore16((expr), 0, out + oo + i);                                       \
    }                                                                          \
    for (; i < r_.y; ++i) { T x = a[oa + i]; out[oo + i] = (expr); }           \
  }
#define MF_VRUN_BIN(T, expr)                                                   \
  {                                                                            \
    int2 r_ = mf_run(n);                                                       \
    int i = r_.x;                                                              \
    for (; i + 16 <= r_.y; i += 16) {                                          \
      T##16 x = vload16(0, a + oa + i), y = vload16(0, b + ob + i);            \
      vstore16((expr), 0, out + oo + i);                                       \
    }                                                                          \
    for (; i < r_.y; ++i) { T x = a[oa + i], y = b[ob + i]; out[oo + i] = (expr); } \
  }
/* x op s (rev = 0) or s op x (rev = 1) */
#define MF_VRUN_BINS(T, expr, rev)                                             \
  {                                                                            \
    int2 r_ = mf_run(n);                                                       \
    int i = r_.x;                                                              \
    T##16 sv = (T##16)(s);                                                     \
    for (; i + 16 <= r_.y; i += 16) {                                          \
      T##16 v = vload16(0, a + oa + i), x = rev ? sv : v, y = rev ? v : sv;    \
      vstore16((expr), 0, out + oo + i);                                       \
    }                                                                          \
    for (; i < r_.y; ++i) {                                                    \
      T v = a[oa + i], x = rev ? s : v, y = rev ? v : s;                       \
      out[oo + i] = (expr);                                                    \
    }                                                                          \
  }
#else
#define MF_VRUN_UN(T, expr) MF_SRUN_UN(T, expr)
#define MF_VRUN_BIN(T, expr) MF_SRUN_BIN(T, expr)
#define MF_VRUN_BINS(T, expr, rev) MF_SRUN_BINS(T, expr, rev)
#endif
#define MF_SRUN_UN(T, expr) MF_FOR(i, n) { T x = a[oa + i]; out[oo + i] = (expr); }
#define MF_SRUN_BIN(T, expr)                                                   \
  MF_FOR(i, n) { T x = a[oa + i], y = b[ob + i]; out[oo + i] = (expr); }
#define MF_SRUN_BINS(T, expr, rev)                                             \
  MF_FOR(i, n) { T v = a[oa + i], x = rev ? s : v, y = rev ? v : s; out[oo + i] = (expr); }

/* Strided paths. GPUs: mf_sidx per element. CPUs: a work-item walks its
   run row by row over the innermost dim with up to three operands' offsets
   carried like an odometer (one division per dim at the run's start, none
   after); dims of size 1 are dropped and dims that are contiguous for every
   operand merged, and rows whose inner strides are 0 or 1 get loops that
   vectorize (bias rows, per-row scales, contiguous copies). */
#ifdef MF_CPU
typedef struct {
  int nd, sh[8], idx[8], st[3][8], o[3];
} mf_walk3;

inline void mf_walk3_init(mf_walk3 *w, int i, int nd, int8 shape, int8 s0, int8 s1, int8 s2) {
  int sh[8], st[3][8];
  vstore8(shape, 0, sh);
  vstore8(s0, 0, st[0]);
  vstore8(s1, 0, st[1]);
  vstore8(s2, 0, st[2]);
  int m = 0;
  for (int d = 0; d < nd; ++d) {
    if (sh[d] == 1) continue;
    int merge = m > 0;
    for (int k = 0; k < 3; ++k) merge = merge && w->st[k][m - 1] == st[k][d] * sh[d];
    if (merge) {
      w->sh[m - 1] *= sh[d];
      for (int k = 0; k < 3; ++k) w->st[k][m - 1] = st[k][d];
    } else {
      w->sh[m] = sh[d];
      for (int k = 0; k < 3; ++k) w->st[k][m] = st[k][d];
      ++m;
    }
  }
  if (m == 0) {
    w->sh[0] = 1;
    for (int k = 0; k < 3; ++k) w->st[k][0] = 0;
    m = 1;
  }
  w->nd = m;
  for (int k = 0; k < 3; ++k) w->o[k] = 0;
  for (int d = m - 1; d >= 0; --d) {
    int q = i / w->sh[d], c = i - q * w->sh[d];
    w->idx[d] = c;
    for (int k = 0; k < 3; ++k) w->o[k] += c * w->st[k][d];
    i = q;
  }
}

/* advance by cnt elements, which end the current row or the run */
inline void mf_walk3_step(mf_walk3 *w, int cnt) {
  int d = w->nd - 1;
  w->idx[d] += cnt;
  for (int k = 0; k < 3; ++k) w->o[k] += cnt * w->st[k][d];
  while (d > 0 && w->idx[d] == w->sh[d]) {
    for (int k = 0; k < 3; ++k) w->o[k] += w->st[k][d - 1] - w->sh[d] * w->st[k][d];
    w->idx[d] = 0;
    w->idx[--d]++;
  }
}

/* ROW(T, expr) runs for each row piece: elements i .. i + cnt - 1, operand k
   at offset ok, inner stride tk */
#define MF_ROWS(s0, s1, s2, ROW, T, expr)                                      \
  {                                                                            \
    int2 r_ = mf_run(n);                                                       \
    if (r_.x < r_.y) {                                                         \
      mf_walk3 w_;                                                             \
      mf_walk3_init(&w_, r_.x, nd, shape, s0, s1, s2);                         \
      int d_ = w_.nd - 1;                                                      \
      int t0 = w_.st[0][d_], t1 = w_.st[1][d_], t2 = w_.st[2][d_];             \
      for (int i = r_.x; i < r_.y;) {                                          \
        int cnt = min(w_.sh[d_] - w_.idx[d_], r_.y - i);                       \
        int o0 = w_.o[0], o1 = w_.o[1], o2 = w_.o[2];                          \
        (void)o1, (void)o2, (void)t1, (void)t2; /* ROWs with fewer operands */ \
        ROW(T, expr)                                                           \
        i += cnt;                                                              \
        mf_walk3_step(&w_, cnt);                                               \
      }                                                                        \
    }                                                                          \
  }
#define MF_ROW_UN(T, expr)                                                     \
  {                                                                            \
    global const T *pa = a + oa + o0;                                          \
    global T *po = out + oo + i;                                               \
    if (t0 == 1) for (int k = 0; k < cnt; ++k) { T x = pa[k]; po[k] = (expr); } \
    else for (int k = 0; k < cnt; ++k) { T x = pa[k * t0]; po[k] = (expr); }   \
  }
#define MF_ROW_BIN(T, expr)                                                    \
  {                                                                            \
    global const T *pa = a + oa + o0, *pb = b + ob + o1;                       \
    global T *po = out + oo + i;                                               \
    if (t0 == 1 && t1 == 1) {                                                  \
      for (int k = 0; k < cnt; ++k) { T x = pa[k], y = pb[k]; po[k] = (expr); } \
    } else if (t0 == 1 && t1 == 0) {                                           \
      T y = pb[0];                                                             \
      for (int k = 0; k < cnt; ++k) { T x = pa[k]; po[k] = (expr); }           \
    } else if (t0 == 0 && t1 == 1) {                                           \
      T x = pa[0];                                                             \
      for (int k = 0; k < cnt; ++k) { T y = pb[k]; po[k] = (expr); }           \
    } else {                                                                   \
      for (int k = 0; k < cnt; ++k) {                                          \
        T x = pa[k * t0], y = pb[k * t1];                                      \
        po[k] = (expr);                                                        \
      }                                                                        \
    }                                                                          \
  }
#define MF_ROW_BINS(T, expr)                                                   \
  {                                                                            \
    global const T *pa = a + oa + o0;                                          \
    global T *po = out + oo + i;                                               \
    for (int k = 0; k < cnt; ++k) {                                            \
      T v = pa[k * t0], x = rev ? s : v, y = rev ? v : s;                      \
      po[k] = (expr);                                                          \
    }                                                                          \
  }
#define MF_STR_UN(T, expr) MF_ROWS(sa, sa, sa, MF_ROW_UN, T, expr)
#define MF_STR_BIN(T, expr) MF_ROWS(sa, sb, sb, MF_ROW_BIN, T, expr)
#define MF_STR_BINS(T, expr) MF_ROWS(sa, sa, sa, MF_ROW_BINS, T, expr)
#else
#define MF_STR_UN(T, expr)                                                     \
  MF_FOR(i, n) { T x = a[oa + mf_sidx(i, nd, shape, sa)]; out[oo + i] = (expr); }
#define MF_STR_BIN(T, expr)                                                    \
  MF_FOR(i, n) {                                                               \
    T x = a[oa + mf_sidx(i, nd, shape, sa)];                                   \
    T y = b[ob + mf_sidx(i, nd, shape, sb)];                                   \
    out[oo + i] = (expr);                                                      \
  }
#define MF_STR_BINS(T, expr)                                                   \
  MF_FOR(i, n) {                                                               \
    T v = a[oa + mf_sidx(i, nd, shape, sa)];                                   \
    T x = rev ? s : v, y = rev ? v : s;                                        \
    out[oo + i] = (expr);                                                      \
  }
#endif

/* names are pasted here: an inner macro would expand PoCL's `#define exp _cl_exp` */
#define MF_UNARY(name, T, suf, expr) MF_UNARY_K(un_##name##_##suf, T, expr, VRUN)
#define MF_UNARY_K(kname, T, expr, V)                                          \
  kernel void kname(global T *out, int oo, global const T *a, int oa, int n,   \
                    int nd, int8 shape, int8 sa) {                             \
    if (nd == 0) {                                                             \
      MF_##V##_UN(T, expr)                                                     \
    } else {                                                                   \
      MF_STR_UN(T, expr)                                                       \
    }                                                                          \
  }

#define MF_BINARY(name, T, suf, expr)                                          \
  MF_BINARY_K(bin_##name##_##suf, bins_##name##_##suf, T, expr, VRUN)
#define MF_BINARY_CMP(name, T, suf, expr)                                      \
  MF_BINARY_K(bin_##name##_##suf, bins_##name##_##suf, T, expr, SRUN)
#define MF_BINARY_K(kbin, kbins, T, expr, V)                                   \
  kernel void kbin(global T *out, int oo, global const T *a, int oa,           \
                   global const T *b, int ob, int n, int nd, int8 shape,       \
                   int8 sa, int8 sb) {                                         \
    if (nd == 0) {                                                             \
      MF_##V##_BIN(T, expr)                                                    \
    } else {                                                                   \
      MF_STR_BIN(T, expr)                                                      \
    }                                                                          \
  }                                                                            \
  /* x op s, or s op x when rev != 0 */                                        \
  kernel void kbins(global T *out, int oo, global const T *a, int oa, T s,     \
                    int rev, int n, int nd, int8 shape, int8 sa) {             \
    if (nd == 0 && !rev) {                                                     \
      MF_##V##_BINS(T, expr, 0)                                                \
    } else if (nd == 0) {                                                      \
      MF_##V##_BINS(T, expr, 1)                                                \
    } else {                                                                   \
      MF_STR_BINS(T, expr)                                                     \
    }                                                                          \
  }

#ifdef MF_CPU
#define MF_ROW_WHERE(T, expr)                                                  \
  for (int k = 0; k < cnt; ++k)                                                \
    out[i + k] = m[om + o0 + k * t0] != (T)0 ? a[oa + o1 + k * t1] : b[ob + o2 + k * t2];
#define MF_STR_WHERE(T) MF_ROWS(sm, sa, sb, MF_ROW_WHERE, T, 0)
#define MF_ROW_CLAMP(T, expr)                                                  \
  for (int k = 0; k < cnt; ++k) {                                              \
    T x = a[oa + o0 + k * t0];                                                 \
    out[i + k] = x < lo ? lo : (x > hi ? hi : x);                              \
  }
#define MF_STR_CLAMP(T) MF_ROWS(sa, sa, sa, MF_ROW_CLAMP, T, 0)
/* Operand 0 is the destination. A transposing copy (the source's inner
   stride is not 1 but its next dim's is) goes in 16 x 16 tiles: 16 source
   lines feed 16 destination lines, all in L1, instead of one source line per
   element. */
#define MF_STR_COPY(S, D)                                                      \
  {                                                                            \
    int2 r_ = mf_run(n);                                                       \
    if (r_.x < r_.y) {                                                         \
      mf_walk3 w_;                                                             \
      mf_walk3_init(&w_, r_.x, nd, shape, so, sa, sa);                         \
      int d_ = w_.nd - 1, L = w_.sh[d_], t0 = w_.st[0][d_], t1 = w_.st[1][d_]; \
      int u0 = d_ > 0 ? w_.st[0][d_ - 1] : 0, u1 = d_ > 0 ? w_.st[1][d_ - 1] : 0; \
      int tile = d_ > 0 && t1 != 1 && u1 == 1;                                 \
      for (int i = r_.x; i < r_.y;) {                                          \
        global D *po = out + oo + w_.o[0];                                     \
        global const S *pa = a + oa + w_.o[1];                                 \
        if (tile && w_.idx[d_] == 0 && w_.idx[d_ - 1] + 16 <= w_.sh[d_ - 1] && \
            i + 16 * L <= r_.y) {                                              \
          for (int kb = 0; kb < L; kb += 16) {                                 \
            int kn = min(16, L - kb);                                          \
            for (int r = 0; r < 16; ++r)                                       \
              for (int k = kb; k < kb + kn; ++k) po[r * u0 + k * t0] = (D)pa[r + k * t1]; \
          }                                                                    \
          for (int r = 0; r < 16; ++r) mf_walk3_step(&w_, L);                  \
          i += 16 * L;                                                         \
        } else {                                                               \
          int cnt = min(L - w_.idx[d_], r_.y - i);                             \
          if (t0 == 1 && t1 == 1) for (int k = 0; k < cnt; ++k) po[k] = (D)pa[k]; \
          else for (int k = 0; k < cnt; ++k) po[k * t0] = (D)pa[k * t1];       \
          i += cnt;                                                            \
          mf_walk3_step(&w_, cnt);                                             \
        }                                                                      \
      }                                                                        \
    }                                                                          \
  }
#else
#define MF_STR_WHERE(T)                                                        \
  MF_FOR(i, n) {                                                               \
    T c = m[om + mf_sidx(i, nd, shape, sm)];                                   \
    out[i] = c != (T)0 ? a[oa + mf_sidx(i, nd, shape, sa)]                     \
                       : b[ob + mf_sidx(i, nd, shape, sb)];                    \
  }
#define MF_STR_CLAMP(T)                                                        \
  MF_FOR(i, n) {                                                               \
    T x = a[oa + mf_sidx(i, nd, shape, sa)];                                   \
    out[i] = x < lo ? lo : (x > hi ? hi : x);                                  \
  }
#define MF_STR_COPY(S, D)                                                      \
  MF_FOR(i, n) out[oo + mf_sidx(i, nd, shape, so)] = (D)a[oa + mf_sidx(i, nd, shape, sa)];
#endif

/* out = m != 0 ? a : b, all three read through their own strides */
#define MF_WHERE(T, suf)                                                       \
  kernel void where_##suf(global T *out, global const T *m, int om,            \
                          global const T *a, int oa, global const T *b, int ob, \
                          int n, int nd, int8 shape, int8 sm, int8 sa, int8 sb) { \
    MF_STR_WHERE(T)                                                            \
  }

/* out = min(max(x, lo), hi) */
#define MF_CLAMP(T, suf)                                                       \
  kernel void clamp_##suf(global T *out, global const T *a, int oa, T lo,      \
                          T hi, int n, int nd, int8 shape, int8 sa) {          \
    if (nd == 0) {                                                             \
      MF_FOR(i, n) {                                                           \
        T x = a[oa + i];                                                       \
        out[i] = x < lo ? lo : (x > hi ? hi : x);                              \
      }                                                                        \
    } else {                                                                   \
      MF_STR_CLAMP(T)                                                          \
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
      MF_STR_COPY(S, D)                                                        \
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

/* The float unary kernels, one per name of MF_UNARY_OPS (src/kernel_names.h),
   each computing MF_EXPR_<name>(T, x) */
#define MF_EXPR_neg(T, x) -x
#define MF_EXPR_exp(T, x) exp(x)
#define MF_EXPR_log(T, x) log(x)
#define MF_EXPR_sqrt(T, x) sqrt(x)
#define MF_EXPR_rsqrt(T, x) rsqrt(x)
#define MF_EXPR_sin(T, x) sin(x)
#define MF_EXPR_cos(T, x) cos(x)
#define MF_EXPR_tanh(T, x) MF_ACT_tanh(T, x)
#define MF_EXPR_erf(T, x) erf(x)
#define MF_EXPR_sigmoid(T, x) MF_ACT_sigmoid(T, x)
#define MF_EXPR_silu(T, x) MF_ACT_silu(T, x)
#define MF_EXPR_gelu(T, x) MF_ACT_gelu(T, x)
#define MF_EXPR_relu(T, x) MF_ACT_relu(T, x)
#define MF_EXPR_abs(T, x) fabs(x)
#define MF_EXPR_square(T, x) x * x
#define MF_EXPR_sign(T, x) sign(x)
#define MF_EXPR_recip(T, x) (T)1 / x
#define MF_EXPR_floor(T, x) floor(x)
#define MF_EXPR_silu_grad(T, x) MF_DACT_silu(T, x)
#define MF_EXPR_gelu_grad(T, x) MF_DACT_gelu(T, x)
#define MF_FLOAT_UNARY(name, T, suf)                                           \
  MF_UNARY_K(un_##name##_##suf, T, MF_EXPR_##name(T, x), VRUN)
#define MF_FLOAT_UNARIES(T, suf) MF_UNARY_OPS(MF_FLOAT_UNARY, T, suf)

#define MF_COMMON_BINARIES(T, suf)                                             \
  MF_BINARY(add, T, suf, x + y)                                                \
  MF_BINARY(sub, T, suf, x - y)                                                \
  MF_BINARY(mul, T, suf, x * y)                                                \
  MF_BINARY(maximum, T, suf, x > y ? x : y)                                    \
  MF_BINARY(minimum, T, suf, x < y ? x : y)                                    \
  MF_BINARY_CMP(lt, T, suf, (T)(x < y))                                        \
  MF_BINARY_CMP(le, T, suf, (T)(x <= y))                                       \
  MF_BINARY_CMP(gt, T, suf, (T)(x > y))                                        \
  MF_BINARY_CMP(ge, T, suf, (T)(x >= y))                                       \
  MF_BINARY_CMP(eq, T, suf, (T)(x == y))                                       \
  MF_BINARY_CMP(ne, T, suf, (T)(x != y))

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
/* not abs(): it returns uint */
MF_UNARY(abs, int, i32, x < 0 ? -x : x)
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
