/* Everything MPI, behind intent-named wrappers (the only module that includes mpi.h).
 * Collective calls must be made by every rank in the same order. */
#ifndef CHAINZ_DIST_H
#define CHAINZ_DIST_H

#include <stddef.h>
#include <stdint.h>
#include "chainz/error.h"
#include "chainz/fixed.h"

typedef struct {
    int rank, size;
} cz_dist;

int cz_dist_init(int *argc, char ***argv, cz_dist *d, cz_error *err);
void cz_dist_finalize(void);
/* Ends every rank now (a rank that cannot reach the next collective). */
void cz_dist_abort(int code);

/* Every rank passes its status (0 or negative) and message; if any rank failed, all
 * return the lowest failing rank's code with its message (prefixed by its rank), so that
 * every rank stops together with the same message. */
int cz_dist_agree(const cz_dist *d, int status, cz_error *err);

/* Sums fixed-point accumulators over all ranks, in place (exact: integer addition); the
 * tau histograms use it, the step's gradient goes through reducer.h. */
int cz_dist_sum_fixed(const cz_dist *d, cz_fixed_acc *a, cz_error *err);
int cz_dist_sum_float(const cz_dist *d, float *x, size_t n, cz_error *err);
int cz_dist_sum_double(const cz_dist *d, double *x, size_t n, cz_error *err);
int cz_dist_sum_u64(const cz_dist *d, uint64_t *x, size_t n, cz_error *err);
/* A started, not yet finished, collective (an MPI request, held opaquely). */
typedef struct {
    uint64_t h[2];
} cz_dist_req;
/* Starts the in-place sum of x [n] over all ranks (MPI_Iallreduce, MPI_SUM on uint64);
 * x must stay untouched until cz_dist_wait. n < 2^31. Collective (same order on every
 * rank). @return 0 or CZ_ERUNTIME. */
int cz_dist_isum_u64(const cz_dist *d, uint64_t *x, size_t n, cz_dist_req *req, cz_error *err);
/* Starts an all-to-all exchange of floats (MPI_Ialltoallv): rank j receives
 * send[sdispls[j] ..][scounts[j]] into recv at its rdispls[r] from each rank r. Every
 * buffer and array must stay untouched until cz_dist_wait. Collective. */
int cz_dist_iexchange_float(const cz_dist *d, const float *send, const int *scounts, const int *sdispls, float *recv,
                            const int *rcounts, const int *rdispls, cz_dist_req *req, cz_error *err);
/* Starts the in-place gather to all of x's slices (MPI_Iallgatherv): rank r's slice is
 * x[displs[r] ..][counts[r]]. Collective. */
int cz_dist_igather_all_float(const cz_dist *d, float *x, const int *counts, const int *displs, cz_dist_req *req,
                              cz_error *err);
/* Gathers every rank's doubles to every rank (MPI_Allgatherv): rank r's send [counts[r]]
 * lands at recv + displs[r]. Collective. */
int cz_dist_gather_all_double(const cz_dist *d, const double *send, int n, double *recv, const int *counts,
                              const int *displs, cz_error *err);
/* Marks requests as nothing started (MPI_REQUEST_NULL). */
void cz_dist_req_clear(cz_dist_req *reqs, size_t n);
/* Lets started collectives progress (Open MPI moves them only inside MPI calls). */
void cz_dist_progress(cz_dist_req *reqs, size_t n);
/* Waits for every started collective. @return 0 or CZ_ERUNTIME. */
int cz_dist_wait(cz_dist_req *reqs, size_t n, cz_error *err);
int cz_dist_max_double(const cz_dist *d, double *x, size_t n, cz_error *err);
int cz_dist_max_int(const cz_dist *d, int *x, size_t n, cz_error *err);
int cz_dist_bcast(const cz_dist *d, void *buf, size_t bytes, int root, cz_error *err);
/* Gathers every rank's n records of elem_bytes bytes each to rank 0, concatenated in rank
 * order into recv (rank 0 only; room for cap records, may be NULL elsewhere; cap the same on every rank); *total
 * receives the number of records of all ranks (on every rank). A total above cap, or more
 * than INT_MAX records on one rank, is refused by every rank together (CZ_EINVAL), before
 * any data moves. Collective. */
int cz_dist_gather(const cz_dist *d, const void *send, size_t n, size_t elem_bytes, void *recv, size_t cap,
                   size_t *total, cz_error *err);

/* The number of ranks on this rank's node (ranks that share memory). Collective. */
int cz_dist_local_size(const cz_dist *d, int *local, cz_error *err);

/* Memory shared by the ranks of one node (an MPI-3 shared window on the node's
 * communicator, MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)): one copy per node of what
 * every rank reads, e.g. a data set that cannot be mapped from its file. */
typedef struct cz_dist_shared cz_dist_shared;

/* Allocates `bytes` (> 0) shared by this node's ranks: the node's first rank owns them and
 * every rank's *base points at the same bytes; *leader is 1 on that one rank per node,
 * which fills them, then every rank of the node calls cz_dist_node_shared_publish.
 * Collective over the world. @return 0, or CZ_ENOMEM / CZ_ERUNTIME agreed by all ranks
 * (then *sh is NULL). */
int cz_dist_node_shared_alloc(const cz_dist *d, size_t bytes, cz_dist_shared **sh, void **base, int *leader,
                              cz_error *err);
/* Makes what the leader wrote visible to the other ranks of its node (memory
 * synchronization and a barrier of the node). Collective over the node. */
int cz_dist_node_shared_publish(cz_dist_shared *sh, cz_error *err);
/* Frees the window. NULL-safe; collective over the node when sh is not NULL. */
void cz_dist_node_shared_free(cz_dist_shared *sh);

/* Compares a checksum of the parameters across ranks; a mismatch is CZ_ERUNTIME naming
 * the ranks that drifted. An allocation failure on any rank is agreed before the
 * collective, so all ranks return it together. */
int cz_dist_check_replicas(const cz_dist *d, uint64_t checksum, cz_error *err);

double cz_dist_time(void);

#endif
