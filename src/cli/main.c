/* nnplug: command dispatch (cli_main), shared CLI helpers and plugin
 * discovery. */
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One line per command: adding a command is adding a row. */
static const cli_command commands[] = {
    {"plugins", cmd_plugins, "list layer kinds and their parameter schemas [--json]"},
    {"bench", cmd_bench, "time a layer kind or a model (median ms, GB/s, samples/s)"},
    {"train", cmd_train, "train a model on .npy data and save it"},
    {"demo", cmd_demo, "built-in data and model: train, save, reload, verify"},
    {"info", cmd_info, "inputs, outputs, nodes -> serving plugin, weight counts"},
    {"run", cmd_run, "run a model on .npy inputs, write .npy outputs"},
    {"convert", cmd_convert, "convert between .onnx and Keras .keras/.h5/.json [--opset N]"},
    {"docs", cmd_docs, "write a static HTML site: one card page per layer kind"},
};

#define N_COMMANDS ((int)(sizeof commands / sizeof commands[0]))

/* Length of the valid UTF-8 sequence at s (a multi-byte one), or 0. */
static int utf8_len(const unsigned char *s)
{
    int n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (s[0] >= 0xf8)
        return 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* One line on stderr; control bytes and bytes that are not UTF-8 (a file
 * name, a value from the command line) are written as \xNN. */
static void vmessage(const char *prefix, const char *fmt, va_list ap)
{
    char msg[2048], out[4 * sizeof msg];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)msg; *p;) {
        int n = *p >= 0x80 ? utf8_len(p) : 0;
        if (n) {
            memcpy(out + o, p, (size_t)n);
            o += (size_t)n;
            p += n;
        } else if (*p < 0x20 || *p >= 0x7f) {
            o += (size_t)snprintf(out + o, 5, "\\x%02x", *p++);
        } else {
            out[o++] = (char)*p++;
        }
    }
    out[o] = '\0';
    fprintf(stderr, "nnplug: %s%s\n", prefix, out);
}

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("", fmt, ap);
    va_end(ap);
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("warning: ", fmt, ap);
    va_end(ap);
}

int cli_exit_code(nnp_status s)
{
    switch (s) {
    case NNP_OK:
        return CLI_EXIT_OK;
    case NNP_ERR_NOMEM:
    case NNP_ERR_INTERNAL:
        return CLI_EXIT_FAIL;
    default:
        return CLI_EXIT_USAGE;
    }
}

int cli_fail(const nnp_error *err)
{
    cli_error("%s", err->msg);
    return cli_exit_code(err->code);
}

nnp_status cli_make_dir(const char *dir, nnp_error *err)
{
    struct stat sb;
    if (stat(dir, &sb) != 0 && mkdir(dir, 0777) != 0)
        return nnp_error_set(err, NNP_ERR_IO, "%s: cannot create directory: %s", dir,
                             strerror(errno));
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return nnp_error_set(err, NNP_ERR_IO, "%s: not a directory", dir);
    return NNP_OK;
}

int cli_check_output_path(const char *cmd, const char *opt, const char *path)
{
    if (!path[0]) {
        cli_error("%s: %s '': no path given", cmd, opt);
        return -1;
    }
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        cli_error("%s: %s %s: is a directory", cmd, opt, path);
        return -1;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        cli_error("%s: %s %s: %s is not a directory", cmd, opt, path, dir);
        return -1;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        cli_error("%s: %s %s: cannot write into %s", cmd, opt, path, dir);
        return -1;
    }
    return 0;
}

int cli_parse_threads(const char *cmd, const char *val, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (!*val || *end || errno || v < 1 || v > CLI_MAX_THREADS) {
        cli_error("%s: bad --threads '%s' (an integer from 1 to %d)", cmd, val, CLI_MAX_THREADS);
        return 1;
    }
    *out = (int)v;
    return 0;
}

int cli_is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

/* BUILD/plugins when this executable is BUILD/bin/nnplug, or NULL. A build
 * tree's command belongs with the plugins built beside it; an installed copy
 * elsewhere would only add stale duplicates. */
static char *build_tree_plugin_dir(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return NULL;
    size_t need = (size_t)(slash - exe) + sizeof "/../plugins";
    char *dir = malloc(need);
    struct stat sb;
    if (!dir)
        return NULL;
    snprintf(dir, need, "%.*s/../plugins", (int)(slash - exe), exe);
    char *real = realpath(dir, NULL);
    free(dir);
    if (real && stat(real, &sb) == 0 && S_ISDIR(sb.st_mode))
        return real;
    free(real);
    return NULL;
}

nnp_status cli_load_registry(nnp_registry **out, nnp_error *err)
{
    nnp_registry *reg;
    nnp_status st = nnp_registry_new(&reg, err);
    if (st)
        return st;
    const char *path = getenv("NNP_PLUGIN_PATH");
    char *build_dir = path && *path ? NULL : build_tree_plugin_dir();
    if (build_dir)
        st = nnp_registry_load_dir(reg, build_dir, err);
    else
        st = nnp_registry_load_default(reg, err);
    free(build_dir);
    if (st) {
        nnp_registry_free(reg);
        return st;
    }
    for (int i = 0; i < nnp_registry_n_failures(reg); i++)
        cli_warn("%s", nnp_registry_failure(reg, i));
    *out = reg;
    return NNP_OK;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: nnplug COMMAND [OPTIONS]\n"
               "       nnplug --help | --version\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n'nnplug COMMAND --help' describes a command's options.\n"
               "Plugins are loaded from NNP_PLUGIN_PATH (':'-separated directories)\n"
               "and the installed plugin directory %s\n"
               "(skipped when NNP_NO_DEFAULT_PLUGINS is set).\n",
            nnp_default_plugin_dir());
}

/* --max-memory SIZE (or --max-memory=SIZE), anywhere on the command line,
 * sets the memory budget and is taken out of argv. 0: ok, else exit code. */
static int take_max_memory(int *argc, char **argv)
{
    for (int i = 1; i < *argc; i++) {
        const char *v = NULL;
        int n = 0;
        if (strcmp(argv[i], "--max-memory") == 0) {
            v = i + 1 < *argc ? argv[i + 1] : "";
            n = 2;
        } else if (strncmp(argv[i], "--max-memory=", 13) == 0) {
            v = argv[i] + 13;
            n = 1;
        }
        if (!v)
            continue;
        size_t bytes = nnp_parse_bytes(v);
        if (!bytes) {
            cli_error("--max-memory expects a size in bytes (or with K, M, G or T), got '%s'",
                      v);
            return CLI_EXIT_USAGE;
        }
        nnp_set_memory_budget(bytes);
        memmove(&argv[i], &argv[i + n], sizeof *argv * (size_t)(*argc - i - n + 1));
        *argc -= n;
        i--;
    }
    return 0;
}

int cli_main(int argc, char **argv)
{
    int bad = take_max_memory(&argc, argv);
    if (bad)
        return bad;
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (cli_is_help(cmd) || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("nnplug %s (plugin ABI %d.%d; data-parallel training with MPI: %s; Keras "
               ".keras/.h5 files: %s)\n",
               NNP_VERSION_STRING, NNP_ABI_MAJOR, NNP_ABI_MINOR, nnp_mpi_built() ? "yes" : "no",
               nnp_keras_files_supported() ? "yes" : "no");
        return CLI_EXIT_OK;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    cli_error("unknown command '%s' (see nnplug --help)", cmd);
    return CLI_EXIT_USAGE;
}
