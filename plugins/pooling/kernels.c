/*
 * Pooling kernels. Every output element, and every input-gradient element,
 * is computed by one thread in a fixed order, so results do not depend on
 * the thread count: forward splits output rows, backward splits images
 * (channels-last) or (image, channel) planes (channels-first), whose
 * input-gradient elements are disjoint.
 */
#include "pooling.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define POOL_CBLK 16
#define POOL_PAR_MIN 16384

typedef struct strides {
    int64_t n, h, w, c;
} strides;

static strides in_strides(const pool_geom *g)
{
    if (g->channels_first)
        return (strides){g->C * g->H * g->W, g->W, 1, g->H * g->W};
    return (strides){g->H * g->W * g->C, g->W * g->C, g->C, 1};
}

static strides out_strides(const pool_geom *g)
{
    if (g->channels_first)
        return (strides){g->C * g->OH * g->OW, g->OW, 1, g->OH * g->OW};
    return (strides){g->OH * g->OW * g->C, g->OW * g->C, g->C, 1};
}

/* The window of output (oh, ow) clipped to the input: rows h0..h1, cols
 * w0..w1 (exclusive ends). */
static void window(const pool_geom *g, int64_t oh, int64_t ow, int64_t *h0, int64_t *h1,
                   int64_t *w0, int64_t *w1)
{
    const int64_t hs = oh * g->sh - g->pt, ws = ow * g->sw - g->pl;
    *h0 = hs < 0 ? 0 : hs;
    *h1 = hs + g->kh > g->H ? g->H : hs + g->kh;
    *w0 = ws < 0 ? 0 : ws;
    *w1 = ws + g->kw > g->W ? g->W : ws + g->kw;
}

/* Divisor of an average window: the valid positions, or the whole window
 * when padded zeros count (it then lies inside the padded input). */
static float avg_count(const pool_geom *g, int include_pad, int64_t h0, int64_t h1, int64_t w0,
                       int64_t w1)
{
    if (include_pad)
        return (float)(g->kh * g->kw);
    return (float)((h1 - h0) * (w1 - w0));
}

/* Channels-first: one task per output row of one (image, channel) plane, so
 * every read walks a contiguous input row. Max windows 2 wide with stride 2
 * (the usual 2x2/2) that lie inside the row take a loop the compiler
 * vectorizes; the other outputs go through window(). */
static void cf_forward_row(const pool_geom *g, pool_op op, int include_pad, const float *xp,
                           float *restrict yr, int64_t oh)
{
    int64_t h0, h1, w0, w1;
    window(g, oh, 0, &h0, &h1, &w0, &w1);
    int64_t ow;
    /* outputs whose window starts at >= 0 and ends inside the row */
    int64_t fast0 = g->pl > 0 ? (g->pl + g->sw - 1) / g->sw : 0;
    int64_t fast1 = g->W >= g->kw - g->pl ? (g->W - g->kw + g->pl) / g->sw + 1 : 0;
    if (fast1 > g->OW)
        fast1 = g->OW;
    if (fast0 > fast1)
        fast0 = fast1;
    const float init = op == POOL_MAX ? -INFINITY : 0.0f;
    if (op == POOL_MAX && g->kw == 2 && g->sw == 2) {
        for (ow = fast0; ow < fast1; ow++)
            yr[ow] = init;
        for (int64_t ih = h0; ih < h1; ih++) {
            const float *restrict xr = xp + ih * g->W + fast0 * 2 - g->pl;
            float *restrict yo = yr + fast0;
            for (int64_t j = 0; j < fast1 - fast0; j++) {
                const float a = xr[2 * j], b = xr[2 * j + 1];
                float m = yo[j];
                m = a > m ? a : m;
                m = b > m ? b : m;
                yo[j] = m;
            }
        }
    } else if (op == POOL_MAX) {
        /* any window, same order as below: rows, then columns */
        for (ow = fast0; ow < fast1; ow++)
            yr[ow] = init;
        const int64_t sw = g->sw, n = fast1 - fast0;
        for (int64_t ih = h0; ih < h1; ih++) {
            const float *restrict xr = xp + ih * g->W + fast0 * sw - g->pl;
            float *restrict yo = yr + fast0;
            for (int64_t kx = 0; kx < g->kw; kx++)
                for (int64_t j = 0; j < n; j++) {
                    const float v = xr[sw * j + kx];
                    yo[j] = v > yo[j] ? v : yo[j];
                }
        }
    } else {
        fast0 = fast1 = 0;
    }
    for (ow = 0; ow < g->OW; ow++) {
        if (ow >= fast0 && ow < fast1)
            continue; /* done above */
        window(g, oh, ow, &h0, &h1, &w0, &w1);
        float acc = init;
        for (int64_t ih = h0; ih < h1; ih++)
            for (int64_t iw = w0; iw < w1; iw++) {
                const float v = xp[ih * g->W + iw];
                if (op == POOL_MAX) {
                    if (v > acc)
                        acc = v;
                } else {
                    acc += v;
                }
            }
        if (op == POOL_AVG)
            acc *= 1.0f / avg_count(g, include_pad, h0, h1, w0, w1);
        yr[ow] = acc;
    }
}

void pool_forward(const pool_geom *g, pool_op op, int include_pad, const float *x, float *y,
                  int nthreads)
{
    const strides si = in_strides(g), so = out_strides(g);
    if (g->channels_first) {
        const int64_t rows = g->N * g->C * g->OH;
#pragma omp parallel for schedule(static) num_threads(nthreads) \
    if (rows * g->OW >= POOL_PAR_MIN)
        for (int64_t r = 0; r < rows; r++) {
            const int64_t plane = r / g->OH, oh = r % g->OH;
            cf_forward_row(g, op, include_pad, x + plane * g->H * g->W, y + r * g->OW, oh);
        }
        return;
    }
    /* channels_last: one task per output row, every channel contiguous */
    const int64_t rows = g->N * g->OH;
#pragma omp parallel for schedule(static) num_threads(nthreads) \
    if (rows * g->OW * g->C >= POOL_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t n = r / g->OH, oh = r % g->OH;
        for (int64_t ow = 0; ow < g->OW; ow++) {
            int64_t h0, h1, w0, w1;
            window(g, oh, ow, &h0, &h1, &w0, &w1);
            float *restrict yo = y + n * so.n + oh * so.h + ow * so.w;
            const float init = op == POOL_MAX ? -INFINITY : 0.0f;
            for (int64_t c = 0; c < g->C; c++)
                yo[c] = init;
            for (int64_t ih = h0; ih < h1; ih++)
                for (int64_t iw = w0; iw < w1; iw++) {
                    const float *restrict xi = x + n * si.n + ih * si.h + iw * si.w;
                    if (op == POOL_MAX) {
                        for (int64_t c = 0; c < g->C; c++)
                            yo[c] = xi[c] > yo[c] ? xi[c] : yo[c];
                    } else {
                        for (int64_t c = 0; c < g->C; c++)
                            yo[c] += xi[c];
                    }
                }
            if (op == POOL_AVG) {
                const float inv = 1.0f / avg_count(g, include_pad, h0, h1, w0, w1);
                for (int64_t c = 0; c < g->C; c++)
                    yo[c] *= inv;
            }
        }
    }
}

/* Max-pool 2x2 backward over n whole windows whose four elements are
 * a[j * s], b[j * s], c[j * s], d[j * s] (in window order; s = 2 for a
 * channels-first row pair, 1 for channels-last channel vectors): each
 * window's gradient g[j] goes to the element the forward took (its first
 * maximum; NaN never is one), the others get 0. Float
 * selects only, so the compiler vectorizes the loop. */
static inline void max2x2_backward(const float *restrict a, const float *restrict b,
                                   const float *restrict c, const float *restrict d,
                                   const float *restrict gy, float *restrict da,
                                   float *restrict db, float *restrict dc, float *restrict dd,
                                   int64_t n, int64_t s)
{
    for (int64_t j = 0; j < n; j++) {
        const float va = a[j * s], vb = b[j * s], vc = c[j * s], vd = d[j * s];
        const float gv = gy[j], z = 0.0f, ninf = -INFINITY;
        const float m0 = va > ninf ? va : ninf; /* the forward's running max */
        const float m1 = vb > m0 ? vb : m0, m2 = vc > m1 ? vc : m1;
        const float rd = vd > m2 ? gv : z, rest = vd > m2 ? z : gv;
        const float rc = vc > m1 ? rest : z, rest2 = vc > m1 ? z : rest;
        da[j * s] = vb > m0 ? z : rest2;
        db[j * s] = vb > m0 ? rest2 : z;
        dc[j * s] = rc;
        dd[j * s] = rd;
    }
}

/* The maximum the forward takes, in row-major order, of the window of
 * output (oh, ow) in plane xp: the first element larger than every one
 * before it and than -inf (NaN never is), else the window's first element;
 * its index, or -1 for an empty window. */
static int64_t cf_argmax(const pool_geom *g, const float *xp, int64_t oh, int64_t ow)
{
    int64_t h0, h1, w0, w1, best = -1;
    window(g, oh, ow, &h0, &h1, &w0, &w1);
    float bv = -INFINITY;
    for (int64_t ih = h0; ih < h1; ih++)
        for (int64_t iw = w0; iw < w1; iw++) {
            if (best < 0)
                best = ih * g->W + iw;
            if (xp[ih * g->W + iw] > bv) {
                best = ih * g->W + iw;
                bv = xp[best];
            }
        }
    return best;
}

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
#define POOL_X86 1
#endif

/* Whether the AVX-512 body runs: the CPU has it and NNP_POOL_ISA is not
 * "portable" (tests run both). */
static int pool_avx512(void)
{
#ifdef POOL_X86
    const char *isa = getenv("NNP_POOL_ISA");
    return __builtin_cpu_supports("avx512f") && !(isa && strcmp(isa, "portable") == 0);
#else
    return 0;
#endif
}

/* Max pooling's maxima, row by row: a channels-first training forward
 * writes, next to each output, the position in its window (row-major, < kh
 * kw) of the element it took, the one cf_argmax finds; the backward of that
 * forward adds each output's gradient there, in output order, without
 * reading the input, and any other channels-first max backward finds the
 * positions again the same way, a row at a time. */
int pool_records(const pool_geom *g, pool_op op)
{
    return op == POOL_MAX && g->channels_first && g->kh * g->kw < POOL_POS_NONE &&
           !(g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->pt == 0 && g->pl == 0);
}

static void record_row(const pool_geom *g, const float *restrict xp, float *restrict yr,
                       uint8_t *restrict pr, int64_t oh)
{
    const int64_t hs = oh * g->sh - g->pt;
    for (int64_t ow = 0; ow < g->OW; ow++) {
        int64_t h0, h1, w0, w1;
        window(g, oh, ow, &h0, &h1, &w0, &w1);
        const int64_t ws = ow * g->sw - g->pl;
        float bv = -INFINITY;
        int64_t bp = h1 > h0 && w1 > w0 ? (h0 - hs) * g->kw + (w0 - ws) : POOL_POS_NONE;
        for (int64_t ih = h0; ih < h1; ih++)
            for (int64_t iw = w0; iw < w1; iw++)
                if (xp[ih * g->W + iw] > bv) {
                    bv = xp[ih * g->W + iw];
                    bp = (ih - hs) * g->kw + (iw - ws);
                }
        yr[ow] = bv;
        pr[ow] = (uint8_t)bp;
    }
}

#ifdef POOL_X86
/* Lanes t < 16 with 0 <= c0 + t < W. */
static inline __mmask16 span_mask(int64_t c0, int64_t W)
{
    int64_t lo = c0 < 0 ? -c0 : 0, hi = W - c0;
    lo = lo > 16 ? 16 : lo;
    hi = hi < 0 ? 0 : hi > 16 ? 16 : hi;
    if (lo >= hi)
        return 0;
    return (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

/* row[c0 + t], t < 16, -inf outside [0, W): a plain load inside the row
 * (masked loads that suppress lanes cost far more on some cores). */
__attribute__((target("avx512f"))) static inline __m512 load_span(const float *row, int64_t c0,
                                                                  int64_t W, __m512 ninf)
{
    if (c0 >= 0 && c0 + 16 <= W)
        return _mm512_loadu_ps(row + c0);
    return _mm512_mask_loadu_ps(ninf, span_mask(c0, W), row + c0);
}

/* record_row for strides 1 and 2 along the row: 16 outputs at a time; a
 * window column is one masked load (stride 1) or the even lanes of two
 * (stride 2), -inf outside the row. The same order and comparisons as
 * record_row: the same values and positions. */
__attribute__((target("avx512f"))) static void
record_row_avx512(const pool_geom *g, const float *xp, float *yr, uint8_t *pr, int64_t oh)
{
    const int64_t hs = oh * g->sh - g->pt, sw = g->sw;
    const int64_t i0 = hs < 0 ? -hs : 0, i1 = hs + g->kh > g->H ? g->H - hs : g->kh;
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i even = _mm512_add_epi32(lane, lane);
    const __m512i zero = _mm512_setzero_si512();
    for (int64_t ow0 = 0; ow0 < g->OW; ow0 += 16) {
        const int64_t n = g->OW - ow0 < 16 ? g->OW - ow0 : 16;
        const __mmask16 m = (__mmask16)(n >= 16 ? 0xffff : (1u << n) - 1);
        /* each window's first valid position, or none */
        const __m512i ws = _mm512_sub_epi32(
            _mm512_mullo_epi32(_mm512_add_epi32(_mm512_set1_epi32((int)ow0), lane),
                               _mm512_set1_epi32((int)sw)),
            _mm512_set1_epi32((int)g->pl));
        __m512i bp = _mm512_add_epi32(_mm512_set1_epi32((int)(i0 * g->kw)),
                                      _mm512_max_epi32(zero, _mm512_sub_epi32(zero, ws)));
        const __m512i we = _mm512_add_epi32(ws, _mm512_set1_epi32((int)g->kw));
        __mmask16 none = _mm512_cmpge_epi32_mask(ws, _mm512_set1_epi32((int)g->W)) |
                         _mm512_cmple_epi32_mask(we, zero);
        if (i0 >= i1)
            none = 0xffff;
        bp = _mm512_mask_mov_epi32(bp, none, _mm512_set1_epi32(POOL_POS_NONE));
        __m512 bv = ninf;
        for (int64_t i = i0; i < i1; i++) {
            const float *row = xp + (hs + i) * g->W;
            for (int64_t j = 0; j < g->kw; j++) {
                const int64_t c0 = ow0 * sw - g->pl + j;
                __m512 v = load_span(row, c0, g->W, ninf);
                if (sw == 2)
                    v = _mm512_permutex2var_ps(v, even, load_span(row, c0 + 16, g->W, ninf));
                const __mmask16 up = _mm512_mask_cmp_ps_mask(m, v, bv, _CMP_GT_OQ);
                bv = _mm512_mask_mov_ps(bv, up, v);
                bp = _mm512_mask_mov_epi32(bp, up, _mm512_set1_epi32((int)(i * g->kw + j)));
            }
        }
        _mm512_mask_storeu_ps(yr + ow0, m, bv);
        _mm512_mask_cvtepi32_storeu_epi8(pr + ow0, m, bp);
    }
}
#endif

/* Whether record_row_avx512 serves a geometry on this CPU. */
static int record_avx512(const pool_geom *g)
{
    return pool_avx512() && (g->sw == 1 || g->sw == 2) && g->W < INT32_MAX / 4 &&
           g->OW < INT32_MAX / 4;
}

static void record_any_row(const pool_geom *g, int avx512, const float *xp, float *yr, uint8_t *pr,
                           int64_t oh)
{
#ifdef POOL_X86
    if (avx512) {
        record_row_avx512(g, xp, yr, pr, oh);
        return;
    }
#endif
    (void)avx512;
    record_row(g, xp, yr, pr, oh);
}

/* Window position -> offset in the plane from the window's corner. */
static void position_offsets(const pool_geom *g, int64_t *at)
{
    for (int64_t p = 0; p < g->kh * g->kw; p++)
        at[p] = (p / g->kw) * g->W + p % g->kw;
}

/* Output row oh's gradients dyr added at its recorded positions pr, in
 * output order. */
static void scatter_row(const pool_geom *g, const int64_t *at, const uint8_t *restrict pr,
                        const float *restrict dyr, float *restrict dxp, int64_t oh)
{
    const int64_t corner = (oh * g->sh - g->pt) * g->W - g->pl;
    for (int64_t ow = 0; ow < g->OW; ow++)
        if (pr[ow] != POOL_POS_NONE)
            dxp[corner + ow * g->sw + at[pr[ow]]] += dyr[ow];
}

void pool_forward_record(const pool_geom *g, const float *x, float *y, uint8_t *pos,
                         int nthreads)
{
    const int64_t rows = g->N * g->C * g->OH;
    const int avx512 = record_avx512(g);
#pragma omp parallel for schedule(static) num_threads(nthreads) if (rows * g->OW >= POOL_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t plane = r / g->OH, oh = r % g->OH;
        record_any_row(g, avx512, x + plane * g->H * g->W, y + r * g->OW, pos + r * g->OW, oh);
    }
}

void pool_backward_recorded(const pool_geom *g, const uint8_t *pos, const float *dy, float *dx,
                            int nthreads)
{
    const int64_t planes = g->N * g->C, hw = g->H * g->W, ohw = g->OH * g->OW;
    int64_t at[POOL_POS_NONE];
    position_offsets(g, at);
#pragma omp parallel for schedule(static) num_threads(nthreads) if (planes * hw >= POOL_PAR_MIN)
    for (int64_t p = 0; p < planes; p++) {
        memset(dx + p * hw, 0, (size_t)hw * sizeof(float));
        for (int64_t oh = 0; oh < g->OH; oh++)
            scatter_row(g, at, pos + p * ohw + oh * g->OW, dy + p * ohw + oh * g->OW, dx + p * hw,
                        oh);
    }
}

/* Rows of at most this many outputs find a channels-first backward's
 * maxima again row by row as the recording forward does (on the stack);
 * longer ones window by window. */
#define POOL_ROW_MAX 2048

/* Channels-first backward of one (image, channel) plane: zero it, then each
 * output adds its gradient to its window (average) or to the element of its
 * window the forward took (max; with at, the positions' offsets, found row
 * by row as the recording forward does). Planes are disjoint. */
static void cf_backward_plane(const pool_geom *g, pool_op op, int include_pad,
                              const float *restrict xp, const float *restrict dyp,
                              float *restrict dxp, const int64_t *at, int avx512)
{
    const int64_t W = g->W;
    memset(dxp, 0, (size_t)(g->H * W) * sizeof(float));
    if (at) {
        float yr[POOL_ROW_MAX];
        uint8_t pr[POOL_ROW_MAX];
        for (int64_t oh = 0; oh < g->OH; oh++) {
            record_any_row(g, avx512, xp, yr, pr, oh);
            scatter_row(g, at, pr, dyp + oh * g->OW, dxp, oh);
        }
        return;
    }
    const int tile2 = op == POOL_MAX && g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 &&
                      g->pt == 0 && g->pl == 0;
    for (int64_t oh = 0; oh < g->OH; oh++) {
        const float *dyr = dyp + oh * g->OW;
        int64_t ow = 0;
        if (tile2 && 2 * oh + 1 < g->H) {
            /* whole 2x2 windows: ow < W / 2 */
            const float *restrict r0 = xp + 2 * oh * W, *restrict r1 = r0 + W;
            float *restrict d0 = dxp + 2 * oh * W, *restrict d1 = d0 + W;
            const int64_t full = W / 2 < g->OW ? W / 2 : g->OW;
            max2x2_backward(r0, r0 + 1, r1, r1 + 1, dyr, d0, d0 + 1, d1, d1 + 1, full, 2);
            ow = full;
        }
        for (; ow < g->OW; ow++) {
            if (op == POOL_MAX) {
                const int64_t best = cf_argmax(g, xp, oh, ow);
                if (best >= 0)
                    dxp[best] += dyr[ow];
                continue;
            }
            int64_t h0, h1, w0, w1;
            window(g, oh, ow, &h0, &h1, &w0, &w1);
            const float v = dyr[ow] * (1.0f / avg_count(g, include_pad, h0, h1, w0, w1));
            for (int64_t ih = h0; ih < h1; ih++)
                for (int64_t iw = w0; iw < w1; iw++)
                    dxp[ih * W + iw] += v;
        }
    }
}

void pool_backward(const pool_geom *g, pool_op op, int include_pad, const float *x,
                   const float *dy, float *dx, int nthreads)
{
    const strides si = in_strides(g), so = out_strides(g);
    if (g->channels_first) {
        const int64_t planes = g->N * g->C, hw = g->H * g->W, ohw = g->OH * g->OW;
        int64_t at[POOL_POS_NONE];
        const int rows = pool_records(g, op) && g->OW <= POOL_ROW_MAX;
        if (rows)
            position_offsets(g, at);
        const int avx512 = rows && record_avx512(g);
#pragma omp parallel for schedule(static) num_threads(nthreads) if (planes * hw >= POOL_PAR_MIN)
        for (int64_t p = 0; p < planes; p++)
            cf_backward_plane(g, op, include_pad, x + p * hw, dy + p * ohw, dx + p * hw,
                              rows ? at : NULL, avx512);
        return;
    }
    /* channels_last: one task per image, every channel in one pass */
#pragma omp parallel for schedule(static) num_threads(nthreads) \
    if (g->N * g->H * g->W * g->C >= POOL_PAR_MIN)
    for (int64_t n = 0; n < g->N; n++) {
        float *dxn = dx + n * si.n;
        const float *xn = x + n * si.n;
        memset(dxn, 0, (size_t)(g->H * g->W * g->C) * sizeof(float));
        for (int64_t oh = 0; oh < g->OH; oh++)
            for (int64_t ow = 0; ow < g->OW; ow++) {
                int64_t h0, h1, w0, w1;
                window(g, oh, ow, &h0, &h1, &w0, &w1);
                const float *dyo = dy + n * so.n + oh * so.h + ow * so.w;
                if (op == POOL_AVG) {
                    const float inv = 1.0f / avg_count(g, include_pad, h0, h1, w0, w1);
                    for (int64_t ih = h0; ih < h1; ih++)
                        for (int64_t iw = w0; iw < w1; iw++)
                            for (int64_t c = 0; c < g->C; c++)
                                dxn[ih * si.h + iw * si.w + c] += dyo[c] * inv;
                    continue;
                }
                if (h1 - h0 == 2 && w1 - w0 == 2 && g->kh == 2 && g->kw == 2 && g->sh >= 2 &&
                    g->sw >= 2) {
                    /* a whole 2x2 window that overlaps no other one */
                    const int64_t at = h0 * si.h + w0 * si.w;
                    const float *x0 = xn + at, *x1 = x0 + si.h;
                    float *d0 = dxn + at, *d1 = d0 + si.h;
                    max2x2_backward(x0, x0 + g->C, x1, x1 + g->C, dyo, d0, d0 + g->C, d1,
                                    d1 + g->C, g->C, 1);
                    continue;
                }
                int64_t cv = 0;   /* channels done 16 at a time */
                if (h1 > h0 && w1 > w0) {
                    const int64_t ww = w1 - w0;
                    for (; cv + POOL_CBLK <= g->C; cv += POOL_CBLK) {
                        /* first maximum in window order, as below */
                        int32_t bk[POOL_CBLK];
                        float bv[POOL_CBLK];
                        for (int k = 0; k < POOL_CBLK; k++) {
                            bk[k] = 0;
                            bv[k] = -INFINITY;
                        }
                        int32_t pos = 0;
                        for (int64_t ih = h0; ih < h1; ih++)
                            for (int64_t iw = w0; iw < w1; iw++, pos++) {
                                const float *xa = xn + ih * si.h + iw * si.w + cv;
                                for (int k = 0; k < POOL_CBLK; k++) {
                                    const int32_t up = -(int32_t)(xa[k] > bv[k]);
                                    bv[k] = xa[k] > bv[k] ? xa[k] : bv[k];
                                    bk[k] = (bk[k] & ~up) | (pos & up);
                                }
                            }
                        for (int k = 0; k < POOL_CBLK; k++) {
                            const int64_t ih = h0 + bk[k] / ww, iw = w0 + bk[k] % ww;
                            dxn[ih * si.h + iw * si.w + cv + k] += dyo[cv + k];
                        }
                    }
                }
                for (int64_t c = cv; c < g->C; c++) {
                    int64_t best = -1;
                    float bv = -INFINITY;
                    for (int64_t ih = h0; ih < h1; ih++)
                        for (int64_t iw = w0; iw < w1; iw++) {
                            const int64_t at = ih * si.h + iw * si.w + c;
                            if (best < 0)
                                best = at;
                            if (xn[at] > bv) {
                                best = at;
                                bv = xn[at];
                            }
                        }
                    if (best >= 0)
                        dxn[best] += dyo[c];
                }
            }
    }
}

/* Global pooling, channels-last: one task per (image, block of GCB
 * channels), positions walked in order with the block's channels side by
 * side, so every read is contiguous and the channel loop vectorizes. */
#define GCB 64

static void global_forward_cl(const pool_geom *g, pool_op op, const float *x, float *y,
                              int nthreads)
{
    const int64_t C = g->C, hw = g->H * g->W, ncb = (C + GCB - 1) / GCB;
#pragma omp parallel for schedule(static) num_threads(nthreads) \
    if (g->N * C * hw >= POOL_PAR_MIN)
    for (int64_t t = 0; t < g->N * ncb; t++) {
        const int64_t n = t / ncb, c0 = (t % ncb) * GCB, nc = C - c0 < GCB ? C - c0 : GCB;
        const float *xn = x + n * hw * C + c0;
        float *yn = y + n * C + c0;
        if (op == POOL_MAX) {
            float m[GCB];
            for (int64_t k = 0; k < nc; k++)
                m[k] = -INFINITY;
            for (int64_t p = 0; p < hw; p++)
                for (int64_t k = 0; k < nc; k++)
                    m[k] = xn[p * C + k] > m[k] ? xn[p * C + k] : m[k];
            for (int64_t k = 0; k < nc; k++)
                yn[k] = m[k];
        } else {
            double acc[GCB];
            for (int64_t k = 0; k < nc; k++)
                acc[k] = 0.0;
            for (int64_t p = 0; p < hw; p++)
                for (int64_t k = 0; k < nc; k++)
                    acc[k] += xn[p * C + k];
            for (int64_t k = 0; k < nc; k++)
                yn[k] = hw ? (float)(acc[k] / (double)hw) : 0.0f;
        }
    }
}

static void global_backward_cl(const pool_geom *g, pool_op op, const float *x, const float *dy,
                               float *dx, int nthreads)
{
    const int64_t C = g->C, hw = g->H * g->W, ncb = (C + GCB - 1) / GCB;
#pragma omp parallel for schedule(static) num_threads(nthreads) \
    if (g->N * C * hw >= POOL_PAR_MIN)
    for (int64_t t = 0; t < g->N * ncb; t++) {
        const int64_t n = t / ncb, c0 = (t % ncb) * GCB, nc = C - c0 < GCB ? C - c0 : GCB;
        const float *xn = x + n * hw * C + c0, *dyn = dy + n * C + c0;
        float *dxn = dx + n * hw * C + c0;
        if (op == POOL_AVG) {
            float v[GCB];
            for (int64_t k = 0; k < nc; k++)
                v[k] = hw ? dyn[k] / (float)hw : 0.0f;
            for (int64_t p = 0; p < hw; p++)
                for (int64_t k = 0; k < nc; k++)
                    dxn[p * C + k] = v[k];
            continue;
        }
        /* the first maximum of each channel, as in the channels-first loop */
        float bv[GCB];
        int64_t best[GCB];
        for (int64_t k = 0; k < nc; k++) {
            bv[k] = -INFINITY;
            best[k] = 0;
        }
        for (int64_t p = 0; p < hw; p++)
            for (int64_t k = 0; k < nc; k++) {
                const float v = xn[p * C + k];
                best[k] = v > bv[k] ? p : best[k];
                bv[k] = v > bv[k] ? v : bv[k];
            }
        for (int64_t p = 0; p < hw; p++)
            for (int64_t k = 0; k < nc; k++)
                dxn[p * C + k] = p == best[k] ? dyn[k] : 0.0f;
    }
}

void global_forward(const pool_geom *g, pool_op op, const float *x, float *y, int nthreads)
{
    if (!g->channels_first) {
        global_forward_cl(g, op, x, y, nthreads);
        return;
    }
    const strides si = in_strides(g);
    const int64_t pairs = g->N * g->C, hw = g->H * g->W;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (pairs * hw >= POOL_PAR_MIN)
    for (int64_t t = 0; t < pairs; t++) {
        const int64_t n = t / g->C, c = t % g->C;
        const float *xi = x + n * si.n + c * si.c;
        const int64_t step = 1;
        if (op == POOL_MAX) {
            float m = -INFINITY;
            for (int64_t p = 0; p < hw; p++)
                m = xi[p * step] > m ? xi[p * step] : m;
            y[t] = m;
        } else {
            double s = 0.0;
            for (int64_t p = 0; p < hw; p++)
                s += xi[p * step];
            y[t] = hw ? (float)(s / (double)hw) : 0.0f;
        }
    }
}

void global_backward(const pool_geom *g, pool_op op, const float *x, const float *dy, float *dx,
                     int nthreads)
{
    if (!g->channels_first) {
        global_backward_cl(g, op, x, dy, dx, nthreads);
        return;
    }
    const strides si = in_strides(g);
    const int64_t pairs = g->N * g->C, hw = g->H * g->W;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (pairs * hw >= POOL_PAR_MIN)
    for (int64_t t = 0; t < pairs; t++) {
        const int64_t n = t / g->C, c = t % g->C;
        const int64_t step = 1;
        const float *xi = x + n * si.n + c * si.c;
        float *di = dx + n * si.n + c * si.c;
        if (op == POOL_AVG) {
            const float v = hw ? dy[t] / (float)hw : 0.0f;
            for (int64_t p = 0; p < hw; p++)
                di[p * step] = v;
            continue;
        }
        int64_t best = 0;
        float bv = -INFINITY;
        for (int64_t p = 0; p < hw; p++) {
            di[p * step] = 0.0f;
            if (xi[p * step] > bv) {
                best = p;
                bv = xi[p * step];
            }
        }
        if (hw)
            di[best * step] = dy[t];
    }
}
