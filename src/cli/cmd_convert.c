/* nnplug convert IN OUT [--opset N] [--fold-bn] [-i NAME=FILE.npy ...]:
 * between .onnx and Keras models (.keras with weights, .json without; .h5
 * read only), either way, or .onnx to .onnx at another opset, or an
 * inference export with BatchNormalization folded. */
#include "cli/cli.h"
#include "nnplug/onnx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char convert_usage[] =
    "usage: nnplug convert IN OUT [--opset N] [--fold-bn] [-i NAME=FILE.npy ...]\n"
    "Converts a model between ONNX (.onnx) and Keras: .keras archives (config and\n"
    "weights), legacy .h5 models (read only) and Keras-style JSON (.json, the\n"
    "config alone); the format of each file comes from its extension. OUT is\n"
    "written atomically: on failure an existing OUT is left untouched.\n"
    "  --opset N          ONNX opset to write, 9 to 17 (default 15)\n"
    "  --fold-bn          .onnx for inference: BatchNormalization folded into the\n"
    "                     Conv before it (weights and bias), its node left out,\n"
    "                     and no nnplug metadata (the default keeps every node)\n"
    "  -i NAME=FILE.npy   value of an ONNX graph input that nodes read as a\n"
    "                     constant parameter (it becomes an initializer)\n";

int cmd_convert(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    int opset = 0, fold = 0, rc = CLI_EXIT_USAGE;
    cli_feeds feeds = {0};
    nnp_error err = {0};
    nnp_registry *reg = NULL;
    nnp_model *m = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(convert_usage, stdout);
            rc = CLI_EXIT_OK;
            goto done;
        } else if (strcmp(a, "--fold-bn") == 0) {
            fold = 1;
        } else if (strcmp(a, "--opset") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < NNP_ONNX_OPSET_MIN || v > NNP_ONNX_OPSET_MAX) {
                cli_error("convert: --opset must be %d to %d, got '%s'", NNP_ONNX_OPSET_MIN,
                          NNP_ONNX_OPSET_MAX, argv[i]);
                goto done;
            }
            opset = (int)v;
        } else if ((strcmp(a, "-i") == 0 || strcmp(a, "--input") == 0) && i + 1 < argc) {
            if (cli_feeds_add(&feeds, argv[++i], &err)) {
                rc = cli_fail(&err);
                goto done;
            }
        } else if (a[0] == '-' && a[1]) {
            cli_error("convert: unknown or incomplete option '%s' (see nnplug convert --help)", a);
            goto done;
        } else if (!in) {
            in = a;
        } else if (!out) {
            out = a;
        } else {
            cli_error("convert: unexpected argument '%s' (see nnplug convert --help)", a);
            goto done;
        }
    }
    if (!in || !out) {
        cli_error("convert: needs IN and OUT (see nnplug convert --help)");
        goto done;
    }
    for (int k = 0; k < 2; k++) {
        const char *p = k ? out : in;
        if (!cli_has_ext(p, ".onnx") && !cli_is_keras_file(p)) {
            cli_error("%s: unknown model format (expected .onnx, .keras, .h5 or .json)", p);
            goto done;
        }
    }
    if (cli_has_ext(out, ".h5") || cli_has_ext(out, ".hdf5")) {
        cli_error("%s: nnplug reads legacy .h5 models but writes Keras 3 .keras archives: "
                  "convert to .keras", out);
        goto done;
    }
    if ((opset || fold) && !cli_has_ext(out, ".onnx")) {
        cli_error("convert: %s applies to .onnx output only (%s)", fold ? "--fold-bn" : "--opset",
                  out);
        goto done;
    }
    for (int f = 0; f < feeds.n; f++)
        if (!feeds.names[f]) {
            cli_error("convert: -i needs NAME=FILE.npy");
            goto done;
        }
    if (cli_load_registry(&reg, &err) ||
        cli_load_model_fed(reg, in, &feeds, 0, &m, &err) ||
        (fold ? nnp_onnx_save_inference(m, out, opset, &err)
              : cli_save_model(m, out, opset, &err))) {
        rc = cli_fail(&err);
        goto done;
    }
    rc = CLI_EXIT_OK;
done:
    cli_feeds_free(&feeds);
    nnp_model_free(m);
    nnp_registry_free(reg);
    return rc;
}
