/* Dense symmetric linear algebra on the host in doubles, through LAPACKE:
   the Frechet distance between two Gaussians given their moments. Sizes are
   small (feature dims of a few hundred); the moments come from the device. */
#ifndef MF_LINALG_H
#define MF_LINALG_H

#include "tensor.h"

/* Eigenvalues (ascending) of the symmetric n x n row-major matrix a into w;
   with vectors != 0, a is overwritten by the eigenvectors (column k of a is
   the vector of w[k]), else a is destroyed. LAPACKE_dsyevd. */
int mf_sym_eig(int n, double *a, double *w, int vectors);

/* tr((A B)^1/2) for symmetric positive semi-definite A, B (n x n, row-major):
   the eigenvalues of A B are those of the symmetric A^1/2 B A^1/2, so
   tr = sum_k sqrt(max(lambda_k, 0)) with A^1/2 = V diag(sqrt(max(l, 0))) V^T. */
int mf_trace_sqrt_product(int n, const double *a, const double *b, double *out);

/* Frechet distance of N(mu_a, A) and N(mu_b, B):
   |mu_a - mu_b|^2 + tr(A) + tr(B) - 2 tr((A B)^1/2); *trs gets the last trace. */
int mf_frechet(int n, const double *mu_a, const double *a, const double *mu_b, const double *b, double *out,
               double *trs);

/* The same over device tensors: mu {n} and cov {n, n} (f32 or f64, any
   layout), read back to the host once each. */
int mf_frechet_tensors(const mf_tensor *mu_a, const mf_tensor *cov_a, const mf_tensor *mu_b,
                       const mf_tensor *cov_b, double *out, double *trs);

#endif
