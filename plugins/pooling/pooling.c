/*
 * Pooling layers with Keras semantics: MaxPooling2D and AveragePooling2D
 * (pool_size default (2, 2), strides default = pool_size, padding valid /
 * same with TensorFlow's rule, averages over the unpadded positions only),
 * GlobalAveragePooling2D and GlobalMaxPooling2D (keepdims).
 *
 * nnplug extensions for ONNX imports: "pads" [top, left, bottom, right]
 * (explicit padding, overrides "padding") and, for AveragePooling2D,
 * "count_include_pad" (padded zeros count in the divisor, as in PyTorch's
 * AvgPool2d default).
 *
 * No weights and no scratch. Max's gradient goes to the element of its
 * window the forward took (the first maximum); channels-first training
 * forwards record its position, one byte per output (pool_records), and the
 * backward of that forward reads it instead of the input; any other
 * backward recomputes it from the input.
 */
#include <nnplug/plugin_util.h>

#include "pooling.h"
#include "common/image.h"
#include "common/padding.h"

#include <stdlib.h>
#include <string.h>

#define POOL_COMMON_PARAMS                                                                     \
    {"pool_size", NNP_PARAM_INTS, "[2, 2]", NNP_PARAM_HAS_MIN, 1, 0, NULL,                     \
     "[rows, cols] of the pooling window, or one int for both"},                               \
    {"strides", NNP_PARAM_INTS, "null", NNP_PARAM_NULLABLE | NNP_PARAM_HAS_MIN, 1, 0, NULL,     \
     "[rows, cols] strides, or one int; null = pool_size"},                                    \
    {"padding", NNP_PARAM_STRING, "\"valid\"", 0, 0, 0, "valid|same",                          \
     "valid: windows inside the input; same: out = ceil(in / stride)"},                        \
    {"data_format", NNP_PARAM_STRING, "\"channels_last\"", NNP_PARAM_NULLABLE, 0, 0,           \
     "channels_last|channels_first|channelsLast|channelsFirst",                                \
     "channels_last: [batch, rows, cols, channels]"},                                          \
    {"pads", NNP_PARAM_INTS, "null", NNP_PARAM_NULLABLE, 0, 0, NULL,                           \
     "nnplug extension (ONNX imports): explicit padding [top, left, bottom, right]; overrides " \
     "padding"}

static const nnp_param_def max_params[] = {POOL_COMMON_PARAMS};

static const nnp_param_def avg_params[] = {
    POOL_COMMON_PARAMS,
    {"count_include_pad", NNP_PARAM_BOOL, "false", 0, 0, 0, NULL,
     "nnplug extension (ONNX imports): padded zeros count in the average"},
};

static const nnp_param_def global_params[] = {
    {"data_format", NNP_PARAM_STRING, "\"channels_last\"", NNP_PARAM_NULLABLE, 0, 0,
     "channels_last|channels_first|channelsLast|channelsFirst",
     "channels_last: [batch, rows, cols, channels]"},
    {"keepdims", NNP_PARAM_BOOL, "false", 0, 0, 0, NULL,
     "keep the spatial axes with size 1"},
};

const char *pool_name(const pool_state *s) { return nnp_pu_name(s->host, s->cfg); }

/* ------------------------------------------------------------------ */
/* create                                                              */
/* ------------------------------------------------------------------ */

static nnp_status pool_create_common(const nnp_host *h, const nnp_config *cfg, const char *kind,
                                     pool_op op, int global, void **state, nnp_error *err)
{
    pool_state *s = nnp_pu_state_alloc(h, sizeof *s, kind, err);
    if (!s)
        return NNP_ERR_NOMEM;
    s->host = h;
    s->cfg = cfg;
    s->kind = kind;
    s->op = op;
    s->global = global;
    s->channels_first = img_channels_first(h, cfg);
    nnp_status st = NNP_OK;
    if (global) {
        s->keepdims = h->config_bool(cfg, "keepdims");
    } else {
        int null;
        st = img_pair(h, cfg, kind, "pool_size", &s->kh, &s->kw, &null, err);
        if (st == NNP_OK)
            st = img_pair(h, cfg, kind, "strides", &s->sh, &s->sw, &null, err);
        if (st == NNP_OK && null) {
            s->sh = s->kh;
            s->sw = s->kw;
        }
        const char *pad = h->config_string(cfg, "padding");
        if (st == NNP_OK && (!pad || (strcmp(pad, "valid") && strcmp(pad, "same"))))
            st = h->error_set(err, NNP_ERR_INVALID,
                              "%s '%s': padding '%s' is not supported (valid or same)", kind,
                              nnp_pu_name(h, cfg), pad ? pad : "null");
        s->same = pad && strcmp(pad, "same") == 0;
        int np = h->config_ints(cfg, "pads", s->pads, 4);
        if (st == NNP_OK && np >= 0 && np != 4)
            st = h->error_set(err, NNP_ERR_INVALID,
                              "%s '%s': 'pads' must list 4 ints [top, left, bottom, right]", kind,
                              nnp_pu_name(h, cfg));
        s->explicit_pads = np == 4;
        if (st == NNP_OK && s->explicit_pads &&
            (s->pads[0] >= s->kh || s->pads[2] >= s->kh || s->pads[1] >= s->kw ||
             s->pads[3] >= s->kw))
            st = h->error_set(err, NNP_ERR_INVALID,
                              "%s '%s': each of 'pads' must be smaller than the pool size", kind,
                              nnp_pu_name(h, cfg));
        if (op == POOL_AVG)
            s->count_include_pad = h->config_bool(cfg, "count_include_pad");
    }
    if (st != NNP_OK) {
        free(s);
        return st;
    }
    *state = s;
    return NNP_OK;
}

static nnp_status max_create(const nnp_host *h, const nnp_config *cfg, void **state,
                             nnp_error *err)
{
    return pool_create_common(h, cfg, "MaxPooling2D", POOL_MAX, 0, state, err);
}

static nnp_status avg_create(const nnp_host *h, const nnp_config *cfg, void **state,
                             nnp_error *err)
{
    return pool_create_common(h, cfg, "AveragePooling2D", POOL_AVG, 0, state, err);
}

static nnp_status gavg_create(const nnp_host *h, const nnp_config *cfg, void **state,
                              nnp_error *err)
{
    return pool_create_common(h, cfg, "GlobalAveragePooling2D", POOL_AVG, 1, state, err);
}

static nnp_status gmax_create(const nnp_host *h, const nnp_config *cfg, void **state,
                              nnp_error *err)
{
    return pool_create_common(h, cfg, "GlobalMaxPooling2D", POOL_MAX, 1, state, err);
}

static void pool_destroy(void *state)
{
    pool_state *s = state;
    if (s && s->rec)
        s->host->aligned_free(s->rec);
    free(state);
}

/* ------------------------------------------------------------------ */
/* geometry / build                                                    */
/* ------------------------------------------------------------------ */

nnp_status pool_geometry(const pool_state *s, const nnp_shape *in, pool_geom *g, nnp_error *err)
{
    const nnp_host *h = s->host;
    char b[160];
    int64_t nchw[4];
    nnp_status st = img_dims(h, s->kind, pool_name(s), in, s->channels_first, nchw, err);
    if (st != NNP_OK)
        return st;
    memset(g, 0, sizeof *g);
    g->channels_first = s->channels_first;
    g->N = nchw[0];
    g->C = nchw[1];
    g->H = nchw[2];
    g->W = nchw[3];
    g->kh = s->kh;
    g->kw = s->kw;
    g->sh = s->sh;
    g->sw = s->sw;
    g->OH = g->OW = -1;
    if (s->global) {
        g->OH = g->OW = 1;
        return NNP_OK;
    }
    if (g->H < 0 || g->W < 0)
        return NNP_OK;
    int64_t after;
    const int64_t *ph = s->explicit_pads ? (int64_t[2]){s->pads[0], s->pads[2]} : NULL;
    const int64_t *pw = s->explicit_pads ? (int64_t[2]){s->pads[1], s->pads[3]} : NULL;
    if (pad_axis(s->same, ph, g->H, s->kh, s->sh, 1, &g->OH, &g->pt, &after) != 0 ||
        pad_axis(s->same, pw, g->W, s->kw, s->sw, 1, &g->OW, &g->pl, &after) != 0)
        return h->error_set(err, NNP_ERR_SHAPE,
                            "%s '%s': the %lldx%lld pool window is larger than the %lldx%lld "
                            "input (shape %s) with %s",
                            s->kind, pool_name(s), (long long)s->kh, (long long)s->kw,
                            (long long)g->H, (long long)g->W, nnp_pu_shape_str(in, b, sizeof b),
                            pad_rule(s->same, s->explicit_pads));
    return NNP_OK;
}

static void out_shape(const pool_state *s, const pool_geom *g, nnp_shape *out)
{
    memset(out, 0, sizeof *out);
    if (s->global && !s->keepdims) {
        out->rank = 2;
        out->dims[0] = g->N;
        out->dims[1] = g->C;
        return;
    }
    img_shape(out, s->channels_first, g->N, g->C, g->OH, g->OW);
}

static nnp_status pool_build(void *state, int n_in, const nnp_shape *in, nnp_shape *out,
                             nnp_error *err)
{
    pool_state *s = state;
    pool_geom g;
    nnp_status st = nnp_pu_check_n_inputs(s->host, n_in, 1, s->kind, pool_name(s), err);
    if (st == NNP_OK)
        st = pool_geometry(s, &in[0], &g, err);
    if (st != NNP_OK)
        return st;
    /* the training forward's record of the maxima: one byte per output */
    size_t rec = 0;
    if (!s->global && pool_records(&g, s->op) && g.N >= 0 && g.OH >= 0 && g.OW >= 0)
        rec = (size_t)(g.N * g.C * g.OH * g.OW);
    if (rec != s->rec_bytes) {
        if (s->rec)
            s->host->aligned_free(s->rec);
        s->rec = rec ? s->host->aligned_alloc(rec) : NULL;
        s->rec_bytes = s->rec ? rec : 0;
        if (rec && !s->rec)
            return s->host->error_set(err, NNP_ERR_NOMEM, "%s '%s': out of memory (%zu bytes)",
                                      s->kind, pool_name(s), rec);
    }
    s->rec_x = s->rec_y = NULL;
    out_shape(s, &g, out);
    s->in_shape = in[0];
    s->built = 1;
    return NNP_OK;
}

/* Whether a forward of this geometry can record its maxima. */
static int can_record(const pool_state *s, const pool_geom *g)
{
    return s->rec && !s->global && pool_records(g, s->op) &&
           (size_t)(g->N * g->C * g->OH * g->OW) <= s->rec_bytes;
}

/* ------------------------------------------------------------------ */
/* forward / backward                                                  */
/* ------------------------------------------------------------------ */

static nnp_status run_geom(const pool_state *s, const nnp_tensor *x, pool_geom *g,
                           nnp_shape *os, nnp_error *err)
{
    nnp_status st = nnp_pu_check_built(s->host, s->built, s->kind, pool_name(s), err);
    if (st == NNP_OK)
        st = nnp_pu_check(s->host, s->kind, pool_name(s), x, "input", NULL, err);
    if (st == NNP_OK)
        st = pool_geometry(s, &x->shape, g, err);
    if (st == NNP_OK)
        out_shape(s, g, os);
    return st;
}

/* NNP_EXT_LAYOUT: channels-first windows read and write channels-last
 * memory alike (tied: both or neither); global pooling reads it (its
 * output is [N, C] either way). */
static uint32_t pool_layouts(const pool_state *s, int k)
{
    if (!s->built || !s->channels_first || s->in_shape.rank != 4)
        return 0;
    if (!s->global)
        return NNP_LAYOUT_NHWC | NNP_LAYOUT_TIED;
    return k == 0 ? NNP_LAYOUT_NHWC : 0u;
}

static uint32_t pool_inference_layouts(const void *state, int k)
{
    return pool_layouts(state, k);
}

static const nnp_layout_ext pool_layout = {
    .struct_size = sizeof(nnp_layout_ext),
    .inference_layouts = pool_inference_layouts,
};

static nnp_status pool_forward_k(void *state, const nnp_tensor *const *in, int n_in,
                                 nnp_tensor *out, nnp_mode mode, nnp_error *err)
{
    pool_state *s = state;
    (void)n_in;
    pool_geom g;
    nnp_shape os;
    nnp_status st = run_geom(s, in[0], &g, &os, err);
    if (st == NNP_OK)
        st = nnp_pu_check(s->host, s->kind, pool_name(s), out, "output", &os, err);
    if (st != NNP_OK)
        return st;
    const int nt = nnp_pu_nthreads(s->host);
    const int cx = (in[0]->flags & NNP_TENSOR_NHWC) != 0, cy = (out->flags & NNP_TENSOR_NHWC) != 0;
    if (cx || cy) {
        if (mode != NNP_MODE_INFER || !(pool_layouts(s, 0) & NNP_LAYOUT_NHWC) ||
            (s->global ? cy : !(cx && cy)))
            return s->host->error_set(err, NNP_ERR_INVALID, "%s '%s': got a channels-last %s "
                                      "it does not take here", s->kind, pool_name(s),
                                      cx ? "input" : "output");
        g.channels_first = 0; /* the same windows over channels-last memory */
    }
    s->rec_x = s->rec_y = NULL;
    if (s->global) {
        global_forward(&g, s->op, in[0]->data, out->data, nt);
    } else if (mode == NNP_MODE_TRAIN && can_record(s, &g)) {
        pool_forward_record(&g, in[0]->data, out->data, s->rec, nt);
        s->rec_x = in[0]->data;
        s->rec_y = out->data;
    } else {
        pool_forward(&g, s->op, s->count_include_pad, in[0]->data, out->data, nt);
    }
    return NNP_OK;
}

static nnp_status pool_backward_k(void *state, const nnp_tensor *const *in, int n_in,
                                  const nnp_tensor *out, const nnp_tensor *grad_out,
                                  nnp_tensor *const *grad_in, nnp_mode mode, nnp_error *err)
{
    pool_state *s = state;
    (void)n_in;
    (void)mode;
    pool_geom g;
    nnp_shape os;
    nnp_tensor *gx = grad_in ? grad_in[0] : NULL;
    nnp_status st = run_geom(s, in[0], &g, &os, err);
    if (st == NNP_OK)
        st = nnp_pu_check(s->host, s->kind, pool_name(s), grad_out, "output gradient", &os, err);
    if (st == NNP_OK && gx)
        st = nnp_pu_check(s->host, s->kind, pool_name(s), gx, "input gradient", &in[0]->shape, err);
    if (st != NNP_OK || !gx)
        return st;
    const int nt = nnp_pu_nthreads(s->host);
    if (s->global)
        global_backward(&g, s->op, in[0]->data, grad_out->data, gx->data, nt);
    else if (out && s->rec_x == in[0]->data && s->rec_y == out->data && can_record(s, &g))
        pool_backward_recorded(&g, s->rec, grad_out->data, gx->data, nt);
    else
        pool_backward(&g, s->op, s->count_include_pad, in[0]->data, grad_out->data, gx->data, nt);
    return NNP_OK;
}

/* ------------------------------------------------------------------ */
/* plugin table                                                        */
/* ------------------------------------------------------------------ */

/* ONNX's rules for the pooling operators' X: a float type (T; nnplug
 * computes in float) of rank 3 or more. */
static const nnp_onnx_input_rule pool_input_rules[] = {
    NNP_PU_ONNX_INPUT(NULL, 0, "X", NNP_ONNX_T_FLOATS, NNP_ONNX_RANK_MIN(3)),
    NNP_PU_ONNX_INPUTS_END,
};

static const nnp_onnx_node_ext pool_onnx_node = {
    .struct_size = sizeof(nnp_onnx_node_ext),
    .input_rules = pool_input_rules,
};

static const void *pool_extension(const char *name)
{
    const void *e = nnp_pu_extension(name, NNP_EXT_ONNX_NODE, &pool_onnx_node);
    return e ? e : nnp_pu_extension(name, NNP_EXT_LAYOUT, &pool_layout);
}

#define POOL_KIND(NAME, DOC, PARAMS, CREATE, OP)                                           \
    {                                                                                    \
        NNP_PU_KIND_HEAD, .name = NAME, .doc = DOC, .params = PARAMS,                    \
        .n_params = NNP_PU_COUNT(PARAMS), .onnx = {"", OP, 1, 23}, .n_inputs_min = 1,    \
        .n_inputs_max = 1, .create = CREATE, .destroy = pool_destroy, .build = pool_build, \
        .forward = pool_forward_k, .backward = pool_backward_k,                          \
        .regularization_loss = nnp_pu_no_regularization,                                 \
        .apply_constraints = nnp_pu_no_constraints, .to_onnx = pool_to_onnx,             \
        .from_onnx = pool_from_onnx, .onnx_load_weights = nnp_pu_no_onnx_weights,        \
        .extension = pool_extension,                                                     \
    }

static const nnp_kind max_kind =
    POOL_KIND("MaxPooling2D", "Keras MaxPooling2D: the maximum of each window", max_params,
              max_create, "MaxPool");
static const nnp_kind avg_kind =
    POOL_KIND("AveragePooling2D",
              "Keras AveragePooling2D: the mean of each window's unpadded positions", avg_params,
              avg_create, "AveragePool");
static const nnp_kind gavg_kind =
    POOL_KIND("GlobalAveragePooling2D", "Keras GlobalAveragePooling2D: the mean over rows and cols",
              global_params, gavg_create, "GlobalAveragePool");
static const nnp_kind gmax_kind =
    POOL_KIND("GlobalMaxPooling2D", "Keras GlobalMaxPooling2D: the maximum over rows and cols",
              global_params, gmax_create, "GlobalMaxPool");

static const nnp_kind *const kinds[] = {&max_kind, &avg_kind, &gavg_kind, &gmax_kind};

static const nnp_plugin plugin = NNP_PU_PLUGIN_INIT("pooling", "1.0.0", kinds);

NNP_EXPORT const nnp_plugin *nnp_plugin_entry(const nnp_host *host)
{
    /* it calls only the 1.0 host fields */
    return nnp_pu_accept_host(host, 0, &plugin);
}
