/* Conv2D's two engines against each other: the oneDNN primitives a concrete
 * build creates and the im2col + GEMM kernels (NNP_CONV_ENGINE=im2col),
 * forward, input gradient and kernel / bias gradients, on shapes that take
 * oneDNN's blocked layouts (16 channels and more), both data formats,
 * strides, padding, dilation, groups, batches that do not divide into the
 * kernel-gradient chunks; each with oneDNN's backward primitives and with
 * the backward on the whole batch's patches (NNP_CONV_BACKWARD=dnnl|gemm;
 * by default the latter runs outputs of up to 4 pixels; oneDNN's splits
 * the filters between its two kernel-gradient chunks on blocked outputs of
 * up to 64 pixels, the batch on larger ones); then bitwise
 * equality of both across thread counts, each count with primitives
 * created for it. (Each engine is
 * checked against a float64 loop and finite differences in test_conv2d.) */
#include "test_activation_kit.h"

#include <math.h>
#include <stdlib.h>

TestSuite(conv_engine, .init = kit_setup, .fini = kit_teardown);

typedef struct ecase {
    int64_t N, H, W, C, F, k, s, d, groups;
    const char *padding;
    int channels_first;
    const char *activation;
} ecase;

static const ecase cases[] = {
    /* N, H, W, C, F, k, s, d, groups, padding, cf, activation */
    {5, 12, 11, 16, 32, 3, 1, 1, 1, "same", 1, "linear"},
    {5, 12, 11, 16, 32, 3, 1, 1, 1, "same", 0, "linear"},
    {4, 13, 13, 32, 48, 3, 2, 1, 1, "same", 1, "relu"},
    {4, 13, 13, 32, 48, 3, 2, 1, 1, "same", 0, "relu"},
    {3, 16, 16, 3, 64, 7, 2, 1, 1, "same", 1, "linear"},   /* a stem */
    {6, 8, 8, 64, 128, 1, 2, 1, 1, "valid", 1, "linear"},  /* a downsample */
    {6, 8, 8, 64, 128, 1, 2, 1, 1, "valid", 0, "linear"},
    {2, 10, 9, 24, 40, 3, 1, 2, 1, "same", 1, "tanh"},     /* dilation, 24 channels */
    {3, 9, 9, 32, 32, 3, 1, 1, 2, "valid", 1, "linear"},   /* groups */
    {3, 9, 9, 32, 32, 3, 1, 1, 32, "same", 0, "linear"},   /* depthwise */
    {17, 6, 6, 128, 128, 3, 1, 1, 1, "same", 1, "linear"}, /* many chunks, a short last one */
    {16, 64, 64, 3, 64, 7, 2, 1, 1, "pads3", 1, "linear"}, /* ResNet's stem, PyTorch pads */
    {16, 64, 64, 3, 64, 7, 2, 1, 1, "pads3", 0, "linear"},
    {16, 16, 16, 64, 128, 3, 2, 1, 1, "pads1", 1, "linear"},
    {16, 16, 16, 64, 64, 3, 1, 1, 1, "pads1", 1, "linear"},
    {16, 4, 4, 256, 512, 3, 2, 1, 1, "pads1", 1, "linear"},
    {5, 7, 7, 64, 96, 3, 1, 1, 1, "pads1", 1, "relu"},     /* ResNet's last stage, smaller */
    {3, 28, 28, 16, 32, 3, 1, 1, 1, "pads1", 1, "relu"},   /* Winograd, image by image */
    {2, 30, 29, 32, 16, 3, 1, 1, 1, "same", 1, "linear"},
};

/* The backward the next make() asks for (NNP_CONV_BACKWARD), NULL: by shape */
static const char *backward;
static const char *const backwards[] = {"dnnl", "gemm"};

static nnp_layer *make(const ecase *c, int im2col, int use_bias)
{
    char json[400], pads[64] = "";
    /* "padsP": explicit symmetric padding P, as PyTorch's exports have */
    const int explicit_pads = !strncmp(c->padding, "pads", 4);
    if (explicit_pads)
        snprintf(pads, sizeof pads, ", \"pads\": [%s, %s, %s, %s]", c->padding + 4,
                 c->padding + 4, c->padding + 4, c->padding + 4);
    snprintf(json, sizeof json,
             "{\"filters\": %lld, \"kernel_size\": %lld, \"strides\": %lld, \"dilation_rate\": "
             "%lld, \"groups\": %lld, \"padding\": \"%s\", \"data_format\": \"%s\", "
             "\"activation\": \"%s\", \"use_bias\": %s%s}",
             (long long)c->F, (long long)c->k, (long long)c->s, (long long)c->d,
             (long long)c->groups, explicit_pads ? "valid" : c->padding,
             c->channels_first ? "channels_first" : "channels_last", c->activation,
             use_bias ? "true" : "false", pads);
    if (im2col)
        setenv("NNP_CONV_ENGINE", "im2col", 1);
    if (backward)
        setenv("NNP_CONV_BACKWARD", backward, 1);
    nnp_layer *l = kit_layer("Conv2D", json);
    unsetenv("NNP_CONV_ENGINE");
    unsetenv("NNP_CONV_BACKWARD");
    return l;
}

static nnp_shape in_shape(const ecase *c)
{
    return c->channels_first ? KS(c->N, c->C, c->H, c->W) : KS(c->N, c->H, c->W, c->C);
}

/* Copies a's weight values into b. */
static void copy_weights(nnp_layer *a, nnp_layer *b)
{
    for (int i = 0; i < nnp_layer_n_weights(a); i++) {
        const nnp_tensor *s = nnp_layer_weight(a, i)->value;
        memcpy(nnp_layer_weight(b, i)->value->data, s->data, s->nbytes);
    }
    nnp_layer_weights_changed(b);
}

typedef struct results {
    nnp_tensor y, gx;
    float *grads[2];
    size_t grad_bytes[2];
} results;

/* Forward (training mode), then backward of gy. */
static results run(nnp_layer *l, nnp_tensor *x, const nnp_shape *os, const nnp_tensor *gy)
{
    results r = {kit_tensor(os), kit_tensor(&x->shape), {NULL, NULL}, {0, 0}};
    nnp_tensor *ins[1] = {x}, *gxs[1] = {&r.gx};
    kit_forward(l, ins, 1, &r.y, NNP_MODE_TRAIN);
    nnp_layer_zero_grad(l);
    kit_backward(l, ins, 1, &r.y, gy, gxs, NNP_MODE_TRAIN);
    for (int i = 0; i < nnp_layer_n_weights(l) && i < 2; i++) {
        const nnp_tensor *g = nnp_layer_weight(l, i)->grad;
        r.grad_bytes[i] = g->nbytes;
        r.grads[i] = malloc(g->nbytes);
        memcpy(r.grads[i], g->data, g->nbytes);
    }
    return r;
}

static void results_free(results *r)
{
    nnp_tensor_free(&r->y);
    nnp_tensor_free(&r->gx);
    free(r->grads[0]);
    free(r->grads[1]);
}

/* |a - b| <= rtol * max|b| + 1e-6 element by element (sums of many terms:
 * the tolerance scales with the tensor's largest value). */
static void close_to(const char *what, const ecase *c, const float *a, const float *b, size_t n)
{
    double mx = 0, worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++)
        mx = fmax(mx, fabs((double)b[i]));
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - (double)b[i]);
        if (d > worst) {
            worst = d;
            at = i;
        }
    }
    cr_assert(worst <= 2e-5 * mx + 1e-6,
              "C%lld F%lld k%lld s%lld %s, backward %s: %s[%zu] oneDNN %.8g, im2col %.8g "
              "(|diff| %.3g, largest %.3g)",
              (long long)c->C, (long long)c->F, (long long)c->k, (long long)c->s,
              c->channels_first ? "channels_first" : "channels_last",
              backward ? backward : "by shape", what, at, (double)a[at], (double)b[at], worst, mx);
}

static void compare_engines(const ecase *c, int bias)
{
    nnp_layer *e = make(c, 0, bias), *r = make(c, 1, bias);
    nnp_shape xs = in_shape(c);
    nnp_shape os = kit_build(e, 1, &xs);
    kit_build(r, 1, &xs);
    kit_randomize_weights(e, -0.3, 0.3);
    copy_weights(e, r);
    nnp_tensor x = kit_tensor(&xs), gy = kit_tensor(&os);
    kit_fill(&x, -1, 1);
    kit_fill(&gy, -1, 1);
    results a = run(e, &x, &os, &gy), b = run(r, &x, &os, &gy);
    close_to("y", c, a.y.data, b.y.data, a.y.nbytes / 4);
    close_to("dx", c, a.gx.data, b.gx.data, a.gx.nbytes / 4);
    close_to("dkernel", c, a.grads[0], b.grads[0], a.grad_bytes[0] / 4);
    if (bias)
        close_to("dbias", c, a.grads[1], b.grads[1], a.grad_bytes[1] / 4);
    /* a second step after an update: the kernel is reordered anew */
    float *k = nnp_layer_weight(e, 0)->value->data;
    for (size_t j = 0; j < a.grad_bytes[0] / 4; j++)
        k[j] -= 0.1f * a.grads[0][j];
    copy_weights(e, r);
    results a2 = run(e, &x, &os, &gy), b2 = run(r, &x, &os, &gy);
    close_to("y after an update", c, a2.y.data, b2.y.data, a2.y.nbytes / 4);
    close_to("dx after an update", c, a2.gx.data, b2.gx.data, a2.gx.nbytes / 4);
    results_free(&a);
    results_free(&b);
    results_free(&a2);
    results_free(&b2);
    nnp_tensor_free(&x);
    nnp_tensor_free(&gy);
    nnp_layer_free(e);
    nnp_layer_free(r);
}

Test(conv_engine, onednn_equals_im2col)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int bias = 0; bias <= 1; bias++)
            for (size_t b = 0; b < sizeof backwards / sizeof backwards[0]; b++) {
                backward = backwards[b];
                kit_seed(7 + i);
                compare_engines(&cases[i], bias);
            }
    backward = NULL;
}

/* Inference forwards keep the reordered kernel until weights_changed. */
Test(conv_engine, inference_sees_new_weights_once_told)
{
    const ecase *c = &cases[0];
    nnp_layer *e = make(c, 0, 1);
    nnp_shape xs = in_shape(c);
    nnp_shape os = kit_build(e, 1, &xs);
    kit_randomize_weights(e, -0.3, 0.3);
    nnp_tensor x = kit_tensor(&xs), y1 = kit_tensor(&os), y2 = kit_tensor(&os);
    kit_fill(&x, -1, 1);
    nnp_tensor *ins[1] = {&x};
    nnp_error err = {0};
    cr_assert_eq(nnp_layer_forward(e, (const nnp_tensor *const *)ins, 1, &y1, NNP_MODE_INFER,
                                   &err),
                 NNP_OK);
    float *k = nnp_layer_weight(e, 0)->value->data;
    const size_t n = nnp_layer_weight(e, 0)->value->nbytes / 4;
    for (size_t j = 0; j < n; j++)
        k[j] *= 2.0f;
    float *b = nnp_layer_weight(e, 1)->value->data;
    for (int64_t j = 0; j < c->F; j++)
        b[j] *= 2.0f;
    nnp_layer_weights_changed(e);
    cr_assert_eq(nnp_layer_forward(e, (const nnp_tensor *const *)ins, 1, &y2, NNP_MODE_INFER,
                                   &err),
                 NNP_OK);
    const float *p = y1.data, *q = y2.data;
    for (size_t j = 0; j < y1.nbytes / 4; j++)
        cr_assert(fabsf(q[j] - 2.0f * p[j]) <= 1e-5f * (1.0f + fabsf(q[j])),
                  "y[%zu] %g after doubling the weights, %g before", j, (double)q[j],
                  (double)p[j]);
    nnp_tensor_free(&x);
    nnp_tensor_free(&y1);
    nnp_tensor_free(&y2);
    nnp_layer_free(e);
}

/* Bitwise the same at 1, 2, 3, 4 and 7 threads, each with primitives made
 * for that count. */
Test(conv_engine, identical_across_thread_counts)
{
    const int counts[] = {1, 2, 3, 4, 7};
    const int saved = nnp_get_num_threads();
    for (size_t i = 0; i < 2 * sizeof cases / sizeof cases[0]; i++) {
        const ecase *c = &cases[i / 2];
        backward = backwards[i % 2];
        kit_seed(100 + i);
        nnp_shape xs = in_shape(c);
        nnp_tensor x = kit_tensor(&xs);
        kit_fill(&x, -1, 1);
        nnp_layer *first = NULL;
        results ref = {0};
        nnp_tensor gy = {0};
        for (size_t t = 0; t < sizeof counts / sizeof counts[0]; t++) {
            nnp_set_num_threads(counts[t]);
            nnp_layer *e = make(c, 0, 1);
            nnp_shape os = kit_build(e, 1, &xs);
            if (!first) {
                kit_randomize_weights(e, -0.3, 0.3);
                gy = kit_tensor(&os);
                kit_fill(&gy, -1, 1);
            } else {
                copy_weights(first, e);
            }
            results r = run(e, &x, &os, &gy);
            if (!first) {
                first = e;
                ref = r;
                continue;
            }
            cr_assert(!memcmp(r.y.data, ref.y.data, r.y.nbytes),
                      "case %zu (backward %s): y differs at %d threads", i / 2, backward,
                      counts[t]);
            cr_assert(!memcmp(r.gx.data, ref.gx.data, r.gx.nbytes),
                      "case %zu (backward %s): dx differs at %d threads", i / 2, backward,
                      counts[t]);
            for (int w = 0; w < 2; w++)
                cr_assert(!memcmp(r.grads[w], ref.grads[w], r.grad_bytes[w]),
                          "case %zu (backward %s): weight gradient %d differs at %d threads",
                          i / 2, backward, w, counts[t]);
            results_free(&r);
            nnp_layer_free(e);
        }
        results_free(&ref);
        nnp_layer_free(first);
        nnp_tensor_free(&gy);
        nnp_tensor_free(&x);
    }
    backward = NULL;
    nnp_set_num_threads(saved);
}

/* The 28x28 and larger 3x3 stride-1 cases run oneDNN's Winograd kernels
 * (forward, input and kernel gradients): without them (NNP_CONV_WINOGRAD=0)
 * every result changes bits, so the checks above saw them. */
Test(conv_engine, winograd_ran)
{
    const ecase *c = &cases[17];
    nnp_shape xs = in_shape(c);
    results r[2];
    nnp_tensor x = kit_tensor(&xs), gy = {0};
    kit_fill(&x, -1, 1);
    nnp_layer *first = NULL;
    for (int off = 0; off < 2; off++) {
        if (off)
            setenv("NNP_CONV_WINOGRAD", "0", 1);
        nnp_layer *e = make(c, 0, 1);
        nnp_shape os = kit_build(e, 1, &xs); /* (the engine reads it here) */
        unsetenv("NNP_CONV_WINOGRAD");
        if (!first) {
            kit_randomize_weights(e, -0.3, 0.3);
            gy = kit_tensor(&os);
            kit_fill(&gy, -1, 1);
            first = e;
        } else {
            copy_weights(first, e);
        }
        r[off] = run(e, &x, &os, &gy);
        if (e != first)
            nnp_layer_free(e);
    }
    cr_assert(memcmp(r[0].y.data, r[1].y.data, r[0].y.nbytes), "y: the same bits");
    cr_assert(memcmp(r[0].gx.data, r[1].gx.data, r[0].gx.nbytes), "dx: the same bits");
    cr_assert(memcmp(r[0].grads[0], r[1].grads[0], r[0].grad_bytes[0]), "dkernel: the same bits");
    results_free(&r[0]);
    results_free(&r[1]);
    nnp_layer_free(first);
    nnp_tensor_free(&x);
    nnp_tensor_free(&gy);
}

/* A training forward keeps its input in oneDNN's layout for the backward
 * on the same input: a backward of another input than the last forward's
 * (a layer applied twice), or after an inference forward, reorders its own
 * and gives the bits of a forward + backward of that input. */
Test(conv_engine, backward_of_another_input)
{
    const ecase c = {3, 9, 8, 32, 16, 3, 1, 1, 1, "same", 1, "linear"};
    nnp_layer *e = make(&c, 0, 1);
    nnp_shape xs = in_shape(&c);
    nnp_shape os = kit_build(e, 1, &xs);
    kit_randomize_weights(e, -0.3, 0.3);
    nnp_tensor x1 = kit_tensor(&xs), x2 = kit_tensor(&xs), gy = kit_tensor(&os);
    kit_fill(&x1, -1, 1);
    kit_fill(&x2, -1, 1);
    kit_fill(&gy, -1, 1);
    results want = run(e, &x1, &os, &gy);
    for (int after = 0; after < 2; after++) {
        /* forward x1, then x2 (training) or x1 again (inference), then
           the backward of x1 */
        nnp_tensor y = kit_tensor(&os), y2 = kit_tensor(&os), gx = kit_tensor(&xs);
        nnp_tensor *ins1[1] = {&x1}, *ins2[1] = {after ? &x1 : &x2}, *gxs[1] = {&gx};
        kit_forward(e, ins1, 1, &y, NNP_MODE_TRAIN);
        kit_forward(e, ins2, 1, &y2, after ? NNP_MODE_INFER : NNP_MODE_TRAIN);
        nnp_layer_zero_grad(e);
        kit_backward(e, ins1, 1, &y, &gy, gxs, NNP_MODE_TRAIN);
        cr_assert(!memcmp(gx.data, want.gx.data, gx.nbytes), "dx differs (%d)", after);
        cr_assert(!memcmp(nnp_layer_weight(e, 0)->grad->data, want.grads[0], want.grad_bytes[0]),
                  "dkernel differs (%d)", after);
        nnp_tensor_free(&y);
        nnp_tensor_free(&y2);
        nnp_tensor_free(&gx);
    }
    results_free(&want);
    nnp_tensor_free(&x1);
    nnp_tensor_free(&x2);
    nnp_tensor_free(&gy);
    nnp_layer_free(e);
}

/* Buffers the memory budget refuses make the build fail with the budget's
 * error (exit 2 in the command), not a bare out-of-memory. */
Test(conv_engine, buffers_over_the_budget_are_a_limit_error)
{
    const ecase c = {2, 32, 32, 64, 64, 7, 1, 1, 1, "same", 1, "linear"};
    nnp_layer *l = make(&c, 0, 1);
    nnp_shape xs = in_shape(&c), out;
    nnp_error err = {0};
    /* room for the kernel and its gradient (1.6 MB), not for the rest */
    nnp_set_memory_budget(nnp_memory_in_use() + ((size_t)4 << 20));
    nnp_status st = nnp_layer_build(l, 1, &xs, &out, &err);
    nnp_set_memory_budget(0);
    cr_assert_eq(st, NNP_ERR_LIMIT, "%s (%s)", nnp_status_str(st), err.msg);
    cr_assert(strstr(err.msg, "memory budget") && strstr(err.msg, "Conv2D"), "%s", err.msg);
    nnp_layer_free(l);
}
