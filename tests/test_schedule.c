/* Learning-rate and DREG schedules (include/chainz/schedule.h): every shape at its ends,
 * middle and outside its range, the two kinds of warm-up, and the parsers' errors. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "chainz/schedule.h"

static int close_rel(double got, double want, double tol)
{
    return fabs(got - want) <= tol * fmax(fabs(want), 1e-300);
}

static cz_schedule make(cz_shape shape, double start, double end)
{
    cz_schedule s = {.shape = shape, .start = start, .end = end, .from = 100, .to = 300,
                     .warmup = 0, .ramp = 0};
    return s;
}

static void test_schedule_constant_everywhere(void **state)
{
    (void)state;
    cz_schedule s = make(CZ_SHAPE_CONSTANT, 0.05, 0.001);
    const double t[] = {0, 99, 100, 200, 300, 301, 1e9};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) assert_true(cz_schedule_value(&s, t[i]) == 0.05);
}

static void test_schedule_linear_ends_middle_clamped(void **state)
{
    (void)state;
    cz_schedule s = make(CZ_SHAPE_LINEAR, 1.0, 0.1);
    assert_true(cz_schedule_value(&s, 100) == 1.0);
    assert_true(close_rel(cz_schedule_value(&s, 200), 0.55, 1e-15));
    assert_true(close_rel(cz_schedule_value(&s, 150), 0.775, 1e-15));
    assert_true(close_rel(cz_schedule_value(&s, 300), 0.1, 1e-15));
    /* clamped outside [from, to] */
    assert_true(cz_schedule_value(&s, 0) == 1.0);
    assert_true(cz_schedule_value(&s, 99) == 1.0);
    assert_true(close_rel(cz_schedule_value(&s, 301), 0.1, 1e-15));
    assert_true(close_rel(cz_schedule_value(&s, 1e12), 0.1, 1e-15));
    /* increasing schedules work the same way */
    cz_schedule up = make(CZ_SHAPE_LINEAR, 0.0, 2.0);
    assert_true(cz_schedule_value(&up, 50) == 0.0);
    assert_true(close_rel(cz_schedule_value(&up, 200), 1.0, 1e-15));
    assert_true(close_rel(cz_schedule_value(&up, 400), 2.0, 1e-15));
}

static void test_schedule_cosine_ends_middle_clamped(void **state)
{
    (void)state;
    cz_schedule s = make(CZ_SHAPE_COSINE, 0.1, 0.001);
    assert_true(close_rel(cz_schedule_value(&s, 100), 0.1, 1e-15));
    assert_true(close_rel(cz_schedule_value(&s, 200), (0.1 + 0.001) / 2, 1e-14));
    assert_true(close_rel(cz_schedule_value(&s, 300), 0.001, 1e-13));
    /* a quarter of the way: end + (start - end) (1 + cos(pi/4)) / 2, above the linear value */
    double q = 0.001 + (0.1 - 0.001) * 0.5 * (1 + sqrt(0.5));
    assert_true(close_rel(cz_schedule_value(&s, 150), q, 1e-14));
    assert_true(cz_schedule_value(&s, 150) > 0.1 - 0.25 * (0.1 - 0.001));
    assert_true(close_rel(cz_schedule_value(&s, 10), 0.1, 1e-15));
    assert_true(close_rel(cz_schedule_value(&s, 5000), 0.001, 1e-13));
    /* monotone over the range */
    double prev = cz_schedule_value(&s, 100);
    for (int t = 101; t <= 300; t++) {
        double v = cz_schedule_value(&s, t);
        assert_true(v <= prev);
        prev = v;
    }
}

static void test_schedule_exp_geometric_midpoint(void **state)
{
    (void)state;
    cz_schedule s = make(CZ_SHAPE_EXP, 0.1, 0.001);
    assert_true(close_rel(cz_schedule_value(&s, 100), 0.1, 1e-15));
    assert_true(close_rel(cz_schedule_value(&s, 200), sqrt(0.1 * 0.001), 1e-14));
    assert_true(close_rel(cz_schedule_value(&s, 150), 0.1 * pow(0.01, 0.25), 1e-14));
    assert_true(close_rel(cz_schedule_value(&s, 300), 0.001, 1e-14));
    assert_true(close_rel(cz_schedule_value(&s, 0), 0.1, 1e-15));
    assert_true(close_rel(cz_schedule_value(&s, 1e7), 0.001, 1e-14));
    /* equal ratios over equal steps */
    double r1 = cz_schedule_value(&s, 120) / cz_schedule_value(&s, 100);
    double r2 = cz_schedule_value(&s, 280) / cz_schedule_value(&s, 260);
    assert_true(close_rel(r1, r2, 1e-12));
}

static void test_schedule_warmup_holds_zero(void **state)
{
    (void)state;
    /* DREG lambda: nothing during warm-up, then the shape from `from` on */
    cz_schedule s = {.shape = CZ_SHAPE_LINEAR, .start = 0.5, .end = 1.0, .from = 10, .to = 20,
                     .warmup = 10, .ramp = 0};
    for (int t = 0; t < 10; t++) assert_true(cz_schedule_value(&s, t) == 0.0);
    assert_true(cz_schedule_value(&s, 9.999) == 0.0);
    assert_true(cz_schedule_value(&s, 10) == 0.5);
    assert_true(close_rel(cz_schedule_value(&s, 15), 0.75, 1e-15));
    assert_true(close_rel(cz_schedule_value(&s, 25), 1.0, 1e-15));
}

static void test_schedule_warmup_ramps_linearly(void **state)
{
    (void)state;
    /* learning rate: a linear ramp up to start over the warm-up steps */
    cz_schedule s = {.shape = CZ_SHAPE_COSINE, .start = 0.2, .end = 0.0, .from = 8, .to = 108,
                     .warmup = 8, .ramp = 1};
    double step = cz_schedule_value(&s, 1) - cz_schedule_value(&s, 0);
    assert_true(step > 0);
    assert_true(cz_schedule_value(&s, 0) > 0); /* step 0 already trains */
    for (int t = 1; t < 8; t++) {
        double v = cz_schedule_value(&s, t), p = cz_schedule_value(&s, t - 1);
        assert_true(close_rel(v - p, step, 1e-12));
        assert_true(v <= 0.2 * (1 + 1e-15));
    }
    /* reaches start by the end of warm-up and continues from there without a jump */
    assert_true(close_rel(cz_schedule_value(&s, 7), 0.2, 1e-15));
    assert_true(close_rel(cz_schedule_value(&s, 8), 0.2, 1e-15));
    assert_true(close_rel(cz_schedule_value(&s, 58), 0.1, 1e-14));
    assert_true(cz_schedule_value(&s, 500) < 1e-15);
}

static void test_schedule_parse_accepts_good_specs(void **state)
{
    (void)state;
    cz_error err = {0};
    cz_schedule s = {.shape = CZ_SHAPE_CONSTANT, .from = 3, .to = 9, .warmup = 2, .ramp = 1};
    assert_int_equal(cz_schedule_parse("cosine:0.1:0.001", &s, &err), 0);
    assert_int_equal(s.shape, CZ_SHAPE_COSINE);
    assert_true(s.start == 0.1);
    assert_true(s.end == 0.001);
    /* sets shape, start and end only */
    assert_true(s.from == 3 && s.to == 9 && s.warmup == 2 && s.ramp == 1);
    assert_int_equal(cz_schedule_parse("exp:1e-2:1e-4", &s, &err), 0);
    assert_int_equal(s.shape, CZ_SHAPE_EXP);
    assert_true(s.start == 1e-2 && s.end == 1e-4);
    assert_int_equal(cz_schedule_parse("linear:0:2", &s, &err), 0);
    assert_int_equal(s.shape, CZ_SHAPE_LINEAR);
    assert_int_equal(cz_schedule_parse("constant:0.5:0.5", &s, &err), 0);
    assert_int_equal(s.shape, CZ_SHAPE_CONSTANT);

    cz_shape sh;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(cz_shape_parse(cz_shape_name((cz_shape)i), &sh), 0);
        assert_int_equal(sh, i);
    }
    assert_int_equal(cz_shape_parse("exponential", &sh), 0);
    assert_int_equal(sh, CZ_SHAPE_EXP);
    assert_int_equal(cz_shape_parse("Cosine", &sh), CZ_EINVAL);
}

static void expect_bad_spec(const char *spec, const char *words)
{
    cz_error err = {0};
    cz_schedule s = {0};
    int rc = cz_schedule_parse(spec, &s, &err);
    if (rc != CZ_EINVAL) print_error("schedule '%s': got %d, expected CZ_EINVAL\n", spec, rc);
    assert_int_equal(rc, CZ_EINVAL);
    assert_int_equal(err.code, CZ_EINVAL);
    assert_non_null(strstr(err.msg, spec));
    if (words) assert_non_null(strstr(err.msg, words));
}

static void test_schedule_parse_errors(void **state)
{
    (void)state;
    expect_bad_spec("cosine:1", "SHAPE:START:END");
    expect_bad_spec("exp:0:1", "exp needs START and END > 0");
    expect_bad_spec("exp:1:0", "> 0");
    expect_bad_spec("foo:1:2", "constant, linear, cosine or exp");
    expect_bad_spec("linear:-1:2", ">= 0");
    expect_bad_spec("linear:1:2x", "SHAPE:START:END");
    expect_bad_spec("", "SHAPE:START:END");
    expect_bad_spec("linear:1:2:3", NULL);
}

/* A non-finite start or end makes every value NaN or infinite: it must be refused like
 * any other bad number (sscanf's %lf and strtod both accept "nan" and "inf"). */
static void test_schedule_parse_rejects_non_finite(void **state)
{
    (void)state;
    expect_bad_spec("linear:nan:1", NULL);
    expect_bad_spec("cosine:0.1:inf", NULL);
    double from = -1, to = -1;
    cz_error err = {0};
    assert_int_equal(cz_range_parse("nan:5", 10, &from, &to, &err), CZ_EINVAL);
    assert_int_equal(cz_range_parse("0:inf", 10, &from, &to, &err), CZ_EINVAL);
}

static void test_schedule_range_parse(void **state)
{
    (void)state;
    cz_error err = {0};
    double from = -1, to = -1;
    assert_int_equal(cz_range_parse("2:8", 100, &from, &to, &err), 0);
    assert_true(from == 200 && to == 800);
    assert_int_equal(cz_range_parse("100s:900s", 37, &from, &to, &err), 0);
    assert_true(from == 100 && to == 900);
    assert_int_equal(cz_range_parse("0.5:1.5", 10, &from, &to, &err), 0);
    assert_true(from == 5 && to == 15);
    assert_int_equal(cz_range_parse("1:500s", 100, &from, &to, &err), 0);
    assert_true(from == 100 && to == 500);
    assert_int_equal(cz_range_parse("3:3", 10, &from, &to, &err), 0);
    assert_true(from == 30 && to == 30);

    const char *bad[] = {"8:2", "x:1", "2", ":", "2:", "-1:2", "1:2q", "900s:100s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        assert_int_equal(cz_range_parse(bad[i], 10, &from, &to, &err), CZ_EINVAL);
        assert_int_equal(err.code, CZ_EINVAL);
        assert_non_null(strstr(err.msg, bad[i]));
        assert_non_null(strstr(err.msg, "FROM:TO"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule_constant_everywhere),
        cmocka_unit_test(test_schedule_linear_ends_middle_clamped),
        cmocka_unit_test(test_schedule_cosine_ends_middle_clamped),
        cmocka_unit_test(test_schedule_exp_geometric_midpoint),
        cmocka_unit_test(test_schedule_warmup_holds_zero),
        cmocka_unit_test(test_schedule_warmup_ramps_linearly),
        cmocka_unit_test(test_schedule_parse_accepts_good_specs),
        cmocka_unit_test(test_schedule_parse_errors),
        cmocka_unit_test(test_schedule_parse_rejects_non_finite),
        cmocka_unit_test(test_schedule_range_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
