/* Keras activation functions (see act.h). The formulas follow Keras
 * (keras/src/activations); where Keras 3 and Keras 2 / tfjs-layers differ
 * (hard_sigmoid), the tfjs formula is used because tfjs is the project's
 * executable oracle, and it is also ONNX HardSigmoid's default. */
#include "act.h"

#include <nnplug/plugin_util.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#define SELU_ALPHA 1.6732632423543772848170429916717
#define SELU_SCALE 1.0507009873554804934193349852946
#define GELU_K 0.7978845608028654 /* sqrt(2 / pi) */

/* Elementwise loops go parallel from this many elements on. */
#define ACT_PAR_MIN 32768

const char act_choices[] =
    "linear|relu|sigmoid|tanh|softmax|log_softmax|elu|selu|softplus|softsign|gelu|gelu_new|"
    "swish|silu|hard_sigmoid|hard_silu|hard_swish|exponential|relu6|leaky_relu|mish|"
    "hardSigmoid";

static const struct {
    const char *name;
    act_id id;
} names[] = {
    {"linear", ACT_LINEAR},           {"relu", ACT_RELU},
    {"sigmoid", ACT_SIGMOID},         {"tanh", ACT_TANH},
    {"softmax", ACT_SOFTMAX},         {"log_softmax", ACT_LOG_SOFTMAX},
    {"elu", ACT_ELU},                 {"selu", ACT_SELU},
    {"softplus", ACT_SOFTPLUS},       {"softsign", ACT_SOFTSIGN},
    {"gelu", ACT_GELU},               {"gelu_new", ACT_GELU_TANH},
    {"swish", ACT_SWISH},             {"silu", ACT_SWISH},
    {"hard_sigmoid", ACT_HARD_SIGMOID}, {"hard_silu", ACT_HARD_SILU},
    {"hard_swish", ACT_HARD_SILU},    {"exponential", ACT_EXPONENTIAL},
    {"relu6", ACT_RELU6},             {"leaky_relu", ACT_LEAKY_RELU},
    {"mish", ACT_MISH},               {"hardSigmoid", ACT_HARD_SIGMOID}, /* tfjs's name */
};

int act_parse(const char *name, act_fn *out)
{
    act_fn a = {ACT_LINEAR, 0.0f, 0.0f, INFINITY};
    if (name && name[0]) {
        size_t i;
        for (i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strcmp(names[i].name, name) == 0)
                break;
        if (i == sizeof names / sizeof names[0])
            return -1;
        a.id = names[i].id;
    }
    if (a.id == ACT_ELU)
        a.alpha = 1.0f;
    if (a.id == ACT_LEAKY_RELU)
        a.alpha = 0.2f; /* keras.activations.leaky_relu's negative_slope */
    *out = a;
    return 0;
}

const char *act_name(const act_fn *a)
{
    if (a->id == ACT_RELU_GENERAL)
        return "relu";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].id == a->id)
            return names[i].name;
    return "?";
}

int act_needs_x(const act_fn *a)
{
    switch (a->id) {
    case ACT_GELU:
    case ACT_GELU_TANH:
    case ACT_SWISH:
    case ACT_HARD_SILU:
    case ACT_LEAKY_RELU:
    case ACT_MISH:
    case ACT_RELU_GENERAL:
        return 1;
    default:
        return 0;
    }
}

static inline float sigmoidf(float x)
{
    /* both branches avoid overflow of expf */
    if (x >= 0.0f)
        return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

static inline float softplusf(float x)
{
    return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x));
}

#define EW_LOOP(n, body)                                                   \
    do {                                                                   \
        _Pragma("omp parallel for schedule(static) if ((n) >= ACT_PAR_MIN)") \
        for (int64_t i = 0; i < (n); i++) {                                \
            body;                                                          \
        }                                                                  \
    } while (0)

/* Softmax / log-softmax over len, each (outer, inner) line on its own. */
static void softmax_fwd(int log_form, const float *x, float *y, int64_t outer, int64_t len,
                        int64_t inner)
{
    const int64_t lines = outer * inner;
#pragma omp parallel for schedule(static) if (lines * len >= ACT_PAR_MIN)
    for (int64_t l = 0; l < lines; l++) {
        const int64_t o = l / inner, in = l % inner;
        const float *xl = x + o * len * inner + in;
        float *yl = y + o * len * inner + in;
        float m = -INFINITY;
        for (int64_t k = 0; k < len; k++)
            m = fmaxf(m, xl[k * inner]);
        if (m == -INFINITY)
            m = 0.0f;
        double sum = 0.0;
        for (int64_t k = 0; k < len; k++)
            sum += exp((double)(xl[k * inner] - m));
        if (log_form) {
            const double ls = log(sum);
            for (int64_t k = 0; k < len; k++)
                yl[k * inner] = (float)((double)(xl[k * inner] - m) - ls);
        } else {
            for (int64_t k = 0; k < len; k++)
                yl[k * inner] = (float)(exp((double)(xl[k * inner] - m)) / sum);
        }
    }
}

static void softmax_bwd(int log_form, const float *y, const float *dy, float *dx, int64_t outer,
                        int64_t len, int64_t inner)
{
    const int64_t lines = outer * inner;
#pragma omp parallel for schedule(static) if (lines * len >= ACT_PAR_MIN)
    for (int64_t l = 0; l < lines; l++) {
        const int64_t o = l / inner, in = l % inner;
        const int64_t off = o * len * inner + in;
        double s = 0.0;
        if (log_form) {
            /* y = x - logsumexp: dx = dy - softmax * sum(dy) */
            for (int64_t k = 0; k < len; k++)
                s += dy[off + k * inner];
            for (int64_t k = 0; k < len; k++)
                dx[off + k * inner] =
                    (float)(dy[off + k * inner] - exp((double)y[off + k * inner]) * s);
        } else {
            /* dx = y * (dy - sum(dy * y)) */
            for (int64_t k = 0; k < len; k++)
                s += (double)dy[off + k * inner] * y[off + k * inner];
            for (int64_t k = 0; k < len; k++)
                dx[off + k * inner] =
                    (float)(y[off + k * inner] * ((double)dy[off + k * inner] - s));
        }
    }
}

void act_forward(const act_fn *a, const float *x, float *y, int64_t outer, int64_t len,
                 int64_t inner)
{
    const int64_t n = outer * len * inner;
    const float al = a->alpha;
    switch (a->id) {
    case ACT_LINEAR:
        if (y != x)
            EW_LOOP(n, y[i] = x[i]);
        break;
    case ACT_RELU:
        EW_LOOP(n, y[i] = x[i] > 0.0f ? x[i] : 0.0f);
        break;
    case ACT_SIGMOID:
        EW_LOOP(n, y[i] = sigmoidf(x[i]));
        break;
    case ACT_TANH:
        EW_LOOP(n, y[i] = tanhf(x[i]));
        break;
    case ACT_SOFTMAX:
    case ACT_LOG_SOFTMAX:
        softmax_fwd(a->id == ACT_LOG_SOFTMAX, x, y, outer, len, inner);
        break;
    case ACT_ELU:
        EW_LOOP(n, y[i] = x[i] > 0.0f ? x[i] : al * expm1f(x[i]));
        break;
    case ACT_SELU:
        EW_LOOP(n, y[i] = x[i] > 0.0f ? (float)SELU_SCALE * x[i]
                                      : (float)(SELU_SCALE * SELU_ALPHA) * expm1f(x[i]));
        break;
    case ACT_SOFTPLUS:
        EW_LOOP(n, y[i] = softplusf(x[i]));
        break;
    case ACT_SOFTSIGN:
        EW_LOOP(n, y[i] = x[i] / (1.0f + fabsf(x[i])));
        break;
    case ACT_GELU:
        EW_LOOP(n, y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2)));
        break;
    case ACT_GELU_TANH:
        EW_LOOP(n, {
            const float v = x[i];
            y[i] = 0.5f * v * (1.0f + tanhf((float)GELU_K * (v + 0.044715f * v * v * v)));
        });
        break;
    case ACT_SWISH:
        EW_LOOP(n, y[i] = x[i] * sigmoidf(x[i]));
        break;
    case ACT_HARD_SIGMOID:
        EW_LOOP(n, y[i] = fminf(fmaxf(0.2f * x[i] + 0.5f, 0.0f), 1.0f));
        break;
    case ACT_HARD_SILU:
        EW_LOOP(n, y[i] = x[i] * fminf(fmaxf(x[i] + 3.0f, 0.0f), 6.0f) / 6.0f);
        break;
    case ACT_EXPONENTIAL:
        EW_LOOP(n, y[i] = expf(x[i]));
        break;
    case ACT_RELU6:
        EW_LOOP(n, y[i] = fminf(fmaxf(x[i], 0.0f), 6.0f));
        break;
    case ACT_LEAKY_RELU:
        EW_LOOP(n, y[i] = x[i] > 0.0f ? x[i] : al * x[i]);
        break;
    case ACT_MISH:
        EW_LOOP(n, y[i] = x[i] * tanhf(softplusf(x[i])));
        break;
    case ACT_RELU_GENERAL: {
        const float th = a->threshold, mx = a->max_value;
        EW_LOOP(n, {
            const float v = x[i];
            y[i] = v >= mx ? mx : v >= th ? v : al * (v - th);
        });
        break;
    }
    }
}

void act_backward(const act_fn *a, const float *x, const float *y, const float *dy, float *dx,
                  int64_t outer, int64_t len, int64_t inner)
{
    const int64_t n = outer * len * inner;
    const float al = a->alpha;
    switch (a->id) {
    case ACT_LINEAR:
        if (dx != dy)
            EW_LOOP(n, dx[i] = dy[i]);
        break;
    case ACT_RELU:
        EW_LOOP(n, {
            const float g = dy[i]; /* loaded unconditionally: the loop vectorizes */
            dx[i] = y[i] > 0.0f ? g : 0.0f;
        });
        break;
    case ACT_SIGMOID:
        EW_LOOP(n, dx[i] = dy[i] * y[i] * (1.0f - y[i]));
        break;
    case ACT_TANH:
        EW_LOOP(n, dx[i] = dy[i] * (1.0f - y[i] * y[i]));
        break;
    case ACT_SOFTMAX:
    case ACT_LOG_SOFTMAX:
        softmax_bwd(a->id == ACT_LOG_SOFTMAX, y, dy, dx, outer, len, inner);
        break;
    case ACT_ELU:
        /* x > 0 exactly when y > 0 (alpha > 0); below, f' = alpha e^x = y + alpha */
        EW_LOOP(n, dx[i] = y[i] > 0.0f ? dy[i] : dy[i] * (y[i] + al));
        break;
    case ACT_SELU:
        EW_LOOP(n, dx[i] = y[i] > 0.0f ? dy[i] * (float)SELU_SCALE
                                       : dy[i] * (y[i] + (float)(SELU_SCALE * SELU_ALPHA)));
        break;
    case ACT_SOFTPLUS:
        /* f' = sigmoid(x) = 1 - e^-y */
        EW_LOOP(n, dx[i] = dy[i] * -expm1f(-y[i]));
        break;
    case ACT_SOFTSIGN:
        EW_LOOP(n, {
            const float t = 1.0f - fabsf(y[i]);
            dx[i] = dy[i] * t * t;
        });
        break;
    case ACT_GELU:
        EW_LOOP(n, {
            const float v = x[i];
            const float cdf = 0.5f * (1.0f + erff(v * (float)M_SQRT1_2));
            const float pdf = expf(-0.5f * v * v) * 0.3989422804014327f;
            dx[i] = dy[i] * (cdf + v * pdf);
        });
        break;
    case ACT_GELU_TANH:
        EW_LOOP(n, {
            const float v = x[i];
            const float u = (float)GELU_K * (v + 0.044715f * v * v * v);
            const float t = tanhf(u);
            const float du = (float)GELU_K * (1.0f + 3.0f * 0.044715f * v * v);
            dx[i] = dy[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du);
        });
        break;
    case ACT_SWISH:
        EW_LOOP(n, {
            const float s = sigmoidf(x[i]);
            dx[i] = dy[i] * s * (1.0f + x[i] * (1.0f - s));
        });
        break;
    case ACT_HARD_SIGMOID:
        EW_LOOP(n, dx[i] = (y[i] > 0.0f && y[i] < 1.0f) ? 0.2f * dy[i] : 0.0f);
        break;
    case ACT_HARD_SILU:
        EW_LOOP(n, {
            const float v = x[i];
            dx[i] = v < -3.0f ? 0.0f : v > 3.0f ? dy[i] : dy[i] * (2.0f * v + 3.0f) / 6.0f;
        });
        break;
    case ACT_EXPONENTIAL:
        EW_LOOP(n, dx[i] = dy[i] * y[i]);
        break;
    case ACT_RELU6:
        EW_LOOP(n, dx[i] = (y[i] > 0.0f && y[i] < 6.0f) ? dy[i] : 0.0f);
        break;
    case ACT_LEAKY_RELU:
        EW_LOOP(n, dx[i] = x[i] > 0.0f ? dy[i] : al * dy[i]);
        break;
    case ACT_MISH:
        EW_LOOP(n, {
            const float v = x[i];
            const float t = tanhf(softplusf(v));
            dx[i] = dy[i] * (t + v * (1.0f - t * t) * sigmoidf(v));
        });
        break;
    case ACT_RELU_GENERAL: {
        const float th = a->threshold, mx = a->max_value;
        EW_LOOP(n, {
            const float v = x[i];
            dx[i] = v >= mx ? 0.0f : v >= th ? dy[i] : al * dy[i];
        });
        break;
    }
    }
}

/* ------------------------------------------------------------------ */
/* ONNX                                                                */
/* ------------------------------------------------------------------ */

static nnp_status node1(const nnp_host *h, nnp_onnx_writer *w, const char *op, const char *base,
                        const char *in, const char *out, int *node, nnp_error *err)
{
    *node = nnp_pu_add_node(h, w, op, base, &in, 1, out, err);
    return *node < 0 ? nnp_pu_err_code(err) : NNP_OK;
}

static nnp_status node2(const nnp_host *h, nnp_onnx_writer *w, const char *op, const char *base,
                        const char *a, const char *b, const char *out, nnp_error *err)
{
    const char *ins[2] = {a, b};
    int node = nnp_pu_add_node(h, w, op, base, ins, 2, out, err);
    return node < 0 ? nnp_pu_err_code(err) : NNP_OK;
}

static nnp_status scalar(const nnp_host *h, nnp_onnx_writer *w, const char *base,
                         const char *what, float v, char *name, size_t size, nnp_error *err)
{
    nnp_shape sh = {0, {0}};
    return nnp_pu_add_const(h, w, base, what, &sh, &v, name, size, err);
}

/* Clip(x, lo, hi) at any opset (bounds are attributes before opset 11). */
static nnp_status clip(const nnp_host *h, nnp_onnx_writer *w, const char *base, const char *in,
                       const char *out, float lo, float hi, nnp_error *err)
{
    const int opset = h->onnx_writer_opset(w);
    int node;
    nnp_status st;
    if (opset < 11) {
        st = node1(h, w, "Clip", base, in, out, &node, err);
        if (st == NNP_OK)
            st = h->onnx_attr_float(w, node, "min", lo, err);
        if (st == NNP_OK && isfinite(hi))
            st = h->onnx_attr_float(w, node, "max", hi, err);
        return st;
    }
    char n_lo[256], n_hi[256];
    st = scalar(h, w, base, "clip_min", lo, n_lo, sizeof n_lo, err);
    if (st == NNP_OK && isfinite(hi))
        st = scalar(h, w, base, "clip_max", hi, n_hi, sizeof n_hi, err);
    if (st != NNP_OK)
        return st;
    const char *ins[3] = {in, n_lo, n_hi};
    node = nnp_pu_add_node(h, w, "Clip", base, ins, isfinite(hi) ? 3 : 2, out, err);
    return node < 0 ? nnp_pu_err_code(err) : NNP_OK;
}

/* Softmax / LogSoftmax over axis: opset >= 13 takes the axis directly; older
 * opsets flatten from the axis on, which equals Keras only for the last
 * axis, so other axes are transposed to the end and back. */
static nnp_status softmax_onnx(const nnp_host *h, nnp_onnx_writer *w, const char *op,
                               const char *base, const char *in, const char *out, int rank,
                               int axis, nnp_error *err)
{
    const int opset = h->onnx_writer_opset(w);
    int node;
    if (opset >= 13 || axis == rank - 1) {
        nnp_status st = node1(h, w, op, base, in, out, &node, err);
        if (st == NNP_OK)
            st = h->onnx_attr_int(w, node, "axis", opset >= 13 ? -1 - (rank - 1 - axis) : axis,
                                  err);
        return st;
    }
    int64_t perm[NNP_MAX_RANK];
    int k = 0;
    for (int i = 0; i < rank; i++)
        if (i != axis)
            perm[k++] = i;
    perm[k] = axis;
    int64_t inv[NNP_MAX_RANK];
    for (int i = 0; i < rank; i++)
        inv[perm[i]] = i;
    char t1[256], t2[256];
    nnp_pu_value_name(h, w, base, "axis_last", t1, sizeof t1);
    nnp_pu_value_name(h, w, base, "normalized", t2, sizeof t2);
    nnp_status st = node1(h, w, "Transpose", base, in, t1, &node, err);
    if (st == NNP_OK)
        st = h->onnx_attr_ints(w, node, "perm", perm, rank, err);
    if (st == NNP_OK)
        st = node1(h, w, op, base, t1, t2, &node, err);
    if (st == NNP_OK)
        st = h->onnx_attr_int(w, node, "axis", rank - 1, err);
    if (st == NNP_OK)
        st = node1(h, w, "Transpose", base, t2, out, &node, err);
    if (st == NNP_OK)
        st = h->onnx_attr_ints(w, node, "perm", inv, rank, err);
    return st;
}

/* x * g(x) where g is written by the caller into the value gname. */
static nnp_status times_x(const nnp_host *h, nnp_onnx_writer *w, const char *base,
                          const char *in, const char *gname, const char *out, nnp_error *err)
{
    return node2(h, w, "Mul", base, in, gname, out, err);
}

nnp_status act_to_onnx(const nnp_host *h, nnp_onnx_writer *w, const act_fn *a, const char *base,
                       const char *in, const char *out, int rank, int axis, nnp_error *err)
{
    const int opset = h->onnx_writer_opset(w);
    int node;
    nnp_status st = NNP_OK;
    char t1[256], t2[256], t3[256], c1[256], c2[256];
    switch (a->id) {
    case ACT_LINEAR:
        return node1(h, w, "Identity", base, in, out, &node, err);
    case ACT_RELU:
        return node1(h, w, "Relu", base, in, out, &node, err);
    case ACT_SIGMOID:
        return node1(h, w, "Sigmoid", base, in, out, &node, err);
    case ACT_TANH:
        return node1(h, w, "Tanh", base, in, out, &node, err);
    case ACT_SOFTMAX:
        return softmax_onnx(h, w, "Softmax", base, in, out, rank, axis, err);
    case ACT_LOG_SOFTMAX:
        return softmax_onnx(h, w, "LogSoftmax", base, in, out, rank, axis, err);
    case ACT_ELU:
        st = node1(h, w, "Elu", base, in, out, &node, err);
        return st ? st : h->onnx_attr_float(w, node, "alpha", a->alpha, err);
    case ACT_SELU:
        st = node1(h, w, "Selu", base, in, out, &node, err);
        if (st == NNP_OK)
            st = h->onnx_attr_float(w, node, "alpha", (float)SELU_ALPHA, err);
        return st ? st : h->onnx_attr_float(w, node, "gamma", (float)SELU_SCALE, err);
    case ACT_SOFTPLUS:
        return node1(h, w, "Softplus", base, in, out, &node, err);
    case ACT_SOFTSIGN:
        return node1(h, w, "Softsign", base, in, out, &node, err);
    case ACT_EXPONENTIAL:
        return node1(h, w, "Exp", base, in, out, &node, err);
    case ACT_HARD_SIGMOID:
        st = node1(h, w, "HardSigmoid", base, in, out, &node, err);
        if (st == NNP_OK)
            st = h->onnx_attr_float(w, node, "alpha", 0.2f, err);
        return st ? st : h->onnx_attr_float(w, node, "beta", 0.5f, err);
    case ACT_LEAKY_RELU:
        st = node1(h, w, "LeakyRelu", base, in, out, &node, err);
        return st ? st : h->onnx_attr_float(w, node, "alpha", a->alpha, err);
    case ACT_RELU6:
        return clip(h, w, base, in, out, 0.0f, 6.0f, err);
    case ACT_GELU:
    case ACT_GELU_TANH:
        if (opset >= 20) {
            st = node1(h, w, "Gelu", base, in, out, &node, err);
            return st ? st
                      : h->onnx_attr_string(w, node, "approximate",
                                            a->id == ACT_GELU ? "none" : "tanh", err);
        }
        if (a->id == ACT_GELU) {
            /* 0.5 x (1 + erf(x / sqrt 2)) */
            st = scalar(h, w, base, "inv_sqrt2", (float)M_SQRT1_2, c1, sizeof c1, err);
            if (st == NNP_OK)
                st = scalar(h, w, base, "one", 1.0f, c2, sizeof c2, err);
            nnp_pu_value_name(h, w, base, "scaled", t1, sizeof t1);
            nnp_pu_value_name(h, w, base, "erf", t2, sizeof t2);
            nnp_pu_value_name(h, w, base, "cdf2", t3, sizeof t3);
            if (st == NNP_OK)
                st = node2(h, w, "Mul", base, in, c1, t1, err);
            if (st == NNP_OK)
                st = node1(h, w, "Erf", base, t1, t2, &node, err);
            if (st == NNP_OK)
                st = node2(h, w, "Add", base, t2, c2, t3, err);
        } else {
            /* 0.5 x (1 + tanh(k (x + 0.044715 x^3))) */
            char t4[256], t5[256];
            st = scalar(h, w, base, "c3", 0.044715f, c1, sizeof c1, err);
            if (st == NNP_OK)
                st = scalar(h, w, base, "one", 1.0f, c2, sizeof c2, err);
            char ck[256];
            if (st == NNP_OK)
                st = scalar(h, w, base, "k", (float)GELU_K, ck, sizeof ck, err);
            nnp_pu_value_name(h, w, base, "x2", t1, sizeof t1);
            nnp_pu_value_name(h, w, base, "x3", t2, sizeof t2);
            nnp_pu_value_name(h, w, base, "inner", t4, sizeof t4);
            nnp_pu_value_name(h, w, base, "tanh", t5, sizeof t5);
            nnp_pu_value_name(h, w, base, "cdf2", t3, sizeof t3);
            char t6[256], t7[256];
            nnp_pu_value_name(h, w, base, "c3x3", t6, sizeof t6);
            nnp_pu_value_name(h, w, base, "sum", t7, sizeof t7);
            if (st == NNP_OK)
                st = node2(h, w, "Mul", base, in, in, t1, err);
            if (st == NNP_OK)
                st = node2(h, w, "Mul", base, t1, in, t2, err);
            if (st == NNP_OK)
                st = node2(h, w, "Mul", base, t2, c1, t6, err);
            if (st == NNP_OK)
                st = node2(h, w, "Add", base, in, t6, t7, err);
            if (st == NNP_OK)
                st = node2(h, w, "Mul", base, t7, ck, t4, err);
            if (st == NNP_OK)
                st = node1(h, w, "Tanh", base, t4, t5, &node, err);
            if (st == NNP_OK)
                st = node2(h, w, "Add", base, t5, c2, t3, err);
        }
        {
            char half[256], hx[256];
            if (st == NNP_OK)
                st = scalar(h, w, base, "half", 0.5f, half, sizeof half, err);
            nnp_pu_value_name(h, w, base, "half_x", hx, sizeof hx);
            if (st == NNP_OK)
                st = node2(h, w, "Mul", base, in, half, hx, err);
            if (st == NNP_OK)
                st = node2(h, w, "Mul", base, hx, t3, out, err);
        }
        return st;
    case ACT_SWISH:
        nnp_pu_value_name(h, w, base, "sigmoid", t1, sizeof t1);
        st = node1(h, w, "Sigmoid", base, in, t1, &node, err);
        return st ? st : times_x(h, w, base, in, t1, out, err);
    case ACT_HARD_SILU:
        if (opset >= 14)
            return node1(h, w, "HardSwish", base, in, out, &node, err);
        nnp_pu_value_name(h, w, base, "hard_sigmoid", t1, sizeof t1);
        st = node1(h, w, "HardSigmoid", base, in, t1, &node, err);
        if (st == NNP_OK)
            st = h->onnx_attr_float(w, node, "alpha", 1.0f / 6.0f, err);
        if (st == NNP_OK)
            st = h->onnx_attr_float(w, node, "beta", 0.5f, err);
        return st ? st : times_x(h, w, base, in, t1, out, err);
    case ACT_MISH:
        if (opset >= 18)
            return node1(h, w, "Mish", base, in, out, &node, err);
        nnp_pu_value_name(h, w, base, "softplus", t1, sizeof t1);
        nnp_pu_value_name(h, w, base, "tanh", t2, sizeof t2);
        st = node1(h, w, "Softplus", base, in, t1, &node, err);
        if (st == NNP_OK)
            st = node1(h, w, "Tanh", base, t1, t2, &node, err);
        return st ? st : times_x(h, w, base, in, t2, out, err);
    case ACT_RELU_GENERAL: {
        const float th = a->threshold, mx = a->max_value, sl = a->alpha;
        if (th == 0.0f && sl == 0.0f)
            return isfinite(mx) ? clip(h, w, base, in, out, 0.0f, mx, err)
                                : node1(h, w, "Relu", base, in, out, &node, err);
        if (th == 0.0f && !isfinite(mx)) {
            st = node1(h, w, "LeakyRelu", base, in, out, &node, err);
            return st ? st : h->onnx_attr_float(w, node, "alpha", sl, err);
        }
        /* general: Where(x >= th, min(x, max), slope * (x - th)) */
        char cth[256], csl[256], cond[256], hi[256], lo[256], d[256];
        st = scalar(h, w, base, "threshold", th, cth, sizeof cth, err);
        if (st == NNP_OK)
            st = scalar(h, w, base, "negative_slope", sl, csl, sizeof csl, err);
        nnp_pu_value_name(h, w, base, "below", cond, sizeof cond);
        nnp_pu_value_name(h, w, base, "upper", hi, sizeof hi);
        nnp_pu_value_name(h, w, base, "shifted", d, sizeof d);
        nnp_pu_value_name(h, w, base, "lower", lo, sizeof lo);
        if (st == NNP_OK)
            st = node2(h, w, "Less", base, in, cth, cond, err);
        char cmx[256];
        if (st == NNP_OK && isfinite(mx))
            st = scalar(h, w, base, "max_value", mx, cmx, sizeof cmx, err);
        if (st == NNP_OK)
            st = isfinite(mx) ? node2(h, w, "Min", base, in, cmx, hi, err)
                              : node1(h, w, "Identity", base, in, hi, &node, err);
        if (st == NNP_OK)
            st = node2(h, w, "Sub", base, in, cth, d, err);
        if (st == NNP_OK)
            st = node2(h, w, "Mul", base, d, csl, lo, err);
        if (st == NNP_OK) {
            const char *ins[3] = {cond, lo, hi};
            node = nnp_pu_add_node(h, w, "Where", base, ins, 3, out, err);
            if (node < 0)
                st = nnp_pu_err_code(err);
        }
        return st;
    }
    }
    return h->error_set(err, NNP_ERR_INTERNAL, "activation %d has no ONNX form", (int)a->id);
}

static int near(float a, double b) { return fabs((double)a - b) <= 1e-6 * fabs(b) + 1e-7; }

nnp_status act_from_onnx(const nnp_host *h, const nnp_onnx_reader *r, act_fn *a, nnp_error *err)
{
    const char *op = h->onnx_op_type(r);
    const char *node = nnp_pu_node_label(h, r);
    nnp_status st = NNP_OK;
    act_parse(NULL, a);
    if (!op)
        return NNP_ERR_NOT_FOUND;
    static const struct {
        const char *op;
        const char *keras;
    } simple[] = {
        {"Identity", "linear"}, {"Relu", "relu"},         {"Sigmoid", "sigmoid"},
        {"Tanh", "tanh"},       {"Softplus", "softplus"}, {"Softsign", "softsign"},
        {"Exp", "exponential"}, {"HardSwish", "hard_silu"}, {"Mish", "mish"},
    };
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++)
        if (strcmp(op, simple[i].op) == 0)
            return act_parse(simple[i].keras, a) == 0 ? NNP_OK : NNP_ERR_INTERNAL;
    if (strcmp(op, "Elu") == 0) {
        act_parse("elu", a);
        return nnp_pu_attr_float(h, r, "alpha", 1.0f, &a->alpha, err);
    }
    if (strcmp(op, "LeakyRelu") == 0) {
        act_parse("leaky_relu", a);
        return nnp_pu_attr_float(h, r, "alpha", 0.01f, &a->alpha, err);
    }
    if (strcmp(op, "Selu") == 0) {
        float al, ga;
        st = nnp_pu_attr_float(h, r, "alpha", 1.67326319217681884765625f, &al, err);
        if (st == NNP_OK)
            st = nnp_pu_attr_float(h, r, "gamma", 1.05070102214813232421875f, &ga, err);
        if (st != NNP_OK)
            return st;
        if (!near(al, SELU_ALPHA) || !near(ga, SELU_SCALE))
            return h->error_set(err, NNP_ERR_UNSUPPORTED,
                                "Selu node '%s': alpha=%g gamma=%g differ from Keras selu's "
                                "fixed constants (1.6733, 1.0507)",
                                node, (double)al, (double)ga);
        act_parse("selu", a);
        return NNP_OK;
    }
    if (strcmp(op, "HardSigmoid") == 0) {
        float al, be;
        st = nnp_pu_attr_float(h, r, "alpha", 0.2f, &al, err);
        if (st == NNP_OK)
            st = nnp_pu_attr_float(h, r, "beta", 0.5f, &be, err);
        if (st != NNP_OK)
            return st;
        if (!near(al, 0.2) || !near(be, 0.5))
            return h->error_set(err, NNP_ERR_UNSUPPORTED,
                                "HardSigmoid node '%s': alpha=%g beta=%g; only Keras's "
                                "hard_sigmoid (alpha 0.2, beta 0.5) is supported",
                                node, (double)al, (double)be);
        act_parse("hard_sigmoid", a);
        return NNP_OK;
    }
    if (strcmp(op, "Gelu") == 0) {
        char appr[32] = "none";
        if (h->onnx_has_attr(r, "approximate"))
            st = h->onnx_get_attr_string(r, "approximate", appr, sizeof appr, err);
        if (st != NNP_OK)
            return st;
        if (strcmp(appr, "none") != 0 && strcmp(appr, "tanh") != 0)
            return h->error_set(err, NNP_ERR_UNSUPPORTED,
                                "Gelu node '%s': approximate=\"%s\" is not none or tanh", node,
                                appr);
        act_parse(strcmp(appr, "tanh") == 0 ? "gelu_new" : "gelu", a);
        return NNP_OK;
    }
    return NNP_ERR_NOT_FOUND;
}
