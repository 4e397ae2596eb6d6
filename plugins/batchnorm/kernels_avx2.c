/* The kernels of kernels.c compiled for AVX2 + FMA (compile
 * options in CMakeLists.txt); kernels_isa.c calls them only on CPUs that
 * have those instructions. */
#define nnp_bn_dims_of nnp_bn_dims_of_avx2
#define nnp_bn_partials_len nnp_bn_partials_len_avx2
#define nnp_bn_batch_stats nnp_bn_batch_stats_avx2
#define nnp_bn_forward_train nnp_bn_forward_train_avx2
#define nnp_bn_forward_infer nnp_bn_forward_infer_avx2
#define nnp_bn_backward_train nnp_bn_backward_train_avx2
#define nnp_bn_backward_train_relu nnp_bn_backward_train_relu_avx2
#define nnp_bn_backward_infer nnp_bn_backward_infer_avx2
#define nnp_bn_forward_groups nnp_bn_forward_groups_avx2
#include "kernels.c"
