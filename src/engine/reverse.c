/* A reverse pass over the value stream from an arbitrary output seed (engine.h,
 * cz_engine_input_grad_seeded): the input gradient of any linear form of the outputs,
 * without the parameter gradient's GEMMs or the Jacobian stream. Serves the inference
 * library's input_norm (docs/DESIGN.md section 7). */
#include "engine_internal.h"

#include <math.h>

#include "gemm.h"

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
    for (size_t b = 0; norm && b < B; b++) {
        double s = 0;
        for (size_t j = 0; j < d; j++) s += (double)gx[b * d + j] * (double)gx[b * d + j];
        norm[b] = sqrt(s);
    }
    return 0;
}
