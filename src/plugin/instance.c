/* Layer instances: a kind's opaque state with its config. */
#include "plugin/instance_internal.h"
#include "services/config_internal.h"
#include "plugin/host_internal.h"
#include "nnplug/services.h"
#include "nnplug/status.h"
#include "nnplug/tensor.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

struct nnp_layer {
    const nnp_kind *kind;
    nnp_config *cfg;
    void *state;
    nnp_weight *weights;   /* copies, TRAINABLE cleared when not trainable */
    int n_weights;
    int built;
    int grads_summed;      /* the last backward reduced over the process group */
};

nnp_status nnp_layer_new_from_config(const nnp_registry *reg, nnp_config *cfg,
                                     nnp_layer **out, nnp_error *err)
{
    *out = NULL;
    nnp_layer *l = calloc(1, sizeof *l);
    if (!l) {
        nnp_config_free(cfg);
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    }
    l->kind = nnp_config_kind(cfg);
    l->cfg = cfg;
    if (reg)
        nnpi_config_set_registry(cfg, reg);
    nnp_status st = l->kind->create(nnp_host_services(), cfg, &l->state, err);
    if (st) {
        /* a failed create owns nothing the host may destroy (plugin.h) */
        l->state = NULL;
        nnp_error_prefix(err, "layer '%s' (%s)", nnp_config_name(cfg), l->kind->name);
        nnp_layer_free(l);
        return st;
    }
    *out = l;
    return NNP_OK;
}

nnp_status nnp_layer_new(const nnp_registry *reg, const char *kind, const char *config_json,
                         nnp_layer **out, nnp_error *err)
{
    *out = NULL;
    const nnp_kind *k = nnp_registry_find(reg, kind);
    if (!k) {
        char *names = nnp_registry_kind_names(reg);
        nnp_status st = nnp_error_set(err, NNP_ERR_NOT_FOUND,
                                      "no plugin provides layer kind '%s' (loaded: %s)", kind,
                                      names && names[0] ? names : "none");
        free(names);
        return st;
    }
    nnp_config *cfg;
    nnp_status st = nnp_config_from_json(k, config_json, &cfg, err);
    if (st)
        return st;
    return nnp_layer_new_from_config(reg, cfg, out, err);
}

nnp_status nnpi_layer_create_nested(const nnp_config *outer, const char *key, nnp_layer **out,
                                    nnp_error *err)
{
    *out = NULL;
    const char *text = nnp_config_layer_json(outer, key);
    const nnp_registry *reg = nnpi_config_registry(outer);
    if (!text)
        return nnp_error_set(err, NNP_ERR_INVALID, "layer '%s': parameter '%s' holds no layer",
                             nnp_config_name(outer), key);
    if (!reg)
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "layer '%s': no registry to resolve the wrapped layer",
                             nnp_config_name(outer));
    json_t *j = json_loads(text, 0, NULL);
    const char *cls = json_string_value(json_object_get(j, "class_name"));
    const json_t *cj = json_object_get(j, "config");
    nnp_status st;
    const nnp_kind *k = cls ? nnp_registry_find(reg, cls) : NULL;
    if (!k) {
        char *names = nnp_registry_kind_names(reg);
        st = nnp_error_set(err, NNP_ERR_NOT_FOUND,
                           "layer '%s': wrapped layer kind '%s' is not loaded (loaded: %s)",
                           nnp_config_name(outer), cls ? cls : "?", names ? names : "none");
        free(names);
    } else {
        nnp_config *cfg;
        json_t *empty = json_object();
        st = nnpi_config_from_jsonv(k, cj ? cj : empty, &cfg, err);
        json_decref(empty);
        if (st == NNP_OK) {
            if (nnp_config_seed(outer) && !cj)
                nnp_config_set_seed(cfg, nnp_config_seed(outer));
            st = nnp_layer_new_from_config(reg, cfg, out, err);
        }
    }
    json_decref(j);
    return st;
}

void nnp_layer_free(nnp_layer *l)
{
    if (!l)
        return;
    if (l->state)
        l->kind->destroy(l->state);
    nnp_config_free(l->cfg);
    free(l->weights);
    free(l);
}

const nnp_kind *nnp_layer_kind_of(const nnp_layer *l) { return l->kind; }
const char *nnpi_layer_kind_name(const nnp_layer *l) { return l->kind->name; }
const nnp_config *nnp_layer_config(const nnp_layer *l) { return l->cfg; }
const char *nnp_layer_name(const nnp_layer *l) { return nnp_config_name(l->cfg); }
int nnp_layer_trainable(const nnp_layer *l) { return nnp_config_trainable(l->cfg); }

/* Copies of the kind's weight entries. The array is reused across builds
 * so that pointers handed out (optimizer slots) stay valid. */
static nnp_status refresh_weights(nnp_layer *l, nnp_error *err)
{
    int n = l->kind->n_weights ? l->kind->n_weights(l->state) : 0;
    if (n != l->n_weights || !l->weights) {
        nnp_weight *w = realloc(l->weights, sizeof *w * (size_t)(n > 0 ? n : 1));
        if (!w)
            return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
        l->weights = w;
        l->n_weights = n;
    }
    for (int i = 0; i < n; i++) {
        l->weights[i] = *l->kind->weight(l->state, i);
        if (!nnp_config_trainable(l->cfg))
            l->weights[i].flags &= ~NNP_WEIGHT_TRAINABLE;
    }
    return NNP_OK;
}

nnp_status nnp_layer_build(nnp_layer *l, int n_in, const nnp_shape *in, nnp_shape *out,
                           nnp_error *err)
{
    const nnp_kind *k = l->kind;
    if (n_in < k->n_inputs_min || n_in > k->n_inputs_max)
        return nnp_error_set(err, NNP_ERR_INVALID, "layer '%s' (%s) takes %d..%d inputs, got %d",
                             nnp_layer_name(l), k->name, k->n_inputs_min, k->n_inputs_max, n_in);
    memset(out, 0, sizeof *out);
    /* a kind's allocation the budget refused is the budget's error */
    const unsigned long refusals = nnp_memory_refusals();
    nnp_status st = nnp_memory_limit_status(k->build(l->state, n_in, in, out, err), refusals, err);
    if (st)
        return nnp_error_prefix(err, "layer '%s' (%s)", nnp_layer_name(l), k->name);
    l->built = 1;
    return refresh_weights(l, err);
}

static nnp_status check_built(const nnp_layer *l, nnp_error *err)
{
    if (!l->built)
        return nnp_error_set(err, NNP_ERR_INVALID, "layer '%s' (%s) is used before build",
                             nnp_layer_name(l), l->kind->name);
    return NNP_OK;
}

nnp_status nnp_layer_forward(nnp_layer *l, const nnp_tensor *const *in, int n_in,
                             nnp_tensor *out, nnp_mode mode, nnp_error *err)
{
    nnp_status st = check_built(l, err);
    if (st)
        return st;
    if (!nnp_config_trainable(l->cfg))
        mode = NNP_MODE_INFER;
    st = l->kind->forward(l->state, in, n_in, out, mode, err);
    if (st)
        nnp_error_prefix(err, "layer '%s' (%s)", nnp_layer_name(l), l->kind->name);
    return st;
}

nnp_status nnp_layer_backward(nnp_layer *l, const nnp_tensor *const *in, int n_in,
                              const nnp_tensor *out, const nnp_tensor *grad_out,
                              nnp_tensor *const *grad_in, nnp_mode mode, nnp_error *err)
{
    nnp_status st = check_built(l, err);
    if (st)
        return st;
    if (!l->kind->backward)
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "layer '%s' (%s) has no backward pass",
                             nnp_layer_name(l), l->kind->name);
    if (!nnp_config_trainable(l->cfg))
        mode = NNP_MODE_INFER;
    unsigned long before = nnpi_batch_reductions();
    st = l->kind->backward(l->state, in, n_in, out, grad_out, grad_in, mode, err);
    l->grads_summed = nnpi_batch_reductions() != before;
    if (st)
        nnp_error_prefix(err, "layer '%s' (%s)", nnp_layer_name(l), l->kind->name);
    return st;
}

int nnpi_layer_grads_summed(const nnp_layer *l) { return l->grads_summed; }

int nnp_layer_n_weights(const nnp_layer *l) { return l->n_weights; }

const nnp_weight *nnp_layer_weight(const nnp_layer *l, int i)
{
    return (i >= 0 && i < l->n_weights) ? &l->weights[i] : NULL;
}

const nnp_weight *nnp_layer_weight_by_name(const nnp_layer *l, const char *name)
{
    for (int i = 0; i < l->n_weights; i++)
        if (strcmp(l->weights[i].name, name) == 0)
            return &l->weights[i];
    return NULL;
}

void nnp_layer_zero_grad(nnp_layer *l)
{
    enum { PART = 1 << 20 }; /* bytes a thread clears at a time */
    for (int i = 0; i < l->n_weights; i++) {
        const nnp_tensor *g = l->weights[i].grad;
        if (!g || !g->data)
            continue;
        const size_t parts = (g->nbytes + PART - 1) / PART;
#pragma omp parallel for if (parts > 1) schedule(static)
        for (size_t k = 0; k < parts; k++) {
            const size_t b = k * PART, e = b + PART < g->nbytes ? b + PART : g->nbytes;
            memset((char *)g->data + b, 0, e - b);
        }
    }
}

/* Keras counts the penalties of trainable weights only. */
double nnp_layer_regularization_loss(const nnp_layer *l)
{
    if (!l->built || !nnp_config_trainable(l->cfg))
        return 0.0;
    double loss = l->kind->regularization_loss ? l->kind->regularization_loss(l->state) : 0.0;
    for (int i = 0; i < l->n_weights; i++) {
        const nnp_weight *w = &l->weights[i];
        if (w->regularizer && (w->flags & NNP_WEIGHT_TRAINABLE))
            loss += nnp_regularizer_loss(w->regularizer, w->value->data, nnp_tensor_numel(w->value));
    }
    return loss;
}

void nnp_layer_add_regularization_grads(nnp_layer *l)
{
    if (!l->built)
        return;
    for (int i = 0; i < l->n_weights; i++) {
        const nnp_weight *w = &l->weights[i];
        if (w->regularizer && w->grad && (w->flags & NNP_WEIGHT_TRAINABLE))
            nnp_regularizer_grad_add(w->regularizer, w->value->data, w->grad->data,
                                     nnp_tensor_numel(w->value));
    }
}

/* The kind's NNP_EXT_EPILOGUE when it has `field` (a built layer only). */
#define EPI_HAS(l, field)                                                                  \
    ((l)->built && (l)->kind->extension && epi_of(l) && NNP_HAS_FIELD(epi_of(l), nnp_epilogue_ext, field) && \
     epi_of(l)->field)

static const nnp_epilogue_ext *epi_of(const nnp_layer *l)
{
    return (const nnp_epilogue_ext *)l->kind->extension(NNP_EXT_EPILOGUE);
}

int nnpi_layer_affine_axis(const nnp_layer *l, int rank)
{
    return EPI_HAS(l, affine_axis) && EPI_HAS(l, inference_affine)
               ? epi_of(l)->affine_axis(l->state, rank)
               : -1;
}

void nnpi_layer_inference_affine(const nnp_layer *l, float *scale, float *shift)
{
    epi_of(l)->inference_affine(l->state, scale, shift);
}

uint32_t nnpi_layer_backward_reads(const nnp_layer *l)
{
    const nnp_backward_reads_ext *e =
        l->kind->extension
            ? (const nnp_backward_reads_ext *)l->kind->extension(NNP_EXT_BACKWARD_READS)
            : NULL;
    if (!e || !NNP_HAS_FIELD(e, nnp_backward_reads_ext, reads) || !e->reads || !l->built)
        return NNP_READS_INPUTS | NNP_READS_OUTPUT;
    return e->reads(l->state) & (NNP_READS_INPUTS | NNP_READS_OUTPUT);
}

/* The kind's NNP_EXT_LAYOUT when it has `field` set (a built layer only). */
#define LAYOUT_HAS(l, field)                                                                \
    ((l)->built && (l)->kind->extension && layout_of(l) &&                                 \
     NNP_HAS_FIELD(layout_of(l), nnp_layout_ext, field) && layout_of(l)->field)

static const nnp_layout_ext *layout_of(const nnp_layer *l)
{
    return (const nnp_layout_ext *)l->kind->extension(NNP_EXT_LAYOUT);
}

uint32_t nnpi_layer_inference_layouts(const nnp_layer *l, int k)
{
    if (!LAYOUT_HAS(l, inference_layouts))
        return 0;
    return layout_of(l)->inference_layouts(l->state, k) & (NNP_LAYOUT_NHWC | NNP_LAYOUT_TIED);
}

nnp_status nnp_layer_plan_layouts(nnp_layer *l, const uint32_t *in, int n_in, uint32_t out,
                                  nnp_error *err)
{
    return LAYOUT_HAS(l, plan_layouts) ? layout_of(l)->plan_layouts(l->state, in, n_in, out, err)
                                       : NNP_OK;
}

int nnpi_layer_is_relu(const nnp_layer *l)
{
    return EPI_HAS(l, is_relu) && epi_of(l)->is_relu(l->state);
}

int nnpi_layer_is_sum(const nnp_layer *l, int n_inputs)
{
    return EPI_HAS(l, is_sum) && epi_of(l)->is_sum(l->state, n_inputs);
}

nnp_status nnpi_layer_plan_epilogue(nnp_layer *l, int axis, int relu, int sum, nnp_error *err)
{
    /* an affine needs set_affine too */
    if ((sum ? !EPI_HAS(l, plan_epilogue_sum) : !EPI_HAS(l, plan_epilogue)) ||
        (axis >= 0 && !EPI_HAS(l, set_affine)))
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "layer '%s' (%s) has no epilogue%s",
                             nnp_layer_name(l), l->kind->name, sum ? " with a sum" : "");
    if (sum)
        return epi_of(l)->plan_epilogue_sum(l->state, axis, relu, 1, err);
    return epi_of(l)->plan_epilogue(l->state, axis, relu, err);
}

int nnpi_layer_store_grads(nnp_layer *l)
{
    const nnp_grad_store_ext *e =
        l->built && l->kind->extension
            ? (const nnp_grad_store_ext *)l->kind->extension(NNP_EXT_GRAD_STORE)
            : NULL;
    if (!e || !NNP_HAS_FIELD(e, nnp_grad_store_ext, store_next_backward) ||
        !e->store_next_backward)
        return 0;
    e->store_next_backward(l->state);
    return 1;
}

int nnpi_layer_in_place(const nnp_layer *l, int k)
{
    const nnp_in_place_ext *e =
        l->built && l->kind->extension
            ? (const nnp_in_place_ext *)l->kind->extension(NNP_EXT_IN_PLACE)
            : NULL;
    return e && NNP_HAS_FIELD(e, nnp_in_place_ext, inference_in_place) &&
           e->inference_in_place && e->inference_in_place(l->state, k);
}

nnp_status nnpi_layer_plan_train_relu(nnp_layer *l, int relu, nnp_error *err)
{
    if (!EPI_HAS(l, plan_train_relu))
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "layer '%s' (%s) runs no ReLU in training",
                             nnp_layer_name(l), l->kind->name);
    return epi_of(l)->plan_train_relu(l->state, relu, err);
}

void nnpi_layer_set_affine(nnp_layer *l, const float *scale, const float *shift)
{
    epi_of(l)->set_affine(l->state, scale, shift);
}

nnp_status nnpi_layer_to_onnx_affine(const nnp_layer *l, nnp_onnx_writer *w,
                                     const char *const *inputs, int n_inputs, const char *output,
                                     int axis, const float *scale, const float *shift,
                                     nnp_error *err)
{
    if (!EPI_HAS(l, to_onnx_affine))
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "layer '%s' (%s) folds no affine",
                             nnp_layer_name(l), l->kind->name);
    return epi_of(l)->to_onnx_affine(l->state, w, inputs, n_inputs, output, axis, scale, shift,
                                     err);
}

void nnp_layer_weights_changed(nnp_layer *l)
{
    if (l && l->built && l->kind->weights_changed)
        l->kind->weights_changed(l->state);
}

nnp_status nnp_layer_apply_constraints(nnp_layer *l, nnp_error *err)
{
    if (!l->built)
        return NNP_OK;
    nnp_status st = NNP_OK;
    for (int i = 0; i < l->n_weights && !st; i++) {
        const nnp_weight *w = &l->weights[i];
        if (w->constraint && (w->flags & NNP_WEIGHT_TRAINABLE))
            st = nnp_constraint_apply(w->constraint, w->value, err);
    }
    if (!st && l->kind->apply_constraints)
        st = l->kind->apply_constraints(l->state, err);
    /* after each optimizer step: the values changed */
    nnp_layer_weights_changed(l);
    if (st)
        nnp_error_prefix(err, "layer '%s' (%s)", nnp_layer_name(l), l->kind->name);
    return st;
}

nnp_status nnpi_layer_to_onnx(const nnp_layer *l, nnp_onnx_writer *w, const char *const *inputs,
                              int n_inputs, const char *output, nnp_error *err)
{
    if (!l->kind->to_onnx)
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "layer '%s': kind %s has no ONNX form",
                             nnp_layer_name(l), l->kind->name);
    nnp_status st = check_built(l, err);
    if (st == NNP_OK)
        st = l->kind->to_onnx(l->state, w, inputs, n_inputs, output, err);
    return st;
}

nnp_status nnpi_layer_onnx_load_weights(nnp_layer *l, const nnp_onnx_reader *r, nnp_error *err)
{
    if (!l->kind->onnx_load_weights)
        return NNP_OK;
    nnp_status st = check_built(l, err);
    if (st == NNP_OK)
        st = l->kind->onnx_load_weights(l->state, r, err);
    return st;
}

void nnp_set_num_threads(int n)
{
    omp_set_num_threads(n > 0 ? n : omp_get_num_procs());
}

int nnp_get_num_threads(void) { return omp_get_max_threads(); }

nnp_status nnpi_layer_onnx_write_training(const nnp_layer *l, nnp_onnx_writer *w, int node,
                                          nnp_error *err)
{
    const nnp_onnx_node_ext *x = nnpi_kind_onnx_node_ext(l->kind);
    if (!x || !x->write_training)
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "layer '%s' (%s) has no training form "
                             "in ONNX", nnp_layer_name(l), l->kind->name);
    return x->write_training(l->state, w, node, err);
}
