/* Exact fixed-point sums (include/chainz/fixed.h): bit-identical totals whatever the order
 * and grouping, agreement with an extended-precision reference, rejection of values that
 * cannot be represented, the documented floor below 2^-64, and the scaled read-out. */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chainz/fixed.h"

enum { N_VALUES = 4000 };

/* A local splitmix64: chainz_dist does not link the engine's cz_rng. */
static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s) { return (double)(mix(s) >> 11) * 0x1p-53; }

/* |x| log-uniform in 1e-20..1e6, random sign */
static void random_values(float *x, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        double mag = pow(10.0, -20.0 + 26.0 * uniform(&s));
        x[i] = (float)((mix(&s) & 1) ? -mag : mag);
    }
}

static int same_fixed(cz_fixed a, cz_fixed b) { return memcmp(&a, &b, sizeof a) == 0; }
static int same_double(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* Every value of x into the one slot `slot` (the API adds x[i] to slot off + i). */
static void add_floats_to_slot(cz_fixed_acc *a, size_t slot, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) cz_fixed_add_float(a, slot, &x[i], 1);
}

static void add_doubles_to_slot(cz_fixed_acc *a, size_t slot, const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++) cz_fixed_add_double(a, slot, &x[i], 1);
}

/* The values are N_VALUES / SLOTS vectors of SLOTS entries (like per-sample gradient
 * contributions); value k belongs to slot k % SLOTS. The reference adds whole vectors in
 * order; the variants add them in other orders, element by element, or in k partial
 * accumulators combined by integer addition (what an allreduce over k ranks does). */
enum { SLOTS = 8, VECTORS = N_VALUES / SLOTS };

static void test_fixed_order_and_grouping_independent(void **state)
{
    (void)state;
    float *x = malloc(N_VALUES * sizeof *x);
    size_t *perm = malloc(N_VALUES * sizeof *perm);
    assert_non_null(x);
    assert_non_null(perm);
    random_values(x, N_VALUES, 2024);

    cz_fixed_acc ref, a;
    assert_int_equal(cz_fixed_init(&ref, SLOTS), 0);
    assert_int_equal(cz_fixed_init(&a, SLOTS), 0);
    for (size_t v = 0; v < VECTORS; v++) cz_fixed_add_float(&ref, 0, x + v * SLOTS, SLOTS);
    assert_int_equal(ref.bad, 0);
    double ref_value[SLOTS];
    for (size_t j = 0; j < SLOTS; j++) {
        assert_false(same_fixed(ref.v[j], 0));
        ref_value[j] = cz_fixed_value(&ref, j);
    }

    /* vectors back to front */
    for (size_t v = VECTORS; v-- > 0;) cz_fixed_add_float(&a, 0, x + v * SLOTS, SLOTS);
    assert_memory_equal(a.v, ref.v, SLOTS * sizeof(cz_fixed));

    /* the same values as doubles convert identically */
    double *xd = malloc(N_VALUES * sizeof *xd);
    assert_non_null(xd);
    for (size_t i = 0; i < N_VALUES; i++) xd[i] = (double)x[i];
    cz_fixed_zero(&a);
    for (size_t v = 0; v < VECTORS; v++) cz_fixed_add_double(&a, 0, xd + v * SLOTS, SLOTS);
    assert_memory_equal(a.v, ref.v, SLOTS * sizeof(cz_fixed));
    free(xd);

    uint64_t s = 77;
    static const int parts[] = {1, 2, 3, 7};
    int naive_differs = 0;
    double naive_ref = 0;
    for (size_t v = 0; v < VECTORS; v++) naive_ref += x[v * SLOTS];
    for (int trial = 0; trial < 4; trial++) {
        /* a random order of single elements, each into its own slot */
        for (size_t i = 0; i < N_VALUES; i++) perm[i] = i;
        for (size_t i = N_VALUES - 1; i > 0; i--) {
            size_t j = (size_t)(mix(&s) % (i + 1)), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        double naive = 0;
        for (size_t i = 0; i < N_VALUES; i++)
            if (perm[i] % SLOTS == 0) naive += x[perm[i]];
        naive_differs += naive != naive_ref;

        cz_fixed_zero(&a);
        for (size_t i = 0; i < N_VALUES; i++) cz_fixed_add_float(&a, perm[i] % SLOTS, &x[perm[i]], 1);
        assert_memory_equal(a.v, ref.v, SLOTS * sizeof(cz_fixed));

        /* k partial accumulators, each element to a random one */
        int k = parts[trial];
        cz_fixed_acc part[7];
        for (int j = 0; j < k; j++) assert_int_equal(cz_fixed_init(&part[j], SLOTS), 0);
        for (size_t i = 0; i < N_VALUES; i++) {
            int j = (int)(mix(&s) % (uint64_t)k);
            cz_fixed_add_float(&part[j], perm[i] % SLOTS, &x[perm[i]], 1);
        }
        cz_fixed total[SLOTS] = {0};
        for (int j = k; j-- > 0;)
            for (size_t q = 0; q < SLOTS; q++) total[q] += part[j].v[q];
        cz_fixed_acc t = {.v = total, .n = SLOTS, .bad = 0};
        assert_memory_equal(total, ref.v, sizeof total);
        for (size_t q = 0; q < SLOTS; q++) assert_true(same_double(cz_fixed_value(&t, q), ref_value[q]));
        for (int j = 0; j < k; j++) cz_fixed_free(&part[j]);
    }
    /* the data is hard: plain double summation depends on the order */
    assert_true(naive_differs > 0);

    /* all values into a single slot, in two different orders */
    cz_fixed_acc one, two;
    assert_int_equal(cz_fixed_init(&one, 1), 0);
    assert_int_equal(cz_fixed_init(&two, 1), 0);
    add_floats_to_slot(&one, 0, x, N_VALUES);
    for (size_t i = 0; i < N_VALUES; i++) cz_fixed_add_float(&two, 0, &x[perm[i]], 1);
    assert_true(same_fixed(one.v[0], two.v[0]));
    cz_fixed sum_slots = 0;
    for (size_t q = 0; q < SLOTS; q++) sum_slots += ref.v[q];
    assert_true(same_fixed(one.v[0], sum_slots));

    cz_fixed_free(&one);
    cz_fixed_free(&two);
    cz_fixed_free(&a);
    cz_fixed_free(&ref);
    free(perm);
    free(x);
}

static void test_fixed_slots_are_independent(void **state)
{
    (void)state;
    cz_fixed_acc a;
    assert_int_equal(cz_fixed_init(&a, 4), 0);
    for (size_t i = 0; i < 4; i++) assert_true(same_fixed(a.v[i], 0));
    const float x[3] = {1.0f, 2.0f, 4.0f};
    cz_fixed_add_float(&a, 1, x, 3); /* slots 1, 2, 3 */
    cz_fixed_add_float(&a, 2, x, 2); /* slots 2, 3 */
    assert_true(cz_fixed_value(&a, 0) == 0.0);
    assert_true(cz_fixed_value(&a, 1) == 1.0);
    assert_true(cz_fixed_value(&a, 2) == 3.0);
    assert_true(cz_fixed_value(&a, 3) == 6.0);
    cz_fixed_zero(&a);
    for (size_t i = 0; i < 4; i++) assert_true(cz_fixed_value(&a, i) == 0.0);
    cz_fixed_free(&a);
    assert_null(a.v);
}

static long double kahan(const float *x, size_t n)
{
    long double sum = 0, c = 0;
    for (size_t i = 0; i < n; i++) {
        long double y = (long double)x[i] - c;
        long double t = sum + y;
        c = (t - sum) - y;
        sum = t;
    }
    return sum;
}

static void test_fixed_matches_extended_reference(void **state)
{
    (void)state;
    float *x = malloc(N_VALUES * sizeof *x);
    assert_non_null(x);
    for (uint64_t seed = 1; seed <= 5; seed++) {
        random_values(x, N_VALUES, seed);
        cz_fixed_acc a;
        assert_int_equal(cz_fixed_init(&a, 1), 0);
        add_floats_to_slot(&a, 0, x, N_VALUES);
        long double ref = kahan(x, N_VALUES);
        double got = cz_fixed_value(&a, 0);
        assert_true(ref != 0);
        assert_true(fabsl(((long double)got - ref) / ref) < 1e-12L);
        cz_fixed_free(&a);
    }
    free(x);

    /* a cancellation that double arithmetic loses entirely */
    const double c[3] = {0x1p40, 0x1p-60, -0x1p40};
    double naive = (c[0] + c[1]) + c[2];
    assert_true(naive == 0.0);
    cz_fixed_acc a;
    assert_int_equal(cz_fixed_init(&a, 1), 0);
    add_doubles_to_slot(&a, 0, c, 3);
    assert_true(cz_fixed_value(&a, 0) == 0x1p-60);
    cz_fixed_free(&a);
}

static void test_fixed_rejects_unrepresentable(void **state)
{
    (void)state;
    cz_fixed_acc a;
    assert_int_equal(cz_fixed_init(&a, 1), 0);
    const float bad_f[6] = {NAN, INFINITY, -INFINITY, 0x1p46f, -0x1p46f, 1e20f};
    const float good_f[3] = {1.5f, -0.25f, 0x1p46f - 0x1p22f}; /* largest float below 2^46 */
    add_floats_to_slot(&a, 0, bad_f, 6);
    assert_int_equal(a.bad, 6);
    assert_true(cz_fixed_value(&a, 0) == 0.0);
    add_floats_to_slot(&a, 0, good_f, 3);
    assert_int_equal(a.bad, 6);
    assert_true(cz_fixed_value(&a, 0) == 1.25 + (0x1p46 - 0x1p22));

    cz_fixed_zero(&a);
    assert_int_equal(a.bad, 0);
    const double bad_d[5] = {NAN, -INFINITY, 0x1p46, -0x1p46, 1e300};
    const double edge = 0x1p46 - 0x1p-7; /* largest double below 2^46: accepted, exact */
    add_doubles_to_slot(&a, 0, bad_d, 5);
    cz_fixed_add_double(&a, 0, &edge, 1);
    assert_int_equal(a.bad, 5);
    assert_true(cz_fixed_value(&a, 0) == edge);
    cz_fixed_free(&a);
}

/* Documented rounding: conversion floors at 2^-64 (toward -inf), so a positive value below
 * 2^-64 contributes 0 and a negative one contributes -2^-64, the same on every machine. */
static void test_fixed_tiny_values_floor(void **state)
{
    (void)state;
    cz_fixed_acc a;
    assert_int_equal(cz_fixed_init(&a, 1), 0);
    const double ulp = 0x1p-64;
    struct {
        double x, want;
    } cases[] = {
        {0x1p-65, 0},           {1e-30, 0},          {DBL_MIN, 0},          {4.9e-324, 0},
        {-0x1p-65, -ulp},       {-1e-30, -ulp},      {-4.9e-324, -ulp},     {-0x1p-200, -ulp},
        {0x1p-64, ulp},         {-0x1p-64, -ulp},    {3 * 0x1p-65, ulp},    {-3 * 0x1p-65, -2 * ulp},
        {0.0, 0},               {-0.0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cz_fixed_zero(&a);
        cz_fixed_add_double(&a, 0, &cases[i].x, 1);
        assert_int_equal(a.bad, 0);
        assert_true(cz_fixed_value(&a, 0) == cases[i].want);
    }
    /* float subnormals go through the same conversion */
    const float fs[2] = {1e-45f, -1e-45f};
    cz_fixed_zero(&a);
    cz_fixed_add_float(&a, 0, &fs[0], 1);
    assert_true(cz_fixed_value(&a, 0) == 0.0);
    cz_fixed_zero(&a);
    cz_fixed_add_float(&a, 0, &fs[1], 1);
    assert_true(cz_fixed_value(&a, 0) == -ulp);
    /* each tiny negative floors on its own: 1000 of them are -1000 units, not -0 */
    cz_fixed_zero(&a);
    for (int i = 0; i < 1000; i++) {
        double t = -0x1p-74;
        cz_fixed_add_double(&a, 0, &t, 1);
    }
    assert_true(cz_fixed_value(&a, 0) == -1000 * ulp);
    cz_fixed_free(&a);
}

static void test_fixed_get_scales_a_range(void **state)
{
    (void)state;
    cz_fixed_acc a;
    assert_int_equal(cz_fixed_init(&a, 5), 0);
    const double v[5] = {7.0, 0.75, -1.5, 1000.0, 0x1p-40};
    cz_fixed_add_double(&a, 0, v, 5);
    cz_fixed_add_double(&a, 0, v, 5); /* totals 2 v */
    double out[4] = {0, 0, 0, 12345.0};
    cz_fixed_get(&a, 1, out, 3, 0.25); /* exact: a power of two */
    assert_true(out[0] == 0.375);
    assert_true(out[1] == -0.75);
    assert_true(out[2] == 500.0);
    assert_true(out[3] == 12345.0); /* nothing written past n */
    cz_fixed_get(&a, 4, out, 1, 1.0);
    assert_true(out[0] == 0x1p-39);
    assert_true(out[0] == cz_fixed_value(&a, 4));
    /* a mean: sum / count */
    cz_fixed_get(&a, 0, out, 1, 1.0 / 3.0);
    assert_true(fabs(out[0] - 14.0 / 3.0) <= 2 * DBL_EPSILON * (14.0 / 3.0));
    cz_fixed_get(&a, 0, out, 1, 0.0);
    assert_true(out[0] == 0.0);
    cz_fixed_free(&a);
}

/* fixed.h: "out[i] = sum[off + i] * scale, rounded once to double". With an integer
 * scale the exact product is an integer in fixed units, so (double)(sum * 3) * 2^-64 is
 * the once-rounded reference. The sum 1 + 2^-53 - 2^-70 rounds to 1.0 as a double, but
 * 3 times it is 3 + 0.75 ulp(3) and rounds once to 3 + 2^-51. */
/* Documented contract: the exact sum is rounded once to double, then scaled (a second
 * rounding); deterministic either way. 1 + 2^-53 - 2^-70 rounds to 1 (ties-to-even is not
 * reached: the sum is just below the halfway point), so the result is exactly 3. */
static void test_fixed_get_rounds_sum_then_scales(void **state)
{
    (void)state;
    cz_fixed_acc a;
    assert_int_equal(cz_fixed_init(&a, 1), 0);
    const double parts[3] = {1.0, 0x1p-53, -0x1p-70};
    add_doubles_to_slot(&a, 0, parts, 3);
    double out = 0;
    cz_fixed_get(&a, 0, &out, 1, 3.0);
    assert_true(cz_fixed_value(&a, 0) == 1.0);
    assert_true(out == 3.0);
    cz_fixed_free(&a);
}

/* Each value below 2^46 is accepted and, with 64 fractional bits, totals are exact up to
 * 2^63: three values near the limit sum exactly, and a grouping that crosses zero on the
 * way (the review's 6e13, 6e13, 6e13, -6e13 on 1 rank vs 2 + 2) gives the same bits. */
static void test_fixed_total_never_wraps_silently(void **state)
{
    (void)state;
    cz_fixed_acc a;
    assert_int_equal(cz_fixed_init(&a, 1), 0);
    const double v = 0.75 * 0x1p46; /* about 5.3e13, a legal value */
    for (int i = 0; i < 3; i++) cz_fixed_add_double(&a, 0, &v, 1);
    long bad = a.bad;
    double got = cz_fixed_value(&a, 0);
    cz_fixed_free(&a);
    if (!(bad == 0 && got == 3 * v)) print_error("3 x %.17g summed to %.17g with bad = %ld\n", v, got, bad);
    assert_true(bad == 0 && got == 3 * v);
    cz_fixed_acc one, left, right;
    assert_int_equal(cz_fixed_init(&one, 1), 0);
    assert_int_equal(cz_fixed_init(&left, 1), 0);
    assert_int_equal(cz_fixed_init(&right, 1), 0);
    const double xs[4] = {6e13, 6e13, 6e13, -6e13};
    for (int i = 0; i < 4; i++) cz_fixed_add_double(&one, 0, &xs[i], 1);
    for (int i = 0; i < 2; i++) cz_fixed_add_double(&left, 0, &xs[i], 1);
    for (int i = 2; i < 4; i++) cz_fixed_add_double(&right, 0, &xs[i], 1);
    cz_fixed merged = cz_fixed_add(left.v[0], right.v[0]);
    assert_memory_equal(&merged, &one.v[0], sizeof merged);
    assert_true(cz_fixed_value(&one, 0) == 1.2e14 && one.bad == 0);
    cz_fixed_free(&one);
    cz_fixed_free(&left);
    cz_fixed_free(&right);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_order_and_grouping_independent),
        cmocka_unit_test(test_fixed_slots_are_independent),
        cmocka_unit_test(test_fixed_matches_extended_reference),
        cmocka_unit_test(test_fixed_rejects_unrepresentable),
        cmocka_unit_test(test_fixed_tiny_values_floor),
        cmocka_unit_test(test_fixed_get_scales_a_range),
        cmocka_unit_test(test_fixed_get_rounds_sum_then_scales),
        cmocka_unit_test(test_fixed_total_never_wraps_silently),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
