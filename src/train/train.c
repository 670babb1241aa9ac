/* chainz train: prolog (data, model, run directory), the step loop, epilog (validation,
 * history, checkpoint). Every rank runs the same control flow; every failure goes through
 * cz_dist_agree so that all ranks stop together. The parts live beside it: feed.c (chunks
 * of rows, standardization, feature statistics), eval.c (the validation pass and chainz
 * eval), taucollect.c (gradient-norm histograms), node.c (cores, threads, kernels, memory,
 * SLURM), report.c (progress lines, history and metrics rows), streamplan.c (which Jacobian
 * streams run), trainckpt.c (saving and resuming checkpoints; trainer.h holds the state). */
#include "chainz/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chainz/atomic.h"
#include "chainz/budget.h"
#include "chainz/checkpoint.h"
#include "eval.h"
#include "node.h"
#include "records.h"
#include "report.h"
#include "trainer.h"

volatile sig_atomic_t cz_stop_requested = 0;

static void trainer_free(trainer *t)
{
    cz_data_close(t->train);
    cz_data_close(t->val);
    cz_share_free(&t->share);
    free(t->train_rows);
    free(t->val_rows);
    cz_workspace_free(t->ws);
    free(t->params);
    free(t->grad);
    free(t->opt);
    free(t->mean);
    free(t->std);
    cz_reducer_free(&t->red);
    cz_feed_free(&t->io);
    cz_feed_free(&t->vio);
    free(t->config_json);
    cz_tau_set_free(&t->ts);
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
    /* rows: a held-out fraction (stratified by class) is drawn by a permutation seeded by --seed */
    if (t->val && cfg->holdout > 0)
        return cz_error_set(err, CZ_EINVAL, "--val and --holdout both give a validation set: use one");
    size_t N = ti->n, n_hold = 0;
    uint64_t *perm = malloc(N * sizeof(uint64_t));
    if (!perm) return cz_error_set(err, CZ_ENOMEM, "out of memory for %zu row indices", N);
    rc = cz_feed_holdout(perm, N, cfg->holdout, cfg->seed, cz_data_labels_class(t->train), ti->classes,
                         !cfg->holdout_random, &n_hold, err);
    if (rc) {
        free(perm);
        return rc;
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

/* this run's configuration, the BLIS that computes it and the stream it runs (config.json,
 * checkpoints) */
int cz_trainer_config_json(trainer *t, cz_error *err)
{
    free(t->config_json);
    char plan[256];
    cz_stream_plan_json(&t->plan, plan, sizeof plan);
    /* the head the run trains (the data's task unless --head was given), not the option's default */
    cz_config *eff = malloc(sizeof *eff);
    if (!eff) return cz_error_set(err, CZ_ENOMEM, "out of memory");
    *eff = *t->cfg;
    eff->model.head = t->m.spec.head;
    size_t need = cz_config_json(eff, NULL, 0) + 1, extra = 256 + strlen(plan);
    if (!(t->config_json = malloc(need + extra))) {
        free(eff);
        return cz_error_set(err, CZ_ENOMEM, "out of memory");
    }
    cz_config_json(eff, t->config_json, need);
    free(eff);
    snprintf(t->config_json + need - 2, extra + 2, ", \"blas_version\": \"%s\", \"blas_kernels\": \"%s\"%s}",
             cz_engine_blas_version(), cz_engine_blas_arch(), plan);
    return 0;
}

/* The buckets of the reduction (the overlap's unit, and the ranges of the slices and of the
 * sum of squares' blocks), in the order the backward pass finishes them:
 * the output layer, then the hidden layers top down; each its weights and its bias with
 * the coefficients (adjacent in the flat layout) */
static int set_buckets(trainer *t, cz_error *err)
{
    cz_bucket b[CZ_MAX_HIDDEN + 1];
    int H = t->m.n_hidden;
    for (int k = 0; k <= H; k++) {
        const cz_layer *L = &t->m.layer[H - k];
        b[k] = (cz_bucket){.off = {L->w, L->b},
                           .len = {L->n_out * L->n_in, L->n_out * (L->poly == CZ_NONE ? 1 : 5)}};
    }
    return cz_reducer_set_buckets(&t->red, b, (size_t)H + 1, err);
}

static int setup(trainer *t, int head_given, cz_error *err)
{
    const cz_config *cfg = t->cfg;
    const cz_dist *d = t->d;
    int rc = open_data(t, head_given, err);
    /* the memory the run needs, estimated from untrusted sizes before any allocation */
    cz_optim_spec os = cfg->optim;
    cz_mem_estimate me = {0};
    if (!rc) {
        cz_mem_request mr = {.m = &t->m, .micro_batch = (size_t)cfg->micro_batch, .batch = (size_t)cfg->batch,
                             .rows = cz_data_get_info(t->train)->n, .train_rows = t->n_train,
                             .opt_moments = cz_optim_state_len(&os),
                             .exact = cfg->reduce == CZ_REDUCE_EXACT, .ranks = d->size, .tau = cfg->tau};
        rc = cz_stream_plan_make(cfg, &t->m, mr.rows, &t->plan, err);
        mr.stream = t->plan.main;
        mr.tau_sampled = cfg->tau ? t->plan.tau_sampled : CZ_STREAM_NONE;
        cz_mem_estimate_run(&mr, &me);
        if (!rc) rc = cz_mem_check_train(&mr, &me, t->mem_limit, t->mem_source, err);
    }
    rc = cz_dist_agree(d, rc, err);
    /* a chunked file: read once per node now, rows from memory afterwards (issue 15);
     * collective, agreed codes */
    if (!rc) rc = cz_share_features(d, t->train, me.total, t->mem_limit, t->mem_source, &t->share, err);
    if (!rc && t->val) rc = cz_share_features(d, t->val, me.total, t->mem_limit, t->mem_source, &t->share, err);
    if (rc) return rc;
    size_t n = t->m.n_params, dd = t->m.spec.d, M = (size_t)cfg->micro_batch;
    size_t per_step = (size_t)cfg->batch < t->n_train ? (size_t)cfg->batch : t->n_train; /* full batch */
    size_t chunks = (per_step + M - 1) / M;
    t->params = malloc(n * sizeof(float));
    t->grad = malloc(n * sizeof(float));
    t->opt = calloc(cz_optim_state_len(&os) * n, sizeof(float));
    t->mean = malloc(dd * sizeof(float));
    t->std = malloc(dd * sizeof(float));
    if (!t->params || !t->grad || !t->opt || !t->mean || !t->std)
        rc = cz_error_set(err, CZ_ENOMEM, "out of memory for %zu parameters", n);
    /* the last step of an epoch takes the rows left over: its own chunk count */
    size_t left = per_step < t->n_train ? t->n_train % per_step : 0, last_chunks = (left + M - 1) / M;
    if (!rc)
        rc = cz_reducer_init(&t->red, n, CZ_SC_N, chunks, last_chunks, cfg->reduce == CZ_REDUCE_EXACT, d->rank,
                             d->size, err);
    if (!rc) rc = set_buckets(t, err);
    if (!rc && !(t->ws = cz_workspace_new_stream(&t->m, M, &t->plan.main, err))) rc = err->code;
    if (!rc) rc = cz_feed_init(&t->io, t->train, M, cfg->standardize ? t->mean : NULL, t->std, err);
    if (!rc) rc = cz_feed_init(&t->vio, t->val ? t->val : t->train, M,
                                cfg->standardize ? t->mean : NULL, t->std, err);
    if (!rc && cfg->tau) rc = cz_tau_set_init(&t->ts, t->m.n_hidden, M, 1, err);
    if (!rc && cfg->tau && t->plan.tau_sampled)
        rc = cz_tau_set_sampler_init(&t->ts, &t->m, t->plan.tau_sampled, t->plan.tau_fraction, err);
    rc = cz_dist_agree(d, rc, err);
    if (rc) return rc;
    /* a bad value in the validation set stops the run now, not after the first epoch */
    if (t->n_val) rc = cz_feed_check_rows(d, t->val ? t->val : t->train, t->vio.x, t->val_rows, t->n_val, M, err);
    if (rc) return rc;
    t->io.clip = t->vio.clip = (float)cfg->clip_z;
    if (cfg->standardize)
        rc = cz_feed_stats(d, t->train, t->train_rows, t->n_train, cfg->clip_z, t->mean, t->std, err);
    if (rc) return rc;
    cz_rng r;
    cz_rng_seed(&r, cfg->seed);
    cz_model_params_init(&t->m, t->params, &r);

    /* schedules, in global optimizer steps */
    t->steps_per_epoch = (t->n_train + (size_t)cfg->batch - 1) / (size_t)cfg->batch;
    if ((size_t)cfg->batch > t->n_train && d->rank == 0)
        fprintf(stderr, "chainz: warning: --batch %ld is larger than the %zu training rows: each step uses all "
                "of them (full-batch training)\n", cfg->batch, t->n_train);
    double spe = (double)t->steps_per_epoch, total = spe * cfg->epochs;
    t->lr_s = (cz_schedule){.shape = cfg->lr_shape, .start = cfg->lr, .end = cfg->lr_min,
                            .from = (double)cfg->warmup_steps, .to = total,
                            .warmup = (double)cfg->warmup_steps, .ramp = 1};
    t->dreg_s = (cz_schedule){.shape = CZ_SHAPE_CONSTANT, .start = cfg->dreg, .end = cfg->dreg, .to = total};
    if (cfg->dreg_schedule[0]) rc = cz_schedule_parse(cfg->dreg_schedule, &t->dreg_s, err);
    if (!rc && cfg->dreg_range[0] && cz_range_parse(cfg->dreg_range, spe, &t->dreg_s.from, &t->dreg_s.to, err))
        rc = cz_error_set(err, CZ_EINVAL, "--dreg-range '%s': expected FROM:TO in epochs (e.g. 2:8) or steps "
                          "(e.g. 100s:900s), decimal, 0 <= FROM <= TO", cfg->dreg_range);
    if (!rc && cfg->dreg_warmup[0]) {
        double dummy;
        char spec[128];
        snprintf(spec, sizeof spec, "0:%s", cfg->dreg_warmup);
        if (cz_range_parse(spec, spe, &dummy, &t->dreg_s.warmup, err))
            rc = cz_error_set(err, CZ_EINVAL, "--dreg-warmup '%s': expected a number of epochs (e.g. 2) or "
                              "steps (e.g. 500s), decimal and >= 0", cfg->dreg_warmup);
    }
    if (rc) return cz_dist_agree(d, rc, err);

    /* this run's configuration and the BLIS that computes it (config.json, checkpoints) */
    rc = cz_trainer_config_json(t, err);
    if (rc) return cz_dist_agree(d, rc, err);
    snprintf(t->ckpt_dir, sizeof t->ckpt_dir, "%s/checkpoints", cfg->out);
    rc = cz_run_data_identity(t->train, cfg->data, &t->data_id, err);
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
                   ti->classes, cz_data_is_mapped(t->train) ? "shared mapping"
                   : cz_data_in_memory(t->train) ? "node shared memory" : "hyperslab reads",
                   d->size, d->size > 1 ? "s" : "", cfg->threads, cfg->threads > 1 ? "s" : "");
            printf("chainz: BLIS %s, %s kernels (%s)\n", cz_engine_blas_version(),
                   cz_engine_blas_arch(), cz_engine_blas_choice());
            printf("chainz: validation %zu rows (%s)\n", t->n_val,
                   t->val ? cfg->val : t->n_val ? "held out of --data" : "none");
            printf("chainz: model %zu parameters, workspace %.1f MB per rank, %zu steps per epoch\n",
                   t->m.n_params, cz_workspace_bytes(t->ws) / 1e6, t->steps_per_epoch);
            printf("chainz: DREG stream %s\n", t->plan.why);
            if (cfg->tau) printf("chainz: tau layer-Jacobian families: %s\n", t->plan.tau_why);
            /* a step's rows: the batch, or every training row when the batch is larger */
            size_t nb = (size_t)cfg->batch < t->n_train ? (size_t)cfg->batch : t->n_train;
            size_t C = (nb + (size_t)cfg->micro_batch - 1) / (size_t)cfg->micro_batch;
            if ((size_t)d->size > C)
                printf("chainz: warning: %d ranks but %zu chunk%s per step (--batch %ld / --micro-batch %ld): %zu "
                       "rank%s idle in every step (they take turns); --micro-batch %ld or less would use every "
                       "rank (the last bits depend on --micro-batch)\n", d->size, C, C > 1 ? "s" : "",
                       cfg->batch, cfg->micro_batch, (size_t)d->size - C, (size_t)d->size - C > 1 ? "s are" : " is",
                       nb / (size_t)d->size > 0 ? (long)(nb / (size_t)d->size) : 1L);
            if (cfg->dreg_by_default && !cfg->dreg_schedule[0])
                printf("chainz: DREG lambda %g: the default for %s (--dreg sets it)\n", cfg->dreg,
                       cfg->dreg > 0 ? "a CR network (poly activations)" : "activations other than poly");
            printf("chainz: config %s\n", t->config_json);
            fflush(stdout);
        }
    }
    return cz_dist_agree(d, rc, err);
}

/* the engine's layer_done: a layer of the rank's last chunk is final, start its exchange */
typedef struct {
    trainer *t;
    int rc;
    cz_error *err;
} bucket_ctx;

static void bucket_done(void *ctx, int layer)
{
    bucket_ctx *b = ctx;
    (void)layer; /* the buckets are in the engine's order */
    if (!b->rc) cz_reducer_post_next(&b->t->red, b->t->d, &b->rc, b->err);
}

/* One optimizer step on global batch rows[0..nb): chunks of M, one reduction (reducer.h);
 * with more than one rank the last chunk's layers are reduced as they become final. */
static int train_step(trainer *t, const uint64_t *rows, size_t nb, long step, long epoch,
                      double lambda, double lr, double sc[CZ_SC_N], cz_error *err)
{
    const cz_config *cfg = t->cfg;
    const cz_dist *d = t->d;
    size_t n = t->m.n_params, M = (size_t)cfg->micro_batch;
    size_t C = (nb + M - 1) / M, c0, c1;
    /* the shares rotate with the step: with more ranks than chunks (3 ranks, 2 chunks) no
     * rank sits idle for the whole run. Each chunk's gradient is the same wherever it is
     * computed and the tree of sums is fixed, so the bits do not move. */
    int rc = cz_reducer_begin(&t->red, C, step, &c0, &c1, err);
    if (rc) return rc; /* every rank alike, before any collective */
    memset(t->layer_sq, 0, sizeof t->layer_sq);
    cz_step_opts opts = {.lambda = lambda, .train = 1, .stream = t->plan.tau_from_step};
    uint64_t epoch_key = cz_hash64(cfg->seed, 0x64726f70ULL + (uint64_t)epoch); /* "drop" */
    for (size_t c = c0; c < c1 && !rc; c++) {
        size_t b0 = c * M, mb = nb - b0 < M ? nb - b0 : M;
        bucket_ctx bc = {.t = t, .err = err};
        float *g = cz_reducer_buffer(&t->red);
        int overlap = c + 1 == c1 && t->red.overlap;
        opts.layer_done = overlap ? bucket_done : NULL;
        opts.ctx = &bc;
        memcpy(t->io.rows, rows + b0, mb * sizeof(uint64_t));
        for (size_t b = 0; b < mb; b++) t->io.keys[b] = cz_hash64(epoch_key, t->io.rows[b]);
        cz_step_sums s;
        rc = cz_feed_load(&t->io, mb, err);
        t->rows_read += mb;
        if (!rc) rc = cz_engine_step(t->ws, t->params, t->io.x, t->io.yc, t->io.yv, t->io.keys, mb,
                                     &opts, g, &s, err);
        if (!rc) rc = bc.rc;
        /* in probe mode the step's stream holds estimates: the Jacobian families then come
         * from the exact subsample alone */
        if (!rc && cfg->tau)
            rc = cz_tau_set_collect(&t->ts, t->ws, t->params, t->m.n_hidden, mb, t->plan.tau_from_step, err);
        if (!rc && cfg->tau && t->plan.tau_sampled)
            rc = cz_tau_set_collect_sampled(&t->ts, t->ws, t->params, t->io.keys, mb, err);
        if (rc) break;
        for (int l = 0; l < t->m.n_hidden; l++) {
            const double *sq = cz_engine_jacobian_sqnorm(t->ws, l + 1);
            for (size_t b = 0; sq && b < mb; b++) t->layer_sq[l] += sq[b];
        }
        double v[CZ_SC_N] = {s.task.loss, s.dreg, s.task.correct, s.task.abs_err};
        cz_reducer_add(&t->red, c, v);
    }
    /* the exchange carries the gradient; one small message the scalars, the failure flag and
     * a signal's stop request (read at the next step boundary); only a failure costs a
     * second one, which brings the failing rank's message to every rank */
    if (rc) cz_reducer_fail(&t->red);
    if (cz_stop_requested) cz_reducer_stop(&t->red);
    cz_reduced res;
    int frc = cz_reducer_finish(&t->red, d, (double)nb, t->grad, sc, &res, err);
    if (frc) return frc;
    if (res.failed) return cz_dist_agree(d, rc, err); /* non-zero: some rank failed */
    t->stop_seen = res.stop;
    double inv = 1.0 / (double)nb;
    /* identical on every rank after the reduction, so every rank stops here together; the
     * message needs the whole gradient (sharded: each rank holds its slices) */
    double gsq = res.sumsq;
    if (!isfinite(gsq)) {
        rc = cz_reducer_gather(&t->red, d, t->grad, err);
        return rc ? rc : cz_diverge_overflow(&t->m, t->grad, n, step, err);
    }
    /* a jump of the loss or of DREG (only when it is part of the loss): every rank sees the
     * same scalars and stops here together, before the update */
    double per[CZ_DV_N] = {sc[CZ_SC_LOSS] * inv, lambda > 0 ? sc[CZ_SC_DREG] * inv : 0}, ratio;
    int term = cz_diverge_check(&t->dv, cfg->divergence_factor, per, &ratio);
    int stop = term >= 0 && ratio > cfg->divergence_factor * cfg->divergence_factor;
    if (term >= 0 && (stop || t->dv.warned[term] != epoch + 1)) {
        int stream = t->plan.main.mode != CZ_STREAM_NONE && (lambda > 0 || t->plan.tau_from_step);
        t->dv.warned[term] = epoch + 1;
        if (stream && (rc = cz_dist_sum_double(d, t->layer_sq, (size_t)t->m.n_hidden, err))) return rc;
        for (int l = 0; l < t->m.n_hidden; l++) t->layer_sq[l] *= inv;
        cz_error w;
        rc = cz_diverge_explain(&t->dv, term, per[term], ratio, step, epoch, lambda, stop, &t->m, t->params,
                                stream ? t->layer_sq : NULL, cfg, stop ? err : &w);
        if (stop) return rc;
        rc = 0;
        if (d->rank == 0) {
            fprintf(stderr, "chainz: warning: %s (one warning per epoch)\n", w.msg);
            fflush(stderr);
        }
    }
    /* one value per step, the same on every rank: rank 0 records it (before clipping: tau
     * describes the gradients the data produce) */
    if (cfg->tau && d->rank == 0) cz_hist_add(&t->ts.h[CZ_TAU_PARAM], sqrt(gsq));
    /* --clip-grad-norm: every rank has the same sum of squares (fixed blocks, reducer.h),
     * so every rank scales by the same factor and exact stays exact. Each rank clips and
     * updates its slices (sharded: its share of the parameters; else all of them), then the
     * updated parameters are gathered. */
    float s = 1.0f;
    if (cfg->clip_grad_norm > 0 && sqrt(gsq) > cfg->clip_grad_norm) {
        s = (float)(cfg->clip_grad_norm / sqrt(gsq));
        t->clipped_steps++;
    }
    for (size_t k = 0; k < cz_reducer_slices(&t->red); k++) {
        size_t off, len;
        cz_reducer_slice(&t->red, k, &off, &len);
        if (s != 1.0f)
            for (size_t i = off; i < off + len; i++) t->grad[i] *= s;
        cz_optim_step_range(&cfg->optim, t->params, t->grad, t->opt, n, t->m.n_weights, off, off + len, step + 1, lr);
    }
    return cz_reducer_gather(&t->red, d, t->params, err);
}

int cz_train(const cz_config *cfg, int head_given, const cz_dist *d, cz_error *err)
{
    trainer t;
    memset(&t, 0, sizeof t);
    t.lock.fd = -1;
    t.cfg = cfg;
    t.d = d;
    int rc = cz_node_check(d, cfg->threads, cfg->max_memory, &t.mem_limit, t.mem_source, sizeof t.mem_source, err);
    if (rc) return rc;
    cz_engine_set_threads(cfg->threads);
    rc = cz_dist_agree(d, cz_node_check_slurm(d, err), err);
    if (!rc) rc = setup(&t, head_given, err);
    /* one run per directory: rank 0 holds the lock until the end, every rank stops if it can't */
    if (!rc) rc = cz_dist_agree(d, d->rank == 0 ? cz_run_lock_acquire(&t.lock, cfg->out, err) : 0, err);
    progress_state ps = {0};
    if (!rc && cfg->resume[0]) rc = cz_trainer_resume(&t, &ps, err);
    if (!rc && !cfg->resume[0]) /* a fresh run must not mix with another run's checkpoints */
        rc = cz_dist_agree(d, d->rank == 0 ? cz_run_check_fresh(t.ckpt_dir, err) : 0, err);
    uint64_t *perm = NULL, *rows = NULL;
    char hist_path[4200];
    snprintf(hist_path, sizeof hist_path, "%s/history.jsonl", cfg->out);
    FILE *hist = NULL;
    /* history.jsonl and metrics.h5 are checked (and repaired) before config.json: a run they
     * refuse leaves config.json alone */
    if (!rc) { /* every rank reaches the agreement, whatever failed locally */
        int lrc = 0;
        perm = malloc((t.n_train ? t.n_train : 1) * sizeof(uint64_t));
        /* a step's rows: at most the batch, and at most every training row (--batch may be
         * far larger: full-batch training) */
        rows = malloc(((size_t)cfg->batch < t.n_train ? (size_t)cfg->batch : t.n_train ? t.n_train : 1) *
                      sizeof(uint64_t));
        if (!perm || !rows) lrc = cz_error_set(err, CZ_ENOMEM, "out of memory");
        if (!lrc && d->rank == 0) {
            char slurm[256];
            cz_node_slurm_fields(slurm, sizeof slurm);
            if (slurm[0]) printf("chainz: SLURM %s\n", slurm);
            {
                const char *fam[CZ_MAX_HIDDEN + CZ_TAU_JACOBIAN];
                int nf = cfg->tau ? t.ts.nf : 0;
                for (int f = 0; f < nf; f++) fam[f] = t.ts.names[f];
                lrc = cz_records_open(cfg, t.config_json, nf, fam, ps.epoch, ps.step != 0, hist_path, &t.mx, &hist, err);
            }
        }
        rc = cz_dist_agree(d, lrc, err);
    }
    if (!rc) rc = publish_run(&t, err); /* only now: a refused run leaves config.json alone */
    double t_start = cz_dist_time(), samples = 0;
    cz_progress pg = {.rank = d->rank, .tty = isatty(STDERR_FILENO), .epochs = cfg->epochs,
                      .steps_per_epoch = t.steps_per_epoch, .log_seconds = cfg->log_seconds, .t0 = t_start,
                      .last_log = t_start};
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
            /* step boundary: one signalled rank is enough for all to stop here. Within an
             * epoch the previous step's reduction brought the ranks' requests; the first
             * step of an epoch (after validation and the checkpoint, or at the start) asks */
            int flag = t.stop_seen;
            if (s == (size_t)ps.position) {
                flag = cz_stop_requested != 0;
                if ((rc = cz_dist_max_int(d, &flag, 1, err))) break;
            }
            if (flag || (cfg->max_steps && ps.step >= cfg->max_steps)) {
                stop = flag ? 2 : 1;
                break;
            }
            size_t b0 = s * (size_t)cfg->batch;
            size_t nb = t.n_train - b0 < (size_t)cfg->batch ? t.n_train - b0 : (size_t)cfg->batch;
            memcpy(rows, perm + b0, nb * sizeof(uint64_t));
            ps.lambda = cz_schedule_value(&t.dreg_s, (double)ps.step);
            ps.lr = cz_schedule_value(&t.lr_s, (double)ps.step);
            double sc[CZ_SC_N] = {0};
            rc = train_step(&t, rows, nb, ps.step, epoch, ps.lambda, ps.lr, sc, err);
            if (rc) break;
            ps.step++;
            ps.position = (long)s + 1;
            samples += (double)nb;
            ps.sums[0] += sc[CZ_SC_LOSS];
            ps.sums[1] += sc[CZ_SC_DREG];
            ps.sums[2] += sc[CZ_SC_CORRECT];
            ps.sums[3] += sc[CZ_SC_ABSERR];
            ps.sums[4] += (double)nb;
            cz_progress_show(&pg, epoch, s + 1, samples, ps.sums[0], ps.sums[1], ps.sums[4],
                             s + 1 == t.steps_per_epoch);
            if (cfg->ckpt_every_steps && ps.step % cfg->ckpt_every_steps == 0 && s + 1 < t.steps_per_epoch)
                rc = cz_trainer_save(&t, &ps, err);
        }
        cz_progress_end_epoch(&pg);
        if (!rc && stop) { /* a signal or --max-steps: checkpoint where we are and stop */
            rc = cz_trainer_save(&t, &ps, err);
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
        cz_eval_result vr = {0};
        if (t.n_val) rc = cz_eval_pass(d, t.ws, &t.m, t.params, &t.vio, t.val_rows, t.n_val,
                                       (size_t)cfg->micro_batch, &vr, NULL, NULL, err);
        if (!rc && cfg->tau) rc = cz_tau_set_merge(&t.ts, d, err);
        if (!rc) rc = cz_dist_check_replicas(d, cz_checksum(t.params, t.m.n_params * sizeof(float)), err);
        if (rc) break;
        double secs = cz_dist_time() - te;
        int lrc = 0;
        if (d->rank == 0 && seen > 0) {
            cz_epoch_report er = {.epoch = epoch, .epochs = cfg->epochs, .step = ps.step, .lambda = ps.lambda,
                                  .lr = ps.lr, .sums = ps.sums, .has_val = t.n_val != 0, .val_loss = vr.loss,
                                  .val_acc = vr.acc, .val_mae = vr.mae, .secs = secs,
                                  .tau = cfg->tau ? &t.ts : NULL};
            lrc = cz_report_epoch(&er, hist, hist_path, t.mx, err);
        }
        rc = cz_dist_agree(d, lrc, err);
        if (cfg->tau) cz_tau_set_reset(&t.ts);
        /* the epoch is complete: the checkpoint says so (position 0 of the next epoch) */
        ps.epoch = epoch + 1;
        ps.position = 0;
        memset(ps.sums, 0, sizeof ps.sums);
        int last = epoch + 1 == cfg->epochs;
        if (!rc && (last || (cfg->ckpt_every_epochs && (epoch + 1) % cfg->ckpt_every_epochs == 0)))
            rc = cz_trainer_save(&t, &ps, err);
    }
    if (!rc) rc = cz_report_rows_read(d, t.rows_read, ps.step - first_step, err);
    if (!rc && d->rank == 0 && cfg->clip_grad_norm > 0)
        printf("chainz: --clip-grad-norm %g scaled the gradient of %ld of the %ld steps of this run\n",
               cfg->clip_grad_norm, t.clipped_steps, ps.step - first_step);
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
