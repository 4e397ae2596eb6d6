/*
 * ONNX mapping of Flatten, Reshape, Dropout and Add, through the host's node
 * writer and reader only.
 *
 * Flatten <-> Flatten(axis=1) (channels_first: Transpose first).
 * Reshape <-> Reshape(x, [0, target...]) (0 copies the batch axis).
 * Permute <-> Transpose(perm = [0, dims...]) (perm[0] must keep the batch).
 * Dropout -> Identity (an exported model is an inference model); ONNX
 * Dropout imports as Dropout(rate), which is the identity in inference.
 * Add <-> a chain of Add nodes (Keras sums in input order); import takes
 * Add / Sum of non-constant inputs of equal shapes only.
 */
#include <nnplug/plugin_util.h>

#include "shape_ops.h"

#include <math.h>
#include <string.h>

static nnp_status need_built(const sop_state *s, int n_inputs, int want, nnp_error *err)
{
    if (!s->built)
        return s->host->error_set(err, NNP_ERR_INVALID, "%s '%s': export before build", s->kind,
                                  sop_name(s));
    if (want > 0 && n_inputs != want)
        return s->host->error_set(err, NNP_ERR_INVALID, "%s '%s': expects %d input(s), got %d",
                                  s->kind, sop_name(s), want, n_inputs);
    return NNP_OK;
}

nnp_status flatten_to_onnx(const void *state, nnp_onnx_writer *w, const char *const *inputs,
                           int n_inputs, const char *output, nnp_error *err)
{
    const sop_state *s = state;
    const nnp_host *h = s->host;
    nnp_status st = need_built(s, n_inputs, 1, err);
    if (st != NNP_OK)
        return st;
    const char *base = nnp_pu_onnx_base(h, s->cfg, "flatten");
    const char *x = inputs[0];
    char t[256];
    const int rank = s->in_shape.rank;
    if (s->channels_first && rank > 2) {
        int64_t perm[NNP_MAX_RANK];
        perm[0] = 0;
        for (int i = 2; i < rank; i++)
            perm[i - 1] = i;
        perm[rank - 1] = 1;
        x = nnp_pu_value_name(h, w, base, "channels_last", t, sizeof t);
        st = nnp_pu_add_transpose(h, w, base, inputs[0], x, perm, rank, err);
        if (st != NNP_OK)
            return st;
    }
    int node = nnp_pu_add_node(h, w, "Flatten", base, &x, 1, output, err);
    if (node < 0)
        return nnp_pu_err_code(err);
    return h->onnx_attr_int(w, node, "axis", 1, err);
}

nnp_status flatten_from_onnx(const nnp_host *h, const nnp_onnx_reader *r, nnp_config *cfg,
                             nnp_error *err)
{
    int64_t axis;
    nnp_status st = nnp_pu_attr_int(h, r, "axis", 1, &axis, err);
    if (st != NNP_OK)
        return st;
    nnp_shape sh;
    int rank = nnp_pu_input_shape(h, r, 0, &sh);
    if (axis < 0 && rank > 0)
        axis += sh.rank;
    /* axis 0 makes [1, n]: on a batch the file fixes at 1 (Keras
     * converters write it), Keras Flatten's [batch, n] */
    if (axis == 0 && rank > 0 && sh.dims[0] == 1)
        axis = 1;
    if (axis != 1)
        return h->error_set(err, NNP_ERR_UNSUPPORTED,
                            "Flatten node '%s': axis=%lld; Keras Flatten keeps exactly the batch "
                            "axis (axis=1)",
                            nnp_pu_node_label(h, r), (long long)axis);
    return nnp_pu_set_string(h, cfg, "data_format", "channels_last", err);
}

nnp_status reshape_to_onnx(const void *state, nnp_onnx_writer *w, const char *const *inputs,
                           int n_inputs, const char *output, nnp_error *err)
{
    const sop_state *s = state;
    const nnp_host *h = s->host;
    nnp_status st = need_built(s, n_inputs, 1, err);
    if (st != NNP_OK)
        return st;
    const char *base = nnp_pu_onnx_base(h, s->cfg, "reshape");
    int64_t shape[NNP_MAX_RANK + 1];
    shape[0] = 0; /* copy the batch axis */
    for (int i = 0; i < s->target_rank; i++)
        shape[i + 1] = s->target[i];
    const int n = s->target_rank + 1;
    if (h->onnx_writer_opset(w) < 5) {
        int node = nnp_pu_add_node(h, w, "Reshape", base, inputs, 1, output, err);
        if (node < 0)
            return nnp_pu_err_code(err);
        return h->onnx_attr_ints(w, node, "shape", shape, n, err);
    }
    char cname[256];
    st = nnp_pu_add_const_i64(h, w, base, "shape", shape, n, cname, sizeof cname, err);
    if (st != NNP_OK)
        return st;
    const char *ins[2] = {inputs[0], cname};
    int node = nnp_pu_add_node(h, w, "Reshape", base, ins, 2, output, err);
    return node < 0 ? nnp_pu_err_code(err) : NNP_OK;
}

nnp_status reshape_from_onnx(const nnp_host *h, const nnp_onnx_reader *r, nnp_config *cfg,
                             nnp_error *err)
{
    const char *node = nnp_pu_node_label(h, r);
    int64_t shape[NNP_MAX_RANK + 1];
    int n;
    nnp_status st = NNP_OK;
    if (h->onnx_reader_opset(r) < 5) {
        n = nnp_pu_attr_ints(h, r, "shape", shape, NNP_MAX_RANK + 1, err);
        if (n < 0)
            return err->code;
    } else {
        const nnp_tensor *t;
        st = h->onnx_n_inputs(r) >= 2 ? h->onnx_input_constant(r, 1, &t, err)
                                      : NNP_ERR_NOT_FOUND;
        if (st == NNP_ERR_NOT_FOUND)
            return h->error_set(err, NNP_ERR_UNSUPPORTED,
                                "Reshape node '%s': the target shape must be a constant", node);
        if (st != NNP_OK)
            return st;
        int64_t m = nnp_pu_numel(&t->shape);
        if (t->dtype != NNP_F32 || t->shape.rank != 1 || m > NNP_MAX_RANK)
            return h->error_set(err, NNP_ERR_UNSUPPORTED,
                                "Reshape node '%s': target shape must be a list of at most %d "
                                "ints",
                                node, NNP_MAX_RANK);
        n = (int)m;
        for (int i = 0; i < n; i++)
            shape[i] = (int64_t)llround(((const float *)t->data)[i]);
    }
    int64_t allowzero = 0;
    st = nnp_pu_attr_int(h, r, "allowzero", 0, &allowzero, err);
    if (st != NNP_OK)
        return st;
    nnp_shape in;
    nnp_pu_input_shape(h, r, 0, &in);
    if (n < 1)
        return h->error_set(err, NNP_ERR_UNSUPPORTED,
                            "Reshape node '%s': a rank-0 target drops the batch axis", node);
    int64_t target[NNP_MAX_RANK];
    for (int i = 1; i < n; i++) {
        int64_t v = shape[i];
        if (v == 0 && !allowzero) {
            if (i >= in.rank || in.dims[i] < 0)
                return h->error_set(err, NNP_ERR_UNSUPPORTED,
                                    "Reshape node '%s': target entry %d copies an input axis of "
                                    "unknown size",
                                    node, i);
            v = in.dims[i];
        }
        if (v == 0 || v < -1)
            return h->error_set(err, NNP_ERR_UNSUPPORTED,
                                "Reshape node '%s': target entry %d is %lld", node, i,
                                (long long)v);
        target[i - 1] = v;
    }
    /* the first entry must keep the batch axis: 0 copies it; -1 or the
     * batch size keep it only when the other entries hold exactly one
     * sample's values (else the batch would merge with or split into other
     * axes, as in [N, T, C] -> [-1, C]) */
    int64_t per_sample = 1, want = 1;
    for (int i = 1; i < in.rank && per_sample >= 0; i++)
        per_sample = in.dims[i] < 0 ? -1 : per_sample * in.dims[i];
    for (int i = 0; i < n - 1 && want >= 0; i++)
        want = target[i] < 0 ? -1 : want * target[i];
    int batch_ok = shape[0] == 0 && !allowzero;
    if (!batch_ok && (shape[0] == -1 || (in.rank > 0 && shape[0] == in.dims[0])))
        batch_ok = in.rank > 0 && per_sample >= 0 &&
                   (want >= 0 ? want == per_sample : shape[0] != -1);
    if (!batch_ok)
        return h->error_set(err, NNP_ERR_UNSUPPORTED,
                            "Reshape node '%s': target entry 0 (%lld) with the others (%lld values "
                            "per sample, input %lld) does not keep the batch axis; Keras Reshape "
                            "only reshapes the axes after it",
                            node, (long long)shape[0], (long long)want, (long long)per_sample);
    return nnp_pu_set_ints(h, cfg, "target_shape", target, n - 1, err);
}

nnp_status permute_to_onnx(const void *state, nnp_onnx_writer *w, const char *const *inputs,
                           int n_inputs, const char *output, nnp_error *err)
{
    const sop_state *s = state;
    const nnp_host *h = s->host;
    nnp_status st = need_built(s, n_inputs, 1, err);
    if (st != NNP_OK)
        return st;
    int64_t perm[NNP_MAX_RANK];
    perm[0] = 0;
    for (int i = 0; i < s->perm_rank; i++)
        perm[i + 1] = s->perm[i];
    return nnp_pu_add_transpose(h, w, nnp_pu_onnx_base(h, s->cfg, "permute"), inputs[0], output,
                                perm, s->perm_rank + 1, err);
}

nnp_status permute_from_onnx(const nnp_host *h, const nnp_onnx_reader *r, nnp_config *cfg,
                             nnp_error *err)
{
    const char *node = nnp_pu_node_label(h, r);
    int64_t perm[NNP_MAX_RANK + 1];
    int n = nnp_pu_attr_ints(h, r, "perm", perm, NNP_MAX_RANK + 1, err);
    if (n < 0)
        return err->code;
    nnp_shape in;
    if (n == 0) {
        /* no perm: the axes reversed, which moves the batch axis unless rank 1 */
        if (nnp_pu_input_shape(h, r, 0, &in) < 0)
            return h->error_set(err, NNP_ERR_UNSUPPORTED,
                                "Transpose node '%s': no perm and an input of unknown rank", node);
        n = in.rank;
        for (int i = 0; i < n; i++)
            perm[i] = n - 1 - i;
    }
    if (n < 2 || perm[0] != 0)
        return h->error_set(err, NNP_ERR_UNSUPPORTED,
                            "Transpose node '%s': the permutation moves the batch axis; Keras "
                            "Permute keeps axis 0 in place",
                            node);
    return nnp_pu_set_ints(h, cfg, "dims", perm + 1, n - 1, err);
}

nnp_status dropout_to_onnx(const void *state, nnp_onnx_writer *w, const char *const *inputs,
                           int n_inputs, const char *output, nnp_error *err)
{
    const sop_state *s = state;
    nnp_status st = need_built(s, n_inputs, 1, err);
    if (st != NNP_OK)
        return st;
    int node = nnp_pu_add_node(s->host, w, "Identity", nnp_pu_onnx_base(s->host, s->cfg, "dropout"),
                           inputs, 1, output, err);
    return node < 0 ? nnp_pu_err_code(err) : NNP_OK;
}

nnp_status dropout_from_onnx(const nnp_host *h, const nnp_onnx_reader *r, nnp_config *cfg,
                             nnp_error *err)
{
    const char *node = nnp_pu_node_label(h, r);
    if (nnp_pu_has_output(h, r, 1))
        return h->error_set(err, NNP_ERR_UNSUPPORTED,
                            "Dropout node '%s': the mask output is not supported", node);
    float ratio = 0.5f;
    nnp_status st = NNP_OK;
    if (h->onnx_reader_opset(r) < 12) {
        st = nnp_pu_attr_float(h, r, "ratio", 0.5f, &ratio, err);
    } else if (nnp_pu_has_input(h, r, 1)) {
        const nnp_tensor *t;
        st = h->onnx_input_constant(r, 1, &t, err);
        if (st == NNP_ERR_NOT_FOUND)
            return h->error_set(err, NNP_ERR_UNSUPPORTED,
                                "Dropout node '%s': ratio must be a constant", node);
        if (st == NNP_OK && (t->dtype != NNP_F32 || nnp_pu_numel(&t->shape) != 1))
            return h->error_set(err, NNP_ERR_FORMAT, "Dropout node '%s': ratio must be one float",
                                node);
        if (st == NNP_OK)
            ratio = ((const float *)t->data)[0];
    }
    if (st != NNP_OK)
        return st;
    if (!(ratio >= 0.0f && ratio < 1.0f))
        return h->error_set(err, NNP_ERR_UNSUPPORTED,
                            "Dropout node '%s': ratio %g is outside [0, 1)", node, (double)ratio);
    return h->config_set_float(cfg, "rate", ratio, err);
}

nnp_status add_to_onnx(const void *state, nnp_onnx_writer *w, const char *const *inputs,
                       int n_inputs, const char *output, nnp_error *err)
{
    const sop_state *s = state;
    const nnp_host *h = s->host;
    nnp_status st = need_built(s, n_inputs, 0, err);
    if (st != NNP_OK)
        return st;
    if (n_inputs < 2)
        return h->error_set(err, NNP_ERR_INVALID, "Add '%s': needs 2 or more inputs",
                            sop_name(s));
    const char *base = nnp_pu_onnx_base(h, s->cfg, "add");
    char acc[2][256];
    const char *prev = inputs[0];
    for (int k = 1; k < n_inputs; k++) {
        const char *out = k == n_inputs - 1
                              ? output
                              : nnp_pu_value_name(h, w, base, "partial", acc[k % 2], sizeof acc[0]);
        const char *ins[2] = {prev, inputs[k]};
        int node = nnp_pu_add_node(h, w, "Add", base, ins, 2, out, err);
        if (node < 0)
            return nnp_pu_err_code(err);
        prev = out;
    }
    return NNP_OK;
}

nnp_status add_from_onnx(const nnp_host *h, const nnp_onnx_reader *r, nnp_config *cfg,
                         nnp_error *err)
{
    (void)cfg;
    const char *node = nnp_pu_node_label(h, r);
    const char *op = h->onnx_op_type(r);
    const int n = h->onnx_n_inputs(r);
    if (n < 2)
        return h->error_set(err, NNP_ERR_UNSUPPORTED,
                            "%s node '%s': %d input(s); Keras Add sums 2 or more", op, node, n);
    nnp_shape s0;
    nnp_pu_input_shape(h, r, 0, &s0);
    for (int i = 0; i < n; i++) {
        const nnp_tensor *t;
        nnp_error e = {0};
        if (h->onnx_input_constant(r, i, &t, &e) == NNP_OK)
            return h->error_set(err, NNP_ERR_UNSUPPORTED,
                                "%s node '%s': input %d ('%s') is a constant; Keras Add only sums "
                                "layer outputs (a bias after MatMul or Conv belongs to that "
                                "layer)",
                                op, node, i, h->onnx_input_name(r, i));
        nnp_shape si;
        if (i == 0 || nnp_pu_input_shape(h, r, i, &si) < 0 || s0.rank < 0)
            continue;
        int same = si.rank == s0.rank;
        for (int d = 0; same && d < si.rank; d++)
            same = si.dims[d] < 0 || s0.dims[d] < 0 || si.dims[d] == s0.dims[d];
        if (!same) {
            char b1[160], b2[160];
            return h->error_set(err, NNP_ERR_UNSUPPORTED,
                                "%s node '%s': input %d has shape %s, input 0 %s; only equal "
                                "shapes are supported (no broadcasting)",
                                op, node, i, nnp_pu_shape_str(&si, b1, sizeof b1),
                                nnp_pu_shape_str(&s0, b2, sizeof b2));
        }
    }
    return NNP_OK;
}
