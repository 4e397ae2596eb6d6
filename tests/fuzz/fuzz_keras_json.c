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
#include "fuzz_util.h"

static nnp_registry *reg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    reg = fuzz_setup("fuzz_keras_json", 64);
    return 0;
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
    /* what we write, we read: the original is freed first, so the copy
       gets the memory budget the original got */
    char *back = nnp_keras_to_json(m);
    nnp_model_free(m);
    m = NULL;
    if (back) {
        if (nnp_keras_load_string(reg, back, "fuzz-export.json", &m, &err) != NNP_OK) {
            fprintf(stderr, "fuzz_keras_json: re-load of an export failed: %s\n", err.msg);
            abort();
        }
        free(back);
        try_forward(m);
        nnp_model_free(m);
    }
    return 0;
}
