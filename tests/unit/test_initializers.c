/* Keras initializers: exact constants, distribution moments (tolerances are
 * 5 standard errors of 10^5-element fills), fans, Orthogonal/Identity
 * structure, seeding, thread-count independence, parsing and to_json. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nnplug/rng.h"
#include "nnplug/services.h"
#include "nnplug/status.h"
#include "nnplug/tensor.h"

static nnp_initializer *parse_ok(const char *json)
{
    nnp_error e = {0};
    nnp_initializer *in = NULL;
    nnp_status st = nnp_initializer_parse(json, &in, &e);
    cr_assert_eq(st, NNP_OK, "parsing %s: %s", json, e.msg);
    cr_assert_not_null(in);
    return in;
}

/* Parsing fails with `code` and a message containing every needle. */
static void parse_fails(const char *json, nnp_status code, const char *needle1,
                        const char *needle2)
{
    nnp_error e = {0};
    nnp_initializer *in = (nnp_initializer *)&e;   /* must be reset to NULL */
    nnp_status st = nnp_initializer_parse(json, &in, &e);
    cr_assert_eq(st, code, "parsing %s: got status %d (%s)", json, st, e.msg);
    cr_assert_null(in, "%s", json);
    cr_assert_eq(e.code, code);
    if (needle1)
        cr_assert_not_null(strstr(e.msg, needle1), "'%s' not in message '%s'", needle1, e.msg);
    if (needle2)
        cr_assert_not_null(strstr(e.msg, needle2), "'%s' not in message '%s'", needle2, e.msg);
}

static void alloc_f32(nnp_tensor *t, int rank, const int64_t *dims)
{
    nnp_shape s;
    nnp_error e = {0};
    cr_assert_eq(nnp_shape_make(&s, rank, dims, &e), NNP_OK, "%s", e.msg);
    cr_assert_eq(nnp_tensor_alloc(t, NNP_F32, &s, &e), NNP_OK, "%s", e.msg);
}

/* Fills a new tensor of the given shape with the initializer `json`. */
static float *fill(const char *json, int rank, const int64_t *dims, uint64_t seed,
                   nnp_tensor *t)
{
    nnp_initializer *in = parse_ok(json);
    nnp_error e = {0};
    alloc_f32(t, rank, dims);
    nnp_status st = nnp_initializer_fill(in, t, seed, &e);
    cr_assert_eq(st, NNP_OK, "filling with %s: %s", json, e.msg);
    nnp_initializer_free(in);
    return t->data;
}

/* Sample mean and variance are within 5 standard errors of the expected
 * values. The variance's standard error sqrt((m4 - var^2)/n) is estimated
 * from the sample's fourth central moment, valid for any distribution. */
static void check_moments(const char *what, const float *w, int64_t n, double exp_mean,
                          double exp_var)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += w[i];
    double mean = s / (double)n, m2 = 0, m4 = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = w[i] - mean;
        m2 += d * d;
        m4 += d * d * d * d;
    }
    m2 /= (double)n;
    m4 /= (double)n;
    double se_mean = sqrt(exp_var / (double)n);
    double se_var = sqrt((m4 - m2 * m2) / (double)n);
    cr_assert_lt(fabs(mean - exp_mean), 5 * se_mean + 1e-12, "%s: mean %g, expected %g (se %g)",
                 what, mean, exp_mean, se_mean);
    cr_assert_lt(fabs(m2 - exp_var), 5 * se_var + 1e-12, "%s: variance %g, expected %g (se %g)",
                 what, m2, exp_var, se_var);
}

static void check_range(const char *what, const float *w, int64_t n, double lo, double hi)
{
    double slack = 1e-6 * (fabs(lo) + fabs(hi));   /* float rounding */
    for (int64_t i = 0; i < n; i++)
        cr_assert(w[i] >= lo - slack && w[i] <= hi + slack, "%s: w[%lld] = %g outside [%g, %g]",
                  what, (long long)i, w[i], lo, hi);
}

#define N 100000
static const int64_t D_FLAT[] = {N};
static const int64_t D_DENSE[] = {300, 400};
static const int64_t D_CONV[] = {3, 3, 16, 32};

/* Variance of a unit normal truncated to [-2, 2]. */
#define TRUNC_VAR 0.77374130397

/* ------------------------------------------------------------------ */
/* Constants                                                           */
/* ------------------------------------------------------------------ */

Test(initializers, zeros_ones_constant_exact)
{
    nnp_tensor t;
    const int64_t d[] = {3, 5};
    float *w = fill("\"zeros\"", 2, d, 1, &t);
    for (int i = 0; i < 15; i++)
        cr_assert_eq(w[i], 0.0f);
    nnp_tensor_free(&t);
    w = fill("\"Ones\"", 2, d, 1, &t);
    for (int i = 0; i < 15; i++)
        cr_assert_eq(w[i], 1.0f);
    nnp_tensor_free(&t);
    w = fill("{\"class_name\": \"Constant\", \"config\": {\"value\": -2.5}}", 2, d, 1, &t);
    for (int i = 0; i < 15; i++)
        cr_assert_eq(w[i], -2.5f);
    nnp_tensor_free(&t);
    w = fill("\"constant\"", 2, d, 1, &t);   /* Keras default value 0 */
    for (int i = 0; i < 15; i++)
        cr_assert_eq(w[i], 0.0f);
    nnp_tensor_free(&t);
    /* Rank-0 and empty tensors. */
    w = fill("{\"class_name\": \"Constant\", \"config\": {\"value\": 7}}", 0, NULL, 1, &t);
    cr_assert_eq(w[0], 7.0f);
    nnp_tensor_free(&t);
    const int64_t e[] = {0, 4};
    fill("\"ones\"", 2, e, 1, &t);
    nnp_tensor_free(&t);
}

/* ------------------------------------------------------------------ */
/* Plain distributions                                                 */
/* ------------------------------------------------------------------ */

Test(initializers, random_normal_default_and_custom)
{
    nnp_tensor t;
    float *w = fill("\"random_normal\"", 1, D_FLAT, 11, &t);
    check_moments("RandomNormal()", w, N, 0.0, 0.05 * 0.05);
    nnp_tensor_free(&t);
    w = fill("{\"class_name\": \"RandomNormal\", \"config\": {\"mean\": 1.5, \"stddev\": 2}}", 1,
             D_FLAT, 12, &t);
    check_moments("RandomNormal(1.5, 2)", w, N, 1.5, 4.0);
    nnp_tensor_free(&t);
    /* stddev 0 is allowed and gives the mean. */
    w = fill("{\"class_name\": \"RandomNormal\", \"config\": {\"mean\": 3, \"stddev\": 0}}", 1,
             D_FLAT, 12, &t);
    for (int i = 0; i < N; i++)
        cr_assert_eq(w[i], 3.0f);
    nnp_tensor_free(&t);
}

Test(initializers, random_uniform_bounds_and_moments)
{
    nnp_tensor t;
    float *w = fill("\"RandomUniform\"", 1, D_FLAT, 21, &t);
    check_range("RandomUniform()", w, N, -0.05, 0.05);
    check_moments("RandomUniform()", w, N, 0.0, 0.1 * 0.1 / 12);
    nnp_tensor_free(&t);
    w = fill("{\"class_name\": \"RandomUniform\", \"config\": {\"minval\": -1, \"maxval\": 3}}",
             1, D_FLAT, 22, &t);
    check_range("RandomUniform(-1, 3)", w, N, -1, 3);
    check_moments("RandomUniform(-1, 3)", w, N, 1.0, 16.0 / 12);
    float lo = 1e9f, hi = -1e9f;
    for (int i = 0; i < N; i++) {
        lo = w[i] < lo ? w[i] : lo;
        hi = w[i] > hi ? w[i] : hi;
    }
    cr_assert_lt(lo, -0.99f);   /* covers the whole range */
    cr_assert_gt(hi, 2.99f);
    nnp_tensor_free(&t);
}

Test(initializers, truncated_normal_bounds_and_variance)
{
    nnp_tensor t;
    float *w = fill("\"truncated_normal\"", 1, D_FLAT, 31, &t);
    check_range("TruncatedNormal()", w, N, -0.1, 0.1);
    check_moments("TruncatedNormal()", w, N, 0.0, 0.05 * 0.05 * TRUNC_VAR);
    nnp_tensor_free(&t);
    w = fill("{\"class_name\": \"TruncatedNormal\", \"config\": {\"mean\": -1, \"stddev\": 0.5,"
             " \"seed\": null}}", 1, D_FLAT, 32, &t);
    check_range("TruncatedNormal(-1, 0.5)", w, N, -2, 0);
    check_moments("TruncatedNormal(-1, 0.5)", w, N, -1.0, 0.25 * TRUNC_VAR);
    /* Values near the cut are drawn: the range is really used. */
    int near = 0;
    for (int i = 0; i < N; i++)
        near += fabsf(w[i] + 1.0f) > 0.95f;
    cr_assert_gt(near, 100);
    nnp_tensor_free(&t);
}

/* ------------------------------------------------------------------ */
/* Fans and VarianceScaling                                            */
/* ------------------------------------------------------------------ */

static void fans(int rank, const int64_t *dims, double *in, double *out)
{
    nnp_shape s;
    cr_assert_eq(nnp_shape_make(&s, rank, dims, NULL), NNP_OK);
    nnp_compute_fans(&s, in, out);
}

Test(initializers, compute_fans_like_keras)
{
    double in, out;
    fans(0, NULL, &in, &out);
    cr_assert(in == 1 && out == 1);
    const int64_t d1[] = {7};
    fans(1, d1, &in, &out);
    cr_assert(in == 7 && out == 7);
    fans(2, D_DENSE, &in, &out);
    cr_assert(in == 300 && out == 400);
    fans(4, D_CONV, &in, &out);
    cr_assert(in == 3 * 3 * 16 && out == 3 * 3 * 32, "fans %g %g", in, out);
    const int64_t d3[] = {5, 4, 6};   /* Conv1D kernel */
    fans(3, d3, &in, &out);
    cr_assert(in == 20 && out == 30);
}

/* Expected variance scale / max(1, n) for every mode and distribution. */
static void check_vs(const int64_t *dims, int rank, double fan_in, double fan_out)
{
    static const char *modes[] = {"fan_in", "fan_out", "fan_avg"};
    static const char *dists[] = {"truncated_normal", "untruncated_normal", "uniform", "normal"};
    const double scale = 2.5;
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dims[i];
    for (int m = 0; m < 3; m++)
        for (int d = 0; d < 4; d++) {
            double fan = m == 0 ? fan_in : m == 1 ? fan_out : (fan_in + fan_out) / 2;
            double var = scale / fan;
            char json[256], what[128];
            snprintf(json, sizeof json,
                     "{\"class_name\": \"VarianceScaling\", \"config\": {\"scale\": %g, "
                     "\"mode\": \"%s\", \"distribution\": \"%s\", \"seed\": null}}",
                     scale, modes[m], dists[d]);
            snprintf(what, sizeof what, "VarianceScaling(%s, %s) on rank %d", modes[m], dists[d],
                     rank);
            nnp_tensor t;
            float *w = fill(json, rank, dims, (uint64_t)(100 + 10 * m + d), &t);
            check_moments(what, w, n, 0.0, var);
            if (d == 2)
                check_range(what, w, n, -sqrt(3 * var), sqrt(3 * var));
            else if (d != 1)   /* truncated: within 2 stddev of the normal drawn */
                check_range(what, w, n, -2 * sqrt(var) / 0.87962566103423978,
                            2 * sqrt(var) / 0.87962566103423978);
            nnp_tensor_free(&t);
        }
}

Test(initializers, variance_scaling_dense)
{
    check_vs(D_DENSE, 2, 300, 400);
}

Test(initializers, variance_scaling_conv)
{
    check_vs(D_CONV, 4, 144, 288);
}

Test(initializers, variance_scaling_defaults)
{
    /* scale 1, fan_in, truncated_normal. */
    nnp_tensor t;
    float *w = fill("\"variance_scaling\"", 2, D_DENSE, 5, &t);
    check_moments("VarianceScaling()", w, 300 * 400, 0.0, 1.0 / 300);
    check_range("VarianceScaling()", w, 300 * 400, -2 * sqrt(1.0 / 300) / 0.87962566103423978,
                2 * sqrt(1.0 / 300) / 0.87962566103423978);
    nnp_tensor_free(&t);
}

Test(initializers, presets_glorot_he_lecun)
{
    static const struct {
        const char *name;
        double scale;
        int mode;      /* 0 fan_in, 2 fan_avg */
        int uniform;
    } P[] = {
        {"glorot_normal", 1, 2, 0}, {"GlorotUniform", 1, 2, 1}, {"he_normal", 2, 0, 0},
        {"HeUniform", 2, 0, 1},     {"lecun_normal", 1, 0, 0},  {"LecunUniform", 1, 0, 1},
    };
    for (size_t k = 0; k < sizeof P / sizeof P[0]; k++) {
        for (int shape = 0; shape < 2; shape++) {
            const int64_t *dims = shape ? D_CONV : D_DENSE;
            int rank = shape ? 4 : 2;
            int64_t n = shape ? 3 * 3 * 16 * 32 : 300 * 400;
            double fi = shape ? 144 : 300, fo = shape ? 288 : 400;
            double var = P[k].scale / (P[k].mode == 0 ? fi : (fi + fo) / 2);
            char json[64];
            snprintf(json, sizeof json, "\"%s\"", P[k].name);
            nnp_tensor t;
            float *w = fill(json, rank, dims, 40 + k, &t);
            check_moments(P[k].name, w, n, 0.0, var);
            if (P[k].uniform)
                check_range(P[k].name, w, n, -sqrt(3 * var), sqrt(3 * var));
            else
                check_range(P[k].name, w, n, -2 * sqrt(var) / 0.87962566103423978,
                            2 * sqrt(var) / 0.87962566103423978);
            nnp_tensor_free(&t);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Orthogonal and Identity                                             */
/* ------------------------------------------------------------------ */

/* The flattened (rows x cols) weight has orthonormal columns (rows >= cols)
 * or rows (rows < cols), scaled by gain. */
static void check_orthogonal(int rank, const int64_t *dims, double gain, uint64_t seed)
{
    char json[128];
    snprintf(json, sizeof json, "{\"class_name\": \"Orthogonal\", \"config\": {\"gain\": %g}}",
             gain);
    nnp_tensor t;
    float *w = fill(json, rank, dims, seed, &t);
    int64_t cols = dims[rank - 1], rows = 1;
    for (int i = 0; i < rank - 1; i++)
        rows *= dims[i];
    int tall = rows >= cols;
    int64_t k = tall ? cols : rows, len = tall ? rows : cols;
    for (int64_t a = 0; a < k; a++)
        for (int64_t b = 0; b < k; b++) {
            double g = 0;
            for (int64_t i = 0; i < len; i++) {
                double x = tall ? w[i * cols + a] : w[a * cols + i];
                double y = tall ? w[i * cols + b] : w[b * cols + i];
                g += x * y;
            }
            double want = a == b ? gain * gain : 0.0;
            cr_assert_lt(fabs(g - want), 1e-5 * gain * gain,
                         "orthogonal rank %d: gram[%lld][%lld] = %.9g, want %g", rank,
                         (long long)a, (long long)b, g, want);
        }
    nnp_tensor_free(&t);
}

Test(initializers, orthogonal_shapes_and_gain)
{
    const int64_t tall[] = {64, 32}, wide[] = {32, 64}, sq[] = {16, 16}, conv[] = {3, 3, 8, 8};
    const int64_t conv_wide[] = {2, 3, 40};
    check_orthogonal(2, tall, 1.0, 1);
    check_orthogonal(2, wide, 1.0, 2);
    check_orthogonal(2, sq, 1.0, 3);
    check_orthogonal(4, conv, 1.0, 4);
    check_orthogonal(3, conv_wide, 1.0, 5);
    check_orthogonal(2, tall, 2.0, 6);
    check_orthogonal(2, wide, 0.5, 7);
}

/* Keras's recipe pins Q down: a = the max(r,c) x min(r,c) matrix of stream
 * normals, a = Q R with diag(R) > 0, weight = Q (or Q^T when rows < cols).
 * So R = Q^T a must be upper triangular with a positive diagonal. */
static void check_orthogonal_is_keras_q(int64_t rows, int64_t cols, uint64_t seed)
{
    const int64_t d[] = {rows, cols};
    nnp_tensor t;
    float *w = fill("\"orthogonal\"", 2, d, seed, &t);
    int tall = rows >= cols;
    int64_t m = tall ? rows : cols, k = tall ? cols : rows;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) {
            double r = 0;   /* (Q^T a)[i][j] */
            for (int64_t p = 0; p < m; p++) {
                double q = tall ? w[p * cols + i] : w[i * cols + p];
                r += q * nnp_rng_normal(seed, (uint64_t)(p * k + j));
            }
            if (i > j)
                cr_assert_lt(fabs(r), 1e-5, "R[%lld][%lld] = %g", (long long)i, (long long)j, r);
            if (i == j)
                cr_assert_gt(r, 1e-3, "R[%lld][%lld] = %g", (long long)i, (long long)j, r);
        }
    nnp_tensor_free(&t);
}

Test(initializers, orthogonal_follows_keras_qr)
{
    check_orthogonal_is_keras_q(12, 5, 3);
    check_orthogonal_is_keras_q(5, 12, 4);
    check_orthogonal_is_keras_q(7, 7, 5);
}

Test(initializers, orthogonal_entries_look_random)
{
    /* Columns of a Haar orthogonal 200x100 Q have entries of variance
       1/200; a degenerate Q (e.g. the identity) would not. */
    const int64_t d[] = {200, 100};
    nnp_tensor t;
    float *w = fill("\"orthogonal\"", 2, d, 9, &t);
    check_moments("Orthogonal entries", w, 20000, 0.0, 1.0 / 200);
    nnp_tensor_free(&t);
}

Test(initializers, orthogonal_rank1_is_error)
{
    nnp_initializer *in = parse_ok("\"Orthogonal\"");
    nnp_tensor t;
    const int64_t d[] = {8};
    alloc_f32(&t, 1, d);
    nnp_error e = {0};
    cr_assert_neq(nnp_initializer_fill(in, &t, 1, &e), NNP_OK);
    cr_assert_not_null(strstr(e.msg, "Orthogonal"), "%s", e.msg);
    cr_assert_not_null(strstr(e.msg, "rank"), "%s", e.msg);
    nnp_tensor_free(&t);
    nnp_initializer_free(in);
}

Test(initializers, identity)
{
    nnp_tensor t;
    const int64_t wide[] = {3, 4}, tall[] = {4, 3};
    float *w = fill("{\"class_name\": \"Identity\", \"config\": {\"gain\": 2}}", 2, wide, 1, &t);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++)
            cr_assert_eq(w[r * 4 + c], r == c ? 2.0f : 0.0f);
    nnp_tensor_free(&t);
    w = fill("\"identity\"", 2, tall, 1, &t);
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 3; c++)
            cr_assert_eq(w[r * 3 + c], r == c ? 1.0f : 0.0f);
    nnp_tensor_free(&t);

    nnp_initializer *in = parse_ok("\"Identity\"");
    const int64_t d3[] = {2, 2, 2};
    alloc_f32(&t, 3, d3);
    nnp_error e = {0};
    cr_assert_eq(nnp_initializer_fill(in, &t, 1, &e), NNP_ERR_SHAPE);
    cr_assert_not_null(strstr(e.msg, "Identity"), "%s", e.msg);
    nnp_tensor_free(&t);
    nnp_initializer_free(in);
}

/* ------------------------------------------------------------------ */
/* Seeds and threads                                                   */
/* ------------------------------------------------------------------ */

static const char *RANDOM_SPECS[] = {
    "\"random_normal\"", "\"random_uniform\"", "\"truncated_normal\"", "\"glorot_uniform\"",
    "\"he_normal\"",     "\"lecun_normal\"",   "\"orthogonal\"",
};
#define N_RANDOM (sizeof RANDOM_SPECS / sizeof RANDOM_SPECS[0])

Test(initializers, seeded_determinism)
{
    const int64_t d[] = {60, 50};
    for (size_t k = 0; k < N_RANDOM; k++) {
        nnp_tensor a, b, c;
        fill(RANDOM_SPECS[k], 2, d, 1234, &a);
        fill(RANDOM_SPECS[k], 2, d, 1234, &b);
        fill(RANDOM_SPECS[k], 2, d, 1235, &c);
        cr_assert(memcmp(a.data, b.data, a.nbytes) == 0, "%s: same seed differs", RANDOM_SPECS[k]);
        cr_assert(memcmp(a.data, c.data, a.nbytes) != 0, "%s: seeds agree", RANDOM_SPECS[k]);
        nnp_tensor_free(&a);
        nnp_tensor_free(&b);
        nnp_tensor_free(&c);
    }
}

Test(initializers, own_seed_wins)
{
    const char *spec = "{\"class_name\": \"RandomNormal\", \"config\": {\"seed\": 77}}";
    const int64_t d[] = {1000};
    nnp_tensor a, b, c;
    fill(spec, 1, d, 1, &a);
    fill(spec, 1, d, 2, &b);
    fill("\"random_normal\"", 1, d, 77, &c);
    cr_assert(memcmp(a.data, b.data, a.nbytes) == 0);
    cr_assert(memcmp(a.data, c.data, a.nbytes) == 0);
    nnp_tensor_free(&a);
    nnp_tensor_free(&b);
    nnp_tensor_free(&c);
}

Test(initializers, element_i_depends_only_on_seed_and_i)
{
    /* A prefix of a larger fill equals the smaller fill. */
    const int64_t small[] = {100}, big[] = {N};
    nnp_tensor a, b;
    fill("\"truncated_normal\"", 1, small, 5, &a);
    fill("\"truncated_normal\"", 1, big, 5, &b);
    cr_assert(memcmp(a.data, b.data, a.nbytes) == 0);
    nnp_tensor_free(&a);
    nnp_tensor_free(&b);
}

Test(initializers, same_values_for_any_thread_count)
{
    const int64_t big[] = {400, 300};
    for (size_t k = 0; k < N_RANDOM; k++) {
        nnp_tensor a, b, c;
        omp_set_num_threads(1);
        fill(RANDOM_SPECS[k], 2, big, 99, &a);
        omp_set_num_threads(2);
        fill(RANDOM_SPECS[k], 2, big, 99, &b);
        omp_set_num_threads(3);
        fill(RANDOM_SPECS[k], 2, big, 99, &c);
        cr_assert(memcmp(a.data, b.data, a.nbytes) == 0, "%s: 1 vs 2 threads", RANDOM_SPECS[k]);
        cr_assert(memcmp(a.data, c.data, a.nbytes) == 0, "%s: 1 vs 3 threads", RANDOM_SPECS[k]);
        nnp_tensor_free(&a);
        nnp_tensor_free(&b);
        nnp_tensor_free(&c);
    }
}

Test(initializers, fill_rejects_non_float32)
{
    nnp_initializer *in = parse_ok("\"zeros\"");
    nnp_tensor t;
    nnp_shape s;
    const int64_t d[] = {4};
    nnp_shape_make(&s, 1, d, NULL);
    cr_assert_eq(nnp_tensor_alloc(&t, NNP_F64, &s, NULL), NNP_OK);
    nnp_error e = {0};
    cr_assert_eq(nnp_initializer_fill(in, &t, 1, &e), NNP_ERR_UNSUPPORTED);
    cr_assert_not_null(strstr(e.msg, "float32"), "%s", e.msg);
    cr_assert_not_null(strstr(e.msg, "float64"), "%s", e.msg);
    cr_assert_eq(nnp_initializer_fill(NULL, &t, 1, &e), NNP_ERR_INVALID);
    nnp_tensor_free(&t);
    nnp_initializer_free(in);
}

/* ------------------------------------------------------------------ */
/* Parsing                                                             */
/* ------------------------------------------------------------------ */

static void expect_class(const char *json, const char *cls)
{
    nnp_initializer *in = parse_ok(json);
    cr_assert_str_eq(nnp_initializer_class(in), cls, "%s", json);
    nnp_initializer_free(in);
}

Test(initializers, every_spelling)
{
    static const char *pairs[][2] = {
        {"\"zeros\"", "Zeros"},
        {"\"Zeros\"", "Zeros"},
        {"\"zero\"", "Zeros"},
        {"\"ones\"", "Ones"},
        {"\"one\"", "Ones"},
        {"\"constant\"", "Constant"},
        {"\"random_normal\"", "RandomNormal"},
        {"\"RandomNormal\"", "RandomNormal"},
        {"\"normal\"", "RandomNormal"},
        {"\"randomUniform\"", "RandomUniform"},
        {"\"uniform\"", "RandomUniform"},
        {"\"truncated_normal\"", "TruncatedNormal"},
        {"\"TruncatedNormal\"", "TruncatedNormal"},
        {"\"variance_scaling\"", "VarianceScaling"},
        {"\"glorot_normal\"", "GlorotNormal"},
        {"\"glorot_uniform\"", "GlorotUniform"},
        {"\"GlorotUniform\"", "GlorotUniform"},
        {"\"glorotUniform\"", "GlorotUniform"},
        {"\"he_normal\"", "HeNormal"},
        {"\"HeUniform\"", "HeUniform"},
        {"\"lecun_normal\"", "LecunNormal"},
        {"\"LeCunUniform\"", "LecunUniform"},
        {"\"orthogonal\"", "Orthogonal"},
        {"\"OrthogonalInitializer\"", "Orthogonal"},
        {"\"identity\"", "Identity"},
        {"\"IdentityInitializer\"", "Identity"},
        {"glorot_uniform", "GlorotUniform"},   /* bare name, not JSON */
        {"{\"class_name\": \"HeNormal\", \"config\": {\"seed\": 3}}", "HeNormal"},
        {"{\"class_name\": \"he_normal\", \"config\": {}}", "HeNormal"},
        {"{\"class_name\": \"Zeros\"}", "Zeros"},
        {"{\"module\": \"keras.initializers\", \"class_name\": \"GlorotUniform\", "
         "\"config\": {\"seed\": null}, \"registered_name\": null}", "GlorotUniform"},
        {"{\"class_name\": \"GlorotUniform\", \"config\": {\"seed\": null, \"dtype\": "
         "\"float32\"}}", "GlorotUniform"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        expect_class(pairs[i][0], pairs[i][1]);
}

Test(initializers, camel_case_keys_and_values)
{
    /* tfjs spells VarianceScaling's mode and distribution in camelCase. */
    nnp_initializer *in = parse_ok(
        "{\"className\": \"VarianceScaling\", \"config\": {\"scale\": 2, \"mode\": \"fanOut\","
        " \"distribution\": \"truncatedNormal\", \"seed\": 4}}");
    char *s = nnp_initializer_to_json(in);
    cr_assert_str_eq(s, "{\"class_name\":\"VarianceScaling\",\"config\":{\"distribution\":"
                        "\"truncated_normal\",\"mode\":\"fan_out\",\"scale\":2.0,\"seed\":4}}");
    free(s);
    nnp_initializer_free(in);
    /* "normal" is TF1's name for the truncated normal. */
    in = parse_ok("{\"class_name\": \"VarianceScaling\", \"config\": {\"distribution\": "
                  "\"normal\"}}");
    s = nnp_initializer_to_json(in);
    cr_assert_not_null(strstr(s, "\"truncated_normal\""), "%s", s);
    free(s);
    nnp_initializer_free(in);
}

Test(initializers, parse_errors)
{
    parse_fails("\"glorot_unifrom\"", NNP_ERR_NOT_FOUND, "glorot_unifrom", "initializer");
    parse_fails("{\"class_name\": \"Xavier\", \"config\": {}}", NNP_ERR_NOT_FOUND, "'Xavier'", NULL);
    parse_fails("{\"class_name\": \"RandomNormal\", \"config\": {\"stdev\": 1}}", NNP_ERR_INVALID,
                "RandomNormal", "unknown argument 'stdev'");
    parse_fails("{\"class_name\": \"GlorotUniform\", \"config\": {\"scale\": 1}}",
                NNP_ERR_INVALID, "GlorotUniform", "'scale'");
    parse_fails("{\"class_name\": \"Zeros\", \"config\": {\"value\": 1}}", NNP_ERR_INVALID,
                "'value'", NULL);
    /* wrong types */
    parse_fails("{\"class_name\": \"RandomNormal\", \"config\": {\"stddev\": \"big\"}}",
                NNP_ERR_INVALID, "'stddev'", "number");
    parse_fails("{\"class_name\": \"RandomNormal\", \"config\": {\"mean\": true}}",
                NNP_ERR_INVALID, "'mean'", NULL);
    parse_fails("{\"class_name\": \"RandomNormal\", \"config\": {\"seed\": 1.5}}",
                NNP_ERR_INVALID, "'seed'", NULL);
    parse_fails("{\"class_name\": \"HeNormal\", \"config\": {\"seed\": \"1\"}}", NNP_ERR_INVALID,
                "'seed'", NULL);
    parse_fails("{\"class_name\": \"VarianceScaling\", \"config\": {\"mode\": 1}}",
                NNP_ERR_INVALID, "'mode'", NULL);
    parse_fails("{\"class_name\": 3}", NNP_ERR_INVALID, "class_name", NULL);
    parse_fails("{\"class_name\": \"Zeros\", \"config\": []}", NNP_ERR_INVALID, "config", NULL);
    parse_fails("{\"config\": {}}", NNP_ERR_INVALID, "class_name", NULL);
    parse_fails("{\"class_name\": \"Zeros\", \"extra\": 1}", NNP_ERR_INVALID, "'extra'", NULL);
    parse_fails("{\"class_name\": \"Zeros\", \"config\": {\"dtype\": \"float64\"}}",
                NNP_ERR_INVALID, "dtype", NULL);
    parse_fails("12", NNP_ERR_INVALID, "initializer", NULL);
    parse_fails("null", NNP_ERR_INVALID, "initializer", NULL);
    parse_fails("{\"class_name\": ", NNP_ERR_INVALID, "invalid JSON", NULL);
    parse_fails("", NNP_ERR_INVALID, "initializer", NULL);
    /* ranges */
    parse_fails("{\"class_name\": \"RandomNormal\", \"config\": {\"stddev\": -1}}",
                NNP_ERR_INVALID, "stddev", NULL);
    parse_fails("{\"class_name\": \"TruncatedNormal\", \"config\": {\"stddev\": -0.1}}",
                NNP_ERR_INVALID, "stddev", NULL);
    parse_fails("{\"class_name\": \"RandomUniform\", \"config\": {\"minval\": 1, \"maxval\": 0}}",
                NNP_ERR_INVALID, "minval", "maxval");
    parse_fails("{\"class_name\": \"VarianceScaling\", \"config\": {\"scale\": 0}}",
                NNP_ERR_INVALID, "scale", NULL);
    parse_fails("{\"class_name\": \"VarianceScaling\", \"config\": {\"scale\": -2}}",
                NNP_ERR_INVALID, "scale", NULL);
    parse_fails("{\"class_name\": \"VarianceScaling\", \"config\": {\"mode\": \"fan_sum\"}}",
                NNP_ERR_INVALID, "fan_sum", NULL);
    parse_fails("{\"class_name\": \"VarianceScaling\", \"config\": {\"distribution\": "
                "\"poisson\"}}", NNP_ERR_INVALID, "poisson", NULL);
    /* the same argument in two spellings */
    parse_fails("{\"class_name\": \"RandomUniform\", \"config\": {\"minval\": 0, \"Minval\": 0}}",
                NNP_ERR_INVALID, "minval", "twice");
}

/* ------------------------------------------------------------------ */
/* to_json                                                             */
/* ------------------------------------------------------------------ */

Test(initializers, canonical_json)
{
    static const char *pairs[][2] = {
        {"\"glorot_uniform\"", "{\"class_name\":\"GlorotUniform\",\"config\":{\"seed\":null}}"},
        {"\"zeros\"", "{\"class_name\":\"Zeros\",\"config\":{}}"},
        {"\"constant\"", "{\"class_name\":\"Constant\",\"config\":{\"value\":0.0}}"},
        {"\"random_normal\"",
         "{\"class_name\":\"RandomNormal\",\"config\":{\"mean\":0.0,\"seed\":null,"
         "\"stddev\":0.05}}"},
        {"\"random_uniform\"",
         "{\"class_name\":\"RandomUniform\",\"config\":{\"maxval\":0.05,\"minval\":-0.05,"
         "\"seed\":null}}"},
        {"\"variance_scaling\"",
         "{\"class_name\":\"VarianceScaling\",\"config\":{\"distribution\":\"truncated_normal\","
         "\"mode\":\"fan_in\",\"scale\":1.0,\"seed\":null}}"},
        {"{\"class_name\": \"Orthogonal\", \"config\": {\"seed\": 5}}",
         "{\"class_name\":\"Orthogonal\",\"config\":{\"gain\":1.0,\"seed\":5}}"},
        {"\"identity\"", "{\"class_name\":\"Identity\",\"config\":{\"gain\":1.0}}"},
        {"{\"class_name\": \"Constant\", \"config\": {\"value\": 0.30000000000000004}}",
         "{\"class_name\":\"Constant\",\"config\":{\"value\":0.30000000000000004}}"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        nnp_initializer *in = parse_ok(pairs[i][0]);
        char *s = nnp_initializer_to_json(in);
        cr_assert_str_eq(s, pairs[i][1]);
        free(s);
        nnp_initializer_free(in);
    }
}

Test(initializers, json_round_trip_and_clone)
{
    static const char *specs[] = {
        "\"zeros\"", "\"ones\"", "{\"class_name\": \"Constant\", \"config\": {\"value\": 0.1}}",
        "{\"class_name\": \"RandomNormal\", \"config\": {\"mean\": 0.1, \"stddev\": 1e-3, "
        "\"seed\": -3}}",
        "{\"class_name\": \"RandomUniform\", \"config\": {\"minval\": -0.1, \"maxval\": 0.7, "
        "\"seed\": 9007199254740993}}",
        "\"truncated_normal\"",
        "{\"class_name\": \"VarianceScaling\", \"config\": {\"scale\": 0.3333333333333333, "
        "\"mode\": \"fan_avg\", \"distribution\": \"uniform\"}}",
        "\"glorot_normal\"", "\"glorot_uniform\"", "\"he_normal\"", "\"he_uniform\"",
        "\"lecun_normal\"", "\"lecun_uniform\"",
        "{\"class_name\": \"Orthogonal\", \"config\": {\"gain\": 1.4142135623730951}}",
        "{\"class_name\": \"Identity\", \"config\": {\"gain\": 3}}",
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        nnp_initializer *a = parse_ok(specs[i]);
        char *ja = nnp_initializer_to_json(a);
        nnp_initializer *b = parse_ok(ja);
        char *jb = nnp_initializer_to_json(b);
        cr_assert_str_eq(ja, jb, "%s", specs[i]);
        nnp_initializer *c = nnp_initializer_clone(b);
        char *jc = nnp_initializer_to_json(c);
        cr_assert_str_eq(ja, jc);
        free(ja);
        free(jb);
        free(jc);
        nnp_initializer_free(a);
        nnp_initializer_free(b);
        nnp_initializer_free(c);
    }
    cr_assert_null(nnp_initializer_clone(NULL));
    nnp_initializer_free(NULL);
}
