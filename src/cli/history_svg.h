/* The training history drawn as a standalone SVG document (nnplug train
 * --out-dir): loss and validation loss on one panel, accuracy and validation
 * accuracy on another when the run has them, one <polyline data-series=NAME>
 * per series with one point per epoch whose value is finite. */
#ifndef NNP_CLI_HISTORY_SVG_H
#define NNP_CLI_HISTORY_SVG_H
#include "nnplug/nnplug.h"

#include <stddef.h>

/* The SVG text for h into *out (malloc'ed, NUL-terminated, caller frees),
 * its length in *len. A series is drawn when the run has it: loss always,
 * accuracy / val_loss / val_accuracy when any epoch's value is not the
 * "absent" mark (< 0, see nnp_epoch_logs). NaN and infinite values get no
 * polyline point; a cross at the panel's edge marks each of them. */
nnp_status history_svg_render(const nnp_history *h, char **out, size_t *len, nnp_error *err);

/* history_svg_render written to path atomically (nnp_write_file_atomic). */
nnp_status history_svg_write(const char *path, const nnp_history *h, nnp_error *err);

#endif
