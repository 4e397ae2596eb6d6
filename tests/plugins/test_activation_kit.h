/* Test kit for the core layer plugins (activation, dense, conv2d, pooling,
 * shape_ops): layer setup through the public API, deterministic random
 * data, Keras activations in double precision, a finite-difference gradient
 * check, and a thread-count determinism check. Header-only, static: each
 * suite compiles its own copy. */
#ifndef NNP_TEST_LAYER_KIT_H
#define NNP_TEST_LAYER_KIT_H

#include "common/testutil.h"
#include "nnplug/layer.h"
#include "nnplug/onnx.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* setup                                                               */
/* ------------------------------------------------------------------ */

static nnp_registry *kit_reg;

static inline void kit_setup(void) { kit_reg = tu_registry(); }
static inline void kit_teardown(void)
{
    nnp_registry_free(kit_reg);
    kit_reg = NULL;
}

static inline nnp_shape kit_shape_arr(const int64_t *d, int rank)
{
    nnp_shape s;
    memset(&s, 0, sizeof s);
    s.rank = rank;
    for (int i = 0; i < rank; i++)
        s.dims[i] = d[i];
    return s;
}
/* KS(4, 3, 5): a shape from its dims. */
#define KS(...)                                        \
    kit_shape_arr((const int64_t[]){__VA_ARGS__},     \
                  (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))

static inline int64_t kit_numel(const nnp_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        n *= s->dims[i];
    return n;
}

static inline int kit_same_shape(const nnp_shape *a, const nnp_shape *b)
{
    if (a->rank != b->rank)
        return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return 0;
    return 1;
}

static inline nnp_layer *kit_layer(const char *kind, const char *json)
{
    nnp_layer *l = NULL;
    nnp_error err = {0};
    nnp_status st = nnp_layer_new(kit_reg, kind, json, &l, &err);
    cr_assert_eq(st, NNP_OK, "%s %s: %s", kind, json ? json : "{}", err.msg);
    return l;
}

/* Creating or building that must fail: returns the status, message in err. */
static inline nnp_status kit_layer_fails(const char *kind, const char *json, int n_in,
                                  const nnp_shape *in, nnp_error *err)
{
    nnp_layer *l = NULL;
    memset(err, 0, sizeof *err);
    nnp_status st = nnp_layer_new(kit_reg, kind, json, &l, err);
    if (st != NNP_OK)
        return st;
    nnp_shape out;
    st = nnp_layer_build(l, n_in, in, &out, err);
    nnp_layer_free(l);
    return st;
}

static inline nnp_shape kit_build(nnp_layer *l, int n_in, const nnp_shape *in)
{
    nnp_shape out;
    nnp_error err = {0};
    nnp_status st = nnp_layer_build(l, n_in, in, &out, &err);
    cr_assert_eq(st, NNP_OK, "build: %s", err.msg);
    return out;
}

static inline nnp_tensor kit_tensor(const nnp_shape *s)
{
    nnp_tensor t;
    nnp_error err = {0};
    cr_assert_eq(nnp_tensor_alloc(&t, NNP_F32, s, &err), NNP_OK, "%s", err.msg);
    return t;
}

static uint64_t kit_rng_state = 1;
static inline void kit_seed(uint64_t s) { kit_rng_state = s * 0x9e3779b97f4a7c15ull + 1; }
static inline double kit_uniform(void)
{
    uint64_t z = (kit_rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}
static inline void kit_fill(nnp_tensor *t, double lo, double hi)
{
    float *p = t->data;
    int64_t n = kit_numel(&t->shape);
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)(lo + (hi - lo) * kit_uniform());
}

static inline float *kit_data(const nnp_tensor *t) { return (float *)t->data; }

static inline const nnp_weight *kit_weight(nnp_layer *l, const char *name)
{
    const nnp_weight *w = nnp_layer_weight_by_name(l, name);
    cr_assert(w, "no weight '%s'", name);
    return w;
}

/* Fills every trainable weight with uniform values in [lo, hi]. */
static inline void kit_randomize_weights(nnp_layer *l, double lo, double hi)
{
    for (int i = 0; i < nnp_layer_n_weights(l); i++)
        kit_fill(nnp_layer_weight(l, i)->value, lo, hi);
}

static inline void kit_forward(nnp_layer *l, nnp_tensor *const *in, int n_in,
                               nnp_tensor *out, nnp_mode mode)
{
    nnp_error err = {0};
    /* the checks write weight values between forwards, as an application may */
    nnp_layer_weights_changed(l);
    nnp_status st = nnp_layer_forward(l, (const nnp_tensor *const *)in, n_in, out, mode, &err);
    cr_assert_eq(st, NNP_OK, "forward: %s", err.msg);
}

static inline void kit_backward(nnp_layer *l, nnp_tensor *const *in, int n_in,
                                const nnp_tensor *out, const nnp_tensor *gy,
                                nnp_tensor *const *gx, nnp_mode mode)
{
    nnp_error err = {0};
    nnp_status st = nnp_layer_backward(l, (const nnp_tensor *const *)in, n_in, out, gy, gx, mode,
                                       &err);
    cr_assert_eq(st, NNP_OK, "backward: %s", err.msg);
}

/* ------------------------------------------------------------------ */
/* Keras activations in double precision                               */
/* ------------------------------------------------------------------ */

static inline double kit_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* Elementwise Keras activation (not softmax). */
static inline double kit_act(const char *name, double x)
{
    if (!name || !strcmp(name, "linear"))
        return x;
    if (!strcmp(name, "relu"))
        return x > 0 ? x : 0;
    if (!strcmp(name, "sigmoid"))
        return kit_sigmoid(x);
    if (!strcmp(name, "tanh"))
        return tanh(x);
    if (!strcmp(name, "elu"))
        return x > 0 ? x : exp(x) - 1;
    if (!strcmp(name, "selu"))
        return 1.0507009873554804934193349852946 *
               (x > 0 ? x : 1.6732632423543772848170429916717 * (exp(x) - 1));
    if (!strcmp(name, "softplus"))
        return log1p(exp(x));
    if (!strcmp(name, "softsign"))
        return x / (1 + fabs(x));
    if (!strcmp(name, "gelu"))
        return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    if (!strcmp(name, "gelu_new"))
        return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    if (!strcmp(name, "swish") || !strcmp(name, "silu"))
        return x * kit_sigmoid(x);
    if (!strcmp(name, "hard_sigmoid"))
        return fmin(fmax(0.2 * x + 0.5, 0), 1);
    if (!strcmp(name, "hard_silu") || !strcmp(name, "hard_swish"))
        return x * fmin(fmax(x + 3, 0), 6) / 6;
    if (!strcmp(name, "exponential"))
        return exp(x);
    if (!strcmp(name, "relu6"))
        return fmin(fmax(x, 0), 6);
    if (!strcmp(name, "leaky_relu"))
        return x > 0 ? x : 0.2 * x;
    if (!strcmp(name, "mish"))
        return x * tanh(log1p(exp(x)));
    cr_assert_fail("kit_act: unknown activation %s", name);
    return 0;
}

/* Applies a Keras activation in place on rows of length n (softmax and
 * log_softmax over each row). */
static inline void kit_act_rows(const char *name, double *z, int64_t rows, int64_t n)
{
    int sm = name && !strcmp(name, "softmax"), lsm = name && !strcmp(name, "log_softmax");
    for (int64_t r = 0; r < rows; r++) {
        double *v = z + r * n;
        if (sm || lsm) {
            double m = -INFINITY, s = 0;
            for (int64_t i = 0; i < n; i++)
                m = fmax(m, v[i]);
            for (int64_t i = 0; i < n; i++)
                s += exp(v[i] - m);
            for (int64_t i = 0; i < n; i++)
                v[i] = sm ? exp(v[i] - m) / s : v[i] - m - log(s);
        } else {
            for (int64_t i = 0; i < n; i++)
                v[i] = kit_act(name, v[i]);
        }
    }
}

/* ------------------------------------------------------------------ */
/* finite differences                                                  */
/* ------------------------------------------------------------------ */

typedef struct kit_gc {
    double h;            /* step */
    double rtol, atol;   /* |fd - analytic| <= atol + rtol |analytic| */
    int max_checks;      /* elements checked per tensor (spread evenly) */
    nnp_mode mode;
    const char *label;   /* printed with a failure */
    int checked, skipped;
} kit_gc;

/* L = sum r * y after a forward. With y0 (the unperturbed output) also
 * returns in *scale the size of the terms that changed, sum |r| max(|y|,
 * |y0|): float32 rounding of L's differences is about 1.2e-7 times that. */
static inline double kit_objective(nnp_layer *l, nnp_tensor *const *in, int n_in,
                                   nnp_tensor *out, const float *r, nnp_mode mode,
                                   const float *y0, double *scale)
{
    kit_forward(l, in, n_in, out, mode);
    const float *y = out->data;
    double s = 0, sc = 0;
    int64_t n = kit_numel(&out->shape);
    for (int64_t i = 0; i < n; i++) {
        s += (double)r[i] * y[i];
        if (y0 && y[i] != y0[i])
            sc += fabs((double)r[i]) * fmax(fabs((double)y[i]), fabs((double)y0[i]));
    }
    if (scale)
        *scale = sc;
    return s;
}

/* Checks d/dp of L = sum r * y for every element of p (up to max_checks)
 * with central differences, within atol + rtol |analytic| plus the float32
 * rounding of L's differences divided by the step. An element whose steps
 * straddle a kink (relu, max) is detected and skipped: there the second
 * difference changes with the step (for a smooth L it is f'' + O(h^2) at
 * both h and h/2). */
static inline void kit_fd_tensor(kit_gc *g, const char *what, nnp_layer *l,
                                 nnp_tensor *const *in, int n_in, nnp_tensor *out,
                                 const float *r, float *p, int64_t n, const float *analytic)
{
    const double eps = 1.2e-7;
    const double L0 = kit_objective(l, in, n_in, out, r, g->mode, NULL, NULL);
    float *y0 = malloc(out->nbytes ? out->nbytes : 1);
    memcpy(y0, out->data, out->nbytes);
    int64_t stride = n > g->max_checks ? (n + g->max_checks - 1) / g->max_checks : 1;
    for (int64_t i = (stride > 1 ? (int64_t)(kit_uniform() * (double)stride) : 0); i < n;
         i += stride) {
        const float keep = p[i];
        double L[4], step[4], sc = 0;
        const double hs[4] = {g->h, -g->h, g->h / 2, -g->h / 2};
        for (int k = 0; k < 4; k++) {
            double s1;
            p[i] = (float)(keep + hs[k]);
            step[k] = (double)p[i] - keep; /* the step actually taken in float */
            L[k] = kit_objective(l, in, n_in, out, r, g->mode, y0, &s1);
            sc = fmax(sc, s1);
        }
        p[i] = keep;
        const double h = step[0] - step[1], h2 = step[2] - step[3];
        const double fd = (L[0] - L[1]) / h;
        const double d2a = 2 * ((L[0] - L0) / step[0] + (L[1] - L0) / -step[1]) / h;
        const double d2b = 2 * ((L[2] - L0) / step[2] + (L[3] - L0) / -step[3]) / h2;
        const double noise_fd = 4 * eps * sc / h;
        const double noise_d2 = 16 * eps * sc / (h2 * h2);
        const double a = analytic[i];
        if (fabs(d2a - d2b) > 0.1 * fmax(fabs(d2a), fabs(d2b)) + 0.02 + noise_d2) {
            g->skipped++;
            continue;
        }
        g->checked++;
        cr_assert(fabs(fd - a) <= g->atol + g->rtol * fabs(a) + noise_fd,
                  "%s %s[%lld]: analytic %.7g, finite difference %.7g (|diff| %.3g, rounding "
                  "%.3g)",
                  g->label ? g->label : "", what, (long long)i, a, fd, fabs(fd - a), noise_fd);
    }
    free(y0);
}

/* Gradient check of every input and every trainable weight of a built
 * layer at the inputs given. */
static inline void kit_gradcheck(kit_gc *g, nnp_layer *l, nnp_tensor *const *in, int n_in,
                          const nnp_shape *out_shape)
{
    nnp_tensor out = kit_tensor(out_shape), gy = kit_tensor(out_shape);
    kit_fill(&gy, -1, 1);
    nnp_tensor gx[8];
    nnp_tensor *gxp[8];
    for (int k = 0; k < n_in; k++) {
        gx[k] = kit_tensor(&in[k]->shape);
        gxp[k] = &gx[k];
    }
    kit_forward(l, in, n_in, &out, g->mode);
    nnp_layer_zero_grad(l);
    kit_backward(l, in, n_in, &out, &gy, gxp, g->mode);

    /* the analytic weight gradients, before finite differences run forward */
    int nw = nnp_layer_n_weights(l);
    float *wg[16] = {0};
    for (int i = 0; i < nw && i < 16; i++) {
        const nnp_weight *w = nnp_layer_weight(l, i);
        if (!(w->flags & NNP_WEIGHT_TRAINABLE) || !w->grad)
            continue;
        wg[i] = malloc(w->grad->nbytes ? w->grad->nbytes : 1);
        memcpy(wg[i], w->grad->data, w->grad->nbytes);
    }
    g->checked = g->skipped = 0;
    for (int k = 0; k < n_in; k++) {
        char what[32];
        snprintf(what, sizeof what, "dx%d", k);
        kit_fd_tensor(g, what, l, in, n_in, &out, gy.data, in[k]->data, kit_numel(&in[k]->shape),
                      gx[k].data);
    }
    for (int i = 0; i < nw && i < 16; i++) {
        if (!wg[i])
            continue;
        const nnp_weight *w = nnp_layer_weight(l, i);
        char what[64];
        snprintf(what, sizeof what, "d%s", w->name);
        kit_fd_tensor(g, what, l, in, n_in, &out, gy.data, w->value->data,
                      kit_numel(&w->value->shape), wg[i]);
        free(wg[i]);
    }
    cr_assert(g->checked > 0, "nothing checked");
    cr_assert(g->skipped * 10 <= g->checked, "too many kinks skipped: %d of %d", g->skipped,
              g->checked + g->skipped);
    for (int k = 0; k < n_in; k++)
        nnp_tensor_free(&gx[k]);
    nnp_tensor_free(&out);
    nnp_tensor_free(&gy);
}

static inline kit_gc kit_gc_default(void)
{
    kit_gc g = {.h = 1e-2, .rtol = 1e-3, .atol = 1e-4, .max_checks = 150,
                .mode = NNP_MODE_INFER};
    return g;
}

/* ------------------------------------------------------------------ */
/* determinism across thread counts                                    */
/* ------------------------------------------------------------------ */

/* Runs forward + backward with 1, 2 and 3 threads from the same weights and
 * asserts bit-identical outputs, input gradients and weight gradients. */
static inline void kit_threads_identical(nnp_layer *l, nnp_tensor *const *in, int n_in,
                                  const nnp_shape *out_shape, nnp_mode mode)
{
    const int counts[3] = {1, 2, 3};
    nnp_tensor gy = kit_tensor(out_shape);
    kit_fill(&gy, -1, 1);
    void *ref[32] = {0};
    size_t refn[32] = {0};
    const int saved = nnp_get_num_threads();
    for (int c = 0; c < 3; c++) {
        nnp_set_num_threads(counts[c]);
        nnp_tensor out = kit_tensor(out_shape);
        nnp_tensor gx[8];
        nnp_tensor *gxp[8];
        for (int k = 0; k < n_in; k++) {
            gx[k] = kit_tensor(&in[k]->shape);
            gxp[k] = &gx[k];
        }
        kit_forward(l, in, n_in, &out, mode);
        nnp_layer_zero_grad(l);
        kit_backward(l, in, n_in, &out, &gy, gxp, mode);
        const nnp_tensor *ts[32];
        int nt = 0;
        ts[nt++] = &out;
        for (int k = 0; k < n_in; k++)
            ts[nt++] = &gx[k];
        for (int i = 0; i < nnp_layer_n_weights(l) && nt < 32; i++)
            if (nnp_layer_weight(l, i)->grad)
                ts[nt++] = nnp_layer_weight(l, i)->grad;
        for (int t = 0; t < nt; t++) {
            if (c == 0) {
                refn[t] = ts[t]->nbytes;
                ref[t] = malloc(refn[t] ? refn[t] : 1);
                memcpy(ref[t], ts[t]->data, refn[t]);
            } else {
                cr_assert_eq(refn[t], ts[t]->nbytes);
                cr_assert(memcmp(ref[t], ts[t]->data, refn[t]) == 0,
                          "result %d differs between 1 and %d threads", t, counts[c]);
            }
        }
        for (int k = 0; k < n_in; k++)
            nnp_tensor_free(&gx[k]);
        nnp_tensor_free(&out);
    }
    nnp_set_num_threads(saved);
    for (int t = 0; t < 32; t++)
        free(ref[t]);
    nnp_tensor_free(&gy);
}

/* ------------------------------------------------------------------ */
/* whole models against independent references                         */
/* ------------------------------------------------------------------ */

/* Loads $NNP_TESTDATA/<case>/model.onnx, runs inputs/input.npy through it
 * in mode and compares output 0 with <expected>/output.npy (produced by
 * PyTorch) within the case's tolerance. */
static inline void kit_torch_case(const char *cas, const char *expected, nnp_mode mode)
{
    nnp_model *m = NULL;
    nnp_error err = {0};
    nnp_status st = nnp_onnx_load(kit_reg, tu_data_path("%s/model.onnx", cas), NULL, &m, &err);
    cr_assert_eq(st, NNP_OK, "%s: %s", cas, err.msg);
    nnp_tensor x;
    tu_load_f32(tu_data_path("%s/inputs/input.npy", cas), &x);
    const nnp_tensor *ins[1] = {&x};
    st = nnp_model_forward(m, ins, 1, mode, &err);
    cr_assert_eq(st, NNP_OK, "%s: %s", cas, err.msg);
    const nnp_tensor *y = nnp_model_output(m, 0);
    nnp_shape es;
    int64_t n;
    double *e = tu_load_f64(tu_data_path("%s/%s/output.npy", cas, expected), &es, &n);
    cr_assert(kit_same_shape(&y->shape, &es), "%s: output shape differs", cas);
    tu_assert_close_f32(cas, y->data, e, n, 1e-4, 1e-5);
    free(e);
    nnp_tensor_free(&x);
    nnp_model_free(m);
}

#endif
