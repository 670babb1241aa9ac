/* The rows chainz predict reads: a chainz-data file (with its labels), a plain HDF5 file
 * with a 2-D numeric dataset (chainz/h5feat.h), or a CSV of numbers (plain or gzip), read
 * as bands of rows in ascending order, so that no rank needs the whole matrix.
 *
 * CSV: the dialect of prep.h's CSV records; every record holds d numbers (strtod's decimal
 * syntax, finite; blanks around a number are allowed); the first line may be a header
 * (it is one when none of its fields is a number: a line 1 with a number and a bad cell
 * is a bad row, refused, not a header dropped). The file is read once at open to
 * count and check every row (the errors name the file, line and column, 1-based, the same
 * on every rank), then again for the rows asked for. The kind is told by content: an HDF5
 * signature, then the format attribute "chainz-data"; anything else is read as CSV. */
#ifndef CHAINZ_FEATSRC_H
#define CHAINZ_FEATSRC_H

#include <stddef.h>
#include <stdint.h>
#include "chainz/error.h"
#include "chainz/model.h"

typedef enum { CZ_FEAT_CHAINZ = 0, CZ_FEAT_HDF5 = 1, CZ_FEAT_CSV = 2 } cz_feat_kind;

typedef struct {
    cz_feat_kind kind;
    size_t n, d;
    char dataset[512]; /* the dataset read ("/features" for chainz-data; "" for CSV) */
    int header;        /* CSV: 1 when line 1 was a header */
    int has_labels;    /* chainz-data: labels, task and classes below */
    cz_head task;
    int classes;
} cz_featsrc_info;

typedef struct cz_featsrc cz_featsrc;

const char *cz_feat_kind_name(cz_feat_kind k); /* "chainz-data", "hdf5", "csv" */
/* dataset: --dataset (plain HDF5 only; NULL or "" for the default).
 * @return 0, CZ_EINVAL (a bad file, cell or option, named), CZ_EIO, CZ_ENOMEM. */
int cz_featsrc_open(cz_featsrc **out, const char *path, const char *dataset, cz_error *err);
void cz_featsrc_close(cz_featsrc *s); /* NULL-safe */
const cz_featsrc_info *cz_featsrc_get_info(const cz_featsrc *s);
/* The labels [N] of a chainz-data file (one of the two is not NULL), else both NULL. */
const int32_t *cz_featsrc_labels_class(const cz_featsrc *s);
const float *cz_featsrc_labels_value(const cz_featsrc *s);
/* Rows r0 .. r0 + n - 1 into x [n x d]; successive calls must ask for ascending rows
 * (r0 at or after the end of the previous band). @return 0, CZ_EINVAL, CZ_EIO, CZ_ENOMEM. */
int cz_featsrc_read(cz_featsrc *s, size_t r0, size_t n, float *x, cz_error *err);

#endif
