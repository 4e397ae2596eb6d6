/* The fit loop: seeded shuffling, mini-batches, validation split, Keras's
 * per-epoch loss (batch-size weighted mean of the losses computed before
 * each update). Batch buffers are allocated once per fit. A loss that is
 * not finite is Keras's too: recorded as it is, trained on (IEEE
 * propagation), or with terminate_on_nan the last step run. */
#include "graph/train_internal.h"
#include "plugin/instance_internal.h"
#include "nnplug/dist.h"
#include "nnplug/layer.h"
#include "nnplug/rng.h"
#include "nnplug/status.h"
#include "nnplug/tensor.h"
#include "nnplug/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

nnp_train_options nnp_train_defaults(void)
{
    nnp_train_options o = {.epochs = 1, .batch_size = 32, .shuffle = 1, .seed = 0,
                           .validation_split = 0.0, .terminate_on_nan = 0, .group = NULL,
                           .initial_epoch = 0};
    return o;
}

void nnp_history_free(nnp_history *h)
{
    if (!h)
        return;
    free(h->loss);
    free(h->accuracy);
    free(h->val_loss);
    free(h->val_accuracy);
    free(h->batch_loss);
    memset(h, 0, sizeof *h);
    h->stop_epoch = h->stop_step = -1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Bytes of one sample (row along the first axis) of t. */
static size_t row_bytes(const nnp_tensor *t)
{
    int64_t n = t->shape.rank ? t->shape.dims[0] : 1;
    return n ? t->nbytes / (size_t)n : 0;
}

/* A view of rows [at, at + count) of t (no copy). */
static nnp_tensor rows_view(const nnp_tensor *t, int64_t at, int64_t count)
{
    nnp_tensor v = *t;
    v.flags = 0;
    v.data = (char *)t->data + (size_t)at * row_bytes(t);
    v.shape.dims[0] = count;
    v.nbytes = (size_t)count * row_bytes(t);
    return v;
}

/* A batch tensor whose first dim is `rows`, with t's other dims. */
static nnp_status alloc_batch(const nnp_tensor *t, int64_t rows, nnp_tensor *out, nnp_error *err)
{
    nnp_shape s = t->shape;
    if (s.rank == 0)
        return nnp_error_set(err, NNP_ERR_SHAPE, "training data must have a batch axis");
    s.dims[0] = rows;
    return nnp_tensor_alloc(out, t->dtype, &s, err);
}

static void gather(const nnp_tensor *src, const int64_t *idx, int64_t n, nnp_tensor *dst)
{
    size_t rb = row_bytes(src);
    for (int64_t i = 0; i < n; i++)
        memcpy((char *)dst->data + (size_t)i * rb, (const char *)src->data + (size_t)idx[i] * rb, rb);
    dst->shape.dims[0] = n;
    dst->nbytes = (size_t)n * rb;
}

/* Fisher-Yates with counter-based draws: the order depends on seed and
 * epoch only. */
static void shuffle(int64_t *idx, int64_t n, uint64_t seed, int epoch)
{
    uint64_t key = nnp_seed_mix(seed, "shuffle") + (uint64_t)epoch * 0x9E3779B97F4A7C15ULL;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(nnp_rng_u64(key, (uint64_t)i) % (uint64_t)(i + 1));
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

typedef struct batches {
    nnp_tensor xb, yb, grad;
    int64_t *idx;
} batches;

static void batches_free(batches *b)
{
    nnp_tensor_free(&b->xb);
    nnp_tensor_free(&b->yb);
    nnp_tensor_free(&b->grad);
    free(b->idx);
}

static nnp_status check_xy(const nnp_model *m, const nnp_tensor *x, const nnp_tensor *y,
                           nnp_error *err)
{
    if (nnp_model_n_inputs(m) != 1 || nnp_model_n_outputs(m) != 1)
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "training needs a model with one input and "
                             "one output (this one has %d and %d)", nnp_model_n_inputs(m),
                             nnp_model_n_outputs(m));
    if (x->dtype != NNP_F32)
        return nnp_error_set(err, NNP_ERR_INVALID, "x must be float32, got %s",
                             nnp_dtype_name(x->dtype));
    if (x->shape.rank < 1 || y->shape.rank < 1 || x->shape.dims[0] != y->shape.dims[0])
        return nnp_error_set(err, NNP_ERR_SHAPE, "x and y must have the same number of samples "
                             "(%lld vs %lld)", (long long)(x->shape.rank ? x->shape.dims[0] : 0),
                             (long long)(y->shape.rank ? y->shape.dims[0] : 0));
    return NNP_OK;
}

nnp_status nnp_model_evaluate(nnp_model *m, const nnp_tensor *x, const nnp_tensor *y,
                              const nnp_loss *loss, int64_t batch_size, double *loss_out,
                              double *accuracy, nnp_error *err)
{
    nnp_status st = check_xy(m, x, y, err);
    if (st)
        return st;
    int64_t n = x->shape.dims[0];
    if (batch_size <= 0)
        batch_size = 32;
    double sum = 0, correct = 0;
    for (int64_t at = 0; at < n && !st; at += batch_size) {
        int64_t b = n - at < batch_size ? n - at : batch_size;
        nnp_tensor xb = rows_view(x, at, b), yb = rows_view(y, at, b);
        const nnp_tensor *in[1] = {&xb};
        st = nnp_model_forward(m, in, 1, NNP_MODE_INFER, err);
        double l, c;
        if (st == NNP_OK)
            st = nnp_loss_compute(loss, nnp_model_output(m, 0), &yb, &l, NULL, &c, err);
        sum += l * (double)b;
        correct += c;
    }
    if (st)
        return st;
    *loss_out = n ? sum / (double)n + nnp_model_regularization_loss(m) : 0;
    if (accuracy)
        *accuracy = (loss->kind == NNP_LOSS_MSE || n == 0) ? -1 : correct / (double)n;
    return NNP_OK;
}

/* One fit: its arguments, batch buffers and sizes. */
typedef struct fit_ctx {
    nnp_model *m;
    const nnp_tensor *x, *y;
    const nnp_loss *loss;
    nnp_optimizer *opt;
    const nnp_train_options *opts;
    const nnp_train_callbacks *cb;
    nnp_history *hist;
    batches b;
    nnp_batch_split split;  /* in a group: this process's share of the step's batch */
    int64_t n, n_val, bs;   /* training samples, validation samples, batch size */
    int steps;              /* per epoch */
    /* this epoch's steps with a non-finite loss: count, first, its loss */
    int nonfinite, first_nonfinite;
    double first_nonfinite_loss;
    const nnp_group *g;     /* the data-parallel group, NULL alone */
    double *sync;           /* group_sync's buffer, kept for the fit */
    size_t sync_cap;        /* in doubles */
} fit_ctx;

/* The shuffle index, the history arrays and the batch buffers, allocated
 * once per fit. */
static nnp_status fit_alloc(fit_ctx *f, nnp_error *err)
{
    const nnp_train_options *opts = f->opts;
    nnp_history *hist = f->hist;
    f->b.idx = malloc(sizeof(int64_t) * (size_t)f->n);
    hist->loss = calloc((size_t)opts->epochs + 1, sizeof(double));
    hist->accuracy = calloc((size_t)opts->epochs + 1, sizeof(double));
    hist->val_loss = calloc((size_t)opts->epochs + 1, sizeof(double));
    hist->val_accuracy = calloc((size_t)opts->epochs + 1, sizeof(double));
    hist->batch_loss = calloc((size_t)opts->epochs * (size_t)f->steps + 1, sizeof(double));
    if (!f->b.idx || !hist->loss || !hist->accuracy || !hist->val_loss || !hist->val_accuracy ||
        !hist->batch_loss)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    nnp_status st = alloc_batch(f->x, f->bs, &f->b.xb, err);
    if (st == NNP_OK)
        st = alloc_batch(f->y, f->bs, &f->b.yb, err);
    return st;
}

/* The gradient buffer b.grad shaped like pred. */
static nnp_status grad_like(batches *b, const nnp_tensor *pred, nnp_error *err)
{
    if (!b->grad.data || b->grad.nbytes < pred->nbytes) {
        nnp_tensor_free(&b->grad);
        nnp_status st = nnp_tensor_alloc(&b->grad, NNP_F32, &pred->shape, err);
        if (st)
            return st;
    }
    b->grad.shape = pred->shape;
    b->grad.nbytes = pred->nbytes;
    return NNP_OK;
}

/* In a group: this process's share of the batch's loss, chunk by chunk,
 * summed over the group's chunks by the fixed tree (so the same bits for
 * any process count); the gradient is that of the whole batch's mean. */
static nnp_status group_loss(fit_ctx *f, const nnp_batch_split *s, const nnp_tensor *pred,
                             double *l, double *c, nnp_error *err)
{
    batches *b = &f->b;
    double denom = (double)s->batch * nnpi_loss_values_per_sample(f->loss, &pred->shape);
    nnp_reduction *r;
    nnp_status st = nnp_reduce_begin(f->g, s, NNP_F64, 2, 1, &r, err);
    for (int i = 0; i < s->count && !st; i++) {
        int64_t lo, hi;
        nnp_batch_split_chunk(s, i, &lo, &hi);
        nnp_tensor pv = rows_view(pred, lo, hi - lo), tv = rows_view(&b->yb, lo, hi - lo);
        nnp_tensor gv = rows_view(&b->grad, lo, hi - lo);
        double part[2];
        st = nnpi_loss_part(f->loss, &pv, &tv, denom, &part[0], &gv, &part[1], err);
        if (!st)
            nnp_reduce_add(r, part);
    }
    double tot[2] = {0, 0};
    if (st)
        nnp_reduce_free(r);
    else
        st = nnp_reduce_end(r, tot, err);
    *l = tot[0] * (1.0 / denom);
    *c = tot[1];
    return st;
}

/* Forward of rows idx[at, at + cnt) (in a group, this process's share of
 * them) and their loss (with the regularizers' penalties) into *l, its
 * gradient into b.grad, correct samples into *c. */
static nnp_status batch_loss(fit_ctx *f, int64_t at, int64_t cnt, double *l, double *c,
                             nnp_error *err)
{
    batches *b = &f->b;
    nnp_batch_split *s = &f->split;
    nnp_status st = NNP_OK;
    if (f->g) {
        st = nnp_batch_split_of(cnt, nnp_group_rank(f->g), nnp_group_size(f->g), s, err);
        if (st)
            return st;
        at += s->offset;
        cnt = s->samples;
    }
    gather(f->x, b->idx + at, cnt, &b->xb);
    gather(f->y, b->idx + at, cnt, &b->yb);
    const nnp_tensor *in[1] = {&b->xb};
    if (f->g)
        nnpi_batch_enter(f->g, s);   /* kinds may sum chunk by chunk over the group */
    st = nnp_model_forward(f->m, in, 1, NNP_MODE_TRAIN, err);
    nnpi_batch_enter(NULL, NULL);
    if (st)
        return st;
    const nnp_tensor *pred = nnp_model_output(f->m, 0);
    st = grad_like(b, pred, err);
    if (st)
        return st;
    st = f->g ? group_loss(f, s, pred, l, c, err)
              : nnp_loss_compute(f->loss, pred, &b->yb, l, &b->grad, c, err);
    if (st)
        return st;
    *l += nnp_model_regularization_loss(f->m);
    return NNP_OK;
}

/* In a group: every trainable weight's gradient summed over the processes
 * (one partial each, combined by the fixed tree: the same bits on every
 * process) unless the layer's kind summed it chunk by chunk over the group
 * itself (the same bits for any process count), and every other weight (moving statistics) replaced by its
 * mean over the processes (in double: equal values stay exactly equal). */
/* Whether group_sync handles weight w of layer: gradients (grads) of the
 * trainable weights of layers that did not sum their own over the group,
 * else the values of the non-trainable weights. */
static int synced(nnp_layer *layer, const nnp_weight *w, int grads)
{
    const int trainable = (w->flags & NNP_WEIGHT_TRAINABLE) && w->grad;
    return trainable == grads && !(grads && nnpi_layer_grads_summed(layer));
}

/* Copies the weights group_sync handles into buf (to_buf), or back from
 * it divided by div; returns their element count (buf NULL: only counts). */
static size_t sync_copy(nnp_model *m, int grads, double *buf, int to_buf, double div)
{
    size_t at = 0;
    for (int li = 0; li < nnp_model_n_layers(m); li++) {
        nnp_layer *layer = nnp_model_layer(m, li);
        int changed = 0;
        for (int wi = 0; wi < nnp_layer_n_weights(layer); wi++) {
            const nnp_weight *w = nnp_layer_weight(layer, wi);
            if (!synced(layer, w, grads))
                continue;
            nnp_tensor *t = grads ? w->grad : w->value;
            const size_t n = (size_t)nnp_tensor_numel(t);
            float *v = t->data;
            if (buf && to_buf)
                for (size_t i = 0; i < n; i++)
                    buf[at + i] = v[i];
            else if (buf)
                for (size_t i = 0; i < n; i++)
                    v[i] = (float)(buf[at + i] / div);
            at += n;
            changed = 1;
        }
        if (buf && !to_buf && changed && !grads)
            nnp_layer_weights_changed(layer);
    }
    return at;
}

/* After a step's backward (grads): the gradients of layers that did not sum
 * their own, summed over the group; after the optimizer step (!grads): the
 * non-trainable weights (moving statistics) averaged over it (Keras's MEAN
 * aggregation). Every such weight in one reduction, in double: each process
 * one chunk, so the sums are the same whatever the packing. */
static nnp_status group_sync(fit_ctx *f, int grads, nnp_error *err)
{
    const int size = nnp_group_size(f->g);
    const size_t n = sync_copy(f->m, grads, NULL, 0, 1.0);
    if (n == 0)
        return NNP_OK;
    if (n > f->sync_cap) {
        double *p = realloc(f->sync, n * sizeof *p);
        if (!p)
            return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
        f->sync = p;
        f->sync_cap = n;
    }
    nnp_batch_split one;
    nnp_status st = nnp_batch_split_of(size, nnp_group_rank(f->g), size, &one, err);
    nnp_reduction *r;
    if (!st)
        st = nnp_reduce_begin(f->g, &one, NNP_F64, n, 1, &r, err);
    if (st)
        return st;
    sync_copy(f->m, grads, f->sync, 1, 1.0);
    nnp_reduce_add(r, f->sync);
    st = nnp_reduce_end(r, f->sync, err);
    if (!st)
        sync_copy(f->m, grads, f->sync, 0, grads ? 1.0 : (double)size);
    return st;
}

/* Backward of the batch's loss gradient and one optimizer step, whatever
 * the loss (Keras trains on a NaN loss too). */
static nnp_status update(fit_ctx *f, nnp_error *err)
{
    const nnp_tensor *g[1] = {&f->b.grad};
    if (f->g)
        nnpi_batch_enter(f->g, &f->split);
    nnp_status st = nnp_model_backward_overwrite(f->m, g, 1, err);
    nnpi_batch_enter(NULL, NULL);
    if (st == NNP_OK && f->g)
        st = group_sync(f, 1, err);
    if (st == NNP_OK) {
        nnp_model_add_regularization_grads(f->m);
        st = nnp_optimizer_step(f->opt, err);
    }
    if (st == NNP_OK && f->g)
        st = group_sync(f, 0, err);
    return st;
}

/* Step s of epoch e had loss l: counted when not finite; 1 when
 * terminate_on_nan stops training after it (where, into the history). */
static int note_loss(fit_ctx *f, int e, int s, double l)
{
    if (isfinite(l))
        return 0;
    if (f->nonfinite++ == 0) {
        f->first_nonfinite = s;
        f->first_nonfinite_loss = l;
    }
    if (!f->opts->terminate_on_nan)
        return 0;
    f->hist->stop_epoch = e;
    f->hist->stop_step = s;
    return 1;
}

/* The steps of epoch e (samples in shuffled order): *wsum gets the
 * batch-size weighted sum of step losses, *correct the correct samples. */
static nnp_status run_epoch(fit_ctx *f, int e, double t0, double *wsum, double *correct,
                            nnp_error *err)
{
    nnp_status st = NNP_OK;
    int64_t n = f->n, bs = f->bs;
    f->nonfinite = 0;
    f->first_nonfinite = -1;
    f->first_nonfinite_loss = 0;
    for (int s = 0; s < f->steps && st == NNP_OK; s++) {
        int64_t at = (int64_t)s * bs, cnt = n - at < bs ? n - at : bs;
        double l, c;
        st = batch_loss(f, at, cnt, &l, &c, err);
        if (st)
            break;
        st = update(f, err);
        f->hist->batch_loss[f->hist->n_steps++] = l;
        *wsum += l * (double)cnt;
        *correct += c;
        if (f->cb && f->cb->on_step)
            f->cb->on_step(f->cb->user, e, s, f->steps, *wsum / (double)(at + cnt),
                           (double)(at + cnt) / (now_s() - t0 + 1e-12));
        if (st == NNP_OK && note_loss(f, e, s, l))
            break;
    }
    return st;
}

/* Epoch e's logs (validation included) into the history and to the
 * callback. */
static nnp_status end_epoch(fit_ctx *f, int e, double t0, double wsum, double correct,
                            nnp_error *err)
{
    nnp_status st = NNP_OK;
    int64_t n = f->n;
    nnp_history *hist = f->hist;
    int has_acc = f->loss->kind != NNP_LOSS_MSE;
    nnp_epoch_logs logs = {.epoch = e, .epochs = f->opts->epochs, .loss = wsum / (double)n,
                           .accuracy = has_acc ? correct / (double)n : -1, .val_loss = -1,
                           .val_accuracy = -1,
                           .samples_per_s = (double)n / (now_s() - t0 + 1e-12),
                           .steps = f->steps, .nonfinite_steps = f->nonfinite,
                           .first_nonfinite_step = f->first_nonfinite,
                           .first_nonfinite_loss = f->first_nonfinite_loss};
    if (f->n_val > 0) {
        nnp_tensor vx = rows_view(f->x, n, f->n_val), vy = rows_view(f->y, n, f->n_val);
        st = nnp_model_evaluate(f->m, &vx, &vy, f->loss, f->bs, &logs.val_loss,
                                &logs.val_accuracy, err);
    }
    hist->loss[e] = logs.loss;
    hist->accuracy[e] = logs.accuracy;
    hist->val_loss[e] = logs.val_loss;
    hist->val_accuracy[e] = logs.val_accuracy;
    hist->epochs = e + 1;
    if (st == NNP_OK && f->cb && f->cb->on_epoch_end)
        st = f->cb->on_epoch_end(f->cb->user, &logs, err);
    return st;
}

/* In a group, before the first step: every batch splits over the processes
 * (the full batch and an epoch's last, shorter one), and every process has
 * the same data and the same initial weights. */
static nnp_status group_check(fit_ctx *f, nnp_error *err)
{
    int rank = nnp_group_rank(f->g), size = nnp_group_size(f->g);
    nnp_batch_split s;
    nnp_status st = nnp_batch_split_of(f->bs, rank, size, &s, err);
    int64_t last = f->n % f->bs;
    if (!st && last) {
        st = nnp_batch_split_of(last, rank, size, &s, err);
        if (st)
            nnp_error_prefix(err, "the last batch of each epoch (%lld training samples in "
                             "batches of %lld)", (long long)f->n, (long long)f->bs);
    }
    if (!st)
        st = nnp_group_agree(f->g, "training data (x)", f->x->data, f->x->nbytes, err);
    if (!st)
        st = nnp_group_agree(f->g, "training data (y)", f->y->data, f->y->nbytes, err);
    /* the weights: one fingerprint per weight, compared at once */
    int nw = 0;
    for (int li = 0; li < nnp_model_n_layers(f->m); li++)
        nw += nnp_layer_n_weights(nnp_model_layer(f->m, li));
    uint64_t *fp = calloc((size_t)nw + 1, sizeof *fp);
    if (!st && !fp)
        st = nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    for (int li = 0, k = 0; !st && li < nnp_model_n_layers(f->m); li++) {
        nnp_layer *layer = nnp_model_layer(f->m, li);
        for (int wi = 0; wi < nnp_layer_n_weights(layer); wi++, k++) {
            const nnp_tensor *t = nnp_layer_weight(layer, wi)->value;
            const unsigned char *p = t->data;
            uint64_t h = 1469598103934665603ULL;
            for (size_t i = 0; i < t->nbytes; i++)
                h = (h ^ p[i]) * 1099511628211ULL;
            fp[k] = h;
        }
    }
    if (!st)
        st = nnp_group_agree(f->g, "model (its weights before training)", fp,
                             sizeof *fp * (size_t)nw, err);
    free(fp);
    return st;
}

nnp_status nnp_model_fit(nnp_model *m, const nnp_tensor *x, const nnp_tensor *y,
                         const nnp_loss *loss, nnp_optimizer *opt,
                         const nnp_train_options *opts, const nnp_train_callbacks *cb,
                         nnp_history *hist, nnp_error *err)
{
    nnp_status st = check_xy(m, x, y, err);
    if (st)
        return st;
    if (opts->epochs < 0 || opts->batch_size <= 0 || !(opts->validation_split >= 0) ||
        !(opts->validation_split < 1))
        return nnp_error_set(err, NNP_ERR_INVALID, "fit: epochs >= 0, batch size > 0 and "
                             "validation split in [0, 1) are required");
    int64_t total = x->shape.dims[0];
    /* Keras takes the validation samples from the end, before shuffling. */
    int64_t n_val = (int64_t)floor((double)total * opts->validation_split);
    int64_t n = total - n_val;
    if (n <= 0)
        return nnp_error_set(err, NNP_ERR_INVALID, "fit: no training samples left after the "
                             "validation split");
    fit_ctx f = {.m = m, .x = x, .y = y, .loss = loss, .opt = opt, .opts = opts, .cb = cb,
                 .hist = hist, .n = n, .n_val = n_val, .g = opts->group};
    f.bs = opts->batch_size < n ? opts->batch_size : n;
    f.steps = (int)((n + f.bs - 1) / f.bs);
    memset(hist, 0, sizeof *hist);
    hist->stop_epoch = hist->stop_step = -1;
    if (f.g && (st = group_check(&f, err)) != NNP_OK)
        return st;
    st = fit_alloc(&f, err);
    for (int e = opts->initial_epoch > 0 ? opts->initial_epoch : 0; e < opts->epochs && st == NNP_OK;
         e++) {
        for (int64_t i = 0; i < n; i++)
            f.b.idx[i] = i;
        if (opts->shuffle)
            shuffle(f.b.idx, n, opts->seed, e);
        double t0 = now_s(), wsum = 0, correct = 0;
        st = run_epoch(&f, e, t0, &wsum, &correct, err);
        if (st == NNP_OK && hist->stop_epoch >= 0)
            break;   /* terminate_on_nan: the epoch ends with no logs */
        if (st == NNP_OK)
            st = end_epoch(&f, e, t0, wsum, correct, err);
    }
    batches_free(&f.b);
    free(f.sync);
    if (st)
        nnp_history_free(hist);
    return st;
}

nnp_status nnp_model_predict(nnp_model *m, const nnp_tensor *x, int64_t batch_size,
                             nnp_tensor *out, nnp_error *err)
{
    memset(out, 0, sizeof *out);
    if (nnp_model_n_inputs(m) != 1 || nnp_model_n_outputs(m) != 1)
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "predict needs one input and one output");
    if (x->shape.rank < 1)
        return nnp_error_set(err, NNP_ERR_SHAPE, "predict: x needs a batch axis");
    int64_t n = x->shape.dims[0];
    if (batch_size <= 0)
        batch_size = 32;
    nnp_status st = NNP_OK;
    for (int64_t at = 0; at < n && !st; at += batch_size) {
        int64_t b = n - at < batch_size ? n - at : batch_size;
        nnp_tensor xb = rows_view(x, at, b);
        const nnp_tensor *in[1] = {&xb};
        st = nnp_model_forward(m, in, 1, NNP_MODE_INFER, err);
        if (st)
            break;
        const nnp_tensor *y = nnp_model_output(m, 0);
        if (!out->data) {
            nnp_shape s = y->shape;
            s.dims[0] = n;
            st = nnp_tensor_alloc(out, NNP_F32, &s, err);
            if (st)
                break;
        }
        memcpy((char *)out->data + (size_t)at * row_bytes(out), y->data, y->nbytes);
    }
    if (st)
        nnp_tensor_free(out);
    return st;
}
