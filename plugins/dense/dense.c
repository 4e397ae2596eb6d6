/*
 * Dense layer plugin with Keras semantics: y = activation(x . kernel + bias)
 * over the last axis of an input of rank >= 2; kernel [in, units], bias
 * [units].
 *
 * The products go through CBLAS (OpenBLAS's OpenMP build, see
 * openblas.cmake) in fixed tiles (common/gemm_tiled.h), so results are identical
 * for any thread count; the test suite checks this bit for bit. The bias
 * gradient, the one reduction done here, runs over fixed column blocks, each
 * summed in row order.
 *
 * In a data-parallel step the products are those of common/gemm_det.h
 * instead: a sample's output depends on the sample alone, and the kernel
 * and bias gradients are evaluated node by node of the host's reduction
 * tree (plugin ABI 1.5), so the bits are the same on any number of
 * processes and threads.
 */
#include <nnplug/plugin_util.h>

#include "dense.h"
#include "common/gemm_det.h"
#include "common/gemm_tiled.h"

#include <stdlib.h>
#include <string.h>

static const nnp_param_def dense_params[] = {
    {"units", NNP_PARAM_INT, "null", NNP_PARAM_NULLABLE | NNP_PARAM_HAS_MIN, 1, 0, NULL,
     "dimensionality of the output (required)"},
    ACT_PARAM_DEF,
    KB_PARAM_DEFS("[in, units]", "[units]"),
};

const char *dense_name(const dense_state *s) { return nnp_pu_name(s->host, s->cfg); }

/* ------------------------------------------------------------------ */
/* create / destroy                                                    */
/* ------------------------------------------------------------------ */

static nnp_status dense_create(const nnp_host *h, const nnp_config *cfg, void **state,
                               nnp_error *err)
{
    const char *name = nnp_pu_name(h, cfg);
    const int64_t units = h->config_int(cfg, "units");
    if (units < 1)
        return h->error_set(err, NNP_ERR_INVALID,
                            "Dense '%s': 'units' must be given as an int >= 1 (got %lld)", name,
                            (long long)units);
    /* each weight of each layer draws from its own reproducible stream */
    kb_weights wb;
    nnp_status st = kb_configure(&wb, h, cfg, "Dense", NNP_PU_SEED_PER_WEIGHT, err);
    if (st != NNP_OK)
        return st;
    act_fn act;
    const char *an = h->config_string(cfg, "activation");
    if (act_parse(an, &act) != 0)
        return h->error_set(err, NNP_ERR_INVALID, "Dense '%s': unknown activation '%s' (one of %s)",
                            name, an, act_choices);
    dense_state *s = calloc(1, sizeof *s);
    if (!s)
        return h->error_set(err, NNP_ERR_NOMEM, "Dense '%s': out of memory", name);
    s->host = h;
    s->cfg = cfg;
    s->units = units;
    s->act = act;
    s->wb = wb;
    *state = s;
    return NNP_OK;
}

static void dense_destroy(void *state)
{
    dense_state *s = state;
    if (!s)
        return;
    kb_free(&s->wb, s->host);
    s->host->aligned_free(s->scratch);
    free(s);
}

/* ------------------------------------------------------------------ */
/* build                                                               */
/* ------------------------------------------------------------------ */

static nnp_status alloc_weights(dense_state *s, int64_t in_dim, nnp_error *err)
{
    nnp_shape ks = {2, {in_dim, s->units}}, bs = {1, {s->units}};
    s->built = 0;
    nnp_status st = kb_alloc(&s->wb, s->host, s->cfg, "Dense", &ks, &bs, err);
    if (st != NNP_OK)
        return st;
    s->in_dim = in_dim;
    s->built = 1;
    return NNP_OK;
}

/* A data-parallel step's workspace: a tree node of the kernel and bias
 * gradients, then (64-byte aligned) the kernel transposed. */
static size_t dp_node_floats(int64_t in_dim, int64_t units)
{
    return ((size_t)(in_dim * units + units) + 15) / 16 * 16;
}

static size_t dp_workspace_floats(int64_t in_dim, int64_t units)
{
    return dp_node_floats(in_dim, units) + (size_t)(in_dim * units);
}

static nnp_status dense_build(void *state, int n_in, const nnp_shape *in, nnp_shape *out,
                              nnp_error *err)
{
    dense_state *s = state;
    const nnp_host *h = s->host;
    char b[160];
    nnp_status st = nnp_pu_check_n_inputs(h, n_in, 1, "Dense", dense_name(s), err);
    if (st != NNP_OK)
        return st;
    const int rank = in[0].rank;
    if (rank < 2)
        return h->error_set(err, NNP_ERR_SHAPE,
                            "Dense '%s': input of rank %d (shape %s); Dense needs rank >= 2 "
                            "([batch, ..., features])",
                            dense_name(s), rank, nnp_pu_shape_str(&in[0], b, sizeof b));
    const int64_t in_dim = in[0].dims[rank - 1];
    if (in_dim < 1)
        return h->error_set(err, NNP_ERR_SHAPE,
                            "Dense '%s': the last axis of input shape %s must have a known size "
                            ">= 1",
                            dense_name(s), nnp_pu_shape_str(&in[0], b, sizeof b));
    if (in_dim > INT32_MAX || s->units > INT32_MAX ||
        in_dim * s->units > ((int64_t)1 << 40))
        return h->error_set(err, NNP_ERR_OVERFLOW, "Dense '%s': kernel [%lld, %lld] is too large",
                            dense_name(s), (long long)in_dim, (long long)s->units);
    if (!s->built || s->in_dim != in_dim)
        st = alloc_weights(s, in_dim, err);
    if (st != NNP_OK)
        return st;

    /* backward scratch for the rows of a concrete build; grows only, so a
     * layer applied to several inputs keeps room for the largest */
    const int64_t rows = nnp_pu_numel(&in[0]) < 0 ? -1 : nnp_pu_numel(&in[0]) / in_dim;
    if (rows > s->scratch_rows && s->act.id != ACT_LINEAR) {
        if (rows > ((int64_t)1 << 40) / s->units)
            return h->error_set(err, NNP_ERR_OVERFLOW, "Dense '%s': %lld rows is too many",
                                dense_name(s), (long long)rows);
        float *p = h->aligned_alloc((size_t)(rows * s->units) * sizeof(float));
        if (!p)
            return h->error_set(err, NNP_ERR_NOMEM,
                                "Dense '%s': cannot allocate backward scratch for %lld rows",
                                dense_name(s), (long long)rows);
        h->aligned_free(s->scratch);
        s->scratch = p;
        s->scratch_rows = rows;
    }
    /* data-parallel steps: one node of the kernel and bias gradients' tree
     * and the transposed kernel, in the model's shared workspace */
    s->chunk_ws = NNP_HOST_AT_LEAST(h, 5) &&
                  h->scratch_reserve(dp_workspace_floats(in_dim, s->units) * sizeof(float));
    s->rank = rank;
    s->in_shape = in[0];
    *out = in[0];
    out->dims[rank - 1] = s->units;
    return NNP_OK;
}

static int dense_n_weights(const void *state) { return ((const dense_state *)state)->wb.n; }

static const nnp_weight *dense_weight(const void *state, int i)
{
    return kb_weight(&((const dense_state *)state)->wb, i);
}

/* ------------------------------------------------------------------ */
/* kernels                                                             */
/* ------------------------------------------------------------------ */

/* Fewer elements than this stay on one thread. */
#define DENSE_PAR_MIN 32768
#define DENSE_COL_BLOCK 64

/* z = x . kernel (+ bias); x [rows, in], z [rows, units]; on up to nt
 * threads (the same bits for any nt). */
static void linear_part(const dense_state *s, const float *x, int64_t rows, float *z, int nt)
{
    const int64_t in = s->in_dim, units = s->units;
    gt_sgemm(0, 0, rows, units, in, 1.0f, x, in, s->wb.kernel.data, units, 0.0f, z, units, nt);
    if (!s->wb.use_bias)
        return;
    const float *b = s->wb.bias.data;
#pragma omp parallel for schedule(static) if (rows * units >= DENSE_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        float *zr = z + r * units;
        for (int64_t u = 0; u < units; u++)
            zr[u] += b[u];
    }
}

/* db[u] += sum over rows of dz[r, u], each column summed in row order. */
static void bias_grad(const float *dz, int64_t rows, int64_t units, float *db, int store)
{
    const int64_t nblk = (units + DENSE_COL_BLOCK - 1) / DENSE_COL_BLOCK;
#pragma omp parallel for schedule(static) if (rows * units >= DENSE_PAR_MIN)
    for (int64_t blk = 0; blk < nblk; blk++) {
        const int64_t u0 = blk * DENSE_COL_BLOCK;
        const int64_t nu = units - u0 < DENSE_COL_BLOCK ? units - u0 : DENSE_COL_BLOCK;
        double acc[DENSE_COL_BLOCK] = {0};
        for (int64_t r = 0; r < rows; r++) {
            const float *d = dz + r * units + u0;
            for (int64_t u = 0; u < nu; u++)
                acc[u] += d[u];
        }
        for (int64_t u = 0; u < nu; u++)
            db[u0 + u] = store ? (float)acc[u] : db[u0 + u] + (float)acc[u];
    }
}

/* Whether a call of `rows` rows runs in a data-parallel step (a 1.5 host's
 * batch_chunks says how many chunks; 0 outside one). */
static int dense_chunks(const dense_state *s, int64_t rows)
{
    const nnp_host *h = s->host;
    return s->chunk_ws && NNP_HOST_AT_LEAST(h, 5) ? h->batch_chunks(rows, 0, NULL, NULL) : 0;
}

/* z = x . kernel + bias: in a data-parallel step with gemm_det's products
 * (a sample's row depends on that sample alone), else in BLAS tiles. */
static void linear_rows(const dense_state *s, const float *x, int64_t rows, float *z)
{
    const int nt = nnp_pu_nthreads(s->host);
    if (dense_chunks(s, rows) > 0)
        gd_gemm(rows, s->units, s->in_dim, x, s->in_dim, s->wb.kernel.data, s->units,
                s->wb.use_bias ? s->wb.bias.data : NULL, z, s->units, nt);
    else
        linear_part(s, x, rows, z, nt);
}

/* ------------------------------------------------------------------ */
/* forward / backward                                                  */
/* ------------------------------------------------------------------ */

static nnp_status check_input(const dense_state *s, const nnp_tensor *x, int64_t *rows,
                              nnp_shape *out_shape, nnp_error *err)
{
    const nnp_host *h = s->host;
    char b[160];
    nnp_status st = nnp_pu_check_built(h, s->built, "Dense", dense_name(s), err);
    if (st == NNP_OK)
        st = nnp_pu_check(h, "Dense", dense_name(s), x, "input", NULL, err);
    if (st != NNP_OK)
        return st;
    if (x->shape.rank < 2 || x->shape.dims[x->shape.rank - 1] != s->in_dim)
        return h->error_set(err, NNP_ERR_SHAPE,
                            "Dense '%s': input has shape %s, but the layer was built for "
                            "%lld features on the last axis",
                            dense_name(s), nnp_pu_shape_str(&x->shape, b, sizeof b),
                            (long long)s->in_dim);
    *rows = nnp_pu_numel(&x->shape) / s->in_dim;
    if (*rows > INT32_MAX)
        return h->error_set(err, NNP_ERR_OVERFLOW, "Dense '%s': %lld rows is too many for BLAS",
                            dense_name(s), (long long)*rows);
    *out_shape = x->shape;
    out_shape->dims[x->shape.rank - 1] = s->units;
    return NNP_OK;
}

static nnp_status dense_forward(void *state, const nnp_tensor *const *in, int n_in,
                                nnp_tensor *out, nnp_mode mode, nnp_error *err)
{
    dense_state *s = state;
    (void)n_in;
    (void)mode;
    int64_t rows;
    nnp_shape os;
    s->store_grads = 0; /* told before a backward, not before a forward */
    nnp_status st = check_input(s, in[0], &rows, &os, err);
    if (st == NNP_OK)
        st = nnp_pu_check(s->host, "Dense", dense_name(s), out, "output", &os, err);
    if (st != NNP_OK || rows == 0)
        return st;
    linear_rows(s, in[0]->data, rows, out->data);
    act_forward(&s->act, out->data, out->data, rows, s->units, 1);
    return NNP_OK;
}

/* In a data-parallel step: the kernel and bias gradients, node by node of
 * the host's reduction tree over the chunks (each node evaluated here tile
 * by tile), summed over every process by the host in one fixed order, so
 * the same bits for any process count; *chunked = 0 outside such a step. */
static nnp_status dense_chunk_grads(dense_state *s, const float *x, const float *dz,
                                    int64_t rows, int store, int *chunked, nnp_error *err)
{
    const nnp_host *h = s->host;
    *chunked = 0;
    const int nc = dense_chunks(s, rows), nt = nnp_pu_nthreads(h);
    const int64_t units = s->units, in_dim = s->in_dim, nk = in_dim * units;
    float *node = nc > 0 ? h->scratch(dp_workspace_floats(in_dim, units) * sizeof(float)) : NULL;
    if (!node)
        return NNP_OK;
    nnp_status st = gd_reduce_atb(h, rows, in_dim, units, x, in_dim, dz, units, node, nt, "Dense",
                                  dense_name(s), err);
    if (st != NNP_OK)
        return st;
    float *dk = s->wb.dkernel.data;
    for (int64_t j = 0; j < nk; j++)
        dk[j] = store ? node[j] : dk[j] + node[j];
    if (s->wb.use_bias) {
        float *db = s->wb.dbias.data;
        for (int64_t j = 0; j < units; j++)
            db[j] = store ? node[nk + j] : db[j] + node[nk + j];
    }
    *chunked = 1;
    return NNP_OK;
}

static nnp_status dense_backward(void *state, const nnp_tensor *const *in, int n_in,
                                 const nnp_tensor *out, const nnp_tensor *grad_out,
                                 nnp_tensor *const *grad_in, nnp_mode mode, nnp_error *err)
{
    dense_state *s = state;
    const nnp_host *h = s->host;
    (void)n_in;
    (void)mode;
    int64_t rows;
    nnp_shape os;
    nnp_tensor *gx = grad_in ? grad_in[0] : NULL;
    const int store = s->store_grads; /* write the weight gradients, not add */
    s->store_grads = 0;
    nnp_status st = check_input(s, in[0], &rows, &os, err);
    if (st == NNP_OK)
        st = nnp_pu_check(h, "Dense", dense_name(s), grad_out, "output gradient", &os, err);
    if (st == NNP_OK && s->act.id != ACT_LINEAR)
        st = nnp_pu_check(h, "Dense", dense_name(s), out, "output", &os, err);
    if (st == NNP_OK && gx)
        st = nnp_pu_check(h, "Dense", dense_name(s), gx, "input gradient", &in[0]->shape, err);
    if (st == NNP_OK && s->act.id != ACT_LINEAR && rows > s->scratch_rows)
        st = h->error_set(err, NNP_ERR_SHAPE,
                          "Dense '%s': backward of %lld rows, but the layer was built for at most "
                          "%lld (build it for this batch size first)",
                          dense_name(s), (long long)rows, (long long)s->scratch_rows);
    if (st != NNP_OK)
        return st;

    const int64_t units = s->units, in_dim = s->in_dim;
    const float *x = in[0]->data;
    const float *dz = grad_out->data;
    if (rows > 0 && s->act.id != ACT_LINEAR) {
        float *z = s->scratch;
        if (act_needs_x(&s->act)) /* recompute the pre-activation rather than keep it */
            linear_rows(s, x, rows, z);
        act_backward(&s->act, act_needs_x(&s->act) ? z : NULL, out->data, dz, z, rows, units, 1);
        dz = z;
    }
    if (rows == 0 && store) { /* nothing to add: zeros */
        memset(s->wb.dkernel.data, 0, s->wb.dkernel.nbytes);
        if (s->wb.use_bias)
            memset(s->wb.dbias.data, 0, s->wb.dbias.nbytes);
    }
    if (rows > 0) {
        const int nt = nnp_pu_nthreads(h);
        int chunked = 0;
        st = dense_chunk_grads(s, x, dz, rows, store, &chunked, err);
        if (st != NNP_OK)
            return st;
        if (!chunked)
            gt_sgemm(1, 0, in_dim, units, rows, 1.0f, x, in_dim, dz, units, store ? 0.0f : 1.0f,
                     s->wb.dkernel.data, units, nt);
        if (s->wb.use_bias && !chunked)
            bias_grad(dz, rows, units, s->wb.dbias.data, store);
        if (gx && chunked) {
            /* dx = dz . kernel^T, a sample's row from that sample alone */
            float *kt = (float *)h->scratch(dp_workspace_floats(in_dim, units) * sizeof(float)) +
                        dp_node_floats(in_dim, units);
            gd_transpose(in_dim, units, s->wb.kernel.data, kt, nt);
            gd_gemm(rows, in_dim, units, dz, units, kt, in_dim, NULL, gx->data, in_dim, nt);
        } else if (gx) {
            gt_sgemm(0, 1, rows, in_dim, units, 1.0f, dz, units, s->wb.kernel.data, units, 0.0f,
                     gx->data, in_dim, nt);
        }
    }
    return NNP_OK;
}

/* ------------------------------------------------------------------ */
/* plugin table                                                        */
/* ------------------------------------------------------------------ */

/* Gemm is the kind's op; MatMul (with a constant right operand) is listed
 * through the extension. */
static const nnp_onnx_op dense_more_ops[] = {
    {"", "MatMul", 1, 23},
    {NULL, NULL, 0, 0},
};

/* A MatMul's bias comes as the Add after it: the pair is one Dense, whose
 * reader presents the Add's constant as input 2 (Gemm's C). */
static const char *const dense_fold_next[] = {"Add", NULL};
/* ONNX's rules (of the float types nnplug computes in): Gemm's A and B are
 * matrices and C broadcasts to [M, N] (rank 0 to 2); MatMul's operands
 * have rank 1 or more; a folded Add's constant (input 2) is a float too. */
static const nnp_onnx_input_rule dense_input_rules[] = {
    NNP_PU_ONNX_INPUT("Gemm", 0, "A", NNP_ONNX_T_FLOATS, NNP_ONNX_RANK(2)),
    NNP_PU_ONNX_INPUT("Gemm", 1, "B", NNP_ONNX_T_FLOATS, NNP_ONNX_RANK(2)),
    NNP_PU_ONNX_INPUT("Gemm", 2, "C", NNP_ONNX_T_FLOATS,
                      NNP_ONNX_RANK(0) | NNP_ONNX_RANK(1) | NNP_ONNX_RANK(2)),
    NNP_PU_ONNX_INPUT("MatMul", 0, "A", NNP_ONNX_T_FLOATS, NNP_ONNX_RANK_MIN(1)),
    NNP_PU_ONNX_INPUT("MatMul", 1, "B", NNP_ONNX_T_FLOATS, NNP_ONNX_RANK_MIN(1)),
    NNP_PU_ONNX_INPUT("MatMul", 2, "bias", NNP_ONNX_T_FLOATS, 0),
    NNP_PU_ONNX_INPUTS_END,
};

static const nnp_onnx_node_ext dense_onnx_node = {
    .struct_size = sizeof(nnp_onnx_node_ext),
    .fold_next = dense_fold_next,
    .input_rules = dense_input_rules,
};

/* NNP_EXT_GRAD_STORE: the kernel gradient's product writes instead of
 * adding (beta 0), the bias sums are stored. */
static void dense_store_next_backward(void *state) { ((dense_state *)state)->store_grads = 1; }

static const nnp_grad_store_ext dense_grad_store = {
    .struct_size = sizeof(nnp_grad_store_ext),
    .store_next_backward = dense_store_next_backward,
};

static const void *dense_extension(const char *name)
{
    if (name && strcmp(name, NNP_EXT_ONNX_NODE) == 0)
        return &dense_onnx_node;
    const void *e = nnp_pu_extension(name, NNP_EXT_GRAD_STORE, &dense_grad_store);
    return e ? e : nnp_pu_extension(name, NNP_EXT_ONNX_OPS, dense_more_ops);
}

static const nnp_kind dense_kind = {
    NNP_PU_KIND_HEAD,
    .name = "Dense",
    .doc = "Keras Dense: activation(x . kernel + bias) over the last axis",
    .params = dense_params,
    .n_params = NNP_PU_COUNT(dense_params),
    .onnx = {"", "Gemm", 1, 23},
    .n_inputs_min = 1,
    .n_inputs_max = 1,
    .create = dense_create,
    .destroy = dense_destroy,
    .build = dense_build,
    .n_weights = dense_n_weights,
    .weight = dense_weight,
    .forward = dense_forward,
    .backward = dense_backward,
    .to_onnx = dense_to_onnx,
    .from_onnx = dense_from_onnx,
    .onnx_load_weights = dense_onnx_load_weights,
    .extension = dense_extension,
};

static const nnp_kind *const dense_kinds[] = {&dense_kind};

static const nnp_plugin dense_plugin = NNP_PU_PLUGIN_INIT("dense", "1.0.0", dense_kinds);

NNP_EXPORT const nnp_plugin *nnp_plugin_entry(const nnp_host *host)
{
    /* it calls host fields added in 1.1 */
    return nnp_pu_accept_host(host, 1, &dense_plugin);
}
