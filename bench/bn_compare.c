/* bn_compare: nnplug's BatchNormalization against oneDNN's batch
 * normalization on the same shapes, in the same process, plus a STREAM
 * triad run that says what the memory system can do right now.
 *
 * nnplug runs through the plugin ABI (nnp_layer_new / build / forward /
 * backward), exactly as a model would call it. oneDNN runs through its C API
 * in plain NCHW, NHWC and its blocked nChw16c layout (the input is
 * reordered once, outside timing); 2-D shapes in plain NC and as
 * [N, C, 1, 1] NHWC (the same bytes; see dnnl_dims_of).
 *
 * Directions:
 *   fwd-infer  normalize with given statistics (oneDNN: use_global_stats,
 *              scale and shift), compulsory traffic 2S
 *   fwd-train  batch statistics computed, then normalize: 3S
 *   bwd        training backward with scale and shift: diff data, diff
 *              scale, diff shift (the forward is not timed): 5S
 * for a tensor of S bytes. Like STREAM, the counts leave out write-allocate
 * traffic, so "% of triad" compares like with like.
 *
 * A third column, the floor, times the simplest streaming passes with each
 * direction's compulsory traffic (see floor_run): how close a kernel is to
 * what the memory allows, whatever the peers do.
 *
 * Both libraries share one OpenMP runtime (libgomp; Debian's oneDNN is
 * built with DNNL_CPU_RUNTIME=OMP, printed at start-up), so
 * omp_set_num_threads() sets the thread count of both. oneDNN primitives
 * are created after setting it: oneDNN may size its work split at creation.
 *
 * Noise: the machine may be shared. Each measurement is the median of many
 * runs, and the implementations of one row are measured in short
 * alternating rounds so that a burst of foreign load hits all of them
 * alike. The triad runs at the start and at the end: a difference between
 * the two says the machine was busy with something else.
 *
 * Without oneDNN (NNP_BENCH_HAVE_DNNL undefined) only nnplug, the floor and
 * the triad are measured. */
#include <nnplug/nnplug.h>

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>

#ifdef NNP_BENCH_HAVE_DNNL
#include <dnnl.h>
#include <dnnl_debug.h>
#endif

#define MAX_THREAD_COUNTS 8
#define MAX_LAYOUTS 3
#define CHUNK 5                /* timed runs per alternating round (see measure) */
#define TARGET_MS 150.0        /* time per implementation and row, at least */
#define MAX_REPS 3000
#define EPSILON 1e-3           /* Keras's default, given to both libraries */

enum { D_INFER, D_TRAIN, D_BWD, N_DIRS };
static const char *const dir_names[N_DIRS] = {"fwd-infer", "fwd-train", "bwd"};
static const double traffic_factor[N_DIRS] = {2, 3, 5};

/* A benchmark shape. nnplug sees dims with `axis`; the peers see the
 * logical [N, C, H, W] (or [N, C]) in the memory layout `layout`, which is
 * the layout nnplug's buffer has. */
typedef struct bcase {
    const char *layout;   /* "nchw", "nhwc", "nc" */
    int rank;
    int64_t dims[4];
    int axis;
} bcase;

static const bcase cases[] = {
    {"nchw", 4, {32, 64, 56, 56}, 1},
    {"nhwc", 4, {32, 56, 56, 64}, -1},
    {"nc", 2, {256, 2048}, -1},
    {"nchw", 4, {128, 256, 14, 14}, 1},
    {"nchw", 4, {8, 16, 16, 16}, 1},
    /* 205 MB, past any last-level cache: "% of triad" is a true roofline */
    {"nchw", 4, {64, 64, 112, 112}, 1},
    {"nhwc", 4, {64, 112, 112, 64}, -1},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

static struct {
    int reps;
    int threads[MAX_THREAD_COUNTS];
    int n_threads;
    int json;
    int check;
    const char *only;     /* run only cases whose label contains this */
} opt = {15, {1, 2}, 2, 0, 1, NULL};

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bn_compare: %s: %s\n", what, msg);
    exit(1);
}

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

typedef struct stats {
    double median, min, max;
    int n;
} stats;

static stats stats_of(double *t, int n)
{
    stats s = {0, 0, 0, n};
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    s.min = t[0];
    s.max = t[n - 1];
    s.median = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    return s;
}

/* Logical [N, C, H, W] (or [N, C]) of a case; returns the rank. */
static int logical_dims(const bcase *c, int64_t *nchw)
{
    if (strcmp(c->layout, "nhwc") == 0) {
        nchw[0] = c->dims[0];
        nchw[1] = c->dims[3];
        nchw[2] = c->dims[1];
        nchw[3] = c->dims[2];
    } else {
        memcpy(nchw, c->dims, sizeof(int64_t) * (size_t)c->rank);
    }
    return c->rank;
}

static void case_label(const bcase *c, char *buf, size_t size)
{
    size_t at = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < c->rank; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s%lld", i ? "," : "",
                               (long long)c->dims[i]);
    snprintf(buf + at, size - at, "]");
}

static int64_t case_numel(const bcase *c)
{
    int64_t n = 1;
    for (int i = 0; i < c->rank; i++)
        n *= c->dims[i];
    return n;
}

/* Seeded normal data; the same bytes for any thread count. */
static void fill_random(float *p, int64_t n, uint64_t seed)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)nnp_rng_normal(seed, (uint64_t)i);
}

/* ------------------------------------------------------------------ */
/* STREAM triad                                                        */
/* ------------------------------------------------------------------ */

/* a[i] = b[i] + s*c[i] over three double arrays each several times the
 * last-level cache, best of `iters` (the STREAM rule), counting 24 bytes per
 * element as STREAM does. */
#define TRIAD_N 20000000L      /* 160 MB per array; LLC here is 32 MiB */
static double stream_triad(int threads, int iters)
{
    double *a = nnp_aligned_alloc(sizeof(double) * TRIAD_N);
    double *b = nnp_aligned_alloc(sizeof(double) * TRIAD_N);
    double *c = nnp_aligned_alloc(sizeof(double) * TRIAD_N);
    if (!a || !b || !c)
        die("triad", "out of memory");
    omp_set_num_threads(threads);
    /* first touch by the same static split the triad uses */
#pragma omp parallel for schedule(static)
    for (long i = 0; i < TRIAD_N; i++) {
        a[i] = 1.0;
        b[i] = 2.0;
        c[i] = 0.5;
    }
    const double s = 3.0;
    double best = 1e30;
    for (int it = 0; it < iters; it++) {
        double t0 = now_ms();
#pragma omp parallel for schedule(static)
        for (long i = 0; i < TRIAD_N; i++)
            a[i] = b[i] + s * c[i];
        double t = now_ms() - t0;
        if (t < best)
            best = t;
    }
    volatile double sink = a[TRIAD_N / 2];   /* keep the stores */
    (void)sink;
    nnp_aligned_free(a);
    nnp_aligned_free(b);
    nnp_aligned_free(c);
    return 3.0 * sizeof(double) * TRIAD_N / (best * 1e-3) / 1e9;
}

/* ------------------------------------------------------------------ */
/* implementations under test                                          */
/* ------------------------------------------------------------------ */

typedef struct impl {
    char name[32];       /* "nnplug", "onednn" */
    char layout[16];
    char info[96];       /* implementation string where the library tells */
    void (*run)(struct impl *, int dir);
    void *ctx;
    double *samples;
    int n;
} impl;

/* nnplug through the plugin ABI */
typedef struct nnp_ctx {
    nnp_layer *layer;
    nnp_tensor x, y, dy, dx;
} nnp_ctx;

static void nnp_check(nnp_status s, const nnp_error *err)
{
    if (s)
        die("nnplug", err->msg);
}

static void nnp_run(impl *im, int dir)
{
    nnp_ctx *c = im->ctx;
    nnp_error err;
    const nnp_tensor *in[1] = {&c->x};
    nnp_tensor *gin[1] = {&c->dx};
    nnp_status s;
    if (dir == D_BWD)
        s = nnp_layer_backward(c->layer, in, 1, &c->y, &c->dy, gin, NNP_MODE_TRAIN, &err);
    else
        s = nnp_layer_forward(c->layer, in, 1, &c->y,
                              dir == D_TRAIN ? NNP_MODE_TRAIN : NNP_MODE_INFER, &err);
    nnp_check(s, &err);
}

static void nnp_setup(nnp_ctx *c, const nnp_registry *reg, const bcase *bc)
{
    nnp_error err;
    nnp_shape shape, out;
    char config[64];
    snprintf(config, sizeof config, "{\"axis\": %d, \"epsilon\": %g}", bc->axis, EPSILON);
    memset(c, 0, sizeof *c);
    nnp_check(nnp_layer_new(reg, "BatchNormalization", config, &c->layer, &err), &err);
    nnp_check(nnp_shape_make(&shape, bc->rank, bc->dims, &err), &err);
    nnp_check(nnp_layer_build(c->layer, 1, &shape, &out, &err), &err);
    nnp_check(nnp_tensor_alloc(&c->x, NNP_F32, &shape, &err), &err);
    nnp_check(nnp_tensor_alloc(&c->y, NNP_F32, &shape, &err), &err);
    nnp_check(nnp_tensor_alloc(&c->dy, NNP_F32, &shape, &err), &err);
    nnp_check(nnp_tensor_alloc(&c->dx, NNP_F32, &shape, &err), &err);
    fill_random(c->x.data, case_numel(bc), 42);
    fill_random(c->dy.data, case_numel(bc), 4242);
}

static void nnp_teardown(nnp_ctx *c)
{
    nnp_tensor_free(&c->x);
    nnp_tensor_free(&c->y);
    nnp_tensor_free(&c->dy);
    nnp_tensor_free(&c->dx);
    nnp_layer_free(c->layer);
}

/* ------------------------------------------------------------------ */
/* the streaming floor                                                 */
/* ------------------------------------------------------------------ */

/* The simplest passes with a direction's compulsory traffic and nothing
 * per channel (one scalar coefficient for the whole tensor):
 *   fwd-infer: y = x*a + b                                  (read S, write S)
 *   fwd-train: a sum over x, then y = x*a + b               (3S)
 *   bwd:       sums of dy and dy*x, then dx = dy*a + x*b + c (5S)
 * in the widest vectors the CPU has, four accumulators a sum, streaming
 * stores from 16 MiB on (as nnplug), each thread on a contiguous share. A
 * memory-bound kernel cannot beat it by much: where nnplug and oneDNN both
 * sit near it, the difference between them is the machine's, not theirs.
 * Timed in the same alternating rounds as the libraries; results unused. */
#define FLOOR_NT_MIN (1L << 22)    /* floats */

#if defined(__x86_64__)
#include <immintrin.h>
#define FLOOR_X86 1

__attribute__((target("avx512f"))) static void floor_sums512(const float *x, const float *g,
                                                             int64_t n, double *o1, double *o2)
{
    __m512 a[4], b[4];
    for (int j = 0; j < 4; j++)
        a[j] = b[j] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int j = 0; j < 4; j++) {
            const __m512 v = _mm512_loadu_ps(x + i + 16 * j);
            if (g) {
                const __m512 w = _mm512_loadu_ps(g + i + 16 * j);
                a[j] = _mm512_add_ps(a[j], w);
                b[j] = _mm512_fmadd_ps(w, v, b[j]);
            } else {
                a[j] = _mm512_add_ps(a[j], v);
            }
        }
    double s1 = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a[0], a[1]),
                                                   _mm512_add_ps(a[2], a[3])));
    double s2 = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(b[0], b[1]),
                                                   _mm512_add_ps(b[2], b[3])));
    for (; i < n; i++) {
        s1 += g ? g[i] : x[i];
        s2 += g ? g[i] * x[i] : 0.0f;
    }
    *o1 = s1;
    *o2 = s2;
}

__attribute__((target("avx512f"))) static void floor_out512(const float *x, const float *g,
                                                            float *y, int64_t n, float a,
                                                            float b, float c, int nt)
{
    const __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b), vc = _mm512_set1_ps(c);
    int64_t i = 0;
    for (; i < n && ((uintptr_t)(y + i) & 63) != 0; i++)
        y[i] = g ? g[i] * a + x[i] * b + c : x[i] * a + b;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        const __m512 r = g ? _mm512_fmadd_ps(_mm512_loadu_ps(g + i), va, _mm512_fmadd_ps(v, vb, vc))
                           : _mm512_fmadd_ps(v, va, vb);
        if (nt)
            _mm512_stream_ps(y + i, r);
        else
            _mm512_storeu_ps(y + i, r);
    }
    for (; i < n; i++)
        y[i] = g ? g[i] * a + x[i] * b + c : x[i] * a + b;
}

__attribute__((target("avx2,fma"))) static void floor_sums256(const float *x, const float *g,
                                                              int64_t n, double *o1, double *o2)
{
    __m256 a[4], b[4];
    for (int j = 0; j < 4; j++)
        a[j] = b[j] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int j = 0; j < 4; j++) {
            const __m256 v = _mm256_loadu_ps(x + i + 8 * j);
            if (g) {
                const __m256 w = _mm256_loadu_ps(g + i + 8 * j);
                a[j] = _mm256_add_ps(a[j], w);
                b[j] = _mm256_fmadd_ps(w, v, b[j]);
            } else {
                a[j] = _mm256_add_ps(a[j], v);
            }
        }
    float t1[8], t2[8];
    _mm256_storeu_ps(t1, _mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3])));
    _mm256_storeu_ps(t2, _mm256_add_ps(_mm256_add_ps(b[0], b[1]), _mm256_add_ps(b[2], b[3])));
    double s1 = 0.0, s2 = 0.0;
    for (int j = 0; j < 8; j++) {
        s1 += t1[j];
        s2 += t2[j];
    }
    for (; i < n; i++) {
        s1 += g ? g[i] : x[i];
        s2 += g ? g[i] * x[i] : 0.0f;
    }
    *o1 = s1;
    *o2 = s2;
}

__attribute__((target("avx2,fma"))) static void floor_out256(const float *x, const float *g,
                                                             float *y, int64_t n, float a,
                                                             float b, float c, int nt)
{
    const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b), vc = _mm256_set1_ps(c);
    int64_t i = 0;
    for (; i < n && ((uintptr_t)(y + i) & 31) != 0; i++)
        y[i] = g ? g[i] * a + x[i] * b + c : x[i] * a + b;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 r = g ? _mm256_fmadd_ps(_mm256_loadu_ps(g + i), va, _mm256_fmadd_ps(v, vb, vc))
                           : _mm256_fmadd_ps(v, va, vb);
        if (nt)
            _mm256_stream_ps(y + i, r);
        else
            _mm256_storeu_ps(y + i, r);
    }
    for (; i < n; i++)
        y[i] = g ? g[i] * a + x[i] * b + c : x[i] * a + b;
}
#endif

/* Without AVX2: plain loops (then it is no floor, only a reference). */
static void floor_sums(const float *x, const float *g, int64_t n, double *o1, double *o2)
{
#ifdef FLOOR_X86
    if (__builtin_cpu_supports("avx512f")) {
        floor_sums512(x, g, n, o1, o2);
        return;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        floor_sums256(x, g, n, o1, o2);
        return;
    }
#endif
    double s1 = 0.0, s2 = 0.0;
    for (int64_t i = 0; i < n; i++) {
        s1 += g ? g[i] : x[i];
        s2 += g ? (double)g[i] * x[i] : 0.0;
    }
    *o1 = s1;
    *o2 = s2;
}

static void floor_out(const float *x, const float *g, float *y, int64_t n, float a, float b,
                      float c, int nt)
{
#ifdef FLOOR_X86
    if (__builtin_cpu_supports("avx512f")) {
        floor_out512(x, g, y, n, a, b, c, nt);
        _mm_sfence();
        return;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        floor_out256(x, g, y, n, a, b, c, nt);
        _mm_sfence();
        return;
    }
#endif
    (void)nt;
    for (int64_t i = 0; i < n; i++)
        y[i] = g ? g[i] * a + x[i] * b + c : x[i] * a + b;
}

typedef struct floor_ctx {
    const float *x, *dy;
    float *y, *dx;
    int64_t n;
    double sink;
} floor_ctx;

static void floor_run(struct impl *im, int dir)
{
    floor_ctx *c = im->ctx;
    const int64_t n = c->n;
    const int nt = n >= FLOOR_NT_MIN;
    const float *g = dir == D_BWD ? c->dy : NULL;
    double t1 = 0.0, t2 = 0.0;
#pragma omp parallel reduction(+ : t1, t2)
    {
        const int64_t T = omp_get_num_threads(), id = omp_get_thread_num();
        /* shares on 64-byte boundaries of a 64-byte aligned buffer */
        const int64_t i0 = n / 16 * id / T * 16, i1 = id + 1 == T ? n : n / 16 * (id + 1) / T * 16;
        if (dir != D_INFER) {
            floor_sums(c->x + i0, g ? g + i0 : NULL, i1 - i0, &t1, &t2);
            /* the coefficients would come from the sums: wait for all */
#pragma omp barrier
        }
        if (dir == D_BWD)
            floor_out(c->x + i0, g + i0, c->dx + i0, i1 - i0, 0.5f, 0.25f, 0.125f, nt);
        else
            floor_out(c->x + i0, NULL, c->y + i0, i1 - i0, 0.5f, 0.25f, 0.0f, nt);
    }
    c->sink += t1 + t2;
}

#ifdef NNP_BENCH_HAVE_DNNL
/* ------------------------------------------------------------------ */
/* oneDNN                                                              */
/* ------------------------------------------------------------------ */

#define DNNL_CHECK(call)                                                    \
    do {                                                                    \
        dnnl_status_t st_ = (call);                                         \
        if (st_ != dnnl_success)                                            \
            die(#call, dnnl_status2str(st_));                               \
    } while (0)

static dnnl_engine_t engine;
static dnnl_stream_t stream;

typedef struct dnnl_ctx {
    const char *layout;
    dnnl_format_tag_t tag;
    dnnl_memory_desc_t md;
    dnnl_memory_t src, dst, mean, var, scale, shift, ddst, dsrc, dscale, dshift;
    dnnl_primitive_t prim[N_DIRS];
    dnnl_exec_arg_t args[N_DIRS][12];
    int nargs[N_DIRS];
} dnnl_ctx;

static const float *nnp_weight_data(const nnp_ctx *c, const char *name, int grad)
{
    const nnp_weight *w = nnp_layer_weight_by_name(c->layer, name);
    if (!w || (grad && !w->grad))
        die("nnplug", "BatchNormalization lacks an expected weight");
    return (const float *)(grad ? w->grad->data : w->value->data);
}

static const char *isa_name(dnnl_cpu_isa_t isa)
{
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
    }
}

static dnnl_memory_t mem_new(const dnnl_memory_desc_t *md, void *handle)
{
    dnnl_memory_t m;
    DNNL_CHECK(dnnl_memory_create(&m, md, engine, handle ? handle : DNNL_MEMORY_ALLOCATE));
    return m;
}

static void *mem_ptr(dnnl_memory_t m)
{
    void *p;
    DNNL_CHECK(dnnl_memory_get_data_handle(m, &p));
    return p;
}

static void reorder(dnnl_memory_t from, dnnl_memory_t to)
{
    const dnnl_memory_desc_t *fmd, *tmd;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t r;
    DNNL_CHECK(dnnl_memory_get_memory_desc(from, &fmd));
    DNNL_CHECK(dnnl_memory_get_memory_desc(to, &tmd));
    DNNL_CHECK(dnnl_reorder_primitive_desc_create(&pd, fmd, engine, tmd, engine, NULL));
    DNNL_CHECK(dnnl_primitive_create(&r, pd));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    DNNL_CHECK(dnnl_primitive_execute(r, stream, 2, args));
    DNNL_CHECK(dnnl_stream_wait(stream));
    dnnl_primitive_destroy(r);
    dnnl_primitive_desc_destroy(pd);
}

/* Memory of `tag` holding the data of the nnplug buffer `user` (whose
 * layout is user_tag), reordered once here, outside any timing. */
static dnnl_memory_t mem_from_user(const dnnl_memory_desc_t *md, const dnnl_memory_desc_t *user_md,
                                   float *user)
{
    dnnl_memory_t m = mem_new(md, NULL), u = mem_new(user_md, user);
    reorder(u, m);
    dnnl_memory_destroy(u);
    return m;
}

static dnnl_format_tag_t tag_of(const char *layout)
{
    if (strcmp(layout, "nchw") == 0)
        return dnnl_nchw;
    if (strcmp(layout, "nhwc") == 0)
        return dnnl_nhwc;
    if (strcmp(layout, "nChw16c") == 0)
        return dnnl_nChw16c;
    return dnnl_nc;
}

/* Dims and user-buffer tag oneDNN sees for a case run in `layout`. A 2-D
 * [N, C] run as "nhwc" is the 4-D [N, C, 1, 1]: the same bytes, but it
 * reaches oneDNN's JIT implementation, which 2-D "nc" does not (2.6 gives
 * that to its slow generic ncsp_bnorm). */
static int dnnl_dims_of(const bcase *bc, const char *layout, dnnl_dims_t d,
                        dnnl_format_tag_t *user_tag)
{
    int nd = logical_dims(bc, d);
    *user_tag = tag_of(bc->layout);
    if (nd == 2 && strcmp(layout, "nc") != 0) {
        d[2] = d[3] = 1;
        *user_tag = dnnl_nchw;   /* [N, C, 1, 1] in nchw: the bytes of nc */
        nd = 4;
    }
    return nd;
}

static void dnnl_setup(dnnl_ctx *c, const bcase *bc, const char *layout, nnp_ctx *src)
{
    dnnl_dims_t d = {0}; /* oneDNN reads DNNL_MAX_NDIMS dims */
    dnnl_format_tag_t user_tag;
    int nd = dnnl_dims_of(bc, layout, d, &user_tag);
    dnnl_memory_desc_t user_md, cmd;
    memset(c, 0, sizeof *c);
    c->tag = tag_of(layout);
    c->layout = layout;
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&c->md, nd, d, dnnl_f32, c->tag));
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&user_md, nd, d, dnnl_f32, user_tag));
    dnnl_dims_t cd = {d[1]};
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&cmd, 1, cd, dnnl_f32, dnnl_x));
    c->src = mem_from_user(&c->md, &user_md, src->x.data);
    c->ddst = mem_from_user(&c->md, &user_md, src->dy.data);
    c->dst = mem_new(&c->md, NULL);
    c->dsrc = mem_new(&c->md, NULL);
    c->mean = mem_new(&cmd, NULL);
    c->var = mem_new(&cmd, NULL);
    c->scale = mem_new(&cmd, NULL);
    c->shift = mem_new(&cmd, NULL);
    c->dscale = mem_new(&cmd, NULL);
    c->dshift = mem_new(&cmd, NULL);
    /* Keras's initial weights: gamma 1, beta 0, moving mean 0, variance 1 */
    float *sc = mem_ptr(c->scale), *sh = mem_ptr(c->shift), *mu = mem_ptr(c->mean),
          *va = mem_ptr(c->var);
    for (int64_t i = 0; i < d[1]; i++) {
        sc[i] = 1.0f;
        sh[i] = 0.0f;
        mu[i] = 0.0f;
        va[i] = 1.0f;
    }
}

static void set_args(dnnl_ctx *c, int dir, const int *kinds, const dnnl_memory_t *mems, int n)
{
    for (int i = 0; i < n; i++)
        c->args[dir][i] = (dnnl_exec_arg_t){kinds[i], mems[i]};
    c->nargs[dir] = n;
}

/* Creates the three primitives at the current thread count; info gets the
 * implementation oneDNN picked for the training forward. */
static void dnnl_make_prims(dnnl_ctx *c, char *info, size_t info_size)
{
    dnnl_batch_normalization_desc_t desc;
    dnnl_primitive_desc_t pd[N_DIRS];
    const unsigned ss = dnnl_use_scale | dnnl_use_shift;

    DNNL_CHECK(dnnl_batch_normalization_forward_desc_init(
        &desc, dnnl_forward_inference, &c->md, (float)EPSILON, ss | dnnl_use_global_stats));
    DNNL_CHECK(dnnl_primitive_desc_create(&pd[D_INFER], &desc, NULL, engine, NULL));
    DNNL_CHECK(dnnl_batch_normalization_forward_desc_init(&desc, dnnl_forward_training, &c->md,
                                                          (float)EPSILON, ss));
    DNNL_CHECK(dnnl_primitive_desc_create(&pd[D_TRAIN], &desc, NULL, engine, NULL));
    DNNL_CHECK(dnnl_batch_normalization_backward_desc_init(&desc, dnnl_backward, &c->md, &c->md,
                                                           (float)EPSILON, ss));
    DNNL_CHECK(dnnl_primitive_desc_create(&pd[D_BWD], &desc, NULL, engine, pd[D_TRAIN]));

    /* no fused ReLU, so no workspace; refuse silently wrong timings if a
     * future oneDNN wanted one */
    const dnnl_memory_desc_t *ws = dnnl_primitive_desc_query_md(pd[D_TRAIN],
                                                                dnnl_query_workspace_md, 0);
    if (ws && dnnl_memory_desc_get_size(ws) > 0)
        die("oneDNN", "batch normalization asks for a workspace");

    const char *impl_str = NULL;
    DNNL_CHECK(dnnl_primitive_desc_query(pd[D_TRAIN], dnnl_query_impl_info_str, 0, &impl_str));
    snprintf(info, info_size, "%s", impl_str ? impl_str : "?");

    for (int dir = 0; dir < N_DIRS; dir++) {
        DNNL_CHECK(dnnl_primitive_create(&c->prim[dir], pd[dir]));
        dnnl_primitive_desc_destroy(pd[dir]);
    }
    set_args(c, D_INFER,
             (const int[]){DNNL_ARG_SRC, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_SCALE,
                           DNNL_ARG_SHIFT, DNNL_ARG_DST},
             (const dnnl_memory_t[]){c->src, c->mean, c->var, c->scale, c->shift, c->dst}, 6);
    set_args(c, D_TRAIN,
             (const int[]){DNNL_ARG_SRC, DNNL_ARG_SCALE, DNNL_ARG_SHIFT, DNNL_ARG_DST,
                           DNNL_ARG_MEAN, DNNL_ARG_VARIANCE},
             (const dnnl_memory_t[]){c->src, c->scale, c->shift, c->dst, c->mean, c->var}, 6);
    /* oneDNN 2.6 refuses a use_shift backward without the SHIFT input
     * (invalid_arguments), although diff shift does not depend on it. */
    set_args(c, D_BWD,
             (const int[]){DNNL_ARG_SRC, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_DIFF_DST,
                           DNNL_ARG_SCALE, DNNL_ARG_SHIFT, DNNL_ARG_DIFF_SRC,
                           DNNL_ARG_DIFF_SCALE, DNNL_ARG_DIFF_SHIFT},
             (const dnnl_memory_t[]){c->src, c->mean, c->var, c->ddst, c->scale, c->shift,
                                     c->dsrc, c->dscale, c->dshift},
             9);
}

static void dnnl_free_prims(dnnl_ctx *c)
{
    for (int dir = 0; dir < N_DIRS; dir++) {
        dnnl_primitive_destroy(c->prim[dir]);
        c->prim[dir] = NULL;
    }
}

static void dnnl_teardown(dnnl_ctx *c)
{
    dnnl_free_prims(c);
    dnnl_memory_t ms[] = {c->src, c->dst, c->mean, c->var, c->scale, c->shift,
                          c->ddst, c->dsrc, c->dscale, c->dshift};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        dnnl_memory_destroy(ms[i]);
}

static void dnnl_exec(dnnl_ctx *c, int dir)
{
    DNNL_CHECK(dnnl_primitive_execute(c->prim[dir], stream, c->nargs[dir], c->args[dir]));
    DNNL_CHECK(dnnl_stream_wait(stream));
}

static void dnnl_run(impl *im, int dir)
{
    dnnl_exec(im->ctx, dir);
}

/* max |a - b| / max(1, max |b|) */
static double rel_diff(const float *a, const float *b, int64_t n)
{
    double d = 0, m = 1;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        d = e > d ? e : d;
        m = fabs((double)b[i]) > m ? fabs((double)b[i]) : m;
    }
    return d / m;
}

/* The oneDNN memory `m` (layout tag) in nnplug's layout, into buf. */
static void to_user(dnnl_memory_t m, const bcase *bc, const char *layout, float *buf)
{
    dnnl_dims_t d = {0};
    dnnl_format_tag_t user_tag;
    int nd = dnnl_dims_of(bc, layout, d, &user_tag);
    dnnl_memory_desc_t user_md;
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&user_md, nd, d, dnnl_f32, user_tag));
    dnnl_memory_t u = mem_new(&user_md, buf);
    reorder(m, u);
    dnnl_memory_destroy(u);
}

/* Runs both libraries once per direction on the same data and compares:
 * a benchmark of two different computations would be meaningless. Returns
 * the worst relative difference. */
static double check_against(nnp_ctx *n, impl *nim, dnnl_ctx *c, const bcase *bc, float *tmp)
{
    int64_t numel = case_numel(bc), C = bc->dims[bc->axis < 0 ? bc->rank - 1 : bc->axis];
    double worst = 0, e;
    /* same moving statistics on both sides */
    memcpy(mem_ptr(c->mean), nnp_weight_data(n, "moving_mean", 0), sizeof(float) * (size_t)C);
    memcpy(mem_ptr(c->var), nnp_weight_data(n, "moving_variance", 0), sizeof(float) * (size_t)C);
    nnp_run(nim, D_INFER);
    dnnl_exec(c, D_INFER);
    to_user(c->dst, bc, c->layout, tmp);
    e = rel_diff(tmp, n->y.data, numel);
    worst = e > worst ? e : worst;

    nnp_run(nim, D_TRAIN);
    dnnl_exec(c, D_TRAIN);
    to_user(c->dst, bc, c->layout, tmp);
    e = rel_diff(tmp, n->y.data, numel);
    worst = e > worst ? e : worst;

    nnp_layer_zero_grad(n->layer);
    nnp_run(nim, D_BWD);
    dnnl_exec(c, D_BWD);
    to_user(c->dsrc, bc, c->layout, tmp);
    e = rel_diff(tmp, n->dx.data, numel);
    worst = e > worst ? e : worst;
    e = rel_diff(mem_ptr(c->dscale), nnp_weight_data(n, "gamma", 1), C);
    worst = e > worst ? e : worst;
    e = rel_diff(mem_ptr(c->dshift), nnp_weight_data(n, "beta", 1), C);
    worst = e > worst ? e : worst;
    return worst;
}
#endif /* NNP_BENCH_HAVE_DNNL */

/* ------------------------------------------------------------------ */
/* measuring                                                           */
/* ------------------------------------------------------------------ */

/* Times every implementation on `dir`. The repetition count grows for
 * small shapes so that each implementation runs for TARGET_MS at least: a
 * median of 15 runs of 20 us would mostly measure the timer and the
 * scheduler. The runs go in short rounds of CHUNK that alternate between
 * the implementations, each round after one untimed run (which restores
 * the caches the previous implementation evicted): foreign load that comes
 * and goes then hits every implementation of the row alike. */
static void measure(impl *ims, int n_impl, int dir)
{
    for (int k = 0; k < n_impl; k++) {
        ims[k].run(&ims[k], dir);     /* warm-up: first touch, thread start */
        ims[k].n = 0;
    }
    /* the fastest of a few runs: one run slowed by foreign load must not
     * cut the run count */
    double probe = 1e30;
    for (int i = 0; i < 5; i++) {
        double t0 = now_ms();
        ims[0].run(&ims[0], dir);
        double t = now_ms() - t0;
        probe = t < probe ? t : probe;
    }
    int reps = opt.reps;
    if (probe > 0 && TARGET_MS / probe > reps)
        reps = TARGET_MS / probe > MAX_REPS ? MAX_REPS : (int)(TARGET_MS / probe);
    int rounds = (reps + CHUNK - 1) / CHUNK;
    for (int k = 0; k < n_impl; k++) {
        free(ims[k].samples);
        ims[k].samples = malloc(sizeof(double) * (size_t)(rounds * CHUNK));
        if (!ims[k].samples)
            die("measure", "out of memory");
    }
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < n_impl; k++) {
            impl *im = &ims[k];
            im->run(im, dir);
            for (int i = 0; i < CHUNK; i++) {
                double s = now_ms();
                im->run(im, dir);
                im->samples[im->n++] = now_ms() - s;
            }
        }
}

static void print_json_row(const bcase *bc, const impl *im, int dir, int threads, stats s,
                           double triad)
{
    int64_t d[4];
    int nd = logical_dims(bc, d);
    double bytes = traffic_factor[dir] * 4.0 * (double)case_numel(bc);
    double gbps = bytes / (s.median * 1e-3) / 1e9;
    printf("{\"tool\":\"bn_compare\",\"impl\":\"%s\",\"layout\":\"%s\",\"case_layout\":\"%s\","
           "\"shape\":[",
           im->name, im->layout, bc->layout);
    for (int i = 0; i < bc->rank; i++)
        printf("%s%lld", i ? "," : "", (long long)bc->dims[i]);
    printf("],\"logical\":[");
    for (int i = 0; i < nd; i++)
        printf("%s%lld", i ? "," : "", (long long)d[i]);
    printf("],\"direction\":\"%s\",\"threads\":%d,\"median_ms\":%.6f,\"min_ms\":%.6f,"
           "\"max_ms\":%.6f,\"runs\":%d,\"gbps\":%.4f,\"pct_triad\":%.2f,\"info\":\"%s\"}\n",
           dir_names[dir], threads, s.median, s.min, s.max, s.n, gbps, 100.0 * gbps / triad,
           im->info);
    fflush(stdout);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bn_compare [--reps N] [--threads 1,2] [--json] [--no-check] [--only TEXT]\n"
            "Times nnplug's BatchNormalization (plugin from NNP_PLUGIN_PATH, else the build\n"
            "tree) against oneDNN on fixed shapes, with a STREAM triad for reference.\n"
            "  --reps N     runs per measurement, at least (default 15; more for small shapes)\n"
            "  --threads L  comma-separated OpenMP thread counts (default 1,2)\n"
            "  --json       JSON lines instead of a table\n"
            "  --no-check   skip the nnplug-vs-oneDNN result comparison\n"
            "  --only TEXT  only shapes whose label (e.g. [32,64,56,56]) contains TEXT\n");
}

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            opt.json = 1;
        } else if (strcmp(a, "--no-check") == 0) {
            opt.check = 0;
        } else if (strcmp(a, "--reps") == 0 && i + 1 < argc) {
            opt.reps = atoi(argv[++i]);
            if (opt.reps < 1) {
                fprintf(stderr, "bn_compare: --reps must be >= 1\n");
                exit(2);
            }
        } else if (strcmp(a, "--only") == 0 && i + 1 < argc) {
            opt.only = argv[++i];
        } else if (strcmp(a, "--threads") == 0 && i + 1 < argc) {
            char *s = argv[++i], *end;
            opt.n_threads = 0;
            while (*s && opt.n_threads < MAX_THREAD_COUNTS) {
                long v = strtol(s, &end, 10);
                if (end == s || v < 1 || v > 1024 || (*end && *end != ',')) {
                    fprintf(stderr, "bn_compare: bad --threads list\n");
                    exit(2);
                }
                opt.threads[opt.n_threads++] = (int)v;
                s = *end ? end + 1 : end;
            }
            if (opt.n_threads == 0) {
                fprintf(stderr, "bn_compare: bad --threads list\n");
                exit(2);
            }
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else {
            usage(stderr);
            exit(2);
        }
    }
}

static nnp_registry *load_plugins(void)
{
    nnp_registry *reg;
    nnp_error err;
    nnp_check(nnp_registry_new(&reg, &err), &err);
    const char *path = getenv("NNP_PLUGIN_PATH");
    if (path && *path)
        nnp_check(nnp_registry_load_default(reg, &err), &err);
    else
        nnp_check(nnp_registry_load_dir(reg, NNP_BENCH_PLUGIN_DIR, &err), &err);
    if (!nnp_registry_find(reg, "BatchNormalization"))
        die("nnplug", "no plugin provides BatchNormalization (set NNP_PLUGIN_PATH)");
    return reg;
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    nnp_registry *reg = load_plugins();

#ifdef NNP_BENCH_HAVE_DNNL
    const dnnl_version_t *v = dnnl_version();
    DNNL_CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    DNNL_CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    const char *rt = v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP"
                     : v->cpu_runtime == DNNL_RUNTIME_SEQ ? "sequential"
                     : v->cpu_runtime == DNNL_RUNTIME_TBB ? "TBB" : "other";
    if (v->cpu_runtime != DNNL_RUNTIME_OMP)
        fprintf(stderr, "bn_compare: warning: oneDNN's CPU runtime is %s, not OpenMP: "
                        "its thread count is not the one set here\n", rt);
    const char *isa = isa_name(dnnl_get_effective_cpu_isa());
#endif

    /* The triad first and last: the machine may be shared, and the two
     * show how much its memory bandwidth moved during the run. */
    double triad[MAX_THREAD_COUNTS];
    for (int t = 0; t < opt.n_threads; t++)
        triad[t] = stream_triad(opt.threads[t], 10);

    if (opt.json) {
#ifdef NNP_BENCH_HAVE_DNNL
        printf("{\"tool\":\"bn_compare\",\"impl\":\"env\",\"onednn\":\"%d.%d.%d\","
               "\"onednn_runtime\":\"%s\",\"onednn_isa\":\"%s\",\"omp_procs\":%d}\n",
               v->major, v->minor, v->patch, rt, isa, omp_get_num_procs());
#else
        printf("{\"tool\":\"bn_compare\",\"impl\":\"env\",\"onednn\":null,\"omp_procs\":%d}\n",
               omp_get_num_procs());
#endif
        for (int t = 0; t < opt.n_threads; t++)
            printf("{\"tool\":\"bn_compare\",\"impl\":\"stream_triad\",\"when\":\"start\","
                   "\"threads\":%d,\"gbps\":%.4f}\n",
                   opt.threads[t], triad[t]);
    } else {
#ifdef NNP_BENCH_HAVE_DNNL
        printf("oneDNN %d.%d.%d, CPU runtime %s, ISA %s; %d processors\n", v->major, v->minor,
               v->patch, rt, isa, omp_get_num_procs());
#else
        printf("built without oneDNN: nnplug and the triad only; %d processors\n",
               omp_get_num_procs());
#endif
        for (int t = 0; t < opt.n_threads; t++)
            printf("STREAM triad, %d thread%s: %.2f GB/s\n", opt.threads[t],
                   opt.threads[t] == 1 ? "" : "s", triad[t]);
        printf("\n%-18s %-6s %-9s %3s %10s %7s %6s | %-22s", "shape", "layout", "direction",
               "thr", "nnplug ms", "GB/s", "%triad", "oneDNN best ms");
        printf(" %9s %9s %9s | %s | %9s %5s\n", "nchw/nc", "nhwc", "nChw16c", "oneDNN/nnplug",
               "floor ms", "ratio");
    }
    fflush(stdout);

    for (int ci = 0; ci < N_CASES; ci++) {
        const bcase *bc = &cases[ci];
        char label[64];
        case_label(bc, label, sizeof label);
        if (opt.only && !strstr(label, opt.only))
            continue;
        impl ims[2 + MAX_LAYOUTS];
        int n_impl = 1;
        nnp_ctx nc;
        memset(ims, 0, sizeof ims);
        nnp_setup(&nc, reg, bc);
        snprintf(ims[0].name, sizeof ims[0].name, "nnplug");
        snprintf(ims[0].layout, sizeof ims[0].layout, "%s", bc->layout);
        snprintf(ims[0].info, sizeof ims[0].info, "axis %d", bc->axis);
        ims[0].run = nnp_run;
        ims[0].ctx = &nc;
#ifdef NNP_BENCH_HAVE_DNNL
        static const char *const layouts4[] = {"nchw", "nhwc", "nChw16c"};
        static const char *const layouts2[] = {"nc", "nhwc"};   /* see dnnl_dims_of */
        const char *const *layouts = bc->rank == 4 ? layouts4 : layouts2;
        int n_layouts = bc->rank == 4 ? 3 : 2;
        dnnl_ctx dc[MAX_LAYOUTS];
        for (int l = 0; l < n_layouts; l++) {
            impl *im = &ims[n_impl++];
            dnnl_setup(&dc[l], bc, layouts[l], &nc);
            snprintf(im->name, sizeof im->name, "onednn");
            snprintf(im->layout, sizeof im->layout, "%s", layouts[l]);
            im->run = dnnl_run;
            im->ctx = &dc[l];
        }
#endif
        /* the floor last: not a peer, the "best" below skips it */
        const int fl = n_impl++;
        floor_ctx fc = {.x = nc.x.data, .dy = nc.dy.data, .y = nc.y.data, .dx = nc.dx.data,
                        .n = case_numel(bc)};
        snprintf(ims[fl].name, sizeof ims[fl].name, "floor");
        snprintf(ims[fl].layout, sizeof ims[fl].layout, "%s", bc->layout);
        snprintf(ims[fl].info, sizeof ims[fl].info, "streaming passes, no per-channel work");
        ims[fl].run = floor_run;
        ims[fl].ctx = &fc;
        for (int t = 0; t < opt.n_threads; t++) {
            omp_set_num_threads(opt.threads[t]);
#ifdef NNP_BENCH_HAVE_DNNL
            for (int l = 0; l < n_layouts; l++)
                dnnl_make_prims(&dc[l], ims[1 + l].info, sizeof ims[1 + l].info);
            if (opt.check && t == 0) {
                float *tmp = nnp_aligned_alloc(sizeof(float) * (size_t)case_numel(bc));
                if (!tmp)
                    die("check", "out of memory");
                for (int l = 0; l < n_layouts; l++) {
                    double e = check_against(&nc, &ims[0], &dc[l], bc, tmp);
                    if (e > 1e-3 || e != e)
                        fprintf(stderr, "bn_compare: WARNING: %s %s: nnplug and oneDNN differ "
                                        "(relative %.3g)\n", label, layouts[l], e);
                    if (opt.json)
                        printf("{\"tool\":\"bn_compare\",\"impl\":\"check\",\"case\":\"%s\","
                               "\"layout\":\"%s\",\"max_rel_diff\":%.3g}\n",
                               label, layouts[l], e);
                    else
                        printf("check %s vs oneDNN %s (y, dx, dgamma, dbeta): max relative "
                               "difference %.2g\n", label, layouts[l], e);
                }
                nnp_aligned_free(tmp);
            }
#endif
            for (int dir = 0; dir < N_DIRS; dir++) {
                /* the backward reads the statistics of a training forward */
                if (dir == D_BWD)
                    for (int k = 0; k < n_impl; k++)
                        ims[k].run(&ims[k], D_TRAIN);
                measure(ims, n_impl, dir);
                stats s[2 + MAX_LAYOUTS];
                for (int k = 0; k < n_impl; k++)
                    s[k] = stats_of(ims[k].samples, ims[k].n);
                if (opt.json) {
                    for (int k = 0; k < n_impl; k++)
                        print_json_row(bc, &ims[k], dir, opt.threads[t], s[k], triad[t]);
                    continue;
                }
                double bytes = traffic_factor[dir] * 4.0 * (double)case_numel(bc);
                double gbps = bytes / (s[0].median * 1e-3) / 1e9;
                printf("%-18s %-6s %-9s %3d %10.4f %7.2f %6.1f |", label, bc->layout,
                       dir_names[dir], opt.threads[t], s[0].median, gbps,
                       100.0 * gbps / triad[t]);
                int best = 0;
                for (int k = 1; k < fl; k++)
                    if (!best || s[k].median < s[best].median)
                        best = k;
                if (best) {
                    char b[40];
                    snprintf(b, sizeof b, "%.4f (%s)", s[best].median, ims[best].layout);
                    printf(" %-22s", b);
                    for (int k = 1; k < 1 + MAX_LAYOUTS; k++) {
                        if (k < fl)
                            printf(" %9.4f", s[k].median);
                        else
                            printf(" %9s", "-");
                    }
                    printf(" | %13.2f", s[best].median / s[0].median);
                } else {
                    printf(" %-22s %9s %9s %9s | %13s", "-", "-", "-", "-", "-");
                }
                printf(" | %9.4f %5.2f\n", s[fl].median, s[fl].median / s[0].median);
                fflush(stdout);
            }
#ifdef NNP_BENCH_HAVE_DNNL
            for (int l = 0; l < n_layouts; l++)
                dnnl_free_prims(&dc[l]);
#endif
        }
#ifdef NNP_BENCH_HAVE_DNNL
        for (int l = 0; l < n_layouts; l++)
            dnnl_teardown(&dc[l]);
#endif
        for (int k = 0; k < n_impl; k++)
            free(ims[k].samples);
        nnp_teardown(&nc);
    }

    for (int t = 0; t < opt.n_threads; t++) {
        double end = stream_triad(opt.threads[t], 10);
        if (opt.json)
            printf("{\"tool\":\"bn_compare\",\"impl\":\"stream_triad\",\"when\":\"end\","
                   "\"threads\":%d,\"gbps\":%.4f}\n",
                   opt.threads[t], end);
        else
            printf("%sSTREAM triad at the end, %d thread%s: %.2f GB/s\n", t ? "" : "\n",
                   opt.threads[t], opt.threads[t] == 1 ? "" : "s", end);
    }
#ifdef NNP_BENCH_HAVE_DNNL
    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(engine);
#endif
    nnp_registry_free(reg);
    return 0;
}
