/* A small strict JSON reader (RFC 8259) for study specs and result files, and a string
 * writer. Strict: no comments, no trailing commas, no NaN/Infinity, no duplicate keys in
 * an object, nesting at most CZ_JSON_MAX_DEPTH, UTF-8 passed through (\u escapes are
 * decoded to UTF-8; a lone surrogate is an error). Every error names the file (the name
 * given), the line and column, and what was expected.
 *
 * Every value keeps the line it starts on, so that a spec checker can name it. Numbers
 * keep their source text too (a grid value "0.001" is passed on as written). */
#ifndef CHAINZ_JSON_H
#define CHAINZ_JSON_H

#include <stddef.h>
#include <stdio.h>

#include "chainz/error.h"

#define CZ_JSON_MAX_DEPTH 64

typedef enum { CZ_JSON_NULL, CZ_JSON_BOOL, CZ_JSON_NUMBER, CZ_JSON_STRING, CZ_JSON_ARRAY, CZ_JSON_OBJECT } cz_json_type;

typedef struct cz_json cz_json;
struct cz_json {
    cz_json_type type;
    int line;        /* 1-based line of the value's first character */
    int boolean;     /* CZ_JSON_BOOL */
    double num;      /* CZ_JSON_NUMBER */
    char *str;       /* CZ_JSON_STRING: the decoded text; CZ_JSON_NUMBER: the source text */
    size_t n;        /* CZ_JSON_ARRAY / OBJECT: entries */
    cz_json *items;  /* [n] */
    char **keys;     /* [n] for CZ_JSON_OBJECT, in file order */
};

/* Parses text[0..len) into *out (zeroed first). name is used in messages ("spec.json:3:5:
 * expected ',' or '}' after a member, got 'x'").
 * @return 0, CZ_EINVAL (bad JSON), CZ_ENOMEM. On error *out is freed. */
int cz_json_parse(cz_json *out, const char *text, size_t len, const char *name, cz_error *err);

/* Reads and parses a whole file (at most 16 MB). @return 0, CZ_EIO, CZ_EINVAL, CZ_ENOMEM. */
int cz_json_read_file(cz_json *out, const char *path, cz_error *err);

/* Frees what parse allocated; NULL-safe, safe on a zeroed value. */
void cz_json_free(cz_json *v);

/* The member key of an object, or NULL (also when v is not an object). */
const cz_json *cz_json_get(const cz_json *v, const char *key);

/* "null", "a boolean", "a number", "a string", "an array", "an object" */
const char *cz_json_type_name(cz_json_type t);

/* Writes s as a JSON string literal (quotes, escapes for " \ and control characters). */
void cz_json_write_string(FILE *f, const char *s);

#endif
