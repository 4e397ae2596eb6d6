/* ONNX import: ModelProto -> nnp_model.
 *
 * Order of work, so that every check happens before anything relies on it
 * (in brackets the file that does it; onnx_import_internal.h holds the
 * import's state the files share):
 *   1. the bytes: nesting depth, then protobuf-c unpack [onnx_wire.c];
 *   2. the model: IR version, opset_import, graph present [onnx_wire.c];
 *   3. names: graph inputs, initializers, node outputs and graph outputs
 *      unique; every node input defined [onnx_graph.c];
 *   4. initializers read (dims against data length, rank, overflow)
 *      [onnx_graph.c];
 *   5. nodes sorted topologically (a cycle is an error naming its nodes)
 *      [onnx_graph.c];
 *   6. every node's serving kind found (or an error naming node and op);
 *      Transpose sandwiches folded into the kinds that absorb them
 *      [onnx_fold.c];
 *   7. graph inputs become model inputs, or constants when they are only
 *      read as parameters and the caller bound them [onnx_graph.c];
 *   8. nodes in order: Constant, Identity and Cast resolved by the importer
 *      [onnx_builtin.c], the nodes one layer of ours wrote read back as that
 *      layer [onnx_fold.c], every other node becomes a layer (from_onnx,
 *      create, apply, onnx_load_weights) [this file];
 *   9. graph outputs [onnx_graph.c]; metadata [this file].
 *
 * This file: the layers of step 8, the metadata and the entry points. */
#include "interchange/onnx_import_internal.h"
#include "plugin/host_internal.h"
#include "services/config_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
            st = nnpi_kind_onnx_node_ext(kind)->fold_transpose(
                nnp_host_services(), n->fold_perm, n->fold_rank, s, cfg, err);
    }
    if (st) {
        nnp_config_free(cfg);
        return st;
    }
    *out = cfg;
    return NNP_OK;
}

/* The kind's checks of the node against its inputs (its extension's
 * input_rules, then its check_node), before the layer allocates anything. */
static nnp_status check_node(struct onnx_import *imp, const app *a, nnp_error *err)
{
    nnp_status st = nnpi_onnx_check_rules(imp, &a->r, a->main->kind, err);
    if (st)
        return node_error(imp, a->main, err);
    const nnp_onnx_node_ext *ext = nnpi_kind_onnx_node_ext(a->main->kind);
    if (!ext || !ext->check_node)
        return NNP_OK;
    st = ext->check_node(nnp_host_services(), &a->r, err);
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

/* A new layer for the application, added to the model (*li): its config
 * (make_config), with a suffix when the name is generated or taken. */
static nnp_status add_new_layer(struct onnx_import *imp, app *a, int *li, nnp_error *err)
{
    inode *n = a->main;
    nnp_config *cfg;
    nnp_status st = make_config(imp, a, &cfg, err);
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
        st = nnp_model_add_layer(imp->m, layer, li, err);
    if (st)
        return node_error(imp, n, err);
    return NNP_OK;
}

/* Outputs beyond Y: weights after the forward (the kind's weight_outputs,
 * in training mode only), when anything reads them. */
static nnp_status add_weight_outputs(struct onnx_import *imp, const app *a, int li, int train,
                                     const char *nd, nnp_error *err)
{
    inode *n = a->main;
    const Onnx__NodeProto *p = n->p;
    for (size_t k = 1; k < p->n_output; k++) {
        ival *x = V(imp, p->output[k]);
        if (!x || (x->n_uses == 0 && !x->is_output))
            continue;   /* absent or unused */
        const char *wname = n->kind ? nnpi_onnx_weight_output(n->kind, (int)k) : NULL;
        if (!wname || !train)
            return FAIL(NNP_ERR_UNSUPPORTED, "%s: %s: output %zu ('%s') is not supported%s",
                        imp->label, nd, k, x->name, wname ? " outside training mode" : "");
        nnp_status st = nnp_model_add_weight_output(imp->m, li, wname, x->name, &x->value, err);
        if (st)
            return node_error(imp, n, err);
        x->kind = V_RUNTIME;
    }
    return NNP_OK;
}

/* The node's line in the import report (nnplug info). */
static nnp_status report_node(struct onnx_import *imp, const app *a, const nnp_layer *layer,
                              int train, nnp_error *err)
{
    const inode *n = a->main;
    const Onnx__NodeProto *p = n->p;
    json_t *rep = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s}", "node", n->name, "op_type",
                            p->op_type, "domain", n->is_default_domain ? "ai.onnx" : p->domain,
                            "opset", n->opset, "layer", nnp_layer_name(layer), "kind",
                            a->kind->name);
    if (rep && a->n_members > 1)
        json_object_set_new(rep, "folded",
                            json_string(a->entry ? "nodes written by one layer (metadata)"
                                        : a->main->fold_in >= 0 ? "Transpose pair"
                                                                : "the following node"));
    if (rep && a->n_members > 1)
        json_object_set_new(rep, "n_nodes", json_integer(a->n_members));
    if (rep && train)
        json_object_set_new(rep, "training_mode", json_true());
    if (!rep || json_array_append_new(imp->report, rep))
        return FAIL(NNP_ERR_NOMEM, "out of memory");
    return NNP_OK;
}

nnp_status nnpi_onnx_instantiate(struct onnx_import *imp, app *a, nnp_error *err)
{
    inode *n = a->main;
    const nnp_kind *kind = a->kind;
    char nd[600];
    node_desc(n, nd, sizeof nd);
    /* ONNX's own rules first: a file that breaks them is invalid whatever
     * nnplug supports */
    nnp_status st = check_node(imp, a, err);
    if (st)
        return st;
    if (a->n_in < kind->n_inputs_min || a->n_in > kind->n_inputs_max)
        return FAIL(NNP_ERR_UNSUPPORTED, "%s: %s: %s takes %d to %d computed inputs, the graph "
                    "gives %d (a layer on constants only is not folded)", imp->label, nd,
                    kind->name, kind->n_inputs_min, kind->n_inputs_max, a->n_in);
    /* a layer applied again (shared weights) comes back as the same layer */
    const char *lname = a->entry ? json_string_value(json_object_get(
                                       json_object_get(a->entry, "config"), "name"))
                                 : NULL;
    int li = lname ? nnp_model_find_layer(imp->m, lname) : -1;
    int fresh = !(li >= 0 && nnp_layer_kind_of(nnp_model_layer(imp->m, li)) == kind);
    if (fresh) {
        st = add_new_layer(imp, a, &li, err);
        if (st)
            return st;
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
    if (st == NNP_OK)
        st = add_weight_outputs(imp, a, li, train, nd, err);
    if (st == NNP_OK)
        st = report_node(imp, a, layer, train, err);
    return st;
}

/* A node served by its kind (a folded Transpose pair or following node
 * included). */
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
    a.r = (nnp_onnx_reader){&nnpi_onnx_reader_ops, imp, p, n->name, n->opset, NULL, NULL, 0,
                            NULL};
    a.n_members = n->fold_in >= 0 ? 3 : n->fold_extra >= 0 ? 2 : 1;
    if (n->fold_extra >= 0)
        a.r.extra_in = imp->v[n->fold_extra].name;
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
    return nnpi_onnx_instantiate(imp, &a, err);
}

static nnp_status do_nodes(struct onnx_import *imp, nnp_error *err)
{
    for (int k = 0; k < imp->nn; k++) {
        inode *n = &imp->nodes[imp->order[k]];
        nnp_status st;
        if (n->done)
            continue;
        if (is_op(n, "Constant"))
            st = nnpi_onnx_do_constant(imp, n, err);
        else if (is_op(n, "Identity"))
            st = nnpi_onnx_do_identity(imp, n, err);
        else if (is_op(n, "Cast"))
            st = nnpi_onnx_do_cast(imp, n, err);
        else if (n->group >= 0)
            st = nnpi_onnx_do_group(imp, n, err);
        else if (n->skip)
            continue;
        else if ((st = do_layer(imp, n, err)) != NNP_OK)
            node_desc(n, imp->batch_node, sizeof imp->batch_node);
        if (st)
            return st;
    }
    return NNP_OK;
}

/* ---- metadata --------------------------------------------------------------- */

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

static nnp_status import_run(struct onnx_import *imp, const void *data, size_t len, nnp_error *err)
{
    nnp_status st = nnpi_onnx_unpack(imp, data, len, err);
    if (st == NNP_OK)
        st = nnp_model_new(imp->reg, &imp->m, err);
    imp->dtypes = json_object();
    imp->report = json_array();
    imp->bound = json_array();
    if (st == NNP_OK && (!imp->dtypes || !imp->report || !imp->bound))
        st = FAIL(NNP_ERR_NOMEM, "out of memory");
    if (st == NNP_OK)
        st = nnpi_onnx_collect_names(imp, err);
    if (st == NNP_OK)
        st = nnpi_onnx_read_initializers(imp, err);
    if (st == NNP_OK)
        st = nnpi_onnx_topo_sort(imp, err);
    if (st == NNP_OK)
        st = read_metadata(imp, err);
    if (st == NNP_OK)
        st = nnpi_onnx_find_kinds(imp, err);
    if (st == NNP_OK)
        st = nnpi_onnx_add_inputs(imp, err);
    if (st == NNP_OK)
        st = do_nodes(imp, err);
    if (st == NNP_OK)
        st = nnpi_onnx_set_outputs(imp, err);
    if (st == NNP_OK)
        st = write_import_meta(imp, err);
    return st;
}

static void import_init(struct onnx_import *imp, const nnp_registry *reg, const char *label,
                        const char *base_dir, const nnp_onnx_load_options *opts)
{
    memset(imp, 0, sizeof *imp);
    imp->reg = reg;
    imp->label = label ? label : "ONNX model";
    imp->base_dir = base_dir;
    imp->opts = opts;
    imp->file_batch = -1;
}

/* The free-batch import failed at a layer node, with a batch size in the
 * file: a graph traced at that batch (a Reshape or Flatten across the batch
 * axis, as PyTorch's view(1, -1) or Keras converters' Flatten(axis=0)
 * write) runs at it. The import runs again with the batch fixed; when that
 * succeeds, its model says which node fixed the batch. Otherwise the first
 * error stands. */
static nnp_status import_fixed_batch(struct onnx_import *imp, const void *data, size_t len,
                                     nnp_error *err)
{
    struct onnx_import again;
    import_init(&again, imp->reg, imp->label, imp->base_dir, imp->opts);
    again.fixed_batch = 1;
    nnp_error e2 = {0};
    nnp_status st = import_run(&again, data, len, &e2);
    char note[900];
    snprintf(note, sizeof note, "the file fixes the batch at %lld: %s reshapes across it",
             (long long)imp->file_batch, imp->batch_node);
    if (st == NNP_OK)
        st = nnp_model_set_meta(again.m, NNP_MODEL_META_FIXED_BATCH, note, &e2);
    if (st != NNP_OK) {
        import_free(&again);
        return err->code;
    }
    nnp_model *m = imp->m;
    imp->m = again.m;
    again.m = m;
    import_free(&again);
    nnp_error_clear(err);
    return NNP_OK;
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
    import_init(&imp, reg, label, base_dir, opts);
    if (!data && len)
        return FAIL(NNP_ERR_INVALID, "%s: no data", imp.label);
    nnp_status st = import_run(&imp, data ? data : "", len, err);
    if ((st == NNP_ERR_UNSUPPORTED || st == NNP_ERR_SHAPE) && imp.batch_node[0] &&
        imp.file_batch >= 1)
        st = import_fixed_batch(&imp, data ? data : "", len, err);
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
