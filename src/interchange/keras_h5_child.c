/* The HDF5 reader process. The HDF5 library crashes (SIGSEGV in its global
 * heap reader) or loops forever on some damaged files, and a library must
 * not take its host down with it: a file is read by a child process (fork)
 * that opens it and answers the loader's requests (does a link exist, a
 * string attribute, open a group, count its links, a dataset's values) over
 * a socket. The child only calls HDF5 and plain C, resets every signal
 * handler and leaves with _exit (no atexit handler, no stdio flush of the
 * parent's buffers). The parent gives it a time limit for all its answers
 * together, kills it past the limit, and reaps it on every path; a child that
 * died, exited or was killed fails every later request, and nnpi_h5r_end
 * says so in the file's error. The socket is written with MSG_NOSIGNAL: a
 * child that dies mid-request costs the parent no SIGPIPE. */
#ifdef NNP_HAVE_KERAS_FILES
#include "interchange/keras_file_internal.h"
#include "nnplug/status.h"
#include "nnplug/tensor.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The child reads requests on this descriptor (the others are closed). */
#define CHILD_FD 3
/* No answer is larger (an attribute's strings are limited far below). */
#define MAX_FRAME ((uint32_t)1 << 30)
/* Socket buffers large enough that a weight streams in few system calls. */
#define SOCK_BUF (1 << 20)

enum op { OP_OPEN = 1, OP_ATTR, OP_EXISTS, OP_GROUP, OP_NLINKS, OP_READ, OP_VALUES, OP_CLOSE };

/* How the child failed. */
enum fail { FAIL_NONE, FAIL_SIGNAL, FAIL_EXIT, FAIL_GONE, FAIL_TIME, FAIL_PROTOCOL };

struct nnpi_h5r {
    pid_t pid;          /* 0 once reaped */
    int fd;             /* our end of the socket, -1 once closed */
    const char *origin;
    double limit;       /* seconds, for the message */
    int64_t left_ns;    /* what is left of the limit */
    enum fail failed;
    int code;           /* the signal or exit status */
    char reason[NNP_ERROR_MSG_MAX]; /* the text of the last answer: HDF5's reason for a
                                     * refusal, or the message of a refused read */
    unsigned char *buf; /* the last answer */
    size_t cap;
    bool no_vm_read;    /* process_vm_readv is refused here */
};

/* ---- messages: [u32 length][body], little helpers on both sides ----------- */

typedef struct wbuf {
    unsigned char *p;
    size_t n, cap;
    bool oom;
} wbuf;

static void put(wbuf *b, const void *d, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put_u32(wbuf *b, uint32_t v) { put(b, &v, sizeof v); }
static void put_i64(wbuf *b, int64_t v) { put(b, &v, sizeof v); }

static void put_str(wbuf *b, const char *s)
{
    size_t n = strlen(s);
    put_u32(b, (uint32_t)n);
    put(b, s, n);
}

/* Starts a message: room for its length, then the kind (op or status). */
static void begin(wbuf *b, int32_t kind)
{
    b->n = 0;
    put_u32(b, 0);
    put(b, &kind, sizeof kind);
}

static void finish(wbuf *b)
{
    uint32_t n = (uint32_t)(b->n - 4);
    if (!b->oom)
        memcpy(b->p, &n, sizeof n);
}

typedef struct rbuf {
    const unsigned char *p;
    size_t n;
    bool bad;
} rbuf;

static void get(rbuf *b, void *d, size_t n)
{
    if (b->bad || b->n < n) {
        b->bad = true;
        memset(d, 0, n);
        return;
    }
    memcpy(d, b->p, n);
    b->p += n;
    b->n -= n;
}

static uint32_t get_u32(rbuf *b)
{
    uint32_t v;
    get(b, &v, sizeof v);
    return v;
}

static int64_t get_i64(rbuf *b)
{
    int64_t v;
    get(b, &v, sizeof v);
    return v;
}

/* A string (malloc'ed, NUL-terminated); NULL when malformed or out of memory. */
static char *get_str(rbuf *b)
{
    uint32_t n = get_u32(b);
    if (b->bad || b->n < n) {
        b->bad = true;
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (s) {
        memcpy(s, b->p, n);
        s[n] = 0;
    }
    b->p += n;
    b->n -= n;
    return s;
}

/* A string into buf, cut to fit. */
static void get_text(rbuf *b, char *buf, size_t size)
{
    uint32_t n = get_u32(b);
    if (b->bad || b->n < n) {
        b->bad = true;
        buf[0] = 0;
        return;
    }
    size_t k = n < size ? n : size - 1;
    memcpy(buf, b->p, k);
    buf[k] = 0;
    b->p += n;
    b->n -= n;
}

/* ---- the child -------------------------------------------------------------- */

/* Sends (out) or receives all n bytes; false once the parent is gone. */
static bool child_io(int fd, void *data, size_t n, bool out)
{
    unsigned char *p = data;
    while (n > 0) {
        ssize_t k = out ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* The child as a bare worker: default signal dispositions (a host's crash
 * handler must not run here), nothing blocked, no core file, gone with its
 * parent, a CPU limit in case the parent cannot kill it, and no descriptor
 * but stdin/stdout/stderr and the socket. */
static void child_setup(int fd, pid_t parent, double limit)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int s = 1; s < NSIG; s++) {
        /* what the parent ignores stays ignored (SIGHUP under nohup) */
        struct sigaction old;
        if (s != SIGKILL && s != SIGSTOP && sigaction(s, NULL, &old) == 0 &&
            old.sa_handler != SIG_IGN && old.sa_handler != SIG_DFL)
            sigaction(s, &dfl, NULL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct rlimit core = {0, 0};
    setrlimit(RLIMIT_CORE, &core);
    rlim_t cpu = (rlim_t)ceil(limit) + 2;
    struct rlimit cpu_limit = {cpu, cpu + 1};
    setrlimit(RLIMIT_CPU, &cpu_limit);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    if (fd != CHILD_FD) {
        if (dup2(fd, CHILD_FD) < 0)
            _exit(1);
        close(fd);
    }
    if (close_range(CHILD_FD + 1, ~0U, 0) != 0) {
        long max = sysconf(_SC_OPEN_MAX);
        for (long i = CHILD_FD + 1; i < (max > 0 && max < 65536 ? max : 65536); i++)
            close((int)i);
    }
}

static void send_reply(int fd, wbuf *b)
{
    finish(b);
    if (b->oom || !child_io(fd, b->p, b->n, true))
        _exit(3);
}

/* An error answer: the status and its text. */
static void reply_status(int fd, wbuf *b, nnp_status st, const char *text)
{
    begin(b, (int32_t)st);
    put_str(b, text);
    send_reply(fd, b);
}

static void serve_attr(int fd, wbuf *b, hid_t obj, const char *name)
{
    nnpi_strv v;
    bool found;
    nnp_error err = {0};
    nnp_status st = nnpi_h5_attr_strings(obj, name, &v, &found, &err);
    if (st) {
        reply_status(fd, b, st, err.msg);
        return;
    }
    begin(b, NNP_OK);
    put_str(b, "");
    put_u32(b, found);
    put_u32(b, (uint32_t)v.n);
    for (int i = 0; i < v.n; i++)
        put_str(b, v.s[i]);
    nnpi_strv_free(&v);
    send_reply(fd, b);
}

/* The values of the last weight read; the buffer is kept from one read to
 * the next, so that its pages are touched once (fresh pages cost a fault
 * each). The parent copies them with process_vm_readv, or asks for them
 * over the socket (OP_VALUES) where that is refused. */
static void *values;
static size_t values_cap, values_len;

static void serve_read(int fd, wbuf *b, hid_t loc, const char *path, rbuf *req)
{
    nnp_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = NNP_F32;
    t.shape.rank = (int)get_u32(req);
    if (t.shape.rank < 0 || t.shape.rank > NNP_MAX_RANK)
        _exit(3);
    for (int i = 0; i < t.shape.rank; i++)
        t.shape.dims[i] = get_i64(req);
    int64_t numel = nnp_tensor_numel(&t);
    if (req->bad || numel < 0)
        _exit(3);
    t.nbytes = (size_t)numel * sizeof(float);
    if (t.nbytes > values_cap) {
        free(values);
        values_cap = 0;
        if (!(values = malloc(t.nbytes))) {
            reply_status(fd, b, NNP_ERR_NOMEM, "out of memory in the HDF5 reader process");
            return;
        }
        values_cap = t.nbytes;
    }
    t.data = values;
    values_len = 0;
    nnp_error err = {0};
    nnp_status st = nnpi_h5_read_tensor(loc, path, &t, &err);
    if (st) {
        reply_status(fd, b, st, err.msg);
        return;
    }
    values_len = t.nbytes;
    begin(b, NNP_OK);
    put_str(b, "");
    put_i64(b, (int64_t)t.nbytes);
    put_i64(b, (int64_t)(uintptr_t)values);
    send_reply(fd, b);
}

/* One request; false at the end of the conversation. */
static bool serve(int fd, wbuf *b, hid_t *file, const void *data, size_t len)
{
    uint32_t n;
    if (!child_io(fd, &n, sizeof n, false))
        return false;
    unsigned char *msg = n <= MAX_FRAME ? malloc(n ? n : 1) : NULL;
    if (!msg || !child_io(fd, msg, n, false))
        _exit(3);
    rbuf req = {msg, n, false};
    int32_t op;
    get(&req, &op, sizeof op);
    hid_t obj = op == OP_OPEN ? -1 : (hid_t)get_i64(&req);
    if (op != OP_OPEN && obj == (hid_t)NNPI_H5R_ROOT)
        obj = *file;
    char *path = op == OP_OPEN || op == OP_NLINKS || op == OP_VALUES || op == OP_CLOSE
                     ? NULL : get_str(&req);
    char why[256];
    if (req.bad)
        _exit(3);
    switch (op) {
    case OP_OPEN:
        *file = nnpi_h5_open_image(data, len);
        nnpi_h5_reason(why, sizeof why);
        reply_status(fd, b, *file < 0 ? NNP_ERR_FORMAT : NNP_OK, *file < 0 ? why : "");
        break;
    case OP_ATTR:
        serve_attr(fd, b, obj, path);
        break;
    case OP_EXISTS:
        reply_status(fd, b, nnpi_h5_exists(obj, path) ? NNP_OK : NNP_ERR_NOT_FOUND, "");
        break;
    case OP_GROUP: {
        hid_t g = H5Gopen2(obj, path, H5P_DEFAULT);
        nnpi_h5_reason(why, sizeof why);
        begin(b, g < 0 ? NNP_ERR_FORMAT : NNP_OK);
        put_str(b, g < 0 ? why : "");
        put_i64(b, g);
        send_reply(fd, b);
        break;
    }
    case OP_NLINKS: {
        H5G_info_t info;
        bool ok = H5Gget_info(obj, &info) >= 0;
        nnpi_h5_reason(why, sizeof why);
        begin(b, ok ? NNP_OK : NNP_ERR_FORMAT);
        put_str(b, ok ? "" : why);
        put_i64(b, ok ? (int64_t)info.nlinks : 0);
        send_reply(fd, b);
        break;
    }
    case OP_READ:
        serve_read(fd, b, obj, path, &req);
        break;
    case OP_VALUES:   /* the bytes alone */
        if (values_len && !child_io(fd, values, values_len, true))
            _exit(3);
        break;
    case OP_CLOSE:   /* no answer */
        H5Oclose(obj);
        H5Eclear2(H5E_DEFAULT);
        break;
    default:
        _exit(3);
    }
    free(path);
    free(msg);
    return true;
}

static _Noreturn void child_main(int fd, pid_t parent, const void *data, size_t len,
                                 double limit)
{
    child_setup(fd, parent, limit);
    wbuf b = {0};
    hid_t file = -1;
    /* a damaged file names filters HDF5 would look for as plugins: no
     * library is loaded on a file's say */
    H5PLset_loading_state(0);
    /* HDF5's error printing is off (the parent forked inside nnpi_h5_enter);
     * whatever is open goes with the process */
    while (serve(CHILD_FD, &b, &file, data, len))
        ;
    _exit(0);
}

/* ---- the parent ------------------------------------------------------------- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double nnpi_h5r_time_limit(size_t len)
{
    const char *e = getenv("NNP_HDF5_TIME_LIMIT");
    if (e && *e) {
        char *end;
        double v = strtod(e, &end);
        if (*end == 0 && v > 0 && v <= 1e6)
            return v;
    }
    return 10.0 + (double)len / 10e6;
}

/* Waits for the child (reaping it): at most grace_ns, then it is killed. */
static void reap(nnpi_h5r *r, int64_t grace_ns, int *status, bool *have)
{
    *have = false;
    if (r->pid <= 0)
        return;
    const int64_t end = now_ns() + grace_ns;
    long nap = 200000;
    for (;;) {
        pid_t w = waitpid(r->pid, status, WNOHANG);
        if (w == r->pid) {
            *have = true;
            break;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)   /* ECHILD: reaped elsewhere (SIGCHLD ignored by the host) */
            break;
        if (now_ns() >= end) {
            /* still our unreaped child, so the pid is still its own */
            kill(r->pid, SIGKILL);
            while ((w = waitpid(r->pid, status, 0)) < 0 && errno == EINTR)
                ;
            *have = w == r->pid;
            break;
        }
        struct timespec ts = {0, nap};
        nanosleep(&ts, NULL);
        if (nap < 20000000)
            nap *= 2;
    }
    r->pid = 0;
}

static void close_fd(nnpi_h5r *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}

/* The conversation broke (why: FAIL_GONE, FAIL_TIME or FAIL_PROTOCOL): the
 * child is killed unless it is gone already, reaped, and the cause kept. */
static nnp_status broke(nnpi_h5r *r, enum fail why, nnp_error *err)
{
    close_fd(r);
    int status = 0;
    bool have;
    /* a child that closed its end is exiting: a moment to see how */
    reap(r, why == FAIL_GONE ? 2000000000 : 0, &status, &have);
    r->failed = why;
    if (why == FAIL_GONE && have && WIFSIGNALED(status)) {
        r->failed = WTERMSIG(status) == SIGXCPU ? FAIL_TIME : FAIL_SIGNAL;
        r->code = WTERMSIG(status);
    } else if (why == FAIL_GONE && have && WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        r->failed = FAIL_EXIT;
        r->code = WEXITSTATUS(status);
    }
    r->reason[0] = 0;
    return nnp_error_set(err, NNP_ERR_FORMAT, "the HDF5 reader process failed");
}

/* Waits until fd is ready (1), past deadline (0), or poll fails (-1). */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ns();
        if (left <= 0)
            return 0;
        struct timespec ts = {(time_t)(left / 1000000000), (long)(left % 1000000000)};
        struct pollfd p = {fd, events, 0};
        int n = ppoll(&p, 1, &ts, NULL);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* 0, or the failure (FAIL_GONE, FAIL_TIME). */
static enum fail io_all(int fd, void *data, size_t n, bool out, int64_t deadline)
{
    unsigned char *p = data;
    while (n > 0) {
        int ready = wait_fd(fd, out ? POLLOUT : POLLIN, deadline);
        if (ready == 0)
            return FAIL_TIME;
        if (ready < 0)
            return FAIL_GONE;
        ssize_t k = out ? send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT)
                        : recv(fd, p, n, MSG_DONTWAIT);
        if (k < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (k <= 0)
            return FAIL_GONE;   /* EOF, EPIPE, ECONNRESET: the child is gone */
        p += k;
        n -= (size_t)k;
    }
    return FAIL_NONE;
}

/* Sends request req; with ans, receives the answer into it; with raw,
 * receives raw_len bytes there (OP_VALUES). The time counts against the
 * limit. The status is the answer's (its text in r->reason), or
 * NNP_ERR_FORMAT once the child failed. */
static nnp_status exchange(nnpi_h5r *r, wbuf *req, rbuf *ans, void *raw, size_t raw_len,
                           nnp_error *err)
{
    if (r->failed || r->fd < 0)
        return nnp_error_set(err, NNP_ERR_FORMAT, "the HDF5 reader process failed");
    finish(req);
    if (req->oom)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    const int64_t start = now_ns(), deadline = start + r->left_ns;
    enum fail f = io_all(r->fd, req->p, req->n, true, deadline);
    uint32_t n = 0;
    if (f == FAIL_NONE && ans)
        f = io_all(r->fd, &n, sizeof n, false, deadline);
    if (f == FAIL_NONE && ans && (n < 8 || n > MAX_FRAME))
        f = FAIL_PROTOCOL;
    if (f == FAIL_NONE && ans && n > r->cap) {
        unsigned char *p = realloc(r->buf, n);
        if (!p) {
            r->left_ns -= now_ns() - start;
            broke(r, FAIL_PROTOCOL, err);
            return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory (%u bytes)", n);
        }
        r->buf = p;
        r->cap = n;
    }
    if (f == FAIL_NONE && ans)
        f = io_all(r->fd, r->buf, n, false, deadline);
    if (f == FAIL_NONE && raw)
        f = io_all(r->fd, raw, raw_len, false, deadline);
    r->left_ns -= now_ns() - start;
    if (f != FAIL_NONE)
        return broke(r, f, err);
    if (!ans)
        return NNP_OK;
    *ans = (rbuf){r->buf, n, false};
    int32_t code;
    get(ans, &code, sizeof code);
    get_text(ans, r->reason, sizeof r->reason);
    return ans->bad ? broke(r, FAIL_PROTOCOL, err) : (nnp_status)code;
}

static void request(wbuf *b, enum op op, nnpi_h5obj obj, const char *path)
{
    begin(b, (int32_t)op);
    if (op != OP_OPEN)
        put_i64(b, obj);
    if (path)
        put_str(b, path);
}

nnp_status nnpi_h5r_start(const void *data, size_t len, const char *origin, nnpi_h5r **out,
                          nnp_error *err)
{
    *out = NULL;
    nnpi_h5r *r = calloc(1, sizeof *r);
    int sv[2];
    if (!r)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        free(r);
        return nnp_error_set(err, NNP_ERR_IO, "%s: cannot start the HDF5 reader process: %s",
                             origin, strerror(errno));
    }
    int size = SOCK_BUF;
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    r->origin = origin;
    r->limit = nnpi_h5r_time_limit(len);
    r->left_ns = (int64_t)(r->limit * 1e9);
    const pid_t parent = getpid();
    /* inside enter: no other thread of ours is in HDF5 while we fork */
    nnpi_h5_enter();
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        child_main(sv[1], parent, data, len, r->limit);
    }
    int fork_errno = errno;
    nnpi_h5_leave();
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        free(r);
        return nnp_error_set(err, fork_errno == ENOMEM ? NNP_ERR_NOMEM : NNP_ERR_IO,
                             "%s: cannot start the HDF5 reader process: %s", origin,
                             strerror(fork_errno));
    }
    r->pid = pid;
    r->fd = sv[0];
    *out = r;
    return NNP_OK;
}

nnp_status nnpi_h5r_end(nnpi_h5r *r, nnp_status st, nnp_error *err)
{
    if (!r)
        return st;
    close_fd(r);   /* the child reads the end of its requests and exits */
    int status;
    bool have;
    reap(r, 2000000000, &status, &have);
    char how[96];
    switch (r->failed) {
    case FAIL_SIGNAL: snprintf(how, sizeof how, "it crashed: signal %d", r->code); break;
    case FAIL_EXIT: snprintf(how, sizeof how, "it exited with status %d", r->code); break;
    case FAIL_GONE: snprintf(how, sizeof how, "it ended without answering"); break;
    case FAIL_TIME:
        snprintf(how, sizeof how, "it did not finish within %.3g s", r->limit);
        break;
    case FAIL_PROTOCOL: snprintf(how, sizeof how, "it answered out of turn"); break;
    case FAIL_NONE: how[0] = 0; break;
    }
    if (r->failed)
        st = nnp_error_set(err, NNP_ERR_FORMAT, "%s: the HDF5 library failed on this file (%s); "
                           "the file is damaged", r->origin, how);
    free(r->buf);
    free(r);
    return st;
}

nnp_status nnpi_h5r_error(const nnpi_h5r *r, nnp_error *err, nnp_status code, const char *fmt,
                          ...)
{
    char msg[NNP_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (r->reason[0])
        return nnp_error_set(err, code, "%s (HDF5: %s)", msg, r->reason);
    return nnp_error_set(err, code, "%s", msg);
}

nnp_status nnpi_h5r_open_file(nnpi_h5r *r)
{
    wbuf b = {0};
    rbuf ans;
    nnp_error err = {0};
    request(&b, OP_OPEN, 0, NULL);
    nnp_status st = exchange(r, &b, &ans, NULL, 0, &err);
    free(b.p);
    return st;
}

nnp_status nnpi_h5r_attr_strings(nnpi_h5r *r, nnpi_h5obj obj, const char *name, nnpi_strv *v,
                                 bool *found, nnp_error *err)
{
    memset(v, 0, sizeof *v);
    *found = false;
    wbuf b = {0};
    rbuf ans;
    request(&b, OP_ATTR, obj, name);
    nnp_status st = exchange(r, &b, &ans, NULL, 0, err);
    free(b.p);
    if (st) {
        if (!r->failed)   /* the child's message, as nnpi_h5_attr_strings set it */
            nnp_error_set(err, st, "%s", r->reason);
        return st;
    }
    *found = get_u32(&ans) != 0;
    uint32_t n = get_u32(&ans);
    /* each string takes at least its 4-byte length */
    if (ans.bad || n > ans.n / 4)
        return nnp_error_set(err, NNP_ERR_INTERNAL, "attribute '%s': a malformed answer", name);
    if (n == 0)
        return NNP_OK;
    v->s = calloc(n, sizeof *v->s);
    if (!v->s) {
        *found = false;
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < n; i++) {
        v->s[v->n] = get_str(&ans);
        if (!v->s[v->n]) {
            nnpi_strv_free(v);
            *found = false;
            return nnp_error_set(err, ans.bad ? NNP_ERR_INTERNAL : NNP_ERR_NOMEM,
                                 "attribute '%s': %s", name,
                                 ans.bad ? "a malformed answer" : "out of memory");
        }
        v->n++;
    }
    return NNP_OK;
}

nnp_status nnpi_h5r_attr_string(nnpi_h5r *r, nnpi_h5obj obj, const char *name, char **out,
                                nnp_error *err)
{
    *out = NULL;
    nnpi_strv v;
    bool found;
    nnp_status st = nnpi_h5r_attr_strings(r, obj, name, &v, &found, err);
    if (st || !found)
        return st;
    if (v.n != 1) {
        nnpi_strv_free(&v);
        return nnp_error_set(err, NNP_ERR_FORMAT, "attribute '%s' holds %d strings, not one", name,
                             v.n);
    }
    *out = v.s[0];
    free(v.s);
    return NNP_OK;
}

bool nnpi_h5r_exists(nnpi_h5r *r, nnpi_h5obj loc, const char *path)
{
    wbuf b = {0};
    rbuf ans;
    nnp_error err = {0};
    request(&b, OP_EXISTS, loc, path);
    nnp_status st = exchange(r, &b, &ans, NULL, 0, &err);
    free(b.p);
    return st == NNP_OK;
}

nnp_status nnpi_h5r_open_group(nnpi_h5r *r, nnpi_h5obj loc, const char *path, nnpi_h5obj *g)
{
    wbuf b = {0};
    rbuf ans;
    nnp_error err = {0};
    request(&b, OP_GROUP, loc, path);
    nnp_status st = exchange(r, &b, &ans, NULL, 0, &err);
    free(b.p);
    *g = st ? -1 : get_i64(&ans);
    return st;
}

nnp_status nnpi_h5r_nlinks(nnpi_h5r *r, nnpi_h5obj g, uint64_t *n)
{
    wbuf b = {0};
    rbuf ans;
    nnp_error err = {0};
    request(&b, OP_NLINKS, g, NULL);
    nnp_status st = exchange(r, &b, &ans, NULL, 0, &err);
    free(b.p);
    *n = st ? 0 : (uint64_t)get_i64(&ans);
    return st;
}

void nnpi_h5r_close(nnpi_h5r *r, nnpi_h5obj obj)
{
    wbuf b = {0};
    nnp_error err = {0};
    request(&b, OP_CLOSE, obj, NULL);
    exchange(r, &b, NULL, NULL, 0, &err);
    free(b.p);
}

/* Copies len bytes at the child's address into dst: true when all came. */
static bool vm_read(nnpi_h5r *r, void *dst, size_t len, int64_t addr)
{
    if (r->no_vm_read)
        return false;
    unsigned char *p = dst;
    while (len > 0) {
        struct iovec local = {p, len}, remote = {(void *)(uintptr_t)addr, len};
        ssize_t k = process_vm_readv(r->pid, &local, 1, &remote, 1, 0);
        if (k <= 0) {
            if (k < 0 && (errno == EPERM || errno == ENOSYS || errno == EACCES))
                r->no_vm_read = true;
            return false;
        }
        p += k;
        len -= (size_t)k;
        addr += k;
    }
    return true;
}

nnp_status nnpi_h5r_read_tensor(nnpi_h5r *r, nnpi_h5obj loc, const char *path, nnp_tensor *t,
                                nnp_error *err)
{
    if (t->dtype != NNP_F32)
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "the layer's weight is not float32");
    wbuf b = {0};
    rbuf ans;
    request(&b, OP_READ, loc, path);
    put_u32(&b, (uint32_t)t->shape.rank);
    for (int i = 0; i < t->shape.rank; i++)
        put_i64(&b, t->shape.dims[i]);
    nnp_status st = exchange(r, &b, &ans, NULL, 0, err);
    if (st) {
        free(b.p);
        /* a refused read's answer carries the whole message */
        return r->failed ? st : nnp_error_set(err, st, "%s", r->reason);
    }
    int64_t nbytes = get_i64(&ans), addr = get_i64(&ans);
    if (ans.bad || (uint64_t)nbytes != (uint64_t)t->nbytes)
        st = broke(r, FAIL_PROTOCOL, err);
    else if (t->nbytes > 0 && !vm_read(r, t->data, t->nbytes, addr)) {
        request(&b, OP_VALUES, 0, NULL);
        st = exchange(r, &b, NULL, t->data, t->nbytes, err);
    }
    free(b.p);
    return st;
}
#else
typedef int nnpi_keras_h5_child_unused; /* ISO C wants a declaration in every file */
#endif
