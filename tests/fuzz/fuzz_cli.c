/* libFuzzer harness for the command line: an input is a command line, one
 * argument per line ('\n' or NUL separated), run in-process by cli_main in
 * a scratch folder holding small models and data:
 *
 *   m.json spirals (Dense + BN + ReLU)   x.npy, y.npy   32 rows for it
 *   c.json CNN, channels_last            cx.npy, cy.npy
 *   m.onnx MLP + BN (opset 15)           mx.npy, my.npy
 *   c.onnx CNN, channels_first           fx.npy
 *   t.json TimeDistributed(BN)           tx.npy, ty.npy
 *
 * What must hold for every command line: the exit code is 0, 1 or 2; no
 * temporary file (NAME.tmp.XXXXXX) is left; a command that refuses its
 * input (exit 2) creates no file or folder. Outside the harness's reach,
 * so left out rather than run: paths with '/' or "..", names with ".tmp."
 * (the temporary files' mark), --max-memory (it
 * lifts the budget that bounds what a command may allocate), numbers above
 * 12 (epochs, repetitions, threads, shapes stay small enough to run
 * thousands of command lines) and `demo` other than its --help (its
 * training is fixed and long). Built by tests/fuzz/run.sh with the CLI's
 * sources and every plugin (NNP_FUZZ_PLUGIN_DIR); the fixtures come from
 * the repository's models/ (NNP_FUZZ_MODELS). */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "nnplug/nnplug.h"

#define MAX_ARGS 16
#define MAX_ARG_LEN 64
#define MAX_ENTRIES 256

static char workdir[64];
static nnp_registry *keep;   /* holds the plugins loaded: cli_main's registries come and go */

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_cli: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void copy_file(const char *from, const char *to)
{
    char *data;
    size_t len;
    nnp_error err = {0};
    if (nnp_read_file(from, &data, &len, &err) != NNP_OK ||
        nnp_write_file_atomic(to, data, len, &err) != NNP_OK)
        die("fixture", err.msg);
    free(data);
}

/* The first `rows` rows of an .npy file (all when it has fewer). */
static void copy_rows(const char *from, const char *to, int64_t rows)
{
    nnp_tensor t, head;
    nnp_error err = {0};
    if (nnp_npy_read(from, &t, &err) != NNP_OK)
        die("fixture", err.msg);
    nnp_shape s = t.shape;
    if (s.rank > 0 && s.dims[0] > rows)
        s.dims[0] = rows;
    if (nnp_tensor_wrap(&head, t.dtype, &s, t.data, &err) != NNP_OK ||
        nnp_npy_write(to, &head, &err) != NNP_OK)
        die("fixture", err.msg);
    nnp_tensor_free(&t);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *plugins = getenv("NNP_FUZZ_PLUGIN_DIR");
    const char *models = getenv("NNP_FUZZ_MODELS");
    nnp_error err = {0};
    if (!plugins || !models)
        die("setup", "NNP_FUZZ_PLUGIN_DIR and NNP_FUZZ_MODELS must be set");
    if (nnp_registry_new(&keep, &err) != NNP_OK ||
        nnp_registry_load_dir(keep, plugins, &err) != NNP_OK)
        die("setup", err.msg);
    setenv("NNP_PLUGIN_PATH", plugins, 1);
    setenv("NNP_NO_DEFAULT_PLUGINS", "1", 1);
    snprintf(workdir, sizeof workdir, "/tmp/nnplug-fuzz-cli-XXXXXX");
    if (!mkdtemp(workdir) || chdir(workdir) != 0)
        die("setup", "cannot make a scratch folder");
    static const char *const files[][2] = {
        {"spirals.json", "m.json"},
        {"cnn_channels_last.json", "c.json"},
        {"mlp_bn_opset15.onnx", "m.onnx"},
        {"cnn_channels_first.onnx", "c.onnx"},
        {"seq_time_distributed.json", "t.json"},
    };
    static const char *const data[][2] = {
        {"spirals_x.npy", "x.npy"},          {"spirals_y.npy", "y.npy"},
        {"cnn_channels_last_x.npy", "cx.npy"}, {"cnn_y.npy", "cy.npy"},
        {"mlp_x.npy", "mx.npy"},             {"mlp_y.npy", "my.npy"},
        {"cnn_channels_first_x.npy", "fx.npy"}, {"seq_x.npy", "tx.npy"},
        {"seq_y.npy", "ty.npy"},
    };
    char path[4096];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", models, files[i][0]);
        copy_file(path, files[i][1]);
    }
    for (size_t i = 0; i < sizeof data / sizeof data[0]; i++) {
        snprintf(path, sizeof path, "%s/data/%s", models, data[i][0]);
        copy_rows(path, data[i][1], 32);
    }
    return 0;
}

/* The paths under dir (relative, one level of folders below it), sorted. */
typedef struct listing {
    int n;
    char name[MAX_ENTRIES][128];
} listing;

static int by_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void list_into(listing *l, const char *dir, const char *prefix, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (l->n == MAX_ENTRIES)
            break;
        snprintf(l->name[l->n], sizeof l->name[0], "%s%s", prefix, e->d_name);
        if (strstr(e->d_name, ".tmp."))
            die("a temporary file was left behind", l->name[l->n]);
        l->n++;
        char sub[512], subprefix[256];
        struct stat sb;
        snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        if (depth > 0 && lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            snprintf(subprefix, sizeof subprefix, "%s%s/", prefix, e->d_name);
            list_into(l, sub, subprefix, depth - 1);
        }
    }
    closedir(d);
}

static void list(listing *l)
{
    l->n = 0;
    list_into(l, ".", "", 2);
    qsort(l->name, (size_t)l->n, sizeof l->name[0], by_name);
}

static int listed(const listing *l, const char *name)
{
    return bsearch(name, l->name, (size_t)l->n, sizeof l->name[0], by_name) != NULL;
}

/* Removes what a command created: deepest paths first. */
static void clean(const listing *before, const listing *after)
{
    for (int i = after->n - 1; i >= 0; i--)
        if (!listed(before, after->name[i]) && remove(after->name[i]) != 0) {
            char cmd[300];
            snprintf(cmd, sizeof cmd, "rm -rf './%s'", after->name[i]);
            if (system(cmd) != 0)
                die("cannot clean up", after->name[i]);
        }
}

/* Command lines the harness leaves out (see the top of the file). */
static int out_of_reach(int argc, char **argv)
{
    int help = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strchr(a, '/') || strstr(a, "..") || strstr(a, ".tmp.") ||
            strncmp(a, "--max-memory", 12) == 0)
            return 1;
        help |= cli_is_help(a);
        char piece[MAX_ARG_LEN + 1];
        snprintf(piece, sizeof piece, "%s", a);
        for (char *save = NULL, *p = strtok_r(piece, ",=x:", &save); p;
             p = strtok_r(NULL, ",=x:", &save)) {
            char *end;
            double v = strtod(p, &end);
            if (end != p && isfinite(v) && fabs(v) > 12)
                return 1;
        }
    }
    return argc > 1 && strcmp(argv[1], "demo") == 0 && !help;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[MAX_ARGS * (MAX_ARG_LEN + 1)];
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = "nnplug";
    size_t pos = 0, at = 0;
    while (pos < size) {
        size_t len = 0;
        while (pos + len < size && data[pos + len] != '\n' && data[pos + len] != '\0')
            len++;
        if (argc == MAX_ARGS + 1 || len > MAX_ARG_LEN)
            return 0;
        memcpy(buf + at, data + pos, len);
        buf[at + len] = '\0';
        argv[argc++] = buf + at;
        at += len + 1;
        pos += len + 1;
    }
    argv[argc] = NULL;
    if (out_of_reach(argc, argv))
        return 0;
    static listing before, after;
    list(&before);
    nnp_set_memory_budget((size_t)256 << 20);
    nnp_set_num_threads(1);
    int rc = cli_main(argc, argv);
    if (rc < 0 || rc > 2) {
        char code[32];
        snprintf(code, sizeof code, "%d", rc);
        die("exit code out of 0-2", code);
    }
    list(&after);
    if (rc == 2)
        for (int i = 0; i < after.n; i++)
            if (!listed(&before, after.name[i]))
                die("a refused command line left a file or folder", after.name[i]);
    clean(&before, &after);
    return 0;
}
