#ifndef NNP_CONFIG_INTERNAL_H
#define NNP_CONFIG_INTERNAL_H
#include "nnplug/config.h"
#include <jansson.h>

/* Parses a config from a JSON object (borrowed). */
nnp_status nnpi_config_from_jsonv(const nnp_kind *kind, const json_t *obj,
                                  nnp_config **out, nnp_error *err);
/* The full config as a new JSON object (caller decrefs). */
json_t *nnpi_config_to_jsonv(const nnp_config *c);
/* The registry used to resolve nested layers (wrappers). The config only
 * carries it for the plugin layer, which owns registries. */
struct nnp_registry;
void nnpi_config_set_registry(nnp_config *c, const struct nnp_registry *reg);
const struct nnp_registry *nnpi_config_registry(const nnp_config *c);
#endif
