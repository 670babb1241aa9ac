/* h5bytes: a digest of the stored BYTES of every dataset and attribute under HDF5 groups,
 * one line per object, for the bitwise claims of the shell tests (tests/lib/bitwise.sh).
 *
 *   h5bytes [-x PATH]... FILE [OBJECT]...     OBJECT defaults to "/"
 *
 * Each line: "<path> <class>/<size> [<dims>] fnv1a64=<hex>", where <path> is "/a/b" for a
 * dataset and "/a/b@name" for an attribute of /a/b, in name order (so two files holding the
 * same objects print the same lines in the same order). -x drops one dataset, attribute
 * ("/@time") or group (everything under it), e.g. the wall-clock "seconds" column.
 *
 * Why bytes and not values (h5dump text, h5diff): h5dump prints floats with ~6 significant
 * digits, so most one-ulp differences vanish in its text; h5diff without -d/-p compares
 * values exactly but 0.0 == -0.0 for it, NaNs need -N and its exit status folds "not
 * comparable" objects into warnings. Reading each dataset with its own file type makes
 * HDF5 copy the stored bytes without any conversion: any bit that differs, differs here.
 * Variable-length strings (config JSON) are digested by their characters. FNV-1a 64 is the
 * hash the checkpoints' own checksum uses; it only has to tell accidental differences.
 * Exit status: 0 printed, 2 on an error (unreadable file, missing object, unsupported type). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#define MAX_EXCLUDE 64

static const char *excludes[MAX_EXCLUDE];
static int n_excludes;
static int failed;

static int excluded(const char *path)
{
    for (int i = 0; i < n_excludes; i++) {
        size_t n = strlen(excludes[i]);
        if (!strcmp(path, excludes[i])) return 1;
        /* a group excludes what lies under it ("/history" drops "/history/seconds") */
        if (n > 1 && !strncmp(path, excludes[i], n) && (path[n] == '/' || path[n] == '@')) return 1;
    }
    return 0;
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static const char *class_name(H5T_class_t c)
{
    switch (c) {
    case H5T_INTEGER: return "int";
    case H5T_FLOAT: return "float";
    case H5T_STRING: return "string";
    case H5T_BITFIELD: return "bitfield";
    case H5T_OPAQUE: return "opaque";
    case H5T_COMPOUND: return "compound";
    case H5T_ENUM: return "enum";
    case H5T_ARRAY: return "array";
    default: return "other";
    }
}

/* digest of one dataset (is_attr 0) or attribute (is_attr 1), printed as a line */
static void digest(hid_t obj, int is_attr, const char *path)
{
    hid_t type = is_attr ? H5Aget_type(obj) : H5Dget_type(obj);
    hid_t space = is_attr ? H5Aget_space(obj) : H5Dget_space(obj);
    if (type < 0 || space < 0) {
        fprintf(stderr, "h5bytes: %s: cannot read its type or shape\n", path);
        failed = 1;
        goto done;
    }
    H5T_class_t cls = H5Tget_class(type);
    size_t size = H5Tget_size(type);
    int rank = H5Sget_simple_extent_ndims(space);
    hsize_t dims[H5S_MAX_RANK];
    H5Sget_simple_extent_dims(space, dims, NULL);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    char shape[256] = "";
    size_t w = 0;
    for (int i = 0; i < rank && w < sizeof shape - 24; i++)
        w += (size_t)snprintf(shape + w, sizeof shape - w, "%s%llu", i ? "x" : "", (unsigned long long)dims[i]);
    if (rank == 0) snprintf(shape, sizeof shape, "scalar");
    int vstr = cls == H5T_STRING && H5Tis_variable_str(type) > 0;
    if (!vstr && (cls == H5T_VLEN || cls == H5T_REFERENCE || H5Tdetect_class(type, H5T_VLEN) > 0 ||
                  H5Tdetect_class(type, H5T_REFERENCE) > 0)) {
        fprintf(stderr, "h5bytes: %s: variable-length or reference data is not supported\n", path);
        failed = 1;
        goto done;
    }
    uint64_t h = 14695981039346656037ULL;
    if (n > 0) {
        size_t bytes = (size_t)n * (vstr ? sizeof(char *) : size);
        void *buf = malloc(bytes);
        if (!buf) {
            fprintf(stderr, "h5bytes: %s: out of memory for %zu bytes\n", path, bytes);
            failed = 1;
            goto done;
        }
        /* the file's own type as the memory type: no conversion, the stored bytes */
        herr_t r = is_attr ? H5Aread(obj, type, buf) : H5Dread(obj, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
        if (r < 0) {
            fprintf(stderr, "h5bytes: %s: read failed\n", path);
            failed = 1;
            free(buf);
            goto done;
        }
        if (vstr) {
            char **s = buf;
            for (hssize_t i = 0; i < n; i++) {
                const char *v = s[i] ? s[i] : "";
                h = fnv1a(h, v, strlen(v) + 1);
            }
            H5Dvlen_reclaim(type, space, H5P_DEFAULT, buf);
        } else {
            h = fnv1a(h, buf, bytes);
        }
        free(buf);
    }
    printf("%s %s/%zu%s [%s] fnv1a64=%016llx\n", path, class_name(cls), size, vstr ? "/vlen" : "", shape,
           (unsigned long long)h);
done:
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
}

typedef struct {
    const char *obj_path;
} attr_ctx;

static herr_t on_attr(hid_t loc, const char *name, const H5A_info_t *info, void *op)
{
    (void)info;
    const attr_ctx *c = op;
    char path[1024];
    snprintf(path, sizeof path, "%s@%s", c->obj_path, name);
    if (excluded(path)) return 0;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) {
        fprintf(stderr, "h5bytes: %s: cannot open\n", path);
        failed = 1;
        return 0;
    }
    digest(a, 1, path);
    H5Aclose(a);
    return 0;
}

/* the object at path: its attributes, then its data when it is a dataset */
static void visit_object(hid_t file, const char *path)
{
    if (excluded(path)) return;
    hid_t o = H5Oopen(file, path, H5P_DEFAULT);
    if (o < 0) {
        fprintf(stderr, "h5bytes: %s: cannot open\n", path);
        failed = 1;
        return;
    }
    H5O_info_t info;
    H5Oget_info2(o, &info, H5O_INFO_BASIC);
    attr_ctx c = {path};
    hsize_t idx = 0;
    H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, &idx, on_attr, &c);
    if (info.type == H5O_TYPE_DATASET) digest(o, 0, path);
    H5Oclose(o);
}

typedef struct {
    hid_t file;
    const char *root;
} walk_ctx;

static herr_t on_link(hid_t g, const char *name, const H5L_info_t *info, void *op)
{
    (void)g;
    const walk_ctx *c = op;
    char path[1024];
    if (info->type != H5L_TYPE_HARD) {
        snprintf(path, sizeof path, "%s/%s", strcmp(c->root, "/") ? c->root : "", name);
        if (!excluded(path)) printf("%s link/%d [-] fnv1a64=-\n", path, (int)info->type);
        return 0;
    }
    snprintf(path, sizeof path, "%s/%s", strcmp(c->root, "/") ? c->root : "", name);
    visit_object(c->file, path);
    return 0;
}

int main(int argc, char **argv)
{
    int i = 1;
    for (; i < argc && !strcmp(argv[i], "-x"); i += 2) {
        if (i + 1 >= argc || n_excludes == MAX_EXCLUDE) break;
        excludes[n_excludes++] = argv[i + 1];
    }
    if (i >= argc) {
        fprintf(stderr, "usage: h5bytes [-x PATH]... FILE [OBJECT]...\n");
        return 2;
    }
    const char *file_name = argv[i++];
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(file_name, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        fprintf(stderr, "h5bytes: %s: cannot open as HDF5\n", file_name);
        return 2;
    }
    const char *def[] = {"/"};
    const char **objs = i < argc ? (const char **)argv + i : def;
    int n_objs = i < argc ? argc - i : 1;
    for (int k = 0; k < n_objs; k++) {
        const char *root = objs[k];
        if (H5Oexists_by_name(f, root, H5P_DEFAULT) <= 0) {
            fprintf(stderr, "h5bytes: %s: no object %s\n", file_name, root);
            failed = 1;
            continue;
        }
        visit_object(f, root);
        H5O_info_t info;
        if (H5Oget_info_by_name2(f, root, &info, H5O_INFO_BASIC, H5P_DEFAULT) >= 0 && info.type == H5O_TYPE_GROUP) {
            walk_ctx c = {f, root};
            /* every link below root, recursively, in name order; H5Lvisit names are relative */
            hid_t g = H5Gopen2(f, root, H5P_DEFAULT);
            H5Lvisit(g, H5_INDEX_NAME, H5_ITER_INC, on_link, &c);
            H5Gclose(g);
        }
    }
    H5Fclose(f);
    return failed ? 2 : 0;
}
