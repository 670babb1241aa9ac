/* Memory and core budget of a rank, decided before anything large is allocated.
 *
 * Sizes come from untrusted files and options, so every product is checked
 * (cz_size_mul/cz_size_add) and the memory a rank will need is estimated from the model
 * and the options (parameters, gradient, exact accumulator, optimizer moments, the
 * engine's workspace with the Jacobian stream B*d*sum(n_l), chunk buffers, row indices,
 * labels, histograms). A run whose estimate exceeds the limit is refused with both
 * figures. The limit per rank is --max-memory when given, otherwise the memory the node
 * has available (MemAvailable, the cgroup's memory.max minus its usage, whichever is
 * smaller) divided by the ranks on the node, capped by the process's RLIMIT_AS.
 * Pure: no MPI (the caller counts the ranks of its node), no HDF5. */
#ifndef CHAINZ_BUDGET_H
#define CHAINZ_BUDGET_H

#include <stddef.h>
#include "chainz/error.h"
#include "chainz/engine.h"
#include "chainz/model.h"

/* *out = a * b (a + b). @return 0, or -1 on overflow (then *out = SIZE_MAX). */
int cz_size_mul(size_t a, size_t b, size_t *out);
int cz_size_add(size_t a, size_t b, size_t *out);

typedef struct {
    size_t params;     /* parameters, gradient, reduction buffer, optimizer moments */
    size_t reduce;     /* the reducer's partial sums and exchange buffers (reducer.h), per-chunk scalars */
    size_t workspace;  /* engine workspace: value stream and Jacobian stream */
    size_t data;       /* labels, row indices, chunk buffers, feature statistics */
    size_t tau;        /* histograms */
    size_t total;      /* the sum; SIZE_MAX when a size overflowed */
    int overflow;      /* a product did not fit in size_t */
} cz_mem_estimate;

typedef struct {
    const cz_model *m;
    size_t micro_batch, batch;  /* batch: global batch (training), 0 for eval */
    size_t rows;                /* rows of the data file (labels and row indices) */
    size_t train_rows;          /* of them, the training rows (without a holdout; 0: rows) */
    size_t opt_moments;         /* 2 for AdamW, 1 for SGD */
    int exact;                  /* --reduce exact */
    int ranks;                  /* ranks of the run (0: 1) */
    int tau;                    /* histograms recorded */
    int tau_norms;              /* per-sample norms kept and gathered (eval --tau-out) */
    size_t confusion;           /* classes K of an evaluation (K x K counts), else 0 */
    cz_stream_spec stream;      /* the workspace's Jacobian stream (zero: none) */
    cz_stream_mode tau_sampled; /* the layer-Jacobian subsample's scratch (chainz/jacnorm.h) at
                                 * width d (EXACT) or n_1 (GRAM), AUTO: the larger of the
                                 * two (not yet planned); NONE: none */
} cz_mem_request;

/* Fills e (never fails; an overflow sets e->overflow and total = SIZE_MAX). */
void cz_mem_estimate_run(const cz_mem_request *r, cz_mem_estimate *e);

/* The per-rank memory limit: max_memory if > 0, else what the node has available divided
 * by local_ranks (>= 1), capped by RLIMIT_AS. source receives where the figure comes
 * from, e.g. "--max-memory" or "MemAvailable 7.8 GB / 2 ranks". 0 when nothing is known. */
size_t cz_mem_limit(size_t max_memory, int local_ranks, char *source, size_t len);

/* CZ_EINVAL naming the estimate, its largest parts and the limit when e exceeds limit
 * (limit 0: unknown, never refused). */
int cz_mem_check(const cz_mem_estimate *e, size_t limit, const char *source, cz_error *err);
/* cz_mem_check for a training run, whose refusal also names the options that would fit,
 * each with its estimate: fewer --dreg-probes (probe mode); --dreg-mode gram or probe
 * (exact mode, when narrower); the largest --micro-batch that fits. */
int cz_mem_check_train(const cz_mem_request *r, const cz_mem_estimate *e, size_t limit, const char *source,
                       cz_error *err);

/* "512 B", "12.0 KB", "3.4 GB" (powers of 1000). */
void cz_mem_format(size_t bytes, char *buf, size_t len);

/* Cores of this node (online processors) and cores this process may run on (affinity). */
int cz_node_cores(void);
int cz_affinity_cores(void);

#endif
