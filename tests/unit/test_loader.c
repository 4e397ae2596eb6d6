/* The plugin loader and registry: every bad plugin refused for its own
 * reason, good ones registered and runnable, directory and NNP_PLUGIN_PATH
 * scanning, ONNX lookup, thread safety, the schema JSON and the `nnplug
 * plugins` command.
 *
 * Fixtures come from $NNP_FIXTURES (tests/fixtures), the build's plugins
 * from $NNP_PLUGIN_DIR, the command from $NNP_BIN. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nnplug/nnplug.h"
#include "fixtures/fixture_kind.h"

static const char *env_dir(const char *name)
{
    const char *d = getenv(name);
    cr_assert(d && *d, "%s is not set", name);
    return d;
}

/* $NNP_FIXTURES/name in a static ring of buffers. */
static const char *fixture(const char *name)
{
    static char ring[8][PATH_MAX];
    static int next;
    char *p = ring[next++ % 8];
    snprintf(p, PATH_MAX, "%s/%s", env_dir("NNP_FIXTURES"), name);
    return p;
}

/* The resolved path the registry records as a kind's origin. */
static char *resolved(const char *path)
{
    char *r = realpath(path, NULL);
    cr_assert_not_null(r, "realpath %s", path);
    return r;
}

static nnp_registry *new_registry(void)
{
    nnp_registry *reg;
    nnp_error err;
    cr_assert_eq(nnp_registry_new(&reg, &err), NNP_OK, "%s", err.msg);
    return reg;
}

static void assert_contains(const char *msg, const char *needle)
{
    cr_assert(strstr(msg, needle), "message \"%s\" does not contain \"%s\"", msg, needle);
}

/* ------------------------------------------------------------------ */
/* Each bad plugin file, its own error                                 */
/* ------------------------------------------------------------------ */

typedef struct bad_case {
    const char *file;
    nnp_status code;
    const char *reason[3];   /* substrings the message must contain */
} bad_case;

static const bad_case bad_cases[] = {
    {"missing.so", NNP_ERR_IO, {"no such file"}},
    {"not_elf.so", NNP_ERR_FORMAT, {"not a loadable shared object", "invalid ELF header"}},
    {"no_entry.so", NNP_ERR_NOT_FOUND, {"no entry symbol nnp_plugin_entry"}},
    {"null_entry.so", NNP_ERR_INVALID, {"nnp_plugin_entry returned NULL"}},
    {"bad_abi.so", NNP_ERR_ABI, {"plugin ABI major 2", "host has ABI major 1"}},
    {"small_table.so", NNP_ERR_ABI, {"plugin table too small", "struct_size"}},
    {"bad_param.so", NNP_ERR_INVALID, {"'BadParamKind'", "'momentum'", "not valid JSON"}},
    {"bad_kind.so", NNP_ERR_INVALID, {"'NoForwardKind'", "no forward function"}},
};
#define N_BAD ((int)(sizeof bad_cases / sizeof bad_cases[0]))

Test(loader, each_bad_plugin_has_its_own_error)
{
    char msgs[N_BAD][NNP_ERROR_MSG_MAX];
    for (int i = 0; i < N_BAD; i++) {
        nnp_registry *reg = new_registry();
        nnp_error err = {0};
        const char *path = fixture(bad_cases[i].file);
        nnp_status st = nnp_registry_load(reg, path, &err);
        cr_expect_eq(st, bad_cases[i].code, "%s: status %d (%s), expected %d", bad_cases[i].file,
                     st, err.msg, bad_cases[i].code);
        cr_expect_eq(err.code, st);
        assert_contains(err.msg, path);
        for (int j = 0; j < 3 && bad_cases[i].reason[j]; j++)
            assert_contains(err.msg, bad_cases[i].reason[j]);
        /* A plugin that fails registers nothing. */
        cr_expect_eq(nnp_registry_n_kinds(reg), 0, "%s registered kinds", bad_cases[i].file);
        cr_expect_null(nnp_registry_find(reg, "BadParamOkKind"));
        strcpy(msgs[i], err.msg);
        nnp_registry_free(reg);
    }
    for (int i = 0; i < N_BAD; i++)
        for (int j = 0; j < i; j++)
            cr_expect_str_neq(msgs[i], msgs[j]);
}

Test(loader, duplicate_kind_names_both_files)
{
    nnp_registry *reg = new_registry();
    nnp_error err;
    char *good = resolved(fixture("good.so"));
    cr_assert_eq(nnp_registry_load(reg, fixture("good.so"), &err), NNP_OK, "%s", err.msg);
    nnp_status st = nnp_registry_load(reg, fixture("dup_kind.so"), &err);
    cr_assert_eq(st, NNP_ERR_DUPLICATE, "%s", err.msg);
    assert_contains(err.msg, fixture("dup_kind.so"));
    assert_contains(err.msg, "'FixtureKind' is already registered by");
    assert_contains(err.msg, good);
    /* The refused plugin's other kind is not registered either. */
    cr_assert_null(nnp_registry_find(reg, "DupOnlyKind"));
    cr_assert_eq(nnp_registry_n_kinds(reg), 1);
    cr_assert_str_eq(nnp_registry_kind_origin(reg, 0), good);
    free(good);
    nnp_registry_free(reg);
}

Test(loader, loading_the_same_file_twice_is_a_no_op)
{
    nnp_registry *reg = new_registry();
    nnp_error err;
    cr_assert_eq(nnp_registry_load(reg, fixture("good.so"), &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_registry_load(reg, fixture("good.so"), &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_registry_n_kinds(reg), 1);
    nnp_registry_free(reg);
}

Test(loader, relative_paths_are_resolved_never_searched)
{
    nnp_registry *reg = new_registry();
    nnp_error err;
    cr_assert_eq(chdir(env_dir("NNP_FIXTURES")), 0);
    /* A bare name means the file here, not a library search. */
    cr_assert_eq(nnp_registry_load(reg, "good.so", &err), NNP_OK, "%s", err.msg);
    const char *origin = nnp_registry_kind_origin(reg, 0);
    cr_assert_eq(origin[0], '/', "origin %s is not absolute", origin);
    cr_assert_eq(nnp_registry_load(reg, "libc.so.6", &err), NNP_ERR_IO, "%s", err.msg);
    assert_contains(err.msg, "libc.so.6: no such file");
    cr_assert_eq(nnp_registry_load(reg, fixture(""), &err), NNP_ERR_IO);
    assert_contains(err.msg, "is a directory");
    nnp_registry_free(reg);
}

/* ------------------------------------------------------------------ */
/* Good plugins                                                        */
/* ------------------------------------------------------------------ */

Test(loader, good_kind_runs_through_the_host_table)
{
    nnp_registry *reg = new_registry();
    nnp_error err;
    cr_assert_eq(nnp_registry_load(reg, fixture("good.so"), &err), NNP_OK, "%s", err.msg);
    const nnp_kind *k = nnp_registry_find(reg, "FixtureKind");
    cr_assert_not_null(k);
    cr_assert_eq(k->struct_size, sizeof(nnp_kind));

    nnp_config *cfg;
    cr_assert_eq(nnp_config_from_json(k, "{\"offset\": 2}", &cfg, &err), NNP_OK, "%s", err.msg);
    void *state = NULL;
    cr_assert_eq(k->create(nnp_host_services(), cfg, &state, &err), NNP_OK, "%s", err.msg);
    nnp_shape in = {.rank = 2, .dims = {2, 3}}, out;
    cr_assert_eq(k->build(state, 1, &in, &out, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(out.rank, 2);
    cr_assert_eq(out.dims[1], 3);

    float x[6] = {0, 1, 2, -3, 4.5f, 5}, y[6];
    nnp_tensor tx, ty;
    cr_assert_eq(nnp_tensor_wrap(&tx, NNP_F32, &in, x, &err), NNP_OK);
    cr_assert_eq(nnp_tensor_wrap(&ty, NNP_F32, &out, y, &err), NNP_OK);
    const nnp_tensor *ins[1] = {&tx};
    cr_assert_eq(k->forward(state, ins, 1, &ty, NNP_MODE_INFER, &err), NNP_OK, "%s", err.msg);
    for (int i = 0; i < 6; i++)
        cr_assert_float_eq(y[i], x[i] + 2.0f, 0);
    k->destroy(state);
    nnp_config_free(cfg);

    /* The same through the layer API, with the schema default 0.5. */
    nnp_layer *l;
    cr_assert_eq(nnp_layer_new(reg, "FixtureKind", NULL, &l, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_layer_build(l, 1, &in, &out, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_layer_forward(l, ins, 1, &ty, NNP_MODE_INFER, &err), NNP_OK, "%s", err.msg);
    cr_assert_float_eq(y[3], -2.5f, 0);
    nnp_layer_free(l);
    nnp_registry_free(reg);
}

Test(loader, older_minor_table_reads_only_covered_fields)
{
    nnp_registry *reg = new_registry();
    nnp_error err;
    cr_assert_eq(nnp_registry_load(reg, fixture("minor_table.so"), &err), NNP_OK, "%s", err.msg);
    const nnp_kind *k = nnp_registry_find(reg, "MinorKind");
    cr_assert_not_null(k);
    /* The host copy has every field; those past the plugin's struct_size
     * are absent even though the plugin's memory held something there. */
    cr_assert_eq(k->struct_size, sizeof(nnp_kind));
    cr_assert_not_null(k->forward);
    cr_assert_null(k->to_onnx);
    cr_assert_null(k->from_onnx);
    cr_assert_null(k->extension);
    nnp_registry_free(reg);
}

/* ------------------------------------------------------------------ */
/* Directories and NNP_PLUGIN_PATH                                     */
/* ------------------------------------------------------------------ */

/* The fixture directory in name order: bad_abi bad_kind bad_param dup_kind
 * good minor_table no_entry not_elf null_entry small_table. dup_kind.so is
 * first to declare FixtureKind, so good.so is the duplicate. */
static void assert_fixture_dir_loaded(const nnp_registry *reg)
{
    cr_assert_eq(nnp_registry_n_failures(reg), 8);
    cr_assert_not_null(nnp_registry_find(reg, "DupOnlyKind"));
    cr_assert_not_null(nnp_registry_find(reg, "FixtureKind"));
    cr_assert_not_null(nnp_registry_find(reg, "MinorKind"));
    const char *in_order[] = {"bad_abi.so", "bad_kind.so", "bad_param.so", "good.so",
                              "no_entry.so", "not_elf.so", "null_entry.so", "small_table.so"};
    for (int i = 0; i < 8; i++)
        assert_contains(nnp_registry_failure(reg, i), in_order[i]);
    assert_contains(nnp_registry_failure(reg, 3), "dup_kind.so");
    cr_assert_null(nnp_registry_failure(reg, 8));
}

Test(loader, load_dir_records_failures_and_keeps_going)
{
    nnp_registry *reg = new_registry();
    nnp_error err;
    cr_assert_eq(nnp_registry_load_dir(reg, env_dir("NNP_FIXTURES"), &err), NNP_OK, "%s",
                 err.msg);
    assert_fixture_dir_loaded(reg);
    cr_assert_eq(nnp_registry_n_kinds(reg), 3);
    char *names = nnp_registry_kind_names(reg);
    cr_assert_str_eq(names, "DupOnlyKind, FixtureKind, MinorKind");
    free(names);

    cr_assert_eq(nnp_registry_load_dir(reg, "/nonexistent/nnplug", &err), NNP_ERR_IO);
    assert_contains(err.msg, "/nonexistent/nnplug");
    nnp_registry_free(reg);
}

Test(loader, plugin_path_scans_each_directory)
{
    char path[3 * PATH_MAX];
    snprintf(path, sizeof path, "/nonexistent/dir::%s:%s/", env_dir("NNP_FIXTURES"),
             env_dir("NNP_PLUGIN_DIR"));
    setenv("NNP_PLUGIN_PATH", path, 1);
    setenv("NNP_NO_DEFAULT_PLUGINS", "1", 1);
    nnp_registry *reg = new_registry();
    nnp_error err;
    cr_assert_eq(nnp_registry_load_default(reg, &err), NNP_OK, "%s", err.msg);
    /* The missing directory is skipped silently. */
    assert_fixture_dir_loaded(reg);
    cr_assert_not_null(nnp_registry_find(reg, "ExampleScale"));
    nnp_registry_free(reg);

    /* Nothing at all when both sources are off. */
    unsetenv("NNP_PLUGIN_PATH");
    reg = new_registry();
    cr_assert_eq(nnp_registry_load_default(reg, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_registry_n_kinds(reg), 0);
    cr_assert_eq(nnp_registry_n_failures(reg), 0);
    nnp_registry_free(reg);
}

/* ------------------------------------------------------------------ */
/* Linked-in tables: validation and ONNX lookup                        */
/* ------------------------------------------------------------------ */

static nnp_status add_kind(nnp_registry *reg, const nnp_kind *k, nnp_error *err)
{
    const nnp_kind *kinds[1] = {k};
    nnp_plugin p = {.struct_size = sizeof p, .abi_major = NNP_ABI_MAJOR,
                    .abi_minor = NNP_ABI_MINOR, .name = "linked", .version = "0",
                    .kinds = kinds, .n_kinds = 1};
    return nnp_registry_add(reg, &p, "linked-in test table", err);
}

static const nnp_kind base_kind = {.struct_size = sizeof(nnp_kind), FX_KIND("LinkedKind")};

typedef struct kind_case {
    const char *why;
    nnp_kind kind;
    const char *expect;
} kind_case;

static const nnp_param_def p_dup[] = {
    {.name = "a", .type = NNP_PARAM_INT, .default_json = "1"},
    {.name = "a", .type = NNP_PARAM_INT, .default_json = "2"}};
static const nnp_param_def p_camel[] = {{.name = "betaInit", .type = NNP_PARAM_INT,
                                         .default_json = "1"}};
static const nnp_param_def p_reserved[] = {{.name = "trainable", .type = NNP_PARAM_BOOL,
                                            .default_json = "true"}};
static const nnp_param_def p_type[] = {{.name = "a", .type = (nnp_param_type)99,
                                        .default_json = "1"}};
static const nnp_param_def p_nodefault[] = {{.name = "a", .type = NNP_PARAM_INT}};
static const nnp_param_def p_wrongtype[] = {{.name = "a", .type = NNP_PARAM_INT,
                                             .default_json = "\"x\""}};
static const nnp_param_def p_null[] = {{.name = "a", .type = NNP_PARAM_FLOAT,
                                        .default_json = "null"}};
static const nnp_param_def p_range[] = {{.name = "a", .type = NNP_PARAM_FLOAT,
                                         .default_json = "0", .flags = NNP_PARAM_HAS_MIN |
                                         NNP_PARAM_MIN_EXCLUSIVE, .min = 0}};
static const nnp_param_def p_string_range[] = {{.name = "a", .type = NNP_PARAM_STRING,
                                                .default_json = "\"x\"",
                                                .flags = NNP_PARAM_HAS_MAX, .max = 1}};
static const nnp_param_def p_empty_range[] = {{.name = "a", .type = NNP_PARAM_INT,
                                               .default_json = "1",
                                               .flags = NNP_PARAM_HAS_MIN | NNP_PARAM_HAS_MAX,
                                               .min = 2, .max = 1}};
static const nnp_param_def p_choice[] = {{.name = "a", .type = NNP_PARAM_STRING,
                                          .default_json = "\"c\"", .choices = "a|b"}};
static const nnp_param_def p_bad_choices[] = {{.name = "a", .type = NNP_PARAM_STRING,
                                               .default_json = "\"a\"", .choices = "a||b"}};
static const nnp_param_def p_shape[] = {{.name = "a", .type = NNP_PARAM_SHAPE,
                                         .default_json = "[1, \"x\"]"}};
static const nnp_param_def p_init[] = {{.name = "a", .type = NNP_PARAM_INITIALIZER,
                                        .default_json = "{\"config\": {}}"}};
static const nnp_param_def p_init_name[] = {{.name = "a", .type = NNP_PARAM_INITIALIZER,
                                             .default_json = "\"no_such_initializer\""}};

#define KIND_WITH(params_)                                                      \
    {.struct_size = sizeof(nnp_kind), FX_KIND_BASE("LinkedKind"), .params = params_, \
     .n_params = sizeof params_ / sizeof params_[0], .forward = fx_forward}

static const kind_case kind_cases[] = {
    {"empty name", {.struct_size = sizeof(nnp_kind), FX_KIND("")}, "not an identifier"},
    {"name with a space", {.struct_size = sizeof(nnp_kind), FX_KIND("My Kind")},
     "not an identifier"},
    {"no forward", {.struct_size = sizeof(nnp_kind), FX_KIND_BASE("LinkedKind")},
     "no forward function"},
    {"kind too small", {.struct_size = 16, FX_KIND("LinkedKind")}, "too small"},
    {"params missing", {.struct_size = sizeof(nnp_kind), FX_KIND_BASE("LinkedKind"),
                        .n_params = 2, .forward = fx_forward}, "no parameter table"},
    {"duplicate param", KIND_WITH(p_dup), "'a' is declared twice"},
    {"camelCase param", KIND_WITH(p_camel), "not snake_case"},
    {"reserved param", KIND_WITH(p_reserved), "shadows a key"},
    {"unknown type", KIND_WITH(p_type), "unknown type 99"},
    {"no default", KIND_WITH(p_nodefault), "has no default"},
    {"wrong default type", KIND_WITH(p_wrongtype), "'a' must be an int"},
    {"null not nullable", KIND_WITH(p_null), "'a' must be a number"},
    {"default out of range", KIND_WITH(p_range), "'a' = 0 must be > 0"},
    {"range on a string", KIND_WITH(p_string_range), "range is only allowed"},
    {"empty range", KIND_WITH(p_empty_range), "empty or not finite"},
    {"default not a choice", KIND_WITH(p_choice), "is not one of a|b"},
    {"bad choices", KIND_WITH(p_bad_choices), "'|'-separated"},
    {"bad shape", KIND_WITH(p_shape), "entry 1 must be"},
    {"bad initializer spec", KIND_WITH(p_init), "schema default"},
    {"unknown initializer", KIND_WITH(p_init_name), "no_such_initializer"},
    {"onnx opsets", {.struct_size = sizeof(nnp_kind), FX_KIND("LinkedKind"),
                     .onnx = {"", "Relu", 14, 6}}, "opset range"},
    {"wrapper without layer", {.struct_size = sizeof(nnp_kind), FX_KIND("LinkedKind"),
                               .flags = NNP_KIND_WRAPPER}, "no layer-typed parameter"},
};

static void expect_refused(const char *why, const nnp_kind *k, const char *expect)
{
    nnp_registry *reg = new_registry();
    nnp_error err = {0};
    nnp_status st = add_kind(reg, k, &err);
    cr_expect_neq(st, NNP_OK, "%s: accepted", why);
    cr_expect(strstr(err.msg, expect), "%s: \"%s\" lacks \"%s\"", why, err.msg, expect);
    cr_expect(strstr(err.msg, "linked-in test table"), "%s: \"%s\" names no origin", why,
              err.msg);
    cr_expect_eq(nnp_registry_n_kinds(reg), 0, "%s", why);
    nnp_registry_free(reg);
}

Test(loader, malformed_kinds_are_refused_with_the_reason)
{
    for (size_t i = 0; i < sizeof kind_cases / sizeof kind_cases[0]; i++)
        expect_refused(kind_cases[i].why, &kind_cases[i].kind, kind_cases[i].expect);
    nnp_kind k = base_kind;
    k.abi_major = 0;
    expect_refused("kind ABI", &k, "kind 0 table built for plugin ABI major 0");
    k = base_kind;
    k.n_inputs_max = 0;
    expect_refused("no inputs", &k, "input count range [1, 0]");
}

Test(loader, registry_add_and_find_onnx)
{
    nnp_registry *reg = new_registry();
    nnp_error err;
    nnp_kind relu = base_kind, custom = base_kind;
    relu.name = "MyRelu";
    relu.onnx = (nnp_onnx_op){NULL, "Relu", 6, 14};
    custom.name = "MyCustom";
    custom.onnx = (nnp_onnx_op){"com.example", "Relu", 1, 1};
    cr_assert_eq(add_kind(reg, &base_kind, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(add_kind(reg, &relu, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(add_kind(reg, &custom, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(add_kind(reg, &relu, &err), NNP_ERR_DUPLICATE);
    assert_contains(err.msg, "'MyRelu' is already registered by linked-in test table");

    const nnp_kind *k = nnp_registry_find_onnx(reg, "", "Relu", 6);
    cr_assert(k && strcmp(k->name, "MyRelu") == 0);
    cr_assert_str_eq(k->onnx.domain, "");   /* NULL domain normalized */
    cr_assert_eq(nnp_registry_find_onnx(reg, "ai.onnx", "Relu", 14), k);
    cr_assert_eq(nnp_registry_find_onnx(reg, NULL, "Relu", 10), k);
    cr_assert_null(nnp_registry_find_onnx(reg, "", "Relu", 5));
    cr_assert_null(nnp_registry_find_onnx(reg, "", "Relu", 15));
    cr_assert_null(nnp_registry_find_onnx(reg, "", "Sigmoid", 10));
    k = nnp_registry_find_onnx(reg, "com.example", "Relu", 1);
    cr_assert(k && strcmp(k->name, "MyCustom") == 0);
    cr_assert_null(nnp_registry_find_onnx(reg, "com.example", "Relu", 2));
    cr_assert_null(nnp_registry_find(reg, "NoSuchKind"));
    cr_assert_null(nnp_registry_kind_at(reg, 3));
    cr_assert_null(nnp_registry_kind_origin(reg, -1));
    nnp_registry_free(reg);
}

/* ------------------------------------------------------------------ */
/* Threads                                                             */
/* ------------------------------------------------------------------ */

typedef struct race {
    nnp_registry *reg;
    const char *dir;
    volatile int done;   /* set once by main after the loaders joined */
    int lookups;
} race;

static void *reader(void *arg)
{
    race *r = arg;
    static const char *const names[] = {"FixtureKind", "ExampleScale", "MinorKind", "Nope"};
    while (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE)) {
        for (int i = 0; i < 4; i++) {
            const nnp_kind *k = nnp_registry_find(r->reg, names[i]);
            if (k && strcmp(k->name, names[i]) != 0)
                return "find returned another kind";
        }
        int n = nnp_registry_n_kinds(r->reg);
        for (int i = 0; i < n; i++)
            if (!nnp_registry_kind_at(r->reg, i) || !nnp_registry_kind_origin(r->reg, i))
                return "kind_at failed below n_kinds";
        free(nnp_registry_kind_names(r->reg));
        nnp_registry_find_onnx(r->reg, "", "BatchNormalization", 15);
        r->lookups++;
    }
    return NULL;
}

static void *loader(void *arg)
{
    race *r = arg;
    nnp_error err;
    return nnp_registry_load_dir(r->reg, r->dir, &err) == NNP_OK ? NULL : "load_dir failed";
}

Test(loader, lookups_while_loading)
{
    nnp_registry *reg = new_registry();
    race readers[4], loaders[3];
    pthread_t rt[4], lt[3];
    const char *dirs[3] = {env_dir("NNP_FIXTURES"), env_dir("NNP_PLUGIN_DIR"),
                           env_dir("NNP_FIXTURES")};
    for (int i = 0; i < 4; i++) {
        readers[i] = (race){.reg = reg};
        cr_assert_eq(pthread_create(&rt[i], NULL, reader, &readers[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        loaders[i] = (race){.reg = reg, .dir = dirs[i]};
        cr_assert_eq(pthread_create(&lt[i], NULL, loader, &loaders[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        void *res;
        pthread_join(lt[i], &res);
        cr_expect_null(res, "%s", (char *)res);
    }
    for (int i = 0; i < 4; i++) {
        void *res;
        __atomic_store_n(&readers[i].done, 1, __ATOMIC_RELEASE);
        pthread_join(rt[i], &res);
        cr_expect_null(res, "%s", (char *)res);
    }
    /* Two loaders raced over the same directory: every kind still once. */
    int n = nnp_registry_n_kinds(reg);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            cr_assert_str_neq(nnp_registry_kind_at(reg, i)->name,
                              nnp_registry_kind_at(reg, j)->name);
    cr_assert_not_null(nnp_registry_find(reg, "FixtureKind"));
    cr_assert_not_null(nnp_registry_find(reg, "MinorKind"));
    cr_assert_not_null(nnp_registry_find(reg, "ExampleScale"));
    nnp_registry_free(reg);
}

/* ------------------------------------------------------------------ */
/* Schema JSON and the command                                         */
/* ------------------------------------------------------------------ */

static json_t *find_by_name(const json_t *array, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(array, i, e)
        if (json_is_string(json_object_get(e, "name")) &&
            strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
            return e;
    return NULL;
}

static void assert_kind_keys(const json_t *k)
{
    static const char *const keys[] = {"name", "doc", "plugin", "onnx", "inputs", "wrapper",
                                       "params"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_assert_not_null(json_object_get(k, keys[i]), "kind lacks \"%s\"", keys[i]);
    cr_assert(json_is_integer(json_object_get(json_object_get(k, "inputs"), "min")));
    cr_assert(json_is_integer(json_object_get(json_object_get(k, "inputs"), "max")));
    cr_assert(json_is_array(json_object_get(k, "params")));
}

/* ExampleScale as the schema of the build's plugin directory shows it. */
static void assert_example_scale(const json_t *doc)
{
    json_t *k = find_by_name(doc, "ExampleScale");
    cr_assert_not_null(k, "ExampleScale missing");
    assert_kind_keys(k);
    cr_assert(json_is_null(json_object_get(k, "onnx")));
    cr_assert(json_is_false(json_object_get(k, "wrapper")));
    json_t *p = json_array_get(json_object_get(k, "params"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(p, "name")), "factor");
    cr_assert_str_eq(json_string_value(json_object_get(p, "type")), "float");
    cr_assert(json_is_real(json_object_get(p, "default")));
    cr_assert_float_eq(json_real_value(json_object_get(p, "default")), 1.0, 0);
    cr_assert(json_is_false(json_object_get(p, "nullable")));
    cr_assert(json_is_string(json_object_get(p, "doc")));
    cr_assert_null(json_object_get(p, "min"));
}

Test(schema, json_lists_kinds_with_full_schemas)
{
    static const nnp_param_def params[] = {
        {"momentum", NNP_PARAM_FLOAT, "0.99", NNP_PARAM_HAS_MIN | NNP_PARAM_HAS_MAX |
         NNP_PARAM_MAX_EXCLUSIVE, 0, 1, NULL, "moving average factor"},
        {"axis", NNP_PARAM_INT, "-1", NNP_PARAM_HAS_MIN, -8, 0, NULL, "axis"},
        {"padding", NNP_PARAM_STRING, "\"valid\"", 0, 0, 0, "valid|same", "padding \"mode\""},
        {"beta_regularizer", NNP_PARAM_REGULARIZER, "null", NNP_PARAM_NULLABLE, 0, 0, NULL, ""},
        {"gamma_initializer", NNP_PARAM_INITIALIZER,
         "{\"class_name\": \"Constant\", \"config\": {\"value\": 0.1}}", 0, 0, 0, NULL, "g"},
        {"strides", NNP_PARAM_INTS, "[1, 2]", NNP_PARAM_HAS_MIN, 1, 0, NULL, "s"},
    };
    nnp_kind rich = base_kind;
    rich.name = "RichKind";
    rich.params = params;
    rich.n_params = sizeof params / sizeof params[0];
    rich.onnx = (nnp_onnx_op){"", "BatchNormalization", 9, 15};

    nnp_registry *reg = new_registry();
    nnp_error err;
    cr_assert_eq(add_kind(reg, &rich, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_registry_load_dir(reg, env_dir("NNP_PLUGIN_DIR"), &err), NNP_OK);
    char *text = nnp_registry_schema_json(reg);
    cr_assert_not_null(text);
    /* Shortest round-trip reals, for people reading it. */
    cr_assert(strstr(text, "\"default\": 0.99,"), "%s", text);
    cr_assert(strstr(text, "\"value\": 0.1"), "%s", text);
    cr_assert(strstr(text, "\"choices\": [\"valid\", \"same\"]"), "%s", text);

    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    cr_assert_not_null(doc, "schema is not JSON: %s", jerr.text);
    cr_assert(json_is_array(doc));
    assert_example_scale(doc);

    json_t *k = find_by_name(doc, "RichKind");
    cr_assert_not_null(k);
    assert_kind_keys(k);
    cr_assert_str_eq(json_string_value(json_object_get(k, "plugin")), "linked-in test table");
    json_t *onnx = json_object_get(k, "onnx");
    cr_assert_str_eq(json_string_value(json_object_get(onnx, "op_type")), "BatchNormalization");
    cr_assert_str_eq(json_string_value(json_object_get(onnx, "domain")), "");
    cr_assert_eq(json_integer_value(json_object_get(onnx, "opset_min")), 9);
    cr_assert_eq(json_integer_value(json_object_get(onnx, "opset_max")), 15);

    json_t *ps = json_object_get(k, "params");
    json_t *m = find_by_name(ps, "momentum");
    cr_assert_float_eq(json_real_value(json_object_get(m, "default")), 0.99, 0);
    cr_assert_float_eq(json_number_value(json_object_get(m, "min")), 0, 0);
    cr_assert(json_is_false(json_object_get(m, "min_exclusive")));
    cr_assert_float_eq(json_number_value(json_object_get(m, "max")), 1, 0);
    cr_assert(json_is_true(json_object_get(m, "max_exclusive")));
    json_t *a = find_by_name(ps, "axis");
    cr_assert(json_is_integer(json_object_get(a, "default")));
    cr_assert(json_is_integer(json_object_get(a, "min")));
    cr_assert_eq(json_integer_value(json_object_get(a, "min")), -8);
    cr_assert_null(json_object_get(a, "max"));
    json_t *pad = find_by_name(ps, "padding");
    cr_assert_str_eq(json_string_value(json_object_get(pad, "default")), "valid");
    cr_assert_eq(json_array_size(json_object_get(pad, "choices")), 2);
    cr_assert_str_eq(json_string_value(json_object_get(pad, "doc")), "padding \"mode\"");
    json_t *br = find_by_name(ps, "beta_regularizer");
    cr_assert(json_is_null(json_object_get(br, "default")));
    cr_assert(json_is_true(json_object_get(br, "nullable")));
    cr_assert_str_eq(json_string_value(json_object_get(find_by_name(ps, "gamma_initializer"),
                                                       "type")), "initializer");
    json_t *st = find_by_name(ps, "strides");
    cr_assert_eq(json_array_size(json_object_get(st, "default")), 2);
    json_decref(doc);
    free(text);
    nnp_registry_free(reg);
}

Test(schema, empty_registry_is_an_empty_array)
{
    nnp_registry *reg = new_registry();
    char *text = nnp_registry_schema_json(reg);
    cr_assert_str_eq(text, "[]");
    free(text);
    nnp_registry_free(reg);
}

/* Runs the nnplug command with `args` (a shell fragment); returns its exit
 * status and its stdout (malloc'ed) in *out. */
static int run_nnplug(const char *args, char **out)
{
    char cmd[PATH_MAX + 256];
    snprintf(cmd, sizeof cmd, "'%s' %s", env_dir("NNP_BIN"), args);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f, "popen %s", cmd);
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    int status = pclose(f);
    *out = buf;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(cli, plugins_json_is_the_schema)
{
    /* NNP_PLUGIN_PATH unset: the build tree's own plugin directory. */
    unsetenv("NNP_PLUGIN_PATH");
    char *out;
    cr_assert_eq(run_nnplug("plugins --json", &out), 0, "%s", out);
    json_error_t jerr;
    json_t *doc = json_loads(out, 0, &jerr);
    cr_assert_not_null(doc, "not JSON (%s): %s", jerr.text, out);
    assert_example_scale(doc);
    size_t i;
    json_t *k;
    json_array_foreach(doc, i, k)
        assert_kind_keys(k);
    json_decref(doc);
    free(out);
}

Test(cli, plugins_table_and_warnings)
{
    char *out, args[PATH_MAX + 64];
    unsetenv("NNP_PLUGIN_PATH");
    cr_assert_eq(run_nnplug("plugins", &out), 0);
    assert_contains(out, "ExampleScale");
    assert_contains(out, "factor");
    assert_contains(out, "float");
    free(out);

    /* A plugin directory with bad plugins: warnings on stderr, still 0. */
    snprintf(args, sizeof args, "plugins 2>&1 >/dev/null");
    setenv("NNP_PLUGIN_PATH", env_dir("NNP_FIXTURES"), 1);
    cr_assert_eq(run_nnplug(args, &out), 0, "%s", out);
    assert_contains(out, "nnplug: warning: ");
    assert_contains(out, "bad_abi.so: plugin table built for plugin ABI major 2");
    free(out);
}

Test(cli, exit_codes_and_usage)
{
    char *out;
    cr_assert_eq(run_nnplug("--version", &out), 0);
    cr_assert(strncmp(out, "nnplug " NNP_VERSION_STRING, 7 + strlen(NNP_VERSION_STRING)) == 0,
              "%s", out);
    free(out);
    cr_assert_eq(run_nnplug("--help", &out), 0);
    assert_contains(out, "plugins");
    free(out);
    cr_assert_eq(run_nnplug("plugins --help", &out), 0);
    assert_contains(out, "usage: nnplug plugins");
    free(out);

    cr_assert_eq(run_nnplug("2>&1", &out), 2);
    assert_contains(out, "usage:");
    free(out);
    cr_assert_eq(run_nnplug("frobnicate 2>&1", &out), 2);
    cr_assert_str_eq(out, "nnplug: unknown command 'frobnicate' (see nnplug --help)\n");
    free(out);
    cr_assert_eq(run_nnplug("plugins --bogus 2>&1", &out), 2);
    cr_assert(strncmp(out, "nnplug: ", 8) == 0 && strchr(out, '\n') == out + strlen(out) - 1,
              "not one line prefixed nnplug: \"%s\"", out);
    free(out);
}
