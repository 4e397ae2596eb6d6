/* ONNX import through the library API: ONNX's own BatchNormalization node
 * tests (opsets 7, 9, 15, training_mode) against their reference outputs,
 * parameter inputs, and the half-precision conversions. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnplug/nnplug.h"
#include "nnplug/onnx.h"
#include "testutil.h"

/* onnx_tensor.c (internal; declared here to keep protobuf-c out of tests) */
float nnpi_onnx_f16_to_f32(uint16_t h);
uint16_t nnpi_onnx_f32_to_f16(float f);
float nnpi_onnx_bf16_to_f32(uint16_t b);
uint16_t nnpi_onnx_f32_to_bf16(float f);

static nnp_registry *reg;
static void setup(void) { reg = tu_registry(); }
static void teardown(void) { nnp_registry_free(reg); }

static const char *const params[4] = {"s", "bias", "mean", "var"};

/* Loads an onnx-node case with its parameters bound, runs it, and compares
 * every output with the ONNX generator's expected arrays. */
static void run_case(const char *name, const char *const *outputs, int n_out)
{
    nnp_tensor x, p[4];
    nnp_onnx_binding b[4];
    tu_load_f32(tu_data_path("onnx-node/%s/inputs/x.npy", name), &x);
    for (int i = 0; i < 4; i++) {
        tu_load_f32(tu_data_path("onnx-node/%s/inputs/%s.npy", name, params[i]), &p[i]);
        b[i].name = params[i];
        b[i].value = &p[i];
    }
    nnp_onnx_load_options o = {0};
    o.bindings = b;
    o.n_bindings = 4;
    nnp_model *m;
    nnp_error err = {0};
    cr_assert_eq(nnp_onnx_load(reg, tu_data_path("onnx-node/%s/model.onnx", name), &o, &m, &err),
                 NNP_OK, "%s: %s", name, err.msg);
    cr_assert_eq(nnp_model_n_inputs(m), 1, "%s: only x stays an input", name);
    cr_assert_eq(nnp_model_n_outputs(m), n_out);
    const nnp_tensor *in[1] = {&x};
    cr_assert_eq(nnp_model_forward(m, in, 1, NNP_MODE_INFER, &err), NNP_OK, "%s", err.msg);
    for (int k = 0; k < n_out; k++) {
        cr_assert_str_eq(nnp_model_value_name(m, nnp_model_output_value(m, k)), outputs[k]);
        int64_t n;
        double *e = tu_load_f64(tu_data_path("onnx-node/%s/expected/%s.npy", name, outputs[k]),
                                NULL, &n);
        const nnp_tensor *y = nnp_model_output(m, k);
        cr_assert_eq(nnp_tensor_numel(y), n, "%s/%s: size", name, outputs[k]);
        tu_assert_close_f32(outputs[k], y->data, e, n, 1e-4, 1e-5);
        free(e);
    }
    nnp_model_free(m);
    nnp_tensor_free(&x);
    for (int i = 0; i < 4; i++)
        nnp_tensor_free(&p[i]);
}

static const char *const y_only[1] = {"y"};
static const char *const with_stats[3] = {"y", "output_mean", "output_var"};

Test(onnx_import, batchnorm_example_opset15, .init = setup, .fini = teardown)
{
    run_case("test_batchnorm_example", y_only, 1);
}

Test(onnx_import, batchnorm_epsilon, .init = setup, .fini = teardown)
{
    run_case("test_batchnorm_epsilon", y_only, 1);
}

Test(onnx_import, batchnorm_opset7, .init = setup, .fini = teardown)
{
    run_case("opset7_batchnorm_example", y_only, 1);
}

Test(onnx_import, batchnorm_opset9, .init = setup, .fini = teardown)
{
    run_case("opset9_batchnorm_example", y_only, 1);
}

/* training_mode=1: batch statistics even though the run asks for inference,
 * and the running statistics as outputs. */
Test(onnx_import, batchnorm_training_mode, .init = setup, .fini = teardown)
{
    run_case("test_batchnorm_example_training_mode", with_stats, 3);
}

Test(onnx_import, batchnorm_epsilon_training_mode, .init = setup, .fini = teardown)
{
    run_case("test_batchnorm_epsilon_training_mode", with_stats, 3);
}

Test(onnx_import, parameter_inputs_need_values, .init = setup, .fini = teardown)
{
    nnp_model *m;
    nnp_error err = {0};
    const char *path = tu_data_path("onnx-node/test_batchnorm_example/model.onnx");
    nnp_status st = nnp_onnx_load(reg, path, NULL, &m, &err);
    cr_assert_eq(st, NNP_ERR_INVALID, "%s", err.msg);
    cr_assert(strstr(err.msg, "graph input 's'") && strstr(err.msg, "give its value"), "%s",
              err.msg);
    /* placeholders: inspection still works */
    nnp_onnx_load_options o = {0};
    o.placeholder_parameters = 1;
    cr_assert_eq(nnp_onnx_load(reg, path, &o, &m, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_model_n_layers(m), 1);
    cr_assert_eq(nnp_model_layer_param_count(m, 0), 12);
    const char *meta = nnp_model_get_meta(m, NNP_ONNX_META_IMPORT);
    cr_assert(meta && strstr(meta, "\"parameter_inputs\":[\"s\",\"bias\",\"mean\",\"var\"]"),
              "%s", meta ? meta : "(none)");
    nnp_model_free(m);
}

/* A binding whose shape contradicts the declared one is refused. */
Test(onnx_import, binding_shape_checked, .init = setup, .fini = teardown)
{
    nnp_tensor t;
    nnp_shape s = {1, {4}};
    nnp_error err = {0};
    cr_assert_eq(nnp_tensor_alloc(&t, NNP_F32, &s, &err), NNP_OK);
    nnp_onnx_binding b[4] = {{"s", &t}, {"bias", &t}, {"mean", &t}, {"var", &t}};
    nnp_onnx_load_options o = {0};
    o.bindings = b;
    o.n_bindings = 4;
    nnp_model *m;
    nnp_status st = nnp_onnx_load(reg, tu_data_path("onnx-node/test_batchnorm_example/model.onnx"),
                                  &o, &m, &err);
    cr_assert_eq(st, NNP_ERR_SHAPE, "%s", err.msg);
    cr_assert(strstr(err.msg, "'s'") && strstr(err.msg, "[4]") && strstr(err.msg, "[3]"), "%s",
              err.msg);
    nnp_tensor_free(&t);
}

/* Every float16 value survives float32 and back; rounding is to nearest even. */
Test(onnx_import, float16_conversions)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = nnpi_onnx_f16_to_f32((uint16_t)h);
        if (isnan(f)) {
            cr_assert(isnan(nnpi_onnx_f16_to_f32(nnpi_onnx_f32_to_f16(f))));
            continue;
        }
        cr_assert_eq(nnpi_onnx_f32_to_f16(f), h, "half 0x%04x -> %g -> 0x%04x", h, f,
                     nnpi_onnx_f32_to_f16(f));
    }
    cr_assert_eq(nnpi_onnx_f16_to_f32(0x3c00), 1.0f);
    cr_assert_eq(nnpi_onnx_f16_to_f32(0x0001), ldexpf(1, -24));
    cr_assert_eq(nnpi_onnx_f16_to_f32(0x7bff), 65504.0f);
    cr_assert_eq(nnpi_onnx_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00);        /* tie: even */
    cr_assert_eq(nnpi_onnx_f32_to_f16(1.0f + 3 * ldexpf(1, -11)), 0x3c02);    /* tie: even */
    cr_assert_eq(nnpi_onnx_f32_to_f16(1.0f + ldexpf(1, -11) + ldexpf(1, -20)), 0x3c01);
    cr_assert_eq(nnpi_onnx_f32_to_f16(65519.0f), 0x7bff);
    cr_assert_eq(nnpi_onnx_f32_to_f16(65520.0f), 0x7c00);                     /* rounds to inf */
    cr_assert_eq(nnpi_onnx_f32_to_f16(-1e30f), 0xfc00);
    cr_assert_eq(nnpi_onnx_f32_to_f16(ldexpf(1, -25)), 0x0000);               /* tie: even zero */
    cr_assert_eq(nnpi_onnx_f32_to_f16(1.5f * ldexpf(1, -25)), 0x0001);
    cr_assert_eq(nnpi_onnx_f32_to_f16(ldexpf(3, -25)), 0x0002);               /* 1.5 units: even */
    cr_assert_eq(nnpi_onnx_f32_to_f16(-0.0f), 0x8000);
}

Test(onnx_import, bfloat16_conversions)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = nnpi_onnx_bf16_to_f32((uint16_t)h);
        if (isnan(f))
            continue;
        cr_assert_eq(nnpi_onnx_f32_to_bf16(f), h, "bfloat16 0x%04x", h);
    }
    cr_assert_eq(nnpi_onnx_f32_to_bf16(1.0f + ldexpf(1, -8)), 0x3f80);   /* tie: even */
    cr_assert_eq(nnpi_onnx_f32_to_bf16(1.0f + 3 * ldexpf(1, -8)), 0x3f82);
    cr_assert(isnan(nnpi_onnx_bf16_to_f32(nnpi_onnx_f32_to_bf16(NAN))));
}
