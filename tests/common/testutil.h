/* Helpers shared by the Criterion suites. */
#ifndef NNP_TESTUTIL_H
#define NNP_TESTUTIL_H
#include "nnplug/nnplug.h"

/* Directory of the reference vectors ($NNP_TESTDATA). */
const char *tu_testdata(void);
/* Path under $NNP_TESTDATA, formatted; returns a static ring buffer entry. */
const char *tu_data_path(const char *fmt, ...);
/* Loads an .npy as float64 (any supported dtype); aborts the test on error. */
double *tu_load_f64(const char *path, nnp_shape *shape, int64_t *numel);
/* Loads an .npy as float32 tensor; aborts the test on error. */
void tu_load_f32(const char *path, nnp_tensor *t);
/* Asserts |got-exp| <= atol + rtol*|exp| elementwise (NaN matches NaN). */
void tu_assert_close(const char *what, const double *got, const double *exp,
                     int64_t n, double rtol, double atol);
void tu_assert_close_f32(const char *what, const float *got, const double *exp,
                         int64_t n, double rtol, double atol);
/* Registry with every plugin of the build tree ($NNP_PLUGIN_DIR) loaded. */
nnp_registry *tu_registry(void);
#endif
