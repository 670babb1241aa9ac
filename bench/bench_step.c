/* bench_step: how fast is one training step compared with the machine's own sgemm?
 *
 * DESIGN.md section 1: a DREG step is GEMM-bound, about 6*B*d*sum_{l>=2} n_l n_{l-1} flops
 * in the three stream GEMMs, so its speed is judged as a fraction of the sgemm rate that
 * BLIS reaches on those very shapes on this machine. For each configuration this program
 * measures, interleaved within each repetition (so that machine noise hits all of them):
 *   A. one "sgemm round": the three stream GEMMs of every layer l >= 2, called on BLIS
 *      directly with the engine's exact shapes, transposes and strides:
 *        NN  T_l      = W_l S_{l-1}            [n_l x Bd]   = [n_l x n_{l-1}] [n_{l-1} x Bd]
 *        NT  dW_l    += V_l S_{l-1}^T          [n_l x n_{l-1}], inner dimension Bd
 *        TN  U_{l-1}  = W_l^T V_l + c S_{l-1}  [n_{l-1} x Bd], in place over S_{l-1}
 *   B. cz_engine_step with grad, lambda > 0 (DREG on, poly activation);
 *   C. cz_engine_step with lambda = 0 and the stream off (a plain MLP step), for reference.
 * Reported: the median of each over the repetitions, GFLOP/s from cz_engine_step_flops
 * (the DESIGN cost formula, GEMM terms only) and step/sgemm as a percentage.
 * A benchmark, never a test: it prints numbers and fails only on errors. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif

#include <blis.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chainz/engine.h"
#include "chainz/model.h"
#include "chainz/real.h"
#include "chainz/rng.h"

#define BENCH_LAMBDA 1e-3 /* any lambda > 0 runs the same code; its value does not change cost */
#define BENCH_SEED 20240601u

/* the reference is bli_sgemm: compare like with like (bench_step links the float32 engine) */
_Static_assert(sizeof(cz_real) == sizeof(float), "bench_step needs the float32 engine");

typedef struct {
    const char *name;
    size_t d;
    int n_hidden;
    size_t width[CZ_MAX_HIDDEN];
    int classes;
} bench_config;

static const bench_config CONFIGS[] = {
    {"yelp", 300, 2, {512, 512}, 5},
    {"fmnist", 784, 2, {256, 256}, 10},
    {"pima", 8, 2, {64, 64}, 2},
};
#define N_CONFIGS (sizeof CONFIGS / sizeof CONFIGS[0])

typedef struct {
    int threads;
    int reps;
    size_t batch;
    int json;
    int which; /* index into CONFIGS, or -1 for all */
    cz_stream_spec stream; /* the DREG step's stream (exact by default) */
    int compare;           /* also time gram and probe K = 8, 16, 32, interleaved */
} bench_opts;

/* the other modes --compare times in the same reps as the step above */
#define N_CMP 4
static const cz_stream_spec CMP_MODES[N_CMP] = {
    {CZ_STREAM_GRAM, 0}, {CZ_STREAM_PROBE, 8}, {CZ_STREAM_PROBE, 16}, {CZ_STREAM_PROBE, 32}};

/* Per-repetition seconds of everything that is timed. */
enum { K_NN, K_NT, K_TN, N_KINDS };
typedef struct {
    double *kind[N_KINDS]; /* each stream GEMM kind, summed over the layers l >= 2 */
    double *sgemm;         /* the whole round: sum of the three */
    double *step;          /* DREG step */
    double *mlp;           /* plain MLP step */
} bench_times;

static uint64_t *bench_keys; /* per-sample keys: the probe directions */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_step: error: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(EXIT_FAILURE);
}

static double now_s(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) die("clock_gettime failed: %s", strerror(errno));
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* 64-byte aligned (what BLIS likes); C11 aligned_alloc wants a size multiple of the alignment. */
static void *xalloc(size_t bytes, const char *what)
{
    size_t sz = (bytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, sz ? sz : 64);
    if (!p) die("out of memory allocating %s", what);
    return p;
}

static void fill_normal(cz_real *a, size_t n, double scale, cz_rng *r)
{
    for (size_t i = 0; i < n; i++) a[i] = (cz_real)(scale * cz_rng_normal(r));
}

/* Row-major sgemm on BLIS, the same call the engine's cz_gemm makes. */
static void sgemm_rm(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                     size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    bli_sgemm(ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
              (dim_t)m, (dim_t)n, (dim_t)k, &alpha, (float *)a, (inc_t)lda, 1, (float *)b,
              (inc_t)ldb, 1, &beta, c, (inc_t)ldc, 1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n values (sorts a scratch copy; the series keep their interleaved order). */
static double median(const double *v, int n, double *scratch)
{
    memcpy(scratch, v, (size_t)n * sizeof *v);
    qsort(scratch, (size_t)n, sizeof *scratch, cmp_double);
    return n % 2 ? scratch[n / 2] : 0.5 * (scratch[n / 2 - 1] + scratch[n / 2]);
}

static double minimum(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        if (v[i] < m) m = v[i];
    return m;
}

/* Buffers for the stand-alone sgemm round: two big n x Bd panels (S_{l-1} and T_l / V_l /
 * U_{l-1} in the engine), a weight matrix and a small dW accumulator, sized for the widest
 * layer pair. Data is random normal so that no denormal or zero shortcut flatters BLIS. */
typedef struct {
    float *big[2], *w, *dw;
} sgemm_bufs;

static void sgemm_round(const bench_config *c, size_t B, sgemm_bufs *s, double *t_kind)
{
    size_t Bd = B * c->d;
    for (int k = 0; k < N_KINDS; k++) t_kind[k] = 0;
    for (int l = 1; l < c->n_hidden; l++) {
        size_t n = c->width[l], n_in = c->width[l - 1];
        double t0 = now_s();
        /* T_l = W_l S_{l-1} */
        sgemm_rm(0, 0, n, Bd, n_in, 1, s->w, n_in, s->big[0], Bd, 0, s->big[1], Bd);
        double t1 = now_s();
        /* dW_l += V_l S_{l-1}^T (accumulates, beta = 1, as in the engine) */
        sgemm_rm(0, 1, n, n_in, Bd, 1, s->big[1], Bd, s->big[0], Bd, 1, s->dw, n_in);
        double t2 = now_s();
        /* U_{l-1} = W_l^T V_l + c S_{l-1}, in place over S_{l-1}, beta != 0 as in the engine.
         * Overwriting big[0] keeps values bounded: |U| ~ |W^T V| stays at the input's scale. */
        sgemm_rm(1, 0, n_in, Bd, n, 1, s->w, n_in, s->big[1], Bd, (float)(2 * BENCH_LAMBDA),
                 s->big[0], Bd);
        double t3 = now_s();
        t_kind[K_NN] += t1 - t0;
        t_kind[K_NT] += t2 - t1;
        t_kind[K_TN] += t3 - t2;
    }
}

static void step_or_die(cz_workspace *ws, const cz_real *params, const cz_real *x,
                        const int32_t *y, size_t B, const cz_step_opts *o, cz_real *grad)
{
    cz_step_sums sums;
    cz_error err = {0};
    if (cz_engine_step(ws, params, x, y, NULL, bench_keys, B, o, grad, &sums, &err) != 0)
        die("cz_engine_step failed: %s", err.msg);
    /* a NaN step would time a different (possibly slower or faster) code path */
    if (!isfinite(sums.task.loss) || !isfinite(sums.dreg))
        die("cz_engine_step produced a non-finite loss (%g) or DREG sum (%g)", sums.task.loss,
            sums.dreg);
}

static void run_config(const bench_config *c, const bench_opts *o)
{
    size_t B = o->batch, d = c->d, Bd = B * d;
    cz_error err = {0};
    cz_model_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.d = d;
    spec.n_hidden = c->n_hidden;
    for (int l = 0; l < c->n_hidden; l++) {
        spec.width[l] = c->width[l];
        spec.act[l] = CZ_ACT_POLY;
    }
    spec.head = CZ_HEAD_CLASSIFY;
    spec.classes = c->classes;
    spec.dropout = 0;
    cz_model m;
    if (cz_model_init(&m, &spec, &err) != 0) die("cz_model_init failed: %s", err.msg);

    cz_rng rng;
    cz_rng_seed(&rng, BENCH_SEED);
    cz_real *params = xalloc(m.n_params * sizeof *params, "parameters");
    cz_real *grad = xalloc(m.n_params * sizeof *grad, "gradient");
    cz_real *x = xalloc(Bd * sizeof *x, "inputs");
    int32_t *y = xalloc(B * sizeof *y, "labels");
    cz_model_params_init(&m, params, &rng);
    fill_normal(x, Bd, 1.0, &rng); /* standardized features: mean 0, variance 1 */
    for (size_t b = 0; b < B; b++) y[b] = (int32_t)cz_rng_below(&rng, (uint64_t)c->classes);

    cz_workspace *ws = cz_workspace_new_stream(&m, B, &o->stream, &err);
    if (!ws) die("cz_workspace_new failed: %s", err.msg);
    bench_keys = xalloc(B * sizeof *bench_keys, "keys");
    for (size_t b = 0; b < B; b++) bench_keys[b] = cz_rng_u64(&rng);
    double ws_mb = (double)cz_workspace_bytes(ws) / 1e6;

    size_t maxn = 0, maxnn = 0;
    for (int l = 1; l < c->n_hidden; l++) {
        if (c->width[l] > maxn) maxn = c->width[l];
        if (c->width[l - 1] > maxn) maxn = c->width[l - 1];
        if (c->width[l] * c->width[l - 1] > maxnn) maxnn = c->width[l] * c->width[l - 1];
    }
    sgemm_bufs sb = {{NULL, NULL}, NULL, NULL};
    int have_stream = c->n_hidden >= 2; /* with one hidden layer there is no stream GEMM */
    if (have_stream) {
        for (int i = 0; i < 2; i++) {
            sb.big[i] = xalloc(maxn * Bd * sizeof(float), "sgemm panel");
            fill_normal(sb.big[i], maxn * Bd, 1.0, &rng);
        }
        sb.w = xalloc(maxnn * sizeof(float), "sgemm weights");
        sb.dw = xalloc(maxnn * sizeof(float), "sgemm accumulator");
        fill_normal(sb.w, maxnn, 1.0 / sqrt((double)maxn), &rng);
        memset(sb.dw, 0, maxnn * sizeof(float));
    }

    double flops_step = cz_engine_step_flops(&m, B, 1);
    double flops_mlp = cz_engine_step_flops(&m, B, 0);
    double flops_sgemm = flops_step - flops_mlp; /* exactly the three stream GEMMs */

    cz_step_opts dreg = {.lambda = BENCH_LAMBDA, .train = 0, .stream = 0};
    cz_step_opts mlp = {.lambda = 0, .train = 0, .stream = 0};

    int R = o->reps;
    bench_times t;
    double *all = xalloc((size_t)(N_KINDS + 4) * (size_t)R * sizeof(double), "timings");
    for (int k = 0; k < N_KINDS; k++) t.kind[k] = all + (size_t)k * R;
    t.sgemm = all + (size_t)N_KINDS * R;
    t.step = t.sgemm + R;
    t.mlp = t.step + R;
    double *scratch = t.mlp + R;
    /* --compare: one workspace per other mode (gram only where n_1 <= d) */
    cz_workspace *cws[N_CMP] = {0};
    double *ct = xalloc((size_t)N_CMP * (size_t)R * sizeof(double), "mode timings");
    for (int k = 0; o->compare && k < N_CMP; k++) {
        cz_error e2 = {0};
        if (cz_stream_check(&m, &CMP_MODES[k], &e2) == 0) cws[k] = cz_workspace_new_stream(&m, B, &CMP_MODES[k], &e2);
        if (cws[k]) step_or_die(cws[k], params, x, y, B, &dreg, grad);
    }

    /* Warm-up, untimed: first touch of the workspace pages and BLIS's packing buffers. */
    double kind_tmp[N_KINDS];
    if (have_stream) sgemm_round(c, B, &sb, kind_tmp);
    step_or_die(ws, params, x, y, B, &dreg, grad);
    step_or_die(ws, params, x, y, B, &mlp, grad);

    for (int r = 0; r < R; r++) {
        double total = 0;
        if (have_stream) sgemm_round(c, B, &sb, kind_tmp);
        for (int k = 0; k < N_KINDS; k++) {
            t.kind[k][r] = have_stream ? kind_tmp[k] : 0;
            total += t.kind[k][r];
        }
        t.sgemm[r] = total;
        double t0 = now_s();
        step_or_die(ws, params, x, y, B, &dreg, grad);
        double t1 = now_s();
        step_or_die(ws, params, x, y, B, &mlp, grad);
        double t2 = now_s();
        t.step[r] = t1 - t0;
        t.mlp[r] = t2 - t1;
        for (int k = 0; k < N_CMP; k++) {
            if (!cws[k]) continue;
            double c0 = now_s();
            step_or_die(cws[k], params, x, y, B, &dreg, grad);
            ct[k * R + r] = now_s() - c0;
        }
    }

    /* per-rep step/sgemm: A and B of one rep share the machine's state at that moment, so
     * the median of paired ratios is less sensitive to slow drifts than ratio of medians */
    double *paired = xalloc((size_t)R * sizeof(double), "ratios");
    for (int r = 0; r < R; r++)
        paired[r] = have_stream && t.step[r] > 0
                        ? (flops_step / t.step[r]) / (flops_sgemm / t.sgemm[r])
                        : 0;
    double med_paired = median(paired, R, scratch);
    free(paired);

    double med_kind[N_KINDS];
    for (int k = 0; k < N_KINDS; k++) med_kind[k] = median(t.kind[k], R, scratch);
    double med_sgemm = median(t.sgemm, R, scratch);
    double med_step = median(t.step, R, scratch);
    double med_mlp = median(t.mlp, R, scratch);
    double sgemm_gf = have_stream && med_sgemm > 0 ? flops_sgemm / med_sgemm / 1e9 : 0;
    double step_gf = flops_step / med_step / 1e9;
    double ratio = sgemm_gf > 0 ? step_gf / sgemm_gf : 0;

    if (o->json) {
        printf("{\"config\":\"%s\",\"d\":%zu,\"widths\":[", c->name, d);
        for (int l = 0; l < c->n_hidden; l++) printf("%s%zu", l ? "," : "", c->width[l]);
        printf("],\"B\":%zu,\"threads\":%d,\"reps\":%d,\"statistic\":\"median\","
               "\"sgemm_gflops\":%.2f,\"step_gflops\":%.2f,\"ratio\":%.4f,\"step_ms\":%.3f,"
               "\"ratio_paired\":%.4f,\"mlp_step_ms\":%.3f,\"step_min_ms\":%.4f,\"mlp_min_ms\":%.4f,\"workspace_MB\":%.1f,"
               "\"blis_arch\":\"%s\",\"mode\":\"%s\",\"probes\":%d}\n",
               B, o->threads, R, sgemm_gf, step_gf, ratio, 1e3 * med_step, med_paired,
               1e3 * med_mlp, 1e3 * minimum(t.step, R), 1e3 * minimum(t.mlp, R), ws_mb, bli_arch_string(bli_arch_query_id()), cz_stream_mode_name(o->stream.mode),
               o->stream.mode == CZ_STREAM_PROBE ? o->stream.probes : 0);
        for (int k = 0; o->compare && k < N_CMP; k++)
            printf("{\"config\":\"%s\",\"compare\":\"%s\",\"probes\":%d,\"step_ms\":%.3f,\"vs_step\":%.4f}\n",
                   c->name, cz_stream_mode_name(CMP_MODES[k].mode), CMP_MODES[k].probes,
                   cws[k] ? 1e3 * median(ct + k * R, R, scratch) : -1.0,
                   cws[k] ? med_step / median(ct + k * R, R, scratch) : 0.0);
    } else {
        printf("config %s: d=%zu widths=", c->name, d);
        for (int l = 0; l < c->n_hidden; l++) printf("%s%zu", l ? "," : "", c->width[l]);
        printf(" B=%zu K=%d, poly, DREG stream %s (width %zu), workspace %.1f MB, exact step %.2f GFLOP "
               "(stream GEMMs %.2f)\n", B, c->classes, cz_stream_mode_name(o->stream.mode),
               cz_stream_width(&m, &o->stream), ws_mb, flops_step / 1e9, flops_sgemm / 1e9);
        if (have_stream) {
            static const char *kname[N_KINDS] = {"sgemm NN  T = W S", "sgemm NT  dW += V S^T",
                                                 "sgemm TN  U = W^T V + c S"};
            for (int k = 0; k < N_KINDS; k++)
                printf("  %-30s %9.1f ms %8.2f GFLOP/s\n", kname[k], 1e3 * med_kind[k],
                       flops_sgemm / 3 / med_kind[k] / 1e9);
            printf("  %-30s %9.1f ms %8.2f GFLOP/s  (min %.1f ms)\n",
                   "sgemm round (3 stream GEMMs)", 1e3 * med_sgemm, sgemm_gf,
                   1e3 * minimum(t.sgemm, R));
        } else {
            printf("  (one hidden layer: no stream GEMM, no sgemm reference)\n");
        }
        printf("  %-30s %9.3f ms %8.2f GFLOP/s  (min %.3f ms)\n", "DREG step (lambda > 0, grad)",
               1e3 * med_step, step_gf, 1e3 * minimum(t.step, R));
        printf("  %-30s %9.1f %%  (median of per-rep ratios %.1f %%)\n", "step / sgemm",
               100 * ratio, 100 * med_paired);
        printf("  %-30s %9.3f ms  (min %.3f ms)\n", "plain MLP step (lambda 0)", 1e3 * med_mlp,
               1e3 * minimum(t.mlp, R));
        for (int k = 0; k < N_CMP; k++) {
            if (!o->compare) break;
            char name[64];
            snprintf(name, sizeof name, "DREG step, %s%s%.0d", cz_stream_mode_name(CMP_MODES[k].mode),
                     CMP_MODES[k].probes ? " K=" : "", CMP_MODES[k].probes);
            if (!cws[k]) {
                printf("  %-30s n/a (n_1 > d)\n", name);
                continue;
            }
            double mk = median(ct + k * R, R, scratch);
            printf("  %-30s %9.1f ms  (%.2fx faster than this step, same reps)\n", name, 1e3 * mk, med_step / mk);
        }
    }
    fflush(stdout);

    free(all);
    free(sb.big[0]);
    free(sb.big[1]);
    free(sb.w);
    free(sb.dw);
    cz_workspace_free(ws);
    for (int k = 0; k < N_CMP; k++) cz_workspace_free(cws[k]);
    free(ct);
    free(params);
    free(grad);
    free(x);
    free(y);
}

/* BLIS 0.9.0 does not know newer CPUs (e.g. AMD family 0x1A) and then falls back to its
 * unoptimized generic kernels, several times slower: every number below is then about
 * that, not about the engine. Say so, with the override that works. */
static void warn_generic(void)
{
    if (bli_arch_query_id() != BLIS_ARCH_GENERIC) return;
    const char *hint = "a number from BLIS's arch_t list";
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    if (__builtin_cpu_supports("avx512f"))
        hint = "0 (skx, AVX-512)";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        hint = "3 (haswell, AVX2)";
#endif
    fprintf(stderr,
            "bench_step: note: BLIS selected its generic (unoptimized) kernels for this CPU; "
            "set BLIS_ARCH_TYPE=%s to use optimized ones (it takes a number, not a name)\n",
            hint);
}

static long parse_long(const char *opt, const char *s, long lo, long hi)
{
    if (!s) die("%s needs a value", opt);
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi)
        die("%s: bad value '%s' (expected %ld..%ld)", opt, s, lo, hi);
    return v;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_step [--config yelp|fmnist|all] [--threads N] [--reps N] [--batch B] "
            "[--mode exact|gram|probe] [--probes K] [--compare] [--json]\n"
            "  --compare also times the step in gram and probe K=8,16,32 mode in the same reps.\n"
            "  Times the DREG training step against BLIS sgemm on the step's stream GEMM shapes,\n"
            "  interleaved per repetition; reports medians. Defaults: all, 1 thread, 5 reps,\n"
            "  B=128.\n");
}

int main(int argc, char **argv)
{
    /* 5 reps + 1 warm-up of both configurations stay well under a minute on 2 cores */
    bench_opts o = {.threads = 1, .reps = 5, .batch = 128, .json = 0, .which = -1,
                    .stream = {CZ_STREAM_EXACT, CZ_STREAM_DEFAULT_PROBES}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--threads")) {
            o.threads = (int)parse_long(a, v, 1, 1024);
            i++;
        } else if (!strcmp(a, "--reps")) {
            o.reps = (int)parse_long(a, v, 1, 100000);
            i++;
        } else if (!strcmp(a, "--batch")) {
            o.batch = (size_t)parse_long(a, v, 1, 1L << 20);
            i++;
        } else if (!strcmp(a, "--config")) {
            if (!v) die("%s needs a value", a);
            o.which = -2;
            if (!strcmp(v, "all")) o.which = -1;
            for (size_t k = 0; k < N_CONFIGS; k++)
                if (!strcmp(v, CONFIGS[k].name)) o.which = (int)k;
            if (o.which == -2) die("unknown --config '%s' (yelp, fmnist, pima or all)", v);
            i++;
        } else if (!strcmp(a, "--mode")) {
            if (!v || cz_stream_mode_parse(v, &o.stream.mode) || o.stream.mode == CZ_STREAM_AUTO)
                die("--mode: expected exact, gram or probe");
            i++;
        } else if (!strcmp(a, "--probes")) {
            o.stream.probes = (int)parse_long(a, v, 1, 4096);
            i++;
        } else if (!strcmp(a, "--compare")) {
            o.compare = 1;
        } else if (!strcmp(a, "--json")) {
            o.json = 1;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            die("unknown option '%s'", a);
        }
    }

    /* the same kernel choice as chainz itself (BLIS's, except where BLIS 0.9.0 would fall
     * back to generic kernels; BLIS_ARCH_TYPE overrides) */
    cz_error err = {0};
    if (cz_engine_init(NULL, &err)) die("%s", err.msg);
    /* one BLIS thread by default: the trainer runs one MPI rank per core */
    cz_engine_set_threads(o.threads);
    warn_generic();
    if (!o.json)
        printf("bench_step: BLIS %s (%s kernels), %d thread(s), %s, %d reps after 1 warm-up; "
               "sgemm / DREG step / MLP step interleaved each rep, medians reported\n",
               bli_info_get_version_str(), bli_arch_string(bli_arch_query_id()), o.threads,
               CZ_REAL_NAME, o.reps);

    for (size_t k = 0; k < N_CONFIGS; k++)
        if (o.which < 0 || o.which == (int)k) run_config(&CONFIGS[k], &o);
    return 0;
}
