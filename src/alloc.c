#include "alloc.h"

#include <stdlib.h>

#include "runtime.h"

/* Bucket b holds sizes 2^(b/4) * (4 + b%4) / 4 rounded up: at most 25% waste. */
#define NBUCKETS 256
#define MIN_BYTES 256

typedef struct freed { cl_mem buf; struct freed *next; } freed;
static freed *lists[NBUCKETS];
static mf_memory mem;

static int bucket_of(size_t bytes, size_t *rounded) {
  if (bytes < MIN_BYTES) bytes = MIN_BYTES;
  int e = 63 - __builtin_clzll((unsigned long long)bytes); /* 2^e <= bytes */
  size_t base = (size_t)1 << e, quarter = base >> 2;
  size_t q = (bytes - base + quarter - 1) / quarter; /* 0..4 */
  *rounded = base + q * quarter;
  return e * 4 + (int)q;
}

mf_storage *mf_storage_new(size_t bytes) {
  mf_runtime *r = mf_rt();
  if (!r) return NULL;
  size_t rounded;
  int b = bucket_of(bytes, &rounded);
  mf_storage *s = malloc(sizeof *s);
  if (!s) { mf_fail("out of host memory"); return NULL; }
  if (lists[b]) {
    freed *f = lists[b];
    lists[b] = f->next;
    s->buf = f->buf;
    free(f);
    mem.cached -= rounded;
    mf_stat.reuses++;
  } else {
    if (rounded > r->info.max_alloc) {
      free(s);
      mf_fail("device out of memory: %zu bytes exceed the largest buffer %s allows (%llu)",
              bytes, r->info.name, (unsigned long long)r->info.max_alloc);
      return NULL;
    }
    cl_int e;
    s->buf = clCreateBuffer(r->ctx, CL_MEM_READ_WRITE, rounded, NULL, &e);
    if (e != CL_SUCCESS && mem.cached) { /* give cached buffers back and retry */
      mf_memory_trim();
      s->buf = clCreateBuffer(r->ctx, CL_MEM_READ_WRITE, rounded, NULL, &e);
    }
    if (e != CL_SUCCESS) {
      free(s);
      mf_fail("device out of memory allocating %zu bytes (%s; %llu bytes in use)", bytes,
              mf_cl_error_name(e), (unsigned long long)mem.in_use);
      return NULL;
    }
    mf_stat.allocs++;
    mf_stat.alloc_bytes += rounded;
    mem.buffers++;
  }
  s->bytes = rounded;
  s->refs = 1;
  mem.in_use += rounded;
  if (mem.in_use > mem.peak) mem.peak = mem.in_use;
  return s;
}

void mf_storage_retain(mf_storage *s) { s->refs++; }

void mf_storage_release(mf_storage *s) {
  if (!s || --s->refs > 0) return;
  size_t rounded;
  int b = bucket_of(s->bytes, &rounded);
  freed *f = malloc(sizeof *f);
  mem.in_use -= s->bytes;
  if (f) {
    f->buf = s->buf;
    f->next = lists[b];
    lists[b] = f;
    mem.cached += s->bytes;
  } else {
    clReleaseMemObject(s->buf);
    mem.buffers--;
  }
  free(s);
}

void mf_memory_get(mf_memory *m) { *m = mem; }
void mf_memory_reset_peak(void) { mem.peak = mem.in_use; }

void mf_memory_trim(void) {
  for (int b = 0; b < NBUCKETS; ++b) {
    while (lists[b]) {
      freed *f = lists[b];
      lists[b] = f->next;
      clReleaseMemObject(f->buf);
      mem.buffers--;
      free(f);
    }
  }
  mem.cached = 0;
}
