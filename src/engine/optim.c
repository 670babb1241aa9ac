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

void cz_optim_step(const cz_optim_spec *o, cz_real *params, const cz_real *grad,
                   cz_real *state, size_t n, size_t n_decay, long step, double lr)
{
    double decay = 1.0 - lr * o->weight_decay;
    int T = cz_par_threads(n); /* every parameter on its own: split by index (par.h) */
    if (o->kind == CZ_OPT_ADAMW) {
        cz_real *m = state, *v = state + n;
        double c1 = 1.0 - pow(o->beta1, (double)step), c2 = 1.0 - pow(o->beta2, (double)step);
        CZ_PAR_FOR(
        for (size_t i = 0; i < n; i++) {
            double g = grad[i];
            double mi = o->beta1 * m[i] + (1.0 - o->beta1) * g;
            double vi = o->beta2 * v[i] + (1.0 - o->beta2) * g * g;
            m[i] = (cz_real)mi;
            v[i] = (cz_real)vi;
            double p = i < n_decay ? params[i] * decay : params[i];
            params[i] = (cz_real)(p - lr * (mi / c1) / (sqrt(vi / c2) + o->eps));
        });
    } else {
        cz_real *mom = state;
        CZ_PAR_FOR(
        for (size_t i = 0; i < n; i++) {
            double u = o->momentum * mom[i] + grad[i];
            mom[i] = (cz_real)u;
            double p = i < n_decay ? params[i] * decay : params[i];
            params[i] = (cz_real)(p - lr * u);
        });
    }
}
