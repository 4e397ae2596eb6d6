/*
 * Pooling kernels. Every output element, and every input-gradient element,
 * is computed by one thread in a fixed order, so results do not depend on
 * the thread count: forward splits output rows, backward splits (image,
 * channel block) pairs, whose input-gradient elements are disjoint.
 */
#include "pooling.h"

#include <math.h>
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

void pool_forward(const pool_geom *g, pool_op op, int include_pad, const float *x, float *y,
                  int nthreads)
{
    const strides si = in_strides(g), so = out_strides(g);
    const int64_t rows = g->N * g->OH;
#pragma omp parallel for schedule(static) num_threads(nthreads) \
    if (rows * g->OW * g->C >= POOL_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t n = r / g->OH, oh = r % g->OH;
        for (int64_t ow = 0; ow < g->OW; ow++) {
            int64_t h0, h1, w0, w1;
            window(g, oh, ow, &h0, &h1, &w0, &w1);
            float *yo = y + n * so.n + oh * so.h + ow * so.w;
            const float init = op == POOL_MAX ? -INFINITY : 0.0f;
            for (int64_t c = 0; c < g->C; c++)
                yo[c * so.c] = init;
            for (int64_t ih = h0; ih < h1; ih++)
                for (int64_t iw = w0; iw < w1; iw++) {
                    const float *xi = x + n * si.n + ih * si.h + iw * si.w;
                    if (op == POOL_MAX && si.c == 1 && so.c == 1) {
                        float *restrict yr = yo;
                        const float *restrict xr = xi;
                        for (int64_t c = 0; c < g->C; c++)
                            yr[c] = xr[c] > yr[c] ? xr[c] : yr[c];
                    } else if (op == POOL_MAX) {
                        for (int64_t c = 0; c < g->C; c++) {
                            const float v = xi[c * si.c];
                            if (v > yo[c * so.c])
                                yo[c * so.c] = v;
                        }
                    } else {
                        for (int64_t c = 0; c < g->C; c++)
                            yo[c * so.c] += xi[c * si.c];
                    }
                }
            if (op == POOL_AVG) {
                const float inv = 1.0f / avg_count(g, include_pad, h0, h1, w0, w1);
                for (int64_t c = 0; c < g->C; c++)
                    yo[c * so.c] *= inv;
            }
        }
    }
}

void pool_backward(const pool_geom *g, pool_op op, int include_pad, const float *x,
                   const float *dy, float *dx, int nthreads)
{
    const strides si = in_strides(g), so = out_strides(g);
    /* channels_last: one task per image, every channel in one pass */
    const int64_t cblk = si.c == 1 ? g->C : POOL_CBLK;
    const int64_t ncb = (g->C + cblk - 1) / cblk;
    const int64_t tasks = g->N * ncb;
#pragma omp parallel for schedule(static) num_threads(nthreads) \
    if (g->N * g->H * g->W * g->C >= POOL_PAR_MIN)
    for (int64_t t = 0; t < tasks; t++) {
        const int64_t n = t / ncb, c0 = (t % ncb) * cblk;
        const int64_t c1 = c0 + cblk < g->C ? c0 + cblk : g->C;
        float *dxn = dx + n * si.n;
        const float *xn = x + n * si.n;
        if (si.c == 1) {
            memset(dxn, 0, (size_t)(g->H * g->W * g->C) * sizeof(float));
        } else {
            for (int64_t h = 0; h < g->H; h++)
                for (int64_t w = 0; w < g->W; w++)
                    for (int64_t c = c0; c < c1; c++)
                        dxn[h * si.h + w * si.w + c * si.c] = 0.0f;
        }
        for (int64_t oh = 0; oh < g->OH; oh++)
            for (int64_t ow = 0; ow < g->OW; ow++) {
                int64_t h0, h1, w0, w1;
                window(g, oh, ow, &h0, &h1, &w0, &w1);
                const float *dyo = dy + n * so.n + oh * so.h + ow * so.w;
                if (op == POOL_AVG) {
                    const float inv = 1.0f / avg_count(g, include_pad, h0, h1, w0, w1);
                    for (int64_t ih = h0; ih < h1; ih++)
                        for (int64_t iw = w0; iw < w1; iw++)
                            for (int64_t c = c0; c < c1; c++)
                                dxn[ih * si.h + iw * si.w + c * si.c] += dyo[c * so.c] * inv;
                    continue;
                }
                int64_t cv = c0;   /* channels done 16 at a time */
                if (si.c == 1 && h1 > h0 && w1 > w0) {
                    const int64_t ww = w1 - w0;
                    for (; cv + POOL_CBLK <= c1; cv += POOL_CBLK) {
                        /* first maximum in window order, as below */
                        int32_t bk[POOL_CBLK];
                        float bv[POOL_CBLK];
                        const float *x0 = xn + h0 * si.h + w0 * si.w + cv;
                        for (int k = 0; k < POOL_CBLK; k++) {
                            bk[k] = 0;
                            bv[k] = x0[k];
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
                            dxn[ih * si.h + iw * si.w + cv + k] += dyo[(cv + k) * so.c];
                        }
                    }
                }
                for (int64_t c = cv; c < c1; c++) {
                    int64_t best = -1;
                    float bv = -INFINITY;
                    for (int64_t ih = h0; ih < h1; ih++)
                        for (int64_t iw = w0; iw < w1; iw++) {
                            const int64_t at = ih * si.h + iw * si.w + c * si.c;
                            if (best < 0 || xn[at] > bv) {
                                best = at;
                                bv = xn[at];
                            }
                        }
                    if (best >= 0)
                        dxn[best] += dyo[c * so.c];
                }
            }
    }
}

void global_forward(const pool_geom *g, pool_op op, const float *x, float *y, int nthreads)
{
    const strides si = in_strides(g);
    const int64_t pairs = g->N * g->C, hw = g->H * g->W;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (pairs * hw >= POOL_PAR_MIN)
    for (int64_t t = 0; t < pairs; t++) {
        const int64_t n = t / g->C, c = t % g->C;
        const float *xi = x + n * si.n + c * si.c;
        const int64_t step = g->channels_first ? 1 : g->C;
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
    const strides si = in_strides(g);
    const int64_t pairs = g->N * g->C, hw = g->H * g->W;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (pairs * hw >= POOL_PAR_MIN)
    for (int64_t t = 0; t < pairs; t++) {
        const int64_t n = t / g->C, c = t % g->C;
        const int64_t step = g->channels_first ? 1 : g->C;
        const float *xi = x + n * si.n + c * si.c;
        float *di = dx + n * si.n + c * si.c;
        if (op == POOL_AVG) {
            const float v = hw ? dy[t] / (float)hw : 0.0f;
            for (int64_t p = 0; p < hw; p++)
                di[p * step] = v;
            continue;
        }
        int64_t best = 0;
        for (int64_t p = 0; p < hw; p++) {
            di[p * step] = 0.0f;
            if (xi[p * step] > xi[best * step])
                best = p;
        }
        if (hw)
            di[best * step] = dy[t];
    }
}
