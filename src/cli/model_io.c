/* Model files for the commands: .onnx, or a Keras model (.keras archive,
 * legacy .h5 / .hdf5, Keras-style .json), by extension. */
#include "cli/cli.h"
#include "nnplug/onnx.h"

#include <string.h>

int cli_has_ext(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n > e && strcmp(path + n - e, ext) == 0;
}

int cli_is_keras_file(const char *path)
{
    return cli_has_ext(path, ".json") || cli_has_ext(path, ".keras") || cli_has_ext(path, ".h5") ||
           cli_has_ext(path, ".hdf5");
}

nnp_status cli_load_model(const nnp_registry *reg, const char *path, nnp_model **out,
                          nnp_error *err)
{
    if (cli_is_keras_file(path))
        return nnp_keras_load(reg, path, out, err);
    if (cli_has_ext(path, ".onnx"))
        return nnp_onnx_load(reg, path, NULL, out, err);
    return nnp_error_set(err, NNP_ERR_INVALID, "%s: unknown model format (expected .onnx, .keras, "
                         ".h5 or .json)", path);
}

nnp_status cli_save_model(const nnp_model *m, const char *path, int opset, nnp_error *err)
{
    if (cli_has_ext(path, ".json"))
        return nnp_keras_save(m, path, err);
    if (cli_has_ext(path, ".keras"))
        return nnp_keras_save_archive(m, path, err);
    if (cli_has_ext(path, ".onnx"))
        return nnp_onnx_save(m, path, opset, err);
    if (cli_has_ext(path, ".h5") || cli_has_ext(path, ".hdf5"))
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "%s: nnplug reads legacy .h5 models but "
                             "writes Keras 3 .keras archives: save as .keras", path);
    return nnp_error_set(err, NNP_ERR_INVALID, "%s: unknown model format (expected .onnx, .keras "
                         "or .json)", path);
}
