/* The inference plan's rules, shared with the ONNX export (--fold-bn). */
#ifndef NNP_PLAN_INTERNAL_H
#define NNP_PLAN_INTERNAL_H
#include "nnplug/model.h"

/* The node whose inference affine (NNP_EXT_EPILOGUE) may fold into node
 * `nd`, and *axis, the axis it is over: the node reading nd's output when
 * that value has no other reader and is no graph output, both layers are
 * applied once and neither node has a fixed mode; -1 when none. */
int nnpi_model_affine_reader(const nnp_model *m, int nd, int *axis);
#endif
