/* Data-parallel groups (MPI when built with it), the fixed batch split and
 * reproducible tree sums over a batch's chunks (include/nnplug/dist.h).
 *
 * The tree: node [lo, hi) of the chunk indices [0, n) has the children
 * [lo, mid) and [mid, hi), mid = lo + (hi - lo) / 2; a node's value is
 * left + right, a leaf's the chunk's partial sum. A process adds its
 * chunks in order and merges two neighbours on its stack as soon as they
 * are the children of one node, so what is left is the smallest set of
 * whole nodes covering its chunks; the processes exchange those and each
 * evaluates the nodes above them the same way. No sum ever depends on
 * which process held which chunk. */
#include "nnplug/dist.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnplug/status.h"

#ifdef NNP_HAVE_MPI
#include <mpi.h>
#endif

struct nnp_group {
#ifdef NNP_HAVE_MPI
    MPI_Comm comm;
#endif
    int rank, size;
};

#ifdef NNP_HAVE_MPI
static int mpi_ours;      /* MPI_Init came from nnp_group_world */
static int groups_alive;
#endif

int nnp_mpi_built(void)
{
#ifdef NNP_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

int nnp_mpi_launched(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK",
                                       "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]))
            return 1;
    return 0;
}

#ifdef NNP_HAVE_MPI
static nnp_status mpi_error(nnp_error *err, int rc, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS)
        snprintf(msg, sizeof msg, "MPI error %d", rc);
    return nnp_error_set(err, NNP_ERR_INTERNAL, "%s: %s", what, msg);
}

static nnp_status group_of(MPI_Comm comm, nnp_group **out, nnp_error *err)
{
    nnp_group *g = calloc(1, sizeof *g);
    if (!g)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    int rc = MPI_Comm_dup(comm, &g->comm);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_set_errhandler(g->comm, MPI_ERRORS_RETURN);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_rank(g->comm, &g->rank);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_size(g->comm, &g->size);
    if (rc != MPI_SUCCESS) {
        free(g);
        return mpi_error(err, rc, "cannot set up the process group");
    }
    groups_alive++;
    *out = g;
    return NNP_OK;
}
#endif

nnp_status nnp_group_world(nnp_group **out, nnp_error *err)
{
    *out = NULL;
    if (!nnp_mpi_launched())
        return NNP_OK;
#ifdef NNP_HAVE_MPI
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (finalized)
        return nnp_error_set(err, NNP_ERR_INVALID, "MPI was finalized already");
    if (!inited) {
        int provided = 0;
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS)
            return mpi_error(err, rc, "cannot initialize MPI");
        mpi_ours = 1;
    }
    return group_of(MPI_COMM_WORLD, out, err);
#else
    return nnp_error_set(err, NNP_ERR_UNSUPPORTED,
                         "started by an MPI launcher (mpirun), but this nnplug was built "
                         "without MPI (install libopenmpi-dev and rebuild)");
#endif
}

nnp_status nnp_group_from_mpi_comm(const void *comm, nnp_group **out, nnp_error *err)
{
    *out = NULL;
#ifdef NNP_HAVE_MPI
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited)
        return nnp_error_set(err, NNP_ERR_INVALID, "MPI is not initialized");
    if (!comm)
        return nnp_error_set(err, NNP_ERR_INVALID, "no communicator given");
    return group_of(*(const MPI_Comm *)comm, out, err);
#else
    (void)comm;
    return nnp_error_set(err, NNP_ERR_UNSUPPORTED,
                         "this nnplug was built without MPI (install libopenmpi-dev and rebuild)");
#endif
}

void nnp_group_free(nnp_group *g)
{
    if (!g)
        return;
#ifdef NNP_HAVE_MPI
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized)
        MPI_Comm_free(&g->comm);
    if (--groups_alive == 0 && mpi_ours && !finalized) {
        MPI_Finalize();
        mpi_ours = 0;
    }
#endif
    free(g);
}

int nnp_group_rank(const nnp_group *g)
{
    return g ? g->rank : 0;
}

int nnp_group_size(const nnp_group *g)
{
    return g ? g->size : 1;
}

void nnp_group_abort(const nnp_group *g, int code)
{
#ifdef NNP_HAVE_MPI
    if (g)
        MPI_Abort(g->comm, code);
#else
    (void)code;
#endif
    (void)g;
}

/* ---- the batch split ----------------------------------------------------- */

nnp_status nnp_batch_split_of(int64_t batch, int rank, int size, nnp_batch_split *out,
                              nnp_error *err)
{
    memset(out, 0, sizeof *out);
    if (batch < 1 || size < 1 || rank < 0 || rank >= size)
        return nnp_error_set(err, NNP_ERR_INVALID, "bad batch split (batch %lld, process %d of %d)",
                             (long long)batch, rank, size);
    int64_t chunk = (batch + 15) / 16;
    if (chunk > 16)
        chunk = 16;
    int64_t n = (batch + chunk - 1) / chunk;
    if (n > INT_MAX / 2)
        return nnp_error_set(err, NNP_ERR_INVALID, "batch of %lld samples: too large",
                             (long long)batch);
    if (n < size) {
        long long need = size <= 16 ? size : 16LL * (size - 1) + 1;
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "a batch of %lld samples cannot be shared by %d processes: it has "
                             "%lld chunks, one process needs at least one (a batch of at least "
                             "%lld samples works)",
                             (long long)batch, size, (long long)n, need);
    }
    out->batch = batch;
    out->chunk = chunk;
    out->n_chunks = (int)n;
    out->first = (int)((int64_t)rank * n / size);
    int end = (int)((int64_t)(rank + 1) * n / size);
    out->count = end - out->first;
    out->offset = out->first * chunk;
    int64_t stop = (int64_t)end * chunk;
    out->samples = (stop < batch ? stop : batch) - out->offset;
    return NNP_OK;
}

void nnp_batch_split_chunk(const nnp_batch_split *s, int i, int64_t *begin, int64_t *end)
{
    int64_t b = (int64_t)i * s->chunk, e = b + s->chunk;
    if (e > s->samples)
        e = s->samples;
    *begin = b;
    *end = e;
}

/* ---- reproducible sums --------------------------------------------------- */

typedef struct span {
    int lo, hi;
} span;

struct nnp_reduction {
    const nnp_group *g;
    nnp_dtype dtype;
    size_t len, esz;
    int n;            /* leaves of the tree */
    int first, count; /* this process's leaves */
    int global;
    int added, top, cap;
    int bad;          /* a node added that is not the next node of the tree */
    span *nodes;      /* the stack */
    unsigned char *vals; /* cap values of len elements */
    size_t vals_bytes;
};

/* Buffers of finished reductions, kept for the next ones on this thread: a
 * training step runs one reduction after another of the same sizes, and
 * fresh pages would be faulted in every time (several per reduction: the
 * stack, the exchange, the evaluation). */
enum { SPARES = 4 };
static _Thread_local struct spare {
    unsigned char *p;
    size_t bytes;
} spares[SPARES];

static unsigned char *vals_get(size_t bytes)
{
    int best = -1;
    for (int k = 0; k < SPARES; k++)
        if (spares[k].p && spares[k].bytes >= bytes &&
            (best < 0 || spares[k].bytes < spares[best].bytes))
            best = k;
    if (best >= 0) {
        unsigned char *v = spares[best].p;
        spares[best].p = NULL;
        return v;
    }
    return malloc(bytes ? bytes : 1);
}

/* The buffers reduce_end uses and gives back before it returns (no two
 * ends overlap on a thread): one per role, grown to the largest asked for
 * and kept, so a step's exchanges fault no fresh pages in. */
enum { ROLE_TMP, ROLE_SEND, ROLE_RECV, ROLES };
static _Thread_local struct spare roles[ROLES];

static unsigned char *role_get(int role, size_t bytes)
{
    struct spare *b = &roles[role];
    if (b->p && b->bytes >= bytes)
        return b->p;
    free(b->p);
    b->p = malloc(bytes ? bytes : 1);
    b->bytes = b->p ? bytes : 0;
    return b->p;
}

/* Keeps v (of `bytes`) in place of the smallest spare, or frees it. */
static void vals_put(unsigned char *v, size_t bytes)
{
    if (!v)
        return;
    int slot = 0;
    for (int k = 0; k < SPARES; k++) {
        if (!spares[k].p) {
            slot = k;
            break;
        }
        if (spares[k].bytes < spares[slot].bytes)
            slot = k;
    }
    if (spares[slot].p && spares[slot].bytes >= bytes) {
        free(v);
        return;
    }
    free(spares[slot].p);
    spares[slot] = (struct spare){v, bytes};
}

/* Whether [x, y) is a node of the tree over [0, n). */
static int is_node(int n, int x, int y)
{
    int lo = 0, hi = n;
    for (;;) {
        if (lo == x && hi == y)
            return 1;
        if (hi - lo < 2)
            return 0;
        int mid = lo + (hi - lo) / 2;
        if (y <= mid)
            hi = mid;
        else if (x >= mid)
            lo = mid;
        else
            return 0;
    }
}

/* a += b, element-wise, in the reduction's type. */
static void add_into(const nnp_reduction *r, void *a, const void *b)
{
    if (r->dtype == NNP_F64) {
        double *x = a;
        const double *y = b;
        for (size_t i = 0; i < r->len; i++)
            x[i] += y[i];
    } else {
        float *x = a;
        const float *y = b;
        for (size_t i = 0; i < r->len; i++)
            x[i] += y[i];
    }
}

static unsigned char *val(const nnp_reduction *r, int k)
{
    return r->vals + (size_t)k * r->len * r->esz;
}

nnp_status nnp_reduce_begin(const nnp_group *g, const nnp_batch_split *s, nnp_dtype dtype,
                            size_t len, int global, nnp_reduction **out, nnp_error *err)
{
    *out = NULL;
    if (dtype != NNP_F32 && dtype != NNP_F64)
        return nnp_error_set(err, NNP_ERR_INVALID, "reductions sum float32 or float64");
    if (!s || s->count < 1)
        return nnp_error_set(err, NNP_ERR_INVALID, "reduction over no chunk");
    nnp_reduction *r = calloc(1, sizeof *r);
    if (!r)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    r->g = global ? g : NULL;
    r->global = global && nnp_group_size(g) > 1;
    r->dtype = dtype;
    r->len = len;
    r->esz = dtype == NNP_F64 ? sizeof(double) : sizeof(float);
    r->n = r->global ? s->n_chunks : s->count;
    r->first = r->global ? s->first : 0;
    r->count = s->count;
    /* the stack holds at most one node per level, plus the one added */
    int levels = 1;
    while ((1 << (levels - 1)) < r->n)
        levels++;
    r->cap = 2 * levels + 2;
    size_t bytes;
    if (len && ((size_t)r->cap > SIZE_MAX / len / r->esz))
        bytes = SIZE_MAX;
    else
        bytes = (size_t)r->cap * len * r->esz;
    r->nodes = calloc((size_t)r->cap, sizeof *r->nodes);
    r->vals = bytes == SIZE_MAX ? NULL : vals_get(bytes);
    r->vals_bytes = bytes;
    if (!r->nodes || !r->vals) {
        nnp_reduce_free(r);
        return nnp_error_set(err, NNP_ERR_NOMEM,
                             "cannot allocate %d partial sums of %zu elements for a reduction",
                             levels, len);
    }
    *out = r;
    return NNP_OK;
}

/* The smallest set of whole nodes of the tree over [0, n) that covers the
 * leaves [first, first + count): what adding them one by one leaves on the
 * stack. Up to max spans into out; returns how many there are. */
static int cover_of(int n, int first, int count, span *out, int max)
{
    int top = 0, at = first, end = first + count;
    while (at < end) {
        /* the largest node that starts at `at` and ends by `end` */
        int lo = 0, hi = n;
        span best = {at, at + 1};
        for (;;) {
            if (lo == at && hi <= end) {
                best = (span){lo, hi};
                break;
            }
            if (hi - lo < 2)
                break;
            int mid = lo + (hi - lo) / 2;
            if (at < mid)
                hi = mid;
            else
                lo = mid;
        }
        if (top < max)
            out[top] = best;
        top++;
        at = best.hi;
    }
    return top;
}

int nnp_reduce_cover(const nnp_reduction *r, int *sizes, int max)
{
    span sp[64];
    int n = cover_of(r->n, r->first, r->count, sp, 64);
    for (int k = 0; k < n && k < max && k < 64; k++)
        sizes[k] = sp[k].hi - sp[k].lo;
    return n;
}

void nnp_reduce_add_node(nnp_reduction *r, int size, const void *value)
{
    int leaf = r->first + r->added;
    if (size < 1 || size > r->count - r->added || r->top >= r->cap ||
        !is_node(r->n, leaf, leaf + size)) {
        r->bad = 1; /* nnp_reduce_end reports it */
        return;
    }
    r->added += size;
    r->nodes[r->top] = (span){leaf, leaf + size};
    memcpy(val(r, r->top), value, r->len * r->esz);
    r->top++;
    while (r->top >= 2 && r->nodes[r->top - 2].hi == r->nodes[r->top - 1].lo &&
           is_node(r->n, r->nodes[r->top - 2].lo, r->nodes[r->top - 1].hi)) {
        add_into(r, val(r, r->top - 2), val(r, r->top - 1));
        r->nodes[r->top - 2].hi = r->nodes[r->top - 1].hi;
        r->top--;
    }
}

void nnp_reduce_add(nnp_reduction *r, const void *partial)
{
    if (r->added >= r->count || r->top >= r->cap)
        return; /* nnp_reduce_end reports the count */
    nnp_reduce_add_node(r, 1, partial);
}

void nnp_reduce_free(nnp_reduction *r)
{
    if (!r)
        return;
    free(r->nodes);
    vals_put(r->vals, r->vals_bytes);
    free(r);
}

/* The gathered nodes of every process, in chunk order. */
typedef struct cover {
    int n_nodes;
    const span *nodes;
    const unsigned char *vals; /* n_nodes values */
} cover;

/* out = the value of node [lo, hi): a gathered node's, or left + right;
 * tmp: room for one value per level below. */
static nnp_status eval(const nnp_reduction *r, const cover *c, int lo, int hi, void *out,
                       unsigned char *tmp, nnp_error *err)
{
    const size_t bytes = r->len * r->esz;
    for (int k = 0; k < c->n_nodes; k++)
        if (c->nodes[k].lo == lo && c->nodes[k].hi == hi) {
            memcpy(out, c->vals + (size_t)k * bytes, bytes);
            return NNP_OK;
        }
    if (hi - lo < 2)
        return nnp_error_set(err, NNP_ERR_INVALID,
                             "the processes disagree on how the batch is split (chunk %d of %d "
                             "is nobody's)", lo, r->n);
    int mid = lo + (hi - lo) / 2;
    nnp_status st = eval(r, c, lo, mid, out, tmp, err);
    if (!st)
        st = eval(r, c, mid, hi, tmp, tmp + bytes, err);
    if (!st)
        add_into(r, out, tmp);
    return st;
}

/* eval of the whole tree, with its scratch. */
static nnp_status eval_root(const nnp_reduction *r, const cover *c, void *out, nnp_error *err)
{
    int levels = 1;
    while ((1 << (levels - 1)) < r->n)
        levels++;
    const size_t bytes = r->len * r->esz;
    if (bytes && (size_t)levels > SIZE_MAX / bytes)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    unsigned char *tmp = role_get(ROLE_TMP, bytes * (size_t)levels + 1);
    if (!tmp)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    return eval(r, c, 0, r->n, out, tmp, err);
}

#ifdef NNP_HAVE_MPI
/* Every process's cover, known from the split alone (process p of K holds
 * chunks [p n / K, (p + 1) n / K)): counts[p] nodes each, all of them in
 * process order (malloc'd, into *nodes), their number the return value;
 * -1 when out of memory. */
static int all_covers(const nnp_reduction *r, int K, int *counts, span **nodes)
{
    int total = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && !(*nodes = malloc(sizeof **nodes * (size_t)(total ? total : 1))))
            return -1;
        for (int p = 0, at = 0; p < K; p++) {
            int f = (int)((int64_t)p * r->n / K), e = (int)((int64_t)(p + 1) * r->n / K);
            if (pass == 0) {
                counts[p] = cover_of(r->n, f, e - f, NULL, 0);
                total += counts[p];
            } else {
                cover_of(r->n, f, e - f, *nodes + at, counts[p]);
                at += counts[p];
            }
        }
    }
    return total;
}

/* One exchange of every process's cover nodes, each process evaluating the
 * whole tree. */
static nnp_status gather_cover(const nnp_reduction *r, void *out, nnp_error *err)
{
    const nnp_group *g = r->g;
    const int K = g->size;
    int *counts = calloc((size_t)K * 2, sizeof *counts), *displs = counts + K;
    nnp_status st = NNP_OK;
    span *nodes = NULL;
    unsigned char *vals = NULL;
    size_t vbytes = r->len * r->esz;
    if (!counts)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    const int total = all_covers(r, K, counts, &nodes);
    if (total < 0) {
        st = nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (counts[g->rank] != r->top) {
        st = nnp_error_set(err, NNP_ERR_INTERNAL, "reduction: %d nodes, the split says %d",
                           r->top, counts[g->rank]);
        goto done;
    }
    if (vbytes && (size_t)total > (size_t)INT_MAX / vbytes) {
        st = nnp_error_set(err, NNP_ERR_UNSUPPORTED,
                           "a reduction of %zu elements is too large to exchange", r->len);
        goto done;
    }
    if (!(vals = role_get(ROLE_RECV, vbytes * (size_t)total + 1))) {
        st = nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int p = 0, at = 0; p < K; p++) {
        displs[p] = (int)((size_t)at * vbytes);
        at += counts[p];
        counts[p] = (int)((size_t)counts[p] * vbytes);
    }
    int rc = MPI_Allgatherv(r->vals, (int)((size_t)r->top * vbytes), MPI_BYTE, vals, counts,
                            displs, MPI_BYTE, g->comm);
    if (rc != MPI_SUCCESS) {
        st = mpi_error(err, rc, "reduction across processes");
        goto done;
    }
    cover c = {total, nodes, vals};
    st = eval_root(r, &c, out, err);
done:
    free(nodes);
    free(counts);
    return st;
}

/* Large sums, slice by slice: process q evaluates the tree on the q-th
 * K-th of the elements from every process's cover nodes (one all-to-all),
 * then the slices go to everyone (one all-gather): each process sends and
 * receives about 2 (K - 1) / K x the nodes' bytes, as a ring allreduce does,
 * instead of every other process's nodes whole. The tree is element-wise,
 * so the bits are those of gather_cover. */
enum { SLICE_MIN_BYTES = 256 << 10 };

static nnp_status gather_slices(const nnp_reduction *r, void *out, nnp_error *err)
{
    const nnp_group *g = r->g;
    const int K = g->size, me = g->rank;
    const size_t esz = r->esz;
    int *nodes_of = calloc((size_t)K * 5, sizeof *nodes_of);
    int *scount = nodes_of + K, *sdispl = scount + K, *rcount = sdispl + K, *rdispl = rcount + K;
    if (!nodes_of)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    span *nodes = NULL;
    const int total = all_covers(r, K, nodes_of, &nodes);
#define SLICE_LO(q) ((size_t)((uint64_t)(q) * r->len / (uint64_t)K))
    const size_t mine = SLICE_LO(me + 1) - SLICE_LO(me);
    nnp_status st = NNP_OK;
    unsigned char *send = NULL, *recv = NULL;
    if (total >= 0) {
        send = role_get(ROLE_SEND, (size_t)r->top * r->len * esz + 1);
        recv = role_get(ROLE_RECV, (size_t)total * mine * esz + 1);
    }
    if (total < 0 || !send || !recv) {
        st = nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (nodes_of[me] != r->top ||
        (size_t)r->top * r->len * esz > INT_MAX || (size_t)total * mine * esz > INT_MAX ||
        r->len * esz > INT_MAX) {
        st = nnp_error_set(err, NNP_ERR_UNSUPPORTED,
                           "a reduction of %zu elements is too large to exchange", r->len);
        goto done;
    }
    /* to process q: slice q of each of my nodes, node after node */
    size_t at = 0;
    for (int q = 0; q < K; q++) {
        const size_t lo = SLICE_LO(q), n = SLICE_LO(q + 1) - lo;
        sdispl[q] = (int)at;
        for (int k = 0; k < r->top; k++, at += n * esz)
            memcpy(send + at, val(r, k) + lo * esz, n * esz);
        scount[q] = (int)((size_t)r->top * n * esz);
    }
    for (int p = 0, got = 0; p < K; p++) {
        rdispl[p] = (int)((size_t)got * mine * esz);
        rcount[p] = (int)((size_t)nodes_of[p] * mine * esz);
        got += nodes_of[p];
    }
    int rc = MPI_Alltoallv(send, scount, sdispl, MPI_BYTE, recv, rcount, rdispl, MPI_BYTE,
                           g->comm);
    if (rc == MPI_SUCCESS) {
        nnp_reduction slice = *r;
        slice.len = mine;
        cover c = {total, nodes, recv};
        st = eval_root(&slice, &c, (unsigned char *)out + SLICE_LO(me) * esz, err);
        /* a failed evaluation still takes part in the exchange below */
        for (int q = 0; q < K; q++) {
            rcount[q] = (int)((SLICE_LO(q + 1) - SLICE_LO(q)) * esz);
            rdispl[q] = (int)(SLICE_LO(q) * esz);
        }
        rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_BYTE, out, rcount, rdispl, MPI_BYTE, g->comm);
    }
    if (rc != MPI_SUCCESS && !st)
        st = mpi_error(err, rc, "reduction across processes");
#undef SLICE_LO
done:
    free(nodes);
    free(nodes_of);
    return st;
}
#endif

nnp_status nnp_reduce_end(nnp_reduction *r, void *out, nnp_error *err)
{
    nnp_status st = NNP_OK;
    if (r->bad) {
        st = nnp_error_set(err, NNP_ERR_INTERNAL,
                           "reduction: a partial sum was added for chunks that are not the next "
                           "node of the tree (see reduce_cover)");
    } else if (r->added != r->count) {
        st = nnp_error_set(err, NNP_ERR_INTERNAL, "reduction: %d of %d chunks added", r->added,
                           r->count);
    } else if (!r->global) {
        cover c = {r->top, r->nodes, r->vals};
        st = eval_root(r, &c, out, err);
    } else {
#ifdef NNP_HAVE_MPI
        st = r->len * r->esz >= SLICE_MIN_BYTES ? gather_slices(r, out, err)
                                                : gather_cover(r, out, err);
#else
        st = nnp_error_set(err, NNP_ERR_UNSUPPORTED, "built without MPI");
#endif
    }
    nnp_reduce_free(r);
    return st;
}

/* ---- other collectives --------------------------------------------------- */

nnp_status nnp_group_allreduce_f64(const nnp_group *g, double *x, size_t n, nnp_error *err)
{
    if (nnp_group_size(g) == 1)
        return NNP_OK;
#ifdef NNP_HAVE_MPI
    if (n > INT_MAX)
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "allreduce of %zu elements", n);
    int rc = MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_DOUBLE, MPI_SUM, g->comm);
    return rc == MPI_SUCCESS ? NNP_OK : mpi_error(err, rc, "sum across processes");
#else
    (void)x;
    (void)n;
    return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "built without MPI");
#endif
}

nnp_status nnp_group_bcast(const nnp_group *g, void *bytes, size_t n, int root, nnp_error *err)
{
    if (nnp_group_size(g) == 1)
        return NNP_OK;
#ifdef NNP_HAVE_MPI
    if (n > INT_MAX)
        return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "broadcast of %zu bytes", n);
    int rc = MPI_Bcast(bytes, (int)n, MPI_BYTE, root, g->comm);
    return rc == MPI_SUCCESS ? NNP_OK : mpi_error(err, rc, "broadcast");
#else
    (void)bytes;
    (void)n;
    (void)root;
    return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "built without MPI");
#endif
}

/* FNV-1a, 64 bits: a fingerprint, not a defence against an adversary. */
static uint64_t fnv1a(const void *bytes, size_t n)
{
    const unsigned char *p = bytes;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

nnp_status nnp_group_agree(const nnp_group *g, const char *what, const void *bytes, size_t n,
                           nnp_error *err)
{
    if (nnp_group_size(g) == 1)
        return NNP_OK;
#ifdef NNP_HAVE_MPI
    uint64_t mine[2] = {fnv1a(bytes, n), (uint64_t)n};
    uint64_t *all = malloc(sizeof mine * (size_t)g->size);
    if (!all)
        return nnp_error_set(err, NNP_ERR_NOMEM, "out of memory");
    int rc = MPI_Allgather(mine, 2, MPI_UINT64_T, all, 2, MPI_UINT64_T, g->comm);
    nnp_status st = NNP_OK;
    if (rc != MPI_SUCCESS)
        st = mpi_error(err, rc, "comparing processes");
    for (int p = 1; !st && p < g->size; p++)
        if (all[2 * p] != all[0] || all[2 * p + 1] != all[1])
            st = nnp_error_set(err, NNP_ERR_INVALID,
                               "process %d of %d has another %s than process 0", p, g->size,
                               what);
    free(all);
    return st;
#else
    (void)what;
    (void)bytes;
    (void)n;
    return nnp_error_set(err, NNP_ERR_UNSUPPORTED, "built without MPI");
#endif
}
