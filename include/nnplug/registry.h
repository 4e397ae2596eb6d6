/* Plugin loader and registry of layer kinds. Thread-safe: loads and lookups
 * may come from several threads.
 *
 * Plugins are found only where asked: an explicit path, a directory, or the
 * directories of NNP_PLUGIN_PATH (':'-separated) plus the installed plugin
 * directory. Never the current directory implicitly. */
#ifndef NNPLUG_REGISTRY_H
#define NNPLUG_REGISTRY_H
#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nnp_registry nnp_registry;

NNP_API nnp_status nnp_registry_new(nnp_registry **out, nnp_error *err);
/* Unloads every plugin. Layers made from its kinds must be gone first. */
NNP_API void nnp_registry_free(nnp_registry *reg);

/* Loads one plugin file. Errors name the file and say why: missing file,
 * not a shared object, no entry symbol, entry returned NULL, ABI major
 * mismatch, malformed table, kind already registered. Nothing is registered
 * from a plugin that fails. */
NNP_API nnp_status nnp_registry_load(nnp_registry *reg, const char *path, nnp_error *err);
/* Loads every *.so in dir, in name order. A plugin that fails is recorded
 * (see nnp_registry_failure) and skipped; the call fails only when the
 * directory cannot be read. */
NNP_API nnp_status nnp_registry_load_dir(nnp_registry *reg, const char *dir, nnp_error *err);
/* NNP_PLUGIN_PATH directories, then the installed plugin directory (skipped
 * when NNP_NO_DEFAULT_PLUGINS is set): LIBDIR/nnplug/plugins beside the
 * libnnplug that is running when it exists (so a relocated install finds its
 * own plugins), else nnp_default_plugin_dir(). Missing directories are
 * skipped. */
NNP_API nnp_status nnp_registry_load_default(nnp_registry *reg, nnp_error *err);
/* Registers a plugin table linked into the program (origin: a label). */
NNP_API nnp_status nnp_registry_add(nnp_registry *reg, const nnp_plugin *plugin,
                                    const char *origin, nnp_error *err);

NNP_API int nnp_registry_n_kinds(const nnp_registry *reg);
NNP_API const nnp_kind *nnp_registry_kind_at(const nnp_registry *reg, int i);
/* File the kind came from. */
NNP_API const char *nnp_registry_kind_origin(const nnp_registry *reg, int i);
NNP_API const nnp_kind *nnp_registry_find(const nnp_registry *reg, const char *name);
/* Kind serving an ONNX node (domain "" = "ai.onnx"), or NULL. */
NNP_API const nnp_kind *nnp_registry_find_onnx(const nnp_registry *reg, const char *domain,
                                               const char *op_type, int opset);
/* Comma-separated kind names (for error messages); malloc'ed. */
NNP_API char *nnp_registry_kind_names(const nnp_registry *reg);

NNP_API int nnp_registry_n_failures(const nnp_registry *reg);
NNP_API const char *nnp_registry_failure(const nnp_registry *reg, int i);

/* JSON array of kinds with their parameter schemas; malloc'ed. */
NNP_API char *nnp_registry_schema_json(const nnp_registry *reg);
/* A parameter type as the schema spells it: "int", "float", ..., "layer";
 * NULL for a value outside nnp_param_type. */
NNP_API const char *nnp_param_type_name(nnp_param_type t);

/* The host services table nnplug hands to plugins. */
NNP_API const nnp_host *nnp_host_services(void);
/* Installed plugin directory (compiled in). */
NNP_API const char *nnp_default_plugin_dir(void);

#ifdef __cplusplus
}
#endif
#endif
