/*
 * ONNX mapping of Conv2D, through the host's node writer and reader only.
 *
 * Export: Conv(X, W, B) with W in ONNX's [filters, in/groups, kh, kw] layout
 * (the Keras kernel is [kh, kw, in/groups, filters]). ONNX convolves NCHW,
 * so a channels_last layer is wrapped as Transpose(0,3,1,2) -> Conv ->
 * Transpose(0,2,3,1). "same" padding is written as explicit pads when they
 * do not depend on the input size (stride 1) and as auto_pad=SAME_UPPER
 * (the same rule as TensorFlow's) otherwise. A non-linear activation follows
 * as its own nodes.
 * Import: 2-D Conv with a constant W (and B); strides, dilations, group,
 * auto_pad and pads. Pads that are neither Keras rule become the explicit
 * "pads" extension.
 */
#include <nnplug/plugin_util.h>

#include "conv2d.h"
#include "common/padding.h"

#include <stdio.h>
#include <string.h>

/* The Conv node(s); with scale, the weights written are the layer's with
 * y * scale[f] + shift[f] folded in (W times scale per output channel, B =
 * bias * scale + shift). */
static nnp_status write_conv(const conv_state *s, nnp_onnx_writer *w, const char *const *inputs,
                             int n_inputs, const char *output, const float *scale,
                             const float *shift, nnp_error *err)
{
    const nnp_host *h = s->host;
    nnp_status st = nnp_pu_check_export(h, s->built, n_inputs, 1, "Conv2D", conv_name(s), err);
    if (st != NNP_OK)
        return st;
    const char *base = nnp_pu_onnx_base(h, s->cfg, "conv2d");
    const int64_t kh = s->kh, kw = s->kw, cg = s->wb.kernel.shape.dims[2], F = s->filters;

    /* W [F, Cg, kh, kw] from the kernel [kh, kw, Cg, F] */
    nnp_tensor wt;
    nnp_shape ws = {4, {F, cg, kh, kw}};
    st = h->tensor_alloc(&wt, NNP_F32, &ws, err);
    if (st != NNP_OK)
        return st;
    const float *k = s->wb.kernel.data;
    float *wd = wt.data;
    for (int64_t i = 0; i < kh; i++)
        for (int64_t j = 0; j < kw; j++)
            for (int64_t c = 0; c < cg; c++)
                for (int64_t f = 0; f < F; f++)
                    wd[((f * cg + c) * kh + i) * kw + j] =
                        k[((i * kw + j) * cg + c) * F + f] * (scale ? scale[f] : 1.0f);
    char wname[256], bname[256];
    nnp_pu_value_name(h, w, base, "kernel", wname, sizeof wname);
    st = h->onnx_add_initializer(w, wname, &wt, err);
    h->tensor_free(&wt);
    const int has_bias = s->wb.use_bias || scale;
    if (st == NNP_OK && scale) {
        nnp_tensor bt;
        nnp_shape bs = {1, {F}};
        st = h->tensor_alloc(&bt, NNP_F32, &bs, err);
        if (st != NNP_OK)
            return st;
        const float *b = s->wb.use_bias ? s->wb.bias.data : NULL;
        for (int64_t f = 0; f < F; f++)
            ((float *)bt.data)[f] = (b ? b[f] * scale[f] : 0.0f) + shift[f];
        nnp_pu_value_name(h, w, base, "bias", bname, sizeof bname);
        st = h->onnx_add_initializer(w, bname, &bt, err);
        h->tensor_free(&bt);
    } else if (st == NNP_OK && has_bias) {
        nnp_pu_value_name(h, w, base, "bias", bname, sizeof bname);
        st = h->onnx_add_initializer(w, bname, &s->wb.bias, err);
    }
    if (st != NNP_OK)
        return st;

    const int linear = s->act.id == ACT_LINEAR;
    char xin[256], conv_out[256], act_in[256];
    const char *x = inputs[0];
    if (!s->channels_first) {
        static const int64_t to_nchw[4] = {0, 3, 1, 2};
        x = nnp_pu_value_name(h, w, base, "nchw", xin, sizeof xin);
        st = nnp_pu_add_transpose(h, w, base, inputs[0], x, to_nchw, 4, err);
        if (st != NNP_OK)
            return st;
    }
    /* the value the Conv writes, and the one the activation reads */
    const char *y = output;
    if (!s->channels_first)
        y = nnp_pu_value_name(h, w, base, "conv_nchw", conv_out, sizeof conv_out);
    else if (!linear)
        y = nnp_pu_value_name(h, w, base, "linear", conv_out, sizeof conv_out);
    const char *ins[3] = {x, wname, bname};
    int node = nnp_pu_add_node(h, w, "Conv", base, ins, has_bias ? 3 : 2, y, err);
    if (node < 0)
        return nnp_pu_err_code(err);
    const int64_t kshape[2] = {kh, kw}, strides[2] = {s->sh, s->sw}, dil[2] = {s->dh, s->dw};
    st = h->onnx_attr_ints(w, node, "kernel_shape", kshape, 2, err);
    if (st == NNP_OK)
        st = h->onnx_attr_ints(w, node, "strides", strides, 2, err);
    if (st == NNP_OK)
        st = h->onnx_attr_ints(w, node, "dilations", dil, 2, err);
    if (st == NNP_OK)
        st = h->onnx_attr_int(w, node, "group", s->groups, err);
    /* "valid" writes no pads (ONNX's default) */
    int64_t pads[4];
    const int auto_same =
        pad_to_onnx(s->same, s->explicit_pads ? s->pads : NULL, kshape, strides, dil, pads);
    if (st == NNP_OK && auto_same)
        st = h->onnx_attr_string(w, node, "auto_pad", "SAME_UPPER", err);
    else if (st == NNP_OK && (s->explicit_pads || s->same))
        st = h->onnx_attr_ints(w, node, "pads", pads, 4, err);
    if (st != NNP_OK)
        return st;
    const char *a_in = y;
    if (!s->channels_first) {
        static const int64_t to_nhwc[4] = {0, 2, 3, 1};
        a_in = linear ? output : nnp_pu_value_name(h, w, base, "linear", act_in, sizeof act_in);
        st = nnp_pu_add_transpose(h, w, base, y, a_in, to_nhwc, 4, err);
    }
    if (st == NNP_OK && !linear)
        st = act_to_onnx(h, w, &s->act, base, a_in, output, 4, 3, err);
    return st;
}

nnp_status conv_to_onnx(const void *state, nnp_onnx_writer *w, const char *const *inputs,
                        int n_inputs, const char *output, nnp_error *err)
{
    return write_conv(state, w, inputs, n_inputs, output, NULL, NULL, err);
}

nnp_status conv_to_onnx_affine(const void *state, nnp_onnx_writer *w, const char *const *inputs,
                               int n_inputs, const char *output, int axis, const float *scale,
                               const float *shift, nnp_error *err)
{
    const conv_state *s = state;
    if (axis != (s->channels_first ? 1 : 3) || s->act.id != ACT_LINEAR)
        return s->host->error_set(err, NNP_ERR_UNSUPPORTED,
                                  "Conv2D '%s': no affine over axis %d folds into it",
                                  conv_name(s), axis);
    return write_conv(s, w, inputs, n_inputs, output, scale, shift, err);
}

/* The constant weight W [M, C/g, kh, kw] of a Conv node. */
static nnp_status read_w(const nnp_host *h, const nnp_onnx_reader *r, const nnp_tensor **t,
                         nnp_error *err)
{
    const char *node = nnp_pu_node_label(h, r);
    if (h->onnx_n_inputs(r) < 2)
        return h->error_set(err, NNP_ERR_FORMAT, "Conv node '%s': needs inputs X and W", node);
    nnp_status st = h->onnx_input_constant(r, 1, t, err);
    if (st == NNP_ERR_NOT_FOUND)
        return h->error_set(err, NNP_ERR_UNSUPPORTED,
                            "Conv node '%s': weight W ('%s') must be a constant (an initializer)",
                            node, h->onnx_input_name(r, 1));
    if (st != NNP_OK)
        return st;
    if ((*t)->dtype != NNP_F32 || (*t)->shape.rank != 4)
        return h->error_set(err, NNP_ERR_UNSUPPORTED,
                            "Conv node '%s': weight of rank %d; only 2-D convolutions (rank-4 "
                            "float W) map to Conv2D",
                            node, (*t)->shape.rank);
    return NNP_OK;
}

nnp_status conv_from_onnx(const nnp_host *h, const nnp_onnx_reader *r, nnp_config *cfg,
                          nnp_error *err)
{
    const char *node = nnp_pu_node_label(h, r);
    const char *op = h->onnx_op_type(r);
    if (!op || strcmp(op, "Conv") != 0)
        return h->error_set(err, NNP_ERR_INVALID, "node '%s': op %s is not Conv", node,
                            op ? op : "?");
    const nnp_tensor *wt;
    nnp_status st = read_w(h, r, &wt, err);
    if (st != NNP_OK)
        return st;
    const int64_t M = wt->shape.dims[0];
    int64_t k[2] = {wt->shape.dims[2], wt->shape.dims[3]};
    int64_t ks[4], s[2] = {1, 1}, d[2] = {1, 1}, group = 1;
    int n = nnp_pu_attr_ints(h, r, "kernel_shape", ks, 4, err);
    if (n < 0)
        return err->code;
    if (n != 0 && (n != 2 || ks[0] != k[0] || ks[1] != k[1]))
        return h->error_set(err, NNP_ERR_FORMAT,
                            "Conv node '%s': kernel_shape does not match W's [%lld, %lld]", node,
                            (long long)k[0], (long long)k[1]);
    n = nnp_pu_attr_ints(h, r, "strides", s, 2, err);
    if (n < 0)
        return err->code;
    n = nnp_pu_attr_ints(h, r, "dilations", d, 2, err);
    if (n < 0)
        return err->code;
    st = nnp_pu_attr_int(h, r, "group", 1, &group, err);
    if (st != NNP_OK)
        return st;
    if (s[0] < 1 || s[1] < 1 || d[0] < 1 || d[1] < 1 || group < 1 || M % group != 0)
        return h->error_set(err, NNP_ERR_FORMAT,
                            "Conv node '%s': strides, dilations and group must be >= 1 and "
                            "divide the %lld filters",
                            node, (long long)M);
    int mode = PAD_VALID;
    int64_t pads[4];
    st = pad_from_onnx(h, r, k, s, d, &mode, pads, err);
    if (st == NNP_OK)
        st = h->config_set_int(cfg, "filters", M, err);
    if (st == NNP_OK)
        st = nnp_pu_set_ints(h, cfg, "kernel_size", k, 2, err);
    if (st == NNP_OK)
        st = nnp_pu_set_ints(h, cfg, "strides", s, 2, err);
    if (st == NNP_OK)
        st = nnp_pu_set_ints(h, cfg, "dilation_rate", d, 2, err);
    if (st == NNP_OK)
        st = h->config_set_int(cfg, "groups", group, err);
    if (st == NNP_OK)
        st = nnp_pu_set_string(h, cfg, "data_format", "channels_first", err);
    if (st == NNP_OK)
        st = nnp_pu_set_string(h, cfg, "padding", mode == PAD_SAME ? "same" : "valid", err);
    if (st == NNP_OK && mode == PAD_EXPLICIT)
        st = nnp_pu_set_ints(h, cfg, "pads", pads, 4, err);
    if (st == NNP_OK)
        st = h->config_set_bool(cfg, "use_bias", nnp_pu_has_input(h, r, 2), err);
    if (st == NNP_OK)
        st = nnp_pu_set_string(h, cfg, "activation", "linear", err);
    return st;
}

nnp_status conv_onnx_load_weights(void *state, const nnp_onnx_reader *r, nnp_error *err)
{
    conv_state *s = state;
    const nnp_host *h = s->host;
    const char *node = nnp_pu_node_label(h, r);
    if (!s->built)
        return h->error_set(err, NNP_ERR_INVALID, "Conv node '%s': weights loaded before build",
                            node);
    const nnp_tensor *wt;
    nnp_status st = read_w(h, r, &wt, err);
    if (st != NNP_OK)
        return st;
    const int64_t kh = s->kh, kw = s->kw, cg = s->wb.kernel.shape.dims[2], F = s->filters;
    const nnp_shape *ws = &wt->shape;
    if (ws->dims[0] != F || ws->dims[1] != cg || ws->dims[2] != kh || ws->dims[3] != kw) {
        char b[160];
        return h->error_set(err, NNP_ERR_SHAPE,
                            "Conv node '%s': W has shape %s, the layer expects [%lld, %lld, %lld, "
                            "%lld]",
                            node, nnp_pu_shape_str(ws, b, sizeof b), (long long)F, (long long)cg,
                            (long long)kh, (long long)kw);
    }
    const float *wd = wt->data;
    float *k = s->wb.kernel.data;
    cdn_weights_changed(s->eng);
    for (int64_t f = 0; f < F; f++)
        for (int64_t c = 0; c < cg; c++)
            for (int64_t i = 0; i < kh; i++)
                for (int64_t j = 0; j < kw; j++)
                    k[((i * kw + j) * cg + c) * F + f] = wd[((f * cg + c) * kh + i) * kw + j];
    const int has_bias = nnp_pu_has_input(h, r, 2);
    if (!s->wb.use_bias)
        return has_bias ? h->error_set(err, NNP_ERR_INVALID,
                                       "Conv node '%s': has a bias but the layer has "
                                       "use_bias=false",
                                       node)
                        : NNP_OK;
    float *b = s->wb.bias.data;
    if (!has_bias) {
        memset(b, 0, (size_t)F * sizeof(float));
        return NNP_OK;
    }
    const nnp_tensor *bt;
    st = h->onnx_input_constant(r, 2, &bt, err);
    if (st == NNP_ERR_NOT_FOUND)
        return h->error_set(err, NNP_ERR_UNSUPPORTED,
                            "Conv node '%s': bias B ('%s') must be a constant", node,
                            h->onnx_input_name(r, 2));
    if (st != NNP_OK)
        return st;
    if (bt->dtype != NNP_F32 || nnp_pu_numel(&bt->shape) != F)
        return h->error_set(err, NNP_ERR_SHAPE, "Conv node '%s': bias B must hold %lld floats",
                            node, (long long)F);
    memcpy(b, bt->data, (size_t)F * sizeof(float));
    return NNP_OK;
}
