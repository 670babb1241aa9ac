/* ARFF (Weka) reader -> cz_prep_set. What is accepted and how attributes become features
 * is documented in include/chainz/prep.h. The file is read whole (through zlib, so plain
 * or gzip) and parsed in place, line by line, so that every message can name its line. */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

typedef enum { ATTR_NUMERIC, ATTR_NOMINAL, ATTR_STRING } attr_kind;

typedef struct {
    char *name;
    attr_kind kind;
    char **values;      /* nominal values in declaration order */
    size_t n_values;
    size_t col;         /* first feature column (features only; a string: D of them) */
    size_t line;        /* where it was declared */
} attr;

typedef struct {
    char *s;
    int quoted;
} field;

typedef struct {
    const char *path;
    cz_error *err;
    cz_featurizer *text; /* for string attributes (borrowed), or NULL */
    attr *attrs;
    size_t n_attrs, cap_attrs;
    field *fields;
    size_t cap_fields;
    char relation[128];
} parser;

void cz_arff_opts_default(cz_arff_opts *opts)
{
    opts->class_name = NULL;
    opts->task = -1;
    opts->drop_missing = 0;
    opts->text = NULL;
}

static void parser_free(parser *P)
{
    for (size_t i = 0; i < P->n_attrs; i++) {
        free(P->attrs[i].name);
        for (size_t k = 0; k < P->attrs[i].n_values; k++) free(P->attrs[i].values[k]);
        free(P->attrs[i].values);
    }
    free(P->attrs);
    free(P->fields);
}

/* Reads the whole file (gzip or plain) into a NUL-terminated buffer. */
static int read_all(const char *path, char **out, size_t *out_len, cz_error *err)
{
    *out = NULL;
    errno = 0;
    gzFile g = gzopen(path, "rb");
    if (!g)
        return cz_error_set(err, CZ_EIO, "%s: cannot open: %s", path,
                            errno ? strerror(errno) : "out of memory");
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    int rc = 0;
    if (!buf) rc = cz_error_set(err, CZ_ENOMEM, "%s: out of memory", path);
    while (!rc) {
        if (n == cap) {
            char *nb = realloc(buf, 2 * cap + 1);
            if (!nb) {
                rc = cz_error_set(err, CZ_ENOMEM, "%s: out of memory after %zu bytes", path, n);
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t want = cap - n < (size_t)INT_MAX ? cap - n : (size_t)INT_MAX;
        int r = gzread(g, buf + n, (unsigned)want);
        if (r < 0) {
            int zerr = 0;
            const char *m = gzerror(g, &zerr);
            rc = cz_error_set(err, CZ_EIO, "%s: read failed after %zu bytes: %s", path, n,
                              zerr == Z_ERRNO ? strerror(errno) : m);
        } else if (r == 0) {
            break;
        } else {
            n += (size_t)r;
        }
    }
    int zc = gzclose_r(g);
    if (!rc && zc != Z_OK)
        rc = cz_error_set(err, CZ_EIO, "%s: %s", path,
                          zc == Z_BUF_ERROR ? "the gzip stream is truncated" : "read failed");
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return 0;
}

static int is_blank(int c) { return c == ' ' || c == '\t' || c == '\f' || c == '\v'; }

static char *skip_blanks(char *p)
{
    while (is_blank((unsigned char)*p)) p++;
    return p;
}

/* Scans one value at *pp: blanks skipped, then either a quoted value ('...' or "...",
 * unescaped in place) or a bare run up to a char of `stops`, a '%' (comment) or the end,
 * trailing blanks dropped. The value is NUL-terminated in place. *stop receives the char
 * that ended it ('\0' for the end of the line or a comment) and *pp the position after.
 * For a quoted value followed by blanks, ' ' in stops lets the blanks end it. */
static int scan_value(parser *P, size_t line, char **pp, const char *stops, char **val,
                      int *quoted, char *stop)
{
    char *p = skip_blanks(*pp);
    if (*p == '\'' || *p == '"') {
        char q = *p++, *w = p;
        *val = w;
        *quoted = 1;
        for (;;) {
            if (*p == '\0')
                return cz_error_set(P->err, CZ_EINVAL, "%s:%zu: unterminated %c-quoted value '%.40s'",
                                    P->path, line, q, *val);
            if (*p == q) break;
            if (*p == '\\' && p[1]) {
                char c = p[1];
                switch (c) {
                case 'n': *w++ = '\n'; break;
                case 't': *w++ = '\t'; break;
                case 'r': *w++ = '\r'; break;
                case '\\': case '\'': case '"': case '%': *w++ = c; break;
                default: *w++ = '\\'; *w++ = c; break;
                }
                p += 2;
                continue;
            }
            *w++ = *p++;
        }
        char *after = p + 1, *t = skip_blanks(after);
        *w = '\0';
        if (*t == '\0' || *t == '%') {
            *stop = '\0';
            *pp = t;
        } else if (strchr(stops, *t)) {
            *stop = *t;
            *pp = t + 1;
        } else if (t > after && strchr(stops, ' ')) {
            *stop = ' ';
            *pp = t;
        } else {
            return cz_error_set(P->err, CZ_EINVAL,
                                "%s:%zu: unexpected text '%.20s' after the quoted value '%.40s'",
                                P->path, line, t, *val);
        }
        return 0;
    }
    char *start = p;
    while (*p && *p != '%' && !strchr(stops, *p) && !(strchr(stops, ' ') && is_blank((unsigned char)*p)))
        p++;
    char c = *p, *e = p;
    while (e > start && is_blank((unsigned char)e[-1])) e--;
    *e = '\0';
    *val = start;
    *quoted = 0;
    *stop = c == '%' ? '\0' : c;
    *pp = c && c != '%' ? p + 1 : p;
    if (c == '%') *p = '\0';
    return 0;
}

static int push_field(parser *P, size_t n, char *s, int quoted)
{
    if (n == P->cap_fields) {
        size_t cap = P->cap_fields ? 2 * P->cap_fields : 64;
        field *f = realloc(P->fields, cap * sizeof *f);
        if (!f) return cz_error_set(P->err, CZ_ENOMEM, "%s: out of memory", P->path);
        P->fields = f;
        P->cap_fields = cap;
    }
    P->fields[n].s = s;
    P->fields[n].quoted = quoted;
    return 0;
}

/* Splits a data line into P->fields (comma-separated values). */
static int split_row(parser *P, size_t line, char *p, size_t *count)
{
    size_t n = 0;
    for (;;) {
        char *v, stop;
        int quoted, rc = scan_value(P, line, &p, ",", &v, &quoted, &stop);
        if (!rc) rc = push_field(P, n++, v, quoted);
        if (rc) return rc;
        if (stop != ',') break;
    }
    *count = n;
    return 0;
}

static int parse_nominal(parser *P, size_t line, char *p, attr *a)
{
    size_t cap = 0;
    for (;;) {
        char *v, stop;
        int quoted, rc = scan_value(P, line, &p, ",}", &v, &quoted, &stop);
        if (rc) return rc;
        if (stop == '\0')
            return cz_error_set(P->err, CZ_EINVAL,
                                "%s:%zu: the value list of attribute '%s' is not closed with '}'",
                                P->path, line, a->name);
        if (!quoted && !*v) {
            if (stop == '}' && a->n_values == 0)
                return cz_error_set(P->err, CZ_EINVAL, "%s:%zu: nominal attribute '%s' has no values",
                                    P->path, line, a->name);
            return cz_error_set(P->err, CZ_EINVAL,
                                "%s:%zu: empty value in the list of attribute '%s' (value %zu)",
                                P->path, line, a->name, a->n_values + 1);
        }
        for (size_t k = 0; k < a->n_values; k++)
            if (!strcmp(a->values[k], v))
                return cz_error_set(P->err, CZ_EINVAL,
                                    "%s:%zu: attribute '%s' lists the value '%.40s' twice", P->path,
                                    line, a->name, v);
        if (a->n_values == cap) {
            cap = cap ? 2 * cap : 8;
            char **nv = realloc(a->values, cap * sizeof *nv);
            if (!nv) return cz_error_set(P->err, CZ_ENOMEM, "%s: out of memory", P->path);
            a->values = nv;
        }
        if (!(a->values[a->n_values] = strdup(v)))
            return cz_error_set(P->err, CZ_ENOMEM, "%s: out of memory", P->path);
        a->n_values++;
        if (stop == '}') break;
    }
    p = skip_blanks(p);
    if (*p && *p != '%')
        return cz_error_set(P->err, CZ_EINVAL, "%s:%zu: unexpected text '%.20s' after the value list of '%s'",
                            P->path, line, p, a->name);
    return 0;
}

/* `@attribute NAME TYPE`, p just after the keyword. */
static int parse_attribute(parser *P, size_t line, char *p)
{
    if (!is_blank((unsigned char)*p))
        return cz_error_set(P->err, CZ_EINVAL, "%s:%zu: expected '@attribute NAME TYPE'", P->path, line);
    if (P->n_attrs == P->cap_attrs) {
        size_t cap = P->cap_attrs ? 2 * P->cap_attrs : 16;
        attr *na = realloc(P->attrs, cap * sizeof *na);
        if (!na) return cz_error_set(P->err, CZ_ENOMEM, "%s: out of memory", P->path);
        P->attrs = na;
        P->cap_attrs = cap;
    }
    attr *a = &P->attrs[P->n_attrs];
    memset(a, 0, sizeof *a);
    a->line = line;
    char *name, stop;
    int quoted;
    int rc = scan_value(P, line, &p, " \t{", &name, &quoted, &stop);
    if (rc) return rc;
    if (!*name)
        return cz_error_set(P->err, CZ_EINVAL, "%s:%zu: @attribute without a name", P->path, line);
    for (size_t i = 0; i < P->n_attrs; i++)
        if (!strcmp(P->attrs[i].name, name))
            return cz_error_set(P->err, CZ_EINVAL, "%s:%zu: attribute '%s' is already declared at line %zu",
                                P->path, line, name, P->attrs[i].line);
    if (!(a->name = strdup(name))) return cz_error_set(P->err, CZ_ENOMEM, "%s: out of memory", P->path);
    P->n_attrs++; /* owned from here on, freed by parser_free even if the type is bad */
    if (stop == '\0')
        return cz_error_set(P->err, CZ_EINVAL, "%s:%zu: attribute '%s' has no type", P->path, line, a->name);
    if (stop != '{') p = skip_blanks(p);
    if (stop == '{' || *p == '{') {
        a->kind = ATTR_NOMINAL;
        return parse_nominal(P, line, stop == '{' ? p : p + 1, a);
    }
    char *type;
    if ((rc = scan_value(P, line, &p, " \t", &type, &quoted, &stop))) return rc;
    if (!quoted && (!strcasecmp(type, "numeric") || !strcasecmp(type, "real") ||
                    !strcasecmp(type, "integer"))) {
        a->kind = ATTR_NUMERIC;
        p = skip_blanks(p);
        if (stop != '\0' && *p && *p != '%')
            return cz_error_set(P->err, CZ_EINVAL, "%s:%zu: unexpected text '%.20s' after the type of '%s'",
                                P->path, line, p, a->name);
        return 0;
    }
    if (!quoted && !strcasecmp(type, "string")) {
        a->kind = ATTR_STRING;
        if (!P->text)
            return cz_error_set(P->err, CZ_EINVAL,
                                "%s:%zu: attribute '%s' has type string: text needs a featurizer, pass "
                                "--hash-dim D or --embeddings VEC.txt (with chainz prep arff)",
                                P->path, line, a->name);
        p = skip_blanks(p);
        if (stop != '\0' && *p && *p != '%')
            return cz_error_set(P->err, CZ_EINVAL, "%s:%zu: unexpected text '%.20s' after the type of '%s'",
                                P->path, line, p, a->name);
        return 0;
    }
    if (!quoted && (!strcasecmp(type, "date") || !strcasecmp(type, "relational")))
        return cz_error_set(P->err, CZ_EINVAL,
                            "%s:%zu: attribute '%s' has type %s, which is not supported "
                            "(expected numeric, real, integer or a nominal list {a,b,...})",
                            P->path, line, a->name, type);
    return cz_error_set(P->err, CZ_EINVAL,
                        "%s:%zu: attribute '%s' has unknown type '%.40s' (expected numeric, real, "
                        "integer or a nominal list {a,b,...})",
                        P->path, line, a->name, type);
}

/* Matches an ASCII keyword case-insensitively; returns the position after it or NULL. */
static char *keyword(char *p, const char *kw)
{
    size_t n = strlen(kw);
    if (strncasecmp(p, kw, n)) return NULL;
    char c = p[n];
    if (c && !is_blank((unsigned char)c) && c != '%' && c != '{' && c != '\'' && c != '"') return NULL;
    return p + n;
}

static int parse_number(const char *s, double *v)
{
    char *e;
    errno = 0;
    *v = strtod(s, &e);
    if (e == s || *e) return -1;
    if (!isfinite(*v) || fabs(*v) > FLT_MAX) return -2;
    return 0;
}

/* Appends sep + s to the NUL-terminated buf of len bytes; when it does not fit, ends the
 * list with "..." and returns -1. */
static int append_item(char *buf, size_t len, const char *sep, const char *s)
{
    size_t used = strlen(buf);
    if (used + strlen(sep) + strlen(s) + 4 >= len) {
        if (used + 4 < len) memcpy(buf + used, "...", 4);
        return -1;
    }
    strcat(buf, sep);
    strcat(buf, s);
    return 0;
}

typedef struct {
    float *x;
    int32_t *yc;
    float *yv;
    size_t n, cap;
} rows;

static int rows_grow(rows *R, size_t d, int regress, parser *P)
{
    if (R->n < R->cap) return 0;
    size_t cap = R->cap ? 2 * R->cap : 256;
    if (d && cap > SIZE_MAX / sizeof(float) / d)
        return cz_error_set(P->err, CZ_ENOMEM, "%s: out of memory after %zu rows of %zu features",
                            P->path, R->n, d);
    float *x = realloc(R->x, cap * d * sizeof *x);
    if (x) R->x = x;
    void *y = regress ? realloc(R->yv, cap * sizeof *R->yv) : realloc(R->yc, cap * sizeof *R->yc);
    if (y) {
        if (regress) R->yv = y;
        else R->yc = y;
    }
    if (!x || !y) return cz_error_set(P->err, CZ_ENOMEM, "%s: out of memory after %zu rows", P->path, R->n);
    R->cap = cap;
    return 0;
}

/* Converts one data line's fields into row R->n. *missing is set if a '?' was met. */
static int parse_row(parser *P, size_t line, size_t nf, size_t cls, size_t d, rows *R,
                     int *missing)
{
    float *x = R->x + R->n * d;
    *missing = 0;
    for (size_t i = 0; i < nf; i++) {
        const attr *a = &P->attrs[i];
        const field *f = &P->fields[i];
        if (!f->quoted && !strcmp(f->s, "?")) {
            *missing = 1;
            return 0;
        }
        if (a->kind == ATTR_STRING) continue; /* featurized below, once the row is complete */
        if (!f->quoted && !*f->s)
            return cz_error_set(P->err, CZ_EINVAL,
                                "%s:%zu: column %zu (attribute '%s'): empty value, expected %s or '?'",
                                P->path, line, i + 1, a->name,
                                a->kind == ATTR_NUMERIC ? "a number" : "one of its nominal values");
        if (a->kind == ATTR_NUMERIC) {
            double v;
            int bad = parse_number(f->s, &v);
            if (bad)
                return cz_error_set(P->err, CZ_EINVAL,
                                    "%s:%zu: column %zu (attribute '%s'): '%.40s' is %s, expected a "
                                    "finite number (or '?' for missing)",
                                    P->path, line, i + 1, a->name, f->s,
                                    bad == -1 ? "not a number" : "not finite in float32");
            if (i == cls) R->yv[R->n] = (float)v;
            else x[a->col] = (float)v;
        } else {
            size_t k = 0;
            while (k < a->n_values && strcmp(a->values[k], f->s)) k++;
            if (k == a->n_values) {
                char list[200] = "";
                for (size_t j = 0; j < a->n_values; j++)
                    if (append_item(list, sizeof list, j ? "," : "", a->values[j])) break;
                return cz_error_set(P->err, CZ_EINVAL,
                                    "%s:%zu: column %zu (attribute '%s'): value '%.40s' is not one of "
                                    "{%s} declared at line %zu",
                                    P->path, line, i + 1, a->name, f->s, list, a->line);
            }
            if (i == cls) {
                R->yc[R->n] = (int32_t)k;
            } else {
                memset(x + a->col, 0, a->n_values * sizeof *x);
                x[a->col + k] = 1.0f;
            }
        }
    }
    /* string attributes (never the class): each value through the featurizer into its own
       block of D columns; only for rows that are kept, so the counts are those of the data */
    for (size_t i = 0; i < nf; i++)
        if (P->attrs[i].kind == ATTR_STRING)
            cz_featurizer_apply(P->text, x + P->attrs[i].col, P->fields[i].s, strlen(P->fields[i].s));
    return 0;
}

/* At @data: picks the class attribute and the task, lays out the feature columns. */
static int resolve_header(parser *P, size_t line, const cz_arff_opts *o, size_t *cls,
                          size_t *d, cz_head *task)
{
    if (P->n_attrs == 0)
        return cz_error_set(P->err, CZ_EINVAL, "%s:%zu: @data before any @attribute", P->path, line);
    size_t c = P->n_attrs - 1;
    if (o->class_name) {
        for (c = 0; c < P->n_attrs && strcmp(P->attrs[c].name, o->class_name); c++)
            ;
        if (c == P->n_attrs) {
            char names[400] = "";
            for (size_t i = 0; i < P->n_attrs; i++)
                if (append_item(names, sizeof names, i ? ", " : "", P->attrs[i].name)) break;
            return cz_error_set(P->err, CZ_EINVAL,
                                "%s: no attribute named '%s' for the class (attributes: %s)", P->path,
                                o->class_name, names);
        }
    }
    const attr *ca = &P->attrs[c];
    if (ca->kind == ATTR_STRING)
        return cz_error_set(P->err, CZ_EINVAL,
                            "%s:%zu: the class attribute '%s' has type string: the class must be "
                            "nominal or numeric (choose another one with --class NAME)",
                            P->path, ca->line, ca->name);
    if (P->n_attrs < 2)
        return cz_error_set(P->err, CZ_EINVAL,
                            "%s:%zu: only the class attribute '%s' is declared: no features", P->path,
                            line, ca->name);
    if (o->task < 0) {
        *task = ca->kind == ATTR_NOMINAL ? CZ_HEAD_CLASSIFY : CZ_HEAD_REGRESS;
    } else {
        *task = (cz_head)o->task;
        if ((*task == CZ_HEAD_REGRESS) != (ca->kind == ATTR_NUMERIC))
            return cz_error_set(P->err, CZ_EINVAL,
                                "%s:%zu: task %s needs a %s class attribute, but '%s' is %s", P->path,
                                ca->line, cz_head_name(*task),
                                *task == CZ_HEAD_REGRESS ? "numeric" : "nominal", ca->name,
                                ca->kind == ATTR_NUMERIC ? "numeric" : "nominal");
    }
    if (ca->kind == ATTR_NOMINAL && (ca->n_values < 2 || ca->n_values > INT32_MAX))
        return cz_error_set(P->err, CZ_EINVAL,
                            "%s:%zu: class attribute '%s' has %zu value(s), expected at least 2",
                            P->path, ca->line, ca->name, ca->n_values);
    size_t col = 0;
    for (size_t i = 0; i < P->n_attrs; i++) {
        if (i == c) continue;
        P->attrs[i].col = col;
        col += P->attrs[i].kind == ATTR_NUMERIC  ? 1
               : P->attrs[i].kind == ATTR_STRING ? cz_featurizer_dim(P->text)
                                                 : P->attrs[i].n_values;
    }
    if (P->text) {
        size_t n_str = 0;
        for (size_t i = 0; i < P->n_attrs; i++) n_str += P->attrs[i].kind == ATTR_STRING;
        if (!n_str)
            return cz_error_set(P->err, CZ_EINVAL,
                                "%s:%zu: a text featurizer (--hash-dim or --embeddings) was given, but "
                                "no attribute has type string", P->path, line);
    }
    *cls = c;
    *d = col;
    return 0;
}

static int arff_parse(cz_prep_set *out, const char *path, char *buf, size_t len,
                      const cz_arff_opts *opts, cz_error *err);

int cz_prep_arff_read(cz_prep_set *out, const char *path, const cz_arff_opts *opts,
                      cz_error *err)
{
    memset(out, 0, sizeof *out);
    char *buf;
    size_t len = 0;
    int rc = read_all(path, &buf, &len, err);
    if (rc) return rc;
    return arff_parse(out, path, buf, len, opts, err);
}

int cz_prep_arff_read_mem(cz_prep_set *out, const char *name, const void *data, size_t len,
                          const cz_arff_opts *opts, cz_error *err)
{
    memset(out, 0, sizeof *out);
    char *buf = malloc(len + 1);
    if (!buf) return cz_error_set(err, CZ_ENOMEM, "%s: out of memory", name);
    if (len) memcpy(buf, data, len);
    buf[len] = '\0';
    return arff_parse(out, name, buf, len, opts, err);
}

/* Parses buf[0..len) (NUL-terminated, writable; freed here) as ARFF into out. */
static int arff_parse(cz_prep_set *out, const char *path, char *buf, size_t len,
                      const cz_arff_opts *opts, cz_error *err)
{
    cz_arff_opts defaults;
    if (!opts) {
        cz_arff_opts_default(&defaults);
        opts = &defaults;
    }
    int rc = 0;
    parser P = {.path = path, .err = err, .text = opts->text};
    rows R = {0};
    size_t line = 0, cls = 0, d = 0, header_end = 0, data_line = 0, dropped = 0;
    int in_data = 0, seen_content = 0, regress = 0;
    cz_head task = CZ_HEAD_CLASSIFY;
    char *nul = memchr(buf, '\0', len);
    if (nul) {
        size_t ln = 1;
        for (char *q = buf; q < nul; q++) ln += *q == '\n';
        rc = cz_error_set(err, CZ_EINVAL, "%s:%zu: binary data (a NUL byte): not an ARFF text file",
                          path, ln);
        goto done;
    }
    char *p = buf, *end = buf + len;
    if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) p += 3;
    while (!rc && p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl ? nl : end;
        line++;
        if (e > p && e[-1] == '\r') e[-1] = '\0';
        *e = '\0';
        char *s = skip_blanks(p);
        p = e + 1;
        if (*s == '\0' || *s == '%') continue;
        seen_content = 1;
        if (!in_data) {
            char *q;
            if (*s != '@') {
                rc = cz_error_set(err, CZ_EINVAL,
                                  "%s:%zu: expected @relation, @attribute or @data, found '%.40s'",
                                  path, line, s);
            } else if ((q = keyword(s, "@relation"))) {
                char *name, stop;
                int quoted;
                rc = scan_value(&P, line, &q, " \t", &name, &quoted, &stop);
                if (!rc) snprintf(P.relation, sizeof P.relation, "%s", name);
            } else if ((q = keyword(s, "@attribute"))) {
                rc = parse_attribute(&P, line, q);
            } else if ((q = keyword(s, "@data"))) {
                q = skip_blanks(q);
                if (*q && *q != '%')
                    rc = cz_error_set(err, CZ_EINVAL, "%s:%zu: unexpected text '%.20s' after @data",
                                      path, line, q);
                else
                    rc = resolve_header(&P, line, opts, &cls, &d, &task);
                in_data = 1;
                data_line = line;
                regress = task == CZ_HEAD_REGRESS;
            } else {
                rc = cz_error_set(err, CZ_EINVAL,
                                  "%s:%zu: unknown header keyword '%.40s' (expected @relation, "
                                  "@attribute or @data)", path, line, s);
            }
            header_end = line;
            continue;
        }
        if (*s == '{') {
            rc = cz_error_set(err, CZ_EINVAL,
                              "%s:%zu: sparse ARFF rows ({index value, ...}) are not supported",
                              path, line);
            break;
        }
        size_t nf;
        if ((rc = split_row(&P, line, s, &nf))) break;
        if (nf != P.n_attrs) {
            if (nf == P.n_attrs + 1 && !P.fields[nf - 1].quoted && P.fields[nf - 1].s[0] == '{')
                rc = cz_error_set(err, CZ_EINVAL,
                                  "%s:%zu: instance weights ('%.20s' after the values) are not supported",
                                  path, line, P.fields[nf - 1].s);
            else
                rc = cz_error_set(err, CZ_EINVAL,
                                  "%s:%zu: found %zu value(s), expected %zu (one per @attribute)",
                                  path, line, nf, P.n_attrs);
            break;
        }
        if ((rc = rows_grow(&R, d, regress, &P))) break;
        int missing;
        if ((rc = parse_row(&P, line, nf, cls, d, &R, &missing))) break;
        if (missing) {
            if (!opts->drop_missing) {
                size_t i = 0;
                while (P.fields[i].quoted || strcmp(P.fields[i].s, "?")) i++;
                rc = cz_error_set(err, CZ_EINVAL,
                                  "%s:%zu: column %zu (attribute '%s'): missing value '?' (ask to drop "
                                  "rows with missing values, e.g. chainz prep --drop-missing)",
                                  path, line, i + 1, P.attrs[i].name);
                break;
            }
            dropped++;
            continue;
        }
        R.n++;
    }
    if (rc) goto done;
    if (!seen_content) {
        rc = cz_error_set(err, CZ_EINVAL,
                          "%s: empty file (expected an ARFF header: @relation, @attribute, @data)", path);
    } else if (!in_data) {
        rc = cz_error_set(err, CZ_EINVAL, "%s:%zu: no @data section (the header ends at line %zu)",
                          path, line, header_end);
    } else if (R.n == 0) {
        rc = dropped ? cz_error_set(err, CZ_EINVAL,
                                    "%s: all %zu data rows had missing values and were dropped", path,
                                    dropped)
                     : cz_error_set(err, CZ_EINVAL, "%s:%zu: no data rows after @data (line %zu)",
                                    path, line, data_line);
    }
    if (rc) goto done;

    out->n = R.n;
    out->d = d;
    out->x = R.x;
    out->task = task;
    out->dropped = dropped;
    R.x = NULL;
    if (regress) {
        out->y_value = R.yv;
        R.yv = NULL;
    } else {
        const attr *ca = &P.attrs[cls];
        out->y_class = R.yc;
        R.yc = NULL;
        out->classes = (int)ca->n_values;
        out->class_names = calloc(ca->n_values, sizeof *out->class_names);
        if (!out->class_names) rc = cz_error_set(err, CZ_ENOMEM, "%s: out of memory", path);
        for (size_t k = 0; !rc && k < ca->n_values; k++)
            if (!(out->class_names[k] = strdup(ca->values[k])))
                rc = cz_error_set(err, CZ_ENOMEM, "%s: out of memory", path);
    }
    size_t n_num = 0, n_nom = 0, nom_cols = 0, n_str = 0;
    for (size_t i = 0; i < P.n_attrs; i++) {
        if (i == cls) continue;
        if (P.attrs[i].kind == ATTR_NUMERIC) n_num++;
        else if (P.attrs[i].kind == ATTR_STRING) n_str++;
        else {
            n_nom++;
            nom_cols += P.attrs[i].n_values;
        }
    }
    int w = snprintf(out->source, sizeof out->source,
                     "arff %s (relation %.60s); class '%.40s'; features: %zu numeric, %zu nominal "
                     "one-hot (%zu columns)", path, P.relation, P.attrs[cls].name, n_num, n_nom, nom_cols);
    if (n_str && w > 0 && (size_t)w < sizeof out->source)
        snprintf(out->source + w, sizeof out->source - (size_t)w, ", %zu string (%zu columns each)",
                 n_str, cz_featurizer_dim(P.text));
    if (n_str) {
        /* the featurizer, then which blocks of columns hold which string attribute */
        cz_featurizer_describe(P.text, out->featurizer, sizeof out->featurizer);
        size_t used = strlen(out->featurizer);
        for (size_t i = 0, first = 1; i < P.n_attrs && used + 1 < sizeof out->featurizer; i++) {
            if (P.attrs[i].kind != ATTR_STRING) continue;
            int m = snprintf(out->featurizer + used, sizeof out->featurizer - used,
                             "%s'%.60s' columns %zu..%zu", first ? "; arff string attributes: " : ", ",
                             P.attrs[i].name, P.attrs[i].col,
                             P.attrs[i].col + cz_featurizer_dim(P.text) - 1);
            if (m < 0) break;
            used += (size_t)m;
            first = 0;
        }
        if (used >= sizeof out->featurizer) memcpy(out->featurizer + sizeof out->featurizer - 4, "...", 4);
    }
done:
    if (rc) cz_prep_set_free(out);
    free(R.x);
    free(R.yc);
    free(R.yv);
    parser_free(&P);
    free(buf);
    return rc;
}
