/* Config parsing against a schema: good and bad Keras-style JSON. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "nnplug/nnplug.h"

static const nnp_param_def params[] = {
    {"axis", NNP_PARAM_INT, "-1", NNP_PARAM_HAS_MIN | NNP_PARAM_HAS_MAX, -8, 7, NULL, "axis"},
    {"momentum", NNP_PARAM_FLOAT, "0.99", NNP_PARAM_HAS_MIN | NNP_PARAM_HAS_MAX, 0, 1, NULL, "m"},
    {"epsilon", NNP_PARAM_FLOAT, "0.001", NNP_PARAM_HAS_MIN | NNP_PARAM_MIN_EXCLUSIVE, 0, 0, NULL,
     "eps"},
    {"center", NNP_PARAM_BOOL, "true", 0, 0, 0, NULL, "c"},
    {"padding", NNP_PARAM_STRING, "\"valid\"", 0, 0, 0, "valid|same", "p"},
    {"beta_initializer", NNP_PARAM_INITIALIZER, "\"zeros\"", 0, 0, 0, NULL, "bi"},
    {"beta_regularizer", NNP_PARAM_REGULARIZER, "null", NNP_PARAM_NULLABLE, 0, 0, NULL, "br"},
    {"beta_constraint", NNP_PARAM_CONSTRAINT, "null", NNP_PARAM_NULLABLE, 0, 0, NULL, "bc"},
    {"strides", NNP_PARAM_INTS, "[1,1]", NNP_PARAM_HAS_MIN, 1, 0, NULL, "s"},
    {"target_shape", NNP_PARAM_SHAPE, "null", NNP_PARAM_NULLABLE, 0, 0, NULL, "t"},
    {"pads", NNP_PARAM_INTS, "null", NNP_PARAM_NULLABLE, 0, 0, NULL, "pads"},
};

static const nnp_kind kind = {
    .struct_size = sizeof(nnp_kind), .abi_major = NNP_ABI_MAJOR, .abi_minor = NNP_ABI_MINOR,
    .name = "TestKind", .doc = "test", .params = params,
    .n_params = (int)(sizeof params / sizeof params[0]), .n_inputs_min = 1, .n_inputs_max = 1,
};

static nnp_config *parse_ok(const char *json)
{
    nnp_config *c = NULL;
    nnp_error err = {0};
    nnp_status st = nnp_config_from_json(&kind, json, &c, &err);
    cr_assert_eq(st, NNP_OK, "%s: %s", json, err.msg);
    return c;
}

static void parse_bad(const char *json, const char *needle)
{
    nnp_config *c = NULL;
    nnp_error err = {0};
    nnp_status st = nnp_config_from_json(&kind, json, &c, &err);
    cr_assert_neq(st, NNP_OK, "accepted %s", json);
    cr_assert_null(c);
    cr_assert(strstr(err.msg, needle), "error for %s is \"%s\", expected it to name \"%s\"", json,
              err.msg, needle);
}

Test(config, defaults)
{
    nnp_config *c = parse_ok("{}");
    cr_assert_eq(nnp_config_int(c, "axis"), -1);
    cr_assert_float_eq(nnp_config_float(c, "momentum"), 0.99, 1e-15);
    cr_assert_float_eq(nnp_config_float(c, "epsilon"), 0.001, 1e-15);
    cr_assert_eq(nnp_config_bool(c, "center"), 1);
    cr_assert_str_eq(nnp_config_string(c, "padding"), "valid");
    cr_assert_str_eq(nnp_initializer_class(nnp_config_initializer(c, "beta_initializer")), "Zeros");
    cr_assert_null(nnp_config_regularizer(c, "beta_regularizer"));
    cr_assert_null(nnp_config_constraint(c, "beta_constraint"));
    int64_t s[4];
    cr_assert_eq(nnp_config_ints(c, "strides", s, 4), 2);
    cr_assert_eq(s[0], 1);
    cr_assert_eq(nnp_config_ints(c, "target_shape", s, 4), -1);
    cr_assert(nnp_config_trainable(c));
    cr_assert_str_eq(nnp_config_name(c), "TestKind");
    nnp_config_free(c);
}

Test(config, keras_and_tfjs_spellings)
{
    nnp_config *c = parse_ok(
        "{\"axis\": 1, \"momentum\": 0.9, \"betaInitializer\": {\"className\": \"Constant\", "
        "\"config\": {\"value\": 0.5}}, \"beta_regularizer\": {\"class_name\": \"L1L2\", "
        "\"config\": {\"l1\": 0, \"l2\": 0.01}}, \"betaConstraint\": \"non_neg\", "
        "\"name\": \"bn1\", \"trainable\": false, \"dtype\": \"float32\", "
        "\"batchInputShape\": [null, 8], \"strides\": 2, \"target_shape\": [4, -1]}");
    cr_assert_eq(nnp_config_int(c, "axis"), 1);
    cr_assert_float_eq(nnp_config_float(c, "momentum"), 0.9, 1e-15);
    cr_assert_not_null(nnp_config_regularizer(c, "beta_regularizer"));
    cr_assert_not_null(nnp_config_constraint(c, "beta_constraint"));
    cr_assert_str_eq(nnp_config_name(c), "bn1");
    cr_assert_not(nnp_config_trainable(c));
    int64_t d[8];
    cr_assert_eq(nnp_config_batch_input_shape(c, d, 8), 2);
    cr_assert_eq(d[0], -1);
    cr_assert_eq(d[1], 8);
    cr_assert_eq(nnp_config_ints(c, "strides", d, 8), 1);
    cr_assert_eq(nnp_config_ints(c, "target_shape", d, 8), 2);
    cr_assert_eq(d[1], -1);
    nnp_config_free(c);
}

Test(config, to_json_round_trip)
{
    nnp_config *c = parse_ok("{\"axis\": 2, \"epsilon\": 1e-5, \"beta_initializer\": "
                             "\"glorot_uniform\", \"beta_constraint\": {\"class_name\": "
                             "\"MaxNorm\", \"config\": {\"max_value\": 3, \"axis\": 0}}}");
    char *a = nnp_config_to_json(c);
    nnp_config *c2 = parse_ok(a);
    char *b = nnp_config_to_json(c2);
    cr_assert_str_eq(a, b);
    json_t *j = json_loads(a, 0, NULL);
    cr_assert_not_null(j);
    cr_assert_eq(json_integer_value(json_object_get(j, "axis")), 2);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "beta_initializer"),
                                                       "class_name")), "GlorotUniform");
    json_decref(j);
    free(a);
    free(b);
    nnp_config_free(c);
    nnp_config_free(c2);
}

Test(config, bad_json)
{
    parse_bad("{\"axis\": ", "invalid JSON");
    parse_bad("[1, 2]", "JSON object");
    parse_bad("{\"axes\": 1}", "'axes'");
    parse_bad("{\"axis\": \"one\"}", "'axis'");
    parse_bad("{\"axis\": 1.5}", "'axis'");
    parse_bad("{\"axis\": 99}", "'axis'");
    parse_bad("{\"momentum\": 1.5}", "'momentum'");
    parse_bad("{\"epsilon\": 0}", "'epsilon'");
    parse_bad("{\"epsilon\": -1e-3}", "'epsilon'");
    parse_bad("{\"center\": 1}", "'center'");
    parse_bad("{\"padding\": \"full\"}", "'padding'");
    parse_bad("{\"beta_initializer\": \"no_such_init\"}", "no_such_init");
    parse_bad("{\"beta_initializer\": null}", "beta_initializer");
    parse_bad("{\"beta_regularizer\": {\"class_name\": \"L3\", \"config\": {}}}", "L3");
    parse_bad("{\"beta_constraint\": \"sometimes\"}", "sometimes");
    parse_bad("{\"strides\": [1, -2]}", "'strides'");
    parse_bad("{\"strides\": [0, 1]}", "'strides'");
    /* an int alone is a list of one: its entry under the list's rule */
    parse_bad("{\"pads\": -4}", "'pads'");
    parse_bad("{\"pads\": [1, -4]}", "'pads'");
    parse_bad("{\"target_shape\": -2}", "'target_shape'");
    parse_bad("{\"dtype\": \"float16\"}", "float32");
    parse_bad("{\"trainable\": \"yes\"}", "'trainable'");
    parse_bad("{\"axis\": 1, \"axis\": 2}", "duplicate");
    parse_bad("{\"betaInitializer\": \"zeros\", \"beta_initializer\": \"ones\"}", "twice");
}

/* An int where ints are asked for is a list of one. */
Test(config, an_int_alone_is_a_list_of_one)
{
    nnp_config *c = parse_ok("{\"pads\": 2, \"strides\": 3, \"target_shape\": -1}");
    int64_t v[4];
    cr_assert_eq(nnp_config_ints(c, "pads", v, 4), 1);
    cr_assert_eq(v[0], 2);
    cr_assert_eq(nnp_config_ints(c, "strides", v, 4), 1);
    cr_assert_eq(v[0], 3);
    cr_assert_eq(nnp_config_ints(c, "target_shape", v, 4), 1);
    cr_assert_eq(v[0], -1);
    nnp_config_free(c);
}

Test(config, set_json)
{
    nnp_config *c = parse_ok("{}");
    nnp_error err = {0};
    cr_assert_eq(nnp_config_set_json(c, "epsilon", "1e-5", &err), NNP_OK, "%s", err.msg);
    cr_assert_float_eq(nnp_config_float(c, "epsilon"), 1e-5, 1e-18);
    cr_assert_neq(nnp_config_set_json(c, "epsilon", "0", &err), NNP_OK);
    cr_assert_float_eq(nnp_config_float(c, "epsilon"), 1e-5, 1e-18, "failed set kept old value");
    cr_assert_eq(nnp_config_set_json(c, "nonexistent", "1", &err), NNP_ERR_NOT_FOUND);
    nnp_config_free(c);
}

Test(config, snake_case)
{
    char buf[64];
    nnp_snake_case("movingVarianceInitializer", buf, sizeof buf);
    cr_assert_str_eq(buf, "moving_variance_initializer");
    nnp_snake_case("axis", buf, sizeof buf);
    cr_assert_str_eq(buf, "axis");
}
