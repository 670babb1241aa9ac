/* The training run's state, shared by train.c (setup, the step loop) and trainckpt.c
 * (saving and resuming checkpoints). Private to src/train. */
#ifndef CHAINZ_TRAIN_TRAINER_H
#define CHAINZ_TRAIN_TRAINER_H

#include "chainz/config.h"
#include "chainz/data.h"
#include "chainz/dist.h"
#include "chainz/engine.h"
#include "chainz/metrics.h"
#include "chainz/reducer.h"
#include "chainz/runstate.h"
#include "chainz/schedule.h"
#include "diverge.h"
#include "feed.h"
#include "share.h"
#include "streamplan.h"
#include "taucollect.h"

#ifndef CHAINZ_VERSION
#define CHAINZ_VERSION "dev"
#endif

typedef struct {
    const cz_config *cfg;
    const cz_dist *d;
    cz_data *train, *val;
    uint64_t *train_rows, *val_rows;
    size_t n_train, n_val;
    cz_model m;
    cz_workspace *ws;
    cz_stream_plan plan;     /* the DREG stream and where the tau Jacobian families come from */
    float *params, *grad, *opt;
    float *mean, *std;
    cz_reducer red;          /* the step's gradient and scalar sums, exact or float */
    cz_feed io, vio;
    cz_schedule lr_s, dreg_s;
    size_t steps_per_epoch;
    char ckpt_dir[4200];
    char *config_json;
    uint64_t rows_read;      /* training rows this rank read (the share it computed) */
    long clipped_steps;      /* steps of this process whose gradient --clip-grad-norm scaled */
    int stop_seen;           /* the last step's reduction carried a stop request (a signal) */
    cz_tau_set ts;
    cz_metrics *mx;          /* rank 0 */
    cz_run_lock lock;        /* rank 0: RUN_DIR/run.lock for the whole run */
    cz_data_identity data_id;
    cz_diverge dv;           /* running levels of the loss and DREG terms */
    double layer_sq[CZ_MAX_HIDDEN]; /* this rank's sum of ||S_l||^2 in the step (for the explanation) */
    size_t mem_limit;        /* bytes per rank (0: unknown) */
    char mem_source[160];    /* where the limit comes from */
    cz_share share;          /* chunked inputs held once per node (share.h) */
} trainer;

/* Where training stands: written into checkpoints, restored on resume. */
typedef struct {
    long epoch, position, step;    /* epoch in progress, batches done in it, steps done */
    double lambda, lr;
    double sums[5];                /* the epoch's loss, dreg, correct, abs error, samples */
} progress_state;

/* config_json: this run's configuration, the BLIS that computes it and its stream. */
int cz_trainer_config_json(trainer *t, cz_error *err);
/* A checkpoint of where training stands (rank 0 writes; collective). */
int cz_trainer_save(trainer *t, const progress_state *ps, cz_error *err);
/* --resume: the chosen checkpoint's parameters, moments, statistics, stream and progress
 * (nothing when auto finds none; collective). */
int cz_trainer_resume(trainer *t, progress_state *ps, cz_error *err);

#endif
