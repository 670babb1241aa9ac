/* Seeded image corruptions (include/chainz/corrupt.h; parameters and numbers in
 * docs/PREP.md). Images are corrupted one at a time in double precision and rounded once
 * to float32 after clipping. This file must stay free of libm functions other than sqrt
 * and frexp (both exact) and is compiled with -ffp-contract=off, so that a seed gives the
 * same bytes on every machine (see the header). */
#include "chainz/corrupt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chainz/data.h"
#include "chainz/rng.h"
#include "internal.h"

#define BLUR_MAX_RADIUS 16
#define MAX_SIDE 65536
#define READ_BLOCK_ROWS 1024

static const char *const kind_names[CZ_CORRUPT_KINDS] = {
    "gaussian_noise", "gaussian_blur", "contrast", "pixelate", "impulse_noise",
};
static const char *const param_names[CZ_CORRUPT_KINDS] = {
    "sigma", "blur sigma", "c", "block", "amount",
};
/* [kind][severity - 1]: docs/PREP.md explains each row */
static const double params[CZ_CORRUPT_KINDS][CZ_CORRUPT_SEVERITIES] = {
    {0.08, 0.12, 0.18, 0.26, 0.38}, /* gaussian_noise: sigma (ImageNet-C's levels) */
    {0.5, 0.75, 1.0, 1.25, 1.5},    /* gaussian_blur: sigma in pixels */
    {0.75, 0.5, 0.4, 0.3, 0.15},    /* contrast: c (CIFAR-10-C's levels) */
    {2, 3, 4, 5, 7},                /* pixelate: block side in pixels */
    {0.03, 0.06, 0.09, 0.17, 0.27}, /* impulse_noise: fraction of pixels (ImageNet-C's) */
};

struct cz_corrupt {
    cz_corrupt_kind kind;
    int severity;
    double p;              /* the table value */
    uint64_t key;          /* hash of (seed, kind, severity): row seeds derive from it */
    size_t rows, cols;
    int radius;            /* blur */
    double w[BLUR_MAX_RADIUS + 1]; /* blur weights w[|k|], sum over -radius..radius is 1 */
    double *tmp;           /* blur: [rows x cols] after the horizontal pass */
};

const char *cz_corrupt_kind_name(cz_corrupt_kind k)
{
    return (int)k >= 0 && k < CZ_CORRUPT_KINDS ? kind_names[k] : NULL;
}

int cz_corrupt_kind_parse(const char *name, cz_corrupt_kind *out)
{
    for (int k = 0; k < CZ_CORRUPT_KINDS; k++)
        if (!strcmp(name, kind_names[k])) {
            *out = (cz_corrupt_kind)k;
            return 0;
        }
    return -1;
}

const char *cz_corrupt_kind_list(void)
{
    return "gaussian_noise, gaussian_blur, contrast, pixelate, impulse_noise";
}

double cz_corrupt_param(cz_corrupt_kind k, int severity)
{
    if ((int)k < 0 || k >= CZ_CORRUPT_KINDS || severity < 1 || severity > CZ_CORRUPT_SEVERITIES)
        return -1;
    return params[k][severity - 1];
}

const char *cz_corrupt_param_name(cz_corrupt_kind k)
{
    return (int)k >= 0 && k < CZ_CORRUPT_KINDS ? param_names[k] : NULL;
}

int cz_corrupt_is_random(cz_corrupt_kind k)
{
    return k == CZ_CORRUPT_GAUSSIAN_NOISE || k == CZ_CORRUPT_IMPULSE_NOISE;
}

/* ---- arithmetic that is the same everywhere: + - * / and the exact sqrt and frexp ---- */

/* ln(x) for finite x > 0: x = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(t),
 * t = (m - 1) / (m + 1), |t| < 0.172, summed to far below double rounding. */
static double det_log(double x)
{
    int e;
    double m = frexp(x, &e);
    if (m < 0.70710678118654752440) {
        m *= 2;
        e--;
    }
    double t = (m - 1) / (m + 1), t2 = t * t, term = t, sum = 0;
    for (int k = 1; k <= 41; k += 2) {
        sum += term / k;
        term *= t2;
    }
    return 2 * sum + (double)e * 0.69314718055994530942;
}

/* e^x for x in [-50, 0]: the Taylor series of e^(x/1024), squared ten times */
static double det_exp(double x)
{
    double y = x / 1024, term = 1, sum = 1;
    for (int k = 1; k <= 14; k++) {
        term *= y / k;
        sum += term;
    }
    for (int i = 0; i < 10; i++) sum *= sum;
    return sum;
}

/* Two independent standard normal deviates (Marsaglia's polar method). */
static void polar_normal(cz_rng *r, double *z1, double *z2)
{
    double u, v, s;
    do {
        u = 2 * cz_rng_uniform(r) - 1;
        v = 2 * cz_rng_uniform(r) - 1;
        s = u * u + v * v;
    } while (s >= 1 || s == 0);
    double f = sqrt(-2 * det_log(s) / s);
    *z1 = u * f;
    *z2 = v * f;
}

static float clip01(double x) { return (float)(x < 0 ? 0 : x > 1 ? 1 : x); }

static size_t clampi(long i, size_t n) { return i < 0 ? 0 : (size_t)i >= n ? n - 1 : (size_t)i; }

/* ---- one corruption ---- */

void cz_corrupt_free(cz_corrupt *c)
{
    if (!c) return;
    free(c->tmp);
    free(c);
}

int cz_corrupt_init(cz_corrupt **out, cz_corrupt_kind k, int severity, uint64_t seed,
                    size_t rows, size_t cols, cz_error *err)
{
    *out = NULL;
    if ((int)k < 0 || k >= CZ_CORRUPT_KINDS)
        return cz_error_set(err, CZ_EINVAL, "unknown corruption kind %d: expected one of %s", (int)k,
                            cz_corrupt_kind_list());
    if (severity < 1 || severity > CZ_CORRUPT_SEVERITIES)
        return cz_error_set(err, CZ_EINVAL, "severity %d is outside 1..%d", severity, CZ_CORRUPT_SEVERITIES);
    if (rows < 1 || cols < 1 || rows > MAX_SIDE || cols > MAX_SIDE)
        return cz_error_set(err, CZ_EINVAL, "image shape %zux%zu: expected 1..%d pixels per side", rows, cols,
                            MAX_SIDE);
    cz_corrupt *c = calloc(1, sizeof *c);
    if (!c) return cz_error_set(err, CZ_ENOMEM, "out of memory");
    c->kind = k;
    c->severity = severity;
    c->p = params[k][severity - 1];
    c->key = cz_hash64(cz_hash64(seed, CZ_CORRUPT_KEY + (uint64_t)k), (uint64_t)severity);
    c->rows = rows;
    c->cols = cols;
    if (k == CZ_CORRUPT_GAUSSIAN_BLUR) {
        double sigma = c->p, sum = 0;
        c->radius = (int)(4 * sigma + 0.5);
        for (int i = 0; i <= c->radius; i++) {
            c->w[i] = det_exp(-(double)(i * i) / (2 * sigma * sigma));
            sum += i ? 2 * c->w[i] : c->w[i];
        }
        for (int i = 0; i <= c->radius; i++) c->w[i] /= sum;
        if (!(c->tmp = malloc(rows * cols * sizeof *c->tmp))) {
            free(c);
            return cz_error_set(err, CZ_ENOMEM, "out of memory for a %zux%zu image", rows, cols);
        }
    }
    *out = c;
    return 0;
}

/* in, out: [rows x cols] row-major */
static void blur(const cz_corrupt *c, float *out, const float *in)
{
    size_t R = c->rows, C = c->cols;
    long rad = c->radius;
    double *tmp = c->tmp; /* [R x C] */
    for (size_t r = 0; r < R; r++)
        for (size_t j = 0; j < C; j++) {
            double s = 0;
            for (long k = -rad; k <= rad; k++)
                s += c->w[k < 0 ? -k : k] * (double)in[r * C + clampi((long)j + k, C)];
            tmp[r * C + j] = s;
        }
    for (size_t r = 0; r < R; r++)
        for (size_t j = 0; j < C; j++) {
            double s = 0;
            for (long k = -rad; k <= rad; k++)
                s += c->w[k < 0 ? -k : k] * tmp[clampi((long)r + k, R) * C + j];
            out[r * C + j] = clip01(s);
        }
}

static void pixelate(const cz_corrupt *c, float *out, const float *in)
{
    size_t R = c->rows, C = c->cols, b = (size_t)c->p;
    for (size_t r0 = 0; r0 < R; r0 += b)
        for (size_t c0 = 0; c0 < C; c0 += b) {
            size_t r1 = r0 + b < R ? r0 + b : R, c1 = c0 + b < C ? c0 + b : C;
            double s = 0;
            for (size_t r = r0; r < r1; r++)
                for (size_t j = c0; j < c1; j++) s += in[r * C + j];
            float m = clip01(s / (double)((r1 - r0) * (c1 - c0)));
            for (size_t r = r0; r < r1; r++)
                for (size_t j = c0; j < c1; j++) out[r * C + j] = m;
        }
}

void cz_corrupt_apply(cz_corrupt *c, float *out, const float *in, uint64_t row)
{
    size_t n = c->rows * c->cols;
    cz_rng rng;
    if (cz_corrupt_is_random(c->kind)) cz_rng_seed(&rng, cz_hash64(c->key, row));
    switch (c->kind) {
    case CZ_CORRUPT_GAUSSIAN_NOISE:
        for (size_t i = 0; i < n; i += 2) {
            double z1, z2;
            polar_normal(&rng, &z1, &z2);
            out[i] = clip01((double)in[i] + c->p * z1);
            if (i + 1 < n) out[i + 1] = clip01((double)in[i + 1] + c->p * z2);
        }
        break;
    case CZ_CORRUPT_GAUSSIAN_BLUR: blur(c, out, in); break;
    case CZ_CORRUPT_CONTRAST: {
        double m = 0;
        for (size_t i = 0; i < n; i++) m += in[i];
        m /= (double)n;
        for (size_t i = 0; i < n; i++) out[i] = clip01(((double)in[i] - m) * c->p + m);
        break;
    }
    case CZ_CORRUPT_PIXELATE: pixelate(c, out, in); break;
    case CZ_CORRUPT_IMPULSE_NOISE:
        for (size_t i = 0; i < n; i++) {
            double u = cz_rng_uniform(&rng);
            out[i] = u < c->p / 2 ? 0.0f : u < c->p ? 1.0f : in[i];
        }
        break;
    default: memcpy(out, in, n * sizeof *out); break; /* unreachable: init checks the kind */
    }
}

/* ---- files ---- */

int cz_corrupt_file(const char *in, const char *out, const cz_corrupt_opts *o,
                    cz_corrupt_report *rep, cz_error *err)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const char *kname = cz_corrupt_kind_name(o->kind);
    if (!kname)
        return cz_error_set(err, CZ_EINVAL, "%s: unknown corruption kind %d: expected one of %s", in,
                            (int)o->kind, cz_corrupt_kind_list());
    if (o->severity < 1 || o->severity > CZ_CORRUPT_SEVERITIES)
        return cz_error_set(err, CZ_EINVAL, "%s: severity %d is outside 1..%d (expected an integer 1..%d)",
                            in, o->severity, CZ_CORRUPT_SEVERITIES, CZ_CORRUPT_SEVERITIES);
    if (!strcmp(in, out) || cz_prep_same_file(in, out))
        return cz_error_set(err, CZ_EINVAL, "%s: the output %s is the input file: expected another -o file", in, out);
    cz_data *ds = NULL;
    cz_corrupt *c = NULL;
    cz_prep_out *po = NULL;
    float *x = NULL;
    uint64_t *idx = NULL;
    int rc = cz_data_open(&ds, in, err);
    if (rc) return rc;
    const cz_data_info *info = cz_data_get_info(ds);
    size_t n = info->n, d = info->d, fr, fc, rows, cols;
    int shape = cz_prep_image_shape_read(in, &fr, &fc, err);
    if (shape < 0) {
        rc = shape;
        goto done;
    }
    const char *from;
    if (o->image_rows || o->image_cols) {
        if (shape == 0 && (fr != o->image_rows || fc != o->image_cols)) {
            rc = cz_error_set(err, CZ_EINVAL,
                              "%s: --image %zux%zu disagrees with the file's image shape %zux%zu "
                              "(attributes image_rows, image_cols): expected the same shape or no --image",
                              in, o->image_rows, o->image_cols, fr, fc);
            goto done;
        }
        rows = o->image_rows;
        cols = o->image_cols;
        from = "--image";
    } else if (shape == 1) {
        rc = cz_error_set(err, CZ_EINVAL,
                          "%s: no image shape: the file has no image_rows / image_cols attributes (chainz "
                          "prep idx writes them); expected an image set, or pass --image RxC",
                          in);
        goto done;
    } else {
        rows = fr;
        cols = fc;
        from = "the file's image_rows / image_cols attributes";
    }
    if (rows < 1 || cols < 1 || rows > MAX_SIDE || cols > MAX_SIDE || rows * cols != d) {
        rc = cz_error_set(err, CZ_EINVAL,
                          "%s: rows hold d = %zu features, but a %zux%zu image (from %s) has %zu pixels: "
                          "expected d = rows x cols",
                          in, d, rows, cols, from, rows * cols);
        goto done;
    }
    if ((rc = cz_corrupt_init(&c, o->kind, o->severity, o->seed, rows, cols, err))) {
        char m[sizeof err->msg];
        snprintf(m, sizeof m, "%s", err->msg);
        cz_error_set(err, rc, "%s: %s", in, m);
        goto done;
    }
    size_t block = n < READ_BLOCK_ROWS ? n : READ_BLOCK_ROWS;
    x = malloc(block * d * sizeof *x);
    idx = malloc(block * sizeof *idx);
    if (!x || !idx) {
        rc = cz_error_set(err, CZ_ENOMEM, "%s: out of memory for %zu rows of %zu features", in, block, d);
        goto done;
    }
    if ((rc = cz_prep_out_open(&po, out, n, d, info->task, info->classes, 0, err))) goto done;
    char note[512], source[1024];
    double p = cz_corrupt_param(o->kind, o->severity);
    int random = cz_corrupt_is_random(o->kind);
    snprintf(note, sizeof note, "%s severity %d: %s %g; %s%llu%s; clipped to [0, 1] (docs/PREP.md)", kname,
             o->severity, cz_corrupt_param_name(o->kind), p, random ? "seed " : "deterministic (seed ",
             (unsigned long long)o->seed, random ? "" : " not used)");
    snprintf(source, sizeof source, "chainz prep corrupt %s of %s (source: %s)", note, in, info->source);
    cz_prep_out_set_image(po, rows, cols);
    if ((rc = cz_prep_out_set_note(po, "corruption", note, err))) goto done;
    const int32_t *yc = cz_data_labels_class(ds);
    const float *yv = cz_data_labels_value(ds);
    double change = 0;
    for (size_t r0 = 0; r0 < n; r0 += block) {
        size_t nr = n - r0 < block ? n - r0 : block;
        for (size_t i = 0; i < nr; i++) idx[i] = r0 + i;
        if ((rc = cz_data_read_rows(ds, idx, nr, x, err))) goto done;
        for (size_t i = 0; i < nr; i++) {
            const float *xi = x + i * d; /* [d] the clean image */
            for (size_t j = 0; j < d; j++)
                if (!(xi[j] >= 0 && xi[j] <= 1)) {
                    rc = cz_error_set(err, CZ_EINVAL,
                                      "%s: row %zu, feature %zu (pixel %zu, %zu) is %g: expected image "
                                      "pixels in [0, 1] (an image set as chainz prep idx writes)",
                                      in, r0 + i, j, j / cols, j % cols, (double)xi[j]);
                    goto done;
                }
            float *yo = cz_prep_out_row(po); /* [d] the corrupted image */
            cz_corrupt_apply(c, yo, xi, r0 + i);
            for (size_t j = 0; j < d; j++) change += fabs((double)yo[j] - (double)xi[j]);
            if ((rc = cz_prep_out_push(po, yc ? yc[r0 + i] : 0, yv ? yv[r0 + i] : 0, err))) goto done;
        }
    }
    if ((rc = cz_prep_out_finish(po, source, NULL, err))) goto done;
    rc = cz_prep_out_commit(po, err);
    po = NULL;
    if (!rc && rep) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        rep->n = n;
        rep->d = d;
        rep->rows = rows;
        rep->cols = cols;
        rep->mean_abs_change = change / ((double)n * (double)d);
        rep->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    }
done:
    cz_prep_out_abort(po);
    free(x);
    free(idx);
    cz_corrupt_free(c);
    cz_data_close(ds);
    return rc;
}
