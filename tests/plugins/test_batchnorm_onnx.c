/*
 * ONNX mapping of the BatchNormalization plugin (plugins/batchnorm/onnx.c)
 * through the host's importer and exporter: ONNX's own node tests at every
 * opset they come in, hand-written nodes in the spellings of older opsets
 * (tests/plugins/data/batchnorm, made by gen_batchnorm_onnx.py), the
 * Transpose -> BN -> Transpose fold, and export/import round trips.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include "kernels.h"
#include "nnplug/model.h"
#include "nnplug/onnx.h"

/* Asserts an nnplug call succeeded, showing the `err` in scope. */
#define CHECK(call)                                                                    \
    do {                                                                               \
        nnp_status st_ = (call);                                                       \
        cr_assert_eq(st_, NNP_OK, "%s", err.msg);                                      \
    } while (0)

static const char *fixture(const char *name)
{
    static _Thread_local char path[1024];
    const char *src = getenv("NNP_SOURCE_DIR");
    cr_assert(src && src[0], "NNP_SOURCE_DIR is not set (run through ctest)");
    snprintf(path, sizeof path, "%s/tests/plugins/data/batchnorm/%s", src, name);
    return path;
}

/* Runs a one-input model in inference mode; returns a malloc'ed copy of y. */
static float *run_model(nnp_model *m, const nnp_tensor *x)
{
    nnp_error err = {0};
    CHECK(nnp_model_build(m, x->shape.dims[0], &err));
    const nnp_tensor *in[1] = {x};
    CHECK(nnp_model_forward(m, in, 1, NNP_MODE_INFER, &err));
    const nnp_tensor *y = nnp_model_output(m, 0);
    cr_assert(y && nnp_shape_equal(&y->shape, &x->shape));
    float *copy = malloc(y->nbytes ? y->nbytes : 1);
    memcpy(copy, y->data, y->nbytes);
    return copy;
}

static void make_x(nnp_tensor *x, int rank, const int64_t *dims)
{
    nnp_error err = {0};
    nnp_shape s;
    CHECK(nnp_shape_make(&s, rank, dims, &err));
    CHECK(nnp_tensor_alloc(x, NNP_F32, &s, &err));
    for (int64_t i = 0; i < nnp_tensor_numel(x); i++)
        ((float *)x->data)[i] = (float)((i * 37) % 101) * 0.05f - 2.0f;
}

/* ------------------------------------------------------------------ */
/* ONNX's node tests                                                   */
/* ------------------------------------------------------------------ */

static void onnx_node_case(const char *id)
{
    nnp_registry *reg = tu_registry();
    nnp_error err = {0};
    json_error_t je;
    json_t *m = json_load_file(tu_data_path("onnx-node/%s/case.json", id), 0, &je);
    cr_assert(m, "%s: %s", id, je.text);
    /* scale, B, mean and var are graph inputs in these tests: bind them */
    const char *params[4] = {"s", "bias", "mean", "var"};
    nnp_tensor x, p[4];
    nnp_onnx_binding b[4];
    tu_load_f32(tu_data_path("onnx-node/%s/inputs/x.npy", id), &x);
    for (int i = 0; i < 4; i++) {
        tu_load_f32(tu_data_path("onnx-node/%s/inputs/%s.npy", id, params[i]), &p[i]);
        b[i] = (nnp_onnx_binding){params[i], &p[i]};
    }
    nnp_onnx_load_options opts = {.bindings = b, .n_bindings = 4};
    nnp_model *model;
    CHECK(nnp_onnx_load(reg, tu_data_path("onnx-node/%s/model.onnx", id), &opts, &model, &err));
    CHECK(nnp_model_build(model, x.shape.dims[0], &err));
    const nnp_tensor *in[1] = {&x};
    CHECK(nnp_model_forward(model, in, 1, NNP_MODE_INFER, &err));
    /* outputs in graph order: y, then the running statistics in training mode */
    const char *key;
    json_t *o;
    int i = 0;
    json_object_foreach(json_object_get(m, "outputs"), key, o)
    {
        const nnp_tensor *got = nnp_model_output(model, i++);
        cr_assert(got, "%s: no output %s", id, key);
        int64_t n;
        double *e = tu_load_f64(
            tu_data_path("onnx-node/%s/%s", id, json_string_value(json_object_get(o, "file"))),
            NULL, &n);
        cr_assert_eq(nnp_tensor_numel(got), n, "%s: %s size", id, key);
        char what[160];
        snprintf(what, sizeof what, "%s %s", id, key);
        tu_assert_close_f32(what, got->data, e, n, json_number_value(json_object_get(o, "rtol")),
                            json_number_value(json_object_get(o, "atol")));
        free(e);
    }
    nnp_model_free(model);
    nnp_tensor_free(&x);
    for (int k = 0; k < 4; k++)
        nnp_tensor_free(&p[k]);
    json_decref(m);
    nnp_registry_free(reg);
}

Test(onnx_node, example_opset15) { onnx_node_case("test_batchnorm_example"); }
Test(onnx_node, epsilon_opset15) { onnx_node_case("test_batchnorm_epsilon"); }
Test(onnx_node, example_training_mode) { onnx_node_case("test_batchnorm_example_training_mode"); }
Test(onnx_node, epsilon_training_mode) { onnx_node_case("test_batchnorm_epsilon_training_mode"); }
Test(onnx_node, example_opset7) { onnx_node_case("opset7_batchnorm_example"); }
Test(onnx_node, example_opset9) { onnx_node_case("opset9_batchnorm_example"); }

/* ------------------------------------------------------------------ */
/* older spellings, defaults, folds, refusals                          */
/* ------------------------------------------------------------------ */

/* Loads fixture `file` (weights of gen_batchnorm_onnx.py), checks the layer
 * config it became and its inference output against the double reference. */
static void fixture_case(const char *file, int64_t axis, double eps, double momentum,
                         int rank, const int64_t *dims)
{
    nnp_registry *reg = tu_registry();
    nnp_error err = {0};
    nnp_model *m;
    CHECK(nnp_onnx_load(reg, fixture(file), NULL, &m, &err));
    cr_assert_eq(nnp_model_n_layers(m), 1, "%s: the Transposes were not folded", file);
    const nnp_config *c = nnp_layer_config(nnp_model_layer(m, 0));
    cr_assert_eq(nnp_config_int(c, "axis"), axis, "%s: axis", file);
    cr_assert_eq(nnp_config_float(c, "epsilon"), (double)(float)eps, "%s: epsilon", file);
    cr_assert_eq(nnp_config_float(c, "momentum"), (double)(float)momentum, "%s: momentum", file);

    nnp_tensor x;
    make_x(&x, rank, dims);
    float *y = run_model(m, &x);
    const int64_t n = nnp_tensor_numel(&x);
    double gamma[3] = {1.5, 1.5, 1.5}, beta[3] = {0.5, 0.5, 0.5};
    double mean[3], var[3];
    for (int k = 0; k < 3; k++) {
        mean[k] = (double)(float)(0.1 * (k + 1)); /* numpy: float64, then float32 */
        var[k] = 2.0 + k;
    }
    double *xd = malloc(sizeof(double) * (size_t)n), *yr = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        xd[i] = ((float *)x.data)[i];
    int ax = (int)(axis < 0 ? axis + rank : axis);
    nnp_bn_ref_forward_infer(nnp_bn_dims_of(dims, rank, ax), (double)(float)eps, xd, gamma, beta,
                             mean, var, yr);
    tu_assert_close_f32(file, y, yr, n, 1e-5, 1e-6);
    free(y), free(xd), free(yr);
    nnp_tensor_free(&x);
    nnp_model_free(m);
    nnp_registry_free(reg);
}

static const int64_t NCHW[4] = {2, 3, 4, 4}, NHWC[4] = {2, 4, 4, 3};

Test(onnx_import, opset1_consumed_inputs)
{
    /* attributes absent: ONNX's defaults, not Keras's */
    fixture_case("opset1_consumed_inputs.onnx", 1, 1e-5, 0.9, 4, NCHW);
}
Test(onnx_import, opset6_is_test) { fixture_case("opset6_is_test.onnx", 1, 1e-3, 0.9, 4, NCHW); }
Test(onnx_import, opset7_spatial1) { fixture_case("opset7_spatial1.onnx", 1, 1e-2, 0.8, 4, NCHW); }
Test(onnx_import, opset9_defaults) { fixture_case("opset9_defaults.onnx", 1, 1e-5, 0.9, 4, NCHW); }
Test(onnx_import, transpose_fold_to_last_axis)
{
    fixture_case("opset15_nhwc_transposed.onnx", -1, 1e-3, 0.9, 4, NHWC);
}

Test(onnx_import, spatial0_is_refused)
{
    nnp_registry *reg = tu_registry();
    nnp_error err = {0};
    nnp_model *m = NULL;
    cr_assert_neq(nnp_onnx_load(reg, fixture("opset7_spatial0.onnx"), NULL, &m, &err), NNP_OK);
    cr_assert_null(m);
    cr_assert(strstr(err.msg, "spatial=0") && strstr(err.msg, "bn0"),
              "message names neither the attribute nor the node: %s", err.msg);
    nnp_registry_free(reg);
}

/* ------------------------------------------------------------------ */
/* export and re-import                                                */
/* ------------------------------------------------------------------ */

static void round_trip(const char *config, int rank, const int64_t *dims, int opset)
{
    nnp_registry *reg = tu_registry();
    nnp_error err = {0};
    nnp_model *m;
    CHECK(nnp_model_new(reg, &m, &err));
    nnp_shape s;
    CHECK(nnp_shape_make(&s, rank, dims, &err));
    s.dims[0] = -1;
    int in, li, out;
    CHECK(nnp_model_add_input(m, "x", &s, &in, &err));
    nnp_layer *l;
    CHECK(nnp_layer_new(reg, "BatchNormalization", config, &l, &err));
    CHECK(nnp_model_add_layer(m, l, &li, &err));
    CHECK(nnp_model_apply(m, li, &in, 1, "y", &out, &err));
    CHECK(nnp_model_set_outputs(m, &out, 1, &err));
    CHECK(nnp_model_build(m, dims[0], &err));
    /* weights away from their initial values, so that a lost one shows */
    for (int i = 0; i < nnp_layer_n_weights(l); i++) {
        const nnp_weight *w = nnp_layer_weight(l, i);
        for (int64_t j = 0; j < nnp_tensor_numel(w->value); j++)
            ((float *)w->value->data)[j] = 0.5f + 0.1f * (float)((j * 7 + i * 3) % 11);
    }
    nnp_tensor x;
    make_x(&x, rank, dims);
    float *y1 = run_model(m, &x);

    uint8_t *bytes;
    size_t len;
    CHECK(nnp_onnx_serialize(m, opset, &bytes, &len, &err));
    nnp_model *m2;
    CHECK(nnp_onnx_load_buffer(reg, bytes, len, "round trip", NULL, NULL, &m2, &err));
    cr_assert_eq(nnp_model_n_layers(m2), 1);
    float *y2 = run_model(m2, &x);
    cr_assert(memcmp(y1, y2, nnp_tensor_numel(&x) * sizeof(float)) == 0,
              "%s at opset %d: outputs differ after the round trip", config, opset);
    char *c1 = nnp_config_to_json(nnp_layer_config(l));
    char *c2 = nnp_config_to_json(nnp_layer_config(nnp_model_layer(m2, 0)));
    cr_assert_str_eq(c2, c1, "opset %d: config changed", opset);
    nnp_layer *l2 = nnp_model_layer(m2, 0);
    cr_assert_eq(nnp_layer_n_weights(l2), nnp_layer_n_weights(l));
    for (int i = 0; i < nnp_layer_n_weights(l); i++) {
        const nnp_weight *a = nnp_layer_weight(l, i), *b = nnp_layer_weight(l2, i);
        cr_assert_str_eq(a->name, b->name);
        cr_assert(memcmp(a->value->data, b->value->data, a->value->nbytes) == 0, "%s differs",
                  a->name);
    }
    free(c1), free(c2), free(y1), free(y2), free(bytes);
    nnp_tensor_free(&x);
    nnp_model_free(m2);
    nnp_model_free(m);
    nnp_registry_free(reg);
}

Test(onnx_export, round_trips)
{
    static const int64_t d4[4] = {2, 4, 5, 3}, d2[2] = {6, 5}, d5[5] = {2, 3, 4, 2, 5};
    const int opsets[] = {9, 13, 15, 17};
    for (int i = 0; i < 4; i++) {
        round_trip("{\"name\": \"bn_nhwc\"}", 4, d4, opsets[i]);
        round_trip("{\"name\": \"bn_nchw\", \"axis\": 1, \"center\": false}", 4, d4, opsets[i]);
        round_trip("{\"axis\": -1, \"scale\": false, \"momentum\": 0.8, \"epsilon\": 0.01}", 2,
                   d2, opsets[i]);
        round_trip("{\"axis\": 2, \"center\": false, \"scale\": false}", 5, d5, opsets[i]);
    }
}
