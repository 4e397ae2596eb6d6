/* Philox4x32-10 stream: known answer, distribution moments, determinism and
 * seed mixing. */
#include <criterion/criterion.h>

#include <math.h>
#include <string.h>

#include "nnplug/rng.h"

#define N 100000

/* Random123's kat_vectors: philox4x32 10 rounds, counter 0, key 0. */
Test(rng, philox_known_answer)
{
    uint32_t o[4];
    nnp_philox4x32(0, 0, o);
    cr_assert_eq(o[0], 0x6627e8d5u);
    cr_assert_eq(o[1], 0xe169c58du);
    cr_assert_eq(o[2], 0xbc57ac4cu);
    cr_assert_eq(o[3], 0x9b00dbd8u);
}

Test(rng, philox_is_a_pure_function)
{
    uint32_t a[4], b[4], c[4];
    nnp_philox4x32(42, 7, a);
    nnp_philox4x32(42, 8, c);
    nnp_philox4x32(42, 7, b);
    cr_assert(memcmp(a, b, sizeof a) == 0);
    cr_assert(memcmp(a, c, sizeof a) != 0);
    nnp_philox4x32(43, 7, c);
    cr_assert(memcmp(a, c, sizeof a) != 0);
    /* The high counter word matters too. */
    nnp_philox4x32(42, 7 + (UINT64_C(1) << 32), c);
    cr_assert(memcmp(a, c, sizeof a) != 0);
}

Test(rng, uniform_range_and_moments)
{
    double s = 0, s2 = 0, lo = 1, hi = 0;
    for (uint64_t i = 0; i < N; i++) {
        double u = nnp_rng_uniform(123, i);
        cr_assert(u >= 0.0 && u < 1.0, "u[%llu] = %.17g", (unsigned long long)i, u);
        s += u;
        s2 += u * u;
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
    }
    double mean = s / N, var = s2 / N - mean * mean;
    /* Standard errors: sqrt(1/12/N) for the mean, sqrt(1/180/N) for the
       variance; 5 sigma. */
    cr_assert_lt(fabs(mean - 0.5), 5 * sqrt(1.0 / 12 / N), "mean %g", mean);
    cr_assert_lt(fabs(var - 1.0 / 12), 5 * sqrt(1.0 / 180 / N), "var %g", var);
    cr_assert_lt(lo, 1e-3);
    cr_assert_gt(hi, 1 - 1e-3);
}

Test(rng, normal_moments_and_finite)
{
    double s = 0, s2 = 0, s4 = 0;
    int64_t within1 = 0;
    for (uint64_t i = 0; i < N; i++) {
        double z = nnp_rng_normal(7, i);
        cr_assert(isfinite(z));
        s += z;
        s2 += z * z;
        s4 += z * z * z * z;
        within1 += fabs(z) <= 1.0;
    }
    double mean = s / N, var = s2 / N - mean * mean;
    cr_assert_lt(fabs(mean), 5 * sqrt(1.0 / N), "mean %g", mean);
    cr_assert_lt(fabs(var - 1.0), 5 * sqrt(2.0 / N), "var %g", var);
    /* Fourth moment 3 (variance of z^4 is 105 - 9 = 96). */
    cr_assert_lt(fabs(s4 / N - 3.0), 5 * sqrt(96.0 / N), "m4 %g", s4 / N);
    double p = 0.682689492137086, frac = (double)within1 / N;
    cr_assert_lt(fabs(frac - p), 5 * sqrt(p * (1 - p) / N), "P(|z|<=1) %g", frac);
}

Test(rng, normal_deterministic_per_element)
{
    for (uint64_t i = 0; i < 100; i++) {
        cr_assert_eq(nnp_rng_normal(99, i), nnp_rng_normal(99, i));
        cr_assert_neq(nnp_rng_normal(99, i), nnp_rng_normal(100, i));
    }
}

Test(rng, u64_bits_balanced)
{
    int64_t ones = 0;
    const int n = 20000;
    for (uint64_t i = 0; i < (uint64_t)n; i++)
        ones += __builtin_popcountll(nnp_rng_u64(5, i));
    double frac = (double)ones / (64.0 * n);
    cr_assert_lt(fabs(frac - 0.5), 5 * sqrt(0.25 / (64.0 * n)), "ones fraction %g", frac);
    cr_assert_eq(nnp_rng_u64(5, 3), nnp_rng_u64(5, 3));
    cr_assert_neq(nnp_rng_u64(5, 3), nnp_rng_u64(5, 4));
}

/* Streams of neighbouring seeds must not be correlated. */
Test(rng, adjacent_seeds_uncorrelated)
{
    double sxy = 0;
    for (uint64_t i = 0; i < N; i++)
        sxy += nnp_rng_normal(1, i) * nnp_rng_normal(2, i);
    cr_assert_lt(fabs(sxy / N), 5 * sqrt(1.0 / N), "correlation %g", sxy / N);
}

Test(rng, seed_mix)
{
    uint64_t a = nnp_seed_mix(1, "kernel");
    cr_assert_eq(a, nnp_seed_mix(1, "kernel"));
    cr_assert_neq(a, nnp_seed_mix(1, "bias"));
    cr_assert_neq(a, nnp_seed_mix(2, "kernel"));
    cr_assert_neq(a, 1);
    cr_assert_eq(nnp_seed_mix(3, NULL), nnp_seed_mix(3, ""));
    cr_assert_neq(nnp_seed_mix(0, ""), 0);
    /* Roughly half the bits change between neighbouring seeds. */
    int d = __builtin_popcountll(nnp_seed_mix(10, "x") ^ nnp_seed_mix(11, "x"));
    cr_assert(d > 12 && d < 52, "%d bits differ", d);
}
