/* The tau statistics' per-sample norms in double precision (docs/DESIGN.md section 6,
 * "Where the tau families come from"): sample_grad equals each sample's own task-only
 * gradient norm and input_grad the input gradient, after a DREG step (norms formed again)
 * and after a lambda = 0 step (the step's own dz_l and g_l read), with every activation,
 * head, dropout and depth, and with the engine's other reverse passes run in between. */
#include "gradcheck_fixture.h"

/* per-sample norms for tau: sample_grad[b] == ||gradient of task_b alone|| (from a B = 1
 * step with lambda 0), even when the batched step ran with DREG; input_grad[b] == the row
 * norm of the stream's input gradient */
/* the norms of the last step against the input gradient gin [B x d] and each sample's own
 * task-only gradient (one step per sample; overwrites the fixture's gradient) */
static void check_sample_norms(fixture *f, const double *ig, const double *sg, const cz_real *gin)
{
    size_t d = f->m.spec.d;
    cz_step_sums sums;
    cz_error err;
    for (size_t b = 0; b < f->B; b++) {
        double r = 0;
        for (size_t j = 0; j < d; j++) r += (double)gin[b * d + j] * (double)gin[b * d + j];
        assert_true(rel_err(ig[b], sqrt(r)) < 1e-12);
    }
    cz_step_opts task_only = {.lambda = 0, .train = 1};
    for (size_t b = 0; b < f->B; b++) {
        assert_int_equal(cz_engine_step(f->ws, f->params, f->x + b * d, f->yc + b, f->yv + b, f->keys + b, 1,
                                        &task_only, f->grad, &sums, &err), 0);
        double n2 = 0;
        for (size_t k = 0; k < f->m.n_params; k++) n2 += f->grad[k] * f->grad[k];
        if (rel_err(sg[b], sqrt(n2)) >= 1e-10) print_error("sample %zu: %.12g vs %.12g\n", b, sg[b], sqrt(n2));
        assert_true(rel_err(sg[b], sqrt(n2)) < 1e-10);
    }
}

static void test_gradcheck_sample_norms(void **state)
{
    (void)state;
    size_t w[] = {4, 3, 5};
    for (int a = 0; a < 5; a++)
        for (int hd = 0; hd < 3; hd++) {
            cz_act acts[] = {ALL_ACTS[a], ALL_ACTS[(a + 2) % 5], ALL_ACTS[a]};
            fixture f;
            fixture_init(&f, acts, 3, w, ALL_HEADS[hd], 0.25, 0.4, 1300 + (uint64_t)(a * 3 + hd));
            f.opts.stream = 1;
            f.opts.stream_input_grad = 1;
            cz_step_sums sums;
            cz_error err;
            double sg[B_MAX], ig[B_MAX], gin[B_MAX * 5];
            assert_int_equal(cz_engine_step(f.ws, f.params, f.x, f.yc, f.yv, f.keys, f.B, &f.opts,
                                            f.grad, &sums, &err), 0);
            assert_int_equal(cz_engine_sample_norms(f.ws, f.params, ig, sg, &err), 0);
            assert_int_equal(cz_engine_input_grad(f.ws, f.params, gin, &err), 0);
            check_sample_norms(&f, ig, sg, gin);
            fixture_free(&f);
        }
}

/* lambda = 0: the norms read the step's own task-only dz_l and g_l (no repeated backward
 * products); they must still equal each sample's own gradient norm and the input gradient
 * by back-propagation, with dropout, every head, cubic coefficients (their gradient reads
 * g_l) and more layers than the two buffers the backward once alternated between */
static void test_gradcheck_sample_norms_lambda0(void **state)
{
    (void)state;
    size_t w[] = {4, 3, 5, 3, 4};
    for (int a = 0; a < 5; a++)
        for (int hd = 0; hd < 3; hd++) {
            int H = 3 + hd; /* 3, 4, 5 */
            cz_act acts[CZ_MAX_HIDDEN];
            for (int l = 0; l < H; l++) acts[l] = ALL_ACTS[(a + l) % 5];
            fixture f;
            fixture_init(&f, acts, H, w, ALL_HEADS[hd], 0.25, 0, 1700 + (uint64_t)(a * 3 + hd));
            cz_step_sums sums;
            cz_error err;
            double sg[B_MAX], ig[B_MAX];
            cz_real gin[B_MAX * 5];
            assert_int_equal(cz_engine_step(f.ws, f.params, f.x, f.yc, f.yv, f.keys, f.B, &f.opts,
                                            f.grad, &sums, &err), 0);
            if ((a + hd) % 2) { /* a reverse pass in between takes the kept g_l as scratch */
                cz_real seed[B_MAX * 8];
                for (size_t k = 0; k < f.B * f.m.n_out; k++) seed[k] = (cz_real)(0.5 + 0.1 * (double)k);
                assert_int_equal(cz_engine_input_grad_seeded(f.ws, f.params, seed, NULL, NULL, &err), 0);
            }
            assert_int_equal(cz_engine_sample_norms(f.ws, f.params, ig, sg, &err), 0);
            assert_int_equal(cz_engine_input_grad_backprop(f.ws, f.params, gin, &err), 0);
            check_sample_norms(&f, ig, sg, gin);
            fixture_free(&f);
        }
}

/* the inference library's stream input norm (reverse.c) after a lambda = 0 step with the
 * stream forward: the sample norms that follow still read the step's own dtask/dh_H (the
 * cubic top layer's coefficient gradient needs it), not the norm's scratch */
static void test_gradcheck_sample_norms_after_stream_input_norm(void **state)
{
    (void)state;
    size_t w[] = {4, 3};
    for (int hd = 0; hd < 3; hd++) {
        cz_act acts[] = {CZ_ACT_RELU, CZ_ACT_POLY};
        fixture f;
        fixture_init(&f, acts, 2, w, ALL_HEADS[hd], 0.25, 0, 2500 + (uint64_t)hd);
        f.opts.stream = 1;
        cz_step_sums sums;
        cz_error err;
        double sg[B_MAX], ig[B_MAX], sg2[B_MAX], ig2[B_MAX], norm[B_MAX];
        cz_real seed[B_MAX * 8];
        for (size_t k = 0; k < f.B * f.m.n_out; k++) seed[k] = (cz_real)(0.5 + 0.1 * (double)k);
        assert_int_equal(cz_engine_step(f.ws, f.params, f.x, f.yc, f.yv, f.keys, f.B, &f.opts, f.grad, &sums,
                                        &err), 0);
        assert_int_equal(cz_engine_sample_norms(f.ws, f.params, ig, sg, &err), 0);
        assert_int_equal(cz_engine_input_norm_stream(f.ws, f.params, seed, norm, &err), 0);
        assert_int_equal(cz_engine_sample_norms(f.ws, f.params, ig2, sg2, &err), 0);
        assert_memory_equal(sg, sg2, f.B * sizeof(double));
        assert_memory_equal(ig, ig2, f.B * sizeof(double));
        fixture_free(&f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradcheck_sample_norms),
        cmocka_unit_test(test_gradcheck_sample_norms_lambda0),
        cmocka_unit_test(test_gradcheck_sample_norms_after_stream_input_norm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
