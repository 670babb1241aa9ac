/* Exact layer-Jacobian norms of one sample over its active units (jacnorm.h). */
#include "chainz/jacnorm.h"

#include <stdint.h>
#include <stdlib.h>

#include "engine_internal.h"
#include "gemm.h"
#include "par.h"

struct cz_jacnorm {
    cz_real *P[2];   /* n_max x d: P_{l-1} and P_l, rows of the active units */
    cz_real *Wg;     /* n_max x n_max: W_l[A_l, A_{l-1}] */
    cz_real *term;   /* n_max: D_i^2 |t_i|^2 */
    size_t *act[2];  /* A_{l-1}, A_l */
    size_t n, d;     /* the model's widest layer and d: what the buffers hold */
};

static size_t widest(const cz_model *m)
{
    size_t n = 0;
    for (int l = 0; l < m->n_hidden; l++)
        if (m->layer[l].n_out > n) n = m->layer[l].n_out;
    return n;
}

/* 0 when the sizes overflow */
size_t cz_jacnorm_bytes(const cz_model *m)
{
    size_t n = widest(m), d = m->spec.d, r = sizeof(cz_real);
    if (n > SIZE_MAX / 8 / r / (d > n ? d : n)) return 0;
    return sizeof(struct cz_jacnorm) + r * (2 * n * d + n * n + n) + 2 * n * sizeof(size_t);
}

cz_jacnorm *cz_jacnorm_new(const cz_model *m, cz_error *err)
{
    size_t n = widest(m), d = m->spec.d;
    if (!cz_jacnorm_bytes(m)) {
        cz_error_set(err, CZ_ENOMEM, "the layer-Jacobian norms' scratch (%zu x %zu) is too large", n, d);
        return NULL;
    }
    cz_jacnorm *s = calloc(1, sizeof *s);
    if (s) {
        s->P[0] = malloc(n * d * sizeof(cz_real));
        s->P[1] = malloc(n * d * sizeof(cz_real));
        s->Wg = malloc(n * n * sizeof(cz_real));
        s->term = malloc(n * sizeof(cz_real));
        s->act[0] = malloc(n * sizeof(size_t));
        s->act[1] = malloc(n * sizeof(size_t));
    }
    if (!s || !s->P[0] || !s->P[1] || !s->Wg || !s->term || !s->act[0] || !s->act[1]) {
        cz_jacnorm_free(s);
        cz_error_set(err, CZ_ENOMEM, "out of memory for the layer-Jacobian norms (%zu MB)",
                     cz_jacnorm_bytes(m) >> 20);
        return NULL;
    }
    s->n = n;
    s->d = d;
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
    free(s);
}

double cz_jacnorm_flops(const cz_model *m)
{
    double d = (double)m->spec.d, f = 3.0 * d * (double)m->layer[0].n_out; /* P_1 and its norm */
    for (int l = 1; l < m->n_hidden; l++)
        f += (2.0 * (double)m->layer[l].n_in + 3.0) * d * (double)m->layer[l].n_out;
    return f;
}

int cz_jacnorm_sample(cz_jacnorm *s, const cz_workspace *ws, const cz_real *params, size_t b, double *sq,
                      cz_error *err)
{
    const cz_model *m = &ws->m;
    size_t d = m->spec.d, na = 0;
    if (!ws->have_fwd || b >= ws->B)
        return cz_error_set(err, CZ_EINVAL, "engine: no sample %zu in the last step for its Jacobian norms", b);
    if (widest(m) > s->n || d != s->d) /* the buffers would overflow */
        return cz_error_set(err, CZ_EINVAL, "engine: the Jacobian norms' scratch was made for another model "
                            "(widest layer %zu, d = %zu; this one %zu, %zu)", s->n, s->d, widest(m), d);
    cz_real *P = s->P[0], *Q = s->P[1], *term = s->term;
    size_t *prev = s->act[0], *cur = s->act[1];
    for (int l = 0; l < m->n_hidden; l++) {
        const cz_layer *L = &m->layer[l];
        const cz_real *W = params + L->w, *D = ws->D[l] + b * L->n_out;
        size_t nc = 0, nin = L->n_in;
        for (size_t i = 0; i < L->n_out; i++)
            if (D[i] != 0) cur[nc++] = i;
        if (l > 0 && nc && na) { /* t = W_l[A_l, A_{l-1}] P_{l-1}: [nc x na] x [na x d] */
            int T = cz_par_threads(nc * na);
            CZ_PAR_FOR(
            for (size_t r = 0; r < nc; r++) {
                const cz_real *w = W + cur[r] * nin;
                for (size_t c = 0; c < na; c++) s->Wg[r * na + c] = w[prev[c]];
            });
            cz_gemm(0, 0, nc, d, na, 1, s->Wg, na, P, d, 0, Q, d);
        }
        if (l > 0 && !na) nc = 0; /* nothing reaches this layer: J_l = 0 from here on */
        /* row r: t = row cur[r] of W_1 (l = 0) or of the product; P_l's row is D t, and
         * the term D^2 |t|^2 as the dense stream forms it (stream.c) */
        int T = cz_par_threads(nc * d);
        CZ_PAR_FOR(
        for (size_t r = 0; r < nc; r++) {
            const cz_real *t = l == 0 ? W + cur[r] * d : Q + r * d;
            cz_real Dv = D[cur[r]], *out = Q + r * d;
            term[r] = Dv * Dv * cz_dot8(t, t, d);
            for (size_t j = 0; j < d; j++) out[j] = Dv * t[j];
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
