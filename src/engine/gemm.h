/* Row-major GEMM on BLIS for the engine's scalar type:
 *   C [m x n] = alpha * op(A) * op(B) + beta * C
 * A is stored m x k (lda) or, with ta, k x m; B is k x n (ldb) or, with tb, n x k.
 *
 * Every engine GEMM runs with one BLIS runtime object (cz_gemm_rntm, set up by
 * cz_engine_init / cz_engine_set_threads) that holds the thread count and switches
 * BLIS's small/unpacked ("sup") path off. Why: the sup kernels of the haswell family
 * (haswell, zen, zen2, zen3) pick a different edge kernel, and so a different order of
 * the k-sum, for the block each thread gets, so the same product differs between 1 and
 * 2 threads (bli_sgemm m=16 n=5 k=48, B transposed: 5-8 of 80 values). The packed path
 * splits only m and n between threads, in whole micro-tiles, never k: every element of
 * C is computed by the same micro-kernel in the same order on any thread count.
 * (cz_gemm_rntm_small: see CZ_GEMM_SMALL.) */
#ifndef CHAINZ_ENGINE_GEMM_H
#define CHAINZ_ENGINE_GEMM_H

#include <blis.h>
#include <stddef.h>
#include "chainz/real.h"

extern rntm_t cz_gemm_rntm, cz_gemm_rntm_small;
extern int cz_gemm_rntm_ready;

/* Products with m*n*k below this run on one thread through BLIS's own choice of path
 * (sup included): the choice depends on the shape only, so the bits still do not depend on
 * the thread count, and products this small (< 8 MFLOP, well under 0.1 ms) gain little
 * from a second thread; measured on a Pima-sized model (d = 8, 64,64, B = 64): the plain
 * MLP step 0.16-0.22 ms with every GEMM packed, 0.10-0.18 ms this way; raising the bound
 * from 2^21 to 2^22 put the DREG step's three stream products (exactly 2^21 each) on this
 * path too: 0.405 -> 0.369 ms per step (minima of 400 reps, side by side). */
#define CZ_GEMM_SMALL ((double)(1 << 22))
void cz_gemm_runtime_setup(int threads);

static inline void cz_gemm(int ta, int tb, size_t m, size_t n, size_t k, cz_real alpha,
                           const cz_real *a, size_t lda, const cz_real *b, size_t ldb,
                           cz_real beta, cz_real *c, size_t ldc)
{
    if (m == 0 || n == 0) return;
    if (!cz_gemm_rntm_ready) cz_gemm_runtime_setup(1);
#ifdef CZ_REAL_DOUBLE
    bli_dgemm_ex
#else
    bli_sgemm_ex
#endif
        (ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
         (dim_t)m, (dim_t)n, (dim_t)k, &alpha, (cz_real *)a, (inc_t)lda, 1, (cz_real *)b,
         (inc_t)ldb, 1, &beta, c, (inc_t)ldc, 1, NULL,
         (double)m * (double)n * (double)k < CZ_GEMM_SMALL ? &cz_gemm_rntm_small : &cz_gemm_rntm);
}

#endif
