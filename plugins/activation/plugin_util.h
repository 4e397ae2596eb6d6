/* Small helpers shared by the core layer plugins (activation, dense,
 * conv2d, pooling, shape_ops). Header-only and static: each plugin compiles
 * its own copy, so no symbol crosses a plugin boundary. Everything here
 * talks to nnplug only through the nnp_host table. */
#ifndef NNP_PLUGIN_UTIL_H
#define NNP_PLUGIN_UTIL_H

#include <nnplug/plugin.h>

#include <stdio.h>
#include <string.h>

/* "[4,3,-1]" into buf. */
static inline const char *pu_shape_str(const nnp_shape *sh, char *buf, size_t size)
{
    size_t at = 0;
    if (size == 0)
        return buf;
    buf[0] = '\0';
    if (sh->rank <= 0) {
        snprintf(buf, size, "[]");
        return buf;
    }
    for (int i = 0; i < sh->rank && at + 24 < size; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s%lld", i ? "," : "[",
                               (long long)sh->dims[i]);
    snprintf(buf + at, size - at, "]");
    return buf;
}

static inline const char *pu_name(const nnp_host *h, const nnp_config *cfg)
{
    const char *n = h->config_name(cfg);
    return n && n[0] ? n : "?";
}

static inline int pu_same_shape(const nnp_shape *a, const nnp_shape *b)
{
    if (a->rank != b->rank)
        return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return 0;
    return 1;
}

/* Element count of a concrete shape; -1 when a dim is unknown. */
static inline int64_t pu_numel(const nnp_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) {
        if (s->dims[i] < 0)
            return -1;
        n *= s->dims[i];
    }
    return n;
}

static inline int pu_concrete(const nnp_shape *s)
{
    for (int i = 0; i < s->rank; i++)
        if (s->dims[i] < 0)
            return 0;
    return 1;
}

/* A run-time tensor check: float32, data present, and (when want is not
 * NULL) exactly the shape want. */
static inline nnp_status pu_check(const nnp_host *h, const char *kind, const char *name,
                                  const nnp_tensor *t, const char *what, const nnp_shape *want,
                                  nnp_error *err)
{
    char b1[160], b2[160];
    if (!t)
        return h->error_set(err, NNP_ERR_INVALID, "%s '%s': %s is missing", kind, name, what);
    if (t->dtype != NNP_F32)
        return h->error_set(err, NNP_ERR_INVALID, "%s '%s': %s must be float32 (dtype %d)",
                            kind, name, what, (int)t->dtype);
    if (want && !pu_same_shape(&t->shape, want))
        return h->error_set(err, NNP_ERR_SHAPE, "%s '%s': %s has shape %s, expected %s", kind,
                            name, what, pu_shape_str(&t->shape, b1, sizeof b1),
                            pu_shape_str(want, b2, sizeof b2));
    int64_t n = pu_numel(&t->shape);
    if (n < 0)
        return h->error_set(err, NNP_ERR_SHAPE, "%s '%s': %s has unknown dims %s", kind, name,
                            what, pu_shape_str(&t->shape, b1, sizeof b1));
    if (n > 0 && (!t->data || t->nbytes < (size_t)n * sizeof(float)))
        return h->error_set(err, NNP_ERR_INVALID, "%s '%s': %s has no data for shape %s", kind,
                            name, what, pu_shape_str(&t->shape, b1, sizeof b1));
    return NNP_OK;
}

static inline int pu_nthreads(const nnp_host *h)
{
    int n = h->num_threads ? h->num_threads() : 1;
    return n > 0 ? n : 1;
}

/* The error code of a failed onnx_add_node (which returns -1). */
static inline nnp_status pu_err_code(const nnp_error *err)
{
    return err && err->code != NNP_OK ? err->code : NNP_ERR_INTERNAL;
}

/* Adds a one-output node with a unique name derived from base/op; returns
 * the node index or -1. */
static inline int pu_add_node(const nnp_host *h, nnp_onnx_writer *w, const char *op,
                              const char *base, const char *const *inputs, int n_inputs,
                              const char *output, nnp_error *err)
{
    char want[256], name[256];
    snprintf(want, sizeof want, "%s/%s", base, op);
    h->onnx_unique_name(w, want, name, sizeof name);
    return h->onnx_add_node(w, op, "", name, inputs, n_inputs, &output, 1, err);
}

/* A fresh value name base/suffix into buf. */
static inline const char *pu_value_name(const nnp_host *h, nnp_onnx_writer *w, const char *base,
                                        const char *suffix, char *buf, size_t size)
{
    char want[256];
    snprintf(want, sizeof want, "%s/%s", base, suffix);
    return h->onnx_unique_name(w, want, buf, size);
}

/* Adds a float32 initializer of the given shape and values; its unique name
 * (derived from base/suffix) goes to name. */
static inline nnp_status pu_add_const(const nnp_host *h, nnp_onnx_writer *w, const char *base,
                                      const char *suffix, const nnp_shape *shape,
                                      const float *values, char *name, size_t size,
                                      nnp_error *err)
{
    nnp_tensor t;
    pu_value_name(h, w, base, suffix, name, size);
    nnp_status st = h->tensor_alloc(&t, NNP_F32, shape, err);
    if (st != NNP_OK)
        return st;
    int64_t n = pu_numel(shape);
    if (n > 0)
        memcpy(t.data, values, (size_t)n * sizeof(float));
    st = h->onnx_add_initializer(w, name, &t, err);
    h->tensor_free(&t);
    return st;
}

/* Same for an int64 initializer (Reshape shapes, Clip bounds are float). */
static inline nnp_status pu_add_const_i64(const nnp_host *h, nnp_onnx_writer *w,
                                          const char *base, const char *suffix,
                                          const int64_t *values, int n, char *name, size_t size,
                                          nnp_error *err)
{
    nnp_tensor t;
    nnp_shape shape = {1, {n}};
    pu_value_name(h, w, base, suffix, name, size);
    nnp_status st = h->tensor_alloc(&t, NNP_I64, &shape, err);
    if (st != NNP_OK)
        return st;
    if (n > 0)
        memcpy(t.data, values, (size_t)n * sizeof(int64_t));
    st = h->onnx_add_initializer(w, name, &t, err);
    h->tensor_free(&t);
    return st;
}

/* The base name for a layer's ONNX nodes. */
static inline const char *pu_onnx_base(const nnp_host *h, const nnp_config *cfg,
                                       const char *fallback)
{
    const char *n = h->config_name(cfg);
    return n && n[0] ? n : fallback;
}

static inline const char *pu_node_label(const nnp_host *h, const nnp_onnx_reader *r)
{
    const char *n = h->onnx_node_name(r);
    return n && n[0] ? n : "(unnamed)";
}

/* An optional int attribute with a default. */
static inline nnp_status pu_attr_int(const nnp_host *h, const nnp_onnx_reader *r,
                                     const char *name, int64_t dflt, int64_t *v, nnp_error *err)
{
    *v = dflt;
    if (!h->onnx_has_attr(r, name))
        return NNP_OK;
    return h->onnx_get_attr_int(r, name, v, err);
}

static inline nnp_status pu_attr_float(const nnp_host *h, const nnp_onnx_reader *r,
                                       const char *name, float dflt, float *v, nnp_error *err)
{
    *v = dflt;
    if (!h->onnx_has_attr(r, name))
        return NNP_OK;
    return h->onnx_get_attr_float(r, name, v, err);
}

/* An optional ints attribute: returns its length (0 when absent), -1 on
 * error. */
static inline int pu_attr_ints(const nnp_host *h, const nnp_onnx_reader *r, const char *name,
                               int64_t *v, int max_n, nnp_error *err)
{
    if (!h->onnx_has_attr(r, name))
        return 0;
    return h->onnx_get_attr_ints(r, name, v, max_n, err);
}

/* A config value as JSON "[a, b]" from ints. */
static inline nnp_status pu_set_ints(const nnp_host *h, nnp_config *cfg, const char *key,
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

static inline nnp_status pu_set_string(const nnp_host *h, nnp_config *cfg, const char *key,
                                       const char *v, nnp_error *err)
{
    char buf[256];
    snprintf(buf, sizeof buf, "\"%s\"", v);
    return h->config_set_json(cfg, key, buf, err);
}

/* splitmix64: the finalizer used by the counter-based RNG of Dropout. */
static inline uint64_t pu_mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Name of the extension by which a kind lists further ONNX ops it imports:
 * a const nnp_onnx_op array ended by an entry with op_type NULL. */
#define PU_EXT_ONNX_OPS NNP_EXT_ONNX_OPS

#endif
