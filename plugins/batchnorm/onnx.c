/*
 * ONNX mapping of BatchNormalization (DESIGN.md section 5), through the
 * host's node writer and reader only.
 *
 * Export: BatchNormalization(X, scale, B, input_mean, input_var) with epsilon
 * and momentum (same meaning in ONNX and Keras). ONNX normalizes axis 1, so
 * any other axis is wrapped as Transpose(perm) -> BN -> Transpose(inverse).
 * Absent weights become constants: center=false -> B zeros, scale=false ->
 * scale ones.
 * Import: opsets 1 to 15. Attributes absent from a node take ONNX's defaults
 * (epsilon 1e-5, momentum 0.9), not Keras's.
 */
#include <nnplug/plugin_util.h>

#include "batchnorm.h"

#include <stdio.h>
#include <string.h>

/* Adds the [C] tensor t (or a constant `fill` when t is NULL) as an
 * initializer named after base; the unique name goes to name. */
static nnp_status add_weight(const bn_state *s, nnp_onnx_writer *w, const char *base,
                             const char *suffix, const nnp_tensor *t, float fill, char *name,
                             size_t size, nnp_error *err)
{
    const nnp_host *h = s->host;
    char want[256];
    snprintf(want, sizeof want, "%s/%s", base, suffix);
    if (!h->onnx_unique_name(w, want, name, size))
        return h->error_set(err, NNP_ERR_NOMEM, "BatchNormalization '%s': no name for %s",
                            bn_name(s), want);
    if (t)
        return h->onnx_add_initializer(w, name, t, err);
    nnp_tensor tmp;
    nnp_shape sh = {1, {s->channels}};
    nnp_status st = h->tensor_alloc(&tmp, NNP_F32, &sh, err);
    if (st != NNP_OK)
        return st;
    for (int64_t i = 0; i < s->channels; i++)
        ((float *)tmp.data)[i] = fill;
    st = h->onnx_add_initializer(w, name, &tmp, err);
    h->tensor_free(&tmp);
    return st;
}

static nnp_status add_transpose(const bn_state *s, nnp_onnx_writer *w, const char *base,
                                const char *in, const char *out, const int64_t *perm,
                                nnp_error *err)
{
    const nnp_host *h = s->host;
    char want[256], name[256];
    snprintf(want, sizeof want, "%s/transpose", base);
    if (!h->onnx_unique_name(w, want, name, sizeof name))
        return h->error_set(err, NNP_ERR_NOMEM, "BatchNormalization '%s': no name for %s",
                            bn_name(s), want);
    int node = h->onnx_add_node(w, "Transpose", "", name, &in, 1, &out, 1, err);
    if (node < 0)
        return nnp_pu_err_code(err);
    return h->onnx_attr_ints(w, node, "perm", perm, s->rank, err);
}

/* The value info of the node's output inside a Transpose sandwich: the
 * input's shape with the channels at 1, the batch as the symbolic batch. */
static nnp_status describe_channels_first(const bn_state *s, nnp_onnx_writer *w,
                                          const char *name, const int64_t *perm, nnp_error *err)
{
    nnp_shape sh = {s->rank, {0}};
    for (int i = 0; i < s->rank; i++) {
        int64_t d = s->in_shape.dims[perm[i]];
        sh.dims[i] = perm[i] == 0 ? -1 : d >= 0 ? d : -2;   /* -1: the batch; -2: unknown */
    }
    return s->host->onnx_add_value_info(w, name, NNP_F32, &sh, err);
}

nnp_status bn_to_onnx(const void *state, nnp_onnx_writer *w, const char *const *inputs,
                      int n_inputs, const char *output, nnp_error *err)
{
    const bn_state *s = state;
    const nnp_host *h = s->host;
    nnp_status st =
        nnp_pu_check_export(h, s->built, n_inputs, 1, "BatchNormalization", bn_name(s), err);
    if (st != NNP_OK)
        return st;
    const int opset = h->onnx_writer_opset(w);
    if (opset < 6)
        return h->error_set(err, NNP_ERR_UNSUPPORTED,
                            "BatchNormalization '%s': export needs opset >= 6 (asked for %d)",
                            bn_name(s), opset);
    const char *base = nnp_pu_onnx_base(h, s->cfg, "batch_normalization");

    char n_scale[256], n_b[256], n_mean[256], n_var[256];
    st = add_weight(s, w, base, "gamma", s->scale ? &s->gamma : NULL, 1.0f, n_scale, sizeof n_scale,
                    err);
    if (st == NNP_OK)
        st = add_weight(s, w, base, "beta", s->center ? &s->beta : NULL, 0.0f, n_b, sizeof n_b,
                        err);
    if (st == NNP_OK)
        st = add_weight(s, w, base, "moving_mean", &s->moving_mean, 0.0f, n_mean, sizeof n_mean,
                        err);
    if (st == NNP_OK)
        st = add_weight(s, w, base, "moving_variance", &s->moving_var, 0.0f, n_var,
                        sizeof n_var, err);
    if (st != NNP_OK)
        return st;

    /* perm brings the axis to position 1, keeping the others in order */
    const int transpose = s->axis != 1;
    int64_t perm[NNP_MAX_RANK], inv[NNP_MAX_RANK];
    char t_in[256], t_out[256], want[256];
    const char *bn_in = inputs[0], *bn_out = output;
    if (transpose) {
        int k = 0;
        for (int i = 0; i < s->rank; i++) {
            if (i == s->axis)
                continue;
            perm[k++] = i;
            if (k == 1)
                perm[k++] = s->axis;
        }
        for (int i = 0; i < s->rank; i++)
            inv[perm[i]] = i;
        snprintf(want, sizeof want, "%s/channels_first", base);
        bn_in = h->onnx_unique_name(w, want, t_in, sizeof t_in);
        snprintf(want, sizeof want, "%s/normalized", base);
        bn_out = h->onnx_unique_name(w, want, t_out, sizeof t_out);
        if (!bn_in || !bn_out)
            return h->error_set(err, NNP_ERR_NOMEM, "BatchNormalization '%s': no tensor names",
                                bn_name(s));
        st = add_transpose(s, w, base, inputs[0], bn_in, perm, err);
        if (st != NNP_OK)
            return st;
    }

    char node_name[256];
    if (!h->onnx_unique_name(w, base, node_name, sizeof node_name))
        return h->error_set(err, NNP_ERR_NOMEM, "BatchNormalization '%s': no node name",
                            bn_name(s));
    const char *bn_inputs[5] = {bn_in, n_scale, n_b, n_mean, n_var};
    int node = h->onnx_add_node(w, "BatchNormalization", "", node_name, bn_inputs, 5, &bn_out,
                                1, err);
    if (node < 0)
        return nnp_pu_err_code(err);
    st = h->onnx_attr_float(w, node, "epsilon", (float)s->epsilon, err);
    if (st == NNP_OK)
        st = h->onnx_attr_float(w, node, "momentum", (float)s->momentum, err);
    /* opset 6 defaults to training (is_test=0); a Keras model exports inference */
    if (st == NNP_OK && opset < 7)
        st = h->onnx_attr_int(w, node, "is_test", 1, err);
    if (st == NNP_OK && transpose)
        st = describe_channels_first(s, w, bn_out, perm, err);
    if (st == NNP_OK && transpose)
        st = add_transpose(s, w, base, bn_out, output, inv, err);
    return st;
}

nnp_status bn_from_onnx(const nnp_host *h, const nnp_onnx_reader *r, nnp_config *cfg,
                        nnp_error *err)
{
    const char *node = nnp_pu_node_label(h, r);
    const int opset = h->onnx_reader_opset(r);
    const char *op = h->onnx_op_type(r);
    if (!op || strcmp(op, "BatchNormalization") != 0)
        return h->error_set(err, NNP_ERR_INVALID,
                            "node '%s': op %s is not BatchNormalization", node, op ? op : "?");
    int n_in = h->onnx_n_inputs(r);
    if (n_in != 5)
        return h->error_set(err, NNP_ERR_FORMAT,
                            "BatchNormalization node '%s': needs 5 inputs (X, scale, B, mean, "
                            "var), has %d",
                            node, n_in);
    /* spatial (opsets 1-8): 0 means statistics per activation, not per
     * channel, which no Keras layer computes */
    if (opset < 9 && h->onnx_has_attr(r, "spatial")) {
        int64_t spatial = 1;
        nnp_status st = h->onnx_get_attr_int(r, "spatial", &spatial, err);
        if (st != NNP_OK)
            return st;
        if (spatial == 0)
            return h->error_set(err, NNP_ERR_UNSUPPORTED,
                                "BatchNormalization node '%s' (opset %d): spatial=0 "
                                "(per-activation statistics) is not supported",
                                node, opset);
    }
    /* consumed_inputs (opset 1) and is_test (opsets 1-6) carry nothing the
     * layer config needs; training_mode (14+) is the host's per-node mode */
    float eps, momentum;
    nnp_status st = nnp_pu_attr_float(h, r, "epsilon", 1e-5f, &eps, err);
    if (st == NNP_OK)
        st = nnp_pu_attr_float(h, r, "momentum", 0.9f, &momentum, err);
    if (st == NNP_OK)
        st = h->config_set_int(cfg, "axis", 1, err);
    if (st == NNP_OK)
        st = h->config_set_float(cfg, "epsilon", (double)eps, err);
    if (st == NNP_OK)
        st = h->config_set_float(cfg, "momentum", (double)momentum, err);
    if (st == NNP_OK)
        st = h->config_set_bool(cfg, "center", 1, err);
    if (st == NNP_OK)
        st = h->config_set_bool(cfg, "scale", 1, err);
    return st;
}

nnp_status bn_onnx_load_weights(void *state, const nnp_onnx_reader *r, nnp_error *err)
{
    bn_state *s = state;
    const nnp_host *h = s->host;
    const char *node = nnp_pu_node_label(h, r);
    static const char *const what[5] = {"X", "scale", "B", "input_mean", "input_var"};
    if (!s->built)
        return h->error_set(err, NNP_ERR_INVALID,
                            "BatchNormalization node '%s': weights loaded before build", node);
    if (h->onnx_n_inputs(r) < 5)
        return h->error_set(err, NNP_ERR_FORMAT,
                            "BatchNormalization node '%s': needs 5 inputs", node);
    /* absent weights (scale/center false, from our own metadata) must hold
     * the identity value the exporter wrote */
    nnp_tensor *dst[5] = {NULL, s->scale ? &s->gamma : NULL, s->center ? &s->beta : NULL,
                          &s->moving_mean, &s->moving_var};
    const float identity[5] = {0.0f, 1.0f, 0.0f, 0.0f, 0.0f};
    for (int i = 1; i < 5; i++) {
        const nnp_tensor *t = NULL;
        nnp_status st = h->onnx_input_constant(r, i, &t, err);
        if (st == NNP_ERR_NOT_FOUND)
            return h->error_set(err, NNP_ERR_UNSUPPORTED,
                                "BatchNormalization node '%s': input %s ('%s') must be a "
                                "constant (an initializer)",
                                node, what[i], h->onnx_input_name(r, i));
        if (st != NNP_OK)
            return st;
        int64_t n = 0;
        if (t->dtype == NNP_F32)
            st = h->shape_numel(&t->shape, &n, err);
        if (st != NNP_OK)
            return st;
        if (t->dtype != NNP_F32 || n != s->channels)
            return h->error_set(err, NNP_ERR_SHAPE,
                                "BatchNormalization node '%s': input %s ('%s') has %lld "
                                "float values, expected %lld (one per channel)",
                                node, what[i], h->onnx_input_name(r, i), (long long)n,
                                (long long)s->channels);
        const float *v = t->data;
        if (dst[i]) {
            if (n > 0)
                memcpy(dst[i]->data, v, (size_t)n * sizeof(float));
            continue;
        }
        for (int64_t c = 0; c < n; c++)
            if (v[c] != identity[i])
                return h->error_set(err, NNP_ERR_INVALID,
                                    "BatchNormalization node '%s': the layer has %s=false but "
                                    "input %s holds %g at channel %lld (expected %g)",
                                    node, i == 1 ? "scale" : "center", what[i], (double)v[c],
                                    (long long)c, (double)identity[i]);
    }
    return NNP_OK;
}

/* ---- what the host's interchange asks of the kind (NNP_EXT_ONNX_NODE) ---- */

/* ONNX's outputs Y, running_mean, running_var: in training mode the last
 * two are the moving statistics after the forward. */
static const char *const bn_weight_outputs[] = {"", "moving_mean", "moving_variance", NULL};

/* training_mode from opset 14 on; before, the presence of the running
 * statistics outputs (as ONNX Runtime reads them). */
static nnp_status bn_read_training(const nnp_host *h, const nnp_onnx_reader *r, int *train,
                                   nnp_error *err)
{
    *train = 0;
    if (h->onnx_reader_opset(r) >= 14) {
        if (!h->onnx_has_attr(r, "training_mode"))
            return NNP_OK;
        int64_t v = 0;
        nnp_status st = h->onnx_get_attr_int(r, "training_mode", &v, err);
        if (st != NNP_OK)
            return st;
        if (v != 0 && v != 1)
            return h->error_set(err, NNP_ERR_FORMAT, "training_mode is %lld (0 or 1)",
                                (long long)v);
        *train = v == 1;
        return NNP_OK;
    }
    for (int k = 1; k < h->onnx_n_outputs(r); k++) {
        const char *o = h->onnx_output_name(r, k);
        if (o && o[0])
            *train = 1;
    }
    return NNP_OK;
}

/* From opset 14 the attribute; below it a node computes in training mode
 * when it has all five outputs (Y, mean, var, saved_mean, saved_var): the
 * ones the model does not read get names of their own. */
static nnp_status bn_write_training(const void *state, nnp_onnx_writer *w, int node,
                                    nnp_error *err)
{
    static const char *const what[5] = {"", "running_mean", "running_var", "saved_mean",
                                        "saved_var"};
    const bn_state *s = state;
    const nnp_host *h = s->host;
    if (h->onnx_writer_opset(w) >= 14)
        return h->onnx_attr_int(w, node, "training_mode", 1, err);
    const char *node_name = h->onnx_writer_node_name(w, node);
    const nnp_shape per_channel = {1, {s->channels}};
    for (int k = 1; k < 5; k++) {
        const char *o = h->onnx_writer_node_output(w, node, k);
        if (o && o[0])
            continue;
        char want[400], name[512];
        snprintf(want, sizeof want, "%.300s/%s", node_name ? node_name : bn_name(s), what[k]);
        if (!h->onnx_unique_name(w, want, name, sizeof name))
            return h->error_set(err, NNP_ERR_NOMEM, "BatchNormalization '%s': no name for %s",
                                bn_name(s), want);
        nnp_status st = h->onnx_writer_set_output(w, node, k, name, err);
        if (st == NNP_OK)
            st = h->onnx_add_value_info(w, name, NNP_F32, &per_channel, err);
        if (st != NNP_OK)
            return st;
    }
    return NNP_OK;
}

/* ONNX's rules, which the host checks before the layer allocates anything:
 * every input of a float type (T, T1, T2: float16, float, double,
 * bfloat16); X of rank 2 or more; scale, B, mean and var 1-D, one value per
 * channel of X (dimension 1). */
#define BN_PARAM(i, name)                                                               \
    NNP_PU_ONNX_INPUT_LIKE(NULL, i, name, NNP_ONNX_T_FLOATS, NNP_ONNX_RANK(1),          \
                           NNP_ONNX_NO_INPUT, 0, 1)
static const nnp_onnx_input_rule bn_input_rules[] = {
    NNP_PU_ONNX_INPUT(NULL, 0, "X", NNP_ONNX_T_FLOATS, NNP_ONNX_RANK_MIN(2)),
    BN_PARAM(1, "scale"),
    BN_PARAM(2, "B"),
    BN_PARAM(3, "input_mean"),
    BN_PARAM(4, "input_var"),
    NNP_PU_ONNX_INPUTS_END,
};

/* Transpose(perm) -> BatchNormalization -> Transpose(inverse): ONNX
 * normalizes axis 1 of the transposed tensor, which is axis perm[1] of the
 * sandwich's input (Keras writes the last axis as -1). */
static nnp_status bn_fold_transpose(const nnp_host *h, const int64_t *perm, int rank,
                                    const nnp_shape *input, nnp_config *cfg, nnp_error *err)
{
    (void)input;
    return h->config_set_int(cfg, "axis", perm[1] == rank - 1 ? -1 : perm[1], err);
}

static const nnp_onnx_node_ext bn_onnx_node = {
    .struct_size = sizeof(nnp_onnx_node_ext),
    .weight_outputs = bn_weight_outputs,
    .read_training = bn_read_training,
    .write_training = bn_write_training,
    .fold_transpose = bn_fold_transpose,
    .input_rules = bn_input_rules,
};

const void *bn_extension(const char *name)
{
    return nnp_pu_extension(name, NNP_EXT_ONNX_NODE, &bn_onnx_node);
}
