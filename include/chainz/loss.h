/* Output heads: per-sample task loss, its gradient with respect to the output f, and
 * the prediction. Sums are returned un-normalized (the caller divides by the global
 * sample count).
 *   classify: f = K logits, softmax cross-entropy; prediction argmax.
 *   ordinal:  f = K-1 cumulative logits (CORAL-style), f_k scores P(y > k); loss is the
 *             sum of K-1 binary cross-entropies against [y > k]; prediction = number of
 *             thresholds passed (f_k > 0); reported as accuracy and MAE in classes.
 *   regress:  f = 1 score, squared error (f - y)^2; MAE = |f - y|. */
#ifndef CHAINZ_LOSS_H
#define CHAINZ_LOSS_H

#include <stddef.h>
#include <stdint.h>
#include "chainz/model.h"

typedef struct {
    double loss;     /* sum of per-sample task losses */
    double correct;  /* samples predicted exactly (classify, ordinal) */
    double abs_err;  /* sum of |prediction - target| (ordinal, regress) */
} cz_loss_sums;

/* f, e: [B x n_out]. y_class (classify/ordinal) or y_value (regress) per sample.
 * e (may be NULL) receives d task_b / d f_b; loss_b (may be NULL) the per-sample loss;
 * pred (may be NULL) the predicted class (or rounded value). Sums are ADDED to *sums.
 * y_class NULL (classify/ordinal): each sample's own predicted class is its label, so one
 * call gives the prediction and the gradient the inference library's input norm seeds. */
void cz_loss_eval(cz_real *e, double *loss_b, int32_t *pred, cz_loss_sums *sums,
                  const cz_model *m, const cz_real *f, const int32_t *y_class,
                  const cz_real *y_value, size_t B);

#endif
