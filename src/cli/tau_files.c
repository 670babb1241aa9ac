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

/* gnuplot's single-quoted string into buf. @return 0, or -1 when it does not fit. */
static int gp_quote(char *buf, size_t len, const char *s)
{
    size_t k = 0;
    if (len < 3) return -1;
    buf[k++] = '\'';
    for (; *s && k + 3 < len; s++) {
        if (*s == '\'') buf[k++] = '\'';
        buf[k++] = *s;
    }
    if (*s) return -1;
    buf[k++] = '\'';
    buf[k] = 0;
    return 0;
}

/* A colour-blind-safe palette (Okabe and Ito, without its yellow, too pale on white): run r
 * is drawn in PALETTE[r % N_PALETTE], with dash style 1 + (r / N_PALETTE) % 5 beyond it. */
static const char *const PALETTE[] = {"#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000"};
enum { N_PALETTE = sizeof PALETTE / sizeof PALETTE[0] };
/* point shapes of the families (slots) in the tau panel: filled circle, square, triangle, ... */
static const int POINTS[] = {7, 5, 9, 13, 11, 15};
enum { N_POINTS = sizeof POINTS / sizeof POINTS[0] };

/* The complementary CDF of a last-epoch histogram: F_i = fraction of the samples whose norm
 * exceeds edges[i], the lower edge of bin i, = (counts of bins >= i) / count, exact at the
 * edges. Kept where it changes: every non-empty bin i >= 1, then the upper edge of the last
 * one (where the last step ends). *i0, *i1: the first and last non-empty bins >= 1 (0, 0:
 * none, every sample is 0). */
static void ccdf_range(const cz_metrics_family *fam, size_t B, size_t *i0, size_t *i1)
{
    *i0 = *i1 = 0;
    for (size_t i = 1; i < B; i++)
        if (fam->last_counts[i]) {
            if (!*i0) *i0 = i;
            *i1 = i;
        }
}

/* The figure's data: tau.dat, a block per run (epoch, tau of each slot), and ccdf.dat, a
 * block per run with the complementary CDF of the first slot's last-epoch histogram (x,
 * fraction above x). Also the y range of tau, for the choice of a log axis, and the x and
 * y ranges that hold the CCDF data of every run. */
static int write_plot_data(const cz_tau_view *v, const char *dir, int *has_ccdf, double *lo, double *hi,
                           double cx[2], double *cy, cz_error *err)
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

    snprintf(name, sizeof name, "%s/ccdf.dat", dir);
    if (!(f = fopen(name, "w")))
        return cz_error_set(err, CZ_EIO, "%s: cannot create: %s", name, strerror(errno));
    cx[0] = INFINITY;
    cx[1] = 0;
    *cy = 1;
    for (int r = 0; r < v->n_runs; r++) {
        const cz_metrics_family *fam = cz_tau_fam_of(v, 0, r);
        size_t B = v->run[r].n_bins, i0 = 0, i1 = 0;
        uint64_t total = 0;
        if (fam) ccdf_range(fam, B, &i0, &i1);
        for (size_t i = 0; fam && i < B; i++) total += fam->last_counts[i];
        has_ccdf[r] = i0 > 0;
        fprintf(f, "# %s %s: x, fraction of the last epoch's samples whose norm exceeds x\n", v->label[r],
                fam ? fam->name : "-");
        if (!i0) {
            fputs("NaN NaN\n\n\n", f);
            continue;
        }
        uint64_t above = 0; /* samples in bins >= i, counted from the top */
        for (size_t i = i0; i <= i1; i++) above += fam->last_counts[i];
        double last = 1;
        for (size_t i = i0; i <= i1; i++) {
            if (!fam->last_counts[i]) continue;
            last = (double)above / (double)total;
            fprintf(f, "%.17g %.17g\n", fam->edges[i], last);
            above -= fam->last_counts[i];
        }
        fprintf(f, "%.17g %.17g\n\n\n", fam->edges[i1 + 1], last); /* the last step's end */
        if (fam->edges[i0] < cx[0]) cx[0] = fam->edges[i0];
        if (fam->edges[i1 + 1] > cx[1]) cx[1] = fam->edges[i1 + 1];
        if (last < *cy) *cy = last;
    }
    bad = ferror(f);
    if (fclose(f) != 0 || bad) return cz_error_set(err, CZ_EIO, "%s: cannot write", name);
    return 0;
}

/* Run r's line style: its colour, and a dash style beyond the palette. */
static void run_style(FILE *f, int r)
{
    fprintf(f, " lc rgb '%s' dt %d", PALETTE[r % N_PALETTE], 1 + (r / N_PALETTE) % 5);
}

/* plot.gp: draws out_final, unless gnuplot is given out (chainz gives the temporary name
 * with -e) */
static int write_plot_script(const cz_tau_view *v, const char *dir, const char *out_final, int svg,
                             const int *has_ccdf, double lo, double hi, const double cx[2], double cy,
                             cz_error *err)
{
    char name[4200], path[4200];
    snprintf(name, sizeof name, "%s/plot.gp", dir);
    FILE *f = fopen(name, "w");
    if (!f) return cz_error_set(err, CZ_EIO, "%s: cannot create: %s", name, strerror(errno));
    fputs("# chainz tau --plot: tau per epoch, one colour per run (Okabe-Ito palette, then dash\n"
          "# styles), and the complementary CDF of the last epoch's histogram. Run again with\n"
          "# gnuplot plot.gp (or gnuplot -e \"out='other.png'\" plot.gp).\n", f);
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
    fputs("if (!exists('out')) out = ", f);
    gp_str(f, out_final);
    fputs("\nset output out\n"
          "if (exists('termfile')) { set print termfile; print GPVAL_TERM; unset print }\n"
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
            /* colour (and dashes past the palette): the run; point shape: the family */
            fprintf(f, " index %d using 1:%d with linespoints", r, 2 + s);
            run_style(f, r);
            fprintf(f, " pt %d ps 0.8 lw 1.5 title ", POINTS[s % N_POINTS]);
            if (v->n_runs > 1) snprintf(title, sizeof title, "%s %s", v->label[r], fam->name);
            else snprintf(title, sizeof title, "%s", fam->name);
            gp_str(f, title);
        }
    if (first) fputs("NaN notitle", f);
    fputs("\nunset logscale y\nset xtics autofreq\nset logscale xy\nset format x '%g'\nset format y '%g'\n", f);
    snprintf(title, sizeof title, "last epoch: fraction of samples whose %s norm exceeds x (histogram bins "
             "of +-%g%%)", v->slot[0], isfinite(v->run[0].alpha) ? 100 * v->run[0].alpha : 1.0);
    fputs("set title ", f);
    gp_str(f, title);
    /* a CCDF leaves its lower left corner empty: the key goes there, the curves get the width */
    fprintf(f, "\nset xlabel 'norm x'\nset ylabel 'fraction of samples above x'\n"
               "set key inside left bottom Left reverse opaque box\n");
    snprintf(path, sizeof path, "%s/ccdf.dat", dir);
    first = 1;
    for (int r = 0; r < v->n_runs; r++) {
        if (!has_ccdf[r]) continue;
        const cz_metrics_data *d = &v->run[r];
        const cz_metrics_family *fam = cz_tau_fam_of(v, 0, r);
        if (first) { /* the range that holds the data, not the histogram's */
            fprintf(f, "set xrange [%.17g:%.17g]\nset yrange [%.17g:1.25]\n", cx[0], cx[1], cy * 0.8);
            if (cy < 0.01) /* where p99 is read: 1 % of the samples above */
                fputs("set arrow from graph 0, first 0.01 to graph 1, first 0.01 nohead dt 3 lc rgb 'gray40'\n"
                      "set label '1 % above: p99' at graph 0.01, first 0.0115 textcolor rgb 'gray40'\n", f);
            fputs("plot ", f);
        }
        fputs(first ? "" : ", \\\n     ", f);
        first = 0;
        gp_str(f, path);
        fprintf(f, " index %d using 1:2 with steps lw 2", r);
        run_style(f, r);
        fputs(" title ", f);
        int n = snprintf(title, sizeof title, "%s%s%s (epoch %g)", v->n_runs > 1 ? v->label[r] : "",
                         v->n_runs > 1 ? " " : "", fam->name, d->epoch[d->n_epochs - 1]);
        if (fam->last_counts[0] && n > 0 && (size_t)n < sizeof title)
            snprintf(title + n, sizeof title - (size_t)n, ", %llu norms of 0",
                     (unsigned long long)fam->last_counts[0]);
        gp_str(f, title);
    }
    if (first) fputs("set xrange [1:10]\nset yrange [0.1:1]\nset label 'no samples' at graph 0.5, 0.5 center\n"
                     "plot 1/0 notitle", f);
    fputs("\nunset multiplot\nset output\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return cz_error_set(err, CZ_EIO, "%s: cannot write", name);
    return 0;
}

/* Runs gnuplot on dir/plot.gp, drawing to out_tmp; its messages go to dir/gnuplot.err,
 * quoted on failure, and its terminal to dir/term.txt. */
static int run_gnuplot(const char *gnuplot, const char *dir, const char *out_tmp, cz_error *err)
{
    char q_gp[4200], q_script[4200], q_log[4200], path[4200], g_out[4400], g_term[4400], e_arg[9000],
        q_e[19000], cmd[32000];
    snprintf(path, sizeof path, "%s/term.txt", dir);
    int bad = gp_quote(g_out, sizeof g_out, out_tmp) | gp_quote(g_term, sizeof g_term, path);
    snprintf(e_arg, sizeof e_arg, "out=%s; termfile=%s", g_out, g_term);
    snprintf(path, sizeof path, "%s/plot.gp", dir);
    bad |= sh_word(q_gp, sizeof q_gp, gnuplot) | sh_word(q_script, sizeof q_script, path) |
           sh_word(q_e, sizeof q_e, e_arg);
    snprintf(path, sizeof path, "%s/gnuplot.err", dir);
    bad |= sh_word(q_log, sizeof q_log, path);
    if (bad) return cz_error_set(err, CZ_EINVAL, "path of gnuplot, of the figure or of %s too long", dir);
    snprintf(cmd, sizeof cmd, "%s -e %s %s </dev/null 2>%s", q_gp, q_e, q_script, q_log);
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

int cz_tau_plot(const cz_tau_view *v, const char *out, int svg, const char *gnuplot, const char *keep_dir,
                char *term, size_t term_len, cz_error *err)
{
    int rc = 0, keep = keep_dir && keep_dir[0];
    const char *tmpdir = getenv("TMPDIR");
    char dir[4096], out_tmp[4200], name[4200], final[8400];
    if (keep) { /* absolute, so that the kept script runs from anywhere */
        if (!realpath(keep_dir, dir)) return cz_error_set(err, CZ_EINVAL, "--plot-data %s: %s", keep_dir, strerror(errno));
    } else {
        snprintf(dir, sizeof dir, "%s/chainz-tau-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
        if (!mkdtemp(dir)) return cz_error_set(err, CZ_EIO, "%s: cannot create: %s", dir, strerror(errno));
    }
    tmp_beside(out_tmp, sizeof out_tmp, out);
    /* the kept script redraws the figure from anywhere: an absolute name */
    if (out[0] != '/' && getcwd(name, sizeof name)) snprintf(final, sizeof final, "%s/%s", name, out);
    else snprintf(final, sizeof final, "%s", out);
    int *has_ccdf = calloc((size_t)v->n_runs, sizeof *has_ccdf);
    double lo = INFINITY, hi = 0, cx[2] = {1, 10}, cy = 1;
    if (!has_ccdf) rc = cz_error_set(err, CZ_ENOMEM, "out of memory");
    if (!rc) rc = write_plot_data(v, dir, has_ccdf, &lo, &hi, cx, &cy, err);
    if (!rc) rc = write_plot_script(v, dir, final, svg, has_ccdf, lo, hi, cx, cy, err);
    if (!rc) rc = run_gnuplot(gnuplot, dir, out_tmp, err);
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
    /* kept: the script and its data only */
    static const char *const files[] = {"gnuplot.err", "term.txt", "tau.dat", "ccdf.dat", "plot.gp"};
    for (size_t k = 0; k < (keep ? 2 : sizeof files / sizeof files[0]); k++) {
        snprintf(name, sizeof name, "%s/%s", dir, files[k]);
        unlink(name);
    }
    if (!keep && rmdir(dir) != 0 && !rc)
        fprintf(stderr, "chainz tau: warning: cannot remove %s: %s\n", dir, strerror(errno));
    free(has_ccdf);
    return rc;
}
