/* Typed layer configs, checked against a kind's parameter schema.
 *
 * JSON input is Keras-style: {"axis": -1, "momentum": 0.99,
 * "beta_initializer": {"class_name": "Zeros", "config": {}}, ...}. Keys may
 * be snake_case (Keras) or camelCase (tfjs). Besides the kind's parameters,
 * every layer accepts the Keras layer keys name, trainable, dtype ("float32"
 * only), batch_input_shape / input_shape, and seed (nnplug's per-layer seed). */
#ifndef NNPLUG_CONFIG_H
#define NNPLUG_CONFIG_H
#include "plugin.h"
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A config holding the schema defaults. Caller frees with nnp_config_free. */
NNP_API nnp_status nnp_config_new(const nnp_kind *kind, nnp_config **out, nnp_error *err);
/* Parses a JSON object (the "config" part of a Keras layer). Unknown keys,
 * wrong types and out-of-range values are errors naming the key. */
NNP_API nnp_status nnp_config_from_json(const nnp_kind *kind, const char *json,
                                        nnp_config **out, nnp_error *err);
/* Full config as Keras-style JSON (snake_case keys, every parameter, specs in
 * {"class_name","config"} form). malloc'ed; caller frees with free(). */
NNP_API char *nnp_config_to_json(const nnp_config *c);
NNP_API nnp_config *nnp_config_clone(const nnp_config *c);
NNP_API void nnp_config_free(nnp_config *c);

NNP_API const nnp_kind *nnp_config_kind(const nnp_config *c);
/* Sets one parameter from JSON text, as the parser would. */
NNP_API nnp_status nnp_config_set_json(nnp_config *c, const char *key, const char *json,
                                       nnp_error *err);
NNP_API nnp_status nnp_config_set_name(nnp_config *c, const char *name, nnp_error *err);
NNP_API void nnp_config_set_trainable(nnp_config *c, bool trainable);
NNP_API void nnp_config_set_seed(nnp_config *c, uint64_t seed);

/* Getters (also in the host table). Asking for a key not in the schema, or
 * of another type, returns 0 / NULL. */
NNP_API int64_t nnp_config_int(const nnp_config *c, const char *key);
NNP_API double nnp_config_float(const nnp_config *c, const char *key);
NNP_API int nnp_config_bool(const nnp_config *c, const char *key);
NNP_API const char *nnp_config_string(const nnp_config *c, const char *key);
NNP_API int nnp_config_ints(const nnp_config *c, const char *key, int64_t *out, int max_out);
NNP_API const nnp_initializer *nnp_config_initializer(const nnp_config *c, const char *key);
NNP_API const nnp_regularizer *nnp_config_regularizer(const nnp_config *c, const char *key);
NNP_API const nnp_constraint *nnp_config_constraint(const nnp_config *c, const char *key);
/* The nested layer config of a NNP_PARAM_LAYER parameter, as JSON text
 * {"class_name": ..., "config": {...}}; NULL when absent. */
NNP_API const char *nnp_config_layer_json(const nnp_config *c, const char *key);
NNP_API const char *nnp_config_name(const nnp_config *c);
/* True when a nullable parameter holds null. */
NNP_API int nnp_config_is_null(const nnp_config *c, const char *key);
/* False while the name is the kind's default (a model then makes it unique,
 * Keras-style: "dense", "dense_1", ...). */
NNP_API bool nnp_config_name_is_set(const nnp_config *c);
NNP_API bool nnp_config_trainable(const nnp_config *c);
NNP_API uint64_t nnp_config_seed(const nnp_config *c);
/* Declared batch_input_shape, if any: returns rank, or -1 when absent. */
NNP_API int nnp_config_batch_input_shape(const nnp_config *c, int64_t *dims, int max_dims);

/* camelCase -> snake_case ("betaInitializer" -> "beta_initializer"). */
NNP_API void nnp_snake_case(const char *in, char *out, size_t outsize);

#ifdef __cplusplus
}
#endif
#endif
