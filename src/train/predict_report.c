/* chainz predict's summary: the table on stdout and the JSON for scripts. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chainz/atomic.h"
#include "chainz/infer.h"
#include "predict_internal.h"
#include "report.h"

/* the length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong forms, no
 * surrogates, at most U+10FFFF), or 0 */
static int utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    int n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] > 0x8f))
        return 0;
    return n;
}

/* paths are bytes: one that is not UTF-8 is written with U+FFFD, so the JSON stays valid */
static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        unsigned char c = *p;
        int n = c < 0x80 ? 1 : utf8_len(p);
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else if (n == 1) fputc(c, f);
        else if (n) fwrite(p, 1, (size_t)n, f);
        else fputs("\\ufffd", f);
        p += n ? n : 1;
    }
    fputc('"', f);
}

static const char *jnum(char *b, double v) { return cz_report_json_num(b, 32, v); }

static void print_table(const cz_predict_opts *o, const cz_dist *d, const cz_pred_file *p, size_t ref_epochs)
{
    printf("chainz predict: model %s on %s (%s%s%s, %zu rows; %d rank%s, kernels %s)\n", p->model, p->data,
           p->input, p->dataset[0] ? " " : "", p->dataset, p->n, d->size, d->size > 1 ? "s" : "", czi_blas_kernels());
    if (p->has_labels) {
        if (!isnan(p->accuracy)) printf("accuracy %.4f", p->accuracy);
        if (strcmp(p->head, "classify")) printf("%sMAE %.4f", isnan(p->accuracy) ? "" : "  ", p->mae);
        printf("  (against the labels of the data file)\n");
    }
    if (p->n_families) {
        printf("per-sample norms (no label needed):\n");
        printf("  %-10s %10s %11s %11s %11s %11s %11s %8s\n", "family", "count", "mean", "p50", "p90", "p99", "max",
               "tau");
        for (int f = 0; f < p->n_families; f++) {
            const cz_hist_summary *s = &p->fam[f].sum;
            printf("  %-10s %10.0f %11.4g %11.4g %11.4g %11.4g %11.4g %8.3f\n", p->fam[f].name, s->count, s->mean,
                   s->p50, s->p90, s->p99, s->max, s->tau);
        }
    }
    if (p->reference) {
        printf("drift against %s (its last epoch, %zu; flagged when a quantile ratio is beyond %gx either way and "
               "KS rejects: p < %g, D >= %g):\n", p->reference, ref_epochs, o->drift_threshold, o->drift_alpha,
               o->drift_d_min);
        printf("  %-10s %-18s %9s %9s %9s %8s %10s %s\n", "family", "reference", "p50 x", "p90 x", "p99 x", "KS D",
               "KS p", "flagged");
        for (int f = 0; f < p->n_families; f++) {
            const cz_pred_family *pf = &p->fam[f];
            if (!pf->compared) {
                /* the first clause here; the whole reason in the JSON and /drift/<family> */
                int len = (int)strcspn(pf->status, ";");
                printf("  %-10s %-18s %.*s\n", pf->name, pf->ref_family, len, pf->status);
                continue;
            }
            const cz_drift_result *r = &pf->drift;
            printf("  %-10s %-18s %9.3f %9.3f %9.3f %8.4f %10.3g %s\n", pf->name, pf->ref_family, r->ratio[0],
                   r->ratio[1], r->ratio[2], r->ks_d, r->ks_p,
                   r->flagged ? "YES" : r->moved ? "no (KS does not reject)" : r->ks_reject ? "no (quantiles within)" : "no");
        }
        printf("drift: %s\n", p->drift_flagged ? "FLAGGED" : "not flagged");
    }
    printf("predictions: %s (/label, %s/value%s)\n", o->out, p->K ? "/prob, " : "",
           p->n_families ? ", /norms/<family>" : "");
}

static int write_json(const cz_predict_opts *o, const cz_dist *d, const cz_pred_file *p, size_t ref_epochs,
                      cz_error *err)
{
    char *js = NULL, b[8][32];
    size_t len = 0;
    FILE *m = open_memstream(&js, &len);
    if (!m) return cz_error_set(err, CZ_ENOMEM, "out of memory");
    fputs("{\"model\": ", m);
    json_string(m, p->model);
    fputs(", \"data\": ", m);
    json_string(m, p->data);
    fprintf(m, ", \"input\": \"%s\", \"dataset\": ", p->input);
    json_string(m, p->dataset);
    fprintf(m, ", \"out\": ");
    json_string(m, o->out);
    fprintf(m, ", \"kernels\": \"%s\"", czi_blas_kernels());
    fprintf(m, ", \"ranks\": %d, \"samples\": %zu, \"head\": \"%s\", \"classes\": %d", d->size, p->n, p->head,
            p->classes);
    fprintf(m, ", \"accuracy\": %s, \"mae\": %s", p->has_labels ? jnum(b[0], p->accuracy) : "null",
            p->has_labels ? jnum(b[1], p->mae) : "null");
    fputs(", \"norms\": ", m);
    if (!p->n_families) fputs("null", m);
    for (int f = 0; f < p->n_families; f++) {
        const cz_hist_summary *s = &p->fam[f].sum;
        fprintf(m, "%s\"%s\": {\"count\": %.0f, \"mean\": %s, \"p50\": %s, \"p90\": %s, \"p99\": %s, \"max\": %s, "
                   "\"tau\": %s}", f ? ", " : "{", p->fam[f].name, s->count, jnum(b[0], s->mean), jnum(b[1], s->p50),
                jnum(b[2], s->p90), jnum(b[3], s->p99), jnum(b[4], s->max), jnum(b[5], s->tau));
    }
    if (p->n_families) fputs("}", m);
    fputs(", \"drift\": ", m);
    if (!p->reference) fputs("null", m);
    else {
        fprintf(m, "{\"flagged\": %s, \"reference\": ", p->drift_flagged ? "true" : "false");
        json_string(m, p->reference);
        fprintf(m, ", \"reference_epoch\": %zu, \"threshold\": %s, \"alpha\": %s, \"d_min\": %s, \"families\": {",
                ref_epochs, jnum(b[0], p->drift_threshold), jnum(b[1], p->drift_alpha), jnum(b[2], p->drift_d_min));
        for (int f = 0; f < p->n_families; f++) {
            const cz_pred_family *pf = &p->fam[f];
            fprintf(m, "%s\"%s\": {\"reference_family\": \"%s\", \"compared\": %s", f ? ", " : "", pf->name,
                    pf->ref_family, pf->compared ? "true" : "false");
            if (!pf->compared) {
                fputs(", \"reason\": ", m);
                json_string(m, pf->status);
            } else {
                const cz_drift_result *r = &pf->drift;
                fprintf(m, ", \"ref_count\": %.0f, \"batch_count\": %.0f, \"ref_p50\": %s, \"ref_p90\": %s, "
                           "\"ref_p99\": %s, \"batch_p50\": %s, \"batch_p90\": %s, \"batch_p99\": %s",
                        r->n_ref, r->n_batch, jnum(b[0], r->ref_q[0]), jnum(b[1], r->ref_q[1]), jnum(b[2], r->ref_q[2]),
                        jnum(b[3], r->batch_q[0]), jnum(b[4], r->batch_q[1]), jnum(b[5], r->batch_q[2]));
                fprintf(m, ", \"ratio_p50\": %s, \"ratio_p90\": %s, \"ratio_p99\": %s, \"ks_d\": %s, \"ks_p\": %s, "
                           "\"moved\": %s, \"ks_reject\": %s, \"flagged\": %s",
                        jnum(b[0], r->ratio[0]), jnum(b[1], r->ratio[1]), jnum(b[2], r->ratio[2]), jnum(b[3], r->ks_d),
                        jnum(b[4], r->ks_p), r->moved ? "true" : "false", r->ks_reject ? "true" : "false",
                        r->flagged ? "true" : "false");
            }
            fputs("}", m);
        }
        fputs("}}", m);
    }
    fputs("}\n", m);
    int rc = 0;
    if (fclose(m) != 0 || !js) rc = cz_error_set(err, CZ_ENOMEM, "out of memory for the report");
    else rc = cz_write_text_atomic(o->json, js, err);
    free(js);
    return rc;
}

int cz_predict_report(const cz_predict_opts *o, const cz_dist *d, const cz_pred_file *p, size_t ref_epochs,
                      cz_error *err)
{
    print_table(o, d, p, ref_epochs);
    fflush(stdout);
    return o->json[0] ? write_json(o, d, p, ref_epochs, err) : 0;
}
