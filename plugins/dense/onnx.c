/*
 * ONNX mapping of Dense, through the host's node writer and reader only.
 *
 * Export: rank-2 inputs become Gemm(X, kernel, bias) (kernel stored as Keras
 * has it, [in, units], so transB = 0); higher ranks become MatMul (+ Add),
 * which broadcasts over the leading axes as Keras's Dense does. A
 * non-linear activation follows as its own nodes (common/act.c).
 * Import: Gemm with a constant B (transB = 1 is PyTorch Linear's [out, in]
 * weight; alpha and beta are folded into the weights) and an optional
 * constant C of [units], [1, units] or one value; MatMul with a constant
 * right operand. A MatMul -> Add(bias) pair is one Dense layer: an importer
 * that folds the pair presents the MatMul node with the Add's constant as a
 * third input, read like Gemm's C.
 */
#include <nnplug/plugin_util.h>

#include "dense.h"

#include <stdio.h>
#include <string.h>

nnp_status dense_to_onnx(const void *state, nnp_onnx_writer *w, const char *const *inputs,
                         int n_inputs, const char *output, nnp_error *err)
{
    const dense_state *s = state;
    const nnp_host *h = s->host;
    nnp_status st = nnp_pu_check_export(h, s->built, n_inputs, 1, "Dense", dense_name(s), err);
    if (st != NNP_OK)
        return st;
    const int opset = h->onnx_writer_opset(w);
    const char *base = nnp_pu_onnx_base(h, s->cfg, "dense");
    char kname[256], bname[256], zname[256], mname[256];
    nnp_pu_value_name(h, w, base, "kernel", kname, sizeof kname);
    st = h->onnx_add_initializer(w, kname, &s->wb.kernel, err);
    if (st != NNP_OK)
        return st;
    const int need_bias_input = s->wb.use_bias || (s->rank == 2 && opset < 11);
    if (need_bias_input) {
        if (s->wb.use_bias) {
            nnp_pu_value_name(h, w, base, "bias", bname, sizeof bname);
            st = h->onnx_add_initializer(w, bname, &s->wb.bias, err);
        } else {
            /* Gemm's C is optional only from opset 11 */
            nnp_tensor zeros;
            nnp_shape bs = {1, {s->units}};
            st = h->tensor_alloc(&zeros, NNP_F32, &bs, err);
            if (st == NNP_OK) {
                nnp_pu_value_name(h, w, base, "bias", bname, sizeof bname);
                st = h->onnx_add_initializer(w, bname, &zeros, err);
                h->tensor_free(&zeros);
            }
        }
        if (st != NNP_OK)
            return st;
    }
    const int linear = s->act.id == ACT_LINEAR;
    const char *z = linear ? output : nnp_pu_value_name(h, w, base, "linear", zname, sizeof zname);
    int node;
    if (s->rank == 2) {
        const char *ins[3] = {inputs[0], kname, bname};
        node = nnp_pu_add_node(h, w, "Gemm", base, ins, need_bias_input ? 3 : 2, z, err);
        if (node < 0)
            return nnp_pu_err_code(err);
        if (opset < 7 && need_bias_input)
            st = h->onnx_attr_int(w, node, "broadcast", 1, err);
    } else {
        const char *mm =
            s->wb.use_bias ? nnp_pu_value_name(h, w, base, "matmul", mname, sizeof mname) : z;
        const char *ins[2] = {inputs[0], kname};
        node = nnp_pu_add_node(h, w, "MatMul", base, ins, 2, mm, err);
        if (node < 0)
            return nnp_pu_err_code(err);
        if (s->wb.use_bias) {
            /* the MatMul's output, inside the layer: [?, ..., units] (its
             * first axis is the batch, or batch x time inside a wrapper) */
            nnp_shape ms = s->in_shape;
            for (int i = 0; i < ms.rank - 1; i++)
                ms.dims[i] = ms.dims[i] >= 0 ? ms.dims[i] : -2;
            ms.dims[ms.rank - 1] = s->units;
            st = h->onnx_add_value_info(w, mm, NNP_F32, &ms, err);
            if (st != NNP_OK)
                return st;
            const char *ains[2] = {mm, bname};
            node = nnp_pu_add_node(h, w, "Add", base, ains, 2, z, err);
            if (node < 0)
                return nnp_pu_err_code(err);
            if (opset < 7)
                st = h->onnx_attr_int(w, node, "broadcast", 1, err);
        }
    }
    if (st == NNP_OK && !linear)
        st = act_to_onnx(h, w, &s->act, base, z, output, s->rank, s->rank - 1, err);
    return st;
}

/* The constant input i, or an error naming it. */
static nnp_status constant(const nnp_host *h, const nnp_onnx_reader *r, int i, const char *what,
                           const nnp_tensor **t, nnp_error *err)
{
    const char *node = nnp_pu_node_label(h, r);
    nnp_status st = h->onnx_input_constant(r, i, t, err);
    if (st == NNP_ERR_NOT_FOUND)
        return h->error_set(err, NNP_ERR_UNSUPPORTED,
                            "%s node '%s': input %s ('%s') must be a constant (an initializer) to "
                            "map to a Dense layer",
                            h->onnx_op_type(r), node, what, h->onnx_input_name(r, i));
    if (st == NNP_OK && (*t)->dtype != NNP_F32)
        return h->error_set(err, NNP_ERR_FORMAT, "%s node '%s': input %s is not float",
                            h->onnx_op_type(r), node, what);
    return st;
}

/* The layout of a Gemm / MatMul node's weight: kernel [in, units] is
 * alpha * B, or alpha * B^T when transB. */
typedef struct gemm_info {
    int gemm;
    int64_t trans_b;
    float alpha, beta;
    const nnp_tensor *b, *c;
    int64_t in_dim, units;
} gemm_info;

static nnp_status read_gemm(const nnp_host *h, const nnp_onnx_reader *r, gemm_info *g,
                            nnp_error *err)
{
    const char *op = h->onnx_op_type(r);
    const char *node = nnp_pu_node_label(h, r);
    memset(g, 0, sizeof *g);
    g->alpha = g->beta = 1.0f;
    nnp_status st = NNP_OK;
    if (op && strcmp(op, "Gemm") == 0) {
        int64_t trans_a;
        g->gemm = 1;
        st = nnp_pu_attr_int(h, r, "transA", 0, &trans_a, err);
        if (st == NNP_OK)
            st = nnp_pu_attr_int(h, r, "transB", 0, &g->trans_b, err);
        if (st == NNP_OK)
            st = nnp_pu_attr_float(h, r, "alpha", 1.0f, &g->alpha, err);
        if (st == NNP_OK)
            st = nnp_pu_attr_float(h, r, "beta", 1.0f, &g->beta, err);
        if (st != NNP_OK)
            return st;
        if (trans_a)
            return h->error_set(err, NNP_ERR_UNSUPPORTED,
                                "Gemm node '%s': transA=1 (a transposed input) has no Dense "
                                "equivalent",
                                node);
    } else if (!op || strcmp(op, "MatMul") != 0) {
        return h->error_set(err, NNP_ERR_UNSUPPORTED, "Dense: ONNX op %s is not Gemm or MatMul",
                            op ? op : "?");
    }
    if (h->onnx_n_inputs(r) < 2)
        return h->error_set(err, NNP_ERR_FORMAT, "%s node '%s': needs 2 inputs", op, node);
    st = constant(h, r, 1, "B", &g->b, err);
    if (st != NNP_OK)
        return st;
    if (g->b->shape.rank != 2)
        return h->error_set(err, NNP_ERR_UNSUPPORTED,
                            "%s node '%s': B has rank %d; a Dense kernel is a matrix", op, node,
                            g->b->shape.rank);
    g->in_dim = g->b->shape.dims[g->trans_b ? 1 : 0];
    g->units = g->b->shape.dims[g->trans_b ? 0 : 1];
    /* C: Gemm's bias; for MatMul, a bias an importer folded in from the Add
     * that follows it, presented as a third input */
    if (nnp_pu_has_input(h, r, 2)) {
        st = constant(h, r, 2, "C", &g->c, err);
        if (st != NNP_OK)
            return st;
        const nnp_shape *cs = &g->c->shape;
        int64_t n = nnp_pu_numel(cs);
        int ok = n == 1 || (cs->rank == 1 && cs->dims[0] == g->units) ||
                 (cs->rank == 2 && cs->dims[0] == 1 && cs->dims[1] == g->units);
        if (!ok) {
            char b[160];
            return h->error_set(err, NNP_ERR_UNSUPPORTED,
                                "%s node '%s': C of shape %s is not a bias of %lld units "
                                "([units], [1, units] or one value)",
                                op, node, nnp_pu_shape_str(cs, b, sizeof b), (long long)g->units);
        }
    }
    return NNP_OK;
}

nnp_status dense_from_onnx(const nnp_host *h, const nnp_onnx_reader *r, nnp_config *cfg,
                           nnp_error *err)
{
    gemm_info g;
    nnp_status st = read_gemm(h, r, &g, err);
    if (st != NNP_OK)
        return st;
    nnp_shape xs;
    if (nnp_pu_input_shape(h, r, 0, &xs) >= 0 && xs.rank < 2)
        return h->error_set(err, NNP_ERR_UNSUPPORTED,
                            "%s node '%s': input of rank %d; Dense needs rank >= 2",
                            h->onnx_op_type(r), nnp_pu_node_label(h, r), xs.rank);
    st = h->config_set_int(cfg, "units", g.units, err);
    if (st == NNP_OK)
        st = h->config_set_bool(cfg, "use_bias", g.c != NULL, err);
    if (st == NNP_OK)
        st = nnp_pu_set_string(h, cfg, "activation", "linear", err);
    return st;
}

nnp_status dense_onnx_load_weights(void *state, const nnp_onnx_reader *r, nnp_error *err)
{
    dense_state *s = state;
    const nnp_host *h = s->host;
    const char *node = nnp_pu_node_label(h, r);
    if (!s->built)
        return h->error_set(err, NNP_ERR_INVALID, "Dense node '%s': weights loaded before build",
                            node);
    gemm_info g;
    nnp_status st = read_gemm(h, r, &g, err);
    if (st != NNP_OK)
        return st;
    if (g.in_dim != s->in_dim || g.units != s->units)
        return h->error_set(err, NNP_ERR_SHAPE,
                            "%s node '%s': weight B gives a [%lld, %lld] kernel, the layer was "
                            "built for [%lld, %lld]",
                            h->onnx_op_type(r), node, (long long)g.in_dim, (long long)g.units,
                            (long long)s->in_dim, (long long)s->units);
    const float *b = g.b->data;
    float *k = s->wb.kernel.data;
    const int64_t in = s->in_dim, units = s->units;
    for (int64_t i = 0; i < in; i++)
        for (int64_t u = 0; u < units; u++)
            k[i * units + u] = g.alpha * (g.trans_b ? b[u * in + i] : b[i * units + u]);
    if (s->wb.use_bias) {
        float *bias = s->wb.bias.data;
        const float *c = g.c ? g.c->data : NULL;
        const int one = g.c && nnp_pu_numel(&g.c->shape) == 1;
        for (int64_t u = 0; u < units; u++)
            bias[u] = c ? g.beta * c[one ? 0 : u] : 0.0f;
    } else if (g.c) {
        return h->error_set(err, NNP_ERR_INVALID,
                            "%s node '%s': has a bias C but the layer has use_bias=false",
                            h->onnx_op_type(r), node);
    }
    return NNP_OK;
}
