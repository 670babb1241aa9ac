/* Between predict.c and predict_report.c (private to src/train). */
#ifndef CHAINZ_TRAIN_PREDICT_INTERNAL_H
#define CHAINZ_TRAIN_PREDICT_INTERNAL_H

#include <stddef.h>
#include "chainz/dist.h"
#include "chainz/error.h"
#include "chainz/predict.h"
#include "chainz/predout.h"

/* Rank 0: the summary on stdout and, with --json, the same as JSON (written atomically).
 * ref_epochs: the reference's number of epochs (its last one is compared). */
int cz_predict_report(const cz_predict_opts *o, const cz_dist *d, const cz_pred_file *p, size_t ref_epochs,
                      cz_error *err);

#endif
