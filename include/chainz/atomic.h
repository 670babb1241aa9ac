/* Crash-safe publication of small text files (config.json, the `latest` pointer, eval
 * reports): written under a temporary name, fsynced, renamed, and the directory fsynced,
 * so a reader or a crash sees the old file or the new one, never a mix. */
#ifndef CHAINZ_ATOMIC_H
#define CHAINZ_ATOMIC_H

#include "chainz/error.h"

int cz_write_text_atomic(const char *path, const char *text, cz_error *err);

#endif
