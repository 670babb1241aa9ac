/* Optimizers over the flat parameter buffer. Weight decay is decoupled (AdamW-style:
 * params -= lr * wd * params, not added to the gradient) and applies to the weight prefix
 * [0, n_decay) only, never to biases or poly coefficients. */
#ifndef CHAINZ_OPTIM_H
#define CHAINZ_OPTIM_H

#include <stddef.h>
#include "chainz/error.h"
#include "chainz/real.h"

typedef enum { CZ_OPT_ADAMW, CZ_OPT_SGD } cz_optim_kind;

typedef struct {
    cz_optim_kind kind;
    double beta1, beta2, eps;   /* AdamW */
    double momentum;            /* SGD (0 = plain SGD) */
    double weight_decay;
} cz_optim_spec;

/* Moments needed per parameter (AdamW 2, SGD 1): the state buffer holds state_len * n reals. */
size_t cz_optim_state_len(const cz_optim_spec *o);
int cz_optim_parse(const char *s, cz_optim_kind *out);
const char *cz_optim_name(cz_optim_kind k);

/* One update with the already normalized gradient. step is 1-based (bias correction).
 * state: [state_len * n], zero at step 1. */
void cz_optim_step(const cz_optim_spec *o, cz_real *params, const cz_real *grad,
                   cz_real *state, size_t n, size_t n_decay, long step, double lr);
/* The same update on parameters [a, b) of n only (each parameter's update depends on its
 * own values alone: the bits are those of the whole update); state as above, for all n. */
void cz_optim_step_range(const cz_optim_spec *o, cz_real *params, const cz_real *grad, cz_real *state, size_t n,
                         size_t n_decay, size_t a, size_t b, long step, double lr);

#endif
