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
 * (a step with the stream on). @return 0 or the engine's error. */
int cz_tau_set_collect(cz_tau_set *ts, cz_workspace *ws, const float *params, int n_hidden, size_t nb,
                       cz_error *err);

/* Sums every rank's histograms into rank 0's (collective); the others restart from zero. */
int cz_tau_set_merge(cz_tau_set *ts, const cz_dist *d, cz_error *err);

#endif
