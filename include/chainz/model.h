/* The CR model's shape and its flat parameter layout.
 *
 * Hidden layer l (1..H) has W_l [n_l x n_{l-1}] row-major, b_l [n_l] and, for the poly
 * activation, coefficients [n_l x 4] (a0..a3 per neuron). The output layer is linear,
 * W_o [n_o x n_H], b_o [n_o]. All parameters live in ONE flat buffer ordered
 *   W_1 .. W_H, W_o | b_1, poly_1, .. b_H, poly_H, b_o
 * so that the weight-decayed part (weights only) is the prefix [0, n_weights) and an
 * optimizer step, an allreduce or a checksum is one loop over one buffer. Gradients and
 * optimizer moments use the same layout. */
#ifndef CHAINZ_MODEL_H
#define CHAINZ_MODEL_H

#include <stddef.h>
#include "chainz/error.h"
#include "chainz/real.h"
#include "chainz/rng.h"

#define CZ_MAX_HIDDEN 16
#define CZ_NONE ((size_t)-1)
/* at most 2^48 parameters: far beyond any memory, and every byte count of the parameter,
 * gradient and moment buffers (x 16 for the exact accumulator) stays far from overflow */
#define CZ_MODEL_MAX_PARAMS ((size_t)1 << 48)

typedef enum { CZ_ACT_POLY, CZ_ACT_RELU, CZ_ACT_TANH, CZ_ACT_GELU, CZ_ACT_IDENTITY } cz_act;
typedef enum { CZ_HEAD_CLASSIFY, CZ_HEAD_ORDINAL, CZ_HEAD_REGRESS } cz_head;

typedef struct {
    size_t d;                      /* input features */
    int n_hidden;                  /* H >= 1 */
    size_t width[CZ_MAX_HIDDEN];   /* n_1 .. n_H */
    cz_act act[CZ_MAX_HIDDEN];     /* activation per hidden layer */
    cz_head head;
    int classes;                   /* K (classify, ordinal); ignored for regress */
    double dropout;                /* inverted dropout on every hidden output, training only */
} cz_model_spec;

typedef struct {
    size_t n_in, n_out;
    size_t w, b, poly;             /* offsets into the flat buffer; poly == CZ_NONE if absent */
    cz_act act;                    /* output layer: CZ_ACT_IDENTITY */
} cz_layer;

typedef struct {
    cz_model_spec spec;
    int n_hidden;
    cz_layer layer[CZ_MAX_HIDDEN + 1]; /* [0..H-1] hidden, [H] output */
    size_t n_out;                      /* K, K-1 or 1 */
    size_t n_params, n_weights;
} cz_model;

/* Validates spec and computes the layout (sizes checked for overflow: at most
 * CZ_MODEL_MAX_PARAMS parameters). @return 0 or CZ_EINVAL with a message. */
int cz_model_init(cz_model *m, const cz_model_spec *spec, cz_error *err);

/* Initialises params (m->n_params): W uniform(+-sqrt(3 g / fan_in)) with gain g = 2 for
 * relu/gelu and 1 otherwise, biases 0, poly (a0,a1,a2,a3) = (0, 1, 0, 0): every CR layer
 * starts as the identity, so activations and Jacobians keep the scale of standardized
 * inputs and nothing can overflow at step 0; a2 and a3 receive gradient from step 1. */
void cz_model_params_init(const cz_model *m, cz_real *params, cz_rng *rng);

const char *cz_act_name(cz_act a);
const char *cz_head_name(cz_head h);
/* @return 0 and sets *out, or CZ_EINVAL if the name is unknown. */
int cz_act_parse(const char *s, cz_act *out);
int cz_head_parse(const char *s, cz_head *out);

/* Elementwise activation of z [B x n] row-major: h = phi(z), dphi = phi'(z), d2phi = phi''(z)
 * (any output may be NULL). poly is [n x 4] for CZ_ACT_POLY, else unused. */
void cz_act_eval(cz_real *h, cz_real *dphi, cz_real *d2phi, cz_act act, const cz_real *poly,
                 const cz_real *z, size_t B, size_t n);

#endif
