/* The data feed of the training and evaluation loops: rows of a data set cut into chunks
 * of --micro-batch samples, the contiguous share of the chunks each rank computes, one
 * chunk's features (standardized) and labels, the feature statistics, and the sum of
 * per-chunk scalars in chunk order.
 * Invariant: every quantity that reaches the model is independent of the world size
 * (statistics computed by rank 0 in one order and broadcast; scalars summed per chunk,
 * then in chunk order). Private to src/train. */
#ifndef CHAINZ_TRAIN_FEED_H
#define CHAINZ_TRAIN_FEED_H

#include <stddef.h>
#include <stdint.h>

#include "chainz/data.h"
#include "chainz/chunktree.h"
#include "chainz/dist.h"
#include "chainz/error.h"

/* scalar slots of a chunk, after the gradient */
enum { CZ_SC_LOSS, CZ_SC_DREG, CZ_SC_CORRECT, CZ_SC_ABSERR, CZ_SC_N };

/* Samples of one evaluation or training pass, as rows of the file, and the buffers one
 * chunk needs. */
typedef struct {
    cz_data *ds;
    const float *mean, *std; /* NULL: raw features */
    float clip;              /* standardized values clipped to [-clip, clip] (0: off) */
    size_t d;
    float *x;                /* [M x d] */
    int32_t *yc;
    float *yv;
    uint64_t *keys, *rows;   /* [M] */
} cz_feed;

/* Buffers for chunks of up to M rows of ds; mean/std (borrowed, [d]) standardize the
 * features, or NULL. @return 0 or CZ_ENOMEM (then cz_feed_free still applies). */
int cz_feed_init(cz_feed *io, cz_data *ds, size_t M, const float *mean, const float *std, cz_error *err);
/* NULL-safe; also on a zeroed or partly initialized feed. */
void cz_feed_free(cz_feed *io);

/* Reads rows io->rows[0..n) into io->x (standardized) and their labels. @return 0 or the
 * data set's error. */
int cz_feed_load(cz_feed *io, size_t n, cz_error *err);


/* Reads every row of rows[0..n) once (each rank its share of the chunks of M, into x of
 * [M x d]), so that a non-finite value stops the run before the first step. Collective:
 * @return the agreed code. */
int cz_feed_check_rows(const cz_dist *d, cz_data *ds, float *x, const uint64_t *rows, size_t n, size_t M,
                       cz_error *err);

/* Mean and standard deviation per feature ([d] each) over rows[0..n), computed by rank 0
 * in one fixed order and broadcast: identical whatever the world size. Rank 0 also names,
 * on stdout, the features whose training values lie beyond clip standard deviations (the
 * ones clipping changes; with clip 0, those beyond 10). Collective. */
int cz_feed_stats(const cz_dist *d, cz_data *ds, const uint64_t *rows, size_t n, double clip, float *mean,
                  float *std, cz_error *err);

/* The validation rows held out of a data set of N rows: perm [N] becomes the held-out
 * rows (the first n_hold, ascending) then the training rows (ascending). n_hold =
 * floor(fraction * N). Rows are drawn by a permutation seeded with `seed`; with class
 * labels (labels != NULL, classes > 0) and stratified != 0, each class gives its share
 * (largest remainder, so the total is exactly n_hold). @return 0, or CZ_EINVAL when
 * nothing would be held out or trained on, or CZ_ENOMEM. */
int cz_feed_holdout(uint64_t *perm, size_t N, double fraction, uint64_t seed, const int32_t *labels, int classes,
                    int stratified, size_t *n_hold, cz_error *err);

/* Sums per-chunk scalars per_chunk [C x CZ_SC_N] (each chunk's slots filled by the one rank
 * that computed it, zero elsewhere) over ranks, then in chunk order into out. Collective. */
int cz_feed_sum_scalars(const cz_dist *d, double *per_chunk, size_t C, double out[CZ_SC_N], cz_error *err);

#endif
