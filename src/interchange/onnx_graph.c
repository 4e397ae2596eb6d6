/* ONNX import, the graph's names and values: step 3 (graph inputs,
 * initializers, node outputs and graph outputs named once; every node input
 * defined), step 4 (initializers read), step 5 (topological order; a cycle
 * is an error naming its nodes), step 7 (graph inputs: model inputs, or
 * constants when only read as bound parameters), step 9 (graph outputs),
 * and the value lookups the node reader answers plugins with. */
#include "interchange/onnx_import_internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- values for the node reader ----------------------------------------- */

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
    if (nnpi_onnx_layout_shape(imp, x, s))
        return NNP_OK;
    vi_shape(x->vi, s, NULL);
    return NNP_OK;
}

int nnpi_onnx_import_elem_type(struct onnx_import *imp, const char *tensor)
{
    ival *x = V(imp, tensor);
    if (!x)
        return 0;
    ival *c = const_root(imp, x);
    if (c->kind == V_CONST)
        return c->onnx_dtype ? c->onnx_dtype : nnpi_onnx_dtype_from_nnp(c->t.dtype);
    if (x->kind == V_RUNTIME)
        return ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    int et = 0;
    nnp_shape s;
    vi_shape(x->vi, &s, &et);
    return et;
}

nnp_dtype nnpi_onnx_import_dtype(struct onnx_import *imp, const char *tensor)
{
    int et = nnpi_onnx_import_elem_type(imp, tensor);
    nnp_dtype dt = nnpi_onnx_dtype_to_nnp(et);
    if (dt != NNP_DTYPE_UNDEFINED || !et)
        return dt;
    /* a type nnp_dtype lacks (int8, uint16, ...): the constant as read */
    ival *c = const_root(imp, V(imp, tensor));
    return c && c->kind == V_CONST ? c->t.dtype : NNP_DTYPE_UNDEFINED;
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

/* ---- step 3: names ---------------------------------------------------------- */

/* Initializers first: a graph input of the same name is its default (IR < 4). */
static nnp_status name_values(struct onnx_import *imp, nnp_error *err)
{
    const Onnx__GraphProto *g = imp->g;
    const char *L = imp->label;
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
    return NNP_OK;
}

/* Every node has an op_type and a bounded number of inputs and outputs;
 * given names are unique (node_names gets them). */
static nnp_status check_node_protos(struct onnx_import *imp, onnx_map *node_names,
                                    nnp_error *err)
{
    const char *L = imp->label;
    nnp_status st = NNP_OK;
    for (int i = 0; i < imp->nn && !st; i++) {
        const Onnx__NodeProto *p = imp->g->node[i];
        inode *n = &imp->nodes[i];
        n->p = p;
        n->fold_in = n->fold_out = n->fold_extra = -1;
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
            if (nnpi_onnx_map_get(node_names, p->name) >= 0) {
                st = FAIL(NNP_ERR_DUPLICATE, "%s: node name '%s' is used twice", L, p->name);
                break;
            }
            st = nnpi_onnx_map_put(node_names, p->name, i, err);
        }
    }
    return st;
}

/* Node names: given ones kept; empty ones get "<op_type>_<index>" (with a
 * suffix when that is taken). */
static nnp_status name_nodes(struct onnx_import *imp, nnp_error *err)
{
    const Onnx__GraphProto *g = imp->g;
    onnx_map node_names = {0};
    imp->nodes = calloc(g->n_node ? g->n_node : 1, sizeof *imp->nodes);
    if (!imp->nodes)
        return FAIL(NNP_ERR_NOMEM, "out of memory");
    if (g->n_node > INT_MAX / 4)
        return FAIL(NNP_ERR_OVERFLOW, "%s: too many nodes", imp->label);
    imp->nn = (int)g->n_node;
    nnp_status st = check_node_protos(imp, &node_names, err);
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
    return st;
}

/* The opset of each node's domain, which opset_import must list. */
static nnp_status node_opsets(struct onnx_import *imp, nnp_error *err)
{
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
                        "list", imp->label, node_desc(n, nd, sizeof nd), d);
        }
    }
    return NNP_OK;
}

/* Node outputs: each tensor produced once, never an input or initializer. */
static nnp_status name_node_outputs(struct onnx_import *imp, nnp_error *err)
{
    const char *L = imp->label;
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
    return NNP_OK;
}

/* Node inputs: every one defined; counts the reads of each tensor. */
static nnp_status check_node_inputs(struct onnx_import *imp, nnp_error *err)
{
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
                            "input, an initializer or the output of any node", imp->label,
                            node_desc(&imp->nodes[i], nd, sizeof nd), k, in);
            }
            if (x->n_uses++ == 0)
                x->first_use = i;
        }
    }
    return NNP_OK;
}

/* Value infos, then graph outputs: each produced, each named once. */
static nnp_status name_graph_outputs(struct onnx_import *imp, nnp_error *err)
{
    const char *L = imp->label;
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

nnp_status nnpi_onnx_collect_names(struct onnx_import *imp, nnp_error *err)
{
    nnp_status st = name_values(imp, err);
    if (st == NNP_OK)
        st = name_nodes(imp, err);
    if (st == NNP_OK)
        st = node_opsets(imp, err);
    if (st == NNP_OK)
        st = name_node_outputs(imp, err);
    if (st == NNP_OK)
        st = check_node_inputs(imp, err);
    if (st == NNP_OK)
        st = name_graph_outputs(imp, err);
    return st;
}

/* ---- step 4: initializers ----------------------------------------------- */

nnp_status nnpi_onnx_read_initializers(struct onnx_import *imp, nnp_error *err)
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

/* Consumer lists: edge e runs from the producer of a node's input to the
 * node (dst[e]); head[u] is u's first edge, next[e] the one after e. */
static void link_consumers(struct onnx_import *imp, int *indeg, int *head, int *next, int *dst)
{
    for (int i = 0; i < imp->nn; i++)
        head[i] = -1;
    int e = 0;
    for (int i = 0; i < imp->nn; i++) {
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
}

/* Kahn's algorithm, seeded in file order: fills imp->order and returns how
 * many nodes it ordered (fewer than imp->nn when there is a cycle). */
static int kahn(struct onnx_import *imp, int *indeg, const int *head, const int *next,
                const int *dst)
{
    int qh = 0, qt = 0;
    for (int i = 0; i < imp->nn; i++)
        if (indeg[i] == 0)
            imp->order[qt++] = i;
    while (qh < qt) {
        int u = imp->order[qh++];
        /* consumer lists are built in reverse; the order stays deterministic */
        for (int k = head[u]; k >= 0; k = next[k])
            if (--indeg[dst[k]] == 0)
                imp->order[qt++] = dst[k];
    }
    return qt;
}

/* The error for a graph Kahn could not order: walks producers from a stuck
 * node (indeg > 0) until one repeats, which closes a cycle, and names it. */
static nnp_status cycle_error(struct onnx_import *imp, const int *indeg, nnp_error *err)
{
    int nn = imp->nn;
    nnp_status st;
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
    return st;
}

nnp_status nnpi_onnx_topo_sort(struct onnx_import *imp, nnp_error *err)
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
    link_consumers(imp, indeg, head, next, dst);
    nnp_status st = NNP_OK;
    if (kahn(imp, indeg, head, next, dst) < nn)
        st = cycle_error(imp, indeg, err);
    free(indeg);
    free(head);
    free(next);
    free(dst);
    return st;
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

/* A graph input whose value x->t now holds (st: how filling it went) is a
 * constant of the model from here on, listed as bound. */
static nnp_status bound(struct onnx_import *imp, ival *x, nnp_status st, nnp_error *err)
{
    if (st)
        return nnp_error_prefix(err, "%s: graph input '%s'", imp->label, x->name);
    x->kind = V_CONST;
    x->onnx_dtype = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    if (json_array_append_new(imp->bound, json_string(x->name)))
        return FAIL(NNP_ERR_NOMEM, "out of memory");
    return NNP_OK;
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
    return bound(imp, x, st, err);
}

nnp_status nnpi_onnx_add_inputs(struct onnx_import *imp, nnp_error *err)
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
                nnp_status st = bound(imp, x, nnp_tensor_alloc(&x->t, NNP_F32, &s, err), err);
                if (st)
                    return st;
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
         * does not bind the model to it, so it can train on other batches;
         * unless a node reshapes across it (imp->fixed_batch). */
        if (s.rank >= 1) {
            int64_t b = s.dims[0];
            if (i == 0 || imp->file_batch == b)
                imp->file_batch = b;
            else
                imp->file_batch = -1;
            if (!imp->fixed_batch || b < 1)
                s.dims[0] = -1;
        }
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

/* ---- step 9: graph outputs ------------------------------------------------ */

nnp_status nnpi_onnx_set_outputs(struct onnx_import *imp, nnp_error *err)
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
