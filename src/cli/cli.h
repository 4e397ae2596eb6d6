/* The nnplug command: shared helpers and the command functions. Only this
 * directory talks to the terminal. */
#ifndef NNP_CLI_H
#define NNP_CLI_H
#include "nnplug/nnplug.h"

/* A macro's value as a string literal. */
#define NNP_STR_(x) #x
#define NNP_STR(x) NNP_STR_(x)

/* Exit codes (DESIGN.md section 6). */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAIL = 1,    /* runtime failure */
    CLI_EXIT_USAGE = 2    /* bad usage or bad input */
};

/* A command: argv[0] is the command's name, options follow. Returns an exit
 * code; on failure it has printed one line to stderr. */
typedef int (*cli_fn)(int argc, char **argv);

typedef struct cli_command {
    const char *name;
    cli_fn run;
    const char *help;     /* one line for `nnplug --help` */
} cli_command;

/* An output file a command will write, checked before any work: not empty,
 * not a directory, in an existing directory it may write into. 0, or -1
 * after one line naming cmd, opt and path on stderr. */
int cli_check_output_path(const char *cmd, const char *opt, const char *path);

/* The whole command line: argv[0] is the program, argv[1] the command.
 * Returns the exit code. main() is this call alone (nnplug.c), so a test
 * can run command lines in-process. */
int cli_main(int argc, char **argv);

/* Commands (one file each). */
int cmd_plugins(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_docs(int argc, char **argv);

/* The document `nnplug plugins --json` prints (nnp_registry_schema_json over
 * cli_load_registry's kinds), parsed: a JSON array of kinds. Returns an exit
 * code; on success the caller json_decref's *out, on failure one line has
 * been printed. (cmd_plugins.c) */
struct json_t;
int cli_plugins_schema(struct json_t **out);

/* -i [NAME=]FILE.npy values (run, convert; cmd_run.c). names[i] is NULL for
 * an unnamed file; t[i] is float32. */
typedef struct cli_feeds {
    int n;
    char **names;
    char **paths;   /* the .npy each came from */
    nnp_tensor *t;
} cli_feeds;
/* Parses "NAME=FILE.npy" or "FILE.npy" and reads the file. */
nnp_status cli_feeds_add(cli_feeds *f, const char *arg, nnp_error *err);
void cli_feeds_free(cli_feeds *f);
/* cli_load_model, where for .onnx the named feeds bind graph inputs that
 * nodes read as constant parameters, and placeholders != 0 fills unbound
 * ones with zeros (inspection only). f may be NULL. */
nnp_status cli_load_model_fed(const nnp_registry *reg, const char *path, const cli_feeds *f,
                              int placeholders, nnp_model **out, nnp_error *err);
/* True when an imported ONNX graph input was bound as a constant parameter. */
int cli_is_parameter_input(const nnp_model *m, const char *name);

/* True when path ends in ext (".onnx") and has more before it. */
int cli_has_ext(const char *path, const char *ext);
/* True for the extensions of Keras models: .keras, .h5, .hdf5, .json. */
int cli_is_keras_file(const char *path);
/* Loads an .onnx or a Keras .keras / .h5 / .json model (by extension). */
nnp_status cli_load_model(const nnp_registry *reg, const char *path, nnp_model **out,
                          nnp_error *err);
/* Saves to .onnx (opset 0 = default), Keras .keras or .json, atomically. */
nnp_status cli_save_model(const nnp_model *m, const char *path, int opset, nnp_error *err);

/* "nnplug: <message>" on stderr. */
void cli_error(const char *fmt, ...) NNP_PRINTF(1, 2);
/* "nnplug: warning: <message>" on stderr. */
void cli_warn(const char *fmt, ...) NNP_PRINTF(1, 2);
/* Exit code for a failed library call: 1 for failures of the machine
 * (memory, internal errors), 2 for everything the input caused. */
int cli_exit_code(nnp_status s);
/* Prints err's message with cli_error and returns cli_exit_code(err->code). */
int cli_fail(const nnp_error *err);
/* True when arg is -h or --help. */
int cli_is_help(const char *arg);
/* --threads VAL of command cmd: an integer from 1 to CLI_MAX_THREADS, else
 * one error line and 1. */
#define CLI_MAX_THREADS 1024
int cli_parse_threads(const char *cmd, const char *val, int *out);

/* dir exists as a directory afterwards: made when missing (one level). */
nnp_status cli_make_dir(const char *dir, nnp_error *err);

/* The registry every command uses: NNP_PLUGIN_PATH and the installed plugin
 * directory (nnp_registry_load_default); or, when NNP_PLUGIN_PATH is unset
 * and the executable sits in a build tree (BUILD/bin/nnplug beside
 * BUILD/plugins), that tree's plugins instead of the installed ones. Plugins
 * that fail to load are printed as warnings and skipped. The caller frees
 * *out with nnp_registry_free. */
nnp_status cli_load_registry(nnp_registry **out, nnp_error *err);

#endif
