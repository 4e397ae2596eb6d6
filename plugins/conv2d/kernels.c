/*
 * Conv2D kernels (see kernels.h).
 *
 * Layout: the Keras kernel [kh, kw, Cg, F] is, read flat, the matrix
 * Wm [Kg, F] with row (i * kw + j) * Cg + c. For output block rows p0..p0+rows
 * of image n and group g, the im2col matrix cols [rows, Kg] holds in row p
 * the input patch under output position p in the same (i, j, c) order, so
 *   channels_last:  y[p, g*Fg + f]  = cols . Wm[:, g*Fg:(g+1)*Fg]
 *   channels_first: y[g*Fg + f, p]  = (that product)^T
 * Channels-last builds cols itself (each patch entry is Cg contiguous
 * floats); channels-first builds its transpose cols^T [Kg, rows], whose rows
 * are slices of input rows, and the GEMMs read it transposed.
 * A 1x1 convolution with stride 1 and no padding needs no im2col: the
 * input itself is cols (channels_last) or cols^T (channels_first).
 *
 * Determinism: the forward pass runs tasks (image, block), the backward pass
 * runs a fixed number of image chunks (conv_n_chunks), each with its own
 * kernel-gradient partial, summed in chunk order at the end. No task's
 * arithmetic depends on which thread runs it or how many threads there are.
 */
#include "kernels.h"
#include "common/gemm_det.h"
#include "common/gemm_tiled.h"

#include <string.h>

/* im2col blocks hold about this many floats (256 KiB) */
#define CONV_BLOCK_FLOATS 65536
#define CONV_MAX_CHUNKS 32
/* kernel-gradient partials stay under this many bytes in all */
#define CONV_PARTIALS_BYTES ((size_t)64 << 20)

void conv_plan(conv_geom *g)
{
    g->direct = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 &&
                g->pl == 0 && g->pb == 0 && g->pr == 0;
    int64_t rows = CONV_BLOCK_FLOATS / (g->Kg > 0 ? g->Kg : 1);
    if (rows < 8)
        rows = 8;
    if (g->P > 0 && rows > g->P)
        rows = g->P;
    if (rows < 1)
        rows = 1;
    g->rows = rows;
    g->nblk = g->P > 0 ? (g->P + rows - 1) / rows : 0;
}

size_t conv_slot_floats(const conv_geom *g)
{
    /* rounded to 16 floats so every slot stays 64-byte aligned */
    size_t n = (size_t)(g->rows * g->Kg);
    return (n + 15) / 16 * 16;
}

int conv_n_chunks(const conv_geom *g)
{
    const size_t one = (size_t)(g->Kg * g->F) * sizeof(float);
    size_t n = one ? CONV_PARTIALS_BYTES / one : CONV_MAX_CHUNKS;
    if (n > CONV_MAX_CHUNKS)
        n = CONV_MAX_CHUNKS;
    return n < 1 ? 1 : (int)n;
}

/* Channels-last: cols [rows, Kg] of group grp for output positions
 * p0 .. p0+rows; each (i, j) patch entry is Cg contiguous input floats. */
static void im2col(const conv_geom *g, const float *x, int64_t grp, int64_t p0, int64_t rows,
                   float *cols)
{
    const int64_t Cg = g->Cg, c0 = grp * Cg, sh = g->W * g->C, sw = g->C;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t p = p0 + r, oh = p / g->OW, ow = p % g->OW;
        float *dst = cols + r * g->Kg;
        for (int64_t i = 0; i < g->kh; i++) {
            const int64_t ih = oh * g->sh - g->pt + i * g->dh;
            for (int64_t j = 0; j < g->kw; j++, dst += Cg) {
                const int64_t iw = ow * g->sw - g->pl + j * g->dw;
                if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W)
                    memset(dst, 0, (size_t)Cg * sizeof(float));
                else
                    memcpy(dst, x + ih * sh + iw * sw + c0, (size_t)Cg * sizeof(float));
            }
        }
    }
}

/* Channels-last: dx += the patches of dcols [rows, Kg] put back in place
 * (a fixed order). */
static void col2im(const conv_geom *g, const float *dcols, int64_t grp, int64_t p0,
                   int64_t rows, float *dx)
{
    const int64_t Cg = g->Cg, c0 = grp * Cg, sh = g->W * g->C, sw = g->C;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t p = p0 + r, oh = p / g->OW, ow = p % g->OW;
        const float *src = dcols + r * g->Kg;
        for (int64_t i = 0; i < g->kh; i++) {
            const int64_t ih = oh * g->sh - g->pt + i * g->dh;
            for (int64_t j = 0; j < g->kw; j++, src += Cg) {
                const int64_t iw = ow * g->sw - g->pl + j * g->dw;
                if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W)
                    continue;
                float *restrict dst = dx + ih * sh + iw * sw + c0;
                for (int64_t c = 0; c < Cg; c++)
                    dst[c] += src[c];
            }
        }
    }
}

/* The outputs ow in [0, OW) whose input column ow * sw - pl + off lies in
 * [0, W): ow in [*lo, *hi). */
static void valid_cols(const conv_geom *g, int64_t off, int64_t *lo, int64_t *hi)
{
    const int64_t base = off - g->pl; /* iw = ow * sw + base */
    int64_t a = base >= 0 ? 0 : (-base + g->sw - 1) / g->sw;
    int64_t b = g->W - base > 0 ? (g->W - base + g->sw - 1) / g->sw : 0;
    if (b > g->OW)
        b = g->OW;
    if (a > b)
        a = b;
    *lo = a;
    *hi = b;
}

/* One output-row segment of a block, for kernel offset (i, j): output
 * columns ow0 .. ow0 + n of row oh; its input row ih; the columns a .. b
 * whose input column ow * sw + base lies inside the row (none when row ih is
 * padding). */
typedef struct segment {
    int64_t n, ow0, ih, a, b, base;
} segment;

static segment segment_at(const conv_geom *g, int64_t p, int64_t end, int64_t i, int64_t j,
                          int64_t lo, int64_t hi)
{
    segment s;
    const int64_t oh = p / g->OW;
    s.ow0 = p % g->OW;
    s.n = g->OW - s.ow0 < end - p ? g->OW - s.ow0 : end - p;
    const int64_t e = s.ow0 + s.n;
    s.ih = oh * g->sh - g->pt + i * g->dh;
    s.a = lo < s.ow0 ? s.ow0 : lo > e ? e : lo;
    s.b = hi < s.a ? s.a : hi > e ? e : hi;
    if (s.ih < 0 || s.ih >= g->H)
        s.a = s.b = e;
    s.base = s.ih * g->W + j * g->dw - g->pl;
    return s;
}

/* Channels-first, between an image and colsT [Kg, rows] of group grp (row
 * k = (i * kw + j) * Cg + c, column r = output position p0 + r), one
 * output-row segment at a time: for a fixed (i, j, c) the inputs under one
 * output row are a strided (for stride 1, contiguous) slice of one input
 * row. With x: colsT = the patches of x (im2col). With dx: dx += colsT put
 * back in place (col2im), in a fixed order (kernel offset, channel,
 * output position). */
static void cols_cf(const conv_geom *g, int64_t grp, int64_t p0, int64_t rows, const float *x,
                    float *dx, float *colsT)
{
    const int64_t HW = g->H * g->W, Cg = g->Cg, c0 = grp * Cg;
    for (int64_t i = 0; i < g->kh; i++)
        for (int64_t j = 0; j < g->kw; j++) {
            int64_t lo, hi;
            valid_cols(g, j * g->dw, &lo, &hi);
            for (int64_t c = 0; c < Cg; c++) {
                float *row = colsT + ((i * g->kw + j) * Cg + c) * rows;
                for (int64_t p = p0; p < p0 + rows;) {
                    const segment s = segment_at(g, p, p0 + rows, i, j, lo, hi);
                    float *d = row + (p - p0); /* d[ow - ow0] */
                    if (dx) {
                        float *dxc = dx + (c0 + c) * HW;
                        if (g->sw == 1 && s.b > s.a) {
                            float *restrict dd = dxc + s.base + s.a;
                            const float *restrict ss = d + (s.a - s.ow0);
                            for (int64_t k = 0; k < s.b - s.a; k++)
                                dd[k] += ss[k];
                        } else if (g->sw != 1) {
                            for (int64_t ow = s.a; ow < s.b; ow++)
                                dxc[s.base + ow * g->sw] += d[ow - s.ow0];
                        }
                    } else {
                        const float *xc = x + (c0 + c) * HW;
                        for (int64_t ow = s.ow0; ow < s.a; ow++)
                            d[ow - s.ow0] = 0.0f;
                        if (g->sw == 1 && s.b > s.a)
                            memcpy(d + (s.a - s.ow0), xc + s.base + s.a,
                                   (size_t)(s.b - s.a) * sizeof(float));
                        else
                            for (int64_t ow = s.a; ow < s.b; ow++)
                                d[ow - s.ow0] = xc[s.base + ow * g->sw];
                        for (int64_t ow = s.b; ow < s.ow0 + s.n; ow++)
                            d[ow - s.ow0] = 0.0f;
                    }
                    p += s.n;
                }
            }
        }
}

/* A matrix operand: ptr with leading dimension ld, transposed or not. */
typedef struct mat {
    const float *p;
    int64_t ld;
    int t;
} mat;

/* The im2col matrix [rows, Kg] of group grp, block p0: either built into buf
 * or, for a direct convolution, a view of the input. */
static mat cols_of(const conv_geom *g, const float *x, int64_t grp, int64_t p0, int64_t rows,
                   float *buf)
{
    if (g->direct) {
        if (g->channels_first)
            return (mat){x + grp * g->Cg * g->P + p0, g->P, 1};  /* [Cg, P] seen transposed */
        return (mat){x + p0 * g->C + grp * g->Cg, g->C, 0};
    }
    if (g->channels_first) {
        cols_cf(g, grp, p0, rows, x, NULL, buf);
        return (mat){buf, rows, 1}; /* [Kg, rows] seen transposed */
    }
    im2col(g, x, grp, p0, rows, buf);
    return (mat){buf, g->Kg, 0};
}

/* The output-gradient block [rows, Fg] of group grp. */
static mat dz_of(const conv_geom *g, const float *dz, int64_t grp, int64_t p0)
{
    if (g->channels_first)
        return (mat){dz + grp * g->Fg * g->P + p0, g->P, 1};
    return (mat){dz + p0 * g->F + grp * g->Fg, g->F, 0};
}

/* One forward task: image block p0 .. p0+rows of image x -> y. */
static void forward_block(const conv_geom *g, const float *x, const float *wm, const float *bias,
                          float *y, int64_t p0, int64_t rows, float *buf)
{
    const int64_t F = g->F, Fg = g->Fg, Kg = g->Kg;
    for (int64_t grp = 0; grp < g->groups; grp++) {
        mat c = cols_of(g, x, grp, p0, rows, buf);
        if (g->channels_first)
            gt_sgemm1(1, !c.t, Fg, rows, Kg, 1.0f, wm + grp * Fg, F, c.p, c.ld, 0.0f,
                      y + grp * Fg * g->P + p0, g->P);
        else
            gt_sgemm1(c.t, 0, rows, Fg, Kg, 1.0f, c.p, c.ld, wm + grp * Fg, F, 0.0f,
                      y + p0 * F + grp * Fg, F);
    }
    if (!bias)
        return;
    if (g->channels_first) {
        for (int64_t f = 0; f < F; f++) {
            float *yf = y + f * g->P + p0;
            for (int64_t r = 0; r < rows; r++)
                yf[r] += bias[f];
        }
    } else {
        for (int64_t r = 0; r < rows; r++) {
            float *yr = y + (p0 + r) * F;
            for (int64_t f = 0; f < F; f++)
                yr[f] += bias[f];
        }
    }
}

void conv_forward(const conv_geom *g, int64_t N, const float *x, const float *kernel,
                  const float *bias, float *y, const conv_scratch *s, int nthreads)
{
    const int64_t tasks = N * g->nblk;
    const int64_t in_img = g->H * g->W * g->C, out_img = g->P * g->F;
    const size_t slot = conv_slot_floats(g);
    int nt = nthreads < 1 ? 1 : nthreads;
    if (nt > s->n_slots)
        nt = s->n_slots;
    if ((int64_t)nt > tasks)
        nt = (int)(tasks > 0 ? tasks : 1);
#pragma omp parallel num_threads(nt)
    {
        omp_set_num_threads(1); /* BLAS single-threaded inside (gemm_tiled.h) */
        float *buf = s->cols + (size_t)omp_get_thread_num() * slot;
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tasks; t++) {
            const int64_t n = t / g->nblk, p0 = (t % g->nblk) * g->rows;
            const int64_t rows = g->P - p0 < g->rows ? g->P - p0 : g->rows;
            forward_block(g, x + n * in_img, kernel, bias, y + n * out_img, p0, rows, buf);
        }
    }
}

/* One image's kernel gradient (into part) and input gradient (into dx). */
static void backward_image(const conv_geom *g, const float *x, const float *wm, const float *dz,
                           float *part, float *dx, float *cbuf, float *dbuf)
{
    const int64_t F = g->F, Fg = g->Fg, Kg = g->Kg;
    if (dx && !g->direct)
        memset(dx, 0, (size_t)(g->H * g->W * g->C) * sizeof(float));
    for (int64_t p0 = 0; p0 < g->P; p0 += g->rows) {
        const int64_t rows = g->P - p0 < g->rows ? g->P - p0 : g->rows;
        for (int64_t grp = 0; grp < g->groups; grp++) {
            mat c = cols_of(g, x, grp, p0, rows, cbuf);
            mat d = dz_of(g, dz, grp, p0);
            /* dW_g [Kg, Fg] += cols^T . dz_g */
            gt_sgemm1(!c.t, d.t, Kg, Fg, rows, 1.0f, c.p, c.ld, d.p, d.ld, 1.0f, part + grp * Fg,
                      F);
            if (!dx)
                continue;
            /* dcols [rows, Kg] = dz_g . W_g^T */
            if (!g->direct && g->channels_first) {
                /* dcolsT [Kg, rows] = W_g . dz_g^T */
                gt_sgemm1(0, !d.t, Kg, rows, Fg, 1.0f, wm + grp * Fg, F, d.p, d.ld, 0.0f, dbuf,
                          rows);
                cols_cf(g, grp, p0, rows, NULL, dx, dbuf);
            } else if (!g->direct) {
                gt_sgemm1(d.t, 1, rows, Kg, Fg, 1.0f, d.p, d.ld, wm + grp * Fg, F, 0.0f, dbuf, Kg);
                col2im(g, dbuf, grp, p0, rows, dx);
            } else if (g->channels_first) {
                /* dx_g [Cg, P] block = W_g . dz_g^T */
                gt_sgemm1(0, !d.t, Kg, rows, Fg, 1.0f, wm + grp * Fg, F, d.p, d.ld, 0.0f,
                          dx + grp * g->Cg * g->P + p0, g->P);
            } else {
                gt_sgemm1(d.t, 1, rows, Kg, Fg, 1.0f, d.p, d.ld, wm + grp * Fg, F, 0.0f,
                          dx + p0 * g->C + grp * g->Cg, g->C);
            }
        }
    }
}

/* Bias gradient: per filter, a double sum over images and positions in a
 * fixed order. */
static void bias_grad(const conv_geom *g, int64_t N, const float *dz, float *db, int nt)
{
    const int64_t F = g->F, P = g->P;
    if (!g->channels_first) {
        /* the same per-filter order (images, then positions), walked row by
         * row so that the filters of a block vectorize */
        enum { FB = 64 };
        const int64_t nfb = (F + FB - 1) / FB;
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int64_t b = 0; b < nfb; b++) {
            const int64_t f0 = b * FB, f1 = f0 + FB < F ? f0 + FB : F;
            double acc[FB] = {0};
            for (int64_t r = 0; r < N * P; r++) {
                const float *d = dz + r * F + f0;
                for (int64_t f = 0; f < f1 - f0; f++)
                    acc[f] += d[f];
            }
            for (int64_t f = f0; f < f1; f++)
                db[f] += (float)acc[f - f0];
        }
        return;
    }
    /* channels_first: per filter, BG interleaved double lanes (position p
     * goes to lane p % BG) over images then positions, the lanes summed in
     * order at the end: a fixed order that vectorizes */
    enum { BG = 8 };
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t f = 0; f < F; f++) {
        double lane[BG] = {0};
        for (int64_t n = 0; n < N; n++) {
            const float *d = dz + (n * F + f) * P;
            int64_t p = 0;
            for (; p + BG <= P; p += BG)
                for (int k = 0; k < BG; k++)
                    lane[k] += d[p + k];
            for (; p < P; p++)
                lane[p % BG] += d[p];
        }
        double acc = 0.0;
        for (int k = 0; k < BG; k++)
            acc += lane[k];
        db[f] += (float)acc;
    }
}

void conv_backward(const conv_geom *g, int64_t N, const float *x, const float *kernel,
                   const float *dz, float *dkernel, float *dbias, float *dx,
                   const conv_scratch *s, int nthreads)
{
    const int64_t in_img = g->H * g->W * g->C, out_img = g->P * g->F;
    const int64_t wn = g->Kg * g->F;
    const int R = s->n_chunks;
    const size_t slot = conv_slot_floats(g);
    int nt = nthreads < 1 ? 1 : nthreads;
    int busy = N < R ? (int)N : R;  /* chunks that hold an image */
    if (nt > busy)
        nt = busy > 0 ? busy : 1;
    if (nt > s->n_slots)
        nt = s->n_slots;
    if (N > 0 && g->P > 0) {
#pragma omp parallel num_threads(nt)
        {
            omp_set_num_threads(1);
            const int me = omp_get_thread_num();
            float *cbuf = s->cols + (size_t)me * slot, *dbuf = s->dcols + (size_t)me * slot;
#pragma omp for schedule(static)
            for (int r = 0; r < R; r++) {
                const int64_t n0 = N * r / R, n1 = N * (r + 1) / R;
                float *part = s->partials + (size_t)r * (size_t)wn;
                if (n0 == n1)
                    continue;
                memset(part, 0, (size_t)wn * sizeof(float));
                for (int64_t n = n0; n < n1; n++)
                    backward_image(g, x + n * in_img, kernel, dz + n * out_img, part,
                                   dx ? dx + n * in_img : NULL, cbuf, dbuf);
            }
        }
        /* sum the partials of the non-empty chunks, always in chunk order */
        int nt2 = nthreads < 1 ? 1 : nthreads;
        enum { KB = 1024 };
        const int64_t nkb = (wn + KB - 1) / KB;
#pragma omp parallel for schedule(static) num_threads(nt2) if (wn * R >= 65536)
        for (int64_t b = 0; b < nkb; b++) {
            const int64_t k0 = b * KB, k1 = k0 + KB < wn ? k0 + KB : wn;
            float acc[KB];
            for (int64_t k = 0; k < k1 - k0; k++)
                acc[k] = 0.0f;
            for (int r = 0; r < R; r++) {
                if (N * r / R == N * (r + 1) / R)
                    continue;
                const float *pr = s->partials + (size_t)r * (size_t)wn + (size_t)k0;
                for (int64_t k = 0; k < k1 - k0; k++)
                    acc[k] += pr[k];
            }
            for (int64_t k = 0; k < k1 - k0; k++)
                dkernel[k0 + k] += acc[k];
        }
    } else if (dx && N > 0) {
        memset(dx, 0, (size_t)(N * in_img) * sizeof(float));
    }
    if (dbias && N > 0)
        bias_grad(g, N, dz, dbias, nthreads < 1 ? 1 : nthreads);
}

/* A [P, Kg] = the patches of one image (group 0), row p the patch under
 * output position p in the kernel's (i, j, c) order; channels-first builds
 * its transpose in tmp [Kg, P] first. */
void conv_im2col_image(const conv_geom *g, const float *x, float *tmp, float *A)
{
    if (!g->channels_first) {
        im2col(g, x, 0, 0, g->P, A);
        return;
    }
    cols_cf(g, 0, 0, g->P, x, NULL, tmp);
    gd_transpose(g->Kg, g->P, tmp, A, 1);
}

void conv_patch_offsets(const conv_geom *g, int32_t *off)
{
    for (int64_t i = 0; i < g->kh; i++)
        for (int64_t j = 0; j < g->kw; j++)
            for (int64_t p = 0; p < g->P; p++) {
                const int64_t ih = (p / g->OW) * g->sh - g->pt + i * g->dh;
                const int64_t iw = (p % g->OW) * g->sw - g->pl + j * g->dw;
                const int in = ih >= 0 && ih < g->H && iw >= 0 && iw < g->W;
                off[(i * g->kw + j) * g->P + p] = in ? (int32_t)(ih * g->W + iw) : -1;
            }
}

void conv_patch_rows(const conv_geom *g, const int32_t *off, const float *x, float *A)
{
    const int64_t C = g->C, HW = g->H * g->W, KK = g->kh * g->kw;
    for (int64_t p = 0; p < g->P; p++)
        for (int64_t k = 0; k < KK; k++) {
            const int32_t o = off[k * g->P + p];
            float *restrict dst = A + p * g->Kg + k * C;
            if (o < 0)
                memset(dst, 0, (size_t)C * sizeof(float));
            else if (!g->channels_first)
                memcpy(dst, x + (int64_t)o * C, (size_t)C * sizeof(float));
            else
                for (int64_t c = 0; c < C; c++)
                    dst[c] = x[c * HW + o];
        }
}

void conv_patch_back(const conv_geom *g, const int32_t *off, const float *dcolsT, int64_t ld,
                     float *dx)
{
    const int64_t C = g->C, HW = g->H * g->W, KK = g->kh * g->kw, P = g->P;
    const int64_t cs = g->channels_first ? HW : 1, os = g->channels_first ? 1 : C;
    memset(dx, 0, (size_t)(HW * C) * sizeof(float));
    for (int64_t k = 0; k < KK; k++)
        for (int64_t c = 0; c < C; c++) {
            const float *row = dcolsT + (k * C + c) * ld;
            float *dxc = dx + c * cs;
            for (int64_t p = 0; p < P; p++) {
                const int32_t o = off[k * P + p];
                if (o >= 0)
                    dxc[(int64_t)o * os] += row[p];
            }
        }
}
