/* The HDF5 calls of the Keras file reader and writer: files in memory,
 * string attributes as Keras and h5py write them, float datasets into
 * tensors. HDF5's errors become nnplug messages. */
#ifdef NNP_HAVE_KERAS_FILES
#include "interchange/keras_file_internal.h"
#include "nnplug/status.h"
#include "nnplug/tensor.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Limits on what one attribute may hold (a fuzzed file can claim anything). */
#define MAX_ATTR_STRINGS (1 << 20)
#define MAX_ATTR_BYTES ((size_t)1 << 28)
#define MAX_ATTR_CHUNKS 100000

static pthread_mutex_t h5_lock = PTHREAD_MUTEX_INITIALIZER;
static H5E_auto2_t saved_func;
static void *saved_data;

void nnpi_h5_enter(void)
{
    pthread_mutex_lock(&h5_lock);
    H5Eget_auto2(H5E_DEFAULT, &saved_func, &saved_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void nnpi_h5_leave(void)
{
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, saved_func, saved_data);
    pthread_mutex_unlock(&h5_lock);
}

long long nnpi_h5_open_ids(void)
{
    static const H5I_type_t types[] = {H5I_FILE, H5I_GROUP, H5I_DATATYPE, H5I_DATASPACE,
                                       H5I_DATASET, H5I_ATTR, H5I_GENPROP_LST};
    long long total = 0;
    nnpi_h5_enter();
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        hsize_t n = 0;
        if (H5Inmembers(types[i], &n) >= 0)
            total += (long long)n;
    }
    nnpi_h5_leave();
    return total;
}

typedef struct detail {
    char text[160];
} detail;

/* The innermost entry comes first when walking upward. */
static herr_t first_error(unsigned n, const H5E_error2_t *e, void *data)
{
    detail *d = data;
    if (n != 0)
        return 0;
    if (e->desc && e->desc[0])
        snprintf(d->text, sizeof d->text, "%s", e->desc);
    else if (H5Eget_msg(e->min_num, NULL, d->text, sizeof d->text) < 0)
        d->text[0] = 0;
    return 0;
}

void nnpi_h5_reason(char *buf, size_t size)
{
    detail d = {{0}};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, first_error, &d);
    H5Eclear2(H5E_DEFAULT);
    snprintf(buf, size, "%s", d.text);
}

nnp_status nnpi_h5_error(nnp_error *err, nnp_status code, const char *fmt, ...)
{
    char msg[NNP_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char why[sizeof(detail)];
    nnpi_h5_reason(why, sizeof why);
    if (why[0])
        return nnp_error_set(err, code, "%s (HDF5: %s)", msg, why);
    return nnp_error_set(err, code, "%s", msg);
}

static nnp_status h5_fail(nnp_error *err, nnp_status code, const char *what)
{
    return nnpi_h5_error(err, code, "%s", what);
}

static hid_t core_fapl(void)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0)
        return -1;
    /* STRONG: closing the file closes whatever an error path left open */
    if (H5Pset_fapl_core(fapl, 1 << 16, 0) < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

/* File image callbacks that read the caller's bytes in place: every
 * "allocation" of the image is those bytes and every copy a no-op, so a
 * file of many megabytes is neither copied nor paged in twice. */
typedef struct image_bytes {
    void *data;
    size_t len;
} image_bytes;

static void *image_malloc(size_t size, H5FD_file_image_op_t op, void *udata)
{
    const image_bytes *b = udata;
    return op != H5FD_FILE_IMAGE_OP_FILE_RESIZE && size == b->len ? b->data : NULL;
}

static void *image_memcpy(void *dest, const void *src, size_t size, H5FD_file_image_op_t op,
                          void *udata)
{
    (void)size, (void)op, (void)udata;
    return dest == src ? dest : NULL;
}

static void *image_realloc(void *ptr, size_t size, H5FD_file_image_op_t op, void *udata)
{
    (void)ptr, (void)size, (void)op, (void)udata;
    return NULL;   /* the file is read-only */
}

static herr_t image_free(void *ptr, H5FD_file_image_op_t op, void *udata)
{
    (void)ptr, (void)op, (void)udata;
    return 0;
}

static void *udata_copy(void *udata) { return udata; }
static herr_t udata_free(void *udata) { (void)udata; return 0; }

hid_t nnpi_h5_open_image(const void *data, size_t len)
{
    /* lives as long as the process (property lists copy it by pointer) */
    static image_bytes bytes;
    bytes = (image_bytes){(void *)data, len};
    H5FD_file_image_callbacks_t cb = {image_malloc, image_memcpy, image_realloc, image_free,
                                      udata_copy, udata_free, &bytes};
    hid_t fapl = core_fapl();
    if (fapl < 0)
        return -1;
    hid_t f = -1;
    if (len > 0 && H5Pset_file_image_callbacks(fapl, &cb) >= 0 &&
        H5Pset_file_image(fapl, (void *)data, len) >= 0)
        f = H5Fopen("model.h5", H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    return f;
}

hid_t nnpi_h5_create_image(void)
{
    hid_t fapl = core_fapl();
    if (fapl < 0)
        return -1;
    hid_t f = H5Fcreate("model.weights.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    return f;
}

nnp_status nnpi_h5_image(hid_t f, void **data, size_t *len, nnp_error *err)
{
    *data = NULL;
    *len = 0;
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0)
        return h5_fail(err, NNP_ERR_IO, "cannot finish the HDF5 file");
    ssize_t n = H5Fget_file_image(f, NULL, 0);
    if (n <= 0)
        return h5_fail(err, NNP_ERR_IO, "cannot get the HDF5 file's bytes");
    void *buf = malloc((size_t)n);
    if (!buf)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory (%zd bytes)", n);
    if (H5Fget_file_image(f, buf, (size_t)n) != n) {
        free(buf);
        return h5_fail(err, NNP_ERR_IO, "cannot get the HDF5 file's bytes");
    }
    *data = buf;
    *len = (size_t)n;
    return NNP_OK;
}

void nnpi_strv_free(nnpi_strv *v)
{
    for (int i = 0; i < v->n; i++)
        free(v->s[i]);
    free(v->s);
    v->s = NULL;
    v->n = 0;
}

static nnp_status strv_push(nnpi_strv *v, const char *s, size_t len, nnp_error *err)
{
    if (v->n >= MAX_ATTR_STRINGS)
        return nnp_error_set(err, NNP_ERR_LIMIT, "more than %d strings", MAX_ATTR_STRINGS);
    char **grown = realloc(v->s, sizeof *grown * (size_t)(v->n + 1));
    char *copy = grown ? malloc(len + 1) : NULL;
    if (grown)
        v->s = grown;
    if (!copy)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    memcpy(copy, s, len);
    copy[len] = 0;
    v->s[v->n++] = copy;
    return NNP_OK;
}

static nnp_status read_vlen(hid_t attr, hid_t ftype, hid_t space, size_t n, nnpi_strv *v,
                            nnp_error *err)
{
    hid_t mem = H5Tcopy(H5T_C_S1);
    char **buf = calloc(n, sizeof *buf);
    nnp_status st = NNP_OK;
    if (mem < 0 || !buf || H5Tset_size(mem, H5T_VARIABLE) < 0 ||
        H5Tset_cset(mem, H5Tget_cset(ftype)) < 0)
        st = buf ? h5_fail(err, NNP_ERR_FORMAT, "cannot read it")
                 : nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    else if (H5Aread(attr, mem, buf) < 0)
        st = h5_fail(err, NNP_ERR_FORMAT, "cannot read it");
    else {
        for (size_t i = 0; i < n && st == NNP_OK; i++)
            st = strv_push(v, buf[i] ? buf[i] : "", buf[i] ? strlen(buf[i]) : 0, err);
        H5Dvlen_reclaim(mem, space, H5P_DEFAULT, buf);
    }
    if (mem >= 0)
        H5Tclose(mem);
    free(buf);
    return st;
}

static nnp_status read_fixed(hid_t attr, hid_t ftype, size_t n, nnpi_strv *v, nnp_error *err)
{
    size_t size = H5Tget_size(ftype), total;
    if (size == 0 || !nnp_mul_size(n, size, &total) || total > MAX_ATTR_BYTES)
        return nnp_error_set(err, NNP_ERR_FORMAT, "its %zu strings of %zu bytes are too long", n,
                             size);
    char *buf = malloc(total);
    hid_t mem = buf ? H5Tcopy(ftype) : -1;
    nnp_status st = NNP_OK;
    if (!buf)
        st = nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    else if (mem < 0 || H5Aread(attr, mem, buf) < 0)
        st = h5_fail(err, NNP_ERR_FORMAT, "cannot read it");
    for (size_t i = 0; i < n && st == NNP_OK; i++)
        st = strv_push(v, buf + i * size, strnlen(buf + i * size, size), err);
    if (mem >= 0)
        H5Tclose(mem);
    free(buf);
    return st;
}

/* One attribute's strings, appended to v. */
static nnp_status read_attr(hid_t obj, const char *name, nnpi_strv *v, nnp_error *err)
{
    hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t type = attr >= 0 ? H5Aget_type(attr) : -1;
    hid_t space = attr >= 0 ? H5Aget_space(attr) : -1;
    nnp_status st = NNP_OK;
    hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    int rank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    if (attr < 0 || type < 0 || space < 0 || n < 0 || rank < 0)
        st = h5_fail(err, NNP_ERR_FORMAT, "cannot open it");
    else if (n == 0)
        st = NNP_OK;   /* an empty list, whatever its element type */
    else if (H5Tget_class(type) != H5T_STRING || rank > 1)
        st = nnp_error_set(err, NNP_ERR_FORMAT, "it is not a string or a list of strings");
    else if (n > MAX_ATTR_STRINGS)
        st = nnp_error_set(err, NNP_ERR_LIMIT, "it holds %lld strings (at most %d)", (long long)n,
                           MAX_ATTR_STRINGS);
    else if (H5Tis_variable_str(type) > 0)
        st = read_vlen(attr, type, space, (size_t)n, v, err);
    else
        st = read_fixed(attr, type, (size_t)n, v, err);
    if (space >= 0)
        H5Sclose(space);
    if (type >= 0)
        H5Tclose(type);
    if (attr >= 0)
        H5Aclose(attr);
    return st;
}

nnp_status nnpi_h5_attr_strings(hid_t obj, const char *name, nnpi_strv *v, bool *found,
                                nnp_error *err)
{
    memset(v, 0, sizeof *v);
    *found = false;
    nnp_status st = NNP_OK;
    if (H5Aexists(obj, name) > 0) {
        *found = true;
        st = read_attr(obj, name, v, err);
    } else {
        char chunk[300];
        for (int k = 0; st == NNP_OK && k < MAX_ATTR_CHUNKS; k++) {
            snprintf(chunk, sizeof chunk, "%s%d", name, k);
            if (H5Aexists(obj, chunk) <= 0)
                break;
            *found = true;
            st = read_attr(obj, chunk, v, err);
        }
    }
    if (st) {
        nnpi_strv_free(v);
        return nnp_error_prefix(err, "attribute '%s'", name);
    }
    return NNP_OK;
}

nnp_status nnpi_h5_set_attr_string(hid_t obj, const char *name, const char *value,
                                   nnp_error *err)
{
    hid_t type = H5Tcopy(H5T_C_S1);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = -1;
    nnp_status st = NNP_OK;
    if (type < 0 || space < 0 || H5Tset_size(type, H5T_VARIABLE) < 0 ||
        H5Tset_cset(type, H5T_CSET_UTF8) < 0 ||
        (attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Awrite(attr, type, &value) < 0)
        st = nnpi_h5_error(err, NNP_ERR_IO, "cannot write attribute '%s'", name);
    if (attr >= 0)
        H5Aclose(attr);
    if (space >= 0)
        H5Sclose(space);
    if (type >= 0)
        H5Tclose(type);
    return st;
}

bool nnpi_h5_exists(hid_t loc, const char *path)
{
    char buf[1024];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, path, n + 1);
    /* H5Lexists needs each part above the last to exist */
    for (char *p = buf; (p = strchr(p + 1, '/')) != NULL;) {
        *p = 0;
        htri_t e = H5Lexists(loc, buf, H5P_DEFAULT);
        *p = '/';
        if (e <= 0)
            return false;
    }
    return H5Lexists(loc, buf, H5P_DEFAULT) > 0;
}

static void dims_text(int rank, const hsize_t *d, char *buf, size_t size)
{
    size_t at = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < rank && at < size; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s%llu", i ? ", " : "",
                               (unsigned long long)d[i]);
    if (at < size)
        snprintf(buf + at, size - at, "]");
}

/* The dataset's type and shape against t's. */
static nnp_status check_dataset(hid_t ds, const nnp_tensor *t, nnp_error *err)
{
    hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
    nnp_status st = NNP_OK;
    hsize_t dims[H5S_MAX_RANK];
    int rank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    if (type < 0 || space < 0 || rank < 0 || rank > H5S_MAX_RANK ||
        H5Sget_simple_extent_dims(space, dims, NULL) < 0)
        st = h5_fail(err, NNP_ERR_FORMAT, "unreadable type or shape");
    else if (H5Tget_class(type) != H5T_FLOAT)
        st = nnp_error_set(err, NNP_ERR_FORMAT, "its element type is not a float (HDF5 class %d)",
                           (int)H5Tget_class(type));
    else if (H5Sget_simple_extent_type(space) == H5S_NULL)
        st = nnp_error_set(err, NNP_ERR_FORMAT, "it holds no data (a null dataspace)");
    else {
        bool same = rank == t->shape.rank;
        for (int i = 0; same && i < rank; i++)
            same = (int64_t)dims[i] == t->shape.dims[i];
        if (!same) {
            char got[256], want[256];
            dims_text(rank, dims, got, sizeof got);
            nnp_shape_str(&t->shape, want, sizeof want);
            st = nnp_error_set(err, NNP_ERR_SHAPE, "shape %s, the layer's is %s", got, want);
        }
    }
    if (space >= 0)
        H5Sclose(space);
    if (type >= 0)
        H5Tclose(type);
    return st;
}

nnp_status nnpi_h5_read_tensor(hid_t loc, const char *path, nnp_tensor *t, nnp_error *err)
{
    if (t->dtype != NNP_F32)
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "the layer's weight is not float32");
    if (!nnpi_h5_exists(loc, path))
        return nnp_error_set(err, NNP_ERR_NOT_FOUND, "missing (no dataset %s)", path);
    hid_t ds = H5Dopen2(loc, path, H5P_DEFAULT);
    if (ds < 0)
        return h5_fail(err, NNP_ERR_FORMAT, "not a readable dataset");
    nnp_status st = check_dataset(ds, t, err);
    if (st == NNP_OK && nnp_tensor_numel(t) > 0 &&
        H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t->data) < 0)
        st = h5_fail(err, NNP_ERR_FORMAT, "cannot read its values");
    H5Dclose(ds);
    return st;
}

nnp_status nnpi_h5_write_tensor(hid_t g, const char *name, const nnp_tensor *t, nnp_error *err)
{
    hsize_t dims[NNP_MAX_RANK];
    for (int i = 0; i < t->shape.rank; i++)
        dims[i] = (hsize_t)t->shape.dims[i];
    hid_t space = t->shape.rank ? H5Screate_simple(t->shape.rank, dims, NULL)
                                : H5Screate(H5S_SCALAR);
    hid_t ds = space >= 0 ? H5Dcreate2(g, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                                       H5P_DEFAULT)
                          : -1;
    nnp_status st = NNP_OK;
    if (ds < 0 || (nnp_tensor_numel(t) > 0 &&
                   H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t->data) < 0))
        st = nnpi_h5_error(err, NNP_ERR_IO, "cannot write dataset '%s'", name);
    if (ds >= 0)
        H5Dclose(ds);
    if (space >= 0)
        H5Sclose(space);
    return st;
}

hid_t nnpi_h5_create_group(hid_t loc, const char *path)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl < 0)
        return -1;
    hid_t g = -1;
    if (H5Pset_create_intermediate_group(lcpl, 1) >= 0)
        g = H5Gcreate2(loc, path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(lcpl);
    return g;
}
#else
typedef int nnpi_keras_h5_unused; /* ISO C wants a declaration in every file */
#endif
