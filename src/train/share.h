/* Chunked inputs (issue 15): a data set whose /features is chunked (what h5py writes with
 * chunks=True or compression=) is loaded once per node into memory the node's ranks
 * share, then rows are served from it; one that does not fit the node's memory budget is
 * refused before training, naming the command that rewrites it contiguously. A contiguous
 * /features is left to the data module (mapped, or hyperslab reads). Private to
 * src/train. */
#ifndef CHAINZ_TRAIN_SHARE_H
#define CHAINZ_TRAIN_SHARE_H

#include <stddef.h>
#include <sys/types.h>

#include "chainz/data.h"
#include "chainz/dist.h"
#include "chainz/error.h"

/* The node shared matrices of one run (training and validation set). Zero-initialize. */
typedef struct {
    cz_dist_shared *sh[2];
    void *base[2];          /* the matrices, and the files they came from (device, inode) */
    dev_t dev[2];
    ino_t ino[2];
    int n;
    size_t node_bytes; /* bytes already held per node */
} cz_share;

/* If ds's /features is chunked: checks that run_bytes per rank (the run's memory estimate)
 * x the ranks of the node, plus the matrices already shared, plus this one fit in
 * mem_limit (per rank, 0: unknown) x the ranks of the node, then allocates the node's
 * copy, has the node's first rank read it in file order, and attaches it to ds. Rank 0
 * says on stdout what was done. Collective. @return 0 or the agreed code; a refusal names
 * the file, the dataset, its chunk shape and filters, both sizes and the h5repack command
 * that fixes it. A file already loaded by this cz_share (the same device and inode, e.g.
 * --val naming the --data file) is not loaded again: ds gets the copy already held. */
int cz_share_features(const cz_dist *d, cz_data *ds, size_t run_bytes, size_t mem_limit, const char *mem_source,
                      cz_share *s, cz_error *err);
/* Collective over the node (every rank frees, after the data sets are closed). */
void cz_share_free(cz_share *s);

#endif
