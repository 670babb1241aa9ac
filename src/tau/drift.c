/* The drift monitor's statistics (chainz/drift.h). */
#include "chainz/drift.h"

#include <math.h>
#include <string.h>

#include "chainz/hist.h"

double cz_drift_kolmogorov_q(double lambda)
{
    if (!(lambda > 0)) return 1;
    if (lambda < 1.18) {
        /* the alternating series converges slowly here; its Jacobi-theta twin fast:
         * 1 - Q = sqrt(2 pi) / lambda sum_{j>=1} exp(-(2j-1)^2 pi^2 / (8 lambda^2)) */
        double y = exp(-M_PI * M_PI / (8 * lambda * lambda)), s = 0;
        for (int j = 1; j <= 7; j++) s += pow(y, (double)((2 * j - 1) * (2 * j - 1)));
        double q = 1 - sqrt(2 * M_PI) / lambda * s;
        return q < 0 ? 0 : q;
    }
    double s = 0, x = exp(-2 * lambda * lambda);
    for (int j = 1; j <= 20; j++) s += (j % 2 ? 2.0 : -2.0) * pow(x, (double)(j * j));
    return s < 0 ? 0 : s > 1 ? 1 : s;
}

double cz_drift_ks_pvalue(double d, double n, double m)
{
    if (!(n > 0 && m > 0)) return 1;
    double ne = sqrt(n * m / (n + m));
    return cz_drift_kolmogorov_q((ne + 0.12 + 0.11 / ne) * d);
}

double cz_drift_quantile(const uint64_t *counts, double max, double q)
{
    uint64_t total = 0;
    for (size_t i = 0; i < CZ_HIST_BINS; i++) total += counts[i];
    if (!total) return 0;
    /* nearest rank, as cz_hist_quantile: the ceil(q n)-th smallest */
    double r = ceil(q * (double)total) - 1;
    uint64_t rank = r > 0 ? (uint64_t)r : 0, seen = 0;
    double g = cz_hist_gamma();
    for (size_t i = 0; i < CZ_HIST_BINS; i++) {
        seen += counts[i];
        if (seen > rank) {
            if (i == 0) return 0;
            double rep = 2.0 * pow(g, (double)((long)i - 1 + CZ_HIST_KMIN)) / (g + 1.0);
            return max > 0 && rep > max ? max : rep;
        }
    }
    return max > 0 ? max : 0;
}

int cz_drift_compare(const uint64_t *ref, double ref_max, const uint64_t *batch, double batch_max,
                     const cz_drift_opts *o, cz_drift_result *r)
{
    memset(r, 0, sizeof *r);
    if (!(o->threshold > 1) || !(o->alpha > 0 && o->alpha < 1) || !(o->d_min >= 0 && o->d_min <= 1)) return -1;
    uint64_t nr = 0, nb = 0;
    for (size_t i = 0; i < CZ_HIST_BINS; i++) {
        nr += ref[i];
        nb += batch[i];
    }
    if (!nr || !nb) return -1;
    r->n_ref = (double)nr;
    r->n_batch = (double)nb;
    static const double qs[CZ_DRIFT_NQ] = {0.50, 0.90, 0.99};
    for (int k = 0; k < CZ_DRIFT_NQ; k++) {
        r->ref_q[k] = cz_drift_quantile(ref, ref_max, qs[k]);
        r->batch_q[k] = cz_drift_quantile(batch, batch_max, qs[k]);
        r->ratio[k] = r->ref_q[k] > 0 ? r->batch_q[k] / r->ref_q[k] : r->batch_q[k] > 0 ? INFINITY : 1;
    }
    /* both CDFs are exact at each bin's upper edge: integer counts, compared as fractions */
    uint64_t cr = 0, cb = 0;
    double dmax = 0;
    for (size_t i = 0; i < CZ_HIST_BINS; i++) {
        cr += ref[i];
        cb += batch[i];
        double dd = fabs((double)cr / (double)nr - (double)cb / (double)nb);
        if (dd > dmax) dmax = dd;
    }
    r->ks_d = dmax;
    r->ks_p = cz_drift_ks_pvalue(dmax, r->n_ref, r->n_batch);
    for (int k = 0; k < CZ_DRIFT_NQ; k++) r->moved |= r->ratio[k] > o->threshold || r->ratio[k] < 1 / o->threshold;
    r->ks_reject = r->ks_p < o->alpha && r->ks_d >= o->d_min;
    r->flagged = r->moved && r->ks_reject;
    return 0;
}
