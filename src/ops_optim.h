/* Optimizer launchers over flat, contiguous buffers of equal length and
   dtype. `ss` (nullable) is a one-element tensor holding the sum of squared
   gradients; when given, gradients are scaled by min(1, max_norm / (sqrt(ss) + 1e-6))
   inside the update (clipping by global norm without a host read). */
#ifndef MF_OPS_OPTIM_H
#define MF_OPS_OPTIM_H

#include "tensor.h"

typedef struct {
  double lr, beta1, beta2, eps, weight_decay;
  double bc1, bc2; /* 1 - beta^t, computed by the caller */
} mf_adamw_hp;

int mf_adamw(mf_tensor *p, const mf_tensor *g, mf_tensor *m, mf_tensor *v, const mf_adamw_hp *hp,
             const mf_tensor *ss, double max_norm);

typedef struct {
  double lr, momentum, dampening, weight_decay;
  int nesterov, first; /* first: the momentum buffer starts as the gradient */
} mf_sgd_hp;

/* buf may be NULL when momentum == 0 */
int mf_sgd(mf_tensor *p, const mf_tensor *g, mf_tensor *buf, const mf_sgd_hp *hp, const mf_tensor *ss,
           double max_norm);

/* shadow = decay shadow + (1 - decay) p */
int mf_ema(mf_tensor *shadow, const mf_tensor *p, double decay);

/* g *= min(1, max_norm / (sqrt(ss) + 1e-6)) */
int mf_clip_scale(mf_tensor *g, const mf_tensor *ss, double max_norm);

#endif
