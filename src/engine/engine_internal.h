/* The workspace shared by the value stream (engine.c) and the Jacobian stream (stream.c).
 *
 * Index convention: hidden layers are 0-based (l = 0 is DESIGN's layer 1), layer H is the
 * output. The stream has width k per sample: k = d (exact), n_0 (Gram) or K (probe).
 * Buffers that hold the Jacobian stream, all neuron-major n_l x (B*k):
 *   S[l]  S_l = D_l T_l for l < H-1 (input of the next GEMM and of dW_{l+1});
 *         in the backward pass the same buffer receives U_l, then V_l, in place
 *         (except U_0 under a shared seed at k = 8, whose V_0 is only summed: stream.c).
 *   T[l]  T_l = W_l S_{l-1} for l >= 1 (needed for q_l); the top one receives V_H.
 *         T[0] is materialized only in probe mode (T_0 = W_0 P_b differs per sample);
 *         otherwise T_0 is the seed shared by the batch: W_0 (exact) or F = R^T (Gram). */
#ifndef CHAINZ_ENGINE_INTERNAL_H
#define CHAINZ_ENGINE_INTERNAL_H

#include <string.h>

#include "chainz/engine.h"

struct cz_workspace {
    cz_model m;
    cz_stream_spec ss;              /* the stream this workspace was made for */
    size_t k;                       /* stream width per sample (0: no stream) */
    size_t max_B, B;
    size_t bytes;
    cz_real *z[CZ_MAX_HIDDEN + 1];  /* B x n_l; z[H] = f, the outputs */
    cz_real *h[CZ_MAX_HIDDEN];      /* B x n_l: phi(z) * mask */
    cz_real *dphi[CZ_MAX_HIDDEN];   /* B x n_l: phi'(z) */
    cz_real *mask[CZ_MAX_HIDDEN];   /* B x n_l: 0 or 1/(1-p) (dropout only) */
    cz_real *D[CZ_MAX_HIDDEN];      /* B x n_l: mask * phi'(z) (== dphi without dropout) */
    cz_real *dz[CZ_MAX_HIDDEN];     /* B x n_l: dloss/dz_l */
    cz_real *S[CZ_MAX_HIDDEN];      /* n_l x (B*k), l < H-1 */
    cz_real *T[CZ_MAX_HIDDEN];      /* n_l x (B*k), l >= 1 (and l = 0 in probe mode) */
    double *sq[CZ_MAX_HIDDEN];      /* B: ||S_l||_F^2 per sample (an estimate in probe mode) */
    cz_real *e;                     /* B x n_out: dtask/df */
    cz_real *gH;                    /* B x n_H: dtask/dh_H */
    cz_real *g[CZ_MAX_HIDDEN];      /* B x max n: g[l] = dloss/dh_l (l < H-1; the top's is
                                     * gH), kept after the backward for the tau norms; at
                                     * least g[0], g[1] (ping-pong scratch elsewhere) */
    cz_real *q;                     /* B x max n: dloss/dD_l */
    cz_real *d2phi;                 /* B x max n */
    cz_real *gin;                   /* B x k: stream input gradient (exact mode; Gram: times Q^T) */
    cz_real *gtask;                 /* B x d: task-only input gradient by backprop */
    /* seeds of the stream */
    const cz_real *seed;            /* n_0 x k shared by the batch, or NULL (probe) */
    cz_real *dseed;                 /* n_0 x k: sum_b V_0 in Gram mode */
    cz_real *qr;                    /* Gram: n_0 x d, W_0 factored in place, then Q^T */
    cz_real *F;                     /* Gram: n_0 x n_0, R^T */
    cz_real *w0copy;                /* Gram: n_0 x d, the W_0 that F and Q^T belong to */
    cz_real *lapack_tau, *lapack_work;
    int lwork;
    int qr_valid;                   /* F and Q^T are those of w0copy */
    cz_real *P;                     /* probe: (B*K) x d, row b*K+j = sample b's direction j */
    const cz_real *x;               /* the last step's input (caller's buffer) */
    int dropout_on;                 /* last step used dropout masks */
    int stream_ran;                 /* the last step ran the stream: sq (and gin) valid */
    int stream_fwd;                 /* S/T still hold the forward stream of the last step */
    int have_grad;                  /* last step ran the backward pass */
    int dz_task;                    /* ... without a DREG term: dz[l] and g[l] are the
                                     * task's alone */
    int have_fwd;                   /* last step ran the value forward: z, h, D valid */
    int have_gin;
    int top_fused;                  /* the forward pass did the top layer's q and V (backward skips it) */
    void *arena;
};

/* sum_j a_j b_j with 8 independent partial sums: vectorizes without -ffast-math and the
 * summation order is fixed, so results are reproducible. Inline: the stream calls it once
 * per (neuron, sample) on rows of d values, d = 8 for a Pima-sized model. */
static inline cz_real cz_dot8(const cz_real *a, const cz_real *b, size_t n)
{
    cz_real acc[8] = {0};
    size_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++) acc[k] += a[j + k] * b[j + k];
    cz_real s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; j < n; j++) s += a[j] * b[j];
    return s;
}

/* CZ_AVX2_CLONE on a hot elementwise function: GCC compiles it twice, for AVX2 and for the
 * baseline, and the loader picks the one the CPU runs (ifunc). Neither copy contracts to
 * FMA (ISO C mode: -ffp-contract=off; the avx2 target has no FMA) nor reorders a sum, so
 * both give the same bits; the AVX2 copy is faster for rows of 8 reals (one vector). */
#ifndef CZ_AVX2_CLONE /* -DCZ_AVX2_CLONE= builds the baseline copy only */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define CZ_AVX2_CLONE __attribute__((target_clones("avx2", "default")))
#endif
#endif
#endif
#ifndef CZ_AVX2_CLONE
#define CZ_AVX2_CLONE
#endif

/* A row of exactly 8 reals as one value (GCC's vector extension; d = 8 for a Pima-sized
 * model): lane-wise IEEE operations, so the bits of the scalar loops, which the compiler
 * otherwise left mostly scalar (one row per (neuron, sample) is too short for its loop
 * vectorizer). cz_v8_dot is cz_dot8 for n = 8 term for term: acc = 0 + a b per lane (the
 * + 0 kept for the sign of a zero), then the same pairwise sum. Values pass by pointer:
 * a vector passed by value draws GCC's ABI notes (-Wpsabi) on baseline x86-64. */
typedef cz_real cz_v8 __attribute__((vector_size(8 * sizeof(cz_real))));
typedef cz_real cz_v4 __attribute__((vector_size(4 * sizeof(cz_real))));

static inline void cz_v8_load(cz_v8 *v, const cz_real *p) { memcpy(v, p, sizeof *v); }

static inline void cz_v8_store(cz_real *p, const cz_v8 *v) { memcpy(p, v, sizeof *v); }

static inline cz_real cz_v8_dot(const cz_v8 *a, const cz_v8 *b)
{
    cz_v8 acc = (cz_v8){0} + *a * *b;
    cz_v4 lo, hi;
    memcpy(&lo, &acc, sizeof lo);
    memcpy(&hi, (char *)&acc + sizeof lo, sizeof hi);
    cz_v4 h = lo + hi; /* acc[j] + acc[j + 4] */
    return (h[0] + h[1]) + (h[2] + h[3]);
}

/* LAPACK's QR (Gram mode's W_1^T = QR: stream.c; the tau subsample's R: jacnorm.c) */
#ifdef CZ_REAL_DOUBLE
#define GEQRF dgeqrf_
#define ORGQR dorgqr_
#else
#define GEQRF sgeqrf_
#define ORGQR sorgqr_
#endif
void GEQRF(const int *m, const int *n, cz_real *a, const int *lda, cz_real *tau, cz_real *work,
           const int *lwork, int *info);
void ORGQR(const int *m, const int *n, const int *k, cz_real *a, const int *lda, const cz_real *tau,
           cz_real *work, const int *lwork, int *info);
/* ---- stream.c ---- */
/* W_1^T = QR of W0 [n0 x d] (LAPACK, on one BLIS thread so the bits do not depend on the
 * count), unless *valid and W0's bytes equal w0copy's: F = R^T [n0 x n0], and with form_q
 * Q^T over qr (else qr keeps LAPACK's reflectors). Gram mode's seed and the tau
 * subsample's rows (jacnorm.c). @return 0 or CZ_ERUNTIME. */
int cz_qr_of_w1(const cz_real *W0, size_t n0, size_t d, cz_real *w0copy, cz_real *qr, cz_real *F, cz_real *tau,
                cz_real *work, int lwork, int form_q, int *valid, cz_error *err);
/* Bytes of the stream's buffers for the workspace's shapes; with base != NULL, carves them
 * from base at offset *off. */
void cz_stream_carve(cz_workspace *ws, char *base, size_t *off);
/* The seed T_0 of this step: W_0 (exact), F = R^T of W_0^T = QR (Gram, cached while W_0 is
 * unchanged), or T_0 = W_0 P_b with probe directions drawn from the sample keys. */
int cz_stream_seed(cz_workspace *ws, const cz_real *params, const uint64_t *keys, size_t B, cz_error *err);
/* Forward through every hidden layer: T_l, S_l and sq[l]. */
void cz_stream_forward(cz_workspace *ws, const cz_real *params, size_t B, cz_real c, int fuse_top);
/* Backward at hidden layer l: q_l into ws->q and the stream part of dW_l (layer 0: into
 * the seed's gradient); U_{l-1} into S[l-1]. */
void cz_stream_backward_layer(cz_workspace *ws, const cz_real *params, cz_real *grad, int l, cz_real c,
                              size_t B, int want_gin);
/* After the layer loop: the seed's gradient onto dW_0 (Gram: dF Q^T; probe: V_0 P). */
void cz_stream_backward_seed(cz_workspace *ws, cz_real *grad, size_t B);
/* gin += sum_i gH[b,i] D t_i at the top layer (exact mode; before a DREG backward overwrites t). */
void cz_stream_input_grad(cz_workspace *ws, size_t B);
/* The forward stream's row i of sample b at layer l (T_l; T_0 = the seed). */
const cz_real *cz_stream_t(const cz_workspace *ws, int l, size_t i, size_t b);

#endif
