/* Caching device allocator: sizes rounded up to buckets (powers of two split
   in quarters), freed buffers kept on per-bucket free lists and handed out
   again, so a steady training loop makes no new clCreateBuffer.
   The pool (in use + cached) stays under a limit: the device's global memory,
   or less by MOONFLOW_MEMORY_LIMIT / mf_memory_set_limit. PoCL over-commits
   host memory and is killed when it runs out, so moonflow stops first. */
#ifndef MF_ALLOC_H
#define MF_ALLOC_H

#include "mf.h"

typedef struct {
  uint64_t in_use;   /* bytes held by live storages */
  uint64_t cached;   /* bytes on free lists */
  uint64_t peak;     /* high-water mark of in_use */
  uint64_t buffers;  /* cl_mem objects alive (in use + cached) */
  uint64_t limit;    /* most bytes in_use + cached may reach */
} mf_memory;

/* A device buffer with a reference count; views share it. */
typedef struct mf_storage {
  cl_mem buf;
  size_t bytes; /* bucket size actually allocated */
  size_t size;  /* bytes asked for: views must stay below it */
  int refs;
} mf_storage;

mf_storage *mf_storage_new(size_t bytes); /* NULL + error on failure */
void mf_storage_retain(mf_storage *s);
void mf_storage_release(mf_storage *s);
/* Fills *m; -1 (error set) when the limit cannot be known (no device, or a
   bad MOONFLOW_MEMORY_LIMIT). */
int mf_memory_get(mf_memory *m);
/* Sets the pool's limit in bytes (0: the device's global memory); -1 with an
   error when above that. */
int mf_memory_set_limit(uint64_t bytes);
void mf_memory_reset_peak(void);
/* Releases all cached buffers back to the driver. */
void mf_memory_trim(void);

#endif
