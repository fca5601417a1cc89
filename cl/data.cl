/* Toy 2-D data sets mapped from Philox draws: u holds 3 uniforms in [0, 1)
   per sample, z 2 standard normals. out[i] = (x, y); s = noise std.
   kind 0 two_moons: b = u0 < 1/2, th = pi u1,
        upper (cos th, sin th), lower (1 - cos th, 1/2 - sin th), minus the mean
        (1/2, 1/4), plus s z.
   kind 1 checkerboard: cells of side 1 on [-2, 2)^2 with floor(x) + floor(y)
        even: x = 4 u0 - 2, y = -2 + 2 floor(2 u1) + (floor(x) mod 2) + u2.
   kind 2 eight_gaussians: k = floor(8 u0), r (cos(2 pi k / 8), sin(2 pi k / 8)) + s z.
   kind 3 spirals: th = 3 pi sqrt(u0), a = +-1 by u1 < 1/2,
        a (-th cos th, th sin th) / 3 + s z.
   kind 4 rings: k = floor(K u0) (K = nrings), r = (k + 1) r0,
        r (cos 2 pi u1, sin 2 pi u1) + s z. */
kernel void toy2d_f32(global float *out, global const float *u, global const float *z, int n,
                      int kind, float s, float p1, float p2) {
  const float pi = 3.14159265358979f;
  MF_FOR(i, n) {
    float u0 = u[3 * i], u1 = u[3 * i + 1], u2 = u[3 * i + 2];
    float x, y;
    if (kind == 0) {
      float th = pi * u1;
      if (u0 < 0.5f) { x = cos(th); y = sin(th); }
      else { x = 1.0f - cos(th); y = 0.5f - sin(th); }
      x -= 0.5f;
      y -= 0.25f;
    } else if (kind == 1) {
      x = 4.0f * u0 - 2.0f;
      int cx = (int)floor(x);
      int par = cx & 1; /* floor(x) mod 2, also for negatives */
      y = -2.0f + 2.0f * floor(2.0f * u1) + (float)par + u2;
    } else if (kind == 2) {
      int k = min((int)(8.0f * u0), 7);
      float a = 2.0f * pi * (float)k / 8.0f;
      x = p1 * cos(a);
      y = p1 * sin(a);
    } else if (kind == 3) {
      float th = 3.0f * pi * sqrt(u0);
      float a = u1 < 0.5f ? 1.0f : -1.0f;
      x = -a * th * cos(th) / 3.0f;
      y = a * th * sin(th) / 3.0f;
    } else {
      int k = min((int)(p2 * u0), (int)p2 - 1);
      float r = (float)(k + 1) * p1, a = 2.0f * pi * u1;
      x = r * cos(a);
      y = r * sin(a);
    }
    out[2 * i] = x + s * z[2 * i];
    out[2 * i + 1] = y + s * z[2 * i + 1];
  }
}
