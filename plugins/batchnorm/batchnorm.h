/* BatchNormalization plugin: the layer state shared by the layer glue
 * (batchnorm.c) and the ONNX mapping (onnx.c). Private to this plugin. */
#ifndef NNP_BN_BATCHNORM_H
#define NNP_BN_BATCHNORM_H

#include "nnplug/plugin.h"
#include "kernels_isa.h"

/* Saved batch statistics of this many training-mode forwards, for layers
 * applied to several inputs before their backwards. */
#define BN_SLOTS 4

typedef struct bn_slot {
    const void *key;     /* input data pointer of the forward; NULL: empty */
    nnp_shape shape;     /* its shape, so a reused buffer of another shape misses */
    uint64_t stamp;      /* forward counter, for least-recently-used eviction */
    nnp_bn_saved st;
} bn_slot;

typedef struct bn_state {
    const nnp_host *host;
    const bn_kernels *k;        /* the kernels' best instruction-set variant */
    const nnp_config *cfg;          /* host-owned, lives as long as the layer */
    int64_t axis_cfg;               /* as configured, may be negative */
    double momentum, epsilon;
    int center, scale;
    const nnp_regularizer *gamma_reg, *beta_reg;  /* NULL: none */
    const nnp_constraint *gamma_con, *beta_con;   /* NULL: none */

    int built;
    int rank, axis;                 /* axis normalized to 0..rank-1 */
    nnp_shape in_shape;             /* the input shape of the last build */
    int64_t channels;
    nnp_tensor gamma, beta, moving_mean, moving_var, dgamma, dbeta;
    nnp_weight weights[4];
    int n_weights;

    void *mem;                      /* one block: scratch and slots */
    nnp_bn_scratch scratch;
    bn_slot slots[BN_SLOTS + 1];    /* the last one: recomputed in backward */
    uint64_t clock;
    int synchronized;               /* data-parallel: statistics of the global batch */
    int train_relu;                 /* training forwards end with a ReLU (plan_train_relu) */
    double *grouped;                /* 3 * (2C + 1) doubles: grouped.c's sums */
} bn_state;

/* The layer's name for messages ("?" when unnamed). */
const char *bn_name(const bn_state *s);

/* Data-parallel steps (grouped.c): the chunks of the batch when the host
 * runs one, else 0 (the kernels of kernels.c run); the training forward
 * (y and moving statistics may be NULL) and backward, every batch sum
 * taken chunk by chunk through the host. */
int bn_grouped_chunks(const bn_state *s, const nnp_bn_args *a);
nnp_status bn_grouped_forward(bn_state *s, const nnp_bn_args *a, const float *x, float *y,
                              float *moving_mean, float *moving_var, nnp_bn_saved *sv,
                              nnp_error *err);
nnp_status bn_grouped_backward(bn_state *s, const nnp_bn_args *a, const float *x,
                               const float *dy, float *dx, const nnp_bn_saved *sv,
                               float *dgamma, float *dbeta, nnp_error *err);

nnp_status bn_to_onnx(const void *state, nnp_onnx_writer *w, const char *const *inputs,
                      int n_inputs, const char *output, nnp_error *err);
nnp_status bn_from_onnx(const nnp_host *host, const nnp_onnx_reader *r, nnp_config *cfg,
                        nnp_error *err);
nnp_status bn_onnx_load_weights(void *state, const nnp_onnx_reader *r, nnp_error *err);
/* The kind's extensions (NNP_EXT_ONNX_NODE: training mode, running
 * statistics outputs, parameter checks, Transpose folds). */
const void *bn_extension(const char *name);

#endif
