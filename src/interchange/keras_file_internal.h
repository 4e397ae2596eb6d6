/* Keras model files (.keras archives, legacy .h5), private to interchange:
 * the HDF5 calls (keras_h5.c) and the weights of a model in Keras's layouts
 * (keras_weights.c). Only built with NNP_HAVE_KERAS_FILES. */
#ifndef NNP_KERAS_FILE_INTERNAL_H
#define NNP_KERAS_FILE_INTERNAL_H
#include "nnplug/keras.h"

#include <hdf5.h>
#include <stdbool.h>

/* ---- HDF5 (keras_h5.c) -------------------------------------------------- */

/* Every HDF5 call runs between enter and leave: one thread at a time (the
 * serial HDF5 library is not thread-safe) and with HDF5's error printing
 * off; leave clears HDF5's error stack and restores the caller's printing. */
void nnpi_h5_enter(void);
void nnpi_h5_leave(void);

/* How many HDF5 identifiers (files, groups, types, spaces, datasets,
 * attributes, property lists) are open: the same before and after any
 * nnplug call, which closes what it opens (test_keras_file checks). */
long long nnpi_h5_open_ids(void);

/* Sets err to the message plus HDF5's own reason (the innermost entry of
 * its error stack, when there is one). */
nnp_status nnpi_h5_error(nnp_error *err, nnp_status code, const char *fmt, ...) NNP_PRINTF(3, 4);

/* Opens len bytes of an HDF5 file held in memory (copied), read-only; every
 * object still open is closed with the file. Negative on failure. */
hid_t nnpi_h5_open_image(const void *data, size_t len);
/* A new, empty HDF5 file in memory; nnpi_h5_image gets its bytes. */
hid_t nnpi_h5_create_image(void);
/* The bytes of file f (malloc'ed into *data, *len). */
nnp_status nnpi_h5_image(hid_t f, void **data, size_t *len, nnp_error *err);

/* A list of strings (malloc'ed, each malloc'ed). */
typedef struct nnpi_strv {
    char **s;
    int n;
} nnpi_strv;
void nnpi_strv_free(nnpi_strv *v);

/* The strings of obj's attribute name: a scalar string or a 1-D array of
 * fixed- or variable-length strings; an array of any type with no element
 * (Keras 3 writes an empty list as float64) holds none. An attribute too
 * long for one HDF5 header is split by Keras into name0, name1, ...: those
 * are joined. *found is false (and v empty) when there is none of them. */
nnp_status nnpi_h5_attr_strings(hid_t obj, const char *name, nnpi_strv *v, bool *found,
                                nnp_error *err);
/* A string attribute holding one string; *out NULL (not an error) when absent. */
nnp_status nnpi_h5_attr_string(hid_t obj, const char *name, char **out, nnp_error *err);
/* Writes a scalar variable-length UTF-8 string attribute (as h5py does). */
nnp_status nnpi_h5_set_attr_string(hid_t obj, const char *name, const char *value,
                                   nnp_error *err);

/* True when loc has a link named path (each part of it existing). */
bool nnpi_h5_exists(hid_t loc, const char *path);
/* Reads dataset path (relative to loc) into t, a float32 tensor of the
 * expected shape: the dataset must be of a float type and of t's shape. The
 * message names neither file nor layer (the caller prefixes them). */
nnp_status nnpi_h5_read_tensor(hid_t loc, const char *path, nnp_tensor *t, nnp_error *err);
/* Writes t (float32) as dataset name of group g. */
nnp_status nnpi_h5_write_tensor(hid_t g, const char *name, const nnp_tensor *t, nnp_error *err);
/* Creates group path under loc, with the groups above it; negative on failure. */
hid_t nnpi_h5_create_group(hid_t loc, const char *path);

/* ---- weights (keras_weights.c) ------------------------------------------ */

/* Loads the weights of m from a .keras archive's model.weights.h5 (f);
 * origin names the archive in errors. */
nnp_status nnpi_keras_load_vars(nnp_model *m, hid_t f, const char *origin, nnp_error *err);
/* Loads the weights of m from a legacy HDF5 model file's model_weights. */
nnp_status nnpi_keras_load_h5_weights(nnp_model *m, hid_t f, const char *origin,
                                      nnp_error *err);
/* Writes the weights of m into f in the .keras layout. */
nnp_status nnpi_keras_save_vars(const nnp_model *m, hid_t f, const char *origin,
                                nnp_error *err);

#endif
