/* Divergence detection on the reduced per-step scalars (diverge.h). */
#include "diverge.h"


#include <math.h>
#include <stdio.h>
#include <string.h>

enum { WARMUP = 8 };

double cz_diverge_reference(const cz_diverge *dv, int term)
{
    double l = dv->level[term] > dv->first[term] ? dv->level[term] : dv->first[term];
    return pow(10.0, l);
}

int cz_diverge_check(cz_diverge *dv, double factor, const double value[CZ_DV_N], double *ratio)
{
    int hit = -1;
    *ratio = 0;
    for (int k = 0; k < CZ_DV_N; k++) {
        double v = value[k];
        if (!(v > 0) || !isfinite(v)) continue; /* non-finite values are the gradient check's */
        double lv = log10(v);
        if (dv->n[k] >= WARMUP && factor > 0) {
            double r = v / cz_diverge_reference(dv, k);
            if (r > factor && r > *ratio) {
                hit = k;
                *ratio = r;
            }
        }
        if (dv->n[k] == 0) dv->first[k] = dv->level[k] = lv;
        else if (dv->n[k] < WARMUP) dv->level[k] += (lv - dv->level[k]) / (double)(dv->n[k] + 1);
        else dv->level[k] += (lv - dv->level[k]) / 16.0;
        dv->n[k]++;
    }
    return hit;
}

int cz_diverge_explain(const cz_diverge *dv, int term, double value, double ratio, long step, long epoch,
                       double lambda, int stop, const cz_model *m, const float *params, const double *layer_sq, const cz_config *cfg,
                       cz_error *err)
{
    char layers[400] = "", *p = layers;
    size_t left = sizeof layers;
    int worst = 0;
    for (int l = 0; layer_sq && l < m->n_hidden; l++) {
        if (layer_sq[l] > layer_sq[worst]) worst = l;
        int k = snprintf(p, left, "%s layer %d %.3g", l ? "," : "", l + 1, layer_sq[l]);
        if (k < 0 || (size_t)k >= left) break;
        p += k, left -= (size_t)k;
    }
    char coef[300] = "";
    p = coef, left = sizeof coef;
    for (int l = 0; l < m->n_hidden; l++) {
        const cz_layer *L = &m->layer[l];
        if (L->poly == CZ_NONE) continue;
        double a3 = 0;
        for (size_t i = 0; i < L->n_out; i++) {
            double v = fabs((double)params[L->poly + 4 * i + 3]);
            if (v > a3) a3 = v;
        }
        int k = snprintf(p, left, "%s layer %d %.3g", p == coef ? "" : ",", l + 1, a3);
        if (k < 0 || (size_t)k >= left) break;
        p += k, left -= (size_t)k;
    }
    char dreg[64] = "";
    if (term == 1) snprintf(dreg, sizeof dreg, ", a lower --dreg (now %g)", lambda);
    char clip[64] = "--clip-grad-norm 1";
    if (cfg->clip_grad_norm > 0) snprintf(clip, sizeof clip, "a lower --clip-grad-norm (now %g)", cfg->clip_grad_norm);
    char jac[480] = "";
    if (layer_sq)
        snprintf(jac, sizeof jac, " Jacobian norms ||S_l||^2 per sample:%s (largest: layer %d).", layers, worst + 1);
    char cub[340] = "";
    if (coef[0]) snprintf(cub, sizeof cub, " Largest cubic coefficients |a3|:%s.", coef);
    /* --clip-z clips z-scores: without standardization the advice is to standardize */
    char inputs[160];
    if (cfg->standardize)
        snprintf(inputs, sizeof inputs, "a new run with --clip-z %g (it cannot change within a run)",
                 cfg->clip_z > 0 ? cfg->clip_z / 2 : 3.0);
    else
        snprintf(inputs, sizeof inputs, "a new run without --no-standardize (z-scores clipped at 3)");
    return cz_error_set(err, CZ_ERUNTIME,
                        "step %ld (epoch %ld): the %s jumped to %.3g per sample, %.3gx its running level %.3g "
                        "(--divergence-factor %g): training %s.%s%s %s Try a lower --lr (now %g)%s, "
                        "%s%s; or %s%s",
                        step + 1, epoch + 1, term == 0 ? "task loss" : "DREG term (sum_l ||S_l||^2)", value, ratio,
                        cz_diverge_reference(dv, term), cfg->divergence_factor, stop ? "is diverging" : "may be diverging", jac, cub,
                        stop ? "The run stops before applying this step (the checkpoints written so far are intact)."
                             : "Training goes on; a jump of the factor squared stops it.", cfg->lr,
                        dreg, clip,
                        stop ? " (then --resume auto with them)" : "", inputs,
                        stop ? "" : " (--divergence-factor 0: no check)");
}

/* "layer 2 weight [3, 1]", "output bias [0]": which parameter flat index i is */
static void param_name(const cz_model *m, size_t i, char *buf, size_t len)
{
    for (int l = 0; l <= m->n_hidden; l++) {
        const cz_layer *L = &m->layer[l];
        char who[32];
        if (l < m->n_hidden) snprintf(who, sizeof who, "layer %d", l + 1);
        else snprintf(who, sizeof who, "output");
        if (i >= L->w && i < L->w + L->n_out * L->n_in) {
            snprintf(buf, len, "%s weight [%zu, %zu]", who, (i - L->w) / L->n_in, (i - L->w) % L->n_in);
            return;
        }
        if (i >= L->b && i < L->b + L->n_out) {
            snprintf(buf, len, "%s bias [%zu]", who, i - L->b);
            return;
        }
        if (L->poly != CZ_NONE && i >= L->poly && i < L->poly + 4 * L->n_out) {
            snprintf(buf, len, "%s poly [%zu, a%zu]", who, (i - L->poly) / 4, (i - L->poly) % 4);
            return;
        }
    }
    snprintf(buf, len, "parameter %zu", i);
}

/* The message for a summed gradient that is not finite: its first such value. */
int cz_diverge_overflow(const cz_model *m, const float *g, size_t n, long step, cz_error *err)
{
    size_t i = 0;
    while (i < n && isfinite(g[i])) i++;
    char name[96];
    param_name(m, i < n ? i : 0, name, sizeof name);
    return cz_error_set(err, CZ_ERUNTIME, "step %ld: the summed gradient of %s = %g is not finite (training "
                        "diverged: lower --lr, --dreg or --clip-grad-norm, a new run with --clip-z, or rescale the "
                        "targets)", step + 1, name, i < n ? (double)g[i] : NAN);
}
