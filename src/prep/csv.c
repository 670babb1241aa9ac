/* Streaming CSV record reader (the dialect is documented in include/chainz/prep.h).
 * Input comes in chunks; each record's fields are unquoted into one growing buffer, so a
 * record costs one copy and memory is bounded by the longest record. After a syntax error
 * the reader skips to the end of the offending physical line, so a caller may skip the
 * record and go on. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CSV_CHUNK ((size_t)1 << 20)

typedef struct {
    size_t off, len;
    int quoted;
} span;

struct cz_csv {
    cz_src src;
    unsigned char *in;
    size_t in_pos, in_len, in_cap;
    int eof, started, broken;
    char *rec;
    size_t rec_len, rec_cap;
    span *spans;
    cz_csv_field *fields;
    size_t nf, fcap;
    size_t line;     /* physical line at in_pos, 1-based */
    size_t rec_line; /* line where the last record began */
};

enum { ST_START, ST_UNQ, ST_QUO, ST_QSEEN };

static int csv_init(cz_csv **out, cz_csv *c, cz_error *err, const char *name)
{
    c->in_cap = CSV_CHUNK;
    if (!c->src.g && c->src.mem_len < CSV_CHUNK) c->in_cap = c->src.mem_len + 16; /* small input */
    c->in = malloc(c->in_cap);
    c->rec_cap = 4096;
    c->rec = malloc(c->rec_cap);
    c->fcap = 16;
    c->spans = malloc(c->fcap * sizeof *c->spans);
    c->fields = malloc(c->fcap * sizeof *c->fields);
    c->line = 1;
    if (!c->in || !c->rec || !c->spans || !c->fields) {
        cz_csv_close(c);
        return cz_error_set(err, CZ_ENOMEM, "%s: out of memory", name);
    }
    *out = c;
    return 0;
}

int cz_csv_open(cz_csv **out, const char *path, cz_error *err)
{
    *out = NULL;
    cz_csv *c = calloc(1, sizeof *c);
    if (!c) return cz_error_set(err, CZ_ENOMEM, "%s: out of memory", path);
    int rc = cz_src_open(&c->src, path, err);
    if (rc) {
        free(c);
        return rc;
    }
    return csv_init(out, c, err, path);
}

int cz_csv_open_mem(cz_csv **out, const char *name, const void *buf, size_t len, cz_error *err)
{
    *out = NULL;
    cz_csv *c = calloc(1, sizeof *c);
    if (!c) return cz_error_set(err, CZ_ENOMEM, "%s: out of memory", name);
    cz_src_open_mem(&c->src, name, buf, len);
    return csv_init(out, c, err, name);
}

void cz_csv_close(cz_csv *c)
{
    if (!c) return;
    cz_src_close(&c->src, NULL);
    free(c->in);
    free(c->rec);
    free(c->spans);
    free(c->fields);
    free(c);
}

const cz_csv_field *cz_csv_fields(const cz_csv *c, size_t *n)
{
    *n = c->nf;
    return c->fields;
}
size_t cz_csv_line(const cz_csv *c) { return c->rec_line; }
int cz_csv_broken(const cz_csv *c) { return c->broken; }
uint64_t cz_csv_offset(const cz_csv *c) { return cz_src_offset(&c->src); }
uint64_t cz_csv_size(const cz_csv *c) { return c->src.size; }

/* 1: bytes available at in_pos, 0: end of input, < 0: read error */
static int avail(cz_csv *c, cz_error *err)
{
    if (c->in_pos < c->in_len) return 1;
    if (c->eof) return 0;
    long r = cz_src_read(&c->src, c->in, c->in_cap, err);
    if (r < 0) {
        c->broken = 1;
        return (int)r;
    }
    c->in_pos = 0;
    c->in_len = (size_t)r;
    if (r == 0) {
        c->eof = 1;
        return 0;
    }
    if (!c->started) {
        c->started = 1;
        if (c->in_len >= 3 && !memcmp(c->in, "\xEF\xBB\xBF", 3)) c->in_pos = 3;
        if (c->in_pos == c->in_len) return avail(c, err);
    }
    return 1;
}

static int rec_put(cz_csv *c, const void *p, size_t n, cz_error *err)
{
    if (c->rec_len + n + 1 > c->rec_cap) {
        if (c->rec_len + n > CZ_CSV_MAX_RECORD) {
            c->broken = 1;
            return cz_error_set(err, CZ_EINVAL,
                                "%s:%zu: a record longer than %zu MiB (from line %zu): is a quote "
                                "never closed?",
                                c->src.name, c->line, CZ_CSV_MAX_RECORD >> 20, c->rec_line);
        }
        size_t cap = c->rec_cap;
        while (c->rec_len + n + 1 > cap) cap *= 2;
        char *r = realloc(c->rec, cap);
        if (!r) {
            c->broken = 1;
            return cz_error_set(err, CZ_ENOMEM, "%s:%zu: out of memory for a record of %zu bytes",
                                c->src.name, c->rec_line, c->rec_len + n);
        }
        c->rec = r;
        c->rec_cap = cap;
    }
    memcpy(c->rec + c->rec_len, p, n);
    c->rec_len += n;
    return 0;
}

static int field_begin(cz_csv *c, int quoted, cz_error *err)
{
    if (c->nf == c->fcap) {
        size_t cap = 2 * c->fcap;
        span *s = realloc(c->spans, cap * sizeof *s);
        if (s) c->spans = s;
        cz_csv_field *f = realloc(c->fields, cap * sizeof *f);
        if (f) c->fields = f;
        if (!s || !f) {
            c->broken = 1;
            return cz_error_set(err, CZ_ENOMEM, "%s:%zu: out of memory for %zu fields", c->src.name,
                                c->rec_line, cap);
        }
        c->fcap = cap;
    }
    c->spans[c->nf].off = c->rec_len;
    c->spans[c->nf].quoted = quoted;
    return 0;
}

static int field_end(cz_csv *c, cz_error *err)
{
    span *s = &c->spans[c->nf];
    s->len = c->rec_len - s->off;
    c->nf++;
    return rec_put(c, "", 1, err); /* NUL terminator, not part of len */
}

static void record_done(cz_csv *c)
{
    for (size_t i = 0; i < c->nf; i++) {
        c->fields[i].s = c->rec + c->spans[i].off;
        c->fields[i].len = c->spans[i].len;
        c->fields[i].quoted = c->spans[i].quoted;
    }
}

/* After a syntax error: consume up to and including the next line feed (a read error
 * on the way leaves the reader broken). */
static void skip_line(cz_csv *c)
{
    cz_error ignore;
    for (;;) {
        if (avail(c, &ignore) <= 0) return;
        unsigned char *p = c->in + c->in_pos, *nl = memchr(p, '\n', c->in_len - c->in_pos);
        if (nl) {
            c->in_pos += (size_t)(nl - p) + 1;
            c->line++;
            return;
        }
        c->in_pos = c->in_len;
    }
}

static void show_byte(char *buf, size_t len, int b)
{
    if (b >= 0x20 && b < 0x7f) snprintf(buf, len, "'%c'", b);
    else if (b == '\r') snprintf(buf, len, "a carriage return");
    else snprintf(buf, len, "byte 0x%02x", (unsigned)b);
}

static int syntax_error(cz_csv *c, cz_error *err, const char *fmt, int b)
{
    char what[32], where[64] = "";
    show_byte(what, sizeof what, b);
    if (c->line != c->rec_line) snprintf(where, sizeof where, " (record from line %zu)", c->rec_line);
    char msg[512];
    snprintf(msg, sizeof msg, fmt, c->nf + 1, what);
    size_t bad_line = c->line;
    skip_line(c);
    return cz_error_set(err, CZ_EINVAL, "%s:%zu: %s%s", c->src.name, bad_line, msg, where);
}

int cz_csv_next(cz_csv *c, cz_error *err)
{
    if (c->broken)
        return cz_error_set(err, CZ_EINVAL, "%s:%zu: cannot read on after the previous error",
                            c->src.name, c->line);
    c->rec_len = 0;
    c->nf = 0;
    int st = ST_START, in_record = 0, rc;
    size_t quote_line = 0;
    for (;;) {
        int a = avail(c, err);
        if (a < 0) return a;
        if (a == 0) {
            if (!in_record) return 0;
            if (st == ST_QUO) {
                c->rec_line = quote_line;
                return cz_error_set(err, CZ_EINVAL,
                                    "%s:%zu: field %zu: the quote opened here is never closed (the "
                                    "file ends inside a quoted field)",
                                    c->src.name, quote_line, c->nf + 1);
            }
            if (st == ST_START && (rc = field_begin(c, 0, err))) return rc; /* "a," ends empty */
            if ((rc = field_end(c, err))) return rc;
            record_done(c);
            return 1;
        }
        const unsigned char *p = c->in + c->in_pos, *end = c->in + c->in_len;
        int b = *p;
        if (!in_record) {
            if (b == '\n') {
                c->in_pos++;
                c->line++;
                continue;
            }
            if (b == '\r') { /* "\r\n" alone is an empty line too */
                c->in_pos++;
                int a2 = avail(c, err);
                if (a2 < 0) return a2;
                if (a2 > 0 && c->in[c->in_pos] == '\n') {
                    c->in_pos++;
                    c->line++;
                    continue;
                }
                c->rec_line = c->line;
                in_record = 1;
                if ((rc = field_begin(c, 0, err)) || (rc = rec_put(c, "\r", 1, err))) return rc;
                st = ST_UNQ;
                continue;
            }
            c->rec_line = c->line;
            in_record = 1;
        }
        switch (st) {
        case ST_START:
            if (b == '"') {
                c->in_pos++;
                quote_line = c->line;
                if ((rc = field_begin(c, 1, err))) return rc;
                st = ST_QUO;
                break;
            }
            /* the byte belongs to an unquoted field */
            if ((rc = field_begin(c, 0, err))) return rc;
            st = ST_UNQ;
            /* fall through */
        case ST_UNQ: {
            const unsigned char *q = p;
            while (q < end && *q != ',' && *q != '\n' && *q != '\r' && *q != '"') q++;
            if (q > p && (rc = rec_put(c, p, (size_t)(q - p), err))) return rc;
            c->in_pos += (size_t)(q - p);
            if (q == end) break;
            if (*q == '"')
                return syntax_error(c, err,
                                    "field %zu: %s inside an unquoted field (quote the whole field "
                                    "and double the quote: \"a\"\"b\")",
                                    '"');
            c->in_pos++;
            if (*q == ',') {
                if ((rc = field_end(c, err))) return rc;
                st = ST_START;
            } else if (*q == '\n') {
                c->line++;
                if ((rc = field_end(c, err))) return rc;
                record_done(c);
                return 1;
            } else { /* '\r': the line end if a '\n' follows, else data */
                int a2 = avail(c, err);
                if (a2 < 0) return a2;
                if (a2 > 0 && c->in[c->in_pos] == '\n') {
                    c->in_pos++;
                    c->line++;
                    if ((rc = field_end(c, err))) return rc;
                    record_done(c);
                    return 1;
                }
                if ((rc = rec_put(c, "\r", 1, err))) return rc;
            }
            break;
        }
        case ST_QUO: {
            const unsigned char *q = memchr(p, '"', (size_t)(end - p));
            const unsigned char *stop = q ? q : end;
            for (const unsigned char *r = p; (r = memchr(r, '\n', (size_t)(stop - r))); r++) c->line++;
            if (stop > p && (rc = rec_put(c, p, (size_t)(stop - p), err))) return rc;
            c->in_pos += (size_t)(stop - p);
            if (q) {
                c->in_pos++;
                st = ST_QSEEN;
            }
            break;
        }
        case ST_QSEEN:
            if (b == '"') { /* "" inside a quoted field */
                c->in_pos++;
                if ((rc = rec_put(c, "\"", 1, err))) return rc;
                st = ST_QUO;
            } else if (b == ',') {
                c->in_pos++;
                if ((rc = field_end(c, err))) return rc;
                st = ST_START;
            } else if (b == '\n') {
                c->in_pos++;
                c->line++;
                if ((rc = field_end(c, err))) return rc;
                record_done(c);
                return 1;
            } else if (b == '\r') {
                c->in_pos++;
                int a2 = avail(c, err);
                if (a2 < 0) return a2;
                if (a2 > 0 && c->in[c->in_pos] == '\n') {
                    c->in_pos++;
                    c->line++;
                } else if (a2 > 0) {
                    return syntax_error(c, err,
                                        "field %zu: %s after the closing quote, expected ',' or the "
                                        "line end",
                                        '\r');
                }
                if ((rc = field_end(c, err))) return rc;
                record_done(c);
                return 1;
            } else {
                return syntax_error(c, err,
                                    "field %zu: %s after the closing quote, expected ',' or the line "
                                    "end (a quote inside a quoted field is written \"\")",
                                    b);
            }
            break;
        }
    }
}
