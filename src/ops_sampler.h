/* Launchers of the fused sampler updates in cl/sampler.cl. Operands have the
   shape and dtype of x (checked here); non-contiguous ones are packed first.
   A NULL u means no guidance: the prediction is c itself. Each returns 0, or
   -1 with the error set; outputs are freshly allocated. */
#ifndef MF_OPS_SAMPLER_H
#define MF_OPS_SAMPLER_H

#include "kernel_names.h"
#include "tensor.h"

/* d = u ? u + s (c - u) : c; out = x + h d; when aux is given it receives d
   (aux_x == 0) or x + ha d (aux_x != 0). */
int mf_sampler_step(mf_tensor *out, mf_tensor *aux, int aux_x, const mf_tensor *x,
                    const mf_tensor *c, const mf_tensor *u, double h, double s, double ha);

/* d2 = u ? u + s (c - u) : c; out = x + (h / 2) (d1 + d2) */
int mf_sampler_heun(mf_tensor *out, const mf_tensor *x, const mf_tensor *d1, const mf_tensor *c,
                    const mf_tensor *u, double h, double s);

/* Euler-Maruyama: drift d = mix(vc - hw sc, vu - hw su); out = x + h d + nz z,
   z ~ N(0, 1) from Philox (seed, *offset), which advances past the counters
   used when nz != 0. vu and su are both given or both NULL. */
int mf_sampler_em(mf_tensor *out, const mf_tensor *x, const mf_tensor *vc, const mf_tensor *sc,
                  const mf_tensor *vu, const mf_tensor *su, double h, double hw, double s, double nz,
                  uint64_t seed, uint64_t *offset);

/* out = x + c z, z ~ N(0, 1) from Philox (seed, *offset) */
int mf_sampler_noise(mf_tensor *out, const mf_tensor *x, double c, uint64_t seed, uint64_t *offset);


/* The oracle's fused fields (cl/sampler.cl oracle_field): out {B, D} from
   x {B, D}, t {B}, labels y (i32 {B} or NULL), mixture constants mu {K, D},
   s2 {K}, logw {K}; field: velocity, score, mean (posterior mean / denoiser)
   or raw (EDM's network output with data std xs); edm != 0 selects the path
   x + t n. */
int mf_oracle_field(mf_tensor *out, const mf_tensor *x, const mf_tensor *t, const mf_tensor *y,
                    const mf_tensor *mu, const mf_tensor *s2, const mf_tensor *logw,
                    enum mf_oracle_field field, int edm, double xs);

#endif
