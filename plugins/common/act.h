/* Keras activation functions: forward, backward and ONNX export, shared by
 * the Activation/ReLU/Softmax kinds and the `activation` argument of Dense
 * and Conv2D. act.c is part of the plugins' static library
 * (plugins/common), linked into each plugin with hidden symbols. */
#ifndef NNP_ACT_H
#define NNP_ACT_H

#include <nnplug/plugin.h>

typedef enum act_id {
    ACT_LINEAR = 0,
    ACT_RELU,
    ACT_SIGMOID,
    ACT_TANH,
    ACT_SOFTMAX,      /* over an axis (the last one for a layer's activation) */
    ACT_LOG_SOFTMAX,
    ACT_ELU,          /* alpha */
    ACT_SELU,
    ACT_SOFTPLUS,
    ACT_SOFTSIGN,
    ACT_GELU,         /* exact: 0.5 x (1 + erf(x / sqrt 2)) */
    ACT_GELU_TANH,    /* tanh approximation */
    ACT_SWISH,        /* x sigmoid(x) (= silu) */
    ACT_HARD_SIGMOID, /* clip(0.2 x + 0.5, 0, 1): Keras 2 / tfjs / ONNX HardSigmoid */
    ACT_HARD_SILU,    /* x relu6(x + 3) / 6 (= hard_swish) */
    ACT_EXPONENTIAL,
    ACT_RELU6,
    ACT_LEAKY_RELU,   /* alpha = negative slope */
    ACT_MISH,
    ACT_RELU_GENERAL  /* Keras ReLU layer: threshold, alpha (negative_slope), max_value */
} act_id;

typedef struct act_fn {
    act_id id;
    float alpha;      /* ELU alpha; LeakyReLU / ReLU negative slope */
    float threshold;  /* ReLU layer */
    float max_value;  /* ReLU layer; INFINITY: none */
} act_fn;

/* Keras activation names accepted by the `activation` arguments ('|'
 * separated, for the schema's choices). */
extern const char act_choices[];

/* The schema entry of a layer's `activation` argument (Dense, Conv2D). */
#define ACT_PARAM_DEF                                                                \
    {"activation", NNP_PARAM_STRING, "\"linear\"", NNP_PARAM_NULLABLE, 0, 0, act_choices, \
     "Keras activation applied to the output (null = linear)"}

/* Parses a Keras activation name (NULL = linear); 0 on success, -1 for an
 * unknown name. */
int act_parse(const char *name, act_fn *out);
/* The Keras name of an activation (ACT_RELU_GENERAL: "relu"). */
const char *act_name(const act_fn *a);
/* Whether backward needs the pre-activation input x (otherwise y suffices). */
int act_needs_x(const act_fn *a);

/* y = f(x) over a tensor seen as [outer, len, inner]; softmax and
 * log_softmax normalize over `len`, the others are elementwise. y may alias
 * x. OpenMP-parallel; deterministic for any thread count. */
void act_forward(const act_fn *a, const float *x, float *y, int64_t outer, int64_t len,
                 int64_t inner);
/* dx = dy * f'(x), from x (may be NULL when !act_needs_x) and y = f(x). dx
 * may alias x or dy. */
void act_backward(const act_fn *a, const float *x, const float *y, const float *dy, float *dx,
                  int64_t outer, int64_t len, int64_t inner);

/* Writes ONNX nodes computing output = f(input) for an input of the given
 * rank (softmax: over `axis`, 0..rank-1). Linear writes an Identity node. */
nnp_status act_to_onnx(const nnp_host *h, nnp_onnx_writer *w, const act_fn *a, const char *base,
                       const char *input, const char *output, int rank, int axis,
                       nnp_error *err);

/* The activation an ONNX node computes, for the elementwise ops (Relu,
 * Sigmoid, Tanh, Elu, Selu, Softplus, Softsign, Exp, HardSigmoid, HardSwish,
 * LeakyRelu, Gelu, Mish, Identity). NNP_ERR_NOT_FOUND for other ops. */
nnp_status act_from_onnx(const nnp_host *h, const nnp_onnx_reader *r, act_fn *a, nnp_error *err);

#endif
