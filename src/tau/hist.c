#include "chainz/hist.h"

#include <math.h>
#include <string.h>

double cz_hist_gamma(void) { return (1.0 + CZ_HIST_ALPHA) / (1.0 - CZ_HIST_ALPHA); }

void cz_hist_reset(cz_hist *h) { memset(h, 0, sizeof *h); }

static size_t bin_of(double v)
{
    if (!(v > 0)) return 0;
    /* k = ceil(log_g v): v in (g^(k-1), g^k] */
    double k = ceil(log(v) / log(cz_hist_gamma()));
    if (k < CZ_HIST_KMIN) return 0;
    if (k > CZ_HIST_KMAX) k = CZ_HIST_KMAX;
    return (size_t)(k - CZ_HIST_KMIN) + 1;
}

void cz_hist_add(cz_hist *h, double v)
{
    h->counts[bin_of(v)]++;
    h->count++;
    if (v > h->max) h->max = v;
    double x = v > 0 ? v : 0;
    if (x >= 0x1p46) return; /* beyond the exact sum's range: max says so, the mean is NaN */
    cz_fixed_acc a = {.v = &h->sum, .n = 1};
    cz_fixed_add_double(&a, 0, &x, 1);
}

void cz_hist_merge(cz_hist *dst, const cz_hist *src)
{
    for (size_t i = 0; i < CZ_HIST_BINS; i++) dst->counts[i] += src->counts[i];
    dst->count += src->count;
    if (src->max > dst->max) dst->max = src->max;
    dst->sum = cz_fixed_add(dst->sum, src->sum);
}

double cz_hist_quantile(const cz_hist *h, double q)
{
    if (h->count == 0) return 0;
    if (q >= 1) return h->max;
    /* nearest rank: the ceil(q n)-th smallest (0-based rank ceil(q n) - 1), so p99 of fewer
     * than 100 values is the largest. The lower rank floor(q (n - 1)) made p99 of an epoch
     * of 2 steps its smaller norm, and tau < 1. */
    double r = ceil(q * (double)h->count) - 1;
    uint64_t rank = r > 0 ? (uint64_t)r : 0, seen = 0;
    double g = cz_hist_gamma();
    for (size_t i = 0; i < CZ_HIST_BINS; i++) {
        seen += h->counts[i];
        if (seen > rank) {
            if (i == 0) return 0;
            double k = (double)((long)i - 1 + CZ_HIST_KMIN);
            double rep = 2.0 * pow(g, k) / (g + 1.0);
            return rep < h->max ? rep : h->max;
        }
    }
    return h->max;
}

void cz_hist_summarize(const cz_hist *h, cz_hist_summary *s)
{
    cz_fixed_acc a = {.v = (cz_fixed *)&h->sum, .n = 1};
    s->count = (double)h->count;
    /* merged max >= 2^46 means a value was left out of the sum: no honest mean */
    s->mean = !h->count ? 0 : h->max >= 0x1p46 ? NAN : cz_fixed_value(&a, 0) / (double)h->count;
    s->p50 = cz_hist_quantile(h, 0.50);
    s->p90 = cz_hist_quantile(h, 0.90);
    s->p99 = cz_hist_quantile(h, 0.99);
    s->max = h->max;
    s->tau = s->mean > 0 ? s->p99 / s->mean : isnan(s->mean) ? NAN : 0;
}

void cz_hist_edges(double *edges)
{
    double g = cz_hist_gamma();
    edges[0] = 0;
    for (size_t i = 1; i <= CZ_HIST_BINS; i++) edges[i] = pow(g, (double)((long)i - 1 + CZ_HIST_KMIN) - 1.0);
}
