/* Flash-style attention, the GPU path of mf.nn.F.attention (CPUs keep the
   materialized scores, lua/moonflow/nn/attention.lua). Per head (B h of
   them), contiguous: Q {N, d}, K {M, d}, V {M, e}, O {N, e}; s the scale,
     S = s Q K^T, L_i = log sum_j exp(S_ij), P = exp(S - L), O = P V.
   A work-item owns one row (a query row; a key row in at_bwd_kv), AT_WG rows
   per work-group; the other side streams through local memory in tiles of
   AT_WG rows, so memory grows with N + M per head, never N M. Rows live in
   private arrays: d, e <= AT_DMAX (the launcher checks).
     at_fwd:    O and L in one pass, running max m and sum z, the partial
                sums rescaled by exp(m_old - m_new) once per tile.
     at_bwd_q:  D_i = rowsum(dO o O)_i, dQ = s dS K with
                dS = P o (dO V^T - D), P recomputed from Q, K, L.
     at_bwd_kv: dV = P^T dO, dK = s dS^T Q, a key row per item.
     at_jvp:    dS = s (tQ K^T + Q tK^T), dO = P (dS o V-rows) + P tV
                - rowsum(P o dS) O (L known: no running statistics). */
#define AT_WG 32
#define AT_DMAX 128

/* grid: one group per AT_WG rows of each head */
#define AT_ROW(rows)                                                           \
  int l = get_local_id(0), nb_ = ((rows) + AT_WG - 1) / AT_WG;                 \
  int bh = get_group_id(0) / nb_;                                              \
  int row = get_group_id(0) % nb_ * AT_WG + l;                                 \
  int live = row < (rows);                                                     \
  long me = (long)bh * (rows) + (live ? row : 0)

/* the tiles of the other side: t0 the first row, cnt rows in this tile */
#define AT_TILES(n)                                                            \
  for (int t0 = 0, cnt = min(AT_WG, (n)); t0 < (n);                            \
       t0 += AT_WG, cnt = min(AT_WG, (n) - t0))

#define MF_AT(T, suf)                                                          \
  /* dst[0, n) = src[0, n), the group's items striding */                     \
  inline void at_load_##suf(local T *dst, global const T *src, int n, int l) { \
    for (int t = l; t < n; t += AT_WG) dst[t] = src[t];                        \
  }                                                                            \
  inline T at_dot_##suf(const T *a, local const T *b, int n) {                 \
    T x = (T)0;                                                                \
    for (int c = 0; c < n; ++c) x += a[c] * b[c];                              \
    return x;                                                                  \
  }                                                                            \
                                                                               \
  kernel __attribute__((reqd_work_group_size(AT_WG, 1, 1)))                    \
  void at_fwd_##suf(global T *o, global T *lse, global const T *q,             \
                    global const T *k, global const T *v, int N, int M,        \
                    int d, int e, T s, local T *kt, local T *vt) {             \
    AT_ROW(N);                                                                 \
    T qi[AT_DMAX], acc[AT_DMAX], sc[AT_WG];                                    \
    for (int c = 0; c < d; ++c) qi[c] = s * q[me * d + c];                     \
    for (int c = 0; c < e; ++c) acc[c] = (T)0;                                 \
    T m = -INFINITY, z = (T)0;                                                 \
    AT_TILES(M) {                                                              \
      barrier(CLK_LOCAL_MEM_FENCE);                                            \
      at_load_##suf(kt, k + ((long)bh * M + t0) * d, cnt * d, l);              \
      at_load_##suf(vt, v + ((long)bh * M + t0) * e, cnt * e, l);              \
      barrier(CLK_LOCAL_MEM_FENCE);                                            \
      T mt = m;                                                                \
      for (int j = 0; j < cnt; ++j) {                                          \
        sc[j] = at_dot_##suf(qi, kt + j * d, d);                               \
        mt = fmax(mt, sc[j]);                                                  \
      }                                                                        \
      T a = exp(m - mt); /* 0 on the first tile */                           \
      z *= a;                                                                  \
      for (int c = 0; c < e; ++c) acc[c] *= a;                                 \
      for (int j = 0; j < cnt; ++j) {                                          \
        T p = exp(sc[j] - mt);                                                 \
        z += p;                                                                \
        for (int c = 0; c < e; ++c) acc[c] += p * vt[j * e + c];               \
      }                                                                        \
      m = mt;                                                                  \
    }                                                                          \
    if (!live) return;                                                         \
    for (int c = 0; c < e; ++c) o[me * e + c] = acc[c] / z;                    \
    lse[me] = m + log(z);                                                      \
  }                                                                            \
                                                                               \
  kernel __attribute__((reqd_work_group_size(AT_WG, 1, 1)))                    \
  void at_bwd_q_##suf(global T *dq, global T *dd, global const T *g,           \
                      global const T *q, global const T *k,                    \
                      global const T *v, global const T *o,                    \
                      global const T *lse, int N, int M, int d, int e, T s,    \
                      local T *kt, local T *vt) {                              \
    AT_ROW(N);                                                                 \
    T qi[AT_DMAX], gi[AT_DMAX], acc[AT_DMAX];                                  \
    T D = (T)0, L = lse[me];                                                   \
    for (int c = 0; c < d; ++c) { qi[c] = s * q[me * d + c]; acc[c] = (T)0; }  \
    for (int c = 0; c < e; ++c) { gi[c] = g[me * e + c]; D += gi[c] * o[me * e + c]; } \
    AT_TILES(M) {                                                              \
      barrier(CLK_LOCAL_MEM_FENCE);                                            \
      at_load_##suf(kt, k + ((long)bh * M + t0) * d, cnt * d, l);              \
      at_load_##suf(vt, v + ((long)bh * M + t0) * e, cnt * e, l);              \
      barrier(CLK_LOCAL_MEM_FENCE);                                            \
      for (int j = 0; j < cnt; ++j) {                                          \
        T p = exp(at_dot_##suf(qi, kt + j * d, d) - L);                        \
        T ds = p * (at_dot_##suf(gi, vt + j * e, e) - D);                      \
        for (int c = 0; c < d; ++c) acc[c] += ds * kt[j * d + c];              \
      }                                                                        \
    }                                                                          \
    if (!live) return;                                                         \
    for (int c = 0; c < d; ++c) dq[me * d + c] = s * acc[c];                   \
    dd[me] = D;                                                                \
  }                                                                            \
                                                                               \
  kernel __attribute__((reqd_work_group_size(AT_WG, 1, 1)))                    \
  void at_bwd_kv_##suf(global T *dk, global T *dv, global const T *g,          \
                       global const T *q, global const T *k,                   \
                       global const T *v, global const T *lse,                 \
                       global const T *dd, int N, int M, int d, int e, T s,    \
                       local T *qt, local T *gt, local T *lt) {                \
    AT_ROW(M);                                                                 \
    local T *dt = lt + AT_WG; /* lt: L, dt: D of the tile's rows */          \
    T kj[AT_DMAX], vj[AT_DMAX], ak[AT_DMAX], av[AT_DMAX];                      \
    for (int c = 0; c < d; ++c) { kj[c] = s * k[me * d + c]; ak[c] = (T)0; }   \
    for (int c = 0; c < e; ++c) { vj[c] = v[me * e + c]; av[c] = (T)0; }       \
    AT_TILES(N) {                                                              \
      barrier(CLK_LOCAL_MEM_FENCE);                                            \
      at_load_##suf(qt, q + ((long)bh * N + t0) * d, cnt * d, l);              \
      at_load_##suf(gt, g + ((long)bh * N + t0) * e, cnt * e, l);              \
      at_load_##suf(lt, lse + (long)bh * N + t0, cnt, l);                      \
      at_load_##suf(dt, dd + (long)bh * N + t0, cnt, l);                       \
      barrier(CLK_LOCAL_MEM_FENCE);                                            \
      for (int i = 0; i < cnt; ++i) {                                          \
        T p = exp(at_dot_##suf(kj, qt + i * d, d) - lt[i]);                    \
        T ds = p * (at_dot_##suf(vj, gt + i * e, e) - dt[i]);                  \
        for (int c = 0; c < e; ++c) av[c] += p * gt[i * e + c];                \
        for (int c = 0; c < d; ++c) ak[c] += ds * qt[i * d + c];               \
      }                                                                        \
    }                                                                          \
    if (!live) return;                                                         \
    for (int c = 0; c < d; ++c) dk[me * d + c] = s * ak[c];                    \
    for (int c = 0; c < e; ++c) dv[me * e + c] = av[c];                        \
  }                                                                            \
                                                                               \
  /* has: 1 tQ, 2 tK, 4 tV given (absent ones are stand-ins, never read) */  \
  kernel __attribute__((reqd_work_group_size(AT_WG, 1, 1)))                    \
  void at_jvp_##suf(global T *out, global const T *tq, global const T *tk,     \
                    global const T *tv, global const T *q, global const T *k,  \
                    global const T *v, global const T *o,                      \
                    global const T *lse, int N, int M, int d, int e, T s,      \
                    int has, local T *kt, local T *vt, local T *tkt,           \
                    local T *tvt) {                                            \
    AT_ROW(N);                                                                 \
    T qi[AT_DMAX], tqi[AT_DMAX], acc[AT_DMAX];                                 \
    T r = (T)0, L = lse[me];                                                   \
    for (int c = 0; c < d; ++c) {                                              \
      qi[c] = s * q[me * d + c];                                               \
      tqi[c] = (has & 1) ? s * tq[me * d + c] : (T)0;                          \
    }                                                                          \
    for (int c = 0; c < e; ++c) acc[c] = (T)0;                                 \
    AT_TILES(M) {                                                              \
      barrier(CLK_LOCAL_MEM_FENCE);                                            \
      at_load_##suf(kt, k + ((long)bh * M + t0) * d, cnt * d, l);              \
      at_load_##suf(vt, v + ((long)bh * M + t0) * e, cnt * e, l);              \
      if (has & 2) at_load_##suf(tkt, tk + ((long)bh * M + t0) * d, cnt * d, l); \
      if (has & 4) at_load_##suf(tvt, tv + ((long)bh * M + t0) * e, cnt * e, l); \
      barrier(CLK_LOCAL_MEM_FENCE);                                            \
      for (int j = 0; j < cnt; ++j) {                                          \
        T p = exp(at_dot_##suf(qi, kt + j * d, d) - L);                        \
        T ds = (has & 1) ? at_dot_##suf(tqi, kt + j * d, d) : (T)0;            \
        if (has & 2) ds += at_dot_##suf(qi, tkt + j * d, d);                   \
        r += p * ds;                                                           \
        for (int c = 0; c < e; ++c)                                            \
          acc[c] += p * (ds * vt[j * e + c] + ((has & 4) ? tvt[j * e + c] : (T)0)); \
      }                                                                        \
    }                                                                          \
    if (!live) return;                                                         \
    for (int c = 0; c < e; ++c) out[me * e + c] = acc[c] - r * o[me * e + c];  \
  }

MF_AT(float, f32)
#ifdef MF_FP64
MF_AT(double, f64)
#endif
