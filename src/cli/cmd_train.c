/* nnplug train MODEL --x X.npy --y Y.npy --save OUT [options] */
#include "cli/cli.h"
#include "cli/checkpoint.h"
#include "cli/history_svg.h"
#include "cli/progress.h"
#include "nnplug/onnx.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char train_usage[] =
    "usage: nnplug train MODEL --x X.npy --y Y.npy --save OUT.onnx|OUT.keras|OUT.json\n"
    "         [--loss mse|categorical_crossentropy|sparse_categorical_crossentropy|"
    "binary_crossentropy]\n"
    "         [--from-logits] [--optimizer sgd|adam] [--lr F] [--momentum F] [--nesterov]\n"
    "         [--epochs N] [--batch-size N] [--no-shuffle] [--seed N] [--threads N]\n"
    "         [--validation-split F] [--opset N] [--out-dir DIR] [--terminate-on-nan]\n"
    "Trains MODEL (.onnx, Keras .keras, .h5 or .json) and saves it to --save\n"
    "(.onnx, .keras with the weights, or .json) after every epoch (atomically) and\n"
    "at the end.\n"
    "A step whose loss is not finite (NaN, Inf) is trained on as Keras does: the\n"
    "values propagate, training goes on, and each epoch that had such steps gets\n"
    "one warning naming the first of them.\n"
    "  --terminate-on-nan  stop after the first step whose loss is not finite\n"
    "                 (Keras's TerminateOnNaN): exit status 1, --save keeps the\n"
    "                 checkpoint of the last finished epoch, no --out-dir\n"
    "  --out-dir DIR  after training, writes every weight of every layer as\n"
    "                 DIR/WEIGHT.npy (DIR/LAYER_WEIGHT.npy for each layer holding a\n"
    "                 weight name that another layer also has), and the history as\n"
    "                 DIR/loss_history.npy (per epoch) and DIR/batch_losses.npy (per\n"
    "                 step), float64, and DIR/history.svg, a plot of the loss per\n"
    "                 epoch (with accuracy, val_loss and val_accuracy when the run\n"
    "                 has them); DIR is created when missing\n"
    "Under mpirun -np K (Open MPI): data-parallel training. --batch-size is the\n"
    "global batch, shared by the K processes in chunks fixed by its size; loss\n"
    "and gradients are summed over all of them, so every process keeps the same\n"
    "weights; moving statistics are averaged over the processes after each step.\n"
    "Process 0 alone prints and writes files. Processes whose nnplug, plugins,\n"
    "model or data differ are refused before the first step.\n";

typedef struct train_ctx {
    progress prog;
    nnp_model *m;
    const char *save;
    int opset;
    int steps;   /* per epoch */
    int rank;    /* in a group under mpirun: only process 0 prints and writes */
    const nnp_group *g;
    /* checkpoints (an .onnx --save): the run's identity, its history so far
       (from --resume's checkpoint on), the optimizer, the fit's history */
    int ckpt;
    const char *run_json;
    ckpt_history hist;
    const nnp_optimizer *opt;
    const nnp_history *h;
    int steps_seen;
} train_ctx;

static void on_step(void *user, int epoch, int step, int steps, double loss, double sps)
{
    train_ctx *c = user;
    c->steps = steps;
    progress_on_step(&c->prog, epoch, step, steps, loss, sps);
}

/* Process 0's part of an epoch's end: the progress line and the checkpoint. */
static nnp_status epoch_end_write(train_ctx *c, const nnp_epoch_logs *logs, nnp_error *err)
{
    progress_on_epoch(&c->prog, logs);
    if (logs->first_nonfinite_step >= 0)
        cli_warn("epoch %d/%d: loss is %g at step %d of %d, the first of %d steps with a "
                 "non-finite loss; training goes on (--terminate-on-nan stops it)",
                 logs->epoch + 1, logs->epochs, progress_plain_nan(logs->first_nonfinite_loss),
                 logs->first_nonfinite_step + 1, logs->steps, logs->nonfinite_steps);
    /* A checkpoint at every epoch end: an interrupted run keeps its last
     * one, with what --resume needs to go on to the same bytes. */
    nnp_status st = ckpt_history_add(&c->hist, logs, c->h->batch_loss + c->steps_seen,
                                     c->h->n_steps - c->steps_seen, err);
    c->steps_seen = c->h->n_steps;
    if (!st && c->ckpt)
        st = ckpt_store(c->m, c->run_json, &c->hist, logs->epoch + 1, c->opt, err);
    if (!st)
        st = cli_save_model(c->m, c->save, c->opset, err);
    ckpt_drop(c->m);
    return st;
}

/* Process 0 writes; under mpirun every process then learns whether it
 * could, so that a failed save stops them all (the others would otherwise
 * wait in the next step's sums for a process that has left). */
static nnp_status on_epoch_end(void *user, const nnp_epoch_logs *logs, nnp_error *err)
{
    train_ctx *c = user;
    nnp_status st = c->rank == 0 ? epoch_end_write(c, logs, err) : NNP_OK;
    if (nnp_group_size(c->g) < 2)
        return st;
    int32_t code = (int32_t)st;
    nnp_error e = {0};
    if (nnp_group_bcast(c->g, &code, sizeof code, 0, &e) != NNP_OK)
        return st ? st : (*err = e, e.code);
    if (code != NNP_OK && c->rank != 0)
        return nnp_error_set(err, (nnp_status)code, "process 0 could not write %s; every "
                             "process stops", c->save);
    return st;
}

/* DIR/NAME.npy, with characters other than [A-Za-z0-9._-] replaced by '_'. */
static char *npy_path(const char *dir, const char *prefix, const char *name)
{
    size_t need = strlen(dir) + strlen(prefix) + strlen(name) + 8;
    char *p = malloc(need);
    if (!p)
        return NULL;
    int off = snprintf(p, need, "%s/", dir);
    snprintf(p + off, need - (size_t)off, "%s%s", prefix, name);
    for (char *c = p + off; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-'))
            *c = '_';
    strcat(p, ".npy");
    return p;
}

static nnp_status write_f64(const char *path, const double *v, int n, nnp_error *err)
{
    nnp_tensor t;
    nnp_shape s = {1, {n}};
    nnp_status st = nnp_tensor_wrap(&t, NNP_F64, &s, (void *)v, err);
    return st ? st : nnp_npy_write(path, &t, err);
}

/* paths[n] against paths[0..n). */
static nnp_status check_unique(char *const *paths, int n, nnp_error *err)
{
    for (int i = 0; i < n; i++)
        if (strcmp(paths[i], paths[n]) == 0)
            return nnp_error_set(err, NNP_ERR_INVALID, "--out-dir: two arrays would be written "
                                 "to %s (rename a layer)", paths[n]);
    return NNP_OK;
}

/* Layers holding a weight called `name` (to tell when names collide). */
static int weight_name_count(const nnp_model *m, const char *name)
{
    int n = 0;
    for (int li = 0; li < nnp_model_n_layers(m); li++)
        n += nnp_layer_weight_by_name(nnp_model_layer(m, li), name) != NULL;
    return n;
}

/* DIR/history.svg: the per-epoch history drawn (history_svg.h). */
static nnp_status write_history_svg(const char *dir, const nnp_history *h, nnp_error *err)
{
    size_t need = strlen(dir) + sizeof "/history.svg";
    char *p = malloc(need);
    if (!p)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    snprintf(p, need, "%s/history.svg", dir);
    nnp_status st = history_svg_write(p, h, err);
    free(p);
    return st;
}

/* --out-dir: every weight of every layer, then the loss history, as .npy
 * and drawn. */
static nnp_status write_out_dir(const nnp_model *m, const nnp_history *h, const char *dir,
                                nnp_error *err)
{
    nnp_status made = cli_make_dir(dir, err);
    if (made)
        return made;
    /* Every path once: two names that end up as the same file are an error,
     * not a silent overwrite. */
    int cap = 2;
    for (int li = 0; li < nnp_model_n_layers(m); li++)
        cap += nnp_layer_n_weights(nnp_model_layer(m, li));
    char **paths = calloc((size_t)cap, sizeof *paths);
    if (!paths)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    int n = 0;
    nnp_status st = NNP_OK;
    for (int li = 0; !st && li < nnp_model_n_layers(m); li++) {
        const nnp_layer *l = nnp_model_layer(m, li);
        for (int i = 0; !st && i < nnp_layer_n_weights(l); i++) {
            const nnp_weight *w = nnp_layer_weight(l, i);
            char prefix[300] = "";
            if (weight_name_count(m, w->name) > 1)
                snprintf(prefix, sizeof prefix, "%s_", nnp_layer_name(l));
            if (!(paths[n] = npy_path(dir, prefix, w->name)))
                st = nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
            else if (!(st = check_unique(paths, n, err)))
                st = nnp_npy_write(paths[n], w->value, err);
            n++;
        }
    }
    const char *hist_names[2] = {"loss_history", "batch_losses"};
    for (int k = 0; !st && k < 2; k++) {
        if (!(paths[n] = npy_path(dir, "", hist_names[k])))
            st = nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
        else if (!(st = check_unique(paths, n, err)))
            st = k == 0 ? write_f64(paths[n], h->loss, h->epochs, err)
                        : write_f64(paths[n], h->batch_loss, h->n_steps, err);
        n++;
    }
    /* never one of paths: those all end in .npy */
    if (!st)
        st = write_history_svg(dir, h, err);
    for (int i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    return st;
}

static int parse_double(const char *opt, const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    if (end == s || *end || !isfinite(*out)) {
        cli_error("train: %s expects a finite number, got '%s'", opt, s);
        return -1;
    }
    return 0;
}

/* lo <= v (or lo < v) and v < hi: the option's own range, named with it. */
static int check_range(const char *opt, double v, double lo, int lo_open, double hi,
                       const char *range)
{
    if ((lo_open ? v > lo : v >= lo) && v < hi)
        return 0;
    cli_error("train: %s must be %s, got %g", opt, range, v);
    return -1;
}

/* The folder a file will be written in exists and is a folder; checked
 * before training, so a bad path never leaves half a run behind. */
static int check_parent_dir(const char *opt, const char *path)
{
    return cli_check_output_path("train", opt, path);
}

/* --out-dir is a directory, or can be made one in an existing directory. */
static int check_out_dir(const char *dir)
{
    struct stat sb;
    if (stat(dir, &sb) == 0) {
        if (S_ISDIR(sb.st_mode))
            return 0;
        cli_error("train: --out-dir %s: not a directory", dir);
        return -1;
    }
    return check_parent_dir("--out-dir", dir);
}


static int parse_long(const char *opt, const char *s, long long min, long long *out)
{
    char *end;
    *out = strtoll(s, &end, 10);
    if (end == s || *end || *out < min) {
        cli_error("train: %s expects an integer >= %lld, got '%s'", opt, min, s);
        return -1;
    }
    return 0;
}

/* ---- the command --------------------------------------------------------- */

/* What the command line asks for. */
typedef struct train_args {
    const char *model, *xpath, *ypath, *save, *loss_name, *opt_name, *out_dir, *resume;
    double lr, momentum, val;
    long long epochs, bs, seed, threads, opset;
    int from_logits, nesterov, shuffle, lr_given, terminate_on_nan;
} train_args;

/* Returned by parse_train_args when the command goes on. */
#define TRAIN_GO (-1)

enum { O_X = 256, O_Y, O_SAVE, O_LOSS, O_LOGITS, O_OPT, O_LR, O_MOM, O_NEST, O_EPOCHS,
       O_BS, O_NOSHUF, O_SEED, O_THREADS, O_VAL, O_OPSET, O_OUTDIR, O_TNAN,
       O_RESUME };

static const struct option train_opts[] = {
    {"x", required_argument, 0, O_X}, {"y", required_argument, 0, O_Y},
    {"save", required_argument, 0, O_SAVE}, {"loss", required_argument, 0, O_LOSS},
    {"from-logits", no_argument, 0, O_LOGITS}, {"optimizer", required_argument, 0, O_OPT},
    {"lr", required_argument, 0, O_LR}, {"momentum", required_argument, 0, O_MOM},
    {"nesterov", no_argument, 0, O_NEST}, {"epochs", required_argument, 0, O_EPOCHS},
    {"batch-size", required_argument, 0, O_BS}, {"no-shuffle", no_argument, 0, O_NOSHUF},
    {"seed", required_argument, 0, O_SEED}, {"threads", required_argument, 0, O_THREADS},
    {"validation-split", required_argument, 0, O_VAL}, {"opset", required_argument, 0, O_OPSET},
    {"out-dir", required_argument, 0, O_OUTDIR},
    {"terminate-on-nan", no_argument, 0, O_TNAN}, {"resume", required_argument, 0, O_RESUME},
    {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};

/* A numeric option, parsed and held to its range. */
static int parse_number_option(int c, const char *arg, train_args *a)
{
    switch (c) {
    case O_LR:
        a->lr_given = 1;
        return parse_double("--lr", arg, &a->lr) ||
               check_range("--lr", a->lr, 0, 1, INFINITY, "a finite number > 0");
    case O_MOM:
        return parse_double("--momentum", arg, &a->momentum) ||
               check_range("--momentum", a->momentum, 0, 0, 1, "in [0, 1)");
    /* --epochs 0 as Keras's fit(epochs=0): the model saved untrained */
    case O_EPOCHS: return parse_long("--epochs", arg, 0, &a->epochs);
    case O_BS: return parse_long("--batch-size", arg, 1, &a->bs);
    case O_SEED: return parse_long("--seed", arg, 0, &a->seed);
    case O_THREADS:
        return parse_long("--threads", arg, 1, &a->threads) ||
               check_range("--threads", (double)a->threads, 1, 0, CLI_MAX_THREADS + 1,
                           "an integer from 1 to " NNP_STR(CLI_MAX_THREADS));
    case O_VAL:
        return parse_double("--validation-split", arg, &a->val) ||
               check_range("--validation-split", a->val, 0, 0, 1, "in [0, 1)");
    case O_OPSET:
        return parse_long("--opset", arg, 0, &a->opset) ||
               (a->opset != 0 &&
                check_range("--opset", (double)a->opset, NNP_ONNX_OPSET_MIN, 0,
                            NNP_ONNX_OPSET_MAX + 1, "an ONNX opset from "
                            NNP_STR(NNP_ONNX_OPSET_MIN) " to " NNP_STR(NNP_ONNX_OPSET_MAX)));
    default: return -1;
    }
}

/* TRAIN_GO, or the exit code: CLI_EXIT_OK after --help, else CLI_EXIT_USAGE. */
static int parse_train_args(int argc, char **argv, train_args *a)
{
    int c;
    *a = (train_args){.loss_name = "mse", .opt_name = "sgd", .epochs = 1, .bs = 32,
                      .shuffle = 1};
    optind = 0; /* 0: glibc also resets its scan state (cli_main may run again) */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", train_opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case O_X: a->xpath = optarg; break;
        case O_Y: a->ypath = optarg; break;
        case O_SAVE: a->save = optarg; break;
        case O_LOSS: a->loss_name = optarg; break;
        case O_LOGITS: a->from_logits = 1; break;
        case O_OPT: a->opt_name = optarg; break;
        case O_LR:
        case O_MOM:
        case O_EPOCHS:
        case O_BS:
        case O_SEED:
        case O_THREADS:
        case O_VAL:
        case O_OPSET: bad = parse_number_option(c, optarg, a); break;
        case O_NEST: a->nesterov = 1; break;
        case O_NOSHUF: a->shuffle = 0; break;
        case O_OUTDIR: a->out_dir = optarg; break;
        case O_TNAN: a->terminate_on_nan = 1; break;
        case O_RESUME: a->resume = optarg; break;
        case 'h': fputs(train_usage, stdout); return CLI_EXIT_OK;
        default:
            cli_error("train: unknown or incomplete option '%s'", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
        if (bad)
            return CLI_EXIT_USAGE;
    }
    if (optind != argc - 1 || !a->xpath || !a->ypath || !a->save) {
        cli_error("train: needs MODEL, --x, --y and --save (see nnplug train --help)");
        return CLI_EXIT_USAGE;
    }
    /* every option before any work: a bad one leaves nothing behind */
    if (check_parent_dir("--save", a->save) || (a->out_dir && check_out_dir(a->out_dir)))
        return CLI_EXIT_USAGE;
    if (a->resume && !cli_has_ext(a->save, ".onnx")) {
        cli_error("train: --resume needs --save FILE.onnx (checkpoints keep the training state "
                  "in ONNX metadata)");
        return CLI_EXIT_USAGE;
    }
    a->model = argv[optind];
    return TRAIN_GO;
}


/* --optimizer and its settings; -1 (said on stderr) for an unknown one. */
static int optimizer_config(const train_args *a, nnp_optimizer_config *oc)
{
    if (strcmp(a->opt_name, "sgd") == 0)
        *oc = nnp_optimizer_defaults(NNP_OPT_SGD);
    else if (strcmp(a->opt_name, "adam") == 0)
        *oc = nnp_optimizer_defaults(NNP_OPT_ADAM);
    else {
        cli_error("train: unknown optimizer '%s' (sgd, adam)", a->opt_name);
        return -1;
    }
    if (a->lr_given)
        oc->learning_rate = a->lr;
    oc->momentum = a->momentum;
    oc->nesterov = a->nesterov;
    return 0;
}

/* What a run holds, freed by train_run_free. */
typedef struct train_run {
    nnp_registry *reg;
    nnp_model *m;
    nnp_optimizer *opt;
    nnp_tensor x, y;
    nnp_history h;
    int steps;   /* per epoch */
    nnp_group *g; /* under mpirun: the processes training together */
} train_run;

static void train_run_free(train_run *r)
{
    nnp_history_free(&r->h);
    nnp_optimizer_free(r->opt);
    nnp_tensor_free(&r->x);
    nnp_tensor_free(&r->y);
    nnp_model_free(r->m);
    nnp_registry_free(r->reg);
    nnp_group_free(r->g);
}

/* The model and the data, checked against each other: as many samples in
 * X as in Y, X's shape fitting the model's input. */
static nnp_status load_training(const train_args *a, train_run *r, nnp_error *err)
{
    nnp_status st = cli_load_registry(&r->reg, err);
    if (!st && r->g) {
        /* the same nnplug and the same plugins on every process */
        char *kinds = nnp_registry_kind_names(r->reg);
        char build[4096];
        snprintf(build, sizeof build, "nnplug %s, ABI %d.%d, kinds %s", NNP_VERSION_STRING,
                 NNP_ABI_MAJOR, NNP_ABI_MINOR, kinds ? kinds : "?");
        free(kinds);
        st = nnp_group_agree(r->g, "nnplug build or set of plugins", build, strlen(build), err);
    }
    /* --resume: the checkpoint holds the model as training left it */
    if (!st)
        st = cli_load_model(r->reg, a->resume ? a->resume : a->model, &r->m, err);
    if (!st)
        st = nnp_npy_read_f32(a->xpath, &r->x, err);
    if (!st)
        st = nnp_npy_read(a->ypath, &r->y, err);
    const nnp_tensor *x = &r->x, *y = &r->y;
    if (!st && x->shape.rank > 0 && y->shape.rank > 0 && x->shape.dims[0] != y->shape.dims[0])
        st = nnp_error_set(err, NNP_ERR_INVALID, "%s has %lld samples but %s has %lld (the "
                           "first dimension must match)", a->xpath, (long long)x->shape.dims[0],
                           a->ypath, (long long)y->shape.dims[0]);
    if (!st && nnp_model_n_inputs(r->m) == 1) {
        /* the file, not the model's input, is what the user has to fix */
        const nnp_shape *want = nnp_model_value_shape(r->m, nnp_model_input_value(r->m, 0));
        int ok = want->rank == x->shape.rank;
        for (int d = 1; ok && d < want->rank; d++)
            ok = want->dims[d] < 0 || want->dims[d] == x->shape.dims[d];
        char sa[128], sb[128];
        if (!ok)
            st = nnp_error_set(err, NNP_ERR_SHAPE, "%s: shape %s does not fit the model's "
                               "input %s", a->xpath, nnp_shape_str(&x->shape, sa, sizeof sa),
                               nnp_shape_str(want, sb, sizeof sb));
    }
    return st;
}

/* Trains from epoch `done` (saving after every epoch, and once when there
 * are none); stopped by --terminate-on-nan, no more. */
static nnp_status fit_run(const train_args *a, const nnp_loss *loss, train_run *r,
                          train_ctx *c, int done, nnp_error *err)
{
    progress_init(&c->prog, stderr);
    c->prog.epochs = (int)a->epochs;
    nnp_train_options to = nnp_train_defaults();
    to.epochs = (int)a->epochs;
    to.batch_size = a->bs;
    to.shuffle = a->shuffle;
    to.seed = (uint64_t)a->seed;
    to.validation_split = a->val;
    to.terminate_on_nan = a->terminate_on_nan;
    to.group = r->g;
    to.initial_epoch = done;
    nnp_train_callbacks cb = {c, c->rank == 0 ? on_step : NULL, on_epoch_end};
    nnp_status st = nnp_model_fit(r->m, &r->x, &r->y, loss, r->opt, &to, &cb, &r->h, err);
    if (st == NNP_ERR_SHAPE)   /* most likely the targets: name the files */
        nnp_error_prefix(err, "training on %s and %s", a->xpath, a->ypath);
    r->steps = c->steps;
    if (c->rank != 0)
        return st;   /* process 0 writes the files */
    if (!st && r->h.stop_epoch >= 0) {
        if (c->prog.tty)   /* end the progress bar's line */
            fputc('\n', stderr);
        return NNP_OK;
    }
    /* nothing trained (--epochs 0, or a checkpoint that has them all): the
       model saved as it is, with its state */
    if (!st && done >= a->epochs && c->ckpt)
        st = ckpt_store(r->m, c->run_json, &c->hist, c->hist.epochs, r->opt, err);
    if (!st && done >= a->epochs)
        st = cli_save_model(r->m, a->save, (int)a->opset, err);
    return st;
}

/* What must be the same to resume a run: the options that shape its
 * numbers and a fingerprint of its data. malloc'ed JSON. */
static char *run_identity(const train_args *a, const nnp_optimizer_config *oc,
                          const train_run *r)
{
    uint64_t h[2] = {1469598103934665603ULL, 1469598103934665603ULL};
    const nnp_tensor *t[2] = {&r->x, &r->y};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < t[k]->nbytes; i++)
            h[k] = (h[k] ^ ((const unsigned char *)t[k]->data)[i]) * 1099511628211ULL;
    char *out = malloc(1024);
    if (out)
        snprintf(out, 1024,
                 "{\"batch_size\": %lld, \"seed\": %lld, \"shuffle\": %d, "
                 "\"validation_split\": \"%a\", \"loss\": \"%s\", \"from_logits\": %d, "
                 "\"optimizer\": \"%s\", \"lr\": \"%a\", \"momentum\": \"%a\", "
                 "\"nesterov\": %d, \"data\": \"%016llx%016llx\"}",
                 a->bs, a->seed, a->shuffle, a->val, a->loss_name, a->from_logits, a->opt_name,
                 oc->learning_rate, oc->momentum, a->nesterov, (unsigned long long)h[0],
                 (unsigned long long)h[1]);
    return out;
}

/* The fit's history made the whole run's (a resumed run's earlier epochs
 * come from its checkpoint), for --out-dir. */
static void whole_history(nnp_history *h, const ckpt_history *c)
{
    if (c->epochs > 0) {
        memcpy(h->loss, c->loss, sizeof(double) * (size_t)c->epochs);
        memcpy(h->accuracy, c->accuracy, sizeof(double) * (size_t)c->epochs);
        memcpy(h->val_loss, c->val_loss, sizeof(double) * (size_t)c->epochs);
        memcpy(h->val_accuracy, c->val_accuracy, sizeof(double) * (size_t)c->epochs);
    }
    if (c->n_steps > 0)
        memcpy(h->batch_loss, c->batch_loss, sizeof(double) * (size_t)c->n_steps);
    h->epochs = c->epochs;
    h->n_steps = c->n_steps;
}

/* Trains (from --resume's checkpoint when given), saving after every epoch,
 * then writes --out-dir; stopped by --terminate-on-nan, no more. */
static nnp_status fit(const train_args *a, const nnp_loss *loss, const nnp_optimizer_config *oc,
                      train_run *r, nnp_error *err)
{
    char *run_json = run_identity(a, oc, r);
    if (!run_json)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    train_ctx ctx = {.m = r->m, .save = a->save, .opset = (int)a->opset,
                     .rank = nnp_group_rank(r->g), .g = r->g, .ckpt = cli_has_ext(a->save, ".onnx"),
                     .run_json = run_json, .opt = r->opt, .h = &r->h};
    int done = 0;
    nnp_status st = a->resume ? ckpt_load(r->m, a->resume, run_json, &ctx.hist, &done, r->opt,
                                          err)
                              : NNP_OK;
    ckpt_drop(r->m);
    if (st) {
        free(run_json);
        return st;
    }
    st = fit_run(a, loss, r, &ctx, done, err);
    if (!st && ctx.rank == 0 && r->h.stop_epoch < 0 && a->out_dir && r->h.loss &&
        ctx.hist.epochs <= a->epochs)   /* the fit's arrays hold a->epochs + 1 */
        whole_history(&r->h, &ctx.hist);
    if (!st && ctx.rank == 0 && r->h.stop_epoch < 0 && a->out_dir)
        st = write_out_dir(r->m, &r->h, a->out_dir, err);
    ckpt_history_free(&ctx.hist);
    free(run_json);
    return st;
}


/* --terminate-on-nan stopped training: one line, a runtime failure. */
static int report_stop(const train_args *a, const train_run *r)
{
    const nnp_history *h = &r->h;
    char kept[64] = "";
    if (h->stop_epoch > 0)
        snprintf(kept, sizeof kept, "holds the checkpoint of epoch %d", h->stop_epoch);
    double l = progress_plain_nan(h->batch_loss[h->n_steps - 1]);
    cli_error("train: loss is %g at epoch %d/%lld, step %d of %d: training stopped "
              "(--terminate-on-nan); %s %s", l, h->stop_epoch + 1, a->epochs,
              h->stop_step + 1, r->steps, a->save, h->stop_epoch > 0 ? kept : "was not written");
    return CLI_EXIT_FAIL;
}

/* mpirun binds each process to one core when it starts two or fewer (Open
 * MPI's default): more threads than the process may run on only take turns.
 * Said once, by process 0. */
static void warn_bound(long long threads)
{
    cpu_set_t set;
    if (threads < 2 || sched_getaffinity(0, sizeof set, &set) != 0)
        return;
    const int cpus = CPU_COUNT(&set);
    if (cpus < threads)
        fprintf(stderr,
                "nnplug: warning: --threads %lld, but this process may run on %d CPU%s only "
                "(mpirun binds processes to cores: start it with --bind-to none, or "
                "--map-by slot:PE=%lld)\n",
                threads, cpus, cpus == 1 ? "" : "s", threads);
}

int cmd_train(int argc, char **argv)
{
    train_args a;
    int rc = parse_train_args(argc, argv, &a);
    if (rc != TRAIN_GO)
        return rc;
    nnp_error err = {0};
    nnp_loss loss;
    if (nnp_loss_parse(a.loss_name, a.from_logits, &loss, &err))
        return cli_fail(&err);
    nnp_optimizer_config oc;
    if (optimizer_config(&a, &oc))
        return CLI_EXIT_USAGE;
    if (a.threads > 0)
        nnp_set_num_threads((int)a.threads);

    train_run r = {0};
    rc = CLI_EXIT_OK;
    /* under mpirun: data-parallel over the processes it started */
    nnp_status st = nnp_group_world(&r.g, &err);
    if (!st && r.g && nnp_group_rank(r.g) == 0)
        warn_bound(a.threads);
    if (!st)
        st = load_training(&a, &r, &err);
    if (!st)
        st = nnp_optimizer_new(&oc, r.m, &r.opt, &err);
    if (!st)
        st = fit(&a, &loss, &oc, &r, &err);
    if (st && nnp_group_rank(r.g) != 0)
        nnp_error_prefix(&err, "process %d of %d", nnp_group_rank(r.g), nnp_group_size(r.g));
    if (st)
        rc = cli_fail(&err);
    else if (r.h.stop_epoch >= 0)
        rc = nnp_group_rank(r.g) == 0 ? report_stop(&a, &r) : CLI_EXIT_FAIL;
    train_run_free(&r);
    return rc;
}
