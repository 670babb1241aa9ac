/* history.jsonl of a run directory: reading its intact lines, truncating it to the epochs
 * kept (include/chainz/runstate.h). One process, no MPI. */
#include "chainz/runstate.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chainz/atomic.h"
#include "chainz/metrics.h"
#include "runstate_internal.h"

/* ---- history ---- */

/* one history line into row (cz_history_names order); -1 unless every field is there, a
 * number or null */
static int parse_history_line(const char *line, flat_json *o, double row[CZ_HISTORY_FIELDS])
{
    if (cz_run_parse_flat(line, o)) return -1;
    for (int k = 0; k < CZ_HISTORY_FIELDS; k++) {
        int str = 0;
        const char *v = cz_run_field(o, cz_history_names[k], &str);
        if (!v || str) return -1;
        char *end;
        row[k] = strcmp(v, "null") ? strtod(v, &end) : NAN;
        if (strcmp(v, "null") && (*end || end == v)) return -1;
    }
    return row[0] >= 1 && row[0] == floor(row[0]) ? 0 : -1;
}

long cz_run_read_history(const char *path, long epochs, double *rows, unsigned char *have, cz_error *err)
{
    for (long e = 0; e < epochs; e++) have[e] = 0;
    struct stat sb;
    if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return 0; /* missing, or a FIFO that would block */
    FILE *f = fopen(path, "r");
    if (!f) return cz_error_set(err, CZ_EIO, "%s: cannot read: %s", path, strerror(errno));
    flat_json *o = malloc(sizeof *o);
    if (!o) {
        fclose(f);
        return cz_error_set(err, CZ_ENOMEM, "out of memory");
    }
    char *line = NULL;
    size_t cap = 0;
    long found = 0;
    double row[CZ_HISTORY_FIELDS];
    for (ssize_t n; (n = getline(&line, &cap, f)) > 0;) {
        if (line[n - 1] != '\n' || parse_history_line(line, o, row)) continue; /* cut or not a history line */
        long ep = (long)row[0];
        if (ep > epochs || have[ep - 1]) continue; /* an abandoned attempt's, or a repeat: the first wins */
        memcpy(rows + (size_t)(ep - 1) * CZ_HISTORY_FIELDS, row, sizeof row);
        have[ep - 1] = 1;
        found++;
    }
    free(line);
    free(o);
    fclose(f);
    return found;
}

int cz_run_truncate_history(const char *path, long epochs_done, char *why, size_t why_len, cz_error *err)
{
    why[0] = 0;
    struct stat sb;
    if (lstat(path, &sb) != 0) {
        if (epochs_done > 0) snprintf(why, why_len, "the file is missing");
        return 0;
    }
    if (!S_ISREG(sb.st_mode)) { /* a FIFO would block the reader */
        snprintf(why, why_len, "not a regular file");
        return 0;
    }
    FILE *f = fopen(path, "r");
    if (!f) return cz_error_set(err, CZ_EIO, "%s: cannot read: %s", path, strerror(errno));
    /* the lines of epochs 1..epochs_done, each complete, once, in order: anything else is
     * damage, and the file is then left as it is for the caller to set aside and rebuild */
    char *text = NULL;
    size_t tlen = 0;
    FILE *o = open_memstream(&text, &tlen);
    if (!o) {
        fclose(f);
        return cz_error_set(err, CZ_ENOMEM, "out of memory");
    }
    char *line = NULL;
    size_t cap = 0;
    long next = 1, lineno = 0, bad_line = 0, dup = 0, gap = 0;
    for (ssize_t n; (n = getline(&line, &cap, f)) > 0;) {
        lineno++;
        long ep;
        int complete = line[n - 1] == '\n', parsed = sscanf(line, "{\"epoch\": %ld", &ep) == 1;
        /* a cut last line is a write a crash interrupted: damage only if it is an epoch kept */
        if (!complete && (!parsed || ep > epochs_done)) continue;
        if (!parsed || !complete) {
            if (!bad_line) bad_line = lineno;
            continue;
        }
        if (ep > epochs_done) continue; /* an abandoned attempt's epoch: dropped */
        if (ep < next) {
            if (!dup) dup = ep;
            continue;
        }
        if (ep > next && !gap) gap = next;
        next = ep + 1;
        fputs(line, o);
    }
    free(line);
    fclose(f);
    int mem_bad = fclose(o) != 0 || !text;
    if (!mem_bad && next <= epochs_done && !gap) gap = next;
    if (mem_bad) {
        free(text);
        return cz_error_set(err, CZ_ENOMEM, "out of memory");
    }
    if (bad_line || dup || gap) {
        size_t w = 0;
        if (bad_line) w += (size_t)snprintf(why + w, why_len - w, "line %ld is cut off or not a history line", bad_line);
        if (dup && w < why_len)
            w += (size_t)snprintf(why + w, why_len - w, "%sepoch %ld appears more than once", w ? ", " : "", dup);
        if (gap && w < why_len)
            snprintf(why + w, why_len - w, "%sthe line of epoch %ld is missing", w ? ", " : "", gap);
        free(text);
        return 0;
    }
    int rc = cz_write_text_atomic(path, text, err);
    free(text);
    return rc;
}
