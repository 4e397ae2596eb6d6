/* Keras regularizers L1, L2, L1L2: hand-computed losses and gradients,
 * spellings, errors and to_json. */
#include <criterion/criterion.h>

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nnplug/rng.h"
#include "nnplug/services.h"
#include "nnplug/status.h"

static nnp_regularizer *parse_ok(const char *json)
{
    nnp_error e = {0};
    nnp_regularizer *r = NULL;
    cr_assert_eq(nnp_regularizer_parse(json, &r, &e), NNP_OK, "parsing %s: %s", json, e.msg);
    cr_assert_not_null(r, "%s", json);
    return r;
}

static void parse_fails(const char *json, nnp_status code, const char *needle1,
                        const char *needle2)
{
    nnp_error e = {0};
    nnp_regularizer *r = (nnp_regularizer *)&e;
    nnp_status st = nnp_regularizer_parse(json, &r, &e);
    cr_assert_eq(st, code, "parsing %s: got %d (%s)", json, st, e.msg);
    cr_assert_null(r);
    if (needle1)
        cr_assert_not_null(strstr(e.msg, needle1), "'%s' not in '%s'", needle1, e.msg);
    if (needle2)
        cr_assert_not_null(strstr(e.msg, needle2), "'%s' not in '%s'", needle2, e.msg);
}

/* sum|w| = 3.5, sum w^2 = 5.25; the zero checks sign(0) = 0. */
static const float W[4] = {1.0f, -2.0f, 0.0f, 0.5f};

/* Loss and grad (added onto ones) match the expected values. */
static void check(const char *json, double loss, const float grad[4])
{
    nnp_regularizer *r = parse_ok(json);
    cr_assert_float_eq(nnp_regularizer_loss(r, W, 4), loss, 1e-12, "%s: loss %.17g, want %.17g",
                       json, nnp_regularizer_loss(r, W, 4), loss);
    float g[4] = {1, 1, 1, 1};
    nnp_regularizer_grad_add(r, W, g, 4);
    for (int i = 0; i < 4; i++)
        cr_assert_float_eq(g[i], 1.0f + grad[i], 1e-6, "%s: grad[%d] = %g, want %g", json, i,
                           g[i], 1.0f + grad[i]);
    nnp_regularizer_free(r);
}

Test(regularizers, l1)
{
    const float g[4] = {0.1f, -0.1f, 0.0f, 0.1f};
    check("{\"class_name\": \"L1\", \"config\": {\"l1\": 0.1}}", 0.35, g);
    const float gd[4] = {0.01f, -0.01f, 0.0f, 0.01f};
    check("\"l1\"", 0.035, gd);   /* default 0.01 */
    check("\"L1\"", 0.035, gd);
}

Test(regularizers, l2)
{
    const float g[4] = {1.0f, -2.0f, 0.0f, 0.5f};   /* 2 * 0.5 * w */
    check("{\"class_name\": \"L2\", \"config\": {\"l2\": 0.5}}", 2.625, g);
    const float gd[4] = {0.02f, -0.04f, 0.0f, 0.01f};
    check("\"l2\"", 0.0525, gd);
}

Test(regularizers, l1l2)
{
    const float g[4] = {1.1f, -2.1f, 0.0f, 0.6f};
    check("{\"class_name\": \"L1L2\", \"config\": {\"l1\": 0.1, \"l2\": 0.5}}", 2.975, g);
    check("{\"class_name\": \"l1_l2\", \"config\": {\"l1\": 0.1, \"l2\": 0.5}}", 2.975, g);
    const float z[4] = {0, 0, 0, 0};
    check("\"l1_l2\"", 0.0, z);   /* defaults 0, 0 */
    check("\"L1L2\"", 0.0, z);
    const float g1[4] = {0.1f, -0.1f, 0.0f, 0.1f};
    check("{\"class_name\": \"L1L2\", \"config\": {\"l1\": 0.1}}", 0.35, g1);
}

Test(regularizers, null_means_none)
{
    nnp_error e = {0};
    nnp_regularizer *r = (nnp_regularizer *)&e;
    cr_assert_eq(nnp_regularizer_parse("null", &r, &e), NNP_OK);
    cr_assert_null(r);
    cr_assert_eq(nnp_regularizer_loss(NULL, W, 4), 0.0);
    float g[4] = {1, 2, 3, 4};
    nnp_regularizer_grad_add(NULL, W, g, 4);
    cr_assert(g[0] == 1 && g[3] == 4);
    char *s = nnp_regularizer_to_json(NULL);
    cr_assert_str_eq(s, "null");
    free(s);
    cr_assert_null(nnp_regularizer_clone(NULL));
    nnp_regularizer_free(NULL);
}

Test(regularizers, empty_weight)
{
    nnp_regularizer *r = parse_ok("\"l2\"");
    cr_assert_eq(nnp_regularizer_loss(r, W, 0), 0.0);
    nnp_regularizer_free(r);
}

Test(regularizers, errors)
{
    parse_fails("\"l3\"", NNP_ERR_NOT_FOUND, "'l3'", "regularizer");
    parse_fails("{\"class_name\": \"OrthogonalRegularizer\", \"config\": {}}", NNP_ERR_NOT_FOUND,
                "OrthogonalRegularizer", NULL);
    parse_fails("{\"class_name\": \"L1\", \"config\": {\"l2\": 0.1}}", NNP_ERR_INVALID, "'L1'",
                "unknown argument 'l2'");
    parse_fails("{\"class_name\": \"L2\", \"config\": {\"l2\": \"x\"}}", NNP_ERR_INVALID, "'l2'",
                "number");
    parse_fails("{\"class_name\": \"L1\", \"config\": {\"l1\": -0.1}}", NNP_ERR_INVALID, "l1",
                ">= 0");
    parse_fails("{\"class_name\": \"L1L2\", \"config\": {\"l1\": 0, \"l2\": -1}}",
                NNP_ERR_INVALID, "l2", NULL);
    parse_fails("[1]", NNP_ERR_INVALID, "regularizer", NULL);
    parse_fails("{\"class_name\": \"L1\", ", NNP_ERR_INVALID, "invalid JSON", NULL);
}

Test(regularizers, canonical_json_round_trip)
{
    static const char *pairs[][2] = {
        {"\"l1\"", "{\"class_name\":\"L1\",\"config\":{\"l1\":0.01}}"},
        {"\"l2\"", "{\"class_name\":\"L2\",\"config\":{\"l2\":0.01}}"},
        {"\"l1_l2\"", "{\"class_name\":\"L1L2\",\"config\":{\"l1\":0.0,\"l2\":0.0}}"},
        {"{\"class_name\": \"L2\", \"config\": {\"l2\": 9.999999747378752e-05}}",
         "{\"class_name\":\"L2\",\"config\":{\"l2\":9.999999747378752e-5}}"},
        {"{\"class_name\": \"L1L2\", \"config\": {\"l1\": 1e-5, \"l2\": 0}}",
         "{\"class_name\":\"L1L2\",\"config\":{\"l1\":1e-5,\"l2\":0.0}}"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        nnp_regularizer *a = parse_ok(pairs[i][0]);
        char *ja = nnp_regularizer_to_json(a);
        cr_assert_str_eq(ja, pairs[i][1]);
        nnp_regularizer *b = parse_ok(ja);
        char *jb = nnp_regularizer_to_json(b);
        cr_assert_str_eq(ja, jb);
        nnp_regularizer *c = nnp_regularizer_clone(b);
        char *jc = nnp_regularizer_to_json(c);
        cr_assert_str_eq(ja, jc);
        free(ja);
        free(jb);
        free(jc);
        nnp_regularizer_free(a);
        nnp_regularizer_free(b);
        nnp_regularizer_free(c);
    }
}

/* Large weights: the loss agrees with a plain double sum and is bit-identical
 * for any thread count; the gradient is too. */
Test(regularizers, large_and_thread_independent)
{
    const int64_t n = 1000003;
    float *w = malloc((size_t)n * sizeof *w);
    float *g1 = calloc((size_t)n, sizeof *g1), *g4 = calloc((size_t)n, sizeof *g4);
    cr_assert(w && g1 && g4);
    double s1 = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        w[i] = (float)nnp_rng_normal(3, (uint64_t)i);
        s1 += fabs((double)w[i]);
        s2 += (double)w[i] * w[i];
    }
    nnp_regularizer *r = parse_ok("{\"class_name\": \"L1L2\", \"config\": {\"l1\": 0.01, \"l2\": 0.02}}");
    omp_set_num_threads(1);
    double a = nnp_regularizer_loss(r, w, n);
    nnp_regularizer_grad_add(r, w, g1, n);
    omp_set_num_threads(4);
    double b = nnp_regularizer_loss(r, w, n);
    nnp_regularizer_grad_add(r, w, g4, n);
    cr_assert_eq(a, b, "loss %.17g vs %.17g", a, b);
    cr_assert(memcmp(g1, g4, (size_t)n * sizeof *g1) == 0);
    double want = 0.01 * s1 + 0.02 * s2;
    cr_assert_lt(fabs(a - want), 1e-9 * want, "loss %.17g, want %.17g", a, want);
    nnp_regularizer_free(r);
    free(w);
    free(g1);
    free(g4);
}
