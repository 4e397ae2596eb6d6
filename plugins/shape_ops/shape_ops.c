/*
 * Keras Flatten, Reshape, Permute, Dropout and Add.
 *
 * Flatten keeps the batch axis and flattens the rest; with
 * data_format="channels_first" it first moves the channel axis last, as
 * Keras does (so weights of a following Dense keep their order across data
 * formats). Reshape takes target_shape without the batch axis (one -1
 * allowed). Permute reorders the non-batch axes (dims 1-based, as Keras).
 * Add sums 2 or more inputs of equal shapes.
 *
 * Dropout: inverted dropout in training (kept values scaled by 1 / (1 -
 * rate)), identity in inference. The mask comes from a counter-based hash
 * (splitmix64) of the seed, the training step and the element's index in
 * noise_shape, so it is the same for any thread count and can be recomputed
 * by backward instead of stored; each training forward advances the step.
 */
#include <nnplug/plugin_util.h>

#include "shape_ops.h"
#include "common/image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#define SOP_PAR_MIN 65536

const char *sop_name(const sop_state *s) { return nnp_pu_name(s->host, s->cfg); }

static const nnp_param_def flatten_params[] = {
    {"data_format", NNP_PARAM_STRING, "\"channels_last\"", NNP_PARAM_NULLABLE, 0, 0,
     "channels_last|channels_first|channelsLast|channelsFirst",
     "channels_first: move the channel axis (1) last before flattening, as Keras does"},
};

static const nnp_param_def reshape_params[] = {
    {"target_shape", NNP_PARAM_SHAPE, "null", NNP_PARAM_NULLABLE, 0, 0, NULL,
     "output shape without the batch axis; one entry may be -1 (required)"},
};

static const nnp_param_def permute_params[] = {
    {"dims", NNP_PARAM_INTS, "null", NNP_PARAM_NULLABLE | NNP_PARAM_HAS_MIN, 1, 0, NULL,
     "permutation of the non-batch axes, 1-based: (2, 1) swaps axes 1 and 2 (required)"},
};

static const nnp_param_def dropout_params[] = {
    {"rate", NNP_PARAM_FLOAT, "0.5",
     NNP_PARAM_HAS_MIN | NNP_PARAM_HAS_MAX | NNP_PARAM_MAX_EXCLUSIVE, 0, 1, NULL,
     "fraction of the input units to drop in training"},
    {"noise_shape", NNP_PARAM_SHAPE, "null", NNP_PARAM_NULLABLE, 0, 0, NULL,
     "shape of the binary mask, broadcast over axes of size 1; null entries take the input's "
     "size"},
};

/* Add has no parameters; the schema table needs one entry to exist. */
static const nnp_param_def add_params[1];

/* ------------------------------------------------------------------ */
/* create / destroy                                                    */
/* ------------------------------------------------------------------ */

/* A state of the given kind; NULL when out of memory (err says so). */
static sop_state *new_state(const nnp_host *h, const nnp_config *cfg, const char *kind,
                            nnp_error *err)
{
    sop_state *s = nnp_pu_state_alloc(h, sizeof *s, kind, err);
    if (!s)
        return NULL;
    s->host = h;
    s->cfg = cfg;
    s->kind = kind;
    s->noise_rank = -1;
    return s;
}

static nnp_status flatten_create(const nnp_host *h, const nnp_config *cfg, void **state,
                                 nnp_error *err)
{
    sop_state *s = new_state(h, cfg, "Flatten", err);
    if (!s)
        return NNP_ERR_NOMEM;
    s->channels_first = img_channels_first(h, cfg);
    *state = s;
    return NNP_OK;
}

static nnp_status reshape_create(const nnp_host *h, const nnp_config *cfg, void **state,
                                 nnp_error *err)
{
    const char *name = nnp_pu_name(h, cfg);
    int64_t t[NNP_MAX_RANK + 1];
    int n = h->config_ints(cfg, "target_shape", t, NNP_MAX_RANK + 1);
    if (n < 0)
        return h->error_set(err, NNP_ERR_INVALID, "Reshape '%s': 'target_shape' is required",
                            name);
    if (n + 1 > NNP_MAX_RANK)
        return h->error_set(err, NNP_ERR_INVALID,
                            "Reshape '%s': target_shape has %d entries; at most %d", name, n,
                            NNP_MAX_RANK - 1);
    int unknown = 0;
    for (int i = 0; i < n; i++) {
        if (t[i] < 0)
            unknown++;
        else if (t[i] == 0)
            return h->error_set(err, NNP_ERR_INVALID,
                                "Reshape '%s': target_shape entry %d is 0", name, i);
    }
    if (unknown > 1)
        return h->error_set(err, NNP_ERR_INVALID,
                            "Reshape '%s': target_shape may have one -1, it has %d", name,
                            unknown);
    sop_state *s = new_state(h, cfg, "Reshape", err);
    if (!s)
        return NNP_ERR_NOMEM;
    memcpy(s->target, t, (size_t)n * sizeof(int64_t));
    s->target_rank = n;
    *state = s;
    return NNP_OK;
}

static nnp_status permute_create(const nnp_host *h, const nnp_config *cfg, void **state,
                                 nnp_error *err)
{
    const char *name = nnp_pu_name(h, cfg);
    int64_t d[NNP_MAX_RANK + 1];
    int n = h->config_ints(cfg, "dims", d, NNP_MAX_RANK + 1);
    if (n < 1 || n >= NNP_MAX_RANK)
        return h->error_set(err, NNP_ERR_INVALID,
                            "Permute '%s': 'dims' must list 1 to %d axes (it is required)", name,
                            NNP_MAX_RANK - 1);
    int seen[NNP_MAX_RANK] = {0};
    for (int i = 0; i < n; i++) {
        if (d[i] < 1 || d[i] > n || seen[d[i] - 1]++)
            return h->error_set(err, NNP_ERR_INVALID,
                                "Permute '%s': dims must be a permutation of 1..%d", name, n);
    }
    sop_state *s = new_state(h, cfg, "Permute", err);
    if (!s)
        return NNP_ERR_NOMEM;
    for (int i = 0; i < n; i++)
        s->perm[i] = d[i];
    s->perm_rank = n;
    *state = s;
    return NNP_OK;
}

static nnp_status dropout_create(const nnp_host *h, const nnp_config *cfg, void **state,
                                 nnp_error *err)
{
    sop_state *s = new_state(h, cfg, "Dropout", err);
    if (!s)
        return NNP_ERR_NOMEM;
    s->rate = h->config_float(cfg, "rate");
    s->seed = h->config_seed(cfg); /* Keras's "seed" is the host's per-layer seed key */
    s->noise_rank = h->config_ints(cfg, "noise_shape", s->noise, NNP_MAX_RANK);
    if (s->noise_rank > NNP_MAX_RANK) {
        nnp_status st = h->error_set(err, NNP_ERR_INVALID,
                                     "Dropout '%s': noise_shape has too many entries",
                                     nnp_pu_name(h, cfg));
        free(s);
        return st;
    }
    *state = s;
    return NNP_OK;
}

static nnp_status add_create(const nnp_host *h, const nnp_config *cfg, void **state,
                             nnp_error *err)
{
    sop_state *s = new_state(h, cfg, "Add", err);
    if (!s)
        return NNP_ERR_NOMEM;
    *state = s;
    return NNP_OK;
}

static void sop_destroy(void *state) { free(state); }

/* ------------------------------------------------------------------ */
/* build                                                               */
/* ------------------------------------------------------------------ */

/* [N, d1, ..., dk] -> [N, d1 * ... * dk] (-1 when a dim is unknown). */
static nnp_status flatten_shape(const sop_state *s, const nnp_shape *in, nnp_shape *out,
                                nnp_error *err)
{
    if (in->rank < 1)
        return s->host->error_set(err, NNP_ERR_SHAPE,
                                  "Flatten '%s': needs an input of rank >= 1 (a batch axis)",
                                  sop_name(s));
    int64_t n = 1;
    for (int i = 1; i < in->rank; i++)
        n = (n < 0 || in->dims[i] < 0) ? -1 : n * in->dims[i];
    memset(out, 0, sizeof *out);
    out->rank = 2;
    out->dims[0] = in->dims[0];
    out->dims[1] = n;
    return NNP_OK;
}

/* Build of a one-input kind whose output shape `shape` derives from the
 * input's: check, derive, remember both shapes. */
typedef nnp_status (*sop_shape_fn)(const sop_state *, const nnp_shape *, nnp_shape *,
                                   nnp_error *);

static nnp_status build_one(void *state, int n_in, const nnp_shape *in, nnp_shape *out,
                            sop_shape_fn shape, nnp_error *err)
{
    sop_state *s = state;
    nnp_status st = nnp_pu_check_n_inputs(s->host, n_in, 1, s->kind, sop_name(s), err);
    if (st == NNP_OK)
        st = shape(s, &in[0], out, err);
    if (st)
        return st;
    s->in_shape = in[0];
    s->out_shape = *out;
    s->built = 1;
    return NNP_OK;
}

static nnp_status flatten_build(void *state, int n_in, const nnp_shape *in, nnp_shape *out,
                                nnp_error *err)
{
    return build_one(state, n_in, in, out, flatten_shape, err);
}

/* The output shape of Reshape for an input shape (-1 resolved when the
 * input's non-batch size is known). */
static nnp_status reshape_shape(const sop_state *s, const nnp_shape *in, nnp_shape *out,
                                nnp_error *err)
{
    const nnp_host *h = s->host;
    char b1[160];
    if (in->rank < 1)
        return h->error_set(err, NNP_ERR_SHAPE, "Reshape '%s': needs an input with a batch axis",
                            sop_name(s));
    int64_t total = 1;
    for (int i = 1; i < in->rank; i++)
        total = (total < 0 || in->dims[i] < 0) ? -1 : total * in->dims[i];
    int64_t known = 1;
    int unknown_at = -1;
    for (int i = 0; i < s->target_rank; i++) {
        if (s->target[i] < 0)
            unknown_at = i;
        else
            known *= s->target[i];
    }
    memset(out, 0, sizeof *out);
    out->rank = s->target_rank + 1;
    out->dims[0] = in->dims[0];
    for (int i = 0; i < s->target_rank; i++)
        out->dims[i + 1] = s->target[i];
    if (total < 0)
        return NNP_OK;
    if ((unknown_at < 0 && known != total) ||
        (unknown_at >= 0 && (known == 0 || total % known != 0)))
        return h->error_set(err, NNP_ERR_SHAPE,
                            "Reshape '%s': input shape %s has %lld values per sample, which do "
                            "not fit target_shape (%lld%s)",
                            sop_name(s), nnp_pu_shape_str(in, b1, sizeof b1), (long long)total,
                            (long long)known, unknown_at >= 0 ? " times -1" : "");
    if (unknown_at >= 0)
        out->dims[unknown_at + 1] = total / known;
    return NNP_OK;
}

static nnp_status reshape_build(void *state, int n_in, const nnp_shape *in, nnp_shape *out,
                                nnp_error *err)
{
    return build_one(state, n_in, in, out, reshape_shape, err);
}

static nnp_status permute_shape(const sop_state *s, const nnp_shape *in, nnp_shape *out,
                                nnp_error *err)
{
    char b[160];
    if (in->rank != s->perm_rank + 1)
        return s->host->error_set(err, NNP_ERR_SHAPE,
                                  "Permute '%s': dims has %d entries, so the input needs rank %d; "
                                  "got shape %s",
                                  sop_name(s), s->perm_rank, s->perm_rank + 1,
                                  nnp_pu_shape_str(in, b, sizeof b));
    *out = *in;
    for (int i = 0; i < s->perm_rank; i++)
        out->dims[i + 1] = in->dims[s->perm[i]];
    return NNP_OK;
}

static nnp_status permute_build(void *state, int n_in, const nnp_shape *in, nnp_shape *out,
                                nnp_error *err)
{
    return build_one(state, n_in, in, out, permute_shape, err);
}

/* noise_shape must have the input's rank, each entry 1 or the input's size. */
static nnp_status dropout_check(const sop_state *s, const nnp_shape *in, nnp_error *err)
{
    const nnp_host *h = s->host;
    char b[160];
    if (s->noise_rank < 0)
        return NNP_OK;
    if (s->noise_rank != in->rank)
        return h->error_set(err, NNP_ERR_SHAPE,
                            "Dropout '%s': noise_shape has %d entries, the input %s has rank %d",
                            sop_name(s), s->noise_rank, nnp_pu_shape_str(in, b, sizeof b),
                            in->rank);
    for (int i = 0; i < s->noise_rank; i++)
        if (s->noise[i] >= 0 && s->noise[i] != 1 && in->dims[i] >= 0 &&
            s->noise[i] != in->dims[i])
            return h->error_set(err, NNP_ERR_SHAPE,
                                "Dropout '%s': noise_shape entry %d is %lld; it must be 1 or the "
                                "input's %lld",
                                sop_name(s), i, (long long)s->noise[i], (long long)in->dims[i]);
    return NNP_OK;
}

/* Dropout's output has the input's shape, once noise_shape fits it. */
static nnp_status dropout_shape(const sop_state *s, const nnp_shape *in, nnp_shape *out,
                                nnp_error *err)
{
    nnp_status st = dropout_check(s, in, err);
    if (st == NNP_OK)
        *out = *in;
    return st;
}

static nnp_status dropout_build(void *state, int n_in, const nnp_shape *in, nnp_shape *out,
                                nnp_error *err)
{
    return build_one(state, n_in, in, out, dropout_shape, err);
}

static nnp_status add_build(void *state, int n_in, const nnp_shape *in, nnp_shape *out,
                            nnp_error *err)
{
    sop_state *s = state;
    const nnp_host *h = s->host;
    char b1[160], b2[160];
    if (n_in < 2)
        return h->error_set(err, NNP_ERR_INVALID, "Add '%s': needs at least 2 inputs, got %d",
                            sop_name(s), n_in);
    for (int k = 1; k < n_in; k++)
        if (!nnp_pu_same_shape(&in[k], &in[0]))
            return h->error_set(err, NNP_ERR_SHAPE,
                                "Add '%s': input %d has shape %s but input 0 has %s; Add needs "
                                "equal shapes",
                                sop_name(s), k, nnp_pu_shape_str(&in[k], b1, sizeof b1),
                                nnp_pu_shape_str(&in[0], b2, sizeof b2));
    *out = in[0];
    s->in_shape = in[0];
    s->out_shape = *out;
    s->n_in = n_in;
    s->built = 1;
    return NNP_OK;
}

/* ------------------------------------------------------------------ */
/* run                                                                 */
/* ------------------------------------------------------------------ */

static nnp_status check_built(const sop_state *s, nnp_error *err)
{
    return nnp_pu_check_built(s->host, s->built, s->kind, sop_name(s), err);
}

/* The checks of a one-input kind's forward (y: the output) or backward (y:
 * the output gradient, gx: the input gradient or NULL): built, the input,
 * the output shape os that shape() derives from it, y of shape os and gx of
 * the input's. */
static nnp_status check_run(const sop_state *s, const nnp_tensor *x, sop_shape_fn shape,
                            const nnp_tensor *y, const char *y_what, const nnp_tensor *gx,
                            nnp_shape *os, nnp_error *err)
{
    const nnp_host *h = s->host;
    nnp_status st = check_built(s, err);
    if (st == NNP_OK)
        st = nnp_pu_check(h, s->kind, sop_name(s), x, "input", NULL, err);
    if (st == NNP_OK)
        st = shape(s, &x->shape, os, err);
    if (st == NNP_OK)
        st = nnp_pu_check(h, s->kind, sop_name(s), y, y_what, os, err);
    if (st == NNP_OK && gx)
        st = nnp_pu_check(h, s->kind, sop_name(s), gx, "input gradient", &x->shape, err);
    return st;
}

static void copy(float *dst, const float *src, int64_t n)
{
    if (dst != src && n > 0)
        memcpy(dst, src, (size_t)n * sizeof(float));
}

/* [N, C, rest] <-> [N, rest, C]: to_last moves the channel axis last. */
static void move_channels(const float *x, float *y, int64_t N, int64_t C, int64_t R, int to_last,
                          int nt)
{
#pragma omp parallel for schedule(static) num_threads(nt) if (N * C * R >= SOP_PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        const float *xn = x + n * C * R;
        float *yn = y + n * C * R;
        for (int64_t c = 0; c < C; c++)
            for (int64_t r = 0; r < R; r++) {
                if (to_last)
                    yn[r * C + c] = xn[c * R + r];
                else
                    yn[c * R + r] = xn[r * C + c];
            }
    }
}

static nnp_status flatten_forward(void *state, const nnp_tensor *const *in, int n_in,
                                  nnp_tensor *out, nnp_mode mode, nnp_error *err)
{
    sop_state *s = state;
    (void)n_in;
    (void)mode;
    nnp_shape os;
    nnp_status st = check_run(s, in[0], flatten_shape, out, "output", NULL, &os, err);
    if (st != NNP_OK)
        return st;
    const nnp_shape *xs = &in[0]->shape;
    if (s->channels_first && xs->rank > 2)
        move_channels(in[0]->data, out->data, xs->dims[0], xs->dims[1],
                      os.dims[1] / (xs->dims[1] ? xs->dims[1] : 1), 1, nnp_pu_nthreads(s->host));
    else
        copy(out->data, in[0]->data, nnp_pu_numel(xs));
    return NNP_OK;
}

static nnp_status flatten_backward(void *state, const nnp_tensor *const *in, int n_in,
                                   const nnp_tensor *out, const nnp_tensor *grad_out,
                                   nnp_tensor *const *grad_in, nnp_mode mode, nnp_error *err)
{
    sop_state *s = state;
    (void)n_in;
    (void)mode;
    (void)out;
    nnp_tensor *gx = grad_in ? grad_in[0] : NULL;
    nnp_shape os;
    nnp_status st = check_run(s, in[0], flatten_shape, grad_out, "output gradient", gx, &os, err);
    if (st != NNP_OK || !gx)
        return st;
    const nnp_shape *xs = &in[0]->shape;
    if (s->channels_first && xs->rank > 2)
        move_channels(grad_out->data, gx->data, xs->dims[0], xs->dims[1],
                      os.dims[1] / (xs->dims[1] ? xs->dims[1] : 1), 0, nnp_pu_nthreads(s->host));
    else
        copy(gx->data, grad_out->data, nnp_pu_numel(xs));
    return NNP_OK;
}

static nnp_status reshape_forward(void *state, const nnp_tensor *const *in, int n_in,
                                  nnp_tensor *out, nnp_mode mode, nnp_error *err)
{
    sop_state *s = state;
    (void)n_in;
    (void)mode;
    nnp_shape os;
    nnp_status st = check_run(s, in[0], reshape_shape, out, "output", NULL, &os, err);
    if (st == NNP_OK)
        copy(out->data, in[0]->data, nnp_pu_numel(&os));
    return st;
}

static nnp_status reshape_backward(void *state, const nnp_tensor *const *in, int n_in,
                                   const nnp_tensor *out, const nnp_tensor *grad_out,
                                   nnp_tensor *const *grad_in, nnp_mode mode, nnp_error *err)
{
    sop_state *s = state;
    (void)n_in;
    (void)mode;
    (void)out;
    nnp_tensor *gx = grad_in ? grad_in[0] : NULL;
    nnp_shape os;
    nnp_status st = check_run(s, in[0], reshape_shape, grad_out, "output gradient", gx, &os, err);
    if (st == NNP_OK && gx)
        copy(gx->data, grad_out->data, nnp_pu_numel(&in[0]->shape));
    return st;
}

/* y = x with its axes reordered: y's axis i is x's axis p[i]. Each output
 * row (last axis) is one task. */
static void transpose_nd(const float *x, float *y, const nnp_shape *xs, const int *p, int nt)
{
    const int r = xs->rank;
    int64_t xst[NNP_MAX_RANK] = {0}, yd[NNP_MAX_RANK] = {0};
    if (r < 1 || r > NNP_MAX_RANK)
        return;
    xst[r - 1] = 1;
    for (int i = r - 2; i >= 0; i--)
        xst[i] = xst[i + 1] * xs->dims[i + 1];
    for (int i = 0; i < r; i++)
        yd[i] = xs->dims[p[i]];
    const int64_t inner = yd[r - 1], step = xst[p[r - 1]];
    const int64_t n = nnp_pu_numel(xs), rows = inner ? n / inner : 0;
#pragma omp parallel for schedule(static) num_threads(nt) if (n >= SOP_PAR_MIN)
    for (int64_t row = 0; row < rows; row++) {
        int64_t rem = row, off = 0;
        for (int i = r - 2; i >= 0; i--) {
            off += (rem % yd[i]) * xst[p[i]];
            rem /= yd[i];
        }
        float *yr = y + row * inner;
        for (int64_t j = 0; j < inner; j++)
            yr[j] = x[off + j * step];
    }
}

/* The full permutation (batch axis first) and its inverse. */
static void full_perm(const sop_state *s, int *p, int *inv)
{
    p[0] = 0;
    for (int i = 0; i < s->perm_rank; i++)
        p[i + 1] = (int)s->perm[i];
    for (int i = 0; i <= s->perm_rank; i++)
        inv[p[i]] = i;
}

static nnp_status permute_forward(void *state, const nnp_tensor *const *in, int n_in,
                                  nnp_tensor *out, nnp_mode mode, nnp_error *err)
{
    sop_state *s = state;
    (void)n_in;
    (void)mode;
    nnp_shape os;
    nnp_status st = check_run(s, in[0], permute_shape, out, "output", NULL, &os, err);
    if (st != NNP_OK)
        return st;
    int p[NNP_MAX_RANK], inv[NNP_MAX_RANK];
    full_perm(s, p, inv);
    transpose_nd(in[0]->data, out->data, &in[0]->shape, p, nnp_pu_nthreads(s->host));
    return NNP_OK;
}

static nnp_status permute_backward(void *state, const nnp_tensor *const *in, int n_in,
                                   const nnp_tensor *out, const nnp_tensor *grad_out,
                                   nnp_tensor *const *grad_in, nnp_mode mode, nnp_error *err)
{
    sop_state *s = state;
    (void)n_in;
    (void)mode;
    (void)out;
    nnp_tensor *gx = grad_in ? grad_in[0] : NULL;
    nnp_shape os;
    nnp_status st = check_run(s, in[0], permute_shape, grad_out, "output gradient", gx, &os, err);
    if (st != NNP_OK || !gx)
        return st;
    int p[NNP_MAX_RANK], inv[NNP_MAX_RANK];
    full_perm(s, p, inv);
    transpose_nd(grad_out->data, gx->data, &os, inv, nnp_pu_nthreads(s->host));
    return NNP_OK;
}

/* Index of element i of a tensor of shape sh in the broadcast noise shape. */
static int64_t noise_index(const sop_state *s, const nnp_shape *sh, int64_t i)
{
    if (s->noise_rank < 0)
        return i;
    int64_t idx = 0, mul = 1;
    for (int a = sh->rank - 1; a >= 0; a--) {
        const int64_t d = sh->dims[a], coord = i % d;
        i /= d;
        const int64_t nd = s->noise[a] < 0 ? d : s->noise[a];
        if (nd != 1)
            idx += coord * mul;
        mul *= nd;
    }
    return idx;
}

/* Whether element idx (noise index) is kept at step. */
static inline int kept(uint64_t seed, uint64_t step, int64_t idx, double rate)
{
    const uint64_t z = nnp_pu_mix64(nnp_pu_mix64(seed ^ nnp_pu_mix64(step)) + (uint64_t)idx);
    return (double)(z >> 40) * 0x1.0p-24 >= rate;
}

/* y = x * mask / (1 - rate) for the mask of step. The mask is drawn for
 * each element's place in the whole global batch (a 1.4 host's batch_rows:
 * this call's rows may be one process's share of it), so a sample gets the
 * same mask on any number of processes. */
static void apply_mask(const sop_state *s, const nnp_shape *sh, const float *x, float *y,
                       uint64_t step, int nt)
{
    const int64_t n = nnp_pu_numel(sh);
    const float scale = (float)(1.0 / (1.0 - s->rate));
    nnp_shape gsh = *sh;
    int64_t first = 0;
    if (sh->rank > 0 && NNP_HOST_AT_LEAST(s->host, 4))
        first = s->host->batch_rows(sh->dims[0], &gsh.dims[0]) * (sh->dims[0] ? n / sh->dims[0] : 0);
#pragma omp parallel for schedule(static) num_threads(nt) if (n >= SOP_PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        y[i] = kept(s->seed, step, noise_index(s, &gsh, first + i), s->rate) ? x[i] * scale : 0.0f;
}

static nnp_status dropout_forward(void *state, const nnp_tensor *const *in, int n_in,
                                  nnp_tensor *out, nnp_mode mode, nnp_error *err)
{
    sop_state *s = state;
    (void)n_in;
    nnp_shape os;
    nnp_status st = check_run(s, in[0], dropout_shape, out, "output", NULL, &os, err);
    if (st != NNP_OK)
        return st;
    if (mode != NNP_MODE_TRAIN || s->rate == 0.0) {
        copy(out->data, in[0]->data, nnp_pu_numel(&os));
        return NNP_OK;
    }
    const uint64_t step = ++s->step;
    /* remember the step for this input's backward (the slot of the same
     * input if any, else the oldest) */
    int at = -1;
    for (int i = 0; i < DROPOUT_SLOTS && at < 0; i++)
        if (s->slots[i].key == in[0]->data)
            at = i;
    if (at < 0) {
        at = s->next_slot;
        s->next_slot = (s->next_slot + 1) % DROPOUT_SLOTS;
    }
    s->slots[at].key = in[0]->data;
    s->slots[at].step = step;
    apply_mask(s, &os, in[0]->data, out->data, step, nnp_pu_nthreads(s->host));
    return NNP_OK;
}

static nnp_status dropout_backward(void *state, const nnp_tensor *const *in, int n_in,
                                   const nnp_tensor *out, const nnp_tensor *grad_out,
                                   nnp_tensor *const *grad_in, nnp_mode mode, nnp_error *err)
{
    sop_state *s = state;
    (void)n_in;
    (void)out;
    nnp_tensor *gx = grad_in ? grad_in[0] : NULL;
    nnp_shape os;
    nnp_status st = check_run(s, in[0], dropout_shape, grad_out, "output gradient", gx, &os, err);
    if (st != NNP_OK || !gx)
        return st;
    if (mode != NNP_MODE_TRAIN || s->rate == 0.0) {
        copy(gx->data, grad_out->data, nnp_pu_numel(&os));
        return NNP_OK;
    }
    int at = -1;
    for (int i = 0; i < DROPOUT_SLOTS && at < 0; i++)
        if (s->slots[i].key && s->slots[i].key == in[0]->data)
            at = i;
    if (at < 0)
        return s->host->error_set(err, NNP_ERR_INVALID,
                                  "Dropout '%s': training backward without a training forward "
                                  "of the same input",
                                  sop_name(s));
    apply_mask(s, &os, grad_out->data, gx->data, s->slots[at].step, nnp_pu_nthreads(s->host));
    return NNP_OK;
}

static void add_relu_span(float *y, const float *a, const float *b, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        const float v = a[i] + b[i];
        y[i] = v > 0.0f ? v : 0.0f; /* as the ReLU layer: NaN and -0 to 0 */
    }
}

/* Each of d[0 .. nd) (nd 1 or 2) = g, g = y > 0 ? dy : 0 (the ReLU
 * layer's backward; y NULL: g = dy), in one pass: every input of a sum has
 * the sum's gradient. A d may be dy. */
static void fanout_span(float *const *d, int nd, const float *dy, const float *y, int64_t i0,
                        int64_t i1)
{
    float *d0 = d[0], *d1 = nd > 1 ? d[1] : NULL;
    if (y && d1) {
#pragma omp simd
        for (int64_t i = i0; i < i1; i++) {
            const float g = dy[i]; /* loaded unconditionally: the loop vectorizes */
            d0[i] = d1[i] = y[i] > 0.0f ? g : 0.0f;
        }
    } else if (y) {
#pragma omp simd
        for (int64_t i = i0; i < i1; i++) {
            const float g = dy[i];
            d0[i] = y[i] > 0.0f ? g : 0.0f;
        }
    } else if (d1) {
#pragma omp simd
        for (int64_t i = i0; i < i1; i++)
            d0[i] = d1[i] = dy[i];
    } else {
        copy(d0 + i0, dy + i0, i1 - i0);
    }
}

static void grad_fanout(float *const *d, int nd, const float *dy, const float *y, int64_t n,
                        int nt)
{
#pragma omp parallel num_threads(nt) if (n >= SOP_PAR_MIN)
    {
        const int t = omp_get_thread_num(), T = omp_get_num_threads();
        fanout_span(d, nd, dy, y, n * t / T, n * (t + 1) / T);
    }
}

static void add_span(float *y, const float *a, const float *b, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        y[i] = a[i] + b[i];
}

static void relu_span(float *y, const float *a, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        y[i] = a[i] > 0.0f ? a[i] : 0.0f;
}

/* y = a + b (b NULL: y = a), then max(., 0) when relu; y may be a. */
static void add_rows(float *y, const float *a, const float *b, int64_t n, int relu, int nt)
{
    if (!b && !relu) {
        copy(y, a, n);
        return;
    }
    if (!b)
        b = a, a = NULL;
#pragma omp parallel num_threads(nt) if (n >= SOP_PAR_MIN)
    {
        const int t = omp_get_thread_num(), T = omp_get_num_threads();
        const int64_t i0 = n * t / T, i1 = n * (t + 1) / T;
        if (a && relu)
            add_relu_span(y + i0, a + i0, b + i0, i1 - i0);
        else if (a)
            add_span(y + i0, a + i0, b + i0, i1 - i0);
        else
            relu_span(y + i0, b + i0, i1 - i0);
    }
}

static nnp_status add_forward(void *state, const nnp_tensor *const *in, int n_in,
                              nnp_tensor *out, nnp_mode mode, nnp_error *err)
{
    sop_state *s = state;
    nnp_status st = check_built(s, err);
    for (int k = 0; k < n_in && st == NNP_OK; k++)
        st = nnp_pu_check(s->host, s->kind, sop_name(s), in[k], "input", k ? &in[0]->shape : NULL,
                      err);
    if (st == NNP_OK)
        st = nnp_pu_check(s->host, s->kind, sop_name(s), out, "output", &in[0]->shape, err);
    if (st != NNP_OK)
        return st;
    const int64_t n = nnp_pu_numel(&in[0]->shape);
    /* channels-last memory (NNP_EXT_LAYOUT): every operand alike, the sum
       elementwise as in any layout */
    int cl = 0;
    for (int k = -1; k < n_in; k++)
        cl += ((k < 0 ? out : in[k])->flags & NNP_TENSOR_NHWC) != 0;
    if (cl && (cl != n_in + 1 || mode != NNP_MODE_INFER || in[0]->shape.rank != 4))
        return s->host->error_set(err, NNP_ERR_INVALID, "Add '%s': channels-last and plain "
                                  "operands mixed", sop_name(s));
    float *y = out->data;
    const float *x0 = in[0]->data;
    const int nt = nnp_pu_nthreads(s->host);
    const int relu = mode == NNP_MODE_INFER ? s->relu : s->train_relu;
    if (n_in == 1) {
        add_rows(y, x0, NULL, n, relu, nt);
        return NNP_OK;
    }
    /* left to right, as one expression would: ((x0 + x1) + x2) + ... */
    for (int k = 1; k < n_in; k++)
        add_rows(y, k == 1 ? x0 : y, in[k]->data, n, relu && k == n_in - 1, nt);
    return NNP_OK;
}

static nnp_status add_backward(void *state, const nnp_tensor *const *in, int n_in,
                               const nnp_tensor *out, const nnp_tensor *grad_out,
                               nnp_tensor *const *grad_in, nnp_mode mode, nnp_error *err)
{
    sop_state *s = state;
    const int relu = mode == NNP_MODE_TRAIN && s->train_relu;
    nnp_status st = check_built(s, err);
    if (st == NNP_OK)
        st = nnp_pu_check(s->host, s->kind, sop_name(s), grad_out, "output gradient", &in[0]->shape,
                      err);
    if (st == NNP_OK && relu) /* a planned ReLU's mask: its output */
        st = nnp_pu_check(s->host, s->kind, sop_name(s), out, "output", &in[0]->shape, err);
    for (int k = 0; k < n_in && st == NNP_OK; k++)
        if (grad_in && grad_in[k])
            st = nnp_pu_check(s->host, s->kind, sop_name(s), grad_in[k], "input gradient",
                          &in[0]->shape, err);
    if (st != NNP_OK)
        return st;
    const int64_t n = nnp_pu_numel(&in[0]->shape);
    if (!grad_in)
        return NNP_OK;
    float *dst[2];
    int nd = 0, k = 0;
    for (; k < n_in && nd < 2; k++)
        if (grad_in[k])
            dst[nd++] = grad_in[k]->data;
    if (nd)
        grad_fanout(dst, nd, grad_out->data, relu ? out->data : NULL, n,
                    nnp_pu_nthreads(s->host));
    for (; k < n_in; k++) /* a third input's on: copies of the first's */
        if (grad_in[k])
            copy(grad_in[k]->data, dst[0], n);
    return NNP_OK;
}

static const nnp_onnx_op add_more_ops[] = {
    {"", "Sum", 1, 23},
    {NULL, NULL, 0, 0},
};

/* A ReLU after the sum (a residual block's) runs in the same pass in
 * inference (NNP_EXT_EPILOGUE, producer side; no affine). */
static nnp_status add_plan_epilogue(void *state, int axis, int relu, nnp_error *err)
{
    sop_state *s = state;
    s->relu = 0;
    if (axis >= 0)
        return s->host->error_set(err, NNP_ERR_UNSUPPORTED, "Add '%s': no affine epilogue",
                                  sop_name(s));
    s->relu = relu;
    return NNP_OK;
}

/* Consumer side: a sum of two inputs may fold into the layer computing
 * one of them (a residual block's last convolution). */
static int add_is_sum(const void *state, int n_inputs)
{
    const sop_state *s = state;
    return s->built && n_inputs == 2;
}

/* Training steps run the ReLU after the sum in the same passes (1.7). */
static nnp_status add_plan_train_relu(void *state, int relu, nnp_error *err)
{
    (void)err;
    ((sop_state *)state)->train_relu = relu != 0;
    return NNP_OK;
}

static const nnp_epilogue_ext add_epilogue = {
    .struct_size = sizeof(nnp_epilogue_ext),
    .plan_epilogue = add_plan_epilogue,
    .is_sum = add_is_sum,
    .plan_train_relu = add_plan_train_relu,
};

/* ONNX's rules for the inputs of the operators these kinds read: data of
 * any type where ONNX allows any (nnplug computes in float; Add and Sum are
 * of numeric types, of which nnplug reads the float ones), Reshape's shape
 * a 1-D int64 tensor, Dropout's ratio a float scalar and its training_mode
 * a bool scalar. */
static const nnp_onnx_input_rule sop_input_rules[] = {
    NNP_PU_ONNX_INPUT("Reshape", 1, "shape", NNP_ONNX_T_INT64, NNP_ONNX_RANK(1)),
    NNP_PU_ONNX_INPUT("Dropout", 0, "data", NNP_ONNX_T_FLOATS, 0),
    NNP_PU_ONNX_INPUT("Dropout", 1, "ratio", NNP_ONNX_T_FLOATS, NNP_ONNX_RANK(0)),
    NNP_PU_ONNX_INPUT("Dropout", 2, "training_mode", NNP_ONNX_T_BOOL, NNP_ONNX_RANK(0)),
    NNP_PU_ONNX_INPUT("Add", 0, "A", NNP_ONNX_T_FLOATS, 0),
    NNP_PU_ONNX_INPUT("Add", 1, "B", NNP_ONNX_T_FLOATS, 0),
    NNP_PU_ONNX_INPUT("Sum", NNP_ONNX_EVERY_INPUT, "data_0", NNP_ONNX_T_FLOATS, 0),
    NNP_PU_ONNX_INPUTS_END,
};

static const nnp_onnx_node_ext sop_onnx_node = {
    .struct_size = sizeof(nnp_onnx_node_ext),
    .input_rules = sop_input_rules,
};

static const void *sop_extension(const char *name)
{
    return nnp_pu_extension(name, NNP_EXT_ONNX_NODE, &sop_onnx_node);
}

/* Add's backward copies the output gradient: it reads no value, but for a
 * planned ReLU's mask (its output). */
static uint32_t add_reads(const void *state)
{
    return ((const sop_state *)state)->train_relu ? NNP_READS_OUTPUT : 0u;
}

static const nnp_backward_reads_ext add_backward_reads = {
    .struct_size = sizeof(nnp_backward_reads_ext),
    .reads = add_reads,
};

/* NNP_EXT_LAYOUT: rank-4 sums run on channels-last memory as on any
 * layout, every operand in the same one. */
static uint32_t add_inference_layouts(const void *state, int k)
{
    const sop_state *s = state;
    (void)k;
    return s->built && s->in_shape.rank == 4 ? NNP_LAYOUT_NHWC | NNP_LAYOUT_TIED : 0u;
}

static const nnp_layout_ext add_layout = {
    .struct_size = sizeof(nnp_layout_ext),
    .inference_layouts = add_inference_layouts,
};

/* Inference Dropout is a copy: it may write over its input (and then
 * copies nothing). */
static const nnp_in_place_ext dropout_in_place_ext = {
    .struct_size = sizeof(nnp_in_place_ext),
    .inference_in_place = nnp_pu_in_place_input0,
};

static const void *dropout_extension(const char *name)
{
    const void *e = nnp_pu_extension(name, NNP_EXT_IN_PLACE, &dropout_in_place_ext);
    return e ? e : sop_extension(name);
}

/* A sum of two inputs may write over the first (each element read before
 * it is written, even when both are one value); with more inputs the
 * running sum would be read again where the first input comes back. */
static int add_in_place(const void *state, int k)
{
    return k == 0 && ((const sop_state *)state)->n_in == 2;
}

static const nnp_in_place_ext add_in_place_ext = {
    .struct_size = sizeof(nnp_in_place_ext),
    .inference_in_place = add_in_place,
};

static const void *add_extension(const char *name)
{
    const void *e = nnp_pu_extension(name, NNP_EXT_LAYOUT, &add_layout);
    e = e ? e : nnp_pu_extension(name, NNP_EXT_IN_PLACE, &add_in_place_ext);
    e = e ? e : nnp_pu_extension(name, NNP_EXT_ONNX_OPS, add_more_ops);
    e = e ? e : sop_extension(name);
    e = e ? e : nnp_pu_extension(name, NNP_EXT_BACKWARD_READS, &add_backward_reads);
    return e ? e : nnp_pu_extension(name, NNP_EXT_EPILOGUE, &add_epilogue);
}

/* ------------------------------------------------------------------ */
/* plugin table                                                        */
/* ------------------------------------------------------------------ */

#define SOP_KIND(NAME, DOC, PARAMS, NPARAMS, NMAX, PFX, OP, EXT)                           \
    {                                                                                    \
        NNP_PU_KIND_HEAD, .name = NAME, .doc = DOC, .params = PARAMS, .n_params = NPARAMS, \
        .onnx = {"", OP, 1, 23}, .n_inputs_min = NMAX > 1 ? 2 : 1, .n_inputs_max = NMAX, \
        .create = PFX##_create, .destroy = sop_destroy, .build = PFX##_build,            \
        .forward = PFX##_forward, .backward = PFX##_backward,                            \
        .regularization_loss = nnp_pu_no_regularization,                                 \
        .apply_constraints = nnp_pu_no_constraints, .to_onnx = PFX##_to_onnx,            \
        .from_onnx = PFX##_from_onnx, .onnx_load_weights = nnp_pu_no_onnx_weights,       \
        .extension = EXT,                                                                \
    }

static const nnp_kind flatten_kind =
    SOP_KIND("Flatten", "Keras Flatten: [batch, ...] -> [batch, n]", flatten_params, 1, 1,
             flatten, "Flatten", sop_extension);
static const nnp_kind reshape_kind =
    SOP_KIND("Reshape", "Keras Reshape: [batch, ...] -> [batch, target_shape...]",
             reshape_params, 1, 1, reshape, "Reshape", sop_extension);
static const nnp_kind permute_kind =
    SOP_KIND("Permute", "Keras Permute: reorders the non-batch axes", permute_params, 1, 1,
             permute, "Transpose", sop_extension);
static const nnp_kind dropout_kind =
    SOP_KIND("Dropout", "Keras Dropout: inverted dropout in training, identity in inference",
             dropout_params, 2, 1, dropout, "Dropout", dropout_extension);
static const nnp_kind add_kind =
    SOP_KIND("Add", "Keras Add: the sum of 2 or more inputs of equal shapes", add_params, 0, 64,
             add, "Add", add_extension);

static const nnp_kind *const kinds[] = {&flatten_kind, &reshape_kind, &permute_kind,
                                        &dropout_kind, &add_kind};

static const nnp_plugin plugin = NNP_PU_PLUGIN_INIT("shape_ops", "1.0.0", kinds);

NNP_EXPORT const nnp_plugin *nnp_plugin_entry(const nnp_host *host)
{
    /* it calls only the 1.0 host fields */
    return nnp_pu_accept_host(host, 0, &plugin);
}
