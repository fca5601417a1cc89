/* Launchers of cl/random.cl: Philox draws into contiguous out; *offset
   advances past the counters used. */
#ifndef MF_OPS_RANDOM_H
#define MF_OPS_RANDOM_H

#include "tensor.h"

int mf_rand_uniform(mf_tensor *out, uint64_t seed, uint64_t *offset, double lo, double hi);
int mf_rand_normal(mf_tensor *out, uint64_t seed, uint64_t *offset, double mean, double std);
int mf_rand_int(mf_tensor *out, uint64_t seed, uint64_t *offset, int32_t lo, int32_t hi);

#endif
