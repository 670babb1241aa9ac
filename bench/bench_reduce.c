/* bench_reduce: the cost of one step's gradient reduction in process, without the
 * engine: for n parameters and C chunks per rank, one step of
 *   float   the reducer in float mode (float sums, MPI_SUM on floats, scalars apart)
 *   exact   the reducer in exact mode (the fixed chunk tree: float sums, an all-to-all of
 *           each rank's partial sums to the slices' owners, an allgather of the slices)
 *   fixed   the code before issue 15: cz_fixed_add_float (frexp per value), the 128-bit
 *           user-defined MPI_Op, a separate allreduce of the per-chunk scalars, then
 *           cz_fixed_value per parameter
 * The median and minimum over REPS steps, in ms (docs/BENCHMARKS.md, issue 15). Each chunk's
 * values are copied into the reducer's buffer first (the engine writes them there in
 * training): the same copy in both reducer modes.
 *
 *   mpirun -np P build/bench_reduce [--n 419333] [--chunks 1] [--reps 50]
 * (419333 = the parameters of d = 300, 512,512, 5 classes) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chainz/dist.h"
#include "chainz/fixed.h"
#include "chainz/reducer.h"

enum { NSC = 4 };

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    size_t n, chunks;
    const float *g;
    float *grad;
    double *per_chunk;
} job;

static int step_reducer(cz_reducer *r, const cz_dist *d, const job *j, cz_error *err)
{
    double sc[NSC] = {1, 2, 3, 4}, out[NSC];
    size_t c0, c1;
    int brc = cz_reducer_begin(r, j->chunks * (size_t)d->size, 0, &c0, &c1, err);
    if (brc) return brc;
    for (size_t c = c0; c < c1; c++) {
        memcpy(cz_reducer_buffer(r), j->g + (c - c0) * j->n, j->n * sizeof(float));
        cz_reducer_add(r, c, sc);
    }
    cz_reduced res;
    int rc = cz_reducer_finish(r, d, 128.0 * (double)(j->chunks * (size_t)d->size), j->grad, out, &res, err);
    /* exact: the owners' slices to every rank (in training these are the updated parameters) */
    return rc ? rc : cz_reducer_gather(r, d, j->grad, err);
}

static int step_fixed(cz_fixed_acc *a, const cz_dist *d, const job *j, cz_error *err)
{
    size_t C = j->chunks * (size_t)d->size;
    cz_fixed_zero(a);
    memset(j->per_chunk, 0, C * NSC * sizeof(double));
    for (size_t c = 0; c < j->chunks; c++) {
        cz_fixed_add_float(a, 0, j->g + c * j->n, j->n);
        for (int k = 0; k < NSC; k++) j->per_chunk[((size_t)d->rank * j->chunks + c) * NSC + (size_t)k] = k;
    }
    int rc = cz_dist_sum_fixed(d, a, err);
    if (!rc) rc = cz_dist_sum_double(d, j->per_chunk, C * NSC, err);
    double inv = 1.0 / (128.0 * (double)C);
    for (size_t i = 0; !rc && i < j->n; i++) j->grad[i] = (float)(cz_fixed_value(a, i) * inv);
    return rc;
}

int main(int argc, char **argv)
{
    cz_dist d;
    cz_error err = {0};
    if (cz_dist_init(&argc, &argv, &d, &err)) {
        fprintf(stderr, "bench_reduce: %s\n", err.msg);
        return 1;
    }
    job j = {.n = 419333, .chunks = 1};
    int reps = 50;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n")) j.n = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--chunks")) j.chunks = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
    }
    size_t C = j.chunks * (size_t)d.size;
    float *g = malloc(j.chunks * j.n * sizeof(float));
    j.grad = malloc(j.n * sizeof(float));
    j.per_chunk = malloc(C * NSC * sizeof(double));
    double *t = malloc((size_t)reps * 3 * sizeof(double));
    cz_reducer rf, re;
    cz_fixed_acc fa;
    int rc = !g || !j.grad || !j.per_chunk || !t;
    rc |= cz_reducer_init(&rf, j.n, NSC, C, 0, 0, d.rank, d.size, &err) |
          cz_reducer_init(&re, j.n, NSC, C, 0, 1, d.rank, d.size, &err);
    rc |= cz_fixed_init(&fa, j.n);
    if (cz_dist_agree(&d, rc ? cz_error_set(&err, CZ_ENOMEM, "out of memory") : 0, &err)) {
        if (d.rank == 0) fprintf(stderr, "bench_reduce: %s\n", err.msg);
        cz_dist_finalize();
        return 1;
    }
    /* gradient-like values: mostly small, a few large, both signs */
    for (size_t i = 0; i < j.chunks * j.n; i++)
        g[i] = (float)(((double)((i * 2654435761u + (size_t)d.rank) % 2000) - 1000.0) * 1e-5 *
                       ((i % 97) ? 1.0 : 1e3));
    j.g = g;
    for (int r = -2; r < reps && !rc; r++) { /* two warm-up steps */
        double t0 = cz_dist_time();
        rc |= step_reducer(&rf, &d, &j, &err);
        double t1 = cz_dist_time();
        rc |= step_reducer(&re, &d, &j, &err);
        double t2 = cz_dist_time();
        rc |= step_fixed(&fa, &d, &j, &err);
        double t3 = cz_dist_time();
        if (r >= 0) {
            t[r] = t1 - t0;
            t[reps + r] = t2 - t1;
            t[2 * reps + r] = t3 - t2;
        }
    }
    if (!rc && d.rank == 0) {
        const char *name[3] = {"float (reducer)", "exact (reducer)", "fixed (before)"};
        printf("n = %zu parameters, %zu chunk(s) per rank, %d rank(s), %d reps\n", j.n, j.chunks, d.size, reps);
        for (int k = 0; k < 3; k++) {
            qsort(t + k * reps, (size_t)reps, sizeof(double), cmp_double);
            printf("  %-16s median %7.3f ms   min %7.3f ms\n", name[k], 1e3 * t[k * reps + reps / 2],
                   1e3 * t[k * reps]);
        }
    }
    if (rc && d.rank == 0) fprintf(stderr, "bench_reduce: %s\n", err.msg);
    cz_reducer_free(&rf);
    cz_reducer_free(&re);
    cz_fixed_free(&fa);
    free(g), free(j.grad), free(j.per_chunk), free(t);
    cz_dist_finalize();
    return rc ? 1 : 0;
}
