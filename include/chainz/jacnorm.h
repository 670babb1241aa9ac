/* Exact layer-Jacobian norms of single samples of the last step, over their active units.
 *
 * J_l = dh_l/dx = D_l W_l D_{l-1} ... D_1 W_1 with D = mask * phi'(z) from the value
 * forward pass. A unit whose D is 0 (a ReLU that is off, a dropped unit) contributes no row
 * and no column, so sample b's product runs over its active units A_l alone:
 *   P_1 = D_1 W_1[A_1, :],   P_l = D_l W_l[A_l, A_{l-1}] P_{l-1},   ||J_l||_F = ||P_l||_F.
 * With about half of a ReLU layer on, each product costs a quarter of the dense stream's
 * (d n_l n_{l-1}); no value forward is repeated and no QR is needed. Activations without
 * zeros (cubic, tanh, leaky ReLU) cost what the dense stream costs. The tau statistics'
 * layer-Jacobian subsample when the step's DREG stream is not exact or gram (lambda = 0,
 * probe mode; docs/DESIGN.md section 6, "Where the tau families come from"). */
#ifndef CHAINZ_JACNORM_H
#define CHAINZ_JACNORM_H

#include <stddef.h>

#include "chainz/engine.h"

typedef struct cz_jacnorm cz_jacnorm;

/* Scratch for one sample of model m: two n_max x d products and one n_max^2 gather. */
cz_jacnorm *cz_jacnorm_new(const cz_model *m, cz_error *err);
size_t cz_jacnorm_bytes(const cz_model *m);
void cz_jacnorm_free(cz_jacnorm *s);

/* sq[l - 1] = ||dh_l/dx||_F^2 of sample b (0-based) of ws's last step, l = 1..n_hidden.
 * Needs a step that ran the value forward (any step; no stream, no grad). The same
 * quantity as cz_engine_jacobian_sqnorm's exact stream, to float rounding (other sums).
 * @return 0, or CZ_EINVAL (no step, b out of range, s made for a model with a narrower
 * widest layer or another d). */
int cz_jacnorm_sample(cz_jacnorm *s, const cz_workspace *ws, const cz_real *params, size_t b, double *sq,
                      cz_error *err);

/* Flops of one sample with every unit active (the bound the tau budget plans with). */
double cz_jacnorm_flops(const cz_model *m);

#endif
