/* Keras losses: value, gradient and accuracy counts, accumulated in double. */
#include "nnplug/status.h"
#include "nnplug/tensor.h"
#include "nnplug/train.h"
#include "graph/train_internal.h"

#include <math.h>
#include <string.h>

/* Keras's backend epsilon, used to clip probabilities. */
#define KERAS_EPS 1e-7

nnp_status nnp_loss_parse(const char *name, int from_logits, nnp_loss *out, nnp_error *err)
{
    static const struct { const char *name; nnp_loss_kind kind; } names[] = {
        {"mse", NNP_LOSS_MSE},
        {"mean_squared_error", NNP_LOSS_MSE},
        {"MeanSquaredError", NNP_LOSS_MSE},
        {"meanSquaredError", NNP_LOSS_MSE},
        {"categorical_crossentropy", NNP_LOSS_CATEGORICAL_CE},
        {"CategoricalCrossentropy", NNP_LOSS_CATEGORICAL_CE},
        {"sparse_categorical_crossentropy", NNP_LOSS_SPARSE_CATEGORICAL_CE},
        {"SparseCategoricalCrossentropy", NNP_LOSS_SPARSE_CATEGORICAL_CE},
        {"binary_crossentropy", NNP_LOSS_BINARY_CE},
        {"BinaryCrossentropy", NNP_LOSS_BINARY_CE},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0) {
            out->kind = names[i].kind;
            out->from_logits = from_logits && names[i].kind != NNP_LOSS_MSE;
            return NNP_OK;
        }
    return nnp_error_set(err, NNP_ERR_INVALID,
                         "unknown loss '%s' (mse, categorical_crossentropy, "
                         "sparse_categorical_crossentropy, binary_crossentropy)", name);
}

const char *nnp_loss_name(const nnp_loss *l)
{
    switch (l->kind) {
    case NNP_LOSS_MSE: return "mean_squared_error";
    case NNP_LOSS_CATEGORICAL_CE: return "categorical_crossentropy";
    case NNP_LOSS_SPARSE_CATEGORICAL_CE: return "sparse_categorical_crossentropy";
    case NNP_LOSS_BINARY_CE: return "binary_crossentropy";
    }
    return "?";
}

static double target_at(const nnp_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case NNP_F32: return ((const float *)t->data)[i];
    case NNP_F64: return ((const double *)t->data)[i];
    case NNP_I64: return (double)((const int64_t *)t->data)[i];
    case NNP_I32: return ((const int32_t *)t->data)[i];
    default: return NAN;
    }
}

static int64_t argmax_row(const float *p, int64_t k)
{
    int64_t best = 0;
    for (int64_t j = 1; j < k; j++)
        if (p[j] > p[best])
            best = j;
    return best;
}

/* Per-sample categorical CE for row p (k classes) with target row t (given
 * as dense probabilities); writes dL/dp scaled by `scale` into g. */
static double cce_row(const float *p, const double *t, int64_t k, int from_logits, double scale,
                      float *g)
{
    double loss = 0;
    if (from_logits) {
        double mx = p[0], s = 0, tsum = 0;
        for (int64_t j = 1; j < k; j++)
            mx = p[j] > mx ? p[j] : mx;
        for (int64_t j = 0; j < k; j++)
            s += exp(p[j] - mx);
        double lse = mx + log(s);
        for (int64_t j = 0; j < k; j++) {
            loss += t[j] * (lse - p[j]);
            tsum += t[j];
        }
        if (g)
            for (int64_t j = 0; j < k; j++)
                g[j] = (float)(scale * (exp(p[j] - lse) * tsum - t[j]));
        return loss;
    }
    /* Keras: p / sum(p), clipped to [eps, 1 - eps], then -sum t log p. */
    double s = 0, gp_dot = 0;
    for (int64_t j = 0; j < k; j++)
        s += p[j];
    double gq[256];
    for (int64_t j = 0; j < k; j++) {
        double q = p[j] / s;
        double qc = q < KERAS_EPS ? KERAS_EPS : (q > 1 - KERAS_EPS ? 1 - KERAS_EPS : q);
        loss -= t[j] * log(qc);
        /* the clip passes the gradient inside [eps, 1 - eps] and, as
         * TensorFlow's clip does, at NaN (so it propagates) */
        double gj = !(q < KERAS_EPS || q > 1 - KERAS_EPS) ? -t[j] / qc : 0.0;
        if (j < 256)
            gq[j] = gj;
        gp_dot += gj * q;
    }
    if (g)
        for (int64_t j = 0; j < k; j++) {
            double q = p[j] / s;
            double gj = j < 256 ? gq[j]
                        : (!(q < KERAS_EPS || q > 1 - KERAS_EPS) ? -t[j] / (q) : 0.0);
            g[j] = (float)(scale * (gj - gp_dot) / s);
        }
    return loss;
}

/* Targets fit the predictions: one label per row (sparse CE), else the
 * predictions' shape (or as many values, sample by sample); CE losses have
 * 1..65536 classes. */
static nnp_status check_targets(const nnp_loss *l, const nnp_tensor *pred,
                                const nnp_tensor *target, int64_t k, int64_t rows, nnp_error *err)
{
    char a[128], b[128];
    int64_t n = pred->shape.dims[0];
    int64_t total = nnp_tensor_numel(pred);
    if (l->kind == NNP_LOSS_SPARSE_CATEGORICAL_CE) {
        int64_t tn = nnp_tensor_numel(target);
        if (tn != rows)
            return nnp_error_set(err, NNP_ERR_SHAPE, "loss %s: %lld labels for %lld predictions of "
                                 "shape %s", nnp_loss_name(l), (long long)tn, (long long)rows,
                                 nnp_shape_str(&pred->shape, a, sizeof a));
    } else if (!nnp_shape_equal(&pred->shape, &target->shape) &&
               !(nnp_tensor_numel(target) == total && target->shape.dims[0] == n)) {
        return nnp_error_set(err, NNP_ERR_SHAPE, "loss %s: targets of shape %s for predictions of "
                             "shape %s", nnp_loss_name(l), nnp_shape_str(&target->shape, a, sizeof a),
                             nnp_shape_str(&pred->shape, b, sizeof b));
    }
    if ((l->kind == NNP_LOSS_CATEGORICAL_CE || l->kind == NNP_LOSS_SPARSE_CATEGORICAL_CE) &&
        (k < 1 || k > 65536))
        return nnp_error_set(err, NNP_ERR_SHAPE, "loss %s: %lld classes", nnp_loss_name(l),
                             (long long)k);
    return NNP_OK;
}

/* Squared error summed over all total values, gradient scaled by inv; no
 * accuracy (*ok = -1). */
static double mse_loss(const float *p, const nnp_tensor *target, int64_t total, double inv,
                       float *g, double *ok)
{
    double loss = 0;
    for (int64_t i = 0; i < total; i++) {
        double d = (double)p[i] - target_at(target, i);
        loss += d * d;
        if (g)
            g[i] = (float)(2.0 * d * inv);
    }
    *ok = -1;
    return loss;
}

/* Binary cross-entropy summed over all total values, gradient scaled by
 * inv; *ok counts correct samples (rows). */
static double binary_ce_loss(const nnp_loss *l, const float *p, const nnp_tensor *target,
                             int64_t total, int64_t rows, double inv, float *g, double *ok)
{
    double loss = 0;
    *ok = 0;
    for (int64_t i = 0; i < total; i++) {
        double t = target_at(target, i), z = p[i], li, gi;
        if (l->from_logits) {
            li = (z > 0 ? z : 0) - z * t + log1p(exp(-fabs(z)));
            gi = 1.0 / (1.0 + exp(-z)) - t;
            *ok += ((z > 0) == (t > 0.5));
        } else {
            double pc = z < KERAS_EPS ? KERAS_EPS : (z > 1 - KERAS_EPS ? 1 - KERAS_EPS : z);
            li = -(t * log(pc + KERAS_EPS) + (1 - t) * log(1 - pc + KERAS_EPS));
            gi = !(z < KERAS_EPS || z > 1 - KERAS_EPS)   /* NaN passes, as above */
                     ? -(t / (pc + KERAS_EPS) - (1 - t) / (1 - pc + KERAS_EPS)) : 0.0;
            *ok += ((z > 0.5) == (t > 0.5));
        }
        loss += li;
        if (g)
            g[i] = (float)(gi * inv);
    }
    *ok = *ok * (double)rows / (double)total;  /* accuracy counts per sample */
    return loss;
}

/* Categorical cross-entropy (one-hot or soft targets, or class indices when
 * sparse) summed over rows of k classes into *loss_out, gradient scaled by
 * inv_rows; *ok counts rows whose argmax is the label. */
static nnp_status categorical_ce_loss(const nnp_loss *l, const float *p,
                                      const nnp_tensor *target, int64_t k, int64_t rows,
                                      double inv_rows, float *g, double *loss_out, double *ok,
                                      nnp_error *err)
{
    double trow[1024];
    double *t = trow;
    double loss = 0;
    *ok = 0;
    if (k > 1024)
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "loss %s: more than 1024 classes",
                             nnp_loss_name(l));
    for (int64_t r = 0; r < rows; r++) {
        int64_t label = -1;
        if (l->kind == NNP_LOSS_SPARSE_CATEGORICAL_CE) {
            double lv = target_at(target, r);
            if (!(lv >= 0 && lv < (double)k) || lv != floor(lv))
                return nnp_error_set(err, NNP_ERR_INVALID, "loss %s: label %g of sample %lld "
                                     "is not a class index in [0, %lld)", nnp_loss_name(l), lv,
                                     (long long)r, (long long)k);
            label = (int64_t)lv;
            for (int64_t j = 0; j < k; j++)
                t[j] = j == label;
        } else {
            for (int64_t j = 0; j < k; j++)
                t[j] = target_at(target, r * k + j);
            label = 0;
            for (int64_t j = 1; j < k; j++)
                if (t[j] > t[label])
                    label = j;
        }
        loss += cce_row(p + r * k, t, k, l->from_logits, inv_rows, g ? g + r * k : NULL);
        *ok += argmax_row(p + r * k, k) == label;
    }
    *loss_out = loss;
    return NNP_OK;
}

/* The loss summed over pred's values (rows for CE) into *sum, the gradient
 * scaled by 1 / (denom values), denom <= 0: pred's own count. */
static nnp_status loss_sum(const nnp_loss *l, const nnp_tensor *pred, const nnp_tensor *target,
                           double denom, double *sum, double *inv_out, nnp_tensor *grad,
                           double *correct, nnp_error *err)
{
    if (pred->dtype != NNP_F32 || pred->shape.rank < 1)
        return nnp_error_set(err, NNP_ERR_INVALID, "loss: predictions must be float32 of rank >= 1");
    int64_t n = pred->shape.dims[0];
    int64_t total = nnp_tensor_numel(pred);
    int64_t k = pred->shape.rank >= 2 ? pred->shape.dims[pred->shape.rank - 1] : 1;
    int64_t rows = k ? total / k : 0;  /* rows of the last axis */
    const float *p = pred->data;
    float *g = grad ? grad->data : NULL;
    double loss = 0, ok = 0;
    *sum = 0;
    *inv_out = 0;
    if (correct)
        *correct = 0;
    if (n == 0)
        return NNP_OK;
    nnp_status st = check_targets(l, pred, target, k, rows, err);
    if (st)
        return st;
    /* Every loss is a mean over samples of a per-sample mean over the last
     * axis (or a sum over classes for CE), so rows weigh 1/rows. */
    int ce = l->kind == NNP_LOSS_CATEGORICAL_CE || l->kind == NNP_LOSS_SPARSE_CATEGORICAL_CE;
    double inv = 1.0 / (denom > 0 ? denom : (double)(ce ? rows : total));
    switch (l->kind) {
    case NNP_LOSS_MSE:
        loss = mse_loss(p, target, total, inv, g, &ok);
        break;
    case NNP_LOSS_BINARY_CE:
        loss = binary_ce_loss(l, p, target, total, rows, inv, g, &ok);
        break;
    case NNP_LOSS_CATEGORICAL_CE:
    case NNP_LOSS_SPARSE_CATEGORICAL_CE:
        st = categorical_ce_loss(l, p, target, k, rows, inv, g, &loss, &ok, err);
        if (st)
            return st;
        break;
    default:
        return nnp_error_set(err, NNP_ERR_INVALID, "unknown loss kind %d", (int)l->kind);
    }
    *sum = loss;
    *inv_out = inv;
    if (correct)
        *correct = ok;
    return NNP_OK;
}

nnp_status nnp_loss_compute(const nnp_loss *l, const nnp_tensor *pred, const nnp_tensor *target,
                            double *loss_out, nnp_tensor *grad, double *correct, nnp_error *err)
{
    double sum, inv;
    nnp_status st = loss_sum(l, pred, target, 0, &sum, &inv, grad, correct, err);
    *loss_out = st ? 0 : sum * inv;
    return st;
}

nnp_status nnpi_loss_part(const nnp_loss *l, const nnp_tensor *pred, const nnp_tensor *target,
                          double denom, double *sum, nnp_tensor *grad, double *correct,
                          nnp_error *err)
{
    double inv;
    return loss_sum(l, pred, target, denom, sum, &inv, grad, correct, err);
}

double nnpi_loss_values_per_sample(const nnp_loss *l, const nnp_shape *pred)
{
    int64_t per = 1;
    for (int d = 1; d < pred->rank; d++)
        per *= pred->dims[d];
    int ce = l->kind == NNP_LOSS_CATEGORICAL_CE || l->kind == NNP_LOSS_SPARSE_CATEGORICAL_CE;
    int64_t k = pred->rank >= 2 ? pred->dims[pred->rank - 1] : 1;
    return (double)(ce ? (k ? per / k : 0) : per);
}
