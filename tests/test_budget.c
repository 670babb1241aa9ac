/* The per-rank budget (include/chainz/budget.h) and the size checks it relies on: checked
 * products, a model whose sizes would wrap is refused, the memory estimate bounds the
 * engine's real workspace from above (and not by much), a run beyond the limit is
 * refused with both figures, --max-memory is the limit when given; and the configuration
 * JSON never holds nan or inf. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chainz/budget.h"
#include "chainz/reducer.h"
#include "chainz/config.h"
#include "chainz/engine.h"
#include "chainz/jacnorm.h"

static void test_budget_checked_products(void **state)
{
    (void)state;
    size_t r = 0;
    assert_int_equal(cz_size_mul(1u << 20, 1u << 20, &r), 0);
    assert_true(r == (size_t)1 << 40);
    assert_int_equal(cz_size_mul((size_t)1 << 61, 8, &r), -1);
    assert_true(r == SIZE_MAX);
    assert_int_equal(cz_size_add(SIZE_MAX, 1, &r), -1);
    assert_int_equal(cz_size_add(3, 4, &r), 0);
    assert_true(r == 7);
}

static cz_model_spec spec_of(size_t d, int H, size_t w, cz_head head, int classes)
{
    cz_model_spec s;
    memset(&s, 0, sizeof s);
    s.d = d;
    s.n_hidden = H;
    for (int l = 0; l < H; l++) {
        s.width[l] = w + (size_t)l;
        s.act[l] = CZ_ACT_POLY;
    }
    s.head = head;
    s.classes = classes;
    return s;
}

/* d = 2^61 once became "a model of 58 parameters": the products wrapped */
static void test_budget_model_refuses_wrapping_sizes(void **state)
{
    (void)state;
    cz_model m;
    cz_error err = {0};
    cz_model_spec s = spec_of((size_t)1 << 61, 1, 8, CZ_HEAD_CLASSIFY, 3);
    assert_int_equal(cz_model_init(&m, &s, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "too large"));
    s = spec_of(100, 2, (size_t)100000000, CZ_HEAD_CLASSIFY, 3); /* 1e16 weights: beyond 2^48 */
    assert_int_equal(cz_model_init(&m, &s, &err), CZ_EINVAL);
    s = spec_of(100, 2, 64, CZ_HEAD_CLASSIFY, 3);
    assert_int_equal(cz_model_init(&m, &s, &err), 0);
}

/* the estimate is an upper bound of what cz_workspace_new really allocates, for every
 * stream mode (and none: validation and eval reserve no stream) */
static void test_budget_estimate_bounds_the_workspace(void **state)
{
    (void)state;
    const size_t ds[] = {1, 7, 64}, Bs[] = {1, 16, 33};
    const cz_stream_spec modes[] = {{CZ_STREAM_NONE, 0}, {CZ_STREAM_EXACT, 0}, {CZ_STREAM_GRAM, 0},
                                    {CZ_STREAM_PROBE, 3}};
    for (int H = 1; H <= 5; H++) /* beyond 3: a kept g_l per layer (engine.c) */
        for (size_t i = 0; i < 3; i++)
            for (size_t j = 0; j < 3; j++)
                for (size_t mo = 0; mo < 4; mo++) {
                    cz_model m;
                    cz_error err = {0};
                    cz_model_spec s = spec_of(ds[i], H, 9, H == 2 ? CZ_HEAD_REGRESS : CZ_HEAD_CLASSIFY, 4);
                    assert_int_equal(cz_model_init(&m, &s, &err), 0);
                    if (modes[mo].mode == CZ_STREAM_GRAM && m.layer[0].n_out > ds[i]) continue;
                    cz_workspace *ws = cz_workspace_new_stream(&m, Bs[j], &modes[mo], &err);
                    assert_non_null(ws);
                    int P = 1 + (int)(mo % 3); /* 1, 2, 3 ranks */
                    cz_mem_request r = {.m = &m, .micro_batch = Bs[j], .batch = 4 * Bs[j], .rows = 1000,
                                        .opt_moments = 2, .exact = 1, .ranks = P, .tau = 1, .stream = modes[mo]};
                    cz_mem_estimate e;
                    cz_mem_estimate_run(&r, &e);
                    size_t real = cz_workspace_bytes(ws);
                    assert_int_equal(real, cz_workspace_bytes_for(&m, Bs[j], &modes[mo]));
                    assert_false(e.overflow);
                    assert_true(e.workspace >= real);
                    assert_true(e.workspace <= real + real / 4 + 4096);
                    assert_true(e.params >= m.n_params * sizeof(cz_real) * 4); /* params, grad, m, v */
                    /* the reducer's partial sums and its receive buffers for 4 chunks a step */
                    size_t slots, nodes, last = (1000 % (4 * Bs[j]) + Bs[j] - 1) / Bs[j];
                    cz_reducer_plan(4, last, 1, P, &slots, &nodes);
                    assert_true(slots >= 1 && (P == 1 || nodes >= (size_t)P));
                    assert_true(e.reduce >= (slots * m.n_params + nodes * (m.n_params / (size_t)P)) * sizeof(cz_real));
                    assert_true(e.total >= e.params + e.reduce + e.workspace + e.data);
                    cz_workspace_free(ws);
                }
}

/* the reducer's real allocations on every rank (partial sums, the owners' receive buffers,
 * the scalars) are within the estimate: slices are whole blocks of 4096 values, so a rank
 * owning small ranges receives far more than n / P per cover node (it was counted as n / P
 * plus one value per range); and the steps are those of the training rows (a holdout
 * changes the last step's chunk count, a batch beyond the rows takes them all) */
static void test_budget_counts_the_reducer(void **state)
{
    (void)state;
    const size_t widths[] = {60, 130};
    /* rows, training rows, batch, micro-batch */
    const size_t runs[][4] = {{1000, 1000, 70, 7}, {1000, 999, 100, 7}, {1000, 900, 64, 8}, {50, 45, 1000, 4},
                              {1000, 937, 128, 3}, {1000, 940, 64, 8}};
    for (size_t wi = 0; wi < 2; wi++)
        for (size_t ri = 0; ri < sizeof runs / sizeof runs[0]; ri++)
            for (int P = 2; P <= 6; P++) {
                cz_model m;
                cz_error err = {0};
                cz_model_spec s = spec_of(60, 2, widths[wi], CZ_HEAD_CLASSIFY, 4);
                assert_int_equal(cz_model_init(&m, &s, &err), 0);
                size_t rows = runs[ri][1], M = runs[ri][3], nb = runs[ri][2] < rows ? runs[ri][2] : rows;
                cz_mem_request q = {.m = &m, .micro_batch = M, .batch = runs[ri][2], .rows = runs[ri][0],
                                    .train_rows = rows, .opt_moments = 2, .exact = 1, .ranks = P};
                cz_mem_estimate e;
                cz_mem_estimate_run(&q, &e);
                /* the buckets of train.c: each layer's weights, and its bias with the coefficients */
                cz_bucket b[CZ_MAX_HIDDEN + 1];
                for (int k = 0; k <= m.n_hidden; k++) {
                    const cz_layer *L = &m.layer[m.n_hidden - k];
                    b[k] = (cz_bucket){.off = {L->w, L->b},
                                       .len = {L->n_out * L->n_in, L->n_out * (L->poly == CZ_NONE ? 1 : 5)}};
                }
                size_t chunks = (nb + M - 1) / M, last = rows > nb ? (rows % nb + M - 1) / M : 0;
                for (int rank = 0; rank < P; rank++) {
                    cz_reducer r;
                    assert_int_equal(cz_reducer_init(&r, m.n_params, 4, chunks, last, 1, rank, P, &err), 0);
                    assert_int_equal(cz_reducer_set_buckets(&r, b, (size_t)m.n_hidden + 1, &err), 0);
                    size_t real = r.n_slots * m.n_params * sizeof(float) + (1 + chunks * 4) * sizeof(uint64_t);
                    for (size_t j = 0; j < r.n_ranges; j++) {
                        size_t mine = (size_t)r.ranges[j].sc[rank];
                        real += r.all_cap * (mine ? mine : 1) * sizeof(float);
                    }
                    assert_true(e.reduce >= real);
                    cz_reducer_free(&r);
                }
            }
}

/* the layer-Jacobian subsample's workspace (probe mode with tau) is part of the estimate:
 * without it a probe run on a wide model used about 3 % more than --max-memory allowed */
static void test_budget_counts_the_jacobian_subsample(void **state)
{
    (void)state;
    cz_model m;
    cz_error err = {0};
    cz_model_spec s = spec_of(64, 2, 64, CZ_HEAD_CLASSIFY, 3);
    assert_int_equal(cz_model_init(&m, &s, &err), 0);
    cz_stream_spec probe = {CZ_STREAM_PROBE, 4};
    cz_mem_request r = {.m = &m, .micro_batch = 32, .batch = 64, .rows = 1000, .opt_moments = 2, .exact = 1,
                        .tau = 1, .stream = probe};
    cz_mem_estimate without, with;
    cz_mem_estimate_run(&r, &without);
    r.tau_sampled = CZ_STREAM_EXACT;
    cz_mem_estimate_run(&r, &with);
    assert_false(with.overflow);
    /* two 64 x 64 products, a 64 x 64 gather and the unit lists, at least */
    assert_true(cz_jacnorm_bytes(&m, CZ_STREAM_EXACT) >= (3 * 64 * 64 + 64) * sizeof(float) + 128 * sizeof(size_t));
    assert_true(with.workspace >= without.workspace + cz_jacnorm_bytes(&m, CZ_STREAM_EXACT));
    assert_true(with.total > without.total);
}

/* n_1 < d: the subsample at width n_1 holds the QR's copies of W_1 besides its products
 * (here more than at width d), and a request not yet planned (AUTO) counts the larger */
static void test_budget_counts_the_gram_subsample(void **state)
{
    (void)state;
    cz_model m;
    cz_error err = {0};
    cz_model_spec s = spec_of(200, 2, 64, CZ_HEAD_CLASSIFY, 3);
    assert_int_equal(cz_model_init(&m, &s, &err), 0);
    cz_mem_request r = {.m = &m, .micro_batch = 32, .batch = 64, .rows = 1000, .opt_moments = 2, .exact = 1,
                        .tau = 1, .stream = {CZ_STREAM_PROBE, 4}};
    cz_mem_estimate without, gram, any;
    cz_mem_estimate_run(&r, &without);
    r.tau_sampled = CZ_STREAM_GRAM;
    cz_mem_estimate_run(&r, &gram);
    r.tau_sampled = CZ_STREAM_AUTO;
    cz_mem_estimate_run(&r, &any);
    size_t g = cz_jacnorm_bytes(&m, CZ_STREAM_GRAM), e = cz_jacnorm_bytes(&m, CZ_STREAM_EXACT);
    /* two 64 x 200 copies of W_1 (the check, the QR), R^T and two 64 x 64 products, at least */
    assert_true(g >= (2 * 64 * 200 + 3 * 64 * 64) * sizeof(float));
    assert_true(g > e);
    assert_false(gram.overflow);
    assert_int_equal(gram.workspace, without.workspace + g);
    assert_int_equal(any.workspace, without.workspace + g);
}

/* an exact run over the limit is offered probe mode: with tau on, probe mode adds the
 * Jacobian subsample's scratch (lambda = 0 or not), so the offer must count it. Here the
 * default K fits only without that scratch: the offer must be a smaller K. */
static void test_budget_probe_offer_counts_the_subsample(void **state)
{
    (void)state;
    cz_model m;
    cz_error err = {0};
    cz_model_spec s = spec_of(1024, 2, 64, CZ_HEAD_CLASSIFY, 3);
    assert_int_equal(cz_model_init(&m, &s, &err), 0);
    cz_mem_request r = {.m = &m, .micro_batch = 32, .batch = 64, .rows = 1000, .opt_moments = 2, .exact = 1,
                        .tau = 1, .stream = {CZ_STREAM_PROBE, CZ_STREAM_DEFAULT_PROBES}, .tau_sampled = CZ_STREAM_EXACT};
    cz_mem_estimate probe, exact;
    cz_mem_estimate_run(&r, &probe);
    r.stream = (cz_stream_spec){CZ_STREAM_EXACT, 0};
    r.tau_sampled = CZ_STREAM_NONE; /* as train.c asks for an exact run: tau from the step's stream */
    cz_mem_estimate_run(&r, &exact);
    size_t limit = probe.total - 1;
    assert_true(exact.total > limit);
    assert_int_equal(cz_mem_check_train(&r, &exact, limit, "--max-memory", &err), CZ_EINVAL);
    assert_null(strstr(err.msg, "--dreg-mode probe (an unbiased")); /* the default K: too much */
    assert_non_null(strstr(err.msg, "--dreg-mode probe --dreg-probes "));
}

static void test_budget_refuses_beyond_the_limit(void **state)
{
    (void)state;
    cz_model m;
    cz_error err = {0};
    cz_model_spec s = spec_of(512, 2, 1024, CZ_HEAD_CLASSIFY, 10);
    assert_int_equal(cz_model_init(&m, &s, &err), 0);
    cz_mem_request r = {.m = &m, .micro_batch = 256, .batch = 1024, .rows = 100000, .opt_moments = 2, .exact = 1,
                        .stream = {CZ_STREAM_EXACT, 0}};
    cz_mem_estimate e;
    cz_mem_estimate_run(&r, &e);
    /* the stream alone: B*d*sum(n_l) floats for two hidden layers */
    assert_true(e.workspace >= (size_t)256 * 512 * (1024 + 1025) * sizeof(cz_real));
    char src[64];
    size_t lim = cz_mem_limit(e.total - 1, 4, src, sizeof src);
    assert_true(lim == e.total - 1);
    assert_string_equal(src, "--max-memory");
    assert_int_equal(cz_mem_check(&e, lim, src, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "needs about"));
    assert_non_null(strstr(err.msg, "--max-memory"));
    assert_int_equal(cz_mem_check(&e, e.total, src, &err), 0);
    assert_int_equal(cz_mem_check(&e, 0, src, &err), 0); /* unknown limit: never refused */
    /* an estimate that overflows is refused whatever the limit */
    r.micro_batch = (size_t)1 << 62;
    cz_mem_estimate_run(&r, &e);
    assert_true(e.overflow);
    assert_true(e.total == SIZE_MAX);
    assert_int_equal(cz_mem_check(&e, SIZE_MAX, src, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "overflow"));
}

static void test_budget_limit_from_the_node(void **state)
{
    (void)state;
    char src[160];
    size_t one = cz_mem_limit(0, 1, src, sizeof src), two = cz_mem_limit(0, 2, src, sizeof src);
    assert_true(one > 0); /* Linux: MemAvailable */
    if (!strstr(src, "RLIMIT_AS")) { /* ulimit -v caps both alike */
        assert_non_null(strstr(src, "/ 2 ranks on the node"));
        assert_true(two <= one / 4 * 3); /* split between the ranks (the free memory may move a little) */
    }
    assert_true(cz_node_cores() >= 1);
    assert_true(cz_affinity_cores() >= 1 && cz_affinity_cores() <= cz_node_cores());
}

static void test_config_json_has_no_nan(void **state)
{
    (void)state;
    cz_config c;
    cz_config_defaults(&c);
    c.dreg = NAN;
    c.model.dropout = INFINITY;
    c.holdout = -INFINITY;
    char buf[16384];
    size_t need = cz_config_json(&c, buf, sizeof buf);
    assert_true(need < sizeof buf);
    assert_non_null(strstr(buf, "\"dreg\": null"));
    assert_non_null(strstr(buf, "\"dropout\": null"));
    assert_non_null(strstr(buf, "\"holdout\": null"));
    assert_null(strstr(buf, "nan"));
    assert_null(strstr(buf, "inf"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_checked_products),
        cmocka_unit_test(test_budget_model_refuses_wrapping_sizes),
        cmocka_unit_test(test_budget_estimate_bounds_the_workspace),
        cmocka_unit_test(test_budget_counts_the_jacobian_subsample),
        cmocka_unit_test(test_budget_counts_the_gram_subsample),
        cmocka_unit_test(test_budget_probe_offer_counts_the_subsample),
        cmocka_unit_test(test_budget_counts_the_reducer),
        cmocka_unit_test(test_budget_refuses_beyond_the_limit),
        cmocka_unit_test(test_budget_limit_from_the_node),
        cmocka_unit_test(test_config_json_has_no_nan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
