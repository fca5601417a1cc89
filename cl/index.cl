/* Indexing over a contiguous source viewed as [outer, size, inner].
   Indices are 0-based. One outside [0, size) reads as 0 (writes nothing) and
   is recorded in err = {flag, tag, index, position, size}, first one wins;
   the host raises it at its next read (mf_device_errors, ops_index.c), the
   tag telling which op and dim. */

inline void mf_bad_index(global int *err, int tag, int index, int pos, int size) {
  if (atomic_cmpxchg((volatile global int *)err, 0, 1) == 0) {
    err[1] = tag;
    err[2] = index;
    err[3] = pos;
    err[4] = size;
  }
}

/* out[o, j, k] = a[o, idx[j], k];  out is [outer, nidx, inner] */
#define MF_INDEX_SELECT(T, suf)                                                \
  kernel void index_select_##suf(global T *out, global const T *a, int oa,     \
                                 global const int *idx, int oi, int outer,     \
                                 int nidx, int inner, int size,                \
                                 global int *err, int tag) {                   \
    int n = outer * nidx * inner;                                              \
    MF_FOR(i, n) {                                                             \
      int k = i % inner, q = i / inner, j = q % nidx, o = q / nidx;            \
      int s = idx[oi + j];                                                     \
      if (s >= 0 && s < size) out[i] = a[oa + (o * size + s) * inner + k];     \
      else { out[i] = (T)0; mf_bad_index(err, tag, s, j, size); }              \
    }                                                                          \
  }

/* out[o, s, k] = sum over j with idx[j] == s of g[o, j, k]  (vjp of index_select);
   each output element scans idx: deterministic, no atomics */
#define MF_INDEX_ADD(T, suf)                                                   \
  kernel void index_add_##suf(global T *out, global const T *g, int og,        \
                              global const int *idx, int oi, int outer,        \
                              int nidx, int inner, int size,                   \
                              global int *err, int tag) {                      \
    int n = outer * size * inner;                                              \
    MF_FOR(i, n) {                                                             \
      int k = i % inner, q = i / inner, s = q % size, o = q / size;            \
      T acc = (T)0;                                                            \
      for (int j = 0; j < nidx; ++j) {                                         \
        int c = idx[oi + j];                                                   \
        if (c == s) acc += g[og + (o * nidx + j) * inner + k];                 \
        else if (i == 0 && (c < 0 || c >= size)) mf_bad_index(err, tag, c, j, size); \
      }                                                                        \
      out[i] = acc;                                                            \
    }                                                                          \
  }

/* out[m] = a[m with m[dim] := idx[m]]; out and idx share `shape`,
   sa are a's strides, idx is contiguous */
#define MF_GATHER(T, suf)                                                      \
  kernel void gather_##suf(global T *out, global const T *a, int oa,           \
                           global const int *idx, int oi, int n, int nd,       \
                           int8 shape, int8 sa, int dim, int size,             \
                           global int *err, int tag) {                         \
    int sh[8], st[8];                                                          \
    vstore8(shape, 0, sh);                                                     \
    vstore8(sa, 0, st);                                                        \
    MF_FOR(i, n) {                                                             \
      int rest = i, off = 0, c = idx[oi + i];                                  \
      for (int d = nd - 1; d >= 0; --d) {                                      \
        int q = rest / sh[d];                                                  \
        off += (d == dim ? c : rest - q * sh[d]) * st[d];                      \
        rest = q;                                                              \
      }                                                                        \
      if (c >= 0 && c < size) out[i] = a[oa + off];                            \
      else { out[i] = (T)0; mf_bad_index(err, tag, c, i, size); }             \
    }                                                                          \
  }

/* out[m with m[dim] := idx[m]] += g[m]: the vjp of gather, into a zeroed
   contiguous out of a's shape; one work-item per (m with m[dim] = 0) line
   walks the gathered dim serially, so repeated indices add without races */
#define MF_SCATTER_ADD(T, suf)                                                 \
  kernel void scatter_add_##suf(global T *out, global const T *g,              \
                                global const int *idx, int lines, int nd,      \
                                int8 shape, int8 so, int dim, int size,        \
                                global int *err, int tag) {                    \
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
        else mf_bad_index(err, tag, c, gi + j * gs, size);                     \
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
