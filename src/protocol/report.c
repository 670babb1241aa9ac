/* The study report: RUN_ROOT/report.md (tables, paired comparisons of the first model with
 * each other one, tau, grid choices, methods), report.csv (one row per run) and
 * report.png (gnuplot, when installed), from the cells' result.json files. */
#include "chainz/protocol.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chainz/json.h"
#include "chainz/stats.h"

#define MAX_FAM 16

typedef struct {
    int have;
    double acc, mae, loss;
    double tau[MAX_FAM];  /* NaN when the family is absent */
    char selected[256];
} cell_result;

typedef struct {
    const cz_proto_spec *s;
    cell_result *c;       /* [cells] */
    char fam[MAX_FAM][64];
    int n_fam;
} study;

static const char *metric_name(const cz_proto_spec *s)
{
    return s->metric == CZ_PROTO_METRIC_MAE ? "mae" : "acc";
}

static double metric_of(const study *st, const cell_result *c)
{
    return st->s->metric == CZ_PROTO_METRIC_MAE ? c->mae : c->acc;
}

static size_t cell_index(const cz_proto_spec *s, int m, int f, int k)
{
    return ((size_t)m * (size_t)s->n_fractions + (size_t)f) * (size_t)s->n_seeds + (size_t)k;
}

static int load_results(study *st, size_t *missing, cz_error *err)
{
    const cz_proto_spec *s = st->s;
    size_t N = cz_proto_cells(s);
    *missing = 0;
    for (size_t I = 0; I < N; I++) {
        cell_result *c = &st->c[I];
        for (int q = 0; q < MAX_FAM; q++) c->tau[q] = NAN;
        int d = cz_proto_cell_done(s, I, err);
        if (d < 0) return d;
        if (d == 0) {
            (*missing)++;
            continue;
        }
        char dir[CZ_PROTO_PATH], path[CZ_PROTO_PATH + 16];
        cz_proto_cell_dir(s, I, dir, sizeof dir);
        snprintf(path, sizeof path, "%s/result.json", dir);
        cz_json j;
        int rc = cz_json_read_file(&j, path, err);
        if (rc) return rc;
        const cz_json *t = cz_json_get(&j, "test"), *sel = cz_json_get(&j, "selected");
        const cz_json *acc = cz_json_get(t, "acc"), *mae = cz_json_get(t, "mae"), *loss = cz_json_get(t, "loss");
        if (!acc || acc->type != CZ_JSON_NUMBER) {
            cz_json_free(&j);
            return cz_error_set(err, CZ_EINVAL, "%s: no test accuracy (\"test\": {\"acc\": ...})", path);
        }
        c->have = 1;
        c->acc = acc->num;
        c->mae = mae && mae->type == CZ_JSON_NUMBER ? mae->num : NAN;
        c->loss = loss && loss->type == CZ_JSON_NUMBER ? loss->num : NAN;
        if (sel && sel->type == CZ_JSON_STRING) snprintf(c->selected, sizeof c->selected, "%s", sel->str);
        const cz_json *tau = cz_json_get(t, "tau");
        for (size_t q = 0; tau && tau->type == CZ_JSON_OBJECT && q < tau->n; q++) {
            int slot = -1;
            for (int a = 0; a < st->n_fam; a++)
                if (!strcmp(st->fam[a], tau->keys[q])) slot = a;
            if (slot < 0 && st->n_fam < MAX_FAM && strlen(tau->keys[q]) < sizeof st->fam[0]) {
                slot = st->n_fam++;
                snprintf(st->fam[slot], sizeof st->fam[slot], "%s", tau->keys[q]);
            }
            const cz_json *v = cz_json_get(&tau->items[q], "tau");
            if (slot >= 0 && v && v->type == CZ_JSON_NUMBER) c->tau[slot] = v->num;
        }
        cz_json_free(&j);
    }
    return 0;
}

/* values of model m, fraction f over the seeds that have them; returns the count */
static size_t collect(const study *st, int m, int f, int what, double *out)
{
    size_t n = 0;
    for (int k = 0; k < st->s->n_seeds; k++) {
        const cell_result *c = &st->c[cell_index(st->s, m, f, k)];
        if (!c->have) continue;
        double v = what < 0 ? metric_of(st, c) : what == 1000 ? c->acc : c->tau[what];
        if (isfinite(v)) out[n++] = v;
    }
    return n;
}

static void mean_pm(FILE *f, const double *x, size_t n, int digits)
{
    if (!n) {
        fputs(" - |", f);
        return;
    }
    double m, sd;
    cz_stats_mean_std(&m, &sd, x, n);
    fprintf(f, " %.*f ± %.*f (%zu) |", digits, m, digits, sd, n);
}

static void write_csv(const study *st, FILE *f)
{
    const cz_proto_spec *s = st->s;
    fputs("model,fraction,seed,selected,acc,mae,loss", f);
    for (int q = 0; q < st->n_fam; q++) fprintf(f, ",tau_%s", st->fam[q]);
    fputc('\n', f);
    for (int m = 0; m < s->n_models; m++)
        for (int fr = 0; fr < s->n_fractions; fr++)
            for (int k = 0; k < s->n_seeds; k++) {
                const cell_result *c = &st->c[cell_index(s, m, fr, k)];
                if (!c->have) continue;
                fprintf(f, "%s,%s,%llu,\"%s\",%.9g,%.9g,%.9g", s->models[m].name, s->fractions[fr].label,
                        (unsigned long long)s->seeds[k], c->selected, c->acc, c->mae, c->loss);
                for (int q = 0; q < st->n_fam; q++) {
                    if (isfinite(c->tau[q])) fprintf(f, ",%.9g", c->tau[q]);
                    else fputs(",", f);
                }
                fputc('\n', f);
            }
}

static void write_comparisons(const study *st, FILE *f)
{
    const cz_proto_spec *s = st->s;
    int mae = s->metric == CZ_PROTO_METRIC_MAE;
    size_t comparisons = 0;
    for (int fr = 0; fr < s->n_fractions; fr++)
        for (int m = 1; m < s->n_models; m++) {
            size_t n = 0;
            for (int k = 0; k < s->n_seeds; k++)
                n += st->c[cell_index(s, 0, fr, k)].have && st->c[cell_index(s, m, fr, k)].have;
            comparisons += n > 0;
        }
    double level = cz_stats_bonferroni(s->alpha, comparisons);
    fprintf(f, "## Paired comparisons: %s against each other model (test %s)\n\n", s->models[0].name, metric_name(s));
    fprintf(f, "Pairs are the runs of the same seed (same split, same subsample). d = %s(%s) - %s(other); "
               "a win is d %s 0 (%s is better), a tie d = 0.\n\n",
            metric_name(s), s->models[0].name, metric_name(s), mae ? "<" : ">", s->models[0].name);
    fprintf(f, "**Bonferroni**: %zu comparisons made, alpha = %g, per-comparison level alpha / %zu = %.6g; "
               "\"yes\" below means both p-values are below it.\n\n",
            comparisons, s->alpha, comparisons, level);
    fputs("| fraction | other model | pairs | mean d | sd d | t | p (t-test) | W+ | W- | p (Wilcoxon) | method | "
          "wins/ties/losses | significant |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n", f);
    double *d = malloc((size_t)s->n_seeds * sizeof *d);
    if (!d) return;
    for (int fr = 0; fr < s->n_fractions; fr++)
        for (int m = 1; m < s->n_models; m++) {
            size_t n = 0, win = 0, tie = 0, loss = 0;
            for (int k = 0; k < s->n_seeds; k++) {
                const cell_result *a = &st->c[cell_index(s, 0, fr, k)], *b = &st->c[cell_index(s, m, fr, k)];
                if (!a->have || !b->have) continue;
                d[n] = metric_of(st, a) - metric_of(st, b);
                if (d[n] == 0) tie++;
                else if ((d[n] > 0) != mae) win++;
                else loss++;
                n++;
            }
            if (!n) {
                fprintf(f, "| %s | %s | 0 | - | - | - | - | - | - | - | - | - | - |\n", s->fractions[fr].label,
                        s->models[m].name);
                continue;
            }
            cz_ttest t;
            cz_wilcoxon w;
            cz_stats_ttest_paired(&t, d, n);
            cz_stats_wilcoxon(&w, d, n);
            char method[96];
            snprintf(method, sizeof method, "%s%s%s%s", w.exact ? "exact" : "normal, tie-corrected",
                     w.zeros ? "; zeros dropped" : "", t.note ? "; t: " : "", t.note ? t.note : "");
            fprintf(f, "| %s | %s | %zu | %+.4f | %.4f | %.3f | %.4g | %g | %g | %.4g | %s | %zu/%zu/%zu | %s |\n",
                    s->fractions[fr].label, s->models[m].name, n, t.mean, t.sd, t.t, t.p, w.w_plus, w.w_minus, w.p,
                    method, win, tie, loss, t.p < level && w.p < level ? "yes" : "no");
        }
    free(d);
    fputc('\n', f);
}

static int write_md(const study *st, FILE *f, size_t missing)
{
    const cz_proto_spec *s = st->s;
    size_t N = cz_proto_cells(s);
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
    fprintf(f, "# chainz protocol report%s%s\n\n", s->name[0] ? ": " : "", s->name);
    fprintf(f, "Spec `%s`, written %s. %zu of %zu runs complete", s->path, when, N - missing, N);
    fprintf(f, missing ? " (**incomplete**: the missing runs are listed at the end).\n\n" : ".\n\n");
    fputs("## Setup\n\n", f);
    if (s->data_kind == CZ_PROTO_DATA_PREP) {
        fprintf(f, "- data: `chainz prep %s", s->prep_format);
        for (int i = 0; i < s->n_prep_inputs; i++) fprintf(f, " %s", s->prep_inputs[i]);
        for (int i = 0; i < s->n_prep_args; i++) fprintf(f, " %s", s->prep_args[i]);
        fprintf(f, "`, stratified split train %g / val %g / test %g per seed (test fixed per seed)\n", s->split[0],
                s->split[1], s->split[2]);
    } else {
        fprintf(f, "- data: train `%s`, val `%s`, test `%s`\n", s->files[0], s->files[1] ? s->files[1] : "-", s->files[2]);
    }
    fputs("- seeds:", f);
    for (int k = 0; k < s->n_seeds; k++) fprintf(f, " %llu", (unsigned long long)s->seeds[k]);
    fputs("\n- training sets:", f);
    for (int fr = 0; fr < s->n_fractions; fr++) fprintf(f, " %s", s->fractions[fr].label);
    fprintf(f, "\n- budget: epochs %ld%s", s->epochs, s->max_steps ? ", max steps " : "");
    if (s->max_steps) fprintf(f, "%ld", s->max_steps);
    fprintf(f, "; %d rank(s) x %d thread(s) per run\n- common train options:", s->ranks, s->threads);
    for (int i = 0; i < s->n_train_args; i++) fprintf(f, " %s", s->train_args[i]);
    fputs("\n- models (the first is compared with each other one):\n", f);
    for (int m = 0; m < s->n_models; m++) {
        const cz_proto_model *md = &s->models[m];
        fprintf(f, "  - **%s**:", md->name);
        for (int i = 0; i < md->n_args; i++) fprintf(f, " %s", md->args[i]);
        if (md->n_grid_keys) fprintf(f, "; grid, chosen on the validation %s:", metric_name(s));
        for (int g = 0; g < md->n_grid_keys; g++) {
            fprintf(f, "%s --%s {", g ? "," : "", md->grid_keys[g]);
            for (int i = 0; i < md->n_grid_vals[g]; i++) fprintf(f, "%s%s", i ? ", " : "", md->grid_vals[g][i]);
            fputc('}', f);
        }
        fputc('\n', f);
    }
    double *x = malloc((size_t)s->n_seeds * sizeof *x);
    if (!x) return CZ_ENOMEM;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && s->metric != CZ_PROTO_METRIC_MAE) break;
        fprintf(f, "\n## Test %s: mean ± sd over seeds (runs)\n\n| model |", pass ? "MAE" : "accuracy");
        for (int fr = 0; fr < s->n_fractions; fr++) fprintf(f, " %s |", s->fractions[fr].label);
        fputs("\n|---|", f);
        for (int fr = 0; fr < s->n_fractions; fr++) fputs("---|", f);
        fputc('\n', f);
        for (int m = 0; m < s->n_models; m++) {
            fprintf(f, "| %s |", s->models[m].name);
            for (int fr = 0; fr < s->n_fractions; fr++) {
                size_t n = collect(st, m, fr, pass ? -1 : 1000, x);
                mean_pm(f, x, n, 4);
            }
            fputc('\n', f);
        }
    }
    char png[CZ_PROTO_PATH + 32];
    snprintf(png, sizeof png, "%s/report.png", s->run_root);
    if (access(png, F_OK) == 0) fprintf(f, "\n![test %s per training set](report.png)\n", metric_name(s));
    fputc('\n', f);
    write_comparisons(st, f);
    if (st->n_fam) {
        fputs("## tau = p99 / mean of the gradient-norm families on the test split (`chainz eval --tau`): mean ± sd "
              "over seeds\n\n", f);
        for (int q = 0; q < st->n_fam; q++) {
            fprintf(f, "### %s\n\n| model |", st->fam[q]);
            for (int fr = 0; fr < s->n_fractions; fr++) fprintf(f, " %s |", s->fractions[fr].label);
            fputs("\n|---|", f);
            for (int fr = 0; fr < s->n_fractions; fr++) fputs("---|", f);
            fputc('\n', f);
            for (int m = 0; m < s->n_models; m++) {
                fprintf(f, "| %s |", s->models[m].name);
                for (int fr = 0; fr < s->n_fractions; fr++) mean_pm(f, x, collect(st, m, fr, q, x), 3);
                fputc('\n', f);
            }
            fputc('\n', f);
        }
    }
    int grids = 0;
    for (int m = 0; m < s->n_models; m++) grids |= s->models[m].n_points > 1;
    if (grids) {
        fputs("## Grid choices (best validation value, ties to the first; the test split never chooses)\n\n"
              "| model | fraction | seed | chosen |\n|---|---|---|---|\n", f);
        for (int m = 0; m < s->n_models; m++) {
            if (s->models[m].n_points < 2) continue;
            for (int fr = 0; fr < s->n_fractions; fr++)
                for (int k = 0; k < s->n_seeds; k++) {
                    const cell_result *c = &st->c[cell_index(s, m, fr, k)];
                    if (c->have)
                        fprintf(f, "| %s | %s | %llu | %s |\n", s->models[m].name, s->fractions[fr].label,
                                (unsigned long long)s->seeds[k], c->selected);
                }
        }
        fputc('\n', f);
    }
    free(x);
    fputs("## Methods\n\n"
          "- Every run's test metrics come from `chainz eval --json` on its seed's test split; the per-run values are "
          "in `report.csv`.\n"
          "- mean ± sd: sample standard deviation (n - 1) over the seeds; (n) is the number of runs.\n"
          "- Paired t-test: t = mean(d) / (sd(d) / sqrt(n)), two-sided p = 2 Q_t(|t|; n - 1) (GSL "
          "`gsl_cdf_tdist_Q`). Fewer than 2 pairs: p = 1; all d equal: p = 1 if they are 0, else p = 0 (noted in "
          "the method column).\n"
          "- Wilcoxon signed-rank: zero differences dropped (Wilcoxon's method), |d| ranked with average ranks for "
          "ties, W+ = sum of the ranks of positive d. Without ties and n <= 50: the exact null distribution of W+ "
          "(all 2^n sign patterns counted by dynamic programming over the ranks), p = min(1, 2 min(P(W+ <= w), "
          "P(W+ >= w))); otherwise the normal approximation with tie correction, no continuity correction: z = (W+ "
          "- n(n+1)/4) / sqrt(n(n+1)(2n+1)/24 - sum(t^3 - t)/48), p = 2 Phi(-|z|) (GSL `gsl_cdf_ugaussian_P`). "
          "With 5 pairs the smallest possible two-sided p is 2/32 = 0.0625.\n"
          "- Bonferroni: alpha divided by the number of comparisons made (fractions x other models with at least "
          "one pair).\n\n", f);
    if (missing) {
        fputs("## Missing runs\n\n", f);
        for (size_t I = 0; I < N; I++)
            if (!st->c[I].have) {
                char dir[CZ_PROTO_PATH];
                cz_proto_cell_dir(s, I, dir, sizeof dir);
                fprintf(f, "- task %zu: `%s`\n", I, dir);
            }
        fputc('\n', f);
    }
    return 0;
}

static int find_gnuplot(char *buf, size_t len)
{
    const char *path = getenv("PATH");
    if (!path) path = "/usr/bin:/bin";
    for (const char *p = path;;) {
        const char *e = strchr(p, ':');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        snprintf(buf, len, "%.*s/gnuplot", (int)l, l ? p : ".");
        if (access(buf, X_OK) == 0) return 0;
        if (!e) return -1;
        p = e + 1;
    }
}

static void gp_str(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

/* report.dat / report.gp / report.png: the metric per training set, one line per model */
static int write_plot(const study *st, char *note, size_t len, cz_error *err)
{
    const cz_proto_spec *s = st->s;
    char gnuplot[4096], dat[CZ_PROTO_PATH + 32], gp[CZ_PROTO_PATH + 32], png[CZ_PROTO_PATH + 32], log[CZ_PROTO_PATH + 32];
    if (find_gnuplot(gnuplot, sizeof gnuplot)) {
        snprintf(note, len, "no plot: gnuplot is not installed (apt-get install gnuplot-nox)");
        return 0;
    }
    snprintf(dat, sizeof dat, "%s/report.dat", s->run_root);
    snprintf(gp, sizeof gp, "%s/report.gp", s->run_root);
    snprintf(png, sizeof png, "%s/report.png", s->run_root);
    snprintf(log, sizeof log, "%s/report.gnuplot.log", s->run_root);
    FILE *f = fopen(dat, "w");
    if (!f) return cz_error_set(err, CZ_EIO, "%s: cannot create: %s", dat, strerror(errno));
    double *x = malloc((size_t)s->n_seeds * sizeof *x);
    for (int m = 0; x && m < s->n_models; m++) {
        fprintf(f, "# %s\n", s->models[m].name);
        for (int fr = 0; fr < s->n_fractions; fr++) {
            size_t n = collect(st, m, fr, -1, x);
            double mean = 0, sd = 0;
            if (n) cz_stats_mean_std(&mean, &sd, x, n);
            if (n) fprintf(f, "%d %.9g %.9g\n", fr, mean, sd);
            else fprintf(f, "%d NaN NaN\n", fr);
        }
        fputs("\n\n", f);
    }
    free(x);
    if (fclose(f) != 0) return cz_error_set(err, CZ_EIO, "%s: cannot write", dat);
    if (!(f = fopen(gp, "w"))) return cz_error_set(err, CZ_EIO, "%s: cannot create: %s", gp, strerror(errno));
    fputs("if (strstrt(GPVAL_TERMINALS, ' pngcairo ') > 0) {\n"
          "  set terminal pngcairo size 900,600 noenhanced font 'sans,10'\n} else {\n"
          "  set terminal png size 900,600 noenhanced\n}\nset output ", f);
    gp_str(f, png);
    fprintf(f, "\nset datafile missing 'NaN'\nset grid\nset key outside right top\nset title ");
    char title[300];
    snprintf(title, sizeof title, "%s%stest %s, mean +- sd over %d seeds", s->name, s->name[0] ? ": " : "",
             metric_name(s), s->n_seeds);
    gp_str(f, title);
    fprintf(f, "\nset xlabel 'training set'\nset ylabel 'test %s'\nset xrange [-0.5:%d.5]\nset xtics (", metric_name(s),
            s->n_fractions - 1);
    for (int fr = 0; fr < s->n_fractions; fr++) {
        fputs(fr ? ", " : "", f);
        gp_str(f, s->fractions[fr].label);
        fprintf(f, " %d", fr);
    }
    fputs(")\nplot ", f);
    for (int m = 0; m < s->n_models; m++) {
        fputs(m ? ", \\\n     " : "", f);
        gp_str(f, dat);
        fprintf(f, " index %d using ($1+%.3f):2:3 with yerrorlines lw 1.5 pt %d title ", m,
                0.03 * (m - (s->n_models - 1) / 2.0), 5 + 2 * (m % 4));
        gp_str(f, s->models[m].name);
    }
    fputs("\nset output\n", f);
    if (fclose(f) != 0) return cz_error_set(err, CZ_EIO, "%s: cannot write", gp);
    unlink(log);
    const char *argv[] = {gnuplot, gp, NULL};
    int st_ = cz_proto_spawn((char *const *)argv, log, err);
    if (st_ < 0) return st_;
    if (st_ != 0) return cz_error_set(err, CZ_ERUNTIME, "gnuplot failed (exit %d): see %s", st_, log);
    snprintf(note, len, "plot: report.png (data report.dat, script report.gp)");
    return 0;
}

static int write_file(const char *path, const study *st, size_t missing, int csv, cz_error *err)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return cz_error_set(err, CZ_ENOMEM, "out of memory");
    int rc = 0;
    if (csv) write_csv(st, f);
    else rc = write_md(st, f, missing);
    if (fclose(f) != 0 && !rc) rc = cz_error_set(err, CZ_ENOMEM, "out of memory");
    if (!rc) rc = cz_proto_write_atomic(path, buf, len, err);
    free(buf);
    return rc;
}

int cz_proto_report(const cz_proto_spec *s, size_t *missing, cz_error *err)
{
    study st = {.s = s};
    size_t N = cz_proto_cells(s);
    if (!(st.c = calloc(N, sizeof *st.c))) return cz_error_set(err, CZ_ENOMEM, "out of memory");
    int rc = cz_proto_mkdirs(s->run_root, err);
    if (!rc) rc = load_results(&st, missing, err);
    if (!rc && *missing == N) /* nothing to report: no plot of nothing, no empty tables */
        rc = cz_error_set(err, CZ_EINVAL, "%s: none of the %zu runs has finished yet: run `chainz protocol %s` "
                          "first (--list shows them)", s->run_root, N, s->path);
    char path[CZ_PROTO_PATH + 32], note[256] = "";
    if (!rc) {
        snprintf(path, sizeof path, "%s/report.csv", s->run_root);
        rc = write_file(path, &st, *missing, 1, err);
    }
    if (!rc) rc = write_plot(&st, note, sizeof note, err);
    if (!rc) {
        snprintf(path, sizeof path, "%s/report.md", s->run_root);
        rc = write_file(path, &st, *missing, 0, err);
    }
    if (!rc)
        printf("chainz protocol: report %s/report.md, report.csv (%zu of %zu runs%s); %s\n", s->run_root, N - *missing,
               N, *missing ? ", INCOMPLETE" : "", note);
    free(st.c);
    return rc;
}
