/* The Jacobian stream (docs/DESIGN.md section 1): its seed, forward and backward, per layer.
 *
 * Three seeds, one code path. The stream carries k columns per sample; only the seed
 * T_0 and the last step of dW_0 differ:
 *   exact  k = d    T_0 = W_0, shared by the batch; dW_0 += sum_b V_0.
 *   Gram   k = n_0  W_0^T = Q R (LAPACK), T_0 = F = R^T shared; dW_0 += (sum_b V_0) Q^T.
 *                   Every norm, q_l and dW_l (l >= 1) equals exact mode's: S'_l = S_l Q.
 *   probe  k = K    T_0 = W_0 P_b with P_b [d x K] Rademacher / sqrt(K), drawn from the
 *                   sample's key; dW_0 += sum_b V_0 P_b^T. E ||S_l P_b||^2 = ||S_l||^2. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "gemm.h"
#include "par.h"


/* 0: rows of 8 take the general loops (the engine_row8_bits test builds the engine so and
 * compares every output byte with this build's) */
#ifndef CZ_STREAM_ROW8
#define CZ_STREAM_ROW8 1
#endif

/* a counter domain of the per-sample key that dropout (layer << 40 | neuron) never uses */
#define PROBE_DOMAIN (1ULL << 62)

const char *cz_stream_mode_name(cz_stream_mode mode)
{
    switch (mode) {
    case CZ_STREAM_NONE: return "none";
    case CZ_STREAM_EXACT: return "exact";
    case CZ_STREAM_GRAM: return "gram";
    case CZ_STREAM_PROBE: return "probe";
    case CZ_STREAM_AUTO: return "auto";
    }
    return "?";
}

int cz_stream_mode_parse(const char *s, cz_stream_mode *out)
{
    for (int m = CZ_STREAM_EXACT; m <= CZ_STREAM_AUTO; m++)
        if (!strcmp(s, cz_stream_mode_name((cz_stream_mode)m))) {
            *out = (cz_stream_mode)m;
            return 0;
        }
    return CZ_EINVAL;
}

size_t cz_stream_width(const cz_model *m, const cz_stream_spec *ss)
{
    switch (ss->mode) {
    case CZ_STREAM_EXACT: return m->spec.d;
    case CZ_STREAM_GRAM: return m->layer[0].n_out;
    case CZ_STREAM_PROBE: return ss->probes > 0 ? (size_t)ss->probes : 0;
    default: return 0;
    }
}

int cz_stream_check(const cz_model *m, const cz_stream_spec *ss, cz_error *err)
{
    size_t d = m->spec.d, n0 = m->layer[0].n_out;
    if (ss->mode == CZ_STREAM_AUTO)
        return cz_error_set(err, CZ_EINVAL, "engine: resolve --dreg-mode auto before making a workspace");
    if (ss->mode == CZ_STREAM_GRAM && n0 > d)
        return cz_error_set(err, CZ_EINVAL,
                            "--dreg-mode gram needs the first hidden layer (%zu) no wider than the input "
                            "(d = %zu): its stream would be wider than exact mode's; use exact or probe",
                            n0, d);
    if (ss->mode == CZ_STREAM_PROBE && (ss->probes < 1 || ss->probes > 4096))
        return cz_error_set(err, CZ_EINVAL, "--dreg-probes must be in [1, 4096], got %d", ss->probes);
    return 0;
}

/* Auto: the exact stream (Gram when the first layer is narrower than the input: the same
 * numbers) while its width is at most CZ_STREAM_AUTO_WIDTH per sample, i.e. while it costs at
 * most that many value passes; beyond it, probes, whose stream is at least 16x narrower. */
void cz_stream_auto(const cz_model *m, int probes, cz_stream_spec *out, char *why, size_t len)
{
    size_t d = m->spec.d, n0 = m->layer[0].n_out;
    size_t w = n0 < d ? n0 : d;
    out->probes = probes;
    if (w <= CZ_STREAM_AUTO_WIDTH) {
        out->mode = n0 < d ? CZ_STREAM_GRAM : CZ_STREAM_EXACT;
        snprintf(why, len, "%s: exact Jacobians at stream width %zu (%s; at most %d)",
                 cz_stream_mode_name(out->mode), w,
                 n0 < d ? "the first layer's width, below the input's" : "the input's width",
                 CZ_STREAM_AUTO_WIDTH);
    } else {
        out->mode = CZ_STREAM_PROBE;
        snprintf(why, len, "probe: the exact stream would be %zu wide per sample (above %d); %d random "
                 "directions estimate the penalty without bias (--dreg-mode %s keeps it exact)",
                 w, CZ_STREAM_AUTO_WIDTH, probes, n0 < d ? "gram" : "exact");
    }
}

void cz_stream_carve(cz_workspace *ws, char *base, size_t *off)
{
    const cz_model *m = &ws->m;
    size_t B = ws->max_B, k = ws->k, d = m->spec.d, H = (size_t)m->n_hidden;
    size_t n0 = m->layer[0].n_out;
    int probe = ws->ss.mode == CZ_STREAM_PROBE, gram = ws->ss.mode == CZ_STREAM_GRAM;
#define TAKE(ptr, type, count)                                           \
    do {                                                                 \
        if (base) (ptr) = (type *)(void *)(base + *off);                 \
        *off += (((count) * sizeof(type)) + 63) & ~(size_t)63;           \
    } while (0)
    if (!k) return;
    for (size_t l = 0; l < H; l++) {
        size_t n = m->layer[l].n_out;
        if (l + 1 < H) TAKE(ws->S[l], cz_real, n * B * k);
        if (l >= 1 || probe) TAKE(ws->T[l], cz_real, n * B * k);
    }
    /* exact: the input gradient S_o^T e (a step's stream_input_grad); Gram keeps its slot
     * (cz_engine_input_norm_stream no longer needs it) so the workspace's layout stays put */
    if (ws->ss.mode == CZ_STREAM_EXACT || gram) TAKE(ws->gin, cz_real, B * k);
    if (gram) {
        ws->lwork = (int)(n0 * 64);
        TAKE(ws->qr, cz_real, n0 * d);
        TAKE(ws->w0copy, cz_real, n0 * d);
        TAKE(ws->F, cz_real, n0 * n0);
        TAKE(ws->dseed, cz_real, n0 * n0);
        TAKE(ws->lapack_tau, cz_real, n0);
        TAKE(ws->lapack_work, cz_real, (size_t)ws->lwork);
    }
    if (probe) TAKE(ws->P, cz_real, B * k * d);
#undef TAKE
}

static inline const cz_real *stream_t(const cz_workspace *ws, int l, size_t i, size_t b)
{
    size_t k = ws->k;
    if (l == 0 && ws->seed) return ws->seed + i * k;
    return ws->T[l] + i * ws->B * k + b * k;
}

const cz_real *cz_stream_t(const cz_workspace *ws, int l, size_t i, size_t b) { return stream_t(ws, l, i, b); }

/* W_0^T [d x n_0] column-major is W_0 [n_0 x d] row-major as it is stored: factor in place,
 * take F = R^T, then form Q, whose column-major d x n_0 is Q^T row-major. LAPACK calls BLAS,
 * which in this process is BLIS: one thread there keeps the bits thread-count free. */
int cz_qr_of_w1(const cz_real *W0, size_t n0, size_t d, cz_real *w0copy, cz_real *qr, cz_real *F, cz_real *tau,
                cz_real *work, int lwork, int form_q, int *valid, cz_error *err)
{
    if (*valid && !memcmp(w0copy, W0, n0 * d * sizeof *W0)) return 0;
    memcpy(w0copy, W0, n0 * d * sizeof *W0);
    memcpy(qr, W0, n0 * d * sizeof *W0); /* W_1 row-major = W_1^T column-major, d x n_1 */
    int M = (int)d, N = (int)n0, info = 0;
    dim_t threads = bli_thread_get_num_threads();
    bli_thread_set_num_threads(1);
    GEQRF(&M, &N, qr, &M, tau, work, &lwork, &info);
    if (!info)
        for (size_t i = 0; i < n0; i++)
            for (size_t j = 0; j < n0; j++) F[i * n0 + j] = j <= i ? qr[i * d + j] : 0;
    if (!info && form_q) ORGQR(&M, &N, &N, qr, &M, tau, work, &lwork, &info);
    bli_thread_set_num_threads(threads);
    *valid = !info;
    if (info) return cz_error_set(err, CZ_ERUNTIME, "engine: QR of W_1 failed (LAPACK info %d)", info);
    return 0;
}

static int gram_factor(cz_workspace *ws, const cz_real *W0, cz_error *err)
{
    return cz_qr_of_w1(W0, ws->m.layer[0].n_out, ws->m.spec.d, ws->w0copy, ws->qr, ws->F, ws->lapack_tau,
                       ws->lapack_work, ws->lwork, 1, &ws->qr_valid, err);
}

static void probe_draw(cz_workspace *ws, const uint64_t *keys, size_t B)
{
    size_t K = ws->k, d = ws->m.spec.d;
    cz_real v = (cz_real)(1.0 / sqrt((double)K));
    int T = cz_par_threads(B * K * d);
    CZ_PAR_FOR(
    for (size_t b = 0; b < B; b++) {
        cz_real *p = ws->P + b * K * d;
        uint64_t bits = 0;
        for (size_t t = 0; t < K * d; t++) {
            if (t % 64 == 0) bits = cz_hash64(keys[b], PROBE_DOMAIN | (t / 64));
            p[t] = (bits >> (t % 64)) & 1 ? v : -v;
        }
    });
}

int cz_stream_seed(cz_workspace *ws, const cz_real *params, const uint64_t *keys, size_t B, cz_error *err)
{
    const cz_layer *L = &ws->m.layer[0];
    const cz_real *W0 = params + L->w;
    switch (ws->ss.mode) {
    case CZ_STREAM_EXACT:
        ws->seed = W0;
        return 0;
    case CZ_STREAM_GRAM: {
        int rc = gram_factor(ws, W0, err);
        ws->seed = ws->F;
        return rc;
    }
    case CZ_STREAM_PROBE: {
        if (!keys) return cz_error_set(err, CZ_EINVAL, "engine: probe mode needs per-sample keys");
        size_t Bk = B * ws->k, d = ws->m.spec.d;
        probe_draw(ws, keys, B);
        ws->seed = NULL;
        /* T_0 [n_0 x B*K] = W_0 [n_0 x d] P^T */
        cz_gemm(0, 1, L->n_out, Bk, d, 1, W0, d, ws->P, d, 0, ws->T[0], Bk);
        return 0;
    }
    default:
        return cz_error_set(err, CZ_EINVAL, "engine: this workspace has no Jacobian stream");
    }
}

/* s = D t: S_l's row and the T_l (or seed) row it scales never overlap */
static inline void scale_copy(cz_real *restrict s, const cz_real *restrict t, cz_real Dv, size_t k)
{
    for (size_t j = 0; j < k; j++) s[j] = Dv * t[j];
}

/* Neuron i of layer l forward: its terms D^2 |t|^2 (term [n x B], neuron-major) and
 * (S != NULL) its row of S_l; the same operations in the same order for any k. */
static inline void forward_row(cz_workspace *ws, int l, size_t i, size_t B, size_t n, size_t k, int shared,
                               const cz_real *D, cz_real *term, cz_real *S, cz_real c, int fuse)
{
    size_t Bk = B * k;
    cz_real seedsq = shared ? cz_dot8(ws->seed + i * k, ws->seed + i * k, k) : 0;
    for (size_t b = 0; b < B; b++) {
        cz_real Dv = D[b * n + i];
        const cz_real *t = stream_t(ws, l, i, b);
        cz_real tsq = shared ? seedsq : cz_dot8(t, t, k);
        term[i * B + b] = Dv * Dv * tsq;
        if (S) scale_copy(S + i * Bk + b * k, t, Dv, k);
        if (fuse) { /* the top layer's backward step while t is in cache (see backward_row) */
            cz_real *v = ws->T[l] + i * Bk + b * k, cd = c * Dv;
            ws->q[b * n + i] = cd * tsq;
            cz_real s = cd * Dv;
            for (size_t j = 0; j < k; j++) v[j] = s * v[j];
        }
    }
}

/* forward_row for k = 8 on whole-row vectors (engine_internal.h): the same bits */
static inline void forward_row8(cz_workspace *ws, int l, size_t i, size_t B, size_t n, int shared,
                                const cz_real *D, cz_real *term, cz_real *S, cz_real c, int fuse)
{
    size_t Bk = B * 8;
    cz_v8 seed = {0}, t, r;
    if (shared) cz_v8_load(&seed, ws->seed + i * 8);
    cz_real seedsq = shared ? cz_v8_dot(&seed, &seed) : 0;
    for (size_t b = 0; b < B; b++) {
        cz_real Dv = D[b * n + i];
        cz_real *tp = shared ? NULL : ws->T[l] + i * Bk + b * 8;
        if (shared) t = seed;
        else cz_v8_load(&t, tp);
        cz_real tsq = shared ? seedsq : cz_v8_dot(&t, &t);
        term[i * B + b] = Dv * Dv * tsq;
        if (S) {
            r = Dv * t;
            cz_v8_store(S + i * Bk + b * 8, &r);
        }
        if (fuse) { /* fuse implies !shared: V lands over t */
            cz_real cd = c * Dv;
            ws->q[b * n + i] = cd * tsq;
            r = (cd * Dv) * t;
            cz_v8_store(tp, &r);
        }
    }
}

/* the AVX2 copy runs the rows of 8 as one vector each (engine_internal.h) */
CZ_AVX2_CLONE void cz_stream_forward(cz_workspace *ws, const cz_real *params, size_t B, cz_real c, int fuse_top)
{
    const cz_model *m = &ws->m;
    int H = m->n_hidden;
    size_t k = ws->k, Bk = B * k;
    for (int l = 0; l < H; l++) {
        const cz_layer *L = &m->layer[l];
        size_t n = L->n_out;
        const cz_real *D = ws->D[l];
        double *sq = ws->sq[l];
        int shared = l == 0 && ws->seed;
        if (l >= 1) /* T_l = W_l S_{l-1}: [n x n_in] x [n_in x Bk] */
            cz_gemm(0, 0, n, Bk, L->n_in, 1, params + L->w, L->n_in, ws->S[l - 1], Bk, 0, ws->T[l], Bk);
        cz_real *S = l + 1 < H ? ws->S[l] : NULL;
        /* term [n x B]: neuron i's share D^2 |t|^2 of ||S_{l,b}||^2. ws->d2phi is free until
         * the value backward fills it (ws->q may receive the fused top layer's q). */
        cz_real *term = ws->d2phi;
        int fuse = fuse_top && l == H - 1 && !shared;
        /* split by neuron: S_l's rows and the terms */
        int T = cz_par_threads(n * Bk);
        CZ_PAR_FOR(
        for (size_t i = 0; i < n; i++) {
            if (CZ_STREAM_ROW8 && k == 8) forward_row8(ws, l, i, B, n, shared, D, term, S, c, fuse);
            else forward_row(ws, l, i, B, n, k, shared, D, term, S, c, fuse);
        });
        /* split by sample: each ||S_{l,b}||^2 sums its terms in the order of i, as one thread
         * always did, so the sum is the same on any thread count; i outer over a range of
         * samples, so the sums of neighbouring samples run side by side (vectorized) */
        T = cz_par_threads(B * n);
        CZ_PAR_FOR(
        for (int part = 0; part < T; part++) {
            size_t b0 = B * (size_t)part / (size_t)T, b1 = B * (size_t)(part + 1) / (size_t)T;
            for (size_t b = b0; b < b1; b++) sq[b] = 0;
            for (size_t i = 0; i < n; i++)
                for (size_t b = b0; b < b1; b++) sq[b] += (double)term[i * B + b];
        });
    }
    ws->top_fused = fuse_top && !(H == 1 && ws->seed);
}

/* Below the top: q = <u, t>, then v = D u in place and (shared seed) dseed += v. The rows
 * never overlap (restrict lets the compiler vectorize them). */
static inline cz_real scale_row(cz_real *restrict v, const cz_real *restrict t, cz_real *restrict dw,
                                cz_real Dv, size_t k)
{
    cz_real qv = cz_dot8(v, t, k);
    for (size_t j = 0; j < k; j++) v[j] *= Dv;
    if (dw) /* dseed += sum_b V_0 */
        for (size_t j = 0; j < k; j++) dw[j] += v[j];
    return qv;
}

/* Neuron i of layer l backward: q[., i], row i of V and of dseed (k constant for k = 8, as
 * in forward_row) */
static inline void backward_row(cz_workspace *ws, int l, size_t i, size_t B, size_t n, size_t k, cz_real c,
                                int top, int shared, cz_real *V, cz_real *dseed)
{
    size_t Bk = B * k;
    const cz_real *D = ws->D[l];
    const cz_real *srow = shared ? ws->seed + i * k : NULL;
    cz_real seedsq = shared && top ? cz_dot8(srow, srow, k) : 0;
    cz_real vsum_top = 0; /* top layer 0, shared seed: sum_b c D^2, applied to the row once */
    for (size_t b = 0; b < B; b++) {
        cz_real Dv = D[b * n + i];
        const cz_real *t = stream_t(ws, l, i, b);
        cz_real *v = V ? V + i * Bk + b * k : NULL;
        cz_real qv;
        if (top) {
            /* U = c D t: q = c D |t|^2, V = c D^2 t (v may be t itself: elementwise) */
            cz_real cd = c * Dv;
            qv = cd * (shared ? seedsq : cz_dot8(t, t, k));
            if (shared) {
                vsum_top += cd * Dv;
            } else { /* v is t here: T[l] holds V on top */
                cz_real s = cd * Dv;
                for (size_t j = 0; j < k; j++) v[j] = s * v[j];
            }
        } else {
            qv = scale_row(v, t, shared ? dseed + i * k : NULL, Dv, k);
        }
        ws->q[b * n + i] = qv;
    }
    if (shared && top) {
        cz_real *dw = dseed + i * k;
        for (size_t j = 0; j < k; j++) dw[j] += vsum_top * srow[j];
    }
}

/* backward_row for k = 8 on whole-row vectors: the same bits. With a shared seed on layer 0
 * below the top, V_0 = D U_0 is only summed into dseed (nothing reads S[0] after the
 * backward pass), so it is not stored back. */
static inline void backward_row8(cz_workspace *ws, int l, size_t i, size_t B, size_t n, cz_real c, int top,
                                 int shared, cz_real *V, cz_real *dseed)
{
    size_t Bk = B * 8;
    const cz_real *D = ws->D[l];
    cz_v8 t, u, dw;
    if (shared) {
        cz_v8_load(&t, ws->seed + i * 8);
        cz_v8_load(&dw, dseed + i * 8);
        if (top) {
            cz_real seedsq = cz_v8_dot(&t, &t), vsum_top = 0;
            for (size_t b = 0; b < B; b++) {
                cz_real Dv = D[b * n + i], cd = c * Dv;
                ws->q[b * n + i] = cd * seedsq;
                vsum_top += cd * Dv;
            }
            dw = dw + vsum_top * t;
        } else {
            for (size_t b = 0; b < B; b++) {
                cz_v8_load(&u, V + i * Bk + b * 8);
                ws->q[b * n + i] = cz_v8_dot(&u, &t);
                dw = dw + u * D[b * n + i];
            }
        }
        cz_v8_store(dseed + i * 8, &dw);
        return;
    }
    for (size_t b = 0; b < B; b++) {
        cz_real Dv = D[b * n + i];
        cz_real *tp = ws->T[l] + i * Bk + b * 8;
        cz_v8_load(&t, tp);
        if (top) { /* V = c D^2 t over t */
            cz_real cd = c * Dv;
            ws->q[b * n + i] = cd * cz_v8_dot(&t, &t);
            u = (cd * Dv) * t;
            cz_v8_store(tp, &u);
        } else {
            cz_real *vp = V + i * Bk + b * 8;
            cz_v8_load(&u, vp);
            ws->q[b * n + i] = cz_v8_dot(&u, &t);
            u = u * Dv;
            cz_v8_store(vp, &u);
        }
    }
}

/* On entry U_l is implicit (top layer: U = c S_H = c D T) or held in S[l]. On exit q holds
 * q_l [B x n] and, for l >= 1, U_{l-1} = W_l^T V_l + c S_{l-1} is in S[l-1]. */
CZ_AVX2_CLONE void cz_stream_backward_layer(cz_workspace *ws, const cz_real *params, cz_real *grad, int l,
                                            cz_real c, size_t B, int want_gin)
{
    const cz_model *m = &ws->m;
    int H = m->n_hidden;
    const cz_layer *L = &m->layer[l];
    size_t n = L->n_out, k = ws->k, Bk = B * k;
    int top = l == H - 1, shared = l == 0 && ws->seed;
    /* V_l lands where U_l was: in T[l] on top (U is implicit there), else in S[l]; with a
     * shared seed on layer 0 only its batch sum is kept, in the seed's gradient */
    cz_real *V = top ? ws->T[l] : ws->S[l];
    cz_real *dseed = NULL;
    if (shared) {
        dseed = ws->ss.mode == CZ_STREAM_GRAM ? ws->dseed : grad + L->w;
        if (dseed == ws->dseed) memset(dseed, 0, n * k * sizeof *dseed);
        if (top) V = NULL;
    }
    /* the input gradient sums over neurons: its own pass, split by sample, before V
     * overwrites t (the same terms in the same order as on one thread) */
    if (want_gin) cz_stream_input_grad(ws, B);
    /* everything else belongs to neuron i (row i of V, q[., i], row i of dseed); the
     * forward pass may have done it already for the top layer */
    if (!(top && ws->top_fused)) {
        int T = cz_par_threads(n * Bk);
        CZ_PAR_FOR(
        for (size_t i = 0; i < n; i++) {
            if (CZ_STREAM_ROW8 && k == 8) backward_row8(ws, l, i, B, n, c, top, shared, V, dseed);
            else backward_row(ws, l, i, B, n, k, c, top, shared, V, dseed);
        });
    }
    if (l >= 1) {
        size_t n_in = L->n_in;
        /* dW_l += V_l S_{l-1}^T: [n x Bk] x [Bk x n_in] */
        cz_gemm(0, 1, n, n_in, Bk, 1, V, Bk, ws->S[l - 1], Bk, 1, grad + L->w, n_in);
        /* U_{l-1} = W_l^T V_l + c S_{l-1}, in place over S_{l-1} */
        cz_gemm(1, 0, n_in, Bk, n, 1, params + L->w, n_in, V, Bk, c, ws->S[l - 1], Bk);
    }
}

void cz_stream_backward_seed(cz_workspace *ws, cz_real *grad, size_t B)
{
    const cz_model *m = &ws->m;
    const cz_layer *L = &m->layer[0];
    size_t n0 = L->n_out, d = m->spec.d, k = ws->k, Bk = B * k;
    if (ws->ss.mode == CZ_STREAM_GRAM) /* dW_0 += dF [n_0 x k] Q^T [k x d] */
        cz_gemm(0, 0, n0, d, k, 1, ws->dseed, k, ws->qr, d, 1, grad + L->w, d);
    else if (ws->ss.mode == CZ_STREAM_PROBE) /* dW_0 += V_0 [n_0 x Bk] P [Bk x d] */
        cz_gemm(0, 0, n0, d, Bk, 1, m->n_hidden == 1 ? ws->T[0] : ws->S[0], Bk, ws->P, d, 1, grad + L->w, d);
}

void cz_stream_input_grad(cz_workspace *ws, size_t B)
{
    const cz_model *m = &ws->m;
    int l = m->n_hidden - 1;
    size_t n = m->layer[l].n_out, k = ws->k;
    /* split by sample; each gin row sums over i in order (par.h) */
    int T = cz_par_threads(n * B * k);
    CZ_PAR_FOR(
    for (size_t b = 0; b < B; b++)
        for (size_t i = 0; i < n; i++) {
            const cz_real *t = stream_t(ws, l, i, b);
            cz_real gd = ws->gH[b * n + i] * ws->D[l][b * n + i];
            cz_real *gi = ws->gin + b * k;
            for (size_t j = 0; j < k; j++) gi[j] += gd * t[j];
        });
}
