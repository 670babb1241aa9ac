/* The predictions file of chainz predict (chainz/predout.h). */
#include "chainz/predout.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5util.h"

int cz_pred_check_path(const char *opt, const char *path, cz_error *err)
{
    struct stat st;
    if (!path[0]) return cz_error_set(err, CZ_EINVAL, "%s: empty path", opt);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return cz_error_set(err, CZ_EINVAL, "%s %s: is a directory (give a file name)", opt, path);
    char dir[4096];
    if (strlen(path) >= sizeof dir) return cz_error_set(err, CZ_EINVAL, "%s: path too long", opt);
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return cz_error_set(err, CZ_EINVAL, "%s %s: directory %s does not exist", opt, path, dir);
    if (access(dir, W_OK) != 0)
        return cz_error_set(err, CZ_EINVAL, "%s %s: directory %s is not writable", opt, path, dir);
    return 0;
}

static hid_t new_group(hid_t loc, const char *name)
{
    hid_t gcpl = cz_h5_untimed(H5P_GROUP_CREATE);
    hid_t g = gcpl >= 0 ? H5Gcreate2(loc, name, H5P_DEFAULT, gcpl, H5P_DEFAULT) : -1;
    if (gcpl >= 0) H5Pclose(gcpl);
    return g;
}

/* a 1-D ([n]) or 2-D ([n, k]) dataset; the created id in *out (caller closes) or < 0 */
static int write_ds(hid_t loc, const char *name, hid_t mem, hid_t file, size_t n, size_t k, const void *data,
                    hid_t *out)
{
    hsize_t dims[2] = {(hsize_t)n, (hsize_t)k};
    hid_t sp = H5Screate_simple(k ? 2 : 1, dims, NULL), dcpl = cz_h5_untimed(H5P_DATASET_CREATE);
    hid_t ds = sp >= 0 && dcpl >= 0 ? H5Dcreate2(loc, name, file, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT) : -1;
    int rc = ds < 0 || (n && H5Dwrite(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) ? CZ_EIO : 0;
    if (dcpl >= 0) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
    if (out && !rc) *out = ds;
    else if (ds >= 0) H5Dclose(ds);
    return rc;
}

static int set_summary(hid_t o, const cz_hist_summary *s)
{
    return cz_h5_set_double(o, "count", s->count) | cz_h5_set_double(o, "mean", s->mean) |
           cz_h5_set_double(o, "p50", s->p50) | cz_h5_set_double(o, "p90", s->p90) |
           cz_h5_set_double(o, "p99", s->p99) | cz_h5_set_double(o, "max", s->max) |
           cz_h5_set_double(o, "tau", s->tau);
}

static int set_drift(hid_t g, const cz_pred_family *f)
{
    int rc = cz_h5_set_str(g, "reference_family", f->ref_family ? f->ref_family : "") |
             cz_h5_set_str(g, "status", f->status ? f->status : "");
    if (rc || !f->compared) return rc;
    const cz_drift_result *r = &f->drift;
    static const char *q[CZ_DRIFT_NQ] = {"p50", "p90", "p99"};
    char name[32];
    rc |= cz_h5_set_double(g, "ref_count", r->n_ref) | cz_h5_set_double(g, "batch_count", r->n_batch);
    for (int k = 0; k < CZ_DRIFT_NQ; k++) {
        snprintf(name, sizeof name, "ref_%s", q[k]);
        rc |= cz_h5_set_double(g, name, r->ref_q[k]);
        snprintf(name, sizeof name, "batch_%s", q[k]);
        rc |= cz_h5_set_double(g, name, r->batch_q[k]);
        snprintf(name, sizeof name, "ratio_%s", q[k]);
        rc |= cz_h5_set_double(g, name, r->ratio[k]);
    }
    return rc | cz_h5_set_double(g, "ks_d", r->ks_d) | cz_h5_set_double(g, "ks_p", r->ks_p) |
           cz_h5_set_long(g, "moved", r->moved) | cz_h5_set_long(g, "ks_reject", r->ks_reject) |
           cz_h5_set_long(g, "flagged", r->flagged);
}

static int fill(hid_t f, const cz_pred_file *p)
{
    int rc = cz_h5_set_str(f, "format", "chainz-predictions") | cz_h5_set_long(f, "version", 1) |
             cz_h5_set_str(f, "model", p->model) | cz_h5_set_str(f, "data", p->data) |
             cz_h5_set_str(f, "input", p->input) | cz_h5_set_str(f, "dataset", p->dataset) |
             cz_h5_set_str(f, "head", p->head) | cz_h5_set_long(f, "classes", p->classes) |
             cz_h5_set_long(f, "samples", (long)p->n) | cz_h5_set_long(f, "norms", p->n_families > 0);
    if (!rc && p->has_labels && !isnan(p->accuracy)) rc = cz_h5_set_double(f, "accuracy", p->accuracy);
    if (!rc && p->has_labels && !isnan(p->mae)) rc = cz_h5_set_double(f, "mae", p->mae);
    if (!rc && p->reference)
        rc = cz_h5_set_str(f, "reference", p->reference) | cz_h5_set_double(f, "drift_threshold", p->drift_threshold) |
             cz_h5_set_double(f, "drift_alpha", p->drift_alpha) |
             cz_h5_set_double(f, "drift_d_min", p->drift_d_min) | cz_h5_set_long(f, "drift_flagged", p->drift_flagged);
    hid_t ds = -1;
    if (!rc) rc = write_ds(f, "label", H5T_NATIVE_INT32, H5T_STD_I32LE, p->n, 0, p->label, &ds);
    if (!rc) rc = cz_h5_set_str(ds, "meaning", "predicted class (classify: argmax; ordinal: cumulative logits > 0; "
                                               "regress: round(value))");
    if (ds >= 0) H5Dclose(ds), ds = -1;
    if (!rc && p->K) {
        rc = write_ds(f, "prob", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, p->n, p->K, p->prob, &ds);
        if (!rc) rc = cz_h5_set_str(ds, "meaning", "class probabilities [N, K] (classify: softmax; ordinal: "
                                                   "P(y = k) from the cumulative sigmoids)");
        if (ds >= 0) H5Dclose(ds), ds = -1;
    }
    if (!rc) rc = write_ds(f, "value", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, p->n, 0, p->value, &ds);
    if (!rc) rc = cz_h5_set_str(ds, "meaning", "regress: the prediction; ordinal: the expected class; classify: "
                                               "the predicted class's probability");
    if (ds >= 0) H5Dclose(ds), ds = -1;
    hid_t g = -1, dg = -1;
    if (!rc && p->n_families && (g = new_group(f, "norms")) < 0) rc = CZ_EIO;
    if (!rc && p->n_families && p->reference && (dg = new_group(f, "drift")) < 0) rc = CZ_EIO;
    for (int i = 0; !rc && i < p->n_families; i++) {
        const cz_pred_family *fm = &p->fam[i];
        rc = write_ds(g, fm->name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, p->n, 0, fm->norm, &ds);
        if (!rc) rc = cz_h5_set_str(ds, "meaning", fm->meaning) | set_summary(ds, &fm->sum);
        if (ds >= 0) H5Dclose(ds), ds = -1;
        if (!rc && dg >= 0) {
            hid_t fg = new_group(dg, fm->name);
            rc = fg < 0 ? CZ_EIO : set_drift(fg, fm);
            if (fg >= 0) H5Gclose(fg);
        }
    }
    if (g >= 0) H5Gclose(g);
    if (dg >= 0) H5Gclose(dg);
    return rc ? CZ_EIO : 0;
}

int cz_pred_write(const char *path, const cz_pred_file *p, cz_error *err)
{
    int rc = cz_pred_check_path("--out", path, err);
    if (rc) return rc;
    char tmp[4200];
    cz_tmp_name(tmp, sizeof tmp, path);
    cz_h5_quiet();
    cz_h5_clear_cause();
    hid_t f = cz_h5_create_mem(tmp); /* in memory: a full disk is an ordinary write(2) error */
    if (f < 0) return cz_error_set(err, CZ_EIO, "%s: cannot create the file in memory", path);
    if (fill(f, p)) {
        H5Fclose(f);
        const char *why = cz_h5_cause();
        return cz_error_set(err, CZ_EIO, "%s: writing the predictions failed%s%s", path, why[0] ? ": " : "", why);
    }
    if ((rc = cz_h5_save_mem(f, tmp, 0, err))) return rc; /* it removed tmp */
    rc = cz_file_commit(tmp, path, err);
    if (rc) unlink(tmp);
    return rc;
}
