/* The nnp_host table plugins receive: complete, built once, and each entry
 * doing what the library function behind it does. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "nnplug/nnplug.h"

static const nnp_param_def params[] = {
    {"f", NNP_PARAM_FLOAT, "1.5", 0, 0, 0, NULL, "a float"},
    {"n", NNP_PARAM_INT, "3", NNP_PARAM_HAS_MIN | NNP_PARAM_HAS_MAX, 0, 10, NULL, "an int"},
    {"b", NNP_PARAM_BOOL, "false", 0, 0, 0, NULL, "a bool"},
};

/* Only the schema matters here: configs are made from it directly. */
static const nnp_kind kind = {
    .struct_size = sizeof(nnp_kind), .abi_major = NNP_ABI_MAJOR, .abi_minor = NNP_ABI_MINOR,
    .name = "HostTestKind", .params = params, .n_params = 3, .n_inputs_min = 1,
    .n_inputs_max = 1,
};

Test(host, table_is_complete)
{
    const nnp_host *h = nnp_host_services();
    cr_assert_not_null(h);
    cr_assert_eq(h->struct_size, sizeof(nnp_host));
    cr_assert_eq(h->abi_major, NNP_ABI_MAJOR);
    cr_assert_eq(h->abi_minor, NNP_ABI_MINOR);
#define PRESENT(f) cr_expect_not_null((const void *)(uintptr_t)h->f, "host->" #f " is NULL")
    PRESENT(error_set);
    PRESENT(log);
    PRESENT(tensor_alloc);
    PRESENT(tensor_free);
    PRESENT(aligned_alloc);
    PRESENT(aligned_free);
    PRESENT(shape_numel);
    PRESENT(config_int);
    PRESENT(config_float);
    PRESENT(config_bool);
    PRESENT(config_string);
    PRESENT(config_ints);
    PRESENT(config_initializer);
    PRESENT(config_regularizer);
    PRESENT(config_constraint);
    PRESENT(config_name);
    PRESENT(config_seed);
    PRESENT(config_set_json);
    PRESENT(config_set_int);
    PRESENT(config_set_float);
    PRESENT(config_set_bool);
    PRESENT(initializer_fill);
    PRESENT(regularizer_loss);
    PRESENT(regularizer_grad_add);
    PRESENT(constraint_apply);
    PRESENT(num_threads);
    PRESENT(layer_create);
    PRESENT(layer_destroy);
    PRESENT(layer_kind);
    PRESENT(layer_build);
    PRESENT(layer_forward);
    PRESENT(layer_backward);
    PRESENT(layer_n_weights);
    PRESENT(layer_weight);
    PRESENT(layer_regularization_loss);
    PRESENT(layer_apply_constraints);
    PRESENT(onnx_writer_opset);
    PRESENT(onnx_unique_name);
    PRESENT(onnx_add_node);
    PRESENT(onnx_attr_int);
    PRESENT(onnx_attr_float);
    PRESENT(onnx_attr_ints);
    PRESENT(onnx_attr_string);
    PRESENT(onnx_add_initializer);
    PRESENT(onnx_add_value_info);
    PRESENT(onnx_op_type);
    PRESENT(onnx_domain);
    PRESENT(onnx_node_name);
    PRESENT(onnx_reader_opset);
    PRESENT(onnx_n_inputs);
    PRESENT(onnx_n_outputs);
    PRESENT(onnx_input_name);
    PRESENT(onnx_output_name);
    PRESENT(onnx_has_attr);
    PRESENT(onnx_get_attr_int);
    PRESENT(onnx_get_attr_float);
    PRESENT(onnx_get_attr_ints);
    PRESENT(onnx_get_attr_string);
    PRESENT(onnx_input_constant);
    PRESENT(onnx_input_shape);
#undef PRESENT
    cr_assert_geq(h->num_threads(), 1);
}

static void *get_host(void *arg)
{
    (void)arg;
    return (void *)nnp_host_services();
}

Test(host, built_once_for_all_threads)
{
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, get_host, NULL), 0);
    for (int i = 0; i < 8; i++) {
        void *h;
        pthread_join(t[i], &h);
        cr_assert_eq(h, (void *)nnp_host_services());
    }
}

Test(host, memory_and_errors)
{
    const nnp_host *h = nnp_host_services();
    nnp_error err = {0};
    nnp_shape s = {.rank = 2, .dims = {3, 5}};
    nnp_tensor t;
    cr_assert_eq(h->tensor_alloc(&t, NNP_F32, &s, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(t.nbytes, 60);
    cr_assert_eq((uintptr_t)t.data % NNP_ALIGN, 0);
    h->tensor_free(&t);
    cr_assert_null(t.data);
    int64_t n;
    cr_assert_eq(h->shape_numel(&s, &n, &err), NNP_OK);
    cr_assert_eq(n, 15);
    cr_assert_eq(h->error_set(&err, NNP_ERR_SHAPE, "bad %d", 7), NNP_ERR_SHAPE);
    cr_assert_str_eq(err.msg, "bad 7");
    float *p = h->aligned_alloc(100);
    cr_assert_not_null(p);
    cr_assert_eq(p[24], 0.0f);
    h->aligned_free(p);
}

Test(host, log_is_silent_without_nnp_log, .init = cr_redirect_stderr)
{
    unsetenv("NNP_LOG");
    nnp_host_services()->log(1, "hello %d", 42);
    fflush(stderr);
    cr_assert_stderr_eq_str("");
}

Test(host, log_writes_with_nnp_log, .init = cr_redirect_stderr)
{
    setenv("NNP_LOG", "1", 1);
    nnp_host_services()->log(2, "hello %d", 42);
    fflush(stderr);
    cr_assert_stderr_eq_str("nnplug: log[2]: hello 42\n");
}

Test(host, typed_config_setters_check_the_schema)
{
    const nnp_host *h = nnp_host_services();
    nnp_config *c;
    nnp_error err = {0};
    cr_assert_eq(nnp_config_new(&kind, &c, &err), NNP_OK, "%s", err.msg);
    cr_assert_float_eq(h->config_float(c, "f"), 1.5, 0);
    cr_assert_eq(h->config_int(c, "n"), 3);

    cr_assert_eq(h->config_set_float(c, "f", 0.1, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(h->config_float(c, "f"), 0.1);   /* exact: the double round-trips */
    cr_assert_eq(h->config_set_int(c, "n", 7, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(h->config_int(c, "n"), 7);
    cr_assert_eq(h->config_set_bool(c, "b", 1, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(h->config_bool(c, "b"), 1);

    cr_assert_eq(h->config_set_float(c, "f", NAN, &err), NNP_ERR_INVALID);
    cr_assert(strstr(err.msg, "'f'") && strstr(err.msg, "finite"), "%s", err.msg);
    cr_assert_eq(h->config_set_int(c, "n", 11, &err), NNP_ERR_INVALID);
    cr_assert(strstr(err.msg, "'n'"), "%s", err.msg);
    cr_assert_eq(h->config_int(c, "n"), 7, "a refused value must not stick");
    cr_assert_neq(h->config_set_int(c, "nope", 1, &err), NNP_OK);
    nnp_config_free(c);
}

/* A real plugin's layer driven only through the host's layer_* entries, as
 * a wrapper plugin drives its inner layer. */
Test(host, layer_entries_run_a_plugin_layer)
{
    const nnp_host *h = nnp_host_services();
    nnp_registry *reg;
    nnp_error err = {0};
    const char *dir = getenv("NNP_PLUGIN_DIR");
    cr_assert_not_null(dir);
    cr_assert_eq(nnp_registry_new(&reg, &err), NNP_OK);
    cr_assert_eq(nnp_registry_load_dir(reg, dir, &err), NNP_OK, "%s", err.msg);
    nnp_layer *l;
    cr_assert_eq(nnp_layer_new(reg, "ExampleScale", "{\"factor\": 3}", &l, &err), NNP_OK, "%s",
                 err.msg);
    cr_assert_str_eq(h->layer_kind(l), "ExampleScale");

    nnp_shape s = {.rank = 2, .dims = {2, 2}}, out;
    cr_assert_eq(h->layer_build(l, 1, &s, &out, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(h->layer_n_weights(l), 0);
    float x[4] = {1, -2, 0.5f, 4}, y[4], gy[4] = {1, 1, -1, 2}, gx[4];
    nnp_tensor tx, ty, tgy, tgx;
    nnp_tensor_wrap(&tx, NNP_F32, &s, x, &err);
    nnp_tensor_wrap(&ty, NNP_F32, &out, y, &err);
    nnp_tensor_wrap(&tgy, NNP_F32, &out, gy, &err);
    nnp_tensor_wrap(&tgx, NNP_F32, &s, gx, &err);
    const nnp_tensor *in[1] = {&tx};
    nnp_tensor *gin[1] = {&tgx};
    cr_assert_eq(h->layer_forward(l, in, 1, &ty, NNP_MODE_TRAIN, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(h->layer_backward(l, in, 1, &ty, &tgy, gin, NNP_MODE_TRAIN, &err), NNP_OK, "%s",
                 err.msg);
    for (int i = 0; i < 4; i++) {
        cr_assert_float_eq(y[i], 3 * x[i], 0);
        cr_assert_float_eq(gx[i], 3 * gy[i], 0);
    }
    cr_assert_float_eq(h->layer_regularization_loss(l), 0, 0);
    cr_assert_eq(h->layer_apply_constraints(l, &err), NNP_OK);
    h->layer_destroy(l);
    nnp_registry_free(reg);
}
