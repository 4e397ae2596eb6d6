/*
 * Reference BatchNormalization: double precision, textbook two-pass formulas,
 * no blocking, no threads. The fast kernels (kernels.c) are tested against it.
 */
#include "kernels.h"

#include <math.h>

#define AT(d, n, c, i) (((n) * (d).channels + (c)) * (d).inner + (i))

static void ref_stats(nnp_bn_dims d, const double *x, int64_t c, double *mean, double *var)
{
    double m = (double)(d.outer * d.inner), s = 0.0, q = 0.0;
    for (int64_t n = 0; n < d.outer; n++)
        for (int64_t i = 0; i < d.inner; i++)
            s += x[AT(d, n, c, i)];
    s /= m;
    for (int64_t n = 0; n < d.outer; n++)
        for (int64_t i = 0; i < d.inner; i++) {
            double e = x[AT(d, n, c, i)] - s;
            q += e * e;
        }
    *mean = s;
    *var = q / m;
}

void nnp_bn_ref_forward_train(nnp_bn_dims d, double eps, double momentum,
                              const double *x, const double *gamma, const double *beta,
                              double *y, double *mean, double *var,
                              double *moving_mean, double *moving_var)
{
    int64_t m = d.outer * d.inner;
    for (int64_t c = 0; c < d.channels; c++) {
        double mu, v;
        ref_stats(d, x, c, &mu, &v);
        if (mean)
            mean[c] = mu;
        if (var)
            var[c] = v;
        double g = gamma ? gamma[c] : 1.0, b = beta ? beta[c] : 0.0;
        double inv = 1.0 / sqrt(v + eps);
        if (y)
            for (int64_t n = 0; n < d.outer; n++)
                for (int64_t i = 0; i < d.inner; i++)
                    y[AT(d, n, c, i)] = g * (x[AT(d, n, c, i)] - mu) * inv + b;
        if (m == 0)
            continue; /* empty batch: moving statistics unchanged */
        if (moving_mean)
            moving_mean[c] -= (moving_mean[c] - mu) * (1.0 - momentum);
        if (moving_var)
            moving_var[c] -= (moving_var[c] - v) * (1.0 - momentum);
    }
}

void nnp_bn_ref_forward_infer(nnp_bn_dims d, double eps, const double *x,
                              const double *gamma, const double *beta,
                              const double *moving_mean, const double *moving_var,
                              double *y)
{
    for (int64_t c = 0; c < d.channels; c++) {
        double g = gamma ? gamma[c] : 1.0, b = beta ? beta[c] : 0.0;
        double inv = 1.0 / sqrt(moving_var[c] + eps);
        for (int64_t n = 0; n < d.outer; n++)
            for (int64_t i = 0; i < d.inner; i++)
                y[AT(d, n, c, i)] = g * (x[AT(d, n, c, i)] - moving_mean[c]) * inv + b;
    }
}

void nnp_bn_ref_backward_train(nnp_bn_dims d, double eps, const double *x,
                               const double *gamma, const double *dy, double *dx,
                               double *dgamma, double *dbeta)
{
    double m = (double)(d.outer * d.inner);
    for (int64_t c = 0; c < d.channels; c++) {
        double mu, v;
        ref_stats(d, x, c, &mu, &v);
        double inv = 1.0 / sqrt(v + eps), g = gamma ? gamma[c] : 1.0;
        double sdy = 0.0, sdyx = 0.0;
        for (int64_t n = 0; n < d.outer; n++)
            for (int64_t i = 0; i < d.inner; i++) {
                int64_t k = AT(d, n, c, i);
                sdy += dy[k];
                sdyx += dy[k] * (x[k] - mu) * inv;
            }
        if (dgamma)
            dgamma[c] = sdyx;
        if (dbeta)
            dbeta[c] = sdy;
        if (dx)
            for (int64_t n = 0; n < d.outer; n++)
                for (int64_t i = 0; i < d.inner; i++) {
                    int64_t k = AT(d, n, c, i);
                    double xh = (x[k] - mu) * inv;
                    dx[k] = g * inv * (dy[k] - sdy / m - xh * sdyx / m);
                }
    }
}

void nnp_bn_ref_backward_infer(nnp_bn_dims d, double eps, const double *x,
                               const double *gamma, const double *moving_mean,
                               const double *moving_var, const double *dy, double *dx,
                               double *dgamma, double *dbeta)
{
    for (int64_t c = 0; c < d.channels; c++) {
        double inv = 1.0 / sqrt(moving_var[c] + eps), g = gamma ? gamma[c] : 1.0;
        double sdy = 0.0, sdyx = 0.0;
        for (int64_t n = 0; n < d.outer; n++)
            for (int64_t i = 0; i < d.inner; i++) {
                int64_t k = AT(d, n, c, i);
                sdy += dy[k];
                sdyx += dy[k] * (x[k] - moving_mean[c]) * inv;
                if (dx)
                    dx[k] = g * inv * dy[k];
            }
        if (dgamma)
            dgamma[c] = sdyx;
        if (dbeta)
            dbeta[c] = sdy;
    }
}
