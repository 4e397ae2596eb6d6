/* ONNX interchange: models from .onnx files into the graph, and back.
 *
 * Import reads ModelProto of IR version 3 and up. Every node is served by the
 * plugin kind registered for its (domain, op_type, opset); Constant and
 * Identity nodes are resolved by the importer itself, and
 * Transpose(perm) -> BatchNormalization -> Transpose(inverse) folds into one
 * layer normalizing axis perm[1]. Initializers may be float32, float16,
 * bfloat16 or float64 (converted to float32; the original type is remembered
 * in the model's metadata and restored by export at opset 15 and up), in
 * raw_data, typed fields or external files beside the model.
 *
 * Export writes opset NNP_ONNX_OPSET_DEFAULT unless asked otherwise, with the
 * IR version that opset needs, value infos for every tensor and a symbolic
 * batch dimension "N". metadata_props key "nnplug.layers" holds a JSON array
 * with, per layer, {"class_name", "config" (nnp_config_to_json), "nodes":
 * [[names of the ONNX nodes each application wrote], ...]}: our own import
 * reads those nodes back as that one layer with its exact config (a shared
 * layer stays shared; a wrapper's Reshape pair needs no Reshape kind). Other
 * tools ignore it. Output bytes depend only on the model: the same model
 * gives the same file, and export(import(f)) == f for files we wrote.
 *
 * Every malformed file is an error naming the file and, where it applies,
 * the node, tensor or attribute at fault. */
#ifndef NNPLUG_ONNX_H
#define NNPLUG_ONNX_H
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NNP_ONNX_OPSET_DEFAULT 15
#define NNP_ONNX_OPSET_MIN 9
#define NNP_ONNX_OPSET_MAX 17

/* A named tensor (borrowed). */
typedef struct nnp_onnx_binding {
    const char *name;
    const nnp_tensor *value;
} nnp_onnx_binding;

typedef struct nnp_onnx_load_options {
    /* Values for graph inputs that nodes read as constant parameters (as in
     * ONNX's own node tests, where BatchNormalization's scale, B, mean and
     * var are graph inputs). A graph input is a parameter when every node
     * reading it reads it at an input position beyond the ones its kind
     * computes on (kind->n_inputs_max). Bound inputs become constants and
     * are not inputs of the model; bindings naming anything else are
     * ignored. Values are copied (float32, float64 or int64 tensors). */
    const nnp_onnx_binding *bindings;
    int n_bindings;
    /* Non-zero: parameter inputs without a binding get zeros of their
     * declared shape instead of an error (for inspection: nnplug info). */
    int placeholder_parameters;
    /* Shapes of the data inputs that will be fed, by name (e.g. the .npy
     * files given to nnplug run): fill in declared dimensions that are
     * symbolic or unknown, other than the batch dimension. May be NULL. */
    const nnp_onnx_binding *input_hints;
    int n_input_hints;
} nnp_onnx_load_options;

/* Reads an .onnx file into a new model (caller frees with nnp_model_free).
 * External data is resolved relative to the file's folder and must stay
 * inside it. opts may be NULL. The model keeps a pointer to reg. */
NNP_API nnp_status nnp_onnx_load(const nnp_registry *reg, const char *path,
                                 const nnp_onnx_load_options *opts, nnp_model **out,
                                 nnp_error *err);
/* Same from memory. `label` names the model in messages; base_dir is the
 * folder external data is resolved against (NULL: external data is an
 * error). */
NNP_API nnp_status nnp_onnx_load_buffer(const nnp_registry *reg, const void *data, size_t len,
                                        const char *label, const char *base_dir,
                                        const nnp_onnx_load_options *opts, nnp_model **out,
                                        nnp_error *err);

/* The model as a serialized ModelProto at `opset` (0: the default; else
 * NNP_ONNX_OPSET_MIN..MAX). *data is malloc'ed; the caller frees it. */
NNP_API nnp_status nnp_onnx_serialize(const nnp_model *m, int opset, uint8_t **data, size_t *len,
                                      nnp_error *err);
/* Serializes and writes path atomically (temporary file in the same folder,
 * then rename): on failure an existing file is left untouched. */
NNP_API nnp_status nnp_onnx_save(const nnp_model *m, const char *path, int opset, nnp_error *err);
/* An inference export (`nnplug convert --fold-bn`): a layer followed by a
 * per-channel affine in inference (BatchNormalization), where the model's
 * inference plan would fuse them, is written with the affine folded into
 * its weights and the affine layer left out, as PyTorch's eval export and
 * ONNX Runtime's Conv+BN fusion do. The file carries no nnplug.layers
 * metadata: it is for deployment, not to be trained from. */
NNP_API nnp_status nnp_onnx_save_inference(const nnp_model *m, const char *path, int opset,
                                           nnp_error *err);

/* IR version an exported model of this opset carries (9: 4, 10: 5, 11: 6,
 * 12-14: 7, 15-17: 8); 0 outside NNP_ONNX_OPSET_MIN..MAX. */
NNP_API int nnp_onnx_ir_version(int opset);

/* Model metadata keys written by import (and not exported as such). */
#define NNP_ONNX_META_LAYERS "nnplug.layers"
#define NNP_ONNX_META_DTYPES "nnplug.initializer_dtypes"
/* JSON describing the imported file: ir_version, opset_import, producer,
 * and per ONNX node its op, opset and the layer serving it (nnplug info). */
#define NNP_ONNX_META_IMPORT "nnplug.import.onnx"

#ifdef __cplusplus
}
#endif
#endif
