/* nnplug demo: two interleaved spirals, a Dense-BatchNormalization-ReLU
 * network built with the C API, trained with Adam; the trained model is saved
 * to ONNX, loaded back, and its predictions must match. */
#include "cli/cli.h"
#include "cli/progress.h"
#include "nnplug/onnx.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEMO_SAMPLES 1200
#define DEMO_TARGET_ACCURACY 0.95

/* Two spirals, one per class, with a little noise; classes alternate so the
 * validation split (the last 20%) holds both. */
static nnp_status make_spirals(nnp_tensor *x, nnp_tensor *y, nnp_error *err)
{
    nnp_shape sx = {2, {DEMO_SAMPLES, 2}}, sy = {1, {DEMO_SAMPLES}};
    nnp_status st = nnp_tensor_alloc(x, NNP_F32, &sx, err);
    if (!st)
        st = nnp_tensor_alloc(y, NNP_F32, &sy, err);
    if (st)
        return st;
    float *xd = x->data, *yd = y->data;
    const double pi = 3.14159265358979323846;
    for (int i = 0; i < DEMO_SAMPLES; i++) {
        int cls = i % 2;
        double t = 0.05 + 0.95 * nnp_rng_uniform(2024, (uint64_t)i);
        double theta = t * 3.0 * pi + cls * pi;
        xd[2 * i] = (float)(t * cos(theta) + 0.02 * nnp_rng_normal(2025, (uint64_t)(2 * i)));
        xd[2 * i + 1] = (float)(t * sin(theta) + 0.02 * nnp_rng_normal(2025, (uint64_t)(2 * i + 1)));
        yd[i] = (float)cls;
    }
    return NNP_OK;
}

static nnp_status add(nnp_model *m, const nnp_registry *reg, const char *kind, const char *cfg,
                      int *v, nnp_error *err)
{
    nnp_layer *l;
    int li;
    nnp_status st = nnp_layer_new(reg, kind, cfg, &l, err);
    if (!st)
        st = nnp_model_add_layer(m, l, &li, err);
    if (!st)
        st = nnp_model_apply(m, li, v, 1, NULL, v, err);
    return st;
}

static nnp_status build_model(const nnp_registry *reg, nnp_model **out, nnp_error *err)
{
    nnp_model *m;
    nnp_status st = nnp_model_new(reg, &m, err);
    if (st)
        return st;
    nnp_shape in = {2, {-1, 2}};
    int v;
    st = nnp_model_add_input(m, "points", &in, &v, err);
    const char *layers[][2] = {
        {"Dense", "{\"name\": \"dense_1\", \"units\": 64, \"seed\": 1}"},
        {"BatchNormalization", "{\"name\": \"bn_1\"}"},
        {"ReLU", "{\"name\": \"relu_1\"}"},
        {"Dense", "{\"name\": \"dense_2\", \"units\": 64, \"seed\": 2}"},
        {"BatchNormalization", "{\"name\": \"bn_2\"}"},
        {"ReLU", "{\"name\": \"relu_2\"}"},
        {"Dense", "{\"name\": \"logits\", \"units\": 2, \"seed\": 3}"},
    };
    for (size_t i = 0; !st && i < sizeof layers / sizeof layers[0]; i++)
        st = add(m, reg, layers[i][0], layers[i][1], &v, err);
    if (!st)
        st = nnp_model_set_outputs(m, &v, 1, err);
    if (st) {
        nnp_model_free(m);
        return st;
    }
    *out = m;
    return NNP_OK;
}

static nnp_status on_epoch(void *user, const nnp_epoch_logs *logs, nnp_error *err)
{
    (void)err;
    return progress_on_epoch(user, logs);
}

int cmd_demo(int argc, char **argv)
{
    const char *out_path = "demo.onnx";
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            printf("usage: nnplug demo [--out FILE.onnx]\n"
                   "Trains a Dense-BatchNormalization-ReLU network on two spirals, saves it\n"
                   "(default demo.onnx), reloads it and checks the predictions match.\n");
            return CLI_EXIT_OK;
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out_path = argv[++i];
        } else {
            cli_error("demo: unknown option '%s'", argv[i]);
            return CLI_EXIT_USAGE;
        }
    }
    nnp_error err = {0};
    nnp_registry *reg = NULL;
    nnp_model *m = NULL, *back = NULL;
    nnp_optimizer *opt = NULL;
    nnp_tensor x = {0}, y = {0}, p1 = {0}, p2 = {0};
    nnp_history h = {0};
    int rc = CLI_EXIT_OK;
    nnp_status st = cli_load_registry(&reg, &err);
    if (!st)
        st = make_spirals(&x, &y, &err);
    if (!st)
        st = build_model(reg, &m, &err);
    nnp_optimizer_config oc = nnp_optimizer_defaults(NNP_OPT_ADAM);
    oc.learning_rate = 0.003;
    if (!st)
        st = nnp_optimizer_new(&oc, m, &opt, &err);
    nnp_loss loss = {NNP_LOSS_SPARSE_CATEGORICAL_CE, 1};
    nnp_train_options to = nnp_train_defaults();
    to.epochs = 60;
    to.batch_size = 32;
    to.seed = 7;
    to.validation_split = 0.2;
    progress prog;
    progress_init(&prog, stderr);
    prog.epochs = to.epochs;
    if (!st) {
        printf("nnplug demo: %d points on two spirals, Dense(64)-BN-ReLU x2 - Dense(2), Adam, "
               "%d threads\n", DEMO_SAMPLES, nnp_get_num_threads());
        fflush(stdout);
        nnp_train_callbacks cb = {&prog, progress_on_step, on_epoch};
        st = nnp_model_fit(m, &x, &y, &loss, opt, &to, &cb, &h, &err);
    }
    double val_acc = st ? 0 : h.val_accuracy[h.epochs - 1];
    if (!st)
        st = nnp_onnx_save(m, out_path, 0, &err);
    if (!st)
        st = nnp_model_predict(m, &x, 256, &p1, &err);
    if (!st)
        st = nnp_onnx_load(reg, out_path, NULL, &back, &err);
    if (!st)
        st = nnp_model_predict(back, &x, 256, &p2, &err);
    if (st) {
        rc = cli_fail(&err);
    } else {
        double maxdiff = 0;
        const float *a = p1.data, *b = p2.data;
        for (int64_t i = 0; i < nnp_tensor_numel(&p1); i++)
            maxdiff = fmax(maxdiff, fabs((double)a[i] - (double)b[i]));
        printf("validation accuracy %.4f (target %.2f)\n", val_acc, DEMO_TARGET_ACCURACY);
        printf("saved %s; reloaded predictions differ by at most %.3g\n", out_path, maxdiff);
        if (val_acc < DEMO_TARGET_ACCURACY || !(maxdiff <= 1e-5)) {
            cli_error("demo: %s", val_acc < DEMO_TARGET_ACCURACY
                                      ? "the model did not reach the target accuracy"
                                      : "the reloaded model predicts differently");
            rc = CLI_EXIT_FAIL;
        } else {
            printf("demo passed\n");
        }
    }
    nnp_history_free(&h);
    nnp_tensor_free(&p1);
    nnp_tensor_free(&p2);
    nnp_tensor_free(&x);
    nnp_tensor_free(&y);
    nnp_optimizer_free(opt);
    nnp_model_free(m);
    nnp_model_free(back);
    nnp_registry_free(reg);
    return rc;
}
