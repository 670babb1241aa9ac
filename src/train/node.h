/* The node and the launch, checked before anything large is allocated: BLIS threads
 * against the node's cores and the rank's CPU set, the BLIS kernel set of every rank, the
 * per-rank memory limit (budget.h), and SLURM's view of the job. Every check is collective
 * and all ranks agree on its outcome; warnings are printed once, by rank 0. Private to
 * src/train. */
#ifndef CHAINZ_TRAIN_NODE_H
#define CHAINZ_TRAIN_NODE_H

#include <stddef.h>

#include "chainz/dist.h"
#include "chainz/error.h"

/* Refuses more than 4 x the node's cores in BLIS threads per rank (1000 threads on 2
 * ranks hung and ignored SIGTERM), warns (rank 0) when ranks x threads exceed the cores of
 * a node or a rank's CPU set, or when ranks run different BLIS kernel sets, and sets
 * *mem_limit, the per-rank memory limit (0: unknown), with its source in source[len].
 * Collective. @return 0 or CZ_EINVAL (agreed), or a communication error. */
int cz_node_check(const cz_dist *d, int threads, size_t max_memory, size_t *mem_limit, char *source,
                  size_t len, cz_error *err);

/* srun with an MPI that lacks SLURM's PMI support starts N singletons of world size 1,
 * each of which would train alone. @return CZ_EINVAL in that case, else 0. Local: the
 * caller agrees. */
int cz_node_check_slurm(const cz_dist *d, cz_error *err);

/* "job=J array=A_T restart=R" from SLURM's environment, or "" outside SLURM. */
void cz_node_slurm_fields(char *buf, size_t len);

#endif
