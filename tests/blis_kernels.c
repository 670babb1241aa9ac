/* Lists the BLIS kernel sets this machine can run, one "ID NAME" line each, so that the
 * bitwise tests run once per kernel set (tests/kernel_sets.sh). A kernel set is listed
 * when a child process forced to it (BLIS_ARCH_TYPE=ID) initialises BLIS and computes a
 * small sgemm correctly: the library may lack it (BLIS aborts) or the CPU its
 * instructions (SIGILL), and only trying tells both apart from the CPU flags.
 *
 *   blis_kernels            all runnable sets
 *   blis_kernels --probe    (internal) the child's check */
#include <blis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

static int probe(void)
{
    bli_init();
    float a[6 * 4], b[4 * 5], c[6 * 5], one = 1, zero = 0;
    for (int i = 0; i < 24; i++) a[i] = (float)(i % 7) - 3;
    for (int i = 0; i < 20; i++) b[i] = (float)(i % 5) - 2;
    bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, 6, 5, 4, &one, a, 4, 1, b, 5, 1, &zero, c, 5, 1);
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 5; j++) {
            float s = 0;
            for (int k = 0; k < 4; k++) s += a[i * 4 + k] * b[k * 5 + j];
            if (s != c[i * 5 + j]) return 1;
        }
    printf("%s\n", bli_arch_string(bli_arch_query_id()));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--probe")) return probe();
    for (int id = 0; id < (int)BLIS_NUM_ARCHS; id++) {
        int fd[2];
        if (pipe(fd)) return 2;
        pid_t pid = fork();
        if (pid < 0) return 2;
        if (pid == 0) {
            char v[16];
            snprintf(v, sizeof v, "%d", id);
            setenv("BLIS_ARCH_TYPE", v, 1);
            dup2(fd[1], 1);
            int devnull = open("/dev/null", 1);
            if (devnull >= 0) dup2(devnull, 2);
            execl("/proc/self/exe", argv[0], "--probe", (char *)NULL);
            _exit(127);
        }
        close(fd[1]);
        char name[64] = "";
        ssize_t n = read(fd[0], name, sizeof name - 1);
        close(fd[0]);
        int st;
        waitpid(pid, &st, 0);
        if (n > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            name[strcspn(name, "\n")] = 0;
            if (!strcmp(name, bli_arch_string((arch_t)id))) printf("%d %s\n", id, name);
        }
    }
    return 0;
}
