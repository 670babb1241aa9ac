/* A reverse pass over the value stream from an arbitrary output seed (engine.h,
 * cz_engine_input_grad_seeded): the input gradient of any linear form of the outputs,
 * without the parameter gradient's GEMMs or the Jacobian stream; and the same norm read off a
 * forward stream when one ran. Serve the inference library's input_norm (DESIGN section 7). */
#include "engine_internal.h"

#include <math.h>
#include <string.h>

#include "gemm.h"
#include "par.h"

static void row_norms(double *norm, const cz_real *g, size_t B, size_t k)
{
    for (size_t b = 0; b < B; b++) {
        double s = 0;
        for (size_t j = 0; j < k; j++) s += (double)g[b * k + j] * (double)g[b * k + j];
        norm[b] = sqrt(s);
    }
}

int cz_engine_input_grad_seeded(cz_workspace *ws, const cz_real *params, const cz_real *seed,
                                cz_real *gx, double *norm, cz_error *err)
{
    const cz_model *m = &ws->m;
    size_t B = ws->B, d = m->spec.d;
    int H = m->n_hidden;
    if (!ws->have_fwd) return cz_error_set(err, CZ_EINVAL, "engine: the seeded input gradient needs a step first");
    if (!gx) gx = ws->gtask;
    const cz_layer *O = &m->layer[H];
    /* dq/dh_H [B x n_H] = seed [B x n_o] W_o [n_o x n_H]; g[H & 1] is not the buffer the top
     * layer writes (g[(H-1) & 1]), so the ping-pong never reads what it overwrites */
    cz_real *g = ws->g[H & 1];
    ws->dz_task = 0; /* g[0] and g[1] become scratch: the tau norms must not read them */
    cz_gemm(0, 0, B, O->n_in, O->n_out, 1, seed, O->n_out, params + O->w, O->n_in, 0, g, O->n_in);
    for (int l = H - 1; l >= 0; l--) {
        const cz_layer *L = &m->layer[l];
        size_t n = L->n_out, n_in = L->n_in;
        cz_real *dz = ws->d2phi; /* scratch: dq/dz_l = dq/dh_l * D_l (D holds any dropout mask) */
        for (size_t k = 0; k < B * n; k++) dz[k] = g[k] * ws->D[l][k];
        /* dq/dh_{l-1} [B x n_in] = dz [B x n] W_l [n x n_in]; layer 0: dq/dx */
        cz_real *out = l == 0 ? gx : ws->g[l & 1];
        cz_gemm(0, 0, B, n_in, n, 1, dz, n, params + L->w, n_in, 0, out, n_in);
        g = out;
    }
    if (norm) row_norms(norm, gx, B, d);
    return 0;
}

/* Sample b's norm of gin_b = sum_i gd_i t_i (gd = gH_b D_b, t_i = row i of the top layer's
 * T, or of the shared seed when the top layer is layer 0; rows `stride` apart). gin is summed
 * in registers: summing it in memory, row after row, chained every multiply-add through a
 * store and a reload, and cost a Pima-sized model (k = 8, 64 neurons) a quarter of the
 * stream's forward pass. For k = 8 two accumulators (even and odd i) also let consecutive
 * rows overlap; other widths go in chunks of 64 columns. */
static double stream_row_norm8(const cz_real *restrict gd, const cz_real *restrict t, size_t stride, size_t n)
{
    cz_real a0[8] = {0}, a1[8] = {0};
    size_t i = 0;
    for (; i + 1 < n; i += 2) {
        const cz_real *t0 = t + i * stride, *t1 = t0 + stride;
        cz_real g0 = gd[i], g1 = gd[i + 1];
        for (size_t j = 0; j < 8; j++) {
            a0[j] += g0 * t0[j];
            a1[j] += g1 * t1[j];
        }
    }
    if (i < n)
        for (size_t j = 0; j < 8; j++) a0[j] += gd[i] * t[i * stride + j];
    double s = 0;
    for (size_t j = 0; j < 8; j++) {
        double v = (double)a0[j] + (double)a1[j];
        s += v * v;
    }
    return sqrt(s);
}

static double stream_row_norm(const cz_real *restrict gd, const cz_real *restrict t, size_t stride, size_t n,
                              size_t k)
{
    double s = 0;
    for (size_t j0 = 0; j0 < k; j0 += 64) {
        size_t kk = k - j0 < 64 ? k - j0 : 64;
        cz_real a[64] = {0};
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < kk; j++) a[j] += gd[i] * t[i * stride + j0 + j];
        for (size_t j = 0; j < kk; j++) s += (double)a[j] * (double)a[j];
    }
    return sqrt(s);
}

int cz_engine_input_norm_stream(cz_workspace *ws, const cz_real *params, const cz_real *seed, double *norm,
                                cz_error *err)
{
    const cz_model *m = &ws->m;
    size_t B = ws->B, k = ws->k;
    int H = m->n_hidden;
    if (!ws->stream_fwd || (ws->ss.mode != CZ_STREAM_EXACT && ws->ss.mode != CZ_STREAM_GRAM))
        return cz_error_set(err, CZ_EINVAL, "engine: the stream input norm needs a forward exact or Gram stream");
    const cz_layer *O = &m->layer[H];
    /* gd = gH D_H with gH [B x n_H] = seed W_o; then gin_b = sum_i gd[b,i] t_i = seed_b^T W_o
     * S_H (width k). Gram: the gradient is gin' Q^T and Q^T has orthonormal rows, so ||gin'||
     * is its norm. gd goes to the DREG backward's scratch q (free after the step), not to
     * gH, which cz_engine_sample_norms reads afterwards. */
    /* gH by a loop, not a GEMM: n_out is a handful of classes, and a BLIS call costs about a
     * microsecond, as much as a Pima-sized model's whole stream */
    const cz_real *Wo = params + O->w, *D = ws->D[H - 1];
    size_t nH = O->n_in, no = O->n_out;
    /* the top layer's rows t_i: the shared seed (one hidden layer), else T_H, B k apart */
    int shared = H == 1 && ws->seed;
    size_t stride = shared ? k : B * k;
    int T = cz_par_threads(nH * B * k);
    CZ_PAR_FOR(
    for (size_t b = 0; b < B; b++) {
        /* gd = (sum_c seed_c W_o[c, .]) D_b, the last class's pass applying D */
        cz_real *restrict gd = ws->q + b * nH; /* not gH: the step's, the tau norms read it */
        const cz_real *sb = seed + b * no, *Db = D + b * nH, *Wl = Wo + (no - 1) * nH;
        if (no == 1)
            for (size_t i = 0; i < nH; i++) gd[i] = sb[0] * Wo[i] * Db[i];
        else {
            for (size_t i = 0; i < nH; i++) gd[i] = sb[0] * Wo[i];
            for (size_t c = 1; c + 1 < no; c++)
                for (size_t i = 0; i < nH; i++) gd[i] += sb[c] * Wo[c * nH + i];
            for (size_t i = 0; i < nH; i++) gd[i] = (gd[i] + sb[no - 1] * Wl[i]) * Db[i];
        }
        const cz_real *t = shared ? ws->seed : ws->T[H - 1] + b * k;
        norm[b] = k == 8 ? stream_row_norm8(gd, t, stride, nH) : stream_row_norm(gd, t, stride, nH, k);
    });
    return 0;
}
