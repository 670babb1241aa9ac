/* Feature matrices in plain HDF5 files (not chainz-data): a 2-D numeric dataset [N, d], one
 * row per sample, read a band of rows at a time (hyperslabs), converted to float32, for
 * chainz predict. Part of src/io (the only HDF5 user).
 *
 * The dataset is the one named, or else the file's only 2-D dataset; with none or several,
 * the error lists the 2-D datasets found. Values must be finite: an error names the file,
 * the dataset, the row and the column (from 0, as h5py and numpy index them). */
#ifndef CHAINZ_H5FEAT_H
#define CHAINZ_H5FEAT_H

#include <stddef.h>
#include "chainz/error.h"

typedef struct cz_h5feat cz_h5feat;

/* What kind of file path is: *is_hdf5 1 for an HDF5 file, and then *is_chainz 1 when its
 * root attribute format is "chainz-data" (2 when such a file has no /labels: its rows are
 * still features). A file that cannot be read is neither (the reader chosen afterwards
 * names the problem). */
void cz_h5feat_probe(const char *path, int *is_hdf5, int *is_chainz);
/* @return 0, CZ_EINVAL (no such dataset, not 2-D, not numeric, several candidates: the
 * message lists them), CZ_EIO, CZ_ENOMEM. */
int cz_h5feat_open(cz_h5feat **out, const char *path, const char *dataset, cz_error *err);
void cz_h5feat_close(cz_h5feat *f); /* NULL-safe */
size_t cz_h5feat_rows(const cz_h5feat *f);
size_t cz_h5feat_cols(const cz_h5feat *f);
const char *cz_h5feat_name(const cz_h5feat *f); /* the dataset's path, e.g. "/x" */
/* Rows r0 .. r0 + n - 1 into x [n x d]. @return 0, CZ_EINVAL (a non-finite value), CZ_EIO. */
int cz_h5feat_read(cz_h5feat *f, size_t r0, size_t n, float *x, cz_error *err);

#endif
