/* The predictions file of chainz predict (docs/DESIGN.md section 7.2). Layout, format
 * "chainz-predictions" version 1:
 *   /label        int32   [N]     predicted class (classify, ordinal), round(value) (regress)
 *   /prob         float32 [N, K]  class probabilities (classify, ordinal; absent for regress)
 *   /value        float32 [N]     regress: the prediction; ordinal: the expected class;
 *                                 classify: the predicted class's probability
 *   /norms/input  float64 [N]     per-sample input-Jacobian norm of the prediction
 *   /norms/layer_<l> float64 [N]  hidden layer l's Jacobian norm ||dh_l/dx||_F, l = 1..H
 *       attrs of each: meaning, and the summary count, mean, p50, p90, p99, max,
 *       tau = p99 / mean (log-bucket quantiles, within 1 %)
 *   /drift/<family> (with --reference) attrs: reference_family, status, ref_count,
 *       batch_count, ref_p50/p90/p99, batch_p50/p90/p99, ratio_p50/p90/p99, ks_d, ks_p,
 *       moved, ks_reject, flagged (0/1)
 *   root attrs: format, version, model, data, input (chainz-data|hdf5|csv), dataset, head,
 *       classes, samples, norms (0/1); with labels accuracy (classify, ordinal) and mae
 *       (ordinal: mean |label - y|; regress: mean |value - y|);
 *       reference, drift_threshold, drift_alpha, drift_d_min, drift_flagged with --reference
 * Built in memory, saved under a temporary name, fsynced and renamed: a reader sees the
 * previous file or the complete new one. No modification times: equal values, equal bytes. */
#ifndef CHAINZ_PREDOUT_H
#define CHAINZ_PREDOUT_H

#include <stddef.h>
#include <stdint.h>
#include "chainz/drift.h"
#include "chainz/error.h"
#include "chainz/hist.h"

typedef struct {
    const char *name;    /* "input", "layer_1" */
    const char *meaning;
    const double *norm;  /* [n] */
    cz_hist_summary sum;
    /* drift (when the file has a reference): status "compared" (then drift holds the
     * statistics) or why the family was not compared */
    const char *ref_family, *status;
    int compared;
    cz_drift_result drift;
} cz_pred_family;

typedef struct {
    const char *model, *data, *input, *dataset, *head;
    size_t n, K;          /* K: columns of /prob (0: no /prob) */
    int classes;
    const int32_t *label; /* [n] */
    const float *prob;    /* [n x K] */
    const float *value;   /* [n] */
    int n_families;       /* 0 with --no-norms */
    const cz_pred_family *fam;
    int has_labels;
    double accuracy, mae; /* NaN: not defined for the head (not written) */
    const char *reference; /* NULL: no drift */
    double drift_threshold, drift_alpha, drift_d_min;
    int drift_flagged;
} cz_pred_file;

/* Before any work: opt names the option in messages ("--out"); path must not be a
 * directory and its directory must exist and be writable. @return 0 or CZ_EINVAL. */
int cz_pred_check_path(const char *opt, const char *path, cz_error *err);
/* @return 0, CZ_EIO (with the system's reason), CZ_ENOMEM; on failure no temporary file
 * remains and an existing file at path is untouched. */
int cz_pred_write(const char *path, const cz_pred_file *p, cz_error *err);

#endif
