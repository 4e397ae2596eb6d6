/* Internals of the Keras services (initializers, regularizers, constraints):
 * json_t-level entry points for the config parser, and the small JSON
 * helpers the three spec families share.
 *
 * The helpers are static inline here rather than in a .c of their own so
 * each family's file stays self-contained; they are private to src/. */
#ifndef NNP_SERVICES_INTERNAL_H
#define NNP_SERVICES_INTERNAL_H

#include "nnplug/services.h"
#include "nnplug/status.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* json_t entry points (used by the layer config parser)               */
/* ------------------------------------------------------------------ */

/* Parse a spec given as a JSON string name or a {"class_name", "config"}
 * object. For an initializer JSON null is an error; for a regularizer or a
 * constraint it means "none": *out = NULL and NNP_OK. */
nnp_status nnpi_initializer_from_jsonv(const json_t *v, nnp_initializer **out, nnp_error *err);
nnp_status nnpi_regularizer_from_jsonv(const json_t *v, nnp_regularizer **out, nnp_error *err);
nnp_status nnpi_constraint_from_jsonv(const json_t *v, nnp_constraint **out, nnp_error *err);

/* Canonical {"class_name", "config"} objects (new references; NULL on
 * allocation failure). A NULL regularizer/constraint gives JSON null. */
json_t *nnpi_initializer_to_jsonv(const nnp_initializer *init);
json_t *nnpi_regularizer_to_jsonv(const nnp_regularizer *r);
json_t *nnpi_constraint_to_jsonv(const nnp_constraint *c);

/* ------------------------------------------------------------------ */
/* Shared helpers                                                      */
/* ------------------------------------------------------------------ */

/* Class names compare case-insensitively and ignoring underscores, so one
 * table entry matches Keras's snake_case alias ("glorot_uniform"), its class
 * name ("GlorotUniform") and tfjs's spellings ("glorotUniform",
 * "LeCunNormal"). */
static inline void nnp_svc_fold_name(const char *in, char *out, size_t outsize)
{
    size_t n = 0;
    for (; *in && n + 1 < outsize; in++)
        if (*in != '_')
            out[n++] = (char)tolower((unsigned char)*in);
    out[n] = '\0';
}

/* camelCase -> snake_case for config keys and tfjs string values
 * ("maxValue" -> "max_value", "fanIn" -> "fan_in"); snake_case passes
 * through. A local copy so the services do not depend on the config code. */
static inline void nnp_svc_snake(const char *in, char *out, size_t outsize)
{
    size_t n = 0;
    if (outsize == 0)
        return;
    for (size_t i = 0; in[i] && n + 1 < outsize; i++) {
        unsigned char c = (unsigned char)in[i];
        if (isupper(c)) {
            if (i > 0 && in[i - 1] != '_' && n + 2 < outsize)
                out[n++] = '_';
            out[n++] = (char)tolower(c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
}

/* Splits a spec into its class name and config (NULL when absent or null).
 * `what` is "initializer", "regularizer" or "constraint". Keras 3 adds the
 * bookkeeping keys module/registered_name, Keras 2 sometimes
 * shared_object_id; they carry nothing for us and are ignored. */
static inline nnp_status nnp_svc_unpack(const json_t *v, const char *what,
                                        const char **class_name, const json_t **config,
                                        nnp_error *err)
{
    *class_name = NULL;
    *config = NULL;
    if (json_is_string(v)) {
        *class_name = json_string_value(v);
        return NNP_OK;
    }
    if (!json_is_object(v))
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "%s: expected a name or a {\"class_name\", \"config\"} object", what);
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)v, key, val) {
        if (strcmp(key, "class_name") == 0 || strcmp(key, "className") == 0) {
            if (!json_is_string(val))
                return nnp_error_set(err, NNP_ERR_INVALID, "%s: class_name must be a string",
                                     what);
            *class_name = json_string_value(val);
        } else if (strcmp(key, "config") == 0) {
            if (!json_is_object(val) && !json_is_null(val))
                return nnp_error_set(err, NNP_ERR_INVALID, "%s: config must be an object",
                                     what);
            *config = json_is_object(val) ? val : NULL;
        } else if (strcmp(key, "module") != 0 && strcmp(key, "registered_name") != 0 &&
                   strcmp(key, "registeredName") != 0 && strcmp(key, "shared_object_id") != 0) {
            return nnp_error_set(err, NNP_ERR_INVALID, "%s: unknown key '%s' in spec object",
                                 what, key);
        }
    }
    if (!*class_name)
        return nnp_error_set(err, NNP_ERR_INVALID, "%s: spec object has no class_name", what);
    return NNP_OK;
}

/* Parses JSON text (any top-level value). A bare identifier that is not JSON
 * (glorot_uniform without quotes) is taken as a name, for convenience on
 * command lines. Returns a new reference. */
static inline nnp_status nnp_svc_load(const char *text, const char *what, json_t **out,
                                      nnp_error *err)
{
    json_error_t je;
    *out = NULL;
    if (!text)
        return nnp_error_set(err, NNP_ERR_INVALID, "%s: no JSON text given", what);
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        int ident = text[0] != '\0';
        for (const char *p = text; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '_')
                ident = 0;
        if (ident && strcmp(text, "null") != 0)
            v = json_string(text);
        if (!v)
            return nnp_error_set(err, NNP_ERR_INVALID,
                                 "%s: invalid JSON at line %d column %d: %s", what, je.line,
                                 je.column, je.text);
    }
    *out = v;
    return NNP_OK;
}

/* Arguments of one spec: `names` are the class's snake_case argument names
 * (NULL-terminated, at most NNP_SVC_MAX_ARGS); collect() fills vals[i] with
 * the config value given for names[i], or NULL when absent. */
#define NNP_SVC_MAX_ARGS 8
typedef struct nnp_svc_args {
    const char *what;            /* "initializer" */
    const char *cls;             /* canonical class name, for messages */
    const char *const *names;
    const json_t *vals[NNP_SVC_MAX_ARGS];
} nnp_svc_args;

static inline int nnp_svc_arg_index(const nnp_svc_args *a, const char *name)
{
    for (int i = 0; a->names[i]; i++)
        if (strcmp(a->names[i], name) == 0)
            return i;
    return -1;
}

static inline nnp_status nnp_svc_args_collect(nnp_svc_args *a, const json_t *config,
                                              nnp_error *err)
{
    memset(a->vals, 0, sizeof a->vals);
    if (!config)
        return NNP_OK;
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)config, key, val) {
        char snake[64];
        nnp_svc_snake(key, snake, sizeof snake);
        int i = nnp_svc_arg_index(a, snake);
        if (i < 0)
            return nnp_error_set(err, NNP_ERR_INVALID, "%s '%s': unknown argument '%s'",
                                 a->what, a->cls, key);
        if (a->vals[i])
            return nnp_error_set(err, NNP_ERR_INVALID, "%s '%s': argument '%s' given twice",
                                 a->what, a->cls, a->names[i]);
        a->vals[i] = val;
    }
    return NNP_OK;
}

static inline const json_t *nnp_svc_arg(const nnp_svc_args *a, const char *name)
{
    int i = nnp_svc_arg_index(a, name);
    return i < 0 ? NULL : a->vals[i];
}

/* A number argument; *out keeps its default when the argument is absent. */
static inline nnp_status nnp_svc_arg_double(const nnp_svc_args *a, const char *name,
                                            double *out, nnp_error *err)
{
    const json_t *v = nnp_svc_arg(a, name);
    if (!v)
        return NNP_OK;
    if (!json_is_number(v))
        return nnp_error_set(err, NNP_ERR_INVALID, "%s '%s': argument '%s' must be a number",
                             a->what, a->cls, name);
    *out = json_number_value(v);
    return NNP_OK;
}

/* A string argument, snake_cased (tfjs writes "fanIn" for "fan_in"). */
static inline nnp_status nnp_svc_arg_string(const nnp_svc_args *a, const char *name,
                                            char *out, size_t outsize, nnp_error *err)
{
    const json_t *v = nnp_svc_arg(a, name);
    if (!v)
        return NNP_OK;
    if (!json_is_string(v))
        return nnp_error_set(err, NNP_ERR_INVALID, "%s '%s': argument '%s' must be a string",
                             a->what, a->cls, name);
    nnp_svc_snake(json_string_value(v), out, outsize);
    return NNP_OK;
}

/* "seed": null or an integer. */
static inline nnp_status nnp_svc_arg_seed(const nnp_svc_args *a, int *has_seed,
                                          int64_t *seed, nnp_error *err)
{
    const json_t *v = nnp_svc_arg(a, "seed");
    if (!v || json_is_null(v))
        return NNP_OK;
    if (!json_is_integer(v))
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "%s '%s': argument 'seed' must be null or an integer", a->what,
                             a->cls);
    *has_seed = 1;
    *seed = (int64_t)json_integer_value(v);
    return NNP_OK;
}

/* Smallest %g precision from 15 to 17 that reads back as exactly v. */
static inline int nnp_svc_real_digits(double v)
{
    char buf[40];
    for (int d = 15; d < 17; d++) {
        snprintf(buf, sizeof buf, "%.*g", d, v);
        if (strtod(buf, NULL) == v)
            return d;
    }
    return 17;
}

static inline int nnp_svc_max_digits(const json_t *v)
{
    int d = 1;
    if (json_is_real(v))
        return nnp_svc_real_digits(json_real_value(v));
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            int e = nnp_svc_max_digits(x);
            d = e > d ? e : d;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            int e = nnp_svc_max_digits(x);
            d = e > d ? e : d;
        }
    }
    return d;
}

/* Compact, key-sorted text. Reals print with the fewest significant digits
 * (15 to 17) that read every one of them back exactly (0.05, not
 * 0.050000000000000003), so to_json -> parse is lossless. Consumes v. */
static inline char *nnp_svc_dumps(json_t *v)
{
    if (!v)
        return NULL;
    int digits = nnp_svc_max_digits(v);
    if (digits < 15)
        digits = 15;
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY |
                                JSON_REAL_PRECISION(digits));
    json_decref(v);
    return s;
}

/* {"class_name": cls, "config": config}; consumes config. */
static inline json_t *nnp_svc_spec(const char *cls, json_t *config)
{
    if (!config)
        return NULL;
    return json_pack("{s:s, s:o}", "class_name", cls, "config", config);
}

#endif
