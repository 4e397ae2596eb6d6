/* The kernels in instruction-set variants: the same source (kernels.c)
 * compiled for the baseline x86-64, for AVX2 + FMA and for AVX-512. The
 * best variant the CPU runs is chosen once per layer; every variant is
 * deterministic for any thread count. NNP_BN_ISA=generic|avx2|avx512 forces
 * one (for tests and benchmarks; a variant the CPU lacks falls back). */
#ifndef NNP_BN_KERNELS_ISA_H
#define NNP_BN_KERNELS_ISA_H
#include "kernels.h"

typedef struct bn_kernels {
    const char *isa;
    void (*batch_stats)(const nnp_bn_args *a, const float *x, float *shift, double *mean,
                        double *var, nnp_bn_scratch *s);
    void (*forward_train)(const nnp_bn_args *a, const float *x, float *y, float *moving_mean,
                          float *moving_var, const nnp_bn_saved *saved, nnp_bn_scratch *s);
    void (*forward_infer)(const nnp_bn_args *a, const float *x, float *y,
                          const float *moving_mean, const float *moving_var, nnp_bn_scratch *s);
    void (*backward_train)(const nnp_bn_args *a, const float *x, const float *dy, float *dx,
                           const nnp_bn_saved *saved, float *dgamma, float *dbeta,
                           nnp_bn_scratch *s);
    void (*backward_train_relu)(const nnp_bn_args *a, const float *x, const float *y, float *dy,
                                float *dx, const nnp_bn_saved *saved, float *dgamma,
                                float *dbeta, nnp_bn_scratch *s);
    void (*backward_infer)(const nnp_bn_args *a, const float *x, const float *dy, float *dx,
                           const float *moving_mean, const float *moving_var, float *dgamma,
                           float *dbeta, nnp_bn_scratch *s);
    int64_t (*forward_groups)(const nnp_bn_args *a);
} bn_kernels;

const bn_kernels *bn_kernels_select(void);
/* The variant named isa ("generic", "avx2", "avx512") if this build has it
 * and the CPU runs it, else NULL (tests walk every variant). */
const bn_kernels *bn_kernels_variant(const char *isa);
#endif
