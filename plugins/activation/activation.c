/* Weightless activation layers with Keras semantics: Activation, ReLU,
 * Softmax, LeakyReLU and ELU. The functions themselves live in
 * plugins/common/act.c, shared with Dense and Conv2D.
 *
 * ONNX: each kind serves its own op (Relu, Softmax, LeakyRelu, Elu; Activation
 * serves Sigmoid) and lists the further ops it imports through the
 * "nnp.onnx_ops" extension (Activation: Tanh, Softplus, ...; ReLU: Clip). */
#include <nnplug/plugin_util.h>

#include "common/act.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Highest opset whose definitions of these ops the mappings were checked
 * against. */
#define ACT_OPSET_MAX 23

typedef struct act_state {
    const nnp_host *host;
    const nnp_config *cfg;
    const char *kind;
    act_fn fn;
    int64_t axis_cfg;  /* Softmax */
    int rank, axis;    /* after build; axis normalized */
    int built;
} act_state;

/* ------------------------------------------------------------------ */
/* parameter schemas                                                   */
/* ------------------------------------------------------------------ */

static const nnp_param_def activation_params[] = {
    {"activation", NNP_PARAM_STRING, "\"linear\"", NNP_PARAM_NULLABLE, 0, 0, act_choices,
     "Keras activation name (null = linear)"},
};

static const nnp_param_def relu_params[] = {
    {"max_value", NNP_PARAM_FLOAT, "null", NNP_PARAM_NULLABLE | NNP_PARAM_HAS_MIN, 0, 0, NULL,
     "upper bound of the output; null = none"},
    {"negative_slope", NNP_PARAM_FLOAT, "0.0", NNP_PARAM_HAS_MIN, 0, 0, NULL,
     "slope below the threshold"},
    {"threshold", NNP_PARAM_FLOAT, "0.0", NNP_PARAM_HAS_MIN, 0, 0, NULL,
     "values below it are damped by negative_slope"},
};

static const nnp_param_def softmax_params[] = {
    {"axis", NNP_PARAM_INT, "-1", 0, 0, 0, NULL,
     "axis of the normalization; negative counts from the end"},
};

static const nnp_param_def leaky_params[] = {
    {"negative_slope", NNP_PARAM_FLOAT, "0.3", NNP_PARAM_HAS_MIN, 0, 0, NULL,
     "slope for x < 0 (Keras 3 name)"},
    {"alpha", NNP_PARAM_FLOAT, "0.3", NNP_PARAM_HAS_MIN, 0, 0, NULL,
     "slope for x < 0 (Keras 2 / tfjs name; used when negative_slope is left at 0.3)"},
};

static const nnp_param_def elu_params[] = {
    {"alpha", NNP_PARAM_FLOAT, "1.0", NNP_PARAM_HAS_MIN, 0, 0, NULL,
     "scale of the negative part: alpha * (exp(x) - 1)"},
};

/* ------------------------------------------------------------------ */
/* create / build                                                      */
/* ------------------------------------------------------------------ */

/* A state of the given kind computing the activation fn_name (NULL:
 * linear); NULL when out of memory (err says so). */
static act_state *new_state(const nnp_host *h, const nnp_config *cfg, const char *kind,
                            const char *fn_name, nnp_error *err)
{
    act_state *s = nnp_pu_state_alloc(h, sizeof *s, kind, err);
    if (!s)
        return NULL;
    s->host = h;
    s->cfg = cfg;
    s->kind = kind;
    act_parse(fn_name, &s->fn);
    return s;
}

static nnp_status activation_create(const nnp_host *h, const nnp_config *cfg, void **state,
                                    nnp_error *err)
{
    act_state *s = new_state(h, cfg, "Activation", NULL, err);
    if (!s)
        return NNP_ERR_NOMEM;
    const char *name = h->config_string(cfg, "activation");
    if (act_parse(name, &s->fn) != 0) {
        nnp_status st = nnp_pu_fail(h, err, NNP_ERR_INVALID, "Activation", nnp_pu_name(h, cfg),
                                    "unknown activation '%s' (one of %s)", name, act_choices);
        free(s);
        return st;
    }
    *state = s;
    return NNP_OK;
}

static nnp_status relu_create(const nnp_host *h, const nnp_config *cfg, void **state,
                              nnp_error *err)
{
    act_state *s = new_state(h, cfg, "ReLU", NULL, err);
    if (!s)
        return NNP_ERR_NOMEM;
    const double mx = h->config_float(cfg, "max_value");
    s->fn.id = ACT_RELU_GENERAL;
    s->fn.max_value = h->config_is_null(cfg, "max_value") ? INFINITY : (float)mx;
    s->fn.alpha = (float)h->config_float(cfg, "negative_slope");
    s->fn.threshold = (float)h->config_float(cfg, "threshold");
    /* the plain case runs the cheaper kernel */
    if (!isfinite(s->fn.max_value) && s->fn.alpha == 0.0f && s->fn.threshold == 0.0f)
        act_parse("relu", &s->fn);
    *state = s;
    return NNP_OK;
}

static nnp_status softmax_create(const nnp_host *h, const nnp_config *cfg, void **state,
                                 nnp_error *err)
{
    act_state *s = new_state(h, cfg, "Softmax", "softmax", err);
    if (!s)
        return NNP_ERR_NOMEM;
    s->axis_cfg = h->config_int(cfg, "axis");
    *state = s;
    return NNP_OK;
}

static nnp_status leaky_create(const nnp_host *h, const nnp_config *cfg, void **state,
                               nnp_error *err)
{
    act_state *s = new_state(h, cfg, "LeakyReLU", "leaky_relu", err);
    if (!s)
        return NNP_ERR_NOMEM;
    double ns = h->config_float(cfg, "negative_slope"), al = h->config_float(cfg, "alpha");
    s->fn.alpha = (float)(ns != 0.3 ? ns : al);
    *state = s;
    return NNP_OK;
}

static nnp_status elu_create(const nnp_host *h, const nnp_config *cfg, void **state,
                             nnp_error *err)
{
    act_state *s = new_state(h, cfg, "ELU", "elu", err);
    if (!s)
        return NNP_ERR_NOMEM;
    s->fn.alpha = (float)h->config_float(cfg, "alpha");
    *state = s;
    return NNP_OK;
}

static void act_destroy(void *state) { free(state); }

static nnp_status act_build(void *state, int n_in, const nnp_shape *in, nnp_shape *out,
                            nnp_error *err)
{
    act_state *s = state;
    const nnp_host *h = s->host;
    char b[160];
    nnp_status st = nnp_pu_check_n_inputs(h, n_in, 1, s->kind, nnp_pu_name(h, s->cfg), err);
    if (st != NNP_OK)
        return st;
    const int rank = in[0].rank;
    int64_t axis = rank - 1;
    if (s->fn.id == ACT_SOFTMAX && strcmp(s->kind, "Softmax") == 0) {
        axis = s->axis_cfg < 0 ? s->axis_cfg + rank : s->axis_cfg;
        if (axis < 0 || axis >= rank)
            return h->error_set(err, NNP_ERR_INVALID,
                                "Softmax '%s': axis %lld is out of range for an input of rank %d "
                                "(shape %s)",
                                nnp_pu_name(h, s->cfg), (long long)s->axis_cfg, rank,
                                nnp_pu_shape_str(&in[0], b, sizeof b));
    }
    if (rank < 1 && (s->fn.id == ACT_SOFTMAX || s->fn.id == ACT_LOG_SOFTMAX))
        return h->error_set(err, NNP_ERR_SHAPE, "%s '%s': softmax needs an input of rank >= 1",
                            s->kind, nnp_pu_name(h, s->cfg));
    s->rank = rank;
    s->axis = (int)axis;
    s->built = 1;
    *out = in[0];
    return NNP_OK;
}

/* [outer, len, inner] around the softmax axis (elementwise: all in outer). */
static void split_dims(const act_state *s, const nnp_shape *sh, int64_t *outer, int64_t *len,
                       int64_t *inner)
{
    *outer = 1;
    *len = 1;
    *inner = 1;
    if (s->fn.id != ACT_SOFTMAX && s->fn.id != ACT_LOG_SOFTMAX) {
        *outer = nnp_pu_numel(sh);
        return;
    }
    for (int i = 0; i < sh->rank; i++) {
        if (i < s->axis)
            *outer *= sh->dims[i];
        else if (i == s->axis)
            *len = sh->dims[i];
        else
            *inner *= sh->dims[i];
    }
}

static nnp_status check_input(const act_state *s, const nnp_tensor *x, nnp_error *err)
{
    const nnp_host *h = s->host;
    char b[160];
    nnp_status st = nnp_pu_check_built(h, s->built, s->kind, nnp_pu_name(h, s->cfg), err);
    if (st == NNP_OK)
        st = nnp_pu_check(h, s->kind, nnp_pu_name(h, s->cfg), x, "input", NULL, err);
    if (st == NNP_OK && x->shape.rank != s->rank)
        st = h->error_set(err, NNP_ERR_SHAPE, "%s '%s': input %s has rank %d, built for rank %d",
                          s->kind, nnp_pu_name(h, s->cfg), nnp_pu_shape_str(&x->shape, b, sizeof b),
                          x->shape.rank, s->rank);
    return st;
}

static nnp_status act_forward_k(void *state, const nnp_tensor *const *in, int n_in,
                                nnp_tensor *out, nnp_mode mode, nnp_error *err)
{
    act_state *s = state;
    (void)mode;
    (void)n_in;
    const char *nm = nnp_pu_name(s->host, s->cfg);
    nnp_status st = check_input(s, in[0], err);
    if (st == NNP_OK)
        st = nnp_pu_check(s->host, s->kind, nm, out, "output", &in[0]->shape, err);
    if (st != NNP_OK)
        return st;
    int64_t o, l, i;
    split_dims(s, &in[0]->shape, &o, &l, &i);
    act_forward(&s->fn, in[0]->data, out->data, o, l, i);
    return NNP_OK;
}

static nnp_status act_backward_k(void *state, const nnp_tensor *const *in, int n_in,
                                 const nnp_tensor *out, const nnp_tensor *grad_out,
                                 nnp_tensor *const *grad_in, nnp_mode mode, nnp_error *err)
{
    act_state *s = state;
    (void)mode;
    (void)n_in;
    const char *nm = nnp_pu_name(s->host, s->cfg);
    nnp_tensor *gx = grad_in ? grad_in[0] : NULL;
    nnp_status st = check_input(s, in[0], err);
    if (st == NNP_OK)
        st = nnp_pu_check(s->host, s->kind, nm, out, "output", &in[0]->shape, err);
    if (st == NNP_OK)
        st = nnp_pu_check(s->host, s->kind, nm, grad_out, "output gradient", &in[0]->shape, err);
    if (st == NNP_OK && gx)
        st = nnp_pu_check(s->host, s->kind, nm, gx, "input gradient", &in[0]->shape, err);
    if (st != NNP_OK || !gx)
        return st;
    int64_t o, l, i;
    split_dims(s, &in[0]->shape, &o, &l, &i);
    act_backward(&s->fn, in[0]->data, out->data, grad_out->data, gx->data, o, l, i);
    return NNP_OK;
}

/* ------------------------------------------------------------------ */
/* ONNX                                                                */
/* ------------------------------------------------------------------ */

static nnp_status act_to_onnx_k(const void *state, nnp_onnx_writer *w, const char *const *inputs,
                                int n_inputs, const char *output, nnp_error *err)
{
    const act_state *s = state;
    const nnp_host *h = s->host;
    if (!s->built || n_inputs != 1)
        return h->error_set(err, NNP_ERR_INVALID,
                            "%s '%s': export needs a built layer with 1 input", s->kind,
                            nnp_pu_name(h, s->cfg));
    return act_to_onnx(h, w, &s->fn, nnp_pu_onnx_base(h, s->cfg, "activation"), inputs[0], output,
                       s->rank, s->axis, err);
}

/* The single axis that an ONNX softmax normalizes over: opset >= 13 takes
 * one axis; older opsets flatten every axis from `axis` on, which is one
 * Keras axis only when all but one of those dims are 1. */
static nnp_status softmax_axis(const nnp_host *h, const nnp_onnx_reader *r, int64_t *axis_out,
                               nnp_error *err)
{
    const int opset = h->onnx_reader_opset(r);
    const char *node = nnp_pu_node_label(h, r);
    int64_t axis;
    nnp_status st = nnp_pu_attr_int(h, r, "axis", opset >= 13 ? -1 : 1, &axis, err);
    if (st != NNP_OK)
        return st;
    nnp_shape sh;
    const int rank = nnp_pu_input_shape(h, r, 0, &sh);
    if (opset >= 13) {
        *axis_out = axis;
        return NNP_OK;
    }
    if (rank < 0)
        return h->error_set(err, NNP_ERR_UNSUPPORTED,
                            "%s node '%s' (opset %d): the input rank is unknown, so the "
                            "flattening axis=%lld cannot be mapped to one Keras axis",
                            h->onnx_op_type(r), node, opset, (long long)axis);
    if (axis < 0)
        axis += rank;
    int found = -1, n = 0;
    for (int i = (int)axis; i < rank; i++)
        if (sh.dims[i] != 1) {
            found = i;
            n++;
        }
    if (n > 1)
        return h->error_set(err, NNP_ERR_UNSUPPORTED,
                            "%s node '%s' (opset %d): axis=%lld normalizes over %d axes of the "
                            "rank-%d input together; Keras normalizes over one",
                            h->onnx_op_type(r), node, opset, (long long)axis, n, rank);
    *axis_out = found >= 0 ? found - rank : -1;
    return NNP_OK;
}

static nnp_status activation_from_onnx(const nnp_host *h, const nnp_onnx_reader *r,
                                       nnp_config *cfg, nnp_error *err)
{
    const char *op = h->onnx_op_type(r);
    if (op && strcmp(op, "LogSoftmax") == 0) {
        int64_t axis;
        nnp_status st = softmax_axis(h, r, &axis, err);
        if (st != NNP_OK)
            return st;
        nnp_shape sh;
        int rank = nnp_pu_input_shape(h, r, 0, &sh);
        if (axis != -1 && !(rank > 0 && axis == rank - 1))
            return h->error_set(err, NNP_ERR_UNSUPPORTED,
                                "LogSoftmax node '%s': axis %lld is not the last axis; Keras's "
                                "log_softmax activation normalizes the last one",
                                nnp_pu_node_label(h, r), (long long)axis);
        return nnp_pu_set_string(h, cfg, "activation", "log_softmax", err);
    }
    act_fn a;
    nnp_status st = act_from_onnx(h, r, &a, err);
    if (st == NNP_ERR_NOT_FOUND)
        return h->error_set(err, NNP_ERR_UNSUPPORTED, "Activation: ONNX op %s is not an activation",
                            op ? op : "?");
    if (st != NNP_OK)
        return st;
    if (a.id == ACT_ELU && a.alpha != 1.0f)
        return h->error_set(err, NNP_ERR_UNSUPPORTED,
                            "Elu node '%s': alpha %g needs the ELU layer", nnp_pu_node_label(h, r),
                            (double)a.alpha);
    if (a.id == ACT_LEAKY_RELU && a.alpha != 0.2f)
        return h->error_set(err, NNP_ERR_UNSUPPORTED,
                            "LeakyRelu node '%s': alpha %g needs the LeakyReLU layer",
                            nnp_pu_node_label(h, r), (double)a.alpha);
    return nnp_pu_set_string(h, cfg, "activation", act_name(&a), err);
}

/* Relu -> ReLU(); Clip(x, 0, max) -> ReLU(max_value=max). */
static nnp_status relu_from_onnx(const nnp_host *h, const nnp_onnx_reader *r, nnp_config *cfg,
                                 nnp_error *err)
{
    const char *op = h->onnx_op_type(r);
    const char *node = nnp_pu_node_label(h, r);
    if (op && strcmp(op, "Relu") == 0)
        return NNP_OK;
    if (!op || strcmp(op, "Clip") != 0)
        return h->error_set(err, NNP_ERR_UNSUPPORTED, "ReLU: ONNX op %s is not Relu or Clip",
                            op ? op : "?");
    float lo = -INFINITY, hi = INFINITY;
    nnp_status st = NNP_OK;
    if (h->onnx_reader_opset(r) < 11) {
        st = nnp_pu_attr_float(h, r, "min", -INFINITY, &lo, err);
        if (st == NNP_OK)
            st = nnp_pu_attr_float(h, r, "max", INFINITY, &hi, err);
    } else {
        float *bounds[2] = {&lo, &hi};
        for (int i = 1; i <= 2 && st == NNP_OK; i++) {
            if (!nnp_pu_has_input(h, r, i))
                continue;
            const char *nm = h->onnx_input_name(r, i);
            const nnp_tensor *t = NULL;
            st = h->onnx_input_constant(r, i, &t, err);
            if (st == NNP_ERR_NOT_FOUND)
                return h->error_set(err, NNP_ERR_UNSUPPORTED,
                                    "Clip node '%s': bound '%s' must be a constant", node, nm);
            if (st == NNP_OK && (t->dtype != NNP_F32 || nnp_pu_numel(&t->shape) != 1))
                return h->error_set(err, NNP_ERR_FORMAT,
                                    "Clip node '%s': bound '%s' must be one float", node, nm);
            if (st == NNP_OK)
                *bounds[i - 1] = ((const float *)t->data)[0];
        }
    }
    if (st != NNP_OK)
        return st;
    if (lo != 0.0f || !(hi > 0.0f))
        return h->error_set(err, NNP_ERR_UNSUPPORTED,
                            "Clip node '%s': min=%g max=%g; only Clip(x, 0, max > 0) is a Keras "
                            "ReLU(max_value)",
                            node, (double)lo, (double)hi);
    if (isfinite(hi))
        return h->config_set_float(cfg, "max_value", hi, err);
    return NNP_OK;
}

static nnp_status softmax_from_onnx(const nnp_host *h, const nnp_onnx_reader *r,
                                    nnp_config *cfg, nnp_error *err)
{
    int64_t axis;
    nnp_status st = softmax_axis(h, r, &axis, err);
    return st ? st : h->config_set_int(cfg, "axis", axis, err);
}

static nnp_status leaky_from_onnx(const nnp_host *h, const nnp_onnx_reader *r, nnp_config *cfg,
                                  nnp_error *err)
{
    float alpha;
    nnp_status st = nnp_pu_attr_float(h, r, "alpha", 0.01f, &alpha, err);
    if (st == NNP_OK)
        st = h->config_set_float(cfg, "negative_slope", alpha, err);
    if (st == NNP_OK)
        st = h->config_set_float(cfg, "alpha", alpha, err);
    return st;
}

static nnp_status elu_from_onnx(const nnp_host *h, const nnp_onnx_reader *r, nnp_config *cfg,
                                nnp_error *err)
{
    float alpha;
    nnp_status st = nnp_pu_attr_float(h, r, "alpha", 1.0f, &alpha, err);
    return st ? st : h->config_set_float(cfg, "alpha", alpha, err);
}

static const nnp_onnx_op activation_ops[] = {
    {"", "Identity", 1, ACT_OPSET_MAX},   {"", "Tanh", 1, ACT_OPSET_MAX},
    {"", "Softplus", 1, ACT_OPSET_MAX},   {"", "Softsign", 1, ACT_OPSET_MAX},
    {"", "Selu", 1, ACT_OPSET_MAX},       {"", "Exp", 1, ACT_OPSET_MAX},
    {"", "HardSigmoid", 1, ACT_OPSET_MAX}, {"", "HardSwish", 14, ACT_OPSET_MAX},
    {"", "Gelu", 20, ACT_OPSET_MAX},      {"", "Mish", 18, ACT_OPSET_MAX},
    {"", "LogSoftmax", 1, ACT_OPSET_MAX}, {NULL, NULL, 0, 0},
};

static const nnp_onnx_op relu_ops[] = {
    {"", "Clip", 1, ACT_OPSET_MAX},
    {NULL, NULL, 0, 0},
};

/* ONNX's rules: X of a float type (nnplug computes in float; Relu and
 * LeakyRelu also allow integers in newer opsets); Clip's min and max
 * (opset 11 on) are scalars of X's type (ONNX Runtime takes a 1-element
 * 1-D tensor too; from_onnx wants one value). */
#define ACT_SCALAR (NNP_ONNX_RANK(0) | NNP_ONNX_RANK(1))
static const nnp_onnx_input_rule act_input_rules[] = {
    NNP_PU_ONNX_INPUT(NULL, 0, "X", NNP_ONNX_T_FLOATS, 0),
    NNP_PU_ONNX_INPUT("Clip", 1, "min", NNP_ONNX_T_FLOATS, ACT_SCALAR),
    NNP_PU_ONNX_INPUT("Clip", 2, "max", NNP_ONNX_T_FLOATS, ACT_SCALAR),
    NNP_PU_ONNX_INPUTS_END,
};

static const nnp_onnx_node_ext act_onnx_node = {
    .struct_size = sizeof(nnp_onnx_node_ext),
    .input_rules = act_input_rules,
};

static const void *act_onnx_ext(const char *name)
{
    return nnp_pu_extension(name, NNP_EXT_ONNX_NODE, &act_onnx_node);
}

/* A plain ReLU may be folded into the layer before it (NNP_EXT_EPILOGUE). */
static int act_is_relu(const void *state) { return ((const act_state *)state)->fn.id == ACT_RELU; }

static const nnp_epilogue_ext act_epilogue = {
    .struct_size = sizeof(nnp_epilogue_ext),
    .is_relu = act_is_relu,
};

/* The backward reads the output, and the input only for the functions
 * whose derivative needs x (act_needs_x). */
static uint32_t act_reads(const void *state)
{
    const act_state *s = state;
    return NNP_READS_OUTPUT | (act_needs_x(&s->fn) ? NNP_READS_INPUTS : 0u);
}

static const nnp_backward_reads_ext act_backward_reads = {
    .struct_size = sizeof(nnp_backward_reads_ext),
    .reads = act_reads,
};

/* Elementwise functions may write over their input in inference (every
 * one but the softmaxes, which read a whole axis first). */
static int act_in_place(const void *state, int k)
{
    const act_state *s = state;
    return k == 0 && s->fn.id != ACT_SOFTMAX && s->fn.id != ACT_LOG_SOFTMAX;
}

static const nnp_in_place_ext act_in_place_ext = {
    .struct_size = sizeof(nnp_in_place_ext),
    .inference_in_place = act_in_place,
};

static const void *act_common_ext(const char *name)
{
    const void *e = act_onnx_ext(name);
    e = e ? e : nnp_pu_extension(name, NNP_EXT_IN_PLACE, &act_in_place_ext);
    e = e ? e : nnp_pu_extension(name, NNP_EXT_BACKWARD_READS, &act_backward_reads);
    return e ? e : nnp_pu_extension(name, NNP_EXT_EPILOGUE, &act_epilogue);
}

static const void *activation_ext(const char *name)
{
    const void *e = nnp_pu_extension(name, NNP_EXT_ONNX_OPS, activation_ops);
    return e ? e : act_common_ext(name);
}

static const void *relu_ext(const char *name)
{
    const void *e = nnp_pu_extension(name, NNP_EXT_ONNX_OPS, relu_ops);
    return e ? e : act_common_ext(name);
}

/* ------------------------------------------------------------------ */
/* plugin table                                                        */
/* ------------------------------------------------------------------ */

#define ACT_KIND(NAME, DOC, PARAMS, CREATE, OP, FROM, EXT)                                   \
    {                                                                                        \
        NNP_PU_KIND_HEAD, .name = NAME, .doc = DOC, .params = PARAMS,                        \
        .n_params = NNP_PU_COUNT(PARAMS), .onnx = {"", OP, 1, ACT_OPSET_MAX},                \
        .n_inputs_min = 1, .n_inputs_max = 1, .create = CREATE, .destroy = act_destroy,      \
        .build = act_build, .forward = act_forward_k, .backward = act_backward_k,            \
        .regularization_loss = nnp_pu_no_regularization,                                     \
        .apply_constraints = nnp_pu_no_constraints, .to_onnx = act_to_onnx_k,                \
        .from_onnx = FROM, .onnx_load_weights = nnp_pu_no_onnx_weights, .extension = EXT,    \
    }

static const nnp_kind activation_kind =
    ACT_KIND("Activation", "Applies a Keras activation function elementwise (softmax: last axis)",
             activation_params, activation_create, "Sigmoid", activation_from_onnx,
             activation_ext);
static const nnp_kind relu_kind =
    ACT_KIND("ReLU", "Keras ReLU: max_value, negative_slope and threshold", relu_params,
             relu_create, "Relu", relu_from_onnx, relu_ext);
static const nnp_kind softmax_kind =
    ACT_KIND("Softmax", "Keras Softmax over one axis", softmax_params, softmax_create, "Softmax",
             softmax_from_onnx, act_onnx_ext);
static const nnp_kind leaky_kind =
    ACT_KIND("LeakyReLU", "Keras LeakyReLU: x for x >= 0, negative_slope * x below", leaky_params,
             leaky_create, "LeakyRelu", leaky_from_onnx, act_onnx_ext);
static const nnp_kind elu_kind =
    ACT_KIND("ELU", "Keras ELU: x for x > 0, alpha * (exp(x) - 1) below", elu_params, elu_create,
             "Elu", elu_from_onnx, act_onnx_ext);

static const nnp_kind *const kinds[] = {&activation_kind, &relu_kind, &softmax_kind, &leaky_kind,
                                        &elu_kind};

static const nnp_plugin plugin = NNP_PU_PLUGIN_INIT("activation", "1.0.0", kinds);

NNP_EXPORT const nnp_plugin *nnp_plugin_entry(const nnp_host *host)
{
    /* it calls host fields added in 1.1 */
    return nnp_pu_accept_host(host, 1, &plugin);
}
