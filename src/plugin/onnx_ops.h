/* The ONNX node reader and writer that plugins reach through nnp_host: an
 * interface this layer declares and the interchange layer implements.
 *
 * Every reader and writer object starts with a pointer to its ops table, so
 * the host table's onnx_* entries (onnx_ops.c) forward each call to the
 * object's own implementation without knowing it. The ops have the
 * signatures of the matching nnp_host fields. */
#ifndef NNP_ONNX_OPS_H
#define NNP_ONNX_OPS_H
#include "nnplug/plugin.h"

typedef struct nnp_onnx_writer_ops {
    int (*opset)(const nnp_onnx_writer *w);
    const char *(*unique_name)(nnp_onnx_writer *w, const char *base, char *buf, size_t size);
    int (*add_node)(nnp_onnx_writer *w, const char *op_type, const char *domain,
                    const char *name, const char *const *inputs, int n_inputs,
                    const char *const *outputs, int n_outputs, nnp_error *err);
    nnp_status (*attr_int)(nnp_onnx_writer *w, int node, const char *name, int64_t v,
                           nnp_error *err);
    nnp_status (*attr_float)(nnp_onnx_writer *w, int node, const char *name, float v,
                             nnp_error *err);
    nnp_status (*attr_ints)(nnp_onnx_writer *w, int node, const char *name, const int64_t *v,
                            int n, nnp_error *err);
    nnp_status (*attr_string)(nnp_onnx_writer *w, int node, const char *name, const char *v,
                              nnp_error *err);
    nnp_status (*add_initializer)(nnp_onnx_writer *w, const char *name, const nnp_tensor *t,
                                  nnp_error *err);
    nnp_status (*add_value_info)(nnp_onnx_writer *w, const char *name, nnp_dtype dtype,
                                 const nnp_shape *shape, nnp_error *err);
    const char *(*node_name)(const nnp_onnx_writer *w, int node);
    int (*node_n_outputs)(const nnp_onnx_writer *w, int node);
    const char *(*node_output)(const nnp_onnx_writer *w, int node, int i);
    nnp_status (*set_output)(nnp_onnx_writer *w, int node, int i, const char *name,
                             nnp_error *err);
} nnp_onnx_writer_ops;

typedef struct nnp_onnx_reader_ops {
    const char *(*op_type)(const nnp_onnx_reader *r);
    const char *(*domain)(const nnp_onnx_reader *r);
    const char *(*node_name)(const nnp_onnx_reader *r);
    int (*opset)(const nnp_onnx_reader *r);
    int (*n_inputs)(const nnp_onnx_reader *r);
    int (*n_outputs)(const nnp_onnx_reader *r);
    const char *(*input_name)(const nnp_onnx_reader *r, int i);
    const char *(*output_name)(const nnp_onnx_reader *r, int i);
    int (*has_attr)(const nnp_onnx_reader *r, const char *name);
    nnp_status (*get_attr_int)(const nnp_onnx_reader *r, const char *name, int64_t *v,
                               nnp_error *err);
    nnp_status (*get_attr_float)(const nnp_onnx_reader *r, const char *name, float *v,
                                 nnp_error *err);
    int (*get_attr_ints)(const nnp_onnx_reader *r, const char *name, int64_t *v, int max_n,
                         nnp_error *err);
    nnp_status (*get_attr_string)(const nnp_onnx_reader *r, const char *name, char *buf,
                                  size_t size, nnp_error *err);
    nnp_status (*input_constant)(const nnp_onnx_reader *r, int i, const nnp_tensor **t,
                                 nnp_error *err);
    nnp_status (*input_shape)(const nnp_onnx_reader *r, int i, nnp_shape *shape,
                              nnp_error *err);
    nnp_dtype (*input_dtype)(const nnp_onnx_reader *r, int i);
} nnp_onnx_reader_ops;

/* The first member of every implementation's struct nnp_onnx_writer and
 * struct nnp_onnx_reader. */
#define NNP_ONNX_WRITER_OPS(w) (*(const nnp_onnx_writer_ops *const *)(const void *)(w))
#define NNP_ONNX_READER_OPS(r) (*(const nnp_onnx_reader_ops *const *)(const void *)(r))

/* Fills the onnx_* fields of the host table with the forwarding entries. */
void nnpi_host_onnx_fill(nnp_host *h);

#endif
