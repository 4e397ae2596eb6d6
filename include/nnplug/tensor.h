/* Tensors: dense, C-ordered, NNP_ALIGN-aligned, shapes of rank 0..8. */
#ifndef NNPLUG_TENSOR_H
#define NNPLUG_TENSOR_H
#include "plugin.h"
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

NNP_API size_t nnp_dtype_size(nnp_dtype dt);          /* 0 for undefined */
NNP_API const char *nnp_dtype_name(nnp_dtype dt);

/* Builds a shape from n dims (n <= NNP_MAX_RANK, dims >= 0). */
NNP_API nnp_status nnp_shape_make(nnp_shape *s, int rank, const int64_t *dims, nnp_error *err);
/* Product of dims, overflow-checked (result fits int64 and size_t). */
NNP_API nnp_status nnp_shape_numel(const nnp_shape *s, int64_t *numel, nnp_error *err);
NNP_API bool nnp_shape_equal(const nnp_shape *a, const nnp_shape *b);
/* "[2,3,4]" into buf; returns buf. */
NNP_API const char *nnp_shape_str(const nnp_shape *s, char *buf, size_t bufsize);
/* A declared shape for messages: "[?,6]", unknown (negative) dims as "?". */
NNP_API const char *nnp_shape_decl_str(const nnp_shape *s, char *buf, size_t bufsize);

/* Allocates zeroed, aligned storage; t->flags gets NNP_TENSOR_OWNED.
 * The caller frees with nnp_tensor_free. */
NNP_API nnp_status nnp_tensor_alloc(nnp_tensor *t, nnp_dtype dtype, const nnp_shape *shape,
                                    nnp_error *err);
/* Frees storage if owned; leaves t zeroed. Safe on zeroed tensors. */
NNP_API void nnp_tensor_free(nnp_tensor *t);
/* Wraps caller-owned memory (not freed by nnp_tensor_free). */
NNP_API nnp_status nnp_tensor_wrap(nnp_tensor *t, nnp_dtype dtype, const nnp_shape *shape,
                                   void *data, nnp_error *err);
NNP_API int64_t nnp_tensor_numel(const nnp_tensor *t);

/* Aligned, zeroed allocation; NULL on failure or overflow. */
NNP_API void *nnp_aligned_alloc(size_t bytes);
/* The memory budget: every nnp_aligned_alloc (tensors, plugin weights and
 * scratch) counts against it until freed, and one that would go over it
 * fails (nnp_tensor_alloc: NNP_ERR_LIMIT, naming the bytes). The default
 * is NNP_MAX_MEMORY when set (bytes, or with a K, M, G or T suffix), else
 * the machine's available memory (MemAvailable). 0 restores the default. */
NNP_API void nnp_set_memory_budget(size_t bytes);
NNP_API size_t nnp_memory_budget(void);
NNP_API size_t nnp_memory_in_use(void);
/* How many allocations the budget has refused so far (all threads). A
 * caller compares the count around a call to tell a refusal (exit 2: the
 * model or option asks too much) from the system running out. */
NNP_API unsigned long nnp_memory_refusals(void);
/* st, or NNP_ERR_LIMIT with the budget named in err when st is
 * NNP_ERR_NOMEM and the budget refused an allocation since `before`. */
NNP_API nnp_status nnp_memory_limit_status(nnp_status st, unsigned long before, nnp_error *err);
/* "512M", "2G", "1073741824": bytes; 0 when s is not such a size. */
NNP_API size_t nnp_parse_bytes(const char *s);
NNP_API void nnp_aligned_free(void *p);
/* a*b with overflow check; false on overflow. */
NNP_API bool nnp_mul_size(size_t a, size_t b, size_t *out);

#ifdef __cplusplus
}
#endif
#endif
