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
 *   - TYPE: numeric | real | integer (all read as numbers), or a nominal list {v1,v2,...}.
 *     string, date and relational attributes are rejected with a message (text needs a
 *     featurizer that does not exist yet). Sparse rows ({i v, ...}) and instance weights
 *     are rejected too.
 *   - values are separated by commas; whitespace around a value is dropped; '...' and
 *     "..." quote values holding commas, spaces or % (backslash escapes \' \" \\ \t \n \r).
 *   - an unquoted `?` is a missing value: an error naming the line, or, with drop_missing,
 *     the whole row is dropped and counted.
 *   - the class attribute is the last one unless named. A nominal class gives task
 *     classify (or ordinal if asked) with classes numbered in declaration order 0..K-1;
 *     a numeric class gives task regress.
 *   - features, in attribute order (class left out): a numeric attribute is one column;
 *     a nominal attribute with K values is K one-hot columns (1.0 at the value's index in
 *     declaration order, 0.0 elsewhere), so no order is invented between values.
 *
 * IDX (MNIST, Fashion-MNIST): images magic 0x00000803 (unsigned byte, 3 dims [N, R, C]),
 * labels magic 0x00000801 (unsigned byte, 1 dim [N]). Features [N, R*C] float32 = byte/255,
 * labels int32 in 0..9, classes 10. Counts must agree and files must hold exactly the
 * bytes their header announces. */
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
} cz_prep_set;

/* Frees what a reader allocated and zeroes the struct; NULL-safe, safe on a zeroed set. */
void cz_prep_set_free(cz_prep_set *s);

typedef struct {
    const char *class_name; /* class attribute by name (exact match); NULL: the last one */
    int task;               /* -1: from the class type (nominal -> classify, numeric ->
                               regress); else a cz_head that the class type must fit */
    int drop_missing;       /* 1: drop rows holding '?'; 0: a '?' is an error */
} cz_arff_opts;

/* Sets opts to the defaults above (last attribute, task from its type, '?' is an error). */
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

/* Writes the rows rows[0..n) of s (all rows if rows == NULL, then n is ignored) to a
 * chainz-data file; source_note (may be NULL) is appended to s->source.
 * @return 0 or the negative code of cz_data_write (CZ_EINVAL if the selection is empty). */
int cz_prep_write(const cz_prep_set *s, const uint64_t *rows, size_t n, const char *path,
                  const char *source_note, cz_error *err);

/* `chainz prep arff|idx INPUT... -o OUT.h5 [--split ...] [--seed S] [--class NAME] ...`:
 * argv[0] is "prep". @return the process exit status: 0 done, 1 usage or input error
 * (message on stderr naming the file and place; an unreadable input or an output that
 * cannot be written counts as an input error), 2 runtime failure (out of memory). */
int cz_cmd_prep(int argc, char **argv);

#endif
