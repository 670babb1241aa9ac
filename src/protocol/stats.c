/* Paired statistics: see include/chainz/stats.h for the methods and conventions. */
#include "chainz/stats.h"

#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void cz_stats_mean_std(double *mean, double *sd, const double *x, size_t n)
{
    double m = 0, s = 0;
    for (size_t i = 0; i < n; i++) m += x[i];
    if (n) m /= (double)n;
    for (size_t i = 0; i < n; i++) s += (x[i] - m) * (x[i] - m);
    *mean = m;
    *sd = n > 1 ? sqrt(s / (double)(n - 1)) : 0;
}

void cz_stats_ttest_paired(cz_ttest *out, const double *d, size_t n)
{
    memset(out, 0, sizeof *out);
    out->n = n;
    cz_stats_mean_std(&out->mean, &out->sd, d, n);
    out->df = n ? (double)(n - 1) : 0;
    if (n < 2) {
        out->p = 1;
        out->note = "fewer than 2 pairs";
        return;
    }
    int all_equal = 1;
    for (size_t i = 1; i < n; i++) all_equal &= d[i] == d[0];
    if (all_equal || !(out->sd > 0)) {
        out->sd = 0;
        out->p = d[0] == 0 ? 1 : 0;
        out->note = d[0] == 0 ? "no difference" : "all differences equal and non-zero";
        return;
    }
    out->t = out->mean / (out->sd / sqrt((double)n));
    double p = 2 * gsl_cdf_tdist_Q(fabs(out->t), out->df);
    out->p = p > 1 ? 1 : p;
}

typedef struct {
    double a;
    int pos;
} absd;

static int cmp_absd(const void *x, const void *y)
{
    double a = ((const absd *)x)->a, b = ((const absd *)y)->a;
    return a < b ? -1 : a > b;
}

int cz_stats_wilcoxon(cz_wilcoxon *out, const double *d, size_t n)
{
    memset(out, 0, sizeof *out);
    absd *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) {
        out->p = 1;
        out->note = "out of memory";
        return -1;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (d[i] == 0) {
            out->zeros++;
            continue;
        }
        v[m].a = fabs(d[i]);
        v[m].pos = d[i] > 0;
        m++;
    }
    out->n = m;
    if (m == 0) {
        free(v);
        out->p = 1;
        out->exact = 1;
        out->note = "all differences zero";
        return 0;
    }
    qsort(v, m, sizeof *v, cmp_absd);
    double tie_sum = 0; /* sum of t^3 - t over tie groups */
    for (size_t i = 0; i < m;) {
        size_t j = i;
        while (j + 1 < m && v[j + 1].a == v[i].a) j++;
        double rank = (double)(i + 1 + j + 1) / 2, t = (double)(j - i + 1);
        if (t > 1) {
            out->ties = 1;
            tie_sum += t * t * t - t;
        }
        for (size_t k = i; k <= j; k++) {
            if (v[k].pos) out->w_plus += rank;
            else out->w_minus += rank;
        }
        i = j + 1;
    }
    free(v);
    double N = (double)m;
    if (!out->ties && m <= CZ_WILCOXON_EXACT_MAX) {
        /* count[s]: sign patterns of ranks 1..k whose positive ranks sum to s */
        size_t smax = m * (m + 1) / 2;
        double *count = calloc(smax + 1, sizeof *count);
        if (!count) {
            out->p = 1;
            out->note = "out of memory";
            return -1;
        }
        count[0] = 1;
        for (size_t k = 1; k <= m; k++)
            for (size_t s = k * (k + 1) / 2; s >= k; s--) count[s] += count[s - k];
        double total = ldexp(1, (int)m), below = 0, above = 0;
        size_t w = (size_t)out->w_plus; /* an integer without ties */
        for (size_t s = 0; s <= smax; s++) {
            if (s <= w) below += count[s];
            if (s >= w) above += count[s];
        }
        free(count);
        double p = 2 * fmin(below, above) / total;
        out->p = p > 1 ? 1 : p;
        out->exact = 1;
        return 0;
    }
    double mean = N * (N + 1) / 4, var = N * (N + 1) * (2 * N + 1) / 24 - tie_sum / 48;
    if (!(var > 0)) {
        out->p = 1;
        out->note = "no variance";
        return 0;
    }
    out->z = (out->w_plus - mean) / sqrt(var);
    double p = 2 * gsl_cdf_ugaussian_P(-fabs(out->z));
    out->p = p > 1 ? 1 : p;
    return 0;
}

double cz_stats_bonferroni(double alpha, size_t m)
{
    return m ? alpha / (double)m : alpha;
}
