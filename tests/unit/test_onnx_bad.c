/* Malformed ONNX files (tests/fixtures/onnx-bad, made by its gen.py): each is
 * refused with its own status and a message naming the file and the node,
 * tensor or attribute at fault. Never a crash, an over-read or an
 * allocation sized by unchecked dims (the ASan build runs these too). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nnplug/nnplug.h"
#include "nnplug/onnx.h"
#include "testutil.h"

static nnp_registry *reg;

static void setup(void) { reg = tu_registry(); }
static void teardown(void) { nnp_registry_free(reg); }

static const char *fixture(const char *name)
{
    static char path[1024];
    const char *src = getenv("NNP_SOURCE_DIR");
    cr_assert(src, "NNP_SOURCE_DIR is not set (run through ctest)");
    snprintf(path, sizeof path, "%s/tests/fixtures/onnx-bad/%s", src, name);
    return path;
}

/* Loads `name`; asserts the status and that the message holds the file name
 * and every word of the NULL-terminated list. */
static void expect_bad(const char *name, nnp_status code, const char *const *words)
{
    nnp_model *m = NULL;
    nnp_error err = {0};
    const char *path = fixture(name);
    nnp_status st = nnp_onnx_load(reg, path, NULL, &m, &err);
    cr_assert_null(m, "%s: a model came back", name);
    cr_assert_eq(st, code, "%s: status %d (%s), expected %d: %s", name, st, nnp_status_str(st),
                 code, err.msg);
    cr_assert_eq(err.code, st);
    cr_assert(strstr(err.msg, path), "%s: message does not name the file: %s", name, err.msg);
    for (int i = 0; words && words[i]; i++)
        cr_assert(strstr(err.msg, words[i]), "%s: message lacks '%s': %s", name, words[i],
                  err.msg);
    cr_assert(!strchr(err.msg, '\n'), "%s: message is not one line", name);
}

#define BAD(test, file, code, ...)                                        \
    Test(onnx_bad, test, .init = setup, .fini = teardown)                 \
    {                                                                     \
        static const char *const w[] = {__VA_ARGS__, NULL};               \
        expect_bad(file, code, w);                                        \
    }

BAD(truncated, "truncated.onnx", NNP_ERR_FORMAT, "not a valid ONNX model", "protobuf parse failed")
BAD(random_bytes, "random_bytes.onnx", NNP_ERR_FORMAT, "not a valid ONNX model")
BAD(deep_nesting, "deep_nesting.onnx", NNP_ERR_FORMAT, "not a valid ONNX model", "nested")
BAD(dims_vs_data, "dims_mismatch.onnx", NNP_ERR_FORMAT, "tensor 's'", "raw_data holds 12 bytes",
    "need 16")
BAD(huge_dims_overflow, "huge_dims.onnx", NNP_ERR_OVERFLOW, "tensor 's'", "overflows")
BAD(huge_dims_no_allocation, "huge_dims_data.onnx", NNP_ERR_FORMAT, "tensor 's'",
    "raw_data holds 12 bytes")
BAD(rank_over_8, "rank9.onnx", NNP_ERR_SHAPE, "tensor 's'", "rank 9")
BAD(negative_dim, "negative_dim.onnx", NNP_ERR_SHAPE, "tensor 's'", "negative dimension -3")
BAD(string_tensor, "string_tensor.onnx", NNP_ERR_UNSUPPORTED, "tensor 's'", "STRING")
BAD(cycle, "cycle.onnx", NNP_ERR_FORMAT, "cycle", "'bn_a'", "'bn_b'")
BAD(missing_input, "missing_input.onnx", NNP_ERR_NOT_FOUND, "node 'bn0'", "'nowhere'", "missing")
BAD(external_escapes, "external_escape.onnx", NNP_ERR_INVALID, "tensor 'b'", "'../secret.bin'",
    "escapes the model's folder")
BAD(external_escapes_after_subdir, "external_escape2.onnx", NNP_ERR_INVALID, "tensor 'b'",
    "escapes the model's folder")
BAD(external_absolute, "external_absolute.onnx", NNP_ERR_INVALID, "tensor 'b'", "'/etc/hostname'",
    "absolute path")
BAD(external_missing, "external_missing.onnx", NNP_ERR_IO, "tensor 'b'", "'no_such_file.bin'",
    "missing")
BAD(external_too_short, "external_short.onnx", NNP_ERR_FORMAT, "tensor 'b'", "holds 12 bytes",
    "offset 4")
BAD(unknown_op, "unknown_op.onnx", NNP_ERR_UNSUPPORTED, "node 'fancy0'", "FancyNorm",
    "BatchNormalization")
BAD(bad_attribute_type, "bad_attr_type.onnx", NNP_ERR_FORMAT, "node 'bn0'", "'epsilon'",
    "STRING", "expected FLOAT")
BAD(bad_training_mode, "bad_training_mode.onnx", NNP_ERR_FORMAT, "node 'bn0'",
    "training_mode is 2")
BAD(duplicate_node_name, "dup_node_name.onnx", NNP_ERR_DUPLICATE, "node name 'bn0'", "twice")
BAD(duplicate_output, "dup_output.onnx", NNP_ERR_DUPLICATE, "tensor 'y'", "'bn_a'", "'bn_b'")
BAD(duplicate_initializer, "dup_initializer.onnx", NNP_ERR_DUPLICATE, "initializer name 's'")
BAD(duplicate_input, "dup_input.onnx", NNP_ERR_DUPLICATE, "graph input name 'x'")
BAD(spatial_0, "spatial0.onnx", NNP_ERR_UNSUPPORTED, "'bn0'", "spatial=0")
BAD(no_graph, "no_graph.onnx", NNP_ERR_FORMAT, "no graph")
BAD(no_opset, "no_opset.onnx", NNP_ERR_FORMAT, "opset_import", "ai.onnx")
BAD(ir_version_2, "ir2.onnx", NNP_ERR_UNSUPPORTED, "IR version 2")
BAD(parameter_computed, "param_computed.onnx", NNP_ERR_UNSUPPORTED, "node 'bn_b'", "'h'",
    "must be a constant", "'bn_a'")
BAD(parameter_unbound, "param_unbound.onnx", NNP_ERR_INVALID, "graph input 's'", "node 'bn0'",
    "give its value")
BAD(output_not_produced, "no_output_producer.onnx", NNP_ERR_NOT_FOUND, "graph output 'z'")
BAD(input_without_shape, "input_no_shape.onnx", NNP_ERR_UNSUPPORTED, "graph input 'x'",
    "no shape")
BAD(input_rank_over_8, "input_rank9.onnx", NNP_ERR_SHAPE, "graph input 'x'", "rank 9")
BAD(input_negative_dim, "input_negative_dim.onnx", NNP_ERR_SHAPE, "graph input 'x'",
    "negative dimension -2")
BAD(input_double, "input_double.onnx", NNP_ERR_UNSUPPORTED, "graph input 'x'", "DOUBLE")
BAD(constant_bad_attribute, "constant_bad_attr.onnx", NNP_ERR_UNSUPPORTED, "node 'c0'",
    "'value_string'")
BAD(wrong_channel_count, "wrong_channels.onnx", NNP_ERR_SHAPE, "node 'bn0'", "input 'scale' ('s')",
    "holds 4 values", "dimension 1 of input 'X', which has 3")
BAD(scale_int64, "scale_int64.onnx", NNP_ERR_FORMAT, "node 'bn0'", "input 'scale' ('s')",
    "element type int64", "float16, float, double or bfloat16")
BAD(gemm_int64_weight, "gemm_int64_weight.onnx", NNP_ERR_FORMAT, "node 'fc0'", "input 'B' ('w')",
    "element type int64")
BAD(conv_int64_weight, "conv_int64_weight.onnx", NNP_ERR_FORMAT, "node 'conv0'",
    "input 'W' ('w')", "element type int64")
BAD(scale_rank2, "scale_rank2.onnx", NNP_ERR_SHAPE, "node 'bn0'", "input 'scale' ('s')",
    "shape [1,3]", "1-D tensor")
BAD(channels_mismatch, "channels_mismatch.onnx", NNP_ERR_SHAPE, "node 'bn0'",
    "input 'scale' ('s')", "holds 3 values", "input 'X', which has 5")
BAD(huge_channels_no_allocation, "huge_channels.onnx", NNP_ERR_SHAPE, "node 'bn0'",
    "input 'X', which has 536870911")
BAD(huge_channels_through_transpose, "huge_channels_transposed.onnx", NNP_ERR_SHAPE,
    "node 'bn0'", "input 'X', which has 1073741824")
/* ONNX's type and rank rules for every kind (check_invalid.py confirms that
 * ONNX's checker or ONNX Runtime refuses each file) */
BAD(conv_weight_rank3, "conv_weight_rank3.onnx", NNP_ERR_SHAPE, "node 'conv0'",
    "input 'W' ('w')", "rank 3", "the rank of input 'X' (4)")
BAD(conv_bias_length, "conv_bias_length.onnx", NNP_ERR_SHAPE, "node 'conv0'", "input 'B' ('cb')",
    "holds 3 values", "dimension 0 of input 'W', which has 2")
BAD(gemm_bias_int64, "gemm_bias_int64.onnx", NNP_ERR_FORMAT, "node 'fc0'", "input 'C' ('c')",
    "element type int64", "Gemm takes float16, float, double or bfloat16")
BAD(gemm_weight_rank3, "gemm_weight_rank3.onnx", NNP_ERR_SHAPE, "node 'fc0'", "input 'B' ('w')",
    "shape [1,3,2]", "a 2-D tensor")
BAD(add_int32_input, "add_int32_input.onnx", NNP_ERR_FORMAT, "node 'add0'", "input 'B' ('z')",
    "element type int32")
BAD(reshape_shape_float, "reshape_shape_float.onnx", NNP_ERR_FORMAT, "node 'reshape0'",
    "input 'shape' ('shp')", "element type float", "Reshape takes int64")
BAD(clip_min_rank2, "clip_min_rank2.onnx", NNP_ERR_SHAPE, "node 'clip0'", "input 'min' ('lo')",
    "shape [1,1]", "rank 0 to 1")
BAD(maxpool_rank2, "maxpool_rank2.onnx", NNP_ERR_SHAPE, "node 'pool0'", "input 'X' ('x2')",
    "shape [?,4]", "rank 3 or more")
BAD(dropout_ratio_int64, "dropout_ratio_int64.onnx", NNP_ERR_FORMAT, "node 'drop0'",
    "input 'ratio' ('r')", "element type int64")
BAD(saved_mean_read, "saved_mean_used.onnx", NNP_ERR_UNSUPPORTED, "node 'bn0'", "output 3",
    "'sm'")

/* The same defects from memory: buffers are never read past their end. */
Test(onnx_bad, every_prefix_of_a_good_model, .init = setup, .fini = teardown)
{
    char *data;
    size_t len;
    nnp_error err = {0};
    cr_assert_eq(nnp_read_file(fixture("good.onnx"), &data, &len, &err), NNP_OK, "%s", err.msg);
    for (size_t n = 0; n < len; n++) {
        /* an exact-size copy, so ASan sees any over-read */
        char *copy = malloc(n ? n : 1);
        memcpy(copy, data, n);
        nnp_model *m = NULL;
        nnp_status st = nnp_onnx_load_buffer(reg, copy, n, "prefix", NULL, NULL, &m, &err);
        cr_assert_neq(st, NNP_OK, "a %zu-byte prefix of a %zu-byte model loaded", n, len);
        cr_assert_null(m);
        cr_assert(strstr(err.msg, "prefix"), "%s", err.msg);
        free(copy);
    }
    nnp_model *m = NULL;
    cr_assert_eq(nnp_onnx_load_buffer(reg, data, len, "good", NULL, NULL, &m, &err), NNP_OK,
                 "%s", err.msg);
    nnp_model_free(m);
    free(data);
}

/* A link inside the folder that points outside it is refused too. */
Test(onnx_bad, external_data_through_a_link, .init = setup, .fini = teardown)
{
    char dir[] = "/tmp/nnp_onnx_link_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char model[512], link[512], cmd[1200];
    snprintf(model, sizeof model, "%s/m.onnx", dir);
    snprintf(link, sizeof link, "%s/no_such_file.bin", dir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", fixture("external_missing.onnx"), model);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(symlink("/etc/hostname", link), 0);
    nnp_model *m = NULL;
    nnp_error err = {0};
    nnp_status st = nnp_onnx_load(reg, model, NULL, &m, &err);
    cr_assert_eq(st, NNP_ERR_INVALID, "%s", err.msg);
    cr_assert(strstr(err.msg, "outside the model's folder"), "%s", err.msg);
    unlink(link);
    unlink(model);
    rmdir(dir);
}

/* A buffer has no folder: external data is refused, not looked up in ".". */
Test(onnx_bad, external_data_from_memory, .init = setup, .fini = teardown)
{
    char *data;
    size_t len;
    nnp_error err = {0};
    cr_assert_eq(nnp_read_file(fixture("external_short.onnx"), &data, &len, &err), NNP_OK);
    nnp_model *m = NULL;
    nnp_status st = nnp_onnx_load_buffer(reg, data, len, "mem", NULL, NULL, &m, &err);
    cr_assert_eq(st, NNP_ERR_INVALID, "%s", err.msg);
    cr_assert(strstr(err.msg, "external data"), "%s", err.msg);
    free(data);
}

Test(onnx_bad, missing_file, .init = setup, .fini = teardown)
{
    nnp_model *m = NULL;
    nnp_error err = {0};
    nnp_status st = nnp_onnx_load(reg, "/nonexistent/model.onnx", NULL, &m, &err);
    cr_assert_eq(st, NNP_ERR_IO);
    cr_assert(strstr(err.msg, "/nonexistent/model.onnx"), "%s", err.msg);
}
