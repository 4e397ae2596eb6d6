/* The nnp_host table: the library's functions as plugins see them. Built
 * once (pthread_once) and read-only afterwards, so every plugin of every
 * registry shares it. */
#include "nnplug/dist.h"
#include "plugin/host_internal.h"
#include "plugin/onnx_ops.h"
#include "plugin/instance_internal.h"
#include "nnplug/config.h"
#include "nnplug/rng.h"
#include "nnplug/registry.h"
#include "nnplug/services.h"
#include "nnplug/status.h"
#include "nnplug/tensor.h"

#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static nnp_host host_table;
static pthread_once_t host_once = PTHREAD_ONCE_INIT;

/* Libraries never print; plugin diagnostics appear only when the user asks
 * for them with NNP_LOG. While a plugin's entry function runs, its
 * NNP_LOG_ERROR lines are also kept for the loader (the reason a plugin
 * refuses a host). */
static _Thread_local char *entry_log;
static _Thread_local size_t entry_log_size;

void nnpi_host_capture_errors(char *buf, size_t size)
{
    entry_log = size ? buf : NULL;
    entry_log_size = size;
    if (entry_log)
        entry_log[0] = '\0';
}

static void host_log(int level, const char *fmt, ...)
{
    const char *env = getenv("NNP_LOG");
    int keep = entry_log && level <= NNP_LOG_ERROR;
    if ((!env || !*env) && !keep)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (keep) {
        size_t at = strlen(entry_log);
        snprintf(entry_log + at, entry_log_size - at, "%s%s", at ? "; " : "", line);
    }
    /* One call, so lines from several threads do not interleave. */
    if (env && *env)
        fprintf(stderr, "nnplug: log[%d]: %s\n", level, line);
}

/* The typed setters go through the JSON setter so that the schema checks
 * (type, range, choices) live in one place. */
static nnp_status host_config_set_int(nnp_config *c, const char *key, int64_t v, nnp_error *err)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return nnp_config_set_json(c, key, buf, err);
}

static nnp_status host_config_set_float(nnp_config *c, const char *key, double v,
                                        nnp_error *err)
{
    char buf[40];
    if (!isfinite(v))
        return nnp_error_set(err, NNP_ERR_INVALID, "parameter '%s': %g is not a finite number",
                             key, v);
    snprintf(buf, sizeof buf, "%.17g", v);   /* 17 digits: the double round-trips */
    return nnp_config_set_json(c, key, buf, err);
}

static nnp_status host_config_set_bool(nnp_config *c, const char *key, int v, nnp_error *err)
{
    return nnp_config_set_json(c, key, v ? "true" : "false", err);
}

static int host_num_threads(void)
{
    return omp_get_max_threads();
}

static _Thread_local nnpi_scratch *scratch_now;

nnpi_scratch *nnpi_scratch_enter(nnpi_scratch *s)
{
    nnpi_scratch *prev = scratch_now;
    scratch_now = s;
    return prev;
}

void nnpi_scratch_leave(nnpi_scratch *previous) { scratch_now = previous; }

static int host_scratch_reserve(size_t bytes)
{
    nnpi_scratch *s = scratch_now;
    if (!s || !s->building)
        return 0;
    if (bytes > s->reserve)
        s->reserve = bytes;
    return 1;
}

static void *host_scratch(size_t bytes)
{
    nnpi_scratch *s = scratch_now;
    return s && !s->building && s->mem && bytes <= s->size ? s->mem : NULL;
}

/* The batch split of the data-parallel step running on this thread
 * (nnpi_batch_enter), and how many global reductions ran since
 * nnpi_batch_reductions was last read. */
static _Thread_local const nnp_group *batch_group;
static _Thread_local const nnp_batch_split *batch_split;
static _Thread_local unsigned long batch_global_reductions;

void nnpi_batch_enter(const nnp_group *g, const nnp_batch_split *s)
{
    batch_group = g;
    batch_split = s;
}

unsigned long nnpi_batch_reductions(void) { return batch_global_reductions; }

static int host_batch_chunks(int64_t rows, int i, int64_t *begin, int64_t *end)
{
    const nnp_batch_split *s = batch_split;
    if (!s || s->samples < 1 || rows < s->samples || rows % s->samples)
        return 0;
    int64_t m = rows / s->samples, b = 0, e = 0;
    if (i >= 0 && i < s->count)
        nnp_batch_split_chunk(s, i, &b, &e);
    if (begin)
        *begin = b * m;
    if (end)
        *end = e * m;
    return s->count;
}

static int64_t host_batch_rows(int64_t rows, int64_t *global_rows)
{
    const nnp_batch_split *s = batch_split;
    if (!s || s->samples < 1 || rows < s->samples || rows % s->samples) {
        if (global_rows)
            *global_rows = rows;
        return 0;
    }
    const int64_t m = rows / s->samples;
    if (global_rows)
        *global_rows = s->batch * m;
    return s->offset * m;
}

static nnp_status host_reduce_begin(nnp_dtype dtype, size_t len, int global, void **red,
                                    nnp_error *err)
{
    *red = NULL;
    if (!batch_split)
        return nnp_error_set(err, NNP_ERR_INVALID, "a batch reduction outside a data-parallel "
                             "step (batch_chunks said 0)");
    nnp_reduction *r;
    nnp_status st = nnp_reduce_begin(batch_group, batch_split, dtype, len, global, &r, err);
    if (!st) {
        *red = r;
        batch_global_reductions += global != 0;
    }
    return st;
}

static void host_reduce_add(void *red, const void *partial) { nnp_reduce_add(red, partial); }

static int host_reduce_cover(void *red, int *sizes, int max)
{
    return nnp_reduce_cover(red, sizes, max);
}

static void host_reduce_add_node(void *red, int size, const void *value)
{
    nnp_reduce_add_node(red, size, value);
}

static nnp_status host_reduce_end(void *red, void *out, nnp_error *err)
{
    return nnp_reduce_end(red, out, err);
}

static void host_init(void)
{
    nnp_host *h = &host_table;
    h->struct_size = sizeof *h;
    h->abi_major = NNP_ABI_MAJOR;
    h->abi_minor = NNP_ABI_MINOR;

    h->error_set = nnp_error_set;
    h->log = host_log;

    h->tensor_alloc = nnp_tensor_alloc;
    h->tensor_free = nnp_tensor_free;
    h->aligned_alloc = nnp_aligned_alloc;
    h->aligned_free = nnp_aligned_free;
    h->shape_numel = nnp_shape_numel;

    h->config_int = nnp_config_int;
    h->config_float = nnp_config_float;
    h->config_bool = nnp_config_bool;
    h->config_string = nnp_config_string;
    h->config_ints = nnp_config_ints;
    h->config_initializer = nnp_config_initializer;
    h->config_regularizer = nnp_config_regularizer;
    h->config_constraint = nnp_config_constraint;
    h->config_name = nnp_config_name;
    h->config_seed = nnp_config_seed;
    h->config_is_null = nnp_config_is_null;
    h->seed_mix = nnp_seed_mix;
    h->layer_to_onnx = nnpi_layer_to_onnx;
    h->layer_onnx_load_weights = nnpi_layer_onnx_load_weights;
    h->config_set_json = nnp_config_set_json;
    h->config_set_int = host_config_set_int;
    h->config_set_float = host_config_set_float;
    h->config_set_bool = host_config_set_bool;

    h->initializer_fill = nnp_initializer_fill;
    h->regularizer_loss = nnp_regularizer_loss;
    h->regularizer_grad_add = nnp_regularizer_grad_add;
    h->constraint_apply = nnp_constraint_apply;

    h->num_threads = host_num_threads;

    h->layer_create = nnpi_layer_create_nested;
    h->layer_destroy = nnp_layer_free;
    h->layer_kind = nnpi_layer_kind_name;
    h->layer_build = nnp_layer_build;
    h->layer_forward = nnp_layer_forward;
    h->layer_backward = nnp_layer_backward;
    h->layer_n_weights = nnp_layer_n_weights;
    h->layer_weight = nnp_layer_weight;
    h->layer_regularization_loss = nnp_layer_regularization_loss;
    h->layer_apply_constraints = nnp_layer_apply_constraints;
    h->layer_weights_changed = nnp_layer_weights_changed;
    h->scratch_reserve = host_scratch_reserve;
    h->scratch = host_scratch;
    h->batch_chunks = host_batch_chunks;
    h->batch_rows = host_batch_rows;
    h->reduce_begin = host_reduce_begin;
    h->reduce_add = host_reduce_add;
    h->reduce_end = host_reduce_end;
    h->reduce_cover = host_reduce_cover;
    h->reduce_add_node = host_reduce_add_node;

    nnpi_host_onnx_fill(h);
}

const nnp_onnx_node_ext *nnpi_kind_onnx_node_ext(const nnp_kind *k)
{
    const nnp_onnx_node_ext *x =
        k && k->extension ? (const nnp_onnx_node_ext *)k->extension(NNP_EXT_ONNX_NODE) : NULL;
    return x && x->struct_size >= offsetof(nnp_onnx_node_ext, fold_transpose) +
                                      sizeof x->fold_transpose
               ? x
               : NULL;
}

const nnp_host *nnp_host_services(void)
{
    pthread_once(&host_once, host_init);
    return &host_table;
}
