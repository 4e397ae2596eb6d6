#include "testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

const char *tu_testdata(void)
{
    const char *d = getenv("NNP_TESTDATA");
    cr_assert(d && d[0], "NNP_TESTDATA is not set (run through ctest)");
    return d;
}

const char *tu_data_path(const char *fmt, ...)
{
    static _Thread_local char ring[8][1024];
    static _Thread_local int at;
    char rel[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    char *out = ring[at++ % 8];
    snprintf(out, 1024, "%s/%s", tu_testdata(), rel);
    return out;
}

double *tu_load_f64(const char *path, nnp_shape *shape, int64_t *numel)
{
    nnp_tensor t;
    nnp_error err = {0};
    nnp_status st = nnp_npy_read(path, &t, &err);
    cr_assert_eq(st, NNP_OK, "%s", err.msg);
    int64_t n = nnp_tensor_numel(&t);
    double *d = malloc(sizeof(double) * (size_t)(n ? n : 1));
    cr_assert(d);
    for (int64_t i = 0; i < n; i++) {
        switch (t.dtype) {
        case NNP_F32: d[i] = ((const float *)t.data)[i]; break;
        case NNP_F64: d[i] = ((const double *)t.data)[i]; break;
        case NNP_I64: d[i] = (double)((const int64_t *)t.data)[i]; break;
        case NNP_I32: d[i] = ((const int32_t *)t.data)[i]; break;
        default: cr_assert_fail("%s: unexpected dtype", path);
        }
    }
    if (shape)
        *shape = t.shape;
    if (numel)
        *numel = n;
    nnp_tensor_free(&t);
    return d;
}

void tu_load_f32(const char *path, nnp_tensor *t)
{
    nnp_error err = {0};
    nnp_status st = nnp_npy_read_f32(path, t, &err);
    cr_assert_eq(st, NNP_OK, "%s", err.msg);
}

static void check_close(const char *what, int64_t i, double g, double e, double rtol, double atol)
{
    if (isnan(e)) {
        cr_assert(isnan(g), "%s[%lld]: got %.9g, expected NaN", what, (long long)i, g);
        return;
    }
    if (isinf(e)) {
        cr_assert(g == e, "%s[%lld]: got %.9g, expected %g", what, (long long)i, g, e);
        return;
    }
    cr_assert(fabs(g - e) <= atol + rtol * fabs(e),
              "%s[%lld]: got %.9g, expected %.9g (|diff| %.3g > atol %g + rtol %g*|exp|)", what,
              (long long)i, g, e, fabs(g - e), atol, rtol);
}

void tu_assert_close(const char *what, const double *got, const double *exp, int64_t n,
                     double rtol, double atol)
{
    for (int64_t i = 0; i < n; i++)
        check_close(what, i, got[i], exp[i], rtol, atol);
}

void tu_assert_close_f32(const char *what, const float *got, const double *exp, int64_t n,
                         double rtol, double atol)
{
    for (int64_t i = 0; i < n; i++)
        check_close(what, i, got[i], exp[i], rtol, atol);
}

nnp_registry *tu_registry(void)
{
    nnp_registry *reg;
    nnp_error err = {0};
    cr_assert_eq(nnp_registry_new(&reg, &err), NNP_OK, "%s", err.msg);
    const char *dir = getenv("NNP_PLUGIN_DIR");
    cr_assert(dir && dir[0], "NNP_PLUGIN_DIR is not set (run through ctest)");
    cr_assert_eq(nnp_registry_load_dir(reg, dir, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_registry_n_failures(reg), 0, "plugin failed to load: %s",
                 nnp_registry_failure(reg, 0));
    return reg;
}
