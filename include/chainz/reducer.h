/* The gradient reduction of one optimizer step (docs/DESIGN.md section 2): begin, add each
 * chunk this rank computed (its float gradient and its scalars), finish with ONE allreduce
 * that returns, on every rank, the gradient summed over all chunks divided by the global
 * sample count, the scalars summed, the number of bad values and the OR of a failure flag.
 *
 * Exact mode (--reduce exact): each value v is rounded to the nearest multiple of 2^-50
 * (ties to even), q = round(v * 2^50), and kept as two int64 limbs, q = hi * 2^46 + lo,
 * with hi = round(v * 2^4) and lo = q - hi * 2^46 in [-2^45, 2^45]. The split is a few
 * double operations and the "add 1.5 * 2^52" rounding trick, so the compiler vectorises it
 * (no frexp). The limbs of all chunks are summed as integers (MPI_SUM on MPI_UINT64_T; the
 * limbs are not normalised between chunks: carry-save), which is associative: the sums do
 * not depend on how the chunks are grouped across ranks or ordered. Carries are normalised
 * once, at the end (lo into [0, 2^46)), and hi * 2^46 + lo is rounded to double (correctly
 * when |sum| < 2^49, within an ulp beyond; always a function of the exact sum).
 *   Range: |v| < 2^42 (4.4e12); larger values, NaN and Inf are counted as bad, not summed.
 *   Resolution: 2^-50 (8.9e-16).
 *   Capacity: |hi| <= 2^46 and |lo| <= 2^45 per value, so the limb sums of K chunks stay
 *   within int64 while K <= CZ_REDUCER_MAX_CHUNKS = 2^17 - 1 chunks per step, whatever the
 *   number of ranks (each chunk is added on one rank; a rank without chunks adds zeros).
 *   cz_reducer_init refuses more.
 * The per-chunk scalars travel in the same message, each chunk in its own slots as the
 * double's bits (one rank writes a chunk's slots, every other rank adds zero: the integer
 * sum is the bits), then are added in chunk order: the same doubles in the same order on
 * any number of ranks, and no range limit (a loss sum of large regression targets).
 *
 * Float mode (--reduce float): plain float sums and MPI_SUM on floats (not reproducible
 * across rank counts); the scalars and flags then take a second, small allreduce. */
#ifndef CHAINZ_REDUCER_H
#define CHAINZ_REDUCER_H

#include <stddef.h>
#include <stdint.h>
#include "chainz/dist.h"
#include "chainz/error.h"

#define CZ_REDUCER_RANGE 0x1p42     /* |v| < 2^42 */
#define CZ_REDUCER_RANGE_TEXT "4.4e12"
#define CZ_REDUCER_FRAC_BITS 50     /* resolution 2^-50 */
#define CZ_REDUCER_LIMB_BITS 46     /* q = hi * 2^46 + lo */
#define CZ_REDUCER_MAX_CHUNKS 131071 /* 2^17 - 1 chunks per step */

/* Up to two ranges of the flat buffer whose values become final together (a layer's
 * weights, and its bias and coefficients). */
typedef struct {
    size_t off[2], len[2];
} cz_bucket;
#define CZ_REDUCER_MAX_BUCKETS 40

typedef struct {
    int exact;
    size_t n, n_sc, max_chunks;
    size_t chunks;   /* chunks of the step in progress */
    int fresh;       /* nothing added since begin: the first chunk stores instead of adding */
    /* exact: [lo n][hi n][tail]; float: [tail]. tail = [bad][failed][scalars chunks x n_sc] */
    uint64_t *msg;
    float *fsum;     /* float mode: [n] */
    /* overlap (exact mode): the buckets in the order they become final, how many of this
     * step are posted, and their requests (2 per range: lo and hi) */
    cz_bucket buckets[CZ_REDUCER_MAX_BUCKETS];
    size_t n_buckets, posted;
    cz_dist_req req[4 * CZ_REDUCER_MAX_BUCKETS];
} cz_reducer;

typedef struct {
    long bad;        /* values NaN, infinite or out of range, over all ranks (exact mode) */
    int failed;      /* some rank called cz_reducer_fail in this step */
} cz_reduced;

/* n values per chunk, n_sc scalars per chunk, at most max_chunks chunks per step.
 * @return 0; CZ_EINVAL when exact and max_chunks > CZ_REDUCER_MAX_CHUNKS; CZ_ENOMEM. */
int cz_reducer_init(cz_reducer *r, size_t n, size_t n_sc, size_t max_chunks, int exact, cz_error *err);
void cz_reducer_free(cz_reducer *r); /* NULL-safe */
/* A new step of `chunks` chunks (<= max_chunks), every rank the same. */
void cz_reducer_begin(cz_reducer *r, size_t chunks);
/* Adds chunk `chunk` (< chunks): g [n] and sc [n_sc]. @return the number of bad values of
 * g (always 0 in float mode); they are not summed. */
long cz_reducer_add(cz_reducer *r, size_t chunk, const float *g, const double *sc);
/* This rank failed in this step: every rank learns it from cz_reducer_finish. */
void cz_reducer_fail(cz_reducer *r);
/* The one allreduce, then grad [n] = sum / samples (float) and sc [n_sc] = the scalars
 * summed in chunk order. Collective. @return 0 or CZ_ERUNTIME (MPI). */
int cz_reducer_finish(cz_reducer *r, const cz_dist *d, double samples, float *grad, double *sc, cz_reduced *res,
                      cz_error *err);

/* ---- overlap: the last chunk's gradient reduced bucket by bucket (exact mode) ----
 * With buckets set, the values of a rank's last chunk of the step are added bucket by
 * bucket as the backward pass finishes them, and each bucket's limbs start their sum at
 * once (MPI_Iallreduce), while the layers below are still computed. Every rank posts every
 * bucket in the same order: cz_reducer_finish posts those a rank did not (no chunk, or a
 * failure), then sums the tail (bad count, flag, scalars: one message) and waits. The
 * sums are the same integers as without buckets, so the bits do not change. */
/* @return 0, or CZ_EINVAL in float mode or beyond CZ_REDUCER_MAX_BUCKETS (then no overlap). */
int cz_reducer_set_buckets(cz_reducer *r, const cz_bucket *b, size_t n, cz_error *err);
/* Adds the next bucket's ranges of g (the chunk being computed) and starts their sum.
 * @return the bad values among them; *rc receives an MPI failure. */
long cz_reducer_post_next(cz_reducer *r, const cz_dist *d, const float *g, int *rc, cz_error *err);
/* The chunk whose buckets were posted is complete: its scalars. */
void cz_reducer_chunk_done(cz_reducer *r, size_t chunk, const double *sc);

/* The two halves of finish without MPI (what the allreduce computes, for tests):
 * dst's message += src's (both exact, or both float, begun with the same chunks). */
void cz_reducer_merge(cz_reducer *dst, const cz_reducer *src);
/* After the sum: the outputs of cz_reducer_finish. */
void cz_reducer_result(cz_reducer *r, double samples, float *grad, double *sc, cz_reduced *res);
/* Exact mode, after the sum: value i's exact sum, normalised, q = hi * 2^46 + lo with
 * 0 <= lo < 2^46 (in units of 2^-50). */
void cz_reducer_limbs(const cz_reducer *r, size_t i, int64_t *hi, uint64_t *lo);

#endif
