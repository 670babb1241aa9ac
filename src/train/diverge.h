/* Divergence caught early: a step whose task loss or DREG term (per sample) exceeds
 * `factor` times its running level is explained in a warning; factor^2 times stops the
 * run with the explanation, before the update is applied. The level is a geometric running mean (the mean of log10 values, 1/16 new
 * value per step after the first 8 steps), never below the first step's value: a term
 * that fell a long way and rises again to where it started is not called divergence.
 * Every rank sees the same reduced scalars, so every rank decides the same way. A
 * resumed run starts a fresh level. Private to src/train. */
#ifndef CHAINZ_TRAIN_DIVERGE_H
#define CHAINZ_TRAIN_DIVERGE_H

#include <stddef.h>

#include "chainz/config.h"
#include "chainz/error.h"
#include "chainz/model.h"

enum { CZ_DV_LOSS, CZ_DV_DREG, CZ_DV_N };

typedef struct {
    double level[CZ_DV_N]; /* log10 running level */
    double first[CZ_DV_N]; /* log10 of the first value seen */
    long n[CZ_DV_N];       /* values seen */
    long warned[CZ_DV_N];  /* 1 + the epoch of the last warning (one per term and epoch) */
} cz_diverge;

/* Feeds one step's per-sample values (a term <= 0, e.g. DREG at lambda 0 without the
 * stream, is skipped). @return -1 if no term jumped, else the term (CZ_DV_LOSS or
 * CZ_DV_DREG) with *ratio = value / reference. factor <= 0 disables the check. */
int cz_diverge_check(cz_diverge *dv, double factor, const double value[CZ_DV_N], double *ratio);
/* The reference a value is compared with (not log). */
double cz_diverge_reference(const cz_diverge *dv, int term);

/* The warning (stop 0) or stop (1) message, in err (CZ_ERUNTIME): the term, its value against the reference, the step and
 * epoch (1-based), each hidden layer's mean ||S_l||_F^2 (layer_sq [H] per sample, NULL
 * without the Jacobian stream) and largest cubic coefficient, and what to try. */
int cz_diverge_explain(const cz_diverge *dv, int term, double value, double ratio, long step, long epoch,
                       double lambda, int stop, const cz_model *m, const float *params, const double *layer_sq, const cz_config *cfg,
                       cz_error *err);

/* The stop message (CZ_ERUNTIME) for a summed gradient with a NaN or Inf: the first such
 * value of g[0..n), the parameter it belongs to ("layer 2 poly [46, a3]") and the step. */
int cz_diverge_overflow(const cz_model *m, const float *g, size_t n, long step, cz_error *err);

#endif
