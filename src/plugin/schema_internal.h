/* Parameter-schema helpers shared by the loader, the schema JSON writer and
 * the command line, so that every place spells a type the same way. */
#ifndef NNP_SCHEMA_INTERNAL_H
#define NNP_SCHEMA_INTERNAL_H
#include "nnplug/plugin.h"

/* "int", "float", ..., "layer"; NULL for a value outside nnp_param_type. */
const char *nnp_param_type_name(nnp_param_type t);

#endif
