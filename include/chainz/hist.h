/* Log-bucket histograms of positive values (the DDSketch construction) for the gradient
 * tail ratio tau = p99 / mean. Pure compute; merging is a sum.
 *
 * Bins: a zero bin for values <= 0 (and below the range), then bins i = 1..CZ_HIST_BINS
 * covering (g^(k-1), g^k] for k = i + CZ_HIST_KMIN - 1 with g = (1+a)/(1-a), a = 0.01;
 * values above the range land in the last bin. A value read back for a quantile is the
 * bin's representative 2 g^k / (g + 1), within 1% relative error of every value in the
 * bin. Beside the counts, the exact count, maximum and sum (128-bit fixed point, so that
 * merged sums do not depend on the order) are kept (resolution 2^-64; exact while the
 * total stays below 2^63). A value >= 2^46 cannot be summed exactly: it makes the mean
 * (and tau) NaN rather than wrong, while the quantiles and max stay valid. */
#ifndef CHAINZ_HIST_H
#define CHAINZ_HIST_H

#include <stddef.h>
#include <stdint.h>
#include "chainz/fixed.h"

#define CZ_HIST_ALPHA 0.01
#define CZ_HIST_KMIN (-2218)  /* g^-2218 ~ 5e-20 */
#define CZ_HIST_KMAX 2218     /* g^2218 ~ 2e19 */
#define CZ_HIST_BINS (CZ_HIST_KMAX - CZ_HIST_KMIN + 2) /* + the zero bin */

typedef struct {
    uint64_t counts[CZ_HIST_BINS]; /* [0] zero bin */
    uint64_t count;
    double max;
    cz_fixed sum;
} cz_hist;

typedef struct {
    double count, mean, p50, p90, p99, max, tau;
} cz_hist_summary;

void cz_hist_reset(cz_hist *h);
/* Adds one value (>= 0; NaN and negative values go to the zero bin). */
void cz_hist_add(cz_hist *h, double v);
/* dst += src (exact). */
void cz_hist_merge(cz_hist *dst, const cz_hist *src);
/* Quantile q in [0, 1] (q = 1 gives the exact maximum). 0 for an empty histogram. */
double cz_hist_quantile(const cz_hist *h, double q);
void cz_hist_summarize(const cz_hist *h, cz_hist_summary *s);
/* Bin edges [CZ_HIST_BINS + 1]: edges[0] = 0 (zero bin), edges[i] = g^(k-1) for bin i. */
void cz_hist_edges(double *edges);
double cz_hist_gamma(void);

#endif
