/* chainz prep, streamed formats: the CSV record reader (quoting, escapes, CRLF, BOM, line
 * numbers, recovery after errors), the tokenizer, the hashing featurizer against an
 * independent implementation of its documented definition, GloVe loading and mean pooling
 * against hand computations, OOV counts, and cz_prep_stream end to end (text and numeric
 * CSV, value round trip, bad-row messages with line numbers, --skip-bad, the stratified
 * split and fraction, /stats, atomic outputs). Files live in one mkdtemp folder. */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "chainz/data.h"
#include "chainz/prep.h"

static char tmpdir[256];

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "%s/cz-prept-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    DIR *dir = opendir(tmpdir);
    if (!dir) return -1;
    struct dirent *e;
    char path[512];
    while ((e = readdir(dir))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
        unlink(path);
    }
    closedir(dir);
    return rmdir(tmpdir);
}

static const char *tpath(const char *name)
{
    static char buf[32][512]; /* a ring: a path stays valid for the next 31 calls */
    static int next;
    char *p = buf[next++ % 32];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static const char *write_file(const char *name, const void *data, size_t len)
{
    const char *p = tpath(name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return p;
}

static const char *write_str(const char *name, const char *s) { return write_file(name, s, strlen(s)); }

static void expect_msg(const cz_error *err, const char *want)
{
    if (!strstr(err->msg, want)) fail_msg("message \"%s\" does not contain \"%s\"", err->msg, want);
}

/* files in tmpdir whose name contains "tmp" (left-over temporaries) */
static int count_tmp_files(void)
{
    DIR *dir = opendir(tmpdir);
    assert_non_null(dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(dir)))
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(dir);
    return n;
}

/* ---- CSV records ---- */

typedef struct {
    size_t n;
    char f[8][64];
    size_t len[8];
    int quoted[8];
    size_t line;
} rec;

/* reads the next record of c into r; returns cz_csv_next's code */
static int next_rec(cz_csv *c, rec *r, cz_error *err)
{
    int rc = cz_csv_next(c, err);
    if (rc != 1) return rc;
    size_t n;
    const cz_csv_field *f = cz_csv_fields(c, &n);
    assert_true(n <= 8);
    r->n = n;
    r->line = cz_csv_line(c);
    for (size_t i = 0; i < n; i++) {
        assert_true(f[i].len < 64);
        memcpy(r->f[i], f[i].s, f[i].len + 1); /* with its NUL */
        assert_int_equal(r->f[i][f[i].len], '\0');
        r->len[i] = f[i].len;
        r->quoted[i] = f[i].quoted;
    }
    return 1;
}

static void test_prep_text_csv_records(void **state)
{
    (void)state;
    static const char text[] =
        "\xEF\xBB\xBF\"1\",\"plain\"\r\n"          /* line 1: BOM, CRLF */
        "\"2\",\"a \"\"quoted\"\" word, and a comma\"\n" /* line 2 */
        "\n"                                        /* line 3: empty, skipped */
        "3,unquoted,\"\"\n"                         /* line 4: unquoted and empty quoted */
        "\"4\",\"spans\nthree\r\nlines\"\n"         /* lines 5-7: quoted line breaks */
        "5,,\n"                                     /* line 8: empty fields, trailing comma */
        "6,a\rb\n"                                  /* line 9: a lone CR is data */
        "\"7\",\"back\\nslash\"";                   /* line 10: no final line break */
    cz_csv *c;
    cz_error err = {0};
    assert_int_equal(cz_csv_open_mem(&c, "mem.csv", text, sizeof text - 1, &err), 0);
    rec r;
    assert_int_equal(next_rec(c, &r, &err), 1);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.f[0], "1");
    assert_string_equal(r.f[1], "plain");
    assert_int_equal(r.line, 1);
    assert_true(r.quoted[0] && r.quoted[1]);
    assert_int_equal(next_rec(c, &r, &err), 1);
    assert_string_equal(r.f[1], "a \"quoted\" word, and a comma");
    assert_int_equal(r.line, 2);
    assert_int_equal(next_rec(c, &r, &err), 1);
    assert_int_equal(r.line, 4);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.f[1], "unquoted");
    assert_false(r.quoted[1]);
    assert_string_equal(r.f[2], "");
    assert_true(r.quoted[2]);
    assert_int_equal(next_rec(c, &r, &err), 1);
    assert_int_equal(r.line, 5);
    assert_string_equal(r.f[1], "spans\nthree\r\nlines");
    assert_int_equal(next_rec(c, &r, &err), 1);
    assert_int_equal(r.line, 8);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.len[1] + r.len[2], 0);
    assert_int_equal(next_rec(c, &r, &err), 1);
    assert_int_equal(r.line, 9);
    assert_string_equal(r.f[1], "a\rb");
    assert_int_equal(next_rec(c, &r, &err), 1);
    assert_int_equal(r.line, 10);
    assert_string_equal(r.f[1], "back\\nslash"); /* the reader keeps backslashes */
    assert_int_equal(next_rec(c, &r, &err), 0);
    assert_int_equal(next_rec(c, &r, &err), 0);
    cz_csv_close(c);

    /* empty input and a lone BOM: no records */
    assert_int_equal(cz_csv_open_mem(&c, "e.csv", "", 0, &err), 0);
    assert_int_equal(next_rec(c, &r, &err), 0);
    cz_csv_close(c);
    assert_int_equal(cz_csv_open_mem(&c, "e.csv", "\xEF\xBB\xBF\r\n\n", 5, &err), 0);
    assert_int_equal(next_rec(c, &r, &err), 0);
    cz_csv_close(c);

    /* the same through a gzip file, across the reader's 1 MiB chunks */
    const char *gz = tpath("big.csv.gz");
    gzFile g = gzopen(gz, "wb");
    assert_non_null(g);
    char row[128];
    for (int i = 0; i < 40000; i++) {
        int n = snprintf(row, sizeof row, "\"%d\",\"row %d has \"\"quotes\"\"\nand a line break\"\n", i % 5 + 1, i);
        assert_int_equal(gzwrite(g, row, (unsigned)n), n);
    }
    assert_int_equal(gzclose(g), Z_OK);
    assert_int_equal(cz_csv_open(&c, gz, &err), 0);
    for (int i = 0; i < 40000; i++) {
        assert_int_equal(next_rec(c, &r, &err), 1);
        assert_int_equal(r.line, (size_t)(2 * i + 1));
        snprintf(row, sizeof row, "row %d has \"quotes\"\nand a line break", i);
        assert_string_equal(r.f[1], row);
    }
    assert_int_equal(next_rec(c, &r, &err), 0);
    cz_csv_close(c);

    /* a gzip stream cut short is an error, not a shorter file */
    FILE *f = fopen(gz, "rb");
    assert_non_null(f);
    static unsigned char part[4096];
    assert_int_equal(fread(part, 1, sizeof part, f), sizeof part);
    assert_int_equal(fclose(f), 0);
    const char *cut = write_file("cut.csv.gz", part, sizeof part);
    assert_int_equal(cz_csv_open(&c, cut, &err), 0);
    int rc;
    while ((rc = next_rec(c, &r, &err)) == 1)
        ;
    assert_int_equal(rc, CZ_EIO);
    expect_msg(&err, "cut.csv.gz: the gzip stream is truncated");
    cz_csv_close(c);
}

static void test_prep_text_csv_errors_and_recovery(void **state)
{
    (void)state;
    static const char text[] =
        "\"1\",\"fine\"\n"
        "\"2\",\"he said \"hi\" there\"\n" /* line 2: a bare quote inside a quoted field */
        "\"3\",\"fine again\"\n"
        "4,ab\"c\n"                         /* line 4: a quote inside an unquoted field */
        "\"5\",\"ok\"\n"
        "\"6\",\"never closed\n"            /* line 6: runs to the end */
        "7,x\n";
    cz_csv *c;
    cz_error err = {0};
    rec r;
    assert_int_equal(cz_csv_open_mem(&c, "bad.csv", text, sizeof text - 1, &err), 0);
    assert_int_equal(next_rec(c, &r, &err), 1);
    assert_int_equal(next_rec(c, &r, &err), CZ_EINVAL);
    expect_msg(&err, "bad.csv:2:");
    expect_msg(&err, "field 2");
    expect_msg(&err, "'h' after the closing quote");
    assert_false(cz_csv_broken(c));
    assert_int_equal(next_rec(c, &r, &err), 1); /* resumes on the next line */
    assert_string_equal(r.f[1], "fine again");
    assert_int_equal(r.line, 3);
    assert_int_equal(next_rec(c, &r, &err), CZ_EINVAL);
    expect_msg(&err, "bad.csv:4:");
    expect_msg(&err, "inside an unquoted field");
    assert_int_equal(next_rec(c, &r, &err), 1);
    assert_string_equal(r.f[0], "5");
    assert_int_equal(next_rec(c, &r, &err), CZ_EINVAL);
    expect_msg(&err, "bad.csv:6:");
    expect_msg(&err, "never closed");
    assert_int_equal(next_rec(c, &r, &err), 0);
    cz_csv_close(c);

    /* a quoted field that swallows a line break, then stops on the next line: both lines named */
    static const char t2[] = "\"1\",\"open\n\"2\",\"x\"\n";
    assert_int_equal(cz_csv_open_mem(&c, "b2.csv", t2, sizeof t2 - 1, &err), 0);
    assert_int_equal(next_rec(c, &r, &err), CZ_EINVAL);
    expect_msg(&err, "b2.csv:2:");
    expect_msg(&err, "record from line 1");
    cz_csv_close(c);

    assert_int_equal(cz_csv_open(&c, tpath("missing.csv"), &err), CZ_EIO);
    expect_msg(&err, "missing.csv");
}

/* ---- tokenizer and the hashing featurizer ---- */

typedef struct {
    char tok[16][32];
    size_t n;
} toks;

static void collect(void *ctx, const char *t, size_t len)
{
    toks *T = ctx;
    assert_true(T->n < 16 && len < 32);
    memcpy(T->tok[T->n], t, len);
    T->tok[T->n][len] = '\0';
    T->n++;
}

static void test_prep_text_tokenizer(void **state)
{
    (void)state;
    char s[] = "Don't STOP-me now,\ncaf\xc3\xa9 42x!! A_b \"Q\"";
    toks T = {.n = 0};
    assert_int_equal(cz_text_tokenize(s, strlen(s), collect, &T), 9);
    const char *want[] = {"don't", "stop", "me", "now", "caf\xc3\xa9", "42x", "a", "b", "q"};
    for (int i = 0; i < 9; i++) assert_string_equal(T.tok[i], want[i]);
    char e[] = " ,.;\t-- ";
    T.n = 0;
    assert_int_equal(cz_text_tokenize(e, strlen(e), collect, &T), 0);
}

/* the documented definition, written again independently */
static uint64_t ref_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) h = (h ^ *p) * 0x100000001b3ULL;
    uint64_t z = h ^ 0x636861696e7a3031ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void ref_add(double *x, size_t D, const char *feature)
{
    uint64_t h = ref_hash(feature);
    x[(h & 0xffffffffULL) % D] += (h >> 63) ? -1.0 : 1.0;
}

static void test_prep_text_hash_featurizer(void **state)
{
    (void)state;
    assert_true(cz_text_hash("good", 4) == ref_hash("good"));
    assert_true(cz_text_hash("", 0) == ref_hash(""));
    /* both signs occur, and the index is the low 32 bits mod D */
    int pos = 0, neg = 0;
    char w[16];
    for (int i = 0; i < 64; i++) {
        snprintf(w, sizeof w, "w%d", i);
        uint64_t h = cz_text_hash(w, strlen(w));
        if (h >> 63) neg++;
        else pos++;
    }
    assert_true(pos > 10 && neg > 10);

    const size_t D = 16;
    cz_featurizer *f;
    cz_error err = {0};
    assert_int_equal(cz_featurizer_hash(&f, D, 0, &err), 0);
    assert_int_equal(cz_featurizer_dim(f), D);
    char text[] = "The food, the FOOD! great";
    float x[16];
    cz_featurizer_apply(f, x, text, strlen(text));
    const char *feats[] = {"the", "food", "the food", "the", "food the", "food", "the food",
                           "great", "food great"};
    double ref[16] = {0};
    for (int i = 0; i < 9; i++) ref_add(ref, D, feats[i]);
    for (size_t j = 0; j < D; j++) assert_float_equal(x[j], ref[j] / 9.0, 1e-7);
    /* deterministic: the same text again gives the same bits */
    float y[16];
    char again[] = "The food, the FOOD! great";
    cz_featurizer_apply(f, y, again, strlen(again));
    assert_memory_equal(x, y, sizeof x);
    /* no token: the zero vector, counted */
    char none[] = " -- ";
    cz_featurizer_apply(f, y, none, strlen(none));
    for (size_t j = 0; j < D; j++) assert_true(y[j] == 0.0f);
    const cz_text_counts *tc = cz_featurizer_counts(f);
    assert_int_equal(tc->rows, 3);
    assert_int_equal(tc->tokens, 10);
    assert_int_equal(tc->features, 18);
    assert_int_equal(tc->empty_rows, 1);
    char desc[512];
    cz_featurizer_describe(f, desc, sizeof desc);
    assert_non_null(strstr(desc, "0x636861696e7a3031"));
    cz_featurizer_free(f);

    /* L2 */
    assert_int_equal(cz_featurizer_hash(&f, D, 1, &err), 0);
    char t2[] = "The food, the FOOD! great";
    cz_featurizer_apply(f, x, t2, strlen(t2));
    double n2 = 0;
    for (size_t j = 0; j < D; j++) n2 += ref[j] * ref[j];
    for (size_t j = 0; j < D; j++) assert_float_equal(x[j], ref[j] / sqrt(n2), 1e-6);
    cz_featurizer_free(f);
    assert_int_equal(cz_featurizer_hash(&f, 0, 0, &err), CZ_EINVAL);
    assert_null(f);
}

/* ---- word vectors ---- */

static const char glove[] =
    "the 1 2 3\n"
    "food 0.5 -1 4e-1\r\n"
    "great -2 0 1\n"
    "\n"
    "caf\xc3\xa9 9 9 9\n"
    "the 7 7 7\n"; /* repeated: the first vector stays */

static void test_prep_text_vocab(void **state)
{
    (void)state;
    cz_vocab *v;
    cz_error err = {0};
    assert_int_equal(cz_vocab_load_mem(&v, "g.txt", glove, sizeof glove - 1, 0, &err), 0);
    const cz_vocab_info *vi = cz_vocab_get_info(v);
    assert_int_equal(vi->words, 4);
    assert_int_equal(vi->dim, 3);
    assert_int_equal(vi->duplicates, 1);
    const float *p = cz_vocab_find(v, "food", 4);
    assert_non_null(p);
    assert_true(p[0] == 0.5f && p[1] == -1.0f && p[2] == 0.4f);
    p = cz_vocab_find(v, "the", 3);
    assert_true(p[0] == 1.0f && p[2] == 3.0f);
    assert_non_null(cz_vocab_find(v, "caf\xc3\xa9", 5));
    assert_null(cz_vocab_find(v, "foo", 3));
    assert_null(cz_vocab_find(v, "Food", 4));
    cz_vocab_free(v);

    /* many words: the table grows; a word2vec header line is skipped */
    char *big = malloc(30000 * 32);
    assert_non_null(big);
    size_t len = (size_t)sprintf(big, "20000 2\n");
    for (int i = 0; i < 20000; i++) len += (size_t)sprintf(big + len, "w%d %d -%d.5\n", i, i, i);
    assert_int_equal(cz_vocab_load_mem(&v, "big.txt", big, len, 0, &err), 0);
    assert_int_equal(cz_vocab_get_info(v)->words, 20000);
    assert_int_equal(cz_vocab_get_info(v)->dim, 2);
    for (int i = 0; i < 20000; i += 777) {
        char w[16];
        snprintf(w, sizeof w, "w%d", i);
        p = cz_vocab_find(v, w, strlen(w));
        assert_non_null(p);
        assert_true(p[0] == (float)i && p[1] == -(float)i - 0.5f);
    }
    cz_vocab_free(v);
    free(big);

    /* wrong dimension, not a number, not finite, empty: errors naming the line */
    static const char bad1[] = "a 1 2 3\nb 1 2\nc 1 2 3\n";
    assert_int_equal(cz_vocab_load_mem(&v, "b1.txt", bad1, sizeof bad1 - 1, 0, &err), CZ_EINVAL);
    expect_msg(&err, "b1.txt:2:");
    expect_msg(&err, "2 values after the word 'b', expected 3 (the dimension of line 1)");
    assert_null(v);
    static const char bad2[] = "a 1 2 3\nb 1 x 3\n";
    assert_int_equal(cz_vocab_load_mem(&v, "b2.txt", bad2, sizeof bad2 - 1, 0, &err), CZ_EINVAL);
    expect_msg(&err, "b2.txt:2: value 2 of the word 'b' is 'x', expected a number");
    static const char bad3[] = "a 1 2 3\nb 1 2 3 4 5\n";
    assert_int_equal(cz_vocab_load_mem(&v, "b3.txt", bad3, sizeof bad3 - 1, 0, &err), CZ_EINVAL);
    expect_msg(&err, "b3.txt:2: 5 values");
    static const char bad4[] = "a 1 2 3\nb 1 1e60 3\n";
    assert_int_equal(cz_vocab_load_mem(&v, "b4.txt", bad4, sizeof bad4 - 1, 0, &err), CZ_EINVAL);
    expect_msg(&err, "not a finite float32");
    assert_int_equal(cz_vocab_load_mem(&v, "b5.txt", "\n\n", 2, 0, &err), CZ_EINVAL);
    expect_msg(&err, "b5.txt: no word vectors");
    assert_int_equal(cz_vocab_load_mem(&v, "b6.txt", "lonely\n", 7, 0, &err), CZ_EINVAL);
    expect_msg(&err, "b6.txt:1: no values");
    /* skip_bad: skipped and counted up to the limit, then the error */
    assert_int_equal(cz_vocab_load_mem(&v, "b1.txt", bad1, sizeof bad1 - 1, 1, &err), 0);
    assert_int_equal(cz_vocab_get_info(v)->words, 2);
    assert_int_equal(cz_vocab_get_info(v)->bad_lines, 1);
    assert_non_null(strstr(cz_vocab_get_info(v)->first_bad, "b1.txt:2:"));
    cz_vocab_free(v);
    static const char bad7[] = "a 1 2\nb 1\nc 2\nd 3 4\n";
    assert_int_equal(cz_vocab_load_mem(&v, "b7.txt", bad7, sizeof bad7 - 1, 1, &err), CZ_EINVAL);
    expect_msg(&err, "b7.txt:3:");
}

static void test_prep_text_embedding_pooling(void **state)
{
    (void)state;
    cz_vocab *v;
    cz_featurizer *f;
    cz_error err = {0};
    assert_int_equal(cz_vocab_load_mem(&v, "g.txt", glove, sizeof glove - 1, 0, &err), 0);
    assert_int_equal(cz_featurizer_embed(&f, v, 0, &err), 0);
    assert_int_equal(cz_featurizer_dim(f), 3);
    /* the, food, unknown, great, the, xyz: known {the, food, great, the} */
    char t[] = "The food unknown GREAT; the xyz";
    float x[3];
    cz_featurizer_apply(f, x, t, strlen(t));
    const float want[3] = {(1 + 0.5f - 2 + 1) / 4, (2 - 1 + 0 + 2) / 4.0f, (3 + 0.4f + 1 + 3) / 4};
    for (int j = 0; j < 3; j++) assert_float_equal(x[j], want[j], 1e-6);
    char none[] = "nothing known here";
    cz_featurizer_apply(f, x, none, strlen(none));
    assert_true(x[0] == 0 && x[1] == 0 && x[2] == 0);
    char empty[] = "";
    cz_featurizer_apply(f, x, empty, 0);
    const cz_text_counts *tc = cz_featurizer_counts(f);
    assert_int_equal(tc->rows, 3);
    assert_int_equal(tc->tokens, 9);
    assert_int_equal(tc->oov_tokens, 5);
    assert_int_equal(tc->empty_rows, 2);
    cz_featurizer_free(f);

    assert_int_equal(cz_vocab_load_mem(&v, "g.txt", glove, sizeof glove - 1, 0, &err), 0);
    assert_int_equal(cz_featurizer_embed(&f, v, 1, &err), 0);
    char t2[] = "food great";
    cz_featurizer_apply(f, x, t2, strlen(t2));
    double m[3] = {(0.5 - 2) / 2, (-1 + 0) / 2.0, (0.4 + 1) / 2}, n = sqrt(m[0] * m[0] + m[1] * m[1] + m[2] * m[2]);
    for (int j = 0; j < 3; j++) assert_float_equal(x[j], m[j] / n, 1e-6);
    cz_featurizer_free(f);
}

/* more tokens than one lookup batch, known and unknown, against single lookups; and
   vectors whose float32 sums overflow still give their (finite) mean */
static void test_prep_text_embedding_batches_and_overflow(void **state)
{
    (void)state;
    char *vec = malloc(3000 * 40);
    assert_non_null(vec);
    size_t len = 0;
    for (int i = 0; i < 3000; i++) len += (size_t)sprintf(vec + len, "w%d %d %d\n", i, i % 17, -(i % 5));
    cz_vocab *v;
    cz_error err = {0};
    assert_int_equal(cz_vocab_load_mem(&v, "v.txt", vec, len, 0, &err), 0);
    char *text = malloc(700 * 8);
    assert_non_null(text);
    size_t tl = 0;
    double sum[2] = {0, 0};
    size_t known = 0;
    for (int t = 0; t < 700; t++) {
        int id = (t * 7919) % 4000; /* w3000..w3999 are unknown */
        tl += (size_t)sprintf(text + tl, "W%d ", id);
        if (id < 3000) {
            char w[16];
            snprintf(w, sizeof w, "w%d", id);
            const float *p = cz_vocab_find(v, w, strlen(w));
            assert_non_null(p);
            sum[0] += p[0];
            sum[1] += p[1];
            known++;
        }
    }
    cz_featurizer *f;
    assert_int_equal(cz_featurizer_embed(&f, v, 0, &err), 0);
    float x[2];
    cz_featurizer_apply(f, x, text, tl);
    assert_float_equal(x[0], sum[0] / (double)known, 1e-4);
    assert_float_equal(x[1], sum[1] / (double)known, 1e-4);
    assert_int_equal(cz_featurizer_counts(f)->oov_tokens, 700 - known);
    cz_featurizer_free(f);
    free(text);
    free(vec);

    static const char huge[] = "a 3e38 -3e38\nb 3e38 1\n";
    assert_int_equal(cz_vocab_load_mem(&v, "h.txt", huge, sizeof huge - 1, 0, &err), 0);
    assert_int_equal(cz_featurizer_embed(&f, v, 0, &err), 0);
    char t2[] = "a b a";
    cz_featurizer_apply(f, x, t2, strlen(t2));
    assert_float_equal(x[0], 3e38, 1e32);
    assert_float_equal(x[1], (-6e38 + 1) / 3, 1e32);
    cz_featurizer_free(f);
}

/* ---- cz_prep_stream ---- */

typedef struct {
    size_t n, d;
    float *x;
    int32_t *y;
    float *yv;
    cz_data_info info;
} loaded;

static void load(loaded *L, const char *path)
{
    cz_data *ds;
    cz_error err = {0};
    if (cz_data_open(&ds, path, &err)) fail_msg("%s", err.msg);
    L->info = *cz_data_get_info(ds);
    L->n = L->info.n;
    L->d = L->info.d;
    assert_int_equal(cz_data_is_mapped(ds), 1); /* contiguous: the trainer maps it */
    L->x = malloc(L->n * L->d * sizeof *L->x);
    uint64_t *idx = malloc(L->n * sizeof *idx);
    assert_non_null(L->x);
    assert_non_null(idx);
    for (size_t i = 0; i < L->n; i++) idx[i] = i;
    if (cz_data_read_rows(ds, idx, L->n, L->x, &err)) fail_msg("%s", err.msg);
    free(idx);
    L->y = NULL;
    L->yv = NULL;
    if (L->info.task == CZ_HEAD_REGRESS) {
        L->yv = malloc(L->n * sizeof *L->yv);
        memcpy(L->yv, cz_data_labels_value(ds), L->n * sizeof *L->yv);
    } else {
        L->y = malloc(L->n * sizeof *L->y);
        memcpy(L->y, cz_data_labels_class(ds), L->n * sizeof *L->y);
    }
    cz_data_close(ds);
}

static void unload(loaded *L)
{
    free(L->x);
    free(L->y);
    free(L->yv);
}

static void test_prep_text_stream_text_round_trip(void **state)
{
    (void)state;
    /* Amazon-like: label, title, body; BOM, CRLF, escaped and quoted line breaks, doubled
       quotes, an empty text, unquoted fields */
    static const char csv[] =
        "\xEF\xBB\xBF\"2\",\"Great\",\"Loved it.\\nWould \"\"buy\"\" again\"\r\n"
        "\"1\",\"Bad\",\"broke\nafter a day, sadly\"\r\n"
        "3,\"\",\"\"\n"
        "\"1\",\"meh\",\"the\\\\nbackslash\"\n";
    const char *in = write_str("amazon.csv", csv);
    cz_prep_stream_opts o;
    cz_prep_stream_opts_default(&o, CZ_PREP_CSV_TEXT);
    o.hash_dim = 32;
    o.paths[CZ_SPLIT_TRAIN] = tpath("amazon.h5");
    cz_prep_report rep;
    cz_error err = {0};
    if (cz_prep_stream(in, &o, &rep, &err)) fail_msg("%s", err.msg);
    assert_int_equal(rep.rows, 4);
    assert_int_equal(rep.classes, 3);
    assert_int_equal(rep.d, 32);
    assert_true(rep.class_rows[0] == 2 && rep.class_rows[1] == 1 && rep.class_rows[2] == 1);
    assert_int_equal(rep.text.empty_rows, 1);
    assert_int_equal(rep.split_rows[CZ_SPLIT_TRAIN], 4);
    cz_prep_report_free(&rep);
    loaded L;
    load(&L, tpath("amazon.h5"));
    assert_int_equal(L.n, 4);
    assert_int_equal(L.info.classes, 3);
    assert_int_equal(L.info.task, CZ_HEAD_CLASSIFY);
    const int32_t want_y[4] = {1, 0, 2, 0};
    /* what each row's text is, after joining and unescaping */
    const char *texts[4] = {"Great Loved it.\nWould \"buy\" again", "Bad broke\nafter a day, sadly", " ",
                            "meh the\\\nbackslash"};
    cz_featurizer *f;
    assert_int_equal(cz_featurizer_hash(&f, 32, 0, &err), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(L.y[i], want_y[i]);
        char buf[128];
        snprintf(buf, sizeof buf, "%s", texts[i]);
        float x[32];
        cz_featurizer_apply(f, x, buf, strlen(buf));
        assert_memory_equal(x, L.x + i * 32, sizeof x);
    }
    cz_featurizer_free(f);
    unload(&L);
    /* the training file has /stats of its rows */
    float mean[32], sd[32];
    assert_int_equal(cz_prep_stats_read(tpath("amazon.h5"), mean, sd, 32, &err), 0);
    assert_int_equal(count_tmp_files(), 0);

    /* ordinal, with --classes larger than the labels seen, and base 0 */
    static const char c2[] = "0,a\n1,b\n0,c\n";
    in = write_str("ord.csv", c2);
    cz_prep_stream_opts_default(&o, CZ_PREP_CSV_TEXT);
    o.hash_dim = 4;
    o.task = CZ_HEAD_ORDINAL;
    o.label_base = 0;
    o.classes = 5;
    o.paths[CZ_SPLIT_TRAIN] = tpath("ord.h5");
    if (cz_prep_stream(in, &o, &rep, &err)) fail_msg("%s", err.msg);
    cz_prep_report_free(&rep);
    load(&L, tpath("ord.h5"));
    assert_int_equal(L.info.task, CZ_HEAD_ORDINAL);
    assert_int_equal(L.info.classes, 5);
    unload(&L);

    /* label in the second field */
    static const char c3[] = "\"text one\",\"2\"\n\"text two\",\"1\"\n";
    in = write_str("lc.csv", c3);
    cz_prep_stream_opts_default(&o, CZ_PREP_CSV_TEXT);
    o.hash_dim = 4;
    o.label_col = 2;
    o.paths[CZ_SPLIT_TRAIN] = tpath("lc.h5");
    if (cz_prep_stream(in, &o, &rep, &err)) fail_msg("%s", err.msg);
    cz_prep_report_free(&rep);
    load(&L, tpath("lc.h5"));
    assert_true(L.y[0] == 1 && L.y[1] == 0);
    unload(&L);
}

static void test_prep_text_stream_embeddings(void **state)
{
    (void)state;
    const char *vec = write_file("g.txt", glove, sizeof glove - 1);
    static const char csv[] = "\"1\",\"The food\"\n\"2\",\"great great xyz\"\n\"1\",\"nothing\"\n";
    const char *in = write_str("e.csv", csv);
    cz_prep_stream_opts o;
    cz_prep_stream_opts_default(&o, CZ_PREP_CSV_TEXT);
    o.embeddings = vec;
    o.paths[CZ_SPLIT_TRAIN] = tpath("e.h5");
    cz_prep_report rep;
    cz_error err = {0};
    if (cz_prep_stream(in, &o, &rep, &err)) fail_msg("%s", err.msg);
    assert_int_equal(rep.text.tokens, 6);
    assert_int_equal(rep.text.oov_tokens, 2);
    assert_int_equal(rep.text.empty_rows, 1);
    assert_int_equal(rep.vocab.words, 4);
    assert_non_null(strstr(rep.featurizer, "2 out of vocabulary"));
    cz_prep_report_free(&rep);
    loaded L;
    load(&L, tpath("e.h5"));
    assert_int_equal(L.d, 3);
    const float want[3][3] = {{0.75f, 0.5f, 1.7f}, {-2, 0, 1}, {0, 0, 0}};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) assert_float_equal(L.x[i * 3 + j], want[i][j], 1e-6);
    float mean[3], sd[3];
    assert_int_equal(cz_prep_stats_read(tpath("e.h5"), mean, sd, 3, &err), 0);
    for (int j = 0; j < 3; j++) {
        double m = (want[0][j] + want[1][j] + want[2][j]) / 3.0, v = 0;
        for (int i = 0; i < 3; i++) v += (want[i][j] - m) * (want[i][j] - m);
        assert_float_equal(mean[j], m, 1e-6);
        assert_float_equal(sd[j], sqrt(v / 3), 1e-6);
    }
    assert_int_equal(cz_prep_stats_read(tpath("e.h5"), mean, sd, 4, &err), CZ_EINVAL);
    unload(&L);
    /* a bad vector file fails before anything is written */
    const char *badvec = write_str("bad.txt", "a 1 2\nb 3\n");
    o.embeddings = badvec;
    o.paths[CZ_SPLIT_TRAIN] = tpath("never.h5");
    assert_int_equal(cz_prep_stream(in, &o, &rep, &err), CZ_EINVAL);
    expect_msg(&err, "bad.txt:2:");
    cz_prep_report_free(&rep);
    assert_int_equal(access(tpath("never.h5"), F_OK), -1);
}

/* runs cz_prep_stream on text, expecting failure with the message parts */
static void stream_fails(cz_prep_csv_kind kind, const char *csv, size_t skip_bad, int classes,
                         const char *a, const char *b)
{
    const char *in = write_str(kind == CZ_PREP_CSV_TEXT ? "bad.csv" : "badn.csv", csv);
    cz_prep_stream_opts o;
    cz_prep_stream_opts_default(&o, kind);
    if (kind == CZ_PREP_CSV_TEXT) o.hash_dim = 8;
    o.classes = classes;
    o.skip_bad = skip_bad;
    o.paths[CZ_SPLIT_TRAIN] = tpath("bad.h5");
    cz_prep_report rep;
    cz_error err = {0};
    assert_int_equal(cz_prep_stream(in, &o, &rep, &err), CZ_EINVAL);
    cz_prep_report_free(&rep);
    expect_msg(&err, kind == CZ_PREP_CSV_TEXT ? "bad.csv" : "badn.csv");
    if (a) expect_msg(&err, a);
    if (b) expect_msg(&err, b);
    assert_int_equal(access(tpath("bad.h5"), F_OK), -1);
    assert_int_equal(count_tmp_files(), 0);
}

static void test_prep_text_stream_bad_input(void **state)
{
    (void)state;
    const cz_prep_csv_kind T = CZ_PREP_CSV_TEXT, N = CZ_PREP_CSV_NUMERIC;
    stream_fails(T, "", 0, 0, "empty file", NULL);
    stream_fails(T, "\n\r\n", 0, 0, "empty file", NULL);
    stream_fails(T, "\"1\",\"a\"\n\"2\",\"b \"x\" c\"\n", 0, 0, "bad.csv:2:", "after the closing quote");
    stream_fails(T, "\"1\",\"a\"\n\"2\",\"b\",\"c\"\n", 0, 0,
                 "bad.csv:2: found 3 fields, expected 2 (as on line 1)", NULL);
    stream_fails(T, "\"1\",\"a\"\n\"x\",\"b\"\n", 0, 0, "bad.csv:2: label (field 1) 'x' is not an integer", NULL);
    stream_fails(T, "label,text\n1,a\n", 0, 0, "bad.csv:1:", "is line 1 a header?");
    stream_fails(T, "1,a\n0,b\n", 0, 0, "bad.csv:2: label (field 1) 0 is below the label base", NULL);
    stream_fails(T, "1,a\n6,b\n2,c\n", 0, 5, "bad.csv:2: label (field 1) 6 is outside 1..5", NULL);
    stream_fails(T, "1,a\n1,b\n", 0, 0, "at least two classes", NULL);
    stream_fails(T, "justone\n", 0, 0, "bad.csv:1: found 1 field", NULL);
    /* --skip-bad: within the budget it succeeds (below), one more is the error, naming the limit */
    stream_fails(T, "1,a\nx,b\n2,c\ny,d\n", 1, 0, "bad.csv:4:", "more than --skip-bad 1 bad rows");
    stream_fails(T, "x,a\ny,b\n", 2, 0, "all 2 rows are bad", NULL);

    stream_fails(N, "", 0, 0, "empty file (expected a header", NULL);
    stream_fails(N, "a,b\n", 0, 0, "no data rows after the header", NULL);
    stream_fails(N, "onlyone\n1\n", 0, 0, "badn.csv:1: the header names 1 column", NULL);
    stream_fails(N, "a,b,y\n1,2,0\n1,zz,1\n", 0, 0, "badn.csv:3: column 2 ('b'): 'zz' is not a number", NULL);
    stream_fails(N, "a,b,y\n1,2,0\n1,,1\n", 0, 0, "badn.csv:3: column 2 ('b'): '' is empty", NULL);
    stream_fails(N, "a,b,y\n1,2,0\n1,1e99,1\n", 0, 0, "not finite in float32", NULL);
    stream_fails(N, "a,b,y\n1,2,0\n1,2\n", 0, 0, "badn.csv:3: found 2 fields, expected 3 (as on line 1)", NULL);
    stream_fails(N, "a,b,y\n1,2,0\n1,2,0.5\n", 0, 0, "badn.csv:3: label (column 3 'y') '0.5' is not an integer",
                 "--task regress");

    /* the skipped rows are counted, the good rows kept in order */
    const char *in = write_str("skip.csv", "1,a\nx,b\n2,c\n\"3\",\"d\"e\"\n2,f\n");
    cz_prep_stream_opts o;
    cz_prep_stream_opts_default(&o, CZ_PREP_CSV_TEXT);
    o.hash_dim = 8;
    o.skip_bad = 2;
    o.paths[CZ_SPLIT_TRAIN] = tpath("skip.h5");
    cz_prep_report rep;
    cz_error err = {0};
    if (cz_prep_stream(in, &o, &rep, &err)) fail_msg("%s", err.msg);
    assert_int_equal(rep.rows, 3);
    assert_int_equal(rep.bad_rows, 2);
    assert_non_null(strstr(rep.first_bad, "skip.csv:2:"));
    cz_prep_report_free(&rep);
    loaded L;
    load(&L, tpath("skip.h5"));
    assert_int_equal(L.n, 3);
    assert_true(L.y[0] == 0 && L.y[1] == 1 && L.y[2] == 1);
    unload(&L);

    /* option errors */
    cz_prep_stream_opts_default(&o, CZ_PREP_CSV_TEXT);
    o.paths[CZ_SPLIT_TRAIN] = tpath("x.h5");
    assert_int_equal(cz_prep_stream(in, &o, &rep, &err), CZ_EINVAL);
    expect_msg(&err, "needs a featurizer");
    cz_prep_report_free(&rep);
    o.hash_dim = 8;
    o.fraction = 0;
    assert_int_equal(cz_prep_stream(in, &o, &rep, &err), CZ_EINVAL);
    expect_msg(&err, "fraction");
    cz_prep_report_free(&rep);
    o.fraction = 1;
    assert_int_equal(cz_prep_stream(tpath("nothere.csv"), &o, &rep, &err), CZ_EIO);
    expect_msg(&err, "nothere.csv: cannot open");
    cz_prep_report_free(&rep);
}

static void test_prep_text_stream_numeric(void **state)
{
    (void)state;
    static const char csv[] =
        "\xEF\xBB\xBF" "a,\"b c\",label,d\r\n"
        "1.5,-2,1, 3e2\r\n"
        "\"0\",4.25,0,-0.125\r\n"
        "7,8,1,9\r\n";
    const char *in = write_str("num.csv", csv);
    cz_prep_stream_opts o;
    cz_prep_stream_opts_default(&o, CZ_PREP_CSV_NUMERIC);
    o.label_name = "label";
    o.paths[CZ_SPLIT_TRAIN] = tpath("num.h5");
    cz_prep_report rep;
    cz_error err = {0};
    if (cz_prep_stream(in, &o, &rep, &err)) fail_msg("%s", err.msg);
    assert_string_equal(rep.label_name, "label");
    assert_int_equal(rep.d, 3);
    assert_int_equal(rep.classes, 2);
    cz_prep_report_free(&rep);
    loaded L;
    load(&L, tpath("num.h5"));
    const float want[3][3] = {{1.5f, -2, 300}, {0, 4.25f, -0.125f}, {7, 8, 9}};
    const int32_t wy[3] = {1, 0, 1};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(L.y[i], wy[i]);
        for (int j = 0; j < 3; j++) assert_true(L.x[i * 3 + j] == want[i][j]);
    }
    unload(&L);

    /* regress on column 1 by index; the label is any number */
    cz_prep_stream_opts_default(&o, CZ_PREP_CSV_NUMERIC);
    o.label_col = 1;
    o.task = CZ_HEAD_REGRESS;
    o.paths[CZ_SPLIT_TRAIN] = tpath("reg.h5");
    if (cz_prep_stream(in, &o, &rep, &err)) fail_msg("%s", err.msg);
    cz_prep_report_free(&rep);
    load(&L, tpath("reg.h5"));
    assert_int_equal(L.info.task, CZ_HEAD_REGRESS);
    assert_true(L.yv[0] == 1.5f && L.yv[1] == 0 && L.yv[2] == 7);
    assert_true(L.x[0] == -2 && L.x[1] == 1 && L.x[2] == 300);
    unload(&L);

    /* the default label is the last column; a missing name is listed */
    cz_prep_stream_opts_default(&o, CZ_PREP_CSV_NUMERIC);
    o.label_name = "nope";
    o.paths[CZ_SPLIT_TRAIN] = tpath("nope.h5");
    assert_int_equal(cz_prep_stream(in, &o, &rep, &err), CZ_EINVAL);
    expect_msg(&err, "num.csv:1: no column named 'nope' for the label (columns: a, b c, label, d)");
    cz_prep_report_free(&rep);
    cz_prep_stream_opts_default(&o, CZ_PREP_CSV_NUMERIC);
    o.paths[CZ_SPLIT_TRAIN] = tpath("last.h5");
    assert_int_equal(cz_prep_stream(in, &o, &rep, &err), CZ_EINVAL); /* d is no class label */
    expect_msg(&err, "num.csv:3: label (column 4 'd') '-0.125' is not an integer");
    cz_prep_report_free(&rep);
}

/* A numeric CSV whose first feature is the row index, labels in K imbalanced classes. */
static const char *make_indexed_csv(const char *name, size_t n, const size_t *sizes, int K, int32_t **labels)
{
    const char *p = tpath(name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fprintf(f, "row,noise,y\n");
    *labels = malloc(n * sizeof **labels);
    size_t left[8];
    for (int k = 0; k < K; k++) left[k] = sizes[k];
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        int k = (int)((s >> 33) % (uint64_t)K);
        while (!left[k]) k = (k + 1) % K;
        left[k]--;
        (*labels)[i] = k;
        fprintf(f, "%zu,%.3f,%d\n", i, (double)((s >> 40) % 1000) / 100.0, k);
    }
    assert_int_equal(fclose(f), 0);
    return p;
}

static void test_prep_text_stream_split_and_fraction(void **state)
{
    (void)state;
    const size_t sizes[3] = {3000, 1200, 57};
    const size_t n = 4257;
    int32_t *labels;
    char in[512];
    snprintf(in, sizeof in, "%s", make_indexed_csv("idx.csv", n, sizes, 3, &labels));
    cz_prep_stream_opts o;
    cz_prep_stream_opts_default(&o, CZ_PREP_CSV_NUMERIC);
    o.split = 1;
    o.frac[0] = 0.7;
    o.frac[1] = 0.1;
    o.frac[2] = 0.2;
    o.seed = 99;
    o.paths[0] = tpath("s-train.h5");
    o.paths[1] = tpath("s-val.h5");
    o.paths[2] = tpath("s-test.h5");
    cz_prep_report rep;
    cz_error err = {0};
    if (cz_prep_stream(in, &o, &rep, &err)) fail_msg("%s", err.msg);
    cz_prep_report_free(&rep);
    /* the same rows as the in-memory split of the same labels and seed */
    cz_prep_set S = {.n = n, .y_class = labels, .task = CZ_HEAD_CLASSIFY, .classes = 3};
    cz_prep_split sp;
    assert_int_equal(cz_prep_split_make(&sp, &S, o.frac, 99, &err), 0);
    loaded L[3];
    int *seen = calloc(n, sizeof *seen);
    for (int j = 0; j < 3; j++) {
        load(&L[j], o.paths[j]);
        assert_int_equal(L[j].n, sp.n[j]);
        size_t count[3] = {0, 0, 0};
        for (size_t i = 0; i < L[j].n; i++) {
            size_t r = (size_t)L[j].x[i * 2];
            assert_int_equal(r, sp.rows[j][i]); /* ascending file order, same rows */
            assert_int_equal(L[j].y[i], labels[r]);
            seen[r]++;
            count[L[j].y[i]]++;
        }
        for (int k = 0; k < 3; k++) /* class proportions kept within one row */
            assert_true(fabs((double)count[k] - o.frac[j] * (double)sizes[k]) <= 1.0);
    }
    for (size_t i = 0; i < n; i++) assert_int_equal(seen[i], 1);
    /* stats only in the training file, and equal to its columns' mean and population std */
    float mean[2], sd[2];
    assert_int_equal(cz_prep_stats_read(o.paths[1], mean, sd, 2, &err), 1);
    assert_int_equal(cz_prep_stats_read(o.paths[0], mean, sd, 2, &err), 0);
    for (int c = 0; c < 2; c++) {
        double m = 0, v = 0;
        for (size_t i = 0; i < L[0].n; i++) m += L[0].x[i * 2 + c];
        m /= (double)L[0].n;
        for (size_t i = 0; i < L[0].n; i++) v += (L[0].x[i * 2 + c] - m) * (L[0].x[i * 2 + c] - m);
        assert_float_equal(mean[c], m, 1e-6 * (1 + fabs(m)));
        assert_float_equal(sd[c], sqrt(v / (double)L[0].n), 1e-5 * sqrt(v / (double)L[0].n));
    }

    /* --fraction: exactly max(1, round(F m)) train rows in total, each class within one row
       of F m_c (largest remainder), nested in a larger F, val and test unchanged */
    const double F[2] = {0.1, 0.4};
    loaded T[2];
    for (int t = 0; t < 2; t++) {
        o.fraction = F[t];
        o.paths[0] = tpath(t ? "f4-train.h5" : "f1-train.h5");
        o.paths[1] = tpath(t ? "f4-val.h5" : "f1-val.h5");
        o.paths[2] = tpath(t ? "f4-test.h5" : "f1-test.h5");
        if (cz_prep_stream(in, &o, &rep, &err)) fail_msg("%s", err.msg);
        assert_int_equal(rep.fraction_dropped + rep.split_rows[0], sp.n[0]);
        cz_prep_report_free(&rep);
        load(&T[t], o.paths[0]);
        size_t count[3] = {0, 0, 0}, mc[3] = {0, 0, 0};
        for (size_t i = 0; i < sp.n[0]; i++) mc[labels[sp.rows[0][i]]]++;
        for (size_t i = 0; i < T[t].n; i++) count[T[t].y[i]]++;
        size_t total = (size_t)floor(F[t] * (double)sp.n[0] + 0.5);
        assert_int_equal(T[t].n, total < 1 ? 1 : total);
        for (int k = 0; k < 3; k++) assert_true(fabs((double)count[k] - F[t] * (double)mc[k]) < 1);
        loaded V;
        load(&V, o.paths[2]);
        assert_int_equal(V.n, L[2].n);
        assert_memory_equal(V.x, L[2].x, V.n * 2 * sizeof(float));
        unload(&V);
    }
    for (size_t i = 0, k = 0; i < T[0].n; i++) { /* F = 0.1 rows are among the F = 0.4 rows */
        while (k < T[1].n && T[1].x[k * 2] != T[0].x[i * 2]) k++;
        assert_true(k < T[1].n);
    }
    /* the in-memory fraction picks the same rows */
    size_t dropped;
    assert_int_equal(cz_prep_split_fraction(&sp, &S, 0.1, 99, &dropped, &err), 0);
    assert_int_equal(sp.n[0], T[0].n);
    for (size_t i = 0; i < T[0].n; i++) assert_int_equal(sp.rows[0][i], (uint64_t)T[0].x[i * 2]);
    assert_int_equal(cz_prep_split_fraction(&sp, &S, 1.5, 99, NULL, &err), CZ_EINVAL);
    for (int t = 0; t < 2; t++) unload(&T[t]);
    for (int j = 0; j < 3; j++) unload(&L[j]);
    cz_prep_split_free(&sp);
    free(seen);
    free(labels);

    /* a split that gets no rows: an error before anything is written */
    snprintf(in, sizeof in, "%s", write_str("tiny.csv", "x,y\n1,0\n2,1\n3,0\n4,1\n"));
    cz_prep_stream_opts_default(&o, CZ_PREP_CSV_NUMERIC);
    o.split = 1;
    o.frac[0] = 0.9;
    o.frac[1] = 0.1;
    o.paths[0] = tpath("tiny-train.h5");
    o.paths[1] = tpath("tiny-val.h5");
    assert_int_equal(cz_prep_stream(in, &o, &rep, &err), CZ_EINVAL);
    expect_msg(&err, "split val=0.1 gets no rows");
    cz_prep_report_free(&rep);
    assert_int_equal(access(o.paths[0], F_OK), -1);
    assert_int_equal(count_tmp_files(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prep_text_csv_records),
        cmocka_unit_test(test_prep_text_csv_errors_and_recovery),
        cmocka_unit_test(test_prep_text_tokenizer),
        cmocka_unit_test(test_prep_text_hash_featurizer),
        cmocka_unit_test(test_prep_text_vocab),
        cmocka_unit_test(test_prep_text_embedding_pooling),
        cmocka_unit_test(test_prep_text_embedding_batches_and_overflow),
        cmocka_unit_test(test_prep_text_stream_text_round_trip),
        cmocka_unit_test(test_prep_text_stream_embeddings),
        cmocka_unit_test(test_prep_text_stream_bad_input),
        cmocka_unit_test(test_prep_text_stream_numeric),
        cmocka_unit_test(test_prep_text_stream_split_and_fraction),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
