/* A host program as a third party would write it, linking libnnplug.
 *
 *   nnplug_host_example [PLUGIN_DIR]
 *       loads the plugins of PLUGIN_DIR (or of NNP_PLUGIN_PATH and the
 *       installed plugin directory) and prints each layer kind with its
 *       parameter names, one kind per line:   ExampleScale: factor
 *
 *   nnplug_host_example --train OUT.onnx [PLUGIN_DIR]
 *       builds Dense-BatchNormalization-ReLU-Dense with the C API, trains it
 *       on generated data, exports it to OUT.onnx, loads that file back and
 *       checks that both models predict the same.
 *
 * Every library call returns a status (NNP_OK = 0) and fills an nnp_error
 * with a one-line message; nothing in libnnplug prints or exits. */
#include <nnplug/nnplug.h>
#include <nnplug/onnx.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#define SAMPLES 512
#define FEATURES 4

static int list_kinds(const nnp_registry *reg)
{
    int n = nnp_registry_n_kinds(reg);
    for (int i = 0; i < n; i++) {
        const nnp_kind *k = nnp_registry_kind_at(reg, i);
        printf("%s:", k->name);
        for (int j = 0; j < k->n_params; j++)
            printf(" %s", k->params[j].name);
        printf("\n");
    }
    if (n == 0) {
        fprintf(stderr, "no layer kinds found\n");
        return 1;
    }
    return 0;
}

/* y = sin(x0) + x1 * x2 - 0.5 * x3, with x uniform in [-1, 1). */
static nnp_status make_data(nnp_tensor *x, nnp_tensor *y, nnp_error *err)
{
    nnp_shape sx = {2, {SAMPLES, FEATURES}}, sy = {2, {SAMPLES, 1}};
    nnp_status st = nnp_tensor_alloc(x, NNP_F32, &sx, err);
    if (!st)
        st = nnp_tensor_alloc(y, NNP_F32, &sy, err);
    if (st)
        return st;
    float *xd = x->data, *yd = y->data;
    for (int i = 0; i < SAMPLES * FEATURES; i++)
        xd[i] = (float)(2 * nnp_rng_uniform(42, (uint64_t)i) - 1);
    for (int i = 0; i < SAMPLES; i++) {
        const float *r = xd + i * FEATURES;
        yd[i] = (float)(sin(r[0]) + r[1] * r[2] - 0.5 * r[3]);
    }
    return NNP_OK;
}

/* Creates a layer from its kind and Keras config and applies it to *v. */
static nnp_status add(nnp_model *m, const char *kind, const char *config, int *v,
                      nnp_error *err)
{
    nnp_layer *layer;
    int index;
    nnp_status st = nnp_layer_new(nnp_model_registry(m), kind, config, &layer, err);
    if (!st)
        st = nnp_model_add_layer(m, layer, &index, err);   /* the model owns it now */
    if (!st)
        st = nnp_model_apply(m, index, v, 1, NULL, v, err);
    return st;
}

static nnp_status build_model(const nnp_registry *reg, nnp_model **out, nnp_error *err)
{
    nnp_shape in = {2, {-1, FEATURES}};   /* -1: any batch size */
    int v;
    nnp_status st = nnp_model_new(reg, out, err);
    if (!st)
        st = nnp_model_add_input(*out, "x", &in, &v, err);
    if (!st)
        st = add(*out, "Dense", "{\"name\": \"hidden\", \"units\": 16, \"seed\": 1}", &v, err);
    if (!st)
        st = add(*out, "BatchNormalization", "{\"name\": \"bn\"}", &v, err);
    if (!st)
        st = add(*out, "ReLU", "{\"name\": \"relu\"}", &v, err);
    if (!st)
        st = add(*out, "Dense", "{\"name\": \"y\", \"units\": 1, \"seed\": 2}", &v, err);
    if (!st)
        st = nnp_model_set_outputs(*out, &v, 1, err);
    return st;
}

static nnp_status on_epoch_end(void *user, const nnp_epoch_logs *logs, nnp_error *err)
{
    (void)user;
    (void)err;
    printf("epoch %2d/%d  loss %.5f\n", logs->epoch + 1, logs->epochs, logs->loss);
    return NNP_OK;   /* anything else stops training with that error */
}

static int train(const nnp_registry *reg, const char *out_path)
{
    nnp_error err = {0};
    nnp_model *model = NULL, *reloaded = NULL;
    nnp_optimizer *opt = NULL;
    nnp_tensor x = {0}, y = {0}, p1 = {0}, p2 = {0};
    nnp_history hist = {0};

    nnp_loss loss = {NNP_LOSS_MSE, 0};
    nnp_optimizer_config oc = nnp_optimizer_defaults(NNP_OPT_ADAM);
    oc.learning_rate = 0.01;
    nnp_train_options to = nnp_train_defaults();
    to.epochs = 10;
    to.batch_size = 32;
    to.seed = 3;
    nnp_train_callbacks cb = {NULL, NULL, on_epoch_end};

    nnp_status st = make_data(&x, &y, &err);
    if (!st)
        st = build_model(reg, &model, &err);
    if (!st)
        st = nnp_optimizer_new(&oc, model, &opt, &err);
    if (!st)
        st = nnp_model_fit(model, &x, &y, &loss, opt, &to, &cb, &hist, &err);
    if (!st)
        st = nnp_onnx_save(model, out_path, 0, &err);   /* 0: the default opset */
    if (!st)
        st = nnp_onnx_load(reg, out_path, NULL, &reloaded, &err);
    if (!st)
        st = nnp_model_predict(model, &x, 128, &p1, &err);
    if (!st)
        st = nnp_model_predict(reloaded, &x, 128, &p2, &err);

    int rc = 0;
    if (st) {
        fprintf(stderr, "error: %s\n", err.msg);
        rc = 1;
    } else {
        double maxdiff = 0;
        const float *a = p1.data, *b = p2.data;
        for (int64_t i = 0; i < nnp_tensor_numel(&p1); i++)
            maxdiff = fmax(maxdiff, fabs((double)a[i] - b[i]));
        double first = hist.loss[0], last = hist.loss[hist.epochs - 1];
        printf("saved %s; the reloaded model's predictions differ by at most %.3g\n", out_path,
               maxdiff);
        if (!(last < 0.5 * first)) {
            fprintf(stderr, "error: training did not halve the loss (%g -> %g)\n", first, last);
            rc = 1;
        } else if (!(maxdiff <= 1e-5)) {
            fprintf(stderr, "error: the reloaded model predicts differently\n");
            rc = 1;
        } else {
            printf("trained, exported and reloaded: ok\n");
        }
    }
    nnp_history_free(&hist);
    nnp_tensor_free(&p1);
    nnp_tensor_free(&p2);
    nnp_tensor_free(&x);
    nnp_tensor_free(&y);
    nnp_optimizer_free(opt);
    nnp_model_free(reloaded);   /* models before the registry that serves them */
    nnp_model_free(model);
    return rc;
}

int main(int argc, char **argv)
{
    const char *train_out = NULL;
    int a = 1;
    if (argc > 2 && strcmp(argv[1], "--train") == 0) {
        train_out = argv[2];
        a = 3;
    }
    if (argc - a > 1 || (a < argc && argv[a][0] == '-')) {
        fprintf(stderr, "usage: %s [PLUGIN_DIR]\n"
                        "       %s --train OUT.onnx [PLUGIN_DIR]\n", argv[0], argv[0]);
        return 2;
    }
    const char *plugin_dir = a < argc ? argv[a] : NULL;

    nnp_registry *reg;
    nnp_error err;
    if (nnp_registry_new(&reg, &err) != NNP_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    nnp_status st = plugin_dir ? nnp_registry_load_dir(reg, plugin_dir, &err)
                               : nnp_registry_load_default(reg, &err);
    if (st != NNP_OK) {
        fprintf(stderr, "%s\n", err.msg);
        nnp_registry_free(reg);
        return 1;
    }
    /* A plugin that fails does not stop the others; say which and why. */
    for (int i = 0; i < nnp_registry_n_failures(reg); i++)
        fprintf(stderr, "skipped: %s\n", nnp_registry_failure(reg, i));

    int rc = train_out ? train(reg, train_out) : list_kinds(reg);
    nnp_registry_free(reg);
    return rc;
}
