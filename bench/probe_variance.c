/* How noisy is probe mode? For a trained checkpoint and real rows, the DREG penalty of a
 * micro-batch and its gradient from K random directions per sample, against the exact
 * stream, over R independent draws (docs/BENCHMARKS.md, "Probe mode's variance").
 *
 *   probe_variance CKPT DATA.h5 [--batch B] [--draws R] [--probes K1,K2,...]
 *
 * Per K it prints: the penalty estimate's mean / exact (unbiasedness: 1 within the
 * printed standard error) and its relative standard deviation; the gradient's relative
 * error ||g_K - g|| / ||g|| (mean over draws; the DREG part of the gradient only, lambda
 * = 1 with the task term removed); and the per-sample, per-layer ||S_l||^2 estimate's
 * median relative standard deviation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chainz/checkpoint.h"
#include "chainz/data.h"
#include "chainz/engine.h"
#include "chainz/rng.h"
#include "../src/train/feed.h"

static void die(const char *msg)
{
    fprintf(stderr, "probe_variance: %s\n", msg);
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* the DREG part of the gradient: a step with lambda 1 minus the task-only step */
static void dreg_grad(cz_workspace *ws, const cz_checkpoint *c, cz_feed *io, size_t B, const uint64_t *keys,
                      float *g, float *task, double *pen)
{
    cz_error err;
    cz_step_sums s;
    cz_step_opts o = {.lambda = 1, .train = 0};
    if (cz_engine_step(ws, c->params, io->x, io->yc, io->yv, keys, B, &o, g, &s, &err)) die(err.msg);
    *pen = s.dreg;
    for (size_t k = 0; k < c->model.n_params; k++) g[k] -= task[k];
}

int main(int argc, char **argv)
{
    if (argc < 3) die("usage: probe_variance CKPT DATA.h5 [--batch B] [--draws R] [--probes K1,K2,...]");
    size_t B = 64;
    int R = 200;
    char probes[256] = "1,2,4,8,16,32,64";
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--batch")) B = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--draws")) R = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--probes")) snprintf(probes, sizeof probes, "%s", argv[i + 1]);
        else die("unknown option");
    }
    cz_error err = {0};
    if (cz_engine_init(NULL, &err)) die(err.msg);
    cz_checkpoint c;
    if (cz_ckpt_load(argv[1], &c, &err)) die(err.msg);
    cz_data *ds;
    if (cz_data_open(&ds, argv[2], &err)) die(err.msg);
    cz_feed io;
    if (cz_feed_init(&io, ds, B, c.mean, c.std, &err)) die(err.msg);
    io.clip = (float)c.clip_z;
    size_t N = cz_data_get_info(ds)->n, n = c.model.n_params, H = (size_t)c.model.n_hidden;
    if (N < B) B = N;
    for (size_t b = 0; b < B; b++) io.rows[b] = b * (N / B); /* spread over the file */
    if (cz_feed_load(&io, B, &err)) die(err.msg);

    cz_stream_spec ex = {.mode = CZ_STREAM_EXACT};
    cz_workspace *wx = cz_workspace_new_stream(&c.model, B, &ex, &err);
    if (!wx) die(err.msg);
    float *task = malloc(n * sizeof(float)), *gx = malloc(n * sizeof(float)), *gp = malloc(n * sizeof(float));
    double *sqx = malloc(H * B * sizeof(double)), *s1 = calloc(H * B, sizeof(double)),
           *s2 = calloc(H * B, sizeof(double)), *rsd = malloc(H * B * sizeof(double));
    uint64_t *keys = malloc(B * sizeof(uint64_t));
    cz_step_sums s;
    cz_step_opts o0 = {.lambda = 0, .train = 0};
    if (cz_engine_step(wx, c.params, io.x, io.yc, io.yv, NULL, B, &o0, task, &s, &err)) die(err.msg);
    double pen_x;
    dreg_grad(wx, &c, &io, B, NULL, gx, task, &pen_x);
    cz_step_opts fwd = {.stream = 1};
    if (cz_engine_step(wx, c.params, io.x, io.yc, io.yv, NULL, B, &fwd, NULL, &s, &err)) die(err.msg);
    for (size_t l = 0; l < H; l++) memcpy(sqx + l * B, cz_engine_jacobian_sqnorm(wx, (int)l + 1), B * sizeof(double));
    double gxn = 0;
    for (size_t k = 0; k < n; k++) gxn += (double)gx[k] * gx[k];
    gxn = sqrt(gxn);
    printf("probe_variance: %s on %zu rows of %s, d = %zu, %zu parameters, %d draws per K\n", argv[1], B, argv[2],
           c.model.spec.d, n, R);
    printf("exact penalty (sum over the batch and layers of ||S_l||_F^2): %.6g\n", pen_x);
    { /* the scale of that error: the exact DREG gradient of another batch of B rows */
        float *g2 = malloc(n * sizeof(float)), *t2 = malloc(n * sizeof(float));
        cz_feed io2;
        if (cz_feed_init(&io2, ds, B, c.mean, c.std, &err)) die(err.msg);
        io2.clip = io.clip;
        for (size_t b = 0; b < B; b++) io2.rows[b] = b * (N / B) + (N / B) / 2;
        if (cz_feed_load(&io2, B, &err)) die(err.msg);
        if (cz_engine_step(wx, c.params, io2.x, io2.yc, io2.yv, NULL, B, &o0, t2, &s, &err)) die(err.msg);
        double p2, e = 0;
        dreg_grad(wx, &c, &io2, B, NULL, g2, t2, &p2);
        for (size_t k = 0; k < n; k++) e += ((double)g2[k] - gx[k]) * ((double)g2[k] - gx[k]);
        printf("for scale: the exact DREG gradient of another batch of %zu rows differs by %.2f%% (penalty %.6g)\n", B,
               100 * sqrt(e) / gxn, p2);
        cz_feed_free(&io2);
        free(g2);
        free(t2);
    }
    printf("%6s %18s %14s %18s %22s\n", "K", "mean/exact", "penalty rsd", "gradient rel err", "per-sample rsd (median)");
    cz_rng rng;
    cz_rng_seed(&rng, 12345);
    for (char *tok = strtok(probes, ","); tok; tok = strtok(NULL, ",")) {
        cz_stream_spec ps = {.mode = CZ_STREAM_PROBE, .probes = atoi(tok)};
        cz_workspace *wp = cz_workspace_new_stream(&c.model, B, &ps, &err);
        if (!wp) die(err.msg);
        double m1 = 0, m2 = 0, gerr = 0;
        memset(s1, 0, H * B * sizeof(double));
        memset(s2, 0, H * B * sizeof(double));
        for (int r = 0; r < R; r++) {
            for (size_t b = 0; b < B; b++) keys[b] = cz_rng_u64(&rng);
            double pen;
            if (cz_engine_step(wp, c.params, io.x, io.yc, io.yv, keys, B, &fwd, NULL, &s, &err)) die(err.msg);
            for (size_t l = 0; l < H; l++) {
                const double *q = cz_engine_jacobian_sqnorm(wp, (int)l + 1);
                for (size_t b = 0; b < B; b++) {
                    s1[l * B + b] += q[b];
                    s2[l * B + b] += q[b] * q[b];
                }
            }
            dreg_grad(wp, &c, &io, B, keys, gp, task, &pen);
            m1 += pen;
            m2 += pen * pen;
            double e = 0;
            for (size_t k = 0; k < n; k++) e += ((double)gp[k] - gx[k]) * ((double)gp[k] - gx[k]);
            gerr += sqrt(e) / gxn;
        }
        double mean = m1 / R, sd = sqrt(fmax(m2 / R - mean * mean, 0));
        size_t m = 0;
        for (size_t i = 0; i < H * B; i++) {
            double mu = s1[i] / R, v = fmax(s2[i] / R - mu * mu, 0);
            if (sqx[i] > 0) rsd[m++] = sqrt(v) / sqx[i];
        }
        qsort(rsd, m, sizeof *rsd, cmp_double);
        printf("%6d %10.4f +- %.4f %13.2f%% %17.2f%% %21.1f%%\n", ps.probes, mean / pen_x, sd / sqrt(R) / pen_x,
               100 * sd / pen_x, 100 * gerr / R, m ? 100 * rsd[m / 2] : 0);
        cz_workspace_free(wp);
    }
    return 0;
}
