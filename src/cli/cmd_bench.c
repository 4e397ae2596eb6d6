/* nnplug bench: times one layer (through the plugin ABI, exactly as a model
 * would call it) or a whole model, and reports the median, min and max of
 * timed repetitions after warm-up runs.
 *
 * Layer mode reports effective bandwidth over the compulsory traffic of a
 * per-element layer (Sin, Sout = input and output bytes):
 *   fwd-infer  Sin + Sout       read x, write y                 (BN: 2S)
 *   fwd-train  2 Sin + Sout     statistics pass, then normalize (BN: 3S)
 *   bwd        3 Sin + 2 Sout   reduce over (x, dy), then read
 *                               (x, dy) again and write dx      (BN: 5S)
 * The counts ignore write-allocate traffic, as STREAM does, so that the
 * figures compare directly with a STREAM triad rate.
 *
 * Model mode reports samples/s of a forward pass, or of a training step
 * (forward + backward, no optimizer) with --direction bwd. */
#include "cli/cli.h"
#include "nnplug/onnx.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char bench_usage[] =
    "usage: nnplug bench (MODEL | --layer KIND --shape D0,D1,... [--config JSON])\n"
    "                    [--direction fwd-train|fwd-infer|bwd] [--threads N]\n"
    "                    [--reps N] [--warmup N] [--seed N] [--json]\n"
    "Times a layer kind on one input of the given shape, through the plugin\n"
    "ABI, or a MODEL (.onnx, Keras .keras, .h5 or .json) on seeded random inputs.\n"
    "  --direction  fwd-infer (default), fwd-train, or bwd (layer: the training\n"
    "               backward after one forward; model: forward + backward)\n"
    "  --threads N  OpenMP threads (default: all cores)\n"
    "  --reps N     timed runs (default 20) after --warmup N runs (default 3)\n"
    "  --shape      layer: the input shape; MODEL: the shape of its only input\n"
    "               (default: its declared shape, with an unknown batch of 32)\n"
    "  --json       one JSON object: median_ms, min_ms, max_ms, gbps, threads,\n"
    "               shape, direction, ...\n"
    "Layer bandwidth counts compulsory traffic: fwd-infer 2S, fwd-train 3S,\n"
    "bwd 5S for an input and output of S bytes each.\n";

typedef enum { DIR_FWD_INFER, DIR_FWD_TRAIN, DIR_BWD } bench_dir;
static const char *const dir_names[] = {"fwd-infer", "fwd-train", "bwd"};

#define DEFAULT_REPS 20
#define DEFAULT_WARMUP 3
#define DEFAULT_BATCH 32

typedef struct bench_opts {
    const char *model;
    const char *layer;
    const char *config;
    nnp_shape shape;
    int have_shape;
    bench_dir dir;
    int threads;          /* 0: all cores */
    int reps, warmup;
    uint64_t seed;
    int json;
} bench_opts;

typedef struct bench_stats {
    double median_ms, min_ms, max_ms;
} bench_stats;

/* ------------------------------------------------------------------ */
/* option parsing                                                      */
/* ------------------------------------------------------------------ */

/* Whole-string integer in [lo, hi]; 0 on success. */
static int parse_int(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* "32,64,56,56", also "[32,64,56,56]": every dim >= 1 (an empty tensor has
 * no time worth measuring and no bandwidth). */
static int parse_shape(const char *text, nnp_shape *s)
{
    char buf[256];
    size_t n = strlen(text);
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, text, n + 1);
    char *p = buf;
    if (*p == '[') {
        if (buf[n - 1] != ']')
            return -1;
        buf[n - 1] = '\0';
        p++;
    }
    memset(s, 0, sizeof *s);
    for (char *tok = p;; ) {
        char *comma = strchr(tok, ',');
        if (comma)
            *comma = '\0';
        long long v;
        if (s->rank == NNP_MAX_RANK || parse_int(tok, 1, INT64_MAX / 2, &v))
            return -1;
        s->dims[s->rank++] = v;
        if (!comma)
            break;
        tok = comma + 1;
    }
    return 0;
}

/* One "--option VALUE" (a is known to take a value). Returns -1 when it is
 * fine, else the exit code. */
static int parse_valued(const char *a, const char *val, bench_opts *o)
{
    long long v;
    if (strcmp(a, "--layer") == 0) {
        o->layer = val;
    } else if (strcmp(a, "--config") == 0) {
        o->config = val;
    } else if (strcmp(a, "--shape") == 0) {
        if (parse_shape(val, &o->shape)) {
            cli_error("bench: bad --shape '%s' (want D0,D1,... with 1 to %d dims, "
                      "each >= 1)", val, NNP_MAX_RANK);
            return CLI_EXIT_USAGE;
        }
        o->have_shape = 1;
    } else if (strcmp(a, "--direction") == 0) {
        int d = -1;
        for (int k = 0; k < 3; k++)
            if (strcmp(val, dir_names[k]) == 0)
                d = k;
        if (d < 0) {
            cli_error("bench: bad --direction '%s' (fwd-train, fwd-infer or bwd)", val);
            return CLI_EXIT_USAGE;
        }
        o->dir = (bench_dir)d;
    } else if (strcmp(a, "--threads") == 0) {
        if (cli_parse_threads("bench", val, &o->threads))
            return CLI_EXIT_USAGE;
    } else if (strcmp(a, "--reps") == 0) {
        if (parse_int(val, 1, 1000000, &v)) {
            cli_error("bench: bad --reps '%s' (an integer from 1 to 1000000)", val);
            return CLI_EXIT_USAGE;
        }
        o->reps = (int)v;
    } else if (strcmp(a, "--warmup") == 0) {
        if (parse_int(val, 0, 1000000, &v)) {
            cli_error("bench: bad --warmup '%s' (an integer from 0 to 1000000)", val);
            return CLI_EXIT_USAGE;
        }
        o->warmup = (int)v;
    } else {   /* --seed */
        if (parse_int(val, 0, INT64_MAX, &v)) {
            cli_error("bench: bad --seed '%s' (a non-negative integer)", val);
            return CLI_EXIT_USAGE;
        }
        o->seed = (uint64_t)v;
    }
    return -1;
}

/* The options together: a MODEL or a --layer with its --shape. Returns -1
 * when they are consistent, else the exit code. */
static int check_args(const bench_opts *o)
{
    if (o->model && o->layer) {
        cli_error("bench: give a MODEL or --layer KIND, not both");
        return CLI_EXIT_USAGE;
    }
    if (!o->model && !o->layer) {
        cli_error("bench: nothing to time: give a MODEL or --layer KIND --shape D0,D1,...");
        return CLI_EXIT_USAGE;
    }
    if (o->layer && !o->have_shape) {
        cli_error("bench: --layer needs --shape D0,D1,...");
        return CLI_EXIT_USAGE;
    }
    if (o->model && o->config) {
        cli_error("bench: --config applies to --layer only");
        return CLI_EXIT_USAGE;
    }
    if (o->model && !cli_has_ext(o->model, ".onnx") && !cli_is_keras_file(o->model)) {
        cli_error("bench: MODEL '%s' must be an .onnx or a Keras .keras, .h5 or .json file",
                  o->model);
        return CLI_EXIT_USAGE;
    }
    return -1;
}

/* Returns -1 when parsing went through, else the exit code (help: 0). */
static int parse_args(int argc, char **argv, bench_opts *o)
{
    static const char *const with_value[] = {"--layer", "--shape", "--config", "--direction",
                                             "--threads", "--reps", "--warmup", "--seed"};
    memset(o, 0, sizeof *o);
    o->reps = DEFAULT_REPS;
    o->warmup = DEFAULT_WARMUP;
    o->seed = 42;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(bench_usage, stdout);
            return CLI_EXIT_OK;
        }
        if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (a[0] == '-' && a[1] == '-') {
            int known = 0;
            for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
                known |= strcmp(a, with_value[k]) == 0;
            if (!known) {
                cli_error("bench: unknown option '%s' (see nnplug bench --help)", a);
                return CLI_EXIT_USAGE;
            }
            if (i + 1 >= argc) {
                cli_error("bench: %s needs a value", a);
                return CLI_EXIT_USAGE;
            }
            int rc = parse_valued(a, argv[++i], o);
            if (rc >= 0)
                return rc;
            continue;
        }
        if (a[0] == '-' && a[1] != '\0') {
            cli_error("bench: unknown option '%s' (see nnplug bench --help)", a);
            return CLI_EXIT_USAGE;
        }
        if (o->model) {
            cli_error("bench: more than one MODEL ('%s' and '%s')", o->model, a);
            return CLI_EXIT_USAGE;
        }
        o->model = a;
    }
    return check_args(o);
}

/* ------------------------------------------------------------------ */
/* timing                                                              */
/* ------------------------------------------------------------------ */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One run of the thing being timed. */
typedef nnp_status (*run_fn)(void *ctx, nnp_error *err);

/* warmup untimed runs, then reps timed ones. The warm-up pays for first
 * touches of the output pages, OpenMP thread start-up and cold caches,
 * none of which a steady-state user sees. */
static nnp_status time_runs(run_fn run, void *ctx, int warmup, int reps, bench_stats *st,
                            nnp_error *err)
{
    double *t = malloc(sizeof *t * (size_t)reps);
    if (!t)
        return nnp_error_set(err, NNP_ERR_NOMEM, "bench: out of memory");
    nnp_status s = NNP_OK;
    for (int i = 0; i < warmup && !s; i++)
        s = run(ctx, err);
    for (int i = 0; i < reps && !s; i++) {
        double t0 = now_ms();
        s = run(ctx, err);
        t[i] = now_ms() - t0;
    }
    if (!s) {
        qsort(t, (size_t)reps, sizeof *t, cmp_double);
        st->min_ms = t[0];
        st->max_ms = t[reps - 1];
        st->median_ms = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
    }
    free(t);
    return s;
}

/* Seeded standard-normal data, element i of stream `seed`: the same bytes
 * for any thread count and any run. */
static void fill_random(nnp_tensor *t, uint64_t seed)
{
    float *p = t->data;
    int64_t n = nnp_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)nnp_rng_normal(seed, (uint64_t)i);
}

static nnp_status alloc_random(nnp_tensor *t, const nnp_shape *shape, uint64_t seed,
                               nnp_error *err)
{
    nnp_status s = nnp_tensor_alloc(t, NNP_F32, shape, err);
    if (!s)
        fill_random(t, seed);
    return s;
}

/* ------------------------------------------------------------------ */
/* output                                                              */
/* ------------------------------------------------------------------ */

static json_t *shape_json(const nnp_shape *s)
{
    json_t *a = json_array();
    for (int i = 0; i < s->rank; i++)
        json_array_append_new(a, json_integer(s->dims[i]));
    return a;
}

static nnp_status print_json(json_t *o, nnp_error *err)
{
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!text)
        return nnp_error_set(err, NNP_ERR_NOMEM, "bench: out of memory");
    printf("%s\n", text);
    free(text);
    return NNP_OK;
}

/* The fields every bench line has (DESIGN.md section 6). */
static json_t *common_json(const bench_opts *o, const nnp_shape *shape, const bench_stats *st,
                           double gbps, int threads)
{
    json_t *j = json_object();
    json_object_set_new(j, "median_ms", json_real(st->median_ms));
    json_object_set_new(j, "min_ms", json_real(st->min_ms));
    json_object_set_new(j, "max_ms", json_real(st->max_ms));
    json_object_set_new(j, "gbps", json_real(gbps));
    json_object_set_new(j, "threads", json_integer(threads));
    json_object_set_new(j, "shape", shape_json(shape));
    json_object_set_new(j, "direction", json_string(dir_names[o->dir]));
    json_object_set_new(j, "reps", json_integer(o->reps));
    json_object_set_new(j, "warmup", json_integer(o->warmup));
    return j;
}

/* ------------------------------------------------------------------ */
/* layer mode                                                          */
/* ------------------------------------------------------------------ */

typedef struct layer_ctx {
    nnp_layer *layer;
    nnp_tensor x, y, dy, dx;
} layer_ctx;

static nnp_status run_layer_infer(void *c, nnp_error *err)
{
    layer_ctx *l = c;
    const nnp_tensor *in[1] = {&l->x};
    return nnp_layer_forward(l->layer, in, 1, &l->y, NNP_MODE_INFER, err);
}

static nnp_status run_layer_train(void *c, nnp_error *err)
{
    layer_ctx *l = c;
    const nnp_tensor *in[1] = {&l->x};
    return nnp_layer_forward(l->layer, in, 1, &l->y, NNP_MODE_TRAIN, err);
}

/* Weight gradients accumulate across runs; that does not change the work
 * done, so they are not zeroed between runs. */
static nnp_status run_layer_bwd(void *c, nnp_error *err)
{
    layer_ctx *l = c;
    const nnp_tensor *in[1] = {&l->x};
    nnp_tensor *gin[1] = {&l->dx};
    return nnp_layer_backward(l->layer, in, 1, &l->y, &l->dy, gin, NNP_MODE_TRAIN, err);
}

/* Times c (set up by bench_layer) and prints the result. */
static nnp_status layer_report(const bench_opts *o, layer_ctx *c, nnp_error *err)
{
    bench_stats st;
    nnp_set_num_threads(o->threads);
    int threads = nnp_get_num_threads();
    run_fn run = o->dir == DIR_FWD_INFER ? run_layer_infer
                 : o->dir == DIR_FWD_TRAIN ? run_layer_train : run_layer_bwd;
    nnp_status s = NNP_OK;
    /* The backward reads the statistics of a training forward of the same
     * input, as in a training step; that forward is not what is timed. */
    if (o->dir == DIR_BWD)
        s = run_layer_train(c, err);
    if (!s)
        s = time_runs(run, c, o->warmup, o->reps, &st, err);
    if (s)
        return s;

    double sin = (double)c->x.nbytes, sout = (double)c->y.nbytes;
    double traffic = o->dir == DIR_FWD_INFER   ? sin + sout
                     : o->dir == DIR_FWD_TRAIN ? 2 * sin + sout
                                               : 3 * sin + 2 * sout;
    double gbps = traffic / (st.median_ms * 1e-3) / 1e9;
    if (o->json) {
        json_t *j = common_json(o, &o->shape, &st, gbps, threads);
        json_object_set_new(j, "layer", json_string(o->layer));
        json_object_set_new(j, "config", o->config ? json_string(o->config) : json_null());
        json_object_set_new(j, "bytes", json_real(traffic));
        return print_json(j, err);
    }
    char shape_buf[200];
    nnp_shape_str(&o->shape, shape_buf, sizeof shape_buf);
    printf("%s %s %s, %d thread%s, %d reps after %d warm-up\n", o->layer, shape_buf,
           dir_names[o->dir], threads, threads == 1 ? "" : "s", o->reps, o->warmup);
    /* the parameters matter to the kernels timed (BatchNormalization's
     * default axis is the last one: channels-last) */
    printf("  parameters: %s\n", o->config ? o->config : "the kind's defaults");
    printf("  median %.4f ms  min %.4f ms  max %.4f ms\n", st.median_ms, st.min_ms,
           st.max_ms);
    printf("  %.2f GB/s effective (compulsory traffic %.2f MB: %s)\n", gbps, traffic / 1e6,
           o->dir == DIR_FWD_INFER   ? "read x, write y"
           : o->dir == DIR_FWD_TRAIN ? "read x twice, write y"
                                     : "read x and dy twice, write dx");
    return NNP_OK;
}

static int bench_layer(const bench_opts *o)
{
    nnp_error err = {0};
    nnp_registry *reg = NULL;
    layer_ctx c = {0};
    nnp_shape out_shape;
    nnp_status s = cli_load_registry(&reg, &err);
    if (s)
        return cli_fail(&err);
    s = nnp_layer_new(reg, o->layer, o->config, &c.layer, &err);
    if (!s) {
        const nnp_kind *k = nnp_layer_kind_of(c.layer);
        if (k->n_inputs_min > 1)
            s = nnp_error_set(&err, NNP_ERR_UNSUPPORTED,
                              "bench: layer kind '%s' takes %d inputs; --layer feeds one",
                              k->name, k->n_inputs_min);
    }
    /* the input first: a --shape over the memory budget is refused before
     * the layer builds weights for it */
    if (!s && alloc_random(&c.x, &o->shape, o->seed, &err))
        s = nnp_error_prefix(&err, "bench: the --shape input");
    /* kinds size their engines' parallel work at build (Conv2D's oneDNN
       primitives run as many threads as they were made for) */
    nnp_set_num_threads(o->threads);
    if (!s)
        s = nnp_layer_build(c.layer, 1, &o->shape, &out_shape, &err);
    if (!s)
        s = nnp_tensor_alloc(&c.y, NNP_F32, &out_shape, &err);
    if (!s && o->dir == DIR_BWD) {
        s = alloc_random(&c.dy, &out_shape, nnp_seed_mix(o->seed, "dy"), &err);
        if (!s)
            s = nnp_tensor_alloc(&c.dx, NNP_F32, &o->shape, &err);
    }
    if (!s)
        s = layer_report(o, &c, &err);
    int rc = s ? cli_fail(&err) : CLI_EXIT_OK;
    nnp_tensor_free(&c.x);
    nnp_tensor_free(&c.y);
    nnp_tensor_free(&c.dy);
    nnp_tensor_free(&c.dx);
    nnp_layer_free(c.layer);
    nnp_registry_free(reg);
    return rc;
}

/* ------------------------------------------------------------------ */
/* model mode                                                          */
/* ------------------------------------------------------------------ */

typedef struct model_ctx {
    nnp_model *m;
    int n_in, n_out;
    nnp_tensor *in;
    const nnp_tensor **in_ptrs;
    nnp_tensor *gout;           /* NULL data for weight outputs */
    const nnp_tensor **gout_ptrs;
    nnp_mode mode;
} model_ctx;

static nnp_status run_model_fwd(void *c, nnp_error *err)
{
    model_ctx *m = c;
    return nnp_model_forward(m->m, m->in_ptrs, m->n_in, m->mode, err);
}

/* One training step without the optimizer: what --direction bwd times. */
static nnp_status run_model_step(void *c, nnp_error *err)
{
    model_ctx *m = c;
    nnp_status s = nnp_model_forward(m->m, m->in_ptrs, m->n_in, NNP_MODE_TRAIN, err);
    return s ? s : nnp_model_backward_overwrite(m->m, m->gout_ptrs, m->n_out, err);
}

/* Declared shape of a value with unknown dims (-1) taken as the batch. */
static int64_t value_bytes(const nnp_model *m, int value, int64_t batch)
{
    const nnp_shape *s = nnp_model_value_shape(m, value);
    int64_t n = 1;
    for (int i = 0; s && i < s->rank; i++)
        n *= s->dims[i] < 0 ? batch : s->dims[i];
    return n * (int64_t)sizeof(float);
}

/* Activation traffic of one pass: every node reads its inputs and writes
 * its output once (forward); a training step adds a backward that reads the
 * output gradient and the inputs and writes the input gradients. Weights
 * are left out: this is a floor, like the layer counts. */
static double model_traffic(const nnp_model *m, int64_t batch, bench_dir dir)
{
    double fwd = 0, bwd = 0;
    for (int k = 0; k < nnp_model_n_nodes(m); k++) {
        double in = 0, out = (double)value_bytes(m, nnp_model_node_output(m, k), batch);
        for (int i = 0; i < nnp_model_node_n_inputs(m, k); i++)
            in += (double)value_bytes(m, nnp_model_node_input(m, k, i), batch);
        fwd += in + out;
        bwd += 2 * in + out;
    }
    return dir == DIR_BWD ? fwd + bwd : fwd;
}

/* The concrete shape of input i and the batch size, from --shape or the
 * declared shape (unknown batch: DEFAULT_BATCH). */
static nnp_status input_shape(const bench_opts *o, const nnp_model *m, int i, int64_t *batch,
                              nnp_shape *out, nnp_error *err)
{
    int value = nnp_model_input_value(m, i);
    const char *name = nnp_model_value_name(m, value);
    const nnp_shape *decl = nnp_model_value_shape(m, value);
    char b1[200], b2[200];
    if (o->have_shape) {
        int ok = decl->rank == o->shape.rank;
        for (int d = 0; ok && d < decl->rank; d++)
            ok = decl->dims[d] < 0 || decl->dims[d] == o->shape.dims[d];
        if (!ok)
            return nnp_error_set(err, NNP_ERR_SHAPE,
                                 "bench: --shape %s does not fit input '%s' of shape %s",
                                 nnp_shape_str(&o->shape, b1, sizeof b1), name,
                                 nnp_shape_str(decl, b2, sizeof b2));
        *out = o->shape;
        *batch = o->shape.dims[0];
        return NNP_OK;
    }
    *out = *decl;
    for (int d = 0; d < decl->rank; d++) {
        if (decl->dims[d] >= 0)
            continue;
        if (d > 0)
            return nnp_error_set(err, NNP_ERR_SHAPE,
                                 "bench: input '%s' has shape %s with unknown dim %d; "
                                 "give --shape", name, nnp_shape_str(decl, b1, sizeof b1), d);
        out->dims[0] = *batch;
    }
    if (decl->rank > 0 && decl->dims[0] >= 0)
        *batch = decl->dims[0];
    return NNP_OK;
}

/* Allocates the inputs of c->m (seeded random data) and builds it for the
 * batch size; shape0 gets the first input's shape. */
static nnp_status model_setup(const bench_opts *o, model_ctx *c, int64_t *batch,
                              nnp_shape *shape0, nnp_error *err)
{
    c->n_in = nnp_model_n_inputs(c->m);
    c->n_out = nnp_model_n_outputs(c->m);
    if (o->have_shape && c->n_in != 1)
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "bench: --shape needs a model with one input ('%s' has %d)",
                             o->model, c->n_in);
    c->in = calloc((size_t)c->n_in + 1, sizeof *c->in);
    c->in_ptrs = calloc((size_t)c->n_in + 1, sizeof *c->in_ptrs);
    c->gout = calloc((size_t)c->n_out + 1, sizeof *c->gout);
    c->gout_ptrs = calloc((size_t)c->n_out + 1, sizeof *c->gout_ptrs);
    if (!c->in || !c->in_ptrs || !c->gout || !c->gout_ptrs)
        return nnp_error_set(err, NNP_ERR_NOMEM, "bench: out of memory");
    nnp_status s = NNP_OK;
    for (int i = 0; i < c->n_in && !s; i++) {
        nnp_shape sh;
        s = input_shape(o, c->m, i, batch, &sh, err);
        if (!s)
            s = alloc_random(&c->in[i], &sh, o->seed + (uint64_t)i, err);
        c->in_ptrs[i] = &c->in[i];
        if (i == 0)
            *shape0 = sh;
    }
    return s ? s : nnp_model_build(c->m, *batch, err);
}

/* Times c (set up by model_setup) and prints the result. */
static nnp_status model_report(const bench_opts *o, model_ctx *c, int64_t batch,
                               const nnp_shape *shape0, nnp_error *err)
{
    bench_stats st;
    nnp_set_num_threads(o->threads);
    int threads = nnp_get_num_threads();
    run_fn run = run_model_fwd;
    nnp_status s = NNP_OK;
    c->mode = o->dir == DIR_FWD_INFER ? NNP_MODE_INFER : NNP_MODE_TRAIN;
    if (o->dir == DIR_BWD) {
        /* Output gradients take the outputs' shapes, known after a forward;
         * weight outputs (ONNX running statistics) get none. */
        s = run_model_fwd(c, err);
        for (int i = 0; i < c->n_out && !s; i++) {
            const char *w;
            if (nnp_model_weight_output_layer(c->m, nnp_model_output_value(c->m, i), &w) >= 0)
                continue;
            s = alloc_random(&c->gout[i], &nnp_model_output(c->m, i)->shape,
                             nnp_seed_mix(o->seed, "grad") + (uint64_t)i, err);
            c->gout_ptrs[i] = &c->gout[i];
        }
        run = run_model_step;
    }
    if (!s)
        s = time_runs(run, c, o->warmup, o->reps, &st, err);
    if (s)
        return s;

    double samples = (double)batch / (st.median_ms * 1e-3);
    double traffic = model_traffic(c->m, batch, o->dir);
    double gbps = traffic / (st.median_ms * 1e-3) / 1e9;
    if (o->json) {
        json_t *j = common_json(o, shape0, &st, gbps, threads);
        json_object_set_new(j, "model", json_string(o->model));
        json_object_set_new(j, "batch", json_integer(batch));
        json_object_set_new(j, "samples_per_s", json_real(samples));
        json_object_set_new(j, "bytes", json_real(traffic));
        return print_json(j, err);
    }
    char b[200];
    printf("%s input %s %s%s, %d thread%s, %d reps after %d warm-up\n", o->model,
           nnp_shape_str(shape0, b, sizeof b), dir_names[o->dir],
           o->dir == DIR_BWD ? " (forward + backward)" : "", threads, threads == 1 ? "" : "s",
           o->reps, o->warmup);
    printf("  median %.4f ms  min %.4f ms  max %.4f ms\n", st.median_ms, st.min_ms,
           st.max_ms);
    printf("  %.1f samples/s (batch %lld); %.2f GB/s of activation traffic\n", samples,
           (long long)batch, gbps);
    return NNP_OK;
}

static int bench_model(const bench_opts *o)
{
    nnp_error err = {0};
    nnp_registry *reg = NULL;
    model_ctx c = {0};
    nnp_shape shape0 = {0};
    int64_t batch = DEFAULT_BATCH;
    nnp_status s = cli_load_registry(&reg, &err);
    if (s)
        return cli_fail(&err);
    /* Parameters fed as graph inputs (ONNX node tests) get zeros: values do
     * not change the time of a float kernel. */
    s = cli_load_model_fed(reg, o->model, NULL, 1, &c.m, &err);
    if (!s)
        s = model_setup(o, &c, &batch, &shape0, &err);
    if (!s)
        s = model_report(o, &c, batch, &shape0, &err);
    int rc = s ? cli_fail(&err) : CLI_EXIT_OK;
    for (int i = 0; c.in && i < c.n_in; i++)
        nnp_tensor_free(&c.in[i]);
    for (int i = 0; c.gout && i < c.n_out; i++)
        nnp_tensor_free(&c.gout[i]);
    free(c.in);
    free(c.in_ptrs);
    free(c.gout);
    free(c.gout_ptrs);
    nnp_model_free(c.m);
    nnp_registry_free(reg);
    return rc;
}

int cmd_bench(int argc, char **argv)
{
    bench_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    return o.layer ? bench_layer(&o) : bench_model(&o);
}
