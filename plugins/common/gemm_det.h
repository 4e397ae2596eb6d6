/* Matrix products for data-parallel steps, whose every element is one fixed
 * sequence of fused multiply-adds: over the inner index in order, starting
 * from zero. An element's bits then depend on its own row and column alone,
 * not on the rows computed with it, the tiling, the thread count or the
 * CPU's vector width (the AVX-512 kernels and the portable ones give the
 * same bits). So a process may run its whole share of a batch in one call
 * and each sample's numbers are those it would get alone or in any other
 * share: what a data-parallel step needs, without one call per chunk.
 *
 * Sums over the batch (weight gradients) follow the host's reduction tree
 * (plugin ABI 1.5, reduce_cover): its leaves are chunks of rows, a leaf's
 * value the chunk's sum (the same fixed sequence over its rows in order),
 * a node of s leaves the node of its first s / 2 leaves plus the node of
 * the rest. gd_tree_atb evaluates such a node tile by tile in cache, so no
 * partial sum per chunk is ever written to memory. */
#ifndef NNP_GEMM_DET_H
#define NNP_GEMM_DET_H

#include <nnplug/plugin.h>
#include <stdint.h>

/* Row-major C[M,N] = A[M,K] B[K,N], then + bias[n] when bias is not NULL,
 * on up to nthreads threads. */
void gd_gemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
             int64_t ldb, const float *bias, float *C, int64_t ldc, int nthreads);

/* One node of a reduction tree over row chunks: leaf l holds the rows
 * [rows_begin[l], rows_end[l]) (the node's leaves, in order). Into
 * out[I*J] (row-major, ld J): the node's value of G = sum over rows r of
 * A[r, 0:I]^T B[r, 0:J]; into colsum[J] when not NULL: the node's value of
 * the column sums of B. On up to nthreads threads. */
void gd_tree_atb(int64_t I, int64_t J, const float *A, int64_t lda, const float *B, int64_t ldb,
                 const int64_t *rows_begin, const int64_t *rows_end, int leaves, float *out,
                 float *colsum, int nthreads);

/* out[I*J] += A[0:rows, 0:I]^T B[0:rows, 0:J] and, when colsum is not
 * NULL, colsum[J] += the column sums of B[0:rows]: each added value one
 * leaf of `rows` rows (the fixed sequence over the rows in order), on up to
 * nthreads threads. */
void gd_atb_add(int64_t rows, int64_t I, int64_t J, const float *A, int64_t lda, const float *B,
                int64_t ldb, float *out, float *colsum, int nthreads);

/* In a data-parallel step (a 1.5 host's batch_chunks splits a call of
 * `rows` rows): into node[0, I*J) G = A^T B and into node[I*J, I*J + J)
 * the column sums of B, over the whole group's rows, summed by the host's
 * reduction tree with this process's nodes evaluated by gd_tree_atb (a
 * collective). Errors name the layer as "<kind> '<name>'". */
nnp_status gd_reduce_atb(const nnp_host *h, int64_t rows, int64_t I, int64_t J, const float *A,
                         int64_t lda, const float *B, int64_t ldb, float *node, int nthreads,
                         const char *kind, const char *name, nnp_error *err);

/* dst[c, r] = src[r, c]: src [R, C] row-major (ld C), on up to nthreads
 * threads (for a product with a transposed operand). */
void gd_transpose(int64_t R, int64_t C, const float *src, float *dst, int nthreads);

/* The kernels in use: "avx512", "fma" or "portable" (all give the same
 * bits; the environment's NNP_DET_ISA, else the best the CPU runs).
 * gd_use_isa picks one for the rest of the process (tests compare them);
 * 0 when the CPU cannot run it. */
const char *gd_isa(void);
int gd_use_isa(const char *name);

#endif
