/* chainz predict (chainz/predict.h): the row split, the library calls, the gather, the
 * summaries and the drift comparison; predict_report.c prints and writes the JSON. */
#include "chainz/predict.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chainz/featsrc.h"
#include "chainz/hist.h"
#include "chainz/infer.h"
#include "chainz/metrics_read.h"
#include "chainz/predout.h"
#include "chainz/runstate.h"
#include "feed.h"
#include "predict_internal.h"

static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (!strcmp(a, b)) return 1;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int from_czi(cz_error *err, const czi_error *e)
{
    int code = e->code == -1 ? CZ_EINVAL : e->code == -3 ? CZ_ENOMEM : e->code == -2 ? CZ_EIO : CZ_ERUNTIME;
    return cz_error_set(err, code, "%s", e->message);
}

/* the directory of `path` into dir ("." for a bare name) */
static void parent_of(const char *path, char *dir, size_t len)
{
    snprintf(dir, len, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, len, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
}

/* which input or file of the model's run `path` is, or NULL: the data, the model, the
 * reference's metrics file, and when the checkpoint lives in RUN/checkpoints/, anything
 * there (the trainer rotates it) and RUN's own files */
static const char *input_named(const cz_predict_opts *o, const char *ckpt, const char *refm, const char *path)
{
    if (same_file(path, o->data)) return "the data file";
    if (same_file(path, ckpt) || same_file(path, o->model)) return "the model";
    if (o->reference[0] && (same_file(path, o->reference) || same_file(path, refm)))
        return "the --reference run's metrics file";
    char ckdir[4600], dir[4600], run_file[4700];
    parent_of(ckpt, ckdir, sizeof ckdir);
    const char *base = strrchr(ckdir, '/');
    if (strcmp(base ? base + 1 : ckdir, "checkpoints")) return NULL;
    parent_of(path, dir, sizeof dir);
    if (same_file(dir, ckdir)) return "in the model's checkpoint directory";
    parent_of(ckdir, dir, sizeof dir);
    static const char *const run_files[] = {CZ_METRICS_FILE, "config.json", "history.jsonl", "run.lock"};
    for (size_t i = 0; i < sizeof run_files / sizeof *run_files; i++) {
        snprintf(run_file, sizeof run_file, "%s/%s", dir, run_files[i]);
        if (same_file(path, run_file)) return "a file of the model's run";
    }
    return NULL;
}

/* --out, --json against each other and the inputs; before any work (rank 0's view, agreed) */
static int check_paths(const cz_predict_opts *o, const char *ckpt, cz_error *err)
{
    char refm[4200]; /* RUN_DIR/metrics.h5 when --reference names a directory */
    snprintf(refm, sizeof refm, "%s/%s", o->reference, CZ_METRICS_FILE);
    const char *what;
    int rc = cz_pred_check_path("--out", o->out, err);
    if (!rc && (what = input_named(o, ckpt, refm, o->out)))
        rc = cz_error_set(err, CZ_EINVAL, "--out %s is %s: refused (it would be overwritten)", o->out, what);
    if (!rc && o->json[0]) {
        rc = cz_pred_check_path("--json", o->json, err);
        if (!rc && same_file(o->json, o->out))
            rc = cz_error_set(err, CZ_EINVAL, "--json %s and --out %s are the same file: give two names", o->json,
                              o->out);
        else if (!rc && (what = input_named(o, ckpt, refm, o->json)))
            rc = cz_error_set(err, CZ_EINVAL, "--json %s is %s: refused", o->json, what);
    }
    return rc;
}

/* the string value of "key" in the run configuration chainz wrote (metrics.h5's config
 * attribute, one line of JSON without escapes in these values) into out; 0 when absent */
static int config_str(const char *config, const char *key, char *out, size_t len)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": \"", key);
    const char *p = config ? strstr(config, pat) : NULL;
    if (!p) return 0;
    p += strlen(pat);
    size_t n = strcspn(p, "\"");
    if (n >= len) return 0;
    memcpy(out, p, n);
    out[n] = 0;
    return 1;
}

/* The reference must be a run of the model's network: another network's norms (another
 * depth, width or head) would be compared layer by layer and flag, or clear, at random.
 * Checked on the run's configuration (its layers and head; d is not recorded there). */
static int check_reference_arch(const cz_metrics_data *md, const czi_info *mi, const char *ckpt, cz_error *err)
{
    char layers[512], head[32], mine[512] = "";
    for (int l = 0, w = 0; l < mi->n_hidden && w < (int)sizeof mine; l++)
        w += snprintf(mine + w, sizeof mine - (size_t)w, "%s%zu", l ? "," : "", mi->width[l]);
    const char *my_head = mi->head == CZI_HEAD_CLASSIFY ? "classify" : mi->head == CZI_HEAD_ORDINAL ? "ordinal"
                                                                                                     : "regress";
    if (config_str(md->config, "layers", layers, sizeof layers)) {
        /* the widths as numbers: "16, 12" is "16,12" */
        char norm[512] = "";
        int w = 0, bad = 0;
        for (const char *p = layers; *p && !bad && w < (int)sizeof norm;) {
            char *end;
            while (*p == ' ' || *p == ',') p++;
            if (!*p) break;
            unsigned long v = strtoul(p, &end, 10);
            if (end == p) bad = 1;
            else w += snprintf(norm + w, sizeof norm - (size_t)w, "%s%lu", w ? "," : "", v);
            p = end;
        }
        if (!bad && strcmp(norm, mine))
            return cz_error_set(err, CZ_EINVAL, "--reference %s is the run of a network with hidden layers %s, the "
                                "model %s has %s: its histograms are another network's norms (give the run that "
                                "trained this model)", md->path, norm, ckpt, mine);
    }
    if (config_str(md->config, "head", head, sizeof head) && strcmp(head, my_head))
        return cz_error_set(err, CZ_EINVAL, "--reference %s is the run of a %s network, the model %s is %s (give the "
                            "run that trained this model)", md->path, head, ckpt, my_head);
    return 0;
}

/* the reference run's histograms, compared family by family with the batch's (rank 0) */
static int drift_compare(const cz_predict_opts *o, const char *ckpt, const czi_info *mi, cz_pred_family *fam,
                         cz_hist *h, cz_metrics_data *md, int *flagged, cz_error *err)
{
    int rc = cz_metrics_load(o->reference, md, err);
    if (!rc) rc = check_reference_arch(md, mi, ckpt, err);
    if (rc) return rc;
    if (md->n_epochs == 0)
        return cz_error_set(err, CZ_EINVAL, "--reference %s: the metrics file has no epoch yet", md->path);
    if (md->n_bins != CZ_HIST_BINS)
        return cz_error_set(err, CZ_EINVAL, "--reference %s: histograms of %zu bins, this chainz bins into %d",
                            md->path, md->n_bins, CZ_HIST_BINS);
    double *edges = malloc((CZ_HIST_BINS + 1) * sizeof *edges);
    if (!edges) return cz_error_set(err, CZ_ENOMEM, "out of memory");
    cz_hist_edges(edges);
    for (int i = 0; i < md->n_families && !rc; i++)
        for (size_t b = 1; b <= CZ_HIST_BINS; b++)
            if (fabs(md->family[i].edges[b] - edges[b]) > 1e-9 * edges[b]) {
                rc = cz_error_set(err, CZ_EINVAL, "--reference %s: family %s's bin edges differ from this chainz's "
                                  "(edge %zu: %g, expected %g): the two cannot be binned alike", md->path,
                                  md->family[i].name, b, md->family[i].edges[b], edges[b]);
                break;
            }
    free(edges);
    if (rc) return rc;
    cz_drift_opts dopt = {.threshold = o->drift_threshold, .alpha = o->drift_alpha, .d_min = o->drift_d_min};
    size_t last = md->n_epochs - 1;
    *flagged = 0;
    for (int f = 0; f <= mi->n_hidden; f++) {
        cz_pred_family *pf = &fam[f];
        if (f == 0) { /* the input family: a different quantity from training's input_grad */
            pf->ref_family = "input_grad";
            pf->status = mi->head == CZI_HEAD_REGRESS
                             ? "not compared: training's input_grad is the squared-error loss gradient (the "
                               "prediction's gradient scaled by the residual, which needs a label); this is the "
                               "prediction's own gradient"
                             : "not compared: training's input_grad is the loss gradient at the true label, this "
                               "one at the predicted label; they agree only on correctly predicted samples, so a "
                               "batch with more errors would move it without any change of the inputs";
            continue;
        }
        static char names[CZI_MAX_HIDDEN][32];
        snprintf(names[f - 1], sizeof names[f - 1], "jacobian/layer_%d", f);
        pf->ref_family = names[f - 1];
        int k = cz_metrics_family_index(md, names[f - 1]);
        if (k < 0) {
            pf->status = "not compared: the reference run has no histogram of this family (trained with "
                         "--no-tau, or a different depth)";
            continue;
        }
        cz_metrics_family *mf = &md->family[k];
        if (cz_drift_compare(mf->last_counts, mf->max[last], h[f].counts, h[f].max, &dopt, &pf->drift)) {
            pf->status = "not compared: the reference's last epoch has no samples of this family";
            continue;
        }
        pf->compared = 1;
        pf->status = "compared";
        *flagged |= pf->drift.flagged;
    }
    /* with no family compared, "not flagged" (status 0 under --fail-on-drift) would be a
     * verdict nothing supports */
    int compared = 0;
    for (int f = 1; f <= mi->n_hidden; f++) compared += fam[f].compared;
    if (!compared)
        return cz_error_set(err, CZ_EINVAL, "--reference %s: no layer family could be compared (layer_1: %s): no "
                            "drift verdict", md->path, mi->n_hidden ? fam[1].status : "the model has no hidden layer");
    return 0;
}

/* the columns of rank 0's gathered outputs, the summaries, accuracy, drift; writes and reports */
static int finish(const cz_predict_opts *o, const cz_dist *d, const char *ckpt, const czi_info *mi,
                  cz_featsrc *src, size_t n, size_t K, const int32_t *label, const float *prob, const float *value,
                  const double *normrec, int *flagged, cz_error *err)
{
    int F = o->norms ? 1 + mi->n_hidden : 0, rc = 0;
    const cz_featsrc_info *si = cz_featsrc_get_info(src);
    cz_pred_family fam[1 + CZI_MAX_HIDDEN];
    memset(fam, 0, sizeof fam);
    double *cols = F ? malloc(n * (size_t)F * sizeof *cols) : NULL;
    cz_hist *h = F ? calloc((size_t)F, sizeof *h) : NULL;
    static char meanings[CZI_MAX_HIDDEN][160];
    if (F && (!cols || !h)) return cz_error_set(err, CZ_ENOMEM, "out of memory for the norms of %zu rows", n);
    for (int f = 0; f < F; f++) {
        static char names[1 + CZI_MAX_HIDDEN][24];
        if (f == 0) snprintf(names[0], sizeof names[0], "input");
        else snprintf(names[f], sizeof names[f], "layer_%d", f);
        fam[f].name = names[f];
        if (f == 0)
            fam[f].meaning = mi->head == CZI_HEAD_REGRESS
                                 ? "||d f / dx||_2: the prediction's gradient with respect to the (standardized) input"
                                 : "||d q / dx||_2, q = the task loss with the predicted class as label: the input "
                                   "gradient training records as input_grad, at the predicted label";
        else {
            snprintf(meanings[f - 1], sizeof meanings[f - 1], "||S_%d||_F = ||dh_%d/dx||_F: hidden layer %d's "
                     "Jacobian with respect to the (standardized) input (training's jacobian/layer_%d)", f, f, f, f);
            fam[f].meaning = meanings[f - 1];
        }
        double *c = cols + (size_t)f * n;
        cz_hist_reset(&h[f]);
        for (size_t i = 0; i < n; i++) {
            c[i] = normrec[i * (size_t)F + (size_t)f];
            cz_hist_add(&h[f], c[i]);
        }
        fam[f].norm = c;
        cz_hist_summarize(&h[f], &fam[f].sum);
    }
    cz_pred_file pf = {.model = ckpt, .data = o->data, .input = cz_feat_kind_name(si->kind),
                       .dataset = si->dataset, .head = mi->head == CZI_HEAD_CLASSIFY ? "classify"
                                                       : mi->head == CZI_HEAD_ORDINAL ? "ordinal" : "regress",
                       .n = n, .K = K, .classes = mi->classes, .label = label, .prob = prob, .value = value,
                       .n_families = F, .fam = fam};
    const int32_t *yc = cz_featsrc_labels_class(src);
    const float *yv = cz_featsrc_labels_value(src);
    if (si->has_labels) { /* in row order: the same sums for any rank count */
        double correct = 0, abs_err = 0;
        for (size_t i = 0; i < n; i++) {
            if (yc) {
                correct += label[i] == yc[i];
                abs_err += fabs((double)label[i] - (double)yc[i]);
            } else
                abs_err += fabs((double)value[i] - (double)yv[i]);
        }
        pf.has_labels = 1;
        pf.accuracy = yc ? correct / (double)n : NAN;
        pf.mae = mi->head == CZI_HEAD_CLASSIFY ? NAN : abs_err / (double)n; /* no order among classes */
    }
    cz_metrics_data md;
    memset(&md, 0, sizeof md);
    if (o->reference[0]) {
        rc = drift_compare(o, ckpt, mi, fam, h, &md, flagged, err);
        pf.reference = md.path;
        pf.drift_threshold = o->drift_threshold;
        pf.drift_alpha = o->drift_alpha;
        pf.drift_d_min = o->drift_d_min;
        pf.drift_flagged = *flagged;
    }
    if (!rc) rc = cz_pred_write(o->out, &pf, err);
    if (!rc) rc = cz_predict_report(o, d, &pf, md.n_epochs, err);
    cz_metrics_data_free(&md);
    free(cols);
    free(h);
    return rc;
}

int cz_predict(const cz_predict_opts *o, const cz_dist *d, int *flagged, cz_error *err)
{
    *flagged = 0;
    char ckpt[4600] = "";
    czi_model *m = NULL;
    czi_session *s = NULL;
    cz_featsrc *src = NULL;
    czi_error ce = {0};
    int rc = cz_run_resolve_newest(o->model, ckpt, sizeof ckpt, NULL, err); /* the summary names it */
    if (!rc && d->rank == 0) rc = check_paths(o, ckpt, err);
    rc = cz_dist_agree(d, rc, err);
    if (!rc && !(m = czi_model_load(ckpt, &ce))) rc = from_czi(err, &ce);
    if (!rc) rc = cz_featsrc_open(&src, o->data, o->dataset, err);
    const czi_info *mi = m ? czi_model_info(m) : NULL;
    size_t n = 0, K = 0, dd = 0;
    if (!rc) {
        const cz_featsrc_info *si = cz_featsrc_get_info(src);
        n = si->n;
        dd = si->d;
        K = mi->head == CZI_HEAD_REGRESS ? 0 : (size_t)mi->classes;
        if (si->d != mi->d)
            rc = cz_error_set(err, CZ_EINVAL, "%s has d = %zu features per row but the model %s expects d = %zu",
                              o->data, si->d, ckpt, mi->d);
        else if (n == 0) rc = cz_error_set(err, CZ_EINVAL, "%s: no rows to predict", o->data);
        else if (si->has_labels && (mi->head == CZI_HEAD_REGRESS) != (si->task == CZ_HEAD_REGRESS))
            rc = cz_error_set(err, CZ_EINVAL, "%s is a %s set but the model %s predicts %s", o->data,
                              si->task == CZ_HEAD_REGRESS ? "regression" : "classification", ckpt,
                              mi->head == CZI_HEAD_REGRESS ? "values" : "classes");
        else if (si->has_labels && K && si->classes != mi->classes)
            rc = cz_error_set(err, CZ_EINVAL, "%s has %d classes but the model %s has %d", o->data, si->classes,
                              ckpt, mi->classes);
    }
    /* a --batch beyond N is one chunk of N rows: the same bytes, without buffers (and a
     * session) sized for rows that do not exist */
    size_t B = n && (size_t)o->batch > n ? n : (size_t)o->batch, C = n ? (n + B - 1) / B : 0, c0 = 0, c1 = 0;
    cz_chunk_share(C, d->rank, d->size, &c0, &c1);
    size_t r0 = c0 * B < n ? c0 * B : n, r1 = c1 * B < n ? c1 * B : n, nr = r1 - r0;
    int F = o->norms && mi ? 1 + mi->n_hidden : 0;
    /* this rank's outputs; its rows are read a band at a time */
    int32_t *label = NULL;
    float *prob = NULL, *value = NULL, *x = NULL;
    double *norms = NULL, *in_norm = NULL, *lay_norm = NULL;
    if (!rc) {
        czi_set_threads(o->threads);
        label = malloc((nr ? nr : 1) * sizeof *label);
        value = malloc((nr ? nr : 1) * sizeof *value);
        prob = K ? malloc((nr ? nr : 1) * K * sizeof *prob) : NULL;
        norms = F ? malloc((nr ? nr : 1) * (size_t)F * sizeof *norms) : NULL;
        in_norm = F ? malloc(B * sizeof *in_norm) : NULL;
        lay_norm = F > 1 ? malloc(B * (size_t)(F - 1) * sizeof *lay_norm) : NULL;
        x = malloc(B * dd * sizeof *x);
        if (!label || !value || (K && !prob) || (F && (!norms || !in_norm)) || (F > 1 && !lay_norm) || !x)
            rc = cz_error_set(err, CZ_ENOMEM, "out of memory for %zu rows of predictions", nr);
    }
    if (!rc && !(s = czi_session_new(m, B, F ? CZI_NORMS : CZI_PREDICT_ONLY, &ce))) rc = from_czi(err, &ce);
    for (size_t c = c0; !rc && c < c1; c++) {
        size_t b0 = c * B, nb = n - b0 < B ? n - b0 : B, loc = b0 - r0;
        rc = cz_featsrc_read(src, b0, nb, x, err);
        czi_outputs out = {.label = label + loc, .prob = K ? prob + loc * K : NULL, .value = value + loc,
                           .input_norm = in_norm, .layer_norm = lay_norm};
        if (!rc && czi_predict(s, x, nb, &out, &ce)) {
            /* the library names the row of its batch; the user needs the row of the file */
            rc = from_czi(err, &ce);
            cz_error_set(err, rc, "%s: rows %zu..%zu (from 0): %.900s", o->data, b0, b0 + nb - 1, ce.message);
        }
        for (size_t i = 0; !rc && F && i < nb; i++) {
            double *rec = norms + (loc + i) * (size_t)F;
            rec[0] = in_norm[i];
            for (int l = 1; l < F; l++) rec[l] = lay_norm[i * (size_t)(F - 1) + (size_t)(l - 1)];
        }
    }
    free(x);
    x = NULL;
    rc = cz_dist_agree(d, rc, err);
    /* gathered to rank 0 in rank order, which is row order: the shares are contiguous */
    int32_t *g_label = NULL;
    float *g_prob = NULL, *g_value = NULL;
    double *g_norms = NULL;
    if (!rc && d->rank == 0) {
        g_label = malloc(n * sizeof *g_label);
        g_value = malloc(n * sizeof *g_value);
        g_prob = K ? malloc(n * K * sizeof *g_prob) : NULL;
        g_norms = F ? malloc(n * (size_t)F * sizeof *g_norms) : NULL;
        if (!g_label || !g_value || (K && !g_prob) || (F && !g_norms))
            rc = cz_error_set(err, CZ_ENOMEM, "out of memory for the %zu rows' predictions on rank 0", n);
    }
    rc = cz_dist_agree(d, rc, err);
    size_t total = 0;
    if (!rc) rc = cz_dist_gather(d, label, nr, sizeof *label, g_label, n, &total, err);
    if (!rc) rc = cz_dist_gather(d, value, nr, sizeof *value, g_value, n, &total, err);
    if (!rc && K) rc = cz_dist_gather(d, prob, nr, K * sizeof *prob, g_prob, n, &total, err);
    if (!rc && F) rc = cz_dist_gather(d, norms, nr, (size_t)F * sizeof *norms, g_norms, n, &total, err);
    if (!rc && total != n) rc = cz_error_set(err, CZ_ERUNTIME, "internal: %zu rows gathered of %zu", total, n);
    if (!rc && d->rank == 0)
        rc = finish(o, d, ckpt, mi, src, n, K, g_label, g_prob, g_value, g_norms, flagged, err);
    rc = cz_dist_agree(d, rc, err);
    /* every rank returns the same verdict */
    if (!rc) {
        int fl = *flagged;
        rc = cz_dist_max_int(d, &fl, 1, err);
        *flagged = fl;
    }
    free(g_label);
    free(g_value);
    free(g_prob);
    free(g_norms);
    free(label);
    free(value);
    free(prob);
    free(norms);
    free(in_norm);
    free(lay_norm);
    czi_session_free(s);
    czi_model_free(m);
    cz_featsrc_close(src);
    return rc;
}
