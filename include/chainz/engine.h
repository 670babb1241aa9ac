/* The dual-stream engine: value stream, Jacobian stream, losses and the backward pass
 * through both streams (docs/DESIGN.md section 1), on BLIS.
 *
 * One call computes, for one micro-batch, the UN-normalized gradient sum
 *     grad = d/dtheta [ sum_b task(f_b, y_b) + lambda * sum_b sum_l ||S_{l,b}||_F^2 ]
 * into a buffer the caller owns (overwritten, same flat layout as the parameters). The
 * result depends only on the parameters and the micro-batch's samples (and their dropout
 * keys), never on where or when it runs: this is what makes the cross-rank reduction
 * exact. The engine knows no MPI and no files; it allocates nothing after
 * cz_workspace_new.
 *
 * Layouts: x [B x d] row-major; the Jacobian stream S_l is neuron-major n_l x (B*d)
 * (row i = sample 0's d entries, then sample 1's, ...), so each stream product is one
 * GEMM. Memory is B*d*(sum_{l<H} n_l + sum_{l>=2} n_l) reals for the stream. */
#ifndef CHAINZ_ENGINE_H
#define CHAINZ_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include "chainz/loss.h"
#include "chainz/model.h"

typedef struct cz_workspace cz_workspace;

/* How the Jacobian stream is computed (docs/DESIGN.md section 1):
 *   exact  width d: the stream of the definition;
 *   gram   width n_1 (needs n_1 <= d): W_1^T = QR, the stream seeded with R^T; the same
 *          norms and gradients as exact to float rounding;
 *   probe  width K: K Rademacher directions per sample drawn from the sample's key; the
 *          penalty and its gradient are unbiased estimates (exact in expectation);
 *   none   no stream: no stream memory (validation, eval without Jacobian statistics);
 *   auto   a choice from the shapes (cz_stream_auto), never given to a workspace. */
typedef enum { CZ_STREAM_NONE, CZ_STREAM_EXACT, CZ_STREAM_GRAM, CZ_STREAM_PROBE, CZ_STREAM_AUTO } cz_stream_mode;
typedef struct {
    cz_stream_mode mode;
    int probes;                 /* K, probe mode only */
} cz_stream_spec;
/* auto keeps exact Jacobians while the stream is at most this wide per sample */
#define CZ_STREAM_AUTO_WIDTH 256
#define CZ_STREAM_DEFAULT_PROBES 16

const char *cz_stream_mode_name(cz_stream_mode mode);
int cz_stream_mode_parse(const char *s, cz_stream_mode *out);
/* The stream's width per sample (0 for none). */
size_t cz_stream_width(const cz_model *m, const cz_stream_spec *ss);
/* @return 0, or CZ_EINVAL naming why the mode does not fit the model. */
int cz_stream_check(const cz_model *m, const cz_stream_spec *ss, cz_error *err);
/* Resolves auto for this model; why receives the reason in words (for the log). */
void cz_stream_auto(const cz_model *m, int probes, cz_stream_spec *out, char *why, size_t len);

/* @return a workspace for micro-batches of at most max_batch samples with an exact stream,
 * or NULL with err set. */
cz_workspace *cz_workspace_new(const cz_model *m, size_t max_batch, cz_error *err);
/* The same with the given stream (NULL: none). */
cz_workspace *cz_workspace_new_stream(const cz_model *m, size_t max_batch, const cz_stream_spec *ss,
                                      cz_error *err);
/* Bytes a workspace for these shapes holds (the same formula cz_workspace_new uses). */
size_t cz_workspace_bytes_for(const cz_model *m, size_t max_batch, const cz_stream_spec *ss);
void cz_workspace_free(cz_workspace *ws);
/* Bytes the workspace holds (the stream dominates). */
size_t cz_workspace_bytes(const cz_workspace *ws);

typedef struct {
    double lambda;      /* DREG coefficient (>= 0) */
    int train;          /* 1: dropout active (needs keys) */
    int stream;         /* 1: run the Jacobian stream even when lambda == 0 (statistics) */
    /* keys are also needed in probe mode whenever the stream runs (the directions) */
    int stream_input_grad; /* 1: also form S_o^T dtask/df from an exact stream (cz_engine_input_grad) */
    /* with grad: called as each layer's gradient (weights, bias, coefficients) becomes
     * final, with its index in cz_model.layer: H (the output layer), H-1, ..., 0. Lets the
     * caller start reducing a layer while the layers below are computed. */
    void (*layer_done)(void *ctx, int layer);
    void *ctx;
} cz_step_opts;

typedef struct {
    cz_loss_sums task;  /* task loss, correct, abs_err summed over the micro-batch */
    double dreg;        /* sum_b sum_l ||S_{l,b}||_F^2 (not multiplied by lambda); 0 without stream */
} cz_step_sums;

/* One micro-batch: x [B x d], labels (y_class or y_value by head), keys [B] per-sample
 * keys (dropout when opts->train and dropout > 0; the probe directions). grad may be NULL for a
 * forward-only evaluation. Sums are overwritten.
 * @return 0, or CZ_EINVAL if B exceeds the workspace or keys are missing. */
int cz_engine_step(cz_workspace *ws, const cz_real *params, const cz_real *x,
                   const int32_t *y_class, const cz_real *y_value, const uint64_t *keys,
                   size_t B, const cz_step_opts *opts, cz_real *grad, cz_step_sums *sums,
                   cz_error *err);

/* ---- per-sample results of the last cz_engine_step (valid until the next call) ---- */

/* f [B x n_out]: the outputs (logits / score). */
const cz_real *cz_engine_outputs(const cz_workspace *ws);
/* h_l [B x n_l] for hidden layer l (1-based): activations after dropout. */
const cz_real *cz_engine_hidden(const cz_workspace *ws, int l);
/* Per-sample ||S_l||_F^2 for hidden layer l (1-based), [B]; NULL if the stream did not run.
 * In probe mode an unbiased estimate. */
const double *cz_engine_jacobian_sqnorm(const cz_workspace *ws, int l);
/* Copies sample b's Jacobian S_l = dh_l/dx [n_l x d] row-major into out (Gram mode: S'_l Q^T).
 * Valid after a step that ran the stream without a DREG backward (grad NULL or lambda 0),
 * since that backward reuses the stream's memory; not in probe mode. @return 0 or CZ_EINVAL. */
int cz_engine_jacobian(const cz_workspace *ws, const cz_real *params, int l, size_t b,
                       cz_real *out, cz_error *err);
/* Per-sample gradient of the task loss with respect to the input, from the stream:
 * out [B x d] = S_o^T dtask/df, with S_o = W_o S_H. Requires a step with grad, an
 * exact-mode stream and opts.stream_input_grad (a test of the identity; training uses
 * cz_engine_sample_norms, which needs no stream). */
int cz_engine_input_grad(const cz_workspace *ws, const cz_real *params, cz_real *out,
                         cz_error *err);
/* The same quantity by ordinary backpropagation through the value stream (g_0 = W_1^T dz_1),
 * [B x d]; an independent check of the identity above. Requires a step with grad. */
int cz_engine_input_grad_backprop(const cz_workspace *ws, const cz_real *params, cz_real *out,
                                  cz_error *err);

/* Call once at program start, before any other BLIS use. kernels: NULL or "auto", or a
 * BLIS kernel set name ("haswell", "zen3", "skx", "generic", ...; CZ_EINVAL if unknown or
 * if this CPU lacks its instructions). auto keeps BLIS's own choice (BLIS_ARCH_TYPE from
 * the environment included) except where BLIS 0.9.0 would fall back to its generic
 * kernels on a CPU with AVX2 or AVX-512 (it does not know e.g. AMD family 0x1A): there
 * chainz picks skx or haswell. Bits are reproducible for one kernel set and any number of
 * ranks and threads; another kernel set gives other last bits. */
int cz_engine_init(const char *kernels, cz_error *err);
/* The BLIS kernel set in use (e.g. "skx", "haswell", "zen3", "generic"), and how it was
 * chosen, in words (for the log). */
const char *cz_engine_blas_arch(void);
const char *cz_engine_blas_choice(void);
/* The BLIS library version string, e.g. "0.9.0" (recorded in config.json and checkpoints). */
const char *cz_engine_blas_version(void);
/* Per-sample norms for the tau statistics, from the last step with grad, by one task-only
 * pass backward over the value stream (no Jacobian stream needed):
 * input_grad[b] = ||d task_b / dx|| (= ||S_o^T dtask/df||, by reverse mode);
 * sample_grad[b] = ||d task_b / d theta||, the task loss's per-sample parameter gradient
 * (per layer ||delta_b||^2 (||a_b||^2 + 1) plus the poly terms; DREG's share is excluded).
 * After a DREG backward it costs O(B (sum n_l n_{l-1} + n_1 d)), one value pass; after a
 * step without one it reads that step's dz_l and g_l and costs the n_1 d product and row
 * sums (cz_engine_input_grad_seeded in between takes g_l back as scratch: one pass again).
 * Either output may be NULL. */
int cz_engine_sample_norms(cz_workspace *ws, const cz_real *params, double *input_grad,
                           double *sample_grad, cz_error *err);

/* The input gradient of a chosen linear form of the outputs, per sample:
 *   gx_b = d (seed_b . f_b) / dx = seed_b^T df_b/dx      seed [B x n_out], gx [B x d]
 * by one reverse pass over the last step's value stream (any step: no parameter gradient,
 * no Jacobian stream). With seed = dtask/df it is the task loss's input gradient; the
 * inference library seeds it with the loss of the predicted class. Costs the GEMMs of one
 * value pass, O(B sum n_l n_{l-1}). gx (NULL: internal scratch) and norm [B] (||gx_b||, may
 * be NULL) are written. @return 0, or CZ_EINVAL if no step ran. */
int cz_engine_input_grad_seeded(cz_workspace *ws, const cz_real *params, const cz_real *seed,
                                cz_real *gx, double *norm, cz_error *err);
/* The norms ||gx_b|| of the same quantity from the last step's forward stream (exact or
 * Gram, not overwritten by a DREG backward): seed_b^T W_o S_H, B n_H (n_o + k)
 * multiply-adds, cheaper than the reverse pass when the stream ran anyway. Uses ws's gH as
 * scratch, not its gin. @return 0 or CZ_EINVAL. */
int cz_engine_input_norm_stream(cz_workspace *ws, const cz_real *params, const cz_real *seed, double *norm,
                                cz_error *err);

/* Threads of this process's engine: its GEMMs and its own loops (results do not depend
 * on it: the engine runs BLIS without its small-matrix path, whose kernels depend on the
 * split, and splits its loops only where outputs are disjoint, src/engine/par.h). */
void cz_engine_set_threads(int n);
int cz_engine_threads(void);
/* Flops of one step of B samples by the DESIGN cost formula (GEMM terms only). */
double cz_engine_step_flops(const cz_model *m, size_t B, int stream);

#endif
