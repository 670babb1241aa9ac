/* Tau collection: per-epoch gradient-norm histograms, filled per rank, merged exactly
 * (taucollect.h). */
#include "taucollect.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chainz/rng.h"

int cz_tau_set_init(cz_tau_set *ts, int n_hidden, size_t M, int with_param, cz_error *err)
{
    memset(ts, 0, sizeof *ts);
    ts->nf = CZ_TAU_JACOBIAN + n_hidden;
    ts->names = calloc((size_t)ts->nf, sizeof *ts->names);
    ts->h = calloc((size_t)ts->nf, sizeof *ts->h);
    ts->in_norm = malloc(M * sizeof(double));
    ts->sg_norm = malloc(M * sizeof(double));
    ts->pack = malloc((size_t)ts->nf * (CZ_HIST_BINS + 1) * sizeof(uint64_t));
    ts->maxes = malloc((size_t)ts->nf * sizeof(double));
    if (!ts->names || !ts->h || !ts->in_norm || !ts->sg_norm || !ts->pack || !ts->maxes ||
        cz_fixed_init(&ts->sums, (size_t)ts->nf))
        return cz_error_set(err, CZ_ENOMEM, "out of memory for the tau histograms");
    snprintf(ts->names[CZ_TAU_INPUT], 64, "input_grad");
    snprintf(ts->names[CZ_TAU_PARAM], 64, with_param ? "param_grad" : "unused");
    snprintf(ts->names[CZ_TAU_SAMPLE], 64, "sample_grad");
    for (int l = 0; l < n_hidden; l++) snprintf(ts->names[CZ_TAU_JACOBIAN + l], 64, "jacobian/layer_%d", l + 1);
    return 0;
}

void cz_tau_set_free(cz_tau_set *ts)
{
    if (!ts) return;
    free(ts->names);
    free(ts->h);
    free(ts->in_norm);
    free(ts->sg_norm);
    free(ts->pack);
    free(ts->maxes);
    free(ts->kept);
    cz_jacnorm_free(ts->jn);
    cz_fixed_free(&ts->sums);
}

void cz_tau_set_reset(cz_tau_set *ts)
{
    for (int f = 0; f < ts->nf; f++) cz_hist_reset(&ts->h[f]);
}

int cz_tau_set_collect(cz_tau_set *ts, cz_workspace *ws, const float *params, int n_hidden, size_t nb,
                       int jacobian, cz_error *err)
{
    int rc = cz_engine_sample_norms(ws, params, ts->in_norm, ts->sg_norm, err);
    if (rc) return rc;
    for (size_t b = 0; b < nb; b++) {
        cz_hist_add(&ts->h[CZ_TAU_INPUT], ts->in_norm[b]);
        cz_hist_add(&ts->h[CZ_TAU_SAMPLE], ts->sg_norm[b]);
    }
    for (int l = 1; jacobian && l <= n_hidden; l++) {
        const double *sq = cz_engine_jacobian_sqnorm(ws, l);
        for (size_t b = 0; sq && b < nb; b++) cz_hist_add(&ts->h[CZ_TAU_JACOBIAN + l - 1], sqrt(sq[b]));
    }
    return 0;
}

#define SAMPLE_DOMAIN 0x7461755f6a6163ULL /* "tau_jac": a counter no other key use takes */

int cz_tau_set_sampler_init(cz_tau_set *ts, const cz_model *m, cz_stream_mode width, double frac, cz_error *err)
{
    ts->frac = frac;
    cz_jacnorm_free(ts->jn);
    return (ts->jn = cz_jacnorm_new(m, width, err)) ? 0 : err->code;
}

int cz_tau_set_collect_sampled(cz_tau_set *ts, const cz_workspace *ws, const float *params, const uint64_t *keys,
                               size_t nb, cz_error *err)
{
    double sq[CZ_MAX_HIDDEN];
    int H = ts->nf - CZ_TAU_JACOBIAN;
    for (size_t b = 0; b < nb; b++) {
        if (ts->frac < 1 && cz_hash_uniform(keys[b], SAMPLE_DOMAIN) >= ts->frac) continue;
        int rc = cz_jacnorm_sample(ts->jn, ws, params, b, sq, err);
        if (rc) return rc;
        for (int l = 0; l < H; l++) cz_hist_add(&ts->h[CZ_TAU_JACOBIAN + l], sqrt(sq[l]));
    }
    return 0;
}

size_t cz_tau_set_kept_words(const cz_tau_set *ts) { return (size_t)ts->nf; }

int cz_tau_set_keep_init(cz_tau_set *ts, size_t cap, cz_error *err)
{
    size_t w = cz_tau_set_kept_words(ts);
    free(ts->kept);
    ts->n_kept = ts->keep_cap = 0;
    if (cap > SIZE_MAX / 8 / w || !(ts->kept = malloc((cap ? cap : 1) * w * 8)))
        return cz_error_set(err, CZ_ENOMEM, "out of memory for the per-sample norms (%zu samples)", cap);
    ts->keep_cap = cap;
    return 0;
}

int cz_tau_set_keep(cz_tau_set *ts, cz_workspace *ws, int n_hidden, const uint64_t *rows, size_t nb,
                    cz_error *err)
{
    size_t w = cz_tau_set_kept_words(ts);
    if (nb > ts->keep_cap - ts->n_kept)
        return cz_error_set(err, CZ_ERUNTIME, "internal: more samples than the %zu kept norms have room for",
                            ts->keep_cap);
    /* the values the histograms got, bit for bit; memcpy: doubles in uint64 words */
    for (size_t b = 0; b < nb; b++) {
        uint64_t *rec = ts->kept + (ts->n_kept + b) * w;
        double v[2] = {ts->in_norm[b], ts->sg_norm[b]};
        rec[0] = rows[b];
        memcpy(rec + 1, v, sizeof v);
    }
    for (int l = 1; l <= n_hidden; l++) {
        const double *sq = cz_engine_jacobian_sqnorm(ws, l);
        for (size_t b = 0; b < nb; b++) {
            double x = sq ? sqrt(sq[b]) : NAN;
            memcpy(ts->kept + (ts->n_kept + b) * w + 2 + l, &x, sizeof x);
        }
    }
    ts->n_kept += nb;
    return 0;
}

int cz_tau_set_merge(cz_tau_set *ts, const cz_dist *d, cz_error *err)
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
