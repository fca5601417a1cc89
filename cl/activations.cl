/* Activations and their derivatives, for scalars and vectors of T (the
   elementwise kernels and the fused layer kernels of nn.cl share them):
   MF_ACT_<a>(T, x) = a(x), MF_DACT_<a>(T, x) = a'(x). */
#define MF_ACT_none(T, x) (x)
#define MF_DACT_none(T, x) ((void)(x), (T)1)
/* sigmoid(x) = s = 1 / (1 + e^-x) */
#define MF_ACT_sigmoid(T, x) ((T)1 / ((T)1 + exp(-(x))))
/* silu(x) = x s(x), silu' = s (1 + x (1 - s)) */
#define MF_ACT_silu(T, x) ((x) / ((T)1 + exp(-(x))))
#define MF_DACT_silu(T, x)                                                     \
  (((T)1 / ((T)1 + exp(-(x)))) * ((T)1 + (x) * ((T)1 - (T)1 / ((T)1 + exp(-(x))))))
/* gelu(x) = x Phi(x) (the exact form), gelu' = Phi(x) + x phi(x) */
#define MF_ACT_gelu(T, x) ((T)0.5 * (x) * ((T)1 + erf((x) * (T)0.70710678118654752)))
#define MF_DACT_gelu(T, x)                                                     \
  ((T)0.5 * ((T)1 + erf((x) * (T)0.70710678118654752)) + (x) * (T)0.39894228040143268 * exp((T)-0.5 * (x) * (x)))
/* relu(x) = max(x, 0), relu' = [x > 0] */
#define MF_ACT_relu(T, x) fmax((x), (T)0)
#define MF_DACT_relu(T, x) fmin(fmax(sign(x), (T)0), (T)1)
/* tanh' = 1 - tanh^2 */
#define MF_ACT_tanh(T, x) tanh(x)
#define MF_DACT_tanh(T, x) ((T)1 - tanh(x) * tanh(x))
/* gelu with the tanh approximation (DiT's choice): u = c (x + 0.044715 x^3),
   c = sqrt(2/pi); gelu_tanh(x) = x (1 + tanh u) / 2,
   gelu_tanh' = (1 + tanh u) / 2 + x (1 - tanh^2 u) c (1 + 3 0.044715 x^2) / 2 */
#define MF_GT_U(T, x) ((T)0.79788456080286536 * ((x) + (T)0.044715 * (x) * (x) * (x)))
#define MF_ACT_gelu_tanh(T, x) ((T)0.5 * (x) * ((T)1 + tanh(MF_GT_U(T, x))))
#define MF_DACT_gelu_tanh(T, x)                                                \
  ((T)0.5 * ((T)1 + tanh(MF_GT_U(T, x))) +                                     \
   (T)0.5 * (x) * ((T)1 - tanh(MF_GT_U(T, x)) * tanh(MF_GT_U(T, x))) *         \
       (T)0.79788456080286536 * ((T)1 + (T)0.134145 * (x) * (x)))
/* the elementwise kernels un_gelu_tanh_* and un_gelu_tanh_grad_* (the unary
   list of src/kernel_names.h; cl/elementwise.cl expands MF_EXPR_<name>) */
#define MF_EXPR_gelu_tanh(T, x) MF_ACT_gelu_tanh(T, x)
#define MF_EXPR_gelu_tanh_grad(T, x) MF_DACT_gelu_tanh(T, x)
