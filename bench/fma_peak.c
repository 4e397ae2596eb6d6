/* The machine's float32 FMA peak, measured: 16 independent chains of fused
 * multiply-adds on the widest vectors the CPU has (AVX-512 when it has it,
 * else AVX2+FMA, else scalar), in each of N OpenMP threads. A chain is
 * acc = acc * m + b, with m and b chosen so that the values stay finite and
 * normal; 16 chains cover the FMA latency (4-5 cycles) times the FMA units
 * (2 on current x86 cores).
 *
 *   fma_peak [--threads "1 2"] [--ms 300] [--rounds 5] [--json]
 *
 * For each thread count: ROUNDS timed runs of about MS milliseconds each
 * (after one untimed run), the best one reported as GFLOP/s, one FMA counted
 * as 2 FLOP. One JSON line per thread count with --json: {"bench":
 * "fma_peak", "isa", "threads", "gflops", "gflops_runs"}. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHAINS 16

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Each kernel runs iters x CHAINS FMAs per vector lane and returns a sum of
 * the accumulators, so that the compiler cannot drop the work. The chains
 * are 16 named registers (an array would live on the stack); without
 * -ffast-math the compiler may not reassociate a chain, so every FMA runs. */
#define DECL16(T, init) T a0 = init(0), a1 = init(1), a2 = init(2), a3 = init(3), \
    a4 = init(4), a5 = init(5), a6 = init(6), a7 = init(7), a8 = init(8), a9 = init(9), \
    a10 = init(10), a11 = init(11), a12 = init(12), a13 = init(13), a14 = init(14), \
    a15 = init(15)
#define STEP16(F) do { a0 = F(a0, m, b); a1 = F(a1, m, b); a2 = F(a2, m, b); \
    a3 = F(a3, m, b); a4 = F(a4, m, b); a5 = F(a5, m, b); a6 = F(a6, m, b); \
    a7 = F(a7, m, b); a8 = F(a8, m, b); a9 = F(a9, m, b); a10 = F(a10, m, b); \
    a11 = F(a11, m, b); a12 = F(a12, m, b); a13 = F(a13, m, b); a14 = F(a14, m, b); \
    a15 = F(a15, m, b); } while (0)
#define SUM16(ADD) ADD(ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7))), \
    ADD(ADD(ADD(a8, a9), ADD(a10, a11)), ADD(ADD(a12, a13), ADD(a14, a15))))

__attribute__((target("avx512f"))) static float kern_avx512(long iters, float seed)
{
#define INIT512(c) _mm512_set1_ps(seed + (float)(c))
    DECL16(__m512, INIT512);
    const __m512 m = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
    for (long i = 0; i < iters; i++)
        STEP16(_mm512_fmadd_ps);
    return _mm512_reduce_add_ps(SUM16(_mm512_add_ps));
}

__attribute__((target("avx2,fma"))) static float kern_avx2(long iters, float seed)
{
#define INIT256(c) _mm256_set1_ps(seed + (float)(c))
    DECL16(__m256, INIT256);
    const __m256 m = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
    for (long i = 0; i < iters; i++)
        STEP16(_mm256_fmadd_ps);
    float out[8], s = 0;
    _mm256_storeu_ps(out, SUM16(_mm256_add_ps));
    for (int i = 0; i < 8; i++)
        s += out[i];
    return s;
}

static float kern_scalar(long iters, float seed)
{
    volatile float a = 0.999999f, b = 1e-6f;
    float acc[CHAINS], s = 0;
    for (int c = 0; c < CHAINS; c++)
        acc[c] = seed + (float)c;
    float av = a, bv = b;
    for (long i = 0; i < iters; i++)
        for (int c = 0; c < CHAINS; c++)
            acc[c] = __builtin_fmaf(acc[c], av, bv);
    for (int c = 0; c < CHAINS; c++)
        s += acc[c];
    return s;
}

typedef float (*kern_fn)(long, float);

/* Seconds for every thread to run iters (the slowest thread's time). */
static double run(kern_fn k, int threads, long iters, float *sink)
{
    float total = 0;
    double t0 = 0, t1 = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
#pragma omp barrier
#pragma omp single
        t0 = now_s();
        total += k(iters, (float)omp_get_thread_num());
#pragma omp barrier
#pragma omp single
        t1 = now_s();
    }
    *sink += total;
    return t1 - t0;
}

int main(int argc, char **argv)
{
    const char *threads = "1 2";
    double ms = 300;
    int rounds = 5, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = argv[++i];
        else if (!strcmp(argv[i], "--ms") && i + 1 < argc)
            ms = atof(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else {
            fprintf(stderr, "usage: fma_peak [--threads \"1 2\"] [--ms 300] [--rounds 5] [--json]\n");
            return 2;
        }
    }
    if (rounds < 1 || ms <= 0) {
        fprintf(stderr, "fma_peak: --rounds and --ms must be positive\n");
        return 2;
    }
    __builtin_cpu_init();
    kern_fn k = kern_scalar;
    const char *isa = "scalar";
    int lanes = 1;
    if (__builtin_cpu_supports("avx512f")) {
        k = kern_avx512, isa = "avx512", lanes = 16;
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        k = kern_avx2, isa = "avx2", lanes = 8;
    }
    float sink = 0;
    char *list = strdup(threads), *save = NULL;
    for (char *tok = strtok_r(list, " ,", &save); tok; tok = strtok_r(NULL, " ,", &save)) {
        int t = atoi(tok);
        if (t < 1) {
            fprintf(stderr, "fma_peak: bad thread count '%s'\n", tok);
            return 2;
        }
        /* calibrate: iterations for about ms milliseconds */
        long iters = 1 << 16;
        double dt;
        while ((dt = run(k, t, iters, &sink)) < 0.02)
            iters *= 2;
        iters = (long)((double)iters * (ms / 1e3) / dt) + 1;
        run(k, t, iters, &sink);
        double best = 0, flop = 2.0 * CHAINS * lanes * (double)iters * t;
        double runs[64];
        int nr = rounds < 64 ? rounds : 64;
        for (int r = 0; r < nr; r++) {
            runs[r] = flop / run(k, t, iters, &sink) / 1e9;
            if (runs[r] > best)
                best = runs[r];
        }
        if (json) {
            printf("{\"bench\": \"fma_peak\", \"isa\": \"%s\", \"threads\": %d, \"gflops\": %.2f, "
                   "\"gflops_runs\": [", isa, t, best);
            for (int r = 0; r < nr; r++)
                printf("%s%.2f", r ? ", " : "", runs[r]);
            printf("]}\n");
        } else {
            printf("fma peak, %s, %d thread(s): %.1f GFLOP/s (best of %d)\n", isa, t, best, nr);
        }
    }
    free(list);
    /* sink is finite by construction; printing it to /dev/null would do too */
    if (sink != sink)
        fprintf(stderr, "fma_peak: NaN\n");
    return 0;
}
