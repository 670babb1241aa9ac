/* chainz-checkpoint HDF5 files (docs/DESIGN.md section 3): everything needed to resume a
 * run exactly, readable with h5dump/h5py without chainz.
 *   /model/layer_<l>/{weight [n_l, n_{l-1}], bias [n_l], poly [n_l, 4]}   l = 1..H
 *   /model/output/{weight, bias}
 *   /model/input/{mean, std} [d], attr clip_z (when features are standardized; clip_z
 *                                         absent in older files: 0, no clipping)
 *   /optimizer/<moment>/... the same tree per moment (m, v for AdamW; momentum for SGD)
 *   /state  attrs epoch, step, position, lambda, lr; datasets rng [4] (xoshiro state) and
 *           epoch_sums [5] (the epoch's running sums, so a mid-epoch resume is exact);
 *           /state/tau/<family>/{counts, sum [2] (128-bit fixed point, low word first)}
 *           with attrs count, max: the epoch's histograms so far
 *   root attrs: format, version, config (JSON), model shape, world_size, checksum,
 *   checksum_all, checksum_model, chainz_version, time, SLURM job fields, blas_version, blas_kernels,
 *   threads, and the identity of the training data: data_bytes, data_n, data_d,
 *   data_classes, data_labels_checksum, data_rows_checksum.
 * Files are written under a temporary name, fsynced and renamed: a crash at any moment
 * leaves the previous checkpoint intact.
 * Format versions: 2 (written) adds checksum_all, the data identity and the BLIS fields;
 * 1 (still read) has only the parameter checksum. A version above 2 is refused.
 * checksum_model (written since 2026-11-30, version still 2: older readers ignore it) is
 * FNV-1a 64 of the text "d=..;layers=..;act=..;head=..;classes=..;dropout=%.17g": the
 * architecture attributes that change what the parameters compute but not their count
 * (an activation, the head, dropout); verified when present, absent in older files. */
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

/* The training data by content, not by path or layout: what a resume checks (all but
 * bytes, which a repacked file changes). */
typedef struct {
    uint64_t bytes;           /* size of the file: informative only (logged when it differs) */
    uint64_t n, d;            /* rows, features */
    int64_t classes;
    uint64_t labels_checksum; /* FNV-1a 64 of the labels as stored in memory (int32 or float32) */
    uint64_t rows_checksum;   /* FNV-1a 64 of up to 64 evenly spaced rows (float32) */
} cz_data_identity;

typedef struct {
    cz_model model;
    float *params;            /* [n_params] */
    cz_optim_kind optim;
    size_t opt_len;           /* reals in opt_state: state_len * n_params */
    float *opt_state;
    float *mean, *std;        /* [d] or NULL */
    double clip_z;            /* standardized inputs clipped to [-clip_z, clip_z]; 0: none */
    cz_train_state state;
    char *config_json;
    char version[32];
    int n_tau;                /* the epoch's partial tau histograms (merged over ranks) */
    cz_hist *tau;             /* [n_tau] */
    char (*tau_names)[64];    /* [n_tau] */
    int has_identity;         /* version >= 2: data, blas_* and threads are set */
    cz_data_identity data;
    char blas_version[32], blas_kernels[32];
    int threads;
    long format_version;      /* set by cz_ckpt_load */
} cz_checkpoint;

/* Checksum of a flat buffer (FNV-1a 64 over its bytes); also the replica drift check. */
uint64_t cz_checksum(const void *data, size_t bytes);
/* Continues an FNV-1a 64 checksum h (start with cz_checksum(NULL, 0)). */
uint64_t cz_checksum_more(uint64_t h, const void *data, size_t bytes);
/* checksum_all: FNV-1a 64 over everything a resume or an evaluation reads, in a fixed
 * order: parameters, input mean and std, optimizer moments, /state (counters, lambda, lr,
 * rng, epoch sums, partial histograms), data identity, BLIS fields, world size, config. */
uint64_t cz_ckpt_checksum_all(const cz_checkpoint *c);

int cz_ckpt_save(const char *path, const cz_checkpoint *c, cz_error *err);
/* Write errors name the system's reason (e.g. "No space left on device"); the temporary
 * file is removed and no HDF5 object stays open. */
/* Loads and verifies (format, version, shapes, checksum_all, checksum_model when present
 * and each layer's activation attribute against the root act; version 1: the parameter
 * checksum). A file of a newer version is CZ_EINVAL naming both versions. */
int cz_ckpt_load(const char *path, cz_checkpoint *c, cz_error *err);
/* What cz_ckpt_load_unverified found of the three checksums (hex text as stored/computed). */
typedef struct {
    int params_ok; /* 1: the parameter checksum matches; 0: it does not */
    int all_ok;    /* 1 / 0 the same for checksum_all; -1: none (format version 1) */
    char params_stored[32], params_computed[32], all_stored[32], all_computed[32];
    int model_ok;  /* 1 / 0 the same for checksum_model (and each layer's activation
                    * attribute); -1: no checksum_model (written before it existed) */
    char model_stored[32], model_computed[32];
} cz_ckpt_verdict;
/* As cz_ckpt_load, but a checksum that does not match is reported in *v instead of failing
 * the load (`chainz inspect` describes a corrupt checkpoint and names the failed checksum).
 * Anything else wrong (structure, shapes, attributes) still fails. Never use the result of
 * a failed verdict for training or evaluation. */
int cz_ckpt_load_unverified(const char *path, cz_checkpoint *c, cz_ckpt_verdict *v, cz_error *err);
void cz_ckpt_free(cz_checkpoint *c);

#endif
