/* Model graph (shared layers, fan-out gradients, planned memory) checked by
 * finite differences; losses and optimizers against hand-computed values. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

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

static int apply(nnp_model *m, int li, int v)
{
    nnp_error err = {0};
    int out;
    cr_assert_eq(nnp_model_apply(m, li, &v, 1, NULL, &out, &err), NNP_OK, "%s", err.msg);
    return out;
}

/* x -> A -> v; v -> B -> w1; v -> A -> w2 (A shared, v fans out). */
static nnp_model *fanout_model(void)
{
    nnp_model *m;
    nnp_error err = {0};
    cr_assert_eq(nnp_model_new(reg, &m, &err), NNP_OK);
    nnp_shape s = {2, {-1, 5}};
    int x;
    cr_assert_eq(nnp_model_add_input(m, "x", &s, &x, &err), NNP_OK);
    int a = add_layer(m, "BatchNormalization",
                      "{\"name\": \"A\", \"gamma_initializer\": {\"class_name\": \"RandomUniform\","
                      " \"config\": {\"minval\": 0.5, \"maxval\": 1.5, \"seed\": 3}},"
                      " \"beta_initializer\": {\"class_name\": \"RandomNormal\", \"config\": "
                      "{\"seed\": 4}}}");
    int b = add_layer(m, "BatchNormalization",
                      "{\"name\": \"B\", \"gamma_initializer\": {\"class_name\": \"Constant\","
                      " \"config\": {\"value\": 0.7}}}");
    int v = apply(m, a, x);
    int w1 = apply(m, b, v);
    int w2 = apply(m, a, v);
    int outs[2] = {w1, w2};
    cr_assert_eq(nnp_model_set_outputs(m, outs, 2, &err), NNP_OK);
    return m;
}

static double objective(nnp_model *m, const nnp_tensor *x, const nnp_tensor *r1,
                        const nnp_tensor *r2)
{
    nnp_error err = {0};
    const nnp_tensor *in[1] = {x};
    cr_assert_eq(nnp_model_forward(m, in, 1, NNP_MODE_INFER, &err), NNP_OK, "%s", err.msg);
    double s = 0;
    const nnp_tensor *rs[2] = {r1, r2};
    for (int o = 0; o < 2; o++) {
        const float *y = nnp_model_output(m, o)->data, *r = rs[o]->data;
        for (int64_t i = 0; i < nnp_tensor_numel(rs[o]); i++)
            s += (double)y[i] * r[i];
    }
    return s;
}

static void fill(nnp_tensor *t, const nnp_shape *s, uint64_t seed)
{
    nnp_error err = {0};
    cr_assert_eq(nnp_tensor_alloc(t, NNP_F32, s, &err), NNP_OK);
    for (int64_t i = 0; i < nnp_tensor_numel(t); i++)
        ((float *)t->data)[i] = (float)(2.0 * nnp_rng_normal(seed, (uint64_t)i) + 0.5);
}

/* In inference mode a BN layer is affine in gamma and beta, so central
 * differences are exact up to float rounding. */
Test(model, shared_layer_and_fanout_gradients, .init = setup, .fini = teardown)
{
    nnp_model *m = fanout_model();
    nnp_error err = {0};
    nnp_shape s = {2, {7, 5}};
    nnp_tensor x, r1, r2;
    fill(&x, &s, 1);
    fill(&r1, &s, 2);
    fill(&r2, &s, 3);
    objective(m, &x, &r1, &r2);
    nnp_model_zero_grad(m);
    const nnp_tensor *g[2] = {&r1, &r2};
    cr_assert_eq(nnp_model_backward(m, g, 2, &err), NNP_OK, "%s", err.msg);
    for (int li = 0; li < nnp_model_n_layers(m); li++) {
        nnp_layer *l = nnp_model_layer(m, li);
        for (int wi = 0; wi < nnp_layer_n_weights(l); wi++) {
            const nnp_weight *w = nnp_layer_weight(l, wi);
            if (!w->grad)
                continue;
            float *wv = w->value->data;
            const float *gv = w->grad->data;
            for (int64_t i = 0; i < nnp_tensor_numel(w->value); i++) {
                float keep = wv[i];
                const float h = 1e-2f;
                wv[i] = keep + h;
                double fp = objective(m, &x, &r1, &r2);
                wv[i] = keep - h;
                double fm = objective(m, &x, &r1, &r2);
                wv[i] = keep;
                double fd = (fp - fm) / (2.0 * h);
                cr_assert(fabs(fd - gv[i]) <= 2e-3 * (1 + fabs(fd)),
                          "layer %s %s[%lld]: backward %.6g, finite difference %.6g",
                          nnp_layer_name(l), w->name, (long long)i, gv[i], fd);
            }
        }
    }
    nnp_tensor_free(&x);
    nnp_tensor_free(&r1);
    nnp_tensor_free(&r2);
    nnp_model_free(m);
}

Test(model, memory_is_reused_across_steps_and_batches, .init = setup, .fini = teardown)
{
    nnp_model *m = fanout_model();
    nnp_error err = {0};
    nnp_shape big = {2, {16, 5}}, small = {2, {3, 5}};
    nnp_tensor xb, xs;
    fill(&xb, &big, 1);
    fill(&xs, &small, 2);
    const nnp_tensor *in[1] = {&xb};
    cr_assert_eq(nnp_model_forward(m, in, 1, NNP_MODE_TRAIN, &err), NNP_OK, "%s", err.msg);
    const void *p0 = nnp_model_output(m, 0)->data;
    in[0] = &xs;
    cr_assert_eq(nnp_model_forward(m, in, 1, NNP_MODE_TRAIN, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_model_output(m, 0)->shape.dims[0], 3);
    /* the smaller batch's values fit in the same arena, so the larger batch
       finds its values where they were */
    in[0] = &xb;
    cr_assert_eq(nnp_model_forward(m, in, 1, NNP_MODE_TRAIN, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_model_output(m, 0)->data, p0, "a smaller batch reuses the buffers");
    nnp_tensor_free(&xb);
    nnp_tensor_free(&xs);
    nnp_model_free(m);
}

Test(model, bad_use_is_an_error, .init = setup, .fini = teardown)
{
    nnp_model *m = fanout_model();
    nnp_error err = {0};
    nnp_shape s = {2, {4, 6}};
    nnp_tensor x;
    fill(&x, &s, 1);
    const nnp_tensor *in[1] = {&x};
    cr_assert_eq(nnp_model_forward(m, in, 1, NNP_MODE_INFER, &err), NNP_ERR_SHAPE);
    cr_assert(strstr(err.msg, "'x'"), "%s", err.msg);
    cr_assert_eq(nnp_model_backward(m, NULL, 2, &err), NNP_ERR_INVALID);
    nnp_shape in_shape = {2, {-1, 5}};
    int v;
    cr_assert_eq(nnp_model_add_input(m, "x", &in_shape, &v, &err), NNP_ERR_DUPLICATE);
    nnp_tensor_free(&x);
    nnp_model_free(m);
}

static nnp_tensor make(int rank, const int64_t *dims, const float *vals)
{
    nnp_tensor t;
    nnp_shape s;
    nnp_error err = {0};
    nnp_shape_make(&s, rank, dims, &err);
    cr_assert_eq(nnp_tensor_alloc(&t, NNP_F32, &s, &err), NNP_OK);
    memcpy(t.data, vals, t.nbytes);
    return t;
}

/* Values worked out by hand from Keras's definitions. */
Test(loss, keras_definitions)
{
    nnp_error err = {0};
    nnp_loss l;
    double v, c;
    int64_t d22[] = {2, 2};
    float p[] = {0.25f, 0.75f, 0.5f, 0.5f}, t[] = {0, 1, 1, 0};
    nnp_tensor P = make(2, d22, p), T = make(2, d22, t), G = make(2, d22, p);
    /* mse: ((0.25^2 + 0.25^2) + (0.5^2 + 0.5^2)) / 4 = 0.15625; grad 2(p-t)/4 */
    nnp_loss_parse("mse", 0, &l, &err);
    cr_assert_eq(nnp_loss_compute(&l, &P, &T, &v, &G, &c, &err), NNP_OK);
    cr_assert_float_eq(v, 0.15625, 1e-12);
    cr_assert_float_eq(((float *)G.data)[0], 0.125f, 1e-7);
    cr_assert_float_eq(((float *)G.data)[2], -0.25f, 1e-7);
    /* categorical: (-log 0.75 - log 0.5) / 2; sample 2 is a tie -> argmax 0 == label 0? no: label 0 */
    nnp_loss_parse("categorical_crossentropy", 0, &l, &err);
    cr_assert_eq(nnp_loss_compute(&l, &P, &T, &v, &G, &c, &err), NNP_OK);
    cr_assert_float_eq(v, (-log(0.75) - log(0.5)) / 2, 1e-7);
    cr_assert_float_eq(c, 2.0, 1e-12);
    /* gradient through p/sum(p): d/dp_j = (-t_j/p_j + 1) / 2 for rows summing to 1 */
    cr_assert_float_eq(((float *)G.data)[1], (-1 / 0.75 + 1) / 2, 1e-6);
    cr_assert_float_eq(((float *)G.data)[0], 0.5f, 1e-6);
    /* sparse from logits: logits (0, ln 3) -> softmax (0.25, 0.75) */
    float z[] = {0.0f, (float)log(3.0), 0.0f, 0.0f}, lab[] = {1, 0};
    int64_t d2[] = {2};
    nnp_tensor Z = make(2, d22, z), L = make(1, d2, lab);
    nnp_loss_parse("sparse_categorical_crossentropy", 1, &l, &err);
    cr_assert_eq(nnp_loss_compute(&l, &Z, &L, &v, &G, &c, &err), NNP_OK, "%s", err.msg);
    cr_assert_float_eq(v, (-log(0.75) - log(0.5)) / 2, 1e-6);
    cr_assert_float_eq(((float *)G.data)[0], 0.25f / 2, 1e-6);
    cr_assert_float_eq(((float *)G.data)[1], (0.75f - 1) / 2, 1e-6);
    float badlab[] = {2, 0};
    nnp_tensor BL = make(1, d2, badlab);
    cr_assert_eq(nnp_loss_compute(&l, &Z, &BL, &v, &G, &c, &err), NNP_ERR_INVALID);
    /* binary: -(log 0.75 + log 0.75 + log 0.5 + log 0.5)/4 with Keras's +eps inside log */
    float tb[] = {0, 1, 1, 0};
    nnp_tensor TB = make(2, d22, tb);
    nnp_loss_parse("binary_crossentropy", 0, &l, &err);
    cr_assert_eq(nnp_loss_compute(&l, &P, &TB, &v, NULL, &c, &err), NNP_OK);
    double e = 1e-7;
    cr_assert_float_eq(v, -(2 * log(0.75 + e) + 2 * log(0.5 + e)) / 4, 1e-9);
    cr_assert_eq(nnp_loss_parse("hinge", 0, &l, &err), NNP_ERR_INVALID);
    cr_assert(strstr(err.msg, "hinge"));
    nnp_tensor *all[] = {&P, &T, &G, &Z, &L, &BL, &TB};
    for (size_t i = 0; i < 7; i++)
        nnp_tensor_free(all[i]);
}

/* One BN layer; every trainable weight's gradient set to 0.5 before each step. */
static float step_gamma(const nnp_optimizer_config *oc, int steps)
{
    nnp_model *m;
    nnp_error err = {0};
    cr_assert_eq(nnp_model_new(reg, &m, &err), NNP_OK);
    nnp_shape s = {2, {-1, 3}};
    int x;
    nnp_model_add_input(m, "x", &s, &x, &err);
    int li = add_layer(m, "BatchNormalization", "{}");
    int y = apply(m, li, x);
    nnp_model_set_outputs(m, &y, 1, &err);
    nnp_optimizer *o;
    cr_assert_eq(nnp_optimizer_new(oc, m, &o, &err), NNP_OK, "%s", err.msg);
    const nnp_weight *g = nnp_layer_weight_by_name(nnp_model_layer(m, li), "gamma");
    for (int k = 0; k < steps; k++) {
        for (int i = 0; i < 3; i++)
            ((float *)g->grad->data)[i] = 0.5f;
        cr_assert_eq(nnp_optimizer_step(o, &err), NNP_OK, "%s", err.msg);
    }
    float v = ((float *)g->value->data)[0];
    const nnp_weight *mm = nnp_layer_weight_by_name(nnp_model_layer(m, li), "moving_mean");
    cr_assert_float_eq(((float *)mm->value->data)[0], 0.0f, 0, "non-trainable weights stay");
    nnp_optimizer_free(o);
    nnp_model_free(m);
    return v;
}

/* Hand-computed from Keras's update rules, gamma starting at 1, gradient 0.5. */
Test(optimizer, keras_update_rules, .init = setup, .fini = teardown)
{
    nnp_optimizer_config sgd = nnp_optimizer_defaults(NNP_OPT_SGD);
    sgd.learning_rate = 0.1;
    cr_assert_float_eq(step_gamma(&sgd, 2), 0.9f, 1e-6);
    sgd.momentum = 0.9;   /* v1 = -0.05, w = 0.95; v2 = -0.095, w = 0.855 */
    cr_assert_float_eq(step_gamma(&sgd, 2), 0.855f, 1e-6);
    sgd.nesterov = 1;     /* w = 1 - 0.095 = 0.905; then 0.905 - 0.1355 = 0.7695 */
    cr_assert_float_eq(step_gamma(&sgd, 2), 0.7695f, 1e-6);
    nnp_optimizer_config adam = nnp_optimizer_defaults(NNP_OPT_ADAM);
    cr_assert_float_eq(adam.epsilon, 1e-7, 0);
    adam.learning_rate = 0.1;
    /* first step: m = 0.05, v = 0.00025, alpha = 0.1 sqrt(0.001) / 0.1;
       w = 1 - alpha * 0.05 / (sqrt(0.00025) + 1e-7) */
    double a1 = 0.1 * sqrt(0.001) / 0.1;
    double w1 = 1 - a1 * 0.05 / (sqrt(0.00025) + 1e-7);
    cr_assert_float_eq(step_gamma(&adam, 1), (float)w1, 1e-6);
    /* second step with the same gradient: m = 0.095, v = 0.00049975 */
    double a2 = 0.1 * sqrt(1 - 0.999 * 0.999) / (1 - 0.81);
    double w2 = w1 - a2 * 0.095 / (sqrt(0.00049975) + 1e-7);
    float got2 = step_gamma(&adam, 2);
    cr_assert_float_eq(got2, (float)w2, 1e-6, "Adam step 2: %.9g vs %.9g", got2, w2);
}

/* Keras adds a weight's penalty once per step, however often its layer runs:
 * with zero output gradients, gamma's gradient is exactly 2 * 0.1 * gamma. */
Test(model, regularizer_counted_once_for_shared_layer, .init = setup, .fini = teardown)
{
    nnp_model *m;
    nnp_error err = {0};
    cr_assert_eq(nnp_model_new(reg, &m, &err), NNP_OK);
    nnp_shape s = {2, {-1, 4}};
    int x;
    nnp_model_add_input(m, "x", &s, &x, &err);
    int a = add_layer(m, "BatchNormalization",
                      "{\"gamma_initializer\": {\"class_name\": \"Constant\", \"config\": "
                      "{\"value\": 1.5}}, \"gamma_regularizer\": {\"class_name\": \"L2\", "
                      "\"config\": {\"l2\": 0.1}}}");
    int y = apply(m, a, apply(m, a, x));
    nnp_model_set_outputs(m, &y, 1, &err);
    nnp_shape bs = {2, {6, 4}};
    nnp_tensor xt, zero;
    fill(&xt, &bs, 5);
    nnp_tensor_alloc(&zero, NNP_F32, &bs, &err);
    const nnp_tensor *in[1] = {&xt}, *g[1] = {&zero};
    cr_assert_eq(nnp_model_forward(m, in, 1, NNP_MODE_TRAIN, &err), NNP_OK, "%s", err.msg);
    cr_assert_float_eq(nnp_model_regularization_loss(m), 0.1 * 4 * 1.5 * 1.5, 1e-9);
    nnp_model_zero_grad(m);
    cr_assert_eq(nnp_model_backward(m, g, 1, &err), NNP_OK, "%s", err.msg);
    nnp_model_add_regularization_grads(m);
    const nnp_weight *w = nnp_layer_weight_by_name(nnp_model_layer(m, a), "gamma");
    for (int i = 0; i < 4; i++)
        cr_assert_float_eq(((float *)w->grad->data)[i], 0.3f, 1e-7, "gamma grad %g",
                           ((float *)w->grad->data)[i]);
    nnp_tensor_free(&xt);
    nnp_tensor_free(&zero);
    nnp_model_free(m);
}

Test(model, unused_value_is_an_error, .init = setup, .fini = teardown)
{
    nnp_model *m;
    nnp_error err = {0};
    cr_assert_eq(nnp_model_new(reg, &m, &err), NNP_OK);
    nnp_shape s = {2, {-1, 3}};
    int x;
    nnp_model_add_input(m, "x", &s, &x, &err);
    int a = add_layer(m, "BatchNormalization", "{\"name\": \"used\"}");
    int b = add_layer(m, "BatchNormalization", "{\"name\": \"dangling\"}");
    int y = apply(m, a, x);
    apply(m, b, x);
    nnp_model_set_outputs(m, &y, 1, &err);
    nnp_shape bs = {2, {4, 3}};
    nnp_tensor xt;
    fill(&xt, &bs, 9);
    const nnp_tensor *in[1] = {&xt};
    cr_assert_eq(nnp_model_forward(m, in, 1, NNP_MODE_INFER, &err), NNP_ERR_INVALID);
    cr_assert(strstr(err.msg, "'dangling'") && strstr(err.msg, "neither used nor"), "%s", err.msg);
    nnp_tensor_free(&xt);
    nnp_model_free(m);
}
