/* Dual-stream forward and backward (docs/DESIGN.md section 1).
 *
 * Index convention in this file: hidden layers are 0-based (l = 0 is DESIGN's layer 1),
 * layer H is the output. Buffers that hold the Jacobian stream, all neuron-major
 * n_l x (B*d):
 *   S[l]  S_l = D_l T_l for l < H-1 (input of the next GEMM and of dW_{l+1});
 *         in the backward pass the same buffer receives U_l, then V_l, in place.
 *   T[l]  T_l = W_l S_{l-1} for l >= 1 (needed for q_l); the top one receives V_H.
 * T_0 = W_0 is shared by the batch and never materialized. With D_l = mask * phi'(z_l),
 * dropout is folded into the stream: S_l = diag(D_l) T_l exactly as without it. */
#include "chainz/engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"

struct cz_workspace {
    cz_model m;
    size_t max_B, B;
    size_t bytes;
    cz_real *z[CZ_MAX_HIDDEN + 1];  /* B x n_l; z[H] = f, the outputs */
    cz_real *h[CZ_MAX_HIDDEN];      /* B x n_l: phi(z) * mask */
    cz_real *dphi[CZ_MAX_HIDDEN];   /* B x n_l: phi'(z) */
    cz_real *mask[CZ_MAX_HIDDEN];   /* B x n_l: 0 or 1/(1-p) (dropout only) */
    cz_real *D[CZ_MAX_HIDDEN];      /* B x n_l: mask * phi'(z) (== dphi without dropout) */
    cz_real *dz[CZ_MAX_HIDDEN];     /* B x n_l: dloss/dz_l */
    cz_real *S[CZ_MAX_HIDDEN];      /* n_l x (B*d), l < H-1 */
    cz_real *T[CZ_MAX_HIDDEN];      /* n_l x (B*d), l >= 1 */
    double *sq[CZ_MAX_HIDDEN];      /* B: ||S_l||_F^2 per sample */
    cz_real *e;                     /* B x n_out: dtask/df */
    cz_real *gH;                    /* B x n_H: dtask/dh_H */
    cz_real *g[2];                  /* B x max n: dloss/dh ping-pong */
    cz_real *q;                     /* B x max n: dloss/dD_l */
    cz_real *d2phi;                 /* B x max n */
    cz_real *gin;                   /* B x d: stream input gradient */
    const cz_real *x;               /* the last step's input (caller's buffer) */
    int dropout_on;                 /* last step used dropout masks */
    int stream_ran;                 /* the last step ran the stream: sq (and gin) valid */
    int stream_fwd;                 /* S/T still hold the forward stream of the last step */
    int have_grad;                  /* last step ran the backward pass */
    int have_gin;
    void *arena;
};

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
        if (l + 1 < H) TAKE(ws->S[l], cz_real, n * B * d);
        if (l >= 1) TAKE(ws->T[l], cz_real, n * B * d);
    }
    TAKE(ws->z[H], cz_real, B * m->n_out);
    TAKE(ws->e, cz_real, B * m->n_out);
    TAKE(ws->gH, cz_real, B * m->layer[H - 1].n_out);
    TAKE(ws->g[0], cz_real, B * W);
    TAKE(ws->g[1], cz_real, B * W);
    TAKE(ws->q, cz_real, B * W);
    TAKE(ws->d2phi, cz_real, B * W);
    TAKE(ws->gin, cz_real, B * d);
#undef TAKE
    return off;
}

cz_workspace *cz_workspace_new(const cz_model *m, size_t max_batch, cz_error *err)
{
    if (max_batch == 0) {
        cz_error_set(err, CZ_EINVAL, "workspace: micro-batch size must be > 0");
        return NULL;
    }
    cz_workspace *ws = calloc(1, sizeof *ws);
    if (!ws) {
        cz_error_set(err, CZ_ENOMEM, "workspace: out of memory");
        return NULL;
    }
    ws->m = *m;
    ws->max_B = max_batch;
    ws->bytes = carve(ws, NULL);
    ws->arena = aligned_alloc(64, ws->bytes);
    if (!ws->arena) {
        cz_error_set(err, CZ_ENOMEM,
                     "workspace: cannot allocate %.1f MB for micro-batch %zu "
                     "(the Jacobian stream needs B*d*sum(n_l) reals; lower --micro-batch)",
                     ws->bytes / 1e6, max_batch);
        free(ws);
        return NULL;
    }
    carve(ws, ws->arena);
    return ws;
}

void cz_workspace_free(cz_workspace *ws)
{
    if (!ws) return;
    free(ws->arena);
    free(ws);
}

size_t cz_workspace_bytes(const cz_workspace *ws) { return ws->bytes; }

/* sum_j a_j b_j with 8 independent partial sums: vectorizes without -ffast-math and the
 * summation order is fixed, so results are reproducible. */
static cz_real dot8(const cz_real *a, const cz_real *b, size_t n)
{
    cz_real acc[8] = {0};
    size_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++) acc[k] += a[j + k] * b[j + k];
    cz_real s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; j < n; j++) s += a[j] * b[j];
    return s;
}

/* ---- value stream ---- */

static void dense_forward(cz_real *z, const cz_real *x, const cz_real *W, const cz_real *bias,
                          size_t B, size_t n_in, size_t n_out)
{
    /* z [B x n_out] = x [B x n_in] W^T + b */
    for (size_t b = 0; b < B; b++) memcpy(z + b * n_out, bias, n_out * sizeof *z);
    cz_gemm(0, 1, B, n_out, n_in, 1, x, n_in, W, n_in, 1, z, n_out);
}

static void value_forward(cz_workspace *ws, const cz_real *params, const cz_real *x,
                          const uint64_t *keys, size_t B)
{
    const cz_model *m = &ws->m;
    const cz_real *in = x;
    double p = m->spec.dropout;
    cz_real keep_scale = (cz_real)(1.0 / (1.0 - p));
    for (int l = 0; l < m->n_hidden; l++) {
        const cz_layer *L = &m->layer[l];
        size_t n = L->n_out;
        dense_forward(ws->z[l], in, params + L->w, params + L->b, B, L->n_in, n);
        cz_act_eval(ws->h[l], ws->dphi[l], NULL, L->act,
                    L->poly == CZ_NONE ? NULL : params + L->poly, ws->z[l], B, n);
        if (ws->dropout_on) {
            /* the mask of (sample, layer, neuron) depends only on the sample's key */
            for (size_t b = 0; b < B; b++)
                for (size_t i = 0; i < n; i++) {
                    size_t k = b * n + i;
                    uint64_t ctr = ((uint64_t)(l + 1) << 40) | i;
                    ws->mask[l][k] = cz_hash_uniform(keys[b], ctr) < p ? 0 : keep_scale;
                    ws->h[l][k] *= ws->mask[l][k];
                    ws->D[l][k] = ws->mask[l][k] * ws->dphi[l][k];
                }
        } else {
            memcpy(ws->D[l], ws->dphi[l], B * n * sizeof(cz_real));
        }
        in = ws->h[l];
    }
    const cz_layer *O = &m->layer[m->n_hidden];
    dense_forward(ws->z[m->n_hidden], in, params + O->w, params + O->b, B, O->n_in, O->n_out);
}

/* ---- Jacobian stream forward ---- */

static void stream_forward(cz_workspace *ws, const cz_real *params, size_t B)
{
    const cz_model *m = &ws->m;
    int H = m->n_hidden;
    size_t d = m->spec.d, Bd = B * d;
    for (int l = 0; l < H; l++) {
        const cz_layer *L = &m->layer[l];
        size_t n = L->n_out;
        const cz_real *D = ws->D[l];
        double *sq = ws->sq[l];
        memset(sq, 0, B * sizeof *sq);
        if (l >= 1) /* T_l = W_l S_{l-1}: [n x n_in] x [n_in x Bd] */
            cz_gemm(0, 0, n, Bd, L->n_in, 1, params + L->w, L->n_in, ws->S[l - 1], Bd, 0,
                    ws->T[l], Bd);
        cz_real *S = l + 1 < H ? ws->S[l] : NULL;
        for (size_t i = 0; i < n; i++) {
            const cz_real *w1 = params + L->w + i * d; /* T_0 row: W_0 for every sample */
            cz_real w1sq = l == 0 ? dot8(w1, w1, d) : 0;
            for (size_t b = 0; b < B; b++) {
                cz_real Dv = D[b * n + i];
                const cz_real *t = l == 0 ? w1 : ws->T[l] + i * Bd + b * d;
                cz_real tsq = l == 0 ? w1sq : dot8(t, t, d);
                sq[b] += (double)(Dv * Dv * tsq);
                if (S) {
                    cz_real *s = S + i * Bd + b * d;
                    for (size_t j = 0; j < d; j++) s[j] = Dv * t[j];
                }
            }
        }
    }
}

/* ---- Jacobian stream backward at layer l: q_l and the stream part of dW_l ----
 * On entry U_l is implicit (top layer: U = c S_H = c D T) or held in S[l]. On exit q holds
 * q_l [B x n] and, for l >= 1, U_{l-1} = W_l^T V_l + c S_{l-1} is in S[l-1]. */
static void stream_backward_layer(cz_workspace *ws, const cz_real *params, cz_real *grad,
                                  int l, cz_real c, size_t B, int want_gin)
{
    const cz_model *m = &ws->m;
    int H = m->n_hidden;
    const cz_layer *L = &m->layer[l];
    size_t n = L->n_out, d = m->spec.d, Bd = B * d;
    const cz_real *D = ws->D[l];
    int top = l == H - 1;
    /* V_l lands where U_l was: in T[l] on top (U is implicit there), else in S[l] */
    cz_real *V = top ? (l >= 1 ? ws->T[l] : NULL) : ws->S[l];
    cz_real *dW0 = l == 0 ? grad + L->w : NULL;
    for (size_t i = 0; i < n; i++) {
        const cz_real *w0 = params + L->w + i * d;
        cz_real w0sq = (l == 0 && top) ? dot8(w0, w0, d) : 0;
        cz_real vsum_top = 0; /* top layer 0: sum_b c D^2, applied to W_0's row once */
        for (size_t b = 0; b < B; b++) {
            cz_real Dv = D[b * n + i];
            const cz_real *t = l == 0 ? w0 : ws->T[l] + i * Bd + b * d;
            cz_real *v = V ? V + i * Bd + b * d : NULL;
            cz_real qv;
            if (want_gin) { /* input grad: sum_i gH[b,i] D t_i, before t is overwritten */
                cz_real gd = ws->gH[b * n + i] * Dv;
                cz_real *gi = ws->gin + b * d;
                for (size_t j = 0; j < d; j++) gi[j] += gd * t[j];
            }
            if (top) {
                /* U = c D t: q = c D |t|^2, V = c D^2 t */
                cz_real cd = c * Dv;
                qv = cd * (l == 0 ? w0sq : dot8(t, t, d));
                if (l == 0) {
                    vsum_top += cd * Dv;
                } else {
                    cz_real s = cd * Dv;
                    for (size_t j = 0; j < d; j++) v[j] = s * t[j];
                }
            } else {
                qv = dot8(v, t, d);
                for (size_t j = 0; j < d; j++) v[j] *= Dv;
                if (l == 0) { /* dW_0 += sum_b V_0 */
                    cz_real *dw = dW0 + i * d;
                    for (size_t j = 0; j < d; j++) dw[j] += v[j];
                }
            }
            ws->q[b * n + i] = qv;
        }
        if (l == 0 && top) {
            cz_real *dw = dW0 + i * d;
            for (size_t j = 0; j < d; j++) dw[j] += vsum_top * w0[j];
        }
    }
    if (l >= 1) {
        size_t n_in = L->n_in;
        /* dW_l += V_l S_{l-1}^T: [n x Bd] x [Bd x n_in] */
        cz_gemm(0, 1, n, n_in, Bd, 1, V, Bd, ws->S[l - 1], Bd, 1, grad + L->w, n_in);
        /* U_{l-1} = W_l^T V_l + c S_{l-1}, in place over S_{l-1} */
        cz_gemm(1, 0, n_in, Bd, n, 1, params + L->w, n_in, V, Bd, c, ws->S[l - 1], Bd);
    }
}

/* input gradient from the stream when its backward does not run (lambda == 0) */
static void stream_input_grad(cz_workspace *ws, const cz_real *params, size_t B)
{
    const cz_model *m = &ws->m;
    int l = m->n_hidden - 1;
    const cz_layer *L = &m->layer[l];
    size_t n = L->n_out, d = m->spec.d, Bd = B * d;
    for (size_t i = 0; i < n; i++)
        for (size_t b = 0; b < B; b++) {
            const cz_real *t = l == 0 ? params + L->w + i * d : ws->T[l] + i * Bd + b * d;
            cz_real gd = ws->gH[b * n + i] * ws->D[l][b * n + i];
            cz_real *gi = ws->gin + b * d;
            for (size_t j = 0; j < d; j++) gi[j] += gd * t[j];
        }
}

static void column_sums(cz_real *out, const cz_real *a, size_t B, size_t n)
{
    for (size_t b = 0; b < B; b++)
        for (size_t i = 0; i < n; i++) out[i] += a[b * n + i];
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

    value_forward(ws, params, x, keys, B);
    if (run_stream) {
        stream_forward(ws, params, B);
        for (int l = 0; l < H; l++)
            for (size_t b = 0; b < B; b++) sums->dreg += ws->sq[l][b];
    }
    ws->stream_ran = ws->stream_fwd = run_stream;
    ws->have_grad = grad != NULL;
    ws->have_gin = grad && run_stream;
    cz_loss_eval(grad ? ws->e : NULL, NULL, NULL, &sums->task, m, ws->z[H], y_class, y_value, B);
    if (!grad) return 0;

    memset(grad, 0, m->n_params * sizeof *grad);
    const cz_layer *O = &m->layer[H];
    size_t nH = O->n_in;
    /* output layer: dW_o += e^T h_H, db_o += sum e, g_H = e W_o */
    cz_gemm(1, 0, O->n_out, nH, B, 1, ws->e, O->n_out, ws->h[H - 1], nH, 1, grad + O->w, nH);
    column_sums(grad + O->b, ws->e, B, O->n_out);
    cz_gemm(0, 0, B, nH, O->n_out, 1, ws->e, O->n_out, params + O->w, nH, 0, ws->gH, nH);

    if (run_stream) {
        memset(ws->gin, 0, B * d * sizeof *ws->gin);
        if (!stream_bwd) stream_input_grad(ws, params, B);
    }
    cz_real c = (cz_real)(2.0 * opts->lambda);
    const cz_real *g = ws->gH;
    for (int l = H - 1; l >= 0; l--) {
        const cz_layer *L = &m->layer[l];
        size_t n = L->n_out, n_in = L->n_in;
        if (stream_bwd) stream_backward_layer(ws, params, grad, l, c, B, l == H - 1);
        const cz_real *poly = L->poly == CZ_NONE ? NULL : params + L->poly;
        cz_act_eval(NULL, NULL, ws->d2phi, L->act, poly, ws->z[l], B, n);
        cz_real *dz = ws->dz[l];
        cz_real *dpoly = L->poly == CZ_NONE ? NULL : grad + L->poly;
        for (size_t b = 0; b < B; b++)
            for (size_t i = 0; i < n; i++) {
                size_t k = b * n + i;
                cz_real gk = g[k], qk = stream_bwd ? ws->q[k] : 0;
                if (ws->dropout_on) {
                    gk *= ws->mask[l][k];
                    qk *= ws->mask[l][k];
                }
                dz[k] = gk * ws->dphi[l][k] + qk * ws->d2phi[k];
                if (dpoly) {
                    cz_real zk = ws->z[l][k], *da = dpoly + 4 * i;
                    da[0] += gk;
                    da[1] += gk * zk + qk;
                    da[2] += zk * (gk * zk + 2 * qk);
                    da[3] += zk * zk * (gk * zk + 3 * qk);
                }
            }
        const cz_real *h_in = l == 0 ? x : ws->h[l - 1];
        cz_gemm(1, 0, n, n_in, B, 1, dz, n, h_in, n_in, 1, grad + L->w, n_in);
        column_sums(grad + L->b, dz, B, n);
        if (l > 0) {
            cz_real *gn = ws->g[l & 1];
            cz_gemm(0, 0, B, n_in, n, 1, dz, n, params + L->w, n_in, 0, gn, n_in);
            g = gn;
        }
    }
    if (stream_bwd) ws->stream_fwd = 0; /* S and T now hold U and V */
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
    if (l < 1 || l > m->n_hidden || b >= ws->B)
        return cz_error_set(err, CZ_EINVAL, "engine: no Jacobian for layer %d sample %zu", l, b);
    if (!ws->stream_fwd)
        return cz_error_set(err, CZ_EINVAL,
                            "engine: no forward stream from the last step (it did not run the "
                            "stream, or a DREG backward overwrote it)");
    int i0 = l - 1;
    size_t n = m->layer[i0].n_out, d = m->spec.d, Bd = ws->B * d;
    for (size_t i = 0; i < n; i++) {
        cz_real *o = out + i * d;
        if (i0 + 1 < m->n_hidden) {
            memcpy(o, ws->S[i0] + i * Bd + b * d, d * sizeof *o);
        } else { /* the top layer's S is never stored: D T, with T_0 = W_0 */
            cz_real Dv = ws->D[i0][b * n + i];
            const cz_real *t = i0 == 0 ? params + m->layer[0].w + i * d : ws->T[i0] + i * Bd + b * d;
            for (size_t j = 0; j < d; j++) o[j] = Dv * t[j];
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

static double row_sq(const cz_real *a, size_t n)
{
    double s = 0;
    for (size_t j = 0; j < n; j++) s += (double)a[j] * (double)a[j];
    return s;
}

int cz_engine_sample_norms(cz_workspace *ws, const cz_real *params, double *input_grad,
                           double *sample_grad, cz_error *err)
{
    const cz_model *m = &ws->m;
    size_t B = ws->B, d = m->spec.d;
    int H = m->n_hidden;
    if (!ws->have_grad) return cz_error_set(err, CZ_EINVAL, "engine: sample norms need a step with grad");
    if (input_grad) {
        if (!ws->have_gin) return cz_error_set(err, CZ_EINVAL, "engine: input gradient norms need the stream");
        for (size_t b = 0; b < B; b++) input_grad[b] = sqrt(row_sq(ws->gin + b * d, d));
    }
    if (!sample_grad) return 0;
    const cz_layer *O = &m->layer[H];
    for (size_t b = 0; b < B; b++)
        sample_grad[b] = row_sq(ws->e + b * O->n_out, O->n_out) * (row_sq(ws->h[H - 1] + b * O->n_in, O->n_in) + 1);
    const cz_real *g = ws->gH; /* dtask/dh_H: the value backward's, before any DREG term */
    for (int l = H - 1; l >= 0; l--) {
        const cz_layer *L = &m->layer[l];
        size_t n = L->n_out, n_in = L->n_in;
        const cz_real *a = l == 0 ? ws->x : ws->h[l - 1];
        cz_real *dzt = ws->d2phi; /* scratch: the task-only dz_l */
        for (size_t b = 0; b < B; b++) {
            double sq = 0, poly = 0;
            for (size_t i = 0; i < n; i++) {
                size_t k = b * n + i;
                dzt[k] = g[k] * ws->D[l][k];
                sq += (double)dzt[k] * (double)dzt[k];
                if (L->poly != CZ_NONE) { /* d/da_j = g' z^j, g' = g * mask */
                    double gm = ws->dropout_on ? (double)g[k] * ws->mask[l][k] : (double)g[k];
                    double z2 = (double)ws->z[l][k] * (double)ws->z[l][k];
                    poly += gm * gm * (1 + z2 * (1 + z2 * (1 + z2)));
                }
            }
            sample_grad[b] += sq * (row_sq(a + b * n_in, n_in) + 1) + poly;
        }
        if (l > 0) {
            cz_real *gn = ws->g[l & 1];
            cz_gemm(0, 0, B, n_in, n, 1, dzt, n, params + L->w, n_in, 0, gn, n_in);
            g = gn;
        }
    }
    for (size_t b = 0; b < B; b++) sample_grad[b] = sqrt(sample_grad[b]);
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

