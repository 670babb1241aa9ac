/* Word vectors in the GloVe text format -> one float32 arena [V x D], one char arena of the
 * words (NUL-terminated, back to back), and an open-addressing hash table (FNV-1a 64 then
 * a finaliser; linear probing; load <= 1/2). A slot is 16 bytes: the full 64-bit hash,
 * the word's index + 1 (0: empty) and its offset in the char arena, so a lookup touches
 * the table slot, the word's bytes (only when the hashes agree) and the vector: three
 * cache misses for a rare word, which cz_vocab_find_batch overlaps across many tokens by
 * prefetching. The file is streamed line by line; the format is documented in
 * include/chainz/prep.h. */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FNV_BASIS 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
#define VOCAB_CHUNK ((size_t)1 << 20)
#define VOCAB_MAX_LINE ((size_t)16 << 20)
#define VOCAB_MAX_DIM 65536
#define VOCAB_MAX_WORDS 0xfffffff0u
#define VOCAB_MAX_CHARS 0xffffffffu /* word offsets are 32 bits */
/* the word of the line being parsed, for '%.*s' in messages */
#define WSHOW (int)(wlen < 40 ? wlen : 40), word

typedef struct {
    uint64_t hash;
    uint32_t idx1;  /* word index + 1, 0: empty */
    uint32_t woff;  /* offset of the word in the char arena */
} slot;

struct cz_vocab {
    cz_vocab_info info;
    float *vec;          /* [cap_rows x dim] */
    size_t cap_rows;
    char *words;         /* NUL-terminated words, back to back */
    size_t words_len, words_cap;
    slot *table;         /* [mask + 1] */
    size_t mask;
};

static inline uint64_t word_hash(const char *s, size_t n)
{
    uint64_t h = FNV_BASIS;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= FNV_PRIME;
    }
    h ^= h >> 33; /* FNV's low bits mix poorly for a power-of-two table: fold the high ones in */
    h *= 0xff51afd7ed558ccdULL;
    return h ^ (h >> 33);
}

void cz_vocab_free(cz_vocab *v)
{
    if (!v) return;
    free(v->vec);
    free(v->words);
    free(v->table);
    free(v);
}

const cz_vocab_info *cz_vocab_get_info(const cz_vocab *v) { return &v->info; }

static inline int word_is(const cz_vocab *v, const slot *e, const char *w, size_t n)
{
    const char *s = v->words + e->woff; /* NUL-terminated; w holds no NUL */
    return !strncmp(s, w, n) && s[n] == '\0';
}

/* The slot of word w (hash h), or of the empty slot where it would go. */
static size_t probe(const cz_vocab *v, const char *w, size_t n, uint64_t h, int *found)
{
    size_t i = (size_t)h & v->mask;
    for (;;) {
        const slot *e = &v->table[i];
        if (!e->idx1) {
            *found = 0;
            return i;
        }
        if (e->hash == h && word_is(v, e, w, n)) {
            *found = 1;
            return i;
        }
        i = (i + 1) & v->mask;
    }
}

const float *cz_vocab_find(const cz_vocab *v, const char *word, size_t len)
{
    if (!v->info.words || memchr(word, '\0', len)) return NULL;
    int found;
    size_t i = probe(v, word, len, word_hash(word, len), &found);
    return found ? v->vec + (size_t)(v->table[i].idx1 - 1) * v->info.dim : NULL;
}

void cz_vocab_find_batch(const cz_vocab *v, const char *const *w, const size_t *len, size_t n,
                         uint64_t *scratch, const float **out)
{
    if (!v->info.words) {
        for (size_t t = 0; t < n; t++) out[t] = NULL;
        return;
    }
    size_t row_bytes = v->info.dim * sizeof(float);
    for (size_t t = 0; t < n; t++) { /* 1: hashes; fetch the table slots */
        scratch[t] = word_hash(w[t], len[t]);
        __builtin_prefetch(&v->table[(size_t)scratch[t] & v->mask]);
    }
    for (size_t t = 0; t < n; t++) { /* 2: the first slot with an equal hash; fetch its word and vector */
        size_t i = (size_t)scratch[t] & v->mask;
        out[t] = NULL;
        for (;;) {
            const slot *e = &v->table[i];
            if (!e->idx1) break;
            if (e->hash == scratch[t]) {
                __builtin_prefetch(v->words + e->woff);
                const char *row = (const char *)(v->vec + (size_t)(e->idx1 - 1) * v->info.dim);
                for (size_t b = 0; b < row_bytes; b += 64) __builtin_prefetch(row + b);
                out[t] = (const float *)row;
                scratch[t] = i;
                break;
            }
            i = (i + 1) & v->mask;
        }
    }
    for (size_t t = 0; t < n; t++) { /* 3: confirm the word (or probe on, after a collision) */
        if (!out[t]) continue;
        const slot *e = &v->table[scratch[t]];
        if (memchr(w[t], '\0', len[t]) || !word_is(v, e, w[t], len[t])) out[t] = cz_vocab_find(v, w[t], len[t]);
    }
}

static int table_grow(cz_vocab *v)
{
    size_t cap = v->table ? 2 * (v->mask + 1) : 1024;
    slot *t = calloc(cap, sizeof *t);
    if (!t) return CZ_ENOMEM;
    size_t mask = cap - 1;
    for (size_t k = 0; v->table && k <= v->mask; k++) {
        if (!v->table[k].idx1) continue;
        size_t i = (size_t)v->table[k].hash & mask;
        while (t[i].idx1) i = (i + 1) & mask;
        t[i] = v->table[k];
    }
    free(v->table);
    v->table = t;
    v->mask = mask;
    return 0;
}

static int rows_reserve(cz_vocab *v, size_t rows)
{
    if (rows <= v->cap_rows) return 0;
    /* large blocks are mmap'ed by malloc and grown by mremap: no copy, and only the rows
       written are ever resident */
    float *vec = realloc(v->vec, rows * v->info.dim * sizeof *vec);
    if (!vec) return CZ_ENOMEM;
    v->vec = vec;
    v->cap_rows = rows;
    return 0;
}

static int is_sep(char c) { return c == ' ' || c == '\t'; }

static int all_digits(const char *s, size_t n)
{
    if (!n || n > 12) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned)(s[i] - '0') >= 10) return 0;
    return 1;
}

typedef struct {
    cz_vocab *v;
    const char *name;
    size_t skip_bad;
    size_t dim_line;   /* the line that set the dimension */
    size_t header_rows;
    uint64_t size_hint; /* bytes of the input (compressed for gzip): bounds the first reservation */
    float *row;        /* [dim] scratch of the line being parsed */
} loader;

/* One line (NUL-terminated at line[len], no line break). @return 0, 1 (skipped as bad),
 * or a negative code. */
static int load_line(loader *L, char *line, size_t len, size_t lineno, cz_error *err)
{
    cz_vocab *v = L->v;
    while (len && (line[len - 1] == '\r' || is_sep(line[len - 1]))) line[--len] = '\0';
    size_t i = 0;
    while (i < len && is_sep(line[i])) i++;
    if (i == len) return 0; /* blank */
    const char *word = line + i;
    size_t wstart = i;
    while (i < len && !is_sep(line[i])) i++;
    size_t wlen = i - wstart;
    char msg[400];
    int bad = 0;
    if (v->info.dim == 0) { /* the first line: count the values, or a word2vec header */
        size_t count = 0, j = i;
        const char *second = NULL;
        size_t second_len = 0;
        while (j < len) {
            while (j < len && is_sep(line[j])) j++;
            if (j == len) break;
            const char *t = line + j;
            while (j < len && !is_sep(line[j])) j++;
            if (!count) second = t, second_len = (size_t)(line + j - t);
            count++;
        }
        if (count == 1 && all_digits(word, wlen) && all_digits(second, second_len)) {
            unsigned long rows = strtoul(word, NULL, 10), dim = strtoul(second, NULL, 10);
            if (dim < 1 || dim > VOCAB_MAX_DIM)
                return cz_error_set(err, CZ_EINVAL,
                                    "%s:%zu: the header says dimension %lu, expected 1..%d", L->name,
                                    lineno, dim, VOCAB_MAX_DIM);
            v->info.dim = dim;
            L->dim_line = lineno;
            L->header_rows = rows;
            return 0;
        }
        if (count == 0)
            return cz_error_set(err, CZ_EINVAL,
                                "%s:%zu: no values after the word '%.*s', expected 'word v1 ... vD'",
                                L->name, lineno, WSHOW);
        if (count > VOCAB_MAX_DIM)
            return cz_error_set(err, CZ_EINVAL, "%s:%zu: %zu values, at most %d are supported",
                                L->name, lineno, count, VOCAB_MAX_DIM);
        v->info.dim = count;
        L->dim_line = lineno;
    }
    if (!L->row && !(L->row = malloc(v->info.dim * sizeof *L->row)))
        return cz_error_set(err, CZ_ENOMEM, "%s: out of memory", L->name);
    size_t d = v->info.dim, k = 0;
    char *p = line + i;
    while (!bad) {
        while (is_sep(*p)) p++;
        if (!*p) break;
        if (k == d) {
            size_t extra = 0;
            while (*p) {
                while (*p && !is_sep(*p)) p++;
                while (is_sep(*p)) p++;
                extra++;
            }
            snprintf(msg, sizeof msg,
                     "%s:%zu: %zu values after the word '%.*s', expected %zu (the dimension of line %zu)",
                     L->name, lineno, d + extra, WSHOW, d, L->dim_line);
            bad = 1;
            break;
        }
        char *e;
        errno = 0;
        float x = strtof(p, &e);
        if (e == p || (*e && !is_sep(*e))) {
            const char *t = p;
            size_t tl = 0;
            while (t[tl] && !is_sep(t[tl])) tl++;
            snprintf(msg, sizeof msg, "%s:%zu: value %zu of the word '%.*s' is '%.*s', expected a number",
                     L->name, lineno, k + 1, WSHOW, (int)(tl < 30 ? tl : 30), t);
            bad = 1;
        } else if (!isfinite(x)) {
            snprintf(msg, sizeof msg, "%s:%zu: value %zu of the word '%.*s' is not a finite float32 (%.*s)",
                     L->name, lineno, k + 1, WSHOW, (int)((e - p) < 30 ? (e - p) : 30), p);
            bad = 1;
        } else {
            L->row[k++] = x;
            p = e;
        }
    }
    if (!bad && k != d) {
        snprintf(msg, sizeof msg,
                 "%s:%zu: %zu values after the word '%.*s', expected %zu (the dimension of line %zu)",
                 L->name, lineno, k, WSHOW, d, L->dim_line);
        bad = 1;
    }
    if (bad) {
        if (v->info.bad_lines >= L->skip_bad)
            return cz_error_set(err, CZ_EINVAL, "%s%s", msg,
                                L->skip_bad ? " (after skipping the allowed bad lines)" : "");
        if (!v->info.bad_lines) snprintf(v->info.first_bad, sizeof v->info.first_bad, "%.300s", msg);
        v->info.bad_lines++;
        return 1;
    }
    /* insert */
    if (v->info.words >= VOCAB_MAX_WORDS)
        return cz_error_set(err, CZ_EINVAL, "%s:%zu: more than %u words", L->name, lineno, VOCAB_MAX_WORDS);
    if (!v->table || 2 * (v->info.words + 1) > v->mask + 1)
        if (table_grow(v)) return cz_error_set(err, CZ_ENOMEM, "%s: out of memory", L->name);
    if (memchr(word, '\0', wlen)) { /* cannot match a token: keep the arena NUL-separated */
        v->info.duplicates++;
        return 0;
    }
    uint64_t h = word_hash(word, wlen);
    int found;
    size_t at = probe(v, word, wlen, h, &found);
    if (found) {
        v->info.duplicates++;
        return 0;
    }
    size_t n = v->info.words;
    if (n == v->cap_rows) {
        size_t want = v->cap_rows ? 2 * v->cap_rows : (4u << 20) / (d * sizeof(float)); /* 4 MiB */
        if (!v->cap_rows && L->size_hint / (2 * d) + 16 < want) /* a row takes >= 2d bytes */
            want = L->size_hint / (2 * d) + 16;
        if (want < 16) want = 16;
        if (!v->cap_rows && L->header_rows > want && L->header_rows < ((size_t)1 << 27))
            want = L->header_rows;
        if (rows_reserve(v, want))
            return cz_error_set(err, CZ_ENOMEM, "%s: out of memory for %zu vectors of %zu floats",
                                L->name, want, d);
    }
    if (v->words_len + wlen + 1 > VOCAB_MAX_CHARS)
        return cz_error_set(err, CZ_EINVAL, "%s:%zu: the words take more than 4 GiB", L->name, lineno);
    if (v->words_len + wlen + 1 > v->words_cap) {
        size_t cap = v->words_cap ? v->words_cap : 1 << 16;
        while (v->words_len + wlen + 1 > cap) cap *= 2;
        char *w = realloc(v->words, cap);
        if (!w) return cz_error_set(err, CZ_ENOMEM, "%s: out of memory for the words", L->name);
        v->words = w;
        v->words_cap = cap;
    }
    memcpy(v->words + v->words_len, word, wlen);
    v->words[v->words_len + wlen] = '\0';
    memcpy(v->vec + n * d, L->row, d * sizeof *L->row);
    v->table[at] = (slot){h, (uint32_t)(n + 1), (uint32_t)v->words_len};
    v->words_len += wlen + 1;
    v->info.words = n + 1;
    return 0;
}

static int vocab_load(cz_vocab **out, cz_src *src, size_t skip_bad, cz_error *err)
{
    *out = NULL;
    const char *name = src->name;
    cz_vocab *v = calloc(1, sizeof *v);
    size_t cap = VOCAB_CHUNK, len = 0, pos = 0, lineno = 0;
    if (!src->g && src->mem_len < cap) cap = src->mem_len + 16; /* a small buffer: fuzzing */
    char *buf = malloc(cap + 1);
    loader L = {.v = v, .name = name, .skip_bad = skip_bad, .size_hint = src->size};
    int rc = 0, eof = 0;
    if (!v || !buf) rc = cz_error_set(err, CZ_ENOMEM, "%s: out of memory", name);
    while (!rc) {
        char *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl && !eof) {
            if (pos) { /* keep the partial line, read more behind it */
                memmove(buf, buf + pos, len - pos);
                len -= pos;
                pos = 0;
            }
            if (len == cap) {
                if (cap >= VOCAB_MAX_LINE) {
                    rc = cz_error_set(err, CZ_EINVAL, "%s:%zu: a line longer than %zu MiB", name,
                                      lineno + 1, VOCAB_MAX_LINE >> 20);
                    break;
                }
                char *nb = realloc(buf, 2 * cap + 1);
                if (!nb) {
                    rc = cz_error_set(err, CZ_ENOMEM, "%s: out of memory", name);
                    break;
                }
                buf = nb;
                cap *= 2;
            }
            long r = cz_src_read(src, buf + len, cap - len, err);
            if (r < 0) rc = (int)r;
            else if (r == 0) eof = 1;
            else len += (size_t)r;
            continue;
        }
        if (pos == len) break; /* eof, all consumed */
        char *line = buf + pos;
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        line[ll] = '\0'; /* buf has one spare byte for a last line without '\n' */
        pos += ll + (nl ? 1 : 0);
        lineno++;
        if (lineno == 1 && ll >= 3 && !memcmp(line, "\xEF\xBB\xBF", 3)) {
            line += 3;
            ll -= 3;
        }
        rc = load_line(&L, line, ll, lineno, err);
        if (rc > 0) rc = 0;
    }
    int zc = cz_src_close(src, rc ? NULL : err);
    if (!rc) rc = zc;
    if (!rc && v->info.words == 0)
        rc = cz_error_set(err, CZ_EINVAL, "%s: no word vectors (expected lines 'word v1 ... vD')%s",
                          name, v->info.bad_lines ? ": every line was bad" : "");
    free(buf);
    free(L.row);
    if (rc) {
        cz_vocab_free(v);
        return rc;
    }
    if (v->cap_rows > v->info.words) { /* give back the unused part of the last doubling */
        float *vec = realloc(v->vec, v->info.words * v->info.dim * sizeof *vec);
        if (vec) v->vec = vec;
    }
    *out = v;
    return 0;
}

int cz_vocab_load(cz_vocab **out, const char *path, size_t skip_bad, cz_error *err)
{
    cz_src src;
    *out = NULL;
    int rc = cz_src_open(&src, path, err);
    return rc ? rc : vocab_load(out, &src, skip_bad, err);
}

int cz_vocab_load_mem(cz_vocab **out, const char *name, const void *buf, size_t len,
                      size_t skip_bad, cz_error *err)
{
    cz_src src;
    cz_src_open_mem(&src, name, buf, len);
    return vocab_load(out, &src, skip_bad, err);
}
