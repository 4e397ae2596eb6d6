/* shape_ops plugin (Flatten, Reshape, Permute, Dropout, Add): state shared by the
 * layer glue (shape_ops.c) and the ONNX mapping (onnx.c). Private. */
#ifndef NNP_SHAPE_OPS_H
#define NNP_SHAPE_OPS_H

#include <nnplug/plugin.h>

/* Training-mode Dropout forwards remembered for their backward: the input
 * pointer and the step that drew the mask. */
#define DROPOUT_SLOTS 8

typedef struct sop_state {
    const nnp_host *host;
    const nnp_config *cfg;
    const char *kind;
    int built;
    nnp_shape in_shape, out_shape;   /* of the last build */

    /* Flatten */
    int channels_first;
    /* Reshape: target without the batch axis, -1 resolved at build when
     * the input dims are known */
    int64_t target[NNP_MAX_RANK];
    int target_rank;
    /* Permute: dims as Keras gives them (1-based, without the batch axis) */
    int64_t perm[NNP_MAX_RANK];
    int perm_rank;
    /* Dropout */
    double rate;
    uint64_t seed;
    int64_t noise[NNP_MAX_RANK];     /* noise_shape, -1 = the input's dim */
    int noise_rank;                  /* -1: none */
    uint64_t step;
    struct {
        const void *key;
        uint64_t step;
    } slots[DROPOUT_SLOTS];
    int next_slot;
    /* Add: a ReLU folded into inference forwards (NNP_EXT_EPILOGUE) */
    int relu;
    int train_relu;       /* Add: training forwards end with a ReLU (plan_train_relu) */
    int n_in;             /* Add: inputs at build */
} sop_state;

const char *sop_name(const sop_state *s);

nnp_status flatten_to_onnx(const void *state, nnp_onnx_writer *w, const char *const *inputs,
                           int n_inputs, const char *output, nnp_error *err);
nnp_status flatten_from_onnx(const nnp_host *h, const nnp_onnx_reader *r, nnp_config *cfg,
                             nnp_error *err);
nnp_status reshape_to_onnx(const void *state, nnp_onnx_writer *w, const char *const *inputs,
                           int n_inputs, const char *output, nnp_error *err);
nnp_status reshape_from_onnx(const nnp_host *h, const nnp_onnx_reader *r, nnp_config *cfg,
                             nnp_error *err);
nnp_status permute_to_onnx(const void *state, nnp_onnx_writer *w, const char *const *inputs,
                           int n_inputs, const char *output, nnp_error *err);
nnp_status permute_from_onnx(const nnp_host *h, const nnp_onnx_reader *r, nnp_config *cfg,
                             nnp_error *err);
nnp_status dropout_to_onnx(const void *state, nnp_onnx_writer *w, const char *const *inputs,
                           int n_inputs, const char *output, nnp_error *err);
nnp_status dropout_from_onnx(const nnp_host *h, const nnp_onnx_reader *r, nnp_config *cfg,
                             nnp_error *err);
nnp_status add_to_onnx(const void *state, nnp_onnx_writer *w, const char *const *inputs,
                       int n_inputs, const char *output, nnp_error *err);
nnp_status add_from_onnx(const nnp_host *h, const nnp_onnx_reader *r, nnp_config *cfg,
                         nnp_error *err);

#endif
