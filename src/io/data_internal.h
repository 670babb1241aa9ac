/* The data reader's state, shared by data.c (open, read) and data_guard.c (what the
 * file must be and stay while it is read). Private to src/io. */
#ifndef CHAINZ_IO_DATA_INTERNAL_H
#define CHAINZ_IO_DATA_INTERNAL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "chainz/data.h"

struct cz_data {
    char path[4096];
    cz_data_info info;
    hid_t file, feat;
    int elem_size;          /* 4 or 8 bytes per feature in the file */
    int f64;                /* /features is float64: values beyond float32's range are named */
    const unsigned char *map;  /* whole-file read-only mapping, or NULL */
    size_t map_len;
    size_t feat_offset;     /* byte offset of /features in the file */
    const float *mem;       /* the whole matrix [N x d] in memory (borrowed, data_shared.c), or NULL */
    int32_t *yc;
    float *yv;
    uint64_t *sorted;       /* scratch for hyperslab reads */
    size_t *order;
    float *rowbuf;
    size_t scratch_rows;
    int fd;                 /* our own descriptor: fstat after each read (see cz_data_unchanged) */
    struct stat st0;        /* the file as it was at open (or at the last content check) */
    uint64_t fp0;           /* cz_data_fingerprint at open */
};

/* Why a read of dataset `dset` may have failed: "" when it is not chunked, else " (chunked,
 * FILTERS)"; returns CZ_EINVAL when a filter is not available to this HDF5 (the file needs
 * a plugin: an input problem), else CZ_EIO. */
int cz_data_read_failure(hid_t dset, char *buf, size_t len);
/* 0, or CZ_EINVAL naming why dataset `name` keeps values outside the file. */
int cz_data_stored_here(cz_data *ds, const char *name, cz_error *err);
/* FNV-1a 64 of every label as stored and 64 evenly spaced feature rows. */
int cz_data_fingerprint(cz_data *ds, uint64_t *fp, cz_error *err);
/* 0 while the open file is unchanged (or only touched); CZ_EIO naming the file otherwise. */
int cz_data_unchanged(cz_data *ds, cz_error *err);

#endif
