#include "kernels_isa.h"

#include <stdlib.h>
#include <string.h>

#define BN_TABLE(name, sfx)                                                             \
    {name, nnp_bn_batch_stats##sfx, nnp_bn_forward_train##sfx, nnp_bn_forward_infer##sfx, \
     nnp_bn_backward_train##sfx, nnp_bn_backward_train_relu##sfx, nnp_bn_backward_infer##sfx, \
     nnp_bn_forward_groups##sfx}

static const bn_kernels generic = BN_TABLE("generic", );

#ifdef NNP_BN_ISA_VARIANTS
#define BN_DECLARE(sfx)                                                                       \
    void nnp_bn_batch_stats##sfx(const nnp_bn_args *, const float *, float *, double *,      \
                                 double *, nnp_bn_scratch *);                                 \
    void nnp_bn_forward_train##sfx(const nnp_bn_args *, const float *, float *, float *,     \
                                   float *, const nnp_bn_saved *, nnp_bn_scratch *);          \
    void nnp_bn_forward_infer##sfx(const nnp_bn_args *, const float *, float *, const float *, \
                                   const float *, nnp_bn_scratch *);                          \
    void nnp_bn_backward_train##sfx(const nnp_bn_args *, const float *, const float *,       \
                                    float *, const nnp_bn_saved *, float *, float *,          \
                                    nnp_bn_scratch *);                                        \
    void nnp_bn_backward_train_relu##sfx(const nnp_bn_args *, const float *, const float *,  \
                                         float *, float *, const nnp_bn_saved *, float *,     \
                                         float *, nnp_bn_scratch *);                          \
    void nnp_bn_backward_infer##sfx(const nnp_bn_args *, const float *, const float *,       \
                                    float *, const float *, const float *, float *, float *,  \
                                    nnp_bn_scratch *);                                        \
    int64_t nnp_bn_forward_groups##sfx(const nnp_bn_args *);
BN_DECLARE(_avx2)
BN_DECLARE(_avx512)
static const bn_kernels avx2 = BN_TABLE("avx2", _avx2);
static const bn_kernels avx512 = BN_TABLE("avx512", _avx512);

static int has_avx2(void)
{
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static int has_avx512(void)
{
    return has_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl");
}
#endif

const bn_kernels *bn_kernels_select(void)
{
#ifdef NNP_BN_ISA_VARIANTS
    const char *want = getenv("NNP_BN_ISA");
    __builtin_cpu_init();
    if (want && strcmp(want, "generic") == 0)
        return &generic;
    if (want && strcmp(want, "avx2") == 0)
        return has_avx2() ? &avx2 : &generic;
    if (has_avx512())
        return &avx512;
    if (has_avx2())
        return &avx2;
#endif
    return &generic;
}

const bn_kernels *bn_kernels_variant(const char *isa)
{
    if (strcmp(isa, "generic") == 0)
        return &generic;
#ifdef NNP_BN_ISA_VARIANTS
    __builtin_cpu_init();
    if (strcmp(isa, "avx2") == 0 && has_avx2())
        return &avx2;
    if (strcmp(isa, "avx512") == 0 && has_avx512())
        return &avx512;
#endif
    return NULL;
}
