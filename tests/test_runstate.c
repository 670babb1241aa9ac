/* The run directory's state (include/chainz/runstate.h), on one process, without MPI:
 * listing beyond 4096 entries, --resume auto with only unusable files (set aside, never
 * deleted, and the new run's checkpoints survive retention), the run lock naming its
 * holder, `latest` accepted as a checkpoint, the configuration compared field by field,
 * the data identified by content, the BLIS warning, the history truncation. */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "chainz/runstate.h"

typedef struct {
    char dir[64];
    char ck[128]; /* dir/checkpoints */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/chainz-test-runstate-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->ck, sizeof f->ck, "%s/checkpoints", f->dir);
    if (mkdir(f->ck, 0755)) return -1;
    *state = f;
    return 0;
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (!lstat(p, &st) && S_ISDIR(st.st_mode)) rm_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int teardown(void **state)
{
    fixture *f = *state;
    rm_tree(f->dir);
    free(f);
    return 0;
}

static void touch(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static int exists(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int exists(const char *fmt, ...)
{
    char p[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p, sizeof p, fmt, ap);
    va_end(ap);
    return access(p, F_OK) == 0;
}

static const cz_model_spec spec = {.d = 5, .n_hidden = 2, .width = {4, 3}, .act = {CZ_ACT_POLY, CZ_ACT_POLY},
                                   .head = CZ_HEAD_CLASSIFY, .classes = 3};

/* a small valid checkpoint at `step` */
static void make_ckpt(cz_checkpoint *c, long step, const char *config)
{
    memset(c, 0, sizeof *c);
    cz_error err = {0};
    assert_int_equal(cz_model_init(&c->model, &spec, &err), 0);
    size_t n = c->model.n_params;
    c->params = calloc(n, sizeof(float));
    c->optim = CZ_OPT_SGD;
    c->opt_len = n;
    c->opt_state = calloc(n, sizeof(float));
    assert_non_null(c->params);
    assert_non_null(c->opt_state);
    for (size_t i = 0; i < n; i++) c->params[i] = (float)i * 0.25f;
    c->state.step = step;
    c->state.epoch = step / 10;
    c->state.world_size = 2;
    c->config_json = strdup(config);
    c->has_identity = 1;
    c->data = (cz_data_identity){.bytes = 1000, .n = 300, .d = 5, .classes = 3, .labels_checksum = 7,
                                 .rows_checksum = 9};
    snprintf(c->blas_version, sizeof c->blas_version, "0.9.0");
    snprintf(c->blas_kernels, sizeof c->blas_kernels, "haswell");
    c->threads = 1;
    snprintf(c->version, sizeof c->version, "test");
}

static const char *config_a =
    "{\"data\": \"/x/train.h5\", \"holdout\": 0.1, \"standardize\": 1, \"dropout\": 0, \"batch\": 64, "
    "\"seed\": 18446744073709551615, \"epochs\": 3, \"lr\": 0.001, \"micro_batch\": 32}";

/* More than 4096 checkpoints: the listing sees every one, newest first. */
static void test_runstate_list_beyond_4096(void **state)
{
    fixture *f = *state;
    enum { N = 5000 };
    for (long s = 1; s <= N; s++) {
        char p[256];
        snprintf(p, sizeof p, "%s/ckpt-%08ld.h5", f->ck, s * 3);
        touch(p, "");
    }
    char other[256];
    snprintf(other, sizeof other, "%s/ckpt-00000007.h5.unusable", f->ck);
    touch(other, "");
    cz_ckpt_list l;
    cz_error err = {0};
    assert_int_equal(cz_run_list(f->ck, &l, &err), 0);
    assert_int_equal(l.n, N);
    assert_int_equal(l.steps[0], 3L * N);
    assert_int_equal(l.steps[N - 1], 3);
    for (size_t i = 1; i < l.n; i++) assert_true(l.steps[i - 1] > l.steps[i]);
    cz_run_list_free(&l);
    /* a missing directory is an empty list, not an error */
    char missing[256];
    snprintf(missing, sizeof missing, "%s/nope", f->dir);
    assert_int_equal(cz_run_list(missing, &l, &err), 0);
    assert_int_equal(l.n, 0);
}

/* The reproduction of issue 13: three junk ckpt-0000999x.h5, --resume auto, a 2-epoch
 * run. The junk is set aside (renamed, not deleted), `latest` is never left dangling, and
 * retention never deletes the new run's own checkpoints. */
static void test_runstate_auto_with_only_unusable_files(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 3; i++) {
        char p[256];
        snprintf(p, sizeof p, "%s/ckpt-0000999%d.h5", f->ck, i);
        touch(p, "junk, not HDF5\n");
    }
    char latest[256];
    snprintf(latest, sizeof latest, "%s/latest", f->ck);
    touch(latest, "ckpt-00009992.h5\n");
    char chosen[512], *logbuf = NULL;
    size_t loglen = 0;
    FILE *log = open_memstream(&logbuf, &loglen);
    cz_error err = {0};
    assert_int_equal(cz_run_choose_auto(f->ck, chosen, sizeof chosen, log, &err), 0);
    fclose(log);
    assert_string_equal(chosen, "");
    for (int i = 0; i < 3; i++) {
        assert_false(exists("%s/ckpt-0000999%d.h5", f->ck, i));
        assert_true(exists("%s/ckpt-0000999%d.h5.unusable", f->ck, i));
    }
    assert_non_null(strstr(logbuf, "renamed to"));
    assert_non_null(strstr(logbuf, "starting fresh"));
    free(logbuf);
    assert_false(exists("%s", latest)); /* it named a file that is gone */

    /* the fresh run writes two epochs with --keep 1: its newest always survives */
    cz_checkpoint c;
    for (long step = 10; step <= 20; step += 10) {
        make_ckpt(&c, step, config_a);
        assert_int_equal(cz_run_save(f->ck, &c, 1, 0, &err), 0);
        cz_ckpt_free(&c);
        assert_true(exists("%s/ckpt-%08ld.h5", f->ck, step));
        char target[512];
        assert_int_equal(cz_run_resolve(latest, target, sizeof target, &err), 0);
        assert_true(exists("%s", target));
    }
    assert_false(exists("%s/ckpt-%08d.h5", f->ck, 10)); /* keep 1 */
    /* a later-step file that is not this run's (left by hand) neither counts nor goes */
    char stray[256];
    snprintf(stray, sizeof stray, "%s/ckpt-00099999.h5", f->ck);
    touch(stray, "junk");
    make_ckpt(&c, 30, config_a);
    assert_int_equal(cz_run_save(f->ck, &c, 1, 0, &err), 0);
    cz_ckpt_free(&c);
    assert_true(exists("%s/ckpt-%08d.h5", f->ck, 30));
    assert_true(exists("%s", stray));
    for (int i = 0; i < 3; i++) assert_true(exists("%s/ckpt-0000999%d.h5.unusable", f->ck, i));
}

/* A newer format is set aside too, and an older usable checkpoint is chosen. */
static void test_runstate_auto_skips_newer_format(void **state)
{
    fixture *f = *state;
    cz_checkpoint c;
    cz_error err = {0};
    make_ckpt(&c, 10, config_a);
    assert_int_equal(cz_run_save(f->ck, &c, 3, 0, &err), 0);
    cz_ckpt_free(&c);
    /* a "version 3" file: the same bytes with the version attribute patched */
    char good[256], newer[256];
    snprintf(good, sizeof good, "%s/ckpt-00000010.h5", f->ck);
    snprintf(newer, sizeof newer, "%s/ckpt-00000020.h5", f->ck);
    FILE *in = fopen(good, "rb");
    assert_non_null(in);
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, in);
    fclose(in);
    /* the attribute named "version" is followed (within its message) by its value 2 */
    unsigned char *at = memmem(buf, n, "version", 8);
    assert_non_null(at);
    long two = 2;
    unsigned char *v = memmem(at, n - (size_t)(at - buf), &two, sizeof two);
    assert_non_null(v);
    v[0] = 3;
    FILE *out = fopen(newer, "wb");
    fwrite(buf, 1, n, out);
    fclose(out);
    assert_int_equal(cz_ckpt_load(newer, &c, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "version 3"));
    char chosen[512];
    assert_int_equal(cz_run_choose_auto(f->ck, chosen, sizeof chosen, NULL, &err), 0);
    assert_string_equal(chosen, good);
    assert_true(exists("%s.unusable", newer));
}

/* A second holder is refused with the first one's pid and host; release frees it. */
static void test_runstate_lock_names_holder(void **state)
{
    fixture *f = *state;
    cz_run_lock a, b;
    cz_error err = {0};
    char run[256];
    snprintf(run, sizeof run, "%s/run", f->dir); /* created by the lock */
    assert_int_equal(cz_run_lock_acquire(&a, run, &err), 0);
    assert_int_equal(cz_run_lock_acquire(&b, run, &err), CZ_EINVAL);
    char pid[64], host[256] = "";
    snprintf(pid, sizeof pid, "pid=%ld", (long)getpid());
    gethostname(host, sizeof host - 1);
    assert_non_null(strstr(err.msg, pid));
    assert_non_null(strstr(err.msg, host));
    assert_non_null(strstr(err.msg, "start="));
    assert_int_equal(b.fd, -1);
    cz_run_lock_release(&a);
    cz_run_lock_release(&a); /* idempotent */
    assert_int_equal(cz_run_lock_acquire(&b, run, &err), 0);
    cz_run_lock_release(&b);
    cz_run_lock_release(NULL);
}

/* `latest`, a checkpoints directory and a run directory resolve to the checkpoint file. */
static void test_runstate_resolve_latest(void **state)
{
    fixture *f = *state;
    cz_checkpoint c;
    cz_error err = {0};
    make_ckpt(&c, 40, config_a);
    assert_int_equal(cz_run_save(f->ck, &c, 3, 0, &err), 0);
    cz_ckpt_free(&c);
    char want[256], got[512], arg[256];
    snprintf(want, sizeof want, "%s/ckpt-00000040.h5", f->ck);
    snprintf(arg, sizeof arg, "%s/latest", f->ck);
    assert_int_equal(cz_run_resolve(arg, got, sizeof got, &err), 0);
    assert_string_equal(got, want);
    assert_int_equal(cz_ckpt_load(got, &c, &err), 0);
    cz_ckpt_free(&c);
    assert_int_equal(cz_run_resolve(f->ck, got, sizeof got, &err), 0);
    assert_string_equal(got, want);
    assert_int_equal(cz_run_resolve(f->dir, got, sizeof got, &err), 0);
    assert_string_equal(got, want);
    assert_int_equal(cz_run_resolve(want, got, sizeof got, &err), 0);
    assert_string_equal(got, want);
    /* a dangling pointer is refused, naming the missing file */
    touch(arg, "ckpt-00000777.h5\n");
    assert_int_equal(cz_run_resolve(arg, got, sizeof got, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "ckpt-00000777.h5, which does not exist"));
    assert_int_equal(cz_run_repair_latest(f->ck, &err), 0);
    assert_int_equal(cz_run_resolve(arg, got, sizeof got, &err), 0);
    assert_string_equal(got, want);
}

static int check(const char *mine, const cz_data_identity *id, const cz_checkpoint *c, char **log_text,
                 cz_error *err)
{
    size_t len = 0;
    FILE *log = open_memstream(log_text, &len);
    cz_run_info info = {.spec = &spec, .optim = CZ_OPT_SGD, .config_json = mine, .data = id,
                        .data_path = "train.h5", .blas_version = "0.9.0", .blas_kernels = "haswell",
                        .world_size = 2};
    int rc = cz_run_check_compatible(&info, c, "ck.h5", log, err);
    fclose(log);
    return rc;
}

/* Field by field: the same values written differently are the same; a changed batch is
 * refused by name; the data path may change, its content may not. */
static void test_runstate_config_field_by_field(void **state)
{
    (void)state;
    cz_checkpoint c;
    make_ckpt(&c, 10, config_a);
    cz_data_identity id = c.data;
    cz_error err = {0};
    char *log = NULL;
    /* other path, other key order, 0.1 written with 17 digits, spaces: accepted */
    const char *same =
        "{\"seed\": 18446744073709551615, \"batch\": 64, \"data\": \"rel/../train.h5\", \"holdout\": "
        "0.10000000000000001, \"standardize\": 1, \"dropout\": 0.0, \"epochs\": 5, \"lr\": 0.002, \"micro_batch\": 32}";
    assert_int_equal(check(same, &id, &c, &log, &err), 0);
    assert_non_null(strstr(log, "epochs changes from 3 to 5"));
    assert_non_null(strstr(log, "lr changes from 0.001 to 0.002"));
    free(log);
    const char *other_batch = "{\"data\": \"/x/train.h5\", \"holdout\": 0.1, \"standardize\": 1, \"dropout\": 0, "
                              "\"batch\": 32, \"seed\": 18446744073709551615}";
    assert_int_equal(check(other_batch, &id, &c, &log, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "batch = 64, this run asks for batch = 32"));
    free(log);
    /* a seed that differs only beyond double precision is a different seed */
    const char *other_seed = "{\"batch\": 64, \"seed\": 18446744073709551614}";
    assert_int_equal(check(other_seed, &id, &c, &log, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "seed"));
    free(log);
    /* another file at the same path: refused, naming what changed */
    cz_data_identity grown = id;
    grown.n = 500;
    grown.bytes = 1800;
    grown.labels_checksum = 8;
    assert_int_equal(check(config_a, &grown, &c, &log, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "300 rows -> 500"));
    assert_non_null(strstr(err.msg, "labels differ"));
    free(log);
    cz_data_identity rows = id;
    rows.rows_checksum = 10;
    assert_int_equal(check(config_a, &rows, &c, &log, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "sampled feature rows differ"));
    free(log);
    /* another BLIS kernel set: a warning, not an error */
    snprintf(c.blas_kernels, sizeof c.blas_kernels, "skx");
    assert_int_equal(check(config_a, &id, &c, &log, &err), 0);
    assert_non_null(strstr(log, "kernels skx"));
    assert_non_null(strstr(log, "last bits differ"));
    free(log);
    /* not JSON: refused, not guessed */
    assert_int_equal(check("batch=64", &id, &c, &log, &err), CZ_EINVAL);
    free(log);
    cz_ckpt_free(&c);
}

/* The identity of a data file: the same file by another path is the same; the same path
 * rewritten with 500 rows instead of 300 is not. */
static void test_runstate_data_identity_by_content(void **state)
{
    fixture *f = *state;
    char path[256], rel[512];
    snprintf(path, sizeof path, "%s/train.h5", f->dir);
    cz_error err = {0};
    size_t d = 4;
    float *x = malloc(500 * d * sizeof(float));
    int32_t *y = malloc(500 * sizeof(int32_t));
    assert_non_null(x);
    assert_non_null(y);
    for (size_t i = 0; i < 500 * d; i++) x[i] = (float)(i % 97) * 0.5f;
    for (size_t i = 0; i < 500; i++) y[i] = (int32_t)(i % 3);
    cz_data_identity a, b, c;
    cz_data *ds;
    assert_int_equal(cz_data_write(path, x, y, NULL, 300, d, CZ_HEAD_CLASSIFY, 3, "test", &err), 0);
    assert_int_equal(cz_data_open(&ds, path, &err), 0);
    assert_int_equal(cz_run_data_identity(ds, path, &a, &err), 0);
    cz_data_close(ds);
    /* the same file through a relative path with a detour */
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(f->ck), 0);
    snprintf(rel, sizeof rel, "../train.h5");
    assert_int_equal(cz_data_open(&ds, rel, &err), 0);
    assert_int_equal(cz_run_data_identity(ds, rel, &b, &err), 0);
    cz_data_close(ds);
    assert_int_equal(chdir(cwd), 0);
    assert_memory_equal(&a, &b, sizeof a);
    assert_int_equal(a.n, 300);
    assert_int_equal(a.d, 4);
    assert_int_equal(a.classes, 3);
    /* 500 rows written over the same path: another identity, and the check names it */
    assert_int_equal(cz_data_write(path, x, y, NULL, 500, d, CZ_HEAD_CLASSIFY, 3, "test", &err), 0);
    assert_int_equal(cz_data_open(&ds, path, &err), 0);
    assert_int_equal(cz_run_data_identity(ds, path, &c, &err), 0);
    cz_data_close(ds);
    assert_int_equal(c.n, 500);
    assert_true(c.bytes != a.bytes);
    assert_true(c.labels_checksum != a.labels_checksum);
    /* one changed feature value in a sampled row (row 0), same size and labels */
    x[1] += 1.0f;
    assert_int_equal(cz_data_write(path, x, y, NULL, 500, d, CZ_HEAD_CLASSIFY, 3, "test", &err), 0);
    cz_data_identity e;
    assert_int_equal(cz_data_open(&ds, path, &err), 0);
    assert_int_equal(cz_run_data_identity(ds, path, &e, &err), 0);
    cz_data_close(ds);
    assert_int_equal(e.bytes, c.bytes);
    assert_true(e.labels_checksum == c.labels_checksum);
    assert_true(e.rows_checksum != c.rows_checksum);
    free(x);
    free(y);
}

/* Only the lines of completed epochs stay. */
static void test_runstate_truncate_history(void **state)
{
    fixture *f = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/history.jsonl", f->dir);
    touch(path, "{\"epoch\": 1, \"x\": 1}\n{\"epoch\": 2, \"x\": 2}\n{\"epoch\": 3, \"x\": 3}\n{\"epoch\": 4, \"x\"");
    cz_error err = {0};
    char why[256];
    assert_int_equal(cz_run_truncate_history(path, 2, why, sizeof why, &err), 0);
    assert_string_equal(why, "");
    FILE *fp = fopen(path, "r");
    char buf[256] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = 0;
    assert_string_equal(buf, "{\"epoch\": 1, \"x\": 1}\n{\"epoch\": 2, \"x\": 2}\n");
    snprintf(path, sizeof path, "%s/none.jsonl", f->dir);
    assert_int_equal(cz_run_truncate_history(path, 2, why, sizeof why, &err), 0);
    assert_string_equal(why, "the file is missing");
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "blocked opening a FIFO\n";
    if (write(2, msg, sizeof msg - 1)) {}
    _exit(1);
}

/* F4: FIFOs named `latest` and ckpt-00000099.h5 never block: eval's resolution refuses,
 * --resume auto sets both aside as *.unusable and takes the real checkpoint. */
static void test_runstate_fifo_never_blocks(void **state)
{
    fixture *f = *state;
    cz_checkpoint c;
    cz_error err = {0};
    char p[512], got[512];
    make_ckpt(&c, 20, config_a);
    snprintf(p, sizeof p, "%s/ckpt-00000020.h5", f->ck);
    assert_int_equal(cz_ckpt_save(p, &c, &err), 0);
    cz_ckpt_free(&c);
    snprintf(p, sizeof p, "%s/latest", f->ck);
    assert_int_equal(mkfifo(p, 0644), 0);
    snprintf(p, sizeof p, "%s/ckpt-00000099.h5", f->ck);
    assert_int_equal(mkfifo(p, 0644), 0);
    signal(SIGALRM, on_alarm);
    alarm(20);
    assert_int_equal(cz_run_resolve(f->dir, got, sizeof got, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "not a regular file"));
    assert_int_equal(cz_run_resolve(p, got, sizeof got, &err), 0); /* a file: load decides */
    assert_int_equal(cz_ckpt_load(got, &c, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "not a regular file"));
    assert_int_equal(cz_run_resolve_newest(f->dir, got, sizeof got, NULL, &err), 0);
    assert_non_null(strstr(got, "ckpt-00000020.h5"));
    assert_true(exists("%s/ckpt-00000099.h5", f->ck)); /* eval renames nothing */
    assert_int_equal(cz_run_choose_auto(f->ck, got, sizeof got, NULL, &err), 0);
    alarm(0);
    assert_non_null(strstr(got, "ckpt-00000020.h5"));
    assert_true(exists("%s/ckpt-00000099.h5.unusable", f->ck));
    assert_true(exists("%s/latest.unusable", f->ck));
    assert_int_equal(cz_run_resolve(f->dir, got, sizeof got, &err), 0); /* latest repaired */
    assert_non_null(strstr(got, "ckpt-00000020.h5"));
    /* history.jsonl as a FIFO: refused for a fresh run, reported as damage on resume */
    snprintf(p, sizeof p, "%s/history.jsonl", f->dir);
    assert_int_equal(mkfifo(p, 0644), 0);
    assert_int_equal(cz_run_regular_or_absent(p, &err), CZ_EINVAL);
    char why[128];
    assert_int_equal(cz_run_truncate_history(p, 2, why, sizeof why, &err), 0);
    assert_string_equal(why, "not a regular file");
    unlink(p);
}

/* F11b: eval of a run directory takes the newest checkpoint that verifies, not `latest`
 * (one behind after a crash between the rename and the pointer update), and renames nothing. */
static void test_runstate_resolve_newest_verified(void **state)
{
    fixture *f = *state;
    cz_checkpoint c;
    cz_error err = {0};
    char p[512], got[512];
    for (long st = 13; st <= 26; st += 13) {
        make_ckpt(&c, st, config_a);
        snprintf(p, sizeof p, "%s/ckpt-%08ld.h5", f->ck, st);
        assert_int_equal(cz_ckpt_save(p, &c, &err), 0);
        cz_ckpt_free(&c);
    }
    snprintf(p, sizeof p, "%s/latest", f->ck);
    touch(p, "ckpt-00000013.h5\n");
    char *log = NULL;
    size_t len = 0;
    FILE *lf = open_memstream(&log, &len);
    assert_int_equal(cz_run_resolve_newest(f->dir, got, sizeof got, lf, &err), 0);
    fclose(lf);
    assert_non_null(strstr(got, "ckpt-00000026.h5"));
    assert_non_null(strstr(log, "ckpt-00000013.h5, but"));
    free(log);
    /* the newer one damaged: the older one, and the damaged file stays where it is */
    snprintf(p, sizeof p, "%s/ckpt-00000026.h5", f->ck);
    touch(p, "junk");
    assert_int_equal(cz_run_resolve_newest(f->dir, got, sizeof got, NULL, &err), 0);
    assert_non_null(strstr(got, "ckpt-00000013.h5"));
    assert_true(exists("%s/ckpt-00000026.h5", f->ck));
    /* a file argument is taken as it is */
    assert_int_equal(cz_run_resolve_newest(p, got, sizeof got, NULL, &err), 0);
    assert_string_equal(got, p);
}

/* F8, F9: --out problems are input errors (CZ_EINVAL) with the cause in the message, found
 * before anything is created. */
static void test_runstate_out_refused_with_cause(void **state)
{
    fixture *f = *state;
    cz_run_lock lk;
    cz_error err = {0};
    char p[512];
    snprintf(p, sizeof p, "%s/afile", f->dir);
    touch(p, "x");
    assert_int_equal(cz_run_lock_acquire(&lk, p, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "Not a directory"));
    assert_int_equal(cz_run_lock_acquire(&lk, "/dev/null", &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "Not a directory"));
    snprintf(p, sizeof p, "%s/dangling", f->dir);
    assert_int_equal(symlink("/nonexistent/chainz/target", p), 0);
    assert_int_equal(cz_run_lock_acquire(&lk, p, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "No such file or directory"));
    /* too long: refused before any directory exists, the cause intact */
    char *lng = malloc(4200);
    assert_non_null(lng);
    int w = snprintf(lng, 4200, "%s/long", f->dir);
    while (w < 4080) w += snprintf(lng + w, (size_t)(4200 - w), "/%s", "dddddddddddddddddddddddddddddddddddddddd");
    assert_int_equal(cz_run_lock_acquire(&lk, lng, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "File name too long"));
    assert_false(exists("%s/long", f->dir));
    free(lng);
    /* a checkpoints directory that takes no files: only root passes the probe anyway */
    if (geteuid() != 0) {
        snprintf(p, sizeof p, "%s/ro", f->dir);
        char ck[600];
        snprintf(ck, sizeof ck, "%s/checkpoints", p);
        assert_int_equal(mkdir(p, 0755), 0);
        assert_int_equal(mkdir(ck, 0555), 0);
        assert_int_equal(cz_run_lock_acquire(&lk, p, &err), CZ_EINVAL);
        assert_non_null(strstr(err.msg, "Permission denied"));
        chmod(ck, 0755);
        rmdir(ck);
    }
}

/* F10: every changed field is logged; micro_batch and reduce, which change how the sums
 * are formed, get the same warning as a kernel set; threads does not. A change of tau
 * (--no-tau) is refused, naming the field and what to do. */
static void test_runstate_changes_that_break_bits_warn(void **state)
{
    (void)state;
    cz_checkpoint c;
    const char *was = "{\"batch\": 24, \"seed\": 1, \"micro_batch\": 12, \"reduce\": \"exact\", \"threads\": 1, "
                      "\"tau\": 1, \"resume\": \"\"}";
    make_ckpt(&c, 10, was);
    cz_data_identity id = c.data;
    cz_error err = {0};
    char *log = NULL;
    const char *mb = "{\"batch\": 24, \"seed\": 1, \"micro_batch\": 8, \"reduce\": \"exact\", \"threads\": 2, "
                     "\"tau\": 1, \"resume\": \"auto\"}";
    assert_int_equal(check(mb, &id, &c, &log, &err), 0);
    assert_non_null(strstr(log, "micro_batch changes from 12 to 8: from here on the last bits differ"));
    assert_non_null(strstr(log, "threads changes from 1 to 2"));
    assert_null(strstr(log, "threads changes from 1 to 2: from here on"));
    assert_null(strstr(log, "resume changes"));
    free(log);
    const char *red = "{\"batch\": 24, \"seed\": 1, \"micro_batch\": 12, \"reduce\": \"float\", \"threads\": 1, "
                      "\"tau\": 1}";
    assert_int_equal(check(red, &id, &c, &log, &err), 0);
    assert_non_null(strstr(log, "reduce changes from exact to float: from here on the last bits differ"));
    free(log);
    cz_ckpt_free(&c);
}

/* (review 3, F) --no-tau switched on or off on resume: refused before anything is written. */
static void test_runstate_tau_change_refused(void **state)
{
    (void)state;
    cz_checkpoint c;
    make_ckpt(&c, 10, "{\"batch\": 24, \"seed\": 1, \"tau\": 1}");
    cz_data_identity id = c.data;
    cz_error err = {0};
    char *log = NULL;
    assert_int_equal(check("{\"batch\": 24, \"seed\": 1, \"tau\": 0}", &id, &c, &log, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "trained without --no-tau, this run asks for it: tau (--no-tau) cannot change"));
    assert_non_null(strstr(err.msg, "resume with the same setting (without --no-tau), or start a new run"));
    free(log);
    cz_ckpt_free(&c);
    make_ckpt(&c, 10, "{\"batch\": 24, \"seed\": 1, \"tau\": 0}");
    assert_int_equal(check("{\"batch\": 24, \"seed\": 1, \"tau\": 1}", &id, &c, &log, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "trained with --no-tau, this run asks to drop it"));
    free(log);
    cz_ckpt_free(&c);
}

/* F6: the ways history.jsonl was found damaged are named, and the file is left alone. */
static void test_runstate_history_damage_named(void **state)
{
    fixture *f = *state;
    char path[256], why[256];
    snprintf(path, sizeof path, "%s/history.jsonl", f->dir);
    cz_error err = {0};
    const char *l1 = "{\"epoch\": 1, \"x\": 1}\n", *l2 = "{\"epoch\": 2, \"x\": 2}\n", *l3 = "{\"epoch\": 3, \"x\": 3}\n";
    struct {
        const char *text, *why;
    } cases[] = {
        {NULL, "the file is missing"},
        {"", "the line of epoch 1 is missing"},
        {"{\"epoch\": 2, \"x\": 2}\n", "the line of epoch 1 is missing"},
        {"{\"epoch\": 1, \"x\": 1}\n{\"epoch\": 2, \"x\"", "the line of epoch 2 is missing"},
        {"{\"epoch\": 1, \"x\": 1}\n{\"epoch\": 1, \"x\": 1}\n{\"epoch\": 2, \"x\": 2}\n", "epoch 1 appears more than once"},
        {"{\"epoch\": 1, \"x\": 1}\n{\"epo\n{\"epoch\": 2, \"x\": 2}\n", "line 2 is cut off"},
        {"{\"epoch\": 2, \"x\": 2}\n{\"epoch\": 1, \"x\": 1}\n", "epoch 1 appears more than once"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        unlink(path);
        if (cases[i].text) touch(path, cases[i].text);
        assert_int_equal(cz_run_truncate_history(path, 2, why, sizeof why, &err), 0);
        if (!strstr(why, cases[i].why)) print_error("case %zu: why = '%s'\n", i, why);
        assert_non_null(strstr(why, cases[i].why));
    }
    /* intact, with an abandoned attempt's epoch 3 and a cut write of epoch 4: fine */
    unlink(path);
    char text[256];
    snprintf(text, sizeof text, "%s%s%s{\"epoch\": 4, \"x\"", l1, l2, l3);
    touch(path, text);
    assert_int_equal(cz_run_truncate_history(path, 2, why, sizeof why, &err), 0);
    assert_string_equal(why, "");
    assert_int_equal(cz_run_truncate_history(path, 0, why, sizeof why, &err), 0);
    assert_string_equal(why, "");
}

/* (review 3, D) metrics.h5 of this run or another: the fields no resume may change decide;
 * spellings of the same value and fields a resume may change do not. */
static void test_runstate_same_run(void **state)
{
    (void)state;
    char why[256];
    const char *mine = "{\"layers\": \"16,16\", \"seed\": 3, \"dropout\": 0.1, \"lr\": 0.01, \"head\": \"auto\"}";
    assert_int_equal(cz_run_same_run(mine, "{\"layers\": \"16, 16\", \"seed\": 3, \"dropout\": 0.10000000000000001, "
                                           "\"lr\": 0.5, \"head\": \"classify\"}", why, sizeof why), 0);
    assert_string_equal(why, "");
    assert_int_equal(cz_run_same_run(mine, "{\"layers\": \"16,16\", \"seed\": 4}", why, sizeof why), 0);
    assert_non_null(strstr(why, "another run's: its config has seed = 4, this run's 3"));
    assert_int_equal(cz_run_same_run(mine, "not json", why, sizeof why), 0);
    assert_non_null(strstr(why, "not a flat JSON object"));
}

/* (review 3, G) only ckpt-<8+ decimal digits>.h5 as cz_run_save names them is a checkpoint:
 * a sign, a space, ".H5", a step beyond a long or an extra leading zero is ignored. */
static void test_runstate_stray_names_ignored(void **state)
{
    fixture *f = *state;
    const char *ck = f->ck;
    char p[512];
    const char *stray[] = {"ckpt-+300.h5", "ckpt- 200.h5", "ckpt-500.H5", "ckpt-99999999999999999999.h5",
                           "ckpt-000000300.h5", "ckpt-0000300.h5", "ckpt-00000400.h5x", "ckpt-00000007.h5.tmp.12"};
    for (size_t i = 0; i < sizeof stray / sizeof *stray; i++) {
        snprintf(p, sizeof p, "%s/%s", ck, stray[i]);
        touch(p, "x");
    }
    snprintf(p, sizeof p, "%s/ckpt-00000010.h5", ck);
    touch(p, "x");
    snprintf(p, sizeof p, "%s/ckpt-123456789.h5", ck);
    touch(p, "x");
    cz_ckpt_list l;
    cz_error err = {0};
    assert_int_equal(cz_run_list(ck, &l, &err), 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.steps[0], 123456789);
    assert_int_equal(l.steps[1], 10);
    cz_run_list_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_runstate_list_beyond_4096, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runstate_auto_with_only_unusable_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runstate_auto_skips_newer_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runstate_lock_names_holder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runstate_resolve_latest, setup, teardown),
        cmocka_unit_test(test_runstate_config_field_by_field),
        cmocka_unit_test_setup_teardown(test_runstate_data_identity_by_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runstate_truncate_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runstate_fifo_never_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runstate_resolve_newest_verified, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runstate_out_refused_with_cause, setup, teardown),
        cmocka_unit_test(test_runstate_changes_that_break_bits_warn),
        cmocka_unit_test(test_runstate_tau_change_refused),
        cmocka_unit_test(test_runstate_same_run),
        cmocka_unit_test_setup_teardown(test_runstate_stray_names_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runstate_history_damage_named, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
