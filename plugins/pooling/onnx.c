/*
 * ONNX mapping of the pooling layers, through the host's node writer and
 * reader only.
 *
 * Export: MaxPool / AveragePool (count_include_pad=0: Keras averages the
 * unpadded positions) / GlobalAveragePool / GlobalMaxPool on NCHW, wrapped
 * in Transpose nodes for channels_last. "same" is written as explicit pads
 * when they do not depend on the input size (stride 1), else as
 * auto_pad=SAME_UPPER. Global pooling without keepdims adds a Flatten
 * ([N, C, 1, 1] -> [N, C]).
 * Import: kernel_shape, strides (ONNX's default is 1, not the pool size),
 * pads / auto_pad, count_include_pad; ceil_mode only where it does not
 * change the output size; dilations must be 1. Global pooling is imported
 * with keepdims=true (ONNX keeps [N, C, 1, 1]) so that a following Flatten
 * or Reshape sees the shape it was written for.
 */
#include <nnplug/plugin_util.h>

#include "pooling.h"
#include "common/padding.h"

#include <string.h>

static nnp_status window_attrs(const pool_state *s, const nnp_host *h, nnp_onnx_writer *w,
                               int node, nnp_error *err)
{
    const int64_t k[2] = {s->kh, s->kw}, st2[2] = {s->sh, s->sw}, dil[2] = {1, 1};
    nnp_status st = h->onnx_attr_ints(w, node, "kernel_shape", k, 2, err);
    if (st == NNP_OK)
        st = h->onnx_attr_ints(w, node, "strides", st2, 2, err);
    if (st != NNP_OK)
        return st;
    int64_t pads[4];
    if (pad_to_onnx(s->same, s->explicit_pads ? s->pads : NULL, k, st2, dil, pads))
        return h->onnx_attr_string(w, node, "auto_pad", "SAME_UPPER", err);
    return h->onnx_attr_ints(w, node, "pads", pads, 4, err);
}

nnp_status pool_to_onnx(const void *state, nnp_onnx_writer *w, const char *const *inputs,
                        int n_inputs, const char *output, nnp_error *err)
{
    const pool_state *s = state;
    const nnp_host *h = s->host;
    if (!s->built || n_inputs != 1)
        return h->error_set(err, NNP_ERR_INVALID,
                            "%s '%s': export needs a built layer with 1 input", s->kind,
                            pool_name(s));
    const char *base = nnp_pu_onnx_base(h, s->cfg, "pooling");
    static const int64_t to_nchw[4] = {0, 3, 1, 2}, to_nhwc[4] = {0, 2, 3, 1};
    const char *op = s->global ? (s->op == POOL_MAX ? "GlobalMaxPool" : "GlobalAveragePool")
                               : (s->op == POOL_MAX ? "MaxPool" : "AveragePool");
    char xin[256], pooled[256];
    const char *x = inputs[0];
    nnp_status st = NNP_OK;
    if (!s->channels_first) {
        x = nnp_pu_value_name(h, w, base, "nchw", xin, sizeof xin);
        st = nnp_pu_add_transpose(h, w, base, inputs[0], x, to_nchw, 4, err);
        if (st != NNP_OK)
            return st;
    }
    /* a last node (Transpose back, or Flatten) follows unless NCHW keeps all */
    const int tail = !s->channels_first || (s->global && !s->keepdims);
    const char *y = tail ? nnp_pu_value_name(h, w, base, "pooled", pooled, sizeof pooled) : output;
    int node = nnp_pu_add_node(h, w, op, base, &x, 1, y, err);
    if (node < 0)
        return nnp_pu_err_code(err);
    if (!s->global) {
        st = window_attrs(s, h, w, node, err);
        if (st == NNP_OK && s->op == POOL_AVG)
            st = h->onnx_attr_int(w, node, "count_include_pad", s->count_include_pad, err);
        if (st != NNP_OK)
            return st;
    }
    if (!tail)
        return NNP_OK;
    if (s->global && !s->keepdims) {
        node = nnp_pu_add_node(h, w, "Flatten", base, &y, 1, output, err);
        if (node < 0)
            return nnp_pu_err_code(err);
        return h->onnx_attr_int(w, node, "axis", 1, err);
    }
    return nnp_pu_add_transpose(h, w, base, y, output, to_nhwc, 4, err);
}

nnp_status pool_from_onnx(const nnp_host *h, const nnp_onnx_reader *r, nnp_config *cfg,
                          nnp_error *err)
{
    const char *op = h->onnx_op_type(r);
    const char *node = nnp_pu_node_label(h, r);
    nnp_status st;
    if (!op)
        return h->error_set(err, NNP_ERR_INVALID, "pooling: node '%s' has no op type", node);
    if (nnp_pu_has_output(h, r, 1))
        return h->error_set(err, NNP_ERR_UNSUPPORTED,
                            "%s node '%s': the Indices output is not supported", op, node);
    st = nnp_pu_set_string(h, cfg, "data_format", "channels_first", err);
    if (st != NNP_OK)
        return st;
    if (strcmp(op, "GlobalAveragePool") == 0 || strcmp(op, "GlobalMaxPool") == 0) {
        nnp_shape xs;
        if (nnp_pu_input_shape(h, r, 0, &xs) >= 0 && xs.rank != 4)
            return h->error_set(err, NNP_ERR_UNSUPPORTED,
                                "%s node '%s': input of rank %d; only 2-D pooling (rank 4) is "
                                "supported",
                                op, node, xs.rank);
        return h->config_set_bool(cfg, "keepdims", 1, err);
    }
    int64_t k[4], s[2] = {1, 1}, d[2] = {1, 1};
    int n = nnp_pu_attr_ints(h, r, "kernel_shape", k, 4, err);
    if (n < 0)
        return err->code;
    if (n != 2)
        return h->error_set(err, NNP_ERR_UNSUPPORTED,
                            "%s node '%s': kernel_shape has %d entries; only 2-D pooling is "
                            "supported",
                            op, node, n);
    if (nnp_pu_attr_ints(h, r, "strides", s, 2, err) < 0 ||
        nnp_pu_attr_ints(h, r, "dilations", d, 2, err) < 0)
        return err->code;
    if (d[0] != 1 || d[1] != 1)
        return h->error_set(err, NNP_ERR_UNSUPPORTED,
                            "%s node '%s': dilated pooling has no Keras equivalent", op, node);
    int mode = PAD_VALID;
    int64_t pads[4];
    st = pad_from_onnx(h, r, k, s, d, &mode, pads, err);
    if (st != NNP_OK)
        return st;
    int64_t ceil_mode = 0;
    st = nnp_pu_attr_int(h, r, "ceil_mode", 0, &ceil_mode, err);
    if (st != NNP_OK)
        return st;
    if (ceil_mode) {
        /* ceil_mode only matters when a partial window would be added */
        nnp_shape xs;
        int same_size = nnp_pu_input_shape(h, r, 0, &xs) == 4 && mode != PAD_SAME;
        for (int i = 0; i < 2 && same_size; i++) {
            const int64_t span = xs.dims[2 + i] + pads[i] + pads[i + 2] - k[i];
            same_size = xs.dims[2 + i] >= 0 && span >= 0 && span % s[i] == 0;
        }
        if (!same_size)
            return h->error_set(err, NNP_ERR_UNSUPPORTED,
                                "%s node '%s': ceil_mode=1 adds a partial window here, which "
                                "Keras pooling does not have",
                                op, node);
    }
    int64_t include_pad = 0;
    if (strcmp(op, "AveragePool") == 0) {
        st = nnp_pu_attr_int(h, r, "count_include_pad", 0, &include_pad, err);
        if (st != NNP_OK)
            return st;
        if (include_pad && mode == PAD_SAME) {
            /* "same" pads are size-independent only with stride 1: make them explicit */
            if (s[0] != 1 || s[1] != 1)
                return h->error_set(err, NNP_ERR_UNSUPPORTED,
                                    "%s node '%s': count_include_pad=1 with auto_pad SAME and "
                                    "stride > 1",
                                    op, node);
            for (int i = 0; i < 2; i++)
                same_pads(-1, k[i], 1, 1, &pads[i], &pads[i + 2]);
            mode = PAD_EXPLICIT;
        }
        if (mode == PAD_EXPLICIT || include_pad)
            st = h->config_set_bool(cfg, "count_include_pad", include_pad != 0, err);
    } else if (strcmp(op, "MaxPool") != 0) {
        return h->error_set(err, NNP_ERR_UNSUPPORTED, "pooling: ONNX op %s is not supported", op);
    }
    if (st == NNP_OK)
        st = nnp_pu_set_ints(h, cfg, "pool_size", k, 2, err);
    if (st == NNP_OK)
        st = nnp_pu_set_ints(h, cfg, "strides", s, 2, err);
    if (st == NNP_OK)
        st = nnp_pu_set_string(h, cfg, "padding", mode == PAD_SAME ? "same" : "valid", err);
    if (st == NNP_OK && mode == PAD_EXPLICIT)
        st = nnp_pu_set_ints(h, cfg, "pads", pads, 4, err);
    return st;
}
