/* The streamed chainz-data writer and the writes of in-memory sets.
 *
 * This is the one file of src/prep that includes hdf5.h (through src/io/h5util.h, whose
 * helpers it uses): cz_data_write takes a whole feature matrix in memory, which a streamed
 * text set cannot give. It writes the same layout as cz_data_write (DESIGN.md section 3:
 * /features float32 [N, d] contiguous, /labels, the same root attributes) plus /stats and
 * the featurizer attribute, under a temporary name that cz_prep_out_commit renames. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../io/h5util.h"

#define OUT_BLOCK_BYTES ((size_t)4 << 20)

struct cz_prep_out {
    char path[4096], tmp[4200];
    hid_t file, feat;
    size_t n, d, pushed, block_rows, in_block;
    cz_head task;
    int classes, stats;
    float *block;     /* [block_rows x d] rows not yet written */
    int32_t *yc;      /* [n] classify/ordinal */
    float *yv;        /* [n] regress */
    double *mean, *m2; /* [d] Welford running mean and sum of squared deviations */
    size_t image_rows, image_cols; /* image sets: the shape of a row (0: not an image) */
    char note_name[CZ_PREP_OUT_NOTES][32], note[CZ_PREP_OUT_NOTES][512]; /* more attributes */
    int notes;
};

#define H5_CHECK(call, what)                                                                  \
    do {                                                                                      \
        if ((call) < 0)                                                                       \
            return cz_error_set(err, CZ_EIO, "%s: HDF5 failed to %s (%s:%d)", o->path, what,   \
                                __FILE__, __LINE__);                                          \
    } while (0)

void cz_prep_out_abort(cz_prep_out *o)
{
    if (!o) return;
    if (o->feat >= 0) H5Dclose(o->feat);
    if (o->file >= 0) H5Fclose(o->file);
    if (o->tmp[0]) unlink(o->tmp);
    free(o->block);
    free(o->yc);
    free(o->yv);
    free(o->mean);
    free(o->m2);
    free(o);
}

int cz_prep_out_open(cz_prep_out **out, const char *path, size_t n, size_t d, cz_head task,
                     int classes, int stats, cz_error *err)
{
    *out = NULL;
    if (n == 0 || d == 0)
        return cz_error_set(err, CZ_EINVAL, "%s: no rows to write (%zu x %zu)", path, n, d);
    cz_prep_out *o = calloc(1, sizeof *o);
    if (!o) return cz_error_set(err, CZ_ENOMEM, "%s: out of memory", path);
    o->file = o->feat = -1;
    snprintf(o->path, sizeof o->path, "%s", path);
    o->n = n;
    o->d = d;
    o->task = task;
    o->classes = classes;
    o->stats = stats;
    o->block_rows = OUT_BLOCK_BYTES / (d * sizeof(float));
    if (o->block_rows < 1) o->block_rows = 1;
    if (o->block_rows > n) o->block_rows = n;
    o->block = malloc(o->block_rows * d * sizeof *o->block);
    if (task == CZ_HEAD_REGRESS) o->yv = malloc(n * sizeof *o->yv);
    else o->yc = malloc(n * sizeof *o->yc);
    if (stats) {
        o->mean = calloc(d, sizeof *o->mean);
        o->m2 = calloc(d, sizeof *o->m2);
    }
    if (!o->block || (!o->yv && !o->yc) || (stats && (!o->mean || !o->m2))) {
        cz_prep_out_abort(o);
        return cz_error_set(err, CZ_ENOMEM, "%s: out of memory for %zu rows", path, n);
    }
    cz_h5_quiet();
    cz_tmp_name(o->tmp, sizeof o->tmp, path);
    o->file = H5Fcreate(o->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (o->file < 0) {
        int rc = cz_error_set(err, CZ_EIO, "%s: cannot create %s (folder missing or not writable?)",
                              path, o->tmp);
        o->tmp[0] = '\0';
        cz_prep_out_abort(o);
        return rc;
    }
    hsize_t dims[2] = {n, d};
    hid_t sp = H5Screate_simple(2, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    int ok = sp >= 0 && dcpl >= 0 && H5Pset_layout(dcpl, H5D_CONTIGUOUS) >= 0 &&
             H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) >= 0 &&
             H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) >= 0; /* every row gets written */
    if (ok)
        o->feat = H5Dcreate2(o->file, "features", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
    if (!ok || o->feat < 0) {
        int rc = cz_error_set(err, CZ_EIO, "%s: cannot create /features [%zu, %zu] (disk full?)", path, n, d);
        cz_prep_out_abort(o);
        return rc;
    }
    *out = o;
    return 0;
}

void cz_prep_out_set_image(cz_prep_out *o, size_t rows, size_t cols)
{
    o->image_rows = rows;
    o->image_cols = cols;
}

int cz_prep_out_set_note(cz_prep_out *o, const char *name, const char *value, cz_error *err)
{
    if (o->notes >= CZ_PREP_OUT_NOTES || strlen(name) >= sizeof o->note_name[0])
        return cz_error_set(err, CZ_EINVAL, "%s: too many attributes or name too long: '%s'", o->path, name);
    snprintf(o->note_name[o->notes], sizeof o->note_name[0], "%s", name);
    snprintf(o->note[o->notes], sizeof o->note[0], "%s", value);
    o->notes++;
    return 0;
}

float *cz_prep_out_row(cz_prep_out *o) { return o->block + o->in_block * o->d; }

static int flush_block(cz_prep_out *o, cz_error *err)
{
    if (!o->in_block) return 0;
    hsize_t start[2] = {o->pushed - o->in_block, 0}, count[2] = {o->in_block, o->d};
    hid_t fsp = H5Dget_space(o->feat);
    if (fsp < 0) return cz_error_set(err, CZ_EIO, "%s: HDF5 failed to get the dataspace", o->path);
    hid_t msp = H5Screate_simple(2, count, NULL);
    herr_t st = msp < 0 ? -1 : H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL);
    if (st >= 0) st = H5Dwrite(o->feat, H5T_NATIVE_FLOAT, msp, fsp, H5P_DEFAULT, o->block);
    if (msp >= 0) H5Sclose(msp);
    H5Sclose(fsp);
    if (st < 0)
        return cz_error_set(err, CZ_EIO, "%s: writing rows %llu..%llu of /features failed (disk full?)",
                            o->path, (unsigned long long)start[0],
                            (unsigned long long)(start[0] + count[0] - 1));
    o->in_block = 0;
    return 0;
}

int cz_prep_out_push(cz_prep_out *o, int32_t yc, float yv, cz_error *err)
{
    if (o->pushed >= o->n)
        return cz_error_set(err, CZ_EINVAL, "%s: more than the %zu rows announced", o->path, o->n);
    const float *x = cz_prep_out_row(o);
    size_t d = o->d;
    for (size_t j = 0; j < d; j++)
        if (!isfinite(x[j]))
            return cz_error_set(err, CZ_EINVAL, "%s: row %zu feature %zu is not finite (%g)", o->path,
                                o->pushed, j, (double)x[j]);
    if (o->stats) {
        double inv = 1.0 / (double)(o->pushed + 1);
        for (size_t j = 0; j < d; j++) {
            double delta = (double)x[j] - o->mean[j];
            o->mean[j] += delta * inv;
            o->m2[j] += delta * ((double)x[j] - o->mean[j]);
        }
    }
    if (o->yc) o->yc[o->pushed] = yc;
    else o->yv[o->pushed] = yv;
    o->pushed++;
    o->in_block++;
    return o->in_block == o->block_rows ? flush_block(o, err) : 0;
}

static int write_stats(cz_prep_out *o, cz_error *err)
{
    size_t d = o->d;
    float *m = malloc(2 * d * sizeof *m);
    if (!m) return cz_error_set(err, CZ_ENOMEM, "%s: out of memory", o->path);
    for (size_t j = 0; j < d; j++) {
        m[j] = (float)o->mean[j];
        m[d + j] = (float)sqrt(o->m2[j] / (double)o->n);
    }
    hid_t g = H5Gcreate2(o->file, "stats", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = g < 0 ? CZ_EIO : 0;
    if (!rc) rc = cz_h5_write(g, "mean", H5T_NATIVE_FLOAT, 1, &d, m);
    if (!rc) rc = cz_h5_write(g, "std", H5T_NATIVE_FLOAT, 1, &d, m + d);
    if (!rc)
        rc = cz_h5_set_str(g, "meaning",
                           "standardization statistics of the training split, computed by chainz "
                           "prep over the rows of this file: mean [d] and population standard "
                           "deviation (ddof 0) std [d] of each column of /features, float32 "
                           "(accumulated in float64). /features is NOT standardized; to do it use "
                           "(x - mean) / std, with std 0 for a constant column") |
             cz_h5_set_str(g, "computed_on", "train") | cz_h5_set_long(g, "rows", (long)o->n);
    if (g >= 0 && H5Gclose(g) < 0 && !rc) rc = CZ_EIO;
    free(m);
    return rc ? cz_error_set(err, CZ_EIO, "%s: writing /stats failed", o->path) : 0;
}

int cz_prep_out_finish(cz_prep_out *o, const char *source, const char *featurizer,
                       cz_error *err)
{
    int rc = flush_block(o, err);
    if (rc) return rc;
    if (o->pushed != o->n)
        return cz_error_set(err, CZ_EINVAL, "%s: %zu rows written, %zu announced", o->path, o->pushed, o->n);
    size_t dims[1] = {o->n};
    rc = o->yc ? cz_h5_write(o->file, "labels", H5T_NATIVE_INT32, 1, dims, o->yc)
               : cz_h5_write(o->file, "labels", H5T_NATIVE_FLOAT, 1, dims, o->yv);
    if (rc) return cz_error_set(err, CZ_EIO, "%s: writing /labels failed", o->path);
    int regress = o->task == CZ_HEAD_REGRESS;
    rc = cz_h5_set_str(o->file, "format", "chainz-data") | cz_h5_set_long(o->file, "version", 1) |
         cz_h5_set_str(o->file, "task", cz_head_name(o->task)) |
         cz_h5_set_long(o->file, "classes", regress ? 0 : o->classes) |
         cz_h5_set_str(o->file, "source", source ? source : "") |
         cz_h5_set_str(o->file, "features_meaning", "float32 [N, d]: one sample per row") |
         cz_h5_set_str(o->file, "labels_meaning",
                       regress ? "float32 [N]: target value" : "int32 [N]: class index 0..K-1");
    if (!rc && featurizer) rc = cz_h5_set_str(o->file, "featurizer", featurizer);
    if (!rc && o->image_rows)
        rc = cz_h5_set_long(o->file, "image_rows", (long)o->image_rows) |
             cz_h5_set_long(o->file, "image_cols", (long)o->image_cols) |
             cz_h5_set_str(o->file, "image_meaning",
                           "each row of /features is an image_rows x image_cols image, row-major "
                           "(feature r * image_cols + c is pixel (r, c)), values in [0, 1]");
    for (int i = 0; !rc && i < o->notes; i++) rc = cz_h5_set_str(o->file, o->note_name[i], o->note[i]);
    if (rc) return cz_error_set(err, CZ_EIO, "%s: writing the attributes failed", o->path);
    if (o->stats && (rc = write_stats(o, err))) return rc;
    H5_CHECK(H5Dclose(o->feat), "close /features");
    o->feat = -1;
    herr_t st = H5Fclose(o->file);
    o->file = -1;
    if (st < 0) return cz_error_set(err, CZ_EIO, "%s: closing %s failed (disk full?)", o->path, o->tmp);
    return 0;
}

int cz_prep_out_commit(cz_prep_out *o, cz_error *err)
{
    if (o->file >= 0)
        return cz_error_set(err, CZ_EINVAL, "%s: committed before it was finished", o->path);
    int rc = cz_file_commit(o->tmp, o->path, err);
    if (!rc) o->tmp[0] = '\0'; /* renamed: nothing left to remove */
    cz_prep_out_abort(o);
    return rc;
}

int cz_prep_write(const cz_prep_set *s, const uint64_t *rows, size_t n, const char *path,
                  const char *source_note, int stats, cz_error *err)
{
    char source[512];
    snprintf(source, sizeof source, "%s%s%s", s->source, source_note ? "; " : "",
             source_note ? source_note : "");
    if (!rows) n = s->n;
    if (n == 0) return cz_error_set(err, CZ_EINVAL, "%s: no rows to write (the split is empty)", path);
    cz_prep_out *o;
    int rc = cz_prep_out_open(&o, path, n, s->d, s->task, s->classes, stats, err);
    if (rc) return rc;
    if (s->image_rows) cz_prep_out_set_image(o, s->image_rows, s->image_cols);
    for (size_t i = 0; i < n && !rc; i++) {
        uint64_t r = rows ? rows[i] : i;
        if (r >= s->n) {
            rc = cz_error_set(err, CZ_EINVAL, "%s: row %llu out of range (n = %zu)", path,
                              (unsigned long long)r, s->n);
            break;
        }
        memcpy(cz_prep_out_row(o), s->x + r * s->d, s->d * sizeof *s->x);
        rc = cz_prep_out_push(o, s->y_class ? s->y_class[r] : 0, s->y_value ? s->y_value[r] : 0, err);
    }
    if (!rc) rc = cz_prep_out_finish(o, source, s->featurizer[0] ? s->featurizer : NULL, err);
    if (rc) {
        cz_prep_out_abort(o);
        return rc;
    }
    return cz_prep_out_commit(o, err);
}

int cz_prep_stats_read(const char *path, float *mean, float *std, size_t d, cz_error *err)
{
    cz_h5_quiet();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return cz_error_set(err, CZ_EIO, "%s: cannot open as HDF5", path);
    int rc;
    if (H5Lexists(f, "stats", H5P_DEFAULT) <= 0) {
        rc = 1;
    } else {
        hid_t g = H5Gopen2(f, "stats", H5P_DEFAULT);
        rc = g < 0 ? cz_error_set(err, CZ_EIO, "%s: cannot open /stats", path) : 0;
        if (!rc) rc = cz_h5_read(g, "mean", H5T_NATIVE_FLOAT, d, mean, path, err);
        if (!rc) rc = cz_h5_read(g, "std", H5T_NATIVE_FLOAT, d, std, path, err);
        if (rc == 1) rc = cz_error_set(err, CZ_EINVAL, "%s: /stats lacks mean or std", path);
        if (g >= 0) H5Gclose(g);
    }
    H5Fclose(f);
    return rc;
}

int cz_prep_image_shape_read(const char *path, size_t *rows, size_t *cols, cz_error *err)
{
    *rows = *cols = 0;
    cz_h5_quiet();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return cz_error_set(err, CZ_EIO, "%s: cannot open as HDF5", path);
    long r = 0, c = 0;
    int rr = cz_h5_attr_long(f, "image_rows", &r), rc_ = cz_h5_attr_long(f, "image_cols", &c), rc;
    if (rr < 0 || rc_ < 0)
        rc = cz_error_set(err, CZ_EIO, "%s: cannot read the image_rows / image_cols attributes", path);
    else if (rr == 1 && rc_ == 1)
        rc = 1;
    else if (rr == 1 || rc_ == 1)
        rc = cz_error_set(err, CZ_EINVAL, "%s: has %s but not %s: expected both attributes or neither",
                          path, rr ? "image_cols" : "image_rows", rr ? "image_rows" : "image_cols");
    else if (r < 1 || c < 1 || r > 65536 || c > 65536)
        rc = cz_error_set(err, CZ_EINVAL, "%s: image_rows %ld, image_cols %ld: expected 1..65536 each",
                          path, r, c);
    else {
        *rows = (size_t)r;
        *cols = (size_t)c;
        rc = 0;
    }
    H5Fclose(f);
    return rc;
}

int cz_prep_same_file(const char *a, const char *b)
{
    struct stat sa, sb; /* by identity, not by name: ./x, a/../x and hard links are the same file */
    return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}
