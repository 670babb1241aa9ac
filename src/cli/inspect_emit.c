/* The text / JSON emitter of `chainz inspect` (inspect_internal.h). */
#include "inspect_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The length of the valid UTF-8 sequence at s (1..4), or 0 (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF). */
static int utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    int n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!n) return 0;
    unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80, hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
    if (s[1] < lo || s[1] > hi) return 0;
    for (int i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return n;
}

/* A JSON string from bytes of a file (attribute values, names, paths, a config): JSON text
 * must be UTF-8, so a byte that does not start a valid sequence is written as U+FFFD. */
static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c;) {
        int n = utf8_len(c);
        if (n == 1 && (*c == '"' || *c == '\\')) fprintf(f, "\\%c", *c);
        else if (n == 1 && *c == '\n') fputs("\\n", f);
        else if (n == 1 && *c == '\t') fputs("\\t", f);
        else if (n == 1 && *c < 0x20) fprintf(f, "\\u%04x", *c);
        else if (n) fwrite(c, 1, (size_t)n, f);
        else fputs("\\ufffd", f);
        c += n ? n : 1;
    }
    fputc('"', f);
}

void em_begin(cz_emit *e, FILE *f, int json)
{
    memset(e, 0, sizeof *e);
    e->f = f;
    e->json = json;
    e->kind[0] = 'o';
    if (json) fputc('{', f);
}

void em_finish(cz_emit *e)
{
    if (e->json) fputs("}\n", e->f);
    fflush(e->f);
}

/* 1 if the current level is written on one line in text mode */
static int inline_level(const cz_emit *e, int level)
{
    for (int l = 1; l <= level; l++)
        if (e->kind[l] != 'o') return 1;
    return 0;
}

/* the separator and key of the next member */
static void key_sp(cz_emit *e, const char *k, int space)
{
    int first = e->count[e->depth]++ == 0;
    if (e->json) {
        if (!first) fputc(',', e->f);
        if (k && e->kind[e->depth] != 'a') {
            json_string(e->f, k);
            fputc(':', e->f);
        }
        return;
    }
    if (inline_level(e, e->depth)) {
        if (!first) fputs(e->kind[e->depth] == 'a' ? ", " : " ", e->f);
        /* inside an array an object shows its values only */
        if (k && e->kind[e->depth] == 'r') fprintf(e->f, "%s=", k);
        return;
    }
    fprintf(e->f, "%*s", 2 * e->depth, "");
    for (const char *c = k ? k : "-"; *c; c++) fputc(*c == '_' && !e->verbatim ? ' ' : *c, e->f);
    fputs(space ? ": " : ":", e->f);
}

static void key(cz_emit *e, const char *k) { key_sp(e, k, 1); }

void em_verbatim(cz_emit *e, int on) { e->verbatim = on; }

static void end_value(cz_emit *e)
{
    if (!e->json && !inline_level(e, e->depth)) fputc('\n', e->f);
}

static void open_level(cz_emit *e, const char *k, char kind)
{
    key_sp(e, k, kind != 'o');
    if (e->depth + 1 >= EM_MAX_DEPTH) abort(); /* a programming error: the nesting is fixed */
    int was_inline = inline_level(e, e->depth);
    e->depth++;
    e->count[e->depth] = 0;
    /* an object inside a row stays a row; inside an array it shows its values only ('v') */
    e->kind[e->depth] = kind == 'o' && was_inline ? (e->kind[e->depth - 1] == 'a' ? 'v' : 'r') : kind;
    if (e->json) fputc(kind == 'a' ? '[' : '{', e->f);
    else if (kind == 'o' && !was_inline) fputc('\n', e->f);
}

void em_obj(cz_emit *e, const char *k) { open_level(e, k, 'o'); }
void em_row(cz_emit *e, const char *k) { open_level(e, k, 'r'); }
void em_arr(cz_emit *e, const char *k) { open_level(e, k, 'a'); }

void em_end(cz_emit *e)
{
    char kind = e->kind[e->depth];
    int had = e->count[e->depth];
    e->depth--;
    if (e->json) {
        fputc(kind == 'a' ? ']' : '}', e->f);
        return;
    }
    if (kind == 'a' && !had) fputs("none", e->f);
    if (kind == 'a' || kind == 'r') end_value(e);
}

void em_str(cz_emit *e, const char *k, const char *v)
{
    key(e, k);
    if (e->json) {
        if (v) json_string(e->f, v);
        else fputs("null", e->f);
    } else {
        fputs(v ? v : "n/a", e->f);
    }
    end_value(e);
}

void em_num(cz_emit *e, const char *k, double v)
{
    key(e, k);
    if (!isfinite(v)) {
        fputs(e->json ? "null" : "n/a", e->f);
    } else if (e->json) {
        /* the shortest text that reads back as the same double */
        char buf[40];
        snprintf(buf, sizeof buf, "%.15g", v);
        if (strtod(buf, NULL) != v) snprintf(buf, sizeof buf, "%.17g", v);
        fputs(buf, e->f);
    } else {
        fprintf(e->f, "%.6g", v);
    }
    end_value(e);
}

void em_int(cz_emit *e, const char *k, long long v)
{
    key(e, k);
    fprintf(e->f, "%lld", v);
    end_value(e);
}

void em_bool(cz_emit *e, const char *k, int v)
{
    key(e, k);
    fputs(e->json ? (v ? "true" : "false") : (v ? "yes" : "no"), e->f);
    end_value(e);
}

void em_raw(cz_emit *e, const char *k, const char *json_text, const char *text)
{
    key(e, k);
    fputs(e->json ? json_text : text, e->f);
    end_value(e);
}
