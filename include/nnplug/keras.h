/* Keras models: JSON (what Keras model.to_json() and tfjs model.toJSON()
 * write, Sequential and Functional ("Model"), Keras 2 and Keras 3 node
 * formats), whose weights come from the initializers, and Keras model files
 * with their weights:
 *  - .keras archives (Keras 3 model.save): a zip of config.json (the model
 *    config, read as the JSON above), metadata.json (keras_version) and
 *    model.weights.h5, where layer i's variables are the datasets
 *    layers/<class in snake_case>[_N]/vars/0, 1, ... (N numbers the layers of
 *    one class in the order of the config, from _1 for the second; a wrapper's
 *    inner layer sits under .../<param>/vars, TimeDistributed's at
 *    layers/time_distributed/layer/vars). A vars group's "name" attribute
 *    (Keras 3.10+) must name the layer it is read into.
 *  - legacy HDF5 models (tf.keras model.save("x.h5"), Keras 3's h5 writer):
 *    the root attribute model_config (the JSON), keras_version, and group
 *    model_weights with attribute layer_names; each layer's group lists its
 *    datasets in attribute weight_names, in the layer's weight order
 *    (model_weights/bn1/bn1/gamma:0, model_weights/conv2d_4/sequential_1/
 *    conv2d_4/kernel). Layers are matched by name; optimizer_weights,
 *    training_config and top_level_model_weights are ignored.
 * Weights go into the layers in Keras's order (nnp_layer_weight): Dense and
 * Conv2D kernel then bias (Dense [in, units], Conv2D [kh, kw, in, filters]
 * for either data_format), BatchNormalization gamma, beta, moving_mean,
 * moving_variance (gamma without scale, beta without center left out).
 * A missing group or dataset, a wrong count, shape or type, and a corrupted
 * zip or HDF5 file are errors naming the file, the layer and the weight;
 * nothing is half-loaded. These files need the HDF5 C library and libzip:
 * a library built without them (CMake NNP_WITH_KERAS_FILES=OFF) returns
 * NNP_ERR_UNSUPPORTED for them (nnp_keras_files_supported says which).
 * The HDF5 library crashes or loops forever on some damaged files, so an
 * HDF5 file (a legacy .h5, an archive's model.weights.h5) is read by a
 * child process (fork; it calls only HDF5 and plain C and leaves with
 * _exit) and the weights come back to this one. When the child dies, exits
 * or outlasts its time limit (10 s plus 1 s per 10 MB of the file, or
 * NNP_HDF5_TIME_LIMIT seconds from the environment), it is killed and
 * reaped and the load returns NNP_ERR_FORMAT, "FILE: the HDF5 library
 * failed on this file (it crashed: signal 11); the file is damaged" (or
 * "it did not finish within N s"). The host sees a SIGCHLD for each file
 * read; the child is always reaped (waited for by its pid) before the call
 * returns, and is killed if the host dies meanwhile. Writing .keras
 * archives stays in this process; its HDF5 calls are serialized by a lock,
 * and HDF5's own error printing is off while nnplug calls it. */
#ifndef NNPLUG_KERAS_H
#define NNPLUG_KERAS_H
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Model metadata key holding the keras_version of the file a model was
 * loaded from ("2.15.0", "3.3.3", "tfjs-layers 4.22.0"). Kinds may default
 * parameters by it (NNP_EXT_KERAS_DEFAULTS in plugin.h). */
#define NNP_KERAS_META_VERSION "keras_version"

/* Loads a model file: a .keras archive or an .h5 / .hdf5 model (by
 * extension; the file must then be a zip / HDF5 file), else by its first
 * bytes (zip, HDF5 signature), else Keras JSON. Unknown class names or
 * config keys are errors naming the layer. Caller frees with nnp_model_free. */
NNP_API nnp_status nnp_keras_load(const nnp_registry *reg, const char *path, nnp_model **out,
                                  nnp_error *err);
/* Same from len bytes in memory (by their first bytes: a .keras archive, an
 * HDF5 model or JSON); origin names them in errors. data stays the caller's. */
NNP_API nnp_status nnp_keras_load_memory(const nnp_registry *reg, const void *data, size_t len,
                                         const char *origin, nnp_model **out, nnp_error *err);
NNP_API nnp_status nnp_keras_load_string(const nnp_registry *reg, const char *json,
                                         const char *origin, nnp_model **out, nnp_error *err);
/* The model as Keras JSON (Sequential when it is a chain, else Functional);
 * malloc'ed. Weight outputs (ONNX running statistics) have no Keras form
 * and are left out. */
NNP_API char *nnp_keras_to_json(const nnp_model *m);
/* Writes nnp_keras_to_json atomically. */
NNP_API nnp_status nnp_keras_save(const nnp_model *m, const char *path, nnp_error *err);
/* Writes a Keras 3 .keras archive atomically (a temporary file beside path,
 * then rename; on failure no file is left and an old one is untouched):
 * config.json is nnp_keras_to_json, metadata.json holds keras_version and
 * date_saved, model.weights.h5 every layer's weights as float32 datasets at
 * layers/<class_snake>[_N]/vars/<i>, each vars group with the layer's name
 * as its "name" attribute. */
NNP_API nnp_status nnp_keras_save_archive(const nnp_model *m, const char *path, nnp_error *err);
/* 1 when this library reads and writes .keras / .h5 files, else 0. */
NNP_API int nnp_keras_files_supported(void);

#ifdef __cplusplus
}
#endif
#endif
