/* ONNX export through the library API: the round trip keeps configs,
 * weights, outputs, training mode, running-statistics outputs, shared
 * layers and metadata; bytes are deterministic; files are written
 * atomically. (tests/interop checks the files with onnx.checker and ONNX
 * Runtime.) */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nnplug/nnplug.h"
#include "nnplug/onnx.h"
#include "testutil.h"

static nnp_registry *reg;
static void setup(void) { reg = tu_registry(); }
static void teardown(void) { nnp_registry_free(reg); }

static int add_layer(nnp_model *m, const char *kind, const char *cfg)
{
    nnp_layer *l;
    int li;
    nnp_error err = {0};
    cr_assert_eq(nnp_layer_new(reg, kind, cfg, &l, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_model_add_layer(m, l, &li, &err), NNP_OK, "%s", err.msg);
    return li;
}

static int apply(nnp_model *m, int li, int v, const char *name)
{
    nnp_error err = {0};
    int out;
    cr_assert_eq(nnp_model_apply(m, li, &v, 1, name, &out, &err), NNP_OK, "%s", err.msg);
    return out;
}

/* Deterministic non-trivial weights, so a lost or swapped weight shows. */
static void scramble(nnp_model *m)
{
    for (int li = 0; li < nnp_model_n_layers(m); li++) {
        nnp_layer *l = nnp_model_layer(m, li);
        for (int w = 0; w < nnp_layer_n_weights(l); w++) {
            const nnp_weight *wt = nnp_layer_weight(l, w);
            float *d = wt->value->data;
            for (int64_t i = 0; i < nnp_tensor_numel(wt->value); i++)
                d[i] = 0.5f + 0.25f * (float)((li * 7 + w * 3 + i) % 5);
        }
    }
}

/* x[N,4,3,5] -> A (axis -1, a Transpose sandwich in ONNX) -> B (axis 1,
 * regularizers and constraints) -> y */
static nnp_model *two_layer_model(void)
{
    nnp_model *m;
    nnp_error err = {0};
    cr_assert_eq(nnp_model_new(reg, &m, &err), NNP_OK);
    nnp_shape s = {4, {-1, 4, 3, 5}};
    int x;
    cr_assert_eq(nnp_model_add_input(m, "x", &s, &x, &err), NNP_OK);
    int a = add_layer(m, "BatchNormalization",
                      "{\"name\": \"A\", \"axis\": -1, \"momentum\": 0.9, \"epsilon\": 0.01,"
                      " \"gamma_regularizer\": {\"class_name\": \"L2\", \"config\": {\"l2\": 0.5}},"
                      " \"beta_constraint\": {\"class_name\": \"NonNeg\", \"config\": {}},"
                      " \"gamma_initializer\": {\"class_name\": \"RandomNormal\","
                      " \"config\": {\"mean\": 1.0, \"stddev\": 0.1, \"seed\": 7}}}");
    int b = add_layer(m, "BatchNormalization",
                      "{\"name\": \"B\", \"axis\": 1, \"center\": false, \"trainable\": false,"
                      " \"beta_regularizer\": {\"class_name\": \"L1L2\","
                      " \"config\": {\"l1\": 0.01, \"l2\": 0.02}}}");
    int h = apply(m, a, x, "h");
    int y = apply(m, b, h, "y");
    cr_assert_eq(nnp_model_set_outputs(m, &y, 1, &err), NNP_OK);
    scramble(m);
    return m;
}

static void input_of(nnp_tensor *t, int64_t n)
{
    nnp_shape s = {4, {n, 4, 3, 5}};
    nnp_error err = {0};
    cr_assert_eq(nnp_tensor_alloc(t, NNP_F32, &s, &err), NNP_OK);
    for (int64_t i = 0; i < nnp_tensor_numel(t); i++)
        ((float *)t->data)[i] = (float)((i * 37) % 19) / 7.0f - 1.0f;
}

static nnp_model *round_trip(const nnp_model *m, int opset, uint8_t **bytes, size_t *len)
{
    nnp_error err = {0};
    cr_assert_eq(nnp_onnx_serialize(m, opset, bytes, len, &err), NNP_OK, "%s", err.msg);
    nnp_model *back;
    cr_assert_eq(nnp_onnx_load_buffer(reg, *bytes, *len, "exported", NULL, NULL, &back, &err),
                 NNP_OK, "%s", err.msg);
    return back;
}

static void assert_same_outputs(nnp_model *a, nnp_model *b, nnp_mode mode)
{
    nnp_tensor x;
    input_of(&x, 3);
    const nnp_tensor *in[1] = {&x};
    nnp_error err = {0};
    cr_assert_eq(nnp_model_forward(a, in, 1, mode, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_model_forward(b, in, 1, mode, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_model_n_outputs(a), nnp_model_n_outputs(b));
    for (int k = 0; k < nnp_model_n_outputs(a); k++) {
        const nnp_tensor *ya = nnp_model_output(a, k), *yb = nnp_model_output(b, k);
        cr_assert(nnp_shape_equal(&ya->shape, &yb->shape));
        cr_assert_eq(memcmp(ya->data, yb->data, ya->nbytes), 0, "output %d differs", k);
    }
    nnp_tensor_free(&x);
}

/* Every config key (regularizers, constraints, initializers, trainable,
 * axis), every weight and the outputs come back exactly, at every opset. */
Test(onnx_export, round_trip_every_opset, .init = setup, .fini = teardown)
{
    nnp_model *m = two_layer_model();
    for (int opset = NNP_ONNX_OPSET_MIN; opset <= NNP_ONNX_OPSET_MAX; opset++) {
        uint8_t *bytes;
        size_t len;
        nnp_model *back = round_trip(m, opset, &bytes, &len);
        cr_assert_eq(nnp_model_n_layers(back), 2, "opset %d", opset);
        for (int li = 0; li < 2; li++) {
            nnp_layer *la = nnp_model_layer(m, li), *lb = nnp_model_layer(back, li);
            char *ca = nnp_config_to_json(nnp_layer_config(la));
            char *cb = nnp_config_to_json(nnp_layer_config(lb));
            cr_assert_str_eq(ca, cb, "opset %d layer %d", opset, li);
            free(ca);
            free(cb);
            cr_assert_eq(nnp_layer_n_weights(la), nnp_layer_n_weights(lb));
            for (int w = 0; w < nnp_layer_n_weights(la); w++) {
                const nnp_tensor *ta = nnp_layer_weight(la, w)->value;
                const nnp_tensor *tb = nnp_layer_weight_by_name(lb, nnp_layer_weight(la, w)->name)
                                           ->value;
                cr_assert_eq(memcmp(ta->data, tb->data, ta->nbytes), 0, "opset %d weight %s",
                             opset, nnp_layer_weight(la, w)->name);
            }
        }
        const char *meta = nnp_model_get_meta(back, NNP_ONNX_META_IMPORT);
        char want[64];
        snprintf(want, sizeof want, "\"ir_version\":%d", nnp_onnx_ir_version(opset));
        cr_assert(meta && strstr(meta, want), "opset %d: %s", opset, meta);
        snprintf(want, sizeof want, "{\"ai.onnx\":%d}", opset);
        cr_assert(strstr(meta, want), "opset %d: %s", opset, meta);
        cr_assert_str_eq(nnp_model_value_name(back, nnp_model_input_value(back, 0)), "x");
        cr_assert_str_eq(nnp_model_value_name(back, nnp_model_output_value(back, 0)), "y");
        cr_assert_eq(nnp_model_value_shape(back, nnp_model_input_value(back, 0))->dims[0], -1);
        assert_same_outputs(m, back, NNP_MODE_INFER);
        assert_same_outputs(m, back, NNP_MODE_TRAIN);
        nnp_model_free(back);
        free(bytes);
    }
    nnp_model_free(m);
}

Test(onnx_export, ir_versions)
{
    int want[] = {4, 5, 6, 7, 7, 7, 8, 8, 8};
    for (int o = 9; o <= 17; o++)
        cr_assert_eq(nnp_onnx_ir_version(o), want[o - 9], "opset %d", o);
    cr_assert_eq(nnp_onnx_ir_version(8), 0);
    cr_assert_eq(nnp_onnx_ir_version(18), 0);
}

Test(onnx_export, opset_outside_range, .init = setup, .fini = teardown)
{
    nnp_model *m = two_layer_model();
    uint8_t *bytes;
    size_t len;
    nnp_error err = {0};
    cr_assert_eq(nnp_onnx_serialize(m, 8, &bytes, &len, &err), NNP_ERR_INVALID);
    cr_assert(strstr(err.msg, "opset 8"), "%s", err.msg);
    cr_assert_eq(nnp_onnx_serialize(m, 18, &bytes, &len, &err), NNP_ERR_INVALID);
    nnp_model_free(m);
}

/* Same model, same bytes; and import + export reproduces a file exactly. */
Test(onnx_export, deterministic_bytes, .init = setup, .fini = teardown)
{
    nnp_model *m = two_layer_model();
    uint8_t *a, *b, *c;
    size_t la, lb, lc;
    nnp_error err = {0};
    cr_assert_eq(nnp_onnx_serialize(m, 0, &a, &la, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_onnx_serialize(m, 0, &b, &lb, &err), NNP_OK, "%s", err.msg);
    cr_assert(la == lb && memcmp(a, b, la) == 0);
    nnp_model *back = round_trip(m, 0, &c, &lc);
    free(c);
    cr_assert_eq(nnp_onnx_serialize(back, 0, &c, &lc, &err), NNP_OK, "%s", err.msg);
    cr_assert(la == lc && memcmp(a, c, la) == 0, "re-export differs (%zu vs %zu bytes)", la, lc);
    free(a);
    free(b);
    free(c);
    nnp_model_free(back);
    nnp_model_free(m);
}

/* Node forced to training mode with running statistics as outputs. */
Test(onnx_export, training_mode_and_running_statistics, .init = setup, .fini = teardown)
{
    nnp_model *m;
    nnp_error err = {0};
    cr_assert_eq(nnp_model_new(reg, &m, &err), NNP_OK);
    nnp_shape s = {4, {-1, 4, 3, 5}};
    int x;
    cr_assert_eq(nnp_model_add_input(m, "x", &s, &x, &err), NNP_OK);
    int a = add_layer(m, "BatchNormalization", "{\"name\": \"bn\", \"axis\": 1}");
    int y = apply(m, a, x, "y");
    cr_assert_eq(nnp_model_set_node_mode(m, 0, NNP_MODE_TRAIN, &err), NNP_OK);
    int outs[3] = {y, -1, -1};
    cr_assert_eq(nnp_model_add_weight_output(m, a, "moving_mean", "rm", &outs[1], &err), NNP_OK);
    cr_assert_eq(nnp_model_add_weight_output(m, a, "moving_variance", "rv", &outs[2], &err),
                 NNP_OK);
    cr_assert_eq(nnp_model_set_outputs(m, outs, 3, &err), NNP_OK);
    scramble(m);
    int opsets[] = {9, 13, 14, 15, 17};
    for (size_t i = 0; i < sizeof opsets / sizeof opsets[0]; i++) {
        uint8_t *bytes;
        size_t len;
        nnp_model *back = round_trip(m, opsets[i], &bytes, &len);
        cr_assert_eq(nnp_model_node_mode(back, 0), NNP_MODE_TRAIN, "opset %d", opsets[i]);
        cr_assert_eq(nnp_model_n_outputs(back), 3);
        const char *w;
        cr_assert_eq(nnp_model_weight_output_layer(back, nnp_model_output_value(back, 2), &w), 0);
        cr_assert_str_eq(w, "moving_variance");
        cr_assert_str_eq(nnp_model_value_name(back, nnp_model_output_value(back, 1)), "rm");
        /* both start from the same moving statistics: same updates */
        assert_same_outputs(m, back, NNP_MODE_INFER);
        nnp_model_free(back);
        free(bytes);
        scramble(m);
    }
    nnp_model_free(m);
}

/* A layer applied twice: its weights are written once and the import
 * rebuilds one shared layer from the metadata. */
Test(onnx_export, shared_layer, .init = setup, .fini = teardown)
{
    nnp_model *m;
    nnp_error err = {0};
    cr_assert_eq(nnp_model_new(reg, &m, &err), NNP_OK);
    nnp_shape s = {2, {-1, 6}};
    int x;
    cr_assert_eq(nnp_model_add_input(m, "x", &s, &x, &err), NNP_OK);
    int a = add_layer(m, "BatchNormalization", "{\"name\": \"shared\"}");
    int h = apply(m, a, x, "h");
    int y = apply(m, a, h, "y");
    cr_assert_eq(nnp_model_set_outputs(m, &y, 1, &err), NNP_OK);
    scramble(m);
    uint8_t *bytes;
    size_t len;
    nnp_model *back = round_trip(m, 0, &bytes, &len);
    cr_assert_eq(nnp_model_n_layers(back), 1);
    cr_assert_eq(nnp_model_n_nodes(back), 2);
    cr_assert_eq(nnp_model_node_layer(back, 1), 0);
    /* four weights of 6 floats, written once: well under two copies */
    cr_assert_lt(len, 2000u, "%zu bytes", len);
    nnp_model_free(back);
    free(bytes);
    nnp_model_free(m);
}

/* One node reading a tensor twice (Add(x, x)) keeps both inputs through
 * the metadata's layer groups: the re-import is x + x, not a one-input Add. */
Test(onnx_export, node_reading_one_tensor_twice, .init = setup, .fini = teardown)
{
    nnp_model *m;
    nnp_error err = {0};
    cr_assert_eq(nnp_model_new(reg, &m, &err), NNP_OK);
    nnp_shape s = {4, {-1, 4, 3, 5}};
    int x, y, li = add_layer(m, "Add", "{\"name\": \"twice\"}");
    cr_assert_eq(nnp_model_add_input(m, "x", &s, &x, &err), NNP_OK);
    int xx[2] = {x, x};
    cr_assert_eq(nnp_model_apply(m, li, xx, 2, "y", &y, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_model_set_outputs(m, &y, 1, &err), NNP_OK);
    uint8_t *bytes;
    size_t len;
    nnp_model *back = round_trip(m, 0, &bytes, &len);
    nnp_tensor t;
    input_of(&t, 2);
    const nnp_tensor *in[1] = {&t};
    cr_assert_eq(nnp_model_forward(back, in, 1, NNP_MODE_INFER, &err), NNP_OK, "%s", err.msg);
    const float *out = nnp_model_output(back, 0)->data, *xv = t.data;
    for (int64_t i = 0; i < nnp_tensor_numel(&t); i++)
        cr_assert_eq(out[i], xv[i] + xv[i], "element %lld", (long long)i);
    nnp_tensor_free(&t);
    nnp_model_free(back);
    free(bytes);
    nnp_model_free(m);
}

Test(onnx_export, metadata_kept, .init = setup, .fini = teardown)
{
    nnp_model *m = two_layer_model();
    nnp_error err = {0};
    cr_assert_eq(nnp_model_set_meta(m, "author", "test suite", &err), NNP_OK);
    uint8_t *bytes;
    size_t len;
    nnp_model *back = round_trip(m, 0, &bytes, &len);
    cr_assert_str_eq(nnp_model_get_meta(back, "author"), "test suite");
    nnp_model_free(back);
    free(bytes);
    nnp_model_free(m);
}

/* float16 / bfloat16 / float64 initializers come back in their own type. */
static void dtype_case(const char *file, const char *dtype, int opset, int kept)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/onnx-bad/%s", getenv("NNP_SOURCE_DIR"), file);
    nnp_model *m;
    nnp_error err = {0};
    cr_assert_eq(nnp_onnx_load(reg, path, NULL, &m, &err), NNP_OK, "%s", err.msg);
    const char *dt = nnp_model_get_meta(m, NNP_ONNX_META_DTYPES);
    char want[200];
    snprintf(want, sizeof want, "\"gamma\":\"%s\"", dtype);
    cr_assert(dt && strstr(dt, want), "%s: %s", file, dt ? dt : "(none)");
    uint8_t *bytes;
    size_t len;
    nnp_model *back = round_trip(m, opset, &bytes, &len);
    dt = nnp_model_get_meta(back, NNP_ONNX_META_DTYPES);
    if (kept)
        cr_assert(dt && strstr(dt, want), "%s at opset %d: %s", file, opset, dt ? dt : "(none)");
    else
        cr_assert_null(dt, "%s at opset %d: %s", file, opset, dt);
    cr_assert_eq(memcmp(nnp_layer_weight(nnp_model_layer(m, 0), 0)->value->data,
                        nnp_layer_weight(nnp_model_layer(back, 0), 0)->value->data, 12), 0);
    nnp_model_free(back);
    free(bytes);
    nnp_model_free(m);
}

Test(onnx_export, float16_remembered, .init = setup, .fini = teardown)
{
    dtype_case("ok_float16.onnx", "float16", 15, 1);
    dtype_case("ok_float16.onnx", "float16", 9, 1);
}

Test(onnx_export, float64_remembered, .init = setup, .fini = teardown)
{
    dtype_case("ok_float64.onnx", "float64", 17, 1);
}

Test(onnx_export, bfloat16_needs_opset_13, .init = setup, .fini = teardown)
{
    dtype_case("ok_bfloat16.onnx", "bfloat16", 13, 1);
    dtype_case("ok_bfloat16.onnx", "bfloat16", 12, 0);
}

Test(onnx_export, layer_without_onnx_form, .init = setup, .fini = teardown)
{
    nnp_model *m;
    nnp_error err = {0};
    cr_assert_eq(nnp_model_new(reg, &m, &err), NNP_OK);
    nnp_shape s = {2, {-1, 7}};
    int x;
    cr_assert_eq(nnp_model_add_input(m, "x", &s, &x, &err), NNP_OK);
    int a = add_layer(m, "ExampleScale", "{\"name\": \"scaler\", \"factor\": 2.0}");
    int y = apply(m, a, x, "y");
    cr_assert_eq(nnp_model_set_outputs(m, &y, 1, &err), NNP_OK);
    uint8_t *bytes;
    size_t len;
    cr_assert_eq(nnp_onnx_serialize(m, 0, &bytes, &len, &err), NNP_ERR_UNSUPPORTED);
    cr_assert(strstr(err.msg, "'scaler'") && strstr(err.msg, "ExampleScale"), "%s", err.msg);
    nnp_model_free(m);
}

/* A wrapper writes ops with no kind of their own (TimeDistributed: Reshape,
 * BatchNormalization, Reshape): the metadata brings the one layer back. */
Test(onnx_export, wrapper_round_trip, .init = setup, .fini = teardown)
{
    nnp_model *m;
    nnp_error err = {0};
    cr_assert_eq(nnp_model_new(reg, &m, &err), NNP_OK);
    nnp_shape s = {4, {-1, 4, 3, 5}};
    int x;
    cr_assert_eq(nnp_model_add_input(m, "x", &s, &x, &err), NNP_OK);
    int a = add_layer(m, "TimeDistributed",
                      "{\"name\": \"td\", \"layer\": {\"class_name\": \"BatchNormalization\","
                      " \"config\": {\"name\": \"inner\", \"epsilon\": 0.01}}}");
    int y = apply(m, a, x, "y");
    cr_assert_eq(nnp_model_set_outputs(m, &y, 1, &err), NNP_OK);
    scramble(m);
    for (int opset = NNP_ONNX_OPSET_MIN; opset <= NNP_ONNX_OPSET_MAX; opset += 4) {
        uint8_t *bytes;
        size_t len;
        nnp_model *back = round_trip(m, opset, &bytes, &len);
        cr_assert_eq(nnp_model_n_layers(back), 1);
        cr_assert_str_eq(nnp_layer_kind_of(nnp_model_layer(back, 0))->name, "TimeDistributed");
        char *ca = nnp_config_to_json(nnp_layer_config(nnp_model_layer(m, 0)));
        char *cb = nnp_config_to_json(nnp_layer_config(nnp_model_layer(back, 0)));
        cr_assert_str_eq(ca, cb);
        free(ca);
        free(cb);
        assert_same_outputs(m, back, NNP_MODE_INFER);
        nnp_model_free(back);
        free(bytes);
        scramble(m);
    }
    nnp_model_free(m);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* A failed save leaves the old file as it was and no temporary behind. */
Test(onnx_export, atomic_save, .init = setup, .fini = teardown)
{
    char dir[] = "/tmp/nnp_onnx_save_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    nnp_model *m = two_layer_model();
    nnp_error err = {0};
    cr_assert_eq(nnp_onnx_save(m, path, 0, &err), NNP_OK, "%s", err.msg);
    char *before;
    size_t lb;
    cr_assert_eq(nnp_read_file(path, &before, &lb, &err), NNP_OK);
    /* a failing export: the file is untouched */
    cr_assert_eq(nnp_onnx_save(m, path, 99, &err), NNP_ERR_INVALID);
    cr_assert(strstr(err.msg, path), "%s", err.msg);
    char *after;
    size_t la;
    cr_assert_eq(nnp_read_file(path, &after, &la, &err), NNP_OK);
    cr_assert(la == lb && memcmp(before, after, la) == 0);
    cr_assert_eq(count_entries(dir), 1);
    /* a failing write (the target is a directory): no temporary remains */
    char sub[300];
    snprintf(sub, sizeof sub, "%s/sub.onnx", dir);
    cr_assert_eq(mkdir(sub, 0755), 0);
    cr_assert_neq(nnp_onnx_save(m, sub, 0, &err), NNP_OK);
    cr_assert_eq(count_entries(dir), 2, "a temporary file was left in %s", dir);
    /* into a missing folder */
    char missing[300];
    snprintf(missing, sizeof missing, "%s/nope/m.onnx", dir);
    cr_assert_eq(nnp_onnx_save(m, missing, 0, &err), NNP_ERR_IO, "%s", err.msg);
    rmdir(sub);
    unlink(path);
    rmdir(dir);
    free(before);
    free(after);
    nnp_model_free(m);
}
