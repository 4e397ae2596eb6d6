/* Run under mpirun -np K (K = 1..4): tree sums over the chunks of many
 * batch sizes, each process holding its share, must equal bit for bit the
 * tree's definition evaluated over all chunks (which no process count
 * changes), whether chunks are added one by one or as the whole nodes
 * that cover them (nnp_reduce_cover / nnp_reduce_add_node, each node
 * evaluated here); local sums the tree over one's own chunks; fingerprints that
 * differ are named; broadcast. Exit 0 on every process when all hold. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnplug/nnplug.h"

/* elements per sum: LEN, or BIG for some batches (sums over 256 KB are
 * exchanged slice by slice) */
enum { LEN = 257, BIG = 100003 };
static int len = LEN;

/* Chunk i's partial sums: a function of i alone, with wide exponents so
 * that any other order of the additions rounds differently. */
static void leaf(int i, double *d, float *f)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
    for (int k = 0; k < len; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double v = ((double)(x >> 11) / 9007199254740992.0 - 0.5) * ldexp(1.0, (int)(x % 50) - 25);
        d[k] = v;
        f[k] = (float)v;
    }
}

static void ref(int lo, int hi, int base, double *d, float *f)
{
    if (hi - lo == 1) {
        leaf(base + lo, d, f);
        return;
    }
    int mid = lo + (hi - lo) / 2;
    double *rd = malloc(sizeof *rd * (size_t)len);
    float *rf = malloc(sizeof *rf * (size_t)len);
    ref(lo, mid, base, d, f);
    ref(mid, hi, base, rd, rf);
    for (int k = 0; k < len; k++) {
        d[k] += rd[k];
        f[k] += rf[k];
    }
    free(rd);
    free(rf);
}

static int sums(const nnp_group *g, const nnp_batch_split *s, int global, int by_nodes)
{
    nnp_reduction *rd, *rf;
    nnp_error err = {0};
    if (nnp_reduce_begin(g, s, NNP_F64, (size_t)len, global, &rd, &err) ||
        nnp_reduce_begin(g, s, NNP_F32, (size_t)len, global, &rf, &err)) {
        fprintf(stderr, "mpi_group: %s\n", err.msg);
        return 1;
    }
    int sizes[64], nodes = nnp_reduce_cover(rf, sizes, 64);
    if (nodes != nnp_reduce_cover(rd, sizes, 64) || nodes < 1 || nodes > 64) {
        fprintf(stderr, "mpi_group: %d nodes cover %d chunks\n", nodes, s->count);
        return 1;
    }
    double *d = malloc(sizeof *d * (size_t)len * 2), *wd = d + len;
    float *f = malloc(sizeof *f * (size_t)len * 2), *wf = f + len;
    for (int i = 0, k = 0; by_nodes && k < nodes; i += sizes[k++]) {
        ref(0, sizes[k], s->first + i, d, f); /* the subtree of a node of that size */
        nnp_reduce_add_node(rd, sizes[k], d);
        nnp_reduce_add_node(rf, sizes[k], f);
    }
    for (int i = 0; !by_nodes && i < s->count; i++) {
        leaf(s->first + i, d, f);
        nnp_reduce_add(rd, d);
        nnp_reduce_add(rf, f);
    }
    int bad = 0;
    if (nnp_reduce_end(rd, d, &err) || nnp_reduce_end(rf, f, &err)) {
        fprintf(stderr, "mpi_group: %s\n", err.msg);
        bad = 1;
    }
    if (global)
        ref(0, s->n_chunks, 0, wd, wf);
    else
        ref(0, s->count, s->first, wd, wf);
    if (!bad && (memcmp(d, wd, sizeof *d * (size_t)len) || memcmp(f, wf, sizeof *f * (size_t)len))) {
        fprintf(stderr,
                "mpi_group: process %d: batch %lld, %d elements (%s%s): sums differ from the "
                "tree\n",
                nnp_group_rank(g), (long long)s->batch, len, global ? "global" : "local",
                by_nodes ? " by nodes" : "");
        bad = 1;
    }
    free(d);
    free(f);
    return bad;
}

int main(void)
{
    nnp_group *g;
    nnp_error err = {0};
    if (nnp_group_world(&g, &err)) {
        fprintf(stderr, "mpi_group: %s\n", err.msg);
        return 1;
    }
    int rank = nnp_group_rank(g), size = nnp_group_size(g), fails = 0, checks = 0;
    static const int64_t batches[] = {1, 2, 3, 4, 5, 7, 16, 17, 31, 64, 100, 255, 256, 257, 1000, 4099};
    for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
        nnp_batch_split s;
        if (nnp_batch_split_of(batches[b], rank, size, &s, &err)) {
            if (!strstr(err.msg, "cannot be shared")) {
                fprintf(stderr, "mpi_group: %s\n", err.msg);
                fails++;
            }
            continue;
        }
        for (int by_nodes = 0; by_nodes < 2; by_nodes++) {
            len = batches[b] == 64 || batches[b] == 257 ? BIG : LEN;
            fails += sums(g, &s, 1, by_nodes) + sums(g, &s, 0, by_nodes);
            checks += 2;
        }
    }
    /* fingerprints: equal ones pass, a differing process is named */
    char same[16] = "same everywhere", mine[16] = {0};
    snprintf(mine, sizeof mine, "process %d", rank >= 2 ? 2 : 0);
    if (nnp_group_agree(g, "model", same, sizeof same, &err)) {
        fprintf(stderr, "mpi_group: equal bytes refused: %s\n", err.msg);
        fails++;
    }
    nnp_status st = nnp_group_agree(g, "data", mine, sizeof mine, &err);
    if (size > 2 && (st != NNP_ERR_INVALID || !strstr(err.msg, "process 2 of") ||
                     !strstr(err.msg, "another data"))) {
        fprintf(stderr, "mpi_group: a differing process not named: %s\n", err.msg);
        fails++;
    } else if (size <= 2 && st != NNP_OK) {
        fprintf(stderr, "mpi_group: %s\n", err.msg);
        fails++;
    }
    double v = rank == 0 ? 42.5 : -1.0;
    if (nnp_group_bcast(g, &v, sizeof v, 0, &err) || v != 42.5) {
        fprintf(stderr, "mpi_group: broadcast: %s\n", err.msg);
        fails++;
    }
    double x[2] = {rank + 1.0, 1.0};
    if (nnp_group_allreduce_f64(g, x, 2, &err) || x[0] != size * (size + 1) / 2.0 ||
        x[1] != size) {
        fprintf(stderr, "mpi_group: allreduce: %s\n", err.msg);
        fails++;
    }
    if (rank == 0)
        printf("mpi_group: %d processes, %d sums, %s\n", size, checks, fails ? "FAILED" : "ok");
    nnp_group_free(g);
    return fails ? 1 : 0;
}
