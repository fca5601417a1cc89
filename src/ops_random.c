#include "ops_random.h"

#include "launch.h"
#include "runtime.h"

/* One Philox launch: per_counter elements come from each counter. */
static int draw(const char *prefix, mf_tensor *out, uint64_t seed, uint64_t *offset, size_t ps,
                const void *p1, const void *p2) {
  cl_kernel k = mf_typed_kernel(prefix, out->dtype);
  if (!k) return -1;
  int per_counter = out->dtype == MF_F64 ? 2 : 4;
  cl_int n = (cl_int)mf_numel(out);
  cl_uint2 key = {{(cl_uint)seed, (cl_uint)(seed >> 32)}};
  cl_ulong off = *offset;
  if (mf_args(k, 6, MF_ARG(out->st->buf), MF_ARG(n), MF_ARG(key), MF_ARG(off), ps, p1, ps, p2))
    return -1;
  size_t counters = ((size_t)n + (size_t)per_counter - 1) / (size_t)per_counter;
  if (mf_launch(k, mf_grid(counters), 0)) return -1;
  *offset += counters;
  return 0;
}

static int draw_real(const char *prefix, mf_tensor *out, uint64_t seed, uint64_t *offset, double a,
                     double b) {
  mf_scalar x, y;
  size_t ps = mf_scalar_of(&x, out->dtype, a);
  mf_scalar_of(&y, out->dtype, b);
  return draw(prefix, out, seed, offset, ps, &x, &y);
}

int mf_rand_uniform(mf_tensor *out, uint64_t seed, uint64_t *offset, double lo, double hi) {
  return draw_real("rand_uniform", out, seed, offset, lo, hi);
}

int mf_rand_normal(mf_tensor *out, uint64_t seed, uint64_t *offset, double mean, double std) {
  return draw_real("rand_normal", out, seed, offset, mean, std);
}

int mf_rand_int(mf_tensor *out, uint64_t seed, uint64_t *offset, int32_t lo, int32_t hi) {
  cl_int l = lo;
  cl_uint range = (cl_uint)((int64_t)hi - (int64_t)lo);
  return draw("rand_int", out, seed, offset, sizeof l, &l, &range);
}
