/* Which Jacobian streams a training run computes, and why (docs/DESIGN.md section 1):
 * the DREG stream of the training step (exact, Gram or probe; none when lambda is 0 for the
 * whole run) and, for the tau statistics, where the layer-Jacobian norms come from: the
 * step's own stream when it is exact, else exact norms over each chosen sample's active
 * units (chainz/jacnorm.h) on a seeded subsample of each epoch, sized so that it costs at
 * most about a quarter of a step. Private to src/train. */
#ifndef CHAINZ_TRAIN_STREAMPLAN_H
#define CHAINZ_TRAIN_STREAMPLAN_H

#include <stddef.h>
#include "chainz/config.h"
#include "chainz/engine.h"

typedef struct {
    cz_stream_spec main;     /* the training workspace's stream */
    cz_stream_mode tau_sampled; /* Jacobian families from a seeded subsample (cz_jacnorm) at
                              * width d (EXACT) or n_1 (GRAM); NONE: not from a subsample */
    int tau_from_step;       /* Jacobian families from the step's own exact stream */
    double tau_fraction;     /* fraction of samples with Jacobian norms (1 from the step) */
    char why[512];           /* the DREG stream's choice, in words */
    char tau_why[384];       /* where the Jacobian families come from, in words */
    size_t n_train;
} cz_stream_plan;

/* @return 0, or CZ_EINVAL when the asked mode does not fit the model. */
int cz_stream_plan_make(const cz_config *cfg, const cz_model *m, size_t n_train, cz_stream_plan *p,
                        cz_error *err);
/* A resume continues in the checkpoint's mode: *changed |= 1 when auto adopts it (the
 * caller then makes a new workspace); CZ_EINVAL when an explicit --dreg-mode differs.
 * The layer-Jacobian subsample keeps the run's fraction: *changed |= 2 when it is adopted
 * (the sampler takes it), CZ_EINVAL when --tau-jacobian-fraction asks for another.
 * ckpt_config: the checkpoint's configuration JSON (a chainz before --dreg-mode: exact). */
int cz_stream_plan_resume(cz_stream_plan *p, const cz_config *cfg, const cz_model *m, const char *ckpt_config,
                          const char *path, int *changed, cz_error *err);
/* ", \"dreg_mode\": ..." for config.json: the resolved mode, K and the tau fraction. */
void cz_stream_plan_json(const cz_stream_plan *p, char *buf, size_t len);

#endif
