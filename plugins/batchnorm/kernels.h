/*
 * BatchNormalization kernels (float32, OpenMP), plugin-internal.
 *
 * Every input is viewed as [outer, C, inner] with C the normalized axis:
 * channels-first ([N,C,H,W], inner > 1) and channels-last ([N,H,W,C] or
 * [N,C], inner == 1) each get a fast path of the same formulation.
 *
 * Guarantees:
 * - Statistics are one pass over x: per channel, sums of (x - k) and
 *   (x - k)^2 around a shift k (the mean of the channel's first 16 finite
 *   elements), in float within short chunks and in double per work item
 *   and across items; no E[x^2] - E[x]^2 cancellation in float.
 * - Memory traffic for a tensor of S bytes: inference forward 2S, training
 *   forward 3S (2S channels-first in the AVX-512 kernels when a group of
 *   channels fits in the caches: see nnp_bn_forward_groups), training
 *   backward 5S (with the statistics its forward saved), inference
 *   backward 3S.
 * - Deterministic: the work is cut into items whose bounds depend only on
 *   the shape (never on the thread count) and partial sums are combined in
 *   item order, so results are bitwise identical for any thread count.
 * - No allocation: the caller passes scratch sized by nnp_bn_partials_len()
 *   and per-channel buffers of C elements, all independent of the batch size.
 *
 * The reference (kernels_ref.c) computes the same quantities in double with
 * plain loops; tests hold the two equal.
 */
#ifndef NNP_BN_KERNELS_H
#define NNP_BN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* At most this many work items per reduction, each with its own partial
 * sums per channel: bounds the scratch independent of the batch size. */
#define NNP_BN_MAX_BLOCKS 256

typedef struct nnp_bn_dims {
    int64_t outer;     /* product of the dims before the axis */
    int64_t channels;  /* dims[axis] */
    int64_t inner;     /* product of the dims after the axis */
} nnp_bn_dims;

/* Per-call arguments shared by the kernels. */
typedef struct nnp_bn_args {
    nnp_bn_dims dims;
    double epsilon;     /* > 0 */
    double momentum;    /* Keras meaning: moving = moving*momentum + batch*(1-momentum) */
    const float *gamma; /* [C], NULL when scale=false (gamma = 1) */
    const float *beta;  /* [C], NULL when center=false (beta = 0) */
    int nthreads;       /* 0: OpenMP's current default */
    int sweeps;         /* the training forward's form: 0 the kernels choose,
                           1 one sweep wherever the shape allows, 2 two sweeps
                           (the same bits; tests compare the two) */
    int relu;           /* the training forward writes max(y, 0), y > 0 ? y : 0
                           (a ReLU after the layer, in the same pass) */
} nnp_bn_args;

/* Caller-owned scratch, allocated once at build. */
typedef struct nnp_bn_scratch {
    double *partials;   /* nnp_bn_partials_len(C) doubles */
    float *ca, *cb, *cc; /* C floats each: per-channel coefficients */
} nnp_bn_scratch;

/* Batch statistics of one training-mode forward, kept for its backward. */
typedef struct nnp_bn_saved {
    float *shift;       /* [C] k: the float nearest the mean (0 if not finite);
                           the passes work on x - k */
    double *mean;       /* [C] batch mean */
    double *invstd;     /* [C] 1/sqrt(biased batch variance + epsilon) */
} nnp_bn_saved;

/* View of a C-ordered shape around axis (0 <= axis < rank). */
nnp_bn_dims nnp_bn_dims_of(const int64_t *dims, int rank, int axis);
/* Number of doubles of nnp_bn_scratch.partials for C channels. */
size_t nnp_bn_partials_len(int64_t channels);

/* Mean and BIASED variance per channel (var may be NULL), with the shift
 * used (shift may be NULL). Reduction size 0 gives mean = var = NaN. */
void nnp_bn_batch_stats(const nnp_bn_args *a, const float *x, float *shift,
                        double *mean, double *var, nnp_bn_scratch *s);

/* Training-mode forward: y (NULL: statistics only) from the batch
 * statistics; the moving statistics (either may be NULL) get
 * moving -= (moving - batch) * (1 - momentum), in float as Keras computes
 * it; `saved` (may be NULL) receives the statistics for the backward. An
 * empty batch (outer*inner == 0) leaves the moving statistics unchanged
 * (Keras would make them NaN). y may alias x. */
void nnp_bn_forward_train(const nnp_bn_args *a, const float *x, float *y,
                          float *moving_mean, float *moving_var,
                          const nnp_bn_saved *saved, nnp_bn_scratch *s);

/* Channels per group when nnp_bn_forward_train with these arguments (and
 * an output) takes its one-sweep form, channels-first: each group's
 * statistics, then its output, while its input is still cached. 0 when it
 * takes the two-sweep form (statistics over the whole tensor, then the
 * output). Either form gives the same bits; the choice may depend on the
 * thread count. */
int64_t nnp_bn_forward_groups(const nnp_bn_args *a);

/* Inference-mode forward with the moving statistics, as one fused
 * per-channel y = x * scale + shift. y may alias x. */
void nnp_bn_forward_infer(const nnp_bn_args *a, const float *x, float *y,
                          const float *moving_mean, const float *moving_var,
                          nnp_bn_scratch *s);

/* Training-mode backward through the batch statistics in `saved` (as left by
 * nnp_bn_forward_train or nnp_bn_batch_stats on the same x). Writes dx
 * (NULL: skipped; may alias dy) and ADDS into dgamma / dbeta (NULL: skipped). */
void nnp_bn_backward_train(const nnp_bn_args *a, const float *x, const float *dy,
                           float *dx, const nnp_bn_saved *saved,
                           float *dgamma, float *dbeta, nnp_bn_scratch *s);

/* The training backward of max(BN(x), 0), a ReLU after the layer whose
 * training forward wrote y = max(BN(x), 0) (nnp_bn_args.relu): dy, the
 * gradient of y, is overwritten with y > 0 ? dy : 0 (the ReLU's backward),
 * then as nnp_bn_backward_train (dx may alias dy). The AVX-512 kernels do
 * it channels-first in the pass of the sums, recomputing y's sign from x
 * and `saved` exactly as the forward computed y (y unread); the others read
 * y in a pass of their own. */
void nnp_bn_backward_train_relu(const nnp_bn_args *a, const float *x, const float *y, float *dy,
                                float *dx, const nnp_bn_saved *saved, float *dgamma,
                                float *dbeta, nnp_bn_scratch *s);

/* Inference-mode backward (the moving statistics are constants): writes dx
 * (may be NULL; may alias dy), ADDS into dgamma / dbeta (may be NULL). */
void nnp_bn_backward_infer(const nnp_bn_args *a, const float *x, const float *dy,
                           float *dx, const float *moving_mean, const float *moving_var,
                           float *dgamma, float *dbeta, nnp_bn_scratch *s);

/* ---- Reference: double precision, plain loops (kernels_ref.c) ---- */

/* y (may be NULL), batch mean/var (may be NULL), moving update (may be NULL;
 * skipped on an empty batch). gamma/beta NULL mean 1/0. */
void nnp_bn_ref_forward_train(nnp_bn_dims d, double eps, double momentum,
                              const double *x, const double *gamma, const double *beta,
                              double *y, double *mean, double *var,
                              double *moving_mean, double *moving_var);
void nnp_bn_ref_forward_infer(nnp_bn_dims d, double eps, const double *x,
                              const double *gamma, const double *beta,
                              const double *moving_mean, const double *moving_var,
                              double *y);
/* dx (may be NULL) written; dgamma/dbeta (may be NULL) written, not added. */
void nnp_bn_ref_backward_train(nnp_bn_dims d, double eps, const double *x,
                               const double *gamma, const double *dy, double *dx,
                               double *dgamma, double *dbeta);
void nnp_bn_ref_backward_infer(nnp_bn_dims d, double eps, const double *x,
                               const double *gamma, const double *moving_mean,
                               const double *moving_var, const double *dy, double *dx,
                               double *dgamma, double *dbeta);

#endif
