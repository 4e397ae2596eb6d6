/* libFuzzer harness for layer configs: the Keras-style JSON a host hands
 * nnp_layer_new / nnp_config_from_json, checked against a kind's parameter
 * schema. The first byte picks the kind, the next four the input shape
 * (rank 1-4, small dimensions), the rest is the config JSON. Every input
 * gives a config or an error with a message; an accepted config writes
 * JSON that reads back to the same JSON (a fixed point), and a layer made
 * from it builds or refuses its shape with a message, then runs forward in
 * both modes and backward. Built by tests/fuzz/run.sh, with every plugin
 * (NNP_FUZZ_PLUGIN_DIR). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnplug/nnplug.h"
#include "fuzz_util.h"

static nnp_registry *reg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* 32 MB: a Conv2D of millions of filters stays quick to refuse */
    reg = fuzz_setup("fuzz_layer_config", 32);
    return 0;
}

static void fail(const char *what, const char *kind, const char *detail)
{
    fprintf(stderr, "fuzz_layer_config: %s: %s: %s\n", kind, what, detail ? detail : "");
    abort();
}

/* Builds the layer for the shape, runs it forward (both modes) and back. */
static void exercise(nnp_layer *l, const nnp_kind *k, int rank, const uint8_t *dimb)
{
    int n_in = k->n_inputs_min < 1 ? 1 : k->n_inputs_min;
    if (n_in > 4)
        return;
    nnp_shape in[4], out;
    int64_t dims[NNP_MAX_RANK];
    dims[0] = 2;   /* the batch */
    for (int d = 1; d <= rank; d++)
        dims[d] = 1 + dimb[d - 1] % 6;
    nnp_error err = {0};
    for (int i = 0; i < n_in; i++)
        if (nnp_shape_make(&in[i], rank + 1, dims, &err) != NNP_OK)
            fail("shape", k->name, err.msg);
    if (nnp_layer_build(l, n_in, in, &out, &err) != NNP_OK) {
        if (!err.msg[0])
            fail("build refused without a message", k->name, NULL);
        return;
    }
    nnp_tensor t[4], y, gy, g[4];
    const nnp_tensor *tin[4];
    nnp_tensor *gin[4];
    memset(t, 0, sizeof t);
    memset(g, 0, sizeof g);
    memset(&y, 0, sizeof y);
    memset(&gy, 0, sizeof gy);
    int64_t numel = 1;
    for (int d = 0; d < out.rank; d++)
        numel *= out.dims[d] < 0 ? 1 : out.dims[d];
    int ok = numel <= (1 << 20);
    for (int d = 0; d < out.rank; d++)
        ok = ok && out.dims[d] >= 0;
    for (int i = 0; i < n_in && ok; i++) {
        ok = nnp_tensor_alloc(&t[i], NNP_F32, &in[i], &err) == NNP_OK &&
             nnp_tensor_alloc(&g[i], NNP_F32, &in[i], &err) == NNP_OK;
        if (ok) {
            float *p = t[i].data;
            for (int64_t e = 0; e < (int64_t)(t[i].nbytes / sizeof(float)); e++)
                p[e] = (float)((e * 7 + i) % 11) * 0.25f - 1.0f;
        }
        tin[i] = &t[i];
        gin[i] = &g[i];
    }
    ok = ok && nnp_tensor_alloc(&y, NNP_F32, &out, &err) == NNP_OK &&
         nnp_tensor_alloc(&gy, NNP_F32, &out, &err) == NNP_OK;
    if (ok) {
        float *p = gy.data;
        for (int64_t e = 0; e < (int64_t)(gy.nbytes / sizeof(float)); e++)
            p[e] = 1.0f;
        if (nnp_layer_forward(l, tin, n_in, &y, NNP_MODE_INFER, &err) != NNP_OK && !err.msg[0])
            fail("forward failed without a message", k->name, NULL);
        if (nnp_layer_forward(l, tin, n_in, &y, NNP_MODE_TRAIN, &err) == NNP_OK) {
            if (nnp_layer_backward(l, tin, n_in, &y, &gy, gin, NNP_MODE_TRAIN, &err) != NNP_OK &&
                !err.msg[0])
                fail("backward failed without a message", k->name, NULL);
        } else if (!err.msg[0]) {
            fail("forward failed without a message", k->name, NULL);
        }
    }
    for (int i = 0; i < n_in; i++) {
        nnp_tensor_free(&t[i]);
        nnp_tensor_free(&g[i]);
    }
    nnp_tensor_free(&y);
    nnp_tensor_free(&gy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5)
        return 0;
    const nnp_kind *k = nnp_registry_kind_at(reg, data[0] % nnp_registry_n_kinds(reg));
    int rank = 1 + data[1] % 4;
    char *json = malloc(size - 5 + 1);
    if (!json)
        return 0;
    memcpy(json, data + 5, size - 5);
    json[size - 5] = '\0';
    nnp_config *cfg = NULL;
    nnp_error err = {0};
    nnp_status st = nnp_config_from_json(k, json, &cfg, &err);
    free(json);
    if (st != NNP_OK) {
        if (cfg || !err.msg[0])
            fail("an error must come alone, with a message", k->name, err.msg);
        return 0;
    }
    /* what a config writes, it reads back unchanged */
    char *once = nnp_config_to_json(cfg);
    if (!once)
        fail("cannot write the config", k->name, NULL);
    nnp_config *again = NULL;
    if (nnp_config_from_json(k, once, &again, &err) != NNP_OK)
        fail("the written config does not read back", k->name, err.msg);
    char *twice = nnp_config_to_json(again);
    if (!twice || strcmp(once, twice) != 0) {
        fprintf(stderr, "first:  %s\nsecond: %s\n", once, twice ? twice : "(null)");
        fail("the written config is not a fixed point", k->name, NULL);
    }
    free(once);
    free(twice);
    nnp_config_free(again);
    nnp_layer *l = NULL;
    if (nnp_layer_new_from_config(reg, cfg, &l, &err) != NNP_OK) {
        if (l || !err.msg[0])
            fail("layer creation failed without a message", k->name, NULL);
        return 0;
    }
    exercise(l, k, rank, data + 2);
    nnp_layer_free(l);
    return 0;
}
