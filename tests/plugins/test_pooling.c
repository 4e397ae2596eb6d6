/* Pooling layers through the plugin ABI: forward against direct float64
 * loops, gradients against finite differences (both data formats, strides,
 * 'same' with even windows, explicit pads), Keras defaults, determinism
 * across thread counts, clear errors. */
#include "test_activation_kit.h"

TestSuite(pooling, .init = kit_setup, .fini = kit_teardown);

typedef struct pool_case {
    const char *kind;          /* MaxPooling2D / AveragePooling2D */
    int64_t N, H, W, C;
    int64_t kh, kw, sh, sw;
    const char *padding;
    const int64_t *pads;
    int channels_first;
    int include_pad;
} pool_case;

static void json_of(const pool_case *c, char *buf, size_t n)
{
    char pads[128] = "";
    if (c->pads)
        snprintf(pads, sizeof pads, ", \"pads\": [%lld, %lld, %lld, %lld]", (long long)c->pads[0],
                 (long long)c->pads[1], (long long)c->pads[2], (long long)c->pads[3]);
    if (c->include_pad)
        strcat(pads, ", \"count_include_pad\": true");
    snprintf(buf, n,
             "{\"pool_size\": [%lld, %lld], \"strides\": [%lld, %lld], \"padding\": \"%s\", "
             "\"data_format\": \"%s\"%s}",
             (long long)c->kh, (long long)c->kw, (long long)c->sh, (long long)c->sw, c->padding,
             c->channels_first ? "channels_first" : "channels_last", pads);
}

static void axis_ref(const pool_case *c, int axis, int64_t in, int64_t *out, int64_t *before)
{
    const int64_t k = axis ? c->kw : c->kh, s = axis ? c->sw : c->sh;
    if (c->pads) {
        *before = c->pads[axis];
        *out = (in + c->pads[axis] + c->pads[axis + 2] - k) / s + 1;
    } else if (!strcmp(c->padding, "same")) {
        *out = (in + s - 1) / s;
        int64_t total = (*out - 1) * s + k - in;
        *before = total > 0 ? total / 2 : 0;
    } else {
        *out = (in - k) / s + 1;
        *before = 0;
    }
}

/* Flat index of (n, ch, h, w) in a [N, C, H, W] or [N, H, W, C] tensor. */
static int64_t at4(const pool_case *c, int64_t H, int64_t W, int64_t n, int64_t ch, int64_t h,
                   int64_t w)
{
    return c->channels_first ? ((n * c->C + ch) * H + h) * W + w
                             : ((n * H + h) * W + w) * c->C + ch;
}

static double xat(const pool_case *c, const float *x, int64_t n, int64_t h, int64_t w, int64_t ch)
{
    return x[at4(c, c->H, c->W, n, ch, h, w)];
}

static double *ref_pool(const pool_case *c, const float *x, int64_t *OH, int64_t *OW)
{
    int64_t pt, pl;
    axis_ref(c, 0, c->H, OH, &pt);
    axis_ref(c, 1, c->W, OW, &pl);
    const int is_max = !strcmp(c->kind, "MaxPooling2D");
    double *y = calloc((size_t)(c->N * *OH * *OW * c->C), sizeof *y);
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t ch = 0; ch < c->C; ch++)
            for (int64_t oh = 0; oh < *OH; oh++)
                for (int64_t ow = 0; ow < *OW; ow++) {
                    double acc = is_max ? -INFINITY : 0;
                    int cnt = 0;
                    for (int64_t i = 0; i < c->kh; i++)
                        for (int64_t j = 0; j < c->kw; j++) {
                            int64_t ih = oh * c->sh - pt + i, iw = ow * c->sw - pl + j;
                            if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W)
                                continue;
                            double v = xat(c, x, n, ih, iw, ch);
                            acc = is_max ? fmax(acc, v) : acc + v;
                            cnt++;
                        }
                    if (!is_max)
                        acc /= c->include_pad ? (double)(c->kh * c->kw) : cnt;
                    y[at4(c, *OH, *OW, n, ch, oh, ow)] = acc;
                }
    return y;
}

/* Distinct values 0.05 apart, shuffled: no ties, no kink within a step. */
static void fill_distinct(nnp_tensor *t)
{
    int64_t n = kit_numel(&t->shape);
    float *p = t->data;
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)(0.05 * (double)(i - n / 2));
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(kit_uniform() * (double)(i + 1));
        float tmp = p[i];
        p[i] = p[j];
        p[j] = tmp;
    }
}

static const int64_t pads_a[4] = {1, 0, 1, 2};
static const int64_t pads_b[4] = {0, 1, 1, 1};
static const int64_t pads_c[4] = {1, 1, 1, 1};

static const pool_case cases[] = {
    {"MaxPooling2D", 2, 6, 7, 3, 2, 2, 2, 2, "valid", NULL, 0, 0},
    {"MaxPooling2D", 2, 6, 7, 3, 2, 2, 2, 2, "valid", NULL, 1, 0},
    {"MaxPooling2D", 2, 7, 8, 2, 3, 2, 2, 1, "same", NULL, 0, 0},
    {"MaxPooling2D", 2, 7, 8, 2, 4, 4, 2, 3, "same", NULL, 1, 0},
    {"MaxPooling2D", 1, 7, 8, 2, 3, 3, 2, 2, "valid", pads_a, 0, 0},
    {"MaxPooling2D", 2, 11, 12, 3, 3, 3, 2, 2, "valid", pads_c, 1, 0}, /* ResNet's stem pool */
    {"AveragePooling2D", 2, 6, 7, 3, 2, 2, 2, 2, "valid", NULL, 0, 0},
    {"AveragePooling2D", 2, 6, 7, 3, 3, 3, 1, 2, "valid", NULL, 1, 0},
    {"AveragePooling2D", 2, 7, 8, 2, 2, 4, 2, 2, "same", NULL, 0, 0},
    {"AveragePooling2D", 2, 7, 8, 2, 3, 3, 3, 2, "same", NULL, 1, 0},
    {"AveragePooling2D", 1, 7, 8, 2, 3, 3, 2, 2, "valid", pads_a, 1, 0},
    {"AveragePooling2D", 1, 7, 8, 2, 3, 3, 2, 2, "valid", pads_a, 0, 1},
    /* channels-first 2x2/2 with a leftover row and column, clipped 'same'
     * windows, a left pad (row fast path starts after the first output);
     * channels-last with more than one 16-channel block */
    {"MaxPooling2D", 2, 7, 9, 5, 2, 2, 2, 2, "valid", NULL, 1, 0},
    {"MaxPooling2D", 2, 7, 9, 3, 2, 2, 2, 2, "same", NULL, 1, 0},
    {"MaxPooling2D", 1, 6, 8, 3, 2, 2, 2, 2, "valid", pads_b, 1, 0},
    {"AveragePooling2D", 2, 7, 9, 3, 2, 2, 2, 2, "same", NULL, 1, 0},
    {"MaxPooling2D", 2, 5, 6, 35, 2, 2, 2, 2, "same", NULL, 0, 0},
    /* channels-first rows of more than 16 outputs (runs of 16 and a tail),
     * strides 1 and 3 */
    {"MaxPooling2D", 1, 5, 40, 2, 3, 3, 1, 1, "same", NULL, 1, 0},
    {"MaxPooling2D", 1, 9, 70, 2, 3, 4, 2, 3, "valid", pads_c, 1, 0},
};
#define N_CASES (sizeof cases / sizeof cases[0])

static nnp_shape in_shape(const pool_case *c)
{
    return c->channels_first ? KS(c->N, c->C, c->H, c->W) : KS(c->N, c->H, c->W, c->C);
}

Test(pooling, forward_matches_direct_float64_loop)
{
    kit_seed(31);
    for (size_t i = 0; i < N_CASES; i++) {
        const pool_case *c = &cases[i];
        char json[256];
        json_of(c, json, sizeof json);
        nnp_layer *l = kit_layer(c->kind, json);
        nnp_shape xs = in_shape(c);
        nnp_shape os = kit_build(l, 1, &xs);
        nnp_tensor x = kit_tensor(&xs), y = kit_tensor(&os);
        kit_fill(&x, -2, 2);
        nnp_tensor *ins[1] = {&x};
        kit_forward(l, ins, 1, &y, NNP_MODE_INFER);
        int64_t OH, OW;
        double *ref = ref_pool(c, x.data, &OH, &OW);
        cr_assert_eq(os.dims[c->channels_first ? 2 : 1], OH, "%s %s", c->kind, json);
        cr_assert_eq(os.dims[c->channels_first ? 3 : 2], OW, "%s %s", c->kind, json);
        tu_assert_close_f32(json, y.data, ref, kit_numel(&os), 1e-6, 1e-6);
        free(ref);
        nnp_tensor_free(&x);
        nnp_tensor_free(&y);
        nnp_layer_free(l);
    }
}

Test(pooling, gradients_match_finite_differences)
{
    kit_seed(32);
    for (size_t i = 0; i < N_CASES; i++) {
        const pool_case *c = &cases[i];
        char json[256];
        json_of(c, json, sizeof json);
        nnp_layer *l = kit_layer(c->kind, json);
        nnp_shape xs = in_shape(c);
        nnp_shape os = kit_build(l, 1, &xs);
        nnp_tensor x = kit_tensor(&xs);
        fill_distinct(&x);
        nnp_tensor *ins[1] = {&x};
        kit_gc g = kit_gc_default();
        g.max_checks = 400;
        kit_gradcheck(&g, l, ins, 1, &os);
        cr_assert_eq(g.skipped, 0, "%s: %d kinks", json, g.skipped);
        nnp_tensor_free(&x);
        nnp_layer_free(l);
    }
}

/* A max pool's input gradient by direct loops: each output's gradient at
 * the element the forward takes, the first in row-major window order
 * larger than -inf and every element before it (NaN never is), else the
 * window's first element. calloc'ed. */
static double *ref_max_grad(const pool_case *c, const float *xp, const float *gy)
{
    int64_t OH, OW, pt, pl;
    axis_ref(c, 0, c->H, &OH, &pt);
    axis_ref(c, 1, c->W, &OW, &pl);
    double *ref = calloc((size_t)(c->N * c->H * c->W * c->C), sizeof *ref);
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t ch = 0; ch < c->C; ch++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    int64_t best = -1;
                    float bv = -INFINITY;
                    for (int64_t a = 0; a < c->kh; a++)
                        for (int64_t b = 0; b < c->kw; b++) {
                            int64_t ih = oh * c->sh - pt + a, iw = ow * c->sw - pl + b;
                            if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W)
                                continue;
                            int64_t at = at4(c, c->H, c->W, n, ch, ih, iw);
                            if (best < 0)
                                best = at;
                            if (xp[at] > bv) {
                                best = at;
                                bv = xp[at];
                            }
                        }
                    ref[best] += gy[at4(c, OH, OW, n, ch, oh, ow)];
                }
    return ref;
}

/* Ties: each window's gradient goes to its first maximum in row-major
 * window order (the rule of TensorFlow's and PyTorch's CPU kernels), on
 * inputs drawn from {0, 1}; reference from a direct loop. */
/* Both bodies of the channels-first max backward (AVX-512 where the CPU
 * has it, and the portable one: NNP_POOL_ISA=portable). */
Test(pooling, max_gradient_goes_to_first_maximum_on_ties)
{
    kit_seed(35);
    for (size_t r = 0; r < 2 * N_CASES; r++) {
        const size_t i = r % N_CASES;
        if (r == N_CASES)
            setenv("NNP_POOL_ISA", "portable", 1);
        const pool_case *c = &cases[i];
        if (strcmp(c->kind, "MaxPooling2D"))
            continue;
        char json[256];
        json_of(c, json, sizeof json);
        nnp_layer *l = kit_layer(c->kind, json);
        nnp_shape xs = in_shape(c);
        nnp_shape os = kit_build(l, 1, &xs);
        nnp_tensor x = kit_tensor(&xs), y = kit_tensor(&os), gy = kit_tensor(&os),
                   gx = kit_tensor(&xs);
        float *xp = kit_data(&x);
        for (int64_t k = 0; k < kit_numel(&xs); k++) { /* ties, and windows of -inf */
            const double u = kit_uniform();
            xp[k] = u < 0.3 ? -INFINITY : u < 0.65 ? 0.0f : 1.0f;
        }
        kit_fill(&gy, 0.5, 1.5);
        nnp_tensor *ins[1] = {&x}, *gxs[1] = {&gx};
        kit_forward(l, ins, 1, &y, NNP_MODE_TRAIN);
        kit_backward(l, ins, 1, &y, &gy, gxs, NNP_MODE_TRAIN);
        double *ref = ref_max_grad(c, xp, kit_data(&gy));
        char what[300];
        snprintf(what, sizeof what, "%s%s", json, r < N_CASES ? "" : " (portable)");
        tu_assert_close_f32(what, gx.data, ref, kit_numel(&xs), 1e-6, 1e-6);
        free(ref);
        nnp_tensor_free(&x);
        nnp_tensor_free(&y);
        nnp_tensor_free(&gy);
        nnp_tensor_free(&gx);
        nnp_layer_free(l);
    }
    unsetenv("NNP_POOL_ISA");
}

/* Channels-first max pooling records, in a training forward, the window
 * position each output took; its backward reads that instead of the input.
 * On inputs with ties, -inf and NaN (NaN is never the maximum), for both
 * bodies (AVX-512 and portable), both data formats (channels-last records
 * nothing and recomputes): the training forward's output is the bits
 * of the inference forward's; its backward is the bits of the backward
 * that recomputes the maxima (run after a training forward of another
 * input, whose record it must not use), and sends each gradient to the
 * element the forward took (direct loop). Rows too long for the stack and
 * windows too large to record take the window-by-window loops. */
Test(pooling, max_record_matches_recompute)
{
    static const int64_t pads_s[4] = {1, 2, 0, 1};
    const pool_case extra[] = {
        {"MaxPooling2D", 2, 23, 37, 3, 3, 3, 2, 2, "valid", pads_c, 1, 0},
        {"MaxPooling2D", 1, 9, 35, 2, 3, 3, 1, 1, "same", NULL, 1, 0},
        {"MaxPooling2D", 2, 10, 41, 2, 4, 3, 3, 2, "valid", pads_s, 1, 0},
        {"MaxPooling2D", 1, 8, 50, 2, 2, 5, 1, 3, "same", NULL, 1, 0},
        /* rows too long to record on the stack, windows too large to record */
        {"MaxPooling2D", 1, 3, 4200, 1, 2, 3, 1, 2, "valid", NULL, 1, 0},
        {"MaxPooling2D", 1, 17, 18, 1, 16, 16, 1, 1, "valid", NULL, 1, 0},
    };
    const size_t n_all = N_CASES + sizeof extra / sizeof extra[0];
    kit_seed(36);
    int checked = 0, n_max = 0;
    for (size_t i = 0; i < n_all; i++)
        n_max += !strcmp((i < N_CASES ? &cases[i] : &extra[i - N_CASES])->kind, "MaxPooling2D");
    for (size_t r = 0; r < 2 * n_all; r++) {
        const size_t i = r % n_all;
        if (r == n_all)
            setenv("NNP_POOL_ISA", "portable", 1);
        const pool_case *c = i < N_CASES ? &cases[i] : &extra[i - N_CASES];
        if (strcmp(c->kind, "MaxPooling2D"))
            continue;
        char json[256], what[300];
        json_of(c, json, sizeof json);
        snprintf(what, sizeof what, "%s%s", json, r < n_all ? "" : " (portable)");
        nnp_layer *l = kit_layer(c->kind, json);
        nnp_shape xs = in_shape(c);
        nnp_shape os = kit_build(l, 1, &xs);
        nnp_tensor x = kit_tensor(&xs), x2 = kit_tensor(&xs), y = kit_tensor(&os),
                   yi = kit_tensor(&os), y2 = kit_tensor(&os), gy = kit_tensor(&os),
                   gx = kit_tensor(&xs), gx2 = kit_tensor(&xs);
        float *xp = kit_data(&x);
        for (int64_t k = 0; k < kit_numel(&xs); k++) {
            const double u = kit_uniform();
            xp[k] = u < 0.2 ? -INFINITY : u < 0.3 ? NAN : u < 0.6 ? 0.0f : u < 0.9 ? 1.0f : 2.0f;
        }
        kit_fill(&x2, -1, 1);
        kit_fill(&gy, 0.5, 1.5);
        nnp_tensor *ins[1] = {&x}, *ins2[1] = {&x2}, *gxs[1] = {&gx}, *gxs2[1] = {&gx2};
        kit_forward(l, ins, 1, &yi, NNP_MODE_INFER);
        kit_forward(l, ins, 1, &y, NNP_MODE_TRAIN);
        kit_backward(l, ins, 1, &y, &gy, gxs, NNP_MODE_TRAIN);
        cr_assert_eq(memcmp(y.data, yi.data, y.nbytes), 0, "%s: training forward", what);
        kit_forward(l, ins2, 1, &y2, NNP_MODE_TRAIN);
        kit_backward(l, ins, 1, &y, &gy, gxs2, NNP_MODE_TRAIN);
        cr_assert_eq(memcmp(gx.data, gx2.data, gx.nbytes), 0, "%s: recorded backward", what);
        double *ref = ref_max_grad(c, xp, kit_data(&gy));
        tu_assert_close_f32(what, gx.data, ref, kit_numel(&xs), 1e-6, 1e-6);
        checked++;
        free(ref);
        nnp_tensor *all[] = {&x, &x2, &y, &yi, &y2, &gy, &gx, &gx2};
        for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
            nnp_tensor_free(all[k]);
        nnp_layer_free(l);
    }
    unsetenv("NNP_POOL_ISA");
    cr_assert_eq(checked, 2 * n_max);
}

Test(pooling, keras_defaults)
{
    /* pool_size (2, 2), strides = pool_size, valid, channels_last */
    nnp_layer *l = kit_layer("MaxPooling2D", "{}");
    nnp_shape xs = KS(-1, 9, 8, 3);
    nnp_shape os = kit_build(l, 1, &xs);
    cr_assert(os.rank == 4 && os.dims[0] == -1 && os.dims[1] == 4 && os.dims[2] == 4 &&
              os.dims[3] == 3);
    nnp_layer_free(l);
    l = kit_layer("AveragePooling2D", "{\"pool_size\": 3}");
    os = kit_build(l, 1, &xs);
    cr_assert(os.dims[1] == 3 && os.dims[2] == 2, "%lld %lld", (long long)os.dims[1],
              (long long)os.dims[2]);
    nnp_layer_free(l);
}

Test(pooling, global_pooling_forward_gradient_keepdims)
{
    kit_seed(33);
    const char *kinds[2] = {"GlobalAveragePooling2D", "GlobalMaxPooling2D"};
    for (int k = 0; k < 2; k++)
        for (int cf = 0; cf < 2; cf++)
            for (int keep = 0; keep < 2; keep++) {
                char json[128];
                snprintf(json, sizeof json, "{\"data_format\": \"%s\", \"keepdims\": %s}",
                         cf ? "channels_first" : "channels_last", keep ? "true" : "false");
                nnp_layer *l = kit_layer(kinds[k], json);
                /* 70 channels: more than one channel block of the
                 * channels-last kernels */
                enum { C = 70 };
                pool_case c = {kinds[k], 2, 5, 3, C, 0, 0, 0, 0, "valid", NULL, cf, 0};
                nnp_shape xs = in_shape(&c);
                nnp_shape os = kit_build(l, 1, &xs);
                if (keep)
                    cr_assert(os.rank == 4 && os.dims[cf ? 1 : 3] == C &&
                              os.dims[cf ? 2 : 1] == 1 && os.dims[cf ? 3 : 2] == 1);
                else
                    cr_assert(os.rank == 2 && os.dims[0] == 2 && os.dims[1] == C);
                nnp_tensor x = kit_tensor(&xs), y = kit_tensor(&os);
                fill_distinct(&x);
                nnp_tensor *ins[1] = {&x};
                kit_forward(l, ins, 1, &y, NNP_MODE_INFER);
                double e[2 * C];
                for (int n = 0; n < 2; n++)
                    for (int ch = 0; ch < C; ch++) {
                        double acc = k ? -INFINITY : 0;
                        for (int h = 0; h < 5; h++)
                            for (int w = 0; w < 3; w++) {
                                double v = xat(&c, x.data, n, h, w, ch);
                                acc = k ? fmax(acc, v) : acc + v / 15;
                            }
                        e[n * C + ch] = acc;
                    }
                tu_assert_close_f32(json, y.data, e, 2 * C, 1e-6, 1e-6);
                /* every input gradient against a direct loop: the maximum's
                 * position (values are distinct) or 1/15 of the average */
                nnp_tensor gy = kit_tensor(&os), gx = kit_tensor(&xs);
                kit_fill(&gy, -1, 1);
                nnp_tensor *gxs[1] = {&gx};
                kit_backward(l, ins, 1, &y, &gy, gxs, NNP_MODE_TRAIN);
                double *ge = calloc((size_t)kit_numel(&xs), sizeof *ge);
                for (int n = 0; n < 2; n++)
                    for (int ch = 0; ch < C; ch++)
                        for (int h = 0; h < 5; h++)
                            for (int w = 0; w < 3; w++) {
                                int64_t at = at4(&c, 5, 3, n, ch, h, w);
                                double g1 = kit_data(&gy)[n * C + ch];
                                if (!k)
                                    ge[at] = g1 / 15;
                                else if (xat(&c, x.data, n, h, w, ch) == e[n * C + ch])
                                    ge[at] = g1;
                            }
                tu_assert_close_f32(json, gx.data, ge, kit_numel(&xs), 1e-6, 1e-6);
                free(ge);
                nnp_tensor_free(&gy);
                nnp_tensor_free(&gx);
                kit_gc g = kit_gc_default();
                kit_gradcheck(&g, l, ins, 1, &os);
                nnp_tensor_free(&x);
                nnp_tensor_free(&y);
                nnp_layer_free(l);
            }
}

Test(pooling, deterministic_across_thread_counts)
{
    kit_seed(34);
    const pool_case cs[4] = {
        {"MaxPooling2D", 8, 30, 31, 20, 3, 3, 2, 2, "same", NULL, 0, 0},
        {"AveragePooling2D", 8, 30, 31, 20, 2, 3, 1, 2, "same", NULL, 1, 0},
        {"AveragePooling2D", 8, 30, 31, 20, 3, 3, 2, 2, "valid", NULL, 0, 0},
        {"MaxPooling2D", 8, 30, 31, 20, 3, 3, 2, 2, "valid", pads_c, 1, 0}, /* recorded */
    };
    for (int i = 0; i < 4; i++) {
        char json[256];
        json_of(&cs[i], json, sizeof json);
        nnp_layer *l = kit_layer(cs[i].kind, json);
        nnp_shape xs = in_shape(&cs[i]);
        nnp_shape os = kit_build(l, 1, &xs);
        nnp_tensor x = kit_tensor(&xs);
        kit_fill(&x, -1, 1);
        nnp_tensor *ins[1] = {&x};
        kit_threads_identical(l, ins, 1, &os, NNP_MODE_TRAIN);
        nnp_tensor_free(&x);
        nnp_layer_free(l);
    }
}

Test(pooling, clear_errors)
{
    nnp_error err;
    nnp_shape x = KS(1, 5, 5, 2), small = KS(1, 2, 5, 2), r3 = KS(5, 5, 2);
    cr_assert_neq(kit_layer_fails("MaxPooling2D", "{\"padding\": \"full\"}", 1, &x, &err), NNP_OK);
    cr_assert(strstr(err.msg, "full"), "%s", err.msg);
    cr_assert_eq(kit_layer_fails("MaxPooling2D", "{\"pool_size\": 3}", 1, &small, &err),
                 NNP_ERR_SHAPE);
    cr_assert(strstr(err.msg, "larger than"), "%s", err.msg);
    cr_assert_eq(kit_layer_fails("AveragePooling2D", "{}", 1, &r3, &err), NNP_ERR_SHAPE);
    cr_assert(strstr(err.msg, "rank-4"), "%s", err.msg);
    cr_assert_eq(kit_layer_fails("GlobalAveragePooling2D", "{}", 1, &r3, &err), NNP_ERR_SHAPE);
    cr_assert(strstr(err.msg, "rank-4"), "%s", err.msg);
    cr_assert_neq(kit_layer_fails("MaxPooling2D", "{\"pads\": [2, 0, 0, 0]}", 1, &x, &err),
                  NNP_OK);
    cr_assert(strstr(err.msg, "pads"), "%s", err.msg);
}
