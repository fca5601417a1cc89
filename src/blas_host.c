/* Host-BLAS matrix products for CPU OpenCL devices. PoCL's cl/gemm.cl reaches
   about 2/3 of OpenBLAS's sgemm (less at K = 1024); OpenBLAS called on the
   buffers' host memory reaches all of it. The call is a native kernel
   (clEnqueueNativeKernel) in the one in-order queue, so it runs after the
   kernels before it and before those after it, with no host round trip;
   the buffers are mapped around it (no copies: PoCL's memory is the host's).
   Single products use OpenBLAS's own threads; batches are split over the
   cores, one OpenBLAS thread each.
   OpenBLAS is opened at run time (dlopen libopenblas.so.0): without it, or
   on a device without native kernels, or with MOONFLOW_GEMM=device or
   clblast, this path stands aside. (The mapping replaces clEnqueueNativeKernel's
   mem_list: PoCL 3.1 pairs those buffers with args_mem_loc in an order of
   its own, swapping operands.) The BLAS, the split over the cores and the
   mapped native kernel serve the host attention too (attention_host.c). */
#include "blas_host.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

static mf_sgemm_fn sgemm;
static mf_dgemm_fn dgemm;
static void (*set_threads)(int);
static int (*get_threads)(void);
static mf_host_blas blas; /* what mf_host_blas_get hands out */
static int state; /* 0 unknown, 1 usable, -1 not */

static int usable(const mf_runtime *r) {
  if (state) return state > 0;
  state = -1;
  const char *e = getenv("MOONFLOW_GEMM");
  if (r->info.is_gpu || (e && (strcmp(e, "device") == 0 || strcmp(e, "clblast") == 0))) return 0;
  cl_device_exec_capabilities caps = 0;
  if (clGetDeviceInfo(r->device, CL_DEVICE_EXECUTION_CAPABILITIES, sizeof caps, &caps, NULL) != CL_SUCCESS ||
      !(caps & CL_EXEC_NATIVE_KERNEL))
    return 0;
  const char *names[] = {"libopenblas.so.0", "libopenblas.so"};
  for (size_t i = 0; i < sizeof names / sizeof *names && !sgemm; ++i) {
    void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) continue;
    sgemm = (mf_sgemm_fn)dlsym(h, "cblas_sgemm");
    dgemm = (mf_dgemm_fn)dlsym(h, "cblas_dgemm");
    if (!sgemm || !dgemm) { sgemm = NULL; dgemm = NULL; dlclose(h); continue; }
    set_threads = (void (*)(int))dlsym(h, "openblas_set_num_threads");
    get_threads = (int (*)(void))dlsym(h, "openblas_get_num_threads");
  }
  if (sgemm) state = 1;
  int cu = (int)r->info.compute_units;
  blas = (mf_host_blas){sgemm, dgemm, cu > 1 ? (cu < MF_HOST_MAX_THREADS ? cu : MF_HOST_MAX_THREADS) : 1};
  return state > 0;
}

const mf_host_blas *mf_host_blas_get(void) {
  mf_runtime *r = mf_rt();
  return r && usable(r) ? &blas : NULL;
}

/* one thread's part of mf_host_split */
typedef struct {
  mf_host_body body;
  void *arg;
  int t;
  int64_t lo, hi;
} host_part;

static void *run_part(void *p) {
  host_part *q = p;
  q->body(q->arg, q->t, q->lo, q->hi);
  return NULL;
}

void mf_host_split(int64_t n, mf_host_body body, void *arg) {
  int nt = n < blas.threads ? (int)n : blas.threads;
  if (nt <= 1 || !set_threads || !get_threads) {
    body(arg, 0, 0, n);
    return;
  }
  int prev = get_threads();
  set_threads(1);
  host_part q[MF_HOST_MAX_THREADS];
  pthread_t th[MF_HOST_MAX_THREADS];
  int started[MF_HOST_MAX_THREADS] = {0};
  for (int t = 0; t < nt; ++t) q[t] = (host_part){body, arg, t, n * t / nt, n * (t + 1) / nt};
  for (int t = 1; t < nt; ++t) started[t] = pthread_create(&th[t], NULL, run_part, &q[t]) == 0;
  run_part(&q[0]);
  for (int t = 1; t < nt; ++t) {
    if (started[t]) pthread_join(th[t], NULL);
    else run_part(&q[t]); /* no thread: this one does it */
  }
  set_threads(prev);
}

int mf_host_enqueue(void(CL_CALLBACK *fn)(void *), void *args, size_t size, int n, const mf_tensor *const *ts,
                    void **const *slots, int nwrite) {
  mf_runtime *r = mf_rt();
  cl_mem mems[MF_HOST_MAX_BUFFERS];
  void *maps[MF_HOST_MAX_BUFFERS] = {0};
  if (!r || n > MF_HOST_MAX_BUFFERS) return mf_fail("host native kernel: %d buffers, at most %d", n, MF_HOST_MAX_BUFFERS);
  cl_int e = CL_SUCCESS;
  int mapped = 0;
  for (; mapped < n && e == CL_SUCCESS; ++mapped) {
    size_t bytes = 0;
    mems[mapped] = ts[mapped]->st->buf;
    e = clGetMemObjectInfo(mems[mapped], CL_MEM_SIZE, sizeof bytes, &bytes, NULL);
    if (e != CL_SUCCESS) break;
    cl_map_flags fl = mapped >= n - nwrite ? CL_MAP_READ | CL_MAP_WRITE : CL_MAP_READ;
    maps[mapped] = clEnqueueMapBuffer(r->queue, mems[mapped], CL_FALSE, fl, 0, bytes, 0, NULL, NULL, &e);
    if (e == CL_SUCCESS)
      *slots[mapped] = (char *)maps[mapped] + (size_t)ts[mapped]->offset * mf_dtype_size(ts[mapped]->dtype);
  }
  if (e == CL_SUCCESS) e = clEnqueueNativeKernel(r->queue, fn, args, size, 0, NULL, NULL, 0, NULL, NULL);
  for (int i = 0; i < mapped; ++i)
    if (maps[i]) clEnqueueUnmapMemObject(r->queue, mems[i], maps[i], 0, NULL, NULL);
  if (e != CL_SUCCESS) return mf_fail("host native kernel: %s", mf_cl_error_name(e));
  mf_stat.launches++;
  return 0;
}

/* What the native kernel gets: host addresses of the operands (at their
   offsets), mapped in the queue before it runs. */
typedef struct {
  void *a, *b, *c;
  int f64, ta, tb;
  int m, n, k, lda, ldb;
  int64_t sa, sb, batch;
} gemm_args;

/* products lo..hi-1 of the batch, each with OpenBLAS */
static void run_range(void *p, int t, int64_t lo, int64_t hi) {
  const gemm_args *g = p;
  int TA = g->ta ? MF_CBLAS_TRANS : MF_CBLAS_NOTRANS, TB = g->tb ? MF_CBLAS_TRANS : MF_CBLAS_NOTRANS;
  int64_t mn = (int64_t)g->m * g->n;
  for (int64_t i = lo; i < hi; ++i) {
    if (g->f64)
      dgemm(MF_CBLAS_ROW, TA, TB, g->m, g->n, g->k, 1.0, (const double *)g->a + i * g->sa, g->lda,
            (const double *)g->b + i * g->sb, g->ldb, 0.0, (double *)g->c + i * mn, g->n);
    else
      sgemm(MF_CBLAS_ROW, TA, TB, g->m, g->n, g->k, 1.0f, (const float *)g->a + i * g->sa, g->lda,
            (const float *)g->b + i * g->sb, g->ldb, 0.0f, (float *)g->c + i * mn, g->n);
  }
}

/* One product: OpenBLAS threads it; a batch (attention's heads, small
   products) is split over the cores. */
static void CL_CALLBACK run_gemm(void *p) {
  gemm_args *g = p;
  mf_host_split(g->batch, run_range, g);
}

/* Layout of the last two dims: 0 row-major, 1 transposed, -1 neither; *ld its leading dimension */
static int layout(const mf_tensor *t, int *ld) {
  int nd = t->ndim;
  int64_t r = t->shape[nd - 2], c = t->shape[nd - 1], sr = t->strides[nd - 2], sc = t->strides[nd - 1];
  if (sc == 1 && sr >= c) { *ld = (int)sr; return 0; }
  if (sr == 1 && sc >= r) { *ld = (int)sc; return 1; }
  if (r == 1 && sc == 1) { *ld = (int)c; return 0; }
  if (c == 1 && sr == 1) { *ld = (int)r; return 1; }
  return -1;
}

int mf_host_gemm(mf_tensor *out, const mf_tensor *a, const mf_tensor *b, int64_t batch, int64_t m, int64_t n,
                 int64_t k) {
  mf_runtime *r = mf_rt();
  /* small products stay with one device launch: the host path's three
     maps, native kernel and unmaps cost more than they save below ~100^3 */
  if ((double)batch * (double)m * (double)n * (double)k < 1048576.0) return 1;
  if (!r || !usable(r) || (a->dtype != MF_F32 && a->dtype != MF_F64)) return 1;
  gemm_args g;
  memset(&g, 0, sizeof g);
  int nd = a->ndim;
  g.ta = layout(a, &g.lda);
  g.tb = layout(b, &g.ldb);
  g.sa = nd == 3 && batch > 1 ? a->strides[0] : 0;
  g.sb = nd == 3 && batch > 1 ? b->strides[0] : 0;
  if (g.ta < 0 || g.tb < 0 || g.sa < 0 || g.sb < 0) return 1;
  g.f64 = a->dtype == MF_F64;
  g.m = (int)m, g.n = (int)n, g.k = (int)k;
  g.batch = batch;
  const mf_tensor *ts[3] = {a, b, out};
  void **slots[3] = {&g.a, &g.b, &g.c};
  return mf_host_enqueue(run_gemm, &g, sizeof g, 3, ts, slots, 1);
}
