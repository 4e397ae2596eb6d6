/* Keras-style JSON models into the graph, and back. */
#include "services/config_internal.h"
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
        else {
            char *text = json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY);
            nnp_status st = nnp_error_set(err, NNP_ERR_INVALID, "%s: layer '%s': batch shape "
                                          "entry %d is %.40s; each must be a size >= 0 or null",
                                          origin, layer, i, text ? text : "?");
            free(text);
            return st;
        }
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

/* Prefixes the file and the layer, unless the message already starts with
 * that layer (the host's own errors name it). */
static nnp_status layer_error(nnp_error *err, const char *origin, const char *layer)
{
    char own[300];
    snprintf(own, sizeof own, "layer '%s'", layer);
    if (strncmp(err->msg, own, strlen(own)) == 0)
        return nnp_error_prefix(err, "%s", origin);
    return nnp_error_prefix(err, "%s: %s", origin, own);
}

static const char *class_of(const json_t *lj)
{
    const char *cls = json_string_value(json_object_get(lj, "class_name"));
    return cls ? cls : json_string_value(json_object_get(lj, "className"));
}

/* The layer's name: in its config, or beside it (Functional models). */
static const char *layer_name_of(const json_t *lj)
{
    const char *n = json_string_value(json_object_get(json_object_get(lj, "config"), "name"));
    return n ? n : json_string_value(json_object_get(lj, "name"));
}

/* The kind's defaults for the Keras that wrote the model (model meta
 * keras_version, NNP_EXT_KERAS_DEFAULTS) where the layer's config is silent. */
static nnp_status keras_version_defaults(const nnp_model *m, const nnp_kind *k,
                                         const json_t *cfg, nnp_config *c, nnp_error *err)
{
    const char *version = nnp_model_get_meta(m, NNP_KERAS_META_VERSION);
    const nnp_keras_default *d =
        version && k->extension ? k->extension(NNP_EXT_KERAS_DEFAULTS) : NULL;
    for (; d && d->keras_version_prefix; d++) {
        if (strncmp(version, d->keras_version_prefix, strlen(d->keras_version_prefix)) != 0 ||
            json_object_get(cfg, d->param))
            continue;
        nnp_status st = nnp_config_set_json(c, d->param, d->value_json, err);
        if (st)
            return st;
    }
    return NNP_OK;
}

static nnp_status add_layer(nnp_model *m, const json_t *lj, const char *origin, int *li,
                            nnp_error *err)
{
    const char *cls = class_of(lj);
    const json_t *cfg = json_object_get(lj, "config");
    const char *lname = layer_name_of(lj);
    if (!cls || !json_is_object(cfg))
        return nnp_error_set(err, NNP_ERR_INVALID, "%s: layer '%s' lacks class_name or config",
                             origin, lname ? lname : "?");
    const nnp_kind *k = nnp_registry_find(nnp_model_registry(m), cls);
    if (!k) {
        char *names = nnp_registry_kind_names(nnp_model_registry(m));
        nnp_status st = nnp_error_set(err, NNP_ERR_NOT_FOUND,
                                      "%s: layer '%s': unknown class_name '%s' (loaded kinds: %s)",
                                      origin, lname ? lname : "?", cls,
                                      names && names[0] ? names : "none");
        free(names);
        return st;
    }
    nnp_config *c = NULL;
    nnp_status st = nnpi_config_from_jsonv(k, cfg, &c, err);
    if (st == NNP_OK)
        st = keras_version_defaults(m, k, cfg, c, err);
    if (st) {
        nnp_config_free(c);
        return layer_error(err, origin, lname ? lname : cls);
    }
    /* A Functional layer named only beside its config keeps that name. */
    if (!json_object_get(cfg, "name") && lname && nnp_config_set_name(c, lname, err)) {
        nnp_config_free(c);
        return layer_error(err, origin, lname);
    }
    nnp_layer *l;
    st = nnp_layer_new_from_config(nnp_model_registry(m), c, &l, err);
    if (st)
        return layer_error(err, origin, lname ? lname : cls);
    st = nnp_model_add_layer(m, l, li, err);
    if (st)
        return nnp_error_prefix(err, "%s", origin);
    return NNP_OK;
}

static bool is_input_layer(const json_t *lj)
{
    const char *cls = class_of(lj);
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
        if (st)
            return st;
        if (nnp_model_apply(m, li, &cur, 1, NULL, &cur, err))
            return layer_error(err, origin, nnp_layer_name(nnp_model_layer(m, li)));
    }
    return nnp_model_set_outputs(m, &cur, 1, err);
}

/* [layer_name, node_index, tensor_index] in Keras 2 or a Keras 3 keras_history. */
static nnp_status history_ref(const json_t *j, const char **layer, int *node_idx,
                              nnp_error *err)
{
    const json_t *given = j;
    if (json_is_object(j)) {
        const json_t *h = json_object_get(json_object_get(j, "config"), "keras_history");
        if (h)
            j = h;
    }
    if (!json_is_array(j) || json_array_size(j) < 2 ||
        !json_is_string(json_array_get(j, 0)) || !json_is_integer(json_array_get(j, 1)))
    {
        char *text = json_dumps(given, JSON_COMPACT | JSON_ENCODE_ANY);
        nnp_status st = nnp_error_set(err, NNP_ERR_INVALID, "malformed inbound node reference "
                                      "%.120s (expected [layer_name, node_index, tensor_index])",
                                      text ? text : "?");
        free(text);
        return st;
    }
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

#define MAX_REFS 64

/* input_layers / output_layers: a list of [layer, node, tensor] references,
 * or (Keras 3, one tensor) a single one. */
static nnp_status io_refs(const json_t *j, const char *key, const char **layer, int *node_idx,
                          int *n, const char *origin, nnp_error *err)
{
    *n = 0;
    if (json_array_size(j) > 0 && json_is_string(json_array_get(j, 0))) {
        *n = 1;
        return history_ref(j, layer, node_idx, err) ? nnp_error_prefix(err, "%s: %s", origin, key)
                                                    : NNP_OK;
    }
    if (json_array_size(j) > MAX_REFS)
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "%s: more than %d %s", origin, MAX_REFS,
                             key);
    for (size_t i = 0; i < json_array_size(j); i++) {
        nnp_status st = history_ref(json_array_get(j, i), &layer[i], &node_idx[i], err);
        if (st)
            return nnp_error_prefix(err, "%s: %s", origin, key);
        (*n)++;
    }
    return NNP_OK;
}

/* The tensor references one inbound node reads: Keras 2 [[layer, node,
 * tensor, kwargs], ...], Keras 3 {"args": [tensor, ...] or [[tensor, ...]],
 * "kwargs": {...}}. */
static nnp_status node_refs(const json_t *node, const char *lname, const char **src, int *sidx,
                            int *n, const char *origin, nnp_error *err)
{
    const json_t *args = json_is_object(node) ? json_object_get(node, "args") : node;
    /* Keras 3 passes several inputs as one list argument. */
    if (json_is_object(node) && json_array_size(args) == 1 &&
        json_is_array(json_array_get(args, 0)))
        args = json_array_get(args, 0);
    *n = 0;
    if (!json_is_array(args) || json_array_size(args) == 0)
        return nnp_error_set(err, NNP_ERR_INVALID, "%s: layer '%s' has an inbound node without "
                             "inputs", origin, lname);
    if (json_array_size(args) > MAX_REFS)
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "%s: layer '%s' reads more than %d inputs",
                             origin, lname, MAX_REFS);
    for (size_t a = 0; a < json_array_size(args); a++) {
        nnp_status st = history_ref(json_array_get(args, a), &src[a], &sidx[a], err);
        if (st)
            return layer_error(err, origin, lname);
        (*n)++;
    }
    return NNP_OK;
}

/* A non-input layer of a Functional config and how many of its inbound nodes
 * have been applied. */
typedef struct fn_layer {
    const json_t *inbound;
    const char *name;
    int li;
    size_t done;
} fn_layer;

static const json_t *find_layer_json(const json_t *layers, const char *name)
{
    for (size_t i = 0; i < json_array_size(layers); i++) {
        const json_t *lj = json_array_get(layers, i);
        const char *n = json_string_value(json_object_get(lj, "name"));
        if (!n)
            n = layer_name_of(lj);
        if (n && strcmp(n, name) == 0)
            return lj;
    }
    return NULL;
}

/* Graph inputs in the order of input_layers (the order a caller feeds
 * them), or of the layer list when input_layers is absent. */
static nnp_status make_inputs(nnp_model *m, const json_t *config, applied *ap, int *nap,
                              const char *origin, nnp_error *err)
{
    const json_t *layers = json_object_get(config, "layers");
    const json_t *ins = json_object_get(config, "input_layers");
    const char *names[MAX_REFS];
    int idx[MAX_REFS], n = 0;
    if (ins) {
        nnp_status st = io_refs(ins, "input_layers", names, idx, &n, origin, err);
        if (st)
            return st;
    } else {
        for (size_t i = 0; i < json_array_size(layers) && n < MAX_REFS; i++)
            if (is_input_layer(json_array_get(layers, i))) {
                const json_t *lj = json_array_get(layers, i);
                const char *nm = json_string_value(json_object_get(lj, "name"));
                names[n] = nm ? nm : layer_name_of(lj);
                idx[n++] = 0;
            }
    }
    for (int i = 0; i < n; i++) {
        const json_t *lj = names[i] ? find_layer_json(layers, names[i]) : NULL;
        if (!lj || !is_input_layer(lj))
            return nnp_error_set(err, NNP_ERR_INVALID, "%s: input_layers names '%s', which is not "
                                 "an InputLayer of the model", origin, names[i] ? names[i] : "?");
        if (lookup_applied(ap, *nap, names[i], 0) >= 0)
            return nnp_error_set(err, NNP_ERR_INVALID, "%s: input '%s' is listed twice", origin,
                                 names[i]);
        bool has_batch = true;
        const json_t *bs = batch_shape_of(json_object_get(lj, "config"), &has_batch);
        int v;
        nnp_status st = bs ? make_input(m, bs, has_batch, names[i], origin, &v, err)
                           : nnp_error_set(err, NNP_ERR_INVALID, "%s: InputLayer '%s' has no "
                                           "batch shape", origin, names[i]);
        if (st)
            return st;
        ap[(*nap)++] = (applied){names[i], 0, v};
    }
    for (size_t i = 0; ins && i < json_array_size(layers); i++) {
        const json_t *lj = json_array_get(layers, i);
        const char *nm = json_string_value(json_object_get(lj, "name"));
        if (!nm)
            nm = layer_name_of(lj);
        if (is_input_layer(lj) && nm && lookup_applied(ap, *nap, nm, 0) < 0)
            return nnp_error_set(err, NNP_ERR_INVALID, "%s: InputLayer '%s' is not in "
                                 "input_layers", origin, nm);
    }
    return NNP_OK;
}

/* A Functional model's layers and nodes as it is loaded: the nodes applied
 * so far (ap) and the layers with how many of their nodes ran (fl). */
typedef struct fn_state {
    nnp_model *m;
    const char *origin;
    applied *ap;
    int nap;
    fn_layer *fl;
    int nfl;
} fn_state;

/* Every layer first, in the listed order (which the layer indices keep). */
static nnp_status add_fn_layers(fn_state *s, const json_t *layers, nnp_error *err)
{
    nnp_status st = NNP_OK;
    fn_layer *fl = s->fl;
    for (size_t i = 0; i < json_array_size(layers) && !st; i++) {
        const json_t *lj = json_array_get(layers, i);
        const char *lname = json_string_value(json_object_get(lj, "name"));
        if (!lname)
            lname = layer_name_of(lj);
        if (!lname) {
            st = nnp_error_set(err, NNP_ERR_INVALID, "%s: layer %zu has no name", s->origin, i);
            break;
        }
        if (is_input_layer(lj))
            continue;
        fl[s->nfl] = (fn_layer){json_object_get(lj, "inbound_nodes"), lname, -1, 0};
        st = add_layer(s->m, lj, s->origin, &fl[s->nfl].li, err);
        if (st == NNP_OK &&
            (!json_is_array(fl[s->nfl].inbound) || json_array_size(fl[s->nfl].inbound) == 0))
            st = nnp_error_set(err, NNP_ERR_INVALID, "%s: layer '%s' has no inbound_nodes",
                               s->origin, lname);
        s->nfl++;
    }
    return st;
}

/* Applies layer f's next nodes while what they read exists; *progress is
 * set when one ran. */
static nnp_status apply_ready_nodes(fn_state *s, fn_layer *f, bool *progress, nnp_error *err)
{
    nnp_status st = NNP_OK;
    while (st == NNP_OK && f->done < json_array_size(f->inbound)) {
        const char *src[MAX_REFS];
        int sidx[MAX_REFS], ins[MAX_REFS], nin, ready = 1;
        st = node_refs(json_array_get(f->inbound, f->done), f->name, src, sidx, &nin, s->origin,
                       err);
        for (int a = 0; st == NNP_OK && a < nin; a++)
            ready &= (ins[a] = lookup_applied(s->ap, s->nap, src[a], sidx[a])) >= 0;
        if (st || !ready)
            break;
        int out;
        st = nnp_model_apply(s->m, f->li, ins, nin, NULL, &out, err);
        if (st) {
            layer_error(err, s->origin, f->name);
            break;
        }
        s->ap[s->nap++] = (applied){f->name, (int)f->done, out};
        f->done++;
        *progress = true;
    }
    return st;
}

/* The error for a node left over: it reads something that never exists. */
static nnp_status check_leftovers(const fn_state *s, const json_t *layers, nnp_error *err)
{
    nnp_status st = NNP_OK;
    for (int f = 0; st == NNP_OK && f < s->nfl; f++) {
        const fn_layer *fl = &s->fl[f];
        if (fl->done == json_array_size(fl->inbound))
            continue;
        const char *src[MAX_REFS];
        int sidx[MAX_REFS], nin;
        st = node_refs(json_array_get(fl->inbound, fl->done), fl->name, src, sidx, &nin,
                       s->origin, err);
        for (int a = 0; st == NNP_OK && a < nin; a++) {
            if (lookup_applied(s->ap, s->nap, src[a], sidx[a]) >= 0)
                continue;
            if (!find_layer_json(layers, src[a]))
                st = nnp_error_set(err, NNP_ERR_INVALID, "%s: layer '%s' reads '%s', which is not "
                                   "a layer of the model", s->origin, fl->name, src[a]);
            else
                st = nnp_error_set(err, NNP_ERR_INVALID, "%s: layer '%s' reads node %d of '%s', "
                                   "which never exists (no such node, or layers that read each "
                                   "other)", s->origin, fl->name, sidx[a], src[a]);
        }
    }
    return st;
}

/* output_layers: the model's outputs, each a node that was applied. */
static nnp_status set_fn_outputs(const fn_state *s, const json_t *config, nnp_error *err)
{
    nnp_status st = NNP_OK;
    const char *origin = s->origin;
    const json_t *outs = json_object_get(config, "output_layers");
    if (!json_is_array(outs))
        st = nnp_error_set(err, NNP_ERR_INVALID, "%s: model config has no output_layers", origin);
    const char *src[MAX_REFS];
    int sidx[MAX_REFS], vals[MAX_REFS], nv = 0;
    if (st == NNP_OK)
        st = io_refs(outs, "output_layers", src, sidx, &nv, origin, err);
    if (st == NNP_OK && nv == 0)
        st = nnp_error_set(err, NNP_ERR_INVALID, "%s: output_layers is empty", origin);
    for (int i = 0; st == NNP_OK && i < nv; i++) {
        vals[i] = lookup_applied(s->ap, s->nap, src[i], sidx[i]);
        if (vals[i] < 0)
            st = nnp_error_set(err, NNP_ERR_INVALID, "%s: output_layers names '%s' node %d, which "
                               "the model does not have", origin, src[i], sidx[i]);
    }
    if (st == NNP_OK)
        st = nnp_model_set_outputs(s->m, vals, nv, err);
    return st;
}

static nnp_status load_functional(nnp_model *m, const json_t *config, const char *origin,
                                  nnp_error *err)
{
    const json_t *layers = json_object_get(config, "layers");
    if (!json_is_array(layers))
        return nnp_error_set(err, NNP_ERR_INVALID, "%s: model config has no layers list", origin);
    size_t nl = json_array_size(layers), n_nodes = 0;
    for (size_t i = 0; i < nl; i++)
        n_nodes += json_array_size(json_object_get(json_array_get(layers, i), "inbound_nodes"));
    fn_state s = {m, origin, calloc(nl + n_nodes + 1, sizeof *s.ap), 0,
                  calloc(nl + 1, sizeof *s.fl), 0};
    if (!s.ap || !s.fl) {
        free(s.ap);
        free(s.fl);
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    }
    nnp_status st = add_fn_layers(&s, layers, err);
    if (st == NNP_OK)
        st = make_inputs(m, config, s.ap, &s.nap, origin, err);
    /* Then the nodes, as soon as what they read exists. Keras lists layers by
     * first use, so a shared layer's later node may read a layer listed after
     * it: repeat until no node is left or none can run. A layer's nodes run
     * in their order, so node k of a layer is its k-th application. */
    for (bool progress = true; st == NNP_OK && progress;) {
        progress = false;
        for (int f = 0; st == NNP_OK && f < s.nfl; f++)
            st = apply_ready_nodes(&s, &s.fl[f], &progress, err);
    }
    if (st == NNP_OK)
        st = check_leftovers(&s, layers, err);
    if (st == NNP_OK)
        st = set_fn_outputs(&s, config, err);
    free(s.ap);
    free(s.fl);
    return st;
}

nnp_status nnp_keras_load_string(const nnp_registry *reg, const char *json, const char *origin,
                                 nnp_model **out, nnp_error *err)
{
    *out = NULL;
    json_error_t je;
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return nnp_error_set(err, NNP_ERR_FORMAT, "%s: invalid JSON at line %d column %d: %s",
                             origin, je.line, je.column, je.text);
    /* keras_version sits beside the model at any of these levels */
    const json_t *top = root;
    const char *version = json_string_value(json_object_get(top, "keras_version"));
    if (json_object_get(top, "modelTopology"))   /* tfjs model.json artifact */
        top = json_object_get(top, "modelTopology");
    if (json_string_value(json_object_get(top, "keras_version")))
        version = json_string_value(json_object_get(top, "keras_version"));
    if (json_object_get(top, "model_config"))
        top = json_object_get(top, "model_config");
    if (json_string_value(json_object_get(top, "keras_version")))
        version = json_string_value(json_object_get(top, "keras_version"));
    const char *cls = json_string_value(json_object_get(top, "class_name"));
    const json_t *config = json_object_get(top, "config");
    nnp_model *m = NULL;
    nnp_status st = nnp_model_new(reg, &m, err);
    if (st == NNP_OK && version)
        st = nnp_model_set_meta(m, NNP_KERAS_META_VERSION, version, err);
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

/* nnp_keras_load (a file of any Keras form) is in keras_file.c. */

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
    json_object_set_new(o, "config", nnpi_config_to_jsonv(nnp_layer_config(l)));
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
