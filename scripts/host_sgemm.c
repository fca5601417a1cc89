/* Host sgemm through OpenBLAS: the machine's own matrix-multiply speed that
   the device sgemm is compared with. `host_sgemm N...` prints "N GFLOP/s"
   for C = A B with N x N row-major floats, best of a few runs (2 N^3 flops). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; ++i) {
    int n = atoi(argv[i]);
    if (n <= 0) { fprintf(stderr, "host_sgemm: bad size %s\n", argv[i]); return 1; }
    size_t nn = (size_t)n * (size_t)n;
    float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = malloc(nn * sizeof *c);
    if (!a || !b || !c) { fprintf(stderr, "host_sgemm: out of memory at %d\n", n); return 1; }
    for (size_t k = 0; k < nn; ++k) { a[k] = (float)(k % 7) - 3.0f; b[k] = (float)(k % 5) - 2.0f; c[k] = 0; }
    /* enough repetitions for ~0.3 s of work at 100 GFLOP/s, at least 3 */
    double flops = 2.0 * n * (double)n * n, best = 1e30;
    int reps = (int)(3e10 / flops);
    if (reps < 3) reps = 3;
    if (reps > 50) reps = 50;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    for (int r = 0; r < reps; ++r) {
      double t = now();
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
      t = now() - t;
      if (t < best) best = t;
    }
    printf("%d %.3f\n", n, flops / best / 1e9);
    free(a);
    free(b);
    free(c);
  }
  return 0;
}
