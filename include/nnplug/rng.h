/* Counter-based random numbers (Philox4x32-10): the value at (key, counter)
 * depends on nothing else, so any thread may draw any element and a fill is
 * identical for every thread count. */
#ifndef NNPLUG_RNG_H
#define NNPLUG_RNG_H
#include "plugin.h"
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Four 32-bit words for (seed, counter). */
NNP_API void nnp_philox4x32(uint64_t seed, uint64_t counter, uint32_t out[4]);
/* Uniform in [0, 1) with 24 random bits (float) or 53 (double), element i of stream. */
NNP_API double nnp_rng_uniform(uint64_t seed, uint64_t i);
/* Standard normal, element i of stream (Box-Muller on counter pair). */
NNP_API double nnp_rng_normal(uint64_t seed, uint64_t i);
/* 64 random bits at element i. */
NNP_API uint64_t nnp_rng_u64(uint64_t seed, uint64_t i);
/* Mixes a seed with a name (for per-layer, per-weight streams). */
NNP_API uint64_t nnp_seed_mix(uint64_t seed, const char *name);

#ifdef __cplusplus
}
#endif
#endif
