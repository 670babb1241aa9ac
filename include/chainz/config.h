/* The whole training configuration: what the CLI parses, what rank 0 echoes at start
 * and keeps with the run (config.json, checkpoint attributes). */
#ifndef CHAINZ_CONFIG_H
#define CHAINZ_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include "chainz/engine.h"
#include "chainz/model.h"
#include "chainz/optim.h"
#include "chainz/schedule.h"

typedef enum { CZ_REDUCE_EXACT, CZ_REDUCE_FLOAT } cz_reduce_mode;

/* BLIS threads per rank: never more than this, nor more than 4 x the cores of the node
 * (1000 threads on 2 ranks hung past 120 s and no longer answered SIGTERM). */
#define CZ_MAX_THREADS 256

typedef struct {
    char data[4096], val[4096], out[4096];
    double holdout;            /* fraction of --data held out for validation (0: none) */
    int standardize;           /* z-score features with training-set statistics */
    double clip_z;             /* clip standardized features to [-clip_z, clip_z] (0: off) */
    int clip_z_given;          /* --clip-z was on the command line */
    int holdout_random;        /* --holdout-split random: the unstratified draw of chainz < 0.4 */

    cz_model_spec model;       /* d and classes come from the data file */
    char layers[256];          /* as given, e.g. "512,512" */
    char acts[256];            /* as given, e.g. "poly" or "poly,relu" */

    double dreg;               /* constant lambda (when no schedule) */
    int dreg_by_default;       /* --dreg not given: 0.01 if every hidden layer is poly (a CR
                                  network), else 0, so a baseline is what its name says */
    char dreg_schedule[128];   /* "" or SHAPE:START:END */
    char dreg_range[64];       /* "" (whole run) or FROM:TO */
    char dreg_warmup[64];      /* "" or epochs / "Ns" steps with lambda = 0 */
    cz_stream_mode dreg_mode;  /* the Jacobian stream: exact, gram, probe or auto */
    int dreg_probes;           /* K directions per sample in probe mode */
    int dreg_probes_given;
    double tau_jacobian_fraction; /* samples with Jacobian norms when the DREG stream is not
                                     exact (0: auto, about a quarter of a step) */

    cz_optim_spec optim;
    double lr, lr_min;
    double clip_grad_norm;     /* clip the global averaged gradient to this L2 norm (0: off) */
    cz_shape lr_shape;
    long warmup_steps;

    int epochs;
    long batch, micro_batch;
    uint64_t seed;
    int threads;
    cz_reduce_mode reduce;
    double log_seconds;        /* interval of plain log lines without a terminal */
    long max_steps;            /* stop after this many steps in total (0: no limit) */
    int tau;                   /* record the per-epoch gradient-norm histograms (metrics.h5) */
    double divergence_factor;  /* stop when a step's loss or DREG exceeds this many times its
                                  running level (0: off) */

    long ckpt_every_steps;     /* checkpoint every N optimizer steps (0: off) */
    int ckpt_every_epochs;     /* checkpoint every E epochs (0: off) */
    int keep;                  /* keep the newest K checkpoints */
    long keep_every;           /* also keep every checkpoint whose step is a multiple of M (0: none) */
    char resume[4096];         /* "" (fresh run), "auto" or a checkpoint path */
    size_t max_memory;         /* bytes per rank the run may use (0: what the node has free) */
} cz_config;

void cz_config_defaults(cz_config *c);
/* Writes the configuration as one JSON object; a non-finite number is written as null
 * (JSON has no nan or inf). @return bytes needed (like snprintf). */
size_t cz_config_json(const cz_config *c, char *buf, size_t len);
/* "512,512" -> widths; "poly" or "poly,relu" -> one act per layer (a single name applies
 * to every layer). */
int cz_config_parse_model(cz_config *c, cz_error *err);

#endif
