/* ONNX export: nnp_model -> ModelProto bytes.
 *
 * Each node's layer writes its own ONNX nodes through the host writer
 * (kind->to_onnx). This file adds what no single layer knows: graph inputs
 * and outputs with a symbolic batch dimension, value infos for every
 * tensor, training mode and running-statistics outputs of nodes the model
 * runs in training mode, and the layer configs in metadata_props. The
 * bytes depend only on the model (protobuf-c packs fields in order; JSON
 * is written with sorted keys), so the same model gives the same file. */
#include "graph/plan_internal.h"
#include "interchange/io_internal.h"
#include "interchange/onnx_internal.h"
#include "plugin/instance_internal.h"
#include "plugin/host_internal.h"
#include "services/config_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(code, ...) nnp_error_set(err, code, __VA_ARGS__)

int nnp_onnx_ir_version(int opset)
{
    if (opset < NNP_ONNX_OPSET_MIN || opset > NNP_ONNX_OPSET_MAX)
        return 0;
    if (opset <= 9)
        return 4;
    if (opset == 10)
        return 5;
    if (opset == 11)
        return 6;
    if (opset <= 14)
        return 7;
    return 8;
}

/* ---- shapes of tensors a layer made internally ---------------------------- */

typedef struct shape_map {
    onnx_map idx;
    nnp_shape *s;
    int n, cap;
} shape_map;

static nnp_status shape_put(shape_map *m, const char *name, const nnp_shape *s, nnp_error *err)
{
    if (nnpi_onnx_map_get(&m->idx, name) >= 0)
        return NNP_OK;
    if (m->n == m->cap) {
        int nc = m->cap ? m->cap * 2 : 32;
        nnp_shape *p = realloc(m->s, sizeof *p * (size_t)nc);
        if (!p)
            return FAIL(NNP_ERR_NOMEM, "out of memory");
        m->s = p;
        m->cap = nc;
    }
    m->s[m->n] = *s;
    return nnpi_onnx_map_put(&m->idx, name, m->n++, err);
}

static const nnp_shape *shape_get(const shape_map *m, const char *name)
{
    int i = nnpi_onnx_map_get(&m->idx, name);
    return i >= 0 ? &m->s[i] : NULL;
}

/* Output shapes of the ops layers write around themselves, so that every
 * tensor gets a value info even when the layer did not describe it. */
/* Integer values of an int64 initializer (a Reshape's target shape). */
static int init_ints(const nnp_onnx_writer *w, const char *name, int64_t *v, int max)
{
    for (size_t i = 0; i < w->n_inits; i++) {
        const Onnx__TensorProto *t = w->inits[i];
        if (strcmp(t->name, name) != 0)
            continue;
        if (t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || t->n_dims != 1 ||
            t->dims[0] > max || !t->has_raw_data || t->raw_data.len != (size_t)t->dims[0] * 8)
            return -1;
        memcpy(v, t->raw_data.data, t->raw_data.len);
        return (int)t->dims[0];
    }
    return -1;
}

static nnp_status infer_node(const nnp_onnx_writer *w, shape_map *sm, const Onnx__NodeProto *n,
                             nnp_error *err)
{
    const nnp_shape *in = n->n_input ? shape_get(sm, n->input[0]) : NULL;
    if (!in || !n->n_output)
        return NNP_OK;
    const char *op = n->op_type;
    if (strcmp(op, "Identity") == 0 || strcmp(op, "Relu") == 0 || strcmp(op, "Cast") == 0)
        return shape_put(sm, n->output[0], in, err);
    if (strcmp(op, "Transpose") == 0) {
        const Onnx__AttributeProto *a = nnpi_onnx_find_attr(n, "perm");
        nnp_shape o = *in;
        if (a && a->n_ints == (size_t)in->rank) {
            for (int i = 0; i < in->rank; i++) {
                if (a->ints[i] < 0 || a->ints[i] >= in->rank)
                    return NNP_OK;
                o.dims[i] = in->dims[a->ints[i]];
            }
        } else if (!a) {
            for (int i = 0; i < in->rank; i++)
                o.dims[i] = in->dims[in->rank - 1 - i];
        } else {
            return NNP_OK;
        }
        return shape_put(sm, n->output[0], &o, err);
    }
    if (strcmp(op, "Reshape") == 0 && n->n_input >= 2) {
        int64_t t[NNP_MAX_RANK];
        int r = init_ints(w, n->input[1], t, NNP_MAX_RANK);
        if (r < 0)
            return NNP_OK;
        nnp_shape o = {r, {0}};
        int64_t known = 1, total = 1, fill = -1;
        for (int i = 0; i < in->rank; i++)
            total = in->dims[i] >= 0 && total >= 0 ? total * in->dims[i] : -1;
        for (int i = 0; i < r; i++) {
            o.dims[i] = t[i] > 0 ? t[i] : t[i] == 0 && i < in->rank ? in->dims[i] : -2;
            if (t[i] == -1)
                fill = i;
            else
                known = o.dims[i] >= 0 && known >= 0 ? known * o.dims[i] : -1;
        }
        if (fill >= 0 && total >= 0 && known > 0)
            o.dims[fill] = total / known;
        return shape_put(sm, n->output[0], &o, err);
    }
    return NNP_OK;
}

/* Activations carry the batch first (Keras's convention, which every layer
 * keeps): written as the symbolic "N" whatever batch the model was declared
 * with. Weight outputs have no batch. */
static nnp_shape batch_shape(const nnp_model *m, int v)
{
    nnp_shape s = *nnp_model_value_shape(m, v);
    for (int d = 1; d < s.rank; d++)
        if (s.dims[d] < 0)
            s.dims[d] = -2;   /* unknown, not the batch */
    if (s.rank > 0 && nnp_model_weight_output_layer(m, v, NULL) < 0)
        s.dims[0] = -1;
    return s;
}

/* ---- assembling the model --------------------------------------------------- */

typedef struct export_ctx {
    const nnp_model *m;
    int fold;              /* an inference export: affines folded into producers */
    int *folded;           /* per node: written by its producer's to_onnx_affine */
    nnp_onnx_writer w;
    json_t *layers;        /* nnplug.layers, one entry per layer */
    json_t *dtypes;        /* model metadata nnplug.initializer_dtypes, parsed */
    int *layer_node;       /* per layer: index of its last main ONNX node, or -1 */
    int *train_nodes;      /* ONNX nodes in training mode ... */
    const nnp_layer **train_layers; /* ... and the layers that wrote them */
    int n_train;
    int n_borrowed;        /* the first metadata_props values are the model's own strings */
} export_ctx;

/* The node of this call that is the kind's own op (the middle of a
 * Transpose sandwich, say), or -1. */
static int main_node(const export_ctx *x, const nnp_kind *k, size_t first)
{
    if (!k->onnx.op_type)
        return -1;
    for (size_t i = first; i < x->w.n_nodes; i++)
        if (strcmp(x->w.nodes[i]->op_type, k->onnx.op_type) == 0)
            return (int)i;
    return -1;
}

/* An inference export: node nd written with the affine of the node after
 * it folded in, when the plan's rules allow and both kinds agree; that
 * node is then left out. NNP_ERR_NOT_FOUND: nd is written as it is. */
static nnp_status export_folded(export_ctx *x, int nd, const char *const *ins, int n_in,
                                const char **out, nnp_error *err)
{
    const nnp_model *m = x->m;
    int axis, j = nnpi_model_affine_reader(m, nd, &axis);
    if (j < 0)
        return NNP_ERR_NOT_FOUND;
    const nnp_shape *s = nnp_model_value_shape(m, nnp_model_node_output(m, nd));
    const int64_t c = s && axis < s->rank ? s->dims[axis] : -1;
    float *buf = c > 0 ? malloc(2 * (size_t)c * sizeof(float)) : NULL;
    if (!buf)
        return c > 0 ? FAIL(NNP_ERR_NOMEM, "out of memory") : NNP_ERR_NOT_FOUND;
    nnpi_layer_inference_affine(nnp_model_layer(m, nnp_model_node_layer(m, j)), buf, buf + c);
    const char *o = nnp_model_value_name(m, nnp_model_node_output(m, j));
    nnp_error declined = {0};
    const size_t first = x->w.n_nodes;
    nnp_status st = nnpi_layer_to_onnx_affine(nnp_model_layer(m, nnp_model_node_layer(m, nd)),
                                              &x->w, ins, n_in, o, axis, buf, buf + c, &declined);
    free(buf);
    if (st == NNP_ERR_UNSUPPORTED && x->w.n_nodes == first) /* declined: written plain */
        return NNP_ERR_NOT_FOUND;
    if (st) {
        *err = declined;
        return st;
    }
    x->folded[j] = 1;
    *out = o;
    return NNP_OK;
}

static nnp_status export_node(export_ctx *x, int nd, nnp_error *err)
{
    const nnp_model *m = x->m;
    int li = nnp_model_node_layer(m, nd);
    const nnp_layer *layer = nnp_model_layer(m, li);
    const nnp_kind *k = nnp_layer_kind_of(layer);
    const char *lname = nnp_layer_name(layer);
    if (!k->to_onnx)
        return FAIL(NNP_ERR_UNSUPPORTED, "layer '%s' (%s) cannot be exported to ONNX", lname,
                    k->name);
    int n_in = nnp_model_node_n_inputs(m, nd);
    const char *ins[64];
    if (n_in > 64)
        return FAIL(NNP_ERR_UNSUPPORTED, "layer '%s': too many inputs", lname);
    for (int i = 0; i < n_in; i++)
        ins[i] = nnp_model_value_name(m, nnp_model_node_input(m, nd, i));
    const char *out = nnp_model_value_name(m, nnp_model_node_output(m, nd));
    size_t first = x->w.n_nodes;
    x->w.layer = layer;
    x->w.dtypes = json_object_get(x->dtypes, lname);
    nnp_status st = x->fold ? export_folded(x, nd, ins, n_in, &out, err) : NNP_ERR_NOT_FOUND;
    if (st == NNP_ERR_NOT_FOUND)
        st = nnpi_layer_to_onnx(layer, &x->w, ins, n_in, out, err);
    x->w.layer = NULL;
    x->w.dtypes = NULL;
    if (st)
        return nnp_error_prefix(err, "layer '%s' (%s)", lname, k->name);
    if (x->w.n_nodes == first)
        return FAIL(NNP_ERR_INTERNAL, "layer '%s' (%s) wrote no ONNX node", lname, k->name);
    int main = main_node(x, k, first);
    x->layer_node[li] = main;

    /* training mode: the kind writes it (write_training) once the outputs
     * the model reads are in place (export_weight_outputs) */
    if (nnp_model_node_mode(m, nd) == NNP_MODE_TRAIN) {
        const nnp_onnx_node_ext *ext = nnpi_kind_onnx_node_ext(k);
        if (main < 0 || !ext || !ext->write_training)
            return FAIL(NNP_ERR_UNSUPPORTED, "layer '%s' (%s): a node forced to training mode "
                        "has no ONNX form", lname, k->name);
        x->train_nodes[x->n_train] = main;
        x->train_layers[x->n_train++] = layer;
    }

    /* nnplug.layers: the layer's config once, and the nodes of each application */
    json_t *e = json_array_get(x->layers, (size_t)li);
    json_t *names = json_array();
    if (!names || json_array_append_new(json_object_get(e, "nodes"), names))
        return FAIL(NNP_ERR_NOMEM, "out of memory");
    for (size_t i = first; i < x->w.n_nodes; i++)
        if (json_array_append_new(names, json_string(x->w.nodes[i]->name)))
            return FAIL(NNP_ERR_NOMEM, "out of memory");
    return NNP_OK;
}

/* Graph outputs that read a layer's weights (running statistics) become
 * the matching outputs of its node. */
static nnp_status export_weight_outputs(export_ctx *x, nnp_error *err)
{
    const nnp_model *m = x->m;
    for (int v = 0; v < nnp_model_n_values(m); v++) {
        const char *weight;
        int li = nnp_model_weight_output_layer(m, v, &weight);
        if (li < 0)
            continue;
        const nnp_layer *l = nnp_model_layer(m, li);
        const nnp_kind *k = nnp_layer_kind_of(l);
        int node = x->layer_node[li], pos = -1;
        for (int j = 1; nnpi_onnx_weight_output(k, j); j++)
            if (strcmp(nnpi_onnx_weight_output(k, j), weight) == 0)
                pos = j;
        int train = 0;
        for (int nd = 0; nd < nnp_model_n_nodes(m); nd++)
            if (nnp_model_node_layer(m, nd) == li)
                train = nnp_model_node_mode(m, nd) == NNP_MODE_TRAIN;
        if (node < 0 || pos < 0 || !train)
            return FAIL(NNP_ERR_UNSUPPORTED, "output '%s' reads weight '%s' of layer '%s' (%s), "
                        "which ONNX expresses only as a running statistic of a node in "
                        "training mode", nnp_model_value_name(m, v), weight, nnp_layer_name(l),
                        k->name);
        const Onnx__NodeProto *n = x->w.nodes[node];
        if (n->n_output > (size_t)pos && n->output[pos][0])
            return FAIL(NNP_ERR_UNSUPPORTED, "layer '%s': weight '%s' is read by two outputs",
                        nnp_layer_name(l), weight);
        nnp_status st =
            nnpi_onnx_writer_set_output(&x->w, node, pos, nnp_model_value_name(m, v), err);
        if (st)
            return st;
    }
    return NNP_OK;
}

/* Nodes in training mode, written so by their kinds. */
static nnp_status write_training(export_ctx *x, nnp_error *err)
{
    for (int t = 0; t < x->n_train; t++) {
        const nnp_layer *l = x->train_layers[t];
        nnp_status st = nnpi_layer_onnx_write_training(l, &x->w, x->train_nodes[t], err);
        if (st)
            return nnp_error_prefix(err, "layer '%s' (%s)", nnp_layer_name(l),
                                    nnp_layer_kind_of(l)->name);
    }
    return NNP_OK;
}

/* A metadata entry; borrow: its value is v itself (the model's string, which
 * outlives the export: a checkpoint's optimizer state is as large as the
 * weights), not a copy. */
static nnp_status add_meta(Onnx__ModelProto *mp, const char *k, const char *v, int borrow,
                           nnp_error *err)
{
    Onnx__StringStringEntryProto **a =
        realloc(mp->metadata_props, sizeof *a * (mp->n_metadata_props + 1));
    if (!a)
        return FAIL(NNP_ERR_NOMEM, "out of memory");
    mp->metadata_props = a;
    Onnx__StringStringEntryProto *e = malloc(sizeof *e);
    if (!e)
        return FAIL(NNP_ERR_NOMEM, "out of memory");
    onnx__string_string_entry_proto__init(e);
    a[mp->n_metadata_props++] = e;
    e->key = nnpi_onnx_strdup(k);
    e->value = borrow ? (char *)v : nnpi_onnx_strdup(v);
    if (!e->key || !e->value)
        return FAIL(NNP_ERR_NOMEM, "out of memory");
    return NNP_OK;
}

/* Moves the writer's nodes, initializers and value infos into the graph. */
static void take_writer(Onnx__GraphProto *g, nnp_onnx_writer *w)
{
    g->node = w->nodes;
    g->n_node = w->n_nodes;
    g->initializer = w->inits;
    g->n_initializer = w->n_inits;
    w->nodes = NULL;
    w->inits = NULL;
    w->n_nodes = w->n_inits = 0;
}

/* The layers' nodes and initializers into the writer: names reserved, every
 * node exported, then weight outputs and training mode; x->layers gets the
 * nnplug.layers entries. */
static nnp_status export_layers(export_ctx *x, nnp_error *err)
{
    const nnp_model *m = x->m;
    nnp_status st = NNP_OK;
    int nl = nnp_model_n_layers(m);
    x->layer_node = malloc(sizeof(int) * (size_t)(nl ? nl : 1));
    x->train_nodes = malloc(sizeof(int) * (size_t)(nnp_model_n_nodes(m) + 1));
    x->train_layers = malloc(sizeof(*x->train_layers) * (size_t)(nnp_model_n_nodes(m) + 1));
    x->layers = json_array();
    if (!x->layer_node || !x->train_nodes || !x->train_layers || !x->layers)
        return FAIL(NNP_ERR_NOMEM, "out of memory");
    const char *dt = nnp_model_get_meta(m, NNP_ONNX_META_DTYPES);
    x->dtypes = dt ? json_loads(dt, 0, NULL) : NULL;
    for (int i = 0; i < nl; i++) {
        const nnp_layer *l = nnp_model_layer(m, i);
        x->layer_node[i] = -1;
        json_t *e = json_pack("{s:s, s:o, s:[]}", "class_name", nnp_layer_kind_of(l)->name,
                              "config", nnpi_config_to_jsonv(nnp_layer_config(l)), "nodes");
        if (!e || json_array_append_new(x->layers, e))
            return FAIL(NNP_ERR_NOMEM, "out of memory");
    }
    for (int v = 0; v < nnp_model_n_values(m) && !st; v++)
        st = nnpi_onnx_writer_reserve(&x->w, nnp_model_value_name(m, v), err);
    x->folded = calloc((size_t)nnp_model_n_nodes(m) + 1, sizeof(int));
    if (!x->folded)
        return FAIL(NNP_ERR_NOMEM, "out of memory");
    for (int nd = 0; nd < nnp_model_n_nodes(m) && !st; nd++)
        if (!x->folded[nd])
            st = export_node(x, nd, err);
    if (st == NNP_OK)
        st = export_weight_outputs(x, err);
    if (st == NNP_OK)
        st = write_training(x, err);
    return st;
}

/* The graph's name, inputs and outputs (float32, symbolic batch). */
static nnp_status graph_io(const nnp_model *m, Onnx__GraphProto *g, nnp_error *err)
{
    nnp_status st = NNP_OK;
    g->name = nnpi_onnx_strdup("nnplug");
    int ni = nnp_model_n_inputs(m), no = nnp_model_n_outputs(m);
    g->input = calloc((size_t)(ni ? ni : 1), sizeof *g->input);
    g->output = calloc((size_t)(no ? no : 1), sizeof *g->output);
    if (!g->name || !g->input || !g->output)
        return FAIL(NNP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < ni && !st; i++) {
        int v = nnp_model_input_value(m, i);
        nnp_shape s = batch_shape(m, v);
        g->input[i] = nnpi_onnx_make_value_info(nnp_model_value_name(m, v),
                                                ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, &s);
        if (!g->input[i])
            st = FAIL(NNP_ERR_NOMEM, "out of memory");
        else
            g->n_input++;
    }
    for (int i = 0; i < no && !st; i++) {
        int v = nnp_model_output_value(m, i);
        nnp_shape s = batch_shape(m, v);
        g->output[i] = nnpi_onnx_make_value_info(nnp_model_value_name(m, v),
                                                 ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, &s);
        if (!g->output[i])
            st = FAIL(NNP_ERR_NOMEM, "out of memory");
        else
            g->n_output++;
    }
    return st;
}

/* Value infos: every model value, then what the layers wrote inside (shapes
 * inferred node by node); graph outputs have theirs already. */
static nnp_status value_infos(const nnp_model *m, nnp_onnx_writer *w, const Onnx__GraphProto *g,
                              nnp_error *err)
{
    nnp_status st = NNP_OK;
    shape_map sm = {0};
    for (int v = 0; v < nnp_model_n_values(m) && !st; v++) {
        nnp_shape s = batch_shape(m, v);
        st = shape_put(&sm, nnp_model_value_name(m, v), &s, err);
    }
    for (size_t i = 0; i < w->n_inits && !st; i++) {
        nnp_shape s = {(int32_t)w->inits[i]->n_dims, {0}};
        for (size_t d = 0; d < w->inits[i]->n_dims && d < NNP_MAX_RANK; d++)
            s.dims[d] = w->inits[i]->dims[d];
        st = shape_put(&sm, w->inits[i]->name, &s, err);
    }
    for (size_t i = 0; i < w->n_nodes && !st; i++)
        st = infer_node(w, &sm, w->nodes[i], err);
    for (size_t i = 0; i < w->n_nodes && !st; i++) {
        const Onnx__NodeProto *n = w->nodes[i];
        for (size_t k = 0; k < n->n_output && !st; k++) {
            const char *o = n->output[k];
            int is_out = 0;
            for (size_t j = 0; j < g->n_output; j++)
                is_out |= strcmp(g->output[j]->name, o) == 0;
            const nnp_shape *s = o[0] && !is_out ? shape_get(&sm, o) : NULL;
            if (s)
                st = nnpi_onnx_writer_add_vi(w, o, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, s, err);
        }
    }
    nnpi_onnx_map_free(&sm.idx);
    free(sm.s);
    return st;
}

/* Every node input must now be defined: a layer that referred to a tensor
 * it never wrote is caught here rather than by other tools. */
static nnp_status check_defined(const nnp_onnx_writer *w, const Onnx__GraphProto *g,
                                nnp_error *err)
{
    for (size_t i = 0; i < w->n_nodes; i++) {
        const Onnx__NodeProto *n = w->nodes[i];
        for (size_t k = 0; k < n->n_input; k++) {
            const char *in = n->input[k];
            int ok = !in[0] || nnpi_onnx_map_get(&w->produced, in) >= 0 ||
                     nnpi_onnx_map_get(&w->init_names, in) >= 0;
            for (size_t j = 0; !ok && j < g->n_input; j++)
                ok = strcmp(g->input[j]->name, in) == 0;
            if (!ok)
                return FAIL(NNP_ERR_INTERNAL, "node '%s' (%s) reads '%s', which nothing defines",
                            n->name, n->op_type, in);
        }
    }
    return NNP_OK;
}

/* IR version, opset_import and producer. */
static nnp_status model_header(Onnx__ModelProto *mp, int opset, nnp_error *err)
{
    mp->has_ir_version = 1;
    mp->ir_version = nnp_onnx_ir_version(opset);
    mp->opset_import = calloc(1, sizeof *mp->opset_import);
    Onnx__OperatorSetIdProto *os = malloc(sizeof *os);
    if (!mp->opset_import || !os) {
        free(os);
        return FAIL(NNP_ERR_NOMEM, "out of memory");
    }
    onnx__operator_set_id_proto__init(os);
    mp->opset_import[mp->n_opset_import++] = os;
    os->domain = nnpi_onnx_strdup("");
    os->has_version = 1;
    os->version = opset;
    mp->producer_name = nnpi_onnx_strdup("nnplug");
    mp->producer_version = nnpi_onnx_strdup(NNP_VERSION_STRING);
    if (!os->domain || !mp->producer_name || !mp->producer_version)
        return FAIL(NNP_ERR_NOMEM, "out of memory");
    return NNP_OK;
}

/* Metadata: the model's own entries, then ours (nnplug.layers). */
static nnp_status model_metadata(export_ctx *x, Onnx__ModelProto *mp, nnp_error *err)
{
    const nnp_model *m = x->m;
    nnp_status st = NNP_OK;
    for (int i = 0; i < nnp_model_n_meta(m) && !st; i++) {
        const char *k = nnp_model_meta_key(m, i);
        if (strncmp(k, "nnplug.", 7) != 0) {
            st = add_meta(mp, k, nnp_model_get_meta(m, k), 1, err);
            x->n_borrowed = (int)mp->n_metadata_props;   /* added or not, borrowed */
        }
    }
    if (st)
        return st;
    if (x->fold) /* a deployment file: not the model nnplug would load back */
        return NNP_OK;
    char *s = json_dumps(x->layers, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    if (!s)
        return FAIL(NNP_ERR_NOMEM, "out of memory");
    st = add_meta(mp, NNP_ONNX_META_LAYERS, s, 0, err);
    free(s);
    /* the stored types themselves tell a later import what they were */
    return st;
}

static nnp_status build(export_ctx *x, int opset, Onnx__ModelProto *mp, nnp_error *err)
{
    nnp_onnx_writer *w = &x->w;
    Onnx__GraphProto *g = mp->graph;
    nnp_status st = export_layers(x, err);
    if (st == NNP_OK)
        st = graph_io(x->m, g, err);
    if (st == NNP_OK)
        st = value_infos(x->m, w, g, err);
    if (st == NNP_OK)
        st = check_defined(w, g, err);
    if (st)
        return st;
    g->value_info = w->vis;
    g->n_value_info = w->n_vis;
    w->vis = NULL;
    w->n_vis = 0;
    take_writer(g, w);
    st = model_header(mp, opset, err);
    if (st == NNP_OK)
        st = model_metadata(x, mp, err);
    return st;
}

/* What serialize does with the built ModelProto. */
typedef nnp_status (*export_sink)(const Onnx__ModelProto *mp, void *user, nnp_error *err);

static nnp_status serialize(const nnp_model *m, int opset, int fold, export_sink sink,
                            void *user, nnp_error *err)
{
    if (opset == 0)
        opset = NNP_ONNX_OPSET_DEFAULT;
    if (opset < NNP_ONNX_OPSET_MIN || opset > NNP_ONNX_OPSET_MAX)
        return FAIL(NNP_ERR_INVALID, "ONNX export: opset %d is outside %d..%d", opset,
                    NNP_ONNX_OPSET_MIN, NNP_ONNX_OPSET_MAX);
    if (!nnp_host_services()->onnx_add_node)
        return FAIL(NNP_ERR_INTERNAL, "ONNX export: the host's ONNX writer is not linked in");
    export_ctx x;
    memset(&x, 0, sizeof x);
    x.m = m;
    x.fold = fold;
    nnpi_onnx_writer_init(&x.w, opset);
    Onnx__ModelProto *mp = malloc(sizeof *mp);
    Onnx__GraphProto *g = malloc(sizeof *g);
    nnp_status st = NNP_OK;
    if (!mp || !g) {
        free(mp);
        free(g);
        mp = NULL;
        st = FAIL(NNP_ERR_NOMEM, "out of memory");
    } else {
        onnx__model_proto__init(mp);
        onnx__graph_proto__init(g);
        mp->graph = g;
        st = build(&x, opset, mp, err);
    }
    if (st == NNP_OK)
        st = sink(mp, user, err);
    if (st && err->msg[0] && strncmp(err->msg, "ONNX export", 11) != 0)
        nnp_error_prefix(err, "ONNX export");
    if (mp) {
        for (int i = 0; i < x.n_borrowed; i++)   /* the model's strings stay its own */
            mp->metadata_props[i]->value = NULL;
        onnx__model_proto__free_unpacked(mp, NULL);
    }
    nnpi_onnx_writer_free(&x.w);
    json_decref(x.layers);
    json_decref(x.dtypes);
    free(x.layer_node);
    free(x.train_nodes);
    free(x.train_layers);
    free(x.folded);
    return st;
}

/* The bytes, in one buffer. */
typedef struct mem_sink {
    uint8_t *data;
    size_t len;
} mem_sink;

static nnp_status to_memory(const Onnx__ModelProto *mp, void *user, nnp_error *err)
{
    mem_sink *o = user;
    size_t n = onnx__model_proto__get_packed_size(mp);
    o->data = malloc(n ? n : 1);
    if (!o->data)
        return FAIL(NNP_ERR_NOMEM, "out of memory");
    onnx__model_proto__pack(mp, o->data);
    o->len = n;
    return NNP_OK;
}

nnp_status nnp_onnx_serialize(const nnp_model *m, int opset, uint8_t **data, size_t *len,
                              nnp_error *err)
{
    mem_sink o = {NULL, 0};
    nnp_status st = serialize(m, opset, 0, to_memory, &o, err);
    *data = st ? NULL : o.data;
    *len = st ? 0 : o.len;
    if (st)
        free(o.data);
    return st;
}

/* The bytes, streamed into a file written atomically through a staging
 * buffer (a model is never held packed in memory beside its weights). */
typedef struct file_sink {
    ProtobufCBuffer base;
    nnpi_atomic_file *f;
    uint8_t buf[1 << 16];
    size_t n;
} file_sink;

static void file_sink_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
    file_sink *o = (file_sink *)b;
    if (o->n + len > sizeof o->buf) {
        nnpi_atomic_write(o->f, o->buf, o->n);
        o->n = 0;
    }
    if (len > sizeof o->buf) {
        nnpi_atomic_write(o->f, data, len);
        return;
    }
    memcpy(o->buf + o->n, data, len);
    o->n += len;
}

static nnp_status to_file(const Onnx__ModelProto *mp, void *user, nnp_error *err)
{
    (void)err;
    file_sink *o = user;
    o->base.append = file_sink_append;
    o->n = 0;
    protobuf_c_message_pack_to_buffer(&mp->base, &o->base);
    nnpi_atomic_write(o->f, o->buf, o->n);
    return NNP_OK;
}

static nnp_status save(const nnp_model *m, const char *path, int opset, int fold, nnp_error *err)
{
    nnpi_atomic_file f;
    nnp_status st = nnpi_atomic_open(&f, path, err);
    if (st)
        return st;
    file_sink *o = malloc(sizeof *o);
    if (!o) {
        nnpi_atomic_abort(&f);
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    }
    o->f = &f;
    st = serialize(m, opset, fold, to_file, o, err);
    free(o);
    if (st) {
        nnpi_atomic_abort(&f);
        return nnp_error_prefix(err, "%s", path);
    }
    return nnpi_atomic_commit(&f, err);
}

nnp_status nnp_onnx_save(const nnp_model *m, const char *path, int opset, nnp_error *err)
{
    return save(m, path, opset, 0, err);
}

nnp_status nnp_onnx_save_inference(const nnp_model *m, const char *path, int opset,
                                   nnp_error *err)
{
    return save(m, path, opset, 1, err);
}
