/* The rows of chainz predict (chainz/featsrc.h): chainz-data, plain HDF5, or a CSV of
 * numbers. */
#include "chainz/featsrc.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chainz/data.h"
#include "chainz/h5feat.h"
#include "chainz/prep.h"

struct cz_featsrc {
    cz_featsrc_info info;
    char path[4096];
    cz_data *data;
    cz_h5feat *h5;
    cz_csv *csv;      /* the second pass, positioned at row next */
    size_t next;
    uint64_t *idx;    /* chainz-data: the band's row indices */
    size_t idx_cap;
};

const char *cz_feat_kind_name(cz_feat_kind k)
{
    return k == CZ_FEAT_CHAINZ ? "chainz-data" : k == CZ_FEAT_HDF5 ? "hdf5" : "csv";
}

/* one CSV cell as a finite float: blanks around it allowed, nothing else.
 * @return 0, or 1 when it is not a number */
static int cell(const cz_csv_field *f, float *v)
{
    const char *s = f->s, *e = f->s + f->len;
    while (s < e && isspace((unsigned char)*s)) s++;
    while (e > s && isspace((unsigned char)e[-1])) e--;
    if (s == e || memchr(s, 0, (size_t)(e - s))) return 1;
    for (const char *c = s; c < e; c++) /* plain decimal text: no hex floats, no nan/inf words */
        if (!strchr("0123456789.eE+-", *c)) return 1;
    char buf[128], *end;
    if ((size_t)(e - s) >= sizeof buf) return 1;
    memcpy(buf, s, (size_t)(e - s));
    buf[e - s] = 0;
    errno = 0;
    double d = strtod(buf, &end);
    if (end == buf || *end || !isfinite(d) || fabs(d) > 3.4028234663852886e38) return 1;
    *v = (float)d;
    return 0;
}

static void show(char *out, size_t len, const cz_csv_field *f)
{
    size_t n = f->len < 40 ? f->len : 40;
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < len; i++) out[k++] = isprint((unsigned char)f->s[i]) ? f->s[i] : '?';
    out[k] = 0;
    if (f->len > 40 && len > 44) strcat(out, "...");
}

/* the current record's d cells as numbers into x (x may be NULL: check only).
 * @return 0, or CZ_EINVAL with err naming the line and column */
static int csv_cells(cz_featsrc *s, cz_csv *c, float *x, cz_error *err)
{
    size_t nf;
    const cz_csv_field *f = cz_csv_fields(c, &nf);
    size_t line = cz_csv_line(c);
    if (nf != s->info.d)
        return cz_error_set(err, CZ_EINVAL, "%s line %zu: %zu values, expected %zu (as %s)", s->path, line, nf,
                            s->info.d, s->info.header ? "the header, line 1" : "line 1");
    for (size_t j = 0; j < nf; j++) {
        float v;
        if (cell(&f[j], &v)) {
            char t[48];
            show(t, sizeof t, &f[j]);
            return cz_error_set(err, CZ_EINVAL, "%s line %zu column %zu: '%s' is not a finite number (a CSV of "
                                "features holds numbers only; line 1 is a header only when none of its cells is "
                                "a number)", s->path, line, j + 1, t);
        }
        if (x) x[j] = v;
    }
    return 0;
}

/* the next record as d numbers into x (x may be NULL: check only). @return 1 a row, 0 end,
 * or a negative code with err naming the line and column */
static int csv_row(cz_featsrc *s, cz_csv *c, float *x, cz_error *err)
{
    int r = cz_csv_next(c, err);
    if (r <= 0) return r;
    r = csv_cells(s, c, x, err);
    return r ? r : 1;
}

/* the first pass: header, d, and every row counted and checked */
static int csv_open(cz_featsrc *s, cz_error *err)
{
    cz_csv *c = NULL;
    int rc = cz_csv_open(&c, s->path, err);
    if (rc) return rc;
    int r = cz_csv_next(c, err);
    if (r == 0) rc = cz_error_set(err, CZ_EINVAL, "%s: no rows (an empty file is not a CSV of features)", s->path);
    else if (r < 0) rc = r;
    if (!rc) {
        size_t nf;
        const cz_csv_field *f = cz_csv_fields(c, &nf);
        float v;
        size_t numeric = 0;
        for (size_t j = 0; j < nf; j++) numeric += !cell(&f[j], &v);
        s->info.d = nf;
        /* a header has no number at all: a line 1 that mixes numbers with a bad cell ("1,,3",
         * "nan") is a row, checked as every row is, never dropped unnoticed */
        s->info.header = numeric == 0;
        s->info.n = s->info.header ? 0 : 1;
        if (!s->info.header) rc = csv_cells(s, c, NULL, err);
    }
    while (!rc && (r = csv_row(s, c, NULL, err)) == 1) s->info.n++;
    if (!rc && r < 0) rc = r;
    if (!rc && s->info.n == 0)
        rc = cz_error_set(err, CZ_EINVAL, "%s: a header line and no rows of numbers", s->path);
    cz_csv_close(c);
    if (!rc) rc = cz_csv_open(&s->csv, s->path, err);
    if (!rc && s->info.header && (r = cz_csv_next(s->csv, err)) != 1)
        rc = r < 0 ? r : cz_error_set(err, CZ_EIO, "%s: the file changed while read", s->path);
    return rc;
}

int cz_featsrc_open(cz_featsrc **out, const char *path, const char *dataset, cz_error *err)
{
    *out = NULL;
    cz_featsrc *s = calloc(1, sizeof *s);
    if (!s) return cz_error_set(err, CZ_ENOMEM, "out of memory");
    if (strlen(path) >= sizeof s->path) {
        free(s);
        return cz_error_set(err, CZ_EINVAL, "%s: path too long", path);
    }
    strcpy(s->path, path);
    struct stat st; /* a wrong name is the user's to fix (status 1), not an I/O failure */
    int missing = stat(path, &st) != 0;
    /* a FIFO would block the HDF5 probe's open() forever, and a CSV is read twice */
    if (missing || !S_ISREG(st.st_mode)) {
        const char *why = missing ? strerror(errno)
                          : S_ISDIR(st.st_mode) ? "is a directory, not a file of rows"
                                                : "not a regular file (a FIFO, socket or device): the rows are read "
                                                  "from a file (a CSV twice); save the stream to a file first";
        free(s);
        return cz_error_set(err, CZ_EINVAL, "--data %s: %s", path, why);
    }
    int is_h5, is_cz, rc = 0;
    cz_h5feat_probe(path, &is_h5, &is_cz);
    s->info.kind = is_cz ? CZ_FEAT_CHAINZ : is_h5 ? CZ_FEAT_HDF5 : CZ_FEAT_CSV;
    if (dataset && dataset[0] && s->info.kind != CZ_FEAT_HDF5)
        rc = cz_error_set(err, CZ_EINVAL, "--dataset %s: %s is a %s file; --dataset chooses the dataset of a plain "
                          "HDF5 file", dataset, path, cz_feat_kind_name(s->info.kind));
    else if (is_cz == 2) { /* chainz-data without labels: its features, no accuracy */
        rc = cz_h5feat_open(&s->h5, path, "/features", err);
        if (!rc) {
            s->info.n = cz_h5feat_rows(s->h5);
            s->info.d = cz_h5feat_cols(s->h5);
            strcpy(s->info.dataset, "/features");
        }
    } else if (s->info.kind == CZ_FEAT_CHAINZ) {
        rc = cz_data_open(&s->data, path, err);
        if (!rc) {
            const cz_data_info *di = cz_data_get_info(s->data);
            s->info.n = di->n;
            s->info.d = di->d;
            s->info.has_labels = 1;
            s->info.task = di->task;
            s->info.classes = di->classes;
            strcpy(s->info.dataset, "/features");
        }
    } else if (s->info.kind == CZ_FEAT_HDF5) {
        rc = cz_h5feat_open(&s->h5, path, dataset, err);
        if (!rc) {
            s->info.n = cz_h5feat_rows(s->h5);
            s->info.d = cz_h5feat_cols(s->h5);
            snprintf(s->info.dataset, sizeof s->info.dataset, "%s", cz_h5feat_name(s->h5));
        }
    } else
        rc = csv_open(s, err);
    if (rc) {
        cz_featsrc_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void cz_featsrc_close(cz_featsrc *s)
{
    if (!s) return;
    cz_data_close(s->data);
    cz_h5feat_close(s->h5);
    cz_csv_close(s->csv);
    free(s->idx);
    free(s);
}

const cz_featsrc_info *cz_featsrc_get_info(const cz_featsrc *s) { return &s->info; }
const int32_t *cz_featsrc_labels_class(const cz_featsrc *s) { return s->data ? cz_data_labels_class(s->data) : NULL; }
const float *cz_featsrc_labels_value(const cz_featsrc *s) { return s->data ? cz_data_labels_value(s->data) : NULL; }

int cz_featsrc_read(cz_featsrc *s, size_t r0, size_t n, float *x, cz_error *err)
{
    if (r0 > s->info.n || n > s->info.n - r0)
        return cz_error_set(err, CZ_EINVAL, "%s: rows %zu..%zu asked of %zu", s->path, r0, r0 + n, s->info.n);
    if (s->data) {
        if (n > s->idx_cap) {
            uint64_t *p = realloc(s->idx, n * sizeof *p);
            if (!p) return cz_error_set(err, CZ_ENOMEM, "out of memory");
            s->idx = p;
            s->idx_cap = n;
        }
        for (size_t i = 0; i < n; i++) s->idx[i] = r0 + i;
        return cz_data_read_rows(s->data, s->idx, n, x, err);
    }
    if (s->h5) return cz_h5feat_read(s->h5, r0, n, x, err);
    if (r0 < s->next) return cz_error_set(err, CZ_EINVAL, "internal: CSV rows asked out of order");
    for (int r; s->next < r0; s->next++)
        if ((r = csv_row(s, s->csv, NULL, err)) != 1)
            return r < 0 ? r : cz_error_set(err, CZ_EIO, "%s: the file changed while read", s->path);
    for (size_t i = 0; i < n; i++, s->next++) {
        int r = csv_row(s, s->csv, x + i * s->info.d, err);
        if (r != 1) return r < 0 ? r : cz_error_set(err, CZ_EIO, "%s: the file changed while read", s->path);
    }
    return 0;
}
