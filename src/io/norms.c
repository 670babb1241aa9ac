/* The per-sample norms file of chainz eval --tau-out (chainz/norms.h). */
#include "chainz/norms.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5util.h"

int cz_norms_check_path(const char *path, cz_error *err)
{
    struct stat st;
    if (!path[0]) return cz_error_set(err, CZ_EINVAL, "--tau-out: empty path");
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return cz_error_set(err, CZ_EINVAL, "--tau-out %s: is a directory (give a file name)", path);
    char dir[4096];
    if (strlen(path) >= sizeof dir) return cz_error_set(err, CZ_EINVAL, "--tau-out: path too long");
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return cz_error_set(err, CZ_EINVAL, "--tau-out %s: directory %s does not exist", path, dir);
    if (access(dir, W_OK) != 0)
        return cz_error_set(err, CZ_EINVAL, "--tau-out %s: directory %s is not writable", path, dir);
    return 0;
}

/* the group at path (created with its parents where missing), or < 0 */
static hid_t group_at(hid_t f, const char *path)
{
    char part[256];
    hid_t g = -1, gcpl = cz_h5_untimed(H5P_GROUP_CREATE);
    for (const char *p = path; gcpl >= 0;) {
        const char *slash = strchr(p, '/');
        size_t l = slash ? (size_t)(slash - path) : strlen(path);
        if (l >= sizeof part) break;
        memcpy(part, path, l);
        part[l] = 0;
        htri_t have = H5Lexists(f, part, H5P_DEFAULT);
        if (g >= 0) H5Gclose(g);
        g = have > 0 ? H5Gopen2(f, part, H5P_DEFAULT) : H5Gcreate2(f, part, H5P_DEFAULT, gcpl, H5P_DEFAULT);
        if (g < 0 || !slash) break;
        p = slash + 1;
    }
    if (gcpl >= 0) H5Pclose(gcpl);
    return g;
}

static int write_1d(hid_t loc, const char *name, hid_t mem, hid_t file, size_t n, const void *data,
                    const char *meaning)
{
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, dims, NULL), dcpl = cz_h5_untimed(H5P_DATASET_CREATE);
    hid_t ds = sp >= 0 && dcpl >= 0 ? H5Dcreate2(loc, name, file, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT) : -1;
    int rc = ds < 0 || (n && H5Dwrite(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) ? CZ_EIO : 0;
    if (!rc && meaning) rc = cz_h5_set_str(ds, "meaning", meaning);
    if (ds >= 0) H5Dclose(ds);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
    return rc;
}

int cz_norms_write(const char *path, const cz_norms *nm, cz_error *err)
{
    int rc = cz_norms_check_path(path, err);
    if (rc) return rc;
    char fams[4096] = "";
    for (int i = 0; i < nm->n_families; i++) {
        size_t w = strlen(fams);
        if (strlen(nm->family[i]) > 200 || w + strlen(nm->family[i]) + 2 > sizeof fams)
            return cz_error_set(err, CZ_EINVAL, "%s: family name too long: %s", path, nm->family[i]);
        snprintf(fams + w, sizeof fams - w, "%s%s", i ? "," : "", nm->family[i]);
    }
    char tmp[4200];
    cz_tmp_name(tmp, sizeof tmp, path);
    cz_h5_quiet();
    cz_h5_clear_cause();
    hid_t f = cz_h5_create_mem(tmp); /* in memory: a full disk is an ordinary write(2) error */
    if (f < 0) return cz_error_set(err, CZ_EIO, "%s: cannot create the file in memory", path);
    rc |= cz_h5_set_str(f, "format", CZ_NORMS_FORMAT) | cz_h5_set_long(f, "version", CZ_NORMS_VERSION) |
          cz_h5_set_str(f, "checkpoint", nm->checkpoint) | cz_h5_set_str(f, "data", nm->data) |
          cz_h5_set_long(f, "samples", (long)nm->n) | cz_h5_set_str(f, "task", nm->task) |
          cz_h5_set_str(f, "families", fams) |
          cz_h5_set_str(f, "tau_meaning", "tau = p99 / mean of a family's norms over the samples; chainz eval "
                                          "--tau reports it from log-bucket histograms (quantiles within 1%)");
    if (!rc) rc = write_1d(f, "row", H5T_NATIVE_UINT64, H5T_STD_U64LE, nm->n, nm->row,
                           "the sample's row in the data file (0-based); rows in file order");
    if (!rc && nm->label_class)
        rc = write_1d(f, "label", H5T_NATIVE_INT32, H5T_STD_I32LE, nm->n, nm->label_class,
                      "the sample's class (0-based) as chainz read it from the data file");
    else if (!rc)
        rc = write_1d(f, "label", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, nm->n, nm->label_value,
                      "the sample's target value as chainz read it (float32)");
    hid_t g = rc ? -1 : group_at(f, "norms");
    if (!rc && g < 0) rc = CZ_EIO;
    if (g >= 0) H5Gclose(g);
    for (int i = 0; !rc && i < nm->n_families; i++) {
        char gpath[256], *leaf;
        snprintf(gpath, sizeof gpath, "norms/%s", nm->family[i]);
        leaf = strrchr(gpath, '/');
        *leaf++ = 0;
        hid_t loc = group_at(f, gpath);
        rc = loc < 0 ? CZ_EIO : write_1d(loc, leaf, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, nm->n, nm->norm[i], nm->meaning[i]);
        if (loc >= 0) H5Gclose(loc);
    }
    if (rc) {
        H5Fclose(f);
        const char *why = cz_h5_cause();
        return cz_error_set(err, rc == CZ_ENOMEM ? CZ_ENOMEM : CZ_EIO, "%s: writing the norms failed%s%s", path,
                            why[0] ? ": " : "", why);
    }
    if ((rc = cz_h5_save_mem(f, tmp, 0, err))) return rc; /* it removed tmp */
    rc = cz_file_commit(tmp, path, err);
    if (rc) unlink(tmp);
    return rc;
}
