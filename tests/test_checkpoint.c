/* Checkpoints (include/chainz/checkpoint.h): an exact round trip of everything a resumed
 * run needs, refusal of corrupted, truncated and foreign files with a useful message,
 * atomic writing, and the checksum itself. */
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
#include <hdf5.h>

#include "chainz/checkpoint.h"

typedef struct {
    char dir[64];
    char path[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/chainz-test-ckpt-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/run.ckpt.h5", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    DIR *d = opendir(f->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static void fill_random(float *x, size_t n, cz_rng *r, double scale)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)(scale * cz_rng_normal(r));
}

/* A checkpoint as the trainer would hold it; every buffer has random, distinct contents
 * so that a swapped or missing part cannot compare equal by accident. */
static void make_ckpt(cz_checkpoint *c, const cz_model_spec *spec, cz_optim_kind kind, int with_input,
                      uint64_t seed)
{
    memset(c, 0, sizeof *c);
    cz_error err = {0};
    assert_int_equal(cz_model_init(&c->model, spec, &err), 0);
    size_t n = c->model.n_params;
    cz_rng r;
    cz_rng_seed(&r, seed);
    c->params = malloc(n * sizeof(float));
    assert_non_null(c->params);
    cz_model_params_init(&c->model, c->params, &r);
    /* trained-looking biases and poly coefficients, not the initial 0 / (0,1,0,0) */
    for (size_t i = c->model.n_weights; i < n; i++) c->params[i] += (float)(0.1 * cz_rng_normal(&r));
    c->optim = kind;
    cz_optim_spec os = {.kind = kind};
    c->opt_len = cz_optim_state_len(&os) * n;
    c->opt_state = malloc(c->opt_len * sizeof(float));
    assert_non_null(c->opt_state);
    fill_random(c->opt_state, c->opt_len, &r, 1e-3);
    if (with_input) {
        c->mean = malloc(spec->d * sizeof(float));
        c->std = malloc(spec->d * sizeof(float));
        assert_non_null(c->mean);
        assert_non_null(c->std);
        fill_random(c->mean, spec->d, &r, 5.0);
        for (size_t j = 0; j < spec->d; j++) c->std[j] = 0.5f + (float)cz_rng_uniform(&r);
    }
    c->state.epoch = 3;
    c->state.step = 12345;
    c->state.position = 67;
    c->state.lambda = 0.123456789012345678;
    c->state.lr = 1.0 / 3.0 * 1e-3;
    cz_rng_seed(&c->state.rng, seed ^ 0xabcdef);
    for (int i = 0; i < 5; i++) cz_rng_u64(&c->state.rng);
    const double sums[5] = {1234.5678901234567, 0.1, 4097, 3.0e-7, 8192};
    memcpy(c->state.epoch_sums, sums, sizeof sums);
    c->state.world_size = 3;
    snprintf(c->state.slurm, sizeof c->state.slurm, "job=4242 array=7_3 restart=1");
    const char *cfg = "{\"lr\": 0.001, \"layers\": \"7,6\", \"note\": \"quotes \\\" and unicode \xc3\xa9\"}";
    c->config_json = strdup(cfg);
    assert_non_null(c->config_json);
    snprintf(c->version, sizeof c->version, "0.1.0-test");
}


static void assert_same_ckpt(const cz_checkpoint *a, const cz_checkpoint *b)
{
    const cz_model_spec *sa = &a->model.spec, *sb = &b->model.spec;
    assert_int_equal(sa->d, sb->d);
    assert_int_equal(sa->n_hidden, sb->n_hidden);
    for (int l = 0; l < sa->n_hidden; l++) {
        assert_int_equal(sa->width[l], sb->width[l]);
        assert_int_equal(sa->act[l], sb->act[l]);
    }
    assert_int_equal(sa->head, sb->head);
    assert_int_equal(sa->classes, sb->classes);
    assert_true(sa->dropout == sb->dropout);
    assert_int_equal(a->model.n_params, b->model.n_params);
    assert_int_equal(a->model.n_weights, b->model.n_weights);
    assert_int_equal(a->model.n_out, b->model.n_out);
    for (int l = 0; l <= a->model.n_hidden; l++) {
        const cz_layer *x = &a->model.layer[l], *y = &b->model.layer[l];
        assert_int_equal(x->n_in, y->n_in);
        assert_int_equal(x->n_out, y->n_out);
        assert_int_equal(x->w, y->w);
        assert_int_equal(x->b, y->b);
        assert_int_equal(x->poly, y->poly);
        assert_int_equal(x->act, y->act);
    }
    size_t n = a->model.n_params;
    assert_memory_equal(a->params, b->params, n * sizeof(float));
    assert_int_equal(a->optim, b->optim);
    assert_int_equal(a->opt_len, b->opt_len);
    if (a->opt_state) assert_memory_equal(a->opt_state, b->opt_state, a->opt_len * sizeof(float));
    if (a->mean) {
        assert_non_null(b->mean);
        assert_non_null(b->std);
        assert_memory_equal(a->mean, b->mean, sa->d * sizeof(float));
        assert_memory_equal(a->std, b->std, sa->d * sizeof(float));
    } else {
        assert_null(b->mean);
        assert_null(b->std);
    }
    assert_int_equal(a->state.epoch, b->state.epoch);
    assert_int_equal(a->state.step, b->state.step);
    assert_int_equal(a->state.position, b->state.position);
    assert_memory_equal(&a->state.lambda, &b->state.lambda, sizeof(double));
    assert_memory_equal(&a->state.lr, &b->state.lr, sizeof(double));
    assert_memory_equal(a->state.rng.s, b->state.rng.s, sizeof a->state.rng.s);
    assert_memory_equal(a->state.epoch_sums, b->state.epoch_sums, sizeof a->state.epoch_sums);
    assert_int_equal(a->state.world_size, b->state.world_size);
    assert_string_equal(a->state.slurm, b->state.slurm);
    assert_non_null(b->config_json);
    assert_string_equal(a->config_json, b->config_json);
    assert_string_equal(a->version, b->version);
    /* a restored rng continues the same stream */
    cz_rng ra = a->state.rng, rb = b->state.rng;
    for (int i = 0; i < 8; i++) assert_true(cz_rng_u64(&ra) == cz_rng_u64(&rb));
}

static const cz_model_spec poly_spec = {
    .d = 5, .n_hidden = 2, .width = {7, 6}, .act = {CZ_ACT_POLY, CZ_ACT_POLY},
    .head = CZ_HEAD_CLASSIFY, .classes = 3, .dropout = 0.125};

/* names in dir other than `keep`, e.g. leftover "<file>.tmp.<pid>" */
static int count_other_files(const char *dir, const char *keep)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int others = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, keep)) continue;
        others++;
    }
    closedir(d);
    return others;
}

static unsigned char *read_whole(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long sz = ftell(fp);
    assert_true(sz > 0);
    rewind(fp);
    unsigned char *buf = malloc((size_t)sz);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)sz, fp), (size_t)sz);
    fclose(fp);
    *len = (size_t)sz;
    return buf;
}

static void write_whole(const char *path, const unsigned char *buf, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static void test_checkpoint_adamw_poly_round_trip(void **state)
{
    fixture *f = *state;
    cz_checkpoint c, back;
    make_ckpt(&c, &poly_spec, CZ_OPT_ADAMW, 1, 11);
    assert_int_equal(c.opt_len, 2 * c.model.n_params);
    assert_true(c.model.layer[0].poly != CZ_NONE);
    cz_error err = {0};
    assert_int_equal(cz_ckpt_save(f->path, &c, &err), 0);
    assert_int_equal(count_other_files(f->dir, "run.ckpt.h5"), 0);
    memset(&err, 0, sizeof err);
    int rc = cz_ckpt_load(f->path, &back, &err);
    if (rc) print_error("load: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_same_ckpt(&c, &back);

    /* saving over an existing checkpoint replaces it, again without leftovers */
    c.state.step += 100;
    c.params[0] += 1.0f;
    assert_int_equal(cz_ckpt_save(f->path, &c, &err), 0);
    assert_int_equal(count_other_files(f->dir, "run.ckpt.h5"), 0);
    cz_ckpt_free(&back);
    assert_int_equal(cz_ckpt_load(f->path, &back, &err), 0);
    assert_same_ckpt(&c, &back);
    cz_ckpt_free(&back);
    cz_ckpt_free(&c);
}

static void test_checkpoint_sgd_round_trip(void **state)
{
    fixture *f = *state;
    cz_model_spec spec = {.d = 4, .n_hidden = 2, .width = {3, 5}, .act = {CZ_ACT_POLY, CZ_ACT_TANH},
                          .head = CZ_HEAD_ORDINAL, .classes = 4, .dropout = 0};
    cz_checkpoint c, back;
    make_ckpt(&c, &spec, CZ_OPT_SGD, 1, 12);
    assert_int_equal(c.opt_len, c.model.n_params);
    cz_error err = {0};
    assert_int_equal(cz_ckpt_save(f->path, &c, &err), 0);
    int rc = cz_ckpt_load(f->path, &back, &err);
    if (rc) print_error("load: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(back.optim, CZ_OPT_SGD);
    assert_same_ckpt(&c, &back);
    cz_ckpt_free(&back);
    cz_ckpt_free(&c);
}

static void test_checkpoint_relu_round_trip(void **state)
{
    fixture *f = *state;
    cz_model_spec spec = {.d = 6, .n_hidden = 2, .width = {8, 4}, .act = {CZ_ACT_RELU, CZ_ACT_RELU},
                          .head = CZ_HEAD_REGRESS, .classes = 0, .dropout = 0.5};
    cz_checkpoint c, back;
    make_ckpt(&c, &spec, CZ_OPT_ADAMW, 0, 13); /* no input standardization */
    for (int l = 0; l <= c.model.n_hidden; l++) assert_true(c.model.layer[l].poly == CZ_NONE);
    cz_error err = {0};
    assert_int_equal(cz_ckpt_save(f->path, &c, &err), 0);
    int rc = cz_ckpt_load(f->path, &back, &err);
    if (rc) print_error("load: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_same_ckpt(&c, &back);
    cz_ckpt_free(&back);
    cz_ckpt_free(&c);
}

static void test_checkpoint_flipped_byte_fails_checksum(void **state)
{
    fixture *f = *state;
    cz_checkpoint c, back;
    make_ckpt(&c, &poly_spec, CZ_OPT_ADAMW, 1, 14);
    /* four consecutive weights of layer 1: random floats, a 16-byte pattern that occurs
     * once in the file (inside /model/layer_1/weight) */
    const float *w = c.params + c.model.layer[0].w + 8;
    cz_error err = {0};
    assert_int_equal(cz_ckpt_save(f->path, &c, &err), 0);
    size_t len;
    unsigned char *buf = read_whole(f->path, &len);
    unsigned char *hit = memmem(buf, len, w, 4 * sizeof(float));
    assert_non_null(hit);
    assert_null(memmem(hit + 1, len - (size_t)(hit + 1 - buf), w, 4 * sizeof(float)));
    hit[4] ^= 0x01; /* lowest mantissa bit of the second weight: still a finite float */
    write_whole(f->path, buf, len);
    free(buf);
    int rc = cz_ckpt_load(f->path, &back, &err);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(err.msg, "checksum"));
    assert_non_null(strstr(err.msg, f->path));
    assert_null(back.params); /* nothing half-loaded is handed out */
    cz_ckpt_free(&back);
    cz_ckpt_free(&c);
}

/* Issue 13: one flipped bit in anything a resume or an evaluation reads is detected,
 * not only in the layer parameters: /model/input/std and mean, both optimizer moments,
 * /state/rng, /state/epoch_sums, the lambda attribute of /state, a partial histogram. */
static void test_checkpoint_flip_anywhere_detected(void **state)
{
    fixture *f = *state;
    cz_checkpoint c, back;
    make_ckpt(&c, &poly_spec, CZ_OPT_ADAMW, 1, 15);
    cz_hist tau[1];
    char names[1][64] = {"input_grad"};
    cz_hist_reset(&tau[0]);
    tau[0].counts[100] = 0x0123456789abcdefULL;
    tau[0].count = 123456789; /* stored as a double attribute: exact below 2^53 */
    tau[0].max = 3.25;
    c.n_tau = 1;
    c.tau = tau;
    c.tau_names = names;
    cz_error err = {0};
    assert_int_equal(cz_ckpt_save(f->path, &c, &err), 0);
    assert_int_equal(cz_ckpt_load(f->path, &back, &err), 0);
    cz_ckpt_free(&back);
    size_t n = c.model.n_params;
    struct {
        const char *what;
        const void *bytes;
        size_t len;
    } parts[] = {
        {"/model/input/std", c.std + 2, 8},
        {"/model/input/mean", c.mean + 1, 8},
        {"/optimizer/m", c.opt_state + 3, 8},
        {"/optimizer/v", c.opt_state + n + 5, 8},
        {"/state/rng", &c.state.rng.s[1], 8},
        {"/state/epoch_sums", &c.state.epoch_sums[0], 8},
        {"/state lambda", &c.state.lambda, 8},
        {"/state/tau_input_grad/counts", &tau[0].counts[100], 8},
    };
    size_t len;
    unsigned char *orig = read_whole(f->path, &len);
    for (size_t k = 0; k < sizeof parts / sizeof *parts; k++) {
        unsigned char *buf = malloc(len);
        assert_non_null(buf);
        memcpy(buf, orig, len);
        unsigned char *hit = memmem(buf, len, parts[k].bytes, parts[k].len);
        if (!hit) print_error("%s: pattern not found\n", parts[k].what);
        assert_non_null(hit);
        hit[1] ^= 0x01; /* a low bit: the value stays finite and plausible */
        write_whole(f->path, buf, len);
        free(buf);
        memset(&err, 0, sizeof err);
        int rc = cz_ckpt_load(f->path, &back, &err);
        if (rc == 0) print_error("a flipped bit in %s was not detected\n", parts[k].what);
        assert_int_equal(rc, CZ_EINVAL);
        assert_non_null(strstr(err.msg, "corrupted"));
        assert_null(back.params);
    }
    free(orig);
    c.n_tau = 0;
    c.tau = NULL;
    c.tau_names = NULL;
    cz_ckpt_free(&c);
}

static void test_checkpoint_truncated_file_refused(void **state)
{
    fixture *f = *state;
    cz_checkpoint c, back;
    make_ckpt(&c, &poly_spec, CZ_OPT_ADAMW, 1, 15);
    cz_error err = {0};
    assert_int_equal(cz_ckpt_save(f->path, &c, &err), 0);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(truncate(f->path, st.st_size / 2), 0);
    int rc = cz_ckpt_load(f->path, &back, &err);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(err.msg, f->path));
    assert_null(back.params);
    cz_ckpt_free(&back);
    cz_ckpt_free(&c);
}

static void test_checkpoint_foreign_and_missing_files_refused(void **state)
{
    fixture *f = *state;
    const char text[] = "epoch,step,loss\n0,100,0.5\n1,200,0.25\n";
    write_whole(f->path, (const unsigned char *)text, sizeof text - 1);
    cz_checkpoint back;
    cz_error err = {0};
    int rc = cz_ckpt_load(f->path, &back, &err);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(err.msg, f->path));
    assert_non_null(strstr(err.msg, "HDF5"));

    char missing[160];
    snprintf(missing, sizeof missing, "%s/no-such.ckpt.h5", f->dir);
    memset(&err, 0, sizeof err);
    rc = cz_ckpt_load(missing, &back, &err);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(err.msg, missing));
}

static void test_checkpoint_checksum_fnv1a(void **state)
{
    (void)state;
    /* FNV-1a 64 reference values */
    assert_true(cz_checksum("", 0) == 0xcbf29ce484222325ULL);
    assert_true(cz_checksum("a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(cz_checksum("foobar", 6) == 0x85944171f73967e8ULL);
    float x[64];
    for (int i = 0; i < 64; i++) x[i] = (float)i * 0.5f;
    uint64_t h = cz_checksum(x, sizeof x);
    assert_true(h == cz_checksum(x, sizeof x));
    float y[64];
    memcpy(y, x, sizeof x);
    y[63] = -y[63];
    assert_true(cz_checksum(y, sizeof y) != h);
    memcpy(y, x, sizeof x);
    y[0] = -0.0f; /* equal as floats, different bytes: replicas must be bitwise equal */
    assert_true(cz_checksum(y, sizeof y) != h);
    /* swapping two values changes it (not a plain sum) */
    memcpy(y, x, sizeof x);
    y[1] = x[2];
    y[2] = x[1];
    assert_true(cz_checksum(y, sizeof y) != h);
}

/* F7: version set to 1 (which had only the parameter checksum) and a changed input std:
 * the version-2 attributes give the edit away, the file is refused. */
static void test_checkpoint_version_downgrade_refused(void **state)
{
    fixture *f = *state;
    cz_checkpoint c, back;
    make_ckpt(&c, &poly_spec, CZ_OPT_ADAMW, 1, 21);
    cz_error err = {0};
    assert_int_equal(cz_ckpt_save(f->path, &c, &err), 0);
    hid_t h = H5Fopen(f->path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(h >= 0);
    hid_t a = H5Aopen(h, "version", H5P_DEFAULT);
    long long one = 1;
    assert_true(a >= 0 && H5Awrite(a, H5T_NATIVE_LLONG, &one) >= 0);
    H5Aclose(a);
    hid_t d = H5Dopen2(h, "/model/input/std", H5P_DEFAULT);
    float *s = malloc(c.model.spec.d * sizeof(float));
    assert_true(d >= 0 && s);
    assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, s) >= 0);
    s[0] *= 100;
    assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, s) >= 0);
    free(s);
    H5Dclose(d);
    H5Fclose(h);
    assert_int_equal(cz_ckpt_load(f->path, &back, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "version 1"));
    assert_non_null(strstr(err.msg, "checksum_all"));
    assert_null(back.params);
    cz_ckpt_free(&c);
}

/* replaces a string attribute of obj in an HDF5 file as h5py or a text editor of h5dump's
 * output would; what = NULL deletes it (a file written before the attribute existed) */
static void set_attr_str(const char *path, const char *obj, const char *name, const char *what)
{
    hid_t h = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(h >= 0);
    hid_t o = H5Oopen(h, obj, H5P_DEFAULT);
    assert_true(o >= 0);
    assert_true(H5Adelete(o, name) >= 0);
    if (what) {
        hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
        H5Tset_size(t, strlen(what) + 1);
        hid_t a = H5Acreate2(o, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(a >= 0 && H5Awrite(a, t, what) >= 0);
        H5Aclose(a);
        H5Sclose(sp);
        H5Tclose(t);
    }
    H5Oclose(o);
    H5Fclose(h);
}

static const cz_model_spec relu_tanh_spec = {
    .d = 4, .n_hidden = 2, .width = {5, 3}, .act = {CZ_ACT_RELU, CZ_ACT_TANH},
    .head = CZ_HEAD_ORDINAL, .classes = 2, .dropout = 0};

/* An architecture attribute that keeps the parameter count (layer 1's activation relu ->
 * tanh, at the root or in /model/layer_1, the head ordinal -> regress, dropout) is refused
 * by checksum_model; load_unverified reports it instead. */
static void test_checkpoint_architecture_edit_refused(void **state)
{
    fixture *f = *state;
    static const struct { const char *obj, *name, *value; } edits[] = {
        {"/", "act", "tanh,tanh"}, {"/model/layer_1", "activation", "tanh"}, {"/", "head", "regress"}};
    for (int i = 0; i < 4; i++) {
        cz_checkpoint c, back;
        make_ckpt(&c, &relu_tanh_spec, CZ_OPT_ADAMW, 1, 31 + (uint64_t)i);
        cz_error err = {0};
        assert_int_equal(cz_ckpt_save(f->path, &c, &err), 0);
        assert_int_equal(cz_ckpt_load(f->path, &back, &err), 0); /* intact: loads */
        cz_ckpt_free(&back);
        if (i < 3) {
            set_attr_str(f->path, edits[i].obj, edits[i].name, edits[i].value);
        } else { /* dropout 0 -> 0.5 */
            hid_t h = H5Fopen(f->path, H5F_ACC_RDWR, H5P_DEFAULT);
            hid_t a = H5Aopen(h, "dropout", H5P_DEFAULT);
            double half = 0.5;
            assert_true(a >= 0 && H5Awrite(a, H5T_NATIVE_DOUBLE, &half) >= 0);
            H5Aclose(a);
            H5Fclose(h);
        }
        assert_int_equal(cz_ckpt_load(f->path, &back, &err), CZ_EINVAL);
        assert_non_null(strstr(err.msg, f->path));
        assert_non_null(strstr(err.msg, "the model's architecture attributes (activations, head, ...) do not match "
                                        "checksum_model"));
        assert_null(back.params);
        cz_ckpt_verdict v;
        assert_int_equal(cz_ckpt_load_unverified(f->path, &back, &v, &err), 0);
        assert_int_equal(v.model_ok, 0);
        assert_int_equal(v.params_ok, 1);
        cz_ckpt_free(&back);
        cz_ckpt_free(&c);
    }
}

/* A file written before checksum_model existed (the attribute deleted) loads as before. */
static void test_checkpoint_without_checksum_model_loads(void **state)
{
    fixture *f = *state;
    cz_checkpoint c, back;
    make_ckpt(&c, &relu_tanh_spec, CZ_OPT_SGD, 0, 41);
    cz_error err = {0};
    assert_int_equal(cz_ckpt_save(f->path, &c, &err), 0);
    set_attr_str(f->path, "/", "checksum_model", NULL);
    assert_int_equal(cz_ckpt_load(f->path, &back, &err), 0);
    assert_int_equal(back.model.spec.act[0], CZ_ACT_RELU);
    assert_int_equal(back.model.spec.head, CZ_HEAD_ORDINAL);
    cz_ckpt_free(&back);
    cz_ckpt_verdict v;
    assert_int_equal(cz_ckpt_load_unverified(f->path, &back, &v, &err), 0);
    assert_int_equal(v.model_ok, -1);
    cz_ckpt_free(&back);
    cz_ckpt_free(&c);
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "cz_ckpt_load blocked on a FIFO\n";
    if (write(2, msg, sizeof msg - 1)) {}
    _exit(1);
}

/* F4: a FIFO where a checkpoint is expected is refused at once, not opened (which blocks). */
static void test_checkpoint_fifo_refused(void **state)
{
    fixture *f = *state;
    assert_int_equal(mkfifo(f->path, 0644), 0);
    signal(SIGALRM, on_alarm);
    alarm(10);
    cz_checkpoint back;
    cz_error err = {0};
    assert_int_equal(cz_ckpt_load(f->path, &back, &err), CZ_EINVAL);
    alarm(0);
    assert_non_null(strstr(err.msg, "not a regular file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_checkpoint_adamw_poly_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_sgd_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_relu_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_flipped_byte_fails_checksum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_flip_anywhere_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_truncated_file_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_foreign_and_missing_files_refused, setup, teardown),
        cmocka_unit_test(test_checkpoint_checksum_fnv1a),
        cmocka_unit_test_setup_teardown(test_checkpoint_version_downgrade_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_fifo_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_architecture_edit_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_without_checksum_model_loads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
