/* nnplug run MODEL -i [NAME=]FILE.npy ... [-o NAME=FILE.npy ... | --out-dir DIR]
 *            [--training] [--threads N]
 * Also the -i helpers `convert` shares. */
#include "cli/cli.h"
#include "nnplug/keras.h"
#include "nnplug/onnx.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char run_usage[] =
    "usage: nnplug run MODEL -i [NAME=]FILE.npy ... [-o NAME=FILE.npy ... | --out-dir DIR]\n"
    "                  [--training] [--threads N]\n"
    "Runs MODEL (.onnx, Keras .keras, .h5 or .json) forward on the given inputs and\n"
    "writes one .npy per graph output: -o names each file, --out-dir writes\n"
    "DIR/OUTPUT.npy.\n"
    "Without either, prints a summary of each output.\n"
    "  -i NAME=FILE.npy  feeds graph input NAME (also ONNX graph inputs that nodes\n"
    "                    read as constant parameters); -i FILE.npy feeds the only input\n"
    "  --training        runs every layer in training mode (batch statistics);\n"
    "                    otherwise each ONNX node's own training_mode decides\n"
    "  --threads N       threads for the kernels (default: all cores)\n";

/* ---- -i feeds ------------------------------------------------------------ */

/* "NAME=FILE" or "FILE": a name has no '/' and the part after '=' is non-empty. */
static void split_named(const char *arg, char **name, const char **path)
{
    const char *eq = strchr(arg, '=');
    *name = NULL;
    *path = arg;
    if (eq && eq != arg && eq[1] && !memchr(arg, '/', (size_t)(eq - arg))) {
        *name = strndup(arg, (size_t)(eq - arg));
        *path = eq + 1;
    }
}

nnp_status cli_feeds_add(cli_feeds *f, const char *arg, nnp_error *err)
{
    char *name;
    const char *path;
    if (!arg[0])
        return nnp_error_set(err, NNP_ERR_INVALID, "-i '': no file given");
    if (arg[0] == '=')
        return nnp_error_set(err, NNP_ERR_INVALID, "-i '%s': the input name before '=' is empty",
                             arg);
    split_named(arg, &name, &path);
    if (!name && arg[strlen(arg) - 1] == '=')
        return nnp_error_set(err, NNP_ERR_INVALID, "-i '%s': no file after '='", arg);
    for (int i = 0; name && i < f->n; i++)
        if (f->names[i] && strcmp(f->names[i], name) == 0) {
            nnp_status st = nnp_error_set(err, NNP_ERR_INVALID, "input '%s' is given twice", name);
            free(name);
            return st;
        }
    char **nn = realloc(f->names, sizeof *nn * (size_t)(f->n + 1));
    if (nn)
        f->names = nn;
    nnp_tensor *nt = realloc(f->t, sizeof *nt * (size_t)(f->n + 1));
    if (nt)
        f->t = nt;
    char **np = realloc(f->paths, sizeof *np * (size_t)(f->n + 1));
    if (np)
        f->paths = np;
    if (!nn || !nt || !np || !(f->paths[f->n] = strdup(path))) {
        free(name);
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    }
    nnp_status st = nnp_npy_read_f32(path, &f->t[f->n], err);
    if (st) {
        free(name);
        free(f->paths[f->n]);
        return st;
    }
    f->names[f->n++] = name;
    return NNP_OK;
}

void cli_feeds_free(cli_feeds *f)
{
    for (int i = 0; i < f->n; i++) {
        free(f->names[i]);
        free(f->paths[i]);
        nnp_tensor_free(&f->t[i]);
    }
    free(f->names);
    free(f->paths);
    free(f->t);
    memset(f, 0, sizeof *f);
}

nnp_status cli_load_model_fed(const nnp_registry *reg, const char *path, const cli_feeds *f,
                              int placeholders, nnp_model **out, nnp_error *err)
{
    if (!cli_has_ext(path, ".onnx"))
        return cli_load_model(reg, path, out, err);
    nnp_onnx_binding *b = calloc((size_t)(f && f->n ? f->n : 1), sizeof *b);
    if (!b)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    int n = 0;
    for (int i = 0; f && i < f->n; i++)
        if (f->names[i]) {
            b[n].name = f->names[i];
            b[n++].value = &f->t[i];
        }
    nnp_onnx_load_options o = {0};
    o.bindings = b;
    o.n_bindings = n;
    o.input_hints = b;
    o.n_input_hints = n;
    o.placeholder_parameters = placeholders;
    nnp_status st = nnp_onnx_load(reg, path, &o, out, err);
    free(b);
    return st;
}

int cli_is_parameter_input(const nnp_model *m, const char *name)
{
    const char *meta = nnp_model_get_meta(m, NNP_ONNX_META_IMPORT);
    json_t *j = meta ? json_loads(meta, 0, NULL) : NULL;
    const json_t *p = json_object_get(j, "parameter_inputs");
    int found = 0;
    for (size_t i = 0; i < json_array_size(p) && !found; i++) {
        const char *s = json_string_value(json_array_get(p, i));
        found = s && strcmp(s, name) == 0;
    }
    json_decref(j);
    return found;
}

/* ---- outputs ---------------------------------------------------------------- */

/* Output names become file names: anything but [A-Za-z0-9._-] turns into
 * '_', so a name can neither leave DIR nor hide as a dot file. */
static void file_name_of(const char *name, char *buf, size_t size)
{
    size_t k = 0;
    if (name[0] == '.' && k + 1 < size)
        buf[k++] = '_';
    for (const char *p = name; *p && k + 5 < size; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        buf[k++] = ok ? c : '_';
    }
    snprintf(buf + k, size - k, ".npy");
}

static void summarize(const char *name, const nnp_tensor *t)
{
    char sh[128];
    int64_t n = nnp_tensor_numel(t);
    const float *d = t->data;
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    for (int64_t i = 0; i < n; i++) {
        mn = d[i] < mn ? d[i] : mn;
        mx = d[i] > mx ? d[i] : mx;
        sum += d[i];
    }
    printf("%s  float32 %s  min %.6g  max %.6g  mean %.6g\n", name,
           nnp_shape_str(&t->shape, sh, sizeof sh), n ? mn : 0.0, n ? mx : 0.0,
           n ? sum / (double)n : 0.0);
}

/* ---- the command --------------------------------------------------------- */

/* What the command line asks for. */
typedef struct run_args {
    const char *model_path, *out_dir;
    const char **outs;   /* -o NAME=FILE.npy as given; the paths once matched */
    int n_outs, training, threads;
    cli_feeds feeds;
} run_args;

/* Returned by the steps below when the command goes on. */
#define RUN_GO (-1)

/* Reads the options into a (a->outs has room for argc entries). RUN_GO, or
 * the exit code: CLI_EXIT_OK after --help, else the error's. */
static int parse_run_args(int argc, char **argv, run_args *a, nnp_error *err)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (cli_is_help(arg)) {
            fputs(run_usage, stdout);
            return CLI_EXIT_OK;
        } else if (strcmp(arg, "--training") == 0) {
            a->training = 1;
        } else if ((strcmp(arg, "-i") == 0 || strcmp(arg, "--input") == 0) && i + 1 < argc) {
            if (cli_feeds_add(&a->feeds, argv[++i], err))
                return cli_fail(err);
        } else if ((strcmp(arg, "-o") == 0 || strcmp(arg, "--output") == 0) && i + 1 < argc) {
            const char *o = argv[++i], *eq = strchr(o, '=');
            if (!o[0] || (eq && !eq[1])) {
                cli_error("run: %s '%s': no file given", arg, o);
                return CLI_EXIT_USAGE;
            }
            a->outs[a->n_outs++] = o;
        } else if (strcmp(arg, "--out-dir") == 0 && i + 1 < argc) {
            a->out_dir = argv[++i];
            if (!a->out_dir[0]) {
                cli_error("run: --out-dir '': no folder given");
                return CLI_EXIT_USAGE;
            }
        } else if (strcmp(arg, "--threads") == 0 && i + 1 < argc) {
            if (cli_parse_threads("run", argv[++i], &a->threads))
                return CLI_EXIT_USAGE;
        } else if (arg[0] == '-' && arg[1]) {
            cli_error("run: unknown or incomplete option '%s' (see nnplug run --help)", arg);
            return CLI_EXIT_USAGE;
        } else if (!a->model_path) {
            a->model_path = arg;
        } else {
            cli_error("run: unexpected argument '%s' (see nnplug run --help)", arg);
            return CLI_EXIT_USAGE;
        }
    }
    if (!a->model_path) {
        cli_error("run: no MODEL given (see nnplug run --help)");
        return CLI_EXIT_USAGE;
    }
    if (a->n_outs && a->out_dir) {
        cli_error("run: give either -o NAME=FILE.npy or --out-dir DIR, not both");
        return CLI_EXIT_USAGE;
    }
    return RUN_GO;
}

/* The model input feed f goes to: its index, -2 for a bound parameter (fed
 * at load), -1 when the model has no such input (said on stderr). */
static int feed_target(const nnp_model *m, const run_args *a, int f)
{
    int ni = nnp_model_n_inputs(m), k = -1;
    const char *fname = a->feeds.names[f];
    if (!fname) {
        if (ni == 1)
            return 0;
        cli_error("%s: -i FILE.npy without a NAME= needs a model with exactly one input "
                  "(this one has %d)", a->model_path, ni);
        return -1;
    }
    for (int i = 0; i < ni && k < 0; i++)
        if (strcmp(nnp_model_value_name(m, nnp_model_input_value(m, i)), fname) == 0)
            k = i;
    if (k < 0 && cli_is_parameter_input(m, fname))
        return -2;
    if (k < 0) {
        char list[512] = "";
        size_t at = 0;
        for (int i = 0; i < ni && at < sizeof list - 4; i++)
            at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", i ? ", " : "",
                                   nnp_model_value_name(m, nnp_model_input_value(m, i)));
        cli_error("%s: the model has no input '%s' (inputs: %s)", a->model_path, fname,
                  ni ? list : "none");
    }
    return k;
}

/* Every input fed once; every named feed an input or a bound parameter.
 * in[i] gets the tensor for input i. RUN_GO or CLI_EXIT_USAGE. */
/* The file's shape against the input's declared one; 0 (said) when it does
 * not fit, naming the file. */
static int feed_fits(const nnp_model *m, int k, const cli_feeds *feeds, int f)
{
    const nnp_shape *want = nnp_model_value_shape(m, nnp_model_input_value(m, k));
    const nnp_shape *got = &feeds->t[f].shape;
    int ok = want->rank == got->rank;
    for (int d = 0; ok && d < want->rank; d++)
        ok = want->dims[d] < 0 || want->dims[d] == got->dims[d];
    if (!ok) {
        char a[160], b[160];
        const char *fixed = nnp_model_get_meta(m, NNP_MODEL_META_FIXED_BATCH);
        cli_error("%s: shape %s does not fit input '%s', which takes %s (? is any size)%s%s",
                  feeds->paths[f], nnp_shape_str(got, a, sizeof a),
                  nnp_model_value_name(m, nnp_model_input_value(m, k)),
                  nnp_shape_decl_str(want, b, sizeof b), fixed ? "; " : "", fixed ? fixed : "");
    }
    return ok;
}

static int match_feeds(const nnp_model *m, const run_args *a, const nnp_tensor **in)
{
    int ni = nnp_model_n_inputs(m);
    for (int f = 0; f < a->feeds.n; f++) {
        int k = feed_target(m, a, f);
        if (k == -2)
            continue;
        if (k < 0)
            return CLI_EXIT_USAGE;
        if (in[k]) {
            cli_error("%s: input '%s' is given twice", a->model_path,
                      nnp_model_value_name(m, nnp_model_input_value(m, k)));
            return CLI_EXIT_USAGE;
        }
        in[k] = &a->feeds.t[f];
        if (!feed_fits(m, k, &a->feeds, f))
            return CLI_EXIT_USAGE;
    }
    for (int i = 0; i < ni; i++)
        if (!in[i]) {
            const char *name = nnp_model_value_name(m, nnp_model_input_value(m, i));
            cli_error("%s: input '%s' is not given (-i %s=FILE.npy)", a->model_path, name, name);
            return CLI_EXIT_USAGE;
        }
    return RUN_GO;
}

/* -o names must be outputs (checked before running): out_of[k] gets the
 * output -o k writes, a->outs[k] its path. RUN_GO or CLI_EXIT_USAGE. */
static int match_outputs(const nnp_model *m, run_args *a, int *out_of)
{
    int no = nnp_model_n_outputs(m);
    for (int k = 0; k < a->n_outs; k++) {
        char *name;
        const char *path;
        split_named(a->outs[k], &name, &path);
        out_of[k] = -1;
        if (!name && no == 1)
            out_of[k] = 0;
        for (int i = 0; name && i < no; i++)
            if (strcmp(nnp_model_value_name(m, nnp_model_output_value(m, i)), name) == 0)
                out_of[k] = i;
        if (out_of[k] < 0) {
            cli_error("%s: -o %s: %s", a->model_path, a->outs[k],
                      name ? "the model has no output of that name"
                           : "give NAME=FILE.npy (the model has several outputs)");
            free(name);
            return CLI_EXIT_USAGE;
        }
        free(name);
        a->outs[k] = path;
    }
    return RUN_GO;
}

/* --out-dir: an existing directory, or one made here (*made_dir). RUN_GO
 * or the exit code. */
static int prepare_out_dir(const char *out_dir, int *made_dir)
{
    struct stat sb;
    if (stat(out_dir, &sb) != 0) {
        if (mkdir(out_dir, 0777) != 0) {
            cli_error("%s: cannot create directory: %s", out_dir, strerror(errno));
            return CLI_EXIT_FAIL;
        }
        *made_dir = 1;
    } else if (!S_ISDIR(sb.st_mode)) {
        cli_error("%s: not a directory", out_dir);
        return CLI_EXIT_USAGE;
    }
    return RUN_GO;
}

/* The file output k goes to (malloc'ed; NULL when out of memory). */
static char *output_path(const run_args *a, const char *name, int k)
{
    if (!a->out_dir)
        return strdup(a->outs[k]);
    char fn[600];
    file_name_of(name, fn, sizeof fn);
    size_t need = strlen(a->out_dir) + strlen(fn) + 2;
    char *path = malloc(need);
    if (path)
        snprintf(path, need, "%s/%s", a->out_dir, fn);
    return path;
}

/* Writes the outputs -o or --out-dir asks for; on failure removes what it
 * wrote (and the directory it made): no partial results. Exit code. */
static int write_outputs(const nnp_model *m, const run_args *a, const int *out_of,
                         int made_dir, nnp_error *err)
{
    int rc = CLI_EXIT_OK, n_written = 0;
    int n_files = a->out_dir ? nnp_model_n_outputs(m) : a->n_outs;
    char **written = calloc((size_t)n_files + 1, sizeof *written);
    if (!written) {
        cli_error("out of memory");
        return CLI_EXIT_FAIL;
    }
    for (int k = 0; k < n_files; k++) {
        int oi = a->out_dir ? k : out_of[k];
        char *path = output_path(a, nnp_model_value_name(m, nnp_model_output_value(m, oi)), k);
        if (!path) {
            cli_error("out of memory");
            rc = CLI_EXIT_FAIL;
            break;
        }
        for (int j = 0; j < n_written; j++)
            if (strcmp(written[j], path) == 0) {
                cli_error("%s: two outputs would be written to %s", a->model_path, path);
                rc = CLI_EXIT_USAGE;
            }
        if (rc == CLI_EXIT_OK && nnp_npy_write(path, nnp_model_output(m, oi), err)) {
            cli_error("%s", err->msg);
            rc = CLI_EXIT_FAIL;
        }
        if (rc != CLI_EXIT_OK) {
            free(path);
            break;
        }
        written[n_written++] = path;
    }
    if (rc != CLI_EXIT_OK) {
        for (int j = 0; j < n_written; j++)
            unlink(written[j]);
        if (made_dir)
            rmdir(a->out_dir);
    }
    for (int j = 0; j < n_written; j++)
        free(written[j]);
    free(written);
    return rc;
}

/* Feeds, runs and writes (or summarizes) the loaded model. Exit code. */
static int run_model(nnp_model *m, run_args *a, nnp_error *err)
{
    int ni = nnp_model_n_inputs(m), no = nnp_model_n_outputs(m);
    const nnp_tensor **in = calloc((size_t)(ni ? ni : 1), sizeof *in);
    if (!in) {
        cli_error("out of memory");
        return CLI_EXIT_FAIL;
    }
    int rc = match_feeds(m, a, in);
    if (rc != RUN_GO) {
        free(in);
        return rc;
    }
    int *out_of = calloc((size_t)(a->n_outs ? a->n_outs : 1), sizeof(int));
    rc = out_of ? match_outputs(m, a, out_of) : CLI_EXIT_FAIL;
    if (rc != RUN_GO) {
        free(in);
        free(out_of);
        return rc;
    }
    if (a->threads)
        nnp_set_num_threads(a->threads);
    nnp_status st =
        nnp_model_forward(m, in, ni, a->training ? NNP_MODE_TRAIN : NNP_MODE_INFER, err);
    free(in);
    if (st) {
        rc = cli_fail(err);
    } else if (!a->n_outs && !a->out_dir) {
        for (int i = 0; i < no; i++)
            summarize(nnp_model_value_name(m, nnp_model_output_value(m, i)),
                      nnp_model_output(m, i));
    } else {
        int made_dir = 0;
        rc = a->out_dir ? prepare_out_dir(a->out_dir, &made_dir) : RUN_GO;
        if (rc == RUN_GO)
            rc = write_outputs(m, a, out_of, made_dir, err);
    }
    free(out_of);
    return rc == RUN_GO ? CLI_EXIT_OK : rc;
}

int cmd_run(int argc, char **argv)
{
    run_args a = {0};
    nnp_registry *reg = NULL;
    nnp_model *m = NULL;
    nnp_error err = {0};
    int rc;
    a.outs = calloc((size_t)argc + 1, sizeof *a.outs);
    if (!a.outs) {
        cli_error("out of memory");
        rc = CLI_EXIT_FAIL;
    } else {
        rc = parse_run_args(argc, argv, &a, &err);
    }
    if (rc == RUN_GO && (cli_load_registry(&reg, &err) ||
                         cli_load_model_fed(reg, a.model_path, &a.feeds, 0, &m, &err)))
        rc = cli_fail(&err);
    if (rc == RUN_GO)
        rc = run_model(m, &a, &err);
    free(a.outs);
    cli_feeds_free(&a.feeds);
    nnp_model_free(m);
    nnp_registry_free(reg);
    return rc;
}
