/* Text and numeric CSV -> chainz-data, streamed in two passes (include/chainz/prep.h):
 *
 *   pass 1  every record is parsed and checked by the row rules (rows.c); only the label of
 *           each good row is kept. This fixes the row count, K, the bad rows and, through
 *           cz_prep_split_make / cz_prep_split_fraction on the labels, the output of every row.
 *   pass 2  the file is parsed again; each good row is featurized (text) or converted
 *           (numeric) and pushed into its output, whose contiguous /features has exactly the
 *           rows counted in pass 1. A row whose label differs from pass 1 means the file
 *           changed: an error, never a silently wrong file.
 *
 * Why two passes and not one pass into chunked, extendible datasets: the trainer maps
 * contiguous /features (one page-cache copy per node) and has to read chunked files by
 * hyperslabs; an exact stratified split needs the class counts first; K needs the largest
 * label. Pass 1 only parses (no tokenizing, no featurizing) and costs a small part of the
 * whole (docs/PREP.md has the measured split). */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROGRESS_EVERY 65536

void cz_prep_stream_opts_default(cz_prep_stream_opts *o, cz_prep_csv_kind kind)
{
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->label_base = kind == CZ_PREP_CSV_TEXT ? 1 : 0;
    o->task = CZ_HEAD_CLASSIFY;
    o->frac[CZ_SPLIT_TRAIN] = 1;
    o->fraction = 1;
    o->seed = 1;
}

void cz_prep_report_free(cz_prep_report *r)
{
    if (!r) return;
    free(r->class_rows);
    r->class_rows = NULL;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    const cz_prep_stream_opts *o;
    cz_prep_report *rep;
    cz_rowfmt fmt;
    cz_featurizer *feat;
    size_t d;
    /* pass 1 results */
    size_t rows, cap;
    int32_t *yc;
    float *yv;
    int32_t max_class;
    unsigned char *which; /* [rows] output of each good row, or NO_OUTPUT */
    /* pass 2 scratch */
    float *row;
    char *text;
    size_t text_cap;
    cz_prep_out *out[CZ_SPLIT_COUNT];
} job;

#define NO_OUTPUT 0xff

static void progress(const job *J, int pass, uint64_t rows, const cz_csv *c, double t0)
{
    if (!J->o->progress) return;
    cz_prep_progress p = {pass, rows, cz_csv_offset(c), cz_csv_size(c), now_s() - t0};
    J->o->progress(J->o->progress_ctx, &p);
}

/* A bad record: skipped while the budget lasts (counted; the first message kept). */
static int bad_row(job *J, uint64_t *bad, const cz_error *why, cz_error *err)
{
    size_t limit = J->o->skip_bad;
    if (++*bad > limit) {
        if (err != why) *err = *why;
        if (limit) {
            size_t used = strlen(err->msg);
            snprintf(err->msg + used, sizeof err->msg - used, " (more than --skip-bad %zu bad rows)", limit);
        }
        return err->code ? err->code : CZ_EINVAL;
    }
    if (*bad == 1 && J->rep) snprintf(J->rep->first_bad, sizeof J->rep->first_bad, "%.390s", why->msg);
    return 0;
}

/* Opens the input and, for numeric CSV, reads the header. */
static int open_input(job *J, cz_csv **c, const char *input, cz_error *err)
{
    int rc = cz_csv_open(c, input, err);
    if (rc || J->o->kind != CZ_PREP_CSV_NUMERIC) return rc;
    rc = cz_csv_next(*c, err);
    if (rc == 0)
        rc = cz_error_set(err, CZ_EINVAL, "%s: empty file (expected a header line naming the columns)", input);
    if (rc < 0) return rc;
    size_t nf;
    const cz_csv_field *f = cz_csv_fields(*c, &nf);
    if (J->fmt.names) { /* pass 2: the same header again */
        if (nf != J->fmt.nfields)
            return cz_error_set(err, CZ_EINVAL, "%s: the file changed between the two passes (header)", input);
        return 0;
    }
    rc = cz_row_header(&J->fmt, f, nf, cz_csv_line(*c), J->o->label_name, J->rep->label_name,
                       sizeof J->rep->label_name, err);
    if (!rc) J->d = nf - 1;
    return rc;
}

static int push_label(job *J, int32_t yc, float yv)
{
    if (J->rows == J->cap) {
        size_t cap = J->cap ? 2 * J->cap : 65536;
        if (J->fmt.task == CZ_HEAD_REGRESS) {
            float *p = realloc(J->yv, cap * sizeof *p);
            if (!p) return -1;
            J->yv = p;
        } else {
            int32_t *p = realloc(J->yc, cap * sizeof *p);
            if (!p) return -1;
            J->yc = p;
        }
        J->cap = cap;
    }
    if (J->yc) {
        J->yc[J->rows] = yc;
        if (yc > J->max_class) J->max_class = yc;
    } else {
        J->yv[J->rows] = yv;
    }
    J->rows++;
    return 0;
}

static int pass1(job *J, const char *input, cz_error *err)
{
    double t0 = now_s();
    cz_csv *c = NULL;
    int rc = open_input(J, &c, input, err);
    uint64_t records = 0;
    J->max_class = -1;
    while (!rc) {
        int r = cz_csv_next(c, err);
        if (r == 0) break;
        if (++records % PROGRESS_EVERY == 0) progress(J, 1, records, c, t0);
        cz_error why = {0};
        if (r < 0) {
            if (r != CZ_EINVAL || cz_csv_broken(c)) {
                rc = r;
                break;
            }
            rc = bad_row(J, &J->rep->bad_rows, err, err);
            continue;
        }
        size_t nf;
        const cz_csv_field *f = cz_csv_fields(c, &nf);
        int32_t yc = 0;
        float yv = 0;
        r = cz_row_parse(&J->fmt, f, nf, cz_csv_line(c), &yc, &yv, NULL, &why);
        if (r == CZ_EINVAL) {
            rc = bad_row(J, &J->rep->bad_rows, &why, err);
            continue;
        }
        if (r) {
            *err = why;
            rc = r;
        } else if (push_label(J, yc, yv)) {
            rc = cz_error_set(err, CZ_ENOMEM, "%s: out of memory for the labels of %zu rows", input, J->rows);
        }
    }
    if (c) {
        progress(J, 1, records, c, t0);
        J->rep->in_bytes = cz_csv_size(c);
    }
    cz_csv_close(c);
    J->rep->seconds_pass1 = now_s() - t0;
    if (rc) return rc;
    if (J->rows == 0) {
        if (J->rep->bad_rows)
            return cz_error_set(err, CZ_EINVAL, "%s: all %llu rows are bad (the first: %s)", input,
                                (unsigned long long)J->rep->bad_rows, J->rep->first_bad);
        if (J->o->kind == CZ_PREP_CSV_NUMERIC)
            return cz_error_set(err, CZ_EINVAL, "%s: no data rows after the header", input);
        return cz_error_set(err, CZ_EINVAL,
                            "%s: empty file (expected records \"LABEL\",\"TEXT\"[,\"TEXT\"...])", input);
    }
    return 0;
}

/* K, the class counts, the split and the fraction -> J->which */
static int assign(job *J, const char *input, cz_error *err)
{
    const cz_prep_stream_opts *o = J->o;
    cz_prep_report *rep = J->rep;
    int regress = J->fmt.task == CZ_HEAD_REGRESS;
    if (!regress) {
        long K = o->classes ? o->classes : (long)J->max_class + 1;
        if (K < 2)
            return cz_error_set(err, CZ_EINVAL,
                                "%s: every label is %ld (class 0): at least two classes are needed "
                                "(check --label-base, or give --classes)",
                                input, o->label_base);
        rep->classes = (int)K;
        if (!(rep->class_rows = calloc((size_t)K, sizeof *rep->class_rows)))
            return cz_error_set(err, CZ_ENOMEM, "out of memory");
        for (size_t i = 0; i < J->rows; i++) rep->class_rows[J->yc[i]]++;
    }
    cz_prep_set S = {.n = J->rows, .y_class = J->yc, .y_value = J->yv, .task = J->fmt.task,
                     .classes = rep->classes};
    cz_prep_split sp;
    int rc = cz_prep_split_make(&sp, &S, o->frac, o->seed, err);
    if (rc) return rc;
    cz_prep_subsample sub = {.fraction = o->fraction, .count = o->count, .per_class = o->per_class,
                             .n_per_class = o->n_per_class};
    if (!cz_prep_subsample_is_all(&sub)) {
        size_t dropped = 0;
        rc = cz_prep_split_subsample(&sp, &S, &sub, o->seed, &dropped, err);
        rep->fraction_dropped = dropped;
    }
    for (int j = 0; !rc && j < CZ_SPLIT_COUNT; j++)
        if (o->frac[j] > 0 && sp.n[j] == 0)
            rc = cz_error_set(err, CZ_EINVAL,
                              "%s: split %s=%g gets no rows (each class of the %zu rows is cut "
                              "separately and rounded): use a larger fraction",
                              input, cz_split_name(j), o->frac[j], J->rows);
    if (!rc && !(J->which = malloc(J->rows)))
        rc = cz_error_set(err, CZ_ENOMEM, "out of memory for %zu rows", J->rows);
    if (!rc) {
        memset(J->which, NO_OUTPUT, J->rows);
        for (int j = 0; j < CZ_SPLIT_COUNT; j++) {
            for (size_t i = 0; i < sp.n[j]; i++) J->which[sp.rows[j][i]] = (unsigned char)j;
            rep->split_rows[j] = sp.n[j];
        }
    }
    cz_prep_split_free(&sp);
    return rc;
}

static void describe_source(const job *J, const char *input, int j, char *buf, size_t len)
{
    const cz_prep_stream_opts *o = J->o;
    int w;
    if (o->kind == CZ_PREP_CSV_TEXT)
        w = snprintf(buf, len, "csv text %s; label field %zu (label base %ld); other fields joined as text",
                     input, J->fmt.label_col + 1, o->label_base);
    else
        w = snprintf(buf, len, "csv numeric %s; label column %zu '%s'%s; %zu feature columns", input,
                     J->fmt.label_col + 1, J->rep->label_name,
                     J->fmt.task == CZ_HEAD_REGRESS ? "" : " (integer classes)", J->d);
    if (w < 0 || (size_t)w >= len) return;
    if (J->rep->bad_rows)
        w += snprintf(buf + w, len - (size_t)w, "; %llu bad rows skipped",
                      (unsigned long long)J->rep->bad_rows);
    if (w < 0 || (size_t)w >= len) return;
    if (o->split)
        w += snprintf(buf + w, len - (size_t)w, "; split %s (%g of each class), seed %llu",
                      cz_split_name(j), o->frac[j], (unsigned long long)o->seed);
    cz_prep_subsample sub = {.fraction = o->fraction, .count = o->count, .per_class = o->per_class,
                             .n_per_class = o->n_per_class};
    if (w > 0 && (size_t)w < len && j == CZ_SPLIT_TRAIN && !cz_prep_subsample_is_all(&sub)) {
        char d[160];
        cz_prep_subsample_describe(d, sizeof d, &sub);
        snprintf(buf + w, len - (size_t)w, "; a stratified subsample (%s) of %s, seed %llu", d,
                 o->split ? "it" : "the rows", (unsigned long long)o->seed);
    }
}

static int pass2(job *J, const char *input, cz_error *err)
{
    const cz_prep_stream_opts *o = J->o;
    double t0 = now_s();
    int rc = 0;
    for (int j = 0; !rc && j < CZ_SPLIT_COUNT; j++)
        if (o->frac[j] > 0)
            rc = cz_prep_out_open(&J->out[j], o->paths[j], J->rep->split_rows[j], J->d, J->fmt.task,
                                  J->rep->classes, j == CZ_SPLIT_TRAIN, err);
    if (rc) return rc;
    if (!(J->row = malloc(J->d * sizeof *J->row)))
        return cz_error_set(err, CZ_ENOMEM, "out of memory");
    cz_csv *c = NULL;
    rc = open_input(J, &c, input, err);
    uint64_t records = 0, bad = 0;
    size_t i = 0;
    while (!rc) {
        int r = cz_csv_next(c, err);
        if (r == 0) break;
        if (++records % PROGRESS_EVERY == 0) progress(J, 2, records, c, t0);
        if (r < 0) {
            if (r != CZ_EINVAL || cz_csv_broken(c)) rc = r;
            else if (++bad > J->rep->bad_rows) { /* pass 1 accepted it */
                cz_error why = *err;
                rc = cz_error_set(err, CZ_EINVAL, "%s: the file changed between the two passes (%s)",
                                  input, why.msg);
            }
            continue;
        }
        size_t nf, line = cz_csv_line(c);
        const cz_csv_field *f = cz_csv_fields(c, &nf);
        int32_t yc = 0;
        float yv = 0;
        cz_error why;
        r = cz_row_parse(&J->fmt, f, nf, line, &yc, &yv, J->row, &why);
        if (r == CZ_EINVAL) {
            if (++bad > J->rep->bad_rows)
                rc = cz_error_set(err, CZ_EINVAL, "%s: the file changed between the two passes (%s)",
                                  input, why.msg);
            continue;
        }
        if (r) {
            *err = why;
            rc = r;
            break;
        }
        if (i >= J->rows || (J->yc ? J->yc[i] != yc : J->yv[i] != yv)) {
            rc = cz_error_set(err, CZ_EINVAL, "%s:%zu: the file changed between the two passes", input, line);
            break;
        }
        int j = J->which[i++];
        if (j == NO_OUTPUT) continue; /* left out by the fraction */
        if (J->feat) {
            size_t len;
            if (cz_row_text(&J->fmt, f, nf, &J->text, &J->text_cap, &len)) {
                rc = cz_error_set(err, CZ_ENOMEM, "%s:%zu: out of memory for the text", input, line);
                break;
            }
            cz_featurizer_apply(J->feat, cz_prep_out_row(J->out[j]), J->text, len);
        } else {
            memcpy(cz_prep_out_row(J->out[j]), J->row, J->d * sizeof *J->row);
        }
        rc = cz_prep_out_push(J->out[j], yc, yv, err);
    }
    if (c) progress(J, 2, records, c, t0);
    if (!rc && i != J->rows)
        rc = cz_error_set(err, CZ_EINVAL, "%s: the file changed between the two passes (%zu rows, then %zu)",
                          input, J->rows, i);
    cz_csv_close(c);
    if (rc) return rc;
    if (J->feat) {
        const cz_text_counts *tc = cz_featurizer_counts(J->feat);
        J->rep->text = *tc;
        char desc[400];
        cz_featurizer_describe(J->feat, desc, sizeof desc);
        int w = snprintf(J->rep->featurizer, sizeof J->rep->featurizer, "%s", desc);
        if (w > 0 && (size_t)w < sizeof J->rep->featurizer) {
            if (o->embeddings)
                w += snprintf(J->rep->featurizer + w, sizeof J->rep->featurizer - (size_t)w,
                              "; vectors %s; over the %llu rows written: %llu tokens, %llu out of "
                              "vocabulary, %llu rows without a known token",
                              o->embeddings, (unsigned long long)tc->rows,
                              (unsigned long long)tc->tokens, (unsigned long long)tc->oov_tokens,
                              (unsigned long long)tc->empty_rows);
            else
                snprintf(J->rep->featurizer + w, sizeof J->rep->featurizer - (size_t)w,
                         "; over the %llu rows written: %llu tokens, %llu rows without a token",
                         (unsigned long long)tc->rows, (unsigned long long)tc->tokens,
                         (unsigned long long)tc->empty_rows);
        }
    }
    for (int j = 0; !rc && j < CZ_SPLIT_COUNT; j++) {
        if (!J->out[j]) continue;
        char source[768];
        describe_source(J, input, j, source, sizeof source);
        rc = cz_prep_out_finish(J->out[j], source, J->feat ? J->rep->featurizer : NULL, err);
    }
    J->rep->seconds_pass2 = now_s() - t0;
    /* every output is complete before any is renamed into place */
    for (int j = 0; !rc && j < CZ_SPLIT_COUNT; j++) {
        if (!J->out[j]) continue;
        rc = cz_prep_out_commit(J->out[j], err);
        J->out[j] = NULL;
    }
    return rc;
}

static int check_opts(const cz_prep_stream_opts *o, const char *input, cz_error *err)
{
    if (o->kind == CZ_PREP_CSV_TEXT) {
        if (!!o->embeddings == !!o->hash_dim)
            return cz_error_set(err, CZ_EINVAL,
                                "%s: text needs a featurizer: give either word vectors (--embeddings "
                                "VEC.txt) or a hashing dimension (--hash-dim D), not both",
                                input);
        if (o->task == CZ_HEAD_REGRESS)
            return cz_error_set(err, CZ_EINVAL, "%s: text labels are classes: task classify or ordinal", input);
        if (o->label_name)
            return cz_error_set(err, CZ_EINVAL, "%s: the text format has no header: use --label-col", input);
    } else if (o->embeddings || o->hash_dim || o->l2_normalize) {
        return cz_error_set(err, CZ_EINVAL, "%s: numeric CSV takes no featurizer options", input);
    }
    if (o->classes && (o->classes < 2 || o->classes > CZ_PREP_MAX_CLASSES))
        return cz_error_set(err, CZ_EINVAL, "classes %d: expected 2..%d", o->classes, CZ_PREP_MAX_CLASSES);
    if (o->task == CZ_HEAD_REGRESS && o->classes)
        return cz_error_set(err, CZ_EINVAL, "task regress takes no number of classes");
    if (!(o->fraction > 0 && o->fraction <= 1))
        return cz_error_set(err, CZ_EINVAL, "fraction %g: expected a number in (0, 1]", o->fraction);
    double sum = 0;
    for (int j = 0; j < CZ_SPLIT_COUNT; j++) {
        if (!(o->frac[j] >= 0 && o->frac[j] <= 1))
            return cz_error_set(err, CZ_EINVAL, "split %s=%g: expected a fraction in [0, 1]",
                                cz_split_name(j), o->frac[j]);
        sum += o->frac[j];
        if (o->frac[j] > 0 && !o->paths[j])
            return cz_error_set(err, CZ_EINVAL, "split %s has no output path", cz_split_name(j));
    }
    if (fabs(sum - 1) > 1e-6) return cz_error_set(err, CZ_EINVAL, "the split fractions add up to %g", sum);
    return 0;
}

int cz_prep_stream(const char *input, const cz_prep_stream_opts *o, cz_prep_report *rep,
                   cz_error *err)
{
    memset(rep, 0, sizeof *rep);
    rep->task = o->task;
    int rc = check_opts(o, input, err);
    if (rc) return rc;
    job J = {.o = o, .rep = rep};
    J.fmt.kind = o->kind;
    J.fmt.path = input;
    J.fmt.label_col1 = o->label_col;
    J.fmt.task = o->task;
    J.fmt.base = o->label_base;
    J.fmt.classes = o->classes;
    if (o->kind == CZ_PREP_CSV_TEXT) {
        double t0 = now_s();
        if (o->embeddings) {
            cz_vocab *v;
            rc = cz_vocab_load(&v, o->embeddings, o->skip_bad, err);
            if (!rc) {
                rep->vocab = *cz_vocab_get_info(v);
                rc = cz_featurizer_embed(&J.feat, v, o->l2_normalize, err);
            }
        } else {
            rc = cz_featurizer_hash(&J.feat, o->hash_dim, o->l2_normalize, err);
        }
        rep->seconds_vocab = now_s() - t0;
        if (!rc) J.d = cz_featurizer_dim(J.feat);
    }
    if (!rc) rc = pass1(&J, input, err);
    if (!rc) rc = assign(&J, input, err);
    rep->rows = J.rows;
    rep->d = J.d;
    if (!rc) rc = pass2(&J, input, err);
    for (int j = 0; j < CZ_SPLIT_COUNT; j++) cz_prep_out_abort(J.out[j]);
    cz_featurizer_free(J.feat);
    cz_rowfmt_free(&J.fmt);
    free(J.yc);
    free(J.yv);
    free(J.which);
    free(J.row);
    free(J.text);
    return rc;
}
