/* Strict JSON reader: a recursive descent over the text with line/column tracking. See
 * include/chainz/json.h for what is accepted. */
#include "chainz/json.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    const char *s, *name;
    size_t len, pos;
    int line, col;
    cz_error *err;
} parser;

static const char *const type_names[] = {"null", "a boolean", "a number", "a string", "an array", "an object"};

const char *cz_json_type_name(cz_json_type t)
{
    return (unsigned)t < sizeof type_names / sizeof *type_names ? type_names[t] : "?";
}

/* what is at the current position, for messages */
static void describe_here(const parser *p, char *buf, size_t len)
{
    if (p->pos >= p->len) {
        snprintf(buf, len, "the end of the file");
        return;
    }
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c >= 0x20 && c < 0x7f) snprintf(buf, len, "'%c'", c);
    else snprintf(buf, len, "byte 0x%02x", c);
}

static int fail(parser *p, const char *expected)
{
    char got[32];
    describe_here(p, got, sizeof got);
    return cz_error_set(p->err, CZ_EINVAL, "%s:%d:%d: expected %s, got %s", p->name, p->line, p->col, expected, got);
}

static void advance(parser *p)
{
    if (p->pos >= p->len) return;
    if (p->s[p->pos] == '\n') {
        p->line++;
        p->col = 1;
    } else {
        p->col++;
    }
    p->pos++;
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        advance(p);
    }
}

static int peek(const parser *p)
{
    return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1;
}

static int literal(parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n)) return 0;
    for (size_t i = 0; i < n; i++) advance(p);
    return 1;
}

static int hex4(parser *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int c = peek(p);
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return fail(p, "four hex digits after \\u");
        v = v * 16 + (unsigned)d;
        advance(p);
    }
    *out = v;
    return 0;
}

static int parse_string(parser *p, char **out)
{
    advance(p); /* the opening quote */
    size_t cap = 16, n = 0;
    char *b = malloc(cap);
    if (!b) return cz_error_set(p->err, CZ_ENOMEM, "%s: out of memory", p->name);
    int rc = 0;
    for (;;) {
        int c = peek(p);
        if (c < 0) {
            rc = fail(p, "'\"' to end the string");
            break;
        }
        if (c < 0x20) {
            rc = fail(p, "a string character (control characters must be escaped)");
            break;
        }
        char enc[4];
        size_t k = 1;
        if (c == '"') {
            advance(p);
            break;
        }
        if (c == '\\') {
            advance(p);
            int e = peek(p);
            const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
            const char *at = e > 0 ? strchr(from, e) : NULL;
            if (e == 'u') {
                advance(p);
                unsigned u;
                if ((rc = hex4(p, &u))) break;
                if (u >= 0xD800 && u < 0xDC00) {
                    unsigned lo;
                    if (!literal(p, "\\u")) {
                        rc = fail(p, "a low surrogate \\uDC00-\\uDFFF after a high surrogate");
                        break;
                    }
                    if ((rc = hex4(p, &lo))) break;
                    if (lo < 0xDC00 || lo > 0xDFFF) {
                        rc = fail(p, "a low surrogate \\uDC00-\\uDFFF after a high surrogate");
                        break;
                    }
                    u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                } else if (u >= 0xDC00 && u < 0xE000) {
                    rc = fail(p, "a character, not a lone low surrogate");
                    break;
                }
                if (u == 0) {
                    rc = fail(p, "a character other than \\u0000");
                    break;
                }
                if (u < 0x80) {
                    enc[0] = (char)u;
                } else if (u < 0x800) {
                    enc[0] = (char)(0xC0 | (u >> 6));
                    enc[1] = (char)(0x80 | (u & 63));
                    k = 2;
                } else if (u < 0x10000) {
                    enc[0] = (char)(0xE0 | (u >> 12));
                    enc[1] = (char)(0x80 | ((u >> 6) & 63));
                    enc[2] = (char)(0x80 | (u & 63));
                    k = 3;
                } else {
                    enc[0] = (char)(0xF0 | (u >> 18));
                    enc[1] = (char)(0x80 | ((u >> 12) & 63));
                    enc[2] = (char)(0x80 | ((u >> 6) & 63));
                    enc[3] = (char)(0x80 | (u & 63));
                    k = 4;
                }
            } else if (at) {
                enc[0] = to[at - from];
                advance(p);
            } else {
                rc = fail(p, "an escape \\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX");
                break;
            }
        } else {
            enc[0] = (char)c;
            advance(p);
        }
        if (n + k + 1 > cap) {
            cap = 2 * cap + k;
            char *nb = realloc(b, cap);
            if (!nb) {
                rc = cz_error_set(p->err, CZ_ENOMEM, "%s: out of memory", p->name);
                break;
            }
            b = nb;
        }
        memcpy(b + n, enc, k);
        n += k;
    }
    if (rc) {
        free(b);
        return rc;
    }
    b[n] = '\0';
    *out = b;
    return 0;
}

static int parse_number(parser *p, cz_json *v)
{
    size_t start = p->pos;
    if (peek(p) == '-') advance(p);
    if (peek(p) == '0') {
        advance(p);
    } else if (peek(p) >= '1' && peek(p) <= '9') {
        while (peek(p) >= '0' && peek(p) <= '9') advance(p);
    } else {
        return fail(p, "a digit");
    }
    if (peek(p) == '.') {
        advance(p);
        if (!(peek(p) >= '0' && peek(p) <= '9')) return fail(p, "a digit after '.'");
        while (peek(p) >= '0' && peek(p) <= '9') advance(p);
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        advance(p);
        if (peek(p) == '+' || peek(p) == '-') advance(p);
        if (!(peek(p) >= '0' && peek(p) <= '9')) return fail(p, "a digit in the exponent");
        while (peek(p) >= '0' && peek(p) <= '9') advance(p);
    }
    size_t n = p->pos - start;
    if (!(v->str = malloc(n + 1))) return cz_error_set(p->err, CZ_ENOMEM, "%s: out of memory", p->name);
    memcpy(v->str, p->s + start, n);
    v->str[n] = '\0';
    errno = 0;
    v->num = strtod(v->str, NULL);
    if (errno == ERANGE && (v->num > 1 || v->num < -1))
        return cz_error_set(p->err, CZ_EINVAL, "%s:%d: number %s is out of range", p->name, v->line, v->str);
    v->type = CZ_JSON_NUMBER;
    return 0;
}

static int parse_value(parser *p, cz_json *v, int depth);

static int grow(parser *p, cz_json *v, size_t *cap, int object)
{
    if (v->n < *cap) return 0;
    size_t nc = *cap ? 2 * *cap : 4;
    cz_json *ni = realloc(v->items, nc * sizeof *ni);
    if (!ni) return cz_error_set(p->err, CZ_ENOMEM, "%s: out of memory", p->name);
    v->items = ni;
    if (object) {
        char **nk = realloc(v->keys, nc * sizeof *nk);
        if (!nk) return cz_error_set(p->err, CZ_ENOMEM, "%s: out of memory", p->name);
        v->keys = nk;
    }
    *cap = nc;
    return 0;
}

static int parse_container(parser *p, cz_json *v, int depth, int object)
{
    if (depth >= CZ_JSON_MAX_DEPTH)
        return cz_error_set(p->err, CZ_EINVAL, "%s:%d:%d: nesting deeper than %d levels", p->name, p->line, p->col,
                            CZ_JSON_MAX_DEPTH);
    v->type = object ? CZ_JSON_OBJECT : CZ_JSON_ARRAY;
    char close = object ? '}' : ']';
    advance(p);
    skip_ws(p);
    size_t cap = 0;
    if (peek(p) == close) {
        advance(p);
        return 0;
    }
    for (;;) {
        int rc;
        if ((rc = grow(p, v, &cap, object))) return rc;
        cz_json *item = &v->items[v->n];
        memset(item, 0, sizeof *item);
        if (object) {
            v->keys[v->n] = NULL;
            if (peek(p) != '"') return fail(p, v->n ? "a member name in double quotes" : "a member name in double quotes or '}'");
            int kline = p->line;
            char *key;
            if ((rc = parse_string(p, &key))) return rc;
            v->keys[v->n] = key;
            v->n++; /* owned from here on, freed with v */
            for (size_t i = 0; i + 1 < v->n; i++)
                if (!strcmp(v->keys[i], key))
                    return cz_error_set(p->err, CZ_EINVAL, "%s:%d: key \"%s\" appears twice in one object", p->name,
                                        kline, key);
            skip_ws(p);
            if (peek(p) != ':') return fail(p, "':' after the member name");
            advance(p);
            skip_ws(p);
        } else {
            v->n++;
        }
        if ((rc = parse_value(p, item, depth + 1))) return rc;
        skip_ws(p);
        if (peek(p) == ',') {
            advance(p);
            skip_ws(p);
            if (peek(p) == close)
                return fail(p, object ? "a member after ',' (no trailing commas)" : "a value after ',' (no trailing commas)");
            continue;
        }
        if (peek(p) == close) {
            advance(p);
            return 0;
        }
        return fail(p, object ? "',' or '}' after a member" : "',' or ']' after a value");
    }
}

static int parse_value(parser *p, cz_json *v, int depth)
{
    memset(v, 0, sizeof *v);
    v->line = p->line;
    int c = peek(p);
    if (c == '{') return parse_container(p, v, depth, 1);
    if (c == '[') return parse_container(p, v, depth, 0);
    if (c == '"') {
        v->type = CZ_JSON_STRING;
        return parse_string(p, &v->str);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, v);
    if (literal(p, "true")) {
        v->type = CZ_JSON_BOOL;
        v->boolean = 1;
        return 0;
    }
    if (literal(p, "false")) {
        v->type = CZ_JSON_BOOL;
        return 0;
    }
    if (literal(p, "null")) return 0;
    return fail(p, "a value (object, array, string, number, true, false or null)");
}

int cz_json_parse(cz_json *out, const char *text, size_t len, const char *name, cz_error *err)
{
    parser p = {.s = text, .name = name, .len = len, .line = 1, .col = 1, .err = err};
    memset(out, 0, sizeof *out);
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) p.pos = 3; /* a UTF-8 byte order mark */
    skip_ws(&p);
    int rc = parse_value(&p, out, 0);
    if (!rc) {
        skip_ws(&p);
        if (p.pos < p.len) rc = fail(&p, "the end of the file after the value");
    }
    if (rc) cz_json_free(out);
    return rc;
}

int cz_json_read_file(cz_json *out, const char *path, cz_error *err)
{
    memset(out, 0, sizeof *out);
    struct stat st; /* a FIFO or a device would block fopen or never end */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return cz_error_set(err, CZ_EINVAL, "%s: not a regular file (a spec is a JSON file)", path);
    FILE *f = fopen(path, "rb");
    if (!f) return cz_error_set(err, CZ_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 12, n = 0, limit = (size_t)16 << 20;
    char *b = malloc(cap);
    int rc = 0;
    while (b) {
        if (n == cap) {
            if (cap >= limit) {
                rc = cz_error_set(err, CZ_EINVAL, "%s: larger than 16 MB, not a spec", path);
                break;
            }
            char *nb = realloc(b, cap * 2);
            if (!nb) break;
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) rc = cz_error_set(err, CZ_EIO, "%s: read error: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (!b) return cz_error_set(err, CZ_ENOMEM, "%s: out of memory", path);
    if (!rc && n == 0) rc = cz_error_set(err, CZ_EINVAL, "%s:1:1: expected a JSON value, the file is empty", path);
    if (!rc) rc = cz_json_parse(out, b, n, path, err);
    free(b);
    return rc;
}

void cz_json_free(cz_json *v)
{
    if (!v) return;
    for (size_t i = 0; i < v->n; i++) {
        if (v->items) cz_json_free(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    memset(v, 0, sizeof *v);
}

const cz_json *cz_json_get(const cz_json *v, const char *key)
{
    if (!v || v->type != CZ_JSON_OBJECT) return NULL;
    for (size_t i = 0; i < v->n; i++)
        if (!strcmp(v->keys[i], key)) return &v->items[i];
    return NULL;
}

void cz_json_write_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') fprintf(f, "\\%c", *c);
        else if (*c == '\n') fputs("\\n", f);
        else if (*c == '\t') fputs("\\t", f);
        else if (*c < 0x20) fprintf(f, "\\u%04x", *c);
        else fputc(*c, f);
    }
    fputc('"', f);
}
