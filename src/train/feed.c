/* The data feed: chunks, their loading and standardization, feature statistics (feed.h). */
#include "feed.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int cz_feed_init(cz_feed *io, cz_data *ds, size_t M, const float *mean, const float *std, cz_error *err)
{
    memset(io, 0, sizeof *io);
    io->ds = ds;
    io->d = cz_data_get_info(ds)->d;
    io->mean = mean;
    io->std = std;
    io->x = malloc(M * io->d * sizeof(float));
    io->yc = malloc(M * sizeof(int32_t));
    io->yv = malloc(M * sizeof(float));
    io->keys = malloc(M * sizeof(uint64_t));
    io->rows = malloc(M * sizeof(uint64_t));
    if (!io->x || !io->yc || !io->yv || !io->keys || !io->rows)
        return cz_error_set(err, CZ_ENOMEM, "out of memory for a micro-batch of %zu", M);
    return 0;
}

void cz_feed_free(cz_feed *io)
{
    if (!io) return;
    free(io->x);
    free(io->yc);
    free(io->yv);
    free(io->keys);
    free(io->rows);
}

int cz_feed_load(cz_feed *io, size_t n, cz_error *err)
{
    int rc = cz_data_read_rows(io->ds, io->rows, n, io->x, err);
    if (rc) return rc;
    if (io->mean)
        for (size_t b = 0; b < n; b++)
            for (size_t j = 0; j < io->d; j++)
                io->x[b * io->d + j] = (io->x[b * io->d + j] - io->mean[j]) / io->std[j];
    const int32_t *yc = cz_data_labels_class(io->ds);
    const float *yv = cz_data_labels_value(io->ds);
    for (size_t b = 0; b < n; b++) {
        if (yc) io->yc[b] = yc[io->rows[b]];
        if (yv) io->yv[b] = yv[io->rows[b]];
    }
    return 0;
}

void cz_feed_my_chunks(size_t C, int r, int P, size_t *c0, size_t *c1)
{
    *c0 = C * (size_t)r / (size_t)P;
    *c1 = C * (size_t)(r + 1) / (size_t)P;
}

int cz_feed_check_rows(const cz_dist *d, cz_data *ds, float *x, const uint64_t *rows, size_t n, size_t M,
                       cz_error *err)
{
    size_t C = (n + M - 1) / M, c0, c1;
    cz_feed_my_chunks(C, d->rank, d->size, &c0, &c1);
    int rc = 0;
    for (size_t c = c0; c < c1 && !rc; c++) {
        size_t b0 = c * M, nb = n - b0 < M ? n - b0 : M;
        rc = cz_data_read_rows(ds, rows + b0, nb, x, err);
    }
    return cz_dist_agree(d, rc, err);
}

int cz_feed_stats(const cz_dist *d, cz_data *ds, const uint64_t *rows, size_t n, float *mean, float *std,
                  cz_error *err)
{
    size_t dd = cz_data_get_info(ds)->d;
    int rc = 0;
    if (d->rank == 0) {
        enum { BLK = 256 };
        double *s1 = calloc(dd, sizeof(double)), *s2 = calloc(dd, sizeof(double));
        float *x = malloc(BLK * dd * sizeof(float));
        if (!s1 || !s2 || !x) rc = cz_error_set(err, CZ_ENOMEM, "out of memory for feature statistics");
        /* two passes (mean, then squared deviations): no cancellation for offset features */
        for (int pass = 0; pass < 2 && !rc; pass++) {
            for (size_t b0 = 0; b0 < n && !rc; b0 += BLK) {
                size_t nb = n - b0 < BLK ? n - b0 : BLK;
                rc = cz_data_read_rows(ds, rows + b0, nb, x, err);
                for (size_t b = 0; b < nb && !rc; b++)
                    for (size_t j = 0; j < dd; j++) {
                        double v = x[b * dd + j];
                        if (pass == 0) s1[j] += v;
                        else s2[j] += (v - s1[j]) * (v - s1[j]);
                    }
            }
            for (size_t j = 0; pass == 0 && j < dd; j++) s1[j] /= (double)n;
        }
        for (size_t j = 0; j < dd && !rc; j++) {
            double sd = sqrt(s2[j] / (double)n);
            mean[j] = (float)s1[j];
            /* a constant feature (spread at rounding level of its mean) would divide by ~0:
             * leave it centred and unscaled; tiny but real spreads are scaled */
            std[j] = sd > 1e-6 * fabs(s1[j]) && sd > 1e-30 ? (float)sd : 1.0f;
        }
        free(s1);
        free(s2);
        free(x);
    }
    rc = cz_dist_agree(d, rc, err);
    if (!rc) rc = cz_dist_bcast(d, mean, dd * sizeof(float), 0, err);
    if (!rc) rc = cz_dist_bcast(d, std, dd * sizeof(float), 0, err);
    return rc;
}

/* The same doubles, added in the same order, whatever the world size; and none of them
 * passes through the gradient's fixed point, whose range (2^46) a loss sum of large
 * regression targets exceeds. */
int cz_feed_sum_scalars(const cz_dist *d, double *per_chunk, size_t C, double out[CZ_SC_N], cz_error *err)
{
    int rc = cz_dist_sum_double(d, per_chunk, C * CZ_SC_N, err);
    if (rc) return rc;
    for (int k = 0; k < CZ_SC_N; k++) out[k] = 0;
    for (size_t c = 0; c < C; c++)
        for (int k = 0; k < CZ_SC_N; k++) out[k] += per_chunk[c * CZ_SC_N + k];
    return 0;
}
