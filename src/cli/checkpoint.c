/* Training checkpoints: the state `nnplug train --save FILE.onnx` stores in
 * the model's metadata at every epoch end, and `--resume` reads back.
 *
 *   nnplug-train.state      JSON: {"format": 1, "epochs_done": k,
 *                           "run": {what must match to resume},
 *                           "history": {"loss": [...], "accuracy": [...],
 *                           "val_loss": [...], "val_accuracy": [...],
 *                           "batch_loss": [...]}}; numbers as C99 hex
 *                           floats ("0x1.8p+1", "nan"), exact
 *   nnplug-train.optimizer  the optimizer's state (nnp_optimizer_save_state),
 *                           base64
 *
 * Inference ignores both (they are metadata_props). */
#include "cli/checkpoint.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define META_STATE "nnplug-train.state"
#define META_OPT "nnplug-train.optimizer"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *base64(const unsigned char *p, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *o++ = b64[v >> 18 & 63];
        *o++ = b64[v >> 12 & 63];
        *o++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? b64[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* Decodes s; NULL when it is not base64. */
static unsigned char *unbase64(const char *s, size_t *n)
{
    size_t len = strlen(s);
    if (len % 4)
        return NULL;
    unsigned char *out = malloc(len / 4 * 3 + 1);
    size_t k = 0;
    for (size_t i = 0; out && i < len; i += 4) {
        uint32_t v = 0;
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            const char *c = s[i + j] == '=' ? NULL : strchr(b64, s[i + j]);
            if (s[i + j] == '=' && i + 4 == len && j >= 2)
                pad++;
            else if (!c || !s[i + j] || pad) {
                free(out);
                return NULL;
            }
            v = v << 6 | (uint32_t)(c ? c - b64 : 0);
        }
        out[k++] = (unsigned char)(v >> 16);
        if (pad < 2)
            out[k++] = (unsigned char)(v >> 8);
        if (pad < 1)
            out[k++] = (unsigned char)v;
    }
    *n = k;
    return out;
}

static json_t *hex_array(const double *v, int n)
{
    json_t *a = json_array();
    char buf[64];
    for (int i = 0; a && i < n; i++) {
        snprintf(buf, sizeof buf, "%a", v[i]);
        json_array_append_new(a, json_string(buf));
    }
    return a;
}

/* A hex-float array of the history: its values (malloc'ed) and count; -1 on
 * a malformed one. */
static int read_hex_array(json_t *h, const char *key, double **out)
{
    json_t *a = json_object_get(h, key);
    *out = NULL;
    if (!json_is_array(a))
        return -1;
    size_t n = json_array_size(a);
    *out = calloc(n + 1, sizeof **out);
    for (size_t i = 0; *out && i < n; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        char *end;
        if (!s || ((*out)[i] = strtod(s, &end), end == s || *end))
            return -1;
    }
    return *out ? (int)n : -1;
}

nnp_status ckpt_store(nnp_model *m, const char *run_json, const ckpt_history *h, int epochs_done,
                      const nnp_optimizer *opt, nnp_error *err)
{
    json_t *run = json_loads(run_json, 0, NULL);
    json_t *hist = json_pack("{s:o,s:o,s:o,s:o,s:o}", "loss", hex_array(h->loss, h->epochs),
                             "accuracy", hex_array(h->accuracy, h->epochs), "val_loss",
                             hex_array(h->val_loss, h->epochs), "val_accuracy",
                             hex_array(h->val_accuracy, h->epochs), "batch_loss",
                             hex_array(h->batch_loss, h->n_steps));
    json_t *doc = run && hist ? json_pack("{s:i,s:i,s:o,s:o}", "format", 1, "epochs_done",
                                          epochs_done, "run", run, "history", hist)
                              : NULL;
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(doc);
    void *blob = NULL;
    size_t len = 0;
    nnp_status st = text ? nnp_optimizer_save_state(opt, &blob, &len, err)
                         : nnp_error_set(err, NNP_ERR_NOMEM, "out of memory for a checkpoint");
    char *b = st ? NULL : base64(blob, len);
    free(blob);
    if (!st && !b)
        st = nnp_error_set(err, NNP_ERR_NOMEM, "out of memory for a checkpoint");
    if (!st)
        st = nnp_model_set_meta(m, META_STATE, text, err);
    if (!st)
        st = nnp_model_set_meta(m, META_OPT, b, err);
    free(text);
    free(b);
    return st;
}

void ckpt_drop(nnp_model *m)
{
    nnp_error ignored = {0};
    nnp_model_set_meta(m, META_OPT, NULL, &ignored);
}

/* The first key of want whose value differs in got (NULL: none). */
static const char *first_difference(json_t *want, json_t *got)
{
    const char *key;
    json_t *v;
    json_object_foreach(want, key, v)
    {
        if (!json_equal(v, json_object_get(got, key)))
            return key;
    }
    json_object_foreach(got, key, v)
    {
        if (!json_object_get(want, key))
            return key;
    }
    return NULL;
}

static nnp_status read_history(json_t *h, ckpt_history *out, const char *path, nnp_error *err)
{
    int n1 = read_hex_array(h, "loss", &out->loss), n2 = read_hex_array(h, "accuracy",
                                                                       &out->accuracy);
    int n3 = read_hex_array(h, "val_loss", &out->val_loss);
    int n4 = read_hex_array(h, "val_accuracy", &out->val_accuracy);
    int n5 = read_hex_array(h, "batch_loss", &out->batch_loss);
    if (n1 < 0 || n2 != n1 || n3 != n1 || n4 != n1 || n5 < 0)
        return nnp_error_set(err, NNP_ERR_FORMAT, "%s: the checkpoint's history is malformed",
                             path);
    out->epochs = n1;
    out->n_steps = n5;
    return NNP_OK;
}

nnp_status ckpt_load(const nnp_model *m, const char *path, const char *run_json,
                     ckpt_history *h, int *epochs_done, nnp_optimizer *opt, nnp_error *err)
{
    memset(h, 0, sizeof *h);
    const char *text = nnp_model_get_meta(m, META_STATE), *b = nnp_model_get_meta(m, META_OPT);
    if (!text || !b)
        return nnp_error_set(err, NNP_ERR_INVALID, "%s: not a checkpoint of nnplug train (it "
                             "holds no training state)", path);
    json_t *doc = json_loads(text, 0, NULL), *want = json_loads(run_json, 0, NULL);
    json_t *run = json_object_get(doc, "run"), *hist = json_object_get(doc, "history");
    json_t *done = json_object_get(doc, "epochs_done");
    nnp_status st = NNP_OK;
    const char *diff = NULL;
    if (!json_is_object(run) || !json_is_object(hist) || !json_is_integer(done) ||
        json_integer_value(json_object_get(doc, "format")) != 1 || json_integer_value(done) < 0)
        st = nnp_error_set(err, NNP_ERR_FORMAT, "%s: the checkpoint's training state is "
                           "malformed", path);
    else if ((diff = first_difference(want, run)) != NULL)
        st = nnp_error_set(err, NNP_ERR_INVALID, "%s: the checkpoint's run had another %s than "
                           "this command line (resume with the options it was trained with)",
                           path, diff);
    if (!st)
        st = read_history(hist, h, path, err);
    if (!st && h->epochs != json_integer_value(done))
        st = nnp_error_set(err, NNP_ERR_FORMAT, "%s: the checkpoint's history is malformed",
                           path);
    size_t len = 0;
    unsigned char *blob = st ? NULL : unbase64(b, &len);
    if (!st && !blob)
        st = nnp_error_set(err, NNP_ERR_FORMAT, "%s: the checkpoint's optimizer state is "
                           "malformed", path);
    if (!st && (st = nnp_optimizer_load_state(opt, blob, len, err)) != NNP_OK)
        nnp_error_prefix(err, "%s", path);
    if (!st)
        *epochs_done = (int)json_integer_value(done);
    free(blob);
    json_decref(doc);
    json_decref(want);
    if (st)
        ckpt_history_free(h);
    return st;
}

nnp_status ckpt_history_add(ckpt_history *h, const nnp_epoch_logs *logs,
                            const double *batch_loss, int n_steps, nnp_error *err)
{
    int e = h->epochs;
    double *arrays[4] = {h->loss, h->accuracy, h->val_loss, h->val_accuracy};
    const double vals[4] = {logs->loss, logs->accuracy, logs->val_loss, logs->val_accuracy};
    for (int i = 0; i < 4; i++) {
        double *p = realloc(arrays[i], sizeof *p * (size_t)(e + 1));
        if (!p)
            return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
        p[e] = vals[i];
        arrays[i] = p;
    }
    h->loss = arrays[0], h->accuracy = arrays[1], h->val_loss = arrays[2];
    h->val_accuracy = arrays[3];
    h->epochs = e + 1;
    double *b = realloc(h->batch_loss, sizeof *b * (size_t)(h->n_steps + n_steps + 1));
    if (!b)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    if (n_steps > 0)
        memcpy(b + h->n_steps, batch_loss, sizeof *b * (size_t)n_steps);
    h->batch_loss = b;
    h->n_steps += n_steps;
    return NNP_OK;
}

void ckpt_history_free(ckpt_history *h)
{
    free(h->loss);
    free(h->accuracy);
    free(h->val_loss);
    free(h->val_accuracy);
    free(h->batch_loss);
    memset(h, 0, sizeof *h);
}
