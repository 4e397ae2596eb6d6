/* nnplug_host_example [PLUGIN_DIR]: loads the plugins of PLUGIN_DIR (or of
 * NNP_PLUGIN_PATH and the installed plugin directory) and prints each layer
 * kind with its parameter names, one kind per line:
 *
 *     ExampleScale: factor
 */
#include <nnplug/nnplug.h>

#include <stdio.h>

int main(int argc, char **argv)
{
    nnp_registry *reg;
    nnp_error err;
    if (argc > 2) {
        fprintf(stderr, "usage: %s [PLUGIN_DIR]\n", argv[0]);
        return 2;
    }
    if (nnp_registry_new(&reg, &err) != NNP_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    nnp_status st = argc == 2 ? nnp_registry_load_dir(reg, argv[1], &err)
                              : nnp_registry_load_default(reg, &err);
    if (st != NNP_OK) {
        fprintf(stderr, "%s\n", err.msg);
        nnp_registry_free(reg);
        return 1;
    }
    /* A plugin that fails does not stop the others; say which and why. */
    for (int i = 0; i < nnp_registry_n_failures(reg); i++)
        fprintf(stderr, "skipped: %s\n", nnp_registry_failure(reg, i));

    int n = nnp_registry_n_kinds(reg);
    for (int i = 0; i < n; i++) {
        const nnp_kind *k = nnp_registry_kind_at(reg, i);
        printf("%s:", k->name);
        for (int j = 0; j < k->n_params; j++)
            printf(" %s", k->params[j].name);
        printf("\n");
    }
    nnp_registry_free(reg);
    if (n == 0) {
        fprintf(stderr, "no layer kinds found\n");
        return 1;
    }
    return 0;
}
