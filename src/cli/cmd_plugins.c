/* nnplug plugins [--json]: the registered layer kinds and their schemas. */
#include "cli/cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char plugins_usage[] =
    "usage: nnplug plugins [--json]\n"
    "Lists every layer kind the plugins provide: its ONNX operator, the file\n"
    "it came from and its parameters (type, default, doc). --json prints the\n"
    "same as a JSON array of kinds with full parameter schemas.\n";

/* "[0, 1)", "> 0", "one of: a, b" for the doc column; "" when unconstrained. */
static void constraint_text(const nnp_param_def *p, char *buf, size_t size)
{
    char lo[32] = "", hi[32] = "";
    const char *fmt = p->type == NNP_PARAM_INT ? "%.0f" : "%g";
    buf[0] = '\0';
    if (p->flags & NNP_PARAM_HAS_MIN)
        snprintf(lo, sizeof lo, fmt, p->min);
    if (p->flags & NNP_PARAM_HAS_MAX)
        snprintf(hi, sizeof hi, fmt, p->max);
    if (lo[0] && hi[0])
        snprintf(buf, size, "%c%s, %s%c", p->flags & NNP_PARAM_MIN_EXCLUSIVE ? '(' : '[', lo, hi,
                 p->flags & NNP_PARAM_MAX_EXCLUSIVE ? ')' : ']');
    else if (lo[0])
        snprintf(buf, size, "%s %s", p->flags & NNP_PARAM_MIN_EXCLUSIVE ? ">" : ">=", lo);
    else if (hi[0])
        snprintf(buf, size, "%s %s", p->flags & NNP_PARAM_MAX_EXCLUSIVE ? "<" : "<=", hi);
    else if (p->choices) {
        snprintf(buf, size, "one of: %s", p->choices);
        for (char *c = strchr(buf, '|'); c; c = strchr(c, '|'))
            *c = '/';
    }
}

static void type_text(const nnp_param_def *p, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s", nnp_param_type_name(p->type),
             p->flags & NNP_PARAM_NULLABLE ? "|null" : "");
}

static int max_int(int a, int b)
{
    return a > b ? a : b;
}

static void print_kind(const nnp_kind *k, const char *origin)
{
    char onnx[200] = "no ONNX op";
    if (k->onnx.op_type)
        snprintf(onnx, sizeof onnx, "ONNX %s%s%s, opsets %d-%d", k->onnx.domain,
                 k->onnx.domain[0] ? "::" : "", k->onnx.op_type, k->onnx.opset_min,
                 k->onnx.opset_max);
    printf("%s  (%s)  %s\n", k->name, onnx, origin);
    if (k->doc[0])
        printf("    %s\n", k->doc);
    /* Column widths from this kind's parameters, so each card is aligned. */
    int wn = 5, wt = 4, wd = 7;
    char type[64];
    for (int i = 0; i < k->n_params; i++) {
        const nnp_param_def *p = &k->params[i];
        type_text(p, type, sizeof type);
        wn = max_int(wn, (int)strlen(p->name));
        wt = max_int(wt, (int)strlen(type));
        wd = max_int(wd, (int)strlen(p->default_json));
    }
    if (wd > 40)
        wd = 40;   /* long specs overflow their column instead of widening all */
    if (k->n_params > 0)
        printf("    %-*s  %-*s  %-*s  %s\n", wn, "PARAM", wt, "TYPE", wd, "DEFAULT", "DOC");
    for (int i = 0; i < k->n_params; i++) {
        const nnp_param_def *p = &k->params[i];
        const char *doc = p->doc ? p->doc : "";
        char extra[160];
        type_text(p, type, sizeof type);
        constraint_text(p, extra, sizeof extra);
        printf("    %-*s  %-*s  %-*s  %s%s%s%s\n", wn, p->name, wt, type, wd, p->default_json,
               doc, extra[0] && doc[0] ? " (" : extra[0] ? "(" : "", extra, extra[0] ? ")" : "");
    }
    printf("\n");
}

/* cli_load_registry, warning when no plugin provides a kind. */
static int open_registry(nnp_registry **reg)
{
    nnp_error err = {0};
    if (cli_load_registry(reg, &err) != NNP_OK)
        return cli_fail(&err);
    if (nnp_registry_n_kinds(*reg) == 0)
        cli_warn("no layer kinds found (set NNP_PLUGIN_PATH to a plugin directory)");
    return CLI_EXIT_OK;
}

int cli_plugins_schema(struct json_t **out)
{
    nnp_registry *reg;
    int rc = open_registry(&reg);
    if (rc != CLI_EXIT_OK)
        return rc;
    char *s = nnp_registry_schema_json(reg);
    nnp_registry_free(reg);
    json_t *doc = s ? json_loads(s, 0, NULL) : NULL;
    free(s);
    if (!json_is_array(doc)) {
        json_decref(doc);
        cli_error("out of memory building the plugin schema");
        return CLI_EXIT_FAIL;
    }
    *out = doc;
    return CLI_EXIT_OK;
}

int cmd_plugins(int argc, char **argv)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(plugins_usage, stdout);
            return CLI_EXIT_OK;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else {
            cli_error("plugins: unknown argument '%s' (usage: nnplug plugins [--json])", argv[i]);
            return CLI_EXIT_USAGE;
        }
    }

    nnp_registry *reg;
    int rc = open_registry(&reg);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (json) {
        char *s = nnp_registry_schema_json(reg);
        if (s) {
            printf("%s\n", s);
            free(s);
        } else {
            cli_error("out of memory writing the plugin schema");
            rc = CLI_EXIT_FAIL;
        }
    } else {
        for (int i = 0; i < nnp_registry_n_kinds(reg); i++)
            print_kind(nnp_registry_kind_at(reg, i), nnp_registry_kind_origin(reg, i));
    }
    nnp_registry_free(reg);
    if (rc == CLI_EXIT_OK && fflush(stdout) != 0) {
        cli_error("cannot write to standard output");
        rc = CLI_EXIT_FAIL;
    }
    return rc;
}
