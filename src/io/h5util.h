/* Small HDF5 helpers shared by the io module (data sets, model files, checkpoints,
 * metrics). Internal to src/io: nothing else includes hdf5.h. */
#ifndef CHAINZ_IO_H5UTIL_H
#define CHAINZ_IO_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>
#include "chainz/error.h"

/* Turns off HDF5's automatic error-stack printing: chainz reports its own messages. */
void cz_h5_quiet(void);
/* The system error text (strerror) of the last failed HDF5 call since cz_h5_clear_cause,
 * e.g. "No space left on device", or "" when HDF5 gave no errno. Recorded quietly by the
 * handler cz_h5_quiet installs. */
void cz_h5_clear_cause(void);
const char *cz_h5_cause(void);

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
/* Reads a whole dataset whose total size must be `count` elements of `type` (data NULL:
 * only checks that size, reading nothing).
 * @return 0, 1 if absent, CZ_EIO (or CZ_EINVAL on a size mismatch, message in err). */
int cz_h5_read(hid_t loc, const char *name, hid_t type, size_t count, void *data,
               const char *file, cz_error *err);

/* A new HDF5 file held in memory (core driver, no backing store): HDF5 itself never
 * writes to disk, so a full disk cannot leave it with a half-flushed open file (which
 * crashed its exit handler). name only identifies it. @return the file id or < 0. */
hid_t cz_h5_create_mem(const char *name);
/* creation properties (H5P_GROUP_CREATE, H5P_DATASET_CREATE) without modification times:
 * equal values give equal bytes; < 0 on failure */
hid_t cz_h5_untimed(hid_t cls);
/* Closes the in-memory file f and writes its image to path with write(2) (errors carry
 * the errno text, e.g. "No space left on device"); with partial = 1 only the first half
 * (the fault-injection aid of checkpoints). f is closed in every case. */
int cz_h5_save_mem(hid_t f, const char *path, int partial, cz_error *err);

/* Crash-safe publication of a file written under tmp: fsync it, rename to final,
 * fsync the directory. */
int cz_file_commit(const char *tmp, const char *final, cz_error *err);
/* A temporary name beside final: "<final>.tmp.<pid>". */
void cz_tmp_name(char *buf, size_t len, const char *final);

#endif
