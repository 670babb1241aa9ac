/* The run's checkpoints: saving where training stands, and resuming from one (trainer.h). */
#include <stdio.h>
#include <string.h>

#include "chainz/checkpoint.h"
#include "node.h"
#include "trainer.h"

int cz_trainer_save(trainer *t, const progress_state *ps, cz_error *err)
{
    /* the epoch's histograms so far, merged into rank 0's, travel with the checkpoint */
    int rc = t->cfg->tau ? cz_tau_set_merge(&t->ts, t->d, err) : 0;
    /* the optimizer moments are updated slice by slice on their owners: gather them */
    cz_optim_spec so = t->cfg->optim;
    for (size_t k = 0; !rc && k < cz_optim_state_len(&so); k++)
        rc = cz_reducer_gather(&t->red, t->d, t->opt + k * t->m.n_params, err);
    if (rc) return rc;
    if (t->d->rank == 0) {
        cz_optim_spec os = t->cfg->optim;
        cz_checkpoint c = {.model = t->m, .params = t->params, .optim = os.kind,
                           .opt_len = cz_optim_state_len(&os) * t->m.n_params, .opt_state = t->opt,
                           .mean = t->cfg->standardize ? t->mean : NULL,
                           .std = t->cfg->standardize ? t->std : NULL, .config_json = t->config_json,
                           .clip_z = t->cfg->standardize ? t->cfg->clip_z : 0};
        c.state = (cz_train_state){.epoch = ps->epoch, .step = ps->step, .position = ps->position,
                                   .lambda = ps->lambda, .lr = ps->lr, .world_size = t->d->size};
        memcpy(c.state.epoch_sums, ps->sums, sizeof ps->sums);
        if (t->cfg->tau) {
            c.n_tau = t->ts.nf;
            c.tau = t->ts.h;
            c.tau_names = t->ts.names;
        }
        cz_rng_seed(&c.state.rng, t->cfg->seed); /* all randomness is hashed from the seed */
        cz_node_slurm_fields(c.state.slurm, sizeof c.state.slurm);
        snprintf(c.version, sizeof c.version, "%s", CHAINZ_VERSION);
        c.has_identity = 1;
        c.data = t->data_id;
        snprintf(c.blas_version, sizeof c.blas_version, "%s", cz_engine_blas_version());
        snprintf(c.blas_kernels, sizeof c.blas_kernels, "%s", cz_engine_blas_arch());
        c.threads = t->cfg->threads;
        rc = cz_run_save(t->ckpt_dir, &c, t->cfg->keep, t->cfg->keep_every, err);
    }
    return cz_dist_agree(t->d, rc, err);
}

/* ---- resume ---- */

/* Picks the checkpoint to resume from: rank 0 decides, every rank loads the same file.
 * path = "" when --resume auto finds nothing usable (a fresh start). */
static int choose_checkpoint(trainer *t, char *path, size_t len, cz_error *err)
{
    int rc = 0;
    path[0] = 0;
    if (t->d->rank == 0)
        rc = strcmp(t->cfg->resume, "auto") ? cz_run_resolve(t->cfg->resume, path, len, err)
                                            : cz_run_choose_auto(t->ckpt_dir, path, len, stdout, err);
    rc = cz_dist_agree(t->d, rc, err);
    if (!rc) rc = cz_dist_bcast(t->d, path, len, 0, err);
    return rc;
}

/* the run continues in the stream it began with (auto adopts it; a new workspace then) */
static int resume_stream(trainer *t, const cz_checkpoint *c, const char *path, cz_error *err)
{
    int changed = 0;
    int rc = cz_stream_plan_resume(&t->plan, t->cfg, &t->m, c->config_json, path, &changed, err);
    if (rc || !changed) return rc;
    if (changed & 1) {
        cz_workspace_free(t->ws);
        if (!(t->ws = cz_workspace_new_stream(&t->m, (size_t)t->cfg->micro_batch, &t->plan.main, err)))
            return err->code;
    }
    /* the run's subsample fraction, and the width that suits it (a new scratch) */
    if (t->cfg->tau && t->plan.tau_sampled &&
        (rc = cz_tau_set_sampler_init(&t->ts, &t->m, t->plan.tau_sampled, t->plan.tau_fraction, err)))
        return rc;
    return cz_trainer_config_json(t, err);
}

int cz_trainer_resume(trainer *t, progress_state *ps, cz_error *err)
{
    char path[4400];
    int rc = choose_checkpoint(t, path, sizeof path, err);
    if (rc || !path[0]) return rc;
    cz_checkpoint c;
    rc = cz_ckpt_load(path, &c, err);
    if (!rc) {
        cz_run_info info = {.spec = &t->m.spec, .optim = t->cfg->optim.kind, .config_json = t->config_json,
                            .data = &t->data_id, .data_path = t->cfg->data,
                            .blas_version = cz_engine_blas_version(), .blas_kernels = cz_engine_blas_arch(),
                            .world_size = t->d->size};
        rc = cz_run_check_compatible(&info, &c, path, t->d->rank == 0 ? stdout : NULL, err);
        if (!rc) rc = resume_stream(t, &c, path, err);
        if (!rc && (!c.opt_state || c.opt_len != cz_optim_state_len(&t->cfg->optim) * t->m.n_params))
            rc = cz_error_set(err, CZ_EINVAL, "%s: no optimizer state for %s", path, cz_optim_name(t->cfg->optim.kind));
        if (!rc && t->cfg->standardize && !c.mean)
            rc = cz_error_set(err, CZ_EINVAL, "%s: no standardization statistics", path);
        if (!rc && t->cfg->standardize && c.clip_z != t->cfg->clip_z)
            rc = cz_error_set(err, CZ_EINVAL, "%s: the run clips z-scores at %g%s, this run asks for --clip-z %g (it "
                              "cannot change within a run): resume with --clip-z %g", path, c.clip_z,
                              c.clip_z > 0 ? "" : " (0: off; a chainz before --clip-z did not clip)",
                              t->cfg->clip_z, c.clip_z);
        if (!rc) {
            memcpy(t->params, c.params, t->m.n_params * sizeof(float));
            memcpy(t->opt, c.opt_state, c.opt_len * sizeof(float));
            if (c.mean) { /* the run's own statistics, not a recomputation */
                memcpy(t->mean, c.mean, t->m.spec.d * sizeof(float));
                memcpy(t->std, c.std, t->m.spec.d * sizeof(float));
            }
            *ps = (progress_state){.epoch = c.state.epoch, .position = c.state.position,
                                   .step = c.state.step, .lambda = c.state.lambda, .lr = c.state.lr};
            memcpy(ps->sums, c.state.epoch_sums, sizeof ps->sums);
            /* a branch from an older checkpoint: later ones are set aside, not lost */
            if (t->d->rank == 0) rc = cz_run_set_aside_newer(t->ckpt_dir, ps->step, stdout, err);
            /* retention as after a save: a crash between writing a checkpoint and pruning
             * leaves one too many, and a resume that trains no further never saves */
            if (!rc && t->d->rank == 0) cz_run_prune(t->ckpt_dir, ps->step, t->cfg->keep, t->cfg->keep_every);
            if (!rc && t->d->rank == 0) {
                printf("chainz: resumed from %s: epoch %ld, step %ld, batch %ld of the epoch%s%s\n", path,
                       ps->epoch + 1, ps->step, ps->position, c.state.slurm[0] ? ", written by SLURM " : "",
                       c.state.slurm);
                fflush(stdout);
            }
        }
        if (!rc && t->cfg->tau && t->d->rank == 0) /* the epoch's partial histograms */
            for (int k = 0; k < c.n_tau; k++)
                for (int f = 0; f < t->ts.nf; f++)
                    if (!strcmp(c.tau_names[k], t->ts.names[f])) t->ts.h[f] = c.tau[k];
        cz_ckpt_free(&c);
    }
    return cz_dist_agree(t->d, rc, err);
}

