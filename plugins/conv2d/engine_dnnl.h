/* Conv2D on oneDNN: primitives for one geometry and batch size, created at
 * build, run without allocating. Private to the conv2d plugin.
 *
 * Determinism: forward and backward-data run oneDNN's own threading, whose
 * kernels give every output element to one thread with a fixed summation
 * order (tests/plugins/test_conv_engine.c checks bitwise equality at 1 to
 * 7 threads); the kernel gradient, which oneDNN would reduce across threads
 * in an order that depends on their number, is computed by a fixed number
 * of batch chunks (a function of the shapes only), each chunk by one
 * thread, and the chunk partials are summed in chunk order; on blocked
 * outputs of at most 64 pixels the two chunks split the filters instead,
 * each over the whole batch, so that every element is one chunk's alone.
 * oneDNN's Winograd kernels (3x3 stride-1 layers of some shapes: plan_tw,
 * plan_wino in engine_dnnl.c) change their blocking, and so their
 * rounding, with the thread count: they run one image (or chunk) per call
 * of a one-thread primitive, images spread over the threads. */
#ifndef NNP_CONV2D_ENGINE_DNNL_H
#define NNP_CONV2D_ENGINE_DNNL_H

#include "kernels.h"

#include <stddef.h>
#include <stdint.h>

typedef struct conv_dnnl conv_dnnl;
typedef void *(*cdn_alloc)(size_t bytes);   /* zeroed, 64-byte aligned; NULL on failure */
typedef void (*cdn_free)(void *p);

/* Whether this build has the oneDNN engine. */
int cdn_available(void);

/* Primitives for g at batch g->N (>= 1, spatial known), kernel layout of
 * the Keras kernel [kh, kw, Cg, F], with or without bias, created for
 * nthreads threads; buffers come from alloc. NULL when oneDNN is absent
 * or has no implementation (the caller keeps its own path); *bytes gets
 * the memory it allocated. */
conv_dnnl *cdn_create(const conv_geom *g, int has_bias, int nthreads, cdn_alloc alloc,
                      cdn_free free_fn, size_t *bytes);
void cdn_destroy(conv_dnnl *e);
/* The batch size e was made for. */
int64_t cdn_batch(const conv_dnnl *e);

/* The kernel's values changed: the next forward reorders them again.
 * (Inference forwards reuse the reordered kernel until then.) */
void cdn_weights_changed(conv_dnnl *e);

/* An inference epilogue: y = act(z * scale[f] + shift[f] (+ y)), z the
 * convolution, act = ReLU when relu, y's contents on entry added when sum.
 * scale NULL: no affine. changed: scale / shift differ from the last
 * call's. */
typedef struct cdn_epilogue {
    const float *scale, *shift;
    int relu;
    int changed;
    int sum;
} cdn_epilogue;

/* y = x (*) kernel + bias, then epi (NULL: none); reorders the kernel when
 * it changed or when `training` (the optimizer is about to change it). An
 * affine is folded into the reordered kernel and the bias; the sum and the
 * ReLU are post-ops of a primitive cdn_plan_post made. keep_x (a training
 * forward, its backward to follow): x in the primitive's layout is kept in
 * a buffer of the engine's own until the next call, so that cdn_backward on
 * the same x reorders it no more (allocated at the first such call; without
 * memory for it, nothing is kept). */
void cdn_forward(conv_dnnl *e, const float *x, const float *kernel, const float *bias, float *y,
                 int training, const cdn_epilogue *epi, unsigned cl, int keep_x, void *ws,
                 int nthreads);
/* cdn_forward's `cl`: x, y are channels-last in memory (the tensor flag
 * NNP_TENSOR_NHWC of a channels-first layer); nonzero only in inference,
 * exactly as cdn_plan_nhwc was last told, with the epilogue it was told. */
#define CDN_X_NHWC 1u
#define CDN_Y_NHWC 2u
/* and an inference forward (a channels-last layer's may run the Winograd
 * forward cdn_plan_wino_cl planned) */
#define CDN_INFER 4u
/* Creates the inference forward for operands `io` (CDN_*_NHWC, the others
 * plain) with a sum and / or a ReLU post-op (a build-time call); 0 on
 * success, else oneDNN has no fast kernel for it. Its kernel shares
 * the forward's buffer when it fits (reloaded in turn). A Winograd forward
 * (3x3, stride 1, whole blocks of 16 channels, two images or more, at
 * least 4x4 outputs; not with NNP_CONV_WINOGRAD=0) may need more of the
 * workspace than before: cdn_workspace_bytes (or cdn_own_buffers) again. */
int cdn_plan_nhwc(conv_dnnl *e, unsigned io, int sum, int relu);
/* A channels-last layer's inference forward on oneDNN's Winograd kernels,
 * image by image, with these post-ops (as cdn_plan_nhwc's for channels-first
 * layers; nothing when the shapes do not qualify); a build-time call, after
 * which the workspace may have grown. */
void cdn_plan_wino_cl(conv_dnnl *e, int sum, int relu);
/* Creates the forward with a sum and / or a ReLU post-op (a build-time
 * call); 0 on success. */
int cdn_plan_post(conv_dnnl *e, int sum, int relu);

/* ADDS the kernel / bias gradients into dkernel / dbias (dbias may be NULL;
 * with store: WRITES them) and WRITES dx (when not NULL), from dz =
 * dL/d(pre-activation output). */
void cdn_backward(conv_dnnl *e, const float *x, const float *kernel, const float *dz,
                  float *dkernel, float *dbias, float *dx, void *ws, int nthreads, int store);

/* dx alone (the backward-data half of cdn_backward). */
void cdn_backward_data(conv_dnnl *e, const float *kernel, const float *dz, float *dx, void *ws,
                       int nthreads);

/* Whether e's backward-data is oneDNN's reference implementation (some
 * shapes, e.g. 3 input channels, have no other): im2col is far faster. */
int cdn_backward_data_slow(const conv_dnnl *e);

/* Activation layouts: the bytes of workspace forward and backward need for
 * their reordered operands (0 when the tensors are used as they are). The
 * caller passes cdn_workspace_bytes of workspace (ws) to every call, or has
 * the engine keep its own buffers (cdn_own_buffers, 0 on success) and
 * passes NULL. */
size_t cdn_workspace_bytes(const conv_dnnl *e);
int cdn_own_buffers(conv_dnnl *e);

#endif
