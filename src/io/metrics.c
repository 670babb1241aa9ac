#include "chainz/metrics.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "h5util.h"

const char *const cz_history_names[CZ_HISTORY_FIELDS] = {
    "epoch", "step", "train_loss", "dreg", "lambda", "lr", "train_acc", "val_loss", "val_acc", "val_mae", "seconds"};

static const char *const summary_names[7] = {"count", "mean", "p50", "p90", "p99", "max", "tau"};

/* /tau/<family>/counts is chunked one epoch per chunk and deflated (level 4). Every epoch
 * rewrites the whole file, so instead of handing HDF5 all E epochs to compress again (a
 * cost per epoch linear in E, quadratic over a run) each epoch's histogram is deflated
 * once, when appended (or loaded on resume), and its bytes are written as they are with
 * H5Dwrite_chunk. compress2 at COUNTS_LEVEL is exactly what HDF5's deflate filter runs
 * on a chunk (H5Z_filter_deflate), so the file holds the same bytes as H5Dwrite would
 * give it and decodes to the same counts. */
#define COUNTS_LEVEL 4
#define CHUNK_BYTES ((size_t)CZ_HIST_BINS * sizeof(uint64_t))

typedef struct {
    unsigned char *p; /* NULL: not set */
    size_t n;
} cz_zchunk;

/* deflates one epoch's counts (native uint64, the dataset's memory and file type here) */
static int zchunk_set(cz_zchunk *z, const uint64_t *counts)
{
    uLongf n = compressBound((uLong)CHUNK_BYTES);
    unsigned char *p = malloc(n);
    if (!p) return CZ_ENOMEM;
    if (compress2(p, &n, (const Bytef *)counts, (uLong)CHUNK_BYTES, COUNTS_LEVEL) != Z_OK) {
        free(p); /* with compressBound's room only Z_MEM_ERROR is possible */
        return CZ_ENOMEM;
    }
    unsigned char *q = realloc(p, n ? n : 1); /* a few hundred bytes for a sparse histogram */
    free(z->p);
    z->p = q ? q : p;
    z->n = n;
    return 0;
}

struct cz_metrics {
    char path[4096];
    char *config;
    char *file_config;    /* the config attribute of the file a resume continues ("" none) */
    int nf;
    char (*names)[64];
    long epochs, cap;
    double *history;      /* [cap x CZ_HISTORY_FIELDS] */
    double *summary;      /* [cap x nf x 7] */
    cz_zchunk *z;         /* [cap x nf]: each epoch's histogram of each family, deflated */
};

/* room for `need` epochs */
static int grow_to(cz_metrics *mx, long need)
{
    if (need <= mx->cap) return 0;
    long cap = mx->cap ? mx->cap : 16;
    while (cap < need) cap *= 2;
    double *h = realloc(mx->history, (size_t)cap * CZ_HISTORY_FIELDS * sizeof(double));
    if (h) mx->history = h;
    size_t nf = mx->nf > 0 ? (size_t)mx->nf : 1; /* never realloc to 0 bytes (that frees) */
    double *s = realloc(mx->summary, (size_t)cap * nf * 7 * sizeof(double));
    if (s) mx->summary = s;
    cz_zchunk *z = realloc(mx->z, (size_t)cap * nf * sizeof *z);
    if (z) {
        memset(z + (size_t)mx->cap * nf, 0, (size_t)(cap - mx->cap) * nf * sizeof *z);
        mx->z = z;
    }
    if (!h || !s || !z) return -1;
    mx->cap = cap;
    return 0;
}

void cz_metrics_close(cz_metrics *mx)
{
    if (!mx) return;
    free(mx->config);
    free(mx->file_config);
    free(mx->names);
    free(mx->history);
    free(mx->summary);
    size_t nz = (size_t)mx->cap * (size_t)(mx->nf > 0 ? mx->nf : 1);
    for (size_t i = 0; mx->z && i < nz; i++) free(mx->z[i].p);
    free(mx->z);
    free(mx);
}

long cz_metrics_epochs(const cz_metrics *mx) { return mx->epochs; }

const char *cz_metrics_file_config(const cz_metrics *mx) { return mx->file_config ? mx->file_config : ""; }

const double *cz_metrics_row(const cz_metrics *mx, long i)
{
    return i >= 0 && i < mx->epochs ? mx->history + (size_t)i * CZ_HISTORY_FIELDS : NULL;
}

/* reads column `name` (float64 [E]) of group g into dst with stride */
static int read_column(hid_t g, const char *name, long E, double *dst, size_t stride, const char *file,
                       cz_error *err)
{
    double *tmp = malloc((size_t)(E ? E : 1) * sizeof(double));
    if (!tmp) return cz_error_set(err, CZ_ENOMEM, "out of memory");
    int rc = cz_h5_read(g, name, H5T_NATIVE_DOUBLE, (size_t)E, tmp, file, err);
    if (rc == 1) rc = cz_error_set(err, CZ_EINVAL, "dataset %s missing", name); /* the caller names the file */
    for (long e = 0; !rc && e < E; e++) dst[(size_t)e * stride] = tmp[e];
    free(tmp);
    return rc;
}

#define DAMAGED 1 /* load_existing: the file cannot be continued; err says why */

/* Loads the rows of epochs <= keep from an existing file (resume). @return 0, DAMAGED with
 * the cause in err, or CZ_EINVAL (not a regular file, a newer version: refused) */
static int load_existing(cz_metrics *mx, long keep, cz_error *err)
{
    struct stat sb;
    if (stat(mx->path, &sb) != 0) return 0;
    if (!S_ISREG(sb.st_mode)) /* a FIFO would block open() inside H5Fopen */
        return cz_error_set(err, CZ_EINVAL, "%s: not a regular file (%s): move it away to continue the run",
                            mx->path, S_ISFIFO(sb.st_mode) ? "a FIFO" : "a directory, device or socket");
    hid_t f = sb.st_size > 0 ? H5Fopen(mx->path, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    if (f < 0) {
        cz_error_set(err, CZ_EINVAL, "%s", sb.st_size ? "not a readable HDF5 file (overwritten or cut short)"
                                                       : "an empty file");
        return DAMAGED;
    }
    int rc = 0, damaged = 0;
    char fmt[64];
    long version = 0;
    if (cz_h5_attr_str(f, "format", fmt, sizeof fmt) || strcmp(fmt, "chainz-metrics"))
        damaged = 1, cz_error_set(err, CZ_EINVAL, "no format attribute \"chainz-metrics\"");
    else if (cz_h5_attr_long(f, "version", &version))
        damaged = 1, cz_error_set(err, CZ_EINVAL, "no readable version attribute");
    else if (version > 1) {
        H5Fclose(f);
        return cz_error_set(err, CZ_EINVAL, "%s: metrics version %ld, this chainz writes version 1 (written by a "
                            "newer chainz): continue the run with that chainz, or move metrics.h5 away", mx->path,
                            version);
    } else if (version < 1)
        damaged = 1, cz_error_set(err, CZ_EINVAL, "version attribute %ld", version);
    if (damaged) {
        H5Fclose(f);
        return DAMAGED;
    }
    enum { CFG_MAX = 1 << 16 };
    mx->file_config = malloc(CFG_MAX);
    if (!mx->file_config) {
        H5Fclose(f);
        return cz_error_set(err, CZ_ENOMEM, "out of memory");
    }
    if (cz_h5_attr_str(f, "config", mx->file_config, CFG_MAX)) mx->file_config[0] = 0;
    hid_t gh = H5Gopen2(f, "history", H5P_DEFAULT);
    long E = 0;
    if (gh < 0) rc = cz_error_set(err, CZ_EINVAL, "no /history");
    else {
        hid_t ds = H5Dopen2(gh, "epoch", H5P_DEFAULT);
        hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
        E = sp >= 0 ? (long)H5Sget_simple_extent_npoints(sp) : -1;
        if (sp >= 0) H5Sclose(sp);
        if (ds >= 0) H5Dclose(ds);
        if (E < 0) rc = cz_error_set(err, CZ_EINVAL, "no /history/epoch");
    }
    if (!rc && grow_to(mx, E)) rc = cz_error_set(err, CZ_ENOMEM, "out of memory");
    for (int k = 0; !rc && k < CZ_HISTORY_FIELDS; k++)
        rc = read_column(gh, cz_history_names[k], E, mx->history + k, CZ_HISTORY_FIELDS, mx->path, err);
    for (int fi = 0; !rc && fi < mx->nf; fi++) {
        char gname[128];
        snprintf(gname, sizeof gname, "tau/%s", mx->names[fi]);
        hid_t g = H5Gopen2(f, gname, H5P_DEFAULT);
        if (g < 0) {
            rc = cz_error_set(err, CZ_EINVAL, "no /%s", gname);
            break;
        }
        for (int k = 0; !rc && k < 7; k++)
            rc = read_column(g, summary_names[k], E, mx->summary + (size_t)fi * 7 + (size_t)k,
                             (size_t)mx->nf * 7, mx->path, err);
        uint64_t *tmp = rc ? NULL : malloc((size_t)(E ? E : 1) * CZ_HIST_BINS * sizeof(uint64_t));
        if (!rc && !tmp) rc = cz_error_set(err, CZ_ENOMEM, "out of memory");
        if (!rc) {
            int r = cz_h5_read(g, "counts", H5T_NATIVE_UINT64, (size_t)E * CZ_HIST_BINS, tmp, mx->path, err);
            if (r) rc = r == 1 ? cz_error_set(err, CZ_EINVAL, "/%s/counts missing", gname) : r;
        }
        for (long e = 0; !rc && e < E; e++) /* deflated once here, written as they are */
            if (zchunk_set(&mx->z[(size_t)e * (size_t)mx->nf + (size_t)fi], tmp + (size_t)e * CZ_HIST_BINS))
                rc = cz_error_set(err, CZ_ENOMEM, "out of memory");
        free(tmp);
        H5Gclose(g);
    }
    if (gh >= 0) H5Gclose(gh);
    H5Fclose(f);
    /* rows in epoch order (1, 2, ..., an epoch lost to damage may be absent): anything else
     * is not a record chainz wrote */
    for (long e = 0; !rc && e < E; e++) {
        double ep = mx->history[(size_t)e * CZ_HISTORY_FIELDS], prev = e ? mx->history[(size_t)(e - 1) * CZ_HISTORY_FIELDS] : 0;
        if (!(ep > prev) || ep != floor(ep))
            rc = cz_error_set(err, CZ_EINVAL, "/history/epoch[%ld] is %g, after %g: not in epoch order", e, ep, prev);
    }
    if (rc) return rc == CZ_ENOMEM ? rc : DAMAGED;
    /* keep the epochs the checkpoint completed; rows are in epoch order */
    long n = 0;
    while (n < E && mx->history[(size_t)n * CZ_HISTORY_FIELDS] <= (double)keep) n++;
    mx->epochs = n;
    return 0;
}

int cz_metrics_open(cz_metrics **out, const char *path, int n_families, const char *const *families,
                    const char *config_json, long keep_epochs, char *damaged, size_t damaged_len, cz_error *err)
{
    if (damaged_len) damaged[0] = 0;
    cz_h5_quiet();
    *out = NULL;
    cz_metrics *mx = calloc(1, sizeof *mx);
    if (!mx) return cz_error_set(err, CZ_ENOMEM, "out of memory");
    snprintf(mx->path, sizeof mx->path, "%s", path);
    mx->nf = n_families;
    mx->names = calloc(n_families > 0 ? (size_t)n_families : 1, sizeof *mx->names);
    mx->config = strdup(config_json ? config_json : "{}");
    int rc = (!mx->names || !mx->config || grow_to(mx, 1)) ? cz_error_set(err, CZ_ENOMEM, "out of memory") : 0;
    for (int i = 0; !rc && i < n_families; i++) snprintf(mx->names[i], sizeof mx->names[i], "%s", families[i]);
    if (!rc && keep_epochs >= 0) rc = load_existing(mx, keep_epochs, err);
    if (rc == DAMAGED) { /* nothing of it is kept: the caller sets the file aside */
        snprintf(damaged, damaged_len, "%s", err->msg);
        mx->epochs = 0;
        if (mx->file_config) mx->file_config[0] = 0;
        rc = 0;
    }
    if (rc) {
        cz_metrics_close(mx);
        return rc;
    }
    *out = mx;
    return 0;
}

/* a 1-D float64 column of E values taken with stride from src */
static int write_column(hid_t g, const char *name, const double *src, long E, size_t stride)
{
    double *tmp = malloc((size_t)(E ? E : 1) * sizeof(double));
    if (!tmp) return CZ_ENOMEM;
    for (long e = 0; e < E; e++) tmp[e] = src[(size_t)e * stride];
    size_t dims[1] = {(size_t)E};
    int rc = cz_h5_write(g, name, H5T_NATIVE_DOUBLE, 1, dims, tmp);
    free(tmp);
    return rc;
}

static hid_t group_path(hid_t f, const char *path)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t g = H5Gcreate2(f, path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(lcpl);
    return g;
}

static int write_file(const cz_metrics *mx, cz_error *err)
{
    char tmp[4200];
    cz_tmp_name(tmp, sizeof tmp, mx->path);
    cz_h5_clear_cause();
    /* built in memory and written with write(2): a full disk is an ordinary error (errno
     * text), never a half-flushed HDF5 file that crashes HDF5's exit handler */
    hid_t f = cz_h5_create_mem(tmp);
    if (f < 0) {
        const char *why = cz_h5_cause();
        unlink(tmp);
        return cz_error_set(err, CZ_EIO, "%s: cannot create %s%s%s", mx->path, tmp, why[0] ? ": " : "", why);
    }
    long E = mx->epochs;
    int rc = 0;
    char fams[4096] = "";
    for (int i = 0; i < mx->nf; i++) {
        size_t w = strlen(fams);
        snprintf(fams + w, sizeof fams - w, "%s%s", i ? "," : "", mx->names[i]);
    }
    rc |= cz_h5_set_str(f, "format", "chainz-metrics") | cz_h5_set_long(f, "version", 1) |
          cz_h5_set_str(f, "families", fams) | cz_h5_set_double(f, "alpha", CZ_HIST_ALPHA) |
          cz_h5_set_double(f, "gamma", cz_hist_gamma()) | cz_h5_set_str(f, "config", mx->config) |
          cz_h5_set_str(f, "tau_meaning", "tau = p99 / mean of the per-sample (or per-step) gradient norms of the epoch");
    hid_t gh = group_path(f, "history");
    for (int k = 0; !rc && k < CZ_HISTORY_FIELDS; k++)
        rc = write_column(gh, cz_history_names[k], mx->history + k, E, CZ_HISTORY_FIELDS);
    H5Gclose(gh);
    double *edges = malloc((CZ_HIST_BINS + 1) * sizeof(double));
    if (!edges) rc = CZ_ENOMEM;
    else cz_hist_edges(edges);
    for (int fi = 0; !rc && fi < mx->nf; fi++) {
        char gname[128];
        snprintf(gname, sizeof gname, "tau/%s", mx->names[fi]);
        hid_t g = group_path(f, gname);
        if (g < 0) {
            rc = CZ_EIO;
            break;
        }
        for (int k = 0; !rc && k < 7; k++)
            rc = write_column(g, summary_names[k], mx->summary + (size_t)fi * 7 + (size_t)k, E, (size_t)mx->nf * 7);
        size_t ed[1] = {CZ_HIST_BINS + 1};
        if (!rc) rc = cz_h5_write(g, "edges", H5T_NATIVE_DOUBLE, 1, ed, edges);
        if (!rc && E > 0) { /* chunked per epoch and deflated: mostly empty bins */
            hsize_t dims[2] = {(hsize_t)E, CZ_HIST_BINS}, chunk[2] = {1, CZ_HIST_BINS};
            hid_t sp = H5Screate_simple(2, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
            H5Pset_chunk(dcpl, 2, chunk);
            H5Pset_deflate(dcpl, COUNTS_LEVEL);
            hid_t ds = H5Dcreate2(g, "counts", H5T_NATIVE_UINT64, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
            if (ds < 0) rc = CZ_EIO;
            /* each epoch's chunk as deflated when it was appended (filter mask 0: deflate applied) */
            for (long e = 0; !rc && e < E; e++) {
                const cz_zchunk *z = &mx->z[(size_t)e * (size_t)mx->nf + (size_t)fi];
                hsize_t off[2] = {(hsize_t)e, 0};
                if (!z->p || H5Dwrite_chunk(ds, H5P_DEFAULT, 0, off, z->n, z->p) < 0) rc = CZ_EIO;
            }
            if (ds >= 0) H5Dclose(ds);
            H5Pclose(dcpl);
            H5Sclose(sp);
        }
        cz_h5_set_str(g, "counts_meaning", "epochs x bins; bin 0 counts zeros, bin i covers (edges[i], edges[i+1]]");
        H5Gclose(g);
    }
    free(edges);
    if (rc) H5Fclose(f);
    else if ((rc = cz_h5_save_mem(f, tmp, 0, err))) return rc;
    if (rc) {
        unlink(tmp);
        const char *why = cz_h5_cause();
        return cz_error_set(err, CZ_EIO, "%s: writing the metrics failed%s%s", mx->path, why[0] ? ": " : "", why);
    }
    rc = cz_file_commit(tmp, mx->path, err);
    if (rc) unlink(tmp);
    return rc;
}

int cz_metrics_append_rows(cz_metrics *mx, const double *rows, long n, cz_error *err)
{
    if (grow_to(mx, mx->epochs + n)) return cz_error_set(err, CZ_ENOMEM, "out of memory for the metrics");
    uint64_t *zero = NULL; /* the counts of a lost epoch */
    int rc = 0;
    for (long i = 0; i < n; i++, mx->epochs++) {
        size_t e = (size_t)mx->epochs;
        memcpy(mx->history + e * CZ_HISTORY_FIELDS, rows + (size_t)i * CZ_HISTORY_FIELDS,
               CZ_HISTORY_FIELDS * sizeof(double));
        for (int fi = 0; fi < mx->nf; fi++) { /* lost: no samples, no quantiles */
            double *dst = mx->summary + (e * (size_t)mx->nf + (size_t)fi) * 7;
            dst[0] = 0;
            for (int k = 1; k < 7; k++) dst[k] = NAN;
            if (!zero && !(zero = calloc(CZ_HIST_BINS, sizeof *zero))) rc = CZ_ENOMEM;
            if (!rc) rc = zchunk_set(&mx->z[e * (size_t)mx->nf + (size_t)fi], zero);
            if (rc) break;
        }
        if (rc) break;
    }
    free(zero);
    if (rc) return cz_error_set(err, CZ_ENOMEM, "out of memory for the metrics");
    return write_file(mx, err);
}

int cz_metrics_append(cz_metrics *mx, const double *row, const cz_hist *hists, cz_error *err)
{
    if (grow_to(mx, mx->epochs + 1)) return cz_error_set(err, CZ_ENOMEM, "out of memory for the metrics");
    long e = mx->epochs;
    memcpy(mx->history + (size_t)e * CZ_HISTORY_FIELDS, row, CZ_HISTORY_FIELDS * sizeof(double));
    for (int fi = 0; fi < mx->nf; fi++) {
        cz_hist_summary s;
        cz_hist_summarize(&hists[fi], &s);
        double *dst = mx->summary + ((size_t)e * (size_t)mx->nf + (size_t)fi) * 7;
        double v[7] = {s.count, s.mean, s.p50, s.p90, s.p99, s.max, s.tau};
        memcpy(dst, v, sizeof v);
        if (zchunk_set(&mx->z[(size_t)e * (size_t)mx->nf + (size_t)fi], hists[fi].counts))
            return cz_error_set(err, CZ_ENOMEM, "out of memory for the metrics");
    }
    mx->epochs++;
    return write_file(mx, err);
}
