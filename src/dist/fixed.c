#include "chainz/fixed.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FRAC_BITS 64
#define MAX_EXP 46 /* |v| < 2^46 */

/* v = m * 2^(e-53) with m a 53-bit integer, so v * 2^64 = m * 2^(e+11), exactly */
static inline int to_fixed(double v, cz_fixed *out)
{
    if (v == 0) {
        *out = 0;
        return 0;
    }
    if (!isfinite(v)) return -1;
    int e;
    double f = frexp(v, &e);
    if (e > MAX_EXP) return -1;
    int64_t m = (int64_t)ldexp(f, 53);
    int sh = e + FRAC_BITS - 53;
    if (sh >= 0) *out = (cz_fixed)m * ((cz_fixed)1 << sh); /* a shift of a negative is UB */
    else if (sh > -64) *out = (cz_fixed)(m >> -sh); /* arithmetic shift: floor */
    else *out = m < 0 ? -1 : 0;
    return 0;
}

int cz_fixed_init(cz_fixed_acc *a, size_t n)
{
    a->n = n;
    a->bad = 0;
    a->v = aligned_alloc(16, (n ? n : 1) * sizeof(cz_fixed));
    if (!a->v) return -1;
    cz_fixed_zero(a);
    return 0;
}

void cz_fixed_free(cz_fixed_acc *a)
{
    free(a->v);
    a->v = NULL;
}

void cz_fixed_zero(cz_fixed_acc *a)
{
    memset(a->v, 0, a->n * sizeof(cz_fixed));
    a->bad = 0;
}

void cz_fixed_add_float(cz_fixed_acc *a, size_t off, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cz_fixed q;
        if (to_fixed((double)x[i], &q)) a->bad++;
        else a->v[off + i] = cz_fixed_add(a->v[off + i], q);
    }
}

void cz_fixed_add_double(cz_fixed_acc *a, size_t off, const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cz_fixed q;
        if (to_fixed(x[i], &q)) a->bad++;
        else a->v[off + i] = cz_fixed_add(a->v[off + i], q);
    }
}

double cz_fixed_value(const cz_fixed_acc *a, size_t i)
{
    return ldexp((double)a->v[i], -FRAC_BITS);
}

void cz_fixed_get(const cz_fixed_acc *a, size_t off, double *out, size_t n, double scale)
{
    for (size_t i = 0; i < n; i++) out[i] = cz_fixed_value(a, off + i) * scale;
}
