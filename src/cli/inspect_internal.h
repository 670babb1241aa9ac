/* `chainz inspect`: the emitter that writes the same facts as indented text or as one JSON
 * object (inspect_emit.c), so the two outputs cannot drift apart. In text a key's label is
 * the key with '_' read as ' '; an object inside an array, or opened with em_row, is one
 * line (values only inside an array: "256 poly"; "k=v" pairs for a row). */
#ifndef CHAINZ_CLI_INSPECT_INTERNAL_H
#define CHAINZ_CLI_INSPECT_INTERNAL_H

#include <stdio.h>

#include "chainz/h5probe.h"
#include "chainz/metrics_read.h"

/* `chainz inspect FILE|RUN_DIR [--json]` (argv[0] == "inspect"). @return the exit status. */
int cz_cmd_inspect(int argc, char **argv);

#define EM_MAX_DEPTH 16

typedef struct {
    FILE *f;
    int json;
    int depth;
    int count[EM_MAX_DEPTH];  /* members written so far at each level */
    int verbatim;             /* text: keys are names from a file, shown as they are */
    char kind[EM_MAX_DEPTH];  /* 'o' object, 'a' array, 'r' row (text: one line of k=v),
                               * 'v' an object inside an array (text: its values) */
} cz_emit;

void em_begin(cz_emit *e, FILE *f, int json);
/* on: the keys that follow are names from a file (families, attributes): no '_' -> ' ' */
void em_verbatim(cz_emit *e, int on);
void em_finish(cz_emit *e);
/* key is NULL for an element of an array */
void em_obj(cz_emit *e, const char *key);
void em_row(cz_emit *e, const char *key); /* an object, one line in text */
void em_arr(cz_emit *e, const char *key);
void em_end(cz_emit *e);
void em_str(cz_emit *e, const char *key, const char *v); /* NULL: null */
void em_num(cz_emit *e, const char *key, double v);      /* not finite: null ("n/a") */
void em_int(cz_emit *e, const char *key, long long v);
void em_bool(cz_emit *e, const char *key, int v);        /* text: yes / no */
/* a value already in JSON syntax (a number's source text from config.json) */
void em_raw(cz_emit *e, const char *key, const char *json_text, const char *text);

/* The descriptions that need only the emitter (inspect_kinds.c): a loaded metrics file,
 * an HDF5 file chainz does not know. */
void cz_inspect_emit_metrics(cz_emit *e, const cz_metrics_data *md);
void cz_inspect_emit_unknown(cz_emit *e, const cz_h5_probe *p, const char *path);

#endif
