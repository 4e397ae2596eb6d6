/*
 * BatchNormalization fast kernels: float32 data, OpenMP, deterministic.
 *
 * Layout: x is [outer, C, inner]. Two shapes of hot loop share one
 * formulation:
 *   channels-first (inner > 1): a channel is `outer` contiguous runs of
 *     `inner` floats; loops vectorize along inner with a scalar coefficient.
 *   channels-last (inner == 1): x is [rows, C]; loops vectorize along the
 *     channels of a row (C >= SPAN), or along a "span" of SPAN / C whole
 *     rows with per-lane coefficients repeated every C lanes (so C = 3
 *     still fills vectors).
 *
 * Reductions (statistics, backward sums) cut the tensor into at most
 * NNP_BN_MAX_BLOCKS items whose bounds depend only on the shape; each item
 * writes its own double partial sums per channel, combined afterwards in
 * item order. Hence bitwise-identical results for any thread count.
 */
#include "kernels.h"

#include <float.h>
#include <math.h>
#include <omp.h>


enum {
    SPAN = 64,          /* channels-last, C < SPAN: floats per packed span */
    CHUNK_SPANS = 64,   /* channels-last: spans summed in float before a double flush */
    WIDE = 512,         /* channels-last, C >= SPAN: channels per tile */
    CHUNK_ROWS = 64,    /* channels-last, wide: rows summed in float before a flush */
    FOUR_ROWS_MIN = 128, /* channels-last statistics: tile width for four rows a pass */
    CHUNK_RUN = 512,    /* channels-first: floats summed in float before a double flush */
    MIN_BLOCK = 4096,   /* elements per reduction item at least: amortizes the combine */
    PIECE = 8192,       /* channels-first elementwise work item */
    FLAT = 16384,       /* channels-first, short rows: flat elementwise work item */
    PERIOD_MAX = 1024,  /* channels-first rows up to this long: the permute (period) path */
    PAR_MIN = 1 << 16,  /* below this many elements, stay on one thread */
    PARTIALS_MAX = 1 << 17, /* items * channels at most (2 MiB of partial sums) */
    SHIFT_SAMPLES = 16, /* elements averaged for the statistics shift */
    CH_COST = 128,      /* a channel's coefficients (a division, a square root) in
                           elements of a pass: wide layers share them out */
    NT_MIN = 1 << 22    /* elementwise outputs of this many floats (16 MiB) bypass the caches */
};

/* A ReLU after the layer in a training backward (nnp_bn_backward_train_relu):
 * the gradient arriving is that of max(y, 0), so each element's
 * g = z > 0 ? dy : 0, z = (x - k)*fa + fb computed as the forward computed
 * y, is written back over the gradient (at the member dy) and summed in its
 * place. bn_relu holds the channels' coefficients, bn_mask one channel's. */
typedef struct bn_relu {
    const float *fa, *fb;
    float *dy;
} bn_relu;
typedef struct bn_mask {
    float fa, fb;
    float *dy;
} bn_mask;

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

#if defined(__AVX512F__)
#include <immintrin.h>
#define BN_VEC512 1
/* Sums of e = x - k and e*e over px[0, len), in float with two independent
 * accumulator pairs (latency, not throughput, bounds short runs) and a
 * masked tail; the order depends only on len. */
static inline void v_stats(const float *px, int64_t len, float k, float *o1, float *o2)
{
    const __m512 vk = _mm512_set1_ps(k);
    __m512 a1 = _mm512_setzero_ps(), b1 = a1, a2 = a1, b2 = a1;
    int64_t t = 0;
    for (; t + 32 <= len; t += 32) {
        __m512 e0 = _mm512_sub_ps(_mm512_loadu_ps(px + t), vk);
        __m512 e1 = _mm512_sub_ps(_mm512_loadu_ps(px + t + 16), vk);
        a1 = _mm512_add_ps(a1, e0);
        b1 = _mm512_add_ps(b1, e1);
        a2 = _mm512_fmadd_ps(e0, e0, a2);
        b2 = _mm512_fmadd_ps(e1, e1, b2);
    }
    if (t + 16 <= len) {
        __m512 e0 = _mm512_sub_ps(_mm512_loadu_ps(px + t), vk);
        a1 = _mm512_add_ps(a1, e0);
        a2 = _mm512_fmadd_ps(e0, e0, a2);
        t += 16;
    }
    if (t < len) {
        /* the tail: an unmasked load ending at len when that is in the run,
         * the lanes already summed zeroed */
        __m512 e1;
        if (len >= 16) {
            __mmask16 m = (__mmask16)(0xFFFFu << (16 - (len - t)));
            e1 = _mm512_maskz_sub_ps(m, _mm512_loadu_ps(px + len - 16), vk);
        } else {
            __mmask16 m = (__mmask16)((1u << (len - t)) - 1u);
            e1 = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, px + t), vk);
        }
        b1 = _mm512_add_ps(b1, e1);
        b2 = _mm512_fmadd_ps(e1, e1, b2);
    }
    *o1 = _mm512_reduce_add_ps(_mm512_add_ps(a1, b1));
    *o2 = _mm512_reduce_add_ps(_mm512_add_ps(a2, b2));
}
/* The backward sums of v_stats' shape: g = dy and g*(x - k) over [0, len).
 * With gw (a ReLU after the layer, see bn_mask): g = z > 0 ? dy : 0 with
 * z = (x - k)*fa + fb, the forward's value before its max(., 0), written
 * to gw; the same sums of that g. */
static inline __attribute__((always_inline)) void
v_bsums_impl(const float *px, const float *pg, float *gw, int64_t len, float k, float fa,
             float fb, float *o1, float *o2)
{
    const __m512 vk = _mm512_set1_ps(k), va = _mm512_set1_ps(fa), vb = _mm512_set1_ps(fb);
    const __m512 z = _mm512_setzero_ps();
    __m512 a1 = z, b1 = a1, a2 = a1, b2 = a1;
#define BN_GMASK(g, e, m, at)                                                              \
    if (gw) {                                                                              \
        g = _mm512_maskz_mov_ps(_mm512_mask_cmp_ps_mask(m, _mm512_fmadd_ps(e, va, vb), z,    \
                                                        _CMP_GT_OQ), g);                   \
        _mm512_mask_storeu_ps(gw + (at), m, g);                                            \
    }
    int64_t t = 0;
    for (; t + 32 <= len; t += 32) {
        __m512 g0 = _mm512_loadu_ps(pg + t), g1 = _mm512_loadu_ps(pg + t + 16);
        const __m512 e0 = _mm512_sub_ps(_mm512_loadu_ps(px + t), vk);
        const __m512 e1 = _mm512_sub_ps(_mm512_loadu_ps(px + t + 16), vk);
        BN_GMASK(g0, e0, 0xFFFF, t)
        BN_GMASK(g1, e1, 0xFFFF, t + 16)
        a1 = _mm512_add_ps(a1, g0);
        b1 = _mm512_add_ps(b1, g1);
        a2 = _mm512_fmadd_ps(g0, e0, a2);
        b2 = _mm512_fmadd_ps(g1, e1, b2);
    }
    if (t + 16 <= len) {
        __m512 g0 = _mm512_loadu_ps(pg + t);
        const __m512 e0 = _mm512_sub_ps(_mm512_loadu_ps(px + t), vk);
        BN_GMASK(g0, e0, 0xFFFF, t)
        a1 = _mm512_add_ps(a1, g0);
        a2 = _mm512_fmadd_ps(g0, e0, a2);
        t += 16;
    }
    if (t < len) {
        __m512 g1, e1;
        if (len >= 16) {
            __mmask16 m = (__mmask16)(0xFFFFu << (16 - (len - t)));
            g1 = _mm512_maskz_mov_ps(m, _mm512_loadu_ps(pg + len - 16));
            e1 = _mm512_maskz_sub_ps(m, _mm512_loadu_ps(px + len - 16), vk);
            BN_GMASK(g1, e1, m, len - 16)
        } else {
            __mmask16 m = (__mmask16)((1u << (len - t)) - 1u);
            g1 = _mm512_maskz_loadu_ps(m, pg + t);
            e1 = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, px + t), vk);
            BN_GMASK(g1, e1, m, t)
        }
        b1 = _mm512_add_ps(b1, g1);
        b2 = _mm512_fmadd_ps(g1, e1, b2);
    }
    *o1 = _mm512_reduce_add_ps(_mm512_add_ps(a1, b1));
    *o2 = _mm512_reduce_add_ps(_mm512_add_ps(a2, b2));
}
static inline void v_bsums(const float *px, const float *pg, int64_t len, float k, float *o1,
                           float *o2)
{
    v_bsums_impl(px, pg, NULL, len, k, 0.0f, 0.0f, o1, o2);
}
static void v_bsums_relu(const float *px, const float *pg, float *gw, int64_t len, float k,
                         float fa, float fb, float *o1, float *o2)
{
    v_bsums_impl(px, pg, gw, len, k, fa, fb, o1, o2);
}
/* The backward sums of channels-first rows [r0, r1) of `inner` floats (row
 * r: channel r % C, shift k[c]): dy and dy*(x - k), in float per row, each
 * row's added to q1/q2[c] in double. The walk goes by the tensor's own
 * 16-float vectors (flat index multiples of 16: aligned loads for 64-byte
 * aligned tensors, the same sums at any address), a vector that holds row
 * ends split between the rows by masks, so short rows cost no unaligned
 * loads and tails as per-run sums do (rows of 196 floats: 1.2 -> 0.96 ms
 * for the pass over [128,256,14,14], one thread). */
static inline __attribute__((always_inline)) void
v_bsums_rows_impl(const float *x, const float *dy, float *gw, int64_t r0, int64_t r1,
                  int64_t inner, int64_t C, const float *k, const float *fa, const float *fb,
                  double *q1, double *q2)
{
    const __m512 z = _mm512_setzero_ps();
    int64_t row = r0, c = r0 % C, rend = (r0 + 1) * inner;
    int64_t p = r0 * inner / 16 * 16;
    __mmask16 live = (__mmask16)(0xFFFFu << (r0 * inner - p)); /* lanes from row r0 on */
    __m512 vk = _mm512_set1_ps(k[c]), a1 = z, a2 = z;
    __m512 va = gw ? _mm512_set1_ps(fa[c]) : z, vb = gw ? _mm512_set1_ps(fb[c]) : z;
    for (;; p += 16) {
        if (live == 0xFFFF && p + 16 < rend) {
            __m512 g = _mm512_loadu_ps(dy + p);
            const __m512 e = _mm512_sub_ps(_mm512_loadu_ps(x + p), vk);
            BN_GMASK(g, e, 0xFFFF, p)
            a1 = _mm512_add_ps(a1, g);
            a2 = _mm512_fmadd_ps(g, e, a2);
            continue;
        }
        /* the live lanes below rend - p belong to the current row */
        for (;;) {
            const int64_t lim = rend - p;
            const __mmask16 m = lim >= 16 ? live : (__mmask16)(live & ((1u << lim) - 1u));
            __m512 g = _mm512_maskz_loadu_ps(m, dy + p);
            const __m512 e = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + p), vk);
            BN_GMASK(g, e, m, p)
            a1 = _mm512_add_ps(a1, g);
            a2 = _mm512_fmadd_ps(g, e, a2);
            if (lim > 16) /* the row goes on past this vector */
                break;
            q1[c] += _mm512_reduce_add_ps(a1);
            q2[c] += _mm512_reduce_add_ps(a2);
            a1 = a2 = z;
            if (++row == r1)
                return;
            c = c + 1 == C ? 0 : c + 1;
            rend += inner;
            vk = _mm512_set1_ps(k[c]);
            if (gw) {
                va = _mm512_set1_ps(fa[c]);
                vb = _mm512_set1_ps(fb[c]);
            }
            live = (__mmask16)(live & ~m);
            if (!live)
                break;
        }
        live = 0xFFFF;
    }
}
static void v_bsums_rows(const float *x, const float *dy, int64_t r0, int64_t r1, int64_t inner,
                         int64_t C, const float *k, double *q1, double *q2)
{
    v_bsums_rows_impl(x, dy, NULL, r0, r1, inner, C, k, NULL, NULL, q1, q2);
}
static void v_bsums_rows_relu(const float *x, const float *dy, float *gw, int64_t r0, int64_t r1,
                              int64_t inner, int64_t C, const float *k, const float *fa,
                              const float *fb, double *q1, double *q2)
{
    v_bsums_rows_impl(x, dy, gw, r0, r1, inner, C, k, fa, fb, q1, q2);
}
#undef BN_GMASK
/* One channels-first run of the elementwise pass, per-channel scalars:
 * mode 0: x*a + b; 1: (x - k)*a + b; 2: dy*a + (x - k)*b + c; 3: mode 1's
 * value, then max(., 0) (a ReLU after the layer). With nt the
 * 64-byte aligned body is written with streaming stores (the same values). */
static inline __m512 v_ew(int mode, const float *px, const float *pg, int64_t t, __m512 va,
                          __m512 vb, __m512 vk, __m512 vc, __mmask16 m)
{
    __m512 x = _mm512_maskz_loadu_ps(m, px + t);
    if (mode == 0)
        return _mm512_fmadd_ps(x, va, vb);
    if (mode == 1)
        return _mm512_fmadd_ps(_mm512_sub_ps(x, vk), va, vb);
    if (mode == 3) /* max(y, 0): y > 0 ? y : 0, NaN to 0 as the ReLU layer */
        return _mm512_max_ps(_mm512_fmadd_ps(_mm512_sub_ps(x, vk), va, vb), _mm512_setzero_ps());
    __m512 g = _mm512_maskz_loadu_ps(m, pg + t);
    return _mm512_add_ps(_mm512_fmadd_ps(g, va, _mm512_mul_ps(_mm512_sub_ps(x, vk), vb)), vc);
}
static inline void v_run(int mode, int nt, const float *px, const float *pg, float *po,
                         int64_t len, float a, float b, float k, float c)
{
    const __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b);
    const __m512 vk = _mm512_set1_ps(k), vc = _mm512_set1_ps(c);
    int64_t t = 0;
    if (nt) {
        int64_t head = (int64_t)((64 - ((uintptr_t)po & 63)) & 63);
        if (head % 4 == 0) {
            head = min64(head / 4, len);
            if (head) {
                __mmask16 m = (__mmask16)((1u << head) - 1u);
                _mm512_mask_storeu_ps(po, m, v_ew(mode, px, pg, 0, va, vb, vk, vc, m));
                t = head;
            }
            for (; t + 16 <= len; t += 16)
                _mm512_stream_ps(po + t, v_ew(mode, px, pg, t, va, vb, vk, vc, 0xFFFF));
        }
    }
    for (; t + 16 <= len; t += 16)
        _mm512_storeu_ps(po + t, v_ew(mode, px, pg, t, va, vb, vk, vc, 0xFFFF));
    if (t < len) {
        __mmask16 m = (__mmask16)((1u << (len - t)) - 1u);
        _mm512_mask_storeu_ps(po + t, m, v_ew(mode, px, pg, t, va, vb, vk, vc, m));
    }
}
/* Channels-first elementwise pass over the flat range [s, e) of a tensor
 * with rows of inner >= 16 floats (row r is channel r % C): vectors follow
 * the output's 64-byte alignment, not the rows, so short rows cost no
 * masked tail each and, with nt, every full vector is a streaming store of
 * a whole line. A vector that crosses a row end takes each lane's channel
 * coefficients by mask; each element gets the same operations as v_run. */
static inline void v_flat(int mode, int nt, const float *x, const float *dy, float *out,
                          int64_t s, int64_t e, int64_t inner, int64_t C, const float *ka,
                          const float *ca, const float *cb, const float *cc)
{
    const __m512 z = _mm512_setzero_ps();
    int64_t row = s / inner, rend = (row + 1) * inner, c = row % C;
    int64_t cn = c + 1 == C ? 0 : c + 1;
    __m512 a0 = _mm512_set1_ps(ca[c]), b0 = _mm512_set1_ps(cb[c]);
    __m512 k0 = mode ? _mm512_set1_ps(ka[c]) : z, c0 = mode == 2 ? _mm512_set1_ps(cc[c]) : z;
    int64_t p = s;
    while (p < e) {
        const int64_t mis = (int64_t)(((uintptr_t)(out + p) >> 2) & 15);
        const int64_t len = min64(16 - mis, e - p);
        if (len == 16 && p + 16 <= rend) {
            /* the body: whole aligned vectors inside the row */
            const int64_t lim = min64(rend, e);
            if (nt) {
                for (; p + 16 <= lim; p += 16)
                    _mm512_stream_ps(out + p, v_ew(mode, x, dy, p, a0, b0, k0, c0, 0xFFFF));
            } else {
                for (; p + 16 <= lim; p += 16)
                    _mm512_storeu_ps(out + p, v_ew(mode, x, dy, p, a0, b0, k0, c0, 0xFFFF));
            }
        } else {
            const __mmask16 m = (__mmask16)((1u << len) - 1u);
            __m512 va = a0, vb = b0, vk = k0, vc = c0;
            if (p + len > rend) {
                /* lanes from rend - p on belong to the next row's channel */
                const __mmask16 hi = (__mmask16)(m & ~((1u << (rend - p)) - 1u));
                va = _mm512_mask_blend_ps(hi, a0, _mm512_set1_ps(ca[cn]));
                vb = _mm512_mask_blend_ps(hi, b0, _mm512_set1_ps(cb[cn]));
                if (mode)
                    vk = _mm512_mask_blend_ps(hi, k0, _mm512_set1_ps(ka[cn]));
                if (mode == 2)
                    vc = _mm512_mask_blend_ps(hi, c0, _mm512_set1_ps(cc[cn]));
            }
            __m512 r = v_ew(mode, x, dy, p, va, vb, vk, vc, m);
            if (len == 16 && nt)
                _mm512_stream_ps(out + p, r);
            else
                _mm512_mask_storeu_ps(out + p, m, r);
            p += len;
        }
        if (p >= rend) {
            c = cn;
            cn = c + 1 == C ? 0 : c + 1;
            rend += inner;
            a0 = _mm512_set1_ps(ca[c]);
            b0 = _mm512_set1_ps(cb[c]);
            if (mode)
                k0 = _mm512_set1_ps(ka[c]);
            if (mode == 2)
                c0 = _mm512_set1_ps(cc[c]);
        }
    }
}
/* The P-lane coefficient vector of rows r0 .. r0 + P (row r: channel r % C)
 * of a per-channel array. */
static inline __m512 v_rows(const float *arr, int64_t r0, int64_t C, int64_t P)
{
    const int64_t c0 = r0 % C;
    if (c0 + P <= C)
        return _mm512_maskz_loadu_ps((__mmask16)((1u << P) - 1u), arr + c0);
    float t[16] = {0};
    for (int64_t j = 0; j < P; j++)
        t[j] = arr[(c0 + j) % C];
    return _mm512_loadu_ps(t);
}
/* Channels-first elementwise pass for short rows (inner not a multiple of
 * 16), over [s, e) where s starts a period: P = 16 / gcd(inner, 16) rows
 * make L = P * inner floats, a whole number V = L / 16 of vectors, so every
 * period starts on the same lane and vector v's lanes always belong to the
 * rows idx[16 v .. 16 v + 16) of its period. Each vector takes its
 * coefficients from the period's P-row vectors by one permute: no branch per
 * row, every vector full and (for a 64-byte aligned out) aligned, so with nt
 * every store streams. Same operations per element as v_run. */
static inline void v_period(int mode, int nt, const float *x, const float *dy, float *out,
                            int64_t s, int64_t e, int64_t inner, int64_t C, int64_t P,
                            int64_t V, const uint8_t *idx, const float *ka, const float *ca,
                            const float *cb, const float *cc)
{
    const __m512 z = _mm512_setzero_ps();
    for (int64_t p0 = s; p0 < e; p0 += 16 * V) {
        const int64_t r0 = p0 / inner, pend = min64(p0 + 16 * V, e);
        const __m512 A = v_rows(ca, r0, C, P), B = v_rows(cb, r0, C, P);
        const __m512 K = mode ? v_rows(ka, r0, C, P) : z;
        const __m512 CC = mode == 2 ? v_rows(cc, r0, C, P) : z;
        int64_t p = p0;
        const uint8_t *ix8 = idx;
        for (; p + 16 <= pend; p += 16, ix8 += 16) {
            const __m512i ix = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)ix8));
            const __m512 va = _mm512_permutexvar_ps(ix, A), vb = _mm512_permutexvar_ps(ix, B);
            const __m512 vk = mode ? _mm512_permutexvar_ps(ix, K) : z;
            const __m512 vc = mode == 2 ? _mm512_permutexvar_ps(ix, CC) : z;
            const __m512 r = v_ew(mode, x, dy, p, va, vb, vk, vc, 0xFFFF);
            if (nt)
                _mm512_stream_ps(out + p, r);
            else
                _mm512_storeu_ps(out + p, r);
        }
        if (p < pend) {
            const __mmask16 m = (__mmask16)((1u << (pend - p)) - 1u);
            const __m512i ix = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)ix8));
            const __m512 va = _mm512_permutexvar_ps(ix, A), vb = _mm512_permutexvar_ps(ix, B);
            const __m512 vk = mode ? _mm512_permutexvar_ps(ix, K) : z;
            const __m512 vc = mode == 2 ? _mm512_permutexvar_ps(ix, CC) : z;
            _mm512_mask_storeu_ps(out + p, m, v_ew(mode, x, dy, p, va, vb, vk, vc, m));
        }
    }
}
/* One channels-last span: per-lane coefficient arrays, same modes as v_run;
 * streaming stores for 64-byte aligned full vectors when nt. */
static inline void v_span(int mode, int nt, const float *px, const float *pg, float *po,
                          int64_t len, const float *a, const float *b, const float *k,
                          const float *c)
{
    const __m512 z = _mm512_setzero_ps();
    nt = nt && ((uintptr_t)po & 63) == 0;
    int64_t t = 0;
    for (; t + 16 <= len; t += 16) {
        __m512 va = _mm512_loadu_ps(a + t), vb = _mm512_loadu_ps(b + t);
        __m512 vk = mode ? _mm512_loadu_ps(k + t) : z;
        __m512 vc = mode == 2 ? _mm512_loadu_ps(c + t) : z;
        __m512 x = _mm512_loadu_ps(px + t), r;
        if (mode == 0)
            r = _mm512_fmadd_ps(x, va, vb);
        else if (mode == 1)
            r = _mm512_fmadd_ps(_mm512_sub_ps(x, vk), va, vb);
        else if (mode == 3)
            r = _mm512_max_ps(_mm512_fmadd_ps(_mm512_sub_ps(x, vk), va, vb), z);
        else
            r = _mm512_add_ps(_mm512_fmadd_ps(_mm512_loadu_ps(pg + t), va,
                                              _mm512_mul_ps(_mm512_sub_ps(x, vk), vb)), vc);
        if (nt)
            _mm512_stream_ps(po + t, r);
        else
            _mm512_storeu_ps(po + t, r);
    }
    if (t < len) {
        __mmask16 m = (__mmask16)((1u << (len - t)) - 1u);
        __m512 va = _mm512_maskz_loadu_ps(m, a + t), vb = _mm512_maskz_loadu_ps(m, b + t);
        __m512 vk = mode ? _mm512_maskz_loadu_ps(m, k + t) : z;
        __m512 vc = mode == 2 ? _mm512_maskz_loadu_ps(m, c + t) : z;
        _mm512_mask_storeu_ps(po + t, m, v_ew(mode, px, pg, t, va, vb, vk, vc, m));
    }
}
/* Channels-last with 64 lanes a span (C = 64, or C dividing 64): the floats
 * [f0, f1) of whole rows, starting on a span, with the four vectors of each
 * coefficient array held in registers across spans; the same operations
 * per element as v_span. */
static inline void v_span64(int mode, int nt, const float *x, const float *dy, float *out,
                            int64_t f0, int64_t f1, const float *a, const float *b,
                            const float *k, const float *c)
{
    const __m512 z = _mm512_setzero_ps();
    __m512 A[4], B[4], K[4], CC[4];
    for (int v = 0; v < 4; v++) {
        A[v] = _mm512_loadu_ps(a + 16 * v);
        B[v] = _mm512_loadu_ps(b + 16 * v);
        K[v] = mode ? _mm512_loadu_ps(k + 16 * v) : z;
        CC[v] = mode == 2 ? _mm512_loadu_ps(c + 16 * v) : z;
    }
    nt = nt && ((uintptr_t)(out + f0) & 63) == 0;
    int64_t p = f0;
    for (; p + 64 <= f1; p += 64)
        for (int v = 0; v < 4; v++) {
            const __m512 r = v_ew(mode, x, dy, p + 16 * v, A[v], B[v], K[v], CC[v], 0xFFFF);
            if (nt)
                _mm512_stream_ps(out + p + 16 * v, r);
            else
                _mm512_storeu_ps(out + p + 16 * v, r);
        }
    for (int v = 0; v < 4 && p + 16 * v < f1; v++) {
        const int64_t len = min64(16, f1 - p - 16 * v);
        const __mmask16 m = (__mmask16)((1u << len) - 1u);
        _mm512_mask_storeu_ps(out + p + 16 * v, m,
                              v_ew(mode, x, dy, p + 16 * v, A[v], B[v], K[v], CC[v], m));
    }
}
#endif

#if defined(__AVX2__) && !defined(__AVX512F__)
#include <immintrin.h>
#define BN_VEC256 1
/* Streaming-store forms of the elementwise pass for outputs >= NT_MIN:
 * scalar head and tail up to the 32-byte aligned body (explicit fmaf, the
 * same operations as the vector lanes). Per element, same modes as v_run:
 * 0: x*a + b; 1: (x - k)*a + b; 2: dy*a + (x - k)*b + c; 3: max(mode 1, 0). */
static inline float s8_ew(int mode, float x, float g, float a, float b, float k, float c)
{
    if (mode == 0)
        return fmaf(x, a, b);
    if (mode == 1)
        return fmaf(x - k, a, b);
    if (mode == 3) {
        const float y = fmaf(x - k, a, b);
        return y > 0.0f ? y : 0.0f;
    }
    return fmaf(g, a, (x - k) * b) + c;
}
static inline __m256 v8_ew(int mode, const float *px, const float *pg, int64_t t, __m256 va,
                           __m256 vb, __m256 vk, __m256 vc)
{
    __m256 x = _mm256_loadu_ps(px + t);
    if (mode == 0)
        return _mm256_fmadd_ps(x, va, vb);
    if (mode == 1)
        return _mm256_fmadd_ps(_mm256_sub_ps(x, vk), va, vb);
    if (mode == 3)
        return _mm256_max_ps(_mm256_fmadd_ps(_mm256_sub_ps(x, vk), va, vb), _mm256_setzero_ps());
    return _mm256_add_ps(
        _mm256_fmadd_ps(_mm256_loadu_ps(pg + t), va, _mm256_mul_ps(_mm256_sub_ps(x, vk), vb)), vc);
}
/* Elements before the 32-byte aligned body of po[0, len) (len if none). */
static inline int64_t head8(const float *po, int64_t len)
{
    return min64((int64_t)(((32 - ((uintptr_t)po & 31)) & 31) / 4), len);
}
/* One channels-first run, per-channel scalars. */
static inline void v8_run_nt(int mode, const float *px, const float *pg, float *po, int64_t len,
                             float a, float b, float k, float c)
{
    const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
    const __m256 vk = _mm256_set1_ps(k), vc = _mm256_set1_ps(c);
    int64_t t = 0, h = head8(po, len);
    for (; t < h; t++)
        po[t] = s8_ew(mode, px[t], pg ? pg[t] : 0.0f, a, b, k, c);
    for (; t + 8 <= len; t += 8)
        _mm256_stream_ps(po + t, v8_ew(mode, px, pg, t, va, vb, vk, vc));
    for (; t < len; t++)
        po[t] = s8_ew(mode, px[t], pg ? pg[t] : 0.0f, a, b, k, c);
}
/* One channels-last span, per-lane coefficient arrays (k, c unused by the
 * modes that take none). */
static inline void v8_span_nt(int mode, const float *px, const float *pg, float *po, int64_t len,
                              const float *a, const float *b, const float *k, const float *c)
{
    const __m256 z = _mm256_setzero_ps();
    int64_t t = 0, h = head8(po, len);
    for (; t < h; t++)
        po[t] = s8_ew(mode, px[t], pg ? pg[t] : 0.0f, a[t], b[t], mode ? k[t] : 0.0f,
                      mode == 2 ? c[t] : 0.0f);
    for (; t + 8 <= len; t += 8) {
        __m256 va = _mm256_loadu_ps(a + t), vb = _mm256_loadu_ps(b + t);
        __m256 vk = mode ? _mm256_loadu_ps(k + t) : z;
        __m256 vc = mode == 2 ? _mm256_loadu_ps(c + t) : z;
        _mm256_stream_ps(po + t, v8_ew(mode, px, pg, t, va, vb, vk, vc));
    }
    for (; t < len; t++)
        po[t] = s8_ew(mode, px[t], pg ? pg[t] : 0.0f, a[t], b[t], mode ? k[t] : 0.0f,
                      mode == 2 ? c[t] : 0.0f);
}
#endif

nnp_bn_dims nnp_bn_dims_of(const int64_t *dims, int rank, int axis)
{
    nnp_bn_dims d = {1, dims[axis], 1};
    for (int i = 0; i < axis; i++)
        d.outer *= dims[i];
    for (int i = axis + 1; i < rank; i++)
        d.inner *= dims[i];
    return d;
}

/* Most reduction items for C channels: each item owns 2*C double partial
 * sums that must be zeroed and combined, so wide layers get fewer items
 * (items * C <= PARTIALS_MAX) and the scratch stays small. */
static int64_t max_items(int64_t C)
{
    return min64(max64(PARTIALS_MAX / max64(C, 1), 1), NNP_BN_MAX_BLOCKS);
}

/* Stride between the partial sums of two items: whole 64-byte lines, so
 * that threads flushing neighbouring items do not share cache lines. */
static int64_t item_stride(int64_t C) { return (max64(C, 1) + 7) / 8 * 8; }

size_t nnp_bn_partials_len(int64_t channels)
{
    /* two planes of per-item sums, then two per-channel totals */
    int64_t c = max64(channels, 1);
    return (size_t)(2 * max_items(c) * item_stride(c) + 2 * c);
}

/* One channel is one contiguous run whatever the layout; treating [N,1] as
 * [1,1,N] sends it down the vectorized channels-first path. */
static nnp_bn_dims canon(nnp_bn_dims d)
{
    if (d.channels == 1 && d.inner == 1) {
        d.inner = d.outer;
        d.outer = 1;
    }
    return d;
}

/* The fixed work partition of a reduction. An item is one contiguous
 * stretch of memory, covering whichever channels lie in it, so that each
 * thread streams through memory instead of hopping between channels:
 *   channels-last: a block of whole rows;
 *   channels-first: a block of consecutive runs (run r = n*C + c is the
 *   `inner` floats of sample n, channel c), or a slice of one run when there
 *   are fewer runs than items wanted. */
typedef struct part {
    int cl;           /* channels-last */
    int64_t per;      /* rows (cl) or runs (cf) per item */
    int64_t nblk;     /* blocks of rows or runs */
    int64_t isize;    /* cf: inner elements per item */
    int64_t nib;      /* cf: slices per run */
    int64_t items;    /* independent work items, <= NNP_BN_MAX_BLOCKS */
} part;

static part partition(nnp_bn_dims d)
{
    part p = {0};
    const int64_t total = d.outer * d.channels * d.inner;
    /* at least MIN_BLOCK elements per item, and 64 per channel so that the
     * partial sums cost at most 1/16 of the traffic */
    const int64_t want = min64(max64(total / max64(MIN_BLOCK, 64 * d.channels), 1),
                               max_items(d.channels));
    const int64_t units = d.inner == 1 ? d.outer : d.outer * d.channels;
    p.cl = d.inner == 1;
    p.isize = d.inner;
    p.nib = 1;
    if (units >= want || p.cl) {
        p.per = cdiv(units, want);
        p.nblk = cdiv(units, p.per);
    } else {
        /* few long runs: cut each into q slices, q * runs <= want */
        int64_t q = want / units;
        p.per = 1;
        p.nblk = units;
        p.isize = cdiv(d.inner, q);
        p.nib = cdiv(d.inner, p.isize);
    }
    p.items = p.nblk * p.nib;
    return p;
}

/* Threads for `work` elements split into `items`: one below PAR_MIN so tiny
 * tensors never pay the team start-up. Never affects results. */
static int team(const nnp_bn_args *a, int64_t work, int64_t items)
{
    if (work < PAR_MIN || items < 2)
        return 1;
    int64_t nt = a->nthreads > 0 ? a->nthreads : omp_get_max_threads();
    nt = min64(nt, items);
    return nt < 1 ? 1 : (int)nt;
}

/* Threads for per-channel work (coefficients: a division and a square root
 * each) over C channels in blocks of 64: wide layers share it out. */
static int channel_team(const nnp_bn_args *a, int64_t C)
{
    return team(a, C * CH_COST, cdiv(C, 64));
}

/* Streaming stores are weakly ordered: fence them before the team ends. */
static inline void nt_fence(int nt)
{
#if defined(BN_VEC512) || defined(BN_VEC256)
    if (nt)
        _mm_sfence();
#else
    (void)nt;
#endif
}

/* for (int64_t i = 0; i < n; i++) body, on a team of nt threads (static
 * schedule) when nt > 1, else as a plain loop: libgomp sets up a team even
 * for a region whose if clause is false (an allocation, and a futex wake at
 * its end: 0.2-0.3 us), which a small tensor would pay in every pass. With
 * fence, each thread fences its streaming stores after its share. body: a
 * statement or block without pragmas. */
#define TEAM_LOOP(nt, fence, i, n, ...)                                                   \
    do {                                                                                   \
        const int team_nt_ = (nt), team_fence_ = (fence);                                  \
        const int64_t team_n_ = (n);                                                       \
        if (team_nt_ > 1) {                                                                \
            _Pragma("omp parallel num_threads(team_nt_)")                                  \
            {                                                                              \
                _Pragma("omp for schedule(static)")                                        \
                for (int64_t i = 0; i < team_n_; i++)                                      \
                    __VA_ARGS__                                                            \
                nt_fence(team_fence_);                                                     \
            }                                                                              \
        } else {                                                                           \
            for (int64_t i = 0; i < team_n_; i++)                                          \
                __VA_ARGS__                                                                \
            nt_fence(team_fence_);                                                         \
        }                                                                                  \
    } while (0)
#define TEAM_FOR(nt, i, n, ...) TEAM_LOOP(nt, 0, i, n, __VA_ARGS__)

/* ------------------------------------------------------------------ */
/* Reduction items                                                     */
/* ------------------------------------------------------------------ */

/* Sums over x[base + i0 .. base + i1), one slice of a channels-first run
 * (shift k, weight wc of its channel), into *o1, *o2:
 * dy == NULL: sums of e = x - k and e^2 (statistics); else sums of dy and
 * dy*(x - k), with dx = wc * dy written in the same pass when dx is given
 * (inference backward: 3S of traffic instead of 5S). In float within
 * chunks of CHUNK_RUN, in double across them; the order depends only on
 * i1 - i0. */
static void cf_run(const float *restrict x, const float *dy, float *dx, int64_t base,
                   int64_t i0, int64_t i1, float k, float wc, const bn_mask *mk, double *o1,
                   double *o2)
{
    const int short_runs = i1 - i0 < 2 * CHUNK_RUN;
    (void)short_runs, (void)mk;
    double s1 = 0.0, s2 = 0.0;
    for (int64_t i = i0; i < i1; i += CHUNK_RUN) {
        const int64_t len = min64(CHUNK_RUN, i1 - i), off = base + i;
        const float *restrict px = x + off;
        float f1 = 0.0f, f2 = 0.0f;
#ifdef BN_VEC512
        if (mk) { /* the sums of the unmasked loops below, over the masked g */
            const float *pg = dy + off, fa = mk->fa, fb = mk->fb;
            float *pw = mk->dy + off;
            if (short_runs) {
                v_bsums_relu(px, pg, pw, len, k, fa, fb, &f1, &f2);
            } else {
#pragma omp simd reduction(+ : f1, f2)
                for (int64_t t = 0; t < len; t++) {
                    const float e = px[t] - k;
                    const float g = fmaf(e, fa, fb) > 0.0f ? pg[t] : 0.0f;
                    pw[t] = g;
                    f1 += g;
                    f2 += g * e;
                }
            }
            s1 += f1;
            s2 += f2;
            continue;
        }
        /* short runs: latency-bound, so two accumulator pairs and a
         * tail without a scalar loop; long runs do better as below */
        if (!dy && short_runs)
            v_stats(px, len, k, &f1, &f2);
        else if (!dx && short_runs)
            v_bsums(px, dy + off, len, k, &f1, &f2);
        else
#endif
        if (!dy) {
#pragma omp simd reduction(+ : f1, f2)
            for (int64_t t = 0; t < len; t++) {
                float e = px[t] - k;
                f1 += e;
                f2 += e * e;
            }
        } else if (!dx) {
            const float *pg = dy + off;
#pragma omp simd reduction(+ : f1, f2)
            for (int64_t t = 0; t < len; t++) {
                float g = pg[t];
                f1 += g;
                f2 += g * (px[t] - k);
            }
        } else {
            const float *pg = dy + off;
            float *pd = dx + off;
#pragma omp simd reduction(+ : f1, f2)
            for (int64_t t = 0; t < len; t++) {
                float g = pg[t];
                f1 += g;
                f2 += g * (px[t] - k);
                pd[t] = g * wc;
            }
        }
        s1 += f1;
        s2 += f2;
    }
    *o1 = s1;
    *o2 = s2;
}

/* Channels-first item: runs [r0, r1) (run r = channel r % C of sample
 * r / C), inner slice [i0, i1) of each; adds each run's sums into
 * p1/p2[c], which the caller zeroed. */
static void cf_item(const float *restrict x, const float *dy, float *dx, nnp_bn_dims d,
                    int64_t r0, int64_t r1, int64_t i0, int64_t i1, const float *shift,
                    const float *w, const bn_relu *rl, double *p1, double *p2)
{
#ifdef BN_VEC512
    if (dy && !dx && i0 == 0 && i1 == d.inner && d.inner <= CHUNK_RUN) {
        if (r0 < r1 && rl)
            v_bsums_rows_relu(x, dy, rl->dy, r0, r1, d.inner, d.channels, shift, rl->fa, rl->fb,
                              p1, p2);
        else if (r0 < r1)
            v_bsums_rows(x, dy, r0, r1, d.inner, d.channels, shift, p1, p2);
        return;
    }
#endif
    for (int64_t r = r0, c = r0 % d.channels; r < r1; r++, c = c + 1 == d.channels ? 0 : c + 1) {
        double s1, s2;
        const bn_mask mk = {rl ? rl->fa[c] : 0.0f, rl ? rl->fb[c] : 0.0f, rl ? rl->dy : NULL};
        cf_run(x, dy, dx, r * d.inner, i0, i1, shift[c], w ? w[c] : 0.0f, rl ? &mk : NULL, &s1,
               &s2);
        p1[c] += s1;
        p2[c] += s2;
    }
}

/* Channels-last item, C < SPAN: each span packs rspan = SPAN / C whole rows
 * into one contiguous vector of lanes = rspan * C floats, lane j belonging
 * to channel j % C, so that even C = 3 fills the vectors. Same sums as
 * cf_item; adds into p1/p2[c]. */
static void cl_packed(const float *restrict x, const float *dy, float *dx, int64_t C,
                      int64_t r0, int64_t r1, const float *shift, const float *w, double *p1,
                      double *p2)
{
    const int64_t rspan = SPAN / C, lanes = rspan * C;
    float kk[SPAN], ww[SPAN];
    /* lane j is channel j % C (no division in these loops) */
    for (int64_t j = 0, c = 0; j < lanes; j++, c = c + 1 == C ? 0 : c + 1) {
        kk[j] = shift[c];
        ww[j] = w ? w[c] : 0.0f;
    }
    for (int64_t r = r0; r < r1;) {
        /* CHUNK_SPANS spans are summed in float, then flushed to double */
        const int64_t rend = min64(r1, r + CHUNK_SPANS * rspan);
        float f1[SPAN] = {0}, f2[SPAN] = {0};
        for (; r < rend; r += rspan) {
            /* a full span, or the item's last rows when fewer than rspan */
            const int64_t len = min64(rspan, rend - r) * C, off = r * C;
            const float *restrict px = x + off;
            if (!dy) {
#pragma omp simd
                for (int64_t j = 0; j < len; j++) {
                    float e = px[j] - kk[j];
                    f1[j] += e;
                    f2[j] += e * e;
                }
            } else if (!dx) {
                const float *pg = dy + off;
#pragma omp simd
                for (int64_t j = 0; j < len; j++) {
                    float g = pg[j];
                    f1[j] += g;
                    f2[j] += g * (px[j] - kk[j]);
                }
            } else {
                const float *pg = dy + off;
                float *pd = dx + off;
#pragma omp simd
                for (int64_t j = 0; j < len; j++) {
                    float g = pg[j];
                    f1[j] += g;
                    f2[j] += g * (px[j] - kk[j]);
                    pd[j] = g * ww[j];
                }
            }
        }
        r = rend;
        for (int64_t j = 0, c = 0; j < lanes; j++, c = c + 1 == C ? 0 : c + 1) {
            p1[c] += f1[j];
            p2[c] += f2[j];
        }
    }
}

/* Channels-last item, C >= SPAN: tiles of up to WIDE channels of whole rows,
 * read as long contiguous stretches. Statistics take four rows per pass, so
 * each float accumulator is loaded and stored once per four rows; the
 * backward sums, with twice the input streams, go one row at a time. */
static void cl_wide(const float *restrict x, const float *dy, float *dx, int64_t C,
                    int64_t r0, int64_t r1, const float *shift, const float *w, double *p1,
                    double *p2)
{
    for (int64_t c0 = 0; c0 < C; c0 += WIDE) {
        const int64_t tw = min64(WIDE, C - c0);
        const float *restrict k = shift + c0;
        const float *restrict wc = w ? w + c0 : NULL;
#ifdef BN_VEC512
        if (tw == 64 && !dx) {
            /* one 64-channel tile (C = 64): the float sums stay in registers */
            __m512 kv[4];
            for (int v = 0; v < 4; v++)
                kv[v] = _mm512_loadu_ps(k + 16 * v);
            for (int64_t r = r0; r < r1;) {
                const int64_t rend = min64(r1, r + CHUNK_ROWS);
                __m512 s1[4], s2[4];
                for (int v = 0; v < 4; v++)
                    s1[v] = s2[v] = _mm512_setzero_ps();
                for (; r < rend; r++) {
                    const float *xa = x + r * C + c0;
                    if (!dy) {
                        for (int v = 0; v < 4; v++) {
                            __m512 e = _mm512_sub_ps(_mm512_loadu_ps(xa + 16 * v), kv[v]);
                            s1[v] = _mm512_add_ps(s1[v], e);
                            s2[v] = _mm512_fmadd_ps(e, e, s2[v]);
                        }
                    } else {
                        const float *ga = dy + r * C + c0;
                        for (int v = 0; v < 4; v++) {
                            __m512 g = _mm512_loadu_ps(ga + 16 * v);
                            __m512 e = _mm512_sub_ps(_mm512_loadu_ps(xa + 16 * v), kv[v]);
                            s1[v] = _mm512_add_ps(s1[v], g);
                            s2[v] = _mm512_fmadd_ps(g, e, s2[v]);
                        }
                    }
                }
                float f1[64], f2[64];
                for (int v = 0; v < 4; v++) {
                    _mm512_storeu_ps(f1 + 16 * v, s1[v]);
                    _mm512_storeu_ps(f2 + 16 * v, s2[v]);
                }
                for (int64_t j = 0; j < 64; j++) {
                    p1[c0 + j] += f1[j];
                    p2[c0 + j] += f2[j];
                }
            }
            continue;
        }
#endif
        for (int64_t r = r0; r < r1;) {
            const int64_t rend = min64(r1, r + CHUNK_ROWS);
            float f1[WIDE], f2[WIDE];
            for (int64_t j = 0; j < tw; j++) /* only the tile's part: WIDE may be >> C */
                f1[j] = f2[j] = 0.0f;
            if (!dy) {
                /* four short rows are four short streams: slower than one */
                for (; tw >= FOUR_ROWS_MIN && r + 4 <= rend; r += 4) {
                    const float *restrict xa = x + r * C + c0, *restrict xb = xa + C;
                    const float *restrict xc = xb + C, *restrict xd = xc + C;
#pragma omp simd
                    for (int64_t j = 0; j < tw; j++) {
                        float e0 = xa[j] - k[j], e1 = xb[j] - k[j];
                        float e2 = xc[j] - k[j], e3 = xd[j] - k[j];
                        f1[j] += (e0 + e1) + (e2 + e3);
                        f2[j] += (e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3);
                    }
                }
                for (; r < rend; r++) {
                    const float *restrict xa = x + r * C + c0;
#pragma omp simd
                    for (int64_t j = 0; j < tw; j++) {
                        float e0 = xa[j] - k[j];
                        f1[j] += e0;
                        f2[j] += e0 * e0;
                    }
                }
            } else {
                for (; r < rend; r++) {
                    const int64_t off = r * C + c0;
                    const float *restrict xa = x + off;
                    const float *ga = dy + off;
                    if (dx) {
                        float *da = dx + off;
#pragma omp simd
                        for (int64_t j = 0; j < tw; j++) {
                            float g = ga[j];
                            f1[j] += g;
                            f2[j] += g * (xa[j] - k[j]);
                            da[j] = g * wc[j];
                        }
                    } else {
#pragma omp simd
                        for (int64_t j = 0; j < tw; j++) {
                            float g = ga[j];
                            f1[j] += g;
                            f2[j] += g * (xa[j] - k[j]);
                        }
                    }
                }
            }
            for (int64_t j = 0; j < tw; j++) {
                p1[c0 + j] += f1[j];
                p2[c0 + j] += f2[j];
            }
        }
    }
}

/* Per-channel sums over the whole reduction into t1/t2 (double [C]).
 * dy == NULL: statistics of x around shift; else backward sums (see cf_item). */
static void reduce(const nnp_bn_args *a, nnp_bn_dims d, const float *x, const float *dy,
                   float *dx, const float *shift, const float *w, const bn_relu *rl,
                   double *partials, double *t1, double *t2)
{
    const int64_t C = d.channels;
    const part p = partition(d);
    const int64_t S = item_stride(C);
    double *P1 = partials, *P2 = partials + max_items(C) * S;
    const int nt = team(a, d.outer * d.inner * C, p.items);

    TEAM_FOR(nt, it, p.items, {
        double *q1 = P1 + it * S, *q2 = P2 + it * S;
        for (int64_t c = 0; c < C; c++)
            q1[c] = q2[c] = 0.0;
        const int64_t blk = it / p.nib, ib = it % p.nib;
        if (p.cl) {
            const int64_t r0 = blk * p.per, r1 = min64(d.outer, r0 + p.per);
            if (C < SPAN)
                cl_packed(x, dy, dx, C, r0, r1, shift, w, q1, q2);
            else
                cl_wide(x, dy, dx, C, r0, r1, shift, w, q1, q2);
        } else {
            const int64_t i0 = ib * p.isize, i1 = min64(d.inner, i0 + p.isize);
            cf_item(x, dy, dx, d, blk * p.per, min64(d.outer * C, (blk + 1) * p.per), i0, i1,
                    shift, w, rl, q1, q2);
        }
    });

    /* Combine in item order for every channel: the fixed order that makes
     * the result independent of the thread count. */
    const int ntc = team(a, p.items * C, cdiv(C, 64));
    TEAM_FOR(ntc, b, cdiv(C, 64), {
        const int64_t c0 = 64 * b, c1 = min64(C, c0 + 64);
        for (int64_t c = c0; c < c1; c++)
            t1[c] = t2[c] = 0.0;
        for (int64_t it = 0; it < p.items; it++)
            for (int64_t c = c0; c < c1; c++) {
                t1[c] += P1[it * S + c];
                t2[c] += P2[it * S + c];
            }
    });
}

/* ------------------------------------------------------------------ */
/* Elementwise passes                                                  */
/* ------------------------------------------------------------------ */

/* The channels-first elementwise pass over flat ranges of the tensor, per
 * element (per-channel coefficients, channel of row r: r % C):
 *   mode 0: out = x * ca + cb (the fused inference form);
 *   mode 1: out = (x - k) * ca + cb;
 *   mode 2: out = dy * ca + (x - k) * cb + cc;
 *   mode 3: out = max((x - k) * ca + cb, 0) (a training forward with a ReLU).
 * Which kernel serves a shape is fixed once by ew_setup; any split of the
 * tensor into ranges gives the same values. */
enum { EW_RUN, EW_FLAT, EW_PERIOD };
typedef struct ewpass {
    int mode, kind, nt;     /* nt: streaming stores */
    nnp_bn_dims d;
    const float *x, *dy, *k, *ca, *cb, *cc;
    float *out;
    int64_t P, V;           /* EW_PERIOD: rows and vectors per period */
#ifdef BN_VEC512
    uint8_t idx[PERIOD_MAX * 16]; /* EW_PERIOD: each float's row in its period */
#endif
} ewpass;

/* Rows per period of the EW_PERIOD kernel for rows of `inner` floats: the
 * fewest rows that make whole vectors; 1 for the shapes other kernels take. */
static int64_t period_rows(int64_t inner)
{
#ifdef BN_VEC512
    if (inner > 1 && inner <= PERIOD_MAX && inner % 16 != 0) {
        int64_t g = 16;
        while (inner % g)
            g /= 2;
        return 16 / g;
    }
#endif
    (void)inner;
    return 1;
}

/* inner > 1. No initializer for the whole struct: idx is 16 KiB and only
 * P * inner entries of it are used. */
static void ew_setup(ewpass *w, nnp_bn_dims d, const float *x, const float *dy, float *out,
                     const float *k, const float *ca, const float *cb, const float *cc, int relu)
{
    w->mode = dy ? 2 : k ? (relu ? 3 : 1) : 0;
    w->kind = EW_RUN;
    w->nt = d.outer * d.channels * d.inner >= NT_MIN;
    w->d = d;
    w->x = x;
    w->dy = dy;
    w->out = out;
    w->k = k;
    w->ca = ca;
    w->cb = cb;
    w->cc = cc;
    w->P = 1;
    w->V = 0;
#ifdef BN_VEC512
    /* rows of a whole number of vectors take the per-run kernel */
    if (period_rows(d.inner) > 1) {
        w->kind = EW_PERIOD;
        w->P = period_rows(d.inner);
        w->V = w->P * d.inner / 16;
        for (int64_t q = 0; q < w->P * d.inner; q++)
            w->idx[q] = (uint8_t)(q / d.inner);
        /* periods start on the output's vector alignment only if out does */
        w->nt = w->nt && ((uintptr_t)out & 63) == 0;
    } else if (d.inner < PIECE && d.inner % 16 != 0) {
        w->kind = EW_FLAT;
    }
#endif
}

/* One run's stretch po[0, len) with its channel's scalars. */
static inline void ew_run(int mode, int nt, const float *px, const float *pg, float *po,
                          int64_t len, float a, float b, float k, float c)
{
    (void)nt;
#ifdef BN_VEC512
    v_run(mode, nt, px, pg, po, len, a, b, k, c);
#else
#ifdef BN_VEC256
    if (nt) {
        v8_run_nt(mode, px, pg, po, len, a, b, k, c);
        return;
    }
#endif
    if (mode == 2) {
#pragma omp simd
        for (int64_t t = 0; t < len; t++)
            po[t] = pg[t] * a + (px[t] - k) * b + c;
    } else if (mode == 1) {
#pragma omp simd
        for (int64_t t = 0; t < len; t++)
            po[t] = (px[t] - k) * a + b;
    } else if (mode == 3) {
#pragma omp simd
        for (int64_t t = 0; t < len; t++) {
            const float y = (px[t] - k) * a + b;
            po[t] = y > 0.0f ? y : 0.0f;
        }
    } else {
#pragma omp simd
        for (int64_t t = 0; t < len; t++)
            po[t] = px[t] * a + b;
    }
#endif
}

/* The pass over the flat range [s, e); EW_PERIOD needs s at a period start
 * (a row multiple of P). mode is a constant at each call site below. */
static inline __attribute__((always_inline)) void ew_span_mode(const ewpass *w, int mode,
                                                               int64_t s, int64_t e)
{
    const nnp_bn_dims d = w->d;
#ifdef BN_VEC512
    if (w->kind == EW_PERIOD) {
        v_period(mode, w->nt, w->x, w->dy, w->out, s, e, d.inner, d.channels, w->P, w->V,
                 w->idx, w->k, w->ca, w->cb, w->cc);
        return;
    }
    if (w->kind == EW_FLAT) {
        v_flat(mode, w->nt, w->x, w->dy, w->out, s, e, d.inner, d.channels, w->k, w->ca, w->cb,
               w->cc);
        return;
    }
#endif
    for (int64_t p = s; p < e;) {
        const int64_t row = p / d.inner, c = row % d.channels;
        const int64_t len = min64(e, (row + 1) * d.inner) - p;
        ew_run(mode, w->nt, w->x + p, mode == 2 ? w->dy + p : NULL, w->out + p, len, w->ca[c],
               w->cb[c], mode ? w->k[c] : 0.0f, mode == 2 ? w->cc[c] : 0.0f);
        p += len;
    }
}

static void ew_span(const ewpass *w, int64_t s, int64_t e)
{
    if (w->mode == 2)
        ew_span_mode(w, 2, s, e);
    else if (w->mode == 3)
        ew_span_mode(w, 3, s, e);
    else if (w->mode == 1)
        ew_span_mode(w, 1, s, e);
    else
        ew_span_mode(w, 0, s, e);
}

/* Span sp of the channels-last elementwise pass: rspan rows of C lanes
 * (the last span may be shorter), per-lane coefficient arrays. */
static inline void cl_span(const float *x, const float *dy, float *out, int64_t sp,
                           int64_t rspan, int64_t rows, int64_t C, int use_nt, const float *va,
                           const float *vb, const float *vk, const float *vc, int relu)
{
    const int mode = dy ? 2 : vk ? (relu ? 3 : 1) : 0;
    const int64_t r = sp * rspan, len = min64(rspan, rows - r) * C, off = r * C;
    const float *px = x + off;
    float *po = out + off;
    (void)use_nt;
#ifdef BN_VEC512
    v_span(mode, use_nt, px, dy ? dy + off : NULL, po, len, va, vb, vk, vc);
#else
#ifdef BN_VEC256
    if (use_nt) {
        v8_span_nt(mode, px, dy ? dy + off : NULL, po, len, va, vb, vk, vc);
        return;
    }
#endif
    if (dy) {
        const float *pg = dy + off;
#pragma omp simd
        for (int64_t j = 0; j < len; j++)
            po[j] = pg[j] * va[j] + (px[j] - vk[j]) * vb[j] + vc[j];
    } else if (mode == 3) {
#pragma omp simd
        for (int64_t j = 0; j < len; j++) {
            const float y = (px[j] - vk[j]) * va[j] + vb[j];
            po[j] = y > 0.0f ? y : 0.0f;
        }
    } else if (vk) {
#pragma omp simd
        for (int64_t j = 0; j < len; j++)
            po[j] = (px[j] - vk[j]) * va[j] + vb[j];
    } else {
#pragma omp simd
        for (int64_t j = 0; j < len; j++)
            po[j] = px[j] * va[j] + vb[j];
    }
#endif
}

/* out = (x - k) * ca + cb  (k == NULL: x * ca + cb, the fused inference form),
 * or with dy: out = dy * ca + (x - k) * cb + cc. Per-channel coefficients.
 * relu (with k, without dy): max(out, 0). out may alias x or dy: each
 * element is read before it is written. */
static void elementwise(const nnp_bn_args *a, nnp_bn_dims d, const float *x, const float *dy,
                        float *out, const float *k, const float *ca, const float *cb,
                        const float *cc, int relu)
{
    const int64_t C = d.channels;
    if (d.inner > 1) {
        ewpass w;
        ew_setup(&w, d, x, dy, out, k, ca, cb, cc, relu);
        /* work items: whole periods, or whole rows up to PIECE floats */
        const int64_t total = d.outer * C * d.inner;
        const int64_t isz = w.kind == EW_PERIOD ? max64(1, FLAT / (w.P * d.inner)) * w.P * d.inner
                            : w.kind == EW_FLAT ? FLAT
                            : d.inner <= PIECE  ? PIECE / d.inner * d.inner
                                                : PIECE;
        const int64_t items = cdiv(total, isz);
        TEAM_LOOP(team(a, total, items), w.nt, it, items,
                  ew_span(&w, it * isz, min64(total, (it + 1) * isz)););
        return;
    }

    /* channels-last: lanes repeat the C coefficients rspan times */
    int64_t rspan = C < SPAN ? SPAN / C : 1, lanes = rspan * C;
    int64_t nspans = cdiv(d.outer, rspan);
    const int nt = team(a, d.outer * C, nspans);
    float rk[SPAN], ra[SPAN], rb[SPAN], rc[SPAN];
    const float *vk = k, *va = ca, *vb = cb, *vc = cc;
    if (rspan > 1) {
        for (int64_t j = 0; j < lanes; j++) {
            rk[j] = k ? k[j % C] : 0.0f;
            ra[j] = ca[j % C];
            rb[j] = cb[j % C];
            rc[j] = cc ? cc[j % C] : 0.0f;
        }
        vk = k ? rk : NULL;
        va = ra;
        vb = rb;
        vc = cc ? rc : NULL;
    }
    const int use_nt = d.outer * C >= NT_MIN;
#ifdef BN_VEC512
    if (lanes == 64 && (dy || vk)) {
        /* work items of 64 spans (16 KiB a stream); the training passes
         * only: inference (mode 0) measured 5-10% slower this way in
         * bn_compare, for reasons not found, and stays on v_span */
        const int64_t total = d.outer * C, items = cdiv(nspans, 64);
        TEAM_LOOP(team(a, total, items), use_nt, it, items, {
            const int64_t f0 = it * 64 * 64, f1 = min64(total, f0 + 64 * 64);
            if (dy)
                v_span64(2, use_nt, x, dy, out, f0, f1, va, vb, vk, vc);
            else if (relu)
                v_span64(3, use_nt, x, dy, out, f0, f1, va, vb, vk, vc);
            else
                v_span64(1, use_nt, x, dy, out, f0, f1, va, vb, vk, vc);
        });
        return;
    }
#endif
    TEAM_LOOP(nt, use_nt, sp, nspans,
              cl_span(x, dy, out, sp, rspan, d.outer, C, use_nt, va, vb, vk, vc, relu););
}

/* ------------------------------------------------------------------ */
/* Public kernels                                                      */
/* ------------------------------------------------------------------ */

/* The per-channel totals live after the two planes of item sums. */
static double *tot1(const nnp_bn_scratch *s, int64_t C)
{
    return s->partials + 2 * max_items(C) * item_stride(C);
}
static double *tot2(const nnp_bn_scratch *s, int64_t C) { return tot1(s, C) + C; }

/* The shift k of channel c for the statistics pass: the mean of the
 * channel's first (up to) SHIFT_SAMPLES finite elements, so that x - k is
 * small and the float partial sums neither grow nor cancel much (their
 * rounding error scales with |mean - k|). 0 when none is finite, so an Inf
 * still yields mean = Inf as in Keras. */
/* One sample of nc <= 64 channels (stride apart) into the shift sums:
 * branch-free, so that channels-last rows (stride 1) vectorize. */
static inline void shift_sample(const float *px, int64_t stride, int64_t nc, double *sum,
                                double *cnt)
{
    if (stride == 1) {
#pragma omp simd
        for (int64_t i = 0; i < nc; i++) {
            const double v = px[i];
            const int ok = fabs(v) <= FLT_MAX; /* finite; false for NaN */
            sum[i] += ok ? v : 0.0;
            cnt[i] += ok ? 1.0 : 0.0;
        }
        return;
    }
    for (int64_t i = 0; i < nc; i++) {
        const double v = px[i * stride];
        const int ok = fabs(v) <= FLT_MAX;
        sum[i] += ok ? v : 0.0;
        cnt[i] += ok ? 1.0 : 0.0;
    }
}

static void choose_shift(const nnp_bn_args *a, nnp_bn_dims d, const float *x, float *shift)
{
    const int64_t C = d.channels, n = min64(d.outer * d.inner, SHIFT_SAMPLES);
    const int ntc = channel_team(a, C);
    /* 64 channels at a time, sample j of each in turn: channels-last reads
     * rows instead of one stride-C walk per channel */
    TEAM_FOR(ntc, b, cdiv(C, 64), {
        const int64_t c0 = 64 * b, nc = min64(C - c0, 64);
        double sum[64] = {0};
        double cnt[64] = {0};
        for (int64_t j = 0; j < n; j++)
            shift_sample(x + ((j / d.inner) * C + c0) * d.inner + j % d.inner, d.inner, nc, sum,
                         cnt);
        for (int64_t i = 0; i < nc; i++)
            shift[c0 + i] = cnt[i] > 0.0 ? (float)(sum[i] / cnt[i]) : 0.0f;
    });
}

/* Mean and biased variance (var may be NULL) of a channel from the sums
 * t1, t2 of its m elements' x - k. */
static void stats_of(double t1, double t2, int64_t m, float k, double *mean, double *var)
{
    const double dm = t1 / (double)m, v = t2 / (double)m - dm * dm;
    *mean = (double)k + dm;
    if (var)
        *var = v < 0.0 ? 0.0 : v; /* rounding only; NaN stays NaN */
}

/* ------------------------------------------------------------------ */
/* Channels-first training passes, one group of channels at a time     */
/* ------------------------------------------------------------------ */

/* The training forward's two-sweep form (the statistics over the whole
 * tensor, then the elementwise pass) reads x twice: 3S of traffic, of which
 * the second S comes from memory again once the tensor outgrows the caches.
 * Channels-first, a group of G channels is `outer` stretches of G * inner
 * contiguous floats; summing a group and then normalizing it while it is
 * still in the core's caches reads x from memory once: 2S. (The backward
 * keeps its two sweeps: its grouped form, x and dy in one sweep, measured
 * no faster on [128,256,14,14] at 1 and 2 threads, 0.96-1.03 of the two
 * sweeps, whose long ascending reads the hardware prefetchers serve well.) */
enum {
    FUSE_BYTES = 1 << 19, /* a group's input: aim to stay within a core's L2 */
    FUSE_MAX = 1 << 21,   /* ... and at most this (then L3 serves the second pass) */
    PF_DIST = 2           /* samples ahead to prefetch a group's stretches */
};

/* Channels per group of the one-sweep forward, 0 when the two-sweep form
 * serves the shape better (too few groups for the team to share evenly, a
 * channel's data too large to stay cached, or a build without AVX-512).
 * P: the elementwise kernel's rows per period (groups start on whole
 * periods). The choice may depend on the thread count: both forms give the
 * same bits. a->sweeps forces either form (tests). */
static int64_t fuse_group(const nnp_bn_args *a, nnp_bn_dims d, int64_t P)
{
    const int64_t C = d.channels;
    if (a->sweeps == 2 || d.inner == 1 || C % P != 0)
        return 0;
    const int64_t per = d.outer * d.inner * (int64_t)sizeof(float);
    const int nt = team(a, d.outer * C * d.inner, C / P);
    int64_t G = max64(FUSE_BYTES / per, 1);
    if (nt > 1) /* at least four groups a thread, to balance */
        G = min64(G, max64(C / (4 * nt), 1));
    G = max64(G / P, 1) * P;
    if (a->sweeps == 1)
        return G;
#ifndef BN_VEC512
    /* Without AVX-512 the sums of short runs are bound by the latency of
     * their one accumulator pair, which the two-sweep form's long streams
     * hide and the groups' strided stretches do not: [128,256,14,14] took
     * 2.7 ms in one sweep against 1.7 ms in two (AVX2, 1 thread). */
    return 0;
#endif
    const int64_t groups = cdiv(C, G);
    if (G * per > FUSE_MAX || (nt > 1 && groups < 4 * nt && groups % nt != 0))
        return 0;
    return G;
}

int64_t nnp_bn_forward_groups(const nnp_bn_args *a)
{
    const nnp_bn_dims d = canon(a->dims);
    if (d.channels == 0 || d.outer * d.inner == 0)
        return 0;
    return fuse_group(a, d, period_rows(d.inner));
}

/* A one-sweep training forward: shape, partition, groups, where the sums
 * and statistics go. */
typedef struct fused {
    const nnp_bn_args *a;
    nnp_bn_dims d;
    part p;
    int64_t G, groups;
    const float *x;
    const ewpass *w;            /* the elementwise pass (mode 1: (x - k)*ca + cb) */
    double *q1, *q2, *t1, *t2;  /* per channel: the current item's sums, the totals */
    double *mean, *var;
    float *k, *moving_mean, *moving_var;
    nnp_bn_scratch *s;
} fused;

/* The statistics sums of the channels [c0, c1) (see cf_run), one sample n
 * at a time, added in exactly the order reduce() adds them: per item of
 * the shape's partition from zero (q1/q2), the items' sums in item order
 * (t1/t2). Hence the same bits as the two-sweep form. */
static void sums_begin(const fused *f, int64_t c0, int64_t c1)
{
    for (int64_t c = c0; c < c1; c++)
        f->t1[c] = f->t2[c] = f->q1[c] = f->q2[c] = 0.0;
}
static void sums_step(const fused *f, int64_t c0, int64_t c1, int64_t n)
{
    const nnp_bn_dims d = f->d;
    const int64_t C = d.channels;
    for (int64_t c = c0; c < c1; c++) {
        const int64_t r = n * C + c;
        double s1, s2;
        if (n + PF_DIST < d.outer) {
            /* the group's stretches are short and far apart: the hardware
             * prefetchers would start on each one late. Run by run, so
             * that the prefetches spread over the work instead of filling
             * the miss queue at once. */
            const float *px = f->x + (r + PF_DIST * C) * d.inner;
            for (int64_t j = 0; j < d.inner; j += 16)
                __builtin_prefetch(px + j);
        }
        if (f->p.nib > 1) { /* one run per block, each slice its own item */
            for (int64_t i0 = 0; i0 < d.inner; i0 += f->p.isize) {
                cf_run(f->x, NULL, NULL, r * d.inner, i0, min64(d.inner, i0 + f->p.isize),
                       f->k[c], 0.0f, NULL, &s1, &s2);
                f->t1[c] += s1;
                f->t2[c] += s2;
            }
            continue;
        }
        cf_run(f->x, NULL, NULL, r * d.inner, 0, d.inner, f->k[c], 0.0f, NULL, &s1, &s2);
        if (f->p.per <= C) {
            /* no item holds two runs of a channel: each run is an item's
             * whole sum (0 + s), added to the total at once */
            f->t1[c] += s1;
            f->t2[c] += s2;
            continue;
        }
        if (n > 0 && (r - C) / f->p.per != r / f->p.per) { /* a new item */
            f->t1[c] += f->q1[c];
            f->t2[c] += f->q2[c];
            f->q1[c] = f->q2[c] = 0.0;
        }
        f->q1[c] += s1;
        f->q2[c] += s2;
    }
}
static void sums_end(const fused *f, int64_t c0, int64_t c1)
{
    if (f->p.nib == 1 && f->p.per > f->d.channels)
        for (int64_t c = c0; c < c1; c++) {
            f->t1[c] += f->q1[c];
            f->t2[c] += f->q2[c];
        }
}

static void train_channel(const nnp_bn_args *a, int64_t c, int64_t m, double *mean, double *var,
                          float *k, float *ca, float *cb, float *moving_mean, float *moving_var);

/* Thread id of T takes a contiguous share of the groups and pipelines them:
 * while the elementwise pass of group g re-reads x from the caches and
 * writes y, the sums of group g + 1 read x from memory, so that reads and
 * writes overlap as in a streaming pass. */
static void fused_share(const fused *f, int64_t id, int64_t T)
{
    const nnp_bn_dims d = f->d;
    const int64_t C = d.channels, m = d.outer * d.inner;
    const int64_t g0 = f->groups * id / T, g1 = f->groups * (id + 1) / T;
    if (g0 < g1) {
        int64_t c0 = g0 * f->G, c1 = min64(C, c0 + f->G);
        sums_begin(f, c0, c1);
        for (int64_t n = 0; n < d.outer; n++)
            sums_step(f, c0, c1, n);
        sums_end(f, c0, c1);
        for (int64_t g = g0; g < g1; g++) {
            const int64_t n0 = c1, n1 = min64(C, n0 + f->G);
            const int next = g + 1 < g1;
            for (int64_t c = c0; c < c1; c++) {
                stats_of(f->t1[c], f->t2[c], m, f->k[c], &f->mean[c], &f->var[c]);
                train_channel(f->a, c, m, f->mean, f->var, f->k, f->s->ca, f->s->cb,
                              f->moving_mean, f->moving_var);
            }
            if (next)
                sums_begin(f, n0, n1);
            for (int64_t n = 0; n < d.outer; n++) {
                ew_span(f->w, (n * C + c0) * d.inner, (n * C + c1) * d.inner);
                if (next)
                    sums_step(f, n0, n1, n);
            }
            if (next)
                sums_end(f, n0, n1);
            c0 = n0;
            c1 = n1;
        }
    }
    nt_fence(f->w->nt);
}

static void fused_forward(const fused *f)
{
    const int nt = team(f->a, f->d.outer * f->d.inner * f->d.channels, f->groups);
    if (nt > 1) {
#pragma omp parallel num_threads(nt)
        fused_share(f, omp_get_thread_num(), omp_get_num_threads());
    } else {
        fused_share(f, 0, 1);
    }
}

void nnp_bn_batch_stats(const nnp_bn_args *a, const float *x, float *shift, double *mean,
                        double *var, nnp_bn_scratch *s)
{
    nnp_bn_dims d = canon(a->dims);
    const int64_t C = d.channels, m = d.outer * d.inner;
    if (C == 0)
        return;
    float *k = shift ? shift : s->cc;
    if (m == 0) {
        for (int64_t c = 0; c < C; c++) {
            k[c] = 0.0f;
            mean[c] = NAN;
            if (var)
                var[c] = NAN;
        }
        return;
    }
    choose_shift(a, d, x, k);
    double *t1 = tot1(s, C), *t2 = tot2(s, C);
    reduce(a, d, x, NULL, NULL, k, NULL, NULL, s->partials, t1, t2);
    const int ntc = channel_team(a, C);
    TEAM_FOR(ntc, c, C, stats_of(t1[c], t2[c], m, k[c], &mean[c], var ? &var[c] : NULL););
}

/* The training forward's y = (x - k)*ca + cb of channel c (the backward of
 * a ReLU after the layer recomputes y's sign with them). */
static void fwd_coeffs(const nnp_bn_args *a, int64_t c, double mean, double inv, float k,
                       float *ca, float *cb)
{
    double sc = (a->gamma ? (double)a->gamma[c] : 1.0) * inv;
    ca[c] = (float)sc;
    cb[c] = (float)((a->beta ? (double)a->beta[c] : 0.0) - (mean - (double)k) * sc);
}

/* Channel c after its statistics: from here on x is centred on k, the
 * float nearest the mean (x - k is then exact near the mean, (mean - k)
 * corrects the rounding in double, and the backward sums of dy*(x - k)
 * hardly cancel); coefficients ca/cb of y = (x - k)*ca + cb; the moving
 * statistics; var[c] becomes 1/sqrt(var + eps). */
static void train_channel(const nnp_bn_args *a, int64_t c, int64_t m, double *mean, double *var,
                          float *k, float *ca, float *cb, float *moving_mean, float *moving_var)
{
    k[c] = isfinite(mean[c]) ? (float)mean[c] : 0.0f;
    double v = var[c];
    double inv = 1.0 / sqrt(v + a->epsilon);
    fwd_coeffs(a, c, mean[c], inv, k[c], ca, cb);
    if (m > 0) {
        /* Keras: decay cast to float, moving -= (moving - batch) * decay */
        float decay = (float)(1.0 - a->momentum);
        if (moving_mean)
            moving_mean[c] -= (moving_mean[c] - (float)mean[c]) * decay;
        if (moving_var)
            moving_var[c] -= (moving_var[c] - (float)v) * decay;
    }
    var[c] = inv;
}

void nnp_bn_forward_train(const nnp_bn_args *a, const float *x, float *y, float *moving_mean,
                          float *moving_var, const nnp_bn_saved *saved, nnp_bn_scratch *s)
{
    nnp_bn_dims d = canon(a->dims);
    const int64_t C = d.channels, m = d.outer * d.inner;
    if (C == 0)
        return;
    /* Without `saved`, mean and var land in the totals they are computed
     * from (each channel reads its totals before writing) and the shift in
     * cc; with it, saved->invstd holds the variance until train_channel. */
    double *mean = saved ? saved->mean : tot1(s, C);
    double *var = saved ? saved->invstd : tot2(s, C);
    float *k = saved ? saved->shift : s->cc;
    const int64_t G = y && m > 0 && d.inner > 1 ? fuse_group(a, d, period_rows(d.inner)) : 0;
    if (G) {
        ewpass w;
        ew_setup(&w, d, x, NULL, y, k, s->ca, s->cb, NULL, a->relu);
        const fused f = {.a = a, .d = d, .p = partition(d), .G = G, .groups = cdiv(C, G),
                         .x = x, .w = &w, .q1 = s->partials,
                         .q2 = s->partials + max_items(C) * item_stride(C),
                         .t1 = tot1(s, C), .t2 = tot2(s, C), .mean = mean, .var = var, .k = k,
                         .moving_mean = moving_mean, .moving_var = moving_var, .s = s};
        choose_shift(a, d, x, k);
        fused_forward(&f);
        return;
    }
    nnp_bn_batch_stats(a, x, k, mean, var, s);
    const int ntc = channel_team(a, C);
    TEAM_FOR(ntc, c, C,
             train_channel(a, c, m, mean, var, k, s->ca, s->cb, moving_mean, moving_var););
    if (m > 0 && y)
        elementwise(a, d, x, NULL, y, k, s->ca, s->cb, NULL, a->relu);
}

void nnp_bn_forward_infer(const nnp_bn_args *a, const float *x, float *y,
                          const float *moving_mean, const float *moving_var, nnp_bn_scratch *s)
{
    nnp_bn_dims d = canon(a->dims);
    const int64_t C = d.channels;
    if (C == 0 || d.outer * d.inner == 0)
        return;
    const int ntc = channel_team(a, C);
    TEAM_FOR(ntc, c, C, {
        double sc = (a->gamma ? (double)a->gamma[c] : 1.0) / sqrt((double)moving_var[c] + a->epsilon);
        s->ca[c] = (float)sc;
        s->cb[c] = (float)((a->beta ? (double)a->beta[c] : 0.0) - (double)moving_mean[c] * sc);
    });
    elementwise(a, d, x, NULL, y, NULL, s->ca, s->cb, NULL, 0);
}

/* Channel c of the training backward from its sums of dy and dy*(x - k):
 * dgamma, dbeta, and the coefficients of dx = dy*ca + (x - k)*cb + cc. */
static void bwd_channel(const nnp_bn_args *a, int64_t c, int64_t m, double sdy, double sdyk,
                        const nnp_bn_saved *saved, float *dgamma, float *dbeta,
                        nnp_bn_scratch *s)
{
    double inv = saved->invstd[c], dm = saved->mean[c] - (double)saved->shift[c];
    double sxh = inv * (sdyk - dm * sdy); /* sum of dy * xhat */
    if (dgamma)
        dgamma[c] += (float)sxh;
    if (dbeta)
        dbeta[c] += (float)sdy;
    /* dx = g*inv*(dy - sdy/m - xhat*sxh/m) with xhat = ((x-k) - dm)*inv */
    double gs = (a->gamma ? (double)a->gamma[c] : 1.0) * inv;
    s->ca[c] = (float)gs;
    s->cb[c] = (float)(-gs * inv * sxh / (double)m);
    s->cc[c] = (float)(gs * (inv * sxh * dm - sdy) / (double)m);
}

/* dy[i] = y[i] > 0 ? dy[i] : 0 over [i0, i1): the ReLU layer's backward. */
static void relu_grad(const float *y, float *dy, int64_t i0, int64_t i1)
{
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) {
        const float g = dy[i]; /* loaded unconditionally: the loop vectorizes */
        dy[i] = y[i] > 0.0f ? g : 0.0f;
    }
}

static void backward_train(const nnp_bn_args *a, nnp_bn_dims d, const float *x,
                           const float *dy, float *dx, const nnp_bn_saved *saved, float *dgamma,
                           float *dbeta, const bn_relu *rl, nnp_bn_scratch *s)
{
    const int64_t C = d.channels, m = d.outer * d.inner;
    double *sdy = tot1(s, C), *sdyk = tot2(s, C);
    reduce(a, d, x, dy, NULL, saved->shift, NULL, rl, s->partials, sdy, sdyk);
    const int ntc = channel_team(a, C);
    TEAM_FOR(ntc, c, C, bwd_channel(a, c, m, sdy[c], sdyk[c], saved, dgamma, dbeta, s););
    if (dx)
        elementwise(a, d, x, dy, dx, saved->shift, s->ca, s->cb, s->cc, 0);
}

void nnp_bn_backward_train(const nnp_bn_args *a, const float *x, const float *dy, float *dx,
                           const nnp_bn_saved *saved, float *dgamma, float *dbeta,
                           nnp_bn_scratch *s)
{
    nnp_bn_dims d = canon(a->dims);
    if (d.channels == 0 || d.outer * d.inner == 0 || (!dx && !dgamma && !dbeta))
        return;
    backward_train(a, d, x, dy, dx, saved, dgamma, dbeta, NULL, s);
}

void nnp_bn_backward_train_relu(const nnp_bn_args *a, const float *x, const float *y, float *dy,
                                float *dx, const nnp_bn_saved *saved, float *dgamma,
                                float *dbeta, nnp_bn_scratch *s)
{
    nnp_bn_dims d = canon(a->dims);
    const int64_t C = d.channels, n = d.outer * C * d.inner;
    if (C == 0 || n == 0)
        return;
#ifdef BN_VEC512
    if (d.inner > 1 && (dx || dgamma || dbeta)) {
        /* the forward's coefficients (train_channel's, from the same
           statistics) in ca / cb until bwd_channel replaces them */
        const int ntc = channel_team(a, C);
        TEAM_FOR(ntc, c, C,
                 fwd_coeffs(a, c, saved->mean[c], saved->invstd[c], saved->shift[c], s->ca,
                            s->cb););
        const bn_relu rl = {s->ca, s->cb, dy};
        backward_train(a, d, x, dy, dx, saved, dgamma, dbeta, &rl, s);
        return;
    }
#endif
    /* the ReLU layer's backward on its own, then the layer's */
    const int64_t items = cdiv(n, PIECE);
    TEAM_FOR(team(a, n, items), it, items,
             relu_grad(y, dy, it * PIECE, min64(n, (it + 1) * PIECE)););
    if (dx || dgamma || dbeta)
        backward_train(a, d, x, dy, dx, saved, dgamma, dbeta, NULL, s);
}

void nnp_bn_backward_infer(const nnp_bn_args *a, const float *x, const float *dy, float *dx,
                           const float *moving_mean, const float *moving_var, float *dgamma,
                           float *dbeta, nnp_bn_scratch *s)
{
    nnp_bn_dims d = canon(a->dims);
    const int64_t C = d.channels, m = d.outer * d.inner;
    if (C == 0 || m == 0)
        return;
    const int ntc = channel_team(a, C);
    TEAM_FOR(ntc, c, C, {
        double iv = 1.0 / sqrt((double)moving_var[c] + a->epsilon);
        s->ca[c] = (float)((a->gamma ? (double)a->gamma[c] : 1.0) * iv);
        s->cb[c] = 0.0f;
    });
    if (!dgamma && !dbeta) {
        if (dx) /* dx = dy * gamma/sqrt(var+eps): the fused form on dy */
            elementwise(a, d, dy, NULL, dx, NULL, s->ca, s->cb, NULL, 0);
        return;
    }
    double *sdy = tot1(s, C), *sdyk = tot2(s, C);
    reduce(a, d, x, dy, dx, moving_mean, s->ca, NULL, s->partials, sdy, sdyk);
    TEAM_FOR(ntc, c, C, {
        if (dgamma) /* sum dy*(x - mm) * 1/sqrt(mv + eps) */
            dgamma[c] += (float)(sdyk[c] / sqrt((double)moving_var[c] + a->epsilon));
        if (dbeta)
            dbeta[c] += (float)sdy[c];
    });
}
