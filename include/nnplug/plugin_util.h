/*
 * Helpers for writing plugins: header-only, static inline, and built on
 * nothing but <nnplug/plugin.h> and the C standard library, so a plugin
 * compiled out of tree can use them too and no symbol crosses a plugin
 * boundary. The header compiles as C99 and as C++11; the table macros are
 * positional, so they serve both.
 *
 * In messages `kind` is the layer kind's name ("Dense") and `name` the
 * layer's own (nnp_pu_name): "Dense 'fc1': expects 1 input, got 2".
 *
 * A minimal plugin (plugins/example_scale is the complete template):
 *
 *     static const nnp_kind my_kind = {NNP_PU_KIND_HEAD, .name = "MyKind", ...};
 *     static const nnp_kind *const my_kinds[] = {&my_kind};
 *     static const nnp_plugin my_plugin = NNP_PU_PLUGIN_INIT("mine", "1.0.0", my_kinds);
 *
 *     NNP_EXPORT const nnp_plugin *nnp_plugin_entry(const nnp_host *host)
 *     {
 *         return nnp_pu_accept_host(host, 0, &my_plugin);
 *     }
 */
#ifndef NNPLUG_PLUGIN_UTIL_H
#define NNPLUG_PLUGIN_UTIL_H

#include <nnplug/plugin.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Plugin and kind tables                                              */
/* ------------------------------------------------------------------ */

/* Entries of an array (params, kinds) as the int the tables hold. */
#define NNP_PU_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* The first fields of every nnp_kind (struct_size, abi_major, abi_minor),
 * positional: in C designated fields may follow ({NNP_PU_KIND_HEAD,
 * .name = "MyKind", ...}); in C++ the rest follows in order. */
#define NNP_PU_KIND_HEAD sizeof(nnp_kind), NNP_ABI_MAJOR, NNP_ABI_MINOR

/* The initializer of a plugin table listing every kind of the array kinds:
 *     static const nnp_plugin p = NNP_PU_PLUGIN_INIT("mine", "1.0.0", kinds); */
#define NNP_PU_PLUGIN_INIT(name, version, kinds)                                            \
    {                                                                                     \
        sizeof(nnp_plugin), NNP_ABI_MAJOR, NNP_ABI_MINOR, (name), (version), (kinds),     \
            NNP_PU_COUNT(kinds)                                                           \
    }

/* The body of a plugin's entry function: returns plugin when host has this
 * header's major version and at least min_minor (the newest host field the
 * plugin calls); otherwise says why through host->log (NNP_LOG_ERROR, which
 * the host reports with its load error) and returns NULL.
 *
 *     NNP_EXPORT const nnp_plugin *nnp_plugin_entry(const nnp_host *host)
 *     {
 *         return nnp_pu_accept_host(host, 1, &my_plugin);
 *     }
 */
static inline const nnp_plugin *nnp_pu_accept_host(const nnp_host *host, unsigned min_minor,
                                                   const nnp_plugin *plugin)
{
    if (!host || host->abi_major != NNP_ABI_MAJOR)
        return NULL;   /* another major: its table layout is unknown, log included */
    if (NNP_HOST_AT_LEAST(host, min_minor))
        return plugin;
    if (NNP_HAS_FIELD(host, nnp_host, log) && host->log)
        host->log(NNP_LOG_ERROR,
                  "plugin '%s' needs an nnplug host with ABI %d.%u or later (this host "
                  "offers %u.%u)",
                  plugin->name, NNP_ABI_MAJOR, min_minor, (unsigned)host->abi_major,
                  (unsigned)host->abi_minor);
    return NULL;
}

/* Callbacks of a kind without weights, for kinds that set them rather than
 * leave them NULL: no penalty, nothing to project, no ONNX weights to load. */
static inline double nnp_pu_no_regularization(const void *state)
{
    (void)state;
    return 0.0;
}

static inline nnp_status nnp_pu_no_constraints(void *state, nnp_error *err)
{
    (void)state;
    (void)err;
    return NNP_OK;
}

/* NNP_EXT_IN_PLACE's inference_in_place of an elementwise kind with one
 * input: its inference forward may write over input 0. */
static inline int nnp_pu_in_place_input0(const void *state, int k)
{
    (void)state;
    return k == 0;
}

static inline nnp_status nnp_pu_no_onnx_weights(void *state, const nnp_onnx_reader *r,
                                                nnp_error *err)
{
    (void)state;
    (void)r;
    (void)err;
    return NNP_OK;
}

/* The body of a kind's extension callback offering one extension:
 *     return nnp_pu_extension(name, NNP_EXT_ONNX_OPS, my_ops); */
static inline const void *nnp_pu_extension(const char *name, const char *offered,
                                           const void *value)
{
    return name && strcmp(name, offered) == 0 ? value : NULL;
}

/* ------------------------------------------------------------------ */
/* Layer state and errors                                              */
/* ------------------------------------------------------------------ */

/* The layer's name for messages ("?" when unnamed). */
static inline const char *nnp_pu_name(const nnp_host *h, const nnp_config *cfg)
{
    const char *n = h->config_name(cfg);
    return n && n[0] ? n : "?";
}

/* Sets err to "<kind> '<name>': <message>" and returns code. */
static inline nnp_status nnp_pu_fail(const nnp_host *h, nnp_error *err, nnp_status code,
                                     const char *kind, const char *name, const char *fmt, ...)
    NNP_PRINTF(6, 7);

static inline nnp_status nnp_pu_fail(const nnp_host *h, nnp_error *err, nnp_status code,
                                     const char *kind, const char *name, const char *fmt, ...)
{
    char msg[NNP_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return h->error_set(err, code, "%s '%s': %s", kind, name, msg);
}

/* A zeroed state of size bytes from calloc (the kind's destroy frees it),
 * or NULL with err set to "<kind>: out of memory". */
static inline void *nnp_pu_state_alloc(const nnp_host *h, size_t size, const char *kind,
                                       nnp_error *err)
{
    void *s = calloc(1, size);
    if (!s)
        h->error_set(err, NNP_ERR_NOMEM, "%s: out of memory", kind);
    return s;
}

/* NNP_ERR_INVALID "used before build" unless built. */
static inline nnp_status nnp_pu_check_built(const nnp_host *h, int built, const char *kind,
                                            const char *name, nnp_error *err)
{
    if (!built)
        return nnp_pu_fail(h, err, NNP_ERR_INVALID, kind, name, "used before build");
    return NNP_OK;
}

/* NNP_ERR_INVALID unless the call has exactly want inputs. */
static inline nnp_status nnp_pu_check_n_inputs(const nnp_host *h, int n_in, int want,
                                               const char *kind, const char *name,
                                               nnp_error *err)
{
    if (n_in != want)
        return nnp_pu_fail(h, err, NNP_ERR_INVALID, kind, name, "expects %d input%s, got %d",
                           want, want == 1 ? "" : "s", n_in);
    return NNP_OK;
}

/* The checks of a to_onnx call: NNP_ERR_INVALID before build or unless the
 * call has exactly want inputs. */
static inline nnp_status nnp_pu_check_export(const nnp_host *h, int built, int n_inputs,
                                             int want, const char *kind, const char *name,
                                             nnp_error *err)
{
    if (!built)
        return nnp_pu_fail(h, err, NNP_ERR_INVALID, kind, name, "export before build");
    return nnp_pu_check_n_inputs(h, n_inputs, want, kind, name, err);
}

/* How a weight's initializer is seeded (initializer_fill's seed; an
 * initializer's own seed wins over both). */
typedef enum nnp_pu_seed {
    NNP_PU_SEED_ZERO = 0,      /* seed 0: what a plugin for 1.0 hosts passes */
    NNP_PU_SEED_PER_WEIGHT = 1 /* seed_mix(config_seed(cfg), init_key): every weight of every
                                  layer its own reproducible stream (needs a 1.1 host) */
} nnp_pu_seed;

/* Allocates the float32 tensor t of shape sh (zeroed) and, when init_key is
 * not NULL, fills it with the initializer the config names under init_key.
 * On failure t may hold memory: the caller frees it with tensor_free, as for
 * any tensor of its state. */
static inline nnp_status nnp_pu_weight_alloc(const nnp_host *h, const nnp_config *cfg,
                                             const char *kind, nnp_tensor *t,
                                             const nnp_shape *sh, const char *init_key,
                                             nnp_pu_seed seed, nnp_error *err)
{
    nnp_status st = h->tensor_alloc(t, NNP_F32, sh, err);
    if (st != NNP_OK || !init_key)
        return st;
    const nnp_initializer *init = h->config_initializer(cfg, init_key);
    if (!init)
        return nnp_pu_fail(h, err, NNP_ERR_INVALID, kind, nnp_pu_name(h, cfg), "no %s",
                           init_key);
    return h->initializer_fill(
        init, t, seed == NNP_PU_SEED_PER_WEIGHT ? h->seed_mix(h->config_seed(cfg), init_key) : 0,
        err);
}

/* ------------------------------------------------------------------ */
/* Shapes and run-time tensors                                         */
/* ------------------------------------------------------------------ */

/* "[4,3,-1]" into buf (ranks past NNP_MAX_RANK are cut there). */
static inline const char *nnp_pu_shape_str(const nnp_shape *sh, char *buf, size_t size)
{
    size_t at = 0;
    const int rank = sh->rank > NNP_MAX_RANK ? NNP_MAX_RANK : sh->rank;
    if (size == 0)
        return buf;
    buf[0] = '\0';
    if (rank <= 0) {
        snprintf(buf, size, "[]");
        return buf;
    }
    for (int i = 0; i < rank && at + 24 < size; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s%lld", i ? "," : "[",
                               (long long)sh->dims[i]);
    snprintf(buf + at, size - at, "]");
    return buf;
}

static inline int nnp_pu_same_shape(const nnp_shape *a, const nnp_shape *b)
{
    if (a->rank != b->rank)
        return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return 0;
    return 1;
}

/* Element count of a concrete shape; -1 when a dim is unknown. */
static inline int64_t nnp_pu_numel(const nnp_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) {
        if (s->dims[i] < 0)
            return -1;
        n *= s->dims[i];
    }
    return n;
}

static inline int nnp_pu_concrete(const nnp_shape *s)
{
    for (int i = 0; i < s->rank; i++)
        if (s->dims[i] < 0)
            return 0;
    return 1;
}

/* A run-time tensor check: float32, data present, and (when want is not
 * NULL) exactly the shape want. */
static inline nnp_status nnp_pu_check(const nnp_host *h, const char *kind, const char *name,
                                      const nnp_tensor *t, const char *what,
                                      const nnp_shape *want, nnp_error *err)
{
    char b1[160], b2[160];
    if (!t)
        return h->error_set(err, NNP_ERR_INVALID, "%s '%s': %s is missing", kind, name, what);
    if (t->dtype != NNP_F32)
        return h->error_set(err, NNP_ERR_INVALID, "%s '%s': %s must be float32 (dtype %d)",
                            kind, name, what, (int)t->dtype);
    if (want && !nnp_pu_same_shape(&t->shape, want))
        return h->error_set(err, NNP_ERR_SHAPE, "%s '%s': %s has shape %s, expected %s", kind,
                            name, what, nnp_pu_shape_str(&t->shape, b1, sizeof b1),
                            nnp_pu_shape_str(want, b2, sizeof b2));
    int64_t n = nnp_pu_numel(&t->shape);
    if (n < 0)
        return h->error_set(err, NNP_ERR_SHAPE, "%s '%s': %s has unknown dims %s", kind, name,
                            what, nnp_pu_shape_str(&t->shape, b1, sizeof b1));
    if (n > 0 && (!t->data || t->nbytes < (size_t)n * sizeof(float)))
        return h->error_set(err, NNP_ERR_INVALID, "%s '%s': %s has no data for shape %s", kind,
                            name, what, nnp_pu_shape_str(&t->shape, b1, sizeof b1));
    return NNP_OK;
}

/* The threads the host wants this call to use (at least 1). */
static inline int nnp_pu_nthreads(const nnp_host *h)
{
    int n = h->num_threads ? h->num_threads() : 1;
    return n > 0 ? n : 1;
}

/* ------------------------------------------------------------------ */
/* ONNX writer (to_onnx)                                               */
/* ------------------------------------------------------------------ */

/* The error code of a failed onnx_add_node (which returns -1). */
static inline nnp_status nnp_pu_err_code(const nnp_error *err)
{
    return err && err->code != NNP_OK ? err->code : NNP_ERR_INTERNAL;
}

/* The base name for a layer's ONNX nodes: its name, else fallback. */
static inline const char *nnp_pu_onnx_base(const nnp_host *h, const nnp_config *cfg,
                                           const char *fallback)
{
    const char *n = h->config_name(cfg);
    return n && n[0] ? n : fallback;
}

/* Adds a one-output node with a unique name derived from base/op; returns
 * the node index or -1. */
static inline int nnp_pu_add_node(const nnp_host *h, nnp_onnx_writer *w, const char *op,
                                  const char *base, const char *const *inputs, int n_inputs,
                                  const char *output, nnp_error *err)
{
    char want[256], name[256];
    snprintf(want, sizeof want, "%s/%s", base, op);
    h->onnx_unique_name(w, want, name, sizeof name);
    return h->onnx_add_node(w, op, "", name, inputs, n_inputs, &output, 1, err);
}

/* Adds Transpose(input) -> output with the permutation perm[rank]. */
static inline nnp_status nnp_pu_add_transpose(const nnp_host *h, nnp_onnx_writer *w,
                                              const char *base, const char *input,
                                              const char *output, const int64_t *perm,
                                              int rank, nnp_error *err)
{
    int node = nnp_pu_add_node(h, w, "Transpose", base, &input, 1, output, err);
    if (node < 0)
        return nnp_pu_err_code(err);
    return h->onnx_attr_ints(w, node, "perm", perm, rank, err);
}

/* A fresh value name base/suffix into buf. */
static inline const char *nnp_pu_value_name(const nnp_host *h, nnp_onnx_writer *w,
                                            const char *base, const char *suffix, char *buf,
                                            size_t size)
{
    char want[256];
    snprintf(want, sizeof want, "%s/%s", base, suffix);
    return h->onnx_unique_name(w, want, buf, size);
}

/* Adds a float32 initializer of the given shape and values; its unique name
 * (derived from base/suffix) goes to name. */
static inline nnp_status nnp_pu_add_const(const nnp_host *h, nnp_onnx_writer *w,
                                          const char *base, const char *suffix,
                                          const nnp_shape *shape, const float *values,
                                          char *name, size_t size, nnp_error *err)
{
    nnp_tensor t;
    nnp_pu_value_name(h, w, base, suffix, name, size);
    nnp_status st = h->tensor_alloc(&t, NNP_F32, shape, err);
    if (st != NNP_OK)
        return st;
    int64_t n = nnp_pu_numel(shape);
    if (n > 0)
        memcpy(t.data, values, (size_t)n * sizeof(float));
    st = h->onnx_add_initializer(w, name, &t, err);
    h->tensor_free(&t);
    return st;
}

/* Same for a 1-D int64 initializer of n values (Reshape shapes). */
static inline nnp_status nnp_pu_add_const_i64(const nnp_host *h, nnp_onnx_writer *w,
                                              const char *base, const char *suffix,
                                              const int64_t *values, int n, char *name,
                                              size_t size, nnp_error *err)
{
    nnp_tensor t;
    nnp_shape shape = {1, {n}};
    nnp_pu_value_name(h, w, base, suffix, name, size);
    nnp_status st = h->tensor_alloc(&t, NNP_I64, &shape, err);
    if (st != NNP_OK)
        return st;
    if (n > 0)
        memcpy(t.data, values, (size_t)n * sizeof(int64_t));
    st = h->onnx_add_initializer(w, name, &t, err);
    h->tensor_free(&t);
    return st;
}

/* ------------------------------------------------------------------ */
/* ONNX reader (from_onnx, onnx_load_weights)                          */
/* ------------------------------------------------------------------ */

/* The node's name for messages ("(unnamed)" when it has none). */
static inline const char *nnp_pu_node_label(const nnp_host *h, const nnp_onnx_reader *r)
{
    const char *n = h->onnx_node_name(r);
    return n && n[0] ? n : "(unnamed)";
}

/* Whether the node has input i (an optional input left out is ""). */
static inline int nnp_pu_has_input(const nnp_host *h, const nnp_onnx_reader *r, int i)
{
    const char *n = i < h->onnx_n_inputs(r) ? h->onnx_input_name(r, i) : NULL;
    return n && n[0];
}

/* Whether the node has output i (an optional output left out is ""). */
static inline int nnp_pu_has_output(const nnp_host *h, const nnp_onnx_reader *r, int i)
{
    const char *n = i < h->onnx_n_outputs(r) ? h->onnx_output_name(r, i) : NULL;
    return n && n[0];
}

/* A dtype's name for messages ("int64"). */
static inline const char *nnp_pu_dtype_name(nnp_dtype dt)
{
    switch (dt) {
    case NNP_F32: return "float";
    case NNP_F64: return "double";
    case NNP_I64: return "int64";
    case NNP_I32: return "int32";
    case NNP_F16: return "float16";
    case NNP_BF16: return "bfloat16";
    case NNP_U8: return "uint8";
    case NNP_BOOL: return "bool";
    default: return "undefined";
    }
}

/* ONNX's type constraint of the operators nnplug computes: every input the
 * file gives is float16, float, double or bfloat16 (what[i] names input i
 * in the message, or NULL for "input i"). For a kind's check_node; a host
 * before 1.1 cannot tell the types, and the check passes. */
static inline nnp_status nnp_pu_check_float_inputs(const nnp_host *h, const nnp_onnx_reader *r,
                                                   const char *const *what, nnp_error *err)
{
    if (!NNP_HAS_FIELD(h, nnp_host, onnx_input_dtype) || !h->onnx_input_dtype)
        return NNP_OK;
    for (int k = 0; k < h->onnx_n_inputs(r); k++) {
        const char *name = h->onnx_input_name(r, k);
        nnp_dtype dt = name && name[0] ? h->onnx_input_dtype(r, k) : NNP_DTYPE_UNDEFINED;
        if (dt == NNP_DTYPE_UNDEFINED || dt == NNP_F32 || dt == NNP_F64 || dt == NNP_F16 ||
            dt == NNP_BF16)
            continue;
        if (what)
            return h->error_set(err, NNP_ERR_FORMAT, "input '%s' ('%s') has element type %s; "
                                "%s takes float16, float, double or bfloat16", what[k], name,
                                nnp_pu_dtype_name(dt), h->onnx_op_type(r));
        return h->error_set(err, NNP_ERR_FORMAT, "input %d ('%s') has element type %s; nnplug "
                            "reads %s with float16, float, double or bfloat16 inputs", k, name,
                            nnp_pu_dtype_name(dt), h->onnx_op_type(r));
    }
    return NNP_OK;
}

/* Entries of an nnp_onnx_input_rule array (ABI 1.3; nnp_onnx_node_ext's
 * input_rules): input `input` (ONNX's name `name`) of operator op (NULL:
 * every operator the kind reads) holds one of `types` (NNP_ONNX_T_* bits, 0:
 * any) and has one of `ranks` (NNP_ONNX_RANK* bits, 0: any) ... */
#define NNP_PU_ONNX_INPUT(op, input, name, types, ranks)                                    \
    {(op), (input), (name), (types), (ranks), NNP_ONNX_NO_INPUT, NNP_ONNX_NO_INPUT,          \
     NNP_ONNX_NO_INPUT}
/* ... and, further, has the rank of input rank_as (NNP_ONNX_NO_INPUT: any)
 * and holds as many values as dimension len_axis of input len_input. */
#define NNP_PU_ONNX_INPUT_LIKE(op, input, name, types, ranks, rank_as, len_input, len_axis) \
    {(op), (input), (name), (types), (ranks), (rank_as), (len_input), (len_axis)}
/* The entry that ends the array. */
#define NNP_PU_ONNX_INPUTS_END                                                             \
    {NULL, 0, NULL, 0, 0, NNP_ONNX_NO_INPUT, NNP_ONNX_NO_INPUT, NNP_ONNX_NO_INPUT}

/* The shape of input i as far as the graph says; returns its rank, -1 when
 * unknown (then sh->rank is -1 too). */
static inline int nnp_pu_input_shape(const nnp_host *h, const nnp_onnx_reader *r, int i,
                                     nnp_shape *sh)
{
    nnp_error e;
    e.code = NNP_OK;
    e.msg[0] = '\0';
    if (h->onnx_input_shape(r, i, sh, &e) != NNP_OK)
        sh->rank = -1;
    return sh->rank;
}

/* An optional int attribute with a default. */
static inline nnp_status nnp_pu_attr_int(const nnp_host *h, const nnp_onnx_reader *r,
                                         const char *name, int64_t dflt, int64_t *v,
                                         nnp_error *err)
{
    *v = dflt;
    if (!h->onnx_has_attr(r, name))
        return NNP_OK;
    return h->onnx_get_attr_int(r, name, v, err);
}

static inline nnp_status nnp_pu_attr_float(const nnp_host *h, const nnp_onnx_reader *r,
                                           const char *name, float dflt, float *v,
                                           nnp_error *err)
{
    *v = dflt;
    if (!h->onnx_has_attr(r, name))
        return NNP_OK;
    return h->onnx_get_attr_float(r, name, v, err);
}

/* An optional ints attribute: returns its length (0 when absent), -1 on
 * error. */
static inline int nnp_pu_attr_ints(const nnp_host *h, const nnp_onnx_reader *r,
                                   const char *name, int64_t *v, int max_n, nnp_error *err)
{
    if (!h->onnx_has_attr(r, name))
        return 0;
    return h->onnx_get_attr_ints(r, name, v, max_n, err);
}

/* ------------------------------------------------------------------ */
/* Config setters (from_onnx)                                          */
/* ------------------------------------------------------------------ */

/* A config value as JSON "[a, b]" from ints. */
static inline nnp_status nnp_pu_set_ints(const nnp_host *h, nnp_config *cfg, const char *key,
                                         const int64_t *v, int n, nnp_error *err)
{
    char buf[256];
    size_t at = 0;
    at += (size_t)snprintf(buf, sizeof buf, "[");
    for (int i = 0; i < n && at + 24 < sizeof buf; i++)
        at += (size_t)snprintf(buf + at, sizeof buf - at, "%s%lld", i ? ", " : "",
                               (long long)v[i]);
    snprintf(buf + at, sizeof buf - at, "]");
    return h->config_set_json(cfg, key, buf, err);
}

/* A config value as the JSON string "v" (v holds no quote or backslash). */
static inline nnp_status nnp_pu_set_string(const nnp_host *h, nnp_config *cfg, const char *key,
                                           const char *v, nnp_error *err)
{
    char buf[256];
    snprintf(buf, sizeof buf, "\"%s\"", v);
    return h->config_set_json(cfg, key, buf, err);
}

/* ------------------------------------------------------------------ */
/* Counter-based randomness                                            */
/* ------------------------------------------------------------------ */

/* splitmix64's finalizer: a hash of a counter, for random draws that are the
 * same for any thread count and can be recomputed instead of stored (the
 * masks of Dropout). */
static inline uint64_t nnp_pu_mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#ifdef __cplusplus
}
#endif
#endif /* NNPLUG_PLUGIN_UTIL_H */
