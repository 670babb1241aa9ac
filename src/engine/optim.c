#include "chainz/optim.h"
#include "par.h"

#include <math.h>
#include <string.h>

size_t cz_optim_state_len(const cz_optim_spec *o) { return o->kind == CZ_OPT_ADAMW ? 2 : 1; }

int cz_optim_parse(const char *s, cz_optim_kind *out)
{
    if (!strcmp(s, "adamw")) *out = CZ_OPT_ADAMW;
    else if (!strcmp(s, "sgd")) *out = CZ_OPT_SGD;
    else return CZ_EINVAL;
    return 0;
}

const char *cz_optim_name(cz_optim_kind k) { return k == CZ_OPT_ADAMW ? "adamw" : "sgd"; }

/* AdamW on [i0, i1), weight decay applied or not: the options in locals and the buffers
 * restrict (distinct), so the loop vectorises; the same operations in the same order as
 * a scalar loop, so the same bits */
static inline void adamw_range(cz_real *restrict params, const cz_real *restrict grad, cz_real *restrict m,
                               cz_real *restrict v, size_t i0, size_t i1, double b1, double b2, double c1,
                               double c2, double eps, double lr, double decay, const int decayed)
{
    for (size_t i = i0; i < i1; i++) {
        double g = grad[i];
        double mi = b1 * m[i] + (1.0 - b1) * g;
        double vi = b2 * v[i] + (1.0 - b2) * g * g;
        m[i] = (cz_real)mi;
        v[i] = (cz_real)vi;
        double p = decayed ? params[i] * decay : params[i];
        params[i] = (cz_real)(p - lr * (mi / c1) / (sqrt(vi / c2) + eps));
    }
}

static inline void sgd_range(cz_real *restrict params, const cz_real *restrict grad, cz_real *restrict mom,
                             size_t i0, size_t i1, double momentum, double lr, double decay, const int decayed)
{
    for (size_t i = i0; i < i1; i++) {
        double u = momentum * mom[i] + grad[i];
        mom[i] = (cz_real)u;
        double p = decayed ? params[i] * decay : params[i];
        params[i] = (cz_real)(p - lr * u);
    }
}

void cz_optim_step(const cz_optim_spec *o, cz_real *params, const cz_real *grad,
                   cz_real *state, size_t n, size_t n_decay, long step, double lr)
{
    cz_optim_step_range(o, params, grad, state, n, n_decay, 0, n, step, lr);
}

void cz_optim_step_range(const cz_optim_spec *o, cz_real *params, const cz_real *grad, cz_real *state, size_t n,
                         size_t n_decay, size_t a, size_t b, long step, double lr)
{
    double decay = 1.0 - lr * o->weight_decay;
    if (n_decay > n) n_decay = n;
    if (b > n) b = n;
    if (a >= b) return;
    int T = cz_par_threads(b - a); /* every parameter on its own: split by index (par.h) */
    if (o->kind == CZ_OPT_ADAMW) {
        cz_real *m = state, *v = state + n;
        double b1 = o->beta1, b2 = o->beta2, eps = o->eps;
        double c1 = 1.0 - pow(b1, (double)step), c2 = 1.0 - pow(b2, (double)step);
        CZ_PAR_FOR(
        for (int part = 0; part < T; part++) {
            size_t i0 = a + (b - a) * (size_t)part / (size_t)T, i1 = a + (b - a) * (size_t)(part + 1) / (size_t)T;
            size_t mid = i0 > n_decay ? i0 : i1 < n_decay ? i1 : n_decay;
            adamw_range(params, grad, m, v, i0, mid, b1, b2, c1, c2, eps, lr, decay, 1);
            adamw_range(params, grad, m, v, mid, i1, b1, b2, c1, c2, eps, lr, decay, 0);
        });
    } else {
        double mu = o->momentum;
        CZ_PAR_FOR(
        for (int part = 0; part < T; part++) {
            size_t i0 = a + (b - a) * (size_t)part / (size_t)T, i1 = a + (b - a) * (size_t)(part + 1) / (size_t)T;
            size_t mid = i0 > n_decay ? i0 : i1 < n_decay ? i1 : n_decay;
            sgd_range(params, grad, state, i0, mid, mu, lr, decay, 1);
            sgd_range(params, grad, state, mid, i1, mu, lr, decay, 0);
        });
    }
}
