/* Kernel and bias weights (see kernel_bias.h). */
#include "kernel_bias.h"

#include <string.h>

nnp_status kb_configure(kb_weights *w, const nnp_host *h, const nnp_config *cfg,
                        const char *kind, nnp_pu_seed seed, nnp_error *err)
{
    memset(w, 0, sizeof *w);
    if (h->config_regularizer(cfg, "activity_regularizer"))
        return nnp_pu_fail(h, err, NNP_ERR_UNSUPPORTED, kind, nnp_pu_name(h, cfg),
                           "activity_regularizer is not supported (only null)");
    w->seed = seed;
    w->use_bias = h->config_bool(cfg, "use_bias");
    w->kernel_reg = h->config_regularizer(cfg, "kernel_regularizer");
    w->bias_reg = h->config_regularizer(cfg, "bias_regularizer");
    w->kernel_con = h->config_constraint(cfg, "kernel_constraint");
    w->bias_con = h->config_constraint(cfg, "bias_constraint");
    return NNP_OK;
}

void kb_free(kb_weights *w, const nnp_host *h)
{
    h->tensor_free(&w->kernel);
    h->tensor_free(&w->bias);
    h->tensor_free(&w->dkernel);
    h->tensor_free(&w->dbias);
    w->n = 0;
}

nnp_status kb_alloc(kb_weights *w, const nnp_host *h, const nnp_config *cfg, const char *kind,
                    const nnp_shape *kernel_shape, const nnp_shape *bias_shape, nnp_error *err)
{
    kb_free(w, h);
    nnp_status st = nnp_pu_weight_alloc(h, cfg, kind, &w->kernel, kernel_shape,
                                        "kernel_initializer", w->seed, err);
    if (st == NNP_OK)
        st = nnp_pu_weight_alloc(h, cfg, kind, &w->dkernel, kernel_shape, NULL, w->seed, err);
    if (st == NNP_OK && w->use_bias)
        st = nnp_pu_weight_alloc(h, cfg, kind, &w->bias, bias_shape, "bias_initializer",
                                 w->seed, err);
    if (st == NNP_OK && w->use_bias)
        st = nnp_pu_weight_alloc(h, cfg, kind, &w->dbias, bias_shape, NULL, w->seed, err);
    if (st != NNP_OK) {
        kb_free(w, h);
        return st;
    }
    w->entries[0] = (nnp_weight){"kernel", &w->kernel, &w->dkernel, NNP_WEIGHT_TRAINABLE,
                                 w->kernel_reg, w->kernel_con};
    w->entries[1] = (nnp_weight){"bias", &w->bias, &w->dbias, NNP_WEIGHT_TRAINABLE,
                                 w->bias_reg, w->bias_con};
    w->n = w->use_bias ? 2 : 1;
    return NNP_OK;
}

const nnp_weight *kb_weight(const kb_weights *w, int i)
{
    return i >= 0 && i < w->n ? &w->entries[i] : NULL;
}
