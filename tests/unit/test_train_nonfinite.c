/* Non-finite losses in nnp_model_fit, as Keras treats them: training goes
 * on (NaN and Inf propagate only where they reach), each epoch's logs name
 * the first non-finite step, and terminate_on_nan stops after that step
 * (Keras's TerminateOnNaN) with the history saying where. The weights are
 * checked against a float64 reference of Keras's formulas written here
 * (BatchNormalization's moving update in Keras's form,
 * moving -= (moving - batch) * (1 - momentum), SGD on gamma and beta). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "testutil.h"

#define C 3        /* features */
#define N 12       /* samples */
#define BS 4       /* batch size: 3 steps per epoch */
#define BAD_ROW 5  /* the sample with a NaN ... */
#define BAD_COL 1  /* ... in this feature: step 2 of every epoch */
#define LR 0.1
#define MOMENTUM 0.9
#define EPS 1e-3

static nnp_registry *reg;
static void setup(void) { reg = tu_registry(); }
static void teardown(void) { nnp_registry_free(reg); }

static const char bn_json[] =
    "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"m\", \"layers\": ["
    "{\"class_name\": \"InputLayer\", \"config\": {\"name\": \"x\", \"batch_shape\": [null, 3]}},"
    "{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"bn\", \"momentum\": 0.9}}"
    "]}}";

static nnp_model *load(const char *json)
{
    nnp_model *m;
    nnp_error err = {0};
    cr_assert_eq(nnp_keras_load_string(reg, json, "test", &m, &err), NNP_OK, "%s", err.msg);
    return m;
}

static const float *weight(const nnp_model *m, const char *name)
{
    const nnp_weight *w = nnp_layer_weight_by_name(nnp_model_layer(m, 0), name);
    cr_assert_not_null(w, "no weight %s", name);
    return w->value->data;
}

/* x [N, C] with a NaN at (BAD_ROW, BAD_COL) when nan != 0, y [N, C]. */
static void make_data(nnp_tensor *x, nnp_tensor *y, int nan)
{
    nnp_error err = {0};
    nnp_shape s = {2, {N, C}};
    cr_assert_eq(nnp_tensor_alloc(x, NNP_F32, &s, &err), NNP_OK);
    cr_assert_eq(nnp_tensor_alloc(y, NNP_F32, &s, &err), NNP_OK);
    float *xv = x->data, *yv = y->data;
    for (int i = 0; i < N * C; i++) {
        xv[i] = (float)(1.5 * nnp_rng_normal(11, (uint64_t)i) + 0.5 * (i % C));
        yv[i] = (float)(0.8 * nnp_rng_normal(12, (uint64_t)i) + 0.3);
    }
    if (nan)
        xv[BAD_ROW * C + BAD_COL] = NAN;
}

/* Keras on the BN-only model, in float64: per step the batch mean and
 * biased variance, y = gamma*xhat + beta, MSE (mean over every element),
 * SGD on gamma and beta, and the moving update in Keras's form. Channels
 * are independent: a NaN in one stays in it. loss[step] per step. */
typedef struct bn_ref {
    double gamma[C], beta[C], mm[C], mv[C];
    double loss[64];
    int steps;
} bn_ref;

static void ref_step(bn_ref *r, const float *x, const float *y, int at, int b)
{
    double loss = 0;
    for (int c = 0; c < C; c++) {
        double mu = 0, var = 0, dg = 0, db = 0;
        for (int i = at; i < at + b; i++)
            mu += x[i * C + c];
        mu /= b;
        for (int i = at; i < at + b; i++)
            var += (x[i * C + c] - mu) * (x[i * C + c] - mu);
        var /= b;
        for (int i = at; i < at + b; i++) {
            double xhat = (x[i * C + c] - mu) / sqrt(var + EPS);
            double d = r->gamma[c] * xhat + r->beta[c] - y[i * C + c];
            loss += d * d / (b * C);
            double dy = 2 * d / (b * C);
            dg += dy * xhat;
            db += dy;
        }
        r->gamma[c] -= LR * dg;
        r->beta[c] -= LR * db;
        r->mm[c] -= (r->mm[c] - mu) * (1 - MOMENTUM);
        r->mv[c] -= (r->mv[c] - var) * (1 - MOMENTUM);
    }
    r->loss[r->steps++] = loss;
}

static void ref_run(bn_ref *r, const nnp_tensor *x, const nnp_tensor *y, int epochs)
{
    for (int c = 0; c < C; c++)
        r->gamma[c] = 1, r->beta[c] = 0, r->mm[c] = 0, r->mv[c] = 1;
    r->steps = 0;
    for (int e = 0; e < epochs; e++)
        for (int at = 0; at < N; at += BS)
            ref_step(r, x->data, y->data, at, BS);
}

/* The weights against the reference: equal within float32 rounding where
 * the reference is finite, NaN exactly where it is NaN; the moving mean NaN
 * in channel BAD_COL alone when nan != 0, else nowhere. */
static void check_weights(const nnp_model *m, const bn_ref *r, int nan)
{
    const char *names[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
    const double *want[4] = {r->gamma, r->beta, r->mm, r->mv};
    for (int k = 0; k < 4; k++)
        tu_assert_close_f32(names[k], weight(m, names[k]), want[k], C, 1e-5, 1e-6);
    for (int c = 0; c < C; c++)
        cr_assert(nan && c == BAD_COL ? isnan(weight(m, "moving_mean")[c])
                               : isfinite(weight(m, "moving_mean")[c]),
                  "moving_mean[%d] = %g", c, weight(m, "moving_mean")[c]);
}

typedef struct seen {
    nnp_epoch_logs logs[8];
    int epochs, steps;
} seen;

static void on_step(void *user, int epoch, int step, int steps, double loss, double sps)
{
    (void)epoch, (void)step, (void)steps, (void)loss, (void)sps;
    ((seen *)user)->steps++;
}

static nnp_status on_epoch_end(void *user, const nnp_epoch_logs *logs, nnp_error *err)
{
    (void)err;
    seen *s = user;
    cr_assert_lt(s->epochs, 8);
    s->logs[s->epochs++] = *logs;
    return NNP_OK;
}

static nnp_status fit(nnp_model *m, const nnp_tensor *x, const nnp_tensor *y, double lr,
                      int64_t bs, int epochs, int terminate, seen *s, nnp_history *h)
{
    nnp_error err = {0};
    nnp_optimizer_config oc = nnp_optimizer_defaults(NNP_OPT_SGD);
    oc.learning_rate = lr;
    nnp_optimizer *opt;
    cr_assert_eq(nnp_optimizer_new(&oc, m, &opt, &err), NNP_OK, "%s", err.msg);
    nnp_loss loss;
    cr_assert_eq(nnp_loss_parse("mse", 0, &loss, &err), NNP_OK);
    nnp_train_options to = nnp_train_defaults();
    cr_assert_eq(to.terminate_on_nan, 0, "Keras's default: training goes on");
    to.epochs = epochs;
    to.batch_size = bs;
    to.shuffle = 0;
    to.terminate_on_nan = terminate;
    nnp_train_callbacks cb = {s, on_step, on_epoch_end};
    nnp_status st = nnp_model_fit(m, x, y, &loss, opt, &to, &cb, h, &err);
    cr_assert_eq(st, NNP_OK, "%s", err.msg);
    nnp_optimizer_free(opt);
    return st;
}

/* Without the NaN the model trains as the reference: the check itself
 * holds where every value is finite. */
Test(train_nonfinite, finite_run_matches_reference, .init = setup, .fini = teardown)
{
    nnp_model *m = load(bn_json);
    nnp_tensor x, y;
    make_data(&x, &y, 0);
    seen s = {0};
    nnp_history h;
    fit(m, &x, &y, LR, BS, 2, 0, &s, &h);
    bn_ref r;
    ref_run(&r, &x, &y, 2);
    tu_assert_close("batch losses", h.batch_loss, r.loss, r.steps, 1e-5, 1e-7);
    for (int k = 0; k < 4; k++)
        cr_assert(isfinite(weight(m, (const char *[]){"gamma", "beta", "moving_mean",
                                                      "moving_variance"}[k])[BAD_COL]));
    check_weights(m, &r, 0);
    cr_assert_eq(s.logs[0].first_nonfinite_step, -1);
    cr_assert_eq(s.logs[0].nonfinite_steps, 0);
    cr_assert_eq(h.stop_epoch, -1);
    nnp_history_free(&h);
    nnp_tensor_free(&x);
    nnp_tensor_free(&y);
    nnp_model_free(m);
}

/* A NaN in one feature: training goes on; only that feature's channel of
 * every BN weight becomes NaN, the others follow the reference; each
 * epoch's logs name its first non-finite step. */
Test(train_nonfinite, default_goes_on, .init = setup, .fini = teardown)
{
    nnp_model *m = load(bn_json);
    nnp_tensor x, y;
    make_data(&x, &y, 1);
    seen s = {0};
    nnp_history h;
    fit(m, &x, &y, LR, BS, 3, 0, &s, &h);
    bn_ref r;
    ref_run(&r, &x, &y, 3);
    cr_assert_eq(h.epochs, 3);
    cr_assert_eq(h.stop_epoch, -1);
    cr_assert_eq(h.stop_step, -1);
    cr_assert_eq(h.n_steps, r.steps);
    cr_assert_eq(s.epochs, 3);
    cr_assert_eq(s.steps, 9);
    /* the reference's NaN steps: 2 of epoch 1 (the NaN sample), then every
     * step (gamma and beta of the channel are NaN) */
    cr_assert(isfinite(r.loss[0]) && isnan(r.loss[1]));
    tu_assert_close("batch losses", h.batch_loss, r.loss, r.steps, 1e-5, 1e-7);
    for (int e = 0; e < 3; e++) {
        const nnp_epoch_logs *l = &s.logs[e];
        int first = -1, count = 0;
        for (int k = 0; k < 3; k++)
            if (!isfinite(r.loss[e * 3 + k])) {
                count++;
                first = first < 0 ? k : first;
            }
        cr_assert_eq(l->steps, 3);
        cr_assert_eq(l->first_nonfinite_step, first, "epoch %d: first %d, expected %d", e,
                     l->first_nonfinite_step, first);
        cr_assert_eq(l->nonfinite_steps, count);
        cr_assert(isnan(l->first_nonfinite_loss));
        cr_assert(isnan(l->loss) && isnan(h.loss[e]));
    }
    cr_assert_eq(s.logs[0].first_nonfinite_step, BAD_ROW / BS);
    check_weights(m, &r, 1);
    nnp_history_free(&h);
    nnp_tensor_free(&x);
    nnp_tensor_free(&y);
    nnp_model_free(m);
}

/* terminate_on_nan: the stopping step still runs (its update included, as
 * in Keras), nothing after it; its epoch gets no logs. */
Test(train_nonfinite, terminate_on_nan_stops_after_the_step, .init = setup, .fini = teardown)
{
    nnp_model *m = load(bn_json);
    nnp_tensor x, y;
    make_data(&x, &y, 1);
    seen s = {0};
    nnp_history h;
    fit(m, &x, &y, LR, BS, 3, 1, &s, &h);
    cr_assert_eq(h.stop_epoch, 0);
    cr_assert_eq(h.stop_step, BAD_ROW / BS);
    cr_assert_eq(h.epochs, 0);
    cr_assert_eq(s.epochs, 0, "no logs for the stopped epoch");
    cr_assert_eq(s.steps, BAD_ROW / BS + 1);
    cr_assert_eq(h.n_steps, BAD_ROW / BS + 1);
    cr_assert(isnan(h.batch_loss[h.n_steps - 1]));
    /* the reference after the same two steps */
    bn_ref r;
    ref_run(&r, &x, &y, 0);
    for (int at = 0; at <= BAD_ROW / BS * BS; at += BS)
        ref_step(&r, x.data, y.data, at, BS);
    check_weights(m, &r, 1);
    nnp_history_free(&h);
    cr_assert_eq(h.stop_epoch, -1, "a freed history says it did not stop");
    nnp_tensor_free(&x);
    nnp_tensor_free(&y);
    nnp_model_free(m);
}

/* Divergence in a later epoch: x = 1, y = 0, w <- w - lr*2w = -10 w per
 * step until w overflows float. The stop is where a float32 rerun of the
 * same SGD steps first meets a non-finite loss; the epochs before it are
 * finished and logged. */
Test(train_nonfinite, terminate_on_nan_in_a_later_epoch, .init = setup, .fini = teardown)
{
    nnp_model *m = load(
        "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"d\", \"layers\": ["
        "{\"class_name\": \"InputLayer\", \"config\": {\"name\": \"x\","
        " \"batch_shape\": [null, 1]}},"
        "{\"class_name\": \"Dense\", \"config\": {\"name\": \"d\", \"units\": 1,"
        " \"use_bias\": false,"
        " \"kernel_initializer\": {\"class_name\": \"Ones\", \"config\": {}}}}]}}");
    nnp_error err = {0};
    nnp_shape sh = {2, {8, 1}};
    nnp_tensor x, y;
    cr_assert_eq(nnp_tensor_alloc(&x, NNP_F32, &sh, &err), NNP_OK);
    cr_assert_eq(nnp_tensor_alloc(&y, NNP_F32, &sh, &err), NNP_OK);
    for (int i = 0; i < 8; i++)
        ((float *)x.data)[i] = 1.0f, ((float *)y.data)[i] = 0.0f;
    int stop = -1;
    float w = 1.0f;
    for (int k = 0; k < 1000 && stop < 0; k++) {
        double l = (double)w * (double)w;
        if (!isfinite(l))
            stop = k;
        w -= 5.5f * (float)(2.0 * (double)w);
    }
    cr_assert(stop >= 8, "the float32 rerun diverges after the first epoch (step %d)", stop);
    seen s = {0};
    nnp_history h;
    fit(m, &x, &y, 5.5, 1, 100, 1, &s, &h);
    cr_assert_eq(h.stop_epoch, stop / 8, "stopped in epoch %d, expected %d", h.stop_epoch,
                 stop / 8);
    cr_assert_eq(h.stop_step, stop % 8);
    cr_assert_eq(h.epochs, stop / 8);
    cr_assert_eq(s.epochs, stop / 8);
    cr_assert_eq(h.n_steps, stop + 1);
    for (int k = 0; k < stop; k++)
        cr_assert(isfinite(h.batch_loss[k]), "step %d: %g", k, h.batch_loss[k]);
    cr_assert(!isfinite(h.batch_loss[stop]));
    for (int e = 0; e < s.epochs; e++)
        cr_assert_eq(s.logs[e].first_nonfinite_step, -1);
    nnp_history_free(&h);
    nnp_tensor_free(&x);
    nnp_tensor_free(&y);
    nnp_model_free(m);
}

/* Keras's moving update, moving -= (moving - batch) * (1 - momentum): an
 * infinite moving mean meets a finite batch as Inf - Inf = NaN (the form
 * moving*momentum + batch*(1 - momentum) would keep Inf). Plain and per
 * time step under TimeDistributed. */
static void inf_moving_mean(const char *json, const nnp_shape *xs, int64_t rows)
{
    nnp_model *m = load(json);
    nnp_error err = {0};
    nnp_tensor x;
    cr_assert_eq(nnp_tensor_alloc(&x, NNP_F32, xs, &err), NNP_OK);
    float *xv = x.data;
    for (int64_t i = 0; i < nnp_tensor_numel(&x); i++)
        xv[i] = (float)(nnp_rng_normal(21, (uint64_t)i) + 0.25 * (double)(i % C));
    const nnp_weight *mm = nnp_layer_weight_by_name(nnp_model_layer(m, 0), "moving_mean");
    cr_assert_not_null(mm);
    float *mv = mm->value->data;
    mv[0] = INFINITY;
    mv[1] = -INFINITY;
    nnp_model_weights_changed(m);
    const nnp_tensor *in[1] = {&x};
    cr_assert_eq(nnp_model_forward(m, in, 1, NNP_MODE_TRAIN, &err), NNP_OK, "%s", err.msg);
    cr_assert(isnan(mv[0]) && isnan(mv[1]), "moving mean %g %g, expected NaN", mv[0], mv[1]);
    /* channel 2: the moving mean after as many updates as x has time steps
     * (one without a time axis), each with the batch mean of its rows */
    int64_t steps = nnp_tensor_numel(&x) / (rows * C);
    double want = 0;
    for (int64_t t = 0; t < steps; t++) {
        double mu = 0;
        for (int64_t n = 0; n < rows; n++)
            mu += xv[(n * steps + t) * C + 2];
        want -= (want - mu / (double)rows) * (1 - 0.99);
    }
    cr_assert(fabs(mv[2] - want) <= 1e-6 + 1e-5 * fabs(want), "moving mean %g, expected %g",
              mv[2], want);
    nnp_tensor_free(&x);
    nnp_model_free(m);
}

Test(train_nonfinite, inf_moving_mean_becomes_nan, .init = setup, .fini = teardown)
{
    nnp_shape s = {2, {6, C}};
    inf_moving_mean("{\"class_name\": \"Sequential\", \"config\": {\"name\": \"m\", \"layers\": ["
                    "{\"class_name\": \"InputLayer\", \"config\": {\"name\": \"x\", "
                    "\"batch_shape\": [null, 3]}},"
                    "{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"bn\"}}]}}",
                    &s, 6);
}

Test(train_nonfinite, inf_moving_mean_becomes_nan_per_time_step, .init = setup,
     .fini = teardown)
{
    nnp_shape s = {3, {5, 4, C}};
    inf_moving_mean("{\"class_name\": \"Sequential\", \"config\": {\"name\": \"m\", \"layers\": ["
                    "{\"class_name\": \"InputLayer\", \"config\": {\"name\": \"x\", "
                    "\"batch_shape\": [null, 4, 3]}},"
                    "{\"class_name\": \"TimeDistributed\", \"config\": {\"name\": \"td\", "
                    "\"layer\": {\"class_name\": \"BatchNormalization\", \"config\": "
                    "{\"name\": \"bn\"}}}}]}}",
                    &s, 5);
}
