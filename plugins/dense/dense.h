/* Dense plugin: the layer state shared by the layer glue (dense.c) and the
 * ONNX mapping (onnx.c). Private to this plugin. */
#ifndef NNP_DENSE_H
#define NNP_DENSE_H

#include <nnplug/plugin.h>

#include "common/act.h"
#include "common/kernel_bias.h"

typedef struct dense_state {
    const nnp_host *host;
    const nnp_config *cfg;          /* host-owned, lives as long as the layer */
    int64_t units;
    act_fn act;
    kb_weights wb;                  /* kernel [in, units], bias [units] */

    int built;
    int rank;                       /* input rank of the last build */
    nnp_shape in_shape;             /* and its input shape */
    int64_t in_dim;

    /* backward's dL/dz for the largest concrete build: [scratch_rows, units] */
    float *scratch;
    int64_t scratch_rows;
    int chunk_ws;    /* the model's workspace holds a data-parallel step's work */
    int store_grads; /* NNP_EXT_GRAD_STORE: the next backward writes them */
} dense_state;

const char *dense_name(const dense_state *s);

nnp_status dense_to_onnx(const void *state, nnp_onnx_writer *w, const char *const *inputs,
                         int n_inputs, const char *output, nnp_error *err);
nnp_status dense_from_onnx(const nnp_host *host, const nnp_onnx_reader *r, nnp_config *cfg,
                           nnp_error *err);
nnp_status dense_onnx_load_weights(void *state, const nnp_onnx_reader *r, nnp_error *err);

#endif
