/* Reading a run's metrics file (RUN_DIR/metrics.h5), for `chainz tau` and for anyone who
 * wants a run's history and gradient-norm statistics without HDF5.
 *
 * The file (docs/DESIGN.md section 3) is written by rank 0 of `chainz train` and replaced
 * atomically after each epoch, so a reader always sees a complete file, also while the
 * run goes on. Its layout, version 1:
 *   root attrs  format = "chainz-metrics", version = 1, families = "a,b,c" (comma-separated),
 *               alpha, gamma (the histogram's relative accuracy and bin ratio), config (JSON)
 *   /history/{epoch, step, train_loss, dreg, lambda, lr, train_acc, val_loss, val_acc,
 *             val_mae, seconds}                 float64 [E]   (val_* NaN without validation)
 *   /tau/<family>/counts                        uint64 [E, bins]
 *   /tau/<family>/edges                         float64 [bins + 1]: edges[0] = 0 is the zero
 *               bin's lower edge; bin i covers (edges[i], edges[i+1]]
 *   /tau/<family>/{count, mean, p50, p90, p99, max, tau}   float64 [E], tau = p99 / mean
 * where <family> may be nested ("jacobian/layer_1").
 *
 * Invariants of a loaded cz_metrics_data: every per-epoch array has n_epochs elements, every
 * family has the same n_bins; all arrays are views into two allocations owned by the
 * struct, released by cz_metrics_data_free. */
#ifndef CHAINZ_METRICS_READ_H
#define CHAINZ_METRICS_READ_H

#include <stddef.h>
#include <stdint.h>
#include "chainz/error.h"

#define CZ_METRICS_FORMAT "chainz-metrics"
#define CZ_METRICS_VERSION 1
#define CZ_METRICS_FILE "metrics.h5" /* its name inside a run directory */

typedef struct {
    char name[128]; /* "input_grad", "jacobian/layer_2" */
    /* [n_epochs] each: the epoch's histogram summary */
    double *count, *mean, *p50, *p90, *p99, *max, *tau;
    uint64_t *last_counts; /* [n_bins]: the last epoch's histogram (all 0 when n_epochs == 0) */
    double *edges;         /* [n_bins + 1] */
} cz_metrics_family;

typedef struct {
    char path[4096]; /* the file that was read */
    long version;
    double alpha, gamma; /* NaN when the file does not say */
    char *config;        /* the run's configuration as JSON ("" when absent) */
    size_t n_epochs, n_bins;
    /* history, [n_epochs] each */
    double *epoch, *step, *train_loss, *dreg, *lambda, *lr, *train_acc, *val_loss, *val_acc,
        *val_mae, *seconds;
    int n_families; /* in the order of the families attribute */
    cz_metrics_family *family;
    double *arena;          /* behind every double array above */
    uint64_t *count_arena;  /* behind every last_counts */
} cz_metrics_data;

/* Loads and validates a metrics file: path_or_run_dir is the file itself or a run directory
 * (then RUN_DIR/metrics.h5). Checks the format name, the version, that every listed family
 * has all its datasets and that all lengths agree; messages name the file and the problem.
 * On failure *out is left empty (safe to free).
 * @return 0; CZ_EINVAL for a missing, foreign or inconsistent file; CZ_EIO when HDF5
 * fails to read a file that looked right; CZ_ENOMEM. */
int cz_metrics_load(const char *path_or_run_dir, cz_metrics_data *out, cz_error *err);
/* Releases what cz_metrics_load allocated and empties *d. NULL-safe, idempotent. */
void cz_metrics_data_free(cz_metrics_data *d);
/* @return the index of the family called name, or -1 if the file has none. */
int cz_metrics_family_index(const cz_metrics_data *d, const char *name);

/* `chainz tau RUN_DIR... [--family NAME[,NAME]] [--plot OUT.png|OUT.svg] [--csv OUT.csv]`
 * (argv[0] == "tau"): per-epoch tables, a comparison of runs, a gnuplot figure.
 * @return the exit status: 0 done, 1 usage or input error, 2 runtime failure. */
int cz_cmd_tau(int argc, char **argv);

#endif
