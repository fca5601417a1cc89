/* STREAM triad a[i] = b[i] + s * c[i] over host memory with OpenMP: the
   machine's own bandwidth, printed as GB/s for n floats (3 arrays moved). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1L << 24;
  int reps = argc > 2 ? atoi(argv[2]) : 20;
  float *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n),
        *c = malloc(sizeof(float) * (size_t)n);
  if (!a || !b || !c) return 1;
#pragma omp parallel for
  for (long i = 0; i < n; ++i) { a[i] = 0; b[i] = 1; c[i] = 2; }
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    double t0 = now();
#pragma omp parallel for
    for (long i = 0; i < n; ++i) a[i] = b[i] + 3.0f * c[i];
    double t = now() - t0;
    if (t < best) best = t;
  }
  printf("%.3f\n", 3.0 * sizeof(float) * (double)n / best / 1e9);
  return a[n / 2] == 7.0f ? 0 : 2;
}
