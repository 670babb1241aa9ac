/* chainz inference library (libchainz_infer, no MPI): a trained CR model outside the
 * trainer, with the per-sample norms that need no label (docs/DESIGN.md section 7).
 *
 *   czi_model *m = czi_model_load("run/checkpoints/latest", &err);   // or a run directory
 *   czi_session *s = czi_session_new(m, 64, CZI_NORMS, &err);         // one per thread
 *   czi_predict(s, x, B, &out, &err);                                 // x [B x d], raw units
 *
 * A czi_model is immutable after loading and may be shared by any number of threads; a
 * czi_session holds one caller's workspace and is used by one thread at a time. Inputs are
 * in the units of the training data: the library applies the checkpoint's standardization
 * (mean, std, clip_z) as training did. Norms are taken with respect to the network's input
 * (the standardized features), like the training run's tau histograms in metrics.h5, so
 * the two can be compared (chainz predict --reference).
 *
 * Every function that can fail returns 0 or a negative code (the chainz codes: -1 bad
 * input, -2 I/O, -3 memory) and leaves a message naming the file or value in err. This
 * header is self-contained: a user needs only it and `pkg-config --cflags --libs chainz-infer`. */
#ifndef CHAINZ_INFER_H
#define CHAINZ_INFER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CZI_MAX_HIDDEN 16

typedef struct {
    int code;          /* 0, or -1 bad input, -2 I/O, -3 out of memory */
    char message[1024];
} czi_error;

typedef enum { CZI_HEAD_CLASSIFY = 0, CZI_HEAD_ORDINAL = 1, CZI_HEAD_REGRESS = 2 } czi_head;

typedef struct {
    size_t d;                        /* input features */
    int n_hidden;                    /* H */
    size_t width[CZI_MAX_HIDDEN];    /* n_1 .. n_H */
    char act[CZI_MAX_HIDDEN][16];    /* "poly", "relu", "tanh", "gelu", "identity" */
    czi_head head;
    int classes;                     /* K (classify, ordinal); 1 for regress */
    size_t n_params;
    int standardized;                /* 1: the checkpoint holds mean/std (applied by czi_predict) */
    double clip_z;                   /* standardized inputs clipped to +-clip_z; 0: none */
    long epoch, step;                /* where the checkpoint was taken */
} czi_info;

typedef struct czi_model czi_model;
typedef struct czi_session czi_session;

/* Loads a chainz checkpoint (.h5; its checksums are verified), a run directory (its
 * checkpoints/latest, followed literally: a latest that does not verify is an error, never
 * an older checkpoint), a checkpoints directory or a `latest` pointer file. NULL on failure
 * with err set. */
czi_model *czi_model_load(const char *path, czi_error *err);
/* Free every session made from m first: a session reads the model, and one used after its
 * model is freed reads freed memory (the library cannot detect it). */
void czi_model_free(czi_model *m);
const czi_info *czi_model_info(const czi_model *m);

/* What a session computes besides the prediction. */
enum { CZI_PREDICT_ONLY = 0, CZI_NORMS = 1 };

/* A workspace for batches of at most max_batch rows. With CZI_NORMS it also holds the
 * Jacobian stream (exact, or Gram when n_1 < d: the same norms at width n_1), at most 128 MB
 * of it (environment CHAINZ_INFER_STREAM_MB, read here): a larger batch is processed in
 * chunks of rows. */
czi_session *czi_session_new(const czi_model *m, size_t max_batch, int what, czi_error *err);
void czi_session_free(czi_session *s);

/* Outputs of czi_predict; every pointer may be NULL (not computed or not written).
 *   label  [B]     predicted class: classify argmax of the logits; ordinal the number of
 *                  cumulative logits > 0 (as training counts accuracy); regress round(value)
 *   prob   [B x K] classify softmax; ordinal P(y = k) from the cumulative sigmoids
 *                  s_k = P(y > k): s_{k-1} - s_k, clamped at 0 and renormalized; regress unused
 *   value  [B]     regress the prediction; ordinal the expected class sum_k s_k;
 *                  classify the predicted class's probability
 *   input_norm [B]      ||d q / dx||, q = the task loss with the predicted class as label
 *                       (classify, ordinal: training's input_grad family when predictions
 *                       are right) or the prediction itself (regress); needs CZI_NORMS
 *   layer_norm [B x H]  ||dh_l/dx||_F of hidden layers l = 1..H, row b for sample b
 *                       (training's jacobian/layer_l families); needs CZI_NORMS */
typedef struct {
    int32_t *label;
    float *prob;
    float *value;
    double *input_norm;
    double *layer_norm;
} czi_outputs;

/* Predicts B rows of x [B x d] (row-major, raw units). B may be at most the session's
 * max_batch. Rows with a non-finite feature are refused (-1, naming the row), before any
 * output is written. A finite row far outside the training data's range can still overflow
 * the network (cubic activations; a model without standardization or clip_z has no bound):
 * its value, probabilities and norms are then inf or NaN, and its label meaningless. The same
 * rows in the same batch give the same bytes on any thread and thread count; a row's last
 * bits may differ in a batch of another size. */
int czi_predict(czi_session *s, const float *x, size_t B, czi_outputs *out, czi_error *err);

/* Threads each session's products may use (default 1; process-wide; results do not depend
 * on it). Call it before predicting, not while another thread is in czi_predict. */
void czi_set_threads(int n);

/* The library's version ("0.1.0") and the BLIS kernel set in use. */
const char *czi_version(void);
const char *czi_blas_kernels(void);

#ifdef __cplusplus
}
#endif

#endif
