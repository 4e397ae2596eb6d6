/* The weights of a model in Keras's file layouts: a .keras archive's
 * model.weights.h5 (layers/<class_snake>[_N]/vars/<i>) and a legacy HDF5
 * model's model_weights (layer groups with weight_names). Weights are read
 * into the layers in nnp_layer_weight order, which is Keras's, through the
 * HDF5 reader process (keras_h5_child.c); they are written in this one. */
#ifdef NNP_HAVE_KERAS_FILES
#include "interchange/keras_file_internal.h"
#include "nnplug/layer.h"
#include "nnplug/config.h"
#include "nnplug/status.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_MAX_LEN 1024

/* keras.src.utils.naming.to_snake_case: drop non-word characters, then
 * "(.)([A-Z][a-z]+)" -> "\1_\2", then "([a-z])([A-Z])" -> "\1_\2", then
 * lower case ("Conv2D" -> "conv2d", "ReLU" -> "re_lu"). */
static void class_snake(const char *cls, char *out, size_t size)
{
    char a[256], b[512];
    size_t n = 0, m = 0;
    for (const char *p = cls; *p && n + 1 < sizeof a; p++)
        if (isalnum((unsigned char)*p) || *p == '_')
            a[n++] = *p;
    a[n] = 0;
    for (size_t i = 0; i < n && m + 2 < sizeof b;) {
        if (i + 2 < n && isupper((unsigned char)a[i + 1]) && islower((unsigned char)a[i + 2])) {
            b[m++] = a[i++];
            b[m++] = '_';
            b[m++] = a[i++];
            while (i < n && islower((unsigned char)a[i]) && m + 1 < sizeof b)
                b[m++] = a[i++];
        } else {
            b[m++] = a[i++];
        }
    }
    b[m] = 0;
    size_t k = 0;
    for (size_t i = 0; i < m && k + 2 < size; i++) {
        bool split = islower((unsigned char)b[i]) && i + 1 < m && isupper((unsigned char)b[i + 1]);
        out[k++] = (char)tolower((unsigned char)b[i]);
        if (split) {
            out[k++] = '_';
            out[k++] = (char)tolower((unsigned char)b[++i]);
        }
    }
    out[k < size ? k : size - 1] = 0;
}

/* Keras numbers the layers of one class in order: conv2d, conv2d_1, ... */
typedef struct class_counts {
    char (*snake)[128];
    int *count;
    int n;
} class_counts;

static void group_path(class_counts *c, const nnp_layer *l, char *path, size_t size)
{
    char s[128];
    class_snake(nnp_layer_kind_of(l)->name, s, sizeof s);
    int i = 0;
    while (i < c->n && strcmp(c->snake[i], s) != 0)
        i++;
    if (i == c->n) {
        memcpy(c->snake[c->n], s, sizeof s);
        c->count[c->n++] = 0;
    } else {
        c->count[i]++;
    }
    if (c->count[i])
        snprintf(path, size, "layers/%s_%d", s, c->count[i]);
    else
        snprintf(path, size, "layers/%s", s);
}

static nnp_status counts_new(class_counts *c, int n_layers, nnp_error *err)
{
    c->n = 0;
    c->snake = calloc((size_t)n_layers + 1, sizeof *c->snake);
    c->count = calloc((size_t)n_layers + 1, sizeof *c->count);
    if (!c->snake || !c->count) {
        free(c->snake);
        free(c->count);
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    }
    return NNP_OK;
}

static void counts_free(class_counts *c)
{
    free(c->snake);
    free(c->count);
}

/* "kernel, bias" (or "none"). */
static const char *weight_list(const nnp_layer *l, char *buf, size_t size)
{
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; i < nnp_layer_n_weights(l) && at < size; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s%s", i ? ", " : "",
                               nnp_layer_weight(l, i)->name);
    return buf[0] ? buf : "none";
}

/* The nested-layer parameter of a wrapper kind (TimeDistributed's "layer"),
 * NULL for a plain kind; *n counts such parameters. */
static const char *wrapped_param(const nnp_kind *k, int *n)
{
    const char *name = NULL;
    *n = 0;
    for (int i = 0; i < k->n_params; i++)
        if (k->params[i].type == NNP_PARAM_LAYER) {
            name = k->params[i].name;
            (*n)++;
        }
    return name;
}

/* The config name of a wrapper's inner layer (malloc'ed), or NULL. */
static char *inner_name(const nnp_layer *l, const char *param)
{
    const char *text = nnp_config_layer_json(nnp_layer_config(l), param);
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    const char *n = json_string_value(json_object_get(json_object_get(j, "config"), "name"));
    char *copy = n ? strdup(n) : NULL;
    json_decref(j);
    return copy;
}

/* ---- .keras: layers/<class_snake>[_N]/vars/<i> ---------------------------- */

/* The vars group's name attribute (Keras 3.10+) against the layer's name. */
static nnp_status check_vars_name(nnpi_h5r *r, nnpi_h5obj g, const char *origin,
                                  const nnp_layer *l, const char *vpath, const char *expect,
                                  nnp_error *err)
{
    char *got = NULL;
    nnp_status st = nnpi_h5r_attr_string(r, g, "name", &got, err);
    if (st)
        return nnp_error_prefix(err, "%s: layer '%s': %s", origin, nnp_layer_name(l), vpath);
    if (got && expect && strcmp(got, expect) != 0)
        st = nnp_error_set(err, NNP_ERR_FORMAT, "%s: layer '%s': model.weights.h5's %s belongs to "
                           "layer '%s' (its name attribute), not '%s': config.json and the "
                           "weights do not match", origin, nnp_layer_name(l), vpath, got, expect);
    free(got);
    return st;
}

/* Weights first .. first+n-1 of l from group vpath (datasets 0 .. n-1). */
static nnp_status load_vars(nnpi_h5r *r, const char *origin, nnp_layer *l, const char *vpath,
                            const char *expect_name, int n, nnp_error *err)
{
    char names[512];
    const char *lname = nnp_layer_name(l);
    if (!nnpi_h5r_exists(r, NNPI_H5R_ROOT, vpath))
        return n == 0 ? NNP_OK
                      : nnp_error_set(err, NNP_ERR_NOT_FOUND, "%s: layer '%s': model.weights.h5 "
                                      "has no group %s (weights %s)", origin, lname, vpath,
                                      weight_list(l, names, sizeof names));
    nnpi_h5obj g;
    if (nnpi_h5r_open_group(r, NNPI_H5R_ROOT, vpath, &g) != NNP_OK)
        return nnpi_h5r_error(r, err, NNP_ERR_FORMAT, "%s: layer '%s': model.weights.h5's %s is "
                              "not a group", origin, lname, vpath);
    uint64_t nlinks = 0;
    nnp_status st = check_vars_name(r, g, origin, l, vpath, expect_name, err);
    if (st == NNP_OK && nnpi_h5r_nlinks(r, g, &nlinks) != NNP_OK)
        st = nnpi_h5r_error(r, err, NNP_ERR_FORMAT, "%s: layer '%s': cannot list %s", origin,
                            lname, vpath);
    else if (st == NNP_OK && nlinks != (uint64_t)n)
        st = nnp_error_set(err, NNP_ERR_FORMAT, "%s: layer '%s': %s holds %llu weights, the layer "
                           "has %d (%s)", origin, lname, vpath, (unsigned long long)nlinks, n,
                           n ? weight_list(l, names, sizeof names) : "none");
    for (int i = 0; st == NNP_OK && i < n; i++) {
        char ds[16];
        const nnp_weight *w = nnp_layer_weight(l, i);
        snprintf(ds, sizeof ds, "%d", i);
        st = nnpi_h5r_read_tensor(r, g, ds, w->value, err);
        if (st)
            nnp_error_prefix(err, "%s: layer '%s': weight '%s' (%s/%d)", origin, lname, w->name,
                             vpath, i);
    }
    nnpi_h5r_close(r, g);
    return st;
}

static nnp_status load_layer_vars(nnpi_h5r *r, const char *origin, nnp_layer *l,
                                  const char *gpath, nnp_error *err)
{
    char own[PATH_MAX_LEN], inner[PATH_MAX_LEN];
    int n = nnp_layer_n_weights(l), several;
    const char *param = wrapped_param(nnp_layer_kind_of(l), &several);
    snprintf(own, sizeof own, "%.300s/vars", gpath);
    if (!param)
        return load_vars(r, origin, l, own, nnp_layer_name(l), n, err);
    if (several > 1 && n > 0)
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "%s: layer '%s': weights of a %s (a layer "
                             "wrapping %d layers) are not supported", origin, nnp_layer_name(l),
                             nnp_layer_kind_of(l)->name, several);
    /* a wrapper holds no variable of its own; its layer's sit under <param>/ */
    nnp_status st = load_vars(r, origin, l, own, nnp_layer_name(l), 0, err);
    if (st)
        return st;
    snprintf(inner, sizeof inner, "%.300s/%.200s/vars", gpath, param);
    char *iname = inner_name(l, param);
    st = load_vars(r, origin, l, inner, iname, n, err);
    free(iname);
    return st;
}

nnp_status nnpi_keras_load_vars(nnp_model *m, nnpi_h5r *r, const char *origin, nnp_error *err)
{
    class_counts c;
    nnp_status st = counts_new(&c, nnp_model_n_layers(m), err);
    if (st)
        return st;
    for (int li = 0; st == NNP_OK && li < nnp_model_n_layers(m); li++) {
        char gpath[PATH_MAX_LEN];
        nnp_layer *l = nnp_model_layer(m, li);
        group_path(&c, l, gpath, sizeof gpath);
        st = load_layer_vars(r, origin, l, gpath, err);
    }
    counts_free(&c);
    return st;
}

static nnp_status save_vars(hid_t f, const char *vpath, const char *name, const nnp_layer *l,
                            int n, nnp_error *err)
{
    hid_t g = nnpi_h5_create_group(f, vpath);
    if (g < 0)
        return nnpi_h5_error(err, NNP_ERR_IO, "cannot create group %s", vpath);
    nnp_status st = name ? nnpi_h5_set_attr_string(g, "name", name, err) : NNP_OK;
    for (int i = 0; st == NNP_OK && i < n; i++) {
        char ds[16];
        snprintf(ds, sizeof ds, "%d", i);
        st = nnpi_h5_write_tensor(g, ds, nnp_layer_weight(l, i)->value, err);
    }
    H5Gclose(g);
    return st;
}

static nnp_status save_layer_vars(hid_t f, const nnp_layer *l, const char *gpath, nnp_error *err)
{
    char own[PATH_MAX_LEN], inner[PATH_MAX_LEN];
    int n = nnp_layer_n_weights(l), several;
    const char *param = wrapped_param(nnp_layer_kind_of(l), &several);
    snprintf(own, sizeof own, "%.300s/vars", gpath);
    if (!param)
        return save_vars(f, own, nnp_layer_name(l), l, n, err);
    if (several > 1 && n > 0)
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "layer '%s': weights of a %s (a layer "
                             "wrapping %d layers) are not supported", nnp_layer_name(l),
                             nnp_layer_kind_of(l)->name, several);
    nnp_status st = save_vars(f, own, nnp_layer_name(l), l, 0, err);
    if (st)
        return st;
    snprintf(inner, sizeof inner, "%.300s/%.200s/vars", gpath, param);
    char *iname = inner_name(l, param);
    st = save_vars(f, inner, iname, l, n, err);
    free(iname);
    return st;
}

nnp_status nnpi_keras_save_vars(const nnp_model *m, hid_t f, const char *origin,
                                nnp_error *err)
{
    class_counts c;
    nnp_status st = counts_new(&c, nnp_model_n_layers(m), err);
    if (st)
        return st;
    /* the model's own (empty) variables, as Keras writes them */
    hid_t root = nnpi_h5_create_group(f, "vars");
    if (root < 0)
        st = nnpi_h5_error(err, NNP_ERR_IO, "%s: cannot create group vars", origin);
    else
        H5Gclose(root);
    for (int li = 0; st == NNP_OK && li < nnp_model_n_layers(m); li++) {
        char gpath[PATH_MAX_LEN];
        const nnp_layer *l = nnp_model_layer(m, li);
        group_path(&c, l, gpath, sizeof gpath);
        if ((st = save_layer_vars(f, l, gpath, err)) != NNP_OK)
            nnp_error_prefix(err, "%s: layer '%s'", origin, nnp_layer_name(l));
    }
    counts_free(&c);
    return st;
}

/* ---- legacy .h5: model_weights/<layer> with weight_names ------------------ */

/* "bn1/gamma:0" -> "gamma"; "sequential_1/conv2d_4/kernel" -> "kernel". */
static void base_name(const char *path, char *out, size_t size)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strcspn(b, ":");
    if (n >= size)
        n = size - 1;
    memcpy(out, b, n);
    out[n] = 0;
}

/* Keras takes the order from weight_names; a name that is another weight's
 * of the layer means the file's order is not the layer's. */
static nnp_status check_order(const char *origin, const nnp_layer *l, const nnpi_strv *wn,
                              nnp_error *err)
{
    char names[512];
    for (int i = 0; i < wn->n; i++) {
        char b[256];
        base_name(wn->s[i], b, sizeof b);
        for (int j = 0; j < nnp_layer_n_weights(l); j++)
            if (j != i && strcmp(b, nnp_layer_weight(l, j)->name) == 0 &&
                strcmp(b, nnp_layer_weight(l, i)->name) != 0)
                return nnp_error_set(err, NNP_ERR_FORMAT, "%s: layer '%s': weight_names lists "
                                     "'%s' as weight %d, where the layer has '%s' (its order: "
                                     "%s)", origin, nnp_layer_name(l), wn->s[i], i,
                                     nnp_layer_weight(l, i)->name,
                                     weight_list(l, names, sizeof names));
    }
    return NNP_OK;
}

static nnp_status read_weight_names(nnpi_h5r *r, nnpi_h5obj g, const char *origin,
                                    const char *lname, nnpi_strv *wn, nnp_error *err)
{
    bool found;
    nnp_status st = nnpi_h5r_attr_strings(r, g, "weight_names", wn, &found, err);
    if (st)
        return nnp_error_prefix(err, "%s: layer '%s': model_weights/%s", origin, lname, lname);
    if (!found)
        return nnp_error_set(err, NNP_ERR_FORMAT, "%s: layer '%s': model_weights/%s has no "
                             "weight_names attribute", origin, lname, lname);
    return NNP_OK;
}

static nnp_status load_h5_layer(nnpi_h5r *r, nnpi_h5obj mw, const char *origin, nnp_layer *l,
                                nnp_error *err)
{
    char names[512];
    const char *lname = nnp_layer_name(l);
    int n = nnp_layer_n_weights(l);
    if (!nnpi_h5r_exists(r, mw, lname))
        return nnp_error_set(err, NNP_ERR_NOT_FOUND, "%s: layer '%s': group model_weights/%s is "
                             "missing (weights %s)", origin, lname, lname,
                             weight_list(l, names, sizeof names));
    nnpi_h5obj g;
    if (nnpi_h5r_open_group(r, mw, lname, &g) != NNP_OK)
        return nnpi_h5r_error(r, err, NNP_ERR_FORMAT, "%s: layer '%s': model_weights/%s is not a "
                              "group", origin, lname, lname);
    nnpi_strv wn = {0};
    nnp_status st = read_weight_names(r, g, origin, lname, &wn, err);
    if (st == NNP_OK && wn.n != n)
        st = nnp_error_set(err, NNP_ERR_FORMAT, "%s: layer '%s': model_weights/%s lists %d "
                           "weights (weight_names), the layer has %d (%s)", origin, lname, lname,
                           wn.n, n, weight_list(l, names, sizeof names));
    if (st == NNP_OK)
        st = check_order(origin, l, &wn, err);
    for (int i = 0; st == NNP_OK && i < n; i++) {
        const nnp_weight *w = nnp_layer_weight(l, i);
        st = nnpi_h5r_read_tensor(r, g, wn.s[i], w->value, err);
        if (st)
            nnp_error_prefix(err, "%s: layer '%s': weight '%s' (model_weights/%s/%s)", origin,
                             lname, w->name, lname, wn.s[i]);
    }
    nnpi_strv_free(&wn);
    nnpi_h5r_close(r, g);
    return st;
}

/* A layer the file lists that the model has no weights for must hold none. */
static nnp_status check_unused(const nnp_model *m, nnpi_h5r *r, nnpi_h5obj mw,
                               const char *origin, const char *name, nnp_error *err)
{
    int li = nnp_model_find_layer(m, name);
    if ((li >= 0 && nnp_layer_n_weights(nnp_model_layer(m, li)) > 0) ||
        !nnpi_h5r_exists(r, mw, name))
        return NNP_OK;
    nnpi_h5obj g;
    if (nnpi_h5r_open_group(r, mw, name, &g) != NNP_OK)
        return NNP_OK;
    nnpi_strv wn = {0};
    bool found;
    nnp_status st = nnpi_h5r_attr_strings(r, g, "weight_names", &wn, &found, err);
    if (st)
        nnp_error_prefix(err, "%s: layer '%s': model_weights/%s", origin, name, name);
    else if (wn.n > 0 && li >= 0)
        st = nnp_error_set(err, NNP_ERR_FORMAT, "%s: layer '%s': model_weights/%s lists %d "
                           "weights (first '%s'), the layer has none", origin, name, name, wn.n,
                           wn.s[0]);
    else if (wn.n > 0)
        st = nnp_error_set(err, NNP_ERR_FORMAT, "%s: model_weights holds %d weights (first '%s') "
                           "for layer '%s', which model_config does not have", origin, wn.n,
                           wn.s[0], name);
    nnpi_strv_free(&wn);
    nnpi_h5r_close(r, g);
    return st;
}

static bool listed(const nnpi_strv *v, const char *name)
{
    for (int i = 0; i < v->n; i++)
        if (strcmp(v->s[i], name) == 0)
            return true;
    return false;
}

static nnp_status load_h5_layers(nnp_model *m, nnpi_h5r *r, nnpi_h5obj mw, const char *origin,
                                 const nnpi_strv *ln, nnp_error *err)
{
    nnp_status st = NNP_OK;
    char names[512];
    for (int li = 0; st == NNP_OK && li < nnp_model_n_layers(m); li++) {
        nnp_layer *l = nnp_model_layer(m, li);
        if (nnp_layer_n_weights(l) == 0)
            continue;
        if (!listed(ln, nnp_layer_name(l)))
            st = nnp_error_set(err, NNP_ERR_NOT_FOUND, "%s: layer '%s' is not in model_weights's "
                               "layer_names: the file holds none of its weights (%s)", origin,
                               nnp_layer_name(l), weight_list(l, names, sizeof names));
        else
            st = load_h5_layer(r, mw, origin, l, err);
    }
    for (int i = 0; st == NNP_OK && i < ln->n; i++)
        st = check_unused(m, r, mw, origin, ln->s[i], err);
    return st;
}

nnp_status nnpi_keras_load_h5_weights(nnp_model *m, nnpi_h5r *r, const char *origin,
                                      nnp_error *err)
{
    int total = 0;
    for (int li = 0; li < nnp_model_n_layers(m); li++)
        total += nnp_layer_n_weights(nnp_model_layer(m, li));
    bool has = nnpi_h5r_exists(r, NNPI_H5R_ROOT, "model_weights");
    if (!has && total == 0)
        return NNP_OK;
    if (!has)
        return nnp_error_set(err, NNP_ERR_NOT_FOUND, "%s: no group model_weights: the file holds "
                             "no weights for the model's %d", origin, total);
    nnpi_h5obj mw;
    if (nnpi_h5r_open_group(r, NNPI_H5R_ROOT, "model_weights", &mw) != NNP_OK)
        return nnpi_h5r_error(r, err, NNP_ERR_FORMAT, "%s: model_weights is not a group",
                              origin);
    nnpi_strv ln = {0};
    bool found;
    nnp_status st = nnpi_h5r_attr_strings(r, mw, "layer_names", &ln, &found, err);
    if (st)
        nnp_error_prefix(err, "%s: model_weights", origin);
    else if (!found)
        st = nnp_error_set(err, NNP_ERR_FORMAT, "%s: model_weights has no layer_names attribute",
                           origin);
    else
        st = load_h5_layers(m, r, mw, origin, &ln, err);
    nnpi_strv_free(&ln);
    nnpi_h5r_close(r, mw);
    return st;
}
#else
typedef int nnpi_keras_weights_unused; /* ISO C wants a declaration in every file */
#endif
