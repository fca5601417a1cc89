/* Host sgemm through OpenBLAS: the machine's own matrix-multiply speed that
   the device sgemm is compared with. Each argument is a size:
     N        C = A B, all N x N                 prints "N GFLOP/s"
     MxNxK    C {M, N} = A {M, K} B {K, N}        prints "MxNxK GFLOP/s"
     MxNxKt   C {M, N} = A {M, K} B^T, B {N, K}   (a Linear's x W^T)
   row-major floats, best of a few runs, 2 M N K flops. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* m, n, k and the transpose flag of B from "N", "MxNxK" or "MxNxKt"; 0 on success */
static int parse(const char *s, int *m, int *n, int *k, int *tb) {
  char tail[8] = "";
  int c = sscanf(s, "%dx%dx%d%7s", m, n, k, tail);
  if (c == 1 && strchr(s, 'x') == NULL) { *n = *k = *m; *tb = 0; return *m > 0 ? 0 : -1; }
  if (c < 3 || *m <= 0 || *n <= 0 || *k <= 0) return -1;
  *tb = strcmp(tail, "t") == 0;
  return (c == 3 || *tb) ? 0 : -1;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; ++i) {
    int m, n, k, tb;
    if (parse(argv[i], &m, &n, &k, &tb)) {
      fprintf(stderr, "host_sgemm: bad size %s (N, MxNxK or MxNxKt)\n", argv[i]);
      return 1;
    }
    size_t na = (size_t)m * k, nb = (size_t)k * n, nc = (size_t)m * n;
    float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b), *c = malloc(nc * sizeof *c);
    if (!a || !b || !c) { fprintf(stderr, "host_sgemm: out of memory at %s\n", argv[i]); return 1; }
    for (size_t j = 0; j < na; ++j) a[j] = (float)(j % 7) - 3.0f;
    for (size_t j = 0; j < nb; ++j) b[j] = (float)(j % 5) - 2.0f;
    memset(c, 0, nc * sizeof *c);
    CBLAS_TRANSPOSE TB = tb ? CblasTrans : CblasNoTrans;
    int ldb = tb ? k : n;
    /* enough repetitions for ~0.3 s of work at 100 GFLOP/s, 3 to 50 */
    double flops = 2.0 * m * (double)n * k, best = 1e30;
    int reps = (int)(3e10 / flops);
    if (reps < 3) reps = 3;
    if (reps > 50) reps = 50;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, TB, m, n, k, 1.0f, a, k, b, ldb, 0.0f, c, n);
    for (int r = 0; r < reps; ++r) {
      double t = now();
      cblas_sgemm(CblasRowMajor, CblasNoTrans, TB, m, n, k, 1.0f, a, k, b, ldb, 0.0f, c, n);
      t = now() - t;
      if (t < best) best = t;
    }
    printf("%s %.3f\n", argv[i], flops / best / 1e9);
    free(a);
    free(b);
    free(c);
  }
  return 0;
}
