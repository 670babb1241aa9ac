/* chainz predict (docs/DESIGN.md section 7.2): a trained model on a batch of rows with the
 * label-free per-sample norms, and the drift monitor against the training run's
 * histograms. Rows are split into chunks of `batch` rows, each rank predicting a
 * contiguous share of the chunks (so every chunk is computed alike, and the output has the
 * same bytes, whatever the number of ranks); rank 0 gathers the outputs and writes them. */
#ifndef CHAINZ_PREDICT_H
#define CHAINZ_PREDICT_H

#include "chainz/dist.h"
#include "chainz/error.h"

typedef struct {
    const char *model;     /* a checkpoint or a run directory (its newest that verifies) */
    const char *data;      /* chainz-data, plain HDF5 or CSV (chainz/featsrc.h) */
    const char *dataset;   /* --dataset (plain HDF5), "" for the default */
    const char *out;       /* PRED.h5 (chainz/predout.h) */
    const char *json;      /* "" or the summary as JSON */
    const char *reference; /* "" or a run directory (or its metrics.h5) */
    int norms;             /* 0: --no-norms (predictions only) */
    long batch;            /* rows per library call and per chunk */
    int threads;
    double drift_threshold, drift_alpha, drift_d_min;
} cz_predict_opts;

/* Collective. *flagged = 1 when the drift monitor flagged the batch (any family).
 * @return 0, or the agreed code (CZ_EINVAL for bad input, named). */
int cz_predict(const cz_predict_opts *o, const cz_dist *d, int *flagged, cz_error *err);

/* `chainz predict ...` (argv[0] == "predict", src/cli/cmd_predict.c), after MPI and BLIS
 * are set up. @return the exit status: 0, 1 usage or input error, 2 runtime failure,
 * 3 drift flagged with --fail-on-drift. */
int cz_cmd_predict(int argc, char **argv, const cz_dist *d);

#endif
