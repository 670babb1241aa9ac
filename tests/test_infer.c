/* The inference library (include/chainz/infer.h) against the engine it is built on: the
 * same predictions as the engine's forward on the standardized rows (labels as `chainz
 * eval` counts them), layer norms equal to an exact-mode stream's (Gram included), the
 * input norm equal to ordinary backpropagation of the predicted-label loss, refusals
 * (non-finite rows, oversized batches, corrupt checkpoints; damaged ones: a huge d, classes
 * above INT_MAX, a group for a weight, a format-1 std of 0), run directories, and sessions
 * on several threads giving the single-threaded bytes. The test links the shared library
 * (its czi_* symbols) and the static engine and checkpoint writer (the reference). */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <hdf5.h>

#include "chainz/checkpoint.h"
#include "chainz/engine.h"
#include "chainz/infer.h"
#include "chainz/loss.h"
#include "chainz/rng.h"

static char dir[64];

/* a checkpoint with trained-looking parameters and standardization; returns its path */
static void save_model(const char *name, const cz_model_spec *spec, double clip, uint64_t seed, char *path, size_t len)
{
    cz_checkpoint c;
    memset(&c, 0, sizeof c);
    cz_error err = {0};
    assert_int_equal(cz_model_init(&c.model, spec, &err), 0);
    size_t n = c.model.n_params;
    cz_rng r;
    cz_rng_seed(&r, seed);
    c.params = malloc(n * sizeof(float));
    assert_non_null(c.params);
    cz_model_params_init(&c.model, c.params, &r);
    for (size_t i = 0; i < n; i++) c.params[i] += (float)(0.15 * cz_rng_normal(&r));
    c.optim = CZ_OPT_SGD;
    cz_optim_spec os = {.kind = CZ_OPT_SGD};
    c.opt_len = cz_optim_state_len(&os) * n;
    c.opt_state = calloc(c.opt_len + 1, sizeof(float));
    c.mean = malloc(spec->d * sizeof(float));
    c.std = malloc(spec->d * sizeof(float));
    for (size_t j = 0; j < spec->d; j++) {
        c.mean[j] = (float)(3 * cz_rng_normal(&r));
        c.std[j] = 0.5f + (float)cz_rng_uniform(&r) * 4;
    }
    c.clip_z = clip;
    c.state.epoch = 2;
    c.state.step = 77;
    c.state.world_size = 1;
    c.config_json = strdup("{}");
    snprintf(c.version, sizeof c.version, "0.1.0-test");
    snprintf(path, len, "%s/%s", dir, name);
    assert_int_equal(cz_ckpt_save(path, &c, &err), 0);
    cz_ckpt_free(&c);
}

static float *raw_rows(size_t B, size_t d, uint64_t seed)
{
    float *x = malloc(B * d * sizeof *x);
    cz_rng r;
    cz_rng_seed(&r, seed);
    for (size_t i = 0; i < B * d; i++) x[i] = (float)(6 * cz_rng_normal(&r)); /* some beyond clip_z */
    return x;
}

/* The reference, written out here rather than shared with the library: z = (x - mean) / std
 * clipped, the engine's forward with an exact stream, the predicted-label loss's input
 * gradient by backpropagation through the value stream. */
typedef struct {
    cz_real *f;        /* [B x n_out] */
    int32_t *pred;     /* [B] */
    double *layer;     /* [B x H] */
    double *in;        /* [B] */
} reference;

static void reference_run(const char *path, const float *xraw, size_t B, reference *ref)
{
    cz_checkpoint c;
    cz_error err = {0};
    memset(&c, 0, sizeof c);
    assert_int_equal(cz_ckpt_load(path, &c, &err), 0);
    const cz_model *m = &c.model;
    size_t d = m->spec.d, H = (size_t)m->n_hidden, no = m->n_out;
    float *x = malloc(B * d * sizeof *x);
    for (size_t b = 0; b < B; b++)
        for (size_t j = 0; j < d; j++) {
            float z = (xraw[b * d + j] - c.mean[j]) / c.std[j];
            if (c.clip_z > 0 && fabsf(z) > (float)c.clip_z) z = z > 0 ? (float)c.clip_z : (float)-c.clip_z;
            x[b * d + j] = z;
        }
    cz_workspace *ws = cz_workspace_new(m, B, &err);
    assert_non_null(ws);
    int32_t *yc = calloc(B, sizeof *yc);
    cz_real *yv = calloc(B, sizeof *yv);
    float *grad = malloc(m->n_params * sizeof *grad);
    cz_step_opts o = {.stream = 1};
    cz_step_sums sums;
    assert_int_equal(cz_engine_step(ws, c.params, x, yc, yv, NULL, B, &o, NULL, &sums, &err), 0);
    ref->f = malloc(B * no * sizeof *ref->f);
    ref->pred = malloc(B * sizeof *ref->pred);
    ref->layer = malloc(B * H * sizeof *ref->layer);
    ref->in = malloc(B * sizeof *ref->in);
    memcpy(ref->f, cz_engine_outputs(ws), B * no * sizeof *ref->f);
    for (size_t l = 0; l < H; l++)
        for (size_t b = 0; b < B; b++) ref->layer[b * H + l] = sqrt(cz_engine_jacobian_sqnorm(ws, (int)l + 1)[b]);
    cz_loss_sums ls = {0};
    cz_loss_eval(NULL, NULL, ref->pred, &ls, m, ref->f, yc, yv, B);
    /* labels = the predictions; regress: y = f - 1/2 makes dtask/df = 2 (f - y) = 1 */
    for (size_t b = 0; b < B; b++) {
        yc[b] = ref->pred[b];
        yv[b] = ref->f[b * no] - 0.5f;
    }
    o.stream = 0;
    assert_int_equal(cz_engine_step(ws, c.params, x, yc, yv, NULL, B, &o, grad, &sums, &err), 0);
    cz_real *gx = malloc(B * d * sizeof *gx);
    assert_int_equal(cz_engine_input_grad_backprop(ws, c.params, gx, &err), 0);
    for (size_t b = 0; b < B; b++) {
        double s = 0;
        for (size_t j = 0; j < d; j++) s += (double)gx[b * d + j] * gx[b * d + j];
        ref->in[b] = sqrt(s);
    }
    free(gx);
    free(grad);
    free(yc);
    free(yv);
    free(x);
    cz_workspace_free(ws);
    cz_ckpt_free(&c);
}

static void reference_free(reference *r)
{
    free(r->f);
    free(r->pred);
    free(r->layer);
    free(r->in);
}

static void assert_rel(double got, double want, double tol, const char *what, size_t b)
{
    double rel = fabs(got - want) / (fabs(want) > 1e-12 ? fabs(want) : 1e-12);
    if (!(rel <= tol)) fail_msg("%s of sample %zu: %.9g, reference %.9g (relative %.3g > %.1g)", what, b, got, want, rel, tol);
}

/* a batch's outputs (at most 32 rows, 8 classes) and the czi_outputs pointing into them */
typedef struct {
    int32_t label[32];
    float prob[32 * 8], value[32];
    double in[32], layer[32 * CZI_MAX_HIDDEN];
} outbuf;

static czi_outputs wire(outbuf *o, size_t K)
{
    return (czi_outputs){o->label, K ? o->prob : NULL, o->value, o->in, o->layer};
}

/* everything the library outputs for B rows, against the reference */
static void check_model(const cz_model_spec *spec, const char *name, uint64_t seed)
{
    char path[256];
    save_model(name, spec, 2.5, seed, path, sizeof path);
    size_t B = 23, d = spec->d, H = (size_t)spec->n_hidden;
    size_t K = spec->head == CZ_HEAD_REGRESS ? 0 : (size_t)spec->classes;
    float *x = raw_rows(B, d, seed + 1);
    reference ref;
    reference_run(path, x, B, &ref);
    czi_error err;
    czi_model *m = czi_model_load(path, &err);
    assert_non_null(m);
    const czi_info *in = czi_model_info(m);
    assert_int_equal(in->d, d);
    assert_int_equal(in->n_hidden, spec->n_hidden);
    assert_int_equal(in->standardized, 1);
    assert_true(in->clip_z == 2.5);
    assert_int_equal(in->step, 77);
    czi_session *s = czi_session_new(m, 32, CZI_NORMS, &err);
    assert_non_null(s);
    outbuf ob, o1;
    czi_outputs out = wire(&ob, K);
    assert_int_equal(czi_predict(s, x, B, &out, &err), 0);
    size_t no = spec->head == CZ_HEAD_CLASSIFY ? K : spec->head == CZ_HEAD_ORDINAL ? K - 1 : 1;
    for (size_t b = 0; b < B; b++) {
        assert_int_equal(ob.label[b], ref.pred[b]);
        const cz_real *f = ref.f + b * no;
        if (spec->head == CZ_HEAD_CLASSIFY) {
            double mx = f[0], se = 0, sum = 0;
            for (size_t k = 0; k < K; k++) mx = f[k] > mx ? f[k] : mx;
            for (size_t k = 0; k < K; k++) se += exp(f[k] - mx);
            for (size_t k = 0; k < K; k++) {
                assert_rel(ob.prob[b * K + k], exp(f[k] - mx) / se, 1e-5, "softmax", b);
                sum += ob.prob[b * K + k];
            }
            assert_true(fabs(sum - 1) < 1e-5);
            assert_rel(ob.value[b], ob.prob[b * K + (size_t)ob.label[b]], 1e-6, "value", b);
        } else if (spec->head == CZ_HEAD_ORDINAL) {
            /* P(y = k) = s_{k-1} - s_k, s_k = P(y > k), clamped at 0, renormalized */
            double e = 0, sum = 0, p[8], tot = 0;
            for (size_t k = 0; k < K; k++) {
                double sp = k ? 1 / (1 + exp(-(double)f[k - 1])) : 1, sk = k + 1 < K ? 1 / (1 + exp(-(double)f[k])) : 0;
                e += sk;
                p[k] = sp - sk > 0 ? sp - sk : 0;
                tot += p[k];
            }
            assert_rel(ob.value[b], e, 1e-5, "expected class", b);
            for (size_t k = 0; k < K; k++) {
                assert_true(ob.prob[b * K + k] >= 0);
                assert_true(fabs(ob.prob[b * K + k] - p[k] / tot) < 1e-6);
                sum += ob.prob[b * K + k];
            }
            assert_true(fabs(sum - 1) < 1e-5);
        } else {
            assert_true(ob.value[b] == f[0]);
        }
        for (size_t l = 0; l < H; l++) assert_rel(ob.layer[b * H + l], ref.layer[b * H + l], 1e-4, "layer norm", b);
        assert_rel(ob.in[b], ref.in[b], 1e-4, "input norm", b);
    }
    /* a session whose stream holds one row (CHAINZ_INFER_STREAM_MB): the batch goes through
     * in chunks, every row lands in its place */
    setenv("CHAINZ_INFER_STREAM_MB", "0.000001", 1);
    czi_session *s1 = czi_session_new(m, 32, CZI_NORMS, &err);
    unsetenv("CHAINZ_INFER_STREAM_MB");
    assert_non_null(s1);
    czi_outputs out1 = wire(&o1, K);
    assert_int_equal(czi_predict(s1, x, B, &out1, &err), 0);
    assert_memory_equal(o1.label, ob.label, B * sizeof *ob.label);
    for (size_t b = 0; b < B; b++) {
        assert_rel(o1.value[b], ob.value[b], 1e-5, "value (chunks of 1)", b);
        for (size_t k = 0; k < K; k++) assert_true(fabs(o1.prob[b * K + k] - ob.prob[b * K + k]) < 1e-6);
        assert_rel(o1.in[b], ob.in[b], 1e-4, "input norm (chunks of 1)", b);
        for (size_t l = 0; l < H; l++) assert_rel(o1.layer[b * H + l], ob.layer[b * H + l], 1e-4, "layer norm (chunks of 1)", b);
    }
    czi_session_free(s1);
    /* the input norm alone: the reverse pass instead of the stream, the same values */
    double inorm2[32];
    czi_outputs out2 = {.input_norm = inorm2};
    assert_int_equal(czi_predict(s, x, B, &out2, &err), 0);
    for (size_t b = 0; b < B; b++) assert_rel(inorm2[b], ref.in[b], 1e-4, "input norm (reverse pass)", b);
    /* a session without norms gives the same predictions, and refuses norms */
    czi_session *s0 = czi_session_new(m, 32, CZI_PREDICT_ONLY, &err);
    int32_t label0[32];
    czi_outputs out0 = {.label = label0};
    assert_int_equal(czi_predict(s0, x, B, &out0, &err), 0);
    assert_memory_equal(label0, ob.label, B * sizeof *ob.label);
    out0.input_norm = ob.in;
    assert_int_equal(czi_predict(s0, x, B, &out0, &err), -1);
    assert_non_null(strstr(err.message, "CZI_NORMS"));
    czi_session_free(s0);
    czi_session_free(s);
    czi_model_free(m);
    reference_free(&ref);
    free(x);
}

static void test_infer_classify(void **st)
{
    (void)st; /* n_1 = 8 > d = 6: exact stream */
    cz_model_spec sp = {.d = 6, .n_hidden = 2, .width = {8, 5}, .act = {CZ_ACT_POLY, CZ_ACT_POLY},
                        .head = CZ_HEAD_CLASSIFY, .classes = 3};
    check_model(&sp, "classify.h5", 11);
}

static void test_infer_width8(void **st)
{
    (void)st; /* d = 8: the stream input norm's k = 8 code (Pima-sized inputs), an odd n_H */
    cz_model_spec sp = {.d = 8, .n_hidden = 2, .width = {10, 7}, .act = {CZ_ACT_POLY, CZ_ACT_POLY},
                        .head = CZ_HEAD_CLASSIFY, .classes = 2};
    check_model(&sp, "width8.h5", 41);
}

static void test_infer_ordinal_gram(void **st)
{
    (void)st; /* n_1 = 4 < d = 10: Gram stream, compared with the exact reference */
    cz_model_spec sp = {.d = 10, .n_hidden = 2, .width = {4, 6}, .act = {CZ_ACT_POLY, CZ_ACT_POLY},
                        .head = CZ_HEAD_ORDINAL, .classes = 5};
    check_model(&sp, "ordinal.h5", 21);
}

static void test_infer_regress_one_layer(void **st)
{
    (void)st; /* H = 1: the top layer's stream is never stored */
    cz_model_spec sp = {.d = 5, .n_hidden = 1, .width = {7}, .act = {CZ_ACT_POLY}, .head = CZ_HEAD_REGRESS};
    check_model(&sp, "regress.h5", 31);
}

static void test_infer_refusals(void **st)
{
    (void)st;
    cz_model_spec sp = {.d = 4, .n_hidden = 1, .width = {6}, .act = {CZ_ACT_POLY}, .head = CZ_HEAD_CLASSIFY,
                        .classes = 2};
    char path[256], bad[300];
    save_model("small.h5", &sp, 0, 5, path, sizeof path);
    czi_error err;
    czi_model *m = czi_model_load(path, &err);
    assert_non_null(m);
    czi_session *s = czi_session_new(m, 4, CZI_NORMS, &err);
    float *x = raw_rows(5, 4, 9);
    int32_t label[5];
    czi_outputs out = {.label = label};
    assert_int_equal(czi_predict(s, x, 5, &out, &err), -1); /* B > max_batch */
    assert_non_null(strstr(err.message, "max_batch 4"));
    x[2 * 4 + 1] = NAN;
    assert_int_equal(czi_predict(s, x, 4, &out, &err), -1);
    assert_non_null(strstr(err.message, "row 2, feature 1"));
    x[2 * 4 + 1] = INFINITY;
    assert_int_equal(czi_predict(s, x, 3, &out, &err), -1);
    assert_non_null(strstr(err.message, "row 2"));
    czi_session_free(s);
    czi_model_free(m);
    /* a weight changed behind the checksum's back: refused, naming the file */
    snprintf(bad, sizeof bad, "%s/edited.h5", dir);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "cp %s %s", path, bad);
    assert_int_equal(system(cmd), 0);
    hid_t f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t ds = H5Dopen2(f, "/model/layer_1/weight", H5P_DEFAULT);
    float w[24];
    assert_true(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w) >= 0);
    w[3] += 0.5f;
    assert_true(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w) >= 0);
    H5Dclose(ds);
    H5Fclose(f);
    assert_null(czi_model_load(bad, &err));
    assert_true(err.code < 0);
    assert_non_null(strstr(err.message, "edited.h5"));
    assert_non_null(strstr(err.message, "checksum"));
    /* truncated */
    snprintf(cmd, sizeof cmd, "head -c 3000 %s > %s", path, bad);
    assert_int_equal(system(cmd), 0);
    assert_null(czi_model_load(bad, &err));
    assert_non_null(strstr(err.message, "edited.h5"));
    assert_null(czi_model_load("/nonexistent/run", &err));
    assert_non_null(strstr(err.message, "/nonexistent/run: No such file or directory"));
    char la[300], lb[300]; /* a run directory that is a symbolic link loop: said so */
    snprintf(la, sizeof la, "%s/loop_a", dir);
    snprintf(lb, sizeof lb, "%s/loop_b", dir);
    assert_int_equal(symlink(lb, la), 0);
    assert_int_equal(symlink(la, lb), 0);
    assert_null(czi_model_load(la, &err));
    assert_non_null(strstr(err.message, "Too many levels of symbolic links"));
    assert_null(czi_model_load(dir, &err)); /* a directory without checkpoints/latest */
    assert_non_null(strstr(err.message, "latest"));
    assert_null(czi_session_new(NULL, 4, CZI_NORMS, &err));
    free(x);
}

/* a root attribute of the file at path replaced by a 64-bit integer */
static void set_root_long(const char *path, const char *name, long long v)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    if (H5Aexists(f, name) > 0) assert_true(H5Adelete(f, name) >= 0);
    hid_t sp = H5Screate(H5S_SCALAR), a = H5Acreate2(f, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0 && H5Awrite(a, H5T_NATIVE_LLONG, &v) >= 0);
    H5Aclose(a);
    H5Sclose(sp);
    H5Fclose(f);
}

/* damaged files that pass the format check: each refused as bad input (-1) naming what is
 * wrong, never "out of memory" nor an I/O failure (-2), nor loaded with garbage */
static void test_infer_damaged_checkpoints(void **st)
{
    (void)st;
    cz_model_spec sp = {.d = 4, .n_hidden = 1, .width = {6}, .act = {CZ_ACT_POLY}, .head = CZ_HEAD_CLASSIFY,
                        .classes = 2};
    char path[256], bad[300], cmd[700];
    save_model("good.h5", &sp, 0, 6, path, sizeof path);
    snprintf(bad, sizeof bad, "%s/damaged.h5", dir);
    snprintf(cmd, sizeof cmd, "cp %s %s", path, bad);
    czi_error err;
    /* d promising 2^40 inputs: the datasets' sizes are checked before any allocation */
    assert_int_equal(system(cmd), 0);
    set_root_long(bad, "d", 1LL << 40);
    assert_null(czi_model_load(bad, &err));
    assert_int_equal(err.code, -1);
    assert_non_null(strstr(err.message, "weight has 24 elements"));
    /* classes above INT_MAX would wrap to 2 */
    assert_int_equal(system(cmd), 0);
    set_root_long(bad, "classes", (1LL << 32) + 2);
    assert_null(czi_model_load(bad, &err));
    assert_int_equal(err.code, -1);
    assert_non_null(strstr(err.message, "classes is 4294967298"));
    /* a group where a weight should be: a damaged file (-1), not an I/O failure */
    assert_int_equal(system(cmd), 0);
    hid_t f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0 && H5Ldelete(f, "/model/layer_1/weight", H5P_DEFAULT) >= 0);
    H5Gclose(H5Gcreate2(f, "/model/layer_1/weight", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Fclose(f);
    assert_null(czi_model_load(bad, &err));
    assert_int_equal(err.code, -1);
    assert_non_null(strstr(err.message, "weight"));
    /* a format-1 file (no checksum over mean/std) whose std is 0: refused, not NaN rows */
    assert_int_equal(system(cmd), 0);
    f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
    static const char *v2[] = {"checksum_all", "data_bytes", "data_n", "data_d", "data_classes", "data_labels_checksum",
                               "data_rows_checksum", "blas_version", "blas_kernels", "threads"};
    for (size_t i = 0; i < sizeof v2 / sizeof *v2; i++)
        if (H5Aexists(f, v2[i]) > 0) assert_true(H5Adelete(f, v2[i]) >= 0);
    H5Fclose(f);
    set_root_long(bad, "version", 1);
    czi_model *m = czi_model_load(bad, &err); /* the format-1 file itself loads */
    assert_non_null(m);
    czi_model_free(m);
    f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, "/model/input/std", H5P_DEFAULT);
    float sd[4];
    assert_true(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, sd) >= 0);
    sd[1] = 0;
    assert_true(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, sd) >= 0);
    H5Dclose(ds);
    H5Fclose(f);
    assert_null(czi_model_load(bad, &err));
    assert_int_equal(err.code, -1);
    assert_non_null(strstr(err.message, "feature 1"));
}

static void test_infer_run_directory(void **st)
{
    (void)st;
    cz_model_spec sp = {.d = 4, .n_hidden = 1, .width = {6}, .act = {CZ_ACT_POLY}, .head = CZ_HEAD_CLASSIFY,
                        .classes = 2};
    char run[128], ck[300], latest[400];
    snprintf(run, sizeof run, "%s/run", dir);
    snprintf(ck, sizeof ck, "%s/checkpoints", run);
    assert_int_equal(mkdir(run, 0755), 0);
    assert_int_equal(mkdir(ck, 0755), 0);
    char path[256];
    save_model("run/checkpoints/ckpt-00000077.h5", &sp, 3, 8, path, sizeof path);
    snprintf(latest, sizeof latest, "%s/latest", ck);
    FILE *f = fopen(latest, "w");
    fputs("ckpt-00000077.h5\n", f);
    fclose(f);
    czi_error err;
    czi_model *m = czi_model_load(run, &err);
    if (!m) fail_msg("%s", err.message);
    assert_int_equal(czi_model_info(m)->step, 77);
    czi_model_free(m);
    assert_non_null(m = czi_model_load(latest, &err));
    czi_model_free(m);
    assert_string_equal(czi_version(), "0.1.0");
    assert_true(strlen(czi_blas_kernels()) > 0);
}

/* ---- concurrency: sessions on threads, one shared model ---- */

typedef struct job {
    const czi_model *m;
    const float *x;
    size_t B;
    int32_t *label;
    float *prob, *value;
    double *in, *layer;
    const struct job *ref; /* the single-threaded run: every repetition is compared */
    pthread_barrier_t *start; /* all threads predict at once */
    int reps;              /* predictions (0: 300) */
    int rc, mismatches;
} job;

static void *run_job(void *p)
{
    job *j = p;
    czi_error err;
    czi_session *s = czi_session_new(j->m, j->B, CZI_NORMS, &err);
    if (!s) {
        j->rc = -9;
        return NULL;
    }
    czi_outputs out = {j->label, j->prob, j->value, j->in, j->layer};
    if (j->start) pthread_barrier_wait(j->start);
    const czi_info *in = czi_model_info(j->m);
    size_t B = j->B, K = (size_t)in->classes, H = (size_t)in->n_hidden;
    for (int rep = 0; rep < (j->reps ? j->reps : 300) && !j->rc; rep++) {
        j->rc = czi_predict(s, j->x, B, &out, &err);
        if (j->ref)
            j->mismatches += memcmp(j->label, j->ref->label, B * sizeof *j->label) ||
                             memcmp(j->prob, j->ref->prob, B * K * sizeof *j->prob) ||
                             memcmp(j->value, j->ref->value, B * sizeof *j->value) ||
                             memcmp(j->in, j->ref->in, B * sizeof *j->in) ||
                             memcmp(j->layer, j->ref->layer, B * H * sizeof *j->layer);
    }
    czi_session_free(s);
    return NULL;
}

static void alloc_job(job *j, const czi_model *m, const float *x, size_t B)
{
    const czi_info *in = czi_model_info(m);
    memset(j, 0, sizeof *j);
    j->m = m;
    j->x = x;
    j->B = B;
    j->label = calloc(B, sizeof *j->label);
    j->prob = calloc(B * (size_t)in->classes, sizeof *j->prob);
    j->value = calloc(B, sizeof *j->value);
    j->in = calloc(B, sizeof *j->in);
    j->layer = calloc(B * (size_t)in->n_hidden, sizeof *j->layer);
}

static void free_job(job *j)
{
    free(j->label);
    free(j->prob);
    free(j->value);
    free(j->in);
    free(j->layer);
}

static void concurrent(const cz_model_spec *sp, const char *name)
{
    char path[256];
    save_model(name, sp, 2.5, 99, path, sizeof path);
    czi_error err;
    czi_model *m = czi_model_load(path, &err);
    assert_non_null(m);
    size_t B = 37, H = (size_t)sp->n_hidden, K = (size_t)czi_model_info(m)->classes;
    float *x = raw_rows(B, sp->d, 123);
    job one;
    alloc_job(&one, m, x, B);
    run_job(&one);
    assert_int_equal(one.rc, 0);
    enum { NT = 4 };
    job jobs[NT];
    pthread_t th[NT];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, NT);
    for (int t = 0; t < NT; t++) {
        alloc_job(&jobs[t], m, x, B);
        jobs[t].ref = &one;
        jobs[t].start = &start;
        assert_int_equal(pthread_create(&th[t], NULL, run_job, &jobs[t]), 0);
    }
    for (int t = 0; t < NT; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(jobs[t].rc, 0);
        assert_int_equal(jobs[t].mismatches, 0);
        assert_memory_equal(jobs[t].label, one.label, B * sizeof *one.label);
        assert_memory_equal(jobs[t].prob, one.prob, B * K * sizeof *one.prob);
        assert_memory_equal(jobs[t].value, one.value, B * sizeof *one.value);
        assert_memory_equal(jobs[t].in, one.in, B * sizeof *one.in);
        assert_memory_equal(jobs[t].layer, one.layer, B * H * sizeof *one.layer);
        free_job(&jobs[t]);
    }
    pthread_barrier_destroy(&start);
    free_job(&one);
    free(x);
    czi_model_free(m);
}

static void test_infer_concurrent_sessions(void **st)
{
    (void)st;
    cz_model_spec a = {.d = 12, .n_hidden = 2, .width = {16, 9}, .act = {CZ_ACT_POLY, CZ_ACT_POLY},
                       .head = CZ_HEAD_CLASSIFY, .classes = 4};
    concurrent(&a, "conc-exact.h5");
    cz_model_spec g = {.d = 20, .n_hidden = 2, .width = {6, 9}, .act = {CZ_ACT_POLY, CZ_ACT_POLY},
                       .head = CZ_HEAD_ORDINAL, .classes = 5};
    concurrent(&g, "conc-gram.h5"); /* each session's QR, filled at creation */
}

/* czi_set_threads(2) gives the bytes of one thread (the engine splits only disjoint
 * outputs; shapes big enough that its loops and GEMMs do split) */
static void test_infer_threads_bitwise(void **st)
{
    (void)st;
    cz_model_spec sp = {.d = 32, .n_hidden = 2, .width = {256, 256}, .act = {CZ_ACT_POLY, CZ_ACT_POLY},
                        .head = CZ_HEAD_CLASSIFY, .classes = 10};
    char path[256];
    save_model("threads.h5", &sp, 3, 41, path, sizeof path);
    czi_error err;
    czi_model *m = czi_model_load(path, &err);
    assert_non_null(m);
    size_t B = 64;
    float *x = raw_rows(B, sp.d, 5);
    job one[2];
    for (int t = 0; t < 2; t++) {
        czi_set_threads(t + 1);
        alloc_job(&one[t], m, x, B);
        one[t].reps = 2;
        run_job(&one[t]);
        assert_int_equal(one[t].rc, 0);
    }
    czi_set_threads(1);
    assert_memory_equal(one[0].label, one[1].label, B * sizeof *one[0].label);
    assert_memory_equal(one[0].prob, one[1].prob, B * 10 * sizeof *one[0].prob);
    assert_memory_equal(one[0].in, one[1].in, B * sizeof *one[0].in);
    assert_memory_equal(one[0].layer, one[1].layer, B * 2 * sizeof *one[0].layer);
    free_job(&one[0]);
    free_job(&one[1]);
    free(x);
    czi_model_free(m);
}

static int setup(void **st)
{
    (void)st;
    snprintf(dir, sizeof dir, "/tmp/chainz-test-infer-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    cz_error err;
    return cz_engine_init(NULL, &err);
}

static int teardown(void **st)
{
    (void)st;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_infer_classify),
        cmocka_unit_test(test_infer_width8),
        cmocka_unit_test(test_infer_ordinal_gram),
        cmocka_unit_test(test_infer_regress_one_layer),
        cmocka_unit_test(test_infer_refusals),
        cmocka_unit_test(test_infer_damaged_checkpoints),
        cmocka_unit_test(test_infer_run_directory),
        cmocka_unit_test(test_infer_concurrent_sessions),
        cmocka_unit_test(test_infer_threads_bitwise),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
