/* The weights of a layer with a kernel and an optional bias (Dense, Conv2D):
 * the tensors, their gradients and the nnp_weight entries the host reads
 * ("kernel", then "bias" when use_bias), with the regularizers and
 * constraints the config names. A kb_weights lives in the layer's state;
 * its entries point into it. */
#ifndef NNP_KERNEL_BIAS_H
#define NNP_KERNEL_BIAS_H

#include <nnplug/plugin_util.h>

/* The schema entries of the weights, from use_bias to bias_constraint in
 * Keras's order; KERNEL and BIAS name the shapes ("[in, units]"). */
#define KB_PARAM_DEFS(KERNEL, BIAS)                                                             \
    {"use_bias", NNP_PARAM_BOOL, "true", 0, 0, 0, NULL, "whether the layer has a bias vector"},   \
        {"kernel_initializer", NNP_PARAM_INITIALIZER,                                          \
         "{\"class_name\":\"GlorotUniform\",\"config\":{}}", 0, 0, 0, NULL,                      \
         "initializer of the kernel " KERNEL},                                                 \
        {"bias_initializer", NNP_PARAM_INITIALIZER, "{\"class_name\":\"Zeros\",\"config\":{}}", 0, \
         0, 0, NULL, "initializer of the bias " BIAS},                                         \
        {"kernel_regularizer", NNP_PARAM_REGULARIZER, "null", NNP_PARAM_NULLABLE, 0, 0, NULL,  \
         "regularizer of the kernel"},                                                         \
        {"bias_regularizer", NNP_PARAM_REGULARIZER, "null", NNP_PARAM_NULLABLE, 0, 0, NULL,    \
         "regularizer of the bias"},                                                           \
        {"activity_regularizer", NNP_PARAM_REGULARIZER, "null", NNP_PARAM_NULLABLE, 0, 0, NULL, \
         "regularizer of the output; only null is supported"},                                 \
        {"kernel_constraint", NNP_PARAM_CONSTRAINT, "null", NNP_PARAM_NULLABLE, 0, 0, NULL,    \
         "constraint on the kernel, applied after each optimizer step"},                       \
        {"bias_constraint", NNP_PARAM_CONSTRAINT, "null", NNP_PARAM_NULLABLE, 0, 0, NULL,      \
         "constraint on the bias, applied after each optimizer step"}

typedef struct kb_weights {
    int use_bias;
    nnp_pu_seed seed;                              /* how the initializers are seeded */
    const nnp_regularizer *kernel_reg, *bias_reg;  /* NULL: none */
    const nnp_constraint *kernel_con, *bias_con;   /* NULL: none */
    nnp_tensor kernel, bias, dkernel, dbias;
    nnp_weight entries[2];
    int n;                                         /* entries in use; 0 before kb_alloc */
} kb_weights;

/* Clears w and reads use_bias and the kernel_ / bias_ regularizers and
 * constraints from the config, after refusing an activity_regularizer
 * (NNP_ERR_UNSUPPORTED: only null is supported). */
nnp_status kb_configure(kb_weights *w, const nnp_host *h, const nnp_config *cfg,
                        const char *kind, nnp_pu_seed seed, nnp_error *err);

/* Frees what w holds and allocates the kernel (kernel_shape) and, with
 * use_bias, the bias (bias_shape), filled by kernel_initializer and
 * bias_initializer, and their zeroed gradients; all or nothing. */
nnp_status kb_alloc(kb_weights *w, const nnp_host *h, const nnp_config *cfg, const char *kind,
                    const nnp_shape *kernel_shape, const nnp_shape *bias_shape,
                    nnp_error *err);

/* Frees the tensors; w has no entries after. */
void kb_free(kb_weights *w, const nnp_host *h);

/* Entry i (a kind's weight callback), NULL when out of range. */
const nnp_weight *kb_weight(const kb_weights *w, int i);

#endif
