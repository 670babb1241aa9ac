#include "h5util.h"

#include "chainz/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The operating system's reason for the last failed HDF5 call, recorded by the automatic
 * error handler while the error stack still holds it (any later HDF5 call clears it). */
static char last_cause[256];

static herr_t cause_walk(unsigned n, const H5E_error2_t *e, void *data)
{
    (void)n;
    (void)data;
    const char *p = e->desc ? strstr(e->desc, "errno = ") : NULL;
    if (p) {
        int code = atoi(p + 8);
        if (code > 0) snprintf(last_cause, sizeof last_cause, "%s", strerror(code));
    }
    return 0;
}

static herr_t record_cause(hid_t stack, void *data)
{
    (void)data;
    H5Ewalk2(stack, H5E_WALK_DOWNWARD, cause_walk, NULL);
    return 0;
}

void cz_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, record_cause, NULL); }

void cz_h5_clear_cause(void) { last_cause[0] = 0; }

const char *cz_h5_cause(void) { return last_cause; }

int cz_h5_attr_str(hid_t obj, const char *name, char *buf, size_t len)
{
    buf[0] = 0;
    if (H5Aexists(obj, name) <= 0) return 1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return CZ_EIO;
    hid_t ft = H5Aget_type(a);
    hid_t sp = H5Aget_space(a);
    int rc = CZ_EIO;
    /* one string only: an array of strings (h5py attrs['x'] = [...]) is not a value here */
    if (H5Tget_class(ft) != H5T_STRING || H5Sget_simple_extent_npoints(sp) != 1) goto out;
    if (H5Tis_variable_str(ft) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(ft));
        char *s = NULL;
        if (H5Aread(a, mt, &s) >= 0 && s) {
            snprintf(buf, len, "%s", s);
            H5free_memory(s);
            rc = 0;
        }
        H5Tclose(mt);
    } else {
        size_t n = H5Tget_size(ft);
        char *tmp = calloc(n + 1, 1);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, n + 1);
        H5Tset_cset(mt, H5Tget_cset(ft)); /* HDF5 will not convert UTF-8 <-> ASCII */
        if (tmp && H5Aread(a, mt, tmp) >= 0) {
            snprintf(buf, len, "%s", tmp);
            rc = 0;
        }
        H5Tclose(mt);
        free(tmp);
    }
out:
    H5Sclose(sp);
    H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

static int attr_num(hid_t obj, const char *name, hid_t mt, void *out)
{
    if (H5Aexists(obj, name) <= 0) return 1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return CZ_EIO;
    hid_t sp = H5Aget_space(a);
    hid_t ft = H5Aget_type(a);
    H5T_class_t cls = H5Tget_class(ft);
    int ok = H5Sget_simple_extent_npoints(sp) == 1 && (cls == H5T_INTEGER || cls == H5T_FLOAT) &&
             H5Aread(a, mt, out) >= 0;
    H5Tclose(ft);
    H5Sclose(sp);
    H5Aclose(a);
    return ok ? 0 : CZ_EIO;
}

int cz_h5_attr_long(hid_t obj, const char *name, long *out) { return attr_num(obj, name, H5T_NATIVE_LONG, out); }
int cz_h5_attr_double(hid_t obj, const char *name, double *out) { return attr_num(obj, name, H5T_NATIVE_DOUBLE, out); }

static int set_attr(hid_t obj, const char *name, hid_t type, const void *val)
{
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = (a >= 0 && H5Awrite(a, type, val) >= 0) ? 0 : CZ_EIO;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return rc;
}

int cz_h5_set_str(hid_t obj, const char *name, const char *val)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(val) + 1);
    H5Tset_cset(t, H5T_CSET_UTF8);
    int rc = set_attr(obj, name, t, val);
    H5Tclose(t);
    return rc;
}

int cz_h5_set_long(hid_t obj, const char *name, long val) { return set_attr(obj, name, H5T_NATIVE_LONG, &val); }
int cz_h5_set_double(hid_t obj, const char *name, double val) { return set_attr(obj, name, H5T_NATIVE_DOUBLE, &val); }

int cz_h5_write(hid_t loc, const char *name, hid_t type, int rank, const size_t *dims,
                const void *data)
{
    hsize_t hd[2] = {dims[0], rank > 1 ? dims[1] : 1};
    hid_t sp = H5Screate_simple(rank, hd, NULL);
    hid_t ds = H5Dcreate2(loc, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = (ds >= 0 && H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0) ? 0 : CZ_EIO;
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(sp);
    return rc;
}

int cz_h5_read(hid_t loc, const char *name, hid_t type, size_t count, void *data,
               const char *file, cz_error *err)
{
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0) return 1;
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (ds < 0) return cz_error_set(err, CZ_EIO, "%s: cannot open dataset %s", file, name);
    hid_t sp = H5Dget_space(ds);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    int rc = 0;
    if (n != (hssize_t)count)
        rc = cz_error_set(err, CZ_EINVAL, "%s: dataset %s has %lld elements, expected %zu", file,
                          name, (long long)n, count);
    else if (count && data && H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        rc = cz_error_set(err, CZ_EIO, "%s: cannot read dataset %s", file, name);
    H5Sclose(sp);
    H5Dclose(ds);
    return rc;
}

hid_t cz_h5_create_mem(const char *name)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return -1;
    H5Pset_fapl_core(fapl, 1 << 20, 0);
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    hid_t f = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    return f;
}

int cz_h5_save_mem(hid_t f, const char *path, int partial, cz_error *err)
{
    ssize_t n = H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 ? -1 : H5Fget_file_image(f, NULL, 0);
    unsigned char *img = n > 0 ? malloc((size_t)n) : NULL;
    if (img && H5Fget_file_image(f, img, (size_t)n) != n) n = -1;
    H5Fclose(f);
    if (n <= 0 || !img) {
        free(img);
        return cz_error_set(err, n > 0 ? CZ_ENOMEM : CZ_EIO, "%s: cannot build the file image", path);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644); /* never through a link */
    if (fd < 0) {
        free(img);
        return cz_error_set(err, CZ_EIO, "%s: cannot create: %s", path, strerror(errno));
    }
    size_t want = partial ? (size_t)n / 2 : (size_t)n, done = 0;
    int e = 0;
    while (done < want && !e) {
        ssize_t w = write(fd, img + done, want - done);
        if (w > 0) done += (size_t)w;
        else if (w < 0 && errno != EINTR) e = errno;
        else if (w == 0) e = EIO;
    }
    if (!e && fsync(fd) != 0) e = errno;
    if (close(fd) != 0 && !e) e = errno;
    free(img);
    if (e) {
        unlink(path);
        return cz_error_set(err, CZ_EIO, "%s: cannot write: %s", path, strerror(e));
    }
    return 0;
}

void cz_tmp_name(char *buf, size_t len, const char *final)
{
    snprintf(buf, len, "%s.tmp.%ld", final, (long)getpid());
}

int cz_file_commit(const char *tmp, const char *final, cz_error *err)
{
    int fd = open(tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        return cz_error_set(err, CZ_EIO, "%s: cannot fsync: %s", tmp, strerror(e));
    }
    close(fd);
    if (rename(tmp, final) != 0)
        return cz_error_set(err, CZ_EIO, "cannot rename %s to %s: %s", tmp, final, strerror(errno));
    char dirbuf[4096];
    snprintf(dirbuf, sizeof dirbuf, "%s", final);
    int dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) { /* the rename itself must survive a crash */
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

int cz_write_text_atomic(const char *path, const char *text, cz_error *err)
{
    char tmp[4200];
    cz_tmp_name(tmp, sizeof tmp, path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644); /* never through a link */
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        int e = errno;
        if (fd >= 0) close(fd);
        return cz_error_set(err, e == ELOOP ? CZ_EINVAL : CZ_EIO, "%s: cannot write: %s", tmp,
                            e == ELOOP ? "a symbolic link (chainz writes through no link)" : strerror(e));
    }
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    if (bad) {
        unlink(tmp);
        return cz_error_set(err, CZ_EIO, "%s: cannot write: %s", path, strerror(errno));
    }
    int rc = cz_file_commit(tmp, path, err);
    if (rc) unlink(tmp);
    return rc;
}

hid_t cz_h5_untimed(hid_t cls)
{
    hid_t p = H5Pcreate(cls);
    if (p >= 0) H5Pset_obj_track_times(p, 0);
    return p;
}
