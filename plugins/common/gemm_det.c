/* Products whose elements are fixed sequences of fused multiply-adds
 * (gemm_det.h). Three builds of the same element-wise rule: AVX-512
 * intrinsics, a portable body compiled for AVX2 + FMA, and the same body
 * for any CPU (fmaf in libm where the CPU has no FMA). Each element is
 * acc = fma(a_k, b_k, acc) for k in order from acc = 0, so all three give
 * the same bits; NNP_DET_ISA=avx512|fma|portable picks one (tests compare
 * them), else the best the CPU has.
 *
 * Tiles are MR rows by NR columns of the result; a tile's accumulators
 * stay in registers over the whole inner loop. */
#include "common/gemm_det.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
#define GD_X86 1
#endif

enum {
    MR = 8,             /* rows of a tile */
    NR = 32,            /* columns of a tile */
    TILE = MR * NR,
    MAX_DEPTH = 34,     /* levels of a tree of up to 2^32 leaves, and one */
    PAR_MIN = 1 << 16   /* multiply-adds below which one thread works */
};

/* An operand up to this size stays in a core's L2 cache between the tiles
 * that read it again: tiles then run in the order that reads the other,
 * larger operand once. */
#define L2_FIT ((size_t)768 << 10)

enum { ISA_PORTABLE, ISA_FMA, ISA_AVX512 };

static int isa_best(void)
{
    int best = ISA_PORTABLE;
#ifdef GD_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        best = ISA_AVX512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        best = ISA_FMA;
#endif
    return best;
}

static int isa_named(const char *name)
{
    return !name                          ? -1
           : !strcmp(name, "portable")    ? ISA_PORTABLE
           : !strcmp(name, "fma")         ? ISA_FMA
           : !strcmp(name, "avx512")      ? ISA_AVX512
                                          : -1;
}

static int chosen = -1;

static int isa_pick(void)
{
    if (chosen >= 0)
        return chosen;
    const int best = isa_best(), asked = isa_named(getenv("NNP_DET_ISA"));
    chosen = asked >= 0 && asked <= best ? asked : best;
    return chosen;
}

const char *gd_isa(void)
{
    static const char *const names[] = {"portable", "fma", "avx512"};
    return names[isa_pick()];
}

int gd_use_isa(const char *name)
{
    const int want = isa_named(name);
    if (want < 0 || want > isa_best())
        return 0;
    chosen = want;
    return 1;
}

/* ---- the portable rule ------------------------------------------------ */

/* C tile [mi, nj] = A rows [mi, K] B [K, nj] (+ bias). */
static inline __attribute__((always_inline)) void
gemm_tile_body(int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb,
               const float *bias, float *C, int64_t ldc, int mi, int nj)
{
    float acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (int64_t k = 0; k < K; k++) {
        const float *b = B + k * ldb;
        for (int i = 0; i < mi; i++) {
            const float a = A[i * lda + k];
            for (int j = 0; j < nj; j++)
                acc[i][j] = fmaf(a, b[j], acc[i][j]);
        }
    }
    for (int i = 0; i < mi; i++)
        for (int j = 0; j < nj; j++)
            C[i * ldc + j] = bias ? acc[i][j] + bias[j] : acc[i][j];
}

/* v [MR, NR] = sum over rows r in [rb, re) of A[r, 0:mi]^T B[r, 0:nj]
 * (A NULL: ones), zero outside [mi, nj]; buf = v, or buf += v (add). */
static inline __attribute__((always_inline)) void
leaf_body(const float *A, int64_t lda, const float *B, int64_t ldb, int64_t rb, int64_t re,
          int mi, int nj, float *buf, int add)
{
    float v[TILE];
    memset(v, 0, sizeof v);
    for (int64_t r = rb; r < re; r++) {
        const float *b = B + r * ldb;
        for (int i = 0; i < mi; i++) {
            const float a = A ? A[r * lda + i] : 1.0f;
            float *o = v + i * NR;
            for (int j = 0; j < nj; j++)
                o[j] = fmaf(a, b[j], o[j]);
        }
    }
    for (int k = 0; k < TILE; k++)
        buf[k] = add ? buf[k] + v[k] : v[k];
}

static void gemm_tile_portable(int64_t K, const float *A, int64_t lda, const float *B,
                               int64_t ldb, const float *bias, float *C, int64_t ldc, int mi,
                               int nj)
{
    gemm_tile_body(K, A, lda, B, ldb, bias, C, ldc, mi, nj);
}

static void leaf_portable(const float *A, int64_t lda, const float *B, int64_t ldb, int64_t rb,
                          int64_t re, int mi, int nj, float *buf, int add)
{
    leaf_body(A, lda, B, ldb, rb, re, mi, nj, buf, add);
}

#ifdef GD_X86
__attribute__((target("avx2,fma"))) static void
gemm_tile_fma(int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb,
              const float *bias, float *C, int64_t ldc, int mi, int nj)
{
    gemm_tile_body(K, A, lda, B, ldb, bias, C, ldc, mi, nj);
}

__attribute__((target("avx2,fma"))) static void
leaf_fma(const float *A, int64_t lda, const float *B, int64_t ldb, int64_t rb, int64_t re,
         int mi, int nj, float *buf, int add)
{
    leaf_body(A, lda, B, ldb, rb, re, mi, nj, buf, add);
}

/* ---- AVX-512 ---------------------------------------------------------- */

#define GD_AVX512 __attribute__((target("avx512f")))

GD_AVX512 static inline __mmask16 mask_of(int n)
{
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* The rows of a tile as a compile-time count, so that the accumulators
 * live in registers. */
#define GD_GEMM_ROWS(R)                                                                        \
    GD_AVX512 static void gemm_rows##R(int64_t K, const float *A, int64_t lda, const float *B, \
                                       int64_t ldb, const float *bias, float *C, int64_t ldc,  \
                                       int nj)                                                 \
    {                                                                                          \
        const __mmask16 m0 = mask_of(nj), m1 = mask_of(nj - 16);                               \
        __m512 c0[R], c1[R];                                                                   \
        _Pragma("GCC unroll 8") for (int i = 0; i < R; i++) c0[i] = c1[i] =                    \
            _mm512_setzero_ps();                                                               \
        for (int64_t k = 0; k < K; k++) {                                                      \
            const __m512 b0 = _mm512_maskz_loadu_ps(m0, B + k * ldb);                          \
            const __m512 b1 = _mm512_maskz_loadu_ps(m1, B + k * ldb + 16);                     \
            _Pragma("GCC unroll 8") for (int i = 0; i < R; i++)                                \
            {                                                                                  \
                const __m512 a = _mm512_set1_ps(A[i * lda + k]);                               \
                c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);                                         \
                c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);                                         \
            }                                                                                  \
        }                                                                                      \
        const __m512 z0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();        \
        const __m512 z1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();   \
        _Pragma("GCC unroll 8") for (int i = 0; i < R; i++)                                    \
        {                                                                                      \
            _mm512_mask_storeu_ps(C + i * ldc, m0, bias ? _mm512_add_ps(c0[i], z0) : c0[i]);   \
            _mm512_mask_storeu_ps(C + i * ldc + 16, m1,                                        \
                                  bias ? _mm512_add_ps(c1[i], z1) : c1[i]);                    \
        }                                                                                      \
    }
GD_GEMM_ROWS(8)
GD_GEMM_ROWS(1)

GD_AVX512 static void gemm_tile_avx512(int64_t K, const float *A, int64_t lda, const float *B,
                                       int64_t ldb, const float *bias, float *C, int64_t ldc,
                                       int mi, int nj)
{
    if (mi == MR) {
        gemm_rows8(K, A, lda, B, ldb, bias, C, ldc, nj);
        return;
    }
    for (int i = 0; i < mi; i++)
        gemm_rows1(K, A + i * lda, lda, B, ldb, bias, C + i * ldc, ldc, nj);
}

#define GD_LEAF_ROWS(R)                                                                        \
    GD_AVX512 static void leaf_rows##R(const float *A, int64_t lda, const float *B,            \
                                       int64_t ldb, int64_t rb, int64_t re, int nj, float *o,  \
                                       int add)                                                \
    {                                                                                          \
        const __mmask16 m0 = mask_of(nj), m1 = mask_of(nj - 16);                               \
        __m512 c0[R], c1[R];                                                                   \
        _Pragma("GCC unroll 8") for (int i = 0; i < R; i++) c0[i] = c1[i] =                    \
            _mm512_setzero_ps();                                                               \
        for (int64_t r = rb; r < re; r++) {                                                    \
            const __m512 b0 = _mm512_maskz_loadu_ps(m0, B + r * ldb);                          \
            const __m512 b1 = _mm512_maskz_loadu_ps(m1, B + r * ldb + 16);                     \
            _Pragma("GCC unroll 8") for (int i = 0; i < R; i++)                                \
            {                                                                                  \
                const __m512 a = A ? _mm512_set1_ps(A[r * lda + i]) : _mm512_set1_ps(1.0f);    \
                c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);                                         \
                c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);                                         \
            }                                                                                  \
        }                                                                                      \
        _Pragma("GCC unroll 8") for (int i = 0; i < R; i++)                                    \
        {                                                                                      \
            if (add) {                                                                         \
                c0[i] = _mm512_add_ps(_mm512_loadu_ps(o + i * NR), c0[i]);                     \
                c1[i] = _mm512_add_ps(_mm512_loadu_ps(o + i * NR + 16), c1[i]);                \
            }                                                                                  \
            _mm512_storeu_ps(o + i * NR, c0[i]);                                               \
            _mm512_storeu_ps(o + i * NR + 16, c1[i]);                                          \
        }                                                                                      \
    }
GD_LEAF_ROWS(8)
GD_LEAF_ROWS(1)

GD_AVX512 static void leaf_avx512(const float *A, int64_t lda, const float *B, int64_t ldb,
                                  int64_t rb, int64_t re, int mi, int nj, float *buf, int add)
{
    if (mi == MR && A) {
        leaf_rows8(A, lda, B, ldb, rb, re, nj, buf, add);
        return;
    }
    if (!add)
        memset(buf, 0, sizeof(float) * TILE);
    for (int i = 0; i < mi; i++)
        leaf_rows1(A ? A + i : NULL, lda, B, ldb, rb, re, nj, buf + i * NR, add);
}

/* a += b over a tile */
GD_AVX512 static void tile_add_avx512(float *restrict a, const float *restrict b)
{
    for (int k = 0; k < TILE; k += 16)
        _mm512_storeu_ps(a + k, _mm512_add_ps(_mm512_loadu_ps(a + k), _mm512_loadu_ps(b + k)));
}
#endif /* GD_X86 */

typedef void (*gemm_tile_fn)(int64_t, const float *, int64_t, const float *, int64_t,
                             const float *, float *, int64_t, int, int);
typedef void (*leaf_fn)(const float *, int64_t, const float *, int64_t, int64_t, int64_t, int,
                        int, float *, int);

/* The kernels of each ISA, indexed by ISA_* (isa_pick never picks one the
 * build lacks). */
static const struct kernels {
    gemm_tile_fn gemm_tile;
    leaf_fn leaf;
} kernels[] = {
    [ISA_PORTABLE] = {gemm_tile_portable, leaf_portable},
#ifdef GD_X86
    [ISA_FMA] = {gemm_tile_fma, leaf_fma},
    [ISA_AVX512] = {gemm_tile_avx512, leaf_avx512},
#endif
};

static int threads_for(double work, int64_t tasks, int nthreads)
{
    int nt = nthreads < 1 ? 1 : nthreads;
    if (work < PAR_MIN)
        nt = 1;
    if ((int64_t)nt > tasks)
        nt = (int)tasks;
    return nt < 1 ? 1 : nt;
}

void gd_gemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
             int64_t ldb, const float *bias, float *C, int64_t ldc, int nthreads)
{
    if (M <= 0 || N <= 0)
        return;
    const gemm_tile_fn tile = kernels[isa_pick()].gemm_tile;
    const int64_t mt = (M + MR - 1) / MR, nt_cols = (N + NR - 1) / NR, tiles = mt * nt_cols;
    const int nt = threads_for((double)M * (double)N * (double)K, tiles, nthreads);
    /* column panels outermost (a thread's run of tiles shares B's panel,
       A read once per panel), or, when B stays in L2 and A is the larger,
       row panels outermost (A read once); each tile is the same either way */
    const int rows_out = (size_t)(K * N) * sizeof(float) <= L2_FIT && M * K > K * N;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int64_t t = 0; t < tiles; t++) {
        const int64_t i0 = (rows_out ? t / nt_cols : t % mt) * MR;
        const int64_t j0 = (rows_out ? t % nt_cols : t / mt) * NR;
        const int mi = (int)(M - i0 < MR ? M - i0 : MR), nj = (int)(N - j0 < NR ? N - j0 : NR);
        tile(K, A + i0 * lda, lda, B + j0, ldb, bias ? bias + j0 : NULL, C + i0 * ldc + j0, ldc,
             mi, nj);
    }
}

typedef struct tree_job {
    leaf_fn leaf;
    int avx512;
    const float *A, *B;
    int64_t lda, ldb;
    const int64_t *rb, *re;
} tree_job;

static void tile_add(const tree_job *t, float *restrict a, const float *restrict b)
{
#ifdef GD_X86
    if (t->avx512) {
        tile_add_avx512(a, b);
        return;
    }
#endif
    for (int k = 0; k < TILE; k++)
        a[k] += b[k];
}

/* buf = the value of the node of s leaves from leaf l0 (or buf += it:
 * add), for one tile; tmp: a tile per level below. A right child that is a
 * leaf is added from registers (the same sum as through a tile). */
static void node_eval(const tree_job *t, const float *A, const float *B, int mi, int nj, int l0,
                      int s, float *buf, float *tmp, int add)
{
    if (s == 1) {
        t->leaf(A, t->lda, B, t->ldb, t->rb[l0], t->re[l0], mi, nj, buf, add);
        return;
    }
    if (add) {
        node_eval(t, A, B, mi, nj, l0, s, tmp, tmp + TILE, 0);
        tile_add(t, buf, tmp);
        return;
    }
    node_eval(t, A, B, mi, nj, l0, s / 2, buf, tmp, 0);
    node_eval(t, A, B, mi, nj, l0 + s / 2, s - s / 2, buf, tmp, 1);
}

static void tree_atb(int64_t I, int64_t J, const float *A, int64_t lda, const float *B,
                     int64_t ldb, const int64_t *rows_begin, const int64_t *rows_end, int leaves,
                     float *out, float *colsum, int add, int nthreads)
{
    if (J <= 0 || leaves < 1)
        return;
    const int isa = isa_pick();
    const tree_job job = {kernels[isa].leaf, isa == ISA_AVX512, A, B, lda, ldb, rows_begin,
                          rows_end};
    const int64_t it = I > 0 ? (I + MR - 1) / MR : 0, jt = (J + NR - 1) / NR;
    /* the kernel's tiles, then one row of tiles for the column sums */
    const int64_t tiles = it * jt + (colsum ? jt : 0);
    const int64_t rows = rows_end[leaves - 1] - rows_begin[0];
    const int nt = threads_for((double)rows * (double)(I + 1) * (double)J, tiles, nthreads);
    /* row tiles fastest (a run of tiles shares B's columns, A read once per
       column panel), or, when B stays in L2 and A is the larger, column
       tiles fastest (A's columns read once); each tile is the same either way */
    const int cols_fast = (size_t)(rows * J) * sizeof(float) <= L2_FIT && I > J;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        float buf[TILE], tmp[MAX_DEPTH * TILE];
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tiles; t++) {
            const int sums = t >= it * jt;
            const int64_t i0 = sums ? 0 : (cols_fast ? t / jt : t % it) * MR;
            const int64_t j0 = (sums ? t - it * jt : cols_fast ? t % jt : t / it) * NR;
            const int mi = sums ? 1 : (int)(I - i0 < MR ? I - i0 : MR);
            const int nj = (int)(J - j0 < NR ? J - j0 : NR);
            float *o = sums ? colsum + j0 : out + i0 * J + j0;
            if (add) { /* the tile's values, then the node added from its kernel */
                memset(buf, 0, sizeof buf);
                for (int i = 0; i < mi; i++)
                    memcpy(buf + i * NR, o + i * J, sizeof(float) * (size_t)nj);
            }
            node_eval(&job, sums ? NULL : A + i0, B + j0, mi, nj, 0, leaves, buf, tmp, add);
            for (int i = 0; i < mi; i++)
                memcpy(o + i * J, buf + i * NR, sizeof(float) * (size_t)nj);
        }
    }
}

void gd_tree_atb(int64_t I, int64_t J, const float *A, int64_t lda, const float *B, int64_t ldb,
                 const int64_t *rows_begin, const int64_t *rows_end, int leaves, float *out,
                 float *colsum, int nthreads)
{
    tree_atb(I, J, A, lda, B, ldb, rows_begin, rows_end, leaves, out, colsum, 0, nthreads);
}

void gd_atb_add(int64_t rows, int64_t I, int64_t J, const float *A, int64_t lda, const float *B,
                int64_t ldb, float *out, float *colsum, int nthreads)
{
    const int64_t b = 0, e = rows;
    tree_atb(I, J, A, lda, B, ldb, &b, &e, 1, out, colsum, 1, nthreads);
}

nnp_status gd_reduce_atb(const nnp_host *h, int64_t rows, int64_t I, int64_t J, const float *A,
                         int64_t lda, const float *B, int64_t ldb, float *node, int nthreads,
                         const char *kind, const char *name, nnp_error *err)
{
    const int nc = h->batch_chunks(rows, 0, NULL, NULL);
    int64_t *rb = malloc(sizeof *rb * 2 * (size_t)(nc > 0 ? nc : 1)), *re = rb ? rb + nc : NULL;
    if (!rb)
        return h->error_set(err, NNP_ERR_NOMEM, "%s '%s': out of memory", kind, name);
    for (int i = 0; i < nc; i++)
        h->batch_chunks(rows, i, &rb[i], &re[i]);
    void *red;
    nnp_status st = h->reduce_begin(NNP_F32, (size_t)(I * J + J), 1, &red, err);
    if (st == NNP_OK) {
        int sizes[64];
        const int nodes = h->reduce_cover(red, sizes, 64);
        for (int k = 0, l = 0; k < nodes && k < 64; l += sizes[k++]) {
            gd_tree_atb(I, J, A, lda, B, ldb, rb + l, re + l, sizes[k], node, node + I * J,
                        nthreads);
            h->reduce_add_node(red, sizes[k], node);
        }
        st = h->reduce_end(red, node, err);
    }
    free(rb);
    return st;
}

void gd_transpose(int64_t R, int64_t C, const float *src, float *dst, int nthreads)
{
    enum { B = 32 };
    const int64_t rb = (R + B - 1) / B, cb = (C + B - 1) / B;
    const int nt = threads_for((double)R * (double)C, rb * cb, nthreads);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int64_t t = 0; t < rb * cb; t++) {
        const int64_t r0 = (t / cb) * B, c0 = (t % cb) * B;
        const int64_t r1 = r0 + B < R ? r0 + B : R, c1 = c0 + B < C ? c0 + B : C;
        for (int64_t c = c0; c < c1; c++)
            for (int64_t r = r0; r < r1; r++)
                dst[c * R + r] = src[r * C + c];
    }
}
