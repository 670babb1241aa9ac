/* The pieces that keep real-data training honest and stable (issue 14), on one process:
 * the stratified holdout (src/train/feed.c) and the divergence detector (src/train/diverge.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../src/train/diverge.h"
#include "../src/train/feed.h"

static void count_classes(const uint64_t *rows, size_t n, const int32_t *y, size_t *cnt, int K)
{
    memset(cnt, 0, (size_t)K * sizeof *cnt);
    for (size_t i = 0; i < n; i++) cnt[y[rows[i]]]++;
}

/* Pima's training split: 400 and 214 rows; 20 % held out = 122 = 80 + 42 (42.8 rounded down:
 * the largest-remainder rule only adds when the floors fall short of floor(0.2 * 614)). */
static void test_holdout_stratified_pima(void **state)
{
    (void)state;
    enum { N = 614 };
    int32_t y[N];
    for (size_t i = 0; i < N; i++) y[i] = (i * 7 % N) < 214; /* classes interleaved */
    uint64_t perm[N];
    size_t nh = 0, cnt[2];
    cz_error err = {0};
    assert_int_equal(cz_feed_holdout(perm, N, 0.2, 5, y, 2, 1, &nh, &err), 0);
    assert_int_equal(nh, 122);
    count_classes(perm, nh, y, cnt, 2);
    assert_int_equal(cnt[0], 80);
    assert_int_equal(cnt[1], 42);
    /* both parts ascending, together every row once */
    char seen[N] = {0};
    for (size_t i = 0; i < N; i++) {
        assert_true(perm[i] < N);
        assert_false(seen[perm[i]]);
        seen[perm[i]] = 1;
        if (i && i != nh) assert_true(perm[i - 1] < perm[i]);
    }
    /* the unstratified draw of older runs is still there and is another sample */
    uint64_t rnd[N];
    size_t nh2 = 0;
    assert_int_equal(cz_feed_holdout(rnd, N, 0.2, 5, y, 2, 0, &nh2, &err), 0);
    assert_int_equal(nh2, 122);
    assert_memory_not_equal(rnd, perm, nh * sizeof *perm);
    /* the same seed gives the same rows, another seed others */
    uint64_t again[N];
    assert_int_equal(cz_feed_holdout(again, N, 0.2, 5, y, 2, 1, &nh2, &err), 0);
    assert_memory_equal(again, perm, sizeof perm);
    assert_int_equal(cz_feed_holdout(again, N, 0.2, 6, y, 2, 1, &nh2, &err), 0);
    assert_memory_not_equal(again, perm, sizeof perm);
}

/* 3 + 7 rows, half held out: floors 1 + 3 = 4 < 5; remainders 0.5 and 0.5 tie, the lower
 * class gets the extra row: 2 + 3. */
static void test_holdout_largest_remainder(void **state)
{
    (void)state;
    int32_t y[10] = {0, 1, 1, 0, 1, 1, 1, 0, 1, 1};
    uint64_t perm[10];
    size_t nh = 0, cnt[2];
    cz_error err = {0};
    assert_int_equal(cz_feed_holdout(perm, 10, 0.5, 1, y, 2, 1, &nh, &err), 0);
    assert_int_equal(nh, 5);
    count_classes(perm, nh, y, cnt, 2);
    assert_int_equal(cnt[0], 2);
    assert_int_equal(cnt[1], 3);
    /* regression (no classes): a plain random draw of floor(f N) rows */
    assert_int_equal(cz_feed_holdout(perm, 10, 0.35, 1, NULL, 0, 1, &nh, &err), 0);
    assert_int_equal(nh, 3);
    /* nothing held out: the identity; too little: refused with the numbers */
    assert_int_equal(cz_feed_holdout(perm, 10, 0, 1, y, 2, 1, &nh, &err), 0);
    for (size_t i = 0; i < 10; i++) assert_int_equal(perm[i], i);
    assert_int_equal(cz_feed_holdout(perm, 10, 0.05, 1, y, 2, 1, &nh, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "--holdout 0.05 of 10 rows"));
}

static int feed(cz_diverge *dv, double loss, double dreg, double *ratio)
{
    double v[CZ_DV_N] = {loss, dreg};
    return cz_diverge_check(dv, 100, v, ratio);
}

static void test_diverge_steady_and_noisy(void **state)
{
    (void)state;
    cz_diverge dv = {0};
    double r;
    /* a decreasing loss with 10x noise never trips a 100x check */
    for (int s = 0; s < 500; s++) assert_int_equal(feed(&dv, 2.3 / (1 + s * 0.05) * (s % 7 ? 1 : 10), 50, &r), -1);
    /* DREG falling 1000x and climbing back to where it started: not divergence */
    cz_diverge d2 = {0};
    for (int s = 0; s < 200; s++) assert_int_equal(feed(&d2, 1, 1e3 / (1 + s * 5.0), &r), -1);
    for (int s = 0; s < 20; s++) assert_int_equal(feed(&d2, 1, 1e3, &r), -1);
    /* zero DREG (lambda 0) is skipped, not log(0) */
    cz_diverge d3 = {0};
    for (int s = 0; s < 50; s++) assert_int_equal(feed(&d3, 1, 0, &r), -1);
    assert_int_equal(d3.n[CZ_DV_DREG], 0);
}

static void test_diverge_jump(void **state)
{
    (void)state;
    cz_diverge dv = {0};
    double r;
    /* a jump during the first 8 steps is not judged (no level yet) */
    for (int s = 0; s < 7; s++) assert_int_equal(feed(&dv, 1, 100, &r), -1);
    assert_int_equal(feed(&dv, 1, 1e6, &r), -1);
    cz_diverge d2 = {0};
    for (int s = 0; s < 30; s++) assert_int_equal(feed(&d2, 1, 100, &r), -1);
    assert_true(cz_diverge_reference(&d2, CZ_DV_DREG) > 99 && cz_diverge_reference(&d2, CZ_DV_DREG) < 101);
    assert_int_equal(feed(&d2, 1, 150 * 100.0, &r), CZ_DV_DREG);
    assert_true(r > 149 && r < 151);
    cz_diverge d3 = {0};
    for (int s = 0; s < 30; s++) assert_int_equal(feed(&d3, 0.5, 100, &r), -1);
    assert_int_equal(feed(&d3, 500, 100, &r), CZ_DV_LOSS);
    assert_true(r > 999 && r < 1001);
    /* factor 0: off */
    double v[CZ_DV_N] = {1e9, 1e9};
    assert_int_equal(cz_diverge_check(&d3, 0, v, &r), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_holdout_stratified_pima),
        cmocka_unit_test(test_holdout_largest_remainder),
        cmocka_unit_test(test_diverge_steady_and_noisy),
        cmocka_unit_test(test_diverge_jump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
