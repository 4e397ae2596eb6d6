/* Files written atomically in pieces: a temporary file beside the target,
 * written as the data comes, then synced and renamed over it; on any error
 * the temporary file is removed and the target is untouched. (The whole-
 * buffer form is nnp_write_file_atomic, include/nnplug/io.h.) */
#ifndef NNP_IO_INTERNAL_H
#define NNP_IO_INTERNAL_H
#include "nnplug/status.h"

#include <stddef.h>

typedef struct nnpi_atomic_file {
    const char *path;
    char *tmp;
    int fd;
    int failed_errno;   /* the first write's failure, 0 when none */
} nnpi_atomic_file;

nnp_status nnpi_atomic_open(nnpi_atomic_file *f, const char *path, nnp_error *err);
/* Appends; a failure is kept for nnpi_atomic_commit to report. */
void nnpi_atomic_write(nnpi_atomic_file *f, const void *data, size_t len);
/* Syncs and renames into place (or reports the first failure, removing the
 * temporary file); f is closed either way. */
nnp_status nnpi_atomic_commit(nnpi_atomic_file *f, nnp_error *err);
/* Closes f and removes the temporary file. */
void nnpi_atomic_abort(nnpi_atomic_file *f);
#endif
