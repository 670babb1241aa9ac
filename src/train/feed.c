/* The data feed: chunks, their loading and standardization, feature statistics (feed.h). */
#include "feed.h"

#include "chainz/rng.h"
#include "chainz/standardize.h"

#include <math.h>
#include <stdio.h>
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
    if (io->mean) cz_standardize(io->x, n, io->d, io->mean, io->std, io->clip);
    const int32_t *yc = cz_data_labels_class(io->ds);
    const float *yv = cz_data_labels_value(io->ds);
    for (size_t b = 0; b < n; b++) {
        if (yc) io->yc[b] = yc[io->rows[b]];
        if (yv) io->yv[b] = yv[io->rows[b]];
    }
    return 0;
}

int cz_feed_check_rows(const cz_dist *d, cz_data *ds, float *x, const uint64_t *rows, size_t n, size_t M,
                       cz_error *err)
{
    size_t C = (n + M - 1) / M, c0, c1;
    cz_chunk_share(C, d->rank, d->size, &c0, &c1);
    int rc = 0;
    for (size_t c = c0; c < c1 && !rc; c++) {
        size_t b0 = c * M, nb = n - b0 < M ? n - b0 : M;
        rc = cz_data_read_rows(ds, rows + b0, nb, x, err);
    }
    return cz_dist_agree(d, rc, err);
}

/* The features a z-score limit `lim` affects, worst first, on stdout: a near-constant
 * feature (std 1e-4) turns an ordinary value into z = 100, which a cubic activation makes
 * 1e6 (issue 14's Fashion-MNIST divergence). */
static void report_outliers(const double *zmax, const float *std, size_t dd, double lim, double clip)
{
    size_t count = 0;
    for (size_t j = 0; j < dd; j++) count += zmax[j] > lim;
    if (!count) return;
    printf("chainz: standardization: %zu of %zu features have training values beyond %g standard deviations",
           count, dd, lim);
    if (clip > 0) printf(", clipped to +-%g (--clip-z; 0 turns it off)", clip);
    printf(". Largest:");
    size_t pick[5]; /* the five worst, by selection: dd may be millions */
    int np = 0;
    for (; np < 5 && (size_t)np < count; np++) {
        size_t best = dd;
        for (size_t j = 0; j < dd; j++) {
            int taken = 0;
            for (int k = 0; k < np; k++) taken |= pick[k] == j;
            if (!taken && zmax[j] > lim && (best == dd || zmax[j] > zmax[best])) best = j;
        }
        pick[np] = best;
        printf("%s feature %zu (|z| up to %.3g, std %.3g)", np ? "," : "", best, zmax[best], std[best]);
    }
    if (clip <= 0) printf("; CR's cubic activations amplify such inputs: consider --clip-z 3");
    printf("\n");
    fflush(stdout);
}

int cz_feed_stats(const cz_dist *d, cz_data *ds, const uint64_t *rows, size_t n, double clip, float *mean,
                  float *std, cz_error *err)
{
    size_t dd = cz_data_get_info(ds)->d;
    int rc = 0;
    if (d->rank == 0) {
        enum { BLK = 256 };
        double *s1 = calloc(dd, sizeof(double)), *s2 = calloc(dd, sizeof(double));
        double *dev = calloc(dd, sizeof(double)); /* largest |x - mean| */
        float *x = malloc(BLK * dd * sizeof(float));
        if (!s1 || !s2 || !dev || !x) rc = cz_error_set(err, CZ_ENOMEM, "out of memory for feature statistics");
        /* two passes (mean, then squared deviations): no cancellation for offset features */
        for (int pass = 0; pass < 2 && !rc; pass++) {
            for (size_t b0 = 0; b0 < n && !rc; b0 += BLK) {
                size_t nb = n - b0 < BLK ? n - b0 : BLK;
                rc = cz_data_read_rows(ds, rows + b0, nb, x, err);
                for (size_t b = 0; b < nb && !rc; b++)
                    for (size_t j = 0; j < dd; j++) {
                        double v = x[b * dd + j];
                        if (pass == 0) s1[j] += v;
                        else {
                            s2[j] += (v - s1[j]) * (v - s1[j]);
                            if (fabs(v - s1[j]) > dev[j]) dev[j] = fabs(v - s1[j]);
                        }
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
            dev[j] /= std[j];
        }
        if (!rc) report_outliers(dev, std, dd, clip > 0 ? clip : 10, clip);
        free(dev);
        free(s1);
        free(s2);
        free(x);
    }
    rc = cz_dist_agree(d, rc, err);
    if (!rc) rc = cz_dist_bcast(d, mean, dd * sizeof(float), 0, err);
    if (!rc) rc = cz_dist_bcast(d, std, dd * sizeof(float), 0, err);
    return rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int cz_feed_holdout(uint64_t *perm, size_t N, double fraction, uint64_t seed, const int32_t *labels, int classes,
                    int stratified, size_t *n_hold, cz_error *err)
{
    size_t nh = (size_t)floor(fraction * (double)N);
    *n_hold = nh;
    if (fraction > 0 && (nh == 0 || nh >= N))
        return cz_error_set(err, CZ_EINVAL, "--holdout %g of %zu rows leaves no training or validation rows",
                            fraction, N);
    cz_rng r;
    cz_rng_seed(&r, cz_hash64(seed, 0x686f6c646f7574ULL)); /* "holdout" */
    if (!nh) {
        for (size_t i = 0; i < N; i++) perm[i] = i;
        return 0;
    }
    cz_rng_permutation(&r, perm, N);
    if (stratified && labels && classes > 0) {
        /* quota per class: floor(f n_c), then one more for the largest remainders (ties: the
         * lower class) until the quotas add up to n_hold */
        size_t K = (size_t)classes, *cnt = calloc(K, sizeof(size_t)), *quota = calloc(K, sizeof(size_t));
        uint64_t *out = malloc(N * sizeof(uint64_t));
        if (!cnt || !quota || !out) {
            free(cnt), free(quota), free(out);
            return cz_error_set(err, CZ_ENOMEM, "out of memory for the holdout of %zu rows", N);
        }
        for (size_t i = 0; i < N; i++) cnt[labels[i]]++;
        size_t given = 0;
        for (size_t c = 0; c < K; c++) given += quota[c] = (size_t)floor(fraction * (double)cnt[c]);
        while (given < nh) {
            size_t best = K;
            double br = -1;
            for (size_t c = 0; c < K; c++) {
                double rem = fraction * (double)cnt[c] - (double)quota[c];
                if (quota[c] < cnt[c] && rem > br) br = rem, best = c;
            }
            quota[best]++, given++;
        }
        /* the permutation's order decides which rows of a class are held out */
        size_t h = 0, t = nh;
        for (size_t i = 0; i < N; i++) {
            int32_t c = labels[perm[i]];
            if (quota[c]) quota[c]--, out[h++] = perm[i];
            else out[t++] = perm[i];
        }
        memcpy(perm, out, N * sizeof(uint64_t));
        free(cnt), free(quota), free(out);
    }
    qsort(perm, nh, sizeof *perm, cmp_u64);
    qsort(perm + nh, N - nh, sizeof *perm, cmp_u64);
    return 0;
}

/* The same doubles, added in the same order, whatever the world size. */
int cz_feed_sum_scalars(const cz_dist *d, double *per_chunk, size_t C, double out[CZ_SC_N], cz_error *err)
{
    int rc = cz_dist_sum_double(d, per_chunk, C * CZ_SC_N, err);
    if (rc) return rc;
    for (int k = 0; k < CZ_SC_N; k++) out[k] = 0;
    for (size_t c = 0; c < C; c++)
        for (int k = 0; k < CZ_SC_N; k++) out[k] += per_chunk[c * CZ_SC_N + k];
    return 0;
}
