/* Keras weight regularizers L1, L2 and L1L2:
 *   loss = l1 * sum|w| + l2 * sum w^2,   grad += l1 * sign(w) + 2 * l2 * w. */
#include "services_internal.h"

#include <math.h>

typedef enum reg_kind { REG_L1, REG_L2, REG_L1L2 } reg_kind;

struct nnp_regularizer {
    reg_kind kind;
    double l1, l2;
};

static const char *const ARGS_L1[] = {"l1", NULL};
static const char *const ARGS_L2[] = {"l2", NULL};
static const char *const ARGS_L1L2[] = {"l1", "l2", NULL};

static const char *kind_class(reg_kind k)
{
    return k == REG_L1 ? "L1" : k == REG_L2 ? "L2" : "L1L2";
}

static const char *const *kind_args(reg_kind k)
{
    return k == REG_L1 ? ARGS_L1 : k == REG_L2 ? ARGS_L2 : ARGS_L1L2;
}

nnp_status nnpi_regularizer_from_jsonv(const json_t *v, nnp_regularizer **out, nnp_error *err)
{
    const char *name;
    const json_t *config;
    nnp_status st;
    *out = NULL;
    if (!v || json_is_null(v))
        return NNP_OK;   /* no regularizer */
    if ((st = nnp_svc_unpack(v, "regularizer", &name, &config, err)))
        return st;

    /* Folding makes "l1_l2", "L1L2" and "l1l2" one name. */
    char folded[32];
    nnp_svc_fold_name(name, folded, sizeof folded);
    nnp_regularizer r = {0};
    if (strcmp(folded, "l1") == 0) {
        r.kind = REG_L1;
        r.l1 = 0.01;
    } else if (strcmp(folded, "l2") == 0) {
        r.kind = REG_L2;
        r.l2 = 0.01;
    } else if (strcmp(folded, "l1l2") == 0) {
        r.kind = REG_L1L2;
    } else {
        return nnp_error_set(err, NNP_ERR_NOT_FOUND, "unknown regularizer '%s'", name);
    }

    nnp_svc_args a = {.what = "regularizer", .cls = kind_class(r.kind),
                      .names = kind_args(r.kind)};
    if ((st = nnp_svc_args_collect(&a, config, err)) ||
        (st = nnp_svc_arg_double(&a, "l1", &r.l1, err)) ||
        (st = nnp_svc_arg_double(&a, "l2", &r.l2, err)))
        return st;
    if (r.l1 < 0 || r.l2 < 0)
        return nnp_error_set(err, NNP_ERR_INVALID, "regularizer '%s': %s must be >= 0, got %g",
                             a.cls, r.l1 < 0 ? "l1" : "l2", r.l1 < 0 ? r.l1 : r.l2);

    nnp_regularizer *p = malloc(sizeof *p);
    if (!p)
        return nnp_error_set(err, NNP_ERR_NOMEM, "regularizer '%s': out of memory", a.cls);
    *p = r;
    *out = p;
    return NNP_OK;
}

nnp_status nnp_regularizer_parse(const char *text, nnp_regularizer **out, nnp_error *err)
{
    json_t *v;
    nnp_status st = nnp_svc_load(text, "regularizer", &v, err);
    if (st) {
        *out = NULL;
        return st;
    }
    st = nnpi_regularizer_from_jsonv(v, out, err);
    json_decref(v);
    return st;
}

void nnp_regularizer_free(nnp_regularizer *r) { free(r); }

nnp_regularizer *nnp_regularizer_clone(const nnp_regularizer *r)
{
    if (!r)
        return NULL;
    nnp_regularizer *c = malloc(sizeof *c);
    if (c)
        *c = *r;
    return c;
}

json_t *nnpi_regularizer_to_jsonv(const nnp_regularizer *r)
{
    if (!r)
        return json_null();
    json_t *cfg = json_object();
    if (!cfg)
        return NULL;
    if ((r->kind != REG_L2 && json_object_set_new(cfg, "l1", json_real(r->l1))) ||
        (r->kind != REG_L1 && json_object_set_new(cfg, "l2", json_real(r->l2)))) {
        json_decref(cfg);
        return NULL;
    }
    return nnp_svc_spec(kind_class(r->kind), cfg);
}

char *nnp_regularizer_to_json(const nnp_regularizer *r)
{
    return nnp_svc_dumps(nnpi_regularizer_to_jsonv(r));
}

/* The loss is summed over a fixed number of equal chunks and the chunk sums
 * added in order, so it is identical for every thread count (a plain OpenMP
 * reduction's order, and so its rounding, depends on the threads). */
#define LOSS_CHUNKS 64
#define PAR_MIN 32768

double nnp_regularizer_loss(const nnp_regularizer *r, const float *w, int64_t n)
{
    if (!r || !w || n <= 0)
        return 0.0;
    double part[LOSS_CHUNKS] = {0};
    int64_t chunk = (n + LOSS_CHUNKS - 1) / LOSS_CHUNKS;
    const double l1 = r->l1, l2 = r->l2;
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
    for (int b = 0; b < LOSS_CHUNKS; b++) {
        int64_t lo = b * chunk, hi = lo + chunk < n ? lo + chunk : n;
        double s1 = 0, s2 = 0;
        for (int64_t i = lo; i < hi; i++) {
            double x = w[i];
            s1 += fabs(x);
            s2 += x * x;
        }
        part[b] = l1 * s1 + l2 * s2;
    }
    double loss = 0;
    for (int b = 0; b < LOSS_CHUNKS; b++)
        loss += part[b];
    return loss;
}

void nnp_regularizer_grad_add(const nnp_regularizer *r, const float *w, float *grad, int64_t n)
{
    if (!r || !w || !grad || n <= 0)
        return;
    const double l1 = r->l1, l2 = r->l2;
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        double x = w[i];
        double sign = (x > 0) - (x < 0);   /* sign(0) = 0, as Keras's ops.sign */
        grad[i] = (float)(grad[i] + l1 * sign + 2.0 * l2 * x);
    }
}
