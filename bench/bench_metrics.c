/* The per-epoch cost of RUN_DIR/metrics.h5 (src/io/metrics.c), and a check of its
 * histogram chunks against a fresh full rewrite.
 *
 *   bench_metrics DIR [--epochs N] [--families F] [--samples S] [--seed X]
 *                 [--at E1,E2,...] [--max-ratio R] [--per-epoch]
 *     appends N epochs (default 600) with F families (default 5) of S synthetic gradient
 *     norms each (default 64, lognormal, different every epoch) to DIR/metrics.h5 with
 *     cz_metrics_append, timing each call (the whole atomic rewrite: build, write, fsync,
 *     rename) in process cpu time (user + system: robust to the disk's fsync latency and to
 *     other jobs) and in wall time. Prints the medians per append over the 21 epochs centred
 *     on each --at epoch (default 100,600); --max-ratio R fails (exit 1) when the last cpu
 *     median is more than R x the first. Then checks the file as --check does, and that its decoded counts are
 *     the synthetic histograms (regenerated from the seed).
 *   bench_metrics --check FILE
 *     for every family of a metrics file: writes its decoded /tau/<family>/counts again
 *     the way chainz did before chunk caching (one H5Dwrite of all epochs through HDF5's
 *     deflate filter, chunk {1, bins}, level 4) to a temporary file, and compares the two
 *     chunk by chunk, raw (H5Dread_chunk: the deflated bytes and the filter mask) and
 *     decoded; and that each epoch's counts sum to its /tau/<family>/count (every
 *     histogram in its own epoch's row). Exit 0 when all agree.
 * Links chainz_io, so the same source measures any chainz revision. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, strtok_r */
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chainz/hist.h"
#include "chainz/metrics.h"

#define BINS CZ_HIST_BINS

static double clock_ms(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* the synthetic histogram of epoch e, family fi */
static void synth(cz_hist *h, uint64_t seed, long e, int fi, int samples)
{
    uint64_t s = seed * 0x100000001B3ull + (uint64_t)e * 1000003u + (uint64_t)fi * 7919u;
    cz_hist_reset(h);
    for (int i = 0; i < samples; i++) {
        double z = 0;
        for (int k = 0; k < 12; k++) z += (double)(splitmix(&s) >> 11) / 9007199254740992.0;
        z -= 6; /* ~ N(0, 1) */
        double v = (splitmix(&s) % 50 == 0) ? 0 : exp(-3 + 0.002 * (double)e + fi + z);
        cz_hist_add(h, v);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* median of ms[lo..hi] (clipped to [0, n)) */
static double median(const double *ms, long n, long lo, long hi)
{
    if (lo < 0) lo = 0;
    if (hi > n - 1) hi = n - 1;
    if (hi < lo) return NAN;
    long m = hi - lo + 1;
    double *t = malloc((size_t)m * sizeof *t);
    memcpy(t, ms + lo, (size_t)m * sizeof *t);
    qsort(t, (size_t)m, sizeof *t, cmp_double);
    double r = m % 2 ? t[m / 2] : (t[m / 2 - 1] + t[m / 2]) / 2;
    free(t);
    return r;
}

static int read_families(hid_t f, char names[][64], int max)
{
    hid_t a = H5Aopen(f, "families", H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t t = H5Aget_type(a), mt = H5Tcopy(H5T_C_S1);
    H5Tset_cset(mt, H5Tget_cset(t)); /* chainz writes UTF-8 strings */
    char buf[4096] = "";
    int n = -1;
    if (H5Tis_variable_str(t) > 0) {
        char *s = NULL;
        H5Tset_size(mt, H5T_VARIABLE);
        if (H5Aread(a, mt, &s) >= 0 && s) snprintf(buf, sizeof buf, "%s", s), n = 0;
        if (s) H5free_memory(s);
    } else {
        size_t sz = H5Tget_size(t);
        char *s = calloc(sz + 1, 1);
        H5Tset_size(mt, sz + 1);
        if (s && H5Aread(a, mt, s) >= 0) snprintf(buf, sizeof buf, "%s", s), n = 0;
        free(s);
    }
    H5Tclose(mt);
    H5Tclose(t);
    H5Aclose(a);
    if (n < 0) return -1;
    for (char *tok = strtok(buf, ","); tok && n < max; tok = strtok(NULL, ",")) snprintf(names[n++], 64, "%s", tok);
    return n;
}

/* --check: see the header. expect: the synthetic source (NULL: none) */
static int check_file(const char *path, const uint64_t *seed, int samples)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        fprintf(stderr, "bench_metrics: %s: cannot open\n", path);
        return 1;
    }
    char names[64][64];
    int nf = read_families(f, names, 64), bad = 0;
    if (nf < 0) {
        fprintf(stderr, "bench_metrics: %s: no families attribute\n", path);
        H5Fclose(f);
        return 1;
    }
    char refpath[4200];
    snprintf(refpath, sizeof refpath, "%s.reference.%ld", path, (long)getpid());
    hid_t r = H5Fcreate(refpath, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    long chunks = 0, E = -1;
    for (int fi = 0; fi < nf && r >= 0 && !bad; fi++) {
        char dname[160], cname[160];
        snprintf(dname, sizeof dname, "tau/%s/counts", names[fi]);
        snprintf(cname, sizeof cname, "tau/%s/count", names[fi]);
        hid_t ds = H5Dopen2(f, dname, H5P_DEFAULT), sp = ds >= 0 ? H5Dget_space(ds) : -1;
        hsize_t dims[2] = {0, 0};
        if (sp < 0 || H5Sget_simple_extent_dims(sp, dims, NULL) != 2 || dims[1] != BINS) {
            fprintf(stderr, "bench_metrics: %s: /%s missing or not [E x %d]\n", path, dname, BINS);
            bad = 1;
        }
        E = (long)dims[0];
        uint64_t *cnt = malloc((size_t)(E ? E : 1) * BINS * sizeof *cnt);
        double *count = malloc((size_t)(E ? E : 1) * sizeof *count);
        if (!bad && (!cnt || !count || H5Dread(ds, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, cnt) < 0)) {
            fprintf(stderr, "bench_metrics: %s: cannot read /%s\n", path, dname);
            bad = 1;
        }
        hid_t cds = bad ? -1 : H5Dopen2(f, cname, H5P_DEFAULT);
        if (!bad && (cds < 0 || H5Dread(cds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, count) < 0)) {
            fprintf(stderr, "bench_metrics: %s: cannot read /%s\n", path, cname);
            bad = 1;
        }
        if (cds >= 0) H5Dclose(cds);
        /* each epoch's histogram in its own row: its bins sum to that epoch's count */
        for (long e = 0; !bad && e < E; e++) {
            uint64_t sum = 0;
            for (int b = 0; b < BINS; b++) sum += cnt[(size_t)e * BINS + b];
            if ((double)sum != count[e]) {
                fprintf(stderr, "bench_metrics: /%s row %ld sums to %llu, /%s[%ld] = %g\n", dname, e,
                        (unsigned long long)sum, cname, e, count[e]);
                bad = 1;
            }
        }
        /* the synthetic histograms, when this file is bench_metrics' own */
        cz_hist *h = seed ? malloc(sizeof *h) : NULL;
        for (long e = 0; h && !bad && e < E; e++) {
            synth(h, *seed, e, fi, samples);
            if (memcmp(h->counts, cnt + (size_t)e * BINS, BINS * sizeof(uint64_t))) {
                fprintf(stderr, "bench_metrics: /%s row %ld differs from the appended histogram\n", dname, e);
                bad = 1;
            }
        }
        free(h);
        /* the fresh full rewrite: all epochs through HDF5's deflate filter at once */
        char gname[160];
        snprintf(gname, sizeof gname, "f%d", fi);
        hid_t lcpl = H5Pcreate(H5P_LINK_CREATE), dcpl = H5Pcreate(H5P_DATASET_CREATE);
        hsize_t chunk[2] = {1, BINS};
        H5Pset_chunk(dcpl, 2, chunk);
        H5Pset_deflate(dcpl, 4);
        hid_t rsp = H5Screate_simple(2, dims, NULL);
        hid_t rds = bad || !E ? -1 : H5Dcreate2(r, gname, H5T_NATIVE_UINT64, rsp, lcpl, dcpl, H5P_DEFAULT);
        if (!bad && E && (rds < 0 || H5Dwrite(rds, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, cnt) < 0)) {
            fprintf(stderr, "bench_metrics: cannot write the reference %s\n", refpath);
            bad = 1;
        }
        /* chunk by chunk: the same deflated bytes, the same filter mask, the same decoded row */
        size_t cap = 2 * BINS * sizeof(uint64_t);
        unsigned char *a = malloc(cap), *b = malloc(cap);
        uint64_t *row = malloc(BINS * sizeof *row);
        hid_t msp = H5Screate_simple(2, chunk, NULL);
        for (long e = 0; !bad && e < E; e++, chunks++) {
            hsize_t off[2] = {(hsize_t)e, 0}, na = 0, nb = 0;
            uint32_t ma = 99, mb = 99;
            if (H5Dget_chunk_storage_size(ds, off, &na) < 0 || H5Dget_chunk_storage_size(rds, off, &nb) < 0 ||
                na > cap || nb > cap || H5Dread_chunk(ds, H5P_DEFAULT, off, &ma, a) < 0 ||
                H5Dread_chunk(rds, H5P_DEFAULT, off, &mb, b) < 0) {
                fprintf(stderr, "bench_metrics: /%s chunk %ld unreadable\n", dname, e);
                bad = 1;
            } else if (na != nb || ma != mb || memcmp(a, b, (size_t)na)) {
                fprintf(stderr, "bench_metrics: /%s chunk %ld: %llu bytes mask %u, the full rewrite's: %llu "
                        "bytes mask %u%s\n", dname, e, (unsigned long long)na, ma, (unsigned long long)nb, mb,
                        na == nb && ma == mb ? ", different bytes" : "");
                bad = 1;
            }
            hid_t fsp = H5Dget_space(rds);
            H5Sselect_hyperslab(fsp, H5S_SELECT_SET, off, NULL, chunk, NULL);
            if (!bad && (H5Dread(rds, H5T_NATIVE_UINT64, msp, fsp, H5P_DEFAULT, row) < 0 ||
                         memcmp(row, cnt + (size_t)e * BINS, BINS * sizeof *row))) {
                fprintf(stderr, "bench_metrics: /%s row %ld decodes differently from the full rewrite\n", dname, e);
                bad = 1;
            }
            H5Sclose(fsp);
        }
        H5Sclose(msp);
        free(a);
        free(b);
        free(row);
        if (rds >= 0) H5Dclose(rds);
        H5Sclose(rsp);
        H5Pclose(dcpl);
        H5Pclose(lcpl);
        free(cnt);
        free(count);
        if (sp >= 0) H5Sclose(sp);
        if (ds >= 0) H5Dclose(ds);
    }
    if (r < 0) {
        fprintf(stderr, "bench_metrics: cannot create %s\n", refpath);
        bad = 1;
    } else
        H5Fclose(r);
    unlink(refpath);
    H5Fclose(f);
    if (!bad)
        printf("check %s: %d families x %ld epochs: %ld chunks equal to a fresh full rewrite (deflated bytes, "
               "filter mask, decoded counts); every row sums to its count%s\n", path, nf, E, chunks,
               seed ? "; every row is the appended histogram" : "");
    return bad;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--check")) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        return check_file(argv[2], NULL, 0);
    }
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: bench_metrics DIR [--epochs N] [--families F] [--samples S] [--seed X] "
                "[--at E1,E2,...] [--max-ratio R] [--per-epoch]\n       bench_metrics --check FILE\n");
        return 2;
    }
    const char *dir = argv[1];
    long N = 600;
    int F = 5, S = 64, per_epoch = 0;
    uint64_t seed = 1;
    double max_ratio = 0;
    char at_s[256] = "100,600";
    for (int i = 2; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(argv[i], "--epochs")) N = atol(v), i++;
        else if (!strcmp(argv[i], "--families")) F = atoi(v), i++;
        else if (!strcmp(argv[i], "--samples")) S = atoi(v), i++;
        else if (!strcmp(argv[i], "--seed")) seed = strtoull(v, NULL, 10), i++;
        else if (!strcmp(argv[i], "--at")) snprintf(at_s, sizeof at_s, "%s", v), i++;
        else if (!strcmp(argv[i], "--max-ratio")) max_ratio = atof(v), i++;
        else if (!strcmp(argv[i], "--per-epoch")) per_epoch = 1;
        else {
            fprintf(stderr, "bench_metrics: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (N < 1 || F < 1 || F > 64 || S < 0) {
        fprintf(stderr, "bench_metrics: need --epochs >= 1, 1 <= --families <= 64, --samples >= 0\n");
        return 2;
    }
    static const char *const base[4] = {"input_grad", "sample_grad", "param_grad", "jacobian/layer_1"};
    char names[64][64];
    const char *fam[64];
    for (int i = 0; i < F; i++) {
        if (i < 4) snprintf(names[i], 64, "%s", base[i]);
        else snprintf(names[i], 64, "jacobian/layer_%d", i - 2);
        fam[i] = names[i];
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.h5", dir);
    unlink(path);
    cz_metrics *mx = NULL;
    cz_error err = {0};
    if (cz_metrics_open(&mx, path, F, fam, "{\"bench\": \"bench_metrics\"}", -1, NULL, 0, &err)) {
        fprintf(stderr, "bench_metrics: %s\n", err.msg);
        return 2;
    }
    cz_hist *h = malloc((size_t)F * sizeof *h);
    double *ms = malloc((size_t)N * sizeof *ms);
    if (!h || !ms) return 2;
    double *cpu = malloc((size_t)N * sizeof *cpu);
    if (!cpu) return 2;
    double t0 = clock_ms(CLOCK_MONOTONIC);
    for (long e = 0; e < N; e++) {
        for (int fi = 0; fi < F; fi++) synth(&h[fi], seed, e, fi, S);
        double row[CZ_HISTORY_FIELDS] = {(double)(e + 1), 2.0 * (double)(e + 1), 0.5, 0.01, 0.01, 0.001,
                                         0.75, NAN, NAN, NAN, 0};
        double t = clock_ms(CLOCK_MONOTONIC), c = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
        if (cz_metrics_append(mx, row, h, &err)) {
            fprintf(stderr, "bench_metrics: epoch %ld: %s\n", e + 1, err.msg);
            return 2;
        }
        ms[e] = clock_ms(CLOCK_MONOTONIC) - t;
        cpu[e] = clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c;
        if (per_epoch) printf("epoch %ld %.3f ms, cpu %.3f ms\n", e + 1, ms[e], cpu[e]);
    }
    double total = clock_ms(CLOCK_MONOTONIC) - t0;
    cz_metrics_close(mx);
    free(h);
    printf("bench_metrics: %ld epochs, %d families, %d samples each: %.0f ms in all\n", N, F, S, total);
    double first = NAN, last = NAN;
    long a0 = 0, a1 = 0;
    char *save = NULL;
    for (char *tok = strtok_r(at_s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long a = atol(tok); /* 1-based epoch, the window of 21 epochs around it (clipped to the run) */
        double m = median(cpu, N, a - 11, a + 9);
        printf("median per append, epochs %ld..%ld: cpu %.3f ms, wall %.3f ms\n", a - 10 < 1 ? 1 : a - 10,
               a + 10 > N ? N : a + 10, m, median(ms, N, a - 11, a + 9));
        if (isnan(first)) first = m, a0 = a;
        last = m, a1 = a;
    }
    free(ms);
    free(cpu);
    int rc = 0;
    if (max_ratio > 0 && a1 != a0) {
        double ratio = last / first;
        if (!(ratio <= max_ratio)) {
            printf("FAIL: epoch %ld costs %.2f x epoch %ld in cpu time (at most %.2f allowed)\n", a1, ratio, a0,
                   max_ratio);
            rc = 1;
        } else
            printf("ok: epoch %ld costs %.2f x epoch %ld in cpu time (at most %.2f)\n", a1, ratio, a0, max_ratio);
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return check_file(path, &seed, S) ? 1 : rc;
}
