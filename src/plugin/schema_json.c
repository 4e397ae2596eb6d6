/* nnp_registry_schema_json: every registered kind and its parameter schema
 * as a pretty JSON array (the output of `nnplug plugins --json`).
 *
 * The document is built with jansson and printed by a small writer of our
 * own: jansson prints every real with 17 digits (0.99 -> 0.98999999999999999),
 * while a schema is read by people, so reals are printed with the fewest
 * digits that read back to the same double. */
#include "nnplug/registry.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *nnp_param_type_name(nnp_param_type t)
{
    switch (t) {
    case NNP_PARAM_INT: return "int";
    case NNP_PARAM_FLOAT: return "float";
    case NNP_PARAM_BOOL: return "bool";
    case NNP_PARAM_STRING: return "string";
    case NNP_PARAM_INITIALIZER: return "initializer";
    case NNP_PARAM_REGULARIZER: return "regularizer";
    case NNP_PARAM_CONSTRAINT: return "constraint";
    case NNP_PARAM_SHAPE: return "shape";
    case NNP_PARAM_INTS: return "ints";
    case NNP_PARAM_LAYER: return "layer";
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Building the document                                               */
/* ------------------------------------------------------------------ */

/* A bound or default of a numeric parameter, typed like the parameter. */
static json_t *number(nnp_param_type t, double v)
{
    return t == NNP_PARAM_INT ? json_integer((json_int_t)v) : json_real(v);
}

static json_t *choices_array(const char *choices)
{
    json_t *a = json_array();
    for (const char *c = choices; a && *c;) {
        const char *bar = strchr(c, '|');
        size_t len = bar ? (size_t)(bar - c) : strlen(c);
        json_array_append_new(a, json_stringn(c, len));
        c = bar ? bar + 1 : c + len;
    }
    return a;
}

static json_t *param_json(const nnp_param_def *p)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    /* Defaults were checked at load, so they parse; a float written as an
     * integer ("1") is shown as the real it means. */
    json_t *def = json_loads(p->default_json, JSON_DECODE_ANY, NULL);
    if (p->type == NNP_PARAM_FLOAT && json_is_integer(def)) {
        json_t *r = json_real((double)json_integer_value(def));
        json_decref(def);
        def = r;
    }
    int bad = 0;
    bad |= json_object_set_new(o, "name", json_string(p->name));
    bad |= json_object_set_new(o, "type", json_string(nnp_param_type_name(p->type)));
    bad |= json_object_set_new(o, "default", def ? def : json_null());
    bad |= json_object_set_new(o, "nullable", json_boolean(p->flags & NNP_PARAM_NULLABLE));
    if (p->flags & NNP_PARAM_ONLY_DEFAULT)
        bad |= json_object_set_new(o, "only_default", json_true());
    if (p->flags & NNP_PARAM_HAS_MIN) {
        bad |= json_object_set_new(o, "min", number(p->type, p->min));
        bad |= json_object_set_new(o, "min_exclusive",
                                   json_boolean(p->flags & NNP_PARAM_MIN_EXCLUSIVE));
    }
    if (p->flags & NNP_PARAM_HAS_MAX) {
        bad |= json_object_set_new(o, "max", number(p->type, p->max));
        bad |= json_object_set_new(o, "max_exclusive",
                                   json_boolean(p->flags & NNP_PARAM_MAX_EXCLUSIVE));
    }
    if (p->choices)
        bad |= json_object_set_new(o, "choices", choices_array(p->choices));
    bad |= json_object_set_new(o, "doc", json_string(p->doc ? p->doc : ""));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *kind_json(const nnp_kind *k, const char *origin)
{
    json_t *o = json_object(), *params = json_array(), *onnx, *inputs = json_object();
    int bad = !o || !params || !inputs;
    if (k->onnx.op_type) {
        onnx = json_object();
        bad |= json_object_set_new(onnx, "domain", json_string(k->onnx.domain));
        bad |= json_object_set_new(onnx, "op_type", json_string(k->onnx.op_type));
        bad |= json_object_set_new(onnx, "opset_min", json_integer(k->onnx.opset_min));
        bad |= json_object_set_new(onnx, "opset_max", json_integer(k->onnx.opset_max));
    } else {
        onnx = json_null();
    }
    bad |= json_object_set_new(inputs, "min", json_integer(k->n_inputs_min));
    bad |= json_object_set_new(inputs, "max", json_integer(k->n_inputs_max));
    for (int i = 0; i < k->n_params; i++)
        bad |= json_array_append_new(params, param_json(&k->params[i]));
    bad |= json_object_set_new(o, "name", json_string(k->name));
    bad |= json_object_set_new(o, "doc", json_string(k->doc));
    bad |= json_object_set_new(o, "plugin", json_string(origin));
    bad |= json_object_set_new(o, "onnx", onnx);
    bad |= json_object_set_new(o, "inputs", inputs);
    bad |= json_object_set_new(o, "wrapper", json_boolean(k->flags & NNP_KIND_WRAPPER));
    bad |= json_object_set_new(o, "params", params);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ------------------------------------------------------------------ */
/* Printing                                                            */
/* ------------------------------------------------------------------ */

typedef struct out_buf {
    char *p;
    size_t len, cap;
    bool oom;
} out_buf;

static void put(out_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(out_buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void newline(out_buf *b, int depth)
{
    put(b, "\n", 1);
    for (int i = 0; i < depth; i++)
        put(b, "  ", 2);
}

static void put_string(out_buf *b, const char *s, size_t n)
{
    put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            puts_(b, esc);
        } else {
            put(b, &s[i], 1);   /* UTF-8 passes through */
        }
    }
    put(b, "\"", 1);
}

static void put_real(out_buf *b, double v)
{
    char s[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, v);
        if (strtod(s, NULL) == v)
            break;
    }
    puts_(b, s);
    if (!strpbrk(s, ".eE"))
        puts_(b, ".0");   /* stays a real when read back */
}

static bool is_scalar(const json_t *v)
{
    return !json_is_object(v) && !json_is_array(v);
}

static void put_value(out_buf *b, const json_t *v, int depth)
{
    char num[32];
    size_t i;
    const char *key;
    json_t *e;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        if (json_object_size(v) == 0) {
            puts_(b, "{}");
            break;
        }
        put(b, "{", 1);
        i = 0;
        json_object_foreach((json_t *)v, key, e) {   /* insertion order */
            if (i++)
                put(b, ",", 1);
            newline(b, depth + 1);
            put_string(b, key, strlen(key));
            put(b, ": ", 2);
            put_value(b, e, depth + 1);
        }
        newline(b, depth);
        put(b, "}", 1);
        break;
    case JSON_ARRAY: {
        /* Lists of scalars (choices, shapes) stay on one line. */
        bool flat = true;
        json_array_foreach(v, i, e)
            flat &= is_scalar(e);
        if (json_array_size(v) == 0) {
            puts_(b, "[]");
            break;
        }
        put(b, "[", 1);
        json_array_foreach(v, i, e) {
            if (i)
                puts_(b, flat ? ", " : ",");
            if (!flat)
                newline(b, depth + 1);
            put_value(b, e, depth + 1);
        }
        if (!flat)
            newline(b, depth);
        put(b, "]", 1);
        break;
    }
    case JSON_STRING:
        put_string(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        puts_(b, num);
        break;
    case JSON_REAL:
        put_real(b, json_real_value(v));
        break;
    case JSON_TRUE:
        puts_(b, "true");
        break;
    case JSON_FALSE:
        puts_(b, "false");
        break;
    case JSON_NULL:
        puts_(b, "null");
        break;
    }
}

char *nnp_registry_schema_json(const nnp_registry *reg)
{
    json_t *doc = json_array();
    int bad = !doc;
    /* Kinds are only appended, so indices below the count stay valid even
     * while another thread loads more. */
    int n = nnp_registry_n_kinds(reg);
    for (int i = 0; i < n && !bad; i++)
        bad |= json_array_append_new(doc, kind_json(nnp_registry_kind_at(reg, i),
                                                    nnp_registry_kind_origin(reg, i)));
    out_buf b = {0};
    if (!bad) {
        put_value(&b, doc, 0);
    }
    json_decref(doc);
    if (bad || b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
