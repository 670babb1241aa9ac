#include "chainz/data.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data_internal.h"
#include "h5util.h"


const cz_data_info *cz_data_get_info(const cz_data *ds) { return &ds->info; }
const char *cz_data_path(const cz_data *ds) { return ds->path; }
int cz_data_is_mapped(const cz_data *ds) { return ds->map != NULL; }
const int32_t *cz_data_labels_class(const cz_data *ds) { return ds->yc; }
const float *cz_data_labels_value(const cz_data *ds) { return ds->yv; }

void cz_data_close(cz_data *ds)
{
    if (ds && ds->fd >= 0) close(ds->fd);
    if (!ds) return;
    if (ds->map) munmap((void *)ds->map, ds->map_len);
    if (ds->feat >= 0) H5Dclose(ds->feat);
    if (ds->file >= 0) H5Fclose(ds->file);
    free(ds->yc);
    free(ds->yv);
    free(ds->sorted);
    free(ds->order);
    free(ds->rowbuf);
    free(ds);
}

/* 1 if the open file descriptor fd is the very file that holds the dataset (same device
 * and inode as the file HDF5 read it from): the offset HDF5 reports is an offset in that
 * file and no other. */
static int dataset_lives_in(hid_t dset, int fd)
{
    hid_t f = H5Iget_file_id(dset);
    if (f < 0) return 0;
    void *handle = NULL;
    hid_t fapl = H5Fget_access_plist(f);
    hid_t driver = fapl >= 0 ? H5Pget_driver(fapl) : -1;
    if (fapl >= 0) H5Pclose(fapl);
    /* only the POSIX (sec2) driver hands out a file descriptor */
    int ok = driver == H5FD_SEC2 && H5Fget_vfd_handle(f, H5P_DEFAULT, &handle) >= 0 && handle;
    struct stat a, b;
    ok = ok && fstat(*(int *)handle, &a) == 0 && fstat(fd, &b) == 0 && S_ISREG(b.st_mode) &&
         a.st_dev == b.st_dev && a.st_ino == b.st_ino;
    H5Fclose(f);
    return ok;
}

/* Maps the file when /features is contiguous little-endian float32/float64 stored in the
 * opened file itself: not in external raw-data files (H5Pset_external), and the dataset
 * must belong to the file that is mapped (an external link is refused at open). */
static void try_map(cz_data *ds)
{
    hid_t dcpl = H5Dget_create_plist(ds->feat);
    int contiguous = H5Pget_layout(dcpl) == H5D_CONTIGUOUS;
    int external = H5Pget_external_count(dcpl) != 0;
    H5Pclose(dcpl);
    haddr_t off = H5Dget_offset(ds->feat);
    hid_t ft = H5Dget_type(ds->feat);
    int le = H5Tequal(ft, H5T_IEEE_F32LE) > 0 || H5Tequal(ft, H5T_IEEE_F64LE) > 0;
    H5Tclose(ft);
    if (!contiguous || external || off == HADDR_UNDEF || !le) return;
    int fd = open(ds->path, O_RDONLY);
    if (fd < 0) return;
    /* the file mapped must be the dataset's own file (not another file reached through a
     * link, nor a file put at this path since HDF5 opened it): otherwise read through HDF5 */
    if (!dataset_lives_in(ds->feat, fd)) {
        close(fd);
        return;
    }
    struct stat st;
    size_t need = (size_t)off + ds->info.n * ds->info.d * (size_t)ds->elem_size; /* checked at open */
    if (fstat(fd, &st) == 0 && (size_t)st.st_size >= need) {
        void *p = mmap(NULL, need, PROT_READ, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) {
            ds->map = p;
            ds->map_len = need;
            ds->feat_offset = (size_t)off;
            madvise(p, need, MADV_RANDOM);
        }
    }
    close(fd);
}

/* Class labels as int32, read in blocks as int64 first: HDF5's conversion would clip a
 * label of 2^32 to 2147483647, and the message must name the value in the file. */
static int read_class_labels(cz_data *ds, hid_t lab, cz_error *err)
{
    enum { BLK = 65536 };
    size_t n = ds->info.n;
    int64_t *buf = malloc((n < BLK ? n : BLK) * sizeof *buf);
    if (!buf) return cz_error_set(err, CZ_ENOMEM, "%s: out of memory for labels", ds->path);
    hid_t fsp = H5Dget_space(lab);
    int rc = 0;
    for (size_t i0 = 0; i0 < n && !rc; i0 += BLK) {
        hsize_t k = n - i0 < BLK ? n - i0 : BLK;
        hsize_t start[2] = {i0, 0}, count[2] = {k, 1};
        H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL);
        hid_t msp = H5Screate_simple(1, &k, NULL);
        if (H5Dread(lab, H5T_NATIVE_INT64, msp, fsp, H5P_DEFAULT, buf) < 0) {
            char why[200];
            int code = cz_data_read_failure(lab, why, sizeof why);
            rc = cz_error_set(err, code, "%s: cannot read /labels%s", ds->path, why);
        }
        H5Sclose(msp);
        for (size_t i = 0; !rc && i < k; i++) {
            if (buf[i] < 0 || buf[i] >= ds->info.classes)
                rc = cz_error_set(err, CZ_EINVAL, "%s: /labels row %zu is %lld, expected a class in 0..%d",
                                  ds->path, i0 + i, (long long)buf[i], ds->info.classes - 1);
            else ds->yc[i0 + i] = (int32_t)buf[i];
        }
    }
    H5Sclose(fsp);
    free(buf);
    return rc;
}

static int read_labels(cz_data *ds, cz_error *err)
{
    const char *p = ds->path;
    size_t n = ds->info.n;
    hid_t lab = H5Dopen2(ds->file, "labels", H5P_DEFAULT);
    if (lab < 0) return cz_error_set(err, CZ_EINVAL, "%s: no dataset /labels", p);
    hid_t sp = H5Dget_space(lab), ft = H5Dget_type(lab);
    int rank = H5Sget_simple_extent_ndims(sp);
    hsize_t dims[H5S_MAX_RANK] = {0, 0};
    if (rank > 0 && rank <= H5S_MAX_RANK) H5Sget_simple_extent_dims(sp, dims, NULL);
    H5T_class_t cls = H5Tget_class(ft);
    int rc = 0;
    if (rank != 1 && !(rank == 2 && dims[1] == 1))
        rc = cz_error_set(err, CZ_EINVAL, "%s: /labels must be 1-D [N], has rank %d", p, rank);
    else if (dims[0] != n)
        rc = cz_error_set(err, CZ_EINVAL, "%s: /labels has %llu rows but /features has %zu", p,
                          (unsigned long long)dims[0], n);
    else if (ds->info.task == CZ_HEAD_REGRESS) {
        if (cls != H5T_FLOAT && cls != H5T_INTEGER)
            rc = cz_error_set(err, CZ_EINVAL, "%s: /labels must be numeric for task regress", p);
        else if (!(ds->yv = malloc((n ? n : 1) * sizeof(float))))
            rc = cz_error_set(err, CZ_ENOMEM, "%s: out of memory for labels", p);
        else if (n && H5Dread(lab, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, ds->yv) < 0) {
            char why[200];
            int code = cz_data_read_failure(lab, why, sizeof why);
            rc = cz_error_set(err, code, "%s: cannot read /labels%s", p, why);
        }
        for (size_t i = 0; rc == 0 && i < n; i++)
            if (!isfinite(ds->yv[i]))
                rc = cz_error_set(err, CZ_EINVAL, "%s: /labels row %zu is not finite", p, i);
    } else {
        if (cls != H5T_INTEGER)
            rc = cz_error_set(err, CZ_EINVAL,
                              "%s: /labels must be integer class indices for task %s (found %s)",
                              p, cz_head_name(ds->info.task), cls == H5T_FLOAT ? "float" : "non-numeric");
        else if (!(ds->yc = malloc((n ? n : 1) * sizeof(int32_t))))
            rc = cz_error_set(err, CZ_ENOMEM, "%s: out of memory for labels", p);
        else if (n && (rc = read_class_labels(ds, lab, err)) != 0) {
        }
        for (size_t i = 0; rc == 0 && i < n; i++)
            if (ds->yc[i] < 0 || ds->yc[i] >= ds->info.classes)
                rc = cz_error_set(err, CZ_EINVAL,
                                  "%s: /labels row %zu is %d, expected a class in 0..%d", p, i,
                                  (int)ds->yc[i], ds->info.classes - 1);
    }
    H5Tclose(ft);
    H5Sclose(sp);
    H5Dclose(lab);
    return rc;
}

int cz_data_open(cz_data **out, const char *path, cz_error *err)
{
    *out = NULL;
    cz_h5_quiet();
    cz_data *ds = calloc(1, sizeof *ds);
    if (!ds) return cz_error_set(err, CZ_ENOMEM, "%s: out of memory", path);
    ds->file = ds->feat = -1;
    ds->fd = -1;
    snprintf(ds->path, sizeof ds->path, "%s", path);
    int rc = 0;
    if (access(path, R_OK) != 0) {
        rc = cz_error_set(err, CZ_EINVAL, "%s: cannot read the file (missing or no permission)", path);
        goto fail;
    }
    /* a FIFO or a device would block H5Fopen forever or be read as a stream */
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = cz_error_set(err, CZ_EINVAL, "%s: not a regular file (a %s): give an HDF5 file", path,
                          S_ISFIFO(st.st_mode) ? "FIFO" : S_ISDIR(st.st_mode) ? "directory"
                          : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "device" : S_ISSOCK(st.st_mode) ? "socket"
                                                                                                 : "special file");
        goto fail;
    }
    ds->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (ds->fd < 0 || fstat(ds->fd, &ds->st0) != 0) {
        rc = cz_error_set(err, CZ_EINVAL, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    ds->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (ds->file < 0) {
        rc = cz_error_set(err, CZ_EINVAL, "%s: not an HDF5 file (or it is damaged)", path);
        goto fail;
    }
    char fmt[64], task[64];
    if (cz_h5_attr_str(ds->file, "format", fmt, sizeof fmt) != 0 || strcmp(fmt, "chainz-data")) {
        rc = cz_error_set(err, CZ_EINVAL,
                          "%s: attribute format is '%s', expected 'chainz-data' (write it with "
                          "chainz prep, or set the root attributes format, task and classes)",
                          path, fmt);
        goto fail;
    }
    if (cz_h5_attr_str(ds->file, "task", task, sizeof task) != 0 ||
        cz_head_parse(task, &ds->info.task) != 0) {
        rc = cz_error_set(err, CZ_EINVAL,
                          "%s: attribute task is '%s', expected classify, ordinal or regress", path, task);
        goto fail;
    }
    /* DESIGN section 3: every chainz-data file carries its format version */
    double version = 0;
    int vrc = cz_h5_attr_double(ds->file, "version", &version);
    if (vrc != 0 || !(version >= 1) || version != floor(version)) {
        rc = cz_error_set(err, CZ_EINVAL, vrc == 1 ? "%s: no attribute version (a chainz-data file has version = 1 "
                                                     "at the root, e.g. h5py: f.attrs['version'] = 1)"
                                                   : "%s: attribute version must be a positive integer",
                          path);
        goto fail;
    }
    if (version > CZ_DATA_VERSION) {
        rc = cz_error_set(err, CZ_EINVAL, "%s: chainz-data version %.0f is newer than this chainz, which reads "
                          "version %d: upgrade chainz", path, version, CZ_DATA_VERSION);
        goto fail;
    }
    double classes = 0; /* read as double: a 64-bit count must not be truncated to int first */
    if (ds->info.task != CZ_HEAD_REGRESS) {
        if (cz_h5_attr_double(ds->file, "classes", &classes) != 0 || !(classes >= 2) || classes != floor(classes)) {
            rc = cz_error_set(err, CZ_EINVAL, "%s: attribute classes must be an integer >= 2 for task %s",
                              path, task);
            goto fail;
        }
        if (classes > CZ_DATA_MAX_CLASSES) {
            rc = cz_error_set(err, CZ_EINVAL, "%s: attribute classes is %.0f; chainz supports at most %d classes",
                              path, classes, CZ_DATA_MAX_CLASSES);
            goto fail;
        }
    }
    ds->info.classes = (int)classes;
    cz_h5_attr_str(ds->file, "source", ds->info.source, sizeof ds->info.source);

    /* /features and /labels must live in this file, complete (see cz_data_stored_here) */
    if ((rc = cz_data_stored_here(ds, "features", err)) || (rc = cz_data_stored_here(ds, "labels", err))) goto fail;
    ds->feat = H5Dopen2(ds->file, "features", H5P_DEFAULT);
    if (ds->feat < 0) {
        rc = cz_error_set(err, CZ_EINVAL, "%s: no dataset /features", path);
        goto fail;
    }
    hid_t sp = H5Dget_space(ds->feat), ft = H5Dget_type(ds->feat);
    int rank = H5Sget_simple_extent_ndims(sp);
    hsize_t dims[H5S_MAX_RANK] = {0, 0};
    if (rank > 0 && rank <= H5S_MAX_RANK) H5Sget_simple_extent_dims(sp, dims, NULL);
    H5T_class_t cls = H5Tget_class(ft);
    ds->elem_size = (int)H5Tget_size(ft);
    H5Tclose(ft);
    H5Sclose(sp);
    if (rank != 2) {
        rc = cz_error_set(err, CZ_EINVAL, "%s: /features must be 2-D [N, d], has rank %d", path, rank);
        goto fail;
    }
    if (cls != H5T_FLOAT) {
        rc = cz_error_set(err, CZ_EINVAL, "%s: /features must be float32 or float64, found a %s type",
                          path, cls == H5T_INTEGER ? "integer" : "non-numeric");
        goto fail;
    }
    if (dims[0] == 0 || dims[1] == 0) {
        rc = cz_error_set(err, CZ_EINVAL, "%s: /features is empty (%llu x %llu)", path,
                          (unsigned long long)dims[0], (unsigned long long)dims[1]);
        goto fail;
    }
    /* sizes from the file are untrusted: N * d * 8 bytes must be representable (a 2 KB
     * file may declare d = 2^61); the memory the run needs is estimated by the caller */
    size_t cells, bytes;
    if (dims[0] > SIZE_MAX || dims[1] > SIZE_MAX || __builtin_mul_overflow((size_t)dims[0], (size_t)dims[1], &cells) ||
        __builtin_mul_overflow(cells, (size_t)8, &bytes) || dims[1] > CZ_DATA_MAX_D) {
        rc = cz_error_set(err, CZ_EINVAL, "%s: /features is %llu x %llu: too large (at most d = %llu features, "
                          "and N x d x 8 bytes must fit in memory addresses)", path,
                          (unsigned long long)dims[0], (unsigned long long)dims[1], (unsigned long long)CZ_DATA_MAX_D);
        goto fail;
    }
    ds->f64 = ds->elem_size == 8;
    ds->info.n = dims[0];
    ds->info.d = dims[1];
    if ((rc = read_labels(ds, err)) != 0) goto fail;
    if ((rc = cz_data_fingerprint(ds, &ds->fp0, err)) != 0) goto fail;
    try_map(ds);
    *out = ds;
    return 0;
fail:
    cz_data_close(ds);
    return rc;
}

static int check_row(const cz_data *ds, const float *x, uint64_t row, cz_error *err)
{
    for (size_t j = 0; j < ds->info.d; j++)
        if (!isfinite(x[j])) {
            /* a float64 file: a finite value beyond float32's range became inf on conversion;
             * read the element itself to say which */
            double v = NAN;
            if (ds->f64) {
                hid_t fsp = H5Dget_space(ds->feat);
                hsize_t start[2] = {row, j}, count[2] = {1, 1}, one = 1;
                H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL);
                hid_t msp = H5Screate_simple(1, &one, NULL);
                if (H5Dread(ds->feat, H5T_NATIVE_DOUBLE, msp, fsp, H5P_DEFAULT, &v) < 0) v = NAN;
                H5Sclose(msp);
                H5Sclose(fsp);
            }
            if (isfinite(v))
                return cz_error_set(err, CZ_EINVAL, "%s: /features row %llu column %zu is %.9g, out of float32 "
                                    "range (|x| <= %g)", ds->path, (unsigned long long)row, j, v, (double)FLT_MAX);
            return cz_error_set(err, CZ_EINVAL, "%s: /features row %llu column %zu is not finite (%g)",
                                ds->path, (unsigned long long)row, j, (double)x[j]);
        }
    return 0;
}

static int cmp_idx(const void *a, const void *b, void *ctx)
{
    const uint64_t *v = ctx;
    uint64_t x = v[*(const size_t *)a], y = v[*(const size_t *)b];
    return x < y ? -1 : x > y;
}

/* insertion sort of positions by row: n is a micro-batch, small */
static void sort_positions(size_t *order, size_t n, const uint64_t *idx)
{
    for (size_t i = 1; i < n; i++) {
        size_t v = order[i], j = i;
        while (j > 0 && cmp_idx(&order[j - 1], &v, (void *)idx) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
}

/* A mapped file truncated in place turns the next read of a vanished page into SIGBUS.
 * While rows are copied from the mapping, SIGBUS jumps back to the read, which then fails
 * with a message naming the file; elsewhere it keeps its default action. */
static sigjmp_buf bus_jump;
static volatile sig_atomic_t bus_armed = 0;

static void on_sigbus(int sig)
{
    if (bus_armed) {
        bus_armed = 0;
        siglongjmp(bus_jump, 1);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_bus_handler(void)
{
    static int installed = 0;
    if (installed) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigbus;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
    installed = 1;
}

static int copy_mapped_rows(cz_data *ds, const uint64_t *idx, size_t n, float *x, cz_error *err)
{
    size_t d = ds->info.d;
    for (size_t r = 0; r < n; r++) {
        const unsigned char *src = ds->map + ds->feat_offset + idx[r] * d * (size_t)ds->elem_size;
        float *dst = x + r * d;
        if (ds->elem_size == 4) memcpy(dst, src, d * sizeof(float));
        else
            for (size_t j = 0; j < d; j++) {
                double v;
                memcpy(&v, src + 8 * j, 8);
                dst[j] = (float)v;
            }
        int rc = check_row(ds, dst, idx[r], err);
        if (rc) return rc;
    }
    return 0;
}

int cz_data_read_rows(cz_data *ds, const uint64_t *idx, size_t n, float *x, cz_error *err)
{
    size_t d = ds->info.d;
    for (size_t r = 0; r < n; r++)
        if (idx[r] >= ds->info.n)
            return cz_error_set(err, CZ_EINVAL, "%s: row %llu out of range (N = %zu)", ds->path,
                                (unsigned long long)idx[r], ds->info.n);
    if (ds->mem) { /* the loaded matrix: the same float32 values a hyperslab read gives */
        for (size_t r = 0; r < n; r++) {
            memcpy(x + r * d, ds->mem + idx[r] * d, d * sizeof(float));
            int rc = check_row(ds, x + r * d, idx[r], err);
            if (rc) return rc;
        }
        return cz_data_unchanged(ds, err);
    }
    if (ds->map) {
        install_bus_handler();
        if (sigsetjmp(bus_jump, 1)) /* SIGBUS inside the copy: the file shrank under the mapping */
            return cz_error_set(err, CZ_EIO, "%s: the file was truncated or rewritten while chainz was "
                                "reading it (SIGBUS reading its mapped rows); restore it (a training run "
                                "then resumes with --resume auto)",
                                ds->path);
        bus_armed = 1;
        int rc = copy_mapped_rows(ds, idx, n, x, err);
        bus_armed = 0;
        return rc ? rc : cz_data_unchanged(ds, err);
    }
    /* HDF5 returns a point selection in file order: read sorted, then scatter */
    if (n > ds->scratch_rows) {
        free(ds->sorted);
        free(ds->order);
        free(ds->rowbuf);
        ds->sorted = malloc(n * sizeof *ds->sorted);
        ds->order = malloc(n * sizeof *ds->order);
        ds->rowbuf = malloc(n * d * sizeof *ds->rowbuf);
        if (!ds->sorted || !ds->order || !ds->rowbuf) {
            ds->scratch_rows = 0;
            return cz_error_set(err, CZ_ENOMEM, "%s: out of memory reading rows", ds->path);
        }
        ds->scratch_rows = n;
    }
    for (size_t r = 0; r < n; r++) ds->order[r] = r;
    sort_positions(ds->order, n, idx);
    hid_t fsp = H5Dget_space(ds->feat);
    H5Sselect_none(fsp);
    for (size_t r = 0; r < n; r++) {
        hsize_t start[2] = {idx[ds->order[r]], 0}, count[2] = {1, d};
        H5Sselect_hyperslab(fsp, H5S_SELECT_OR, start, NULL, count, NULL);
    }
    hsize_t mdims[2] = {n, d};
    hid_t msp = H5Screate_simple(2, mdims, NULL);
    herr_t st = H5Dread(ds->feat, H5T_NATIVE_FLOAT, msp, fsp, H5P_DEFAULT, ds->rowbuf);
    H5Sclose(msp);
    H5Sclose(fsp);
    if (st < 0) return cz_error_set(err, CZ_EIO, "%s: cannot read %zu rows of /features", ds->path, n);
    /* duplicates collapse in a selection union: the trainer never asks for them */
    for (size_t r = 0; r < n; r++) {
        memcpy(x + ds->order[r] * d, ds->rowbuf + r * d, d * sizeof(float));
        int rc = check_row(ds, x + ds->order[r] * d, idx[ds->order[r]], err);
        if (rc) return rc;
    }
    return cz_data_unchanged(ds, err);
}

int cz_data_write(const char *path, const float *x, const int32_t *labels_class,
                  const float *labels_value, size_t n, size_t d, cz_head task, int classes,
                  const char *source, cz_error *err)
{
    cz_h5_quiet();
    char tmp[4200];
    cz_tmp_name(tmp, sizeof tmp, path);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return cz_error_set(err, CZ_EIO, "%s: cannot create %s", path, tmp);
    size_t dims[2] = {n, d};
    int rc = cz_h5_write(f, "features", H5T_NATIVE_FLOAT, 2, dims, x);
    if (!rc) {
        if (task == CZ_HEAD_REGRESS) rc = cz_h5_write(f, "labels", H5T_NATIVE_FLOAT, 1, dims, labels_value);
        else rc = cz_h5_write(f, "labels", H5T_NATIVE_INT32, 1, dims, labels_class);
    }
    if (!rc)
        rc = cz_h5_set_str(f, "format", "chainz-data") | cz_h5_set_long(f, "version", 1) |
             cz_h5_set_str(f, "task", cz_head_name(task)) |
             cz_h5_set_long(f, "classes", task == CZ_HEAD_REGRESS ? 0 : classes) |
             cz_h5_set_str(f, "source", source ? source : "") |
             cz_h5_set_str(f, "features_meaning", "float32 [N, d]: one sample per row") |
             cz_h5_set_str(f, "labels_meaning",
                           task == CZ_HEAD_REGRESS ? "float32 [N]: target value"
                                                   : "int32 [N]: class index 0..K-1");
    if (H5Fclose(f) < 0 && !rc) rc = CZ_EIO;
    if (rc) {
        unlink(tmp);
        return cz_error_set(err, CZ_EIO, "%s: writing the data set failed", path);
    }
    rc = cz_file_commit(tmp, path, err);
    if (rc) unlink(tmp);
    return rc;
}
