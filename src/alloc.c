#include "alloc.h"

#include <errno.h>
#include <stdlib.h>

#include "runtime.h"

/* Bucket b holds sizes 2^(b/4) * (4 + b%4) / 4 rounded up: at most 25% waste. */
#define NBUCKETS 256
#define MIN_BYTES 256

typedef struct freed { cl_mem buf; struct freed *next; } freed;
static freed *lists[NBUCKETS];
static mf_memory mem; /* mem.limit 0: not read yet */

static int bucket_of(size_t bytes, size_t *rounded) {
  if (bytes < MIN_BYTES) bytes = MIN_BYTES;
  int e = 63 - __builtin_clzll((unsigned long long)bytes); /* 2^e <= bytes */
  size_t base = (size_t)1 << e, quarter = base >> 2;
  size_t q = (bytes - base + quarter - 1) / quarter; /* 0..4 */
  *rounded = base + q * quarter;
  return e * 4 + (int)q;
}

/* MOONFLOW_MEMORY_LIMIT: bytes, with an optional K, M or G (powers of 1024) */
static int env_limit(uint64_t global, uint64_t *out) {
  const char *s = getenv("MOONFLOW_MEMORY_LIMIT");
  if (!s || !*s) {
    *out = global;
    return 0;
  }
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  int shift = *end == 'K' || *end == 'k' ? 10 : *end == 'M' || *end == 'm' ? 20 : *end == 'G' || *end == 'g' ? 30 : 0;
  if (shift) ++end;
  if (errno || end == s || *end || *s == '-' || v == 0 || v > (global >> shift))
    return mf_fail("MOONFLOW_MEMORY_LIMIT=%s is not a byte count in [1, %llu] (the device's global memory; "
                   "K, M, G suffixes allowed)", s, (unsigned long long)global);
  *out = (uint64_t)v << shift;
  return 0;
}

/* the limit, read on first use */
static int limit_ready(mf_runtime *r) {
  return mem.limit || env_limit(r->info.global_mem, &mem.limit) == 0 ? 0 : -1;
}

static int too_much(size_t bytes, size_t rounded) {
  return mf_fail("device out of memory: %zu bytes (a %zu-byte buffer) would take the pool past its limit "
                 "(%llu bytes in use, %llu cached, limit %llu; the limit is the device's global memory unless "
                 "lowered by MOONFLOW_MEMORY_LIMIT or mf.set_memory_limit)",
                 bytes, rounded, (unsigned long long)mem.in_use, (unsigned long long)mem.cached,
                 (unsigned long long)mem.limit);
}

/* a new cl_mem of `rounded` bytes; on failure the cache is given back once
   and the request retried */
static cl_mem create(mf_runtime *r, size_t bytes, size_t rounded) {
  if (rounded > r->info.max_alloc) {
    mf_fail("device out of memory: %zu bytes exceed the largest buffer %s allows (%llu)", bytes, r->info.name,
            (unsigned long long)r->info.max_alloc);
    return NULL;
  }
  if (mem.in_use + mem.cached + rounded > mem.limit) mf_memory_trim();
  if (mem.in_use + rounded > mem.limit) {
    too_much(bytes, rounded);
    return NULL;
  }
  cl_int e;
  cl_mem buf = clCreateBuffer(r->ctx, CL_MEM_READ_WRITE, rounded, NULL, &e);
  if (e != CL_SUCCESS && mem.cached) {
    mf_memory_trim();
    buf = clCreateBuffer(r->ctx, CL_MEM_READ_WRITE, rounded, NULL, &e);
  }
  if (e != CL_SUCCESS) {
    mf_fail("device out of memory allocating %zu bytes (%s; %llu bytes in use, limit %llu)", bytes,
            mf_cl_error_name(e), (unsigned long long)mem.in_use, (unsigned long long)mem.limit);
    return NULL;
  }
  mf_stat.allocs++;
  mf_stat.alloc_bytes += rounded;
  mem.buffers++;
  return buf;
}

mf_storage *mf_storage_new(size_t bytes) {
  mf_runtime *r = mf_rt();
  if (!r || limit_ready(r)) return NULL;
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
  } else if (!(s->buf = create(r, bytes, rounded))) {
    free(s);
    return NULL;
  }
  s->bytes = rounded;
  s->size = bytes;
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

int mf_memory_get(mf_memory *m) {
  mf_runtime *r = mf_rt();
  int rc = r ? limit_ready(r) : -1;
  *m = mem;
  return rc;
}

int mf_memory_set_limit(uint64_t bytes) {
  mf_runtime *r = mf_rt();
  if (!r) return -1;
  if (bytes > r->info.global_mem)
    return mf_fail("limit %llu is above the device's global memory (%llu bytes)", (unsigned long long)bytes,
                   (unsigned long long)r->info.global_mem);
  mem.limit = bytes ? bytes : r->info.global_mem;
  return 0;
}

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
