/*
 * The BatchNormalization plugin through the host's layer API: schema,
 * config errors, weights, shared instances, and the keras-tfjs traces
 * (inference and training forwards, moving statistics, and a manual
 * MSE + SGD loop reproducing weights and losses).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#include "common/testutil.h"

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

static nnp_layer *new_layer(nnp_registry *reg, const char *json)
{
    nnp_layer *l = NULL;
    nnp_error err = {0};
    nnp_status st = nnp_layer_new(reg, "BatchNormalization", json, &l, &err);
    cr_assert_eq(st, NNP_OK, "nnp_layer_new(%s): %s", json ? json : "NULL", err.msg);
    return l;
}

static nnp_shape shape_of(int rank, const int64_t *dims)
{
    nnp_shape s = {0};
    s.rank = rank;
    for (int i = 0; i < rank; i++)
        s.dims[i] = dims[i];
    return s;
}

static void build(nnp_layer *l, nnp_shape in)
{
    nnp_shape out;
    nnp_error err = {0};
    cr_assert_eq(nnp_layer_build(l, 1, &in, &out, &err), NNP_OK, "build: %s", err.msg);
    cr_assert(nnp_shape_equal(&in, &out), "output shape differs from the input shape");
}

static void alloc(nnp_tensor *t, nnp_shape s)
{
    nnp_error err = {0};
    cr_assert_eq(nnp_tensor_alloc(t, NNP_F32, &s, &err), NNP_OK, "%s", err.msg);
}

static void forward(nnp_layer *l, const nnp_tensor *x, nnp_tensor *y, nnp_mode mode)
{
    nnp_error err = {0};
    const nnp_tensor *in[1] = {x};
    cr_assert_eq(nnp_layer_forward(l, in, 1, y, mode, &err), NNP_OK, "forward: %s", err.msg);
}

static void backward(nnp_layer *l, const nnp_tensor *x, const nnp_tensor *y,
                     const nnp_tensor *dy, nnp_tensor *dx, nnp_mode mode)
{
    nnp_error err = {0};
    const nnp_tensor *in[1] = {x};
    nnp_tensor *gin[1] = {dx};
    cr_assert_eq(nnp_layer_backward(l, in, 1, y, dy, gin, mode, &err), NNP_OK, "backward: %s",
                 err.msg);
}

static float *wdata(nnp_layer *l, const char *name)
{
    const nnp_weight *w = nnp_layer_weight_by_name(l, name);
    cr_assert(w, "no weight %s", name);
    return w->value->data;
}

static float *gdata(nnp_layer *l, const char *name)
{
    const nnp_weight *w = nnp_layer_weight_by_name(l, name);
    cr_assert(w && w->grad, "no gradient of %s", name);
    return w->grad->data;
}

static void fill(nnp_tensor *t, uint64_t seed, float offset, float scale)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    float *p = t->data;
    for (int64_t i = 0; i < nnp_tensor_numel(t); i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        p[i] = offset + scale * (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
    }
}

/* ------------------------------------------------------------------ */
/* schema and config                                                   */
/* ------------------------------------------------------------------ */

Test(schema, keras_parameters_and_defaults)
{
    nnp_registry *reg = tu_registry();
    const nnp_kind *k = nnp_registry_find(reg, "BatchNormalization");
    cr_assert(k, "BatchNormalization is not registered");
    static const struct {
        const char *name;
        nnp_param_type type;
        const char *def;
        uint32_t flags;
    } want[] = {
        {"axis", NNP_PARAM_INT, "-1", 0},
        {"momentum", NNP_PARAM_FLOAT, "0.99", 0},
        {"epsilon", NNP_PARAM_FLOAT, "0.001", NNP_PARAM_HAS_MIN | NNP_PARAM_MIN_EXCLUSIVE},
        {"center", NNP_PARAM_BOOL, "true", 0},
        {"scale", NNP_PARAM_BOOL, "true", 0},
        {"beta_initializer", NNP_PARAM_INITIALIZER, "{\"class_name\":\"Zeros\",\"config\":{}}", 0},
        {"gamma_initializer", NNP_PARAM_INITIALIZER, "{\"class_name\":\"Ones\",\"config\":{}}", 0},
        {"moving_mean_initializer", NNP_PARAM_INITIALIZER,
         "{\"class_name\":\"Zeros\",\"config\":{}}", 0},
        {"moving_variance_initializer", NNP_PARAM_INITIALIZER,
         "{\"class_name\":\"Ones\",\"config\":{}}", 0},
        {"beta_regularizer", NNP_PARAM_REGULARIZER, "null", NNP_PARAM_NULLABLE},
        {"gamma_regularizer", NNP_PARAM_REGULARIZER, "null", NNP_PARAM_NULLABLE},
        {"beta_constraint", NNP_PARAM_CONSTRAINT, "null", NNP_PARAM_NULLABLE},
        {"gamma_constraint", NNP_PARAM_CONSTRAINT, "null", NNP_PARAM_NULLABLE},
        /* Keras 3 */
        {"synchronized", NNP_PARAM_BOOL, "false", 0},
        /* tf.keras 2.x, accepted at their defaults only */
        {"renorm", NNP_PARAM_BOOL, "false", NNP_PARAM_ONLY_DEFAULT},
        {"renorm_clipping", NNP_PARAM_STRING, "null", NNP_PARAM_NULLABLE | NNP_PARAM_ONLY_DEFAULT},
        {"renorm_momentum", NNP_PARAM_FLOAT, "0.99", NNP_PARAM_ONLY_DEFAULT},
        {"virtual_batch_size", NNP_PARAM_INT, "null",
         NNP_PARAM_NULLABLE | NNP_PARAM_ONLY_DEFAULT},
        {"fused", NNP_PARAM_BOOL, "null", NNP_PARAM_NULLABLE | NNP_PARAM_ONLY_DEFAULT},
    };
    int n = (int)(sizeof want / sizeof want[0]);
    cr_assert_eq(k->n_params, n);
    for (int i = 0; i < n; i++) {
        const nnp_param_def *p = &k->params[i];
        cr_assert_str_eq(p->name, want[i].name);
        cr_assert_eq(p->type, want[i].type, "%s: type", p->name);
        cr_assert_str_eq(p->default_json, want[i].def, "%s: default", p->name);
        cr_assert_eq(p->flags, want[i].flags, "%s: flags", p->name);
        cr_assert(p->doc && p->doc[0], "%s: no doc", p->name);
    }
    cr_assert_eq(k->params[2].min, 0.0);
    cr_assert_str_eq(k->onnx.op_type, "BatchNormalization");
    cr_assert_str_eq(k->onnx.domain, "");
    cr_assert(k->onnx.opset_min == 1 && k->onnx.opset_max == 17);
    cr_assert_eq(nnp_registry_find_onnx(reg, "", "BatchNormalization", 7), k);
    cr_assert_eq(nnp_registry_find_onnx(reg, "ai.onnx", "BatchNormalization", 17), k);
    cr_assert(k->n_inputs_min == 1 && k->n_inputs_max == 1);

    nnp_layer *l = new_layer(reg, NULL);
    const nnp_config *c = nnp_layer_config(l);
    cr_assert_eq(nnp_config_int(c, "axis"), -1);
    cr_assert_float_eq(nnp_config_float(c, "momentum"), 0.99, 1e-12);
    cr_assert_float_eq(nnp_config_float(c, "epsilon"), 1e-3, 1e-15);
    cr_assert(nnp_config_bool(c, "center") && nnp_config_bool(c, "scale"));
    cr_assert_null(nnp_config_regularizer(c, "gamma_regularizer"));
    cr_assert_null(nnp_config_constraint(c, "beta_constraint"));
    nnp_layer_free(l);
    nnp_registry_free(reg);
}

Test(config, bad_epsilon_is_refused)
{
    nnp_registry *reg = tu_registry();
    const char *bad[] = {"{\"epsilon\": 0}", "{\"epsilon\": -1e-3}"};
    for (size_t i = 0; i < 2; i++) {
        nnp_layer *l = NULL;
        nnp_error err = {0};
        cr_assert_neq(nnp_layer_new(reg, "BatchNormalization", bad[i], &l, &err), NNP_OK, "%s",
                      bad[i]);
        cr_assert_null(l);
        cr_assert(strstr(err.msg, "epsilon"), "message does not name epsilon: %s", err.msg);
    }
    nnp_registry_free(reg);
}

static void expect_build_error(nnp_registry *reg, const char *json, nnp_shape in,
                               const char *const *words)
{
    nnp_layer *l = new_layer(reg, json);
    nnp_shape out;
    nnp_error err = {0};
    cr_assert_neq(nnp_layer_build(l, 1, &in, &out, &err), NNP_OK, "%s built", json);
    for (; *words; words++)
        cr_assert(strstr(err.msg, *words), "message lacks '%s': %s", *words, err.msg);
    nnp_layer_free(l);
}

Test(config, axis_out_of_range_at_build)
{
    nnp_registry *reg = tu_registry();
    int64_t d4[4] = {-1, 3, 5, 5}, d1[1] = {4}, d6[6] = {2, 2, 2, 2, 2, 2}, d2[2] = {-1, -1};
    expect_build_error(reg, "{\"axis\": 4}", shape_of(4, d4),
                       (const char *[]){"axis 4", "rank 4", NULL});
    expect_build_error(reg, "{\"axis\": -5}", shape_of(4, d4),
                       (const char *[]){"axis -5", "rank 4", NULL});
    expect_build_error(reg, "{\"axis\": 2}", shape_of(2, d2),
                       (const char *[]){"axis 2", "rank 2", NULL});
    expect_build_error(reg, NULL, shape_of(1, d1), (const char *[]){"rank 1", NULL});
    expect_build_error(reg, NULL, shape_of(6, d6), (const char *[]){"rank 6", NULL});
    /* the channel dimension must be known */
    expect_build_error(reg, NULL, shape_of(2, d2), (const char *[]){"known", NULL});
    nnp_registry_free(reg);
}

/* ------------------------------------------------------------------ */
/* weights                                                             */
/* ------------------------------------------------------------------ */

static void expect_weights(nnp_registry *reg, const char *json, const char *const *names)
{
    nnp_layer *l = new_layer(reg, json);
    int64_t d[2] = {-1, 7};
    build(l, shape_of(2, d));
    int n = 0;
    while (names[n])
        n++;
    cr_assert_eq(nnp_layer_n_weights(l), n, "%s: %d weights", json, nnp_layer_n_weights(l));
    for (int i = 0; i < n; i++) {
        const nnp_weight *w = nnp_layer_weight(l, i);
        cr_assert_str_eq(w->name, names[i]);
        cr_assert(w->value && w->value->shape.rank == 1 && w->value->shape.dims[0] == 7);
        int trainable = strcmp(names[i], "gamma") == 0 || strcmp(names[i], "beta") == 0;
        cr_assert_eq(!!(w->flags & NNP_WEIGHT_TRAINABLE), trainable, "%s flags", names[i]);
        cr_assert_eq(w->grad != NULL, trainable, "%s grad", names[i]);
    }
    nnp_layer_free(l);
}

Test(weights, keras_order_and_presence)
{
    nnp_registry *reg = tu_registry();
    expect_weights(reg, "{}", (const char *[]){"gamma", "beta", "moving_mean", "moving_variance", NULL});
    expect_weights(reg, "{\"center\": false}",
                   (const char *[]){"gamma", "moving_mean", "moving_variance", NULL});
    expect_weights(reg, "{\"scale\": false}",
                   (const char *[]){"beta", "moving_mean", "moving_variance", NULL});
    expect_weights(reg, "{\"center\": false, \"scale\": false}",
                   (const char *[]){"moving_mean", "moving_variance", NULL});
    nnp_registry_free(reg);
}

Test(weights, initializers_and_rebuild)
{
    nnp_registry *reg = tu_registry();
    nnp_layer *l = new_layer(reg, "{\"gamma_initializer\": {\"class_name\": \"Constant\", "
                                  "\"config\": {\"value\": 2.5}}, \"moving_variance_initializer\": "
                                  "\"zeros\", \"beta_initializer\": \"ones\"}");
    int64_t d[4] = {-1, 3, 4, 4};
    build(l, shape_of(4, d)); /* axis -1: 4 channels */
    for (int c = 0; c < 4; c++) {
        cr_assert_eq(wdata(l, "gamma")[c], 2.5f);
        cr_assert_eq(wdata(l, "beta")[c], 1.0f);
        cr_assert_eq(wdata(l, "moving_mean")[c], 0.0f);
        cr_assert_eq(wdata(l, "moving_variance")[c], 0.0f);
    }
    /* same channel count: weights kept; another: re-created */
    wdata(l, "gamma")[0] = 7.0f;
    int64_t d2[4] = {-1, 9, 9, 4};
    build(l, shape_of(4, d2));
    cr_assert_eq(wdata(l, "gamma")[0], 7.0f, "weights were not kept across a rebuild");
    int64_t d3[2] = {-1, 6};
    build(l, shape_of(2, d3));
    cr_assert_eq(nnp_layer_weight(l, 0)->value->shape.dims[0], 6);
    cr_assert_eq(wdata(l, "gamma")[0], 2.5f);
    nnp_layer_free(l);
    nnp_registry_free(reg);
}

/* ------------------------------------------------------------------ */
/* run-time checks                                                     */
/* ------------------------------------------------------------------ */

Test(run, wrong_input_shape_is_an_error)
{
    nnp_registry *reg = tu_registry();
    nnp_layer *l = new_layer(reg, "{\"axis\": 1}");
    int64_t d[4] = {-1, 3, 5, 5}, bad[4] = {2, 4, 5, 5};
    build(l, shape_of(4, d));
    nnp_tensor x, y;
    alloc(&x, shape_of(4, bad));
    alloc(&y, shape_of(4, bad));
    nnp_error err = {0};
    const nnp_tensor *in[1] = {&x};
    cr_assert_eq(nnp_layer_forward(l, in, 1, &y, NNP_MODE_TRAIN, &err), NNP_ERR_SHAPE);
    cr_assert(strstr(err.msg, "channels"), "%s", err.msg);
    nnp_tensor_free(&x);
    nnp_tensor_free(&y);
    nnp_layer_free(l);
    nnp_registry_free(reg);
}

Test(run, empty_batch_keeps_moving_statistics)
{
    nnp_registry *reg = tu_registry();
    nnp_layer *l = new_layer(reg, NULL);
    int64_t d[2] = {-1, 3}, z[2] = {0, 3};
    build(l, shape_of(2, d));
    nnp_tensor x, y, dy, dx;
    alloc(&x, shape_of(2, z)), alloc(&y, shape_of(2, z)), alloc(&dy, shape_of(2, z));
    alloc(&dx, shape_of(2, z));
    forward(l, &x, &y, NNP_MODE_TRAIN);
    backward(l, &x, &y, &dy, &dx, NNP_MODE_TRAIN);
    for (int c = 0; c < 3; c++) {
        cr_assert_eq(wdata(l, "moving_mean")[c], 0.0f);
        cr_assert_eq(wdata(l, "moving_variance")[c], 1.0f);
        cr_assert_eq(gdata(l, "gamma")[c], 0.0f);
    }
    nnp_tensor_free(&x), nnp_tensor_free(&y), nnp_tensor_free(&dy), nnp_tensor_free(&dx);
    nnp_layer_free(l);
    nnp_registry_free(reg);
}

Test(run, zero_channels)
{
    nnp_registry *reg = tu_registry();
    nnp_layer *l = new_layer(reg, "{\"axis\": 1}");
    int64_t d[3] = {-1, 0, 5}, z[3] = {3, 0, 5};
    build(l, shape_of(3, d));
    cr_assert_eq(nnp_tensor_numel(nnp_layer_weight(l, 0)->value), 0);
    nnp_tensor x, y, dy, dx;
    alloc(&x, shape_of(3, z)), alloc(&y, shape_of(3, z)), alloc(&dy, shape_of(3, z));
    alloc(&dx, shape_of(3, z));
    forward(l, &x, &y, NNP_MODE_TRAIN);
    forward(l, &x, &y, NNP_MODE_INFER);
    backward(l, &x, &y, &dy, &dx, NNP_MODE_TRAIN);
    nnp_tensor_free(&x), nnp_tensor_free(&y), nnp_tensor_free(&dy), nnp_tensor_free(&dx);
    nnp_layer_free(l);
    nnp_registry_free(reg);
}

Test(run, not_trainable_runs_inference)
{
    nnp_registry *reg = tu_registry();
    nnp_layer *a = new_layer(reg, "{\"trainable\": false}"), *b = new_layer(reg, NULL);
    int64_t d[2] = {16, 5};
    build(a, shape_of(2, d));
    build(b, shape_of(2, d));
    nnp_tensor x, ya, yb;
    alloc(&x, shape_of(2, d)), alloc(&ya, shape_of(2, d)), alloc(&yb, shape_of(2, d));
    fill(&x, 3, 1.0f, 4.0f);
    forward(a, &x, &ya, NNP_MODE_TRAIN);
    forward(b, &x, &yb, NNP_MODE_INFER);
    cr_assert(memcmp(ya.data, yb.data, ya.nbytes) == 0);
    for (int c = 0; c < 5; c++)
        cr_assert_eq(wdata(a, "moving_variance")[c], 1.0f, "moving statistics were updated");
    nnp_tensor_free(&x), nnp_tensor_free(&ya), nnp_tensor_free(&yb);
    nnp_layer_free(a), nnp_layer_free(b);
    nnp_registry_free(reg);
}

/* ------------------------------------------------------------------ */
/* one instance applied to several inputs                              */
/* ------------------------------------------------------------------ */

#define NX 6

Test(shared, several_inputs_backward_in_reverse)
{
    nnp_registry *reg = tu_registry();
    const char *cfg = "{\"axis\": 1, \"gamma_initializer\": {\"class_name\": \"Constant\", "
                      "\"config\": {\"value\": 1.5}}, \"beta_initializer\": \"ones\"}";
    nnp_layer *shared = new_layer(reg, cfg);
    int64_t d[4] = {4, 3, 6, 6}, dd[4] = {-1, 3, 6, 6};
    nnp_shape s = shape_of(4, d);
    build(shared, shape_of(4, dd));
    nnp_tensor x[NX], y[NX], dy[NX], dx[NX];
    for (int i = 0; i < NX; i++) {
        alloc(&x[i], s), alloc(&y[i], s), alloc(&dy[i], s), alloc(&dx[i], s);
        fill(&x[i], 10 + (uint64_t)i, (float)i, 1.0f + (float)i);
        fill(&dy[i], 20 + (uint64_t)i, 0.0f, 1.0f);
    }
    /* forwards in order, backwards in reverse: more inputs than saved
     * statistics, so the first ones are recomputed in backward */
    nnp_layer_zero_grad(shared);
    for (int i = 0; i < NX; i++)
        forward(shared, &x[i], &y[i], NNP_MODE_TRAIN);
    for (int i = NX - 1; i >= 0; i--)
        backward(shared, &x[i], &y[i], &dy[i], &dx[i], NNP_MODE_TRAIN);

    /* each input alone on a fresh layer must give the same y and dx */
    float dg[3] = {0}, db[3] = {0};
    nnp_tensor yr, dxr;
    alloc(&yr, s), alloc(&dxr, s);
    for (int i = NX - 1; i >= 0; i--) {
        nnp_layer *one = new_layer(reg, cfg);
        build(one, shape_of(4, dd));
        nnp_layer_zero_grad(one);
        forward(one, &x[i], &yr, NNP_MODE_TRAIN);
        backward(one, &x[i], &yr, &dy[i], &dxr, NNP_MODE_TRAIN);
        cr_assert(memcmp(yr.data, y[i].data, yr.nbytes) == 0, "y of input %d differs", i);
        cr_assert(memcmp(dxr.data, dx[i].data, dxr.nbytes) == 0, "dx of input %d differs", i);
        for (int c = 0; c < 3; c++) {
            dg[c] += gdata(one, "gamma")[c];
            db[c] += gdata(one, "beta")[c];
        }
        nnp_layer_free(one);
    }
    /* weight gradients accumulate over the applications (same order) */
    for (int c = 0; c < 3; c++) {
        cr_assert_eq(gdata(shared, "gamma")[c], dg[c]);
        cr_assert_eq(gdata(shared, "beta")[c], db[c]);
    }
    /* one moving update per training forward */
    double mm = 0.0;
    nnp_layer *one = new_layer(reg, cfg);
    build(one, shape_of(4, dd));
    for (int i = 0; i < NX; i++)
        forward(one, &x[i], &yr, NNP_MODE_TRAIN);
    for (int c = 0; c < 3; c++) {
        cr_assert_eq(wdata(shared, "moving_mean")[c], wdata(one, "moving_mean")[c]);
        mm += wdata(shared, "moving_mean")[c];
    }
    cr_assert(mm > 0.0, "moving mean did not move");
    nnp_layer_free(one);

    /* a backward without its training forward recomputes the statistics */
    nnp_layer *fresh = new_layer(reg, cfg);
    build(fresh, shape_of(4, dd));
    backward(fresh, &x[2], &y[2], &dy[2], &dxr, NNP_MODE_TRAIN);
    cr_assert(memcmp(dxr.data, dx[2].data, dxr.nbytes) == 0, "recomputed statistics differ");
    nnp_layer_free(fresh);

    for (int i = 0; i < NX; i++)
        nnp_tensor_free(&x[i]), nnp_tensor_free(&y[i]), nnp_tensor_free(&dy[i]),
            nnp_tensor_free(&dx[i]);
    nnp_tensor_free(&yr), nnp_tensor_free(&dxr);
    nnp_layer_free(shared);
    nnp_registry_free(reg);
}

Test(shared, backward_uses_the_saved_statistics)
{
    /* The training backward reads the statistics its forward saved, not a
     * second pass over x (bwd traffic 5S): changing x in place between the
     * two calls shows which statistics were used. */
    nnp_registry *reg = tu_registry();
    int64_t d[2] = {32, 4};
    nnp_shape s = shape_of(2, d);
    nnp_layer *a = new_layer(reg, NULL), *b = new_layer(reg, NULL);
    build(a, s), build(b, s);
    nnp_tensor x, x2, y, dy, dxa, dxb, dxc;
    alloc(&x, s), alloc(&x2, s), alloc(&y, s), alloc(&dy, s);
    alloc(&dxa, s), alloc(&dxb, s), alloc(&dxc, s);
    fill(&x, 5, 0.0f, 2.0f);
    fill(&dy, 6, 0.0f, 1.0f);
    forward(a, &x, &y, NNP_MODE_TRAIN);
    memcpy(x2.data, x.data, x.nbytes);
    for (int64_t i = 0; i < 32 * 4; i++)
        ((float *)x.data)[i] *= 3.0f;
    backward(a, &x, &y, &dy, &dxa, NNP_MODE_TRAIN);   /* statistics of x2, data of x */
    backward(b, &x, &y, &dy, &dxb, NNP_MODE_TRAIN);   /* never forwarded: recomputed */
    cr_assert(memcmp(dxa.data, dxb.data, dxa.nbytes) != 0, "the saved statistics were not used");
    /* and they are exactly the forward's: same as a forward on the original data */
    forward(b, &x2, &y, NNP_MODE_TRAIN);
    backward(b, &x2, &y, &dy, &dxc, NNP_MODE_TRAIN);
    backward(a, &x2, &y, &dy, &dxb, NNP_MODE_TRAIN);  /* key x2 is b's, a recomputes */
    cr_assert(memcmp(dxb.data, dxc.data, dxb.nbytes) == 0);
    nnp_tensor *all[] = {&x, &x2, &y, &dy, &dxa, &dxb, &dxc};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        nnp_tensor_free(all[i]);
    nnp_layer_free(a), nnp_layer_free(b);
    nnp_registry_free(reg);
}

/* ------------------------------------------------------------------ */
/* keras-tfjs traces                                                   */
/* ------------------------------------------------------------------ */

typedef struct kcase {
    const char *id;
    json_t *m;
} kcase;

static void tol(json_t *m, const char *out, double *rtol, double *atol)
{
    json_t *o = json_object_get(json_object_get(m, "outputs"), out);
    cr_assert(o, "no output %s", out);
    *rtol = json_number_value(json_object_get(o, "rtol"));
    *atol = json_number_value(json_object_get(o, "atol"));
}

static void expect(const kcase *k, const char *out, const float *got, int64_t n)
{
    double rtol, atol;
    int64_t ne;
    tol(k->m, out, &rtol, &atol);
    double *e = tu_load_f64(tu_data_path("keras-tfjs/%s/expected/%s.npy", k->id, out), NULL, &ne);
    cr_assert_eq(ne, n, "%s: %lld values, expected %lld", out, (long long)n, (long long)ne);
    char what[128];
    snprintf(what, sizeof what, "%s %s", k->id, out);
    tu_assert_close_f32(what, got, e, n, rtol, atol);
    free(e);
}

static void expect_d(const kcase *k, const char *out, const double *got, int64_t n)
{
    float *f = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        f[i] = (float)got[i];
    expect(k, out, f, n);
    free(f);
}

static void set_initial(const kcase *k, nnp_layer *l)
{
    const char *names[] = {"gamma", "beta", "moving_mean", "moving_variance"};
    for (int i = 0; i < 4; i++) {
        const nnp_weight *w = nnp_layer_weight_by_name(l, names[i]);
        char rel[256];
        snprintf(rel, sizeof rel, "keras-tfjs/%s/initial/%s.npy", k->id, names[i]);
        FILE *f = fopen(tu_data_path("%s", rel), "rb");
        if (!f) {
            cr_assert_null(w, "%s: weight %s exists but has no initial value", k->id, names[i]);
            continue;
        }
        fclose(f);
        cr_assert(w, "%s: no weight %s", k->id, names[i]);
        int64_t n;
        double *v = tu_load_f64(tu_data_path("%s", rel), NULL, &n);
        cr_assert_eq(n, nnp_tensor_numel(w->value));
        float *p = w->value->data;
        /* the initializers of the config must already give these values */
        for (int64_t j = 0; j < n; j++)
            cr_assert_eq(p[j], (float)v[j], "%s: initial %s[%lld]", k->id, names[i], (long long)j);
        free(v);
    }
}

static void load_f32(const kcase *k, const char *file, nnp_tensor *t)
{
    tu_load_f32(tu_data_path("keras-tfjs/%s/inputs/%s.npy", k->id, file), t);
}

static nnp_layer *case_layer(nnp_registry *reg, const kcase *k, const nnp_tensor *x)
{
    char *text;
    size_t len;
    nnp_error err = {0};
    cr_assert_eq(nnp_read_file(tu_data_path("keras-tfjs/%s/layer_config.json", k->id), &text, &len,
                               &err),
                 NNP_OK, "%s", err.msg);
    nnp_layer *l = new_layer(reg, text);
    free(text);
    nnp_shape s = x->shape;
    s.dims[0] = -1; /* built for an unknown batch, as Keras does */
    build(l, s);
    set_initial(k, l);
    return l;
}

/* The sizes of every weight the case's expected files name. */
static int64_t n_channels(nnp_layer *l) { return nnp_tensor_numel(nnp_layer_weight_by_name(l, "moving_mean")->value); }

static void run_keras_case(const char *id)
{
    nnp_registry *reg = tu_registry();
    json_error_t je;
    kcase k = {id, json_load_file(tu_data_path("keras-tfjs/%s/case.json", id), 0, &je)};
    cr_assert(k.m, "%s: %s", id, je.text);
    nnp_tensor X, Y, P;
    load_f32(&k, "X", &X);
    load_f32(&k, "Y", &Y);
    load_f32(&k, "Xprobe", &P);

    /* inference and training forwards on the probe with the initial weights */
    nnp_layer *l = case_layer(reg, &k, &X);
    const int64_t C = n_channels(l);
    nnp_tensor yp;
    alloc(&yp, P.shape);
    forward(l, &P, &yp, NNP_MODE_INFER);
    expect(&k, "predict_probe_initial", yp.data, nnp_tensor_numel(&P));
    forward(l, &P, &yp, NNP_MODE_TRAIN);
    expect(&k, "train_forward_probe", yp.data, nnp_tensor_numel(&P));
    expect(&k, "train_forward_moving_mean", wdata(l, "moving_mean"), C);
    expect(&k, "train_forward_moving_variance", wdata(l, "moving_variance"), C);
    nnp_layer_free(l);

    /* training from the initial weights: MSE, plain SGD, no shuffling */
    json_t *tr = json_object_get(k.m, "training");
    const double lr = json_number_value(json_object_get(tr, "lr"));
    const int epochs = (int)json_integer_value(json_object_get(tr, "epochs"));
    const int64_t bs = json_integer_value(json_object_get(tr, "batchSize"));
    const int64_t N = X.shape.dims[0], row = nnp_tensor_numel(&X) / N;
    const int64_t steps = (N + bs - 1) / bs;
    l = case_layer(reg, &k, &X);
    double *batch_losses = calloc((size_t)(epochs * steps), sizeof(double));
    double *history = calloc((size_t)epochs, sizeof(double));
    for (int e = 0; e < epochs; e++) {
        for (int64_t s = 0; s < steps; s++) {
            const int64_t n0 = s * bs, nb = (n0 + bs <= N ? bs : N - n0), cnt = nb * row;
            nnp_shape bshape = X.shape;
            bshape.dims[0] = nb;
            nnp_tensor xb, y, dy, dx;
            nnp_error err = {0};
            cr_assert_eq(nnp_tensor_wrap(&xb, NNP_F32, &bshape, (float *)X.data + n0 * row, &err),
                         NNP_OK);
            const float *t = (const float *)Y.data + n0 * row;
            alloc(&y, bshape), alloc(&dy, bshape), alloc(&dx, bshape);
            forward(l, &xb, &y, NNP_MODE_TRAIN);
            /* loss before the update, regularization included */
            double loss = 0.0;
            float *py = y.data, *pdy = dy.data;
            for (int64_t i = 0; i < cnt; i++) {
                double r = (double)py[i] - (double)t[i];
                loss += r * r;
                pdy[i] = (float)(2.0 * r / (double)cnt);
            }
            loss = loss / (double)cnt + nnp_layer_regularization_loss(l);
            batch_losses[e * steps + s] = loss;
            history[e] += loss * (double)nb / (double)N;
            nnp_layer_zero_grad(l);
            backward(l, &xb, &y, &dy, &dx, NNP_MODE_TRAIN);
            nnp_layer_add_regularization_grads(l);
            for (int i = 0; i < nnp_layer_n_weights(l); i++) {
                const nnp_weight *w = nnp_layer_weight(l, i);
                if (!(w->flags & NNP_WEIGHT_TRAINABLE))
                    continue;
                float *v = w->value->data, *g = w->grad->data;
                for (int64_t c = 0; c < nnp_tensor_numel(w->value); c++)
                    v[c] -= (float)lr * g[c];
            }
            cr_assert_eq(nnp_layer_apply_constraints(l, &err), NNP_OK, "%s", err.msg);
            nnp_tensor_free(&y), nnp_tensor_free(&dy), nnp_tensor_free(&dx);
        }
    }
    expect_d(&k, "batch_losses", batch_losses, epochs * steps);
    expect_d(&k, "loss_history", history, epochs);
    const char *names[] = {"gamma", "beta", "moving_mean", "moving_variance"};
    for (int i = 0; i < 4; i++)
        if (json_object_get(json_object_get(k.m, "outputs"), names[i]))
            expect(&k, names[i], wdata(l, names[i]), C);
        else
            cr_assert_null(nnp_layer_weight_by_name(l, names[i]), "%s: unexpected %s", id, names[i]);
    forward(l, &P, &yp, NNP_MODE_INFER);
    expect(&k, "predict_probe", yp.data, nnp_tensor_numel(&P));

    free(batch_losses), free(history);
    nnp_tensor_free(&yp), nnp_tensor_free(&X), nnp_tensor_free(&Y), nnp_tensor_free(&P);
    nnp_layer_free(l);
    json_decref(k.m);
    nnp_registry_free(reg);
}

Test(keras_tfjs, defaults_2d) { run_keras_case("defaults_2d"); }
Test(keras_tfjs, axis_last_4d) { run_keras_case("axis_last_4d"); }
Test(keras_tfjs, center_false) { run_keras_case("center_false"); }
Test(keras_tfjs, gamma_l2) { run_keras_case("gamma_l2"); }
Test(keras_tfjs, beta_nonneg) { run_keras_case("beta_nonneg"); }
Test(keras_tfjs, minibatch) { run_keras_case("minibatch"); }

/* ------------------------------------------------------------------ */
/* the kernel variant this run selected (NNP_BN_ISA), through the ABI  */
/* ------------------------------------------------------------------ */

/* Outputs, moving statistics and gradients bitwise identical for 1..4
 * threads, channels-first and channels-last, in whichever instruction-set
 * variant the plugin runs. */
Test(run, deterministic_for_any_thread_count)
{
    nnp_registry *reg = tu_registry();
    static const struct { const char *cfg; int64_t dims[4]; } cases[] = {
        {"{\"axis\": 1}", {16, 32, 20, 20}},
        {"{\"axis\": -1}", {16, 20, 20, 48}},
    };
    for (size_t c = 0; c < 2; c++) {
        nnp_shape s = shape_of(4, cases[c].dims);
        nnp_tensor x, dy, y[4], dx[4];
        alloc(&x, s);
        alloc(&dy, s);
        fill(&x, 11, 3.0f, 4.0f);
        fill(&dy, 12, 0.0f, 1.0f);
        float mm[4][64], dg[4][64], db[4][64];
        int64_t C = cases[c].dims[c == 0 ? 1 : 3];
        for (int t = 0; t < 4; t++) {
            omp_set_num_threads(t + 1);
            nnp_layer *l = new_layer(reg, cases[c].cfg);
            build(l, s);
            alloc(&y[t], s);
            alloc(&dx[t], s);
            forward(l, &x, &y[t], NNP_MODE_TRAIN);
            nnp_layer_zero_grad(l);
            backward(l, &x, &y[t], &dy, &dx[t], NNP_MODE_TRAIN);
            memcpy(mm[t], wdata(l, "moving_variance"), (size_t)C * sizeof(float));
            memcpy(dg[t], gdata(l, "gamma"), (size_t)C * sizeof(float));
            memcpy(db[t], gdata(l, "beta"), (size_t)C * sizeof(float));
            nnp_layer_free(l);
            if (t == 0)
                continue;
            cr_assert_eq(memcmp(y[t].data, y[0].data, y[0].nbytes), 0, "y, %d threads", t + 1);
            cr_assert_eq(memcmp(dx[t].data, dx[0].data, dx[0].nbytes), 0, "dx, %d threads",
                         t + 1);
            cr_assert_eq(memcmp(mm[t], mm[0], (size_t)C * sizeof(float)), 0, "moving var");
            cr_assert_eq(memcmp(dg[t], dg[0], (size_t)C * sizeof(float)), 0, "dgamma");
            cr_assert_eq(memcmp(db[t], db[0], (size_t)C * sizeof(float)), 0, "dbeta");
        }
        for (int t = 0; t < 4; t++) {
            nnp_tensor_free(&y[t]);
            nnp_tensor_free(&dx[t]);
        }
        nnp_tensor_free(&x);
        nnp_tensor_free(&dy);
    }
    omp_set_num_threads(omp_get_num_procs());
    nnp_registry_free(reg);
}

/* Tensors of 4M+ floats take the streaming-store paths of the vector
 * variants: the selected variant must agree with the generic kernels (to
 * float rounding: FMA and vector width change the summation) and stay
 * bitwise deterministic across thread counts. */
Test(run, large_tensors_match_the_generic_kernels)
{
    nnp_registry *reg = tu_registry();
    /* long rows, channels-last, and short rows (196, 49) that do not fill whole vectors */
    static const struct { const char *cfg; int64_t dims[4]; int c_axis; } cases[] = {
        {"{\"axis\": 1}", {4, 64, 128, 130}, 1},
        {"{\"axis\": -1}", {4, 128, 130, 64}, 3},
        {"{\"axis\": 1}", {128, 256, 14, 14}, 1},
        {"{\"axis\": 1}", {1024, 130, 7, 7}, 1},
    };
    const char *keep = getenv("NNP_BN_ISA");
    char saved[32] = "";
    if (keep)
        snprintf(saved, sizeof saved, "%s", keep);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nnp_shape s = shape_of(4, cases[c].dims);
        int64_t n = 0;
        cr_assert_eq(nnp_shape_numel(&s, &n, NULL), NNP_OK);
        nnp_tensor x, dy, y[3], dx[3];
        alloc(&x, s);
        alloc(&dy, s);
        fill(&x, 21, 2.0f, 3.0f);
        fill(&dy, 22, 0.0f, 1.0f);
        for (int v = 0; v < 3; v++) {
            /* v 0, 1: the selected variant at 1 and 2 threads; v 2: generic */
            if (v == 2)
                setenv("NNP_BN_ISA", "generic", 1);
            omp_set_num_threads(v == 1 ? 2 : 1);
            nnp_layer *l = new_layer(reg, cases[c].cfg);
            build(l, s);
            alloc(&y[v], s);
            alloc(&dx[v], s);
            forward(l, &x, &y[v], NNP_MODE_TRAIN);
            nnp_layer_zero_grad(l);
            backward(l, &x, &y[v], &dy, &dx[v], NNP_MODE_TRAIN);
            nnp_layer_free(l);
        }
        if (keep)
            setenv("NNP_BN_ISA", saved, 1);
        else
            unsetenv("NNP_BN_ISA");
        cr_assert_eq(memcmp(y[1].data, y[0].data, y[0].nbytes), 0, "y differs at 2 threads");
        cr_assert_eq(memcmp(dx[1].data, dx[0].data, dx[0].nbytes), 0, "dx differs at 2 threads");
        const float *a = y[0].data, *b = y[2].data, *ga = dx[0].data, *gb = dx[2].data;
        for (int64_t i = 0; i < n; i++) {
            cr_assert(fabsf(a[i] - b[i]) <= 1e-5f * (1 + fabsf(b[i])), "y[%lld]: %g vs generic %g",
                      (long long)i, a[i], b[i]);
            cr_assert(fabsf(ga[i] - gb[i]) <= 1e-4f * (1 + fabsf(gb[i])),
                      "dx[%lld]: %g vs generic %g", (long long)i, ga[i], gb[i]);
        }
        for (int v = 0; v < 3; v++) {
            nnp_tensor_free(&y[v]);
            nnp_tensor_free(&dx[v]);
        }
        nnp_tensor_free(&x);
        nnp_tensor_free(&dy);
    }
    omp_set_num_threads(omp_get_num_procs());
    nnp_registry_free(reg);
}
