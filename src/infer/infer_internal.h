/* The inference library's structures, shared by infer.c and heads.c. */
#ifndef CHAINZ_INFER_INTERNAL_H
#define CHAINZ_INFER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "chainz/engine.h"
#include "chainz/infer.h"
#include "chainz/model.h"

#define CZI_VERSION "0.1.0"

/* Immutable after czi_model_load: every session reads it, none writes it. */
struct czi_model {
    czi_info info;
    cz_model m;
    float *params;          /* [n_params], the checkpoint's */
    float *mean, *std;      /* [d] or NULL */
    float clip;             /* 0: none */
    cz_stream_spec ss;      /* the norms' stream: exact, or Gram when n_1 < d */
    char path[4400];        /* the checkpoint file it came from */
};

/* One caller's workspace: batches go through it in chunks of at most `chunk` rows. */
struct czi_session {
    const czi_model *m;
    int what;
    size_t max_batch, chunk;
    cz_workspace *ws;       /* chunk rows, with the model's stream when what == CZI_NORMS */
    float *x;               /* [chunk x d] the standardized copy of the caller's rows */
    cz_real *seed;          /* [chunk x n_out] the reverse pass's output seed */
    int32_t *yc;            /* [chunk] zeros: the engine's loss wants labels; unused */
    cz_real *yv;            /* [chunk] */
    int32_t *pred;          /* [chunk] the predicted class */
};

/* Sets err (may be NULL) and returns code. */
int cz_infer_fail(czi_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Per-sample head outputs from f [B x n_out] and the predicted labels: prob [B x K]
 * (classify, ordinal; NULL: skipped) and value [B] (NULL: skipped), see infer.h. */
void cz_infer_heads(const cz_model *m, const cz_real *f, const int32_t *label, size_t B, float *prob, float *value);

#endif
