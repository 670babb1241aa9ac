/* Exact, order-independent sums (docs/DESIGN.md section 2). Each value is converted to
 * 128-bit fixed point with 64 fractional bits (the same conversion wherever it runs) and
 * summed as integers, which is associative: the total does not depend on how values are
 * grouped across ranks, threads or micro-batches. Each |value| must be < 2^46 (about
 * 7e13; larger values, NaN and Inf are counted in `bad`, not summed); magnitudes below
 * 2^-64 (about 5e-20) round down (floor) deterministically. Sums wrap modulo 2^128 like
 * unsigned integers (still associative), so a total is exact whenever the sum of the
 * magnitudes stays below 2^63 (9.2e18): e.g. 131072 values at the 2^46 limit. Pure
 * compute; the cross-rank sum lives in dist.h. */
#ifndef CHAINZ_FIXED_H
#define CHAINZ_FIXED_H

#include <stddef.h>
#include "chainz/real.h"

typedef __int128 cz_fixed;

/* a + b modulo 2^128: unsigned arithmetic, so wrapping is defined and associative */
static inline cz_fixed cz_fixed_add(cz_fixed a, cz_fixed b)
{
    return (cz_fixed)((unsigned __int128)a + (unsigned __int128)b);
}

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
/* out[i] = (sum[off + i] rounded to double) * scale */
void cz_fixed_get(const cz_fixed_acc *a, size_t off, double *out, size_t n, double scale);
double cz_fixed_value(const cz_fixed_acc *a, size_t i);

#endif
