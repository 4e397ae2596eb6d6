/* Built with `pkg-config --cflags --libs nnplug` against the installed
 * library: loads the out-of-tree plugin (argv[1]) and checks y = 2x. */
#include <nnplug/nnplug.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    nnp_registry *reg;
    nnp_layer *layer;
    nnp_error err;
    float x[6] = {1, -2, 3, 0.5f, 0, 7}, y[6];
    nnp_shape s = {.rank = 2, .dims = {2, 3}}, out_shape;
    nnp_tensor tx, ty;
    if (argc != 2 || nnp_registry_new(&reg, &err) || nnp_registry_load(reg, argv[1], &err) ||
        nnp_layer_new(reg, "OutOfTreeDouble", NULL, &layer, &err) ||
        nnp_layer_build(layer, 1, &s, &out_shape, &err) ||
        nnp_tensor_wrap(&tx, NNP_F32, &s, x, &err) ||
        nnp_tensor_wrap(&ty, NNP_F32, &out_shape, y, &err)) {
        fprintf(stderr, "use_plugin: %s\n", argc == 2 ? err.msg : "usage: use_plugin PLUGIN");
        return 1;
    }
    const nnp_tensor *in[1] = {&tx};
    if (nnp_layer_forward(layer, in, 1, &ty, NNP_MODE_INFER, &err)) {
        fprintf(stderr, "use_plugin: %s\n", err.msg);
        return 1;
    }
    for (int i = 0; i < 6; i++)
        if (y[i] != 2 * x[i]) {
            fprintf(stderr, "use_plugin: y[%d] = %g, expected %g\n", i, y[i], 2 * x[i]);
            return 1;
        }
    nnp_layer_free(layer);
    nnp_registry_free(reg);
    printf("use_plugin: OutOfTreeDouble ok\n");
    return 0;
}
