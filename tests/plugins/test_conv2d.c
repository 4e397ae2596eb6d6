/* Conv2D through the plugin ABI: forward against a direct float64 loop,
 * gradients against finite differences (both data formats, strides, 'same'
 * with even kernels, dilation, groups, explicit pads), determinism across
 * thread counts, and clear errors. */
#include "test_activation_kit.h"

TestSuite(conv2d, .init = kit_setup, .fini = kit_teardown);

typedef struct conv_case {
    int64_t N, H, W, C, F;
    int64_t kh, kw, sh, sw, dh, dw, groups;
    const char *padding;       /* "valid" / "same" */
    const int64_t *pads;       /* explicit [top, left, bottom, right] or NULL */
    int channels_first;
    int use_bias;
    const char *activation;
} conv_case;

static void json_of(const conv_case *c, char *buf, size_t n)
{
    char pads[96] = "";
    if (c->pads)
        snprintf(pads, sizeof pads, ", \"pads\": [%lld, %lld, %lld, %lld]", (long long)c->pads[0],
                 (long long)c->pads[1], (long long)c->pads[2], (long long)c->pads[3]);
    snprintf(buf, n,
             "{\"filters\": %lld, \"kernel_size\": [%lld, %lld], \"strides\": [%lld, %lld], "
             "\"dilation_rate\": [%lld, %lld], \"groups\": %lld, \"padding\": \"%s\", "
             "\"data_format\": \"%s\", \"use_bias\": %s, \"activation\": \"%s\"%s}",
             (long long)c->F, (long long)c->kh, (long long)c->kw, (long long)c->sh,
             (long long)c->sw, (long long)c->dh, (long long)c->dw, (long long)c->groups,
             c->padding, c->channels_first ? "channels_first" : "channels_last",
             c->use_bias ? "true" : "false", c->activation ? c->activation : "linear", pads);
}

/* Output size and padding before one axis, from the Keras / TF rules. */
static void axis_ref(const conv_case *c, int axis, int64_t in, int64_t *out, int64_t *before)
{
    const int64_t k = axis ? c->kw : c->kh, s = axis ? c->sw : c->sh, d = axis ? c->dw : c->dh;
    const int64_t ek = (k - 1) * d + 1;
    if (c->pads) {
        *before = c->pads[axis];
        *out = (in + c->pads[axis] + c->pads[axis + 2] - ek) / s + 1;
    } else if (!strcmp(c->padding, "same")) {
        *out = (in + s - 1) / s;
        int64_t total = (*out - 1) * s + ek - in;
        *before = total > 0 ? total / 2 : 0;
    } else {
        *out = (in - ek) / s + 1;
        *before = 0;
    }
}

static nnp_shape in_shape(const conv_case *c)
{
    return c->channels_first ? KS(c->N, c->C, c->H, c->W) : KS(c->N, c->H, c->W, c->C);
}

/* Direct convolution in double. */
static double *ref_conv(const conv_case *c, const float *x, const float *k, const float *b,
                        int64_t *OH, int64_t *OW)
{
    int64_t pt, pl;
    axis_ref(c, 0, c->H, OH, &pt);
    axis_ref(c, 1, c->W, OW, &pl);
    const int64_t Cg = c->C / c->groups, Fg = c->F / c->groups;
    double *y = calloc((size_t)(c->N * *OH * *OW * c->F), sizeof *y);
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t oh = 0; oh < *OH; oh++)
            for (int64_t ow = 0; ow < *OW; ow++)
                for (int64_t f = 0; f < c->F; f++) {
                    const int64_t g = f / Fg;
                    double s = b ? b[f] : 0.0;
                    for (int64_t i = 0; i < c->kh; i++)
                        for (int64_t j = 0; j < c->kw; j++) {
                            const int64_t ih = oh * c->sh - pt + i * c->dh;
                            const int64_t iw = ow * c->sw - pl + j * c->dw;
                            if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W)
                                continue;
                            for (int64_t cc = 0; cc < Cg; cc++) {
                                const int64_t ch = g * Cg + cc;
                                const double xv =
                                    c->channels_first
                                        ? x[((n * c->C + ch) * c->H + ih) * c->W + iw]
                                        : x[((n * c->H + ih) * c->W + iw) * c->C + ch];
                                s += xv * k[((i * c->kw + j) * Cg + cc) * c->F + f];
                            }
                        }
                    const int64_t at = c->channels_first
                                           ? ((n * c->F + f) * *OH + oh) * *OW + ow
                                           : ((n * *OH + oh) * *OW + ow) * c->F + f;
                    y[at] = s;
                }
    const int64_t last = c->channels_first ? *OW : c->F;
    kit_act_rows(c->activation, y, c->N * *OH * *OW * c->F / last, last);
    return y;
}

static void check_forward(const conv_case *c)
{
    char json[512];
    json_of(c, json, sizeof json);
    nnp_layer *l = kit_layer("Conv2D", json);
    nnp_shape xs = in_shape(c);
    nnp_shape os = kit_build(l, 1, &xs);
    kit_randomize_weights(l, -0.5, 0.5);
    nnp_tensor x = kit_tensor(&xs), y = kit_tensor(&os);
    kit_fill(&x, -1, 1);
    nnp_tensor *ins[1] = {&x};
    kit_forward(l, ins, 1, &y, NNP_MODE_INFER);
    int64_t OH, OW;
    double *ref = ref_conv(c, x.data, kit_weight(l, "kernel")->value->data,
                           c->use_bias ? kit_weight(l, "bias")->value->data : NULL, &OH, &OW);
    nnp_shape es = c->channels_first ? KS(c->N, c->F, OH, OW) : KS(c->N, OH, OW, c->F);
    cr_assert(es.rank == os.rank && !memcmp(es.dims, os.dims, sizeof(int64_t) * 4),
              "%s: output shape [%lld,%lld,%lld,%lld], expected [%lld,%lld,%lld,%lld]", json,
              (long long)os.dims[0], (long long)os.dims[1], (long long)os.dims[2],
              (long long)os.dims[3], (long long)es.dims[0], (long long)es.dims[1],
              (long long)es.dims[2], (long long)es.dims[3]);
    tu_assert_close_f32(json, y.data, ref, kit_numel(&os), 1e-5, 1e-5);
    free(ref);
    nnp_tensor_free(&x);
    nnp_tensor_free(&y);
    nnp_layer_free(l);
}

static const int64_t pads_a[4] = {1, 0, 2, 1};
static const int64_t pads_b[4] = {0, 2, 1, 0};

/* N, H, W, C, F, kh, kw, sh, sw, dh, dw, groups, padding, pads, cf, bias, act */
static const conv_case cases[] = {
    {2, 7, 6, 3, 4, 3, 3, 1, 1, 1, 1, 1, "valid", NULL, 0, 1, NULL},
    {2, 7, 6, 3, 4, 3, 3, 1, 1, 1, 1, 1, "valid", NULL, 1, 1, NULL},
    {2, 8, 7, 3, 5, 4, 2, 2, 2, 1, 1, 1, "same", NULL, 0, 1, NULL},
    {2, 8, 7, 3, 5, 4, 2, 2, 2, 1, 1, 1, "same", NULL, 1, 1, NULL},
    {1, 9, 9, 2, 3, 2, 2, 2, 2, 1, 1, 1, "same", NULL, 0, 0, NULL},
    {2, 9, 8, 2, 3, 3, 3, 1, 1, 2, 2, 1, "same", NULL, 0, 1, NULL},
    {2, 9, 8, 2, 3, 3, 2, 1, 1, 2, 3, 1, "valid", NULL, 1, 1, NULL},
    {2, 6, 6, 4, 6, 3, 3, 1, 1, 1, 1, 2, "same", NULL, 0, 1, NULL},
    {2, 6, 6, 6, 4, 3, 3, 2, 1, 1, 1, 2, "valid", NULL, 1, 1, NULL},
    {2, 5, 4, 6, 6, 1, 1, 1, 1, 1, 1, 3, "valid", NULL, 0, 1, NULL},
    {2, 5, 4, 4, 3, 1, 1, 1, 1, 1, 1, 1, "valid", NULL, 1, 1, NULL},
    {2, 5, 4, 4, 3, 1, 1, 1, 1, 1, 1, 1, "same", NULL, 0, 0, NULL},
    {2, 6, 7, 2, 3, 3, 3, 2, 2, 1, 1, 1, "valid", pads_a, 0, 1, NULL},
    {2, 6, 7, 2, 3, 3, 2, 2, 3, 1, 1, 1, "valid", pads_b, 1, 1, NULL},
    {1, 5, 5, 2, 3, 1, 1, 2, 2, 1, 1, 1, "valid", NULL, 1, 1, NULL},
    {2, 6, 5, 3, 4, 3, 3, 1, 1, 1, 1, 1, "same", NULL, 0, 1, "tanh"},
    {2, 6, 5, 3, 4, 3, 3, 1, 1, 1, 1, 1, "same", NULL, 1, 1, "softmax"},
    {2, 6, 5, 3, 4, 3, 3, 1, 1, 1, 1, 1, "same", NULL, 0, 1, "relu"},
};
#define N_CASES (sizeof cases / sizeof cases[0])

Test(conv2d, forward_matches_direct_float64_loop)
{
    kit_seed(21);
    for (size_t i = 0; i < N_CASES; i++)
        check_forward(&cases[i]);
}

Test(conv2d, forward_many_blocks_per_image)
{
    /* Kg = 5*5*64 = 1600: an im2col block holds 40 of the 323 positions */
    kit_seed(22);
    conv_case a = {2, 17, 19, 64, 7, 5, 5, 1, 1, 1, 1, 1, "same", NULL, 0, 1, NULL};
    conv_case b = a;
    b.channels_first = 1;
    b.groups = 1;
    b.sh = 2;
    check_forward(&a);
    check_forward(&b);
}

Test(conv2d, gradients_match_finite_differences)
{
    kit_seed(23);
    for (size_t i = 0; i < N_CASES; i++) {
        const conv_case *c = &cases[i];
        char json[512];
        json_of(c, json, sizeof json);
        nnp_layer *l = kit_layer("Conv2D", json);
        nnp_shape xs = in_shape(c);
        nnp_shape os = kit_build(l, 1, &xs);
        kit_randomize_weights(l, -0.5, 0.5);
        nnp_tensor x = kit_tensor(&xs);
        kit_fill(&x, -1, 1);
        nnp_tensor *ins[1] = {&x};
        kit_gc g = kit_gc_default();
        g.max_checks = 60;
        kit_gradcheck(&g, l, ins, 1, &os);
        nnp_tensor_free(&x);
        nnp_layer_free(l);
    }
}

Test(conv2d, input_gradient_with_many_blocks)
{
    kit_seed(24);
    conv_case c = {2, 9, 10, 64, 4, 5, 5, 2, 1, 1, 1, 2, "same", NULL, 1, 1, "sigmoid"};
    char json[512];
    json_of(&c, json, sizeof json);
    nnp_layer *l = kit_layer("Conv2D", json);
    nnp_shape xs = in_shape(&c);
    nnp_shape os = kit_build(l, 1, &xs);
    kit_randomize_weights(l, -0.1, 0.1);
    nnp_tensor x = kit_tensor(&xs);
    kit_fill(&x, -1, 1);
    nnp_tensor *ins[1] = {&x};
    kit_gc g = kit_gc_default();
    g.max_checks = 80;
    kit_gradcheck(&g, l, ins, 1, &os);
    nnp_tensor_free(&x);
    nnp_layer_free(l);
}

Test(conv2d, keras_weights_and_glorot_fans)
{
    nnp_layer *l = kit_layer("Conv2D", "{\"filters\": 8, \"kernel_size\": 3, \"groups\": 2}");
    nnp_shape xs = KS(-1, 10, 10, 6);
    nnp_shape os = kit_build(l, 1, &xs);
    cr_assert_eq(os.dims[0], -1);
    cr_assert_eq(os.dims[1], 8);
    cr_assert_eq(os.dims[2], 8);
    cr_assert_eq(os.dims[3], 8);
    const nnp_weight *k = nnp_layer_weight(l, 0), *b = nnp_layer_weight(l, 1);
    cr_assert_str_eq(k->name, "kernel");
    cr_assert_str_eq(b->name, "bias");
    const int64_t want[4] = {3, 3, 3, 8};
    cr_assert_eq(k->value->shape.rank, 4);
    cr_assert(!memcmp(k->value->shape.dims, want, sizeof want));
    /* fan_in = 3*3*3, fan_out = 3*3*8 */
    const double limit = sqrt(6.0 / (27 + 72));
    const float *kv = k->value->data;
    for (int i = 0; i < 216; i++)
        cr_assert(fabs(kv[i]) <= limit + 1e-7);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(((float *)b->value->data)[i], 0.0f);
    nnp_layer_free(l);
}

Test(conv2d, deterministic_across_thread_counts)
{
    kit_seed(25);
    const conv_case cs[3] = {
        {7, 12, 11, 16, 24, 3, 3, 1, 1, 1, 1, 1, "same", NULL, 0, 1, "gelu"},
        {5, 13, 12, 64, 8, 5, 5, 2, 2, 1, 1, 2, "same", NULL, 1, 1, NULL},
        {6, 10, 10, 32, 16, 1, 1, 1, 1, 1, 1, 1, "valid", NULL, 1, 1, "relu"},
    };
    for (int i = 0; i < 3; i++) {
        char json[512];
        json_of(&cs[i], json, sizeof json);
        nnp_layer *l = kit_layer("Conv2D", json);
        nnp_shape xs = in_shape(&cs[i]);
        nnp_shape os = kit_build(l, 1, &xs);
        kit_randomize_weights(l, -0.2, 0.2);
        nnp_tensor x = kit_tensor(&xs);
        kit_fill(&x, -1, 1);
        nnp_tensor *ins[1] = {&x};
        kit_threads_identical(l, ins, 1, &os, NNP_MODE_TRAIN);
        nnp_tensor_free(&x);
        nnp_layer_free(l);
    }
}

Test(conv2d, regularizer_and_constraint)
{
    kit_seed(26);
    nnp_layer *l = kit_layer("Conv2D", "{\"filters\": 2, \"kernel_size\": 2, "
                                       "\"kernel_regularizer\": {\"class_name\": \"L2\", "
                                       "\"config\": {\"l2\": 0.5}}, \"kernel_constraint\": "
                                       "\"non_neg\"}");
    nnp_shape xs = KS(1, 3, 3, 1);
    nnp_shape os = kit_build(l, 1, &xs);
    kit_randomize_weights(l, -1, 1);
    const float *k = kit_weight(l, "kernel")->value->data;
    double expect = 0;
    for (int i = 0; i < 8; i++)
        expect += 0.5 * k[i] * k[i];
    cr_assert_float_eq(nnp_layer_regularization_loss(l), expect, 1e-5);
    nnp_tensor x = kit_tensor(&xs), y = kit_tensor(&os), gy = kit_tensor(&os);
    nnp_tensor *ins[1] = {&x};
    nnp_tensor *gxs[1] = {NULL};
    kit_forward(l, ins, 1, &y, NNP_MODE_TRAIN);
    nnp_layer_zero_grad(l);
    kit_backward(l, ins, 1, &y, &gy, gxs, NNP_MODE_TRAIN);
    cr_assert_float_eq(kit_weight(l, "kernel")->grad->data ? ((float *)kit_weight(l, "kernel")
                       ->grad->data)[1] : 1, 0.0f, 0, "backward adds no regularizer gradient");
    nnp_layer_add_regularization_grads(l);
    const float *dk = kit_weight(l, "kernel")->grad->data;
    for (int i = 0; i < 8; i++)
        cr_assert_float_eq(dk[i], k[i], 1e-6);
    nnp_error err = {0};
    cr_assert_eq(nnp_layer_apply_constraints(l, &err), NNP_OK, "%s", err.msg);
    for (int i = 0; i < 8; i++)
        cr_assert(k[i] >= 0.0f);
    nnp_tensor_free(&x);
    nnp_tensor_free(&y);
    nnp_tensor_free(&gy);
    nnp_layer_free(l);
}

Test(conv2d, clear_errors)
{
    nnp_error err;
    nnp_shape x = KS(1, 5, 5, 4), r3 = KS(5, 5, 4), small = KS(1, 2, 5, 4);
    cr_assert_neq(kit_layer_fails("Conv2D", "{\"filters\": 2, \"kernel_size\": 3, \"padding\": "
                                            "\"full\"}",
                                  1, &x, &err),
                  NNP_OK);
    cr_assert(strstr(err.msg, "full"), "%s", err.msg);
    cr_assert_eq(kit_layer_fails("Conv2D", "{\"filters\": 2, \"kernel_size\": 3}", 1, &small,
                                 &err),
                 NNP_ERR_SHAPE);
    cr_assert(strstr(err.msg, "larger than"), "%s", err.msg);
    cr_assert(strstr(err.msg, "valid"), "%s", err.msg);
    cr_assert_eq(kit_layer_fails("Conv2D", "{\"filters\": 2, \"kernel_size\": [3, 1], "
                                           "\"dilation_rate\": 3}",
                                 1, &x, &err),
                 NNP_ERR_SHAPE);
    cr_assert(strstr(err.msg, "spans 7x1"), "%s", err.msg);
    cr_assert_eq(kit_layer_fails("Conv2D", "{\"filters\": 2, \"kernel_size\": 3}", 1, &r3, &err),
                 NNP_ERR_SHAPE);
    cr_assert(strstr(err.msg, "rank-4"), "%s", err.msg);
    cr_assert_neq(kit_layer_fails("Conv2D", "{\"filters\": 3, \"kernel_size\": 1, \"groups\": 2}",
                                  1, &x, &err),
                  NNP_OK);
    cr_assert(strstr(err.msg, "groups"), "%s", err.msg);
    cr_assert_neq(kit_layer_fails("Conv2D", "{\"filters\": 6, \"kernel_size\": 1, \"groups\": 3}",
                                  1, &x, &err),
                  NNP_OK);
    cr_assert(strstr(err.msg, "groups"), "%s", err.msg);
    cr_assert_neq(kit_layer_fails("Conv2D", "{\"filters\": 2}", 1, &x, &err), NNP_OK);
    cr_assert(strstr(err.msg, "kernel_size"), "%s", err.msg);
    cr_assert_neq(kit_layer_fails("Conv2D", "{\"filters\": 2, \"kernel_size\": [1, 2, 3]}", 1, &x,
                                  &err),
                  NNP_OK);
    cr_assert(strstr(err.msg, "kernel_size"), "%s", err.msg);
    cr_assert_neq(kit_layer_fails("Conv2D", "{\"filters\": 2, \"kernel_size\": 1, \"pads\": [1]}",
                                  1, &x, &err),
                  NNP_OK);
    cr_assert(strstr(err.msg, "pads"), "%s", err.msg);
}

/* PyTorch's Conv-BN-ReLU-MaxPool-Conv-BN-ReLU-GlobalAvgPool-Flatten-Linear
 * exported at opset 15 (Conv with pads, MaxPool, GlobalAveragePool,
 * Flatten, Gemm), against torch's own outputs. */
Test(conv2d, torch_cnn_export_matches_torch)
{
    kit_torch_case("torch-export/cnn_bn2d_op15", "expected", NNP_MODE_INFER);
    kit_torch_case("torch-export/cnn_bn2d_op15", "expected_training", NNP_MODE_TRAIN);
}
