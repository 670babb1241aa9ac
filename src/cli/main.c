/* chainz: the command line. The only place that exits. Exit status: 0 done, 1 usage or
 * input error (the message names the file and place), 2 runtime failure, 3 drift flagged
 * (chainz predict --reference ... --fail-on-drift only: the predictions are written, and a
 * service acts on the status), 75 stopped on a signal after writing a checkpoint (a batch
 * script requeues on it). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chainz/config.h"
#include "chainz/dist.h"
#include "chainz/engine.h"
#include "chainz/export.h"
#include "chainz/metrics_read.h"
#include "chainz/predict.h"
#include "chainz/prep.h"
#include "chainz/protocol.h"
#include "chainz/train.h"
#include "inspect_internal.h"

enum { EXIT_USAGE = 1, EXIT_RUNTIME = 2, EXIT_REQUEUE = 75 /* EX_TEMPFAIL */ };

static int exit_code(int rc)
{
    return rc == 0 ? 0 : rc == CZ_EINVAL ? EXIT_USAGE : rc == CZ_ESTOPPED ? EXIT_REQUEUE : EXIT_RUNTIME;
}

/* The handler only sets the flag; the ranks agree on it at the next step boundary.
 * A second SIGINT (an impatient terminal user) ends the process at once. */
static void on_signal(int sig)
{
    cz_stop_requested = sig;
    if (sig == SIGINT) signal(SIGINT, SIG_DFL);
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

static void usage_main(FILE *f)
{
    fprintf(f,
            "usage: chainz COMMAND [OPTIONS]\n"
            "  train    train a CR network (or a baseline) on P ranks: mpirun -np P chainz train ...\n"
            "  eval     evaluate a checkpoint on a data set\n"
            "  predict  predict a batch (chainz-data, HDF5 or CSV) with the per-sample norms, and\n"
            "           watch it for drift against the training run (--reference RUN_DIR)\n"
            "  prep     convert text CSV (word vectors or hashing), numeric CSV, ARFF and IDX\n"
            "           files into chainz-data HDF5 sets, with stratified splits\n"
            "  tau      per-epoch gradient-norm statistics (tau = p99/mean) of runs; compare; plot\n"
            "  inspect  what a checkpoint, data set, metrics.h5 or run directory holds; checksums\n"
            "  protocol run a study (models x training-set sizes x seeds) from a JSON spec and\n"
            "           write its report with paired statistics (docs/PROTOCOL.md)\n"
            "  export   write a trained model's forward pass as an ONNX model (no MPI)\n"
            "  --version\n"
            "Run 'chainz COMMAND --help' for the options of a command.\n"
            "exit status: 0 done, 1 usage or input error, 2 runtime failure, 3 drift flagged (predict\n"
            "--fail-on-drift only), 75 checkpointed on a signal (train).\n");
}

static void usage_train(FILE *f)
{
    cz_config c;
    cz_config_defaults(&c);
    fprintf(f,
            "usage: mpirun -np P chainz train --data TRAIN.h5 --out RUN_DIR [options]\n"
            "data\n"
            "  --data FILE            training set (chainz-data HDF5)            required\n"
            "  --val FILE             validation set                              none\n"
            "  --holdout F            hold out fraction F of --data for validation %g\n"
            "  --no-standardize       use raw features (default: z-score with training statistics)\n"
            "  --clip-z Z             clip standardized features to [-Z, Z]: a near-constant feature\n"
            "                         cannot become a huge input to the cubic activations (0: off)  3\n"
            "  --holdout-split S      stratified (each class held out in proportion) or random  stratified\n"
            "  --out DIR              run directory: config.json, history.jsonl, checkpoints/  required\n"
            "model\n"
            "  --layers W1,W2,...     hidden widths                               %s\n"
            "  --act A[,A...]         poly|relu|tanh|gelu|identity, one or per layer  %s\n"
            "  --head H               classify|ordinal|regress                    the data's task\n"
            "  --dropout P            inverted dropout on hidden outputs          %g\n"
            "DREG\n"
            "  --dreg LAMBDA          constant DREG coefficient                   %g with poly,\n"
            "                         0 with any other activation (a baseline stays a baseline)\n"
            "  --dreg-schedule S:A:B  constant|linear|cosine|exp from A to B       constant --dreg\n"
            "  --dreg-range F:T       anneal between epochs F and T (or Ns:Ms steps)  whole run\n"
            "  --dreg-warmup E        lambda = 0 for E epochs (or Ns steps)       0\n"
            "  --dreg-mode M          how the Jacobian stream runs: exact (width d), gram (width\n"
            "                         n_1 < d: W_1^T = QR, the same penalty and gradients), probe\n"
            "                         (K random directions: unbiased, width K), auto: exact or\n"
            "                         gram up to width %d, else probe (logged)    auto\n"
            "  --dreg-probes K        directions per sample in probe mode (1..4096) %d\n"
            "optimizer\n"
            "  --optim O              adamw|sgd                                   %s\n"
            "  --lr X                 peak learning rate                          %g\n"
            "  --lr-schedule S        constant|linear|cosine (decay to --lr-min)  %s\n"
            "  --lr-min X             final learning rate of the decay           %g\n"
            "  --warmup-steps N       linear warmup from 0 to --lr                %ld\n"
            "  --clip-grad-norm C     scale the global averaged gradient down to L2 norm C when it\n"
            "                         is larger (0: off; the same on every rank, so exact stays\n"
            "                         exact; AdamW's update hardly changes, a spike's does)  %g\n"
            "  --weight-decay W       decoupled, on weights only                  %g\n"
            "  --momentum M           SGD momentum                                %g\n"
            "  --beta1 B --beta2 B    AdamW moments                               %g %g\n"
            "schedule and execution\n"
            "  --epochs E                                                         %d\n"
            "  --batch B              global batch (samples per optimizer step)   %ld\n"
            "  --micro-batch M        chunk computed at once (bounds memory; fixed\n"
            "                         whatever the rank count)                    %ld\n"
            "  --max-steps N          stop after N steps in total (0: no limit)   %ld\n"
            "  --seed S               init, shuffling, dropout, holdout           %llu\n"
            "  --threads T            BLIS threads per rank (1..%d, at most 4 x the node's\n"
            "                         cores; a warning when ranks per node x T exceed the cores)  %d\n"
            "  --max-memory SIZE      memory per rank the run may use, e.g. 6G (K, M, G, T = 1024^n);\n"
            "                         the run is refused if its estimate (parameters, gradients,\n"
            "                         moments, workspace with the Jacobian stream, buffers) exceeds\n"
            "                         it. Default: MemAvailable (or the cgroup's memory.max less its\n"
            "                         usage, if smaller) / ranks on the node, capped by ulimit -v\n"
            "  --kernels K            BLIS kernel set: auto (BLIS's choice; chainz's only where\n"
            "                         BLIS 0.9.0 would use generic kernels) or a name: haswell,\n"
            "                         zen3, skx, generic, ... (the last bits depend on it)  auto\n"
            "  --reduce exact|float   exact: bitwise identical for any rank count;\n"
            "                         float: plain MPI float sum (faster, rank-dependent rounding)  exact\n"
            "  --log-seconds S        interval of log lines without a terminal    %g\n"
            "  --no-tau               do not record the per-epoch gradient-norm histograms\n"
            "                         (RUN_DIR/metrics.h5; the layer-Jacobian families come from\n"
            "                         the DREG stream when it is exact or gram, else from exact\n"
            "                         norms of a seeded subsample of each epoch, named in the log)  recorded\n"
            "  --tau-jacobian-fraction F  that subsample's fraction (0: auto, at most about a\n"
            "                         quarter of a step's cost; the log says when that is fewer\n"
            "                         than 1000 samples an epoch)  0\n"
            "  --divergence-factor F  a step whose loss or DREG term exceeds F x its running level is\n"
            "                         explained in a warning (term, layer, step, what to try); F^2 x\n"
            "                         stops the run before the update (0: off)   100\n"
            "checkpoints and resume (RUN_DIR/checkpoints/ckpt-<step>.h5, pointer 'latest')\n"
            "  --ckpt-every-steps N   also checkpoint every N steps (0: off)      %ld\n"
            "  --ckpt-every-epochs E  checkpoint every E epochs (0: off)          %d\n"
            "  --keep K               keep the newest K checkpoints               %d\n"
            "  --keep-every M         also keep every checkpoint whose step is a multiple of M  %ld\n"
            "  --resume auto|PATH     auto: newest checkpoint of --out that verifies (none: start\n"
            "                         fresh); PATH: that checkpoint               none\n"
            "signals: SIGTERM, SIGUSR1 (SLURM's warning) and SIGINT write a checkpoint at the next\n"
            "step boundary on every rank and exit with status 75 (requeue me); a second SIGINT\n"
            "stops at once. At an epoch's end the validation pass and the epoch checkpoint come\n"
            "first (worst case: launch/train.sbatch).\n"
            "numbers must be finite (nan and inf are refused); exit status 0 done, 1 usage or input\n"
            "error (options, data files, --out), 2 runtime failure, 75 checkpointed on a signal.\n",
            c.holdout, c.layers, c.acts, c.model.dropout, c.dreg, CZ_STREAM_AUTO_WIDTH, c.dreg_probes,
            cz_optim_name(c.optim.kind), c.lr,
            cz_shape_name(c.lr_shape), c.lr_min, c.warmup_steps, c.clip_grad_norm, c.optim.weight_decay,
            c.optim.momentum, c.optim.beta1, c.optim.beta2, c.epochs, c.batch, c.micro_batch,
            c.max_steps, (unsigned long long)c.seed, CZ_MAX_THREADS, c.threads, c.log_seconds, c.ckpt_every_steps,
            c.ckpt_every_epochs, c.keep, c.keep_every);
}

static void usage_eval(FILE *f)
{
    fprintf(f,
            "usage: mpirun -np P chainz eval --model CKPT.h5|RUN_DIR --data TEST.h5 [options]\n"
            "  --model PATH           checkpoint file, or a run directory (its checkpoints/latest)  required\n"
            "  --data FILE            evaluation set (chainz-data HDF5)           required\n"
            "  --json FILE            also write the report as JSON               none\n"
            "  --tau                  also the gradient-norm statistics on this set: per-sample\n"
            "                         input gradient, parameter gradient and layer Jacobian\n"
            "                         norms, with p50/p90/p99/max and tau = p99/mean    off\n"
            "  --tau-out FILE.h5      also write every sample's norms (implies --tau): /row,\n"
            "                         /label, /norms/<family> float64, rows in file order,\n"
            "                         the same bytes for any number of ranks   none\n"
            "  --micro-batch M                                                    256\n"
            "  --threads T            BLIS threads per rank (1..%d)              1\n"
            "  --kernels K            BLIS kernel set (see chainz train --help)   auto\n"
            "  --max-memory SIZE      memory per rank, e.g. 2G (default: what the node has\n"
            "                         available / ranks on the node); refused above it\n",
            CZ_MAX_THREADS);
}

/* strict number parsing: the whole argument must be a finite number (nan and inf would
 * slip through every range check written as a comparison) */
/* plain decimal text only: strtod would also take hex floats (0x1p-10) and leading blanks */
static int decimal_text(const char *s)
{
    if (!*s) return 0;
    for (const char *c = s; *c; c++)
        if (!strchr("0123456789.eE+-", *c)) return 0;
    return 1;
}

static int num(const char *opt, const char *s, double *out, cz_error *err)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    if (end == s || *end)
        return cz_error_set(err, CZ_EINVAL, "%s: '%s' is not a number", opt, s);
    if (!isfinite(*out))
        return cz_error_set(err, CZ_EINVAL, "%s: '%s' is not a finite number", opt, s);
    /* 1e-400 reads as 0, which means "off" or "auto" to several options */
    if (*out == 0 && errno == ERANGE)
        return cz_error_set(err, CZ_EINVAL, "%s: '%s' is too small for a double (it would read as 0)", opt, s);
    if (!decimal_text(s))
        return cz_error_set(err, CZ_EINVAL, "%s: '%s' is not a plain decimal number", opt, s);
    return 0;
}

/* a byte count with an optional K, M, G or T suffix (powers of 1024), e.g. 2G or 512M */
static int bytes_arg(const char *opt, const char *s, size_t *out, cz_error *err)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    int sh = 0;
    if (end != s && *end && !end[1])
        sh = *end == 'K' || *end == 'k' ? 10 : *end == 'M' || *end == 'm' ? 20 : *end == 'G' || *end == 'g' ? 30
           : *end == 'T' || *end == 't' ? 40 : -1;
    if (end == s || s[0] == '-' || errno || sh < 0 || (*end && sh == 0) || v == 0 || v > (SIZE_MAX >> sh))
        return cz_error_set(err, CZ_EINVAL, "%s: '%s' is not a size in bytes > 0 (e.g. 4096, 512M, 2G)", opt, s);
    *out = (size_t)v << sh;
    return 0;
}

/* strict integer parsing in [lo, hi] */
static int inum(const char *opt, const char *s, long long lo, long long hi, long long *out, cz_error *err)
{
    char *end;
    errno = 0;
    *out = strtoll(s, &end, 10);
    if (end == s || *end || errno || *out < lo || *out > hi || !decimal_text(s))
        return cz_error_set(err, CZ_EINVAL, "%s: '%s' is not an integer in %lld..%lld", opt, s, lo, hi);
    return 0;
}

/* copies a string option into its fixed buffer; a value that does not fit is refused, never
 * cut (a cut --layers or --data would silently be another run) */
static int str_opt(const char *opt, char *dst, size_t size, const char *v, cz_error *err)
{
    if (strlen(v) >= size)
        return cz_error_set(err, CZ_EINVAL, "%s: the value is %zu characters long, at most %zu are accepted",
                            opt, strlen(v), size - 1);
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int parse_train(int argc, char **argv, cz_config *c, int *head_given, cz_error *err)
{
    enum {
        O_DATA = 256, O_VAL, O_HOLDOUT, O_NOSTD, O_OUT, O_LAYERS, O_ACT, O_HEAD, O_DROPOUT, O_DREG,
        O_DSCHED, O_DRANGE, O_DWARM, O_OPTIM, O_LR, O_LRS, O_LRMIN, O_CLIP, O_WARM, O_WD, O_MOM, O_B1, O_B2,
        O_EPOCHS, O_BATCH, O_MB, O_MAXSTEPS, O_SEED, O_THREADS, O_REDUCE, O_LOGS, O_HELP,
        O_CKS, O_CKE, O_KEEP, O_KEEPEVERY, O_RESUME, O_NOTAU, O_MAXMEM, O_CLIPZ, O_HSPLIT, O_DIVF, O_DMODE, O_DPROBES, O_TAUFRAC
    };
    static const struct option opts[] = {
        {"data", 1, 0, O_DATA}, {"val", 1, 0, O_VAL}, {"holdout", 1, 0, O_HOLDOUT},
        {"no-standardize", 0, 0, O_NOSTD}, {"out", 1, 0, O_OUT}, {"layers", 1, 0, O_LAYERS},
        {"act", 1, 0, O_ACT}, {"head", 1, 0, O_HEAD}, {"dropout", 1, 0, O_DROPOUT},
        {"dreg", 1, 0, O_DREG}, {"dreg-schedule", 1, 0, O_DSCHED}, {"dreg-range", 1, 0, O_DRANGE},
        {"dreg-warmup", 1, 0, O_DWARM}, {"optim", 1, 0, O_OPTIM}, {"lr", 1, 0, O_LR},
        {"lr-schedule", 1, 0, O_LRS}, {"lr-min", 1, 0, O_LRMIN}, {"clip-grad-norm", 1, 0, O_CLIP}, {"warmup-steps", 1, 0, O_WARM},
        {"weight-decay", 1, 0, O_WD}, {"momentum", 1, 0, O_MOM}, {"beta1", 1, 0, O_B1},
        {"beta2", 1, 0, O_B2}, {"epochs", 1, 0, O_EPOCHS}, {"batch", 1, 0, O_BATCH},
        {"micro-batch", 1, 0, O_MB}, {"max-steps", 1, 0, O_MAXSTEPS}, {"seed", 1, 0, O_SEED},
        {"threads", 1, 0, O_THREADS}, {"reduce", 1, 0, O_REDUCE}, {"log-seconds", 1, 0, O_LOGS},
        {"ckpt-every-steps", 1, 0, O_CKS}, {"ckpt-every-epochs", 1, 0, O_CKE},
        {"keep", 1, 0, O_KEEP}, {"no-tau", 0, 0, O_NOTAU}, {"keep-every", 1, 0, O_KEEPEVERY}, {"resume", 1, 0, O_RESUME},
        {"max-memory", 1, 0, O_MAXMEM}, {"clip-z", 1, 0, O_CLIPZ}, {"holdout-split", 1, 0, O_HSPLIT},
        {"divergence-factor", 1, 0, O_DIVF}, {"dreg-mode", 1, 0, O_DMODE}, {"dreg-probes", 1, 0, O_DPROBES},
        {"tau-jacobian-fraction", 1, 0, O_TAUFRAC},
        {"help", 0, 0, O_HELP}, {0, 0, 0, 0}};
    cz_config_defaults(c);
    *head_given = 0;
    optind = 1;
    opterr = 0;
    int o, rc = 0, li = 0;
    while (!rc && (o = getopt_long(argc, argv, "", opts, &li)) != -1) {
        double v = 0;
        char name[64];
        snprintf(name, sizeof name, "--%s", opts[li].name);
        switch (o) {
        case O_DATA: rc = str_opt("--data", c->data, sizeof c->data, optarg, err); break;
        case O_VAL: rc = str_opt("--val", c->val, sizeof c->val, optarg, err); break;
        case O_OUT: rc = str_opt("--out", c->out, sizeof c->out, optarg, err); break;
        case O_NOSTD: c->standardize = 0; break;
        case O_NOTAU: c->tau = 0; break;
        case O_LAYERS: rc = str_opt("--layers", c->layers, sizeof c->layers, optarg, err); break;
        case O_ACT: rc = str_opt("--act", c->acts, sizeof c->acts, optarg, err); break;
        case O_HEAD:
            if (cz_head_parse(optarg, &c->model.head))
                rc = cz_error_set(err, CZ_EINVAL, "--head '%s': expected classify, ordinal or regress", optarg);
            *head_given = 1;
            break;
        case O_DSCHED: rc = str_opt("--dreg-schedule", c->dreg_schedule, sizeof c->dreg_schedule, optarg, err); break;
        case O_DRANGE: rc = str_opt("--dreg-range", c->dreg_range, sizeof c->dreg_range, optarg, err); break;
        case O_DWARM: rc = str_opt("--dreg-warmup", c->dreg_warmup, sizeof c->dreg_warmup, optarg, err); break;
        case O_OPTIM:
            if (cz_optim_parse(optarg, &c->optim.kind))
                rc = cz_error_set(err, CZ_EINVAL, "--optim '%s': expected adamw or sgd", optarg);
            break;
        case O_LRS:
            if (cz_shape_parse(optarg, &c->lr_shape) || c->lr_shape == CZ_SHAPE_EXP)
                rc = cz_error_set(err, CZ_EINVAL, "--lr-schedule '%s': expected constant, linear or cosine", optarg);
            break;
        case O_REDUCE:
            if (!strcmp(optarg, "exact")) c->reduce = CZ_REDUCE_EXACT;
            else if (!strcmp(optarg, "float")) c->reduce = CZ_REDUCE_FLOAT;
            else rc = cz_error_set(err, CZ_EINVAL, "--reduce '%s': expected exact or float", optarg);
            break;
        case O_RESUME: rc = str_opt("--resume", c->resume, sizeof c->resume, optarg, err); break;
        case O_HSPLIT:
            if (!strcmp(optarg, "stratified")) c->holdout_random = 0;
            else if (!strcmp(optarg, "random")) c->holdout_random = 1;
            else rc = cz_error_set(err, CZ_EINVAL, "--holdout-split '%s': expected stratified or random", optarg);
            break;
        case O_MAXMEM: rc = bytes_arg(name, optarg, &c->max_memory, err); break;
        case O_DMODE:
            if (cz_stream_mode_parse(optarg, &c->dreg_mode))
                rc = cz_error_set(err, CZ_EINVAL, "--dreg-mode '%s': expected exact, gram, probe or auto", optarg);
            break;
        case O_DPROBES: {
            long long iv = 0;
            if (!(rc = inum(name, optarg, 1, 4096, &iv, err))) c->dreg_probes = (int)iv;
            c->dreg_probes_given = 1;
            break;
        }
        case O_HELP: return 1;
        case '?':
            return cz_error_set(err, CZ_EINVAL, "unknown option or missing value: %s (see chainz train --help)",
                                argv[optind - 1]);
        case O_SEED: {
            char *end;
            errno = 0;
            unsigned long long seed = strtoull(optarg, &end, 10);
            if (end == optarg || *end || errno || optarg[0] == '-')
                rc = cz_error_set(err, CZ_EINVAL, "--seed: '%s' is not an integer in 0..2^64-1", optarg);
            c->seed = seed;
            break;
        }
        case O_WARM: case O_EPOCHS: case O_BATCH: case O_MB: case O_MAXSTEPS: case O_THREADS:
        case O_CKS: case O_CKE: case O_KEEP: case O_KEEPEVERY: {
            long long iv = 0;
            /* sizes stay far below overflow of the workspace arithmetic; the range named in
             * the message is the range accepted */
            long long hi = (o == O_EPOCHS || o == O_CKE || o == O_KEEP) ? 1000000
                         : o == O_THREADS ? CZ_MAX_THREADS : 1LL << 40;
            long long lo = (o == O_EPOCHS || o == O_BATCH || o == O_MB || o == O_THREADS || o == O_KEEP) ? 1 : 0;
            if ((rc = inum(name, optarg, lo, hi, &iv, err))) {
                if (o == O_THREADS)
                    cz_error_set(err, CZ_EINVAL, "--threads: '%s' is not an integer in 1..%d (BLIS threads "
                                 "per rank: at most %d, and at most 4 x the cores of a node)", optarg,
                                 CZ_MAX_THREADS, CZ_MAX_THREADS);
                break;
            }
            switch (o) {
            case O_WARM: c->warmup_steps = (long)iv; break;
            case O_EPOCHS: c->epochs = (int)iv; break;
            case O_BATCH: c->batch = (long)iv; break;
            case O_MB: c->micro_batch = (long)iv; break;
            case O_MAXSTEPS: c->max_steps = (long)iv; break;
            case O_THREADS: c->threads = (int)iv; break;
            case O_CKS: c->ckpt_every_steps = (long)iv; break;
            case O_CKE: c->ckpt_every_epochs = (int)iv; break;
            case O_KEEP: c->keep = (int)iv; break;
            default: c->keep_every = (long)iv; break;
            }
            break;
        }
        default:
            rc = num(name, optarg, &v, err);
            if (rc) break;
            switch (o) {
            case O_HOLDOUT: c->holdout = v; break;
            case O_DROPOUT: c->model.dropout = v; break;
            case O_DREG: c->dreg = v; c->dreg_by_default = 0; break;
            case O_LR: c->lr = v; break;
            case O_LRMIN: c->lr_min = v; break;
            case O_CLIP: c->clip_grad_norm = v; break;
            case O_CLIPZ: c->clip_z = v; c->clip_z_given = 1; break;
            case O_DIVF: c->divergence_factor = v; break;
            case O_TAUFRAC: c->tau_jacobian_fraction = v; break;
            case O_WD: c->optim.weight_decay = v; break;
            case O_MOM: c->optim.momentum = v; break;
            case O_B1: c->optim.beta1 = v; break;
            case O_B2: c->optim.beta2 = v; break;
            case O_LOGS: c->log_seconds = v; break;
            }
        }
    }
    if (rc) return rc;
    if (optind < argc) return cz_error_set(err, CZ_EINVAL, "unexpected argument '%s'", argv[optind]);
    if (!c->data[0]) return cz_error_set(err, CZ_EINVAL, "--data is required (see chainz train --help)");
    if (!c->out[0]) return cz_error_set(err, CZ_EINVAL, "--out is required (see chainz train --help)");
    if (c->epochs < 1) return cz_error_set(err, CZ_EINVAL, "--epochs must be >= 1");
    if (c->batch < 1 || c->micro_batch < 1)
        return cz_error_set(err, CZ_EINVAL, "--batch and --micro-batch must be >= 1");
    if (c->threads < 1) return cz_error_set(err, CZ_EINVAL, "--threads must be >= 1");
    if (c->keep < 1) return cz_error_set(err, CZ_EINVAL, "--keep must be >= 1");
    if (c->ckpt_every_steps < 0 || c->ckpt_every_epochs < 0 || c->keep_every < 0)
        return cz_error_set(err, CZ_EINVAL, "checkpoint cadences must be >= 0");
    if (c->holdout < 0 || c->holdout >= 1) return cz_error_set(err, CZ_EINVAL, "--holdout must be in [0, 1)");
    if (c->dreg < 0) return cz_error_set(err, CZ_EINVAL, "--dreg must be >= 0");
    if (!(c->lr > 0) || !isfinite(c->lr)) return cz_error_set(err, CZ_EINVAL, "--lr must be > 0");
    if (!(c->optim.beta1 >= 0 && c->optim.beta1 < 1) || !(c->optim.beta2 >= 0 && c->optim.beta2 < 1))
        return cz_error_set(err, CZ_EINVAL, "--beta1 and --beta2 must be in [0, 1)");
    if (!(c->optim.momentum >= 0 && c->optim.momentum < 1))
        return cz_error_set(err, CZ_EINVAL, "--momentum must be in [0, 1)");
    if (!(c->optim.weight_decay >= 0) || !(c->lr_min >= 0))
        return cz_error_set(err, CZ_EINVAL, "--weight-decay and --lr-min must be >= 0");
    if (c->model.dropout < 0 || c->model.dropout >= 1)
        return cz_error_set(err, CZ_EINVAL, "--dropout must be in [0, 1)");
    if (c->lr_min > c->lr)
        return cz_error_set(err, CZ_EINVAL, "--lr-min %g is above --lr %g: the schedule decays from --lr to --lr-min",
                            c->lr_min, c->lr);
    if (!(c->log_seconds > 0)) return cz_error_set(err, CZ_EINVAL, "--log-seconds must be > 0");
    if (!(c->clip_grad_norm >= 0)) return cz_error_set(err, CZ_EINVAL, "--clip-grad-norm must be >= 0 (0: off)");
    if (!(c->clip_z == 0 || (c->clip_z >= 0.5 && c->clip_z <= 1e6)))
        return cz_error_set(err, CZ_EINVAL, "--clip-z must be 0 (off) or in [0.5, 1e6] (standard deviations)");
    if (c->clip_z_given && c->clip_z > 0 && !c->standardize)
        return cz_error_set(err, CZ_EINVAL, "--clip-z clips z-scores, which --no-standardize turns off: use one");
    if (!c->standardize) c->clip_z = 0;
    if (c->dreg_probes_given && (c->dreg_mode == CZ_STREAM_EXACT || c->dreg_mode == CZ_STREAM_GRAM))
        return cz_error_set(err, CZ_EINVAL, "--dreg-probes applies to --dreg-mode probe (or auto, when it picks "
                            "probe), not to %s", cz_stream_mode_name(c->dreg_mode));
    if (!(c->tau_jacobian_fraction >= 0 && c->tau_jacobian_fraction <= 1))
        return cz_error_set(err, CZ_EINVAL, "--tau-jacobian-fraction must be in (0, 1] (0: auto)");
    if (!(c->divergence_factor == 0 || c->divergence_factor >= 2))
        return cz_error_set(err, CZ_EINVAL, "--divergence-factor must be 0 (off) or >= 2");
    return cz_config_parse_model(c, err);
}

static int parse_eval(int argc, char **argv, cz_eval_opts *o, cz_error *err)
{
    static const struct option opts[] = {{"model", 1, 0, 'm'}, {"data", 1, 0, 'd'},
                                         {"json", 1, 0, 'j'}, {"micro-batch", 1, 0, 'b'},
                                         {"threads", 1, 0, 't'}, {"tau", 0, 0, 'T'},
                                         {"max-memory", 1, 0, 'M'}, {"tau-out", 1, 0, 'O'},
                                         {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    *o = (cz_eval_opts){.model = "", .data = "", .json = "", .tau_out = "", .micro_batch = 256, .threads = 1};
    optind = 1;
    opterr = 0;
    int c;
    long long v;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'd': o->data = optarg; break;
        case 'j': o->json = optarg; break;
        case 'b':
            if (inum("--micro-batch", optarg, 1, 1LL << 40, &v, err)) return CZ_EINVAL;
            o->micro_batch = (long)v;
            break;
        case 't':
            if (inum("--threads", optarg, 1, CZ_MAX_THREADS, &v, err)) return CZ_EINVAL;
            o->threads = (int)v;
            break;
        case 'M':
            if (bytes_arg("--max-memory", optarg, &o->max_memory, err)) return CZ_EINVAL;
            break;
        case 'T': o->tau = 1; break;
        case 'O':
            if (!optarg[0]) return cz_error_set(err, CZ_EINVAL, "--tau-out: empty file name");
            o->tau_out = optarg;
            o->tau = 1;
            break;
        case 'h': return 1;
        default:
            return cz_error_set(err, CZ_EINVAL, "unknown option or missing value: %s (see chainz eval --help)",
                                argv[optind - 1]);
        }
    }
    if (!o->model[0] || !o->data[0])
        return cz_error_set(err, CZ_EINVAL, "--model and --data are required (see chainz eval --help)");
    if (o->micro_batch < 1 || o->threads < 1)
        return cz_error_set(err, CZ_EINVAL, "--micro-batch and --threads must be >= 1");
    return 0;
}

/* --kernels NAME|auto (train and eval) is taken out of argv before the command's own
 * parser runs, because BLIS's kernel set must be fixed before anything uses BLIS. */
static const char *take_kernels_option(int *argc, char **argv)
{
    const char *val = NULL;
    int out = 0;
    for (int i = 0; i < *argc; i++) {
        if (!strcmp(argv[i], "--kernels") && i + 1 < *argc) {
            val = argv[++i];
            continue;
        }
        if (!strncmp(argv[i], "--kernels=", 10)) {
            val = argv[i] + 10;
            continue;
        }
        argv[out++] = argv[i];
    }
    *argc = out;
    argv[out] = NULL;
    return val;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage_main(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("chainz %s\n", CHAINZ_VERSION);
        return 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "prep")) return cz_cmd_prep(argc - 1, argv + 1);
    if (!strcmp(cmd, "tau")) return cz_cmd_tau(argc - 1, argv + 1);
    if (!strcmp(cmd, "inspect")) return cz_cmd_inspect(argc - 1, argv + 1);
    if (!strcmp(cmd, "protocol")) return cz_cmd_protocol(argc - 1, argv + 1);
    if (!strcmp(cmd, "export")) return cz_cmd_export(argc - 1, argv + 1);
    if (strcmp(cmd, "train") && strcmp(cmd, "eval") && strcmp(cmd, "predict")) {
        fprintf(stderr, "chainz: unknown command '%s'\n", cmd);
        usage_main(stderr);
        return EXIT_USAGE;
    }
    /* train: a signal during start-up (MPI_Init, reading the data, resume) must not kill a
     * rank with the default action (exit 138 instead of 75) or be lost; the flag is acted on
     * at the first step boundary like any other */
    if (!strcmp(cmd, "train")) install_signals();
    const char *kernels = take_kernels_option(&argc, argv);
    cz_dist d;
    cz_error err = {0};
    if (cz_dist_init(&argc, &argv, &d, &err)) {
        fprintf(stderr, "chainz: %s\n", err.msg);
        return EXIT_RUNTIME;
    }
    /* every rank decides alike, so a bad --kernels fails on all of them together */
    if (cz_engine_init(kernels, &err)) {
        if (d.rank == 0) fprintf(stderr, "chainz %s: error: %s\n", cmd, err.msg);
        cz_dist_finalize();
        return EXIT_USAGE;
    }
    if (!strcmp(cmd, "predict")) { /* its own messages and statuses (cmd_predict.c) */
        int st = cz_cmd_predict(argc - 1, argv + 1, &d);
        cz_dist_finalize();
        return st;
    }
    /* options are parsed identically on every rank, so all ranks agree on a usage error */
    int rc, head_given = 0;
    cz_config cfg;
    cz_eval_opts eo;
    if (!strcmp(cmd, "train")) {
        rc = parse_train(argc - 1, argv + 1, &cfg, &head_given, &err);
        if (rc == 1) {
            if (d.rank == 0) usage_train(stdout);
            cz_dist_finalize();
            return 0;
        }
        if (!rc) {
            rc = cz_train(&cfg, head_given, &d, &err);
        }
    } else {
        rc = parse_eval(argc - 1, argv + 1, &eo, &err);
        if (rc == 1) {
            if (d.rank == 0) usage_eval(stdout);
            cz_dist_finalize();
            return 0;
        }
        if (!rc) rc = cz_eval(&eo, &d, &err);
    }
    if (rc == CZ_ESTOPPED && d.rank == 0) fprintf(stderr, "chainz %s: %s\n", cmd, err.msg);
    else if (rc && d.rank == 0) fprintf(stderr, "chainz %s: error: %s\n", cmd, err.msg);
    cz_dist_finalize();
    return exit_code(rc);
}
