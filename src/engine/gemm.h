/* Row-major GEMM on BLIS for the engine's scalar type:
 *   C [m x n] = alpha * op(A) * op(B) + beta * C
 * A is stored m x k (lda) or, with ta, k x m; B is k x n (ldb) or, with tb, n x k. */
#ifndef CHAINZ_ENGINE_GEMM_H
#define CHAINZ_ENGINE_GEMM_H

#include <blis.h>
#include <stddef.h>
#include "chainz/real.h"

static inline void cz_gemm(int ta, int tb, size_t m, size_t n, size_t k, cz_real alpha,
                           const cz_real *a, size_t lda, const cz_real *b, size_t ldb,
                           cz_real beta, cz_real *c, size_t ldc)
{
    if (m == 0 || n == 0) return;
#ifdef CZ_REAL_DOUBLE
    bli_dgemm
#else
    bli_sgemm
#endif
        (ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
         (dim_t)m, (dim_t)n, (dim_t)k, &alpha, (cz_real *)a, (inc_t)lda, 1, (cz_real *)b,
         (inc_t)ldb, 1, &beta, c, (inc_t)ldc, 1);
}

#endif
