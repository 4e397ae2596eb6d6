/* Model graph: values, layer instances, nodes; planned memory; forward and
 * backward in topological (insertion) order. */
#include "graph/plan_internal.h"
#include "plugin/instance_internal.h"
#include "nnplug/config.h"
#include "nnplug/model.h"
#include "nnplug/layer.h"
#include "nnplug/status.h"
#include "nnplug/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An arena of values, planned for the current build (and fusion plan). */
typedef struct value_arena {
    void *mem;
    size_t bytes, cap;     /* planned; allocated (smaller batches reuse it) */
    int ready;
} value_arena;
enum { ARENA_INFER = 0, ARENA_TRAIN = 1 };
#define VALUE_NOWHERE SIZE_MAX

typedef struct value {
    char *name;
    nnp_shape decl;        /* declared shape, -1 for unknown dims */
    int producer;          /* node index, -1 for inputs and weight outputs */
    int n_consumers;
    int weight_layer;      /* >= 0: a weight output of this layer */
    char *weight_name;
    nnp_tensor act;        /* a view: of own, of the inference arena, or of a
                              caller's input */
    nnp_tensor own;        /* a weight output's buffer (the weight copied there) */
    nnp_tensor grad;       /* a view into the model's gradient arena (plan_grads) */
    int grad_birth;        /* backward step at which its gradient's life begins
                              (-1: before the first, a graph output's) */
    size_t act_cap;        /* bytes own holds: smaller batches reuse them */
    size_t off[2];         /* its place in the inference / training arena
                              (VALUE_NOWHERE: the forward does not write it) */
    int nhwc;              /* inference plan: NNP_TENSOR_NHWC (NNP_EXT_LAYOUT) */
} value;

typedef struct node {
    int layer;
    int *in;
    int n_in;
    int out;
    int mode;              /* -1: the run's mode */
    nnp_tensor *tmp;       /* per input: gradient scratch when the value fans out */
    /* inference plan (NNP_EXT_EPILOGUE): this node's layer also computes
       node epi_affine's affine and node epi_relu's ReLU (-1: none), writing
       value epi_out; absorbed: a node such a producer computes */
    int epi_affine, epi_relu, epi_out, absorbed;
    /* and node epi_sum's sum with value sum_in (-1: none), which is in
       epi_out's bytes before the layer runs: copied there, or (sum_inplace)
       epi_out takes sum_in's bytes, sum_in being read nowhere after */
    int epi_sum, sum_in, sum_inplace;
    float *epi_buf;        /* the affine's scale, then shift */
    /* training plan (plan_train_relu, 1.7): this node's layer also computes
       node trelu's ReLU (-1: none) in training steps, writing its output;
       tabsorbed: a ReLU so computed */
    int trelu, tabsorbed;
} node;

struct nnp_model {
    const nnp_registry *reg;
    value *v;
    int nv, cap_v;
    nnp_layer **layers;
    int nl, cap_l;
    node *nodes;
    int nn, cap_n;
    int *inputs, n_inputs;
    int *outputs, n_outputs;
    char **meta_k, **meta_v;
    int n_meta;
    int64_t built_batch;   /* -1: not built */
    int built_threads;     /* nnp_get_num_threads() at that build */
    int grads_ready;
    nnp_mode last_mode;    /* mode of the last forward, reused by backward */
    void *grad_arena;      /* every value and scratch gradient, placed by liveness */
    size_t grad_arena_bytes;
    /* the values of forwards, placed by liveness: [ARENA_INFER] to the last
       reader, [ARENA_TRAIN] through the backward (NNP_EXT_BACKWARD_READS) */
    value_arena arena[2];
    int last_arena;        /* the last forward wrote its values there */
    nnpi_scratch scratch;  /* the workspace the layers share (nnp_host.scratch) */
    int no_fusion;         /* nnp_model_set_inference_fusion(m, 0) */
    int fused;             /* the plan has epilogues */
    int last_fused;        /* the last forward ran them */
    int no_train_fusion;   /* nnp_model_set_training_fusion(m, 0) */
    int train_fused;       /* the training plan has producer -> ReLU pairs */
    int last_train_fused;  /* the last forward ran them */
};

static int grow(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return 0;
    int nc = *cap ? *cap * 2 : 8;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q)
        return -1;
    memset((char *)q + (size_t)*cap * elem, 0, (size_t)(nc - *cap) * elem);
    *p = q;
    *cap = nc;
    return 0;
}

nnp_status nnp_model_new(const nnp_registry *reg, nnp_model **out, nnp_error *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    (*out)->reg = reg;
    (*out)->built_batch = -1;
    return NNP_OK;
}

/* Shapes t for s, reusing its buffer when it is large enough. */
static nnp_status ensure(nnp_tensor *t, size_t *cap, const nnp_shape *s, nnp_error *err)
{
    int64_t n;
    nnp_status st = nnp_shape_numel(s, &n, err);
    if (st)
        return st;
    size_t bytes = (size_t)n * sizeof(float);
    if (t->data && (t->flags & NNP_TENSOR_OWNED) && bytes <= *cap) {
        t->shape = *s;
        t->nbytes = bytes;
        return NNP_OK;
    }
    nnp_tensor_free(t);
    st = nnp_tensor_alloc(t, NNP_F32, s, err);
    *cap = st ? 0 : bytes;
    return st;
}

/* A view's shape and size (its data is attached before each forward). */
static nnp_status set_view_shape(nnp_tensor *t, const nnp_shape *s, nnp_error *err)
{
    int64_t n;
    nnp_status st = nnp_shape_numel(s, &n, err);
    if (st)
        return st;
    if ((uint64_t)n > SIZE_MAX / sizeof(float))
        return nnp_error_set(err, NNP_ERR_LIMIT, "%lld elements are too many",
                             (long long)n);
    memset(t, 0, sizeof *t);
    t->dtype = NNP_F32;
    t->shape = *s;
    t->nbytes = (size_t)n * sizeof(float);
    return NNP_OK;
}

static void view_of(nnp_tensor *view, const nnp_tensor *t)
{
    *view = *t;
    view->flags = 0;
}

static void free_plan(nnp_model *m)
{
    for (int a = 0; a < 2; a++) {
        nnp_aligned_free(m->arena[a].mem);
        memset(&m->arena[a], 0, sizeof m->arena[a]);
    }
    m->last_arena = 0;
    for (int i = 0; i < m->nv; i++) {
        nnp_tensor_free(&m->v[i].own);
        memset(&m->v[i].act, 0, sizeof m->v[i].act);
        nnp_tensor_free(&m->v[i].grad);
        m->v[i].act_cap = 0;
    }
    for (int i = 0; i < m->nn; i++) {
        if (m->nodes[i].tmp)
            for (int k = 0; k < m->nodes[i].n_in; k++)
                nnp_tensor_free(&m->nodes[i].tmp[k]);
        free(m->nodes[i].tmp);
        m->nodes[i].tmp = NULL;
        free(m->nodes[i].epi_buf);
        m->nodes[i].epi_buf = NULL;
    }
    nnp_aligned_free(m->grad_arena);
    m->grad_arena = NULL;
    m->grad_arena_bytes = 0;
    nnp_aligned_free(m->scratch.mem);
    memset(&m->scratch, 0, sizeof m->scratch);
    m->built_batch = -1;
    m->grads_ready = 0;
}

void nnp_model_free(nnp_model *m)
{
    if (!m)
        return;
    free_plan(m);
    for (int i = 0; i < m->nv; i++) {
        free(m->v[i].name);
        free(m->v[i].weight_name);
    }
    for (int i = 0; i < m->nn; i++)
        free(m->nodes[i].in);
    for (int i = 0; i < m->nl; i++)
        nnp_layer_free(m->layers[i]);
    for (int i = 0; i < m->n_meta; i++) {
        free(m->meta_k[i]);
        free(m->meta_v[i]);
    }
    free(m->meta_k);
    free(m->meta_v);
    free(m->v);
    free(m->layers);
    free(m->nodes);
    free(m->inputs);
    free(m->outputs);
    free(m);
}

const nnp_registry *nnp_model_registry(const nnp_model *m) { return m->reg; }

static nnp_status new_value(nnp_model *m, const char *name, const nnp_shape *shape, int *id,
                            nnp_error *err)
{
    if (!name || !name[0])
        return nnp_error_set(err, NNP_ERR_INVALID, "a value needs a non-empty name");
    if (nnp_model_find_value(m, name) >= 0)
        return nnp_error_set(err, NNP_ERR_DUPLICATE, "value name '%s' is used twice", name);
    if (grow((void **)&m->v, &m->cap_v, m->nv + 1, sizeof(value)))
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    value *v = &m->v[m->nv];
    memset(v, 0, sizeof *v);
    v->name = strdup(name);
    if (!v->name)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    v->decl = *shape;
    v->producer = -1;
    v->weight_layer = -1;
    *id = m->nv++;
    free_plan(m);
    return NNP_OK;
}

nnp_status nnp_model_add_input(nnp_model *m, const char *name, const nnp_shape *shape,
                               int *value_id, nnp_error *err)
{
    if (shape->rank < 0 || shape->rank > NNP_MAX_RANK)
        return nnp_error_set(err, NNP_ERR_SHAPE, "input '%s': rank %d is outside 0..%d", name,
                             shape->rank, NNP_MAX_RANK);
    for (int i = 0; i < shape->rank; i++)
        if (shape->dims[i] < -1)
            return nnp_error_set(err, NNP_ERR_SHAPE, "input '%s': dimension %d is %lld", name, i,
                                 (long long)shape->dims[i]);
    int id;
    nnp_status st = new_value(m, name, shape, &id, err);
    if (st)
        return st;
    int *p = realloc(m->inputs, sizeof(int) * (size_t)(m->n_inputs + 1));
    if (!p)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    m->inputs = p;
    m->inputs[m->n_inputs++] = id;
    *value_id = id;
    return NNP_OK;
}

/* Keras's to_snake_case: "BatchNormalization" -> "batch_normalization",
 * "ReLU" -> "re_lu", "Conv2D" -> "conv2d". */
static void keras_snake(const char *in, char *out, size_t size)
{
    size_t o = 0, n = strlen(in);
    for (size_t i = 0; i < n && o + 2 < size; i++) {
        char c = in[i];
        bool up = c >= 'A' && c <= 'Z';
        bool prev_low = i > 0 && in[i - 1] >= 'a' && in[i - 1] <= 'z';
        bool next_low = i + 1 < n && in[i + 1] >= 'a' && in[i + 1] <= 'z';
        if (up && i > 0 && (prev_low || next_low))
            out[o++] = '_';
        out[o++] = up ? (char)(c - 'A' + 'a') : c;
    }
    out[o] = '\0';
}

/* A layer left with its kind's default name gets a unique Keras-style one. */
static nnp_status unique_name(nnp_model *m, nnp_layer *layer, nnp_error *err)
{
    nnp_config *cfg = (nnp_config *)nnp_layer_config(layer);
    if (nnp_config_name_is_set(cfg))
        return NNP_OK;
    char base[200], name[220];
    keras_snake(nnp_layer_kind_of(layer)->name, base, sizeof base);
    snprintf(name, sizeof name, "%s", base);
    for (int k = 1; nnp_model_find_layer(m, name) >= 0 || nnp_model_find_value(m, name) >= 0; k++)
        snprintf(name, sizeof name, "%s_%d", base, k);
    return nnp_config_set_name(cfg, name, err);
}

nnp_status nnp_model_add_layer(nnp_model *m, nnp_layer *layer, int *layer_index, nnp_error *err)
{
    nnp_status st = unique_name(m, layer, err);
    if (st) {
        nnp_layer_free(layer);
        return st;
    }
    if (nnp_model_find_layer(m, nnp_layer_name(layer)) >= 0) {
        nnp_status st = nnp_error_set(err, NNP_ERR_DUPLICATE, "layer name '%s' is used twice",
                                      nnp_layer_name(layer));
        nnp_layer_free(layer);
        return st;
    }
    if (grow((void **)&m->layers, &m->cap_l, m->nl + 1, sizeof(nnp_layer *))) {
        nnp_layer_free(layer);
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    }
    m->layers[m->nl] = layer;
    *layer_index = m->nl++;
    return NNP_OK;
}

nnp_status nnp_model_apply(nnp_model *m, int layer_index, const int *inputs, int n_inputs,
                           const char *out_name, int *out_value, nnp_error *err)
{
    if (layer_index < 0 || layer_index >= m->nl)
        return nnp_error_set(err, NNP_ERR_INVALID, "no layer %d in the model", layer_index);
    nnp_layer *l = m->layers[layer_index];
    if (n_inputs < 0 || n_inputs > 64)
        return nnp_error_set(err, NNP_ERR_INVALID, "layer '%s': %d inputs", nnp_layer_name(l),
                             n_inputs);
    nnp_shape in_shapes[64], out_shape;
    for (int k = 0; k < n_inputs; k++) {
        if (inputs[k] < 0 || inputs[k] >= m->nv)
            return nnp_error_set(err, NNP_ERR_INVALID, "layer '%s': input %d is not a value",
                                 nnp_layer_name(l), k);
        in_shapes[k] = m->v[inputs[k]].decl;
    }
    nnp_status st = nnp_layer_build(l, n_inputs, in_shapes, &out_shape, err);
    if (st)
        return st;
    char auto_name[300];
    if (!out_name) {
        int uses = 0;
        for (int i = 0; i < m->nn; i++)
            uses += m->nodes[i].layer == layer_index;
        snprintf(auto_name, sizeof auto_name, "%s_out%d", nnp_layer_name(l), uses);
        out_name = auto_name;
    }
    int id;
    st = new_value(m, out_name, &out_shape, &id, err);
    if (st)
        return st;
    if (grow((void **)&m->nodes, &m->cap_n, m->nn + 1, sizeof(node)))
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    node *n = &m->nodes[m->nn];
    memset(n, 0, sizeof *n);
    n->epi_affine = n->epi_relu = n->epi_out = n->epi_sum = n->sum_in = -1;
    n->trelu = -1;
    n->in = malloc(sizeof(int) * (size_t)(n_inputs ? n_inputs : 1));
    if (!n->in)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    memcpy(n->in, inputs, sizeof(int) * (size_t)n_inputs);
    n->n_in = n_inputs;
    n->layer = layer_index;
    n->out = id;
    n->mode = -1;
    for (int k = 0; k < n_inputs; k++)
        m->v[inputs[k]].n_consumers++;
    m->v[id].producer = m->nn++;
    if (out_value)
        *out_value = id;
    return NNP_OK;
}

nnp_status nnp_model_add_weight_output(nnp_model *m, int layer_index, const char *weight,
                                       const char *out_name, int *out_value, nnp_error *err)
{
    if (layer_index < 0 || layer_index >= m->nl)
        return nnp_error_set(err, NNP_ERR_INVALID, "no layer %d in the model", layer_index);
    const nnp_weight *w = nnp_layer_weight_by_name(m->layers[layer_index], weight);
    if (!w)
        return nnp_error_set(err, NNP_ERR_NOT_FOUND, "layer '%s' has no weight '%s'",
                             nnp_layer_name(m->layers[layer_index]), weight);
    int id;
    nnp_status st = new_value(m, out_name, &w->value->shape, &id, err);
    if (st)
        return st;
    m->v[id].weight_layer = layer_index;
    m->v[id].weight_name = strdup(weight);
    if (!m->v[id].weight_name)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    if (out_value)
        *out_value = id;
    return NNP_OK;
}

nnp_status nnp_model_set_outputs(nnp_model *m, const int *values, int n, nnp_error *err)
{
    int *p = malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (!p)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        if (values[i] < 0 || values[i] >= m->nv) {
            free(p);
            return nnp_error_set(err, NNP_ERR_INVALID, "output %d is not a value of the model", i);
        }
        p[i] = values[i];
    }
    free(m->outputs);
    m->outputs = p;
    m->n_outputs = n;
    free_plan(m);
    return NNP_OK;
}

nnp_status nnp_model_set_node_mode(nnp_model *m, int nd, int mode, nnp_error *err)
{
    if (nd < 0 || nd >= m->nn || mode < -1 || mode > 1)
        return nnp_error_set(err, NNP_ERR_INVALID, "bad node %d or mode %d", nd, mode);
    m->nodes[nd].mode = mode;
    return NNP_OK;
}

static bool is_output(const nnp_model *m, int id)
{
    for (int i = 0; i < m->n_outputs; i++)
        if (m->outputs[i] == id)
            return true;
    return false;
}

static nnp_status plan_epilogues(nnp_model *m, nnp_error *err);
static void plan_train_fusion(nnp_model *m);

nnp_status nnp_model_build(nnp_model *m, int64_t batch, nnp_error *err)
{
    /* a plan is for a batch size and a thread count (kinds size their
       engines' parallel work at build) */
    if (m->built_batch == batch && batch >= 0 && m->built_threads == nnp_get_num_threads())
        return NNP_OK;
    m->built_batch = -1;
    m->grads_ready = 0;
    m->arena[ARENA_INFER].ready = m->arena[ARENA_TRAIN].ready = 0;
    if (batch < 0)
        return nnp_error_set(err, NNP_ERR_INVALID, "batch size %lld is negative", (long long)batch);
    if (m->n_outputs == 0)
        return nnp_error_set(err, NNP_ERR_INVALID, "the model has no outputs");
    /* A computed value nothing reads is work for nothing, and usually a
     * wiring mistake: Keras would not compute it either. */
    for (int i = 0; i < m->nv; i++)
        if (m->v[i].producer >= 0 && m->v[i].n_consumers == 0 && !is_output(m, i))
            return nnp_error_set(err, NNP_ERR_INVALID, "value '%s' (output of layer '%s') is "
                                 "neither used nor a model output", m->v[i].name,
                                 nnp_layer_name(m->layers[m->nodes[m->v[i].producer].layer]));
    nnp_status st = NNP_OK;
    for (int i = 0; i < m->n_inputs && !st; i++) {
        value *v = &m->v[m->inputs[i]];
        nnp_shape s = v->decl;
        for (int d = 0; d < s.rank; d++)
            if (s.dims[d] < 0) {
                if (d != 0)
                    return nnp_error_set(err, NNP_ERR_SHAPE,
                                         "input '%s': dimension %d is unknown (only the batch "
                                         "dimension may be)", v->name, d);
                s.dims[d] = batch;
            }
        memset(&v->act, 0, sizeof v->act);   /* a view is attached at forward */
        v->act.shape = s;
        v->act.dtype = NNP_F32;
    }
    /* the layers reserve the workspace they share as they build */
    nnp_aligned_free(m->scratch.mem);
    memset(&m->scratch, 0, sizeof m->scratch);
    m->scratch.building = 1;
    nnpi_scratch *outer = nnpi_scratch_enter(&m->scratch);
    for (int i = 0; i < m->nn && !st; i++) {
        node *n = &m->nodes[i];
        nnp_shape in_shapes[64], out_shape;
        for (int k = 0; k < n->n_in; k++)
            in_shapes[k] = m->v[n->in[k]].act.shape;
        st = nnp_layer_build(m->layers[n->layer], n->n_in, in_shapes, &out_shape, err);
        if (st == NNP_OK && set_view_shape(&m->v[n->out].act, &out_shape, err) != NNP_OK)
            st = nnp_error_prefix(err, "value '%s' (output of layer '%s')", m->v[n->out].name,
                                  nnp_layer_name(m->layers[n->layer]));
    }
    for (int i = 0; i < m->nv && !st; i++) {
        value *v = &m->v[i];
        if (v->weight_layer >= 0) {
            const nnp_weight *w = nnp_layer_weight_by_name(m->layers[v->weight_layer], v->weight_name);
            st = w ? ensure(&v->own, &v->act_cap, &w->value->shape, err)
                   : nnp_error_set(err, NNP_ERR_NOT_FOUND, "weight output '%s' lost its weight",
                                   v->name);
            if (!st)
                view_of(&v->act, &v->own);
        }
    }
    if (!st)
        st = plan_epilogues(m, err);
    if (!st)
        plan_train_fusion(m);
    nnpi_scratch_leave(outer);
    m->scratch.building = 0;
    if (!st && m->scratch.reserve) {
        const unsigned long refusals = nnp_memory_refusals();
        m->scratch.mem = nnp_aligned_alloc(m->scratch.reserve);
        m->scratch.size = m->scratch.mem ? m->scratch.reserve : 0;
        if (!m->scratch.mem)
            st = nnp_memory_limit_status(
                nnp_error_set(err, NNP_ERR_NOMEM, "cannot allocate the layers' %zu-byte workspace",
                              m->scratch.reserve),
                refusals, err);
    }
    if (st)
        return st;
    m->built_batch = batch;
    m->built_threads = nnp_get_num_threads();
    return NNP_OK;
}

/* ---- inference plan: epilogues ---- */

/* Nodes applying node j's layer. */
static int layer_uses(const nnp_model *m, int j)
{
    int n = 0;
    for (int i = 0; i < m->nn; i++)
        n += m->nodes[i].layer == m->nodes[j].layer;
    return n;
}

/* The node reading value v, when v has exactly that one reader, is no graph
 * output and that node's layer is applied there only, in the run's mode;
 * else -1. */
static int sole_reader(const nnp_model *m, int v)
{
    if (v < 0 || m->v[v].n_consumers != 1 || is_output(m, v) || m->v[v].weight_layer >= 0)
        return -1;
    for (int j = 0; j < m->nn; j++)
        for (int k = 0; k < m->nodes[j].n_in; k++)
            if (m->nodes[j].in[k] == v)
                return m->nodes[j].n_in == 1 && m->nodes[j].mode < 0 && layer_uses(m, j) == 1 ? j
                                                                                             : -1;
    return -1;
}

/* Clears every epilogue a producer was given (kinds forget theirs). */
static void clear_epilogues(nnp_model *m)
{
    for (int i = 0; i < m->nn; i++) {
        node *n = &m->nodes[i];
        if (n->epi_out >= 0) {
            nnp_error ignored = {0};
            nnpi_layer_plan_epilogue(m->layers[n->layer], -1, 0, 0, &ignored);
        }
        n->epi_affine = n->epi_relu = n->epi_out = n->epi_sum = n->sum_in = -1;
        n->absorbed = n->sum_inplace = 0;
    }
    for (int i = 0; i < m->nv; i++)
        m->v[i].nhwc = 0;
    m->fused = 0;
    m->arena[ARENA_INFER].ready = 0;   /* the values a forward writes change */
}

int nnpi_model_affine_reader(const nnp_model *m, int nd, int *axis)
{
    const node *n = &m->nodes[nd];
    *axis = -1;
    if (n->mode >= 0 || layer_uses(m, nd) != 1)
        return -1;
    const int j = sole_reader(m, n->out);
    if (j >= 0)
        *axis = nnpi_layer_affine_axis(m->layers[m->nodes[j].layer], m->v[n->out].decl.rank);
    return *axis >= 0 ? j : -1;
}

/* ---- inference plan: layouts (NNP_EXT_LAYOUT) ---- */

/* Whether node j runs in an inference forward of the current plan. */
static int runs_inferring(const nnp_model *m, int j)
{
    return !(m->fused && m->nodes[j].absorbed);
}

/* The value node j writes in an inference forward. */
static int inference_out(const nnp_model *m, int j)
{
    const node *n = &m->nodes[j];
    return m->fused && n->epi_out >= 0 ? n->epi_out : n->out;
}

/* The layouts node j takes at input k (k = -1: its output); a node run in
 * a fixed mode, or denied, takes plain only. */
static uint32_t node_layouts(const nnp_model *m, const char *deny, int j, int k)
{
    return m->nodes[j].mode >= 0 || deny[j]
               ? 0
               : nnpi_layer_inference_layouts(m->layers[m->nodes[j].layer], k);
}

/* Marks (ok) the values that inference forwards keep channels-last: rank
 * 4, no graph input or output, written by a node offering it and read only
 * by nodes taking it; a node's tied ports (elementwise kinds) end up all
 * channels-last or all plain, as do a fused sum's other input and output. */
static void mark_layouts(const nnp_model *m, const char *deny, char *ok)
{
    memset(ok, 0, (size_t)(m->nv ? m->nv : 1));
    for (int j = 0; j < m->nn; j++) {
        const int v = inference_out(m, j);
        if (runs_inferring(m, j) && m->v[v].act.shape.rank == 4 && !is_output(m, v) &&
            (node_layouts(m, deny, j, -1) & NNP_LAYOUT_NHWC))
            ok[v] = 1;
    }
    for (int j = 0; j < m->nn; j++)
        for (int k = 0; k < m->nodes[j].n_in; k++)
            if (runs_inferring(m, j) && !(node_layouts(m, deny, j, k) & NNP_LAYOUT_NHWC))
                ok[m->nodes[j].in[k]] = 0;
    for (int changed = 1; changed;) {
        changed = 0;
        for (int j = 0; j < m->nn; j++) {
            if (!runs_inferring(m, j))
                continue;
            const node *n = &m->nodes[j];
            if (m->fused && n->epi_sum >= 0 && ok[n->sum_in] != ok[n->epi_out]) {
                ok[n->sum_in] = ok[n->epi_out] = 0;
                changed = 1;
            }
            int all = 1;
            for (int k = -1; k < n->n_in; k++)
                if (node_layouts(m, deny, j, k) & NNP_LAYOUT_TIED)
                    all &= ok[k < 0 ? inference_out(m, j) : n->in[k]];
            for (int k = -1; k < n->n_in && !all; k++) {
                const int v = k < 0 ? inference_out(m, j) : n->in[k];
                if ((node_layouts(m, deny, j, k) & NNP_LAYOUT_TIED) && ok[v]) {
                    ok[v] = 0;
                    changed = 1;
                }
            }
        }
    }
}

/* Plans the values' layouts and tells every node that runs what it will
 * read and write (plan_layouts); a node that cannot is denied and the plan
 * made again without it. Every value stays plain when memory for the
 * marks is short. */
static void plan_layouts(nnp_model *m)
{
    char *ok = malloc((size_t)(m->nv ? m->nv : 1)), *deny = calloc((size_t)(m->nn ? m->nn : 1), 1);
    uint32_t lay[64];
    for (int tries = 0; ok && deny && tries <= m->nn; tries++) {
        mark_layouts(m, deny, ok);
        int failed = -1;
        for (int j = 0; j < m->nn && failed < 0; j++) {
            const node *n = &m->nodes[j];
            if (!runs_inferring(m, j) || n->mode >= 0 || n->n_in > 64)
                continue;
            for (int k = 0; k < n->n_in; k++)
                lay[k] = ok[n->in[k]] ? NNP_LAYOUT_NHWC : 0u;
            nnp_error ignored = {0};
            if (nnp_layer_plan_layouts(m->layers[n->layer], lay, n->n_in,
                                        ok[inference_out(m, j)] ? NNP_LAYOUT_NHWC : 0u,
                                        &ignored) != NNP_OK)
                failed = j;
        }
        if (failed < 0) {
            for (int i = 0; i < m->nv; i++)
                m->v[i].nhwc = ok[i];
            break;
        }
        deny[failed] = 1;
    }
    free(ok);
    free(deny);
}

/* The node writing value v under the plan made so far: the producer of
 * the chain v ends, or its own producer; -1 for a graph input and a value
 * inside a chain. */
static int planned_writer(const nnp_model *m, int v)
{
    for (int k = 0; k < m->nn; k++)
        if (m->nodes[k].epi_out == v)
            return k;
    const int p = m->v[v].producer;
    return p < 0 || m->nodes[p].absorbed || m->nodes[p].epi_out >= 0 ? -1 : p;
}

/* The sum node that may fold into producer i at the end of its chain
 * (value cur): cur's one reader, no graph output, a sum of two inputs
 * applied once in the run's mode, whose other input (*rv) is there before
 * node i runs (a graph input, or written by an earlier node); else -1. */
static int sum_reader(const nnp_model *m, int i, int cur, int *rv)
{
    const value *c = &m->v[cur];
    if (c->n_consumers != 1 || is_output(m, cur) || c->weight_layer >= 0)
        return -1;
    for (int s = i + 1; s < m->nn; s++) {
        const node *n = &m->nodes[s];
        if (n->n_in != 2 || (n->in[0] != cur && n->in[1] != cur))
            continue;
        const int other = n->in[0] == cur ? n->in[1] : n->in[0];
        if (other == cur || n->mode >= 0 || layer_uses(m, s) != 1 ||
            !nnpi_layer_is_sum(m->layers[n->layer], 2) || m->v[other].weight_layer >= 0)
            return -1;
        if (m->v[other].producer >= 0) {
            const int w = planned_writer(m, other);
            if (w < 0 || w >= i)
                return -1;
        }
        *rv = other;
        return s;
    }
    return -1;
}

/* Whether producer i may write its sum over the bytes of the sum's other
 * input rv: a value of the arena that no node after i reads. */
static int sum_in_place(const nnp_model *m, int i, int s, int rv)
{
    if (m->v[rv].producer < 0 || is_output(m, rv))
        return 0;
    for (int j = i; j < m->nn; j++)
        for (int k = 0; k < m->nodes[j].n_in; k++)
            if (m->nodes[j].in[k] == rv && j != s)
                return 0;
    return 1;
}

/* Plans producer -> affine [-> relu], producer -> [affine ->] sum [-> relu]
 * and producer -> relu chains where the kinds offer it; a kind that
 * declines leaves its chain unfused (or fused without the sum). */
static nnp_status plan_epilogues(nnp_model *m, nnp_error *err)
{
    clear_epilogues(m);
    if (m->no_fusion)
        return NNP_OK;
    for (int i = 0; i < m->nn; i++) {
        node *n = &m->nodes[i];
        if (n->absorbed || n->mode >= 0 || layer_uses(m, i) != 1)
            continue;
        int axis, j = nnpi_model_affine_reader(m, i, &axis);
        const int cur = j >= 0 ? m->nodes[j].out : n->out;
        int rv = -1, sm = sum_reader(m, i, cur, &rv), r;
        nnp_error declined = {0};
        for (;;) {
            /* after the sum, the affine, or right after the producer: a ReLU */
            r = sole_reader(m, sm >= 0 ? m->nodes[sm].out : cur);
            if (r >= 0 && !nnpi_layer_is_relu(m->layers[m->nodes[r].layer]))
                r = -1;
            if ((j < 0 && r < 0 && sm < 0) ||
                nnpi_layer_plan_epilogue(m->layers[n->layer], axis, r >= 0, sm >= 0,
                                         &declined) == NNP_OK)
                break;
            if (sm < 0) {
                j = r = -1;   /* declined */
                break;
            }
            sm = -1;          /* without the sum */
        }
        if (j < 0 && r < 0 && sm < 0)
            continue;
        if (j >= 0) {
            const int64_t c = m->v[n->out].act.shape.dims[axis];
            free(n->epi_buf);
            n->epi_buf = malloc(2 * (size_t)c * sizeof(float));
            if (!n->epi_buf) {
                clear_epilogues(m);
                return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
            }
            m->nodes[j].absorbed = 1;
        }
        if (r >= 0)
            m->nodes[r].absorbed = 1;
        if (sm >= 0) {
            m->nodes[sm].absorbed = 1;
            n->sum_in = rv;
            n->sum_inplace = sum_in_place(m, i, sm, rv);
        }
        n->epi_affine = j;
        n->epi_relu = r;
        n->epi_sum = sm;
        n->epi_out = m->nodes[r >= 0 ? r : sm >= 0 ? sm : j].out;
        m->fused = 1;
    }
    plan_layouts(m);
    return NNP_OK;
}

/* ---- training plan: producer -> ReLU ---- */

static void clear_train_fusion(nnp_model *m)
{
    for (int i = 0; i < m->nn; i++) {
        node *n = &m->nodes[i];
        if (n->trelu >= 0) {
            nnp_error ignored = {0};
            nnpi_layer_plan_train_relu(m->layers[n->layer], 0, &ignored);
        }
        n->trelu = -1;
        n->tabsorbed = 0;
    }
    m->train_fused = 0;
    m->arena[ARENA_TRAIN].ready = 0;
    m->grads_ready = 0;
}

/* Pairs a producer with the ReLU that is its output's one reader where the
 * producer's kind offers it (NNP_EXT_EPILOGUE's plan_train_relu): training
 * forwards then run the producer only, writing the ReLU's output, and
 * backwards hand the producer that output and its gradient. */
static void plan_train_fusion(nnp_model *m)
{
    clear_train_fusion(m);
    if (m->no_train_fusion)
        return;
    for (int i = 0; i < m->nn; i++) {
        node *n = &m->nodes[i];
        if (n->tabsorbed || n->mode >= 0 || layer_uses(m, i) != 1)
            continue;
        const int r = sole_reader(m, n->out);
        nnp_error declined = {0};
        if (r < 0 || !nnpi_layer_is_relu(m->layers[m->nodes[r].layer]) ||
            nnpi_layer_plan_train_relu(m->layers[n->layer], 1, &declined) != NNP_OK)
            continue;
        n->trelu = r;
        m->nodes[r].tabsorbed = 1;
        m->train_fused = 1;
    }
}

/* The producer that runs ReLU node r of the training plan (tabsorbed): the
 * writer of the ReLU's input. */
static int pair_producer(const nnp_model *m, int r)
{
    return m->v[m->nodes[r].in[0]].producer;
}

int nnp_model_node_train_fused_into(const nnp_model *m, int node)
{
    if (node < 0 || node >= m->nn || !m->nodes[node].tabsorbed)
        return -1;
    return pair_producer(m, node);
}

void nnp_model_set_training_fusion(nnp_model *m, int on)
{
    m->no_train_fusion = !on;
    m->built_batch = -1; /* plan again at the next forward */
}

int nnp_model_node_fused_into(const nnp_model *m, int node)
{
    if (node < 0 || node >= m->nn || !m->nodes[node].absorbed)
        return -1;
    for (int i = 0; i < m->nn; i++)
        if (m->nodes[i].epi_affine == node || m->nodes[i].epi_relu == node ||
            m->nodes[i].epi_sum == node)
            return i;
    return -1;
}

int nnp_model_value_nhwc(const nnp_model *m, int value)
{
    return m->built_batch >= 0 && value >= 0 && value < m->nv && m->v[value].nhwc;
}

void nnp_model_set_inference_fusion(nnp_model *m, int on)
{
    m->no_fusion = !on;
    m->built_batch = -1; /* plan again at the next forward */
}

/* A gradient buffer's life over the backward steps (step s runs node
 * nn - 1 - s), its size and where the arena placed it. */
typedef struct grad_span {
    nnp_tensor *t;
    nnp_shape shape;
    size_t bytes, off;
    int first, last;
} grad_span;

/* Lowest offset where span i fits beside the spans placed before it that
 * live at the same time (first fit, largest spans placed first). */
static size_t place(const grad_span *sp, const int *order, int placed, int i)
{
    size_t off = 0;
    for (int moved = 1; moved;) {
        moved = 0;
        for (int k = 0; k < placed; k++) {
            const grad_span *o = &sp[order[k]];
            if (o->last < sp[i].first || sp[i].last < o->first)
                continue;
            if (off < o->off + o->bytes && o->off < off + sp[i].bytes) {
                off = o->off + o->bytes;
                moved = 1;
            }
        }
    }
    return off;
}

/* Places every span (offsets in sp[i].off) and returns the arena's size:
 * largest first, then in index order, each at the lowest offset free
 * during its life. order: n ints of scratch. */
static size_t place_all(grad_span *sp, int *order, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int k = 1; k < n; k++)
        for (int j = k; j > 0 && sp[order[j]].bytes > sp[order[j - 1]].bytes; j--) {
            const int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int k = 0; k < n; k++) {
        grad_span *g = &sp[order[k]];
        g->off = place(sp, order, k, order[k]);
        if (g->off + g->bytes > total)
            total = g->off + g->bytes;
    }
    return total;
}

/* Each value's first read in backward order: node * 64 + input (a node has
 * at most 64 inputs), -1 for none. malloc'ed; NULL when out of memory. */
static int *first_reads(const nnp_model *m)
{
    int *first = malloc((size_t)(m->nv ? m->nv : 1) * sizeof *first);
    if (!first)
        return NULL;
    for (int i = 0; i < m->nv; i++)
        first[i] = -1;
    for (int i = m->nn - 1; i >= 0; i--)
        for (int k = 0; k < m->nodes[i].n_in; k++)
            if (first[m->nodes[i].in[k]] < 0)
                first[m->nodes[i].in[k]] = i * 64 + k;
    return first;
}

/* Gradient buffers of the values (and of a node's input that is not its
 * value's first read in backward order, or is a graph output) share one
 * arena: a value's gradient lives from the backward of its last reader (or
 * the start, for an output) to its producer's; two buffers share bytes only
 * when their lives do not meet. */
static nnp_status plan_grads(nnp_model *m, size_t *dry_total, nnp_error *err)
{
    if (m->grads_ready) {
        if (dry_total)
            *dry_total = m->grad_arena_bytes;
        return NNP_OK;
    }
    const int last = m->nn - 1;
    int n = 0, cap = m->nv;
    for (int i = 0; i < m->nn; i++)
        cap += m->nodes[i].n_in;
    grad_span *sp = calloc((size_t)(cap ? cap : 1), sizeof *sp);
    int *order = calloc((size_t)(cap ? cap : 1), sizeof *order);
    int *first = first_reads(m);
    nnp_status st = sp && order && first ? NNP_OK
                                         : nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < m->nv && !st; i++) {
        value *v = &m->v[i];
        if (v->producer < 0)
            continue;
        v->grad_birth = is_output(m, i) ? -1 : last;
        for (int j = 0; j < m->nn; j++)
            for (int k = 0; k < m->nodes[j].n_in; k++)
                if (m->nodes[j].in[k] == i && last - j < v->grad_birth)
                    v->grad_birth = last - j;
        /* a fused ReLU's output: read by its producer's backward */
        const int p = m->nodes[v->producer].tabsorbed ? pair_producer(m, v->producer)
                                                      : v->producer;
        sp[n++] = (grad_span){&v->grad, v->act.shape, 0, 0, v->grad_birth, last - p};
    }
    for (int i = 0; i < m->nn && !st; i++) {
        node *nd = &m->nodes[i];
        if (!nd->tmp) {
            nd->tmp = calloc((size_t)(nd->n_in ? nd->n_in : 1), sizeof(nnp_tensor));
            if (!nd->tmp)
                st = nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
        }
        for (int k = 0; k < nd->n_in && !st; k++) {
            value *v = &m->v[nd->in[k]];
            if (!dry_total)
                memset(&nd->tmp[k], 0, sizeof nd->tmp[k]);
            /* The first read of a value in backward order (the last node to
               read it, its first input that does) writes its gradient in
               place; every other read writes its part here, for one step,
               added after. A graph output's gradient starts from the one
               handed to backward: each read adds. */
            if (v->producer >= 0 && (first[nd->in[k]] != i * 64 + k || is_output(m, nd->in[k])))
                sp[n++] = (grad_span){&nd->tmp[k], v->act.shape, 0, 0, last - i, last - i};
        }
    }
    size_t total = 0;
    for (int i = 0; i < n && !st; i++) {
        int64_t numel;
        st = nnp_shape_numel(&sp[i].shape, &numel, err);
        sp[i].bytes = ((size_t)numel * sizeof(float) + 63) / 64 * 64;
    }
    if (!st)
        total = place_all(sp, order, n);
    if (!st && dry_total) {   /* the size alone */
        *dry_total = total;
        free(sp);
        free(order);
        free(first);
        return NNP_OK;
    }
    if (!st) {
        nnp_aligned_free(m->grad_arena);
        m->grad_arena_bytes = 0;
        const unsigned long refusals = nnp_memory_refusals();
        m->grad_arena = nnp_aligned_alloc(total ? total : 64);
        if (!m->grad_arena)
            st = nnp_memory_limit_status(
                nnp_error_set(err, NNP_ERR_NOMEM,
                              "cannot allocate %zu bytes for the gradients of the values", total),
                refusals, err);
        else
            m->grad_arena_bytes = total;
    }
    for (int i = 0; i < n && !st; i++) {
        nnp_tensor *t = sp[i].t;
        memset(t, 0, sizeof *t);
        t->dtype = NNP_F32;
        t->shape = sp[i].shape;
        t->nbytes = (size_t)nnp_tensor_numel(t) * sizeof(float);
        t->data = (char *)m->grad_arena + sp[i].off; /* a view: flags 0 */
    }
    free(sp);
    free(order);
    free(first);
    if (st == NNP_OK)
        m->grads_ready = 1;
    return st;
}

/* The node that writes value v in an inference forward under the current
 * fusion plan: its producer, or the producer of the fused chain it ends;
 * -1 for a value inside a chain (nothing writes it) and for inputs. */
static int inference_writer(const nnp_model *m, int v)
{
    const int p = m->v[v].producer;
    if (p < 0 || !m->fused)
        return p;
    if (m->nodes[p].absorbed || (m->nodes[p].epi_out >= 0 && m->nodes[p].epi_out != v)) {
        for (int i = 0; i < m->nn; i++)
            if (m->nodes[i].epi_out == v)
                return i;
        return -1;
    }
    return p;
}

/* Places the n spans sp (of values of[]) in arena a, which (unless dry)
 * it allocates and records in the values' off[a]; *dry_total: the size
 * alone. Frees sp, order and of. */
static nnp_status arena_place(nnp_model *m, int a, grad_span *sp, int *order, int *of, int n,
                              size_t *dry_total, nnp_error *err)
{
    value_arena *ar = &m->arena[a];
    nnp_status st = NNP_OK;
    const size_t total = place_all(sp, order, n);
    if (dry_total) {
        *dry_total = total;
    } else {
        ar->bytes = 0;
        const unsigned long refusals = nnp_memory_refusals();
        if (!ar->mem || total > ar->cap) {
            nnp_aligned_free(ar->mem);
            ar->mem = nnp_aligned_alloc(total ? total : 64);
            ar->cap = ar->mem ? total : 0;
        }
        int big = 0;   /* the largest value, to name */
        for (int k = 1; k < n; k++)
            big = sp[k].bytes > sp[big].bytes ? k : big;
        if (!ar->mem)
            st = nnp_memory_limit_status(
                nnp_error_set(err, NNP_ERR_NOMEM, "cannot allocate %zu bytes for the values of %s "
                              "forward at batch %lld (the largest: '%s', %zu bytes)", total,
                              a == ARENA_INFER ? "an inference" : "a training",
                              (long long)m->built_batch, n ? m->v[of[big]].name : "",
                              n ? sp[big].bytes : 0),
                refusals, err);
        for (int i = 0; i < m->nv && !st; i++)
            m->v[i].off[a] = VALUE_NOWHERE;
        for (int k = 0; k < n && !st; k++)
            m->v[of[k]].off[a] = sp[k].off;
        ar->bytes = st ? 0 : total;
        ar->ready = st == NNP_OK;
    }
    free(sp);
    free(order);
    free(of);
    return st;
}

/* Spans for every computed value (nv each), or NULL after setting err. */
static nnp_status arena_spans(const nnp_model *m, grad_span **sp, int **order, int **of,
                              nnp_error *err)
{
    const size_t nv = (size_t)(m->nv ? m->nv : 1);
    *sp = calloc(nv, sizeof **sp);
    *order = calloc(nv, sizeof **order);
    *of = calloc(nv, sizeof **of);
    if (*sp && *order && *of)
        return NNP_OK;
    free(*sp);
    free(*order);
    free(*of);
    return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
}

/* The inference arena: every value a forward writes lives from its writer
 * to its last reader (to the end for a graph output), and values whose
 * lives do not meet share bytes (a reader's input and output always meet,
 * so no kind writes over what it reads). */
static nnp_status plan_infer_arena(nnp_model *m, size_t *dry_total, nnp_error *err)
{
    if (m->arena[ARENA_INFER].ready) {
        if (dry_total)
            *dry_total = m->arena[ARENA_INFER].bytes;
        return NNP_OK;
    }
    grad_span *sp;
    int *order, *of, n = 0;
    nnp_status st = arena_spans(m, &sp, &order, &of, err);
    /* values written over a fused sum's other input share its bytes: one
       span per group (root[v], followed to a fixed point), over their
       lives together */
    if (st)
        return st;
    const size_t nv = (size_t)(m->nv ? m->nv : 1);
    int *root = malloc(3 * nv * sizeof(int)), *first = root + nv, *last = first + nv;
    if (!root) {
        free(sp);
        free(order);
        free(of);
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < m->nv; i++) {
        root[i] = i;
        first[i] = last[i] = -1;
    }
    /* each value's own life */
    for (int i = 0; i < m->nv; i++) {
        const int w = m->v[i].producer >= 0 ? inference_writer(m, i) : -1;
        if (w < 0)
            continue;
        int l = is_output(m, i) ? m->nn : w;
        for (int j = w + 1; j < m->nn; j++) {
            const node *nj = &m->nodes[j];
            for (int k = 0; k < nj->n_in; k++)
                if (nj->in[k] == i && !(m->fused && nj->absorbed) && j > l)
                    l = j;
            /* a fused sum reads its other input when its producer runs */
            if (m->fused && nj->epi_sum >= 0 && nj->sum_in == i && j > l)
                l = j;
        }
        first[i] = w;
        last[i] = l;
    }
    /* groups, in node order: the output of an in-place sum (written
       before j) or of a node that writes over an input (NNP_EXT_IN_PLACE)
       joins its input's group when every value there is dead after j */
    for (int j = 0; j < m->nn; j++) {
        const node *n = &m->nodes[j];
        int from = -1, to = -1;
        if (m->fused && n->epi_sum >= 0 && n->sum_inplace) {
            from = n->sum_in;
            to = n->epi_out;
        } else if (!m->no_fusion && runs_inferring(m, j) && n->epi_out < 0 &&
                   (n->mode < 0 || n->mode == NNP_MODE_INFER) && first[n->out] == j) {
            for (int k = 0; k < n->n_in && from < 0; k++) {
                const int v = n->in[k];
                if (first[v] >= 0 && last[root[v]] == j && !is_output(m, v) &&
                    m->v[v].act.nbytes == m->v[n->out].act.nbytes &&
                    m->v[v].nhwc == m->v[n->out].nhwc &&
                    nnpi_layer_in_place(m->layers[n->layer], k))
                    from = v;
            }
            to = from >= 0 ? n->out : -1;
        }
        if (from < 0 || first[to] < 0)
            continue;
        const int r = root[from];
        root[to] = r;
        if (last[to] > last[r])
            last[r] = last[to];
    }
    for (int i = 0; i < m->nv; i++) {
        const int r = root[i];
        if (r == i || first[i] < 0)
            continue;
        if (first[i] < first[r])
            first[r] = first[i];
        if (last[i] > last[r])
            last[r] = last[i];
    }
    for (int i = 0; i < m->nv; i++) {
        if (root[i] != i || first[i] < 0)
            continue;
        of[n] = i;
        sp[n++] = (grad_span){&m->v[i].act, m->v[i].act.shape,
                              (m->v[i].act.nbytes + 63) / 64 * 64, 0, first[i], last[i]};
    }
    st = arena_place(m, ARENA_INFER, sp, order, of, n, dry_total, err);
    for (int i = 0; !st && !dry_total && i < m->nv; i++)
        if (root[i] != i)
            m->v[i].off[ARENA_INFER] = m->v[root[i]].off[ARENA_INFER];
    free(root);
    return st;
}

/* The training arena: a value lives from its producer's forward to the
 * last step that reads it, forward or backward (time nn + nn - 1 - j is
 * node j's backward), as each kind declares what its backward reads; graph
 * outputs to the end. Values that no backward reads (a BatchNormalization
 * output a ReLU reads) give their bytes to later ones. */
static nnp_status plan_train_arena(nnp_model *m, size_t *dry_total, nnp_error *err)
{
    if (m->arena[ARENA_TRAIN].ready) {
        if (dry_total)
            *dry_total = m->arena[ARENA_TRAIN].bytes;
        return NNP_OK;
    }
    const int nn = m->nn, end = 2 * nn;
    grad_span *sp;
    int *order, *of, n = 0;
    nnp_status st = arena_spans(m, &sp, &order, &of, err);
    uint32_t *reads = st ? NULL : calloc((size_t)(nn ? nn : 1), sizeof *reads);
    if (!st && !reads) {
        free(sp);
        free(order);
        free(of);
        st = nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    }
    if (st)
        return st;
    for (int j = 0; j < nn; j++)
        reads[j] = nnpi_layer_backward_reads(m->layers[m->nodes[j].layer]);
    for (int i = 0; i < m->nv; i++) {
        value *v = &m->v[i];
        const int p = v->producer;
        if (p < 0)
            continue;
        int last = is_output(m, i) ? end : p, first = p;
        /* (a producer fused with a ReLU reads that ReLU's output instead) */
        if ((reads[p] & NNP_READS_OUTPUT) && m->nodes[p].trelu < 0 && end - 1 - p > last)
            last = end - 1 - p;
        if (m->nodes[p].tabsorbed) {
            /* a fused ReLU's output: written by its producer, and read by
               the producer's backward (the ReLU's mask) */
            const int q = pair_producer(m, p);
            first = q;
            last = end - 1 - q > last ? end - 1 - q : last;
        }
        for (int j = p + 1; j < nn; j++)
            for (int k = 0; k < m->nodes[j].n_in; k++)
                if (m->nodes[j].in[k] == i) {
                    const int t = (reads[j] & NNP_READS_INPUTS) ? end - 1 - j : j;
                    last = t > last ? t : last;
                }
        of[n] = i;
        sp[n++] = (grad_span){&v->act, v->act.shape, (v->act.nbytes + 63) / 64 * 64, 0, first,
                              last};
    }
    free(reads);
    return arena_place(m, ARENA_TRAIN, sp, order, of, n, dry_total, err);
}

/* Points every computed value at its place for the next forward: in the
 * inference arena, or (training, and a forward a backward will read) in the
 * training arena. */
static nnp_status attach_values(nnp_model *m, int arena, nnp_error *err)
{
    const int a = arena ? ARENA_INFER : ARENA_TRAIN;
    nnp_status st = arena ? plan_infer_arena(m, NULL, err) : plan_train_arena(m, NULL, err);
    for (int i = 0; i < m->nv && !st; i++) {
        value *v = &m->v[i];
        if (v->producer < 0)
            continue;
        v->act.data = v->off[a] == VALUE_NOWHERE ? NULL : (char *)m->arena[a].mem + v->off[a];
        v->act.flags = arena && v->nhwc ? NNP_TENSOR_NHWC : 0u;
    }
    if (!st)
        m->last_arena = arena;
    return st;
}

static nnp_status run_nodes_in(nnp_model *m, nnp_mode mode, nnp_error *err);

/* Every node in order; in inference mode, planned epilogues run inside
 * their producers and the nodes they absorb are skipped. */
static nnp_status run_nodes(nnp_model *m, nnp_mode mode, nnp_error *err)
{
    nnpi_scratch *outer = nnpi_scratch_enter(&m->scratch);
    nnp_status st = run_nodes_in(m, mode, err);
    nnpi_scratch_leave(outer);
    return st;
}

static nnp_status run_nodes_in(nnp_model *m, nnp_mode mode, nnp_error *err)
{
    const int fuse = mode == NNP_MODE_INFER && m->fused;
    const int tfuse = mode == NNP_MODE_TRAIN && m->train_fused;
    for (int i = 0; i < m->nn; i++) {
        node *n = &m->nodes[i];
        if ((fuse && n->absorbed) || (tfuse && n->tabsorbed))
            continue;
        const nnp_tensor *in[64];
        for (int k = 0; k < n->n_in; k++)
            in[k] = &m->v[n->in[k]].act;
        nnp_mode md = n->mode >= 0 ? (nnp_mode)n->mode : mode;
        nnp_tensor *out = &m->v[n->out].act;
        if (tfuse && n->trelu >= 0)
            out = &m->v[m->nodes[n->trelu].out].act;
        if (fuse && n->epi_out >= 0) {
            if (n->epi_affine >= 0) {
                const int64_t c = m->v[n->out].act.shape.dims[nnpi_layer_affine_axis(
                    m->layers[m->nodes[n->epi_affine].layer], out->shape.rank)];
                nnpi_layer_inference_affine(m->layers[m->nodes[n->epi_affine].layer], n->epi_buf,
                                            n->epi_buf + c);
                nnpi_layer_set_affine(m->layers[n->layer], n->epi_buf, n->epi_buf + c);
            }
            out = &m->v[n->epi_out].act;
            if (n->epi_sum >= 0 && !n->sum_inplace)
                memcpy(out->data, m->v[n->sum_in].act.data, out->nbytes);
        }
        nnp_status st = nnp_layer_forward(m->layers[n->layer], in, n->n_in, out, md, err);
        if (st)
            return st;
    }
    m->last_fused = fuse;
    m->last_train_fused = tfuse;
    return NNP_OK;
}

nnp_status nnp_model_forward(nnp_model *m, const nnp_tensor *const *inputs, int n_inputs,
                             nnp_mode mode, nnp_error *err)
{
    if (n_inputs != m->n_inputs)
        return nnp_error_set(err, NNP_ERR_INVALID, "the model takes %d inputs, got %d",
                             m->n_inputs, n_inputs);
    int64_t batch = -1;
    for (int i = 0; i < n_inputs; i++) {
        const value *v = &m->v[m->inputs[i]];
        const nnp_tensor *t = inputs[i];
        char a[128], b[128];
        if (t->dtype != NNP_F32)
            return nnp_error_set(err, NNP_ERR_INVALID, "input '%s' must be float32, got %s",
                                 v->name, nnp_dtype_name(t->dtype));
        bool ok = t->shape.rank == v->decl.rank;
        for (int d = 0; ok && d < t->shape.rank; d++)
            ok = v->decl.dims[d] < 0 || v->decl.dims[d] == t->shape.dims[d];
        const char *fixed = nnp_model_get_meta(m, NNP_MODEL_META_FIXED_BATCH);
        if (!ok)
            return nnp_error_set(err, NNP_ERR_SHAPE, "input '%s' has shape %s, the model expects "
                                 "%s (? is any size)%s%s", v->name,
                                 nnp_shape_str(&t->shape, a, sizeof a),
                                 nnp_shape_decl_str(&v->decl, b, sizeof b), fixed ? "; " : "",
                                 fixed ? fixed : "");
        int64_t nb = t->shape.rank ? t->shape.dims[0] : 1;
        if (v->decl.rank && v->decl.dims[0] < 0) {
            if (batch >= 0 && nb != batch)
                return nnp_error_set(err, NNP_ERR_SHAPE, "inputs disagree on the batch size "
                                     "(%lld vs %lld)", (long long)batch, (long long)nb);
            batch = nb;
        }
    }
    if (batch < 0)
        batch = m->built_batch >= 0 ? m->built_batch : 1;
    nnp_status st = nnp_model_build(m, batch, err);
    if (st)
        return st;
    for (int i = 0; i < n_inputs; i++) {
        nnp_tensor *a = &m->v[m->inputs[i]].act;
        *a = *inputs[i];
        a->flags = 0;   /* a view: the caller owns the data */
    }
    m->last_mode = mode;
    st = attach_values(m, mode == NNP_MODE_INFER, err);
    if (!st)
        st = run_nodes(m, mode, err);
    if (st)
        return st;
    for (int i = 0; i < m->nv; i++) {
        value *v = &m->v[i];
        if (v->weight_layer >= 0) {
            const nnp_weight *w = nnp_layer_weight_by_name(m->layers[v->weight_layer], v->weight_name);
            memcpy(v->act.data, w->value->data, v->act.nbytes);
        }
    }
    return NNP_OK;
}

const nnp_tensor *nnp_model_output(const nnp_model *m, int i)
{
    if (i < 0 || i >= m->n_outputs || m->built_batch < 0)
        return NULL;
    return &m->v[m->outputs[i]].act;
}

__attribute__((target_clones("avx512f", "default"))) static void
add_span(float *restrict d, const float *restrict s, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        d[i] += s[i];
}

/* dst += src element by element (the same bits at any thread count). */
static void add_into(nnp_tensor *dst, const nnp_tensor *src)
{
    enum { PART = 1 << 16 }; /* floats a thread adds at a time */
    float *d = dst->data;
    const float *s = src->data;
    const int64_t n = nnp_tensor_numel(dst), parts = (n + PART - 1) / PART;
#pragma omp parallel for if (parts > 1) schedule(static)
    for (int64_t k = 0; k < parts; k++) {
        const int64_t b = k * PART;
        add_span(d + b, s + b, b + PART < n ? PART : n - b);
    }
}

/* Zeroes the graph outputs' gradients (every other value's first write in
 * backward order is whole: plan_grads), before backward step 0. */
static void zero_output_grads(nnp_model *m)
{
    for (int i = 0; i < m->nv; i++) {
        value *v = &m->v[i];
        if (v->grad.data && v->producer >= 0 && is_output(m, i))
            memset(v->grad.data, 0, v->grad.nbytes);
    }
}

/* For a backward that writes the weight gradients: each layer's kind told
 * that its next backward writes them (a layer applied once whose kind can,
 * NNP_EXT_GRAD_STORE), the others' zeroed. */
static nnp_status grads_overwritten(nnp_model *m, nnp_error *err)
{
    int *apps = calloc((size_t)(m->nl ? m->nl : 1), sizeof *apps);
    if (!apps)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < m->nn; i++)
        apps[m->nodes[i].layer]++;
    for (int l = 0; l < m->nl; l++)
        if (apps[l] != 1 || !nnpi_layer_store_grads(m->layers[l]))
            nnp_layer_zero_grad(m->layers[l]);
    free(apps);
    return NNP_OK;
}

static nnp_status backward_run(nnp_model *m, const nnp_tensor *const *grad_outputs,
                               int n_outputs, int overwrite, nnp_error *err);

nnp_status nnp_model_backward(nnp_model *m, const nnp_tensor *const *grad_outputs,
                              int n_outputs, nnp_error *err)
{
    return backward_run(m, grad_outputs, n_outputs, 0, err);
}

nnp_status nnp_model_backward_overwrite(nnp_model *m, const nnp_tensor *const *grad_outputs,
                                        int n_outputs, nnp_error *err)
{
    return backward_run(m, grad_outputs, n_outputs, 1, err);
}

static nnp_status backward_run(nnp_model *m, const nnp_tensor *const *grad_outputs,
                               int n_outputs, int overwrite, nnp_error *err)
{
    if (m->built_batch < 0)
        return nnp_error_set(err, NNP_ERR_INVALID, "backward called before forward");
    if (n_outputs != m->n_outputs)
        return nnp_error_set(err, NNP_ERR_INVALID, "the model has %d outputs, got %d gradients",
                             m->n_outputs, n_outputs);
    nnp_status st = NNP_OK;
    if (m->last_arena) {
        /* an inference forward wrote its values over each other (and left
           those inside fused chains unwritten): compute them all again,
           unfused, each in its own buffer, on the same inputs */
        const int fused = m->last_fused;
        if (fused)
            clear_epilogues(m);
        st = attach_values(m, 0, err);
        if (!st)
            st = run_nodes(m, m->last_mode, err);
        if (!st && fused)
            st = plan_epilogues(m, err);
        if (st)
            return st;
    }
    st = plan_grads(m, NULL, err);
    if (!st && overwrite)
        st = grads_overwritten(m, err);
    if (st)
        return st;
    /* A value that is no graph output gets its gradient written whole by
     * the first node in backward order that reads it (backward writes
     * grad_in, see plugin.h), the other reads' parts added to it
     * (add_into); a graph output's starts from zero and the gradient handed
     * here. */
    zero_output_grads(m);
    for (int i = 0; i < n_outputs; i++) {
        value *v = &m->v[m->outputs[i]];
        if (!grad_outputs[i] || !v->grad.data)
            continue;
        if (!nnp_shape_equal(&grad_outputs[i]->shape, &v->act.shape))
            return nnp_error_set(err, NNP_ERR_SHAPE, "gradient for output '%s' has the wrong shape",
                                 v->name);
        add_into(&v->grad, grad_outputs[i]);
    }
    nnpi_scratch *outer = nnpi_scratch_enter(&m->scratch);
    const int tfuse = m->last_train_fused;
    for (int i = m->nn - 1; i >= 0 && !st; i--) {
        node *n = &m->nodes[i];
        const nnp_tensor *in[64];
        nnp_tensor *gin[64];
        if (tfuse && n->tabsorbed)
            continue; /* its producer's backward takes it */
        /* a producer fused with a ReLU: that ReLU's output and gradient */
        const int o = tfuse && n->trelu >= 0 ? m->nodes[n->trelu].out : n->out;
        for (int k = 0; k < n->n_in; k++) {
            value *v = &m->v[n->in[k]];
            in[k] = &v->act;
            gin[k] = n->tmp[k].data ? &n->tmp[k]
                     : (v->producer >= 0 ? &v->grad : NULL);
        }
        nnp_mode md = n->mode >= 0 ? (nnp_mode)n->mode : m->last_mode;
        st = nnp_layer_backward(m->layers[n->layer], in, n->n_in, &m->v[o].act, &m->v[o].grad,
                                gin, md, err);
        for (int k = 0; k < n->n_in && !st; k++)
            if (gin[k] == &n->tmp[k])
                add_into(&m->v[n->in[k]].grad, &n->tmp[k]);
    }
    nnpi_scratch_leave(outer);
    return st;
}

nnp_status nnp_model_memory_plan(nnp_model *m, int64_t batch, nnp_memory_plan *out,
                                 nnp_error *err)
{
    memset(out, 0, sizeof *out);
    out->largest_value_id = -1;
    nnp_status st = nnp_model_build(m, batch, err);
    if (!st)
        st = plan_infer_arena(m, &out->values_arena, err);
    if (!st)
        st = plan_train_arena(m, &out->values_training, err);
    if (!st)
        st = plan_grads(m, &out->value_grads, err);
    if (st)
        return st;
    out->batch = batch;
    for (int i = 0; i < m->nv; i++) {
        const value *v = &m->v[i];
        if (v->weight_layer >= 0) {
            out->weight_outputs += v->own.nbytes;
        } else if (v->producer < 0) {
            int64_t n = 0;
            nnp_error ignored = {0};
            if (nnp_shape_numel(&v->act.shape, &n, &ignored) == NNP_OK)
                out->inputs += (size_t)n * sizeof(float);
        } else {
            out->values += v->act.nbytes;
            if (v->act.nbytes > out->largest_value || out->largest_value_id < 0) {
                out->largest_value = v->act.nbytes;
                out->largest_value_id = i;
            }
        }
    }
    for (int i = 0; i < m->nl; i++)
        for (int k = 0; k < nnp_layer_n_weights(m->layers[i]); k++) {
            const nnp_weight *w = nnp_layer_weight(m->layers[i], k);
            out->weights += w->value->nbytes;
            if (w->grad && (w->flags & NNP_WEIGHT_TRAINABLE) && nnp_layer_trainable(m->layers[i]))
                out->trainable += w->value->nbytes;
        }
    out->workspace = m->scratch.reserve;
    return NNP_OK;
}

void nnp_model_zero_grad(nnp_model *m)
{
    for (int i = 0; i < m->nl; i++)
        nnp_layer_zero_grad(m->layers[i]);
}

double nnp_model_regularization_loss(const nnp_model *m)
{
    double s = 0;
    for (int i = 0; i < m->nl; i++)
        s += nnp_layer_regularization_loss(m->layers[i]);
    return s;
}

void nnp_model_add_regularization_grads(nnp_model *m)
{
    for (int i = 0; i < m->nl; i++)
        nnp_layer_add_regularization_grads(m->layers[i]);
}

nnp_status nnp_model_apply_constraints(nnp_model *m, nnp_error *err)
{
    for (int i = 0; i < m->nl; i++) {
        nnp_status st = nnp_layer_apply_constraints(m->layers[i], err);
        if (st)
            return st;
    }
    return NNP_OK;
}

void nnp_model_weights_changed(nnp_model *m)
{
    for (int i = 0; i < m->nl; i++)
        nnp_layer_weights_changed(m->layers[i]);
}

int nnp_model_n_inputs(const nnp_model *m) { return m->n_inputs; }
int nnp_model_input_value(const nnp_model *m, int i) { return m->inputs[i]; }
int nnp_model_n_outputs(const nnp_model *m) { return m->n_outputs; }
int nnp_model_output_value(const nnp_model *m, int i) { return m->outputs[i]; }
int nnp_model_n_values(const nnp_model *m) { return m->nv; }
const char *nnp_model_value_name(const nnp_model *m, int id) { return m->v[id].name; }
const nnp_shape *nnp_model_value_shape(const nnp_model *m, int id) { return &m->v[id].decl; }

int nnp_model_find_value(const nnp_model *m, const char *name)
{
    for (int i = 0; i < m->nv; i++)
        if (strcmp(m->v[i].name, name) == 0)
            return i;
    return -1;
}

int nnp_model_n_layers(const nnp_model *m) { return m->nl; }
nnp_layer *nnp_model_layer(const nnp_model *m, int i) { return m->layers[i]; }

int nnp_model_find_layer(const nnp_model *m, const char *name)
{
    for (int i = 0; i < m->nl; i++)
        if (strcmp(nnp_layer_name(m->layers[i]), name) == 0)
            return i;
    return -1;
}

int nnp_model_n_nodes(const nnp_model *m) { return m->nn; }
int nnp_model_node_layer(const nnp_model *m, int nd) { return m->nodes[nd].layer; }
int nnp_model_node_n_inputs(const nnp_model *m, int nd) { return m->nodes[nd].n_in; }
int nnp_model_node_input(const nnp_model *m, int nd, int k) { return m->nodes[nd].in[k]; }
int nnp_model_node_output(const nnp_model *m, int nd) { return m->nodes[nd].out; }
int nnp_model_node_mode(const nnp_model *m, int nd) { return m->nodes[nd].mode; }

int nnp_model_weight_output_layer(const nnp_model *m, int id, const char **weight)
{
    if (weight)
        *weight = m->v[id].weight_name;
    return m->v[id].weight_layer;
}

int64_t nnp_model_layer_param_count(const nnp_model *m, int li)
{
    int64_t total = 0;
    const nnp_layer *l = m->layers[li];
    for (int i = 0; i < nnp_layer_n_weights(l); i++)
        total += nnp_tensor_numel(nnp_layer_weight(l, i)->value);
    return total;
}

nnp_status nnp_model_set_meta(nnp_model *m, const char *key, const char *val, nnp_error *err)
{
    if (!val) {   /* removes the key */
        for (int i = 0; i < m->n_meta; i++)
            if (strcmp(m->meta_k[i], key) == 0) {
                free(m->meta_k[i]);
                free(m->meta_v[i]);
                m->n_meta--;
                memmove(m->meta_k + i, m->meta_k + i + 1, sizeof(char *) * (size_t)(m->n_meta - i));
                memmove(m->meta_v + i, m->meta_v + i + 1, sizeof(char *) * (size_t)(m->n_meta - i));
                break;
            }
        return NNP_OK;
    }
    for (int i = 0; i < m->n_meta; i++)
        if (strcmp(m->meta_k[i], key) == 0) {
            char *nv = strdup(val);
            if (!nv)
                return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
            free(m->meta_v[i]);
            m->meta_v[i] = nv;
            return NNP_OK;
        }
    char **k = realloc(m->meta_k, sizeof(char *) * (size_t)(m->n_meta + 1));
    if (k)
        m->meta_k = k;
    char **v = realloc(m->meta_v, sizeof(char *) * (size_t)(m->n_meta + 1));
    if (v)
        m->meta_v = v;
    if (!k || !v)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    m->meta_k[m->n_meta] = strdup(key);
    m->meta_v[m->n_meta] = strdup(val);
    if (!m->meta_k[m->n_meta] || !m->meta_v[m->n_meta]) {
        free(m->meta_k[m->n_meta]);
        free(m->meta_v[m->n_meta]);
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    }
    m->n_meta++;
    return NNP_OK;
}

const char *nnp_model_get_meta(const nnp_model *m, const char *key)
{
    for (int i = 0; i < m->n_meta; i++)
        if (strcmp(m->meta_k[i], key) == 0)
            return m->meta_v[i];
    return NULL;
}

int nnp_model_n_meta(const nnp_model *m) { return m->n_meta; }
const char *nnp_model_meta_key(const nnp_model *m, int i) { return m->meta_k[i]; }
