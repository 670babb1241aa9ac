/* Feature matrices in plain HDF5 files (chainz/h5feat.h). */
#include "chainz/h5feat.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5util.h"

struct cz_h5feat {
    char path[4096], name[512];
    hid_t file, dset;
    size_t n, d;
};

void cz_h5feat_probe(const char *path, int *is_hdf5, int *is_chainz)
{
    *is_hdf5 = *is_chainz = 0;
    cz_h5_quiet();
    if (H5Fis_hdf5(path) <= 0) return;
    *is_hdf5 = 1;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return;
    char fmt[64];
    *is_chainz = cz_h5_attr_str(f, "format", fmt, sizeof fmt) == 0 && !strcmp(fmt, "chainz-data");
    if (*is_chainz && H5Lexists(f, "labels", H5P_DEFAULT) <= 0) *is_chainz = 2;
    H5Fclose(f);
}

/* the 2-D numeric datasets of a file, for the default choice and the error's list */
typedef struct {
    char list[2048]; /* "/a [10 x 4], /b [3 x 2]" */
    char first[512];
    int count;
} found2d;

static herr_t visit(hid_t obj, const char *name, const H5O_info_t *info, void *op)
{
    found2d *fd = op;
    if (info->type != H5O_TYPE_DATASET) return 0;
    hid_t ds = H5Dopen2(obj, name, H5P_DEFAULT);
    if (ds < 0) return 0;
    hid_t sp = H5Dget_space(ds), ty = H5Dget_type(ds);
    hsize_t dims[2];
    H5T_class_t cl = ty >= 0 ? H5Tget_class(ty) : H5T_NO_CLASS;
    if (sp >= 0 && H5Sget_simple_extent_ndims(sp) == 2 && (cl == H5T_FLOAT || cl == H5T_INTEGER)) {
        H5Sget_simple_extent_dims(sp, dims, NULL);
        size_t w = strlen(fd->list);
        if (w < sizeof fd->list - 600)
            snprintf(fd->list + w, sizeof fd->list - w, "%s/%s [%llu x %llu]", fd->count ? ", " : "", name,
                     (unsigned long long)dims[0], (unsigned long long)dims[1]);
        if (!fd->count) snprintf(fd->first, sizeof fd->first, "/%s", name);
        fd->count++;
    }
    if (ty >= 0) H5Tclose(ty);
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(ds);
    return 0;
}

int cz_h5feat_open(cz_h5feat **out, const char *path, const char *dataset, cz_error *err)
{
    *out = NULL;
    cz_h5feat *f = calloc(1, sizeof *f);
    if (!f) return cz_error_set(err, CZ_ENOMEM, "%s: out of memory", path);
    f->file = f->dset = -1;
    snprintf(f->path, sizeof f->path, "%s", path);
    cz_h5_quiet();
    int rc = 0;
    f->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f->file < 0) rc = cz_error_set(err, CZ_EIO, "%s: cannot open as HDF5", path);
    found2d fd = {.count = 0};
    if (!rc && H5Ovisit2(f->file, H5_INDEX_NAME, H5_ITER_NATIVE, visit, &fd, H5O_INFO_BASIC) < 0)
        rc = cz_error_set(err, CZ_EIO, "%s: cannot list its datasets", path);
    if (!rc && (!dataset || !dataset[0])) {
        if (fd.count == 1) dataset = fd.first;
        else if (!fd.count)
            rc = cz_error_set(err, CZ_EINVAL, "%s: no 2-D numeric dataset (features [N, d]) in the file", path);
        else
            rc = cz_error_set(err, CZ_EINVAL, "%s: %d 2-D datasets, choose one with --dataset: %s", path, fd.count,
                              fd.list);
    }
    if (!rc && strlen(dataset) > 500) rc = cz_error_set(err, CZ_EINVAL, "--dataset: name too long");
    if (!rc) {
        snprintf(f->name, sizeof f->name, "%s%s", dataset[0] == '/' ? "" : "/", dataset);
        htri_t ex = H5Lexists(f->file, f->name, H5P_DEFAULT) > 0 ? H5Oexists_by_name(f->file, f->name, H5P_DEFAULT) : 0;
        if (ex > 0) f->dset = H5Dopen2(f->file, f->name, H5P_DEFAULT);
        if (f->dset < 0)
            rc = cz_error_set(err, CZ_EINVAL, "%s: no dataset %s (2-D numeric datasets: %s)", path, f->name,
                              fd.count ? fd.list : "none");
    }
    if (!rc) {
        hid_t sp = H5Dget_space(f->dset), ty = H5Dget_type(f->dset);
        hsize_t dims[2] = {0, 0};
        H5T_class_t cl = ty >= 0 ? H5Tget_class(ty) : H5T_NO_CLASS;
        int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
        if (nd == 2) H5Sget_simple_extent_dims(sp, dims, NULL);
        if (nd != 2)
            rc = cz_error_set(err, CZ_EINVAL, "%s: dataset %s has rank %d, expected 2-D features [N, d]", path,
                              f->name, nd);
        else if (cl != H5T_FLOAT && cl != H5T_INTEGER)
            rc = cz_error_set(err, CZ_EINVAL, "%s: dataset %s is not numeric (features must be float or integer)",
                              path, f->name);
        else if (dims[1] == 0 || dims[1] > (1ULL << 40) || dims[0] > (1ULL << 48))
            rc = cz_error_set(err, CZ_EINVAL, "%s: dataset %s has shape [%llu, %llu]: not a feature matrix", path,
                              f->name, (unsigned long long)dims[0], (unsigned long long)dims[1]);
        f->n = (size_t)dims[0];
        f->d = (size_t)dims[1];
        if (ty >= 0) H5Tclose(ty);
        if (sp >= 0) H5Sclose(sp);
    }
    if (rc) {
        cz_h5feat_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

void cz_h5feat_close(cz_h5feat *f)
{
    if (!f) return;
    if (f->dset >= 0) H5Dclose(f->dset);
    if (f->file >= 0) H5Fclose(f->file);
    free(f);
}

size_t cz_h5feat_rows(const cz_h5feat *f) { return f->n; }
size_t cz_h5feat_cols(const cz_h5feat *f) { return f->d; }
const char *cz_h5feat_name(const cz_h5feat *f) { return f->name; }

int cz_h5feat_read(cz_h5feat *f, size_t r0, size_t n, float *x, cz_error *err)
{
    if (!n) return 0;
    if (r0 > f->n || n > f->n - r0)
        return cz_error_set(err, CZ_EINVAL, "%s: rows %zu..%zu beyond %s's %zu", f->path, r0, r0 + n - 1, f->name,
                            f->n);
    hsize_t start[2] = {r0, 0}, count[2] = {n, f->d};
    hid_t fs = H5Dget_space(f->dset), ms = H5Screate_simple(2, count, NULL);
    cz_h5_clear_cause();
    int ok = fs >= 0 && ms >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
             H5Dread(f->dset, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, x) >= 0;
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    if (!ok) {
        const char *why = cz_h5_cause();
        return cz_error_set(err, CZ_EIO, "%s: cannot read rows %zu..%zu of %s%s%s", f->path, r0, r0 + n - 1,
                            f->name, why[0] ? ": " : "", why);
    }
    for (size_t i = 0; i < n * f->d; i++)
        if (!isfinite(x[i]))
            return cz_error_set(err, CZ_EINVAL, "%s: %s[%zu, %zu] (row, column from 0) is %g: features must be finite "
                                "numbers", f->path, f->name, r0 + i / f->d, i % f->d, (double)x[i]);
    return 0;
}
