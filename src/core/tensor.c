#include "nnplug/tensor.h"
#include "nnplug/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t nnp_dtype_size(nnp_dtype dt)
{
    switch (dt) {
    case NNP_F32: case NNP_I32: return 4;
    case NNP_F64: case NNP_I64: return 8;
    case NNP_F16: case NNP_BF16: return 2;
    case NNP_U8: case NNP_BOOL: return 1;
    default: return 0;
    }
}

const char *nnp_dtype_name(nnp_dtype dt)
{
    switch (dt) {
    case NNP_F32: return "float32";
    case NNP_F64: return "float64";
    case NNP_I64: return "int64";
    case NNP_I32: return "int32";
    case NNP_F16: return "float16";
    case NNP_BF16: return "bfloat16";
    case NNP_U8: return "uint8";
    case NNP_BOOL: return "bool";
    default: return "undefined";
    }
}

bool nnp_mul_size(size_t a, size_t b, size_t *out)
{
    size_t r;
    if (__builtin_mul_overflow(a, b, &r))
        return false;
    *out = r;
    return true;
}

nnp_status nnp_shape_make(nnp_shape *s, int rank, const int64_t *dims, nnp_error *err)
{
    if (rank < 0 || rank > NNP_MAX_RANK)
        return nnp_error_set(err, NNP_ERR_SHAPE, "rank %d is outside 0..%d", rank, NNP_MAX_RANK);
    memset(s, 0, sizeof *s);
    s->rank = rank;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return nnp_error_set(err, NNP_ERR_SHAPE, "dimension %d is negative (%lld)", i,
                                 (long long)dims[i]);
        s->dims[i] = dims[i];
    }
    return NNP_OK;
}

nnp_status nnp_shape_numel(const nnp_shape *s, int64_t *numel, nnp_error *err)
{
    if (s->rank < 0 || s->rank > NNP_MAX_RANK)
        return nnp_error_set(err, NNP_ERR_SHAPE, "rank %d is outside 0..%d", s->rank, NNP_MAX_RANK);
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) {
        if (s->dims[i] < 0)
            return nnp_error_set(err, NNP_ERR_SHAPE, "dimension %d is unknown or negative", i);
        if (__builtin_mul_overflow(n, s->dims[i], &n))
            return nnp_error_set(err, NNP_ERR_OVERFLOW, "element count of shape overflows");
    }
    *numel = n;
    return NNP_OK;
}

bool nnp_shape_equal(const nnp_shape *a, const nnp_shape *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return false;
    return true;
}

const char *nnp_shape_str(const nnp_shape *s, char *buf, size_t bufsize)
{
    size_t at = 0;
    if (bufsize == 0)
        return buf;
    buf[0] = '\0';
    at += (size_t)snprintf(buf, bufsize, "[");
    for (int i = 0; i < s->rank && at < bufsize; i++)
        at += (size_t)snprintf(buf + at, bufsize - at, i ? ",%lld" : "%lld", (long long)s->dims[i]);
    if (at < bufsize)
        snprintf(buf + at, bufsize - at, "]");
    return buf;
}

const char *nnp_shape_decl_str(const nnp_shape *s, char *buf, size_t bufsize)
{
    size_t at = 0;
    if (bufsize == 0)
        return buf;
    buf[0] = '\0';
    at += (size_t)snprintf(buf, bufsize, "[");
    for (int i = 0; i < s->rank && at < bufsize; i++)
        at += s->dims[i] < 0 ? (size_t)snprintf(buf + at, bufsize - at, i ? ",?" : "?")
                             : (size_t)snprintf(buf + at, bufsize - at, i ? ",%lld" : "%lld",
                                                (long long)s->dims[i]);
    if (at < bufsize)
        snprintf(buf + at, bufsize - at, "]");
    return buf;
}

void *nnp_aligned_alloc(size_t bytes)
{
    size_t rounded;
    if (bytes > SIZE_MAX - NNP_ALIGN)
        return NULL;
    rounded = (bytes + NNP_ALIGN - 1) / NNP_ALIGN * NNP_ALIGN;
    if (rounded == 0)
        rounded = NNP_ALIGN;
    void *p = aligned_alloc(NNP_ALIGN, rounded);
    if (p)
        memset(p, 0, rounded);
    return p;
}

void nnp_aligned_free(void *p) { free(p); }

static nnp_status tensor_bytes(nnp_dtype dtype, const nnp_shape *shape, size_t *bytes,
                               nnp_error *err)
{
    int64_t n;
    size_t es = nnp_dtype_size(dtype);
    if (es == 0)
        return nnp_error_set(err, NNP_ERR_INVALID, "undefined tensor dtype %d", (int)dtype);
    nnp_status st = nnp_shape_numel(shape, &n, err);
    if (st)
        return st;
    if ((uint64_t)n > SIZE_MAX || !nnp_mul_size((size_t)n, es, bytes))
        return nnp_error_set(err, NNP_ERR_OVERFLOW, "tensor byte size overflows");
    return NNP_OK;
}

nnp_status nnp_tensor_alloc(nnp_tensor *t, nnp_dtype dtype, const nnp_shape *shape,
                            nnp_error *err)
{
    size_t bytes;
    memset(t, 0, sizeof *t);
    nnp_status st = tensor_bytes(dtype, shape, &bytes, err);
    if (st)
        return st;
    void *p = nnp_aligned_alloc(bytes);
    if (!p) {
        char sb[128];
        return nnp_error_set(err, NNP_ERR_NOMEM, "cannot allocate %zu bytes for a %s tensor %s",
                             bytes, nnp_dtype_name(dtype), nnp_shape_str(shape, sb, sizeof sb));
    }
    t->dtype = dtype;
    t->shape = *shape;
    t->data = p;
    t->nbytes = bytes;
    t->flags = NNP_TENSOR_OWNED;
    return NNP_OK;
}

nnp_status nnp_tensor_wrap(nnp_tensor *t, nnp_dtype dtype, const nnp_shape *shape,
                           void *data, nnp_error *err)
{
    size_t bytes;
    memset(t, 0, sizeof *t);
    nnp_status st = tensor_bytes(dtype, shape, &bytes, err);
    if (st)
        return st;
    t->dtype = dtype;
    t->shape = *shape;
    t->data = data;
    t->nbytes = bytes;
    return NNP_OK;
}

void nnp_tensor_free(nnp_tensor *t)
{
    if (!t)
        return;
    if (t->flags & NNP_TENSOR_OWNED)
        nnp_aligned_free(t->data);
    memset(t, 0, sizeof *t);
}

int64_t nnp_tensor_numel(const nnp_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->shape.rank; i++)
        n *= t->shape.dims[i];
    return n;
}
