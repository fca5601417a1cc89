/* Pairwise Euclidean distances from a Gram block:
   out[i, j] = sqrt(max(a2[i] + b2[j] - 2 ab[i, j], 0)), ab = A B^T,
   a2 = |a_i|^2, b2 = |b_j|^2; ab is {k, m}. */
kernel void pair_dist_f32(global float *out, global const float *ab, global const float *a2,
                          global const float *b2, int k, int m) {
  MF_FOR(t, k * m) {
    int i = t / m, j = t - i * m;
    out[t] = sqrt(fmax(a2[i] + b2[j] - 2.0f * ab[t], 0.0f));
  }
}

#ifdef MF_FP64
kernel void pair_dist_f64(global double *out, global const double *ab, global const double *a2,
                          global const double *b2, int k, int m) {
  MF_FOR(t, k * m) {
    int i = t / m, j = t - i * m;
    out[t] = sqrt(fmax(a2[i] + b2[j] - 2.0 * ab[t], 0.0));
  }
}
#endif
