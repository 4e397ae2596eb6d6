/* Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel
 * random numbers: as easy as 1, 2, 3", SC'11), the generator of Random123,
 * cuRAND and JAX.
 *
 * Why counter-based: a value is a pure function of (seed, counter), so a fill
 * parallelized over elements gives the same tensor for every thread count and
 * needs no shared generator state. Element i of a stream is counter i. */
#include "nnplug/rng.h"

#include <math.h>

/* Philox constants: round multipliers and Weyl key increments. */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline uint32_t mulhilo32(uint32_t a, uint32_t b, uint32_t *hi)
{
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

/* The 64-bit seed is the 2x32 key and the 64-bit counter the low half of the
 * 4x32 counter (upper words zero), matching Random123's word order. */
void nnp_philox4x32(uint64_t seed, uint64_t counter, uint32_t out[4])
{
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = mulhilo32(PHILOX_M0, c0, &hi0);
        uint32_t lo1 = mulhilo32(PHILOX_M1, c2, &hi1);
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

static inline double u53(uint32_t hi, uint32_t lo)
{
    uint64_t bits = (((uint64_t)hi << 32) | lo) >> 11;
    return (double)bits * 0x1p-53;
}

uint64_t nnp_rng_u64(uint64_t seed, uint64_t i)
{
    uint32_t w[4];
    nnp_philox4x32(seed, i, w);
    return ((uint64_t)w[0] << 32) | w[1];
}

double nnp_rng_uniform(uint64_t seed, uint64_t i)
{
    uint32_t w[4];
    nnp_philox4x32(seed, i, w);
    return u53(w[0], w[1]);
}

/* Box-Muller on the two 53-bit uniforms of one counter. u1 is shifted to
 * (0, 1] so log(u1) is finite: |z| <= sqrt(-2 log 2^-53) ~ 8.57. */
double nnp_rng_normal(uint64_t seed, uint64_t i)
{
    uint32_t w[4];
    nnp_philox4x32(seed, i, w);
    double u1 = 1.0 - u53(w[0], w[1]);
    double u2 = u53(w[2], w[3]);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}

/* splitmix64 finalizer: a bijective avalanche of 64 bits. */
static inline uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* FNV-1a of the name, combined with the avalanched seed and avalanched again,
 * so nearby seeds and similar names give unrelated keys. */
uint64_t nnp_seed_mix(uint64_t seed, const char *name)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (const unsigned char *p = (const unsigned char *)(name ? name : ""); *p; p++) {
        h ^= *p;
        h *= 0x100000001B3ull;
    }
    return splitmix64(splitmix64(seed) ^ h);
}
