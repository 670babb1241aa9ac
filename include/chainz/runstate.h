/* The state of a run directory (docs/DESIGN.md section 6, "Run directory"): the lock that
 * keeps two runs out of one directory, the checkpoints it holds, which one a run resumes
 * from, whether a checkpoint fits this run, retention, and the history file.
 *
 *   RUN_DIR/run.lock                 flock'ed by rank 0 for the whole run; holds
 *                                    "pid=P host=H start=T" of the holder
 *   RUN_DIR/checkpoints/ckpt-<step>.h5, latest (text: the newest file's name)
 *   RUN_DIR/checkpoints/ckpt-*.h5.unusable set aside by --resume auto (unreadable, corrupt, newer format)
 *   RUN_DIR/checkpoints/ckpt-*.h5.abandoned set aside by a resume from an older step
 *
 * Invariants: nothing here deletes a checkpoint at or newer than the one just written;
 * a file that cannot be used is renamed, never deleted; `latest` names a checkpoint that
 * exists, or does not exist. Everything here runs on one process (rank 0 of a run) and
 * knows no MPI: the trainer broadcasts its decisions. Functions return 0 or a negative
 * cz_status with err set; `log` (may be NULL) receives the lines a user should see. */
#ifndef CHAINZ_RUNSTATE_H
#define CHAINZ_RUNSTATE_H

#include <stddef.h>
#include <stdio.h>

#include "chainz/checkpoint.h"
#include "chainz/data.h"
#include "chainz/error.h"

/* ---- the run lock ---- */
typedef struct {
    int fd; /* -1: not held */
} cz_run_lock;

/* The longest name chainz appends to --out (checkpoints/ckpt-<step>.h5.tmp.<pid> and the
 * like): --out may have at most PATH_MAX - 1 - this many characters. */
#define CZ_RUN_LONGEST_NAME 64

/* Checks --out before anything is created (length against PATH_MAX and NAME_MAX, not a
 * file, not a dangling link), creates run_dir if needed, takes an exclusive flock on
 * run_dir/run.lock writing the holder's pid, host and start time into it, and checks
 * that run_dir and run_dir/checkpoints (when it exists) take new files.
 * @return 0, or CZ_EINVAL (an input error, exit 1) with the cause first: the holder when
 * another process has the lock, or the errno text; long paths are shown by their last 200
 * characters so the cause always fits the message. */
int cz_run_lock_acquire(cz_run_lock *lk, const char *run_dir, cz_error *err);
/* run_dir, and run_dir/checkpoints when it exists, take new files (a probe file is created
 * and removed). @return 0 or CZ_EINVAL naming the directory and the errno text. */
int cz_run_check_writable(const char *run_dir, cz_error *err);
/* Releases the lock (the file stays). NULL-safe, idempotent. */
void cz_run_lock_release(cz_run_lock *lk);

/* ---- checkpoints of a directory ---- */
typedef struct {
    long *steps; /* [n], newest first */
    size_t n;
} cz_ckpt_list;

/* The steps of every ckpt-<step>.h5 in dir (any number of entries), newest first; a missing
 * directory is an empty list. */
int cz_run_list(const char *ckpt_dir, cz_ckpt_list *l, cz_error *err);
void cz_run_list_free(cz_ckpt_list *l);

/* A checkpoint argument as users give it: a checkpoint file, a `latest` pointer file, a
 * checkpoints directory or a run directory (both: their latest). @return 0 with the
 * checkpoint's path in out; CZ_EINVAL when nothing is there or latest names a missing file. */
int cz_run_resolve(const char *arg, char *out, size_t len, cz_error *err);

/* As cz_run_resolve, but a directory gives its newest checkpoint that loads and verifies
 * (not necessarily the one `latest` names: a crash between the rename of a new checkpoint
 * and the update of `latest` leaves it one behind); nothing is renamed. Says on log which
 * file was chosen and why. CZ_EINVAL when none verifies. (chainz eval --model RUN_DIR) */
int cz_run_resolve_newest(const char *arg, char *out, size_t len, FILE *log, cz_error *err);

/* --resume auto: removes interrupted writes (ckpt-*.h5.tmp.*), tries the checkpoints
 * newest first and renames each one that does not load (*.unusable, with a line on log),
 * as it does a `latest` that is not a regular file (latest.unusable), then repairs `latest`. chosen = "" when none is usable (a fresh start). */
int cz_run_choose_auto(const char *ckpt_dir, char *chosen, size_t len, FILE *log, cz_error *err);

/* A resume from step `step`: checkpoints of later steps are renamed *.abandoned; `latest`
 * is repaired. */
int cz_run_set_aside_newer(const char *ckpt_dir, long step, FILE *log, cz_error *err);

/* Points `latest` at the newest checkpoint left in ckpt_dir, or removes it when none is. */
int cz_run_repair_latest(const char *ckpt_dir, cz_error *err);

/* A fresh run: CZ_EINVAL when ckpt_dir already holds checkpoints. */
int cz_run_check_fresh(const char *ckpt_dir, cz_error *err);

/* Writes c as ckpt_dir/ckpt-<step>.h5, then `latest`, then prunes: beyond the newest `keep`
 * of the steps <= c's step, except multiples of keep_every (0: none). */
int cz_run_save(const char *ckpt_dir, const cz_checkpoint *c, int keep, long keep_every, cz_error *err);
/* The pruning alone (exposed for tests). */
void cz_run_prune(const char *ckpt_dir, long written, int keep, long keep_every);

/* ---- compatibility of a checkpoint with this run ---- */
typedef struct {
    const cz_model_spec *spec;
    cz_optim_kind optim;
    const char *config_json;        /* this run's cz_config_json */
    const cz_data_identity *data;   /* this run's training data */
    const char *data_path;
    const char *blas_version, *blas_kernels;
    int world_size;
} cz_run_info;

/* The identity of an open data file (size of path, N, d, classes, label and row checksums). */
int cz_run_data_identity(cz_data *ds, const char *path, cz_data_identity *id, cz_error *err);

/* Refuses (CZ_EINVAL, naming the difference) a checkpoint whose model, optimizer, data
 * order (batch, seed, holdout, standardize, dropout) or data content differs from this
 * run; the configuration is compared field by field. On log: options that changed and
 * may change (epochs, lr, ...), a world size change, and a warning when the BLIS version
 * or kernel set differs (the last bits then differ from an uninterrupted run). */
int cz_run_check_compatible(const cz_run_info *run, const cz_checkpoint *c, const char *path, FILE *log,
                            cz_error *err);

/* metrics.h5 of this run? Compares the fields no resume may change (batch, seed, holdout,
 * standardize, dropout, tau, optim, layers) of two config JSONs; why = "" when they
 * agree (a field one side lacks is not compared), else names the first that differs.
 * @return 0 or CZ_ENOMEM. */
int cz_run_same_run(const char *mine_json, const char *theirs_json, char *why, size_t why_len);

/* ---- history.jsonl ---- */
/* The intact lines of epochs 1..epochs of a history.jsonl, whatever else it holds (cut,
 * duplicated, missing or foreign lines are skipped; the first line of an epoch wins):
 * rows[(ep - 1) * CZ_HISTORY_FIELDS ...] and have[ep - 1] = 1 for each. A missing or
 * non-regular file has none. @return the number of epochs found, or a negative cz_status. */
long cz_run_read_history(const char *path, long epochs, double *rows, unsigned char *have, cz_error *err);

/* Keeps the lines of epochs 1..epochs_done (atomically rewritten), dropping later ones.
 * When what is left would not be exactly epochs 1..epochs_done, each once, in order, and
 * each line complete (a deleted, cut or edited file, a FIFO), the file is left as it is and
 * why says what is wrong ("" otherwise): the caller sets it aside and rebuilds it. */
int cz_run_truncate_history(const char *path, long epochs_done, char *why, size_t why_len, cz_error *err);

/* ---- small files ---- */
/* 0 when path is a regular file or does not exist; CZ_EINVAL when it is a FIFO, device,
 * directory or socket (reading a FIFO blocks forever) or cannot be examined. */
int cz_run_regular_or_absent(const char *path, cz_error *err);

/* Creates a directory and its parents. */
int cz_run_mkdir(const char *path, cz_error *err);

#endif
