/* ExampleScale: y = factor * x. The smallest complete layer kind: a template
 * to copy when writing a plugin, and a kind the loader and install tests can
 * count on. It has no weights and no ONNX mapping, so it sets only the
 * callbacks plugin.h requires (create, destroy, build, forward) and the
 * backward pass that makes it trainable through; the rest stay NULL. Its
 * entry accepts every 1.x host, since it calls only fields of 1.0.
 *
 * It uses nothing but the installed headers: <nnplug/plugin_util.h> (which
 * includes <nnplug/plugin.h>) gives the table macros, the entry's host
 * check and the checks whose messages name the layer, so a copy builds out
 * of tree as it is. */
#include <nnplug/plugin_util.h>

#define KIND "ExampleScale"

typedef struct scale_state {
    const nnp_host *host;
    const nnp_config *cfg; /* the layer's name for messages; valid until destroy */
    float factor;
} scale_state;

static const nnp_param_def scale_params[] = {
    {.name = "factor", .type = NNP_PARAM_FLOAT, .default_json = "1.0",
     .doc = "multiplier applied to every element"},
};

static const char *scale_name(const scale_state *s) { return nnp_pu_name(s->host, s->cfg); }

static nnp_status scale_create(const nnp_host *host, const nnp_config *cfg, void **state,
                               nnp_error *err)
{
    scale_state *s = host->aligned_alloc(sizeof *s);
    if (!s)
        return host->error_set(err, NNP_ERR_NOMEM, KIND ": out of memory");
    s->host = host;
    s->cfg = cfg;
    s->factor = (float)host->config_float(cfg, "factor");
    *state = s;
    return NNP_OK;
}

static void scale_destroy(void *state)
{
    scale_state *s = state;
    if (s)
        s->host->aligned_free(s);
}

static nnp_status scale_build(void *state, int n_in, const nnp_shape *in, nnp_shape *out,
                              nnp_error *err)
{
    scale_state *s = state;
    nnp_status st = nnp_pu_check_n_inputs(s->host, n_in, 1, KIND, scale_name(s), err);
    if (st == NNP_OK)
        *out = in[0];
    return st;
}

/* Run-time checks: float32 tensors with data, a and b of the same shape. */
static nnp_status check_pair(const scale_state *s, const nnp_tensor *a, const char *a_what,
                             const nnp_tensor *b, const char *b_what, nnp_error *err)
{
    nnp_status st = nnp_pu_check(s->host, KIND, scale_name(s), a, a_what, NULL, err);
    if (st == NNP_OK)
        st = nnp_pu_check(s->host, KIND, scale_name(s), b, b_what, &a->shape, err);
    return st;
}

static nnp_status scale_forward(void *state, const nnp_tensor *const *in, int n_in,
                                nnp_tensor *out, nnp_mode mode, nnp_error *err)
{
    const scale_state *s = state;
    (void)n_in;
    (void)mode;
    nnp_status st = check_pair(s, in[0], "input", out, "output", err);
    if (st)
        return st;
    const int64_t n = nnp_pu_numel(&out->shape);
    const float *x = in[0]->data;
    float *y = out->data;
    for (int64_t i = 0; i < n; i++)
        y[i] = s->factor * x[i];
    return NNP_OK;
}

static nnp_status scale_backward(void *state, const nnp_tensor *const *in, int n_in,
                                 const nnp_tensor *out, const nnp_tensor *grad_out,
                                 nnp_tensor *const *grad_in, nnp_mode mode, nnp_error *err)
{
    const scale_state *s = state;
    (void)in;
    (void)n_in;
    (void)out;
    (void)mode;
    if (!grad_in[0])
        return NNP_OK;
    nnp_status st = check_pair(s, grad_out, "output gradient", grad_in[0], "input gradient", err);
    if (st)
        return st;
    const int64_t n = nnp_pu_numel(&grad_out->shape);
    const float *gy = grad_out->data;
    float *gx = grad_in[0]->data;
    for (int64_t i = 0; i < n; i++)
        gx[i] = s->factor * gy[i];
    return NNP_OK;
}

static const nnp_kind scale_kind = {
    NNP_PU_KIND_HEAD,
    .name = KIND,
    .doc = "y = factor * x, elementwise",
    .params = scale_params,
    .n_params = NNP_PU_COUNT(scale_params),
    .n_inputs_min = 1,
    .n_inputs_max = 1,
    .create = scale_create,
    .destroy = scale_destroy,
    .build = scale_build,
    .forward = scale_forward,
    .backward = scale_backward,
};

static const nnp_kind *const scale_kinds[] = {&scale_kind};

static const nnp_plugin scale_plugin = NNP_PU_PLUGIN_INIT("example_scale", "1.0.0", scale_kinds);

NNP_EXPORT const nnp_plugin *nnp_plugin_entry(const nnp_host *host)
{
    /* it calls only the 1.0 host fields */
    return nnp_pu_accept_host(host, 0, &scale_plugin);
}
