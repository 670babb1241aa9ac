/* The engine's step: the value stream forward and backward, the loss, and the calls into
 * the Jacobian stream (stream.c) in between (docs/DESIGN.md section 1). The workspace and
 * the index convention are in engine_internal.h. With D_l = mask * phi'(z_l), dropout is
 * folded into the stream: S_l = diag(D_l) T_l exactly as without it. */
#include "engine_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "par.h"

static size_t max_width(const cz_model *m)
{
    size_t w = m->n_out;
    for (int l = 0; l < m->n_hidden; l++)
        if (m->layer[l].n_out > w) w = m->layer[l].n_out;
    return w;
}

/* Carves every buffer out of one 64-byte aligned arena; with base == NULL only counts. */
static size_t carve(cz_workspace *ws, char *base)
{
    const cz_model *m = &ws->m;
    size_t B = ws->max_B, d = m->spec.d, H = (size_t)m->n_hidden, W = max_width(m);
    size_t off = 0;
#define TAKE(ptr, type, count)                                           \
    do {                                                                 \
        if (base) (ptr) = (type *)(void *)(base + off);                  \
        off += (((count) * sizeof(type)) + 63) & ~(size_t)63;            \
    } while (0)
    for (size_t l = 0; l < H; l++) {
        size_t n = m->layer[l].n_out;
        TAKE(ws->z[l], cz_real, B * n);
        TAKE(ws->h[l], cz_real, B * n);
        TAKE(ws->dphi[l], cz_real, B * n);
        TAKE(ws->mask[l], cz_real, B * n);
        TAKE(ws->D[l], cz_real, B * n);
        TAKE(ws->dz[l], cz_real, B * n);
        TAKE(ws->sq[l], double, B);
    }
    TAKE(ws->z[H], cz_real, B * m->n_out);
    TAKE(ws->e, cz_real, B * m->n_out);
    TAKE(ws->gH, cz_real, B * m->layer[H - 1].n_out);
    for (size_t l = 0; l < (H > 3 ? H - 1 : 2); l++) TAKE(ws->g[l], cz_real, B * W);
    TAKE(ws->q, cz_real, B * W);
    TAKE(ws->d2phi, cz_real, B * W);
    TAKE(ws->gtask, cz_real, B * d);
#undef TAKE
    cz_stream_carve(ws, base, &off);
    return off;
}

static void workspace_shape(cz_workspace *ws, const cz_model *m, size_t max_batch, const cz_stream_spec *ss)
{
    ws->m = *m;
    ws->max_B = max_batch;
    ws->ss = ss ? *ss : (cz_stream_spec){.mode = CZ_STREAM_NONE};
    ws->k = cz_stream_width(m, &ws->ss);
}

size_t cz_workspace_bytes_for(const cz_model *m, size_t max_batch, const cz_stream_spec *ss)
{
    cz_workspace ws = {0};
    workspace_shape(&ws, m, max_batch, ss);
    return carve(&ws, NULL);
}

cz_workspace *cz_workspace_new_stream(const cz_model *m, size_t max_batch, const cz_stream_spec *ss,
                                      cz_error *err)
{
    if (max_batch == 0) {
        cz_error_set(err, CZ_EINVAL, "workspace: micro-batch size must be > 0");
        return NULL;
    }
    if (ss && cz_stream_check(m, ss, err)) return NULL;
    cz_workspace *ws = calloc(1, sizeof *ws);
    if (!ws) {
        cz_error_set(err, CZ_ENOMEM, "workspace: out of memory");
        return NULL;
    }
    workspace_shape(ws, m, max_batch, ss);
    ws->bytes = carve(ws, NULL);
    ws->arena = aligned_alloc(64, ws->bytes);
    if (!ws->arena) {
        cz_error_set(err, CZ_ENOMEM,
                     "workspace: cannot allocate %.1f MB for micro-batch %zu "
                     "(the Jacobian stream needs B*k*sum(n_l) reals at width k = %zu; lower --micro-batch)",
                     ws->bytes / 1e6, max_batch, ws->k);
        free(ws);
        return NULL;
    }
    carve(ws, ws->arena);
    return ws;
}

cz_workspace *cz_workspace_new(const cz_model *m, size_t max_batch, cz_error *err)
{
    cz_stream_spec ss = {.mode = CZ_STREAM_EXACT};
    return cz_workspace_new_stream(m, max_batch, &ss, err);
}

void cz_workspace_free(cz_workspace *ws)
{
    if (!ws) return;
    free(ws->arena);
    free(ws);
}

size_t cz_workspace_bytes(const cz_workspace *ws) { return ws->bytes; }

/* ---- value stream ---- */

static void dense_forward(cz_real *z, const cz_real *x, const cz_real *W, const cz_real *bias,
                          size_t B, size_t n_in, size_t n_out)
{
    /* z [B x n_out] = x [B x n_in] W^T + b */
    for (size_t b = 0; b < B; b++) memcpy(z + b * n_out, bias, n_out * sizeof *z);
    cz_gemm(0, 1, B, n_out, n_in, 1, x, n_in, W, n_in, 1, z, n_out);
}

/* hidden layer l forward: z_l, h_l = phi(z_l) * mask, phi'(z_l) and D_l */
static void value_forward_layer(cz_workspace *ws, const cz_real *params, int l, const cz_real *in,
                                const uint64_t *keys, size_t B)
{
    const cz_layer *L = &ws->m.layer[l];
    size_t n = L->n_out;
    double p = ws->m.spec.dropout;
    cz_real keep_scale = (cz_real)(1.0 / (1.0 - p));
    dense_forward(ws->z[l], in, params + L->w, params + L->b, B, L->n_in, n);
    cz_act_eval(ws->h[l], ws->dphi[l], NULL, L->act, L->poly == CZ_NONE ? NULL : params + L->poly, ws->z[l], B, n);
    if (!ws->dropout_on) {
        memcpy(ws->D[l], ws->dphi[l], B * n * sizeof(cz_real));
        return;
    }
    /* the mask of (sample, layer, neuron) depends only on the sample's key */
    int T = cz_par_threads(B * n);
    CZ_PAR_FOR(
    for (size_t b = 0; b < B; b++)
        for (size_t i = 0; i < n; i++) {
            size_t k = b * n + i;
            uint64_t ctr = ((uint64_t)(l + 1) << 40) | i;
            ws->mask[l][k] = cz_hash_uniform(keys[b], ctr) < p ? 0 : keep_scale;
            ws->h[l][k] *= ws->mask[l][k];
            ws->D[l][k] = ws->mask[l][k] * ws->dphi[l][k];
        });
}

static void value_forward(cz_workspace *ws, const cz_real *params, const cz_real *x, const uint64_t *keys,
                          size_t B)
{
    const cz_model *m = &ws->m;
    for (int l = 0; l < m->n_hidden; l++) value_forward_layer(ws, params, l, l ? ws->h[l - 1] : x, keys, B);
    const cz_layer *O = &m->layer[m->n_hidden];
    dense_forward(ws->z[m->n_hidden], ws->h[m->n_hidden - 1], params + O->w, params + O->b, B, O->n_in, O->n_out);
}

/* The neuron range [i0, i1) of part `part` of `parts`: loops whose outputs belong to a
 * neuron split this way and keep b as the outer loop, so the inner loop runs over
 * contiguous neurons (vectorized) and each neuron still sums over b in order (par.h). */
static void neuron_range(size_t n, int part, int parts, size_t *i0, size_t *i1)
{
    *i0 = n * (size_t)part / (size_t)parts;
    *i1 = n * (size_t)(part + 1) / (size_t)parts;
}

/* out[i] += sum_b a[b, i], in the order of b: split by column i (par.h) */
static void column_sums(cz_real *out, const cz_real *a, size_t B, size_t n)
{
    int T = cz_par_threads(B * n);
    CZ_PAR_FOR(
    for (int part = 0; part < T; part++) {
        size_t i0, i1;
        neuron_range(n, part, T, &i0, &i1);
        for (size_t b = 0; b < B; b++)
            for (size_t i = i0; i < i1; i++) out[i] += a[b * n + i];
    });
}

/* dz and the poly gradient of neurons [i0, i1), at most DZ_BLOCK of them, b outer so that
 * the inner loop runs over contiguous neurons. The buffers are distinct (restrict), the
 * variant (q, dropout mask, poly) is a constant of each inlined copy (no branch in the
 * loop), and the poly sums run in four local arrays loaded from and stored back to the
 * gradient: the loop vectorizes. Each sum still adds its terms in the order of b and each
 * dz is the same expression: the bits are those of the plain loop. */
#define DZ_BLOCK 64
static inline void dz_block(cz_real *restrict dz, cz_real *restrict dpoly, const cz_real *restrict g,
                            const cz_real *restrict q, const cz_real *restrict dphi,
                            const cz_real *restrict d2phi, const cz_real *restrict z,
                            const cz_real *restrict mask, size_t B, size_t n, size_t i0, size_t m,
                            const int has_q, const int has_mask, const int has_poly)
{
    cz_real a0[DZ_BLOCK], a1[DZ_BLOCK], a2[DZ_BLOCK], a3[DZ_BLOCK];
    for (size_t i = 0; has_poly && i < m; i++) {
        const cz_real *da = dpoly + 4 * (i0 + i);
        a0[i] = da[0], a1[i] = da[1], a2[i] = da[2], a3[i] = da[3];
    }
    for (size_t b = 0; b < B; b++) {
        size_t o = b * n + i0;
        for (size_t i = 0; i < m; i++) {
            size_t k = o + i;
            cz_real gk = g[k], qk = has_q ? q[k] : 0;
            if (has_mask) {
                gk *= mask[k];
                qk *= mask[k];
            }
            dz[k] = gk * dphi[k] + qk * d2phi[k];
            if (has_poly) {
                cz_real zk = z[k];
                a0[i] += gk;
                a1[i] += gk * zk + qk;
                a2[i] += zk * (gk * zk + 2 * qk);
                a3[i] += zk * zk * (gk * zk + 3 * qk);
            }
        }
    }
    for (size_t i = 0; has_poly && i < m; i++) {
        cz_real *da = dpoly + 4 * (i0 + i);
        da[0] = a0[i], da[1] = a1[i], da[2] = a2[i], da[3] = a3[i];
    }
}

static void dz_rows(cz_real *dz, cz_real *dpoly, const cz_real *g, const cz_real *q, const cz_real *dphi,
                    const cz_real *d2phi, const cz_real *z, const cz_real *mask, size_t B, size_t n,
                    size_t i0, size_t i1)
{
    size_t m = i1 - i0;
#define DZ(hq, hm, hp) dz_block(dz, dpoly, g, q, dphi, d2phi, z, mask, B, n, i0, m, hq, hm, hp)
    switch ((q != NULL) | (mask != NULL) << 1 | (dpoly != NULL) << 2) {
    case 0: DZ(0, 0, 0); break;
    case 1: DZ(1, 0, 0); break;
    case 2: DZ(0, 1, 0); break;
    case 3: DZ(1, 1, 0); break;
    case 4: DZ(0, 0, 1); break;
    case 5: DZ(1, 0, 1); break;
    case 6: DZ(0, 1, 1); break;
    default: DZ(1, 1, 1); break;
    }
#undef DZ
}

/* hidden layer l backward: dz_l from g = dloss/dh_l and (with the DREG backward) q_l,
 * the poly coefficients' gradient, dW_l, db_l; returns g_{l-1} (layer 0: NULL) */
static const cz_real *value_backward_layer(cz_workspace *ws, const cz_real *params, cz_real *grad, int l,
                                           const cz_real *g, int with_q, const cz_real *h_in, size_t B)
{
    const cz_layer *L = &ws->m.layer[l];
    size_t n = L->n_out, n_in = L->n_in;
    const cz_real *poly = L->poly == CZ_NONE ? NULL : params + L->poly;
    cz_act_eval(NULL, NULL, ws->d2phi, L->act, poly, ws->z[l], B, n);
    cz_real *dz = ws->dz[l];
    cz_real *dpoly = L->poly == CZ_NONE ? NULL : grad + L->poly;
    /* the poly gradient of neuron i sums over the batch: split by neuron, b in order (par.h) */
    int T = cz_par_threads(B * n);
    CZ_PAR_FOR(
    for (int part = 0; part < T; part++) {
        size_t i0, i1;
        neuron_range(n, part, T, &i0, &i1);
        for (size_t c = i0; c < i1; c += DZ_BLOCK)
            dz_rows(dz, dpoly, g, with_q ? ws->q : NULL, ws->dphi[l], ws->d2phi, ws->z[l],
                    ws->dropout_on ? ws->mask[l] : NULL, B, n, c, c + DZ_BLOCK < i1 ? c + DZ_BLOCK : i1);
    });
    cz_gemm(1, 0, n, n_in, B, 1, dz, n, h_in, n_in, 1, grad + L->w, n_in);
    column_sums(grad + L->b, dz, B, n);
    if (l == 0) return NULL;
    cz_real *gn = ws->g[l - 1]; /* one per layer: the tau norms read them (sample_norms) */
    cz_gemm(0, 0, B, n_in, n, 1, dz, n, params + L->w, n_in, 0, gn, n_in);
    return gn;
}

int cz_engine_step(cz_workspace *ws, const cz_real *params, const cz_real *x,
                   const int32_t *y_class, const cz_real *y_value, const uint64_t *keys,
                   size_t B, const cz_step_opts *opts, cz_real *grad, cz_step_sums *sums,
                   cz_error *err)
{
    const cz_model *m = &ws->m;
    int H = m->n_hidden;
    size_t d = m->spec.d;
    if (B > ws->max_B)
        return cz_error_set(err, CZ_EINVAL, "engine: micro-batch of %zu exceeds workspace size %zu",
                            B, ws->max_B);
    if (opts->lambda < 0) return cz_error_set(err, CZ_EINVAL, "engine: lambda must be >= 0");
    ws->dropout_on = opts->train && m->spec.dropout > 0;
    if (ws->dropout_on && !keys)
        return cz_error_set(err, CZ_EINVAL, "engine: dropout needs per-sample keys");
    ws->B = B;
    ws->x = x;
    memset(sums, 0, sizeof *sums);
    int run_stream = opts->lambda > 0 || opts->stream;
    int stream_bwd = grad && opts->lambda > 0;
    if (run_stream && !ws->k)
        return cz_error_set(err, CZ_EINVAL, "engine: DREG or Jacobian statistics need a workspace with a stream");

    ws->have_fwd = 0;
    value_forward(ws, params, x, keys, B);
    ws->have_fwd = 1;
    ws->have_gin = grad && run_stream && opts->stream_input_grad && ws->ss.mode == CZ_STREAM_EXACT;
    cz_real c = (cz_real)(2.0 * opts->lambda);
    ws->top_fused = 0;
    if (run_stream) {
        int rc = cz_stream_seed(ws, params, keys, B, err);
        if (rc) return rc;
        /* with a DREG backward to come (and no input gradient, which reads the top layer's
         * T first), the forward pass also does the top layer's elementwise backward */
        cz_stream_forward(ws, params, B, c, stream_bwd && !ws->have_gin);
        for (int l = 0; l < H; l++)
            for (size_t b = 0; b < B; b++) sums->dreg += ws->sq[l][b];
    }
    ws->stream_ran = ws->stream_fwd = run_stream;
    ws->have_grad = grad != NULL;
    ws->dz_task = grad && !stream_bwd;
    cz_loss_eval(grad ? ws->e : NULL, NULL, NULL, &sums->task, m, ws->z[H], y_class, y_value, B);
    if (!grad) return 0;

    memset(grad, 0, m->n_params * sizeof *grad);
    const cz_layer *O = &m->layer[H];
    size_t nH = O->n_in;
    /* output layer: dW_o += e^T h_H, db_o += sum e, g_H = e W_o */
    cz_gemm(1, 0, O->n_out, nH, B, 1, ws->e, O->n_out, ws->h[H - 1], nH, 1, grad + O->w, nH);
    column_sums(grad + O->b, ws->e, B, O->n_out);
    cz_gemm(0, 0, B, nH, O->n_out, 1, ws->e, O->n_out, params + O->w, nH, 0, ws->gH, nH);
    if (opts->layer_done) opts->layer_done(opts->ctx, H);

    if (ws->have_gin) {
        memset(ws->gin, 0, B * d * sizeof *ws->gin);
        if (!stream_bwd) cz_stream_input_grad(ws, B);
    }
    const cz_real *g = ws->gH;
    for (int l = H - 1; l >= 0; l--) {
        if (stream_bwd) cz_stream_backward_layer(ws, params, grad, l, c, B, ws->have_gin && l == H - 1);
        g = value_backward_layer(ws, params, grad, l, g, stream_bwd, l == 0 ? x : ws->h[l - 1], B);
        if (l > 0 && opts->layer_done) opts->layer_done(opts->ctx, l);
    }
    if (stream_bwd) {
        cz_stream_backward_seed(ws, grad, B); /* the last term of dW_1 (gram, probe) */
        ws->stream_fwd = 0; /* S and T now hold U and V */
    }
    if (opts->layer_done) opts->layer_done(opts->ctx, 0);
    return 0;
}

const cz_real *cz_engine_outputs(const cz_workspace *ws) { return ws->z[ws->m.n_hidden]; }

const cz_real *cz_engine_hidden(const cz_workspace *ws, int l)
{
    return l >= 1 && l <= ws->m.n_hidden ? ws->h[l - 1] : NULL;
}

const double *cz_engine_jacobian_sqnorm(const cz_workspace *ws, int l)
{
    if (l < 1 || l > ws->m.n_hidden || !ws->stream_ran) return NULL;
    return ws->sq[l - 1];
}

int cz_engine_jacobian(const cz_workspace *ws, const cz_real *params, int l, size_t b,
                       cz_real *out, cz_error *err)
{
    const cz_model *m = &ws->m;
    (void)params;
    if (l < 1 || l > m->n_hidden || b >= ws->B)
        return cz_error_set(err, CZ_EINVAL, "engine: no Jacobian for layer %d sample %zu", l, b);
    if (!ws->stream_fwd)
        return cz_error_set(err, CZ_EINVAL,
                            "engine: no forward stream from the last step (it did not run the "
                            "stream, or a DREG backward overwrote it)");
    if (ws->ss.mode == CZ_STREAM_PROBE)
        return cz_error_set(err, CZ_EINVAL, "engine: probe mode holds no Jacobian, only its projections");
    int i0 = l - 1, gram = ws->ss.mode == CZ_STREAM_GRAM;
    size_t n = m->layer[i0].n_out, d = m->spec.d, k = ws->k, Bk = ws->B * k;
    for (size_t i = 0; i < n; i++) {
        cz_real *o = out + i * d;
        /* the top layer's S is never stored: D T (T_0 = the seed) */
        int top = i0 + 1 == m->n_hidden;
        const cz_real *s = top ? cz_stream_t(ws, i0, i, b) : ws->S[i0] + i * Bk + b * k;
        cz_real scale = top ? ws->D[i0][b * n + i] : 1;
        if (!gram) {
            for (size_t j = 0; j < d; j++) o[j] = scale * s[j];
            continue;
        }
        memset(o, 0, d * sizeof *o); /* S_l = S'_l Q^T */
        for (size_t c = 0; c < k; c++) {
            const cz_real *qrow = ws->qr + c * d;
            cz_real sc = scale * s[c];
            for (size_t j = 0; j < d; j++) o[j] += sc * qrow[j];
        }
    }
    return 0;
}

int cz_engine_input_grad(const cz_workspace *ws, const cz_real *params, cz_real *out,
                         cz_error *err)
{
    (void)params;
    if (!ws->have_gin)
        return cz_error_set(err, CZ_EINVAL, "engine: input gradient needs a step with grad and stream");
    memcpy(out, ws->gin, ws->B * ws->m.spec.d * sizeof *out);
    return 0;
}

int cz_engine_input_grad_backprop(const cz_workspace *ws, const cz_real *params, cz_real *out,
                                  cz_error *err)
{
    if (!ws->have_grad)
        return cz_error_set(err, CZ_EINVAL, "engine: backprop input gradient needs a step with grad");
    const cz_layer *L = &ws->m.layer[0];
    /* g_0 = dz_0 W_0: [B x n] x [n x d]. dz_0 includes the DREG term q*phi'', so this equals
     * the task-only gradient only when lambda == 0. */
    cz_gemm(0, 0, ws->B, L->n_in, L->n_out, 1, ws->dz[0], L->n_out, params + L->w, L->n_in, 0,
            out, L->n_in);
    return 0;
}

/* sum_j a_j^2 in double with 8 partial sums in a fixed order (as cz_dot8): one running sum
 * waited on each addition's latency, and the tau norms' rows (about 2,600 values a sample
 * at d = 300, 512,512) cost a lambda = 0 step 3 % more (bench_tau: 12.4 -> 9.1 %) */
static double row_sq(const cz_real *a, size_t n)
{
    double acc[8] = {0};
    size_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++) acc[k] += (double)a[j + k] * (double)a[j + k];
    double s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; j < n; j++) s += (double)a[j] * (double)a[j];
    return s;
}

int cz_engine_sample_norms(cz_workspace *ws, const cz_real *params, double *input_grad,
                           double *sample_grad, cz_error *err)
{
    const cz_model *m = &ws->m;
    size_t B = ws->B, d = m->spec.d;
    int H = m->n_hidden;
    if (!ws->have_grad) return cz_error_set(err, CZ_EINVAL, "engine: sample norms need a step with grad");
    const cz_layer *O = &m->layer[H];
    for (size_t b = 0; sample_grad && b < B; b++)
        sample_grad[b] = row_sq(ws->e + b * O->n_out, O->n_out) * (row_sq(ws->h[H - 1] + b * O->n_in, O->n_in) + 1);
    /* a step without a DREG term left the task's own dz_l and g_l = dtask/dh_l in the
     * workspace: the norms read them instead of repeating the backward's products (about a
     * third of a lambda = 0 step); after a DREG backward they are formed again here */
    int reuse = ws->dz_task;
    const cz_real *g = ws->gH; /* dtask/dh_H: the value backward's, before any DREG term */
    for (int l = H - 1; l >= 0; l--) {
        const cz_layer *L = &m->layer[l];
        size_t n = L->n_out, n_in = L->n_in;
        const cz_real *a = l == 0 ? ws->x : ws->h[l - 1], *dz = ws->dz[l];
        if (reuse) {
            if (l < H - 1) g = ws->g[l];
        } else {
            cz_real *dzt = ws->d2phi; /* scratch: the task-only dz_l */
            for (size_t k = 0; k < B * n; k++) dzt[k] = g[k] * ws->D[l][k];
            dz = dzt;
        }
        for (size_t b = 0; sample_grad && b < B; b++) {
            double poly = 0;
            for (size_t i = 0; L->poly != CZ_NONE && i < n; i++) { /* d/da_j = g' z^j, g' = g * mask */
                size_t k = b * n + i;
                double gm = ws->dropout_on ? (double)g[k] * ws->mask[l][k] : (double)g[k];
                double z2 = (double)ws->z[l][k] * (double)ws->z[l][k];
                poly += gm * gm * (1 + z2 * (1 + z2 * (1 + z2)));
            }
            sample_grad[b] += row_sq(dz + b * n, n) * (row_sq(a + b * n_in, n_in) + 1) + poly;
        }
        if (l == 0 && input_grad) { /* reverse mode: dtask/dx = dz_1 W_1, [B x n] x [n x d] */
            cz_gemm(0, 0, B, d, n, 1, dz, n, params + L->w, d, 0, ws->gtask, d);
            for (size_t b = 0; b < B; b++) input_grad[b] = sqrt(row_sq(ws->gtask + b * d, d));
        }
        if (!reuse && l > 0) {
            cz_real *gn = ws->g[l & 1];
            cz_gemm(0, 0, B, n_in, n, 1, dz, n, params + L->w, n_in, 0, gn, n_in);
            g = gn;
        }
    }
    for (size_t b = 0; sample_grad && b < B; b++) sample_grad[b] = sqrt(sample_grad[b]);
    return 0;
}

double cz_engine_step_flops(const cz_model *m, size_t B, int stream)
{
    double value = 0, str = 0;
    for (int l = 0; l <= m->n_hidden; l++) {
        double nn = (double)m->layer[l].n_out * (double)m->layer[l].n_in;
        value += 6.0 * (double)B * nn;
        if (stream && l >= 1 && l < m->n_hidden) str += 6.0 * (double)B * (double)m->spec.d * nn;
    }
    return value + str;
}

