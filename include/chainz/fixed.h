/* Exact, order-independent sums (docs/DESIGN.md section 2). Each value is converted to
 * 128-bit fixed point with 80 fractional bits (the same conversion wherever it runs) and
 * summed as integers, which is associative: the total does not depend on how values are
 * grouped across ranks, threads or micro-batches. |value| must be < 2^46 (about 7e13);
 * magnitudes below 2^-80 (about 8e-25) round down (floor) deterministically. Pure
 * compute; the cross-rank sum lives in dist.h. */
#ifndef CHAINZ_FIXED_H
#define CHAINZ_FIXED_H

#include <stddef.h>
#include "chainz/real.h"

typedef __int128 cz_fixed;

typedef struct {
    cz_fixed *v;   /* [n] */
    size_t n;
    long bad;      /* values that were NaN, infinite or too large (counted, not summed) */
} cz_fixed_acc;

int cz_fixed_init(cz_fixed_acc *a, size_t n);
void cz_fixed_free(cz_fixed_acc *a);
void cz_fixed_zero(cz_fixed_acc *a);
/* a->v[off + i] += fixed(x[i]) for i < n */
void cz_fixed_add_float(cz_fixed_acc *a, size_t off, const float *x, size_t n);
void cz_fixed_add_double(cz_fixed_acc *a, size_t off, const double *x, size_t n);
/* out[i] = sum[off + i] * scale, rounded once to double */
void cz_fixed_get(const cz_fixed_acc *a, size_t off, double *out, size_t n, double scale);
double cz_fixed_value(const cz_fixed_acc *a, size_t i);

#endif
