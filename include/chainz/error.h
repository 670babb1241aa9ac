/* chainz error reporting: functions that can fail return 0 or a negative cz_status
 * and leave a human-readable message in a caller-owned cz_error. Only main() exits. */
#ifndef CHAINZ_ERROR_H
#define CHAINZ_ERROR_H

enum {
    CZ_OK = 0,
    CZ_EINVAL = -1,   /* bad option, bad input file or value: the user can fix it */
    CZ_EIO = -2,      /* a file or library call failed */
    CZ_ENOMEM = -3,   /* allocation failed */
    CZ_ERUNTIME = -4, /* a numeric or cross-rank failure during a run */
    CZ_ESTOPPED = -5, /* stopped on a signal after writing a checkpoint: requeue me */
};

typedef struct {
    int code;
    char msg[1024];
} cz_error;

/* Formats the message into err (if non-NULL) and returns code, so that
 * `return cz_error_set(err, CZ_EINVAL, "...")` reads as one statement. */
int cz_error_set(cz_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
