/* Matrix products: on CPU devices through the host's OpenBLAS when it loads
   (blas_host.c), else cl/gemm.cl (f32) or CLBlast; on GPUs through CLBlast.
   A row-major operand whose last two dims are swapped in memory (a
   transposed view) goes in as a transpose flag. */
#include <clblast_c.h>
#include <stdlib.h>
#include <string.h>

#include "blas_host.h"
#include "ops.h"
#include "runtime.h"

static int clblast_used; /* CLBlast holds compiled programs for our context */

/* CLBlast keeps its compiled programs in static caches that its destructors
   release during exit(), after the OpenCL runtime's thread-local state may
   already be gone (oclgrind's is: a use after free at exit). Releasing them
   while the runtime is alive, when the Lua state closes, avoids that. */
void mf_blas_release(void) {
  if (!clblast_used) return;
  CLBlastClearCache();
  clblast_used = 0;
}

/* Layout of the last two dims of t: 0 row-major, 1 transposed, -1 neither.
   *ld receives the leading dimension. */
static int layout(const mf_tensor *t, size_t *ld) {
  int n = t->ndim;
  int64_t r = t->shape[n - 2], c = t->shape[n - 1], sr = t->strides[n - 2], sc = t->strides[n - 1];
  if ((sc == 1 || c == 1) && sr >= (c > 1 ? c : 1)) { *ld = (size_t)(sr > 0 ? sr : 1); if (r == 1) *ld = (size_t)(c > 1 ? c : 1); return 0; }
  if ((sr == 1 || r == 1) && sc >= (r > 1 ? r : 1)) { *ld = (size_t)(sc > 0 ? sc : 1); if (c == 1) *ld = (size_t)(r > 1 ? r : 1); return 1; }
  return -1;
}

/* a usable operand: itself when its layout is BLAS-friendly, else a packed copy */
static int operand(mf_tensor *dst, const mf_tensor *a, int *trans, size_t *ld, int64_t *bstride) {
  int l = layout(a, ld);
  int batch_ok = a->ndim == 2 || a->shape[0] == 1 || a->strides[0] > 0;
  if (l < 0 || !batch_ok) {
    if (mf_cast(dst, a, a->dtype)) return -1;
    l = layout(dst, ld);
  } else {
    mf_view_of(dst, a);
  }
  *trans = l;
  *bstride = dst->ndim == 3 ? dst->strides[0] : 0;
  return 0;
}

/* Our own f32 kernel (cl/gemm.cl) on CPU devices, where CLBlast's generic
   kernels are slow; MOONFLOW_GEMM=clblast keeps CLBlast everywhere. */
static int use_cpu_gemm(const mf_runtime *r, const mf_tensor *a) {
  const char *e = getenv("MOONFLOW_GEMM");
  return !r->info.is_gpu && a->dtype == MF_F32 && !(e && strcmp(e, "clblast") == 0);
}

/* out (fresh, contiguous) = a b with cl/gemm.cl: one launch, both operands
   read through their strides (transposed views without copies). */
static int cpu_gemm(mf_tensor *out, const mf_tensor *a, const mf_tensor *b, int64_t batch, int64_t m,
                    int64_t n, int64_t k) {
  int nd = a->ndim;
  cl_kernel kern = mf_kernel("gemm_cpu_f32");
  if (!kern) return -1;
  cl_int cm = (cl_int)m, cn = (cl_int)n, ck = (cl_int)k;
  cl_int oa = (cl_int)a->offset, sa = nd == 3 && batch > 1 ? (cl_int)a->strides[0] : 0;
  cl_int ai = (cl_int)a->strides[nd - 2], ap = (cl_int)a->strides[nd - 1];
  cl_int ob = (cl_int)b->offset, sb = nd == 3 && batch > 1 ? (cl_int)b->strides[0] : 0;
  cl_int bp = (cl_int)b->strides[nd - 2], bj = (cl_int)b->strides[nd - 1];
  size_t tiles = (size_t)batch * (size_t)((m + 63) / 64) * (size_t)((n + 31) / 32);
  if (mf_args(kern, 14, MF_ARG(out->st->buf), MF_ARG(cm), MF_ARG(cn), MF_ARG(ck), MF_ARG(a->st->buf), MF_ARG(oa),
              MF_ARG(sa), MF_ARG(ai), MF_ARG(ap), MF_ARG(b->st->buf), MF_ARG(ob), MF_ARG(sb), MF_ARG(bp),
              MF_ARG(bj)))
    return -1;
  return mf_launch(kern, tiles, 1);
}

int mf_matmul(mf_tensor *out, const mf_tensor *a, const mf_tensor *b) {
  mf_runtime *r = mf_rt();
  if (!r) return -1;
  int nd = a->ndim;
  int64_t m = a->shape[nd - 2], k = a->shape[nd - 1], n = b->shape[nd - 1];
  int64_t batch = nd == 3 ? a->shape[0] : 1;
  int64_t sh[3] = {batch, m, n};
  if (mf_empty(out, a->dtype, nd, nd == 3 ? sh : sh + 1)) return -1;
  if (m == 0 || n == 0) return 0;
  if (k == 0) {
    if (mf_fill(out, 0)) goto fail;
    return 0;
  }
  int h = mf_host_gemm(out, a, b, batch, m, n, k);
  if (h < 0) goto fail;
  if (h == 0) return 0;
  if (use_cpu_gemm(r, a)) {
    if (cpu_gemm(out, a, b, batch, m, n, k)) goto fail;
    return 0;
  }
  mf_tensor A, B;
  int ta, tb;
  size_t lda, ldb;
  int64_t sa, sb;
  if (operand(&A, a, &ta, &lda, &sa)) goto fail;
  if (operand(&B, b, &tb, &ldb, &sb)) { mf_tensor_free(&A); goto fail; }
  CLBlastTranspose TA = ta ? CLBlastTransposeYes : CLBlastTransposeNo;
  CLBlastTranspose TB = tb ? CLBlastTransposeYes : CLBlastTransposeNo;
  CLBlastStatusCode s;
  cl_command_queue q = r->queue;
  clblast_used = 1;
  if (a->dtype == MF_F32) {
    if (batch == 1)
      s = CLBlastSgemm(CLBlastLayoutRowMajor, TA, TB, (size_t)m, (size_t)n, (size_t)k, 1.0f, A.st->buf,
                       (size_t)A.offset, lda, B.st->buf, (size_t)B.offset, ldb, 0.0f, out->st->buf, 0,
                       (size_t)n, &q, NULL);
    else
      s = CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, TA, TB, (size_t)m, (size_t)n, (size_t)k, 1.0f,
                                     A.st->buf, (size_t)A.offset, lda, (size_t)sa, B.st->buf,
                                     (size_t)B.offset, ldb, (size_t)sb, 0.0f, out->st->buf, 0, (size_t)n,
                                     (size_t)(m * n), (size_t)batch, &q, NULL);
  } else {
    if (batch == 1)
      s = CLBlastDgemm(CLBlastLayoutRowMajor, TA, TB, (size_t)m, (size_t)n, (size_t)k, 1.0, A.st->buf,
                       (size_t)A.offset, lda, B.st->buf, (size_t)B.offset, ldb, 0.0, out->st->buf, 0,
                       (size_t)n, &q, NULL);
    else
      s = CLBlastDgemmStridedBatched(CLBlastLayoutRowMajor, TA, TB, (size_t)m, (size_t)n, (size_t)k, 1.0,
                                     A.st->buf, (size_t)A.offset, lda, (size_t)sa, B.st->buf,
                                     (size_t)B.offset, ldb, (size_t)sb, 0.0, out->st->buf, 0, (size_t)n,
                                     (size_t)(m * n), (size_t)batch, &q, NULL);
  }
  mf_tensor_free(&A);
  mf_tensor_free(&B);
  if (s != CLBlastSuccess) {
    mf_fail("CLBlast gemm failed with status %d", (int)s);
    goto fail;
  }
  mf_stat.launches++;
  return 0;
fail:
  mf_tensor_free(out);
  return -1;
}
