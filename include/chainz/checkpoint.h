/* chainz-checkpoint HDF5 files (docs/DESIGN.md section 3): everything needed to resume a
 * run exactly, readable with h5dump/h5py without chainz.
 *   /model/layer_<l>/{weight [n_l, n_{l-1}], bias [n_l], poly [n_l, 4]}   l = 1..H
 *   /model/output/{weight, bias}
 *   /model/input/{mean, std} [d]          (when features are standardized)
 *   /optimizer/<moment>/... the same tree per moment (m, v for AdamW; momentum for SGD)
 *   /state  attrs epoch, step, position, lambda, lr; datasets rng [4] (xoshiro state) and
 *           epoch_sums [5] (the epoch's running sums, so a mid-epoch resume is exact);
 *           /state/tau/<family>/{counts, sum [2] (128-bit fixed point, low word first)}
 *           with attrs count, max: the epoch's histograms so far
 *   root attrs: format, version, config (JSON), model shape, world_size, checksum,
 *   chainz_version, time, SLURM job fields.
 * Files are written under a temporary name, fsynced and renamed: a crash at any moment
 * leaves the previous checkpoint intact. */
#ifndef CHAINZ_CHECKPOINT_H
#define CHAINZ_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>
#include "chainz/error.h"
#include "chainz/hist.h"
#include "chainz/model.h"
#include "chainz/optim.h"
#include "chainz/rng.h"

typedef struct {
    long epoch;       /* epoch in progress (0-based) */
    long step;        /* optimizer steps done in total */
    long position;    /* batches done within the epoch */
    double lambda, lr;
    cz_rng rng;
    double epoch_sums[5]; /* the epoch's running task loss, DREG, correct, |error| and samples */
    int world_size;
    char slurm[256];  /* "job=.. array=.._.. restart=.." or "" */
} cz_train_state;

typedef struct {
    cz_model model;
    float *params;            /* [n_params] */
    cz_optim_kind optim;
    size_t opt_len;           /* reals in opt_state: state_len * n_params */
    float *opt_state;
    float *mean, *std;        /* [d] or NULL */
    cz_train_state state;
    char *config_json;
    char version[32];
    int n_tau;                /* the epoch's partial tau histograms (merged over ranks) */
    cz_hist *tau;             /* [n_tau] */
    char (*tau_names)[64];    /* [n_tau] */
} cz_checkpoint;

/* Checksum of a flat buffer (FNV-1a 64 over its bytes); also the replica drift check. */
uint64_t cz_checksum(const void *data, size_t bytes);

int cz_ckpt_save(const char *path, const cz_checkpoint *c, cz_error *err);
/* Loads and verifies (format, version, shapes, parameter checksum). */
int cz_ckpt_load(const char *path, cz_checkpoint *c, cz_error *err);
void cz_ckpt_free(cz_checkpoint *c);

#endif
