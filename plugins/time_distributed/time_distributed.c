/* Wrapper kinds: TimeDistributed applies the wrapped layer to every time
 * slice of a [batch, time, ...] input; Bidirectional is declared so that a
 * wrapped non-recurrent layer gets Keras's refusal instead of "unknown kind".
 *
 * TimeDistributed has the two behaviours Keras has had (per_step):
 * - per step (Keras 3, tfjs-layers; the default): the wrapped layer is
 *   called once per time step t = 0 ... T-1 on x[:, t]. For
 *   BatchNormalization in training, step t is normalized with the
 *   statistics of x[:, t] alone and the moving statistics are updated T
 *   times per call, in time order; gradients flow through every call. The
 *   steps run on a time-major copy ([T][N][...]) so each slice is contiguous
 *   and has an address of its own.
 * - merged (tf.keras 2.x with an unknown batch size; Keras files whose
 *   keras_version starts with "2." load with per_step false): the first two
 *   axes are merged and the layer is called once on [batch*time, ...]:
 *   statistics over batch and time, one moving update. The merge is a
 *   reshape of contiguous data, so no copy is made. */
#include <nnplug/plugin_util.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct td {
    const nnp_host *host;
    const nnp_config *cfg;
    nnp_layer *inner;
    int per_step;
    nnp_shape in_shape;     /* last build's input, -1 for unknown dims */
    nnp_shape inner_out;    /* the wrapped layer's output at that build */
    /* per step: time-major copies of x, y and their gradients, sized at
     * build for the largest concrete shape seen (floats) */
    float *xt, *yt, *gxt, *gyt;
    int64_t cap_in, cap_out;
    const void *fwd_key;    /* input data of the last training forward */
} td;

static const nnp_param_def td_params[] = {
    {"layer", NNP_PARAM_LAYER, "null", 0, 0, 0, NULL,
     "the wrapped layer, {\"class_name\": ..., \"config\": {...}}"},
    {"per_step", NNP_PARAM_BOOL, "true", 0, 0, 0, NULL,
     "call the wrapped layer once per time step (Keras 3, tfjs-layers); false: once on "
     "[batch*time, ...] (tf.keras 2.x: statistics over batch and time)"},
};

/* Keras files written by tf.keras 2.x merge batch and time. */
static const nnp_keras_default td_keras_defaults[] = {
    {"2.", "per_step", "false"},
    {NULL, NULL, NULL},
};

static const void *td_extension(const char *name)
{
    return nnp_pu_extension(name, NNP_EXT_KERAS_DEFAULTS, td_keras_defaults);
}

static nnp_status td_create(const nnp_host *host, const nnp_config *cfg, void **state,
                            nnp_error *err)
{
    td *s = calloc(1, sizeof *s);
    if (!s)
        return host->error_set(err, NNP_ERR_NOMEM, "out of memory");
    s->host = host;
    s->cfg = cfg;
    s->per_step = host->config_bool(cfg, "per_step");
    nnp_status st = host->layer_create(cfg, "layer", &s->inner, err);
    if (st) {
        free(s);
        return st;
    }
    *state = s;
    return NNP_OK;
}

static void td_destroy(void *state)
{
    td *s = state;
    if (!s)
        return;
    s->host->layer_destroy(s->inner);
    s->host->aligned_free(s->xt);
    s->host->aligned_free(s->yt);
    s->host->aligned_free(s->gxt);
    s->host->aligned_free(s->gyt);
    free(s);
}

/* The wrapped layer's input: [N*T, rest...] merged, [N, rest...] per step;
 * -1 stays unknown. */
static nnp_status merge(const nnp_host *h, int per_step, const nnp_shape *in, nnp_shape *out,
                        nnp_error *err)
{
    if (in->rank < 3)
        return h->error_set(err, NNP_ERR_SHAPE,
                            "TimeDistributed needs an input of rank >= 3 ([batch, time, ...]), "
                            "got rank %d", in->rank);
    out->rank = in->rank - 1;
    out->dims[0] = per_step ? in->dims[0]
                   : (in->dims[0] < 0 || in->dims[1] < 0) ? -1 : in->dims[0] * in->dims[1];
    for (int i = 2; i < in->rank; i++)
        out->dims[i - 1] = in->dims[i];
    return NNP_OK;
}

static nnp_status split(const nnp_host *h, const nnp_shape *in, const nnp_shape *inner_out,
                        nnp_shape *out, nnp_error *err)
{
    if (inner_out->rank < 1 || inner_out->rank + 1 > 8)
        return h->error_set(err, NNP_ERR_SHAPE, "TimeDistributed: wrapped layer output has rank %d",
                            inner_out->rank);
    out->rank = inner_out->rank + 1;
    out->dims[0] = in->dims[0];
    out->dims[1] = in->dims[1];
    for (int i = 1; i < inner_out->rank; i++)
        out->dims[i + 1] = inner_out->dims[i];
    return NNP_OK;
}

/* Grows a float buffer to n elements (contents not kept). */
static nnp_status reserve(td *s, float **buf, int64_t *cap, int64_t n, nnp_error *err)
{
    if (n <= *cap)
        return NNP_OK;
    s->host->aligned_free(*buf);
    *buf = n > 0 ? s->host->aligned_alloc((size_t)n * sizeof(float)) : NULL;
    *cap = *buf ? n : 0;
    if (n > 0 && !*buf)
        return s->host->error_set(err, NNP_ERR_NOMEM, "TimeDistributed '%s': out of memory "
                                  "for %lld time-major floats", s->host->config_name(s->cfg),
                                  (long long)n);
    return NNP_OK;
}

/* Per step, a concrete shape sizes the time-major copies. */
static nnp_status reserve_steps(td *s, const nnp_shape *in, const nnp_shape *out,
                                nnp_error *err)
{
    int64_t ni = nnp_pu_numel(in), no = nnp_pu_numel(out);
    if (!s->per_step || ni < 0 || no < 0)
        return NNP_OK;
    /* x and dx grow together, y and dy too: all four or none */
    int64_t cap_in = s->cap_in, cap_out = s->cap_out, gi = cap_in, go = cap_out;
    nnp_status st = reserve(s, &s->xt, &cap_in, ni, err);
    if (st == NNP_OK)
        st = reserve(s, &s->gxt, &gi, ni, err);
    if (st == NNP_OK)
        st = reserve(s, &s->yt, &cap_out, no, err);
    if (st == NNP_OK)
        st = reserve(s, &s->gyt, &go, no, err);
    if (st == NNP_OK) {
        s->cap_in = cap_in;
        s->cap_out = cap_out;
        return NNP_OK;
    }
    float **bufs[4] = {&s->xt, &s->gxt, &s->yt, &s->gyt};
    for (int i = 0; i < 4; i++) {
        s->host->aligned_free(*bufs[i]);
        *bufs[i] = NULL;
    }
    s->cap_in = s->cap_out = 0;
    return st;
}

static nnp_status td_build(void *state, int n_in, const nnp_shape *in, nnp_shape *out,
                           nnp_error *err)
{
    td *s = state;
    (void)n_in;
    nnp_shape m, io;
    nnp_status st = merge(s->host, s->per_step, &in[0], &m, err);
    if (st == NNP_OK)
        st = s->host->layer_build(s->inner, 1, &m, &io, err);
    if (st == NNP_OK)
        st = split(s->host, &in[0], &io, out, err);
    if (st == NNP_OK)
        st = reserve_steps(s, &in[0], out, err);
    if (st == NNP_OK) {
        s->in_shape = in[0];
        s->inner_out = io;
    }
    return st;
}

static int td_n_weights(const void *state)
{
    const td *s = state;
    return s->host->layer_n_weights(s->inner);
}

static const nnp_weight *td_weight(const void *state, int i)
{
    const td *s = state;
    return s->host->layer_weight(s->inner, i);
}

/* A view of t with the first two axes merged. */
static nnp_tensor merged_view(const nnp_tensor *t)
{
    nnp_tensor v = *t;
    v.flags = 0;
    v.shape.rank = t->shape.rank - 1;
    v.shape.dims[0] = t->shape.dims[0] * t->shape.dims[1];
    for (int i = 2; i < t->shape.rank; i++)
        v.shape.dims[i - 1] = t->shape.dims[i];
    return v;
}

/* [N][T][k] <-> [T][N][k]: to_time_major copies src (batch-major) into dst
 * (time-major), or back when 0. */
static void regroup(float *dst, const float *src, int64_t n, int64_t t, int64_t k,
                    int to_time_major)
{
    if (n * t * k == 0)
        return; /* an empty tensor may have no storage at all */
    for (int64_t b = 0; b < n; b++)
        for (int64_t j = 0; j < t; j++) {
            const int64_t bm = (b * t + j) * k, tm = (j * n + b) * k;
            if (to_time_major)
                memcpy(dst + tm, src + bm, (size_t)k * sizeof(float));
            else
                memcpy(dst + bm, src + tm, (size_t)k * sizeof(float));
        }
}

/* Step j of a time-major copy of t: shape [N, rest...]. */
static nnp_tensor step_view(const nnp_tensor *t, float *base, int64_t j)
{
    nnp_tensor v = {0};
    v.dtype = NNP_F32;
    v.shape.rank = t->shape.rank - 1;
    v.shape.dims[0] = t->shape.dims[0];
    int64_t k = 1;
    for (int i = 2; i < t->shape.rank; i++)
        k *= v.shape.dims[i - 1] = t->shape.dims[i];
    v.nbytes = (size_t)(t->shape.dims[0] * k) * sizeof(float);
    v.data = v.nbytes ? base + j * t->shape.dims[0] * k : base;
    return v;
}

/* The sizes of a per-step call: batch, time, elements per sample and step
 * of x and y; refused when the build left no room for them. */
static nnp_status step_sizes(const td *s, const nnp_tensor *x, const nnp_tensor *y,
                             int64_t *n, int64_t *t, int64_t *kx, int64_t *ky, nnp_error *err)
{
    *n = x->shape.dims[0];
    *t = x->shape.dims[1];
    int64_t nx = nnp_pu_numel(&x->shape), ny = nnp_pu_numel(&y->shape);
    if (x->dtype != NNP_F32 || y->dtype != NNP_F32 || nx > s->cap_in || ny > s->cap_out ||
        y->shape.dims[0] != *n || y->shape.dims[1] != *t)
        return s->host->error_set(err, NNP_ERR_SHAPE, "TimeDistributed '%s': per-step call on "
                                  "float32 [%lld, %lld, ...] not built for",
                                  s->host->config_name(s->cfg), (long long)*n, (long long)*t);
    *kx = *n && *t ? nx / (*n * *t) : 0;
    *ky = *n && *t ? ny / (*n * *t) : 0;
    return NNP_OK;
}

static nnp_status forward_steps(td *s, const nnp_tensor *x, nnp_tensor *y, nnp_mode mode,
                                nnp_error *err)
{
    int64_t n, t, kx, ky;
    nnp_status st = step_sizes(s, x, y, &n, &t, &kx, &ky, err);
    if (st)
        return st;
    regroup(s->xt, x->data, n, t, kx, 1);
    for (int64_t j = 0; j < t && !st; j++) {
        nnp_tensor xj = step_view(x, s->xt, j), yj = step_view(y, s->yt, j);
        const nnp_tensor *xs[1] = {&xj};
        st = s->host->layer_forward(s->inner, xs, 1, &yj, mode, err);
    }
    if (st)
        return st;
    regroup(y->data, s->yt, n, t, ky, 0);
    s->fwd_key = mode == NNP_MODE_TRAIN ? x->data : NULL;
    return NNP_OK;
}

/* Backward through every step, last to first is not needed: the steps are
 * independent calls, and the weight gradients add up in time order. */
static nnp_status backward_steps(td *s, const nnp_tensor *x, const nnp_tensor *y,
                                 const nnp_tensor *gy, nnp_tensor *gx, nnp_mode mode,
                                 nnp_error *err)
{
    int64_t n, t, kx, ky;
    nnp_status st = step_sizes(s, x, y, &n, &t, &kx, &ky, err);
    if (st)
        return st;
    /* the wrapped layer may key what its forward saved by the step's
     * address: only the last forward's steps are in the copies */
    if (mode == NNP_MODE_TRAIN && x->data != s->fwd_key)
        return s->host->error_set(err, NNP_ERR_UNSUPPORTED, "TimeDistributed '%s': a per-step "
                                  "backward must follow its own forward (the layer was applied "
                                  "again in between; per_step=false merges batch and time "
                                  "instead)", s->host->config_name(s->cfg));
    regroup(s->gyt, gy->data, n, t, ky, 1);
    for (int64_t j = 0; j < t && !st; j++) {
        nnp_tensor xj = step_view(x, s->xt, j), yj = step_view(y, s->yt, j);
        nnp_tensor gyj = step_view(gy, s->gyt, j), gxj = step_view(x, s->gxt, j);
        const nnp_tensor *xs[1] = {&xj};
        nnp_tensor *gxs[1] = {gx ? &gxj : NULL};
        st = s->host->layer_backward(s->inner, xs, 1, &yj, &gyj, gxs, mode, err);
    }
    if (st == NNP_OK && gx)
        regroup(gx->data, s->gxt, n, t, kx, 0);
    return st;
}

static nnp_status td_forward(void *state, const nnp_tensor *const *in, int n_in, nnp_tensor *out,
                             nnp_mode mode, nnp_error *err)
{
    td *s = state;
    (void)n_in;
    if (s->per_step)
        return forward_steps(s, in[0], out, mode, err);
    nnp_tensor x = merged_view(in[0]), y = merged_view(out);
    const nnp_tensor *xs[1] = {&x};
    return s->host->layer_forward(s->inner, xs, 1, &y, mode, err);
}

static nnp_status td_backward(void *state, const nnp_tensor *const *in, int n_in,
                              const nnp_tensor *out, const nnp_tensor *grad_out,
                              nnp_tensor *const *grad_in, nnp_mode mode, nnp_error *err)
{
    td *s = state;
    (void)n_in;
    if (s->per_step)
        return backward_steps(s, in[0], out, grad_out, grad_in[0], mode, err);
    nnp_tensor x = merged_view(in[0]), y = merged_view(out), gy = merged_view(grad_out), gx;
    const nnp_tensor *xs[1] = {&x};
    nnp_tensor *gxs[1] = {NULL};
    if (grad_in[0]) {
        gx = merged_view(grad_in[0]);
        gxs[0] = &gx;
    }
    return s->host->layer_backward(s->inner, xs, 1, &y, &gy, gxs, mode, err);
}

/* A 1-D int64 initializer holding a Reshape target. */
static nnp_status shape_const(const td *s, nnp_onnx_writer *w, const char *base,
                              const int64_t *dims, int n, char *name, size_t size,
                              nnp_error *err)
{
    const nnp_host *h = s->host;
    nnp_tensor t;
    nnp_shape sh = {1, {n}};
    nnp_status st = h->tensor_alloc(&t, NNP_I64, &sh, err);
    if (st)
        return st;
    for (int i = 0; i < n; i++)
        ((int64_t *)t.data)[i] = dims[i];
    h->onnx_unique_name(w, base, name, size);
    st = h->onnx_add_initializer(w, name, &t, err);
    h->tensor_free(&t);
    return st;
}

/* Reshape [N, T, ...] -> [N*T, ...], the wrapped layer's nodes, and Reshape
 * back to [N, T, ...]: what Keras computes, in standard operators. */
static nnp_status td_to_onnx(const void *state, nnp_onnx_writer *w, const char *const *inputs,
                             int n_inputs, const char *output, nnp_error *err)
{
    const td *s = state;
    const nnp_host *h = s->host;
    (void)n_inputs;
    const char *name = h->config_name(s->cfg);
    if (s->in_shape.rank < 3 || s->in_shape.dims[1] < 0)
        return h->error_set(err, NNP_ERR_UNSUPPORTED,
                            "TimeDistributed '%s': ONNX export needs a known time dimension",
                            name);
    int64_t merge[8], back[8];
    merge[0] = -1;
    for (int i = 2; i < s->in_shape.rank; i++) {
        merge[i - 1] = s->in_shape.dims[i];
        if (merge[i - 1] < 0)
            return h->error_set(err, NNP_ERR_UNSUPPORTED,
                                "TimeDistributed '%s': ONNX export needs known inner dimensions",
                                name);
    }
    back[0] = -1;
    back[1] = s->in_shape.dims[1];
    for (int i = 1; i < s->inner_out.rank; i++)
        back[i + 1] = s->inner_out.dims[i];
    char base[200], c1[256], c2[256], merged[256], inner_out[256], node[256];
    snprintf(base, sizeof base, "%s", name);
    nnp_status st = shape_const(s, w, "time_distributed_merge_shape", merge, s->in_shape.rank - 1,
                                c1, sizeof c1, err);
    if (st == NNP_OK)
        st = shape_const(s, w, "time_distributed_split_shape", back, s->inner_out.rank + 1, c2,
                         sizeof c2, err);
    if (st)
        return st;
    snprintf(node, sizeof node, "%s_merged", base);
    h->onnx_unique_name(w, node, merged, sizeof merged);
    snprintf(node, sizeof node, "%s_inner", base);
    h->onnx_unique_name(w, node, inner_out, sizeof inner_out);
    const char *in1[2] = {inputs[0], c1}, *out1[1] = {merged};
    snprintf(node, sizeof node, "%s_merge", base);
    if (h->onnx_add_node(w, "Reshape", "", node, in1, 2, out1, 1, err) < 0)
        return nnp_pu_err_code(err);
    const char *ins[1] = {merged};
    st = h->layer_to_onnx(s->inner, w, ins, 1, inner_out, err);
    if (st)
        return st;
    /* the inner output's batch is batch x time: no symbol of its own (-2) */
    nnp_shape io = s->inner_out;
    io.dims[0] = -2;
    for (int i = 1; i < io.rank; i++)
        io.dims[i] = io.dims[i] >= 0 ? io.dims[i] : -2;
    st = h->onnx_add_value_info(w, inner_out, NNP_F32, &io, err);
    if (st)
        return st;
    const char *in2[2] = {inner_out, c2}, *out2[1] = {output};
    snprintf(node, sizeof node, "%s_split", base);
    if (h->onnx_add_node(w, "Reshape", "", node, in2, 2, out2, 1, err) < 0)
        return nnp_pu_err_code(err);
    return NNP_OK;
}

static nnp_status td_load_weights(void *state, const nnp_onnx_reader *r, nnp_error *err)
{
    td *s = state;
    return s->host->layer_onnx_load_weights(s->inner, r, err);
}

/* The weights are the inner layer's. */
static void td_weights_changed(void *state)
{
    td *s = state;
    if (NNP_HOST_AT_LEAST(s->host, 2))
        s->host->layer_weights_changed(s->inner);
}

static const nnp_kind time_distributed = {
    NNP_PU_KIND_HEAD,
    .name = "TimeDistributed",
    .doc = "Applies the wrapped layer to every time slice of a [batch, time, ...] input",
    .params = td_params,
    .n_params = NNP_PU_COUNT(td_params),
    .onnx = {NULL, NULL, 0, 0},
    .n_inputs_min = 1,
    .n_inputs_max = 1,
    .flags = NNP_KIND_WRAPPER,
    .create = td_create,
    .destroy = td_destroy,
    .build = td_build,
    .n_weights = td_n_weights,
    .weight = td_weight,
    .forward = td_forward,
    .backward = td_backward,
    .to_onnx = td_to_onnx,
    .onnx_load_weights = td_load_weights,
    .extension = td_extension,
    .weights_changed = td_weights_changed,
};

/* Keras's Bidirectional recreates the wrapped layer with go_backwards
 * flipped, which only recurrent layers have; nnplug has none yet, so every
 * wrapped kind is refused with that reason. */
static const nnp_param_def bidi_params[] = {
    {"layer", NNP_PARAM_LAYER, "null", 0, 0, 0, NULL, "the wrapped recurrent layer"},
    {"merge_mode", NNP_PARAM_STRING, "\"concat\"", NNP_PARAM_NULLABLE, 0, 0,
     "sum|mul|concat|ave", "how forward and backward outputs are combined"},
    {"backward_layer", NNP_PARAM_LAYER, "null", NNP_PARAM_NULLABLE, 0, 0, NULL,
     "optional explicit backward layer"},
};

static nnp_status bidi_create(const nnp_host *host, const nnp_config *cfg, void **state,
                              nnp_error *err)
{
    nnp_layer *inner = NULL;
    (void)state;
    nnp_status st = host->layer_create(cfg, "layer", &inner, err);
    if (st)
        return st;
    const char *kind = host->layer_kind(inner);
    st = host->error_set(err, NNP_ERR_INVALID,
                         "Bidirectional needs a recurrent layer (one with go_backwards and "
                         "return_sequences, such as LSTM or GRU); %s is not recurrent", kind);
    host->layer_destroy(inner);
    return st;
}

static void bidi_destroy(void *state) { (void)state; }

static nnp_status bidi_build(void *state, int n_in, const nnp_shape *in, nnp_shape *out,
                             nnp_error *err)
{
    (void)state; (void)n_in; (void)in; (void)out; (void)err;
    return NNP_ERR_INTERNAL;
}

static nnp_status bidi_forward(void *state, const nnp_tensor *const *in, int n_in,
                               nnp_tensor *out, nnp_mode mode, nnp_error *err)
{
    (void)state; (void)in; (void)n_in; (void)out; (void)mode; (void)err;
    return NNP_ERR_INTERNAL;
}

static const nnp_kind bidirectional = {
    NNP_PU_KIND_HEAD,
    .name = "Bidirectional",
    .doc = "Bidirectional wrapper for recurrent layers",
    .params = bidi_params,
    .n_params = NNP_PU_COUNT(bidi_params),
    .onnx = {NULL, NULL, 0, 0},
    .n_inputs_min = 1,
    .n_inputs_max = 1,
    .flags = NNP_KIND_WRAPPER,
    .create = bidi_create,
    .destroy = bidi_destroy,
    .build = bidi_build,
    .forward = bidi_forward,
};

static const nnp_kind *const kinds[] = {&time_distributed, &bidirectional};

static const nnp_plugin plugin = NNP_PU_PLUGIN_INIT("time_distributed", "1.0.0", kinds);

NNP_EXPORT const nnp_plugin *nnp_plugin_entry(const nnp_host *host)
{
    /* it calls host fields added in 1.1 */
    return nnp_pu_accept_host(host, 1, &plugin);
}
