/* ExampleScale: y = factor * x. The smallest complete layer kind: a template
 * to copy when writing a plugin, and a kind the loader and install tests can
 * count on. It has no weights and no ONNX mapping, so it sets only the
 * callbacks plugin.h requires (create, destroy, build, forward) and the
 * backward pass that makes it trainable through; the rest stay NULL. Its
 * entry accepts every 1.x host, since it calls only fields of 1.0. */
#include <nnplug/plugin.h>
#include <nnplug/plugin_util.h>

typedef struct scale_state {
    const nnp_host *host;
    float factor;
} scale_state;

static const nnp_param_def scale_params[] = {
    {.name = "factor", .type = NNP_PARAM_FLOAT, .default_json = "1.0",
     .doc = "multiplier applied to every element"},
};

static nnp_status scale_create(const nnp_host *host, const nnp_config *cfg, void **state,
                               nnp_error *err)
{
    scale_state *s = host->aligned_alloc(sizeof *s);
    if (!s)
        return host->error_set(err, NNP_ERR_NOMEM, "ExampleScale: out of memory");
    s->host = host;
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
    if (n_in != 1)
        return s->host->error_set(err, NNP_ERR_INVALID, "ExampleScale takes 1 input, got %d",
                                  n_in);
    *out = in[0];
    return NNP_OK;
}

/* Element count of two float32 tensors that must match in size. */
static nnp_status same_size(const scale_state *s, const nnp_tensor *a, const nnp_tensor *b,
                            int64_t *n, nnp_error *err)
{
    if (a->dtype != NNP_F32 || b->dtype != NNP_F32 || a->nbytes != b->nbytes)
        return s->host->error_set(err, NNP_ERR_SHAPE,
                                  "ExampleScale: needs float32 tensors of equal size");
    *n = (int64_t)(a->nbytes / sizeof(float));
    return NNP_OK;
}

static nnp_status scale_forward(void *state, const nnp_tensor *const *in, int n_in,
                                nnp_tensor *out, nnp_mode mode, nnp_error *err)
{
    const scale_state *s = state;
    (void)n_in;
    (void)mode;
    int64_t n = 0;
    nnp_status st = same_size(s, in[0], out, &n, err);
    if (st)
        return st;
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
    int64_t n = 0;
    nnp_status st = same_size(s, grad_out, grad_in[0], &n, err);
    if (st)
        return st;
    const float *gy = grad_out->data;
    float *gx = grad_in[0]->data;
    for (int64_t i = 0; i < n; i++)
        gx[i] = s->factor * gy[i];
    return NNP_OK;
}

static const nnp_kind scale_kind = {
    .struct_size = sizeof(nnp_kind),
    .abi_major = NNP_ABI_MAJOR,
    .abi_minor = NNP_ABI_MINOR,
    .name = "ExampleScale",
    .doc = "y = factor * x, elementwise",
    .params = scale_params,
    .n_params = sizeof scale_params / sizeof scale_params[0],
    .n_inputs_min = 1,
    .n_inputs_max = 1,
    .create = scale_create,
    .destroy = scale_destroy,
    .build = scale_build,
    .forward = scale_forward,
    .backward = scale_backward,
};

static const nnp_kind *const scale_kinds[] = {&scale_kind};

static const nnp_plugin scale_plugin = {
    .struct_size = sizeof(nnp_plugin),
    .abi_major = NNP_ABI_MAJOR,
    .abi_minor = NNP_ABI_MINOR,
    .name = "example_scale",
    .version = "1.0.0",
    .kinds = scale_kinds,
    .n_kinds = 1,
};

NNP_EXPORT const nnp_plugin *nnp_plugin_entry(const nnp_host *host)
{
    /* it calls only the 1.0 host fields */
    return nnp_pu_accept_host(host, 0, &scale_plugin);
}
