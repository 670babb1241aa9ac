/* The heads' probabilities and values (infer.h, czi_outputs), in double, from the outputs
 * f the engine computed. Labels come from the loss code (loss.h), so they are what
 * `chainz eval` counts; these are the probabilities that go with them. */
#include <math.h>

#include "infer_internal.h"

static double sigmoid(double x)
{
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

void cz_infer_heads(const cz_model *m, const cz_real *f, const int32_t *label, size_t B, float *prob, float *value)
{
    size_t no = m->n_out, K = (size_t)m->spec.classes;
    for (size_t b = 0; b < B; b++) {
        const cz_real *fb = f + b * no;
        switch (m->spec.head) {
        case CZ_HEAD_CLASSIFY: {
            double mx = fb[0], se = 0;
            for (size_t k = 1; k < K; k++) mx = fb[k] > mx ? fb[k] : mx;
            for (size_t k = 0; k < K; k++) se += exp(fb[k] - mx);
            for (size_t k = 0; prob && k < K; k++) prob[b * K + k] = (float)(exp(fb[k] - mx) / se);
            if (value) value[b] = (float)(exp(fb[label[b]] - mx) / se);
            break;
        }
        case CZ_HEAD_ORDINAL: {
            /* s_k = P(y > k), k = 0..K-2; P(y = k) = s_{k-1} - s_k with s_{-1} = 1, s_{K-1} = 0.
             * Independent sigmoids need not decrease: a negative difference is clamped at 0 and
             * the row renormalized. */
            double expect = 0, prev = 1, p[64], *pp = K <= 64 ? p : NULL, tot = 0;
            for (size_t k = 0; k < K; k++) {
                double sk = k + 1 < K ? sigmoid(fb[k]) : 0;
                if (k + 1 < K) expect += sk;
                double pk = prev - sk > 0 ? prev - sk : 0;
                if (pp) pp[k] = pk;
                else if (prob) prob[b * K + k] = (float)pk;
                tot += pk;
                prev = sk;
            }
            for (size_t k = 0; prob && k < K; k++) {
                double pk = pp ? pp[k] : prob[b * K + k];
                prob[b * K + k] = (float)(tot > 0 ? pk / tot : 1.0 / (double)K);
            }
            if (value) value[b] = (float)expect;
            break;
        }
        case CZ_HEAD_REGRESS:
            if (value) value[b] = (float)fb[0];
            break;
        }
    }
}
