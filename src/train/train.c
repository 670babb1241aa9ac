/* chainz train / chainz eval: prolog (data, model, run directory), the step loop,
 * epilog (validation, history, checkpoint). Every rank runs the same control flow; every
 * failure goes through cz_dist_agree so that all ranks stop together. */
#include "chainz/train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chainz/atomic.h"
#include "chainz/budget.h"
#include "chainz/checkpoint.h"
#include "chainz/data.h"
#include "chainz/engine.h"
#include "chainz/fixed.h"
#include "chainz/metrics.h"
#include "chainz/runstate.h"

volatile sig_atomic_t cz_stop_requested = 0;

#ifndef CHAINZ_VERSION
#define CHAINZ_VERSION "dev"
#endif

enum { SC_LOSS, SC_DREG, SC_CORRECT, SC_ABSERR, SC_N }; /* scalar slots after the gradient */

/* Samples of one evaluation or training pass, as rows of the file, and the buffers one
 * chunk needs. */
typedef struct {
    cz_data *ds;
    const float *mean, *std; /* NULL: raw features */
    size_t d;
    float *x;                /* [M x d] */
    int32_t *yc;
    float *yv;
    uint64_t *keys, *rows;
} chunk_io;

static int chunk_io_init(chunk_io *io, cz_data *ds, size_t M, const float *mean, const float *std,
                         cz_error *err)
{
    memset(io, 0, sizeof *io);
    io->ds = ds;
    io->d = cz_data_get_info(ds)->d;
    io->mean = mean;
    io->std = std;
    io->x = malloc(M * io->d * sizeof(float));
    io->yc = malloc(M * sizeof(int32_t));
    io->yv = malloc(M * sizeof(float));
    io->keys = malloc(M * sizeof(uint64_t));
    io->rows = malloc(M * sizeof(uint64_t));
    if (!io->x || !io->yc || !io->yv || !io->keys || !io->rows)
        return cz_error_set(err, CZ_ENOMEM, "out of memory for a micro-batch of %zu", M);
    return 0;
}

static void chunk_io_free(chunk_io *io)
{
    free(io->x);
    free(io->yc);
    free(io->yv);
    free(io->keys);
    free(io->rows);
}

/* Reads rows[0..n) into io->x (standardized) and their labels. */
static int chunk_load(chunk_io *io, size_t n, cz_error *err)
{
    int rc = cz_data_read_rows(io->ds, io->rows, n, io->x, err);
    if (rc) return rc;
    if (io->mean)
        for (size_t b = 0; b < n; b++)
            for (size_t j = 0; j < io->d; j++)
                io->x[b * io->d + j] = (io->x[b * io->d + j] - io->mean[j]) / io->std[j];
    const int32_t *yc = cz_data_labels_class(io->ds);
    const float *yv = cz_data_labels_value(io->ds);
    for (size_t b = 0; b < n; b++) {
        if (yc) io->yc[b] = yc[io->rows[b]];
        if (yv) io->yv[b] = yv[io->rows[b]];
    }
    return 0;
}

/* The share of chunks [*c0, *c1) of C that rank r of P computes: contiguous, balanced. */
static void my_chunks(size_t C, int r, int P, size_t *c0, size_t *c1)
{
    *c0 = C * (size_t)r / (size_t)P;
    *c1 = C * (size_t)(r + 1) / (size_t)P;
}

/* ---- the node: cores, threads and memory (before anything large is allocated) ---- */

/* Every rank must run the same BLIS kernel set: on a mixed partition (say Zen 3 and
 * Skylake-SP nodes) each picks its own, the chunks computed on each differ in the last
 * bits, and the run then depends on which rank got which chunk. Warns (rank 0) naming
 * two sets that differ and the fix; the run goes on, replicas still agree. Collective. */
static int kernels_check(const cz_dist *d, cz_error *err)
{
    char mine[32] = {0}, first[32] = {0}, other[32] = {0};
    snprintf(mine, sizeof mine, "%s", cz_engine_blas_arch());
    memcpy(first, mine, sizeof first);
    int rc = cz_dist_bcast(d, first, sizeof first, 0, err);
    int differ = !rc && strcmp(mine, first) ? d->rank : 0;
    if (rc || (rc = cz_dist_max_int(d, &differ, 1, err))) return rc;
    if (!differ) return 0;
    memcpy(other, mine, sizeof other);
    if ((rc = cz_dist_bcast(d, other, sizeof other, differ, err))) return rc;
    if (d->rank == 0)
        fprintf(stderr, "chainz: warning: ranks run different BLIS kernel sets (rank 0: %s, rank %d: %s): "
                "results will depend on which rank computes which chunk; give every rank the same set "
                "with --kernels NAME\n", first, differ, other);
    return 0;
}

/* Refuses more than 4 x the node's cores in BLIS threads per rank (1000 threads on 2
 * ranks hung and ignored SIGTERM), warns (rank 0) when ranks x threads exceed the cores of
 * a node or a rank's CPU set, and sets the per-rank memory limit. Collective. */
static int node_check(const cz_dist *d, int threads, size_t max_memory, size_t *mem_limit, char *source,
                      size_t len, cz_error *err)
{
    int local = 1, rc = cz_dist_local_size(d, &local, err);
    int cores = cz_node_cores(), mine = cz_affinity_cores();
    if (!rc && threads > 4 * cores)
        rc = cz_error_set(err, CZ_EINVAL, "--threads %d: at most 4 x the %d cores of this node (%d); chainz "
                          "refuses more (they only compete for the cores)", threads, cores, 4 * cores);
    rc = cz_dist_agree(d, rc, err);
    if (rc) return rc;
    int over[2] = {local * threads > cores, threads > mine};
    if ((rc = cz_dist_max_int(d, over, 2, err))) return rc;
    if (d->rank == 0 && over[0])
        fprintf(stderr, "chainz: warning: %d rank%s x %d threads on a node exceed its %d cores: the BLIS "
                "threads compete for the cores and a step can be many times slower (measured 25x with 3 threads "
                "on 2 cores); give each rank --threads <= cores / ranks per node\n", local, local > 1 ? "s" : "",
                threads, cores);
    else if (d->rank == 0 && over[1])
        fprintf(stderr, "chainz: warning: --threads %d exceeds the %d core%s this rank may run on (its CPU "
                "affinity, e.g. mpirun --bind-to core): the threads share them\n", threads, mine, mine > 1 ? "s" : "");
    *mem_limit = cz_mem_limit(max_memory, local, source, len);
    return kernels_check(d, err);
}

/* a JSON number, or null for nan and inf (JSON has neither) */
static const char *json_num(char *buf, size_t len, double v)
{
    if (isfinite(v)) snprintf(buf, len, "%.9g", v);
    else snprintf(buf, len, "null");
    return buf;
}

/* "layer 2 weight [3, 1]", "output bias [0]": which parameter flat index i is */
static void param_name(const cz_model *m, size_t i, char *buf, size_t len)
{
    for (int l = 0; l <= m->n_hidden; l++) {
        const cz_layer *L = &m->layer[l];
        char who[32];
        if (l < m->n_hidden) snprintf(who, sizeof who, "layer %d", l + 1);
        else snprintf(who, sizeof who, "output");
        if (i >= L->w && i < L->w + L->n_out * L->n_in) {
            snprintf(buf, len, "%s weight [%zu, %zu]", who, (i - L->w) / L->n_in, (i - L->w) % L->n_in);
            return;
        }
        if (i >= L->b && i < L->b + L->n_out) {
            snprintf(buf, len, "%s bias [%zu]", who, i - L->b);
            return;
        }
        if (L->poly != CZ_NONE && i >= L->poly && i < L->poly + 4 * L->n_out) {
            snprintf(buf, len, "%s poly [%zu, a%zu]", who, (i - L->poly) / 4, (i - L->poly) % 4);
            return;
        }
    }
    snprintf(buf, len, "parameter %zu", i);
}

/* The message for a gradient the exact reduction cannot hold: the first such value of g. */
static int gradient_overflow(const cz_model *m, const float *g, size_t n, long step, int summed, cz_error *err)
{
    size_t i = 0;
    while (i < n && isfinite(g[i]) && fabs((double)g[i]) < 0x1p46) i++;
    char name[96];
    param_name(m, i < n ? i : 0, name, sizeof name);
    return cz_error_set(err, CZ_ERUNTIME, "step %ld: %sgradient of %s = %g is %s (training diverged: lower --lr "
                        "or --dreg, or rescale the targets)", step + 1, summed ? "the summed " : "a chunk's ", name,
                        i < n ? (double)g[i] : NAN,
                        i < n && isfinite(g[i]) ? "beyond the exact reduction's range (|g| < 7.0e13)" : "not finite");
}

/* Sums per-chunk scalars [C x SC_N] (each chunk's slots filled by the one rank that computed
 * it, zero elsewhere) over ranks, then in chunk order: the same doubles, added in the same
 * order, whatever the world size; and none of them passes through the gradient's fixed
 * point, whose range (2^46) a loss sum of large regression targets exceeds. */
static int sum_chunk_scalars(const cz_dist *d, double *per_chunk, size_t C, double out[SC_N], cz_error *err)
{
    int rc = cz_dist_sum_double(d, per_chunk, C * SC_N, err);
    if (rc) return rc;
    for (int k = 0; k < SC_N; k++) out[k] = 0;
    for (size_t c = 0; c < C; c++)
        for (int k = 0; k < SC_N; k++) out[k] += per_chunk[c * SC_N + k];
    return 0;
}

/* Reads every row of a validation set once (each rank its share of the chunks), so that a
 * non-finite value stops the run before the first step rather than after epoch 1. */
static int check_rows(const cz_dist *d, cz_data *ds, float *x, const uint64_t *rows, size_t n, size_t M,
                      cz_error *err)
{
    size_t C = (n + M - 1) / M, c0, c1;
    my_chunks(C, d->rank, d->size, &c0, &c1);
    int rc = 0;
    for (size_t c = c0; c < c1 && !rc; c++) {
        size_t b0 = c * M, nb = n - b0 < M ? n - b0 : M;
        rc = cz_data_read_rows(ds, rows + b0, nb, x, err);
    }
    return cz_dist_agree(d, rc, err);
}

/* ---- tau statistics: per-epoch histograms of gradient norms (docs/DESIGN.md section 3) ----
 * Each rank fills its own histograms from the chunks it computes; merging is an exact
 * sum (counts and fixed-point sums; max by MAX), so 1, 2 or 3 ranks give the same bits. */
enum { FAM_INPUT, FAM_PARAM, FAM_SAMPLE, FAM_JACOBIAN };

typedef struct {
    int nf;
    char (*names)[64];
    cz_hist *h;                  /* [nf], this rank's share (rank 0: the merged partial too) */
    double *in_norm, *sg_norm;   /* [M] scratch */
    uint64_t *pack;              /* [nf * (CZ_HIST_BINS + 1)] */
    double *maxes;               /* [nf] */
    cz_fixed_acc sums;           /* [nf] */
} tau_set;

static int tau_init(tau_set *ts, int n_hidden, size_t M, int with_param, cz_error *err)
{
    memset(ts, 0, sizeof *ts);
    ts->nf = FAM_JACOBIAN + n_hidden;
    ts->names = calloc((size_t)ts->nf, sizeof *ts->names);
    ts->h = calloc((size_t)ts->nf, sizeof *ts->h);
    ts->in_norm = malloc(M * sizeof(double));
    ts->sg_norm = malloc(M * sizeof(double));
    ts->pack = malloc((size_t)ts->nf * (CZ_HIST_BINS + 1) * sizeof(uint64_t));
    ts->maxes = malloc((size_t)ts->nf * sizeof(double));
    if (!ts->names || !ts->h || !ts->in_norm || !ts->sg_norm || !ts->pack || !ts->maxes ||
        cz_fixed_init(&ts->sums, (size_t)ts->nf))
        return cz_error_set(err, CZ_ENOMEM, "out of memory for the tau histograms");
    snprintf(ts->names[FAM_INPUT], 64, "input_grad");
    snprintf(ts->names[FAM_PARAM], 64, with_param ? "param_grad" : "unused");
    snprintf(ts->names[FAM_SAMPLE], 64, "sample_grad");
    for (int l = 0; l < n_hidden; l++) snprintf(ts->names[FAM_JACOBIAN + l], 64, "jacobian/layer_%d", l + 1);
    return 0;
}

static void tau_free(tau_set *ts)
{
    free(ts->names);
    free(ts->h);
    free(ts->in_norm);
    free(ts->sg_norm);
    free(ts->pack);
    free(ts->maxes);
    cz_fixed_free(&ts->sums);
}

static void tau_reset(tau_set *ts)
{
    for (int f = 0; f < ts->nf; f++) cz_hist_reset(&ts->h[f]);
}

/* the per-sample families of the chunk the workspace just computed */
static int tau_collect(tau_set *ts, cz_workspace *ws, const float *params, int n_hidden, size_t nb,
                       cz_error *err)
{
    int rc = cz_engine_sample_norms(ws, params, ts->in_norm, ts->sg_norm, err);
    if (rc) return rc;
    for (size_t b = 0; b < nb; b++) {
        cz_hist_add(&ts->h[FAM_INPUT], ts->in_norm[b]);
        cz_hist_add(&ts->h[FAM_SAMPLE], ts->sg_norm[b]);
    }
    for (int l = 1; l <= n_hidden; l++) {
        const double *sq = cz_engine_jacobian_sqnorm(ws, l);
        for (size_t b = 0; sq && b < nb; b++) cz_hist_add(&ts->h[FAM_JACOBIAN + l - 1], sqrt(sq[b]));
    }
    return 0;
}

/* Sums every rank's histograms into rank 0's (collective); the others restart from zero. */
static int tau_merge(tau_set *ts, const cz_dist *d, cz_error *err)
{
    size_t stride = CZ_HIST_BINS + 1;
    for (int f = 0; f < ts->nf; f++) {
        memcpy(ts->pack + (size_t)f * stride, ts->h[f].counts, CZ_HIST_BINS * sizeof(uint64_t));
        ts->pack[(size_t)f * stride + CZ_HIST_BINS] = ts->h[f].count;
        ts->maxes[f] = ts->h[f].max;
        ts->sums.v[f] = ts->h[f].sum;
    }
    ts->sums.bad = 0;
    int rc = cz_dist_sum_u64(d, ts->pack, (size_t)ts->nf * stride, err);
    if (!rc) rc = cz_dist_max_double(d, ts->maxes, (size_t)ts->nf, err);
    if (!rc) rc = cz_dist_sum_fixed(d, &ts->sums, err);
    if (rc) return rc;
    for (int f = 0; f < ts->nf; f++) {
        if (d->rank != 0) {
            cz_hist_reset(&ts->h[f]);
            continue;
        }
        memcpy(ts->h[f].counts, ts->pack + (size_t)f * stride, CZ_HIST_BINS * sizeof(uint64_t));
        ts->h[f].count = ts->pack[(size_t)f * stride + CZ_HIST_BINS];
        ts->h[f].max = ts->maxes[f];
        ts->h[f].sum = ts->sums.v[f];
    }
    return 0;
}

typedef struct {
    double samples, loss, acc, mae;
    uint64_t *confusion; /* [K x K] (true x predicted) or NULL */
} eval_result;

/* Forward-only pass over rows[0..n) on all ranks; sums are exact whatever the world size. */
/* tau (may be NULL): also collect the per-sample families, which needs a backward pass
 * (lambda 0, stream on) into the scratch gradient buffer grad. */
static int evaluate(const cz_dist *d, cz_workspace *ws, const cz_model *m, const float *params,
                    chunk_io *io, const uint64_t *rows, size_t n, size_t M, eval_result *res,
                    tau_set *tau, float *grad, cz_error *err)
{
    size_t K = m->spec.head == CZ_HEAD_REGRESS ? 0 : (size_t)m->spec.classes;
    size_t C = (n + M - 1) / M, c0, c1;
    int32_t *pred = malloc(M * sizeof(int32_t));
    double *per_chunk = calloc(C * SC_N + 1, sizeof(double)), sc[SC_N] = {0};
    if (res->confusion) memset(res->confusion, 0, K * K * sizeof(uint64_t));
    /* a local failure still reaches the agreement below: no rank may skip a collective */
    int rc = pred && per_chunk ? 0 : cz_error_set(err, CZ_ENOMEM, "out of memory");
    my_chunks(C, d->rank, d->size, &c0, &c1);
    cz_step_opts opts = {.stream = tau != NULL};
    for (size_t c = c0; c < c1 && !rc; c++) {
        size_t b0 = c * M, nb = n - b0 < M ? n - b0 : M;
        memcpy(io->rows, rows + b0, nb * sizeof(uint64_t));
        cz_step_sums sums;
        rc = chunk_load(io, nb, err);
        if (!rc) rc = cz_engine_step(ws, params, io->x, io->yc, io->yv, NULL, nb, &opts,
                                     tau ? grad : NULL, &sums, err);
        if (!rc && tau) rc = tau_collect(tau, ws, params, m->n_hidden, nb, err);
        if (rc) break;
        cz_loss_sums ls = {0};
        cz_loss_eval(NULL, NULL, pred, &ls, m, cz_engine_outputs(ws), io->yc, io->yv, nb);
        double v[SC_N] = {ls.loss, 0, ls.correct, ls.abs_err};
        memcpy(per_chunk + c * SC_N, v, sizeof v);
        if (res->confusion)
            for (size_t b = 0; b < nb; b++) {
                int32_t p = pred[b] < 0 ? 0 : pred[b] >= (int32_t)K ? (int32_t)K - 1 : pred[b];
                res->confusion[(size_t)io->yc[b] * K + (size_t)p]++;
            }
    }
    rc = cz_dist_agree(d, rc, err);
    if (!rc) rc = sum_chunk_scalars(d, per_chunk, C, sc, err);
    if (!rc && tau) rc = tau_merge(tau, d, err);
    if (!rc && res->confusion) rc = cz_dist_sum_u64(d, res->confusion, K * K, err);
    if (!rc && !isfinite(sc[SC_LOSS])) rc = cz_error_set(err, CZ_ERUNTIME, "evaluation produced a non-finite loss");
    if (!rc) {
        res->samples = (double)n;
        res->loss = sc[SC_LOSS] / (double)n;
        res->acc = sc[SC_CORRECT] / (double)n;
        res->mae = sc[SC_ABSERR] / (double)n;
    }
    free(pred);
    free(per_chunk);
    return rc;
}

/* ---- prolog helpers ---- */

/* Mean and standard deviation per feature over the training rows, computed by rank 0 in
 * one fixed order and broadcast: identical whatever the world size. */
static int feature_stats(const cz_dist *d, cz_data *ds, const uint64_t *rows, size_t n,
                         float *mean, float *std, cz_error *err)
{
    size_t dd = cz_data_get_info(ds)->d;
    int rc = 0;
    if (d->rank == 0) {
        enum { BLK = 256 };
        double *s1 = calloc(dd, sizeof(double)), *s2 = calloc(dd, sizeof(double));
        float *x = malloc(BLK * dd * sizeof(float));
        if (!s1 || !s2 || !x) rc = cz_error_set(err, CZ_ENOMEM, "out of memory for feature statistics");
        /* two passes (mean, then squared deviations): no cancellation for offset features */
        for (int pass = 0; pass < 2 && !rc; pass++) {
            for (size_t b0 = 0; b0 < n && !rc; b0 += BLK) {
                size_t nb = n - b0 < BLK ? n - b0 : BLK;
                rc = cz_data_read_rows(ds, rows + b0, nb, x, err);
                for (size_t b = 0; b < nb && !rc; b++)
                    for (size_t j = 0; j < dd; j++) {
                        double v = x[b * dd + j];
                        if (pass == 0) s1[j] += v;
                        else s2[j] += (v - s1[j]) * (v - s1[j]);
                    }
            }
            for (size_t j = 0; pass == 0 && j < dd; j++) s1[j] /= (double)n;
        }
        for (size_t j = 0; j < dd && !rc; j++) {
            double sd = sqrt(s2[j] / (double)n);
            mean[j] = (float)s1[j];
            /* a constant feature (spread at rounding level of its mean) would divide by ~0:
             * leave it centred and unscaled; tiny but real spreads are scaled */
            std[j] = sd > 1e-6 * fabs(s1[j]) && sd > 1e-30 ? (float)sd : 1.0f;
        }
        free(s1);
        free(s2);
        free(x);
    }
    rc = cz_dist_agree(d, rc, err);
    if (!rc) rc = cz_dist_bcast(d, mean, dd * sizeof(float), 0, err);
    if (!rc) rc = cz_dist_bcast(d, std, dd * sizeof(float), 0, err);
    return rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* a JSON string literal of s (quotes, backslashes and control characters escaped) */
static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static void utc_now(char *buf, size_t len)
{
    time_t t = time(NULL);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
}

static void fmt_eta(char *buf, size_t len, double s)
{
    if (!(s >= 0) || s > 1e7) {
        snprintf(buf, len, "--:--");
        return;
    }
    long t = (long)s;
    if (t >= 3600) snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, len, "%02ld:%02ld", t / 60, t % 60);
}

/* ---- the training run ---- */

typedef struct {
    const cz_config *cfg;
    const cz_dist *d;
    cz_data *train, *val;
    uint64_t *train_rows, *val_rows;
    size_t n_train, n_val;
    cz_model m;
    cz_workspace *ws;
    float *params, *grad, *gsum, *opt;
    float *mean, *std;
    cz_fixed_acc acc;
    chunk_io io, vio;
    cz_schedule lr_s, dreg_s;
    size_t steps_per_epoch;
    char ckpt_dir[4200];
    char *config_json;
    int tty;
    uint64_t rows_read;      /* training rows this rank read (the share it computed) */
    tau_set ts;
    cz_metrics *mx;          /* rank 0 */
    cz_run_lock lock;        /* rank 0: RUN_DIR/run.lock for the whole run */
    cz_data_identity data_id;
    double *chunk_sc;        /* [chunks per step x SC_N] scalars of one step, by chunk */
    size_t mem_limit;        /* bytes per rank (0: unknown) */
    char mem_source[160];    /* where the limit comes from */
} trainer;

static void trainer_free(trainer *t)
{
    cz_data_close(t->train);
    cz_data_close(t->val);
    free(t->train_rows);
    free(t->val_rows);
    cz_workspace_free(t->ws);
    free(t->params);
    free(t->grad);
    free(t->gsum);
    free(t->opt);
    free(t->mean);
    free(t->std);
    cz_fixed_free(&t->acc);
    chunk_io_free(&t->io);
    chunk_io_free(&t->vio);
    free(t->config_json);
    free(t->chunk_sc);
    tau_free(&t->ts);
    cz_metrics_close(t->mx);
    cz_run_lock_release(&t->lock);
}

static int open_data(trainer *t, int head_given, cz_error *err)
{
    const cz_config *cfg = t->cfg;
    int rc = cz_data_open(&t->train, cfg->data, err);
    if (!rc && cfg->val[0]) rc = cz_data_open(&t->val, cfg->val, err);
    if (rc) return rc;
    const cz_data_info *ti = cz_data_get_info(t->train);
    if (t->val) {
        const cz_data_info *vi = cz_data_get_info(t->val);
        if (vi->d != ti->d)
            return cz_error_set(err, CZ_EINVAL, "%s has d = %zu features but %s has d = %zu", cfg->val,
                                vi->d, cfg->data, ti->d);
        if (vi->task != ti->task || vi->classes != ti->classes)
            return cz_error_set(err, CZ_EINVAL, "%s is %s with %d classes but %s is %s with %d classes",
                                cfg->val, cz_head_name(vi->task), vi->classes, cfg->data,
                                cz_head_name(ti->task), ti->classes);
    }
    cz_head head = head_given ? cfg->model.head : ti->task;
    if ((head == CZ_HEAD_REGRESS) != (ti->task == CZ_HEAD_REGRESS))
        return cz_error_set(err, CZ_EINVAL, "--head %s does not fit %s, whose task is %s",
                            cz_head_name(head), cfg->data, cz_head_name(ti->task));
    /* rows: a held-out fraction is drawn from a permutation seeded by --seed */
    if (t->val && cfg->holdout > 0)
        return cz_error_set(err, CZ_EINVAL, "--val and --holdout both give a validation set: use one");
    size_t N = ti->n, n_hold = (size_t)floor(cfg->holdout * (double)N);
    if (cfg->holdout > 0 && (n_hold == 0 || n_hold >= N))
        return cz_error_set(err, CZ_EINVAL, "--holdout %g of %zu rows leaves no training or validation rows",
                            cfg->holdout, N);
    uint64_t *perm = malloc(N * sizeof(uint64_t));
    if (!perm) return cz_error_set(err, CZ_ENOMEM, "out of memory for %zu row indices", N);
    if (n_hold) {
        cz_rng r;
        cz_rng_seed(&r, cz_hash64(cfg->seed, 0x686f6c646f7574ULL)); /* "holdout" */
        cz_rng_permutation(&r, perm, N);
        qsort(perm, n_hold, sizeof *perm, cmp_u64);
        qsort(perm + n_hold, N - n_hold, sizeof *perm, cmp_u64);
    } else {
        for (size_t i = 0; i < N; i++) perm[i] = i;
    }
    t->n_train = N - n_hold;
    t->train_rows = malloc((t->n_train ? t->n_train : 1) * sizeof(uint64_t));
    if (!t->train_rows) {
        free(perm);
        return cz_error_set(err, CZ_ENOMEM, "out of memory");
    }
    memcpy(t->train_rows, perm + n_hold, t->n_train * sizeof(uint64_t));
    if (t->val) {
        t->n_val = cz_data_get_info(t->val)->n;
        t->val_rows = malloc(t->n_val * sizeof(uint64_t));
        for (size_t i = 0; t->val_rows && i < t->n_val; i++) t->val_rows[i] = i;
    } else if (n_hold) {
        t->n_val = n_hold;
        t->val_rows = malloc(n_hold * sizeof(uint64_t));
        if (t->val_rows) memcpy(t->val_rows, perm, n_hold * sizeof(uint64_t));
    }
    free(perm);
    if (t->n_val && !t->val_rows) return cz_error_set(err, CZ_ENOMEM, "out of memory");
    cz_model_spec spec = cfg->model;
    spec.d = ti->d;
    spec.head = head;
    spec.classes = ti->classes;
    return cz_model_init(&t->m, &spec, err);
}

static int setup(trainer *t, int head_given, cz_error *err)
{
    const cz_config *cfg = t->cfg;
    const cz_dist *d = t->d;
    int rc = open_data(t, head_given, err);
    /* the memory the run needs, estimated from untrusted sizes before any allocation */
    cz_optim_spec os = cfg->optim;
    if (!rc) {
        cz_mem_request mr = {.m = &t->m, .micro_batch = (size_t)cfg->micro_batch, .batch = (size_t)cfg->batch,
                             .rows = cz_data_get_info(t->train)->n, .opt_moments = cz_optim_state_len(&os),
                             .exact = cfg->reduce == CZ_REDUCE_EXACT, .tau = cfg->tau};
        cz_mem_estimate me;
        cz_mem_estimate_run(&mr, &me);
        rc = cz_mem_check(&me, t->mem_limit, t->mem_source, err);
    }
    rc = cz_dist_agree(d, rc, err);
    if (rc) return rc;
    size_t n = t->m.n_params, dd = t->m.spec.d, M = (size_t)cfg->micro_batch;
    size_t chunks = ((size_t)cfg->batch + M - 1) / M;
    t->params = malloc(n * sizeof(float));
    t->grad = malloc(n * sizeof(float));
    t->gsum = malloc(n * sizeof(float));
    t->opt = calloc(cz_optim_state_len(&os) * n, sizeof(float));
    t->mean = malloc(dd * sizeof(float));
    t->std = malloc(dd * sizeof(float));
    if (!t->params || !t->grad || !t->gsum || !t->opt || !t->mean || !t->std ||
        cz_fixed_init(&t->acc, n + SC_N))
        rc = cz_error_set(err, CZ_ENOMEM, "out of memory for %zu parameters", n);
    if (!rc && !(t->ws = cz_workspace_new(&t->m, M, err))) rc = err->code;
    if (!rc) rc = chunk_io_init(&t->io, t->train, M, cfg->standardize ? t->mean : NULL, t->std, err);
    if (!rc) rc = chunk_io_init(&t->vio, t->val ? t->val : t->train, M,
                                cfg->standardize ? t->mean : NULL, t->std, err);
    if (!rc && cfg->tau) rc = tau_init(&t->ts, t->m.n_hidden, M, 1, err);
    if (!rc && !(t->chunk_sc = calloc(chunks * SC_N, sizeof(double))))
        rc = cz_error_set(err, CZ_ENOMEM, "out of memory for the per-chunk sums");
    rc = cz_dist_agree(d, rc, err);
    if (rc) return rc;
    /* a bad value in the validation set stops the run now, not after the first epoch */
    if (t->n_val) rc = check_rows(d, t->val ? t->val : t->train, t->vio.x, t->val_rows, t->n_val, M, err);
    if (rc) return rc;
    if (cfg->standardize) rc = feature_stats(d, t->train, t->train_rows, t->n_train, t->mean, t->std, err);
    if (rc) return rc;
    cz_rng r;
    cz_rng_seed(&r, cfg->seed);
    cz_model_params_init(&t->m, t->params, &r);

    /* schedules, in global optimizer steps */
    t->steps_per_epoch = (t->n_train + (size_t)cfg->batch - 1) / (size_t)cfg->batch;
    double spe = (double)t->steps_per_epoch, total = spe * cfg->epochs;
    t->lr_s = (cz_schedule){.shape = cfg->lr_shape, .start = cfg->lr, .end = cfg->lr_min,
                            .from = (double)cfg->warmup_steps, .to = total,
                            .warmup = (double)cfg->warmup_steps, .ramp = 1};
    t->dreg_s = (cz_schedule){.shape = CZ_SHAPE_CONSTANT, .start = cfg->dreg, .end = cfg->dreg, .to = total};
    if (cfg->dreg_schedule[0]) rc = cz_schedule_parse(cfg->dreg_schedule, &t->dreg_s, err);
    if (!rc && cfg->dreg_range[0]) rc = cz_range_parse(cfg->dreg_range, spe, &t->dreg_s.from, &t->dreg_s.to, err);
    if (!rc && cfg->dreg_warmup[0]) {
        double dummy;
        char spec[128];
        snprintf(spec, sizeof spec, "0:%s", cfg->dreg_warmup);
        rc = cz_range_parse(spec, spe, &dummy, &t->dreg_s.warmup, err);
    }
    if (rc) return cz_dist_agree(d, rc, err);

    /* this run's configuration and the BLIS that computes it (config.json, checkpoints) */
    size_t need = cz_config_json(cfg, NULL, 0) + 1, extra = 256;
    t->config_json = malloc(need + extra);
    if (t->config_json) {
        cz_config_json(cfg, t->config_json, need);
        snprintf(t->config_json + need - 2, extra + 2, ", \"blas_version\": \"%s\", \"blas_kernels\": \"%s\"}",
                 cz_engine_blas_version(), cz_engine_blas_arch());
    }
    snprintf(t->ckpt_dir, sizeof t->ckpt_dir, "%s/checkpoints", cfg->out);
    rc = t->config_json ? cz_run_data_identity(t->train, cfg->data, &t->data_id, err)
                        : cz_error_set(err, CZ_ENOMEM, "out of memory");
    return cz_dist_agree(d, rc, err);
}

/* The run directory, once the checks that may refuse the run have passed: config.json
 * (atomically) and the configuration echo (rank 0). */
static int publish_run(trainer *t, cz_error *err)
{
    const cz_config *cfg = t->cfg;
    const cz_dist *d = t->d;
    int rc = 0;
    if (d->rank == 0) {
        rc = cz_run_mkdir(t->ckpt_dir, err);
        if (!rc) {
            char path[4200];
            size_t need = strlen(t->config_json) + 2;
            char *text = malloc(need);
            snprintf(path, sizeof path, "%s/config.json", cfg->out);
            if (!text) rc = cz_error_set(err, CZ_ENOMEM, "out of memory");
            else {
                snprintf(text, need, "%s\n", t->config_json);
                rc = cz_write_text_atomic(path, text, err);
                free(text);
            }
        }
        if (!rc) {
            const cz_data_info *ti = cz_data_get_info(t->train);
            printf("chainz %s: train %s (%zu rows, d = %zu, %s, %d classes, %s), %d rank%s x %d thread%s\n",
                   CHAINZ_VERSION, cfg->data, t->n_train, ti->d, cz_head_name(t->m.spec.head),
                   ti->classes, cz_data_is_mapped(t->train) ? "shared mapping" : "hyperslab reads",
                   d->size, d->size > 1 ? "s" : "", cfg->threads, cfg->threads > 1 ? "s" : "");
            printf("chainz: BLIS %s, %s kernels (%s)\n", cz_engine_blas_version(),
                   cz_engine_blas_arch(), cz_engine_blas_choice());
            printf("chainz: validation %zu rows (%s)\n", t->n_val,
                   t->val ? cfg->val : t->n_val ? "held out of --data" : "none");
            printf("chainz: model %zu parameters, workspace %.1f MB per rank, %zu steps per epoch\n",
                   t->m.n_params, cz_workspace_bytes(t->ws) / 1e6, t->steps_per_epoch);
            printf("chainz: config %s\n", t->config_json);
            fflush(stdout);
        }
    }
    return cz_dist_agree(d, rc, err);
}

/* One optimizer step on global batch rows[0..nb): chunks of M, exact reduction. */
static int train_step(trainer *t, const uint64_t *rows, size_t nb, long step, long epoch,
                      double lambda, double lr, double sc[SC_N], cz_error *err)
{
    const cz_config *cfg = t->cfg;
    const cz_dist *d = t->d;
    size_t n = t->m.n_params, M = (size_t)cfg->micro_batch;
    size_t C = (nb + M - 1) / M, c0, c1;
    my_chunks(C, d->rank, d->size, &c0, &c1);
    int exact = cfg->reduce == CZ_REDUCE_EXACT;
    if (exact) cz_fixed_zero(&t->acc);
    else memset(t->gsum, 0, n * sizeof(float));
    memset(t->chunk_sc, 0, C * SC_N * sizeof(double));
    cz_step_opts opts = {.lambda = lambda, .train = 1, .stream = cfg->tau};
    uint64_t epoch_key = cz_hash64(cfg->seed, 0x64726f70ULL + (uint64_t)epoch); /* "drop" */
    int rc = 0;
    for (size_t c = c0; c < c1 && !rc; c++) {
        size_t b0 = c * M, mb = nb - b0 < M ? nb - b0 : M;
        memcpy(t->io.rows, rows + b0, mb * sizeof(uint64_t));
        for (size_t b = 0; b < mb; b++) t->io.keys[b] = cz_hash64(epoch_key, t->io.rows[b]);
        cz_step_sums s;
        rc = chunk_load(&t->io, mb, err);
        t->rows_read += mb;
        if (!rc) rc = cz_engine_step(t->ws, t->params, t->io.x, t->io.yc, t->io.yv, t->io.keys, mb,
                                     &opts, t->grad, &s, err);
        if (!rc && cfg->tau) rc = tau_collect(&t->ts, t->ws, t->params, t->m.n_hidden, mb, err);
        if (rc) break;
        double v[SC_N] = {s.task.loss, s.dreg, s.task.correct, s.task.abs_err};
        memcpy(t->chunk_sc + c * SC_N, v, sizeof v);
        if (exact) {
            long bad = t->acc.bad;
            cz_fixed_add_float(&t->acc, 0, t->grad, n);
            if (t->acc.bad != bad) rc = gradient_overflow(&t->m, t->grad, n, step, 0, err);
        } else {
            for (size_t i = 0; i < n; i++) t->gsum[i] += t->grad[i];
        }
    }
    rc = cz_dist_agree(d, rc, err);
    if (rc) return rc;
    double inv = 1.0 / (double)nb;
    if (exact) {
        if ((rc = cz_dist_sum_fixed(d, &t->acc, err))) return rc;
        if (t->acc.bad) /* every rank checked its own chunks above: not reached */
            return cz_error_set(err, CZ_ERUNTIME,
                                "step %ld: %ld gradient values are NaN, infinite or beyond 7e13 "
                                "(training diverged: lower --lr or --dreg)", step + 1, t->acc.bad);
        for (size_t i = 0; i < n; i++) t->grad[i] = (float)(cz_fixed_value(&t->acc, i) * inv);
    } else {
        if ((rc = cz_dist_sum_float(d, t->gsum, n, err))) return rc;
        for (size_t i = 0; i < n; i++) t->grad[i] = (float)(t->gsum[i] * inv);
    }
    if ((rc = sum_chunk_scalars(d, t->chunk_sc, C, sc, err))) return rc;
    /* identical on every rank after the reduction, so every rank stops here together */
    double gsq = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(t->grad[i])) return gradient_overflow(&t->m, t->grad, n, step, 1, err);
        gsq += (double)t->grad[i] * (double)t->grad[i];
    }
    /* one value per step, the same on every rank: rank 0 records it */
    if (cfg->tau && d->rank == 0) cz_hist_add(&t->ts.h[FAM_PARAM], sqrt(gsq));
    cz_optim_step(&cfg->optim, t->params, t->grad, t->opt, n, t->m.n_weights, step + 1, lr);
    return 0;
}

/* Where training stands: written into checkpoints, restored on resume. */
typedef struct {
    long epoch, position, step;    /* epoch in progress, batches done in it, steps done */
    double lambda, lr;
    double sums[5];                /* the epoch's loss, dreg, correct, abs error, samples */
} progress_state;

static void slurm_fields(char *buf, size_t len)
{
    const char *job = getenv("SLURM_JOB_ID"), *aj = getenv("SLURM_ARRAY_JOB_ID"),
               *at = getenv("SLURM_ARRAY_TASK_ID"), *rc = getenv("SLURM_RESTART_COUNT");
    buf[0] = 0;
    if (!job) return;
    snprintf(buf, len, "job=%s array=%s_%s restart=%s", job, aj ? aj : "-", at ? at : "-", rc ? rc : "0");
}

static int save_checkpoint(trainer *t, const progress_state *ps, cz_error *err)
{
    /* the epoch's histograms so far, merged into rank 0's, travel with the checkpoint */
    int rc = t->cfg->tau ? tau_merge(&t->ts, t->d, err) : 0;
    if (rc) return rc;
    if (t->d->rank == 0) {
        cz_optim_spec os = t->cfg->optim;
        cz_checkpoint c = {.model = t->m, .params = t->params, .optim = os.kind,
                           .opt_len = cz_optim_state_len(&os) * t->m.n_params, .opt_state = t->opt,
                           .mean = t->cfg->standardize ? t->mean : NULL,
                           .std = t->cfg->standardize ? t->std : NULL, .config_json = t->config_json};
        c.state = (cz_train_state){.epoch = ps->epoch, .step = ps->step, .position = ps->position,
                                   .lambda = ps->lambda, .lr = ps->lr, .world_size = t->d->size};
        memcpy(c.state.epoch_sums, ps->sums, sizeof ps->sums);
        if (t->cfg->tau) {
            c.n_tau = t->ts.nf;
            c.tau = t->ts.h;
            c.tau_names = t->ts.names;
        }
        cz_rng_seed(&c.state.rng, t->cfg->seed); /* all randomness is hashed from the seed */
        slurm_fields(c.state.slurm, sizeof c.state.slurm);
        snprintf(c.version, sizeof c.version, "%s", CHAINZ_VERSION);
        c.has_identity = 1;
        c.data = t->data_id;
        snprintf(c.blas_version, sizeof c.blas_version, "%s", cz_engine_blas_version());
        snprintf(c.blas_kernels, sizeof c.blas_kernels, "%s", cz_engine_blas_arch());
        c.threads = t->cfg->threads;
        rc = cz_run_save(t->ckpt_dir, &c, t->cfg->keep, t->cfg->keep_every, err);
    }
    return cz_dist_agree(t->d, rc, err);
}

/* ---- resume ---- */

/* Picks the checkpoint to resume from: rank 0 decides, every rank loads the same file.
 * path = "" when --resume auto finds nothing usable (a fresh start). */
static int choose_checkpoint(trainer *t, char *path, size_t len, cz_error *err)
{
    int rc = 0;
    path[0] = 0;
    if (t->d->rank == 0)
        rc = strcmp(t->cfg->resume, "auto") ? cz_run_resolve(t->cfg->resume, path, len, err)
                                            : cz_run_choose_auto(t->ckpt_dir, path, len, stdout, err);
    rc = cz_dist_agree(t->d, rc, err);
    if (!rc) rc = cz_dist_bcast(t->d, path, len, 0, err);
    return rc;
}

static int resume(trainer *t, progress_state *ps, cz_error *err)
{
    char path[4400];
    int rc = choose_checkpoint(t, path, sizeof path, err);
    if (rc || !path[0]) return rc;
    cz_checkpoint c;
    rc = cz_ckpt_load(path, &c, err);
    if (!rc) {
        cz_run_info info = {.spec = &t->m.spec, .optim = t->cfg->optim.kind, .config_json = t->config_json,
                            .data = &t->data_id, .data_path = t->cfg->data,
                            .blas_version = cz_engine_blas_version(), .blas_kernels = cz_engine_blas_arch(),
                            .world_size = t->d->size};
        rc = cz_run_check_compatible(&info, &c, path, t->d->rank == 0 ? stdout : NULL, err);
        if (!rc && (!c.opt_state || c.opt_len != cz_optim_state_len(&t->cfg->optim) * t->m.n_params))
            rc = cz_error_set(err, CZ_EINVAL, "%s: no optimizer state for %s", path, cz_optim_name(t->cfg->optim.kind));
        if (!rc && t->cfg->standardize && !c.mean)
            rc = cz_error_set(err, CZ_EINVAL, "%s: no standardization statistics", path);
        if (!rc) {
            memcpy(t->params, c.params, t->m.n_params * sizeof(float));
            memcpy(t->opt, c.opt_state, c.opt_len * sizeof(float));
            if (c.mean) { /* the run's own statistics, not a recomputation */
                memcpy(t->mean, c.mean, t->m.spec.d * sizeof(float));
                memcpy(t->std, c.std, t->m.spec.d * sizeof(float));
            }
            *ps = (progress_state){.epoch = c.state.epoch, .position = c.state.position,
                                   .step = c.state.step, .lambda = c.state.lambda, .lr = c.state.lr};
            memcpy(ps->sums, c.state.epoch_sums, sizeof ps->sums);
            /* a branch from an older checkpoint: later ones are set aside, not lost */
            if (t->d->rank == 0) rc = cz_run_set_aside_newer(t->ckpt_dir, ps->step, stdout, err);
            if (!rc && t->d->rank == 0) {
                printf("chainz: resumed from %s: epoch %ld, step %ld, batch %ld of the epoch%s%s\n", path,
                       ps->epoch + 1, ps->step, ps->position, c.state.slurm[0] ? ", written by SLURM " : "",
                       c.state.slurm);
                fflush(stdout);
            }
        }
        if (!rc && t->cfg->tau && t->d->rank == 0) /* the epoch's partial histograms */
            for (int k = 0; k < c.n_tau; k++)
                for (int f = 0; f < t->ts.nf; f++)
                    if (!strcmp(c.tau_names[k], t->ts.names[f])) t->ts.h[f] = c.tau[k];
        cz_ckpt_free(&c);
    }
    return cz_dist_agree(t->d, rc, err);
}

/* srun with an MPI that lacks SLURM's PMI support starts N singletons of world size 1,
 * each of which would train alone: refuse that. */
static int check_slurm(const cz_dist *d, cz_error *err)
{
    const char *n = getenv("SLURM_STEP_NUM_TASKS");
    if (d->size == 1 && getenv("SLURM_STEP_ID") && n && atoi(n) > 1)
        return cz_error_set(err, CZ_EINVAL,
                            "SLURM started %s tasks but MPI sees a world of 1: srun launched singletons "
                            "(use srun --mpi=pmix, or mpirun inside the allocation)", n);
    return 0;
}

static void progress(trainer *t, long epoch, size_t s, double t0, double samples, double loss,
                     double dreg, double seen, double *last_log, int force)
{
    if (t->d->rank != 0) return;
    double now = cz_dist_time(), el = now - t0, rate = samples / (el > 0 ? el : 1e-9);
    double left = (double)t->steps_per_epoch * t->cfg->epochs - (double)(epoch * (long)t->steps_per_epoch) - (double)s;
    double sps = (double)(epoch * (long)t->steps_per_epoch + (long)s) / (el > 0 ? el : 1e-9);
    char eta[32];
    fmt_eta(eta, sizeof eta, sps > 0 ? left / sps : -1);
    double L = seen > 0 ? loss / seen : 0, D = seen > 0 ? dreg / seen : 0;
    if (t->tty) {
        if (!force && now - *last_log < 0.1) return; /* redraw at most 10 times a second */
        *last_log = now;
        fprintf(stderr, "\repoch %ld/%d step %zu/%zu %8.0f samples/s loss %.4f dreg %.4g ETA %s   ",
                epoch + 1, t->cfg->epochs, s, t->steps_per_epoch, rate, L, D, eta);
        fflush(stderr);
    } else if (force || now - *last_log >= t->cfg->log_seconds) {
        char ts[32];
        utc_now(ts, sizeof ts);
        printf("[%s] epoch %ld/%d step %zu/%zu %.0f samples/s loss %.4f dreg %.4g ETA %s\n", ts,
               epoch + 1, t->cfg->epochs, s, t->steps_per_epoch, rate, L, D, eta);
        fflush(stdout);
        *last_log = now;
    }
}

int cz_train(const cz_config *cfg, int head_given, const cz_dist *d, cz_error *err)
{
    trainer t;
    memset(&t, 0, sizeof t);
    t.lock.fd = -1;
    t.cfg = cfg;
    t.d = d;
    t.tty = isatty(STDERR_FILENO);
    int rc = node_check(d, cfg->threads, cfg->max_memory, &t.mem_limit, t.mem_source, sizeof t.mem_source, err);
    if (rc) return rc;
    cz_engine_set_threads(cfg->threads);
    rc = cz_dist_agree(d, check_slurm(d, err), err);
    if (!rc) rc = setup(&t, head_given, err);
    /* one run per directory: rank 0 holds the lock until the end, every rank stops if it can't */
    if (!rc) rc = cz_dist_agree(d, d->rank == 0 ? cz_run_lock_acquire(&t.lock, cfg->out, err) : 0, err);
    progress_state ps = {0};
    if (!rc && cfg->resume[0]) rc = resume(&t, &ps, err);
    if (!rc && !cfg->resume[0]) /* a fresh run must not mix with another run's checkpoints */
        rc = cz_dist_agree(d, d->rank == 0 ? cz_run_check_fresh(t.ckpt_dir, err) : 0, err);
    if (!rc) rc = publish_run(&t, err); /* only now: a refused run leaves config.json alone */
    uint64_t *perm = NULL, *rows = NULL;
    char hist_path[4200];
    snprintf(hist_path, sizeof hist_path, "%s/history.jsonl", cfg->out);
    FILE *hist = NULL;
    if (!rc) { /* every rank reaches the agreement, whatever failed locally */
        int lrc = 0;
        perm = malloc((t.n_train ? t.n_train : 1) * sizeof(uint64_t));
        rows = malloc((size_t)cfg->batch * sizeof(uint64_t));
        if (!perm || !rows) lrc = cz_error_set(err, CZ_ENOMEM, "out of memory");
        if (!lrc && d->rank == 0) {
            char slurm[256];
            slurm_fields(slurm, sizeof slurm);
            if (slurm[0]) printf("chainz: SLURM %s\n", slurm);
            lrc = ps.step ? cz_run_truncate_history(hist_path, ps.epoch, err) : 0;
            char mpath[4200];
            snprintf(mpath, sizeof mpath, "%s/metrics.h5", cfg->out);
            const char *fam[CZ_MAX_HIDDEN + FAM_JACOBIAN];
            for (int f = 0; cfg->tau && f < t.ts.nf; f++) fam[f] = t.ts.names[f];
            if (!lrc)
                lrc = cz_metrics_open(&t.mx, mpath, cfg->tau ? t.ts.nf : 0, fam, t.config_json,
                                      ps.step ? ps.epoch : -1, err);
            if (!lrc && !(hist = fopen(hist_path, ps.step ? "a" : "w")))
                lrc = cz_error_set(err, CZ_EIO, "%s: cannot write: %s", hist_path, strerror(errno));
        }
        rc = cz_dist_agree(d, lrc, err);
    }
    double t_start = cz_dist_time(), samples = 0, last_log = t_start;
    long first_step = ps.step;
    for (long epoch = ps.epoch; !rc && epoch < cfg->epochs; epoch++) {
        double te = cz_dist_time();
        cz_rng r;
        cz_rng_seed(&r, cz_hash64(cfg->seed, 0x7368756666ULL + (uint64_t)epoch)); /* "shuff" */
        cz_rng_permutation(&r, perm, t.n_train);
        for (size_t i = 0; i < t.n_train; i++) perm[i] = t.train_rows[perm[i]];
        if (epoch != ps.epoch) { /* a new epoch (the resumed one keeps its position and sums) */
            ps.epoch = epoch;
            ps.position = 0;
            memset(ps.sums, 0, sizeof ps.sums);
        }
        int stop = 0;
        for (size_t s = (size_t)ps.position; s < t.steps_per_epoch && !rc; s++) {
            /* step boundary: one signalled rank is enough for all to stop here */
            int flag = cz_stop_requested != 0;
            if ((rc = cz_dist_max_int(d, &flag, 1, err))) break;
            if (flag || (cfg->max_steps && ps.step >= cfg->max_steps)) {
                stop = flag ? 2 : 1;
                break;
            }
            size_t b0 = s * (size_t)cfg->batch;
            size_t nb = t.n_train - b0 < (size_t)cfg->batch ? t.n_train - b0 : (size_t)cfg->batch;
            memcpy(rows, perm + b0, nb * sizeof(uint64_t));
            ps.lambda = cz_schedule_value(&t.dreg_s, (double)ps.step);
            ps.lr = cz_schedule_value(&t.lr_s, (double)ps.step);
            double sc[SC_N] = {0};
            rc = train_step(&t, rows, nb, ps.step, epoch, ps.lambda, ps.lr, sc, err);
            if (rc) break;
            ps.step++;
            ps.position = (long)s + 1;
            samples += (double)nb;
            ps.sums[0] += sc[SC_LOSS];
            ps.sums[1] += sc[SC_DREG];
            ps.sums[2] += sc[SC_CORRECT];
            ps.sums[3] += sc[SC_ABSERR];
            ps.sums[4] += (double)nb;
            progress(&t, epoch, s + 1, t_start, samples, ps.sums[0], ps.sums[1], ps.sums[4], &last_log,
                     s + 1 == t.steps_per_epoch);
            if (cfg->ckpt_every_steps && ps.step % cfg->ckpt_every_steps == 0 && s + 1 < t.steps_per_epoch)
                rc = save_checkpoint(&t, &ps, err);
        }
        if (t.tty && d->rank == 0) fputc('\n', stderr);
        if (!rc && stop) { /* a signal or --max-steps: checkpoint where we are and stop */
            rc = save_checkpoint(&t, &ps, err);
            if (!rc && d->rank == 0) {
                printf("chainz: %s at step %ld: checkpoint %s/ckpt-%08ld.h5 written\n",
                       stop == 2 ? "stopping on a signal" : "reached --max-steps", ps.step, t.ckpt_dir, ps.step);
                fflush(stdout);
            }
            if (!rc && stop == 2)
                rc = cz_error_set(err, CZ_ESTOPPED, "stopped on a signal at step %ld after writing a "
                                  "checkpoint; resume with --resume auto (exit status 75)", ps.step);
            break;
        }
        if (rc) break;
        double seen = ps.sums[4];
        eval_result vr = {0};
        if (t.n_val) rc = evaluate(d, t.ws, &t.m, t.params, &t.vio, t.val_rows, t.n_val,
                                   (size_t)cfg->micro_batch, &vr, NULL, NULL, err);
        if (!rc && cfg->tau) rc = tau_merge(&t.ts, d, err);
        if (!rc) rc = cz_dist_check_replicas(d, cz_checksum(t.params, t.m.n_params * sizeof(float)), err);
        if (rc) break;
        double secs = cz_dist_time() - te;
        int lrc = 0;
        if (d->rank == 0 && seen > 0) {
            char line[1024], j[8][32]; /* JSON numbers: null, never nan or inf */
            int w = snprintf(line, sizeof line,
                             "{\"epoch\": %ld, \"step\": %ld, \"train_loss\": %s, \"dreg\": %s, "
                             "\"lambda\": %s, \"lr\": %s, \"train_acc\": %s, ",
                             epoch + 1, ps.step, json_num(j[0], 32, ps.sums[0] / seen), json_num(j[1], 32, ps.sums[1] / seen),
                             json_num(j[2], 32, ps.lambda), json_num(j[3], 32, ps.lr), json_num(j[4], 32, ps.sums[2] / seen));
            if (t.n_val)
                w += snprintf(line + w, sizeof line - (size_t)w,
                              "\"val_loss\": %s, \"val_acc\": %s, \"val_mae\": %s, ", json_num(j[5], 32, vr.loss),
                              json_num(j[6], 32, vr.acc), json_num(j[7], 32, vr.mae));
            else
                w += snprintf(line + w, sizeof line - (size_t)w,
                              "\"val_loss\": null, \"val_acc\": null, \"val_mae\": null, ");
            snprintf(line + w, sizeof line - (size_t)w, "\"seconds\": %.3f}\n", secs);
            if (fputs(line, hist) < 0 || fflush(hist) || fsync(fileno(hist)))
                lrc = cz_error_set(err, CZ_EIO, "%s: cannot append: %s", hist_path, strerror(errno));
            double row[CZ_HISTORY_FIELDS] = {(double)(epoch + 1), (double)ps.step, ps.sums[0] / seen,
                                             ps.sums[1] / seen, ps.lambda, ps.lr, ps.sums[2] / seen,
                                             t.n_val ? vr.loss : NAN, t.n_val ? vr.acc : NAN,
                                             t.n_val ? vr.mae : NAN, secs};
            if (!lrc) lrc = cz_metrics_append(t.mx, row, cfg->tau ? t.ts.h : NULL, err);
            char ts[32];
            utc_now(ts, sizeof ts);
            printf("[%s] epoch %ld/%d done: train loss %.4f dreg %.4g acc %.4f", ts, epoch + 1,
                   cfg->epochs, ps.sums[0] / seen, ps.sums[1] / seen, ps.sums[2] / seen);
            if (t.n_val) printf(" | val loss %.4f acc %.4f mae %.4f", vr.loss, vr.acc, vr.mae);
            printf(" | lambda %.3g lr %.3g | %.1f s\n", ps.lambda, ps.lr, secs);
            if (cfg->tau) {
                cz_hist_summary is;
                cz_hist_summarize(&t.ts.h[FAM_INPUT], &is);
                printf("    tau: input_grad %.3g", is.tau);
                for (int f = FAM_PARAM; f < t.ts.nf; f++) {
                    cz_hist_summarize(&t.ts.h[f], &is);
                    printf(" | %s %.3g", t.ts.names[f], is.tau);
                }
                printf("\n");
            }
            fflush(stdout);
        }
        rc = cz_dist_agree(d, lrc, err);
        if (cfg->tau) tau_reset(&t.ts);
        /* the epoch is complete: the checkpoint says so (position 0 of the next epoch) */
        ps.epoch = epoch + 1;
        ps.position = 0;
        memset(ps.sums, 0, sizeof ps.sums);
        int last = epoch + 1 == cfg->epochs;
        if (!rc && (last || (cfg->ckpt_every_epochs && (epoch + 1) % cfg->ckpt_every_epochs == 0)))
            rc = save_checkpoint(&t, &ps, err);
    }
    if (!rc) { /* each rank's share: together one pass over the data per epoch */
        uint64_t *share = calloc((size_t)d->size, sizeof(uint64_t));
        rc = share ? 0 : cz_error_set(err, CZ_ENOMEM, "out of memory");
        if (!rc) share[d->rank] = t.rows_read;
        rc = cz_dist_agree(d, rc, err);
        if (!rc) rc = cz_dist_sum_u64(d, share, (size_t)d->size, err);
        if (!rc && d->rank == 0) {
            uint64_t total = 0;
            printf("chainz: training rows read per rank:");
            for (int r = 0; r < d->size; r++) {
                printf(" %llu", (unsigned long long)share[r]);
                total += share[r];
            }
            printf(" (total %llu over %ld steps)\n", (unsigned long long)total, ps.step - first_step);
        }
        free(share);
    }
    if (!rc && d->rank == 0) {
        printf("chainz: done, %ld steps, %.1f s, final checkpoint %s/latest\n", ps.step,
               cz_dist_time() - t_start, t.ckpt_dir);
        fflush(stdout);
    }
    if (hist) fclose(hist);
    free(perm);
    free(rows);
    trainer_free(&t);
    return rc;
}

/* ---- chainz eval ---- */

int cz_eval(const cz_eval_opts *o, const cz_dist *d, cz_error *err)
{
    size_t mem_limit = 0;
    char mem_source[160] = "";
    int nrc = node_check(d, o->threads, o->max_memory, &mem_limit, mem_source, sizeof mem_source, err);
    if (nrc) return nrc;
    cz_engine_set_threads(o->threads);
    cz_checkpoint c;
    memset(&c, 0, sizeof c);
    cz_data *ds = NULL;
    cz_workspace *ws = NULL;
    chunk_io io;
    memset(&io, 0, sizeof io);
    uint64_t *rows = NULL, *conf = NULL;
    char path[4600];
    int rc = cz_run_resolve(o->model, path, sizeof path, err);
    if (!rc) rc = cz_ckpt_load(path, &c, err);
    if (!rc) rc = cz_data_open(&ds, o->data, err);
    if (!rc) {
        const cz_data_info *di = cz_data_get_info(ds);
        if (di->d != c.model.spec.d)
            rc = cz_error_set(err, CZ_EINVAL, "%s has d = %zu features but the model %s expects %zu",
                              o->data, di->d, path, c.model.spec.d);
        else if ((c.model.spec.head == CZ_HEAD_REGRESS) != (di->task == CZ_HEAD_REGRESS))
            rc = cz_error_set(err, CZ_EINVAL, "%s is a %s set but the model %s has head %s", o->data,
                              cz_head_name(di->task), path, cz_head_name(c.model.spec.head));
        else if (c.model.spec.head != CZ_HEAD_REGRESS && di->classes != c.model.spec.classes)
            rc = cz_error_set(err, CZ_EINVAL, "%s has %d classes but the model %s has %d", o->data,
                              di->classes, path, c.model.spec.classes);
    }
    size_t M = (size_t)o->micro_batch;
    if (!rc) { /* before the workspace, whose size follows from untrusted sizes */
        cz_mem_request mr = {.m = &c.model, .micro_batch = M, .rows = cz_data_get_info(ds)->n,
                             .opt_moments = c.opt_len / (c.model.n_params ? c.model.n_params : 1), .tau = o->tau,
                             .confusion = c.model.spec.head == CZ_HEAD_REGRESS ? 0 : (size_t)c.model.spec.classes};
        cz_mem_estimate me;
        cz_mem_estimate_run(&mr, &me);
        rc = cz_mem_check(&me, mem_limit, mem_source, err);
    }
    if (!rc && !(ws = cz_workspace_new(&c.model, M, err))) rc = err->code;
    if (!rc) rc = chunk_io_init(&io, ds, M, c.mean, c.std, err);
    size_t n = rc ? 0 : cz_data_get_info(ds)->n;
    size_t K = c.model.spec.head == CZ_HEAD_REGRESS ? 0 : (size_t)c.model.spec.classes;
    if (!rc) {
        rows = malloc(n * sizeof(uint64_t));
        conf = calloc(K * K + 1, sizeof(uint64_t));
        if (!rows || !conf) rc = cz_error_set(err, CZ_ENOMEM, "out of memory");
        for (size_t i = 0; !rc && i < n; i++) rows[i] = i;
    }
    tau_set ts;
    memset(&ts, 0, sizeof ts);
    float *grad = NULL;
    if (!rc && o->tau) {
        rc = tau_init(&ts, c.model.n_hidden, M, 0, err);
        if (!rc && !(grad = malloc(c.model.n_params * sizeof(float))))
            rc = cz_error_set(err, CZ_ENOMEM, "out of memory");
    }
    rc = cz_dist_agree(d, rc, err);
    eval_result r = {.confusion = K ? conf : NULL};
    if (!rc) rc = evaluate(d, ws, &c.model, c.params, &io, rows, n, M, &r, o->tau ? &ts : NULL, grad, err);
    if (!rc && d->rank == 0) {
        printf("chainz eval: model %s on %s (%zu samples, %d rank%s)\n", path, o->data, n, d->size,
               d->size > 1 ? "s" : "");
        printf("loss %.6f", r.loss);
        if (K) printf("  accuracy %.4f", r.acc);
        if (c.model.spec.head != CZ_HEAD_CLASSIFY) printf("  MAE %.4f", r.mae);
        printf("\n");
        if (K) {
            printf("per-class accuracy:");
            for (size_t k = 0; k < K; k++) {
                uint64_t tot = 0;
                for (size_t p = 0; p < K; p++) tot += conf[k * K + p];
                printf(" %zu:%.3f", k, tot ? (double)conf[k * K + k] / (double)tot : 0.0);
            }
            printf("\nconfusion (rows true, columns predicted):\n");
            for (size_t k = 0; k < K; k++) {
                for (size_t p = 0; p < K; p++) printf(" %7llu", (unsigned long long)conf[k * K + p]);
                printf("\n");
            }
        }
        if (o->tau) {
            printf("gradient-norm statistics (per sample, task loss):\n");
            printf("  %-20s %10s %11s %11s %11s %11s %11s %8s\n", "family", "count", "mean", "p50", "p90",
                   "p99", "max", "tau");
            for (int f = 0; f < ts.nf; f++) {
                if (f == FAM_PARAM) continue; /* a per-step statistic: training only */
                cz_hist_summary hs;
                cz_hist_summarize(&ts.h[f], &hs);
                printf("  %-20s %10.0f %11.4g %11.4g %11.4g %11.4g %11.4g %8.3f\n", ts.names[f], hs.count,
                       hs.mean, hs.p50, hs.p90, hs.p99, hs.max, hs.tau);
            }
        }
        if (o->json && o->json[0]) { /* a memory stream: no size to get wrong */
            char *js = NULL;
            size_t jlen = 0;
            FILE *m = open_memstream(&js, &jlen);
            if (!m) rc = cz_error_set(err, CZ_ENOMEM, "out of memory");
            else {
                fputs("{\"model\": ", m);
                json_string(m, path);
                fputs(", \"data\": ", m);
                json_string(m, o->data);
                char j[7][32]; /* JSON numbers: null, never nan or inf */
                fprintf(m, ", \"samples\": %zu, \"loss\": %s, \"acc\": %s, \"mae\": %s, \"per_class\": [",
                        n, json_num(j[0], 32, r.loss), json_num(j[1], 32, r.acc), json_num(j[2], 32, r.mae));
                for (size_t k = 0; k < K; k++) {
                    uint64_t tot = 0;
                    for (size_t p = 0; p < K; p++) tot += conf[k * K + p];
                    fprintf(m, "%s%.9g", k ? ", " : "", tot ? (double)conf[k * K + k] / (double)tot : 0.0);
                }
                fputs("], \"confusion\": [", m);
                for (size_t k = 0; k < K; k++) {
                    fputs(k ? ", [" : "[", m);
                    for (size_t p = 0; p < K; p++)
                        fprintf(m, "%s%llu", p ? ", " : "", (unsigned long long)conf[k * K + p]);
                    fputs("]", m);
                }
                fputs("]", m);
                if (o->tau) {
                    fputs(", \"tau\": {", m);
                    for (int f = 0, first = 1; f < ts.nf; f++) {
                        if (f == FAM_PARAM) continue;
                        cz_hist_summary hs;
                        cz_hist_summarize(&ts.h[f], &hs);
                        fprintf(m, "%s\"%s\": {\"count\": %.0f, \"mean\": %s, \"p50\": %s, \"p90\": %s, "
                                   "\"p99\": %s, \"max\": %s, \"tau\": %s}",
                                first ? "" : ", ", ts.names[f], hs.count, json_num(j[0], 32, hs.mean),
                                json_num(j[1], 32, hs.p50), json_num(j[2], 32, hs.p90), json_num(j[3], 32, hs.p99),
                                json_num(j[4], 32, hs.max), json_num(j[5], 32, hs.tau));
                        first = 0;
                    }
                    fputs("}", m);
                }
                fputs("}\n", m);
                if (fclose(m) != 0 || !js) rc = cz_error_set(err, CZ_ENOMEM, "out of memory for the report");
                else rc = cz_write_text_atomic(o->json, js, err);
                free(js);
            }
        }
        fflush(stdout);
    }
    rc = cz_dist_agree(d, rc, err);
    tau_free(&ts);
    free(grad);
    free(rows);
    free(conf);
    chunk_io_free(&io);
    cz_workspace_free(ws);
    cz_data_close(ds);
    cz_ckpt_free(&c);
    return rc;
}
