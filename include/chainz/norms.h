/* The per-sample gradient norms of an evaluation (`chainz eval --tau-out NORMS.h5`), so
 * that anyone can recompute tau = p99 / mean from the raw values (docs/DESIGN.md
 * section 3, "Per-sample norms"). Layout, format "chainz-norms" version 1:
 *   /row                 uint64  [N]  the sample's row in the data file, ascending
 *   /label               int32   [N]  its label (float32 for a regression set), as read
 *   /norms/<family>      float64 [N]  e.g. /norms/input_grad, /norms/jacobian/layer_1
 *   root attrs: format, version, checkpoint, data, samples, task, families (comma list),
 *               tau_meaning; each /norms dataset: meaning
 * Written by rank 0 in memory, saved under a temporary name, fsynced and renamed: a reader
 * sees the previous file or the complete new one, never a part. Objects carry no
 * modification times, so the same values give the same bytes. */
#ifndef CHAINZ_NORMS_H
#define CHAINZ_NORMS_H

#include <stddef.h>
#include <stdint.h>
#include "chainz/error.h"

#define CZ_NORMS_FORMAT "chainz-norms"
#define CZ_NORMS_VERSION 1

typedef struct {
    const char *checkpoint, *data, *task; /* attributes: where the norms come from */
    size_t n;                             /* samples */
    const uint64_t *row;                  /* [n] */
    const int32_t *label_class;           /* [n], or NULL and then label_value [n] */
    const float *label_value;
    int n_families;
    const char *const *family;            /* [n_families] "input_grad", "jacobian/layer_1" */
    const char *const *meaning;           /* [n_families] one sentence each */
    const double *const *norm;            /* [n_families][n] */
} cz_norms;

/* Before any work: the output must not be a directory, and its directory must exist and be
 * writable. @return 0 or CZ_EINVAL naming the path. */
int cz_norms_check_path(const char *path, cz_error *err);
/* Writes nm to path atomically (an existing file is replaced only once the new one is
 * complete). @return 0, CZ_EINVAL (path is a directory, a family name too long), CZ_EIO
 * (with the system's reason) or CZ_ENOMEM; on failure no temporary file remains. */
int cz_norms_write(const char *path, const cz_norms *nm, cz_error *err);

#endif
