/* Conv2D plugin: the layer state shared by the layer glue (conv2d.c) and the
 * ONNX mapping (onnx.c). Private to this plugin. */
#ifndef NNP_CONV2D_H
#define NNP_CONV2D_H

#include <nnplug/plugin.h>

#include "common/act.h"
#include "common/kernel_bias.h"
#include "engine_dnnl.h"
#include "kernels.h"

typedef struct conv_state {
    const nnp_host *host;
    const nnp_config *cfg;
    /* configuration */
    int64_t filters, kh, kw, sh, sw, dh, dw, groups;
    int same;                 /* padding "same" (else "valid") */
    int explicit_pads;        /* the "pads" extension is set */
    int64_t pads[4];          /* top, left, bottom, right */
    int channels_first;
    act_fn act;
    kb_weights wb;            /* kernel [kh, kw, in/groups, filters], bias [filters] */

    /* after build */
    int built;
    int spatial_known;        /* H and W were known at the last build */
    conv_geom g;
    conv_scratch scratch;
    void *scratch_mem;
    size_t scratch_slot_floats;
    /* oneDNN primitives for the largest concrete batch built (NULL: none,
       or the im2col path was asked for); other batch sizes run im2col */
    conv_dnnl *eng;
    conv_geom eng_g;          /* its geometry */
    int eng_threads;          /* and thread count */
    int eng_ws;               /* its activation buffers are the host's workspace */
    int no_dnnl;              /* NNP_CONV_ENGINE=im2col */
    int bwd_pref;             /* NNP_CONV_BACKWARD: 1 gemm, 0 dnnl, -1 by shape */
    /* the backward of an engine build on the whole batch's patches
       (gemm_backward; small images under large kernels): its buffer is the
       model's workspace, or gb_own outside a model */
    int gemm_bwd;
    float *gb_own;
    size_t gb_own_floats;
    int keep_kernel;          /* the host calls weights_changed (1.2) */
    /* inference epilogue (NNP_EXT_EPILOGUE): act(y * scale + shift) */
    int epi_affine, epi_relu;
    int epi_sum;              /* the output's contents on entry are added */
    unsigned cl_io;           /* CDN_*_NHWC operands of inference forwards (plan_layouts) */
    float *epi_scale, *epi_shift; /* [filters] each, one block */
    int epi_changed;          /* set_affine gave new values */
    /* backward's dL/dz when the activation is not linear: [dz_rows] floats */
    float *dz;
    int64_t dz_floats;
    /* data-parallel steps (a 1.3 host's batch_chunks): chunk by chunk, one
       chunk's weight gradients in the model's workspace; on oneDNN
       primitives made for a chunk's images (ceng, its own buffers) where
       a chunk has that many, else on im2col */
    int chunk_ws;
    conv_dnnl *ceng;
    conv_geom ceng_g;
    int ceng_threads;
    int store_grads;          /* NNP_EXT_GRAD_STORE: the next backward writes them */
} conv_state;

const char *conv_name(const conv_state *s);
nnp_status conv_to_onnx(const void *state, nnp_onnx_writer *w, const char *const *inputs,
                        int n_inputs, const char *output, nnp_error *err);
nnp_status conv_to_onnx_affine(const void *state, nnp_onnx_writer *w, const char *const *inputs,
                               int n_inputs, const char *output, int axis, const float *scale,
                               const float *shift, nnp_error *err);
nnp_status conv_from_onnx(const nnp_host *host, const nnp_onnx_reader *r, nnp_config *cfg,
                          nnp_error *err);
nnp_status conv_onnx_load_weights(void *state, const nnp_onnx_reader *r, nnp_error *err);

#endif
