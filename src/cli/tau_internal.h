/* `chainz tau`, private to src/cli: the runs and the family columns shown for them, shared
 * by the command (cmd_tau.c: options, loading, the choice of families), the text tables
 * (tau_table.c: one run, a comparison of runs) and the files (tau_files.c: CSV and the
 * gnuplot figure). Invariant of a cz_tau_view: every run is loaded with at least one epoch,
 * and fam[s * n_runs + r] is the index of slot s's family in run r (-1: the run has none). */
#ifndef CHAINZ_CLI_TAU_INTERNAL_H
#define CHAINZ_CLI_TAU_INTERNAL_H

#include <stddef.h>
#include <stdio.h>

#include "chainz/error.h"
#include "chainz/metrics_read.h"

enum { CELL = 48, NAME = 128, STATS = 6 };

/* ---- the runs and the family columns ("slots") shown for them ---- */

typedef struct {
    int n_runs;
    cz_metrics_data *run; /* [n_runs] */
    char (*label)[64];    /* [n_runs]: the run directory's name */
    int n_slots;
    char (*slot)[NAME];   /* [n_slots]: the family shown in column group s */
    int *fam;             /* [n_slots * n_runs]: its index in run r, -1 if the run has none */
} cz_tau_view;

/* The family of slot s in run r, or NULL when the run has none. */
const cz_metrics_family *cz_tau_fam_of(const cz_tau_view *v, int s, int r);
/* A string into a fixed buffer, cut to fit. */
void cz_tau_copy(char *dst, size_t len, const char *src);

/* The per-epoch table of one run; the side-by-side comparison of several and its summary.
 * @return 0 or CZ_ENOMEM. */
int cz_tau_print_one(const cz_tau_view *v, FILE *f);
int cz_tau_print_many(const cz_tau_view *v, FILE *f);

/* The directory that will hold path must exist and be writable (opt names the option in
 * the message). @return 0 or CZ_EINVAL. */
int cz_tau_check_out_dir(const char *opt, const char *path, cz_error *err);
/* One row per run, epoch and family, written under a temporary name and renamed. */
int cz_tau_write_csv(const cz_tau_view *v, const char *out, cz_error *err);
/* --plot's checks, before any work: the format by extension (*svg 1, 0 png), gnuplot's
 * path into gnuplot[len]. @return 0 or CZ_EINVAL. */
int cz_tau_plot_check(const char *out, int *svg, char *gnuplot, size_t len, cz_error *err);
/* Draws the figure to out (renamed into place when complete): tau per epoch of every run
 * and slot, and the complementary CDF of the first slot's last-epoch histogram per run
 * (over the bins that hold data), one colour per run. keep_dir: NULL or "" (the script and
 * its data in a temporary directory, removed), or an existing directory that keeps
 * plot.gp, tau.dat and ccdf.dat (plot.gp then redraws out when run by hand). term receives
 * gnuplot's terminal. */
int cz_tau_plot(const cz_tau_view *v, const char *out, int svg, const char *gnuplot, const char *keep_dir,
                char *term, size_t term_len, cz_error *err);

#endif
