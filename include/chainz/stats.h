/* Paired statistics for the protocol report (chainz protocol): mean and standard
 * deviation, the paired t-test, the Wilcoxon signed-rank test and the Bonferroni bound.
 * Pure functions of their inputs; distributions from GSL.
 *
 * Invariants: no result is NaN. Degenerate inputs (n < 2, all differences equal, all
 * differences zero) give a defined p-value and a `note` saying why, so a report never
 * shows "nan". Two-sided p-values throughout, capped at 1. */
#ifndef CHAINZ_STATS_H
#define CHAINZ_STATS_H

#include <stddef.h>

/* Mean and sample standard deviation (divisor n - 1) of x[0..n); n = 0 gives 0 and 0,
 * n = 1 gives x[0] and 0. */
void cz_stats_mean_std(double *mean, double *sd, const double *x, size_t n);

typedef struct {
    size_t n;        /* pairs */
    double mean, sd; /* of the differences */
    double t;        /* mean / (sd / sqrt(n)); 0 when undefined (see note) */
    double df;       /* n - 1 */
    double p;        /* two-sided: 2 * gsl_cdf_tdist_Q(|t|, n - 1) */
    const char *note;/* NULL, or why p is set by convention */
} cz_ttest;

/* Paired t-test of the differences d[0..n) against mean 0. Conventions: n < 2 -> p = 1
 * ("fewer than 2 pairs"); all differences equal (sd = 0): p = 1 if they are 0 ("no
 * difference"), else p = 0 ("all differences equal and non-zero"; t is then 0 too). */
void cz_stats_ttest_paired(cz_ttest *out, const double *d, size_t n);

typedef struct {
    size_t n;         /* non-zero differences (zeros are dropped, Wilcoxon's method) */
    size_t zeros;     /* differences equal to 0 */
    double w_plus;    /* sum of the ranks of |d| over positive d (average ranks for ties) */
    double w_minus;
    int exact;        /* 1: exact null distribution; 0: normal approximation */
    int ties;         /* 1 if some non-zero |d| are tied */
    double z;         /* the normal approximation's z (0 when exact) */
    double p;         /* two-sided */
    const char *note; /* NULL, or why p is set by convention */
} cz_wilcoxon;

/* Largest number of non-zero differences for which the exact distribution is used (when
 * there are no ties): counts of rank subsets, exact in doubles up to 2^53. */
#define CZ_WILCOXON_EXACT_MAX 50

/* Wilcoxon signed-rank test of d[0..n) (d = x - y of the pairs). Zeros are dropped; the
 * remaining |d| are ranked (average ranks for ties). Without ties and n <= EXACT_MAX the
 * null distribution of W+ is counted exactly (dynamic programming over the ranks
 * 1..n, every sign pattern equally likely: 2^n patterns) and
 *   p = min(1, 2 * min(P(W+ <= w+), P(W+ >= w+))).
 * Otherwise the normal approximation with the tie correction, without continuity
 * correction: mean n(n+1)/4, variance n(n+1)(2n+1)/24 - sum(t^3 - t)/48 over tie groups,
 * z = (w+ - mean) / sqrt(variance), p = 2 * gsl_cdf_ugaussian_P(-|z|).
 * No non-zero difference: p = 1 ("all differences zero"). Returns 0, or -1 when out of
 * memory (out is then zeroed, p = 1). */
int cz_stats_wilcoxon(cz_wilcoxon *out, const double *d, size_t n);

/* Bonferroni: the per-comparison significance level alpha / m (alpha for m = 0). */
double cz_stats_bonferroni(double alpha, size_t m);

#endif
