/* chainz prep corrupt (include/chainz/corrupt.h): each kind by hand on small images,
 * determinism (same seed same bytes, another seed or row other bytes, any processing
 * order), values in [0, 1], severities monotone in mean |corrupted - clean| (synthetic
 * images, and Debian's Fashion-MNIST when installed), files (labels and N kept, image
 * shape recorded by prep idx, identical reruns) and bad inputs. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "chainz/corrupt.h"
#include "chainz/data.h"
#include "chainz/prep.h"
#include "chainz/rng.h"

#define R 28
#define C 28
#define D (R * C)
#define FASHION_IMAGES "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
#define FASHION_LABELS "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_corrupt.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_in(char *buf, size_t len, const char *name) { snprintf(buf, len, "%s/%s", tmpdir, name); }

/* A garment-like synthetic image i: a bright textured ellipse on a black background with
 * a soft edge, different per i (Fashion-MNIST's look: half the pixels 0). */
static void synth(float *x, int i)
{
    cz_rng r;
    cz_rng_seed(&r, 1000 + (uint64_t)i);
    double cy = 13.5 + 2 * (cz_rng_uniform(&r) - 0.5), cx = 13.5 + 2 * (cz_rng_uniform(&r) - 0.5);
    double ay = 8 + 5 * cz_rng_uniform(&r), ax = 5 + 6 * cz_rng_uniform(&r);
    double level = 0.4 + 0.5 * cz_rng_uniform(&r);
    for (int y = 0; y < R; y++)
        for (int xx = 0; xx < C; xx++) {
            double q = ((y - cy) / ay) * ((y - cy) / ay) + ((xx - cx) / ax) * ((xx - cx) / ax);
            double v = q < 1 ? level + 0.1 * ((y + xx + i) % 3 - 1) : q < 1.3 ? level * (1.3 - q) / 0.3 : 0;
            x[y * C + xx] = (float)(v < 0 ? 0 : v > 1 ? 1 : v);
        }
}

static void apply1(cz_corrupt_kind k, int s, uint64_t seed, size_t rows, size_t cols, float *out,
                   const float *in, uint64_t row)
{
    cz_corrupt *c;
    cz_error err = {0};
    assert_int_equal(cz_corrupt_init(&c, k, s, seed, rows, cols, &err), 0);
    cz_corrupt_apply(c, out, in, row);
    cz_corrupt_free(c);
}

static double mean_abs(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += fabs((double)a[i] - (double)b[i]);
    return s / (double)n;
}

static void test_corrupt_names_and_table(void **state)
{
    (void)state;
    for (int k = 0; k < CZ_CORRUPT_KINDS; k++) {
        cz_corrupt_kind back;
        assert_int_equal(cz_corrupt_kind_parse(cz_corrupt_kind_name((cz_corrupt_kind)k), &back), 0);
        assert_int_equal(back, k);
        assert_non_null(strstr(cz_corrupt_kind_list(), cz_corrupt_kind_name((cz_corrupt_kind)k)));
        assert_true(cz_corrupt_param((cz_corrupt_kind)k, 0) < 0);
        assert_true(cz_corrupt_param((cz_corrupt_kind)k, 6) < 0);
        for (int s = 2; s <= 5; s++) { /* contrast's c falls, the others rise */
            double a = cz_corrupt_param((cz_corrupt_kind)k, s - 1), b = cz_corrupt_param((cz_corrupt_kind)k, s);
            assert_true(k == CZ_CORRUPT_CONTRAST ? b < a : b > a);
        }
    }
    cz_corrupt_kind k;
    assert_int_equal(cz_corrupt_kind_parse("fog", &k), -1);
    assert_int_equal(cz_corrupt_kind_parse("Gaussian_noise", &k), -1);
    assert_null(cz_corrupt_kind_name((cz_corrupt_kind)5));
    assert_true(cz_corrupt_param(CZ_CORRUPT_GAUSSIAN_NOISE, 3) == 0.18);
    assert_true(cz_corrupt_param(CZ_CORRUPT_PIXELATE, 3) == 4);
}

static void test_corrupt_init_rejects(void **state)
{
    (void)state;
    cz_corrupt *c = (cz_corrupt *)1;
    cz_error err = {0};
    assert_int_equal(cz_corrupt_init(&c, CZ_CORRUPT_CONTRAST, 0, 1, R, C, &err), CZ_EINVAL);
    assert_null(c);
    assert_non_null(strstr(err.msg, "severity 0 is outside 1..5"));
    assert_int_equal(cz_corrupt_init(&c, CZ_CORRUPT_CONTRAST, 6, 1, R, C, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "severity 6"));
    assert_int_equal(cz_corrupt_init(&c, (cz_corrupt_kind)7, 1, 1, R, C, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "expected one of gaussian_noise"));
    assert_int_equal(cz_corrupt_init(&c, CZ_CORRUPT_CONTRAST, 1, 1, 0, C, &err), CZ_EINVAL);
    cz_corrupt_free(NULL);
}

/* same seed and row: same bytes; the noise kinds change with the seed, the severity and
 * the row; the others ignore the seed; an object gives the same bytes in any order */
static void test_corrupt_deterministic(void **state)
{
    (void)state;
    enum { N = 6 };
    float *x = malloc(N * D * sizeof *x), *a = malloc(N * D * sizeof *a), *b = malloc(N * D * sizeof *b);
    float *o = malloc(D * sizeof *o);
    assert_non_null(x);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(o);
    for (int i = 0; i < N; i++) synth(x + i * D, i);
    for (int k = 0; k < CZ_CORRUPT_KINDS; k++)
        for (int s = 1; s <= 5; s++) {
            cz_corrupt *c1, *c2;
            cz_error err = {0};
            assert_int_equal(cz_corrupt_init(&c1, (cz_corrupt_kind)k, s, 7, R, C, &err), 0);
            assert_int_equal(cz_corrupt_init(&c2, (cz_corrupt_kind)k, s, 7, R, C, &err), 0);
            for (int i = 0; i < N; i++) cz_corrupt_apply(c1, a + i * D, x + i * D, (uint64_t)i);
            for (int i = N - 1; i >= 0; i--) cz_corrupt_apply(c2, b + i * D, x + i * D, (uint64_t)i);
            assert_memory_equal(a, b, N * D * sizeof *a);
            cz_corrupt_free(c1);
            cz_corrupt_free(c2);
            apply1((cz_corrupt_kind)k, s, 8, R, C, o, x, 0); /* another seed */
            int random = cz_corrupt_is_random((cz_corrupt_kind)k);
            assert_int_equal(memcmp(o, a, D * sizeof *o) != 0, random);
            apply1((cz_corrupt_kind)k, s, 7, R, C, o, x, 1); /* image 0 as if it were row 1 */
            assert_int_equal(memcmp(o, a, D * sizeof *o) != 0, random);
            if (s > 1) { /* the severity keys the noise too: not the same draws rescaled */
                apply1((cz_corrupt_kind)k, s - 1, 7, R, C, o, x, 0);
                assert_true(memcmp(o, a, D * sizeof *o) != 0);
            }
        }
    free(x);
    free(a);
    free(b);
    free(o);
}

/* every kind and severity keeps pixels in [0, 1], also on images of 0s and 1s */
static void test_corrupt_values_in_range(void **state)
{
    (void)state;
    float x[3][D], o[D];
    synth(x[0], 3);
    for (int i = 0; i < D; i++) {
        x[1][i] = (i / 3) % 2 ? 1.0f : 0.0f;
        x[2][i] = 1.0f;
    }
    for (int k = 0; k < CZ_CORRUPT_KINDS; k++)
        for (int s = 1; s <= 5; s++)
            for (int j = 0; j < 3; j++) {
                apply1((cz_corrupt_kind)k, s, 3, R, C, o, x[j], (uint64_t)j);
                for (int i = 0; i < D; i++) assert_true(o[i] >= 0.0f && o[i] <= 1.0f);
            }
}

/* the mean |corrupted - clean| rises strictly with the severity, for every kind */
static void check_monotone(const float *x, size_t n, const char *what)
{
    float *o = malloc(D * sizeof *o);
    assert_non_null(o);
    for (int k = 0; k < CZ_CORRUPT_KINDS; k++) {
        double prev = 0;
        for (int s = 1; s <= 5; s++) {
            double sum = 0;
            for (size_t i = 0; i < n; i++) {
                apply1((cz_corrupt_kind)k, s, 1, R, C, o, x + i * D, i);
                sum += mean_abs(o, x + i * D, D);
            }
            sum /= (double)n;
            if (!(sum > prev))
                fail_msg("%s: %s severity %d: mean |change| %.6f not above severity %d's %.6f", what,
                         cz_corrupt_kind_name((cz_corrupt_kind)k), s, sum, s - 1, prev);
            prev = sum;
        }
    }
    free(o);
}

static void test_corrupt_severity_monotone(void **state)
{
    (void)state;
    enum { N = 8 };
    float *x = malloc(N * D * sizeof *x);
    assert_non_null(x);
    for (int i = 0; i < N; i++) synth(x + i * D, i);
    check_monotone(x, N, "synthetic");
    free(x);
    if (access(FASHION_IMAGES, R_OK) || access(FASHION_LABELS, R_OK)) {
        fprintf(stderr, "note: %s not installed: the Fashion-MNIST part is skipped\n", FASHION_IMAGES);
        return;
    }
    cz_prep_set set;
    cz_error err = {0};
    assert_int_equal(cz_prep_idx_read(&set, FASHION_IMAGES, FASHION_LABELS, &err), 0);
    assert_int_equal(set.image_rows, 28);
    assert_int_equal(set.image_cols, 28);
    check_monotone(set.x, 20, "Fashion-MNIST t10k images 0..19"); /* every 500th would do too */
    cz_prep_set_free(&set);
}

static void test_corrupt_contrast_by_hand(void **state)
{
    (void)state;
    float x[D], o[D];
    for (int i = 0; i < D; i++) x[i] = 0.3f;
    for (int s = 1; s <= 5; s++) { /* a constant image is its own mean: unchanged, exactly */
        apply1(CZ_CORRUPT_CONTRAST, s, 1, R, C, o, x, 0);
        assert_memory_equal(o, x, sizeof x);
    }
    const float y[4] = {0.0f, 0.5f, 1.0f, 0.5f}; /* mean 0.5; severity 2: c = 0.5 */
    float p[4];
    apply1(CZ_CORRUPT_CONTRAST, 2, 1, 2, 2, p, y, 0);
    assert_true(p[0] == 0.25f && p[1] == 0.5f && p[2] == 0.75f && p[3] == 0.5f);
}

static void test_corrupt_pixelate_by_hand(void **state)
{
    (void)state;
    float x[D], o[D];
    for (int y = 0; y < R; y++) /* constant on 4x4 blocks: blocks of 2 and 4 leave it */
        for (int c = 0; c < C; c++) x[y * C + c] = (float)((y / 4 * 7 + c / 4 * 3) % 10) / 9.0f;
    apply1(CZ_CORRUPT_PIXELATE, 1, 1, R, C, o, x, 0);
    assert_memory_equal(o, x, sizeof x);
    apply1(CZ_CORRUPT_PIXELATE, 3, 1, R, C, o, x, 0);
    assert_memory_equal(o, x, sizeof x);
    apply1(CZ_CORRUPT_PIXELATE, 2, 1, R, C, o, x, 0); /* blocks of 3 straddle the 4x4 ones */
    assert_true(memcmp(o, x, sizeof x) != 0);
    /* 3x3, blocks of 2: [a b | c] [d e | f] / [g h | i] -> means of {a b d e}, {c f}, {g h}, {i} */
    const float y[9] = {0.0f, 0.2f, 1.0f, 0.4f, 0.6f, 0.5f, 0.25f, 0.75f, 0.125f};
    float p[9];
    apply1(CZ_CORRUPT_PIXELATE, 1, 1, 3, 3, p, y, 0);
    const float want[9] = {0.3f, 0.3f, 0.75f, 0.3f, 0.3f, 0.75f, 0.5f, 0.5f, 0.125f};
    for (int i = 0; i < 9; i++) assert_float_equal(p[i], want[i], 1e-7);
}

static void test_corrupt_blur_by_hand(void **state)
{
    (void)state;
    float x[D], o[D];
    for (int i = 0; i < D; i++) x[i] = 0.7f;
    for (int s = 1; s <= 5; s++) { /* the weights sum to 1 and edges repeat: unchanged */
        apply1(CZ_CORRUPT_GAUSSIAN_BLUR, s, 1, R, C, o, x, 0);
        assert_memory_equal(o, x, sizeof x);
    }
    /* a unit impulse in the middle of 21x21: the separable Gaussian, recomputed with libm's
     * exp (radius floor(4 sigma + 0.5), normalised), its mass 1 (the kernel fits) */
    enum { S = 21 };
    float im[S * S] = {0}, ob[S * S];
    im[10 * S + 10] = 1.0f;
    for (int s = 1; s <= 5; s++) {
        double sigma = cz_corrupt_param(CZ_CORRUPT_GAUSSIAN_BLUR, s), w[32], sum = 0, mass = 0;
        int rad = (int)(4 * sigma + 0.5);
        for (int i = -rad; i <= rad; i++) sum += (w[i + rad] = exp(-(double)(i * i) / (2 * sigma * sigma)));
        apply1(CZ_CORRUPT_GAUSSIAN_BLUR, s, 1, S, S, ob, im, 0);
        for (int y = 0; y < S; y++)
            for (int c = 0; c < S; c++) {
                int dy = y - 10, dc = c - 10;
                double want = abs(dy) <= rad && abs(dc) <= rad ? w[dy + rad] * w[dc + rad] / (sum * sum) : 0;
                assert_float_equal(ob[y * S + c], want, 1e-7);
                mass += ob[y * S + c];
            }
        assert_float_equal(mass, 1.0, 1e-5);
    }
    /* edges clamped: a left half of 1s blurred keeps 1 at the left border (the pixels
     * beyond it are copies of the border, not zeros) */
    float h[S * S];
    for (int i = 0; i < S * S; i++) h[i] = i % S < 10 ? 1.0f : 0.0f;
    apply1(CZ_CORRUPT_GAUSSIAN_BLUR, 5, 1, S, S, ob, h, 0);
    for (int y = 0; y < S; y++) {
        assert_true(ob[y * S] == 1.0f);
        assert_true(ob[y * S + 9] < 1.0f && ob[y * S + 10] > 0.0f);
    }
}

/* the noise kinds against their definition on a mid-grey image (no clipping in play) */
static void test_corrupt_noise_statistics(void **state)
{
    (void)state;
    enum { S = 200 };
    float *x = malloc(S * S * sizeof *x), *o = malloc(S * S * sizeof *o);
    assert_non_null(x);
    assert_non_null(o);
    for (int i = 0; i < S * S; i++) x[i] = 0.5f;
    /* severity 1: sigma 0.08, so |z| < 6 stays inside [0, 1] */
    apply1(CZ_CORRUPT_GAUSSIAN_NOISE, 1, 5, S, S, o, x, 0);
    double m = 0, v = 0, tail = 0;
    for (int i = 0; i < S * S; i++) {
        double z = ((double)o[i] - 0.5) / 0.08;
        m += z;
        v += z * z;
        tail += fabs(z) > 1.959964;
    }
    m /= S * S;
    v = v / (S * S) - m * m;
    assert_true(fabs(m) < 0.02);         /* 4 standard errors */
    assert_true(fabs(v - 1) < 0.03);     /* 4 standard errors (sd of v: sqrt(2/n)) */
    tail /= S * S;
    assert_true(fabs(tail - 0.05) < 0.005); /* normal tails, not uniform ones */
    for (int s = 1; s <= 5; s++) {
        double a = cz_corrupt_param(CZ_CORRUPT_IMPULSE_NOISE, s);
        apply1(CZ_CORRUPT_IMPULSE_NOISE, s, 5, S, S, o, x, 0);
        int zeros = 0, ones = 0, same = 0;
        for (int i = 0; i < S * S; i++) {
            zeros += o[i] == 0.0f;
            ones += o[i] == 1.0f;
            same += o[i] == 0.5f;
        }
        assert_int_equal(zeros + ones + same, S * S);
        double n = S * S, sd = sqrt(n * a / 2 * (1 - a / 2));
        assert_true(fabs(zeros - n * a / 2) < 5 * sd);
        assert_true(fabs(ones - n * a / 2) < 5 * sd);
    }
    free(x);
    free(o);
}

/* writes n synthetic images with labels i % 10 through cz_prep_write (image shape recorded) */
static void write_images(const char *path, size_t n, int with_shape)
{
    cz_prep_set s;
    memset(&s, 0, sizeof s);
    s.n = n;
    s.d = D;
    s.x = malloc(n * D * sizeof *s.x);
    s.y_class = malloc(n * sizeof *s.y_class);
    assert_non_null(s.x);
    assert_non_null(s.y_class);
    for (size_t i = 0; i < n; i++) {
        synth(s.x + i * D, (int)i);
        s.y_class[i] = (int32_t)((i * 7) % 10);
    }
    s.task = CZ_HEAD_CLASSIFY;
    s.classes = 10;
    if (with_shape) {
        s.image_rows = R;
        s.image_cols = C;
    }
    snprintf(s.source, sizeof s.source, "test_corrupt synthetic");
    cz_error err = {0};
    assert_int_equal(cz_prep_write(&s, NULL, 0, path, NULL, 1, &err), 0);
    cz_prep_set_free(&s);
}

static float *read_all(const char *path, size_t *n, size_t *d, int32_t **labels)
{
    cz_data *ds;
    cz_error err = {0};
    if (cz_data_open(&ds, path, &err)) fail_msg("%s", err.msg);
    const cz_data_info *info = cz_data_get_info(ds);
    *n = info->n;
    *d = info->d;
    float *x = malloc(info->n * info->d * sizeof *x);
    uint64_t *idx = malloc(info->n * sizeof *idx);
    *labels = malloc(info->n * sizeof **labels);
    assert_non_null(x);
    assert_non_null(idx);
    assert_non_null(*labels);
    for (size_t i = 0; i < info->n; i++) idx[i] = i;
    assert_int_equal(cz_data_read_rows(ds, idx, info->n, x, &err), 0);
    memcpy(*labels, cz_data_labels_class(ds), info->n * sizeof **labels);
    free(idx);
    cz_data_close(ds);
    return x;
}

static int no_temporaries(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q '\\.tmp\\.'", tmpdir);
    return system(cmd) != 0;
}

/* a file: N, labels and task kept; every row is cz_corrupt_apply of the clean row keyed by
 * its index; the image shape is recorded; a rerun gives the same features */
static void test_corrupt_file_roundtrip(void **state)
{
    (void)state;
    enum { N = 1500 }; /* more than one read block of 1024 rows */
    char in[300], out[300], out2[300];
    path_in(in, sizeof in, "clean.h5");
    path_in(out, sizeof out, "noisy.h5");
    path_in(out2, sizeof out2, "noisy2.h5");
    write_images(in, N, 1);
    cz_corrupt_opts o = {.kind = CZ_CORRUPT_GAUSSIAN_NOISE, .severity = 4, .seed = 11};
    cz_corrupt_report rep;
    cz_error err = {0};
    if (cz_corrupt_file(in, out, &o, &rep, &err)) fail_msg("%s", err.msg);
    assert_int_equal(rep.n, N);
    assert_int_equal(rep.rows, 28);
    assert_int_equal(rep.cols, 28);
    assert_true(rep.mean_abs_change > 0.05 && rep.mean_abs_change < 0.3);
    size_t n0, d0, n1, d1;
    int32_t *y0, *y1;
    float *x0 = read_all(in, &n0, &d0, &y0), *x1 = read_all(out, &n1, &d1, &y1);
    assert_int_equal(n1, N);
    assert_int_equal(d1, D);
    assert_memory_equal(y0, y1, N * sizeof *y0);
    float o1[D];
    cz_corrupt *c;
    assert_int_equal(cz_corrupt_init(&c, o.kind, o.severity, o.seed, R, C, &err), 0);
    double change = 0;
    for (size_t i = 0; i < N; i++) {
        cz_corrupt_apply(c, o1, x0 + i * D, i);
        assert_memory_equal(o1, x1 + i * D, sizeof o1);
        change += mean_abs(o1, x0 + i * D, D);
    }
    assert_float_equal(change / N, rep.mean_abs_change, 1e-9);
    cz_corrupt_free(c);
    /* the output records its shape: corrupting it again needs no --image */
    assert_int_equal(cz_corrupt_file(out, out2, &o, &rep, &err), 0);
    assert_int_equal(rep.rows, 28);
    assert_int_equal(cz_corrupt_file(in, out2, &o, &rep, &err), 0); /* replaces it atomically */
    size_t n2, d2;
    int32_t *y2;
    float *x2 = read_all(out2, &n2, &d2, &y2);
    assert_memory_equal(x1, x2, N * D * sizeof *x1);
    assert_true(no_temporaries());
    free(x0);
    free(x1);
    free(x2);
    free(y0);
    free(y1);
    free(y2);
}

/* chainz prep idx records the image shape (here 3 x 4) */
static void test_corrupt_idx_records_shape(void **state)
{
    (void)state;
    char img[300], lab[300], h5[300], out[300];
    path_in(img, sizeof img, "i.idx");
    path_in(lab, sizeof lab, "l.idx");
    path_in(h5, sizeof h5, "idx.h5");
    path_in(out, sizeof out, "idx-blur.h5");
    unsigned char ih[16] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4}, lh[8] = {0, 0, 8, 1, 0, 0, 0, 2};
    unsigned char pix[24], labs[2] = {3, 9};
    for (int i = 0; i < 24; i++) pix[i] = (unsigned char)(i * 10);
    FILE *f = fopen(img, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(ih, 1, 16, f) + fwrite(pix, 1, 24, f), 40);
    assert_int_equal(fclose(f), 0);
    assert_non_null(f = fopen(lab, "wb"));
    assert_int_equal(fwrite(lh, 1, 8, f) + fwrite(labs, 1, 2, f), 10);
    assert_int_equal(fclose(f), 0);
    cz_prep_set s;
    cz_error err = {0};
    assert_int_equal(cz_prep_idx_read(&s, img, lab, &err), 0);
    assert_int_equal(s.image_rows, 3);
    assert_int_equal(s.image_cols, 4);
    assert_int_equal(cz_prep_write(&s, NULL, 0, h5, NULL, 1, &err), 0);
    cz_prep_set_free(&s);
    cz_corrupt_opts o = {.kind = CZ_CORRUPT_GAUSSIAN_BLUR, .severity = 1, .seed = 1};
    cz_corrupt_report rep;
    if (cz_corrupt_file(h5, out, &o, &rep, &err)) fail_msg("%s", err.msg);
    assert_int_equal(rep.rows, 3);
    assert_int_equal(rep.cols, 4);
    assert_int_equal(rep.n, 2);
    o.image_rows = 4; /* 4 x 3 has the right d but contradicts the file */
    o.image_cols = 3;
    assert_int_equal(cz_corrupt_file(h5, out, &o, &rep, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "--image 4x3 disagrees with the file's image shape 3x4"));
    assert_non_null(strstr(err.msg, h5));
}

static void expect_error(const char *in, const char *out, const cz_corrupt_opts *o, const char *want)
{
    cz_corrupt_report rep;
    cz_error err = {0};
    int rc = cz_corrupt_file(in, out, o, &rep, &err);
    if (rc != CZ_EINVAL || !strstr(err.msg, want) || !strstr(err.msg, in))
        fail_msg("expected CZ_EINVAL naming %s with '%s', got %d: %s", in, want, rc, err.msg);
    if (strcmp(in, out)) assert_int_equal(access(out, F_OK), -1);
    assert_true(no_temporaries());
}

static void test_corrupt_file_errors(void **state)
{
    (void)state;
    char img[300], plain[300], wide[300], big[300], out[300];
    path_in(img, sizeof img, "e-img.h5");
    path_in(plain, sizeof plain, "e-plain.h5");
    path_in(wide, sizeof wide, "e-wide.h5");
    path_in(big, sizeof big, "e-big.h5");
    path_in(out, sizeof out, "e-out.h5");
    write_images(img, 5, 1);
    write_images(plain, 5, 0); /* same images, no image_rows / image_cols */
    float x[3 * 100];
    int32_t y[3] = {0, 1, 0};
    for (int i = 0; i < 300; i++) x[i] = (float)(i % 7) / 7.0f;
    cz_error err = {0};
    assert_int_equal(cz_data_write(wide, x, y, NULL, 3, 100, CZ_HEAD_CLASSIFY, 2, "d 100", &err), 0);
    x[205] = 2.5f; /* a standardized value, not a pixel */
    assert_int_equal(cz_data_write(big, x, y, NULL, 3, 100, CZ_HEAD_CLASSIFY, 2, "not an image", &err), 0);

    cz_corrupt_opts o = {.kind = CZ_CORRUPT_CONTRAST, .severity = 0, .seed = 1};
    expect_error(img, out, &o, "severity 0 is outside 1..5");
    o.severity = 6;
    expect_error(img, out, &o, "severity 6 is outside 1..5");
    o.severity = 2;
    o.kind = (cz_corrupt_kind)9;
    expect_error(img, out, &o, "unknown corruption kind 9: expected one of gaussian_noise");
    o.kind = CZ_CORRUPT_PIXELATE;
    expect_error(plain, out, &o, "no image shape");
    expect_error(wide, out, &o, "no image shape");
    o.image_rows = 28;
    o.image_cols = 28;
    expect_error(wide, out, &o, "rows hold d = 100 features, but a 28x28 image (from --image) has 784 pixels");
    o.image_rows = o.image_cols = 10;
    expect_error(big, out, &o, "row 2, feature 5 (pixel 0, 5) is 2.5: expected image pixels in [0, 1]");
    expect_error(img, img, &o, "is the input file");
    /* with the shape given, the plain file works and equals the one with attributes */
    char a[300], b[300];
    path_in(a, sizeof a, "e-a.h5");
    path_in(b, sizeof b, "e-b.h5");
    o.image_rows = o.image_cols = 28;
    assert_int_equal(cz_corrupt_file(plain, a, &o, NULL, &err), 0);
    o.image_rows = o.image_cols = 0;
    assert_int_equal(cz_corrupt_file(img, b, &o, NULL, &err), 0);
    size_t n1, d1, n2, d2;
    int32_t *y1, *y2;
    float *x1 = read_all(a, &n1, &d1, &y1), *x2 = read_all(b, &n2, &d2, &y2);
    assert_memory_equal(x1, x2, 5 * D * sizeof *x1);
    free(x1);
    free(x2);
    free(y1);
    free(y2);
    /* not HDF5 at all */
    char junk[300];
    path_in(junk, sizeof junk, "junk.h5");
    FILE *f = fopen(junk, "w");
    assert_non_null(f);
    fputs("label,x\n1,2\n", f);
    fclose(f);
    assert_true(cz_corrupt_file(junk, out, &o, NULL, &err) < 0);
    assert_non_null(strstr(err.msg, junk));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corrupt_names_and_table),
        cmocka_unit_test(test_corrupt_init_rejects),
        cmocka_unit_test(test_corrupt_deterministic),
        cmocka_unit_test(test_corrupt_values_in_range),
        cmocka_unit_test(test_corrupt_severity_monotone),
        cmocka_unit_test(test_corrupt_contrast_by_hand),
        cmocka_unit_test(test_corrupt_pixelate_by_hand),
        cmocka_unit_test(test_corrupt_blur_by_hand),
        cmocka_unit_test(test_corrupt_noise_statistics),
        cmocka_unit_test(test_corrupt_file_roundtrip),
        cmocka_unit_test(test_corrupt_idx_records_shape),
        cmocka_unit_test(test_corrupt_file_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
