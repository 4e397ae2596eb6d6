/* Keras parity: models from keras-tfjs (model.json) trained with
 * nnp_model_fit end with the recorded weights, losses and predictions. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

typedef struct kcase {
    json_t *cj;
    nnp_registry *reg;
    nnp_model *m;
    double rtol, atol;
} kcase;

static const char *case_file(const char *name, const char *rel)
{
    return tu_data_path("keras-tfjs/%s/%s", name, rel);
}

static void load_model(kcase *k, const char *name)
{
    nnp_error err = {0};
    nnp_status st = nnp_keras_load(k->reg, case_file(name, "model.json"), &k->m, &err);
    cr_assert_eq(st, NNP_OK, "%s: %s", name, err.msg);
    cr_assert_eq(nnp_model_n_layers(k->m), 1);
}

static void open_case(kcase *k, const char *name)
{
    json_error_t je;
    k->cj = json_load_file(case_file(name, "case.json"), 0, &je);
    cr_assert_not_null(k->cj, "%s: %s", name, je.text);
    k->reg = tu_registry();
    load_model(k, name);
}

static void close_case(kcase *k)
{
    nnp_model_free(k->m);
    nnp_registry_free(k->reg);
    json_decref(k->cj);
}

static void tolerances(const kcase *k, const char *out, double *rtol, double *atol)
{
    const json_t *o = json_object_get(json_object_get(k->cj, "outputs"), out);
    cr_assert_not_null(o, "case lacks output %s", out);
    *rtol = json_number_value(json_object_get(o, "rtol"));
    *atol = json_number_value(json_object_get(o, "atol"));
}

static void expect_f32(const kcase *k, const char *name, const char *out, const float *got,
                       int64_t n)
{
    double rtol, atol;
    tolerances(k, out, &rtol, &atol);
    char rel[128];
    snprintf(rel, sizeof rel, "expected/%s.npy", out);
    int64_t en;
    double *exp = tu_load_f64(case_file(name, rel), NULL, &en);
    cr_assert_eq(en, n, "%s: %s has %lld values, expected %lld", name, out, (long long)n,
                 (long long)en);
    char what[160];
    snprintf(what, sizeof what, "%s/%s", name, out);
    tu_assert_close_f32(what, got, exp, n, rtol, atol);
    free(exp);
}

static void expect_f64(const kcase *k, const char *name, const char *out, const double *got,
                       int64_t n)
{
    double rtol, atol;
    tolerances(k, out, &rtol, &atol);
    char rel[128];
    snprintf(rel, sizeof rel, "expected/%s.npy", out);
    int64_t en;
    double *exp = tu_load_f64(case_file(name, rel), NULL, &en);
    cr_assert_eq(en, n, "%s: %s has %lld values, expected %lld", name, out, (long long)n,
                 (long long)en);
    char what[160];
    snprintf(what, sizeof what, "%s/%s", name, out);
    tu_assert_close(what, got, exp, n, rtol, atol);
    free(exp);
}

static const nnp_weight *weight(const kcase *k, const char *w)
{
    return nnp_layer_weight_by_name(nnp_model_layer(k->m, 0), w);
}

static void forward(kcase *k, const nnp_tensor *x, nnp_mode mode)
{
    nnp_error err = {0};
    const nnp_tensor *in[1] = {x};
    cr_assert_eq(nnp_model_forward(k->m, in, 1, mode, &err), NNP_OK, "%s", err.msg);
}

static void run_case(const char *name)
{
    kcase k = {0};
    nnp_error err = {0};
    open_case(&k, name);
    const json_t *outs = json_object_get(k.cj, "outputs");
    nnp_tensor x, y, probe;
    tu_load_f32(case_file(name, "inputs/X.npy"), &x);
    tu_load_f32(case_file(name, "inputs/Y.npy"), &y);
    tu_load_f32(case_file(name, "inputs/Xprobe.npy"), &probe);

    /* Initial weights follow from the initializers. */
    const char *wnames[] = {"gamma", "beta", "moving_mean", "moving_variance"};
    for (int i = 0; i < 4; i++) {
        const nnp_weight *w = weight(&k, wnames[i]);
        char rel[64];
        snprintf(rel, sizeof rel, "initial/%s.npy", wnames[i]);
        if (!json_object_get(outs, wnames[i])) {
            cr_assert_null(w, "%s: weight %s must not exist", name, wnames[i]);
            continue;
        }
        cr_assert_not_null(w, "%s: weight %s missing", name, wnames[i]);
        int64_t n;
        double *init = tu_load_f64(case_file(name, rel), NULL, &n);
        cr_assert_eq(n, nnp_tensor_numel(w->value));
        tu_assert_close_f32(rel, w->value->data, init, n, 0, 0);
        free(init);
    }

    forward(&k, &probe, NNP_MODE_INFER);
    const nnp_tensor *out = nnp_model_output(k.m, 0);
    expect_f32(&k, name, "predict_probe_initial", out->data, nnp_tensor_numel(out));
    forward(&k, &probe, NNP_MODE_TRAIN);
    out = nnp_model_output(k.m, 0);
    expect_f32(&k, name, "train_forward_probe", out->data, nnp_tensor_numel(out));
    expect_f32(&k, name, "train_forward_moving_mean", weight(&k, "moving_mean")->value->data,
               nnp_tensor_numel(weight(&k, "moving_mean")->value));
    expect_f32(&k, name, "train_forward_moving_variance",
               weight(&k, "moving_variance")->value->data,
               nnp_tensor_numel(weight(&k, "moving_variance")->value));

    /* Training starts again from the initial weights. */
    nnp_model_free(k.m);
    load_model(&k, name);
    const json_t *tr = json_object_get(k.cj, "training");
    nnp_optimizer_config oc = nnp_optimizer_defaults(NNP_OPT_SGD);
    oc.learning_rate = json_number_value(json_object_get(tr, "lr"));
    nnp_optimizer *opt;
    cr_assert_eq(nnp_optimizer_new(&oc, k.m, &opt, &err), NNP_OK, "%s", err.msg);
    nnp_loss loss;
    cr_assert_eq(nnp_loss_parse("mse", 0, &loss, &err), NNP_OK);
    nnp_train_options to = nnp_train_defaults();
    to.epochs = (int)json_integer_value(json_object_get(tr, "epochs"));
    to.batch_size = json_integer_value(json_object_get(tr, "batchSize"));
    to.shuffle = 0;
    nnp_history h;
    cr_assert_eq(nnp_model_fit(k.m, &x, &y, &loss, opt, &to, NULL, &h, &err), NNP_OK, "%s: %s",
                 name, err.msg);
    for (int i = 0; i < 4; i++)
        if (json_object_get(outs, wnames[i]))
            expect_f32(&k, name, wnames[i], weight(&k, wnames[i])->value->data,
                       nnp_tensor_numel(weight(&k, wnames[i])->value));
    expect_f64(&k, name, "loss_history", h.loss, h.epochs);
    expect_f64(&k, name, "batch_losses", h.batch_loss, h.n_steps);
    forward(&k, &probe, NNP_MODE_INFER);
    out = nnp_model_output(k.m, 0);
    expect_f32(&k, name, "predict_probe", out->data, nnp_tensor_numel(out));

    nnp_history_free(&h);
    nnp_optimizer_free(opt);
    nnp_tensor_free(&x);
    nnp_tensor_free(&y);
    nnp_tensor_free(&probe);
    close_case(&k);
}

Test(keras_parity, defaults_2d) { run_case("defaults_2d"); }
Test(keras_parity, axis_last_4d) { run_case("axis_last_4d"); }
Test(keras_parity, center_false) { run_case("center_false"); }
Test(keras_parity, gamma_l2) { run_case("gamma_l2"); }
Test(keras_parity, beta_nonneg) { run_case("beta_nonneg"); }
Test(keras_parity, minibatch) { run_case("minibatch"); }
Test(keras_parity, time_distributed) { run_case("time_distributed"); }
Test(keras_parity, time_distributed_per_step) { run_case("time_distributed_per_step"); }
