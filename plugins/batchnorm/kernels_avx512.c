/* The kernels of kernels.c compiled for AVX-512 (F, BW, DQ, VL) with 512-bit vectors (compile
 * options in CMakeLists.txt); kernels_isa.c calls them only on CPUs that
 * have those instructions. */
#define nnp_bn_dims_of nnp_bn_dims_of_avx512
#define nnp_bn_partials_len nnp_bn_partials_len_avx512
#define nnp_bn_batch_stats nnp_bn_batch_stats_avx512
#define nnp_bn_forward_train nnp_bn_forward_train_avx512
#define nnp_bn_forward_infer nnp_bn_forward_infer_avx512
#define nnp_bn_backward_train nnp_bn_backward_train_avx512
#define nnp_bn_backward_train_relu nnp_bn_backward_train_relu_avx512
#define nnp_bn_backward_infer nnp_bn_backward_infer_avx512
#define nnp_bn_forward_groups nnp_bn_forward_groups_avx512
#include "kernels.c"
