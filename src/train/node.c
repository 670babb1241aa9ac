/* The node and the launch: cores, threads, BLIS kernel sets, memory, SLURM (node.h). */
#include "node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chainz/budget.h"
#include "chainz/engine.h"

/* Every rank must run the same BLIS kernel set: on a mixed partition (say Zen 3 and
 * Skylake-SP nodes) each picks its own, the chunks computed on each differ in the last
 * bits, and the run then depends on which rank got which chunk. Warns (rank 0) naming
 * two sets that differ and the fix; the run goes on, replicas still agree. Collective. */
static int kernels_check(const cz_dist *d, cz_error *err)
{
    char mine[32] = {0}, first[32] = {0}, other[32] = {0};
    snprintf(mine, sizeof mine, "%s", cz_engine_blas_arch());
    memcpy(first, mine, sizeof first);
    int rc = cz_dist_bcast(d, first, sizeof first, 0, err);
    int differ = !rc && strcmp(mine, first) ? d->rank : 0;
    if (rc || (rc = cz_dist_max_int(d, &differ, 1, err))) return rc;
    if (!differ) return 0;
    memcpy(other, mine, sizeof other);
    if ((rc = cz_dist_bcast(d, other, sizeof other, differ, err))) return rc;
    if (d->rank == 0)
        fprintf(stderr, "chainz: warning: ranks run different BLIS kernel sets (rank 0: %s, rank %d: %s): "
                "results will depend on which rank computes which chunk; give every rank the same set "
                "with --kernels NAME\n", first, differ, other);
    return 0;
}

int cz_node_check(const cz_dist *d, int threads, size_t max_memory, size_t *mem_limit, char *source,
                  size_t len, cz_error *err)
{
    int local = 1, rc = cz_dist_local_size(d, &local, err);
    int cores = cz_node_cores(), mine = cz_affinity_cores();
    if (!rc && threads > 4 * cores)
        rc = cz_error_set(err, CZ_EINVAL, "--threads %d: at most 4 x the %d cores of this node (%d); chainz "
                          "refuses more (they only compete for the cores)", threads, cores, 4 * cores);
    rc = cz_dist_agree(d, rc, err);
    if (rc) return rc;
    int over[2] = {local * threads > cores, threads > mine};
    if ((rc = cz_dist_max_int(d, over, 2, err))) return rc;
    if (d->rank == 0 && over[0])
        fprintf(stderr, "chainz: warning: %d rank%s x %d threads on a node exceed its %d cores: the BLIS "
                "threads compete for the cores and a step can be many times slower (measured 25x with 3 threads "
                "on 2 cores); give each rank --threads <= cores / ranks per node\n", local, local > 1 ? "s" : "",
                threads, cores);
    else if (d->rank == 0 && over[1])
        fprintf(stderr, "chainz: warning: --threads %d exceeds the %d core%s this rank may run on (its CPU "
                "affinity, e.g. mpirun --bind-to core): the threads share them\n", threads, mine, mine > 1 ? "s" : "");
    *mem_limit = cz_mem_limit(max_memory, local, source, len);
    return kernels_check(d, err);
}

int cz_node_check_slurm(const cz_dist *d, cz_error *err)
{
    const char *n = getenv("SLURM_STEP_NUM_TASKS");
    if (d->size == 1 && getenv("SLURM_STEP_ID") && n && atoi(n) > 1)
        return cz_error_set(err, CZ_EINVAL,
                            "SLURM started %s tasks but MPI sees a world of 1: srun launched singletons "
                            "(use srun --mpi=pmix, or mpirun inside the allocation)", n);
    return 0;
}

void cz_node_slurm_fields(char *buf, size_t len)
{
    const char *job = getenv("SLURM_JOB_ID"), *aj = getenv("SLURM_ARRAY_JOB_ID"),
               *at = getenv("SLURM_ARRAY_TASK_ID"), *rc = getenv("SLURM_RESTART_COUNT");
    buf[0] = 0;
    if (!job) return;
    snprintf(buf, len, "job=%s array=%s_%s restart=%s", job, aj ? aj : "-", at ? at : "-", rc ? rc : "0");
}
