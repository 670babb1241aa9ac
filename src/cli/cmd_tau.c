/* `chainz tau`: the per-epoch gradient-norm statistics (tau = p99 / mean) of one run as a
 * table, of several runs side by side with a summary, optionally as CSV and as a gnuplot
 * figure. Options and presentation only: reading and validation are in
 * src/io/metrics_read.c. */
#include "chainz/metrics_read.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { EXIT_USAGE = 1, EXIT_RUNTIME = 2 };
enum { CELL = 48, NAME = 128, STATS = 6 };

static void tau_usage(FILE *f)
{
    fprintf(f,
"usage: chainz tau RUN_DIR... [--family NAME[,NAME]] [--plot OUT.png|OUT.svg] [--csv OUT.csv]\n"
"\n"
"Reads RUN_DIR/metrics.h5 (or a metrics file given directly), which chainz train\n"
"rewrites after every epoch, so it works while a run goes on.\n"
"One run: a table per epoch: epoch, train loss, validation accuracy (training\n"
"accuracy for a run without validation), and for each family tau = p99/mean,\n"
"p50, p90, p99, mean and max of the family's norms.\n"
"Several runs: side by side per epoch, a column group per run (labelled with the\n"
"run directory's name) holding each family's tau and the accuracy; then a summary:\n"
"per run, the last epoch's tau and the mean tau over epochs of each family.\n"
"\n"
"options:\n"
"  --family NAME[,NAME]  families to show (repeatable), e.g. input_grad,jacobian/layer_1.\n"
"                        Default: input_grad, sample_grad, param_grad and the jacobian\n"
"                        of the last layer, as far as the files have them.\n"
"  --plot OUT.png|.svg   also draw with gnuplot (apt-get install gnuplot-nox): tau per\n"
"                        epoch of every run and family, and the last epoch's histogram\n"
"                        of the first family per run. The format follows the extension.\n"
"  --csv OUT.csv         also write one row per run, epoch and family: the history and\n"
"                        the family's count, mean, p50, p90, p99, max, tau (empty = NaN)\n"
"  -h, --help            print this help and exit\n"
"\n"
"Exit status: 0 done, 1 usage or input error (message on stderr names the file or the\n"
"family), 2 runtime failure (gnuplot failed, out of memory, an unwritable output).\n");
}

/* A string into a fixed buffer, cut to fit. */
static void copy(char *dst, size_t len, const char *src)
{
    size_t l = strlen(src);
    if (l >= len) l = len - 1;
    memcpy(dst, src, l);
    dst[l] = 0;
}

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "chainz tau: %s%s%s%s (see chainz tau --help)\n", msg, arg ? " '" : "",
            arg ? arg : "", arg ? "'" : "");
    return EXIT_USAGE;
}

static int fail(const cz_error *err)
{
    fprintf(stderr, "chainz tau: error: %s\n", err->msg);
    return err->code == CZ_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
}

/* ---- the runs and the family columns ("slots") shown for them ---- */

typedef struct {
    int n_runs;
    cz_metrics_data *run; /* [n_runs] */
    char (*label)[64];    /* [n_runs]: the run directory's name */
    int n_slots;
    char (*slot)[NAME];   /* [n_slots]: the family shown in column group s */
    int *fam;             /* [n_slots * n_runs]: its index in run r, -1 if the run has none */
} tau_view;

static const cz_metrics_family *fam_of(const tau_view *v, int s, int r)
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

/* The run directory's name: "runs/a/" and "runs/a/metrics.h5" are "a"; another file
 * "x/b.h5" is "b". */
static void run_label(const char *arg, char *buf, size_t len)
{
    char p[PATH_MAX], real[PATH_MAX];
    snprintf(p, sizeof p, "%s", arg);
    size_t l = strlen(p);
    while (l > 1 && p[l - 1] == '/') p[--l] = 0;
    struct stat st;
    char *slash = strrchr(p, '/');
    if (stat(p, &st) == 0 && !S_ISDIR(st.st_mode)) {
        char *file = slash ? slash + 1 : p;
        if (strcmp(file, CZ_METRICS_FILE)) {
            l = strlen(file);
            if (l > 3 && !strcmp(file + l - 3, ".h5")) file[l - 3] = 0;
            snprintf(buf, len, "%s", file);
            return;
        }
        if (!slash) snprintf(p, sizeof p, ".");
        else if (slash == p) snprintf(p, sizeof p, "/");
        else *slash = 0;
        slash = strrchr(p, '/');
    }
    const char *base = slash && slash[1] ? slash + 1 : p;
    if ((!strcmp(base, ".") || !strcmp(base, "..")) && realpath(p, real)) {
        slash = strrchr(real, '/');
        base = slash && slash[1] ? slash + 1 : real;
    }
    copy(buf, len, base);
}

/* The jacobian family of the deepest layer in d, or -1. */
static int last_jacobian(const cz_metrics_data *d)
{
    int best = -1;
    long depth = -1;
    for (int j = 0; j < d->n_families; j++) {
        const char *n = d->family[j].name;
        char *end;
        if (strncmp(n, "jacobian/layer_", 15)) continue;
        long l = strtol(n + 15, &end, 10);
        if (end != n + 15 && !*end && l > depth) depth = l, best = j;
    }
    return best;
}

static int add_slot(tau_view *v, const char *name)
{
    for (int s = 0; s < v->n_slots; s++)
        if (!strcmp(v->slot[s], name)) return 0;
    snprintf(v->slot[v->n_slots], NAME, "%s", name);
    for (int r = 0; r < v->n_runs; r++)
        v->fam[v->n_slots * v->n_runs + r] = cz_metrics_family_index(&v->run[r], name);
    v->n_slots++;
    return 0;
}

/* --family: every name must be in every run. */
static int choose_families(tau_view *v, const char *list, cz_error *err)
{
    char name[NAME];
    for (const char *p = list; *p;) {
        size_t l = strcspn(p, ",");
        if (l && l < sizeof name) {
            snprintf(name, sizeof name, "%.*s", (int)l, p);
            for (int r = 0; r < v->n_runs; r++) {
                const cz_metrics_data *d = &v->run[r];
                if (cz_metrics_family_index(d, name) >= 0) continue;
                char have[1024] = "";
                for (int j = 0; j < d->n_families; j++) {
                    size_t h = strlen(have);
                    snprintf(have + h, sizeof have - h, "%s%s", j ? ", " : "", d->family[j].name);
                }
                return cz_error_set(err, CZ_EINVAL, "family '%s' is not in %s (it has: %s)", name,
                                    d->path, have);
            }
            add_slot(v, name);
        } else if (l) {
            return cz_error_set(err, CZ_EINVAL, "--family: name too long: '%.*s'", (int)l, p);
        }
        p += l;
        if (*p == ',') p++;
    }
    if (!v->n_slots) return cz_error_set(err, CZ_EINVAL, "--family '%s' names no family", list);
    return 0;
}

/* Default: input_grad, sample_grad, param_grad and the deepest jacobian, where present. */
static void default_families(tau_view *v)
{
    static const char *const pref[] = {"input_grad", "sample_grad", "param_grad"};
    for (int k = 0; k < 3; k++)
        for (int r = 0; r < v->n_runs; r++)
            if (cz_metrics_family_index(&v->run[r], pref[k]) >= 0) {
                add_slot(v, pref[k]);
                break;
            }
    /* runs of different depths: one column "jacobian/last", each run's own deepest layer */
    int any = 0, same = 1;
    const char *first = NULL;
    for (int r = 0; r < v->n_runs; r++) {
        int j = last_jacobian(&v->run[r]);
        if (j < 0) continue;
        const char *n = v->run[r].family[j].name;
        if (first && strcmp(first, n)) same = 0;
        if (!first) first = n;
        any = 1;
    }
    if (any) {
        int s = v->n_slots++;
        snprintf(v->slot[s], NAME, "%s", same ? first : "jacobian/last");
        for (int r = 0; r < v->n_runs; r++) v->fam[s * v->n_runs + r] = last_jacobian(&v->run[r]);
    }
    if (!v->n_slots) /* a file of other families: show the first run's */
        for (int j = 0; j < v->run[0].n_families; j++) add_slot(v, v->run[0].family[j].name);
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

static int print_one(const tau_view *v, FILE *f)
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
            const cz_metrics_family *fam = fam_of(v, s, 0);
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

static int print_many(const tau_view *v, FILE *f)
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
            copy(t.head[c0 + (size_t)s], CELL, sn);
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
                const cz_metrics_family *fam = s < S ? fam_of(v, s, r) : NULL;
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
            const cz_metrics_family *fam = fam_of(v, s, r);
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
            if (!strcmp(v->slot[s], "jacobian/last") && fam_of(v, s, r))
                fprintf(f, " (jacobian/last = %s)", fam_of(v, s, r)->name);
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

/* ---- files: CSV and the gnuplot figure, each written under a temporary name ---- */

static void tmp_beside(char *buf, size_t len, const char *final)
{
    snprintf(buf, len, "%s.tmp.%ld", final, (long)getpid());
}

/* The directory that will hold `path` must exist: say so before doing any work. */
static int check_out_dir(const char *opt, const char *path, cz_error *err)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return cz_error_set(err, CZ_EINVAL, "%s %s: directory %s does not exist", opt, path, dir);
    if (access(dir, W_OK) != 0)
        return cz_error_set(err, CZ_EINVAL, "%s %s: directory %s is not writable", opt, path, dir);
    return 0;
}

/* Closes f, and on success publishes tmp as final; on any failure removes tmp. */
static int publish(FILE *f, const char *tmp, const char *final, cz_error *err)
{
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        int e = errno;
        unlink(tmp);
        return cz_error_set(err, CZ_EIO, "%s: cannot write: %s", final, strerror(e));
    }
    if (rename(tmp, final) != 0) {
        int e = errno;
        unlink(tmp);
        return cz_error_set(err, CZ_EIO, "cannot rename %s to %s: %s", tmp, final, strerror(e));
    }
    return 0;
}

/* NaN as an empty field; otherwise the shortest of %.15g, %.17g that reads back exactly. */
static void csv_num(FILE *f, double x)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.15g", x);
    if (strtod(buf, NULL) != x) snprintf(buf, sizeof buf, "%.17g", x);
    fprintf(f, ",%s", isnan(x) ? "" : buf);
}

static void csv_str(FILE *f, const char *s, int first)
{
    if (!first) fputc(',', f);
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static int write_csv(const tau_view *v, const char *out, cz_error *err)
{
    char tmp[4200];
    tmp_beside(tmp, sizeof tmp, out);
    FILE *f = fopen(tmp, "w");
    if (!f) return cz_error_set(err, CZ_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    fputs("run,epoch,step,train_loss,train_acc,val_loss,val_acc,val_mae,dreg,lambda,lr,seconds,"
          "family,count,mean,p50,p90,p99,max,tau\n", f);
    for (int r = 0; r < v->n_runs; r++) {
        const cz_metrics_data *d = &v->run[r];
        for (size_t e = 0; e < d->n_epochs; e++)
            for (int s = 0; s < v->n_slots; s++) {
                const cz_metrics_family *fam = fam_of(v, s, r);
                if (!fam) continue;
                csv_str(f, v->label[r], 1);
                double h[] = {d->epoch[e], d->step[e], d->train_loss[e], d->train_acc[e],
                              d->val_loss[e], d->val_acc[e], d->val_mae[e], d->dreg[e],
                              d->lambda[e], d->lr[e], d->seconds[e]};
                for (size_t k = 0; k < sizeof h / sizeof h[0]; k++) csv_num(f, h[k]);
                csv_str(f, fam->name, 0);
                double x[] = {fam->count[e], fam->mean[e], fam->p50[e], fam->p90[e],
                              fam->p99[e], fam->max[e], fam->tau[e]};
                for (size_t k = 0; k < sizeof x / sizeof x[0]; k++) csv_num(f, x[k]);
                fputc('\n', f);
            }
    }
    return publish(f, tmp, out, err);
}

/* gnuplot's single-quoted string: only ' needs escaping, as ''. */
static void gp_str(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

/* The shell's single-quoted word. */
static int sh_word(char *buf, size_t len, const char *s)
{
    size_t k = 0;
    buf[k++] = '\'';
    for (; *s && k + 5 < len; s++) {
        if (*s == '\'') {
            memcpy(buf + k, "'\\''", 4);
            k += 4;
        } else {
            buf[k++] = *s;
        }
    }
    if (*s || k + 2 > len) return -1;
    buf[k++] = '\'';
    buf[k] = 0;
    return 0;
}

static int find_gnuplot(char *buf, size_t len)
{
    const char *path = getenv("PATH");
    if (!path) return -1;
    for (const char *p = path; *p;) {
        size_t l = strcspn(p, ":");
        int n = snprintf(buf, len, "%.*s/gnuplot", (int)l, l ? p : ".");
        if (n > 0 && (size_t)n < len && access(buf, X_OK) == 0) return 0;
        p += l;
        if (*p == ':') p++;
    }
    return -1;
}

/* The figure's data: tau.dat, a block per run (epoch, tau of each slot), and hist.dat, a
 * block per run with the last epoch's non-empty bin range of the first slot (centre,
 * count). Also the y range of tau, for the choice of a log axis. */
static int write_plot_data(const tau_view *v, const char *dir, int *has_hist, double *lo,
                           double *hi, cz_error *err)
{
    char name[4200];
    snprintf(name, sizeof name, "%s/tau.dat", dir);
    FILE *f = fopen(name, "w");
    if (!f) return cz_error_set(err, CZ_EIO, "%s: cannot create: %s", name, strerror(errno));
    *lo = INFINITY;
    *hi = 0;
    for (int r = 0; r < v->n_runs; r++) {
        const cz_metrics_data *d = &v->run[r];
        fprintf(f, "# %s\n", v->label[r]);
        for (size_t e = 0; e < d->n_epochs; e++) {
            fprintf(f, "%.17g", d->epoch[e]);
            for (int s = 0; s < v->n_slots; s++) {
                const cz_metrics_family *fam = fam_of(v, s, r);
                double x = fam ? fam->tau[e] : NAN;
                fprintf(f, isfinite(x) ? " %.17g" : " NaN", x);
                if (isfinite(x) && x > 0) {
                    if (x < *lo) *lo = x;
                    if (x > *hi) *hi = x;
                }
            }
            fputc('\n', f);
        }
        fputs("\n\n", f);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return cz_error_set(err, CZ_EIO, "%s: cannot write", name);

    snprintf(name, sizeof name, "%s/hist.dat", dir);
    if (!(f = fopen(name, "w")))
        return cz_error_set(err, CZ_EIO, "%s: cannot create: %s", name, strerror(errno));
    for (int r = 0; r < v->n_runs; r++) {
        const cz_metrics_family *fam = fam_of(v, 0, r);
        size_t B = v->run[r].n_bins, i0 = 0, i1 = 0;
        for (size_t i = 1; fam && i < B; i++)
            if (fam->last_counts[i]) {
                if (!i0) i0 = i;
                i1 = i;
            }
        has_hist[r] = i0 > 0;
        fprintf(f, "# %s\n", v->label[r]);
        if (i0) { /* one empty bin either side, so that the steps come down to 0 */
            size_t a = i0 > 1 ? i0 - 1 : 1, b = i1 + 1 < B ? i1 + 1 : B - 1;
            for (size_t i = a; i <= b; i++)
                fprintf(f, "%.17g %llu\n", sqrt(fam->edges[i] * fam->edges[i + 1]),
                        (unsigned long long)fam->last_counts[i]);
        } else {
            fputs("NaN NaN\n", f);
        }
        fputs("\n\n", f);
    }
    bad = ferror(f);
    if (fclose(f) != 0 || bad) return cz_error_set(err, CZ_EIO, "%s: cannot write", name);
    return 0;
}

static int write_plot_script(const tau_view *v, const char *dir, const char *out_tmp, int svg,
                             const int *has_hist, double lo, double hi, cz_error *err)
{
    char name[4200], path[4200];
    snprintf(name, sizeof name, "%s/plot.gp", dir);
    FILE *f = fopen(name, "w");
    if (!f) return cz_error_set(err, CZ_EIO, "%s: cannot create: %s", name, strerror(errno));
    if (svg) {
        fputs("set terminal svg size 1000,1000 noenhanced font 'sans,11' background rgb 'white'\n", f);
    } else {
        /* gnuplot-nox has pngcairo; a build without cairo has the libgd png terminal */
        fputs("if (strstrt(GPVAL_TERMINALS, ' pngcairo ') > 0) {\n"
              "  set terminal pngcairo size 1000,1000 noenhanced font 'sans,10'\n"
              "} else {\n"
              "  set terminal png size 1000,1000 noenhanced\n"
              "}\n", f);
    }
    fputs("set output ", f);
    gp_str(f, out_tmp);
    snprintf(path, sizeof path, "%s/term.txt", dir);
    fputs("\nset print ", f);
    gp_str(f, path);
    fputs("\nprint GPVAL_TERM\nunset print\n"
          "set datafile missing 'NaN'\n"
          "set multiplot layout 2,1 title 'chainz tau'\n"
          "set grid\nset key outside right top\n"
          "set title 'tau = p99 / mean per epoch'\nset xlabel 'epoch'\nset ylabel 'tau'\n", f);
    if (hi > 0 && hi / lo > 10) fputs("set logscale y\n", f);
    size_t emax = 0;
    for (int r = 0; r < v->n_runs; r++)
        if (v->run[r].n_epochs > emax) emax = v->run[r].n_epochs;
    if (emax <= 20) fputs("set xtics 1\n", f);
    snprintf(path, sizeof path, "%s/tau.dat", dir);
    fputs("plot ", f);
    int first = 1;
    char title[512];
    for (int r = 0; r < v->n_runs; r++)
        for (int s = 0; s < v->n_slots; s++) {
            const cz_metrics_family *fam = fam_of(v, s, r);
            if (!fam) continue;
            fputs(first ? "" : ", \\\n     ", f);
            first = 0;
            gp_str(f, path);
            /* colour: the family; dashes and point shape: the run */
            fprintf(f, " index %d using 1:%d with linespoints lc %d dt %d pt %d ps 0.7 lw 1.5 title ",
                    r, 2 + s, 1 + s, 1 + r % 5, 7 - 2 * (r % 3));
            if (v->n_runs > 1) snprintf(title, sizeof title, "%s %s", v->label[r], fam->name);
            else snprintf(title, sizeof title, "%s", fam->name);
            gp_str(f, title);
        }
    if (first) fputs("NaN notitle", f);
    fputs("\nunset logscale y\nset xtics autofreq\nset logscale x\nset format x '%g'\n", f);
    snprintf(title, sizeof title, "last epoch: samples per bin of %s (bins of +-%g%%, log x)",
             v->slot[0], isfinite(v->run[0].alpha) ? 100 * v->run[0].alpha : 1.0);
    fputs("set title ", f);
    gp_str(f, title);
    fputs("\nset xlabel 'norm (bin centre)'\nset ylabel 'count'\nset yrange [0:*]\n", f);
    snprintf(path, sizeof path, "%s/hist.dat", dir);
    fputs("plot ", f);
    first = 1;
    for (int r = 0; r < v->n_runs; r++) {
        if (!has_hist[r]) continue;
        const cz_metrics_data *d = &v->run[r];
        const cz_metrics_family *fam = fam_of(v, 0, r);
        fputs(first ? "" : ", \\\n     ", f);
        first = 0;
        gp_str(f, path);
        fprintf(f, " index %d using 1:2 with histeps lw 1.5 title ", r);
        int n = snprintf(title, sizeof title, "%s%s%s (epoch %g)", v->n_runs > 1 ? v->label[r] : "",
                         v->n_runs > 1 ? " " : "", fam->name, d->epoch[d->n_epochs - 1]);
        if (fam->last_counts[0] && n > 0 && (size_t)n < sizeof title)
            snprintf(title + n, sizeof title - (size_t)n, ", %llu in the zero bin",
                     (unsigned long long)fam->last_counts[0]);
        gp_str(f, title);
    }
    if (first) fputs("set xrange [1:10]\nset label 'no samples' at graph 0.5, 0.5 center\n"
                     "plot 1/0 notitle", f);
    fputs("\nunset multiplot\nset output\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return cz_error_set(err, CZ_EIO, "%s: cannot write", name);
    return 0;
}

/* Runs gnuplot on dir/plot.gp; its messages go to dir/gnuplot.err, quoted on failure. */
static int run_gnuplot(const char *gnuplot, const char *dir, cz_error *err)
{
    char q_gp[4200], q_script[4200], q_log[4200], path[4200], cmd[13000];
    snprintf(path, sizeof path, "%s/plot.gp", dir);
    int bad = sh_word(q_gp, sizeof q_gp, gnuplot) | sh_word(q_script, sizeof q_script, path);
    snprintf(path, sizeof path, "%s/gnuplot.err", dir);
    bad |= sh_word(q_log, sizeof q_log, path);
    if (bad) return cz_error_set(err, CZ_EINVAL, "path of gnuplot or of %s too long", dir);
    snprintf(cmd, sizeof cmd, "%s %s </dev/null 2>%s", q_gp, q_script, q_log);
    if (fflush(NULL) != 0) return cz_error_set(err, CZ_EIO, "cannot flush output: %s", strerror(errno));
    int st = system(cmd);
    if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
    char msg[600] = "";
    FILE *f = fopen(path, "r");
    if (f) { /* the end of gnuplot's messages, where its error is */
        if (fseek(f, -(long)(sizeof msg - 1), SEEK_END) != 0) rewind(f);
        size_t n = fread(msg, 1, sizeof msg - 1, f);
        msg[n] = 0;
        fclose(f);
        while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) msg[--n] = 0;
    }
    if (st == -1) return cz_error_set(err, CZ_ERUNTIME, "cannot run %s: %s", gnuplot, strerror(errno));
    if (WIFSIGNALED(st))
        return cz_error_set(err, CZ_ERUNTIME, "%s was killed by signal %d", gnuplot, WTERMSIG(st));
    return cz_error_set(err, CZ_ERUNTIME, "%s failed (exit status %d)%s%s", gnuplot,
                        WEXITSTATUS(st), msg[0] ? ":\n" : "", msg);
}

/* --plot's checks, before any work: the format by extension (1 svg, 0 png), gnuplot. */
static int plot_check(const char *out, int *svg, char *gnuplot, size_t len, cz_error *err)
{
    size_t l = strlen(out);
    *svg = l > 4 && !strcasecmp(out + l - 4, ".svg");
    if (!*svg && !(l > 4 && !strcasecmp(out + l - 4, ".png")))
        return cz_error_set(err, CZ_EINVAL, "--plot %s: the name must end in .png or .svg", out);
    if (find_gnuplot(gnuplot, len))
        return cz_error_set(err, CZ_EINVAL, "--plot needs gnuplot, which is not installed (not "
                            "on PATH): apt-get install gnuplot-nox");
    return check_out_dir("--plot", out, err);
}

static int plot(const tau_view *v, const char *out, int svg, const char *gnuplot, char *term,
                size_t term_len, cz_error *err)
{
    int rc = 0;
    const char *tmpdir = getenv("TMPDIR");
    char dir[4096], out_tmp[4200], name[4200];
    snprintf(dir, sizeof dir, "%s/chainz-tau-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(dir)) return cz_error_set(err, CZ_EIO, "%s: cannot create: %s", dir, strerror(errno));
    tmp_beside(out_tmp, sizeof out_tmp, out);
    int *has_hist = calloc((size_t)v->n_runs, sizeof *has_hist);
    double lo = INFINITY, hi = 0;
    if (!has_hist) rc = cz_error_set(err, CZ_ENOMEM, "out of memory");
    if (!rc) rc = write_plot_data(v, dir, has_hist, &lo, &hi, err);
    if (!rc) rc = write_plot_script(v, dir, out_tmp, svg, has_hist, lo, hi, err);
    if (!rc) rc = run_gnuplot(gnuplot, dir, err);
    struct stat st;
    if (!rc && (stat(out_tmp, &st) != 0 || st.st_size == 0))
        rc = cz_error_set(err, CZ_ERUNTIME, "%s wrote no figure to %s", gnuplot, out_tmp);
    if (!rc && rename(out_tmp, out) != 0)
        rc = cz_error_set(err, CZ_EIO, "cannot rename %s to %s: %s", out_tmp, out, strerror(errno));
    if (rc) unlink(out_tmp);
    snprintf(term, term_len, "?");
    snprintf(name, sizeof name, "%s/term.txt", dir);
    FILE *f = fopen(name, "r");
    if (f) {
        if (fgets(term, (int)term_len, f)) term[strcspn(term, "\n")] = 0;
        fclose(f);
    }
    static const char *const files[] = {"tau.dat", "hist.dat", "plot.gp", "gnuplot.err", "term.txt"};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        snprintf(name, sizeof name, "%s/%s", dir, files[k]);
        unlink(name);
    }
    if (rmdir(dir) != 0 && !rc)
        fprintf(stderr, "chainz tau: warning: cannot remove %s: %s\n", dir, strerror(errno));
    free(has_hist);
    return rc;
}

/* ---- the command ---- */

static int view_init(tau_view *v, int n_runs)
{
    memset(v, 0, sizeof *v);
    v->run = calloc((size_t)n_runs, sizeof *v->run);
    v->label = calloc((size_t)n_runs, sizeof *v->label);
    if (!v->run || !v->label) return CZ_ENOMEM;
    v->n_runs = n_runs;
    return 0;
}

/* After loading: room for every family of every run as a slot. */
static int view_slots(tau_view *v)
{
    size_t most = 0;
    for (int r = 0; r < v->n_runs; r++) most += (size_t)v->run[r].n_families;
    most += 1;
    v->slot = calloc(most, sizeof *v->slot);
    v->fam = calloc(most * (size_t)v->n_runs, sizeof *v->fam);
    return v->slot && v->fam ? 0 : CZ_ENOMEM;
}

static void view_free(tau_view *v)
{
    for (int r = 0; v->run && r < v->n_runs; r++) cz_metrics_data_free(&v->run[r]);
    free(v->run);
    free(v->label);
    free(v->slot);
    free(v->fam);
    memset(v, 0, sizeof *v);
}

int cz_cmd_tau(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"family", required_argument, NULL, 'f'},
        {"plot", required_argument, NULL, 'p'},
        {"csv", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *plot_out = NULL, *csv_out = NULL;
    char families[4096] = "";
    int c;
#ifdef __GLIBC__
    optind = 0; /* full re-initialisation: the caller may have parsed other options */
#else
    optind = 1;
#endif
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'f': {
            size_t l = strlen(families);
            if (l + strlen(optarg) + 2 > sizeof families)
                return usage_error("--family: too many names", NULL);
            snprintf(families + l, sizeof families - l, "%s%s", l ? "," : "", optarg);
            break;
        }
        case 'p': plot_out = optarg; break;
        case 'c': csv_out = optarg; break;
        case 'h': tau_usage(stdout); return 0;
        case ':': return usage_error("missing value for option", argv[optind - 1]);
        default: return usage_error("unknown option", argv[optind - 1]);
        }
    }
    if (optind >= argc) return usage_error("missing RUN_DIR", NULL);
    cz_error err = {0};
    char gnuplot[PATH_MAX];
    int svg = 0;
    if (plot_out && plot_check(plot_out, &svg, gnuplot, sizeof gnuplot, &err)) return fail(&err);
    if (csv_out && check_out_dir("--csv", csv_out, &err)) return fail(&err);

    tau_view v;
    int rc = view_init(&v, argc - optind);
    if (rc) rc = cz_error_set(&err, CZ_ENOMEM, "out of memory");
    for (int r = 0; r < v.n_runs && !rc; r++) {
        const char *arg = argv[optind + r];
        rc = cz_metrics_load(arg, &v.run[r], &err);
        if (!rc && v.run[r].n_epochs == 0)
            rc = cz_error_set(&err, CZ_EINVAL, "%s: holds no epoch yet", v.run[r].path);
        run_label(arg, v.label[r], sizeof v.label[r]);
        for (int q = 0; q < r; q++) /* two runs called "run": "run", "run#2" */
            if (!strcmp(v.label[q], v.label[r])) {
                char suffix[16];
                snprintf(suffix, sizeof suffix, "#%d", r + 1);
                size_t l = strlen(v.label[r]), m = strlen(suffix);
                if (l + m >= sizeof v.label[r]) l = sizeof v.label[r] - m - 1;
                memcpy(v.label[r] + l, suffix, m + 1);
                break;
            }
    }
    if (!rc && view_slots(&v)) rc = cz_error_set(&err, CZ_ENOMEM, "out of memory");
    if (!rc && families[0]) rc = choose_families(&v, families, &err);
    else if (!rc) default_families(&v);
    if (!rc) {
        rc = v.n_runs == 1 ? print_one(&v, stdout) : print_many(&v, stdout);
        if (rc) cz_error_set(&err, rc, "out of memory");
    }
    if (!rc && fflush(stdout) != 0)
        rc = cz_error_set(&err, CZ_EIO, "cannot write the table: %s", strerror(errno));
    if (!rc && csv_out) {
        rc = write_csv(&v, csv_out, &err);
        if (!rc) fprintf(stderr, "chainz tau: wrote %s\n", csv_out);
    }
    if (!rc && plot_out) {
        char term[64];
        rc = plot(&v, plot_out, svg, gnuplot, term, sizeof term, &err);
        if (!rc) fprintf(stderr, "chainz tau: wrote %s (gnuplot terminal %s)\n", plot_out, term);
    }
    view_free(&v);
    return rc ? fail(&err) : 0;
}
