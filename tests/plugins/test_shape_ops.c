/* Flatten, Reshape, Dropout and Add through the plugin ABI. */
#include "test_activation_kit.h"

TestSuite(shape_ops, .init = kit_setup, .fini = kit_teardown);

Test(shape_ops, flatten_channels_last_and_first)
{
    kit_seed(41);
    for (int cf = 0; cf < 2; cf++) {
        nnp_layer *l = kit_layer("Flatten", cf ? "{\"data_format\": \"channels_first\"}" : "{}");
        nnp_shape xs = KS(2, 3, 4, 5);
        nnp_shape os = kit_build(l, 1, &xs);
        cr_assert(os.rank == 2 && os.dims[0] == 2 && os.dims[1] == 60);
        nnp_tensor x = kit_tensor(&xs), y = kit_tensor(&os);
        kit_fill(&x, -1, 1);
        nnp_tensor *ins[1] = {&x};
        kit_forward(l, ins, 1, &y, NNP_MODE_INFER);
        const float *xv = x.data, *yv = y.data;
        for (int n = 0; n < 2; n++)
            for (int c = 0; c < 3; c++)
                for (int h = 0; h < 4; h++)
                    for (int w = 0; w < 5; w++) {
                        /* channels_first: [N, C, H, W] flattened as [N, H, W, C] */
                        int src = ((n * 3 + c) * 4 + h) * 5 + w;
                        int dst = cf ? n * 60 + (h * 5 + w) * 3 + c : src;
                        cr_assert_eq(yv[dst], xv[src]);
                    }
        kit_gc g = kit_gc_default();
        kit_gradcheck(&g, l, ins, 1, &os);
        nnp_tensor_free(&x);
        nnp_tensor_free(&y);
        nnp_layer_free(l);
    }
    nnp_layer *l = kit_layer("Flatten", "{}");
    nnp_shape xs = KS(-1, 3, -1), r1 = KS(7);
    nnp_shape os = kit_build(l, 1, &xs);
    cr_assert(os.rank == 2 && os.dims[0] == -1 && os.dims[1] == -1);
    os = kit_build(l, 1, &r1);
    cr_assert(os.rank == 2 && os.dims[0] == 7 && os.dims[1] == 1);
    nnp_layer_free(l);
}

Test(shape_ops, reshape_resolves_minus_one)
{
    kit_seed(42);
    nnp_layer *l = kit_layer("Reshape", "{\"target_shape\": [3, -1]}");
    nnp_shape xs = KS(2, 4, 6);
    nnp_shape os = kit_build(l, 1, &xs);
    cr_assert(os.rank == 3 && os.dims[0] == 2 && os.dims[1] == 3 && os.dims[2] == 8);
    nnp_tensor x = kit_tensor(&xs), y = kit_tensor(&os);
    kit_fill(&x, -1, 1);
    nnp_tensor *ins[1] = {&x};
    kit_forward(l, ins, 1, &y, NNP_MODE_INFER);
    cr_assert(!memcmp(x.data, y.data, x.nbytes));
    kit_gc g = kit_gc_default();
    kit_gradcheck(&g, l, ins, 1, &os);
    nnp_shape unk = KS(-1, 4, 6);
    os = kit_build(l, 1, &unk);
    cr_assert(os.dims[0] == -1 && os.dims[2] == 8);
    nnp_tensor_free(&x);
    nnp_tensor_free(&y);
    nnp_layer_free(l);
}

Test(shape_ops, reshape_errors)
{
    nnp_error err;
    nnp_shape xs = KS(2, 4, 6);
    cr_assert_eq(kit_layer_fails("Reshape", "{\"target_shape\": [5, 5]}", 1, &xs, &err),
                 NNP_ERR_SHAPE);
    cr_assert(strstr(err.msg, "24 values"), "%s", err.msg);
    cr_assert_eq(kit_layer_fails("Reshape", "{\"target_shape\": [5, -1]}", 1, &xs, &err),
                 NNP_ERR_SHAPE);
    cr_assert_neq(kit_layer_fails("Reshape", "{\"target_shape\": [-1, -1]}", 1, &xs, &err),
                  NNP_OK);
    cr_assert(strstr(err.msg, "one -1"), "%s", err.msg);
    cr_assert_neq(kit_layer_fails("Reshape", "{}", 1, &xs, &err), NNP_OK);
    cr_assert(strstr(err.msg, "target_shape"), "%s", err.msg);
}

/* Runs a training forward and backward of a Dropout layer. */
static void dropout_run(nnp_layer *l, nnp_tensor *x, nnp_tensor *y, nnp_tensor *gy,
                        nnp_tensor *gx)
{
    nnp_tensor *ins[1] = {x};
    nnp_tensor *gxs[1] = {gx};
    kit_forward(l, ins, 1, y, NNP_MODE_TRAIN);
    kit_backward(l, ins, 1, y, gy, gxs, NNP_MODE_TRAIN);
}

Test(shape_ops, dropout_training_inference_and_backward)
{
    kit_seed(43);
    nnp_layer *l = kit_layer("Dropout", "{\"rate\": 0.3, \"seed\": 5}");
    nnp_shape xs = KS(100, 1000);
    kit_build(l, 1, &xs);
    nnp_tensor x = kit_tensor(&xs), y = kit_tensor(&xs), gy = kit_tensor(&xs),
               gx = kit_tensor(&xs);
    kit_fill(&x, 0.5, 1.5);
    kit_fill(&gy, -1, 1);
    nnp_tensor *ins[1] = {&x};
    kit_forward(l, ins, 1, &y, NNP_MODE_INFER);
    cr_assert(!memcmp(x.data, y.data, x.nbytes), "inference must be the identity");

    dropout_run(l, &x, &y, &gy, &gx);
    const float *xv = x.data, *yv = y.data, *gyv = gy.data, *gxv = gx.data;
    const float scale = (float)(1.0 / 0.7);
    int64_t kept = 0, n = kit_numel(&xs);
    for (int64_t i = 0; i < n; i++) {
        if (yv[i] != 0.0f) {
            kept++;
            cr_assert_float_eq(yv[i], xv[i] * scale, 1e-6);
            cr_assert_float_eq(gxv[i], gyv[i] * scale, 1e-6);
        } else {
            cr_assert_eq(gxv[i], 0.0f);
        }
    }
    /* binomial(1e5, 0.7): standard deviation 145 */
    cr_assert(fabs((double)kept - 70000.0) < 1000.0, "kept %lld of 100000", (long long)kept);

    /* the next step draws another mask */
    float *first = malloc(y.nbytes);
    memcpy(first, y.data, y.nbytes);
    dropout_run(l, &x, &y, &gy, &gx);
    cr_assert(memcmp(first, y.data, y.nbytes) != 0);
    free(first);
    nnp_tensor_free(&x);
    nnp_tensor_free(&y);
    nnp_tensor_free(&gy);
    nnp_tensor_free(&gx);
    nnp_layer_free(l);
}

Test(shape_ops, dropout_mask_independent_of_thread_count)
{
    kit_seed(44);
    nnp_shape xs = KS(64, 4096);
    nnp_tensor x = kit_tensor(&xs), y = kit_tensor(&xs), gy = kit_tensor(&xs),
               gx = kit_tensor(&xs);
    kit_fill(&x, 0.5, 1.5);
    kit_fill(&gy, -1, 1);
    void *ref_y = malloc(y.nbytes), *ref_gx = malloc(gx.nbytes);
    const int saved = nnp_get_num_threads();
    const int counts[3] = {1, 2, 3};
    for (int c = 0; c < 3; c++) {
        nnp_set_num_threads(counts[c]);
        /* a fresh layer each time: same seed, same step */
        nnp_layer *l = kit_layer("Dropout", "{\"rate\": 0.5, \"seed\": 11}");
        kit_build(l, 1, &xs);
        dropout_run(l, &x, &y, &gy, &gx);
        if (c == 0) {
            memcpy(ref_y, y.data, y.nbytes);
            memcpy(ref_gx, gx.data, gx.nbytes);
        } else {
            cr_assert(!memcmp(ref_y, y.data, y.nbytes), "mask differs with %d threads",
                      counts[c]);
            cr_assert(!memcmp(ref_gx, gx.data, gx.nbytes));
        }
        nnp_layer_free(l);
    }
    nnp_set_num_threads(saved);
    /* another seed, another mask */
    nnp_layer *l = kit_layer("Dropout", "{\"rate\": 0.5, \"seed\": 12}");
    kit_build(l, 1, &xs);
    dropout_run(l, &x, &y, &gy, &gx);
    cr_assert(memcmp(ref_y, y.data, y.nbytes) != 0);
    nnp_layer_free(l);
    free(ref_y);
    free(ref_gx);
    nnp_tensor_free(&x);
    nnp_tensor_free(&y);
    nnp_tensor_free(&gy);
    nnp_tensor_free(&gx);
}

Test(shape_ops, dropout_noise_shape_broadcasts)
{
    kit_seed(45);
    nnp_layer *l = kit_layer("Dropout", "{\"rate\": 0.5, \"noise_shape\": [null, 1, 16]}");
    nnp_shape xs = KS(4, 6, 16);
    kit_build(l, 1, &xs);
    nnp_tensor x = kit_tensor(&xs), y = kit_tensor(&xs), gy = kit_tensor(&xs),
               gx = kit_tensor(&xs);
    kit_fill(&x, 0.5, 1.5);
    kit_fill(&gy, -1, 1);
    dropout_run(l, &x, &y, &gy, &gx);
    const float *yv = y.data;
    int dropped = 0;
    for (int n = 0; n < 4; n++)
        for (int c = 0; c < 16; c++) {
            const int zero = yv[(n * 6) * 16 + c] == 0.0f;
            dropped += zero;
            for (int t = 1; t < 6; t++)
                cr_assert_eq(yv[(n * 6 + t) * 16 + c] == 0.0f, zero,
                             "mask must be shared along axis 1");
        }
    cr_assert(dropped > 0 && dropped < 64);
    nnp_tensor_free(&x);
    nnp_tensor_free(&y);
    nnp_tensor_free(&gy);
    nnp_tensor_free(&gx);
    nnp_layer_free(l);
    nnp_error err;
    cr_assert_eq(kit_layer_fails("Dropout", "{\"noise_shape\": [4, 3, 16]}", 1, &xs, &err),
                 NNP_ERR_SHAPE);
    cr_assert(strstr(err.msg, "noise_shape"), "%s", err.msg);
    cr_assert_neq(kit_layer_fails("Dropout", "{\"rate\": 1.0}", 1, &xs, &err), NNP_OK);
    cr_assert(strstr(err.msg, "rate"), "%s", err.msg);
}

Test(shape_ops, add_sums_inputs_in_order)
{
    kit_seed(46);
    nnp_layer *l = kit_layer("Add", "{}");
    nnp_shape xs = KS(3, 7);
    nnp_shape in3[3] = {xs, xs, xs};
    nnp_shape os = kit_build(l, 3, in3);
    cr_assert(kit_same_shape(&os, &xs));
    nnp_tensor a = kit_tensor(&xs), b = kit_tensor(&xs), c = kit_tensor(&xs), y = kit_tensor(&os);
    kit_fill(&a, -1, 1);
    kit_fill(&b, -1, 1);
    kit_fill(&c, -1, 1);
    nnp_tensor *ins[3] = {&a, &b, &c};
    kit_forward(l, ins, 3, &y, NNP_MODE_INFER);
    for (int i = 0; i < 21; i++)
        cr_assert_eq(((float *)y.data)[i],
                     (((float *)a.data)[i] + ((float *)b.data)[i]) + ((float *)c.data)[i]);
    kit_gc g = kit_gc_default();
    kit_gradcheck(&g, l, ins, 3, &os);
    nnp_tensor_free(&a);
    nnp_tensor_free(&b);
    nnp_tensor_free(&c);
    nnp_tensor_free(&y);
    nnp_layer_free(l);

    nnp_error err;
    nnp_shape bad[2] = {KS(3, 7), KS(3, 1)};
    cr_assert_eq(kit_layer_fails("Add", "{}", 2, bad, &err), NNP_ERR_SHAPE);
    cr_assert(strstr(err.msg, "equal shapes"), "%s", err.msg);
    cr_assert_neq(kit_layer_fails("Add", "{}", 1, bad, &err), NNP_OK);
}
