/* ONNX import: ModelProto -> nnp_model.
 *
 * Order of work, so that every check happens before anything relies on it:
 *   1. the bytes: nesting depth, then protobuf-c unpack;
 *   2. the model: IR version, opset_import, graph present;
 *   3. names: graph inputs, initializers, node outputs and graph outputs
 *      unique; every node input defined;
 *   4. initializers read (dims against data length, rank, overflow);
 *   5. nodes sorted topologically (a cycle is an error naming its nodes);
 *   6. every node's serving kind found (or an error naming node and op);
 *      Transpose sandwiches folded into the kinds that absorb them;
 *   7. graph inputs become model inputs, or constants when they are only
 *      read as parameters and the caller bound them;
 *   8. nodes in order: Constant and Identity resolved here, every other
 *      node becomes a layer (from_onnx, create, apply, onnx_load_weights);
 *   9. graph outputs; metadata. */
#include "interchange/onnx_internal.h"
#include "plugin/host_internal.h"
#include "services/config_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NESTING 64
#define MAX_NODE_IO 1024

/* ---- nesting depth --------------------------------------------------------
 * protobuf-c unpacks nested messages recursively with no depth limit, so a
 * small file of deeply nested attributes could exhaust the stack. This scan
 * walks the wire format with the message descriptors and refuses more than
 * MAX_NESTING levels before protobuf-c sees the bytes. */

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return -1;
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* 0: fine (or malformed in a way protobuf-c will report); -1: too deep. */
static int scan_depth(const uint8_t *p, const uint8_t *end, const ProtobufCMessageDescriptor *d,
                      int depth)
{
    if (depth > MAX_NESTING)
        return -1;
    while (p < end) {
        uint64_t key, len;
        if (read_varint(&p, end, &key))
            return 0;
        unsigned wire = (unsigned)(key & 7);
        uint64_t num = key >> 3;
        switch (wire) {
        case 0:
            if (read_varint(&p, end, &len))
                return 0;
            break;
        case 1:
            if (end - p < 8)
                return 0;
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                return 0;
            p += 4;
            break;
        case 2: {
            if (read_varint(&p, end, &len) || len > (uint64_t)(end - p))
                return 0;
            const ProtobufCFieldDescriptor *f =
                num <= UINT_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)num) : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
                scan_depth(p, p + len, f->descriptor, depth + 1))
                return -1;
            p += len;
            break;
        }
        default:
            return 0;   /* groups and invalid wire types: protobuf-c rejects them */
        }
    }
    return 0;
}

/* ---- import state ------------------------------------------------------- */

enum { V_UNSET = 0, V_CONST, V_RUNTIME };

typedef struct ival {
    const char *name;           /* borrowed from the proto */
    int kind;                   /* V_* */
    int producer;               /* node index, -1 for inputs and initializers */
    int is_init, is_input, is_output;
    const Onnx__ValueInfoProto *vi;
    nnp_tensor t;               /* V_CONST: float32 or int64 (owned unless alias >= 0) */
    nnp_tensor f32;             /* float32 copy of an int64 constant, made on demand */
    int alias;                  /* V_CONST: the ival holding the data, or -1 */
    int onnx_dtype;             /* stored element type of a constant */
    int value;                  /* V_RUNTIME: model value id */
    int n_uses;                 /* node inputs reading it */
    int first_use;              /* first reading node (index), -1 */
} ival;

typedef struct inode {
    const Onnx__NodeProto *p;
    char *name;                 /* given or generated */
    int opset;
    int is_default_domain;
    const nnp_kind *kind;
    int skip;                   /* a Transpose folded into its neighbour's layer */
    int fold_in, fold_out;      /* ival ids replacing input 0 / output 0, or -1 */
    int64_t fold_perm[NNP_MAX_RANK];   /* the folded Transpose's perm ... */
    int fold_rank;                     /* ... and its length */
    int group;                  /* nnplug.layers entry it was written by, or -1 */
    int comp;                   /* which application of that entry's layer */
    int done;                   /* consumed by a group */
} inode;

typedef struct domain_opset {
    const char *domain;         /* "" for ai.onnx */
    int64_t version;
} domain_opset;

struct onnx_import {
    const nnp_registry *reg;
    const char *label;
    const char *base_dir;
    const nnp_onnx_load_options *opts;
    Onnx__ModelProto *mp;
    const Onnx__GraphProto *g;
    domain_opset *opsets;
    size_t n_opsets;
    ival *v;
    int nv;
    onnx_map by_name;
    inode *nodes;
    int nn;
    int *order;
    nnp_model *m;
    json_t *meta_layers;        /* "nnplug.layers" of the file, or NULL */
    onnx_map meta_node;         /* node name -> application (index in comp_entry) */
    int *comp_entry;            /* application -> index in meta_layers */
    int n_comp;
    int *members, *comp_start;  /* node indices by application */
    int *inside;                /* per ival: reads by the group at hand (scratch) */
    json_t *dtypes;             /* {"layer": {"weight": "float16"}} */
    json_t *report;             /* per node, for nnplug info */
    json_t *bound;              /* graph inputs made constants */
};

static const char *dom_norm(const char *d)
{
    if (!d || !d[0] || strcmp(d, "ai.onnx") == 0)
        return "";
    return d;
}

static ival *V(struct onnx_import *imp, const char *name)
{
    int i = name && name[0] ? nnpi_onnx_map_get(&imp->by_name, name) : -1;
    return i >= 0 ? &imp->v[i] : NULL;
}

static ival *const_root(struct onnx_import *imp, ival *x)
{
    while (x && x->kind == V_CONST && x->alias >= 0)
        x = &imp->v[x->alias];
    return x;
}

nnp_status nnpi_onnx_import_constant(struct onnx_import *imp, const char *tensor,
                                     const nnp_tensor **t, nnp_error *err)
{
    *t = NULL;
    ival *x = const_root(imp, V(imp, tensor));
    if (!x || x->kind != V_CONST)
        return nnp_error_set(err, NNP_ERR_NOT_FOUND, "tensor '%s' is not a constant", tensor);
    if (x->t.dtype == NNP_F32) {
        *t = &x->t;
        return NNP_OK;
    }
    if (!x->f32.data && x->t.nbytes) {
        nnp_status st = nnpi_onnx_tensor_to_f32(&x->t, &x->f32, err);
        if (st)
            return st;
    } else if (!x->f32.data) {
        x->f32.dtype = NNP_F32;
        x->f32.shape = x->t.shape;
    }
    *t = &x->f32;
    return NNP_OK;
}

static int layout_shape(struct onnx_import *imp, const ival *x, nnp_shape *s);

/* Declared shape of a value info: rank -1 when unknown, -1 dims when symbolic. */
static void vi_shape(const Onnx__ValueInfoProto *vi, nnp_shape *s, int *elem_type)
{
    memset(s, 0, sizeof *s);
    s->rank = -1;
    if (elem_type)
        *elem_type = 0;
    if (!vi || !vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        !vi->type->tensor_type)
        return;
    const Onnx__TypeProto__Tensor *tt = vi->type->tensor_type;
    if (elem_type)
        *elem_type = tt->has_elem_type ? tt->elem_type : 0;
    if (!tt->shape || tt->shape->n_dim > NNP_MAX_RANK)
        return;
    s->rank = (int32_t)tt->shape->n_dim;
    for (size_t i = 0; i < tt->shape->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        s->dims[i] = d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
                             d->dim_value >= 0
                         ? d->dim_value
                         : -1;
    }
}

nnp_status nnpi_onnx_import_shape(struct onnx_import *imp, const char *tensor, nnp_shape *s,
                                  nnp_error *err)
{
    (void)err;
    ival *x = V(imp, tensor);
    memset(s, 0, sizeof *s);
    s->rank = -1;
    if (!x)
        return NNP_OK;
    ival *c = const_root(imp, x);
    if (c->kind == V_CONST) {
        *s = c->t.shape;
        return NNP_OK;
    }
    if (x->kind == V_RUNTIME) {
        *s = *nnp_model_value_shape(imp->m, x->value);
        return NNP_OK;
    }
    if (layout_shape(imp, x, s))
        return NNP_OK;
    vi_shape(x->vi, s, NULL);
    return NNP_OK;
}

nnp_status nnpi_onnx_import_fold_shape(struct onnx_import *imp, const char *tensor,
                                       const int64_t *perm, int rank, nnp_shape *s)
{
    const ival *x = V(imp, tensor);
    memset(s, 0, sizeof *s);
    s->rank = -1;
    /* the folded input is a model value only once it is computed at run time */
    if (!x || x->kind != V_RUNTIME)
        return NNP_OK;
    const nnp_shape *in = nnp_model_value_shape(imp->m, x->value);
    if (in->rank != rank)
        return NNP_OK;
    s->rank = rank;
    for (int i = 0; i < rank; i++)
        s->dims[i] = in->dims[perm[i]];
    return NNP_OK;
}

static void import_free(struct onnx_import *imp)
{
    for (int i = 0; i < imp->nv; i++) {
        if (imp->v[i].alias < 0)
            nnp_tensor_free(&imp->v[i].t);
        nnp_tensor_free(&imp->v[i].f32);
    }
    free(imp->v);
    for (int i = 0; i < imp->nn; i++)
        free(imp->nodes[i].name);
    free(imp->nodes);
    free(imp->order);
    free(imp->opsets);
    nnpi_onnx_map_free(&imp->by_name);
    nnpi_onnx_map_free(&imp->meta_node);
    free(imp->comp_entry);
    free(imp->members);
    free(imp->comp_start);
    free(imp->inside);
    json_decref(imp->meta_layers);
    json_decref(imp->dtypes);
    json_decref(imp->report);
    json_decref(imp->bound);
    if (imp->mp)
        onnx__model_proto__free_unpacked(imp->mp, NULL);
    nnp_model_free(imp->m);
}

/* New ival for a name (the caller has checked it is not taken). */
static int add_ival(struct onnx_import *imp, const char *name, nnp_error *err)
{
    ival *nv = realloc(imp->v, sizeof *nv * (size_t)(imp->nv + 1));
    if (!nv)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory"), -1;
    imp->v = nv;
    ival *x = &imp->v[imp->nv];
    memset(x, 0, sizeof *x);
    x->name = name;
    x->producer = -1;
    x->alias = -1;
    x->value = -1;
    x->first_use = -1;
    if (nnpi_onnx_map_put(&imp->by_name, name, imp->nv, err))
        return -1;
    return imp->nv++;
}

#define FAIL(code, ...) nnp_error_set(err, code, __VA_ARGS__)

static const char *node_desc(const inode *n, char *buf, size_t size)
{
    snprintf(buf, size, "node '%s' (%s%s%s)", n->name, ONNX_STR(n->p->op_type),
             n->is_default_domain ? "" : ", domain ", n->is_default_domain ? "" : n->p->domain);
    return buf;
}

/* ---- steps 2-3: model, opsets, names ------------------------------------ */

static nnp_status check_model(struct onnx_import *imp, nnp_error *err)
{
    const Onnx__ModelProto *mp = imp->mp;
    const char *L = imp->label;
    if (!mp->has_ir_version)
        return FAIL(NNP_ERR_FORMAT, "%s: not an ONNX model (no ir_version)", L);
    if (mp->ir_version < 3)
        return FAIL(NNP_ERR_UNSUPPORTED, "%s: IR version %lld is too old (nnplug reads 3 and up)",
                    L, (long long)mp->ir_version);
    imp->opsets = calloc(mp->n_opset_import ? mp->n_opset_import : 1, sizeof *imp->opsets);
    if (!imp->opsets)
        return FAIL(NNP_ERR_NOMEM, "out of memory");
    int have_default = 0;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        const char *d = dom_norm(o->domain);
        if (!o->has_version || o->version < 1 || o->version > 10000)
            return FAIL(NNP_ERR_FORMAT, "%s: opset_import for domain '%s' has no valid version", L,
                        d[0] ? d : "ai.onnx");
        for (size_t k = 0; k < imp->n_opsets; k++)
            if (strcmp(imp->opsets[k].domain, d) == 0)
                return FAIL(NNP_ERR_FORMAT, "%s: opset_import names domain '%s' twice", L,
                            d[0] ? d : "ai.onnx");
        imp->opsets[imp->n_opsets].domain = d;
        imp->opsets[imp->n_opsets++].version = o->version;
        have_default |= !d[0];
    }
    if (!have_default)
        return FAIL(NNP_ERR_FORMAT, "%s: opset_import has no version for the default domain "
                    "ai.onnx", L);
    if (!mp->graph)
        return FAIL(NNP_ERR_FORMAT, "%s: the model has no graph", L);
    imp->g = mp->graph;
    if (imp->g->n_sparse_initializer)
        return FAIL(NNP_ERR_UNSUPPORTED, "%s: sparse initializers are not supported", L);
    return NNP_OK;
}

static nnp_status collect_names(struct onnx_import *imp, nnp_error *err)
{
    const Onnx__GraphProto *g = imp->g;
    const char *L = imp->label;
    nnp_status st;
    /* initializers first: a graph input of the same name is its default (IR < 4) */
    for (size_t i = 0; i < g->n_initializer; i++) {
        const char *n = g->initializer[i]->name;
        if (!n || !n[0])
            return FAIL(NNP_ERR_FORMAT, "%s: initializer %zu has no name", L, i);
        if (V(imp, n))
            return FAIL(NNP_ERR_DUPLICATE, "%s: initializer name '%s' is used twice", L, n);
        int id = add_ival(imp, n, err);
        if (id < 0)
            return err->code;
        imp->v[id].is_init = 1;
    }
    for (size_t i = 0; i < g->n_input; i++) {
        const char *n = g->input[i]->name;
        if (!n || !n[0])
            return FAIL(NNP_ERR_FORMAT, "%s: graph input %zu has no name", L, i);
        ival *x = V(imp, n);
        if (x && x->is_input)
            return FAIL(NNP_ERR_DUPLICATE, "%s: graph input name '%s' is used twice", L, n);
        if (!x) {
            int id = add_ival(imp, n, err);
            if (id < 0)
                return err->code;
            x = &imp->v[id];
        }
        x->is_input = 1;
        x->vi = g->input[i];
    }
    /* node names: given ones unique; empty ones get "<op_type>_<index>" */
    onnx_map node_names = {0};
    imp->nodes = calloc(g->n_node ? g->n_node : 1, sizeof *imp->nodes);
    if (!imp->nodes)
        return FAIL(NNP_ERR_NOMEM, "out of memory");
    if (g->n_node > INT_MAX / 4)
        return FAIL(NNP_ERR_OVERFLOW, "%s: too many nodes", L);
    imp->nn = (int)g->n_node;
    st = NNP_OK;
    for (int i = 0; i < imp->nn && !st; i++) {
        const Onnx__NodeProto *p = g->node[i];
        inode *n = &imp->nodes[i];
        n->p = p;
        n->fold_in = n->fold_out = -1;
        n->group = n->comp = -1;
        if (!p->op_type || !p->op_type[0]) {
            st = FAIL(NNP_ERR_FORMAT, "%s: node %d ('%s') has no op_type", L, i, ONNX_STR(p->name));
            break;
        }
        if (p->n_input > MAX_NODE_IO || p->n_output > MAX_NODE_IO) {
            st = FAIL(NNP_ERR_FORMAT, "%s: node '%s' has too many inputs or outputs", L,
                      ONNX_STR(p->name));
            break;
        }
        if (p->name && p->name[0]) {
            if (nnpi_onnx_map_get(&node_names, p->name) >= 0) {
                st = FAIL(NNP_ERR_DUPLICATE, "%s: node name '%s' is used twice", L, p->name);
                break;
            }
            st = nnpi_onnx_map_put(&node_names, p->name, i, err);
        }
    }
    for (int i = 0; i < imp->nn && !st; i++) {
        inode *n = &imp->nodes[i];
        if (n->p->name && n->p->name[0]) {
            n->name = strdup(n->p->name);
        } else {
            char buf[300];
            snprintf(buf, sizeof buf, "%.200s_%d", n->p->op_type, i);
            for (int k = 1; nnpi_onnx_map_get(&node_names, buf) >= 0; k++)
                snprintf(buf, sizeof buf, "%.200s_%d_%d", n->p->op_type, i, k);
            n->name = strdup(buf);
            if (n->name)
                st = nnpi_onnx_map_put(&node_names, buf, i, err);
        }
        if (!n->name && !st)
            st = FAIL(NNP_ERR_NOMEM, "out of memory");
    }
    nnpi_onnx_map_free(&node_names);
    if (st)
        return st;
    /* opsets per node */
    for (int i = 0; i < imp->nn; i++) {
        inode *n = &imp->nodes[i];
        const char *d = dom_norm(n->p->domain);
        n->is_default_domain = !d[0];
        n->opset = -1;
        for (size_t k = 0; k < imp->n_opsets; k++)
            if (strcmp(imp->opsets[k].domain, d) == 0)
                n->opset = (int)imp->opsets[k].version;
        if (n->opset < 0) {
            char nd[600];
            return FAIL(NNP_ERR_FORMAT, "%s: %s uses domain '%s', which opset_import does not "
                        "list", L, node_desc(n, nd, sizeof nd), d);
        }
    }
    /* node outputs: each tensor produced once, never an input or initializer */
    for (int i = 0; i < imp->nn; i++) {
        const Onnx__NodeProto *p = imp->nodes[i].p;
        for (size_t k = 0; k < p->n_output; k++) {
            const char *o = p->output[k];
            if (!o[0])
                continue;
            ival *x = V(imp, o);
            if (x) {
                if (x->producer >= 0)
                    return FAIL(NNP_ERR_DUPLICATE, "%s: tensor '%s' is produced by node '%s' and "
                                "by node '%s'", L, o, imp->nodes[x->producer].name,
                                imp->nodes[i].name);
                return FAIL(NNP_ERR_DUPLICATE, "%s: node '%s' output '%s' has the name of a "
                            "graph %s", L, imp->nodes[i].name, o,
                            x->is_init ? "initializer" : "input");
            }
            int id = add_ival(imp, o, err);
            if (id < 0)
                return err->code;
            imp->v[id].producer = i;
        }
    }
    /* node inputs: every one defined */
    for (int i = 0; i < imp->nn; i++) {
        const Onnx__NodeProto *p = imp->nodes[i].p;
        for (size_t k = 0; k < p->n_input; k++) {
            const char *in = p->input[k];
            if (!in[0])
                continue;   /* an absent optional input */
            ival *x = V(imp, in);
            if (!x) {
                char nd[600];
                return FAIL(NNP_ERR_NOT_FOUND, "%s: %s input %zu '%s' is missing: not a graph "
                            "input, an initializer or the output of any node", L,
                            node_desc(&imp->nodes[i], nd, sizeof nd), k, in);
            }
            if (x->n_uses++ == 0)
                x->first_use = i;
        }
    }
    for (size_t i = 0; i < imp->g->n_value_info; i++) {
        ival *x = V(imp, imp->g->value_info[i]->name);
        if (x && !x->vi)
            x->vi = imp->g->value_info[i];
    }
    for (size_t i = 0; i < imp->g->n_output; i++) {
        const Onnx__ValueInfoProto *o = imp->g->output[i];
        if (!o->name || !o->name[0])
            return FAIL(NNP_ERR_FORMAT, "%s: graph output %zu has no name", L, i);
        ival *x = V(imp, o->name);
        if (!x)
            return FAIL(NNP_ERR_NOT_FOUND, "%s: graph output '%s' is not produced by any node", L,
                        o->name);
        if (x->is_output)
            return FAIL(NNP_ERR_DUPLICATE, "%s: graph output name '%s' is used twice", L, o->name);
        x->is_output = 1;
        if (!x->vi || x->producer < 0)
            x->vi = o;
    }
    if (imp->g->n_output == 0)
        return FAIL(NNP_ERR_FORMAT, "%s: the graph has no outputs", L);
    return NNP_OK;
}

/* ---- step 4: initializers ----------------------------------------------- */

static nnp_status read_initializers(struct onnx_import *imp, nnp_error *err)
{
    for (size_t i = 0; i < imp->g->n_initializer; i++) {
        const Onnx__TensorProto *tp = imp->g->initializer[i];
        ival *x = V(imp, tp->name);
        nnp_status st =
            nnpi_onnx_tensor_read(tp, imp->label, imp->base_dir, &x->t, &x->onnx_dtype, err);
        if (st)
            return st;
        x->kind = V_CONST;
    }
    return NNP_OK;
}

/* ---- step 5: topological order ------------------------------------------ */

static nnp_status topo_sort(struct onnx_import *imp, nnp_error *err)
{
    int nn = imp->nn;
    int *indeg = calloc((size_t)(nn ? nn : 1), sizeof(int));
    int *head = malloc(sizeof(int) * (size_t)(nn ? nn : 1));     /* consumer lists */
    imp->order = malloc(sizeof(int) * (size_t)(nn ? nn : 1));
    size_t n_edges = 0;
    for (int i = 0; i < nn; i++)
        n_edges += imp->nodes[i].p->n_input;
    int *next = malloc(sizeof(int) * (n_edges ? n_edges : 1));
    int *dst = malloc(sizeof(int) * (n_edges ? n_edges : 1));
    if (!indeg || !head || !imp->order || !next || !dst) {
        free(indeg);
        free(head);
        free(next);
        free(dst);
        return FAIL(NNP_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < nn; i++)
        head[i] = -1;
    int e = 0;
    for (int i = 0; i < nn; i++) {
        const Onnx__NodeProto *p = imp->nodes[i].p;
        for (size_t k = 0; k < p->n_input; k++) {
            ival *x = V(imp, p->input[k]);
            if (!x || x->producer < 0)
                continue;
            indeg[i]++;
            dst[e] = i;
            next[e] = head[x->producer];
            head[x->producer] = e++;
        }
    }
    /* Kahn's algorithm, seeded in file order */
    int qh = 0, qt = 0;
    for (int i = 0; i < nn; i++)
        if (indeg[i] == 0)
            imp->order[qt++] = i;
    while (qh < qt) {
        int u = imp->order[qh++];
        /* consumer lists are built in reverse; the order stays deterministic */
        for (int k = head[u]; k >= 0; k = next[k])
            if (--indeg[dst[k]] == 0)
                imp->order[qt++] = dst[k];
    }
    nnp_status st = NNP_OK;
    if (qt < nn) {
        /* walk producers from a stuck node until one repeats: that is a cycle */
        int *seen = malloc(sizeof(int) * (size_t)nn);
        int *path = malloc(sizeof(int) * (size_t)(nn + 1));
        if (!seen || !path) {
            st = FAIL(NNP_ERR_NOMEM, "out of memory");
        } else {
            for (int i = 0; i < nn; i++)
                seen[i] = -1;
            int cur = -1;
            for (int i = 0; i < nn && cur < 0; i++)
                if (indeg[i] > 0)
                    cur = i;
            int len = 0;
            while (seen[cur] < 0) {
                seen[cur] = len;
                path[len++] = cur;
                const Onnx__NodeProto *p = imp->nodes[cur].p;
                int nxt = -1;
                for (size_t k = 0; k < p->n_input && nxt < 0; k++) {
                    ival *x = V(imp, p->input[k]);
                    if (x && x->producer >= 0 && indeg[x->producer] > 0)
                        nxt = x->producer;
                }
                cur = nxt;   /* a stuck node always waits on another stuck node */
            }
            char names[700];
            size_t at = 0;
            names[0] = '\0';
            /* path[seen[cur]..len) consumes backwards: print producers first */
            for (int k = len - 1; k >= seen[cur] && at < sizeof names - 80; k--)
                at += (size_t)snprintf(names + at, sizeof names - at, "'%.60s' -> ",
                                       imp->nodes[path[k]].name);
            snprintf(names + at, sizeof names - at, "'%.60s'", imp->nodes[path[len - 1]].name);
            st = FAIL(NNP_ERR_FORMAT, "%s: the graph has a cycle: %s (nodes must form an "
                      "acyclic graph)", imp->label, names);
        }
        free(seen);
        free(path);
    }
    free(indeg);
    free(head);
    free(next);
    free(dst);
    return st;
}

/* ---- step 6: kinds and folding -------------------------------------------- */

static int is_op(const inode *n, const char *op)
{
    return n->is_default_domain && strcmp(n->p->op_type, op) == 0;
}

/* perm attribute of a Transpose node; -1 when absent or malformed. */
static int transpose_perm(const inode *n, int64_t *perm)
{
    const Onnx__AttributeProto *a = nnpi_onnx_find_attr(n->p, "perm");
    if (!a || nnpi_onnx_attr_type(a) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS ||
        a->n_ints < 2 || a->n_ints > NNP_MAX_RANK)
        return -1;
    int r = (int)a->n_ints, used[NNP_MAX_RANK] = {0};
    for (int i = 0; i < r; i++) {
        if (a->ints[i] < 0 || a->ints[i] >= r || used[a->ints[i]])
            return -1;
        used[a->ints[i]] = 1;
        perm[i] = a->ints[i];
    }
    return r;
}

/* Transpose(perm) -> node -> Transpose(inverse) where the node's kind
 * absorbs such a sandwich (its extension's fold_transpose): the three are
 * read as one application of the kind on the first Transpose's input. */
static void find_folds(struct onnx_import *imp)
{
    for (int i = 0; i < imp->nn; i++) {
        inode *n = &imp->nodes[i];
        const nnp_onnx_node_ext *ext = nnpi_kind_onnx_node_ext(n->kind);
        if (!ext || !ext->fold_transpose || n->p->n_input < 1 || n->p->n_output < 1)
            continue;
        ival *a = V(imp, n->p->input[0]), *b = V(imp, n->p->output[0]);
        if (!a || !b || a->producer < 0 || a->n_uses != 1 || a->is_output || b->n_uses != 1 ||
            b->is_output)
            continue;
        inode *t1 = &imp->nodes[a->producer], *t2 = &imp->nodes[b->first_use];
        if (!is_op(t1, "Transpose") || !is_op(t2, "Transpose") || t1->skip || t2->skip ||
            t1->p->n_input != 1 || t1->p->n_output != 1 || t2->p->n_input != 1 ||
            t2->p->n_output != 1 || !t1->p->input[0][0] || !t2->p->output[0][0])
            continue;
        int64_t p[NNP_MAX_RANK], q[NNP_MAX_RANK];
        int r = transpose_perm(t1, p);
        if (r < 2 || transpose_perm(t2, q) != r)
            continue;
        int inverse = 1;
        for (int k = 0; k < r; k++)
            inverse &= p[q[k]] == k;
        if (!inverse)
            continue;
        t1->skip = t2->skip = 1;
        n->fold_in = nnpi_onnx_map_get(&imp->by_name, t1->p->input[0]);
        n->fold_out = nnpi_onnx_map_get(&imp->by_name, t2->p->output[0]);
        memcpy(n->fold_perm, p, sizeof(int64_t) * (size_t)r);
        n->fold_rank = r;
    }
}

/* The shape of a tensor computed inside a group of our own nodes (not yet a
 * model value) by a layout op on a run-time value: a Transpose, or a
 * Reshape to a constant shape. 0 when it is neither. */
static int layout_shape(struct onnx_import *imp, const ival *x, nnp_shape *s)
{
    if (x->producer < 0)
        return 0;
    const inode *p = &imp->nodes[x->producer];
    const ival *src = p->p->n_input ? V(imp, p->p->input[0]) : NULL;
    if (!src || src->kind != V_RUNTIME)
        return 0;
    const nnp_shape *in = nnp_model_value_shape(imp->m, src->value);
    if (is_op(p, "Transpose")) {
        int64_t perm[NNP_MAX_RANK];
        int r = transpose_perm(p, perm);
        if (r != in->rank)
            return 0;
        s->rank = r;
        for (int i = 0; i < r; i++)
            s->dims[i] = in->dims[perm[i]];
        return 1;
    }
    if (!is_op(p, "Reshape") || p->p->n_input < 2)
        return 0;
    const ival *c = const_root(imp, V(imp, p->p->input[1]));
    if (!c || c->kind != V_CONST || c->t.dtype != NNP_I64 || c->t.shape.rank != 1 ||
        c->t.shape.dims[0] > NNP_MAX_RANK)
        return 0;
    const int64_t *t = c->t.data;
    s->rank = (int32_t)c->t.shape.dims[0];
    for (int i = 0; i < s->rank; i++)
        s->dims[i] = t[i] > 0 ? t[i] : t[i] == 0 && i < in->rank ? in->dims[i] : -1;
    return 1;
}

/* Nodes our own export wrote for one application of a layer (metadata
 * "nodes") are read back together, as that layer. */
static nnp_status find_groups(struct onnx_import *imp, nnp_error *err)
{
    if (!imp->meta_layers || !imp->n_comp)
        return NNP_OK;
    for (int i = 0; i < imp->nn; i++) {
        inode *n = &imp->nodes[i];
        int c = nnpi_onnx_map_get(&imp->meta_node, n->name);
        int e = c >= 0 ? imp->comp_entry[c] : -1;
        const json_t *entry = e >= 0 ? json_array_get(imp->meta_layers, (size_t)e) : NULL;
        const char *cls = json_string_value(json_object_get(entry, "class_name"));
        const json_t *cfg = json_object_get(entry, "config");
        if (cls && nnp_registry_find(imp->reg, cls) && json_is_object(cfg) &&
            json_is_string(json_object_get(cfg, "name"))) {
            n->group = e;
            n->comp = c;
        }
    }
    /* members of each application, in file order (counting sort) */
    imp->comp_start = calloc((size_t)imp->n_comp + 1, sizeof(int));
    imp->members = malloc(sizeof(int) * (size_t)(imp->nn ? imp->nn : 1));
    imp->inside = calloc((size_t)(imp->nv ? imp->nv : 1), sizeof(int));
    if (!imp->comp_start || !imp->members || !imp->inside)
        return FAIL(NNP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < imp->nn; i++)
        if (imp->nodes[i].comp >= 0)
            imp->comp_start[imp->nodes[i].comp + 1]++;
    for (int c = 0; c < imp->n_comp; c++)
        imp->comp_start[c + 1] += imp->comp_start[c];
    int *fill = calloc((size_t)imp->n_comp, sizeof(int));
    if (!fill)
        return FAIL(NNP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < imp->nn; i++) {
        int c = imp->nodes[i].comp;
        if (c >= 0)
            imp->members[imp->comp_start[c] + fill[c]++] = i;
    }
    free(fill);
    return NNP_OK;
}

static nnp_status find_kinds(struct onnx_import *imp, nnp_error *err)
{
    for (int k = 0; k < imp->nn; k++) {
        inode *n = &imp->nodes[imp->order[k]];
        if (is_op(n, "Constant") || is_op(n, "Identity") || is_op(n, "Cast"))
            continue;
        n->kind = nnp_registry_find_onnx(imp->reg, n->p->domain, n->p->op_type, n->opset);
    }
    find_folds(imp);
    nnp_status gs = find_groups(imp, err);
    if (gs)
        return gs;
    for (int k = 0; k < imp->nn; k++) {
        inode *n = &imp->nodes[imp->order[k]];
        if (n->kind || n->skip || n->group >= 0 || is_op(n, "Constant") ||
            is_op(n, "Identity") || is_op(n, "Cast"))
            continue;
        char *names = nnp_registry_kind_names(imp->reg);
        char nd[600];
        nnp_status st = FAIL(NNP_ERR_UNSUPPORTED, "%s: %s at opset %d: no loaded plugin serves "
                             "op '%s' (loaded kinds: %s)", imp->label,
                             node_desc(n, nd, sizeof nd), n->opset, n->p->op_type,
                             names && names[0] ? names : "none");
        free(names);
        return st;
    }
    return NNP_OK;
}

/* ---- step 7: graph inputs ------------------------------------------------- */

static const nnp_tensor *find_binding(const nnp_onnx_binding *b, int n, const char *name)
{
    for (int i = 0; b && i < n; i++)
        if (b[i].name && b[i].value && strcmp(b[i].name, name) == 0)
            return b[i].value;
    return NULL;
}

/* True when every node reading x reads it as a parameter. */
static int param_only(struct onnx_import *imp, const ival *x, const inode **who, int *pos)
{
    if (x->n_uses == 0 || x->is_output)
        return 0;
    for (int i = 0; i < imp->nn; i++) {
        const inode *n = &imp->nodes[i];
        for (size_t k = 0; k < n->p->n_input; k++) {
            if (strcmp(n->p->input[k], x->name) != 0)
                continue;
            if (!n->kind || n->skip || (int)k < n->kind->n_inputs_max)
                return 0;
            if (!*who) {
                *who = n;
                *pos = (int)k;
            }
        }
    }
    return 1;
}

static nnp_status bind_constant(struct onnx_import *imp, ival *x, const nnp_tensor *t,
                                const nnp_shape *decl, nnp_error *err)
{
    char a[128], b[128];
    if (decl->rank >= 0) {
        int ok = decl->rank == t->shape.rank;
        for (int d = 0; ok && d < decl->rank; d++)
            ok = decl->dims[d] < 0 || decl->dims[d] == t->shape.dims[d];
        if (!ok)
            return FAIL(NNP_ERR_SHAPE, "%s: value given for graph input '%s' has shape %s, the "
                        "model declares %s", imp->label, x->name,
                        nnp_shape_str(&t->shape, a, sizeof a), nnp_shape_str(decl, b, sizeof b));
    }
    nnp_status st;
    if (t->dtype == NNP_I64) {
        st = nnp_tensor_alloc(&x->t, NNP_I64, &t->shape, err);
        if (st == NNP_OK && t->nbytes)
            memcpy(x->t.data, t->data, t->nbytes);
    } else {
        st = nnpi_onnx_tensor_to_f32(t, &x->t, err);
    }
    if (st)
        return nnp_error_prefix(err, "%s: graph input '%s'", imp->label, x->name);
    x->kind = V_CONST;
    x->onnx_dtype = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    if (json_array_append_new(imp->bound, json_string(x->name)))
        return FAIL(NNP_ERR_NOMEM, "out of memory");
    return NNP_OK;
}

static nnp_status add_inputs(struct onnx_import *imp, nnp_error *err)
{
    const nnp_onnx_load_options *o = imp->opts;
    for (size_t i = 0; i < imp->g->n_input; i++) {
        ival *x = V(imp, imp->g->input[i]->name);
        if (x->is_init)
            continue;   /* an initializer's declaration (IR < 4): a constant */
        nnp_shape s;
        int et;
        vi_shape(x->vi, &s, &et);
        const Onnx__TypeProto *ty = x->vi ? x->vi->type : NULL;
        const Onnx__TensorShapeProto *sp =
            ty && ty->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && ty->tensor_type
                ? ty->tensor_type->shape
                : NULL;
        if (sp && sp->n_dim > NNP_MAX_RANK)
            return FAIL(NNP_ERR_SHAPE, "%s: graph input '%s' has rank %zu (at most %d)",
                        imp->label, x->name, sp->n_dim, NNP_MAX_RANK);
        for (size_t d = 0; sp && d < sp->n_dim; d++)
            if (sp->dim[d]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
                sp->dim[d]->dim_value < 0)
                return FAIL(NNP_ERR_SHAPE, "%s: graph input '%s' has negative dimension %lld",
                            imp->label, x->name, (long long)sp->dim[d]->dim_value);
        const inode *who = NULL;
        int pos = 0;
        if (param_only(imp, x, &who, &pos)) {
            const nnp_tensor *b = o ? find_binding(o->bindings, o->n_bindings, x->name) : NULL;
            if (b) {
                nnp_status st = bind_constant(imp, x, b, &s, err);
                if (st)
                    return st;
                continue;
            }
            int known = s.rank >= 0;
            for (int d = 0; known && d < s.rank; d++)
                known = s.dims[d] >= 0;
            if (o && o->placeholder_parameters && known) {
                nnp_status st = nnp_tensor_alloc(&x->t, NNP_F32, &s, err);
                if (st)
                    return nnp_error_prefix(err, "%s: graph input '%s'", imp->label, x->name);
                x->kind = V_CONST;
                x->onnx_dtype = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
                if (json_array_append_new(imp->bound, json_string(x->name)))
                    return FAIL(NNP_ERR_NOMEM, "out of memory");
                continue;
            }
            char nd[600];
            return FAIL(NNP_ERR_INVALID, "%s: graph input '%s' is read by %s as a constant "
                        "parameter (input %d); give its value (nnplug run -i %s=FILE.npy)",
                        imp->label, x->name, node_desc(who, nd, sizeof nd), pos, x->name);
        }
        if (!x->vi || !x->vi->type ||
            x->vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
            return FAIL(NNP_ERR_UNSUPPORTED, "%s: graph input '%s' is not a tensor", imp->label,
                        x->name);
        if (et != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
            return FAIL(NNP_ERR_UNSUPPORTED, "%s: graph input '%s' has element type %s; nnplug "
                        "computes in float32", imp->label, x->name, nnpi_onnx_dtype_name(et));
        if (s.rank < 0)
            return FAIL(NNP_ERR_UNSUPPORTED, "%s: graph input '%s' has no shape (nnplug needs "
                        "at least its rank, at most %d)", imp->label, x->name, NNP_MAX_RANK);
        /* The first axis of a data input is the batch, as in Keras and in our
         * own exports: a fixed batch size in the file (PyTorch exports one)
         * does not bind the model to it, so it can train on other batches. */
        if (s.rank >= 1)
            s.dims[0] = -1;
        const nnp_tensor *hint =
            o ? find_binding(o->input_hints, o->n_input_hints, x->name) : NULL;
        if (hint && hint->shape.rank == s.rank)
            for (int d = 1; d < s.rank; d++)
                if (s.dims[d] < 0)
                    s.dims[d] = hint->shape.dims[d];
        nnp_status st = nnp_model_add_input(imp->m, x->name, &s, &x->value, err);
        if (st)
            return nnp_error_prefix(err, "%s", imp->label);
        x->kind = V_RUNTIME;
    }
    return NNP_OK;
}

/* ---- step 8: nodes --------------------------------------------------------- */

static nnp_status do_constant(struct onnx_import *imp, inode *n, nnp_error *err)
{
    char nd[600];
    node_desc(n, nd, sizeof nd);
    const Onnx__NodeProto *p = n->p;
    if (p->n_input != 0 || p->n_output != 1 || !p->output[0][0])
        return FAIL(NNP_ERR_FORMAT, "%s: %s must have no inputs and one output", imp->label, nd);
    if (p->n_attribute != 1)
        return FAIL(NNP_ERR_FORMAT, "%s: %s must have exactly one attribute", imp->label, nd);
    const Onnx__AttributeProto *a = p->attribute[0];
    const char *an = ONNX_STR(a->name);
    int t = nnpi_onnx_attr_type(a);
    ival *x = V(imp, p->output[0]);
    nnp_status st = NNP_OK;
    nnp_shape s = {0};
    int want = strcmp(an, "value") == 0            ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR
               : strcmp(an, "value_float") == 0    ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT
               : strcmp(an, "value_floats") == 0   ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS
               : strcmp(an, "value_int") == 0      ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT
               : strcmp(an, "value_ints") == 0     ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS
                                                   : -1;
    if (want < 0)
        return FAIL(NNP_ERR_UNSUPPORTED, "%s: %s: attribute '%s' is not supported (value, "
                    "value_float(s), value_int(s) are)", imp->label, nd, an);
    if (t != want)
        return FAIL(NNP_ERR_FORMAT, "%s: %s: attribute '%s' has type %s, expected %s", imp->label,
                    nd, an, nnpi_onnx_attr_type_name(t), nnpi_onnx_attr_type_name(want));
    switch (t) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
        if (!a->t)
            return FAIL(NNP_ERR_FORMAT, "%s: %s: attribute 'value' holds no tensor", imp->label,
                        nd);
        st = nnpi_onnx_tensor_read(a->t, imp->label, imp->base_dir, &x->t, &x->onnx_dtype, err);
        if (st)
            return nnp_error_prefix(err, "%s", nd);
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
        st = nnp_tensor_alloc(&x->t, NNP_F32, &s, err);
        if (st == NNP_OK)
            ((float *)x->t.data)[0] = a->f;
        x->onnx_dtype = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
        st = nnp_tensor_alloc(&x->t, NNP_I64, &s, err);
        if (st == NNP_OK)
            ((int64_t *)x->t.data)[0] = a->i;
        x->onnx_dtype = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
        s.rank = 1;
        s.dims[0] = (int64_t)a->n_floats;
        st = nnp_tensor_alloc(&x->t, NNP_F32, &s, err);
        if (st == NNP_OK && a->n_floats)
            memcpy(x->t.data, a->floats, sizeof(float) * a->n_floats);
        x->onnx_dtype = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
        break;
    default:
        s.rank = 1;
        s.dims[0] = (int64_t)a->n_ints;
        st = nnp_tensor_alloc(&x->t, NNP_I64, &s, err);
        if (st == NNP_OK && a->n_ints)
            memcpy(x->t.data, a->ints, sizeof(int64_t) * a->n_ints);
        x->onnx_dtype = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
        break;
    }
    if (st)
        return st;
    x->kind = V_CONST;
    return NNP_OK;
}

static nnp_status do_identity(struct onnx_import *imp, inode *n, nnp_error *err)
{
    const Onnx__NodeProto *p = n->p;
    char nd[600];
    if (p->n_input != 1 || p->n_output != 1 || !p->input[0][0] || !p->output[0][0])
        return FAIL(NNP_ERR_FORMAT, "%s: %s must have one input and one output", imp->label,
                    node_desc(n, nd, sizeof nd));
    ival *in = V(imp, p->input[0]), *out = V(imp, p->output[0]);
    if (in->kind == V_CONST) {
        out->kind = V_CONST;
        out->alias = (int)(const_root(imp, in) - imp->v);
        ival *root = &imp->v[out->alias];
        out->t = root->t;
        out->onnx_dtype = root->onnx_dtype;
        return NNP_OK;
    }
    if (in->kind != V_RUNTIME)
        return FAIL(NNP_ERR_INTERNAL, "%s: %s: input '%s' is not computed yet", imp->label,
                    node_desc(n, nd, sizeof nd), in->name);
    out->kind = V_RUNTIME;
    out->value = in->value;
    return NNP_OK;
}

/* Cast: folded on constants (rounding through the target type; a cast back
 * to float keeps the source type in memory, which export writes again);
 * on computed values only to float, which they already are. */
static nnp_status do_cast(struct onnx_import *imp, inode *n, nnp_error *err)
{
    const Onnx__NodeProto *p = n->p;
    char nd[600];
    node_desc(n, nd, sizeof nd);
    if (p->n_input != 1 || p->n_output != 1 || !p->input[0][0] || !p->output[0][0])
        return FAIL(NNP_ERR_FORMAT, "%s: %s must have one input and one output", imp->label, nd);
    const Onnx__AttributeProto *a = nnpi_onnx_find_attr(p, "to");
    if (!a || nnpi_onnx_attr_type(a) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT)
        return FAIL(NNP_ERR_FORMAT, "%s: %s needs an INT attribute 'to'", imp->label, nd);
    int to = a->i >= 0 && a->i <= 64 ? (int)a->i : -1;
    ival *in = V(imp, p->input[0]), *out = V(imp, p->output[0]);
    if (in->kind == V_RUNTIME) {
        if (to != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
            return FAIL(NNP_ERR_UNSUPPORTED, "%s: %s casts a computed value to %s (nnplug "
                        "computes in float32)", imp->label, nd, nnpi_onnx_dtype_name(to));
        out->kind = V_RUNTIME;
        out->value = in->value;
        return NNP_OK;
    }
    ival *src = const_root(imp, in);
    if (src->kind != V_CONST)
        return FAIL(NNP_ERR_INTERNAL, "%s: %s: input not computed yet", imp->label, nd);
    int to_float = nnpi_onnx_dtype_is_float(to);
    int to_int = to == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ||
                 to == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ||
                 to == ONNX__TENSOR_PROTO__DATA_TYPE__INT16 ||
                 to == ONNX__TENSOR_PROTO__DATA_TYPE__INT8 ||
                 to == ONNX__TENSOR_PROTO__DATA_TYPE__UINT8 ||
                 to == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL;
    if (!to_float && !to_int)
        return FAIL(NNP_ERR_UNSUPPORTED, "%s: %s: cast to %s is not supported", imp->label, nd,
                    nnpi_onnx_dtype_name(to));
    nnp_status st = nnp_tensor_alloc(&out->t, to_float ? NNP_F32 : NNP_I64, &src->t.shape, err);
    if (st)
        return nnp_error_prefix(err, "%s: %s", imp->label, nd);
    int64_t cnt = nnp_tensor_numel(&src->t);
    for (int64_t i = 0; i < cnt; i++) {
        double v = src->t.dtype == NNP_F32 ? ((const float *)src->t.data)[i]
                                           : (double)((const int64_t *)src->t.data)[i];
        if (to_float) {
            float f = (float)v;
            if (to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16)
                f = nnpi_onnx_f16_to_f32(nnpi_onnx_f32_to_f16(f));
            else if (to == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16)
                f = nnpi_onnx_bf16_to_f32(nnpi_onnx_f32_to_bf16(f));
            ((float *)out->t.data)[i] = f;
        } else {
            int64_t q = to == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL ? v != 0
                        : v != v || v >= 9.2e18 || v <= -9.2e18 ? 0 : (int64_t)v;
            ((int64_t *)out->t.data)[i] = q;
        }
    }
    out->kind = V_CONST;
    int keep =
        to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && nnpi_onnx_dtype_is_float(src->onnx_dtype);
    out->onnx_dtype = keep ? src->onnx_dtype : to;
    return NNP_OK;
}

/* Name for the model value of node output `x`: when an Identity copies it
 * to a graph output and nothing else reads it, the graph output's name. */
static const char *value_name(struct onnx_import *imp, const ival *x)
{
    if (x->is_output || x->n_uses != 1)
        return x->name;
    const inode *u = &imp->nodes[x->first_use];
    if (!is_op(u, "Identity") || u->p->n_output != 1)
        return x->name;
    const ival *o = V(imp, u->p->output[0]);
    if (o && o->is_output && nnp_model_find_value(imp->m, o->name) < 0)
        return o->name;
    return x->name;
}

/* Remembers the stored type of constants a layer's weights came from, by
 * content: a weight equal to a non-float32 constant input came from it. */
static nnp_status note_dtypes(struct onnx_import *imp, const inode *n, const nnp_layer *l,
                              nnp_error *err)
{
    int nw = nnp_layer_n_weights(l);
    if (nw <= 0 || nw > 64)
        return NNP_OK;
    int used[64] = {0};
    for (size_t k = 1; k < n->p->n_input; k++) {
        ival *c = const_root(imp, V(imp, n->p->input[k]));
        if (!c || c->kind != V_CONST || c->t.dtype != NNP_F32 ||
            c->onnx_dtype == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
            !nnpi_onnx_dtype_is_float(c->onnx_dtype))
            continue;
        for (int i = 0; i < nw; i++) {
            const nnp_weight *w = nnp_layer_weight(l, i);
            if (used[i] || !w->value || w->value->dtype != NNP_F32 ||
                w->value->nbytes != c->t.nbytes ||
                (c->t.nbytes && memcmp(w->value->data, c->t.data, c->t.nbytes) != 0))
                continue;
            used[i] = 1;
            const char *dn = nnp_dtype_name(nnpi_onnx_dtype_to_nnp(c->onnx_dtype));
            json_t *per = json_object_get(imp->dtypes, nnp_layer_name(l));
            if (!per) {
                per = json_object();
                if (!per || json_object_set_new(imp->dtypes, nnp_layer_name(l), per))
                    return FAIL(NNP_ERR_NOMEM, "out of memory");
            }
            if (json_object_set_new(per, w->name, json_string(dn)))
                return FAIL(NNP_ERR_NOMEM, "out of memory");
            break;
        }
    }
    return NNP_OK;
}

/* Adds the file and, unless the message names it already, the node. */
static nnp_status node_error(struct onnx_import *imp, const inode *n, nnp_error *err)
{
    char q[300];
    snprintf(q, sizeof q, "'%.280s'", n->name);
    if (strstr(err->msg, q))
        return nnp_error_prefix(err, "%s", imp->label);
    char nd[600];
    return nnp_error_prefix(err, "%s: %s", imp->label, node_desc(n, nd, sizeof nd));
}

static int is_host_op(const inode *n)
{
    return is_op(n, "Constant") || is_op(n, "Identity") || is_op(n, "Cast");
}

/* One layer application: the node whose reader the plugin sees, its
 * computed inputs, its output, and where the config comes from. */
typedef struct app {
    inode *main;
    nnp_onnx_reader r;
    const nnp_kind *kind;
    int ins[MAX_NODE_IO];
    int n_in;
    ival *out;
    const json_t *entry;   /* nnplug.layers entry (our own export), or NULL */
    int n_members;         /* ONNX nodes it stands for */
} app;

/* The layer's config: the exact one from our metadata, or from_onnx. */
static nnp_status make_config(struct onnx_import *imp, app *a, nnp_config **out, nnp_error *err)
{
    inode *n = a->main;
    const nnp_kind *kind = a->kind;
    nnp_config *cfg = NULL;
    nnp_status st;
    *out = NULL;
    if (a->entry) {
        st = nnpi_config_from_jsonv(kind, json_object_get(a->entry, "config"), &cfg, err);
        if (st)
            return nnp_error_prefix(err, "metadata %s", NNP_ONNX_META_LAYERS);
        nnpi_config_set_registry(cfg, imp->reg);
        *out = cfg;
        return NNP_OK;
    }
    st = nnp_config_new(kind, &cfg, err);
    if (st)
        return st;
    nnpi_config_set_registry(cfg, imp->reg);
    st = nnp_config_set_name(cfg, n->name, err);
    if (st == NNP_OK && kind->from_onnx)
        st = kind->from_onnx(nnp_host_services(), &a->r, cfg, err);
    else if (st == NNP_OK)
        st = FAIL(NNP_ERR_UNSUPPORTED, "kind %s cannot read ONNX nodes", kind->name);
    if (st == NNP_OK && n->fold_in >= 0 && imp->v[n->fold_in].kind != V_RUNTIME)
        st = FAIL(NNP_ERR_UNSUPPORTED, "the Transpose before it reads a constant; nnplug "
                  "folds layouts only of values computed at run time");
    if (st == NNP_OK && n->fold_in >= 0) {
        const nnp_shape *s = nnp_model_value_shape(imp->m, imp->v[n->fold_in].value);
        if (s->rank != n->fold_rank)
            st = FAIL(NNP_ERR_SHAPE, "the Transpose around it has a perm of %d entries, its "
                      "input has rank %d", n->fold_rank, (int)s->rank);
        else
            st = nnpi_kind_onnx_node_ext(kind)->fold_transpose(nnp_host_services(), n->fold_perm,
                                                     n->fold_rank, s, cfg, err);
    }
    if (st) {
        nnp_config_free(cfg);
        return st;
    }
    *out = cfg;
    return NNP_OK;
}

/* The kind's own checks of the node against its inputs (its extension's
 * check_node), before the layer allocates anything. */
static nnp_status check_node(struct onnx_import *imp, const app *a, nnp_error *err)
{
    const nnp_onnx_node_ext *ext = nnpi_kind_onnx_node_ext(a->main->kind);
    if (!ext || !ext->check_node)
        return NNP_OK;
    nnp_status st = ext->check_node(nnp_host_services(), &a->r, err);
    return st ? node_error(imp, a->main, err) : NNP_OK;
}

/* Whether the node computes in training mode, as its kind reads it. */
static nnp_status node_training(struct onnx_import *imp, const app *a, int *train,
                                nnp_error *err)
{
    const nnp_onnx_node_ext *ext = nnpi_kind_onnx_node_ext(a->main->kind);
    *train = 0;
    if (!ext || !ext->read_training)
        return NNP_OK;
    nnp_status st = ext->read_training(nnp_host_services(), &a->r, train, err);
    return st ? node_error(imp, a->main, err) : NNP_OK;
}

static nnp_status instantiate(struct onnx_import *imp, app *a, nnp_error *err)
{
    inode *n = a->main;
    const Onnx__NodeProto *p = n->p;
    const nnp_kind *kind = a->kind;
    const char *L = imp->label;
    char nd[600];
    node_desc(n, nd, sizeof nd);
    if (a->n_in < kind->n_inputs_min || a->n_in > kind->n_inputs_max)
        return FAIL(NNP_ERR_UNSUPPORTED, "%s: %s: %s takes %d to %d computed inputs, the graph "
                    "gives %d (a layer on constants only is not folded)", L, nd, kind->name,
                    kind->n_inputs_min, kind->n_inputs_max, a->n_in);
    nnp_status st = check_node(imp, a, err);
    if (st)
        return st;
    const char *lname = a->entry ? json_string_value(json_object_get(
                                       json_object_get(a->entry, "config"), "name"))
                                 : NULL;
    int li = lname ? nnp_model_find_layer(imp->m, lname) : -1;
    int fresh = !(li >= 0 && nnp_layer_kind_of(nnp_model_layer(imp->m, li)) == kind);
    if (fresh) {
        /* a layer applied again (shared weights) comes back as the same layer */
        nnp_config *cfg;
        st = make_config(imp, a, &cfg, err);
        if (st)
            return node_error(imp, n, err);
        /* a generated or clashing name gets a suffix */
        if (nnp_model_find_layer(imp->m, nnp_config_name(cfg)) >= 0) {
            char buf[300];
            for (int k = 1;; k++) {
                snprintf(buf, sizeof buf, "%.250s_%d", nnp_config_name(cfg), k);
                if (nnp_model_find_layer(imp->m, buf) < 0)
                    break;
            }
            st = nnp_config_set_name(cfg, buf, err);
            if (st) {
                nnp_config_free(cfg);
                return st;
            }
        }
        nnp_layer *layer;
        st = nnp_layer_new_from_config(imp->reg, cfg, &layer, err);
        if (st == NNP_OK)
            st = nnp_model_add_layer(imp->m, layer, &li, err);
        if (st)
            return node_error(imp, n, err);
    }
    int ov;
    st = nnp_model_apply(imp->m, li, a->ins, a->n_in, value_name(imp, a->out), &ov, err);
    if (st)
        return node_error(imp, n, err);
    a->out->kind = V_RUNTIME;
    a->out->value = ov;
    int node_index = nnp_model_n_nodes(imp->m) - 1;
    nnp_layer *layer = nnp_model_layer(imp->m, li);
    if (fresh) {
        st = nnpi_layer_onnx_load_weights(layer, &a->r, err);
        if (st)
            return node_error(imp, n, err);
        st = note_dtypes(imp, n, layer, err);
        if (st)
            return st;
    }

    int train;
    st = node_training(imp, a, &train, err);
    if (st == NNP_OK && train)
        st = nnp_model_set_node_mode(imp->m, node_index, NNP_MODE_TRAIN, err);
    if (st)
        return st;
    /* outputs beyond Y: weights after the forward, when anything reads them */
    for (size_t k = 1; k < p->n_output; k++) {
        ival *x = V(imp, p->output[k]);
        if (!x || (x->n_uses == 0 && !x->is_output))
            continue;   /* absent or unused */
        const char *wname = n->kind ? nnpi_onnx_weight_output(n->kind, (int)k) : NULL;
        if (!wname || !train)
            return FAIL(NNP_ERR_UNSUPPORTED, "%s: %s: output %zu ('%s') is not supported%s", L,
                        nd, k, x->name, wname ? " outside training mode" : "");
        st = nnp_model_add_weight_output(imp->m, li, wname, x->name, &x->value, err);
        if (st)
            return node_error(imp, n, err);
        x->kind = V_RUNTIME;
    }

    /* for nnplug info */
    json_t *rep = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s}", "node", n->name, "op_type",
                            p->op_type, "domain", n->is_default_domain ? "ai.onnx" : p->domain,
                            "opset", n->opset, "layer", nnp_layer_name(layer), "kind", kind->name);
    if (rep && a->n_members > 1)
        json_object_set_new(rep, "folded",
                            json_string(a->entry ? "nodes written by one layer (metadata)"
                                                 : "Transpose pair"));
    if (rep && a->n_members > 1)
        json_object_set_new(rep, "n_nodes", json_integer(a->n_members));
    if (rep && train)
        json_object_set_new(rep, "training_mode", json_true());
    if (!rep || json_array_append_new(imp->report, rep))
        return FAIL(NNP_ERR_NOMEM, "out of memory");
    return NNP_OK;
}

/* A node served by its kind (a folded Transpose pair included). */
static nnp_status do_layer(struct onnx_import *imp, inode *n, nnp_error *err)
{
    const Onnx__NodeProto *p = n->p;
    char nd[600];
    node_desc(n, nd, sizeof nd);
    const char *L = imp->label;
    if (p->n_output < 1 || !p->output[0][0])
        return FAIL(NNP_ERR_FORMAT, "%s: %s has no output", L, nd);
    app a;
    memset(&a, 0, sizeof a);
    a.main = n;
    a.kind = n->kind;
    a.r = (nnp_onnx_reader){&nnpi_onnx_reader_ops, imp, p, n->name, n->opset, NULL, NULL, 0};
    a.n_members = n->fold_in >= 0 ? 3 : 1;
    if (n->fold_in >= 0) {
        a.r.in0 = imp->v[n->fold_in].name;
        a.r.perm0 = n->fold_perm;
        a.r.rank0 = n->fold_rank;
    }
    /* computed inputs: at the kind's data positions only */
    for (size_t k = 0; k < p->n_input; k++) {
        const char *name = k == 0 && a.r.in0 ? a.r.in0 : p->input[k];
        if (!name[0])
            continue;
        ival *x = V(imp, name);
        if (x->kind == V_CONST)
            continue;
        if (x->kind != V_RUNTIME)
            return FAIL(NNP_ERR_INTERNAL, "%s: %s: input '%s' is not computed yet", L, nd, name);
        if ((int)k >= a.kind->n_inputs_max) {
            const char *how = x->producer >= 0 ? "computed by node" : "a graph input";
            return FAIL(NNP_ERR_UNSUPPORTED, "%s: %s: input %zu ('%s') must be a constant (an "
                        "initializer or a Constant node), but it is %s%s%s%s", L, nd, k, name,
                        how, x->producer >= 0 ? " '" : "",
                        x->producer >= 0 ? imp->nodes[x->producer].name : "",
                        x->producer >= 0 ? "'" : "");
        }
        a.ins[a.n_in++] = x->value;
    }
    a.out = n->fold_out >= 0 ? &imp->v[n->fold_out] : V(imp, p->output[0]);
    return instantiate(imp, &a, err);
}

/* The nodes one layer of ours wrote (nnplug.layers "nodes", one connected
 * application of it), read back as that layer with its exact config. This
 * is how layers whose ONNX form uses ops without a kind of their own
 * (TimeDistributed's Reshape pair) come back. */
static nnp_status do_group(struct onnx_import *imp, inode *n, nnp_error *err)
{
    const char *L = imp->label;
    const json_t *entry = json_array_get(imp->meta_layers, (size_t)n->group);
    const nnp_kind *kind =
        nnp_registry_find(imp->reg, json_string_value(json_object_get(entry, "class_name")));
    app a;
    memset(&a, 0, sizeof a);
    a.kind = kind;
    a.entry = entry;
    /* the node whose reader the layer sees: of the layer's own kind, else of
     * the kind it wraps (config "layer"), else the first with a kind */
    const char *inner = json_string_value(json_object_get(
        json_object_get(json_object_get(entry, "config"), "layer"), "class_name"));
    inode *best = NULL, *wrapped = NULL, *any = NULL;
    const int *mem = imp->members + imp->comp_start[n->comp];
    const int n_mem = imp->comp_start[n->comp + 1] - imp->comp_start[n->comp];
    for (int i = 0; i < n_mem; i++) {
        inode *m = &imp->nodes[mem[i]];
        if (is_host_op(m))
            continue;
        a.n_members++;
        m->done = 1;
        if (m->kind == kind && !best)
            best = m;
        if (m->kind && inner && strcmp(m->kind->name, inner) == 0 && !wrapped)
            wrapped = m;
        if (m->kind && !any)
            any = m;
    }
    a.main = best ? best : wrapped ? wrapped : any ? any : n;
    a.r = (nnp_onnx_reader){&nnpi_onnx_reader_ops, imp, a.main->p, a.main->name,
                             a.main->opset, NULL, NULL, 0};
    char nd[600];
    node_desc(a.main, nd, sizeof nd);
    /* inputs: computed tensors read from outside; output: the one tensor
     * read outside (running statistics of the main node aside) */
    for (int i = 0; i < n_mem; i++)
        for (size_t k = 0; k < imp->nodes[mem[i]].p->n_input; k++) {
            int x = nnpi_onnx_map_get(&imp->by_name, imp->nodes[mem[i]].p->input[k]);
            if (x >= 0)
                imp->inside[x]++;
        }
    nnp_status st = NNP_OK;
    for (int i = 0; i < n_mem && !st; i++) {
        inode *m = &imp->nodes[mem[i]];
        if (is_host_op(m))
            continue;
        /* a tensor two members read is one input of the layer; one node
         * reading it twice (Add(X, X)) takes it twice */
        const int before = a.n_in;
        for (size_t k = 0; k < m->p->n_input; k++) {
            ival *x = V(imp, m->p->input[k]);
            if (!x || (x->producer >= 0 && imp->nodes[x->producer].comp == n->comp) ||
                x->kind == V_CONST)
                continue;
            if (x->kind != V_RUNTIME) {
                st = FAIL(NNP_ERR_UNSUPPORTED, "%s: layer '%s' (%s, from metadata): input "
                          "'%s' is not computed before the layer", L,
                          json_string_value(json_object_get(json_object_get(entry, "config"),
                                                            "name")),
                          kind->name, x->name);
                break;
            }
            int seen = 0;
            for (int j = 0; j < before; j++)
                seen |= a.ins[j] == x->value;
            if (!seen && a.n_in < MAX_NODE_IO)
                a.ins[a.n_in++] = x->value;
        }
        if (st)
            break;
        for (size_t k = 0; k < m->p->n_output; k++) {
            ival *o = V(imp, m->p->output[k]);
            if (!o || (m == a.main && k > 0))
                continue;
            if (o->is_output || o->n_uses > imp->inside[o - imp->v]) {
                if (a.out) {
                    st = FAIL(NNP_ERR_UNSUPPORTED, "%s: the nodes of layer '%s' (%s, from "
                              "metadata) have two outputs read elsewhere ('%s', '%s')", L,
                              json_string_value(json_object_get(
                                  json_object_get(entry, "config"), "name")),
                              kind->name, a.out->name, o->name);
                    break;
                }
                a.out = o;
            }
        }
    }
    for (int i = 0; i < n_mem; i++)
        for (size_t k = 0; k < imp->nodes[mem[i]].p->n_input; k++) {
            int x = nnpi_onnx_map_get(&imp->by_name, imp->nodes[mem[i]].p->input[k]);
            if (x >= 0)
                imp->inside[x] = 0;
        }
    if (st)
        return st;
    if (!a.out && a.main->p->n_output > 0)
        a.out = V(imp, a.main->p->output[0]);   /* a layer nothing reads */
    if (!a.out)
        return FAIL(NNP_ERR_UNSUPPORTED, "%s: %s: the nodes of its layer (from metadata) have "
                    "no output", L, nd);
    return instantiate(imp, &a, err);
}

static nnp_status do_nodes(struct onnx_import *imp, nnp_error *err)
{
    for (int k = 0; k < imp->nn; k++) {
        inode *n = &imp->nodes[imp->order[k]];
        nnp_status st;
        if (n->done)
            continue;
        if (is_op(n, "Constant"))
            st = do_constant(imp, n, err);
        else if (is_op(n, "Identity"))
            st = do_identity(imp, n, err);
        else if (is_op(n, "Cast"))
            st = do_cast(imp, n, err);
        else if (n->group >= 0)
            st = do_group(imp, n, err);
        else if (n->skip)
            continue;
        else
            st = do_layer(imp, n, err);
        if (st)
            return st;
    }
    return NNP_OK;
}

/* ---- step 9: outputs and metadata ------------------------------------------ */

static nnp_status set_outputs(struct onnx_import *imp, nnp_error *err)
{
    size_t n = imp->g->n_output;
    int *vals = malloc(sizeof(int) * n);
    if (!vals)
        return FAIL(NNP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const Onnx__ValueInfoProto *o = imp->g->output[i];
        ival *x = V(imp, o->name);
        int et;
        nnp_shape s;
        vi_shape(o, &s, &et);
        nnp_status st = NNP_OK;
        if (x->kind == V_CONST)
            st = FAIL(NNP_ERR_UNSUPPORTED, "%s: graph output '%s' is a constant", imp->label,
                      o->name);
        else if (x->kind != V_RUNTIME)
            st = FAIL(NNP_ERR_UNSUPPORTED, "%s: graph output '%s' is not computed", imp->label,
                      o->name);
        else if (et && et != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
            st = FAIL(NNP_ERR_UNSUPPORTED, "%s: graph output '%s' has element type %s; nnplug "
                      "computes in float32", imp->label, o->name, nnpi_onnx_dtype_name(et));
        if (st) {
            free(vals);
            return st;
        }
        vals[i] = x->value;
    }
    nnp_status st = nnp_model_set_outputs(imp->m, vals, (int)n, err);
    free(vals);
    return st;
}

static nnp_status read_metadata(struct onnx_import *imp, nnp_error *err)
{
    const Onnx__ModelProto *mp = imp->mp;
    for (size_t i = 0; i < mp->n_metadata_props; i++) {
        const char *k = mp->metadata_props[i]->key, *v = mp->metadata_props[i]->value;
        if (!k || !k[0])
            continue;
        if (strcmp(k, NNP_ONNX_META_LAYERS) == 0 && v && !imp->meta_layers) {
            /* unreadable metadata is ignored: the graph itself is the truth */
            json_t *j = json_loads(v, 0, NULL);
            if (!json_is_array(j)) {
                json_decref(j);
                continue;
            }
            imp->meta_layers = j;
            /* "nodes": one list of node names per application of the layer */
            for (size_t e = 0; e < json_array_size(j); e++) {
                const json_t *apps = json_object_get(json_array_get(j, e), "nodes");
                for (size_t q = 0; q < json_array_size(apps); q++) {
                    const json_t *names = json_array_get(apps, q);
                    int *ce = realloc(imp->comp_entry, sizeof(int) * (size_t)(imp->n_comp + 1));
                    if (!ce)
                        return FAIL(NNP_ERR_NOMEM, "out of memory");
                    imp->comp_entry = ce;
                    ce[imp->n_comp] = (int)e;
                    for (size_t r = 0; r < json_array_size(names); r++) {
                        const char *nn = json_string_value(json_array_get(names, r));
                        if (nn && nnpi_onnx_map_put(&imp->meta_node, nn, imp->n_comp, err))
                            return err->code;
                    }
                    imp->n_comp++;
                }
            }
            continue;
        }
        if (strncmp(k, "nnplug.", 7) == 0 || nnp_model_get_meta(imp->m, k))
            continue;
        nnp_status st = nnp_model_set_meta(imp->m, k, ONNX_STR(v), err);
        if (st)
            return st;
    }
    return NNP_OK;
}

static nnp_status write_import_meta(struct onnx_import *imp, nnp_error *err)
{
    nnp_status st = NNP_OK;
    if (json_object_size(imp->dtypes)) {
        char *s = json_dumps(imp->dtypes, JSON_COMPACT | JSON_SORT_KEYS);
        st = s ? nnp_model_set_meta(imp->m, NNP_ONNX_META_DTYPES, s, err)
               : FAIL(NNP_ERR_NOMEM, "out of memory");
        free(s);
    }
    if (st)
        return st;
    json_t *ops = json_object();
    for (size_t i = 0; ops && i < imp->n_opsets; i++)
        json_object_set_new(ops, imp->opsets[i].domain[0] ? imp->opsets[i].domain : "ai.onnx",
                            json_integer(imp->opsets[i].version));
    json_t *info = json_pack("{s:I, s:o, s:s, s:s, s:O, s:O}", "ir_version",
                             (json_int_t)imp->mp->ir_version, "opset_import", ops, "producer",
                             ONNX_STR(imp->mp->producer_name), "producer_version",
                             ONNX_STR(imp->mp->producer_version), "nodes", imp->report,
                             "parameter_inputs", imp->bound);
    char *s = info ? json_dumps(info, JSON_COMPACT) : NULL;
    json_decref(info);
    st = s ? nnp_model_set_meta(imp->m, NNP_ONNX_META_IMPORT, s, err)
           : FAIL(NNP_ERR_NOMEM, "out of memory");
    free(s);
    return st;
}

/* ---- entry points ----------------------------------------------------------- */

static nnp_status import_run(struct onnx_import *imp, const void *data, size_t len, nnp_error *err)
{
    const char *L = imp->label;
    if (scan_depth(data, (const uint8_t *)data + len, &onnx__model_proto__descriptor, 0))
        return FAIL(NNP_ERR_FORMAT, "%s: not a valid ONNX model (messages nested more than %d "
                    "deep)", L, MAX_NESTING);
    imp->mp = onnx__model_proto__unpack(NULL, len, data);
    if (!imp->mp)
        return FAIL(NNP_ERR_FORMAT, "%s: not a valid ONNX model (protobuf parse failed)", L);
    nnp_status st = check_model(imp, err);
    if (st == NNP_OK)
        st = nnp_model_new(imp->reg, &imp->m, err);
    imp->dtypes = json_object();
    imp->report = json_array();
    imp->bound = json_array();
    if (st == NNP_OK && (!imp->dtypes || !imp->report || !imp->bound))
        st = FAIL(NNP_ERR_NOMEM, "out of memory");
    if (st == NNP_OK)
        st = collect_names(imp, err);
    if (st == NNP_OK)
        st = read_initializers(imp, err);
    if (st == NNP_OK)
        st = topo_sort(imp, err);
    if (st == NNP_OK)
        st = read_metadata(imp, err);
    if (st == NNP_OK)
        st = find_kinds(imp, err);
    if (st == NNP_OK)
        st = add_inputs(imp, err);
    if (st == NNP_OK)
        st = do_nodes(imp, err);
    if (st == NNP_OK)
        st = set_outputs(imp, err);
    if (st == NNP_OK)
        st = write_import_meta(imp, err);
    return st;
}

nnp_status nnp_onnx_load_buffer(const nnp_registry *reg, const void *data, size_t len,
                                const char *label, const char *base_dir,
                                const nnp_onnx_load_options *opts, nnp_model **out, nnp_error *err)
{
    *out = NULL;
    nnp_error local;
    if (!err)
        err = &local;
    nnp_error_clear(err);
    struct onnx_import imp;
    memset(&imp, 0, sizeof imp);
    imp.reg = reg;
    imp.label = label ? label : "ONNX model";
    imp.base_dir = base_dir;
    imp.opts = opts;
    if (!data && len)
        return FAIL(NNP_ERR_INVALID, "%s: no data", imp.label);
    nnp_status st = import_run(&imp, data ? data : "", len, err);
    if (st == NNP_OK) {
        *out = imp.m;
        imp.m = NULL;
    } else if (!strstr(err->msg, imp.label)) {
        nnp_error_prefix(err, "%s", imp.label);   /* every message names the file */
    }
    import_free(&imp);
    return st;
}

nnp_status nnp_onnx_load(const nnp_registry *reg, const char *path,
                         const nnp_onnx_load_options *opts, nnp_model **out, nnp_error *err)
{
    *out = NULL;
    char *data;
    size_t len;
    nnp_status st = nnp_read_file(path, &data, &len, err);
    if (st)
        return st;
    /* external data lives beside the model */
    char *dir = strdup(path);
    if (!dir) {
        free(data);
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    }
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    st = nnp_onnx_load_buffer(reg, data, len, path, dir, opts, out, err);
    free(dir);
    free(data);
    return st;
}
