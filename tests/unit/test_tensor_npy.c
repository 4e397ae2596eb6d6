/* Tensors (alignment, overflow) and .npy files (against numpy-written files). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nnplug/nnplug.h"
#include "testutil.h"

Test(tensor, alloc_aligned_zeroed)
{
    nnp_tensor t;
    nnp_shape s;
    nnp_error err = {0};
    int64_t dims[] = {3, 5, 7};
    cr_assert_eq(nnp_shape_make(&s, 3, dims, &err), NNP_OK);
    cr_assert_eq(nnp_tensor_alloc(&t, NNP_F32, &s, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq((uintptr_t)t.data % NNP_ALIGN, 0);
    cr_assert_eq(t.nbytes, 3 * 5 * 7 * 4);
    for (int i = 0; i < 105; i++)
        cr_assert_eq(((float *)t.data)[i], 0.0f);
    nnp_tensor_free(&t);
    cr_assert_null(t.data);
}

Test(tensor, overflow_and_bad_shapes)
{
    nnp_shape s;
    nnp_tensor t;
    nnp_error err = {0};
    int64_t huge[] = {INT64_MAX / 2, 4};
    cr_assert_eq(nnp_shape_make(&s, 2, huge, &err), NNP_OK);
    cr_assert_eq(nnp_tensor_alloc(&t, NNP_F32, &s, &err), NNP_ERR_OVERFLOW, "%s", err.msg);
    int64_t big[] = {1LL << 40, 1LL << 22};
    cr_assert_eq(nnp_shape_make(&s, 2, big, &err), NNP_OK);
    cr_assert_eq(nnp_tensor_alloc(&t, NNP_F64, &s, &err), NNP_ERR_OVERFLOW, "%s", err.msg);
    int64_t neg[] = {2, -1};
    cr_assert_eq(nnp_shape_make(&s, 2, neg, &err), NNP_ERR_SHAPE);
    int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    cr_assert_eq(nnp_shape_make(&s, 9, nine, &err), NNP_ERR_SHAPE);
    cr_assert(strstr(err.msg, "rank"));
    int64_t zero[] = {4, 0};
    cr_assert_eq(nnp_shape_make(&s, 2, zero, &err), NNP_OK);
    cr_assert_eq(nnp_tensor_alloc(&t, NNP_F32, &s, &err), NNP_OK);
    cr_assert_eq(t.nbytes, 0);
    nnp_tensor_free(&t);
    nnp_shape scalar = {0};
    int64_t n;
    cr_assert_eq(nnp_shape_numel(&scalar, &n, &err), NNP_OK);
    cr_assert_eq(n, 1);
}

/* Files written by numpy (the reference vectors) read with the right shape and values. */
/* The memory budget: an allocation over what is left fails with
 * NNP_ERR_LIMIT naming the bytes; every byte comes back when freed. */
Test(tensor, memory_budget)
{
    const size_t before = nnp_memory_in_use();
    nnp_set_memory_budget(before + (1u << 20));
    nnp_tensor a, b;
    nnp_error err = {0};
    nnp_shape small = {1, {1000}}, big = {2, {1024, 1024}};
    cr_assert_eq(nnp_tensor_alloc(&a, NNP_F32, &small, &err), NNP_OK, "%s", err.msg);
    cr_assert_gt(nnp_memory_in_use(), before + 4000);
    cr_assert_eq(nnp_tensor_alloc(&b, NNP_F32, &big, &err), NNP_ERR_LIMIT);
    cr_assert(strstr(err.msg, "[1024,1024] needs 4194304 bytes"), "%s", err.msg);
    cr_assert_null(b.data);
    cr_assert_null(nnp_aligned_alloc(2u << 20), "a raw block over the budget");
    nnp_tensor_free(&a);
    cr_assert_eq(nnp_memory_in_use(), before);
    nnp_set_memory_budget(0);   /* the default again */
    cr_assert_gt(nnp_memory_budget(), (size_t)1 << 20);
    cr_assert_eq(nnp_tensor_alloc(&b, NNP_F32, &big, &err), NNP_OK, "%s", err.msg);
    nnp_tensor_free(&b);
    cr_assert_eq(nnp_memory_in_use(), before);
}

Test(tensor, parse_bytes)
{
    cr_assert_eq(nnp_parse_bytes("1048576"), (size_t)1048576);
    cr_assert_eq(nnp_parse_bytes("512K"), (size_t)512 * 1024);
    cr_assert_eq(nnp_parse_bytes("1.5G"), (size_t)3 << 29);
    cr_assert_eq(nnp_parse_bytes("2MB"), (size_t)2 << 20);
    cr_assert_eq(nnp_parse_bytes("1T"), (size_t)1 << 40);
    const char *bad[] = {"", "lots", "-1", "0", "1X", "1e400", "nan", NULL};
    for (int i = 0; bad[i]; i++)
        cr_assert_eq(nnp_parse_bytes(bad[i]), (size_t)0, "'%s'", bad[i]);
    cr_assert_eq(nnp_parse_bytes(NULL), (size_t)0);
}

Test(npy, read_numpy_files)
{
    nnp_tensor t;
    nnp_error err = {0};
    const char *p = tu_data_path("torch-functional/nchw/inputs/x.npy");
    cr_assert_eq(nnp_npy_read(p, &t, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(t.dtype, NNP_F32);
    cr_assert_eq(t.shape.rank, 4);
    cr_assert_eq(t.shape.dims[0], 4);
    cr_assert_eq(t.shape.dims[1], 3);
    nnp_tensor_free(&t);
    p = tu_data_path("torch-functional/nchw/expected/dx.npy");
    cr_assert_eq(nnp_npy_read(p, &t, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(t.dtype, NNP_F64);
    nnp_tensor_free(&t);
}

Test(npy, write_read_round_trip_and_python)
{
    char dir[] = "/tmp/nnp_npy_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/a.npy", dir);
    nnp_tensor t, r;
    nnp_shape s;
    nnp_error err = {0};
    int64_t dims[] = {2, 3};
    nnp_shape_make(&s, 2, dims, &err);
    nnp_tensor_alloc(&t, NNP_F32, &s, &err);
    for (int i = 0; i < 6; i++)
        ((float *)t.data)[i] = (float)i * 0.5f - 1.0f;
    cr_assert_eq(nnp_npy_write(path, &t, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_npy_read(path, &r, &err), NNP_OK, "%s", err.msg);
    cr_assert(nnp_shape_equal(&r.shape, &t.shape));
    cr_assert_eq(memcmp(r.data, t.data, t.nbytes), 0);
    nnp_tensor_free(&r);
    /* numpy itself must read it back the same */
    if (access("/usr/bin/python3", X_OK) == 0) {
        char cmd[512];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c \"import numpy as n,sys; a=n.load('%s'); "
                 "sys.exit(0 if a.shape==(2,3) and a.dtype==n.float32 and "
                 "(a.ravel()==n.arange(6)*0.5-1).all() else 1)\"", path);
        cr_assert_eq(system(cmd), 0, "numpy could not read our .npy back");
    }
    nnp_tensor_free(&t);
    unlink(path);
    rmdir(dir);
}

Test(npy, bad_files)
{
    char dir[] = "/tmp/nnp_npy_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    nnp_tensor t;
    nnp_error err = {0};
    snprintf(path, sizeof path, "%s/missing.npy", dir);
    cr_assert_eq(nnp_npy_read(path, &t, &err), NNP_ERR_IO);
    cr_assert(strstr(err.msg, path));
    /* header dicts, written with a correct length prefix unless noted */
    static const struct { const char *dict; int raw; const char *needle; } cases[] = {
        {"hello world", 1, "magic"},
        {"{'descr': '<f4'", 2, "truncated"},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", 0, "dtype"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", 0, "Fortran"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (9,), }", 0, "bytes"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }", 0, "shape"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "%s/bad%zu.npy", dir, i);
        FILE *f = fopen(path, "wb");
        size_t dl = strlen(cases[i].dict);
        if (cases[i].raw == 1) {
            fwrite(cases[i].dict, 1, dl, f);
        } else {
            /* raw == 2 claims a longer header than the file holds */
            size_t hl = cases[i].raw == 2 ? dl + 100 : dl;
            unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                     (unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
            fwrite(pre, 1, 10, f);
            fwrite(cases[i].dict, 1, dl, f);
            float one = 1.0f;
            if (!cases[i].raw)
                fwrite(&one, sizeof one, 1, f);
        }
        fclose(f);
        nnp_status st = nnp_npy_read(path, &t, &err);
        cr_assert_neq(st, NNP_OK, "case %zu accepted", i);
        cr_assert(strstr(err.msg, cases[i].needle), "case %zu: \"%s\" lacks \"%s\"", i, err.msg,
                  cases[i].needle);
        cr_assert(strstr(err.msg, path), "case %zu: message does not name the file", i);
        unlink(path);
    }
    rmdir(dir);
}

Test(npy, atomic_write_leaves_old_file_on_failure)
{
    nnp_error err = {0};
    nnp_tensor t;
    nnp_shape s = {.rank = 1, .dims = {4}};
    nnp_tensor_alloc(&t, NNP_F32, &s, &err);
    cr_assert_eq(nnp_npy_write("/nonexistent-dir/x.npy", &t, &err), NNP_ERR_IO);
    cr_assert(strstr(err.msg, "/nonexistent-dir/x.npy"));
    nnp_tensor_free(&t);
}
