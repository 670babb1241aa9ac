/* chainz eval and the evaluation pass (eval.h): a checkpoint on a data set, loss,
 * accuracy, per-class accuracy, confusion, and optionally the gradient-norm statistics. */
#include "eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chainz/atomic.h"
#include "chainz/budget.h"
#include "chainz/checkpoint.h"
#include "chainz/data.h"
#include "chainz/norms.h"
#include "chainz/runstate.h"
#include "chainz/train.h"
#include "node.h"
#include "report.h"
#include "share.h"

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

/* 1 when a and b name the same existing file */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* --tau-out: every rank's kept norms (records of row + one double per per-sample family, in
 * chunk order) gathered to rank 0, placed by their row, checked to cover every row of the
 * file exactly once, and written there. Collective. */
static int write_norms(const cz_eval_opts *o, const cz_dist *d, const cz_tau_set *ts, const cz_data *ds,
                       const char *ckpt, size_t n, cz_error *err)
{
    size_t W = cz_tau_set_kept_words(ts), F = W - 1;
    uint64_t *recs = NULL, *row = NULL;
    double *norm = NULL;
    unsigned char *seen = NULL;
    int32_t *lab_c = NULL;
    float *lab_v = NULL;
    const int32_t *yc = cz_data_labels_class(ds);
    const float *yv = cz_data_labels_value(ds);
    int rc = 0;
    if (d->rank == 0) { /* n x W words each for the records and the placed columns */
        recs = malloc((n ? n : 1) * W * 8);
        row = malloc((n ? n : 1) * sizeof *row);
        norm = malloc((n ? n : 1) * F * sizeof *norm);
        seen = calloc(n ? n : 1, 1);
        if (yc) lab_c = malloc((n ? n : 1) * sizeof *lab_c);
        else lab_v = malloc((n ? n : 1) * sizeof *lab_v);
        if (!recs || !row || !norm || !seen || (!lab_c && !lab_v))
            rc = cz_error_set(err, CZ_ENOMEM, "out of memory for the per-sample norms of %zu samples", n);
    }
    rc = cz_dist_agree(d, rc, err); /* before the collective: no rank may be left waiting in it */
    size_t total = 0;
    if (!rc) rc = cz_dist_gather(d, ts->kept, ts->n_kept, W * 8, recs, n, &total, err);
    if (!rc && d->rank == 0) {
        if (total != n) rc = cz_error_set(err, CZ_ERUNTIME, "internal: %zu norms gathered for %zu samples", total, n);
        for (size_t k = 0; !rc && k < n; k++) {
            const uint64_t *rec = recs + k * W;
            uint64_t r = rec[0];
            if (r >= n || seen[r]) {
                rc = cz_error_set(err, CZ_ERUNTIME, "internal: row %llu gathered %s", (unsigned long long)r,
                                  r >= n ? "out of range" : "twice");
                break;
            }
            seen[r] = 1;
            row[r] = r;
            for (size_t f = 0; f < F; f++) memcpy(norm + f * n + r, rec + 1 + f, sizeof(double));
            if (lab_c) lab_c[r] = yc[r];
            else lab_v[r] = yv[r];
        }
    }
    if (!rc && d->rank == 0) {
        const char **fam = calloc(F, sizeof *fam), **meaning = calloc(F, sizeof *meaning);
        const double **cols = calloc(F, sizeof *cols);
        char (*jm)[160] = calloc(F, sizeof *jm);
        if (!fam || !meaning || !cols || !jm) rc = cz_error_set(err, CZ_ENOMEM, "out of memory");
        /* record word 1 + f is family f of the set without the parameter family */
        for (int i = 0, f = 0; !rc && i < ts->nf; i++) {
            if (i == CZ_TAU_PARAM) continue;
            fam[f] = ts->names[i];
            cols[f] = norm + (size_t)f * n;
            if (i == CZ_TAU_INPUT)
                meaning[f] = "||grad_x task loss||_2 = ||S_o^T dloss/df||_2: the task loss's gradient with respect "
                          "to the (standardized) input";
            else if (i == CZ_TAU_SAMPLE)
                meaning[f] = "||grad_theta task loss||_2: the task loss's gradient with respect to every parameter, "
                          "this sample alone (DREG excluded)";
            else {
                snprintf(jm[f], sizeof jm[f], "||S_%d||_F: Frobenius norm of hidden layer %d's Jacobian with "
                         "respect to the input (what DREG penalizes)", i - CZ_TAU_JACOBIAN + 1,
                         i - CZ_TAU_JACOBIAN + 1);
                meaning[f] = jm[f];
            }
            f++;
        }
        cz_norms nm = {.checkpoint = ckpt, .data = o->data, .task = cz_head_name(cz_data_get_info(ds)->task),
                       .n = n, .row = row, .label_class = lab_c, .label_value = lab_v, .n_families = (int)F,
                       .family = fam, .meaning = meaning, .norm = cols};
        if (!rc) rc = cz_norms_write(o->tau_out, &nm, err);
        free(fam);
        free(meaning);
        free(cols);
        free(jm);
    }
    free(recs);
    free(row);
    free(norm);
    free(seen);
    free(lab_c);
    free(lab_v);
    return cz_dist_agree(d, rc, err);
}

/* Sums are exact whatever the world size: per chunk, then in chunk order. */
int cz_eval_pass(const cz_dist *d, cz_workspace *ws, const cz_model *m, const float *params, cz_feed *io,
                 const uint64_t *rows, size_t n, size_t M, cz_eval_result *res, cz_tau_set *tau, float *grad,
                 cz_error *err)
{
    size_t K = m->spec.head == CZ_HEAD_REGRESS ? 0 : (size_t)m->spec.classes;
    size_t C = (n + M - 1) / M, c0, c1;
    int32_t *pred = malloc(M * sizeof(int32_t));
    double *per_chunk = calloc(C * CZ_SC_N + 1, sizeof(double)), sc[CZ_SC_N] = {0};
    if (res->confusion) memset(res->confusion, 0, K * K * sizeof(uint64_t));
    /* a local failure still reaches the agreement below: no rank may skip a collective */
    int rc = pred && per_chunk ? 0 : cz_error_set(err, CZ_ENOMEM, "out of memory");
    cz_chunk_share(C, d->rank, d->size, &c0, &c1);
    cz_step_opts opts = {.stream = tau != NULL};
    for (size_t c = c0; c < c1 && !rc; c++) {
        size_t b0 = c * M, nb = n - b0 < M ? n - b0 : M;
        memcpy(io->rows, rows + b0, nb * sizeof(uint64_t));
        cz_step_sums sums;
        rc = cz_feed_load(io, nb, err);
        if (!rc) rc = cz_engine_step(ws, params, io->x, io->yc, io->yv, NULL, nb, &opts,
                                     tau ? grad : NULL, &sums, err);
        if (!rc && tau) rc = cz_tau_set_collect(tau, ws, params, m->n_hidden, nb, 1, err);
        if (!rc && tau && tau->keep_cap) rc = cz_tau_set_keep(tau, ws, m->n_hidden, io->rows, nb, err);
        if (rc) break;
        cz_loss_sums ls = {0};
        cz_loss_eval(NULL, NULL, pred, &ls, m, cz_engine_outputs(ws), io->yc, io->yv, nb);
        double v[CZ_SC_N] = {ls.loss, 0, ls.correct, ls.abs_err};
        memcpy(per_chunk + c * CZ_SC_N, v, sizeof v);
        if (res->confusion)
            for (size_t b = 0; b < nb; b++) {
                int32_t p = pred[b] < 0 ? 0 : pred[b] >= (int32_t)K ? (int32_t)K - 1 : pred[b];
                res->confusion[(size_t)io->yc[b] * K + (size_t)p]++;
            }
    }
    rc = cz_dist_agree(d, rc, err);
    if (!rc) rc = cz_feed_sum_scalars(d, per_chunk, C, sc, err);
    if (!rc && tau) rc = cz_tau_set_merge(tau, d, err);
    if (!rc && res->confusion) rc = cz_dist_sum_u64(d, res->confusion, K * K, err);
    if (!rc && !isfinite(sc[CZ_SC_LOSS])) rc = cz_error_set(err, CZ_ERUNTIME, "evaluation produced a non-finite loss");
    if (!rc) {
        res->samples = (double)n;
        res->loss = sc[CZ_SC_LOSS] / (double)n;
        res->acc = sc[CZ_SC_CORRECT] / (double)n;
        res->mae = sc[CZ_SC_ABSERR] / (double)n;
    }
    free(pred);
    free(per_chunk);
    return rc;
}

/* chainz eval (chainz/train.h): checks as for training (node, memory), then one pass; rank 0
 * prints the report and writes the JSON one. */
int cz_eval(const cz_eval_opts *o, const cz_dist *d, cz_error *err)
{
    size_t mem_limit = 0;
    char mem_source[160] = "";
    int nrc = cz_node_check(d, o->threads, o->max_memory, &mem_limit, mem_source, sizeof mem_source, err);
    if (nrc) return nrc;
    cz_engine_set_threads(o->threads);
    cz_checkpoint c;
    memset(&c, 0, sizeof c);
    cz_data *ds = NULL;
    cz_workspace *ws = NULL;
    cz_feed io;
    memset(&io, 0, sizeof io);
    uint64_t *rows = NULL, *conf = NULL;
    char path[4600];
    /* a run directory: its newest checkpoint that verifies, whatever `latest` says */
    int rc = cz_run_resolve_newest(o->model, path, sizeof path, d->rank == 0 ? stdout : NULL, err);
    if (!rc) rc = cz_ckpt_load(path, &c, err);
    if (!rc && o->tau_out[0] && d->rank == 0) { /* before any work; rank 0 writes it */
        rc = cz_norms_check_path(o->tau_out, err);
        if (!rc && (same_file(o->tau_out, o->data) || same_file(o->tau_out, path)))
            rc = cz_error_set(err, CZ_EINVAL, "--tau-out %s is the %s: refused", o->tau_out,
                              same_file(o->tau_out, o->data) ? "data file" : "checkpoint");
        if (!rc && o->json[0] && (!strcmp(o->json, o->tau_out) || same_file(o->json, o->tau_out)))
            rc = cz_error_set(err, CZ_EINVAL, "--json %s and --tau-out %s are the same file: give two names",
                              o->json, o->tau_out);
    }
    if (!rc && o->json[0] && d->rank == 0 && (same_file(o->json, o->data) || same_file(o->json, path)))
        rc = cz_error_set(err, CZ_EINVAL, "--json %s is the %s: refused", o->json,
                          same_file(o->json, o->data) ? "data file" : "checkpoint");
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
    /* only the Jacobian statistics need a stream: exact norms, at the narrower of d and n_1 */
    cz_stream_spec ss = {.mode = CZ_STREAM_NONE};
    if (!rc && o->tau) ss.mode = c.model.layer[0].n_out < c.model.spec.d ? CZ_STREAM_GRAM : CZ_STREAM_EXACT;
    cz_mem_estimate me = {0};
    cz_share share = {0};
    if (!rc) { /* before the workspace, whose size follows from untrusted sizes */
        cz_mem_request mr = {.m = &c.model, .micro_batch = M, .rows = cz_data_get_info(ds)->n,
                             .opt_moments = c.opt_len / (c.model.n_params ? c.model.n_params : 1), .tau = o->tau,
                             .tau_norms = o->tau_out[0] != 0,
                             .confusion = c.model.spec.head == CZ_HEAD_REGRESS ? 0 : (size_t)c.model.spec.classes,
                             .stream = ss};
        cz_mem_estimate_run(&mr, &me);
        rc = cz_mem_check(&me, mem_limit, mem_source, err);
    }
    /* a chunked file: loaded once per node, as for training (share.h); collective */
    rc = cz_dist_agree(d, rc, err);
    if (!rc) rc = cz_share_features(d, ds, me.total, mem_limit, mem_source, &share, err);
    if (!rc && !(ws = cz_workspace_new_stream(&c.model, M, &ss, err))) rc = err->code;
    if (!rc) rc = cz_feed_init(&io, ds, M, c.mean, c.std, err);
    io.clip = (float)c.clip_z; /* as in training */
    size_t n = rc ? 0 : cz_data_get_info(ds)->n;
    size_t K = c.model.spec.head == CZ_HEAD_REGRESS ? 0 : (size_t)c.model.spec.classes;
    if (!rc) {
        rows = malloc(n * sizeof(uint64_t));
        conf = calloc(K * K + 1, sizeof(uint64_t));
        if (!rows || !conf) rc = cz_error_set(err, CZ_ENOMEM, "out of memory");
        for (size_t i = 0; !rc && i < n; i++) rows[i] = i;
    }
    cz_tau_set ts;
    memset(&ts, 0, sizeof ts);
    float *grad = NULL;
    if (!rc && o->tau) {
        rc = cz_tau_set_init(&ts, c.model.n_hidden, M, 0, err);
        if (!rc && o->tau_out[0]) { /* room for the rows of this rank's chunks */
            size_t c0, c1, C = (n + M - 1) / M;
            cz_chunk_share(C, d->rank, d->size, &c0, &c1);
            size_t r0 = c0 * M < n ? c0 * M : n, r1 = c1 * M < n ? c1 * M : n;
            rc = cz_tau_set_keep_init(&ts, r1 - r0, err);
        }
        if (!rc && !(grad = malloc(c.model.n_params * sizeof(float))))
            rc = cz_error_set(err, CZ_ENOMEM, "out of memory");
    }
    rc = cz_dist_agree(d, rc, err);
    cz_eval_result r = {.confusion = K ? conf : NULL};
    if (!rc) rc = cz_eval_pass(d, ws, &c.model, c.params, &io, rows, n, M, &r, o->tau ? &ts : NULL, grad, err);
    if (!rc && o->tau_out[0]) rc = write_norms(o, d, &ts, ds, path, n, err);
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
                if (f == CZ_TAU_PARAM) continue; /* a per-step statistic: training only */
                cz_hist_summary hs;
                cz_hist_summarize(&ts.h[f], &hs);
                printf("  %-20s %10.0f %11.4g %11.4g %11.4g %11.4g %11.4g %8.3f\n", ts.names[f], hs.count,
                       hs.mean, hs.p50, hs.p90, hs.p99, hs.max, hs.tau);
            }
        }
        if (o->tau_out[0])
            printf("per-sample norms: %s (%zu samples; /row, /label, /norms/<family>)\n", o->tau_out, n);
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
                        n, cz_report_json_num(j[0], 32, r.loss), cz_report_json_num(j[1], 32, r.acc),
                        cz_report_json_num(j[2], 32, r.mae));
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
                        if (f == CZ_TAU_PARAM) continue;
                        cz_hist_summary hs;
                        cz_hist_summarize(&ts.h[f], &hs);
                        fprintf(m, "%s\"%s\": {\"count\": %.0f, \"mean\": %s, \"p50\": %s, \"p90\": %s, "
                                   "\"p99\": %s, \"max\": %s, \"tau\": %s}",
                                first ? "" : ", ", ts.names[f], hs.count, cz_report_json_num(j[0], 32, hs.mean),
                                cz_report_json_num(j[1], 32, hs.p50), cz_report_json_num(j[2], 32, hs.p90),
                                cz_report_json_num(j[3], 32, hs.p99), cz_report_json_num(j[4], 32, hs.max),
                                cz_report_json_num(j[5], 32, hs.tau));
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
    cz_tau_set_free(&ts);
    free(grad);
    free(rows);
    free(conf);
    cz_feed_free(&io);
    cz_workspace_free(ws);
    cz_data_close(ds);
    cz_share_free(&share);
    cz_ckpt_free(&c);
    return rc;
}
