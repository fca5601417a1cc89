/* Names shared by the C core and the kernels: valid C and OpenCL C, and the
   first file of the embedded kernel source (CMakeLists.txt, MF_KERNEL_FILES).
   Each list is an X-macro X(name, A, B): the enums below number it, the
   binding (src/lua) turns it into the strings Lua passes, the kernels paste
   the names into kernel names (only with ##, so a name that is also a macro,
   such as exp, is never expanded). */
#ifndef MF_KERNEL_NAMES_H
#define MF_KERNEL_NAMES_H

/* elementwise unary kernels un_<name>_<dtype> (cl/elementwise.cl) */
#define MF_UNARY_OPS(X, A, B)                                                  \
  X(neg, A, B) X(exp, A, B) X(log, A, B) X(sqrt, A, B) X(rsqrt, A, B)          \
  X(sin, A, B) X(cos, A, B) X(tanh, A, B) X(erf, A, B) X(sigmoid, A, B)        \
  X(silu, A, B) X(gelu, A, B) X(relu, A, B) X(abs, A, B) X(square, A, B)       \
  X(sign, A, B) X(recip, A, B) X(floor, A, B) X(silu_grad, A, B)               \
  X(gelu_grad, A, B) X(gelu_tanh, A, B) X(gelu_tanh_grad, A, B)

/* activations compiled into the fused layer kernels (cl/nn.cl) */
#define MF_ACTIVATIONS(X, A, B)                                                \
  X(none, A, B) X(silu, A, B) X(gelu, A, B) X(relu, A, B) X(tanh, A, B)        \
  X(gelu_tanh, A, B)

/* softmax row kernels' modes (cl/softmax.cl): the forward of softmax or
   log_softmax; the derivative of softmax (its Jacobian is symmetric: vjp and
   jvp are one formula), of log_softmax in reverse and in forward mode */
#define MF_SOFTMAX_MODES(X, A, B)                                              \
  X(softmax, A, B) X(log_softmax, A, B) X(softmax_d, A, B)                     \
  X(log_softmax_vjp, A, B) X(log_softmax_jvp, A, B)

/* diff_coef: coefficient functions of t or sigma (cl/diffusion.cl) */
#define MF_COEFS(X, A, B)                                                      \
  X(sit_c_in, A, B) X(sit_c_out, A, B) X(sit_c_skip, A, B)                     \
  X(sit_c_noise, A, B) X(edm_c_in, A, B) X(edm_c_out, A, B)                    \
  X(edm_c_skip, A, B) X(edm_c_noise, A, B) X(edm_weight, A, B)                 \
  X(t_shift, A, B) X(rf_alpha, A, B) X(rf_sigma, A, B)

/* rf_conv, rf_conv_ff: the rectified-flow conversions (cl/diffusion.cl) */
#define MF_RF_OPS(X, A, B)                                                     \
  X(add_noise, A, B) X(pred_noise_to_pred_x0, A, B) X(pred_x0_from_flow, A, B) \
  X(x0_to_eps, A, B) X(x0_to_flow, A, B)

/* diff_nt: the fused noising kernel's coefficient kinds (cl/diffusion.cl) */
#define MF_NT_KINDS(X, A, B) X(sit, A, B) X(edm, A, B) X(general, A, B)

/* diff_rowred: the per-row reduction's summand (cl/diffusion.cl) */
#define MF_ROWRED_MODES(X, A, B) X(sqerr, A, B) X(dot, A, B) X(square, A, B)

/* oracle_field: the Gaussian-mixture oracle's fields (cl/sampler.cl) */
#define MF_ORACLE_FIELDS(X, A, B) X(velocity, A, B) X(score, A, B) X(mean, A, B) X(raw, A, B)

#define MF_ENUM_ITEM(name, prefix, B) prefix##name,
enum mf_unary_op { MF_UNARY_OPS(MF_ENUM_ITEM, MF_UN_, _) MF_UN_COUNT };
enum mf_activation { MF_ACTIVATIONS(MF_ENUM_ITEM, MF_ACTIVATION_, _) MF_ACTIVATION_COUNT };
enum mf_coef { MF_COEFS(MF_ENUM_ITEM, MF_COEF_, _) MF_COEF_COUNT };
enum mf_rf_op { MF_RF_OPS(MF_ENUM_ITEM, MF_RF_, _) MF_RF_COUNT };
enum mf_nt_kind { MF_NT_KINDS(MF_ENUM_ITEM, MF_NT_, _) MF_NT_COUNT };
enum mf_rowred_mode { MF_ROWRED_MODES(MF_ENUM_ITEM, MF_ROWRED_, _) MF_ROWRED_COUNT };
enum mf_softmax_mode { MF_SOFTMAX_MODES(MF_ENUM_ITEM, MF_SOFTMAX_, _) MF_SOFTMAX_COUNT };
enum mf_oracle_field { MF_ORACLE_FIELDS(MF_ENUM_ITEM, MF_FIELD_, _) MF_FIELD_COUNT };

#endif
