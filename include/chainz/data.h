/* chainz-data HDF5 sets (docs/DESIGN.md section 3): /features [N, d], /labels [N] and
 * attributes format="chainz-data", version, task, classes, source.
 *
 * Rows are read on demand, from a shared read-only mapping of the contiguous dataset when
 * the file allows it (all ranks of a node then share the page cache: one copy per node,
 * not per rank), otherwise by HDF5 hyperslab selections of exactly the rows asked for. A
 * chunked /features (often deflated: what h5py writes with chunks=True or compression=)
 * costs a whole chunk per random row; the caller may then load the matrix once
 * (cz_data_load_features, into memory it shares across a node) and attach it. float64 features and int64 labels
 * (what h5py/numpy write naturally) are converted on read. This module knows no MPI. */
#ifndef CHAINZ_DATA_H
#define CHAINZ_DATA_H

#include <stddef.h>
#include <stdint.h>
#include "chainz/error.h"
#include "chainz/model.h"

typedef struct cz_data cz_data;

/* The chainz-data version this code reads; a file's `version` attribute is required,
 * and a newer one is refused. */
#define CZ_DATA_VERSION 1
/* Untrusted sizes from a file: more classes or features than this are refused at open
 * (the memory a run needs is estimated against the node before anything is allocated). */
#define CZ_DATA_MAX_CLASSES (1 << 24)
#define CZ_DATA_MAX_D (1ULL << 40)

typedef struct {
    size_t n, d;
    cz_head task;
    int classes;          /* K for classify/ordinal, 0 for regress */
    char source[256];
} cz_data_info;

/* Opens and validates the file's structure (a regular file, format and version, ranks,
 * dtypes, label range, shape agreement, sizes that cannot overflow, /features stored in
 * this file and not behind an external link). Errors name the file and the problem. */
int cz_data_open(cz_data **out, const char *path, cz_error *err);
void cz_data_close(cz_data *ds);
const cz_data_info *cz_data_get_info(const cz_data *ds);
const char *cz_data_path(const cz_data *ds);
/* 1 if rows come from a shared mapping of the file, 0 otherwise (hyperslab reads, or an
 * attached matrix: cz_data_in_memory). */
int cz_data_is_mapped(const cz_data *ds);

/* How /features is stored. */
typedef struct {
    int chunked;          /* 1: chunked layout (random rows then cost a chunk each) */
    size_t chunk[2];      /* chunk shape, rows x columns (when chunked) */
    char filters[160];    /* the filter pipeline, e.g. "shuffle+deflate level 4", or "no filter" */
    size_t bytes;         /* the matrix as float32 in memory: N x d x 4 (fits: checked at open) */
} cz_data_layout;

void cz_data_get_layout(const cz_data *ds, cz_data_layout *lay);
/* Reads all of /features into x [N x d] float32, band of chunks by band of chunks in file
 * order (each chunk is read and decompressed once); the values are those
 * cz_data_read_rows gives, bit for bit. @return 0, or CZ_EIO naming the file, the dataset
 * and its filters. */
int cz_data_load_features(cz_data *ds, float *x, cz_error *err);
/* From now on rows come from x [N x d] (borrowed; it must outlive ds, or be detached
 * with NULL), checked as before. */
void cz_data_attach_features(cz_data *ds, const float *x);
/* 1 if rows come from an attached in-memory matrix. */
int cz_data_in_memory(const cz_data *ds);

/* All labels [N] (small: every rank may hold them): classes as int32 (y_class) or values
 * as float (y_value, regress); the other pointer is NULL. */
const int32_t *cz_data_labels_class(const cz_data *ds);
const float *cz_data_labels_value(const cz_data *ds);

/* Gathers rows idx[0..n) into x [n x d] as float32. Non-finite values are an error naming
 * the file and row. */
int cz_data_read_rows(cz_data *ds, const uint64_t *idx, size_t n, float *x, cz_error *err);

/* Writes a chainz-data file atomically (temporary name, fsync, rename). labels_class for
 * classify/ordinal, labels_value for regress. */
int cz_data_write(const char *path, const float *x, const int32_t *labels_class,
                  const float *labels_value, size_t n, size_t d, cz_head task, int classes,
                  const char *source, cz_error *err);

#endif
