/* The cost of reproducible sums against MPI_Allreduce, under mpirun:
 *
 *   mpirun -np K build/bin/reduce_bench [BATCH]
 *
 * For gradient arrays of 1 K to 4 M floats and a global batch of BATCH
 * samples (default 256: 16 chunks), each process holds the partial sums
 * of its chunks; the reproducible sum (nnp_reduce_*: a fixed tree over the
 * chunks, the covers of every process exchanged with MPI_Allgatherv) is
 * timed against what a process-count-dependent data-parallel step does:
 * summing its chunks locally, then one MPI_Allreduce. Then the exchange
 * alone: each process hands the whole tree nodes that cover its chunks
 * (nnp_reduce_cover / nnp_reduce_add_node: what a kind that evaluates its
 * nodes in its own kernels, as Dense does, hands over; sums over 256 KB
 * go slice by slice) against one MPI_Allreduce of the array. Medians of
 * REPS (default 15) rounds; process 0 prints one line per size. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnplug/nnplug.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm comm = MPI_COMM_WORLD;
    nnp_group *g = NULL;
    nnp_error err = {0};
    if (nnp_group_from_mpi_comm(&comm, &g, &err)) {
        fprintf(stderr, "reduce_bench: %s\n", err.msg);
        return 1;
    }
    int64_t batch = argc > 1 ? atoll(argv[1]) : 256;
    int reps = getenv("REPS") ? atoi(getenv("REPS")) : 15;
    int rank = nnp_group_rank(g), size = nnp_group_size(g);
    nnp_batch_split s;
    if (nnp_batch_split_of(batch, rank, size, &s, &err)) {
        fprintf(stderr, "reduce_bench: %s\n", err.msg);
        return 1;
    }
    if (rank == 0)
        printf("%d processes, batch %lld (%d chunks, %d to %d per process)\n"
               "%10s %14s %14s %8s %14s %14s %8s\n", size, (long long)batch, s.n_chunks,
               s.n_chunks / size, (s.n_chunks + size - 1) / size, "floats", "tree ms",
               "allreduce ms", "ratio", "nodes ms", "allreduce ms", "ratio");
    static const size_t sizes[] = {1 << 10, 1 << 14, 1 << 17, 1 << 20, 1 << 22};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        float *parts = malloc(sizeof(float) * n * (size_t)s.count), *out = malloc(sizeof(float) * n);
        double *t_tree = malloc(sizeof(double) * (size_t)reps);
        double *t_ar = malloc(sizeof(double) * (size_t)reps);
        double *t_node = malloc(sizeof(double) * (size_t)reps);
        double *t_ar1 = malloc(sizeof(double) * (size_t)reps);
        for (size_t i = 0; i < n * (size_t)s.count; i++)
            parts[i] = (float)((i * 2654435761u) % 1000) * 1e-3f;
        for (int r = 0; r < reps; r++) {
            MPI_Barrier(comm);
            double t0 = MPI_Wtime();
            nnp_reduction *red;
            if (nnp_reduce_begin(g, &s, NNP_F32, n, 1, &red, &err)) {
                fprintf(stderr, "reduce_bench: %s\n", err.msg);
                return 1;
            }
            for (int c = 0; c < s.count; c++)
                nnp_reduce_add(red, parts + (size_t)c * n);
            if (nnp_reduce_end(red, out, &err)) {
                fprintf(stderr, "reduce_bench: %s\n", err.msg);
                return 1;
            }
            double t1 = MPI_Wtime();
            MPI_Barrier(comm);
            double t2 = MPI_Wtime();
            memcpy(out, parts, sizeof(float) * n);
            for (int c = 1; c < s.count; c++)
                for (size_t i = 0; i < n; i++)
                    out[i] += parts[(size_t)c * n + i];
            MPI_Allreduce(MPI_IN_PLACE, out, (int)n, MPI_FLOAT, MPI_SUM, comm);
            double t3 = MPI_Wtime();
            t_tree[r] = (t1 - t0) * 1e3;
            t_ar[r] = (t3 - t2) * 1e3;
            /* the exchange alone: cover nodes (values: the first chunks'
               partials, as good as any) against one allreduce */
            MPI_Barrier(comm);
            t0 = MPI_Wtime();
            if (nnp_reduce_begin(g, &s, NNP_F32, n, 1, &red, &err)) {
                fprintf(stderr, "reduce_bench: %s\n", err.msg);
                return 1;
            }
            int cover[64], nc = nnp_reduce_cover(red, cover, 64);
            for (int k = 0; k < nc && k < 64; k++)
                nnp_reduce_add_node(red, cover[k], parts + (size_t)(k % s.count) * n);
            if (nnp_reduce_end(red, out, &err)) {
                fprintf(stderr, "reduce_bench: %s\n", err.msg);
                return 1;
            }
            t1 = MPI_Wtime();
            MPI_Barrier(comm);
            t2 = MPI_Wtime();
            MPI_Allreduce(MPI_IN_PLACE, out, (int)n, MPI_FLOAT, MPI_SUM, comm);
            t3 = MPI_Wtime();
            t_node[r] = (t1 - t0) * 1e3;
            t_ar1[r] = (t3 - t2) * 1e3;
        }
        qsort(t_node, (size_t)reps, sizeof(double), cmp_double);
        qsort(t_ar1, (size_t)reps, sizeof(double), cmp_double);
        qsort(t_tree, (size_t)reps, sizeof(double), cmp_double);
        qsort(t_ar, (size_t)reps, sizeof(double), cmp_double);
        if (rank == 0)
            printf("%10zu %14.3f %14.3f %8.2f %14.3f %14.3f %8.2f\n", n, t_tree[reps / 2],
                   t_ar[reps / 2], t_tree[reps / 2] / t_ar[reps / 2], t_node[reps / 2],
                   t_ar1[reps / 2], t_node[reps / 2] / t_ar1[reps / 2]);
        free(parts);
        free(out);
        free(t_tree);
        free(t_ar);
        free(t_node);
        free(t_ar1);
    }
    nnp_group_free(g);
    MPI_Finalize();
    return 0;
}
