/* The training and evaluation loops over MPI ranks (docs/DESIGN.md section 2).
 * Global batch k of an epoch is cut into fixed-size chunks of --micro-batch samples;
 * rank r computes a contiguous share of the chunks; chunk gradients are summed exactly
 * (two-limb fixed point, one integer MPI sum: reducer.h) and divided by the GLOBAL sample count, so that
 * any number of ranks and threads trains the same parameters bit for bit. */
#ifndef CHAINZ_TRAIN_H
#define CHAINZ_TRAIN_H

#include <signal.h>

#include "chainz/config.h"
#include "chainz/dist.h"

/* Set (to the signal number) by the program's signal handlers; the training loop checks it
 * at every step boundary with a MAX reduction, so one signalled rank is enough: all ranks
 * write the same checkpoint and cz_train returns CZ_ESTOPPED. */
extern volatile sig_atomic_t cz_stop_requested;

/* @return 0, CZ_ESTOPPED (checkpointed on a signal), or an error with err set. */
int cz_train(const cz_config *cfg, int head_given, const cz_dist *d, cz_error *err);

typedef struct {
    const char *model;      /* checkpoint file, or a run directory (uses its latest) */
    const char *data;
    const char *json;       /* "" or path for the JSON report */
    long micro_batch;
    int threads;
    int tau;                /* also the gradient-norm statistics (tau) on this set */
    const char *tau_out;    /* "" or path: also every sample's norms (chainz/norms.h); implies tau */
    size_t max_memory;      /* bytes per rank (0: what the node has free) */
} cz_eval_opts;

int cz_eval(const cz_eval_opts *o, const cz_dist *d, cz_error *err);

#endif
