/* Helpers shared by the files of the run-directory module (runstate.c, runcompat.c,
 * runhistory.c); not part of the API (include/chainz/runstate.h). */
#ifndef CHAINZ_RUNSTATE_INTERNAL_H
#define CHAINZ_RUNSTATE_INTERNAL_H

#include <stdio.h>

/* A line on log (may be NULL), flushed at once. (runstate.c) */
void cz_run_say(FILE *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A flat JSON object of strings and scalars (what cz_config_json writes), parsed. */
typedef struct {
    int n;
    char key[64][32];
    char val[64][4200];
    int is_str[64];
} flat_json;

/* Parses json (NULL: "") into o. @return 0, or -1 when it is not a flat object. (runcompat.c) */
int cz_run_parse_flat(const char *json, flat_json *o);
/* The value of key in o, NULL when absent; *is_str (may be NULL) says whether it was a string. */
const char *cz_run_field(const flat_json *o, const char *key, int *is_str);

#endif
