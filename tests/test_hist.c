/* Log-bucket histograms: every quantile within 1% of the exact one, on heavy-tailed and
 * degenerate inputs; merging equals the histogram of the union, exactly. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chainz/hist.h"
#include "chainz/rng.h"

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* exact quantile with the histogram's rank convention: nearest rank, element ceil(q n) - 1 */
static double exact_q(const double *sorted, size_t n, double q)
{
    double r = ceil(q * (double)n) - 1;
    return q >= 1 ? sorted[n - 1] : sorted[r > 0 ? (size_t)r : 0];
}

static void check_quantiles(double *v, size_t n, const char *what)
{
    cz_hist *h = malloc(sizeof *h);
    cz_hist_reset(h);
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        cz_hist_add(h, v[i]);
        sum += v[i];
    }
    qsort(v, n, sizeof *v, cmp_d);
    const double qs[] = {0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1};
    for (size_t k = 0; k < sizeof qs / sizeof *qs; k++) {
        double want = exact_q(v, n, qs[k]), got = cz_hist_quantile(h, qs[k]);
        double rel = want == 0 ? fabs(got) : fabs(got - want) / want;
        if (rel > 0.01 + 1e-12)
            print_error("%s: q %.3f exact %.17g hist %.17g rel %.4g\n", what, qs[k], want, got, rel);
        assert_true(rel <= 0.01 + 1e-12);
    }
    cz_hist_summary s;
    cz_hist_summarize(h, &s);
    assert_true(s.count == (double)n);
    assert_true(s.max == v[n - 1]);
    if (!(fabs(s.mean - sum / (double)n) <= 1e-12 * fabs(sum / (double)n) + 1e-300))
        print_error("%s: mean %.17g vs %.17g\n", what, s.mean, sum / (double)n);
    assert_true(fabs(s.mean - sum / (double)n) <= 1e-12 * fabs(sum / (double)n) + 1e-300);
    if (s.mean > 0) assert_true(fabs(s.tau - s.p99 / s.mean) <= 1e-15 * s.tau);
    free(h);
}

static void test_hist_heavy_tails_within_one_percent(void **state)
{
    (void)state;
    enum { N = 100000 };
    double *v = malloc(N * sizeof *v);
    cz_rng r;
    cz_rng_seed(&r, 1);
    for (int i = 0; i < N; i++) v[i] = pow(1.0 - cz_rng_uniform(&r), -1.0 / 1.2); /* Pareto, alpha 1.2 */
    check_quantiles(v, N, "pareto");
    for (int i = 0; i < N; i++) v[i] = exp(3.0 * cz_rng_normal(&r)); /* lognormal, sigma 3 */
    check_quantiles(v, N, "lognormal");
    for (int i = 0; i < N; i++) v[i] = fabs(cz_rng_normal(&r)) * 1e-6;
    check_quantiles(v, N, "tiny half-normal");
    free(v);
}

static void test_hist_degenerate_inputs(void **state)
{
    (void)state;
    enum { N = 1000 };
    double v[N];
    for (int i = 0; i < N; i++) v[i] = 3.7;
    check_quantiles(v, N, "all equal");
    for (int i = 0; i < N; i++) v[i] = 0;
    check_quantiles(v, N, "all zero");
    for (int i = 0; i < N; i++) v[i] = i < N / 2 ? 0 : 1.5;
    check_quantiles(v, N, "half zero");
    for (int i = 0; i < N; i++) v[i] = pow(10.0, -15.0 + 26.0 * i / (N - 1)); /* 1e-15 .. 1e11 */
    check_quantiles(v, N, "huge range");
    /* beyond the exact sum's range: quantiles and max stay right, the mean says NaN */
    cz_hist big;
    cz_hist_reset(&big);
    cz_hist_add(&big, 1.0);
    cz_hist_add(&big, 1e15);
    cz_hist_summary bs;
    cz_hist_summarize(&big, &bs);
    assert_true(isnan(bs.mean) && isnan(bs.tau) && bs.max == 1e15);
    assert_true(fabs(cz_hist_quantile(&big, 0.0) - 1.0) <= 0.01);
    double one = 42;
    check_quantiles(&one, 1, "single value");
    cz_hist h;
    cz_hist_reset(&h);
    assert_true(cz_hist_quantile(&h, 0.5) == 0);
    cz_hist_summary s;
    cz_hist_summarize(&h, &s);
    assert_true(s.count == 0 && s.mean == 0 && s.tau == 0);
}

/* few values (an epoch of 2 optimizer steps): p99 is the largest, tau >= 1 */
static void test_hist_few_values_p99_is_max(void **state)
{
    (void)state;
    cz_hist h;
    cz_hist_reset(&h);
    cz_hist_add(&h, 3.222);
    cz_hist_add(&h, 3.86);
    cz_hist_summary s;
    cz_hist_summarize(&h, &s);
    assert_true(fabs(s.p99 - 3.86) < 0.011 * 3.86);
    assert_true(fabs(s.p50 - 3.222) < 0.011 * 3.222); /* ceil(0.5 * 2) - 1 = rank 0 */
    assert_true(s.tau > 1.0);
    cz_hist_add(&h, 1.0); /* 3 values: p50 is the middle one */
    cz_hist_summarize(&h, &s);
    assert_true(fabs(s.p50 - 3.222) < 0.011 * 3.222);
}

static void test_hist_merge_equals_union(void **state)
{
    (void)state;
    cz_rng r;
    cz_rng_seed(&r, 9);
    cz_hist *all = malloc(sizeof *all), *parts = malloc(3 * sizeof *parts), *merged = malloc(sizeof *merged);
    cz_hist_reset(all);
    cz_hist_reset(merged);
    for (int k = 0; k < 3; k++) cz_hist_reset(&parts[k]);
    for (int i = 0; i < 30000; i++) {
        double x = exp(2.0 * cz_rng_normal(&r));
        cz_hist_add(all, x);
        cz_hist_add(&parts[cz_rng_below(&r, 3)], x);
    }
    /* any merge order gives the same bits */
    cz_hist_merge(merged, &parts[2]);
    cz_hist_merge(merged, &parts[0]);
    cz_hist_merge(merged, &parts[1]);
    assert_memory_equal(all->counts, merged->counts, sizeof all->counts);
    assert_true(all->count == merged->count && all->max == merged->max);
    assert_memory_equal(&all->sum, &merged->sum, sizeof all->sum);
    free(all);
    free(parts);
    free(merged);
}

static void test_hist_edges_bracket_bins(void **state)
{
    (void)state;
    double *e = malloc((CZ_HIST_BINS + 1) * sizeof *e);
    cz_hist_edges(e);
    assert_true(e[0] == 0);
    double g = cz_hist_gamma();
    assert_true(fabs(g - 1.01 / 0.99) < 1e-15);
    for (int i = 2; i <= CZ_HIST_BINS; i++) assert_true(fabs(e[i] / e[i - 1] - g) < 1e-12);
    /* a value lands in the bin whose edges bracket it */
    cz_hist h;
    const double xs[] = {1e-10, 0.5, 1, 3.14159, 2.5e7};
    for (size_t k = 0; k < 5; k++) {
        cz_hist_reset(&h);
        cz_hist_add(&h, xs[k]);
        int bin = -1;
        for (int i = 0; i < CZ_HIST_BINS; i++)
            if (h.counts[i]) bin = i;
        assert_true(bin > 0);
        assert_true(xs[k] > e[bin] * (1 - 1e-12) && xs[k] <= e[bin + 1] * (1 + 1e-12));
    }
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_heavy_tails_within_one_percent),
        cmocka_unit_test(test_hist_degenerate_inputs),
        cmocka_unit_test(test_hist_few_values_p99_is_max),
        cmocka_unit_test(test_hist_merge_equals_union),
        cmocka_unit_test(test_hist_edges_bracket_bins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
