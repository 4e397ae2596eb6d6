/* How the nnp_host table (host.c) is assembled. */
#ifndef NNP_HOST_INTERNAL_H
#define NNP_HOST_INTERNAL_H
#include "nnplug/plugin.h"

/* Fills the onnx_* fields of the host table. host.c carries a weak default
 * that leaves them NULL; src/interchange provides the real one. Called once,
 * while the table is built. */
void nnp_host_onnx_fill(nnp_host *h);

#endif
