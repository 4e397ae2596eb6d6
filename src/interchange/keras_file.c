/* Keras model files: which form a file is (JSON, a .keras archive, a legacy
 * HDF5 model), the archive's zip (libzip) and the HDF5 model's attributes;
 * the config goes through the Keras JSON loader, the weights through
 * keras_weights.c. HDF5 files are read in a child process
 * (keras_h5_child.c). */
#include "nnplug/io.h"
#include "nnplug/keras.h"
#include "nnplug/nnplug.h"
#include "nnplug/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef enum file_form { FORM_AUTO, FORM_JSON, FORM_ARCHIVE, FORM_H5 } file_form;

static bool has_ext(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n > e && strcasecmp(path + n - e, ext) == 0;
}

static bool is_zip(const unsigned char *d, size_t len)
{
    return len >= 4 && d[0] == 'P' && d[1] == 'K' &&
           ((d[2] == 3 && d[3] == 4) || (d[2] == 5 && d[3] == 6));
}

/* The HDF5 signature sits at 0, 512, 1024, 2048, ... (after a user block). */
static bool is_hdf5(const unsigned char *d, size_t len)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    for (size_t off = 0; off + 8 <= len && off <= ((size_t)1 << 40); off = off ? off * 2 : 512)
        if (memcmp(d + off, sig, 8) == 0)
            return true;
    return false;
}

static file_form form_of_bytes(const void *data, size_t len)
{
    if (is_zip(data, len))
        return FORM_ARCHIVE;
    if (is_hdf5(data, len))
        return FORM_H5;
    return FORM_JSON;
}

int nnp_keras_files_supported(void)
{
#ifdef NNP_HAVE_KERAS_FILES
    return 1;
#else
    return 0;
#endif
}

#ifdef NNP_HAVE_KERAS_FILES
#include "interchange/keras_file_internal.h"

#include <jansson.h>
#include <zip.h>

/* {"keras_version": VERSION, "model_config": CONFIG}: the JSON loader takes
 * the version from beside the model (it picks the kinds' defaults). */
static nnp_status load_config(const nnp_registry *reg, const char *config, const char *version,
                              const char *origin, nnp_model **out, nnp_error *err)
{
    if (!version)
        return nnp_keras_load_string(reg, config, origin, out, err);
    json_t *v = json_string(version);
    char *vtext = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    size_t n = strlen(config) + (vtext ? strlen(vtext) : 0) + 64;
    char *text = vtext ? malloc(n) : NULL;
    nnp_status st;
    if (!text) {
        st = vtext ? nnp_error_set(err, NNP_ERR_NOMEM, "out of memory")
                   : nnp_error_set(err, NNP_ERR_FORMAT, "%s: keras_version is not UTF-8 text",
                                   origin);
    } else {
        snprintf(text, n, "{\"keras_version\": %s, \"model_config\": %s\n}", vtext, config);
        st = nnp_keras_load_string(reg, text, origin, out, err);
    }
    free(text);
    free(vtext);
    return st;
}

/* ---- legacy HDF5 models ---------------------------------------------------- */

static nnp_status load_h5_file(const nnp_registry *reg, nnpi_h5r *r, const char *origin,
                               nnp_model **out, nnp_error *err)
{
    char *config = NULL, *version = NULL;
    nnp_status st = nnpi_h5r_attr_string(r, NNPI_H5R_ROOT, "model_config", &config, err);
    if (st)
        nnp_error_prefix(err, "%s", origin);
    else if (!config)
        st = nnp_error_set(err, NNP_ERR_FORMAT, "%s: an HDF5 file without the model_config "
                           "attribute: not a Keras model (a weights-only file holds no model)",
                           origin);
    if (st == NNP_OK &&
        (st = nnpi_h5r_attr_string(r, NNPI_H5R_ROOT, "keras_version", &version, err)) != NNP_OK)
        nnp_error_prefix(err, "%s", origin);
    nnp_model *m = NULL;
    if (st == NNP_OK)
        st = load_config(reg, config, version, origin, &m, err);
    if (st == NNP_OK)
        st = nnpi_keras_load_h5_weights(m, r, origin, err);
    free(config);
    free(version);
    if (st) {
        nnp_model_free(m);
        return st;
    }
    nnp_model_weights_changed(m);
    *out = m;
    return NNP_OK;
}

static nnp_status load_h5(const nnp_registry *reg, const void *data, size_t len,
                          const char *origin, nnp_model **out, nnp_error *err)
{
    nnpi_h5r *r = NULL;
    nnp_status st = nnpi_h5r_start(data, len, origin, &r, err);
    if (st)
        return st;
    if (nnpi_h5r_open_file(r) != NNP_OK)
        st = nnpi_h5r_error(r, err, NNP_ERR_FORMAT, "%s: not a readable HDF5 file", origin);
    else
        st = load_h5_file(reg, r, origin, out, err);
    st = nnpi_h5r_end(r, st, err);
    if (st && *out) {   /* the reader failed after the model was whole */
        nnp_model_free(*out);
        *out = NULL;
    }
    return st;
}

/* ---- .keras archives --------------------------------------------------------- */

typedef struct archive {
    char *config, *metadata;   /* NUL-terminated */
    char *weights;
    size_t weights_len;
} archive;

static void archive_free(archive *a)
{
    free(a->config);
    free(a->metadata);
    free(a->weights);
}

/* One member of the zip into memory; *data NULL when it is not there. */
static nnp_status archive_member(zip_t *z, const char *name, size_t limit, const char *origin,
                             char **data, size_t *len, nnp_error *err)
{
    *data = NULL;
    *len = 0;
    zip_int64_t idx = zip_name_locate(z, name, 0);
    if (idx < 0)
        return NNP_OK;
    zip_stat_t sb;
    zip_stat_init(&sb);
    if (zip_stat_index(z, (zip_uint64_t)idx, 0, &sb) != 0 || !(sb.valid & ZIP_STAT_SIZE))
        return nnp_error_set(err, NNP_ERR_FORMAT, "%s: %s: %s", origin, name, zip_strerror(z));
    if (sb.size > limit)
        return nnp_error_set(err, NNP_ERR_FORMAT, "%s: %s claims %llu bytes, more than the "
                             "archive can hold: a corrupted zip", origin, name,
                             (unsigned long long)sb.size);
    zip_file_t *zf = zip_fopen_index(z, (zip_uint64_t)idx, 0);
    char *buf = zf ? malloc(sb.size + 1) : NULL;
    char extra;
    nnp_status st = NNP_OK;
    if (!zf)
        st = nnp_error_set(err, NNP_ERR_FORMAT, "%s: cannot open %s: %s", origin, name,
                           zip_strerror(z));
    else if (!buf)
        st = nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    /* reading past the end makes libzip check the CRC */
    else if (zip_fread(zf, buf, sb.size) != (zip_int64_t)sb.size || zip_fread(zf, &extra, 1) != 0)
        st = nnp_error_set(err, NNP_ERR_FORMAT, "%s: cannot read %s: %s", origin, name,
                           zip_file_strerror(zf));
    if (zf)
        zip_fclose(zf);
    if (st) {
        free(buf);
        return st;
    }
    buf[sb.size] = 0;
    *data = buf;
    *len = sb.size;
    return NNP_OK;
}

static nnp_status open_zip(const void *data, size_t len, const char *origin, zip_t **out,
                           nnp_error *err)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(data, len, 0, &ze);
    zip_t *z = src ? zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze) : NULL;
    nnp_status st = NNP_OK;
    if (!z) {
        st = nnp_error_set(err, NNP_ERR_FORMAT, "%s: not a readable zip archive (a .keras file "
                           "is a zip of config.json, metadata.json and model.weights.h5): %s",
                           origin, zip_error_strerror(&ze));
        zip_source_free(src);
    }
    zip_error_fini(&ze);
    *out = z;
    return st;
}

static nnp_status read_archive(const void *data, size_t len, const char *origin, archive *a,
                               nnp_error *err)
{
    memset(a, 0, sizeof *a);
    zip_t *z;
    nnp_status st = open_zip(data, len, origin, &z, err);
    if (st)
        return st;
    /* deflate inflates at most about 1032 times */
    size_t limit = len > ((size_t)1 << 50) / 1100 ? (size_t)1 << 50 : len * 1100 + 4096, n;
    st = archive_member(z, "config.json", limit, origin, &a->config, &n, err);
    if (st == NNP_OK)
        st = archive_member(z, "metadata.json", limit, origin, &a->metadata, &n, err);
    if (st == NNP_OK)
        st = archive_member(z, "model.weights.h5", limit, origin, &a->weights,
                        &a->weights_len, err);
    if (st == NNP_OK && !a->config)
        st = nnp_error_set(err, NNP_ERR_FORMAT, "%s: the archive has no config.json: not a "
                           ".keras model", origin);
    else if (st == NNP_OK && !a->weights)
        st = nnp_error_set(err, zip_name_locate(z, "model.weights.npz", 0) >= 0
                                    ? NNP_ERR_UNSUPPORTED : NNP_ERR_FORMAT,
                           "%s: the archive has no model.weights.h5%s", origin,
                           zip_name_locate(z, "model.weights.npz", 0) >= 0
                               ? " (weights saved as .npz are not supported)" : "");
    zip_discard(z);
    if (st)
        archive_free(a);
    return st;
}

/* metadata.json's keras_version (malloc'ed), NULL when it has none. */
static nnp_status archive_version(const archive *a, const char *origin, char **out,
                                  nnp_error *err)
{
    *out = NULL;
    if (!a->metadata)
        return NNP_OK;
    json_error_t je;
    json_t *j = json_loads(a->metadata, 0, &je);
    if (!j)
        return nnp_error_set(err, NNP_ERR_FORMAT, "%s: metadata.json: invalid JSON at line %d: %s",
                             origin, je.line, je.text);
    const char *v = json_string_value(json_object_get(j, "keras_version"));
    if (v && !(*out = strdup(v))) {
        json_decref(j);
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    }
    json_decref(j);
    return NNP_OK;
}

static nnp_status load_archive(const nnp_registry *reg, const void *data, size_t len,
                               const char *origin, nnp_model **out, nnp_error *err)
{
    archive a;
    char *version = NULL;
    nnp_model *m = NULL;
    nnp_status st = read_archive(data, len, origin, &a, err);
    if (st)
        return st;
    st = archive_version(&a, origin, &version, err);
    /* the reader starts before the model is built, so that the weights it
     * fills are not shared with it (copy-on-write) */
    nnpi_h5r *r = NULL;
    if (st == NNP_OK)
        st = nnpi_h5r_start(a.weights, a.weights_len, origin, &r, err);
    if (st == NNP_OK)
        st = load_config(reg, a.config, version, origin, &m, err);
    if (st == NNP_OK) {
        if (nnpi_h5r_open_file(r) != NNP_OK)
            st = nnpi_h5r_error(r, err, NNP_ERR_FORMAT, "%s: model.weights.h5 is not a readable "
                                "HDF5 file", origin);
        else
            st = nnpi_keras_load_vars(m, r, origin, err);
    }
    st = nnpi_h5r_end(r, st, err);
    free(version);
    archive_free(&a);
    if (st) {
        nnp_model_free(m);
        return st;
    }
    nnp_model_weights_changed(m);
    *out = m;
    return NNP_OK;
}

/* ---- writing .keras ---------------------------------------------------------- */

static nnp_status weights_image(const nnp_model *m, const char *origin, void **data,
                                size_t *len, nnp_error *err)
{
    nnpi_h5_enter();
    hid_t f = nnpi_h5_create_image();
    nnp_status st = f < 0 ? nnpi_h5_error(err, NNP_ERR_IO, "%s: cannot create model.weights.h5",
                                          origin)
                          : nnpi_keras_save_vars(m, f, origin, err);
    if (st == NNP_OK && (st = nnpi_h5_image(f, data, len, err)) != NNP_OK)
        nnp_error_prefix(err, "%s: model.weights.h5", origin);
    if (f >= 0)
        H5Fclose(f);
    nnpi_h5_leave();
    return st;
}

static nnp_status archive_add(zip_t *z, const char *name, const void *data, size_t len)
{
    zip_source_t *s = zip_source_buffer(z, data, len, 0);
    zip_int64_t i = s ? zip_file_add(z, name, s, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE) : -1;
    if (i < 0) {
        zip_source_free(s);
        return NNP_ERR_IO;
    }
    return zip_set_file_compression(z, (zip_uint64_t)i, ZIP_CM_STORE, 0) ? NNP_ERR_IO : NNP_OK;
}

/* The bytes of the zip that src holds (kept open with zip_source_keep). */
static nnp_status source_bytes(zip_source_t *src, void **data, size_t *len)
{
    zip_int64_t n = -1;
    if (zip_source_open(src) < 0)
        return NNP_ERR_IO;
    if (zip_source_seek(src, 0, SEEK_END) == 0)
        n = zip_source_tell(src);
    void *buf = n > 0 ? malloc((size_t)n) : NULL;
    nnp_status st = n <= 0 ? NNP_ERR_IO : !buf ? NNP_ERR_NOMEM : NNP_OK;
    if (st == NNP_OK && (zip_source_seek(src, 0, SEEK_SET) != 0 ||
                         zip_source_read(src, buf, (zip_uint64_t)n) != n))
        st = NNP_ERR_IO;
    zip_source_close(src);
    if (st) {
        free(buf);
        return st;
    }
    *data = buf;
    *len = (size_t)n;
    return NNP_OK;
}

typedef struct member {
    const char *name;
    const void *data;
    size_t len;
} member;

static nnp_status archive_image(const member *mb, int n, const char *origin, void **data,
                            size_t *len, nnp_error *err)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    zip_t *z = src ? zip_open_from_source(src, ZIP_TRUNCATE, &ze) : NULL;
    if (!z) {
        zip_source_free(src);
        nnp_status st = nnp_error_set(err, NNP_ERR_IO, "%s: cannot make the zip archive: %s",
                                      origin, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return st;
    }
    zip_error_fini(&ze);
    zip_source_keep(src);
    nnp_status st = NNP_OK;
    for (int i = 0; i < n && st == NNP_OK; i++)
        st = archive_add(z, mb[i].name, mb[i].data, mb[i].len);
    if (st == NNP_OK && zip_close(z) != 0)
        st = NNP_ERR_IO;
    if (st) {   /* z is still open: zip_close frees it only on success */
        st = nnp_error_set(err, NNP_ERR_IO, "%s: cannot make the zip archive: %s", origin,
                           zip_strerror(z));
        zip_discard(z);
        zip_source_free(src);
        return st;
    }
    st = source_bytes(src, data, len);
    zip_source_free(src);
    return st ? nnp_error_set(err, st, "%s: cannot read back the zip archive", origin) : NNP_OK;
}

nnp_status nnp_keras_save_archive(const nnp_model *m, const char *path, nnp_error *err)
{
    char *config = nnp_keras_to_json(m), meta[160], date[64];
    void *weights = NULL, *zipped = NULL;
    size_t wlen = 0, zlen = 0;
    if (!config)
        return nnp_error_set(err, NNP_ERR_NOMEM, "%s: cannot serialize the model", path);
    time_t now = time(NULL);
    struct tm tm;
    strftime(date, sizeof date, "%Y-%m-%d@%H:%M:%S", localtime_r(&now, &tm));
    snprintf(meta, sizeof meta, "{\"keras_version\": \"nnplug %s\", \"date_saved\": \"%s\"}",
             NNP_VERSION_STRING, date);
    nnp_status st = weights_image(m, path, &weights, &wlen, err);
    if (st == NNP_OK) {
        /* the order Keras writes them in */
        member mb[] = {{"metadata.json", meta, strlen(meta)},
                       {"config.json", config, strlen(config)},
                       {"model.weights.h5", weights, wlen}};
        st = archive_image(mb, 3, path, &zipped, &zlen, err);
    }
    if (st == NNP_OK)
        st = nnp_write_file_atomic(path, zipped, zlen, err);
    free(config);
    free(weights);
    free(zipped);
    return st;
}

#else /* without HDF5 and libzip */

long long nnpi_h5_open_ids(void);
long long nnpi_h5_open_ids(void) { return -1; }

static nnp_status no_support(const char *origin, nnp_error *err)
{
    return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "%s: a Keras .keras / .h5 model file, but this "
                         "nnplug was built without HDF5/libzip support (CMake "
                         "NNP_WITH_KERAS_FILES)", origin);
}

static nnp_status load_archive(const nnp_registry *reg, const void *data, size_t len,
                               const char *origin, nnp_model **out, nnp_error *err)
{
    (void)reg, (void)data, (void)len, (void)out;
    return no_support(origin, err);
}

static nnp_status load_h5(const nnp_registry *reg, const void *data, size_t len,
                          const char *origin, nnp_model **out, nnp_error *err)
{
    (void)reg, (void)data, (void)len, (void)out;
    return no_support(origin, err);
}

nnp_status nnp_keras_save_archive(const nnp_model *m, const char *path, nnp_error *err)
{
    (void)m;
    return no_support(path, err);
}
#endif

/* data is NUL-terminated beyond len (JSON is read as a string). */
static nnp_status load_form(const nnp_registry *reg, const char *data, size_t len,
                            const char *origin, file_form form, nnp_model **out, nnp_error *err)
{
    file_form found = form_of_bytes(data, len);
    if (form == FORM_AUTO)
        form = found;
    if (form == FORM_ARCHIVE && found != FORM_ARCHIVE)
        return nnp_error_set(err, NNP_ERR_FORMAT, "%s: not a zip archive (a .keras file is a zip "
                             "of config.json, metadata.json and model.weights.h5)", origin);
    if (form == FORM_H5 && found != FORM_H5)
        return nnp_error_set(err, NNP_ERR_FORMAT, "%s: not an HDF5 file (no HDF5 signature; a "
                             "Keras .h5 model is an HDF5 file)", origin);
    if (form == FORM_ARCHIVE)
        return load_archive(reg, data, len, origin, out, err);
    if (form == FORM_H5)
        return load_h5(reg, data, len, origin, out, err);
    if (strlen(data) != len)
        return nnp_error_set(err, NNP_ERR_FORMAT, "%s: not a Keras model: neither JSON text (it "
                             "holds a NUL byte), a .keras archive nor an HDF5 file", origin);
    return nnp_keras_load_string(reg, data, origin, out, err);
}

nnp_status nnp_keras_load_memory(const nnp_registry *reg, const void *data, size_t len,
                                 const char *origin, nnp_model **out, nnp_error *err)
{
    *out = NULL;
    char *copy = malloc(len + 1);
    if (!copy)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    if (len)
        memcpy(copy, data, len);
    copy[len] = 0;
    nnp_status st = load_form(reg, copy, len, origin ? origin : "(memory)", FORM_AUTO, out, err);
    free(copy);
    return st;
}

nnp_status nnp_keras_load(const nnp_registry *reg, const char *path, nnp_model **out,
                          nnp_error *err)
{
    char *text;
    size_t len;
    *out = NULL;
    nnp_status st = nnp_read_file(path, &text, &len, err);
    if (st)
        return st;
    file_form form = has_ext(path, ".keras")                             ? FORM_ARCHIVE
                     : has_ext(path, ".h5") || has_ext(path, ".hdf5")    ? FORM_H5
                                                                         : FORM_AUTO;
    st = load_form(reg, text, len, path, form, out, err);
    free(text);
    return st;
}
