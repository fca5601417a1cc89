/* Tensors: a storage, an element offset, shape and strides (in elements),
   a dtype. Views share storage; every op writes a fresh contiguous tensor
   unless it is an in-place op. */
#ifndef MF_TENSOR_H
#define MF_TENSOR_H

#include "alloc.h"

typedef struct mf_tensor {
  mf_storage *st;
  int64_t offset;
  int ndim;
  int64_t shape[MF_MAX_DIMS];
  int64_t strides[MF_MAX_DIMS];
  mf_dtype dtype;
} mf_tensor;

/* Kernels index with ints (cl/common.cl): a tensor holds fewer than 2^31
   elements, and so that strides stay ints too, a shape's non-zero sizes
   multiply to less than 2^31. */
#define MF_MAX_NUMEL (((int64_t)1 << 31) - 1)

int64_t mf_numel(const mf_tensor *t);
/* Elements of `shape`, or -1 with an error naming the shape when a size is
   outside [0, 2^31) or the non-zero sizes multiply past MF_MAX_NUMEL. */
int64_t mf_shape_numel(int ndim, const int64_t *shape);
/* 0 when every element t can address lies in its storage, else -1 with an
   error naming shape, strides and offset; views are checked where made. */
int mf_view_check(const mf_tensor *t);
int mf_is_contiguous(const mf_tensor *t);
void mf_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);

/* Allocates an uninitialized contiguous tensor into *out. */
int mf_empty(mf_tensor *out, mf_dtype dt, int ndim, const int64_t *shape);
/* *out becomes a view of t (storage retained). */
void mf_view_of(mf_tensor *out, const mf_tensor *t);
void mf_tensor_free(mf_tensor *t); /* releases the storage reference */

/* Host transfers. A write is enqueued without waiting; a read waits. */
int mf_from_host(mf_tensor *t, const void *data); /* t contiguous */
/* any layout; packs C order; then reports errors the kernels flagged on the
   device since the last read (mf_device_errors) */
int mf_to_host(const mf_tensor *t, void *data);
/* -1 with the error when a kernel flagged one (an out-of-range index), else 0;
   clears the flag. Defined beside the index kernels (ops_index.c). */
int mf_device_errors(void);
/* Queues the record's read without waiting, so that it rides along with a
   blocking read that follows (one round trip instead of two). */
void mf_device_errors_fetch(void);

/* In-place view changes on *t (metadata only); each ends with mf_view_check,
   so -1 leaves *t unusable (work on a copy from mf_view_of). */
int mf_reshape_view(mf_tensor *t, int ndim, const int64_t *shape); /* -1 if not viewable */
int mf_permute(mf_tensor *t, const int *perm);
int mf_narrow(mf_tensor *t, int dim, int64_t start, int64_t len);
int mf_expand(mf_tensor *t, int ndim, const int64_t *shape);

/* Broadcast shape of a and b; -1 with an error naming both shapes. */
int mf_broadcast_shape(int na, const int64_t *sa, int nb, const int64_t *sb, int *nout,
                       int64_t *sout);

#endif
