/* Sizes and views at the C level: mf_shape_numel refuses shapes past
   2^31 - 1 elements (kernels index with ints) without overflowing, and every
   view function refuses to reach outside its storage. */
#include <stdio.h>
#include <string.h>

#include "mf.h"
#include "tensor.h"

#include "check.h"

#define N(...) ((int64_t[]){__VA_ARGS__})

static void test_shape_numel(void) {
  struct { int nd; const int64_t *sh; int64_t want; } cases[] = {
      {0, N(0), 1},                       /* a scalar */
      {2, N(0, 5), 0},
      {1, N(2147483647), 2147483647},     /* the largest tensor */
      {2, N(46341, 46341), -1},           /* 2^31 + 88247 */
      {1, N(2147483648), -1},             /* a size past 2^31 - 1 */
      {4, N(65536, 65536, 65536, 65536), -1}, /* 2^64: wraps to 0 unchecked */
      {3, N(0, 1 << 30, 4), -1},          /* empty, but strides would pass 2^31 */
      {2, N(3, -1), -1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    int64_t got = mf_shape_numel(cases[i].nd, cases[i].sh);
    CHECK(got == cases[i].want, "case %zu: %lld elements, expected %lld", i, (long long)got,
          (long long)cases[i].want);
  }
  mf_shape_numel(4, N(65536, 65536, 65536, 65536));
  CHECK(strstr(mf_last_error(), "{65536, 65536, 65536, 65536}") && strstr(mf_last_error(), "2^31"), "message: %s",
        mf_last_error());
}

static void test_views(void) {
  mf_tensor t, v;
  if (mf_empty(&t, MF_F32, 2, N(4, 3))) {
    CHECK(0, "mf_empty: %s", mf_last_error());
    return;
  }
  /* rows 3..4: offset 6, largest element 6 + 1*3 + 2 = 11 < 12 */
  mf_view_of(&v, &t);
  CHECK(mf_narrow(&v, 0, 2, 2) == 0 && v.offset == 6, "narrow inside: %s", mf_last_error());
  mf_tensor_free(&v);
  /* rows 4..5 would reach element 14 */
  mf_view_of(&v, &t);
  CHECK(mf_narrow(&v, 0, 3, 2) == -1 && strstr(mf_last_error(), "element 14 of a storage of 12"), "narrow past: %s",
        mf_last_error());
  mf_tensor_free(&v);
  /* a transposed view and a stride-0 expansion stay inside */
  mf_view_of(&v, &t);
  CHECK(mf_permute(&v, (int[]){1, 0}) == 0 && v.strides[0] == 1 && v.strides[1] == 3, "permute: %s",
        mf_last_error());
  mf_tensor_free(&v);
  mf_view_of(&v, &t);
  CHECK(mf_narrow(&v, 0, 3, 1) == 0 && mf_expand(&v, 3, N(7, 5, 3)) == 0, "expand: %s", mf_last_error());
  mf_tensor_free(&v);
  /* the last row, reshaped: offset 9 + 2 = 11 */
  mf_view_of(&v, &t);
  CHECK(mf_narrow(&v, 0, 3, 1) == 0 && mf_reshape_view(&v, 1, N(3)) == 0, "reshape of a view: %s",
        mf_last_error());
  /* the same view claiming 4 elements would reach element 12 */
  CHECK(mf_reshape_view(&v, 1, N(4)) == -1 && strstr(mf_last_error(), "element 12"), "reshape past: %s",
        mf_last_error());
  mf_tensor_free(&v);
  /* a stride that no view function makes, checked directly */
  mf_view_of(&v, &t);
  v.strides[1] = 5;
  CHECK(mf_view_check(&v) == -1, "stride 5 over 3 columns accepted");
  v.strides[1] = 1;
  v.shape[0] = 0;
  v.offset = 100; /* nothing is addressed by an empty view */
  CHECK(mf_view_check(&v) == 0, "empty view: %s", mf_last_error());
  mf_tensor_free(&v);
  mf_tensor_free(&t);
}

int main(void) {
  test_shape_numel();
  test_views();
  return check_summary();
}
