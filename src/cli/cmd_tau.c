/* `chainz tau`: the per-epoch gradient-norm statistics (tau = p99 / mean) of one run as a
 * table, of several runs side by side with a summary, optionally as CSV and as a gnuplot
 * figure. Options, loading and the choice of families here; the tables in tau_table.c, the
 * files in tau_files.c; reading and validation in src/io/metrics_read.c. */
#include "chainz/metrics_read.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tau_internal.h"

enum { EXIT_USAGE = 1, EXIT_RUNTIME = 2 };

static void tau_usage(FILE *f)
{
    fprintf(f,
"usage: chainz tau RUN_DIR... [--family NAME[,NAME]] [--plot OUT.png|OUT.svg [--plot-data DIR]]\n"
"                            [--csv OUT.csv]\n"
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
"  --plot OUT.png|.svg   also draw with gnuplot (apt-get install gnuplot-nox), one colour\n"
"                        per run (colour-blind-safe palette, then dash styles): tau per\n"
"                        epoch of every run and family (point shape: the family), and\n"
"                        the complementary CDF of the first family's last epoch per run:\n"
"                        the fraction of samples whose norm exceeds x, log-log, over the\n"
"                        bins that hold data (p99 is where it crosses 1 %%). The format\n"
"                        follows the extension.\n"
"  --plot-data DIR       keep the figure's gnuplot script and data in DIR (an existing\n"
"                        directory): plot.gp, tau.dat, ccdf.dat; gnuplot DIR/plot.gp\n"
"                        redraws the figure\n"
"  --csv OUT.csv         also write one row per run, epoch and family: the history and\n"
"                        the family's count, mean, p50, p90, p99, max, tau (empty = NaN)\n"
"  -h, --help            print this help and exit\n"
"\n"
"Exit status: 0 done, 1 usage or input error (message on stderr names the file or the\n"
"family), 2 runtime failure (gnuplot failed, out of memory, an unwritable output).\n");
}

/* A string into a fixed buffer, cut to fit. */
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
    cz_tau_copy(buf, len, base);
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

static int add_slot(cz_tau_view *v, const char *name)
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
static int choose_families(cz_tau_view *v, const char *list, cz_error *err)
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
static void default_families(cz_tau_view *v)
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

/* ---- the command ---- */

static int view_init(cz_tau_view *v, int n_runs)
{
    memset(v, 0, sizeof *v);
    v->run = calloc((size_t)n_runs, sizeof *v->run);
    v->label = calloc((size_t)n_runs, sizeof *v->label);
    if (!v->run || !v->label) return CZ_ENOMEM;
    v->n_runs = n_runs;
    return 0;
}

/* After loading: room for every family of every run as a slot. */
static int view_slots(cz_tau_view *v)
{
    size_t most = 0;
    for (int r = 0; r < v->n_runs; r++) most += (size_t)v->run[r].n_families;
    most += 1;
    v->slot = calloc(most, sizeof *v->slot);
    v->fam = calloc(most * (size_t)v->n_runs, sizeof *v->fam);
    return v->slot && v->fam ? 0 : CZ_ENOMEM;
}

static void view_free(cz_tau_view *v)
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
        {"plot-data", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *plot_out = NULL, *csv_out = NULL, *plot_data = NULL;
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
        case 'k': plot_data = optarg; break;
        case 'h': tau_usage(stdout); return 0;
        case ':': return usage_error("missing value for option", argv[optind - 1]);
        default: return usage_error("unknown option", argv[optind - 1]);
        }
    }
    if (optind >= argc) return usage_error("missing RUN_DIR", NULL);
    cz_error err = {0};
    char gnuplot[PATH_MAX];
    int svg = 0;
    if (plot_out && cz_tau_plot_check(plot_out, &svg, gnuplot, sizeof gnuplot, &err)) return fail(&err);
    if (csv_out && cz_tau_check_out_dir("--csv", csv_out, &err)) return fail(&err);
    if (plot_data) {
        struct stat st;
        if (!plot_out) return usage_error("--plot-data needs --plot", NULL);
        if (stat(plot_data, &st) != 0 || !S_ISDIR(st.st_mode) || access(plot_data, W_OK) != 0) {
            cz_error_set(&err, CZ_EINVAL, "--plot-data %s: not a writable directory", plot_data);
            return fail(&err);
        }
    }

    cz_tau_view v;
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
        rc = v.n_runs == 1 ? cz_tau_print_one(&v, stdout) : cz_tau_print_many(&v, stdout);
        if (rc) cz_error_set(&err, rc, "out of memory");
    }
    if (!rc && fflush(stdout) != 0)
        rc = cz_error_set(&err, CZ_EIO, "cannot write the table: %s", strerror(errno));
    if (!rc && csv_out) {
        rc = cz_tau_write_csv(&v, csv_out, &err);
        if (!rc) fprintf(stderr, "chainz tau: wrote %s\n", csv_out);
    }
    if (!rc && plot_out) {
        char term[64];
        rc = cz_tau_plot(&v, plot_out, svg, gnuplot, plot_data, term, sizeof term, &err);
        if (!rc) fprintf(stderr, "chainz tau: wrote %s (gnuplot terminal %s)\n", plot_out, term);
    }
    view_free(&v);
    return rc ? fail(&err) : 0;
}
