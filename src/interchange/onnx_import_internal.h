/* One ONNX import in progress: its state and the steps that fill it,
 * shared by the files that carry the import out (see onnx_import.c's top
 * comment for the order of the steps):
 *   onnx_wire.c     steps 1-2: the bytes (nesting depth, unpack), the model
 *                   (IR version, opset_import, graph present);
 *   onnx_graph.c    steps 3-5, 7, 9: names, initializers, topological order,
 *                   graph inputs and outputs, and the value lookups the node
 *                   reader answers;
 *   onnx_fold.c     step 6: serving kinds, Transpose folds, and the groups of
 *                   nodes one layer of ours wrote (nnplug.layers);
 *   onnx_builtin.c  step 8 for Constant, Identity and Cast, which the host
 *                   resolves itself;
 *   onnx_import.c   step 8 for layers, metadata, the entry points. */
#ifndef NNP_ONNX_IMPORT_INTERNAL_H
#define NNP_ONNX_IMPORT_INTERNAL_H
#include "interchange/onnx_internal.h"

#include <stdio.h>
#include <string.h>

/* Inputs, and outputs, a node may have. */
#define MAX_NODE_IO 1024

/* Sets the calling function's err and gives its code. */
#define FAIL(code, ...) nnp_error_set(err, code, __VA_ARGS__)

enum { V_UNSET = 0, V_CONST, V_RUNTIME };

typedef struct ival {
    const char *name;           /* borrowed from the proto */
    int kind;                   /* V_* */
    int producer;               /* node index, -1 for inputs and initializers */
    int is_init, is_input, is_output;
    const Onnx__ValueInfoProto *vi;
    nnp_tensor t;               /* V_CONST: float32 or int64 (owned unless alias >= 0) */
    nnp_tensor f32;             /* float32 copy of an int64 constant, made on demand */
    int alias;                  /* V_CONST: the ival holding the data, or -1 */
    int onnx_dtype;             /* stored element type of a constant */
    int value;                  /* V_RUNTIME: model value id */
    int n_uses;                 /* node inputs reading it */
    int first_use;              /* first reading node (index), -1 */
} ival;

typedef struct inode {
    const Onnx__NodeProto *p;
    char *name;                 /* given or generated */
    int opset;
    int is_default_domain;
    const nnp_kind *kind;
    int skip;                   /* a Transpose folded into its neighbour's layer */
    int fold_in, fold_out;      /* ival ids replacing input 0 / output 0, or -1 */
    int64_t fold_perm[NNP_MAX_RANK];   /* the folded Transpose's perm ... */
    int fold_rank;                     /* ... and its length */
    int fold_extra;             /* ival id of a folded following node's constant, or -1 */
    int group;                  /* nnplug.layers entry it was written by, or -1 */
    int comp;                   /* which application of that entry's layer */
    int done;                   /* consumed by a group */
} inode;

typedef struct domain_opset {
    const char *domain;         /* "" for ai.onnx */
    int64_t version;
} domain_opset;

struct onnx_import {
    const nnp_registry *reg;
    const char *label;
    const char *base_dir;
    const nnp_onnx_load_options *opts;
    Onnx__ModelProto *mp;
    const Onnx__GraphProto *g;
    domain_opset *opsets;
    size_t n_opsets;
    ival *v;
    int nv;
    onnx_map by_name;
    inode *nodes;
    int nn;
    int *order;
    nnp_model *m;
    json_t *meta_layers;        /* "nnplug.layers" of the file, or NULL */
    onnx_map meta_node;         /* node name -> application (index in comp_entry) */
    int *comp_entry;            /* application -> index in meta_layers */
    int n_comp;
    int *members, *comp_start;  /* node indices by application */
    int *inside;                /* per ival: reads by the group at hand (scratch) */
    json_t *dtypes;             /* {"layer": {"weight": "float16"}} */
    json_t *report;             /* per node, for nnplug info */
    json_t *bound;              /* graph inputs made constants */
    /* The batch: free (the first axis of a data input, -1 in the model), or
     * fixed at the size the file gives when a node needs it (a Reshape or
     * Flatten across the batch axis, as exports traced at one batch size
     * write): the import is then run again with fixed_batch set. */
    int fixed_batch;
    int64_t file_batch;         /* the data inputs' first dimension in the file; -1 when
                                   symbolic or when they disagree */
    char batch_node[600];       /* the layer node the free-batch import failed at */
};

/* One layer application: the node whose reader the plugin sees, its
 * computed inputs, its output, and where the config comes from. */
typedef struct app {
    inode *main;
    nnp_onnx_reader r;
    const nnp_kind *kind;
    int ins[MAX_NODE_IO];
    int n_in;
    ival *out;
    const json_t *entry;   /* nnplug.layers entry (our own export), or NULL */
    int n_members;         /* ONNX nodes it stands for */
} app;

/* The input rules the node's kind declares (nnp_onnx_node_ext.input_rules),
 * checked against what the graph says of the reader's inputs
 * [onnx_rules.c]. */
nnp_status nnpi_onnx_check_rules(struct onnx_import *imp, const nnp_onnx_reader *r,
                                 const nnp_kind *kind, nnp_error *err);

static inline const char *dom_norm(const char *d)
{
    if (!d || !d[0] || strcmp(d, "ai.onnx") == 0)
        return "";
    return d;
}

static inline ival *V(struct onnx_import *imp, const char *name)
{
    int i = name && name[0] ? nnpi_onnx_map_get(&imp->by_name, name) : -1;
    return i >= 0 ? &imp->v[i] : NULL;
}

static inline ival *const_root(struct onnx_import *imp, ival *x)
{
    while (x && x->kind == V_CONST && x->alias >= 0)
        x = &imp->v[x->alias];
    return x;
}

static inline int is_op(const inode *n, const char *op)
{
    return n->is_default_domain && strcmp(n->p->op_type, op) == 0;
}

static inline int is_host_op(const inode *n)
{
    return is_op(n, "Constant") || is_op(n, "Identity") || is_op(n, "Cast");
}

static inline const char *node_desc(const inode *n, char *buf, size_t size)
{
    snprintf(buf, size, "node '%s' (%s%s%s)", n->name, ONNX_STR(n->p->op_type),
             n->is_default_domain ? "" : ", domain ", n->is_default_domain ? "" : n->p->domain);
    return buf;
}

/* ---- onnx_wire.c --------------------------------------------------------- */
/* Steps 1-2: unpacks data into imp->mp and checks the model (imp->opsets,
 * imp->g). */
nnp_status nnpi_onnx_unpack(struct onnx_import *imp, const void *data, size_t len,
                            nnp_error *err);

/* ---- onnx_graph.c -------------------------------------------------------- */
/* Step 3: every name unique, every node input defined (imp->v, imp->nodes). */
nnp_status nnpi_onnx_collect_names(struct onnx_import *imp, nnp_error *err);
/* Step 4. */
nnp_status nnpi_onnx_read_initializers(struct onnx_import *imp, nnp_error *err);
/* Step 5: imp->order; a cycle is an error naming its nodes. */
nnp_status nnpi_onnx_topo_sort(struct onnx_import *imp, nnp_error *err);
/* Step 7: graph inputs become model inputs, or constants when they are only
 * read as parameters and the caller bound them. */
nnp_status nnpi_onnx_add_inputs(struct onnx_import *imp, nnp_error *err);
/* Step 9: the model's outputs. */
nnp_status nnpi_onnx_set_outputs(struct onnx_import *imp, nnp_error *err);

/* ---- onnx_fold.c --------------------------------------------------------- */
/* Step 6: the kind serving each node, folds and groups. */
nnp_status nnpi_onnx_find_kinds(struct onnx_import *imp, nnp_error *err);
/* The shape of a tensor a layout op (Transpose, Reshape to a constant shape)
 * computes inside a group from a run-time value; 0 when x is no such tensor. */
int nnpi_onnx_layout_shape(struct onnx_import *imp, const ival *x, nnp_shape *s);
/* Step 8 for the nodes of one group (n is its first in order). */
nnp_status nnpi_onnx_do_group(struct onnx_import *imp, inode *n, nnp_error *err);

/* ---- onnx_builtin.c ------------------------------------------------------ */
nnp_status nnpi_onnx_do_constant(struct onnx_import *imp, inode *n, nnp_error *err);
nnp_status nnpi_onnx_do_identity(struct onnx_import *imp, inode *n, nnp_error *err);
nnp_status nnpi_onnx_do_cast(struct onnx_import *imp, inode *n, nnp_error *err);

/* ---- onnx_import.c ------------------------------------------------------- */
/* Creates (or, for a shared layer, finds) the application's layer and applies
 * it; loads weights, training mode, weight outputs, the report line. */
nnp_status nnpi_onnx_instantiate(struct onnx_import *imp, app *a, nnp_error *err);

#endif
