/* The ONNX node reader and writer plugins reach through nnp_host: plugins
 * never see protobuf-c. The reader validates every attribute's type before
 * handing a value out; the writer owns every byte it builds. */
#include "interchange/onnx_internal.h"
#include "plugin/host_internal.h"
#include "plugin/onnx_ops.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *nnpi_onnx_strdup(const char *s)
{
    return strdup(s ? s : "");
}

const char *nnpi_onnx_weight_output(const nnp_kind *k, int pos)
{
    const nnp_onnx_node_ext *x = nnpi_kind_onnx_node_ext(k);
    if (!x || !x->weight_outputs || pos < 1)
        return NULL;
    for (int j = 1; x->weight_outputs[j]; j++)
        if (j == pos)
            return x->weight_outputs[j];
    return NULL;
}

/* ---- attributes ---------------------------------------------------------- */

const Onnx__AttributeProto *nnpi_onnx_find_attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && strcmp(n->attribute[i]->name, name) == 0)
            return n->attribute[i];
    return NULL;
}

int nnpi_onnx_attr_type(const Onnx__AttributeProto *a)
{
    if (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED)
        return a->type;
    if (a->has_f)
        return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    if (a->has_i)
        return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    if (a->has_s)
        return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
    if (a->t)
        return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    if (a->g)
        return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
    if (a->n_floats)
        return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
    if (a->n_ints)
        return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    if (a->n_strings)
        return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS;
    return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED;
}

const char *nnpi_onnx_attr_type_name(int type)
{
    switch (type) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: return "FLOAT";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: return "INT";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: return "STRING";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR: return "TENSOR";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH: return "GRAPH";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS: return "FLOATS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS: return "INTS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS: return "STRINGS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS: return "TENSORS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS: return "GRAPHS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR: return "SPARSE_TENSOR";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS: return "SPARSE_TENSORS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTO: return "TYPE_PROTO";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTOS: return "TYPE_PROTOS";
    default: return "UNDEFINED";
    }
}

/* ---- reader -------------------------------------------------------------- */

static const char *r_op_type(const nnp_onnx_reader *r) { return ONNX_STR(r->node->op_type); }

static const char *r_domain(const nnp_onnx_reader *r) { return ONNX_STR(r->node->domain); }

static const char *r_node_name(const nnp_onnx_reader *r) { return r->name; }

static int r_opset(const nnp_onnx_reader *r) { return r->opset; }

static int r_n_inputs(const nnp_onnx_reader *r)
{
    return (int)r->node->n_input + (r->extra_in ? 1 : 0);
}

static int r_n_outputs(const nnp_onnx_reader *r) { return (int)r->node->n_output; }

static const char *r_input_name(const nnp_onnx_reader *r, int i)
{
    if (r->extra_in && i >= 0 && (size_t)i == r->node->n_input)
        return r->extra_in;
    if (i < 0 || (size_t)i >= r->node->n_input)
        return NULL;
    if (i == 0 && r->in0)
        return r->in0;
    return ONNX_STR(r->node->input[i]);
}

static const char *r_output_name(const nnp_onnx_reader *r, int i)
{
    if (i < 0 || (size_t)i >= r->node->n_output)
        return NULL;
    return ONNX_STR(r->node->output[i]);
}

static int r_has_attr(const nnp_onnx_reader *r, const char *name)
{
    return nnpi_onnx_find_attr(r->node, name) != NULL;
}

/* The attribute `name` of type `want`, or an error naming node and attribute. */
static nnp_status get_attr(const nnp_onnx_reader *r, const char *name, int want,
                           const Onnx__AttributeProto **a, nnp_error *err)
{
    *a = nnpi_onnx_find_attr(r->node, name);
    if (!*a)
        return nnp_error_set(err, NNP_ERR_NOT_FOUND, "node '%s' (%s) has no attribute '%s'",
                             r->name, r_op_type(r), name);
    int t = nnpi_onnx_attr_type(*a);
    if (t != want)
        return nnp_error_set(err, NNP_ERR_FORMAT,
                             "node '%s' (%s): attribute '%s' has type %s, expected %s", r->name,
                             r_op_type(r), name, nnpi_onnx_attr_type_name(t),
                             nnpi_onnx_attr_type_name(want));
    return NNP_OK;
}

static nnp_status r_attr_int(const nnp_onnx_reader *r, const char *name, int64_t *v,
                             nnp_error *err)
{
    const Onnx__AttributeProto *a;
    nnp_status st = get_attr(r, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT, &a, err);
    if (st == NNP_OK)
        *v = a->i;
    return st;
}

static nnp_status r_attr_float(const nnp_onnx_reader *r, const char *name, float *v,
                               nnp_error *err)
{
    const Onnx__AttributeProto *a;
    nnp_status st = get_attr(r, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT, &a, err);
    if (st == NNP_OK)
        *v = a->f;
    return st;
}

static int r_attr_ints(const nnp_onnx_reader *r, const char *name, int64_t *v, int max_n,
                       nnp_error *err)
{
    const Onnx__AttributeProto *a;
    if (get_attr(r, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS, &a, err))
        return -1;
    if (a->n_ints > (size_t)(max_n < 0 ? 0 : max_n)) {
        nnp_error_set(err, NNP_ERR_FORMAT,
                      "node '%s' (%s): attribute '%s' has %zu values, at most %d expected",
                      r->name, r_op_type(r), name, a->n_ints, max_n);
        return -1;
    }
    for (size_t i = 0; i < a->n_ints; i++)
        v[i] = a->ints[i];
    return (int)a->n_ints;
}

static nnp_status r_attr_string(const nnp_onnx_reader *r, const char *name, char *buf,
                                size_t bufsize, nnp_error *err)
{
    const Onnx__AttributeProto *a;
    nnp_status st = get_attr(r, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING, &a, err);
    if (st)
        return st;
    if (!bufsize || a->s.len >= bufsize || memchr(a->s.data, 0, a->s.len))
        return nnp_error_set(err, NNP_ERR_FORMAT,
                             "node '%s' (%s): attribute '%s' is too long or holds a NUL byte",
                             r->name, r_op_type(r), name);
    if (a->s.len)
        memcpy(buf, a->s.data, a->s.len);
    buf[a->s.len] = '\0';
    return NNP_OK;
}

static nnp_status r_input_constant(const nnp_onnx_reader *r, int i, const nnp_tensor **t,
                                   nnp_error *err)
{
    *t = NULL;
    const char *name = r_input_name(r, i);
    if (!name || !name[0])
        return nnp_error_set(err, NNP_ERR_NOT_FOUND, "node '%s' (%s) has no input %d", r->name,
                             r_op_type(r), i);
    return nnpi_onnx_import_constant(r->imp, name, t, err);
}

static nnp_status r_input_shape(const nnp_onnx_reader *r, int i, nnp_shape *s, nnp_error *err)
{
    const char *name = r_input_name(r, i);
    memset(s, 0, sizeof *s);
    s->rank = -1;
    if (!name || !name[0])
        return nnp_error_set(err, NNP_ERR_NOT_FOUND, "node '%s' (%s) has no input %d", r->name,
                             r_op_type(r), i);
    if (i == 0 && r->in0)
        return nnpi_onnx_import_fold_shape(r->imp, name, r->perm0, r->rank0, s);
    return nnpi_onnx_import_shape(r->imp, name, s, err);
}

static nnp_dtype r_input_dtype(const nnp_onnx_reader *r, int i)
{
    const char *name = r_input_name(r, i);
    return name && name[0] ? nnpi_onnx_import_dtype(r->imp, name) : NNP_DTYPE_UNDEFINED;
}

/* ---- writer -------------------------------------------------------------- */

#define GROW(arr, n, cap)                                                              \
    ((n) < (cap) ? 0                                                                   \
                 : grow_array((void **)&(arr), &(cap), sizeof *(arr)))

static int grow_array(void **p, size_t *cap, size_t elem)
{
    size_t nc = *cap ? *cap * 2 : 16;
    void *q = realloc(*p, nc * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = nc;
    return 0;
}

void nnpi_onnx_writer_init(nnp_onnx_writer *w, int opset)
{
    memset(w, 0, sizeof *w);
    w->ops = &nnpi_onnx_writer_ops;
    w->opset = opset;
}

void nnpi_onnx_writer_free(nnp_onnx_writer *w)
{
    for (size_t i = 0; i < w->n_nodes; i++)
        onnx__node_proto__free_unpacked(w->nodes[i], NULL);
    for (size_t i = 0; i < w->n_inits; i++)
        onnx__tensor_proto__free_unpacked(w->inits[i], NULL);
    for (size_t i = 0; i < w->n_vis; i++)
        onnx__value_info_proto__free_unpacked(w->vis[i], NULL);
    free(w->nodes);
    free(w->inits);
    free(w->init_data);
    for (size_t i = 0; i < w->n_inits_ref; i++)
        free(w->init_ref[i]);
    free(w->init_ref);
    free(w->vis);
    nnpi_onnx_map_free(&w->names);
    nnpi_onnx_map_free(&w->aliases);
    nnpi_onnx_map_free(&w->node_names);
    nnpi_onnx_map_free(&w->produced);
    nnpi_onnx_map_free(&w->init_names);
    memset(w, 0, sizeof *w);
}

nnp_status nnpi_onnx_writer_reserve(nnp_onnx_writer *w, const char *name, nnp_error *err)
{
    return nnpi_onnx_map_put(&w->names, name, 1, err);
}

static int w_opset(const nnp_onnx_writer *w) { return w->opset; }

static const char *w_unique_name(nnp_onnx_writer *w, const char *base, char *buf, size_t bufsize)
{
    if (!buf || bufsize < 16)
        return NULL;
    if (!base || !base[0])
        base = "t";
    /* room for a "_<k>" suffix: a long base is cut, never the suffix */
    int keep = (int)(bufsize - 13);
    if (snprintf(buf, bufsize, "%.*s", keep, base) < 0)
        return NULL;
    for (int k = 1; nnpi_onnx_map_get(&w->names, buf) >= 0; k++)
        if (snprintf(buf, bufsize, "%.*s_%d", keep, base, k) < 0)
            return NULL;
    if (nnpi_onnx_map_put(&w->names, buf, 1, NULL))
        return NULL;
    return buf;
}

/* Initializer names repeated for a shared layer resolve to the first one. */
static const char *resolve_alias(const nnp_onnx_writer *w, const char *name)
{
    int a = nnpi_onnx_map_get(&w->aliases, name);
    return a >= 0 ? w->init_ref[a] : name;
}

static int w_add_node(nnp_onnx_writer *w, const char *op_type, const char *domain,
                      const char *name, const char *const *inputs, int n_inputs,
                      const char *const *outputs, int n_outputs, nnp_error *err)
{
    if (!op_type || !op_type[0] || n_inputs < 0 || n_outputs < 1 || n_inputs > 1024 ||
        n_outputs > 1024 || (n_inputs && !inputs) || !outputs) {
        nnp_error_set(err, NNP_ERR_INVALID, "onnx_add_node: bad arguments");
        return -1;
    }
    if (GROW(w->nodes, w->n_nodes, w->cap_nodes)) {
        nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
        return -1;
    }
    Onnx__NodeProto *n = malloc(sizeof *n);
    if (!n) {
        nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
        return -1;
    }
    onnx__node_proto__init(n);
    w->nodes[w->n_nodes] = n;   /* owned by the writer from here on */
    int idx = (int)w->n_nodes++;
    /* node names are their own namespace; a taken one gets a suffix */
    char nb[512];
    const char *nm = name && name[0] ? name : op_type;
    snprintf(nb, sizeof nb, "%.490s", nm);
    for (int k = 1; nnpi_onnx_map_get(&w->node_names, nb) >= 0; k++)
        snprintf(nb, sizeof nb, "%.490s_%d", nm, k);
    if (nnpi_onnx_map_put(&w->node_names, nb, idx, err))
        return -1;
    n->name = nnpi_onnx_strdup(nb);
    n->op_type = nnpi_onnx_strdup(op_type);
    n->domain = nnpi_onnx_strdup(domain);
    n->input = calloc((size_t)(n_inputs ? n_inputs : 1), sizeof(char *));
    n->output = calloc((size_t)n_outputs, sizeof(char *));
    if (!n->name || !n->op_type || !n->domain || !n->input || !n->output) {
        nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
        return -1;
    }
    for (int i = 0; i < n_inputs; i++) {
        n->input[i] = nnpi_onnx_strdup(inputs[i] ? resolve_alias(w, inputs[i]) : "");
        n->n_input++;
        if (!n->input[i]) {
            nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
            return -1;
        }
    }
    for (int i = 0; i < n_outputs; i++) {
        if (!outputs[i] || !outputs[i][0]) {
            nnp_error_set(err, NNP_ERR_INVALID, "onnx_add_node %s: output %d has no name", op_type,
                          i);
            return -1;
        }
        int prev = nnpi_onnx_map_get(&w->produced, outputs[i]);
        if (prev >= 0) {
            nnp_error_set(err, NNP_ERR_DUPLICATE,
                          "onnx_add_node %s: tensor '%s' is already produced by node '%s'",
                          op_type, outputs[i], w->nodes[prev]->name);
            return -1;
        }
        n->output[i] = nnpi_onnx_strdup(outputs[i]);
        n->n_output++;
        if (!n->output[i] || nnpi_onnx_map_put(&w->names, outputs[i], 1, err) ||
            nnpi_onnx_map_put(&w->produced, outputs[i], idx, err)) {
            nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
            return -1;
        }
    }
    return idx;
}

nnp_status nnpi_onnx_writer_node_add_output(nnp_onnx_writer *w, int node, const char *name,
                                            nnp_error *err)
{
    Onnx__NodeProto *n = w->nodes[node];
    char **o = realloc(n->output, sizeof(char *) * (n->n_output + 1));
    if (!o)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    n->output = o;
    n->output[n->n_output] = nnpi_onnx_strdup(name);
    if (!n->output[n->n_output])
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    n->n_output++;
    if (!name[0])
        return NNP_OK;   /* an absent optional output */
    if (nnpi_onnx_map_get(&w->produced, name) >= 0)
        return nnp_error_set(err, NNP_ERR_DUPLICATE, "tensor '%s' is produced twice", name);
    nnp_status st = nnpi_onnx_map_put(&w->produced, name, node, err);
    return st ? st : nnpi_onnx_map_put(&w->names, name, 1, err);
}

static const Onnx__NodeProto *w_node(const nnp_onnx_writer *w, int node)
{
    return w && node >= 0 && (size_t)node < w->n_nodes ? w->nodes[node] : NULL;
}

static const char *w_node_name(const nnp_onnx_writer *w, int node)
{
    const Onnx__NodeProto *n = w_node(w, node);
    return n ? n->name : NULL;
}

static int w_node_n_outputs(const nnp_onnx_writer *w, int node)
{
    const Onnx__NodeProto *n = w_node(w, node);
    return n ? (int)n->n_output : -1;
}

static const char *w_node_output(const nnp_onnx_writer *w, int node, int i)
{
    const Onnx__NodeProto *n = w_node(w, node);
    return n && i >= 0 && (size_t)i < n->n_output ? n->output[i] : NULL;
}

nnp_status nnpi_onnx_writer_set_output(nnp_onnx_writer *w, int node, int i, const char *name,
                                       nnp_error *err)
{
    if (!w_node(w, node) || i < 0 || !name || !name[0])
        return nnp_error_set(err, NNP_ERR_INVALID, "onnx_writer_set_output: bad node %d, "
                             "output %d or name", node, i);
    Onnx__NodeProto *n = w->nodes[node];
    while (n->n_output < (size_t)i) {
        nnp_status st = nnpi_onnx_writer_node_add_output(w, node, "", err);
        if (st)
            return st;
    }
    if (n->n_output == (size_t)i)
        return nnpi_onnx_writer_node_add_output(w, node, name, err);
    if (n->output[i][0])
        return nnp_error_set(err, NNP_ERR_DUPLICATE, "node '%s': output %d is '%s' already",
                             n->name, i, n->output[i]);
    if (nnpi_onnx_map_get(&w->produced, name) >= 0)
        return nnp_error_set(err, NNP_ERR_DUPLICATE, "tensor '%s' is produced twice", name);
    char *copy = nnpi_onnx_strdup(name);
    if (!copy)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    free(n->output[i]);
    n->output[i] = copy;
    nnp_status st = nnpi_onnx_map_put(&w->produced, name, node, err);
    return st ? st : nnpi_onnx_map_put(&w->names, name, 1, err);
}

static nnp_status new_attr(nnp_onnx_writer *w, int node, const char *name, int type,
                           Onnx__AttributeProto **out, nnp_error *err)
{
    *out = NULL;
    if (node < 0 || (size_t)node >= w->n_nodes || !name || !name[0])
        return nnp_error_set(err, NNP_ERR_INVALID, "onnx attribute: bad node %d or name", node);
    Onnx__NodeProto *n = w->nodes[node];
    if (nnpi_onnx_find_attr(n, name))
        return nnp_error_set(err, NNP_ERR_DUPLICATE, "node '%s': attribute '%s' set twice",
                             n->name, name);
    Onnx__AttributeProto **arr = realloc(n->attribute, sizeof *arr * (n->n_attribute + 1));
    if (!arr)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    n->attribute = arr;
    Onnx__AttributeProto *a = malloc(sizeof *a);
    if (!a)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    onnx__attribute_proto__init(a);
    arr[n->n_attribute++] = a;
    a->name = nnpi_onnx_strdup(name);
    if (!a->name)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    a->has_type = 1;
    a->type = type;
    *out = a;
    return NNP_OK;
}

static nnp_status w_attr_int(nnp_onnx_writer *w, int node, const char *name, int64_t v,
                             nnp_error *err)
{
    Onnx__AttributeProto *a;
    nnp_status st = new_attr(w, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT, &a, err);
    if (st == NNP_OK) {
        a->has_i = 1;
        a->i = v;
    }
    return st;
}

static nnp_status w_attr_float(nnp_onnx_writer *w, int node, const char *name, float v,
                               nnp_error *err)
{
    Onnx__AttributeProto *a;
    nnp_status st = new_attr(w, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT, &a, err);
    if (st == NNP_OK) {
        a->has_f = 1;
        a->f = v;
    }
    return st;
}

static nnp_status w_attr_ints(nnp_onnx_writer *w, int node, const char *name, const int64_t *v,
                              int n, nnp_error *err)
{
    if (n < 0 || (n && !v))
        return nnp_error_set(err, NNP_ERR_INVALID, "onnx_attr_ints '%s': bad list", ONNX_STR(name));
    Onnx__AttributeProto *a;
    nnp_status st = new_attr(w, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS, &a, err);
    if (st)
        return st;
    a->ints = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!a->ints)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    if (n)
        memcpy(a->ints, v, sizeof(int64_t) * (size_t)n);
    a->n_ints = (size_t)n;
    return NNP_OK;
}

static nnp_status w_attr_string(nnp_onnx_writer *w, int node, const char *name, const char *v,
                                nnp_error *err)
{
    Onnx__AttributeProto *a;
    nnp_status st = new_attr(w, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING, &a, err);
    if (st)
        return st;
    size_t len = strlen(ONNX_STR(v));
    a->s.data = malloc(len ? len : 1);
    if (!a->s.data)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    if (len)
        memcpy(a->s.data, v, len);
    a->s.len = len;
    a->has_s = 1;
    return NNP_OK;
}

/* Name of the current layer's weight whose storage is `data`, or NULL. */
static const char *layer_weight_of(const nnp_onnx_writer *w, const void *data)
{
    if (!w->layer || !data)
        return NULL;
    for (int i = 0; i < nnp_layer_n_weights(w->layer); i++) {
        const nnp_weight *wt = nnp_layer_weight(w->layer, i);
        if (wt && wt->value && wt->value->data == data)
            return wt->name;
    }
    return NULL;
}

static int dtype_by_name(const char *s)
{
    if (!s)
        return 0;
    if (strcmp(s, "float16") == 0)
        return ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16;
    if (strcmp(s, "bfloat16") == 0)
        return ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16;
    if (strcmp(s, "float64") == 0)
        return ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
    return 0;
}

static const char *dtype_suffix(int dt)
{
    return dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16    ? "float16"
           : dt == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16 ? "bfloat16"
                                                            : "float64";
}

/* A weight first read from a float16 / bfloat16 / float64 initializer is
 * written back in that type, followed by a Cast to float: the file keeps
 * the original data, and every consumer still reads float32 (ONNX Runtime
 * has no BatchNormalization with mixed double/float types). */
static nnp_status w_add_initializer(nnp_onnx_writer *w, const char *name, const nnp_tensor *t,
                                    nnp_error *err)
{
    if (!name || !name[0] || !t)
        return nnp_error_set(err, NNP_ERR_INVALID, "onnx_add_initializer: bad arguments");
    if (nnpi_onnx_map_get(&w->produced, name) >= 0 || nnpi_onnx_map_get(&w->aliases, name) >= 0 ||
        nnpi_onnx_map_get(&w->init_names, name) >= 0)
        return nnp_error_set(err, NNP_ERR_DUPLICATE, "initializer '%s' added twice", name);
    const char *weight = layer_weight_of(w, t->data);
    if (weight) {
        /* a layer applied several times shares its weights: write them once */
        for (size_t i = 0; i < w->n_inits; i++)
            if (w->init_data[i] == t->data)
                return nnpi_onnx_map_put(&w->aliases, name, (int)i, err);
    }
    int dt = 0;
    if (weight && w->dtypes && t->dtype == NNP_F32)
        dt = dtype_by_name(json_string_value(json_object_get(w->dtypes, weight)));
    if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16 && w->opset < 13)
        dt = 0;   /* Cast from bfloat16 exists from opset 13 */
    if (GROW(w->inits, w->n_inits, w->cap_inits))
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    const void **d = realloc(w->init_data, sizeof *d * w->cap_inits);
    if (d)
        w->init_data = d;
    char **r = realloc(w->init_ref, sizeof *r * w->cap_inits);
    if (r)
        w->init_ref = r;
    if (!d || !r)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    Onnx__TensorProto *tp = malloc(sizeof *tp);
    char *ref = nnpi_onnx_strdup(name);
    if (!tp || !ref) {
        free(tp);
        free(ref);
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    }
    onnx__tensor_proto__init(tp);
    w->inits[w->n_inits] = tp;
    w->init_data[w->n_inits] = weight ? t->data : NULL;
    w->init_ref[w->n_inits] = ref;
    w->n_inits_ref = ++w->n_inits;
    char stored[512], want[512];
    const char *iname = name;
    if (dt) {
        snprintf(want, sizeof want, "%.400s_%s", name, dtype_suffix(dt));
        iname = w_unique_name(w, want, stored, sizeof stored);
        if (!iname)
            return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    }
    nnp_status st = nnpi_onnx_tensor_write(tp, iname, t, dt, err);
    if (st == NNP_OK)
        st = nnpi_onnx_map_put(&w->names, name, 1, err);
    if (st == NNP_OK)
        st = nnpi_onnx_map_put(&w->init_names, name, (int)w->n_inits - 1, err);
    if (st == NNP_OK && dt)
        st = nnpi_onnx_map_put(&w->init_names, iname, (int)w->n_inits - 1, err);
    if (st || !dt)
        return st;
    snprintf(want, sizeof want, "%.400s/cast", name);
    char node_name[512];
    if (!w_unique_name(w, want, node_name, sizeof node_name))
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    int node = w_add_node(w, "Cast", "", node_name, &iname, 1, &name, 1, err);
    if (node < 0)
        return err ? err->code : NNP_ERR_INTERNAL;
    return w_attr_int(w, node, "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, err);
}

static void set_dims(Onnx__TensorShapeProto *sp, const nnp_shape *shape)
{
    sp->dim = calloc((size_t)(shape->rank > 0 ? shape->rank : 1), sizeof *sp->dim);
    if (!sp->dim)
        return;
    for (int i = 0; i < shape->rank; i++) {
        Onnx__TensorShapeProto__Dimension *d = malloc(sizeof *d);
        if (!d)
            return;
        onnx__tensor_shape_proto__dimension__init(d);
        /* -1 is the batch wherever a Transpose moved it; below -1: unknown */
        if (shape->dims[i] >= 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = shape->dims[i];
        } else if (shape->dims[i] == -1) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = nnpi_onnx_strdup("N");
        }
        sp->dim[sp->n_dim++] = d;
    }
}

Onnx__ValueInfoProto *nnpi_onnx_make_value_info(const char *name, int elem_type,
                                                const nnp_shape *shape)
{
    Onnx__ValueInfoProto *vi = malloc(sizeof *vi);
    Onnx__TypeProto *tp = malloc(sizeof *tp);
    Onnx__TypeProto__Tensor *tt = malloc(sizeof *tt);
    Onnx__TensorShapeProto *sp = shape ? malloc(sizeof *sp) : NULL;
    if (!vi || !tp || !tt || (shape && !sp)) {
        free(vi);
        free(tp);
        free(tt);
        free(sp);
        return NULL;
    }
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    vi->name = nnpi_onnx_strdup(name);
    vi->type = tp;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    tt->has_elem_type = 1;
    tt->elem_type = elem_type;
    if (sp) {
        onnx__tensor_shape_proto__init(sp);
        tt->shape = sp;
        set_dims(sp, shape);
        if ((size_t)shape->rank != sp->n_dim || !vi->name) {
            onnx__value_info_proto__free_unpacked(vi, NULL);
            return NULL;
        }
    }
    if (!vi->name) {
        onnx__value_info_proto__free_unpacked(vi, NULL);
        return NULL;
    }
    return vi;
}

nnp_status nnpi_onnx_writer_add_vi(nnp_onnx_writer *w, const char *name, int elem_type,
                                   const nnp_shape *shape, nnp_error *err)
{
    for (size_t i = 0; i < w->n_vis; i++)
        if (strcmp(w->vis[i]->name, name) == 0)
            return NNP_OK;   /* the first description wins */
    if (GROW(w->vis, w->n_vis, w->cap_vis))
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    Onnx__ValueInfoProto *vi = nnpi_onnx_make_value_info(name, elem_type, shape);
    if (!vi)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    w->vis[w->n_vis++] = vi;
    return NNP_OK;
}

static nnp_status w_add_value_info(nnp_onnx_writer *w, const char *name, nnp_dtype dtype,
                                   const nnp_shape *shape, nnp_error *err)
{
    int et = nnpi_onnx_dtype_from_nnp(dtype);
    if (!name || !name[0] || !et || (shape && (shape->rank < 0 || shape->rank > NNP_MAX_RANK)))
        return nnp_error_set(err, NNP_ERR_INVALID, "onnx_add_value_info: bad arguments");
    return nnpi_onnx_writer_add_vi(w, name, et, shape, err);
}

/* ---- the ops tables (src/plugin/onnx_ops.h) ------------------------------- */

const nnp_onnx_writer_ops nnpi_onnx_writer_ops = {
    .opset = w_opset,
    .unique_name = w_unique_name,
    .add_node = w_add_node,
    .attr_int = w_attr_int,
    .attr_float = w_attr_float,
    .attr_ints = w_attr_ints,
    .attr_string = w_attr_string,
    .add_initializer = w_add_initializer,
    .add_value_info = w_add_value_info,
    .node_name = w_node_name,
    .node_n_outputs = w_node_n_outputs,
    .node_output = w_node_output,
    .set_output = nnpi_onnx_writer_set_output,
};

const nnp_onnx_reader_ops nnpi_onnx_reader_ops = {
    .op_type = r_op_type,
    .domain = r_domain,
    .node_name = r_node_name,
    .opset = r_opset,
    .n_inputs = r_n_inputs,
    .n_outputs = r_n_outputs,
    .input_name = r_input_name,
    .output_name = r_output_name,
    .has_attr = r_has_attr,
    .get_attr_int = r_attr_int,
    .get_attr_float = r_attr_float,
    .get_attr_ints = r_attr_ints,
    .get_attr_string = r_attr_string,
    .input_constant = r_input_constant,
    .input_shape = r_input_shape,
    .input_dtype = r_input_dtype,
};
