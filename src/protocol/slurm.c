/* chainz protocol --slurm: the task list and the batch scripts of a study, and their
 * submission (one array task per unfinished run, then the report as a dependent job).
 * The array script follows launch/train.sbatch: SLURM's warning signal is forwarded to the
 * task (which checkpoints its training and exits 75), and a task stopped so requeues
 * itself; the rerun resumes from the checkpoint. A finished run is never redone: the
 * array holds only unfinished runs, and a task whose result exists returns at once. */
#include "chainz/protocol.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* a single-quoted shell word */
static void sh_word(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputs("'\\''", f);
        else fputc(*s, f);
    }
    fputc('\'', f);
}

static int write_text(const char *path, char *buf, size_t len, FILE *m, cz_error *err)
{
    (void)m;
    return cz_proto_write_atomic(path, buf, len, err);
}

static int array_script(const cz_proto_spec *s, const char *self, const char *spec, const char *dir, cz_error *err)
{
    char *buf = NULL, path[CZ_PROTO_PATH + 32];
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return cz_error_set(err, CZ_ENOMEM, "out of memory");
    fprintf(f, "#!/usr/bin/env bash\n"
               "# Written by `chainz protocol %s --slurm`: one array task per run of the study (task id = run index\n"
               "# of tasks.txt). Each task runs `chainz protocol SPEC --task ID`; SLURM's warning signal is\n"
               "# forwarded so that the training checkpoints and the task exits 75, and the task then\n"
               "# requeues itself (launch/train.sbatch does the same); the rerun resumes from the checkpoint.\n"
               "#SBATCH --job-name=chainz-protocol\n#SBATCH --ntasks=%d\n#SBATCH --cpus-per-task=%d\n"
               "#SBATCH --time=%s\n",
            s->path, s->ranks, s->threads, s->slurm_time[0] ? s->slurm_time : "24:00:00");
    if (s->slurm_partition[0]) fprintf(f, "#SBATCH --partition=%s\n", s->slurm_partition);
    fprintf(f, "#SBATCH --signal=B:USR1@120\n#SBATCH --requeue\n#SBATCH --open-mode=append\n"
               "#SBATCH --output=%s/task-%%A_%%a.out\nset -uo pipefail\n", dir);
    fputs("chainz=${CHAINZ:-", f);
    sh_word(f, self);
    fputs("}\nspec=", f);
    sh_word(f, spec);
    fputs("\n"
          "say() { echo \"protocol.sbatch: $*\"; }\n"
          "[ -n \"${SLURM_ARRAY_TASK_ID:-}\" ] || { echo \"protocol.sbatch: not an array task\" >&2; exit 2; }\n"
          "step=\"\"; warned=0; signals=0\n"
          "forward() {\n"
          "    signals=$((signals + 1))\n"
          "    [ \"$1\" = USR1 ] && warned=1\n"
          "    if [ -n \"$step\" ]; then say \"caught SIG$1: forwarding SIGUSR1 to the task (pid $step)\"; kill -USR1 \"$step\" 2>/dev/null || true; fi\n"
          "}\n"
          "trap 'forward USR1' USR1\n"
          "trap 'forward TERM' TERM\n"
          "if [ \"$(id -u)\" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi\n"
          "export OMPI_MCA_odls_base_sigkill_timeout=${OMPI_MCA_odls_base_sigkill_timeout:-10}\n"
          "say \"$(date -u +%Y-%m-%dT%H:%M:%SZ) host $(hostname) array ${SLURM_ARRAY_JOB_ID:--}_${SLURM_ARRAY_TASK_ID} restart ${SLURM_RESTART_COUNT:-0}\"\n"
          "\"$chainz\" protocol \"$spec\" --task \"$SLURM_ARRAY_TASK_ID\" &\n"
          "step=$!\n"
          "[ \"$signals\" -gt 0 ] && kill -USR1 \"$step\" 2>/dev/null\n"
          "while :; do seen=$signals; wait \"$step\"; status=$?; [ \"$signals\" -ne \"$seen\" ] || break; done\n"
          "say \"task exited with status $status\"\n"
          "[ \"$status\" -eq 0 ] && exit 0\n"
          "if [ \"$status\" -eq 75 ] || [ \"$warned\" -eq 1 ]; then\n"
          "    id=${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\n"
          "    say \"requeueing $id (the rerun resumes from the checkpoint)\"\n"
          "    trap '' USR1 TERM\n"
          "    scontrol requeue \"$id\" && exit 0\n"
          "    say \"scontrol requeue $id failed: submit again to resume\"\n"
          "    exit 75\n"
          "fi\n"
          "exit \"$status\"\n", f);
    if (fclose(f) != 0) {
        free(buf);
        return cz_error_set(err, CZ_ENOMEM, "out of memory");
    }
    snprintf(path, sizeof path, "%s/protocol.sbatch", dir);
    int rc = write_text(path, buf, len, NULL, err);
    free(buf);
    return rc;
}

static int report_script(const cz_proto_spec *s, const char *self, const char *spec, const char *dir, cz_error *err)
{
    char *buf = NULL, path[CZ_PROTO_PATH + 32];
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return cz_error_set(err, CZ_ENOMEM, "out of memory");
    fprintf(f, "#!/usr/bin/env bash\n# Written by `chainz protocol %s --slurm`: the report, after the array job.\n"
               "#SBATCH --job-name=chainz-protocol-report\n#SBATCH --ntasks=1\n#SBATCH --time=0:30:00\n",
            s->path);
    if (s->slurm_partition[0]) fprintf(f, "#SBATCH --partition=%s\n", s->slurm_partition);
    fprintf(f, "#SBATCH --output=%s/report-%%j.out\nset -uo pipefail\n", dir);
    fputs("chainz=${CHAINZ:-", f);
    sh_word(f, self);
    fputs("}\nexec \"$chainz\" protocol ", f);
    sh_word(f, spec);
    fputs(" --report\n", f);
    if (fclose(f) != 0) {
        free(buf);
        return cz_error_set(err, CZ_ENOMEM, "out of memory");
    }
    snprintf(path, sizeof path, "%s/report.sbatch", dir);
    int rc = write_text(path, buf, len, NULL, err);
    free(buf);
    return rc;
}

/* runs sbatch with args, returns the job id it prints (--parsable) */
static int sbatch(const char *const *args, const char *dir, char *jobid, size_t len, cz_error *err)
{
    char out[CZ_PROTO_PATH + 32];
    snprintf(out, sizeof out, "%s/sbatch.out", dir);
    unlink(out);
    int st = cz_proto_spawn((char *const *)args, out, err);
    char line[512] = "";
    FILE *f = fopen(out, "r");
    if (f) {
        if (!fgets(line, sizeof line, f)) line[0] = '\0';
        fclose(f);
    }
    line[strcspn(line, "\n")] = '\0';
    if (st < 0) return st;
    if (st != 0) return cz_error_set(err, CZ_ERUNTIME, "sbatch failed (exit %d): %s", st, line);
    line[strcspn(line, ";")] = '\0'; /* --parsable: "JOBID" or "JOBID;CLUSTER" */
    if (!line[0] || strspn(line, "0123456789") != strlen(line))
        return cz_error_set(err, CZ_ERUNTIME, "sbatch printed no job id: %s", line);
    snprintf(jobid, len, "%s", line);
    return 0;
}

int cz_proto_slurm(const cz_proto_spec *s, const char *self, int submit, cz_error *err)
{
    char dir[CZ_PROTO_PATH + 16], spec[CZ_PROTO_PATH], path[CZ_PROTO_PATH + 32];
    if (!realpath(s->path, spec)) return cz_error_set(err, CZ_EIO, "%s: %s", s->path, strerror(errno));
    snprintf(dir, sizeof dir, "%s/slurm", s->run_root);
    int rc = cz_proto_mkdirs(dir, err);
    if (rc) return rc;
    size_t N = cz_proto_cells(s), todo = 0;
    char *list = NULL, *tasks = NULL;
    size_t list_len = 0, tasks_len = 0;
    FILE *lf = open_memstream(&list, &list_len), *tf = open_memstream(&tasks, &tasks_len);
    if (!lf || !tf) return cz_error_set(err, CZ_ENOMEM, "out of memory");
    fputs("# task\tmodel\tfraction\tseed\tstatus\tfolder\n", tf);
    long run_start = -1, prev = -2;
    for (size_t I = 0; I <= N && !rc; I++) {
        int d = 1;
        if (I < N) {
            d = cz_proto_cell_done(s, I, err);
            if (d < 0) {
                rc = d;
                break;
            }
            int m, f, k;
            cz_proto_cell_coords(s, I, &m, &f, &k);
            char cd[CZ_PROTO_PATH];
            cz_proto_cell_dir(s, I, cd, sizeof cd);
            fprintf(tf, "%zu\t%s\t%s\t%llu\t%s\t%s\n", I, s->models[m].name, s->fractions[f].label,
                    (unsigned long long)s->seeds[k], d ? "done" : "todo", cd);
        }
        if (!d) { /* ranges of consecutive unfinished runs: 0-3,5,7-9 */
            todo++;
            if ((long)I != prev + 1) run_start = (long)I;
            prev = (long)I;
            continue;
        }
        if (run_start >= 0) {
            fprintf(lf, "%s%ld", list_len || ftell(lf) ? "," : "", run_start);
            if (prev > run_start) fprintf(lf, "-%ld", prev);
            run_start = -1;
        }
    }
    fclose(lf);
    fclose(tf);
    if (!rc) {
        snprintf(path, sizeof path, "%s/tasks.txt", dir);
        rc = cz_proto_write_atomic(path, tasks, tasks_len, err);
    }
    if (!rc) rc = array_script(s, self, spec, dir, err);
    if (!rc) rc = report_script(s, self, spec, dir, err);
    if (!rc) {
        printf("chainz protocol: %zu runs, %zu to do; wrote %s/tasks.txt, protocol.sbatch, report.sbatch\n", N, todo, dir);
        if (!submit && todo)
            printf("  submit: sbatch --array=%s %s/protocol.sbatch\n  then:   sbatch --dependency=afterok:JOBID "
                   "%s/report.sbatch\n", list, dir, dir);
        else if (!submit)
            printf("  every run is done: sbatch %s/report.sbatch (or chainz protocol %s --report)\n", dir, s->path);
    }
    if (!rc && submit) {
        char job[64] = "", rjob[64], arr[64], dep[96], script[CZ_PROTO_PATH + 32], rscript[CZ_PROTO_PATH + 32];
        snprintf(script, sizeof script, "%s/protocol.sbatch", dir);
        snprintf(rscript, sizeof rscript, "%s/report.sbatch", dir);
        if (todo) {
            char *array = malloc(strlen(list) + 16);
            if (!array) rc = cz_error_set(err, CZ_ENOMEM, "out of memory");
            else {
                sprintf(array, "--array=%s", list);
                const char *args[] = {"sbatch", "--parsable", array, script, NULL};
                rc = sbatch(args, dir, job, sizeof job, err);
                free(array);
            }
            (void)arr;
        }
        if (!rc) {
            snprintf(dep, sizeof dep, "--dependency=afterok:%s", job);
            const char *args_dep[] = {"sbatch", "--parsable", dep, rscript, NULL};
            const char *args_now[] = {"sbatch", "--parsable", rscript, NULL};
            rc = sbatch(todo ? args_dep : args_now, dir, rjob, sizeof rjob, err);
            if (!rc && todo)
                printf("chainz protocol: submitted array job %s (%zu runs: %s) and report job %s (afterok:%s)\n", job,
                       todo, list, rjob, job);
            else if (!rc)
                printf("chainz protocol: every run is done; submitted report job %s\n", rjob);
        }
    }
    free(list);
    free(tasks);
    return rc;
}
