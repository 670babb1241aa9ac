/* The gradient reduction of one optimizer step (docs/DESIGN.md section 2): begin, add the
 * chunks this rank computes (in increasing order, each gradient written into the buffer
 * cz_reducer_buffer gives), finish. finish returns, on every rank, the gradient summed over
 * all chunks divided by the global sample count, the scalars summed and the OR of a
 * failure flag.
 *
 * Exact mode (--reduce exact, the default): the chunk gradients are added in the fixed
 * binary tree over the chunk indices of chunktree.h, which depends on the step's chunk count
 * alone. A rank adds its own chunks as the tree says (siblings are merged as soon as both
 * are complete) and ends the step holding its cover: a few partial sums. finish sends each
 * owner its slice of every rank's cover (one MPI_Ialltoallv per range of parameters), the
 * owner completes the tree for its slice, divides and sends the slice to every rank
 * (MPI_Iallgatherv): reduce-scatter and allgather, as a ring allreduce moves, with float
 * messages (4 bytes a parameter) and plain float additions, and the same bits on any number
 * of ranks. Float sums have the float range and resolution: no range limit, no rounding to a
 * grid. The owners then also update their slices (below), so each parameter is updated
 * once and the updated parameters, not the gradient, are gathered.
 * The per-chunk scalars travel as the double's bits in their chunk's own slots (one rank
 * writes a chunk's slots, every other rank adds zero: the integer sum is the bits), with
 * the failure and stop flags, in one small MPI_SUM over uint64; they are then added in chunk order: the
 * same doubles in the same order on any number of ranks.
 *
 * Float mode (--reduce float): each rank adds its chunks in order, then MPI_Allreduce on
 * floats (the sum's order depends on the ranks: not reproducible across rank counts). */
#ifndef CHAINZ_REDUCER_H
#define CHAINZ_REDUCER_H

#include <stddef.h>
#include <stdint.h>
#include "chainz/chunktree.h"
#include "chainz/dist.h"
#include "chainz/error.h"

/* Up to two ranges of the flat buffer whose values become final together (a layer's
 * weights, and its bias and coefficients). */
typedef struct {
    size_t off[2], len[2];
} cz_bucket;
#define CZ_REDUCER_MAX_BUCKETS 40
#define CZ_REDUCER_MAX_RANGES (2 * CZ_REDUCER_MAX_BUCKETS)

/* The gradient's sum of squares (for --clip-grad-norm and tau) is summed in fixed blocks
 * of each range, each block in index order, then the blocks in order: the same bits on
 * any number of ranks, each owner summing its own blocks. */
#define CZ_REDUCER_BLOCK 4096

/* One range of parameters as the exchange cuts it: owner j holds [off + sd[j], off + sd[j]
 * + sc[j]) (its slice: whole blocks, the owners rotated by the range's index so that small
 * ranges spread over the ranks), and the int arrays MPI reads while the exchange is in
 * flight. */
typedef struct {
    size_t off, len;
    size_t blk0, nblk; /* its blocks of CZ_REDUCER_BLOCK values in the run's block list */
    int *sc, *sd;    /* slice sizes and starts [P]: what I send each owner, and the gather */
    int *rc, *rd;    /* [kmax x P]: per cover index k, what I receive from each rank, where */
    float *recv;     /* every rank's cover nodes, my slice of each: [node in `all`][my slice] */
} cz_reducer_range;

typedef struct {
    int exact, rank, size;
    int sharded;     /* exact and size > 1: after finish, grad holds my slices only, and the
                      * optimizer updates my slices (cz_reducer_slice, cz_reducer_gather) */
    size_t n, n_sc, max_chunks, last_chunks;
    size_t chunks, c0, c1; /* the step in progress, and my chunks [c0, c1) */
    /* my partial sums: a stack of tree nodes, node k's sum in slot k (n floats each) */
    float *slots;
    size_t n_slots, depth;
    cz_span stack[130];
    size_t push_at, merges; /* the last push: its slot, and how many merges followed it */
    int pushed;      /* the last chunk's leaf is already on the stack (overlap) */
    float *fsum;     /* float mode: [n] */
    uint64_t *tail;  /* [failed][stop][scalars chunks x n_sc] */
    /* the exchange (exact mode, size > 1) */
    size_t *cover_n, *cover_at; /* [P]: rank q's cover size this step, its first index in `all` */
    cz_span *all;    /* every rank's cover, rank by rank [n_all] */
    cz_span *sorted; /* the same, by chunk */
    size_t *order;   /* sorted[i] = all[order[i]] */
    float **parts;
    size_t n_all, all_cap, kmax, kstep;
    int *zeros;      /* [P] */
    cz_bucket buckets[CZ_REDUCER_MAX_BUCKETS];
    size_t n_buckets, posted, bucket_range[CZ_REDUCER_MAX_BUCKETS + 1];
    int overlap;     /* buckets set: the last chunk's are started by cz_reducer_post_next */
    cz_reducer_range ranges[CZ_REDUCER_MAX_RANGES];
    size_t n_ranges;
    cz_dist_req *req; /* per range: kmax exchanges and one gather; then the tail's sum */
    /* the sum of squares: every block's, in order; mine packed; where each block sits in
     * the gathered packed list; the gather's counts and displacements [P] */
    size_t n_blocks, n_mine;
    double *bsq, *bmine, *bpacked;
    size_t *bsrc;
    int *bcount, *bdispl;
} cz_reducer;

typedef struct {
    int failed;      /* some rank called cz_reducer_fail in this step */
    int stop;        /* some rank called cz_reducer_stop in this step */
    double sumsq;    /* the summed gradient's sum of squares (in blocks, see above): the
                      * same on every rank; NaN or Inf when a value is not finite */
} cz_reduced;

/* n values per chunk, n_sc scalars per chunk; steps of at most max_chunks chunks, and also
 * of last_chunks (the smaller last step of an epoch; 0: none); rank of size ranks, each
 * computing the chunks cz_dist_share gives it. Allocates everything a step needs.
 * @return 0, CZ_EINVAL (more than CZ_REDUCER_MAX_CHUNKS chunks, or a slice too large for an
 * MPI count) or CZ_ENOMEM. */
int cz_reducer_init(cz_reducer *r, size_t n, size_t n_sc, size_t max_chunks, size_t last_chunks, int exact, int rank,
                    int size, cz_error *err);
void cz_reducer_free(cz_reducer *r); /* NULL-safe */
/* What cz_reducer_init allocates beyond the per-chunk scalars (the memory estimate): *slots
 * buffers of n floats, and (exact, size > 1) the receive buffers: *nodes cover nodes, each
 * with this rank's slices of every range (cz_reducer_slice_bound floats at most). */
void cz_reducer_plan(size_t max_chunks, size_t last_chunks, int exact, int size, size_t *slots, size_t *nodes);
/* The most floats one rank's slices of n values in n_ranges ranges take in a receive
 * buffer, whatever the ranges' lengths: slices are whole blocks of CZ_REDUCER_BLOCK, so a
 * rank can own up to a block beyond len / size of each range (a range of one block belongs
 * to one rank), and an empty slice still takes one float. */
size_t cz_reducer_slice_bound(size_t n, size_t n_ranges, int size);
#define CZ_REDUCER_MAX_CHUNKS 1048576 /* chunks per step: a sanity bound on the plan and the scalars */
/* A new step of `chunks` chunks, every rank the same; rank q computes share (q + rot) mod
 * size. *c0, *c1: this rank's chunks [c0, c1). @return 0, or CZ_EINVAL for a chunk count
 * other than 0, max_chunks and last_chunks (the buffers were planned for those): then no
 * chunk is this rank's, and the step must not go on. */
int cz_reducer_begin(cz_reducer *r, size_t chunks, long rot, size_t *c0, size_t *c1, cz_error *err);
/* Where the next chunk's gradient is to be written (n floats). */
float *cz_reducer_buffer(cz_reducer *r);
/* Chunk `chunk` (the next of [c0, c1)) is in the buffer, its scalars in sc [n_sc]. */
void cz_reducer_add(cz_reducer *r, size_t chunk, const double *sc);
/* This rank failed in this step: every rank learns it from cz_reducer_finish. */
void cz_reducer_fail(cz_reducer *r);
/* This rank was asked to stop (a signal): every rank learns it from cz_reducer_finish, in
 * the same message, and stops at the next step boundary without a collective of its own. */
void cz_reducer_stop(cz_reducer *r);
/* The exchange, then grad [n] = sum / samples (sharded: my slices only), sc [n_sc] = the
 * scalars summed in chunk order, and the flag and sum of squares in res. Collective.
 * @return 0 or CZ_ERUNTIME (MPI). */
int cz_reducer_finish(cz_reducer *r, const cz_dist *d, double samples, float *grad, double *sc, cz_reduced *res,
                      cz_error *err);

/* ---- overlap: the last chunk's gradient sent bucket by bucket (exact mode) ----
 * With buckets set (they must cover [0, n) exactly once), the rank's last chunk of the step
 * completes its cover bucket by bucket as the backward pass finishes them, and each
 * bucket's exchange starts at once (MPI_Ialltoallv), while the layers below are still
 * computed. Every rank starts every bucket's exchange in the same order: finish starts those
 * a rank did not (no chunk, or a failure). The additions are the same as without buckets,
 * so the bits do not change. Without buckets, [0, n) is one bucket.
 * The buckets also set the ranges of the sum of squares' blocks and of the slices, in every
 * mode and on any number of ranks (the same blocks, so the same sum of squares).
 * @return 0, or CZ_EINVAL beyond CZ_REDUCER_MAX_BUCKETS or when the buckets do not cover
 * [0, n) once. */
int cz_reducer_set_buckets(cz_reducer *r, const cz_bucket *b, size_t n, cz_error *err);
/* The buffer holds the next bucket's final values of the last chunk: start its exchange.
 * *rc receives an MPI failure. */
void cz_reducer_post_next(cz_reducer *r, const cz_dist *d, int *rc, cz_error *err);

/* ---- the update on slices (sharded: exact mode, more than one rank) ----
 * After finish, a sharded reducer's grad holds this rank's slices only: the rank clips and
 * updates those parameters and optimizer moments, then cz_reducer_gather gives every rank
 * the updated parameters (a ZeRO-1 style split of the optimizer's work: each parameter is
 * updated once, on its owner). The moments stay split until a checkpoint gathers them.
 * Not sharded: one slice per range, the whole range. */
/* The number of slices of this rank; slice k is [*off, *off + *len). */
size_t cz_reducer_slices(const cz_reducer *r);
void cz_reducer_slice(const cz_reducer *r, size_t k, size_t *off, size_t *len);
/* Every rank's slices of x [n] to every rank (MPI_Iallgatherv per range, in place); nothing
 * when not sharded. Collective. @return 0 or CZ_ERUNTIME. */
int cz_reducer_gather(cz_reducer *r, const cz_dist *d, float *x, cz_error *err);

/* Without MPI (tests): this rank's cover after its chunks, node k's sum in
 * cz_reducer_node(r, k). */
size_t cz_reducer_cover(const cz_reducer *r, cz_span *nodes);
const float *cz_reducer_node(const cz_reducer *r, size_t k);

#endif
