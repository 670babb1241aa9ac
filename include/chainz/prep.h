/* chainz prep: readers that turn tabular and image files into chainz-data sets
 * (docs/DESIGN.md sections 3 and 5), and the stratified train/val/test split.
 *
 * A reader fills a cz_prep_set in memory (these inputs are small: Pima is 768 rows,
 * Fashion-MNIST 60000 x 784), the split picks rows per class, and cz_prep_write* hand the
 * rows to cz_data_write (atomic tmp + rename). Every failure returns a negative cz code
 * and a message naming the file, the line (or item) and what was expected.
 *
 * Input files may be gzip-compressed: zlib recognises the gzip magic bytes (1f 8b) and
 * reads any other file as it is, so "x.arff" and "x.arff.gz" are read alike.
 *
 * ARFF (Weka), as read here:
 *   - `@relation`, `@attribute NAME TYPE`, `@data`; keywords case-insensitive; `%` outside
 *     quotes starts a comment; CRLF or LF line ends; a UTF-8 byte order mark is skipped.
 *   - TYPE: numeric | real | integer (all read as numbers), a nominal list {v1,v2,...}, or
 *     string (text: needs a featurizer, cz_arff_opts.text, else an error naming the file,
 *     line and attribute). date and relational attributes are rejected with a message.
 *     Sparse rows ({i v, ...}) and instance weights are rejected too.
 *   - values are separated by commas; whitespace around a value is dropped; '...' and
 *     "..." quote values holding commas, spaces or % (backslash escapes \' \" \\ \t \n \r).
 *   - an unquoted `?` is a missing value: an error naming the line, or, with drop_missing,
 *     the whole row is dropped and counted.
 *   - the class attribute is the last one unless named. A nominal class gives task
 *     classify (or ordinal if asked) with classes numbered in declaration order 0..K-1;
 *     a numeric class gives task regress.
 *   - features, in attribute order (class left out): a numeric attribute is one column;
 *     a nominal attribute with K values is K one-hot columns (1.0 at the value's index in
 *     declaration order, 0.0 elsewhere), so no order is invented between values; a string
 *     attribute is D columns (D = the featurizer's dim): cz_featurizer_apply of its value
 *     (quotes and escapes removed; an unquoted empty value is the empty text), exactly as
 *     prep csv featurizes a text. Several string attributes get one D block each, in
 *     attribute order. A string attribute cannot be the class.
 *
 * IDX (MNIST, Fashion-MNIST): images magic 0x00000803 (unsigned byte, 3 dims [N, R, C]),
 * labels magic 0x00000801 (unsigned byte, 1 dim [N]). Features [N, R*C] float32 = byte/255,
 * labels int32 in 0..9, classes 10. Counts must agree and files must hold exactly the
 * bytes their header announces. The files written record R and C as the attributes
 * image_rows and image_cols (what chainz prep corrupt reads).
 *
 * Text and numeric CSV (cz_prep_stream) are streamed instead: they can be large (a Yelp
 * review set is 650k rows, its 300-d features 780 MB), so no row's text and no feature
 * matrix is ever held whole. Two passes over the input: pass 1 parses every record and
 * keeps only its label (4 bytes a row), which fixes the row count, the classes, the bad
 * rows and the split; pass 2 parses again, featurizes row by row and writes each row
 * straight into its place in a contiguous /features dataset of the output it belongs to.
 * Memory: O(d) per row, 5 bytes per row (about 25 while the split is drawn), the longest
 * record, and the word vectors (if any).
 * docs/PREP.md has the formats, the tokenizer, both featurizers and measured numbers.
 *
 * Every output file is written under a temporary name beside it and renamed only when
 * it is complete (fsync, rename, fsync of the folder). The training file (the train split,
 * or the only output without --split) also holds /stats/mean and /stats/std [d] float32:
 * the per-feature mean and population standard deviation of its rows (not applied). */
#ifndef CHAINZ_PREP_H
#define CHAINZ_PREP_H

#include <stddef.h>
#include <stdint.h>
#include "chainz/error.h"
#include "chainz/model.h"

/* A data set in memory, as a reader produced it. */
typedef struct {
    size_t n, d;
    float *x;             /* [n x d] row-major */
    int32_t *y_class;     /* [n] classify/ordinal, else NULL */
    float *y_value;       /* [n] regress, else NULL */
    cz_head task;
    int classes;          /* K for classify/ordinal, 0 for regress */
    char **class_names;   /* [classes] (ARFF nominal values, IDX "0".."9"), NULL for regress */
    size_t dropped;       /* rows dropped for missing values (drop_missing) */
    char source[256];     /* what it came from: written as the file's source attribute */
    char featurizer[768]; /* ARFF with string attributes: the file's featurizer attribute
                             (the text featurizer and each string attribute's columns); else "" */
    size_t image_rows, image_cols; /* IDX: the image shape (R*C = d), written as the file's
                                      image_rows / image_cols attributes; else 0 */
} cz_prep_set;

/* Frees what a reader allocated and zeroes the struct; NULL-safe, safe on a zeroed set. */
void cz_prep_set_free(cz_prep_set *s);

typedef struct cz_featurizer cz_featurizer; /* text -> features: see below */

typedef struct {
    const char *class_name; /* class attribute by name (exact match); NULL: the last one */
    int task;               /* -1: from the class type (nominal -> classify, numeric ->
                               regress); else a cz_head that the class type must fit */
    int drop_missing;       /* 1: drop rows holding '?'; 0: a '?' is an error */
    cz_featurizer *text;    /* featurizes string attributes (borrowed, not freed; its counts
                               grow by one row per string value of every kept row); NULL: a
                               string attribute is an error. Given with no string attribute:
                               an error too. */
} cz_arff_opts;

/* Sets opts to the defaults above (last attribute, task from its type, '?' is an error,
 * no text featurizer). */
void cz_arff_opts_default(cz_arff_opts *opts);

/* Reads an ARFF file (plain or gzip) into out (zeroed first, freed again on error).
 * @return 0, CZ_EINVAL (bad content: message names file, line, column), CZ_EIO, CZ_ENOMEM. */
int cz_prep_arff_read(cz_prep_set *out, const char *path, const cz_arff_opts *opts,
                      cz_error *err);

/* Reads an IDX image file and its label file (each plain or gzip).
 * @return 0, CZ_EINVAL (bad magic, dims, count mismatch, truncated, label > 9), CZ_EIO,
 * CZ_ENOMEM. */
int cz_prep_idx_read(cz_prep_set *out, const char *images_path, const char *labels_path,
                     cz_error *err);

/* ---- splits ---- */

enum { CZ_SPLIT_TRAIN, CZ_SPLIT_VAL, CZ_SPLIT_TEST, CZ_SPLIT_COUNT };

/* "train", "val", "test" */
const char *cz_split_name(int which);

/* Parses "train=0.8,val=0.1,test=0.1" (any subset, any order) into frac[CZ_SPLIT_COUNT];
 * absent names are 0. Each fraction in [0, 1], the sum 1 (within 1e-6).
 * @return 0 or CZ_EINVAL naming the offending part. */
int cz_prep_split_parse(const char *spec, double frac[CZ_SPLIT_COUNT], cz_error *err);

typedef struct {
    uint64_t *rows[CZ_SPLIT_COUNT]; /* row indices of each split, ascending */
    size_t n[CZ_SPLIT_COUNT];
} cz_prep_split;

/* Stratified split: per class (one stratum for regress), the class's rows are shuffled by
 * cz_rng_permutation from one cz_rng seeded with seed (classes in order 0..K-1), then cut
 * at round(n_c * cumulative fraction), so each split holds within one row of frac * n_c
 * of every class. The same seed gives the same split on every machine.
 * @return 0, CZ_EINVAL (a label outside 0..K-1) or CZ_ENOMEM; out is zeroed first and
 * must be freed with cz_prep_split_free. */
int cz_prep_split_make(cz_prep_split *out, const cz_prep_set *s,
                       const double frac[CZ_SPLIT_COUNT], uint64_t seed, cz_error *err);
void cz_prep_split_free(cz_prep_split *sp);

/* A stratified subsample of the train split (the papers' sample-efficiency study). Exactly
 * one way of choosing its size:
 *   - per_class != NULL: exactly per_class[c] rows of class c (n_per_class must equal the
 *     number of classes; each at most the class's train rows);
 *   - count > 0: exactly count rows in total (at most the train rows);
 *   - else fraction f in (0, 1]: exactly T = max(1, round(f * m)) rows in total, m the
 *     train rows.
 * A total T is shared among the classes by largest remainder, one row at a time: the t-th
 * row (t = 1..T) goes to the class c whose remainder t * m_c / m - a_c is largest (a_c
 * the rows it has so far; ties to the lower class). Every class then holds within one row
 * of T * m_c / m for two classes (where this is exactly Hamilton's largest-remainder
 * allocation), the total is exact, and growing T never takes a row from a class (Hamilton's
 * method can, for three or more classes: the Alabama paradox), so samples stay nested.
 * Rows: per class (one stratum for regress) a permutation of its train rows drawn from a
 * cz_rng seeded with cz_hash64(seed, CZ_PREP_FRACTION_KEY) (classes in order 0..K-1), of
 * which the first a_c are kept. The same seed draws the same permutations whatever the
 * size, so a smaller subsample is a subset of a larger one's rows. val and test are not
 * touched. *dropped (may be NULL) receives the number of train rows left out.
 * @return 0, CZ_EINVAL (a size out of range, a bad label) or CZ_ENOMEM. */
#define CZ_PREP_FRACTION_KEY 0x6672616374696f6eULL /* "fraction" */
typedef struct {
    double fraction;          /* (0, 1]; used when count == 0 and per_class == NULL */
    size_t count;             /* > 0: exactly this many rows in total */
    const size_t *per_class;  /* non-NULL: exactly per_class[c] rows of class c */
    int n_per_class;          /* entries of per_class */
} cz_prep_subsample;

/* 1 when sub keeps every row as it is (fraction >= 1, no count): nothing to do */
int cz_prep_subsample_is_all(const cz_prep_subsample *sub);

/* "fraction 0.05", "count 32", "count per class 16,16" */
void cz_prep_subsample_describe(char *buf, size_t len, const cz_prep_subsample *sub);

int cz_prep_split_subsample(cz_prep_split *sp, const cz_prep_set *s, const cz_prep_subsample *sub,
                            uint64_t seed, size_t *dropped, cz_error *err);

/* cz_prep_split_subsample with {.fraction = f} */
int cz_prep_split_fraction(cz_prep_split *sp, const cz_prep_set *s, double f, uint64_t seed,
                           size_t *dropped, cz_error *err);

/* Writes the rows rows[0..n) of s (all rows if rows == NULL, then n is ignored) to a
 * chainz-data file (temporary name, then rename); source_note (may be NULL) is appended to
 * s->source. With stats != 0 the file also gets /stats/mean and /stats/std of these rows
 * (as for a training file).
 * @return 0, CZ_EINVAL (the selection is empty, a row out of range), CZ_EIO, CZ_ENOMEM. */
int cz_prep_write(const cz_prep_set *s, const uint64_t *rows, size_t n, const char *path,
                  const char *source_note, int stats, cz_error *err);

/* Reads /stats/mean and /stats/std of a chainz-data file into mean[d] and std[d].
 * @return 0, 1 if the file has no /stats, CZ_EINVAL (d differs), CZ_EIO. */
int cz_prep_stats_read(const char *path, float *mean, float *std, size_t d, cz_error *err);

/* ---- CSV records (RFC 4180 plus what the review sets do) ----
 *
 * Fields are separated by ',' and records end at LF or CRLF. A field starting with '"' is
 * quoted: it ends at the next lone '"', a doubled "" stands for one '"', and commas and line
 * ends inside it are data (so a record may span lines). An unquoted field may not hold a
 * '"'. After a closing quote only ',' or the line end may follow. A UTF-8 byte order mark at
 * the start is skipped; empty lines (LF or CRLF alone) between records are skipped; a CR not
 * followed by LF is data. No escape other than "" is interpreted here (the text format's
 * backslash-n is handled by the text reader). A record may hold at most CZ_CSV_MAX_RECORD
 * bytes. Input through zlib: plain or gzip. */
#define CZ_CSV_MAX_RECORD ((size_t)64 << 20)

typedef struct cz_csv cz_csv;

typedef struct {
    char *s;      /* the unquoted, unescaped bytes, NUL-terminated (may hold NUL bytes: use len) */
    size_t len;
    int quoted;
} cz_csv_field;

/* @return 0, CZ_EIO (message names the file), CZ_ENOMEM. */
int cz_csv_open(cz_csv **out, const char *path, cz_error *err);
/* Reads from a caller-owned buffer (which must outlive the reader); name is used in messages. */
int cz_csv_open_mem(cz_csv **out, const char *name, const void *buf, size_t len, cz_error *err);
void cz_csv_close(cz_csv *c); /* NULL-safe */

/* Reads the next record. @return 1 (a record: cz_csv_fields), 0 (end of input), CZ_EINVAL
 * (malformed quoting: the message names the file, the line and what was expected; the
 * reader has skipped to the end of the offending line, so reading can go on unless
 * cz_csv_broken says otherwise), CZ_EIO, CZ_ENOMEM. */
int cz_csv_next(cz_csv *c, cz_error *err);
const cz_csv_field *cz_csv_fields(const cz_csv *c, size_t *n); /* valid until the next call */
size_t cz_csv_line(const cz_csv *c);      /* line where the last record (or error) began */
int cz_csv_broken(const cz_csv *c);       /* 1 after an error reading cannot go on from */
uint64_t cz_csv_offset(const cz_csv *c);  /* input position (compressed bytes for gzip) */
uint64_t cz_csv_size(const cz_csv *c);    /* input size in the same unit (0 if unknown) */

/* ---- text: tokenizer and featurizers ----
 *
 * Tokenizer: ASCII letters are lower-cased; a token is a maximal run of bytes that are ASCII
 * letters, digits, the apostrophe ', or any byte >= 0x80 (so UTF-8 letters stay inside
 * tokens, byte for byte, not case-folded). Every other byte separates tokens. */
typedef void (*cz_token_fn)(void *ctx, const char *tok, size_t len);
/* Lower-cases text[0..len) in place and calls fn for each token in order.
 * @return the number of tokens. */
size_t cz_text_tokenize(char *text, size_t len, cz_token_fn fn, void *ctx);

/* The hashing featurizer (no external file), exactly:
 *   fnv(s)    = FNV-1a 64 of the bytes of s (offset basis 0xcbf29ce484222325, prime
 *               0x100000001b3: for each byte b, h = (h ^ b) * prime);
 *   h(s)      = mix(fnv(s) ^ CZ_TEXT_HASH_SEED), mix = the splitmix64 finaliser
 *               z ^= z >> 30; z *= 0xbf58476d1ce4e5b9; z ^= z >> 27; z *= 0x94d049bb133111eb;
 *               z ^= z >> 31;
 *   features  = every token t_i (unigram) and every "t_i t_{i+1}" (bigram: the two tokens
 *               joined by one space), so T tokens give T + max(T - 1, 0) features;
 *   x[h(s) mod' D] += sign(s) for each feature s, where mod' takes the low 32 bits of h(s)
 *               modulo D and sign(s) = +1 if bit 63 of h(s) is 0, else -1;
 *   then x /= (number of features), or with l2 x /= ||x||_2 (x stays 0 without features
 *   or when the signs cancel). */
#define CZ_TEXT_HASH_SEED 0x636861696e7a3031ULL /* "chainz01" */
#define CZ_TEXT_HASH_MAX_DIM ((size_t)1 << 22)
uint64_t cz_text_hash(const char *s, size_t len);

/* Word vectors in the GloVe text format: one `word v1 ... vD` per line, separated by spaces
 * or tabs; D is the number of values on the first line (a word2vec header line "COUNT D" of
 * two integers is recognised and skipped); every line must have exactly D finite float32
 * values, else an error names the line (or, with skip_bad, up to skip_bad such lines are
 * skipped and counted). Words are matched byte for byte (the tokens are lower-case, as the
 * GloVe 6B/42B vocabularies are); a repeated word keeps its first vector. Blank lines are
 * skipped. Storage: one float32 arena [V x D], one char arena of the words and an
 * open-addressing table (FNV-1a 64, linear probing, load <= 1/2) of 16-byte slots:
 * 400k x 300 takes 480 MB of vectors plus about 20 MB. */
typedef struct cz_vocab cz_vocab;
typedef struct {
    size_t words, dim, duplicates, bad_lines;
    char first_bad[320]; /* the message of the first skipped line */
} cz_vocab_info;
int cz_vocab_load(cz_vocab **out, const char *path, size_t skip_bad, cz_error *err);
int cz_vocab_load_mem(cz_vocab **out, const char *name, const void *buf, size_t len,
                      size_t skip_bad, cz_error *err);
void cz_vocab_free(cz_vocab *v); /* NULL-safe */
const cz_vocab_info *cz_vocab_get_info(const cz_vocab *v);
/* The vector of a word [dim], or NULL if it is not in the vocabulary. */
const float *cz_vocab_find(const cz_vocab *v, const char *word, size_t len);

/* A featurizer: text -> x[dim]. Embeddings: the mean of the vectors of the tokens found in
 * the vocabulary (out-of-vocabulary tokens are skipped and counted; a text without any known
 * token gives the zero vector and is counted), optionally L2-normalized. */
typedef struct cz_featurizer cz_featurizer;
typedef struct {
    uint64_t rows, tokens;
    uint64_t features;   /* hash: unigrams + bigrams */
    uint64_t oov_tokens; /* embeddings: tokens not in the vocabulary */
    uint64_t empty_rows; /* rows given the zero vector (no token / no known token) */
} cz_text_counts;
int cz_featurizer_hash(cz_featurizer **out, size_t dim, int l2, cz_error *err);
/* Takes ownership of vocab (freed with the featurizer, also on error). */
int cz_featurizer_embed(cz_featurizer **out, cz_vocab *vocab, int l2, cz_error *err);
void cz_featurizer_free(cz_featurizer *f); /* NULL-safe */
size_t cz_featurizer_dim(const cz_featurizer *f);
/* Writes x[dim] for text[0..len) (lower-cased in place) and updates the counts. */
void cz_featurizer_apply(cz_featurizer *f, float *x, char *text, size_t len);
const cz_text_counts *cz_featurizer_counts(const cz_featurizer *f);
/* A one-line description for the file's featurizer attribute. */
void cz_featurizer_describe(const cz_featurizer *f, char *buf, size_t len);

/* ---- streamed CSV -> chainz-data ---- */

typedef enum { CZ_PREP_CSV_TEXT, CZ_PREP_CSV_NUMERIC } cz_prep_csv_kind;

typedef struct {
    int pass;            /* 1: reading labels, 2: featurizing and writing */
    uint64_t rows;       /* records read in this pass */
    uint64_t offset, size; /* input position and size (compressed bytes for gzip; size 0 if unknown) */
    double seconds;      /* since this pass began */
} cz_prep_progress;

typedef struct {
    cz_prep_csv_kind kind;
    /* labels */
    size_t label_col;       /* 1-based; 0: text 1, numeric the last column (or label_name) */
    const char *label_name; /* numeric: the label column by its header name (exact) */
    long label_base;        /* the label that is class 0 (text default 1, numeric 0) */
    int classes;            /* K, or 0: the largest label seen - base + 1 */
    cz_head task;           /* text: classify or ordinal; numeric: also regress */
    /* text featurizer: embeddings (a GloVe file) or hash_dim > 0 */
    const char *embeddings;
    size_t hash_dim;
    int l2_normalize;
    /* bad rows: up to skip_bad skipped and counted (also bad vector lines, separately) */
    size_t skip_bad;
    /* outputs: paths[j] for every split j with frac[j] > 0 (no split: frac {1, 0, 0} and
       paths[CZ_SPLIT_TRAIN] the one output, split = 0) */
    int split;
    double frac[CZ_SPLIT_COUNT];
    double fraction;        /* of the train split, in (0, 1]; 1 keeps all */
    size_t count;           /* > 0: exactly this many train rows (cz_prep_subsample) */
    const size_t *per_class;/* non-NULL: exactly these train rows per class */
    int n_per_class;
    uint64_t seed;
    const char *paths[CZ_SPLIT_COUNT];
    /* called about every 64k records (may be NULL) */
    void (*progress)(void *ctx, const cz_prep_progress *p);
    void *progress_ctx;
} cz_prep_stream_opts;

/* Sets the defaults: text, label column 1, base 1, classes from the data, classify,
 * no featurizer chosen, skip_bad 0, no split, fraction 1, seed 1. */
void cz_prep_stream_opts_default(cz_prep_stream_opts *o, cz_prep_csv_kind kind);

typedef struct {
    uint64_t rows;                          /* good rows read */
    uint64_t bad_rows;                      /* skipped (skip_bad) */
    char first_bad[400];                    /* message of the first skipped row */
    uint64_t split_rows[CZ_SPLIT_COUNT];    /* rows written to each output */
    uint64_t fraction_dropped;              /* train rows left out by fraction */
    size_t d;
    cz_head task;
    int classes;
    uint64_t *class_rows;                   /* [classes] good rows per class (NULL for regress) */
    char label_name[128];                   /* numeric: the label column's header name */
    cz_text_counts text;                    /* text: tokens, OOV, empty rows */
    cz_vocab_info vocab;                    /* embeddings */
    char featurizer[512];
    uint64_t in_bytes;                      /* input size (as read: uncompressed) */
    double seconds_vocab, seconds_pass1, seconds_pass2;
} cz_prep_report;
void cz_prep_report_free(cz_prep_report *r); /* NULL-safe */

/* Reads a text or numeric CSV file (plain or gzip; a regular file: it is read twice) and
 * writes the outputs named in o. Text: one label field (o->label_col) and one or more text
 * fields, joined with a space in order; in the text a backslash followed by 'n' is a line
 * break; the joined text goes through the featurizer. Numeric: a header record naming the
 * columns, then records of as many numbers; the label column gives the labels (integer
 * classes or, for regress, values), every other column is a feature in file order.
 * Every record must hold as many fields as the first one (numeric: as the header).
 * A bad record (malformed quoting, wrong field count, a label that is not an integer or
 * lies outside base..base+K-1, a value that is not a finite float32 number) is an error
 * naming file, line and what was expected, or is skipped and counted while there are at
 * most o->skip_bad of them. The split is exactly cz_prep_split_make's (then
 * cz_prep_split_fraction's) on the good rows' labels: the same rows for the same labels
 * and seed as an in-memory set.
 * @return 0, CZ_EINVAL (bad input or options), CZ_EIO, CZ_ENOMEM; rep is filled (and must
 * be freed) in every case. No output exists unless it was written completely. */
int cz_prep_stream(const char *input, const cz_prep_stream_opts *o, cz_prep_report *rep,
                   cz_error *err);

/* `chainz prep csv|numeric|arff|idx INPUT... -o OUT.h5 [options]` (chainz prep --help):
 * argv[0] is "prep". @return the process exit status: 0 done, 1 usage or input error
 * (message on stderr naming the file and place; an unreadable input or an output that
 * cannot be written counts as an input error), 2 runtime failure (out of memory). */
/* 1 if both paths exist and are the same file (device and inode), else 0: an output must
 * never replace an input. */
int cz_prep_same_file(const char *a, const char *b);

int cz_cmd_prep(int argc, char **argv);

#endif
