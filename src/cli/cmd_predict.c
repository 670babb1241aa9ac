/* chainz predict: options, usage, messages and the exit status (the drift status 3 only
 * with --fail-on-drift). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chainz/config.h"
#include "chainz/drift.h"
#include "chainz/engine.h"
#include "chainz/predict.h"

static void usage_predict(FILE *f)
{
    fprintf(f,
            "usage: mpirun -np P chainz predict --model CKPT.h5|RUN_DIR --data FILE --out PRED.h5 [options]\n"
            "  --model PATH           checkpoint, or a run directory (its newest checkpoint that verifies)  required\n"
            "  --data FILE            rows to predict: a chainz-data file (its labels, when present, give\n"
            "                         accuracy / MAE), a plain HDF5 file with a 2-D numeric dataset, or a\n"
            "                         CSV of numbers (optional header line; plain or gzip)  required\n"
            "  --dataset NAME         the plain HDF5 file's dataset      the only 2-D dataset\n"
            "  --out PRED.h5          /label, /prob, /value, /norms/input, /norms/layer_<l> with summary\n"
            "                         attributes (mean, p50, p90, p99, max, tau = p99/mean), /drift/<family>;\n"
            "                         written atomically, the same bytes for any number of ranks  required\n"
            "  --json FILE            the summary (and the drift verdict) as JSON   none\n"
            "  --no-norms             predictions only (no per-sample norms, no drift)\n"
            "  --batch N              rows per library call (a chunk: ranks share whole chunks)  256\n"
            "  --threads T            BLIS threads per rank (1..%d)              1\n"
            "  --kernels K            BLIS kernel set (see chainz train --help)   auto\n"
            "drift monitor\n"
            "  --reference RUN_DIR    compare the layer-Jacobian norms with the run's last-epoch histograms\n"
            "                         (RUN_DIR/metrics.h5): p50/p90/p99 ratios and a two-sample KS test on\n"
            "                         the shared log-bucket bins; input_grad is not comparable (says why)\n"
            "  --drift-threshold R    a family moved when its p50, p90 or p99 ratio is > R or < 1/R  %g\n"
            "  --drift-alpha A        ... and is flagged when the KS test also rejects at level A  %g\n"
            "  --drift-min-d D        ... with a KS distance D of at least this (the reference was\n"
            "                         gathered while training moved the model: clean batches differ\n"
            "                         from it by D ~ 0.06 on Fashion-MNIST, docs/RESULTS.md)  %g\n"
            "  --fail-on-drift        exit with status 3 when the batch is flagged (the outputs are written)\n"
            "exit status: 0 done (flagged or not, without --fail-on-drift), 1 usage or input error\n"
            "(nothing written), 2 runtime failure, 3 drift flagged with --fail-on-drift.\n",
            CZ_MAX_THREADS, CZ_DRIFT_THRESHOLD, CZ_DRIFT_ALPHA, CZ_DRIFT_D_MIN);
}

static int dnum(const char *opt, const char *s, double lo, double hi, double *out, cz_error *err)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    for (const char *c = s; *c; c++)
        if (!strchr("0123456789.eE+-", *c)) end = (char *)s;
    if (end == s || *end || errno || !isfinite(*out) || !(*out > lo && *out < hi))
        return cz_error_set(err, CZ_EINVAL, "%s: '%s' is not a number in (%g, %g)", opt, s, lo, hi);
    return 0;
}

static int lnum(const char *opt, const char *s, long lo, long hi, long *out, cz_error *err)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi || strchr(s, ' '))
        return cz_error_set(err, CZ_EINVAL, "%s: '%s' is not an integer in %ld..%ld", opt, s, lo, hi);
    *out = v;
    return 0;
}

/* @return 0, 1 for --help, CZ_EINVAL */
static int parse(int argc, char **argv, cz_predict_opts *o, int *fail_on_drift, cz_error *err)
{
    enum { O_MODEL = 256, O_DATA, O_DATASET, O_OUT, O_JSON, O_REF, O_NONORMS, O_BATCH, O_THREADS, O_THR, O_ALPHA,
           O_FAIL, O_HELP, O_DMIN };
    static const struct option opts[] = {
        {"model", 1, 0, O_MODEL}, {"data", 1, 0, O_DATA}, {"dataset", 1, 0, O_DATASET}, {"out", 1, 0, O_OUT},
        {"json", 1, 0, O_JSON}, {"reference", 1, 0, O_REF}, {"no-norms", 0, 0, O_NONORMS},
        {"batch", 1, 0, O_BATCH}, {"threads", 1, 0, O_THREADS}, {"drift-threshold", 1, 0, O_THR},
        {"drift-alpha", 1, 0, O_ALPHA}, {"drift-min-d", 1, 0, O_DMIN}, {"fail-on-drift", 0, 0, O_FAIL},
        {"help", 0, 0, O_HELP}, {0, 0, 0, 0}};
    *o = (cz_predict_opts){.model = "", .data = "", .dataset = "", .out = "", .json = "", .reference = "",
                           .norms = 1, .batch = 256, .threads = 1, .drift_threshold = CZ_DRIFT_THRESHOLD,
                           .drift_alpha = CZ_DRIFT_ALPHA, .drift_d_min = CZ_DRIFT_D_MIN};
    *fail_on_drift = 0;
    int thr_given = 0;
    optind = 1;
    opterr = 0;
    int c, rc = 0;
    long v;
    int li = 0;
    while (!rc && (c = getopt_long(argc, argv, "", opts, &li)) != -1) {
        /* an empty value is a script's unset variable: --reference "" would drop the drift
         * check without a word, --json "" the JSON a service then reads stale */
        if (optarg && !optarg[0])
            return cz_error_set(err, CZ_EINVAL, "--%s: empty value (see chainz predict --help)", opts[li].name);
        switch (c) {
        case O_MODEL: o->model = optarg; break;
        case O_DATA: o->data = optarg; break;
        case O_DATASET: o->dataset = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_JSON: o->json = optarg; break;
        case O_REF: o->reference = optarg; break;
        case O_NONORMS: o->norms = 0; break;
        case O_FAIL: *fail_on_drift = 1; break;
        case O_BATCH:
            if (!(rc = lnum("--batch", optarg, 1, 1L << 20, &v, err))) o->batch = v;
            break;
        case O_THREADS:
            if (!(rc = lnum("--threads", optarg, 1, CZ_MAX_THREADS, &v, err))) o->threads = (int)v;
            break;
        case O_THR: rc = dnum("--drift-threshold", optarg, 1, 1e300, &o->drift_threshold, err); thr_given = 1; break;
        case O_ALPHA: rc = dnum("--drift-alpha", optarg, 0, 1, &o->drift_alpha, err); thr_given = 1; break;
        case O_DMIN: /* 0 (KS's p alone) and 1 (never) allowed */
            rc = dnum("--drift-min-d", optarg, -1, 2, &o->drift_d_min, err);
            if (!rc && !(o->drift_d_min >= 0 && o->drift_d_min <= 1))
                rc = cz_error_set(err, CZ_EINVAL, "--drift-min-d: '%s' is not a number in [0, 1]", optarg);
            thr_given = 1;
            break;
        case O_HELP: return 1;
        default:
            return cz_error_set(err, CZ_EINVAL, "unknown option or missing value: %s (see chainz predict --help)",
                                argv[optind - 1]);
        }
    }
    if (rc) return rc;
    if (optind < argc) return cz_error_set(err, CZ_EINVAL, "unexpected argument '%s'", argv[optind]);
    if (!o->model[0] || !o->data[0] || !o->out[0])
        return cz_error_set(err, CZ_EINVAL, "--model, --data and --out are required (see chainz predict --help)");
    if (o->reference[0] && !o->norms)
        return cz_error_set(err, CZ_EINVAL, "--reference compares the per-sample norms, which --no-norms turns off: "
                            "use one");
    if (!o->reference[0] && (thr_given || *fail_on_drift))
        return cz_error_set(err, CZ_EINVAL, "--drift-threshold, --drift-alpha, --drift-min-d and --fail-on-drift need --reference "
                            "RUN_DIR");
    return 0;
}

/* @return the exit status (documented in main.c and the usage) */
int cz_cmd_predict(int argc, char **argv, const cz_dist *d)
{
    cz_predict_opts o;
    cz_error err = {0};
    int fail_on_drift = 0, flagged = 0;
    int rc = parse(argc, argv, &o, &fail_on_drift, &err);
    if (rc == 1) {
        if (d->rank == 0) usage_predict(stdout);
        return 0;
    }
    if (!rc) rc = cz_predict(&o, d, &flagged, &err);
    if (rc) {
        if (d->rank == 0) fprintf(stderr, "chainz predict: error: %s\n", err.msg);
        return rc == CZ_EINVAL ? 1 : 2;
    }
    return flagged && fail_on_drift ? 3 : 0;
}
