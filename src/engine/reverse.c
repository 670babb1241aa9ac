/* A reverse pass over the value stream from an arbitrary output seed (engine.h,
 * cz_engine_input_grad_seeded): the input gradient of any linear form of the outputs,
 * without the parameter gradient's GEMMs or the Jacobian stream; and the same norm read off a
 * forward stream when one ran. Serve the inference library's input_norm (DESIGN section 7). */
#include "engine_internal.h"

#include <math.h>
#include <string.h>

#include "gemm.h"

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

int cz_engine_input_norm_stream(cz_workspace *ws, const cz_real *params, const cz_real *seed, double *norm,
                                cz_error *err)
{
    const cz_model *m = &ws->m;
    size_t B = ws->B, k = ws->k;
    int H = m->n_hidden;
    if (!ws->stream_fwd || (ws->ss.mode != CZ_STREAM_EXACT && ws->ss.mode != CZ_STREAM_GRAM))
        return cz_error_set(err, CZ_EINVAL, "engine: the stream input norm needs a forward exact or Gram stream");
    const cz_layer *O = &m->layer[H];
    /* gH [B x n_H] = seed W_o; then gin_b = sum_i gH[b,i] D[b,i] t_i = seed_b^T W_o S_H (width
     * k). Gram: the gradient is gin' Q^T and Q^T has orthonormal rows, so ||gin'|| is its norm. */
    /* gH by a loop, not a GEMM: n_out is a handful of classes, and a BLIS call costs about a
     * microsecond, as much as a Pima-sized model's whole stream */
    const cz_real *Wo = params + O->w;
    size_t nH = O->n_in, no = O->n_out;
    for (size_t b = 0; b < B; b++) {
        cz_real *gh = ws->gH + b * nH;
        for (size_t i = 0; i < nH; i++) gh[i] = 0;
        for (size_t c = 0; c < no; c++) {
            cz_real sc = seed[b * no + c];
            for (size_t i = 0; i < nH; i++) gh[i] += sc * Wo[c * nH + i];
        }
    }
    memset(ws->gin, 0, B * k * sizeof *ws->gin);
    cz_stream_input_grad(ws, B);
    row_norms(norm, ws->gin, B, k);
    return 0;
}
