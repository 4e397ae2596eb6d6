/* The plugin ABI's promises, checked: every table layout frozen (offsets
 * and sizes of the LP64 build, as released), a plugin built against the
 * frozen 1.0 header loads and runs in this 1.1 host, a plugin that needs a
 * newer host refuses with a reason the loader reports, and the build's
 * 1.1 plugins refuse a 1.0 host table the same way. (tests/CMakeLists.txt
 * also compiles plugin.h and plugin_util.h as strict C99 and as C++.) */
#include <criterion/criterion.h>
#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnplug/nnplug.h"

#define NNP_STR_(x) #x
#define NNP_STR(x) NNP_STR_(x)
/* "1.4": the version this host says it offers */
#define HOST_ABI NNP_STR(NNP_ABI_MAJOR) "." NNP_STR(NNP_ABI_MINOR)
#include "nnplug/plugin_util.h"

/* ---- frozen layouts --------------------------------------------------------
 * A field that moves breaks every plugin built before: these asserts fail
 * the build. Appending a field for a new minor version adds a line here and
 * changes only the table's size. */
#if defined(__x86_64__) || defined(__aarch64__)
#define NNP_PIN(type, field, off) \
    _Static_assert(offsetof(type, field) == (off), #type "." #field " moved")
#define NNP_PIN_SIZE(type, size) \
    _Static_assert(sizeof(type) == (size), "sizeof(" #type ") changed")
/* nnp_error */
NNP_PIN(nnp_error, code, 0);
NNP_PIN(nnp_error, msg, 4);
NNP_PIN_SIZE(nnp_error, 1028);
/* nnp_shape */
NNP_PIN(nnp_shape, rank, 0);
NNP_PIN(nnp_shape, dims, 8);
NNP_PIN_SIZE(nnp_shape, 72);
/* nnp_tensor */
NNP_PIN(nnp_tensor, dtype, 0);
NNP_PIN(nnp_tensor, shape, 8);
NNP_PIN(nnp_tensor, data, 80);
NNP_PIN(nnp_tensor, nbytes, 88);
NNP_PIN(nnp_tensor, flags, 96);
NNP_PIN_SIZE(nnp_tensor, 104);
/* nnp_param_def */
NNP_PIN(nnp_param_def, name, 0);
NNP_PIN(nnp_param_def, type, 8);
NNP_PIN(nnp_param_def, default_json, 16);
NNP_PIN(nnp_param_def, flags, 24);
NNP_PIN(nnp_param_def, max, 40);
NNP_PIN(nnp_param_def, choices, 48);
NNP_PIN(nnp_param_def, doc, 56);
NNP_PIN_SIZE(nnp_param_def, 64);
/* nnp_weight */
NNP_PIN(nnp_weight, name, 0);
NNP_PIN(nnp_weight, value, 8);
NNP_PIN(nnp_weight, grad, 16);
NNP_PIN(nnp_weight, flags, 24);
NNP_PIN(nnp_weight, regularizer, 32);
NNP_PIN(nnp_weight, constraint, 40);
NNP_PIN_SIZE(nnp_weight, 48);
/* nnp_host */
NNP_PIN(nnp_host, struct_size, 0);
NNP_PIN(nnp_host, abi_major, 8);
NNP_PIN(nnp_host, abi_minor, 12);
NNP_PIN(nnp_host, error_set, 16);
NNP_PIN(nnp_host, log, 24);
NNP_PIN(nnp_host, tensor_alloc, 32);
NNP_PIN(nnp_host, tensor_free, 40);
NNP_PIN(nnp_host, aligned_alloc, 48);
NNP_PIN(nnp_host, aligned_free, 56);
NNP_PIN(nnp_host, shape_numel, 64);
NNP_PIN(nnp_host, config_int, 72);
NNP_PIN(nnp_host, config_float, 80);
NNP_PIN(nnp_host, config_bool, 88);
NNP_PIN(nnp_host, config_string, 96);
NNP_PIN(nnp_host, config_ints, 104);
NNP_PIN(nnp_host, config_initializer, 112);
NNP_PIN(nnp_host, config_regularizer, 120);
NNP_PIN(nnp_host, config_constraint, 128);
NNP_PIN(nnp_host, config_name, 136);
NNP_PIN(nnp_host, config_seed, 144);
NNP_PIN(nnp_host, config_set_json, 152);
NNP_PIN(nnp_host, config_set_int, 160);
NNP_PIN(nnp_host, config_set_float, 168);
NNP_PIN(nnp_host, config_set_bool, 176);
NNP_PIN(nnp_host, initializer_fill, 184);
NNP_PIN(nnp_host, regularizer_loss, 192);
NNP_PIN(nnp_host, regularizer_grad_add, 200);
NNP_PIN(nnp_host, constraint_apply, 208);
NNP_PIN(nnp_host, num_threads, 216);
NNP_PIN(nnp_host, onnx_writer_opset, 224);
NNP_PIN(nnp_host, onnx_unique_name, 232);
NNP_PIN(nnp_host, onnx_add_node, 240);
NNP_PIN(nnp_host, onnx_attr_int, 248);
NNP_PIN(nnp_host, onnx_attr_float, 256);
NNP_PIN(nnp_host, onnx_attr_ints, 264);
NNP_PIN(nnp_host, onnx_attr_string, 272);
NNP_PIN(nnp_host, onnx_add_initializer, 280);
NNP_PIN(nnp_host, onnx_add_value_info, 288);
NNP_PIN(nnp_host, onnx_op_type, 296);
NNP_PIN(nnp_host, onnx_domain, 304);
NNP_PIN(nnp_host, onnx_node_name, 312);
NNP_PIN(nnp_host, onnx_reader_opset, 320);
NNP_PIN(nnp_host, onnx_n_inputs, 328);
NNP_PIN(nnp_host, onnx_n_outputs, 336);
NNP_PIN(nnp_host, onnx_input_name, 344);
NNP_PIN(nnp_host, onnx_output_name, 352);
NNP_PIN(nnp_host, onnx_has_attr, 360);
NNP_PIN(nnp_host, onnx_get_attr_int, 368);
NNP_PIN(nnp_host, onnx_get_attr_float, 376);
NNP_PIN(nnp_host, onnx_get_attr_ints, 384);
NNP_PIN(nnp_host, onnx_get_attr_string, 392);
NNP_PIN(nnp_host, onnx_input_constant, 400);
NNP_PIN(nnp_host, onnx_input_shape, 408);
NNP_PIN(nnp_host, layer_create, 416);
NNP_PIN(nnp_host, layer_destroy, 424);
NNP_PIN(nnp_host, layer_kind, 432);
NNP_PIN(nnp_host, layer_build, 440);
NNP_PIN(nnp_host, layer_forward, 448);
NNP_PIN(nnp_host, layer_backward, 456);
NNP_PIN(nnp_host, layer_n_weights, 464);
NNP_PIN(nnp_host, layer_weight, 472);
NNP_PIN(nnp_host, layer_regularization_loss, 480);
NNP_PIN(nnp_host, layer_apply_constraints, 488);
NNP_PIN(nnp_host, config_is_null, 496);
NNP_PIN(nnp_host, seed_mix, 504);
NNP_PIN(nnp_host, layer_to_onnx, 512);
NNP_PIN(nnp_host, layer_onnx_load_weights, 520);
NNP_PIN(nnp_host, onnx_writer_node_name, 528);
NNP_PIN(nnp_host, onnx_writer_node_n_outputs, 536);
NNP_PIN(nnp_host, onnx_writer_node_output, 544);
NNP_PIN(nnp_host, onnx_writer_set_output, 552);
NNP_PIN(nnp_host, onnx_input_dtype, 560);
NNP_PIN(nnp_host, layer_weights_changed, 568);
NNP_PIN(nnp_host, scratch_reserve, 576);
NNP_PIN(nnp_host, scratch, 584);
NNP_PIN(nnp_host, batch_chunks, 592);
NNP_PIN(nnp_host, reduce_begin, 600);
NNP_PIN(nnp_host, reduce_add, 608);
NNP_PIN(nnp_host, reduce_end, 616);
NNP_PIN(nnp_host, batch_rows, 624);
NNP_PIN(nnp_host, reduce_cover, 632);
NNP_PIN(nnp_host, reduce_add_node, 640);
NNP_PIN_SIZE(nnp_host, 648);
/* nnp_onnx_op */
NNP_PIN(nnp_onnx_op, domain, 0);
NNP_PIN(nnp_onnx_op, op_type, 8);
NNP_PIN(nnp_onnx_op, opset_min, 16);
NNP_PIN(nnp_onnx_op, opset_max, 20);
NNP_PIN_SIZE(nnp_onnx_op, 24);
/* nnp_onnx_node_ext */
NNP_PIN(nnp_onnx_node_ext, struct_size, 0);
NNP_PIN(nnp_onnx_node_ext, weight_outputs, 8);
NNP_PIN(nnp_onnx_node_ext, read_training, 16);
NNP_PIN(nnp_onnx_node_ext, write_training, 24);
NNP_PIN(nnp_onnx_node_ext, check_node, 32);
NNP_PIN(nnp_onnx_node_ext, fold_transpose, 40);
NNP_PIN(nnp_onnx_node_ext, fold_next, 48);
NNP_PIN(nnp_onnx_node_ext, input_rules, 56);
NNP_PIN_SIZE(nnp_onnx_node_ext, 64);
/* nnp_onnx_input_rule (1.3) */
NNP_PIN(nnp_onnx_input_rule, op_type, 0);
NNP_PIN(nnp_onnx_input_rule, input, 8);
NNP_PIN(nnp_onnx_input_rule, name, 16);
NNP_PIN(nnp_onnx_input_rule, types, 24);
NNP_PIN(nnp_onnx_input_rule, ranks, 28);
NNP_PIN(nnp_onnx_input_rule, rank_as, 32);
NNP_PIN(nnp_onnx_input_rule, len_input, 36);
NNP_PIN(nnp_onnx_input_rule, len_axis, 40);
NNP_PIN_SIZE(nnp_onnx_input_rule, 48);
/* nnp_epilogue_ext */
NNP_PIN(nnp_epilogue_ext, struct_size, 0);
NNP_PIN(nnp_epilogue_ext, affine_axis, 8);
NNP_PIN(nnp_epilogue_ext, inference_affine, 16);
NNP_PIN(nnp_epilogue_ext, is_relu, 24);
NNP_PIN(nnp_epilogue_ext, plan_epilogue, 32);
NNP_PIN(nnp_epilogue_ext, set_affine, 40);
NNP_PIN(nnp_epilogue_ext, to_onnx_affine, 48);
NNP_PIN(nnp_epilogue_ext, is_sum, 56);
NNP_PIN(nnp_epilogue_ext, plan_epilogue_sum, 64);
NNP_PIN(nnp_epilogue_ext, plan_train_relu, 72);
NNP_PIN_SIZE(nnp_epilogue_ext, 80);
NNP_PIN(nnp_layout_ext, struct_size, 0);
NNP_PIN(nnp_layout_ext, inference_layouts, 8);
NNP_PIN(nnp_layout_ext, plan_layouts, 16);
NNP_PIN_SIZE(nnp_layout_ext, 24);
NNP_PIN(nnp_in_place_ext, struct_size, 0);
NNP_PIN(nnp_in_place_ext, inference_in_place, 8);
NNP_PIN_SIZE(nnp_in_place_ext, 16);
NNP_PIN(nnp_grad_store_ext, struct_size, 0);
NNP_PIN(nnp_grad_store_ext, store_next_backward, 8);
NNP_PIN_SIZE(nnp_grad_store_ext, 16);
_Static_assert(NNP_TENSOR_NHWC == 2u && NNP_LAYOUT_NHWC == 1u, "layout flags moved");
/* nnp_kind */
NNP_PIN(nnp_kind, struct_size, 0);
NNP_PIN(nnp_kind, abi_major, 8);
NNP_PIN(nnp_kind, abi_minor, 12);
NNP_PIN(nnp_kind, name, 16);
NNP_PIN(nnp_kind, doc, 24);
NNP_PIN(nnp_kind, params, 32);
NNP_PIN(nnp_kind, n_params, 40);
NNP_PIN(nnp_kind, onnx, 48);
NNP_PIN(nnp_kind, n_inputs_max, 76);
NNP_PIN(nnp_kind, flags, 80);
NNP_PIN(nnp_kind, create, 88);
NNP_PIN(nnp_kind, destroy, 96);
NNP_PIN(nnp_kind, build, 104);
NNP_PIN(nnp_kind, n_weights, 112);
NNP_PIN(nnp_kind, weight, 120);
NNP_PIN(nnp_kind, forward, 128);
NNP_PIN(nnp_kind, backward, 136);
NNP_PIN(nnp_kind, regularization_loss, 144);
NNP_PIN(nnp_kind, apply_constraints, 152);
NNP_PIN(nnp_kind, to_onnx, 160);
NNP_PIN(nnp_kind, from_onnx, 168);
NNP_PIN(nnp_kind, onnx_load_weights, 176);
NNP_PIN(nnp_kind, extension, 184);
NNP_PIN(nnp_kind, weights_changed, 192);
NNP_PIN_SIZE(nnp_kind, 200);
/* nnp_plugin */
NNP_PIN(nnp_plugin, struct_size, 0);
NNP_PIN(nnp_plugin, abi_major, 8);
NNP_PIN(nnp_plugin, abi_minor, 12);
NNP_PIN(nnp_plugin, name, 16);
NNP_PIN(nnp_plugin, version, 24);
NNP_PIN(nnp_plugin, kinds, 32);
NNP_PIN(nnp_plugin, n_kinds, 40);
NNP_PIN_SIZE(nnp_plugin, 48);
/* the host table as 1.0 laid it out ends where 1.1's first field starts */
_Static_assert(NNP_HOST_SIZE_1_0 == 496, "the 1.0 host table's size changed");
_Static_assert(NNP_HOST_SIZE_1_1 == 568, "the 1.1 host table's size changed");
_Static_assert(NNP_HOST_SIZE_1_2 == 592, "the 1.2 host table's size changed");
_Static_assert(NNP_HOST_SIZE_1_3 == 624, "the 1.3 host table's size changed");
_Static_assert(NNP_HOST_SIZE_1_4 == 632, "the 1.4 host table's size changed");
_Static_assert(NNP_HOST_SIZE_1_5 == 648, "the 1.5 host table's size changed");
_Static_assert(NNP_HOST_SIZE_1_6 == 648, "the 1.6 host table's size changed");
_Static_assert(NNP_HOST_SIZE_1_7 == 648, "the 1.7 host table's size changed");
_Static_assert(NNP_HOST_SIZE_1_8 == 648, "the 1.8 host table's size changed");
#endif

Test(abi, host_table_says_its_version_and_size)
{
    const nnp_host *h = nnp_host_services();
    cr_assert_eq(h->abi_major, NNP_ABI_MAJOR);
    cr_assert_eq(h->abi_minor, 8u);
    cr_assert_eq(h->struct_size, sizeof(nnp_host));
    cr_assert(NNP_HOST_AT_LEAST(h, 0));
    cr_assert(NNP_HOST_AT_LEAST(h, 1));
    cr_assert(NNP_HOST_AT_LEAST(h, 2));
    cr_assert(NNP_HOST_AT_LEAST(h, 3));
    cr_assert(NNP_HOST_AT_LEAST(h, 4));
    cr_assert(NNP_HOST_AT_LEAST(h, 5));
    cr_assert(NNP_HOST_AT_LEAST(h, 6));
    cr_assert(NNP_HOST_AT_LEAST(h, 7));
    cr_assert(NNP_HOST_AT_LEAST(h, 8));
    cr_assert(!NNP_HOST_AT_LEAST(h, 9));
    cr_assert_not_null(h->layer_weights_changed);
    /* outside a model's build and calls there is no workspace to share */
    cr_assert_eq(h->scratch_reserve(1024), 0);
    cr_assert_null(h->scratch(1024));
    /* outside a data-parallel step no batch split is in effect */
    cr_assert_eq(h->batch_chunks(64, 0, NULL, NULL), 0);
    int64_t global_rows = 0;
    cr_assert_eq(h->batch_rows(64, &global_rows), 0);
    cr_assert_eq(global_rows, 64);
    void *red = (void *)1;
    nnp_error err = {0};
    cr_assert_neq(h->reduce_begin(NNP_F32, 4, 1, &red, &err), NNP_OK);
    cr_assert_null(red);
    /* a table that says 1.4 but is cut short is not a 1.3 table */
    nnp_host cut = *h;
    cut.struct_size = NNP_HOST_SIZE_1_0;
    cr_assert(NNP_HOST_AT_LEAST(&cut, 0));
    cr_assert(!NNP_HOST_AT_LEAST(&cut, 1));
    cut.struct_size = NNP_HOST_SIZE_1_1;
    cr_assert(NNP_HOST_AT_LEAST(&cut, 1));
    cr_assert(!NNP_HOST_AT_LEAST(&cut, 2));
    cut.struct_size = NNP_HOST_SIZE_1_2;
    cr_assert(NNP_HOST_AT_LEAST(&cut, 2));
    cr_assert(!NNP_HOST_AT_LEAST(&cut, 3));
    cut.struct_size = NNP_HOST_SIZE_1_3;
    cr_assert(NNP_HOST_AT_LEAST(&cut, 3));
    cr_assert(!NNP_HOST_AT_LEAST(&cut, 4));
    nnp_host other = *h;
    other.abi_major = NNP_ABI_MAJOR + 1;
    cr_assert(!NNP_HOST_AT_LEAST(&other, 0));
}

static const char *fixture(const char *name)
{
    static char path[PATH_MAX];
    const char *d = getenv("NNP_FIXTURES");
    cr_assert(d && *d, "NNP_FIXTURES is not set");
    snprintf(path, sizeof path, "%s/abi/%s", d, name);
    return path;
}

/* Built against tests/fixtures/abi-1.0/nnplug/plugin.h: its tables say 1.0
 * and it knows nothing of 1.1's fields, yet it loads and computes. */
Test(abi, plugin_built_for_1_0_loads_and_runs)
{
    nnp_registry *reg;
    nnp_error err = {0};
    cr_assert_eq(nnp_registry_new(&reg, &err), NNP_OK);
    cr_assert_eq(nnp_registry_load(reg, fixture("abi10_kind.so"), &err), NNP_OK, "%s", err.msg);
    const nnp_kind *k = nnp_registry_find(reg, "Abi10Kind");
    cr_assert_not_null(k);
    cr_assert_eq(k->abi_minor, 0u);
    nnp_layer *l;
    cr_assert_eq(nnp_layer_new(reg, "Abi10Kind", "{\"offset\": 2.5}", &l, &err), NNP_OK, "%s",
                 err.msg);
    nnp_shape s = {2, {2, 3}}, out;
    cr_assert_eq(nnp_layer_build(l, 1, &s, &out, &err), NNP_OK, "%s", err.msg);
    nnp_tensor x, y;
    cr_assert_eq(nnp_tensor_alloc(&x, NNP_F32, &s, &err), NNP_OK);
    cr_assert_eq(nnp_tensor_alloc(&y, NNP_F32, &out, &err), NNP_OK);
    for (int i = 0; i < 6; i++)
        ((float *)x.data)[i] = (float)i - 2.0f;
    const nnp_tensor *in[1] = {&x};
    cr_assert_eq(nnp_layer_forward(l, in, 1, &y, NNP_MODE_INFER, &err), NNP_OK, "%s", err.msg);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(((float *)y.data)[i], (float)i - 2.0f + 2.5f);
    nnp_tensor_free(&x);
    nnp_tensor_free(&y);
    nnp_layer_free(l);
    nnp_registry_free(reg);
}

/* A plugin that needs a newer host says so, and the loader's error carries
 * its words and the host's version. */
Test(abi, plugin_needing_a_newer_host_refuses_with_its_reason)
{
    nnp_registry *reg;
    nnp_error err = {0};
    cr_assert_eq(nnp_registry_new(&reg, &err), NNP_OK);
    cr_assert_eq(nnp_registry_load(reg, fixture("needs_future.so"), &err), NNP_ERR_INVALID);
    cr_assert(strstr(err.msg, "needs_future.so"), "%s", err.msg);
    cr_assert(strstr(err.msg, "the plugin refused this host, ABI " HOST_ABI), "%s", err.msg);
    cr_assert(strstr(err.msg, "plugin 'future' needs an nnplug host with ABI 1.99 or later "
                              "(this host offers " HOST_ABI ")"),
              "%s", err.msg);
    cr_assert_eq(nnp_registry_n_kinds(reg), 0);
    nnp_registry_free(reg);
}

/* ---- the build's plugins on a 1.0 host table ------------------------------ */

static char logged[1024];

static void capture_log(int level, const char *fmt, ...)
{
    if (level != NNP_LOG_ERROR)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(logged, sizeof logged, fmt, ap);
    va_end(ap);
}

/* What a host of the first release hands a plugin: the table up to 1.0's
 * last field, saying 1.0. */
static nnp_host host_1_0(void)
{
    nnp_host h = *nnp_host_services();
    h.struct_size = NNP_HOST_SIZE_1_0;
    h.abi_minor = 0;
    h.log = capture_log;
    h.config_is_null = NULL;
    h.seed_mix = NULL;
    h.layer_to_onnx = NULL;
    h.layer_onnx_load_weights = NULL;
    return h;
}

static const nnp_plugin *entry_on(const char *file, const nnp_host *h, void **handle)
{
    char path[PATH_MAX];
    const char *d = getenv("NNP_PLUGIN_DIR");
    cr_assert(d && *d, "NNP_PLUGIN_DIR is not set");
    snprintf(path, sizeof path, "%s/%s", d, file);
    *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    cr_assert_not_null(*handle, "%s: %s", path, dlerror());
    nnp_plugin_entry_fn entry;
    void *sym = dlsym(*handle, NNP_PLUGIN_ENTRY_SYMBOL);
    cr_assert_not_null(sym, "%s has no entry", path);
    memcpy(&entry, &sym, sizeof entry);
    logged[0] = '\0';
    return entry(h);
}

/* BatchNormalization calls seed_mix (1.1): on a 1.0 table it refuses, with
 * a line a 1.0 host would print. */
Test(abi, plugin_built_for_1_1_refuses_a_1_0_host)
{
    nnp_host h = host_1_0();
    void *handle;
    cr_assert_null(entry_on("nnp_batchnorm.so", &h, &handle));
    cr_assert_str_eq(logged, "plugin 'batchnorm' needs an nnplug host with ABI 1.1 or later "
                             "(this host offers 1.0)");
    dlclose(handle);
}

/* Every plugin of the build either accepts a 1.0 host or says why not;
 * ExampleScale, the template, needs nothing past 1.0. */
Test(abi, every_plugin_accepts_or_explains_on_a_1_0_host)
{
    const char *d = getenv("NNP_PLUGIN_DIR");
    cr_assert(d && *d);
    DIR *dir = opendir(d);
    cr_assert_not_null(dir, "%s", d);
    int n = 0;
    for (struct dirent *e; (e = readdir(dir));) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 3, ".so") != 0)
            continue;
        nnp_host h = host_1_0();
        void *handle;
        const nnp_plugin *p = entry_on(e->d_name, &h, &handle);
        if (p)
            cr_assert_eq(p->abi_major, NNP_ABI_MAJOR, "%s", e->d_name);
        else
            cr_assert(strstr(logged, "needs an nnplug host with ABI 1."),
                      "%s refused a 1.0 host without a reason", e->d_name);
        if (strcmp(e->d_name, "nnp_example_scale.so") == 0)
            cr_assert_not_null(p, "the template plugin must run on any 1.x host");
        dlclose(handle);
        n++;
    }
    closedir(dir);
    cr_assert_geq(n, 8, "only %d plugins in %s", n, d);
}
