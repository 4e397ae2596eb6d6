/* Data-parallel groups: the processes that train one model together, each
 * holding the whole model and a fixed share of every global batch.
 *
 * The group is MPI's (Open MPI under mpirun, or a communicator an
 * application passes in); libnnplug built without MPI has only groups of
 * one process. A NULL group means "this process alone" everywhere.
 *
 * Reproducibility: a global batch is cut into chunks whose bounds depend on
 * the batch size only (nnp_batch_split); sums over the batch are sums of
 * per-chunk partial sums combined by one fixed binary tree over the chunk
 * indices, whichever process holds which chunk. So a run gives the same
 * bits on any number of processes (and threads). */
#ifndef NNPLUG_DIST_H
#define NNPLUG_DIST_H
#include <stdint.h>

#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nnp_group nnp_group;

/* 1 when this libnnplug was built with MPI (CMake NNP_WITH_MPI). */
NNP_API int nnp_mpi_built(void);
/* 1 when an MPI launcher (mpirun, mpiexec) started this process. */
NNP_API int nnp_mpi_launched(void);
/* The group of every process the launcher started (a duplicate of
 * MPI_COMM_WORLD), initializing MPI (MPI_THREAD_FUNNELED) unless the
 * application has. *out = NULL and NNP_OK when the process was not started
 * by an MPI launcher. NNP_ERR_UNSUPPORTED when it was but libnnplug has no
 * MPI. Errors on the group's communicator are returned, not fatal. */
NNP_API nnp_status nnp_group_world(nnp_group **out, nnp_error *err);
/* The group of an application's communicator: comm points to its MPI_Comm
 * (MPI initialized with MPI_THREAD_FUNNELED or more). nnplug works on a
 * duplicate, so its messages never mix with the application's. */
NNP_API nnp_status nnp_group_from_mpi_comm(const void *comm, nnp_group **out, nnp_error *err);
/* Frees the group; finalizes MPI when nnp_group_world initialized it and
 * no group is left. */
NNP_API void nnp_group_free(nnp_group *g);
NNP_API int nnp_group_rank(const nnp_group *g);
NNP_API int nnp_group_size(const nnp_group *g);
/* Ends every process of the group (MPI_Abort) with the exit code: for a
 * failure one process detected alone. Returns only when g is NULL. */
NNP_API void nnp_group_abort(const nnp_group *g, int code);

/* How a global batch is shared: chunks of `chunk` samples (the last one may
 * be shorter), chunk = min(16, ceil(batch / 16)), so a batch of up to 256
 * samples has min(batch, 16) chunks and a larger one ceil(batch / 16).
 * Process r of k holds the chunks [r * n / k, (r + 1) * n / k). */
typedef struct nnp_batch_split {
    int64_t batch;     /* global batch */
    int64_t chunk;     /* samples per chunk */
    int n_chunks;      /* chunks of the global batch */
    int first, count;  /* this process's chunks */
    int64_t offset;    /* its first sample in the global batch */
    int64_t samples;   /* how many it holds */
} nnp_batch_split;

/* The split of `batch` for process `rank` of `size`. NNP_ERR_INVALID when
 * the batch has fewer chunks than there are processes (the message says
 * which batch sizes work). */
NNP_API nnp_status nnp_batch_split_of(int64_t batch, int rank, int size, nnp_batch_split *out,
                                      nnp_error *err);
/* The samples of local chunk i (0 .. count-1): [*begin, *end) within this
 * process's share of the batch. */
NNP_API void nnp_batch_split_chunk(const nnp_batch_split *s, int i, int64_t *begin,
                                   int64_t *end);

/* Reproducible sums: a sum over the chunks of a batch, fed one local chunk
 * at a time in order (nnp_reduce_add), combined by the fixed tree over
 * all chunk indices. dtype NNP_F32 or NNP_F64 (sums in that type); len
 * elements per partial. global != 0: over the group's chunks (a
 * collective: every process of the group calls nnp_reduce_end in the same
 * order); global == 0: over this process's chunks alone. The result is
 * the same bits for any split of the chunks over processes. */
typedef struct nnp_reduction nnp_reduction;
NNP_API nnp_status nnp_reduce_begin(const nnp_group *g, const nnp_batch_split *s, nnp_dtype dtype,
                                    size_t len, int global, nnp_reduction **out,
                                    nnp_error *err);
/* Adds the partial sum of the next local chunk (copied). */
NNP_API void nnp_reduce_add(nnp_reduction *r, const void *partial);
/* The tree: node [lo, hi) of the chunk indices has the children
 * [lo, lo + (hi - lo) / 2) and the rest, and the value left + right; a
 * node's shape below it depends on its size alone. The whole nodes that
 * cover this process's chunks (the smallest set, in chunk order): their
 * number, and up to max of their sizes (in chunks) into sizes. A caller
 * that evaluates those nodes itself (leaves: its chunks' partial sums;
 * a node of s chunks: the node of s / 2 chunks + the node of s - s / 2
 * after it) hands each to nnp_reduce_add_node instead of adding chunk by
 * chunk: the same bits, without a partial sum in memory per chunk. */
NNP_API int nnp_reduce_cover(const nnp_reduction *r, int *sizes, int max);
/* Adds the value of the next `size` local chunks (copied); they must form
 * a node of the tree (nnp_reduce_end reports it otherwise).
 * nnp_reduce_add(r, p) is nnp_reduce_add_node(r, 1, p). */
NNP_API void nnp_reduce_add_node(nnp_reduction *r, int size, const void *value);
/* Writes the total (len elements of the dtype) to out, frees r. Every
 * local chunk must have been added. */
NNP_API nnp_status nnp_reduce_end(nnp_reduction *r, void *out, nnp_error *err);
/* Frees a reduction without ending it (an error path). */
NNP_API void nnp_reduce_free(nnp_reduction *r);

/* Plain element-wise sum over the group (MPI_Allreduce): fast, but its
 * rounding depends on the process count. In place. */
NNP_API nnp_status nnp_group_allreduce_f64(const nnp_group *g, double *x, size_t n,
                                           nnp_error *err);
/* Process root's bytes to every process (all pass the same n). */
NNP_API nnp_status nnp_group_bcast(const nnp_group *g, void *bytes, size_t n, int root,
                                   nnp_error *err);
/* Checks that every process passed the same bytes for `what` (a model's
 * fingerprint, the data's, the build's). NNP_ERR_INVALID naming `what`
 * and the first process that differs from process 0. Collective. */
NNP_API nnp_status nnp_group_agree(const nnp_group *g, const char *what, const void *bytes,
                                   size_t n, nnp_error *err);

#ifdef __cplusplus
}
#endif
#endif
