/*
 * Conv2D layer plugin with Keras semantics (keras.layers.Conv2D): kernel
 * [kh, kw, in/groups, filters], bias [filters], padding "valid" / "same"
 * (TensorFlow's rule: out = ceil(in / stride), the odd pixel of padding at
 * the bottom / right), channels_last or channels_first, dilation, groups and
 * a fused activation.
 *
 * nnplug extension: "pads" [top, left, bottom, right] sets explicit zero
 * padding and overrides "padding"; ONNX imports use it for Conv nodes whose
 * pads match neither Keras rule (PyTorch's symmetric padding with stride 2).
 *
 * The geometry is derived from each call's input shape, so one layer can be
 * applied to inputs of several sizes; build plans the scratch (im2col blocks,
 * kernel-gradient partials, the activation gradient) for the largest shape
 * it has seen, and forward/backward never allocate.
 *
 * Engines: a concrete build (known batch and spatial size) creates oneDNN
 * primitives for that batch (engine_dnnl.c); calls with that geometry run
 * them, any other shape runs the im2col + GEMM kernels (kernels.c). Both are
 * deterministic. NNP_CONV_ENGINE=im2col in the environment keeps every call
 * on im2col.
 */
#include <nnplug/plugin_util.h>

#include "conv2d.h"
#include "common/gemm_det.h"
#include "common/image.h"
#include "common/padding.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define CONV_MAX_SLOTS 64

static const nnp_param_def conv_params[] = {
    {"filters", NNP_PARAM_INT, "null", NNP_PARAM_NULLABLE | NNP_PARAM_HAS_MIN, 1, 0, NULL,
     "number of output channels (required)"},
    {"kernel_size", NNP_PARAM_INTS, "null", NNP_PARAM_NULLABLE | NNP_PARAM_HAS_MIN, 1, 0, NULL,
     "[height, width] of the kernel, or one int for both (required)"},
    {"strides", NNP_PARAM_INTS, "[1, 1]", NNP_PARAM_HAS_MIN, 1, 0, NULL,
     "[rows, cols] strides, or one int for both"},
    {"padding", NNP_PARAM_STRING, "\"valid\"", 0, 0, 0, "valid|same",
     "valid: no padding; same: zero padding so that out = ceil(in / stride)"},
    {"data_format", NNP_PARAM_STRING, "\"channels_last\"", NNP_PARAM_NULLABLE, 0, 0,
     "channels_last|channels_first|channelsLast|channelsFirst",
     "channels_last: [batch, rows, cols, channels]; channels_first: [batch, channels, rows, cols]"},
    {"dilation_rate", NNP_PARAM_INTS, "[1, 1]", NNP_PARAM_HAS_MIN, 1, 0, NULL,
     "[rows, cols] dilation of the kernel, or one int for both"},
    {"groups", NNP_PARAM_INT, "1", NNP_PARAM_HAS_MIN, 1, 0, NULL,
     "number of channel groups convolved separately"},
    ACT_PARAM_DEF,
    KB_PARAM_DEFS("[kh, kw, in/groups, filters]", "[filters]"),
    {"pads", NNP_PARAM_INTS, "null", NNP_PARAM_NULLABLE, 0, 0, NULL,
     "nnplug extension (ONNX imports): explicit zero padding [top, left, bottom, right]; "
     "overrides padding"},
};

const char *conv_name(const conv_state *s) { return nnp_pu_name(s->host, s->cfg); }

/* ------------------------------------------------------------------ */
/* create / destroy                                                    */
/* ------------------------------------------------------------------ */

static nnp_status conv_create(const nnp_host *h, const nnp_config *cfg, void **state,
                              nnp_error *err)
{
    const char *name = nnp_pu_name(h, cfg);
    conv_state tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.host = h;
    tmp.cfg = cfg;
    tmp.filters = h->config_int(cfg, "filters");
    if (tmp.filters < 1)
        return h->error_set(err, NNP_ERR_INVALID,
                            "Conv2D '%s': 'filters' must be given as an int >= 1 (got %lld)",
                            name, (long long)tmp.filters);
    nnp_status st = img_pair(h, cfg, "Conv2D", "kernel_size", &tmp.kh, &tmp.kw, NULL, err);
    if (st == NNP_OK)
        st = img_pair(h, cfg, "Conv2D", "strides", &tmp.sh, &tmp.sw, NULL, err);
    if (st == NNP_OK)
        st = img_pair(h, cfg, "Conv2D", "dilation_rate", &tmp.dh, &tmp.dw, NULL, err);
    if (st != NNP_OK)
        return st;
    tmp.groups = h->config_int(cfg, "groups");
    if (tmp.groups < 1 || tmp.filters % tmp.groups != 0)
        return h->error_set(err, NNP_ERR_INVALID,
                            "Conv2D '%s': filters (%lld) must be a multiple of groups (%lld)", name,
                            (long long)tmp.filters, (long long)tmp.groups);
    const char *pad = h->config_string(cfg, "padding");
    if (!pad || (strcmp(pad, "valid") != 0 && strcmp(pad, "same") != 0))
        return h->error_set(err, NNP_ERR_INVALID,
                            "Conv2D '%s': padding '%s' is not supported (valid or same)", name,
                            pad ? pad : "null");
    tmp.same = strcmp(pad, "same") == 0;
    int np = h->config_ints(cfg, "pads", tmp.pads, 4);
    if (np >= 0 && np != 4)
        return h->error_set(err, NNP_ERR_INVALID,
                            "Conv2D '%s': 'pads' must list 4 ints [top, left, bottom, right], "
                            "got %d",
                            name, np);
    tmp.explicit_pads = np == 4;
    tmp.channels_first = img_channels_first(h, cfg);
    const char *engine = getenv("NNP_CONV_ENGINE");
    tmp.no_dnnl = engine && strcmp(engine, "im2col") == 0;
    const char *bwd = getenv("NNP_CONV_BACKWARD");
    tmp.bwd_pref = bwd && strcmp(bwd, "gemm") == 0 ? 1 : bwd && strcmp(bwd, "dnnl") == 0 ? 0 : -1;
    /* a reordered kernel is kept between inference forwards only when the
       host says when weights change */
    tmp.keep_kernel = NNP_HOST_AT_LEAST(h, 2);
    const char *an = h->config_string(cfg, "activation");
    if (act_parse(an, &tmp.act) != 0)
        return h->error_set(err, NNP_ERR_INVALID,
                            "Conv2D '%s': unknown activation '%s' (one of %s)", name, an,
                            act_choices);
    /* initializers get seed 0: the plugin runs on 1.0 hosts, which have no seed_mix */
    st = kb_configure(&tmp.wb, h, cfg, "Conv2D", NNP_PU_SEED_ZERO, err);
    if (st != NNP_OK)
        return st;
    conv_state *s = calloc(1, sizeof *s);
    if (!s)
        return h->error_set(err, NNP_ERR_NOMEM, "Conv2D '%s': out of memory", name);
    *s = tmp;
    *state = s;
    return NNP_OK;
}

static void free_scratch(conv_state *s)
{
    s->host->aligned_free(s->scratch_mem);
    s->scratch_mem = NULL;
    memset(&s->scratch, 0, sizeof s->scratch);
    s->scratch_slot_floats = 0;
}

static void conv_destroy(void *state)
{
    conv_state *s = state;
    if (!s)
        return;
    kb_free(&s->wb, s->host);
    free_scratch(s);
    cdn_destroy(s->eng);
    cdn_destroy(s->ceng);
    s->host->aligned_free(s->epi_scale);
    s->host->aligned_free(s->dz);
    s->host->aligned_free(s->gb_own);
    free(s);
}

/* ------------------------------------------------------------------ */
/* geometry and build                                                  */
/* ------------------------------------------------------------------ */

/* The geometry for an input shape; H / W may be -1 (then OH / OW are -1
 * and nothing is planned). */
static nnp_status make_geom(const conv_state *s, const nnp_shape *in, conv_geom *g,
                            nnp_error *err)
{
    const nnp_host *h = s->host;
    char b[160];
    int64_t nchw[4];
    nnp_status st = img_dims(h, "Conv2D", conv_name(s), in, s->channels_first, nchw, err);
    if (st != NNP_OK)
        return st;
    memset(g, 0, sizeof *g);
    g->channels_first = s->channels_first;
    g->N = nchw[0];
    g->C = nchw[1];
    g->H = nchw[2];
    g->W = nchw[3];
    g->F = s->filters;
    g->kh = s->kh;
    g->kw = s->kw;
    g->sh = s->sh;
    g->sw = s->sw;
    g->dh = s->dh;
    g->dw = s->dw;
    g->groups = s->groups;
    if (g->C < 1)
        return h->error_set(err, NNP_ERR_SHAPE,
                            "Conv2D '%s': the channel axis of input shape %s must have a known "
                            "size >= 1",
                            conv_name(s), nnp_pu_shape_str(in, b, sizeof b));
    if (g->C % s->groups != 0)
        return h->error_set(err, NNP_ERR_SHAPE,
                            "Conv2D '%s': %lld input channels are not a multiple of groups (%lld)",
                            conv_name(s), (long long)g->C, (long long)s->groups);
    g->Cg = g->C / s->groups;
    g->Fg = g->F / s->groups;
    /* kh * kw * Cg without overflow: each factor bounded first */
    if (s->kh > INT32_MAX / 2 || s->kw > INT32_MAX / 2 || g->Cg > INT32_MAX / 2 ||
        s->kh * s->kw > INT32_MAX / 2 / g->Cg)
        return h->error_set(err, NNP_ERR_OVERFLOW, "Conv2D '%s': kernel %lldx%lld over %lld "
                            "channels is too large", conv_name(s), (long long)s->kh,
                            (long long)s->kw, (long long)g->Cg);
    g->Kg = s->kh * s->kw * g->Cg;
    if (g->Kg > INT32_MAX / 2 || g->F > INT32_MAX / 2 || g->Kg * g->F > ((int64_t)1 << 34))
        return h->error_set(err, NNP_ERR_OVERFLOW, "Conv2D '%s': kernel is too large",
                            conv_name(s));
    g->OH = g->OW = -1;
    if (g->H < 0 || g->W < 0)
        return NNP_OK;
    const int64_t *ph = s->explicit_pads ? (int64_t[2]){s->pads[0], s->pads[2]} : NULL;
    const int64_t *pw = s->explicit_pads ? (int64_t[2]){s->pads[1], s->pads[3]} : NULL;
    if (pad_axis(s->same, ph, g->H, s->kh, s->sh, s->dh, &g->OH, &g->pt, &g->pb) != 0 ||
        pad_axis(s->same, pw, g->W, s->kw, s->sw, s->dw, &g->OW, &g->pl, &g->pr) != 0)
        return h->error_set(err, NNP_ERR_SHAPE,
                            "Conv2D '%s': the kernel %lldx%lld (dilation %lldx%lld: it spans "
                            "%lldx%lld) is larger than the %lldx%lld input (shape %s) with %s",
                            conv_name(s), (long long)s->kh, (long long)s->kw, (long long)s->dh,
                            (long long)s->dw, (long long)((s->kh - 1) * s->dh + 1),
                            (long long)((s->kw - 1) * s->dw + 1), (long long)g->H,
                            (long long)g->W, nnp_pu_shape_str(in, b, sizeof b),
                            pad_rule(s->same, s->explicit_pads));
    g->P = g->OH * g->OW;
    if (g->P > INT32_MAX / 2 || g->H * g->W * g->C > ((int64_t)1 << 40))
        return h->error_set(err, NNP_ERR_OVERFLOW, "Conv2D '%s': input %s is too large",
                            conv_name(s), nnp_pu_shape_str(in, b, sizeof b));
    conv_plan(g);
    return NNP_OK;
}

static nnp_status alloc_weights(conv_state *s, int64_t cg, nnp_error *err)
{
    free_scratch(s);
    s->built = 0;
    nnp_shape ks = {4, {s->kh, s->kw, cg, s->filters}}, bs = {1, {s->filters}};
    nnp_status st = kb_alloc(&s->wb, s->host, s->cfg, "Conv2D", &ks, &bs, err);
    if (st != NNP_OK)
        return st;
    s->built = 1;
    return NNP_OK;
}

/* Scratch for geometry g (grows only). */
static nnp_status ensure_scratch(conv_state *s, const conv_geom *g, nnp_error *err)
{
    const nnp_host *h = s->host;
    const size_t slot = conv_slot_floats(g);
    if (s->scratch_mem && slot <= s->scratch_slot_floats)
        return NNP_OK;
    int slots = omp_get_num_procs();
    if (nnp_pu_nthreads(h) > slots)
        slots = nnp_pu_nthreads(h);
    const int chunks = conv_n_chunks(g);
    if (slots < chunks)
        slots = chunks;
    if (slots > CONV_MAX_SLOTS)
        slots = CONV_MAX_SLOTS;
    const size_t floats = 2 * (size_t)slots * slot + (size_t)chunks * (size_t)(g->Kg * g->F);
    float *p = h->aligned_alloc(floats * sizeof(float));
    if (!p)
        return h->error_set(err, NNP_ERR_NOMEM, "Conv2D '%s': cannot allocate %zu bytes of scratch",
                            conv_name(s), floats * sizeof(float));
    free_scratch(s);
    s->scratch_mem = p;
    s->scratch_slot_floats = slot;
    s->scratch.cols = p;
    s->scratch.dcols = p + (size_t)slots * slot;
    s->scratch.n_slots = slots;
    s->scratch.partials = p + 2 * (size_t)slots * slot;
    s->scratch.n_chunks = chunks;
    return NNP_OK;
}

/* Whether a and b differ in more than the batch size. */
static int other_geom(const conv_geom *a, const conv_geom *b)
{
    conv_geom c = *b;
    c.N = a->N;
    return memcmp(a, &c, sizeof c) != 0;
}

/* oneDNN primitives for a concrete build with a new geometry, a larger
 * batch than the engine's or another thread count (oneDNN sizes its
 * parallel work when it creates a primitive). An engine oneDNN cannot make
 * leaves the layer on im2col. */
static nnp_status ensure_engine(conv_state *s, const conv_geom *g, nnp_error *err)
{
    (void)err;
    cdn_weights_changed(s->eng); /* a build may have new weights */
    cdn_weights_changed(s->ceng);
    if (s->no_dnnl || g->N < 1 || g->OH < 1 || g->OW < 1)
        return NNP_OK;
    const int nt = nnp_pu_nthreads(s->host);
    if (s->eng && !other_geom(&s->eng_g, g) && cdn_batch(s->eng) >= g->N && s->eng_threads == nt)
        return NNP_OK;
    cdn_destroy(s->eng);
    size_t bytes = 0;
    s->eng = cdn_create(g, s->wb.use_bias, nt, s->host->aligned_alloc, s->host->aligned_free,
                        &bytes);
    s->eng_threads = nt;
    if (s->eng)
        s->eng_g = *g;
    return NNP_OK;
}

/* The engine's reordered activations: in the model's shared workspace when
 * the host offers one (1.2, a layer of a model), else in its own buffers.
 * Asked at every build: the workspace is planned anew each time. */
static nnp_status engine_buffers(conv_state *s, nnp_error *err)
{
    const nnp_host *h = s->host;
    if (!s->eng)
        return NNP_OK;
    const size_t need = cdn_workspace_bytes(s->eng);
    s->eng_ws = need && NNP_HOST_AT_LEAST(h, 2) && h->scratch_reserve(need);
    if (!s->eng_ws && cdn_own_buffers(s->eng) != 0)
        return h->error_set(err, NNP_ERR_NOMEM, "Conv2D '%s': cannot allocate %zu bytes of buffers",
                            conv_name(s), need);
    return NNP_OK;
}

/* A channels-last layer's Winograd inference forward for the epilogue
 * planned (cdn_plan_wino_cl), and the workspace it may need. */
static nnp_status plan_wino_cl(conv_state *s, nnp_error *err)
{
    if (!s->eng || s->channels_first)
        return NNP_OK;
    cdn_plan_wino_cl(s->eng, s->epi_sum, s->epi_relu);
    return engine_buffers(s, err);
}

/* The model's workspace of `bytes` for a call (an error outside the model
 * the layer was built in). */
static nnp_status model_ws(const conv_state *s, size_t bytes, void **ws, nnp_error *err)
{
    *ws = s->host->scratch(bytes);
    return *ws ? NNP_OK
               : s->host->error_set(err, NNP_ERR_INVALID,
                                    "Conv2D '%s': run outside the model it was built in (its "
                                    "workspace is the model's)",
                                    conv_name(s));
}

/* The workspace for a call on engine e: NULL when it keeps its own. */
static nnp_status engine_ws(const conv_state *s, void **ws, nnp_error *err)
{
    *ws = NULL;
    return s->eng_ws ? model_ws(s, cdn_workspace_bytes(s->eng), ws, err) : NNP_OK;
}

/* The engine for a call with geometry g, or NULL for im2col. */
static conv_dnnl *engine_for(const conv_state *s, const conv_geom *g)
{
    return s->eng && cdn_batch(s->eng) == g->N && !other_geom(&s->eng_g, g) ? s->eng : NULL;
}

/* The chunks of a data-parallel step's batch of N images (a 1.3 host's
 * batch_chunks), 0 outside one. Such a step runs chunk by chunk and sums
 * the weight gradients chunk by chunk through the host, so the bits depend
 * on the global batch alone, not on the process count: a chunk is the
 * same images on any number of processes, and it runs on oneDNN
 * primitives made for its number of images (the chunk engine) or, when it
 * has another number (a global batch's last chunk), on im2col. */
static int conv_chunks(const conv_state *s, int64_t N)
{
    const nnp_host *h = s->host;
    return NNP_HOST_AT_LEAST(h, 3) && h->batch_chunks ? h->batch_chunks(N, 0, NULL, NULL) : 0;
}

/* The chunk engine for a data-parallel build of geometry g (its own
 * buffers); none when oneDNN is absent or declines. */
static void ensure_chunk_engine(conv_state *s, const conv_geom *g)
{
    int64_t b, e;
    if (s->no_dnnl || !cdn_available() || g->OH < 1 || g->OW < 1 ||
        conv_chunks(s, g->N) < 1)
        return;
    s->host->batch_chunks(g->N, 0, &b, &e);
    conv_geom cg = *g;
    cg.N = e - b;
    const int nt = nnp_pu_nthreads(s->host);
    if (s->ceng && !other_geom(&s->ceng_g, &cg) && cdn_batch(s->ceng) == cg.N &&
        s->ceng_threads == nt)
        return;
    cdn_destroy(s->ceng);
    size_t bytes = 0;
    s->ceng = cdn_create(&cg, s->wb.use_bias, nt, s->host->aligned_alloc, s->host->aligned_free,
                         &bytes);
    if (s->ceng && cdn_own_buffers(s->ceng) != 0) {
        cdn_destroy(s->ceng);
        s->ceng = NULL;
    }
    s->ceng_threads = nt;
    s->ceng_g = cg;
}

/* The chunk engine for a chunk of n images, or NULL (im2col). */
static conv_dnnl *chunk_engine(const conv_state *s, const conv_geom *g, int64_t n)
{
    return s->ceng && cdn_batch(s->ceng) == n && !other_geom(&s->ceng_g, g) ? s->ceng : NULL;
}

/* y = x (*) kernel + bias over a data-parallel step's batch, chunk by
 * chunk. */
static void conv_forward_chunks(conv_state *s, const conv_geom *g, const float *x, float *y)
{
    const nnp_host *h = s->host;
    const int64_t in_img = g->H * g->W * g->C, out_img = g->P * g->F;
    const int nt = nnp_pu_nthreads(h), nc = conv_chunks(s, g->N);
    const float *bias = s->wb.use_bias ? s->wb.bias.data : NULL;
    for (int i = 0; i < nc; i++) {
        int64_t b, e;
        h->batch_chunks(g->N, i, &b, &e);
        conv_dnnl *ce = chunk_engine(s, g, e - b);
        if (ce) /* the kernel reordered at the first chunk, kept for the rest */
            cdn_forward(ce, x + b * in_img, s->wb.kernel.data, bias, y + b * out_img, i == 0,
                        NULL, 0, 0, NULL, nt);
        else
            conv_forward(g, e - b, x + b * in_img, s->wb.kernel.data, bias, y + b * out_img,
                         &s->scratch, nt);
    }
}

/* A data-parallel backward's workspace, in floats (16-aligned parts): a
 * tree node of the kernel and bias gradients; with the tree path (a 1.5
 * host, one group) the im2col rows of every local image [N * P, Kg] and,
 * channels-first, an image's transposed patches [Kg, P] per thread and the
 * output gradient as rows [N * P, F]. */
typedef struct dp_ws {
    size_t node, rows, tmp, dz, total;
} dp_ws;

static size_t up16(size_t n) { return (n + 15) / 16 * 16; }

static dp_ws dp_workspace(const conv_state *s, const conv_geom *g)
{
    dp_ws w = {0};
    w.node = up16((size_t)(g->Kg * g->F + g->F));
    w.total = w.node;
    if (NNP_HOST_AT_LEAST(s->host, 5) && g->groups == 1) {
        w.rows = up16((size_t)(g->N * g->P * g->Kg));
        /* a transposed image per thread */
        w.tmp = g->channels_first ? up16((size_t)(g->Kg * g->P)) * (size_t)nnp_pu_nthreads(s->host)
                                  : 0;
        w.dz = g->channels_first ? up16((size_t)(g->N * g->P * g->F)) : 0;
        w.total += w.rows + w.tmp + w.dz;
    }
    return w;
}

/* The backward on the whole batch's patches (gemm_backward), for an engine
 * build with one group. oneDNN's backward kernels work tile by tile of an
 * image, and on tiny outputs (ResNet's last stage at 64x64: 2x2 under 512
 * filters) they spend their time on the tiles' edges and on reordering the
 * kernel for every step (to the backward-data layout, the kernel gradient
 * back from its own); the patches of all N images are
 * instead M = N * P rows of one matrix, and both gradients are products
 * with the kernel as it is:
 *   dW [Kg, F] += cols [M, Kg]^T dz [M, F]   (gd_atb_add: each element one
 *                                             fixed sequence over the rows)
 *   dcols^T [Kg, M] = W [Kg, F] dz^T [F, M]  (gd_gemm), then col2im.
 * Both are the same bits at any thread count. Its workspace in floats
 * (16-aligned parts): cols (then dcols^T), the patch table
 * (conv_patch_offsets), dz as rows (channels-first) and dz^T. */
typedef struct gb_ws {
    size_t cols, off, dzr, dzt, total;
} gb_ws;

static gb_ws gb_workspace(const conv_geom *g)
{
    gb_ws w = {0};
    const size_t M = (size_t)(g->N * g->P);
    w.cols = up16(M * (size_t)g->Kg);
    w.off = up16((size_t)(g->kh * g->kw * g->P));
    w.dzr = g->channels_first ? up16(M * (size_t)g->F) : 0;
    w.dzt = up16(M * (size_t)g->F);
    w.total = w.cols + w.off + w.dzr + w.dzt;
    return w;
}

/* The largest workspace gemm_backward takes by the shape rule (floats):
 * its patch matrix grows with the batch, where oneDNN's partials do not. */
#define GB_MAX_FLOATS ((size_t)8 << 20)

/* Whether an engine build of geometry g runs its backward on the batch's
 * patches: NNP_CONV_BACKWARD=gemm|dnnl, else outputs of up to 4 pixels
 * (measured layer by layer: bench/README.md) when the workspace stays
 * under GB_MAX_FLOATS. */
static int gemm_backward_wanted(const conv_state *s, const conv_geom *g)
{
    if (g->groups != 1 || g->N < 1 || g->P < 1)
        return 0;
    if (s->bwd_pref >= 0)
        return s->bwd_pref;
    return g->P <= 4 && gb_workspace(g).total <= GB_MAX_FLOATS;
}

/* Plans gemm_backward for a build of geometry g (engine e, or none). */
static nnp_status plan_gemm_backward(conv_state *s, const conv_geom *g, const conv_dnnl *e,
                                     nnp_error *err)
{
    const nnp_host *h = s->host;
    s->gemm_bwd = e && gemm_backward_wanted(s, g);
    if (!s->gemm_bwd)
        return NNP_OK;
    const size_t n = gb_workspace(g).total;
    if (NNP_HOST_AT_LEAST(h, 2) && h->scratch_reserve(n * sizeof(float)))
        return NNP_OK;
    if (n <= s->gb_own_floats)
        return NNP_OK;
    float *p = h->aligned_alloc(n * sizeof(float));
    if (!p)
        return h->error_set(err, NNP_ERR_NOMEM, "Conv2D '%s': cannot allocate %zu bytes for "
                            "the backward", conv_name(s), n * sizeof(float));
    h->aligned_free(s->gb_own);
    s->gb_own = p;
    s->gb_own_floats = n;
    return NNP_OK;
}

static nnp_status conv_build(void *state, int n_in, const nnp_shape *in, nnp_shape *out,
                             nnp_error *err)
{
    conv_state *s = state;
    const nnp_host *h = s->host;
    conv_geom g;
    nnp_status st = nnp_pu_check_n_inputs(h, n_in, 1, "Conv2D", conv_name(s), err);
    if (st == NNP_OK)
        st = make_geom(s, &in[0], &g, err);
    if (st != NNP_OK)
        return st;
    if (!s->built || s->wb.kernel.shape.dims[2] != g.Cg)
        st = alloc_weights(s, g.Cg, err);
    /* oneDNN's primitives for a concrete build; im2col's scratch for the
       shapes they do not serve (with oneDNN at hand, only a concrete build
       says which: a model builds for every batch size it runs) */
    /* a build inside a data-parallel step: it runs chunk by chunk */
    const int grouped = g.N >= 1 && conv_chunks(s, g.N) > 0;
    if (st == NNP_OK && !grouped)
        st = ensure_engine(s, &g, err);
    if (st == NNP_OK)
        st = engine_buffers(s, err);
    if (st == NNP_OK && !grouped)
        st = plan_wino_cl(s, err);
    if (st == NNP_OK && grouped)
        ensure_chunk_engine(s, &g);
    const int im2col_may_run = s->no_dnnl || !cdn_available() || g.N >= 1;
    if (st == NNP_OK && g.OH >= 0 && im2col_may_run &&
        (grouped || !engine_for(s, &g) || cdn_backward_data_slow(engine_for(s, &g))))
        st = ensure_scratch(s, &g, err);
    if (st == NNP_OK && grouped)
        s->chunk_ws = h->scratch_reserve(dp_workspace(s, &g).total * sizeof(float));
    if (st == NNP_OK)
        st = plan_gemm_backward(s, &g, grouped ? NULL : engine_for(s, &g), err);
    if (st != NNP_OK)
        return st;
    /* the activation gradient of a concrete build (grows only) */
    if (g.OH >= 0 && g.N >= 0 && s->act.id != ACT_LINEAR && g.N * g.P * g.F > s->dz_floats) {
        const int64_t n = g.N * g.P * g.F;
        float *p = h->aligned_alloc((size_t)n * sizeof(float));
        if (!p)
            return h->error_set(err, NNP_ERR_NOMEM,
                                "Conv2D '%s': cannot allocate the activation gradient",
                                conv_name(s));
        h->aligned_free(s->dz);
        s->dz = p;
        s->dz_floats = n;
    }
    s->g = g;
    s->spatial_known = g.OH >= 0;
    img_shape(out, s->channels_first, in[0].dims[0], s->filters, g.OH, g.OW);
    return NNP_OK;
}

static int conv_n_weights(const void *state) { return ((const conv_state *)state)->wb.n; }

static const nnp_weight *conv_weight(const void *state, int i)
{
    return kb_weight(&((const conv_state *)state)->wb, i);
}

/* ------------------------------------------------------------------ */
/* forward / backward                                                  */
/* ------------------------------------------------------------------ */

/* The geometry of a run-time input, checked against the build. */
static nnp_status run_geom(const conv_state *s, const nnp_tensor *x, conv_geom *g,
                           nnp_shape *out_shape, nnp_error *err)
{
    const nnp_host *h = s->host;
    char b[160];
    nnp_status st = nnp_pu_check_built(h, s->built, "Conv2D", conv_name(s), err);
    if (st == NNP_OK)
        st = nnp_pu_check(h, "Conv2D", conv_name(s), x, "input", NULL, err);
    if (st == NNP_OK)
        st = make_geom(s, &x->shape, g, err);
    if (st != NNP_OK)
        return st;
    if (g->Cg != s->wb.kernel.shape.dims[2])
        return h->error_set(err, NNP_ERR_SHAPE,
                            "Conv2D '%s': input %s has %lld channels, the layer was built for %lld",
                            conv_name(s), nnp_pu_shape_str(&x->shape, b, sizeof b), (long long)g->C,
                            (long long)(s->wb.kernel.shape.dims[2] * s->groups));
    if (!engine_for(s, g) && (!s->scratch_mem || conv_slot_floats(g) > s->scratch_slot_floats))
        return h->error_set(err, NNP_ERR_SHAPE,
                            "Conv2D '%s': input %s is larger than any shape the layer was built "
                            "for (build it for this shape first)",
                            conv_name(s), nnp_pu_shape_str(&x->shape, b, sizeof b));
    img_shape(out_shape, s->channels_first, g->N, g->F, g->OH, g->OW);
    return NNP_OK;
}

/* The epilogue on the im2col path's output: act(y * scale + shift) per
 * output channel. */
static void epilogue_pass(const conv_state *s, const conv_geom *g, const cdn_epilogue *epi,
                          float *y)
{
    const int64_t F = g->F, P = g->P, n = g->N * P * F;
    const int nt = nnp_pu_nthreads(s->host);
#pragma omp parallel for schedule(static) num_threads(nt) if (n >= 65536)
    for (int64_t i = 0; i < n; i++) {
        const int64_t f = g->channels_first ? i / P % F : i % F;
        float v = epi->scale ? y[i] * epi->scale[f] + epi->shift[f] : y[i];
        y[i] = epi->relu && v < 0.0f ? 0.0f : v;
    }
}

/* The operands an inference forward on engine e may take channels-last
 * (a channels-first layer of one group): the input, and an output nothing
 * is applied to after the primitive (no activation of the layer's own). */
static unsigned conv_nhwc_io(const conv_state *s, const conv_dnnl *e)
{
    if (!e || !s->channels_first || s->groups != 1)
        return 0u;
    return CDN_X_NHWC | (s->act.id == ACT_LINEAR ? CDN_Y_NHWC : 0u);
}

static nnp_status conv_forward_k(void *state, const nnp_tensor *const *in, int n_in,
                                 nnp_tensor *out, nnp_mode mode, nnp_error *err)
{
    conv_state *s = state;
    (void)n_in;
    (void)mode;
    conv_geom g;
    nnp_shape os;
    s->store_grads = 0; /* told before a backward, not before a forward */
    nnp_status st = run_geom(s, in[0], &g, &os, err);
    if (st == NNP_OK)
        st = nnp_pu_check(s->host, "Conv2D", conv_name(s), out, "output", &os, err);
    if (st != NNP_OK)
        return st;
    const int64_t n = nnp_pu_numel(&os), last = os.dims[3];
    const float *bias = s->wb.use_bias ? s->wb.bias.data : NULL;
    const int grouped = s->scratch_mem && conv_chunks(s, g.N) > 0;
    conv_dnnl *e = grouped ? NULL : engine_for(s, &g);
    void *ws = NULL;
    if (e && (st = engine_ws(s, &ws, err)) != NNP_OK)
        return st;
    const int fused = mode == NNP_MODE_INFER && (s->epi_affine || s->epi_relu || s->epi_sum);
    cdn_epilogue epi = {s->epi_affine ? s->epi_scale : NULL, s->epi_shift, s->epi_relu,
                        s->epi_changed, s->epi_sum};
    if (fused && s->epi_sum && !e)
        return s->host->error_set(err, NNP_ERR_INVALID,
                                  "Conv2D '%s': a fused sum planned for another build",
                                  conv_name(s));
    const unsigned cl = (in[0]->flags & NNP_TENSOR_NHWC ? CDN_X_NHWC : 0u) |
                        (out->flags & NNP_TENSOR_NHWC ? CDN_Y_NHWC : 0u);
    if (cl && (mode != NNP_MODE_INFER || !e || cl != s->cl_io))
        return s->host->error_set(err, NNP_ERR_INVALID,
                                  "Conv2D '%s': got a channels-last %s it was not planned for",
                                  conv_name(s), cl & CDN_X_NHWC ? "input" : "output");
    if (e) {
        cdn_forward(e, in[0]->data, s->wb.kernel.data, bias, out->data,
                    mode == NNP_MODE_TRAIN || !s->keep_kernel, fused ? &epi : NULL,
                    cl | (mode == NNP_MODE_INFER ? CDN_INFER : 0u),
                    mode == NNP_MODE_TRAIN && !s->gemm_bwd, ws, nnp_pu_nthreads(s->host));
        s->epi_changed = fused ? 0 : s->epi_changed;
        if (fused)
            return NNP_OK;
    } else {
        if (grouped)
            conv_forward_chunks(s, &g, in[0]->data, out->data);
        else
            conv_forward(&g, g.N, in[0]->data, s->wb.kernel.data, bias, out->data, &s->scratch,
                         nnp_pu_nthreads(s->host));
        if (fused) {
            epilogue_pass(s, &g, &epi, out->data);
            return NNP_OK;
        }
    }
    if (n > 0)
        act_forward(&s->act, out->data, out->data, n / last, last, 1);
    return NNP_OK;
}

/* dx of a data-parallel step, chunk by chunk (a chunk's images alone);
 * im2col's kernel gradients for chunks of another size go to waste. */
static void conv_dx_chunks(conv_state *s, const conv_geom *g, const float *x, const float *dz,
                           float *dx, float *waste)
{
    const nnp_host *h = s->host;
    const int64_t wn = g->Kg * g->F, in_img = g->H * g->W * g->C, out_img = g->P * g->F;
    const int nt = nnp_pu_nthreads(h), nc = conv_chunks(s, g->N);
    for (int i = 0; i < nc; i++) {
        int64_t b, e;
        h->batch_chunks(g->N, i, &b, &e);
        conv_dnnl *ce = chunk_engine(s, g, e - b);
        if (ce && !cdn_backward_data_slow(ce)) {
            cdn_backward_data(ce, s->wb.kernel.data, dz + b * out_img, dx + b * in_img, NULL,
                              nt);
        } else {
            memset(waste, 0, (size_t)(wn + g->F) * sizeof(float));
            conv_backward(g, e - b, x + b * in_img, s->wb.kernel.data, dz + b * out_img, waste,
                          NULL, dx + b * in_img, &s->scratch, nt);
        }
    }
}

/* The backward of a data-parallel step. With a 1.5 host and one group: the
 * kernel and bias gradients are evaluated node by node of the host's
 * reduction tree (common/gemm_det: the im2col rows of every local image
 * against the output gradient, each chunk's rows a leaf), dx chunk by
 * chunk. Else each chunk's gradients go to the host's reduction. */
static nnp_status conv_backward_chunks(conv_state *s, const conv_geom *g, const float *x,
                                       const float *dz, float *dx, nnp_error *err)
{
    const nnp_host *h = s->host;
    const int64_t wn = g->Kg * g->F, in_img = g->H * g->W * g->C, out_img = g->P * g->F;
    const int nt = nnp_pu_nthreads(h), nc = conv_chunks(s, g->N);
    const dp_ws w = dp_workspace(s, g);
    float *part = h->scratch(w.total * sizeof(float));
    if (!part)
        return h->error_set(err, NNP_ERR_INTERNAL, "Conv2D '%s': no workspace for the chunks",
                            conv_name(s));
    nnp_status st;
    if (w.rows) {
        if (dx)
            conv_dx_chunks(s, g, x, dz, dx, part);
        float *rows = part + w.node, *tmp = rows + w.rows, *dzr = tmp + w.tmp;
        /* the rows: every image's patches; channels-first: dz as rows too
           (w.tmp holds a transposed image for each of the build's threads) */
        const size_t per = up16((size_t)(g->Kg * g->P));
        const int nti = g->channels_first && (size_t)nt * per > w.tmp ? (int)(w.tmp / per) : nt;
#pragma omp parallel for schedule(static) num_threads(nti) if (nti > 1)
        for (int64_t n = 0; n < g->N; n++) {
            conv_im2col_image(g, x + n * in_img, tmp + (size_t)omp_get_thread_num() * per,
                              rows + n * g->P * g->Kg);
            if (g->channels_first)
                gd_transpose(g->F, g->P, dz + n * out_img, dzr + n * out_img, 1);
        }
        /* the chunks' rows: their images' output positions */
        st = gd_reduce_atb(h, g->N * g->P, g->Kg, g->F, rows, g->Kg,
                           g->channels_first ? dzr : dz, g->F, part, nt, "Conv2D", conv_name(s),
                           err);
    } else {
        void *red;
        st = h->reduce_begin(NNP_F32, (size_t)(wn + g->F), 1, &red, err);
        if (st != NNP_OK)
            return st;
        for (int i = 0; i < nc; i++) {
            int64_t b, e;
            h->batch_chunks(g->N, i, &b, &e);
            memset(part, 0, (size_t)(wn + g->F) * sizeof(float));
            conv_dnnl *ce = chunk_engine(s, g, e - b);
            if (ce && dx && cdn_backward_data_slow(ce))
                ce = NULL;
            if (ce)
                cdn_backward(ce, x + b * in_img, s->wb.kernel.data, dz + b * out_img, part,
                             s->wb.use_bias ? part + wn : NULL, dx ? dx + b * in_img : NULL,
                             NULL, nt, 0);
            else
                conv_backward(g, e - b, x + b * in_img, s->wb.kernel.data, dz + b * out_img,
                              part, s->wb.use_bias ? part + wn : NULL,
                              dx ? dx + b * in_img : NULL, &s->scratch, nt);
            h->reduce_add(red, part);
        }
        st = h->reduce_end(red, part, err);
    }
    if (st != NNP_OK)
        return st;
    float *dk = s->wb.dkernel.data;
    for (int64_t j = 0; j < wn; j++)
        dk[j] += part[j];
    if (s->wb.use_bias) {
        float *db = s->wb.dbias.data;
        for (int64_t j = 0; j < g->F; j++)
            db[j] += part[wn + j];
    }
    cdn_weights_changed(s->ceng); /* the optimizer changes the kernel next */
    return NNP_OK;
}

static void gemm_backward(conv_state *s, const conv_geom *g, const float *x, const float *dz,
                          float *dkernel, float *dbias, float *dx, float *ws, int nt)
{
    const int64_t M = g->N * g->P, P = g->P, F = g->F, Kg = g->Kg;
    const int64_t in_img = g->H * g->W * g->C, out_img = P * F;
    const gb_ws w = gb_workspace(g);
    float *cols = ws, *dzr = cols + w.cols + w.off, *dzt = dzr + w.dzr;
    int32_t *off = (int32_t *)(cols + w.cols);
    conv_patch_offsets(g, off);
    const int nti = g->N < nt ? (int)g->N : nt;
#pragma omp parallel for schedule(static) num_threads(nti) if (nti > 1)
    for (int64_t n = 0; n < g->N; n++) {
        conv_patch_rows(g, off, x + n * in_img, cols + n * P * Kg);
        if (!g->channels_first)
            continue;
        const float *d = dz + n * out_img;
        gd_transpose(F, P, d, dzr + n * P * F, 1);
        for (int64_t f = 0; f < F; f++)
            memcpy(dzt + f * M + n * P, d + f * P, (size_t)P * sizeof(float));
    }
    if (!g->channels_first)
        gd_transpose(M, F, dz, dzt, nt);
    gd_atb_add(M, Kg, F, cols, Kg, g->channels_first ? dzr : dz, F, dkernel, dbias, nt);
    if (!dx)
        return;
    float *dct = cols; /* dcols^T [Kg, M] over the dead patches */
    gd_gemm(Kg, M, F, s->wb.kernel.data, F, dzt, M, NULL, dct, M, nt);
#pragma omp parallel for schedule(static) num_threads(nti) if (nti > 1)
    for (int64_t n = 0; n < g->N; n++)
        conv_patch_back(g, off, dct + n * P, M, dx + n * in_img);
}

static nnp_status conv_backward_k(void *state, const nnp_tensor *const *in, int n_in,
                                  const nnp_tensor *out, const nnp_tensor *grad_out,
                                  nnp_tensor *const *grad_in, nnp_mode mode, nnp_error *err)
{
    conv_state *s = state;
    const nnp_host *h = s->host;
    (void)n_in;
    (void)mode;
    conv_geom g;
    nnp_shape os;
    nnp_tensor *gx = grad_in ? grad_in[0] : NULL;
    const char *nm = conv_name(s);
    const int store = s->store_grads; /* write the weight gradients, not add */
    s->store_grads = 0;
    nnp_status st = run_geom(s, in[0], &g, &os, err);
    if (st == NNP_OK)
        st = nnp_pu_check(h, "Conv2D", nm, grad_out, "output gradient", &os, err);
    if (st == NNP_OK && s->act.id != ACT_LINEAR)
        st = nnp_pu_check(h, "Conv2D", nm, out, "output", &os, err);
    if (st == NNP_OK && gx)
        st = nnp_pu_check(h, "Conv2D", nm, gx, "input gradient", &in[0]->shape, err);
    const int64_t n = nnp_pu_numel(&os), last = os.dims[3];
    if (st == NNP_OK && s->act.id != ACT_LINEAR && n > s->dz_floats)
        st = h->error_set(err, NNP_ERR_SHAPE,
                          "Conv2D '%s': backward for a batch of %lld, but the layer was built "
                          "for a smaller one (build it for this batch size first)",
                          nm, (long long)g.N);
    if (st != NNP_OK)
        return st;
    const int nt = nnp_pu_nthreads(h);
    const float *dz = grad_out->data;
    const int grouped = s->scratch_mem && s->chunk_ws && conv_chunks(s, g.N) > 0;
    conv_dnnl *e = grouped ? NULL : engine_for(s, &g);
    if (e && gx && s->scratch_mem && cdn_backward_data_slow(e) && !s->gemm_bwd)
        e = NULL; /* im2col: oneDNN's backward-data is its reference loop here */
    void *ws = NULL;
    if (e && (st = engine_ws(s, &ws, err)) != NNP_OK)
        return st;
    if (s->act.id != ACT_LINEAR && n > 0) {
        const int need_x = act_needs_x(&s->act);
        const float *bias = s->wb.use_bias ? s->wb.bias.data : NULL;
        /* recompute the pre-activation rather than keep it */
        if (need_x && e)
            cdn_forward(e, in[0]->data, s->wb.kernel.data, bias, s->dz, 0, NULL, 0, 0, ws, nt);
        else if (need_x && grouped)
            conv_forward_chunks(s, &g, in[0]->data, s->dz);
        else if (need_x)
            conv_forward(&g, g.N, in[0]->data, s->wb.kernel.data, bias, s->dz, &s->scratch, nt);
        act_backward(&s->act, need_x ? s->dz : NULL, out->data, grad_out->data, s->dz, n / last,
                     last, 1);
        dz = s->dz;
    }
    float *dbias = s->wb.use_bias ? s->wb.dbias.data : NULL;
    if (store && !(e && !s->gemm_bwd && !grouped)) {
        /* the paths that add: onto zeros */
        if (s->wb.dkernel.data)
            memset(s->wb.dkernel.data, 0, s->wb.dkernel.nbytes);
        if (dbias)
            memset(dbias, 0, s->wb.dbias.nbytes);
    }
    if (grouped)
        return conv_backward_chunks(s, &g, in[0]->data, dz, gx ? gx->data : NULL, err);
    if (e && s->gemm_bwd) {
        const size_t need = gb_workspace(&g).total;
        void *gws = s->gb_own;
        if (need > s->gb_own_floats && (st = model_ws(s, need * sizeof(float), &gws, err)))
            return st;
        gemm_backward(s, &g, in[0]->data, dz, s->wb.dkernel.data, dbias, gx ? gx->data : NULL,
                      gws, nt);
        cdn_weights_changed(s->eng);
        return NNP_OK;
    }
    if (e)
        cdn_backward(e, in[0]->data, s->wb.kernel.data, dz, s->wb.dkernel.data, dbias,
                     gx ? gx->data : NULL, ws, nt, store);
    else
        conv_backward(&g, g.N, in[0]->data, s->wb.kernel.data, dz, s->wb.dkernel.data, dbias,
                      gx ? gx->data : NULL, &s->scratch, nt);
    cdn_weights_changed(s->eng); /* the optimizer changes the kernel next */
    return NNP_OK;
}

/* ------------------------------------------------------------------ */
/* plugin table                                                        */
/* ------------------------------------------------------------------ */

/* ONNX Conv's rules: every input of type T (float types); X of rank 3 or
 * more, W of X's rank, B 1-D with one value per output channel (W's
 * dimension 0). */
static const nnp_onnx_input_rule conv_input_rules[] = {
    NNP_PU_ONNX_INPUT(NULL, 0, "X", NNP_ONNX_T_FLOATS, NNP_ONNX_RANK_MIN(3)),
    NNP_PU_ONNX_INPUT_LIKE(NULL, 1, "W", NNP_ONNX_T_FLOATS, NNP_ONNX_RANK_MIN(3), 0,
                           NNP_ONNX_NO_INPUT, NNP_ONNX_NO_INPUT),
    NNP_PU_ONNX_INPUT_LIKE(NULL, 2, "B", NNP_ONNX_T_FLOATS, NNP_ONNX_RANK(1), NNP_ONNX_NO_INPUT,
                           1, 0),
    NNP_PU_ONNX_INPUTS_END,
};

static const nnp_onnx_node_ext conv_onnx_node = {
    .struct_size = sizeof(nnp_onnx_node_ext),
    .input_rules = conv_input_rules,
};

static const nnp_epilogue_ext conv_epilogue;

/* NNP_EXT_LAYOUT: channels-last memory in and out of a channels-first
 * layer on oneDNN (whose channels-last kernels are the faster ones). */
static uint32_t conv_inference_layouts(const void *state, int k)
{
    const conv_state *s = state;
    const conv_dnnl *e = s->built ? engine_for(s, &s->g) : NULL;
    const unsigned io = conv_nhwc_io(s, e);
    return io & (k < 0 ? CDN_Y_NHWC : CDN_X_NHWC) ? NNP_LAYOUT_NHWC : 0u;
}

/* The primitive for the planned layouts, with the planned epilogue's
 * post-ops; an error when oneDNN has no fast kernel for them. */
static nnp_status conv_plan_layouts(void *state, const uint32_t *in, int n_in, uint32_t out,
                                    nnp_error *err)
{
    conv_state *s = state;
    const unsigned io = (n_in > 0 && (in[0] & NNP_LAYOUT_NHWC) ? CDN_X_NHWC : 0u) |
                        (out & NNP_LAYOUT_NHWC ? CDN_Y_NHWC : 0u);
    conv_dnnl *e = s->built ? engine_for(s, &s->g) : NULL;
    s->cl_io = 0;
    if (!io)
        return NNP_OK;
    if ((io & ~conv_nhwc_io(s, e)) || cdn_plan_nhwc(e, io, s->epi_sum, s->epi_relu) != 0)
        return s->host->error_set(err, NNP_ERR_UNSUPPORTED,
                                  "Conv2D '%s': no channels-last kernel for these operands",
                                  conv_name(s));
    /* (its workspace may have grown: a Winograd forward's) */
    const nnp_status st = engine_buffers(s, err);
    if (st != NNP_OK)
        return st;
    s->cl_io = io;
    return NNP_OK;
}

static const nnp_layout_ext conv_layout = {
    .struct_size = sizeof(nnp_layout_ext),
    .inference_layouts = conv_inference_layouts,
    .plan_layouts = conv_plan_layouts,
};

/* NNP_EXT_GRAD_STORE: oneDNN's kernel gradient goes to the weight's
 * gradient through a reorder that writes (else one that adds); the other
 * paths add onto zeros. */
static void conv_store_next_backward(void *state) { ((conv_state *)state)->store_grads = 1; }

static const nnp_grad_store_ext conv_grad_store = {
    .struct_size = sizeof(nnp_grad_store_ext),
    .store_next_backward = conv_store_next_backward,
};

static const void *conv_extension(const char *name)
{
    const void *e = nnp_pu_extension(name, NNP_EXT_ONNX_NODE, &conv_onnx_node);
    if (!e)
        e = nnp_pu_extension(name, NNP_EXT_LAYOUT, &conv_layout);
    if (!e)
        e = nnp_pu_extension(name, NNP_EXT_GRAD_STORE, &conv_grad_store);
    return e ? e : nnp_pu_extension(name, NNP_EXT_EPILOGUE, &conv_epilogue);
}

static void conv_weights_changed(void *state)
{
    cdn_weights_changed(((conv_state *)state)->eng);
    cdn_weights_changed(((conv_state *)state)->ceng);
}

/* NNP_EXT_EPILOGUE, producer side: a per-channel affine over the channel
 * axis (folded into the kernel and bias on oneDNN), a sum with what the
 * output holds (a residual, on oneDNN only) and a ReLU (post-ops), in
 * inference forwards, for a layer without its own activation. */
static nnp_status conv_plan_epilogue_sum(void *state, int axis, int relu, int sum,
                                         nnp_error *err)
{
    conv_state *s = state;
    const nnp_host *h = s->host;
    const int channel_axis = s->channels_first ? 1 : 3;
    s->epi_affine = s->epi_relu = s->epi_sum = 0;
    if (axis < 0 && !relu && !sum)
        return plan_wino_cl(s, err);
    /* a sum is a post-op of the oneDNN primitive of this build */
    if (sum && !(s->built && engine_for(s, &s->g)))
        return h->error_set(err, NNP_ERR_UNSUPPORTED, "Conv2D '%s': no fused sum on im2col",
                            conv_name(s));
    if (!s->built || s->act.id != ACT_LINEAR || (axis >= 0 && axis != channel_axis))
        return h->error_set(err, NNP_ERR_UNSUPPORTED,
                            "Conv2D '%s': no epilogue over axis %d (built %d, activation %s)",
                            conv_name(s), axis, s->built, act_name(&s->act));
    if (axis >= 0 && !s->epi_scale) {
        s->epi_scale = h->aligned_alloc(2 * (size_t)s->filters * sizeof(float));
        if (!s->epi_scale)
            return h->error_set(err, NNP_ERR_NOMEM, "Conv2D '%s': out of memory", conv_name(s));
        s->epi_shift = s->epi_scale + s->filters;
    }
    if ((relu || sum) && s->eng && cdn_plan_post(s->eng, sum, relu) != 0)
        return h->error_set(err, NNP_ERR_UNSUPPORTED, "Conv2D '%s': no fused %s on oneDNN",
                            conv_name(s), sum ? "sum" : "ReLU");
    s->epi_affine = axis >= 0;
    s->epi_relu = relu;
    s->epi_sum = sum;
    s->epi_changed = 1;
    return plan_wino_cl(s, err);
}

static nnp_status conv_plan_epilogue(void *state, int axis, int relu, nnp_error *err)
{
    return conv_plan_epilogue_sum(state, axis, relu, 0, err);
}

static void conv_set_affine(void *state, const float *scale, const float *shift)
{
    conv_state *s = state;
    const size_t b = (size_t)s->filters * sizeof(float);
    if (!s->epi_scale || (!memcmp(s->epi_scale, scale, b) && !memcmp(s->epi_shift, shift, b)))
        return;
    memcpy(s->epi_scale, scale, b);
    memcpy(s->epi_shift, shift, b);
    s->epi_changed = 1;
}

static const nnp_epilogue_ext conv_epilogue = {
    .struct_size = sizeof(nnp_epilogue_ext),
    .plan_epilogue = conv_plan_epilogue,
    .set_affine = conv_set_affine,
    .to_onnx_affine = conv_to_onnx_affine,
    .plan_epilogue_sum = conv_plan_epilogue_sum,
};

static const nnp_kind conv_kind = {
    NNP_PU_KIND_HEAD,
    .name = "Conv2D",
    .doc = "Keras Conv2D: 2-D convolution with strides, padding, dilation, groups and a fused "
           "activation",
    .params = conv_params,
    .n_params = NNP_PU_COUNT(conv_params),
    .onnx = {"", "Conv", 1, 23},
    .n_inputs_min = 1,
    .n_inputs_max = 1,
    .create = conv_create,
    .destroy = conv_destroy,
    .build = conv_build,
    .n_weights = conv_n_weights,
    .weight = conv_weight,
    .forward = conv_forward_k,
    .backward = conv_backward_k,
    .to_onnx = conv_to_onnx,
    .from_onnx = conv_from_onnx,
    .onnx_load_weights = conv_onnx_load_weights,
    .extension = conv_extension,
    .weights_changed = conv_weights_changed,
};

static const nnp_kind *const conv_kinds[] = {&conv_kind};

static const nnp_plugin conv_plugin = NNP_PU_PLUGIN_INIT("conv2d", "1.0.0", conv_kinds);

NNP_EXPORT const nnp_plugin *nnp_plugin_entry(const nnp_host *host)
{
    /* it calls only the 1.0 host fields (and keeps derived kernels only
       with a 1.2 host) */
    return nnp_pu_accept_host(host, 0, &conv_plugin);
}
