/* `chainz prep`: reads a text CSV, numeric CSV, ARFF or IDX input, optionally splits it
 * (stratified) and keeps a fraction of the train split, and writes chainz-data files.
 * Options, progress and messages only: the work is in src/prep. */
#include "chainz/prep.h"
#include "chainz/corrupt.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "prep_usage.h"

#define PREP_MAX_COUNTS 4096 /* classes --count-per-class can name */

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

static int parse_u64(const char *s, uint64_t *out)
{
    if (!*s || *s == '-' || *s == '+') return -1;
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (*e || errno == ERANGE) return -1;
    *out = (uint64_t)v;
    return 0;
}

static int parse_long(const char *s, long *out)
{
    char *e;
    errno = 0;
    long v = strtol(s, &e, 10);
    if (!*s || *e || errno == ERANGE) return -1;
    *out = v;
    return 0;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0->tv_nsec);
}

/* appends to a summary buffer, never past its end */
static void add(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(char *buf, size_t len, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used + 1 >= len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
}

static void add_counts(char *buf, size_t len, const uint64_t *count, int classes)
{
    if (!count || classes > 20) return;
    for (int k = 0; k < classes; k++) add(buf, len, "%s%llu", k ? "/" : " [", (unsigned long long)count[k]);
    add(buf, len, "]");
}

/* "768 rows (dropped 0), d 8, classify 2 classes [500/268]" */
static void describe_set(char *buf, size_t len, const cz_prep_set *s)
{
    buf[0] = '\0';
    add(buf, len, "%zu rows", s->n);
    if (s->dropped) add(buf, len, " (%zu dropped for missing values)", s->dropped);
    add(buf, len, ", d %zu, %s", s->d, cz_head_name(s->task));
    if (s->task == CZ_HEAD_REGRESS) return;
    add(buf, len, " %d classes", s->classes);
    if (s->classes > 20) return;
    uint64_t *count = calloc((size_t)s->classes, sizeof *count);
    if (!count) return;
    for (size_t i = 0; i < s->n; i++) count[s->y_class[i]]++;
    add_counts(buf, len, count, s->classes);
    free(count);
}

typedef struct {
    int shown, tty;
} progress_state;

static void show_progress(void *ctx, const cz_prep_progress *p)
{
    progress_state *ps = ctx;
    if (!ps->tty) return;
    char pct[32] = "";
    if (p->size) snprintf(pct, sizeof pct, " %3.0f%%,", 100.0 * (double)p->offset / (double)p->size);
    fprintf(stderr, "\rchainz prep: pass %d/2 (%s):%s %llu rows, %.0f rows/s   ", p->pass,
            p->pass == 1 ? "labels" : "features", pct, (unsigned long long)p->rows,
            p->seconds > 0 ? (double)p->rows / p->seconds : 0.0);
    fflush(stderr);
    ps->shown = 1;
}

/* text or numeric CSV through cz_prep_stream */
static int run_stream(const char *format, const char *input, cz_prep_stream_opts *so,
                      const char *out, const struct timespec *t0)
{
    progress_state ps = {0, isatty(STDERR_FILENO)};
    so->progress = show_progress;
    so->progress_ctx = &ps;
    cz_prep_report rep;
    cz_error err = {0};
    int rc = cz_prep_stream(input, so, &rep, &err);
    char subd[160];
    cz_prep_subsample sub = {.fraction = so->fraction, .count = so->count, .per_class = so->per_class,
                             .n_per_class = so->n_per_class};
    cz_prep_subsample_describe(subd, sizeof subd, &sub);
    if (ps.shown) fputc('\n', stderr);
    if (rc) {
        cz_prep_report_free(&rep);
        return prep_fail(&err);
    }
    char s[2048] = "";
    add(s, sizeof s, "%llu rows", (unsigned long long)rep.rows);
    if (rep.bad_rows) add(s, sizeof s, " (%llu bad rows skipped)", (unsigned long long)rep.bad_rows);
    add(s, sizeof s, ", d %zu, %s", rep.d, cz_head_name(so->task));
    if (so->task != CZ_HEAD_REGRESS) {
        add(s, sizeof s, " %d classes", rep.classes);
        add_counts(s, sizeof s, rep.class_rows, rep.classes);
    }
    if (so->kind == CZ_PREP_CSV_NUMERIC) add(s, sizeof s, ", label '%s'", rep.label_name);
    if (so->kind == CZ_PREP_CSV_TEXT) {
        const cz_text_counts *t = &rep.text;
        add(s, sizeof s, "; text: %llu tokens", (unsigned long long)t->tokens);
        if (so->embeddings)
            add(s, sizeof s,
                ", %llu out of vocabulary (%.2f%%), %llu rows without a known token; "
                "vectors %zu x %zu (%.1f s)",
                (unsigned long long)t->oov_tokens,
                t->tokens ? 100.0 * (double)t->oov_tokens / (double)t->tokens : 0.0,
                (unsigned long long)t->empty_rows, rep.vocab.words, rep.vocab.dim, rep.seconds_vocab);
        else
            add(s, sizeof s, ", %llu rows without a token", (unsigned long long)t->empty_rows);
        if (rep.vocab.bad_lines)
            add(s, sizeof s, ", %zu bad vector lines skipped", rep.vocab.bad_lines);
        if (rep.vocab.duplicates) add(s, sizeof s, ", %zu repeated words ignored", rep.vocab.duplicates);
    }
    if (so->split) {
        add(s, sizeof s, "; ");
        for (int j = 0, first = 1; j < CZ_SPLIT_COUNT; j++)
            if (so->frac[j] > 0) {
                add(s, sizeof s, "%s%s %llu", first ? "" : ", ", cz_split_name(j),
                    (unsigned long long)rep.split_rows[j]);
                first = 0;
            }
        size_t plen = strlen(out);
        if (plen > 3 && !strcmp(out + plen - 3, ".h5")) plen -= 3;
        add(s, sizeof s, " (seed %llu)", (unsigned long long)so->seed);
        if (rep.fraction_dropped)
            add(s, sizeof s, ", %s of train (%llu rows left out)", subd,
                (unsigned long long)rep.fraction_dropped);
        add(s, sizeof s, " -> %.*s-*.h5", (int)(plen < 300 ? plen : 300), out);
    } else {
        if (rep.fraction_dropped)
            add(s, sizeof s, "; %s: %llu rows written, %llu left out", subd,
                (unsigned long long)rep.split_rows[CZ_SPLIT_TRAIN], (unsigned long long)rep.fraction_dropped);
        add(s, sizeof s, "; -> %s", out);
    }
    double total = seconds_since(t0);
    add(s, sizeof s, "; pass 1 %.2f s, pass 2 %.2f s (%.0f rows/s, %.1f MB/s of input); %.2f s",
        rep.seconds_pass1, rep.seconds_pass2,
        rep.seconds_pass2 > 0 ? (double)rep.rows / rep.seconds_pass2 : 0.0,
        rep.seconds_pass2 > 0 ? (double)rep.in_bytes / 1e6 / rep.seconds_pass2 : 0.0, total);
    printf("chainz prep %s: %s\n", format, s);
    if (rep.bad_rows) fprintf(stderr, "chainz prep: skipped %llu bad rows; the first: %s\n",
                              (unsigned long long)rep.bad_rows, rep.first_bad);
    if (rep.vocab.bad_lines)
        fprintf(stderr, "chainz prep: skipped %zu bad vector lines; the first: %s\n", rep.vocab.bad_lines,
                rep.vocab.first_bad);
    cz_prep_report_free(&rep);
    return 0;
}

/* arff or idx: read into memory, split, keep the fraction, write */
static int run_memory(const char *format, char **inputs, const cz_arff_opts *ao, int split,
                      const double frac[CZ_SPLIT_COUNT], const cz_prep_subsample *sub, uint64_t seed,
                      const char *out, char paths[CZ_SPLIT_COUNT][4096], const struct timespec *t0,
                      const cz_vocab_info *vocab)
{
    cz_error err = {0};
    cz_prep_set set;
    int rc = !strcmp(format, "arff") ? cz_prep_arff_read(&set, inputs[0], ao, &err)
                                     : cz_prep_idx_read(&set, inputs[0], inputs[1], &err);
    if (rc) return prep_fail(&err);
    char summary[1024];
    describe_set(summary, sizeof summary, &set);
    if (ao && ao->text) { /* string attributes: counts as for csv (one row per text value) */
        const cz_text_counts *t = cz_featurizer_counts(ao->text);
        add(summary, sizeof summary, "; text: %llu values, %llu tokens", (unsigned long long)t->rows,
            (unsigned long long)t->tokens);
        if (vocab)
            add(summary, sizeof summary,
                ", %llu out of vocabulary (%.2f%%), %llu values without a known token; vectors %zu x %zu",
                (unsigned long long)t->oov_tokens,
                t->tokens ? 100.0 * (double)t->oov_tokens / (double)t->tokens : 0.0,
                (unsigned long long)t->empty_rows, vocab->words, vocab->dim);
        else
            add(summary, sizeof summary, ", %llu values without a token", (unsigned long long)t->empty_rows);
        if (vocab && vocab->duplicates)
            add(summary, sizeof summary, ", %zu repeated words ignored", vocab->duplicates);
    }
    char splits[512] = "", subd[160];
    int all_rows = cz_prep_subsample_is_all(sub);
    cz_prep_subsample_describe(subd, sizeof subd, sub);
    if (!split && all_rows) {
        rc = cz_prep_write(&set, NULL, 0, out, NULL, 1, &err);
        add(splits, sizeof splits, "-> %s", out);
    } else {
        const double all[CZ_SPLIT_COUNT] = {1, 0, 0};
        const double *fr = split ? frac : all;
        cz_prep_split sp;
        size_t dropped = 0;
        rc = cz_prep_split_make(&sp, &set, fr, seed, &err);
        if (!rc && !all_rows) rc = cz_prep_split_subsample(&sp, &set, sub, seed, &dropped, &err);
        for (int j = 0; !rc && j < CZ_SPLIT_COUNT; j++) /* check all before writing any */
            if (fr[j] > 0 && sp.n[j] == 0)
                rc = cz_error_set(&err, CZ_EINVAL,
                                  "%s: split %s=%g gets no rows (each class of the %zu rows is cut "
                                  "separately and rounded): use a larger fraction",
                                  inputs[0], cz_split_name(j), fr[j], set.n);
        for (int j = 0; !rc && j < CZ_SPLIT_COUNT; j++) {
            if (fr[j] <= 0) continue;
            char note[160] = "";
            if (split)
                add(note, sizeof note, "split %s (%g of each class), seed %llu", cz_split_name(j), fr[j],
                    (unsigned long long)seed);
            if (j == CZ_SPLIT_TRAIN && !all_rows)
                add(note, sizeof note, "%sstratified %s, seed %llu", split ? "; " : "", subd,
                    (unsigned long long)seed);
            rc = cz_prep_write(&set, sp.rows[j], sp.n[j], split ? paths[j] : out, note, j == CZ_SPLIT_TRAIN,
                               &err);
            if (split) add(splits, sizeof splits, "%s%s %zu", j ? ", " : "", cz_split_name(j), sp.n[j]);
        }
        if (!rc) {
            if (!all_rows) add(splits, sizeof splits, "%s%s of train (%zu rows left out)",
                               split ? ", " : "", subd, dropped);
            size_t plen = strlen(out);
            if (plen > 3 && !strcmp(out + plen - 3, ".h5")) plen -= 3;
            if (split)
                add(splits, sizeof splits, " (seed %llu) -> %.*s-*.h5", (unsigned long long)seed,
                    (int)(plen < 300 ? plen : 300), out);
            else
                add(splits, sizeof splits, " (seed %llu) -> %s", (unsigned long long)seed, out);
        }
        cz_prep_split_free(&sp);
    }
    cz_prep_set_free(&set);
    if (rc) return prep_fail(&err);
    printf("chainz prep %s: %s; %s; %.2f s\n", format, summary, splits, seconds_since(t0));
    return 0;
}

int cz_cmd_prep(int argc, char **argv)
{
    enum { O_SPLIT = 256, O_SEED, O_CLASS, O_TASK, O_DROP, O_FRACTION, O_COUNT, O_COUNT_PC, O_EMB, O_HASH, O_L2,
           O_LABEL, O_LABEL_COL, O_LABEL_BASE, O_CLASSES, O_SKIP };
    static const struct option long_opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"split", required_argument, NULL, O_SPLIT},
        {"seed", required_argument, NULL, O_SEED},
        {"fraction", required_argument, NULL, O_FRACTION},
        {"count", required_argument, NULL, O_COUNT},
        {"count-per-class", required_argument, NULL, O_COUNT_PC},
        {"class", required_argument, NULL, O_CLASS},
        {"task", required_argument, NULL, O_TASK},
        {"drop-missing", no_argument, NULL, O_DROP},
        {"embeddings", required_argument, NULL, O_EMB},
        {"hash-dim", required_argument, NULL, O_HASH},
        {"l2-normalize", no_argument, NULL, O_L2},
        {"label", required_argument, NULL, O_LABEL},
        {"label-col", required_argument, NULL, O_LABEL_COL},
        {"label-base", required_argument, NULL, O_LABEL_BASE},
        {"classes", required_argument, NULL, O_CLASSES},
        {"skip-bad", required_argument, NULL, O_SKIP},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL, *split_spec = NULL, *class_name = NULL, *task_name = NULL;
    const char *embeddings = NULL, *label_name = NULL;
    uint64_t seed = CZ_PREP_DEFAULT_SEED, hash_dim = 0, label_col = 0, classes = 0, skip_bad = 0;
    long label_base = 0;
    double fraction = 1;
    uint64_t count = 0;
    static size_t per_class[PREP_MAX_COUNTS];
    int n_per_class = 0, sizes_given = 0;
    int drop_missing = 0, l2 = 0, have_base = 0, have_label_col = 0, have_classes = 0, have_skip = 0, c;
    if (argc > 1 && !strcmp(argv[1], "corrupt")) return cz_cmd_prep_corrupt(argc - 1, argv + 1);
#ifdef __GLIBC__
    optind = 0; /* full re-initialisation: the caller may have parsed other options */
#else
    optind = 1;
#endif
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", long_opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case O_SPLIT: split_spec = optarg; break;
        case O_SEED:
            if (parse_u64(optarg, &seed))
                return prep_usage_error("--seed needs an unsigned 64-bit integer, got", optarg);
            break;
        case O_FRACTION: {
            char *e;
            errno = 0;
            fraction = strtod(optarg, &e);
            if (!*optarg || *e || !(fraction > 0 && fraction <= 1))
                return prep_usage_error("--fraction needs a number in (0, 1], got", optarg);
            sizes_given++;
            break;
        }
        case O_COUNT:
            if (parse_u64(optarg, &count) || count < 1 || count > (uint64_t)SIZE_MAX / 2)
                return prep_usage_error("--count needs a positive integer, got", optarg);
            sizes_given++;
            break;
        case O_COUNT_PC: {
            const char *p = optarg;
            n_per_class = 0;
            for (;;) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t)(comma - p) : strlen(p);
                char num[32];
                uint64_t v;
                if (n_per_class >= PREP_MAX_COUNTS || len == 0 || len >= sizeof num)
                    return prep_usage_error("--count-per-class needs counts A,B,... (one per class), got", optarg);
                memcpy(num, p, len);
                num[len] = '\0';
                if (parse_u64(num, &v) || v > (uint64_t)SIZE_MAX / 2)
                    return prep_usage_error("--count-per-class needs counts A,B,... (one per class), got", optarg);
                per_class[n_per_class++] = (size_t)v;
                if (!comma) break;
                p = comma + 1;
            }
            sizes_given++;
            break;
        }
        case O_CLASS: class_name = optarg; break;
        case O_TASK: task_name = optarg; break;
        case O_DROP: drop_missing = 1; break;
        case O_EMB: embeddings = optarg; break;
        case O_HASH:
            if (parse_u64(optarg, &hash_dim) || hash_dim < 1 || hash_dim > CZ_TEXT_HASH_MAX_DIM) {
                char msg[96];
                snprintf(msg, sizeof msg, "--hash-dim needs an integer in 1..%zu, got", CZ_TEXT_HASH_MAX_DIM);
                return prep_usage_error(msg, optarg);
            }
            break;
        case O_L2: l2 = 1; break;
        case O_LABEL: label_name = optarg; break;
        case O_LABEL_COL:
            if (parse_u64(optarg, &label_col) || label_col < 1 || label_col > 1000000)
                return prep_usage_error("--label-col needs a column number >= 1 (1-based), got", optarg);
            have_label_col = 1;
            break;
        case O_LABEL_BASE:
            if (parse_long(optarg, &label_base) || label_base < -1000000000L || label_base > 1000000000L)
                return prep_usage_error("--label-base needs an integer, got", optarg);
            have_base = 1;
            break;
        case O_CLASSES:
            if (parse_u64(optarg, &classes) || classes < 2 || classes > 100000)
                return prep_usage_error("--classes needs an integer in 2..100000, got", optarg);
            have_classes = 1;
            break;
        case O_SKIP:
            if (parse_u64(optarg, &skip_bad) || skip_bad > (uint64_t)SIZE_MAX / 2)
                return prep_usage_error("--skip-bad needs a number of rows >= 0, got", optarg);
            have_skip = 1;
            break;
        case 'h': cz_prep_usage(stdout); return 0;
        case ':': return prep_usage_error("missing value for option", argv[optind - 1]);
        default: return prep_usage_error("unknown option", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return prep_usage_error("missing the input format (csv, numeric, arff or idx)", NULL);
    const char *format = argv[optind];
    char **inputs = argv + optind + 1;
    int n_inputs = argc - optind - 1;
    int is_csv = !strcmp(format, "csv"), is_num = !strcmp(format, "numeric");
    int is_arff = !strcmp(format, "arff"), is_idx = !strcmp(format, "idx");
    if (!strcmp(format, "corrupt"))
        return prep_usage_error("corrupt has options of its own and must follow prep directly: "
                                "chainz prep corrupt IN.h5 -o OUT.h5 --kind K --severity S", NULL);
    if (!is_csv && !is_num && !is_arff && !is_idx)
        return prep_usage_error("unknown input format (expected csv, numeric, arff or idx):", format);
    if (!is_idx && n_inputs != 1) {
        char msg[64];
        snprintf(msg, sizeof msg, "%s takes exactly one INPUT file", format);
        return prep_usage_error(msg, NULL);
    }
    if (is_idx && n_inputs != 2) return prep_usage_error("idx takes two files: IMAGES then LABELS", NULL);
    if (!is_arff && (class_name || drop_missing))
        return prep_usage_error("--class and --drop-missing apply to arff only", NULL);
    if (is_idx && task_name) return prep_usage_error("--task does not apply to idx", NULL);
    if (!is_csv && !is_arff && (embeddings || hash_dim || l2))
        return prep_usage_error("--embeddings, --hash-dim and --l2-normalize apply to csv and arff only",
                                NULL);
    if (is_arff && embeddings && hash_dim)
        return prep_usage_error("give --embeddings or --hash-dim, not both", NULL);
    if (is_arff && l2 && !embeddings && !hash_dim)
        return prep_usage_error("--l2-normalize needs a featurizer: --embeddings VEC.txt or --hash-dim D",
                                NULL);
    if (!is_num && label_name) return prep_usage_error("--label NAME applies to numeric only", NULL);
    if ((is_arff || is_idx) && (have_label_col || have_base || have_classes || have_skip))
        return prep_usage_error("--label-col, --label-base, --classes and --skip-bad apply to csv and numeric",
                                NULL);
    if (label_name && have_label_col) return prep_usage_error("give --label or --label-col, not both", NULL);
    if (is_csv && !!embeddings == !!hash_dim)
        return prep_usage_error(embeddings ? "give --embeddings or --hash-dim, not both"
                                           : "csv needs a featurizer: --embeddings VEC.txt or --hash-dim D",
                                NULL);
    if (!out) return prep_usage_error("missing -o OUT.h5", NULL);
    if (sizes_given > 1)
        return prep_usage_error("give at most one of --fraction, --count, --count-per-class", NULL);
    cz_prep_subsample sub = {.fraction = fraction, .count = (size_t)count,
                             .per_class = n_per_class ? per_class : NULL, .n_per_class = n_per_class};

    cz_error err = {0};
    double frac[CZ_SPLIT_COUNT] = {1, 0, 0};
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
    /* an output must never replace an input (the data file or the word vectors) */
    for (int j = 0; j < CZ_SPLIT_COUNT; j++) {
        const char *o = split_spec ? paths[j] : j == 0 ? out : NULL;
        for (int i = 0; o && i <= n_inputs; i++) {
            const char *in = i < n_inputs ? inputs[i] : embeddings;
            if (in && (!strcmp(in, o) || cz_prep_same_file(in, o))) {
                fprintf(stderr, "chainz prep: error: the output %s is the input file %s: expected another -o\n", o, in);
                return 1;
            }
        }
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int status;
    if (is_csv || is_num) {
        cz_prep_stream_opts so;
        cz_prep_stream_opts_default(&so, is_csv ? CZ_PREP_CSV_TEXT : CZ_PREP_CSV_NUMERIC);
        if (task_name) {
            cz_head h;
            if (cz_head_parse(task_name, &h) || (is_csv && h == CZ_HEAD_REGRESS))
                return prep_usage_error(is_csv ? "--task for csv expects classify or ordinal, got"
                                               : "--task for numeric expects classify, ordinal or regress, got",
                                        task_name);
            so.task = h;
        }
        if (so.task == CZ_HEAD_REGRESS && (have_classes || have_base))
            return prep_usage_error("--classes and --label-base do not apply to --task regress", NULL);
        so.label_col = (size_t)label_col;
        so.label_name = label_name;
        if (have_base) so.label_base = label_base;
        so.classes = (int)classes;
        so.embeddings = embeddings;
        so.hash_dim = (size_t)hash_dim;
        so.l2_normalize = l2;
        so.skip_bad = (size_t)skip_bad;
        so.split = split_spec != NULL;
        for (int j = 0; j < CZ_SPLIT_COUNT; j++) {
            so.frac[j] = frac[j];
            so.paths[j] = split_spec ? paths[j] : (j == CZ_SPLIT_TRAIN ? out : NULL);
        }
        so.fraction = fraction;
        so.count = sub.count;
        so.per_class = sub.per_class;
        so.n_per_class = sub.n_per_class;
        so.seed = seed;
        status = run_stream(format, inputs[0], &so, out, &t0);
    } else {
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
        /* string attributes: the csv featurizer, built the same way */
        cz_featurizer *feat = NULL;
        cz_vocab_info vinfo;
        int frc = 0;
        if (embeddings) {
            cz_vocab *v;
            frc = cz_vocab_load(&v, embeddings, 0, &err);
            if (!frc) {
                vinfo = *cz_vocab_get_info(v);
                frc = cz_featurizer_embed(&feat, v, l2, &err);
            }
        } else if (hash_dim) {
            frc = cz_featurizer_hash(&feat, (size_t)hash_dim, l2, &err);
        }
        if (frc) return prep_fail(&err);
        ao.text = feat;
        status = run_memory(format, inputs, &ao, split_spec != NULL, frac, &sub, seed, out, paths, &t0,
                            embeddings ? &vinfo : NULL);
        cz_featurizer_free(feat);
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "chainz prep: cannot write to standard output: %s\n", strerror(errno));
        return 1;
    }
    return status;
}
