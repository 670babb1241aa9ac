/* Double-precision checks of the engine's math (docs/DESIGN.md section 1):
 * - analytic gradient vs central finite differences for every parameter block
 *   x every activation x DREG on/off x every head (x dropout on/off);
 * - S_l from the stream vs a finite-difference Jacobian of h_l with respect to x;
 * - the per-sample input gradient S_o^T dtask/df vs finite differences and backprop;
 * - the batched GEMM path vs a naive per-sample reference written from the equations;
 * - micro-batched accumulation vs one batch;
 * - Gram mode == exact mode (penalty, per-layer norms, Jacobians, gradients), and its
 *   gradient vs finite differences;
 * - probe mode: its gradient is the exact gradient of its estimate (finite differences
 *   with the same directions), and the mean over many draws converges to the exact
 *   penalty and gradient (a statistical test: within 5 standard errors).
 * The tau per-sample norms are test_sample_norms's (same fixture: gradcheck_fixture.h). */
#include "gradcheck_fixture.h"

static void run_grid(const size_t *widths, int H)
{
    int cases = 0;
    for (int a = 0; a < 5; a++)
        for (int hd = 0; hd < 3; hd++)
            for (int dreg = 0; dreg < 2; dreg++)
                for (int drop = 0; drop < 2; drop++) {
                    cz_act acts[CZ_MAX_HIDDEN];
                    for (int l = 0; l < H; l++) acts[l] = ALL_ACTS[a];
                    fixture f;
                    fixture_init(&f, acts, H, widths, ALL_HEADS[hd], drop ? 0.3 : 0.0,
                                 dreg ? 0.37 : 0.0, 1000 + (uint64_t)cases);
                    double worst = check_params(&f);
                    if (worst > 1)
                        print_error("act %s head %s lambda %g dropout %g: worst err %.3g x tol\n",
                                    cz_act_name(ALL_ACTS[a]), cz_head_name(ALL_HEADS[hd]),
                                    f.opts.lambda, f.m.spec.dropout, worst);
                    assert_true(worst <= 1);
                    fixture_free(&f);
                    cases++;
                }
    assert_int_equal(cases, 60);
}

static void test_gradcheck_one_hidden_layer(void **state)
{
    (void)state;
    size_t w[] = {4};
    run_grid(w, 1);
}

static void test_gradcheck_two_hidden_layers(void **state)
{
    (void)state;
    size_t w[] = {4, 3};
    run_grid(w, 2);
}

static void test_gradcheck_three_hidden_layers(void **state)
{
    (void)state;
    size_t w[] = {4, 3, 6};
    run_grid(w, 3);
}

static void test_gradcheck_mixed_activations(void **state)
{
    (void)state;
    size_t w[] = {4, 5, 3, 4};
    cz_act acts[] = {CZ_ACT_POLY, CZ_ACT_RELU, CZ_ACT_GELU, CZ_ACT_POLY};
    for (int hd = 0; hd < 3; hd++) {
        fixture f;
        fixture_init(&f, acts, 4, w, ALL_HEADS[hd], 0.2, 0.5, 77 + (uint64_t)hd);
        assert_true(check_params(&f) <= 1);
        fixture_free(&f);
    }
}

/* S_l (stream) == d h_l / d x by central differences, for every layer and sample */
static void test_gradcheck_stream_equals_fd_jacobian(void **state)
{
    (void)state;
    size_t w[] = {4, 3, 5};
    for (int a = 0; a < 5; a++) {
        cz_act acts[] = {ALL_ACTS[a], ALL_ACTS[a], ALL_ACTS[a]};
        fixture f;
        fixture_init(&f, acts, 3, w, CZ_HEAD_CLASSIFY, 0.25, 0.0, 300 + (uint64_t)a);
        f.opts.stream = 1;
        cz_error err;
        size_t d = f.m.spec.d;
        double *S = malloc(8 * d * sizeof(double));
        double *hp = malloc(B_MAX * 8 * sizeof(double)), *hm = malloc(B_MAX * 8 * sizeof(double));
        for (int l = 1; l <= 3; l++) {
            size_t n = f.m.layer[l - 1].n_out;
            for (size_t b = 0; b < f.B; b++) {
                objective(&f, f.params, f.x);
                assert_int_equal(cz_engine_jacobian(f.ws, f.params, l, b, S, &err), 0);
                double sq = 0;
                for (size_t k = 0; k < n * d; k++) sq += S[k] * S[k];
                assert_true(rel_err(sq, cz_engine_jacobian_sqnorm(f.ws, l)[b]) < 1e-12);
                for (size_t j = 0; j < d; j++) {
                    const double h = 1e-6, keep = f.x[b * d + j];
                    f.x[b * d + j] = keep + h;
                    objective(&f, f.params, f.x);
                    memcpy(hp, cz_engine_hidden(f.ws, l), f.B * n * sizeof(double));
                    f.x[b * d + j] = keep - h;
                    objective(&f, f.params, f.x);
                    memcpy(hm, cz_engine_hidden(f.ws, l), f.B * n * sizeof(double));
                    f.x[b * d + j] = keep;
                    for (size_t i = 0; i < n; i++) {
                        double fd = (hp[b * n + i] - hm[b * n + i]) / (2 * h);
                        assert_true(fabs(fd - S[i * d + j]) <= 1e-6 * fmax(1.0, fabs(fd)));
                    }
                }
            }
        }
        free(S);
        free(hp);
        free(hm);
        fixture_free(&f);
    }
}

/* per-sample input gradient of the TASK loss: S_o^T dtask/df == fd == backprop */
static void test_gradcheck_input_grad_identity(void **state)
{
    (void)state;
    size_t w[] = {4, 3};
    for (int a = 0; a < 5; a++)
        for (int hd = 0; hd < 3; hd++)
            for (int H = 1; H <= 2; H++) {
                cz_act acts[] = {ALL_ACTS[a], ALL_ACTS[a]};
                fixture f;
                fixture_init(&f, acts, H, w, ALL_HEADS[hd], 0.0, 0.0, 500 + (uint64_t)(a * 3 + hd));
                size_t d = f.m.spec.d;
                double gs[B_MAX * 5], gb[B_MAX * 5];
                cz_step_sums sums;
                cz_error err;
                /* lambda > 0: the stream's backward runs and the identity is computed fused */
                f.opts.lambda = 0.4;
                f.opts.stream_input_grad = 1;
                assert_int_equal(cz_engine_step(f.ws, f.params, f.x, f.yc, f.yv, f.keys, f.B,
                                                &f.opts, f.grad, &sums, &err), 0);
                assert_int_equal(cz_engine_input_grad(f.ws, f.params, gs, &err), 0);
                f.opts.lambda = 0.0; /* task loss only for the finite differences */
                for (size_t k = 0; k < f.B * d; k++) {
                    double L0, fd = fd_derivative(&f, f.params, f.x, f.x + k, &L0);
                    assert_true(fd_err(gs[k], fd, L0) <= 1);
                }
                /* lambda == 0 with the stream on: the unfused path, and backprop agrees */
                f.opts.stream = 1;
                assert_int_equal(cz_engine_step(f.ws, f.params, f.x, f.yc, f.yv, f.keys, f.B,
                                                &f.opts, f.grad, &sums, &err), 0);
                double gs0[B_MAX * 5];
                assert_int_equal(cz_engine_input_grad(f.ws, f.params, gs0, &err), 0);
                assert_int_equal(cz_engine_input_grad_backprop(f.ws, f.params, gb, &err), 0);
                for (size_t k = 0; k < f.B * d; k++) {
                    assert_true(rel_err(gs0[k], gs[k]) < 1e-12);
                    assert_true(rel_err(gs0[k], gb[k]) < 1e-12);
                }
                fixture_free(&f);
            }
}

/* ---- a naive per-sample reference, written from DESIGN's equations with plain loops ---- */

typedef struct {
    const cz_model *m;
    const double *p;
} ref_model;

static void ref_act(cz_act act, const double *a, double z, double *v, double *d1, double *d2)
{
    cz_real zz = z, vv, dd1, dd2;
    cz_act_eval(&vv, &dd1, &dd2, act, a, &zz, 1, 1);
    *v = vv;
    *d1 = dd1;
    *d2 = dd2;
}

/* one sample, no dropout: returns task + lambda * sum ||S_l||^2, adds its gradient to g */
static double ref_sample(const ref_model *R, const double *x, int32_t yc, double yv,
                         double lambda, double *g)
{
    const cz_model *m = R->m;
    const double *p = R->p;
    int H = m->n_hidden;
    size_t d = m->spec.d;
    enum { NMAX = 8, DMAX = 5 };
    double z[CZ_MAX_HIDDEN][NMAX], hv[CZ_MAX_HIDDEN + 1][NMAX], dp[CZ_MAX_HIDDEN][NMAX],
        ddp[CZ_MAX_HIDDEN][NMAX];
    double S[CZ_MAX_HIDDEN + 1][NMAX][DMAX], T[CZ_MAX_HIDDEN][NMAX][DMAX];
    double dreg = 0;
    const double *hin = x;
    for (int l = 0; l < H; l++) {
        const cz_layer *L = &m->layer[l];
        for (size_t i = 0; i < L->n_out; i++) {
            double s = p[L->b + i];
            for (size_t k = 0; k < L->n_in; k++) s += p[L->w + i * L->n_in + k] * hin[k];
            z[l][i] = s;
            ref_act(L->act, L->poly == CZ_NONE ? NULL : p + L->poly + 4 * i, s, &hv[l][i],
                    &dp[l][i], &ddp[l][i]);
            for (size_t j = 0; j < d; j++) {
                double t = 0;
                if (l == 0) t = p[L->w + i * d + j];
                else
                    for (size_t k = 0; k < L->n_in; k++) t += p[L->w + i * L->n_in + k] * S[l - 1][k][j];
                T[l][i][j] = t;
                S[l][i][j] = dp[l][i] * t;
                dreg += S[l][i][j] * S[l][i][j];
            }
        }
        hin = hv[l];
    }
    const cz_layer *O = &m->layer[H];
    double f[8], e[8];
    for (size_t k = 0; k < O->n_out; k++) {
        double s = p[O->b + k];
        for (size_t i = 0; i < O->n_in; i++) s += p[O->w + k * O->n_in + i] * hin[i];
        f[k] = s;
    }
    cz_real fr[8], er[8], yr = yv;
    for (size_t k = 0; k < O->n_out; k++) fr[k] = f[k];
    cz_loss_sums ls = {0};
    cz_loss_eval(er, NULL, NULL, &ls, m, fr, &yc, &yr, 1);
    for (size_t k = 0; k < O->n_out; k++) e[k] = er[k];
    /* backward */
    double gh[NMAX] = {0};
    for (size_t k = 0; k < O->n_out; k++) {
        g[O->b + k] += e[k];
        for (size_t i = 0; i < O->n_in; i++) {
            g[O->w + k * O->n_in + i] += e[k] * hin[i];
            gh[i] += e[k] * p[O->w + k * O->n_in + i];
        }
    }
    double U[NMAX][DMAX];
    for (size_t i = 0; i < m->layer[H - 1].n_out; i++)
        for (size_t j = 0; j < d; j++) U[i][j] = 2 * lambda * S[H - 1][i][j];
    for (int l = H - 1; l >= 0; l--) {
        const cz_layer *L = &m->layer[l];
        const double *hprev = l == 0 ? x : hv[l - 1];
        double V[NMAX][DMAX], q[NMAX], dz[NMAX], gprev[NMAX] = {0}, Uprev[NMAX][DMAX];
        for (size_t i = 0; i < L->n_out; i++) {
            q[i] = 0;
            for (size_t j = 0; j < d; j++) {
                q[i] += U[i][j] * T[l][i][j];
                V[i][j] = dp[l][i] * U[i][j];
            }
        }
        /* dW_l += V_l S_{l-1}^T, U_{l-1} = W_l^T V_l + 2 lambda S_{l-1} */
        for (size_t i = 0; i < L->n_out; i++)
            for (size_t k = 0; k < L->n_in; k++) {
                double s = 0;
                for (size_t j = 0; j < d; j++) s += V[i][j] * (l == 0 ? (k == j) : S[l - 1][k][j]);
                g[L->w + i * L->n_in + k] += s;
            }
        if (l > 0)
            for (size_t k = 0; k < L->n_in; k++)
                for (size_t j = 0; j < d; j++) {
                    double s = 2 * lambda * S[l - 1][k][j];
                    for (size_t i = 0; i < L->n_out; i++) s += p[L->w + i * L->n_in + k] * V[i][j];
                    Uprev[k][j] = s;
                }
        for (size_t i = 0; i < L->n_out; i++) {
            dz[i] = gh[i] * dp[l][i] + q[i] * ddp[l][i];
            double zz = z[l][i];
            if (L->poly != CZ_NONE) {
                double *da = g + L->poly + 4 * i;
                da[0] += gh[i];
                da[1] += gh[i] * zz + q[i];
                da[2] += gh[i] * zz * zz + 2 * zz * q[i];
                da[3] += gh[i] * zz * zz * zz + 3 * zz * zz * q[i];
            }
            g[L->b + i] += dz[i];
            for (size_t k = 0; k < L->n_in; k++) {
                g[L->w + i * L->n_in + k] += dz[i] * hprev[k];
                gprev[k] += dz[i] * p[L->w + i * L->n_in + k];
            }
        }
        memcpy(gh, gprev, sizeof gh);
        if (l > 0) memcpy(U, Uprev, sizeof U);
    }
    return ls.loss + lambda * dreg;
}

static void test_gradcheck_batched_equals_naive_reference(void **state)
{
    (void)state;
    size_t w[] = {4, 3, 5};
    for (int a = 0; a < 5; a++)
        for (int hd = 0; hd < 3; hd++) {
            cz_act acts[] = {ALL_ACTS[a], ALL_ACTS[(a + 1) % 5], ALL_ACTS[a]};
            fixture f;
            fixture_init(&f, acts, 3, w, ALL_HEADS[hd], 0.0, 0.6, 900 + (uint64_t)(a * 3 + hd));
            f.B = B_MAX;
            cz_step_sums sums;
            cz_error err;
            assert_int_equal(cz_engine_step(f.ws, f.params, f.x, f.yc, f.yv, f.keys, f.B,
                                            &f.opts, f.grad, &sums, &err), 0);
            double *gref = calloc(f.m.n_params, sizeof(double));
            ref_model R = {&f.m, f.params};
            double obj = 0;
            for (size_t b = 0; b < f.B; b++)
                obj += ref_sample(&R, f.x + b * f.m.spec.d, f.yc[b], f.yv[b], f.opts.lambda, gref);
            assert_true(rel_err(obj, sums.task.loss + f.opts.lambda * sums.dreg) < 1e-12);
            for (size_t k = 0; k < f.m.n_params; k++) assert_true(rel_err(gref[k], f.grad[k]) < 1e-10);
            free(gref);
            fixture_free(&f);
        }
}

/* gradient of B samples == sum of the gradients of its micro-batches */
static void test_gradcheck_micro_batches_sum_to_batch(void **state)
{
    (void)state;
    size_t w[] = {4, 3};
    cz_act acts[] = {CZ_ACT_POLY, CZ_ACT_POLY};
    fixture f;
    fixture_init(&f, acts, 2, w, CZ_HEAD_ORDINAL, 0.3, 0.5, 4242);
    f.B = B_MAX;
    cz_step_sums all, part;
    cz_error err;
    assert_int_equal(cz_engine_step(f.ws, f.params, f.x, f.yc, f.yv, f.keys, f.B, &f.opts,
                                    f.grad, &all, &err), 0);
    double *acc = calloc(f.m.n_params, sizeof(double)), *gp = calloc(f.m.n_params, sizeof(double));
    double loss = 0, dreg = 0;
    size_t cuts[] = {0, 1, 4, B_MAX};
    for (int c = 0; c < 3; c++) {
        size_t b0 = cuts[c], nb = cuts[c + 1] - cuts[c];
        assert_int_equal(cz_engine_step(f.ws, f.params, f.x + b0 * f.m.spec.d, f.yc + b0,
                                        f.yv + b0, f.keys + b0, nb, &f.opts, gp, &part, &err), 0);
        for (size_t k = 0; k < f.m.n_params; k++) acc[k] += gp[k];
        loss += part.task.loss;
        dreg += part.dreg;
    }
    assert_true(rel_err(loss, all.task.loss) < 1e-12);
    assert_true(rel_err(dreg, all.dreg) < 1e-12);
    for (size_t k = 0; k < f.m.n_params; k++) assert_true(rel_err(acc[k], f.grad[k]) < 1e-10);
    free(acc);
    free(gp);
    fixture_free(&f);
}

/* the fixture's model with another stream */
static void fixture_stream(fixture *f, cz_stream_mode mode, int probes)
{
    cz_error err;
    cz_stream_spec ss = {.mode = mode, .probes = probes};
    cz_workspace_free(f->ws);
    f->ws = cz_workspace_new_stream(&f->m, B_MAX, &ss, &err);
    assert_non_null(f->ws);
}

static void test_gradcheck_gram_equals_exact(void **state)
{
    (void)state;
    const size_t w1[] = {4}, w2[] = {4, 3}, w3[] = {3, 6, 4};
    const size_t *ws[] = {w1, w2, w3};
    int cases = 0;
    for (int H = 1; H <= 3; H++)
        for (int a = 0; a < 5; a++)
            for (int drop = 0; drop < 2; drop++) {
                cz_act acts[CZ_MAX_HIDDEN];
                for (int l = 0; l < H; l++) acts[l] = ALL_ACTS[(a + l) % 5];
                fixture f;
                fixture_init(&f, acts, H, ws[H - 1], ALL_HEADS[(a + H) % 3], drop ? 0.3 : 0.0, 0.37,
                             2000 + (uint64_t)cases);
                size_t n = f.m.n_params, d = f.m.spec.d;
                double *g_exact = calloc(n, sizeof(double)), sq[CZ_MAX_HIDDEN][B_MAX];
                double *J = calloc(8 * d, sizeof(double)), *Jg = calloc(8 * d, sizeof(double));
                cz_step_sums se, sg;
                cz_error err;
                /* forward only: the Jacobians themselves (the backward reuses their memory) */
                f.opts.stream = 1;
                cz_step_opts fwd = f.opts;
                fwd.lambda = 0;
                assert_int_equal(cz_engine_step(f.ws, f.params, f.x, f.yc, f.yv, f.keys, f.B, &fwd, NULL, &se, &err), 0);
                for (int l = 1; l <= H; l++)
                    memcpy(sq[l - 1], cz_engine_jacobian_sqnorm(f.ws, l), f.B * sizeof(double));
                assert_int_equal(cz_engine_jacobian(f.ws, f.params, H, f.B - 1, J, &err), 0);
                assert_int_equal(cz_engine_step(f.ws, f.params, f.x, f.yc, f.yv, f.keys, f.B, &f.opts, g_exact,
                                                &se, &err), 0);
                fixture_stream(&f, CZ_STREAM_GRAM, 0);
                assert_int_equal(cz_engine_step(f.ws, f.params, f.x, f.yc, f.yv, f.keys, f.B, &fwd, NULL, &sg, &err), 0);
                for (int l = 1; l <= H; l++)
                    for (size_t b = 0; b < f.B; b++)
                        assert_true(rel_err(sq[l - 1][b], cz_engine_jacobian_sqnorm(f.ws, l)[b]) < 1e-12);
                assert_int_equal(cz_engine_jacobian(f.ws, f.params, H, f.B - 1, Jg, &err), 0);
                for (size_t i = 0; i < f.m.layer[H - 1].n_out * d; i++) assert_true(fabs(J[i] - Jg[i]) < 1e-12);
                assert_int_equal(cz_engine_step(f.ws, f.params, f.x, f.yc, f.yv, f.keys, f.B, &f.opts, f.grad,
                                                &sg, &err), 0);
                assert_true(rel_err(se.dreg, sg.dreg) < 1e-12);
                double gmax = 0;
                for (size_t k = 0; k < n; k++) gmax = fmax(gmax, fabs(g_exact[k]));
                for (size_t k = 0; k < n; k++) {
                    if (fabs(g_exact[k] - f.grad[k]) > 1e-12 * gmax)
                        print_error("H %d act %d param %zu: exact %.15g gram %.15g\n", H, a, k, g_exact[k], f.grad[k]);
                    assert_true(fabs(g_exact[k] - f.grad[k]) <= 1e-12 * gmax);
                }
                /* and Gram's own gradient against finite differences */
                f.opts.stream = 0;
                assert_true(check_params(&f) <= 1);
                free(g_exact);
                free(J);
                free(Jg);
                fixture_free(&f);
                cases++;
            }
    assert_int_equal(cases, 30);
}

/* Gram needs n_1 <= d; probes need K >= 1 and keys */
static void test_gradcheck_stream_modes_refuse_misuse(void **state)
{
    (void)state;
    size_t w[] = {7};
    cz_act acts[] = {CZ_ACT_POLY};
    fixture f;
    fixture_init(&f, acts, 1, w, CZ_HEAD_CLASSIFY, 0, 0.3, 5);
    cz_error err = {0};
    cz_stream_spec gram = {.mode = CZ_STREAM_GRAM}, probe0 = {.mode = CZ_STREAM_PROBE, .probes = 0},
                   none = {.mode = CZ_STREAM_NONE};
    assert_null(cz_workspace_new_stream(&f.m, 4, &gram, &err));
    assert_non_null(strstr(err.msg, "no wider than the input"));
    assert_null(cz_workspace_new_stream(&f.m, 4, &probe0, &err));
    cz_workspace *ws = cz_workspace_new_stream(&f.m, 4, &none, &err);
    cz_step_sums s;
    assert_int_equal(cz_engine_step(ws, f.params, f.x, f.yc, f.yv, f.keys, 4, &f.opts, f.grad, &s, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "need a workspace with a stream"));
    cz_workspace_free(ws);
    fixture_stream(&f, CZ_STREAM_PROBE, 3);
    assert_int_equal(cz_engine_step(f.ws, f.params, f.x, f.yc, f.yv, NULL, 4, &f.opts, f.grad, &s, &err), CZ_EINVAL);
    fixture_free(&f);
}

/* Probe mode: for fixed keys the estimate is a smooth function whose gradient the engine
 * computes exactly; over the keys it is unbiased for the penalty and its gradient. */
static void test_gradcheck_probe_exact_for_its_draw_and_unbiased(void **state)
{
    (void)state;
    const size_t w2[] = {4, 3}, w3[] = {6, 3, 4};
    for (int H = 2; H <= 3; H++) {
        cz_act acts[] = {CZ_ACT_POLY, CZ_ACT_TANH, CZ_ACT_POLY};
        fixture f;
        fixture_init(&f, acts, H, H == 2 ? w2 : w3, CZ_HEAD_CLASSIFY, H == 3 ? 0.2 : 0.0, 0.37, 3000 + (uint64_t)H);
        size_t n = f.m.n_params;
        double *g_exact = calloc(n, sizeof(double)), *mean = calloc(n, sizeof(double)),
               *m2 = calloc(n, sizeof(double));
        cz_step_sums se, sp;
        cz_error err;
        /* no dropout in the expectation: the masks come from the same keys as the probes */
        f.opts.train = H == 3;
        assert_int_equal(cz_engine_step(f.ws, f.params, f.x, f.yc, f.yv, f.keys, f.B, &f.opts, g_exact, &se, &err), 0);
        fixture_stream(&f, CZ_STREAM_PROBE, 2);
        assert_true(check_params(&f) <= 1); /* the estimate's own gradient, keys fixed */
        if (H == 3) { /* dropout: checked for its gradient only */
            free(g_exact); free(mean); free(m2);
            fixture_free(&f);
            continue;
        }
        const int R = 20000;
        double dsum = 0, dsq = 0;
        cz_rng r;
        cz_rng_seed(&r, 99);
        for (int it = 0; it < R; it++) {
            for (size_t b = 0; b < f.B; b++) f.keys[b] = cz_rng_u64(&r);
            assert_int_equal(cz_engine_step(f.ws, f.params, f.x, f.yc, f.yv, f.keys, f.B, &f.opts, f.grad, &sp, &err), 0);
            dsum += sp.dreg;
            dsq += sp.dreg * sp.dreg;
            for (size_t k = 0; k < n; k++) { /* Welford would be kinder; R is small enough */
                mean[k] += f.grad[k];
                m2[k] += f.grad[k] * f.grad[k];
            }
        }
        double dm = dsum / R, dse = sqrt((dsq / R - dm * dm) / R);
        if (fabs(dm - se.dreg) > 5 * dse) print_error("penalty: mean %.8g exact %.8g se %.3g\n", dm, se.dreg, dse);
        assert_true(fabs(dm - se.dreg) <= 5 * dse);
        assert_true(dse < 0.05 * se.dreg); /* the test has power: the mean is known to 5 % */
        int over = 0;
        for (size_t k = 0; k < n; k++) {
            double mk = mean[k] / R, sek = sqrt(fmax(m2[k] / R - mk * mk, 0) / R);
            if (fabs(mk - g_exact[k]) > 5 * sek + 1e-12 * fabs(g_exact[k])) {
                print_error("param %zu: mean %.8g exact %.8g se %.3g\n", k, mk, g_exact[k], sek);
                over++;
            }
        }
        assert_int_equal(over, 0);
        free(g_exact);
        free(mean);
        free(m2);
        fixture_free(&f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradcheck_one_hidden_layer),
        cmocka_unit_test(test_gradcheck_two_hidden_layers),
        cmocka_unit_test(test_gradcheck_three_hidden_layers),
        cmocka_unit_test(test_gradcheck_mixed_activations),
        cmocka_unit_test(test_gradcheck_stream_equals_fd_jacobian),
        cmocka_unit_test(test_gradcheck_input_grad_identity),
        cmocka_unit_test(test_gradcheck_batched_equals_naive_reference),
        cmocka_unit_test(test_gradcheck_micro_batches_sum_to_batch),
        cmocka_unit_test(test_gradcheck_gram_equals_exact),
        cmocka_unit_test(test_gradcheck_stream_modes_refuse_misuse),
        cmocka_unit_test(test_gradcheck_probe_exact_for_its_draw_and_unbiased),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
