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
    "Runs MODEL (.onnx or Keras .json) forward on the given inputs and writes one\n"
    ".npy per graph output: -o names each file, --out-dir writes DIR/OUTPUT.npy.\n"
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
    split_named(arg, &name, &path);
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
    if (!nn || !nt) {
        free(name);
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    }
    nnp_status st = nnp_npy_read_f32(path, &f->t[f->n], err);
    if (st) {
        free(name);
        return st;
    }
    f->names[f->n++] = name;
    return NNP_OK;
}

void cli_feeds_free(cli_feeds *f)
{
    for (int i = 0; i < f->n; i++) {
        free(f->names[i]);
        nnp_tensor_free(&f->t[i]);
    }
    free(f->names);
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

int cmd_run(int argc, char **argv)
{
    const char *model_path = NULL, *out_dir = NULL;
    const char **outs = NULL;
    int n_outs = 0, training = 0, threads = 0, rc = CLI_EXIT_USAGE;
    cli_feeds feeds = {0};
    nnp_registry *reg = NULL;
    nnp_model *m = NULL;
    nnp_error err = {0};
    char **written = NULL;
    int n_written = 0, made_dir = 0;
    outs = calloc((size_t)argc + 1, sizeof *outs);
    if (!outs) {
        cli_error("out of memory");
        rc = CLI_EXIT_FAIL;
        goto done;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(run_usage, stdout);
            rc = CLI_EXIT_OK;
            goto done;
        } else if (strcmp(a, "--training") == 0) {
            training = 1;
        } else if ((strcmp(a, "-i") == 0 || strcmp(a, "--input") == 0) && i + 1 < argc) {
            if (cli_feeds_add(&feeds, argv[++i], &err)) {
                rc = cli_fail(&err);
                goto done;
            }
        } else if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && i + 1 < argc) {
            outs[n_outs++] = argv[++i];
        } else if (strcmp(a, "--out-dir") == 0 && i + 1 < argc) {
            out_dir = argv[++i];
        } else if (strcmp(a, "--threads") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 4096) {
                cli_error("run: --threads needs a positive integer, got '%s'", argv[i]);
                goto done;
            }
            threads = (int)v;
        } else if (a[0] == '-' && a[1]) {
            cli_error("run: unknown or incomplete option '%s' (see nnplug run --help)", a);
            goto done;
        } else if (!model_path) {
            model_path = a;
        } else {
            cli_error("run: unexpected argument '%s' (see nnplug run --help)", a);
            goto done;
        }
    }
    if (!model_path) {
        cli_error("run: no MODEL given (see nnplug run --help)");
        goto done;
    }
    if (n_outs && out_dir) {
        cli_error("run: give either -o NAME=FILE.npy or --out-dir DIR, not both");
        goto done;
    }
    if (cli_load_registry(&reg, &err) ||
        cli_load_model_fed(reg, model_path, &feeds, 0, &m, &err)) {
        rc = cli_fail(&err);
        goto done;
    }

    /* every input fed once; every named feed an input or a bound parameter */
    int ni = nnp_model_n_inputs(m);
    const nnp_tensor **in = calloc((size_t)(ni ? ni : 1), sizeof *in);
    if (!in) {
        cli_error("out of memory");
        rc = CLI_EXIT_FAIL;
        goto done;
    }
    for (int f = 0; f < feeds.n; f++) {
        int k = -1;
        if (!feeds.names[f]) {
            if (ni != 1) {
                cli_error("%s: -i FILE.npy without a NAME= needs a model with exactly one input "
                          "(this one has %d)", model_path, ni);
                free(in);
                goto done;
            }
            k = 0;
        } else {
            for (int i = 0; i < ni && k < 0; i++)
                if (strcmp(nnp_model_value_name(m, nnp_model_input_value(m, i)),
                           feeds.names[f]) == 0)
                    k = i;
            if (k < 0 && cli_is_parameter_input(m, feeds.names[f]))
                continue;
        }
        if (k < 0) {
            char list[512] = "";
            size_t at = 0;
            for (int i = 0; i < ni && at < sizeof list - 4; i++)
                at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", i ? ", " : "",
                                       nnp_model_value_name(m, nnp_model_input_value(m, i)));
            cli_error("%s: the model has no input '%s' (inputs: %s)", model_path, feeds.names[f],
                      ni ? list : "none");
            free(in);
            goto done;
        }
        if (in[k]) {
            cli_error("%s: input '%s' is given twice", model_path,
                      nnp_model_value_name(m, nnp_model_input_value(m, k)));
            free(in);
            goto done;
        }
        in[k] = &feeds.t[f];
    }
    for (int i = 0; i < ni; i++)
        if (!in[i]) {
            const char *name = nnp_model_value_name(m, nnp_model_input_value(m, i));
            cli_error("%s: input '%s' is not given (-i %s=FILE.npy)", model_path, name, name);
            free(in);
            goto done;
        }

    /* -o names must be outputs (checked before running) */
    int no = nnp_model_n_outputs(m);
    int *out_of = calloc((size_t)(n_outs ? n_outs : 1), sizeof(int));
    if (!out_of) {
        free(in);
        rc = CLI_EXIT_FAIL;
        goto done;
    }
    for (int k = 0; k < n_outs; k++) {
        char *name;
        const char *path;
        split_named(outs[k], &name, &path);
        out_of[k] = -1;
        if (!name && no == 1)
            out_of[k] = 0;
        for (int i = 0; name && i < no; i++)
            if (strcmp(nnp_model_value_name(m, nnp_model_output_value(m, i)), name) == 0)
                out_of[k] = i;
        if (out_of[k] < 0) {
            cli_error("%s: -o %s: %s", model_path, outs[k],
                      name ? "the model has no output of that name"
                           : "give NAME=FILE.npy (the model has several outputs)");
            free(name);
            free(in);
            free(out_of);
            goto done;
        }
        free(name);
        outs[k] = path;
    }

    if (threads)
        nnp_set_num_threads(threads);
    nnp_status st = nnp_model_forward(m, in, ni, training ? NNP_MODE_TRAIN : NNP_MODE_INFER, &err);
    free(in);
    if (st) {
        free(out_of);
        rc = cli_fail(&err);
        goto done;
    }

    rc = CLI_EXIT_OK;
    if (!n_outs && !out_dir) {
        for (int i = 0; i < no; i++)
            summarize(nnp_model_value_name(m, nnp_model_output_value(m, i)),
                      nnp_model_output(m, i));
        free(out_of);
        goto done;
    }
    if (out_dir) {
        struct stat sb;
        if (stat(out_dir, &sb) != 0) {
            if (mkdir(out_dir, 0777) != 0) {
                cli_error("%s: cannot create directory: %s", out_dir, strerror(errno));
                rc = CLI_EXIT_FAIL;
                free(out_of);
                goto done;
            }
            made_dir = 1;
        } else if (!S_ISDIR(sb.st_mode)) {
            cli_error("%s: not a directory", out_dir);
            rc = CLI_EXIT_USAGE;
            free(out_of);
            goto done;
        }
    }
    int n_files = out_dir ? no : n_outs;
    written = calloc((size_t)n_files + 1, sizeof *written);
    if (!written) {
        cli_error("out of memory");
        rc = CLI_EXIT_FAIL;
        free(out_of);
        goto done;
    }
    for (int k = 0; k < n_files; k++) {
        int oi = out_dir ? k : out_of[k];
        const char *name = nnp_model_value_name(m, nnp_model_output_value(m, oi));
        char *path;
        if (out_dir) {
            char fn[600];
            file_name_of(name, fn, sizeof fn);
            size_t need = strlen(out_dir) + strlen(fn) + 2;
            path = malloc(need);
            if (path)
                snprintf(path, need, "%s/%s", out_dir, fn);
        } else {
            path = strdup(outs[k]);
        }
        if (!path) {
            cli_error("out of memory");
            rc = CLI_EXIT_FAIL;
            break;
        }
        for (int j = 0; j < n_written; j++)
            if (strcmp(written[j], path) == 0) {
                cli_error("%s: two outputs would be written to %s", model_path, path);
                rc = CLI_EXIT_USAGE;
            }
        if (rc == CLI_EXIT_OK && nnp_npy_write(path, nnp_model_output(m, oi), &err)) {
            cli_error("%s", err.msg);
            rc = CLI_EXIT_FAIL;
        }
        if (rc != CLI_EXIT_OK) {
            free(path);
            break;
        }
        written[n_written++] = path;
    }
    free(out_of);
    if (rc != CLI_EXIT_OK) {
        /* no partial results: remove what this run wrote */
        for (int j = 0; j < n_written; j++)
            unlink(written[j]);
        if (made_dir)
            rmdir(out_dir);
    }

done:
    for (int j = 0; written && j < n_written; j++)
        free(written[j]);
    free(written);
    free(outs);
    cli_feeds_free(&feeds);
    nnp_model_free(m);
    nnp_registry_free(reg);
    return rc;
}
