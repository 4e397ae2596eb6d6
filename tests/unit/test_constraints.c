/* Keras constraints MaxNorm, MinMaxNorm, NonNeg, UnitNorm: small weights with
 * hand-computed results over every axis form, errors and to_json. */
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

static nnp_constraint *parse_ok(const char *json)
{
    nnp_error e = {0};
    nnp_constraint *c = NULL;
    cr_assert_eq(nnp_constraint_parse(json, &c, &e), NNP_OK, "parsing %s: %s", json, e.msg);
    cr_assert_not_null(c, "%s", json);
    return c;
}

static void parse_fails(const char *json, nnp_status code, const char *needle1,
                        const char *needle2)
{
    nnp_error e = {0};
    nnp_constraint *c = (nnp_constraint *)&e;
    nnp_status st = nnp_constraint_parse(json, &c, &e);
    cr_assert_eq(st, code, "parsing %s: got %d (%s)", json, st, e.msg);
    cr_assert_null(c);
    if (needle1)
        cr_assert_not_null(strstr(e.msg, needle1), "'%s' not in '%s'", needle1, e.msg);
    if (needle2)
        cr_assert_not_null(strstr(e.msg, needle2), "'%s' not in '%s'", needle2, e.msg);
}

/* Applies `json` to a copy of `in` (shape dims) and compares with `want`. */
static void check(const char *json, int rank, const int64_t *dims, const float *in,
                  const double *want)
{
    nnp_constraint *c = parse_ok(json);
    nnp_shape s;
    nnp_tensor t;
    nnp_error e = {0};
    cr_assert_eq(nnp_shape_make(&s, rank, dims, &e), NNP_OK);
    cr_assert_eq(nnp_tensor_alloc(&t, NNP_F32, &s, &e), NNP_OK);
    int64_t n = nnp_tensor_numel(&t);
    memcpy(t.data, in, (size_t)n * sizeof(float));
    cr_assert_eq(nnp_constraint_apply(c, &t, &e), NNP_OK, "%s: %s", json, e.msg);
    const float *w = t.data;
    for (int64_t i = 0; i < n; i++)
        cr_assert_float_eq(w[i], want[i], 1e-6, "%s: w[%lld] = %.9g, want %.9g", json,
                           (long long)i, w[i], want[i]);
    nnp_tensor_free(&t);
    nnp_constraint_free(c);
}

/* Applying fails with NNP_ERR_SHAPE and a message containing needle. */
static void apply_fails(const char *json, int rank, const int64_t *dims, const char *needle)
{
    nnp_constraint *c = parse_ok(json);
    nnp_shape s;
    nnp_tensor t;
    nnp_error e = {0};
    cr_assert_eq(nnp_shape_make(&s, rank, dims, &e), NNP_OK);
    cr_assert_eq(nnp_tensor_alloc(&t, NNP_F32, &s, &e), NNP_OK);
    cr_assert_eq(nnp_constraint_apply(c, &t, &e), NNP_ERR_SHAPE, "%s", json);
    cr_assert_not_null(strstr(e.msg, needle), "'%s' not in '%s'", needle, e.msg);
    nnp_tensor_free(&t);
    nnp_constraint_free(c);
}

static const int64_t D22[] = {2, 2};
/* [[3, 0], [4, 1]]: column norms 5 and 1, row norms 3 and sqrt(17),
   total norm sqrt(26). */
static const float A[4] = {3, 0, 4, 1};

Test(constraints, max_norm_axis0)
{
    /* column 0 scaled by 2/5, column 1 (norm 1 <= 2) kept */
    const double want[4] = {1.2, 0, 1.6, 1};
    check("{\"class_name\": \"MaxNorm\", \"config\": {\"max_value\": 2, \"axis\": 0}}", 2, D22,
          A, want);
    check("\"max_norm\"", 2, D22, A, want);   /* defaults max_value 2, axis 0 */
    check("{\"class_name\": \"MaxNorm\", \"config\": {\"axis\": -2}}", 2, D22, A, want);
    check("{\"class_name\": \"MaxNorm\", \"config\": {\"axis\": [0]}}", 2, D22, A, want);
}

Test(constraints, max_norm_axis1_and_negative)
{
    /* row 0 scaled by 2/3, row 1 by 2/sqrt(17) */
    const double r = 2.0 / sqrt(17.0);
    const double want[4] = {2, 0, 4 * r, 1 * r};
    check("{\"class_name\": \"MaxNorm\", \"config\": {\"axis\": 1}}", 2, D22, A, want);
    check("{\"class_name\": \"MaxNorm\", \"config\": {\"axis\": -1}}", 2, D22, A, want);
}

Test(constraints, max_norm_axis_list)
{
    const double f = 2.0 / sqrt(26.0);
    const double want[4] = {3 * f, 0, 4 * f, 1 * f};
    check("{\"class_name\": \"MaxNorm\", \"config\": {\"axis\": [0, 1]}}", 2, D22, A, want);
    check("{\"class_name\": \"MaxNorm\", \"config\": {\"axis\": [-1, 0]}}", 2, D22, A, want);
    /* large enough max_value: unchanged up to the 1e-7 epsilon */
    const double same[4] = {3, 0, 4, 1};
    check("{\"class_name\": \"MaxNorm\", \"config\": {\"max_value\": 10, \"axis\": [0, 1]}}", 2,
          D22, A, same);
}

Test(constraints, rank1_gamma)
{
    const int64_t d[] = {2};
    const float g[2] = {3, 4};
    const double want[2] = {1.2, 1.6};
    check("\"MaxNorm\"", 1, d, g, want);
    check("{\"class_name\": \"MaxNorm\", \"config\": {\"axis\": -1}}", 1, d, g, want);
    const double unit[2] = {0.6, 0.8};
    check("\"unit_norm\"", 1, d, g, unit);
}

Test(constraints, min_max_norm)
{
    /* column norms 0.5 and 5 */
    const float b[4] = {0.3f, 3, 0.4f, 4};
    /* rate 1: norms clipped to [1, 2]: factors 2 and 0.4 */
    const double want1[4] = {0.6, 1.2, 0.8, 1.6};
    check("{\"class_name\": \"MinMaxNorm\", \"config\": {\"min_value\": 1, \"max_value\": 2}}", 2,
          D22, b, want1);
    /* rate 0.5: desired 0.75 and 3.5: factors 1.5 and 0.7 */
    const double want2[4] = {0.45, 2.1, 0.6, 2.8};
    check("{\"class_name\": \"MinMaxNorm\", \"config\": {\"min_value\": 1, \"max_value\": 2, "
          "\"rate\": 0.5, \"axis\": 0}}", 2, D22, b, want2);
    /* rate 0: unchanged */
    const double same[4] = {0.3, 3, 0.4, 4};
    check("{\"class_name\": \"MinMaxNorm\", \"config\": {\"min_value\": 1, \"max_value\": 2, "
          "\"rate\": 0}}", 2, D22, b, same);
    /* defaults [0, 1], axis 1: row norms sqrt(9.09) and sqrt(16.16) -> 1 */
    const double r0 = 1 / sqrt(9.09), r1 = 1 / sqrt(16.16);
    const double want3[4] = {0.3 * r0, 3 * r0, 0.4 * r1, 4 * r1};
    check("{\"class_name\": \"min_max_norm\", \"config\": {\"axis\": 1}}", 2, D22, b, want3);
}

Test(constraints, unit_norm)
{
    const float b[4] = {3, 0, 4, 2};
    const double want0[4] = {0.6, 0, 0.8, 1};
    check("\"UnitNorm\"", 2, D22, b, want0);
    const double want1[4] = {1, 0, 4 / sqrt(20.0), 2 / sqrt(20.0)};
    check("{\"class_name\": \"UnitNorm\", \"config\": {\"axis\": -1}}", 2, D22, b, want1);
    /* a zero column stays zero (0 / (1e-7 + 0)) */
    const float z[4] = {0, 1, 0, 0};
    const double wantz[4] = {0, 1, 0, 0};
    check("\"unit_norm\"", 2, D22, z, wantz);
}

Test(constraints, non_neg)
{
    const int64_t d[] = {5};
    const float b[5] = {-1, 0, 2, -0.5f, 3.25f};
    const double want[5] = {0, 0, 2, 0, 3.25};
    check("\"NonNeg\"", 1, d, b, want);
    check("\"non_neg\"", 1, d, b, want);
    check("{\"class_name\": \"NonNeg\", \"config\": {}}", 1, d, b, want);
}

/* Rank 3 and 4 against a direct per-group computation. */
static void check_general(const char *json, int rank, const int64_t *dims, const int *reduce,
                          double max_value)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dims[i];
    float *in = malloc((size_t)n * sizeof *in);
    double *want = malloc((size_t)n * sizeof *want), *sum = calloc((size_t)n, sizeof *sum);
    int64_t *key = malloc((size_t)n * sizeof *key);
    for (int64_t i = 0; i < n; i++) {
        in[i] = (float)(i % 7) - 2.5f;
        /* group key: the index with the reduced digits zeroed */
        int64_t rem = i, k = 0, stride = 1;
        for (int d = rank - 1; d >= 0; d--) {
            int64_t digit = rem % dims[d];
            rem /= dims[d];
            if (!reduce[d])
                k += digit * stride;
            stride *= dims[d];
        }
        key[i] = k;
        sum[k] += (double)in[i] * in[i];
    }
    for (int64_t i = 0; i < n; i++) {
        double norm = sqrt(sum[key[i]]);
        double desired = norm < max_value ? norm : max_value;
        want[i] = in[i] * desired / (1e-7 + norm);
    }
    check(json, rank, dims, in, want);
    free(in);
    free(want);
    free(sum);
    free(key);
}

Test(constraints, conv_kernel_axes)
{
    /* Keras's usual Conv2D kernel constraint: norm over all but the output
       channels. */
    const int64_t d4[] = {2, 2, 3, 4};
    const int r012[] = {1, 1, 1, 0};
    check_general("{\"class_name\": \"MaxNorm\", \"config\": {\"max_value\": 1, "
                  "\"axis\": [0, 1, 2]}}", 4, d4, r012, 1.0);
    const int r3[] = {0, 0, 0, 1};
    check_general("{\"class_name\": \"MaxNorm\", \"config\": {\"max_value\": 1.5, "
                  "\"axis\": 3}}", 4, d4, r3, 1.5);
    const int64_t d3[] = {3, 4, 5};
    const int r1[] = {0, 1, 0};
    check_general("{\"class_name\": \"MaxNorm\", \"config\": {\"max_value\": 2, \"axis\": 1}}",
                  3, d3, r1, 2.0);
    const int r02[] = {1, 0, 1};
    check_general("{\"class_name\": \"MaxNorm\", \"config\": {\"max_value\": 3, "
                  "\"axis\": [2, -3]}}", 3, d3, r02, 3.0);
}

Test(constraints, bad_axis_at_apply)
{
    apply_fails("{\"class_name\": \"MaxNorm\", \"config\": {\"axis\": 2}}", 2, D22, "axis 2");
    apply_fails("{\"class_name\": \"MaxNorm\", \"config\": {\"axis\": -3}}", 2, D22, "axis -3");
    const int64_t d1[] = {4};
    apply_fails("{\"class_name\": \"UnitNorm\", \"config\": {\"axis\": 1}}", 1, d1, "UnitNorm");
    apply_fails("{\"class_name\": \"MaxNorm\", \"config\": {\"axis\": [0, -2]}}", 2, D22,
                "twice");
    apply_fails("\"max_norm\"", 0, NULL, "rank 0");
}

Test(constraints, apply_rejects_non_float32)
{
    nnp_constraint *c = parse_ok("\"non_neg\"");
    nnp_shape s;
    nnp_tensor t;
    nnp_error e = {0};
    nnp_shape_make(&s, 2, D22, NULL);
    cr_assert_eq(nnp_tensor_alloc(&t, NNP_F64, &s, NULL), NNP_OK);
    cr_assert_eq(nnp_constraint_apply(c, &t, &e), NNP_ERR_UNSUPPORTED);
    cr_assert_not_null(strstr(e.msg, "float32"), "%s", e.msg);
    cr_assert_eq(nnp_constraint_apply(NULL, &t, &e), NNP_OK);   /* no constraint */
    nnp_tensor_free(&t);
    nnp_constraint_free(c);
}

Test(constraints, spellings_and_camel_case)
{
    static const char *specs[][2] = {
        {"\"max_norm\"", "MaxNorm"},     {"\"MaxNorm\"", "MaxNorm"},
        {"\"maxnorm\"", "MaxNorm"},      {"\"maxNorm\"", "MaxNorm"},
        {"\"min_max_norm\"", "MinMaxNorm"}, {"\"MinMaxNorm\"", "MinMaxNorm"},
        {"\"non_neg\"", "NonNeg"},       {"\"nonneg\"", "NonNeg"},
        {"\"NonNeg\"", "NonNeg"},        {"\"unit_norm\"", "UnitNorm"},
        {"\"UnitNorm\"", "UnitNorm"},    {"unit_norm", "UnitNorm"},
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        nnp_constraint *c = parse_ok(specs[i][0]);
        char *s = nnp_constraint_to_json(c);
        char want[64];
        snprintf(want, sizeof want, "{\"class_name\":\"%s\"", specs[i][1]);
        cr_assert(strncmp(s, want, strlen(want)) == 0, "%s -> %s", specs[i][0], s);
        free(s);
        nnp_constraint_free(c);
    }
    /* tfjs: camelCase keys and className */
    nnp_constraint *c = parse_ok("{\"className\": \"MinMaxNorm\", \"config\": {\"minValue\": 0.5,"
                                 " \"maxValue\": 1.5, \"rate\": 0.25, \"axis\": -1}}");
    char *s = nnp_constraint_to_json(c);
    cr_assert_str_eq(s, "{\"class_name\":\"MinMaxNorm\",\"config\":{\"axis\":-1,"
                        "\"max_value\":1.5,\"min_value\":0.5,\"rate\":0.25}}");
    free(s);
    nnp_constraint_free(c);
    c = parse_ok("{\"class_name\": \"MaxNorm\", \"config\": {\"maxValue\": 3}}");
    s = nnp_constraint_to_json(c);
    cr_assert_str_eq(s, "{\"class_name\":\"MaxNorm\",\"config\":{\"axis\":0,\"max_value\":3.0}}");
    free(s);
    nnp_constraint_free(c);
}

Test(constraints, null_means_none)
{
    nnp_error e = {0};
    nnp_constraint *c = (nnp_constraint *)&e;
    cr_assert_eq(nnp_constraint_parse("null", &c, &e), NNP_OK);
    cr_assert_null(c);
    char *s = nnp_constraint_to_json(NULL);
    cr_assert_str_eq(s, "null");
    free(s);
    cr_assert_null(nnp_constraint_clone(NULL));
    nnp_constraint_free(NULL);
}

Test(constraints, parse_errors)
{
    parse_fails("\"max_nrom\"", NNP_ERR_NOT_FOUND, "'max_nrom'", "constraint");
    parse_fails("{\"class_name\": \"MaxNorm\", \"config\": {\"max\": 1}}", NNP_ERR_INVALID,
                "'MaxNorm'", "unknown argument 'max'");
    parse_fails("{\"class_name\": \"NonNeg\", \"config\": {\"axis\": 0}}", NNP_ERR_INVALID,
                "NonNeg", "'axis'");
    parse_fails("{\"class_name\": \"MaxNorm\", \"config\": {\"max_value\": -1}}", NNP_ERR_INVALID,
                "max_value", NULL);
    parse_fails("{\"class_name\": \"MaxNorm\", \"config\": {\"max_value\": \"2\"}}",
                NNP_ERR_INVALID, "'max_value'", "number");
    parse_fails("{\"class_name\": \"MinMaxNorm\", \"config\": {\"min_value\": 2, "
                "\"max_value\": 1}}", NNP_ERR_INVALID, "min_value", "max_value");
    parse_fails("{\"class_name\": \"MinMaxNorm\", \"config\": {\"min_value\": -1}}",
                NNP_ERR_INVALID, "min_value", NULL);
    parse_fails("{\"class_name\": \"MinMaxNorm\", \"config\": {\"rate\": 1.5}}", NNP_ERR_INVALID,
                "rate", NULL);
    parse_fails("{\"class_name\": \"MinMaxNorm\", \"config\": {\"rate\": -0.1}}", NNP_ERR_INVALID,
                "rate", NULL);
    parse_fails("{\"class_name\": \"UnitNorm\", \"config\": {\"axis\": \"x\"}}", NNP_ERR_INVALID,
                "'axis'", NULL);
    parse_fails("{\"class_name\": \"UnitNorm\", \"config\": {\"axis\": 1.5}}", NNP_ERR_INVALID,
                "'axis'", NULL);
    parse_fails("{\"class_name\": \"UnitNorm\", \"config\": {\"axis\": null}}", NNP_ERR_INVALID,
                "'axis'", NULL);
    parse_fails("{\"class_name\": \"UnitNorm\", \"config\": {\"axis\": []}}", NNP_ERR_INVALID,
                "axis", NULL);
    parse_fails("{\"class_name\": \"UnitNorm\", \"config\": {\"axis\": [0, 0]}}", NNP_ERR_INVALID,
                "twice", NULL);
    parse_fails("{\"class_name\": \"UnitNorm\", \"config\": {\"axis\": [0, \"a\"]}}",
                NNP_ERR_INVALID, "axis", NULL);
    parse_fails("{\"class_name\": \"UnitNorm\", \"config\": {\"axis\": 99}}", NNP_ERR_INVALID,
                "axis 99", NULL);
    parse_fails("true", NNP_ERR_INVALID, "constraint", NULL);
}

Test(constraints, canonical_json_round_trip)
{
    static const char *pairs[][2] = {
        {"\"max_norm\"", "{\"class_name\":\"MaxNorm\",\"config\":{\"axis\":0,\"max_value\":2.0}}"},
        {"\"min_max_norm\"",
         "{\"class_name\":\"MinMaxNorm\",\"config\":{\"axis\":0,\"max_value\":1.0,"
         "\"min_value\":0.0,\"rate\":1.0}}"},
        {"\"non_neg\"", "{\"class_name\":\"NonNeg\",\"config\":{}}"},
        {"\"unit_norm\"", "{\"class_name\":\"UnitNorm\",\"config\":{\"axis\":0}}"},
        {"{\"class_name\": \"MaxNorm\", \"config\": {\"max_value\": 3, \"axis\": [0, 1, -2]}}",
         "{\"class_name\":\"MaxNorm\",\"config\":{\"axis\":[0,1,-2],\"max_value\":3.0}}"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        nnp_constraint *a = parse_ok(pairs[i][0]);
        char *ja = nnp_constraint_to_json(a);
        cr_assert_str_eq(ja, pairs[i][1]);
        nnp_constraint *b = parse_ok(ja);
        char *jb = nnp_constraint_to_json(b);
        cr_assert_str_eq(ja, jb);
        nnp_constraint *c = nnp_constraint_clone(b);
        char *jc = nnp_constraint_to_json(c);
        cr_assert_str_eq(ja, jc);
        free(ja);
        free(jb);
        free(jc);
        nnp_constraint_free(a);
        nnp_constraint_free(b);
        nnp_constraint_free(c);
    }
}

Test(constraints, thread_count_independent)
{
    const int64_t d[] = {300, 400};
    nnp_shape s;
    nnp_tensor a, b;
    nnp_shape_make(&s, 2, d, NULL);
    nnp_tensor_alloc(&a, NNP_F32, &s, NULL);
    nnp_tensor_alloc(&b, NNP_F32, &s, NULL);
    float *x = a.data, *y = b.data;
    for (int64_t i = 0; i < 300 * 400; i++)
        x[i] = y[i] = (float)nnp_rng_normal(1, (uint64_t)i);
    nnp_constraint *c = parse_ok("{\"class_name\": \"MaxNorm\", \"config\": {\"max_value\": 1}}");
    omp_set_num_threads(1);
    cr_assert_eq(nnp_constraint_apply(c, &a, NULL), NNP_OK);
    omp_set_num_threads(3);
    cr_assert_eq(nnp_constraint_apply(c, &b, NULL), NNP_OK);
    cr_assert(memcmp(a.data, b.data, a.nbytes) == 0);
    /* every column now has norm <= 1 */
    for (int col = 0; col < 400; col++) {
        double sum = 0;
        for (int r = 0; r < 300; r++)
            sum += (double)x[r * 400 + col] * x[r * 400 + col];
        cr_assert_leq(sqrt(sum), 1.0 + 1e-6);
    }
    nnp_constraint_free(c);
    nnp_tensor_free(&a);
    nnp_tensor_free(&b);
}
