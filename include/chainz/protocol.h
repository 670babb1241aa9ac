/* chainz protocol: a "Fair Fight" study (docs/PROTOCOL.md). A spec (JSON, see
 * cz_proto_spec_load) names the data, the seeds, the training-set sizes, the models and
 * the budget; the study is the grid of cells model x fraction x seed. A cell's work: make
 * the seed's stratified split (and the fraction's nested subsample of its train part)
 * with `chainz prep`, train the model (every grid point of its grid, chosen on the
 * validation split only), evaluate the chosen run on the test split with `chainz eval
 * --json`, and write CELL/result.json atomically. The report reads the result files.
 *
 * Cell index I = (model * fractions + fraction) * seeds + seed, in spec order; its folder
 * RUN_ROOT/<model>/<fraction label>/seed-<s>. Everything here returns 0 or a negative cz
 * code with a message; src/cli/cmd_protocol.c decides the exit status. */
#ifndef CHAINZ_PROTOCOL_H
#define CHAINZ_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "chainz/error.h"

#define CZ_PROTO_PATH 4096

typedef struct {
    char label[64];     /* folder name and report label: frac-0.25, count-32, per-class-16-16 */
    double fraction;    /* (0, 1] when count == 0 and per_class == NULL */
    long count;         /* > 0: exact total */
    long *per_class;    /* exact counts per class, or NULL */
    int n_per_class;
} cz_proto_fraction;

typedef struct {
    char *name;
    char **args;        /* its own chainz train options */
    int n_args;
    char **grid_keys;   /* train options without "--" (e.g. "dreg"), in spec order */
    char ***grid_vals;  /* [key][value] as written in the spec */
    int *n_grid_vals;
    int n_grid_keys;
    int n_points;       /* product of the value counts (1 without a grid) */
} cz_proto_model;

enum { CZ_PROTO_DATA_FILES, CZ_PROTO_DATA_PREP };
enum { CZ_PROTO_METRIC_ACC, CZ_PROTO_METRIC_MAE };

typedef struct {
    char path[CZ_PROTO_PATH];      /* the spec file as given */
    char dir[CZ_PROTO_PATH];       /* its folder: relative paths in the spec are resolved here */
    char name[128];
    char run_root[CZ_PROTO_PATH];
    int data_kind;
    char prep_format[16];          /* arff, idx, numeric, csv */
    char *prep_inputs[2];          /* absolute or spec-relative resolved paths */
    int n_prep_inputs;
    char **prep_args;              /* extra chainz prep options */
    int n_prep_args;
    char *files[3];                /* data files mode: train, val (may be NULL), test */
    double split[3];               /* train, val, test */
    uint64_t *seeds;
    int n_seeds;
    cz_proto_fraction *fractions;
    int n_fractions;
    cz_proto_model *models;
    int n_models;
    long epochs, max_steps;        /* 0: not given */
    char **train_args;             /* common chainz train options */
    int n_train_args;
    int ranks, threads;
    int metric;                    /* CZ_PROTO_METRIC_* */
    int tau;
    double alpha;
    char slurm_time[32], slurm_partition[64];
} cz_proto_spec;

/* Reads and checks a spec; every error names the file, the line and the key.
 * @return 0, CZ_EINVAL, CZ_EIO, CZ_ENOMEM. */
int cz_proto_spec_load(cz_proto_spec *s, const char *path, cz_error *err);
void cz_proto_spec_free(cz_proto_spec *s);

size_t cz_proto_cells(const cz_proto_spec *s);
void cz_proto_cell_coords(const cz_proto_spec *s, size_t I, int *model, int *fraction, int *seed);
/* RUN_ROOT/<model>/<fraction>/seed-<s> */
int cz_proto_cell_dir(const cz_proto_spec *s, size_t I, char *buf, size_t len);
/* What the cell's result depends on, as one line of text (stored in result.json as "key";
 * a result whose key differs was made by another spec). */
int cz_proto_cell_key(const cz_proto_spec *s, size_t I, char *buf, size_t len);
/* The grid point g's train options (--KEY VALUE pairs) into argv (at most 2 * keys
 * entries, pointers into the spec), and "dreg=0.01 lr=0.003" into desc. Returns the count. */
int cz_proto_grid_point(const cz_proto_model *m, int g, const char **argv, char *desc, size_t len);

/* 0: no result; 1: result.json present with this spec's key; CZ_EINVAL: present with
 * another key (message names the folder and both keys' first difference). */
int cz_proto_cell_done(const cz_proto_spec *s, size_t I, cz_error *err);

/* Runs cell I (its data, training, selection, evaluation, result.json); self is the chainz
 * binary. Prints one line per step to stdout.
 * @return 0, CZ_ESTOPPED (a signal stopped training after a checkpoint), CZ_EINVAL,
 * CZ_ERUNTIME (a child failed: the message names its log), CZ_EIO. */
int cz_proto_run_task(const cz_proto_spec *s, size_t I, const char *self, cz_error *err);

/* Runs every unfinished cell, `jobs` at a time, each as `self protocol SPEC --task I`.
 * *failed receives the number of cells that failed. @return 0, CZ_ESTOPPED, CZ_ERUNTIME. */
int cz_proto_run_local(const cz_proto_spec *s, int jobs, const char *self, int *failed, cz_error *err);

/* Writes RUN_ROOT/slurm/{tasks.txt, protocol.sbatch, report.sbatch}; with submit, submits
 * the unfinished cells as one array job and the report as a job depending on it
 * (afterok). @return 0, CZ_EIO, CZ_ERUNTIME (sbatch failed). */
int cz_proto_slurm(const cz_proto_spec *s, const char *self, int submit, cz_error *err);

/* Writes RUN_ROOT/report.md, report.csv and report.png (when gnuplot is found) from the
 * cells' result files. *missing receives the cells without a result (listed in the
 * report). @return 0, CZ_EIO, CZ_EINVAL (a result file that does not parse). */
int cz_proto_report(const cz_proto_spec *s, size_t *missing, cz_error *err);

/* the `chainz protocol` command (src/cli/cmd_protocol.c): returns the exit status */
int cz_cmd_protocol(int argc, char **argv);

/* ---- helpers shared by the protocol modules (src/protocol) ---- */

/* mkdir -p */
int cz_proto_mkdirs(const char *path, cz_error *err);
/* Writes text to path atomically (path.tmp.<pid>, fsync, rename, fsync of the folder). */
int cz_proto_write_atomic(const char *path, const char *text, size_t len, cz_error *err);
/* Spawns argv (argv[0] a path, no shell) with stdout and stderr appended to log (NULL:
 * inherited), waits, forwarding SIGINT/SIGTERM/SIGUSR1 (as SIGUSR1 to mpirun). Returns
 * the exit status, 128 + signal when killed, or a negative cz code. */
int cz_proto_spawn(char *const argv[], const char *log, cz_error *err);
/* 1 once SIGINT, SIGTERM or SIGUSR1 arrived (after cz_proto_signals_install) */
int cz_proto_signalled(void);
void cz_proto_signals_install(void);

#endif
