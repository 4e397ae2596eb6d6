/* A matrix product whose result does not depend on the thread count, shared
 * by the Dense and Conv2D plugins (header-only, static; a plugin that
 * includes it links OpenBLAS: nnp_use_openblas in plugins/dense/openblas.cmake).
 *
 * OpenBLAS's own threading is not reproducible bit for bit across thread
 * counts (measured: a 257x300x190 sgemm differs between 1 and 2 threads). So
 * the result C is cut into tiles whose size depends only on the problem's
 * shape; our OpenMP threads share the tiles, and each tile is one
 * single-threaded sgemm over the full inner dimension. Every element is then
 * the same computation for any thread count.
 *
 * OpenBLAS's OpenMP build sizes its thread team from omp_get_max_threads();
 * omp_set_num_threads(1) at the top of our parallel region changes that
 * value for the region's implicit tasks only, so BLAS runs single-threaded
 * inside and the caller's setting is untouched afterwards. */
#ifndef NNP_GEMM_TILED_H
#define NNP_GEMM_TILED_H

#include <cblas.h>
#include <omp.h>
#include <stdint.h>

#define GT_TILE_M 128
#define GT_TILE_N 256

/* Row-major C[M,N] = alpha op(A)[M,K] op(B)[K,N] + beta C on up to
 * nthreads threads. */
static inline void gt_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                            float alpha, const float *A, int64_t lda, const float *B,
                            int64_t ldb, float beta, float *C, int64_t ldc, int nthreads)
{
    if (M <= 0 || N <= 0)
        return;
    const int64_t tm = (M + GT_TILE_M - 1) / GT_TILE_M, tn = (N + GT_TILE_N - 1) / GT_TILE_N;
    const int64_t tiles = tm * tn;
    int nt = nthreads < 1 ? 1 : nthreads;
    if ((int64_t)nt > tiles)
        nt = (int)tiles;
#pragma omp parallel num_threads(nt)
    {
        omp_set_num_threads(1);
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tiles; t++) {
            const int64_t i0 = (t / tn) * GT_TILE_M, j0 = (t % tn) * GT_TILE_N;
            const int64_t mb = M - i0 < GT_TILE_M ? M - i0 : GT_TILE_M;
            const int64_t nb = N - j0 < GT_TILE_N ? N - j0 : GT_TILE_N;
            const float *a = trans_a ? A + i0 : A + i0 * lda;
            const float *b = trans_b ? B + j0 * ldb : B + j0;
            cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                        trans_b ? CblasTrans : CblasNoTrans, (int)mb, (int)nb, (int)K, alpha, a,
                        (int)lda, b, (int)ldb, beta, C + i0 * ldc + j0, (int)ldc);
        }
    }
}

/* One single-threaded sgemm, for callers already inside their own parallel
 * region (each task's result then does not depend on the thread running it). */
static inline void gt_sgemm1(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                             float alpha, const float *A, int64_t lda, const float *B,
                             int64_t ldb, float beta, float *C, int64_t ldc)
{
    if (M <= 0 || N <= 0)
        return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, alpha, A, (int)lda,
                B, (int)ldb, beta, C, (int)ldc);
}

#endif
