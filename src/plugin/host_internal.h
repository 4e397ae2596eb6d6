/* How the nnp_host table (host.c) is assembled. */
#ifndef NNP_HOST_INTERNAL_H
#define NNP_HOST_INTERNAL_H
#include "nnplug/plugin.h"

/* Fills the onnx_* fields of the host table with the ONNX node writer and
 * reader (src/interchange/onnx_node.c). Called once, while host.c builds the
 * table. Deliberately not a weak symbol with a stand-in: from the static
 * library a weak definition would not pull onnx_node.o in, and plugins of
 * such a program would find NULL onnx_* entries. */
void nnp_host_onnx_fill(nnp_host *h);

/* While buf is set (size > 0), the host keeps the NNP_LOG_ERROR lines this
 * thread logs in it ("; "-separated): the loader's window on why a plugin's
 * entry function refused the host. nnp_host_capture_errors(NULL, 0) stops. */
void nnp_host_capture_errors(char *buf, size_t size);

/* The kind's NNP_EXT_ONNX_NODE extension, when it has one this host can
 * read, else NULL. */
const nnp_onnx_node_ext *nnp_kind_onnx_node_ext(const nnp_kind *k);

#endif
