/* Exact layer-Jacobian norms of one sample over its active units (jacnorm.h). */
#include "chainz/jacnorm.h"

#include <stdint.h>
#include <stdlib.h>

#include "engine_internal.h"
#include "gemm.h"
#include "par.h"

struct cz_jacnorm {
    cz_real *P[2];   /* n_max x k: P_{l-1} and P_l, rows of the active units */
    cz_real *Wg;     /* n_max x n_max: W_l[A_l, A_{l-1}] */
    cz_real *term;   /* n_max: D_i^2 |t_i|^2 */
    size_t *act[2];  /* A_{l-1}, A_l */
    size_t n, d, k;  /* the model's widest layer, d, and the rows' width (d, or n_1: Gram) */
    /* Gram: W_1^T = QR, so J_l = M_l W_1 = M_l R^T Q^T and ||J_l|| = ||M_l R^T||: rows of
     * F = R^T (n_1 wide) stand in for W_1's (d wide). R is refactored when W_1 changes. */
    cz_real *w0copy, *qr, *F, *ltau, *lwork;
    int lw, qr_valid;
};

static size_t widest(const cz_model *m)
{
    size_t n = 0;
    for (int l = 0; l < m->n_hidden; l++)
        if (m->layer[l].n_out > n) n = m->layer[l].n_out;
    return n;
}

static int gram_ok(const cz_model *m, cz_stream_mode mode)
{
    return mode == CZ_STREAM_EXACT || (mode == CZ_STREAM_GRAM && m->layer[0].n_out < m->spec.d);
}

/* 0 when the sizes overflow or the mode does not apply */
size_t cz_jacnorm_bytes(const cz_model *m, cz_stream_mode mode)
{
    size_t n = widest(m), d = m->spec.d, n0 = m->layer[0].n_out, r = sizeof(cz_real);
    if (!gram_ok(m, mode) || n > SIZE_MAX / 8 / r / (d > n ? d : n)) return 0;
    size_t k = mode == CZ_STREAM_GRAM ? n0 : d, b = r * (2 * n * k + n * n + n) + 2 * n * sizeof(size_t);
    if (mode == CZ_STREAM_GRAM) b += r * (2 * n0 * d + n0 * n0 + 65 * n0);
    return sizeof(struct cz_jacnorm) + b;
}

cz_jacnorm *cz_jacnorm_new(const cz_model *m, cz_stream_mode mode, cz_error *err)
{
    size_t n = widest(m), d = m->spec.d, n0 = m->layer[0].n_out;
    if (!gram_ok(m, mode)) {
        cz_error_set(err, CZ_EINVAL, "engine: the layer-Jacobian norms run at width d (exact) or n_1 < d (gram)");
        return NULL;
    }
    if (!cz_jacnorm_bytes(m, mode)) {
        cz_error_set(err, CZ_ENOMEM, "the layer-Jacobian norms' scratch (%zu x %zu) is too large", n, d);
        return NULL;
    }
    size_t k = mode == CZ_STREAM_GRAM ? n0 : d;
    int gram = mode == CZ_STREAM_GRAM, ok = 0;
    cz_jacnorm *s = calloc(1, sizeof *s);
    if (s) {
        s->P[0] = malloc(n * k * sizeof(cz_real));
        s->P[1] = malloc(n * k * sizeof(cz_real));
        s->Wg = malloc(n * n * sizeof(cz_real));
        s->term = malloc(n * sizeof(cz_real));
        s->act[0] = malloc(n * sizeof(size_t));
        s->act[1] = malloc(n * sizeof(size_t));
        s->lw = (int)(64 * n0);
        if (gram) {
            s->w0copy = malloc(n0 * d * sizeof(cz_real));
            s->qr = malloc(n0 * d * sizeof(cz_real));
            s->F = malloc(n0 * n0 * sizeof(cz_real));
            s->ltau = malloc(n0 * sizeof(cz_real));
            s->lwork = malloc((size_t)s->lw * sizeof(cz_real));
        }
        ok = s->P[0] && s->P[1] && s->Wg && s->term && s->act[0] && s->act[1] &&
             (!gram || (s->w0copy && s->qr && s->F && s->ltau && s->lwork));
    }
    if (!ok) {
        cz_jacnorm_free(s);
        cz_error_set(err, CZ_ENOMEM, "out of memory for the layer-Jacobian norms (%zu MB)",
                     cz_jacnorm_bytes(m, mode) >> 20);
        return NULL;
    }
    s->n = n;
    s->d = d;
    s->k = k;
    return s;
}

void cz_jacnorm_free(cz_jacnorm *s)
{
    if (!s) return;
    free(s->P[0]);
    free(s->P[1]);
    free(s->Wg);
    free(s->term);
    free(s->act[0]);
    free(s->act[1]);
    free(s->w0copy);
    free(s->qr);
    free(s->F);
    free(s->ltau);
    free(s->lwork);
    free(s);
}

double cz_jacnorm_flops(const cz_model *m, cz_stream_mode mode)
{
    double k = mode == CZ_STREAM_GRAM ? (double)m->layer[0].n_out : (double)m->spec.d;
    double f = 3.0 * k * (double)m->layer[0].n_out; /* P_1 and its norm */
    for (int l = 1; l < m->n_hidden; l++)
        f += (2.0 * (double)m->layer[l].n_in + 3.0) * k * (double)m->layer[l].n_out;
    return f;
}

/* LAPACK's Householder QR of a tall, skinny W_1^T runs largely in matrix-vector products:
 * 14-32 GFLOP/s against 64-80 for a GEMM of as many flops in bench_qr (zen3 kernels, one
 * thread, d = 300..2000, n_1 = 32..256: 2.4-4.8x slower), and about 7x slower inside a
 * training step (784 x 64: some 0.6 ms a step in bench_tau, caches cold), so its 2 d n_1^2
 * flops count 8 times here (GEMM-equivalent) */
#define QR_SLOWDOWN 8.0

double cz_jacnorm_step_flops(const cz_model *m, cz_stream_mode mode)
{
    double d = (double)m->spec.d, n0 = (double)m->layer[0].n_out;
    return mode == CZ_STREAM_GRAM ? QR_SLOWDOWN * 2.0 * d * n0 * n0 + 2.0 * d * n0 : 0; /* the QR, the check */
}


int cz_jacnorm_sample(cz_jacnorm *s, const cz_workspace *ws, const cz_real *params, size_t b, double *sq,
                      cz_error *err)
{
    const cz_model *m = &ws->m;
    size_t d = m->spec.d, na = 0, k = s->k, n0 = m->layer[0].n_out;
    if (!ws->have_fwd || b >= ws->B)
        return cz_error_set(err, CZ_EINVAL, "engine: no sample %zu in the last step for its Jacobian norms", b);
    if (widest(m) > s->n || d != s->d || (s->F && n0 != k)) /* the buffers would overflow */
        return cz_error_set(err, CZ_EINVAL, "engine: the Jacobian norms' scratch was made for another model "
                            "(widest layer %zu, d = %zu; this one %zu, %zu)", s->n, s->d, widest(m), d);
    /* the rows of layer 1: W_1's own (width d), or F's (Gram, width n_1) */
    const cz_real *seed = params + m->layer[0].w;
    if (s->F) {
        /* F = R^T, made again only when W_1 changed (once a step) */
        int rc = cz_qr_of_w1(seed, n0, d, s->w0copy, s->qr, s->F, s->ltau, s->lwork, s->lw, 0, &s->qr_valid, err);
        if (rc) return rc;
        seed = s->F;
    }
    cz_real *P = s->P[0], *Q = s->P[1], *term = s->term;
    size_t *prev = s->act[0], *cur = s->act[1];
    for (int l = 0; l < m->n_hidden; l++) {
        const cz_layer *L = &m->layer[l];
        const cz_real *W = params + L->w, *D = ws->D[l] + b * L->n_out;
        size_t nc = 0, nin = L->n_in;
        for (size_t i = 0; i < L->n_out; i++)
            if (D[i] != 0) cur[nc++] = i;
        if (l > 0 && nc && na) { /* t = W_l[A_l, A_{l-1}] P_{l-1}: [nc x na] x [na x k] */
            int T = cz_par_threads(nc * na);
            CZ_PAR_FOR(
            for (size_t r = 0; r < nc; r++) {
                const cz_real *w = W + cur[r] * nin;
                for (size_t c = 0; c < na; c++) s->Wg[r * na + c] = w[prev[c]];
            });
            cz_gemm(0, 0, nc, k, na, 1, s->Wg, na, P, k, 0, Q, k);
        }
        if (l > 0 && !na) nc = 0; /* nothing reaches this layer: J_l = 0 from here on */
        /* row r: t = row cur[r] of the seed (l = 0) or of the product; P_l's row is D t,
         * and the term D^2 |t|^2 as the dense stream forms it (stream.c) */
        int T = cz_par_threads(nc * k);
        CZ_PAR_FOR(
        for (size_t r = 0; r < nc; r++) {
            const cz_real *t = l == 0 ? seed + cur[r] * k : Q + r * k;
            cz_real Dv = D[cur[r]], *out = Q + r * k;
            term[r] = Dv * Dv * cz_dot8(t, t, k);
            for (size_t j = 0; j < k; j++) out[j] = Dv * t[j];
        });
        double acc = 0; /* in the order of the units, on any thread count */
        for (size_t r = 0; r < nc; r++) acc += (double)term[r];
        sq[l] = acc;
        cz_real *tp = P;
        P = Q, Q = tp;
        size_t *ti = prev;
        prev = cur, cur = ti;
        na = nc;
    }
    return 0;
}
