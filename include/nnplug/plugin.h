/*
 * nnplug plugin ABI.
 *
 * This header is everything a layer plugin includes; it depends only on the
 * C standard library. A plugin links nothing of nnplug's: every service it
 * uses comes through the nnp_host table handed to its entry function.
 *
 * Entry point (the only symbol a plugin exports):
 *
 *     const nnp_plugin *nnp_plugin_entry(const nnp_host *host);
 *
 * Versioning rules:
 *  - Every table starts with struct_size, abi_major and abi_minor.
 *  - A host refuses a plugin whose abi_major differs from its own; a plugin
 *    MUST refuse a host whose abi_major differs from the one it was built for.
 *  - A minor version only appends fields at the end of a table; each field
 *    added after 1.0 is tagged with the version that added it ("since 1.1").
 *    Layouts are frozen: tests/unit/test_abi_layout.c pins every offset.
 *  - A plugin MUST check NNP_HOST_AT_LEAST(host, minor) (or NNP_HAS_FIELD)
 *    before it calls a field added after 1.0, and a host reads a plugin's
 *    table field only when the table's struct_size covers it.
 *  - An entry function that refuses a host returns NULL after saying why
 *    with host->log(NNP_LOG_ERROR, ...); the host puts that line in the
 *    load error it reports. (log exists since 1.0, so this works on every
 *    host.)
 *
 * History: 1.0 the first release. 1.1 appends config_is_null, seed_mix,
 * layer_to_onnx, layer_onnx_load_weights, the onnx_writer_node_* /
 * onnx_writer_set_output functions and onnx_input_dtype to nnp_host; defines the kind extensions
 * NNP_EXT_ONNX_NODE (nnp_onnx_node_ext) and NNP_EXT_KERAS_DEFAULTS, the
 * parameter flag NNP_PARAM_ONLY_DEFAULT and the status NNP_ERR_LIMIT.
 * 1.2 appends weights_changed to nnp_kind and layer_weights_changed,
 * scratch_reserve and scratch (a workspace the layers of a model share) to
 * nnp_host: a 1.2 host says when weight values change, so kinds may keep
 * forms derived from them (see "weights" below); defines the kind
 * extension NNP_EXT_EPILOGUE (inference plans that fold a per-channel
 * affine and a ReLU into the layer before them).
 * 1.3 appends input_rules to nnp_onnx_node_ext: ONNX's type and rank rules
 * for a node's inputs, declared by the kind and checked by the host before
 * the layer is created (nnp_onnx_input_rule); appends batch_chunks and
 * reduce_begin / reduce_add / reduce_end to nnp_host: sums over the batch
 * that give the same bits on any number of processes (data-parallel
 * training).
 * 1.4 appends batch_rows to nnp_host: where a call's rows lie in the global
 * batch of a data-parallel step, so that what a kind draws per sample
 * (Dropout's mask) is the same on any number of processes; defines the kind
 * extension NNP_EXT_BACKWARD_READS (which values a backward reads, so that
 * training forwards may share memory between values by liveness).
 * 1.5 appends reduce_cover and reduce_add_node to nnp_host: a kind may
 * evaluate the reduction tree over its chunks itself (tile by tile, in
 * cache) and hand the host whole nodes instead of one partial per chunk.
 * 1.6 defines the tensor flag NNP_TENSOR_NHWC and the kind extension
 * NNP_EXT_LAYOUT: inference plans that keep channels-first activations
 * channels-last in memory between the layers that read and write them;
 * appends is_sum and plan_epilogue_sum to nnp_epilogue_ext (a residual
 * Add folded into the layer before it); the host table is unchanged.
 * 1.7 appends plan_train_relu to nnp_epilogue_ext: training steps that run
 * a layer and the ReLU after it as one layer (one pass over the values
 * forward, one backward); defines the kind extension NNP_EXT_IN_PLACE
 * (inference forwards that write their output over an input); the host
 * table is unchanged.
 * 1.8 defines the kind extension NNP_EXT_GRAD_STORE (a backward that
 * writes the weight gradients instead of adding to them, so that the host
 * need not zero them first); the host table is unchanged.
 */
#ifndef NNPLUG_PLUGIN_H
#define NNPLUG_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NNP_ABI_MAJOR 1
#define NNP_ABI_MINOR 8

#define NNP_PLUGIN_ENTRY_SYMBOL "nnp_plugin_entry"

/* NNP_EXPORT marks a plugin's entry function. NNP_API marks every function
 * of libnnplug's public headers: the library is built with hidden
 * visibility, so these are the only symbols it exports. */
#if defined(__GNUC__)
#define NNP_EXPORT __attribute__((visibility("default")))
#define NNP_API __attribute__((visibility("default")))
#define NNP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define NNP_EXPORT
#define NNP_API
#define NNP_PRINTF(f, a)
#endif

/* True when a table of the given struct_size contains FIELD. */
#define NNP_HAS_FIELD(ptr, type, field) \
    ((ptr)->struct_size >= offsetof(type, field) + sizeof(((type *)0)->field))

/* True when host (an nnp_host *) has this plugin's major version and at
 * least the given minor version, so every field up to that minor is there. */
#define NNP_HOST_AT_LEAST(host, minor) nnp_host_at_least_((host), (unsigned)(minor))

/* Levels of nnp_host.log. */
#define NNP_LOG_ERROR 1
#define NNP_LOG_WARN 2
#define NNP_LOG_INFO 3
#define NNP_LOG_DEBUG 4

/* ------------------------------------------------------------------ */
/* Status codes and errors                                             */
/* ------------------------------------------------------------------ */

typedef enum nnp_status {
    NNP_OK = 0,
    NNP_ERR_INVALID = 1,     /* bad argument, parameter or input data */
    NNP_ERR_SHAPE = 2,       /* shapes that do not fit */
    NNP_ERR_NOMEM = 3,       /* allocation failed */
    NNP_ERR_OVERFLOW = 4,    /* a size computation would overflow */
    NNP_ERR_IO = 5,          /* file missing, unreadable, unwritable */
    NNP_ERR_FORMAT = 6,      /* malformed file contents */
    NNP_ERR_UNSUPPORTED = 7, /* valid but not implemented */
    NNP_ERR_NOT_FOUND = 8,   /* no such name, kind, attribute */
    NNP_ERR_ABI = 9,         /* plugin built for another ABI */
    NNP_ERR_DUPLICATE = 10,  /* a name registered twice */
    NNP_ERR_INTERNAL = 11,
    NNP_ERR_LIMIT = 12       /* over the memory budget (since 1.1) */
} nnp_status;

/* Error object owned by the caller; the callee writes code and message. */
#define NNP_ERROR_MSG_MAX 1024
typedef struct nnp_error {
    nnp_status code;
    char msg[NNP_ERROR_MSG_MAX];
} nnp_error;

/* ------------------------------------------------------------------ */
/* Tensors                                                             */
/* ------------------------------------------------------------------ */

#define NNP_MAX_RANK 8
#define NNP_ALIGN 64

typedef enum nnp_dtype {
    NNP_DTYPE_UNDEFINED = 0,
    NNP_F32 = 1,
    NNP_F64 = 2,
    NNP_I64 = 3,
    NNP_I32 = 4,
    NNP_F16 = 5,
    NNP_BF16 = 6,
    NNP_U8 = 7,
    NNP_BOOL = 8
} nnp_dtype;

typedef struct nnp_shape {
    int32_t rank;                 /* 0..NNP_MAX_RANK */
    int64_t dims[NNP_MAX_RANK];   /* each >= 0 */
} nnp_shape;

/* A dense, C-ordered tensor. A plain struct: whoever set `data` owns it
 * unless NNP_TENSOR_OWNED is set, in which case nnp tensor calls free it. */
#define NNP_TENSOR_OWNED 1u
/* (since 1.6) A rank-4 tensor of shape [N, C, H, W] whose data is laid out
 * [N][H][W][C]: channel c of (n, h, w) at ((n * H + h) * W + w) * C + c.
 * A host sets it only in inference forwards, on the inputs and output of
 * a kind whose NNP_EXT_LAYOUT accepts it there. */
#define NNP_TENSOR_NHWC 2u
typedef struct nnp_tensor {
    nnp_dtype dtype;
    nnp_shape shape;
    void *data;     /* NNP_ALIGN-aligned when allocated by the host */
    size_t nbytes;  /* bytes of data */
    uint32_t flags;
} nnp_tensor;

/* ------------------------------------------------------------------ */
/* Parameter schema                                                    */
/* ------------------------------------------------------------------ */

typedef enum nnp_param_type {
    NNP_PARAM_INT = 1,
    NNP_PARAM_FLOAT = 2,
    NNP_PARAM_BOOL = 3,
    NNP_PARAM_STRING = 4,
    NNP_PARAM_INITIALIZER = 5,
    NNP_PARAM_REGULARIZER = 6,
    NNP_PARAM_CONSTRAINT = 7,
    NNP_PARAM_SHAPE = 8,      /* list of ints; -1 or null for unknown */
    NNP_PARAM_INTS = 9,       /* list of ints (e.g. kernel_size, strides) */
    NNP_PARAM_LAYER = 10      /* a nested layer config (wrappers) */
} nnp_param_type;

/* Flags of a parameter definition. */
#define NNP_PARAM_NULLABLE      1u  /* JSON null allowed (e.g. "no regularizer") */
#define NNP_PARAM_HAS_MIN       2u
#define NNP_PARAM_HAS_MAX       4u
#define NNP_PARAM_MIN_EXCLUSIVE 8u  /* value must be > min, not >= */
#define NNP_PARAM_MAX_EXCLUSIVE 16u
/* (since 1.1) A key Keras writes that the kind accepts only at its default
 * value (a feature it does not implement): any other value is refused with
 * an error naming the key, so Keras's configs load and nothing is silently
 * ignored. */
#define NNP_PARAM_ONLY_DEFAULT  32u

typedef struct nnp_param_def {
    const char *name;         /* Keras's snake_case argument name */
    nnp_param_type type;
    const char *default_json; /* default as JSON text ("-1", "0.99", "null",
                                 "{\"class_name\":\"Zeros\",\"config\":{}}") */
    uint32_t flags;
    double min, max;          /* range for int/float, if flagged */
    const char *choices;      /* for strings: '|'-separated allowed values, or NULL */
    const char *doc;          /* one line */
} nnp_param_def;

/* ------------------------------------------------------------------ */
/* Opaque host objects                                                 */
/* ------------------------------------------------------------------ */

typedef struct nnp_config nnp_config;             /* typed layer config */
typedef struct nnp_initializer nnp_initializer;   /* a resolved initializer */
typedef struct nnp_regularizer nnp_regularizer;
typedef struct nnp_constraint nnp_constraint;
typedef struct nnp_onnx_writer nnp_onnx_writer;
typedef struct nnp_onnx_reader nnp_onnx_reader;
typedef struct nnp_layer nnp_layer;               /* a host-owned layer instance */

typedef enum nnp_mode {
    NNP_MODE_INFER = 0,
    NNP_MODE_TRAIN = 1
} nnp_mode;

/* A weight a layer exposes. Tensors are owned by the layer.
 * A weight's regularizer and constraint are the host's to apply: it adds
 * the regularization loss and its gradient once per training step (however
 * often the layer was applied) and projects the weight after each optimizer
 * step, as Keras does; kinds never apply them themselves. */
#define NNP_WEIGHT_TRAINABLE 1u
typedef struct nnp_weight {
    const char *name;          /* Keras name: "gamma", "beta", "moving_mean" */
    nnp_tensor *value;
    nnp_tensor *grad;          /* NULL for non-trainable weights */
    uint32_t flags;
    const nnp_regularizer *regularizer;  /* NULL: none */
    const nnp_constraint *constraint;    /* NULL: none */
} nnp_weight;

/* ------------------------------------------------------------------ */
/* Host services (handed to the plugin entry; valid while loaded)      */
/* ------------------------------------------------------------------ */

typedef struct nnp_host {
    size_t struct_size;
    uint32_t abi_major;
    uint32_t abi_minor;

    /* errors and logging */
    nnp_status (*error_set)(nnp_error *err, nnp_status code,
                            const char *fmt, ...) NNP_PRINTF(3, 4);
    void (*log)(int level, const char *fmt, ...) NNP_PRINTF(2, 3);

    /* memory: NNP_ALIGN-aligned, zeroed; sizes overflow-checked */
    nnp_status (*tensor_alloc)(nnp_tensor *t, nnp_dtype dtype,
                               const nnp_shape *shape, nnp_error *err);
    void (*tensor_free)(nnp_tensor *t);
    void *(*aligned_alloc)(size_t bytes);   /* zeroed; NULL on failure */
    void (*aligned_free)(void *p);
    nnp_status (*shape_numel)(const nnp_shape *s, int64_t *numel, nnp_error *err);

    /* config getters: key must be in the kind's schema */
    int64_t (*config_int)(const nnp_config *c, const char *key);
    double (*config_float)(const nnp_config *c, const char *key);
    int (*config_bool)(const nnp_config *c, const char *key);
    const char *(*config_string)(const nnp_config *c, const char *key);
    /* Returns the number of ints (or -1 when null); -1 entries mean unknown. */
    int (*config_ints)(const nnp_config *c, const char *key,
                       int64_t *out, int max_out);
    const nnp_initializer *(*config_initializer)(const nnp_config *c, const char *key);
    const nnp_regularizer *(*config_regularizer)(const nnp_config *c, const char *key); /* NULL = none */
    const nnp_constraint *(*config_constraint)(const nnp_config *c, const char *key);   /* NULL = none */
    const char *(*config_name)(const nnp_config *c);   /* the layer's name */
    uint64_t (*config_seed)(const nnp_config *c);      /* seed for this layer's initializers */

    /* config setters (used by from_onnx); value checked against the schema */
    nnp_status (*config_set_json)(nnp_config *c, const char *key,
                                  const char *json, nnp_error *err);
    nnp_status (*config_set_int)(nnp_config *c, const char *key, int64_t v, nnp_error *err);
    nnp_status (*config_set_float)(nnp_config *c, const char *key, double v, nnp_error *err);
    nnp_status (*config_set_bool)(nnp_config *c, const char *key, int v, nnp_error *err);

    /* initializers: fill a float32 tensor; fan_in/fan_out are computed from
       its shape as Keras does. The initializer's own seed wins; otherwise
       `seed` is used: pass seed_mix(config_seed(cfg), "<weight name>") so
       every weight of every layer gets its own reproducible stream. */
    nnp_status (*initializer_fill)(const nnp_initializer *init, nnp_tensor *t,
                                   uint64_t seed, nnp_error *err);
    /* regularizers on float32 weights */
    double (*regularizer_loss)(const nnp_regularizer *r, const float *w, int64_t n);
    void (*regularizer_grad_add)(const nnp_regularizer *r, const float *w,
                                 float *grad, int64_t n);
    /* constraints, in place, with Keras's axis meaning */
    nnp_status (*constraint_apply)(const nnp_constraint *c, nnp_tensor *w, nnp_error *err);

    /* parallelism: threads the host wants this run to use */
    int (*num_threads)(void);

    /* ONNX node writer (to_onnx). Names are copied. */
    int (*onnx_writer_opset)(const nnp_onnx_writer *w);
    /* Makes a graph-unique name from base; writes into buf. */
    const char *(*onnx_unique_name)(nnp_onnx_writer *w, const char *base,
                                    char *buf, size_t bufsize);
    /* Adds a node; returns its index (>= 0) or -1 with err set. */
    int (*onnx_add_node)(nnp_onnx_writer *w, const char *op_type,
                         const char *domain, const char *name,
                         const char *const *inputs, int n_inputs,
                         const char *const *outputs, int n_outputs,
                         nnp_error *err);
    nnp_status (*onnx_attr_int)(nnp_onnx_writer *w, int node, const char *name,
                                int64_t v, nnp_error *err);
    nnp_status (*onnx_attr_float)(nnp_onnx_writer *w, int node, const char *name,
                                  float v, nnp_error *err);
    nnp_status (*onnx_attr_ints)(nnp_onnx_writer *w, int node, const char *name,
                                 const int64_t *v, int n, nnp_error *err);
    nnp_status (*onnx_attr_string)(nnp_onnx_writer *w, int node, const char *name,
                                   const char *v, nnp_error *err);
    nnp_status (*onnx_add_initializer)(nnp_onnx_writer *w, const char *name,
                                       const nnp_tensor *t, nnp_error *err);
    nnp_status (*onnx_add_value_info)(nnp_onnx_writer *w, const char *name,
                                      nnp_dtype dtype, const nnp_shape *shape,
                                      nnp_error *err);

    /* ONNX node reader (from_onnx). Strings stay valid during the call. */
    const char *(*onnx_op_type)(const nnp_onnx_reader *r);
    const char *(*onnx_domain)(const nnp_onnx_reader *r);
    const char *(*onnx_node_name)(const nnp_onnx_reader *r);
    int (*onnx_reader_opset)(const nnp_onnx_reader *r);
    int (*onnx_n_inputs)(const nnp_onnx_reader *r);     /* including empty "" */
    int (*onnx_n_outputs)(const nnp_onnx_reader *r);
    const char *(*onnx_input_name)(const nnp_onnx_reader *r, int i);
    const char *(*onnx_output_name)(const nnp_onnx_reader *r, int i);
    int (*onnx_has_attr)(const nnp_onnx_reader *r, const char *name);
    nnp_status (*onnx_get_attr_int)(const nnp_onnx_reader *r, const char *name,
                                    int64_t *v, nnp_error *err);
    nnp_status (*onnx_get_attr_float)(const nnp_onnx_reader *r, const char *name,
                                      float *v, nnp_error *err);
    int (*onnx_get_attr_ints)(const nnp_onnx_reader *r, const char *name,
                              int64_t *v, int max_n, nnp_error *err);
    nnp_status (*onnx_get_attr_string)(const nnp_onnx_reader *r, const char *name,
                                       char *buf, size_t bufsize, nnp_error *err);
    /* The constant value of input i (an initializer or a folded constant
       subgraph), converted to float32; host-owned, valid during the call.
       NNP_ERR_NOT_FOUND when the input is not constant. */
    nnp_status (*onnx_input_constant)(const nnp_onnx_reader *r, int i,
                                      const nnp_tensor **t, nnp_error *err);
    /* Shape of input i as far as known (rank -1 when unknown). */
    nnp_status (*onnx_input_shape)(const nnp_onnx_reader *r, int i,
                                   nnp_shape *shape, nnp_error *err);

    /* Nested layers for wrappers (TimeDistributed): the host creates, builds
       and runs the inner layer named by a NNP_PARAM_LAYER parameter. */
    nnp_status (*layer_create)(const nnp_config *c, const char *key,
                               nnp_layer **inner, nnp_error *err);
    void (*layer_destroy)(nnp_layer *l);
    const char *(*layer_kind)(const nnp_layer *l);
    nnp_status (*layer_build)(nnp_layer *l, int n_in, const nnp_shape *in,
                              nnp_shape *out, nnp_error *err);
    nnp_status (*layer_forward)(nnp_layer *l, const nnp_tensor *const *in, int n_in,
                                nnp_tensor *out, nnp_mode mode, nnp_error *err);
    nnp_status (*layer_backward)(nnp_layer *l, const nnp_tensor *const *in, int n_in,
                                 const nnp_tensor *out, const nnp_tensor *grad_out,
                                 nnp_tensor *const *grad_in, nnp_mode mode,
                                 nnp_error *err);
    int (*layer_n_weights)(const nnp_layer *l);
    const nnp_weight *(*layer_weight)(const nnp_layer *l, int i);
    double (*layer_regularization_loss)(const nnp_layer *l);
    nnp_status (*layer_apply_constraints)(nnp_layer *l, nnp_error *err);

    /* ---- since 1.1 ---- */

    /* True when a nullable parameter holds null (config_float etc. read 0). */
    int (*config_is_null)(const nnp_config *c, const char *key);
    /* A seed derived from seed and a name (per-weight initializer streams). */
    uint64_t (*seed_mix)(uint64_t seed, const char *name);

    /* Interchange of nested layers: the inner layer writes its nodes, or
       loads its weights from the node the reader is positioned on. */
    nnp_status (*layer_to_onnx)(const nnp_layer *l, nnp_onnx_writer *w,
                                const char *const *inputs, int n_inputs,
                                const char *output, nnp_error *err);
    nnp_status (*layer_onnx_load_weights)(nnp_layer *l, const nnp_onnx_reader *r,
                                          nnp_error *err);

    /* ONNX node writer, continued: a written node's name and outputs, for
       the hooks of nnp_onnx_node_ext (write_training). */
    const char *(*onnx_writer_node_name)(const nnp_onnx_writer *w, int node);
    int (*onnx_writer_node_n_outputs)(const nnp_onnx_writer *w, int node);
    /* "" for an absent optional output; NULL when out of range. */
    const char *(*onnx_writer_node_output)(const nnp_onnx_writer *w, int node, int i);
    /* Names output i of a written node, adding absent ("") outputs before
       it; the name must be new to the graph (see onnx_unique_name). */
    nnp_status (*onnx_writer_set_output)(nnp_onnx_writer *w, int node, int i,
                                         const char *name, nnp_error *err);

    /* ONNX node reader, continued: the element type of input i as the file
       has it (a constant's own type, before any conversion; a computed
       value's declared type); NNP_DTYPE_UNDEFINED when absent or not one
       nnplug names. For the type checks of nnp_onnx_node_ext.check_node. */
    nnp_dtype (*onnx_input_dtype)(const nnp_onnx_reader *r, int i);

    /* ---- since 1.2 ---- */

    /* Tells a nested layer its weight values changed (see nnp_kind's
       weights_changed): wrappers pass their own weights_changed on. */
    void (*layer_weights_changed)(nnp_layer *l);
    /* A workspace the layers of a model share (each layer's calls run one
       at a time), for buffers a call needs only while it runs. In build, a
       kind asks for `bytes` of it: 1 when the host will hand at least that
       much to every forward and backward of this instance through scratch,
       0 when the kind must keep its own buffers (a layer built on its own,
       outside a model). */
    int (*scratch_reserve)(size_t bytes);
    /* In forward and backward: the workspace (64-byte aligned, contents
       undefined, at least `bytes`), or NULL when the call has none (a layer
       run outside the model that built it). */
    void *(*scratch)(size_t bytes);

    /* ---- since 1.3 ---- */

    /* Sums over the batch that give the same bits on any number of
       processes (data-parallel training, include/nnplug/dist.h). While the
       host trains in a process group, the batch a call runs on is this
       process's share of the global batch, cut into chunks fixed by the
       global batch size; a kind that reduces over the batch (weight
       gradients, batch statistics) may sum each chunk on its own and hand
       the partial sums, chunk by chunk in order, to a reduction, which
       combines them over every process's chunks in one fixed order.
       batch_chunks: for a call whose leading axis has `rows` rows (the
       samples, or samples times a factor: time steps folded into it), the
       number of chunks and chunk i's rows [*begin, *end); 0 when no split
       is in effect (one process; sum as usual) or rows do not fit it. */
    int (*batch_chunks)(int64_t rows, int i, int64_t *begin, int64_t *end);
    /* A reduction of len elements of dtype (NNP_F32 or NNP_F64); global:
       over the group (a collective: every process calls it at the same
       point; a layer's weight gradients reduced so count as summed over the
       group and the host does not sum them again), else over this
       process's chunks alone. */
    nnp_status (*reduce_begin)(nnp_dtype dtype, size_t len, int global, void **red,
                               nnp_error *err);
    /* The next chunk's partial sums (copied). */
    void (*reduce_add)(void *red, const void *partial);
    /* The total into out (len elements); frees red. */
    nnp_status (*reduce_end)(void *red, void *out, nnp_error *err);

    /* ---- since 1.4 ---- */

    /* For a call whose leading axis has `rows` rows (as batch_chunks
       counts them): the index of its first row among the rows of the
       whole global batch, and their number in *global_rows (may be NULL).
       Outside a data-parallel step, or for rows that do not fit the split:
       0 and rows. A kind that draws random numbers per sample keys them on
       the global row (first + i), so a sample gets the same draw on any
       number of processes. */
    int64_t (*batch_rows)(int64_t rows, int64_t *global_rows);

    /* ---- since 1.5 ---- */

    /* The tree a reduction sums by: node [lo, hi) of the chunk indices has
       the children [lo, lo + (hi - lo) / 2) and the rest, and the value
       left + right (a leaf: the chunk's partial sum); so the tree below a
       node depends on its size alone. reduce_cover: the number of whole
       nodes covering this process's chunks (the smallest set, in chunk
       order) and up to max of their sizes, in chunks. A kind that
       evaluates each of those nodes itself by that rule (a node of s
       chunks = the node of the first s / 2 chunks + the node of the rest)
       hands it, in order, to reduce_add_node (copied; the chunks must form
       the next node, reduce_end reports it otherwise): the same bits as
       reduce_add chunk by chunk, without a partial sum per chunk in
       memory. reduce_add(red, p) is reduce_add_node(red, 1, p). */
    int (*reduce_cover)(void *red, int *sizes, int max);
    void (*reduce_add_node)(void *red, int size, const void *value);
} nnp_host;

/* The size of the host table at each minor version (for NNP_HOST_AT_LEAST). */
#define NNP_HOST_SIZE_1_0 offsetof(nnp_host, config_is_null)
#define NNP_HOST_SIZE_1_1 offsetof(nnp_host, layer_weights_changed)
#define NNP_HOST_SIZE_1_2 offsetof(nnp_host, batch_chunks)
#define NNP_HOST_SIZE_1_3 offsetof(nnp_host, batch_rows)
#define NNP_HOST_SIZE_1_4 offsetof(nnp_host, reduce_cover)
#define NNP_HOST_SIZE_1_5 sizeof(nnp_host)
#define NNP_HOST_SIZE_1_6 sizeof(nnp_host)   /* 1.6 added no host function */
#define NNP_HOST_SIZE_1_7 sizeof(nnp_host)   /* nor did 1.7 */
#define NNP_HOST_SIZE_1_8 sizeof(nnp_host)   /* nor 1.8 */

static inline int nnp_host_at_least_(const nnp_host *host, unsigned minor)
{
    size_t need = minor == 0   ? NNP_HOST_SIZE_1_0
                  : minor == 1 ? NNP_HOST_SIZE_1_1
                  : minor == 2 ? NNP_HOST_SIZE_1_2
                  : minor == 3 ? NNP_HOST_SIZE_1_3
                  : minor == 4 ? NNP_HOST_SIZE_1_4
                  : minor == 5 ? NNP_HOST_SIZE_1_5
                  : minor == 6 ? NNP_HOST_SIZE_1_6
                  : minor == 7 ? NNP_HOST_SIZE_1_7
                               : NNP_HOST_SIZE_1_8;
    return host != NULL && host->abi_major == NNP_ABI_MAJOR && host->abi_minor >= minor &&
           host->struct_size >= need;
}

/* ------------------------------------------------------------------ */
/* Layer kinds                                                         */
/* ------------------------------------------------------------------ */

/* The ONNX operator a kind reads and writes. */
typedef struct nnp_onnx_op {
    const char *domain;   /* "" for the default ai.onnx domain */
    const char *op_type;  /* "BatchNormalization"; NULL when none */
    int opset_min;
    int opset_max;        /* inclusive */
} nnp_onnx_op;

#define NNP_EXT_ONNX_OPS "nnp.onnx_ops"

/* (since 1.3) ONNX element types (TensorProto.DataType) as bits of
 * nnp_onnx_input_rule.types. */
#define NNP_ONNX_TYPE(t) (1u << (t))
#define NNP_ONNX_T_FLOAT NNP_ONNX_TYPE(1)
#define NNP_ONNX_T_UINT8 NNP_ONNX_TYPE(2)
#define NNP_ONNX_T_INT8 NNP_ONNX_TYPE(3)
#define NNP_ONNX_T_INT32 NNP_ONNX_TYPE(6)
#define NNP_ONNX_T_INT64 NNP_ONNX_TYPE(7)
#define NNP_ONNX_T_BOOL NNP_ONNX_TYPE(9)
#define NNP_ONNX_T_FLOAT16 NNP_ONNX_TYPE(10)
#define NNP_ONNX_T_DOUBLE NNP_ONNX_TYPE(11)
#define NNP_ONNX_T_BFLOAT16 NNP_ONNX_TYPE(16)
/* ONNX's usual constraint "float types": float16, float, double, bfloat16 */
#define NNP_ONNX_T_FLOATS \
    (NNP_ONNX_T_FLOAT | NNP_ONNX_T_FLOAT16 | NNP_ONNX_T_DOUBLE | NNP_ONNX_T_BFLOAT16)
/* Ranks as bits of nnp_onnx_input_rule.ranks: rank r, or r and above. */
#define NNP_ONNX_RANK(r) (1u << (r))
#define NNP_ONNX_RANK_MIN(r) (~0u << (r))
/* nnp_onnx_input_rule.input: the rule holds for every input of the node. */
#define NNP_ONNX_EVERY_INPUT (-1)
#define NNP_ONNX_NO_INPUT (-1)

/* (since 1.3) One of ONNX's rules for one input of an operator a kind reads,
 * as the operator's schema states it (its type constraint, its rank, its
 * length); the host checks every input the file gives against the rules of
 * its node's operator before the layer is created, and names the file, the
 * node and the input when one fails (a type: NNP_ERR_FORMAT; a rank or a
 * length: NNP_ERR_SHAPE). What the graph does not tell (a computed value's
 * unknown shape) is not checked. An array ended by an entry whose name is
 * NULL. */
typedef struct nnp_onnx_input_rule {
    const char *op_type;   /* the operator (default domain); NULL: every one the kind reads */
    int input;             /* input position, or NNP_ONNX_EVERY_INPUT */
    const char *name;      /* ONNX's name for the input ("scale"); NULL ends the array */
    uint32_t types;        /* allowed element types (NNP_ONNX_T_* bits); 0: any */
    uint32_t ranks;        /* allowed ranks (NNP_ONNX_RANK* bits); 0: any */
    int rank_as;           /* >= 0: the rank equals that input's; NNP_ONNX_NO_INPUT: none */
    int len_input;         /* >= 0: the element count equals dimension len_axis of ... */
    int len_axis;          /* ... input len_input (when known); NNP_ONNX_NO_INPUT: none */
} nnp_onnx_input_rule;

/* Extension NNP_EXT_ONNX_NODE (since 1.1; a kind that offers it needs a 1.1
 * host): what a kind knows about its ONNX node beyond one input, one output
 * and its attributes. The host's interchange code knows no operator; every
 * operator-specific rule lives in the kind, here. Every member MAY be NULL. */
#define NNP_EXT_ONNX_NODE "nnp.onnx_node"
typedef struct nnp_onnx_node_ext {
    size_t struct_size;
    /* Node outputs after the first that hold a weight's value after a
       training-mode forward, by output position: weight_outputs[k] names
       the weight output k carries (entry 0 is unused), ended by NULL; e.g.
       {"", "moving_mean", "moving_variance", NULL}. */
    const char *const *weight_outputs;
    /* Whether the node the reader is on computes in training mode. */
    nnp_status (*read_training)(const nnp_host *host, const nnp_onnx_reader *r,
                                int *train, nnp_error *err);
    /* Makes written node `node` (the kind's own op, from to_onnx) compute in
       training mode. The host calls it once the outputs the model reads
       (weight_outputs) are in place; the kind names any further outputs
       its training form needs and describes them (onnx_add_value_info). */
    nnp_status (*write_training)(const void *state, nnp_onnx_writer *w, int node,
                                 nnp_error *err);
    /* Checks a node against what is known of its inputs (shapes through
       onnx_input_shape, constants) before a layer is created from it, so a
       file cannot make the layer allocate what its own weights contradict.
       Errors need not name the file or node; the host adds both. */
    nnp_status (*check_node)(const nnp_host *host, const nnp_onnx_reader *r, nnp_error *err);
    /* Layout folds: when set, the host reads Transpose(perm) -> node ->
       Transpose(inverse of perm) as one application of the kind on the
       Transpose's input; fold_transpose sets the config (from_onnx's, read
       from the node) for that layout: e.g. BatchNormalization's axis becomes
       perm[1]. The reader's input 0 is then the Transpose's input, with the
       shape the node sees (permuted). */
    nnp_status (*fold_transpose)(const nnp_host *host, const int64_t *perm, int rank,
                                 const nnp_shape *input, nnp_config *cfg, nnp_error *err);
    /* Following-node folds: ops (default domain, NULL-terminated) of a node
       that reads the kind's node's output and one constant, such as the
       Add that carries a MatMul's bias. The host reads the pair as one
       application of the kind; the reader presents that constant as one
       more input, after the node's own. */
    const char *const *fold_next;

    /* ---- since 1.3 ---- */

    /* ONNX's type, rank and length rules for the inputs of the operators
       the kind reads (see nnp_onnx_input_rule); NULL: none. The host checks
       them before check_node. */
    const nnp_onnx_input_rule *input_rules;
} nnp_onnx_node_ext;

/* Extension NNP_EXT_KERAS_DEFAULTS (since 1.1): parameter defaults that
 * depend on the Keras that wrote a model. When a Keras model's
 * keras_version starts with keras_version_prefix and a layer's config
 * leaves `param` out, the loader sets it to value_json, so the loaded
 * config states the choice and every round trip keeps it. An array ended
 * by an entry whose keras_version_prefix is NULL. */
#define NNP_EXT_KERAS_DEFAULTS "nnp.keras_defaults"
typedef struct nnp_keras_default {
    const char *keras_version_prefix;   /* "2.": tf.keras 2.x */
    const char *param;
    const char *value_json;
} nnp_keras_default;

/* Extension NNP_EXT_EPILOGUE (since 1.2): inference plans that fold what
 * follows a layer into it. A host MAY fuse producer -> affine [-> relu]
 * (or producer -> relu, and since 1.6 producer -> [affine ->] sum [->
 * relu]) when each value in the chain has that one consumer, is no graph
 * output, and every layer in it is applied once; it then runs only the
 * producer in inference-mode forwards, writing the last layer's output.
 * Training-mode forwards fuse only producer -> relu, through
 * plan_train_relu (since 1.7). Every member MAY be NULL. */
#define NNP_EXT_EPILOGUE "nnp.epilogue"
typedef struct nnp_epilogue_ext {
    size_t struct_size;
    /* Consumer side. The axis (0..rank-1) over which this instance, in an
       inference forward of a rank-`rank` input, computes
       y = x * scale[c] + shift[c]; -1 when it does not. */
    int (*affine_axis)(const void *state, int rank);
    /* Fills that scale and shift (one float per channel of that axis) from
       the current weights; the host calls it before each fused forward. */
    void (*inference_affine)(const void *state, float *scale, float *shift);
    /* Consumer side: whether this instance computes max(x, 0) elementwise. */
    int (*is_relu)(const void *state);
    /* Producer side, a build-time call (may allocate): from now on its
       inference forwards compute act(y * scale[c] + shift[c]) over output
       axis `axis` (-1: no affine), act = max(., 0) when relu, else none;
       axis -1 and relu 0 clear the epilogue. An error means the kind cannot
       (the host then runs the chain unfused). Called after build. */
    nnp_status (*plan_epilogue)(void *state, int axis, int relu, nnp_error *err);
    /* Producer side, run time: the affine for the following inference
       forwards (the kind copies it; no allocation). Needed only by a kind
       that accepts an affine. */
    void (*set_affine)(void *state, const float *scale, const float *shift);
    /* Producer side, export: writes nodes computing, from inputs, `output`
       = (the kind's result) * scale[c] + shift[c] over output axis `axis`,
       the affine folded into the weights written (an inference export, as
       `nnplug convert --fold-bn` makes); an error when it cannot. */
    nnp_status (*to_onnx_affine)(const void *state, nnp_onnx_writer *w,
                                 const char *const *inputs, int n_inputs, const char *output,
                                 int axis, const float *scale, const float *shift,
                                 nnp_error *err);
    /* ---- since 1.6: residual sums, producer -> [affine ->] sum [-> relu],
       where the sum's other input is computed before the producer runs ---- */
    /* Consumer side: whether this instance computes in[0] + in[1] of two
       inputs of one shape, elementwise. */
    int (*is_sum)(const void *state, int n_inputs);
    /* Producer side, a build-time call: plan_epilogue's, and with `sum` set
       its inference forwards compute act(y * scale[c] + shift[c] + r), r
       what the output tensor holds on entry (the host puts the sum's other
       input there first). An error means the kind cannot. */
    nnp_status (*plan_epilogue_sum)(void *state, int axis, int relu, int sum, nnp_error *err);
    /* ---- since 1.7: training, producer -> relu ---- */
    /* Producer side, a build-time call: with relu set, from now on its
       training-mode forwards write r = max(y, 0) (y > 0 ? y : 0, y its own
       result) to the output tensor, and its training-mode backwards are
       handed r as `out` and dL/dr as grad_out: the kind takes dL/dy =
       (r > 0 ? dL/dr : 0) itself, and MAY write over grad_out's data to do
       so (the host reads it no more). relu 0 clears. Inference-mode calls
       are unchanged. An error means the kind cannot (the host then runs the
       two layers apart). A host MAY fuse when the producer's output has
       that ReLU as its one reader, is no graph output, and both layers are
       applied once. */
    nnp_status (*plan_train_relu)(void *state, int relu, nnp_error *err);
} nnp_epilogue_ext;

/* Extension NNP_EXT_BACKWARD_READS (since 1.4): what a kind's training
 * backward reads of the values it is given, so that a host may hand a
 * value's memory to another value once nothing will read it again. A host
 * assumes a kind without it reads every input and its output. */
#define NNP_EXT_BACKWARD_READS "nnp.backward_reads"
#define NNP_READS_INPUTS 1u   /* the data of in[] */
#define NNP_READS_OUTPUT 2u   /* the data of out */
typedef struct nnp_backward_reads_ext {
    size_t struct_size;
    /* NNP_READS_* for this instance as built. Its backward MUST NOT read
       the data of a tensor it does not declare (the tensors and their
       addresses stay valid; what they hold may be another value by then). */
    uint32_t (*reads)(const void *state);
} nnp_backward_reads_ext;

/* Extension NNP_EXT_IN_PLACE (since 1.7): inference forwards that write
 * their output over an input. A host MAY hand an inference-mode forward an
 * output tensor whose data is input k's (the same shape and layout) when
 * inference_in_place(state, k) is nonzero and nothing reads that input
 * after; the kind then reads every element of it before writing that
 * element (elementwise kinds). Training forwards never get one. */
#define NNP_EXT_IN_PLACE "nnp.in_place"
typedef struct nnp_in_place_ext {
    size_t struct_size;
    int (*inference_in_place)(const void *state, int k);
} nnp_in_place_ext;

/* Extension NNP_EXT_GRAD_STORE (since 1.8): a backward that writes the
 * weight gradients. A host MAY call store_next_backward(state) right before
 * a backward of the instance; that backward then WRITES the data part of
 * each trainable weight's gradient, the values it would have added to
 * zeros (a zero may come out as -0), and the host does not zero them
 * before. It applies to that one backward. */
#define NNP_EXT_GRAD_STORE "nnp.grad_store"
typedef struct nnp_grad_store_ext {
    size_t struct_size;
    void (*store_next_backward)(void *state);
} nnp_grad_store_ext;

/* Extension NNP_EXT_LAYOUT (since 1.6): activations that stay in another
 * layout between layers in inference plans. A host MAY hand a rank-4 value
 * to its writer and readers as NNP_TENSOR_NHWC in inference forwards when
 * the writer offers it for its output and every reader for the input it
 * reads it at, and the value is no graph input or output (those are always
 * plain). A kind given such a tensor where it did not offer one, or was
 * not told of it by plan_layouts, MUST fail the call. Training forwards
 * and backwards never see one. */
#define NNP_EXT_LAYOUT "nnp.layout"
#define NNP_LAYOUT_NHWC 1u        /* NNP_TENSOR_NHWC */
#define NNP_LAYOUT_TIED (1u << 31) /* this input (or output) and every other
                                      one so marked take one layout together */
typedef struct nnp_layout_ext {
    size_t struct_size;
    /* The layouts besides plain (NNP_LAYOUT_* bits, with NNP_LAYOUT_TIED)
       this instance, as built, reads at input k in inference forwards, or
       with k = -1 writes as its output; 0: plain only. */
    uint32_t (*inference_layouts)(const void *state, int k);
    /* A build-time call (MAY be NULL; may allocate): the layouts (0 or
       NNP_LAYOUT_*) of its n_in inputs and its output in the inference
       forwards of this build. An error: the host plans again with this
       node's values plain. */
    nnp_status (*plan_layouts)(void *state, const uint32_t *in, int n_in, uint32_t out,
                               nnp_error *err);
} nnp_layout_ext;

/* Kind flags */
#define NNP_KIND_WRAPPER 1u   /* has a NNP_PARAM_LAYER parameter "layer" */

/*
 * Lifecycle and ownership of a kind's calls (MUST: the host relies on it;
 * MAY: allowed).
 *
 * Required and optional callbacks
 *  - create, destroy, build and forward MUST be set; the loader refuses a
 *    kind without them.
 *  - Every other callback MAY be NULL: n_weights and weight (both, for a
 *    kind without weights), backward (not trainable through), the
 *    regularization and constraint hooks, to_onnx, from_onnx,
 *    onnx_load_weights and extension.
 *
 * create
 *  - On success create MUST set *state; the state belongs to the kind until
 *    the host passes it to destroy, exactly once.
 *  - On failure create MUST set err, free whatever it allocated and leave
 *    *state unused: the host never passes a failed create's state to
 *    destroy.
 *  - The config stays valid and unchanged until destroy; the kind MAY keep
 *    a pointer to it, and to the host table.
 * destroy
 *  - MUST accept NULL (and do nothing).
 * build
 *  - MAY be called again with new input shapes; weights MUST survive a
 *    rebuild whose weight shapes do not change. After a failed build the
 *    host calls nothing but build and destroy.
 * forward and backward
 *  - MUST NOT allocate through the system allocator, do I/O or keep pointers
 *    to their tensors after returning; the tensors belong to the host.
 *  - The host never calls forward, backward, build or the weight hooks of
 *    one instance from two threads at once; separate instances MAY run
 *    concurrently, so kinds MUST NOT keep mutable global state. Inside a
 *    call a kind MAY use up to host->num_threads() OpenMP threads.
 *  - Their results MUST NOT depend on the number of threads (bitwise).
 * weights
 *  - The nnp_weight entries and their tensors belong to the kind and stay
 *    valid until the next build or destroy; the host MAY write their values
 *    (optimizer steps, loading) and their grad tensors.
 *  - A 1.2 host (NNP_HOST_AT_LEAST(host, 2)) MUST call weights_changed
 *    after it, or its user, writes weight values and before the next
 *    forward: after each optimizer step and constraint projection, after
 *    loading, and when an application calls nnp_layer_weights_changed
 *    (which it MUST after writing a weight's values itself). A kind MAY
 *    then keep forms derived from its weights (a kernel reordered for its
 *    engine, a folded normalization) across forward calls until the next
 *    weights_changed, build or backward. With an older host a kind MUST NOT
 *    keep them: it derives them in every forward.
 * from_onnx, onnx_load_weights, to_onnx
 *  - Reader and writer objects, and the strings and tensors they hand out,
 *    are the host's, valid only during the call.
 */

typedef struct nnp_kind {
    size_t struct_size;
    uint32_t abi_major;
    uint32_t abi_minor;

    const char *name;          /* Keras class name: "BatchNormalization" */
    const char *doc;           /* one line */
    const nnp_param_def *params;
    int n_params;
    nnp_onnx_op onnx;
    int n_inputs_min, n_inputs_max;
    uint32_t flags;

    /* Build-time calls: may allocate, may fail. */
    nnp_status (*create)(const nnp_host *host, const nnp_config *cfg,
                         void **state, nnp_error *err);
    void (*destroy)(void *state);
    /* Validates input shapes (dims may be -1 = unknown batch), computes the
       output shape, allocates weights (through the initializers), their
       gradients and all per-channel scratch. May be called again with new
       input shapes; weights are kept when their shapes do not change. */
    nnp_status (*build)(void *state, int n_in, const nnp_shape *in,
                        nnp_shape *out, nnp_error *err);
    /* Both NULL for a kind without weights. */
    int (*n_weights)(const void *state);
    const nnp_weight *(*weight)(const void *state, int i);

    /* Run-time calls: no allocation, no I/O. */
    nnp_status (*forward)(void *state, const nnp_tensor *const *in, int n_in,
                          nnp_tensor *out, nnp_mode mode, nnp_error *err);
    /* Writes grad_in[i] (NULL entries are skipped) and ADDS the data part of
       the weight gradients into each trainable weight's grad (the host adds
       the weights' regularizer gradients itself, once per step).
       `out` is the forward output of the same step; mode as in forward. */
    nnp_status (*backward)(void *state, const nnp_tensor *const *in, int n_in,
                           const nnp_tensor *out, const nnp_tensor *grad_out,
                           nnp_tensor *const *grad_in, nnp_mode mode,
                           nnp_error *err);
    /* Optional (NULL when none): penalties and projections beyond the
       per-weight regularizers and constraints the host applies. */
    double (*regularization_loss)(const void *state);
    nnp_status (*apply_constraints)(void *state, nnp_error *err);

    /* Interchange. to_onnx writes nodes computing `output` from `inputs`. */
    nnp_status (*to_onnx)(const void *state, nnp_onnx_writer *w,
                          const char *const *inputs, int n_inputs,
                          const char *output, nnp_error *err);
    /* from_onnx fills cfg (pre-set to the schema defaults) from a node. */
    nnp_status (*from_onnx)(const nnp_host *host, const nnp_onnx_reader *r,
                            nnp_config *cfg, nnp_error *err);
    /* After create+build from an ONNX node: copy its constant weights. */
    nnp_status (*onnx_load_weights)(void *state, const nnp_onnx_reader *r,
                                    nnp_error *err);

    /* Optional capabilities looked up by name; NULL when none. Known names:
       NNP_EXT_ONNX_OPS -> const nnp_onnx_op[] of further ONNX operators the
       kind imports, ended by an entry whose op_type is NULL;
       NNP_EXT_ONNX_NODE -> const nnp_onnx_node_ext * (since 1.1);
       NNP_EXT_KERAS_DEFAULTS -> const nnp_keras_default[] (since 1.1). */
    const void *(*extension)(const char *name);

    /* ---- since 1.2 ---- */

    /* Optional: the values of this instance's weights changed (see the
       lifecycle rules above); discard whatever was derived from them. */
    void (*weights_changed)(void *state);
} nnp_kind;

typedef struct nnp_plugin {
    size_t struct_size;
    uint32_t abi_major;
    uint32_t abi_minor;
    const char *name;          /* "batchnorm" */
    const char *version;       /* "1.0.0" */
    const nnp_kind *const *kinds;
    int n_kinds;
} nnp_plugin;

typedef const nnp_plugin *(*nnp_plugin_entry_fn)(const nnp_host *host);

/* Every plugin defines this function (and exports nothing else). */
NNP_EXPORT const nnp_plugin *nnp_plugin_entry(const nnp_host *host);

#ifdef __cplusplus
}
#endif
#endif /* NNPLUG_PLUGIN_H */
