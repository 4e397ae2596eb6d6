/* nnplug demo: two interleaved spirals, the Dense-BatchNormalization-ReLU
 * network of models/spirals.json (compiled in, see CMakeLists.txt), trained
 * with Adam; the trained model is saved to ONNX, loaded back, and its
 * predictions must match. --data writes the training data, so that
 * `nnplug train models/spirals.json` can repeat the same training. */
#include "cli/cli.h"
#include "cli/progress.h"
#include "nnplug/onnx.h"
#include "spirals_json.h"   /* nnp_spirals_json: models/spirals.json's text */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* The training, shared by the demo and the `nnplug train` line --data prints. */
#define DEMO_LR 0.003
#define DEMO_EPOCHS 60
#define DEMO_BATCH 32
#define DEMO_SEED 7
#define DEMO_VALIDATION 0.2

/* DIR/spirals_x.npy (float32 [samples, 2]) and DIR/spirals_y.npy (float32
 * class indices [samples]); DIR is created when missing. */
static nnp_status write_data(const char *dir, const nnp_tensor *x, const nnp_tensor *y,
                             char **xpath, char **ypath, nnp_error *err)
{
    nnp_status made = cli_make_dir(dir, err);
    if (made)
        return made;
    size_t need = strlen(dir) + sizeof "/spirals_x.npy";
    *xpath = malloc(need);
    *ypath = malloc(need);
    if (!*xpath || !*ypath)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    snprintf(*xpath, need, "%s/spirals_x.npy", dir);
    snprintf(*ypath, need, "%s/spirals_y.npy", dir);
    nnp_status st = nnp_npy_write(*xpath, x, err);
    return st ? st : nnp_npy_write(*ypath, y, err);
}

static nnp_status on_epoch(void *user, const nnp_epoch_logs *logs, nnp_error *err)
{
    (void)err;
    return progress_on_epoch(user, logs);
}

static const char demo_usage[] =
    "usage: nnplug demo [--out FILE.onnx] [--data DIR]\n"
    "Trains the classifier of models/spirals.json (Dense layers, each normalized and\n"
    "rectified) on two spirals, saves it (default demo.onnx), reloads it and checks\n"
    "the predictions match.\n"
    "  --data DIR  also writes the training data as DIR/spirals_x.npy and\n"
    "              DIR/spirals_y.npy (DIR is created when missing) and prints\n"
    "              the nnplug train command that repeats the training\n";

/* Everything a demo run holds, freed by demo_free. */
typedef struct demo {
    const char *out_path, *data_dir;
    char *xpath, *ypath;
    nnp_registry *reg;
    nnp_model *m, *back;
    nnp_optimizer *opt;
    nnp_tensor x, y, p1, p2;
    nnp_history h;
} demo;

static void demo_free(demo *d)
{
    free(d->xpath);
    free(d->ypath);
    nnp_history_free(&d->h);
    nnp_tensor_free(&d->p1);
    nnp_tensor_free(&d->p2);
    nnp_tensor_free(&d->x);
    nnp_tensor_free(&d->y);
    nnp_optimizer_free(d->opt);
    nnp_model_free(d->m);
    nnp_model_free(d->back);
    nnp_registry_free(d->reg);
}

/* Returns -1 when the options are fine, else the exit code (help: 0). */
static int parse_demo_args(int argc, char **argv, demo *d)
{
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(demo_usage, stdout);
            return CLI_EXIT_OK;
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            d->out_path = argv[++i];
        } else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            d->data_dir = argv[++i];
        } else {
            cli_error("demo: unknown option '%s'", argv[i]);
            return CLI_EXIT_USAGE;
        }
    }
    /* before training: a bad path must not cost a run */
    if (cli_check_output_path("demo", "--out", d->out_path))
        return CLI_EXIT_USAGE;
    if (d->data_dir && !d->data_dir[0]) {
        cli_error("demo: --data '': no folder given");
        return CLI_EXIT_USAGE;
    }
    return -1;
}

/* Says what it trains (and, with --data, the equivalent nnplug train line)
 * and trains d->m. */
static nnp_status demo_fit(demo *d, nnp_error *err)
{
    nnp_loss loss = {NNP_LOSS_SPARSE_CATEGORICAL_CE, 1};
    nnp_train_options to = nnp_train_defaults();
    to.epochs = DEMO_EPOCHS;
    to.batch_size = DEMO_BATCH;
    to.seed = DEMO_SEED;
    to.validation_split = DEMO_VALIDATION;
    progress prog;
    progress_init(&prog, stderr);
    prog.epochs = to.epochs;
    printf("nnplug demo: %d points on two spirals, Dense(64)-BN-ReLU x2 - Dense(2), Adam, "
           "%d threads\n", DEMO_SAMPLES, nnp_get_num_threads());
    if (d->data_dir)
        printf("wrote %s and %s; the same training: nnplug train models/spirals.json "
               "--x %s --y %s --optimizer adam --lr %g --loss "
               "sparse_categorical_crossentropy --from-logits --epochs %d --batch-size %d "
               "--seed %d --validation-split %g --save OUT.onnx\n", d->xpath, d->ypath,
               d->xpath, d->ypath, DEMO_LR, DEMO_EPOCHS, DEMO_BATCH, DEMO_SEED,
               DEMO_VALIDATION);
    fflush(stdout);
    nnp_train_callbacks cb = {&prog, progress_on_step, on_epoch};
    return nnp_model_fit(d->m, &d->x, &d->y, &loss, d->opt, &to, &cb, &d->h, err);
}

/* The verdict on a finished run: the target accuracy reached and the
 * reloaded model predicting as the trained one. Exit code. */
static int demo_verdict(const demo *d, double val_acc)
{
    double maxdiff = 0;
    const float *a = d->p1.data, *b = d->p2.data;
    for (int64_t i = 0; i < nnp_tensor_numel(&d->p1); i++)
        maxdiff = fmax(maxdiff, fabs((double)a[i] - (double)b[i]));
    printf("validation accuracy %.4f (target %.2f)\n", val_acc, DEMO_TARGET_ACCURACY);
    printf("saved %s; reloaded predictions differ by at most %.3g\n", d->out_path, maxdiff);
    if (val_acc < DEMO_TARGET_ACCURACY || !(maxdiff <= 1e-5)) {
        cli_error("demo: %s", val_acc < DEMO_TARGET_ACCURACY
                                  ? "the model did not reach the target accuracy"
                                  : "the reloaded model predicts differently");
        return CLI_EXIT_FAIL;
    }
    printf("demo passed\n");
    return CLI_EXIT_OK;
}

int cmd_demo(int argc, char **argv)
{
    demo d = {.out_path = "demo.onnx"};
    int rc = parse_demo_args(argc, argv, &d);
    if (rc >= 0)
        return rc;
    nnp_error err = {0};
    nnp_status st = cli_load_registry(&d.reg, &err);
    if (!st)
        st = make_spirals(&d.x, &d.y, &err);
    if (!st && d.data_dir)
        st = write_data(d.data_dir, &d.x, &d.y, &d.xpath, &d.ypath, &err);
    if (!st)
        st = nnp_keras_load_string(d.reg, nnp_spirals_json, "models/spirals.json", &d.m, &err);
    nnp_optimizer_config oc = nnp_optimizer_defaults(NNP_OPT_ADAM);
    oc.learning_rate = DEMO_LR;
    if (!st)
        st = nnp_optimizer_new(&oc, d.m, &d.opt, &err);
    if (!st)
        st = demo_fit(&d, &err);
    double val_acc = st ? 0 : d.h.val_accuracy[d.h.epochs - 1];
    /* saved, reloaded, and both asked for their predictions */
    if (!st)
        st = nnp_onnx_save(d.m, d.out_path, 0, &err);
    if (!st)
        st = nnp_model_predict(d.m, &d.x, 256, &d.p1, &err);
    if (!st)
        st = nnp_onnx_load(d.reg, d.out_path, NULL, &d.back, &err);
    if (!st)
        st = nnp_model_predict(d.back, &d.x, 256, &d.p2, &err);
    rc = st ? cli_fail(&err) : demo_verdict(&d, val_acc);
    demo_free(&d);
    return rc;
}
