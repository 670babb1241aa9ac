/* Paired statistics of the protocol report (include/chainz/stats.h) against values
 * worked out by hand in the comments. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "chainz/stats.h"

static void test_stats_mean_std(void **state)
{
    (void)state;
    /* {1,2,3,4}: mean 2.5; squared deviations 2.25+0.25+0.25+2.25 = 5, sd = sqrt(5/3) */
    const double x[4] = {1, 2, 3, 4};
    double m, s;
    cz_stats_mean_std(&m, &s, x, 4);
    assert_float_equal(m, 2.5, 1e-15);
    assert_float_equal(s, sqrt(5.0 / 3.0), 1e-15);
    cz_stats_mean_std(&m, &s, x + 2, 1); /* n = 1: sd 0, not NaN */
    assert_float_equal(m, 3, 0);
    assert_float_equal(s, 0, 0);
    cz_stats_mean_std(&m, &s, x, 0);
    assert_float_equal(m, 0, 0);
    assert_float_equal(s, 0, 0);
}

static void test_stats_ttest(void **state)
{
    (void)state;
    /* d = 1..5: mean 3, sd = sqrt(10/4), t = 3 / (sqrt(2.5)/sqrt(5)) = 3 sqrt(2) = 4.2426,
     * df 4. For 4 degrees of freedom the two-sided p has a closed form: with
     * u = t / sqrt(t^2 + 4) = sqrt(18/22), p = 1 - u (3 - u^2) / 2 = 0.0132355995636827 */
    const double d[5] = {1, 2, 3, 4, 5};
    cz_ttest t;
    cz_stats_ttest_paired(&t, d, 5);
    assert_float_equal(t.mean, 3, 1e-15);
    assert_float_equal(t.sd, sqrt(2.5), 1e-15);
    assert_float_equal(t.t, 3 * sqrt(2.0), 1e-12);
    assert_float_equal(t.df, 4, 0);
    assert_float_equal(t.p, 0.0132355995636827, 1e-12);
    assert_null(t.note);
    /* the sign does not change p; t changes sign */
    const double e[5] = {-1, -2, -3, -4, -5};
    cz_stats_ttest_paired(&t, e, 5);
    assert_float_equal(t.t, -3 * sqrt(2.0), 1e-12);
    assert_float_equal(t.p, 0.0132355995636827, 1e-12);
    /* df = 1 (n = 2): t-distribution with 1 df is Cauchy, p = 1 - 2 atan(|t|) / pi.
     * d = {1, 3}: mean 2, sd sqrt(2), t = 2 / (sqrt(2)/sqrt(2)) = 2, p = 1 - 2 atan(2)/pi */
    const double f[2] = {1, 3};
    cz_stats_ttest_paired(&t, f, 2);
    assert_float_equal(t.t, 2, 1e-12);
    assert_float_equal(t.p, 1 - 2 * atan(2.0) / M_PI, 1e-12);
}

static void test_stats_ttest_degenerate(void **state)
{
    (void)state;
    cz_ttest t;
    const double one[1] = {0.3};
    cz_stats_ttest_paired(&t, one, 1); /* n = 1: no test, p = 1, a note */
    assert_float_equal(t.p, 1, 0);
    assert_float_equal(t.t, 0, 0);
    assert_string_equal(t.note, "fewer than 2 pairs");
    const double zero[4] = {0, 0, 0, 0}; /* identical inputs: every difference 0 */
    cz_stats_ttest_paired(&t, zero, 4);
    assert_float_equal(t.p, 1, 0);
    assert_string_equal(t.note, "no difference");
    const double same[3] = {0.25, 0.25, 0.25}; /* sd 0, mean != 0: t would be infinite */
    cz_stats_ttest_paired(&t, same, 3);
    assert_float_equal(t.p, 0, 0);
    assert_false(isnan(t.t));
    assert_string_equal(t.note, "all differences equal and non-zero");
    cz_stats_ttest_paired(&t, NULL, 0);
    assert_float_equal(t.p, 1, 0);
}

static void test_stats_wilcoxon_exact(void **state)
{
    (void)state;
    cz_wilcoxon w;
    /* n = 5, all positive: W+ = 15 is the largest of the 2^5 = 32 equally likely sign
     * patterns' sums, P(W+ >= 15) = 1/32, two-sided p = 2/32 */
    const double d[5] = {0.1, 0.2, 0.3, 0.4, 0.5};
    assert_int_equal(cz_stats_wilcoxon(&w, d, 5), 0);
    assert_true(w.exact);
    assert_float_equal(w.w_plus, 15, 0);
    assert_float_equal(w.w_minus, 0, 0);
    assert_float_equal(w.p, 2.0 / 32, 1e-15);
    /* {1, -2, 3, 4, 5}: W+ = 13, W- = 2; P(W+ >= 13) = P(W- <= 2): the rank subsets with
     * sum <= 2 are {}, {1}, {2}: 3/32, two-sided 6/32 */
    const double e[5] = {1, -2, 3, 4, 5};
    cz_stats_wilcoxon(&w, e, 5);
    assert_float_equal(w.w_plus, 13, 0);
    assert_float_equal(w.p, 6.0 / 32, 1e-15);
    /* zero differences are dropped (Wilcoxon's method): the same as n = 5 */
    const double z[7] = {0, 0.1, 0.2, 0, 0.3, 0.4, 0.5};
    cz_stats_wilcoxon(&w, z, 7);
    assert_int_equal(w.n, 5);
    assert_int_equal(w.zeros, 2);
    assert_float_equal(w.p, 2.0 / 32, 1e-15);
    /* n = 1: W+ = 1, P(W+ >= 1) = 1/2, P(W+ <= 1) = 1: p = min(1, 2 * 1/2) = 1 */
    cz_stats_wilcoxon(&w, d, 1);
    assert_float_equal(w.p, 1, 0);
    /* W+ in the middle: {1, -2, -3, 4} (n = 4, 16 patterns): W+ = 5 = n(n+1)/4, the
     * median: P(W+ <= 5) = 8/16 by symmetry + P(W+=5)/2... counted: sums <= 5 of subsets
     * of {1,2,3,4}: {},1,2,3,4,12,13,14,23 -> 9 of 16, so p = min(1, 2 * 9/16) = 1 */
    const double m[4] = {1, -2, -3, 4};
    cz_stats_wilcoxon(&w, m, 4);
    assert_float_equal(w.w_plus, 5, 0);
    assert_float_equal(w.p, 1, 0);
}

static void test_stats_wilcoxon_ties_and_normal(void **state)
{
    (void)state;
    cz_wilcoxon w;
    /* |d| = 1,1,1,2,2,3 -> average ranks 2,2,2, 4.5,4.5, 6; positives 1,1,2,2,3:
     * W+ = 2+2+4.5+4.5+6 = 19, W- = 2. Ties: normal approximation, N = 6,
     * mean 6*7/4 = 10.5, variance 6*7*13/24 - ((3^3-3) + (2^3-2))/48 = 22.75 - 0.625
     * = 22.125, z = 8.5 / sqrt(22.125) = 1.80707961, p = erfc(z / sqrt 2) = 0.0707498671 */
    const double d[6] = {1, 1, -1, 2, 2, 3};
    cz_stats_wilcoxon(&w, d, 6);
    assert_true(w.ties);
    assert_false(w.exact);
    assert_float_equal(w.w_plus, 19, 0);
    assert_float_equal(w.w_minus, 2, 0);
    assert_float_equal(w.z, 8.5 / sqrt(22.125), 1e-12);
    assert_float_equal(w.p, 0.07074986707637768, 1e-12);
    /* all equal and non-zero: one tie group of 3, ranks 2, W+ = 6, mean 3, variance
     * 3*4*7/24 - (27-3)/48 = 3, z = sqrt(3), p = erfc(sqrt(3/2)) = 0.0832645166635504 */
    const double s[3] = {0.5, 0.5, 0.5};
    cz_stats_wilcoxon(&w, s, 3);
    assert_float_equal(w.p, 0.08326451666355043, 1e-12);
    /* identical inputs (all differences 0): p = 1, a note, no NaN */
    const double zero[4] = {0, 0, 0, 0};
    cz_stats_wilcoxon(&w, zero, 4);
    assert_float_equal(w.p, 1, 0);
    assert_string_equal(w.note, "all differences zero");
    /* n = 60 > EXACT_MAX without ties: d = 1..60, W+ = 1830, mean 915, variance
     * 60*61*121/24 = 18452.5, z = 915 / sqrt(18452.5) */
    double big[60];
    for (int i = 0; i < 60; i++) big[i] = i + 1;
    cz_stats_wilcoxon(&w, big, 60);
    assert_false(w.exact);
    assert_float_equal(w.z, 915 / sqrt(18452.5), 1e-12);
    assert_true(w.p > 0 && w.p < 1e-10);
    /* the exact path agrees with enumeration at its limit's scale: n = 10, all positive:
     * p = 2 / 1024 */
    cz_stats_wilcoxon(&w, big, 10);
    assert_true(w.exact);
    assert_float_equal(w.p, 2.0 / 1024, 1e-15);
}

static void test_stats_bonferroni(void **state)
{
    (void)state;
    /* 6 models against the first, 4 fractions: 24 comparisons, 0.05 / 24 */
    assert_float_equal(cz_stats_bonferroni(0.05, 24), 0.05 / 24, 1e-18);
    assert_float_equal(cz_stats_bonferroni(0.05, 1), 0.05, 0);
    assert_float_equal(cz_stats_bonferroni(0.05, 0), 0.05, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_mean_std),
        cmocka_unit_test(test_stats_ttest),
        cmocka_unit_test(test_stats_ttest_degenerate),
        cmocka_unit_test(test_stats_wilcoxon_exact),
        cmocka_unit_test(test_stats_wilcoxon_ties_and_normal),
        cmocka_unit_test(test_stats_bonferroni),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
