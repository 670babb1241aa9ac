/* `chainz prep`: reads an ARFF or IDX input, optionally splits it (stratified), and writes
 * chainz-data files. Options and messages only: the work is in src/prep. */
#include "chainz/prep.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PREP_DEFAULT_SEED 1

static void prep_usage(FILE *f)
{
    fprintf(f,
"usage: chainz prep arff INPUT.arff -o OUT.h5 [options]\n"
"       chainz prep idx IMAGES LABELS -o OUT.h5 [options]\n"
"\n"
"Turns an input file into a chainz-data HDF5 set, or one set per split.\n"
"Inputs may be gzip-compressed (recognised by their magic bytes).\n"
"\n"
"formats:\n"
"  arff INPUT         Weka ARFF. Each numeric/real/integer attribute is one feature;\n"
"                     a nominal attribute {v1,...,vK} is K one-hot features (in\n"
"                     declaration order). string/date/relational attributes, sparse\n"
"                     rows and instance weights are rejected. The class attribute\n"
"                     gives the labels: nominal -> classify, classes 0..K-1 in\n"
"                     declaration order; numeric -> regress.\n"
"  idx IMAGES LABELS  MNIST-style IDX: unsigned-byte images [N, R, C] become N x R*C\n"
"                     features scaled to [0, 1]; unsigned-byte labels 0..9, 10 classes.\n"
"\n"
"options:\n"
"  -o, --output OUT.h5  output file (required). With --split, OUT less its .h5 suffix\n"
"                       is a prefix: OUT-train.h5, OUT-val.h5, OUT-test.h5, each written\n"
"                       only if its fraction is > 0.\n"
"      --split SPEC     stratified split, e.g. train=0.8,val=0.1,test=0.1 (any of the\n"
"                       three names; fractions in [0, 1] adding up to 1). Each class is\n"
"                       shuffled and cut in these proportions (regress: all rows as one\n"
"                       group). Default: no split, one file OUT.h5.\n"
"      --seed S         seed of the split's shuffle, an unsigned 64-bit integer; the\n"
"                       same seed gives the same split on any machine. Default: %d.\n"
"      --class NAME     arff: the class attribute (exact name). Default: the last one.\n"
"      --task T         arff: auto, classify, ordinal or regress. Default: auto\n"
"                       (nominal class -> classify, numeric class -> regress);\n"
"                       ordinal ranks the nominal values in declaration order.\n"
"      --drop-missing   arff: drop rows holding a missing value '?' (counted in the\n"
"                       summary). Default: a '?' is an error naming its line.\n"
"  -h, --help           print this help and exit\n"
"\n"
"Prints one summary line: rows, features d, classes, rows per split, seconds.\n"
"Exit status: 0 done, 1 usage or input error (message on stderr), 2 out of memory.\n",
            PREP_DEFAULT_SEED);
}

static int prep_fail(const cz_error *err)
{
    fprintf(stderr, "chainz prep: %s\n", err->msg);
    return err->code == CZ_ENOMEM || err->code == CZ_ERUNTIME ? 2 : 1;
}

static int prep_usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "chainz prep: %s%s%s%s\n(chainz prep --help for the options)\n", msg,
            arg ? " '" : "", arg ? arg : "", arg ? "'" : "");
    return 1;
}

static int parse_seed(const char *s, uint64_t *out)
{
    if (!*s || *s == '-' || *s == '+') return -1;
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (*e || errno == ERANGE) return -1;
    *out = (uint64_t)v;
    return 0;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0->tv_nsec);
}

/* "rows 768 (dropped 0), d 8, classify 2 classes [500/268]" */
static void describe_set(char *buf, size_t len, const cz_prep_set *s)
{
    int w = snprintf(buf, len, "%zu rows", s->n);
    if (s->dropped && w > 0 && (size_t)w < len)
        w += snprintf(buf + w, len - (size_t)w, " (%zu dropped for missing values)", s->dropped);
    if (w > 0 && (size_t)w < len)
        w += snprintf(buf + w, len - (size_t)w, ", d %zu, %s", s->d, cz_head_name(s->task));
    if (s->task == CZ_HEAD_REGRESS || w <= 0 || (size_t)w >= len) return;
    w += snprintf(buf + w, len - (size_t)w, " %d classes", s->classes);
    if (s->classes > 20 || w <= 0 || (size_t)w >= len) return;
    size_t *count = calloc((size_t)s->classes, sizeof *count);
    if (!count) return;
    for (size_t i = 0; i < s->n; i++) count[s->y_class[i]]++;
    for (int k = 0; k < s->classes && w > 0 && (size_t)w < len; k++)
        w += snprintf(buf + w, len - (size_t)w, "%s%zu", k ? "/" : " [", count[k]);
    if (w > 0 && (size_t)w < len) snprintf(buf + w, len - (size_t)w, "]");
    free(count);
}

int cz_cmd_prep(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"split", required_argument, NULL, 's'},
        {"seed", required_argument, NULL, 'S'},
        {"class", required_argument, NULL, 'c'},
        {"task", required_argument, NULL, 't'},
        {"drop-missing", no_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL, *split_spec = NULL, *class_name = NULL, *task_name = NULL;
    uint64_t seed = PREP_DEFAULT_SEED;
    int drop_missing = 0, c;
#ifdef __GLIBC__
    optind = 0; /* full re-initialisation: the caller may have parsed other options */
#else
    optind = 1;
#endif
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", long_opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 's': split_spec = optarg; break;
        case 'S':
            if (parse_seed(optarg, &seed))
                return prep_usage_error("--seed needs an unsigned 64-bit integer, got", optarg);
            break;
        case 'c': class_name = optarg; break;
        case 't': task_name = optarg; break;
        case 'm': drop_missing = 1; break;
        case 'h': prep_usage(stdout); return 0;
        case ':': return prep_usage_error("missing value for option", argv[optind - 1]);
        default: return prep_usage_error("unknown option", argv[optind - 1]);
        }
    }
    if (optind >= argc) return prep_usage_error("missing the input format (arff or idx)", NULL);
    const char *format = argv[optind];
    char **inputs = argv + optind + 1;
    int n_inputs = argc - optind - 1;
    int is_arff = !strcmp(format, "arff"), is_idx = !strcmp(format, "idx");
    if (!is_arff && !is_idx)
        return prep_usage_error("unknown input format (expected arff or idx):", format);
    if (is_arff && n_inputs != 1)
        return prep_usage_error("arff takes exactly one INPUT file", NULL);
    if (is_idx && n_inputs != 2)
        return prep_usage_error("idx takes two files: IMAGES then LABELS", NULL);
    if (is_idx && (class_name || task_name || drop_missing))
        return prep_usage_error("--class, --task and --drop-missing apply to arff only", NULL);
    if (!out) return prep_usage_error("missing -o OUT.h5", NULL);

    cz_error err = {0};
    cz_arff_opts ao;
    cz_arff_opts_default(&ao);
    ao.class_name = class_name;
    ao.drop_missing = drop_missing;
    if (task_name && strcmp(task_name, "auto")) {
        cz_head h;
        if (cz_head_parse(task_name, &h))
            return prep_usage_error("--task expects auto, classify, ordinal or regress, got", task_name);
        ao.task = (int)h;
    }
    double frac[CZ_SPLIT_COUNT];
    if (split_spec && cz_prep_split_parse(split_spec, frac, &err)) return prep_fail(&err);

    /* output names: OUT.h5, or PREFIX-<split>.h5 */
    char paths[CZ_SPLIT_COUNT][4096];
    if (split_spec) {
        size_t plen = strlen(out);
        if (plen > 3 && !strcmp(out + plen - 3, ".h5")) plen -= 3;
        for (int j = 0; j < CZ_SPLIT_COUNT; j++) {
            int w = snprintf(paths[j], sizeof paths[j], "%.*s-%s.h5", (int)plen, out, cz_split_name(j));
            if (w < 0 || (size_t)w >= sizeof paths[j])
                return prep_usage_error("output name too long:", out);
        }
    }

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cz_prep_set set;
    int rc = is_arff ? cz_prep_arff_read(&set, inputs[0], &ao, &err)
                     : cz_prep_idx_read(&set, inputs[0], inputs[1], &err);
    if (rc) return prep_fail(&err);

    char summary[512];
    describe_set(summary, sizeof summary, &set);
    char splits[256] = "";
    if (!split_spec) {
        rc = cz_prep_write(&set, NULL, 0, out, NULL, &err);
        snprintf(splits, sizeof splits, "-> %s", out);
    } else {
        cz_prep_split sp;
        rc = cz_prep_split_make(&sp, &set, frac, seed, &err);
        for (int j = 0; !rc && j < CZ_SPLIT_COUNT; j++) /* check all before writing any */
            if (frac[j] > 0 && sp.n[j] == 0)
                rc = cz_error_set(&err, CZ_EINVAL,
                                  "%s: split %s=%g gets no rows (each class of the %zu rows is cut "
                                  "separately and rounded): use a larger fraction",
                                  inputs[0], cz_split_name(j), frac[j], set.n);
        for (int j = 0; !rc && j < CZ_SPLIT_COUNT; j++) {
            if (frac[j] <= 0) continue;
            char note[96];
            snprintf(note, sizeof note, "split %s (%g of each class), seed %llu", cz_split_name(j),
                     frac[j], (unsigned long long)seed);
            rc = cz_prep_write(&set, sp.rows[j], sp.n[j], paths[j], note, &err);
            size_t used = strlen(splits);
            snprintf(splits + used, sizeof splits - used, "%s%s %zu", used ? ", " : "",
                     cz_split_name(j), sp.n[j]);
        }
        if (!rc) {
            size_t used = strlen(splits), plen = strlen(out);
            if (plen > 3 && !strcmp(out + plen - 3, ".h5")) plen -= 3;
            snprintf(splits + used, sizeof splits - used, " (seed %llu) -> %.*s-*.h5",
                     (unsigned long long)seed, (int)(plen < 150 ? plen : 150), out);
        }
        cz_prep_split_free(&sp);
    }
    cz_prep_set_free(&set);
    if (rc) return prep_fail(&err);
    printf("chainz prep %s: %s; %s; %.2f s\n", format, summary, splits, seconds_since(&t0));
    if (fflush(stdout) != 0) {
        fprintf(stderr, "chainz prep: cannot write to standard output: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}
