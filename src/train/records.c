/* history.jsonl and metrics.h5 of a run: opening, checking and repairing them (records.h). */
#include "records.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chainz/runstate.h"
#include "report.h"

/* metrics.h5 set aside as metrics.h5.damaged (.2, ...): renamed, never deleted */
static int set_aside_metrics(const char *mpath, const char *why, char *kept, size_t len, cz_error *err)
{
    struct stat sb;
    snprintf(kept, len, "%s.damaged", mpath);
    for (int i = 2; lstat(kept, &sb) == 0 && i < 1000; i++) snprintf(kept, len, "%s.damaged.%d", mpath, i);
    if (rename(mpath, kept))
        return cz_error_set(err, CZ_EIO, "%s (%s): cannot rename it to %s: %s", mpath, why, kept, strerror(errno));
    return 0;
}

int cz_records_open(const cz_config *cfg, const char *config_json, int nf, const char *const *fam, long E,
                    int resumed, const char *hist_path, cz_metrics **mx, FILE **hist, cz_error *err)
{
    char mpath[4200], why[256] = "", damaged[600] = "";
    snprintf(mpath, sizeof mpath, "%s/metrics.h5", cfg->out);
    int rc = resumed ? 0 : cz_run_regular_or_absent(hist_path, err);
    if (!rc) rc = cz_metrics_open(&(*mx), mpath, nf, fam, config_json, resumed ? E : -1, damaged, sizeof damaged, err);
    if (!rc && resumed && !damaged[0] && cz_metrics_file_config((*mx))[0] &&
        cz_run_same_run(config_json, cz_metrics_file_config((*mx)), damaged, sizeof damaged))
        rc = cz_error_set(err, CZ_ENOMEM, "out of memory");
    if (!rc && resumed) rc = cz_run_truncate_history(hist_path, E, why, sizeof why, err);
    char kept[4400] = "";
    if (!rc && damaged[0]) { /* nothing of it was loaded: a fresh file replaces it */
        rc = set_aside_metrics(mpath, damaged, kept, sizeof kept, err);
        cz_metrics_close((*mx));
        (*mx) = NULL;
        if (!rc) rc = cz_metrics_open(&(*mx), mpath, nf, fam, config_json, -1, NULL, 0, err);
    }
    long last = 0, n_rows = 0, n_have = 0;
    if (!rc && resumed && E > 0) { /* epochs metrics.h5 lacks, from history.jsonl's intact lines */
        double *hrows = malloc((size_t)E * CZ_HISTORY_FIELDS * sizeof(double)), *add = NULL;
        unsigned char *have = calloc((size_t)E, 1);
        if (!hrows || !have || !(add = malloc((size_t)E * CZ_HISTORY_FIELDS * sizeof(double))))
            rc = cz_error_set(err, CZ_ENOMEM, "out of memory");
        long n = cz_metrics_epochs((*mx));
        last = n ? (long)cz_metrics_row((*mx), n - 1)[0] : 0;
        if (!rc && (n_have = cz_run_read_history(hist_path, E, hrows, have, err)) < 0) rc = (int)n_have;
        for (long ep = last + 1; !rc && ep <= E; ep++)
            if (have[ep - 1])
                memcpy(add + (size_t)n_rows++ * CZ_HISTORY_FIELDS, hrows + (size_t)(ep - 1) * CZ_HISTORY_FIELDS,
                       CZ_HISTORY_FIELDS * sizeof(double));
        if (!rc && n_rows) rc = cz_metrics_append_rows((*mx), add, n_rows, err);
        free(hrows);
        free(add);
        free(have);
    }
    if (!rc && damaged[0])
        printf("chainz: warning: %s: %s: it cannot be continued; the file is kept as %s and a new one started, "
               "its /history rebuilt from history.jsonl (%ld of the %ld epochs)%s\n", mpath, damaged, kept, n_rows,
               E, cfg->tau && E > 0 ? "; the tau histograms of the earlier epochs are lost (history.jsonl does not "
               "hold them)" : "");
    else if (!rc && n_rows)
        printf("chainz: warning: %s has no row for epoch%s %ld..%ld: %ld taken from history.jsonl%s\n", mpath,
               E > last + 1 ? "s" : "", last + 1, E, n_rows,
               cfg->tau ? " (their tau histograms are lost)" : "");
    fflush(stdout);
    if (!rc && why[0]) rc = cz_report_rebuild_history(hist_path, E, (*mx), why, err);
    if (!rc) { /* never through a link: it would overwrite the link's target */
        int fd = open(hist_path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (resumed ? O_APPEND : O_TRUNC), 0644);
        if (fd >= 0 && !(*hist = fdopen(fd, resumed ? "a" : "w"))) close(fd);
        if (!*hist)
            rc = errno == ELOOP ? cz_error_set(err, CZ_EINVAL, "%s is a symbolic link: chainz writes no file of the "
                                               "run directory through a link; remove it", hist_path)
                                : cz_error_set(err, CZ_EIO, "%s: cannot write: %s", hist_path, strerror(errno));
    }
    return rc;
}

