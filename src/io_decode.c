#include "io_decode.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

static const char *const names[MF_NSRC] = {"u8", "i8", "i16", "u16", "i32", "i64",
                                           "f16", "bf16", "f32", "f64", "bool"};
static const size_t sizes[MF_NSRC] = {1, 1, 2, 2, 4, 8, 2, 2, 4, 8, 1};

size_t mf_src_size(mf_src_kind k) { return sizes[k]; }

int mf_src_from_name(const char *name) {
  for (int i = 0; i < MF_NSRC; ++i)
    if (strcmp(names[i], name) == 0) return i;
  return -1;
}

/* unsigned integer of `size` bytes at p in the given byte order */
static uint64_t word(const unsigned char *p, size_t size, int big) {
  uint64_t v = 0;
  for (size_t b = 0; b < size; ++b) v |= (uint64_t)p[big ? size - 1 - b : b] << (8 * b);
  return v;
}

/* IEEE half: sign, 5-bit exponent (bias 15), 10-bit mantissa. A NaN keeps
   its sign and payload (the mantissa moves to the top of f32's), as a
   hardware f16 -> f32 conversion does. */
static uint32_t half_nan_bits(uint16_t h) {
  return ((uint32_t)(h & 0x8000) << 16) | 0x7f800000u | ((uint32_t)(h & 1023) << 13);
}
static int half_is_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 1023); }

static double half(uint16_t h) {
  int e = (h >> 10) & 31, m = h & 1023;
  if (half_is_nan(h)) {
    uint32_t b = half_nan_bits(h);
    float f;
    memcpy(&f, &b, 4);
    return f;
  }
  double v = e == 0 ? ldexp(m, -24) : e == 31 ? INFINITY : ldexp(m + 1024, e - 25);
  return (h & 0x8000) ? -v : v;
}

static int is_int(mf_src_kind k) { return k <= MF_SRC_I64 || k == MF_SRC_BOOL; }

int mf_decode(void *dst, mf_dtype dt, const unsigned char *src, mf_src_kind k, size_t n,
              int big_endian, double scale, double shift) {
  size_t s = sizes[k];
  /* 1 * -0.0 + 0 is +0.0: without scaling the value passes untouched */
  int affine = !(scale == 1.0 && shift == 0.0);
  if (dt == MF_I32 && !is_int(k))
    return mf_fail("cannot convert %s elements to i32 without rounding", names[k]);
  for (size_t i = 0; i < n; ++i) {
    uint64_t w = word(src + i * s, s, big_endian);
    /* unscaled floats into their own width (or wider, for f16 NaNs and
       bf16) move as bits: a signaling NaN stays signaling */
    if (!affine && dt == MF_F32 && (k == MF_SRC_F32 || k == MF_SRC_BF16 ||
                                    (k == MF_SRC_F16 && half_is_nan((uint16_t)w)))) {
      ((uint32_t *)dst)[i] = k == MF_SRC_F32 ? (uint32_t)w
                             : k == MF_SRC_BF16 ? (uint32_t)w << 16 : half_nan_bits((uint16_t)w);
      continue;
    }
    if (!affine && dt == MF_F64 && k == MF_SRC_F64) {
      ((uint64_t *)dst)[i] = w;
      continue;
    }
    double v;
    int64_t iv = 0;
    switch (k) {
      case MF_SRC_U8: case MF_SRC_U16: iv = (int64_t)w; break;
      case MF_SRC_BOOL: iv = w != 0; break;
      case MF_SRC_I8: iv = (int8_t)w; break;
      case MF_SRC_I16: iv = (int16_t)w; break;
      case MF_SRC_I32: iv = (int32_t)(uint32_t)w; break;
      case MF_SRC_I64: iv = (int64_t)w; break;
      default: break;
    }
    if (is_int(k)) {
      v = (double)iv;
      if (dt == MF_I32 && !affine) {
        if (iv < INT32_MIN || iv > INT32_MAX)
          return mf_fail("element %zu (%" PRId64 ") is out of the i32 range [-2147483648, 2147483647]", i + 1, iv);
        ((int32_t *)dst)[i] = (int32_t)iv;
        continue;
      }
      if (dt == MF_I32) {
        double r = scale * v + shift;
        if (!(r >= -2147483648.0 && r <= 2147483647.0) || r != floor(r))
          return mf_fail("element %zu (%.17g) does not fit in i32", i + 1, r);
        ((int32_t *)dst)[i] = (int32_t)r;
        continue;
      }
    } else if (k == MF_SRC_F16) {
      v = half((uint16_t)w);
    } else if (k == MF_SRC_BF16) {
      uint32_t b = (uint32_t)w << 16;
      float f;
      memcpy(&f, &b, 4);
      v = f;
    } else if (k == MF_SRC_F32) {
      uint32_t b = (uint32_t)w;
      float f;
      memcpy(&f, &b, 4);
      v = f;
    } else {
      memcpy(&v, &w, 8);
    }
    if (affine) v = scale * v + shift;
    /* a finite value beyond the f32 range would become inf unnoticed */
    if (dt == MF_F32 && isfinite(v) && !isfinite((float)v))
      return mf_fail("element %zu (%.17g) overflows f32 (load it as f64)", i + 1, v);
    if (dt == MF_F32) ((float *)dst)[i] = (float)v;
    else ((double *)dst)[i] = v;
  }
  return 0;
}
