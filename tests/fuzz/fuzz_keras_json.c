/* libFuzzer harness for the Keras JSON loader: every input gives a model
 * or an error with a message; what it accepts is written back as Keras
 * JSON and read again, and run once on small inputs in both modes. Built
 * by tests/fuzz/run.sh, with every plugin (NNP_FUZZ_PLUGIN_DIR). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnplug/keras.h"
#include "nnplug/nnplug.h"
#include "nnplug/tensor.h"

static nnp_registry *reg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    nnp_error err = {0};
    const char *dir = getenv("NNP_FUZZ_PLUGIN_DIR");
    if (nnp_registry_new(&reg, &err) != NNP_OK || !dir ||
        nnp_registry_load_dir(reg, dir, &err) != NNP_OK || nnp_registry_n_kinds(reg) == 0) {
        fprintf(stderr, "fuzz_keras_json: setup failed (NNP_FUZZ_PLUGIN_DIR): %s\n", err.msg);
        abort();
    }
    nnp_set_num_threads(1);
    /* a model may ask for anything: the budget refuses it below libFuzzer's
       malloc limit */
    nnp_set_memory_budget((size_t)256 << 20);
    return 0;
}

/* One forward in each mode on zeros, when every input is small. */
static void try_forward(nnp_model *m)
{
    int n = nnp_model_n_inputs(m);
    if (n < 1 || n > 4)
        return;
    nnp_tensor t[4];
    const nnp_tensor *in[4];
    memset(t, 0, sizeof t);
    nnp_error err = {0};
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        nnp_shape s = *nnp_model_value_shape(m, nnp_model_input_value(m, i));
        int64_t numel = 1;
        for (int d = 0; d < s.rank && ok; d++) {
            if (s.dims[d] < 0)
                s.dims[d] = 2;
            ok = s.dims[d] <= 4096 && (numel *= s.dims[d] ? s.dims[d] : 1) <= 4096;
        }
        ok = ok && nnp_tensor_alloc(&t[i], NNP_F32, &s, &err) == NNP_OK;
        in[i] = &t[i];
    }
    if (ok)
        (void)nnp_model_forward(m, in, n, NNP_MODE_INFER, &err);
    if (ok)
        (void)nnp_model_forward(m, in, n, NNP_MODE_TRAIN, &err);
    for (int i = 0; i < n; i++)
        nnp_tensor_free(&t[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = malloc(size + 1);
    if (!json)
        return 0;
    memcpy(json, data, size);
    json[size] = '\0';
    nnp_model *m = NULL;
    nnp_error err = {0};
    nnp_status st = nnp_keras_load_string(reg, json, "fuzz.json", &m, &err);
    free(json);
    if (st != NNP_OK) {
        if (m || !err.msg[0])
            abort(); /* an error comes alone, with a message */
        return 0;
    }
    /* what we write, we read */
    char *back = nnp_keras_to_json(m);
    if (back) {
        nnp_model *m2 = NULL;
        if (nnp_keras_load_string(reg, back, "fuzz-export.json", &m2, &err) != NNP_OK) {
            fprintf(stderr, "fuzz_keras_json: re-load of an export failed: %s\n", err.msg);
            abort();
        }
        nnp_model_free(m2);
        free(back);
    }
    try_forward(m);
    nnp_model_free(m);
    return 0;
}
