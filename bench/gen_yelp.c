/* gen_yelp: a synthetic review corpus in the Yelp / Amazon CSV format, and optionally a
 * matching word-vector file in the GloVe text format, for tests and benchmarks of
 * `chainz prep csv`.
 *
 *   gen_yelp OUT.csv ROWS [--seed S] [--title] [--vectors OUT.vec --dim D --vocab V]
 *
 * Each row is "STARS","TEXT" (with --title "STARS","TITLE","TEXT", as Amazon's), every field
 * double-quoted, stars 1..5 uniform. The text is words drawn from a Zipf(1) law over a
 * made-up vocabulary (word i is a unique pronounceable string; frequent words are short),
 * about 130 words a review on average (Yelp's reviews average ~130 words, ~730 bytes), in
 * sentences with capitals, commas and full stops, paragraphs separated by a literal
 * backslash-n (the sets' escaped line break), sometimes a quoted phrase (""..."", a doubled
 * quote), an apostrophe word, a number, a UTF-8 word (caf\xc3\xa9). About 5% of the words
 * are sentiment words tied to the review's star, so features carry the label.
 * The vocabulary of the text is V * 21/20 words (V = 50000 without --vocab): the last 1/21
 * are not in the vector file, so a run sees out-of-vocabulary tokens.
 * The vector file: V lines `word v1 ... vD`, values with 5 decimals in (-1, 1), sentiment
 * words of star s shifted by +0.5 in dimension s - 1. Same seed, same bytes. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SENTI_PER_STAR 40

static uint64_t rng_state;

static uint64_t next_u64(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uniform(void) { return (double)(next_u64() >> 11) * 0x1.0p-53; }

/* word i: a bijective base-20 number written with consonant-vowel syllables */
static size_t make_word(char *buf, uint64_t i)
{
    static const char *const syl[20] = {"ka", "lo", "mi", "nu", "pe", "ra", "so", "ti", "vu", "we",
                                        "ba", "de", "fi", "go", "ha", "ju", "ke", "ly", "mo", "ny"};
    char tmp[64];
    size_t n = 0;
    uint64_t x = i + 1;
    while (x) {
        x--;
        const char *s = syl[x % 20];
        tmp[n++] = s[1];
        tmp[n++] = s[0];
        x /= 20;
    }
    for (size_t k = 0; k < n; k++) buf[k] = tmp[n - 1 - k];
    buf[n] = '\0';
    return n;
}

typedef struct {
    FILE *f;
    const char *path;
    int failed;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (!o->failed && fwrite(s, 1, n, o->f) != n) o->failed = errno ? errno : EIO;
}

static void puts_(out_t *o, const char *s) { put(o, s, strlen(s)); }

static int close_out(out_t *o)
{
    if (fclose(o->f) != 0 && !o->failed) o->failed = errno ? errno : EIO;
    if (o->failed) fprintf(stderr, "gen_yelp: writing %s failed: %s\n", o->path, strerror(o->failed));
    return o->failed ? 1 : 0;
}

static int open_out(out_t *o, const char *path)
{
    o->path = path;
    o->failed = 0;
    o->f = fopen(path, "wb");
    if (!o->f) {
        fprintf(stderr, "gen_yelp: cannot create %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (setvbuf(o->f, NULL, _IOFBF, 1 << 20) != 0) {
        fprintf(stderr, "gen_yelp: cannot buffer %s\n", path);
        fclose(o->f);
        return 1;
    }
    return 0;
}

/* Zipf(1) over n words: cdf[i] = H(i+1) / H(n) */
static double *zipf_cdf(size_t n)
{
    double *c = malloc(n * sizeof *c), h = 0;
    if (!c) return NULL;
    for (size_t i = 0; i < n; i++) c[i] = (h += 1.0 / (double)(i + 1));
    for (size_t i = 0; i < n; i++) c[i] /= h;
    return c;
}

static size_t zipf_draw(const double *cdf, size_t n)
{
    double u = uniform();
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cdf[mid] < u) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static const char *const extras[] = {"don't", "it's", "i'm", "wasn't", "they're", "café", "naïve",
                                     "$12", "10/10", "5", "2019", "o'clock"};

/* one review's text (or title) into buf; escapes '"' as "" */
static void gen_text(out_t *o, const double *cdf, size_t nwords, size_t vocab, int star,
                     size_t target)
{
    char w[64];
    int cap = 1, in_quote = 0;
    size_t sentence = 0;
    for (size_t i = 0; i < target; i++) {
        if (i) puts_(o, " ");
        double u = uniform();
        size_t len;
        if (u < 0.05) { /* a sentiment word of this star (or, rarely, a neighbour) */
            int s = star - 1;
            if (uniform() < 0.2) s = (int)(next_u64() % 5);
            len = make_word(w, (uint64_t)(s * SENTI_PER_STAR) + next_u64() % SENTI_PER_STAR);
        } else if (u < 0.065) {
            len = strlen(strcpy(w, extras[next_u64() % (sizeof extras / sizeof *extras)]));
        } else {
            size_t k = zipf_draw(cdf, nwords);
            /* the first 5 * SENTI_PER_STAR words are sentiment words: skip them here */
            k = 5 * SENTI_PER_STAR + k % (vocab + vocab / 20 - 5 * SENTI_PER_STAR);
            len = make_word(w, k);
        }
        if (cap && w[0] >= 'a' && w[0] <= 'z') w[0] = (char)(w[0] - 32);
        cap = 0;
        if (!in_quote && uniform() < 0.004) {
            puts_(o, "\"\"");
            in_quote = 1;
        }
        put(o, w, len);
        sentence++;
        double p = uniform();
        if (in_quote && p < 0.25) {
            puts_(o, "\"\"");
            in_quote = 0;
        }
        if (i + 1 == target) break;
        if (sentence > 6 && p < 0.12) {
            puts_(o, uniform() < 0.85 ? "." : "!");
            if (in_quote) {
                puts_(o, "\"\"");
                in_quote = 0;
            }
            if (uniform() < 0.15) puts_(o, "\\n\\n"); /* paragraph: escaped line breaks */
            cap = 1;
            sentence = 0;
        } else if (p > 0.94) {
            puts_(o, ",");
        }
    }
    if (in_quote) puts_(o, "\"\"");
    puts_(o, ".");
}

static int write_vectors(const char *path, size_t vocab, size_t dim)
{
    out_t o;
    if (open_out(&o, path)) return 1;
    char *line = malloc(64 + dim * 10);
    if (!line) {
        fprintf(stderr, "gen_yelp: out of memory\n");
        fclose(o.f);
        return 1;
    }
    for (size_t i = 0; i < vocab && !o.failed; i++) {
        size_t n = make_word(line, i);
        int star = i < 5 * SENTI_PER_STAR ? (int)(i / SENTI_PER_STAR) : -1;
        for (size_t j = 0; j < dim; j++) {
            long v = (long)(next_u64() % 199999) - 99999; /* 1e-5 units in (-1, 1) */
            if ((int)j == star) v += 50000;
            line[n++] = ' ';
            if (v < 0) {
                line[n++] = '-';
                v = -v;
            }
            line[n++] = (char)('0' + v / 100000);
            line[n++] = '.';
            long r = v % 100000;
            for (long div = 10000; div; div /= 10) line[n++] = (char)('0' + (r / div) % 10);
        }
        line[n++] = '\n';
        put(&o, line, n);
    }
    free(line);
    return close_out(&o);
}

static int usage(void)
{
    fprintf(stderr, "usage: gen_yelp OUT.csv ROWS [--seed S] [--title] [--vectors OUT.vec --dim D --vocab V]\n");
    return 1;
}

static int parse_size(const char *s, size_t *out)
{
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (!*s || *s == '-' || *e || errno) return -1;
    *out = (size_t)v;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) return usage();
    const char *csv = argv[1], *vec = NULL;
    size_t rows, seed = 1, dim = 300, vocab = 50000;
    int title = 0;
    if (parse_size(argv[2], &rows)) return usage();
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--title")) title = 1;
        else if (i + 1 < argc && !strcmp(argv[i], "--seed")) {
            if (parse_size(argv[++i], &seed)) return usage();
        } else if (i + 1 < argc && !strcmp(argv[i], "--vectors")) vec = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--dim")) {
            if (parse_size(argv[++i], &dim) || dim < 5 || dim > 10000) return usage();
        } else if (i + 1 < argc && !strcmp(argv[i], "--vocab")) {
            if (parse_size(argv[++i], &vocab) || vocab < 1000) return usage();
        } else return usage();
    }
    rng_state = seed * 0x2545f4914f6cdd1dULL + 1;
    size_t nwords = vocab + vocab / 20;
    double *cdf = zipf_cdf(nwords);
    if (!cdf) {
        fprintf(stderr, "gen_yelp: out of memory\n");
        return 1;
    }
    out_t o;
    if (open_out(&o, csv)) {
        free(cdf);
        return 1;
    }
    for (size_t r = 0; r < rows && !o.failed; r++) {
        int star = 1 + (int)(next_u64() % 5);
        char lab[16];
        snprintf(lab, sizeof lab, "\"%d\",\"", star);
        puts_(&o, lab);
        if (title) {
            gen_text(&o, cdf, nwords, vocab, star, 2 + next_u64() % 6);
            puts_(&o, "\",\"");
        }
        /* length: 10 + an exponential of mean 120 words, capped at 1000 */
        size_t target = 10 + (size_t)fmin(990.0, -120.0 * log(1.0 - uniform()));
        gen_text(&o, cdf, nwords, vocab, star, target);
        puts_(&o, "\"\n");
    }
    free(cdf);
    int rc = close_out(&o);
    rng_state = seed * 0x2545f4914f6cdd1dULL + 2; /* the vectors do not depend on ROWS */
    if (!rc && vec) rc = write_vectors(vec, vocab, dim);
    return rc;
}
