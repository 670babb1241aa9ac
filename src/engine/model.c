#include "chainz/model.h"
#include "par.h"

#include <math.h>
#include <string.h>

static const char *act_names[] = {"poly", "relu", "tanh", "gelu", "identity"};
static const char *head_names[] = {"classify", "ordinal", "regress"};

const char *cz_act_name(cz_act a) { return act_names[a]; }
const char *cz_head_name(cz_head h) { return head_names[h]; }

int cz_act_parse(const char *s, cz_act *out)
{
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, act_names[i])) { *out = (cz_act)i; return 0; }
    return CZ_EINVAL;
}

int cz_head_parse(const char *s, cz_head *out)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, head_names[i])) { *out = (cz_head)i; return 0; }
    return CZ_EINVAL;
}

int cz_model_init(cz_model *m, const cz_model_spec *spec, cz_error *err)
{
    memset(m, 0, sizeof *m);
    if (spec->d == 0) return cz_error_set(err, CZ_EINVAL, "model: input dimension d must be > 0");
    if (spec->n_hidden < 1 || spec->n_hidden > CZ_MAX_HIDDEN)
        return cz_error_set(err, CZ_EINVAL, "model: need 1..%d hidden layers, got %d",
                            CZ_MAX_HIDDEN, spec->n_hidden);
    if (spec->dropout < 0 || spec->dropout >= 1)
        return cz_error_set(err, CZ_EINVAL, "model: dropout must be in [0, 1), got %g", spec->dropout);
    size_t n_out;
    switch (spec->head) {
    case CZ_HEAD_CLASSIFY:
        if (spec->classes < 2) return cz_error_set(err, CZ_EINVAL, "model: classify needs >= 2 classes, got %d", spec->classes);
        n_out = (size_t)spec->classes;
        break;
    case CZ_HEAD_ORDINAL:
        if (spec->classes < 2) return cz_error_set(err, CZ_EINVAL, "model: ordinal needs >= 2 classes, got %d", spec->classes);
        n_out = (size_t)spec->classes - 1;
        break;
    case CZ_HEAD_REGRESS: n_out = 1; break;
    default: return cz_error_set(err, CZ_EINVAL, "model: unknown head %d", (int)spec->head);
    }
    m->spec = *spec;
    m->n_hidden = spec->n_hidden;
    m->n_out = n_out;
    int H = spec->n_hidden;
    size_t off = 0, n_prev = spec->d;
    for (int l = 0; l <= H; l++) { /* weights first: the decayed prefix */
        size_t n = l < H ? spec->width[l] : n_out;
        if (n == 0) return cz_error_set(err, CZ_EINVAL, "model: hidden layer %d has width 0", l + 1);
        if (l < H && (unsigned)spec->act[l] > CZ_ACT_IDENTITY)
            return cz_error_set(err, CZ_EINVAL, "model: layer %d has an unknown activation", l + 1);
        cz_layer *L = &m->layer[l];
        L->n_in = n_prev;
        L->n_out = n;
        L->act = l < H ? spec->act[l] : CZ_ACT_IDENTITY;
        L->w = off;
        size_t nw;
        /* sizes come from files and options: a product that wraps would build a tiny model */
        if (__builtin_mul_overflow(n, n_prev, &nw) || __builtin_add_overflow(off, nw, &off) ||
            off > CZ_MODEL_MAX_PARAMS)
            return cz_error_set(err, CZ_EINVAL, "model: too large (layer %d is %zu x %zu; at most %zu parameters)",
                                l + 1, n, n_prev, (size_t)CZ_MODEL_MAX_PARAMS);
        n_prev = n;
    }
    m->n_weights = off;
    for (int l = 0; l <= H; l++) {
        cz_layer *L = &m->layer[l];
        L->b = off;
        off += L->n_out; /* n_out <= off already: no overflow below CZ_MODEL_MAX_PARAMS */
        L->poly = CZ_NONE;
        if (L->act == CZ_ACT_POLY) {
            L->poly = off;
            off += 4 * L->n_out;
        }
        if (off > CZ_MODEL_MAX_PARAMS)
            return cz_error_set(err, CZ_EINVAL, "model: too large (more than %zu parameters)",
                                (size_t)CZ_MODEL_MAX_PARAMS);
    }
    m->n_params = off;
    return 0;
}

void cz_model_params_init(const cz_model *m, cz_real *params, cz_rng *rng)
{
    memset(params, 0, m->n_params * sizeof *params);
    for (int l = 0; l <= m->n_hidden; l++) {
        const cz_layer *L = &m->layer[l];
        double gain = (L->act == CZ_ACT_RELU || L->act == CZ_ACT_GELU) ? 2.0 : 1.0;
        double lim = sqrt(3.0 * gain / (double)L->n_in);
        for (size_t i = 0; i < L->n_out * L->n_in; i++)
            params[L->w + i] = (cz_real)((2.0 * cz_rng_uniform(rng) - 1.0) * lim);
        if (L->poly != CZ_NONE)
            for (size_t i = 0; i < L->n_out; i++) params[L->poly + 4 * i + 1] = 1;
    }
}

/* A fixed activation's value and derivatives at x (poly: poly_rows). */
static inline void act_one(cz_act act, cz_real x, cz_real *v, cz_real *d1, cz_real *d2)
{
    switch (act) {
    case CZ_ACT_RELU:
        *v = x > 0 ? x : 0;
        *d1 = x > 0 ? 1 : 0;
        *d2 = 0;
        break;
    case CZ_ACT_TANH: {
        cz_real t = (cz_real)tanh((double)x);
        *v = t;
        *d1 = 1 - t * t;
        *d2 = -2 * t * (1 - t * t);
        break;
    }
    case CZ_ACT_GELU: { /* exact: x * Phi(x) */
        double xd = (double)x;
        double Phi = 0.5 * (1.0 + erf(xd * M_SQRT1_2));
        double pdf = exp(-0.5 * xd * xd) * 0.3989422804014327;
        *v = (cz_real)(xd * Phi);
        *d1 = (cz_real)(Phi + xd * pdf);
        *d2 = (cz_real)(pdf * (2.0 - xd * xd));
        break;
    }
    default:
        *v = x;
        *d1 = 1;
        *d2 = 0;
        break;
    }
}

/* The cubic, one output at a time: loops without a branch over the coefficients split into
 * four arrays (a0..a3 [n]), which the compiler vectorises (elementwise IEEE operations:
 * vectorised or not, the same bits). */
static void poly_rows(cz_real *h, cz_real *dphi, cz_real *d2phi, const cz_real *a0, const cz_real *a1,
                      const cz_real *a2, const cz_real *a3, const cz_real *z, size_t b0, size_t b1, size_t n)
{
    for (size_t b = b0; b < b1; b++) {
        const cz_real *x = z + b * n;
        size_t o = b * n;
        if (h)
            for (size_t i = 0; i < n; i++) h[o + i] = a0[i] + x[i] * (a1[i] + x[i] * (a2[i] + x[i] * a3[i]));
        if (dphi)
            for (size_t i = 0; i < n; i++) dphi[o + i] = a1[i] + x[i] * (2 * a2[i] + 3 * x[i] * a3[i]);
        if (d2phi)
            for (size_t i = 0; i < n; i++) d2phi[o + i] = 2 * a2[i] + 6 * x[i] * a3[i];
    }
}

/* neurons per block of the split coefficients (on the stack) */
#define POLY_BLOCK 256

/* ReLU (or identity) on [k0, k1): act_one's expressions, one output array per loop, no
 * switch and no branch inside, so they vectorise (a select per element: the same bits) */
static void relu_range(cz_real *h, cz_real *dphi, cz_real *d2phi, const cz_real *z, size_t k0, size_t k1,
                       int relu)
{
    for (size_t k = k0; h && k < k1; k++) h[k] = relu ? (z[k] > 0 ? z[k] : 0) : z[k];
    for (size_t k = k0; dphi && k < k1; k++) dphi[k] = relu ? (z[k] > 0 ? 1 : 0) : 1;
    for (size_t k = k0; d2phi && k < k1; k++) d2phi[k] = 0;
}

void cz_act_eval(cz_real *h, cz_real *dphi, cz_real *d2phi, cz_act act, const cz_real *poly,
                 const cz_real *z, size_t B, size_t n)
{
    int T = cz_par_threads(B * n); /* elementwise: split by sample (par.h) */
    if (act == CZ_ACT_POLY) {
        /* neuron blocks outermost: one split of the coefficients per block; each block's
         * rows are split by sample */
        for (size_t i0 = 0; i0 < n; i0 += POLY_BLOCK) {
            size_t m = n - i0 < POLY_BLOCK ? n - i0 : POLY_BLOCK;
            cz_real a[4][POLY_BLOCK];
            for (size_t i = 0; i < m; i++)
                for (int c = 0; c < 4; c++) a[c][i] = poly[4 * (i0 + i) + c];
            /* a row of the block: z + i0 with stride n (poly_rows sees a B x m window) */
            CZ_PAR_FOR(
            for (size_t b = 0; b < B; b++) {
                size_t o = b * n + i0;
                poly_rows(h ? h + o : NULL, dphi ? dphi + o : NULL, d2phi ? d2phi + o : NULL, a[0], a[1], a[2],
                          a[3], z + o, 0, 1, m);
            });
        }
        return;
    }
    if (act == CZ_ACT_RELU || act == CZ_ACT_IDENTITY) {
        size_t N = B * n;
        int relu = act == CZ_ACT_RELU;
        CZ_PAR_FOR(
        for (int part = 0; part < T; part++)
            relu_range(h, dphi, d2phi, z, N * (size_t)part / (size_t)T, N * (size_t)(part + 1) / (size_t)T, relu););
        return;
    }
    CZ_PAR_FOR(
    for (size_t k = 0; k < B * n; k++) {
        cz_real v, d1, d2;
        act_one(act, z[k], &v, &d1, &d2);
        if (h) h[k] = v;
        if (dphi) dphi[k] = d1;
        if (d2phi) d2phi[k] = d2;
    });
}
