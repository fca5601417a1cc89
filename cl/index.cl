/* Indexing over a contiguous source viewed as [outer, size, inner]. */

/* out[o, j, k] = a[o, idx[j], k];  out is [outer, nidx, inner] */
#define MF_INDEX_SELECT(T, suf)                                                \
  kernel void index_select_##suf(global T *out, global const T *a, int oa,     \
                                 global const int *idx, int oi, int outer,     \
                                 int nidx, int inner, int size) {              \
    int n = outer * nidx * inner;                                              \
    MF_FOR(i, n) {                                                             \
      int k = i % inner, q = i / inner, j = q % nidx, o = q / nidx;            \
      int s = idx[oi + j];                                                     \
      out[i] = (s >= 0 && s < size) ? a[oa + (o * size + s) * inner + k] : (T)0; \
    }                                                                          \
  }

/* out[o, s, k] = sum over j with idx[j] == s of g[o, j, k]  (vjp of index_select);
   each output element scans idx: deterministic, no atomics */
#define MF_INDEX_ADD(T, suf)                                                   \
  kernel void index_add_##suf(global T *out, global const T *g, int og,        \
                              global const int *idx, int oi, int outer,        \
                              int nidx, int inner, int size) {                 \
    int n = outer * size * inner;                                              \
    MF_FOR(i, n) {                                                             \
      int k = i % inner, q = i / inner, s = q % size, o = q / size;            \
      T acc = (T)0;                                                            \
      for (int j = 0; j < nidx; ++j)                                           \
        if (idx[oi + j] == s) acc += g[og + (o * nidx + j) * inner + k];       \
      out[i] = acc;                                                            \
    }                                                                          \
  }

/* out[m] = a[m with m[dim] := idx[m]]; out and idx share `shape`,
   sa are a's strides, idx is contiguous */
#define MF_GATHER(T, suf)                                                      \
  kernel void gather_##suf(global T *out, global const T *a, int oa,           \
                           global const int *idx, int oi, int n, int nd,       \
                           int8 shape, int8 sa, int dim, int size) {           \
    int sh[8], st[8];                                                          \
    vstore8(shape, 0, sh);                                                     \
    vstore8(sa, 0, st);                                                        \
    MF_FOR(i, n) {                                                             \
      int rest = i, off = 0;                                                   \
      for (int d = nd - 1; d >= 0; --d) {                                      \
        int q = rest / sh[d], c = rest - q * sh[d];                            \
        if (d == dim) c = idx[oi + i];                                         \
        off += c * st[d];                                                      \
        rest = q;                                                              \
      }                                                                        \
      int c = idx[oi + i];                                                     \
      out[i] = (c >= 0 && c < size) ? a[oa + off] : (T)0;                      \
    }                                                                          \
  }

/* out[m with m[dim] := idx[m]] += g[m]: the vjp of gather, into a zeroed
   contiguous out of a's shape; one work-item per (m with m[dim] = 0) line
   walks the gathered dim serially, so repeated indices add without races */
#define MF_SCATTER_ADD(T, suf)                                                 \
  kernel void scatter_add_##suf(global T *out, global const T *g,              \
                                global const int *idx, int lines, int nd,      \
                                int8 shape, int8 so, int dim, int size) {      \
    int sh[8], st[8];                                                          \
    vstore8(shape, 0, sh);                                                     \
    vstore8(so, 0, st);                                                        \
    int len = sh[dim], gs = 1;                                                 \
    for (int d = dim + 1; d < nd; ++d) gs *= sh[d];                            \
    MF_FOR(l, lines) {                                                         \
      int rest = l, off = 0, gi = 0, mul = 1;                                  \
      for (int d = nd - 1; d >= 0; --d) {                                      \
        if (d == dim) { mul *= sh[d]; continue; }                              \
        int q = rest / sh[d], c = rest - q * sh[d];                            \
        off += c * st[d];                                                      \
        gi += c * mul;                                                         \
        mul *= sh[d];                                                          \
        rest = q;                                                              \
      }                                                                        \
      for (int j = 0; j < len; ++j) {                                          \
        int c = idx[gi + j * gs];                                              \
        if (c >= 0 && c < size) out[off + c * st[dim]] += g[gi + j * gs];      \
      }                                                                        \
    }                                                                          \
  }

MF_INDEX_SELECT(float, f32)
MF_INDEX_SELECT(int, i32)
MF_INDEX_ADD(float, f32)
MF_GATHER(float, f32)
MF_GATHER(int, i32)
MF_SCATTER_ADD(float, f32)
#ifdef MF_FP64
MF_INDEX_SELECT(double, f64)
MF_INDEX_ADD(double, f64)
MF_GATHER(double, f64)
MF_SCATTER_ADD(double, f64)
#endif
