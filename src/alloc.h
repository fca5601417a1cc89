/* Caching device allocator: sizes rounded up to buckets (powers of two split
   in quarters), freed buffers kept on per-bucket free lists and handed out
   again, so a steady training loop makes no new clCreateBuffer. */
#ifndef MF_ALLOC_H
#define MF_ALLOC_H

#include "mf.h"

typedef struct {
  uint64_t in_use;   /* bytes held by live storages */
  uint64_t cached;   /* bytes on free lists */
  uint64_t peak;     /* high-water mark of in_use */
  uint64_t buffers;  /* cl_mem objects alive (in use + cached) */
} mf_memory;

/* A device buffer with a reference count; views share it. */
typedef struct mf_storage {
  cl_mem buf;
  size_t bytes; /* bucket size actually allocated */
  int refs;
} mf_storage;

mf_storage *mf_storage_new(size_t bytes); /* NULL + error on failure */
void mf_storage_retain(mf_storage *s);
void mf_storage_release(mf_storage *s);
void mf_memory_get(mf_memory *m);
void mf_memory_reset_peak(void);
/* Releases all cached buffers back to the driver. */
void mf_memory_trim(void);

#endif
