/* The BLIS kernel-set choice (cz_engine_init): names and BLIS_ARCH_TYPE values the CPU
 * cannot run are refused with a message instead of BLIS's SIGILL or abort, --kernels
 * forces a set, and chainz's use of BLIS_ARCH_TYPE does not leak into the environment
 * that child processes inherit. BLIS fixes its kernel set at the first successful init,
 * so the refusals come first and one process tests one forced set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chainz/engine.h"

static void test_engine_init_refuses_what_cannot_run(void **state)
{
    (void)state;
    cz_error err = {0};
    assert_int_equal(cz_engine_init("no-such-set", &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "--kernels no-such-set: not a BLIS kernel set"));
    assert_int_equal(cz_engine_init("knc", &err), CZ_EINVAL); /* not offered by chainz */
    /* BLIS would read "" and "x" as 0 = skx, and 999 indexes past its table */
    const char *bad_env[] = {"", "x", "999", "-1", "3x"};
    for (size_t i = 0; i < sizeof bad_env / sizeof bad_env[0]; i++) {
        setenv("BLIS_ARCH_TYPE", bad_env[i], 1);
        err.msg[0] = 0;
        assert_int_equal(cz_engine_init(NULL, &err), CZ_EINVAL);
        assert_non_null(strstr(err.msg, "BLIS_ARCH_TYPE="));
    }
    unsetenv("BLIS_ARCH_TYPE");
}

static void test_engine_init_forces_a_set_without_leaking(void **state)
{
    (void)state;
    cz_error err = {0};
    setenv("BLIS_ARCH_TYPE", "user-value", 1); /* --kernels wins; the user's value stays */
    assert_int_equal(cz_engine_init("generic", &err), 0);
    assert_string_equal(cz_engine_blas_arch(), "generic");
    assert_non_null(strstr(cz_engine_blas_choice(), "--kernels generic"));
    assert_string_equal(getenv("BLIS_ARCH_TYPE"), "user-value");
    unsetenv("BLIS_ARCH_TYPE");
    /* a second init is a no-op: BLIS keeps the set it latched */
    assert_int_equal(cz_engine_init("auto", &err), 0);
    assert_string_equal(cz_engine_blas_arch(), "generic");
    assert_null(getenv("BLIS_ARCH_TYPE"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_init_refuses_what_cannot_run),
        cmocka_unit_test(test_engine_init_forces_a_set_without_leaking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
