/* The double-precision engine's test fixture, shared by test_gradcheck (gradients, streams,
 * modes) and test_sample_norms (the tau per-sample norms): a small model with random
 * parameters and data, finite differences of the objective, and the parameter check. */
#ifndef CHAINZ_TESTS_GRADCHECK_FIXTURE_H
#define CHAINZ_TESTS_GRADCHECK_FIXTURE_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chainz/engine.h"

#ifndef CZ_REAL_DOUBLE
#error "the gradient checks must link the double-precision engine"
#endif

#define B_MAX 6

typedef struct {
    cz_model m;
    cz_workspace *ws;
    double *params, *grad, *x, *yv;
    int32_t *yc;
    uint64_t keys[B_MAX];
    size_t B;
    cz_step_opts opts;
} fixture;

static inline void fixture_init(fixture *f, const cz_act *acts, int H, const size_t *widths,
                         cz_head head, double dropout, double lambda, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    cz_model_spec s = {.d = 5, .n_hidden = H, .head = head, .classes = 4, .dropout = dropout};
    for (int l = 0; l < H; l++) {
        s.width[l] = widths[l];
        s.act[l] = acts[l];
    }
    cz_error err;
    assert_int_equal(cz_model_init(&f->m, &s, &err), 0);
    f->B = 4;
    f->ws = cz_workspace_new(&f->m, B_MAX, &err);
    assert_non_null(f->ws);
    f->params = calloc(f->m.n_params, sizeof(double));
    f->grad = calloc(f->m.n_params, sizeof(double));
    f->x = calloc(B_MAX * s.d, sizeof(double));
    f->yv = calloc(B_MAX, sizeof(double));
    f->yc = calloc(B_MAX, sizeof(int32_t));
    cz_rng r;
    cz_rng_seed(&r, seed);
    cz_model_params_init(&f->m, f->params, &r);
    /* move every block off its special initial values so that every term is exercised */
    for (int l = 0; l <= H; l++) {
        const cz_layer *L = &f->m.layer[l];
        for (size_t i = 0; i < L->n_out; i++) f->params[L->b + i] = 0.3 * cz_rng_normal(&r);
        if (L->poly != CZ_NONE)
            for (size_t i = 0; i < L->n_out; i++) {
                double *a = f->params + L->poly + 4 * i;
                a[0] = 0.2 * cz_rng_normal(&r);
                a[1] = 1.0 + 0.3 * cz_rng_normal(&r);
                a[2] = 0.4 * cz_rng_normal(&r);
                a[3] = 0.3 * cz_rng_normal(&r);
            }
    }
    for (size_t i = 0; i < B_MAX * s.d; i++) f->x[i] = cz_rng_normal(&r);
    for (size_t b = 0; b < B_MAX; b++) {
        f->yc[b] = (int32_t)cz_rng_below(&r, 4);
        f->yv[b] = cz_rng_normal(&r);
        f->keys[b] = cz_rng_u64(&r);
    }
    f->opts = (cz_step_opts){.lambda = lambda, .train = 1, .stream = 0};
}

static inline void fixture_free(fixture *f)
{
    cz_workspace_free(f->ws);
    free(f->params);
    free(f->grad);
    free(f->x);
    free(f->yv);
    free(f->yc);
}

/* the un-normalized objective the engine differentiates */
static inline double objective(fixture *f, const double *params, const double *x)
{
    cz_step_sums sums;
    cz_error err;
    assert_int_equal(cz_engine_step(f->ws, params, x, f->yc, f->yv, f->keys, f->B, &f->opts,
                                     NULL, &sums, &err), 0);
    return sums.task.loss + f->opts.lambda * sums.dreg;
}

static inline double rel_err(double a, double b) { return fabs(a - b) / fmax(1e-6, fmax(fabs(a), fabs(b))); }

/* Five-point central difference of the objective in the coordinate *v (a parameter or an
 * input): truncation O(h^4), so h can be large enough that rounding (~eps*|L|/h) stays
 * far below the tolerance even where deep cubic layers make |L| large. */
static inline double fd_derivative(fixture *f, const double *params, const double *x, double *v, double *L0)
{
    const double h = 1e-4, keep = *v;
    double Lv[4], off[4] = {2 * h, h, -h, -2 * h};
    for (int i = 0; i < 4; i++) {
        *v = keep + off[i];
        Lv[i] = objective(f, params, x);
    }
    *v = keep;
    *L0 = objective(f, params, x);
    return (-Lv[0] + 8 * Lv[1] - 8 * Lv[2] + Lv[3]) / (12 * h);
}

/* Error in units of the tolerance (<= 1 passes): 1e-6 relative, plus an absolute floor
 * at the stencil's rounding level for the objective's magnitude. */
static inline double fd_err(double analytic, double fd, double L)
{
    double tol = 1e-6 * fmax(fabs(analytic), fabs(fd)) + 1e-10 * fmax(1.0, fabs(L));
    return fabs(analytic - fd) / tol;
}

/* Block of parameter index k, for the report: 0 hidden W, 1 hidden b, 2 poly, 3 output. */
static inline int block_of(const cz_model *m, size_t k)
{
    const cz_layer *O = &m->layer[m->n_hidden];
    if (k >= O->w && k < O->w + O->n_out * O->n_in) return 3;
    if (k >= O->b && k < O->b + O->n_out) return 3;
    if (k < m->n_weights) return 0;
    for (int l = 0; l < m->n_hidden; l++) {
        const cz_layer *L = &m->layer[l];
        if (L->poly != CZ_NONE && k >= L->poly && k < L->poly + 4 * L->n_out) return 2;
    }
    return 1;
}

/* Returns the worst relative error; fails if any block was never checked. */
static inline double check_params(fixture *f)
{
    cz_step_sums sums;
    cz_error err;
    assert_int_equal(cz_engine_step(f->ws, f->params, f->x, f->yc, f->yv, f->keys, f->B,
                                    &f->opts, f->grad, &sums, &err), 0);
    double worst = 0;
    int seen[4] = {0};
    for (size_t k = 0; k < f->m.n_params; k++) {
        double L0;
        double fd = fd_derivative(f, f->params, f->x, f->params + k, &L0);
        double e = fd_err(f->grad[k], fd, L0);
        if (e > 1)
            print_error("param %zu (block %d): analytic %.10g fd %.10g (objective %.6g)\n", k,
                        block_of(&f->m, k), f->grad[k], fd, L0);
        if (e > worst) worst = e;
        seen[block_of(&f->m, k)] = 1;
    }
    assert_true(seen[0] && seen[1] && seen[3]);
    for (int l = 0; l < f->m.n_hidden; l++)
        if (f->m.layer[l].act == CZ_ACT_POLY) assert_true(seen[2]);
    return worst;
}

static const cz_act ALL_ACTS[] = {CZ_ACT_POLY, CZ_ACT_RELU, CZ_ACT_TANH, CZ_ACT_GELU, CZ_ACT_IDENTITY};
static const cz_head ALL_HEADS[] = {CZ_HEAD_CLASSIFY, CZ_HEAD_ORDINAL, CZ_HEAD_REGRESS};

#endif
