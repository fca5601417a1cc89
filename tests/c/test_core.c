/* The C core without Lua: the caching allocator's buckets and reuse,
   kernels launched on small tensors and read back, errors reported. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "ops.h"
#include "runtime.h"
#include "tensor.h"

#include "check.h"

static int close_to(double a, double e, double rtol) { return fabs(a - e) <= rtol * fabs(e) + 1e-7; }

static void test_buckets(void) {
  /* sizes round up to a quarter of their power of two, 256 bytes at least */
  struct { size_t ask, got; } cases[] = {{1, 256}, {256, 256}, {257, 320}, {1000, 1024}, {1025, 1280},
                                         {5000, 5120}, {4096, 4096}, {1 << 20, 1 << 20}, {(1 << 20) + 1, 1310720}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    mf_storage *s = mf_storage_new(cases[i].ask);
    CHECK(s && s->bytes == cases[i].got, "%zu bytes -> bucket %zu, expected %zu", cases[i].ask,
          s ? s->bytes : 0, cases[i].got);
    if (s) mf_storage_release(s);
  }
}

static void test_reuse(void) {
  mf_memory m0, m1, m2;
  mf_memory_get(&m0);
  mf_stats st0 = mf_stat;
  mf_storage *a = mf_storage_new(3000);
  CHECK(a != NULL, "allocating 3000 bytes: %s", mf_last_error());
  if (!a) return;
  cl_mem buf = a->buf;
  mf_memory_get(&m1);
  CHECK(m1.in_use == m0.in_use + a->bytes, "in_use grew by %llu, expected %zu",
        (unsigned long long)(m1.in_use - m0.in_use), a->bytes);
  mf_storage_release(a);
  mf_memory_get(&m2);
  CHECK(m2.in_use == m0.in_use, "in_use back to %llu, got %llu", (unsigned long long)m0.in_use,
        (unsigned long long)m2.in_use);
  CHECK(m2.cached >= 3072, "the freed buffer is cached (%llu bytes cached)", (unsigned long long)m2.cached);
  /* the same size, then another size of the same bucket, get the same cl_mem */
  mf_storage *b = mf_storage_new(3000);
  CHECK(b && b->buf == buf, "free then allocate the same size reuses the cl_mem");
  mf_storage_release(b);
  mf_storage *c = mf_storage_new(2900);
  CHECK(c && c->buf == buf, "a size of the same bucket reuses the cl_mem");
  /* while c holds it, the next one needs a new buffer */
  mf_storage *d = mf_storage_new(3000);
  CHECK(d && d->buf != buf, "a held buffer is not handed out twice");
  mf_storage_release(c);
  mf_storage_release(d);
  CHECK(mf_stat.reuses - st0.reuses == 2, "2 reuses counted, got %llu",
        (unsigned long long)(mf_stat.reuses - st0.reuses));
  /* trimming gives cached buffers back to the driver */
  mf_memory_trim();
  mf_memory m3;
  mf_memory_get(&m3);
  CHECK(m3.cached == 0, "cached after trim: %llu", (unsigned long long)m3.cached);
  uint64_t allocs = mf_stat.allocs;
  mf_storage *e = mf_storage_new(3000);
  CHECK(e && mf_stat.allocs == allocs + 1, "after trim a new buffer is created");
  if (e) mf_storage_release(e);
}

static void test_unary(void) {
  float host[5] = {-2.0f, -0.5f, 0.0f, 1.0f, 3.5f}, out[5] = {0};
  int64_t shape[1] = {5};
  mf_tensor x, y;
  int rc = mf_empty(&x, MF_F32, 1, shape);
  CHECK(rc == 0, "mf_empty: %s", mf_last_error());
  if (rc) return;
  rc = mf_from_host(&x, host);
  CHECK(rc == 0, "mf_from_host: %s", mf_last_error());
  uint64_t launches = mf_stat.launches;
  rc = mf_unary(&y, "exp", &x);
  CHECK(rc == 0, "mf_unary exp: %s", mf_last_error());
  if (rc == 0) {
    CHECK(mf_stat.launches == launches + 1, "one launch for a unary op");
    CHECK(mf_to_host(&y, out) == 0, "mf_to_host: %s", mf_last_error());
    for (int i = 0; i < 5; ++i)
      CHECK(close_to(out[i], exp((double)host[i]), 1e-6), "exp(%g) = %.9g, expected %.9g", host[i], out[i],
            exp((double)host[i]));
    mf_tensor_free(&y);
  }
  /* a strided view: every other element, read through its strides */
  mf_tensor v;
  mf_view_of(&v, &x);
  v.shape[0] = 3;
  v.strides[0] = 2;
  CHECK(!mf_is_contiguous(&v), "a stride-2 view is not contiguous");
  rc = mf_unary(&y, "neg", &v);
  CHECK(rc == 0, "mf_unary neg on a view: %s", mf_last_error());
  if (rc == 0) {
    CHECK(mf_to_host(&y, out) == 0, "read back");
    CHECK(out[0] == 2.0f && out[1] == 0.0f && out[2] == -3.5f, "neg of the view: %g %g %g", out[0], out[1], out[2]);
    mf_tensor_free(&y);
  }
  mf_tensor_free(&v);
  /* a broadcast binary op and a reduction */
  mf_tensor s, z, r;
  int64_t one[1] = {1};
  float two = 2.0f;
  if (mf_empty(&s, MF_F32, 1, one) == 0 && mf_from_host(&s, &two) == 0 && mf_binary(&z, "mul", &x, &s) == 0) {
    CHECK(mf_reduce(&r, "sum", &z, 1u, 0) == 0, "mf_reduce: %s", mf_last_error());
    float total = 0;
    CHECK(r.ndim == 0 && mf_to_host(&r, &total) == 0 && total == 4.0f, "sum of 2x = %g, expected 4", total);
    mf_tensor_free(&r);
    mf_tensor_free(&z);
    mf_tensor_free(&s);
  } else {
    CHECK(0, "broadcast mul: %s", mf_last_error());
  }
  mf_tensor_free(&x);
}

static void test_errors(void) {
  CHECK(mf_typed_kernel("un_exp", MF_I32) == NULL, "exp has no i32 kernel");
  CHECK(strstr(mf_last_error(), "exp is not supported for dtype i32") != NULL, "message: %s", mf_last_error());
  int64_t a[2] = {4, 3}, b[1] = {5}, out[MF_MAX_DIMS];
  int nd;
  CHECK(mf_broadcast_shape(2, a, 1, b, &nd, out) == -1, "{4, 3} and {5} do not broadcast");
  CHECK(strstr(mf_last_error(), "{4, 3} and {5}") != NULL, "message: %s", mf_last_error());
  mf_tensor t;
  int64_t huge[2] = {1 << 20, 1 << 20};
  CHECK(mf_empty(&t, MF_F32, 2, huge) == -1 && strstr(mf_last_error(), "2^31") != NULL,
        "2^40 elements are refused: %s", mf_last_error());
  CHECK(mf_storage_new((size_t)1 << 62) == NULL && strstr(mf_last_error(), "out of memory") != NULL,
        "2^62 bytes are refused: %s", mf_last_error());
}

int main(void) {
  if (!mf_rt()) {
    printf("no OpenCL device: %s\n0 passed, 1 failed\n", mf_last_error());
    return 1;
  }
  printf("device: %s\n", mf_rt()->info.name);
  test_buckets();
  test_reuse();
  test_unary();
  test_errors();
  mf_finish();
  return check_summary();
}
