/* Keras-style JSON models: what Keras model.to_json() and tfjs
 * model.toJSON() write, Sequential and Functional ("Model"), Keras 2 and
 * Keras 3 node formats. The JSON describes the topology and layer configs;
 * weights come from the initializers. */
#ifndef NNPLUG_KERAS_H
#define NNPLUG_KERAS_H
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Model metadata key holding the keras_version of the file a model was
 * loaded from ("2.15.0", "3.3.3", "tfjs-layers 4.22.0"). Kinds may default
 * parameters by it (NNP_EXT_KERAS_DEFAULTS in plugin.h). */
#define NNP_KERAS_META_VERSION "keras_version"

/* Loads a model file. Unknown class names or config keys are errors naming
 * the layer. Caller frees with nnp_model_free. */
NNP_API nnp_status nnp_keras_load(const nnp_registry *reg, const char *path, nnp_model **out,
                                  nnp_error *err);
NNP_API nnp_status nnp_keras_load_string(const nnp_registry *reg, const char *json,
                                         const char *origin, nnp_model **out, nnp_error *err);
/* The model as Keras JSON (Sequential when it is a chain, else Functional);
 * malloc'ed. Weight outputs (ONNX running statistics) have no Keras form
 * and are left out. */
NNP_API char *nnp_keras_to_json(const nnp_model *m);
/* Writes nnp_keras_to_json atomically. */
NNP_API nnp_status nnp_keras_save(const nnp_model *m, const char *path, nnp_error *err);

#ifdef __cplusplus
}
#endif
#endif
