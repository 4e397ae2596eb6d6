/* ONNX interchange internals shared by the onnx_*.c files of this folder
 * (import, export, tensors, the node reader and writer). Only these files
 * see protobuf-c. */
#ifndef NNP_ONNX_INTERNAL_H
#define NNP_ONNX_INTERNAL_H
#include "nnplug/nnplug.h"
#include "nnplug/onnx.h"
#include "plugin/instance_internal.h"
#include "plugin/onnx_ops.h"

#include <onnx/onnx.pb-c.h>
#include <jansson.h>

/* Absent proto2 strings are NULL. */
#define ONNX_STR(s) ((s) ? (s) : "")

/* ---- string -> int map (open addressing; keys copied) ---------------- */
typedef struct onnx_map {
    char **keys;
    int *vals;
    size_t cap, n;
} onnx_map;

int nnpi_onnx_map_get(const onnx_map *m, const char *key);   /* -1 when absent */
nnp_status nnpi_onnx_map_put(onnx_map *m, const char *key, int val, nnp_error *err);
void nnpi_onnx_map_free(onnx_map *m);

/* ---- tensors (onnx_tensor.c) ----------------------------------------- */
/* "FLOAT", "FLOAT16", ... for messages. */
const char *nnpi_onnx_dtype_name(int onnx_dtype);
/* ONNX element type of an nnp dtype (0 when none) and back. */
int nnpi_onnx_dtype_from_nnp(nnp_dtype dt);
nnp_dtype nnpi_onnx_dtype_to_nnp(int onnx_dtype);
/* True for FLOAT, FLOAT16, BFLOAT16, DOUBLE. */
int nnpi_onnx_dtype_is_float(int onnx_dtype);

float nnpi_onnx_f16_to_f32(uint16_t h);
uint16_t nnpi_onnx_f32_to_f16(float f);
float nnpi_onnx_bf16_to_f32(uint16_t b);
uint16_t nnpi_onnx_f32_to_bf16(float f);

/* Reads a TensorProto into a new tensor: float element types become
 * float32, integer and bool ones int64. Checks rank (<= NNP_MAX_RANK), dims,
 * element count overflow and the data length against the dims before
 * allocating. External data is read from base_dir (NULL: refused). `label`
 * prefixes messages (the model file). *onnx_dtype gets the stored type. */
nnp_status nnpi_onnx_tensor_read(const Onnx__TensorProto *tp, const char *label,
                                 const char *base_dir, nnp_tensor *out, int *onnx_dtype,
                                 nnp_error *err);
/* A float32 copy of an F32/F64/I64 tensor (new storage). */
nnp_status nnpi_onnx_tensor_to_f32(const nnp_tensor *in, nnp_tensor *out, nnp_error *err);
/* Fills an initialized TensorProto (name, dims, data_type, raw_data) from t,
 * converting float32 data to onnx_dtype (FLOAT, FLOAT16, BFLOAT16, DOUBLE);
 * other tensors keep their type (0 = keep). */
nnp_status nnpi_onnx_tensor_write(Onnx__TensorProto *tp, const char *name, const nnp_tensor *t,
                                  int onnx_dtype, nnp_error *err);
/* Resolves an external-data location against base_dir: relative, not
 * escaping the folder (lexically or through links), an existing regular
 * file. *out is malloc'ed. */
nnp_status nnpi_onnx_external_path(const char *base_dir, const char *location, const char *label,
                                   const char *tensor, char **out, nnp_error *err);

/* ---- protobuf helpers (onnx_export.c) ----------------------------------- */
char *nnpi_onnx_strdup(const char *s);   /* NULL on failure */

/* ---- attributes (onnx_node.c) ----------------------------------------- */
const Onnx__AttributeProto *nnpi_onnx_find_attr(const Onnx__NodeProto *n, const char *name);
/* The attribute's type, inferred from its set field when `type` is absent
 * (IR 3 files may omit it). */
int nnpi_onnx_attr_type(const Onnx__AttributeProto *a);
const char *nnpi_onnx_attr_type_name(int type);

/* ---- node reader (import side) ---------------------------------------- */
struct onnx_import;
struct nnp_onnx_reader {
    const nnp_onnx_reader_ops *ops;   /* first: how the host table reaches it */
    struct onnx_import *imp;
    const Onnx__NodeProto *node;
    const char *name;      /* the node's name, or a generated one */
    int opset;             /* of the node's domain */
    const char *in0;       /* replaces input 0 (folded Transpose), or NULL */
    const int64_t *perm0;  /* with in0: the folded Transpose's perm ... */
    int rank0;             /* ... and its length */
    const char *extra_in;  /* a folded following node's constant: one more input */
};
/* Implemented by onnx_graph.c for the reader. */
nnp_status nnpi_onnx_import_constant(struct onnx_import *imp, const char *tensor,
                                     const nnp_tensor **t, nnp_error *err);
nnp_status nnpi_onnx_import_shape(struct onnx_import *imp, const char *tensor, nnp_shape *s,
                                  nnp_error *err);
/* A tensor's element type as the file has it (see nnp_host.onnx_input_dtype). */
nnp_dtype nnpi_onnx_import_dtype(struct onnx_import *imp, const char *tensor);
/* The same as ONNX's TensorProto.DataType (0 when unknown). */
int nnpi_onnx_import_elem_type(struct onnx_import *imp, const char *tensor);
/* The shape of a folded Transpose's input as the node inside the fold sees
 * it (permuted by perm); rank -1 when unknown or not computed at run time. */
nnp_status nnpi_onnx_import_fold_shape(struct onnx_import *imp, const char *tensor,
                                       const int64_t *perm, int rank, nnp_shape *s);

/* The implementations (onnx_node.c). */
extern const nnp_onnx_reader_ops nnpi_onnx_reader_ops;
extern const nnp_onnx_writer_ops nnpi_onnx_writer_ops;

/* ---- node writer (export side) ---------------------------------------- */
struct nnp_onnx_writer {
    const nnp_onnx_writer_ops *ops;   /* first: how the host table reaches it */
    int opset;
    Onnx__NodeProto **nodes;
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto **inits;
    const void **init_data;     /* layer weight data each initializer came from */
    char **init_ref;            /* the name nodes read it by (a Cast's output when cast) */
    size_t n_inits_ref;         /* init_ref entries still owned (export may move inits) */
    size_t n_inits, cap_inits;
    Onnx__ValueInfoProto **vis;
    size_t n_vis, cap_vis;
    onnx_map names;             /* every tensor and node name in use */
    onnx_map aliases;           /* initializer name -> index of the one it repeats */
    onnx_map node_names;        /* node name -> node index */
    onnx_map produced;          /* tensor name -> index of the node producing it */
    onnx_map init_names;        /* initializer names (stored and referenced) -> index */
    /* the layer being exported */
    const nnp_layer *layer;
    const json_t *dtypes;       /* {"weight": "float16", ...} of that layer, or NULL */
};
void nnpi_onnx_writer_init(nnp_onnx_writer *w, int opset);
void nnpi_onnx_writer_free(nnp_onnx_writer *w);
/* Marks a name used (graph inputs, model values). */
nnp_status nnpi_onnx_writer_reserve(nnp_onnx_writer *w, const char *name, nnp_error *err);
/* Value info for a tensor (dims < 0 become the symbolic "N"). */
Onnx__ValueInfoProto *nnpi_onnx_make_value_info(const char *name, int elem_type,
                                                const nnp_shape *shape);
nnp_status nnpi_onnx_writer_add_vi(nnp_onnx_writer *w, const char *name, int elem_type,
                                   const nnp_shape *shape, nnp_error *err);
/* Appends an output name to node `node`. */
nnp_status nnpi_onnx_writer_node_add_output(nnp_onnx_writer *w, int node, const char *name,
                                            nnp_error *err);

/* The weight that output pos (>= 1) of the kind's node carries in training
 * mode (its extension's weight_outputs), or NULL. */
const char *nnpi_onnx_weight_output(const nnp_kind *k, int pos);
/* The host table's onnx_writer_set_output. */
nnp_status nnpi_onnx_writer_set_output(nnp_onnx_writer *w, int node, int i, const char *name,
                                       nnp_error *err);

#endif
