/* Fused layer kernels over contiguous row-major [rows, cols] blocks:
   the Linear epilogue (bias, activation, residual), activation gradients,
   LayerNorm (with an added input and an activation) and its backward,
   column sums for bias and LayerNorm weight gradients.
   Activations are compiled in: kernel names carry the activation's name
   (MF_ACTIVATIONS of src/kernel_names.h) before the dtype.
   Two shapes of each kernel are compiled on every device; the launcher picks
   one by device type (core.nn_path can force either, so specs run both):
   run (nn_*, CPUs): a work-item takes a run of rows (mf_run) and walks each
     row in 16-lane vectors, which is how PoCL vectorizes exp and erf;
   work-group (nnwg_*, GPUs): one work-group of NN_WG items per row, item l
     taking columns l, l + NN_WG, ... (coalesced), reductions in local memory. */
#define NN_WG 64

/* act(x) and act'(x): MF_ACT_<A> and MF_DACT_<A> of cl/activations.cl;
   rows (or elements) of a work-item in the run shape: mf_run of cl/common.cl */
#define NN_ROWS(r, rows) for (int r##_hi = mf_run(rows).y, r = mf_run(rows).x; r < r##_hi; ++r)

#define MF_NN_BASE(T, suf)                                                     \
  /* horizontal sum of a 16-vector */                                          \
  inline T nn_hsum_##suf(T##16 v) {                                            \
    T##8 a = v.lo + v.hi;                                                      \
    T##4 b = a.lo + a.hi;                                                      \
    T##2 c = b.lo + b.hi;                                                      \
    return c.x + c.y;                                                          \
  }                                                                            \
  /* sum of v over the work-group (NN_WG items), returned to every item */     \
  inline T nn_wsum_##suf(local T *red, T v, int l) {                           \
    barrier(CLK_LOCAL_MEM_FENCE);                                              \
    red[l] = v;                                                                \
    barrier(CLK_LOCAL_MEM_FENCE);                                              \
    for (int s = NN_WG / 2; s > 0; s >>= 1) {                                  \
      if (l < s) red[l] += red[l + s];                                         \
      barrier(CLK_LOCAL_MEM_FENCE);                                            \
    }                                                                          \
    return red[0];                                                             \
  }                                                                            \
  /* Column sums, pass 1 (P chunks of `chunk` rows):                           \
     part[p, c] = sum_{r in chunk p} a[r, c]; with ln != 0 (LayerNorm weight   \
     grads) part[p, c] = sum a xh and part[p, cols + c] = sum a,               \
     xh = (x - mean[r]) rstd[r]. */                                            \
  kernel void nn_colsum_part_##suf(global T *part, global const T *a,          \
                                   global const T *x, global const T *mean,    \
                                   global const T *rstd, int ln, int rows,     \
                                   int cols, int chunk, int P) {               \
    NN_COLSUM_PART_RUN(T)                                                      \
  }                                                                            \
  kernel void nnwg_colsum_part_##suf(global T *part, global const T *a,        \
                                     global const T *x, global const T *mean,  \
                                     global const T *rstd, int ln, int rows,   \
                                     int cols, int chunk, int P) {             \
    NN_COLSUM_PART_WG(T)                                                       \
  }                                                                            \
  /* pass 2: out[c] = sum_r a[oa + r lda + c] (+ out[c] when acc) */           \
  kernel void nn_colsum_##suf(global T *out, int oo, global const T *a,        \
                              int oa, int lda, int rows, int cols, int acc) {  \
    MF_FOR(c, cols) {                                                          \
      T s = (T)0;                                                              \
      for (int r = 0; r < rows; ++r) s += a[oa + (long)r * lda + c];           \
      out[oo + c] = acc ? out[oo + c] + s : s;                                 \
    }                                                                          \
  }

/* run shape (CPUs): a work-item per chunk, rows streamed in vectors */
#define NN_COLSUM_PART_RUN(T)                                                  \
  int stride = ln ? 2 * cols : cols;                                           \
  for (int p = get_global_id(0); p < P; p += get_global_size(0)) {             \
    global T *pw = part + (long)p * stride;                                    \
    global T *pb = ln ? pw + cols : pw;                                        \
    for (int c = 0; c < stride; ++c) pw[c] = (T)0;                             \
    int r1 = min(rows, (p + 1) * chunk);                                       \
    for (int r = p * chunk; r < r1; ++r) {                                     \
      global const T *ar = a + (long)r * cols;                                 \
      int c = 0;                                                               \
      if (ln) {                                                                \
        global const T *xr = x + (long)r * cols;                               \
        T mu = mean[r], rs = rstd[r];                                          \
        for (; c + 16 <= cols; c += 16) {                                      \
          T##16 q = vload16(0, ar + c);                                        \
          vstore16(vload16(0, pb + c) + q, 0, pb + c);                         \
          vstore16(vload16(0, pw + c) + q * (vload16(0, xr + c) - mu) * rs, 0, pw + c); \
        }                                                                      \
        for (; c < cols; ++c) { pb[c] += ar[c]; pw[c] += ar[c] * (xr[c] - mu) * rs; } \
      } else {                                                                 \
        for (; c + 16 <= cols; c += 16)                                        \
          vstore16(vload16(0, pw + c) + vload16(0, ar + c), 0, pw + c);        \
        for (; c < cols; ++c) pw[c] += ar[c];                                  \
      }                                                                        \
    }                                                                          \
  }
/* work-group shape (GPUs): a work-item per (chunk, column), coalesced */
#define NN_COLSUM_PART_WG(T)                                                   \
  MF_FOR(i, P * cols) {                                                        \
    int p = i / cols, c = i - p * cols;                                        \
    int r1 = min(rows, (p + 1) * chunk);                                       \
    T s = (T)0, sw = (T)0;                                                     \
    for (int r = p * chunk; r < r1; ++r) {                                     \
      long j = (long)r * cols + c;                                             \
      T q = a[j];                                                              \
      s += q;                                                                  \
      if (ln) sw += q * (x[j] - mean[r]) * rstd[r];                            \
    }                                                                          \
    if (ln) {                                                                  \
      part[(long)p * 2 * cols + c] = sw;                                       \
      part[(long)p * 2 * cols + cols + c] = s;                                 \
    } else {                                                                   \
      part[(long)p * cols + c] = s;                                            \
    }                                                                          \
  }

/* Kernels with an activation compiled in (A = none, silu, gelu, relu, tanh),
   in the run shape (nn_*, CPUs) ... */
#define MF_NN_ACT_RUN(A, T, suf)                                               \
  /* Linear epilogue in place on the product z: pre = z + b (has_b);           \
     y = act(pre) + r (has_r). With act, z keeps pre; without, y may be z. */  \
  kernel void nn_bias_act_##A##_##suf(global T *y, global T *z,                \
                                      global const T *b, int ob, int has_b,    \
                                      global const T *r, int orr, int has_r,   \
                                      int rows, int cols) {                    \
    NN_ROWS(row, rows) {                                                       \
      long base = (long)row * cols;                                            \
      global T *zr = z + base, *yr = y + base;                                 \
      global const T *rr = r + orr + base, *bb = b + ob;                       \
      int k = 0;                                                               \
      for (; k + 16 <= cols; k += 16) {                                        \
        T##16 pre = vload16(0, zr + k);                                        \
        if (has_b) pre += vload16(0, bb + k);                                  \
        T##16 v = MF_ACT_##A(T, pre);                                          \
        if (has_r) v += vload16(0, rr + k);                                    \
        vstore16(v, 0, yr + k);                                                \
        if (y != z) vstore16(pre, 0, zr + k);                                  \
      }                                                                        \
      for (; k < cols; ++k) {                                                  \
        T pre = zr[k] + (has_b ? bb[k] : (T)0);                                \
        T v = MF_ACT_##A(T, pre);                                              \
        if (has_r) v += rr[k];                                                 \
        yr[k] = v;                                                             \
        if (y != z) zr[k] = pre;                                               \
      }                                                                        \
    }                                                                          \
  }                                                                            \
  /* gp = g act'(pre), elementwise over n */                                   \
  kernel void nn_act_grad_##A##_##suf(global T *gp, global const T *g,         \
                                      global const T *pre, int n) {            \
    int2 r_ = mf_run(n);                                                       \
    int i = r_.x;                                                              \
    for (; i + 16 <= r_.y; i += 16) {                                          \
      T##16 x = vload16(0, pre + i);                                           \
      vstore16(vload16(0, g + i) * MF_DACT_##A(T, x), 0, gp + i);              \
    }                                                                          \
    for (; i < r_.y; ++i) { T x = pre[i]; gp[i] = g[i] * MF_DACT_##A(T, x); }  \
  }                                                                            \
  /* LayerNorm: mu = mean x, rstd = 1 / sqrt(var x + eps) (biased, two         \
     passes), xh = (x - mu) rstd, y = act(xh w + b + c); flags: 1 w, 2 b, 4 c */ \
  kernel void nn_ln_fwd_##A##_##suf(global T *y, global T *mean,               \
                                    global T *rstd, global const T *x,         \
                                    global const T *w, int ow,                 \
                                    global const T *b, int obb,                \
                                    global const T *cc, int oc, int rows,      \
                                    int cols, T eps, int flags) {              \
    NN_ROWS(row, rows) {                                                       \
      long base = (long)row * cols;                                            \
      global const T *xr = x + base, *cr = cc + oc + base;                     \
      global const T *wr = w + ow, *br = b + obb;                              \
      global T *yr = y + base;                                                 \
      T##16 s16 = (T)0;                                                        \
      int k = 0;                                                               \
      for (; k + 16 <= cols; k += 16) s16 += vload16(0, xr + k);               \
      T s = nn_hsum_##suf(s16);                                                \
      for (; k < cols; ++k) s += xr[k];                                        \
      T mu = s / cols;                                                         \
      s16 = (T)0;                                                              \
      for (k = 0; k + 16 <= cols; k += 16) {                                   \
        T##16 d = vload16(0, xr + k) - mu;                                     \
        s16 += d * d;                                                          \
      }                                                                        \
      s = nn_hsum_##suf(s16);                                                  \
      for (; k < cols; ++k) { T d = xr[k] - mu; s += d * d; }                  \
      T rs = rsqrt(s / cols + eps);                                            \
      mean[row] = mu;                                                          \
      rstd[row] = rs;                                                          \
      for (k = 0; k + 16 <= cols; k += 16) {                                   \
        T##16 p = (vload16(0, xr + k) - mu) * rs;                              \
        if (flags & 1) p *= vload16(0, wr + k);                                \
        if (flags & 2) p += vload16(0, br + k);                                \
        if (flags & 4) p += vload16(0, cr + k);                                \
        vstore16(MF_ACT_##A(T, p), 0, yr + k);                                 \
      }                                                                        \
      for (; k < cols; ++k) {                                                  \
        T p = (xr[k] - mu) * rs;                                               \
        if (flags & 1) p *= wr[k];                                             \
        if (flags & 2) p += br[k];                                             \
        if (flags & 4) p += cr[k];                                             \
        yr[k] = MF_ACT_##A(T, p);                                              \
      }                                                                        \
    }                                                                          \
  }                                                                            \
  /* LayerNorm backward: gp = g act'(pre) (pre recomputed) to gpre (= the      \
     gradient of c); u = gp w; gx = rstd (u - mean u - xh mean(u xh)) */       \
  kernel void nn_ln_bwd_##A##_##suf(global T *gx, global T *gpre,              \
                                    global const T *g, global const T *x,      \
                                    global const T *mean,                      \
                                    global const T *rstd, global const T *w,   \
                                    int ow, global const T *b, int obb,        \
                                    global const T *cc, int oc, int rows,      \
                                    int cols, int flags) {                     \
    NN_ROWS(row, rows) {                                                       \
      long base = (long)row * cols;                                            \
      global const T *xr = x + base, *gr = g + base, *cr = cc + oc + base;     \
      global const T *wr = w + ow, *br = b + obb;                              \
      global T *pr = gpre + base, *gxr = gx + base;                            \
      T mu = mean[row], rs = rstd[row];                                        \
      T##16 su16 = (T)0, sx16 = (T)0;                                          \
      int k = 0;                                                               \
      for (; k + 16 <= cols; k += 16) {                                        \
        T##16 xh = (vload16(0, xr + k) - mu) * rs;                             \
        T##16 p = xh;                                                          \
        if (flags & 1) p *= vload16(0, wr + k);                                \
        if (flags & 2) p += vload16(0, br + k);                                \
        if (flags & 4) p += vload16(0, cr + k);                                \
        T##16 gp = vload16(0, gr + k) * MF_DACT_##A(T, p);                     \
        vstore16(gp, 0, pr + k);                                               \
        if (flags & 1) gp *= vload16(0, wr + k);                               \
        su16 += gp;                                                            \
        sx16 += gp * xh;                                                       \
      }                                                                        \
      T su = nn_hsum_##suf(su16), sux = nn_hsum_##suf(sx16);                   \
      for (; k < cols; ++k) {                                                  \
        T xh = (xr[k] - mu) * rs, p = xh;                                      \
        if (flags & 1) p *= wr[k];                                             \
        if (flags & 2) p += br[k];                                             \
        if (flags & 4) p += cr[k];                                             \
        T gp = gr[k] * MF_DACT_##A(T, p);                                      \
        pr[k] = gp;                                                            \
        T u = (flags & 1) ? gp * wr[k] : gp;                                   \
        su += u;                                                               \
        sux += u * xh;                                                         \
      }                                                                        \
      su /= cols;                                                              \
      sux /= cols;                                                             \
      for (k = 0; k + 16 <= cols; k += 16) {                                   \
        T##16 xh = (vload16(0, xr + k) - mu) * rs;                             \
        T##16 u = vload16(0, pr + k);                                          \
        if (flags & 1) u *= vload16(0, wr + k);                                \
        vstore16(rs * (u - su - xh * sux), 0, gxr + k);                        \
      }                                                                        \
      for (; k < cols; ++k) {                                                  \
        T xh = (xr[k] - mu) * rs;                                              \
        T u = (flags & 1) ? pr[k] * wr[k] : pr[k];                             \
        gxr[k] = rs * (u - su - xh * sux);                                     \
      }                                                                        \
    }                                                                          \
  }                                                                            \
  /* LayerNorm jvp (tangents of x and c; w, b constant): with                  \
     xh = (x - mu) rstd, the normalization's tangent is                        \
     txh = rstd (tx - mean tx - xh mean(tx xh)), and                           \
     ty = act'(pre) (txh w + tc). flags: 1 w, 2 b, 4 c, 8 tc, 16 tx. */        \
  kernel void nn_ln_jvp_##A##_##suf(global T *ty, global const T *tx,          \
                                    global const T *tc, int otc,               \
                                    global const T *x, global const T *mean,   \
                                    global const T *rstd, global const T *w,   \
                                    int ow, global const T *b, int obb,        \
                                    global const T *cc, int oc, int rows,      \
                                    int cols, int flags) {                     \
    NN_ROWS(row, rows) {                                                       \
      long base = (long)row * cols;                                            \
      global const T *xr = x + base, *tr = tx + base, *cr = cc + oc + base;    \
      global const T *tcr = tc + otc + base, *wr = w + ow, *br = b + obb;      \
      global T *yr = ty + base;                                                \
      T mu = mean[row], rs = rstd[row], m1 = (T)0, m2 = (T)0;                  \
      int k = 0;                                                               \
      if (flags & 16) {                                                        \
        T##16 s1 = (T)0, s2 = (T)0;                                            \
        for (; k + 16 <= cols; k += 16) {                                      \
          T##16 t = vload16(0, tr + k);                                        \
          s1 += t;                                                             \
          s2 += t * ((vload16(0, xr + k) - mu) * rs);                          \
        }                                                                      \
        m1 = nn_hsum_##suf(s1);                                                \
        m2 = nn_hsum_##suf(s2);                                                \
        for (; k < cols; ++k) { m1 += tr[k]; m2 += tr[k] * (xr[k] - mu) * rs; } \
        m1 /= cols;                                                            \
        m2 /= cols;                                                            \
      }                                                                        \
      for (k = 0; k + 16 <= cols; k += 16) {                                   \
        T##16 xh = (vload16(0, xr + k) - mu) * rs, p = xh, t = (T)0;           \
        if (flags & 16) t = rs * (vload16(0, tr + k) - m1 - xh * m2);          \
        if (flags & 1) { T##16 wv = vload16(0, wr + k); p *= wv; t *= wv; }    \
        if (flags & 2) p += vload16(0, br + k);                                \
        if (flags & 4) p += vload16(0, cr + k);                                \
        if (flags & 8) t += vload16(0, tcr + k);                               \
        vstore16(t * MF_DACT_##A(T, p), 0, yr + k);                            \
      }                                                                        \
      for (; k < cols; ++k) {                                                  \
        T xh = (xr[k] - mu) * rs, p = xh, t = (T)0;                            \
        if (flags & 16) t = rs * (tr[k] - m1 - xh * m2);                       \
        if (flags & 1) { p *= wr[k]; t *= wr[k]; }                             \
        if (flags & 2) p += br[k];                                             \
        if (flags & 4) p += cr[k];                                             \
        if (flags & 8) t += tcr[k];                                            \
        yr[k] = t * MF_DACT_##A(T, p);                                         \
      }                                                                        \
    }                                                                          \
  }
/* ... and the work-group shape (nnwg_*, GPUs) */
#define MF_NN_ACT_WG(A, T, suf)                                                \
  kernel __attribute__((reqd_work_group_size(NN_WG, 1, 1)))                    \
  void nnwg_bias_act_##A##_##suf(global T *y, global T *z, global const T *b,  \
                               int ob, int has_b, global const T *r, int orr,  \
                               int has_r, int rows, int cols) {                \
    int l = get_local_id(0);                                                   \
    (void)rows; /* one work-group per row */                                   \
    long base = (long)get_group_id(0) * cols;                                  \
    for (int k = l; k < cols; k += NN_WG) {                                    \
      long i = base + k;                                                       \
      T pre = z[i] + (has_b ? b[ob + k] : (T)0);                               \
      T v = MF_ACT_##A(T, pre);                                                \
      if (has_r) v += r[orr + i];                                              \
      y[i] = v;                                                                \
      if (y != z) z[i] = pre;                                                  \
    }                                                                          \
  }                                                                            \
  kernel void nnwg_act_grad_##A##_##suf(global T *gp, global const T *g,       \
                                      global const T *pre, int n) {            \
    MF_FOR(i, n) { T x = pre[i]; gp[i] = g[i] * MF_DACT_##A(T, x); }           \
  }                                                                            \
  kernel __attribute__((reqd_work_group_size(NN_WG, 1, 1)))                    \
  void nnwg_ln_fwd_##A##_##suf(global T *y, global T *mean, global T *rstd,    \
                             global const T *x, global const T *w, int ow,     \
                             global const T *b, int obb, global const T *cc,   \
                             int oc, int rows, int cols, T eps, int flags) {   \
    local T red[NN_WG];                                                        \
    int l = get_local_id(0), r = get_group_id(0);                              \
    (void)rows; /* one work-group per row */                                   \
    global const T *xr = x + (long)r * cols;                                   \
    T s = (T)0;                                                                \
    for (int k = l; k < cols; k += NN_WG) s += xr[k];                          \
    T mu = nn_wsum_##suf(red, s, l) / cols;                                    \
    T v = (T)0;                                                                \
    for (int k = l; k < cols; k += NN_WG) { T d = xr[k] - mu; v += d * d; }    \
    T rs = rsqrt(nn_wsum_##suf(red, v, l) / cols + eps);                       \
    if (l == 0) { mean[r] = mu; rstd[r] = rs; }                                \
    global T *yr = y + (long)r * cols;                                         \
    global const T *cr = cc + oc + (long)r * cols;                             \
    for (int k = l; k < cols; k += NN_WG) {                                    \
      T p = (xr[k] - mu) * rs;                                                 \
      if (flags & 1) p *= w[ow + k];                                           \
      if (flags & 2) p += b[obb + k];                                          \
      if (flags & 4) p += cr[k];                                               \
      yr[k] = MF_ACT_##A(T, p);                                                \
    }                                                                          \
  }                                                                            \
  kernel __attribute__((reqd_work_group_size(NN_WG, 1, 1)))                    \
  void nnwg_ln_bwd_##A##_##suf(global T *gx, global T *gpre, global const T *g, \
                             global const T *x, global const T *mean,          \
                             global const T *rstd, global const T *w, int ow,  \
                             global const T *b, int obb, global const T *cc,   \
                             int oc, int rows, int cols, int flags) {          \
    local T red[NN_WG];                                                        \
    int l = get_local_id(0), r = get_group_id(0);                              \
    (void)rows; /* one work-group per row */                                   \
    long base = (long)r * cols;                                                \
    global const T *cr = cc + oc + base;                                       \
    T mu = mean[r], rs = rstd[r], su = (T)0, sux = (T)0;                       \
    for (int k = l; k < cols; k += NN_WG) {                                    \
      T xh = (x[base + k] - mu) * rs, p = xh;                                  \
      if (flags & 1) p *= w[ow + k];                                           \
      if (flags & 2) p += b[obb + k];                                          \
      if (flags & 4) p += cr[k];                                               \
      T gp = g[base + k] * MF_DACT_##A(T, p);                                  \
      gpre[base + k] = gp;                                                     \
      T u = (flags & 1) ? gp * w[ow + k] : gp;                                 \
      su += u;                                                                 \
      sux += u * xh;                                                           \
    }                                                                          \
    su = nn_wsum_##suf(red, su, l) / cols;                                     \
    sux = nn_wsum_##suf(red, sux, l) / cols;                                   \
    for (int k = l; k < cols; k += NN_WG) {                                    \
      T xh = (x[base + k] - mu) * rs;                                          \
      T u = (flags & 1) ? gpre[base + k] * w[ow + k] : gpre[base + k];         \
      gx[base + k] = rs * (u - su - xh * sux);                                 \
    }                                                                          \
  }                                                                            \
  kernel __attribute__((reqd_work_group_size(NN_WG, 1, 1)))                    \
  void nnwg_ln_jvp_##A##_##suf(global T *ty, global const T *tx,               \
                             global const T *tc, int otc, global const T *x,   \
                             global const T *mean, global const T *rstd,       \
                             global const T *w, int ow, global const T *b,     \
                             int obb, global const T *cc, int oc, int rows,    \
                             int cols, int flags) {                            \
    local T red[NN_WG];                                                        \
    int l = get_local_id(0), r = get_group_id(0);                              \
    (void)rows; /* one work-group per row */                                   \
    long base = (long)r * cols;                                                \
    T mu = mean[r], rs = rstd[r], m1 = (T)0, m2 = (T)0;                        \
    if (flags & 16) {                                                          \
      for (int k = l; k < cols; k += NN_WG) {                                  \
        T t = tx[base + k];                                                    \
        m1 += t;                                                               \
        m2 += t * (x[base + k] - mu) * rs;                                     \
      }                                                                        \
    }                                                                          \
    m1 = nn_wsum_##suf(red, m1, l) / cols;                                     \
    m2 = nn_wsum_##suf(red, m2, l) / cols;                                     \
    for (int k = l; k < cols; k += NN_WG) {                                    \
      T xh = (x[base + k] - mu) * rs, p = xh, t = (T)0;                        \
      if (flags & 16) t = rs * (tx[base + k] - m1 - xh * m2);                  \
      if (flags & 1) { p *= w[ow + k]; t *= w[ow + k]; }                       \
      if (flags & 2) p += b[obb + k];                                          \
      if (flags & 4) p += cc[oc + base + k];                                   \
      if (flags & 8) t += tc[otc + base + k];                                  \
      ty[base + k] = t * MF_DACT_##A(T, p);                                    \
    }                                                                          \
  }

#define MF_NN(T, suf)                                                          \
  MF_NN_BASE(T, suf)                                                           \
  MF_ACTIVATIONS(MF_NN_ACT_RUN, T, suf)                                        \
  MF_ACTIVATIONS(MF_NN_ACT_WG, T, suf)

MF_NN(float, f32)
#ifdef MF_FP64
MF_NN(double, f64)
#endif

/* LayerNorm (no affine) with adaLN modulation, over rows of x {B N, cols}:
   row r belongs to sample b = r / N, whose shift and scale rows (sh, sc,
   {B, cols}) are shared by its N tokens.
     xh = (x - mu) rstd,  y = xh (1 + sc[b]) + sh[b]
   One shape on every device: a work-item takes a run of rows (mf_run), rows
   walked in 16-lane vectors (LNM_VEC) and a scalar tail (LNM_TAIL). */
#define LNM_VEC for (k = 0; k + 16 <= cols; k += 16)
#define LNM_TAIL for (; k < cols; ++k)
#define MF_LNM(T, suf)                                                         \
  kernel void lnm_fwd_##suf(global T *y, global T *mean, global T *rstd,       \
                            global const T *x, global const T *sh,             \
                            global const T *sc, int rows, int cols, int N,     \
                            T eps) {                                           \
    NN_ROWS(row, rows) {                                                       \
      long base = (long)row * cols, sb = (long)(row / N) * cols;               \
      global const T *xr = x + base, *shr = sh + sb, *scr = sc + sb;           \
      global T *yr = y + base;                                                 \
      T##16 s16 = (T)0, v16 = (T)0;                                            \
      T s = (T)0, v = (T)0;                                                    \
      int k;                                                                   \
      LNM_VEC s16 += vload16(0, xr + k);                                       \
      LNM_TAIL s += xr[k];                                                     \
      T mu = (s + nn_hsum_##suf(s16)) / cols;                                  \
      LNM_VEC { T##16 d = vload16(0, xr + k) - mu; v16 += d * d; }             \
      LNM_TAIL { T d = xr[k] - mu; v += d * d; }                               \
      T rs = rsqrt((v + nn_hsum_##suf(v16)) / cols + eps);                     \
      mean[row] = mu;                                                          \
      rstd[row] = rs;                                                          \
      LNM_VEC vstore16((vload16(0, xr + k) - mu) * rs *                        \
                       ((T)1 + vload16(0, scr + k)) + vload16(0, shr + k),     \
                       0, yr + k);                                             \
      LNM_TAIL yr[k] = (xr[k] - mu) * rs * ((T)1 + scr[k]) + shr[k];           \
    }                                                                          \
  }                                                                            \
  /* gx = rstd (u - mean u - xh mean(u xh)), u = g (1 + sc[b]) */             \
  kernel void lnm_bwd_##suf(global T *gx, global const T *g,                   \
                            global const T *x, global const T *mean,           \
                            global const T *rstd, global const T *sc,          \
                            int rows, int cols, int N) {                       \
    NN_ROWS(row, rows) {                                                       \
      long base = (long)row * cols, sb = (long)(row / N) * cols;               \
      global const T *xr = x + base, *gr = g + base, *scr = sc + sb;           \
      global T *gxr = gx + base;                                               \
      T mu = mean[row], rs = rstd[row], su = (T)0, sux = (T)0;                 \
      T##16 su16 = (T)0, sx16 = (T)0;                                          \
      int k;                                                                   \
      LNM_VEC {                                                                \
        T##16 u = vload16(0, gr + k) * ((T)1 + vload16(0, scr + k));           \
        su16 += u;                                                             \
        sx16 += u * (vload16(0, xr + k) - mu) * rs;                            \
      }                                                                        \
      LNM_TAIL {                                                               \
        T u = gr[k] * ((T)1 + scr[k]);                                         \
        su += u;                                                               \
        sux += u * (xr[k] - mu) * rs;                                          \
      }                                                                        \
      su = (su + nn_hsum_##suf(su16)) / cols;                                  \
      sux = (sux + nn_hsum_##suf(sx16)) / cols;                                \
      LNM_VEC {                                                                \
        T##16 u = vload16(0, gr + k) * ((T)1 + vload16(0, scr + k));           \
        vstore16(rs * (u - su - (vload16(0, xr + k) - mu) * rs * sux), 0,      \
                 gxr + k);                                                     \
      }                                                                        \
      LNM_TAIL {                                                               \
        T u = gr[k] * ((T)1 + scr[k]);                                         \
        gxr[k] = rs * (u - su - (xr[k] - mu) * rs * sux);                      \
      }                                                                        \
    }                                                                          \
  }                                                                            \
  /* per sample b (a work-item each): gsh[b] = sum_n g, gsc[b] = sum_n g xh */ \
  kernel void lnm_wgrad_##suf(global T *gsh, global T *gsc,                    \
                              global const T *g, global const T *x,            \
                              global const T *mean, global const T *rstd,      \
                              int B, int cols, int N) {                        \
    for (int b = get_global_id(0); b < B; b += get_global_size(0)) {           \
      global T *pb = gsh + (long)b * cols, *pw = gsc + (long)b * cols;         \
      int k;                                                                   \
      for (k = 0; k < cols; ++k) { pb[k] = (T)0; pw[k] = (T)0; }               \
      for (int r = b * N; r < (b + 1) * N; ++r) {                              \
        global const T *gr = g + (long)r * cols, *xr = x + (long)r * cols;     \
        T mu = mean[r], rs = rstd[r];                                          \
        LNM_VEC {                                                              \
          T##16 q = vload16(0, gr + k);                                        \
          vstore16(vload16(0, pb + k) + q, 0, pb + k);                         \
          vstore16(vload16(0, pw + k) + q * (vload16(0, xr + k) - mu) * rs, 0, \
                   pw + k);                                                    \
        }                                                                      \
        LNM_TAIL { pb[k] += gr[k]; pw[k] += gr[k] * (xr[k] - mu) * rs; }       \
      }                                                                        \
    }                                                                          \
  }                                                                            \
  /* ty = txh (1 + sc[b]) + xh tsc[b] + tsh[b],                                \
     txh = rstd (tx - mean tx - xh mean(tx xh)); flags: 1 tx, 2 tsh, 4 tsc */  \
  kernel void lnm_jvp_##suf(global T *ty, global const T *tx,                  \
                            global const T *tsh, global const T *tsc,          \
                            global const T *x, global const T *mean,           \
                            global const T *rstd, global const T *sc,          \
                            int rows, int cols, int N, int flags) {            \
    NN_ROWS(row, rows) {                                                       \
      long base = (long)row * cols, sb = (long)(row / N) * cols;               \
      global const T *xr = x + base, *tr = tx + base, *scr = sc + sb;          \
      global const T *thr = tsh + sb, *tcr = tsc + sb;                         \
      global T *yr = ty + base;                                                \
      T mu = mean[row], rs = rstd[row], m1 = (T)0, m2 = (T)0;                  \
      int k = 0;                                                               \
      if (flags & 1) {                                                         \
        T##16 s1 = (T)0, s2 = (T)0;                                            \
        LNM_VEC {                                                              \
          T##16 t = vload16(0, tr + k);                                        \
          s1 += t;                                                             \
          s2 += t * (vload16(0, xr + k) - mu) * rs;                            \
        }                                                                      \
        LNM_TAIL { m1 += tr[k]; m2 += tr[k] * (xr[k] - mu) * rs; }             \
        m1 = (m1 + nn_hsum_##suf(s1)) / cols;                                  \
        m2 = (m2 + nn_hsum_##suf(s2)) / cols;                                  \
      }                                                                        \
      LNM_VEC {                                                                \
        T##16 xh = (vload16(0, xr + k) - mu) * rs, t = (T)0;                   \
        if (flags & 1)                                                         \
          t = rs * (vload16(0, tr + k) - m1 - xh * m2) *                       \
              ((T)1 + vload16(0, scr + k));                                    \
        if (flags & 2) t += vload16(0, thr + k);                               \
        if (flags & 4) t += xh * vload16(0, tcr + k);                          \
        vstore16(t, 0, yr + k);                                                \
      }                                                                        \
      LNM_TAIL {                                                               \
        T xh = (xr[k] - mu) * rs, t = (T)0;                                    \
        if (flags & 1) t = rs * (tr[k] - m1 - xh * m2) * ((T)1 + scr[k]);      \
        if (flags & 2) t += thr[k];                                            \
        if (flags & 4) t += xh * tcr[k];                                       \
        yr[k] = t;                                                             \
      }                                                                        \
    }                                                                          \
  }

MF_LNM(float, f32)
#ifdef MF_FP64
MF_LNM(double, f64)
#endif
