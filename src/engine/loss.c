#include "chainz/loss.h"

#include <math.h>

static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
static double sigmoid(double x)
{
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

void cz_loss_eval(cz_real *e, double *loss_b, int32_t *pred, cz_loss_sums *sums,
                  const cz_model *m, const cz_real *f, const int32_t *y_class,
                  const cz_real *y_value, size_t B)
{
    size_t K = m->n_out;
    for (size_t b = 0; b < B; b++) {
        const cz_real *fb = f + b * K;
        cz_real *eb = e ? e + b * K : NULL;
        double loss = 0;
        int32_t p = 0;
        switch (m->spec.head) {
        case CZ_HEAD_CLASSIFY: {
            double mx = fb[0];
            for (size_t k = 1; k < K; k++)
                if (fb[k] > mx) { mx = fb[k]; p = (int32_t)k; }
            int32_t y = y_class ? y_class[b] : p;
            double se = 0;
            for (size_t k = 0; k < K; k++) se += exp(fb[k] - mx);
            double lse = mx + log(se);
            loss = lse - fb[y];
            if (eb)
                for (size_t k = 0; k < K; k++)
                    eb[k] = (cz_real)(exp(fb[k] - lse) - (k == (size_t)y ? 1.0 : 0.0));
            sums->correct += p == y;
            break;
        }
        case CZ_HEAD_ORDINAL: {
            int32_t y = 0;
            if (y_class) y = y_class[b];
            else /* the prediction the loop below counts */
                for (size_t k = 0; k < K; k++) y += fb[k] > 0;
            for (size_t k = 0; k < K; k++) {
                double t = (int32_t)k < y ? 1.0 : 0.0;
                loss += softplus(fb[k]) - t * fb[k];
                if (eb) eb[k] = (cz_real)(sigmoid(fb[k]) - t);
                p += fb[k] > 0;
            }
            sums->correct += p == y;
            sums->abs_err += fabs((double)(p - y));
            break;
        }
        case CZ_HEAD_REGRESS: {
            double r = (double)fb[0] - (double)y_value[b];
            loss = r * r;
            if (eb) eb[0] = (cz_real)(2.0 * r);
            p = (int32_t)lround(fb[0]);
            sums->abs_err += fabs(r);
            break;
        }
        }
        sums->loss += loss;
        if (loss_b) loss_b[b] = loss;
        if (pred) pred[b] = p;
    }
}
