/* Keras model files through the C API: a .keras archive written and read
 * back (file and memory) with every weight bit kept, damaged archives and
 * HDF5 images refused with a message and without HDF5 printing anything,
 * files on which the HDF5 library itself crashes or hangs reported as
 * damaged (its process killed and reaped, none left), and a failed save
 * leaving no file. The layouts against files h5py writes are
 * tests/interop/keras_files.py's. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

/* keras_h5.c: HDF5 identifiers open now (-1 without HDF5) */
long long nnpi_h5_open_ids(void);

static nnp_registry *reg;
static void setup(void) { reg = tu_registry(); }
static void teardown(void) { nnp_registry_free(reg); }

static const char model_json[] =
    "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"s\", \"layers\": ["
    "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 5, 5, 2],"
    " \"name\": \"in\"}},"
    "{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"c\", \"filters\": 3,"
    " \"kernel_size\": [3, 3], \"padding\": \"same\"}},"
    "{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"b\", \"center\": false}},"
    "{\"class_name\": \"Flatten\", \"config\": {\"name\": \"f\"}},"
    "{\"class_name\": \"Dense\", \"config\": {\"name\": \"d\", \"units\": 4}}]}}";

#define SKIP_WITHOUT_SUPPORT()                                                           \
    do {                                                                                 \
        if (!nnp_keras_files_supported())                                                \
            cr_skip_test("built without HDF5/libzip (NNP_WITH_KERAS_FILES=OFF)");        \
    } while (0)

/* The model with every weight set to values no initializer gives. */
static nnp_model *make_model(void)
{
    nnp_model *m = NULL;
    nnp_error err = {0};
    cr_assert_eq(nnp_keras_load_string(reg, model_json, "unit.json", &m, &err), NNP_OK, "%s",
                 err.msg);
    int k = 1;
    for (int li = 0; li < nnp_model_n_layers(m); li++) {
        nnp_layer *l = nnp_model_layer(m, li);
        for (int i = 0; i < nnp_layer_n_weights(l); i++) {
            const nnp_weight *w = nnp_layer_weight(l, i);
            float *p = w->value->data;
            for (int64_t j = 0; j < nnp_tensor_numel(w->value); j++, k++)
                p[j] = (float)(k % 7 ? 0.37 * k - 3.1 : 1.0 / k) + 0.5f;
        }
        nnp_layer_weights_changed(l);
    }
    return m;
}

static void assert_same_weights(const nnp_model *a, const nnp_model *b)
{
    cr_assert_eq(nnp_model_n_layers(a), nnp_model_n_layers(b));
    for (int li = 0; li < nnp_model_n_layers(a); li++) {
        const nnp_layer *la = nnp_model_layer(a, li), *lb = nnp_model_layer(b, li);
        cr_assert_str_eq(nnp_layer_name(la), nnp_layer_name(lb));
        cr_assert_eq(nnp_layer_n_weights(la), nnp_layer_n_weights(lb), "layer %s",
                     nnp_layer_name(la));
        for (int i = 0; i < nnp_layer_n_weights(la); i++) {
            const nnp_tensor *ta = nnp_layer_weight(la, i)->value;
            const nnp_tensor *tb = nnp_layer_weight(lb, i)->value;
            cr_assert(nnp_shape_equal(&ta->shape, &tb->shape));
            cr_assert_eq(memcmp(ta->data, tb->data, ta->nbytes), 0, "layer %s weight %s differs",
                         nnp_layer_name(la), nnp_layer_weight(la, i)->name);
        }
    }
}

static char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/nnp_test_keras_file_%d_%s", P_tmpdir, (int)getpid(), name);
    return p;
}

static char *read_all(const char *path, size_t *len)
{
    char *data;
    nnp_error err = {0};
    cr_assert_eq(nnp_read_file(path, &data, len, &err), NNP_OK, "%s", err.msg);
    return data;
}

/* No child process of ours is left, running or a zombie: every HDF5 reader
 * process was reaped. */
static void assert_no_child(void)
{
    errno = 0;
    pid_t w = waitpid(-1, NULL, WNOHANG);
    cr_assert(w == -1 && errno == ECHILD, "a child process is left (waitpid: %d)", (int)w);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A file of tests/fixtures/keras-bad (gen.py there says how each was made). */
static const char *bad_file(const char *name)
{
    static char path[1024];
    const char *srcdir = getenv("NNP_SOURCE_DIR");
    cr_assert_not_null(srcdir, "NNP_SOURCE_DIR is not set");
    snprintf(path, sizeof path, "%s/tests/fixtures/keras-bad/%s", srcdir, name);
    return path;
}

#define FAILED ": the HDF5 library failed on this file (it "
#define DAMAGED "); the file is damaged"

#if defined(__SANITIZE_ADDRESS__)
#define NNP_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NNP_TEST_ASAN 1
#endif
#endif

/* msg says the reader of origin crashed: SIGSEGV, or, under
 * AddressSanitizer (whose memcpy interceptor stops HDF5's wild copy first and
 * reports it on stderr), exit status 1. */
static bool says_crashed(const char *msg, const char *origin)
{
    char segv[1200], asan[1200];
    snprintf(segv, sizeof segv, "%s" FAILED "crashed: signal %d" DAMAGED, origin, SIGSEGV);
    snprintf(asan, sizeof asan, "%s" FAILED "exited with status 1" DAMAGED, origin);
#ifdef NNP_TEST_ASAN
    return strcmp(msg, segv) == 0 || strcmp(msg, asan) == 0;
#else
    return strcmp(msg, segv) == 0;
#endif
}

TestSuite(keras_file, .init = setup, .fini = teardown);

Test(keras_file, archive_round_trip_keeps_every_bit)
{
    SKIP_WITHOUT_SUPPORT();
    nnp_model *m = make_model(), *back = NULL, *mem = NULL;
    nnp_error err = {0};
    const char *path = tmp_path("rt.keras");
    cr_assert_eq(nnp_keras_save_archive(m, path, &err), NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_keras_load(reg, path, &back, &err), NNP_OK, "%s", err.msg);
    assert_same_weights(m, back);
    char *ja = nnp_keras_to_json(m), *jb = nnp_keras_to_json(back);
    cr_assert_str_eq(ja, jb);
    size_t len;
    char *data = read_all(path, &len);
    cr_assert_eq(nnp_keras_load_memory(reg, data, len, "mem.keras", &mem, &err), NNP_OK, "%s",
                 err.msg);
    assert_same_weights(m, mem);
    free(ja);
    free(jb);
    free(data);
    unlink(path);
    nnp_model_free(m);
    nnp_model_free(back);
    nnp_model_free(mem);
    assert_no_child();
}

/* Every prefix of an archive is refused with a message naming it; none
 * crashes (ASan) or leaks an HDF5 handle. */
Test(keras_file, truncated_archives_are_refused)
{
    SKIP_WITHOUT_SUPPORT();
    nnp_model *m = make_model();
    nnp_error err = {0};
    const char *path = tmp_path("cut.keras");
    cr_assert_eq(nnp_keras_save_archive(m, path, &err), NNP_OK, "%s", err.msg);
    size_t len;
    char *data = read_all(path, &len);
    int refused = 0;
    long long ids = nnpi_h5_open_ids();
    for (size_t n = 0; n < len; n += 1 + n / 16) {
        nnp_model *out = NULL;
        memset(&err, 0, sizeof err);
        nnp_status st = nnp_keras_load_memory(reg, data, n, "cut.keras", &out, &err);
        cr_assert_neq(st, NNP_OK, "a %zu-byte prefix of %zu loaded", n, len);
        cr_assert_null(out);
        cr_assert_not_null(strstr(err.msg, "cut.keras"), "%s", err.msg);
        refused++;
    }
    cr_assert_gt(refused, 10);
    cr_assert_eq(nnpi_h5_open_ids(), ids, "HDF5 identifiers left open");
    free(data);
    unlink(path);
    nnp_model_free(m);
}

/* Flipped bytes: the zip's CRCs and structure checks, or the HDF5 reader,
 * refuse them, or the file still loads (a byte of no consequence). */
Test(keras_file, damaged_archives_never_crash)
{
    SKIP_WITHOUT_SUPPORT();
    nnp_model *m = make_model();
    nnp_error err = {0};
    const char *path = tmp_path("flip.keras");
    cr_assert_eq(nnp_keras_save_archive(m, path, &err), NNP_OK, "%s", err.msg);
    size_t len;
    char *data = read_all(path, &len);
    long long ids = nnpi_h5_open_ids();
    for (size_t at = 0; at < len; at += 7) {
        nnp_model *out = NULL;
        data[at] ^= 0x5a;
        memset(&err, 0, sizeof err);
        if (nnp_keras_load_memory(reg, data, len, "flip.keras", &out, &err) != NNP_OK)
            cr_assert(err.msg[0], "a refusal without a message (byte %zu)", at);
        nnp_model_free(out);
        data[at] ^= 0x5a;
    }
    cr_assert_eq(nnpi_h5_open_ids(), ids, "HDF5 identifiers left open");
    free(data);
    unlink(path);
    nnp_model_free(m);
}

/* Legacy HDF5 models cut short (the files h5py wrote for the fuzzer's
 * seeds): each prefix is refused with a message, and no HDF5 identifier is
 * left open in this process (HDF5 reads in a child process). */
Test(keras_file, truncated_hdf5_models_are_refused)
{
    SKIP_WITHOUT_SUPPORT();
    const char *names[] = {"k2.h5", "k3.h5"};
    long long ids = nnpi_h5_open_ids();
    for (int k = 0; k < 2; k++) {
        char path[1024];
        const char *srcdir = getenv("NNP_SOURCE_DIR");
        cr_assert_not_null(srcdir, "NNP_SOURCE_DIR is not set");
        snprintf(path, sizeof path, "%s/tests/fuzz/corpus-keras-file/%s", srcdir, names[k]);
        size_t len;
        char *data = read_all(path, &len);
        nnp_model *out = NULL;
        nnp_error err = {0};
        cr_assert_eq(nnp_keras_load_memory(reg, data, len, names[k], &out, &err), NNP_OK, "%s",
                     err.msg);
        nnp_model_free(out);
        for (size_t n = 8; n < len; n += 1 + n / 24) {
            out = NULL;
            memset(&err, 0, sizeof err);
            cr_assert_neq(nnp_keras_load_memory(reg, data, n, names[k], &out, &err), NNP_OK,
                          "a %zu-byte prefix of %s loaded", n, names[k]);
            cr_assert_null(out);
            cr_assert_not_null(strstr(err.msg, names[k]), "%s", err.msg);
        }
        free(data);
    }
    cr_assert_eq(nnpi_h5_open_ids(), ids, "HDF5 identifiers left open");
    assert_no_child();
}

/* Files on which the HDF5 library itself dies with SIGSEGV (in its global
 * heap reader): the load fails with the file named, the process that read
 * it is gone, and the caller lives on. */
Test(keras_file, hdf5_library_crash_is_reported)
{
    SKIP_WITHOUT_SUPPORT();
    const char *names[] = {"hdf5_crash.h5", "hdf5_crash.keras"};
    for (int k = 0; k < 2; k++) {
        const char *path = bad_file(names[k]);
        nnp_model *out = NULL;
        nnp_error err = {0};
        cr_assert_eq(nnp_keras_load(reg, path, &out, &err), NNP_ERR_FORMAT, "%s", err.msg);
        cr_assert_null(out);
        cr_assert(says_crashed(err.msg, path), "%s", err.msg);
        assert_no_child();
        /* the same bytes from memory */
        size_t len;
        char *data = read_all(path, &len);
        memset(&err, 0, sizeof err);
        cr_assert_eq(nnp_keras_load_memory(reg, data, len, names[k], &out, &err),
                     NNP_ERR_FORMAT, "%s", err.msg);
        cr_assert_null(out);
        cr_assert(says_crashed(err.msg, names[k]), "%s", err.msg);
        free(data);
        assert_no_child();
    }
}

/* Files on which the HDF5 library loops forever (in its metadata cache):
 * the reader is killed at the time limit (NNP_HDF5_TIME_LIMIT, 1 s here). */
Test(keras_file, hdf5_library_hang_is_killed)
{
    SKIP_WITHOUT_SUPPORT();
    const char *names[] = {"hdf5_hang.h5", "hdf5_hang.keras"};
    setenv("NNP_HDF5_TIME_LIMIT", "1", 1);
    for (int k = 0; k < 2; k++) {
        const char *path = bad_file(names[k]);
        char want[1200];
        nnp_model *out = NULL;
        nnp_error err = {0};
        double t0 = now_s();
        cr_assert_eq(nnp_keras_load(reg, path, &out, &err), NNP_ERR_FORMAT, "%s", err.msg);
        double took = now_s() - t0;
        cr_assert_null(out);
        snprintf(want, sizeof want, "%s" FAILED "did not finish within 1 s" DAMAGED, path);
        cr_assert_str_eq(err.msg, want);
        cr_assert_lt(took, 4.0, "%s took %.1f s with a 1 s limit", names[k], took);
        assert_no_child();
    }
    unsetenv("NNP_HDF5_TIME_LIMIT");
}

/* The limit holds for any file: a valid one that cannot be read within
 * a microsecond is refused the same way, and loads again without it. */
Test(keras_file, hdf5_time_limit_on_a_valid_file)
{
    SKIP_WITHOUT_SUPPORT();
    nnp_model *m = make_model(), *out = NULL;
    nnp_error err = {0};
    const char *path = tmp_path("limit.keras");
    cr_assert_eq(nnp_keras_save_archive(m, path, &err), NNP_OK, "%s", err.msg);
    setenv("NNP_HDF5_TIME_LIMIT", "0.000001", 1);
    cr_assert_eq(nnp_keras_load(reg, path, &out, &err), NNP_ERR_FORMAT);
    cr_assert_null(out);
    cr_assert_not_null(strstr(err.msg, FAILED "did not finish within 1e-06 s" DAMAGED), "%s",
                       err.msg);
    assert_no_child();
    unsetenv("NNP_HDF5_TIME_LIMIT");
    cr_assert_eq(nnp_keras_load(reg, path, &out, &err), NNP_OK, "%s", err.msg);
    assert_same_weights(m, out);
    assert_no_child();
    unlink(path);
    nnp_model_free(m);
    nnp_model_free(out);
}

typedef struct loader {
    const char *archive, *crash;
    const nnp_model *want;
    int ok, stuck;
    char msg[NNP_ERROR_MSG_MAX];   /* the last error */
} loader;

/* Under AddressSanitizer a reader forked while another thread holds the
 * sanitizer's allocator lock waits for it forever (this libasan does not
 * take its locks around fork, as glibc's malloc does): the time limit ends
 * it, and the load is refused like a hanging file. */
static bool stuck_reader(const char *msg)
{
#ifdef NNP_TEST_ASAN
    return strstr(msg, FAILED "did not finish within") != NULL;
#else
    (void)msg;
    return false;
#endif
}

static void *load_both(void *arg)
{
    loader *l = arg;
    for (int i = 0; i < 4; i++) {
        nnp_model *out = NULL;
        nnp_error err = {0};
        nnp_status st = nnp_keras_load(reg, l->archive, &out, &err);
        snprintf(l->msg, sizeof l->msg, "%s", err.msg);
        if (st != NNP_OK && stuck_reader(err.msg)) {
            l->stuck++;
            continue;
        }
        if (st != NNP_OK)
            return NULL;
        bool same = true;
        for (int li = 0; li < nnp_model_n_layers(out); li++)
            for (int w = 0; w < nnp_layer_n_weights(nnp_model_layer(out, li)); w++) {
                const nnp_tensor *a = nnp_layer_weight(nnp_model_layer(out, li), w)->value;
                const nnp_tensor *b =
                    nnp_layer_weight(nnp_model_layer(l->want, li), w)->value;
                same = same && a->nbytes == b->nbytes && !memcmp(a->data, b->data, a->nbytes);
            }
        nnp_model_free(out);
        if (!same)
            return NULL;
        st = nnp_keras_load(reg, l->crash, &out, &err);
        snprintf(l->msg, sizeof l->msg, "%s", err.msg);
        if (st == NNP_ERR_FORMAT && stuck_reader(err.msg)) {
            l->stuck++;
            continue;
        }
        if (st != NNP_ERR_FORMAT || out || !says_crashed(err.msg, l->crash))
            return NULL;
    }
    l->ok = 1;
    return NULL;
}

/* Several threads read files at once (the process has OpenMP threads too,
 * from building the model): each gets its own reader process and its own
 * answer. */
Test(keras_file, threads_read_at_once)
{
    SKIP_WITHOUT_SUPPORT();
#ifdef NNP_TEST_ASAN
    setenv("NNP_HDF5_TIME_LIMIT", "3", 1);   /* see stuck_reader */
#endif
    nnp_model *m = make_model();
    nnp_error err = {0};
    const char *path = tmp_path("threads.keras");
    cr_assert_eq(nnp_keras_save_archive(m, path, &err), NNP_OK, "%s", err.msg);
    char crash[1024];
    snprintf(crash, sizeof crash, "%s", bad_file("hdf5_crash.keras"));
    loader l[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        l[i] = (loader){path, crash, m, 0, 0, ""};
        cr_assert_eq(pthread_create(&th[i], NULL, load_both, &l[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    int stuck = 0;
    for (int i = 0; i < 4; i++) {
        cr_assert(l[i].ok, "thread %d got a wrong answer (last message: %s)", i, l[i].msg);
        stuck += l[i].stuck;
    }
    if (stuck)
        cr_log_info("%d of 32 readers were stuck in AddressSanitizer's allocator lock", stuck);
    cr_assert_lt(stuck, 32, "no reader ever answered");
    assert_no_child();
    unlink(path);
    nnp_model_free(m);
}

static void redirect_stdout(void) { cr_redirect_stdout(); }

/* The reader process leaves with _exit: the caller's buffered output is
 * not written a second time by it. */
Test(keras_file, reader_does_not_flush_our_stdio, .init = redirect_stdout)
{
    SKIP_WITHOUT_SUPPORT();
    nnp_model *m = make_model(), *out = NULL;
    nnp_error err = {0};
    const char *path = tmp_path("stdio.keras");
    cr_assert_eq(nnp_keras_save_archive(m, path, &err), NNP_OK, "%s", err.msg);
    printf("pending");   /* a pipe: fully buffered, still in our buffer */
    cr_assert_eq(nnp_keras_load(reg, path, &out, &err), NNP_OK, "%s", err.msg);
    nnp_model_free(out);
    cr_assert_eq(nnp_keras_load(reg, bad_file("hdf5_crash.h5"), &out, &err), NNP_ERR_FORMAT);
    fflush(stdout);
    cr_assert_stdout_eq_str("pending");
    unlink(path);
    nnp_model_free(m);
}

static void redirect(void) { cr_redirect_stderr(); }

/* HDF5's own error printing is off: its errors come back as the message. */
Test(keras_file, hdf5_prints_nothing, .init = redirect)
{
    SKIP_WITHOUT_SUPPORT();
    static const char bad[] = "\x89HDF\r\n\x1a\n\x00\x00\x00\x00 not really an HDF5 superblock";
    nnp_model *out = NULL;
    nnp_error err = {0};
    long long ids = nnpi_h5_open_ids();
    cr_assert_eq(nnp_keras_load_memory(reg, bad, sizeof bad - 1, "bad.h5", &out, &err),
                 NNP_ERR_FORMAT);
    cr_assert_eq(nnpi_h5_open_ids(), ids, "HDF5 identifiers left open");
    cr_assert_not_null(strstr(err.msg, "bad.h5: not a readable HDF5 file"), "%s", err.msg);
    fflush(stderr);
    cr_assert_stderr_eq_str("");
}

Test(keras_file, failed_save_leaves_no_file)
{
    SKIP_WITHOUT_SUPPORT();
    nnp_model *m = make_model();
    nnp_error err = {0};
    const char *path = "/nonexistent-nnplug-dir/model.keras";
    cr_assert_eq(nnp_keras_save_archive(m, path, &err), NNP_ERR_IO);
    cr_assert_not_null(strstr(err.msg, path), "%s", err.msg);
    cr_assert_neq(access(path, F_OK), 0);
    nnp_model_free(m);
}

Test(keras_file, memory_json_and_forms)
{
    nnp_model *m = NULL;
    nnp_error err = {0};
    cr_assert_eq(nnp_keras_load_memory(reg, model_json, strlen(model_json), "mem.json", &m, &err),
                 NNP_OK, "%s", err.msg);
    cr_assert_eq(nnp_model_n_layers(m), 4);
    nnp_model_free(m);
    m = NULL;
    static const char nul[] = "{\"class_name\"\0}";
    cr_assert_eq(nnp_keras_load_memory(reg, nul, sizeof nul - 1, "nul.json", &m, &err),
                 NNP_ERR_FORMAT);
    cr_assert_null(m);
    cr_assert_not_null(strstr(err.msg, "nul.json"), "%s", err.msg);
    /* a .keras file must be a zip, whatever it holds */
    const char *path = tmp_path("text.keras");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(model_json, f);
    fclose(f);
    cr_assert_eq(nnp_keras_load(reg, path, &m, &err), NNP_ERR_FORMAT);
    cr_assert_not_null(strstr(err.msg, "not a zip archive"), "%s", err.msg);
    unlink(path);
}

Test(keras_file, without_support_says_so)
{
    if (nnp_keras_files_supported())
        cr_skip_test("built with HDF5/libzip");
    nnp_model *m = make_model();
    nnp_error err = {0};
    cr_assert_eq(nnp_keras_save_archive(m, tmp_path("no.keras"), &err), NNP_ERR_UNSUPPORTED);
    cr_assert_not_null(strstr(err.msg, "without HDF5/libzip support"), "%s", err.msg);
    nnp_model_free(m);
}
