/* libFuzzer harness for the Keras model file readers: every input (a .keras
 * zip, a legacy HDF5 model or JSON, told apart by its first bytes) gives a
 * model or an error with a message; what loads is written back as a .keras
 * archive, read again with every weight bit kept, and run once on small
 * inputs. The HDF5 C library and libzip are not instrumented; HDF5 reads
 * in a child process (fork), so a file that crashes or hangs the HDF5
 * library is an error here like any other (and the child's coverage is not
 * seen). Built by tests/fuzz/run.sh, with every plugin (NNP_FUZZ_PLUGIN_DIR). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nnplug/keras.h"
#include "nnplug/nnplug.h"
#include "nnplug/tensor.h"
#include "fuzz_util.h"

static nnp_registry *reg;
static char archive[512];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    nnp_error err = {0};
    const char *dir = getenv("NNP_FUZZ_PLUGIN_DIR");
    if (nnp_registry_new(&reg, &err) != NNP_OK || !dir ||
        nnp_registry_load_dir(reg, dir, &err) != NNP_OK || nnp_registry_n_kinds(reg) == 0 ||
        !nnp_keras_files_supported()) {
        fprintf(stderr, "fuzz_keras_file: setup failed (NNP_FUZZ_PLUGIN_DIR, HDF5/libzip): %s\n",
                err.msg);
        abort();
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(archive, sizeof archive, "%s/fuzz_keras_file_%d.keras", tmp ? tmp : "/tmp",
             (int)getpid());
    nnp_set_num_threads(1);
    nnp_set_memory_budget((size_t)256 << 20);
    return 0;
}

static void same_weights(const nnp_model *a, const nnp_model *b)
{
    if (nnp_model_n_layers(a) != nnp_model_n_layers(b))
        abort();
    for (int li = 0; li < nnp_model_n_layers(a); li++) {
        const nnp_layer *la = nnp_model_layer(a, li), *lb = nnp_model_layer(b, li);
        if (nnp_layer_n_weights(la) != nnp_layer_n_weights(lb))
            abort();
        for (int i = 0; i < nnp_layer_n_weights(la); i++) {
            const nnp_tensor *ta = nnp_layer_weight(la, i)->value;
            const nnp_tensor *tb = nnp_layer_weight(lb, i)->value;
            if (ta->nbytes != tb->nbytes || memcmp(ta->data, tb->data, ta->nbytes) != 0) {
                fprintf(stderr, "fuzz_keras_file: layer %s weight %d changed in the .keras "
                        "round trip\n", nnp_layer_name(la), i);
                abort();
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nnp_model *m = NULL, *back = NULL;
    nnp_error err = {0};
    nnp_status st = nnp_keras_load_memory(reg, data, size, "fuzz.keras", &m, &err);
    if (st != NNP_OK) {
        if (m || !err.msg[0])
            abort(); /* an error comes alone, with a message */
        return 0;
    }
    /* what we write, we read, bit for bit */
    if (nnp_keras_save_archive(m, archive, &err) == NNP_OK) {
        /* both copies count against the memory budget */
        st = nnp_keras_load(reg, archive, &back, &err);
        unlink(archive);
        if (st == NNP_ERR_LIMIT) {
            nnp_model_free(m);
            return 0;
        }
        if (st != NNP_OK) {
            fprintf(stderr, "fuzz_keras_file: re-load of a written archive failed: %s\n",
                    err.msg);
            abort();
        }
        same_weights(m, back);
    }
    nnp_model_free(back);
    try_forward(m);
    nnp_model_free(m);
    return 0;
}
