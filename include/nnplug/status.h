/* Errors: every fallible call returns nnp_status (0 = NNP_OK) and fills an
 * nnp_error owned by the caller. Libraries never print and never exit. */
#ifndef NNPLUG_STATUS_H
#define NNPLUG_STATUS_H
#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Sets err (may be NULL) and returns code. */
NNP_API nnp_status nnp_error_set(nnp_error *err, nnp_status code, const char *fmt, ...)
    NNP_PRINTF(3, 4);
NNP_API nnp_status nnp_error_setv(nnp_error *err, nnp_status code, const char *fmt, va_list ap);
/* Prepends "prefix: " to an error already set (for adding context). */
NNP_API nnp_status nnp_error_prefix(nnp_error *err, const char *fmt, ...) NNP_PRINTF(2, 3);
NNP_API void nnp_error_clear(nnp_error *err);
/* Short name of a status code ("invalid argument", ...). */
NNP_API const char *nnp_status_str(nnp_status s);

#ifdef __cplusplus
}
#endif
#endif
