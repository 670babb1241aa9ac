/* `chainz tau`: the aligned text tables (tau_internal.h): one run per epoch, several runs
 * side by side with a summary. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tau_internal.h"

void cz_tau_copy(char *dst, size_t len, const char *src)
{
    size_t l = strlen(src);
    if (l >= len) l = len - 1;
    memcpy(dst, src, l);
    dst[l] = 0;
}

const cz_metrics_family *cz_tau_fam_of(const cz_tau_view *v, int s, int r)
{
    int j = v->fam[s * v->n_runs + r];
    return j < 0 ? NULL : &v->run[r].family[j];
}

static int has_finite(const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i])) return 1;
    return 0;
}

/* The accuracy shown for a run: on validation if it had any, else on training; a
 * regression run without accuracies shows val_mae. */
static const double *acc_of(const cz_metrics_data *d, const char **name)
{
    if (has_finite(d->val_acc, d->n_epochs)) return *name = "val_acc", d->val_acc;
    if (has_finite(d->train_acc, d->n_epochs)) return *name = "train_acc", d->train_acc;
    if (has_finite(d->val_mae, d->n_epochs)) return *name = "val_mae", d->val_mae;
    return *name = "val_acc", d->val_acc;
}

/* ---- aligned text tables ---- */

typedef struct {
    size_t ncols, nrows, cap;
    char (*cell)[CELL];      /* [nrows * ncols] */
    char (*head)[CELL];      /* [ncols] */
    char (*group)[NAME];     /* [ncols]: label of the column group starting here */
    unsigned char *starts;   /* [ncols]: a group starts here (wider gap before it) */
    unsigned char *left;     /* [ncols]: left-aligned (names), else right (numbers) */
} table;

static void table_free(table *t)
{
    free(t->cell);
    free(t->head);
    free(t->group);
    free(t->starts);
    free(t->left);
    memset(t, 0, sizeof *t);
}

static int table_init(table *t, size_t ncols)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    t->head = calloc(ncols, sizeof *t->head);
    t->group = calloc(ncols, sizeof *t->group);
    t->starts = calloc(ncols, 1);
    t->left = calloc(ncols, 1);
    if (!t->head || !t->group || !t->starts || !t->left) {
        table_free(t);
        return CZ_ENOMEM;
    }
    t->starts[0] = 1;
    return 0;
}

static void table_group(table *t, size_t col, const char *label)
{
    t->starts[col] = 1;
    snprintf(t->group[col], NAME, "%s", label);
}

/* A new row of empty cells, or NULL when out of memory. */
static char (*table_row(table *t))[CELL]
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        void *p = realloc(t->cell, cap * t->ncols * sizeof *t->cell);
        if (!p) return NULL;
        t->cell = p;
        t->cap = cap;
    }
    char (*row)[CELL] = t->cell + t->nrows++ * t->ncols;
    memset(row, 0, t->ncols * sizeof *row);
    return row;
}

/* Two spaces between columns, four between groups; a group's label above its first
 * column (its last column widens if the label needs it). */
static int table_print(const table *t, FILE *f)
{
    size_t n = t->ncols, *w = calloc(n, sizeof *w);
    if (!w) return CZ_ENOMEM;
    for (size_t c = 0; c < n; c++) {
        w[c] = strlen(t->head[c]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t l = strlen(t->cell[r * n + c]);
            if (l > w[c]) w[c] = l;
        }
    }
    size_t total = 0;
    for (size_t c0 = 0, c1; c0 < n; c0 = c1) {
        size_t span = w[c0];
        for (c1 = c0 + 1; c1 < n && !t->starts[c1]; c1++) span += 2 + w[c1];
        size_t l = strlen(t->group[c0]);
        if (l > span) w[c1 - 1] += l - span;
    }
    for (size_t c = 0; c < n; c++) total += (c ? (t->starts[c] ? 4 : 2) : 0) + w[c];
    char *line = malloc(total + 1);
    if (!line) {
        free(w);
        return CZ_ENOMEM;
    }
    memset(line, ' ', total);
    int labelled = 0;
    for (size_t c = 0, x = 0; c < n; x += w[c++]) {
        x += c ? (t->starts[c] ? 4 : 2) : 0;
        if (t->group[c][0]) memcpy(line + x, t->group[c], strlen(t->group[c]));
        labelled |= t->group[c][0] != 0;
    }
    size_t end = total;
    while (end && line[end - 1] == ' ') end--;
    line[end] = 0;
    if (labelled) fprintf(f, "%s\n", line);
    for (size_t r = 0; r <= t->nrows; r++) {
        char (*row)[CELL] = r ? t->cell + (r - 1) * n : t->head;
        for (size_t c = 0; c < n; c++) {
            const char *gap = c ? (t->starts[c] ? "    " : "  ") : "";
            if (t->left[c] && c + 1 < n) fprintf(f, "%s%-*s", gap, (int)w[c], row[c]);
            else fprintf(f, "%s%*s", gap, (int)w[c], row[c]);
        }
        fputc('\n', f);
    }
    free(line);
    free(w);
    return 0;
}

static void fmt(char *cell, const char *spec, double v)
{
    if (isnan(v)) snprintf(cell, CELL, "-");
    else snprintf(cell, CELL, spec, v);
}

/* "input_grad" -> "input", "jacobian/layer_3" -> "jac_3": headers of the comparison. */
static void short_name(const char *name, char *buf, size_t len)
{
    size_t l = strlen(name);
    if (!strncmp(name, "jacobian/layer_", 15)) snprintf(buf, len, "jac_%s", name + 15);
    else if (!strcmp(name, "jacobian/last")) snprintf(buf, len, "jac_last");
    else if (l > 5 && !strcmp(name + l - 5, "_grad")) snprintf(buf, len, "%.*s", (int)(l - 5), name);
    else snprintf(buf, len, "%s", name);
}

static double mean_finite(const double *x, size_t n)
{
    double s = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i])) s += x[i], k++;
    return k ? s / (double)k : NAN;
}

int cz_tau_print_one(const cz_tau_view *v, FILE *f)
{
    const cz_metrics_data *d = &v->run[0];
    const char *acc_name;
    const double *acc = acc_of(d, &acc_name);
    table t;
    if (table_init(&t, 3 + STATS * (size_t)v->n_slots)) return CZ_ENOMEM;
    static const char *const stat[STATS] = {"tau", "p50", "p90", "p99", "mean", "max"};
    snprintf(t.head[0], CELL, "epoch");
    snprintf(t.head[1], CELL, "train_loss");
    snprintf(t.head[2], CELL, "%s", acc_name);
    for (int s = 0; s < v->n_slots; s++) {
        table_group(&t, 3 + STATS * (size_t)s, v->slot[s]);
        for (int k = 0; k < STATS; k++) snprintf(t.head[3 + STATS * s + k], CELL, "%s", stat[k]);
    }
    for (size_t e = 0; e < d->n_epochs; e++) {
        char (*row)[CELL] = table_row(&t);
        if (!row) {
            table_free(&t);
            return CZ_ENOMEM;
        }
        fmt(row[0], "%g", d->epoch[e]);
        fmt(row[1], "%.4g", d->train_loss[e]);
        fmt(row[2], "%.4f", acc[e]);
        for (int s = 0; s < v->n_slots; s++) {
            const cz_metrics_family *fam = cz_tau_fam_of(v, s, 0);
            double x[STATS] = {NAN, NAN, NAN, NAN, NAN, NAN};
            if (fam) {
                double y[STATS] = {fam->tau[e], fam->p50[e], fam->p90[e], fam->p99[e],
                                   fam->mean[e], fam->max[e]};
                memcpy(x, y, sizeof x);
            }
            for (int k = 0; k < STATS; k++) fmt(row[3 + STATS * s + k], "%.4g", x[k]);
        }
    }
    fprintf(f, "%s: %s, %zu epoch%s; tau = p99/mean of the norms of each family", v->label[0],
            d->path, d->n_epochs, d->n_epochs == 1 ? "" : "s");
    if (isfinite(d->alpha)) fprintf(f, " (quantiles within %g%%)", 100 * d->alpha);
    fputs("\n\n", f);
    int rc = table_print(&t, f);
    table_free(&t);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int cz_tau_print_many(const cz_tau_view *v, FILE *f)
{
    int R = v->n_runs, S = v->n_slots, rc = CZ_ENOMEM;
    size_t total = 0;
    for (int r = 0; r < R; r++) total += v->run[r].n_epochs;
    double *epochs = malloc(total * sizeof *epochs);
    table t, u;
    memset(&u, 0, sizeof u);
    if (!epochs || table_init(&t, 1 + (size_t)R * (size_t)(S + 1))) {
        free(epochs);
        return CZ_ENOMEM;
    }
    /* rows: the union of the runs' epochs */
    size_t n = 0;
    for (int r = 0; r < R; r++)
        for (size_t e = 0; e < v->run[r].n_epochs; e++) epochs[n++] = v->run[r].epoch[e];
    qsort(epochs, n, sizeof *epochs, cmp_double);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!m || epochs[i] != epochs[m - 1]) epochs[m++] = epochs[i];

    char sn[NAME];
    snprintf(t.head[0], CELL, "epoch");
    for (int r = 0; r < R; r++) {
        size_t c0 = 1 + (size_t)r * (size_t)(S + 1);
        const char *acc_name;
        acc_of(&v->run[r], &acc_name);
        table_group(&t, c0, v->label[r]);
        for (int s = 0; s < S; s++) {
            short_name(v->slot[s], sn, sizeof sn);
            cz_tau_copy(t.head[c0 + (size_t)s], CELL, sn);
        }
        snprintf(t.head[c0 + (size_t)S], CELL, "%s", acc_name);
    }
    for (size_t i = 0; i < m; i++) {
        char (*row)[CELL] = table_row(&t);
        if (!row) goto out;
        fmt(row[0], "%g", epochs[i]);
        for (int r = 0; r < R; r++) {
            const cz_metrics_data *d = &v->run[r];
            const char *acc_name;
            const double *acc = acc_of(d, &acc_name);
            size_t c0 = 1 + (size_t)r * (size_t)(S + 1), e = 0;
            while (e < d->n_epochs && d->epoch[e] != epochs[i]) e++;
            for (int s = 0; s <= S; s++) {
                const cz_metrics_family *fam = s < S ? cz_tau_fam_of(v, s, r) : NULL;
                double x = e == d->n_epochs ? NAN : s == S ? acc[e] : fam ? fam->tau[e] : NAN;
                fmt(row[c0 + (size_t)s], s == S ? "%.4f" : "%.4g", x);
            }
        }
    }
    /* the summary: a row per run */
    if (table_init(&u, 3 + 2 * (size_t)S)) goto out;
    snprintf(u.head[0], CELL, "run");
    snprintf(u.head[1], CELL, "epochs");
    snprintf(u.head[2], CELL, "acc");
    u.left[0] = 1;
    for (int s = 0; s < S; s++) {
        table_group(&u, 3 + 2 * (size_t)s, v->slot[s]);
        snprintf(u.head[3 + 2 * s], CELL, "last");
        snprintf(u.head[4 + 2 * s], CELL, "mean");
    }
    for (int r = 0; r < R; r++) {
        const cz_metrics_data *d = &v->run[r];
        const char *acc_name;
        const double *acc = acc_of(d, &acc_name);
        size_t E = d->n_epochs;
        char (*row)[CELL] = table_row(&u);
        if (!row) goto out;
        snprintf(row[0], CELL, "%s", v->label[r]);
        snprintf(row[1], CELL, "%zu", E);
        fmt(row[2], "%.4f", acc[E - 1]);
        for (int s = 0; s < S; s++) {
            const cz_metrics_family *fam = cz_tau_fam_of(v, s, r);
            fmt(row[3 + 2 * s], "%.4g", fam ? fam->tau[E - 1] : NAN);
            fmt(row[4 + 2 * s], "%.4g", fam ? mean_finite(fam->tau, E) : NAN);
        }
    }
    fprintf(f, "tau = p99/mean per epoch of");
    for (int s = 0; s < S; s++) {
        short_name(v->slot[s], sn, sizeof sn);
        fprintf(f, "%s %s", s ? "," : "", v->slot[s]);
        if (strcmp(sn, v->slot[s])) fprintf(f, " (%s)", sn);
    }
    fprintf(f, "; then each run's accuracy\n");
    for (int r = 0; r < R; r++) {
        fprintf(f, "  %s: %s", v->label[r], v->run[r].path);
        for (int s = 0; s < S; s++) /* which layer "jacobian/last" is in this run */
            if (!strcmp(v->slot[s], "jacobian/last") && cz_tau_fam_of(v, s, r))
                fprintf(f, " (jacobian/last = %s)", cz_tau_fam_of(v, s, r)->name);
        fputc('\n', f);
    }
    fputc('\n', f);
    if ((rc = table_print(&t, f))) goto out;
    fprintf(f, "\nsummary: tau of the last epoch and mean tau over epochs; acc of the last epoch "
               "(validation, else training)\n\n");
    rc = table_print(&u, f);
out:
    table_free(&t);
    table_free(&u);
    free(epochs);
    return rc;
}
