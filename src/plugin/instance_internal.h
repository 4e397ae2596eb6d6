/* Host-side layer functions that plugins reach through nnp_host. */
#ifndef NNP_INSTANCE_INTERNAL_H
#define NNP_INSTANCE_INTERNAL_H
#include "nnplug/layer.h"
#include "nnplug/config.h"

/* Creates the inner layer of a wrapper from the NNP_PARAM_LAYER parameter
 * `key` of the outer layer's config, with the registry the outer one used. */
nnp_status nnpi_layer_create_nested(const nnp_config *outer, const char *key,
                                    nnp_layer **out, nnp_error *err);
const char *nnpi_layer_kind_name(const nnp_layer *l);
/* The kind's to_onnx / onnx_load_weights on this layer's state. */
nnp_status nnpi_layer_to_onnx(const nnp_layer *l, nnp_onnx_writer *w, const char *const *inputs,
                              int n_inputs, const char *output, nnp_error *err);
nnp_status nnpi_layer_onnx_load_weights(nnp_layer *l, const nnp_onnx_reader *r, nnp_error *err);
/* The kind's write_training (NNP_EXT_ONNX_NODE) on this layer's state:
 * makes written node `node` compute in training mode. */
nnp_status nnpi_layer_onnx_write_training(const nnp_layer *l, nnp_onnx_writer *w, int node,
                                          nnp_error *err);

/* Inference epilogues (NNP_EXT_EPILOGUE) of the layer's kind, on its state.
 * Consumer side: the axis of its inference affine for a rank-`rank` input
 * (-1: none) and its values; whether it is a plain ReLU. */
int nnpi_layer_affine_axis(const nnp_layer *l, int rank);
void nnpi_layer_inference_affine(const nnp_layer *l, float *scale, float *shift);
int nnpi_layer_is_relu(const nnp_layer *l);
/* Consumer side (1.6): whether it sums its n_inputs inputs elementwise. */
int nnpi_layer_is_sum(const nnp_layer *l, int n_inputs);
/* NNP_READS_* of the layer's backward (NNP_EXT_BACKWARD_READS; both
 * without it). */
uint32_t nnpi_layer_backward_reads(const nnp_layer *l);
/* NNP_LAYOUT_* bits the layer reads at input k (k = -1: writes) in
 * inference forwards (NNP_EXT_LAYOUT; 0 without it). */
uint32_t nnpi_layer_inference_layouts(const nnp_layer *l, int k);
/* Producer side: NNP_ERR_UNSUPPORTED when the kind offers none (sum: its
 * 1.6 plan_epilogue_sum, adding what the output holds on entry). */
nnp_status nnpi_layer_plan_epilogue(nnp_layer *l, int axis, int relu, int sum, nnp_error *err);
/* Whether its inference forwards may write their output over input k
 * (NNP_EXT_IN_PLACE; 0 without it). */
int nnpi_layer_in_place(const nnp_layer *l, int k);
/* Tells the layer's kind that its next backward writes the weight
 * gradients (NNP_EXT_GRAD_STORE): 1, or 0 when the kind cannot (the host
 * zeroes them instead). */
int nnpi_layer_store_grads(nnp_layer *l);
/* Producer side (1.7): training steps with the ReLU after it (relu 1) or
 * without (0); NNP_ERR_UNSUPPORTED when the kind offers none. */
nnp_status nnpi_layer_plan_train_relu(nnp_layer *l, int relu, nnp_error *err);
void nnpi_layer_set_affine(nnp_layer *l, const float *scale, const float *shift);
/* Export with an affine folded in (NNP_EXT_EPILOGUE's to_onnx_affine);
 * NNP_ERR_UNSUPPORTED when the kind offers none. */
nnp_status nnpi_layer_to_onnx_affine(const nnp_layer *l, nnp_onnx_writer *w,
                                     const char *const *inputs, int n_inputs, const char *output,
                                     int axis, const float *scale, const float *shift,
                                     nnp_error *err);

/* The workspace of nnp_host.scratch_reserve / scratch: a model makes one
 * current on this thread while it builds (reserve adds up the largest
 * request) and while it runs (scratch hands out mem). */
typedef struct nnpi_scratch {
    int building;
    size_t reserve;
    void *mem;
    size_t size;
} nnpi_scratch;
/* Makes s current on this thread; returns the one it replaces. */
nnpi_scratch *nnpi_scratch_enter(nnpi_scratch *s);
void nnpi_scratch_leave(nnpi_scratch *previous);

/* The data-parallel step now running on this thread: its group and this
 * process's share of the batch (nnp_host.batch_chunks and reduce_*), or
 * NULL, NULL. */
struct nnp_group;
struct nnp_batch_split;
void nnpi_batch_enter(const struct nnp_group *g, const struct nnp_batch_split *s);
/* Global reductions kinds began on this thread so far. */
unsigned long nnpi_batch_reductions(void);
/* Whether the layer's last backward summed its gradients over the group
 * itself (a global reduction ran in it). */
int nnpi_layer_grads_summed(const nnp_layer *l);
#endif
