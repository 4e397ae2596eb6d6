/* Keras-style JSON models: what Keras 2, Keras 3 and tfjs write (Sequential,
 * Functional, tfjs artifacts), shared layers, several outputs, errors that
 * name what is wrong, and nnp_keras_to_json round trips. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnplug/onnx.h"
#include "testutil.h"

static nnp_registry *reg;
static void setup(void) { reg = tu_registry(); }
static void teardown(void) { nnp_registry_free(reg); }

/* The JSON below is written with single quotes for legibility. */
static char *dq(const char *s)
{
    char *d = strdup(s);
    cr_assert_not_null(d);
    for (char *c = d; *c; c++)
        if (*c == '\'')
            *c = '"';
    return d;
}

static nnp_model *load(const char *json)
{
    char *j = dq(json);
    nnp_model *m = NULL;
    nnp_error err = {0};
    nnp_status st = nnp_keras_load_string(reg, j, "test.json", &m, &err);
    cr_assert_eq(st, NNP_OK, "load failed: %s\n%s", err.msg, j);
    free(j);
    return m;
}

/* Loading must fail with a message; returns it. */
static const char *load_error(const char *json)
{
    static nnp_error err;
    char *j = dq(json);
    nnp_model *m = NULL;
    memset(&err, 0, sizeof err);
    nnp_status st = nnp_keras_load_string(reg, j, "bad.json", &m, &err);
    cr_assert_neq(st, NNP_OK, "loaded a bad model:\n%s", j);
    cr_assert_null(m);
    cr_assert(err.msg[0], "error without a message");
    free(j);
    return err.msg;
}

static void assert_mentions(const char *msg, const char *word)
{
    cr_assert_not_null(strstr(msg, word), "message does not mention '%s': %s", word, msg);
}

static void assert_shape(const nnp_shape *s, int rank, const int64_t *dims, const char *what)
{
    cr_assert_eq(s->rank, rank, "%s: rank %d, expected %d", what, s->rank, rank);
    for (int i = 0; i < rank; i++)
        cr_assert_eq(s->dims[i], dims[i], "%s: dim %d is %lld, expected %lld", what, i,
                     (long long)s->dims[i], (long long)dims[i]);
}

static void assert_input(const nnp_model *m, int i, const char *name, int rank,
                         const int64_t *dims)
{
    int v = nnp_model_input_value(m, i);
    cr_assert_str_eq(nnp_model_value_name(m, v), name);
    assert_shape(nnp_model_value_shape(m, v), rank, dims, name);
}

static void assert_output(const nnp_model *m, int i, int rank, const int64_t *dims)
{
    assert_shape(nnp_model_value_shape(m, nnp_model_output_value(m, i)), rank, dims, "output");
}

/* to_json -> load -> to_json gives the same text and the same graph. */
static void assert_round_trip(const nnp_model *m)
{
    char *a = nnp_keras_to_json(m);
    cr_assert_not_null(a);
    nnp_model *back = NULL;
    nnp_error err = {0};
    cr_assert_eq(nnp_keras_load_string(reg, a, "round-trip", &back, &err), NNP_OK,
                 "reloading our own JSON: %s\n%s", err.msg, a);
    char *b = nnp_keras_to_json(back);
    cr_assert_not_null(b);
    cr_assert_str_eq(a, b, "the round trip changed the JSON:\n%s\n---\n%s", a, b);
    cr_assert_eq(nnp_model_n_layers(back), nnp_model_n_layers(m));
    cr_assert_eq(nnp_model_n_nodes(back), nnp_model_n_nodes(m));
    for (int i = 0; i < nnp_model_n_nodes(m); i++)
        cr_assert_eq(nnp_model_node_layer(back, i), nnp_model_node_layer(m, i));
    cr_assert_eq(nnp_model_n_inputs(back), nnp_model_n_inputs(m));
    cr_assert_eq(nnp_model_n_outputs(back), nnp_model_n_outputs(m));
    free(a);
    free(b);
    nnp_model_free(back);
}

/* Inference on inputs of [batch, features] filled with a fixed pattern. */
static void forward(nnp_model *m, nnp_tensor *x, int n_in, int64_t batch, int64_t features)
{
    nnp_error err = {0};
    nnp_shape s = {2, {batch, features}};
    const nnp_tensor *in[4];
    for (int k = 0; k < n_in; k++) {
        cr_assert_eq(nnp_tensor_alloc(&x[k], NNP_F32, &s, &err), NNP_OK);
        for (int64_t i = 0; i < batch * features; i++)
            ((float *)x[k].data)[i] = (float)sin(0.7 * (double)i + 0.3 + k);
        in[k] = &x[k];
    }
    cr_assert_eq(nnp_model_forward(m, in, n_in, NNP_MODE_INFER, &err), NNP_OK, "%s", err.msg);
}

/* y = x . kernel + bias of Dense layer `name` (linear), row by row. */
static void dense_ref(const nnp_model *m, const char *name, const double *x, int64_t batch,
                      double *y)
{
    int li = nnp_model_find_layer(m, name);
    cr_assert_geq(li, 0, "no layer %s", name);
    const nnp_layer *l = nnp_model_layer(m, li);
    const nnp_tensor *k = nnp_layer_weight_by_name(l, "kernel")->value;
    const nnp_tensor *b = nnp_layer_weight_by_name(l, "bias")->value;
    int64_t in = k->shape.dims[0], out = k->shape.dims[1];
    for (int64_t r = 0; r < batch; r++)
        for (int64_t j = 0; j < out; j++) {
            double s = ((const float *)b->data)[j];
            for (int64_t i = 0; i < in; i++)
                s += x[r * in + i] * ((const float *)k->data)[i * out + j];
            y[r * out + j] = s;
        }
}

static void assert_close_to(const nnp_tensor *got, const double *exp, const char *what)
{
    tu_assert_close_f32(what, got->data, exp, nnp_tensor_numel(got), 1e-5, 1e-5);
}

static void need_kind(const char *kind)
{
    if (!nnp_registry_find(reg, kind))
        cr_skip_test("no %s plugin in this build", kind);
}

/* ------------------------------------------------------------- Sequential */

Test(keras_json, sequential_keras3_input_layer, .init = setup, .fini = teardown)
{
    nnp_model *m = load(
        "{'class_name': 'Sequential', 'config': {'name': 'seq', 'trainable': true,"
        " 'dtype': {'module': 'keras', 'class_name': 'DTypePolicy',"
        "           'config': {'name': 'float32'}, 'registered_name': null},"
        " 'layers': ["
        "  {'module': 'keras.layers', 'class_name': 'InputLayer', 'registered_name': null,"
        "   'config': {'batch_shape': [null, 4], 'dtype': 'float32', 'sparse': false,"
        "              'name': 'features'}},"
        "  {'module': 'keras.layers', 'class_name': 'Dense', 'registered_name': null,"
        "   'config': {'name': 'dense', 'units': 3, 'activation': 'linear', 'use_bias': true,"
        "              'trainable': true,"
        "              'dtype': {'module': 'keras', 'class_name': 'DTypePolicy',"
        "                        'config': {'name': 'float32'}, 'registered_name': null}},"
        "   'build_config': {'input_shape': [null, 4]}},"
        "  {'class_name': 'BatchNormalization', 'config': {'name': 'bn', 'momentum': 0.9}},"
        "  {'class_name': 'Activation', 'config': {'name': 'act', 'activation': 'tanh'}},"
        "  {'class_name': 'ReLU', 'config': {'name': 'relu'}}]},"
        " 'keras_version': '3.5.0', 'backend': 'tensorflow'}");
    cr_assert_eq(nnp_model_n_inputs(m), 1);
    assert_input(m, 0, "features", 2, (int64_t[]){-1, 4});
    cr_assert_eq(nnp_model_n_layers(m), 4);
    const char *names[] = {"dense", "bn", "act", "relu"};
    const char *kinds[] = {"Dense", "BatchNormalization", "Activation", "ReLU"};
    for (int i = 0; i < 4; i++) {
        cr_assert_str_eq(nnp_layer_name(nnp_model_layer(m, i)), names[i]);
        cr_assert_str_eq(nnp_layer_kind_of(nnp_model_layer(m, i))->name, kinds[i]);
    }
    cr_assert_eq(nnp_model_n_outputs(m), 1);
    assert_output(m, 0, 2, (int64_t[]){-1, 3});
    nnp_tensor x = {0};
    forward(m, &x, 1, 5, 4);
    const nnp_tensor *y = nnp_model_output(m, 0);
    cr_assert_eq(y->shape.dims[0], 5);
    for (int64_t i = 0; i < nnp_tensor_numel(y); i++) {
        float v = ((const float *)y->data)[i];
        cr_assert(v >= 0.0f && v < 1.0f, "relu(tanh(.)) gave %g", v);
    }
    nnp_tensor_free(&x);
    assert_round_trip(m);
    nnp_model_free(m);
}

/* A BatchNormalization exactly as Keras 3's model.to_json() writes it:
 * module / registered_name / build_config wrappers, DTypePolicy objects,
 * initializers with module keys, and "synchronized": false. */
#define KERAS3_INIT(cls)                                                          \
    "{'module': 'keras.initializers', 'class_name': '" cls "', 'config': {},"     \
    " 'registered_name': null}"
#define KERAS3_DTYPE                                                              \
    "{'module': 'keras', 'class_name': 'DTypePolicy', 'config': {'name': 'float32'}," \
    " 'registered_name': null}"
static const char keras3_bn[] =
    "{'module': 'keras', 'class_name': 'Sequential', 'config': {'name': 'sequential',"
    " 'trainable': true, 'dtype': " KERAS3_DTYPE ", 'layers': ["
    "  {'module': 'keras.layers', 'class_name': 'InputLayer', 'config': {'batch_shape':"
    "   [null, 8], 'dtype': 'float32', 'sparse': false, 'ragged': false, 'name':"
    "   'input_layer'}, 'registered_name': null},"
    "  {'module': 'keras.layers', 'class_name': 'BatchNormalization', 'config': {"
    "   'name': 'batch_normalization', 'trainable': true, 'dtype': " KERAS3_DTYPE ","
    "   'axis': -1, 'momentum': 0.99, 'epsilon': 0.001, 'center': true, 'scale': true,"
    "   'beta_initializer': " KERAS3_INIT("Zeros") ","
    "   'gamma_initializer': " KERAS3_INIT("Ones") ","
    "   'moving_mean_initializer': " KERAS3_INIT("Zeros") ","
    "   'moving_variance_initializer': " KERAS3_INIT("Ones") ","
    "   'beta_regularizer': null, 'gamma_regularizer': null, 'beta_constraint': null,"
    "   'gamma_constraint': null, 'synchronized': %s},"
    "   'registered_name': null, 'build_config': {'input_shape': [null, 8]}}],"
    " 'build_input_shape': [null, 8]}, 'registered_name': null,"
    " 'build_config': {'input_shape': [null, 8]}, 'compile_config': null}";

Test(keras_json, keras3_batch_normalization_as_keras_writes_it, .init = setup, .fini = teardown)
{
    for (int sync = 0; sync < 2; sync++) {
        char json[4096];
        snprintf(json, sizeof json, keras3_bn, sync ? "true" : "false");
        nnp_model *m = load(json);
        const nnp_config *c = nnp_layer_config(nnp_model_layer(m, 0));
        cr_assert_str_eq(nnp_layer_kind_of(nnp_model_layer(m, 0))->name, "BatchNormalization");
        cr_assert_eq(nnp_config_bool(c, "synchronized"), sync);
        assert_round_trip(m);
        /* the tf.keras-only keys stay out of what nnplug writes */
        char *cj = nnp_config_to_json(c);
        cr_assert(strstr(cj, "\"synchronized\"") && !strstr(cj, "renorm") &&
                      !strstr(cj, "virtual_batch_size") && !strstr(cj, "fused"), "%s", cj);
        free(cj);
        nnp_model_free(m);
    }
}

/* tf.keras's BatchNormalization: a built layer saves "axis": [3]; the
 * renormalization, ghost-batch and fused keys load at their defaults and
 * are refused by name otherwise. */
static const char *tf_keras_bn(const char *extra)
{
    static char json[1024];
    snprintf(json, sizeof json,
             "{'class_name': 'Sequential', 'config': {'name': 's', 'layers': ["
             "  {'class_name': 'BatchNormalization', 'config': {'name': 'bn',"
             "   'batch_input_shape': [null, 4, 4, 5], %s}}]},"
             " 'keras_version': '2.15.0', 'backend': 'tensorflow'}", extra);
    return json;
}

Test(keras_json, tf_keras_batch_normalization_keys, .init = setup, .fini = teardown)
{
    nnp_model *m = load(tf_keras_bn("'axis': [3], 'renorm': false, 'renorm_clipping': null,"
                                    " 'renorm_momentum': 0.99, 'virtual_batch_size': null,"
                                    " 'fused': null"));
    cr_assert_eq(nnp_config_int(nnp_layer_config(nnp_model_layer(m, 0)), "axis"), 3);
    assert_round_trip(m);
    nnp_model_free(m);
    const struct {
        const char *extra, *words[3];
    } bad[] = {
        {"'axis': [1, 2]", {"'axis'", "lists 2 values", "takes one"}},
        {"'axis': []", {"'axis'", "lists 0 values"}},
        {"'renorm': true", {"'renorm' = true", "not supported", "default (false)"}},
        {"'renorm_clipping': {'rmax': 3}", {"'renorm_clipping'", "not supported"}},
        {"'renorm_momentum': 0.9", {"'renorm_momentum' = 0.9", "not supported"}},
        {"'virtual_batch_size': 4", {"'virtual_batch_size' = 4", "not supported"}},
        {"'fused': true", {"'fused' = true", "not supported"}},
        {"'dtype': {'class_name': 'DTypePolicy', 'config': {'name': 'mixed_float16'}}",
         {"'dtype'", "'mixed_float16' is not supported", "float32"}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *msg = load_error(tf_keras_bn(bad[i].extra));
        assert_mentions(msg, "'bn'");
        for (int w = 0; w < 3 && bad[i].words[w]; w++)
            assert_mentions(msg, bad[i].words[w]);
    }
}

Test(keras_json, sequential_batch_input_shape_on_first_layer, .init = setup, .fini = teardown)
{
    nnp_model *m = load(
        "{'class_name': 'Sequential', 'config': {'name': 'sequential', 'layers': ["
        "  {'class_name': 'Dense', 'config': {'name': 'd1', 'units': 6, 'activation': 'relu',"
        "   'batch_input_shape': [null, 5], 'dtype': 'float32', 'trainable': true}},"
        "  {'class_name': 'Dense', 'config': {'name': 'd2', 'units': 2}}]},"
        " 'keras_version': '2.15.0', 'backend': 'tensorflow'}");
    cr_assert_eq(nnp_model_n_inputs(m), 1);
    assert_input(m, 0, "d1_input", 2, (int64_t[]){-1, 5});
    cr_assert_eq(nnp_model_n_layers(m), 2);
    assert_output(m, 0, 2, (int64_t[]){-1, 2});
    assert_round_trip(m);
    nnp_model_free(m);

    /* input_shape leaves the batch dimension out */
    m = load("{'class_name': 'Sequential', 'config': {'layers': ["
             "  {'class_name': 'Dense', 'config': {'name': 'd', 'units': 2,"
             "   'input_shape': [7]}}]}}");
    assert_input(m, 0, "d_input", 2, (int64_t[]){-1, 7});
    nnp_model_free(m);
}

Test(keras_json, sequential_flatten_dropout, .init = setup, .fini = teardown)
{
    need_kind("Flatten");
    need_kind("Dropout");
    nnp_model *m = load(
        "{'class_name': 'Sequential', 'config': {'name': 'sequential', 'layers': ["
        "  {'class_name': 'InputLayer', 'config': {'name': 'img', 'batch_shape': [null, 2, 3, 4]}},"
        "  {'class_name': 'Flatten', 'config': {'name': 'flat'}},"
        "  {'class_name': 'Dropout', 'config': {'name': 'drop', 'rate': 0.25}},"
        "  {'class_name': 'Dense', 'config': {'name': 'out', 'units': 3}}]}}");
    assert_input(m, 0, "img", 4, (int64_t[]){-1, 2, 3, 4});
    assert_output(m, 0, 2, (int64_t[]){-1, 3});
    assert_round_trip(m);
    nnp_model_free(m);
}

Test(keras_json, time_distributed_wraps_a_layer, .init = setup, .fini = teardown)
{
    nnp_model *m = load(
        "{'class_name': 'Sequential', 'config': {'layers': ["
        "  {'class_name': 'TimeDistributed', 'config': {'name': 'td', 'batch_input_shape':"
        "   [null, 3, 4], 'layer': {'class_name': 'Dense', 'config': {'name': 'inner',"
        "   'units': 2}}}}]}}");
    assert_input(m, 0, "td_input", 3, (int64_t[]){-1, 3, 4});
    assert_output(m, 0, 3, (int64_t[]){-1, 3, 2});
    assert_round_trip(m);
    nnp_model_free(m);
}

/* TimeDistributed calls its layer per time step (Keras 3, tfjs) unless the
 * file was written by tf.keras 2.x, which merges batch and time; the loaded
 * config states the choice, so round trips keep it. */
static int td_per_step(const char *keras_version, const char *td_extra)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{'class_name': 'Sequential', %s 'config': {'layers': ["
             "  {'class_name': 'TimeDistributed', 'config': {'name': 'td', %s"
             "   'batch_input_shape': [null, 3, 4], 'layer': {'class_name':"
             "   'BatchNormalization', 'config': {'name': 'bn'}}}}]}}",
             keras_version, td_extra);
    nnp_model *m = load(json);
    int per_step = nnp_config_bool(nnp_layer_config(nnp_model_layer(m, 0)), "per_step");
    assert_round_trip(m);
    /* through ONNX (the config travels in the metadata) */
    uint8_t *bytes;
    size_t len;
    nnp_error err = {0};
    nnp_model *back;
    cr_assert_eq(nnp_onnx_serialize(m, 0, &bytes, &len, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_onnx_load_buffer(reg, bytes, len, "td.onnx", NULL, NULL, &back, &err),
                 NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_config_bool(nnp_layer_config(nnp_model_layer(back, 0)), "per_step"),
                 per_step, "the ONNX round trip changed per_step");
    nnp_model_free(back);
    free(bytes);
    nnp_model_free(m);
    return per_step;
}

Test(keras_json, time_distributed_per_step_by_keras_version, .init = setup, .fini = teardown)
{
    cr_assert_eq(td_per_step("", ""), 1, "no version: Keras 3's rule");
    cr_assert_eq(td_per_step("'keras_version': '3.3.3',", ""), 1);
    cr_assert_eq(td_per_step("'keras_version': 'tfjs-layers 4.22.0',", ""), 1);
    cr_assert_eq(td_per_step("'keras_version': '2.15.0',", ""), 0, "tf.keras 2.x merges");
    cr_assert_eq(td_per_step("'keras_version': '2.15.0',", "'per_step': true,"), 1,
                 "a config that says it wins");
    cr_assert_eq(td_per_step("", "'per_step': false,"), 0);
}

/* ----------------------------------------------------------------- tfjs */

/* The tfjs model.json artifact: the Keras JSON sits under modelTopology
 * (directly, or under model_config as Keras 2's HDF5 files have it). */
Test(keras_json, tfjs_model_topology_wrapper, .init = setup, .fini = teardown)
{
    char *inner;
    size_t len;
    nnp_error err = {0};
    cr_assert_eq(nnp_read_file(tu_data_path("keras-tfjs/defaults_2d/model.json"), &inner, &len,
                               &err), NNP_OK, "%s", err.msg);
    const char *forms[] = {
        "{\"format\": \"layers-model\", \"generatedBy\": \"TensorFlow.js tfjs-layers v4.22.0\","
        " \"convertedBy\": null, \"modelTopology\": %s,"
        " \"weightsManifest\": [{\"paths\": [\"group1-shard1of1.bin\"], \"weights\": []}]}",
        "{\"modelTopology\": {\"keras_version\": \"2.1.6\", \"backend\": \"tensorflow\","
        " \"model_config\": %s}, \"weightsManifest\": []}",
    };
    for (int f = 0; f < 2; f++) {
        size_t n = strlen(forms[f]) + len + 1;
        char *doc = malloc(n);
        snprintf(doc, n, forms[f], inner);
        nnp_model *m = NULL;
        cr_assert_eq(nnp_keras_load_string(reg, doc, "model.json", &m, &err), NNP_OK,
                     "form %d: %s", f, err.msg);
        cr_assert_eq(nnp_model_n_layers(m), 1);
        const nnp_layer *l = nnp_model_layer(m, 0);
        cr_assert_str_eq(nnp_layer_name(l), "batch_normalization");
        cr_assert_str_eq(nnp_layer_kind_of(l)->name, "BatchNormalization");
        assert_input(m, 0, "batch_normalization_input", 2, (int64_t[]){-1, 6});
        assert_round_trip(m);
        nnp_model_free(m);
        free(doc);
    }
    free(inner);
}

/* ----------------------------------------------------------- Functional */

/* The same graph, in -> h (Dense 4, relu) -> out (Dense 2), in both node
 * formats; the result must be the same model. */
static const char functional_k2[] =
    "{'class_name': 'Functional', 'config': {'name': 'model', 'layers': ["
    "  {'class_name': 'InputLayer', 'name': 'in', 'inbound_nodes': [],"
    "   'config': {'batch_input_shape': [null, 3], 'dtype': 'float32', 'sparse': false,"
    "              'ragged': false, 'name': 'in'}},"
    "  {'class_name': 'Dense', 'name': 'h', 'config': {'name': 'h', 'units': 4, 'seed': 7,"
    "   'activation': 'relu'}, 'inbound_nodes': [[['in', 0, 0, {}]]]},"
    "  {'class_name': 'Dense', 'name': 'out', 'config': {'name': 'out', 'units': 2, 'seed': 8},"
    "   'inbound_nodes': [[['h', 0, 0, {}]]]}],"
    " 'input_layers': [['in', 0, 0]], 'output_layers': [['out', 0, 0]]},"
    " 'keras_version': '2.15.0', 'backend': 'tensorflow'}";

#define K3_TENSOR(src) \
    "{'class_name': '__keras_tensor__', 'config': {'shape': [null, 3], 'dtype': 'float32'," \
    " 'keras_history': ['" src "', 0, 0]}}"

static const char functional_k3[] =
    "{'module': 'keras', 'class_name': 'Functional', 'registered_name': 'Functional',"
    " 'config': {'name': 'model', 'trainable': true, 'layers': ["
    "  {'module': 'keras.layers', 'class_name': 'InputLayer', 'registered_name': null,"
    "   'name': 'in', 'inbound_nodes': [],"
    "   'config': {'batch_shape': [null, 3], 'dtype': 'float32', 'sparse': false, 'name': 'in'}},"
    "  {'module': 'keras.layers', 'class_name': 'Dense', 'registered_name': null, 'name': 'h',"
    "   'build_config': {'input_shape': [null, 3]},"
    "   'config': {'name': 'h', 'units': 4, 'seed': 7, 'activation': 'relu'},"
    "   'inbound_nodes': [{'args': [" K3_TENSOR("in") "], 'kwargs': {}}]},"
    "  {'module': 'keras.layers', 'class_name': 'Dense', 'registered_name': null, 'name': 'out',"
    "   'config': {'name': 'out', 'units': 2, 'seed': 8},"
    "   'inbound_nodes': [{'args': [" K3_TENSOR("h") "], 'kwargs': {}}]}],"
    " 'input_layers': [['in', 0, 0]], 'output_layers': ['out', 0, 0]},"
    " 'build_config': {'input_shape': null}}";

static void check_in_h_out(nnp_model *m)
{
    cr_assert_eq(nnp_model_n_inputs(m), 1);
    assert_input(m, 0, "in", 2, (int64_t[]){-1, 3});
    cr_assert_eq(nnp_model_n_layers(m), 2);
    cr_assert_eq(nnp_model_n_nodes(m), 2);
    cr_assert_eq(nnp_model_n_outputs(m), 1);
    assert_output(m, 0, 2, (int64_t[]){-1, 2});
    nnp_tensor x = {0};
    forward(m, &x, 1, 3, 3);
    double xd[9], h[12], y[6];
    for (int i = 0; i < 9; i++)
        xd[i] = ((float *)x.data)[i];
    dense_ref(m, "h", xd, 3, h);
    for (int i = 0; i < 12; i++)
        h[i] = h[i] > 0 ? h[i] : 0;
    dense_ref(m, "out", h, 3, y);
    assert_close_to(nnp_model_output(m, 0), y, "out");
    nnp_tensor_free(&x);
}

Test(keras_json, functional_keras2_nodes, .init = setup, .fini = teardown)
{
    nnp_model *m = load(functional_k2);
    check_in_h_out(m);
    assert_round_trip(m);
    nnp_model_free(m);
}

Test(keras_json, functional_keras3_nodes, .init = setup, .fini = teardown)
{
    nnp_model *m = load(functional_k3);
    check_in_h_out(m);
    assert_round_trip(m);
    /* both formats describe the same model */
    nnp_model *m2 = load(functional_k2);
    char *a = nnp_keras_to_json(m), *b = nnp_keras_to_json(m2);
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
    nnp_model_free(m2);
    nnp_model_free(m);
}

/* Layer A is applied to the input and again to B's output. Keras lists A
 * before B (layers by first use), so A's second node reads a layer that comes
 * later in the list. */
Test(keras_json, shared_layer_applied_twice, .init = setup, .fini = teardown)
{
    nnp_model *m = load(
        "{'class_name': 'Functional', 'config': {'name': 'shared', 'layers': ["
        "  {'class_name': 'InputLayer', 'name': 'x', 'inbound_nodes': [],"
        "   'config': {'name': 'x', 'batch_input_shape': [null, 4]}},"
        "  {'class_name': 'Dense', 'name': 'A', 'config': {'name': 'A', 'units': 4, 'seed': 1,"
        "   'bias_initializer': {'class_name': 'RandomNormal', 'config': {'seed': 5}}},"
        "   'inbound_nodes': [[['x', 0, 0, {}]], [['B', 0, 0, {}]]]},"
        "  {'class_name': 'Dense', 'name': 'B', 'config': {'name': 'B', 'units': 4, 'seed': 2},"
        "   'inbound_nodes': [[['A', 0, 0, {}]]]}],"
        " 'input_layers': [['x', 0, 0]], 'output_layers': [['A', 1, 0], ['A', 0, 0]]}}");
    cr_assert_eq(nnp_model_n_layers(m), 2, "the shared layer must exist once");
    cr_assert_eq(nnp_model_n_nodes(m), 3);
    int a = nnp_model_find_layer(m, "A");
    cr_assert_eq(nnp_model_node_layer(m, 0), a);
    cr_assert_eq(nnp_model_node_layer(m, 2), a);
    cr_assert_eq(nnp_model_n_outputs(m), 2);
    cr_assert_eq(nnp_model_output_value(m, 0), nnp_model_node_output(m, 2));
    cr_assert_eq(nnp_model_output_value(m, 1), nnp_model_node_output(m, 0));
    /* one set of weights: outputs are A(B(A(x))) and A(x) */
    nnp_tensor x = {0};
    forward(m, &x, 1, 2, 4);
    double xd[8], a1[8], b1[8], a2[8];
    for (int i = 0; i < 8; i++)
        xd[i] = ((float *)x.data)[i];
    dense_ref(m, "A", xd, 2, a1);
    dense_ref(m, "B", a1, 2, b1);
    dense_ref(m, "A", b1, 2, a2);
    assert_close_to(nnp_model_output(m, 0), a2, "A(B(A(x)))");
    assert_close_to(nnp_model_output(m, 1), a1, "A(x)");
    nnp_tensor_free(&x);
    assert_round_trip(m);
    nnp_model_free(m);
}

/* A siamese pair: one Dense layer applied to two inputs, joined by Add. The
 * model's inputs follow input_layers, not the order of the layer list. */
Test(keras_json, shared_layer_two_inputs_add, .init = setup, .fini = teardown)
{
    need_kind("Add");
    nnp_model *m = load(
        "{'class_name': 'Functional', 'config': {'name': 'siamese', 'layers': ["
        "  {'class_name': 'InputLayer', 'name': 'left', 'inbound_nodes': [],"
        "   'config': {'name': 'left', 'batch_shape': [null, 3]}},"
        "  {'class_name': 'InputLayer', 'name': 'right', 'inbound_nodes': [],"
        "   'config': {'name': 'right', 'batch_shape': [null, 3]}},"
        "  {'class_name': 'Dense', 'name': 'enc', 'config': {'name': 'enc', 'units': 2, 'seed': 3},"
        "   'inbound_nodes': [{'args': [" K3_TENSOR("left") "], 'kwargs': {}},"
        "                     {'args': [" K3_TENSOR("right") "], 'kwargs': {}}]},"
        "  {'class_name': 'Add', 'name': 'sum', 'config': {'name': 'sum'},"
        "   'inbound_nodes': [{'args': [[{'class_name': '__keras_tensor__', 'config':"
        "     {'keras_history': ['enc', 0, 0]}}, {'class_name': '__keras_tensor__', 'config':"
        "     {'keras_history': ['enc', 1, 0]}}]], 'kwargs': {}}]}],"
        " 'input_layers': [['right', 0, 0], ['left', 0, 0]],"
        " 'output_layers': [['sum', 0, 0]]}}");
    cr_assert_eq(nnp_model_n_inputs(m), 2);
    assert_input(m, 0, "right", 2, (int64_t[]){-1, 3});
    assert_input(m, 1, "left", 2, (int64_t[]){-1, 3});
    cr_assert_eq(nnp_model_n_layers(m), 2);
    cr_assert_eq(nnp_model_n_nodes(m), 3);
    assert_output(m, 0, 2, (int64_t[]){-1, 2});
    nnp_tensor x[2] = {{0}};
    forward(m, x, 2, 2, 3);   /* x[0] feeds right, x[1] left */
    double r[6], l[6], er[4], el[4], sum[4];
    for (int i = 0; i < 6; i++) {
        r[i] = ((float *)x[0].data)[i];
        l[i] = ((float *)x[1].data)[i];
    }
    dense_ref(m, "enc", r, 2, er);
    dense_ref(m, "enc", l, 2, el);
    for (int i = 0; i < 4; i++)
        sum[i] = er[i] + el[i];
    assert_close_to(nnp_model_output(m, 0), sum, "enc(left) + enc(right)");
    nnp_tensor_free(&x[0]);
    nnp_tensor_free(&x[1]);
    assert_round_trip(m);
    nnp_model_free(m);
}

Test(keras_json, multiple_outputs, .init = setup, .fini = teardown)
{
    nnp_model *m = load(
        "{'class_name': 'Model', 'config': {'name': 'heads', 'layers': ["
        "  {'class_name': 'InputLayer', 'name': 'in', 'inbound_nodes': [],"
        "   'config': {'name': 'in', 'batch_input_shape': [null, 5]}},"
        "  {'class_name': 'Dense', 'name': 'trunk', 'config': {'name': 'trunk', 'units': 4},"
        "   'inbound_nodes': [[['in', 0, 0, {}]]]},"
        "  {'class_name': 'BatchNormalization', 'name': 'bn', 'config': {'name': 'bn'},"
        "   'inbound_nodes': [[['trunk', 0, 0, {}]]]},"
        "  {'class_name': 'Dense', 'name': 'reg', 'config': {'name': 'reg', 'units': 1},"
        "   'inbound_nodes': [[['bn', 0, 0, {}]]]},"
        "  {'class_name': 'Dense', 'name': 'logits', 'config': {'name': 'logits', 'units': 3},"
        "   'inbound_nodes': [[['bn', 0, 0, {}]]]},"
        "  {'class_name': 'Activation', 'name': 'probs', 'config': {'name': 'probs',"
        "   'activation': 'softmax'}, 'inbound_nodes': [[['logits', 0, 0, {}]]]}],"
        " 'input_layers': [['in', 0, 0]],"
        " 'output_layers': [['probs', 0, 0], ['reg', 0, 0]]}}");
    cr_assert_eq(nnp_model_n_outputs(m), 2);
    assert_output(m, 0, 2, (int64_t[]){-1, 3});
    assert_output(m, 1, 2, (int64_t[]){-1, 1});
    nnp_tensor x = {0};
    forward(m, &x, 1, 4, 5);
    const nnp_tensor *p = nnp_model_output(m, 0);
    for (int r = 0; r < 4; r++) {
        const float *row = (const float *)p->data + 3 * r;
        cr_assert_float_eq(row[0] + row[1] + row[2], 1.0f, 1e-5, "softmax row %d", r);
    }
    cr_assert_eq(nnp_model_output(m, 1)->shape.dims[0], 4);
    nnp_tensor_free(&x);
    assert_round_trip(m);
    nnp_model_free(m);
}

/* --------------------------------------------------------------- errors */

Test(keras_json, unknown_class_name, .init = setup, .fini = teardown)
{
    const char *msg = load_error(
        "{'class_name': 'Sequential', 'config': {'layers': ["
        "  {'class_name': 'InputLayer', 'config': {'name': 'in', 'batch_shape': [null, 2]}},"
        "  {'class_name': 'Frobnicate', 'config': {'name': 'frob_1'}}]}}");
    assert_mentions(msg, "bad.json");
    assert_mentions(msg, "frob_1");
    assert_mentions(msg, "Frobnicate");
    assert_mentions(msg, "BatchNormalization");   /* the kinds that are loaded */
    assert_mentions(msg, "Dense");

    /* Functional layers carry their name beside the config too */
    msg = load_error(
        "{'class_name': 'Functional', 'config': {'layers': ["
        "  {'class_name': 'InputLayer', 'name': 'in', 'inbound_nodes': [],"
        "   'config': {'batch_shape': [null, 2]}},"
        "  {'class_name': 'Frobnicate', 'name': 'frob_2', 'config': {},"
        "   'inbound_nodes': [[['in', 0, 0, {}]]]}],"
        " 'input_layers': [['in', 0, 0]], 'output_layers': [['frob_2', 0, 0]]}}");
    assert_mentions(msg, "frob_2");
    assert_mentions(msg, "Frobnicate");
}

Test(keras_json, unknown_config_key, .init = setup, .fini = teardown)
{
    const char *msg = load_error(
        "{'class_name': 'Sequential', 'config': {'layers': ["
        "  {'class_name': 'Dense', 'config': {'name': 'd1', 'batch_input_shape': [null, 2],"
        "   'units': 3, 'unitz': 4}}]}}");
    assert_mentions(msg, "bad.json");
    assert_mentions(msg, "d1");
    assert_mentions(msg, "unitz");
}

Test(keras_json, bad_parameter_value_names_the_layer, .init = setup, .fini = teardown)
{
    const char *msg = load_error(
        "{'class_name': 'Sequential', 'config': {'layers': ["
        "  {'class_name': 'Dense', 'config': {'name': 'd1', 'batch_input_shape': [null, 2],"
        "   'units': 'three'}}]}}");
    assert_mentions(msg, "d1");
    assert_mentions(msg, "units");
}

Test(keras_json, undefined_layer_reference, .init = setup, .fini = teardown)
{
    const char *msg = load_error(
        "{'class_name': 'Functional', 'config': {'layers': ["
        "  {'class_name': 'InputLayer', 'name': 'in', 'inbound_nodes': [],"
        "   'config': {'name': 'in', 'batch_shape': [null, 2]}},"
        "  {'class_name': 'Dense', 'name': 'd', 'config': {'name': 'd', 'units': 2},"
        "   'inbound_nodes': [[['ghost', 0, 0, {}]]]}],"
        " 'input_layers': [['in', 0, 0]], 'output_layers': [['d', 0, 0]]}}");
    assert_mentions(msg, "bad.json");
    assert_mentions(msg, "'d'");
    assert_mentions(msg, "ghost");

    /* a node index the layer does not have */
    msg = load_error(
        "{'class_name': 'Functional', 'config': {'layers': ["
        "  {'class_name': 'InputLayer', 'name': 'in', 'inbound_nodes': [],"
        "   'config': {'name': 'in', 'batch_shape': [null, 2]}},"
        "  {'class_name': 'Dense', 'name': 'd', 'config': {'name': 'd', 'units': 2},"
        "   'inbound_nodes': [[['in', 0, 0, {}]]]}],"
        " 'input_layers': [['in', 0, 0]], 'output_layers': [['d', 3, 0]]}}");
    assert_mentions(msg, "'d'");

    /* layers that read each other: neither can ever run */
    msg = load_error(
        "{'class_name': 'Functional', 'config': {'layers': ["
        "  {'class_name': 'InputLayer', 'name': 'in', 'inbound_nodes': [],"
        "   'config': {'name': 'in', 'batch_shape': [null, 2]}},"
        "  {'class_name': 'Dense', 'name': 'p', 'config': {'name': 'p', 'units': 2},"
        "   'inbound_nodes': [[['q', 0, 0, {}]]]},"
        "  {'class_name': 'Dense', 'name': 'q', 'config': {'name': 'q', 'units': 2},"
        "   'inbound_nodes': [[['p', 0, 0, {}]]]}],"
        " 'input_layers': [['in', 0, 0]], 'output_layers': [['q', 0, 0]]}}");
    assert_mentions(msg, "'p'");
}

Test(keras_json, missing_output_layers, .init = setup, .fini = teardown)
{
    const char *msg = load_error(
        "{'class_name': 'Functional', 'config': {'layers': ["
        "  {'class_name': 'InputLayer', 'name': 'in', 'inbound_nodes': [],"
        "   'config': {'name': 'in', 'batch_shape': [null, 2]}},"
        "  {'class_name': 'Dense', 'name': 'd', 'config': {'name': 'd', 'units': 2},"
        "   'inbound_nodes': [[['in', 0, 0, {}]]]}],"
        " 'input_layers': [['in', 0, 0]]}}");
    assert_mentions(msg, "bad.json");
    assert_mentions(msg, "output_layers");
}

Test(keras_json, invalid_json_names_file_and_line, .init = setup, .fini = teardown)
{
    const char *msg = load_error("{'class_name': 'Sequential',\n"
                                 " 'config': {'layers': [\n"
                                 "   {'class_name': 'Dense' 'config': {}}]}}\n");
    assert_mentions(msg, "bad.json");
    assert_mentions(msg, "line 3");

    /* from a file: the message names the path */
    nnp_model *m = NULL;
    nnp_error err = {0};
    char path[] = "/tmp/nnp_keras_json_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs("{\n  \"class_name\": \"Sequential\",\n  \"config\": [\n}\n", f);
    fclose(f);
    cr_assert_neq(nnp_keras_load(reg, path, &m, &err), NNP_OK);
    remove(path);
    cr_assert_null(m);
    assert_mentions(err.msg, path);
    assert_mentions(err.msg, "line 4");
}

Test(keras_json, not_a_model, .init = setup, .fini = teardown)
{
    assert_mentions(load_error("{'class_name': 'Sequential', 'config': {'layers': []}}"),
                    "no layers");
    assert_mentions(load_error("{'weights': []}"), "bad.json");
    assert_mentions(load_error("{'class_name': 'Sequential', 'config': {'layers': ["
                               "  {'class_name': 'Dense', 'config': {'units': 2}}]}}"),
                    "batch_input_shape");
    assert_mentions(load_error("{'class_name': 'Functional', 'config': {'layers': ["
                               "  {'class_name': 'InputLayer', 'name': 'in', "
                               "   'config': {'name': 'in'}}],"
                               " 'input_layers': [['in', 0, 0]],"
                               " 'output_layers': [['in', 0, 0]]}}"),
                    "'in'");
}

/* ------------------------------------------------------ models from code */

/* A graph built with the C API (no Keras JSON involved) survives
 * to_json -> load -> to_json, chains as Sequential and the rest as
 * Functional. */
Test(keras_json, round_trip_of_api_models, .init = setup, .fini = teardown)
{
    nnp_error err = {0};
    for (int shape = 0; shape < 2; shape++) {
        nnp_model *m;
        cr_assert_eq(nnp_model_new(reg, &m, &err), NNP_OK);
        nnp_shape s = {2, {-1, 3}};
        int x, v, li;
        cr_assert_eq(nnp_model_add_input(m, "x", &s, &x, &err), NNP_OK);
        const char *kinds[] = {"Dense", "BatchNormalization", "ReLU"};
        const char *cfgs[] = {"{\"units\": 4, \"kernel_regularizer\": {\"class_name\": \"L2\","
                              " \"config\": {\"l2\": 0.01}}}",
                              "{\"momentum\": 0.8, \"center\": false}", "{}"};
        v = x;
        for (int i = 0; i < 3; i++) {
            nnp_layer *l;
            cr_assert_eq(nnp_layer_new(reg, kinds[i], cfgs[i], &l, &err), NNP_OK, "%s", err.msg);
            cr_assert_eq(nnp_model_add_layer(m, l, &li, &err), NNP_OK, "%s", err.msg);
            cr_assert_eq(nnp_model_apply(m, li, &v, 1, NULL, &v, &err), NNP_OK, "%s", err.msg);
        }
        int outs[2] = {v, x};
        if (shape == 1) /* fan-out: the BN output is also an output -> Functional */
            outs[1] = nnp_model_node_output(m, 1);
        cr_assert_eq(nnp_model_set_outputs(m, outs, shape + 1, &err), NNP_OK, "%s", err.msg);
        char *j = nnp_keras_to_json(m);
        cr_assert_not_null(strstr(j, shape ? "\"Functional\"" : "\"Sequential\""), "%s", j);
        free(j);
        assert_round_trip(m);
        nnp_model_free(m);
    }
}
