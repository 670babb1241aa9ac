/* `chainz tau`: the files it writes (tau_internal.h): CSV and the gnuplot figure, each
 * under a temporary name renamed into place when complete. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tau_internal.h"

static void tmp_beside(char *buf, size_t len, const char *final)
{
    snprintf(buf, len, "%s.tmp.%ld", final, (long)getpid());
}

/* The directory that will hold `path` must exist: say so before doing any work. */
int cz_tau_check_out_dir(const char *opt, const char *path, cz_error *err)
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

int cz_tau_write_csv(const cz_tau_view *v, const char *out, cz_error *err)
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
                const cz_metrics_family *fam = cz_tau_fam_of(v, s, r);
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
static int write_plot_data(const cz_tau_view *v, const char *dir, int *has_hist, double *lo,
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
                const cz_metrics_family *fam = cz_tau_fam_of(v, s, r);
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
        const cz_metrics_family *fam = cz_tau_fam_of(v, 0, r);
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

static int write_plot_script(const cz_tau_view *v, const char *dir, const char *out_tmp, int svg,
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
            const cz_metrics_family *fam = cz_tau_fam_of(v, s, r);
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
        const cz_metrics_family *fam = cz_tau_fam_of(v, 0, r);
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
int cz_tau_plot_check(const char *out, int *svg, char *gnuplot, size_t len, cz_error *err)
{
    size_t l = strlen(out);
    *svg = l > 4 && !strcasecmp(out + l - 4, ".svg");
    if (!*svg && !(l > 4 && !strcasecmp(out + l - 4, ".png")))
        return cz_error_set(err, CZ_EINVAL, "--plot %s: the name must end in .png or .svg", out);
    if (find_gnuplot(gnuplot, len))
        return cz_error_set(err, CZ_EINVAL, "--plot needs gnuplot, which is not installed (not "
                            "on PATH): apt-get install gnuplot-nox");
    return cz_tau_check_out_dir("--plot", out, err);
}

int cz_tau_plot(const cz_tau_view *v, const char *out, int svg, const char *gnuplot, char *term,
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
