/* The evaluation pass: forward only over rows of a data set on all ranks (each its share
 * of the chunks), with loss, accuracy, mean absolute error and a confusion matrix summed
 * exactly whatever the world size. Used by the training loop (validation after each
 * epoch) and by cz_eval (chainz eval, declared in chainz/train.h). Private to src/train. */
#ifndef CHAINZ_TRAIN_EVAL_H
#define CHAINZ_TRAIN_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "chainz/dist.h"
#include "chainz/engine.h"
#include "chainz/error.h"
#include "chainz/model.h"
#include "feed.h"
#include "taucollect.h"

typedef struct {
    double samples, loss, acc, mae; /* loss, acc, mae: means over the samples */
    uint64_t *confusion;            /* [K x K] (true x predicted), filled when not NULL */
} cz_eval_result;

/* The pass over rows[0..n) of io's data set in chunks of M, on parameters params of m.
 * tau (may be NULL): also collect the per-sample families, which needs a backward pass
 * (lambda 0, stream on) into the scratch gradient buffer grad ([m->n_params]); the
 * histograms are merged into rank 0's. Collective: @return the agreed code; CZ_ERUNTIME
 * for a non-finite loss. */
int cz_eval_pass(const cz_dist *d, cz_workspace *ws, const cz_model *m, const float *params, cz_feed *io,
                 const uint64_t *rows, size_t n, size_t M, cz_eval_result *res, cz_tau_set *tau, float *grad,
                 cz_error *err);

#endif
