/* Plugin loader and registry of layer kinds (registry.h).
 *
 * A load opens the file, checks every table the plugin hands over, and only
 * then, under the write lock, registers all of its kinds at once: a plugin
 * that fails leaves the registry as it was. Kinds are host-owned copies of
 * the plugin's tables, padded with zeros past the plugin's struct_size, so a
 * plugin built against an older minor version reads as one whose newer
 * fields are absent. */
#include "nnplug/config.h"
#include "nnplug/registry.h"
#include "nnplug/status.h"
#include "plugin/host_internal.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef NNP_DEFAULT_PLUGIN_DIR
#define NNP_DEFAULT_PLUGIN_DIR "/usr/local/lib/nnplug/plugins"
#endif

/* Every table starts with struct_size, abi_major, abi_minor. */
#define TABLE_HEADER_SIZE (offsetof(nnp_plugin, abi_minor) + sizeof(uint32_t))
#define FIELD_END(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))
/* The smallest tables the host can use: everything up to the last field it
 * cannot do without. Later fields are optional (NULL when not covered). */
#define PLUGIN_MIN_SIZE FIELD_END(nnp_plugin, n_kinds)
#define KIND_MIN_SIZE FIELD_END(nnp_kind, forward)

typedef struct loaded_plugin {
    void *handle;      /* dlopen handle; NULL for nnp_registry_add */
    char *origin;      /* resolved file path, or the caller's label */
    nnp_plugin table;  /* host-owned copy; kinds still points into the plugin */
} loaded_plugin;

typedef struct reg_kind {
    nnp_kind kind;     /* host-owned copy, full size, absent fields zero */
    const loaded_plugin *plugin;
} reg_kind;

struct nnp_registry {
    /* Guards everything below. Entries are only ever appended and each is a
     * separate allocation, so pointers handed out stay valid until free. */
    pthread_rwlock_t lock;
    loaded_plugin **plugins;
    int n_plugins, cap_plugins;
    reg_kind **kinds;
    int n_kinds, cap_kinds;
    char **failures;
    int n_failures, cap_failures;
};

/* Lookups are logically const but must take the lock. */
static void rdlock(const nnp_registry *reg)
{
    pthread_rwlock_rdlock(&((nnp_registry *)reg)->lock);
}

static void unlock(const nnp_registry *reg)
{
    pthread_rwlock_unlock(&((nnp_registry *)reg)->lock);
}

/* Returns arr with room for `need` entries of `size` bytes (arr itself when
 * it has room), updating *cap; NULL when out of memory, arr untouched. */
static void *grow(void *arr, int *cap, int need, size_t size)
{
    if (need <= *cap)
        return arr;
    int ncap = *cap ? *cap : 8;
    while (ncap < need)
        ncap *= 2;
    void *n = realloc(arr, (size_t)ncap * size);
    if (n)
        *cap = ncap;
    return n;
}

const char *nnp_default_plugin_dir(void)
{
    return NNP_DEFAULT_PLUGIN_DIR;
}

nnp_status nnp_registry_new(nnp_registry **out, nnp_error *err)
{
    nnp_registry *reg = calloc(1, sizeof *reg);
    if (!reg)
        return nnp_error_set(err, NNP_ERR_NOMEM, "cannot allocate a plugin registry");
    if (pthread_rwlock_init(&reg->lock, NULL) != 0) {
        free(reg);
        return nnp_error_set(err, NNP_ERR_INTERNAL, "cannot create the registry lock");
    }
    *out = reg;
    return NNP_OK;
}

void nnp_registry_free(nnp_registry *reg)
{
    if (!reg)
        return;
    for (int i = 0; i < reg->n_kinds; i++)
        free(reg->kinds[i]);
    /* Unload in reverse order of loading. */
    for (int i = reg->n_plugins - 1; i >= 0; i--) {
        if (reg->plugins[i]->handle)
            dlclose(reg->plugins[i]->handle);
        free(reg->plugins[i]->origin);
        free(reg->plugins[i]);
    }
    for (int i = 0; i < reg->n_failures; i++)
        free(reg->failures[i]);
    free(reg->kinds);
    free(reg->plugins);
    free(reg->failures);
    pthread_rwlock_destroy(&reg->lock);
    free(reg);
}

/* ------------------------------------------------------------------ */
/* Validation                                                          */
/* ------------------------------------------------------------------ */

/* Copies the part of a plugin table its struct_size covers into a zeroed
 * host table of dst_size bytes. */
static void copy_table(void *dst, size_t dst_size, const void *src, size_t src_size)
{
    memset(dst, 0, dst_size);
    memcpy(dst, src, src_size < dst_size ? src_size : dst_size);
}

static bool is_kind_name(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
        return false;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
              (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

/* Keras argument names are snake_case; configs convert camelCase keys to
 * snake_case before matching, so any other spelling could never be set. */
static bool is_param_name(const char *s)
{
    if (!(*s >= 'a' && *s <= 'z'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

/* Keys every layer config accepts (config.h); a parameter may not shadow them. */
static bool is_reserved_key(const char *s)
{
    static const char *const reserved[] = {"name", "trainable", "dtype", "batch_input_shape",
                                           "input_shape", "seed"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strcmp(s, reserved[i]) == 0)
            return true;
    return false;
}

static bool choices_well_formed(const char *choices)
{
    /* Non-empty entries: no leading, trailing or doubled '|'. */
    if (!*choices || *choices == '|' || choices[strlen(choices) - 1] == '|')
        return false;
    return strstr(choices, "||") == NULL;
}

static nnp_status check_param(const char *file, const nnp_kind *k, int i, nnp_error *err)
{
    const nnp_param_def *p = &k->params[i];
    const char *type = nnp_param_type_name(p->type);
    if (!p->name || !is_param_name(p->name))
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "%s: kind '%s': parameter %d: name '%s' is not snake_case "
                             "([a-z][a-z0-9_]*)", file, k->name, i, p->name ? p->name : "(null)");
    if (is_reserved_key(p->name))
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "%s: kind '%s': parameter '%s' shadows a key every layer has",
                             file, k->name, p->name);
    for (int j = 0; j < i; j++)
        if (k->params[j].name && strcmp(k->params[j].name, p->name) == 0)
            return nnp_error_set(err, NNP_ERR_INVALID,
                                 "%s: kind '%s': parameter '%s' is declared twice",
                                 file, k->name, p->name);
    if (!type)
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "%s: kind '%s': parameter '%s' has unknown type %d",
                             file, k->name, p->name, (int)p->type);

    /* A range bounds a number, or each entry of an ints list. */
    bool numeric = p->type == NNP_PARAM_INT || p->type == NNP_PARAM_FLOAT ||
                   p->type == NNP_PARAM_INTS;
    uint32_t range = NNP_PARAM_HAS_MIN | NNP_PARAM_HAS_MAX;
    if ((p->flags & range) && !numeric)
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "%s: kind '%s': parameter '%s': a range is only allowed on int, "
                             "float and ints parameters, not %s", file, k->name, p->name, type);
    /* Bounds are finite: no flag means no bound, and JSON has no infinity. */
    if (((p->flags & NNP_PARAM_HAS_MIN) && !isfinite(p->min)) ||
        ((p->flags & NNP_PARAM_HAS_MAX) && !isfinite(p->max)) ||
        ((p->flags & range) == range && p->min > p->max))
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "%s: kind '%s': parameter '%s': range [%g, %g] is empty or not "
                             "finite", file, k->name, p->name, p->min, p->max);
    if (p->choices && (p->type != NNP_PARAM_STRING || !choices_well_formed(p->choices)))
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "%s: kind '%s': parameter '%s': choices \"%s\" must be "
                             "'|'-separated non-empty names on a string parameter",
                             file, k->name, p->name, p->choices);

    if (!p->default_json)
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "%s: kind '%s': parameter '%s' has no default (use \"null\")",
                             file, k->name, p->name);
    json_error_t jerr;
    json_t *v = json_loads(p->default_json, JSON_DECODE_ANY, &jerr);
    if (!v)
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "%s: kind '%s': parameter '%s': default '%s' is not valid JSON (%s)",
                             file, k->name, p->name, p->default_json, jerr.text);
    /* Whether it fits the type, range and choices is the config parser's
     * call (check_kind makes a config of the defaults). */
    json_decref(v);
    return NNP_OK;
}

/* Checks the header of a table (`what`: "plugin table", "kind 2 table")
 * against the host's ABI major and the smallest size the host can use. */
static nnp_status check_header(const char *file, const char *what, size_t struct_size,
                               uint32_t abi_major, size_t min_size, nnp_error *err)
{
    if (struct_size < TABLE_HEADER_SIZE)
        return nnp_error_set(err, NNP_ERR_ABI,
                             "%s: %s too small (struct_size %zu, need at least %zu)",
                             file, what, struct_size, min_size);
    if (abi_major != NNP_ABI_MAJOR)
        return nnp_error_set(err, NNP_ERR_ABI,
                             "%s: %s built for plugin ABI major %u, this host has ABI major %d",
                             file, what, (unsigned)abi_major, NNP_ABI_MAJOR);
    if (struct_size < min_size)
        return nnp_error_set(err, NNP_ERR_ABI,
                             "%s: %s too small (struct_size %zu, need at least %zu)",
                             file, what, struct_size, min_size);
    return NNP_OK;
}

/* Validates one kind (already copied to host size) and normalizes the
 * optional strings so readers need no NULL checks. */
static nnp_status check_kind(const char *file, nnp_kind *k, nnp_error *err)
{
    if (!k->name || !is_kind_name(k->name))
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "%s: kind name '%s' is not an identifier ([A-Za-z][A-Za-z0-9_]*)",
                             file, k->name ? k->name : "(null)");
    const char *missing = !k->create ? "create" : !k->destroy ? "destroy"
                        : !k->build ? "build" : !k->forward ? "forward" : NULL;
    if (missing)
        return nnp_error_set(err, NNP_ERR_INVALID, "%s: kind '%s' has no %s function",
                             file, k->name, missing);
    if (k->n_params < 0 || (k->n_params > 0 && !k->params))
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "%s: kind '%s': %d parameters but no parameter table",
                             file, k->name, k->n_params);
    if (k->n_inputs_min < 0 || k->n_inputs_max < 1 || k->n_inputs_max < k->n_inputs_min)
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "%s: kind '%s': input count range [%d, %d] is invalid "
                             "(need 0 <= min <= max, max >= 1)",
                             file, k->name, k->n_inputs_min, k->n_inputs_max);
    if (k->onnx.op_type) {
        if (!k->onnx.op_type[0] || k->onnx.opset_min < 1 ||
            k->onnx.opset_max < k->onnx.opset_min)
            return nnp_error_set(err, NNP_ERR_INVALID,
                                 "%s: kind '%s': ONNX op '%s' needs a name and an opset range "
                                 "1 <= min <= max (got %d..%d)", file, k->name,
                                 k->onnx.op_type, k->onnx.opset_min, k->onnx.opset_max);
        if (!k->onnx.domain)
            k->onnx.domain = "";
    }
    if (!k->doc)
        k->doc = "";
    for (int i = 0; i < k->n_params; i++) {
        nnp_status st = check_param(file, k, i, err);
        if (st)
            return st;
    }
    if (k->flags & NNP_KIND_WRAPPER) {
        bool found = false;
        for (int i = 0; i < k->n_params; i++)
            found |= strcmp(k->params[i].name, "layer") == 0 &&
                     k->params[i].type == NNP_PARAM_LAYER;
        if (!found)
            return nnp_error_set(err, NNP_ERR_INVALID,
                                 "%s: kind '%s' is a wrapper but has no layer-typed "
                                 "parameter 'layer'", file, k->name);
    }
    /* The defaults must make a valid config, exactly as layers will make
     * it: each default fits its type, range and choices, spec names
     * resolve. One parser decides, so loading and configuring agree. */
    nnp_config *cfg;
    if (nnp_config_new(k, &cfg, err) != NNP_OK)
        return nnp_error_prefix(err, "%s: kind '%s'", file, k->name);
    nnp_config_free(cfg);
    return NNP_OK;
}

/* ------------------------------------------------------------------ */
/* Registration                                                        */
/* ------------------------------------------------------------------ */

static void free_staged(loaded_plugin *lp, reg_kind **kinds, int n)
{
    for (int i = 0; i < n; i++)
        free(kinds[i]);
    free(kinds);
    if (lp)
        free(lp->origin);
    free(lp);
}

static const reg_kind *find_locked(const nnp_registry *reg, const char *name)
{
    for (int i = 0; i < reg->n_kinds; i++)
        if (strcmp(reg->kinds[i]->kind.name, name) == 0)
            return reg->kinds[i];
    return NULL;
}

/* A plugin's staged registration: host copies of its table and kinds,
 * checked and not yet visible in the registry. */
typedef struct staging {
    loaded_plugin *lp;
    reg_kind **kinds;
    int n;
} staging;

/* Kind i of the plugin table: checked, copied (padded to this host's
 * layout) and appended to sg; its name unique within the plugin. */
static nnp_status stage_kind(const char *file, staging *sg, int i, nnp_error *err)
{
    const nnp_kind *src = sg->lp->table.kinds[i];
    char what[32];
    if (!src)
        return nnp_error_set(err, NNP_ERR_INVALID, "%s: kind %d of the plugin table is NULL",
                             file, i);
    snprintf(what, sizeof what, "kind %d table", i);
    nnp_status st = check_header(file, what, src->struct_size, src->abi_major, KIND_MIN_SIZE, err);
    if (st)
        return st;
    reg_kind *rk = calloc(1, sizeof *rk);
    if (!rk)
        return nnp_error_set(err, NNP_ERR_NOMEM, "%s: out of memory", file);
    sg->kinds[sg->n++] = rk;
    copy_table(&rk->kind, sizeof rk->kind, src, src->struct_size);
    rk->kind.struct_size = sizeof rk->kind;
    rk->plugin = sg->lp;
    st = check_kind(file, &rk->kind, err);
    if (st)
        return st;
    for (int j = 0; j < i; j++)
        if (strcmp(sg->kinds[j]->kind.name, rk->kind.name) == 0)
            return nnp_error_set(err, NNP_ERR_DUPLICATE,
                                 "%s: kind '%s' is declared twice in the same plugin", file,
                                 rk->kind.name);
    return NNP_OK;
}

/* Checks the plugin table and every kind into sg. On failure sg keeps
 * what was made, for free_staged. */
static nnp_status stage_plugin(void *handle, const char *file, const char *origin,
                               const nnp_plugin *plugin, staging *sg, nnp_error *err)
{
    nnp_status st = check_header(file, "plugin table", plugin->struct_size, plugin->abi_major,
                                 PLUGIN_MIN_SIZE, err);
    if (st)
        return st;
    loaded_plugin *lp = sg->lp = calloc(1, sizeof *lp);
    if (!lp || !(lp->origin = strdup(origin)))
        return nnp_error_set(err, NNP_ERR_NOMEM, "%s: out of memory", file);
    lp->handle = handle;
    copy_table(&lp->table, sizeof lp->table, plugin, plugin->struct_size);
    lp->table.struct_size = sizeof lp->table;
    if (lp->table.n_kinds < 0 || (lp->table.n_kinds > 0 && !lp->table.kinds))
        return nnp_error_set(err, NNP_ERR_INVALID, "%s: plugin table lists %d kinds but no array",
                             file, lp->table.n_kinds);
    if (lp->table.n_kinds > 0 &&
        !(sg->kinds = calloc((size_t)lp->table.n_kinds, sizeof *sg->kinds)))
        return nnp_error_set(err, NNP_ERR_NOMEM, "%s: out of memory", file);
    for (int i = 0; i < lp->table.n_kinds; i++) {
        st = stage_kind(file, sg, i, err);
        if (st)
            return st;
    }
    return NNP_OK;
}

/* Under the write lock, registers the staged plugin and all its kinds at
 * once, or nothing (a kind already registered, out of memory). *already is
 * set, and nothing done, when the same library is registered. */
static nnp_status commit_plugin(nnp_registry *reg, void *handle, const char *file,
                                const staging *sg, int *already, nnp_error *err)
{
    *already = 0;
    pthread_rwlock_wrlock(&reg->lock);
    for (int i = 0; handle && i < reg->n_plugins; i++)
        if (reg->plugins[i]->handle == handle) {
            pthread_rwlock_unlock(&reg->lock);
            *already = 1;
            return NNP_OK;
        }
    for (int i = 0; i < sg->n; i++) {
        const reg_kind *old = find_locked(reg, sg->kinds[i]->kind.name);
        if (old) {
            nnp_status st = nnp_error_set(err, NNP_ERR_DUPLICATE,
                                          "%s: kind '%s' is already registered by %s", file,
                                          sg->kinds[i]->kind.name, old->plugin->origin);
            pthread_rwlock_unlock(&reg->lock);
            return st;
        }
    }
    /* Grow both arrays first so that a failed allocation registers nothing. */
    loaded_plugin **plugins = grow(reg->plugins, &reg->cap_plugins, reg->n_plugins + 1,
                                   sizeof *plugins);
    if (plugins)
        reg->plugins = plugins;
    reg_kind **kinds = grow(reg->kinds, &reg->cap_kinds, reg->n_kinds + sg->n, sizeof *kinds);
    if (kinds)
        reg->kinds = kinds;
    if (!plugins || !kinds) {
        pthread_rwlock_unlock(&reg->lock);
        return nnp_error_set(err, NNP_ERR_NOMEM, "%s: out of memory", file);
    }
    reg->plugins[reg->n_plugins++] = sg->lp;
    for (int i = 0; i < sg->n; i++)
        reg->kinds[reg->n_kinds++] = sg->kinds[i];
    pthread_rwlock_unlock(&reg->lock);
    return NNP_OK;
}

/* Checks a plugin table and registers its kinds. `file` names it in errors;
 * `origin` is what the registry records. Takes ownership of `handle`: it is
 * closed on failure, and also when the same library is already registered
 * (dlopen hands out one handle per library, so loading twice is a no-op). */
static nnp_status register_plugin(nnp_registry *reg, void *handle, const char *file,
                                  const char *origin, const nnp_plugin *plugin, nnp_error *err)
{
    staging sg = {0};
    int already = 0;
    nnp_status st = stage_plugin(handle, file, origin, plugin, &sg, err);
    if (st == NNP_OK)
        st = commit_plugin(reg, handle, file, &sg, &already, err);
    if (st == NNP_OK && !already) {
        free(sg.kinds);   /* the registry owns the plugin and its kinds now */
        return NNP_OK;
    }
    free_staged(sg.lp, sg.kinds, sg.n);
    if (handle)
        dlclose(handle);
    return st;
}

nnp_status nnp_registry_add(nnp_registry *reg, const nnp_plugin *plugin, const char *origin,
                            nnp_error *err)
{
    if (!reg || !plugin)
        return nnp_error_set(err, NNP_ERR_INVALID, "nnp_registry_add: no registry or plugin");
    if (!origin)
        origin = "(linked in)";
    return register_plugin(reg, NULL, origin, origin, plugin, err);
}

nnp_status nnp_registry_load(nnp_registry *reg, const char *path, nnp_error *err)
{
    struct stat sb;
    if (!reg || !path || !*path)
        return nnp_error_set(err, NNP_ERR_INVALID, "nnp_registry_load: no registry or path");
    if (stat(path, &sb) != 0)
        return nnp_error_set(err, NNP_ERR_IO, "%s: %s", path,
                             errno == ENOENT || errno == ENOTDIR ? "no such file"
                                                                 : strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return nnp_error_set(err, NNP_ERR_IO, "%s: is a directory, not a plugin file", path);

    /* dlopen searches LD_LIBRARY_PATH and the system directories for a name
     * without '/'; an absolute path makes it open exactly this file. */
    char *real = realpath(path, NULL);
    if (!real)
        return nnp_error_set(err, NNP_ERR_IO, "%s: %s", path, strerror(errno));
    void *handle = dlopen(real, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        /* dlerror() repeats the path before its reason; keep only the reason. */
        const char *why = dlerror();
        size_t n = strlen(real);
        if (!why)
            why = "unknown dlopen error";
        else if (strncmp(why, real, n) == 0 && strncmp(why + n, ": ", 2) == 0)
            why += n + 2;
        nnp_status st = nnp_error_set(err, NNP_ERR_FORMAT,
                                      "%s: not a loadable shared object (%s)", path, why);
        free(real);
        return st;
    }

    nnp_plugin_entry_fn entry;
    void *sym = dlsym(handle, NNP_PLUGIN_ENTRY_SYMBOL);
    nnp_status st;
    if (!sym) {
        st = nnp_error_set(err, NNP_ERR_NOT_FOUND,
                           "%s: no entry symbol %s (not an nnplug plugin)", path,
                           NNP_PLUGIN_ENTRY_SYMBOL);
        dlclose(handle);
    } else {
        /* POSIX guarantees data and function pointers convert; memcpy says so
         * without a cast ISO C frowns on. */
        memcpy(&entry, &sym, sizeof entry);
        char why[512];
        const nnp_host *host = nnp_host_services();
        nnpi_host_capture_errors(why, sizeof why);
        const nnp_plugin *plugin = entry(host);
        nnpi_host_capture_errors(NULL, 0);
        if (!plugin) {
            st = nnp_error_set(err, NNP_ERR_INVALID,
                               "%s: %s returned NULL (the plugin refused this host, ABI "
                               "%u.%u)%s%s", path, NNP_PLUGIN_ENTRY_SYMBOL,
                               (unsigned)host->abi_major, (unsigned)host->abi_minor,
                               why[0] ? ": " : "", why);
            dlclose(handle);
        } else {
            st = register_plugin(reg, handle, path, real, plugin, err);
        }
    }
    free(real);
    return st;
}

/* ------------------------------------------------------------------ */
/* Directories                                                         */
/* ------------------------------------------------------------------ */

static void record_failure(nnp_registry *reg, const char *msg)
{
    char *copy = strdup(msg);
    if (!copy)
        return;   /* losing a diagnostic beats failing the whole scan */
    pthread_rwlock_wrlock(&reg->lock);
    char **f = grow(reg->failures, &reg->cap_failures, reg->n_failures + 1, sizeof *f);
    if (f) {
        reg->failures = f;
        f[reg->n_failures++] = copy;
    } else {
        free(copy);
    }
    pthread_rwlock_unlock(&reg->lock);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_so_suffix(const char *name)
{
    size_t n = strlen(name);
    return n > 3 && strcmp(name + n - 3, ".so") == 0;
}

nnp_status nnp_registry_load_dir(nnp_registry *reg, const char *dir, nnp_error *err)
{
    if (!reg || !dir || !*dir)
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "nnp_registry_load_dir: no registry or directory");
    DIR *d = opendir(dir);
    if (!d)
        return nnp_error_set(err, NNP_ERR_IO, "%s: cannot read plugin directory: %s", dir,
                             strerror(errno));
    char **names = NULL;
    int n = 0, cap = 0;
    nnp_status st = NNP_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!has_so_suffix(e->d_name))
            continue;
        char **more = grow(names, &cap, n + 1, sizeof *names);
        char *copy = more ? strdup(e->d_name) : NULL;
        if (more)
            names = more;
        if (!copy) {
            st = nnp_error_set(err, NNP_ERR_NOMEM, "%s: out of memory listing plugins", dir);
            break;
        }
        names[n++] = copy;
    }
    closedir(d);
    if (!st) {
        qsort(names, (size_t)n, sizeof *names, cmp_names);
        size_t dlen = strlen(dir);
        bool slash = dir[dlen - 1] == '/';
        for (int i = 0; i < n; i++) {
            char *path = malloc(dlen + strlen(names[i]) + 2);
            nnp_error e1;
            if (!path) {
                st = nnp_error_set(err, NNP_ERR_NOMEM, "%s: out of memory", dir);
                break;
            }
            sprintf(path, slash ? "%s%s" : "%s/%s", dir, names[i]);
            if (nnp_registry_load(reg, path, &e1) != NNP_OK)
                record_failure(reg, e1.msg);
            free(path);
        }
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return st;
}

/* Scans dir if it exists; a directory that is missing is simply skipped,
 * one that cannot be read becomes a recorded failure. */
static void load_dir_if_present(nnp_registry *reg, const char *dir)
{
    struct stat sb;
    nnp_error e;
    if (stat(dir, &sb) != 0 && (errno == ENOENT || errno == ENOTDIR))
        return;
    if (nnp_registry_load_dir(reg, dir, &e) != NNP_OK)
        record_failure(reg, e.msg);
}

/* The plugin directory of the installation this library belongs to. An
 * installation moved elsewhere (cmake --install --prefix) keeps its plugins
 * in LIBDIR/nnplug/plugins beside libnnplug itself; that directory wins over
 * the configured one, which may hold another installation's plugins. */
static void installed_plugin_dir(char *buf, size_t size)
{
    static const char anchor = 0;   /* any address inside this library */
    Dl_info info;
    if (dladdr(&anchor, &info) && info.dli_fname && info.dli_fname[0] == '/') {
        const char *base = strrchr(info.dli_fname, '/') + 1;
        /* Only when this code is libnnplug.so; statically linked into a
         * program, "beside the library" means nothing. */
        if (strncmp(base, "libnnplug.so", 12) == 0) {
            struct stat sb;
            snprintf(buf, size, "%.*snnplug/plugins", (int)(base - info.dli_fname),
                     info.dli_fname);
            if (stat(buf, &sb) == 0 && S_ISDIR(sb.st_mode))
                return;
        }
    }
    snprintf(buf, size, "%s", nnp_default_plugin_dir());
}

nnp_status nnp_registry_load_default(nnp_registry *reg, nnp_error *err)
{
    if (!reg)
        return nnp_error_set(err, NNP_ERR_INVALID, "nnp_registry_load_default: no registry");
    const char *path = getenv("NNP_PLUGIN_PATH");
    if (path && *path) {
        char *list = strdup(path);
        if (!list)
            return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory reading NNP_PLUGIN_PATH");
        char *save = NULL;
        for (char *dir = strtok_r(list, ":", &save); dir; dir = strtok_r(NULL, ":", &save))
            load_dir_if_present(reg, dir);
        free(list);
    }
    const char *no_default = getenv("NNP_NO_DEFAULT_PLUGINS");
    if (!no_default || !*no_default) {
        char dir[4096];
        installed_plugin_dir(dir, sizeof dir);
        load_dir_if_present(reg, dir);
    }
    return NNP_OK;
}

/* ------------------------------------------------------------------ */
/* Lookups                                                             */
/* ------------------------------------------------------------------ */

int nnp_registry_n_kinds(const nnp_registry *reg)
{
    rdlock(reg);
    int n = reg->n_kinds;
    unlock(reg);
    return n;
}

const nnp_kind *nnp_registry_kind_at(const nnp_registry *reg, int i)
{
    const nnp_kind *k = NULL;
    rdlock(reg);
    if (i >= 0 && i < reg->n_kinds)
        k = &reg->kinds[i]->kind;
    unlock(reg);
    return k;
}

const char *nnp_registry_kind_origin(const nnp_registry *reg, int i)
{
    const char *o = NULL;
    rdlock(reg);
    if (i >= 0 && i < reg->n_kinds)
        o = reg->kinds[i]->plugin->origin;
    unlock(reg);
    return o;
}

const nnp_kind *nnp_registry_find(const nnp_registry *reg, const char *name)
{
    if (!name)
        return NULL;
    rdlock(reg);
    const reg_kind *rk = find_locked(reg, name);
    unlock(reg);
    return rk ? &rk->kind : NULL;
}

static const char *onnx_domain(const char *d)
{
    return !d || strcmp(d, "ai.onnx") == 0 ? "" : d;
}

static bool onnx_op_matches(const nnp_onnx_op *op, const char *domain, const char *op_type,
                            int opset)
{
    return op->op_type && strcmp(op->op_type, op_type) == 0 &&
           strcmp(onnx_domain(op->domain), domain) == 0 && opset >= op->opset_min &&
           opset <= op->opset_max;
}

const nnp_kind *nnp_registry_find_onnx(const nnp_registry *reg, const char *domain,
                                       const char *op_type, int opset)
{
    const nnp_kind *found = NULL;
    if (!op_type)
        return NULL;
    domain = onnx_domain(domain);
    rdlock(reg);
    for (int i = 0; i < reg->n_kinds && !found; i++) {
        const nnp_kind *k = &reg->kinds[i]->kind;
        if (onnx_op_matches(&k->onnx, domain, op_type, opset))
            found = k;
        /* further operators a kind reads (NNP_EXT_ONNX_OPS) */
        const nnp_onnx_op *more = k->extension ? k->extension(NNP_EXT_ONNX_OPS) : NULL;
        for (; !found && more && more->op_type; more++)
            if (onnx_op_matches(more, domain, op_type, opset))
                found = k;
    }
    unlock(reg);
    return found;
}

char *nnp_registry_kind_names(const nnp_registry *reg)
{
    rdlock(reg);
    size_t len = 1;
    for (int i = 0; i < reg->n_kinds; i++)
        len += strlen(reg->kinds[i]->kind.name) + 2;
    char *s = malloc(len);
    if (s) {
        size_t at = 0;
        for (int i = 0; i < reg->n_kinds; i++)
            at += (size_t)sprintf(s + at, i ? ", %s" : "%s", reg->kinds[i]->kind.name);
        s[at] = '\0';
    }
    unlock(reg);
    return s;
}

int nnp_registry_n_failures(const nnp_registry *reg)
{
    rdlock(reg);
    int n = reg->n_failures;
    unlock(reg);
    return n;
}

const char *nnp_registry_failure(const nnp_registry *reg, int i)
{
    const char *f = NULL;
    rdlock(reg);
    if (i >= 0 && i < reg->n_failures)
        f = reg->failures[i];
    unlock(reg);
    return f;
}
