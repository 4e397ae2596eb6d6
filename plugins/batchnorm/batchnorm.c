/*
 * BatchNormalization layer plugin: Keras semantics (see DESIGN.md section 4)
 * on top of the kernels in kernels.c. Everything from the host comes through
 * the nnp_host table; this file allocates only in create/build.
 *
 * Defined behaviour where Keras has none worth copying:
 * - An empty batch (a zero-size dimension) in training leaves the moving
 *   statistics unchanged and adds nothing to the gradients; Keras would
 *   compute 0/0 and make the moving statistics NaN for good.
 * - A training backward uses the statistics its forward saved, found by the
 *   input's data pointer among BN_SLOTS slots (a layer may be applied to
 *   several inputs before their backwards); when none matches it
 *   recomputes them from x, which gives the same numbers at one more pass.
 * - Regularizer gradients are added on every backward call, as the ABI
 *   says: a layer applied k times in one step gets them k times, where
 *   Keras counts the penalty once.
 */
#include <nnplug/plugin_util.h>

#include "common/act.h"
#include "batchnorm.h"

#include <math.h>
#include <string.h>

#define INIT_ZEROS "{\"class_name\":\"Zeros\",\"config\":{}}"
#define INIT_ONES "{\"class_name\":\"Ones\",\"config\":{}}"

static const nnp_param_def bn_params[] = {
    {"axis", NNP_PARAM_INT, "-1", 0, 0, 0, NULL,
     "axis of the features (channels); negative counts from the end"},
    {"momentum", NNP_PARAM_FLOAT, "0.99", 0, 0, 0, NULL,
     "moving -= (moving - batch) * (1 - momentum), as Keras computes it"},
    {"epsilon", NNP_PARAM_FLOAT, "0.001", NNP_PARAM_HAS_MIN | NNP_PARAM_MIN_EXCLUSIVE, 0, 0,
     NULL, "small float added to the variance to avoid dividing by zero"},
    {"center", NNP_PARAM_BOOL, "true", 0, 0, 0, NULL,
     "add the offset beta; false: no beta weight at all"},
    {"scale", NNP_PARAM_BOOL, "true", 0, 0, 0, NULL,
     "multiply by gamma; false: no gamma weight at all"},
    {"beta_initializer", NNP_PARAM_INITIALIZER, INIT_ZEROS, 0, 0, 0, NULL,
     "initializer of beta"},
    {"gamma_initializer", NNP_PARAM_INITIALIZER, INIT_ONES, 0, 0, 0, NULL,
     "initializer of gamma"},
    {"moving_mean_initializer", NNP_PARAM_INITIALIZER, INIT_ZEROS, 0, 0, 0, NULL,
     "initializer of the moving mean"},
    {"moving_variance_initializer", NNP_PARAM_INITIALIZER, INIT_ONES, 0, 0, 0, NULL,
     "initializer of the moving variance"},
    {"beta_regularizer", NNP_PARAM_REGULARIZER, "null", NNP_PARAM_NULLABLE, 0, 0, NULL,
     "regularizer of beta"},
    {"gamma_regularizer", NNP_PARAM_REGULARIZER, "null", NNP_PARAM_NULLABLE, 0, 0, NULL,
     "regularizer of gamma"},
    {"beta_constraint", NNP_PARAM_CONSTRAINT, "null", NNP_PARAM_NULLABLE, 0, 0, NULL,
     "constraint on beta, applied after each optimizer step"},
    {"gamma_constraint", NNP_PARAM_CONSTRAINT, "null", NNP_PARAM_NULLABLE, 0, 0, NULL,
     "constraint on gamma, applied after each optimizer step"},
    {"synchronized", NNP_PARAM_BOOL, "false", 0, 0, 0, NULL,
     "Keras 3: batch statistics over every replica of a distributed run; in one process "
     "the same numbers"},
    /* tf.keras keys for features nnplug does not implement: accepted at
     * their defaults, so tf.keras's configs load, and refused otherwise */
    {"renorm", NNP_PARAM_BOOL, "false", NNP_PARAM_ONLY_DEFAULT, 0, 0, NULL,
     "tf.keras batch renormalization"},
    {"renorm_clipping", NNP_PARAM_STRING, "null", NNP_PARAM_NULLABLE | NNP_PARAM_ONLY_DEFAULT, 0,
     0, NULL, "tf.keras batch renormalization: clipping of r and d"},
    {"renorm_momentum", NNP_PARAM_FLOAT, "0.99", NNP_PARAM_ONLY_DEFAULT, 0, 0, NULL,
     "tf.keras batch renormalization: momentum of its moving statistics"},
    {"virtual_batch_size", NNP_PARAM_INT, "null", NNP_PARAM_NULLABLE | NNP_PARAM_ONLY_DEFAULT,
     0, 0, NULL, "tf.keras ghost batch normalization"},
    {"fused", NNP_PARAM_BOOL, "null", NNP_PARAM_NULLABLE | NNP_PARAM_ONLY_DEFAULT, 0, 0, NULL,
     "tf.keras: use the fused kernel"},
};

const char *bn_name(const bn_state *s) { return nnp_pu_name(s->host, s->cfg); }

/* ------------------------------------------------------------------ */
/* create / destroy                                                    */
/* ------------------------------------------------------------------ */

static void free_built(bn_state *s)
{
    const nnp_host *h = s->host;
    nnp_tensor *ts[] = {&s->gamma, &s->beta, &s->moving_mean, &s->moving_var,
                        &s->dgamma, &s->dbeta};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        h->tensor_free(ts[i]);
    h->aligned_free(s->mem);
    s->mem = NULL;
    memset(s->slots, 0, sizeof s->slots);
    s->n_weights = 0;
    s->built = 0;
}

static nnp_status bn_create(const nnp_host *host, const nnp_config *cfg, void **state,
                            nnp_error *err)
{
    bn_state *s = host->aligned_alloc(sizeof *s);
    if (!s)
        return host->error_set(err, NNP_ERR_NOMEM, "BatchNormalization: out of memory");
    s->host = host;
    s->k = bn_kernels_select();
    s->cfg = cfg;
    s->axis_cfg = host->config_int(cfg, "axis");
    s->momentum = host->config_float(cfg, "momentum");
    s->epsilon = host->config_float(cfg, "epsilon");
    s->center = host->config_bool(cfg, "center");
    s->scale = host->config_bool(cfg, "scale");
    s->synchronized = host->config_bool(cfg, "synchronized");
    s->gamma_reg = host->config_regularizer(cfg, "gamma_regularizer");
    s->beta_reg = host->config_regularizer(cfg, "beta_regularizer");
    s->gamma_con = host->config_constraint(cfg, "gamma_constraint");
    s->beta_con = host->config_constraint(cfg, "beta_constraint");
    /* the schema already bounds epsilon; this also rejects NaN */
    if (!(s->epsilon > 0.0)) {
        nnp_status st = host->error_set(err, NNP_ERR_INVALID,
                                        "BatchNormalization '%s': epsilon must be > 0 (got %g)",
                                        bn_name(s), s->epsilon);
        host->aligned_free(s);
        return st;
    }
    *state = s;
    return NNP_OK;
}

static void bn_destroy(void *state)
{
    bn_state *s = state;
    if (!s)
        return;
    free_built(s);
    s->host->aligned_free(s);
}

/* ------------------------------------------------------------------ */
/* build                                                               */
/* ------------------------------------------------------------------ */

static nnp_status alloc_weight(bn_state *s, nnp_tensor *t, const char *init_key,
                               nnp_error *err)
{
    nnp_shape sh = {1, {s->channels}};
    /* each weight of each layer draws from its own reproducible stream */
    return nnp_pu_weight_alloc(s->host, s->cfg, "BatchNormalization", t, &sh, init_key,
                               NNP_PU_SEED_PER_WEIGHT, err);
}

/* Scratch and statistic slots in one aligned block; none of it depends on
 * the batch size, so forward/backward never allocate. */
static nnp_status alloc_scratch(bn_state *s, nnp_error *err)
{
    const int64_t C = s->channels;
    const size_t c = (size_t)(C > 0 ? C : 1);
    const size_t cpad = (c + 15) / 16 * 16; /* keep every array 64-byte aligned */
    const size_t n_slot = BN_SLOTS + 1;
    const size_t grouped = 3 * (2 * c + 1);
    size_t bytes = nnp_bn_partials_len(C) * sizeof(double) + 3 * cpad * sizeof(float) +
                   n_slot * cpad * (sizeof(float) + 2 * sizeof(double)) + grouped * sizeof(double);
    char *p = s->host->aligned_alloc(bytes);
    if (!p)
        return s->host->error_set(err, NNP_ERR_NOMEM,
                                  "BatchNormalization '%s': cannot allocate %zu bytes of scratch "
                                  "for %lld channels",
                                  bn_name(s), bytes, (long long)C);
    s->mem = p;
    s->scratch.partials = (double *)p;
    p += nnp_bn_partials_len(C) * sizeof(double);
    s->scratch.ca = (float *)p;
    s->scratch.cb = (float *)p + cpad;
    s->scratch.cc = (float *)p + 2 * cpad;
    p += 3 * cpad * sizeof(float);
    for (size_t i = 0; i < n_slot; i++) {
        s->slots[i].st.mean = (double *)p;
        s->slots[i].st.invstd = (double *)p + cpad;
        s->slots[i].st.shift = (float *)(p + 2 * cpad * sizeof(double));
        p += cpad * (sizeof(float) + 2 * sizeof(double));
        s->slots[i].key = NULL;
    }
    s->grouped = (double *)p;
    return NNP_OK;
}

static nnp_status bn_build(void *state, int n_in, const nnp_shape *in, nnp_shape *out,
                           nnp_error *err)
{
    bn_state *s = state;
    const nnp_host *h = s->host;
    char buf[160];
    if (n_in != 1)
        return h->error_set(err, NNP_ERR_SHAPE,
                            "BatchNormalization '%s': expects 1 input, got %d", bn_name(s), n_in);
    const int rank = in[0].rank;
    if (rank < 2 || rank > 5)
        return h->error_set(err, NNP_ERR_SHAPE,
                            "BatchNormalization '%s': input of rank %d (shape %s) is not "
                            "supported; rank must be 2 to 5",
                            bn_name(s), rank, nnp_pu_shape_str(&in[0], buf, sizeof buf));
    int64_t axis = s->axis_cfg < 0 ? s->axis_cfg + rank : s->axis_cfg;
    if (axis < 0 || axis >= rank)
        return h->error_set(err, NNP_ERR_INVALID,
                            "BatchNormalization '%s': axis %lld is out of range for an input "
                            "of rank %d (shape %s); valid axes are %d..%d",
                            bn_name(s), (long long)s->axis_cfg, rank,
                            nnp_pu_shape_str(&in[0], buf, sizeof buf), -rank, rank - 1);
    const int64_t C = in[0].dims[axis];
    if (C < 0)
        return h->error_set(err, NNP_ERR_SHAPE,
                            "BatchNormalization '%s': axis %lld of input shape %s must have a "
                            "known size",
                            bn_name(s), (long long)s->axis_cfg,
                            nnp_pu_shape_str(&in[0], buf, sizeof buf));
    /* bound C so that every scratch size computation stays far from overflow */
    if (C > ((int64_t)1 << 40))
        return h->error_set(err, NNP_ERR_OVERFLOW,
                            "BatchNormalization '%s': %lld channels is too many", bn_name(s),
                            (long long)C);

    if (!s->built || s->channels != C) {
        free_built(s);
        s->channels = C;
        nnp_status st = NNP_OK;
        if (s->scale)
            st = alloc_weight(s, &s->gamma, "gamma_initializer", err);
        if (st == NNP_OK && s->center)
            st = alloc_weight(s, &s->beta, "beta_initializer", err);
        if (st == NNP_OK)
            st = alloc_weight(s, &s->moving_mean, "moving_mean_initializer", err);
        if (st == NNP_OK)
            st = alloc_weight(s, &s->moving_var, "moving_variance_initializer", err);
        if (st == NNP_OK && s->scale)
            st = alloc_weight(s, &s->dgamma, NULL, err);
        if (st == NNP_OK && s->center)
            st = alloc_weight(s, &s->dbeta, NULL, err);
        if (st == NNP_OK)
            st = alloc_scratch(s, err);
        if (st != NNP_OK) {
            free_built(s);
            return st;
        }
        /* Keras order: gamma, beta, moving_mean, moving_variance */
        int n = 0;
        if (s->scale)
            s->weights[n++] = (nnp_weight){"gamma", &s->gamma, &s->dgamma, NNP_WEIGHT_TRAINABLE,
                                           s->gamma_reg, s->gamma_con};
        if (s->center)
            s->weights[n++] = (nnp_weight){"beta", &s->beta, &s->dbeta, NNP_WEIGHT_TRAINABLE,
                                           s->beta_reg, s->beta_con};
        s->weights[n++] = (nnp_weight){"moving_mean", &s->moving_mean, NULL, 0, NULL, NULL};
        s->weights[n++] = (nnp_weight){"moving_variance", &s->moving_var, NULL, 0, NULL, NULL};
        s->n_weights = n;
        s->built = 1;
    }
    s->rank = rank;
    s->axis = (int)axis;
    s->in_shape = in[0];
    *out = in[0];
    return NNP_OK;
}

static int bn_n_weights(const void *state) { return ((const bn_state *)state)->n_weights; }

static const nnp_weight *bn_weight(const void *state, int i)
{
    const bn_state *s = state;
    return i >= 0 && i < s->n_weights ? &s->weights[i] : NULL;
}

/* ------------------------------------------------------------------ */
/* forward / backward                                                  */
/* ------------------------------------------------------------------ */

static nnp_status check_tensor(const bn_state *s, const nnp_tensor *t, const char *what,
                               const nnp_shape *want, nnp_error *err)
{
    const nnp_host *h = s->host;
    char b1[160], b2[160];
    if (!t)
        return h->error_set(err, NNP_ERR_INVALID, "BatchNormalization '%s': %s is missing",
                            bn_name(s), what);
    if (t->dtype != NNP_F32)
        return h->error_set(err, NNP_ERR_INVALID,
                            "BatchNormalization '%s': %s must be float32 (dtype %d)", bn_name(s),
                            what, (int)t->dtype);
    if (want) {
        if (!nnp_pu_same_shape(&t->shape, want))
            return h->error_set(err, NNP_ERR_SHAPE,
                                "BatchNormalization '%s': %s has shape %s, expected %s",
                                bn_name(s), what, nnp_pu_shape_str(&t->shape, b1, sizeof b1),
                                nnp_pu_shape_str(want, b2, sizeof b2));
    } else if (t->shape.rank != s->rank || t->shape.dims[s->axis] != s->channels) {
        return h->error_set(err, NNP_ERR_SHAPE,
                            "BatchNormalization '%s': %s has shape %s, but the layer was built "
                            "for rank %d with %lld channels on axis %d",
                            bn_name(s), what, nnp_pu_shape_str(&t->shape, b1, sizeof b1), s->rank,
                            (long long)s->channels, s->axis);
    }
    int64_t n;
    nnp_status st = h->shape_numel(&t->shape, &n, err);
    if (st != NNP_OK)
        return st;
    if (n > 0 && !t->data)
        return h->error_set(err, NNP_ERR_INVALID, "BatchNormalization '%s': %s has no data",
                            bn_name(s), what);
    return NNP_OK;
}

static nnp_bn_args make_args(const bn_state *s, const nnp_shape *shape)
{
    nnp_bn_args a = {
        .dims = nnp_bn_dims_of(shape->dims, shape->rank, s->axis),
        .epsilon = s->epsilon,
        .momentum = s->momentum,
        .gamma = s->scale ? (const float *)s->gamma.data : NULL,
        .beta = s->center ? (const float *)s->beta.data : NULL,
        .nthreads = s->host->num_threads ? s->host->num_threads() : 0,
    };
    return a;
}

static nnp_status check_call(const bn_state *s, int n_in, nnp_error *err)
{
    nnp_status st = nnp_pu_check_built(s->host, s->built, "BatchNormalization", bn_name(s), err);
    if (st == NNP_OK)
        st = nnp_pu_check_n_inputs(s->host, n_in, 1, "BatchNormalization", bn_name(s), err);
    return st;
}

static nnp_status bn_forward(void *state, const nnp_tensor *const *in, int n_in,
                             nnp_tensor *out, nnp_mode mode, nnp_error *err)
{
    bn_state *s = state;
    nnp_status st = check_call(s, n_in, err);
    if (st == NNP_OK)
        st = check_tensor(s, in[0], "input", NULL, err);
    if (st == NNP_OK)
        st = check_tensor(s, out, "output", &in[0]->shape, err);
    if (st != NNP_OK)
        return st;
    const nnp_tensor *x = in[0];
    nnp_bn_args a = make_args(s, &x->shape);
    a.relu = s->train_relu;
    if (mode != NNP_MODE_TRAIN) {
        s->k->forward_infer(&a, x->data, out->data, s->moving_mean.data, s->moving_var.data,
                             &s->scratch);
        return NNP_OK;
    }
    /* Keep this call's statistics for its backward: the slot of the same
     * input if any (a reused buffer holds the newest data), else the least
     * recently filled one. */
    bn_slot *slot = NULL;
    for (int i = 0; i < BN_SLOTS && !slot; i++)
        if (s->slots[i].key == x->data)
            slot = &s->slots[i];
    for (int i = 0; i < BN_SLOTS && !slot; i++)
        if (!s->slots[i].key)
            slot = &s->slots[i];
    if (!slot) {
        slot = &s->slots[0];
        for (int i = 1; i < BN_SLOTS; i++)
            if (s->slots[i].stamp < slot->stamp)
                slot = &s->slots[i];
    }
    slot->key = x->data;
    slot->shape = x->shape;
    slot->stamp = ++s->clock;
    if (bn_grouped_chunks(s, &a) > 0)
        return bn_grouped_forward(s, &a, x->data, out->data, s->moving_mean.data,
                                  s->moving_var.data, &slot->st, err);
    s->k->forward_train(&a, x->data, out->data, s->moving_mean.data, s->moving_var.data,
                         &slot->st, &s->scratch);
    return NNP_OK;
}

static nnp_status bn_backward(void *state, const nnp_tensor *const *in, int n_in,
                              const nnp_tensor *out, const nnp_tensor *grad_out,
                              nnp_tensor *const *grad_in, nnp_mode mode, nnp_error *err)
{
    bn_state *s = state;
    /* the output is not needed (everything follows from x) but for a
       planned ReLU's mask */
    nnp_status st = check_call(s, n_in, err);
    if (st == NNP_OK)
        st = check_tensor(s, in[0], "input", NULL, err);
    if (st == NNP_OK)
        st = check_tensor(s, grad_out, "output gradient", &in[0]->shape, err);
    nnp_tensor *gx = grad_in ? grad_in[0] : NULL;
    if (st == NNP_OK && gx)
        st = check_tensor(s, gx, "input gradient", &in[0]->shape, err);
    if (st != NNP_OK)
        return st;
    const nnp_tensor *x = in[0];
    nnp_bn_args a = make_args(s, &x->shape);
    float *dx = gx ? gx->data : NULL;
    float *dgamma = s->scale ? s->dgamma.data : NULL;
    float *dbeta = s->center ? s->dbeta.data : NULL;

    const int relu = mode == NNP_MODE_TRAIN && s->train_relu;
    if (relu) {
        /* through the ReLU first: dL/dy = r > 0 ? dL/dr : 0, over dL/dr
           (plan_train_relu lets the kind write there) */
        st = check_tensor(s, out, "output", &in[0]->shape, err);
        if (st != NNP_OK)
            return st;
    }
    if (mode != NNP_MODE_TRAIN) {
        s->k->backward_infer(&a, x->data, grad_out->data, dx, s->moving_mean.data,
                              s->moving_var.data, dgamma, dbeta, &s->scratch);
    } else {
        const nnp_bn_saved *saved = NULL;
        for (int i = 0; i < BN_SLOTS && !saved; i++)
            if (s->slots[i].key && s->slots[i].key == x->data &&
                nnp_pu_same_shape(&s->slots[i].shape, &x->shape))
                saved = &s->slots[i].st;
        const int grouped = bn_grouped_chunks(s, &a) > 0;
        if (relu && saved && !grouped) {
            /* the mask in the backward's own passes, from this forward's
               statistics */
            a.relu = 1;
            s->k->backward_train_relu(&a, x->data, out->data, grad_out->data, dx, saved, dgamma,
                                      dbeta, &s->scratch);
            return NNP_OK;
        }
        if (relu) { /* the ReLU layer's own backward, in place */
            act_fn fn;
            act_parse("relu", &fn);
            act_backward(&fn, NULL, out->data, grad_out->data, grad_out->data,
                         nnp_pu_numel(&out->shape), 1, 1);
        }
        if (!saved) {
            /* not seen by a training forward (or evicted): recompute the
             * batch statistics; moving statistics are left alone */
            saved = &s->slots[BN_SLOTS].st;
            if (grouped)
                st = bn_grouped_forward(s, &a, x->data, NULL, NULL, NULL, &s->slots[BN_SLOTS].st,
                                        err);
            else
                s->k->forward_train(&a, x->data, NULL, NULL, NULL, saved, &s->scratch);
        }
        if (grouped)
            return st ? st : bn_grouped_backward(s, &a, x->data, grad_out->data, dx, saved,
                                                 dgamma, dbeta, err);
        s->k->backward_train(&a, x->data, grad_out->data, dx, saved, dgamma, dbeta,
                              &s->scratch);
    }
    return NNP_OK;
}

/* ------------------------------------------------------------------ */
/* plugin table                                                        */
/* ------------------------------------------------------------------ */

/* Inference is y = x * scale[c] + shift[c] over the channel axis: a layer
 * before it may fold that in (NNP_EXT_EPILOGUE). */
static int bn_affine_axis(const void *state, int rank)
{
    const bn_state *s = state;
    return s->built && s->rank == rank ? s->axis : -1;
}

static void bn_inference_affine(const void *state, float *scale, float *shift)
{
    const bn_state *s = state;
    const float *g = s->scale ? s->gamma.data : NULL, *b = s->center ? s->beta.data : NULL;
    const float *mm = s->moving_mean.data, *mv = s->moving_var.data;
    for (int64_t c = 0; c < s->channels; c++) { /* as nnp_bn_forward_infer computes them */
        const double sc = (g ? (double)g[c] : 1.0) / sqrt((double)mv[c] + s->epsilon);
        scale[c] = (float)sc;
        shift[c] = (float)((b ? (double)b[c] : 0.0) - (double)mm[c] * sc);
    }
}

/* Training steps may run a following ReLU in this layer (1.7 hosts): the
 * forward's elementwise pass writes max(y, 0), saving the ReLU's read and
 * write of every value; the backward masks the gradient first. */
static nnp_status bn_plan_train_relu(void *state, int relu, nnp_error *err)
{
    (void)err;
    ((bn_state *)state)->train_relu = relu != 0;
    return NNP_OK;
}

static const nnp_epilogue_ext bn_epilogue = {
    .struct_size = sizeof(nnp_epilogue_ext),
    .affine_axis = bn_affine_axis,
    .inference_affine = bn_inference_affine,
    .plan_train_relu = bn_plan_train_relu,
};

/* The backward reads x, and the output only for a planned ReLU's mask
 * (bn_backward). */
static uint32_t bn_reads(const void *state)
{
    return NNP_READS_INPUTS | (((const bn_state *)state)->train_relu ? NNP_READS_OUTPUT : 0u);
}

static const nnp_backward_reads_ext bn_backward_reads = {
    .struct_size = sizeof(nnp_backward_reads_ext),
    .reads = bn_reads,
};

/* The inference forward is y = x * scale + shift, elementwise: it may
 * write over its input. */
static const nnp_in_place_ext bn_in_place_ext = {
    .struct_size = sizeof(nnp_in_place_ext),
    .inference_in_place = nnp_pu_in_place_input0,
};

static const void *bn_extensions(const char *name)
{
    const void *e = bn_extension(name);
    e = e ? e : nnp_pu_extension(name, NNP_EXT_IN_PLACE, &bn_in_place_ext);
    e = e ? e : nnp_pu_extension(name, NNP_EXT_BACKWARD_READS, &bn_backward_reads);
    return e ? e : nnp_pu_extension(name, NNP_EXT_EPILOGUE, &bn_epilogue);
}

static const nnp_kind bn_kind = {
    NNP_PU_KIND_HEAD,
    .name = "BatchNormalization",
    .doc = "Keras BatchNormalization: normalize with batch statistics (training) or moving "
           "statistics (inference), then scale by gamma and shift by beta",
    .params = bn_params,
    .n_params = NNP_PU_COUNT(bn_params),
    /* BatchNormalization last changed in opset 15; opsets 16 and 17 (the
     * newest the host reads and writes) still use that definition */
    .onnx = {"", "BatchNormalization", 1, 17},
    .n_inputs_min = 1,
    .n_inputs_max = 1,
    .flags = 0,
    .create = bn_create,
    .destroy = bn_destroy,
    .build = bn_build,
    .n_weights = bn_n_weights,
    .weight = bn_weight,
    .forward = bn_forward,
    .backward = bn_backward,
    .to_onnx = bn_to_onnx,
    .from_onnx = bn_from_onnx,
    .onnx_load_weights = bn_onnx_load_weights,
    .extension = bn_extensions,
};

static const nnp_kind *const bn_kinds[] = {&bn_kind};

static const nnp_plugin bn_plugin = NNP_PU_PLUGIN_INIT("batchnorm", "1.0.0", bn_kinds);

NNP_EXPORT const nnp_plugin *nnp_plugin_entry(const nnp_host *host)
{
    /* it calls host fields added in 1.1 */
    return nnp_pu_accept_host(host, 1, &bn_plugin);
}
