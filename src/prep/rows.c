/* The row rules of the two CSV formats: which field is the label, how many fields a record
 * holds, what a label and a number must look like, and how the text fields are joined.
 * Both passes of cz_prep_stream apply exactly these functions, so they agree on which
 * rows are bad. Messages name file, line, column and what was expected. */
#include "internal.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cz_rowfmt_free(cz_rowfmt *f)
{
    if (!f || !f->names) return;
    for (size_t i = 0; i < f->nfields; i++) free(f->names[i]);
    free(f->names);
    f->names = NULL;
}

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* A field's bytes without surrounding blanks, as a NUL-terminated copy in buf (NULL if the
 * field holds a NUL byte or does not fit). */
static const char *trimmed(const cz_csv_field *fl, char *buf, size_t len, size_t *out_len)
{
    const char *s = fl->s, *e = fl->s + fl->len;
    while (s < e && is_blank(*s)) s++;
    while (e > s && is_blank(e[-1])) e--;
    size_t n = (size_t)(e - s);
    *out_len = n;
    if (n + 1 > len || memchr(s, '\0', n)) return NULL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

/* Parses a finite float32 number. @return 0, -1 empty, -2 not a number, -3 not finite. */
static int parse_num(const cz_csv_field *fl, double *v)
{
    char buf[128];
    size_t n;
    const char *s = trimmed(fl, buf, sizeof buf, &n);
    if (n == 0) return -1;
    if (!s) return -2;
    char *e;
    errno = 0;
    *v = strtod(s, &e);
    if (e != s + n) return -2;
    if (!isfinite(*v) || fabs(*v) > FLT_MAX) return -3;
    return 0;
}

static void show_field(char *buf, size_t len, const cz_csv_field *fl)
{
    size_t n = fl->len < 40 ? fl->len : 40, w = 0;
    for (size_t i = 0; i < n && w + 5 < len; i++) {
        unsigned char c = (unsigned char)fl->s[i];
        if (c >= 0x20 && c != 0x7f) buf[w++] = (char)c;
        else w += (size_t)snprintf(buf + w, len - w, "\\x%02x", c);
    }
    if (fl->len > n && w + 4 < len) {
        memcpy(buf + w, "...", 3);
        w += 3;
    }
    buf[w < len ? w : len - 1] = '\0';
}

static const char *col_name(const cz_rowfmt *f, size_t i)
{
    return f->names && i < f->nfields ? f->names[i] : "";
}

int cz_row_header(cz_rowfmt *f, const cz_csv_field *fields, size_t nf, size_t line,
                  const char *label_name, char *name_out, size_t name_len, cz_error *err)
{
    if (nf < 2)
        return cz_error_set(err, CZ_EINVAL,
                            "%s:%zu: the header names %zu column, expected at least 2 (features and "
                            "the label), separated by commas",
                            f->path, line, nf);
    size_t col = nf - 1;
    if (label_name) {
        size_t hits = 0, first = 0;
        for (size_t i = 0; i < nf; i++)
            if (strlen(label_name) == fields[i].len && !memcmp(fields[i].s, label_name, fields[i].len)) {
                if (!hits++) first = i;
                else
                    return cz_error_set(err, CZ_EINVAL,
                                        "%s:%zu: the label '%s' names two columns (%zu and %zu): use "
                                        "--label-col",
                                        f->path, line, label_name, first + 1, i + 1);
            }
        if (!hits) {
            char names[300] = "";
            size_t w = 0, room = sizeof names - 8; /* keeps space for ", ..." */
            for (size_t i = 0; i < nf; i++) {
                char s[60];
                show_field(s, sizeof s, &fields[i]);
                int k = snprintf(names + w, room - w, "%s%s", i ? ", " : "", s);
                if (k < 0 || (size_t)k >= room - w) {
                    snprintf(names + w, sizeof names - w, ", ...");
                    break;
                }
                w += (size_t)k;
            }
            return cz_error_set(err, CZ_EINVAL, "%s:%zu: no column named '%s' for the label (columns: %s)",
                                f->path, line, label_name, names);
        }
        col = first;
    } else if (f->label_col1) {
        if (f->label_col1 > nf)
            return cz_error_set(err, CZ_EINVAL,
                                "%s:%zu: label column %zu asked for, but the header has %zu columns",
                                f->path, line, f->label_col1, nf);
        col = f->label_col1 - 1;
    }
    f->names = calloc(nf, sizeof *f->names);
    if (!f->names) return cz_error_set(err, CZ_ENOMEM, "%s: out of memory", f->path);
    f->nfields = nf;
    f->nfields_line = line;
    for (size_t i = 0; i < nf; i++) {
        char s[60];
        show_field(s, sizeof s, &fields[i]);
        if (!(f->names[i] = strdup(s))) return cz_error_set(err, CZ_ENOMEM, "%s: out of memory", f->path);
    }
    f->label_col = col;
    snprintf(name_out, name_len, "%s", f->names[col]);
    return 0;
}

static int parse_label(const cz_rowfmt *f, const cz_csv_field *fl, size_t line, int32_t *yc,
                       float *yv, cz_error *err)
{
    char shown[200];
    char where[96] = "";
    if (f->kind == CZ_PREP_CSV_NUMERIC)
        snprintf(where, sizeof where, " (column %zu '%s')", f->label_col + 1, col_name(f, f->label_col));
    else
        snprintf(where, sizeof where, " (field %zu)", f->label_col + 1);
    double v;
    int bad = parse_num(fl, &v);
    if (f->task == CZ_HEAD_REGRESS) {
        if (!bad) {
            *yv = (float)v;
            return 0;
        }
        show_field(shown, sizeof shown, fl);
        return cz_error_set(err, CZ_EINVAL, "%s:%zu: label%s '%s' is %s, expected a finite number",
                            f->path, line, where, shown,
                            bad == -1 ? "empty" : bad == -2 ? "not a number" : "not finite in float32");
    }
    if (bad || v != floor(v)) {
        show_field(shown, sizeof shown, fl);
        return cz_error_set(err, CZ_EINVAL,
                            "%s:%zu: label%s '%s' is %s, expected an integer class label%s%s",
                            f->path, line, where, shown, bad == -1 ? "empty" : "not an integer",
                            f->kind == CZ_PREP_CSV_NUMERIC && !bad ? " (use --task regress for values)" : "",
                            f->kind == CZ_PREP_CSV_TEXT && line == 1 && bad
                                ? " (is line 1 a header? the text format has none)" : "");
    }
    double k = v - (double)f->base;
    double kmax = f->classes ? (double)f->classes : (double)CZ_PREP_MAX_CLASSES;
    if (k < 0 || k >= kmax) {
        if (f->classes)
            return cz_error_set(err, CZ_EINVAL,
                                "%s:%zu: label%s %.0f is outside %ld..%ld (label base %ld, %ld classes)",
                                f->path, line, where, v, f->base, f->base + f->classes - 1, f->base,
                                f->classes);
        return cz_error_set(err, CZ_EINVAL, "%s:%zu: label%s %.0f is %s, expected %ld..%ld (label base %ld)",
                            f->path, line, where, v, k < 0 ? "below the label base" : "too large",
                            f->base, f->base + CZ_PREP_MAX_CLASSES - 1, f->base);
    }
    *yc = (int32_t)k;
    return 0;
}

int cz_row_parse(cz_rowfmt *f, const cz_csv_field *fields, size_t nf, size_t line,
                 int32_t *yc, float *yv, float *x, cz_error *err)
{
    if (f->kind == CZ_PREP_CSV_TEXT && f->nfields == 0) {
        size_t lc = f->label_col1 ? f->label_col1 : 1;
        if (nf < 2)
            return cz_error_set(err, CZ_EINVAL,
                                "%s:%zu: found %zu field, expected a label and at least one text field "
                                "separated by commas",
                                f->path, line, nf);
        if (lc > nf)
            return cz_error_set(err, CZ_EINVAL, "%s:%zu: label field %zu asked for, but the record has %zu fields",
                                f->path, line, lc, nf);
        f->nfields = nf;
        f->nfields_line = line;
        f->label_col = lc - 1;
    }
    if (nf != f->nfields)
        return cz_error_set(err, CZ_EINVAL, "%s:%zu: found %zu field%s, expected %zu (as on line %zu)",
                            f->path, line, nf, nf == 1 ? "" : "s", f->nfields, f->nfields_line);
    int rc = parse_label(f, &fields[f->label_col], line, yc, yv, err);
    if (rc || f->kind == CZ_PREP_CSV_TEXT) return rc;
    for (size_t i = 0, j = 0; i < nf; i++) {
        if (i == f->label_col) continue;
        double v;
        int bad = parse_num(&fields[i], &v);
        if (bad) {
            char shown[200];
            show_field(shown, sizeof shown, &fields[i]);
            return cz_error_set(err, CZ_EINVAL, "%s:%zu: column %zu ('%s'): '%s' is %s, expected a finite number",
                                f->path, line, i + 1, col_name(f, i), shown,
                                bad == -1 ? "empty (a missing value)"
                                          : bad == -2 ? "not a number" : "not finite in float32");
        }
        if (x) x[j] = (float)v;
        j++;
    }
    return 0;
}

int cz_row_text(const cz_rowfmt *f, const cz_csv_field *fields, size_t nf, char **buf,
                size_t *cap, size_t *len)
{
    size_t need = 1;
    for (size_t i = 0; i < nf; i++) need += fields[i].len + 1;
    if (need > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < need) c *= 2;
        char *b = realloc(*buf, c);
        if (!b) return CZ_ENOMEM;
        *buf = b;
        *cap = c;
    }
    char *w = *buf;
    int first = 1;
    for (size_t i = 0; i < nf; i++) {
        if (i == f->label_col) continue;
        if (!first) *w++ = ' ';
        first = 0;
        const char *s = fields[i].s, *e = s + fields[i].len;
        while (s < e) {
            const char *bs = memchr(s, '\\', (size_t)(e - s));
            const char *stop = bs ? bs : e;
            memcpy(w, s, (size_t)(stop - s));
            w += stop - s;
            s = stop;
            if (!bs) break;
            if (s + 1 < e && s[1] == 'n') {
                *w++ = '\n';
                s += 2;
            } else {
                *w++ = *s++;
            }
        }
    }
    *w = '\0';
    *len = (size_t)(w - *buf);
    return 0;
}
