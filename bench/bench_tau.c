/* What does tau cost a lambda = 0 step? Issue 15 asks for at most 1.3x a --no-tau step.
 * For a checkpoint (say a ReLU baseline trained for an epoch, so that its units are on and
 * off as in a real run) and real rows, each repetition runs one training step of --batch
 * rows twice, in alternating order: without tau, and with what tau adds to it (the per-
 * sample input_grad and sample_grad norms, and the layer-Jacobian norms of the seeded
 * subsample at the run's default fraction). A step is what train_step does on one rank: per
 * micro-batch the rows read, the engine step, its gradient summed; then AdamW over every
 * parameter. Every row of the file is visited (fresh keys, so a fresh subsample, every
 * epoch); the subsample is bursty, so means are reported, with the tau extras split.
 *
 *   bench_tau CKPT DATA.h5 [--steps S] [--batch B] [--micro-batch M]
 *
 * A benchmark, never a test: it prints numbers and fails only on errors. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chainz/checkpoint.h"
#include "chainz/config.h"
#include "chainz/data.h"
#include "chainz/engine.h"
#include "chainz/optim.h"
#include "chainz/rng.h"
#include "../src/train/feed.h"
#include "../src/train/streamplan.h"
#include "../src/train/taucollect.h"

static void die(const char *msg)
{
    fprintf(stderr, "bench_tau: error: %s\n", msg);
    exit(EXIT_FAILURE);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    cz_workspace *ws;
    cz_feed io;
    float *params, *grad, *g, *state;
    double t_step, t_norms, t_sampled;
} lane;

/* one step of rows [r0, r0 + B); with ts, tau's additions (timed apart) */
static void step(lane *L, const cz_checkpoint *c, const cz_optim_spec *os, size_t N, size_t r0, size_t B, size_t M,
                 uint64_t epoch_key, long t, cz_tau_set *ts)
{
    cz_error err = {0};
    const cz_model *m = &c->model;
    size_t n = m->n_params;
    cz_step_opts o = {.lambda = 0, .train = 1};
    double t0 = now_s(), tn = 0, tsm = 0;
    memset(L->grad, 0, n * sizeof(float));
    for (size_t b0 = 0; b0 < B; b0 += M) {
        size_t mb = B - b0 < M ? B - b0 : M;
        for (size_t b = 0; b < mb; b++) {
            L->io.rows[b] = (r0 + b0 + b) % N;
            L->io.keys[b] = cz_hash64(epoch_key, L->io.rows[b]);
        }
        cz_step_sums s;
        if (cz_feed_load(&L->io, mb, &err) ||
            cz_engine_step(L->ws, L->params, L->io.x, L->io.yc, L->io.yv, L->io.keys, mb, &o, L->g, &s, &err))
            die(err.msg);
        if (ts) {
            double a = now_s();
            if (cz_tau_set_collect(ts, L->ws, L->params, m->n_hidden, mb, 0, &err)) die(err.msg);
            double b = now_s();
            if (cz_tau_set_collect_sampled(ts, L->ws, L->params, L->io.keys, mb, &err)) die(err.msg);
            tn += b - a;
            tsm += now_s() - b;
        }
        for (size_t i = 0; i < n; i++) L->grad[i] += L->g[i];
    }
    for (size_t i = 0; i < n; i++) L->grad[i] *= (float)(1.0 / (double)B);
    cz_optim_step(os, L->params, L->grad, L->state, n, m->n_weights, t, 1e-4);
    L->t_step += now_s() - t0;
    L->t_norms += tn;
    L->t_sampled += tsm;
}

int main(int argc, char **argv)
{
    if (argc < 3) die("usage: bench_tau CKPT DATA.h5 [--steps S] [--batch B] [--micro-batch M]");
    long S = 400;
    size_t B = 128, M = 32;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--steps")) S = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) B = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--micro-batch")) M = (size_t)atol(argv[i + 1]);
        else die("unknown option");
    }
    if (S < 1 || B < 1 || M < 1) die("--steps, --batch and --micro-batch must be positive");
    cz_error err = {0};
    if (cz_engine_init(NULL, &err)) die(err.msg);
    cz_checkpoint c;
    if (cz_ckpt_load(argv[1], &c, &err)) die(err.msg);
    cz_data *ds;
    if (cz_data_open(&ds, argv[2], &err)) die(err.msg);
    const cz_model *m = &c.model;
    size_t N = cz_data_get_info(ds)->n, n = m->n_params;
    if (cz_data_get_info(ds)->d != m->spec.d) die("the data's feature count is not the checkpoint's");
    /* the fraction a run with every default would use */
    cz_config cfg;
    cz_config_defaults(&cfg);
    cfg.tau = 1;
    cfg.dreg = 0;
    cz_stream_plan plan;
    if (cz_stream_plan_make(&cfg, m, N, &plan, &err)) die(err.msg);
    cz_tau_set ts;
    if (cz_tau_set_init(&ts, m->n_hidden, M, 1, &err) || cz_tau_set_sampler_init(&ts, m, plan.tau_sampled, plan.tau_fraction, &err))
        die(err.msg);
    cz_optim_spec os = {.kind = CZ_OPT_ADAMW, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    cz_stream_spec none = {.mode = CZ_STREAM_NONE};
    lane L[2];
    for (int k = 0; k < 2; k++) {
        memset(&L[k], 0, sizeof L[k]);
        if (!(L[k].ws = cz_workspace_new_stream(m, M, &none, &err))) die(err.msg);
        if (cz_feed_init(&L[k].io, ds, M, c.mean, c.std, &err)) die(err.msg);
        L[k].io.clip = (float)c.clip_z;
        L[k].params = malloc(n * sizeof(float));
        L[k].grad = malloc(n * sizeof(float));
        L[k].g = malloc(n * sizeof(float));
        L[k].state = calloc(2 * n, sizeof(float));
        if (!L[k].params || !L[k].grad || !L[k].g || !L[k].state) die("out of memory");
        memcpy(L[k].params, c.params, n * sizeof(float));
    }
    size_t r0 = 0;
    long epoch = 0;
    for (long t = 1; t <= S + 2; t++) {
        if (t == 3) { /* after two warm-up steps */
            for (int k = 0; k < 2; k++) L[k].t_step = L[k].t_norms = L[k].t_sampled = 0;
            cz_tau_set_reset(&ts);
        }
        uint64_t key = cz_hash64((uint64_t)cfg.seed, 0x64726f70ULL + (uint64_t)epoch);
        for (int j = 0; j < 2; j++) { /* alternate which goes first */
            int k = (int)((t + j) & 1);
            step(&L[k], &c, &os, N, r0, B, M, key, t, k ? &ts : NULL);
        }
        r0 += B;
        if (r0 >= N) r0 = 0, epoch++;
    }
    size_t sampled = ts.h[CZ_TAU_JACOBIAN].count, normed = ts.h[CZ_TAU_INPUT].count;
    double a = 1e3 * L[0].t_step / (double)S, b = 1e3 * L[1].t_step / (double)S;
    printf("bench_tau: %s, %zu rows of d = %zu, batch %zu (micro-batch %zu), %ld steps, kernels %s\n", argv[1], N,
           m->spec.d, B, M, S, cz_engine_blas_arch());
    printf("  Jacobian subsample: the default fraction %.4g (%s); %zu of %zu samples measured\n", plan.tau_fraction,
           plan.tau_why, sampled, normed);
    printf("  step --no-tau      %8.3f ms (mean)\n", a);
    printf("  step with tau      %8.3f ms (mean)   ratio %.3f\n", b, b / a);
    printf("    per-sample norms %8.3f ms (%.1f %% of the --no-tau step)\n", 1e3 * L[1].t_norms / (double)S,
           100 * L[1].t_norms / L[0].t_step);
    printf("    Jacobian norms   %8.3f ms (%.1f %%)\n", 1e3 * L[1].t_sampled / (double)S,
           100 * L[1].t_sampled / L[0].t_step);
    for (int k = 0; k < 2; k++) {
        cz_workspace_free(L[k].ws);
        cz_feed_free(&L[k].io);
        free(L[k].params);
        free(L[k].grad);
        free(L[k].g);
        free(L[k].state);
    }
    cz_tau_set_free(&ts);
    cz_data_close(ds);
    cz_ckpt_free(&c);
    return 0;
}
