/* Exact, order-independent sums (docs/DESIGN.md section 2). Each value is converted to
 * 128-bit fixed point with 80 fractional bits (the same conversion wherever it runs) and
 * summed as integers, which is associative: the total does not depend on how values are
 * grouped across ranks, threads or micro-batches. |value| must be < 2^46 (about 7e13);
 * magnitudes below 2^-80 (about 8e-25) round down (floor) deterministically. A value
 * out of range, NaN or Inf is counted in `bad`; a total that would leave the 128-bit range
 * (|total| >= 2^47) saturates to CZ_FIXED_INVALID, which stays invalid under further sums
 * and reads back as NaN. Pure compute; the cross-rank sum lives in dist.h. */
#ifndef CHAINZ_FIXED_H
#define CHAINZ_FIXED_H

#include <stddef.h>
#include "chainz/real.h"

typedef __int128 cz_fixed;
#define CZ_FIXED_INVALID ((cz_fixed)((unsigned __int128)1 << 127))

/* a + b, or CZ_FIXED_INVALID if either is invalid or the sum overflows (associative and
 * commutative: any grouping of valid sums that stays in range gives the same bits, and
 * one out-of-range partial sum makes every grouping invalid only if the total is) */
static inline cz_fixed cz_fixed_add(cz_fixed a, cz_fixed b)
{
    cz_fixed r;
    if (a == CZ_FIXED_INVALID || b == CZ_FIXED_INVALID || __builtin_add_overflow(a, b, &r))
        return CZ_FIXED_INVALID;
    return r;
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
/* out[i] = (sum[off + i] rounded to double) * scale; NaN for an invalid sum */
void cz_fixed_get(const cz_fixed_acc *a, size_t off, double *out, size_t n, double scale);
double cz_fixed_value(const cz_fixed_acc *a, size_t i);

#endif
