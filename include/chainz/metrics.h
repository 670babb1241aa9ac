/* The run's metrics file (RUN_DIR/metrics.h5, format "chainz-metrics"), written by rank 0:
 *   /history/{epoch, step, train_loss, dreg, lambda, lr, train_acc, val_loss, val_acc,
 *             val_mae, seconds}                        float64 [E]  (val_* NaN without validation)
 *   /tau/<family>/counts                               uint64 [E, CZ_HIST_BINS] (deflate)
 *   /tau/<family>/edges                                float64 [CZ_HIST_BINS + 1]
 *   /tau/<family>/{count, mean, p50, p90, p99, max, tau}  float64 [E]
 *   attrs: format, version, families (comma list), alpha, gamma, config (JSON)
 * The whole file is rewritten under a temporary name and renamed after every epoch, so a
 * reader (h5py, h5dump, chainz tau) always sees a complete file while the run goes on,
 * and a crash never leaves a half-written one. On resume the rows of epochs the
 * checkpoint has not completed (an abandoned attempt's) are dropped. Each epoch's histogram
 * chunks are deflated once (append or load) and kept deflated, so a rewrite's cost hardly
 * grows with the number of earlier epochs. */
#ifndef CHAINZ_METRICS_H
#define CHAINZ_METRICS_H

#include "chainz/error.h"
#include "chainz/hist.h"

#define CZ_HISTORY_FIELDS 11
extern const char *const cz_history_names[CZ_HISTORY_FIELDS];

typedef struct cz_metrics cz_metrics;

/* Starts the run's metrics. keep_epochs < 0: a fresh file; otherwise the existing file's
 * rows with epoch <= keep_epochs are kept (a missing file is not an error).
 * @return CZ_EINVAL when the existing file is not a regular file or has a newer version
 * (refused: the caller stops before writing anything); 0 otherwise. A file that cannot be
 * continued (not HDF5, cut, empty, no /history, a family's /tau group missing, rows out of
 * order) is damaged: nothing of it is loaded, *out starts empty and `damaged` holds the
 * cause ("" when the file was loaded or absent); the caller sets the file aside. */
int cz_metrics_open(cz_metrics **out, const char *path, int n_families, const char *const *families,
                    const char *config_json, long keep_epochs, char *damaged, size_t damaged_len, cz_error *err);
/* The config attribute of the file a resume loaded ("" for none or a fresh file). */
const char *cz_metrics_file_config(const cz_metrics *mx);
/* Appends n history rows (epoch order) whose histograms are lost (count 0, quantiles NaN,
 * zero counts) and rewrites the file: the rebuild of a damaged file from history.jsonl. */
int cz_metrics_append_rows(cz_metrics *mx, const double *rows, long n, cz_error *err);
/* Appends one epoch (history row in cz_history_names order, one merged histogram per
 * family) and rewrites the file. */
int cz_metrics_append(cz_metrics *mx, const double *row, const cz_hist *hists, cz_error *err);
long cz_metrics_epochs(const cz_metrics *mx);
/* Row i (0-based, in epoch order) of the history, CZ_HISTORY_FIELDS values; NULL past the end. */
const double *cz_metrics_row(const cz_metrics *mx, long i);
void cz_metrics_close(cz_metrics *mx);

#endif
