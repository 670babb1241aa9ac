/* Shared helpers of the protocol modules: folders, atomic files, child processes and
 * signals. Children are started with posix_spawnp from an argv (never a shell string). */
#include "chainz/protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
}

void cz_proto_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

int cz_proto_signalled(void)
{
    return got_signal != 0;
}

int cz_proto_mkdirs(const char *path, cz_error *err)
{
    char buf[CZ_PROTO_PATH];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return cz_error_set(err, CZ_EINVAL, "path too long: %.100s...", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return cz_error_set(err, CZ_EIO, "%s: cannot create the folder: %s", buf, strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return cz_error_set(err, CZ_EIO, "%s: not a folder", path);
    return 0;
}

int cz_proto_write_atomic(const char *path, const char *text, size_t len, cz_error *err)
{
    char tmp[CZ_PROTO_PATH + 32], dir[CZ_PROTO_PATH];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return cz_error_set(err, CZ_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return cz_error_set(err, CZ_EIO, "%s: cannot write: %s", tmp, strerror(e));
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return cz_error_set(err, CZ_EIO, "%s: cannot write: %s", tmp, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return cz_error_set(err, CZ_EIO, "%s: cannot rename into place: %s", path, strerror(e));
    }
    snprintf(dir, sizeof dir, "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

int cz_proto_spawn(char *const argv[], const char *log, cz_error *err)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (log) {
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    }
    pid_t pid;
    fflush(stdout);
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) return cz_error_set(err, CZ_ERUNTIME, "cannot start %s: %s", argv[0], strerror(rc));
    int forwarded = 0, st;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) return cz_error_set(err, CZ_ERUNTIME, "waiting for %s: %s", argv[0], strerror(errno));
        if (got_signal && !forwarded) {
            /* SIGUSR1: chainz train checkpoints and exits 75; mpirun forwards it to the ranks
             * and exits 75 too (on SIGTERM it would exit 1). A forwarded SIGINT would be the
             * terminal's second Ctrl-C, which stops train at once. */
            kill(pid, SIGUSR1);
            forwarded = 1;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}
