/* What the model harnesses share. */
#ifndef NNP_FUZZ_UTIL_H
#define NNP_FUZZ_UTIL_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnplug/nnplug.h"

/* Every plugin of NNP_FUZZ_PLUGIN_DIR in a new registry (abort when it
 * holds none), one thread, and a memory budget of budget_mb MB: a model or
 * config may ask for anything, and the budget refuses it below libFuzzer's
 * malloc limit and below what the instrumented build fills and frees
 * within the time limit. */
static inline nnp_registry *fuzz_setup(const char *harness, size_t budget_mb)
{
    nnp_registry *reg = NULL;
    nnp_error err = {0};
    const char *dir = getenv("NNP_FUZZ_PLUGIN_DIR");
    if (nnp_registry_new(&reg, &err) != NNP_OK || !dir ||
        nnp_registry_load_dir(reg, dir, &err) != NNP_OK || nnp_registry_n_kinds(reg) == 0) {
        fprintf(stderr, "%s: setup failed (NNP_FUZZ_PLUGIN_DIR): %s\n", harness, err.msg);
        abort();
    }
    char *names = nnp_registry_kind_names(reg);
    fprintf(stderr, "%s: kinds: %s\n", harness, names ? names : "?");
    free(names);
    nnp_set_num_threads(1);
    nnp_set_memory_budget(budget_mb << 20);
    return reg;
}

/* Runs the model once on zeros when its inputs are small and fully known. */
static inline void try_forward(nnp_model *m)
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

#endif
