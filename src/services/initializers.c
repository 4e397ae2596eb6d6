/* Keras initializers: names, arguments, defaults and formulas as in Keras 3
 * (keras/src/initializers), drawing from the counter-based Philox stream so
 * a fill is the same for every thread count. */
#include "services_internal.h"

#include "nnplug/rng.h"
#include "nnplug/tensor.h"

#include <math.h>
#include <stdint.h>

typedef enum init_kind {
    INIT_ZEROS,
    INIT_ONES,
    INIT_CONSTANT,
    INIT_RANDOM_NORMAL,
    INIT_RANDOM_UNIFORM,
    INIT_TRUNCATED_NORMAL,
    INIT_VARIANCE_SCALING,
    INIT_GLOROT_NORMAL,
    INIT_GLOROT_UNIFORM,
    INIT_HE_NORMAL,
    INIT_HE_UNIFORM,
    INIT_LECUN_NORMAL,
    INIT_LECUN_UNIFORM,
    INIT_ORTHOGONAL,
    INIT_IDENTITY
} init_kind;

typedef enum fan_mode { FAN_IN, FAN_OUT, FAN_AVG } fan_mode;
typedef enum vs_dist { DIST_TRUNCATED, DIST_UNTRUNCATED, DIST_UNIFORM } vs_dist;

struct nnp_initializer {
    init_kind kind;
    double value;          /* Constant */
    double mean, stddev;   /* RandomNormal, TruncatedNormal */
    double minval, maxval; /* RandomUniform */
    double scale;          /* VarianceScaling and its presets */
    fan_mode mode;
    vs_dist dist;
    double gain;           /* Orthogonal, Identity */
    int has_seed;
    int64_t seed;
};

/* Arguments per kind, in Keras's get_config order. Keras 1/TF1 configs also
 * carry "dtype"; it is accepted when it is float32 and not written back. */
static const char *const ARGS_NONE[] = {"dtype", NULL};
static const char *const ARGS_CONSTANT[] = {"value", "dtype", NULL};
static const char *const ARGS_NORMAL[] = {"mean", "stddev", "seed", "dtype", NULL};
static const char *const ARGS_UNIFORM[] = {"minval", "maxval", "seed", "dtype", NULL};
static const char *const ARGS_VS[] = {"scale", "mode", "distribution", "seed", "dtype", NULL};
static const char *const ARGS_SEED[] = {"seed", "dtype", NULL};
static const char *const ARGS_ORTHO[] = {"gain", "seed", "dtype", NULL};
static const char *const ARGS_IDENTITY[] = {"gain", "dtype", NULL};

typedef struct init_class {
    const char *folded;    /* name after nnp_svc_fold_name */
    init_kind kind;
} init_class;

/* Every accepted spelling, folded: class names, Keras's snake_case and
 * legacy aliases ("uniform", "normal", "one", "zero") and Keras 3's
 * OrthogonalInitializer/IdentityInitializer class names. */
static const init_class CLASSES[] = {
    {"zeros", INIT_ZEROS},
    {"zero", INIT_ZEROS},
    {"ones", INIT_ONES},
    {"one", INIT_ONES},
    {"constant", INIT_CONSTANT},
    {"randomnormal", INIT_RANDOM_NORMAL},
    {"normal", INIT_RANDOM_NORMAL},
    {"randomuniform", INIT_RANDOM_UNIFORM},
    {"uniform", INIT_RANDOM_UNIFORM},
    {"truncatednormal", INIT_TRUNCATED_NORMAL},
    {"variancescaling", INIT_VARIANCE_SCALING},
    {"glorotnormal", INIT_GLOROT_NORMAL},
    {"glorotuniform", INIT_GLOROT_UNIFORM},
    {"henormal", INIT_HE_NORMAL},
    {"heuniform", INIT_HE_UNIFORM},
    {"lecunnormal", INIT_LECUN_NORMAL},
    {"lecununiform", INIT_LECUN_UNIFORM},
    {"orthogonal", INIT_ORTHOGONAL},
    {"orthogonalinitializer", INIT_ORTHOGONAL},
    {"identity", INIT_IDENTITY},
    {"identityinitializer", INIT_IDENTITY},
};

static const char *kind_class(init_kind k)
{
    switch (k) {
    case INIT_ZEROS: return "Zeros";
    case INIT_ONES: return "Ones";
    case INIT_CONSTANT: return "Constant";
    case INIT_RANDOM_NORMAL: return "RandomNormal";
    case INIT_RANDOM_UNIFORM: return "RandomUniform";
    case INIT_TRUNCATED_NORMAL: return "TruncatedNormal";
    case INIT_VARIANCE_SCALING: return "VarianceScaling";
    case INIT_GLOROT_NORMAL: return "GlorotNormal";
    case INIT_GLOROT_UNIFORM: return "GlorotUniform";
    case INIT_HE_NORMAL: return "HeNormal";
    case INIT_HE_UNIFORM: return "HeUniform";
    case INIT_LECUN_NORMAL: return "LecunNormal";
    case INIT_LECUN_UNIFORM: return "LecunUniform";
    case INIT_ORTHOGONAL: return "Orthogonal";
    case INIT_IDENTITY: return "Identity";
    }
    return "?";
}

static const char *const *kind_args(init_kind k)
{
    switch (k) {
    case INIT_ZEROS: case INIT_ONES: return ARGS_NONE;
    case INIT_CONSTANT: return ARGS_CONSTANT;
    case INIT_RANDOM_NORMAL: case INIT_TRUNCATED_NORMAL: return ARGS_NORMAL;
    case INIT_RANDOM_UNIFORM: return ARGS_UNIFORM;
    case INIT_VARIANCE_SCALING: return ARGS_VS;
    case INIT_ORTHOGONAL: return ARGS_ORTHO;
    case INIT_IDENTITY: return ARGS_IDENTITY;
    default: return ARGS_SEED;
    }
}

static const char *mode_name(fan_mode m)
{
    return m == FAN_IN ? "fan_in" : m == FAN_OUT ? "fan_out" : "fan_avg";
}

static const char *dist_name(vs_dist d)
{
    return d == DIST_TRUNCATED ? "truncated_normal"
         : d == DIST_UNTRUNCATED ? "untruncated_normal" : "uniform";
}

/* Keras's defaults, including the presets' fixed VarianceScaling settings. */
static void set_defaults(nnp_initializer *in, init_kind k)
{
    memset(in, 0, sizeof *in);
    in->kind = k;
    in->stddev = 0.05;
    in->minval = -0.05;
    in->maxval = 0.05;
    in->scale = 1.0;
    in->mode = FAN_IN;
    in->dist = DIST_TRUNCATED;
    in->gain = 1.0;
    switch (k) {
    case INIT_GLOROT_NORMAL: in->mode = FAN_AVG; break;
    case INIT_GLOROT_UNIFORM: in->mode = FAN_AVG; in->dist = DIST_UNIFORM; break;
    case INIT_HE_NORMAL: in->scale = 2.0; break;
    case INIT_HE_UNIFORM: in->scale = 2.0; in->dist = DIST_UNIFORM; break;
    case INIT_LECUN_UNIFORM: in->dist = DIST_UNIFORM; break;
    default: break;
    }
}

static nnp_status read_args(nnp_initializer *in, nnp_svc_args *a, nnp_error *err)
{
    const char *what = a->what, *cls = a->cls;
    nnp_status st;
    const json_t *dt = nnp_svc_arg(a, "dtype");
    if (dt && !json_is_null(dt) &&
        !(json_is_string(dt) && strcmp(json_string_value(dt), "float32") == 0))
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "%s '%s': argument 'dtype' must be \"float32\"", what, cls);
    if ((st = nnp_svc_arg_double(a, "value", &in->value, err)) ||
        (st = nnp_svc_arg_double(a, "mean", &in->mean, err)) ||
        (st = nnp_svc_arg_double(a, "stddev", &in->stddev, err)) ||
        (st = nnp_svc_arg_double(a, "minval", &in->minval, err)) ||
        (st = nnp_svc_arg_double(a, "maxval", &in->maxval, err)) ||
        (st = nnp_svc_arg_double(a, "scale", &in->scale, err)) ||
        (st = nnp_svc_arg_double(a, "gain", &in->gain, err)) ||
        (st = nnp_svc_arg_seed(a, &in->has_seed, &in->seed, err)))
        return st;

    char s[32] = "";
    if ((st = nnp_svc_arg_string(a, "mode", s, sizeof s, err)))
        return st;
    if (s[0]) {
        if (strcmp(s, "fan_in") == 0) in->mode = FAN_IN;
        else if (strcmp(s, "fan_out") == 0) in->mode = FAN_OUT;
        else if (strcmp(s, "fan_avg") == 0) in->mode = FAN_AVG;
        else
            return nnp_error_set(err, NNP_ERR_INVALID,
                                 "%s '%s': mode '%s' is not fan_in, fan_out or fan_avg", what,
                                 cls, json_string_value(nnp_svc_arg(a, "mode")));
    }
    s[0] = '\0';
    if ((st = nnp_svc_arg_string(a, "distribution", s, sizeof s, err)))
        return st;
    if (s[0]) {
        /* "normal" is TF1's (and tfjs's) name for the truncated normal. */
        if (strcmp(s, "truncated_normal") == 0 || strcmp(s, "normal") == 0)
            in->dist = DIST_TRUNCATED;
        else if (strcmp(s, "untruncated_normal") == 0) in->dist = DIST_UNTRUNCATED;
        else if (strcmp(s, "uniform") == 0) in->dist = DIST_UNIFORM;
        else
            return nnp_error_set(err, NNP_ERR_INVALID,
                                 "%s '%s': distribution '%s' is not truncated_normal, "
                                 "untruncated_normal, normal or uniform", what, cls,
                                 json_string_value(nnp_svc_arg(a, "distribution")));
    }

    if (in->stddev < 0)
        return nnp_error_set(err, NNP_ERR_INVALID, "%s '%s': stddev must be >= 0, got %g",
                             what, cls, in->stddev);
    if (in->minval > in->maxval)
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "%s '%s': minval (%g) must not exceed maxval (%g)", what, cls,
                             in->minval, in->maxval);
    if (!(in->scale > 0))
        return nnp_error_set(err, NNP_ERR_INVALID, "%s '%s': scale must be > 0, got %g", what,
                             cls, in->scale);
    return NNP_OK;
}

nnp_status nnpi_initializer_from_jsonv(const json_t *v, nnp_initializer **out, nnp_error *err)
{
    const char *name;
    const json_t *config;
    nnp_status st;
    *out = NULL;
    if (!v || json_is_null(v))
        return nnp_error_set(err, NNP_ERR_INVALID, "initializer: null is not an initializer");
    if ((st = nnp_svc_unpack(v, "initializer", &name, &config, err)))
        return st;

    char folded[64];
    nnp_svc_fold_name(name, folded, sizeof folded);
    const init_class *c = NULL;
    for (size_t i = 0; i < sizeof CLASSES / sizeof CLASSES[0]; i++)
        if (strcmp(CLASSES[i].folded, folded) == 0)
            c = &CLASSES[i];
    if (!c)
        return nnp_error_set(err, NNP_ERR_NOT_FOUND, "unknown initializer '%s'", name);

    nnp_initializer tmp;
    set_defaults(&tmp, c->kind);
    nnp_svc_args a = {.what = "initializer", .cls = kind_class(c->kind),
                      .names = kind_args(c->kind)};
    if ((st = nnp_svc_args_collect(&a, config, err)) || (st = read_args(&tmp, &a, err)))
        return st;

    nnp_initializer *in = malloc(sizeof *in);
    if (!in)
        return nnp_error_set(err, NNP_ERR_NOMEM, "initializer '%s': out of memory",
                             kind_class(c->kind));
    *in = tmp;
    *out = in;
    return NNP_OK;
}

nnp_status nnp_initializer_parse(const char *text, nnp_initializer **out, nnp_error *err)
{
    json_t *v;
    nnp_status st = nnp_svc_load(text, "initializer", &v, err);
    if (st) {
        *out = NULL;
        return st;
    }
    st = nnpi_initializer_from_jsonv(v, out, err);
    json_decref(v);
    return st;
}

void nnp_initializer_free(nnp_initializer *init) { free(init); }

nnp_initializer *nnp_initializer_clone(const nnp_initializer *init)
{
    if (!init)
        return NULL;
    nnp_initializer *c = malloc(sizeof *c);
    if (c)
        *c = *init;
    return c;
}

const char *nnp_initializer_class(const nnp_initializer *init)
{
    return init ? kind_class(init->kind) : NULL;
}

json_t *nnpi_initializer_to_jsonv(const nnp_initializer *in)
{
    if (!in)
        return json_null();
    json_t *cfg = json_object();
    if (!cfg)
        return NULL;
    for (const char *const *n = kind_args(in->kind); *n; n++) {
        const char *k = *n;
        json_t *v = NULL;
        if (strcmp(k, "dtype") == 0) continue;
        else if (strcmp(k, "value") == 0) v = json_real(in->value);
        else if (strcmp(k, "mean") == 0) v = json_real(in->mean);
        else if (strcmp(k, "stddev") == 0) v = json_real(in->stddev);
        else if (strcmp(k, "minval") == 0) v = json_real(in->minval);
        else if (strcmp(k, "maxval") == 0) v = json_real(in->maxval);
        else if (strcmp(k, "scale") == 0) v = json_real(in->scale);
        else if (strcmp(k, "gain") == 0) v = json_real(in->gain);
        else if (strcmp(k, "mode") == 0) v = json_string(mode_name(in->mode));
        else if (strcmp(k, "distribution") == 0) v = json_string(dist_name(in->dist));
        else if (strcmp(k, "seed") == 0)
            v = in->has_seed ? json_integer((json_int_t)in->seed) : json_null();
        if (!v || json_object_set_new(cfg, k, v)) {
            json_decref(cfg);
            return NULL;
        }
    }
    return nnp_svc_spec(kind_class(in->kind), cfg);
}

char *nnp_initializer_to_json(const nnp_initializer *init)
{
    return nnp_svc_dumps(nnpi_initializer_to_jsonv(init));
}

/* ------------------------------------------------------------------ */
/* Fans and fills                                                      */
/* ------------------------------------------------------------------ */

void nnp_compute_fans(const nnp_shape *s, double *fan_in, double *fan_out)
{
    double in = 1, out = 1;
    if (s->rank == 1) {
        in = out = (double)s->dims[0];
    } else if (s->rank == 2) {
        in = (double)s->dims[0];
        out = (double)s->dims[1];
    } else if (s->rank > 2) {
        /* Convolution kernels (..., in_channels, out_channels): the leading
           dims form the receptive field. */
        double rf = 1;
        for (int i = 0; i < s->rank - 2; i++)
            rf *= (double)s->dims[i];
        in = (double)s->dims[s->rank - 2] * rf;
        out = (double)s->dims[s->rank - 1] * rf;
    }
    if (fan_in) *fan_in = in;
    if (fan_out) *fan_out = out;
}

/* Fills run in parallel only when large enough to pay for the threads;
   the result does not depend on it. */
#define PAR_MIN 32768

/* TruncatedNormal redraws element i's k-th attempt at counter i + k*2^40:
   streams of distinct attempts never overlap for tensors under 2^40
   elements. After MAX_TRIES misses (probability 0.0455^64) the mean is used. */
#define RETRY_STRIDE (UINT64_C(1) << 40)
#define MAX_TRIES 64

static inline double truncated_normal(uint64_t seed, uint64_t i)
{
    for (uint64_t k = 0; k < MAX_TRIES; k++) {
        double z = nnp_rng_normal(seed, i + k * RETRY_STRIDE);
        if (fabs(z) <= 2.0)
            return z;
    }
    return 0.0;
}

static void fill_const(float *w, int64_t n, float v)
{
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++)
        w[i] = v;
}

static void fill_normal(float *w, int64_t n, uint64_t seed, double mean, double sd, int trunc)
{
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        double z = trunc ? truncated_normal(seed, (uint64_t)i) : nnp_rng_normal(seed, (uint64_t)i);
        w[i] = (float)(mean + sd * z);
    }
}

static void fill_uniform(float *w, int64_t n, uint64_t seed, double lo, double hi)
{
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++)
        w[i] = (float)(lo + (hi - lo) * nnp_rng_uniform(seed, (uint64_t)i));
}

/* Keras's VarianceScaling.__call__. */
static void fill_variance_scaling(const nnp_initializer *in, const nnp_shape *s, float *w,
                                  int64_t n, uint64_t seed)
{
    double fan_in, fan_out, fan;
    nnp_compute_fans(s, &fan_in, &fan_out);
    fan = in->mode == FAN_IN ? fan_in : in->mode == FAN_OUT ? fan_out
                                                           : (fan_in + fan_out) / 2.0;
    double scale = in->scale / (fan > 1.0 ? fan : 1.0);
    if (in->dist == DIST_TRUNCATED) {
        /* Stddev of a unit normal truncated to [-2, 2], so the result has
           variance scale/fan (scipy.stats.truncnorm.std(a=-2, b=2)). */
        fill_normal(w, n, seed, 0.0, sqrt(scale) / 0.87962566103423978, 1);
    } else if (in->dist == DIST_UNTRUNCATED) {
        fill_normal(w, n, seed, 0.0, sqrt(scale), 0);
    } else {
        double limit = sqrt(3.0 * scale);
        fill_uniform(w, n, seed, -limit, limit);
    }
}

/* Householder QR of the m x n (m >= n) row-major matrix a, in place, and the
 * thin Q (m x n) in q. On return a's diagonal holds R's diagonal. */
static void householder_qr(double *a, double *q, int64_t m, int64_t n, double *v)
{
    for (int64_t j = 0; j < n; j++) {
        /* Reflector H = I - 2 v v^T / (v^T v) zeroing a[j+1.., j]. */
        double norm = 0;
        for (int64_t i = j; i < m; i++)
            norm += a[i * n + j] * a[i * n + j];
        norm = sqrt(norm);
        double x0 = a[j * n + j];
        double alpha = x0 >= 0 ? -norm : norm;   /* sign avoids cancellation */
        for (int64_t i = j; i < m; i++)
            v[i] = a[i * n + j];
        v[j] = x0 - alpha;
        double vtv = 0;
        for (int64_t i = j; i < m; i++)
            vtv += v[i] * v[i];
        /* Columns j.. of the trailing block, each independent. */
        if (vtv > 0) {
#pragma omp parallel for if ((m - j) * (n - j) > PAR_MIN) schedule(static)
            for (int64_t c = j; c < n; c++) {
                double d = 0;
                for (int64_t i = j; i < m; i++)
                    d += v[i] * a[i * n + c];
                d *= 2.0 / vtv;
                for (int64_t i = j; i < m; i++)
                    a[i * n + c] -= d * v[i];
            }
        }
        /* Keep v below the diagonal (its head lives in v_head) for Q. */
        for (int64_t i = j + 1; i < m; i++)
            a[i * n + j] = v[i];
        v[m + j] = v[j];     /* head of reflector j */
        v[m + n + j] = vtv;
    }
    /* Q = H_0 H_1 ... H_{n-1} applied to the first n columns of I, built
       from the last reflector back. */
    for (int64_t i = 0; i < m; i++)
        for (int64_t c = 0; c < n; c++)
            q[i * n + c] = i == c ? 1.0 : 0.0;
    for (int64_t j = n - 1; j >= 0; j--) {
        double vtv = v[m + n + j];
        if (!(vtv > 0))
            continue;
#pragma omp parallel for if ((m - j) * (n - j) > PAR_MIN) schedule(static)
        for (int64_t c = j; c < n; c++) {
            double d = v[m + j] * q[j * n + c];
            for (int64_t i = j + 1; i < m; i++)
                d += a[i * n + j] * q[i * n + c];
            d *= 2.0 / vtv;
            q[j * n + c] -= d * v[m + j];
            for (int64_t i = j + 1; i < m; i++)
                q[i * n + c] -= d * a[i * n + j];
        }
    }
}

/* Keras's Orthogonal: QR of a (max(r,c) x min(r,c)) normal matrix, columns
 * signed by diag(R) so Q is Haar-distributed, transposed when rows < cols. */
static nnp_status fill_orthogonal(const nnp_initializer *in, const nnp_shape *s, float *w,
                                  int64_t n, uint64_t seed, nnp_error *err)
{
    if (s->rank < 2) {
        char sb[96];
        return nnp_error_set(err, NNP_ERR_SHAPE,
                             "initializer 'Orthogonal': needs a weight of rank >= 2, got shape %s",
                             nnp_shape_str(s, sb, sizeof sb));
    }
    int64_t cols = s->dims[s->rank - 1];
    int64_t rows = cols ? n / cols : 0;
    if (n == 0)
        return NNP_OK;
    int64_t m = rows > cols ? rows : cols, k = rows > cols ? cols : rows;
    size_t mk, bytes_a, bytes_v;
    if (!nnp_mul_size((size_t)m, (size_t)k, &mk) || !nnp_mul_size(mk, sizeof(double), &bytes_a) ||
        !nnp_mul_size((size_t)(m + 2 * k), sizeof(double), &bytes_v))
        return nnp_error_set(err, NNP_ERR_OVERFLOW, "initializer 'Orthogonal': matrix too large");
    double *a = malloc(bytes_a), *q = malloc(bytes_a), *v = malloc(bytes_v);
    if (!a || !q || !v) {
        free(a);
        free(q);
        free(v);
        return nnp_error_set(err, NNP_ERR_NOMEM,
                             "initializer 'Orthogonal': out of memory for a %lldx%lld matrix",
                             (long long)m, (long long)k);
    }
    int64_t mkn = (int64_t)mk;
#pragma omp parallel for if (mkn > PAR_MIN) schedule(static)
    for (int64_t i = 0; i < mkn; i++)
        a[i] = nnp_rng_normal(seed, (uint64_t)i);
    householder_qr(a, q, m, k, v);
    for (int64_t c = 0; c < k; c++) {
        double sign = a[c * k + c] < 0 ? -1.0 : 1.0;
        for (int64_t r = 0; r < m; r++)
            q[r * k + c] *= sign;
    }
    /* q is m x k; the weight is rows x cols = q, or q^T when rows < cols. */
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            double x = rows >= cols ? q[r * k + c] : q[c * k + r];
            w[r * cols + c] = (float)(in->gain * x);
        }
    free(a);
    free(q);
    free(v);
    return NNP_OK;
}

nnp_status nnp_initializer_fill(const nnp_initializer *init, nnp_tensor *t, uint64_t seed,
                                nnp_error *err)
{
    if (!init || !t)
        return nnp_error_set(err, NNP_ERR_INVALID, "initializer fill: no %s given",
                             init ? "tensor" : "initializer");
    const char *cls = kind_class(init->kind);
    if (t->dtype != NNP_F32)
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED,
                             "initializer '%s': can only fill float32 tensors, got %s", cls,
                             nnp_dtype_name(t->dtype));
    int64_t n;
    nnp_status st = nnp_shape_numel(&t->shape, &n, err);
    if (st)
        return nnp_error_prefix(err, "initializer '%s'", cls);
    if (n > 0 && (!t->data || t->nbytes < (size_t)n * sizeof(float)))
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "initializer '%s': tensor has no storage for %lld elements", cls,
                             (long long)n);
    float *w = t->data;
    uint64_t s = init->has_seed ? (uint64_t)init->seed : seed;

    switch (init->kind) {
    case INIT_ZEROS: fill_const(w, n, 0.0f); break;
    case INIT_ONES: fill_const(w, n, 1.0f); break;
    case INIT_CONSTANT: fill_const(w, n, (float)init->value); break;
    case INIT_RANDOM_NORMAL: fill_normal(w, n, s, init->mean, init->stddev, 0); break;
    case INIT_TRUNCATED_NORMAL: fill_normal(w, n, s, init->mean, init->stddev, 1); break;
    case INIT_RANDOM_UNIFORM: fill_uniform(w, n, s, init->minval, init->maxval); break;
    case INIT_VARIANCE_SCALING:
    case INIT_GLOROT_NORMAL:
    case INIT_GLOROT_UNIFORM:
    case INIT_HE_NORMAL:
    case INIT_HE_UNIFORM:
    case INIT_LECUN_NORMAL:
    case INIT_LECUN_UNIFORM:
        fill_variance_scaling(init, &t->shape, w, n, s);
        break;
    case INIT_ORTHOGONAL:
        return fill_orthogonal(init, &t->shape, w, n, s, err);
    case INIT_IDENTITY: {
        if (t->shape.rank != 2) {
            char sb[96];
            return nnp_error_set(err, NNP_ERR_SHAPE,
                                 "initializer 'Identity': needs a 2-D weight, got shape %s",
                                 nnp_shape_str(&t->shape, sb, sizeof sb));
        }
        int64_t cols = t->shape.dims[1];
        fill_const(w, n, 0.0f);
        for (int64_t i = 0; i < t->shape.dims[0] && i < cols; i++)
            w[i * cols + i] = (float)init->gain;
        break;
    }
    }
    return NNP_OK;
}
