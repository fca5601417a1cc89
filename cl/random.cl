/* Counter-based Philox4x32-10 (Salmon et al., SC'11). Element k of a draw
   comes from counter (offset + k / 4, lane k % 4) under the generator's
   key, so the numbers depend only on (seed, offset, k), never on how the
   work is split. f64 draws use two words per element: counter offset + k / 2. */

inline uint4 mf_philox(uint4 c, uint2 k) {
  for (int r = 0; r < 10; ++r) {
    uint hi0 = mul_hi(0xD2511F53u, c.x), lo0 = 0xD2511F53u * c.x;
    uint hi1 = mul_hi(0xCD9E8D57u, c.z), lo1 = 0xCD9E8D57u * c.z;
    c = (uint4)(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    k += (uint2)(0x9E3779B9u, 0xBB67AE85u);
  }
  return c;
}

inline uint4 mf_draw(ulong offset, int j, uint2 key) {
  ulong c = offset + (ulong)j;
  return mf_philox((uint4)((uint)c, (uint)(c >> 32), 0u, 0u), key);
}

/* u in [0, 1) with 24 random bits */
#define MF_U24(r) ((float)((r) >> 8) * 5.9604644775390625e-8f)

/* out[i] = low + (high - low) * u */
kernel void rand_uniform_f32(global float *out, int n, uint2 key, ulong offset,
                             float low, float high) {
  int m = (n + 3) / 4;
  MF_FOR(j, m) {
    uint4 r = mf_draw(offset, j, key);
    uint w[4] = {r.x, r.y, r.z, r.w};
    for (int l = 0; l < 4 && 4 * j + l < n; ++l) {
      float v = low + (high - low) * MF_U24(w[l]);
      out[4 * j + l] = v < high ? v : low; /* rounding never yields high */
    }
  }
}

/* Box-Muller: z0 = rho cos(th), z1 = rho sin(th) with rho = sqrt(-2 log u1),
   th = 2 pi u2, u1 in (0, 1] and u2 in [0, 1) from two words a, b; returns
   (rho, th). Every normal draw (here and in cl/sampler.cl) goes through it. */
inline float2 mf_box_muller_f32(uint a, uint b) {
  float u1 = ((float)(a >> 8) + 1.0f) * 5.9604644775390625e-8f;
  float u2 = MF_U24(b);
  return (float2)(sqrt(-2.0f * log(u1)), 6.2831853071795865f * u2);
}

kernel void rand_normal_f32(global float *out, int n, uint2 key, ulong offset,
                            float mean, float std) {
  int m = (n + 3) / 4;
  MF_FOR(j, m) {
    uint4 r = mf_draw(offset, j, key);
    uint w[4] = {r.x, r.y, r.z, r.w};
    for (int h = 0; h < 2; ++h) {
      float2 p = mf_box_muller_f32(w[2 * h], w[2 * h + 1]);
      float rho = p.x, th = p.y;
      int i = 4 * j + 2 * h;
      if (i < n) out[i] = mean + std * rho * cos(th);
      if (i + 1 < n) out[i + 1] = mean + std * rho * sin(th);
    }
  }
}

/* out[i] = low + floor(u * (high - low)) with u from 32 bits */
kernel void rand_int_i32(global int *out, int n, uint2 key, ulong offset,
                         int low, uint range) {
  int m = (n + 3) / 4;
  MF_FOR(j, m) {
    uint4 r = mf_draw(offset, j, key);
    uint w[4] = {r.x, r.y, r.z, r.w};
    for (int l = 0; l < 4 && 4 * j + l < n; ++l)
      out[4 * j + l] = (int)((uint)low + mul_hi(w[l], range)); /* unsigned: no signed overflow */
  }
}

#ifdef MF_FP64
/* u in [0, 1) with 53 random bits from two words */
inline double mf_u53(uint a, uint b) {
  return (double)(((ulong)(a >> 5) << 26) | (ulong)(b >> 6)) * 1.1102230246251565e-16;
}

kernel void rand_uniform_f64(global double *out, int n, uint2 key,
                             ulong offset, double low, double high) {
  int m = (n + 1) / 2;
  MF_FOR(j, m) {
    uint4 r = mf_draw(offset, j, key);
    double v0 = low + (high - low) * mf_u53(r.x, r.y);
    double v1 = low + (high - low) * mf_u53(r.z, r.w);
    out[2 * j] = v0 < high ? v0 : low;
    if (2 * j + 1 < n) out[2 * j + 1] = v1 < high ? v1 : low;
  }
}

/* Box-Muller in f64 from the four words of one counter: (rho, th) */
inline double2 mf_box_muller_f64(uint4 r) {
  double u1 = 1.0 - mf_u53(r.x, r.y); /* (0, 1] */
  double u2 = mf_u53(r.z, r.w);
  return (double2)(sqrt(-2.0 * log(u1)), 6.283185307179586 * u2);
}

kernel void rand_normal_f64(global double *out, int n, uint2 key,
                            ulong offset, double mean, double std) {
  int m = (n + 1) / 2;
  MF_FOR(j, m) {
    double2 p = mf_box_muller_f64(mf_draw(offset, j, key));
    double rho = p.x, th = p.y;
    out[2 * j] = mean + std * rho * cos(th);
    if (2 * j + 1 < n) out[2 * j + 1] = mean + std * rho * sin(th);
  }
}
#endif
