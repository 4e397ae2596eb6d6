/* .npy files: float32, float64, int64 (also int32, read only); little-endian,
 * C order. Anything else is a clear error naming the file. */
#ifndef NNPLUG_IO_H
#define NNPLUG_IO_H
#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads path into a newly allocated tensor (caller frees with nnp_tensor_free). */
NNP_API nnp_status nnp_npy_read(const char *path, nnp_tensor *t, nnp_error *err);
/* Same from the bytes of an .npy file in memory; label names it in errors. */
NNP_API nnp_status nnp_npy_parse(const void *data, size_t len, const char *label, nnp_tensor *t,
                                 nnp_error *err);
/* Same, converted to float32 (float64 and int64 are converted). */
NNP_API nnp_status nnp_npy_read_f32(const char *path, nnp_tensor *t, nnp_error *err);
/* Writes atomically: a temporary file beside path, then rename. */
NNP_API nnp_status nnp_npy_write(const char *path, const nnp_tensor *t, nnp_error *err);

/* Writes `len` bytes to path atomically (temp file in the same folder,
 * fsync, rename). On failure the old file is untouched and no temp remains. */
NNP_API nnp_status nnp_write_file_atomic(const char *path, const void *data, size_t len,
                                         nnp_error *err);
/* Reads a whole file (malloc'ed, NUL-terminated beyond *len). */
NNP_API nnp_status nnp_read_file(const char *path, char **data, size_t *len, nnp_error *err);

#ifdef __cplusplus
}
#endif
#endif
