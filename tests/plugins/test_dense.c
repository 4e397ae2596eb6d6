/* Dense through the plugin ABI: forward against a float64 loop, gradients
 * against finite differences, Keras defaults, regularizers, constraints,
 * determinism across thread counts, and clear errors. */
#include "test_activation_kit.h"

TestSuite(dense, .init = kit_setup, .fini = kit_teardown);

/* y = act(x . K + b) in double, over the last axis. */
static double *ref_dense(const nnp_tensor *x, const nnp_tensor *k, const nnp_tensor *b,
                         const char *act)
{
    const int64_t in = k->shape.dims[0], units = k->shape.dims[1];
    const int64_t rows = kit_numel(&x->shape) / in;
    double *y = calloc((size_t)(rows * units), sizeof *y);
    const float *xp = x->data, *kp = k->data, *bp = b ? b->data : NULL;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t u = 0; u < units; u++) {
            double s = bp ? bp[u] : 0.0;
            for (int64_t i = 0; i < in; i++)
                s += (double)xp[r * in + i] * kp[i * units + u];
            y[r * units + u] = s;
        }
    kit_act_rows(act, y, rows, units);
    return y;
}

static void check_forward(const char *act, const nnp_shape *xs, int64_t units, int use_bias)
{
    char json[256];
    snprintf(json, sizeof json, "{\"units\": %lld, \"activation\": \"%s\", \"use_bias\": %s}",
             (long long)units, act, use_bias ? "true" : "false");
    nnp_layer *l = kit_layer("Dense", json);
    nnp_shape os = kit_build(l, 1, xs);
    cr_assert_eq(os.rank, xs->rank);
    cr_assert_eq(os.dims[os.rank - 1], units);
    kit_randomize_weights(l, -0.5, 0.5);
    nnp_tensor x = kit_tensor(xs), y = kit_tensor(&os);
    kit_fill(&x, -1, 1);
    nnp_tensor *ins[1] = {&x};
    kit_forward(l, ins, 1, &y, NNP_MODE_INFER);
    double *ref = ref_dense(&x, kit_weight(l, "kernel")->value,
                            use_bias ? kit_weight(l, "bias")->value : NULL, act);
    char what[64];
    snprintf(what, sizeof what, "Dense %s", act);
    tu_assert_close_f32(what, y.data, ref, kit_numel(&os), 1e-5, 2e-6);
    free(ref);
    nnp_tensor_free(&x);
    nnp_tensor_free(&y);
    nnp_layer_free(l);
}

static const char *const all_acts[] = {
    "linear", "relu", "sigmoid", "tanh", "softmax", "log_softmax", "elu", "selu", "softplus",
    "softsign", "gelu", "gelu_new", "swish", "silu", "hard_sigmoid", "hard_silu", "exponential",
    "relu6", "leaky_relu", "mish",
};
#define N_ACTS (sizeof all_acts / sizeof all_acts[0])

Test(dense, forward_matches_float64_loop_every_activation)
{
    kit_seed(1);
    for (size_t i = 0; i < N_ACTS; i++) {
        nnp_shape xs = KS(5, 7);
        check_forward(all_acts[i], &xs, 4, 1);
    }
}

Test(dense, forward_rank3_and_no_bias_and_large)
{
    kit_seed(2);
    nnp_shape a = KS(2, 3, 6), b = KS(2, 2, 3, 5), c = KS(67, 129);
    check_forward("linear", &a, 5, 0);
    check_forward("tanh", &b, 3, 1);
    check_forward("softmax", &b, 4, 1);
    check_forward("relu", &c, 97, 1);
}

Test(dense, gradients_match_finite_differences_every_activation)
{
    kit_seed(3);
    for (size_t i = 0; i < N_ACTS; i++) {
        char json[160];
        snprintf(json, sizeof json, "{\"units\": 4, \"activation\": \"%s\"}", all_acts[i]);
        nnp_layer *l = kit_layer("Dense", json);
        nnp_shape xs = KS(3, 5);
        nnp_shape os = kit_build(l, 1, &xs);
        kit_randomize_weights(l, -0.6, 0.6);
        nnp_tensor x = kit_tensor(&xs);
        kit_fill(&x, -1.5, 1.5);
        nnp_tensor *ins[1] = {&x};
        kit_gc g = kit_gc_default();
        g.label = all_acts[i];
        kit_gradcheck(&g, l, ins, 1, &os);
        nnp_tensor_free(&x);
        nnp_layer_free(l);
    }
}

Test(dense, gradients_rank3_no_bias)
{
    kit_seed(4);
    nnp_layer *l = kit_layer("Dense", "{\"units\": 3, \"use_bias\": false, \"activation\": "
                                      "\"tanh\"}");
    nnp_shape xs = KS(2, 4, 5);
    nnp_shape os = kit_build(l, 1, &xs);
    cr_assert_eq(nnp_layer_n_weights(l), 1);
    nnp_tensor x = kit_tensor(&xs);
    kit_fill(&x, -1, 1);
    nnp_tensor *ins[1] = {&x};
    kit_gc g = kit_gc_default();
    kit_gradcheck(&g, l, ins, 1, &os);
    nnp_tensor_free(&x);
    nnp_layer_free(l);
}

Test(dense, weight_gradients_accumulate)
{
    kit_seed(5);
    nnp_layer *l = kit_layer("Dense", "{\"units\": 3, \"activation\": \"sigmoid\"}");
    nnp_shape xs = KS(4, 2);
    nnp_shape os = kit_build(l, 1, &xs);
    nnp_tensor x = kit_tensor(&xs), y = kit_tensor(&os), gy = kit_tensor(&os);
    kit_fill(&x, -1, 1);
    kit_fill(&gy, -1, 1);
    nnp_tensor *ins[1] = {&x};
    nnp_tensor *gxs[1] = {NULL};
    kit_forward(l, ins, 1, &y, NNP_MODE_TRAIN);
    nnp_layer_zero_grad(l);
    kit_backward(l, ins, 1, &y, &gy, gxs, NNP_MODE_TRAIN);
    float once[6], bonce[3];
    memcpy(once, kit_weight(l, "kernel")->grad->data, sizeof once);
    memcpy(bonce, kit_weight(l, "bias")->grad->data, sizeof bonce);
    kit_backward(l, ins, 1, &y, &gy, gxs, NNP_MODE_TRAIN);
    const float *k2 = kit_weight(l, "kernel")->grad->data, *b2 = kit_weight(l, "bias")->grad->data;
    for (int i = 0; i < 6; i++)
        cr_assert_float_eq(k2[i], 2 * once[i], 1e-6);
    for (int i = 0; i < 3; i++)
        cr_assert_float_eq(b2[i], 2 * bonce[i], 1e-6);
    nnp_tensor_free(&x);
    nnp_tensor_free(&y);
    nnp_tensor_free(&gy);
    nnp_layer_free(l);
}

Test(dense, keras_defaults_weights_and_initializers)
{
    nnp_layer *l = kit_layer("Dense", "{\"units\": 30, \"seed\": 7}");
    nnp_shape xs = KS(-1, 20);
    nnp_shape os = kit_build(l, 1, &xs);
    cr_assert_eq(os.dims[0], -1);
    cr_assert_eq(os.dims[1], 30);
    cr_assert_eq(nnp_layer_n_weights(l), 2);
    const nnp_weight *k = nnp_layer_weight(l, 0), *b = nnp_layer_weight(l, 1);
    cr_assert_str_eq(k->name, "kernel");
    cr_assert_str_eq(b->name, "bias");
    cr_assert_eq(k->value->shape.rank, 2);
    cr_assert_eq(k->value->shape.dims[0], 20);
    cr_assert_eq(k->value->shape.dims[1], 30);
    cr_assert_eq(b->value->shape.rank, 1);
    cr_assert_eq(b->value->shape.dims[0], 30);
    cr_assert(k->flags & NNP_WEIGHT_TRAINABLE);
    /* glorot_uniform: U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)) */
    const double limit = sqrt(6.0 / 50.0);
    const float *kv = k->value->data, *bv = b->value->data;
    double sumsq = 0;
    for (int i = 0; i < 600; i++) {
        cr_assert(fabs(kv[i]) <= limit + 1e-7, "kernel[%d] = %g beyond %g", i, kv[i], limit);
        sumsq += (double)kv[i] * kv[i];
    }
    /* variance of U(-l, l) is l^2 / 3 */
    cr_assert(fabs(sumsq / 600 - limit * limit / 3) < 0.25 * limit * limit / 3);
    for (int i = 0; i < 30; i++)
        cr_assert_eq(bv[i], 0.0f);
    nnp_layer_free(l);
}

Test(dense, rebuild_for_batch_keeps_weights)
{
    nnp_layer *l = kit_layer("Dense", "{\"units\": 3, \"activation\": \"relu\"}");
    nnp_shape a = KS(-1, 4), b = KS(6, 4);
    kit_build(l, 1, &a);
    float before[12];
    memcpy(before, kit_weight(l, "kernel")->value->data, sizeof before);
    kit_build(l, 1, &b);
    cr_assert(memcmp(before, kit_weight(l, "kernel")->value->data, sizeof before) == 0);
    nnp_layer_free(l);
}

Test(dense, regularizers_add_loss_and_gradient)
{
    kit_seed(6);
    nnp_layer *l = kit_layer("Dense", "{\"units\": 3, \"kernel_regularizer\": {\"class_name\": "
                                      "\"L2\", \"config\": {\"l2\": 0.1}}, \"bias_regularizer\": "
                                      "{\"class_name\": \"L1\", \"config\": {\"l1\": 0.5}}}");
    nnp_shape xs = KS(2, 4);
    nnp_shape os = kit_build(l, 1, &xs);
    kit_randomize_weights(l, -1, 1);
    const float *k = kit_weight(l, "kernel")->value->data, *b = kit_weight(l, "bias")->value->data;
    double expect = 0;
    for (int i = 0; i < 12; i++)
        expect += 0.1 * k[i] * k[i];
    for (int i = 0; i < 3; i++)
        expect += 0.5 * fabs(b[i]);
    cr_assert_float_eq(nnp_layer_regularization_loss(l), expect, 1e-5);
    /* with a zero output gradient only the regularizer gradients (added once by the host) remain */
    nnp_tensor x = kit_tensor(&xs), y = kit_tensor(&os), gy = kit_tensor(&os);
    kit_fill(&x, -1, 1);
    nnp_tensor *ins[1] = {&x};
    nnp_tensor *gxs[1] = {NULL};
    kit_forward(l, ins, 1, &y, NNP_MODE_TRAIN);
    nnp_layer_zero_grad(l);
    kit_backward(l, ins, 1, &y, &gy, gxs, NNP_MODE_TRAIN);
    cr_assert_float_eq(kit_weight(l, "kernel")->grad->data ? ((float *)kit_weight(l, "kernel")
                       ->grad->data)[1] : 1, 0.0f, 0, "backward adds no regularizer gradient");
    nnp_layer_add_regularization_grads(l);
    const float *dk = kit_weight(l, "kernel")->grad->data, *db = kit_weight(l, "bias")->grad->data;
    for (int i = 0; i < 12; i++)
        cr_assert_float_eq(dk[i], 0.2 * k[i], 1e-6);
    for (int i = 0; i < 3; i++)
        cr_assert_float_eq(db[i], b[i] > 0 ? 0.5 : -0.5, 1e-6);
    nnp_tensor_free(&x);
    nnp_tensor_free(&y);
    nnp_tensor_free(&gy);
    nnp_layer_free(l);
}

Test(dense, constraints_project_weights)
{
    kit_seed(7);
    nnp_layer *l = kit_layer("Dense", "{\"units\": 4, \"kernel_constraint\": \"non_neg\", "
                                      "\"bias_constraint\": {\"class_name\": \"MaxNorm\", "
                                      "\"config\": {\"max_value\": 0.5, \"axis\": 0}}}");
    nnp_shape xs = KS(2, 3);
    kit_build(l, 1, &xs);
    kit_randomize_weights(l, -2, 2);
    nnp_error err = {0};
    cr_assert_eq(nnp_layer_apply_constraints(l, &err), NNP_OK, "%s", err.msg);
    const float *k = kit_weight(l, "kernel")->value->data, *b = kit_weight(l, "bias")->value->data;
    for (int i = 0; i < 12; i++)
        cr_assert(k[i] >= 0.0f);
    double n2 = 0;
    for (int i = 0; i < 4; i++)
        n2 += (double)b[i] * b[i];
    cr_assert(sqrt(n2) <= 0.5 + 1e-5, "bias norm %g", sqrt(n2));
    nnp_layer_free(l);
}

Test(dense, deterministic_across_thread_counts)
{
    kit_seed(8);
    const char *acts[3] = {"linear", "gelu", "softmax"};
    for (int a = 0; a < 3; a++) {
        char json[128];
        snprintf(json, sizeof json, "{\"units\": 190, \"activation\": \"%s\"}", acts[a]);
        nnp_layer *l = kit_layer("Dense", json);
        nnp_shape xs = KS(257, 300);
        nnp_shape os = kit_build(l, 1, &xs);
        kit_randomize_weights(l, -0.1, 0.1);
        nnp_tensor x = kit_tensor(&xs);
        kit_fill(&x, -1, 1);
        nnp_tensor *ins[1] = {&x};
        kit_threads_identical(l, ins, 1, &os, NNP_MODE_TRAIN);
        nnp_tensor_free(&x);
        nnp_layer_free(l);
    }
}

Test(dense, clear_errors)
{
    nnp_error err;
    nnp_shape r1 = KS(5), ok = KS(2, 3), unknown = KS(2, -1);
    cr_assert_eq(kit_layer_fails("Dense", "{\"units\": 2}", 1, &r1, &err), NNP_ERR_SHAPE);
    cr_assert(strstr(err.msg, "rank 1"), "%s", err.msg);
    cr_assert_neq(kit_layer_fails("Dense", "{}", 1, &ok, &err), NNP_OK);
    cr_assert(strstr(err.msg, "units"), "%s", err.msg);
    cr_assert_neq(kit_layer_fails("Dense", "{\"units\": 0}", 1, &ok, &err), NNP_OK);
    cr_assert(strstr(err.msg, "units"), "%s", err.msg);
    cr_assert_neq(kit_layer_fails("Dense", "{\"units\": 2, \"activation\": \"bogus\"}", 1, &ok,
                                  &err),
                  NNP_OK);
    cr_assert(strstr(err.msg, "bogus"), "%s", err.msg);
    cr_assert_neq(kit_layer_fails("Dense", "{\"units\": 2, \"activity_regularizer\": \"l2\"}", 1,
                                  &ok, &err),
                  NNP_OK);
    cr_assert(strstr(err.msg, "activity_regularizer"), "%s", err.msg);
    cr_assert_eq(kit_layer_fails("Dense", "{\"units\": 2}", 1, &unknown, &err), NNP_ERR_SHAPE);
    cr_assert(strstr(err.msg, "last axis"), "%s", err.msg);

    /* forward with another feature count than built */
    nnp_layer *l = kit_layer("Dense", "{\"units\": 2}");
    kit_build(l, 1, &ok);
    nnp_shape bad = KS(2, 4), os = KS(2, 2);
    nnp_tensor x = kit_tensor(&bad), y = kit_tensor(&os);
    const nnp_tensor *ins[1] = {&x};
    memset(&err, 0, sizeof err);
    cr_assert_eq(nnp_layer_forward(l, ins, 1, &y, NNP_MODE_INFER, &err), NNP_ERR_SHAPE);
    cr_assert(strstr(err.msg, "built for 3 features"), "%s", err.msg);
    nnp_tensor_free(&x);
    nnp_tensor_free(&y);
    nnp_layer_free(l);
}

/* PyTorch's Linear -> BatchNorm1d -> ReLU -> Linear exported at opset 15
 * (Gemm with transB=1), against torch's own outputs. */
Test(dense, torch_mlp_export_matches_torch)
{
    kit_torch_case("torch-export/mlp_bn1d_op15", "expected", NNP_MODE_INFER);
    kit_torch_case("torch-export/mlp_bn1d_op15", "expected_training", NNP_MODE_TRAIN);
}
