/* Activation, ReLU, Softmax, LeakyReLU and ELU through the plugin ABI:
 * forward against float64 formulas, gradients against finite differences,
 * determinism across thread counts, clear errors. */
#include "test_activation_kit.h"

TestSuite(activation, .init = kit_setup, .fini = kit_teardown);

static const char *const all_acts[] = {
    "linear", "relu", "sigmoid", "tanh", "softmax", "log_softmax", "elu", "selu", "softplus",
    "softsign", "gelu", "gelu_new", "swish", "silu", "hard_sigmoid", "hard_silu", "hard_swish",
    "exponential", "relu6", "leaky_relu", "mish",
};
#define N_ACTS (sizeof all_acts / sizeof all_acts[0])

/* Runs a weightless layer on x and compares with ref (double). */
static void run_and_compare(nnp_layer *l, const nnp_shape *xs, double lo, double hi,
                            void (*ref)(const float *x, double *y, const nnp_shape *s,
                                        const void *ctx),
                            const void *ctx, const char *what)
{
    nnp_shape os = kit_build(l, 1, xs);
    cr_assert(os.rank == xs->rank);
    nnp_tensor x = kit_tensor(xs), y = kit_tensor(&os);
    kit_fill(&x, lo, hi);
    nnp_tensor *ins[1] = {&x};
    kit_forward(l, ins, 1, &y, NNP_MODE_INFER);
    int64_t n = kit_numel(xs);
    double *e = calloc((size_t)n, sizeof *e);
    ref(x.data, e, xs, ctx);
    tu_assert_close_f32(what, y.data, e, n, 2e-6, 2e-7);
    free(e);
    /* gradient check at the same inputs */
    kit_gc g = kit_gc_default();
    g.label = what;
    kit_gradcheck(&g, l, ins, 1, &os);
    nnp_tensor_free(&x);
    nnp_tensor_free(&y);
}

static void ref_named(const float *x, double *y, const nnp_shape *s, const void *ctx)
{
    const char *name = ctx;
    int64_t n = kit_numel(s), last = s->dims[s->rank - 1];
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i];
    kit_act_rows(name, y, n / last, last);
}

Test(activation, every_keras_activation_forward_and_gradient)
{
    kit_seed(11);
    for (size_t i = 0; i < N_ACTS; i++) {
        char json[96];
        snprintf(json, sizeof json, "{\"activation\": \"%s\"}", all_acts[i]);
        nnp_layer *l = kit_layer("Activation", json);
        nnp_shape xs = KS(2, 3, 7);
        run_and_compare(l, &xs, -4, 4, ref_named, all_acts[i], all_acts[i]);
        nnp_layer_free(l);
    }
}

typedef struct relu_args {
    double max_value, slope, threshold;
} relu_args;

static void ref_relu(const float *x, double *y, const nnp_shape *s, const void *ctx)
{
    const relu_args *a = ctx;
    for (int64_t i = 0; i < kit_numel(s); i++) {
        double v = x[i];
        y[i] = v >= a->max_value   ? a->max_value
               : v >= a->threshold ? v
                                   : a->slope * (v - a->threshold);
    }
}

Test(activation, relu_layer_arguments)
{
    kit_seed(12);
    const struct {
        const char *json;
        relu_args a;
    } cases[] = {
        {"{}", {INFINITY, 0, 0}},
        {"{\"max_value\": 6.0}", {6, 0, 0}},
        {"{\"max_value\": 1.5, \"negative_slope\": 0.1, \"threshold\": 0.5}", {1.5, 0.1, 0.5}},
        {"{\"negative_slope\": 0.3}", {INFINITY, 0.3, 0}},
        {"{\"threshold\": 1.0}", {INFINITY, 0, 1.0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nnp_layer *l = kit_layer("ReLU", cases[i].json);
        nnp_shape xs = KS(4, 9);
        run_and_compare(l, &xs, -3, 8, ref_relu, &cases[i].a, cases[i].json);
        nnp_layer_free(l);
    }
}

typedef struct sm_args {
    int axis;
} sm_args;

static void ref_softmax_axis(const float *x, double *y, const nnp_shape *s, const void *ctx)
{
    const int axis = ((const sm_args *)ctx)->axis;
    int64_t outer = 1, len = s->dims[axis], inner = 1;
    for (int i = 0; i < axis; i++)
        outer *= s->dims[i];
    for (int i = axis + 1; i < s->rank; i++)
        inner *= s->dims[i];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            double m = -INFINITY, sum = 0;
            for (int64_t k = 0; k < len; k++)
                m = fmax(m, x[(o * len + k) * inner + in]);
            for (int64_t k = 0; k < len; k++)
                sum += exp(x[(o * len + k) * inner + in] - m);
            for (int64_t k = 0; k < len; k++)
                y[(o * len + k) * inner + in] = exp(x[(o * len + k) * inner + in] - m) / sum;
        }
}

Test(activation, softmax_over_any_axis)
{
    kit_seed(13);
    const char *json[4] = {"{}", "{\"axis\": 1}", "{\"axis\": 0}", "{\"axis\": -2}"};
    const int axis[4] = {3, 1, 0, 2};
    for (int i = 0; i < 4; i++) {
        nnp_layer *l = kit_layer("Softmax", json[i]);
        nnp_shape xs = KS(2, 3, 4, 5);
        sm_args a = {axis[i]};
        run_and_compare(l, &xs, -3, 3, ref_softmax_axis, &a, json[i]);
        nnp_layer_free(l);
    }
}

static void ref_leaky(const float *x, double *y, const nnp_shape *s, const void *ctx)
{
    const double a = *(const double *)ctx;
    for (int64_t i = 0; i < kit_numel(s); i++)
        y[i] = x[i] > 0 ? x[i] : a * x[i];
}

static void ref_elu(const float *x, double *y, const nnp_shape *s, const void *ctx)
{
    const double a = *(const double *)ctx;
    for (int64_t i = 0; i < kit_numel(s); i++)
        y[i] = x[i] > 0 ? x[i] : a * expm1(x[i]);
}

Test(activation, leaky_relu_and_elu_layers)
{
    kit_seed(14);
    nnp_shape xs = KS(3, 8);
    const char *ljson[3] = {"{}", "{\"alpha\": 0.1}", "{\"negative_slope\": 0.05}"};
    const double lval[3] = {0.3, 0.1, 0.05};
    for (int i = 0; i < 3; i++) {
        nnp_layer *l = kit_layer("LeakyReLU", ljson[i]);
        run_and_compare(l, &xs, -2, 2, ref_leaky, &lval[i], ljson[i]);
        nnp_layer_free(l);
    }
    const char *ejson[2] = {"{}", "{\"alpha\": 0.5}"};
    const double evals[2] = {1.0, 0.5};
    for (int i = 0; i < 2; i++) {
        nnp_layer *l = kit_layer("ELU", ejson[i]);
        run_and_compare(l, &xs, -2, 2, ref_elu, &evals[i], ejson[i]);
        nnp_layer_free(l);
    }
}

Test(activation, extreme_inputs_stay_finite)
{
    const char *names[6] = {"sigmoid", "softplus", "softmax", "log_softmax", "swish", "mish"};
    for (int i = 0; i < 6; i++) {
        char json[96];
        snprintf(json, sizeof json, "{\"activation\": \"%s\"}", names[i]);
        nnp_layer *l = kit_layer("Activation", json);
        nnp_shape xs = KS(1, 4);
        nnp_shape os = kit_build(l, 1, &xs);
        nnp_tensor x = kit_tensor(&xs), y = kit_tensor(&os);
        float *xv = x.data;
        xv[0] = -1000.0f;
        xv[1] = 1000.0f;
        xv[2] = 0.0f;
        xv[3] = -80.0f;
        nnp_tensor *ins[1] = {&x};
        kit_forward(l, ins, 1, &y, NNP_MODE_INFER);
        for (int k = 0; k < 4; k++)
            cr_assert(isfinite(((float *)y.data)[k]), "%s(%g) = %g", names[i], xv[k],
                      ((float *)y.data)[k]);
        nnp_tensor_free(&x);
        nnp_tensor_free(&y);
        nnp_layer_free(l);
    }
}

Test(activation, deterministic_across_thread_counts)
{
    kit_seed(15);
    const char *kinds[3] = {"Activation", "Softmax", "ReLU"};
    const char *json[3] = {"{\"activation\": \"gelu\"}", "{\"axis\": 1}", "{\"max_value\": 2}"};
    for (int i = 0; i < 3; i++) {
        nnp_layer *l = kit_layer(kinds[i], json[i]);
        nnp_shape xs = KS(64, 33, 40);
        nnp_shape os = kit_build(l, 1, &xs);
        nnp_tensor x = kit_tensor(&xs);
        kit_fill(&x, -3, 3);
        nnp_tensor *ins[1] = {&x};
        kit_threads_identical(l, ins, 1, &os, NNP_MODE_TRAIN);
        nnp_tensor_free(&x);
        nnp_layer_free(l);
    }
}

Test(activation, clear_errors)
{
    nnp_error err;
    nnp_shape r2 = KS(2, 3);
    cr_assert_neq(kit_layer_fails("Activation", "{\"activation\": \"bogus\"}", 1, &r2, &err),
                  NNP_OK);
    cr_assert(strstr(err.msg, "bogus"), "%s", err.msg);
    cr_assert_neq(kit_layer_fails("Softmax", "{\"axis\": 2}", 1, &r2, &err), NNP_OK);
    cr_assert(strstr(err.msg, "axis 2"), "%s", err.msg);
    cr_assert_neq(kit_layer_fails("ReLU", "{\"negative_slope\": -1}", 1, &r2, &err), NNP_OK);
    cr_assert(strstr(err.msg, "negative_slope"), "%s", err.msg);
}
