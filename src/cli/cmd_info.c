/* nnplug info MODEL: inputs, outputs, ONNX nodes -> serving plugin, layers
 * and their weight counts. */
#include "cli/cli.h"
#include "nnplug/onnx.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char info_usage[] =
    "usage: nnplug info MODEL [--memory [--batch N]]\n"
    "Describes MODEL (.onnx, Keras .keras, .h5 or .json): its inputs and outputs\n"
    "with shapes (N: any batch size), every node and the plugin serving it, and\n"
    "every layer's weights with their parameter counts. ONNX graph inputs that\n"
    "nodes read as constant parameters are listed apart (nnplug run takes their\n"
    "values with -i).\n"
    "  --memory   the memory plan at a batch size (default: the batch the model\n"
    "             fixes, else 32): weights, values, gradients and the layers'\n"
    "             workspace, and the peak of an inference forward and of a\n"
    "             training step (the values of a forward share one arena by\n"
    "             liveness: in training a value lives on while a backward\n"
    "             reads it)\n"
    "  --batch N  the batch size of --memory (1 to 2^31)\n";

/* Bytes as "123.4 MB" (powers of 1000) with the exact count beside. */
static void print_bytes(const char *what, size_t b)
{
    static const char *const unit[] = {"B", "kB", "MB", "GB", "TB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1000.0 && u < 4) {
        v /= 1000.0;
        u++;
    }
    printf("  %-44s %9.*f %-2s  (%zu bytes)\n", what, u ? 1 : 0, v, unit[u], b);
}

/* "memory at batch N": the plan's parts and the two peaks. */
static int print_memory(nnp_model *m, int64_t batch)
{
    nnp_memory_plan p;
    nnp_error err = {0};
    if (nnp_model_memory_plan(m, batch, &p, &err) != NNP_OK)
        return cli_fail(&err);
    const size_t infer = p.weights + p.weight_outputs + p.workspace + p.values_arena;
    const size_t train = p.weights + p.weight_outputs + p.workspace + p.values_training +
                         p.value_grads + p.trainable;
    printf("memory at batch %lld (float32; the inputs, %zu bytes, are the caller's):\n",
           (long long)p.batch, p.inputs);
    print_bytes("weights", p.weights);
    if (p.weight_outputs)
        print_bytes("weights read as outputs (copies)", p.weight_outputs);
    print_bytes("layers' shared workspace", p.workspace);
    print_bytes("values, inference (one arena, by liveness)", p.values_arena);
    print_bytes("values, training (one arena, by liveness)", p.values_training);
    print_bytes("values, a buffer each (for comparison)", p.values);
    if (p.largest_value_id >= 0) {
        char what[160];
        snprintf(what, sizeof what, "  the largest: %s", nnp_model_value_name(m, p.largest_value_id));
        print_bytes(what, p.largest_value);
    }
    print_bytes("value gradients (one arena, by liveness)", p.value_grads);
    print_bytes("weight gradients", p.trainable);
    print_bytes("inference forward, in all", infer);
    print_bytes("training step, in all (SGD)", train);
    print_bytes("  + SGD momentum (a copy of the trainable)", train + p.trainable);
    print_bytes("  + Adam (two copies)", train + 2 * p.trainable);
    printf("(kinds' own buffers beyond the workspace, such as reordered kernels and saved\n"
           "batch statistics, are not counted)\n");
    return CLI_EXIT_OK;
}

static const char *origin_of(const nnp_registry *reg, const nnp_kind *k)
{
    for (int i = 0; i < nnp_registry_n_kinds(reg); i++)
        if (nnp_registry_kind_at(reg, i) == k)
            return nnp_registry_kind_origin(reg, i);
    return "?";
}

static const char *shape_text(const nnp_shape *s, char *buf, size_t size)
{
    size_t at = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < s->rank && at < size; i++) {
        if (s->dims[i] < 0)
            at += (size_t)snprintf(buf + at, size - at, "%sN", i ? "," : "");
        else
            at += (size_t)snprintf(buf + at, size - at, "%s%lld", i ? "," : "",
                                   (long long)s->dims[i]);
    }
    if (at < size)
        snprintf(buf + at, size - at, "]");
    return buf;
}

static void print_values(const nnp_model *m, int n, int (*value_at)(const nnp_model *, int))
{
    char sh[160];
    for (int i = 0; i < n; i++) {
        int v = value_at(m, i);
        const char *weight;
        int wl = nnp_model_weight_output_layer(m, v, &weight);
        printf("  %-32s float32 %s", nnp_model_value_name(m, v),
               shape_text(nnp_model_value_shape(m, v), sh, sizeof sh));
        if (wl >= 0)
            printf("  (weight %s of layer %s after the run)", weight,
                   nnp_layer_name(nnp_model_layer(m, wl)));
        printf("\n");
    }
}

/* "format: ..." and the import's facts (IR version, opsets, producer). */
static void print_format(const json_t *onnx, const char *path)
{
    if (!onnx) {
        printf("format: %s\n", cli_has_ext(path, ".keras") ? "Keras .keras archive"
                                : cli_has_ext(path, ".h5") || cli_has_ext(path, ".hdf5")
                                    ? "Keras HDF5 model"
                                    : "Keras-style JSON");
        return;
    }
    printf("format: ONNX, IR version %lld, opsets",
           (long long)json_integer_value(json_object_get(onnx, "ir_version")));
    const char *d;
    json_t *v;
    json_object_foreach(json_object_get(onnx, "opset_import"), d, v)
        printf(" %s %lld", d, (long long)json_integer_value(v));
    const char *prod = json_string_value(json_object_get(onnx, "producer"));
    const char *pv = json_string_value(json_object_get(onnx, "producer_version"));
    if (prod && prod[0])
        printf(", producer %s %s", prod, pv ? pv : "");
    printf("\n");
}

/* One ONNX node of the import report: its op, the layer and plugin serving
 * it, and how many nodes were folded into it. */
static void print_onnx_node(const nnp_registry *reg, const nnp_model *m, const json_t *n)
{
    const char *kind = json_string_value(json_object_get(n, "kind"));
    const char *layer = json_string_value(json_object_get(n, "layer"));
    int li = layer ? nnp_model_find_layer(m, layer) : -1;
    const nnp_kind *k = li >= 0 ? nnp_layer_kind_of(nnp_model_layer(m, li)) : NULL;
    char op[200];
    snprintf(op, sizeof op, "%s%s%s-%lld",
             strcmp(json_string_value(json_object_get(n, "domain")), "ai.onnx")
                 ? json_string_value(json_object_get(n, "domain"))
                 : "",
             strcmp(json_string_value(json_object_get(n, "domain")), "ai.onnx") ? "::" : "",
             json_string_value(json_object_get(n, "op_type")),
             (long long)json_integer_value(json_object_get(n, "opset")));
    char folded[200] = "";
    const char *how = json_string_value(json_object_get(n, "folded"));
    if (how)
        snprintf(folded, sizeof folded, "  (%lld nodes: %s)",
                 (long long)json_integer_value(json_object_get(n, "n_nodes")), how);
    printf("  %-28s %-24s -> layer %-20s %s  plugin %s%s%s\n",
           json_string_value(json_object_get(n, "node")), op, layer ? layer : "?",
           kind ? kind : "?", k ? origin_of(reg, k) : "?", folded,
           json_is_true(json_object_get(n, "training_mode")) ? "  training_mode=1" : "");
}

/* "nodes:": the ONNX nodes as imported, or the model's own for Keras JSON. */
static void print_nodes(const nnp_registry *reg, const nnp_model *m, const json_t *onnx)
{
    printf("nodes:\n");
    const json_t *nodes = json_object_get(onnx, "nodes");
    if (onnx) {
        for (size_t i = 0; i < json_array_size(nodes); i++)
            print_onnx_node(reg, m, json_array_get(nodes, i));
        return;
    }
    for (int i = 0; i < nnp_model_n_nodes(m); i++) {
        const nnp_layer *l = nnp_model_layer(m, nnp_model_node_layer(m, i));
        const nnp_kind *k = nnp_layer_kind_of(l);
        printf("  %-28s %-24s -> %s  plugin %s\n",
               nnp_model_value_name(m, nnp_model_node_output(m, i)), k->name,
               nnp_layer_name(l), origin_of(reg, k));
    }
}

/* "layers:" with every weight, and the parameter totals. */
static void print_layers(const nnp_model *m)
{
    printf("layers:\n");
    int64_t total = 0, trainable = 0;
    for (int i = 0; i < nnp_model_n_layers(m); i++) {
        const nnp_layer *l = nnp_model_layer(m, i);
        int64_t count = nnp_model_layer_param_count(m, i);
        total += count;
        printf("  %-28s %-20s %lld params%s\n", nnp_layer_name(l), nnp_layer_kind_of(l)->name,
               (long long)count, nnp_layer_trainable(l) ? "" : " (trainable: false)");
        for (int w = 0; w < nnp_layer_n_weights(l); w++) {
            const nnp_weight *wt = nnp_layer_weight(l, w);
            char sh[160];
            int64_t n = nnp_tensor_numel(wt->value);
            if (wt->flags & NNP_WEIGHT_TRAINABLE)
                trainable += n;
            printf("      %-24s %-16s %lld%s\n", wt->name,
                   shape_text(&wt->value->shape, sh, sizeof sh), (long long)n,
                   wt->flags & NNP_WEIGHT_TRAINABLE ? "" : "  non-trainable");
        }
    }
    printf("total: %lld params (%lld trainable)\n", (long long)total, (long long)trainable);
}

/* --batch's value: an integer from 1 to 2^31. */
static int parse_batch(const char *val, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(val, &end, 10);
    if (!*val || *end || errno || v < 1 || v > (1LL << 31)) {
        cli_error("info: --batch expects an integer from 1 to 2147483648, got '%s'", val);
        return 1;
    }
    *out = v;
    return 0;
}

int cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    int memory = 0;
    int64_t batch = -1;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(info_usage, stdout);
            return CLI_EXIT_OK;
        }
        if (strcmp(argv[i], "--memory") == 0) {
            memory = 1;
            continue;
        }
        if (strcmp(argv[i], "--batch") == 0 || strncmp(argv[i], "--batch=", 8) == 0) {
            const char *val = argv[i][7] == '=' ? argv[i] + 8 : i + 1 < argc ? argv[++i] : NULL;
            if (!val) {
                cli_error("info: --batch needs a value (see nnplug info --help)");
                return CLI_EXIT_USAGE;
            }
            if (parse_batch(val, &batch))
                return CLI_EXIT_USAGE;
            continue;
        }
        if (argv[i][0] == '-' || path) {
            cli_error("info: unexpected argument '%s' (see nnplug info --help)", argv[i]);
            return CLI_EXIT_USAGE;
        }
        path = argv[i];
    }
    if (!path) {
        cli_error("info: no MODEL given (see nnplug info --help)");
        return CLI_EXIT_USAGE;
    }
    if (batch > 0 && !memory) {
        cli_error("info: --batch goes with --memory (see nnplug info --help)");
        return CLI_EXIT_USAGE;
    }
    nnp_error err = {0};
    nnp_registry *reg = NULL;
    nnp_model *m = NULL;
    if (cli_load_registry(&reg, &err) || cli_load_model_fed(reg, path, NULL, 1, &m, &err)) {
        int rc = cli_fail(&err);
        nnp_registry_free(reg);
        return rc;
    }
    const char *meta = nnp_model_get_meta(m, NNP_ONNX_META_IMPORT);
    json_t *onnx = meta ? json_loads(meta, 0, NULL) : NULL;
    printf("model: %s\n", path);
    print_format(onnx, path);
    printf("inputs:\n");
    print_values(m, nnp_model_n_inputs(m), nnp_model_input_value);
    const json_t *params = json_object_get(onnx, "parameter_inputs");
    if (json_array_size(params)) {
        printf("parameter inputs (constants; nnplug run -i NAME=FILE.npy):\n");
        for (size_t i = 0; i < json_array_size(params); i++)
            printf("  %s\n", json_string_value(json_array_get(params, i)));
    }
    printf("outputs:\n");
    print_values(m, nnp_model_n_outputs(m), nnp_model_output_value);
    print_nodes(reg, m, onnx);
    print_layers(m);
    int rc = CLI_EXIT_OK;
    if (memory)
        rc = print_memory(m, batch > 0 ? batch : 32);
    json_decref(onnx);
    nnp_model_free(m);
    nnp_registry_free(reg);
    return rc;
}
