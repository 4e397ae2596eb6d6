/* A host application with its own MPI setup that trains a model with
 * nnplug, data-parallel over its processes:
 *
 *   mpirun -np K nnplug_mpi_host_example PLUGIN_DIR
 *
 * It initializes MPI itself, hands nnplug its communicator (a duplicate is
 * what nnplug talks on, so the application's own messages never mix with
 * it), builds a model from Keras JSON (Dense, synchronized
 * BatchNormalization, Dense), trains it on data every process generates the
 * same way, and prints from process 0 the final loss and a fingerprint of
 * the weights: the same for any K. */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "nnplug/nnplug.h"

static const char model_json[] =
    "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"mpi_host\", \"layers\": ["
    "{\"class_name\": \"InputLayer\", \"config\": {\"name\": \"in\", \"batch_input_shape\": [null, 4]}},"
    "{\"class_name\": \"Dense\", \"config\": {\"name\": \"d1\", \"units\": 8}},"
    "{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"bn\", \"synchronized\": true}},"
    "{\"class_name\": \"ReLU\", \"config\": {\"name\": \"r\"}},"
    "{\"class_name\": \"Dense\", \"config\": {\"name\": \"d2\", \"units\": 2}}]}}";

static int fail(const char *what, const nnp_error *err)
{
    fprintf(stderr, "mpi_host: %s: %s\n", what, err->msg);
    return 1;
}

/* 96 samples of 4 features; the label says whether their sum is positive. */
static void make_data(nnp_tensor *x, nnp_tensor *y, float *xs, float *ys)
{
    uint64_t s = 12345;
    for (int i = 0; i < 96; i++) {
        float sum = 0;
        for (int j = 0; j < 4; j++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            xs[i * 4 + j] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
            sum += xs[i * 4 + j];
        }
        ys[i] = sum > 0;
    }
    nnp_shape xsh = {2, {96, 4}}, ysh = {1, {96}};
    nnp_tensor_wrap(x, NNP_F32, &xsh, xs, NULL);
    nnp_tensor_wrap(y, NNP_F32, &ysh, ys, NULL);
}

static int train(const char *plugin_dir, const nnp_group *g)
{
    nnp_error err = {0};
    nnp_registry *reg = NULL;
    nnp_model *m = NULL;
    nnp_optimizer *opt = NULL;
    int rc = 1;
    if (nnp_registry_new(&reg, &err) || nnp_registry_load_dir(reg, plugin_dir, &err))
        return fail(plugin_dir, &err);
    if (nnp_keras_load_string(reg, model_json, "mpi_host model", &m, &err)) {
        fail("model", &err);
        goto done;
    }
    static float xs[96 * 4], ys[96];
    nnp_tensor x, y;
    make_data(&x, &y, xs, ys);
    nnp_optimizer_config oc = nnp_optimizer_defaults(NNP_OPT_ADAM);
    oc.learning_rate = 0.01;
    nnp_loss loss;
    nnp_train_options to = nnp_train_defaults();
    to.epochs = 5;
    to.batch_size = 24;
    to.seed = 7;
    to.group = g;   /* the processes train together */
    nnp_history h;
    if (nnp_loss_parse("sparse_categorical_crossentropy", 1, &loss, &err) ||
        nnp_optimizer_new(&oc, m, &opt, &err) ||
        nnp_model_fit(m, &x, &y, &loss, opt, &to, NULL, &h, &err)) {
        fail("training", &err);
        goto done;
    }
    /* every process holds the same weights: a fingerprint of them */
    uint64_t fp = 1469598103934665603ULL;
    for (int li = 0; li < nnp_model_n_layers(m); li++)
        for (int wi = 0; wi < nnp_layer_n_weights(nnp_model_layer(m, li)); wi++) {
            const nnp_tensor *t = nnp_layer_weight(nnp_model_layer(m, li), wi)->value;
            for (size_t i = 0; i < t->nbytes; i++)
                fp = (fp ^ ((const unsigned char *)t->data)[i]) * 1099511628211ULL;
        }
    if (nnp_group_rank(g) == 0)
        printf("mpi_host: %d processes, final loss %.9g, weights %016llx\n", nnp_group_size(g),
               h.loss[h.epochs - 1], (unsigned long long)fp);
    nnp_history_free(&h);
    rc = 0;
done:
    nnp_optimizer_free(opt);
    nnp_model_free(m);
    nnp_registry_free(reg);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: mpirun -np K %s PLUGIN_DIR\n", argv[0]);
        return 2;
    }
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm comm = MPI_COMM_WORLD;   /* the application's own communicator */
    nnp_group *g = NULL;
    nnp_error err = {0};
    int rc = nnp_group_from_mpi_comm(&comm, &g, &err) ? fail("group", &err)
                                                        : train(argv[1], g);
    nnp_group_free(g);
    MPI_Finalize();
    return rc;
}
