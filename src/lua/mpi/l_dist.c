/* moonflow.dist_mpi: the MPI half of mf.dist (lua/moonflow/dist.lua), built
   only when CMake finds MPI. Device tensors go through host staging: this
   module reads a tensor's bytes on its own OpenCL queue (in the tensor's
   context), reduces or broadcasts them with MPI, and writes them back.
   Large buffers move in chunks: every chunk's read is enqueued at once
   (non-blocking, on a read queue), so while MPI reduces chunk i the device
   copies chunk i+1 out, and chunk i's write-back (on a write queue) goes
   while MPI works on chunk i+1.

   It links no moonflow symbol (core.so is loaded privately by Lua): it reads
   the tensor userdata's layout from tensor.h and calls OpenCL and MPI only.
   The caller (dist.lua) waits for moonflow's queue before a call; every call
   here waits for its own writes before it returns. */
#include <dlfcn.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <lua.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../tensor.h"

#define LMF_TENSOR "moonflow.Tensor"

static MPI_Comm local_comm = MPI_COMM_NULL; /* the ranks on this machine */
static int started;                           /* MPI_Init done here */
static cl_command_queue queue, wqueue;        /* the staging queues, reads and writes ... */
static cl_context queue_ctx;                  /* ... of this context */
static char *host;                            /* staging buffer, grown on demand */
static size_t host_cap;

static int is_finalized(void) {
  int f = 0;
  MPI_Finalized(&f);
  return f;
}

static int is_initialized(void) {
  int i = 0;
  MPI_Initialized(&i);
  return i;
}

static void release_staging(void) {
  if (queue) { clFinish(queue); clReleaseCommandQueue(queue); queue = NULL; queue_ctx = NULL; }
  if (wqueue) { clFinish(wqueue); clReleaseCommandQueue(wqueue); wqueue = NULL; }
  free(host);
  host = NULL;
  host_cap = 0;
}

/* MPI_Finalize once, when this module initialized MPI and nobody finalized it */
static void finalize(void) {
  release_staging();
  if (started && is_initialized() && !is_finalized()) {
    if (local_comm != MPI_COMM_NULL) MPI_Comm_free(&local_comm);
    MPI_Finalize();
  }
  started = 0;
}

static int need_init(lua_State *L, const char *fn) {
  if (!is_initialized() || is_finalized())
    return luaL_error(L, "moonflow.dist.%s: MPI is not initialized (call mf.dist.init() first)", fn);
  return 0;
}

/* init(): MPI_Init_thread (funneled: only the main thread calls MPI) */
static int l_init(lua_State *L) {
  if (is_finalized()) return luaL_error(L, "moonflow.dist.init: MPI was already finalized");
  if (!is_initialized()) {
    int provided;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      return luaL_error(L, "moonflow.dist.init: MPI_Init_thread failed");
    started = 1;
    atexit(finalize);
  }
  if (local_comm == MPI_COMM_NULL)
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local_comm);
  return 0;
}

static int l_initialized(lua_State *L) {
  lua_pushboolean(L, is_initialized() && !is_finalized());
  return 1;
}

static int l_finalize(lua_State *L) {
  (void)L;
  finalize();
  return 0;
}

static int comm_int(lua_State *L, MPI_Comm c, int (*f)(MPI_Comm, int *), const char *fn) {
  need_init(L, fn);
  int v;
  f(c, &v);
  lua_pushinteger(L, v);
  return 1;
}
static int l_rank(lua_State *L) { return comm_int(L, MPI_COMM_WORLD, MPI_Comm_rank, "rank"); }
static int l_size(lua_State *L) { return comm_int(L, MPI_COMM_WORLD, MPI_Comm_size, "size"); }
static int l_local_rank(lua_State *L) { return comm_int(L, local_comm, MPI_Comm_rank, "local_rank"); }
static int l_local_size(lua_State *L) { return comm_int(L, local_comm, MPI_Comm_size, "local_size"); }

static int l_barrier(lua_State *L) {
  need_init(L, "barrier");
  MPI_Barrier(MPI_COMM_WORLD);
  return 0;
}

/* abort(code): ends every rank of the job (the message is printed by the caller) */
static int l_abort(lua_State *L) {
  int code = (int)luaL_optinteger(L, 1, 1);
  fflush(stdout);
  fflush(stderr);
  if (is_initialized() && !is_finalized()) MPI_Abort(MPI_COMM_WORLD, code);
  _exit(code);
}

static int l_wtime(lua_State *L) {
  lua_pushnumber(L, MPI_Wtime());
  return 1;
}

/* setenv(name, value): before the OpenCL runtime starts, MOONFLOW_DEVICE picks the device */
static int l_setenv(lua_State *L) {
  const char *k = luaL_checkstring(L, 1), *v = luaL_checkstring(L, 2);
  if (setenv(k, v, 1) != 0) return luaL_error(L, "moonflow.dist: setenv %s failed", k);
  return 0;
}

/* silence_stdout(): fd 1 to /dev/null (ranks other than 0 print nothing) */
static int l_silence_stdout(lua_State *L) {
  (void)L;
  fflush(stdout);
  int fd = open("/dev/null", O_WRONLY);
  if (fd >= 0) { dup2(fd, 1); close(fd); }
  return 0;
}

/* ------------------------------------------------------------- staging */
typedef struct {
  mf_tensor *t;
  size_t es, bytes, base; /* element size, bytes, byte offset in the buffer */
  MPI_Datatype type;
} staged;

static void check_tensor(lua_State *L, int idx, const char *fn, staged *s) {
  mf_tensor *t = luaL_testudata(L, idx, LMF_TENSOR);
  if (!t || !t->st) luaL_error(L, "moonflow.dist.%s: argument %d must be a tensor, got %s", fn, idx, luaL_typename(L, idx));
  int64_t n = 1, want = 1;
  for (int d = 0; d < t->ndim; ++d) n *= t->shape[d];
  for (int d = t->ndim - 1; d >= 0; --d) { /* contiguous C order (size-1 dims free) */
    if (t->shape[d] != 1 && t->strides[d] != want)
      luaL_error(L, "moonflow.dist.%s: the tensor must be contiguous", fn);
    want *= t->shape[d];
  }
  s->t = t;
  switch (t->dtype) {
  case MF_F32: s->es = 4; s->type = MPI_FLOAT; break;
  case MF_F64: s->es = 8; s->type = MPI_DOUBLE; break;
  case MF_I32: s->es = 4; s->type = MPI_INT; break;
  default: luaL_error(L, "moonflow.dist.%s: unsupported dtype", fn);
  }
  s->bytes = (size_t)n * s->es;
  s->base = (size_t)t->offset * s->es;
}

static void cl_check(lua_State *L, cl_int e, const char *fn, const char *what) {
  if (e != CL_SUCCESS) luaL_error(L, "moonflow.dist.%s: %s failed (OpenCL error %d)", fn, what, (int)e);
}

/* the staging queues on the tensor's context and device (two: the reads of
   later chunks and the writes of earlier ones use both directions of the
   bus at once), and room for bytes */
static void prepare(lua_State *L, staged *s, const char *fn) {
  cl_context ctx;
  cl_check(L, clGetMemObjectInfo(s->t->st->buf, CL_MEM_CONTEXT, sizeof ctx, &ctx, NULL), fn, "clGetMemObjectInfo");
  if (queue && ctx != queue_ctx) {
    clReleaseCommandQueue(queue);
    clReleaseCommandQueue(wqueue);
    queue = wqueue = NULL;
  }
  if (!queue) {
    cl_device_id dev;
    cl_check(L, clGetContextInfo(ctx, CL_CONTEXT_DEVICES, sizeof dev, &dev, NULL), fn, "clGetContextInfo");
    cl_int e;
    queue = clCreateCommandQueue(ctx, dev, 0, &e);
    cl_check(L, e, fn, "clCreateCommandQueue");
    wqueue = clCreateCommandQueue(ctx, dev, 0, &e);
    if (e != CL_SUCCESS) { clReleaseCommandQueue(queue); queue = NULL; }
    cl_check(L, e, fn, "clCreateCommandQueue");
    queue_ctx = ctx;
  }
  if (s->bytes > host_cap) {
    free(host);
    host_cap = 0;
    if (posix_memalign((void **)&host, 64, s->bytes) != 0) {
      host = NULL;
      luaL_error(L, "moonflow.dist.%s: out of host memory staging %d bytes", fn, (int)s->bytes);
    }
    host_cap = s->bytes;
  }
}

/* chunk size in bytes: a whole number of elements, at least one */
static size_t chunk_of(lua_State *L, int idx, size_t es) {
  lua_Integer c = luaL_optinteger(L, idx, 4 << 20);
  if (c < 1) luaL_error(L, "moonflow.dist: chunk size must be positive, got %d", (int)c);
  size_t b = (size_t)c / es * es;
  return b ? b : es;
}

/* enqueues the reads of every chunk at once (the in-order queue runs them
   one after the other while the host reduces the ones already in) */
static cl_event *read_all(lua_State *L, staged *s, size_t chunk, size_t nch, const char *fn) {
  cl_event *ev = malloc(sizeof(cl_event) * nch);
  if (!ev) luaL_error(L, "moonflow.dist.%s: out of host memory", fn);
  for (size_t i = 0; i < nch; ++i) {
    size_t off = i * chunk, len = s->bytes - off < chunk ? s->bytes - off : chunk;
    cl_int e = clEnqueueReadBuffer(queue, s->t->st->buf, CL_FALSE, s->base + off, len, host + off, 0, NULL, &ev[i]);
    if (e != CL_SUCCESS) {
      for (size_t j = 0; j < i; ++j) clReleaseEvent(ev[j]);
      free(ev);
      clFinish(queue);
      cl_check(L, e, fn, "clEnqueueReadBuffer");
    }
  }
  return ev;
}

static void wait_read(lua_State *L, cl_event *ev, size_t i, size_t nch, const char *fn) {
  cl_int e = clWaitForEvents(1, &ev[i]);
  if (e != CL_SUCCESS) {
    for (size_t j = i; j < nch; ++j) clReleaseEvent(ev[j]);
    free(ev);
    clFinish(queue);
    cl_check(L, e, fn, "reading the tensor");
  }
  clReleaseEvent(ev[i]);
}

static void write_chunk(lua_State *L, staged *s, size_t off, size_t len, const char *fn) {
  cl_int e = clEnqueueWriteBuffer(wqueue, s->t->st->buf, CL_FALSE, s->base + off, len, host + off, 0, NULL, NULL);
  if (e != CL_SUCCESS) { clFinish(queue); clFinish(wqueue); cl_check(L, e, fn, "clEnqueueWriteBuffer"); }
}

static void divide(void *p, size_t n, MPI_Datatype type, int by) {
  if (type == MPI_FLOAT) { float *x = p; for (size_t i = 0; i < n; ++i) x[i] /= (float)by; }
  else { double *x = p; for (size_t i = 0; i < n; ++i) x[i] /= (double)by; }
}

/* all_reduce(t, op, chunk_bytes): t <- op over ranks, in place; op "sum",
   "mean" (sum / size, floats) or "max". Returns the seconds spent waiting
   for device reads, in MPI (and the mean's division), and waiting for the
   last writes: what the staging cost beside the reduction itself. */
static int l_all_reduce(lua_State *L) {
  need_init(L, "all_reduce");
  staged s;
  check_tensor(L, 1, "all_reduce", &s);
  static const char *const ops[] = {"sum", "mean", "max", NULL};
  int op = luaL_checkoption(L, 2, NULL, ops);
  if (op == 1 && s.type == MPI_INT) return luaL_error(L, "moonflow.dist.all_reduce: \"mean\" of an i32 tensor (use \"sum\")");
  size_t chunk = chunk_of(L, 3, s.es);
  if (s.bytes == 0) return 0;
  prepare(L, &s, "all_reduce");
  int size;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  size_t nch = (s.bytes + chunk - 1) / chunk;
  /* seconds waiting for reads, in MPI, waiting for the last writes */
  double t_read = 0, t_mpi = 0, t0 = MPI_Wtime(), t1;
  cl_event *ev = read_all(L, &s, chunk, nch, "all_reduce");
  for (size_t i = 0; i < nch; ++i) {
    size_t off = i * chunk, len = s.bytes - off < chunk ? s.bytes - off : chunk;
    wait_read(L, ev, i, nch, "all_reduce");
    t1 = MPI_Wtime();
    t_read += t1 - t0;
    MPI_Allreduce(MPI_IN_PLACE, host + off, (int)(len / s.es), s.type, op == 2 ? MPI_MAX : MPI_SUM, MPI_COMM_WORLD);
    if (op == 1) divide(host + off, len / s.es, s.type, size);
    t0 = MPI_Wtime();
    t_mpi += t0 - t1;
    write_chunk(L, &s, off, len, "all_reduce");
  }
  free(ev);
  cl_check(L, clFinish(wqueue), "all_reduce", "writing the tensor back");
  lua_pushnumber(L, t_read);
  lua_pushnumber(L, t_mpi);
  lua_pushnumber(L, MPI_Wtime() - t0);
  return 3;
}

/* broadcast(t, root, chunk_bytes): every rank's t <- root's t */
static int l_broadcast(lua_State *L) {
  need_init(L, "broadcast");
  staged s;
  check_tensor(L, 1, "broadcast", &s);
  int root = (int)luaL_checkinteger(L, 2), rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (root < 0 || root >= size)
    return luaL_error(L, "moonflow.dist.broadcast: root %d is not a rank (0..%d)", root, size - 1);
  size_t chunk = chunk_of(L, 3, s.es);
  if (s.bytes == 0) return 0;
  prepare(L, &s, "broadcast");
  size_t nch = (s.bytes + chunk - 1) / chunk;
  cl_event *ev = rank == root ? read_all(L, &s, chunk, nch, "broadcast") : NULL;
  for (size_t i = 0; i < nch; ++i) {
    size_t off = i * chunk, len = s.bytes - off < chunk ? s.bytes - off : chunk;
    if (ev) wait_read(L, ev, i, nch, "broadcast");
    MPI_Bcast(host + off, (int)len, MPI_BYTE, root, MPI_COMM_WORLD);
    if (!ev) write_chunk(L, &s, off, len, "broadcast");
  }
  free(ev);
  cl_check(L, clFinish(wqueue), "broadcast", "writing the tensor");
  return 0;
}

/* ------------------------------------------------ buckets (overlap) */
/* A bucket of a gradient buffer exchanged while the backward pass goes on:
   bucket_begin(view) enqueues the reads of its bytes (its own host memory),
   bucket_reduce(b, op) waits for them, all-reduces and enqueues the writes,
   bucket_wait() waits for every write. Between begin and reduce the caller
   lets the device compute (more backward kernels), so MPI on earlier
   buckets runs beside the device's work on later ones. */
#define LMF_BUCKET "moonflow.dist.Bucket"

typedef struct {
  staged s;
  cl_mem buf;
  char *host;
  cl_event *ev;
  size_t chunk, nch;
  int reduced;
} bucket;

static int bucket_gc(lua_State *L) {
  bucket *b = luaL_checkudata(L, 1, LMF_BUCKET);
  if (b->ev && !b->reduced) { /* begun, never reduced: let the reads land */
    clWaitForEvents((cl_uint)b->nch, b->ev);
    for (size_t i = 0; i < b->nch; ++i) clReleaseEvent(b->ev[i]);
  }
  if (b->host && wqueue) clFinish(wqueue); /* writes from this host memory */
  free(b->ev);
  free(b->host);
  b->ev = NULL;
  b->host = NULL;
  return 0;
}

static int l_bucket_begin(lua_State *L) {
  need_init(L, "bucket_begin");
  staged s;
  check_tensor(L, 1, "bucket_begin", &s);
  size_t chunk = chunk_of(L, 2, s.es);
  bucket *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, LMF_BUCKET);
  b->s = s;
  b->buf = s.t->st->buf; /* the view's tensor may go; its storage is the caller's flat buffer */
  b->chunk = chunk;
  if (s.bytes == 0) return 1;
  prepare(L, &b->s, "bucket_begin");
  b->nch = (s.bytes + chunk - 1) / chunk;
  if (posix_memalign((void **)&b->host, 64, s.bytes) != 0) {
    b->host = NULL;
    return luaL_error(L, "moonflow.dist.bucket_begin: out of host memory staging %d bytes", (int)s.bytes);
  }
  b->ev = malloc(sizeof(cl_event) * b->nch);
  if (!b->ev) return luaL_error(L, "moonflow.dist.bucket_begin: out of host memory");
  for (size_t i = 0; i < b->nch; ++i) {
    size_t off = i * chunk, len = s.bytes - off < chunk ? s.bytes - off : chunk;
    cl_int e = clEnqueueReadBuffer(queue, b->buf, CL_FALSE, s.base + off, len, b->host + off, 0, NULL, &b->ev[i]);
    if (e != CL_SUCCESS) {
      clFinish(queue);
      for (size_t j = 0; j < i; ++j) clReleaseEvent(b->ev[j]);
      b->reduced = 1;
      cl_check(L, e, "bucket_begin", "clEnqueueReadBuffer");
    }
  }
  return 1;
}

static int l_bucket_reduce(lua_State *L) {
  bucket *b = luaL_checkudata(L, 1, LMF_BUCKET);
  static const char *const ops[] = {"sum", "mean", "max", NULL};
  int op = luaL_checkoption(L, 2, NULL, ops);
  if (b->reduced) return luaL_error(L, "moonflow.dist.bucket_reduce: the bucket was already reduced");
  if (op == 1 && b->s.type == MPI_INT) return luaL_error(L, "moonflow.dist.bucket_reduce: \"mean\" of an i32 tensor");
  b->reduced = 1;
  int size;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  double t0 = MPI_Wtime();
  for (size_t i = 0; i < b->nch; ++i) {
    size_t off = i * b->chunk, len = b->s.bytes - off < b->chunk ? b->s.bytes - off : b->chunk;
    cl_int e = clWaitForEvents(1, &b->ev[i]);
    clReleaseEvent(b->ev[i]);
    if (e != CL_SUCCESS) {
      for (size_t j = i + 1; j < b->nch; ++j) clReleaseEvent(b->ev[j]);
      clFinish(queue);
      cl_check(L, e, "bucket_reduce", "reading the bucket");
    }
    MPI_Allreduce(MPI_IN_PLACE, b->host + off, (int)(len / b->s.es), b->s.type, op == 2 ? MPI_MAX : MPI_SUM,
                  MPI_COMM_WORLD);
    if (op == 1) divide(b->host + off, len / b->s.es, b->s.type, size);
    e = clEnqueueWriteBuffer(wqueue, b->buf, CL_FALSE, b->s.base + off, len, b->host + off, 0, NULL, NULL);
    if (e != CL_SUCCESS) { clFinish(wqueue); cl_check(L, e, "bucket_reduce", "clEnqueueWriteBuffer"); }
  }
  lua_pushnumber(L, MPI_Wtime() - t0);
  return 1;
}

static int l_bucket_wait(lua_State *L) {
  if (wqueue) cl_check(L, clFinish(wqueue), "bucket_wait", "writing the buckets back");
  return 0;
}

/* broadcast_string(s, root): root's string on every rank (small messages:
   an error, a decision) */
static int l_broadcast_string(lua_State *L) {
  need_init(L, "broadcast_string");
  int root = (int)luaL_checkinteger(L, 2), rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  size_t n = 0;
  const char *str = rank == root ? luaL_checklstring(L, 1, &n) : NULL;
  long long len = (long long)n;
  MPI_Bcast(&len, 1, MPI_LONG_LONG, root, MPI_COMM_WORLD);
  char *buf = malloc((size_t)len + 1);
  if (!buf) return luaL_error(L, "moonflow.dist.broadcast_string: out of host memory");
  if (rank == root) memcpy(buf, str, (size_t)len);
  MPI_Bcast(buf, (int)len, MPI_BYTE, root, MPI_COMM_WORLD);
  lua_pushlstring(L, buf, (size_t)len);
  free(buf);
  return 1;
}

/* the state's close finalizes MPI (os.exit(rc, true) closes it) */
static int close_gc(lua_State *L) {
  (void)L;
  finalize();
  return 0;
}

int luaopen_moonflow_dist_mpi(lua_State *L) {
  /* Open MPI's plugins look for libmpi's symbols globally; Lua loads C
     modules privately, so promote the already-loaded libmpi (as mpi4py does) */
  const char *libs[] = {"libmpi.so.40", "libmpi.so.12", "libmpi.so", NULL};
  for (int i = 0; libs[i]; ++i)
    if (dlopen(libs[i], RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD)) break;
  lua_newuserdatauv(L, 1, 0);
  lua_newtable(L);
  lua_pushcfunction(L, close_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, "moonflow.dist_mpi.closer");
  luaL_newmetatable(L, LMF_BUCKET);
  lua_pushcfunction(L, bucket_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {
      {"init", l_init}, {"initialized", l_initialized}, {"finalize", l_finalize}, {"rank", l_rank},
      {"size", l_size}, {"local_rank", l_local_rank}, {"local_size", l_local_size}, {"barrier", l_barrier},
      {"abort", l_abort}, {"wtime", l_wtime}, {"setenv", l_setenv}, {"silence_stdout", l_silence_stdout},
      {"all_reduce", l_all_reduce}, {"broadcast", l_broadcast}, {"broadcast_string", l_broadcast_string},
      {"bucket_begin", l_bucket_begin}, {"bucket_reduce", l_bucket_reduce}, {"bucket_wait", l_bucket_wait},
      {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
