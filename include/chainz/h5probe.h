/* What an HDF5 file is, by its root (`chainz inspect`): the `format` and `version`
 * attributes that every chainz file carries, every root attribute as short text and the
 * root's members, so that a file chainz does not know can still be described. Nothing is
 * read beyond the root; a file that is not HDF5 is told apart without HDF5 noise. */
#ifndef CHAINZ_H5PROBE_H
#define CHAINZ_H5PROBE_H

#include <stdint.h>
#include "chainz/error.h"

#define CZ_PROBE_MAX_ITEMS 64

typedef struct {
    int is_hdf5;        /* 0: the file lacks HDF5's signature (nothing else is set) */
    uint64_t bytes;     /* file size */
    char format[64];    /* root attribute format ("chainz-checkpoint", ...), "" if absent */
    long version;       /* root attribute version, 0 if absent or not an integer */
    int n_attrs;        /* root attributes, in name order (at most CZ_PROBE_MAX_ITEMS) */
    char attr_name[CZ_PROBE_MAX_ITEMS][64];
    char attr_value[CZ_PROBE_MAX_ITEMS][96]; /* "text", 3, 0.5 or "<float64 [2x3]>"; cut with ... */
    int n_objects;      /* root members, in name order (at most CZ_PROBE_MAX_ITEMS) */
    char object_name[CZ_PROBE_MAX_ITEMS][64];
    char object_kind[CZ_PROBE_MAX_ITEMS][12]; /* "group", "dataset", "datatype", "link" */
    int more_attrs, more_objects; /* 1 when the lists were cut */
} cz_h5_probe;

/* Fills *p for path. @return 0 (also for a regular file that is not HDF5: p->is_hdf5 = 0);
 * CZ_EINVAL naming the file when it is missing, unreadable, not a regular file, or has
 * HDF5's signature but cannot be opened (truncated or damaged). */
int cz_h5_probe_file(const char *path, cz_h5_probe *p, cz_error *err);
/* 1 if the probed root has a member called name. */
int cz_h5_probe_has(const cz_h5_probe *p, const char *name);

#endif
