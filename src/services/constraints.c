/* Keras weight constraints MaxNorm, MinMaxNorm, NonNeg and UnitNorm, with
 * Keras's formulas: norms = sqrt(sum(w^2 over axis, keepdims)) and
 * w * desired / (1e-7 + norms). Norms are computed in double. */
#include "services_internal.h"

#include "nnplug/tensor.h"

#include <math.h>

typedef enum con_kind { CON_MAX_NORM, CON_MIN_MAX_NORM, CON_NON_NEG, CON_UNIT_NORM } con_kind;

#define KERAS_EPSILON 1e-7

struct nnp_constraint {
    con_kind kind;
    double max_value, min_value, rate;
    int n_axes;
    int axes[NNP_MAX_RANK];  /* as given: may be negative, checked at apply */
    int axis_is_list;        /* written back as a list, as it was given */
};

static const char *const ARGS_MAX_NORM[] = {"max_value", "axis", NULL};
static const char *const ARGS_MIN_MAX_NORM[] = {"min_value", "max_value", "rate", "axis", NULL};
static const char *const ARGS_NON_NEG[] = {NULL};
static const char *const ARGS_UNIT_NORM[] = {"axis", NULL};

static const char *kind_class(con_kind k)
{
    switch (k) {
    case CON_MAX_NORM: return "MaxNorm";
    case CON_MIN_MAX_NORM: return "MinMaxNorm";
    case CON_NON_NEG: return "NonNeg";
    case CON_UNIT_NORM: return "UnitNorm";
    }
    return "?";
}

static const char *const *kind_args(con_kind k)
{
    switch (k) {
    case CON_MAX_NORM: return ARGS_MAX_NORM;
    case CON_MIN_MAX_NORM: return ARGS_MIN_MAX_NORM;
    case CON_NON_NEG: return ARGS_NON_NEG;
    case CON_UNIT_NORM: return ARGS_UNIT_NORM;
    }
    return ARGS_NON_NEG;
}

/* "axis": an int or a non-empty list of distinct ints. Whether each fits the
 * weight's rank is only known at apply time; here they must fit some rank. */
static nnp_status read_axis(nnp_constraint *c, const nnp_svc_args *a, nnp_error *err)
{
    const json_t *v = nnp_svc_arg(a, "axis");
    if (!v)
        return NNP_OK;
    const char *cls = a->cls;
    if (json_is_integer(v)) {
        c->n_axes = 1;
        c->axis_is_list = 0;
        json_int_t x = json_integer_value(v);
        if (x < -NNP_MAX_RANK || x >= NNP_MAX_RANK)
            return nnp_error_set(err, NNP_ERR_INVALID,
                                 "constraint '%s': axis %lld is out of range", cls, (long long)x);
        c->axes[0] = (int)x;
        return NNP_OK;
    }
    if (!json_is_array(v))
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "constraint '%s': argument 'axis' must be an int or a list of ints",
                             cls);
    size_t n = json_array_size(v);
    if (n == 0 || n > NNP_MAX_RANK)
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "constraint '%s': axis list must hold 1 to %d ints, got %zu", cls,
                             NNP_MAX_RANK, n);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_integer(e))
            return nnp_error_set(err, NNP_ERR_INVALID,
                                 "constraint '%s': axis list entries must be ints", cls);
        json_int_t x = json_integer_value(e);
        if (x < -NNP_MAX_RANK || x >= NNP_MAX_RANK)
            return nnp_error_set(err, NNP_ERR_INVALID,
                                 "constraint '%s': axis %lld is out of range", cls, (long long)x);
        for (size_t j = 0; j < i; j++)
            if (c->axes[j] == (int)x)
                return nnp_error_set(err, NNP_ERR_INVALID,
                                     "constraint '%s': axis %lld is listed twice", cls,
                                     (long long)x);
        c->axes[i] = (int)x;
    }
    c->n_axes = (int)n;
    c->axis_is_list = 1;
    return NNP_OK;
}

nnp_status nnpi_constraint_from_jsonv(const json_t *v, nnp_constraint **out, nnp_error *err)
{
    const char *name;
    const json_t *config;
    nnp_status st;
    *out = NULL;
    if (!v || json_is_null(v))
        return NNP_OK;   /* no constraint */
    if ((st = nnp_svc_unpack(v, "constraint", &name, &config, err)))
        return st;

    /* Folded, so "max_norm", "MaxNorm", "maxnorm" (Keras 2) and "maxNorm"
       (tfjs) are one name. */
    char folded[32];
    nnp_svc_fold_name(name, folded, sizeof folded);
    nnp_constraint c = {.max_value = 2.0, .min_value = 0.0, .rate = 1.0, .n_axes = 1};
    if (strcmp(folded, "maxnorm") == 0) {
        c.kind = CON_MAX_NORM;
    } else if (strcmp(folded, "minmaxnorm") == 0) {
        c.kind = CON_MIN_MAX_NORM;
        c.max_value = 1.0;
    } else if (strcmp(folded, "nonneg") == 0) {
        c.kind = CON_NON_NEG;
    } else if (strcmp(folded, "unitnorm") == 0) {
        c.kind = CON_UNIT_NORM;
    } else {
        return nnp_error_set(err, NNP_ERR_NOT_FOUND, "unknown constraint '%s'", name);
    }

    nnp_svc_args a = {.what = "constraint", .cls = kind_class(c.kind),
                      .names = kind_args(c.kind)};
    if ((st = nnp_svc_args_collect(&a, config, err)) ||
        (st = nnp_svc_arg_double(&a, "max_value", &c.max_value, err)) ||
        (st = nnp_svc_arg_double(&a, "min_value", &c.min_value, err)) ||
        (st = nnp_svc_arg_double(&a, "rate", &c.rate, err)) || (st = read_axis(&c, &a, err)))
        return st;
    if (c.max_value < 0)
        return nnp_error_set(err, NNP_ERR_INVALID, "constraint '%s': max_value must be >= 0, got %g",
                             a.cls, c.max_value);
    if (c.min_value < 0)
        return nnp_error_set(err, NNP_ERR_INVALID, "constraint '%s': min_value must be >= 0, got %g",
                             a.cls, c.min_value);
    if (c.min_value > c.max_value)
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "constraint '%s': min_value (%g) must not exceed max_value (%g)",
                             a.cls, c.min_value, c.max_value);
    if (c.rate < 0 || c.rate > 1)
        return nnp_error_set(err, NNP_ERR_INVALID, "constraint '%s': rate must be in [0, 1], got %g",
                             a.cls, c.rate);

    nnp_constraint *p = malloc(sizeof *p);
    if (!p)
        return nnp_error_set(err, NNP_ERR_NOMEM, "constraint '%s': out of memory", a.cls);
    *p = c;
    *out = p;
    return NNP_OK;
}

nnp_status nnp_constraint_parse(const char *text, nnp_constraint **out, nnp_error *err)
{
    json_t *v;
    nnp_status st = nnp_svc_load(text, "constraint", &v, err);
    if (st) {
        *out = NULL;
        return st;
    }
    st = nnpi_constraint_from_jsonv(v, out, err);
    json_decref(v);
    return st;
}

void nnp_constraint_free(nnp_constraint *c) { free(c); }

nnp_constraint *nnp_constraint_clone(const nnp_constraint *c)
{
    if (!c)
        return NULL;
    nnp_constraint *p = malloc(sizeof *p);
    if (p)
        *p = *c;
    return p;
}

json_t *nnpi_constraint_to_jsonv(const nnp_constraint *c)
{
    if (!c)
        return json_null();
    json_t *cfg = json_object();
    if (!cfg)
        return NULL;
    int bad = 0;
    for (const char *const *n = kind_args(c->kind); *n && !bad; n++) {
        json_t *v;
        if (strcmp(*n, "axis") == 0) {
            if (c->axis_is_list) {
                v = json_array();
                for (int i = 0; v && i < c->n_axes; i++)
                    if (json_array_append_new(v, json_integer(c->axes[i]))) {
                        json_decref(v);
                        v = NULL;
                    }
            } else {
                v = json_integer(c->axes[0]);
            }
        } else if (strcmp(*n, "max_value") == 0) {
            v = json_real(c->max_value);
        } else if (strcmp(*n, "min_value") == 0) {
            v = json_real(c->min_value);
        } else {
            v = json_real(c->rate);
        }
        bad = !v || json_object_set_new(cfg, *n, v);
    }
    if (bad) {
        json_decref(cfg);
        return NULL;
    }
    return nnp_svc_spec(kind_class(c->kind), cfg);
}

char *nnp_constraint_to_json(const nnp_constraint *c)
{
    return nnp_svc_dumps(nnpi_constraint_to_jsonv(c));
}

/* ------------------------------------------------------------------ */
/* Apply                                                               */
/* ------------------------------------------------------------------ */

#define PAR_MIN 32768

/* The weight's dims split into kept dims (one norm per index of them) and
 * reduced dims (summed over), each with their element strides. */
typedef struct axis_split {
    int nk, nr;
    int64_t kdim[NNP_MAX_RANK], kstride[NNP_MAX_RANK];
    int64_t rdim[NNP_MAX_RANK], rstride[NNP_MAX_RANK];
    int64_t groups, group_size;
} axis_split;

static nnp_status split_axes(const nnp_constraint *c, const nnp_shape *s, axis_split *sp,
                             nnp_error *err)
{
    int reduce[NNP_MAX_RANK] = {0};
    for (int i = 0; i < c->n_axes; i++) {
        int ax = c->axes[i] < 0 ? c->axes[i] + s->rank : c->axes[i];
        if (ax < 0 || ax >= s->rank) {
            char sb[96];
            return nnp_error_set(err, NNP_ERR_SHAPE,
                                 "constraint '%s': axis %d is out of range for a weight of "
                                 "shape %s (rank %d)",
                                 kind_class(c->kind), c->axes[i],
                                 nnp_shape_str(s, sb, sizeof sb), s->rank);
        }
        if (reduce[ax])
            return nnp_error_set(err, NNP_ERR_SHAPE,
                                 "constraint '%s': the axis list names axis %d twice for a "
                                 "weight of rank %d", kind_class(c->kind), ax, s->rank);
        reduce[ax] = 1;
    }
    int64_t stride = 1;
    memset(sp, 0, sizeof *sp);
    sp->groups = sp->group_size = 1;
    /* Innermost dim first, so strides accumulate; order within each list
       does not matter for the sums. */
    for (int d = s->rank - 1; d >= 0; d--) {
        if (reduce[d]) {
            sp->rdim[sp->nr] = s->dims[d];
            sp->rstride[sp->nr++] = stride;
            sp->group_size *= s->dims[d];
        } else {
            sp->kdim[sp->nk] = s->dims[d];
            sp->kstride[sp->nk++] = stride;
            sp->groups *= s->dims[d];
        }
        stride *= s->dims[d];
    }
    return NNP_OK;
}

/* Offset of the j-th element of a list of (dim, stride) pairs. */
static inline int64_t offset_of(int64_t j, int n, const int64_t *dim, const int64_t *stride)
{
    int64_t off = 0;
    for (int d = 0; d < n; d++) {
        off += (j % dim[d]) * stride[d];
        j /= dim[d];
    }
    return off;
}

/* Multiplier desired / (eps + norm) for one group, per Keras. */
static inline double norm_factor(const nnp_constraint *c, double norm)
{
    double desired;
    switch (c->kind) {
    case CON_MAX_NORM:
        desired = norm < c->max_value ? norm : c->max_value;
        break;
    case CON_MIN_MAX_NORM: {
        double clipped = norm < c->min_value ? c->min_value
                       : norm > c->max_value ? c->max_value : norm;
        desired = c->rate * clipped + (1.0 - c->rate) * norm;
        break;
    }
    default:   /* UnitNorm */
        desired = 1.0;
        break;
    }
    return desired / (KERAS_EPSILON + norm);
}

nnp_status nnp_constraint_apply(const nnp_constraint *c, nnp_tensor *w, nnp_error *err)
{
    if (!c)
        return NNP_OK;   /* no constraint */
    const char *cls = kind_class(c->kind);
    if (!w)
        return nnp_error_set(err, NNP_ERR_INVALID, "constraint '%s': no weight given", cls);
    if (w->dtype != NNP_F32)
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED,
                             "constraint '%s': can only apply to float32 weights, got %s", cls,
                             nnp_dtype_name(w->dtype));
    int64_t n;
    if (nnp_shape_numel(&w->shape, &n, err))
        return nnp_error_prefix(err, "constraint '%s'", cls);
    if (n > 0 && (!w->data || w->nbytes < (size_t)n * sizeof(float)))
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "constraint '%s': weight has no storage for %lld elements", cls,
                             (long long)n);
    float *x = w->data;

    if (c->kind == CON_NON_NEG) {
        /* Keras: w * cast(w >= 0), literally (negatives become -0). */
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++)
            x[i] = x[i] * (float)(x[i] >= 0.0f);
        return NNP_OK;
    }

    axis_split sp;
    nnp_status st = split_axes(c, &w->shape, &sp, err);
    if (st || n == 0)
        return st;
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
    for (int64_t g = 0; g < sp.groups; g++) {
        int64_t base = offset_of(g, sp.nk, sp.kdim, sp.kstride);
        double sum = 0;
        for (int64_t j = 0; j < sp.group_size; j++) {
            double v = x[base + offset_of(j, sp.nr, sp.rdim, sp.rstride)];
            sum += v * v;
        }
        double f = norm_factor(c, sqrt(sum));
        for (int64_t j = 0; j < sp.group_size; j++) {
            int64_t o = base + offset_of(j, sp.nr, sp.rdim, sp.rstride);
            x[o] = (float)(x[o] * f);
        }
    }
    return NNP_OK;
}
