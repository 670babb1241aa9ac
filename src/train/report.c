/* Progress lines, history.jsonl, metrics rows and epoch summaries of training (report.h). */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chainz/atomic.h"
#include "chainz/runstate.h"

const char *cz_report_json_num(char *buf, size_t len, double v)
{
    if (isfinite(v)) snprintf(buf, len, "%.9g", v);
    else snprintf(buf, len, "null");
    return buf;
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

void cz_progress_show(cz_progress *p, long epoch, size_t s, double samples, double loss, double dreg,
                      double seen, int force)
{
    if (p->rank != 0) return;
    double now = cz_dist_time(), el = now - p->t0, rate = samples / (el > 0 ? el : 1e-9);
    double left = (double)p->steps_per_epoch * p->epochs - (double)(epoch * (long)p->steps_per_epoch) - (double)s;
    double sps = (double)(epoch * (long)p->steps_per_epoch + (long)s) / (el > 0 ? el : 1e-9);
    char eta[32];
    fmt_eta(eta, sizeof eta, sps > 0 ? left / sps : -1);
    double L = seen > 0 ? loss / seen : 0, D = seen > 0 ? dreg / seen : 0;
    if (p->tty) {
        if (!force && now - p->last_log < 0.1) return; /* redraw at most 10 times a second */
        p->last_log = now;
        fprintf(stderr, "\repoch %ld/%d step %zu/%zu %8.0f samples/s loss %.4f dreg %.4g ETA %s   ",
                epoch + 1, p->epochs, s, p->steps_per_epoch, rate, L, D, eta);
        fflush(stderr);
    } else if (force || now - p->last_log >= p->log_seconds) {
        char ts[32];
        utc_now(ts, sizeof ts);
        printf("[%s] epoch %ld/%d step %zu/%zu %.0f samples/s loss %.4f dreg %.4g ETA %s\n", ts,
               epoch + 1, p->epochs, s, p->steps_per_epoch, rate, L, D, eta);
        fflush(stdout);
        p->last_log = now;
    }
}

void cz_progress_end_epoch(const cz_progress *p)
{
    if (p->tty && p->rank == 0) fputc('\n', stderr);
}

void cz_report_history_line(char *line, size_t len, const double row[CZ_HISTORY_FIELDS])
{
    char j[8][32]; /* JSON numbers: null, never nan or inf (no validation: NaN, so null) */
    snprintf(line, len,
             "{\"epoch\": %ld, \"step\": %ld, \"train_loss\": %s, \"dreg\": %s, \"lambda\": %s, \"lr\": %s, "
             "\"train_acc\": %s, \"val_loss\": %s, \"val_acc\": %s, \"val_mae\": %s, \"seconds\": %.3f}\n",
             (long)row[0], (long)row[1], cz_report_json_num(j[0], 32, row[2]), cz_report_json_num(j[1], 32, row[3]),
             cz_report_json_num(j[2], 32, row[4]), cz_report_json_num(j[3], 32, row[5]),
             cz_report_json_num(j[4], 32, row[6]), cz_report_json_num(j[5], 32, row[7]),
             cz_report_json_num(j[6], 32, row[8]), cz_report_json_num(j[7], 32, row[9]), row[10]);
}

int cz_report_rebuild_history(const char *path, long epochs, const cz_metrics *mx, const char *why,
                              cz_error *err)
{
    /* the intact lines stay: only the epochs the damage took are taken from metrics.h5 */
    size_t ne = (size_t)(epochs > 0 ? epochs : 1);
    double *kept_rows = malloc(ne * CZ_HISTORY_FIELDS * sizeof(double));
    unsigned char *have = calloc(ne, 1);
    if (!kept_rows || !have) {
        free(kept_rows);
        free(have);
        return cz_error_set(err, CZ_ENOMEM, "out of memory");
    }
    long n_kept = cz_run_read_history(path, epochs, kept_rows, have, err);
    if (n_kept < 0) {
        free(kept_rows);
        free(have);
        return (int)n_kept;
    }
    /* the damaged file is kept: renamed, never deleted (a second damage gets .damaged.2 ...) */
    char kept[4400] = "";
    struct stat sb;
    int rc = 0;
    if (lstat(path, &sb) == 0) {
        snprintf(kept, sizeof kept, "%s.damaged", path);
        for (int i = 2; lstat(kept, &sb) == 0 && i < 1000; i++) snprintf(kept, sizeof kept, "%s.damaged.%d", path, i);
        if (rename(path, kept))
            rc = cz_error_set(err, CZ_EIO, "%s (%s): cannot rename it to %s: %s", path, why, kept, strerror(errno));
    }
    size_t cap = ne * 400 + 1, w = 0;
    char *text = rc ? NULL : malloc(cap), missing[256] = "";
    if (!rc && !text) rc = cz_error_set(err, CZ_ENOMEM, "out of memory");
    if (text) text[0] = 0;
    long n_missing = 0, found = 0;
    for (long ep = 1; !rc && ep <= epochs; ep++) {
        const double *row = have[ep - 1] ? kept_rows + (size_t)(ep - 1) * CZ_HISTORY_FIELDS : NULL;
        for (long i = 0; !row && mx && cz_metrics_row(mx, i); i++)
            if ((long)cz_metrics_row(mx, i)[0] == ep) row = cz_metrics_row(mx, i);
        if (row) {
            char line[1024];
            cz_report_history_line(line, sizeof line, row);
            size_t l = strlen(line);
            if (w + l + 1 > cap) {
                char *t = realloc(text, cap = 2 * (w + l + 1));
                if (!t) {
                    rc = cz_error_set(err, CZ_ENOMEM, "out of memory");
                    break;
                }
                text = t;
            }
            memcpy(text + w, line, l + 1);
            w += l;
            found += !have[ep - 1];
        } else {
            size_t m = strlen(missing);
            if (n_missing++ < 20) snprintf(missing + m, sizeof missing - m, "%s%ld", m ? "," : "", ep);
        }
    }
    if (!rc) rc = cz_write_text_atomic(path, text, err);
    free(text);
    free(kept_rows);
    free(have);
    if (rc) return rc;
    printf("chainz: warning: %s: %s; %s%s; %ld of the %ld epoch lines kept as they were, %ld rebuilt from "
           "metrics.h5\n", path, why, kept[0] ? "the damaged file is kept as " : "no file to keep", kept, n_kept,
           epochs, found);
    if (n_missing)
        printf("chainz: warning: %s: neither it nor metrics.h5 has a row for epoch%s %s%s: history.jsonl lacks %s\n",
               path, n_missing > 1 ? "s" : "", missing, n_missing > 20 ? ",..." : "", n_missing > 1 ? "them" : "it");
    fflush(stdout);
    return 0;
}

int cz_report_epoch(const cz_epoch_report *e, FILE *hist, const char *hist_path, cz_metrics *mx,
                    cz_error *err)
{
    const double *sums = e->sums;
    double seen = sums[4];
    int lrc = 0;
    double row[CZ_HISTORY_FIELDS] = {(double)(e->epoch + 1), (double)e->step, sums[0] / seen,
                                     sums[1] / seen, e->lambda, e->lr, sums[2] / seen,
                                     e->has_val ? e->val_loss : NAN, e->has_val ? e->val_acc : NAN,
                                     e->has_val ? e->val_mae : NAN, e->secs};
    char line[1024];
    cz_report_history_line(line, sizeof line, row);
    if (fputs(line, hist) < 0 || fflush(hist) || fsync(fileno(hist)))
        lrc = cz_error_set(err, CZ_EIO, "%s: cannot append: %s", hist_path, strerror(errno));
    if (!lrc) lrc = cz_metrics_append(mx, row, e->tau ? e->tau->h : NULL, err);
    char ts[32];
    utc_now(ts, sizeof ts);
    printf("[%s] epoch %ld/%d done: train loss %.4f dreg %.4g acc %.4f", ts, e->epoch + 1,
           e->epochs, sums[0] / seen, sums[1] / seen, sums[2] / seen);
    if (e->has_val) printf(" | val loss %.4f acc %.4f mae %.4f", e->val_loss, e->val_acc, e->val_mae);
    printf(" | lambda %.3g lr %.3g | %.1f s\n", e->lambda, e->lr, e->secs);
    if (e->tau) {
        const cz_tau_set *tau = e->tau;
        cz_hist_summary is;
        cz_hist_summarize(&tau->h[CZ_TAU_INPUT], &is);
        printf("    tau: input_grad %.3g", is.tau);
        for (int f = CZ_TAU_PARAM; f < tau->nf; f++) {
            cz_hist_summarize(&tau->h[f], &is);
            printf(" | %s %.3g", tau->names[f], is.tau);
        }
        printf("\n");
    }
    fflush(stdout);
    return lrc;
}

int cz_report_rows_read(const cz_dist *d, uint64_t rows_read, long steps, cz_error *err)
{
    uint64_t *share = calloc((size_t)d->size, sizeof(uint64_t));
    int rc = share ? 0 : cz_error_set(err, CZ_ENOMEM, "out of memory");
    if (!rc) share[d->rank] = rows_read;
    rc = cz_dist_agree(d, rc, err);
    if (!rc) rc = cz_dist_sum_u64(d, share, (size_t)d->size, err);
    if (!rc && d->rank == 0) {
        uint64_t total = 0;
        printf("chainz: training rows read per rank:");
        for (int r = 0; r < d->size; r++) {
            printf(" %llu", (unsigned long long)share[r]);
            total += share[r];
        }
        printf(" (total %llu over %ld steps)\n", (unsigned long long)total, steps);
    }
    free(share);
    return rc;
}
