/* Diffusion kernels: fused noising + target, per-sample weighted squared
   error, preconditioning coefficients, inverse normal CDF, and the
   rectified-flow conversions (float64 inside, or float-float arithmetic on
   devices without fp64). Data are [rows, cols] blocks read contiguously
   from element offsets; per-row parameters p are read at p[op + ps * r]
   (ps = 0 broadcasts one value to every row). */

/* ------------------------------------------------------------------------
   Per-row coefficients of the fused noising kernel:
     x_t = a x + b n,   target = c x + d n
   MF_NT_sit (SiT / RF): p = t,     a = 1 - t, b = t,     c = -1, d = 1
   MF_NT_edm:            p = sigma, a = 1,     b = sigma, c = 1,  d = 0
   MF_NT_general:        p holds (a, b, c, d) per row (ps = 4, or 0) */
#define MF_NT_COEF(T)                                                          \
  T pa, pb, pc, pd;                                                            \
  {                                                                            \
    global const T *pr = p + op + ps * r;                                      \
    if (kind == MF_NT_sit) { pa = (T)1 - pr[0]; pb = pr[0]; pc = (T)-1; pd = (T)1; } \
    else if (kind == MF_NT_edm) { pa = (T)1; pb = pr[0]; pc = (T)1; pd = (T)0; } \
    else { pa = pr[0]; pb = pr[1]; pc = pr[2]; pd = pr[3]; }                   \
    /* tr: the transposed map, (gx, gn) = (a gxt + c gtgt, b gxt + d gtgt) */  \
    if (tr) { T s = pb; pb = pc; pc = s; }                                     \
  }

/* out[o1 + i] = a_r x[i] + b_r y[i],  out[o2 + i] = c_r x[i] + d_r y[i]
   (o2 < 0: second output skipped). Two loop shapes, chosen by the launcher:
   diff_nt (GPUs): each work-item takes runs of 4 elements (one vector load
   per operand) in a grid-stride loop; a run that straddles two rows falls
   back to scalars.
   diff_ntrow (CPUs): each work-item takes its contiguous run (mf_run),
   split at row ends so the coefficients are constant
   over each inner loop (which the compiler vectorizes). */
#define MF_NT_ROWS(T)                                                          \
  int2 run_ = mf_run(rows * cols);                                             \
  int lo = run_.x, hi = run_.y;                                                \
  int r = lo / cols, e = min(hi, (r + 1) * cols);                              \
  for (int i = lo; i < hi; i = e, ++r, e = min(hi, e + cols)) {                \
    MF_NT_COEF(T)                                                              \
    global T *o = out + o1;                                                    \
    global const T *xs = x + ox, *ys = y + oy;                                 \
    for (int k = i; k < e; ++k) o[k] = pa * xs[k] + pb * ys[k];                \
    if (o2 >= 0) {                                                             \
      global T *o_ = out + o2;                                                 \
      for (int k = i; k < e; ++k) o_[k] = pc * xs[k] + pd * ys[k];             \
    }                                                                          \
  }
#define MF_NT_QUADS(T, T4)                                                     \
  int n = rows * cols, nq = (n + 3) / 4;                                       \
  MF_FOR(q, nq) {                                                              \
    int i = 4 * q, last = min(i + 3, n - 1);                                   \
    int r = i / cols;                                                          \
    if (last - i == 3 && last / cols == r) {                                   \
      MF_NT_COEF(T)                                                            \
      T4 xv = vload4(0, x + ox + i), yv = vload4(0, y + oy + i);               \
      vstore4(pa * xv + pb * yv, 0, out + o1 + i);                             \
      if (o2 >= 0) vstore4(pc * xv + pd * yv, 0, out + o2 + i);                \
    } else {                                                                   \
      for (int k = i; k <= last; ++k) {                                        \
        r = k / cols;                                                          \
        MF_NT_COEF(T)                                                          \
        T xs = x[ox + k], ys = y[oy + k];                                      \
        out[o1 + k] = pa * xs + pb * ys;                                       \
        if (o2 >= 0) out[o2 + k] = pc * xs + pd * ys;                          \
      }                                                                        \
    }                                                                          \
  }
#define MF_NOISE_TARGET(T, T4, suf)                                            \
  kernel void diff_nt_##suf(global T *out, int o1, int o2, global const T *x,  \
                            int ox, global const T *y, int oy,                 \
                            global const T *p, int op, int ps, int kind,       \
                            int tr, int rows, int cols) {                      \
    MF_NT_QUADS(T, T4)                                                         \
  }                                                                            \
  kernel void diff_ntrow_##suf(global T *out, int o1, int o2,                  \
                               global const T *x, int ox, global const T *y,   \
                               int oy, global const T *p, int op, int ps,      \
                               int kind, int tr, int rows, int cols) {         \
    MF_NT_ROWS(T)                                                              \
  }

/* ------------------------------------------------------------------------
   Per-row weighted reductions, one launch, {rows} output:
     out[r] = s w_r sum_j f(a[r, j], b[r, j])
   mode MF_ROWRED_sqerr: (a - b)^2, MF_ROWRED_dot: a b, MF_ROWRED_square: a^2
   w is read at w[ow + ws r] when hasw, else w_r = 1.
   diff_rowred: one work-group per row, each work-item folds a strided run
   (4-wide when the row starts allow it), then a tree in local memory.
   diff_rowred1: one work-item per row (narrow rows, and every row on CPUs,
   where a work-item streams through its rows with 16 accumulator lanes). */
#define MF_ROW_F(T, mode, u, v)                                                \
  ((mode) == MF_ROWRED_sqerr ? ((u) - (v)) * ((u) - (v)) : (mode) == MF_ROWRED_dot ? (u) * (v) : (u) * (u))

#define MF_ROWRED(T, T4, suf)                                                  \
  kernel void diff_rowred_##suf(global T *out, global const T *a, int oa,      \
                                global const T *b, int ob, global const T *w,  \
                                int ow, int ws, int hasw, int rows, int cols,  \
                                T s, int mode, local T *acc) {                 \
    int r = get_group_id(0), l = get_local_id(0), L = get_local_size(0);       \
    (void)rows; /* one work-group per row */                                   \
    global const T *ar = a + oa + (long)r * cols;                              \
    global const T *br = b + ob + (long)r * cols;                              \
    T sum = (T)0;                                                              \
    if (((oa | ob | cols) & 3) == 0) {                                         \
      int nq = cols / 4;                                                       \
      for (int q = l; q < nq; q += L) {                                        \
        T4 u = vload4(q, ar), v = vload4(q, br), f;                            \
        f = MF_ROW_F(T4, mode, u, v);                                          \
        sum += (f.x + f.y) + (f.z + f.w);                                      \
      }                                                                        \
    } else {                                                                   \
      for (int j = l; j < cols; j += L) sum += MF_ROW_F(T, mode, ar[j], br[j]); \
    }                                                                          \
    acc[l] = sum;                                                              \
    barrier(CLK_LOCAL_MEM_FENCE);                                              \
    for (int h = L / 2; h > 0; h >>= 1) {                                      \
      if (l < h) acc[l] += acc[l + h];                                         \
      barrier(CLK_LOCAL_MEM_FENCE);                                            \
    }                                                                          \
    if (l == 0) out[r] = s * (hasw ? w[ow + ws * r] : (T)1) * acc[0];          \
  }                                                                            \
  kernel void diff_rowred1_##suf(global T *out, global const T *a, int oa,     \
                                 global const T *b, int ob, global const T *w, \
                                 int ow, int ws, int hasw, int rows, int cols, \
                                 T s, int mode) {                              \
    MF_FOR(r, rows) {                                                          \
      global const T *ar = a + oa + (long)r * cols;                            \
      global const T *br = b + ob + (long)r * cols;                            \
      T sum = (T)0;                                                            \
      int j = 0;                                                               \
      if (((oa | ob | cols) & 3) == 0 && cols >= 16) {                         \
        T4 a0 = (T4)0, a1 = (T4)0, a2 = (T4)0, a3 = (T4)0;                     \
        for (; j + 16 <= cols; j += 16) {                                      \
          T4 u0 = vload4(0, ar + j), v0 = vload4(0, br + j);                   \
          T4 u1 = vload4(1, ar + j), v1 = vload4(1, br + j);                   \
          T4 u2 = vload4(2, ar + j), v2 = vload4(2, br + j);                   \
          T4 u3 = vload4(3, ar + j), v3 = vload4(3, br + j);                   \
          a0 += MF_ROW_F(T4, mode, u0, v0);                                    \
          a1 += MF_ROW_F(T4, mode, u1, v1);                                    \
          a2 += MF_ROW_F(T4, mode, u2, v2);                                    \
          a3 += MF_ROW_F(T4, mode, u3, v3);                                    \
        }                                                                      \
        T4 a = (a0 + a1) + (a2 + a3);                                          \
        sum = (a.x + a.y) + (a.z + a.w);                                       \
      }                                                                        \
      for (; j < cols; ++j) sum += MF_ROW_F(T, mode, ar[j], br[j]);            \
      out[r] = s * (hasw ? w[ow + ws * r] : (T)1) * sum;                       \
    }                                                                          \
  }                                                                            \
  /* d/da of the above times g_r: out = 2 s w_r g_r (a - b) (sqerr),           \
     s w_r g_r b (dot), 2 s w_r g_r a (square); g read at g[og + r] */         \
  kernel void diff_rowred_grad_##suf(global T *out, global const T *a, int oa, \
                                     global const T *b, int ob,                \
                                     global const T *w, int ow, int ws,        \
                                     int hasw, global const T *g, int og,      \
                                     int rows, int cols, T s, int mode) {      \
    int n = rows * cols;                                                       \
    MF_FOR(i, n) {                                                             \
      int r = i / cols;                                                        \
      T k = s * (hasw ? w[ow + ws * r] : (T)1) * g[og + r];                    \
      T u = a[oa + i], v = b[ob + i];                                          \
      out[i] = mode == MF_ROWRED_sqerr ? (T)2 * k * (u - v) : mode == MF_ROWRED_dot ? k * v : (T)2 * k * u; \
    }                                                                          \
  }

/* ------------------------------------------------------------------------
   Elementwise coefficient functions of t (or sigma), and their derivatives
   (deriv != 0), with sd = x_sigma (EDM) or the shift (t_shift):
   (which: enum mf_coef, src/kernel_names.h)
   sit_c_in = 1                  sit_c_out = 1
   sit_c_skip = 0                sit_c_noise = t
   edm_c_in = 1/sqrt(sd^2 + s^2)          d: -s (sd^2 + s^2)^(-3/2)
   edm_c_out = s sd / sqrt(s^2 + sd^2)    d: sd^3 (s^2 + sd^2)^(-3/2)
   edm_c_skip = sd^2 / (s^2 + sd^2)       d: -2 s sd^2 / (s^2 + sd^2)^2
   edm_c_noise = log(s) / 4               d: 1 / (4 s)
   edm_weight = (s^2 + sd^2) / (s sd)^2   d: -2 / s^3
   t_shift = sd t / (1 + (sd - 1) t)      d: sd / (1 + (sd - 1) t)^2
   rf_alpha = 1 - t                       d: -1
   rf_sigma = t                           d: 1 */
#define MF_COEF(T, suf)                                                        \
  kernel void diff_coef_##suf(global T *out, global const T *t, int ot, int n, \
                              int which, T sd, int deriv) {                    \
    MF_FOR(i, n) {                                                             \
      T s = t[ot + i], q = s * s + sd * sd, y;                                 \
      switch (which) {                                                         \
        case MF_COEF_sit_c_in: case MF_COEF_sit_c_out:                         \
          y = deriv ? (T)0 : (T)1; break;                                      \
        case MF_COEF_sit_c_skip: y = (T)0; break;                              \
        case MF_COEF_sit_c_noise: case MF_COEF_rf_sigma:                       \
          y = deriv ? (T)1 : s; break;                                         \
        case MF_COEF_edm_c_in: y = deriv ? -s / (q * sqrt(q)) : rsqrt(q); break; \
        case MF_COEF_edm_c_out: y = deriv ? sd * sd * sd / (q * sqrt(q)) : s * sd / sqrt(q); break; \
        case MF_COEF_edm_c_skip: y = deriv ? (T)-2 * s * sd * sd / (q * q) : sd * sd / q; break; \
        case MF_COEF_edm_c_noise: y = deriv ? (T)0.25 / s : log(s) * (T)0.25; break; \
        case MF_COEF_edm_weight: y = deriv ? (T)-2 / (s * s * s) : q / (s * s * sd * sd); break; \
        case MF_COEF_t_shift: {                                                \
          T den = (T)1 + (sd - (T)1) * s;                                      \
          y = deriv ? sd / (den * den) : sd * s / den;                         \
          break;                                                               \
        }                                                                      \
        case MF_COEF_rf_alpha: y = deriv ? (T)-1 : (T)1 - s; break;            \
        default: y = (T)0;                                                     \
      }                                                                        \
      out[i] = y;                                                              \
    }                                                                          \
  }

/* Inverse standard normal CDF z = Phi^-1(u), u in (0, 1): Acklam's rational
   approximation (relative error 1.15e-9), then one Halley step on
   e = Phi(z) - u = erfc(-z / sqrt 2) / 2 - u, which brings it to full precision. */
#define MF_NDTRI(T, suf)                                                       \
  kernel void diff_ndtri_##suf(global T *out, global const T *u, int ou, int n) { \
    MF_FOR(i, n) {                                                             \
      T p = u[ou + i], z;                                                      \
      const T a1 = -3.969683028665376e+01, a2 = 2.209460984245205e+02,         \
              a3 = -2.759285104469687e+02, a4 = 1.383577518672690e+02,         \
              a5 = -3.066479806614716e+01, a6 = 2.506628277459239e+00;         \
      const T b1 = -5.447609879822406e+01, b2 = 1.615858368580409e+02,         \
              b3 = -1.556989798598866e+02, b4 = 6.680131188771972e+01,         \
              b5 = -1.328068155288572e+01;                                     \
      const T c1 = -7.784894002430293e-03, c2 = -3.223964580411365e-01,        \
              c3 = -2.400758277161838e+00, c4 = -2.549732539343734e+00,        \
              c5 = 4.374664141464968e+00, c6 = 2.938163982698783e+00;          \
      const T d1 = 7.784695709041462e-03, d2 = 3.224671290700398e-01,          \
              d3 = 2.445134137142996e+00, d4 = 3.754408661907416e+00;          \
      if (p < (T)0.02425) {                                                    \
        T q = sqrt((T)-2 * log(p));                                            \
        z = (((((c1 * q + c2) * q + c3) * q + c4) * q + c5) * q + c6) /        \
            ((((d1 * q + d2) * q + d3) * q + d4) * q + (T)1);                  \
      } else if (p > (T)1 - (T)0.02425) {                                      \
        T q = sqrt((T)-2 * log((T)1 - p));                                     \
        z = -(((((c1 * q + c2) * q + c3) * q + c4) * q + c5) * q + c6) /       \
            ((((d1 * q + d2) * q + d3) * q + d4) * q + (T)1);                  \
      } else {                                                                 \
        T q = p - (T)0.5, rr = q * q;                                          \
        z = (((((a1 * rr + a2) * rr + a3) * rr + a4) * rr + a5) * rr + a6) * q / \
            (((((b1 * rr + b2) * rr + b3) * rr + b4) * rr + b5) * rr + (T)1);  \
      }                                                                        \
      /* Halley: e = Phi(z) - p, v = e sqrt(2 pi) e^(z^2/2), z -= v / (1 + z v / 2) */ \
      T e = (T)0.5 * erfc(-z * (T)0.70710678118654752) - p;                    \
      T v = e * (T)2.5066282746310002 * exp(z * z * (T)0.5);                   \
      z -= v / ((T)1 + z * v * (T)0.5);                                        \
      /* the ends: Phi^-1(0) = -inf, Phi^-1(1) = +inf (no NaN from the step) */ \
      out[i] = p <= (T)0 ? -INFINITY : p >= (T)1 ? INFINITY : z;               \
    }                                                                          \
  }

MF_NOISE_TARGET(float, float4, f32)
MF_ROWRED(float, float4, f32)
MF_COEF(float, f32)
MF_NDTRI(float, f32)
#ifdef MF_FP64
MF_NOISE_TARGET(double, double4, f64)
MF_ROWRED(double, double4, f64)
MF_COEF(double, f64)
MF_NDTRI(double, f64)
#endif

/* ------------------------------------------------------------------------
   Rectified-flow conversions (fastgen), alpha_t = 1 - t, sigma_t = t:
     out = (wa A_t a + wb B_t b) / D_t
   (op: enum mf_rf_op, src/kernel_names.h)
   add_noise(x0, eps):              A = 1 - t, B = t, D = 1
   pred_noise_to_pred_x0(eps, x_t): A = -t,    B = 1, D = max(1 - t, 1e-6)
   pred_x0_from_flow(v, x_t):       A = -t,    B = 1, D = 1
   x0_to_eps(x0, x_t):              A = t - 1, B = 1, D = max(t, 1e-6)
   x0_to_flow(x0, x_t):             A = -1,    B = 1, D = max(t, 1e-6)
   wa, wb in {0, 1} select terms (the vjp and jvp of a linear map). */
#define MF_RF_COEF(op, t, A, B, D)                                             \
  switch (op) {                                                                \
    case MF_RF_add_noise: A = 1 - t; B = t; D = 1; break;                      \
    case MF_RF_pred_noise_to_pred_x0: A = -t; B = 1; D = fmax(1 - t, 1e-6); break; \
    case MF_RF_pred_x0_from_flow: A = -t; B = 1; D = 1; break;                 \
    case MF_RF_x0_to_eps: A = t - 1; B = 1; D = fmax(t, 1e-6); break;          \
    default: /* MF_RF_x0_to_flow */ A = -1; B = 1; D = fmax(t, 1e-6);          \
  }

#ifdef MF_FP64
/* float64 inside whatever the data dtype T; t is f64, read at t[ot + ts r] */
#define MF_RF_CONV(T, suf)                                                     \
  kernel void rf_conv_##suf(global T *out, global const T *a, int oa,          \
                            global const T *b, int ob, global const double *t, \
                            int ot, int ts, int rows, int cols, int op,        \
                            int wa, int wb) {                                  \
    int n = rows * cols;                                                       \
    MF_FOR(i, n) {                                                             \
      double tv = t[ot + ts * (i / cols)], A, B, D;                            \
      MF_RF_COEF(op, tv, A, B, D)                                              \
      double y = (wa ? A * (double)a[oa + i] : 0.0) + (wb ? B * (double)b[ob + i] : 0.0); \
      out[i] = (T)(y / D);                                                     \
    }                                                                          \
  }
MF_RF_CONV(float, f32)
MF_RF_CONV(double, f64)
#endif

/* ---- float-float (double-single) arithmetic: a value is hi + lo with
   |lo| <= ulp(hi) / 2, about 48 significant bits (Dekker 1971; Hida, Li and
   Bailey's QD). No reassociation is allowed here; fma is exact-rounded. */
/* s + e = a + b exactly (Knuth's TwoSum) */
inline float2 ff_two_sum(float a, float b) {
  float s = a + b, bb = s - a;
  return (float2)(s, (a - (s - bb)) + (b - bb));
}
/* s + e = a + b exactly when |a| >= |b| (Dekker's FastTwoSum) */
inline float2 ff_fast(float a, float b) {
  float s = a + b;
  return (float2)(s, b - (s - a));
}
/* (a + b), error O(eps^2) relative */
inline float2 ff_add(float2 a, float2 b) {
  float2 s = ff_two_sum(a.x, b.x), t = ff_two_sum(a.y, b.y);
  s.y += t.x;
  s = ff_fast(s.x, s.y);
  s.y += t.y;
  return ff_fast(s.x, s.y);
}
inline float2 ff_neg(float2 a) { return (float2)(-a.x, -a.y); }
/* a b: p + e = a.hi b.hi exactly by fma, plus the cross terms */
inline float2 ff_mul(float2 a, float2 b) {
  float p = a.x * b.x, e = fma(a.x, b.x, -p);
  e += a.x * b.y + a.y * b.x;
  return ff_fast(p, e);
}
/* a / b by long division: three float quotients, each remainder exact-ish */
inline float2 ff_div(float2 a, float2 b) {
  float q1 = a.x / b.x;
  float2 r = ff_add(a, ff_neg(ff_mul(b, (float2)(q1, 0.0f))));
  float q2 = r.x / b.x;
  r = ff_add(r, ff_neg(ff_mul(b, (float2)(q2, 0.0f))));
  float q3 = r.x / b.x;
  return ff_add(ff_fast(q1, q2), (float2)(q3, 0.0f));
}
inline float2 ff_max(float2 a, float2 b) {
  return (a.x > b.x || (a.x == b.x && a.y > b.y)) ? a : b;
}

/* The conversions above in float-float. Operands are (hi, lo) pairs of f32
   buffers at a shared offset; a missing lo (has_* == 0) reads as 0, so f32
   tensors enter exactly. The result goes to ohi (rounded: hi + lo) and,
   when olo_ok, its low part to olo. t is read at t[ot + ts r]. */
kernel void rf_conv_ff(global float *ohi, global float *olo, int olo_ok,
                       global const float *ahi, global const float *alo, int oa, int has_alo,
                       global const float *bhi, global const float *blo, int ob, int has_blo,
                       global const float *thi, global const float *tlo, int ot, int has_tlo,
                       int ts, int rows, int cols, int op, int wa, int wb) {
  int n = rows * cols;
  /* tiny = 1e-6 to float-float accuracy (hi + lo) */
  const float2 one = (float2)(1.0f, 0.0f), tiny = (float2)(1e-6f, 2.5247572468697606e-15f);
  MF_FOR(i, n) {
    int k = ot + ts * (i / cols);
    float2 t = (float2)(thi[k], has_tlo ? tlo[k] : 0.0f), A, B, D;
    switch (op) {
      case MF_RF_add_noise: A = ff_add(one, ff_neg(t)); B = t; D = one; break;
      case MF_RF_pred_noise_to_pred_x0: A = ff_neg(t); B = one; D = ff_max(ff_add(one, ff_neg(t)), tiny); break;
      case MF_RF_pred_x0_from_flow: A = ff_neg(t); B = one; D = one; break;
      case MF_RF_x0_to_eps: A = ff_add(t, ff_neg(one)); B = one; D = ff_max(t, tiny); break;
      default: /* MF_RF_x0_to_flow */ A = ff_neg(one); B = one; D = ff_max(t, tiny);
    }
    float2 y = (float2)(0.0f, 0.0f);
    if (wa) y = ff_mul(A, (float2)(ahi[oa + i], has_alo ? alo[oa + i] : 0.0f));
    if (wb) y = ff_add(y, ff_mul(B, (float2)(bhi[ob + i], has_blo ? blo[ob + i] : 0.0f)));
    if (op != MF_RF_add_noise && op != MF_RF_pred_x0_from_flow) y = ff_div(y, D);
    ohi[i] = y.x + y.y;
    if (olo_ok) olo[i] = y.y - (ohi[i] - y.x);
  }
}

/* (hi, lo) of an f64 tensor: hi = (float)v, lo = (float)(v - hi) */
#ifdef MF_FP64
kernel void rf_split_f64(global float *hi, global float *lo, global const double *v, int ov, int n) {
  MF_FOR(i, n) {
    double x = v[ov + i];
    float h = (float)x;
    hi[i] = h;
    lo[i] = (float)(x - (double)h);
  }
}
#endif
