/* The host table's onnx_* entries: each forwards to the ops of the reader or
 * writer object it is given (onnx_ops.h), so the plugin layer hands plugins
 * ONNX access without depending on the layer that implements it. */
#include "plugin/onnx_ops.h"

#define W(w) NNP_ONNX_WRITER_OPS(w)
#define R(r) NNP_ONNX_READER_OPS(r)

/* ---- writer ---- */
static int w_opset(const nnp_onnx_writer *w) { return W(w)->opset(w); }
static const char *w_unique_name(nnp_onnx_writer *w, const char *base, char *buf, size_t size)
{
    return W(w)->unique_name(w, base, buf, size);
}
static int w_add_node(nnp_onnx_writer *w, const char *op_type, const char *domain,
                      const char *name, const char *const *inputs, int n_inputs,
                      const char *const *outputs, int n_outputs, nnp_error *err)
{
    return W(w)->add_node(w, op_type, domain, name, inputs, n_inputs, outputs, n_outputs, err);
}
static nnp_status w_attr_int(nnp_onnx_writer *w, int node, const char *name, int64_t v,
                             nnp_error *err)
{
    return W(w)->attr_int(w, node, name, v, err);
}
static nnp_status w_attr_float(nnp_onnx_writer *w, int node, const char *name, float v,
                               nnp_error *err)
{
    return W(w)->attr_float(w, node, name, v, err);
}
static nnp_status w_attr_ints(nnp_onnx_writer *w, int node, const char *name, const int64_t *v,
                              int n, nnp_error *err)
{
    return W(w)->attr_ints(w, node, name, v, n, err);
}
static nnp_status w_attr_string(nnp_onnx_writer *w, int node, const char *name, const char *v,
                                nnp_error *err)
{
    return W(w)->attr_string(w, node, name, v, err);
}
static nnp_status w_add_initializer(nnp_onnx_writer *w, const char *name, const nnp_tensor *t,
                                    nnp_error *err)
{
    return W(w)->add_initializer(w, name, t, err);
}
static nnp_status w_add_value_info(nnp_onnx_writer *w, const char *name, nnp_dtype dtype,
                                   const nnp_shape *shape, nnp_error *err)
{
    return W(w)->add_value_info(w, name, dtype, shape, err);
}
static const char *w_node_name(const nnp_onnx_writer *w, int node)
{
    return W(w)->node_name(w, node);
}
static int w_node_n_outputs(const nnp_onnx_writer *w, int node)
{
    return W(w)->node_n_outputs(w, node);
}
static const char *w_node_output(const nnp_onnx_writer *w, int node, int i)
{
    return W(w)->node_output(w, node, i);
}
static nnp_status w_set_output(nnp_onnx_writer *w, int node, int i, const char *name,
                               nnp_error *err)
{
    return W(w)->set_output(w, node, i, name, err);
}

/* ---- reader ---- */
static const char *r_op_type(const nnp_onnx_reader *r) { return R(r)->op_type(r); }
static const char *r_domain(const nnp_onnx_reader *r) { return R(r)->domain(r); }
static const char *r_node_name(const nnp_onnx_reader *r) { return R(r)->node_name(r); }
static int r_opset(const nnp_onnx_reader *r) { return R(r)->opset(r); }
static int r_n_inputs(const nnp_onnx_reader *r) { return R(r)->n_inputs(r); }
static int r_n_outputs(const nnp_onnx_reader *r) { return R(r)->n_outputs(r); }
static const char *r_input_name(const nnp_onnx_reader *r, int i)
{
    return R(r)->input_name(r, i);
}
static const char *r_output_name(const nnp_onnx_reader *r, int i)
{
    return R(r)->output_name(r, i);
}
static int r_has_attr(const nnp_onnx_reader *r, const char *name)
{
    return R(r)->has_attr(r, name);
}
static nnp_status r_attr_int(const nnp_onnx_reader *r, const char *name, int64_t *v,
                             nnp_error *err)
{
    return R(r)->get_attr_int(r, name, v, err);
}
static nnp_status r_attr_float(const nnp_onnx_reader *r, const char *name, float *v,
                               nnp_error *err)
{
    return R(r)->get_attr_float(r, name, v, err);
}
static int r_attr_ints(const nnp_onnx_reader *r, const char *name, int64_t *v, int max_n,
                       nnp_error *err)
{
    return R(r)->get_attr_ints(r, name, v, max_n, err);
}
static nnp_status r_attr_string(const nnp_onnx_reader *r, const char *name, char *buf,
                                size_t size, nnp_error *err)
{
    return R(r)->get_attr_string(r, name, buf, size, err);
}
static nnp_status r_input_constant(const nnp_onnx_reader *r, int i, const nnp_tensor **t,
                                   nnp_error *err)
{
    return R(r)->input_constant(r, i, t, err);
}
static nnp_status r_input_shape(const nnp_onnx_reader *r, int i, nnp_shape *s, nnp_error *err)
{
    return R(r)->input_shape(r, i, s, err);
}
static nnp_dtype r_input_dtype(const nnp_onnx_reader *r, int i) { return R(r)->input_dtype(r, i); }

void nnpi_host_onnx_fill(nnp_host *h)
{
    h->onnx_writer_opset = w_opset;
    h->onnx_unique_name = w_unique_name;
    h->onnx_add_node = w_add_node;
    h->onnx_attr_int = w_attr_int;
    h->onnx_attr_float = w_attr_float;
    h->onnx_attr_ints = w_attr_ints;
    h->onnx_attr_string = w_attr_string;
    h->onnx_add_initializer = w_add_initializer;
    h->onnx_add_value_info = w_add_value_info;
    h->onnx_writer_node_name = w_node_name;
    h->onnx_writer_node_n_outputs = w_node_n_outputs;
    h->onnx_writer_node_output = w_node_output;
    h->onnx_writer_set_output = w_set_output;

    h->onnx_op_type = r_op_type;
    h->onnx_domain = r_domain;
    h->onnx_node_name = r_node_name;
    h->onnx_reader_opset = r_opset;
    h->onnx_n_inputs = r_n_inputs;
    h->onnx_n_outputs = r_n_outputs;
    h->onnx_input_name = r_input_name;
    h->onnx_output_name = r_output_name;
    h->onnx_has_attr = r_has_attr;
    h->onnx_get_attr_int = r_attr_int;
    h->onnx_get_attr_float = r_attr_float;
    h->onnx_get_attr_ints = r_attr_ints;
    h->onnx_get_attr_string = r_attr_string;
    h->onnx_input_constant = r_input_constant;
    h->onnx_input_shape = r_input_shape;
    h->onnx_input_dtype = r_input_dtype;
}
