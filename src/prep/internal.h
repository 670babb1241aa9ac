/* Internals of src/prep shared between its files (and the fuzz targets): an input source
 * (zlib file or memory), the row rules of the CSV formats, and the streamed chainz-data
 * writer. Not a public interface. */
#ifndef CHAINZ_PREP_INTERNAL_H
#define CHAINZ_PREP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "chainz/prep.h"

/* ---- input: a file through zlib (plain or gzip) or a caller's buffer ---- */
typedef struct {
    const char *name;
    gzFile g;
    const unsigned char *mem;
    size_t mem_len, mem_pos;
    uint64_t size; /* file size in bytes (compressed for gzip), 0 if unknown */
    uint64_t read; /* bytes delivered (uncompressed) */
} cz_src;

int cz_src_open(cz_src *s, const char *path, cz_error *err);
void cz_src_open_mem(cz_src *s, const char *name, const void *buf, size_t len);
/* @return bytes read (> 0), 0 at the end, or a negative cz code (message in err). */
long cz_src_read(cz_src *s, void *buf, size_t cap, cz_error *err);
uint64_t cz_src_offset(const cz_src *s); /* compressed position for gzip files */
/* @return 0 or CZ_EIO (a truncated gzip stream). NULL-safe on a zeroed source. */
int cz_src_close(cz_src *s, cz_error *err);

/* ---- the row rules of text and numeric CSV ---- */
#define CZ_PREP_MAX_CLASSES 100000

typedef struct {
    cz_prep_csv_kind kind;
    const char *path;
    size_t label_col;   /* 0-based, fixed once the first record is seen */
    size_t label_col1;  /* as asked (1-based, 0: default) */
    size_t nfields;     /* fields a record must hold (0: not known yet) */
    size_t nfields_line;
    cz_head task;
    long base;
    long classes;       /* 0: open (labels base .. base + CZ_PREP_MAX_CLASSES - 1) */
    char **names;       /* numeric: the header's column names [nfields] */
} cz_rowfmt;
void cz_rowfmt_free(cz_rowfmt *f); /* frees names */

/* Numeric: reads the header record (names), chooses the label column (by label_name, or
 * f->label_col1, or the last) and fixes f->nfields. name_out gets the label's name. */
int cz_row_header(cz_rowfmt *f, const cz_csv_field *fields, size_t nf, size_t line,
                  const char *label_name, char *name_out, size_t name_len, cz_error *err);
/* Checks a data record and extracts its label (*yc for classes, *yv for regress) and, for
 * numeric with x != NULL, its features x[nfields - 1]. Text: the first good record fixes
 * nfields. @return 0 or CZ_EINVAL (file:line: what was found and expected). */
int cz_row_parse(cz_rowfmt *f, const cz_csv_field *fields, size_t nf, size_t line,
                 int32_t *yc, float *yv, float *x, cz_error *err);
/* Text: joins the text fields (all but the label) with one space into *buf (grown as
 * needed), turning each backslash-n into a line break. @return 0 or CZ_ENOMEM. */
int cz_row_text(const cz_rowfmt *f, const cz_csv_field *fields, size_t nf, char **buf,
                size_t *cap, size_t *len);

/* Looks up n tokens at once (their vectors, or NULL), overlapping the cache misses of
 * the table, the words and the vectors by prefetching; scratch holds n values. Gives
 * exactly what cz_vocab_find gives for each token. */
void cz_vocab_find_batch(const cz_vocab *v, const char *const *w, const size_t *len, size_t n,
                         uint64_t *scratch, const float **out);

/* ARFF from a buffer (fuzzing): as cz_prep_arff_read, name used in messages. */
int cz_prep_arff_read_mem(cz_prep_set *out, const char *name, const void *data, size_t len,
                          const cz_arff_opts *opts, cz_error *err);

/* ---- the streamed chainz-data writer ----
 * The row count is known up front: /features [n, d] is one contiguous dataset (what the
 * trainer maps), filled in blocks of rows by hyperslab writes. Labels (n values) are kept
 * and written at the end, with the attributes and, if asked, /stats. Everything goes to a
 * temporary name; cz_prep_out_finish closes it and cz_prep_out_commit renames it. */
typedef struct cz_prep_out cz_prep_out;
int cz_prep_out_open(cz_prep_out **out, const char *path, size_t n, size_t d, cz_head task,
                     int classes, int stats, cz_error *err);
/* The buffer for the next row's d features (fill, then cz_prep_out_push). */
float *cz_prep_out_row(cz_prep_out *o);
int cz_prep_out_push(cz_prep_out *o, int32_t yc, float yv, cz_error *err);
/* Writes what is left, the labels, the attributes (source, featurizer may be NULL) and the
 * stats, and closes the file (still under its temporary name). */
int cz_prep_out_finish(cz_prep_out *o, const char *source, const char *featurizer,
                       cz_error *err);
/* Image sets: records the shape of a row as the attributes image_rows and image_cols. */
void cz_prep_out_set_image(cz_prep_out *o, size_t rows, size_t cols);
/* One more string attribute (name < 32 bytes, value cut at 511), at most CZ_PREP_OUT_NOTES. */
#define CZ_PREP_OUT_NOTES 2
int cz_prep_out_set_note(cz_prep_out *o, const char *name, const char *value, cz_error *err);
/* Renames a finished file to its final name and frees o. */
int cz_prep_out_commit(cz_prep_out *o, cz_error *err);
/* Closes and removes the temporary file, frees o. NULL-safe. */
void cz_prep_out_abort(cz_prep_out *o);

/* The image shape of a chainz-data file (attributes image_rows, image_cols).
 * @return 0, 1 if the file has neither attribute, CZ_EINVAL (one of them, or a bad value),
 * CZ_EIO (not HDF5). */
int cz_prep_image_shape_read(const char *path, size_t *rows, size_t *cols, cz_error *err);

#endif
