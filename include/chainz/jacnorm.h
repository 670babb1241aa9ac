/* Exact layer-Jacobian norms of single samples of the last step, over their active units.
 *
 * J_l = dh_l/dx = D_l W_l D_{l-1} ... D_1 W_1 with D = mask * phi'(z) from the value
 * forward pass. A unit whose D is 0 (a ReLU that is off, a dropped unit) contributes no row
 * and no column, so sample b's product runs over its active units A_l alone:
 *   P_1 = D_1 W_1[A_1, :],   P_l = D_l W_l[A_l, A_{l-1}] P_{l-1},   ||J_l||_F = ||P_l||_F.
 * With about half of a ReLU layer on, each product costs a quarter of the dense stream's
 * (k n_l n_{l-1}); no value forward is repeated. The rows have width k = d (exact), or
 * k = n_1 < d (gram): with W_1^T = QR, ||M W_1|| = ||M R^T||, so rows of F = R^T stand in
 * for W_1's at the price of one QR per step (made again only when W_1 has changed).
 * Activations without zeros (cubic, tanh, leaky ReLU) cost what the dense stream costs.
 * The tau statistics' layer-Jacobian subsample when the step's DREG stream is not exact or
 * gram (lambda = 0, probe mode; docs/DESIGN.md section 6, "Where the tau families come
 * from"). */
#ifndef CHAINZ_JACNORM_H
#define CHAINZ_JACNORM_H

#include <stddef.h>

#include "chainz/engine.h"

typedef struct cz_jacnorm cz_jacnorm;

/* Scratch for one sample of model m at width d (mode CZ_STREAM_EXACT) or n_1 (CZ_STREAM_GRAM,
 * only when n_1 < d): two n_max x k products, one n_max^2 gather, and for gram the QR's
 * buffers. NULL and CZ_EINVAL for another mode, CZ_ENOMEM when it does not fit. */
cz_jacnorm *cz_jacnorm_new(const cz_model *m, cz_stream_mode mode, cz_error *err);
/* Its bytes; 0 when the sizes overflow or the mode does not apply. */
size_t cz_jacnorm_bytes(const cz_model *m, cz_stream_mode mode);
void cz_jacnorm_free(cz_jacnorm *s);

/* sq[l - 1] = ||dh_l/dx||_F^2 of sample b (0-based) of ws's last step, l = 1..n_hidden.
 * Needs a step that ran the value forward (any step; no stream, no grad). The same
 * quantity as cz_engine_jacobian_sqnorm's exact stream, to float rounding (other sums).
 * @return 0, CZ_EINVAL (no step, b out of range, s made for a model with a narrower
 * widest layer or another d or n_1), or CZ_ERUNTIME (the QR failed). */
int cz_jacnorm_sample(cz_jacnorm *s, const cz_workspace *ws, const cz_real *params, size_t b, double *sq,
                      cz_error *err);

/* Flops of one sample with every unit active (the bound the tau budget plans with), and
 * of what a step pays once when it measures any sample (gram: the QR, in GEMM-equivalent
 * flops: it runs several times slower than a GEMM of as many). */
double cz_jacnorm_flops(const cz_model *m, cz_stream_mode mode);
double cz_jacnorm_step_flops(const cz_model *m, cz_stream_mode mode);

#endif
