/* plugins/common/gemm_det: products whose elements are one fixed sequence
 * of fused multiply-adds. Checked against the rule written out here with
 * C's fmaf (bit for bit), against float64 products (within rounding), and
 * for the same bits with every kernel the CPU runs (AVX-512, AVX2 + FMA,
 * portable), every thread count and any subset of rows computed alone. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/gemm_det.h"

static uint64_t rng = 0x243f6a8885a308d3ULL;

/* values with wide exponents: any other order of the sums rounds otherwise */
static void fill(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        x[i] = (float)((double)(rng >> 11) / 9007199254740992.0 - 0.5) *
               ldexpf(1.0f, (int)(rng % 12) - 6);
    }
}

static const char *const isas[] = {"portable", "fma", "avx512"};

/* The rule: C[m, n] = fma chain over k in order from 0, then + bias. */
static void rule_gemm(int64_t M, int64_t N, int64_t K, const float *A, const float *B,
                      const float *bias, float *C)
{
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            float acc = 0.0f;
            for (int64_t k = 0; k < K; k++)
                acc = fmaf(A[m * K + k], B[k * N + n], acc);
            C[m * N + n] = bias ? acc + bias[n] : acc;
        }
}

Test(gemm_det, products_follow_the_rule_on_every_kernel_and_thread_count)
{
    /* {70, 40, 33}: more rows than columns, so row panels run outermost */
    static const int64_t shapes[][3] = {{1, 1, 1},  {8, 32, 5},      {13, 45, 37}, {9, 17, 0},
                                        {100, 257, 300}, {3, 70, 784}, {70, 40, 33}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *A = malloc(sizeof(float) * (size_t)(M * K + 1)),
              *B = malloc(sizeof(float) * (size_t)(K * N + 1)), *bias = malloc(sizeof(float) * N),
              *want = malloc(sizeof(float) * (size_t)(M * N)),
              *got = malloc(sizeof(float) * (size_t)(M * N));
        fill(A, (size_t)(M * K));
        fill(B, (size_t)(K * N));
        fill(bias, (size_t)N);
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            rule_gemm(M, N, K, A, B, with_bias ? bias : NULL, want);
            /* float64 products agree within the rounding of K terms */
            for (int64_t m = 0; m < M; m++)
                for (int64_t n = 0; n < N; n++) {
                    double ref = with_bias ? bias[n] : 0.0, mag = fabs(ref);
                    for (int64_t k = 0; k < K; k++) {
                        ref += (double)A[m * K + k] * B[k * N + n];
                        mag += fabs((double)A[m * K + k] * B[k * N + n]);
                    }
                    cr_assert_leq(fabs(want[m * N + n] - ref), 1.2e-7 * (K + 2) * mag + 1e-30);
                }
            for (size_t i = 0; i < 3; i++) {
                if (!gd_use_isa(isas[i]))
                    continue;
                for (int nt = 1; nt <= 3; nt++) {
                    memset(got, 0xff, sizeof(float) * (size_t)(M * N));
                    gd_gemm(M, N, K, A, K, B, N, with_bias ? bias : NULL, got, N, nt);
                    cr_assert_eq(memcmp(got, want, sizeof(float) * (size_t)(M * N)), 0,
                                 "%lldx%lldx%lld, %s, %d threads", (long long)M, (long long)N,
                                 (long long)K, isas[i], nt);
                }
                /* rows [M/3, M/3 + M/2) alone: the same rows */
                const int64_t r0 = M / 3, rn = M / 2;
                gd_gemm(rn, N, K, A + r0 * K, K, B, N, with_bias ? bias : NULL, got, N, 2);
                cr_assert_eq(memcmp(got, want + r0 * N, sizeof(float) * (size_t)(rn * N)), 0);
            }
        }
        free(A), free(B), free(bias), free(want), free(got);
    }
}

/* The tree's rule: a leaf's value is the fma chain over its rows in order,
 * a node of s leaves the node of its first s / 2 plus the rest. A NULL
 * means ones (the column sums). */
static void rule_node(int64_t I, int64_t J, const float *A, const float *B, const int64_t *rb,
                      const int64_t *re, int s, float *out)
{
    const int64_t rows_i = A ? I : 1;
    if (s == 1) {
        for (int64_t i = 0; i < rows_i; i++)
            for (int64_t j = 0; j < J; j++) {
                float acc = 0.0f;
                for (int64_t r = rb[0]; r < re[0]; r++)
                    acc = fmaf(A ? A[r * I + i] : 1.0f, B[r * J + j], acc);
                out[i * J + j] = acc;
            }
        return;
    }
    float *right = malloc(sizeof(float) * (size_t)(rows_i * J));
    rule_node(I, J, A, B, rb, re, s / 2, out);
    rule_node(I, J, A, B, rb + s / 2, re + s / 2, s - s / 2, right);
    for (int64_t k = 0; k < rows_i * J; k++)
        out[k] += right[k];
    free(right);
}

Test(gemm_det, tree_nodes_follow_the_rule_on_every_kernel_and_thread_count)
{
    static const int64_t shapes[][2] = {{1, 1}, {8, 32}, {13, 45}, {784, 40}, {9, 257}};
    static const int leaf_counts[] = {1, 2, 3, 7, 16};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t lc = 0; lc < sizeof leaf_counts / sizeof leaf_counts[0]; lc++) {
            const int64_t I = shapes[s][0], J = shapes[s][1];
            const int L = leaf_counts[lc];
            int64_t rb[16], re[16], rows = 0;
            for (int l = 0; l < L; l++) { /* chunks of 1 to 5 rows */
                rb[l] = rows;
                rows += 1 + (l * 7) % 5;
                re[l] = rows;
            }
            float *A = malloc(sizeof(float) * (size_t)(rows * I)),
                  *B = malloc(sizeof(float) * (size_t)(rows * J)),
                  *want = malloc(sizeof(float) * (size_t)(I * J)),
                  *wsum = malloc(sizeof(float) * (size_t)J),
                  *got = malloc(sizeof(float) * (size_t)(I * J)),
                  *gsum = malloc(sizeof(float) * (size_t)J);
            fill(A, (size_t)(rows * I));
            fill(B, (size_t)(rows * J));
            rule_node(I, J, A, B, rb, re, L, want);
            rule_node(I, J, NULL, B, rb, re, L, wsum);
            for (int64_t i = 0; i < I; i++)
                for (int64_t j = 0; j < J; j++) {
                    double ref = 0.0, mag = 0.0;
                    for (int64_t r = 0; r < rows; r++) {
                        ref += (double)A[r * I + i] * B[r * J + j];
                        mag += fabs((double)A[r * I + i] * B[r * J + j]);
                    }
                    cr_assert_leq(fabs(want[i * J + j] - ref), 1.2e-7 * (rows + 1) * mag + 1e-30);
                }
            for (size_t k = 0; k < 3; k++) {
                if (!gd_use_isa(isas[k]))
                    continue;
                for (int nt = 1; nt <= 3; nt++) {
                    memset(got, 0xff, sizeof(float) * (size_t)(I * J));
                    memset(gsum, 0xff, sizeof(float) * (size_t)J);
                    gd_tree_atb(I, J, A, I, B, J, rb, re, L, got, gsum, nt);
                    cr_assert_eq(memcmp(got, want, sizeof(float) * (size_t)(I * J)), 0,
                                 "%lldx%lld, %d leaves, %s, %d threads", (long long)I,
                                 (long long)J, L, isas[k], nt);
                    cr_assert_eq(memcmp(gsum, wsum, sizeof(float) * (size_t)J), 0,
                                 "column sums %lld, %d leaves, %s", (long long)J, L, isas[k]);
                }
            }
            free(A), free(B), free(want), free(wsum), free(got), free(gsum);
        }
}

/* gd_atb_add: out and the column sums plus the one-leaf node, each sum
 * the rule's value added once (the same bits as adding the node's tile). */
Test(gemm_det, atb_add_adds_the_one_leaf_node)
{
    static const int64_t shapes[][3] = {{1, 1, 1}, {8, 32, 64}, {13, 45, 7}, {4608 / 64, 70, 64}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t I = shapes[s][0], J = shapes[s][1], rows = shapes[s][2];
        const int64_t rb = 0, re = rows;
        float *A = malloc(sizeof(float) * (size_t)(rows * I)),
              *B = malloc(sizeof(float) * (size_t)(rows * J)),
              *init = malloc(sizeof(float) * (size_t)(I * J + J)),
              *want = malloc(sizeof(float) * (size_t)(I * J + J)),
              *got = malloc(sizeof(float) * (size_t)(I * J + J));
        fill(A, (size_t)(rows * I));
        fill(B, (size_t)(rows * J));
        fill(init, (size_t)(I * J + J));
        rule_node(I, J, A, B, &rb, &re, 1, want);
        rule_node(I, J, NULL, B, &rb, &re, 1, want + I * J);
        for (int64_t k = 0; k < I * J + J; k++)
            want[k] += init[k];
        for (size_t k = 0; k < 3; k++) {
            if (!gd_use_isa(isas[k]))
                continue;
            for (int nt = 1; nt <= 3; nt++) {
                memcpy(got, init, sizeof(float) * (size_t)(I * J + J));
                gd_atb_add(rows, I, J, A, I, B, J, got, got + I * J, nt);
                cr_assert_eq(memcmp(got, want, sizeof(float) * (size_t)(I * J + J)), 0,
                             "%lldx%lld over %lld rows, %s, %d threads", (long long)I,
                             (long long)J, (long long)rows, isas[k], nt);
            }
        }
        free(A), free(B), free(init), free(want), free(got);
    }
}

Test(gemm_det, transpose)
{
    enum { R = 37, C = 70 };
    float src[R * C], dst[R * C];
    fill(src, R * C);
    gd_transpose(R, C, src, dst, 2);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            cr_assert_eq(dst[c * R + r], src[r * C + c]);
}
