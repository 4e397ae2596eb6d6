/* ONNX tensors: element types, raw_data and typed fields, external data,
 * half-precision conversions, and the name map the importer and exporter
 * share. Every length is checked against the dims before anything is read
 * or allocated. */
#include "interchange/onnx_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- name map ---------------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int nnpi_onnx_map_get(const onnx_map *m, const char *key)
{
    if (!m->cap)
        return -1;
    size_t i = hash_str(key) & (m->cap - 1);
    while (m->keys[i]) {
        if (strcmp(m->keys[i], key) == 0)
            return m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    return -1;
}

static int map_grow(onnx_map *m)
{
    size_t nc = m->cap ? m->cap * 2 : 64;
    char **k = calloc(nc, sizeof *k);
    int *v = calloc(nc, sizeof *v);
    if (!k || !v) {
        free(k);
        free(v);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t j = hash_str(m->keys[i]) & (nc - 1);
        while (k[j])
            j = (j + 1) & (nc - 1);
        k[j] = m->keys[i];
        v[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = k;
    m->vals = v;
    m->cap = nc;
    return 0;
}

nnp_status nnpi_onnx_map_put(onnx_map *m, const char *key, int val, nnp_error *err)
{
    if ((m->n + 1) * 2 > m->cap && map_grow(m))
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    size_t i = hash_str(key) & (m->cap - 1);
    while (m->keys[i]) {
        if (strcmp(m->keys[i], key) == 0) {
            m->vals[i] = val;
            return NNP_OK;
        }
        i = (i + 1) & (m->cap - 1);
    }
    m->keys[i] = strdup(key);
    if (!m->keys[i])
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    m->vals[i] = val;
    m->n++;
    return NNP_OK;
}

void nnpi_onnx_map_free(onnx_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- element types ------------------------------------------------------ */

const char *nnpi_onnx_dtype_name(int t)
{
    static const char *const names[] = {
        "UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64",
        "STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64",
        "COMPLEX128", "BFLOAT16"};
    if (t >= 0 && t < (int)(sizeof names / sizeof names[0]))
        return names[t];
    return "unknown";
}

int nnpi_onnx_dtype_from_nnp(nnp_dtype dt)
{
    switch (dt) {
    case NNP_F32: return ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    case NNP_F64: return ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
    case NNP_I64: return ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    case NNP_I32: return ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
    case NNP_F16: return ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16;
    case NNP_BF16: return ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16;
    case NNP_U8: return ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
    case NNP_BOOL: return ONNX__TENSOR_PROTO__DATA_TYPE__BOOL;
    default: return 0;
    }
}

nnp_dtype nnpi_onnx_dtype_to_nnp(int t)
{
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: return NNP_F32;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return NNP_F64;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return NNP_I64;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return NNP_I32;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: return NNP_F16;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: return NNP_BF16;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: return NNP_U8;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return NNP_BOOL;
    default: return NNP_DTYPE_UNDEFINED;
    }
}

int nnpi_onnx_dtype_is_float(int t)
{
    return t == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
           t == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16 ||
           t == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16 ||
           t == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
}

/* Bytes per element in raw_data; 0 for types we do not read. */
static size_t raw_size(int t)
{
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: return 4;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: return 8;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: return 2;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return 1;
    default: return 0;
    }
}

/* ---- half precision ----------------------------------------------------- */

float nnpi_onnx_f16_to_f32(uint16_t h)
{
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float v;
    if (e == 0)
        v = ldexpf((float)m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexpf((float)(m | 0x400), e - 25);
    return (h & 0x8000) ? -v : v;
}

/* Round to nearest, ties to even; overflow gives infinity. */
uint16_t nnpi_onnx_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u)
        return sign | 0x7e00;                    /* NaN */
    if (ax >= 0x47800000u)
        return sign | 0x7c00;                    /* >= 65536 or inf */
    if (ax >= 0x38800000u) {                     /* normal half: >= 2^-14 */
        uint32_t mant = ax & 0x7fffff;
        uint32_t h = ((((ax >> 23) - 127 + 15) << 10) | (mant >> 13));
        uint32_t rem = mant & 0x1fff;
        if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
            h++;                                 /* a carry may reach infinity: right */
        return sign | (uint16_t)h;
    }
    if (ax < 0x33000000u)                        /* below 2^-25: zero */
        return sign;
    uint32_t mant = (ax & 0x7fffff) | 0x800000;
    int shift = 126 - (int)(ax >> 23);           /* 14..24: units of 2^-24 */
    uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1)))
        h++;
    return sign | (uint16_t)h;
}

float nnpi_onnx_bf16_to_f32(uint16_t b)
{
    uint32_t x = (uint32_t)b << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

uint16_t nnpi_onnx_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40);     /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* ---- reading ------------------------------------------------------------ */

/* Converts n little-endian elements of type t at src into out (F32 or I64). */
static void convert_raw(int t, const uint8_t *src, int64_t n, nnp_tensor *out)
{
    float *f = out->dtype == NNP_F32 ? out->data : NULL;
    int64_t *q = out->dtype == NNP_I64 ? out->data : NULL;
    for (int64_t i = 0; i < n; i++) {
        switch (t) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: memcpy(&f[i], src + 4 * i, 4); break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
            double d;
            memcpy(&d, src + 8 * i, 8);
            f[i] = (float)d;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            f[i] = nnpi_onnx_f16_to_f32(h);
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            f[i] = nnpi_onnx_bf16_to_f32(h);
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: memcpy(&q[i], src + 8 * i, 8); break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: {
            uint64_t u;
            memcpy(&u, src + 8 * i, 8);
            q[i] = (int64_t)u;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: {
            int32_t v;
            memcpy(&v, src + 4 * i, 4);
            q[i] = v;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: {
            uint32_t v;
            memcpy(&v, src + 4 * i, 4);
            q[i] = v;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: {
            int16_t v;
            memcpy(&v, src + 2 * i, 2);
            q[i] = v;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: {
            uint16_t v;
            memcpy(&v, src + 2 * i, 2);
            q[i] = v;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: q[i] = (int8_t)src[i]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: q[i] = src[i]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: q[i] = src[i] != 0; break;
        default: break;
        }
    }
}

/* Typed-field storage: count in *n, kind in return (0 none). */
static size_t typed_count(const Onnx__TensorProto *tp, int t)
{
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: return tp->n_float_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return tp->n_double_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return tp->n_int64_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: return tp->n_uint64_data;
    default: return tp->n_int32_data;   /* int32, int16, int8, uint16, uint8, bool, f16, bf16 */
    }
}

static void convert_typed(const Onnx__TensorProto *tp, int t, int64_t n, nnp_tensor *out)
{
    float *f = out->dtype == NNP_F32 ? out->data : NULL;
    int64_t *q = out->dtype == NNP_I64 ? out->data : NULL;
    for (int64_t i = 0; i < n; i++) {
        switch (t) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: f[i] = tp->float_data[i]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: f[i] = (float)tp->double_data[i]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
            f[i] = nnpi_onnx_f16_to_f32((uint16_t)tp->int32_data[i]);
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16:
            f[i] = nnpi_onnx_bf16_to_f32((uint16_t)tp->int32_data[i]);
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: q[i] = tp->int64_data[i]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: q[i] = (int64_t)tp->uint64_data[i]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: q[i] = tp->int32_data[i] != 0; break;
        default: q[i] = tp->int32_data[i]; break;
        }
    }
}

/* Parses a non-negative decimal (external data offset/length). */
static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return -1;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

nnp_status nnpi_onnx_external_path(const char *base_dir, const char *location, const char *label,
                                   const char *tensor, char **out, nnp_error *err)
{
    *out = NULL;
    if (!base_dir)
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "%s: tensor '%s' uses external data, which needs the model's folder "
                             "(load the model from a file)", label, tensor);
    if (!location || !location[0])
        return nnp_error_set(err, NNP_ERR_FORMAT,
                             "%s: tensor '%s': external data has no location", label, tensor);
    if (location[0] == '/')
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "%s: tensor '%s': external data location '%s' is an absolute path "
                             "(it must be relative to the model's folder)", label, tensor,
                             location);
    /* lexically: every ".." must stay below the folder */
    int depth = 0;
    for (const char *p = location; *p;) {
        const char *q = strchr(p, '/');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (--depth < 0)
                return nnp_error_set(err, NNP_ERR_INVALID,
                                     "%s: tensor '%s': external data location '%s' escapes the "
                                     "model's folder", label, tensor, location);
        } else if (n > 0 && !(n == 1 && p[0] == '.')) {
            depth++;
        }
        p += n;
        while (*p == '/')
            p++;
    }
    size_t need = strlen(base_dir) + strlen(location) + 2;
    char *joined = malloc(need);
    if (!joined)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    snprintf(joined, need, "%s/%s", base_dir, location);
    char *real = realpath(joined, NULL);
    if (!real) {
        nnp_status st = nnp_error_set(err, NNP_ERR_IO,
                                      "%s: tensor '%s': external data file '%s' is missing "
                                      "(%s: %s)", label, tensor, location, joined,
                                      strerror(errno));
        free(joined);
        return st;
    }
    free(joined);
    /* through links: the resolved file must still be inside the folder */
    char *real_base = realpath(base_dir, NULL);
    size_t bl = real_base ? strlen(real_base) : 0;
    if (!real_base || strncmp(real, real_base, bl) != 0 ||
        (real[bl] != '/' && !(bl == 1 && real_base[0] == '/'))) {
        nnp_status st = nnp_error_set(err, NNP_ERR_INVALID,
                                      "%s: tensor '%s': external data location '%s' resolves "
                                      "to %s, outside the model's folder", label, tensor,
                                      location, real);
        free(real);
        free(real_base);
        return st;
    }
    free(real_base);
    struct stat sb;
    if (stat(real, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        nnp_status st = nnp_error_set(err, NNP_ERR_IO,
                                      "%s: tensor '%s': external data '%s' is not a regular file",
                                      label, tensor, location);
        free(real);
        return st;
    }
    *out = real;
    return NNP_OK;
}

/* Reads `bytes` of external data for tp into a new buffer. */
static nnp_status read_external(const Onnx__TensorProto *tp, const char *label,
                                const char *base_dir, const char *name, size_t bytes,
                                uint8_t **buf, nnp_error *err)
{
    *buf = NULL;
    const char *location = NULL, *offset_s = NULL, *length_s = NULL;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = tp->external_data[i];
        const char *k = ONNX_STR(e->key);
        if (strcmp(k, "location") == 0)
            location = e->value;
        else if (strcmp(k, "offset") == 0)
            offset_s = e->value;
        else if (strcmp(k, "length") == 0)
            length_s = e->value;
    }
    uint64_t offset = 0, length = bytes;
    if (offset_s && parse_u64(offset_s, &offset))
        return nnp_error_set(err, NNP_ERR_FORMAT,
                             "%s: tensor '%s': external data offset '%s' is not a number", label,
                             name, offset_s);
    if (length_s && parse_u64(length_s, &length))
        return nnp_error_set(err, NNP_ERR_FORMAT,
                             "%s: tensor '%s': external data length '%s' is not a number", label,
                             name, length_s);
    if (length != bytes)
        return nnp_error_set(err, NNP_ERR_FORMAT,
                             "%s: tensor '%s': external data length %llu does not match its dims "
                             "(%zu bytes)", label, name, (unsigned long long)length, bytes);
    char *path;
    nnp_status st = nnpi_onnx_external_path(base_dir, location, label, name, &path, err);
    if (st)
        return st;
    FILE *f = fopen(path, "rb");
    struct stat sb;
    if (!f || fstat(fileno(f), &sb) != 0) {
        st = nnp_error_set(err, NNP_ERR_IO, "%s: tensor '%s': cannot open external data %s: %s",
                           label, name, path, strerror(errno));
        if (f)
            fclose(f);
        free(path);
        return st;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (offset > size || bytes > size - offset) {
        st = nnp_error_set(err, NNP_ERR_FORMAT,
                           "%s: tensor '%s': external data '%s' holds %llu bytes, the tensor needs "
                           "%zu at offset %llu", label, name, location, (unsigned long long)size,
                           bytes, (unsigned long long)offset);
        fclose(f);
        free(path);
        return st;
    }
    uint8_t *b = malloc(bytes ? bytes : 1);
    if (!b) {
        fclose(f);
        free(path);
        return nnp_error_set(err, NNP_ERR_NOMEM, "%s: tensor '%s': out of memory", label, name);
    }
    if (bytes && (fseeko(f, (off_t)offset, SEEK_SET) != 0 || fread(b, 1, bytes, f) != bytes)) {
        st = nnp_error_set(err, NNP_ERR_IO, "%s: tensor '%s': reading external data %s failed",
                           label, name, path);
        free(b);
        fclose(f);
        free(path);
        return st;
    }
    fclose(f);
    free(path);
    *buf = b;
    return NNP_OK;
}

nnp_status nnpi_onnx_tensor_read(const Onnx__TensorProto *tp, const char *label,
                                 const char *base_dir, nnp_tensor *out, int *onnx_dtype,
                                 nnp_error *err)
{
    memset(out, 0, sizeof *out);
    const char *name = tp->name && tp->name[0] ? tp->name : "(unnamed)";
    int t = tp->has_data_type ? tp->data_type : 0;
    if (onnx_dtype)
        *onnx_dtype = t;
    size_t esize = raw_size(t);
    if (!esize)
        return nnp_error_set(err, t == 0 ? NNP_ERR_FORMAT : NNP_ERR_UNSUPPORTED,
                             "%s: tensor '%s' has element type %s (%d); nnplug reads float, "
                             "float16, bfloat16, double and integer tensors",
                             label, name, nnpi_onnx_dtype_name(t), t);
    if (tp->segment)
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "%s: tensor '%s' is segmented", label, name);
    if (tp->n_dims > NNP_MAX_RANK)
        return nnp_error_set(err, NNP_ERR_SHAPE, "%s: tensor '%s' has rank %zu (at most %d)",
                             label, name, tp->n_dims, NNP_MAX_RANK);
    nnp_shape shape = {0};
    shape.rank = (int32_t)tp->n_dims;
    int64_t numel = 1;
    for (size_t i = 0; i < tp->n_dims; i++) {
        if (tp->dims[i] < 0)
            return nnp_error_set(err, NNP_ERR_SHAPE, "%s: tensor '%s' has negative dimension %lld",
                                 label, name, (long long)tp->dims[i]);
        shape.dims[i] = tp->dims[i];
        if (__builtin_mul_overflow(numel, tp->dims[i], &numel))
            return nnp_error_set(err, NNP_ERR_OVERFLOW,
                                 "%s: tensor '%s': element count of its dims overflows", label,
                                 name);
    }
    size_t bytes;
    if ((uint64_t)numel > SIZE_MAX / 8 || !nnp_mul_size((size_t)numel, esize, &bytes))
        return nnp_error_set(err, NNP_ERR_OVERFLOW, "%s: tensor '%s': its dims overflow", label,
                             name);
    int external = tp->has_data_location &&
                   tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    uint8_t *ext = NULL;
    const uint8_t *raw = NULL;
    if (external) {
        nnp_status st = read_external(tp, label, base_dir, name, bytes, &ext, err);
        if (st)
            return st;
        raw = ext;
    } else if (tp->has_raw_data) {
        if (tp->raw_data.len != bytes)
            return nnp_error_set(err, NNP_ERR_FORMAT,
                                 "%s: tensor '%s': raw_data holds %zu bytes, its dims need %zu "
                                 "(%lld %s elements)", label, name, tp->raw_data.len, bytes,
                                 (long long)numel, nnpi_onnx_dtype_name(t));
        raw = tp->raw_data.data;
    } else {
        size_t have = typed_count(tp, t);
        if (have != (size_t)numel)
            return nnp_error_set(err, NNP_ERR_FORMAT,
                                 "%s: tensor '%s' holds %zu values, its dims need %lld", label,
                                 name, have, (long long)numel);
    }
    nnp_status st =
        nnp_tensor_alloc(out, nnpi_onnx_dtype_is_float(t) ? NNP_F32 : NNP_I64, &shape, err);
    if (st) {
        free(ext);
        return nnp_error_prefix(err, "%s: tensor '%s'", label, name);
    }
    if (raw)
        convert_raw(t, raw, numel, out);
    else
        convert_typed(tp, t, numel, out);
    free(ext);
    return NNP_OK;
}

nnp_status nnpi_onnx_tensor_to_f32(const nnp_tensor *in, nnp_tensor *out, nnp_error *err)
{
    nnp_status st = nnp_tensor_alloc(out, NNP_F32, &in->shape, err);
    if (st)
        return st;
    int64_t n = nnp_tensor_numel(in);
    float *o = out->data;
    for (int64_t i = 0; i < n; i++) {
        switch (in->dtype) {
        case NNP_F32: o[i] = ((const float *)in->data)[i]; break;
        case NNP_F64: o[i] = (float)((const double *)in->data)[i]; break;
        case NNP_I64: o[i] = (float)((const int64_t *)in->data)[i]; break;
        case NNP_I32: o[i] = (float)((const int32_t *)in->data)[i]; break;
        default:
            nnp_tensor_free(out);
            return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "cannot convert %s to float32",
                                 nnp_dtype_name(in->dtype));
        }
    }
    return NNP_OK;
}

/* ---- writing ------------------------------------------------------------ */

nnp_status nnpi_onnx_tensor_write(Onnx__TensorProto *tp, const char *name, const nnp_tensor *t,
                                  int onnx_dtype, nnp_error *err)
{
    int dt = nnpi_onnx_dtype_from_nnp(t->dtype);
    if (t->dtype == NNP_F32 && onnx_dtype && nnpi_onnx_dtype_is_float(onnx_dtype))
        dt = onnx_dtype;
    if (!dt || (t->dtype != NNP_F32 && t->dtype != NNP_F64 && t->dtype != NNP_I64 &&
                t->dtype != NNP_I32))
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "initializer '%s': cannot write %s", name,
                             nnp_dtype_name(t->dtype));
    int64_t n = nnp_tensor_numel(t);
    size_t es = raw_size(dt), bytes;
    if (n < 0 || !nnp_mul_size((size_t)n, es, &bytes))
        return nnp_error_set(err, NNP_ERR_OVERFLOW, "initializer '%s': too large", name);
    tp->name = nnpi_onnx_strdup(name);
    tp->n_dims = (size_t)t->shape.rank;
    tp->dims = malloc(sizeof(int64_t) * (t->shape.rank ? (size_t)t->shape.rank : 1));
    tp->raw_data.data = malloc(bytes ? bytes : 1);
    if (!tp->name || !tp->dims || !tp->raw_data.data)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < t->shape.rank; i++)
        tp->dims[i] = t->shape.dims[i];
    tp->has_data_type = 1;
    tp->data_type = dt;
    tp->has_raw_data = 1;
    tp->raw_data.len = bytes;
    uint8_t *o = tp->raw_data.data;
    if (t->dtype != NNP_F32 || dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
        if (bytes)
            memcpy(o, t->data, bytes);   /* little-endian host */
        return NNP_OK;
    }
    const float *f = t->data;
    for (int64_t i = 0; i < n; i++) {
        if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE) {
            double d = f[i];
            memcpy(o + 8 * i, &d, 8);
        } else {
            uint16_t h = dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16
                             ? nnpi_onnx_f32_to_f16(f[i])
                             : nnpi_onnx_f32_to_bf16(f[i]);
            memcpy(o + 2 * i, &h, 2);
        }
    }
    return NNP_OK;
}
