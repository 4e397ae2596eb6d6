/* ONNX import, step 6 and the groups of step 8: the kind serving each
 * node; Transpose(perm) -> node -> Transpose(inverse) sandwiches folded into
 * the kinds that absorb them; the nodes one layer of ours wrote (metadata
 * nnplug.layers "nodes") found, and read back as that one layer. */
#include "interchange/onnx_import_internal.h"
#include "plugin/host_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- step 6: kinds and folding -------------------------------------------- */

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

/* The ops a kind's node absorbs from the node after it (fold_next), or NULL. */
static const char *const *fold_next_ops(const nnp_kind *k)
{
    const nnp_onnx_node_ext *ext = nnpi_kind_onnx_node_ext(k);
    return ext && NNP_HAS_FIELD(ext, nnp_onnx_node_ext, fold_next) ? ext->fold_next : NULL;
}

/* node -> Op(its output, a constant) where Op is one the node's kind
 * absorbs (fold_next): the pair is one application of the kind, which
 * reads the constant as one more input. */
static void find_next_folds(struct onnx_import *imp)
{
    for (int i = 0; i < imp->nn; i++) {
        inode *n = &imp->nodes[i];
        const char *const *ops = fold_next_ops(n->kind);
        if (!ops || n->skip || n->fold_out >= 0 || n->p->n_output != 1)
            continue;
        const ival *y = V(imp, n->p->output[0]);
        if (!y || y->n_uses != 1 || y->is_output)
            continue;
        inode *m = &imp->nodes[y->first_use];
        int known = 0;
        for (int k = 0; ops[k] && !known; k++)
            known = is_op(m, ops[k]);
        if (!known || m->skip || m->p->n_input != 2 || m->p->n_output != 1 ||
            !m->p->output[0][0])
            continue;
        const char *other = strcmp(m->p->input[0], y->name) == 0 ? m->p->input[1]
                                                                  : m->p->input[0];
        ival *c = const_root(imp, V(imp, other));
        if (!c || c->kind != V_CONST || strcmp(other, y->name) == 0)
            continue;
        m->skip = 1;
        n->fold_out = nnpi_onnx_map_get(&imp->by_name, m->p->output[0]);
        n->fold_extra = nnpi_onnx_map_get(&imp->by_name, other);
    }
}

/* The shape of a tensor computed inside a group of our own nodes (not yet a
 * model value) by a layout op on a run-time value: a Transpose, or a
 * Reshape to a constant shape. 0 when it is neither. */
int nnpi_onnx_layout_shape(struct onnx_import *imp, const ival *x, nnp_shape *s)
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

nnp_status nnpi_onnx_find_kinds(struct onnx_import *imp, nnp_error *err)
{
    for (int k = 0; k < imp->nn; k++) {
        inode *n = &imp->nodes[imp->order[k]];
        if (is_op(n, "Constant") || is_op(n, "Identity") || is_op(n, "Cast"))
            continue;
        n->kind = nnp_registry_find_onnx(imp->reg, n->p->domain, n->p->op_type, n->opset);
    }
    find_folds(imp);
    find_next_folds(imp);
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

/* ---- step 8: a group's nodes as one layer ------------------------------------ */

/* The layer name of an nnplug.layers entry, for messages. */
static const char *entry_name(const json_t *entry)
{
    return json_string_value(json_object_get(json_object_get(entry, "config"), "name"));
}

/* Marks the members (counts them in a->n_members, sets done) and picks the
 * node whose reader the layer sees: of the layer's own kind, else of the
 * kind it wraps (config "layer"), else the first with a kind, else n. */
static inode *group_main(struct onnx_import *imp, inode *n, const int *mem, int n_mem, app *a)
{
    const char *inner = json_string_value(json_object_get(
        json_object_get(json_object_get(a->entry, "config"), "layer"), "class_name"));
    inode *best = NULL, *wrapped = NULL, *any = NULL;
    for (int i = 0; i < n_mem; i++) {
        inode *m = &imp->nodes[mem[i]];
        if (is_host_op(m))
            continue;
        a->n_members++;
        m->done = 1;
        if (m->kind == a->kind && !best)
            best = m;
        if (m->kind && inner && strcmp(m->kind->name, inner) == 0 && !wrapped)
            wrapped = m;
        if (m->kind && !any)
            any = m;
    }
    return best ? best : wrapped ? wrapped : any ? any : n;
}

/* Counts in imp->inside the reads of each tensor by the members, or resets
 * those counts (reset). */
static void count_inside(struct onnx_import *imp, const int *mem, int n_mem, int reset)
{
    for (int i = 0; i < n_mem; i++)
        for (size_t k = 0; k < imp->nodes[mem[i]].p->n_input; k++) {
            int x = nnpi_onnx_map_get(&imp->by_name, imp->nodes[mem[i]].p->input[k]);
            if (x >= 0) {
                if (reset)
                    imp->inside[x] = 0;
                else
                    imp->inside[x]++;
            }
        }
}

/* Member m's part of the layer's inputs (computed tensors read from outside
 * the group) and output (the one tensor read outside, running statistics
 * of the main node aside). */
static nnp_status member_io(struct onnx_import *imp, int comp, const inode *m, app *a,
                            nnp_error *err)
{
    const char *L = imp->label;
    /* a tensor two members read is one input of the layer; one node
     * reading it twice (Add(X, X)) takes it twice */
    const int before = a->n_in;
    for (size_t k = 0; k < m->p->n_input; k++) {
        ival *x = V(imp, m->p->input[k]);
        if (!x || (x->producer >= 0 && imp->nodes[x->producer].comp == comp) ||
            x->kind == V_CONST)
            continue;
        if (x->kind != V_RUNTIME)
            return FAIL(NNP_ERR_UNSUPPORTED, "%s: layer '%s' (%s, from metadata): input "
                        "'%s' is not computed before the layer", L, entry_name(a->entry),
                        a->kind->name, x->name);
        int seen = 0;
        for (int j = 0; j < before; j++)
            seen |= a->ins[j] == x->value;
        if (!seen && a->n_in < MAX_NODE_IO)
            a->ins[a->n_in++] = x->value;
    }
    for (size_t k = 0; k < m->p->n_output; k++) {
        ival *o = V(imp, m->p->output[k]);
        if (!o || (m == a->main && k > 0))
            continue;
        if (o->is_output || o->n_uses > imp->inside[o - imp->v]) {
            if (a->out)
                return FAIL(NNP_ERR_UNSUPPORTED, "%s: the nodes of layer '%s' (%s, from "
                            "metadata) have two outputs read elsewhere ('%s', '%s')", L,
                            entry_name(a->entry), a->kind->name, a->out->name, o->name);
            a->out = o;
        }
    }
    return NNP_OK;
}

/* The nodes one layer of ours wrote (nnplug.layers "nodes", one connected
 * application of it), read back as that layer with its exact config. This
 * is how layers whose ONNX form uses ops without a kind of their own
 * (TimeDistributed's Reshape pair) come back. */
nnp_status nnpi_onnx_do_group(struct onnx_import *imp, inode *n, nnp_error *err)
{
    const json_t *entry = json_array_get(imp->meta_layers, (size_t)n->group);
    const nnp_kind *kind =
        nnp_registry_find(imp->reg, json_string_value(json_object_get(entry, "class_name")));
    app a;
    memset(&a, 0, sizeof a);
    a.kind = kind;
    a.entry = entry;
    const int *mem = imp->members + imp->comp_start[n->comp];
    const int n_mem = imp->comp_start[n->comp + 1] - imp->comp_start[n->comp];
    a.main = group_main(imp, n, mem, n_mem, &a);
    a.r = (nnp_onnx_reader){&nnpi_onnx_reader_ops, imp, a.main->p, a.main->name,
                             a.main->opset, NULL, NULL, 0, NULL};
    if (a.main->fold_extra >= 0)
        a.r.extra_in = imp->v[a.main->fold_extra].name;
    char nd[600];
    node_desc(a.main, nd, sizeof nd);
    count_inside(imp, mem, n_mem, 0);
    nnp_status st = NNP_OK;
    for (int i = 0; i < n_mem && !st; i++) {
        inode *m = &imp->nodes[mem[i]];
        if (!is_host_op(m))
            st = member_io(imp, n->comp, m, &a, err);
    }
    count_inside(imp, mem, n_mem, 1);
    if (st)
        return st;
    if (!a.out && a.main->p->n_output > 0)
        a.out = V(imp, a.main->p->output[0]);   /* a layer nothing reads */
    if (!a.out)
        return FAIL(NNP_ERR_UNSUPPORTED, "%s: %s: the nodes of its layer (from metadata) have "
                    "no output", imp->label, nd);
    return nnpi_onnx_instantiate(imp, &a, err);
}
