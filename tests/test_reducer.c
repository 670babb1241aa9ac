/* The per-step reducer (include/chainz/reducer.h) without MPI: ranks are simulated with
 * cz_reducer_merge, which is what the allreduce computes. Exact sums give the same bytes
 * for any grouping and order of the chunks; every sum equals an independent __int128
 * reference (rint and 128-bit integers instead of limbs); carries across the limb
 * boundary, negative values and values just below the range; bad values counted and not
 * summed; the failure flag; the capacity guard. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chainz/reducer.h"

enum { N = 257, CHUNKS = 24, NSC = 4 };

static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s) { return (double)(mix(s) >> 11) * 0x1p-53; }

/* |x| log-uniform in 1e-18..1e11 (beyond the resolution at the bottom), random sign */
static void random_chunks(float *g, double *sc, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < (size_t)CHUNKS * N; i++) {
        double mag = pow(10.0, -18.0 + 29.0 * uniform(&s));
        g[i] = (float)((mix(&s) & 1) ? -mag : mag);
    }
    for (size_t i = 0; i < (size_t)CHUNKS * NSC; i++) sc[i] = (uniform(&s) - 0.3) * pow(10.0, 20.0 * uniform(&s));
}

/* the reference: round(v * 2^50), ties to even, summed in 128 bits */
static __int128 ref_fixed(float v) { return (__int128)rint((double)v * 0x1p50); }

static __int128 exact_sum(const cz_reducer *r, size_t i)
{
    int64_t hi;
    uint64_t lo;
    cz_reducer_limbs(r, i, &hi, &lo);
    assert_true(lo < ((uint64_t)1 << CZ_REDUCER_LIMB_BITS)); /* normalised */
    return (__int128)hi * ((__int128)1 << CZ_REDUCER_LIMB_BITS) + (__int128)lo;
}

typedef struct {
    float grad[N];
    double sc[NSC];
    cz_reduced res;
    __int128 q[N];
} outcome;

/* the chunks given to P simulated ranks by owner(c), each rank adding its chunks in the
 * order `order` (1: increasing, -1: decreasing), merged in rank order `merge_back` */
static void reduce_grouped(const float *g, const double *sc, int P, int (*owner)(size_t, int), int order,
                           int merge_back, outcome *out)
{
    cz_reducer rk[5];
    cz_error err;
    assert_true(P <= 5);
    for (int p = 0; p < P; p++) {
        assert_int_equal(cz_reducer_init(&rk[p], N, NSC, CHUNKS, 1, &err), 0);
        cz_reducer_begin(&rk[p], CHUNKS);
    }
    for (size_t k = 0; k < CHUNKS; k++) {
        size_t c = order > 0 ? k : CHUNKS - 1 - k;
        assert_int_equal(cz_reducer_add(&rk[owner(c, P)], c, g + c * N, sc + c * NSC), 0);
    }
    cz_reducer *dst = &rk[merge_back ? P - 1 : 0];
    for (int p = 0; p < P; p++)
        if (&rk[p] != dst) cz_reducer_merge(dst, &rk[p]);
    cz_reducer_result(dst, 96.0, out->grad, out->sc, &out->res);
    for (size_t i = 0; i < N; i++) out->q[i] = exact_sum(dst, i);
    for (int p = 0; p < P; p++) cz_reducer_free(&rk[p]);
}

static int own_contiguous(size_t c, int P) { return (int)(c * (size_t)P / CHUNKS); }
static int own_round_robin(size_t c, int P) { return (int)(c % (size_t)P); }
static int own_last(size_t c, int P) { return c < 3 ? 0 : P - 1; } /* middle ranks idle */

static void test_reducer_groupings_give_identical_bytes(void **state)
{
    (void)state;
    float *g = malloc((size_t)CHUNKS * N * sizeof *g);
    double *sc = malloc((size_t)CHUNKS * NSC * sizeof *sc);
    outcome *ref = malloc(sizeof *ref), *o = malloc(sizeof *o);
    assert_non_null(g);
    assert_non_null(sc);
    assert_non_null(ref);
    assert_non_null(o);
    random_chunks(g, sc, 42);
    reduce_grouped(g, sc, 1, own_contiguous, 1, 0, ref);
    /* the reference, independently: 128-bit sums of the rounded values; scalars in chunk order */
    for (size_t i = 0; i < N; i++) {
        __int128 q = 0;
        for (size_t c = 0; c < CHUNKS; c++) q += ref_fixed(g[c * N + i]);
        assert_true(ref->q[i] == q);
    }
    for (size_t k = 0; k < NSC; k++) {
        double s = 0;
        for (size_t c = 0; c < CHUNKS; c++) s += sc[c * NSC + k];
        assert_memory_equal(&ref->sc[k], &s, sizeof s);
    }
    int (*own[3])(size_t, int) = {own_contiguous, own_round_robin, own_last};
    for (int P = 1; P <= 5; P++)
        for (int w = 0; w < 3; w++)
            for (int order = -1; order <= 1; order += 2) {
                reduce_grouped(g, sc, P, own[w], order, (P + w) & 1, o);
                assert_memory_equal(o->grad, ref->grad, sizeof o->grad);
                assert_memory_equal(o->sc, ref->sc, sizeof o->sc);
                assert_memory_equal(o->q, ref->q, sizeof o->q);
                assert_int_equal(o->res.bad, 0);
                assert_int_equal(o->res.failed, 0);
            }
    free(g), free(sc), free(ref), free(o);
}

/* one value per slot, summed `times` times; the exact sum and its float read-out */
static void sum_one(const float *x, size_t n, int times, __int128 *q, float *grad, double samples, long *bad)
{
    cz_reducer r;
    cz_error err;
    assert_int_equal(cz_reducer_init(&r, n, 1, (size_t)times, 1, &err), 0);
    cz_reducer_begin(&r, (size_t)times);
    double zero = 0;
    for (int t = 0; t < times; t++) cz_reducer_add(&r, (size_t)t, x, &zero);
    double sc;
    cz_reduced res;
    cz_reducer_result(&r, samples, grad, &sc, &res);
    for (size_t i = 0; i < n; i++) q[i] = exact_sum(&r, i);
    *bad = res.bad;
    cz_reducer_free(&r);
}

static void test_reducer_carries_across_the_limb_boundary(void **state)
{
    (void)state;
    /* v * 2^50 = odd multiples of 2^45: the low limb sits at +-2^45 exactly (hi rounds to
     * even), so 1000 of them carry far past 2^46; then values whose low limb is just below
     * and just above the boundary, negative ones, and the tiny 2^-50 step */
    float x[] = {0x1p-5f, 3 * 0x1p-5f, -0x1p-5f, -3 * 0x1p-5f, 0x1p-4f - 0x1p-28f, 0x1p-4f + 0x1p-27f,
                 -(0x1p-4f - 0x1p-28f), 0x1p-50f, -0x1p-50f, 0x1p-51f, 3 * 0x1p-51f, -0x1p-51f, 1.0f, -1.0f,
                 12345.678f, -0.0f};
    enum { NX = sizeof x / sizeof x[0], TIMES = 1000 };
    __int128 q[NX];
    float grad[NX];
    long bad;
    sum_one(x, NX, TIMES, q, grad, 1.0, &bad);
    assert_int_equal(bad, 0);
    for (size_t i = 0; i < NX; i++) {
        assert_true(q[i] == TIMES * ref_fixed(x[i]));
        /* the read-out is the exact sum rounded (it needs fewer than 53 bits here) */
        assert_true(grad[i] == (float)((double)q[i] * 0x1p-50));
    }
    /* ties to even at the resolution: 2^-51 -> 0, 3 * 2^-51 -> 2 * 2^-50, -2^-51 -> -0 */
    assert_true(q[9] == 0 && q[10] == 2 * TIMES && q[11] == 0);
    assert_true(grad[2] == -TIMES * 0x1p-5f && grad[12] == TIMES && grad[13] == -TIMES);
}

static void test_reducer_range_and_bad_values(void **state)
{
    (void)state;
    const float top = nextafterf(0x1p42f, 0.0f); /* 2^42 - 2^18, the largest in range */
    float x[] = {top, -top, 0x1p42f, -0x1p42f, NAN, INFINITY, -INFINITY, 1e30f, 2.5f};
    enum { NX = sizeof x / sizeof x[0] };
    __int128 q[NX];
    float grad[NX];
    long bad;
    sum_one(x, NX, 3, q, grad, 1.0, &bad);
    assert_int_equal(bad, 3 * 6); /* 2^42, -2^42, NaN, +-Inf and 1e30, in each of 3 chunks */
    assert_true(q[0] == 3 * ((__int128)top << 50));
    assert_true(q[1] == -q[0]);
    for (size_t i = 2; i < 8; i++) assert_true(q[i] == 0 && grad[i] == 0);
    assert_true(grad[0] == 3 * top && grad[1] == -3 * top && grad[8] == 7.5f);
    /* samples divide the sum */
    sum_one(x, NX, 3, q, grad, 4.0, &bad);
    assert_true(grad[0] == 0.75f * top && grad[8] == 1.875f);
}

static void test_reducer_full_capacity_does_not_overflow(void **state)
{
    (void)state;
    /* the guard's worst case: the largest magnitudes in every chunk of a full step, where
     * the limb sums come closest to int64's limits; one value per chunk keeps it fast */
    const float top = nextafterf(0x1p42f, 0.0f);
    float x[] = {top, -top, 3 * 0x1p-5f, -0x1p-5f};
    enum { NX = sizeof x / sizeof x[0] };
    __int128 q[NX];
    float grad[NX];
    long bad;
    sum_one(x, NX, CZ_REDUCER_MAX_CHUNKS, q, grad, 1.0, &bad);
    for (size_t i = 0; i < NX; i++) assert_true(q[i] == (__int128)CZ_REDUCER_MAX_CHUNKS * ref_fixed(x[i]));
    assert_true(grad[0] == (float)((double)CZ_REDUCER_MAX_CHUNKS * top));
}

static void test_reducer_refuses_more_chunks_than_the_limbs_hold(void **state)
{
    (void)state;
    cz_reducer r;
    cz_error err;
    assert_int_equal(cz_reducer_init(&r, 8, NSC, CZ_REDUCER_MAX_CHUNKS + 1, 1, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "at most 131071 chunks per step"));
    cz_reducer_free(&r);
    /* float mode has no such limit */
    assert_int_equal(cz_reducer_init(&r, 8, NSC, CZ_REDUCER_MAX_CHUNKS + 1, 0, &err), 0);
    cz_reducer_free(&r);
    assert_int_equal(cz_reducer_init(&r, 8, NSC, CZ_REDUCER_MAX_CHUNKS, 1, &err), 0);
    cz_reducer_free(&r);
    cz_reducer_free(NULL);
}

static void test_reducer_flags_and_counts_travel_through_the_merge(void **state)
{
    (void)state;
    cz_reducer a, b, c;
    cz_error err;
    for (int exact = 0; exact <= 1; exact++) {
        assert_int_equal(cz_reducer_init(&a, 3, 2, 3, exact, &err), 0);
        assert_int_equal(cz_reducer_init(&b, 3, 2, 3, exact, &err), 0);
        assert_int_equal(cz_reducer_init(&c, 3, 2, 3, exact, &err), 0);
        cz_reducer_begin(&a, 3), cz_reducer_begin(&b, 3), cz_reducer_begin(&c, 3);
        float g0[3] = {1, NAN, 2}, g1[3] = {4, 5, 1e20f};
        double s0[2] = {0.5, -1}, s1[2] = {0.25, 1e300}, s2[2] = {-0.0, 2};
        assert_int_equal(cz_reducer_add(&a, 0, g0, s0), exact ? 1 : 0);
        assert_int_equal(cz_reducer_add(&b, 2, g1, s2), exact ? 1 : 0);
        assert_int_equal(cz_reducer_add(&b, 1, g0, s1), exact ? 1 : 0);
        cz_reducer_fail(&b); /* rank "b" failed; "c" added nothing */
        cz_reducer_merge(&c, &a);
        cz_reducer_merge(&c, &b);
        float grad[3];
        double sc[2];
        cz_reduced res;
        cz_reducer_result(&c, 2.0, grad, sc, &res);
        assert_int_equal(res.bad, exact ? 3 : 0);
        assert_int_equal(res.failed, 1);
        assert_true(sc[0] == 0.75 && sc[1] == (-1 + 1e300) + 2);
        assert_true(grad[0] == 3.0f);
        if (exact) assert_true(grad[1] == 2.5f && grad[2] == 2.0f); /* bad values not summed */
        cz_reducer_free(&a), cz_reducer_free(&b), cz_reducer_free(&c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reducer_groupings_give_identical_bytes),
        cmocka_unit_test(test_reducer_carries_across_the_limb_boundary),
        cmocka_unit_test(test_reducer_range_and_bad_values),
        cmocka_unit_test(test_reducer_full_capacity_does_not_overflow),
        cmocka_unit_test(test_reducer_refuses_more_chunks_than_the_limbs_hold),
        cmocka_unit_test(test_reducer_flags_and_counts_travel_through_the_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
