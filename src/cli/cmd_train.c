/* nnplug train MODEL --x X.npy --y Y.npy --save OUT [options] */
#include "cli/cli.h"
#include "cli/progress.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char train_usage[] =
    "usage: nnplug train MODEL --x X.npy --y Y.npy --save OUT.onnx|OUT.json\n"
    "         [--loss mse|categorical_crossentropy|sparse_categorical_crossentropy|"
    "binary_crossentropy]\n"
    "         [--from-logits] [--optimizer sgd|adam] [--lr F] [--momentum F] [--nesterov]\n"
    "         [--epochs N] [--batch-size N] [--no-shuffle] [--seed N] [--threads N]\n"
    "         [--validation-split F] [--opset N]\n"
    "Trains MODEL (.onnx or Keras .json) and saves it to --save after every epoch\n"
    "(atomically) and at the end.\n";

typedef struct train_ctx {
    progress prog;
    const nnp_model *m;
    const char *save;
    int opset;
} train_ctx;

static nnp_status on_epoch_end(void *user, const nnp_epoch_logs *logs, nnp_error *err)
{
    train_ctx *c = user;
    progress_on_epoch(&c->prog, logs);
    /* A checkpoint at every epoch end: an interrupted run keeps its last one. */
    return cli_save_model(c->m, c->save, c->opset, err);
}

static int parse_double(const char *opt, const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    if (end == s || *end) {
        cli_error("train: %s expects a number, got '%s'", opt, s);
        return -1;
    }
    return 0;
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

int cmd_train(int argc, char **argv)
{
    enum { O_X = 256, O_Y, O_SAVE, O_LOSS, O_LOGITS, O_OPT, O_LR, O_MOM, O_NEST, O_EPOCHS,
           O_BS, O_NOSHUF, O_SEED, O_THREADS, O_VAL, O_OPSET };
    static const struct option opts[] = {
        {"x", required_argument, 0, O_X}, {"y", required_argument, 0, O_Y},
        {"save", required_argument, 0, O_SAVE}, {"loss", required_argument, 0, O_LOSS},
        {"from-logits", no_argument, 0, O_LOGITS}, {"optimizer", required_argument, 0, O_OPT},
        {"lr", required_argument, 0, O_LR}, {"momentum", required_argument, 0, O_MOM},
        {"nesterov", no_argument, 0, O_NEST}, {"epochs", required_argument, 0, O_EPOCHS},
        {"batch-size", required_argument, 0, O_BS}, {"no-shuffle", no_argument, 0, O_NOSHUF},
        {"seed", required_argument, 0, O_SEED}, {"threads", required_argument, 0, O_THREADS},
        {"validation-split", required_argument, 0, O_VAL}, {"opset", required_argument, 0, O_OPSET},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *xpath = NULL, *ypath = NULL, *save = NULL, *loss_name = "mse", *opt_name = "sgd";
    double lr = -1, momentum = 0, val = 0;
    long long epochs = 1, bs = 32, seed = 0, threads = 0, opset = 0;
    int from_logits = 0, nesterov = 0, shuffle = 1, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case O_X: xpath = optarg; break;
        case O_Y: ypath = optarg; break;
        case O_SAVE: save = optarg; break;
        case O_LOSS: loss_name = optarg; break;
        case O_LOGITS: from_logits = 1; break;
        case O_OPT: opt_name = optarg; break;
        case O_LR: bad = parse_double("--lr", optarg, &lr); break;
        case O_MOM: bad = parse_double("--momentum", optarg, &momentum); break;
        case O_NEST: nesterov = 1; break;
        case O_EPOCHS: bad = parse_long("--epochs", optarg, 0, &epochs); break;
        case O_BS: bad = parse_long("--batch-size", optarg, 1, &bs); break;
        case O_NOSHUF: shuffle = 0; break;
        case O_SEED: bad = parse_long("--seed", optarg, 0, &seed); break;
        case O_THREADS: bad = parse_long("--threads", optarg, 1, &threads); break;
        case O_VAL: bad = parse_double("--validation-split", optarg, &val); break;
        case O_OPSET: bad = parse_long("--opset", optarg, 0, &opset); break;
        case 'h': fputs(train_usage, stdout); return CLI_EXIT_OK;
        default:
            cli_error("train: unknown or incomplete option '%s'", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
        if (bad)
            return CLI_EXIT_USAGE;
    }
    if (optind != argc - 1 || !xpath || !ypath || !save) {
        cli_error("train: needs MODEL, --x, --y and --save (see nnplug train --help)");
        return CLI_EXIT_USAGE;
    }
    nnp_error err = {0};
    nnp_loss loss;
    if (nnp_loss_parse(loss_name, from_logits, &loss, &err))
        return cli_fail(&err);
    nnp_optimizer_config oc;
    if (strcmp(opt_name, "sgd") == 0)
        oc = nnp_optimizer_defaults(NNP_OPT_SGD);
    else if (strcmp(opt_name, "adam") == 0)
        oc = nnp_optimizer_defaults(NNP_OPT_ADAM);
    else {
        cli_error("train: unknown optimizer '%s' (sgd, adam)", opt_name);
        return CLI_EXIT_USAGE;
    }
    if (lr >= 0)
        oc.learning_rate = lr;
    oc.momentum = momentum;
    oc.nesterov = nesterov;
    if (threads > 0)
        nnp_set_num_threads((int)threads);

    nnp_registry *reg = NULL;
    nnp_model *m = NULL;
    nnp_optimizer *opt = NULL;
    nnp_tensor x = {0}, y = {0};
    nnp_history h = {0};
    int rc = CLI_EXIT_OK;
    nnp_status st = cli_load_registry(&reg, &err);
    if (!st)
        st = cli_load_model(reg, argv[optind], &m, &err);
    if (!st)
        st = nnp_npy_read_f32(xpath, &x, &err);
    if (!st)
        st = nnp_npy_read(ypath, &y, &err);
    if (!st)
        st = nnp_optimizer_new(&oc, m, &opt, &err);
    if (!st) {
        train_ctx ctx = {.m = m, .save = save, .opset = (int)opset};
        progress_init(&ctx.prog, stderr);
        ctx.prog.epochs = (int)epochs;
        nnp_train_options to = nnp_train_defaults();
        to.epochs = (int)epochs;
        to.batch_size = bs;
        to.shuffle = shuffle;
        to.seed = (uint64_t)seed;
        to.validation_split = val;
        nnp_train_callbacks cb = {&ctx, progress_on_step, on_epoch_end};
        st = nnp_model_fit(m, &x, &y, &loss, opt, &to, &cb, &h, &err);
        if (!st && epochs == 0)
            st = cli_save_model(m, save, (int)opset, &err);
    }
    if (st)
        rc = cli_fail(&err);
    nnp_history_free(&h);
    nnp_optimizer_free(opt);
    nnp_tensor_free(&x);
    nnp_tensor_free(&y);
    nnp_model_free(m);
    nnp_registry_free(reg);
    return rc;
}
