#ifndef NNP_CONFIG_INTERNAL_H
#define NNP_CONFIG_INTERNAL_H
#include "nnplug/config.h"
#include "nnplug/registry.h"
#include <jansson.h>

/* Parses a config from a JSON object (borrowed). */
nnp_status nnp_config_from_jsonv(const nnp_kind *kind, const json_t *obj,
                                 nnp_config **out, nnp_error *err);
/* The full config as a new JSON object (caller decrefs). */
json_t *nnp_config_to_jsonv(const nnp_config *c);
/* The registry used to resolve nested layers (wrappers). */
void nnp_config_set_registry(nnp_config *c, const nnp_registry *reg);
const nnp_registry *nnp_config_registry(const nnp_config *c);
#endif
