/* .npy reading and writing (format versions 1.0-3.0 read, 1.0 written). */
#include "interchange/io_internal.h"
#include "nnplug/io.h"
#include "nnplug/status.h"
#include "nnplug/tensor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NPY_HEADER_MAX (1u << 20)

nnp_status nnp_read_file(const char *path, char **data, size_t *len, nnp_error *err)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return nnp_error_set(err, NNP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return nnp_error_set(err, NNP_ERR_IO, "%s: not a regular file", path);
    }
    size_t n = (size_t)sb.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return nnp_error_set(err, NNP_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, n);
    }
    if (n && fread(buf, 1, n, f) != n) {
        free(buf);
        fclose(f);
        return nnp_error_set(err, NNP_ERR_IO, "%s: read failed", path);
    }
    fclose(f);
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return NNP_OK;
}

nnp_status nnpi_atomic_open(nnpi_atomic_file *f, const char *path, nnp_error *err)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    size_t plen = strlen(path);
    f->tmp = malloc(plen + 32);
    if (!f->tmp)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    snprintf(f->tmp, plen + 32, "%s.tmp.XXXXXX", path);
    f->fd = mkstemp(f->tmp);
    if (f->fd < 0) {
        nnp_status st = nnp_error_set(err, NNP_ERR_IO, "%s: cannot create temporary file: %s",
                                      path, strerror(errno));
        free(f->tmp);
        f->tmp = NULL;
        return st;
    }
    f->path = path;
    return NNP_OK;
}

void nnpi_atomic_write(nnpi_atomic_file *f, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0 && !f->failed_errno) {
        ssize_t w = write(f->fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            f->failed_errno = w < 0 ? errno : EIO;
            return;
        }
        p += w;
        len -= (size_t)w;
    }
}

void nnpi_atomic_abort(nnpi_atomic_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    if (f->tmp)
        unlink(f->tmp);
    free(f->tmp);
    f->tmp = NULL;
    f->fd = -1;
}

nnp_status nnpi_atomic_commit(nnpi_atomic_file *f, nnp_error *err)
{
    nnp_status st = NNP_OK;
    if (f->failed_errno)
        st = nnp_error_set(err, NNP_ERR_IO, "%s: write failed: %s", f->path,
                           strerror(f->failed_errno));
    /* mkstemp creates 0600; give the file the usual umask-governed mode. */
    mode_t um = umask(0);
    umask(um);
    if (!st && (fchmod(f->fd, 0666 & ~um) != 0 || fsync(f->fd) != 0))
        st = nnp_error_set(err, NNP_ERR_IO, "%s: cannot finish writing: %s", f->path,
                           strerror(errno));
    const int fd = f->fd;
    f->fd = -1;
    if (close(fd) != 0 && !st)
        st = nnp_error_set(err, NNP_ERR_IO, "%s: cannot finish writing: %s", f->path,
                           strerror(errno));
    if (!st && rename(f->tmp, f->path) != 0)
        st = nnp_error_set(err, NNP_ERR_IO, "%s: cannot rename into place: %s", f->path,
                           strerror(errno));
    if (st)
        unlink(f->tmp);
    free(f->tmp);
    f->tmp = NULL;
    return st;
}

nnp_status nnp_write_file_atomic(const char *path, const void *data, size_t len, nnp_error *err)
{
    nnpi_atomic_file f;
    nnp_status st = nnpi_atomic_open(&f, path, err);
    if (st)
        return st;
    nnpi_atomic_write(&f, data, len);
    return nnpi_atomic_commit(&f, err);
}

/* Finds 'key': VALUE in the header dict; returns a pointer to VALUE. */
static const char *dict_find(const char *h, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(h, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    if (*p != ':')
        return NULL;
    p++;
    while (*p == ' ')
        p++;
    return p;
}

static nnp_status parse_header(const char *path, const char *h, nnp_dtype *dt, nnp_shape *shape,
                               nnp_error *err)
{
    const char *d = dict_find(h, "descr");
    const char *fo = dict_find(h, "fortran_order");
    const char *sh = dict_find(h, "shape");
    if (!d || !fo || !sh)
        return nnp_error_set(err, NNP_ERR_FORMAT, "%s: .npy header lacks descr, fortran_order or shape",
                             path);
    static const struct { const char *descr; nnp_dtype dt; } types[] = {
        {"'<f4'", NNP_F32}, {"'<f8'", NNP_F64}, {"'<i8'", NNP_I64}, {"'<i4'", NNP_I32},
    };
    *dt = NNP_DTYPE_UNDEFINED;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strncmp(d, types[i].descr, strlen(types[i].descr)) == 0)
            *dt = types[i].dt;
    if (*dt == NNP_DTYPE_UNDEFINED) {
        /* the descr as printable text: bytes outside ASCII 32..126 escaped */
        char got[64] = {0};
        size_t at = 0;
        for (const char *q = *d == '\'' ? d + 1 : d; *q && *q != '\'' && at + 5 < sizeof got &&
                                                      q - d < 14; q++) {
            unsigned char c = (unsigned char)*q;
            if (c >= 32 && c < 127)
                got[at++] = (char)c;
            else
                at += (size_t)snprintf(got + at, sizeof got - at, "\\x%02x", c);
        }
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED,
                             "%s: unsupported dtype '%s' (float32, float64, int64 or int32, "
                             "little-endian)", path, got);
    }
    if (strncmp(fo, "False", 5) != 0)
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "%s: Fortran-ordered arrays are not supported",
                             path);
    if (*sh != '(')
        return nnp_error_set(err, NNP_ERR_FORMAT, "%s: malformed shape in .npy header", path);
    memset(shape, 0, sizeof *shape);
    const char *p = sh + 1;
    for (;;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == ')')
            break;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0)
            return nnp_error_set(err, NNP_ERR_FORMAT, "%s: malformed shape in .npy header", path);
        if (shape->rank >= NNP_MAX_RANK)
            return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "%s: rank above %d", path, NNP_MAX_RANK);
        shape->dims[shape->rank++] = v;
        p = end;
    }
    return NNP_OK;
}

/* The data a header's dtype and shape need, against what the file holds. */
static nnp_status check_data_size(const char *path, nnp_dtype dt, const nnp_shape *shape,
                                  size_t have, nnp_error *err)
{
    int64_t n = 0;
    size_t need = 0;
    char sb[128];
    nnp_status st = nnp_shape_numel(shape, &n, err);
    if (st || !nnp_mul_size((size_t)n, nnp_dtype_size(dt), &need))
        return nnp_error_set(err, NNP_ERR_FORMAT, "%s: the element count of shape %s overflows",
                             path, nnp_shape_str(shape, sb, sizeof sb));
    if (have != need)
        return nnp_error_set(err, NNP_ERR_FORMAT, "%s: data holds %zu bytes, shape %s needs %zu",
                             path, have, nnp_shape_str(shape, sb, sizeof sb), need);
    return NNP_OK;
}

nnp_status nnp_npy_parse(const void *data, size_t len, const char *label, nnp_tensor *t,
                         nnp_error *err)
{
    const char *buf = data, *path = label;
    size_t hlen, hoff;
    memset(t, 0, sizeof *t);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
        return nnp_error_set(err, NNP_ERR_FORMAT, "%s: not an .npy file (bad magic)", path);
    int major = (unsigned char)buf[6];
    if (major == 1) {
        hlen = (unsigned char)buf[8] | ((size_t)(unsigned char)buf[9] << 8);
        hoff = 10;
    } else if ((major == 2 || major == 3) && len >= 12) {
        hlen = (unsigned char)buf[8] | ((size_t)(unsigned char)buf[9] << 8) |
               ((size_t)(unsigned char)buf[10] << 16) | ((size_t)(unsigned char)buf[11] << 24);
        hoff = 12;
    } else {
        return nnp_error_set(err, NNP_ERR_FORMAT, "%s: unsupported .npy version %d", path, major);
    }
    if (hlen > NPY_HEADER_MAX || hoff + hlen > len)
        return nnp_error_set(err, NNP_ERR_FORMAT, "%s: truncated .npy header", path);
    char *h = malloc(hlen + 1);
    if (!h)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    memcpy(h, buf + hoff, hlen);
    h[hlen] = '\0';
    nnp_dtype dt = NNP_DTYPE_UNDEFINED;
    nnp_shape shape;
    nnp_status st = parse_header(path, h, &dt, &shape, err);
    free(h);
    /* the header's size against the file's, before anything is allocated:
     * a small file cannot ask for a large tensor */
    if (st == NNP_OK)
        st = check_data_size(path, dt, &shape, len - hoff - hlen, err);
    if (st == NNP_OK)
        st = nnp_tensor_alloc(t, dt, &shape, err);
    if (st && st != NNP_ERR_FORMAT && !strstr(err->msg, path))
        nnp_error_prefix(err, "%s", path);
    if (st == NNP_OK && t->nbytes)
        memcpy(t->data, buf + hoff + hlen, t->nbytes);
    return st;
}

nnp_status nnp_npy_read(const char *path, nnp_tensor *t, nnp_error *err)
{
    char *buf;
    size_t len;
    memset(t, 0, sizeof *t);
    nnp_status st = nnp_read_file(path, &buf, &len, err);
    if (st)
        return st;
    st = nnp_npy_parse(buf, len, path, t, err);
    free(buf);
    return st;
}

nnp_status nnp_npy_read_f32(const char *path, nnp_tensor *t, nnp_error *err)
{
    nnp_tensor raw;
    nnp_status st = nnp_npy_read(path, &raw, err);
    if (st || raw.dtype == NNP_F32) {
        *t = raw;
        return st;
    }
    st = nnp_tensor_alloc(t, NNP_F32, &raw.shape, err);
    if (st == NNP_OK) {
        int64_t n = nnp_tensor_numel(&raw);
        float *o = t->data;
        for (int64_t i = 0; i < n; i++) {
            switch (raw.dtype) {
            case NNP_F64: o[i] = (float)((const double *)raw.data)[i]; break;
            case NNP_I64: o[i] = (float)((const int64_t *)raw.data)[i]; break;
            case NNP_I32: o[i] = (float)((const int32_t *)raw.data)[i]; break;
            default: break;
            }
        }
    }
    nnp_tensor_free(&raw);
    return st;
}

nnp_status nnp_npy_write(const char *path, const nnp_tensor *t, nnp_error *err)
{
    const char *descr;
    switch (t->dtype) {
    case NNP_F32: descr = "<f4"; break;
    case NNP_F64: descr = "<f8"; break;
    case NNP_I64: descr = "<i8"; break;
    case NNP_I32: descr = "<i4"; break;
    default:
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "%s: cannot write dtype %s to .npy", path,
                             nnp_dtype_name(t->dtype));
    }
    char dict[512];
    int at = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                      descr);
    for (int i = 0; i < t->shape.rank; i++)
        at += snprintf(dict + at, sizeof dict - (size_t)at, "%lld,%s", (long long)t->shape.dims[i],
                       (i + 1 < t->shape.rank) ? " " : "");
    if (t->shape.rank > 1)
        at--; /* numpy writes "(2, 3)" but "(2,)" */
    at += snprintf(dict + at, sizeof dict - (size_t)at, "), }");
    size_t total = 10 + (size_t)at + 1;
    size_t padded = (total + 63) / 64 * 64;
    size_t hlen = padded - 10;
    size_t len = padded + t->nbytes;
    char *buf = malloc(len);
    if (!buf)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)(hlen & 0xff);
    buf[9] = (char)(hlen >> 8);
    memcpy(buf + 10, dict, (size_t)at);
    memset(buf + 10 + at, ' ', hlen - (size_t)at - 1);
    buf[padded - 1] = '\n';
    if (t->nbytes)
        memcpy(buf + padded, t->data, t->nbytes);
    nnp_status st = nnp_write_file_atomic(path, buf, len, err);
    free(buf);
    return st;
}
