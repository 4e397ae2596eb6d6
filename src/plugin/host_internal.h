/* How the nnp_host table (host.c) is assembled. */
#ifndef NNP_HOST_INTERNAL_H
#define NNP_HOST_INTERNAL_H
#include "nnplug/plugin.h"


/* While buf is set (size > 0), the host keeps the NNP_LOG_ERROR lines this
 * thread logs in it ("; "-separated): the loader's window on why a plugin's
 * entry function refused the host. nnpi_host_capture_errors(NULL, 0) stops. */
void nnpi_host_capture_errors(char *buf, size_t size);

/* The kind's NNP_EXT_ONNX_NODE extension, when it has one this host can
 * read, else NULL. */
const nnp_onnx_node_ext *nnpi_kind_onnx_node_ext(const nnp_kind *k);

#endif
