/* bench_qr: LAPACK's QR of a tall, skinny W_1^T against a BLIS GEMM of as many flops, the
 * ratio behind QR_SLOWDOWN in src/engine/jacnorm.c (the tau subsample's Gram rows).
 *
 *   bench_qr D N [D N ...]     e.g. bench_qr 784 64 784 32 300 128
 *
 * For each shape: the best of 50 sgeqrf calls on a D x N column-major matrix and the best
 * of 50 sgemm calls of N x N x D (W W^T), one thread each, and the ratio. A benchmark,
 * never a test. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif

#include <blis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void sgeqrf_(const int *m, const int *n, float *a, const int *lda, float *tau, float *work, const int *lwork,
             int *info);

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc % 2 == 0) {
        fprintf(stderr, "usage: bench_qr D N [D N ...]\n");
        return 1;
    }
    bli_thread_set_num_threads(1);
    for (int i = 1; i + 1 < argc; i += 2) {
        int d = atoi(argv[i]), n = atoi(argv[i + 1]), lw = 64 * (n > 0 ? n : 1), info = 0;
        if (d < 1 || n < 1 || n > d) {
            fprintf(stderr, "bench_qr: need 1 <= N <= D (got %s %s)\n", argv[i], argv[i + 1]);
            return 1;
        }
        size_t dn = (size_t)d * (size_t)n;
        float *a = malloc(dn * sizeof(float)), *b = malloc(dn * sizeof(float)), *tau = malloc((size_t)n * 4),
              *w = malloc((size_t)lw * 4), *c = malloc((size_t)n * (size_t)n * 4), one = 1, zero = 0;
        if (!a || !b || !tau || !w || !c) {
            fprintf(stderr, "bench_qr: out of memory\n");
            return 1;
        }
        for (size_t k = 0; k < dn; k++) a[k] = (float)((double)((k * 2654435761u) % 1000) / 1000.0 - 0.5);
        double qr = 1e9, gemm = 1e9;
        for (int r = 0; r < 50; r++) {
            memcpy(b, a, dn * sizeof(float));
            double t0 = now_s();
            sgeqrf_(&d, &n, b, &d, tau, w, &lw, &info);
            double t = now_s() - t0;
            if (t < qr) qr = t;
            t0 = now_s();
            bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, n, n, d, &one, a, d, 1, a, d, 1, &zero, c, n, 1); /* W W^T, W = a as n x d row-major */
            t = now_s() - t0;
            if (t < gemm) gemm = t;
        }
        double fl = 2.0 * d * (double)n * n;
        printf("d = %d, n = %d: QR %.3f ms (%.1f GFLOP/s at 2 d n^2), GEMM %.3f ms (%.1f GFLOP/s), QR/GEMM %.1fx%s\n",
               d, n, 1e3 * qr, 1e-9 * fl / qr, 1e3 * gemm, 1e-9 * fl / gemm, qr / gemm, info ? " (QR failed)" : "");
        free(a), free(b), free(tau), free(w), free(c);
    }
    return 0;
}
