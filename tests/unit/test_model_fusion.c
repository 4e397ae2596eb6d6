/* Inference plans that fold BatchNormalization (its inference affine) and a
 * following ReLU into the Conv2D before them: the fused model equals the
 * same model run layer by layer (and PyTorch on an exported CNN), on the
 * oneDNN and the im2col engines, in both data formats; the plan follows
 * weight changes; a backward after a fused forward equals one after an
 * unfused forward, bit for bit; chains that must not fuse do not. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnplug/keras.h"
#include "nnplug/onnx.h"
#include "testutil.h"

static nnp_registry *reg;
static void setup(void) { reg = tu_registry(); }
static void teardown(void) { nnp_registry_free(reg); }

TestSuite(fusion, .init = setup, .fini = teardown);

static uint64_t rng = 12345;
static float uniform(float lo, float hi)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((rng >> 40) & 0xffffff) / 16777216.0f;
}

/* Conv2D -> BN -> ReLU -> Conv2D -> BN -> Activation(relu) -> Conv2D -> BN
 * -> GlobalAveragePooling2D -> Dense (the last BN has no ReLU after it; the
 * second Conv2D has 2 groups). */
static nnp_model *keras_cnn(const char *format)
{
    char json[3000];
    const char *axis = strcmp(format, "channels_first") == 0 ? "1" : "-1";
    const char *in = strcmp(format, "channels_first") == 0 ? "[null, 3, 10, 9]" : "[null, 10, 9, 3]";
    snprintf(json, sizeof json,
             "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"m\", \"layers\": ["
             "{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"c1\", \"filters\": 16, "
             "\"kernel_size\": 3, \"padding\": \"same\", \"data_format\": \"%s\", "
             "\"batch_input_shape\": %s}},"
             "{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"b1\", \"axis\": %s}},"
             "{\"class_name\": \"ReLU\", \"config\": {\"name\": \"r1\"}},"
             "{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"c2\", \"filters\": 24, "
             "\"kernel_size\": 3, \"strides\": 2, \"groups\": 2, \"use_bias\": false, \"data_format\": \"%s\"}},"
             "{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"b2\", \"axis\": %s}},"
             "{\"class_name\": \"Activation\", \"config\": {\"name\": \"r2\", \"activation\": "
             "\"relu\"}},"
             "{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"c3\", \"filters\": 20, "
             "\"kernel_size\": 1, \"data_format\": \"%s\"}},"
             "{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"b3\", \"axis\": %s}},"
             "{\"class_name\": \"GlobalAveragePooling2D\", \"config\": {\"name\": \"g\", "
             "\"data_format\": \"%s\"}},"
             "{\"class_name\": \"Dense\", \"config\": {\"name\": \"d\", \"units\": 5}}]}}",
             format, in, axis, format, axis, format, axis, format);
    nnp_model *m;
    nnp_error err = {0};
    cr_assert_eq(nnp_keras_load_string(reg, json, "fusion", &m, &err), NNP_OK, "%s", err.msg);
    return m;
}

/* Every weight random; BN moving statistics far from (0, 1). */
static void randomize(nnp_model *m)
{
    for (int i = 0; i < nnp_model_n_layers(m); i++) {
        nnp_layer *l = nnp_model_layer(m, i);
        for (int k = 0; k < nnp_layer_n_weights(l); k++) {
            const nnp_weight *w = nnp_layer_weight(l, k);
            float *p = w->value->data;
            const int var = strcmp(w->name, "moving_variance") == 0;
            for (int64_t j = 0; j < nnp_tensor_numel(w->value); j++)
                p[j] = var ? uniform(0.2f, 3.0f) : uniform(-0.8f, 0.8f);
        }
    }
    nnp_model_weights_changed(m);
}

static void copy_weights(nnp_model *from, nnp_model *to)
{
    for (int i = 0; i < nnp_model_n_layers(from); i++)
        for (int k = 0; k < nnp_layer_n_weights(nnp_model_layer(from, i)); k++) {
            const nnp_tensor *a = nnp_layer_weight(nnp_model_layer(from, i), k)->value;
            memcpy(nnp_layer_weight(nnp_model_layer(to, i), k)->value->data, a->data, a->nbytes);
        }
    nnp_model_weights_changed(to);
}

static nnp_tensor input(int64_t n, const char *format)
{
    nnp_tensor x;
    nnp_error err = {0};
    nnp_shape s = strcmp(format, "channels_first") == 0 ? (nnp_shape){4, {n, 3, 10, 9}}
                                                       : (nnp_shape){4, {n, 10, 9, 3}};
    cr_assert_eq(nnp_tensor_alloc(&x, NNP_F32, &s, &err), NNP_OK);
    for (int64_t j = 0; j < nnp_tensor_numel(&x); j++)
        ((float *)x.data)[j] = uniform(-2.0f, 2.0f);
    return x;
}

static void forward(nnp_model *m, const nnp_tensor *x, nnp_mode mode)
{
    nnp_error err = {0};
    const nnp_tensor *in[1] = {x};
    cr_assert_eq(nnp_model_forward(m, in, 1, mode, &err), NNP_OK, "%s", err.msg);
}

/* max |a - b| <= 1e-5 * max |b| */
static void assert_close(const char *what, const nnp_tensor *a, const nnp_tensor *b)
{
    const float *p = a->data, *q = b->data;
    double mx = 0, worst = 0;
    for (int64_t j = 0; j < nnp_tensor_numel(b); j++) {
        mx = fmax(mx, fabs((double)q[j]));
        worst = fmax(worst, fabs((double)p[j] - (double)q[j]));
    }
    cr_assert(mx > 0 && worst <= 1e-5 * mx, "%s: fused and unfused differ by %.3g (largest %.3g)",
              what, worst, mx);
}

/* Builds f (fused) and u (unfused) on x, gives f random weights and u the
 * same, and runs both in inference. */
static void run_both(nnp_model *f, nnp_model *u, const nnp_tensor *x)
{
    forward(f, x, NNP_MODE_INFER); /* builds: weights exist */
    forward(u, x, NNP_MODE_INFER);
    randomize(f);
    copy_weights(f, u);
    forward(f, x, NNP_MODE_INFER);
    forward(u, x, NNP_MODE_INFER);
}

/* A training forward is never fused (and moves the moving statistics):
 * f's and u's are the same bytes; inference after it still agrees. */
static void train_then_infer(nnp_model *f, nnp_model *u, const nnp_tensor *x)
{
    forward(f, x, NNP_MODE_TRAIN);
    forward(u, x, NNP_MODE_TRAIN);
    cr_assert(!memcmp(nnp_model_output(f, 0)->data, nnp_model_output(u, 0)->data,
                      nnp_model_output(u, 0)->nbytes),
              "training forwards differ");
    forward(f, x, NNP_MODE_INFER);
    forward(u, x, NNP_MODE_INFER);
    assert_close("after a training forward", nnp_model_output(f, 0), nnp_model_output(u, 0));
}

/* Which layers ran inside another one's epilogue. */
static int n_fused(const nnp_model *m)
{
    int n = 0;
    for (int i = 0; i < nnp_model_n_nodes(m); i++)
        n += nnp_model_node_fused_into(m, i) >= 0;
    return n;
}

static void fused_equals_unfused(const char *format, int im2col)
{
    if (im2col)
        setenv("NNP_CONV_ENGINE", "im2col", 1);
    nnp_model *f = keras_cnn(format), *u = keras_cnn(format);
    unsetenv("NNP_CONV_ENGINE");
    nnp_model_set_inference_fusion(u, 0);
    nnp_tensor x = input(6, format);
    run_both(f, u, &x);
    /* b1 + r1, b2 + r2, b3 */
    cr_assert_eq(n_fused(f), 5, "%s: %d layers fused", format, n_fused(f));
    cr_assert_eq(n_fused(u), 0);
    assert_close(format, nnp_model_output(f, 0), nnp_model_output(u, 0));

    /* new weights: the plan folds the new statistics */
    randomize(f);
    copy_weights(f, u);
    forward(f, &x, NNP_MODE_INFER);
    forward(u, &x, NNP_MODE_INFER);
    assert_close("after new weights", nnp_model_output(f, 0), nnp_model_output(u, 0));

    train_then_infer(f, u, &x);
    nnp_tensor_free(&x);
    nnp_model_free(f);
    nnp_model_free(u);
}

Test(fusion, channels_last_onednn) { fused_equals_unfused("channels_last", 0); }
Test(fusion, channels_first_onednn) { fused_equals_unfused("channels_first", 0); }
Test(fusion, channels_last_im2col) { fused_equals_unfused("channels_last", 1); }
Test(fusion, channels_first_im2col) { fused_equals_unfused("channels_first", 1); }

/* Zeroed weight gradients, then a backward of the same random output
 * gradient (returned; the caller frees it) on f and on u. */
static nnp_tensor backward_both(nnp_model *f, nnp_model *u)
{
    nnp_tensor g;
    nnp_error err = {0};
    cr_assert_eq(nnp_tensor_alloc(&g, NNP_F32, &nnp_model_output(f, 0)->shape, &err), NNP_OK);
    for (int64_t j = 0; j < nnp_tensor_numel(&g); j++)
        ((float *)g.data)[j] = uniform(-1.0f, 1.0f);
    const nnp_tensor *gs[1] = {&g};
    nnp_model_zero_grad(f);
    nnp_model_zero_grad(u);
    cr_assert_eq(nnp_model_backward(f, gs, 1, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_model_backward(u, gs, 1, &err), NNP_OK, "%s", err.msg);
    return g;
}

/* A backward after a fused inference forward sees the values the fusion
 * skipped: the same gradients, bit for bit, as after an unfused one. */
Test(fusion, backward_after_fused_forward)
{
    nnp_model *f = keras_cnn("channels_first"), *u = keras_cnn("channels_first");
    nnp_model_set_inference_fusion(u, 0);
    nnp_tensor x = input(4, "channels_first");
    run_both(f, u, &x);
    cr_assert_gt(n_fused(f), 0);
    nnp_tensor g = backward_both(f, u);
    for (int i = 0; i < nnp_model_n_layers(f); i++)
        for (int k = 0; k < nnp_layer_n_weights(nnp_model_layer(f, i)); k++) {
            const nnp_weight *a = nnp_layer_weight(nnp_model_layer(f, i), k);
            const nnp_weight *b = nnp_layer_weight(nnp_model_layer(u, i), k);
            if (a->grad)
                cr_assert(!memcmp(a->grad->data, b->grad->data, a->grad->nbytes),
                          "layer %d weight %s: gradients differ", i, a->name);
        }
    /* and the plan is back for the next inference forward */
    forward(f, &x, NNP_MODE_INFER);
    cr_assert_gt(n_fused(f), 0);
    assert_close("after a backward", nnp_model_output(f, 0), nnp_model_output(u, 0));
    nnp_tensor_free(&g);
    nnp_tensor_free(&x);
    nnp_model_free(f);
    nnp_model_free(u);
}

/* A residual block: Conv -> BN -> Add(with the block's input) -> ReLU: the
 * BN, the sum (the block's input copied into the output first: a graph
 * input is the caller's) and the ReLU fold into the Conv. */
Test(fusion, residual_add_relu)
{
    const char *json =
        "{\"class_name\": \"Functional\", \"config\": {\"name\": \"r\", \"layers\": ["
        "{\"class_name\": \"InputLayer\", \"name\": \"x\", \"config\": {\"name\": \"x\", "
        "\"batch_input_shape\": [null, 10, 9, 3]}, \"inbound_nodes\": []},"
        "{\"class_name\": \"Conv2D\", \"name\": \"c\", \"config\": {\"name\": \"c\", "
        "\"filters\": 3, \"kernel_size\": 3, \"padding\": \"same\"}, \"inbound_nodes\": "
        "[[[\"x\", 0, 0, {}]]]},"
        "{\"class_name\": \"BatchNormalization\", \"name\": \"b\", \"config\": {\"name\": "
        "\"b\"}, \"inbound_nodes\": [[[\"c\", 0, 0, {}]]]},"
        "{\"class_name\": \"Add\", \"name\": \"a\", \"config\": {\"name\": \"a\"}, "
        "\"inbound_nodes\": [[[\"b\", 0, 0, {}], [\"x\", 0, 0, {}]]]},"
        "{\"class_name\": \"ReLU\", \"name\": \"r\", \"config\": {\"name\": \"r\"}, "
        "\"inbound_nodes\": [[[\"a\", 0, 0, {}]]]}],"
        "\"input_layers\": [[\"x\", 0, 0]], \"output_layers\": [[\"r\", 0, 0]]}}";
    nnp_model *f, *u;
    nnp_error err = {0};
    cr_assert_eq(nnp_keras_load_string(reg, json, "residual", &f, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_keras_load_string(reg, json, "residual", &u, &err), NNP_OK, "%s", err.msg);
    nnp_model_set_inference_fusion(u, 0);
    nnp_tensor x = input(3, "channels_last");
    run_both(f, u, &x);
    cr_assert_eq(n_fused(f), 3, "%d layers fused", n_fused(f));
    assert_close("residual block", nnp_model_output(f, 0), nnp_model_output(u, 0));
    nnp_tensor_free(&x);
    nnp_model_free(f);
    nnp_model_free(u);
}

/* A BN whose input is also read elsewhere (a graph output here) stays a
 * layer of its own. */
Test(fusion, a_value_read_twice_is_not_fused)
{
    nnp_model *m = keras_cnn("channels_last");
    nnp_error err = {0};
    cr_assert_eq(nnp_model_node_layer(m, 0), nnp_model_find_layer(m, "c1"));
    int outs[2] = {nnp_model_output_value(m, 0), nnp_model_node_output(m, 0)}; /* c1's */
    cr_assert_eq(nnp_model_set_outputs(m, outs, 2, &err), NNP_OK, "%s", err.msg);
    nnp_tensor x = input(2, "channels_last");
    forward(m, &x, NNP_MODE_INFER);
    /* b2 + r2, b3 only */
    cr_assert_eq(n_fused(m), 3, "%d layers fused", n_fused(m));
    nnp_tensor_free(&x);
    nnp_model_free(m);
}

/* PyTorch's eval-mode CNN export (Conv -> BN -> ReLU twice), fused, against
 * PyTorch's own output. */
Test(fusion, torch_export_matches_torch)
{
    nnp_model *m;
    nnp_error err = {0};
    cr_assert_eq(nnp_onnx_load(reg, tu_data_path("torch-export/cnn_bn2d_op15/model.onnx"), NULL, &m,
                               &err),
                 NNP_OK, "%s", err.msg);
    nnp_tensor x, y;
    tu_load_f32(tu_data_path("torch-export/cnn_bn2d_op15/inputs/input.npy"), &x);
    forward(m, &x, NNP_MODE_INFER);
    cr_assert_eq(n_fused(m), 4, "%d layers fused", n_fused(m));
    nnp_shape es;
    int64_t n;
    double *exp = tu_load_f64(tu_data_path("torch-export/cnn_bn2d_op15/expected/output.npy"), &es, &n);
    y = *nnp_model_output(m, 0);
    cr_assert_eq(nnp_tensor_numel(&y), n);
    tu_assert_close_f32("fused CNN vs PyTorch", y.data, exp, n, 1e-4, 1e-5);
    free(exp);
    nnp_tensor_free(&x);
    nnp_model_free(m);
}

/* ---- channels-last values (NNP_TENSOR_NHWC) between layers ---- */

/* A channels-first residual network whose values the inference plan keeps
 * channels-last: 24 channels through Conv2D, max pooling and Add, 32 into
 * average and global pooling; its input has 5 channels (Conv2D reorders
 * it itself). */
static nnp_model *nhwc_net(void)
{
    const char *json =
        "{\"class_name\": \"Functional\", \"config\": {\"name\": \"bl\", \"layers\": ["
        "{\"class_name\": \"InputLayer\", \"name\": \"x\", \"config\": {\"name\": \"x\", "
        "\"batch_input_shape\": [null, 5, 12, 11]}, \"inbound_nodes\": []},"
        "{\"class_name\": \"Conv2D\", \"name\": \"c1\", \"config\": {\"name\": \"c1\", "
        "\"filters\": 24, \"kernel_size\": 3, \"padding\": \"same\", \"data_format\": "
        "\"channels_first\"}, \"inbound_nodes\": [[[\"x\", 0, 0, {}]]]},"
        "{\"class_name\": \"BatchNormalization\", \"name\": \"b1\", \"config\": {\"name\": "
        "\"b1\", \"axis\": 1}, \"inbound_nodes\": [[[\"c1\", 0, 0, {}]]]},"
        "{\"class_name\": \"ReLU\", \"name\": \"r1\", \"config\": {\"name\": \"r1\"}, "
        "\"inbound_nodes\": [[[\"b1\", 0, 0, {}]]]},"
        "{\"class_name\": \"MaxPooling2D\", \"name\": \"p1\", \"config\": {\"name\": \"p1\", "
        "\"pool_size\": 3, \"strides\": 2, \"padding\": \"same\", \"data_format\": "
        "\"channels_first\"}, \"inbound_nodes\": [[[\"r1\", 0, 0, {}]]]},"
        "{\"class_name\": \"Conv2D\", \"name\": \"c2\", \"config\": {\"name\": \"c2\", "
        "\"filters\": 24, \"kernel_size\": 3, \"padding\": \"same\", \"use_bias\": false, "
        "\"data_format\": \"channels_first\"}, \"inbound_nodes\": [[[\"p1\", 0, 0, {}]]]},"
        "{\"class_name\": \"BatchNormalization\", \"name\": \"b2\", \"config\": {\"name\": "
        "\"b2\", \"axis\": 1}, \"inbound_nodes\": [[[\"c2\", 0, 0, {}]]]},"
        "{\"class_name\": \"Add\", \"name\": \"a\", \"config\": {\"name\": \"a\"}, "
        "\"inbound_nodes\": [[[\"b2\", 0, 0, {}], [\"p1\", 0, 0, {}]]]},"
        "{\"class_name\": \"ReLU\", \"name\": \"r2\", \"config\": {\"name\": \"r2\"}, "
        "\"inbound_nodes\": [[[\"a\", 0, 0, {}]]]},"
        "{\"class_name\": \"Conv2D\", \"name\": \"c3\", \"config\": {\"name\": \"c3\", "
        "\"filters\": 32, \"kernel_size\": 1, \"strides\": 2, \"data_format\": "
        "\"channels_first\"}, \"inbound_nodes\": [[[\"r2\", 0, 0, {}]]]},"
        "{\"class_name\": \"AveragePooling2D\", \"name\": \"p2\", \"config\": {\"name\": \"p2\", "
        "\"pool_size\": 2, \"strides\": 1, \"padding\": \"same\", \"data_format\": "
        "\"channels_first\"}, \"inbound_nodes\": [[[\"c3\", 0, 0, {}]]]},"
        "{\"class_name\": \"GlobalAveragePooling2D\", \"name\": \"g\", \"config\": {\"name\": "
        "\"g\", \"data_format\": \"channels_first\"}, \"inbound_nodes\": [[[\"p2\", 0, 0, {}]]]},"
        "{\"class_name\": \"Dense\", \"name\": \"d\", \"config\": {\"name\": \"d\", \"units\": 4}, "
        "\"inbound_nodes\": [[[\"g\", 0, 0, {}]]]}],"
        "\"input_layers\": [[\"x\", 0, 0]], \"output_layers\": [[\"d\", 0, 0]]}}";
    nnp_model *m;
    nnp_error err = {0};
    cr_assert_eq(nnp_keras_load_string(reg, json, "nhwc", &m, &err), NNP_OK, "%s", err.msg);
    return m;
}

static int n_nhwc(const nnp_model *m)
{
    int n = 0;
    for (int v = 0; v < nnp_model_n_values(m); v++)
        n += nnp_model_value_nhwc(m, v);
    return n;
}

static nnp_tensor input_shaped(nnp_shape s)
{
    nnp_tensor x;
    nnp_error err = {0};
    cr_assert_eq(nnp_tensor_alloc(&x, NNP_F32, &s, &err), NNP_OK);
    for (int64_t j = 0; j < nnp_tensor_numel(&x); j++)
        ((float *)x.data)[j] = uniform(-2.0f, 2.0f);
    return x;
}

static void nhwc_equals_plain(int im2col)
{
    if (im2col)
        setenv("NNP_CONV_ENGINE", "im2col", 1);
    nnp_model *f = nhwc_net(), *u = nhwc_net();
    unsetenv("NNP_CONV_ENGINE");
    nnp_model_set_inference_fusion(u, 0);
    nnp_tensor x = input_shaped((nnp_shape){4, {3, 5, 12, 11}});
    run_both(f, u, &x);
    /* r1's, p1's, r2's (c2 computes b2, a and r2, over p1's bytes), c3's,
       p2's: every value between the layers (on oneDNN); none where Conv2D
       runs on im2col */
    cr_assert_eq(n_nhwc(f), im2col ? 0 : 5, "%d values channels-last", n_nhwc(f));
    cr_assert_eq(n_nhwc(u), 0);
    assert_close("channels-last network", nnp_model_output(f, 0), nnp_model_output(u, 0));
    train_then_infer(f, u, &x);
    /* another batch size: planned again */
    nnp_tensor x2 = input_shaped((nnp_shape){4, {1, 5, 12, 11}});
    forward(f, &x2, NNP_MODE_INFER);
    forward(u, &x2, NNP_MODE_INFER);
    assert_close("batch of 1", nnp_model_output(f, 0), nnp_model_output(u, 0));
    nnp_tensor_free(&x);
    nnp_tensor_free(&x2);
    nnp_model_free(f);
    nnp_model_free(u);
}

Test(fusion, nhwc_values_equal_plain_onednn) { nhwc_equals_plain(0); }
Test(fusion, nhwc_values_equal_plain_im2col) { nhwc_equals_plain(1); }

/* ---- Winograd convolutions in inference plans ---- */

/* A residual block on 32 channels: 3x3 stride-1 Conv2D -> BN -> ReLU ->
 * 3x3 Conv2D -> BN -> Add (a 1x1 projection of the input) -> ReLU ->
 * global pooling -> Dense: both 3x3 layers qualify for oneDNN's Winograd
 * kernels (the second with a sum and a ReLU post-op), the 1x1 does not. */
static nnp_model *winograd_net(const char *format)
{
    char json[3200];
    const int cf = strcmp(format, "channels_first") == 0;
    snprintf(
        json, sizeof json,
        "{\"class_name\": \"Functional\", \"config\": {\"name\": \"wg\", \"layers\": ["
        "{\"class_name\": \"InputLayer\", \"name\": \"x\", \"config\": {\"name\": \"x\", "
        "\"batch_input_shape\": %s}, \"inbound_nodes\": []},"
        "{\"class_name\": \"Conv2D\", \"name\": \"p\", \"config\": {\"name\": \"p\", "
        "\"filters\": 32, \"kernel_size\": 1, \"data_format\": \"%s\"}, "
        "\"inbound_nodes\": [[[\"x\", 0, 0, {}]]]},"
        "{\"class_name\": \"Conv2D\", \"name\": \"c1\", \"config\": {\"name\": \"c1\", "
        "\"filters\": 32, \"kernel_size\": 3, \"padding\": \"same\", \"data_format\": "
        "\"%s\"}, \"inbound_nodes\": [[[\"p\", 0, 0, {}]]]},"
        "{\"class_name\": \"BatchNormalization\", \"name\": \"b1\", \"config\": {\"name\": "
        "\"b1\", \"axis\": %d}, \"inbound_nodes\": [[[\"c1\", 0, 0, {}]]]},"
        "{\"class_name\": \"ReLU\", \"name\": \"r1\", \"config\": {\"name\": \"r1\"}, "
        "\"inbound_nodes\": [[[\"b1\", 0, 0, {}]]]},"
        "{\"class_name\": \"Conv2D\", \"name\": \"c2\", \"config\": {\"name\": \"c2\", "
        "\"filters\": 32, \"kernel_size\": 3, \"padding\": \"same\", \"use_bias\": false, "
        "\"data_format\": \"%s\"}, \"inbound_nodes\": [[[\"r1\", 0, 0, {}]]]},"
        "{\"class_name\": \"BatchNormalization\", \"name\": \"b2\", \"config\": {\"name\": "
        "\"b2\", \"axis\": %d}, \"inbound_nodes\": [[[\"c2\", 0, 0, {}]]]},"
        "{\"class_name\": \"Add\", \"name\": \"a\", \"config\": {\"name\": \"a\"}, "
        "\"inbound_nodes\": [[[\"b2\", 0, 0, {}], [\"p\", 0, 0, {}]]]},"
        "{\"class_name\": \"ReLU\", \"name\": \"r2\", \"config\": {\"name\": \"r2\"}, "
        "\"inbound_nodes\": [[[\"a\", 0, 0, {}]]]},"
        "{\"class_name\": \"GlobalAveragePooling2D\", \"name\": \"g\", \"config\": {\"name\": "
        "\"g\", \"data_format\": \"%s\"}, \"inbound_nodes\": [[[\"r2\", 0, 0, {}]]]},"
        "{\"class_name\": \"Dense\", \"name\": \"d\", \"config\": {\"name\": \"d\", \"units\": 4}, "
        "\"inbound_nodes\": [[[\"g\", 0, 0, {}]]]}],"
        "\"input_layers\": [[\"x\", 0, 0]], \"output_layers\": [[\"d\", 0, 0]]}}",
        cf ? "[null, 16, 10, 9]" : "[null, 10, 9, 16]", format, format, cf ? 1 : -1, format,
        cf ? 1 : -1, format);
    nnp_model *m;
    nnp_error err = {0};
    cr_assert_eq(nnp_keras_load_string(reg, json, "wg", &m, &err), NNP_OK, "%s", err.msg);
    return m;
}

static void copy_out(const nnp_model *m, float *to)
{
    memcpy(to, nnp_model_output(m, 0)->data, nnp_model_output(m, 0)->nbytes);
}

/* The inference plan's Winograd forwards (BN folded into the kernel, the
 * sum and ReLU as post-ops) equal the unfused direct layers within float
 * rounding, are the same bits at 1, 2, 3 and 5 threads (each image on one
 * thread, through a one-thread primitive), and are what ran: with
 * NNP_CONV_WINOGRAD=0 the bits change (direct kernels), within rounding
 * too. A batch of one keeps the direct kernels. */
static void winograd_inference(const char *format)
{
    const int cf = strcmp(format, "channels_first") == 0;
    nnp_model *f = winograd_net(format), *u = winograd_net(format);
    nnp_model_set_inference_fusion(u, 0);
    nnp_tensor x = input_shaped(cf ? (nnp_shape){4, {5, 16, 10, 9}}
                                   : (nnp_shape){4, {5, 10, 9, 16}});
    run_both(f, u, &x);
    cr_assert(!cf || n_nhwc(f) > 0);
    assert_close("Winograd network", nnp_model_output(f, 0), nnp_model_output(u, 0));
    float y1[5 * 4], yt[5 * 4];
    copy_out(f, y1);
    const int counts[] = {2, 3, 5};
    for (int i = 0; i < 3; i++) {
        nnp_set_num_threads(counts[i]);
        forward(f, &x, NNP_MODE_INFER);
        copy_out(f, yt);
        cr_assert(!memcmp(y1, yt, sizeof yt), "%s: differs at %d threads", format, counts[i]);
    }
    nnp_set_num_threads(0);
    setenv("NNP_CONV_WINOGRAD", "0", 1);
    nnp_model *d = winograd_net(format);
    forward(d, &x, NNP_MODE_INFER);
    copy_weights(f, d);
    forward(d, &x, NNP_MODE_INFER);
    unsetenv("NNP_CONV_WINOGRAD");
    assert_close("direct kernels", nnp_model_output(d, 0), nnp_model_output(u, 0));
    cr_assert(memcmp(y1, nnp_model_output(d, 0)->data, sizeof y1) != 0,
              "%s: the same bits without Winograd: its kernels did not run", format);
    nnp_tensor x1 = input_shaped(cf ? (nnp_shape){4, {1, 16, 10, 9}}
                                    : (nnp_shape){4, {1, 10, 9, 16}});
    forward(f, &x1, NNP_MODE_INFER);
    forward(u, &x1, NNP_MODE_INFER);
    assert_close("batch of 1", nnp_model_output(f, 0), nnp_model_output(u, 0));
    /* training forwards stay on the direct kernels: the same bytes */
    train_then_infer(f, u, &x);
    nnp_tensor_free(&x);
    nnp_tensor_free(&x1);
    nnp_model_free(f);
    nnp_model_free(u);
    nnp_model_free(d);
}

Test(fusion, winograd_inference_channels_first) { winograd_inference("channels_first"); }
Test(fusion, winograd_inference_channels_last) { winograd_inference("channels_last"); }

/* [N, C, H, W] -> [N, H, W, C] */
static void to_nhwc(const float *x, float *y, int64_t N, int64_t C, int64_t HW)
{
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t p = 0; p < HW; p++)
                y[(n * HW + p) * C + c] = x[(n * C + c) * HW + p];
}

/* A layer's channels-last inference forward (planned through its
 * NNP_EXT_LAYOUT as a model would) equals its plain forward: within float
 * rounding for a convolution (another oneDNN kernel), bit for bit for
 * pooling. */
static void layer_nhwc_forward(const char *kind, const char *cfg, nnp_shape xs, double tol)
{
    nnp_layer *l;
    nnp_error err = {0};
    cr_assert_eq(nnp_layer_new(reg, kind, cfg, &l, &err), NNP_OK, "%s", err.msg);
    nnp_shape ys;
    cr_assert_eq(nnp_layer_build(l, 1, &xs, &ys, &err), NNP_OK, "%s", err.msg);
    for (int k = 0; k < nnp_layer_n_weights(l); k++) {
        const nnp_tensor *w = nnp_layer_weight(l, k)->value;
        for (int64_t j = 0; j < nnp_tensor_numel(w); j++)
            ((float *)w->data)[j] = uniform(-1.0f, 1.0f);
    }
    nnp_layer_weights_changed(l);
    const uint32_t nhwc = NNP_LAYOUT_NHWC;
    cr_assert_eq(nnp_layer_plan_layouts(l, &nhwc, 1, nhwc, &err), NNP_OK, "%s", err.msg);
    nnp_tensor x = input_shaped(xs), y, xc, yc;
    cr_assert_eq(nnp_tensor_alloc(&y, NNP_F32, &ys, &err), NNP_OK);
    cr_assert_eq(nnp_tensor_alloc(&xc, NNP_F32, &xs, &err), NNP_OK);
    cr_assert_eq(nnp_tensor_alloc(&yc, NNP_F32, &ys, &err), NNP_OK);
    const int64_t N = xs.dims[0], C = xs.dims[1], F = ys.dims[1];
    const int64_t hw = xs.dims[2] * xs.dims[3], ohw = ys.dims[2] * ys.dims[3];
    to_nhwc(x.data, xc.data, N, C, hw);
    xc.flags |= NNP_TENSOR_NHWC;
    yc.flags |= NNP_TENSOR_NHWC;
    const nnp_tensor *in[1] = {&x}, *inc[1] = {&xc};
    cr_assert_eq(nnp_layer_forward(l, in, 1, &y, NNP_MODE_INFER, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_layer_forward(l, inc, 1, &yc, NNP_MODE_INFER, &err), NNP_OK, "%s", err.msg);
    const float *p = y.data, *q = yc.data;
    double mx = 0, worst = 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < F; c++)
            for (int64_t sp = 0; sp < ohw; sp++) {
                const double a = p[(n * F + c) * ohw + sp], b = q[(n * ohw + sp) * F + c];
                mx = fmax(mx, fabs(a));
                worst = fmax(worst, fabs(a - b));
            }
    cr_assert(worst <= tol * mx, "%s: channels-last differs by %.3g (largest %.3g)", kind, worst,
              mx);
    /* channels-last operands in a training forward are refused, by name */
    cr_assert_neq(nnp_layer_forward(l, inc, 1, &yc, NNP_MODE_TRAIN, &err), NNP_OK);
    cr_assert(strstr(err.msg, "channels-last"), "%s", err.msg);
    nnp_tensor_free(&x);
    nnp_tensor_free(&y);
    nnp_tensor_free(&xc);
    nnp_tensor_free(&yc);
    nnp_layer_free(l);
}

Test(fusion, channels_last_kinds_equal_plain)
{
    const char *conv = "{\"filters\": 24, \"kernel_size\": 3, \"strides\": 2, \"padding\": "
                       "\"same\", \"data_format\": \"channels_first\"}";
    const char *pool = "{\"pool_size\": 3, \"strides\": 2, \"padding\": \"same\", "
                       "\"data_format\": \"channels_first\"}";
    const char *avg = "{\"pool_size\": 2, \"strides\": 1, \"data_format\": \"channels_first\"}";
    layer_nhwc_forward("Conv2D", conv, (nnp_shape){4, {2, 16, 9, 7}}, 1e-5);
    layer_nhwc_forward("Conv2D", conv, (nnp_shape){4, {2, 40, 6, 6}}, 1e-5);
    layer_nhwc_forward("MaxPooling2D", pool, (nnp_shape){4, {2, 24, 9, 7}}, 0);
    layer_nhwc_forward("AveragePooling2D", avg, (nnp_shape){4, {2, 20, 5, 8}}, 0);
}

/* Four residual blocks, ResNet's way: the first adds its input (read by
 * its first convolution before, so its last convolution writes the sum
 * over that input's bytes); the second has a strided 1x1 downsample written
 * after its main path, so the sum folds into the downsample and is written
 * over the main path's result; the third and fourth add the block before's
 * output, itself written in place (four values in one buffer, alive while
 * the blocks write theirs). */
static nnp_model *residual_net(const char *format)
{
    char json[8000];
    const int cf = strcmp(format, "channels_first") == 0;
    const char *axis = cf ? "1" : "-1";
    const char *in = cf ? "[null, 3, 11, 10]" : "[null, 11, 10, 3]";
#define CONV(N, IN, F, K, S)                                                                    \
    "{\"class_name\": \"Conv2D\", \"name\": \"" N "\", \"config\": {\"name\": \"" N "\", "      \
    "\"filters\": " #F ", \"kernel_size\": " #K ", \"strides\": " #S ", \"padding\": \"same\", " \
    "\"use_bias\": false, \"data_format\": \"%s\"}, \"inbound_nodes\": [[[\"" IN "\", 0, 0, {}]]]},"
#define BN(N, IN)                                                                               \
    "{\"class_name\": \"BatchNormalization\", \"name\": \"" N "\", \"config\": {\"name\": \"" N \
    "\", \"axis\": %s}, \"inbound_nodes\": [[[\"" IN "\", 0, 0, {}]]]},"
#define RELU(N, IN)                                                                             \
    "{\"class_name\": \"ReLU\", \"name\": \"" N "\", \"config\": {\"name\": \"" N "\"}, "       \
    "\"inbound_nodes\": [[[\"" IN "\", 0, 0, {}]]]},"
#define ADD(N, A, B)                                                                            \
    "{\"class_name\": \"Add\", \"name\": \"" N "\", \"config\": {\"name\": \"" N "\"}, "        \
    "\"inbound_nodes\": [[[\"" A "\", 0, 0, {}], [\"" B "\", 0, 0, {}]]]},"
    snprintf(json, sizeof json,
             "{\"class_name\": \"Functional\", \"config\": {\"name\": \"res\", \"layers\": ["
             "{\"class_name\": \"InputLayer\", \"name\": \"x\", \"config\": {\"name\": \"x\", "
             "\"batch_input_shape\": %s}, \"inbound_nodes\": []},"
             CONV("c0", "x", 16, 3, 1) BN("b0", "c0") RELU("r0", "b0")
             CONV("c1", "r0", 16, 3, 1) BN("b1", "c1") RELU("r1", "b1")
             CONV("c2", "r1", 16, 3, 1) BN("b2", "c2") ADD("a2", "b2", "r0") RELU("r2", "a2")
             CONV("c3", "r2", 32, 3, 2) BN("b3", "c3") RELU("r3", "b3")
             CONV("c4", "r3", 32, 3, 1) BN("b4", "c4")
             CONV("cd", "r2", 32, 1, 2) BN("bd", "cd") ADD("a4", "b4", "bd") RELU("r4", "a4")
             CONV("c5", "r4", 32, 3, 1) BN("b5", "c5") RELU("r5", "b5")
             CONV("c6", "r5", 32, 3, 1) BN("b6", "c6") ADD("a6", "b6", "r4") RELU("r6", "a6")
             CONV("c7", "r6", 32, 3, 1) BN("b7", "c7") RELU("r7", "b7")
             CONV("c8", "r7", 32, 3, 1) BN("b8", "c8") ADD("a8", "b8", "r6") RELU("r8", "a8")
             "{\"class_name\": \"GlobalAveragePooling2D\", \"name\": \"g\", \"config\": "
             "{\"name\": \"g\", \"data_format\": \"%s\"}, \"inbound_nodes\": [[[\"r8\", 0, 0, {}]]]},"
             "{\"class_name\": \"Dense\", \"name\": \"d\", \"config\": {\"name\": \"d\", "
             "\"units\": 3}, \"inbound_nodes\": [[[\"g\", 0, 0, {}]]]}],"
             "\"input_layers\": [[\"x\", 0, 0]], \"output_layers\": [[\"d\", 0, 0]]}}",
             in, format, axis, format, axis, format, axis, format, axis, format, axis, format,
             axis, format, axis, format, axis, format, axis, format, axis, format);
#undef CONV
#undef BN
#undef RELU
#undef ADD
    nnp_model *m;
    nnp_error err = {0};
    cr_assert_eq(nnp_keras_load_string(reg, json, "residual", &m, &err), NNP_OK, "%s", err.msg);
    return m;
}

static void residual_sums(const char *format, int threads)
{
    nnp_set_num_threads(threads);
    nnp_model *f = residual_net(format), *u = residual_net(format);
    nnp_model_set_inference_fusion(u, 0);
    const int cf = strcmp(format, "channels_first") == 0;
    nnp_tensor x = input_shaped(cf ? (nnp_shape){4, {4, 3, 11, 10}} : (nnp_shape){4, {4, 11, 10, 3}});
    run_both(f, u, &x);
    /* b0 r0, b1 r1, b2 a2 r2, b3 r3, b4, bd a4 r4, b5 r5, b6 a6 r6, b7 r7,
       b8 a8 r8 */
    cr_assert_eq(n_fused(f), 23, "%s: %d layers fused", format, n_fused(f));
    cr_assert_eq(nnp_model_node_fused_into(f, nnp_model_find_layer(f, "a2")),
                 nnp_model_find_layer(f, "c2"));
    cr_assert_eq(nnp_model_node_fused_into(f, nnp_model_find_layer(f, "a4")),
                 nnp_model_find_layer(f, "cd"));
    assert_close(format, nnp_model_output(f, 0), nnp_model_output(u, 0));
    /* again on other inputs: nothing of the last run's sums stays behind */
    nnp_tensor x2 = input_shaped(x.shape);
    forward(f, &x2, NNP_MODE_INFER);
    forward(u, &x2, NNP_MODE_INFER);
    assert_close("second batch", nnp_model_output(f, 0), nnp_model_output(u, 0));
    nnp_tensor_free(&x);
    nnp_tensor_free(&x2);
    nnp_model_free(f);
    nnp_model_free(u);
    nnp_set_num_threads(0);
}

Test(fusion, residual_sums_channels_first) { residual_sums("channels_first", 1); }
Test(fusion, residual_sums_channels_last) { residual_sums("channels_last", 1); }
Test(fusion, residual_sums_two_threads) { residual_sums("channels_first", 2); }

/* Conv2D -> BN -> Add (with the input) -> ReLU, channels-first, the ReLU
 * the graph output. */
static const char residual_cf[] =
    "{\"class_name\": \"Functional\", \"config\": {\"name\": \"p\", \"layers\": ["
    "{\"class_name\": \"InputLayer\", \"name\": \"x\", \"config\": {\"name\": \"x\", "
    "\"batch_input_shape\": [null, 16, 7, 6]}, \"inbound_nodes\": []},"
    "{\"class_name\": \"Conv2D\", \"name\": \"c\", \"config\": {\"name\": \"c\", "
    "\"filters\": 16, \"kernel_size\": 3, \"padding\": \"same\", \"data_format\": "
    "\"channels_first\"}, \"inbound_nodes\": [[[\"x\", 0, 0, {}]]]},"
    "{\"class_name\": \"BatchNormalization\", \"name\": \"b\", \"config\": {\"name\": "
    "\"b\", \"axis\": 1}, \"inbound_nodes\": [[[\"c\", 0, 0, {}]]]},"
    "{\"class_name\": \"Add\", \"name\": \"a\", \"config\": {\"name\": \"a\"}, "
    "\"inbound_nodes\": [[[\"x\", 0, 0, {}], [\"b\", 0, 0, {}]]]},"
    "{\"class_name\": \"ReLU\", \"name\": \"r\", \"config\": {\"name\": \"r\"}, "
    "\"inbound_nodes\": [[[\"a\", 0, 0, {}]]]}],"
    "\"input_layers\": [[\"x\", 0, 0]], \"output_layers\": [[\"r\", 0, 0]]}}";

/* A fused sum whose output is plain (a graph output) while oneDNN computes
 * in nChw16c: the other input (a graph input, copied) is reordered into
 * the primitive's layout first. */
Test(fusion, residual_sum_into_a_plain_output)
{
    const char *json = residual_cf;
    nnp_model *f, *u;
    nnp_error err = {0};
    cr_assert_eq(nnp_keras_load_string(reg, json, "plain", &f, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_keras_load_string(reg, json, "plain", &u, &err), NNP_OK, "%s", err.msg);
    nnp_model_set_inference_fusion(u, 0);
    nnp_tensor x = input_shaped((nnp_shape){4, {3, 16, 7, 6}});
    run_both(f, u, &x);
    cr_assert_eq(n_fused(f), 3, "%d layers fused", n_fused(f));
    cr_assert_eq(n_nhwc(f), 0);
    assert_close("sum into a plain output", nnp_model_output(f, 0), nnp_model_output(u, 0));
    nnp_tensor_free(&x);
    nnp_model_free(f);
    nnp_model_free(u);
}

/* ---- training plans: producer -> ReLU (plan_train_relu) ---- */

static int n_train_fused(const nnp_model *m)
{
    int n = 0;
    for (int i = 0; i < nnp_model_n_nodes(m); i++)
        n += nnp_model_node_train_fused_into(m, i) >= 0;
    return n;
}

static void assert_same_bytes(const char *what, const nnp_tensor *a, const nnp_tensor *b)
{
    cr_assert_eq(a->nbytes, b->nbytes, "%s: sizes differ", what);
    cr_assert(!memcmp(a->data, b->data, a->nbytes), "%s: fused and unfused differ", what);
}

/* Steps on f (pairs fused) and u (every layer on its own) from the same
 * weights: outputs, every weight gradient and every weight after a plain
 * update (moving statistics included) are the same bytes, step after step. */
static void train_steps_equal(nnp_model *f, nnp_model *u, const nnp_tensor *x, int steps)
{
    for (int step = 0; step < steps; step++) {
        forward(f, x, NNP_MODE_TRAIN);
        forward(u, x, NNP_MODE_TRAIN);
        assert_same_bytes("training output", nnp_model_output(f, 0), nnp_model_output(u, 0));
        nnp_tensor g = backward_both(f, u);
        for (int i = 0; i < nnp_model_n_layers(f); i++)
            for (int k = 0; k < nnp_layer_n_weights(nnp_model_layer(f, i)); k++) {
                const nnp_weight *a = nnp_layer_weight(nnp_model_layer(f, i), k);
                const nnp_weight *b = nnp_layer_weight(nnp_model_layer(u, i), k);
                char what[128];
                snprintf(what, sizeof what, "step %d, layer %d, %s", step, i, a->name);
                assert_same_bytes(what, a->value, b->value);
                if (!a->grad)
                    continue;
                assert_same_bytes(what, a->grad, b->grad);
                /* w -= 0.05 g on both */
                float *p = a->value->data, *q = b->value->data;
                const float *ga = a->grad->data;
                for (int64_t j = 0; j < nnp_tensor_numel(a->value); j++) {
                    p[j] -= 0.05f * ga[j];
                    q[j] -= 0.05f * ga[j];
                }
            }
        nnp_model_weights_changed(f);
        nnp_model_weights_changed(u);
        nnp_tensor_free(&g);
    }
}

static void training_pairs(const char *format)
{
    nnp_model *f = keras_cnn(format), *u = keras_cnn(format);
    nnp_model_set_training_fusion(u, 0);
    nnp_tensor x = input(5, format);
    run_both(f, u, &x);
    /* r1 into b1, r2 (an Activation) into b2; nothing in u */
    cr_assert_eq(n_train_fused(f), 2, "%s: %d ReLUs fused", format, n_train_fused(f));
    cr_assert_eq(n_train_fused(u), 0);
    cr_assert_eq(nnp_model_node_train_fused_into(f, 2), 1);
    cr_assert_eq(nnp_model_node_train_fused_into(f, 5), 4);
    cr_assert_eq(nnp_model_node_train_fused_into(f, 1), -1);
    train_steps_equal(f, u, &x, 3);
    /* inference plans are unchanged by it */
    forward(f, &x, NNP_MODE_INFER);
    forward(u, &x, NNP_MODE_INFER);
    assert_same_bytes("inference after training", nnp_model_output(f, 0),
                      nnp_model_output(u, 0));
    /* a backward after that inference forward (its values computed again,
       unfused), then training steps again: the plan is still there */
    nnp_tensor g = backward_both(f, u);
    nnp_tensor_free(&g);
    cr_assert_eq(n_train_fused(f), 2);
    train_steps_equal(f, u, &x, 2);
    nnp_tensor_free(&x);
    nnp_model_free(f);
    nnp_model_free(u);
}

Test(fusion, training_pairs_channels_first) { training_pairs("channels_first"); }
Test(fusion, training_pairs_channels_last) { training_pairs("channels_last"); }

/* A residual block whose ReLU is the graph output: the Add runs it (its
 * gradient is the caller's); the BN before the Add is not paired. Also at
 * two threads. */
static void training_residual(int threads)
{
    const char *json = residual_cf;
    const int prev = nnp_get_num_threads();
    nnp_set_num_threads(threads);
    nnp_model *f, *u;
    nnp_error err = {0};
    cr_assert_eq(nnp_keras_load_string(reg, json, "t", &f, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_keras_load_string(reg, json, "t", &u, &err), NNP_OK, "%s", err.msg);
    nnp_model_set_training_fusion(u, 0);
    nnp_tensor x = input_shaped((nnp_shape){4, {4, 16, 7, 6}});
    run_both(f, u, &x);
    cr_assert_eq(n_train_fused(f), 1, "%d ReLUs fused", n_train_fused(f));
    cr_assert_eq(nnp_model_node_train_fused_into(f, 3), 2);
    train_steps_equal(f, u, &x, 2);
    nnp_tensor_free(&x);
    nnp_model_free(f);
    nnp_model_free(u);
    nnp_set_num_threads(prev);
}

Test(fusion, training_residual_relu_output) { training_residual(1); }
Test(fusion, training_residual_two_threads) { training_residual(2); }

/* ---- inference forwards in place (NNP_EXT_IN_PLACE) ---- */

static nnp_tensor rows(int64_t n, int64_t w)
{
    return input_shaped((nnp_shape){2, {n, w}});
}

/* Two copies of a Keras JSON model, the second with its inference plan
 * off. */
static void plan_and_plain(const char *json, nnp_model **f, nnp_model **u)
{
    nnp_error err = {0};
    cr_assert_eq(nnp_keras_load_string(reg, json, "m", f, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_keras_load_string(reg, json, "m", u, &err), NNP_OK, "%s", err.msg);
    nnp_model_set_inference_fusion(*u, 0);
}

/* An inference forward of n rows of w gives the same bytes with the plan
 * as without it. */
static void plan_equals_plain(const char *json, int64_t n, int64_t w, const char *what)
{
    nnp_model *f, *u;
    plan_and_plain(json, &f, &u);
    nnp_tensor x = rows(n, w);
    run_both(f, u, &x);
    assert_same_bytes(what, nnp_model_output(f, 0), nnp_model_output(u, 0));
    nnp_tensor_free(&x);
    nnp_model_free(f);
    nnp_model_free(u);
}

/* Dense -> ReLU -> Dropout -> Dense -> BN -> tanh -> Dense -> softmax: the
 * ReLU, the Dropout, the BN and the tanh write over their inputs (Dense
 * takes no epilogue), the softmax does not; the same bytes as every value
 * in its own place, in a smaller arena. */
Test(fusion, inference_in_place)
{
    const char *json =
        "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"ip\", \"layers\": ["
        "{\"class_name\": \"Dense\", \"config\": {\"name\": \"d1\", \"units\": 64, "
        "\"batch_input_shape\": [null, 40]}},"
        "{\"class_name\": \"ReLU\", \"config\": {\"name\": \"r1\"}},"
        "{\"class_name\": \"Dropout\", \"config\": {\"name\": \"o\", \"rate\": 0.5}},"
        "{\"class_name\": \"Dense\", \"config\": {\"name\": \"d2\", \"units\": 32}},"
        "{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"b\"}},"
        "{\"class_name\": \"Activation\", \"config\": {\"name\": \"t\", \"activation\": "
        "\"tanh\"}},"
        "{\"class_name\": \"Dense\", \"config\": {\"name\": \"d3\", \"units\": 5}},"
        "{\"class_name\": \"Activation\", \"config\": {\"name\": \"s\", \"activation\": "
        "\"softmax\"}}]}}";
    nnp_model *f, *u;
    nnp_error err = {0};
    plan_and_plain(json, &f, &u);
    nnp_tensor x = rows(7, 40);
    run_both(f, u, &x);
    assert_same_bytes("in place", nnp_model_output(f, 0), nnp_model_output(u, 0));
    nnp_memory_plan pf, pu;
    cr_assert_eq(nnp_model_memory_plan(f, 7, &pf, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_model_memory_plan(u, 7, &pu, &err), NNP_OK, "%s", err.msg);
    /* 7 x (64 + 32) floats at the widest point, against 7 x (64 + 64) */
    cr_assert_lt(pf.values_arena, pu.values_arena, "%zu vs %zu bytes", pf.values_arena,
                 pu.values_arena);
    /* training is unchanged by it, and a backward after an inference
       forward sees every value */
    nnp_tensor g = backward_both(f, u);
    for (int i = 0; i < nnp_model_n_layers(f); i++)
        for (int k = 0; k < nnp_layer_n_weights(nnp_model_layer(f, i)); k++) {
            const nnp_weight *a = nnp_layer_weight(nnp_model_layer(f, i), k);
            if (a->grad)
                assert_same_bytes(a->name, a->grad,
                                  nnp_layer_weight(nnp_model_layer(u, i), k)->grad);
        }
    nnp_tensor_free(&g);
    nnp_tensor_free(&x);
    nnp_model_free(f);
    nnp_model_free(u);
}

/* A ReLU whose input is read again after it (by the Add) keeps its own
 * output. */
Test(fusion, in_place_only_over_a_dead_input)
{
    const char *json =
        "{\"class_name\": \"Functional\", \"config\": {\"name\": \"q\", \"layers\": ["
        "{\"class_name\": \"InputLayer\", \"name\": \"x\", \"config\": {\"name\": \"x\", "
        "\"batch_input_shape\": [null, 24]}, \"inbound_nodes\": []},"
        "{\"class_name\": \"Dense\", \"name\": \"a\", \"config\": {\"name\": \"a\", "
        "\"units\": 24}, \"inbound_nodes\": [[[\"x\", 0, 0, {}]]]},"
        "{\"class_name\": \"ReLU\", \"name\": \"r\", \"config\": {\"name\": \"r\"}, "
        "\"inbound_nodes\": [[[\"a\", 0, 0, {}]]]},"
        "{\"class_name\": \"Add\", \"name\": \"s\", \"config\": {\"name\": \"s\"}, "
        "\"inbound_nodes\": [[[\"r\", 0, 0, {}], [\"a\", 0, 0, {}]]]}],"
        "\"input_layers\": [[\"x\", 0, 0]], \"output_layers\": [[\"s\", 0, 0]]}}";
    plan_equals_plain(json, 5, 24, "a read after the ReLU");
}

/* A sum of three inputs whose first comes back as its third: the running
 * sum must not be written over the first. */
Test(fusion, no_in_place_sum_of_a_repeated_input)
{
    const char *json =
        "{\"class_name\": \"Functional\", \"config\": {\"name\": \"w\", \"layers\": ["
        "{\"class_name\": \"InputLayer\", \"name\": \"x\", \"config\": {\"name\": \"x\", "
        "\"batch_input_shape\": [null, 12]}, \"inbound_nodes\": []},"
        "{\"class_name\": \"Dense\", \"name\": \"a\", \"config\": {\"name\": \"a\", "
        "\"units\": 12}, \"inbound_nodes\": [[[\"x\", 0, 0, {}]]]},"
        "{\"class_name\": \"Dense\", \"name\": \"b\", \"config\": {\"name\": \"b\", "
        "\"units\": 12}, \"inbound_nodes\": [[[\"x\", 0, 0, {}]]]},"
        "{\"class_name\": \"Add\", \"name\": \"s\", \"config\": {\"name\": \"s\"}, "
        "\"inbound_nodes\": [[[\"a\", 0, 0, {}], [\"b\", 0, 0, {}], [\"a\", 0, 0, {}]]]},"
        "{\"class_name\": \"Dense\", \"name\": \"d\", \"config\": {\"name\": \"d\", "
        "\"units\": 3}, \"inbound_nodes\": [[[\"s\", 0, 0, {}]]]}],"
        "\"input_layers\": [[\"x\", 0, 0]], \"output_layers\": [[\"d\", 0, 0]]}}";
    plan_equals_plain(json, 4, 12, "a + b + a");
}

/* The weights of m that have a gradient, at most 64 (their layers' indices
 * in layer[]); their count. */
static int grad_weights(nnp_model *m, const nnp_weight **w, int *layer)
{
    int n = 0;
    for (int i = 0; i < nnp_model_n_layers(m); i++)
        for (int k = 0; k < nnp_layer_n_weights(nnp_model_layer(m, i)); k++) {
            const nnp_weight *x = nnp_layer_weight(nnp_model_layer(m, i), k);
            if (!x->grad)
                continue;
            cr_assert_lt(n, 64);
            layer[n] = i;
            w[n++] = x;
        }
    return n;
}

/* Each of the n gradients equals scale * want (values: a zero may be -0). */
static void grads_equal(const char *what, const nnp_weight **w, const int *layer, int n,
                        float *const *want, float scale)
{
    for (int q = 0; q < n; q++) {
        const float *got = w[q]->grad->data;
        for (int64_t j = 0; j < nnp_tensor_numel(w[q]->grad); j++)
            cr_assert(got[j] == scale * want[q][j], "%s: layer %d %s [%lld]: %g, want %g", what,
                      layer[q], w[q]->name, (long long)j, got[j], scale * want[q][j]);
    }
}

/* nnp_model_backward_overwrite over weight gradients full of garbage gives
 * the gradients of a zeroed nnp_model_backward: Conv2D on oneDNN and Dense
 * write them (NNP_EXT_GRAD_STORE), im2col Conv2D adds onto zeros it writes,
 * BatchNormalization (no extension) is zeroed by the model; the next plain
 * backward adds again. */
static void overwrite_equals_zero_and_add(const char *format, int im2col)
{
    if (im2col)
        setenv("NNP_CONV_ENGINE", "im2col", 1);
    nnp_model *m = residual_net(format);
    unsetenv("NNP_CONV_ENGINE");
    randomize(m);
    const int cf = strcmp(format, "channels_first") == 0;
    nnp_tensor x = input_shaped(cf ? (nnp_shape){4, {4, 3, 11, 10}} : (nnp_shape){4, {4, 11, 10, 3}});
    nnp_error err = {0};
    forward(m, &x, NNP_MODE_TRAIN);
    nnp_tensor g;
    cr_assert_eq(nnp_tensor_alloc(&g, NNP_F32, &nnp_model_output(m, 0)->shape, &err), NNP_OK);
    for (int64_t j = 0; j < nnp_tensor_numel(&g); j++)
        ((float *)g.data)[j] = uniform(-1.0f, 1.0f);
    const nnp_tensor *gs[1] = {&g};
    nnp_model_zero_grad(m);
    cr_assert_eq(nnp_model_backward(m, gs, 1, &err), NNP_OK, "%s", err.msg);
    const nnp_weight *w[64];
    int layer[64];
    float *want[64];
    const int n = grad_weights(m, w, layer);
    for (int q = 0; q < n; q++) {
        const nnp_tensor *t = w[q]->grad;
        want[q] = malloc(t->nbytes);
        memcpy(want[q], t->data, t->nbytes);
        for (int64_t j = 0; j < nnp_tensor_numel(t); j++)
            ((float *)t->data)[j] = j % 2 ? 7.5f : NAN;
    }
    char what[64];
    snprintf(what, sizeof what, "%s%s", format, im2col ? " im2col" : "");
    forward(m, &x, NNP_MODE_TRAIN);
    cr_assert_eq(nnp_model_backward_overwrite(m, gs, 1, &err), NNP_OK, "%s", err.msg);
    grads_equal(what, w, layer, n, want, 1.0f);
    forward(m, &x, NNP_MODE_TRAIN);
    cr_assert_eq(nnp_model_backward(m, gs, 1, &err), NNP_OK, "%s", err.msg);
    grads_equal(what, w, layer, n, want, 2.0f);
    for (int q = 0; q < n; q++)
        free(want[q]);
    nnp_tensor_free(&g);
    nnp_tensor_free(&x);
    nnp_model_free(m);
}

Test(fusion, backward_overwrite_onednn)
{
    overwrite_equals_zero_and_add("channels_first", 0);
    overwrite_equals_zero_and_add("channels_last", 0);
}

Test(fusion, backward_overwrite_im2col)
{
    overwrite_equals_zero_and_add("channels_first", 1);
    overwrite_equals_zero_and_add("channels_last", 1);
}
