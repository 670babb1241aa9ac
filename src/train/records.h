/* The run's records: history.jsonl and metrics.h5, opened (and, on a resume, checked
 * and repaired) by rank 0 before config.json is published. */
#ifndef CHAINZ_TRAIN_RECORDS_H
#define CHAINZ_TRAIN_RECORDS_H

#include <stdio.h>

#include "chainz/config.h"
#include "chainz/error.h"
#include "chainz/metrics.h"

/* Opens RUN_DIR/metrics.h5 into *mx (families fam[0..nf)) and history.jsonl into *hist.
 * A fresh run (resumed 0) starts both. A resume after E completed epochs keeps their rows
 * of those epochs; a metrics.h5 that cannot be continued (damaged, or another run's by its
 * config) is set aside as metrics.h5.damaged and its /history rebuilt from history.jsonl's
 * intact lines (the tau histograms of those epochs are lost, and the warning says so);
 * epochs metrics.h5 lacks are taken from history.jsonl likewise; a damaged history.jsonl
 * is rebuilt from its intact lines and metrics.h5. Neither is written through a symbolic
 * link. @return 0; CZ_EINVAL for a non-regular file, a metrics.h5 of a newer version or a
 * link; CZ_EIO, CZ_ENOMEM. */
int cz_records_open(const cz_config *cfg, const char *config_json, int nf, const char *const *fam, long E,
                    int resumed, const char *hist_path, cz_metrics **mx, FILE **hist, cz_error *err);

#endif
