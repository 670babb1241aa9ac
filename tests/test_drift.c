/* The drift monitor's statistics (chainz/drift.h) against known answers: the Kolmogorov
 * tail probability against scipy.special.kolmogorov, KS distances and p-values of
 * hand-built histograms, quantiles equal to cz_hist_quantile, and the flag's two
 * conditions (a moved quantile alone, a KS rejection alone, a tiny p under d_min, both). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chainz/drift.h"
#include "chainz/hist.h"
#include "chainz/rng.h"

static const cz_drift_opts opts = {.threshold = CZ_DRIFT_THRESHOLD, .alpha = CZ_DRIFT_ALPHA, .d_min = CZ_DRIFT_D_MIN};

static void rel_close(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol * fabs(want))) fail_msg("got %.17g, want %.17g (rel tol %g)", got, want, tol);
}

/* scipy.special.kolmogorov (scipy 1.10.1), on both sides of the series switch at 1.18 */
static void test_drift_kolmogorov_known(void **state)
{
    (void)state;
    static const double lam[] = {0.2, 0.3, 0.5, 1.0, 1.1799, 1.1801, 1.36, 1.628, 2.0, 3.0};
    static const double q[] = {0.999999999999495, 0.9999906941986655, 0.9639452436648751, 0.26999967167735456,
                               0.12351204971188676, 0.12339559161939295, 0.049485876755377876,
                               0.009975522431181053, 0.0006709252557796953, 3.045995948942526e-08};
    for (size_t i = 0; i < sizeof lam / sizeof *lam; i++) rel_close(cz_drift_kolmogorov_q(lam[i]), q[i], 1e-10);
    assert_true(cz_drift_kolmogorov_q(0) == 1 && cz_drift_kolmogorov_q(-1) == 1);
    assert_true(cz_drift_kolmogorov_q(0.05) == 1);
}

static uint64_t *hist_of(const double *v, size_t n, double *max)
{
    cz_hist *h = malloc(sizeof *h);
    assert_non_null(h);
    cz_hist_reset(h);
    for (size_t i = 0; i < n; i++) cz_hist_add(h, v[i]);
    uint64_t *c = malloc(CZ_HIST_BINS * sizeof *c);
    assert_non_null(c);
    memcpy(c, h->counts, sizeof h->counts);
    *max = h->max;
    free(h);
    return c;
}

/* 100 values at 1 against 50 at 1 and 50 at 2: D = 1/2, lambda 3.6033, p from scipy */
static void test_drift_ks_by_hand(void **state)
{
    (void)state;
    double a[100], b[100], ma, mb;
    for (int i = 0; i < 100; i++) {
        a[i] = 1;
        b[i] = i < 50 ? 1 : 2;
    }
    uint64_t *ha = hist_of(a, 100, &ma), *hb = hist_of(b, 100, &mb);
    cz_drift_result r;
    assert_int_equal(cz_drift_compare(ha, ma, hb, mb, &opts, &r), 0);
    assert_true(r.ks_d == 0.5);
    rel_close(r.ks_p, 1.0553445530400741e-11, 1e-8);
    assert_true(r.n_ref == 100 && r.n_batch == 100);
    /* p50: both the 50th smallest, 1's bin; p99: 1's bin against 2's (representatives
     * within 1 %, so the ratio within about 2 %) */
    assert_true(r.ref_q[CZ_DRIFT_P50] == r.batch_q[CZ_DRIFT_P50] && r.ratio[CZ_DRIFT_P50] == 1);
    assert_true(fabs(r.ref_q[CZ_DRIFT_P50] - 1) < 0.0101 && fabs(r.ratio[CZ_DRIFT_P99] / 2 - 1) < 0.021);
    assert_true(r.moved && r.ks_reject && r.flagged);
    free(ha);
    free(hb);
}

/* D = 0.1 exactly between n = 1000 and m = 500: p = Q_KS(1.83834) = 0.00232073 */
static void test_drift_ks_pvalue_unequal(void **state)
{
    (void)state;
    rel_close(cz_drift_ks_pvalue(0.1, 1000, 500), 0.0023207317289540164, 1e-9);
    double a[1000], b[500], ma, mb;
    for (int i = 0; i < 1000; i++) a[i] = i < 500 ? 1 : 3;     /* F_a(1) = 0.5 */
    for (int i = 0; i < 500; i++) b[i] = i < 300 ? 1 : 3;      /* F_b(1) = 0.6 */
    uint64_t *ha = hist_of(a, 1000, &ma), *hb = hist_of(b, 500, &mb);
    cz_drift_result r;
    cz_drift_opts o = opts;
    o.d_min = 0.05;
    assert_int_equal(cz_drift_compare(ha, ma, hb, mb, &o, &r), 0);
    rel_close(r.ks_d, 0.1, 1e-12);
    rel_close(r.ks_p, 0.0023207317289540164, 1e-9);
    /* no quantile moved (p50 1, p90 and p99 3 on both sides): KS alone does not flag */
    assert_true(r.ks_reject && !r.moved && !r.flagged);
    /* D a hair below 0.1 (0.6 - 0.5 in binary): under the default d_min, no rejection */
    assert_int_equal(cz_drift_compare(ha, ma, hb, mb, &opts, &r), 0);
    assert_true(r.ks_d < 0.1 && r.ks_p < opts.alpha && !r.ks_reject);
    free(ha);
    free(hb);
}

/* quantiles are cz_hist_quantile's, on lognormal values */
static void test_drift_quantile_is_hist(void **state)
{
    (void)state;
    cz_rng g;
    cz_rng_seed(&g, 5);
    enum { N = 20000 };
    double *v = malloc(N * sizeof *v), mx;
    for (int i = 0; i < N; i++) v[i] = exp(cz_rng_normal(&g));
    cz_hist *h = malloc(sizeof *h);
    cz_hist_reset(h);
    for (int i = 0; i < N; i++) cz_hist_add(h, v[i]);
    uint64_t *c = hist_of(v, N, &mx);
    const double qs[] = {0, 0.01, 0.5, 0.9, 0.99, 0.999};
    for (size_t k = 0; k < sizeof qs / sizeof *qs; k++)
        assert_true(cz_drift_quantile(c, mx, qs[k]) == cz_hist_quantile(h, qs[k]));
    free(v);
    free(h);
    free(c);
    /* by hand: 1, 2, 4; nearest rank: q = 0.34 is the 2nd smallest, q = 0.99 the largest */
    double t[3] = {1, 2, 4}, mt;
    uint64_t *ct = hist_of(t, 3, &mt);
    assert_true(fabs(cz_drift_quantile(ct, mt, 0.34) / 2 - 1) < 0.0101);
    assert_true(fabs(cz_drift_quantile(ct, mt, 0.99) / 4 - 1) < 0.0101);
    assert_true(fabs(cz_drift_quantile(ct, mt, 0.0) - 1) < 0.0101);
    free(ct);
}

/* the same sample: nothing moves; scaled by 2: every ratio about 2 and flagged; a small
 * batch with one outlier: the tail ratio is large but KS cannot reject, so no flag */
static void test_drift_flag_conditions(void **state)
{
    (void)state;
    cz_rng g;
    cz_rng_seed(&g, 9);
    enum { N = 5000 };
    double *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b), ma, mb;
    for (int i = 0; i < N; i++) {
        a[i] = exp(0.3 * cz_rng_normal(&g));
        b[i] = 2 * a[i];
    }
    uint64_t *ha = hist_of(a, N, &ma), *hb = hist_of(b, N, &mb);
    cz_drift_result r;
    assert_int_equal(cz_drift_compare(ha, ma, ha, ma, &opts, &r), 0);
    assert_true(r.ks_d == 0 && r.ks_p == 1 && !r.flagged && !r.moved);
    for (int k = 0; k < CZ_DRIFT_NQ; k++) assert_true(r.ratio[k] == 1);
    assert_int_equal(cz_drift_compare(ha, ma, hb, mb, &opts, &r), 0);
    for (int k = 0; k < CZ_DRIFT_NQ; k++)
        if (!(fabs(r.ratio[k] / 2 - 1) < 0.021)) fail_msg("ratio %d = %.6g, expected 2 within 2 %%", k, r.ratio[k]);
    assert_true(r.ks_d > 0.5 && r.ks_p < 1e-12 && r.moved && r.ks_reject && r.flagged);
    /* shrunk by 2 moves the tail too (either way) */
    assert_int_equal(cz_drift_compare(hb, mb, ha, ma, &opts, &r), 0);
    assert_true(r.ratio[CZ_DRIFT_P99] < 0.51 && r.flagged);
    /* 3 values, one of them 10x the reference's max */
    double s[3] = {1, 1.1, 10 * ma}, ms;
    uint64_t *hs = hist_of(s, 3, &ms);
    assert_int_equal(cz_drift_compare(ha, ma, hs, ms, &opts, &r), 0);
    assert_true(r.moved && !r.ks_reject && !r.flagged && r.ks_p > 0.01);
    /* a looser threshold changes the decision, not the statistics */
    cz_drift_opts loose = {.threshold = 3, .alpha = 0.01, .d_min = 0.1};
    assert_int_equal(cz_drift_compare(ha, ma, hb, mb, &loose, &r), 0);
    assert_true(!r.moved && r.ks_reject && !r.flagged);
    /* the bulk moves (x1.3 below the 90th percentile), the tail stays: flagged on p50 */
    double *c = malloc(N * sizeof *c), mc, p90 = cz_drift_quantile(ha, ma, 0.9);
    for (int i = 0; i < N; i++) c[i] = a[i] < 0.8 * p90 ? 1.3 * a[i] : a[i];
    uint64_t *hc = hist_of(c, N, &mc);
    assert_int_equal(cz_drift_compare(ha, ma, hc, mc, &opts, &r), 0);
    if (!(r.ratio[CZ_DRIFT_P99] == 1 && r.ratio[CZ_DRIFT_P50] > 1.2 && r.moved && r.ks_reject && r.flagged))
        fail_msg("bulk x1.3: ratios %.4f %.4f %.4f D %.4f moved %d reject %d", r.ratio[0], r.ratio[1], r.ratio[2],
                 r.ks_d, r.moved, r.ks_reject);
    /* a small shift (x1.03): KS's p is tiny at n = 5000 but D is under d_min, no quantile moved */
    for (int i = 0; i < N; i++) c[i] = 1.03 * a[i];
    free(hc);
    hc = hist_of(c, N, &mc);
    assert_int_equal(cz_drift_compare(ha, ma, hc, mc, &opts, &r), 0);
    if (!(r.ks_p < 0.01 && r.ks_d < opts.d_min && !r.ks_reject && !r.moved && !r.flagged))
        fail_msg("x1.03: D %.4f p %.3g moved %d reject %d", r.ks_d, r.ks_p, r.moved, r.ks_reject);
    free(c);
    free(hc);
    free(a);
    free(b);
    free(ha);
    free(hb);
    free(hs);
}

static void test_drift_refuses_empty_and_bad_options(void **state)
{
    (void)state;
    uint64_t *z = calloc(CZ_HIST_BINS, sizeof *z), *one = calloc(CZ_HIST_BINS, sizeof *one);
    one[CZ_HIST_BINS / 2] = 1;
    cz_drift_result r;
    assert_int_equal(cz_drift_compare(z, 0, one, 1, &opts, &r), -1);
    assert_int_equal(cz_drift_compare(one, 1, z, 0, &opts, &r), -1);
    cz_drift_opts bad1 = {.threshold = 1, .alpha = 0.01}, bad2 = {.threshold = 2, .alpha = 0},
                  bad3 = {.threshold = 2, .alpha = 0.01, .d_min = 1.5};
    assert_int_equal(cz_drift_compare(one, 1, one, 1, &bad1, &r), -1);
    assert_int_equal(cz_drift_compare(one, 1, one, 1, &bad2, &r), -1);
    assert_int_equal(cz_drift_compare(one, 1, one, 1, &bad3, &r), -1);
    assert_int_equal(cz_drift_compare(one, 1, one, 1, &opts, &r), 0);
    assert_true(cz_drift_quantile(z, 0, 0.5) == 0);
    free(z);
    free(one);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drift_kolmogorov_known),
        cmocka_unit_test(test_drift_ks_by_hand),
        cmocka_unit_test(test_drift_ks_pvalue_unequal),
        cmocka_unit_test(test_drift_quantile_is_hist),
        cmocka_unit_test(test_drift_flag_conditions),
        cmocka_unit_test(test_drift_refuses_empty_and_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
