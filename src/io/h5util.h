/* Small HDF5 helpers shared by the io module (data sets, model files, checkpoints,
 * metrics). Internal to src/io: nothing else includes hdf5.h. */
#ifndef CHAINZ_IO_H5UTIL_H
#define CHAINZ_IO_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>
#include "chainz/error.h"

/* Turns off HDF5's automatic error-stack printing: chainz reports its own messages. */
void cz_h5_quiet(void);

/* String attribute of obj (fixed- or variable-length, as h5py writes either).
 * @return 0, 1 if absent (buf = ""), or CZ_EIO. */
int cz_h5_attr_str(hid_t obj, const char *name, char *buf, size_t len);
int cz_h5_attr_long(hid_t obj, const char *name, long *out);     /* 0, 1 absent, CZ_EIO */
int cz_h5_attr_double(hid_t obj, const char *name, double *out); /* 0, 1 absent, CZ_EIO */
int cz_h5_set_str(hid_t obj, const char *name, const char *val);
int cz_h5_set_long(hid_t obj, const char *name, long val);
int cz_h5_set_double(hid_t obj, const char *name, double val);

/* Writes a 1-D or 2-D dataset of native type `type` (contiguous). */
int cz_h5_write(hid_t loc, const char *name, hid_t type, int rank, const size_t *dims,
                const void *data);
/* Reads a whole dataset whose total size must be `count` elements of `type`.
 * @return 0, 1 if absent, CZ_EIO (or CZ_EINVAL on a size mismatch, message in err). */
int cz_h5_read(hid_t loc, const char *name, hid_t type, size_t count, void *data,
               const char *file, cz_error *err);

/* Crash-safe publication of a file written under tmp: fsync it, rename to final,
 * fsync the directory. */
int cz_file_commit(const char *tmp, const char *final, cz_error *err);
/* A temporary name beside final: "<final>.tmp.<pid>". */
void cz_tmp_name(char *buf, size_t len, const char *final);

#endif
