/* The help text of `chainz prep` (private to src/cli). */
#ifndef CHAINZ_CLI_PREP_USAGE_H
#define CHAINZ_CLI_PREP_USAGE_H

#include <stdio.h>

#define CZ_PREP_DEFAULT_SEED 1

/* Prints every format and option of `chainz prep` with its default to f. */
void cz_prep_usage(FILE *f);

#endif
