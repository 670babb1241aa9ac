/* The portable RNG: determinism, state save/restore, ranges, permutations, hashing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chainz/rng.h"

static void test_rng_same_seed_same_stream(void **state)
{
    (void)state;
    cz_rng a, b, c;
    cz_rng_seed(&a, 42);
    cz_rng_seed(&b, 42);
    cz_rng_seed(&c, 43);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = cz_rng_u64(&a);
        assert_true(x == cz_rng_u64(&b));
        differ += x != cz_rng_u64(&c);
    }
    assert_true(differ > 990);
}

static void test_rng_state_restores(void **state)
{
    (void)state;
    cz_rng a, saved;
    cz_rng_seed(&a, 7);
    for (int i = 0; i < 17; i++) cz_rng_normal(&a);
    memcpy(&saved, &a, sizeof a); /* what a checkpoint stores */
    double want[64];
    for (int i = 0; i < 64; i++) want[i] = cz_rng_normal(&a);
    for (int i = 0; i < 64; i++) assert_true(cz_rng_normal(&saved) == want[i]);
}

static void test_rng_known_first_value(void **state)
{
    (void)state;
    /* pins the algorithm: a silent change would break resuming old checkpoints */
    cz_rng a;
    a.s[0] = 1; a.s[1] = 2; a.s[2] = 3; a.s[3] = 4;
    /* xoshiro256** reference: rotl(2 * 5, 7) * 9 = 11520 */
    assert_true(cz_rng_u64(&a) == 11520u);
}

static void test_rng_uniform_and_normal_moments(void **state)
{
    (void)state;
    cz_rng a;
    cz_rng_seed(&a, 1);
    double su = 0, sn = 0, sn2 = 0;
    const int N = 200000;
    for (int i = 0; i < N; i++) {
        double u = cz_rng_uniform(&a);
        assert_true(u >= 0 && u < 1);
        su += u;
        double z = cz_rng_normal(&a);
        sn += z;
        sn2 += z * z;
    }
    assert_true(su / N > 0.495 && su / N < 0.505);
    assert_true(sn / N > -0.01 && sn / N < 0.01);
    assert_true(sn2 / N > 0.98 && sn2 / N < 1.02);
}

static void test_rng_permutation_is_a_permutation(void **state)
{
    (void)state;
    cz_rng a;
    cz_rng_seed(&a, 9);
    enum { N = 1000 };
    uint64_t p[N];
    char seen[N] = {0};
    cz_rng_permutation(&a, p, N);
    int moved = 0;
    for (int i = 0; i < N; i++) {
        assert_true(p[i] < N);
        assert_false(seen[p[i]]);
        seen[p[i]] = 1;
        moved += p[i] != (uint64_t)i;
    }
    assert_true(moved > N / 2);
    for (int i = 0; i < 1000; i++) assert_true(cz_rng_below(&a, 3) < 3);
}

static void test_rng_hash_is_stateless_and_spread(void **state)
{
    (void)state;
    assert_true(cz_hash64(5, 6) == cz_hash64(5, 6));
    assert_true(cz_hash64(5, 6) != cz_hash64(6, 5));
    assert_true(cz_hash64(5, 6) != cz_hash64(5, 7));
    double s = 0;
    for (uint64_t i = 0; i < 100000; i++) s += cz_hash_uniform(123, i) < 0.3;
    assert_true(s / 100000 > 0.29 && s / 100000 < 0.31);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_same_seed_same_stream),
        cmocka_unit_test(test_rng_state_restores),
        cmocka_unit_test(test_rng_known_first_value),
        cmocka_unit_test(test_rng_uniform_and_normal_moments),
        cmocka_unit_test(test_rng_permutation_is_a_permutation),
        cmocka_unit_test(test_rng_hash_is_stateless_and_spread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
