/* What the training loop tells the user and writes per epoch: the progress line (one line
 * redrawn on a terminal, timestamped lines at --log-seconds otherwise), and the end of an
 * epoch (a line of history.jsonl, a row of metrics.h5, the console summary with the tau
 * of every family), and at the end of the run each rank's share of the rows read. JSON
 * numbers are written as null, never nan or inf. Only rank 0 prints; only
 * cz_report_rows_read is collective. Private to src/train. */
#ifndef CHAINZ_TRAIN_REPORT_H
#define CHAINZ_TRAIN_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "chainz/dist.h"
#include "chainz/error.h"
#include "chainz/metrics.h"
#include "taucollect.h"

/* a JSON number ("%.9g"), or null for nan and inf (JSON has neither); @return buf */
const char *cz_report_json_num(char *buf, size_t len, double v);

typedef struct {
    int rank;               /* only rank 0 prints */
    int tty;                /* stderr is a terminal: redraw one line there */
    int epochs;
    size_t steps_per_epoch;
    double log_seconds;     /* without a terminal: a line at most this often */
    double t0;              /* cz_dist_time() at the start of the run */
    double last_log;        /* time of the last line or redraw (start: t0) */
} cz_progress;

/* The progress after step s (1-based) of epoch (0-based): samples since t0, the epoch's
 * loss and dreg sums over seen samples. force: print now (the epoch's last step). */
void cz_progress_show(cz_progress *p, long epoch, size_t s, double samples, double loss, double dreg,
                      double seen, int force);
/* Ends the redrawn line of an epoch (terminal only). */
void cz_progress_end_epoch(const cz_progress *p);

/* One finished epoch. */
typedef struct {
    long epoch;             /* 0-based */
    int epochs;
    long step;              /* optimizer steps done */
    double lambda, lr;      /* of the epoch's last step */
    const double *sums;     /* [5] the epoch's loss, dreg, correct, abs error, samples (> 0) */
    int has_val;            /* validation below is set */
    double val_loss, val_acc, val_mae;
    double secs;            /* the epoch's wall time */
    const cz_tau_set *tau;  /* the merged histograms, or NULL without --tau */
} cz_epoch_report;

/* One history.jsonl line (with its newline) of a history row in cz_history_names order:
 * what cz_report_epoch appends, and what a rebuild from metrics.h5 writes. */
void cz_report_history_line(char *line, size_t len, const double row[CZ_HISTORY_FIELDS]);

/* history.jsonl found damaged on resume (why says how): the file is renamed
 * PATH.damaged (never deleted) and rewritten with the lines of epochs 1..epochs: its own
 * intact lines, and mx's rows for the epochs it lost; warnings on stdout name what was
 * wrong and any epoch neither has. */
int cz_report_rebuild_history(const char *path, long epochs, const cz_metrics *mx, const char *why,
                              cz_error *err);

/* Appends the epoch's line to hist (synced; path for the message) and its row to mx, and
 * prints the summary. @return 0, or CZ_EIO / the metrics error (the summary is printed
 * anyway). */
int cz_report_epoch(const cz_epoch_report *e, FILE *hist, const char *hist_path, cz_metrics *mx,
                    cz_error *err);

/* Prints (rank 0) the training rows each rank read, rows_read being this rank's, and
 * their total over steps: together one pass over the data per epoch. Collective: @return
 * the agreed code. */
int cz_report_rows_read(const cz_dist *d, uint64_t rows_read, long steps, cz_error *err);

#endif
