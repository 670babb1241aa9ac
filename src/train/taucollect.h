/* Tau collection: the per-epoch histograms of gradient norms (docs/DESIGN.md section 3)
 * that training and evaluation record, by family: input gradient, parameter gradient (one
 * value per step, training only), per-sample gradient, and the Jacobian of each hidden
 * layer. Each rank fills its own histograms from the chunks it computes; merging is an
 * exact sum (counts and fixed-point sums; max by MAX), so 1, 2 or 3 ranks give the same
 * bits. Private to src/train. */
#ifndef CHAINZ_TRAIN_TAUCOLLECT_H
#define CHAINZ_TRAIN_TAUCOLLECT_H

#include <stddef.h>
#include <stdint.h>

#include "chainz/dist.h"
#include "chainz/engine.h"
#include "chainz/error.h"
#include "chainz/fixed.h"
#include "chainz/hist.h"
#include "chainz/jacnorm.h"

/* families, in the order of cz_tau_set.h and .names; the Jacobians follow, one per layer */
enum { CZ_TAU_INPUT, CZ_TAU_PARAM, CZ_TAU_SAMPLE, CZ_TAU_JACOBIAN };

typedef struct {
    int nf;                      /* families: CZ_TAU_JACOBIAN + hidden layers */
    char (*names)[64];           /* [nf] "input_grad", ..., "jacobian/layer_1", ... */
    cz_hist *h;                  /* [nf], this rank's share (rank 0: the merged partial too) */
    double *in_norm, *sg_norm;   /* [M] scratch */
    uint64_t *pack;              /* [nf * (CZ_HIST_BINS + 1)] */
    double *maxes;               /* [nf] */
    cz_fixed_acc sums;           /* [nf] */
    /* the per-sample norms themselves (chainz eval --tau-out), kept when keep_cap > 0:
     * records of cz_tau_set_kept_words(ts) 8-byte words, [0] the row (uint64), then one
     * double per per-sample family in family order without the parameter family */
    uint64_t *kept;              /* [keep_cap x words] */
    size_t n_kept, keep_cap;
    /* the layer-Jacobian families from a seeded subsample (cz_tau_set_sampler_init) */
    cz_jacnorm *jn;              /* the exact norms' scratch (NULL: no subsample) */
    double frac;                 /* the fraction chosen */
} cz_tau_set;

/* Empty histograms for a model of n_hidden layers and chunks of up to M samples;
 * with_param = 0 names the parameter family "unused" (evaluation). @return 0 or CZ_ENOMEM
 * (then cz_tau_set_free still applies). */
int cz_tau_set_init(cz_tau_set *ts, int n_hidden, size_t M, int with_param, cz_error *err);
/* NULL-safe; also on a zeroed set. */
void cz_tau_set_free(cz_tau_set *ts);
/* Every histogram back to empty (a new epoch). */
void cz_tau_set_reset(cz_tau_set *ts);

/* Adds the per-sample families of the chunk of nb samples the workspace just computed
 * (a step with grad; a stream only for `jacobian`); the layer-Jacobian families only when
 * `jacobian` is set: the workspace's stream is then exact (or gram), never probe estimates
 * (those families come from cz_tau_set_collect_sampled). @return 0 or the engine's error. */
int cz_tau_set_collect(cz_tau_set *ts, cz_workspace *ws, const float *params, int n_hidden, size_t nb,
                       int jacobian, cz_error *err);

/* The Jacobian families from a subsample: each sample is chosen with probability frac by
 * its key (the same on any rank count), its norms exact over its active units
 * (chainz/jacnorm.h) at width d (width CZ_STREAM_EXACT) or n_1 (CZ_STREAM_GRAM). Again
 * (a resume that changed them): the old scratch is replaced. @return 0 or the error of
 * cz_jacnorm_new. */
int cz_tau_set_sampler_init(cz_tau_set *ts, const cz_model *m, cz_stream_mode width, double frac, cz_error *err);
/* Adds the Jacobian norms of the chosen samples of the chunk of nb samples the workspace
 * just computed (its D, dropout masks included, as the step saw them); keys [nb].
 * @return 0 or the engine's error (CZ_EINVAL: no step, nb beyond it). */
int cz_tau_set_collect_sampled(cz_tau_set *ts, const cz_workspace *ws, const float *params, const uint64_t *keys,
                               size_t nb, cz_error *err);

/* Words of one kept record: the row and every per-sample family (nf - 1). */
size_t cz_tau_set_kept_words(const cz_tau_set *ts);
/* Room to keep the norms of up to cap samples (this rank's share). @return 0 or CZ_ENOMEM. */
int cz_tau_set_keep_init(cz_tau_set *ts, size_t cap, cz_error *err);
/* Keeps the norms of the chunk cz_tau_set_collect just added, sample b as row rows[b].
 * @return 0, or CZ_ERUNTIME past the room given to cz_tau_set_keep_init. */
int cz_tau_set_keep(cz_tau_set *ts, cz_workspace *ws, int n_hidden, const uint64_t *rows, size_t nb,
                    cz_error *err);

/* Sums every rank's histograms into rank 0's (collective); the others restart from zero. */
int cz_tau_set_merge(cz_tau_set *ts, const cz_dist *d, cz_error *err);

#endif
