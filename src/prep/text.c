/* Text -> features: the tokenizer, the signed hashing featurizer (unigrams + bigrams) and
 * mean-pooled word vectors. Exact definitions are in include/chainz/prep.h and
 * docs/PREP.md; tests/test_prep_text.c recomputes them by hand. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FNV_BASIS 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

enum { FEAT_HASH, FEAT_EMBED };

/* tokens looked up together: enough to overlap many cache misses, few enough that the
   prefetched vectors (EMBED_BATCH x dim floats) are still in cache when added */
#ifndef EMBED_BATCH
#define EMBED_BATCH 64
#endif

struct cz_featurizer {
    int kind, l2;
    size_t dim;
    cz_vocab *vocab;
    cz_text_counts counts;
    /* state of one apply */
    float *x;
    double *acc;     /* [dim] float64 sums, only when float32 sums overflowed */
    /* embeddings: tokens waiting for a batched lookup */
    const char *tok[EMBED_BATCH];
    size_t len[EMBED_BATCH], ntok;
    uint64_t scratch[EMBED_BATCH];
    const float *vec[EMBED_BATCH];
    uint64_t prev;   /* FNV state of "previous token + space" for the bigram */
    int have_prev;
    uint64_t feats, known;
};

static inline int is_token_byte(unsigned char b)
{
    return (unsigned)((b | 0x20) - 'a') < 26 || (unsigned)(b - '0') < 10 || b == '\'' || b >= 0x80;
}

size_t cz_text_tokenize(char *text, size_t len, cz_token_fn fn, void *ctx)
{
    size_t n = 0, i = 0;
    while (i < len) {
        while (i < len && !is_token_byte((unsigned char)text[i])) i++;
        size_t s = i;
        for (; i < len; i++) {
            unsigned char b = (unsigned char)text[i];
            if (!is_token_byte(b)) break;
            if ((unsigned)(b - 'A') < 26) text[i] = (char)(b | 0x20);
        }
        if (i > s) {
            fn(ctx, text + s, i - s);
            n++;
        }
    }
    return n;
}

static inline uint64_t fnv_bytes(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= FNV_PRIME;
    }
    return h;
}

static inline uint64_t mix64(uint64_t z)
{
    z ^= z >> 30;
    z *= 0xbf58476d1ce4e5b9ULL;
    z ^= z >> 27;
    z *= 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t cz_text_hash(const char *s, size_t len)
{
    return mix64(fnv_bytes(FNV_BASIS, s, len) ^ CZ_TEXT_HASH_SEED);
}

static inline void hash_add(cz_featurizer *f, uint64_t fnv)
{
    uint64_t h = mix64(fnv ^ CZ_TEXT_HASH_SEED);
    size_t j = (size_t)((h & 0xffffffffULL) % f->dim);
    f->x[j] += (h >> 63) ? -1.0f : 1.0f;
    f->feats++;
}

static void hash_token(void *ctx, const char *tok, size_t len)
{
    cz_featurizer *f = ctx;
    hash_add(f, fnv_bytes(FNV_BASIS, tok, len));
    if (f->have_prev) hash_add(f, fnv_bytes(f->prev, tok, len)); /* "prev tok" */
    f->prev = fnv_bytes(fnv_bytes(FNV_BASIS, tok, len), " ", 1);
    f->have_prev = 1;
}

static void embed_flush(cz_featurizer *f)
{
    cz_vocab_find_batch(f->vocab, f->tok, f->len, f->ntok, f->scratch, f->vec);
    float *x = f->x;
    size_t d = f->dim;
    for (size_t t = 0; t < f->ntok; t++) {
        const float *v = f->vec[t];
        if (!v) {
            f->counts.oov_tokens++;
            continue;
        }
        for (size_t j = 0; j < d; j++) x[j] += v[j];
        f->known++;
    }
    f->ntok = 0;
}

static void embed_token(void *ctx, const char *tok, size_t len)
{
    cz_featurizer *f = ctx;
    f->tok[f->ntok] = tok;
    f->len[f->ntok] = len;
    if (++f->ntok == EMBED_BATCH) embed_flush(f);
}

static void embed_token_f64(void *ctx, const char *tok, size_t len)
{
    cz_featurizer *f = ctx;
    const float *v = cz_vocab_find(f->vocab, tok, len);
    if (!v) return;
    for (size_t j = 0; j < f->dim; j++) f->acc[j] += v[j];
    f->known++;
}

/* The mean in float64 when the float32 sums overflowed (huge vectors): each value is at
 * most FLT_MAX, so their mean is a finite float32. */
static void embed_redo_f64(cz_featurizer *f, float *x, char *text, size_t len)
{
    memset(f->acc, 0, f->dim * sizeof *f->acc);
    f->known = 0;
    cz_text_tokenize(text, len, embed_token_f64, f);
    for (size_t j = 0; j < f->dim; j++) x[j] = (float)(f->acc[j] / (double)f->known);
}

static void l2_normalize(float *x, size_t d)
{
    double ss = 0;
    for (size_t j = 0; j < d; j++) ss += (double)x[j] * (double)x[j];
    if (ss <= 0) return;
    double inv = 1.0 / sqrt(ss);
    for (size_t j = 0; j < d; j++) x[j] = (float)((double)x[j] * inv);
}

void cz_featurizer_apply(cz_featurizer *f, float *x, char *text, size_t len)
{
    memset(x, 0, f->dim * sizeof *x);
    f->x = x;
    f->have_prev = 0;
    f->feats = f->known = 0;
    f->ntok = 0;
    size_t t = cz_text_tokenize(text, len, f->kind == FEAT_HASH ? hash_token : embed_token, f);
    if (f->kind == FEAT_EMBED) embed_flush(f);
    f->counts.rows++;
    f->counts.tokens += t;
    f->counts.features += f->feats;
    uint64_t n = f->kind == FEAT_HASH ? f->feats : f->known;
    if (n == 0) {
        f->counts.empty_rows++;
        return;
    }
    float dn = (float)n;
    for (size_t j = 0; j < f->dim; j++) x[j] /= dn;
    if (f->kind == FEAT_EMBED) {
        int finite = 1;
        for (size_t j = 0; j < f->dim; j++) finite &= isfinite(x[j]) != 0;
        if (!finite) embed_redo_f64(f, x, text, len);
    }
    if (f->l2) l2_normalize(x, f->dim); /* the direction of the mean is that of the sum */
}

int cz_featurizer_hash(cz_featurizer **out, size_t dim, int l2, cz_error *err)
{
    *out = NULL;
    if (dim < 1 || dim > CZ_TEXT_HASH_MAX_DIM)
        return cz_error_set(err, CZ_EINVAL, "hash dimension %zu: expected 1..%zu", dim,
                            CZ_TEXT_HASH_MAX_DIM);
    cz_featurizer *f = calloc(1, sizeof *f);
    if (!f) return cz_error_set(err, CZ_ENOMEM, "out of memory");
    f->kind = FEAT_HASH;
    f->dim = dim;
    f->l2 = l2;
    *out = f;
    return 0;
}

int cz_featurizer_embed(cz_featurizer **out, cz_vocab *vocab, int l2, cz_error *err)
{
    *out = NULL;
    cz_featurizer *f = calloc(1, sizeof *f);
    if (!f) {
        cz_vocab_free(vocab);
        return cz_error_set(err, CZ_ENOMEM, "out of memory");
    }
    f->kind = FEAT_EMBED;
    f->vocab = vocab;
    f->dim = cz_vocab_get_info(vocab)->dim;
    if (!(f->acc = malloc(f->dim * sizeof *f->acc))) {
        cz_featurizer_free(f);
        return cz_error_set(err, CZ_ENOMEM, "out of memory");
    }
    f->l2 = l2;
    *out = f;
    return 0;
}

void cz_featurizer_free(cz_featurizer *f)
{
    if (!f) return;
    cz_vocab_free(f->vocab);
    free(f->acc);
    free(f);
}

size_t cz_featurizer_dim(const cz_featurizer *f) { return f->dim; }
const cz_text_counts *cz_featurizer_counts(const cz_featurizer *f) { return &f->counts; }

void cz_featurizer_describe(const cz_featurizer *f, char *buf, size_t len)
{
    static const char tokenizer[] =
        "tokens: runs of ASCII letters (lower-cased), digits, apostrophes and bytes >= 0x80";
    if (f->kind == FEAT_HASH) {
        snprintf(buf, len,
                 "hash: signed hashing of unigrams and bigrams into %zu dims (FNV-1a 64 then the "
                 "splitmix64 finaliser, seed 0x%016llx; index = low 32 bits mod %zu, sign = bit 63); "
                 "%s; %s",
                 f->dim, (unsigned long long)CZ_TEXT_HASH_SEED, f->dim,
                 f->l2 ? "L2-normalized" : "divided by the number of features", tokenizer);
    } else {
        const cz_vocab_info *vi = cz_vocab_get_info(f->vocab);
        snprintf(buf, len,
                 "embeddings: mean of the %zu-d word vectors of the in-vocabulary tokens (%zu words"
                 "); out-of-vocabulary tokens skipped, zero vector without a known token%s; %s",
                 f->dim, vi->words, f->l2 ? ", then L2-normalized" : "", tokenizer);
    }
}
