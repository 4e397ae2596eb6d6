/* Models: a graph of layer instances applied to values (functional API).
 *
 * Values are named tensors: graph inputs, or the output of one layer
 * application (a node). A layer instance may be applied several times (its
 * weights are shared). Nodes run in the order they were added, which is a
 * topological order because a node can only use values that already exist.
 * Memory for activations and gradients is planned once per batch size by
 * nnp_model_build and reused by every forward/backward. */
#ifndef NNPLUG_MODEL_H
#define NNPLUG_MODEL_H
#include "plugin.h"
#include "registry.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nnp_model nnp_model;

/* The model keeps a pointer to reg, which must outlive it. */
NNP_API nnp_status nnp_model_new(const nnp_registry *reg, nnp_model **out, nnp_error *err);
NNP_API void nnp_model_free(nnp_model *m);
NNP_API const nnp_registry *nnp_model_registry(const nnp_model *m);

/* A graph input; dims may be -1 (unknown, normally the batch). *value gets its id. */
NNP_API nnp_status nnp_model_add_input(nnp_model *m, const char *name, const nnp_shape *shape,
                                       int *value, nnp_error *err);
/* Adds a layer instance; the model takes ownership (freed even on failure). */
NNP_API nnp_status nnp_model_add_layer(nnp_model *m, nnp_layer *layer, int *layer_index,
                                       nnp_error *err);
/* Applies layer `layer_index` to values; the output value gets `out_name`
 * (NULL: "<layer name>_out<k>"). Shapes are checked here (the layer is built
 * for the known dims). */
NNP_API nnp_status nnp_model_apply(nnp_model *m, int layer_index, const int *inputs, int n_inputs,
                                   const char *out_name, int *out_value, nnp_error *err);
/* Declares a graph output that reads a weight of a layer after each forward
 * (ONNX BatchNormalization's running_mean/running_var outputs). */
NNP_API nnp_status nnp_model_add_weight_output(nnp_model *m, int layer_index,
                                               const char *weight, const char *out_name,
                                               int *out_value, nnp_error *err);
NNP_API nnp_status nnp_model_set_outputs(nnp_model *m, const int *values, int n, nnp_error *err);
/* Forces a node's mode (-1: follow the run's mode). */
NNP_API nnp_status nnp_model_set_node_mode(nnp_model *m, int node, int mode, nnp_error *err);

/* Plans memory for a batch size (the -1 dims of the inputs). Idempotent for
 * the same batch size. */
NNP_API nnp_status nnp_model_build(nnp_model *m, int64_t batch, nnp_error *err);
/* Runs forward. inputs[i] feeds graph input i (shape must match the build;
 * a different batch size rebuilds). Output tensors stay owned by the model
 * and valid until the next forward. */
NNP_API nnp_status nnp_model_forward(nnp_model *m, const nnp_tensor *const *inputs, int n_inputs,
                                     nnp_mode mode, nnp_error *err);
NNP_API const nnp_tensor *nnp_model_output(const nnp_model *m, int i);
/* Backward of the last forward: grad_outputs[i] is dLoss/d(output i) (NULL =
 * zero). Weight gradients are ADDED to each layer's grads (call
 * nnp_model_zero_grad first). */
NNP_API nnp_status nnp_model_backward(nnp_model *m, const nnp_tensor *const *grad_outputs,
                                      int n_outputs, nnp_error *err);
/* As nnp_model_backward, but each weight gradient is this backward's alone:
 * written, not added, so no nnp_model_zero_grad before it (layers whose
 * kind can write them are told to, the others' gradients zeroed here). */
NNP_API nnp_status nnp_model_backward_overwrite(nnp_model *m,
                                                const nnp_tensor *const *grad_outputs,
                                                int n_outputs, nnp_error *err);
NNP_API void nnp_model_zero_grad(nnp_model *m);
NNP_API double nnp_model_regularization_loss(const nnp_model *m);
/* Adds every layer's regularizer gradients, once (after backward). */
NNP_API void nnp_model_add_regularization_grads(nnp_model *m);
NNP_API nnp_status nnp_model_apply_constraints(nnp_model *m, nnp_error *err);
/* Inference plans (on by default): in NNP_MODE_INFER forwards a layer whose
 * kind offers it also computes the per-channel affine (BatchNormalization
 * in inference) and the ReLU that follow it, when nothing else reads what
 * it skips; the skipped values are computed when a backward needs them.
 * Channels-first values between layers whose kinds take it (Conv2D on
 * oneDNN, pooling, Add) stay channels-last in memory (NNP_TENSOR_NHWC).
 * Off: every layer runs on its own, every value plain. */
NNP_API void nnp_model_set_inference_fusion(nnp_model *m, int on);
/* In the current inference plan, the node that computes node `node` as its
 * epilogue; -1 when node runs itself (or before a build). */
NNP_API int nnp_model_node_fused_into(const nnp_model *m, int node);
/* In the current inference plan, whether inference forwards keep `value`
 * channels-last (NNP_TENSOR_NHWC); 0 before a build. Graph inputs and
 * outputs never are. */
NNP_API int nnp_model_value_nhwc(const nnp_model *m, int value);
/* Training plans (on by default): in NNP_MODE_TRAIN forwards and their
 * backwards a layer whose kind offers it (BatchNormalization) also
 * computes the ReLU that is the only reader of its output, in the same
 * passes over the values; the results are the same bits. Off: every layer
 * runs on its own. */
NNP_API void nnp_model_set_training_fusion(nnp_model *m, int on);
/* In the current training plan, the node that computes node `node` (a
 * ReLU) with its own; -1 when node runs itself (or before a build). */
NNP_API int nnp_model_node_train_fused_into(const nnp_model *m, int node);
/* nnp_layer_weights_changed for every layer (after an application wrote
 * weight values itself). */
NNP_API void nnp_model_weights_changed(nnp_model *m);

/* The memory a model plans at a batch size, in bytes. Inference forwards
 * write the values into one arena where values whose lives (from the node
 * that writes one to its last reader) do not meet share bytes; training
 * forwards into another, where a value lives on through the backward while
 * a kind's backward reads it (NNP_EXT_BACKWARD_READS); the backward's value
 * gradients share a third arena the same way. Kinds' own buffers beyond the shared
 * workspace (a convolution's reordered kernel, saved batch statistics) are
 * not counted; nor is an optimizer's state (SGD with momentum: one copy of
 * the trainable weights, Adam: two). */
typedef struct nnp_memory_plan {
    int64_t batch;
    size_t inputs;          /* the model's inputs (the caller's buffers) */
    size_t weights;         /* every weight's value */
    size_t trainable;       /* the trainable weights: as much again for their gradients */
    size_t weight_outputs;  /* weights a graph output reads (a copy each) */
    size_t workspace;       /* the layers' shared workspace */
    size_t values;          /* every value in a buffer of its own (for comparison) */
    size_t values_arena;    /* an inference forward: the values' arena */
    size_t values_training; /* a training forward: the values' arena, where a value
                               lives until the last backward that reads it */
    size_t value_grads;     /* a training backward: the values' gradients' arena */
    size_t largest_value;   /* the largest value */
    int largest_value_id;   /* and which (-1: none) */
} nnp_memory_plan;
/* Builds m at `batch` and reports its plan (allocates neither arena). */
NNP_API nnp_status nnp_model_memory_plan(nnp_model *m, int64_t batch, nnp_memory_plan *out,
                                         nnp_error *err);

/* Introspection */
NNP_API int nnp_model_n_inputs(const nnp_model *m);
NNP_API int nnp_model_input_value(const nnp_model *m, int i);
NNP_API int nnp_model_n_outputs(const nnp_model *m);
NNP_API int nnp_model_output_value(const nnp_model *m, int i);
NNP_API int nnp_model_n_values(const nnp_model *m);
NNP_API const char *nnp_model_value_name(const nnp_model *m, int value);
/* Declared shape (with -1 dims) of a value. */
NNP_API const nnp_shape *nnp_model_value_shape(const nnp_model *m, int value);
NNP_API int nnp_model_find_value(const nnp_model *m, const char *name);   /* -1 if none */
NNP_API int nnp_model_n_layers(const nnp_model *m);
NNP_API nnp_layer *nnp_model_layer(const nnp_model *m, int i);
NNP_API int nnp_model_find_layer(const nnp_model *m, const char *name);   /* -1 if none */
NNP_API int nnp_model_n_nodes(const nnp_model *m);
/* Node i: its layer, input values, output value, forced mode (-1 none). */
NNP_API int nnp_model_node_layer(const nnp_model *m, int node);
NNP_API int nnp_model_node_n_inputs(const nnp_model *m, int node);
NNP_API int nnp_model_node_input(const nnp_model *m, int node, int k);
NNP_API int nnp_model_node_output(const nnp_model *m, int node);
NNP_API int nnp_model_node_mode(const nnp_model *m, int node);
/* Weight outputs: value -> (layer, weight name); layer -1 if value is not one. */
NNP_API int nnp_model_weight_output_layer(const nnp_model *m, int value, const char **weight);
/* Total parameter count (all weights) of a layer. */
NNP_API int64_t nnp_model_layer_param_count(const nnp_model *m, int layer_index);

/* Metadata key of a model whose inputs' batch size is fixed by something in
 * the graph (an ONNX file traced at one batch size that reshapes across the
 * batch axis): a line saying what fixes it, which the errors for another
 * batch size quote. */
#define NNP_MODEL_META_FIXED_BATCH "nnplug.fixed_batch"

/* Model-level metadata (ONNX metadata_props round-trip). Strings copied;
 * value NULL removes the key (no error when it is absent). */
NNP_API nnp_status nnp_model_set_meta(nnp_model *m, const char *key, const char *value,
                                      nnp_error *err);
NNP_API const char *nnp_model_get_meta(const nnp_model *m, const char *key);
NNP_API int nnp_model_n_meta(const nnp_model *m);
NNP_API const char *nnp_model_meta_key(const nnp_model *m, int i);

#ifdef __cplusplus
}
#endif
#endif
