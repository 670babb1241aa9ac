/* IDX reader (MNIST, Fashion-MNIST) -> cz_prep_set. Format and checks are documented in
 * include/chainz/prep.h. Files are read through zlib (gzip or plain, told apart by the
 * gzip magic bytes) in chunks of rows, converting bytes to floats on the way. */
#include "chainz/prep.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_CLASSES 10

/* Reads exactly n bytes, or fails naming what was being read. */
static int read_exact(gzFile g, void *buf, size_t n, const char *path, const char *what,
                      cz_error *err)
{
    unsigned char *p = buf;
    size_t got = 0;
    while (got < n) {
        size_t want = n - got < (size_t)INT_MAX ? n - got : (size_t)INT_MAX;
        int r = gzread(g, p + got, (unsigned)want);
        if (r < 0) {
            int zerr = 0;
            const char *m = gzerror(g, &zerr);
            return cz_error_set(err, CZ_EIO, "%s: read failed in %s: %s", path, what,
                                zerr == Z_ERRNO ? strerror(errno) : m);
        }
        if (r == 0)
            return cz_error_set(err, CZ_EINVAL, "%s: file ends in %s (%zu of %zu bytes there)", path,
                                what, got, n);
        got += (size_t)r;
    }
    return 0;
}

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* Opens an IDX file and reads its header: magic 0x0000 08 <ndims>, then ndims big-endian
 * uint32 sizes. */
static int open_idx(gzFile *out, const char *path, int ndims, uint32_t *dims, const char *kind,
                    cz_error *err)
{
    errno = 0;
    gzFile g = gzopen(path, "rb");
    if (!g)
        return cz_error_set(err, CZ_EIO, "%s: cannot open: %s", path,
                            errno ? strerror(errno) : "out of memory");
    unsigned char h[4 + 4 * 3];
    int rc = read_exact(g, h, 4, path, "the IDX magic number", err);
    if (!rc && (h[0] || h[1] || h[2] != 0x08 || h[3] != ndims)) {
        if (h[0] || h[1])
            rc = cz_error_set(err, CZ_EINVAL,
                              "%s: not an IDX file: magic number %02x%02x%02x%02x, expected 000008%02x "
                              "for %s", path, h[0], h[1], h[2], h[3], ndims, kind);
        else if (h[2] != 0x08)
            rc = cz_error_set(err, CZ_EINVAL,
                              "%s: IDX element type 0x%02x, expected 0x08 (unsigned byte) for %s",
                              path, h[2], kind);
        else
            rc = cz_error_set(err, CZ_EINVAL,
                              "%s: IDX file has %d dimension(s), expected %d for %s (magic 000008%02x)",
                              path, h[3], ndims, kind, ndims);
    }
    if (!rc) rc = read_exact(g, h + 4, 4 * (size_t)ndims, path, "the IDX dimensions", err);
    for (int i = 0; !rc && i < ndims; i++) {
        dims[i] = be32(h + 4 + 4 * i);
        if (dims[i] == 0)
            rc = cz_error_set(err, CZ_EINVAL, "%s: IDX dimension %d is 0: no %s", path, i, kind);
    }
    if (rc) {
        gzclose_r(g);
        return rc;
    }
    *out = g;
    return 0;
}

/* Checks that nothing follows the announced data, then closes. */
static int close_idx(gzFile g, const char *path, const char *what, cz_error *err)
{
    unsigned char extra;
    int r = gzread(g, &extra, 1);
    int zc = gzclose_r(g);
    if (r > 0)
        return cz_error_set(err, CZ_EINVAL, "%s: extra bytes after the %s that the header announces",
                            path, what);
    if (r < 0 || zc != Z_OK)
        return cz_error_set(err, CZ_EIO, "%s: read failed at the end of the file (damaged gzip?)", path);
    return 0;
}

int cz_prep_idx_read(cz_prep_set *out, const char *images_path, const char *labels_path,
                     cz_error *err)
{
    memset(out, 0, sizeof *out);
    gzFile gi = NULL, gl = NULL;
    uint32_t idim[3], ldim[1];
    unsigned char *buf = NULL;
    int rc = open_idx(&gi, images_path, 3, idim, "images [N, rows, cols]", err);
    if (!rc) rc = open_idx(&gl, labels_path, 1, ldim, "labels [N]", err);
    if (rc) goto fail;
    if (idim[0] != ldim[0]) {
        rc = cz_error_set(err, CZ_EINVAL, "%s has %lu images but %s has %lu labels: counts must agree",
                          images_path, (unsigned long)idim[0], labels_path, (unsigned long)ldim[0]);
        goto fail;
    }
    size_t n = idim[0], d = (size_t)idim[1] * idim[2];
    if (d > SIZE_MAX / sizeof(float) / n) {
        rc = cz_error_set(err, CZ_EINVAL, "%s: %zu images of %zu pixels do not fit in memory",
                          images_path, n, d);
        goto fail;
    }
    size_t chunk = d < 65536 ? 65536 / d : 1;
    out->x = malloc(n * d * sizeof *out->x);
    out->y_class = malloc(n * sizeof *out->y_class);
    out->class_names = calloc(IDX_CLASSES, sizeof *out->class_names);
    buf = malloc((chunk * d > n ? chunk * d : n));
    if (!out->x || !out->y_class || !out->class_names || !buf) {
        rc = cz_error_set(err, CZ_ENOMEM, "%s: out of memory for %zu x %zu features", images_path, n, d);
        goto fail;
    }
    out->classes = IDX_CLASSES;
    for (int k = 0; k < IDX_CLASSES; k++) {
        char name[12];
        snprintf(name, sizeof name, "%d", k);
        if (!(out->class_names[k] = strdup(name))) {
            rc = cz_error_set(err, CZ_ENOMEM, "%s: out of memory", images_path);
            goto fail;
        }
    }
    for (size_t r0 = 0; r0 < n; r0 += chunk) {
        size_t nr = n - r0 < chunk ? n - r0 : chunk;
        char what[64];
        snprintf(what, sizeof what, "images %zu..%zu", r0, r0 + nr - 1);
        if ((rc = read_exact(gi, buf, nr * d, images_path, what, err))) goto fail;
        float *x = out->x + r0 * d; /* [nr x d] */
        for (size_t i = 0; i < nr * d; i++) x[i] = (float)buf[i] / 255.0f;
    }
    rc = close_idx(gi, images_path, "images", err);
    gi = NULL;
    if (rc) goto fail;
    if ((rc = read_exact(gl, buf, n, labels_path, "the labels", err))) goto fail;
    for (size_t i = 0; i < n; i++) {
        if (buf[i] >= IDX_CLASSES) {
            rc = cz_error_set(err, CZ_EINVAL, "%s: label %zu (0-based) is %u, expected 0..%d", labels_path,
                              i, buf[i], IDX_CLASSES - 1);
            goto fail;
        }
        out->y_class[i] = buf[i];
    }
    rc = close_idx(gl, labels_path, "labels", err);
    gl = NULL;
    if (rc) goto fail;
    out->n = n;
    out->d = d;
    out->task = CZ_HEAD_CLASSIFY;
    out->image_rows = idim[1];
    out->image_cols = idim[2];
    snprintf(out->source, sizeof out->source, "idx images %s [%lu x %lu x %lu], labels %s",
             images_path, (unsigned long)idim[0], (unsigned long)idim[1], (unsigned long)idim[2],
             labels_path);
    free(buf);
    return 0;
fail:
    if (gi) gzclose_r(gi);
    if (gl) gzclose_r(gl);
    free(buf);
    cz_prep_set_free(out);
    return rc;
}
