/* Layer instances: a kind's state plus its config, owned by the host. One
 * instance may be applied to several inputs; its weights are shared. */
#ifndef NNPLUG_LAYER_H
#define NNPLUG_LAYER_H
#include "plugin.h"
#include "registry.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Creates a layer of a registered kind from a Keras-style JSON config
 * (NULL or "{}" for the defaults). Caller frees with nnp_layer_free. */
NNP_API nnp_status nnp_layer_new(const nnp_registry *reg, const char *kind,
                                 const char *config_json, nnp_layer **out, nnp_error *err);
/* Same, taking ownership of cfg (freed even on failure). */
NNP_API nnp_status nnp_layer_new_from_config(const nnp_registry *reg, nnp_config *cfg,
                                             nnp_layer **out, nnp_error *err);
NNP_API void nnp_layer_free(nnp_layer *l);

NNP_API const nnp_kind *nnp_layer_kind_of(const nnp_layer *l);
NNP_API const nnp_config *nnp_layer_config(const nnp_layer *l);
NNP_API const char *nnp_layer_name(const nnp_layer *l);
NNP_API int nnp_layer_trainable(const nnp_layer *l);

/* Build for input shapes (dim -1 = unknown). Allocates weights. */
NNP_API nnp_status nnp_layer_build(nnp_layer *l, int n_in, const nnp_shape *in,
                                   nnp_shape *out, nnp_error *err);
/* mode TRAIN on a layer with trainable=false runs INFER, as Keras does. */
NNP_API nnp_status nnp_layer_forward(nnp_layer *l, const nnp_tensor *const *in, int n_in,
                                     nnp_tensor *out, nnp_mode mode, nnp_error *err);
NNP_API nnp_status nnp_layer_backward(nnp_layer *l, const nnp_tensor *const *in, int n_in,
                                      const nnp_tensor *out, const nnp_tensor *grad_out,
                                      nnp_tensor *const *grad_in, nnp_mode mode,
                                      nnp_error *err);
NNP_API int nnp_layer_n_weights(const nnp_layer *l);
/* Weight i; its TRAINABLE flag is cleared when the layer is not trainable.
 * An application that writes a weight's values itself calls
 * nnp_layer_weights_changed before the next forward: kinds may keep forms
 * derived from their weights (a kernel reordered for the convolution
 * engine) until told. */
NNP_API const nnp_weight *nnp_layer_weight(const nnp_layer *l, int i);
/* Says the values of l's weights changed. The library calls it itself
 * after optimizer steps, constraint projections and loads. */
NNP_API void nnp_layer_weights_changed(nnp_layer *l);
/* The layouts (NNP_LAYOUT_* of plugin.h, 0: plain) of the layer's inputs
 * and output in its next inference forwards, for its kind to prepare
 * (NNP_EXT_LAYOUT's plan_layouts; NNP_OK when the kind has none). A model
 * calls it for its layers; an application running a layer itself calls it
 * before handing it NNP_TENSOR_NHWC tensors. */
NNP_API nnp_status nnp_layer_plan_layouts(nnp_layer *l, const uint32_t *in, int n_in,
                                          uint32_t out, nnp_error *err);
NNP_API const nnp_weight *nnp_layer_weight_by_name(const nnp_layer *l, const char *name);
/* Zeroes every weight gradient. */
NNP_API void nnp_layer_zero_grad(nnp_layer *l);
/* Penalties of the trainable weights' regularizers (plus the kind's own). */
NNP_API double nnp_layer_regularization_loss(const nnp_layer *l);
/* Adds the regularizers' gradients to the trainable weights' grads: once
 * per training step, after the backward passes. */
NNP_API void nnp_layer_add_regularization_grads(nnp_layer *l);
/* Projects trainable weights with their constraints (after each step). */
NNP_API nnp_status nnp_layer_apply_constraints(nnp_layer *l, nnp_error *err);
/* Sets the thread count plugins use (OpenMP); 0 = all cores. */
NNP_API void nnp_set_num_threads(int n);
NNP_API int nnp_get_num_threads(void);

#ifdef __cplusplus
}
#endif
#endif
