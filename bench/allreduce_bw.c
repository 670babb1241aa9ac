/* allreduce_bw: time MPI_Allreduce as chainz's two gradient reductions use it, to fit the
 * network term of bench/scaling_model.py on a given interconnect.
 *
 *   mpicc -O2 bench/allreduce_bw.c -o allreduce_bw
 *   mpirun -np P allreduce_bw [PARAMS] [REPS]      defaults: 422916 (the Yelp-like model), 20
 *
 * For N in {1, PARAMS/16, PARAMS} values it times (median of REPS, after 2 warm-ups, each
 * rep started after a barrier; the time is the slowest rank's):
 *   float: N floats with MPI_SUM (--reduce float, 4 bytes per parameter)
 *   exact: N 128-bit integers (2 x uint64 limbs, little-endian lo/hi) under a user-defined
 *          commutative MPI_Op adding modulo 2^128 (--reduce exact, 16 bytes per parameter)
 * and prints "ALLREDUCE kind N bytes median_us". Not built by CMake (bench only). */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add128(void *in, void *inout, int *len, MPI_Datatype *dt)
{
    (void)dt;
    const uint64_t *a = in;
    uint64_t *b = inout;
    for (int i = 0; i < *len; i++) {
        uint64_t lo = a[2 * i] + b[2 * i];
        b[2 * i + 1] += a[2 * i + 1] + (lo < b[2 * i]);
        b[2 * i] = lo;
    }
}

static int cmp(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long params = argc > 1 ? atol(argv[1]) : 422916;
    int reps = argc > 2 ? atoi(argv[2]) : 20;
    MPI_Datatype t128;
    MPI_Type_contiguous(2, MPI_UINT64_T, &t128);
    MPI_Type_commit(&t128);
    MPI_Op op128;
    MPI_Op_create(add128, 1, &op128);
    float *f = malloc(sizeof(float) * (size_t)params);
    uint64_t *q = malloc(16 * (size_t)params);
    double *t = malloc(sizeof(double) * (size_t)reps);
    for (long i = 0; i < params; i++) {
        f[i] = (float)(i % 7) * 0.5f;
        q[2 * i] = (uint64_t)i * 0x9e3779b97f4a7c15ULL;
        q[2 * i + 1] = (uint64_t)rank;
    }
    long sizes[3] = {1, params / 16, params};
    if (rank == 0) printf("ranks %d, params %ld, reps %d\n", size, params, reps);
    for (int kind = 0; kind < 2; kind++) {
        for (int s = 0; s < 3; s++) {
            int n = (int)sizes[s];
            for (int r = -2; r < reps; r++) {
                MPI_Barrier(MPI_COMM_WORLD);
                double t0 = MPI_Wtime();
                if (kind == 0)
                    MPI_Allreduce(MPI_IN_PLACE, f, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
                else
                    MPI_Allreduce(MPI_IN_PLACE, q, n, t128, op128, MPI_COMM_WORLD);
                double dt = MPI_Wtime() - t0, mx;
                MPI_Allreduce(&dt, &mx, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
                if (r >= 0) t[r] = mx;
            }
            qsort(t, (size_t)reps, sizeof(double), cmp);
            if (rank == 0)
                printf("ALLREDUCE %s %d %ld %.1f\n", kind == 0 ? "float" : "exact", n,
                       (long)n * (kind == 0 ? 4 : 16), t[reps / 2] * 1e6);
        }
    }
    MPI_Op_free(&op128);
    MPI_Type_free(&t128);
    free(f);
    free(q);
    free(t);
    MPI_Finalize();
    return 0;
}
