/* Keras model files (.keras archives, legacy .h5), private to interchange:
 * the HDF5 calls (keras_h5.c), the process that makes them when a file is
 * read (keras_h5_child.c) and the weights of a model in Keras's layouts
 * (keras_weights.c). Only built with NNP_HAVE_KERAS_FILES. */
#ifndef NNP_KERAS_FILE_INTERNAL_H
#define NNP_KERAS_FILE_INTERNAL_H
#include "nnplug/keras.h"

#include <hdf5.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- HDF5 (keras_h5.c) -------------------------------------------------- */

/* Every HDF5 call of this process runs between enter and leave: one thread
 * at a time (the serial HDF5 library is not thread-safe) and with HDF5's
 * error printing off; leave clears HDF5's error stack and restores the
 * caller's printing. The reader process is forked inside enter, so no
 * thread is inside HDF5 when it starts. */
void nnpi_h5_enter(void);
void nnpi_h5_leave(void);

/* How many HDF5 identifiers (files, groups, types, spaces, datasets,
 * attributes, property lists) are open: the same before and after any
 * nnplug call, which closes what it opens (test_keras_file checks). */
long long nnpi_h5_open_ids(void);

/* HDF5's own reason for the last failure (the innermost entry of its error
 * stack; "" when there is none) into buf; clears the stack. */
void nnpi_h5_reason(char *buf, size_t size);
/* Sets err to the message plus HDF5's own reason, when there is one. */
nnp_status nnpi_h5_error(nnp_error *err, nnp_status code, const char *fmt, ...) NNP_PRINTF(3, 4);

/* Opens len bytes of an HDF5 file held in memory, read-only and in place:
 * the bytes must stay unchanged while the file is open, and one file is
 * open at a time (the reader process's). Every object still open is closed
 * with the file. Negative on failure. */
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

/* ---- the HDF5 reader process (keras_h5_child.c) -------------------------- */

/* The HDF5 library itself crashes (SIGSEGV) or never returns on some
 * damaged files, so a file is read by a child process (fork) that opens it
 * and answers the requests below over a socket; the weights' values come
 * straight into the model's tensors. The child has a time limit for all its
 * answers together (nnpi_h5r_time_limit) and is killed past it. Once it has
 * died, exited or been killed, every request fails and nnpi_h5r_end reports
 * the file as damaged. Saving stays in this process: it writes our own
 * data. */
typedef struct nnpi_h5r nnpi_h5r;
/* An object open in the child (its HDF5 identifier there). */
typedef int64_t nnpi_h5obj;
/* The file's root group. */
#define NNPI_H5R_ROOT ((nnpi_h5obj)0)

/* Seconds the child may take for a file of len bytes: 10 plus 1 per 10 MB,
 * or NNP_HDF5_TIME_LIMIT (seconds, > 0) when set. */
double nnpi_h5r_time_limit(size_t len);
/* Starts the child for the len bytes at data (which it reads in its copy of
 * this process's memory: they must stay unchanged until nnpi_h5r_end);
 * origin names the file in errors. NNP_ERR_IO when no process can start. */
nnp_status nnpi_h5r_start(const void *data, size_t len, const char *origin, nnpi_h5r **out,
                          nnp_error *err);
/* Ends the child (asks it to exit; kills it if it does not) and reaps it;
 * frees r (NULL: returns st). Returns st, or NNP_ERR_FORMAT with err set to
 * "ORIGIN: the HDF5 library failed on this file (it crashed: signal N); the
 * file is damaged" (or "it exited with status N", "it did not finish within
 * N s") when the child failed at any point. */
nnp_status nnpi_h5r_end(nnpi_h5r *r, nnp_status st, nnp_error *err);
/* Like nnpi_h5_error, with HDF5's reason for the last request r refused. */
nnp_status nnpi_h5r_error(const nnpi_h5r *r, nnp_error *err, nnp_status code, const char *fmt,
                          ...) NNP_PRINTF(4, 5);

/* The requests, as the functions of keras_h5.c above. open_file, open_group
 * and nlinks keep HDF5's reason for a refusal in r (nnpi_h5r_error). */
nnp_status nnpi_h5r_open_file(nnpi_h5r *r);
nnp_status nnpi_h5r_attr_strings(nnpi_h5r *r, nnpi_h5obj obj, const char *name, nnpi_strv *v,
                                 bool *found, nnp_error *err);
/* A string attribute holding one string; *out NULL (not an error) when absent. */
nnp_status nnpi_h5r_attr_string(nnpi_h5r *r, nnpi_h5obj obj, const char *name, char **out,
                                nnp_error *err);
bool nnpi_h5r_exists(nnpi_h5r *r, nnpi_h5obj loc, const char *path);
nnp_status nnpi_h5r_open_group(nnpi_h5r *r, nnpi_h5obj loc, const char *path, nnpi_h5obj *g);
/* How many links group g holds. */
nnp_status nnpi_h5r_nlinks(nnpi_h5r *r, nnpi_h5obj g, uint64_t *n);
void nnpi_h5r_close(nnpi_h5r *r, nnpi_h5obj obj);
/* As nnpi_h5_read_tensor, into t's own storage. */
nnp_status nnpi_h5r_read_tensor(nnpi_h5r *r, nnpi_h5obj loc, const char *path, nnp_tensor *t,
                                nnp_error *err);

/* ---- weights (keras_weights.c) ------------------------------------------ */

/* Loads the weights of m from a .keras archive's model.weights.h5 (read by
 * r); origin names the archive in errors. */
nnp_status nnpi_keras_load_vars(nnp_model *m, nnpi_h5r *r, const char *origin, nnp_error *err);
/* Loads the weights of m from a legacy HDF5 model file's model_weights. */
nnp_status nnpi_keras_load_h5_weights(nnp_model *m, nnpi_h5r *r, const char *origin,
                                      nnp_error *err);
/* Writes the weights of m into f in the .keras layout. */
nnp_status nnpi_keras_save_vars(const nnp_model *m, hid_t f, const char *origin,
                                nnp_error *err);

#endif
