#include "nnplug/tensor.h"
#include "nnplug/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <stdatomic.h>
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

/* "[2,3]"; with unknown_as_q, negative (unknown) dims as "?". */
static const char *shape_text(const nnp_shape *s, char *buf, size_t bufsize, int unknown_as_q)
{
    size_t at = 0;
    if (bufsize == 0)
        return buf;
    buf[0] = '\0';
    at += (size_t)snprintf(buf, bufsize, "[");
    for (int i = 0; i < s->rank && at < bufsize; i++)
        at += unknown_as_q && s->dims[i] < 0
                  ? (size_t)snprintf(buf + at, bufsize - at, i ? ",?" : "?")
                  : (size_t)snprintf(buf + at, bufsize - at, i ? ",%lld" : "%lld",
                                     (long long)s->dims[i]);
    if (at < bufsize)
        snprintf(buf + at, bufsize - at, "]");
    return buf;
}

const char *nnp_shape_str(const nnp_shape *s, char *buf, size_t bufsize)
{
    return shape_text(s, buf, bufsize, 0);
}

const char *nnp_shape_decl_str(const nnp_shape *s, char *buf, size_t bufsize)
{
    return shape_text(s, buf, bufsize, 1);
}

/* ---- the memory budget --------------------------------------------------- */

static _Atomic size_t mem_in_use;
static _Atomic size_t mem_budget;   /* 0: the default, resolved on first use */

size_t nnp_parse_bytes(const char *s)
{
    if (!s || *s < '0' || *s > '9')
        return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    double unit = 1;
    switch (*end) {
    case 'K': case 'k': unit = 1024.0; end++; break;
    case 'M': case 'm': unit = 1024.0 * 1024; end++; break;
    case 'G': case 'g': unit = 1024.0 * 1024 * 1024; end++; break;
    case 'T': case 't': unit = 1024.0 * 1024 * 1024 * 1024; end++; break;
    default: break;
    }
    if (*end == 'B' || *end == 'b')
        end++;
    v *= unit;
    if (errno || *end || !(v >= 1) || v > (double)(SIZE_MAX / 2))
        return 0;
    return (size_t)v;
}

/* NNP_MAX_MEMORY, else MemAvailable, else no limit. */
static size_t default_budget(void)
{
    size_t b = nnp_parse_bytes(getenv("NNP_MAX_MEMORY"));
    if (b)
        return b;
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    unsigned long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb ? (size_t)kb * 1024 : SIZE_MAX;
}

size_t nnp_memory_budget(void)
{
    size_t b = atomic_load(&mem_budget);
    if (!b) {
        b = default_budget();
        size_t zero = 0;
        if (!atomic_compare_exchange_strong(&mem_budget, &zero, b))
            b = zero;
    }
    return b;
}

void nnp_set_memory_budget(size_t bytes) { atomic_store(&mem_budget, bytes ? bytes : default_budget()); }

size_t nnp_memory_in_use(void) { return atomic_load(&mem_in_use); }

static _Atomic unsigned long mem_refusals;

unsigned long nnp_memory_refusals(void) { return atomic_load(&mem_refusals); }

nnp_status nnp_memory_limit_status(nnp_status st, unsigned long before, nnp_error *err)
{
    if (st != NNP_ERR_NOMEM || nnp_memory_refusals() == before)
        return st;
    const size_t budget = nnp_memory_budget(), used = nnp_memory_in_use();
    char msg[NNP_ERROR_MSG_MAX + 160];
    snprintf(msg, sizeof msg, "%.*s: the memory budget of %zu bytes has %zu left (set it with "
             "NNP_MAX_MEMORY or --max-memory)", (int)NNP_ERROR_MSG_MAX - 1, err->msg, budget,
             used < budget ? budget - used : 0);
    return nnp_error_set(err, NNP_ERR_LIMIT, "%s", msg);
}

/* Takes n bytes of the budget; 0 when they are not left. */
static int budget_take(size_t n)
{
    const size_t budget = nnp_memory_budget();
    size_t used = atomic_load(&mem_in_use);
    do {
        if (n > budget || used > budget - n)
            return 0;
    } while (!atomic_compare_exchange_weak(&mem_in_use, &used, used + n));
    return 1;
}

/* Each block carries its size and the allocator's pointer just before the
 * pointer handed out, so a free gives back exactly what the allocation
 * took. Blocks come from calloc: large ones are fresh zero pages that cost
 * no resident memory until written (scratch planned for shapes a run may
 * never see). */
typedef struct block_head {
    size_t total;
    void *raw;
} block_head;

static void *budget_alloc(size_t bytes, int *over)
{
    *over = 0;
    if (bytes > SIZE_MAX - 3 * NNP_ALIGN)
        return NULL;
    size_t rounded = (bytes + NNP_ALIGN - 1) / NNP_ALIGN * NNP_ALIGN;
    if (rounded == 0)
        rounded = NNP_ALIGN;
    const size_t total = rounded + 2 * NNP_ALIGN;
    if (!budget_take(total)) {
        *over = 1;
        atomic_fetch_add(&mem_refusals, 1);
        return NULL;
    }
    unsigned char *raw = calloc(1, total);
    if (!raw) {
        atomic_fetch_sub(&mem_in_use, total);
        return NULL;
    }
    const uintptr_t at = ((uintptr_t)raw + NNP_ALIGN + NNP_ALIGN - 1) & ~(uintptr_t)(NNP_ALIGN - 1);
    unsigned char *q = (unsigned char *)at;
    block_head h = {total, raw};
    memcpy(q - sizeof h, &h, sizeof h);
    return q;
}

void *nnp_aligned_alloc(size_t bytes)
{
    int over;
    return budget_alloc(bytes, &over);
}

void nnp_aligned_free(void *q)
{
    if (!q)
        return;
    block_head h;
    memcpy(&h, (unsigned char *)q - sizeof h, sizeof h);
    atomic_fetch_sub(&mem_in_use, h.total);
    free(h.raw);
}

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
    int over;
    void *p = budget_alloc(bytes, &over);
    if (!p && over) {
        char sb[128];
        size_t budget = nnp_memory_budget(), used = nnp_memory_in_use();
        return nnp_error_set(err, NNP_ERR_LIMIT, "a %s tensor %s needs %zu bytes; the memory "
                             "budget of %zu bytes has %zu left (set it with NNP_MAX_MEMORY or "
                             "--max-memory)", nnp_dtype_name(dtype),
                             nnp_shape_str(shape, sb, sizeof sb), bytes, budget,
                             used < budget ? budget - used : 0);
    }
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
