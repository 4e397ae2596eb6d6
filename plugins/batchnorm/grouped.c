/*
 * BatchNormalization in a data-parallel step (a 1.3 host's batch_chunks):
 * every sum over the batch is taken chunk by chunk and handed to the host,
 * which combines the chunks of every process in one fixed order, so the
 * numbers depend on the global batch alone, never on the process count.
 *
 * synchronized = true: the batch statistics (and the backward's sums) are
 * those of the global batch. false (Keras's default): of this process's
 * share; the weight gradients (dgamma, dbeta) are still summed over the
 * group, and the host averages the moving statistics after the step.
 *
 * Statistics around a shift k per channel (the moving mean, the same on
 * every process; 0 when not finite): sums of x - k and (x - k)^2 in double.
 * Plain loops, parallel over blocks of channels: each channel's sums run
 * on one thread in sample order, so the bits do not depend on the thread
 * count; a block of channels-last channels reads whole cache lines.
 */
#include "batchnorm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int bn_grouped_chunks(const bn_state *s, const nnp_bn_args *a)
{
    const nnp_host *h = s->host;
    if (!NNP_HOST_AT_LEAST(h, 3) || !h->batch_chunks)
        return 0;
    return h->batch_chunks(a->dims.outer, 0, NULL, NULL);
}

#define AT(d, n, c, i) (((n) * (d).channels + (c)) * (d).inner + (i))

/* Channels per task of the chunk sums: a cache line of channels-last
 * values; one channel when a channel's values are runs of 16 or more. */
enum { BN_CB = 16 };

static int64_t channel_block(const nnp_bn_dims d)
{
    return d.inner >= BN_CB ? 1 : BN_CB;
}

/* Channels-last rows (inner 1), cn channels each, ld apart: the per-channel
 * arithmetic of the loops below, across the channels of a row at a time
 * (an AVX-512 clone: the library is built for baseline x86-64); each
 * channel's sums still run in row order, so the same bits. */
#define BN_CLONES __attribute__((target_clones("avx512f", "default")))

BN_CLONES static void rows_stats(const float *x, int64_t ld, int64_t rows, int64_t cn,
                                 const double *k, double *restrict s1, double *restrict s2)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *p = x + r * ld;
        for (int64_t c = 0; c < cn; c++) {
            const double v = (double)p[c] - k[c];
            s1[c] += v;
            s2[c] += v * v;
        }
    }
}

BN_CLONES static void rows_grads(const float *x, const float *dy, int64_t ld, int64_t rows,
                                 int64_t cn, const double *m, const double *iv,
                                 double *restrict s1, double *restrict s2)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *px = x + r * ld, *pd = dy + r * ld;
        for (int64_t c = 0; c < cn; c++) {
            const double d = pd[c];
            s1[c] += d;
            s2[c] += d * ((double)px[c] - m[c]) * iv[c];
        }
    }
}

/* dx of one channels-last row of C channels (per-channel factors given). */
BN_CLONES static void row_dx(const float *x, const float *dy, float *restrict dx, int64_t C,
                             const double *g, const double *mean, const double *iv,
                             const double *mdy, const double *mdyx)
{
    for (int64_t c = 0; c < C; c++) {
        const double xh = ((double)x[c] - mean[c]) * iv[c];
        dx[c] = (float)(g[c] * iv[c] * ((double)dy[c] - mdy[c] - xh * mdyx[c]));
    }
}

/* part[0..C) = sums of x - k, part[C..2C) of (x - k)^2, part[2C] the
 * count, over rows [b, e); each channel in row order. */
static void chunk_stats(const nnp_bn_dims d, const float *x, const float *k, int64_t b,
                        int64_t e, double *part)
{
    const int64_t C = d.channels, cb = channel_block(d), nb = (C + cb - 1) / cb;
#pragma omp parallel for schedule(static)
    for (int64_t blk = 0; blk < nb; blk++) {
        const int64_t c0 = blk * cb, cn = C - c0 < cb ? C - c0 : cb;
        double s1[BN_CB] = {0}, s2[BN_CB] = {0};
        if (d.inner == 1) {
            double kd[BN_CB];
            for (int64_t c = 0; c < cn; c++)
                kd[c] = (double)k[c0 + c];
            rows_stats(x + AT(d, b, c0, 0), C, e - b, cn, kd, s1, s2);
        } else {
            for (int64_t n = b; n < e; n++)
                for (int64_t c = 0; c < cn; c++) {
                    const float *px = x + AT(d, n, c0 + c, 0);
                    const double kc = (double)k[c0 + c];
                    for (int64_t i = 0; i < d.inner; i++) {
                        double v = (double)px[i] - kc;
                        s1[c] += v;
                        s2[c] += v * v;
                    }
                }
        }
        for (int64_t c = 0; c < cn; c++) {
            part[c0 + c] = s1[c];
            part[C + c0 + c] = s2[c];
        }
    }
    part[2 * C] = (double)((e - b) * d.inner);
}

/* One reduction over this process's chunks of `len` doubles, each chunk's
 * partial made by fill(chunk rows); global or local. */
typedef void (*chunk_fill)(const bn_state *s, const nnp_bn_dims d, const void *ctx, int64_t b,
                           int64_t e, double *part);

typedef struct stats_ctx {
    const float *x, *k;
} stats_ctx;

static void fill_stats(const bn_state *s, const nnp_bn_dims d, const void *ctx, int64_t b,
                       int64_t e, double *part)
{
    (void)s;
    const stats_ctx *c = ctx;
    chunk_stats(d, c->x, c->k, b, e, part);
}

typedef struct grads_ctx {
    const float *x, *dy;
    const double *mean, *invstd;
} grads_ctx;

/* part[0..C) sums of dy, part[C..2C) of dy * xhat, part[2C] the count;
 * each channel in row order. */
static void fill_grads(const bn_state *s, const nnp_bn_dims d, const void *ctx, int64_t b,
                       int64_t e, double *part)
{
    (void)s;
    const grads_ctx *g = ctx;
    const int64_t C = d.channels, cb = channel_block(d), nb = (C + cb - 1) / cb;
#pragma omp parallel for schedule(static)
    for (int64_t blk = 0; blk < nb; blk++) {
        const int64_t c0 = blk * cb, cn = C - c0 < cb ? C - c0 : cb;
        double s1[BN_CB] = {0}, s2[BN_CB] = {0};
        if (d.inner == 1)
            rows_grads(g->x + AT(d, b, c0, 0), g->dy + AT(d, b, c0, 0), C, e - b, cn,
                       g->mean + c0, g->invstd + c0, s1, s2);
        else
            for (int64_t n = b; n < e; n++)
                for (int64_t c = 0; c < cn; c++) {
                    const size_t at = (size_t)AT(d, n, c0 + c, 0);
                    const double m = g->mean[c0 + c], iv = g->invstd[c0 + c];
                    for (int64_t i = 0; i < d.inner; i++) {
                        double dy = g->dy[at + i];
                        s1[c] += dy;
                        s2[c] += dy * ((double)g->x[at + i] - m) * iv;
                    }
                }
        for (int64_t c = 0; c < cn; c++) {
            part[c0 + c] = s1[c];
            part[C + c0 + c] = s2[c];
        }
    }
    part[2 * C] = (double)((e - b) * d.inner);
}

/* The sums of this process's chunks, each chunk's partial made by fill:
 * into out over the group (global) or this process's chunks alone, and
 * into all (when not NULL) over the group from the same partials. */
static nnp_status reduce_chunks(const bn_state *s, const nnp_bn_dims d, int global,
                                chunk_fill fill, const void *ctx, double *part, double *out,
                                double *all, nnp_error *err)
{
    const nnp_host *h = s->host;
    const size_t len = (size_t)(2 * d.channels + 1);
    void *red, *red_all = NULL;
    nnp_status st = h->reduce_begin(NNP_F64, len, global, &red, err);
    if (st != NNP_OK)
        return st;
    if (all && (st = h->reduce_begin(NNP_F64, len, 1, &red_all, err)) != NNP_OK) {
        nnp_error ignored = {0};
        h->reduce_end(red, out, &ignored); /* local (all is asked for only then) */
        return st;
    }
    const int nc = h->batch_chunks(d.outer, 0, NULL, NULL);
    for (int i = 0; i < nc; i++) {
        int64_t b, e;
        h->batch_chunks(d.outer, i, &b, &e);
        fill(s, d, ctx, b, e, part);
        h->reduce_add(red, part);
        if (red_all)
            h->reduce_add(red_all, part);
    }
    st = h->reduce_end(red, out, err);
    if (red_all) {
        nnp_error second = {0};
        nnp_status st2 = h->reduce_end(red_all, all, &second);
        if (st == NNP_OK && st2 != NNP_OK) {
            *err = second;
            st = st2;
        }
    }
    return st;
}

nnp_status bn_grouped_forward(bn_state *s, const nnp_bn_args *a, const float *x, float *y,
                              float *moving_mean, float *moving_var, nnp_bn_saved *sv,
                              nnp_error *err)
{
    const nnp_bn_dims d = a->dims;
    const int64_t C = d.channels;
    float *k = sv->shift;
    const float *mm = s->moving_mean.data;
    for (int64_t c = 0; c < C; c++)
        k[c] = isfinite(mm[c]) ? mm[c] : 0.0f;
    double *part = s->grouped, *tot = s->grouped + 2 * C + 1;
    stats_ctx ctx = {x, k};
    nnp_status st =
        reduce_chunks(s, d, s->synchronized, fill_stats, &ctx, part, tot, NULL, err);
    if (st != NNP_OK)
        return st;
    const double n = tot[2 * C];
    const float decay = (float)(1.0 - a->momentum);
    for (int64_t c = 0; c < C; c++) {
        double m1 = tot[c] / n;
        double var = tot[C + c] / n - m1 * m1;
        if (var < 0)
            var = 0;
        sv->mean[c] = (double)k[c] + m1;
        sv->invstd[c] = 1.0 / sqrt(var + a->epsilon);
        /* Keras: decay cast to float, moving -= (moving - batch) * decay */
        if (moving_mean)
            moving_mean[c] -= (moving_mean[c] - (float)sv->mean[c]) * decay;
        if (moving_var)
            moving_var[c] -= (moving_var[c] - (float)var) * decay;
    }
    if (!y)
        return NNP_OK;
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < d.outer; n++)
        for (int64_t c = 0; c < C; c++) {
            double g = a->gamma ? a->gamma[c] : 1.0, b = a->beta ? a->beta[c] : 0.0;
            for (int64_t i = 0; i < d.inner; i++) {
                size_t at = (size_t)AT(d, n, c, i);
                const float v = (float)(((double)x[at] - sv->mean[c]) * sv->invstd[c] * g + b);
                y[at] = !a->relu || v > 0.0f ? v : 0.0f;
            }
        }
    return NNP_OK;
}

nnp_status bn_grouped_backward(bn_state *s, const nnp_bn_args *a, const float *x,
                               const float *dy, float *dx, const nnp_bn_saved *sv,
                               float *dgamma, float *dbeta, nnp_error *err)
{
    const nnp_bn_dims d = a->dims;
    const int64_t C = d.channels;
    double *part = s->grouped, *tot = s->grouped + 2 * C + 1, *all = s->grouped + 4 * C + 2;
    grads_ctx ctx = {x, dy, sv->mean, sv->invstd};
    /* the sums dx needs: the global batch's when synchronized, else ours */
    /* the weight gradients: always over the group (unsynchronized: from the
       same chunk partials) */
    nnp_status st = reduce_chunks(s, d, s->synchronized, fill_grads, &ctx, part, tot,
                                  !s->synchronized && (dgamma || dbeta) ? all : NULL, err);
    if (st != NNP_OK)
        return st;
    const double *w = s->synchronized ? tot : all;
    for (int64_t c = 0; c < C; c++) {
        if (dgamma)
            dgamma[c] += (float)w[C + c];
        if (dbeta)
            dbeta[c] += (float)w[c];
    }
    if (!dx)
        return NNP_OK;
    const double n = tot[2 * C];
    if (d.inner == 1) {
        /* per-channel factors once (the same values the loop below makes
           per element), then each row across its channels */
        double *f = malloc(sizeof *f * 3 * (size_t)C);
        if (f) {
            double *g = f, *mdy = f + C, *mdyx = f + 2 * C;
            for (int64_t c = 0; c < C; c++) {
                g[c] = a->gamma ? a->gamma[c] : 1.0;
                mdy[c] = tot[c] / n;
                mdyx[c] = tot[C + c] / n;
            }
#pragma omp parallel for schedule(static)
            for (int64_t r = 0; r < d.outer; r++)
                row_dx(x + r * C, dy + r * C, dx + r * C, C, g, sv->mean, sv->invstd, mdy,
                       mdyx);
            free(f);
            return NNP_OK;
        }
    }
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < d.outer; r++)
        for (int64_t c = 0; c < C; c++) {
            double g = a->gamma ? a->gamma[c] : 1.0, iv = sv->invstd[c];
            double mdy = tot[c] / n, mdyx = tot[C + c] / n;
            for (int64_t i = 0; i < d.inner; i++) {
                size_t at = (size_t)AT(d, r, c, i);
                double xh = ((double)x[at] - sv->mean[c]) * iv;
                dx[at] = (float)(g * iv * ((double)dy[at] - mdy - xh * mdyx));
            }
        }
    return NNP_OK;
}
