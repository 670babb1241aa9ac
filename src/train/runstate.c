/* The run directory's state: lock, paths, checkpoint listing, choice, retention, saving
 * (include/chainz/runstate.h; compatibility: runcompat.c, history: runhistory.c). One
 * process, no MPI. */
#include "chainz/runstate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chainz/atomic.h"
#include "runstate_internal.h"

/* ---- small helpers ---- */

/* A path as messages show it: at most 200 characters ("...<last 200>"), so that a very long
 * --out never pushes the cause (the errno text) out of a 1 KB message. */
static const char *short_path(const char *p, char *buf, size_t len)
{
    size_t n = strlen(p);
    if (n <= 200) return p;
    snprintf(buf, len, "...%s", p + n - 200);
    return buf;
}

int cz_run_regular_or_absent(const char *path, cz_error *err)
{
    struct stat sb;
    if (lstat(path, &sb) != 0 && errno == ENOENT) return 0;
    if (stat(path, &sb) != 0)
        return cz_error_set(err, CZ_EINVAL, "cannot use %s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return cz_error_set(err, CZ_EINVAL, "%s is not a regular file (%s): move it away", path,
                            S_ISFIFO(sb.st_mode) ? "a FIFO" : S_ISDIR(sb.st_mode) ? "a directory" : "a device or socket");
    return 0;
}

int cz_run_mkdir(const char *path, cz_error *err)
{
    char buf[4300];
    if (strlen(path) >= sizeof buf)
        return cz_error_set(err, CZ_EINVAL, "cannot create directory (%s): a path of %zu characters",
                            strerror(ENAMETOOLONG), strlen(path));
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) && errno != EEXIST) { /* --out: an input error (exit 1) */
                char sp[210];
                return cz_error_set(err, CZ_EINVAL, "cannot create directory (%s): %s", strerror(errno),
                                    short_path(buf, sp, sizeof sp));
            }
            *p = '/';
        }
    if (mkdir(buf, 0755) && errno != EEXIST) {
        char sp[210];
        return cz_error_set(err, CZ_EINVAL, "cannot create directory (%s): %s", strerror(errno),
                            short_path(buf, sp, sizeof sp));
    }
    return 0;
}

void cz_run_say(FILE *log, const char *fmt, ...)
{
    if (!log) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(log, fmt, ap);
    va_end(ap);
    fflush(log);
}

/* Exactly ckpt-<8 to 18 decimal digits>.h5, the names cz_run_save writes: a sign, a space,
 * ".H5" or a number beyond a long is not a checkpoint of the run (sscanf's %ld took them all). */
static int ckpt_step_of(const char *name, long *step)
{
    if (strncmp(name, "ckpt-", 5)) return -1;
    const char *p = name + 5;
    size_t nd = strspn(p, "0123456789");
    /* and the name cz_run_save would give its step (ckpt-000000300.h5 is not ckpt-00000300.h5) */
    if (nd < 8 || nd > 18 || (nd > 8 && p[0] == '0') || strcmp(p + nd, ".h5")) return -1;
    long v = 0;
    for (size_t i = 0; i < nd; i++) v = v * 10 + (p[i] - '0');
    *step = v;
    return 0;
}

/* ---- lock ---- */

/* The run directory must be usable before anything is created or trained: --out is an
 * input (exit 1), and its problems are found here, with the cause first. */
static int check_out_path(const char *run_dir, cz_error *err)
{
    char sp[210];
    size_t n = strlen(run_dir);
    if (n == 0) return cz_error_set(err, CZ_EINVAL, "--out is empty");
    if (n + CZ_RUN_LONGEST_NAME >= PATH_MAX)
        return cz_error_set(err, CZ_EINVAL, "--out is too long (%s): %zu characters, at most %d fit (PATH_MAX %d "
                            "minus %d for the file names chainz adds): %s", strerror(ENAMETOOLONG), n,
                            PATH_MAX - 1 - CZ_RUN_LONGEST_NAME, PATH_MAX, CZ_RUN_LONGEST_NAME,
                            short_path(run_dir, sp, sizeof sp));
    for (const char *p = run_dir; *p;) { /* one component beyond NAME_MAX */
        size_t c = strcspn(p, "/");
        if (c > NAME_MAX)
            return cz_error_set(err, CZ_EINVAL, "--out has a component of %zu characters (%s; at most %d): %s",
                                c, strerror(ENAMETOOLONG), NAME_MAX, short_path(run_dir, sp, sizeof sp));
        p += c + (p[c] == '/');
    }
    struct stat sb;
    if (lstat(run_dir, &sb) == 0 && stat(run_dir, &sb) != 0)
        return cz_error_set(err, CZ_EINVAL, "--out is a symbolic link to a missing target (%s): %s",
                            strerror(errno), short_path(run_dir, sp, sizeof sp));
    if (stat(run_dir, &sb) == 0 && !S_ISDIR(sb.st_mode))
        return cz_error_set(err, CZ_EINVAL, "--out is not a directory (%s): %s", strerror(ENOTDIR),
                            short_path(run_dir, sp, sizeof sp));
    return 0;
}

/* dir must take new files: one is created and removed (permissions, a read-only mount). */
static int probe_writable(const char *dir, const char *what, cz_error *err)
{
    char path[PATH_MAX + 64], sp[210];
    snprintf(path, sizeof path, "%s/.chainz-probe.%ld", dir, (long)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return cz_error_set(err, CZ_EINVAL, "%s is not writable (%s): %s", what, strerror(errno),
                            short_path(dir, sp, sizeof sp));
    close(fd);
    unlink(path);
    return 0;
}

/* The files chainz writes in the run directory are never written through a symbolic link
 * (a link would make chainz overwrite whatever it points to). */
static const char *const run_files[] = {"run.lock", "history.jsonl", "config.json", "metrics.h5"};

int cz_run_check_writable(const char *run_dir, cz_error *err)
{
    int rc = probe_writable(run_dir, "the run directory", err);
    char ck[PATH_MAX + 16], sp[210];
    struct stat sb;
    for (size_t i = 0; !rc && i < sizeof run_files / sizeof *run_files; i++) {
        snprintf(ck, sizeof ck, "%s/%s", run_dir, run_files[i]);
        if (lstat(ck, &sb) == 0 && S_ISLNK(sb.st_mode))
            return cz_error_set(err, CZ_EINVAL, "%s is a symbolic link (%s): chainz writes no file of the run "
                                "directory through a link; remove it, or train into another --out", run_files[i],
                                short_path(ck, sp, sizeof sp));
    }
    snprintf(ck, sizeof ck, "%s/checkpoints", run_dir);
    /* a link to a missing target: stat fails, and mkdir's EEXIST would hide it until the
     * first checkpoint, after an epoch trained */
    if (!rc && lstat(ck, &sb) == 0 && stat(ck, &sb) != 0)
        return cz_error_set(err, CZ_EINVAL, "the checkpoints directory is a symbolic link to a missing target "
                            "(%s): %s", strerror(errno), short_path(ck, sp, sizeof sp));
    if (!rc && stat(ck, &sb) == 0) { /* created later when missing, in a writable directory */
        if (!S_ISDIR(sb.st_mode))
            return cz_error_set(err, CZ_EINVAL, "the checkpoints directory is not a directory (%s): %s",
                                strerror(ENOTDIR), short_path(ck, sp, sizeof sp));
        rc = probe_writable(ck, "the checkpoints directory", err);
        /* `latest` is replaced by a rename, which a directory refuses (EISDIR) */
        snprintf(ck, sizeof ck, "%s/checkpoints/latest", run_dir);
        if (!rc && lstat(ck, &sb) == 0 && S_ISDIR(sb.st_mode))
            return cz_error_set(err, CZ_EINVAL, "checkpoints/latest is a directory (%s): %s: move it away",
                                strerror(EISDIR), short_path(ck, sp, sizeof sp));
    }
    return rc;
}

int cz_run_lock_acquire(cz_run_lock *lk, const char *run_dir, cz_error *err)
{
    lk->fd = -1;
    int rc = check_out_path(run_dir, err);
    if (!rc) rc = cz_run_mkdir(run_dir, err);
    if (rc) return rc;
    char path[4300], sp[210];
    snprintf(path, sizeof path, "%s/run.lock", run_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ELOOP) /* never through a link: it would overwrite the target */
        return cz_error_set(err, CZ_EINVAL, "run.lock is a symbolic link (%s): chainz writes no file of the run "
                            "directory through a link; remove it, or train into another --out",
                            short_path(path, sp, sizeof sp));
    if (fd < 0) /* --out: an input error (exit 1) */
        return cz_error_set(err, CZ_EINVAL, "cannot open the run lock (%s): %s", strerror(errno),
                            short_path(path, sp, sizeof sp));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char holder[512] = "";
        ssize_t n = e == EWOULDBLOCK ? pread(fd, holder, sizeof holder - 1, 0) : -1;
        close(fd);
        if (e != EWOULDBLOCK)
            return cz_error_set(err, CZ_EINVAL, "cannot lock (%s): %s", strerror(e), short_path(path, sp, sizeof sp));
        holder[n > 0 ? n : 0] = 0;
        holder[strcspn(holder, "\n")] = 0;
        return cz_error_set(err, CZ_EINVAL, "%s is in use by another chainz train (%s): wait for it to end, "
                            "or train into another --out", short_path(run_dir, sp, sizeof sp),
                            holder[0] ? holder : "holder unknown");
    }
    char host[256] = "?", when[64];
    gethostname(host, sizeof host - 1);
    time_t t = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    char text[512];
    int w = snprintf(text, sizeof text, "pid=%ld host=%s start=%s\n", (long)getpid(), host, when);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)w, 0) != w) {
        int e = errno;
        close(fd);
        return cz_error_set(err, CZ_EINVAL, "cannot write the run lock (%s): %s", strerror(e),
                            short_path(path, sp, sizeof sp));
    }
    lk->fd = fd;
    /* a directory that refuses files is found now, not after the first epoch trained */
    rc = cz_run_check_writable(run_dir, err);
    if (rc) cz_run_lock_release(lk);
    return rc;
}

void cz_run_lock_release(cz_run_lock *lk)
{
    if (!lk || lk->fd < 0) return;
    flock(lk->fd, LOCK_UN);
    close(lk->fd);
    lk->fd = -1;
}

/* ---- listing ---- */

static int cmp_desc(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x > y ? -1 : x < y;
}

int cz_run_list(const char *ckpt_dir, cz_ckpt_list *l, cz_error *err)
{
    l->steps = NULL;
    l->n = 0;
    DIR *dp = opendir(ckpt_dir);
    if (!dp) return errno == ENOENT ? 0 : cz_error_set(err, CZ_EIO, "%s: cannot list: %s", ckpt_dir, strerror(errno));
    size_t cap = 0;
    int rc = 0;
    for (struct dirent *de; (de = readdir(dp));) {
        long st;
        if (ckpt_step_of(de->d_name, &st)) continue;
        if (l->n == cap) {
            size_t nc = cap ? 2 * cap : 64;
            long *p = realloc(l->steps, nc * sizeof *p);
            if (!p) {
                rc = cz_error_set(err, CZ_ENOMEM, "out of memory listing %s", ckpt_dir);
                break;
            }
            l->steps = p;
            cap = nc;
        }
        l->steps[l->n++] = st;
    }
    closedir(dp);
    if (rc) cz_run_list_free(l);
    else if (l->n) qsort(l->steps, l->n, sizeof *l->steps, cmp_desc);
    return rc;
}

void cz_run_list_free(cz_ckpt_list *l)
{
    if (!l) return;
    free(l->steps);
    l->steps = NULL;
    l->n = 0;
}

/* ---- latest ---- */

/* The checkpoint name a pointer file holds: one line "ckpt-<step>.h5". @return 0 if it is one. */
static int read_pointer(const char *path, char *name, size_t len)
{
    struct stat sb; /* a FIFO would block fopen */
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return -1;
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char buf[300];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    if (n == 0 || n == sizeof buf - 1) return -1;
    buf[strcspn(buf, "\n")] = 0;
    long st;
    if (ckpt_step_of(buf, &st)) return -1;
    snprintf(name, len, "%s", buf);
    return 0;
}

int cz_run_repair_latest(const char *ckpt_dir, cz_error *err)
{
    char latest[4300], name[300], target[4700];
    snprintf(latest, sizeof latest, "%s/latest", ckpt_dir);
    if (!read_pointer(latest, name, sizeof name)) {
        snprintf(target, sizeof target, "%s/%s", ckpt_dir, name);
        if (access(target, F_OK) == 0) return 0;
    }
    cz_ckpt_list l;
    int rc = cz_run_list(ckpt_dir, &l, err);
    if (rc) return rc;
    if (l.n) {
        char text[64];
        snprintf(text, sizeof text, "ckpt-%08ld.h5\n", l.steps[0]);
        rc = cz_write_text_atomic(latest, text, err);
    } else if (unlink(latest) && errno != ENOENT) {
        rc = cz_error_set(err, CZ_EIO, "%s: cannot remove: %s", latest, strerror(errno));
    }
    cz_run_list_free(&l);
    return rc;
}

int cz_run_resolve(const char *arg, char *out, size_t len, cz_error *err)
{
    struct stat st;
    if (stat(arg, &st) != 0) return cz_error_set(err, CZ_EINVAL, "%s: no such file or directory", arg);
    char pointer[4400], dir[4400], name[300];
    if (S_ISDIR(st.st_mode)) {
        snprintf(pointer, sizeof pointer, "%s/checkpoints/latest", arg);
        snprintf(dir, sizeof dir, "%s/checkpoints", arg);
        if (access(pointer, F_OK) != 0) { /* a checkpoints directory itself */
            snprintf(pointer, sizeof pointer, "%s/latest", arg);
            snprintf(dir, sizeof dir, "%s", arg);
        }
        if (access(pointer, F_OK) != 0)
            return cz_error_set(err, CZ_EINVAL, "%s: no checkpoints/latest in this directory", arg);
    } else {
        if (read_pointer(arg, name, sizeof name)) { /* a checkpoint file itself */
            snprintf(out, len, "%s", arg);
            return 0;
        }
        snprintf(pointer, sizeof pointer, "%s", arg);
        const char *slash = strrchr(arg, '/');
        if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - arg), arg);
        else snprintf(dir, sizeof dir, ".");
    }
    int rc = cz_run_regular_or_absent(pointer, err);
    if (rc) return rc;
    if (read_pointer(pointer, name, sizeof name))
        return cz_error_set(err, CZ_EINVAL, "%s: not a checkpoint pointer (one line ckpt-<step>.h5)", pointer);
    snprintf(out, len, "%s/%s", dir, name);
    if (access(out, F_OK) != 0)
        return cz_error_set(err, CZ_EINVAL, "%s names %s, which does not exist", pointer, out);
    return 0;
}

/* ---- choice, set-aside, retention ---- */

static int set_aside(const char *ckpt_dir, long step, const char *suffix, const char *why, FILE *log)
{
    char from[4400], to[4500];
    snprintf(from, sizeof from, "%s/ckpt-%08ld.h5", ckpt_dir, step);
    snprintf(to, sizeof to, "%s.%s", from, suffix);
    if (rename(from, to)) {
        cz_run_say(log, "chainz: warning: cannot rename %s to %s: %s\n", from, to, strerror(errno));
        return -1;
    }
    cz_run_say(log, "chainz: resume: %s %s: renamed to %s\n", from, why, to);
    return 0;
}

/* The newest checkpoint of ckpt_dir that loads and verifies, into chosen ("" if none).
 * set_aside: rename each one that does not (--resume auto); otherwise only log it. */
static int newest_verified(const char *ckpt_dir, char *chosen, size_t len, int set_aside_bad, const char *who,
                           FILE *log, cz_error *err)
{
    chosen[0] = 0;
    cz_ckpt_list l;
    int rc = cz_run_list(ckpt_dir, &l, err);
    if (rc) return rc;
    for (size_t i = 0; i < l.n && !chosen[0]; i++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/ckpt-%08ld.h5", ckpt_dir, l.steps[i]);
        cz_checkpoint c;
        cz_error e2 = {0};
        if (cz_ckpt_load(path, &c, &e2) == 0) {
            snprintf(chosen, len, "%s", path);
            cz_ckpt_free(&c);
        } else if (e2.code == CZ_ENOMEM) {
            rc = cz_error_set(err, CZ_ENOMEM, "%s", e2.msg);
            break;
        } else {
            cz_run_say(log, "chainz: %s: skipped %s: %s\n", who, path, e2.msg);
            /* unusable: set aside so that retention never counts it and no later run
             * trips on it again; renamed, never deleted (it may be worth a look) */
            if (set_aside_bad) set_aside(ckpt_dir, l.steps[i], "unusable", "cannot be resumed", log);
        }
    }
    cz_run_list_free(&l);
    return rc;
}

int cz_run_choose_auto(const char *ckpt_dir, char *chosen, size_t len, FILE *log, cz_error *err)
{
    chosen[0] = 0;
    DIR *dp = opendir(ckpt_dir);
    for (struct dirent *de; dp && (de = readdir(dp));) {
        if (strncmp(de->d_name, "ckpt-", 5) || !strstr(de->d_name, ".h5.tmp.")) continue;
        /* a write that a crash interrupted: never published, safe to drop */
        char p[4600];
        snprintf(p, sizeof p, "%s/%s", ckpt_dir, de->d_name);
        if (!unlink(p)) cz_run_say(log, "chainz: resume auto: removed %s (an interrupted checkpoint write)\n", p);
    }
    if (dp) closedir(dp);
    /* a `latest` that is not a regular file (a FIFO blocks whoever reads it): set aside */
    char latest[4400], to[4500];
    snprintf(latest, sizeof latest, "%s/latest", ckpt_dir);
    cz_error e3;
    if (cz_run_regular_or_absent(latest, &e3)) {
        snprintf(to, sizeof to, "%s.unusable", latest);
        if (rename(latest, to))
            return cz_error_set(err, CZ_EINVAL, "%s; cannot rename it to %s: %s", e3.msg, to, strerror(errno));
        cz_run_say(log, "chainz: resume auto: %s: renamed to %s\n", e3.msg, to);
    }
    int rc = newest_verified(ckpt_dir, chosen, len, 1, "resume auto", log, err);
    if (!rc && chosen[0]) {
        /* `latest` names what the run continues from. A kill between a checkpoint's rename
         * and the update of `latest` leaves it one behind; a run that resumes from that newer
         * checkpoint and has nothing left to train would otherwise never move it on. */
        char name[300] = "";
        const char *base = strrchr(chosen, '/');
        base = base ? base + 1 : chosen;
        if (read_pointer(latest, name, sizeof name) || strcmp(name, base)) {
            char text[320];
            snprintf(text, sizeof text, "%s\n", base);
            rc = cz_write_text_atomic(latest, text, err);
            if (!rc && name[0]) cz_run_say(log, "chainz: resume auto: latest named %s; it now names %s\n", name, base);
        }
    }
    if (!rc) rc = cz_run_repair_latest(ckpt_dir, err);
    if (!rc && !chosen[0]) cz_run_say(log, "chainz: resume auto: no usable checkpoint in %s, starting fresh\n", ckpt_dir);
    return rc;
}

int cz_run_resolve_newest(const char *arg, char *out, size_t len, FILE *log, cz_error *err)
{
    struct stat st;
    if (stat(arg, &st) != 0 || !S_ISDIR(st.st_mode)) return cz_run_resolve(arg, out, len, err);
    char dir[4400], pointed[4600] = "";
    snprintf(dir, sizeof dir, "%s/checkpoints", arg);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) snprintf(dir, sizeof dir, "%s", arg);
    cz_error e2;
    if (cz_run_resolve(arg, pointed, sizeof pointed, &e2)) pointed[0] = 0;
    int rc = newest_verified(dir, out, len, 0, "eval", log, err);
    if (rc) return rc;
    if (!out[0])
        return cz_error_set(err, CZ_EINVAL, "%s: no checkpoint in %s loads and verifies", arg, dir);
    if (pointed[0] && strcmp(pointed, out))
        cz_run_say(log, "chainz: eval: %s names %s, but %s is newer and verifies: evaluating %s\n",
            "latest", pointed, out, out);
    else
        cz_run_say(log, "chainz: eval: %s: the newest checkpoint that verifies is %s\n", arg, out);
    return 0;
}

int cz_run_set_aside_newer(const char *ckpt_dir, long step, FILE *log, cz_error *err)
{
    cz_ckpt_list l;
    int rc = cz_run_list(ckpt_dir, &l, err);
    if (rc) return rc;
    char why[96];
    snprintf(why, sizeof why, "is newer than the resumed step %ld", step);
    for (size_t i = 0; i < l.n; i++)
        if (l.steps[i] > step) set_aside(ckpt_dir, l.steps[i], "abandoned", why, log);
    cz_run_list_free(&l);
    return cz_run_repair_latest(ckpt_dir, err);
}

int cz_run_check_fresh(const char *ckpt_dir, cz_error *err)
{
    cz_ckpt_list l;
    int rc = cz_run_list(ckpt_dir, &l, err);
    if (!rc && l.n)
        rc = cz_error_set(err, CZ_EINVAL, "%s already holds checkpoints of a run: continue it with "
                          "--resume auto, or train into another --out", ckpt_dir);
    cz_run_list_free(&l);
    return rc;
}

void cz_run_prune(const char *ckpt_dir, long written, int keep, long keep_every)
{
    cz_ckpt_list l;
    cz_error e;
    if (cz_run_list(ckpt_dir, &l, &e)) return;
    /* only checkpoints of this run's past count: a later step here is never this run's
     * own (a resume sets those aside), so it must neither be deleted nor push ours out */
    int rank = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (l.steps[i] > written) continue;
        if (rank++ < keep || l.steps[i] == written) continue;
        if (keep_every && l.steps[i] % keep_every == 0) continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/ckpt-%08ld.h5", ckpt_dir, l.steps[i]);
        unlink(path);
    }
    cz_run_list_free(&l);
}

int cz_run_save(const char *ckpt_dir, const cz_checkpoint *c, int keep, long keep_every, cz_error *err)
{
    char path[4400], latest[4400], text[64];
    snprintf(path, sizeof path, "%s/ckpt-%08ld.h5", ckpt_dir, c->state.step);
    int rc = cz_ckpt_save(path, c, err);
    if (rc) return rc;
    /* the pointer moves only once the file is complete */
    snprintf(latest, sizeof latest, "%s/latest", ckpt_dir);
    snprintf(text, sizeof text, "ckpt-%08ld.h5\n", c->state.step);
    rc = cz_write_text_atomic(latest, text, err);
    if (!rc) cz_run_prune(ckpt_dir, c->state.step, keep, keep_every);
    return rc;
}
