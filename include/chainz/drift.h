/* The drift monitor's statistics (chainz predict --reference, docs/DESIGN.md section 7.2):
 * a batch's per-sample norms against a training run's last-epoch histogram of the same
 * family. Both sides are log-bucket histograms of hist.h (the batch is binned like the
 * run was), so quantiles are read alike and the two empirical CDFs are exact at every
 * shared bin edge. Pure compute: no files, no MPI.
 *
 * Statistics of a family:
 *   quantile ratios  p50, p90, p99 of the batch / the same quantile of the reference
 *                    (nearest rank, the bin's representative, clamped at the side's max,
 *                    as cz_hist_quantile reads them)
 *   KS distance D    max over the bin edges of |F_ref(e) - F_batch(e)| (a lower bound of
 *                    the continuous two-sample statistic; exact for the binned samples)
 *   p-value          Q_KS(lambda), lambda = (sqrt(ne) + 0.12 + 0.11 / sqrt(ne)) D,
 *                    ne = n m / (n + m): the asymptotic Kolmogorov distribution with
 *                    Stephens' small-sample correction (Numerical Recipes' probks)
 * A family is flagged when its distribution moved (a quantile ratio p50, p90 or p99 above
 * threshold or below 1 / threshold) AND the KS test rejects (p < alpha) with an effect of
 * at least d_min (D >= d_min). Why both, and why these defaults (docs/RESULTS.md section 6,
 * Fashion-MNIST): the reference is not a sample of the served model (it was gathered over
 * the last epoch while the parameters moved): the training rows themselves, predicted by
 * the final model, differ from it by D = 0.06 with p = 1e-81, so KS's p alone flags every
 * clean batch; D_min = 0.1 is about twice that baseline. And DREG pins the tail it
 * penalizes: even at 10 % accuracy (contrast, severity 5) the p99 ratios stay within
 * 0.85..1.11 while the median moves by 1.2..1.35, so the bulk quantiles count too and the
 * threshold is 1.1 (clean sets: 0.98..1.02, one bin of quantisation). */
#ifndef CHAINZ_DRIFT_H
#define CHAINZ_DRIFT_H

#include <stddef.h>
#include <stdint.h>

#define CZ_DRIFT_THRESHOLD 1.1 /* default quantile ratio that counts as moved (either way) */
#define CZ_DRIFT_ALPHA 0.01    /* default KS level */
#define CZ_DRIFT_D_MIN 0.1     /* default smallest KS distance that counts */

typedef struct {
    double threshold; /* > 1 */
    double alpha;     /* in (0, 1) */
    double d_min;     /* in [0, 1] */
} cz_drift_opts;

enum { CZ_DRIFT_P50 = 0, CZ_DRIFT_P90 = 1, CZ_DRIFT_P99 = 2, CZ_DRIFT_NQ = 3 };

typedef struct {
    double n_ref, n_batch;
    double ref_q[CZ_DRIFT_NQ], batch_q[CZ_DRIFT_NQ]; /* p50, p90, p99 */
    double ratio[CZ_DRIFT_NQ];                       /* batch / reference (inf when ref is 0) */
    double ks_d, ks_p;
    int moved, ks_reject, flagged; /* moved: a quantile ratio beyond threshold */
} cz_drift_result;

/* Q_KS(lambda) = 2 sum_{j>=1} (-1)^(j-1) exp(-2 j^2 lambda^2): the probability that the
 * scaled Kolmogorov statistic exceeds lambda (1 for lambda <= 0). Relative error < 1e-12. */
double cz_drift_kolmogorov_q(double lambda);
/* The asymptotic p-value of a two-sample KS distance d between samples of n and m. */
double cz_drift_ks_pvalue(double d, double n, double m);
/* Quantile q of a histogram's counts [CZ_HIST_BINS] (hist.h's bins) whose maximum value is
 * max (the representative is clamped at it; max <= 0: no clamp). 0 for an empty one. */
double cz_drift_quantile(const uint64_t *counts, double max, double q);
/* Compares batch with ref (counts [CZ_HIST_BINS] each, and each side's maximum).
 * @return 0, or -1 when either side is empty or an option is out of range (r zeroed). */
int cz_drift_compare(const uint64_t *ref, double ref_max, const uint64_t *batch, double batch_max,
                     const cz_drift_opts *o, cz_drift_result *r);

#endif
