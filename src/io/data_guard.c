/* What a chainz-data file must be, and stay, while chainz reads it: values stored in the
 * file itself, and no change of content under a running job (data_internal.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data_internal.h"

/* Where a dataset's values are kept. Through an external link HDF5 opens another file's
 * dataset (whose offsets mean nothing in this one); from external raw-data files or a
 * virtual dataset's source files HDF5 returns fill values, without an error, where those
 * files are missing or short: a run would train on zeros. Accepted: values stored in the
 * file; external raw files that exist and hold every byte the dataset needs (their later
 * changes are not watched, only this file's); a virtual dataset whose sources all lie in
 * this file ("."). Refused with the reason otherwise. */
int cz_data_stored_here(cz_data *ds, const char *name, cz_error *err)
{
    const char *p = ds->path;
    H5L_info_t li;
    if (H5Lexists(ds->file, name, H5P_DEFAULT) <= 0) return 0; /* "no dataset" is said later */
    if (H5Lget_info(ds->file, name, &li, H5P_DEFAULT) >= 0 && li.type == H5L_TYPE_EXTERNAL) {
        char target[1024] = "";
        const char *fname = NULL, *oname = NULL;
        if (li.u.val_size < sizeof target && H5Lget_val(ds->file, name, target, sizeof target, H5P_DEFAULT) >= 0)
            H5Lunpack_elink_val(target, li.u.val_size, NULL, &fname, &oname);
        return cz_error_set(err, CZ_EINVAL,
                            "%s: /%s is an external link (to %s:%s); chainz reads only datasets stored in "
                            "the data file itself (copy it in, e.g. h5copy)", p, name, fname ? fname : "?",
                            oname ? oname : "?");
    }
    hid_t dset = H5Dopen2(ds->file, name, H5P_DEFAULT);
    if (dset < 0) return 0;
    hid_t dcpl = H5Dget_create_plist(dset), sp = H5Dget_space(dset), ft = H5Dget_type(dset);
    hssize_t npoints = H5Sget_simple_extent_npoints(sp);
    size_t need = npoints > 0 ? (size_t)npoints * H5Tget_size(ft) : 0;
    int rc = 0, n_ext = dcpl >= 0 ? H5Pget_external_count(dcpl) : 0;
    char why[600] = "";
    for (int i = 0; i < n_ext && !why[0]; i++) {
        char fname[512] = "";
        off_t off = 0;
        hsize_t size = 0;
        struct stat st;
        if (H5Pget_external(dcpl, (unsigned)i, sizeof fname, fname, &off, &size) < 0) {
            snprintf(why, sizeof why, "its external raw-data file %d cannot be read", i);
            break;
        }
        size_t part = size == H5F_UNLIMITED || size > need ? need : (size_t)size;
        if (stat(fname, &st) != 0)
            snprintf(why, sizeof why, "its external raw-data file %.400s is missing (%s)", fname, strerror(errno));
        else if ((size_t)st.st_size < (size_t)off + part)
            snprintf(why, sizeof why, "its external raw-data file %.400s holds %lld bytes, %zu needed", fname,
                     (long long)st.st_size, (size_t)off + part);
        need -= part;
    }
    if (!why[0] && dcpl >= 0 && H5Pget_layout(dcpl) == H5D_VIRTUAL) {
        size_t count = 0;
        H5Pget_virtual_count(dcpl, &count);
        for (size_t i = 0; i < count && !why[0]; i++) {
            char fname[512] = "";
            H5Pget_virtual_filename(dcpl, i, fname, sizeof fname);
            if (strcmp(fname, "."))
                snprintf(why, sizeof why, "it is a virtual dataset with values in %.400s", fname);
        }
    }
    if (why[0])
        rc = cz_error_set(err, CZ_EINVAL,
                          "%s: /%s keeps values outside the file: %s; where such files are missing or short "
                          "HDF5 reads fill values silently, so chainz refuses it (copy the values in, e.g. "
                          "h5py: g['%s'] = f['%s'][:])", p, name, why, name, name);
    H5Tclose(ft);
    H5Sclose(sp);
    if (dcpl >= 0) H5Pclose(dcpl);
    H5Dclose(dset);
    return rc;
}

/* A fingerprint of what this run learns from: every label as stored and 64 evenly spaced
 * feature rows, read through HDF5 (FNV-1a 64 of the bytes). */
int cz_data_fingerprint(cz_data *ds, uint64_t *fp, cz_error *err)
{
    size_t n = ds->info.n, d = ds->info.d;
    uint64_t h = 1469598103934665603ULL;
    hid_t lab = H5Dopen2(ds->file, "labels", H5P_DEFAULT);
    double *buf = malloc((n > 64 ? n : 64) * (d > 1 ? d : 1) * sizeof *buf);
    int rc = lab < 0 || !buf;
    if (!rc) rc = H5Dread(lab, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0;
    for (size_t i = 0; !rc && i < n * sizeof(double); i++) h = (h ^ ((unsigned char *)buf)[i]) * 1099511628211ULL;
    if (!rc) {
        hid_t fsp = H5Dget_space(ds->feat);
        size_t rows = n < 64 ? n : 64;
        H5Sselect_none(fsp);
        for (size_t k = 0; k < rows; k++) {
            hsize_t start[2] = {rows > 1 ? k * (n - 1) / (rows - 1) : 0, 0}, count[2] = {1, d};
            H5Sselect_hyperslab(fsp, H5S_SELECT_OR, start, NULL, count, NULL);
        }
        hsize_t mdims[2] = {rows, d};
        hid_t msp = H5Screate_simple(2, mdims, NULL);
        rc = H5Dread(ds->feat, H5T_NATIVE_DOUBLE, msp, fsp, H5P_DEFAULT, buf) < 0;
        H5Sclose(msp);
        H5Sclose(fsp);
        for (size_t i = 0; !rc && i < rows * d * sizeof(double); i++)
            h = (h ^ ((unsigned char *)buf)[i]) * 1099511628211ULL;
    }
    free(buf);
    if (lab >= 0) H5Dclose(lab);
    *fp = h;
    return rc ? cz_error_set(err, CZ_EIO, "%s: cannot read /labels or /features to check the file", ds->path) : 0;
}

/* A file written over in place while it is read (cp onto it, truncate and refill, a
 * same-size rewrite, even one that puts the old modification time back) gives rows of two
 * versions paired with the labels read at open, or, past the end of a shortened chunked
 * file, HDF5's zeros without an error. One fstat after each read (a microsecond next to
 * the read) notices a change of size, modification time or status-change time (which
 * utime cannot set back). Then the content is checked: the labels and 64 sampled rows
 * against their fingerprint at open. Unchanged content (a touch, a backup tool resetting
 * times) is accepted and becomes the new reference; changed content stops the run. A file
 * replaced by rename keeps the old inode open and is still read consistently. */
int cz_data_unchanged(cz_data *ds, cz_error *err)
{
    struct stat st;
    if (fstat(ds->fd, &st) != 0)
        return cz_error_set(err, CZ_EIO, "%s: cannot stat the open file: %s", ds->path, strerror(errno));
    if (st.st_size == ds->st0.st_size && st.st_mtim.tv_sec == ds->st0.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == ds->st0.st_mtim.tv_nsec && st.st_ctim.tv_sec == ds->st0.st_ctim.tv_sec &&
        st.st_ctim.tv_nsec == ds->st0.st_ctim.tv_nsec)
        return 0;
    uint64_t fp = 0;
    cz_error e2 = {0};
    if (st.st_size == ds->st0.st_size && cz_data_fingerprint(ds, &fp, &e2) == 0 && fp == ds->fp0) {
        ds->st0 = st; /* touched, same content */
        return 0;
    }
    return cz_error_set(err, CZ_EIO, "%s: the file changed while chainz was reading it (%lld -> %lld bytes, "
                        "%s): its rows would no longer match the labels read at start; put the original back "
                        "(a training run then resumes with --resume auto) or start anew",
                        ds->path, (long long)ds->st0.st_size, (long long)st.st_size,
                        st.st_size != ds->st0.st_size ? "resized" : "its labels or sampled rows differ");
}
