/* Standardization of raw features, as training applies it (docs/DESIGN.md section 7): one
 * definition shared by the data feed (training, eval) and the inference library, so that a
 * served model sees exactly the inputs it was trained on. Pure compute. */
#ifndef CHAINZ_STANDARDIZE_H
#define CHAINZ_STANDARDIZE_H

#include <stddef.h>

/* x [n x d] row-major, in place: z = (x - mean) / std, then clipped to [-clip, clip] when
 * clip > 0. In float32 with this exact expression: training and serving give the same bits. */
void cz_standardize(float *x, size_t n, size_t d, const float *mean, const float *std, float clip);

#endif
