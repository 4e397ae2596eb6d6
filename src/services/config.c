/* Typed layer configs checked against a kind's parameter schema. */
#include "services/config_internal.h"
#include "nnplug/rng.h"
#include "nnplug/services.h"
#include "nnplug/status.h"
#include "services/services_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct cfg_value {
    int is_null;
    int64_t i;
    double f;
    int b;
    char *s;
    int64_t *ints;
    int n_ints;
    nnp_initializer *init;
    nnp_regularizer *reg;
    nnp_constraint *con;
    char *layer_json;
} cfg_value;

struct nnp_config {
    const nnp_kind *kind;
    cfg_value *v;
    char *name;
    bool name_set;              /* false: the kind's name, to be made unique */
    bool trainable;
    uint64_t seed;
    int bis_rank;               /* -1: no batch_input_shape */
    int64_t bis[NNP_MAX_RANK];
    const struct nnp_registry *reg;
};

void nnp_snake_case(const char *in, char *out, size_t outsize)
{
    size_t o = 0;
    if (outsize == 0)
        return;
    for (size_t i = 0; in[i] && o + 1 < outsize; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (isupper(ch)) {
            if (i > 0 && o + 2 < outsize)
                out[o++] = '_';
            out[o++] = (char)tolower(ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
}

static void value_clear(cfg_value *v)
{
    free(v->s);
    free(v->ints);
    nnp_initializer_free(v->init);
    nnp_regularizer_free(v->reg);
    nnp_constraint_free(v->con);
    free(v->layer_json);
    memset(v, 0, sizeof *v);
}

static int find_param(const nnp_kind *k, const char *key)
{
    for (int i = 0; i < k->n_params; i++)
        if (strcmp(k->params[i].name, key) == 0)
            return i;
    return -1;
}

static nnp_status check_range(const nnp_kind *k, const nnp_param_def *d, double x,
                              nnp_error *err)
{
    if ((d->flags & NNP_PARAM_HAS_MIN) &&
        ((d->flags & NNP_PARAM_MIN_EXCLUSIVE) ? !(x > d->min) : !(x >= d->min)))
        return nnp_error_set(err, NNP_ERR_INVALID, "%s parameter '%s' = %g must be %s %g",
                             k->name, d->name, x,
                             (d->flags & NNP_PARAM_MIN_EXCLUSIVE) ? ">" : ">=", d->min);
    if ((d->flags & NNP_PARAM_HAS_MAX) &&
        ((d->flags & NNP_PARAM_MAX_EXCLUSIVE) ? !(x < d->max) : !(x <= d->max)))
        return nnp_error_set(err, NNP_ERR_INVALID, "%s parameter '%s' = %g must be %s %g",
                             k->name, d->name, x,
                             (d->flags & NNP_PARAM_MAX_EXCLUSIVE) ? "<" : "<=", d->max);
    return NNP_OK;
}

static bool in_choices(const char *choices, const char *s)
{
    size_t n = strlen(s);
    for (const char *p = choices; p && *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, s, n) == 0)
            return true;
        p = bar ? bar + 1 : NULL;
    }
    return false;
}

static nnp_status parse_ints(const json_t *j, int64_t **out, int *n, bool allow_unknown,
                             const char *what, const char *key, nnp_error *err)
{
    /* an int alone is a list of one, under the same rule for its entry */
    const bool scalar = json_is_integer(j);
    if (!scalar && !json_is_array(j))
        return nnp_error_set(err, NNP_ERR_INVALID, "%s parameter '%s' must be a list of ints",
                             what, key);
    size_t len = scalar ? 1 : json_array_size(j);
    if (len > NNP_MAX_RANK * 4)
        return nnp_error_set(err, NNP_ERR_INVALID, "%s parameter '%s' has too many entries (%zu)",
                             what, key, len);
    int64_t *v = calloc(len ? len : 1, sizeof *v);
    if (!v)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < len; i++) {
        const json_t *e = scalar ? j : json_array_get(j, i);
        if (json_is_integer(e) && json_integer_value(e) >= (allow_unknown ? -1 : 0)) {
            v[i] = json_integer_value(e);
        } else if (allow_unknown && json_is_null(e)) {
            v[i] = -1;
        } else {
            free(v);
            return nnp_error_set(err, NNP_ERR_INVALID,
                                 "%s parameter '%s': entry %zu must be a non-negative int%s",
                                 what, key, i, allow_unknown ? " or null" : "");
        }
    }
    *out = v;
    *n = (int)len;
    return NNP_OK;
}

/* Parses j into v according to d. */
/* A key the kind takes only at its default (NNP_PARAM_ONLY_DEFAULT). */
static nnp_status check_only_default(const nnp_kind *k, const nnp_param_def *d, const json_t *j,
                                     nnp_error *err)
{
    json_t *def = json_loads(d->default_json, JSON_DECODE_ANY, NULL);
    int same = def && (json_equal(def, j) ||
                       (json_is_number(def) && json_is_number(j) &&
                        json_number_value(def) == json_number_value(j)));
    json_decref(def);
    if (same)
        return NNP_OK;
    char *got = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    nnp_status st = nnp_error_set(err, NNP_ERR_UNSUPPORTED,
                                  "%s parameter '%s' = %s is not supported: nnplug implements "
                                  "only its default (%s)", k->name, d->name, got ? got : "?",
                                  d->default_json);
    free(got);
    return st;
}

/* What Keras writes that nnplug reads its own way: a key taken only at its
 * default (checked here), and an int written as a one-element list, as
 * tf.keras saves a built BatchNormalization's "axis": [3] (unwrapped). */
static nnp_status keras_form(const nnp_kind *k, const nnp_param_def *d, const json_t **j,
                             nnp_error *err)
{
    if (d->flags & NNP_PARAM_ONLY_DEFAULT) {
        nnp_status st = check_only_default(k, d, *j, err);
        if (st)
            return st;
    }
    if (d->type == NNP_PARAM_INT && json_is_array(*j)) {
        if (json_array_size(*j) != 1)
            return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "%s parameter '%s' lists %zu values; "
                                 "nnplug's %s takes one", k->name, d->name, json_array_size(*j),
                                 k->name);
        *j = json_array_get(*j, 0);
    }
    return NNP_OK;
}

static nnp_status parse_value(const nnp_kind *k, const nnp_param_def *d, const json_t *j,
                              cfg_value *v, nnp_error *err)
{
    cfg_value nv;
    memset(&nv, 0, sizeof nv);
    nnp_status st = keras_form(k, d, &j, err);
    if (st)
        return st;
    /* A wrapper's layer defaults to none: create() reports the missing layer. */
    if (json_is_null(j) && ((d->flags & NNP_PARAM_NULLABLE) || d->type == NNP_PARAM_LAYER) &&
        d->type != NNP_PARAM_REGULARIZER && d->type != NNP_PARAM_CONSTRAINT) {
        nv.is_null = 1;
        nv.n_ints = -1;
        value_clear(v);
        *v = nv;
        return NNP_OK;
    }
    switch (d->type) {
    case NNP_PARAM_INT:
        if (json_is_integer(j))
            nv.i = json_integer_value(j);
        else if (json_is_real(j) && json_real_value(j) == floor(json_real_value(j)) &&
                 fabs(json_real_value(j)) < 9e15)
            nv.i = (int64_t)json_real_value(j);
        else
            return nnp_error_set(err, NNP_ERR_INVALID, "%s parameter '%s' must be an int",
                                 k->name, d->name);
        st = check_range(k, d, (double)nv.i, err);
        break;
    case NNP_PARAM_FLOAT:
        if (!json_is_number(j))
            return nnp_error_set(err, NNP_ERR_INVALID, "%s parameter '%s' must be a number",
                                 k->name, d->name);
        nv.f = json_number_value(j);
        if (!isfinite(nv.f))
            return nnp_error_set(err, NNP_ERR_INVALID, "%s parameter '%s' must be finite",
                                 k->name, d->name);
        st = check_range(k, d, nv.f, err);
        break;
    case NNP_PARAM_BOOL:
        if (!json_is_boolean(j))
            return nnp_error_set(err, NNP_ERR_INVALID, "%s parameter '%s' must be true or false",
                                 k->name, d->name);
        nv.b = json_is_true(j);
        break;
    case NNP_PARAM_STRING:
        if (!json_is_string(j))
            return nnp_error_set(err, NNP_ERR_INVALID, "%s parameter '%s' must be a string",
                                 k->name, d->name);
        if (d->choices && !in_choices(d->choices, json_string_value(j)))
            return nnp_error_set(err, NNP_ERR_INVALID,
                                 "%s parameter '%s' = \"%s\" is not one of %s", k->name, d->name,
                                 json_string_value(j), d->choices);
        nv.s = strdup(json_string_value(j));
        if (!nv.s)
            return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
        break;
    case NNP_PARAM_INITIALIZER:
        st = nnpi_initializer_from_jsonv(j, &nv.init, err);
        break;
    case NNP_PARAM_REGULARIZER:
        st = nnpi_regularizer_from_jsonv(j, &nv.reg, err);
        break;
    case NNP_PARAM_CONSTRAINT:
        st = nnpi_constraint_from_jsonv(j, &nv.con, err);
        break;
    case NNP_PARAM_SHAPE:
    case NNP_PARAM_INTS:
        st = parse_ints(j, &nv.ints, &nv.n_ints, d->type == NNP_PARAM_SHAPE, k->name, d->name,
                        err);
        if (st == NNP_OK && d->type == NNP_PARAM_INTS)
            for (int i = 0; i < nv.n_ints && st == NNP_OK; i++)
                st = check_range(k, d, (double)nv.ints[i], err);
        break;
    case NNP_PARAM_LAYER:
        if (!json_is_object(j) || !json_is_string(json_object_get(j, "class_name")))
            return nnp_error_set(err, NNP_ERR_INVALID,
                                 "%s parameter '%s' must be a layer {\"class_name\": ..., "
                                 "\"config\": {...}}", k->name, d->name);
        nv.layer_json = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        if (!nv.layer_json)
            return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
        break;
    default:
        return nnp_error_set(err, NNP_ERR_INTERNAL, "%s parameter '%s' has unknown type %d",
                             k->name, d->name, (int)d->type);
    }
    if (st) {
        value_clear(&nv);
        if (d->type == NNP_PARAM_INITIALIZER || d->type == NNP_PARAM_REGULARIZER ||
            d->type == NNP_PARAM_CONSTRAINT)
            nnp_error_prefix(err, "%s parameter '%s'", k->name, d->name);
        return st;
    }
    value_clear(v);
    *v = nv;
    return NNP_OK;
}

nnp_status nnp_config_new(const nnp_kind *kind, nnp_config **out, nnp_error *err)
{
    *out = NULL;
    nnp_config *c = calloc(1, sizeof *c);
    if (!c)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    c->kind = kind;
    c->trainable = true;
    c->bis_rank = -1;
    c->v = calloc(kind->n_params > 0 ? (size_t)kind->n_params : 1, sizeof *c->v);
    c->name = strdup(kind->name);
    if (!c->v || !c->name) {
        nnp_config_free(c);
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < kind->n_params; i++) {
        const nnp_param_def *d = &kind->params[i];
        json_error_t je;
        json_t *j = json_loads(d->default_json ? d->default_json : "null", JSON_DECODE_ANY, &je);
        nnp_status st = j ? parse_value(kind, d, j, &c->v[i], err)
                          : nnp_error_set(err, NNP_ERR_INVALID,
                                          "%s parameter '%s': default is not valid JSON",
                                          kind->name, d->name);
        json_decref(j);
        if (st) {
            nnp_config_free(c);
            return nnp_error_prefix(err, "schema default");
        }
    }
    *out = c;
    return NNP_OK;
}

void nnp_config_free(nnp_config *c)
{
    if (!c)
        return;
    if (c->v)
        for (int i = 0; i < c->kind->n_params; i++)
            value_clear(&c->v[i]);
    free(c->v);
    free(c->name);
    free(c);
}

/* Keys every layer accepts besides its kind's parameters. */
static nnp_status parse_common_key(nnp_config *c, const char *key, const json_t *j,
                                   bool *handled, nnp_error *err)
{
    const char *kn = c->kind->name;
    *handled = true;
    if (strcmp(key, "name") == 0) {
        if (!json_is_string(j) || !json_string_value(j)[0])
            return nnp_error_set(err, NNP_ERR_INVALID, "%s key 'name' must be a non-empty string", kn);
        return nnp_config_set_name(c, json_string_value(j), err);
    }
    if (strcmp(key, "trainable") == 0) {
        if (!json_is_boolean(j))
            return nnp_error_set(err, NNP_ERR_INVALID, "%s key 'trainable' must be true or false", kn);
        c->trainable = json_is_true(j);
        return NNP_OK;
    }
    if (strcmp(key, "seed") == 0) {
        if (json_is_null(j))   /* Keras writes "seed": null for unseeded layers */
            return NNP_OK;
        if (!json_is_integer(j) || json_integer_value(j) < 0)
            return nnp_error_set(err, NNP_ERR_INVALID, "%s key 'seed' must be a non-negative int", kn);
        c->seed = (uint64_t)json_integer_value(j);
        return NNP_OK;
    }
    if (strcmp(key, "dtype") == 0) {
        const json_t *dt = j;
        /* Keras 3 writes a DTypePolicy object: {"class_name": ..., "config": {"name": ...}} */
        if (json_is_object(j))
            dt = json_object_get(json_object_get(j, "config"), "name");
        if (json_is_null(j) || (json_is_string(dt) && strcmp(json_string_value(dt), "float32") == 0))
            return NNP_OK;
        if (json_is_string(dt))
            return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "%s key 'dtype': '%.80s' is not "
                                 "supported; only float32 is", kn, json_string_value(dt));
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "%s key 'dtype': only float32 is supported",
                             kn);
    }
    if (strcmp(key, "batch_input_shape") == 0 || strcmp(key, "input_shape") == 0 ||
        strcmp(key, "batch_shape") == 0) {
        bool with_batch = strcmp(key, "input_shape") != 0;
        int64_t *d = NULL;
        int n = 0;
        nnp_status st = parse_ints(j, &d, &n, true, kn, key, err);
        if (st)
            return st;
        if (n + (with_batch ? 0 : 1) > NNP_MAX_RANK) {
            free(d);
            return nnp_error_set(err, NNP_ERR_INVALID, "%s key '%s' has rank above %d", kn, key,
                                 NNP_MAX_RANK);
        }
        c->bis_rank = 0;
        if (!with_batch)
            c->bis[c->bis_rank++] = -1;
        for (int i = 0; i < n; i++)
            c->bis[c->bis_rank++] = d[i];
        free(d);
        return NNP_OK;
    }
    *handled = false;
    return NNP_OK;
}

nnp_status nnpi_config_from_jsonv(const nnp_kind *kind, const json_t *obj, nnp_config **out,
                                  nnp_error *err)
{
    *out = NULL;
    if (!json_is_object(obj))
        return nnp_error_set(err, NNP_ERR_INVALID, "%s config must be a JSON object", kind->name);
    nnp_config *c;
    nnp_status st = nnp_config_new(kind, &c, err);
    if (st)
        return st;
    unsigned char *seen = calloc((size_t)kind->n_params + 1, 1);
    if (!seen) {
        nnp_config_free(c);
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    }
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        char sk[128];
        nnp_snake_case(key, sk, sizeof sk);
        int idx = find_param(kind, sk);
        if (idx >= 0) {
            if (seen[idx]) {
                st = nnp_error_set(err, NNP_ERR_INVALID, "%s parameter '%s' is given twice",
                                   kind->name, sk);
                break;
            }
            seen[idx] = 1;
            st = parse_value(kind, &kind->params[idx], val, &c->v[idx], err);
        } else {
            bool handled;
            st = parse_common_key(c, sk, val, &handled, err);
            if (st == NNP_OK && !handled) {
                char *names = NULL;
                size_t len = 0;
                for (int i = 0; i < kind->n_params; i++)
                    len += strlen(kind->params[i].name) + 2;
                names = calloc(len + 1, 1);
                for (int i = 0; names && i < kind->n_params; i++) {
                    if (i)
                        strcat(names, ", ");
                    strcat(names, kind->params[i].name);
                }
                st = nnp_error_set(err, NNP_ERR_INVALID,
                                   "%s: unknown config key '%s' (parameters: %s)", kind->name, key,
                                   names ? names : "");
                free(names);
            }
        }
        if (st)
            break;
    }
    free(seen);
    if (st) {
        nnp_config_free(c);
        return st;
    }
    *out = c;
    return NNP_OK;
}

nnp_status nnp_config_from_json(const nnp_kind *kind, const char *json, nnp_config **out,
                                nnp_error *err)
{
    json_error_t je;
    *out = NULL;
    json_t *j = json_loads(json ? json : "{}", JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return nnp_error_set(err, NNP_ERR_INVALID, "%s config: invalid JSON at line %d column %d: %s",
                             kind->name, je.line, je.column, je.text);
    nnp_status st = nnpi_config_from_jsonv(kind, j, out, err);
    json_decref(j);
    return st;
}

static json_t *json_from_text(char *s)
{
    json_t *j = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
    free(s);
    return j ? j : json_null();
}

static json_t *ints_json(const int64_t *v, int n, bool shape)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, (shape && v[i] < 0) ? json_null() : json_integer(v[i]));
    return a;
}

json_t *nnpi_config_to_jsonv(const nnp_config *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(c->name));
    json_object_set_new(o, "trainable", json_boolean(c->trainable));
    json_object_set_new(o, "dtype", json_string("float32"));
    if (c->seed)
        json_object_set_new(o, "seed", json_integer((json_int_t)c->seed));
    if (c->bis_rank >= 0)
        json_object_set_new(o, "batch_input_shape", ints_json(c->bis, c->bis_rank, true));
    for (int i = 0; i < c->kind->n_params; i++) {
        const nnp_param_def *d = &c->kind->params[i];
        const cfg_value *v = &c->v[i];
        json_t *j;
        if (d->flags & NNP_PARAM_ONLY_DEFAULT)
            continue;   /* always the default: Keras leaves it out too */
        if (v->is_null) {
            j = json_null();
        } else {
            switch (d->type) {
            case NNP_PARAM_INT: j = json_integer(v->i); break;
            case NNP_PARAM_FLOAT: j = json_real(v->f); break;
            case NNP_PARAM_BOOL: j = json_boolean(v->b); break;
            case NNP_PARAM_STRING: j = json_string(v->s); break;
            case NNP_PARAM_INITIALIZER: j = json_from_text(nnp_initializer_to_json(v->init)); break;
            case NNP_PARAM_REGULARIZER:
                j = v->reg ? json_from_text(nnp_regularizer_to_json(v->reg)) : json_null();
                break;
            case NNP_PARAM_CONSTRAINT:
                j = v->con ? json_from_text(nnp_constraint_to_json(v->con)) : json_null();
                break;
            case NNP_PARAM_SHAPE:
            case NNP_PARAM_INTS:
                j = ints_json(v->ints, v->n_ints, d->type == NNP_PARAM_SHAPE);
                break;
            case NNP_PARAM_LAYER: j = json_from_text(v->layer_json ? strdup(v->layer_json) : NULL); break;
            default: j = json_null(); break;
            }
        }
        json_object_set_new(o, d->name, j);
    }
    return o;
}

char *nnp_config_to_json(const nnp_config *c)
{
    json_t *o = nnpi_config_to_jsonv(c);
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    json_decref(o);
    return s;
}

nnp_config *nnp_config_clone(const nnp_config *c)
{
    json_t *o = nnpi_config_to_jsonv(c);
    nnp_config *copy = NULL;
    nnp_error err;
    if (nnpi_config_from_jsonv(c->kind, o, &copy, &err) == NNP_OK) {
        copy->seed = c->seed;
        copy->reg = c->reg;
    }
    json_decref(o);
    return copy;
}

const nnp_kind *nnp_config_kind(const nnp_config *c) { return c->kind; }

nnp_status nnp_config_set_json(nnp_config *c, const char *key, const char *json, nnp_error *err)
{
    char sk[128];
    nnp_snake_case(key, sk, sizeof sk);
    int idx = find_param(c->kind, sk);
    json_error_t je;
    json_t *j = json_loads(json, JSON_DECODE_ANY, &je);
    if (!j)
        return nnp_error_set(err, NNP_ERR_INVALID, "%s parameter '%s': invalid JSON: %s",
                             c->kind->name, key, je.text);
    nnp_status st;
    if (idx >= 0) {
        st = parse_value(c->kind, &c->kind->params[idx], j, &c->v[idx], err);
    } else {
        bool handled;
        st = parse_common_key(c, sk, j, &handled, err);
        if (st == NNP_OK && !handled)
            st = nnp_error_set(err, NNP_ERR_NOT_FOUND, "%s has no parameter '%s'", c->kind->name,
                               key);
    }
    json_decref(j);
    return st;
}

nnp_status nnp_config_set_name(nnp_config *c, const char *name, nnp_error *err)
{
    char *n = strdup(name);
    if (!n)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    free(c->name);
    c->name = n;
    c->name_set = true;
    return NNP_OK;
}

void nnp_config_set_trainable(nnp_config *c, bool trainable) { c->trainable = trainable; }
void nnp_config_set_seed(nnp_config *c, uint64_t seed) { c->seed = seed; }
void nnpi_config_set_registry(nnp_config *c, const struct nnp_registry *reg) { c->reg = reg; }
const struct nnp_registry *nnpi_config_registry(const nnp_config *c) { return c->reg; }

static const cfg_value *get(const nnp_config *c, const char *key, nnp_param_type t)
{
    int idx = find_param(c->kind, key);
    if (idx < 0 || c->kind->params[idx].type != t)
        return NULL;
    return &c->v[idx];
}

int64_t nnp_config_int(const nnp_config *c, const char *key)
{
    const cfg_value *v = get(c, key, NNP_PARAM_INT);
    return v ? v->i : 0;
}

double nnp_config_float(const nnp_config *c, const char *key)
{
    const cfg_value *v = get(c, key, NNP_PARAM_FLOAT);
    return v ? v->f : 0.0;
}

int nnp_config_bool(const nnp_config *c, const char *key)
{
    const cfg_value *v = get(c, key, NNP_PARAM_BOOL);
    return v ? v->b : 0;
}

const char *nnp_config_string(const nnp_config *c, const char *key)
{
    const cfg_value *v = get(c, key, NNP_PARAM_STRING);
    return v && !v->is_null ? v->s : NULL;
}

int nnp_config_ints(const nnp_config *c, const char *key, int64_t *out, int max_out)
{
    const cfg_value *v = get(c, key, NNP_PARAM_INTS);
    if (!v)
        v = get(c, key, NNP_PARAM_SHAPE);
    if (!v || v->is_null)
        return -1;
    for (int i = 0; i < v->n_ints && i < max_out; i++)
        out[i] = v->ints[i];
    return v->n_ints;
}

const nnp_initializer *nnp_config_initializer(const nnp_config *c, const char *key)
{
    const cfg_value *v = get(c, key, NNP_PARAM_INITIALIZER);
    return v ? v->init : NULL;
}

const nnp_regularizer *nnp_config_regularizer(const nnp_config *c, const char *key)
{
    const cfg_value *v = get(c, key, NNP_PARAM_REGULARIZER);
    return v ? v->reg : NULL;
}

const nnp_constraint *nnp_config_constraint(const nnp_config *c, const char *key)
{
    const cfg_value *v = get(c, key, NNP_PARAM_CONSTRAINT);
    return v ? v->con : NULL;
}

const char *nnp_config_layer_json(const nnp_config *c, const char *key)
{
    const cfg_value *v = get(c, key, NNP_PARAM_LAYER);
    return v && !v->is_null ? v->layer_json : NULL;
}

const char *nnp_config_name(const nnp_config *c) { return c->name; }

int nnp_config_is_null(const nnp_config *c, const char *key)
{
    int idx = find_param(c->kind, key);
    if (idx < 0)
        return 0;
    const cfg_value *v = &c->v[idx];
    return v->is_null || (c->kind->params[idx].type == NNP_PARAM_REGULARIZER && !v->reg) ||
           (c->kind->params[idx].type == NNP_PARAM_CONSTRAINT && !v->con);
}
bool nnp_config_name_is_set(const nnp_config *c) { return c->name_set; }
bool nnp_config_trainable(const nnp_config *c) { return c->trainable; }

uint64_t nnp_config_seed(const nnp_config *c)
{
    /* Unseeded layers still get distinct, reproducible streams by name. */
    return c->seed ? c->seed : nnp_seed_mix(0x6e6e706c7567ULL, c->name);
}

int nnp_config_batch_input_shape(const nnp_config *c, int64_t *dims, int max_dims)
{
    for (int i = 0; i < c->bis_rank && i < max_dims; i++)
        dims[i] = c->bis[i];
    return c->bis_rank;
}
