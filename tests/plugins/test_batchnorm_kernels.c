/*
 * BatchNormalization kernels (plugins/batchnorm/kernels.c): against the
 * torch-functional reference data, against the double reference
 * (kernels_ref.c), finite differences, thread-count determinism, numerical
 * stability and the degenerate inputs (batch of one, constant channels,
 * zero-size, NaN/Inf).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include "kernels.h"
#include "kernels_isa.h"

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

/* Scratch and saved statistics for C channels, as the plugin allocates them. */
typedef struct bufs {
    nnp_bn_scratch s;
    nnp_bn_saved sv;
} bufs;

static bufs bufs_new(int64_t C)
{
    size_t c = (size_t)(C > 0 ? C : 1);
    bufs b;
    b.s.partials = calloc(nnp_bn_partials_len(C), sizeof(double));
    b.s.ca = calloc(c, sizeof(float));
    b.s.cb = calloc(c, sizeof(float));
    b.s.cc = calloc(c, sizeof(float));
    b.sv.shift = calloc(c, sizeof(float));
    b.sv.mean = calloc(c, sizeof(double));
    b.sv.invstd = calloc(c, sizeof(double));
    cr_assert(b.s.partials && b.s.ca && b.s.cb && b.s.cc && b.sv.shift && b.sv.mean &&
              b.sv.invstd);
    return b;
}

static void bufs_free(bufs *b)
{
    free(b->s.partials);
    free(b->s.ca);
    free(b->s.cb);
    free(b->s.cc);
    free(b->sv.shift);
    free(b->sv.mean);
    free(b->sv.invstd);
}

static int64_t numel(nnp_bn_dims d) { return d.outer * d.channels * d.inner; }

/* Every kernel variant this build has and this CPU runs: isas[v], k. */
static const char *const isas[] = {"generic", "avx2", "avx512"};
#define FOR_EACH_VARIANT(v, k)                                                     \
    for (size_t v = 0; v < sizeof isas / sizeof isas[0]; v++)                      \
        for (const bn_kernels *k = bn_kernels_variant(isas[v]); k; k = NULL)

static float *f32_of(const double *v, int64_t n)
{
    float *f = malloc(sizeof(float) * (size_t)(n ? n : 1));
    cr_assert(f);
    for (int64_t i = 0; i < n; i++)
        f[i] = (float)v[i];
    return f;
}

static double *f64_of(const float *v, int64_t n)
{
    double *d = malloc(sizeof(double) * (size_t)(n ? n : 1));
    cr_assert(d);
    for (int64_t i = 0; i < n; i++)
        d[i] = v[i];
    return d;
}

/* Deterministic pseudo-random numbers (xorshift + Box-Muller): tests must not
 * depend on the C library's rand(). */
typedef struct rng {
    uint64_t s;
} rng;
static double rng_u(rng *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return ((double)(r->s >> 11) + 0.5) / 9007199254740992.0;
}
static double rng_n(rng *r) { return sqrt(-2.0 * log(rng_u(r))) * cos(6.283185307179586 * rng_u(r)); }

/* x[n,c,i] = offset[c] + scale[c] * N(0,1) */
static float *make_x(nnp_bn_dims d, uint64_t seed, double offset, double scale)
{
    rng r = {seed * 2654435761u + 1};
    int64_t n = numel(d);
    float *x = malloc(sizeof(float) * (size_t)(n ? n : 1));
    cr_assert(x);
    for (int64_t o = 0; o < d.outer; o++)
        for (int64_t c = 0; c < d.channels; c++)
            for (int64_t i = 0; i < d.inner; i++)
                x[(o * d.channels + c) * d.inner + i] =
                    (float)(offset * (1.0 + 0.1 * (double)c) + scale * (1.0 + 0.05 * (double)c) * rng_n(&r));
    return x;
}

static float *make_vec(int64_t n, uint64_t seed, double lo, double hi)
{
    rng r = {seed * 0x9E3779B97F4A7C15ull + 7};
    float *v = malloc(sizeof(float) * (size_t)(n ? n : 1));
    cr_assert(v);
    for (int64_t i = 0; i < n; i++)
        v[i] = (float)(lo + (hi - lo) * rng_u(&r));
    return v;
}

/* |got - ref| <= rtol*|ref| + rtol*max|ref|: relative to the array's scale,
 * since outputs such as dx sum terms that cancel. */
static void assert_close_scaled(const char *what, const float *got, const double *ref, int64_t n,
                                double rtol)
{
    double mx = 0.0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(ref[i]) && fabs(ref[i]) > mx)
            mx = fabs(ref[i]);
    tu_assert_close_f32(what, got, ref, n, rtol, rtol * mx);
}

/* Weight gradients are sums over the batch of terms t = dy (dbeta) and
 * dy * xhat (dgamma) that largely cancel; float partial sums carry an error
 * proportional to sum |t|, not to the result. Hence the tolerance
 * rtol*|ref| + 1e-7 * sum |t| per channel. */
static void assert_sums_close(const char *what, nnp_bn_dims d, const float *got,
                              const double *ref, const double *x, const double *dy,
                              const double *mean, const double *invstd, double rtol)
{
    for (int64_t c = 0; c < d.channels; c++) {
        double l1 = 0.0;
        for (int64_t o = 0; o < d.outer; o++)
            for (int64_t i = 0; i < d.inner; i++) {
                int64_t k = (o * d.channels + c) * d.inner + i;
                l1 += fabs(dy[k] * (mean ? (x[k] - mean[c]) * invstd[c] : 1.0));
            }
        double tol = rtol * fabs(ref[c]) + 1e-7 * l1;
        cr_assert(fabs(got[c] - ref[c]) <= tol, "%s[%lld]: got %.9g, expected %.9g (tol %.3g)",
                  what, (long long)c, got[c], ref[c], tol);
    }
}

/* ------------------------------------------------------------------ */
/* torch-functional reference data                                     */
/* ------------------------------------------------------------------ */

typedef struct tf_case {
    json_t *manifest;
    const char *dir;
} tf_case;

static void tol_of(json_t *manifest, const char *out, double *rtol, double *atol)
{
    json_t *o = json_object_get(json_object_get(manifest, "outputs"), out);
    cr_assert(o, "case.json has no output %s", out);
    *rtol = json_number_value(json_object_get(o, "rtol"));
    *atol = json_number_value(json_object_get(o, "atol"));
}

static void check_out(json_t *manifest, const char *dir, const char *out, const float *got,
                      int64_t n)
{
    double rtol, atol;
    int64_t ne;
    tol_of(manifest, out, &rtol, &atol);
    double *exp = tu_load_f64(tu_data_path("torch-functional/%s/expected/%s.npy", dir, out), NULL,
                              &ne);
    cr_assert_eq(ne, n, "%s/%s: %lld values, expected %lld", dir, out, (long long)ne,
                 (long long)n);
    tu_assert_close_f32(out, got, exp, n, rtol, atol);
    free(exp);
}

static float *load_in(const char *dir, const char *name, nnp_shape *shape, int64_t *n)
{
    double *v = tu_load_f64(tu_data_path("torch-functional/%s/inputs/%s.npy", dir, name), shape, n);
    float *f = f32_of(v, *n);
    free(v);
    return f;
}

static void run_torch_case(const char *dir)
{
    json_error_t je;
    json_t *m = json_load_file(tu_data_path("torch-functional/%s/case.json", dir), 0, &je);
    cr_assert(m, "%s: %s", dir, je.text);
    json_t *layer = json_object_get(m, "layer");
    int axis = (int)json_integer_value(json_object_get(layer, "axis"));
    double eps = json_number_value(json_object_get(layer, "epsilon"));
    double mom = json_number_value(json_object_get(layer, "momentum_keras"));

    nnp_shape xs, cs;
    int64_t n, C;
    float *x = load_in(dir, "x", &xs, &n);
    float *dy = load_in(dir, "dy", &xs, &n);
    float *gamma = load_in(dir, "gamma", &cs, &C);
    float *beta = load_in(dir, "beta", &cs, &C);
    float *mm = load_in(dir, "moving_mean", &cs, &C);
    float *mv = load_in(dir, "moving_variance", &cs, &C);
    if (axis < 0)
        axis += xs.rank;
    nnp_bn_args a = {nnp_bn_dims_of(xs.dims, xs.rank, axis), eps, mom, gamma, beta, 0, 0, 0};
    cr_assert_eq(a.dims.channels, C);
    bufs b = bufs_new(C);
    float *y = malloc(sizeof(float) * (size_t)n), *dx = malloc(sizeof(float) * (size_t)n);
    float *mm0 = malloc(sizeof(float) * (size_t)C), *mv0 = malloc(sizeof(float) * (size_t)C);
    memcpy(mm0, mm, sizeof(float) * (size_t)C);
    memcpy(mv0, mv, sizeof(float) * (size_t)C);

    /* training forward and the moving update */
    nnp_bn_forward_train(&a, x, y, mm, mv, &b.sv, &b.s);
    check_out(m, dir, "y", y, n);
    check_out(m, dir, "running_mean_keras", mm, C);
    check_out(m, dir, "running_var_keras", mv, C);

    /* batch statistics, as saved and as computed alone */
    float *bm = malloc(sizeof(float) * (size_t)C), *bv = malloc(sizeof(float) * (size_t)C);
    double *mean = malloc(sizeof(double) * (size_t)C), *var = malloc(sizeof(double) * (size_t)C);
    nnp_bn_batch_stats(&a, x, NULL, mean, var, &b.s);
    for (int64_t c = 0; c < C; c++) {
        bm[c] = (float)b.sv.mean[c];
        bv[c] = (float)var[c];
        cr_assert_eq(mean[c], b.sv.mean[c]);
        cr_assert_float_eq(b.sv.invstd[c], 1.0 / sqrt(var[c] + eps), 1e-12 * b.sv.invstd[c]);
    }
    check_out(m, dir, "batch_mean", bm, C);
    check_out(m, dir, "batch_var_biased", bv, C);

    /* backward through the batch statistics; weight gradients are added */
    float *dg = calloc((size_t)C, sizeof(float)), *db = calloc((size_t)C, sizeof(float));
    nnp_bn_backward_train(&a, x, dy, dx, &b.sv, dg, db, &b.s);
    check_out(m, dir, "dx", dx, n);
    check_out(m, dir, "dgamma", dg, C);
    check_out(m, dir, "dbeta", db, C);

    /* inference with the initial moving statistics */
    nnp_bn_forward_infer(&a, x, y, mm0, mv0, &b.s);
    check_out(m, dir, "y_inference", y, n);

    bufs_free(&b);
    free(x), free(dy), free(gamma), free(beta), free(mm), free(mv), free(mm0), free(mv0);
    free(y), free(dx), free(bm), free(bv), free(mean), free(var), free(dg), free(db);
    json_decref(m);
}

Test(torch_functional, nchw) { run_torch_case("nchw"); }
Test(torch_functional, nhwc) { run_torch_case("nhwc"); }
Test(torch_functional, dense_2d) { run_torch_case("dense_2d"); }

/* ------------------------------------------------------------------ */
/* fast kernels vs the double reference                                */
/* ------------------------------------------------------------------ */

/* Runs every kernel on one shape and compares with kernels_ref.c. */
static void fast_vs_ref(nnp_bn_dims d, int with_gamma, int with_beta, uint64_t seed)
{
    const int64_t n = numel(d), C = d.channels;
    const double eps = 1e-3, mom = 0.9;
    float *x = make_x(d, seed, 0.5, 2.0), *dy = make_x(d, seed + 1, 0.1, 1.0);
    float *gamma = make_vec(C, seed + 2, 0.5, 1.5), *beta = make_vec(C, seed + 3, -1, 1);
    float *mm = make_vec(C, seed + 4, -0.5, 0.5), *mv = make_vec(C, seed + 5, 0.5, 2.0);
    double *xd = f64_of(x, n), *dyd = f64_of(dy, n), *gd = f64_of(gamma, C), *bd = f64_of(beta, C);
    double *mmd = f64_of(mm, C), *mvd = f64_of(mv, C);
    nnp_bn_args a = {d, eps, mom, with_gamma ? gamma : NULL, with_beta ? beta : NULL, 0, 0, 0};
    bufs b = bufs_new(C);
    float *y = malloc(sizeof(float) * (size_t)n), *dx = malloc(sizeof(float) * (size_t)n);
    double *yr = malloc(sizeof(double) * (size_t)n), *dxr = malloc(sizeof(double) * (size_t)n);
    double *dgr = malloc(sizeof(double) * (size_t)C), *dbr = malloc(sizeof(double) * (size_t)C);
    float *dg = calloc((size_t)C, sizeof(float)), *db = calloc((size_t)C, sizeof(float));
    const double *g_ref = with_gamma ? gd : NULL, *b_ref = with_beta ? bd : NULL;

    /* inference forward and backward first: they read the initial moving stats */
    nnp_bn_forward_infer(&a, x, y, mm, mv, &b.s);
    nnp_bn_ref_forward_infer(d, eps, xd, g_ref, b_ref, mmd, mvd, yr);
    assert_close_scaled("infer y", y, yr, n, 1e-5);
    nnp_bn_backward_infer(&a, x, dy, dx, mm, mv, dg, db, &b.s);
    nnp_bn_ref_backward_infer(d, eps, xd, g_ref, mmd, mvd, dyd, dxr, dgr, dbr);
    assert_close_scaled("infer dx", dx, dxr, n, 1e-5);
    double *inv_m = calloc((size_t)C, sizeof(double)), *mean_b = calloc((size_t)C, sizeof(double));
    double *var_b = calloc((size_t)C, sizeof(double)), *inv_b = calloc((size_t)C, sizeof(double));
    for (int64_t c = 0; c < C; c++)
        inv_m[c] = 1.0 / sqrt(mvd[c] + eps);
    assert_sums_close("infer dgamma", d, dg, dgr, xd, dyd, mmd, inv_m, 1e-5);
    assert_sums_close("infer dbeta", d, db, dbr, xd, dyd, NULL, NULL, 1e-5);
    /* dx only: the fused elementwise path */
    nnp_bn_backward_infer(&a, x, dy, dx, mm, mv, NULL, NULL, &b.s);
    assert_close_scaled("infer dx alone", dx, dxr, n, 1e-5);

    nnp_bn_forward_train(&a, x, y, mm, mv, &b.sv, &b.s);
    nnp_bn_ref_forward_train(d, eps, mom, xd, g_ref, b_ref, yr, mean_b, var_b, mmd, mvd);
    for (int64_t c = 0; c < C; c++)
        inv_b[c] = 1.0 / sqrt(var_b[c] + eps);
    assert_close_scaled("train y", y, yr, n, 1e-5);
    tu_assert_close_f32("moving_mean", mm, mmd, C, 1e-5, 1e-6);
    tu_assert_close_f32("moving_variance", mv, mvd, C, 1e-5, 1e-6);

    memset(dg, 0, sizeof(float) * (size_t)C);
    memset(db, 0, sizeof(float) * (size_t)C);
    nnp_bn_backward_train(&a, x, dy, dx, &b.sv, dg, db, &b.s);
    nnp_bn_ref_backward_train(d, eps, xd, g_ref, dyd, dxr, dgr, dbr);
    assert_close_scaled("train dx", dx, dxr, n, 1e-5);
    assert_sums_close("train dgamma", d, dg, dgr, xd, dyd, mean_b, inv_b, 1e-5);
    assert_sums_close("train dbeta", d, db, dbr, xd, dyd, NULL, NULL, 1e-5);

    /* in place: y over x, dx over dy */
    float *xc = malloc(sizeof(float) * (size_t)n);
    memcpy(xc, x, sizeof(float) * (size_t)n);
    nnp_bn_forward_infer(&a, xc, xc, mm, mv, &b.s);
    nnp_bn_forward_infer(&a, x, y, mm, mv, &b.s);
    cr_assert(memcmp(xc, y, sizeof(float) * (size_t)n) == 0, "in-place inference differs");
    nnp_bn_backward_train(&a, x, dy, dx, &b.sv, NULL, NULL, &b.s);
    nnp_bn_backward_train(&a, x, dy, dy, &b.sv, NULL, NULL, &b.s);
    cr_assert(memcmp(dx, dy, sizeof(float) * (size_t)n) == 0, "in-place dx differs");

    bufs_free(&b);
    free(x), free(dy), free(gamma), free(beta), free(mm), free(mv), free(xd), free(dyd);
    free(gd), free(bd), free(mmd), free(mvd), free(y), free(dx), free(yr), free(dxr);
    free(dgr), free(dbr), free(dg), free(db), free(xc), free(inv_m), free(mean_b), free(var_b);
    free(inv_b);
}

Test(fast_vs_ref, channels_first)
{
    fast_vs_ref((nnp_bn_dims){4, 3, 25}, 1, 1, 1);     /* NCHW 4x3x5x5 */
    fast_vs_ref((nnp_bn_dims){8, 16, 100}, 1, 1, 2);
    fast_vs_ref((nnp_bn_dims){2, 5, 9000}, 1, 1, 3);   /* runs longer than a piece */
    fast_vs_ref((nnp_bn_dims){64, 4, 300}, 1, 1, 4);   /* several blocks per channel */
    fast_vs_ref((nnp_bn_dims){3, 7, 2}, 1, 1, 5);      /* tiny inner */
    fast_vs_ref((nnp_bn_dims){1, 2, 70000}, 1, 1, 6);  /* one long run per channel */
    /* short rows whose period (rows until the lanes realign) wraps the
     * channels: 7x7 (16 rows), 3x3 (16 rows), 1000 (2 rows) */
    fast_vs_ref((nnp_bn_dims){5, 3, 49}, 1, 1, 7);
    fast_vs_ref((nnp_bn_dims){4, 5, 9}, 1, 1, 8);
    fast_vs_ref((nnp_bn_dims){3, 7, 1000}, 1, 1, 9);
}

Test(fast_vs_ref, channels_last)
{
    fast_vs_ref((nnp_bn_dims){16, 8, 1}, 1, 1, 11);    /* dense [16, 8] */
    fast_vs_ref((nnp_bn_dims){100, 3, 1}, 1, 1, 12);   /* C = 3: rows packed in spans */
    fast_vs_ref((nnp_bn_dims){333, 5, 1}, 1, 1, 13);   /* rows not a multiple of the span */
    fast_vs_ref((nnp_bn_dims){200, 64, 1}, 1, 1, 14);  /* exactly one tile */
    fast_vs_ref((nnp_bn_dims){97, 150, 1}, 1, 1, 15);  /* rows not a multiple of four */
    fast_vs_ref((nnp_bn_dims){43, 1100, 1}, 1, 1, 19); /* several channel tiles */
    fast_vs_ref((nnp_bn_dims){5000, 7, 1}, 1, 1, 16);  /* several row blocks */
    fast_vs_ref((nnp_bn_dims){1000, 1, 1}, 1, 1, 17);  /* one channel */
    fast_vs_ref((nnp_bn_dims){40000, 1, 1}, 1, 1, 18);
}

Test(fast_vs_ref, no_gamma_no_beta)
{
    fast_vs_ref((nnp_bn_dims){8, 16, 100}, 0, 1, 21);
    fast_vs_ref((nnp_bn_dims){8, 16, 100}, 1, 0, 22);
    fast_vs_ref((nnp_bn_dims){300, 10, 1}, 0, 0, 23);
    fast_vs_ref((nnp_bn_dims){300, 10, 1}, 0, 1, 24);
}

Test(fast_vs_ref, dims_of_shape)
{
    int64_t s4[4] = {2, 3, 4, 5};
    nnp_bn_dims d = nnp_bn_dims_of(s4, 4, 1);
    cr_assert(d.outer == 2 && d.channels == 3 && d.inner == 20);
    d = nnp_bn_dims_of(s4, 4, 3);
    cr_assert(d.outer == 24 && d.channels == 5 && d.inner == 1);
    d = nnp_bn_dims_of(s4, 4, 0);
    cr_assert(d.outer == 1 && d.channels == 2 && d.inner == 60);
}

/* ------------------------------------------------------------------ */
/* finite differences on the double reference                          */
/* ------------------------------------------------------------------ */

/* L = sum(w * y) of the training-mode (or inference) forward in double. */
static double objective(nnp_bn_dims d, int train, const double *x, const double *g,
                        const double *b, const double *mm, const double *mv, const double *w,
                        double *y)
{
    if (train)
        nnp_bn_ref_forward_train(d, 1e-3, 0.99, x, g, b, y, NULL, NULL, NULL, NULL);
    else
        nnp_bn_ref_forward_infer(d, 1e-3, x, g, b, mm, mv, y);
    double L = 0.0;
    for (int64_t i = 0; i < numel(d); i++)
        L += w[i] * y[i];
    return L;
}

static double central(nnp_bn_dims d, int train, double *v, int64_t i, const double *x,
                      const double *g, const double *b, const double *mm, const double *mv,
                      const double *w, double *y)
{
    const double h = 1e-6 * (1.0 + fabs(v[i])), keep = v[i];
    v[i] = keep + h;
    double lp = objective(d, train, x, g, b, mm, mv, w, y);
    v[i] = keep - h;
    double lm = objective(d, train, x, g, b, mm, mv, w, y);
    v[i] = keep;
    return (lp - lm) / (2.0 * h);
}

static void finite_differences(nnp_bn_dims d, int train)
{
    const int64_t n = numel(d), C = d.channels;
    float *xf = make_x(d, 31, 0.3, 1.5), *wf = make_x(d, 32, 0.0, 1.0);
    float *gf = make_vec(C, 33, 0.5, 1.5), *bf = make_vec(C, 34, -1, 1);
    float *mmf = make_vec(C, 35, -0.5, 0.5), *mvf = make_vec(C, 36, 0.5, 2.0);
    double *x = f64_of(xf, n), *w = f64_of(wf, n), *g = f64_of(gf, C), *b = f64_of(bf, C);
    double *mm = f64_of(mmf, C), *mv = f64_of(mvf, C);
    double *y = malloc(sizeof(double) * (size_t)n), *dx = malloc(sizeof(double) * (size_t)n);
    double *dg = malloc(sizeof(double) * (size_t)C), *db = malloc(sizeof(double) * (size_t)C);
    if (train)
        nnp_bn_ref_backward_train(d, 1e-3, x, g, w, dx, dg, db);
    else
        nnp_bn_ref_backward_infer(d, 1e-3, x, g, mm, mv, w, dx, dg, db);
    for (int64_t i = 0; i < n; i += 1 + n / 40) {
        double num = central(d, train, x, i, x, g, b, mm, mv, w, y);
        cr_assert(fabs(num - dx[i]) <= 1e-6 + 1e-5 * fabs(dx[i]), "dx[%lld]: analytic %.10g, numeric %.10g",
                  (long long)i, dx[i], num);
    }
    for (int64_t c = 0; c < C; c++) {
        double num = central(d, train, g, c, x, g, b, mm, mv, w, y);
        cr_assert(fabs(num - dg[c]) <= 1e-6 + 1e-5 * fabs(dg[c]), "dgamma[%lld]: %.10g vs %.10g",
                  (long long)c, dg[c], num);
        num = central(d, train, b, c, x, g, b, mm, mv, w, y);
        cr_assert(fabs(num - db[c]) <= 1e-6 + 1e-5 * fabs(db[c]), "dbeta[%lld]: %.10g vs %.10g",
                  (long long)c, db[c], num);
    }
    free(xf), free(wf), free(gf), free(bf), free(mmf), free(mvf), free(x), free(w), free(g);
    free(b), free(mm), free(mv), free(y), free(dx), free(dg), free(db);
}

Test(finite_differences, channels_first_train) { finite_differences((nnp_bn_dims){3, 4, 10}, 1); }
Test(finite_differences, channels_last_train) { finite_differences((nnp_bn_dims){24, 5, 1}, 1); }
Test(finite_differences, channels_first_infer) { finite_differences((nnp_bn_dims){3, 4, 10}, 0); }
Test(finite_differences, channels_last_infer) { finite_differences((nnp_bn_dims){24, 5, 1}, 0); }

/* ------------------------------------------------------------------ */
/* determinism across thread counts                                    */
/* ------------------------------------------------------------------ */

typedef struct run_out {
    float *y, *yi, *dx, *dxi, *mm, *mv, *dg, *db, *dgi, *dbi;
} run_out;

static run_out run_all(nnp_bn_dims d, const float *x, const float *dy, const float *gamma,
                       const float *beta)
{
    const int64_t n = numel(d), C = d.channels;
    run_out o;
    float **arr[] = {&o.y, &o.yi, &o.dx, &o.dxi};
    for (size_t i = 0; i < 4; i++)
        *arr[i] = malloc(sizeof(float) * (size_t)n);
    float **vec[] = {&o.mm, &o.mv, &o.dg, &o.db, &o.dgi, &o.dbi};
    for (size_t i = 0; i < 6; i++)
        *vec[i] = calloc((size_t)C, sizeof(float));
    for (int64_t c = 0; c < C; c++)
        o.mv[c] = 1.0f;
    nnp_bn_args a = {d, 1e-3, 0.99, gamma, beta, 0, 0, 0};
    bufs b = bufs_new(C);
    nnp_bn_forward_train(&a, x, o.y, o.mm, o.mv, &b.sv, &b.s);
    nnp_bn_backward_train(&a, x, dy, o.dx, &b.sv, o.dg, o.db, &b.s);
    nnp_bn_forward_infer(&a, x, o.yi, o.mm, o.mv, &b.s);
    nnp_bn_backward_infer(&a, x, dy, o.dxi, o.mm, o.mv, o.dgi, o.dbi, &b.s);
    bufs_free(&b);
    return o;
}

static void run_free(run_out *o)
{
    free(o->y), free(o->yi), free(o->dx), free(o->dxi), free(o->mm), free(o->mv);
    free(o->dg), free(o->db), free(o->dgi), free(o->dbi);
}

static void determinism(nnp_bn_dims d)
{
    const int64_t n = numel(d), C = d.channels;
    float *x = make_x(d, 41, 1.0, 3.0), *dy = make_x(d, 42, 0.0, 1.0);
    float *gamma = make_vec(C, 43, 0.5, 1.5), *beta = make_vec(C, 44, -1, 1);
    int keep = omp_get_max_threads();
    omp_set_num_threads(1);
    run_out ref = run_all(d, x, dy, gamma, beta);
    for (int nt = 2; nt <= 16; nt++) {
        omp_set_num_threads(nt);
        run_out o = run_all(d, x, dy, gamma, beta);
        size_t fb = sizeof(float) * (size_t)n, cb = sizeof(float) * (size_t)C;
        cr_assert(memcmp(o.y, ref.y, fb) == 0, "train y differs at %d threads", nt);
        cr_assert(memcmp(o.yi, ref.yi, fb) == 0, "infer y differs at %d threads", nt);
        cr_assert(memcmp(o.dx, ref.dx, fb) == 0, "train dx differs at %d threads", nt);
        cr_assert(memcmp(o.dxi, ref.dxi, fb) == 0, "infer dx differs at %d threads", nt);
        cr_assert(memcmp(o.mm, ref.mm, cb) == 0, "moving_mean differs at %d threads", nt);
        cr_assert(memcmp(o.mv, ref.mv, cb) == 0, "moving_variance differs at %d threads", nt);
        cr_assert(memcmp(o.dg, ref.dg, cb) == 0, "train dgamma differs at %d threads", nt);
        cr_assert(memcmp(o.db, ref.db, cb) == 0, "train dbeta differs at %d threads", nt);
        cr_assert(memcmp(o.dgi, ref.dgi, cb) == 0, "infer dgamma differs at %d threads", nt);
        cr_assert(memcmp(o.dbi, ref.dbi, cb) == 0, "infer dbeta differs at %d threads", nt);
        run_free(&o);
    }
    omp_set_num_threads(keep);
    run_free(&ref);
    free(x), free(dy), free(gamma), free(beta);
}

Test(determinism, nchw_16x32x20x20) { determinism((nnp_bn_dims){16, 32, 400}); }
Test(determinism, dense_4096x64) { determinism((nnp_bn_dims){4096, 64, 1}); }
Test(determinism, nhwc_8x20x20x3) { determinism((nnp_bn_dims){8 * 20 * 20, 3, 1}); }
Test(determinism, wide_2048x300) { determinism((nnp_bn_dims){2048, 300, 1}); }
/* enough channels for the per-channel coefficients to be shared out */
Test(determinism, wide_256x1024) { determinism((nnp_bn_dims){256, 1024, 1}); }
Test(determinism, nchw_4x640x7x7) { determinism((nnp_bn_dims){4, 640, 49}); }
Test(determinism, long_runs_2x3x50000) { determinism((nnp_bn_dims){2, 3, 50000}); }

/* ------------------------------------------------------------------ */
/* the training forward's one-sweep form                               */
/* ------------------------------------------------------------------ */

/* One training forward of variant k; y, moving statistics and the saved
 * statistics into o (the moving statistics start at 0 and 1). */
typedef struct fw_out {
    float *y, *mm, *mv;
    bufs b;
} fw_out;

static fw_out forward_of(const bn_kernels *k, const nnp_bn_args *a, const float *x, int saved)
{
    const int64_t n = numel(a->dims), C = a->dims.channels;
    fw_out o = {malloc(sizeof(float) * (size_t)n), calloc((size_t)C, sizeof(float)),
                malloc(sizeof(float) * (size_t)C), bufs_new(C)};
    cr_assert(o.y && o.mm && o.mv);
    for (int64_t i = 0; i < n; i++) /* no value left from an earlier run */
        o.y[i] = NAN;
    for (int64_t c = 0; c < C; c++)
        o.mv[c] = 1.0f;
    k->forward_train(a, x, o.y, o.mm, o.mv, saved ? &o.b.sv : NULL, &o.b.s);
    return o;
}

static void fw_free(fw_out *o)
{
    free(o->y), free(o->mm), free(o->mv);
    bufs_free(&o->b);
}

/* Channels-first shapes take the one-sweep form (statistics and output one
 * group of channels at a time): it must give the bits of the two-sweep form
 * in every kernel variant this CPU runs, at any thread count, with or
 * without saved statistics, and match the double reference. */
static void one_sweep_x(nnp_bn_dims d, float *x, int check_ref)
{
    const int64_t n = numel(d), C = d.channels;
    float *gamma = make_vec(C, 52, 0.5, 1.5), *beta = make_vec(C, 53, -1, 1);
    double *xd = f64_of(x, n), *gd = f64_of(gamma, C), *bd = f64_of(beta, C);
    double *yr = malloc(sizeof(double) * (size_t)n);
    double *mmr = calloc((size_t)C, sizeof(double)), *mvr = malloc(sizeof(double) * (size_t)C);
    for (int64_t c = 0; c < C; c++)
        mvr[c] = 1.0;
    nnp_bn_ref_forward_train(d, 1e-3, 0.9, xd, gd, bd, yr, NULL, NULL, mmr, mvr);
    const size_t fb = sizeof(float) * (size_t)n, cb = sizeof(float) * (size_t)C;
    const size_t db = sizeof(double) * (size_t)C;
    FOR_EACH_VARIANT(v, k) {
        for (int nt = 1; nt <= 4; nt++) {
            nnp_bn_args a = {d, 1e-3, 0.9, gamma, beta, nt, 0, 0};
            /* the kernels' own choice: one sweep under AVX-512 for these
             * shapes on one thread */
            if (nt == 1 && strcmp(isas[v], "avx512") == 0)
                cr_assert(k->forward_groups(&a) > 0,
                          "%s [%lld,%lld,%lld]: expected the one-sweep form", isas[v],
                          (long long)d.outer, (long long)C, (long long)d.inner);
            a.sweeps = 1; /* every variant has the one-sweep form: test it */
            cr_assert(k->forward_groups(&a) > 0);
            fw_out one = forward_of(k, &a, x, 1), bare = forward_of(k, &a, x, 0);
            { /* in place: y over x */
                float *xy = malloc(fb), *mm = calloc((size_t)C, sizeof(float));
                float *mv = malloc(cb);
                cr_assert(xy && mm && mv);
                memcpy(xy, x, fb);
                for (int64_t c = 0; c < C; c++)
                    mv[c] = 1.0f;
                bufs b = bufs_new(C);
                k->forward_train(&a, xy, xy, mm, mv, &b.sv, &b.s);
                cr_assert(memcmp(xy, one.y, fb) == 0, "%s, %d threads: in-place y differs",
                          isas[v], nt);
                bufs_free(&b);
                free(xy), free(mm), free(mv);
            }
            a.sweeps = 2;
            cr_assert(k->forward_groups(&a) == 0);
            fw_out two = forward_of(k, &a, x, 1);
            const char *isa = isas[v];
            cr_assert(memcmp(one.y, two.y, fb) == 0, "%s, %d threads: y differs", isa, nt);
            cr_assert(memcmp(bare.y, two.y, fb) == 0, "%s, %d threads: y without saved "
                      "statistics differs", isa, nt);
            cr_assert(memcmp(one.mm, two.mm, cb) == 0 && memcmp(one.mv, two.mv, cb) == 0 &&
                          memcmp(bare.mm, two.mm, cb) == 0 && memcmp(bare.mv, two.mv, cb) == 0,
                      "%s, %d threads: moving statistics differ", isa, nt);
            cr_assert(memcmp(one.b.sv.shift, two.b.sv.shift, cb) == 0 &&
                          memcmp(one.b.sv.mean, two.b.sv.mean, db) == 0 &&
                          memcmp(one.b.sv.invstd, two.b.sv.invstd, db) == 0,
                      "%s, %d threads: saved statistics differ", isa, nt);
            if (nt == 1 && check_ref) {
                assert_close_scaled("one-sweep y", one.y, yr, n, 1e-5);
                tu_assert_close_f32("one-sweep moving_mean", one.mm, mmr, C, 1e-5, 1e-6);
                tu_assert_close_f32("one-sweep moving_variance", one.mv, mvr, C, 1e-5, 1e-6);
            }
            fw_free(&one), fw_free(&bare), fw_free(&two);
        }
    }
    free(x), free(gamma), free(beta), free(xd), free(gd), free(bd), free(yr), free(mmr);
    free(mvr);
}


static void one_sweep(nnp_bn_dims d) { one_sweep_x(d, make_x(d, 51, 2.0, 3.0), 1); }

/* rows of 196 floats (periods of 4 rows under AVX-512), 64 groups */
Test(one_sweep, rows_14x14) { one_sweep((nnp_bn_dims){16, 64, 196}); }
/* rows of 49 and of 3 floats: 16-row periods */
Test(one_sweep, rows_7x7) { one_sweep((nnp_bn_dims){8, 64, 49}); }
Test(one_sweep, rows_of_3) { one_sweep((nnp_bn_dims){64, 32, 3}); }
/* rows of whole vectors, a reduction item spanning two runs */
Test(one_sweep, rows_56x56) { one_sweep((nnp_bn_dims){4, 48, 3136}); }
/* items spanning many samples of a channel: the item flushes */
Test(one_sweep, items_across_samples) { one_sweep((nnp_bn_dims){512, 4, 20}); }
/* The same, with every third sample (not the first: the shift stays small)
 * 1e12 times larger: the double sums of the float partial sums now round,
 * so only the same order of additions as the two-sweep form gives its
 * bits. */
Test(one_sweep, items_across_samples_rounding)
{
    const nnp_bn_dims d = {512, 4, 20};
    float *x = make_x(d, 54, 0.0, 1.0);
    for (int64_t o = 1; o < d.outer; o += 3)
        for (int64_t j = 0; j < d.channels * d.inner; j++)
            x[o * d.channels * d.inner + j] *= 1e12f;
    one_sweep_x(d, x, 0);
}
/* few long runs: each cut into slices, every slice its own item */
Test(one_sweep, sliced_runs) { one_sweep((nnp_bn_dims){1, 4, 100000}); }

/* ------------------------------------------------------------------ */
/* every kernel variant against the double reference                   */
/* ------------------------------------------------------------------ */

/* Training forward and backward of each variant this CPU runs against
 * kernels_ref.c (the variants differ in rounding, not in results). */
static void variants_vs_ref(nnp_bn_dims d)
{
    const int64_t n = numel(d), C = d.channels;
    const double eps = 1e-3, mom = 0.9;
    float *x = make_x(d, 61, 0.5, 2.0), *dy = make_x(d, 62, 0.1, 1.0);
    float *gamma = make_vec(C, 63, 0.5, 1.5), *beta = make_vec(C, 64, -1, 1);
    double *xd = f64_of(x, n), *dyd = f64_of(dy, n), *gd = f64_of(gamma, C), *bd = f64_of(beta, C);
    double *yr = malloc(sizeof(double) * (size_t)n), *dxr = malloc(sizeof(double) * (size_t)n);
    double *mean = malloc(sizeof(double) * (size_t)C), *var = malloc(sizeof(double) * (size_t)C);
    double *inv = malloc(sizeof(double) * (size_t)C), *dgr = malloc(sizeof(double) * (size_t)C);
    double *dbr = malloc(sizeof(double) * (size_t)C);
    nnp_bn_ref_forward_train(d, eps, mom, xd, gd, bd, yr, mean, var, NULL, NULL);
    nnp_bn_ref_backward_train(d, eps, xd, gd, dyd, dxr, dgr, dbr);
    for (int64_t c = 0; c < C; c++)
        inv[c] = 1.0 / sqrt(var[c] + eps);
    float *y = malloc(sizeof(float) * (size_t)n), *dx = malloc(sizeof(float) * (size_t)n);
    float *dg = malloc(sizeof(float) * (size_t)C), *db = malloc(sizeof(float) * (size_t)C);
    FOR_EACH_VARIANT(v, k) {
        nnp_bn_args a = {d, eps, mom, gamma, beta, 0, 0, 0};
        bufs b = bufs_new(C);
        memset(dg, 0, sizeof(float) * (size_t)C);
        memset(db, 0, sizeof(float) * (size_t)C);
        for (int64_t i = 0; i < n; i++) /* no value left from the previous variant */
            y[i] = dx[i] = NAN;
        k->forward_train(&a, x, y, NULL, NULL, &b.sv, &b.s);
        k->backward_train(&a, x, dy, dx, &b.sv, dg, db, &b.s);
        cr_log_info("%s [%lld,%lld,%lld]", isas[v], (long long)d.outer, (long long)C,
                    (long long)d.inner);
        assert_close_scaled("train y", y, yr, n, 1e-5);
        assert_close_scaled("train dx", dx, dxr, n, 1e-5);
        assert_sums_close("train dgamma", d, dg, dgr, xd, dyd, mean, inv, 1e-5);
        assert_sums_close("train dbeta", d, db, dbr, xd, dyd, NULL, NULL, 1e-5);
        bufs_free(&b);
    }
    free(x), free(dy), free(gamma), free(beta), free(xd), free(dyd), free(gd), free(bd);
    free(yr), free(dxr), free(mean), free(var), free(inv), free(dgr), free(dbr), free(y);
    free(dx), free(dg), free(db);
}

/* channels-last spans of 64 lanes (C = 64, or 16 and 32 with four and two
 * rows a span), a last span cut short */
Test(variants, channels_last_64_lanes)
{
    variants_vs_ref((nnp_bn_dims){1001, 64, 1});
    variants_vs_ref((nnp_bn_dims){1001, 16, 1});
    variants_vs_ref((nnp_bn_dims){7, 32, 1});
}
/* over NT_MIN (16 MiB): the outputs go out with streaming stores */
Test(variants, channels_last_64_lanes_streamed) { variants_vs_ref((nnp_bn_dims){65601, 64, 1}); }

/* channels-first rows up to 512 floats: the backward sums walk the
 * tensor's 16-float vectors, splitting those that hold row ends: rows
 * shorter than a vector (3, 9), one vector (16), just over (17), 196, the
 * longest (512) and the first past it (513, per-run sums); rows of 49 cut
 * into items of 84 rows, which start inside vectors */
Test(variants, channels_first_short_rows)
{
    static const nnp_bn_dims shapes[] = {{5, 7, 3},   {3, 5, 9},   {4, 6, 16}, {4, 6, 17},
                                         {3, 5, 196}, {2, 3, 512}, {2, 3, 513}, {64, 64, 49},
                                         {1, 1, 9}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        variants_vs_ref(shapes[i]);
}

/* every row length from 2 to 40 floats (where a row end falls in a
 * vector, vectors holding several row ends, items of one row), one and
 * three channels, one sample and five */
Test(variants, channels_first_row_lengths)
{
    for (int64_t inner = 2; inner <= 40; inner++)
        for (int64_t C = 1; C <= 3; C += 2)
            for (int64_t outer = 1; outer <= 5; outer += 4)
                variants_vs_ref((nnp_bn_dims){outer, C, inner});
}

/* The backward gives the same bits for the same values at any address: a
 * walk by the tensor's vectors must count from its first element, not
 * from memory alignment (x and dy one float off a 64-byte boundary). */
static void backward_any_address(nnp_bn_dims d)
{
    const int64_t n = numel(d), C = d.channels;
    float *x = make_x(d, 71, 1.0, 2.0), *dy = make_x(d, 72, 0.0, 1.0);
    float *gamma = make_vec(C, 73, 0.5, 1.5), *beta = make_vec(C, 74, -1, 1);
    float *xo = nnp_aligned_alloc(sizeof(float) * (size_t)(n + 16));
    float *dyo = nnp_aligned_alloc(sizeof(float) * (size_t)(n + 16));
    cr_assert(xo && dyo);
    memcpy(xo + 1, x, sizeof(float) * (size_t)n);
    memcpy(dyo + 1, dy, sizeof(float) * (size_t)n);
    float *y = malloc(sizeof(float) * (size_t)n);
    float *dx[2] = {malloc(sizeof(float) * (size_t)n), malloc(sizeof(float) * (size_t)n)};
    float *dg[2] = {calloc((size_t)C, sizeof(float)), calloc((size_t)C, sizeof(float))};
    float *db[2] = {calloc((size_t)C, sizeof(float)), calloc((size_t)C, sizeof(float))};
    FOR_EACH_VARIANT(v, k) {
        nnp_bn_args a = {d, 1e-3, 0.9, gamma, beta, 0, 0, 0};
        bufs b = bufs_new(C);
        const size_t plen = sizeof(double) * nnp_bn_partials_len(C);
        double *sums = malloc(plen);
        k->forward_train(&a, x, y, NULL, NULL, &b.sv, &b.s);
        for (int j = 0; j < 2; j++) {
            memset(dg[j], 0, sizeof(float) * (size_t)C);
            memset(db[j], 0, sizeof(float) * (size_t)C);
            k->backward_train(&a, j ? xo + 1 : x, j ? dyo + 1 : dy, dx[j], &b.sv, dg[j], db[j],
                              &b.s);
            if (!j)
                memcpy(sums, b.s.partials, plen);
        }
        /* the double sums themselves, where a float row sum's last bit
         * survives (dgamma's float rounding may hide it) */
        cr_assert(memcmp(sums, b.s.partials, plen) == 0, "%s: backward sums", isas[v]);
        free(sums);
        cr_assert(memcmp(dx[0], dx[1], sizeof(float) * (size_t)n) == 0, "%s: dx", isas[v]);
        cr_assert(memcmp(dg[0], dg[1], sizeof(float) * (size_t)C) == 0, "%s: dgamma", isas[v]);
        cr_assert(memcmp(db[0], db[1], sizeof(float) * (size_t)C) == 0, "%s: dbeta", isas[v]);
        bufs_free(&b);
    }
    free(x), free(dy), free(gamma), free(beta), free(y);
    nnp_aligned_free(xo), nnp_aligned_free(dyo);
    for (int j = 0; j < 2; j++)
        free(dx[j]), free(dg[j]), free(db[j]);
}

Test(variants, backward_any_address)
{
    backward_any_address((nnp_bn_dims){16, 32, 196});
    backward_any_address((nnp_bn_dims){8, 16, 9});
}

/* ------------------------------------------------------------------ */
/* the backward of a ReLU after the layer                              */
/* ------------------------------------------------------------------ */

static void bits_equal(const char *what, const char *isa, int nt, const float *got,
                       const float *want, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        cr_assert(memcmp(&got[i], &want[i], sizeof(float)) == 0,
                  "%s, %s, %d threads: [%lld] %.9g, the ReLU's backward then the layer's %.9g",
                  what, isa, nt, (long long)i, got[i], want[i]);
}

/* backward_train_relu is the ReLU layer's backward (y > 0 ? dy : 0) and then
 * backward_train, bit for bit: every variant, 1 to 3 threads, dx apart from
 * dy or over it. Channel 0 is constant with beta 0, so its y is exactly 0
 * and no gradient may pass there. */
static void relu_backward(nnp_bn_dims d)
{
    const int64_t n = numel(d), C = d.channels, in = d.inner;
    float *x = make_x(d, 71, 0.3, 1.5), *dy = make_x(d, 72, 0.0, 1.0);
    float *gamma = make_vec(C, 73, 0.5, 1.5), *beta = make_vec(C, 74, -1, 1);
    for (int64_t o = 0; o < d.outer; o++)
        for (int64_t i = 0; i < in; i++)
            x[o * C * in + i] = 1.25f;
    beta[0] = 0.0f;
    float *y = malloc(sizeof(float) * (size_t)n), *g0 = malloc(sizeof(float) * (size_t)n);
    float *dx0 = malloc(sizeof(float) * (size_t)n), *g1 = malloc(sizeof(float) * (size_t)n);
    float *dx1 = malloc(sizeof(float) * (size_t)n), *gs = malloc(sizeof(float) * 4 * (size_t)C);
    float *dg0 = gs, *db0 = gs + C, *dg1 = gs + 2 * C, *db1 = gs + 3 * C;
    FOR_EACH_VARIANT(v, k) {
        nnp_bn_args a = {d, 1e-3, 0.9, gamma, beta, 0, 0, 1};
        bufs b = bufs_new(C);
        k->forward_train(&a, x, y, NULL, NULL, &b.sv, &b.s);
        for (int64_t o = 0; o < d.outer; o++)
            for (int64_t i = 0; i < in; i++)
                cr_assert(y[o * C * in + i] == 0.0f, "%s: channel 0's y %g", isas[v],
                          y[o * C * in + i]);
        for (int64_t i = 0; i < n; i++)
            g0[i] = y[i] > 0.0f ? dy[i] : 0.0f;
        memset(dg0, 0, sizeof(float) * 2 * (size_t)C);
        k->backward_train(&a, x, g0, dx0, &b.sv, dg0, db0, &b.s);
        for (int nt = 1; nt <= 3; nt++)
            for (int over = 0; over < 2; over++) {
                a.nthreads = nt;
                memcpy(g1, dy, sizeof(float) * (size_t)n);
                memset(dg1, 0, sizeof(float) * 2 * (size_t)C);
                float *dx = over ? g1 : dx1;
                k->backward_train_relu(&a, x, y, g1, dx, &b.sv, dg1, db1, &b.s);
                if (!over)
                    bits_equal("masked dy", isas[v], nt, g1, g0, n);
                bits_equal("dx", isas[v], nt, dx, dx0, n);
                bits_equal("dgamma", isas[v], nt, dg1, dg0, C);
                bits_equal("dbeta", isas[v], nt, db1, db0, C);
            }
        bufs_free(&b);
    }
    free(x), free(dy), free(gamma), free(beta), free(y), free(g0), free(dx0), free(g1);
    free(dx1), free(gs);
}

/* long runs (the vectorized loop), runs of one or two chunks, rows of a
 * few vectors and shorter than one, runs cut into slices, channels-last */
Test(relu_backward, rows_56x56) { relu_backward((nnp_bn_dims){4, 16, 3136}); }
Test(relu_backward, rows_28x28) { relu_backward((nnp_bn_dims){4, 16, 784}); }
Test(relu_backward, rows_14x14) { relu_backward((nnp_bn_dims){8, 32, 196}); }
Test(relu_backward, rows_7x7) { relu_backward((nnp_bn_dims){8, 64, 49}); }
Test(relu_backward, rows_of_3) { relu_backward((nnp_bn_dims){64, 32, 3}); }
Test(relu_backward, sliced_runs) { relu_backward((nnp_bn_dims){1, 4, 100000}); }
Test(relu_backward, channels_last) { relu_backward((nnp_bn_dims){8 * 20 * 20, 24, 1}); }

/* ------------------------------------------------------------------ */
/* numerical stability: mean 1e4, std 1e-2                             */
/* ------------------------------------------------------------------ */

static void stability(nnp_bn_dims d)
{
    const int64_t n = numel(d), C = d.channels;
    float *x = make_x(d, 51, 1e4, 1e-2);
    double *xd = f64_of(x, n);
    double *mr = malloc(sizeof(double) * (size_t)C), *vr = malloc(sizeof(double) * (size_t)C);
    double *mean = malloc(sizeof(double) * (size_t)C), *var = malloc(sizeof(double) * (size_t)C);
    /* float64 two-pass statistics of the same float32 data */
    nnp_bn_ref_forward_train(d, 1e-3, 0.99, xd, NULL, NULL, NULL, mr, vr, NULL, NULL);
    nnp_bn_args a = {d, 1e-3, 0.99, NULL, NULL, 0, 0, 0};
    bufs b = bufs_new(C);
    nnp_bn_batch_stats(&a, x, NULL, mean, var, &b.s);
    for (int64_t c = 0; c < C; c++) {
        cr_assert(vr[c] > 1e-5, "degenerate test data");
        cr_assert(fabs(var[c] - vr[c]) <= 1e-4 * vr[c], "var[%lld] = %.10g, float64 %.10g",
                  (long long)c, var[c], vr[c]);
        cr_assert(fabs(mean[c] - mr[c]) <= 1e-10 * fabs(mr[c]), "mean[%lld] = %.15g vs %.15g",
                  (long long)c, mean[c], mr[c]);
    }
    /* and the normalized output, which uses the same shifted form */
    float *y = malloc(sizeof(float) * (size_t)n);
    double *yr = malloc(sizeof(double) * (size_t)n);
    nnp_bn_forward_train(&a, x, y, NULL, NULL, &b.sv, &b.s);
    nnp_bn_ref_forward_train(d, 1e-3, 0.99, xd, NULL, NULL, yr, NULL, NULL, NULL, NULL);
    assert_close_scaled("y", y, yr, n, 1e-4);
    bufs_free(&b);
    free(x), free(xd), free(mr), free(vr), free(mean), free(var), free(y), free(yr);
}

Test(stability, channels_first) { stability((nnp_bn_dims){64, 8, 256}); }
Test(stability, channels_last) { stability((nnp_bn_dims){20000, 8, 1}); }
Test(stability, channels_last_wide) { stability((nnp_bn_dims){3000, 100, 1}); }

/* ------------------------------------------------------------------ */
/* degenerate inputs                                                   */
/* ------------------------------------------------------------------ */

Test(degenerate, batch_of_one_dense)
{
    /* one sample: variance 0, xhat 0, y = beta, dx = 0; moving variance
     * decays toward 0 as in Keras */
    nnp_bn_dims d = {1, 4, 1};
    float x[4] = {1.5f, -2.0f, 0.0f, 1e6f}, dy[4] = {1, 2, 3, 4}, y[4], dx[4];
    float gamma[4] = {2, 2, 2, 2}, beta[4] = {0.5f, -1, 0, 3};
    float mm[4] = {0}, mv[4] = {1, 1, 1, 1}, dg[4] = {0}, db[4] = {0};
    nnp_bn_args a = {d, 1e-3, 0.99, gamma, beta, 0, 0, 0};
    bufs b = bufs_new(4);
    nnp_bn_forward_train(&a, x, y, mm, mv, &b.sv, &b.s);
    nnp_bn_backward_train(&a, x, dy, dx, &b.sv, dg, db, &b.s);
    for (int c = 0; c < 4; c++) {
        cr_assert_eq(y[c], beta[c], "y[%d] = %g, beta %g", c, y[c], beta[c]);
        cr_assert_eq(dx[c], 0.0f, "dx[%d] = %g", c, dx[c]);
        cr_assert_eq(dg[c], 0.0f);
        cr_assert_eq(db[c], dy[c]);
        cr_assert_float_eq(mm[c], 0.01f * x[c], 1e-6f * (1 + fabsf(x[c])));
        cr_assert_float_eq(mv[c], 0.99f, 1e-7f);
    }
    bufs_free(&b);
}

Test(degenerate, batch_of_one_images)
{
    /* statistics over H*W of the single sample: matches the reference */
    fast_vs_ref((nnp_bn_dims){1, 6, 49}, 1, 1, 61);
    fast_vs_ref((nnp_bn_dims){49, 6, 1}, 1, 1, 62);
}

static void constant_channels(nnp_bn_dims d)
{
    const int64_t n = numel(d), C = d.channels;
    float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n);
    float *dy = make_x(d, 71, 0.2, 1.0), *dx = malloc(sizeof(float) * (size_t)n);
    for (int64_t o = 0; o < d.outer; o++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < d.inner; i++)
                x[(o * C + c) * d.inner + i] = 1234.5f + (float)c;
    float *gamma = make_vec(C, 72, 0.5, 1.5), *beta = make_vec(C, 73, -1, 1);
    float *mm = calloc((size_t)C, sizeof(float)), *mv = calloc((size_t)C, sizeof(float));
    nnp_bn_args a = {d, 1e-3, 0.99, gamma, beta, 0, 0, 0};
    bufs b = bufs_new(C);
    nnp_bn_forward_train(&a, x, y, mm, mv, &b.sv, &b.s);
    for (int64_t o = 0; o < d.outer; o++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < d.inner; i++)
                cr_assert_eq(y[(o * C + c) * d.inner + i], beta[c], "constant channel: y != beta");
    for (int64_t c = 0; c < C; c++) {
        cr_assert_eq(b.sv.mean[c], 1234.5 + (double)c);
        cr_assert_float_eq(b.sv.invstd[c], 1.0 / sqrt(1e-3), 1e-9);
        cr_assert_eq(mv[c], 0.0f);
    }
    /* dx = gamma/sqrt(eps) * (dy - mean(dy)) */
    double *xd = f64_of(x, n), *dyd = f64_of(dy, n), *gd = f64_of(gamma, C);
    double *dxr = malloc(sizeof(double) * (size_t)n);
    nnp_bn_backward_train(&a, x, dy, dx, &b.sv, NULL, NULL, &b.s);
    nnp_bn_ref_backward_train(d, 1e-3, xd, gd, dyd, dxr, NULL, NULL);
    assert_close_scaled("dx", dx, dxr, n, 1e-5);
    bufs_free(&b);
    free(x), free(y), free(dy), free(dx), free(gamma), free(beta), free(mm), free(mv);
    free(xd), free(dyd), free(gd), free(dxr);
}

Test(degenerate, constant_channels_first) { constant_channels((nnp_bn_dims){4, 3, 50}); }
Test(degenerate, constant_channels_last) { constant_channels((nnp_bn_dims){300, 5, 1}); }

static void zero_size(nnp_bn_dims d)
{
    /* documented choice: an empty batch writes nothing, leaves the moving
     * statistics unchanged (Keras would make them NaN, as 0/0) and adds
     * nothing to the weight gradients; the saved statistics are NaN */
    const int64_t C = d.channels;
    float x[1] = {0}, y[1] = {42}, gamma[4] = {1, 1, 1, 1}, beta[4] = {0};
    float mm[4] = {0.5f, 0.5f, 0.5f, 0.5f}, mv[4] = {2, 2, 2, 2};
    float dg[4] = {7, 7, 7, 7}, db[4] = {9, 9, 9, 9};
    nnp_bn_args a = {d, 1e-3, 0.99, gamma, beta, 0, 0, 0};
    bufs b = bufs_new(4);
    nnp_bn_forward_train(&a, x, y, mm, mv, &b.sv, &b.s);
    nnp_bn_backward_train(&a, x, x, y, &b.sv, dg, db, &b.s);
    nnp_bn_forward_infer(&a, x, y, mm, mv, &b.s);
    nnp_bn_backward_infer(&a, x, x, y, mm, mv, dg, db, &b.s);
    cr_assert_eq(y[0], 42.0f, "an empty output was written to");
    for (int64_t c = 0; c < C; c++) {
        cr_assert(mm[c] == 0.5f && mv[c] == 2.0f, "moving statistics changed");
        cr_assert(dg[c] == 7.0f && db[c] == 9.0f, "weight gradients changed");
        cr_assert(isnan(b.sv.mean[c]), "saved mean of an empty batch is not NaN");
    }
    bufs_free(&b);
}

Test(degenerate, zero_batch_channels_first) { zero_size((nnp_bn_dims){0, 4, 25}); }
Test(degenerate, zero_batch_channels_last) { zero_size((nnp_bn_dims){0, 4, 1}); }
Test(degenerate, zero_spatial) { zero_size((nnp_bn_dims){3, 4, 0}); }
Test(degenerate, zero_channels)
{
    nnp_bn_dims d = {5, 0, 7};
    float x[1] = {0}, y[1] = {42};
    nnp_bn_args a = {d, 1e-3, 0.99, NULL, NULL, 0, 0, 0};
    bufs b = bufs_new(0);
    nnp_bn_forward_train(&a, x, y, NULL, NULL, &b.sv, &b.s);
    nnp_bn_backward_train(&a, x, x, y, &b.sv, NULL, NULL, &b.s);
    nnp_bn_forward_infer(&a, x, y, NULL, NULL, &b.s);
    cr_assert_eq(y[0], 42.0f);
    bufs_free(&b);
}

/* A NaN or Inf in one channel spoils that channel only, as in Keras:
 * outputs NaN, moving mean NaN (NaN input) or +-Inf (Inf input), moving
 * variance NaN; the other channels match the reference. */
static void nonfinite(nnp_bn_dims d, float bad, int64_t at_first)
{
    const int64_t n = numel(d), C = d.channels;
    float *x = make_x(d, 81, 0.5, 1.0), *y = malloc(sizeof(float) * (size_t)n);
    const int64_t cbad = 1;
    /* the channel's first element (the shift) or one in the middle */
    int64_t o = at_first ? 0 : d.outer / 2, i = at_first ? 0 : d.inner / 2;
    x[(o * C + cbad) * d.inner + i] = bad;
    float *mm = calloc((size_t)C, sizeof(float)), *mv = calloc((size_t)C, sizeof(float));
    double *xd = f64_of(x, n), *yr = malloc(sizeof(double) * (size_t)n);
    double *mmr = calloc((size_t)C, sizeof(double)), *mvr = calloc((size_t)C, sizeof(double));
    for (int64_t c = 0; c < C; c++)
        mv[c] = 1.0f, mvr[c] = 1.0;
    nnp_bn_args a = {d, 1e-3, 0.99, NULL, NULL, 0, 0, 0};
    bufs b = bufs_new(C);
    nnp_bn_forward_train(&a, x, y, mm, mv, &b.sv, &b.s);
    nnp_bn_ref_forward_train(d, 1e-3, 0.99, xd, NULL, NULL, yr, NULL, NULL, mmr, mvr);
    for (int64_t oo = 0; oo < d.outer; oo++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t ii = 0; ii < d.inner; ii++) {
                int64_t k = (oo * C + c) * d.inner + ii;
                if (c == cbad)
                    cr_assert(isnan(y[k]), "y[%lld] of the spoiled channel is %g", (long long)k, y[k]);
                else
                    cr_assert(fabs(y[k] - yr[k]) <= 1e-5 * (1 + fabs(yr[k])), "y[%lld]", (long long)k);
            }
    for (int64_t c = 0; c < C; c++) {
        if (c != cbad) {
            cr_assert(isfinite(mm[c]) && isfinite(mv[c]));
            continue;
        }
        cr_assert(isnan(mv[c]), "moving variance of the spoiled channel is %g", mv[c]);
        if (isnan(bad))
            cr_assert(isnan(mm[c]), "moving mean is %g", mm[c]);
        else
            cr_assert(mm[c] == bad, "moving mean is %g, expected %g", mm[c], bad);
        cr_assert(mm[c] == (float)mmr[c] || (isnan(mm[c]) && isnan(mmr[c])), "ref disagrees");
    }
    /* inference: only the bad element itself is non-finite */
    for (int64_t c = 0; c < C; c++)
        mm[c] = 0.0f, mv[c] = 1.0f;
    nnp_bn_forward_infer(&a, x, y, mm, mv, &b.s);
    for (int64_t k = 0; k < n; k++) {
        int isbad = k == (o * C + cbad) * d.inner + i;
        cr_assert(isbad ? !isfinite(y[k]) : isfinite(y[k]), "infer y[%lld] = %g", (long long)k, y[k]);
    }
    bufs_free(&b);
    free(x), free(y), free(mm), free(mv), free(xd), free(yr), free(mmr), free(mvr);
}

Test(nonfinite, nan_channels_first) { nonfinite((nnp_bn_dims){4, 3, 30}, NAN, 0); }
Test(nonfinite, nan_channels_last) { nonfinite((nnp_bn_dims){50, 3, 1}, NAN, 0); }
Test(nonfinite, nan_first_element) { nonfinite((nnp_bn_dims){50, 3, 1}, NAN, 1); }
Test(nonfinite, inf_channels_first) { nonfinite((nnp_bn_dims){4, 3, 30}, INFINITY, 0); }
Test(nonfinite, inf_channels_last) { nonfinite((nnp_bn_dims){50, 3, 1}, INFINITY, 0); }
Test(nonfinite, neg_inf_first_element) { nonfinite((nnp_bn_dims){4, 3, 30}, -INFINITY, 1); }

/* ------------------------------------------------------------------ */
/* a ReLU in the training forward (nnp_bn_args.relu)                   */
/* ------------------------------------------------------------------ */

/* With relu the training forward writes y > 0 ? y : 0 of the y it writes
 * without, bit for bit, in every variant, form (one sweep, two) and thread
 * count; the statistics it keeps are the same. */
static void relu_forward(nnp_bn_dims d)
{
    const int64_t n = numel(d), C = d.channels;
    float *x = make_x(d, 81, 0.3, 1.5);
    float *gamma = make_vec(C, 82, 0.5, 1.5), *beta = make_vec(C, 83, -1, 1);
    const size_t cb = sizeof(float) * (size_t)C;
    FOR_EACH_VARIANT(v, k) {
        for (int sweeps = 0; sweeps <= 2; sweeps++)
            for (int nt = 1; nt <= 3; nt += 2) {
                nnp_bn_args a = {d, 1e-3, 0.9, gamma, beta, nt, sweeps, 0};
                fw_out plain = forward_of(k, &a, x, 1);
                a.relu = 1;
                fw_out relu = forward_of(k, &a, x, 1);
                int64_t zeros = 0;
                for (int64_t i = 0; i < n; i++) {
                    const float want = plain.y[i] > 0.0f ? plain.y[i] : 0.0f;
                    zeros += want == 0.0f;
                    cr_assert(memcmp(&relu.y[i], &want, sizeof want) == 0,
                              "%s [%lld,%lld,%lld] sweeps %d, %d threads: y[%lld] = %a, "
                              "want %a", isas[v], (long long)d.outer, (long long)C,
                              (long long)d.inner, sweeps, nt, (long long)i, relu.y[i], want);
                }
                cr_assert(zeros > 0 && zeros < n, "the case holds no negative y");
                cr_assert(memcmp(plain.mm, relu.mm, cb) == 0 &&
                          memcmp(plain.mv, relu.mv, cb) == 0, "moving statistics differ");
                fw_free(&plain), fw_free(&relu);
            }
    }
    free(x), free(gamma), free(beta);
}

/* long rows (one sweep), rows of 49 and 3 (periods), 17 (flat), 1 (inner
 * 1: channels-last with 3 channels packed, 64 lanes, 300 wide), and a
 * tensor over NT_MIN (streaming stores) */
Test(relu_forward, channels_first) { relu_forward((nnp_bn_dims){4, 48, 3136}); }
Test(relu_forward, short_rows)
{
    relu_forward((nnp_bn_dims){8, 64, 49});
    relu_forward((nnp_bn_dims){64, 32, 3});
    relu_forward((nnp_bn_dims){5, 7, 17});
}
Test(relu_forward, channels_last)
{
    relu_forward((nnp_bn_dims){800, 3, 1});
    relu_forward((nnp_bn_dims){1001, 64, 1});
    relu_forward((nnp_bn_dims){257, 300, 1});
}
Test(relu_forward, streamed) { relu_forward((nnp_bn_dims){2, 64, 40000}); }
