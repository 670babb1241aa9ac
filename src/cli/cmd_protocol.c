/* `chainz protocol SPEC.json`: runs a "Fair Fight" study and writes its report
 * (docs/PROTOCOL.md). Options and exit status only: the work is in src/protocol. */
#include "chainz/protocol.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static void protocol_usage(FILE *f)
{
    fprintf(f,
"usage: chainz protocol SPEC.json [--jobs N]          run every unfinished run, then the report\n"
"       chainz protocol SPEC.json --task I            run one run (index I of the task list)\n"
"       chainz protocol SPEC.json --report            (re)write the report from the finished runs\n"
"       chainz protocol SPEC.json --slurm [--submit]  write (and submit) a SLURM array job\n"
"       chainz protocol SPEC.json --list | --check    the task list / only check the spec\n"
"\n"
"A study: models x training-set sizes x seeds, each run trained with chainz train on its\n"
"seed's stratified split (made with chainz prep), grid values chosen on the validation\n"
"split only, evaluated with chainz eval --json on the test split. The spec (JSON, unknown\n"
"keys refused) is described with a complete example in docs/PROTOCOL.md:\n"
"  run_root, data ({\"arff\": P} | {\"idx\": [I, L]} | {\"numeric\"|\"csv\": P} with \"prep\": [opts],\n"
"  or {\"train\": H5, \"val\": H5, \"test\": H5}), split {train, val, test}, seeds [..],\n"
"  fractions [1, 0.25, {\"count\": 32}, {\"per_class\": [16, 16]}], models [{name, train: [opts],\n"
"  grid: {\"dreg\": [..]}}], budget {epochs | max_steps}, train [common opts], ranks, threads,\n"
"  metric acc|mae, tau, alpha, slurm {time, partition}.\n"
"\n"
"Each run lives in RUN_ROOT/<model>/<fraction>/seed-<s>/ (the training run folder, logs,\n"
"result.json written atomically when done). Running again skips finished runs (a\n"
"result.json made by the same spec) and resumes interrupted ones (chainz train --resume\n"
"auto). The report: RUN_ROOT/report.md, report.csv, report.png (gnuplot): mean +- sd per\n"
"model x fraction, paired comparisons of the first model with each other one (mean\n"
"difference, paired t-test, Wilcoxon signed-rank, wins/ties/losses, Bonferroni), tau.\n"
"\n"
"options:\n"
"  -j, --jobs N   runs at once (default: cores / (ranks x threads), at least 1)\n"
"      --task I   run I only (what a SLURM array task runs); exit 0 also if it was done\n"
"      --report   write the report only; exit 1 if runs are missing (listed in it)\n"
"      --slurm    write RUN_ROOT/slurm/{tasks.txt,protocol.sbatch,report.sbatch}\n"
"      --submit   with --slurm: sbatch the unfinished runs as one array job and the report\n"
"                 with --dependency=afterok on it\n"
"      --list     print the task list (index, model, fraction, seed, status, folder)\n"
"      --check    check the spec and the finished runs' consistency, run nothing\n"
"\n"
"exit status: 0 done, 1 a bad spec or usage (the message names the file, line and key),\n"
"2 a run failed, 75 stopped on a signal after checkpointing (run the command again).\n");
}

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "chainz protocol: %s%s%s\n(chainz protocol --help for the options)\n", msg, arg ? " " : "",
            arg ? arg : "");
    return 1;
}

static int status_of(int rc)
{
    return rc == 0 ? 0 : rc == CZ_EINVAL ? 1 : rc == CZ_ESTOPPED ? 75 : 2;
}

static int parse_size(const char *s, long max, long *out)
{
    char *e;
    errno = 0;
    long v = strtol(s, &e, 10);
    if (!*s || *e || errno || v < 0 || v > max) return -1;
    *out = v;
    return 0;
}

int cz_cmd_protocol(int argc, char **argv)
{
    enum { O_TASK = 256, O_REPORT, O_SLURM, O_SUBMIT, O_LIST, O_CHECK };
    static const struct option opts[] = {
        {"jobs", required_argument, NULL, 'j'}, {"task", required_argument, NULL, O_TASK},
        {"report", no_argument, NULL, O_REPORT}, {"slurm", no_argument, NULL, O_SLURM},
        {"submit", no_argument, NULL, O_SUBMIT}, {"list", no_argument, NULL, O_LIST},
        {"check", no_argument, NULL, O_CHECK},  {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long jobs = 0, task = -1;
    int report = 0, slurm = 0, submit = 0, list = 0, check = 0, c;
#ifdef __GLIBC__
    optind = 0;
#else
    optind = 1;
#endif
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hj:", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            if (parse_size(optarg, 1024, &jobs) || jobs < 1) return usage_error("--jobs needs an integer in 1..1024, got", optarg);
            break;
        case O_TASK:
            if (parse_size(optarg, LONG_MAX / 2, &task)) return usage_error("--task needs a run index, got", optarg);
            break;
        case O_REPORT: report = 1; break;
        case O_SLURM: slurm = 1; break;
        case O_SUBMIT: submit = 1; break;
        case O_LIST: list = 1; break;
        case O_CHECK: check = 1; break;
        case 'h': protocol_usage(stdout); return 0;
        case ':': return usage_error("missing value for", argv[optind - 1]);
        default: return usage_error("unknown option", argv[optind - 1]);
        }
    }
    if (optind != argc - 1) return usage_error(optind >= argc ? "missing SPEC.json" : "one SPEC.json only, also got",
                                               optind >= argc ? NULL : argv[optind + 1]);
    if ((task >= 0) + report + slurm + list + check > 1)
        return usage_error("give at most one of --task, --report, --slurm, --list, --check", NULL);
    if (submit && !slurm) return usage_error("--submit goes with --slurm", NULL);
    if (jobs && (task >= 0 || report || slurm || list || check)) return usage_error("--jobs is for running the study", NULL);

    char self[CZ_PROTO_PATH];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        fprintf(stderr, "chainz protocol: cannot find its own program (/proc/self/exe): %s\n", strerror(errno));
        return 2;
    }
    self[n] = '\0';
    cz_proto_spec s;
    cz_error err = {0};
    int rc = cz_proto_spec_load(&s, argv[optind], &err);
    if (rc) {
        fprintf(stderr, "chainz protocol: %s\n", err.msg);
        return status_of(rc);
    }
    size_t N = cz_proto_cells(&s), missing = 0;
    int status = 0;
    if (task >= 0) {
        cz_proto_signals_install();
        rc = cz_proto_run_task(&s, (size_t)task, self, &err);
    } else if (report) {
        rc = cz_proto_report(&s, &missing, &err);
        if (!rc && missing) status = 1;
    } else if (slurm) {
        rc = cz_proto_slurm(&s, self, submit, &err);
    } else if (list || check) {
        for (size_t I = 0; I < N && !rc; I++) {
            int d = cz_proto_cell_done(&s, I, &err);
            if (d < 0) rc = d;
            else if (d) missing++;
            if (d >= 0 && list) {
                int m, f, k;
                char dir[CZ_PROTO_PATH];
                cz_proto_cell_coords(&s, I, &m, &f, &k);
                cz_proto_cell_dir(&s, I, dir, sizeof dir);
                printf("%zu\t%s\t%s\t%llu\t%s\t%s\n", I, s.models[m].name, s.fractions[f].label,
                       (unsigned long long)s.seeds[k], d ? "done" : "todo", dir);
            }
        }
        if (!rc && check)
            printf("chainz protocol: %s is a valid spec: %zu runs (%d models x %d fractions x %d seeds), %zu done\n",
                   s.path, N, s.n_models, s.n_fractions, s.n_seeds, missing);
    } else {
        if (!jobs) {
            long cores = sysconf(_SC_NPROCESSORS_ONLN);
            jobs = cores / ((long)s.ranks * s.threads);
            if (jobs < 1) jobs = 1;
        }
        cz_proto_signals_install();
        int failed = 0;
        rc = cz_proto_run_local(&s, (int)jobs, self, &failed, &err);
        if (!rc || rc == CZ_ERUNTIME) { /* a report of what exists, also after failures */
            cz_error rerr = {0};
            int r2 = cz_proto_report(&s, &missing, &rerr);
            if (r2 && !rc) {
                rc = r2;
                err = rerr;
            }
        }
    }
    if (rc) fprintf(stderr, "chainz protocol: %s\n", err.msg);
    cz_proto_spec_free(&s);
    if (fflush(stdout) != 0) return 2;
    return rc ? status_of(rc) : status;
}
