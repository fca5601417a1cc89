/* libFuzzer harness: mf_decode (src/io_decode.c), the element conversion behind npy,
   IDX and safetensors. Byte 0 picks the source kind, byte 1 the dtype and byte order,
   bytes 2..17 scale and shift; the rest are elements. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 18) return 0;
  mf_src_kind k = (mf_src_kind)(data[0] % MF_NSRC);
  mf_dtype dt = (mf_dtype)(data[1] % MF_NDTYPES);
  int big = (data[1] >> 4) & 1;
  double scale = 1, shift = 0;
  if (data[1] & 0x80) { /* otherwise the loaders' defaults, 1 and 0 */
    memcpy(&scale, data + 2, 8);
    memcpy(&shift, data + 10, 8);
  }
  const uint8_t *src = data + 18;
  size_t n = (size - 18) / mf_src_size(k);
  void *dst = malloc(n * mf_dtype_size(dt) + 1);
  if (!dst) abort();
  if (mf_decode(dst, dt, src, k, n, big, scale, shift) == 0 && dt == MF_I32 && scale == 1 && shift == 0) {
    /* integer sources into i32 are exact when they fit */
    for (size_t i = 0; i < n; ++i) {
      int32_t v = ((int32_t *)dst)[i];
      if (k == MF_SRC_U8 && v != src[i]) abort();
      if (k == MF_SRC_I8 && v != (int8_t)src[i]) abort();
      if (k == MF_SRC_BOOL && v != (src[i] != 0)) abort();
    }
  }
  free(dst);
  return 0;
}
