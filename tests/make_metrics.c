/* Test fixture generator: writes a run's metrics file (format "chainz-metrics", version 1,
 * layout in include/chainz/metrics_read.h) with HDF5 directly and known values, good or
 * deliberately broken, the way an independent writer would.
 *
 *   make_metrics OUT.h5 [--epochs E] [--layers L] [--scale S] [--no-val]
 *                [--format NAME] [--version V] [--short DATASET] [--drop DATASET]
 *
 * Families, in this order: input_grad, param_grad, sample_grad, jacobian/layer_1..L; the
 * family at position j (0-based) has m = j + 1 and, at epoch index e = 0..E-1:
 *   count = 100 (e + 1), p50 = m, p90 = 2 m, p99 = S (3 + e) m^2, mean = 1.25 m,
 *   max = S (10 + e) m^2, tau = p99 / mean = S (3 + e) m / 1.25;
 *   counts: 60 (e + 1) values m, 30 (e + 1) values 2 m, 10 (e + 1) values S (3 + e) m^2.
 * History at epoch index e: epoch = e + 1, step = 10 (e + 1), train_loss = 2 / (e + 1),
 *   dreg = 0.1, lambda = 0.01, lr = 0.001, train_acc = 0.4 + 0.1 e, val_loss = 2.5 / (e + 1),
 *   val_acc = 0.5 + 0.1 e, val_mae = 0.25, seconds = 1.5 (val_* NaN with --no-val).
 * --short DATASET writes that dataset (e.g. /history/val_acc) one row short; --drop leaves
 * it out. */
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chainz/hist.h"

#define CHECK(call)                                                                  \
    do {                                                                             \
        if ((call) < 0) {                                                            \
            fprintf(stderr, "make_metrics: %s:%d: %s failed\n", __FILE__, __LINE__, #call); \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

static const char *shorten = "", *drop = "";

static void set_str(hid_t obj, const char *name, const char *v, int variable)
{
    hid_t t, sp, a;
    CHECK(t = H5Tcopy(H5T_C_S1));
    CHECK(H5Tset_size(t, variable ? H5T_VARIABLE : strlen(v) + 1));
    CHECK(sp = H5Screate(H5S_SCALAR));
    CHECK(a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT));
    CHECK(H5Awrite(a, t, variable ? (const void *)&v : (const void *)v));
    CHECK(H5Aclose(a));
    CHECK(H5Sclose(sp));
    CHECK(H5Tclose(t));
}

static void set_num(hid_t obj, const char *name, hid_t type, const void *v)
{
    hid_t sp, a;
    CHECK(sp = H5Screate(H5S_SCALAR));
    CHECK(a = H5Acreate2(obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT));
    CHECK(H5Awrite(a, type, v));
    CHECK(H5Aclose(a));
    CHECK(H5Sclose(sp));
}

/* A dataset [rows] or [rows, cols]; --short and --drop apply by name. */
static void put(hid_t f, const char *name, hid_t type, hsize_t rows, hsize_t cols,
                  const void *data, int chunked)
{
    if (!strcmp(name, drop)) return;
    if (!strcmp(name, shorten) && rows) rows--;
    hsize_t dims[2] = {rows, cols}, chunk[2] = {1, cols}, maxdims[2] = {H5S_UNLIMITED, cols};
    hid_t sp, lcpl, dcpl, ds;
    CHECK(sp = H5Screate_simple(cols ? 2 : 1, dims, chunked ? maxdims : NULL));
    CHECK(lcpl = H5Pcreate(H5P_LINK_CREATE));
    CHECK(H5Pset_create_intermediate_group(lcpl, 1));
    CHECK(dcpl = H5Pcreate(H5P_DATASET_CREATE));
    if (chunked) {
        CHECK(H5Pset_chunk(dcpl, 2, chunk));
        CHECK(H5Pset_deflate(dcpl, 4));
    }
    CHECK(ds = H5Dcreate2(f, name, type, sp, lcpl, dcpl, H5P_DEFAULT));
    if (rows) CHECK(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
    CHECK(H5Dclose(ds));
    CHECK(H5Pclose(dcpl));
    CHECK(H5Pclose(lcpl));
    CHECK(H5Sclose(sp));
}

static size_t bin_of(double v, double g)
{
    long k = (long)ceil(log(v) / log(g) - 1e-9);
    return (size_t)(k - CZ_HIST_KMIN) + 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: make_metrics OUT.h5 [options]\n");
        return 1;
    }
    const char *out = argv[1], *format = "chainz-metrics";
    long E = 3, L = 2, version = 1;
    double S = 1;
    int val = 1;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--epochs")) E = atol(v), i++;
        else if (!strcmp(a, "--layers")) L = atol(v), i++;
        else if (!strcmp(a, "--scale")) S = atof(v), i++;
        else if (!strcmp(a, "--version")) version = atol(v), i++;
        else if (!strcmp(a, "--format")) format = v, i++;
        else if (!strcmp(a, "--short")) shorten = v, i++;
        else if (!strcmp(a, "--drop")) drop = v, i++;
        else if (!strcmp(a, "--no-val")) val = 0;
        else {
            fprintf(stderr, "make_metrics: unknown option %s\n", a);
            return 1;
        }
    }
    int F = 3 + (int)L;
    char names[16][64] = {"input_grad", "param_grad", "sample_grad"}, families[1024] = "";
    for (int l = 1; l <= L && 3 + l <= 16; l++) snprintf(names[2 + l], 64, "jacobian/layer_%d", l);
    for (int j = 0; j < F; j++) {
        strcat(families, j ? "," : "");
        strcat(families, names[j]);
    }
    double g = (1 + CZ_HIST_ALPHA) / (1 - CZ_HIST_ALPHA), alpha = CZ_HIST_ALPHA;
    size_t B = CZ_HIST_BINS;
    double *edges = malloc((B + 1) * sizeof *edges), *col = malloc((size_t)(E ? E : 1) * sizeof *col);
    uint64_t *counts = calloc((size_t)(E ? E : 1) * B, sizeof *counts);
    if (!edges || !col || !counts) return 1;
    edges[0] = 0;
    for (size_t i = 1; i <= B; i++) edges[i] = pow(g, (double)((long)i - 1 + CZ_HIST_KMIN) - 1.0);

    hid_t f;
    CHECK(f = H5Fcreate(out, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    set_str(f, "format", format, 0);
    set_num(f, "version", H5T_NATIVE_LONG, &version);
    set_str(f, "families", families, 1);
    set_num(f, "alpha", H5T_NATIVE_DOUBLE, &alpha);
    set_num(f, "gamma", H5T_NATIVE_DOUBLE, &g);
    set_str(f, "config", "{\"layers\": \"16\", \"epochs\": 3, \"fixture\": true}", 1);

    static const char *hist[11] = {"epoch", "step", "train_loss", "dreg", "lambda", "lr",
                                   "train_acc", "val_loss", "val_acc", "val_mae", "seconds"};
    for (int k = 0; k < 11; k++) {
        for (long e = 0; e < E; e++) {
            double v[11] = {e + 1, 10.0 * (e + 1), 2.0 / (e + 1), 0.1, 0.01, 0.001, 0.4 + 0.1 * e,
                            2.5 / (e + 1), 0.5 + 0.1 * e, 0.25, 1.5};
            col[e] = (!val && k >= 7 && k <= 9) ? NAN : v[k];
        }
        char name[128];
        snprintf(name, sizeof name, "/history/%s", hist[k]);
        put(f, name, H5T_NATIVE_DOUBLE, (hsize_t)E, 0, col, 0);
    }
    static const char *sum[7] = {"count", "mean", "p50", "p90", "p99", "max", "tau"};
    for (int j = 0; j < F; j++) {
        double m = j + 1;
        char name[192];
        for (int k = 0; k < 7; k++) {
            for (long e = 0; e < E; e++) {
                double v[7] = {100.0 * (e + 1), 1.25 * m, m, 2 * m, S * (3 + e) * m * m,
                               S * (10 + e) * m * m, S * (3 + e) * m / 1.25};
                col[e] = v[k];
            }
            snprintf(name, sizeof name, "/tau/%s/%s", names[j], sum[k]);
            put(f, name, H5T_NATIVE_DOUBLE, (hsize_t)E, 0, col, 0);
        }
        memset(counts, 0, (size_t)(E ? E : 1) * B * sizeof *counts);
        for (long e = 0; e < E; e++) {
            counts[(size_t)e * B + bin_of(m, g)] += 60 * (uint64_t)(e + 1);
            counts[(size_t)e * B + bin_of(2 * m, g)] += 30 * (uint64_t)(e + 1);
            counts[(size_t)e * B + bin_of(S * (3 + e) * m * m, g)] += 10 * (uint64_t)(e + 1);
        }
        snprintf(name, sizeof name, "/tau/%s/counts", names[j]);
        put(f, name, H5T_NATIVE_UINT64, (hsize_t)E, B, counts, 1);
        snprintf(name, sizeof name, "/tau/%s/edges", names[j]);
        put(f, name, H5T_NATIVE_DOUBLE, B + 1, 0, edges, 0);
    }
    CHECK(H5Fclose(f));
    free(edges);
    free(col);
    free(counts);
    return 0;
}
