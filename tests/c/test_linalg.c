/* The host linear algebra without Lua or a device: LAPACKE's eigenvalues of
   known matrices, tr((A B)^1/2) against the 2 x 2 closed form
   sqrt(tr M + 2 sqrt(det M)) (M = A B has eigenvalues l1 l2 = det M,
   l1 + l2 = tr M), and the Frechet distance of equal and shifted Gaussians. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "linalg.h"
#include "mf.h"

#include "check.h"

static int close_to(double a, double b, double tol) { return fabs(a - b) <= tol * (1 + fabs(b)); }

static void test_eig(void) {
  /* [[2, 1], [1, 2]]: 1 and 3; diag(5, -1, 2): -1, 2, 5 */
  double a[4] = {2, 1, 1, 2}, w[3];
  CHECK(mf_sym_eig(2, a, w, 0) == 0 && close_to(w[0], 1, 1e-14) && close_to(w[1], 3, 1e-14), "eig 2x2: %g %g", w[0],
        w[1]);
  double d[9] = {5, 0, 0, 0, -1, 0, 0, 0, 2};
  CHECK(mf_sym_eig(3, d, w, 1) == 0 && w[0] == -1 && w[1] == 2 && w[2] == 5, "eig diag: %g %g %g", w[0], w[1], w[2]);
  /* the vector of -1 is e2 (up to sign): column 0 of d */
  CHECK(fabs(fabs(d[3]) - 1) < 1e-15 && d[0] == 0 && d[6] == 0, "eigvector of -1: %g %g %g", d[0], d[3], d[6]);
  CHECK(mf_sym_eig(0, a, w, 0) == -1 && strstr(mf_last_error(), "size 0"), "n = 0: %s", mf_last_error());
}

static void test_trace_sqrt(void) {
  double a[4] = {2, 0.5, 0.5, 1}, b[4] = {1.5, -0.7, -0.7, 3};
  /* M = A B */
  double m00 = a[0] * b[0] + a[1] * b[2], m01 = a[0] * b[1] + a[1] * b[3];
  double m10 = a[2] * b[0] + a[3] * b[2], m11 = a[2] * b[1] + a[3] * b[3];
  double want = sqrt(m00 + m11 + 2 * sqrt(m00 * m11 - m01 * m10)), got = 0;
  CHECK(mf_trace_sqrt_product(2, a, b, &got) == 0 && close_to(got, want, 1e-13), "tr sqrt: %.17g, expected %.17g",
        got, want);
  /* the Frechet distance of N(mu, A) and N(mu + (3, 4), A) is 25 */
  double mu_a[2] = {1, -2}, mu_b[2] = {4, 2}, fd = -1, trs = 0;
  CHECK(mf_frechet(2, mu_a, a, mu_b, a, &fd, &trs) == 0 && close_to(fd, 25, 1e-13) && close_to(trs, 3, 1e-13),
        "fd shifted: %.17g (tr %.17g)", fd, trs);
  double bad[4] = {1, NAN, NAN, 1};
  CHECK(mf_trace_sqrt_product(2, a, bad, &got) == -1 && strstr(mf_last_error(), "nan"), "nan: %s", mf_last_error());
}

int main(void) {
  test_eig();
  test_trace_sqrt();
  return check_summary();
}
