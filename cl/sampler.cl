/* Fused sampler updates (lua/moonflow/samplers). Every operand is a
   contiguous tensor of n elements read at its own element offset; per-step
   scalars (step h, guidance scale s, ...) are kernel arguments.
   Guidance: d = u + s (c - u) from the conditional prediction c and the
   unconditional u; when (flags & SMP_GUIDED) == 0, d = c and u is not read.
   Noise z ~ N(0, 1) comes from the Philox stream of cl/random.cl with the
   generator's (key, offset), element for element the numbers that
   rand_normal would draw, so a step equals its unfused form exactly. */

#define SMP_GUIDED 1
#define SMP_AUX 2     /* write aux */
#define SMP_AUX_X 4   /* aux = x + ha d (else aux = d) */

/* z for elements 4j .. 4j+3 of a f32 draw (as rand_normal_f32) */
inline float4 smp_normal4(ulong offset, int j, uint2 key) {
  uint4 r = mf_draw(offset, j, key);
  float2 p0 = mf_box_muller_f32(r.x, r.y), p1 = mf_box_muller_f32(r.z, r.w);
  return (float4)(p0.x * cos(p0.y), p0.x * sin(p0.y), p1.x * cos(p1.y), p1.x * sin(p1.y));
}

#define SMP_MIX(c, u, s, flags) (((flags) & SMP_GUIDED) ? (u) + (s) * ((c) - (u)) : (c))

#define MF_SAMPLER_STEPS(T, suf)                                               \
  /* d = mix(c, u); out = x + h d; aux = d or x + ha d (flags) */              \
  kernel void smp_step_##suf(global T *out, int oo, global const T *x, int ox, \
                             global const T *c, int oc, global const T *u,     \
                             int ou, global T *aux, int oaux, T h, T s, T ha,  \
                             int flags, int n) {                               \
    MF_FOR(i, n) {                                                             \
      T xi = x[ox + i];                                                        \
      T d = SMP_MIX(c[oc + i], u[ou + i], s, flags);                           \
      if (flags & SMP_AUX) aux[oaux + i] = (flags & SMP_AUX_X) ? xi + ha * d : d; \
      out[oo + i] = xi + h * d;                                                \
    }                                                                          \
  }                                                                            \
  /* Heun: d2 = mix(c, u); out = x + (h / 2) (d1 + d2) */                      \
  kernel void smp_heun_##suf(global T *out, int oo, global const T *x, int ox, \
                             global const T *d1, int od, global const T *c,    \
                             int oc, global const T *u, int ou, T h, T s,      \
                             int flags, int n) {                               \
    T hh = (T)0.5 * h;                                                         \
    MF_FOR(i, n) {                                                             \
      T d2 = SMP_MIX(c[oc + i], u[ou + i], s, flags);                          \
      out[oo + i] = x[ox + i] + hh * (d1[od + i] + d2);                        \
    }                                                                          \
  }

/* Euler-Maruyama, one step of the reverse SDE
     dx = [v - w/2 score] dt + sqrt(w) dW:
   drift_c = vc - hw sc, drift_u = vu - hw su (hw = w/2), d = mix(drift_c, drift_u),
   out = x + h d + nz z with nz = sqrt(w |h|) (0: no noise, no draw).
   Work-item j handles the elements of Philox counter j. */
#define SMP_EM_BODY(T, i, z)                                                   \
  {                                                                            \
    T dc = vc[ovc + (i)] - hw * sc[osc + (i)];                                 \
    T d = dc;                                                                  \
    if (flags & SMP_GUIDED) {                                                  \
      T du = vu[ovu + (i)] - hw * su[osu + (i)];                               \
      d = du + s * (dc - du);                                                  \
    }                                                                          \
    out[oo + (i)] = x[ox + (i)] + h * d + nz * (z);                            \
  }

#define SMP_EM_ARGS(T)                                                         \
  global T *out, int oo, global const T *x, int ox, global const T *vc,        \
      int ovc, global const T *sc, int osc, global const T *vu, int ovu,       \
      global const T *su, int osu, T h, T hw, T s, T nz, int flags, int n,     \
      uint2 key, ulong offset

kernel void smp_em_f32(SMP_EM_ARGS(float)) {
  int m = (n + 3) / 4;
  MF_FOR(j, m) {
    float4 z = nz != 0.0f ? smp_normal4(offset, j, key) : (float4)(0.0f);
    float zs[4] = {z.x, z.y, z.z, z.w};
    for (int l = 0; l < 4 && 4 * j + l < n; ++l) SMP_EM_BODY(float, 4 * j + l, zs[l])
  }
}

/* out = x + c z (EDM's churn: c = sqrt(sigma_hat^2 - sigma^2) S_noise) */
kernel void smp_noise_f32(global float *out, int oo, global const float *x, int ox,
                          float c, int n, uint2 key, ulong offset) {
  int m = (n + 3) / 4;
  MF_FOR(j, m) {
    float4 z = smp_normal4(offset, j, key);
    float zs[4] = {z.x, z.y, z.z, z.w};
    for (int l = 0; l < 4 && 4 * j + l < n; ++l) out[oo + 4 * j + l] = x[ox + 4 * j + l] + c * zs[l];
  }
}

MF_SAMPLER_STEPS(float, f32)

#ifdef MF_FP64
/* z for elements 2j, 2j+1 of a f64 draw (as rand_normal_f64) */
inline double2 smp_normal2(ulong offset, int j, uint2 key) {
  double2 p = mf_box_muller_f64(mf_draw(offset, j, key));
  return (double2)(p.x * cos(p.y), p.x * sin(p.y));
}

kernel void smp_em_f64(SMP_EM_ARGS(double)) {
  int m = (n + 1) / 2;
  MF_FOR(j, m) {
    double2 z = nz != 0.0 ? smp_normal2(offset, j, key) : (double2)(0.0);
    SMP_EM_BODY(double, 2 * j, z.x)
    if (2 * j + 1 < n) SMP_EM_BODY(double, 2 * j + 1, z.y)
  }
}

kernel void smp_noise_f64(global double *out, int oo, global const double *x, int ox,
                          double c, int n, uint2 key, ulong offset) {
  int m = (n + 1) / 2;
  MF_FOR(j, m) {
    double2 z = smp_normal2(offset, j, key);
    out[oo + 2 * j] = x[ox + 2 * j] + c * z.x;
    if (2 * j + 1 < n) out[oo + 2 * j + 1] = x[ox + 2 * j + 1] + c * z.y;
  }
}

MF_SAMPLER_STEPS(double, f64)
#endif

/* The Gaussian-mixture oracle's fields in one kernel per call (the fast path
   of lua/moonflow/oracle when nothing is differentiated). Row b of x {B, D}
   sees components N(a mu_k, V_k I), V_k = a^2 s2_k + beta^2, with
     linear path (edm == 0): a = 1 - t_b, beta = t_b;  EDM path: a = 1, beta = t_b;
   responsibilities r_k = softmax_k(logw_k - D/2 log(2 pi V_k) - |x - a mu_k|^2 / (2 V_k))
   (label y_b < K keeps only component y_b, y_b = K all of them, else NaN), and
     out = g sum_k r_k ((c0 + c1 s2_k) / V_k (x - a mu_k) + cb mu_k)
   with (c0, c1, cb, g) by field:
     velocity (t, -a, -1, 1)   score (-1, 0, 0, 1)   mean (posterior) (0, a, 1, 1)
     raw EDM F (-xs^2, 1, 1, sigma / (xs sqrt(sigma^2 + xs^2)))
   (field: enum mf_oracle_field, src/kernel_names.h).
   One work-item per row; logits in two passes (max, then weights). */
#define MF_ORACLE(T, suf)                                                      \
  kernel void oracle_field_##suf(global T *out, global const T *x, int ox,     \
                                 global const T *t, int ot, global const int *y, \
                                 int oy, int has_y, global const T *mu, int omu, \
                                 global const T *s2, int os2,                  \
                                 global const T *logw, int olw, int B, int D,  \
                                 int K, int field, int edm, T xs) {            \
    mu += omu;                                                                 \
    s2 += os2;                                                                 \
    logw += olw;                                                               \
    MF_FOR(b, B) {                                                             \
      T tb = t[ot + b];                                                        \
      T a = edm ? (T)1 : (T)1 - tb;                                            \
      int lab = has_y ? y[oy + b] : K;                                         \
      T c0, c1, cb, g = (T)1;                                                  \
      if (field == MF_FIELD_velocity) { c0 = tb; c1 = -a; cb = (T)-1; }        \
      else if (field == MF_FIELD_score) { c0 = (T)-1; c1 = (T)0; cb = (T)0; }  \
      else if (field == MF_FIELD_mean) { c0 = (T)0; c1 = a; cb = (T)1; }       \
      else { /* raw */ c0 = -xs * xs; c1 = (T)1; cb = (T)1;                    \
             g = tb / (xs * sqrt(tb * tb + xs * xs)); }                        \
      global const T *xr = x + ox + b * D;                                     \
      global T *o = out + b * D;                                               \
      T m = -INFINITY;                                                         \
      for (int k = 0; k < K; ++k) {                                            \
        if (lab < K && k != lab) continue;                                     \
        T V = a * a * s2[k] + tb * tb, sq = (T)0;                              \
        for (int d = 0; d < D; ++d) { T e = xr[d] - a * mu[k * D + d]; sq += e * e; } \
        T l = logw[k] - (T)0.5 * D * log((T)6.283185307179586 * V) - sq / ((T)2 * V); \
        m = fmax(m, l);                                                        \
      }                                                                        \
      for (int d = 0; d < D; ++d) o[d] = (T)0;                                 \
      T Z = (T)0;                                                              \
      for (int k = 0; k < K; ++k) {                                            \
        if (lab < K && k != lab) continue;                                     \
        T V = a * a * s2[k] + tb * tb, sq = (T)0;                              \
        for (int d = 0; d < D; ++d) { T e = xr[d] - a * mu[k * D + d]; sq += e * e; } \
        T w = exp(logw[k] - (T)0.5 * D * log((T)6.283185307179586 * V) - sq / ((T)2 * V) - m); \
        T A = (c0 + c1 * s2[k]) / V;                                           \
        Z += w;                                                                \
        for (int d = 0; d < D; ++d) {                                          \
          T mk = mu[k * D + d];                                                \
          o[d] += w * (A * (xr[d] - a * mk) + cb * mk);                        \
        }                                                                      \
      }                                                                        \
      T f = (lab >= 0 && lab <= K) ? g / Z : (T)NAN;                           \
      for (int d = 0; d < D; ++d) o[d] *= f;                                   \
    }                                                                          \
  }

MF_ORACLE(float, f32)
#ifdef MF_FP64
MF_ORACLE(double, f64)
#endif
