/* libFuzzer harness for the ONNX importer (and, on what it accepts, the
 * exporter and a forward pass).
 *
 *   tests/fuzz/run.sh      builds it and every plugin (instrumented, as .so
 *                          files loaded from NNP_FUZZ_PLUGIN_DIR) with clang
 *   cmake -DNNP_FUZZ=ON -DCMAKE_C_COMPILER=clang
 *                          target fuzz_onnx_import, with the BatchNormalization
 *                          plugin linked in (NNP_FUZZ_BUILTIN_BN)
 *
 * Every input must give NNP_OK or an error with a message; anything else
 * (crash, sanitizer report, leak, timeout, out-of-memory) is a finding. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnplug/nnplug.h"
#include "nnplug/onnx.h"
#include "fuzz_util.h"

static nnp_registry *reg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    nnp_error err = {0};
    if (nnp_registry_new(&reg, &err) != NNP_OK) {
        fprintf(stderr, "fuzz_onnx_import: setup failed: %s\n", err.msg);
        abort();
    }
#ifdef NNP_FUZZ_BUILTIN_BN
    if (nnp_registry_add(reg, nnp_plugin_entry(nnp_host_services()), "builtin", &err) != NNP_OK) {
        fprintf(stderr, "fuzz_onnx_import: setup failed: %s\n", err.msg);
        abort();
    }
#endif
    const char *dir = getenv("NNP_FUZZ_PLUGIN_DIR");
    if (dir && nnp_registry_load_dir(reg, dir, &err) != NNP_OK) {
        fprintf(stderr, "fuzz_onnx_import: %s\n", err.msg);
        abort();
    }
    for (int i = 0; i < nnp_registry_n_failures(reg); i++)
        fprintf(stderr, "fuzz_onnx_import: plugin failed: %s\n", nnp_registry_failure(reg, i));
    if (nnp_registry_n_kinds(reg) == 0 || nnp_registry_n_failures(reg) > 0) {
        fprintf(stderr, "fuzz_onnx_import: no usable plugins (set NNP_FUZZ_PLUGIN_DIR)\n");
        abort();
    }
    char *names = nnp_registry_kind_names(reg);
    fprintf(stderr, "fuzz_onnx_import: kinds: %s\n", names ? names : "?");
    free(names);
    nnp_set_num_threads(1);
    /* a model may ask for anything: the budget refuses it below libFuzzer's
       malloc limit and what the instrumented build handles in its time */
    nnp_set_memory_budget((size_t)64 << 20);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nnp_model *m = NULL;
    nnp_error err = {0};
    nnp_onnx_load_options o = {0};
    o.placeholder_parameters = 1;
    nnp_status st = nnp_onnx_load_buffer(reg, data, size, "fuzz", NULL, &o, &m, &err);
    if (st != NNP_OK) {
        if (m || !err.msg[0] || !strstr(err.msg, "fuzz"))
            abort();   /* an error must come alone, with a message naming the input */
        return 0;
    }
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (nnp_onnx_serialize(m, 0, &bytes, &len, &err) != NNP_OK) {
        try_forward(m);
        nnp_model_free(m);
        return 0;
    }
    /* what we write, we read: the original is freed first, so the copy gets
       the memory budget the original got */
    nnp_model_free(m);
    m = NULL;
    st = nnp_onnx_load_buffer(reg, bytes, len, "fuzz-export", NULL, NULL, &m, &err);
    free(bytes);
    if (st != NNP_OK) {
        fprintf(stderr, "fuzz_onnx_import: re-import of an export failed: %s\n", err.msg);
        abort();
    }
    try_forward(m);
    nnp_model_free(m);
    return 0;
}
