/* Optimizer kernels: one launch updates a whole flat parameter buffer.
   Gradient clipping by global norm reads ss = sum of squared gradients
   (one reduction, on the device) and scales inside the update:
     c = min(1, max_norm / (sqrt(ss) + 1e-6))    (1 when clip == 0) */

#define MF_CLIP_COEF(T)                                                        \
  T c = (T)1;                                                                  \
  if (clip) c = fmin((T)1, max_norm / (sqrt(ss[oss]) + (T)1e-6));

#define MF_OPTIM(T, suf)                                                       \
  /* AdamW (decoupled weight decay, bias-corrected moments):                  \
     g' = c g;  p -= lr wd p;  m = b1 m + (1 - b1) g';                         \
     v = b2 v + (1 - b2) g'^2;  p -= lr (m / bc1) / (sqrt(v / bc2) + eps)      \
     with bc1 = 1 - b1^t, bc2 = 1 - b2^t */                                    \
  kernel void optim_adamw_##suf(global T *p, int op, global const T *g, int og,\
                                global T *m, int om, global T *v, int ov,      \
                                int n, T lr, T b1, T b2, T eps, T wd, T bc1,   \
                                T bc2, global const T *ss, int oss,            \
                                T max_norm, int clip) {                        \
    MF_CLIP_COEF(T)                                                            \
    T rb2 = (T)1 / sqrt(bc2), step = lr / bc1, decay = (T)1 - lr * wd;         \
    MF_FOR(i, n) {                                                             \
      T gi = c * g[og + i];                                                    \
      T mi = b1 * m[om + i] + ((T)1 - b1) * gi;                                \
      T vi = b2 * v[ov + i] + ((T)1 - b2) * gi * gi;                           \
      m[om + i] = mi;                                                          \
      v[ov + i] = vi;                                                          \
      p[op + i] = p[op + i] * decay - step * mi / (sqrt(vi) * rb2 + eps);      \
    }                                                                          \
  }                                                                            \
  /* SGD with momentum mu, dampening damp, weight decay wd (PyTorch's form):  \
     g' = c g + wd p;  b = first ? g' : mu b + (1 - damp) g';                  \
     d = nesterov ? g' + mu b : b  (d = g' when mu == 0);  p -= lr d */         \
  kernel void optim_sgd_##suf(global T *p, int op, global const T *g, int og,  \
                              global T *b, int ob, int n, T lr, T mu, T damp,  \
                              T wd, int nesterov, int first,                   \
                              global const T *ss, int oss, T max_norm,         \
                              int clip) {                                      \
    MF_CLIP_COEF(T)                                                            \
    MF_FOR(i, n) {                                                             \
      T pi = p[op + i];                                                        \
      T gi = c * g[og + i] + wd * pi;                                          \
      T d = gi;                                                                \
      if (mu != (T)0) {                                                        \
        T bi = first ? gi : mu * b[ob + i] + ((T)1 - damp) * gi;               \
        b[ob + i] = bi;                                                        \
        d = nesterov ? gi + mu * bi : bi;                                      \
      }                                                                        \
      p[op + i] = pi - lr * d;                                                 \
    }                                                                          \
  }                                                                            \
  /* EMA: s = d s + (1 - d) p */                                               \
  kernel void optim_ema_##suf(global T *s, int os, global const T *p, int op,  \
                              int n, T d) {                                    \
    MF_FOR(i, n) { s[os + i] = d * s[os + i] + ((T)1 - d) * p[op + i]; }       \
  }                                                                            \
  /* g = c g (clip_grad_norm on its own) */                                    \
  kernel void optim_clip_##suf(global T *g, int og, int n,                     \
                               global const T *ss, int oss, T max_norm) {      \
    int clip = 1;                                                              \
    MF_CLIP_COEF(T)                                                            \
    MF_FOR(i, n) { g[og + i] *= c; }                                           \
  }

MF_OPTIM(float, f32)
#ifdef MF_FP64
MF_OPTIM(double, f64)
#endif
