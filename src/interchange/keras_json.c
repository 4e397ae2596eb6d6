/* Keras-style JSON models into the graph, and back. */
#include "core/config_internal.h"
#include "nnplug/io.h"
#include "nnplug/keras.h"
#include "nnplug/layer.h"
#include "nnplug/status.h"

#include <stdlib.h>
#include <string.h>

/* Shape from a Keras batch shape list ([null, 8] -> [-1, 8]). */
static nnp_status shape_from_json(const json_t *j, nnp_shape *s, const char *origin,
                                  const char *layer, nnp_error *err)
{
    memset(s, 0, sizeof *s);
    if (!json_is_array(j) || json_array_size(j) > NNP_MAX_RANK)
        return nnp_error_set(err, NNP_ERR_INVALID, "%s: layer '%s': batch shape must be a list "
                             "of at most %d dims", origin, layer, NNP_MAX_RANK);
    s->rank = (int32_t)json_array_size(j);
    for (int i = 0; i < s->rank; i++) {
        const json_t *d = json_array_get(j, (size_t)i);
        if (json_is_null(d))
            s->dims[i] = -1;
        else if (json_is_integer(d) && json_integer_value(d) >= 0)
            s->dims[i] = json_integer_value(d);
        else
            return nnp_error_set(err, NNP_ERR_INVALID, "%s: layer '%s': bad dimension %d in batch "
                                 "shape", origin, layer, i);
    }
    return NNP_OK;
}

/* Batch shape of an InputLayer config, or of a first layer's config. */
static const json_t *batch_shape_of(const json_t *cfg, bool *has_batch)
{
    const char *keys[] = {"batch_input_shape", "batchInputShape", "batch_shape", "batchShape"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const json_t *j = json_object_get(cfg, keys[i]);
        if (j && !json_is_null(j)) {
            *has_batch = true;
            return j;
        }
    }
    const char *nob[] = {"input_shape", "inputShape"};
    for (size_t i = 0; i < 2; i++) {
        const json_t *j = json_object_get(cfg, nob[i]);
        if (j && !json_is_null(j)) {
            *has_batch = false;
            return j;
        }
    }
    return NULL;
}

static nnp_status make_input(nnp_model *m, const json_t *shape_j, bool has_batch,
                             const char *name, const char *origin, int *value, nnp_error *err)
{
    nnp_shape s;
    nnp_status st = shape_from_json(shape_j, &s, origin, name, err);
    if (st)
        return st;
    if (!has_batch) {
        if (s.rank >= NNP_MAX_RANK)
            return nnp_error_set(err, NNP_ERR_INVALID, "%s: input '%s' has too many dims", origin,
                                 name);
        memmove(&s.dims[1], &s.dims[0], sizeof(int64_t) * (size_t)s.rank);
        s.dims[0] = -1;
        s.rank++;
    }
    return nnp_model_add_input(m, name, &s, value, err);
}

static nnp_status add_layer(nnp_model *m, const json_t *lj, const char *origin, int *li,
                            nnp_error *err)
{
    const char *cls = json_string_value(json_object_get(lj, "class_name"));
    if (!cls)
        cls = json_string_value(json_object_get(lj, "className"));
    const json_t *cfg = json_object_get(lj, "config");
    if (!cls || !json_is_object(cfg))
        return nnp_error_set(err, NNP_ERR_INVALID, "%s: a layer lacks class_name or config", origin);
    const nnp_kind *k = nnp_registry_find(nnp_model_registry(m), cls);
    const char *lname = json_string_value(json_object_get(cfg, "name"));
    if (!k) {
        char *names = nnp_registry_kind_names(nnp_model_registry(m));
        nnp_status st = nnp_error_set(err, NNP_ERR_NOT_FOUND,
                                      "%s: layer '%s': unknown class_name '%s' (loaded kinds: %s)",
                                      origin, lname ? lname : "?", cls,
                                      names && names[0] ? names : "none");
        free(names);
        return st;
    }
    nnp_config *c;
    nnp_status st = nnp_config_from_jsonv(k, cfg, &c, err);
    if (st)
        return nnp_error_prefix(err, "%s: layer '%s'", origin, lname ? lname : cls);
    nnp_layer *l;
    st = nnp_layer_new_from_config(nnp_model_registry(m), c, &l, err);
    if (st)
        return nnp_error_prefix(err, "%s", origin);
    return nnp_model_add_layer(m, l, li, err);
}

static bool is_input_layer(const json_t *lj)
{
    const char *cls = json_string_value(json_object_get(lj, "class_name"));
    return cls && strcmp(cls, "InputLayer") == 0;
}

static nnp_status load_sequential(nnp_model *m, const json_t *config, const char *origin,
                                  nnp_error *err)
{
    const json_t *layers = json_is_array(config) ? config : json_object_get(config, "layers");
    if (!json_is_array(layers) || json_array_size(layers) == 0)
        return nnp_error_set(err, NNP_ERR_INVALID, "%s: Sequential model has no layers", origin);
    int cur = -1;
    size_t i0 = 0;
    const json_t *first = json_array_get(layers, 0);
    bool has_batch = true;
    if (is_input_layer(first)) {
        const json_t *cfg = json_object_get(first, "config");
        const json_t *bs = batch_shape_of(cfg, &has_batch);
        const char *name = json_string_value(json_object_get(cfg, "name"));
        if (!bs)
            return nnp_error_set(err, NNP_ERR_INVALID, "%s: InputLayer has no batch shape", origin);
        nnp_status st = make_input(m, bs, has_batch, name ? name : "input", origin, &cur, err);
        if (st)
            return st;
        i0 = 1;
    } else {
        const json_t *cfg = json_object_get(first, "config");
        const json_t *bs = batch_shape_of(cfg, &has_batch);
        if (!bs)
            return nnp_error_set(err, NNP_ERR_INVALID, "%s: the first layer of a Sequential model "
                                 "needs batch_input_shape (or an InputLayer)", origin);
        const char *lname = json_string_value(json_object_get(cfg, "name"));
        char name[300];
        snprintf(name, sizeof name, "%s_input", lname ? lname : "model");
        nnp_status st = make_input(m, bs, has_batch, name, origin, &cur, err);
        if (st)
            return st;
    }
    for (size_t i = i0; i < json_array_size(layers); i++) {
        int li;
        nnp_status st = add_layer(m, json_array_get(layers, i), origin, &li, err);
        if (st == NNP_OK)
            st = nnp_model_apply(m, li, &cur, 1, NULL, &cur, err);
        if (st)
            return st;
    }
    return nnp_model_set_outputs(m, &cur, 1, err);
}

/* [layer_name, node_index, tensor_index] in Keras 2 or a Keras 3 keras_history. */
static nnp_status history_ref(const json_t *j, const char **layer, int *node_idx,
                              const char *origin, nnp_error *err)
{
    if (json_is_object(j)) {
        const json_t *h = json_object_get(json_object_get(j, "config"), "keras_history");
        if (h)
            j = h;
    }
    if (!json_is_array(j) || json_array_size(j) < 2 ||
        !json_is_string(json_array_get(j, 0)) || !json_is_integer(json_array_get(j, 1)))
        return nnp_error_set(err, NNP_ERR_INVALID, "%s: malformed inbound node reference", origin);
    *layer = json_string_value(json_array_get(j, 0));
    *node_idx = (int)json_integer_value(json_array_get(j, 1));
    return NNP_OK;
}

typedef struct applied {
    const char *layer;
    int node_idx;
    int value;
} applied;

static int lookup_applied(const applied *a, int n, const char *layer, int node_idx)
{
    for (int i = 0; i < n; i++)
        if (strcmp(a[i].layer, layer) == 0 && a[i].node_idx == node_idx)
            return a[i].value;
    return -1;
}

static nnp_status load_functional(nnp_model *m, const json_t *config, const char *origin,
                                  nnp_error *err)
{
    const json_t *layers = json_object_get(config, "layers");
    if (!json_is_array(layers))
        return nnp_error_set(err, NNP_ERR_INVALID, "%s: model config has no layers list", origin);
    size_t nl = json_array_size(layers);
    applied *ap = calloc(nl * 8 + 1, sizeof *ap);
    int nap = 0, cap = (int)(nl * 8 + 1);
    if (!ap)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    nnp_status st = NNP_OK;
    /* Keras lists layers in a topological order; one pass suffices. */
    for (size_t i = 0; i < nl && !st; i++) {
        const json_t *lj = json_array_get(layers, i);
        const json_t *cfg = json_object_get(lj, "config");
        const char *lname = json_string_value(json_object_get(lj, "name"));
        if (!lname)
            lname = json_string_value(json_object_get(cfg, "name"));
        if (!lname) {
            st = nnp_error_set(err, NNP_ERR_INVALID, "%s: layer %zu has no name", origin, i);
            break;
        }
        if (is_input_layer(lj)) {
            bool has_batch = true;
            const json_t *bs = batch_shape_of(cfg, &has_batch);
            int v;
            st = bs ? make_input(m, bs, has_batch, lname, origin, &v, err)
                    : nnp_error_set(err, NNP_ERR_INVALID, "%s: InputLayer '%s' has no batch shape",
                                    origin, lname);
            if (st == NNP_OK)
                ap[nap++] = (applied){lname, 0, v};
            continue;
        }
        int li;
        st = add_layer(m, lj, origin, &li, err);
        const json_t *inbound = json_object_get(lj, "inbound_nodes");
        if (st == NNP_OK && (!json_is_array(inbound) || json_array_size(inbound) == 0))
            st = nnp_error_set(err, NNP_ERR_INVALID, "%s: layer '%s' has no inbound_nodes", origin,
                               lname);
        for (size_t n = 0; st == NNP_OK && n < json_array_size(inbound); n++) {
            const json_t *node = json_array_get(inbound, n);
            const json_t *args = json_is_object(node) ? json_object_get(node, "args") : node;
            /* Keras 3 passes several inputs as one list argument. */
            if (json_is_object(node) && json_array_size(args) == 1 &&
                json_is_array(json_array_get(args, 0)))
                args = json_array_get(args, 0);
            int ins[64], nin = 0;
            for (size_t a = 0; st == NNP_OK && a < json_array_size(args) && nin < 64; a++) {
                const char *src;
                int sidx;
                st = history_ref(json_array_get(args, a), &src, &sidx, origin, err);
                if (st == NNP_OK) {
                    ins[nin] = lookup_applied(ap, nap, src, sidx);
                    if (ins[nin] < 0)
                        st = nnp_error_set(err, NNP_ERR_INVALID, "%s: layer '%s' reads '%s' node "
                                           "%d, which is not defined before it", origin, lname,
                                           src, sidx);
                    nin++;
                }
            }
            int out;
            if (st == NNP_OK)
                st = nnp_model_apply(m, li, ins, nin, NULL, &out, err);
            if (st == NNP_OK && nap < cap)
                ap[nap++] = (applied){lname, (int)n, out};
        }
    }
    const json_t *outs = json_object_get(config, "output_layers");
    if (st == NNP_OK && !json_is_array(outs))
        st = nnp_error_set(err, NNP_ERR_INVALID, "%s: model config has no output_layers", origin);
    /* A single output may be written as one reference instead of a list of them. */
    if (st == NNP_OK && json_array_size(outs) > 0 && json_is_string(json_array_get(outs, 0))) {
        const char *src;
        int sidx;
        st = history_ref(outs, &src, &sidx, origin, err);
        int v = st ? -1 : lookup_applied(ap, nap, src, sidx);
        if (st == NNP_OK)
            st = v < 0 ? nnp_error_set(err, NNP_ERR_INVALID, "%s: unknown output layer '%s'",
                                       origin, src)
                       : nnp_model_set_outputs(m, &v, 1, err);
    } else if (st == NNP_OK) {
        int vals[64], nv = 0;
        for (size_t i = 0; st == NNP_OK && i < json_array_size(outs) && nv < 64; i++) {
            const char *src;
            int sidx;
            st = history_ref(json_array_get(outs, i), &src, &sidx, origin, err);
            if (st == NNP_OK) {
                vals[nv] = lookup_applied(ap, nap, src, sidx);
                if (vals[nv] < 0)
                    st = nnp_error_set(err, NNP_ERR_INVALID, "%s: unknown output layer '%s'",
                                       origin, src);
                nv++;
            }
        }
        if (st == NNP_OK)
            st = nnp_model_set_outputs(m, vals, nv, err);
    }
    free(ap);
    return st;
}

nnp_status nnp_keras_load_string(const nnp_registry *reg, const char *json, const char *origin,
                                 nnp_model **out, nnp_error *err)
{
    *out = NULL;
    json_error_t je;
    json_t *root = json_loads(json, 0, &je);
    if (!root)
        return nnp_error_set(err, NNP_ERR_FORMAT, "%s: invalid JSON at line %d column %d: %s",
                             origin, je.line, je.column, je.text);
    const json_t *top = root;
    if (json_object_get(root, "modelTopology"))   /* tfjs model.json artifact */
        top = json_object_get(root, "modelTopology");
    if (json_object_get(top, "model_config"))
        top = json_object_get(top, "model_config");
    const char *cls = json_string_value(json_object_get(top, "class_name"));
    const json_t *config = json_object_get(top, "config");
    nnp_model *m = NULL;
    nnp_status st = nnp_model_new(reg, &m, err);
    if (st == NNP_OK) {
        if (!cls || !config)
            st = nnp_error_set(err, NNP_ERR_FORMAT, "%s: not a Keras model (no class_name/config)",
                               origin);
        else if (strcmp(cls, "Sequential") == 0)
            st = load_sequential(m, config, origin, err);
        else if (strcmp(cls, "Functional") == 0 || strcmp(cls, "Model") == 0)
            st = load_functional(m, config, origin, err);
        else
            st = nnp_error_set(err, NNP_ERR_UNSUPPORTED, "%s: model class '%s' is not Sequential or "
                               "Functional", origin, cls);
    }
    json_decref(root);
    if (st) {
        nnp_model_free(m);
        return st;
    }
    *out = m;
    return NNP_OK;
}

nnp_status nnp_keras_load(const nnp_registry *reg, const char *path, nnp_model **out,
                          nnp_error *err)
{
    char *text;
    size_t len;
    *out = NULL;
    nnp_status st = nnp_read_file(path, &text, &len, err);
    if (st)
        return st;
    st = nnp_keras_load_string(reg, text, path, out, err);
    free(text);
    return st;
}

static json_t *shape_json(const nnp_shape *s)
{
    json_t *a = json_array();
    for (int i = 0; i < s->rank; i++)
        json_array_append_new(a, s->dims[i] < 0 ? json_null() : json_integer(s->dims[i]));
    return a;
}

static json_t *layer_json(const nnp_layer *l)
{
    json_t *o = json_object();
    json_object_set_new(o, "class_name", json_string(nnp_layer_kind_of(l)->name));
    json_object_set_new(o, "config", nnp_config_to_jsonv(nnp_layer_config(l)));
    return o;
}

/* A chain: one input, one output, each node reads the previous node's value
 * and each layer is applied once. */
static bool is_chain(const nnp_model *m)
{
    if (nnp_model_n_inputs(m) != 1 || nnp_model_n_outputs(m) != 1)
        return false;
    int cur = nnp_model_input_value(m, 0);
    for (int i = 0; i < nnp_model_n_nodes(m); i++) {
        if (nnp_model_node_n_inputs(m, i) != 1 || nnp_model_node_input(m, i, 0) != cur)
            return false;
        for (int j = 0; j < i; j++)
            if (nnp_model_node_layer(m, j) == nnp_model_node_layer(m, i))
                return false;
        cur = nnp_model_node_output(m, i);
    }
    return cur == nnp_model_output_value(m, 0) && nnp_model_n_nodes(m) > 0;
}

/* (layer name, node index) of the node producing value v, or the input's name. */
static json_t *ref_json(const nnp_model *m, int v)
{
    for (int i = 0; i < nnp_model_n_nodes(m); i++) {
        if (nnp_model_node_output(m, i) != v)
            continue;
        int li = nnp_model_node_layer(m, i), k = 0;
        for (int j = 0; j < i; j++)
            k += nnp_model_node_layer(m, j) == li;
        return json_pack("[s, i, i, {}]", nnp_layer_name(nnp_model_layer(m, li)), k, 0);
    }
    return json_pack("[s, i, i, {}]", nnp_model_value_name(m, v), 0, 0);
}

char *nnp_keras_to_json(const nnp_model *m)
{
    json_t *layers = json_array();
    json_t *config = json_object();
    const char *cls;
    if (is_chain(m)) {
        cls = "Sequential";
        int in = nnp_model_input_value(m, 0);
        json_t *inl = json_object();
        json_t *icfg = json_object();
        json_object_set_new(icfg, "batch_input_shape", shape_json(nnp_model_value_shape(m, in)));
        json_object_set_new(icfg, "dtype", json_string("float32"));
        json_object_set_new(icfg, "name", json_string(nnp_model_value_name(m, in)));
        json_object_set_new(inl, "class_name", json_string("InputLayer"));
        json_object_set_new(inl, "config", icfg);
        json_array_append_new(layers, inl);
        for (int i = 0; i < nnp_model_n_nodes(m); i++)
            json_array_append_new(layers,
                                  layer_json(nnp_model_layer(m, nnp_model_node_layer(m, i))));
    } else {
        cls = "Functional";
        json_t *in_layers = json_array();
        for (int i = 0; i < nnp_model_n_inputs(m); i++) {
            int v = nnp_model_input_value(m, i);
            json_t *icfg = json_object();
            json_object_set_new(icfg, "batch_input_shape", shape_json(nnp_model_value_shape(m, v)));
            json_object_set_new(icfg, "dtype", json_string("float32"));
            json_object_set_new(icfg, "name", json_string(nnp_model_value_name(m, v)));
            json_array_append_new(layers, json_pack("{s:s, s:o, s:s, s:[]}", "class_name",
                                                    "InputLayer", "config", icfg, "name",
                                                    nnp_model_value_name(m, v), "inbound_nodes"));
            json_array_append_new(in_layers, json_pack("[s, i, i]", nnp_model_value_name(m, v), 0, 0));
        }
        for (int li = 0; li < nnp_model_n_layers(m); li++) {
            const nnp_layer *l = nnp_model_layer(m, li);
            json_t *lj = layer_json(l);
            json_t *inbound = json_array();
            for (int i = 0; i < nnp_model_n_nodes(m); i++) {
                if (nnp_model_node_layer(m, i) != li)
                    continue;
                json_t *args = json_array();
                for (int k = 0; k < nnp_model_node_n_inputs(m, i); k++)
                    json_array_append_new(args, ref_json(m, nnp_model_node_input(m, i, k)));
                json_array_append_new(inbound, args);
            }
            json_object_set_new(lj, "name", json_string(nnp_layer_name(l)));
            json_object_set_new(lj, "inbound_nodes", inbound);
            json_array_append_new(layers, lj);
        }
        json_t *out_layers = json_array();
        for (int i = 0; i < nnp_model_n_outputs(m); i++) {
            int v = nnp_model_output_value(m, i);
            if (nnp_model_weight_output_layer(m, v, NULL) >= 0)
                continue;
            json_t *r = ref_json(m, v);
            json_array_remove(r, 3);
            json_array_append_new(out_layers, r);
        }
        json_object_set_new(config, "input_layers", in_layers);
        json_object_set_new(config, "output_layers", out_layers);
    }
    json_object_set_new(config, "name", json_string("model"));
    json_object_set_new(config, "layers", layers);
    json_t *root = json_pack("{s:s, s:o, s:s, s:s}", "class_name", cls, "config", config,
                             "keras_version", "nnplug " "0.1.0", "backend", "nnplug");
    char *s = json_dumps(root, JSON_INDENT(1) | JSON_REAL_PRECISION(17));
    json_decref(root);
    return s;
}

nnp_status nnp_keras_save(const nnp_model *m, const char *path, nnp_error *err)
{
    char *s = nnp_keras_to_json(m);
    if (!s)
        return nnp_error_set(err, NNP_ERR_NOMEM, "%s: cannot serialize the model", path);
    nnp_status st = nnp_write_file_atomic(path, s, strlen(s), err);
    free(s);
    return st;
}
