/* Host-BLAS matrix products for CPU OpenCL devices. PoCL's cl/gemm.cl reaches
   about 2/3 of OpenBLAS's sgemm (less at K = 1024); OpenBLAS called on the
   buffers' host memory reaches all of it. The call is a native kernel
   (clEnqueueNativeKernel) in the one in-order queue, so it runs after the
   kernels before it and before those after it, with no host round trip;
   the buffers are mapped around it (no copies: PoCL's memory is the host's).
   OpenBLAS is opened at run time (dlopen libopenblas.so.0): without it, or
   on a device without native kernels, or with MOONFLOW_GEMM=device or
   clblast, this path stands aside. */
#include "blas_host.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

/* cblas_{s,d}gemm with CBLAS's enum values as ints (RowMajor 101, NoTrans 111, Trans 112) */
typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float,
                         float *, int);
typedef void (*dgemm_fn)(int, int, int, int, int, int, double, const double *, int, const double *, int, double,
                         double *, int);
static sgemm_fn sgemm;
static dgemm_fn dgemm;
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
    sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
    dgemm = (dgemm_fn)dlsym(h, "cblas_dgemm");
    if (!sgemm || !dgemm) { sgemm = NULL; dgemm = NULL; dlclose(h); }
  }
  if (sgemm) state = 1;
  return state > 0;
}

/* What the native kernel gets: host addresses of the operands' buffers,
   mapped in the queue before it runs. (PoCL 3.1 pairs mem_list with
   args_mem_loc in an order of its own, so native kernels get no cl_mem.) */
typedef struct {
  void *a, *b, *c;
  int f64, ta, tb;
  int m, n, k, lda, ldb;
  int64_t oa, ob, sa, sb, batch;
} gemm_args;

static void CL_CALLBACK run_gemm(void *p) {
  gemm_args *g = p;
  int TA = g->ta ? 112 : 111, TB = g->tb ? 112 : 111;
  int64_t mn = (int64_t)g->m * g->n;
  for (int64_t i = 0; i < g->batch; ++i) {
    if (g->f64)
      dgemm(101, TA, TB, g->m, g->n, g->k, 1.0, (const double *)g->a + g->oa + i * g->sa, g->lda,
            (const double *)g->b + g->ob + i * g->sb, g->ldb, 0.0, (double *)g->c + i * mn, g->n);
    else
      sgemm(101, TA, TB, g->m, g->n, g->k, 1.0f, (const float *)g->a + g->oa + i * g->sa, g->lda,
            (const float *)g->b + g->ob + i * g->sb, g->ldb, 0.0f, (float *)g->c + i * mn, g->n);
  }
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
  /* batches of small products (attention's heads) stay with the device
     kernels, which spread the batch over the cores: OpenBLAS threads each
     small product and pays its fork-join per matrix */
  if (batch > 1 || !r || !usable(r) || (a->dtype != MF_F32 && a->dtype != MF_F64)) return 1;
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
  g.oa = a->offset, g.ob = b->offset, g.batch = batch;
  cl_mem mems[3] = {a->st->buf, b->st->buf, out->st->buf};
  void **ptrs[3] = {&g.a, &g.b, &g.c};
  cl_int e = CL_SUCCESS;
  int mapped = 0;
  for (; mapped < 3 && e == CL_SUCCESS; ++mapped) {
    size_t bytes = 0;
    e = clGetMemObjectInfo(mems[mapped], CL_MEM_SIZE, sizeof bytes, &bytes, NULL);
    if (e != CL_SUCCESS) break;
    cl_map_flags fl = mapped == 2 ? CL_MAP_READ | CL_MAP_WRITE : CL_MAP_READ;
    *ptrs[mapped] = clEnqueueMapBuffer(r->queue, mems[mapped], CL_FALSE, fl, 0, bytes, 0, NULL, NULL, &e);
  }
  if (e == CL_SUCCESS) e = clEnqueueNativeKernel(r->queue, run_gemm, &g, sizeof g, 0, NULL, NULL, 0, NULL, NULL);
  for (int i = 0; i < mapped; ++i)
    if (*ptrs[i]) clEnqueueUnmapMemObject(r->queue, mems[i], *ptrs[i], 0, NULL, NULL);
  if (e != CL_SUCCESS) return mf_fail("host gemm (native kernel): %s", mf_cl_error_name(e));
  mf_stat.launches++;
  return 0;
}
