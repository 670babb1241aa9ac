/* Exact layer-Jacobian norms over a sample's active units (chainz/jacnorm.h): against the
 * Jacobian multiplied out in double precision from the step's D and W, against the dense
 * exact stream, for ReLU with and without dropout and for activations without zeros; a
 * layer with every unit off; the bits on 1 and 2 threads; misuse. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <blis.h> /* the global thread count Gram's QR sets and restores */

#include "chainz/engine.h"
#include "chainz/jacnorm.h"

typedef struct {
    cz_model m;
    cz_workspace *ws;
    float *params, *x;
    uint64_t *keys;
    int32_t *yc;
    size_t B;
} setup;

static void setup_init(setup *s, int H, const size_t *width, size_t d, cz_act act, double dropout, size_t B,
                       uint64_t seed)
{
    cz_model_spec spec = {.d = d, .n_hidden = H, .head = CZ_HEAD_CLASSIFY, .classes = 3, .dropout = dropout};
    for (int l = 0; l < H; l++) spec.width[l] = width[l], spec.act[l] = act;
    cz_error err;
    cz_stream_spec exact = {CZ_STREAM_EXACT, 0};
    assert_int_equal(cz_model_init(&s->m, &spec, &err), 0);
    assert_non_null(s->ws = cz_workspace_new_stream(&s->m, B, &exact, &err));
    s->B = B;
    s->params = calloc(s->m.n_params, sizeof(float));
    s->x = calloc(B * d, sizeof(float));
    s->keys = calloc(B, sizeof(uint64_t));
    s->yc = calloc(B, sizeof(int32_t));
    cz_rng g;
    cz_rng_seed(&g, seed);
    cz_model_params_init(&s->m, s->params, &g);
    /* cubic coefficients away from the identity, so D varies per unit and sample */
    for (int l = 0; l < H; l++)
        if (s->m.layer[l].poly != CZ_NONE)
            for (size_t i = 0; i < 4 * s->m.layer[l].n_out; i++)
                s->params[s->m.layer[l].poly + i] += (float)(0.1 * cz_rng_normal(&g));
    for (size_t i = 0; i < B * d; i++) s->x[i] = (float)cz_rng_normal(&g);
    for (size_t b = 0; b < B; b++) s->keys[b] = cz_rng_u64(&g);
}

static void setup_free(setup *s)
{
    cz_workspace_free(s->ws);
    free(s->params);
    free(s->x);
    free(s->keys);
    free(s->yc);
}

/* the training step's value forward and the dense exact stream (no gradient) */
static void step(setup *s)
{
    cz_error err;
    cz_step_opts o = {.train = 1, .stream = 1};
    cz_step_sums sums;
    assert_int_equal(cz_engine_step(s->ws, s->params, s->x, s->yc, NULL, s->keys, s->B, &o, NULL, &sums, &err), 0);
}

/* ||J_l||_F^2 of sample b in double: J_1 = D_1 W_1, J_l = D_l W_l J_{l-1}, with
 * D = mask * phi'(z) formed here: z from the engine's previous hidden output (x for layer
 * 1), phi and phi' by cz_act_eval, and the dropout mask read off h = phi(z) * mask (0 or
 * 1/(1-p)). */
static void reference(setup *s, size_t b, double *sq)
{
    const cz_model *m = &s->m;
    size_t d = m->spec.d;
    double *J = NULL, keep = 1 / (1 - m->spec.dropout);
    for (int l = 0; l < m->n_hidden; l++) {
        const cz_layer *L = &m->layer[l];
        size_t n = L->n_out, nin = L->n_in;
        const float *W = s->params + L->w, *a = l == 0 ? s->x + b * d : cz_engine_hidden(s->ws, l) + b * nin;
        const float *h = cz_engine_hidden(s->ws, l + 1) + b * n;
        float *z = malloc(n * sizeof(float)), *phi = malloc(n * sizeof(float)), *dphi = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) {
            double v = s->params[L->b + i];
            for (size_t c = 0; c < nin; c++) v += (double)W[i * nin + c] * a[c];
            z[i] = (float)v;
        }
        cz_act_eval(phi, dphi, NULL, L->act, L->poly != CZ_NONE ? s->params + L->poly : NULL, z, 1, n);
        double *WJ = calloc(n * d, sizeof(double)), total = 0;
        for (size_t i = 0; i < n; i++) {
            double mask = m->spec.dropout > 0 && h[i] == 0 && phi[i] != 0 ? 0 : m->spec.dropout > 0 ? keep : 1;
            double Dv = mask * dphi[i];
            for (size_t j = 0; j < d; j++) {
                double v = 0;
                if (l == 0) v = W[i * d + j];
                else
                    for (size_t c = 0; c < nin; c++) v += (double)W[i * nin + c] * J[c * d + j];
                WJ[i * d + j] = Dv * v;
                total += WJ[i * d + j] * WJ[i * d + j];
            }
        }
        sq[l] = total;
        free(J);
        free(z);
        free(phi);
        free(dphi);
        J = WJ;
    }
    free(J);
}

/* at width d, and at width n_1 (rows of R^T) when n_1 < d */
static void check_against_stream_and_reference(int H, const size_t *width, size_t d, cz_act act, double dropout)
{
    for (int gram = 0; gram <= (width[0] < d); gram++) {
    setup s;
    setup_init(&s, H, width, d, act, dropout, 9, 7 + (uint64_t)act);
    step(&s);
    cz_error err;
    cz_jacnorm *jn = cz_jacnorm_new(&s.m, gram ? CZ_STREAM_GRAM : CZ_STREAM_EXACT, &err);
    assert_non_null(jn);
    for (size_t b = 0; b < s.B; b++) {
        double sq[CZ_MAX_HIDDEN], ref[CZ_MAX_HIDDEN];
        assert_int_equal(cz_jacnorm_sample(jn, s.ws, s.params, b, sq, &err), 0);
        reference(&s, b, ref);
        for (int l = 0; l < H; l++) {
            const double *st = cz_engine_jacobian_sqnorm(s.ws, l + 1);
            assert_true(ref[l] > 0);
            assert_true(fabs(sq[l] - ref[l]) <= 1e-4 * ref[l]);
            assert_true(fabs(sq[l] - st[b]) <= 1e-4 * st[b]);
        }
    }
    cz_jacnorm_free(jn);
    setup_free(&s);
    }
}

static void test_relu(void **state)
{
    (void)state;
    size_t w[3] = {50, 41, 29};
    check_against_stream_and_reference(3, w, 37, CZ_ACT_RELU, 0);
}

static void test_relu_dropout(void **state)
{
    (void)state;
    size_t w[3] = {50, 41, 29};
    check_against_stream_and_reference(3, w, 37, CZ_ACT_RELU, 0.3);
    size_t narrow[3] = {12, 41, 29}; /* n_1 < d: both widths */
    check_against_stream_and_reference(3, narrow, 37, CZ_ACT_RELU, 0.3);
}

/* Gram: R is made again when W_1 changes (it is cached while W_1 is the same) */
static void test_gram_follows_w1(void **state)
{
    (void)state;
    size_t w[2] = {6, 9};
    setup s;
    setup_init(&s, 2, w, 11, CZ_ACT_TANH, 0, 3, 21);
    cz_error err;
    cz_jacnorm *jn = cz_jacnorm_new(&s.m, CZ_STREAM_GRAM, &err);
    assert_non_null(jn);
    for (int round = 0; round < 2; round++) {
        if (round) /* rotate W_1's columns' weights: another W_1 W_1^T */
            for (size_t i = 0; i < 6 * 11; i++) s.params[s.m.layer[0].w + i] *= (float)(1 + 0.1 * (double)(i % 11));
        step(&s);
        for (size_t b = 0; b < s.B; b++) {
            double sq[2], ref[2];
            assert_int_equal(cz_jacnorm_sample(jn, s.ws, s.params, b, sq, &err), 0);
            reference(&s, b, ref);
            for (int l = 0; l < 2; l++) assert_true(fabs(sq[l] - ref[l]) <= 1e-4 * ref[l]);
        }
    }
    cz_jacnorm_free(jn);
    setup_free(&s);
}

/* no unit off: the products are the dense stream's, gathered */
static void test_dense_activations(void **state)
{
    (void)state;
    size_t w[2] = {23, 31};
    check_against_stream_and_reference(2, w, 40, CZ_ACT_POLY, 0);
    check_against_stream_and_reference(2, w, 40, CZ_ACT_TANH, 0.2);
    size_t w1[1] = {17};
    check_against_stream_and_reference(1, w1, 5, CZ_ACT_GELU, 0);
}

/* every unit of layer 2 off: J_2 and J_3 are exactly 0, J_1 is not; layer 3's units are
 * on (positive biases), so only the empty product makes J_3 zero */
static void test_dead_layer(void **state)
{
    (void)state;
    size_t w[3] = {20, 16, 12};
    setup s;
    setup_init(&s, 3, w, 10, CZ_ACT_RELU, 0, 4, 3);
    for (size_t i = 0; i < 16; i++) s.params[s.m.layer[1].b + i] = -1e4f;
    for (size_t i = 0; i < 12; i++) s.params[s.m.layer[2].b + i] = 1;
    step(&s);
    cz_error err;
    cz_jacnorm *jn = cz_jacnorm_new(&s.m, CZ_STREAM_EXACT, &err);
    for (size_t b = 0; b < s.B; b++) {
        double sq[3] = {-1, -1, -1};
        assert_int_equal(cz_jacnorm_sample(jn, s.ws, s.params, b, sq, &err), 0);
        assert_true(sq[0] > 0);
        assert_true(sq[1] == 0 && sq[2] == 0);
        assert_true(cz_engine_jacobian_sqnorm(s.ws, 2)[b] == 0);
    }
    cz_jacnorm_free(jn);
    setup_free(&s);
}

/* large enough for both BLIS and the gather loops to split: the same bits. Layer 2's
 * product is nc x d x na with about 180 units on of 400 (ReLU, dropout 0.1): some 6.5e6
 * multiply-adds, above CZ_GEMM_SMALL (4.2e6), so it takes the threaded packed path
 * (300, 280 and d = 120 stayed below it, on one thread) */
static void test_threads(void **state)
{
    (void)state;
    size_t w[2] = {400, 400};
    setup s;
    setup_init(&s, 2, w, 200, CZ_ACT_RELU, 0.1, 4, 11);
    cz_error err;
    cz_jacnorm *jn = cz_jacnorm_new(&s.m, CZ_STREAM_EXACT, &err);
    double one[4][2], two[4][2];
    cz_engine_set_threads(1);
    step(&s);
    for (size_t b = 0; b < 4; b++) assert_int_equal(cz_jacnorm_sample(jn, s.ws, s.params, b, one[b], &err), 0);
    cz_engine_set_threads(2);
    for (size_t b = 0; b < 4; b++) assert_int_equal(cz_jacnorm_sample(jn, s.ws, s.params, b, two[b], &err), 0);
    cz_engine_set_threads(1);
    assert_memory_equal(one, two, sizeof one);
    assert_true(one[0][1] > 0);
    cz_jacnorm_free(jn);
    setup_free(&s);
}

/* Gram at hostile shapes, against the double reference: n_1 = 1 with d = 2 (R is 1 x 1),
 * n_1 = d - 1, and a W_1 with a zero row (a zero column of W_1^T: LAPACK's reflector is
 * the identity there, no failure). Catches a transposed read of R out of LAPACK's
 * column-major d x n_1 (its upper triangle is row i, columns j >= i, of the stored rows). */
static void test_gram_hostile_shapes(void **state)
{
    (void)state;
    struct { size_t w[2], d; int zero_row; } c[] = {{{1, 5}, 2, 0}, {{6, 7}, 7, 0}, {{5, 8}, 9, 1}};
    for (size_t t = 0; t < sizeof c / sizeof c[0]; t++) {
        setup s;
        setup_init(&s, 2, c[t].w, c[t].d, CZ_ACT_TANH, 0, 3, 40 + t);
        if (c[t].zero_row)
            for (size_t j = 0; j < c[t].d; j++) s.params[s.m.layer[0].w + 2 * c[t].d + j] = 0;
        step(&s);
        cz_error err;
        cz_jacnorm *jn = cz_jacnorm_new(&s.m, CZ_STREAM_GRAM, &err);
        assert_non_null(jn);
        for (size_t b = 0; b < s.B; b++) {
            double sq[2], ref[2];
            assert_int_equal(cz_jacnorm_sample(jn, s.ws, s.params, b, sq, &err), 0);
            reference(&s, b, ref);
            for (int l = 0; l < 2; l++) assert_true(fabs(sq[l] - ref[l]) <= 1e-4 * ref[l] + 1e-12);
        }
        cz_jacnorm_free(jn);
        setup_free(&s);
    }
}

/* Gram's QR runs LAPACK on BLIS's global thread count, set to one for it: the same bits on
 * 1 and 2 threads, and the count the engine set is back afterwards. n_1 = 96 > LAPACK's
 * block (32), so the QR takes its blocked path (BLIS level 3, which threads). */
static void test_gram_threads(void **state)
{
    (void)state;
    size_t w[2] = {96, 300};
    setup s;
    setup_init(&s, 2, w, 200, CZ_ACT_RELU, 0.1, 3, 12);
    cz_error err;
    cz_jacnorm *one_jn = cz_jacnorm_new(&s.m, CZ_STREAM_GRAM, &err), *two_jn = cz_jacnorm_new(&s.m, CZ_STREAM_GRAM, &err);
    double one[3][2], two[3][2];
    cz_engine_set_threads(1);
    step(&s);
    for (size_t b = 0; b < 3; b++) assert_int_equal(cz_jacnorm_sample(one_jn, s.ws, s.params, b, one[b], &err), 0);
    cz_engine_set_threads(2);
    for (size_t b = 0; b < 3; b++) assert_int_equal(cz_jacnorm_sample(two_jn, s.ws, s.params, b, two[b], &err), 0);
    assert_int_equal(bli_thread_get_num_threads(), 2);
    cz_engine_set_threads(1);
    assert_memory_equal(one, two, sizeof one);
    assert_true(one[0][1] > 0);
    cz_jacnorm_free(one_jn);
    cz_jacnorm_free(two_jn);
    setup_free(&s);
}

static void test_misuse(void **state)
{
    (void)state;
    size_t w[1] = {8};
    setup s;
    setup_init(&s, 1, w, 3, CZ_ACT_RELU, 0, 2, 5);
    cz_error err;
    cz_jacnorm *jn = cz_jacnorm_new(&s.m, CZ_STREAM_EXACT, &err);
    /* gram needs n_1 < d (here 8 > 3); other modes are not widths */
    assert_null(cz_jacnorm_new(&s.m, CZ_STREAM_GRAM, &err));
    assert_int_equal(err.code, CZ_EINVAL);
    assert_null(cz_jacnorm_new(&s.m, CZ_STREAM_PROBE, &err));
    assert_int_equal(cz_jacnorm_bytes(&s.m, CZ_STREAM_GRAM), 0);
    double sq[1];
    assert_int_equal(cz_jacnorm_sample(jn, s.ws, s.params, 0, sq, &err), CZ_EINVAL); /* no step yet */
    step(&s);
    assert_int_equal(cz_jacnorm_sample(jn, s.ws, s.params, 2, sq, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "no sample 2"));
    assert_int_equal(cz_jacnorm_sample(jn, s.ws, s.params, 1, sq, &err), 0);
    /* scratch of a narrower model, or of another d: refused, not overrun */
    size_t w2[1] = {9};
    setup wide, other_d;
    setup_init(&wide, 1, w2, 3, CZ_ACT_GELU, 0, 2, 6);
    setup_init(&other_d, 1, w, 4, CZ_ACT_GELU, 0, 2, 6);
    step(&wide);
    step(&other_d);
    assert_int_equal(cz_jacnorm_sample(jn, wide.ws, wide.params, 0, sq, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "another model"));
    assert_int_equal(cz_jacnorm_sample(jn, other_d.ws, other_d.params, 0, sq, &err), CZ_EINVAL);
    setup_free(&wide);
    setup_free(&other_d);
    cz_jacnorm_free(jn);
    cz_jacnorm_free(NULL);
    setup_free(&s);
    /* sizes that overflow are refused, not allocated short */
    cz_model huge = s.m;
    huge.spec.d = SIZE_MAX / 4;
    assert_int_equal(cz_jacnorm_bytes(&huge, CZ_STREAM_EXACT), 0);
    assert_null(cz_jacnorm_new(&huge, CZ_STREAM_EXACT, &err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relu),      cmocka_unit_test(test_relu_dropout), cmocka_unit_test(test_dense_activations),
        cmocka_unit_test(test_dead_layer), cmocka_unit_test(test_threads),     cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_gram_follows_w1), cmocka_unit_test(test_gram_hostile_shapes),
        cmocka_unit_test(test_gram_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
