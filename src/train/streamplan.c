/* The run's Jacobian streams (streamplan.h). */
#include "streamplan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chainz/jacnorm.h"
#include "runstate_internal.h"

/* flops of one sample: the step without a stream */
static double step_flops(const cz_model *m) { return cz_engine_step_flops(m, 1, 0); }

/* the rows' width that makes f of each step's samples cheapest: d, or n_1 < d with one QR
 * of W_1 a step (per_step samples a step share it) */
static cz_stream_mode tau_width(const cz_model *m, double f, double per_step)
{
    if (m->layer[0].n_out >= m->spec.d) return CZ_STREAM_EXACT;
    double exact = f * per_step * cz_jacnorm_flops(m, CZ_STREAM_EXACT);
    double gram = f * per_step * cz_jacnorm_flops(m, CZ_STREAM_GRAM) + cz_jacnorm_step_flops(m, CZ_STREAM_GRAM);
    return gram < exact ? CZ_STREAM_GRAM : CZ_STREAM_EXACT;
}

/* training samples a step: --batch, or every row (full batch); they share gram's QR */
static double step_samples(const cz_config *cfg, size_t n_train)
{
    double s = (double)n_train;
    if (cfg->batch > 0 && (double)cfg->batch < s) s = (double)cfg->batch;
    return s < 1 ? 1 : s;
}

/* "; rows of width 784 = d" for the log */
static void width_words(const cz_stream_plan *p, const cz_model *m, char *buf, size_t len)
{
    if (p->tau_sampled == CZ_STREAM_GRAM)
        snprintf(buf, len, "; rows of width %zu = n_1 (R^T of W_1^T = QR, one QR a step)", m->layer[0].n_out);
    else
        snprintf(buf, len, "; rows of width %zu = d", m->spec.d);
}

/* where the layer-Jacobian families come from, given the DREG stream */
static void plan_tau(cz_stream_plan *p, const cz_config *cfg, const cz_model *m)
{
    p->tau_sampled = CZ_STREAM_NONE;
    p->tau_from_step = 0;
    p->tau_fraction = 1;
    p->tau_why[0] = 0;
    if (!cfg->tau) return;
    if (p->main.mode == CZ_STREAM_EXACT || p->main.mode == CZ_STREAM_GRAM) {
        p->tau_from_step = 1;
        snprintf(p->tau_why, sizeof p->tau_why, "every sample, from the DREG stream");
        return;
    }
    /* at most about a quarter of a step (issue 15 asks tau on to cost at most 1.3x a step),
     * planned with every unit on: a ReLU layer with half its units off costs a quarter of
     * that (jacnorm.h), but the fraction is part of the run and cannot follow the data. A
     * floor of 1000 samples an epoch (p99 from ten) cost 3.7x a step on 8,192 rows of d =
     * 300: it is no longer the default; the log says when an epoch measures fewer, and
     * --tau-jacobian-fraction buys more samples at their cost. With n_1 < d the rows can be
     * n_1 wide for one QR a step: the width that measures more samples for the budget. */
    double S = step_flops(m), per_step = step_samples(cfg, p->n_train);
    double f = 0.25 * S / cz_jacnorm_flops(m, CZ_STREAM_EXACT);
    if (m->layer[0].n_out < m->spec.d) {
        double fg = (0.25 * S * per_step - cz_jacnorm_step_flops(m, CZ_STREAM_GRAM)) /
                    (per_step * cz_jacnorm_flops(m, CZ_STREAM_GRAM));
        if (fg > f) f = fg;
    }
    if (f > 1) f = 1;
    if (cfg->tau_jacobian_fraction > 0) f = cfg->tau_jacobian_fraction;
    p->tau_fraction = f;
    p->tau_sampled = tau_width(m, f, per_step);
    double per_epoch = f * (double)p->n_train;
    char few[160] = "", width[96];
    /* a sample's cost relative to a training sample: below one with one hidden layer (its
     * product is D_1 W_1 alone), where a whole number read "0x" */
    double cost = cz_jacnorm_flops(m, p->tau_sampled) / S;
    if (cfg->tau_jacobian_fraction <= 0 && f < 1 && per_epoch < 1000)
        snprintf(few, sizeof few, " (about %.0f an epoch: their p99 is rough below 1000; --tau-jacobian-fraction "
                 "measures more, each sample up to %.*fx a training sample)", per_epoch, cost < 1 ? 1 : 0, cost);
    width_words(p, m, width, sizeof width);
    snprintf(p->tau_why, sizeof p->tau_why, "exact on a seeded %.3g %% of each epoch's samples%s%s%s", 100 * f,
             cfg->tau_jacobian_fraction > 0 ? " (--tau-jacobian-fraction)" : "", few, width);
}

int cz_stream_plan_make(const cz_config *cfg, const cz_model *m, size_t n_train, cz_stream_plan *p,
                        cz_error *err)
{
    memset(p, 0, sizeof *p);
    if (cfg->dreg > 0 || cfg->dreg_schedule[0]) {
        if (cfg->dreg_mode == CZ_STREAM_AUTO) {
            cz_stream_auto(m, cfg->dreg_probes, &p->main, p->why, sizeof p->why);
        } else {
            p->main = (cz_stream_spec){.mode = cfg->dreg_mode, .probes = cfg->dreg_probes};
            snprintf(p->why, sizeof p->why, "%s at stream width %zu (--dreg-mode)", cz_stream_mode_name(p->main.mode),
                     cz_stream_width(m, &p->main));
        }
        int rc = cz_stream_check(m, &p->main, err);
        if (rc) return rc;
        if (cfg->dreg_probes_given && p->main.mode != CZ_STREAM_PROBE) {
            size_t used = strlen(p->why);
            snprintf(p->why + used, sizeof p->why - used, "; --dreg-probes %d is unused (no probes in %s mode)",
                     cfg->dreg_probes, cz_stream_mode_name(p->main.mode));
        }
    } else {
        snprintf(p->why, sizeof p->why, "none: lambda is 0 for the whole run");
    }
    p->n_train = n_train;
    plan_tau(p, cfg, m);
    return 0;
}

/* the shortest decimal that reads back as x */
static void shortest(double x, char *buf, size_t len)
{
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) return;
    }
}

/* The layer-Jacobian subsample keeps the run's fraction (was: 0 for a run that did not
 * record it): adopted when --tau-jacobian-fraction is not given, refused when it differs;
 * *changed |= 2 when it was adopted. */
static int resume_fraction(cz_stream_plan *p, const cz_config *cfg, const cz_model *m, double was, const char *path,
                           int *changed, cz_error *err)
{
    if (!p->tau_sampled || was <= 0 || was == p->tau_fraction) return 0;
    if (cfg->tau_jacobian_fraction > 0) {
        char a[32], b[32];
        shortest(was, a, sizeof a);
        shortest(cfg->tau_jacobian_fraction, b, sizeof b);
        return cz_error_set(err, CZ_EINVAL, "%s: the run measures the layer-Jacobian families on a seeded %s of "
                            "each epoch's samples, this run asks for %s (--tau-jacobian-fraction; it cannot change "
                            "within a run): resume with --tau-jacobian-fraction %s (or without it)", path, a, b, a);
    }
    p->tau_fraction = was;
    p->tau_sampled = tau_width(m, was, step_samples(cfg, p->n_train));
    char width[96];
    width_words(p, m, width, sizeof width);
    snprintf(p->tau_why, sizeof p->tau_why, "exact on a seeded %.3g %% of each epoch's samples, as the run began%s",
             100 * was, width);
    *changed |= 2;
    return 0;
}

/* "probe with K directions" or the mode's name */
static void stream_desc(const cz_stream_spec *s, char *buf, size_t len)
{
    if (s->mode == CZ_STREAM_PROBE)
        snprintf(buf, len, "probe with %d directions", s->probes);
    else
        snprintf(buf, len, "%s", cz_stream_mode_name(s->mode));
}

int cz_stream_plan_resume(cz_stream_plan *p, const cz_config *cfg, const cz_model *m, const char *ckpt_config,
                          const char *path, int *changed, cz_error *err)
{
    *changed = 0;
    flat_json *f = calloc(1, sizeof *f);
    if (!f) return cz_error_set(err, CZ_ENOMEM, "out of memory");
    cz_stream_spec was = {.mode = CZ_STREAM_EXACT}; /* a chainz before --dreg-mode */
    int s = 0;
    char modebuf[64] = "";
    const char *mode = NULL, *probes = NULL, *frac = NULL;
    double was_frac = 0;
    if (ckpt_config && !cz_run_parse_flat(ckpt_config, f)) {
        mode = cz_run_field(f, "dreg_mode", &s);
        probes = cz_run_field(f, "dreg_probes", &s);
        frac = cz_run_field(f, "tau_jacobian_fraction", &s);
    }
    /* copied before f goes: the messages below name it */
    if (mode) snprintf(modebuf, sizeof modebuf, "%s", mode), mode = modebuf;
    /* "none" (lambda 0 throughout) is no --dreg-mode a user can ask for, so the parser
     * refuses it; a baseline resumed with DREG on must still read it */
    int bad = 0;
    if (mode && !strcmp(mode, "none")) was.mode = CZ_STREAM_NONE;
    else if (mode) bad = cz_stream_mode_parse(mode, &was.mode) != 0;
    if (probes) was.probes = atoi(probes);
    if (frac) was_frac = strtod(frac, NULL);
    free(f);
    if (frac && !(was_frac > 0 && was_frac <= 1))
        return cz_error_set(err, CZ_EINVAL, "%s: tau_jacobian_fraction %g in its configuration is not in (0, 1]", path,
                            was_frac);
    /* an exact or gram run took its Jacobian families from the stream, every sample: its
     * recorded 1 chose no subsample, and continued without that stream (lambda 0) it would
     * otherwise measure every sample at a cost of up to a step each, and refuse any other
     * --tau-jacobian-fraction */
    if (!bad && (was.mode == CZ_STREAM_EXACT || was.mode == CZ_STREAM_GRAM)) frac = NULL;
    int rc = resume_fraction(p, cfg, m, frac ? was_frac : 0, path, changed, err);
    if (rc || p->main.mode == CZ_STREAM_NONE) return rc;
    if (bad || was.mode == CZ_STREAM_AUTO)
        return cz_error_set(err, CZ_EINVAL, "%s: unknown dreg_mode '%s' in its configuration", path, mode);
    if (was.mode == CZ_STREAM_NONE) return 0; /* written with lambda 0 throughout: nothing to keep */
    if (was.mode == p->main.mode && (was.mode != CZ_STREAM_PROBE || was.probes == p->main.probes)) return 0;
    /* an explicit --dreg-mode that names the run's mode adopts its probe count, as auto does;
     * a different mode, or a --dreg-probes that differs, is refused */
    if ((cfg->dreg_mode != CZ_STREAM_AUTO && cfg->dreg_mode != was.mode) || cfg->dreg_probes_given) {
        char a[64], b[64], hint[64];
        stream_desc(&was, a, sizeof a);
        stream_desc(&p->main, b, sizeof b);
        if (was.mode == CZ_STREAM_PROBE)
            snprintf(hint, sizeof hint, "--dreg-mode probe --dreg-probes %d", was.probes);
        else
            snprintf(hint, sizeof hint, "--dreg-mode %s", cz_stream_mode_name(was.mode));
        return cz_error_set(err, CZ_EINVAL, "%s: the run's DREG stream is %s%s, this run asks for %s (it cannot "
                            "change within a run): resume with %s (or neither option)", path, a,
                            mode ? "" : " (a chainz before --dreg-mode)", b, hint);
    }
    rc = cz_stream_check(m, &was, err);
    if (rc) return rc;
    p->main = was;
    snprintf(p->why, sizeof p->why, "%s at stream width %zu, as the run began (%s)", cz_stream_mode_name(was.mode),
             cz_stream_width(m, &was), mode ? "its configuration" : "a chainz before --dreg-mode");
    plan_tau(p, cfg, m);
    *changed |= 1;
    return resume_fraction(p, cfg, m, frac ? was_frac : 0, path, changed, err);
}

void cz_stream_plan_json(const cz_stream_plan *p, char *buf, size_t len)
{
    snprintf(buf, len, ", \"dreg_mode\": \"%s\", \"dreg_probes\": %d, \"tau_jacobian_fraction\": %.17g",
             cz_stream_mode_name(p->main.mode), p->main.mode == CZ_STREAM_PROBE ? p->main.probes : 0,
             p->tau_fraction);
}
