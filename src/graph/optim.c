/* Keras optimizers. Slots are allocated once, in nnp_optimizer_new. */
#include "nnplug/layer.h"
#include "nnplug/status.h"
#include "nnplug/tensor.h"
#include "nnplug/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* elements below which an update runs on one thread (each element's update
 * is its own: the same bits at any thread count) */
#define PAR_MIN 32768

typedef struct slot {
    const nnp_weight *w;
    float *m;   /* SGD velocity or Adam first moment */
    float *v;   /* Adam second moment */
} slot;

struct nnp_optimizer {
    nnp_optimizer_config cfg;
    nnp_model *model;
    slot *slots;
    int n;
    int64_t iterations;
};

nnp_optimizer_config nnp_optimizer_defaults(nnp_optimizer_kind kind)
{
    nnp_optimizer_config c = {kind, kind == NNP_OPT_ADAM ? 0.001 : 0.01, 0.0, 0, 0.9, 0.999, 1e-7};
    return c;
}

void nnp_optimizer_free(nnp_optimizer *o)
{
    if (!o)
        return;
    for (int i = 0; i < o->n; i++) {
        nnp_aligned_free(o->slots[i].m);
        nnp_aligned_free(o->slots[i].v);
    }
    free(o->slots);
    free(o);
}

nnp_status nnp_optimizer_new(const nnp_optimizer_config *cfg, nnp_model *m, nnp_optimizer **out,
                             nnp_error *err)
{
    *out = NULL;
    if (cfg->kind != NNP_OPT_SGD && cfg->kind != NNP_OPT_ADAM)
        return nnp_error_set(err, NNP_ERR_INVALID, "unknown optimizer kind %d", (int)cfg->kind);
    if (!(cfg->learning_rate >= 0) || !(cfg->momentum >= 0) || !(cfg->momentum <= 1))
        return nnp_error_set(err, NNP_ERR_INVALID, "optimizer: learning rate must be >= 0 and "
                             "momentum in [0, 1]");
    if (cfg->kind == NNP_OPT_ADAM && (!(cfg->beta_1 >= 0 && cfg->beta_1 < 1) ||
                                      !(cfg->beta_2 >= 0 && cfg->beta_2 < 1) || !(cfg->epsilon > 0)))
        return nnp_error_set(err, NNP_ERR_INVALID, "Adam: beta_1 and beta_2 must be in [0, 1) "
                             "and epsilon > 0");
    nnp_optimizer *o = calloc(1, sizeof *o);
    if (!o)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    o->cfg = *cfg;
    o->model = m;
    int total = 0;
    for (int li = 0; li < nnp_model_n_layers(m); li++)
        total += nnp_layer_n_weights(nnp_model_layer(m, li));
    o->slots = calloc((size_t)(total ? total : 1), sizeof *o->slots);
    if (!o->slots) {
        free(o);
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    }
    bool need_m = cfg->kind == NNP_OPT_ADAM || cfg->momentum > 0;
    for (int li = 0; li < nnp_model_n_layers(m); li++) {
        nnp_layer *l = nnp_model_layer(m, li);
        for (int i = 0; i < nnp_layer_n_weights(l); i++) {
            const nnp_weight *w = nnp_layer_weight(l, i);
            if (!(w->flags & NNP_WEIGHT_TRAINABLE) || !w->grad)
                continue;
            slot *s = &o->slots[o->n++];
            s->w = w;
            if (need_m)
                s->m = nnp_aligned_alloc(w->value->nbytes);
            if (cfg->kind == NNP_OPT_ADAM)
                s->v = nnp_aligned_alloc(w->value->nbytes);
            if ((need_m && !s->m) || (cfg->kind == NNP_OPT_ADAM && !s->v)) {
                nnp_optimizer_free(o);
                return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory for optimizer slots");
            }
        }
    }
    *out = o;
    return NNP_OK;
}

nnp_status nnp_optimizer_step(nnp_optimizer *o, nnp_error *err)
{
    const nnp_optimizer_config *c = &o->cfg;
    o->iterations++;
    const float lr = (float)c->learning_rate;
    for (int i = 0; i < o->n; i++) {
        slot *s = &o->slots[i];
        float *w = s->w->value->data;
        const float *g = s->w->grad->data;
        int64_t n = nnp_tensor_numel(s->w->value);
        if (c->kind == NNP_OPT_SGD) {
            const float mom = (float)c->momentum;
            if (!s->m) {
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
                for (int64_t j = 0; j < n; j++)
                    w[j] -= lr * g[j];
            } else {
                /* Keras: v = momentum*v - lr*g; w += v (nesterov: w += momentum*v - lr*g) */
                float *restrict m = s->m;
                const int nesterov = c->nesterov;
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
                for (int64_t j = 0; j < n; j++) {
                    m[j] = mom * m[j] - lr * g[j];
                    w[j] += nesterov ? mom * m[j] - lr * g[j] : m[j];
                }
            }
        } else {
            double t = (double)o->iterations;
            float alpha = (float)(c->learning_rate * sqrt(1 - pow(c->beta_2, t)) /
                                  (1 - pow(c->beta_1, t)));
            /* 1 - beta in double: 1 - 0.999f would be off by 1e-5 relative. */
            const float c1 = (float)(1 - c->beta_1), c2 = (float)(1 - c->beta_2);
            const float eps = (float)c->epsilon;
            float *restrict m = s->m, *restrict v = s->v;
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
            for (int64_t j = 0; j < n; j++) {
                m[j] += (g[j] - m[j]) * c1;
                v[j] += (g[j] * g[j] - v[j]) * c2;
                w[j] -= alpha * m[j] / (sqrtf(v[j]) + eps);
            }
        }
    }
    return nnp_model_apply_constraints(o->model, err);
}

/* State blob: "NNPOPT1\0", kind (u32), slots (u32), iterations (i64), then
 * per slot its element count (i64) and its m and v arrays when it has them,
 * all little-endian as this machine stores them. */
static const char opt_magic[8] = "NNPOPT1";

nnp_status nnp_optimizer_save_state(const nnp_optimizer *o, void **out, size_t *len,
                                    nnp_error *err)
{
    size_t n = 8 + 4 + 4 + 8;
    for (int i = 0; i < o->n; i++)
        n += 8 + (o->slots[i].m ? o->slots[i].w->value->nbytes : 0) +
             (o->slots[i].v ? o->slots[i].w->value->nbytes : 0);
    unsigned char *p = malloc(n), *q = p;
    if (!p)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory for the optimizer state");
    uint32_t kind = (uint32_t)o->cfg.kind, slots = (uint32_t)o->n;
    memcpy(q, opt_magic, 8), q += 8;
    memcpy(q, &kind, 4), q += 4;
    memcpy(q, &slots, 4), q += 4;
    memcpy(q, &o->iterations, 8), q += 8;
    for (int i = 0; i < o->n; i++) {
        const slot *sl = &o->slots[i];
        int64_t numel = nnp_tensor_numel(sl->w->value);
        memcpy(q, &numel, 8), q += 8;
        if (sl->m)
            memcpy(q, sl->m, sl->w->value->nbytes), q += sl->w->value->nbytes;
        if (sl->v)
            memcpy(q, sl->v, sl->w->value->nbytes), q += sl->w->value->nbytes;
    }
    *out = p;
    *len = n;
    return NNP_OK;
}

nnp_status nnp_optimizer_load_state(nnp_optimizer *o, const void *data, size_t len,
                                    nnp_error *err)
{
    const unsigned char *q = data, *end = q + len;
    uint32_t kind, slots;
    int64_t iterations;
    if (len < 24 || memcmp(q, opt_magic, 8) != 0)
        return nnp_error_set(err, NNP_ERR_FORMAT, "optimizer state: not nnplug's");
    memcpy(&kind, q + 8, 4);
    memcpy(&slots, q + 12, 4);
    memcpy(&iterations, q + 16, 8);
    q += 24;
    if (kind != (uint32_t)o->cfg.kind)
        return nnp_error_set(err, NNP_ERR_INVALID, "optimizer state: saved by %s, resumed with %s",
                             kind == NNP_OPT_ADAM ? "adam" : "sgd",
                             o->cfg.kind == NNP_OPT_ADAM ? "adam" : "sgd");
    if (slots != (uint32_t)o->n || iterations < 0)
        return nnp_error_set(err, NNP_ERR_INVALID, "optimizer state: %u trainable weights saved, "
                             "the model has %d", slots, o->n);
    for (int i = 0; i < o->n; i++) {
        slot *sl = &o->slots[i];
        int64_t numel;
        size_t b = sl->w->value->nbytes, need = 8 + (sl->m ? b : 0) + (sl->v ? b : 0);
        if ((size_t)(end - q) < need)
            return nnp_error_set(err, NNP_ERR_FORMAT, "optimizer state: truncated at weight '%s'",
                                 sl->w->name);
        memcpy(&numel, q, 8);
        if (numel != nnp_tensor_numel(sl->w->value))
            return nnp_error_set(err, NNP_ERR_INVALID, "optimizer state: weight '%s' has %lld "
                                 "values saved, %lld in the model", sl->w->name, (long long)numel,
                                 (long long)nnp_tensor_numel(sl->w->value));
        q += need;
    }
    /* checked: now copy */
    q = (const unsigned char *)data + 24;
    for (int i = 0; i < o->n; i++) {
        slot *sl = &o->slots[i];
        size_t b = sl->w->value->nbytes;
        q += 8;
        if (sl->m)
            memcpy(sl->m, q, b), q += b;
        if (sl->v)
            memcpy(sl->v, q, b), q += b;
    }
    if (q != end)
        return nnp_error_set(err, NNP_ERR_FORMAT, "optimizer state: %zu bytes too many",
                             (size_t)(end - q));
    o->iterations = iterations;
    return NNP_OK;
}
