/* Describing an HDF5 file by its root (h5probe.h). */
#include "chainz/h5probe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5util.h"

static void cut(char *buf, size_t len, const char *s)
{
    if (strlen(s) < len) {
        snprintf(buf, len, "%s", s);
        return;
    }
    /* at a character's start: half a UTF-8 sequence would make the text (and JSON) invalid */
    size_t n = len - 4;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    snprintf(buf, len, "%.*s...", (int)n, s);
}

static const char *type_name(hid_t t)
{
    size_t sz = H5Tget_size(t);
    switch (H5Tget_class(t)) {
    case H5T_INTEGER:
        return H5Tget_sign(t) == H5T_SGN_NONE ? (sz == 8 ? "uint64" : sz == 4 ? "uint32" : "uint")
                                              : (sz == 8 ? "int64" : sz == 4 ? "int32" : "int");
    case H5T_FLOAT: return sz == 8 ? "float64" : sz == 4 ? "float32" : "float";
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    case H5T_ENUM: return "enum";
    default: return "other";
    }
}

/* The attribute's value as short text: a scalar string, integer or float as such, anything
 * else as its type and shape. */
static void attr_text(hid_t obj, const char *name, char *buf, size_t len)
{
    char s[256];
    long l;
    double v;
    if (cz_h5_attr_str(obj, name, s, sizeof s) == 0) {
        cut(buf, len, s);
        return;
    }
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) {
        snprintf(buf, len, "<unreadable>");
        return;
    }
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    H5T_class_t cls = H5Tget_class(t);
    if (n == 1 && cls == H5T_INTEGER && cz_h5_attr_long(obj, name, &l) == 0) {
        snprintf(buf, len, "%ld", l);
    } else if (n == 1 && cls == H5T_FLOAT && cz_h5_attr_double(obj, name, &v) == 0) {
        snprintf(buf, len, "%.9g", v);
    } else {
        hsize_t dims[8] = {0};
        int r = H5Sget_simple_extent_ndims(sp);
        if (r > 8) r = 8;
        if (r > 0) H5Sget_simple_extent_dims(sp, dims, NULL);
        int w = snprintf(buf, len, "<%s [", type_name(t));
        for (int i = 0; i < r && w > 0 && (size_t)w < len; i++)
            w += snprintf(buf + w, len - (size_t)w, "%s%llu", i ? "x" : "", (unsigned long long)dims[i]);
        if (w > 0 && (size_t)w < len) snprintf(buf + w, len - (size_t)w, "]>");
    }
    H5Sclose(sp);
    H5Tclose(t);
    H5Aclose(a);
}

static herr_t on_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data)
{
    (void)info;
    cz_h5_probe *p = data;
    if (p->n_attrs == CZ_PROBE_MAX_ITEMS) {
        p->more_attrs = 1;
        return 1; /* stop */
    }
    cut(p->attr_name[p->n_attrs], sizeof p->attr_name[0], name);
    attr_text(loc, name, p->attr_value[p->n_attrs], sizeof p->attr_value[0]);
    p->n_attrs++;
    return 0;
}

static herr_t on_link(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    cz_h5_probe *p = data;
    if (p->n_objects == CZ_PROBE_MAX_ITEMS) {
        p->more_objects = 1;
        return 1;
    }
    const char *kind = "link";
    /* a soft or external link is not followed: it may point nowhere */
    hid_t o = info->type == H5L_TYPE_HARD ? H5Oopen(g, name, H5P_DEFAULT) : -1;
    if (o >= 0) {
        H5I_type_t t = H5Iget_type(o);
        kind = t == H5I_GROUP ? "group" : t == H5I_DATASET ? "dataset" : t == H5I_DATATYPE ? "datatype" : "object";
        H5Oclose(o);
    }
    cut(p->object_name[p->n_objects], sizeof p->object_name[0], name);
    snprintf(p->object_kind[p->n_objects], sizeof p->object_kind[0], "%s", kind);
    p->n_objects++;
    return 0;
}

int cz_h5_probe_file(const char *path, cz_h5_probe *p, cz_error *err)
{
    memset(p, 0, sizeof *p);
    cz_h5_quiet();
    struct stat sb;
    /* a FIFO would block HDF5's open: only a regular file is read */
    if (stat(path, &sb) != 0) return cz_error_set(err, CZ_EINVAL, "%s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return cz_error_set(err, CZ_EINVAL, "%s: not a regular file (%s)", path,
                            S_ISDIR(sb.st_mode) ? "a directory" : S_ISFIFO(sb.st_mode) ? "a FIFO" : "a device or socket");
    if (access(path, R_OK) != 0) return cz_error_set(err, CZ_EINVAL, "%s: cannot read the file: %s", path, strerror(errno));
    p->bytes = (uint64_t)sb.st_size;
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0) return 0;
    p->is_hdf5 = 1;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return cz_error_set(err, CZ_EINVAL, "%s: has HDF5's signature but cannot be opened (truncated or damaged?)",
                            path);
    if (cz_h5_attr_str(f, "format", p->format, sizeof p->format)) p->format[0] = 0;
    if (cz_h5_attr_long(f, "version", &p->version)) {
        double v = 0; /* h5py may store it as a float */
        p->version = cz_h5_attr_double(f, "version", &v) == 0 && v >= 0 && v < 1e9 && v == (long)v ? (long)v : 0;
    }
    hsize_t idx = 0;
    H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, &idx, on_attr, p);
    idx = 0;
    H5Literate(f, H5_INDEX_NAME, H5_ITER_INC, &idx, on_link, p);
    H5Fclose(f);
    return 0;
}

int cz_h5_probe_has(const cz_h5_probe *p, const char *name)
{
    for (int i = 0; i < p->n_objects; i++)
        if (!strcmp(p->object_name[i], name)) return 1;
    return 0;
}
