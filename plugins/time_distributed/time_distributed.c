/* Wrapper kinds: TimeDistributed applies the wrapped layer to every time
 * slice of a [batch, time, ...] input; Bidirectional is declared so that a
 * wrapped non-recurrent layer gets Keras's refusal instead of "unknown kind".
 *
 * TimeDistributed merges the first two axes and calls the wrapped layer once
 * on [batch*time, ...], as Keras does for built-in layers: for
 * BatchNormalization the statistics span batch and time and the moving
 * statistics get one update per call. The merge is a reshape of contiguous
 * data, so no copy is made. */
#include <nnplug/plugin.h>
#include <nnplug/plugin_util.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct td {
    const nnp_host *host;
    const nnp_config *cfg;
    nnp_layer *inner;
    nnp_shape in_shape;     /* last build's input, -1 for unknown dims */
    nnp_shape inner_out;    /* the wrapped layer's output at that build */
} td;

static const nnp_param_def td_params[] = {
    {"layer", NNP_PARAM_LAYER, "null", 0, 0, 0, NULL,
     "the wrapped layer, {\"class_name\": ..., \"config\": {...}}"},
};

static nnp_status td_create(const nnp_host *host, const nnp_config *cfg, void **state,
                            nnp_error *err)
{
    td *s = calloc(1, sizeof *s);
    if (!s)
        return host->error_set(err, NNP_ERR_NOMEM, "out of memory");
    s->host = host;
    s->cfg = cfg;
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
    free(s);
}

/* [N, T, rest...] -> [N*T, rest...]; -1 stays unknown. */
static nnp_status merge(const nnp_host *h, const nnp_shape *in, nnp_shape *out, nnp_error *err)
{
    if (in->rank < 3)
        return h->error_set(err, NNP_ERR_SHAPE,
                            "TimeDistributed needs an input of rank >= 3 ([batch, time, ...]), "
                            "got rank %d", in->rank);
    out->rank = in->rank - 1;
    out->dims[0] = (in->dims[0] < 0 || in->dims[1] < 0) ? -1 : in->dims[0] * in->dims[1];
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

static nnp_status td_build(void *state, int n_in, const nnp_shape *in, nnp_shape *out,
                           nnp_error *err)
{
    td *s = state;
    (void)n_in;
    nnp_shape m, io;
    nnp_status st = merge(s->host, &in[0], &m, err);
    if (st == NNP_OK)
        st = s->host->layer_build(s->inner, 1, &m, &io, err);
    if (st == NNP_OK)
        st = split(s->host, &in[0], &io, out, err);
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

static nnp_status td_forward(void *state, const nnp_tensor *const *in, int n_in, nnp_tensor *out,
                             nnp_mode mode, nnp_error *err)
{
    td *s = state;
    (void)n_in;
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
        return err->code ? err->code : NNP_ERR_INTERNAL;
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
        return err->code ? err->code : NNP_ERR_INTERNAL;
    return NNP_OK;
}

static nnp_status td_load_weights(void *state, const nnp_onnx_reader *r, nnp_error *err)
{
    td *s = state;
    return s->host->layer_onnx_load_weights(s->inner, r, err);
}

static const nnp_kind time_distributed = {
    .struct_size = sizeof(nnp_kind),
    .abi_major = NNP_ABI_MAJOR,
    .abi_minor = NNP_ABI_MINOR,
    .name = "TimeDistributed",
    .doc = "Applies the wrapped layer to every time slice of a [batch, time, ...] input",
    .params = td_params,
    .n_params = 1,
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
    .struct_size = sizeof(nnp_kind),
    .abi_major = NNP_ABI_MAJOR,
    .abi_minor = NNP_ABI_MINOR,
    .name = "Bidirectional",
    .doc = "Bidirectional wrapper for recurrent layers",
    .params = bidi_params,
    .n_params = 3,
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

static const nnp_plugin plugin = {
    .struct_size = sizeof(nnp_plugin),
    .abi_major = NNP_ABI_MAJOR,
    .abi_minor = NNP_ABI_MINOR,
    .name = "time_distributed",
    .version = "1.0.0",
    .kinds = kinds,
    .n_kinds = 2,
};

NNP_EXPORT const nnp_plugin *nnp_plugin_entry(const nnp_host *host)
{
    /* it calls host fields added in 1.1 */
    return nnp_pu_accept_host(host, 1, &plugin);
}
