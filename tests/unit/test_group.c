/* The batch split and reproducible sums of a single process (the group
 * NULL): the split's rule, and tree sums against the tree's definition
 * evaluated here by recursion. tests/mpi runs the same sums on 1-4
 * processes. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "nnplug/nnplug.h"

Test(group, split_covers_the_batch_in_order)
{
    for (int64_t b = 1; b <= 700; b++) {
        int64_t chunk = (b + 15) / 16 < 16 ? (b + 15) / 16 : 16;
        int n = (int)((b + chunk - 1) / chunk);
        for (int k = 1; k <= 20; k++) {
            int64_t next = 0;
            int next_chunk = 0;
            for (int r = 0; r < k; r++) {
                nnp_batch_split s;
                nnp_error err = {0};
                nnp_status st = nnp_batch_split_of(b, r, k, &s, &err);
                if (n < k) {
                    cr_assert_eq(st, NNP_ERR_INVALID);
                    cr_assert(strstr(err.msg, "cannot be shared by"), "%s", err.msg);
                    break;
                }
                cr_assert_eq(st, NNP_OK, "%s", err.msg);
                cr_assert_eq(s.chunk, chunk);
                cr_assert_eq(s.n_chunks, n);
                cr_assert_eq(s.first, next_chunk);
                cr_assert_eq(s.offset, next);
                cr_assert_geq(s.count, 1);
                /* shares differ by one chunk at most */
                cr_assert(s.count == n / k || s.count == n / k + 1);
                int64_t seen = 0;
                for (int i = 0; i < s.count; i++) {
                    int64_t lo, hi;
                    nnp_batch_split_chunk(&s, i, &lo, &hi);
                    cr_assert_eq(lo, seen);
                    cr_assert(hi > lo && hi - lo <= chunk);
                    seen = hi;
                }
                cr_assert_eq(seen, s.samples);
                next += s.samples;
                next_chunk += s.count;
            }
            if (n >= k) {
                cr_assert_eq(next, b);
                cr_assert_eq(next_chunk, n);
            }
        }
    }
}

Test(group, too_many_processes_names_the_sizes)
{
    nnp_batch_split s;
    nnp_error err = {0};
    cr_assert_eq(nnp_batch_split_of(3, 0, 4, &s, &err), NNP_ERR_INVALID);
    cr_assert(strstr(err.msg, "a batch of 3 samples cannot be shared by 4 processes"), "%s",
              err.msg);
    cr_assert(strstr(err.msg, "at least 4 samples"), "%s", err.msg);
    cr_assert_eq(nnp_batch_split_of(256, 0, 17, &s, &err), NNP_ERR_INVALID);
    cr_assert(strstr(err.msg, "at least 257 samples"), "%s", err.msg);
    cr_assert_eq(nnp_batch_split_of(257, 16, 17, &s, &err), NNP_OK, "%s", err.msg);
}

/* The tree's definition: leaf i, or left + right split at lo + (hi-lo)/2. */
static void ref_tree(const float *leaves, size_t len, int lo, int hi, float *out)
{
    if (hi - lo == 1) {
        memcpy(out, leaves + (size_t)lo * len, len * sizeof *out);
        return;
    }
    int mid = lo + (hi - lo) / 2;
    float right[64];
    ref_tree(leaves, len, lo, mid, out);
    ref_tree(leaves, len, mid, hi, right);
    for (size_t i = 0; i < len; i++)
        out[i] += right[i];
}

Test(group, local_tree_sum_is_the_tree)
{
    enum { LEN = 33 };
    static float leaves[300 * LEN];
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        /* wide exponents: rounding depends on the order of the sums */
        leaves[i] = (float)((double)(x >> 11) / 9007199254740992.0 - 0.5) *
                    ldexpf(1.0f, (int)(x % 40) - 20);
    }
    for (int64_t b = 1; b <= 4100; b += b < 40 ? 1 : 97) {
        nnp_batch_split s;
        nnp_error err = {0};
        cr_assert_eq(nnp_batch_split_of(b, 0, 1, &s, &err), NNP_OK);
        cr_assert_leq(s.n_chunks, 300);
        nnp_reduction *r;
        cr_assert_eq(nnp_reduce_begin(NULL, &s, NNP_F32, LEN, 1, &r, &err), NNP_OK, "%s",
                     err.msg);
        for (int i = 0; i < s.count; i++)
            nnp_reduce_add(r, leaves + (size_t)i * LEN);
        float got[LEN], want[LEN];
        cr_assert_eq(nnp_reduce_end(r, got, &err), NNP_OK, "%s", err.msg);
        ref_tree(leaves, LEN, 0, s.n_chunks, want);
        cr_assert_eq(memcmp(got, want, sizeof got), 0, "batch %lld", (long long)b);
    }
}

Test(group, double_sums_and_a_missing_chunk)
{
    nnp_batch_split s;
    nnp_error err = {0};
    cr_assert_eq(nnp_batch_split_of(40, 0, 1, &s, &err), NNP_OK);
    cr_assert_eq(s.n_chunks, 14); /* chunks of 3 */
    nnp_reduction *r;
    cr_assert_eq(nnp_reduce_begin(NULL, &s, NNP_F64, 2, 0, &r, &err), NNP_OK);
    double sum = 0.0;
    for (int i = 0; i < s.count; i++) {
        double p[2] = {i + 0.25, -(double)i};
        nnp_reduce_add(r, p);
        sum += i + 0.25;
    }
    double got[2];
    cr_assert_eq(nnp_reduce_end(r, got, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(got[0], sum); /* exact: small binary fractions */
    cr_assert_eq(got[1], -91.0);
    cr_assert_eq(nnp_reduce_begin(NULL, &s, NNP_F64, 2, 0, &r, &err), NNP_OK);
    double p[2] = {1, 2};
    nnp_reduce_add(r, p);
    cr_assert_neq(nnp_reduce_end(r, got, &err), NNP_OK);
    cr_assert(strstr(err.msg, "1 of 14 chunks"), "%s", err.msg);
    /* whole nodes: 14 chunks are one node; the first 2 chunks are none (3 = 1 + 2) */
    int sizes[4];
    cr_assert_eq(nnp_reduce_begin(NULL, &s, NNP_F64, 2, 0, &r, &err), NNP_OK);
    cr_assert_eq(nnp_reduce_cover(r, sizes, 4), 1);
    cr_assert_eq(sizes[0], 14);
    nnp_reduce_add_node(r, 2, p);
    cr_assert_neq(nnp_reduce_end(r, got, &err), NNP_OK);
    cr_assert(strstr(err.msg, "not the next node of the tree"), "%s", err.msg);
    /* the tree's nodes of 14: 7 + 7, 7 = 3 + 4 */
    cr_assert_eq(nnp_reduce_begin(NULL, &s, NNP_F64, 2, 0, &r, &err), NNP_OK);
    double a[2] = {1, 2}, b[2] = {3, 4}, c[2] = {5, 6};
    nnp_reduce_add_node(r, 3, a);
    nnp_reduce_add_node(r, 4, b);
    nnp_reduce_add_node(r, 7, c);
    cr_assert_eq(nnp_reduce_end(r, got, &err), NNP_OK, "%s", err.msg);
    cr_assert(got[0] == 9.0 && got[1] == 12.0);
}

Test(group, one_process_without_a_launcher)
{
    cr_assert_eq(nnp_group_size(NULL), 1);
    cr_assert_eq(nnp_group_rank(NULL), 0);
    if (!nnp_mpi_launched()) {
        nnp_group *g = (nnp_group *)1;
        nnp_error err = {0};
        cr_assert_eq(nnp_group_world(&g, &err), NNP_OK);
        cr_assert_null(g);
    }
    nnp_error err = {0};
    double x[3] = {1, 2, 3};
    cr_assert_eq(nnp_group_allreduce_f64(NULL, x, 3, &err), NNP_OK);
    cr_assert_eq(x[2], 3.0);
    cr_assert_eq(nnp_group_agree(NULL, "model", x, sizeof x, &err), NNP_OK);
}
