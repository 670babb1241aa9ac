/* Reading and validating a run's metrics file (layout in include/chainz/metrics_read.h). */
#include "chainz/metrics_read.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5util.h"

enum { N_HISTORY = 11, N_SUMMARY = 7, CONFIG_MAX = 1 << 16, FAMILIES_MAX = 8192 };

static const char *const history_names[N_HISTORY] = {
    "epoch", "step", "train_loss", "dreg", "lambda", "lr",
    "train_acc", "val_loss", "val_acc", "val_mae", "seconds"};
static const char *const summary_names[N_SUMMARY] = {"count", "mean", "p50", "p90",
                                                     "p99", "max", "tau"};

static herr_t innermost(unsigned n, const H5E_error2_t *e, void *data)
{
    if (n == 0 && e->desc) snprintf(data, 256, "%s", e->desc);
    return 0;
}

/* A failed HDF5 call on a file that passed validation: keeps where, what and HDF5's own
 * (innermost) message. */
static int h5_failed(const char *file, const char *call, const char *src, int line, cz_error *err)
{
    char msg[256] = "no message from HDF5";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, msg);
    return cz_error_set(err, CZ_EIO, "%s: reading failed at %s:%d (%s): %s", file, src, line,
                        call, msg);
}

/* In a function with `int rc`, `cz_error *err`, a `path` and an `out:` label. */
#define H5_CHECK(call)                                                   \
    do {                                                                 \
        if ((call) < 0) {                                                \
            rc = h5_failed(path, #call, __FILE__, __LINE__, err);        \
            goto out;                                                    \
        }                                                                \
    } while (0)

/* Whether the absolute path "/a/b/c" names an object: H5Lexists wants every parent to
 * exist, so walk down from the root. @return 1, 0, or < 0 on an HDF5 failure. */
static int exists(hid_t f, const char *name)
{
    char buf[512];
    if (snprintf(buf, sizeof buf, "%s", name) >= (int)sizeof buf) return 0;
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p) continue;
        char c = *p;
        *p = 0;
        htri_t e = H5Lexists(f, buf, H5P_DEFAULT);
        *p = c;
        if (e <= 0) return e;
        if (!c) return 1;
    }
}

/* Checks that dataset `name` exists, is numeric, has `rank` dimensions and, unless dims is
 * NULL, the extents dims (why says where they come from); returns the extents in found. */
static int check_shape(hid_t f, const char *path, const char *name, int rank,
                       const hsize_t *dims, const char *why, hsize_t *found, cz_error *err)
{
    int rc = 0, e = exists(f, name);
    hid_t ds = -1, sp = -1, ft = -1;
    if (e < 0) return h5_failed(path, "H5Lexists", __FILE__, __LINE__, err);
    if (!e) return cz_error_set(err, CZ_EINVAL, "%s: dataset %s is missing", path, name);
    H5_CHECK(ds = H5Dopen2(f, name, H5P_DEFAULT));
    H5_CHECK(sp = H5Dget_space(ds));
    H5_CHECK(ft = H5Dget_type(ds));
    H5T_class_t cls = H5Tget_class(ft);
    if (cls != H5T_FLOAT && cls != H5T_INTEGER) {
        rc = cz_error_set(err, CZ_EINVAL, "%s: dataset %s is not numeric", path, name);
        goto out;
    }
    int r;
    H5_CHECK(r = H5Sget_simple_extent_ndims(sp));
    hsize_t d[2] = {0, 0};
    if (r != rank) {
        rc = cz_error_set(err, CZ_EINVAL, "%s: dataset %s has %d dimension(s), expected %d", path,
                          name, r, rank);
        goto out;
    }
    H5_CHECK(H5Sget_simple_extent_dims(sp, d, NULL));
    for (int k = 0; k < rank; k++) {
        if (dims && d[k] != dims[k]) {
            rc = cz_error_set(err, CZ_EINVAL, "%s: dataset %s has %llu %s, expected %llu (%s)", path,
                              name, (unsigned long long)d[k], k ? "columns" : "rows",
                              (unsigned long long)dims[k], why);
            goto out;
        }
        if (found) found[k] = d[k];
    }
out:
    if (ft >= 0) H5Tclose(ft);
    if (sp >= 0) H5Sclose(sp);
    if (ds >= 0) H5Dclose(ds);
    return rc;
}

/* A 1-D float64 dataset of exactly n elements into dst. */
static int read_vec(hid_t f, const char *path, const char *name, size_t n, const char *why,
                    double *dst, cz_error *err)
{
    hsize_t dims[1] = {n};
    int rc = check_shape(f, path, name, 1, dims, why, NULL, err);
    if (!rc && n == 0) return 0;
    if (!rc) rc = cz_h5_read(f, name, H5T_NATIVE_DOUBLE, n, dst, path, err);
    return rc == 1 ? cz_error_set(err, CZ_EINVAL, "%s: dataset %s is missing", path, name) : rc;
}

/* Row `row` of the 2-D uint64 dataset `name` ([rows, n]) into dst. */
static int read_row(hid_t f, const char *path, const char *name, size_t row, size_t n,
                    uint64_t *dst, cz_error *err)
{
    int rc = 0;
    hid_t ds = -1, fs = -1, ms = -1;
    hsize_t start[2] = {row, 0}, cnt[2] = {1, n}, mdim[1] = {n};
    H5_CHECK(ds = H5Dopen2(f, name, H5P_DEFAULT));
    H5_CHECK(fs = H5Dget_space(ds));
    H5_CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL));
    H5_CHECK(ms = H5Screate_simple(1, mdim, NULL));
    H5_CHECK(H5Dread(ds, H5T_NATIVE_UINT64, ms, fs, H5P_DEFAULT, dst));
out:
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    if (ds >= 0) H5Dclose(ds);
    return rc;
}

/* RUN_DIR -> RUN_DIR/metrics.h5; a file stays itself. */
static int resolve(const char *arg, char *path, size_t len, cz_error *err)
{
    struct stat st;
    if (!*arg || stat(arg, &st) != 0)
        return cz_error_set(err, CZ_EINVAL, "%s: no such run directory or metrics file", arg);
    int n;
    if (S_ISDIR(st.st_mode)) {
        size_t l = strlen(arg);
        while (l > 1 && arg[l - 1] == '/') l--;
        n = snprintf(path, len, "%.*s/%s", (int)l, arg, CZ_METRICS_FILE);
        if (n > 0 && (size_t)n < len && stat(path, &st) != 0)
            return cz_error_set(err, CZ_EINVAL,
                                "%s: missing (%s is not a run directory, or its run has not "
                                "finished an epoch yet)", path, arg);
    } else {
        n = snprintf(path, len, "%s", arg);
    }
    if (n < 0 || (size_t)n >= len) return cz_error_set(err, CZ_EINVAL, "%s: path too long", arg);
    /* only a regular file is opened: H5Fopen on a FIFO blocks forever in open() */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return cz_error_set(err, CZ_EINVAL, "%s: not a regular file (%s): not a metrics file", path,
                            S_ISFIFO(st.st_mode) ? "a FIFO" : "a device or socket");
    if (access(path, R_OK) != 0)
        return cz_error_set(err, CZ_EINVAL, "%s: cannot read the file (no permission)", path);
    return 0;
}

/* Splits the families attribute ("a, b,c") into d->family[]. */
static int parse_families(cz_metrics_data *d, const char *list, cz_error *err)
{
    int n = 1;
    for (const char *p = list; *p; p++) n += *p == ',';
    d->family = calloc((size_t)n, sizeof *d->family);
    if (!d->family) return cz_error_set(err, CZ_ENOMEM, "%s: out of memory", d->path);
    for (const char *p = list; *p;) {
        while (*p == ' ') p++;
        size_t l = strcspn(p, ",");
        size_t t = l;
        while (t && p[t - 1] == ' ') t--;
        if (!t || t >= sizeof d->family[0].name || p[0] == '/' || p[t - 1] == '/')
            return cz_error_set(err, CZ_EINVAL, "%s: attribute families ('%s') has an empty, "
                                "too long or malformed name", d->path, list);
        cz_metrics_family *fam = &d->family[d->n_families];
        snprintf(fam->name, sizeof fam->name, "%.*s", (int)t, p);
        if (cz_metrics_family_index(d, fam->name) >= 0)
            return cz_error_set(err, CZ_EINVAL, "%s: attribute families names '%s' twice", d->path,
                                fam->name);
        d->n_families++;
        p += l;
        if (*p == ',') p++;
    }
    if (d->n_families == 0) /* chainz train --no-tau writes an empty list */
        return cz_error_set(err, CZ_EINVAL, "%s: the run was trained with --no-tau: it recorded no gradient-norm "
                            "statistics (its history is in history.jsonl and /history)", d->path);
    return 0;
}

static int read_attrs(hid_t f, cz_metrics_data *d, cz_error *err)
{
    const char *path = d->path;
    char fmt[128];
    int r = cz_h5_attr_str(f, "format", fmt, sizeof fmt);
    if (r == 1)
        return cz_error_set(err, CZ_EINVAL, "%s: no attribute format: not a chainz metrics file",
                            path);
    if (r || strcmp(fmt, CZ_METRICS_FORMAT))
        return cz_error_set(err, CZ_EINVAL, "%s: attribute format is '%s', expected '%s'", path,
                            r ? "(not a string)" : fmt, CZ_METRICS_FORMAT);
    r = cz_h5_attr_long(f, "version", &d->version);
    if (r)
        return cz_error_set(err, CZ_EINVAL, "%s: attribute version is %s", path,
                            r == 1 ? "missing" : "not a number");
    if (d->version != CZ_METRICS_VERSION)
        return cz_error_set(err, CZ_EINVAL,
                            "%s: metrics version %ld is not supported (this chainz reads version %d)",
                            path, d->version, CZ_METRICS_VERSION);
    if (cz_h5_attr_double(f, "alpha", &d->alpha)) d->alpha = NAN;
    if (cz_h5_attr_double(f, "gamma", &d->gamma)) d->gamma = NAN;
    if (!(d->config = malloc(CONFIG_MAX)))
        return cz_error_set(err, CZ_ENOMEM, "%s: out of memory", path);
    if (cz_h5_attr_str(f, "config", d->config, CONFIG_MAX) < 0) d->config[0] = 0;
    char *list = malloc(FAMILIES_MAX);
    if (!list) return cz_error_set(err, CZ_ENOMEM, "%s: out of memory", path);
    r = cz_h5_attr_str(f, "families", list, FAMILIES_MAX);
    if (r) r = cz_error_set(err, CZ_EINVAL, "%s: attribute families (the list of /tau groups) is %s",
                            path, r == 1 ? "missing" : "not a string");
    else r = parse_families(d, list, err);
    free(list);
    return r;
}

/* Lays the per-epoch arrays and the edges out in one arena, the counts in another. */
static int allocate(cz_metrics_data *d, cz_error *err)
{
    size_t E = d->n_epochs, F = (size_t)d->n_families, B = d->n_bins;
    size_t per_family = N_SUMMARY * E + B + 1;
    d->arena = calloc(N_HISTORY * E + F * per_family, sizeof(double));
    d->count_arena = calloc(F * B, sizeof(uint64_t));
    if (!d->arena || !d->count_arena) return cz_error_set(err, CZ_ENOMEM, "%s: out of memory", d->path);
    double **hist[N_HISTORY] = {&d->epoch, &d->step, &d->train_loss, &d->dreg, &d->lambda, &d->lr,
                                &d->train_acc, &d->val_loss, &d->val_acc, &d->val_mae, &d->seconds};
    for (size_t k = 0; k < N_HISTORY; k++) *hist[k] = d->arena + k * E;
    for (size_t j = 0; j < F; j++) {
        cz_metrics_family *fam = &d->family[j];
        double *base = d->arena + N_HISTORY * E + j * per_family;
        double **sum[N_SUMMARY] = {&fam->count, &fam->mean, &fam->p50, &fam->p90,
                                   &fam->p99, &fam->max, &fam->tau};
        for (size_t k = 0; k < N_SUMMARY; k++) *sum[k] = base + k * E;
        fam->edges = base + N_SUMMARY * E;
        fam->last_counts = d->count_arena + j * B;
    }
    return 0;
}

static int read_family(hid_t f, cz_metrics_data *d, cz_metrics_family *fam, cz_error *err)
{
    const char *path = d->path;
    size_t E = d->n_epochs, B = d->n_bins;
    char name[256], why[300];
    double *sum[N_SUMMARY] = {fam->count, fam->mean, fam->p50, fam->p90, fam->p99, fam->max, fam->tau};
    snprintf(name, sizeof name, "/tau/%s", fam->name);
    int e = exists(f, name);
    if (e < 0) return h5_failed(path, "H5Lexists", __FILE__, __LINE__, err);
    if (!e)
        return cz_error_set(err, CZ_EINVAL, "%s: family '%s' is listed in attribute families but "
                            "group %s is missing", path, fam->name, name);
    snprintf(why, sizeof why, "the length of /history/epoch");
    for (int k = 0; k < N_SUMMARY; k++) {
        snprintf(name, sizeof name, "/tau/%s/%s", fam->name, summary_names[k]);
        int rc = read_vec(f, path, name, E, why, sum[k], err);
        if (rc) return rc;
    }
    snprintf(name, sizeof name, "/tau/%s/edges", fam->name);
    snprintf(why, sizeof why, "bins + 1, as /tau/%s/edges", d->family[0].name);
    int rc = read_vec(f, path, name, B + 1, why, fam->edges, err);
    if (rc) return rc;
    if (fam->edges[0] != 0)
        return cz_error_set(err, CZ_EINVAL, "%s: %s[0] is %g, expected 0 (the zero bin)", path, name,
                            fam->edges[0]);
    for (size_t i = 1; i <= B; i++)
        if (!(fam->edges[i] > fam->edges[i - 1]))
            return cz_error_set(err, CZ_EINVAL, "%s: %s is not increasing at index %zu", path, name, i);
    snprintf(name, sizeof name, "/tau/%s/counts", fam->name);
    snprintf(why, sizeof why, "epochs x bins, from /history/epoch and the edges");
    hsize_t dims[2] = {E, B};
    if ((rc = check_shape(f, path, name, 2, dims, why, NULL, err))) return rc;
    return E ? read_row(f, path, name, E - 1, B, fam->last_counts, err) : 0;
}

int cz_metrics_load(const char *path_or_run_dir, cz_metrics_data *out, cz_error *err)
{
    memset(out, 0, sizeof *out);
    out->alpha = out->gamma = NAN;
    cz_metrics_data *d = out;
    const char *path = d->path;
    int rc = resolve(path_or_run_dir, d->path, sizeof d->path, err);
    if (rc) return rc;
    cz_h5_quiet();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return cz_error_set(err, CZ_EINVAL, "%s: not an HDF5 file (or it is damaged)", path);
    if ((rc = read_attrs(f, d, err))) goto out;

    hsize_t found[1];
    if ((rc = check_shape(f, path, "/history/epoch", 1, NULL, "", found, err))) goto out;
    d->n_epochs = found[0];
    char name[256];
    snprintf(name, sizeof name, "/tau/%s/edges", d->family[0].name);
    if (exists(f, name) > 0) {
        if ((rc = check_shape(f, path, name, 1, NULL, "", found, err))) goto out;
        if (found[0] < 2) {
            rc = cz_error_set(err, CZ_EINVAL, "%s: dataset %s has %llu elements, expected at least 2",
                              path, name, (unsigned long long)found[0]);
            goto out;
        }
        d->n_bins = found[0] - 1;
    } /* else read_family names what is missing */
    if ((rc = allocate(d, err))) goto out;

    double *hist[N_HISTORY] = {d->epoch, d->step, d->train_loss, d->dreg, d->lambda, d->lr,
                               d->train_acc, d->val_loss, d->val_acc, d->val_mae, d->seconds};
    for (int k = 0; k < N_HISTORY && !rc; k++) {
        snprintf(name, sizeof name, "/history/%s", history_names[k]);
        rc = read_vec(f, path, name, d->n_epochs, "the length of /history/epoch", hist[k], err);
    }
    for (int j = 0; j < d->n_families && !rc; j++) rc = read_family(f, d, &d->family[j], err);
out:
    if (H5Fclose(f) < 0 && !rc) rc = h5_failed(path, "H5Fclose(f)", __FILE__, __LINE__, err);
    if (rc) {
        char keep[sizeof d->path];
        memcpy(keep, d->path, sizeof keep);
        cz_metrics_data_free(d);
        memcpy(d->path, keep, sizeof keep);
    }
    return rc;
}

void cz_metrics_data_free(cz_metrics_data *d)
{
    if (!d) return;
    free(d->config);
    free(d->family);
    free(d->arena);
    free(d->count_arena);
    memset(d, 0, sizeof *d);
    d->alpha = d->gamma = NAN;
}

int cz_metrics_family_index(const cz_metrics_data *d, const char *name)
{
    for (int j = 0; j < d->n_families; j++)
        if (!strcmp(d->family[j].name, name)) return j;
    return -1;
}
