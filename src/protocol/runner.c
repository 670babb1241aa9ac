/* Running the cells of a study: one cell in this process (cz_proto_run_task: prep, train
 * every grid point, choose on validation, evaluate on test, result.json), or all of them
 * as `chainz protocol SPEC --task I` children, `jobs` at a time (cz_proto_run_local). */
#include "chainz/protocol.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chainz/json.h"

#define KEY_LEN 8192
#define MAX_ARGV 512

extern char **environ;

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

int cz_proto_cell_done(const cz_proto_spec *s, size_t I, cz_error *err)
{
    char dir[CZ_PROTO_PATH], path[CZ_PROTO_PATH + 16], key[KEY_LEN];
    if (cz_proto_cell_dir(s, I, dir, sizeof dir) || cz_proto_cell_key(s, I, key, sizeof key))
        return cz_error_set(err, CZ_EINVAL, "cell %zu: path or key too long", I);
    snprintf(path, sizeof path, "%s/result.json", dir);
    if (!file_exists(path)) return 0;
    cz_json j;
    int rc = cz_json_read_file(&j, path, err);
    if (rc) return rc;
    const cz_json *k = cz_json_get(&j, "key");
    int same = k && k->type == CZ_JSON_STRING && !strcmp(k->str, key);
    if (!same) {
        size_t d = 0;
        const char *old = k && k->type == CZ_JSON_STRING ? k->str : "";
        while (old[d] && old[d] == key[d]) d++;
        while (d > 0 && key[d - 1] != ' ') d--; /* from the start of the differing field */
        rc = cz_error_set(err, CZ_EINVAL,
                          "%s was made by another spec (first difference: this spec has \"%.80s\", the result "
                          "\"%.80s\"): remove that folder to redo it, or use another run_root",
                          path, key + d, old + (d < strlen(old) ? d : strlen(old)));
    }
    cz_json_free(&j);
    return same ? 1 : rc;
}

/* removes a data folder's temporary twin (the files prep and this module write in it) */
static void drop_tmp(const char *tmp)
{
    static const char *const names[] = {"d-train.h5", "d-val.h5", "d-test.h5", "prep.log", "source.txt"};
    char path[CZ_PROTO_PATH + 64];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(path, sizeof path, "%s/%s", tmp, names[i]);
        unlink(path);
    }
    rmdir(tmp);
}

/* the data of (seed, fraction): RUN_ROOT/data/seed-<s>/<label>/d-{train,val,test}.h5 */
static int ensure_data(const cz_proto_spec *s, int f, int k, const char *self, char files[3][CZ_PROTO_PATH],
                       cz_error *err)
{
    static const char *const part[3] = {"train", "val", "test"};
    if (s->data_kind == CZ_PROTO_DATA_FILES) {
        for (int j = 0; j < 3; j++) snprintf(files[j], CZ_PROTO_PATH, "%s", s->files[j] ? s->files[j] : "");
        return 0;
    }
    char parent[CZ_PROTO_PATH], dir[CZ_PROTO_PATH], tmp[CZ_PROTO_PATH], path[CZ_PROTO_PATH + 64];
    snprintf(parent, sizeof parent, "%s/data/seed-%llu", s->run_root, (unsigned long long)s->seeds[k]);
    snprintf(dir, sizeof dir, "%s/%s", parent, s->fractions[f].label);
    for (int j = 0; j < 3; j++) files[j][0] = '\0';
    char source[KEY_LEN];
    size_t w = (size_t)snprintf(source, sizeof source, "%s", s->prep_format);
    for (int i = 0; i < s->n_prep_inputs && w < sizeof source; i++)
        w += (size_t)snprintf(source + w, sizeof source - w, " %s", s->prep_inputs[i]);
    for (int i = 0; i < s->n_prep_args && w < sizeof source; i++)
        w += (size_t)snprintf(source + w, sizeof source - w, " %s", s->prep_args[i]);
    char split[200];
    int sw = 0;
    for (int j = 0; j < 3; j++)
        if (s->split[j] > 0) sw += snprintf(split + sw, sizeof split - (size_t)sw, "%s%s=%.17g", sw ? "," : "", part[j], s->split[j]);
    if (w < sizeof source) w += (size_t)snprintf(source + w, sizeof source - w, " --split %s\n", split);
    if (w >= sizeof source) return cz_error_set(err, CZ_EINVAL, "the data source is too long to record");
    snprintf(path, sizeof path, "%s/source.txt", dir);
    if (file_exists(path)) {
        FILE *fp = fopen(path, "r");
        char old[KEY_LEN] = "";
        size_t n = fp ? fread(old, 1, sizeof old - 1, fp) : 0;
        if (fp) fclose(fp);
        old[n] = '\0';
        if (strcmp(old, source))
            return cz_error_set(err, CZ_EINVAL, "%s: made from another data source (%.200s): remove %s or use another run_root",
                                dir, old, dir);
    } else {
        int rc = cz_proto_mkdirs(parent, err);
        if (rc) return rc;
        snprintf(tmp, sizeof tmp, "%s/.tmp-%s-%ld", parent, s->fractions[f].label, (long)getpid());
        if ((rc = cz_proto_mkdirs(tmp, err))) return rc;
        char out[CZ_PROTO_PATH + 16], log[CZ_PROTO_PATH + 16], seed[32], count[32], fr[32], pc[64 * 21];
        snprintf(out, sizeof out, "%s/d.h5", tmp);
        snprintf(log, sizeof log, "%s/prep.log", tmp);
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)s->seeds[k]);
        const char *argv[MAX_ARGV];
        int n = 0;
        argv[n++] = self;
        argv[n++] = "prep";
        argv[n++] = s->prep_format;
        for (int i = 0; i < s->n_prep_inputs; i++) argv[n++] = s->prep_inputs[i];
        argv[n++] = "-o";
        argv[n++] = out;
        argv[n++] = "--split";
        argv[n++] = split;
        argv[n++] = "--seed";
        argv[n++] = seed;
        const cz_proto_fraction *fc = &s->fractions[f];
        if (fc->per_class) {
            int pw = 0;
            for (int c = 0; c < fc->n_per_class; c++)
                pw += snprintf(pc + pw, sizeof pc - (size_t)pw, "%s%ld", c ? "," : "", fc->per_class[c]);
            argv[n++] = "--count-per-class";
            argv[n++] = pc;
        } else if (fc->count) {
            snprintf(count, sizeof count, "%ld", fc->count);
            argv[n++] = "--count";
            argv[n++] = count;
        } else if (fc->fraction < 1) {
            snprintf(fr, sizeof fr, "%.17g", fc->fraction);
            argv[n++] = "--fraction";
            argv[n++] = fr;
        }
        for (int i = 0; i < s->n_prep_args && n < MAX_ARGV - 1; i++) argv[n++] = s->prep_args[i];
        argv[n] = NULL;
        int st = cz_proto_spawn((char *const *)argv, log, err);
        if (st < 0) return st;
        if (st != 0) {
            char last[600] = "";
            FILE *lf = fopen(log, "r");
            if (lf) {
                char line[600];
                while (fgets(line, sizeof line, lf)) snprintf(last, sizeof last, "%s", line);
                fclose(lf);
            }
            last[strcspn(last, "\n")] = '\0';
            drop_tmp(tmp);
            return cz_error_set(err, st == 1 ? CZ_EINVAL : CZ_ERUNTIME, "chainz prep failed (exit %d): %s", st, last);
        }
        snprintf(path, sizeof path, "%s/source.txt", tmp);
        if ((rc = cz_proto_write_atomic(path, source, strlen(source), err))) return rc;
        if (rename(tmp, dir) != 0) {
            if (errno != EEXIST && errno != ENOTEMPTY)
                return cz_error_set(err, CZ_EIO, "%s: cannot rename to %s: %s", tmp, dir, strerror(errno));
            drop_tmp(tmp); /* another task made the same data first (same seed, same bytes) */
        }
    }
    for (int j = 0; j < 3; j++)
        if (s->split[j] > 0) snprintf(files[j], CZ_PROTO_PATH, "%s/d-%s.h5", dir, part[j]);
    return 0;
}

static void last_line(const char *log, char *buf, size_t len)
{
    buf[0] = '\0';
    FILE *f = fopen(log, "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof line, f))
        if (strstr(line, "error") || strstr(line, "chainz")) snprintf(buf, len, "%s", line);
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
}

static int child_status(int st, const char *what, const char *log, cz_error *err)
{
    if (st < 0) return st;
    if (st == 0) return 0;
    if (st == 75) return cz_error_set(err, CZ_ESTOPPED, "%s stopped on a signal after a checkpoint (log %s)", what, log);
    char last[700];
    last_line(log, last, sizeof last);
    return cz_error_set(err, CZ_ERUNTIME, "%s failed (exit status %d): %s (log %s)", what, st, last, log);
}

static int train_point(const cz_proto_spec *s, const cz_proto_model *m, int g, uint64_t seed,
                       char files[3][CZ_PROTO_PATH], const char *rundir, const char *log, const char *self,
                       cz_error *err)
{
    const char *argv[MAX_ARGV];
    char seedbuf[32], threads[16], ranks[16], budget[32], steps[32], desc[512];
    const char *grid[128];
    int ng = m->n_points > 1 ? cz_proto_grid_point(m, g, grid, desc, sizeof desc) : 0;
    snprintf(seedbuf, sizeof seedbuf, "%llu", (unsigned long long)seed);
    snprintf(threads, sizeof threads, "%d", s->threads);
    snprintf(ranks, sizeof ranks, "%d", s->ranks);
    /* what launch/mpirun.sh sets: BLIS/OpenMP threads per rank, root allowed (containers, CI) */
    setenv("BLIS_NUM_THREADS", threads, 1);
    setenv("OMP_NUM_THREADS", threads, 1);
    if (s->ranks > 1 && geteuid() == 0) {
        setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
        setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    }
    int n = 0;
    if (s->ranks > 1) {
        argv[n++] = "mpirun";
        argv[n++] = "-np";
        argv[n++] = ranks;
        argv[n++] = "--oversubscribe";
        argv[n++] = "--bind-to";
        argv[n++] = "none";
        argv[n++] = "-x";
        argv[n++] = "BLIS_NUM_THREADS";
        argv[n++] = "-x";
        argv[n++] = "OMP_NUM_THREADS";
    }
    argv[n++] = self;
    argv[n++] = "train";
    argv[n++] = "--data";
    argv[n++] = files[0];
    if (files[1][0]) {
        argv[n++] = "--val";
        argv[n++] = files[1];
    }
    argv[n++] = "--out";
    argv[n++] = rundir;
    argv[n++] = "--seed";
    argv[n++] = seedbuf;
    argv[n++] = "--threads";
    argv[n++] = threads;
    if (s->n_train_args + m->n_args + ng + n + 12 >= MAX_ARGV)
        return cz_error_set(err, CZ_EINVAL, "%s: too many train options", s->path);
    for (int i = 0; i < s->n_train_args; i++) argv[n++] = s->train_args[i];
    for (int i = 0; i < m->n_args; i++) argv[n++] = m->args[i];
    for (int i = 0; i < ng; i++) argv[n++] = grid[i];
    /* with only a step budget, epochs must not end the run first */
    snprintf(budget, sizeof budget, "%ld", s->epochs ? s->epochs : 1000000L);
    argv[n++] = "--epochs";
    argv[n++] = budget;
    if (s->max_steps) {
        snprintf(steps, sizeof steps, "%ld", s->max_steps);
        argv[n++] = "--max-steps";
        argv[n++] = steps;
    }
    argv[n++] = "--resume";
    argv[n++] = "auto";
    argv[n] = NULL;
    return child_status(cz_proto_spawn((char *const *)argv, log, err), "chainz train", log, err);
}

static int run_eval(const cz_proto_spec *s, const char *rundir, const char *data, const char *json, int tau,
                    const char *log, const char *self, cz_error *err)
{
    const char *argv[16];
    int n = 0;
    argv[n++] = self;
    argv[n++] = "eval";
    argv[n++] = "--model";
    argv[n++] = rundir;
    argv[n++] = "--data";
    argv[n++] = data;
    argv[n++] = "--json";
    argv[n++] = json;
    if (tau) argv[n++] = "--tau";
    argv[n] = NULL;
    (void)s;
    return child_status(cz_proto_spawn((char *const *)argv, log, err), "chainz eval", log, err);
}

static int read_metric(const char *json, int metric, double *out, cz_error *err)
{
    cz_json j;
    int rc = cz_json_read_file(&j, json, err);
    if (rc) return rc;
    const cz_json *v = cz_json_get(&j, metric == CZ_PROTO_METRIC_MAE ? "mae" : "acc");
    if (!v || v->type != CZ_JSON_NUMBER) rc = cz_error_set(err, CZ_EINVAL, "%s: no %s number", json, metric ? "mae" : "acc");
    else *out = v->num;
    cz_json_free(&j);
    return rc;
}

static char *slurp(const char *path, cz_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cz_error_set(err, CZ_EIO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *b = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&b, &len);
    char buf[4096];
    size_t n;
    while (m && (n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, m);
    fclose(f);
    if (!m || fclose(m) != 0) {
        free(b);
        cz_error_set(err, CZ_ENOMEM, "out of memory");
        return NULL;
    }
    while (len && (b[len - 1] == '\n' || b[len - 1] == ' ')) b[--len] = '\0';
    return b;
}

int cz_proto_run_task(const cz_proto_spec *s, size_t I, const char *self, cz_error *err)
{
    if (I >= cz_proto_cells(s)) return cz_error_set(err, CZ_EINVAL, "task %zu: the spec has %zu cells (0..%zu)", I, cz_proto_cells(s), cz_proto_cells(s) - 1);
    int mi, f, k;
    cz_proto_cell_coords(s, I, &mi, &f, &k);
    const cz_proto_model *m = &s->models[mi];
    char dir[CZ_PROTO_PATH], key[KEY_LEN], files[3][CZ_PROTO_PATH];
    if (cz_proto_cell_dir(s, I, dir, sizeof dir) || cz_proto_cell_key(s, I, key, sizeof key))
        return cz_error_set(err, CZ_EINVAL, "cell %zu: path or key too long", I);
    const char *rel = dir + strlen(s->run_root) + 1;
    int rc = cz_proto_cell_done(s, I, err);
    if (rc < 0) return rc;
    if (rc == 1) {
        printf("chainz protocol: [%zu] %s: done already\n", I, rel);
        return 0;
    }
    if ((rc = cz_proto_mkdirs(dir, err))) return rc;
    printf("chainz protocol: [%zu] %s: start\n", I, rel);
    if ((rc = ensure_data(s, f, k, self, files, err))) return rc;
    char rundir[CZ_PROTO_PATH + 32], log[CZ_PROTO_PATH + 32], json[CZ_PROTO_PATH + 32], desc[512];
    char *val_items = NULL;
    size_t val_len = 0;
    FILE *vm = open_memstream(&val_items, &val_len);
    if (!vm) return cz_error_set(err, CZ_ENOMEM, "out of memory");
    int best = 0;
    double best_v = 0;
    for (int g = 0; g < m->n_points && !rc; g++) {
        const char *grid[128];
        if (m->n_points > 1) cz_proto_grid_point(m, g, grid, desc, sizeof desc);
        else desc[0] = '\0';
        snprintf(rundir, sizeof rundir, m->n_points > 1 ? "%s/grid-%d" : "%s/run", dir, g);
        snprintf(log, sizeof log, m->n_points > 1 ? "%s/grid-%d.log" : "%s/train.log", dir, g);
        if (cz_proto_signalled()) {
            rc = cz_error_set(err, CZ_ESTOPPED, "%s: stopped on a signal before training", rel);
            break;
        }
        if ((rc = train_point(s, m, g, s->seeds[k], files, rundir, log, self, err))) break;
        if (m->n_points > 1) { /* choose on the validation split only */
            snprintf(json, sizeof json, "%s/grid-%d-val.json", dir, g);
            double v = 0;
            if ((rc = run_eval(s, rundir, files[1], json, 0, log, self, err))) break;
            if ((rc = read_metric(json, s->metric, &v, err))) break;
            int better = s->metric == CZ_PROTO_METRIC_MAE ? v < best_v : v > best_v; /* ties: the first */
            if (g == 0 || better) {
                best = g;
                best_v = v;
            }
            fprintf(vm, "%s{\"point\": %d, \"options\": ", g ? ", " : "", g);
            cz_json_write_string(vm, desc);
            fprintf(vm, ", \"%s\": %.9g}", s->metric == CZ_PROTO_METRIC_MAE ? "mae" : "acc", v);
            printf("chainz protocol: [%zu] %s: %s: validation %s %.4f\n", I, rel, desc,
                   s->metric == CZ_PROTO_METRIC_MAE ? "mae" : "acc", v);
        }
    }
    if (fclose(vm) != 0 && !rc) rc = cz_error_set(err, CZ_ENOMEM, "out of memory");
    char *test = NULL, *res = NULL;
    size_t res_len = 0;
    if (!rc) {
        const char *grid[128];
        desc[0] = '\0';
        if (m->n_points > 1) cz_proto_grid_point(m, best, grid, desc, sizeof desc);
        snprintf(rundir, sizeof rundir, m->n_points > 1 ? "%s/grid-%d" : "%s/run", dir, best);
        snprintf(json, sizeof json, "%s/test.json", dir);
        snprintf(log, sizeof log, "%s/eval.log", dir);
        rc = run_eval(s, rundir, files[2], json, s->tau, log, self, err);
        if (!rc) test = slurp(json, err);
        if (!rc && !test) rc = err->code;
    }
    if (!rc) {
        cz_json check;
        if ((rc = cz_json_parse(&check, test, strlen(test), json, err)) == 0) cz_json_free(&check);
    }
    if (!rc) {
        FILE *r = open_memstream(&res, &res_len);
        if (!r) rc = cz_error_set(err, CZ_ENOMEM, "out of memory");
        else {
            fputs("{\"key\": ", r);
            cz_json_write_string(r, key);
            fputs(",\n \"model\": ", r);
            cz_json_write_string(r, m->name);
            fputs(", \"fraction\": ", r);
            cz_json_write_string(r, s->fractions[f].label);
            fprintf(r, ", \"seed\": %llu, \"run\": \"%s\", \"selected\": ", (unsigned long long)s->seeds[k],
                    rundir + strlen(dir) + 1);
            if (m->n_points > 1) cz_json_write_string(r, desc);
            else fputs("null", r);
            fprintf(r, ",\n \"validation\": [%s],\n \"test\": %s}\n", val_items ? val_items : "", test);
            if (fclose(r) != 0) rc = cz_error_set(err, CZ_ENOMEM, "out of memory");
        }
    }
    if (!rc) {
        snprintf(json, sizeof json, "%s/result.json", dir);
        rc = cz_proto_write_atomic(json, res, res_len, err);
    }
    if (!rc) {
        double acc = 0;
        snprintf(json, sizeof json, "%s/test.json", dir);
        read_metric(json, s->metric, &acc, err);
        printf("chainz protocol: [%zu] %s: done%s%s, test %s %.4f\n", I, rel, desc[0] ? ", chose " : "", desc,
               s->metric == CZ_PROTO_METRIC_MAE ? "mae" : "acc", acc);
    }
    free(val_items);
    free(test);
    free(res);
    return rc;
}

int cz_proto_run_local(const cz_proto_spec *s, int jobs, const char *self, int *failed, cz_error *err)
{
    size_t N = cz_proto_cells(s), next = 0, done = 0, skipped = 0;
    *failed = 0;
    unsigned char *todo = calloc(N ? N : 1, 1);
    pid_t *pids = calloc((size_t)jobs, sizeof *pids);
    size_t *cell = calloc((size_t)jobs, sizeof *cell);
    if (!todo || !pids || !cell) {
        free(todo);
        free(pids);
        free(cell);
        return cz_error_set(err, CZ_ENOMEM, "out of memory");
    }
    int rc = 0;
    for (size_t I = 0; I < N && !rc; I++) { /* every cell checked before anything runs */
        int d = cz_proto_cell_done(s, I, err);
        if (d < 0) rc = d;
        else if (d == 1) skipped++;
        else todo[I] = 1;
    }
    if (!rc) {
        printf("chainz protocol: %zu runs (%d models x %d fractions x %d seeds), %zu done already, %zu to run, %d at a "
               "time\n", N, s->n_models, s->n_fractions, s->n_seeds, skipped, N - skipped, jobs);
        fflush(stdout);
    }
    int running = 0, stopped = 0, forwarded = 0;
    char idx[32];
    while (!rc) {
        while (running < jobs && !cz_proto_signalled()) {
            while (next < N && !todo[next]) next++;
            if (next >= N) break;
            snprintf(idx, sizeof idx, "%zu", next);
            const char *argv[] = {self, "protocol", s->path, "--task", idx, NULL};
            int slot = 0;
            while (pids[slot]) slot++;
            int e = posix_spawn(&pids[slot], self, NULL, NULL, (char *const *)argv, environ);
            if (e) {
                pids[slot] = 0;
                rc = cz_error_set(err, CZ_ERUNTIME, "cannot start %s: %s", self, strerror(e));
                break;
            }
            cell[slot] = next++;
            running++;
        }
        if (!running) break;
        if (cz_proto_signalled() && !forwarded) {
            for (int i = 0; i < jobs; i++)
                if (pids[i]) kill(pids[i], SIGTERM);
            forwarded = 1;
        }
        int st;
        pid_t w = waitpid(-1, &st, WNOHANG);
        if (w <= 0) {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        for (int i = 0; i < jobs; i++) {
            if (pids[i] != w) continue;
            pids[i] = 0;
            running--;
            int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            if (code == 0) done++;
            else if (code == 75) stopped++;
            else {
                (*failed)++;
                fprintf(stderr, "chainz protocol: run %zu failed (exit status %d): see its message above\n", cell[i], code);
            }
        }
    }
    free(todo);
    free(pids);
    free(cell);
    if (rc) return rc;
    printf("chainz protocol: %zu runs finished now, %zu done before, %d failed, %d stopped\n", done, skipped, *failed,
           stopped);
    if (stopped || cz_proto_signalled())
        return cz_error_set(err, CZ_ESTOPPED, "stopped on a signal: run the same command again to resume");
    if (*failed) return cz_error_set(err, CZ_ERUNTIME, "%d run(s) failed", *failed);
    return 0;
}
