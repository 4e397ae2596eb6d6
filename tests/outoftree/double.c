/* OutOfTreeDouble: y = 2x. A plugin that includes only <nnplug/plugin.h>. */
#include <nnplug/plugin.h>

static const nnp_host *host_of(void *state)
{
    return *(const nnp_host **)state;
}

static nnp_status dbl_create(const nnp_host *host, const nnp_config *cfg, void **state,
                             nnp_error *err)
{
    (void)cfg;
    /* The state only remembers the host table, for errors and freeing. */
    const nnp_host **s = host->aligned_alloc(sizeof *s);
    if (!s)
        return host->error_set(err, NNP_ERR_NOMEM, "OutOfTreeDouble: out of memory");
    *s = host;
    *state = s;
    return NNP_OK;
}

static void dbl_destroy(void *state)
{
    if (state)
        host_of(state)->aligned_free(state);
}

static nnp_status dbl_build(void *state, int n_in, const nnp_shape *in, nnp_shape *out,
                            nnp_error *err)
{
    (void)state, (void)n_in, (void)err;
    *out = in[0];
    return NNP_OK;
}

static nnp_status dbl_forward(void *state, const nnp_tensor *const *in, int n_in,
                              nnp_tensor *out, nnp_mode mode, nnp_error *err)
{
    (void)n_in, (void)mode;
    if (in[0]->dtype != NNP_F32 || out->dtype != NNP_F32 || in[0]->nbytes != out->nbytes)
        return host_of(state)->error_set(err, NNP_ERR_SHAPE, "OutOfTreeDouble: bad tensors");
    const float *x = in[0]->data;
    float *y = out->data;
    for (size_t i = 0; i < out->nbytes / sizeof(float); i++)
        y[i] = 2.0f * x[i];
    return NNP_OK;
}

static const nnp_kind dbl_kind = {
    .struct_size = sizeof(nnp_kind), .abi_major = NNP_ABI_MAJOR, .abi_minor = NNP_ABI_MINOR,
    .name = "OutOfTreeDouble", .doc = "y = 2x", .n_inputs_min = 1, .n_inputs_max = 1,
    .create = dbl_create, .destroy = dbl_destroy, .build = dbl_build, .forward = dbl_forward,
};
static const nnp_kind *const dbl_kinds[] = {&dbl_kind};
static const nnp_plugin dbl_plugin = {
    .struct_size = sizeof(nnp_plugin), .abi_major = NNP_ABI_MAJOR, .abi_minor = NNP_ABI_MINOR,
    .name = "outoftree_double", .version = "1.0.0", .kinds = dbl_kinds, .n_kinds = 1,
};

NNP_EXPORT const nnp_plugin *nnp_plugin_entry(const nnp_host *host)
{
    (void)host;
    return &dbl_plugin;
}
