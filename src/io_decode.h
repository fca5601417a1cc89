/* Host conversion of file element types (npy, IDX, safetensors) into the
   dtypes tensors hold: out[i] = scale * src[i] + shift (with scale 1 and
   shift 0 every bit passes: -0.0, NaN payloads, denormals). */
#ifndef MF_IO_DECODE_H
#define MF_IO_DECODE_H

#include "mf.h"

typedef enum {
  MF_SRC_U8, MF_SRC_I8, MF_SRC_I16, MF_SRC_U16, MF_SRC_I32, MF_SRC_I64, MF_SRC_F16, MF_SRC_BF16,
  MF_SRC_F32, MF_SRC_F64, MF_SRC_BOOL, MF_NSRC
} mf_src_kind;

size_t mf_src_size(mf_src_kind k);
/* "u8", "i8", "i16", "u16", "i32", "i64", "f16", "bf16", "f32", "f64", "bool"; -1 if unknown */
int mf_src_from_name(const char *name);

/* Converts n elements at src (little- or big-endian) into dst of dtype dt.
   Integer destinations take integer sources only, and fail (naming the
   element, 1-based) when a value does not fit in 32 bits; a finite value
   beyond the f32 range fails too (inf and nan pass through). */
int mf_decode(void *dst, mf_dtype dt, const unsigned char *src, mf_src_kind k, size_t n,
              int big_endian, double scale, double shift);

#endif
