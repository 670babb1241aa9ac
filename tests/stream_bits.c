/* stream_bits: every output byte of the engine's steps over the stream's variants at width
 * k = 8 (exact and Gram with d or n_1 = 8, probe with K = 8; one, two and three hidden
 * layers; dropout; the stream input gradient; a forward-only stream and its Jacobians),
 * written to OUT. Built twice (CMakeLists.txt): against the engine as shipped (the k = 8
 * vector rows, the AVX2 copies where the CPU has them) and against chainz_engine_plain
 * (the general loops, baseline x86-64 only); test_engine_row8.sh compares the files byte
 * for byte. A few other widths run too, as a control that the two builds agree elsewhere.
 *   stream_bits OUT [THREADS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chainz/engine.h"
#include "chainz/model.h"
#include "chainz/rng.h"

static FILE *out;

static void put(const void *p, size_t n)
{
    if (p && fwrite(p, 1, n, out) != n) {
        fprintf(stderr, "stream_bits: write failed\n");
        exit(2);
    }
}

static void die(const char *what, const cz_error *err)
{
    fprintf(stderr, "stream_bits: %s: %s\n", what, err->msg);
    exit(2);
}

typedef struct {
    size_t d, B;
    int H;
    size_t w[3];
    cz_stream_mode mode;
    int K, input_grad;
    double dropout, lambda;
} variant;

/* two training steps, each followed by its outputs, then a forward-only stream */
static void run(const variant *v, cz_act act)
{
    cz_error err = {0};
    cz_model_spec s = {.d = v->d, .n_hidden = v->H, .head = CZ_HEAD_CLASSIFY, .classes = 3,
                       .dropout = v->dropout};
    for (int l = 0; l < v->H; l++) {
        s.width[l] = v->w[l];
        s.act[l] = act;
    }
    cz_model m;
    if (cz_model_init(&m, &s, &err)) die("model", &err);
    cz_rng rng;
    cz_rng_seed(&rng, 11 + v->d + (uint64_t)v->H);
    size_t B = v->B, d = v->d, wmax = 0;
    for (int l = 0; l < v->H; l++) wmax = v->w[l] > wmax ? v->w[l] : wmax;
    float *p = malloc(m.n_params * sizeof *p), *g = malloc(m.n_params * sizeof *g);
    float *x = malloc(B * d * sizeof *x), *gin = malloc(B * d * sizeof *gin), *J = malloc(wmax * d * sizeof *J);
    int32_t *y = malloc(B * sizeof *y);
    uint64_t *keys = malloc(B * sizeof *keys);
    if (!p || !g || !x || !gin || !J || !y || !keys) {
        fprintf(stderr, "stream_bits: out of memory\n");
        exit(2);
    }
    cz_model_params_init(&m, p, &rng);
    /* poly coefficients away from their initial values too */
    for (size_t i = 0; i < m.n_params; i++) p[i] += (float)cz_rng_normal(&rng) * 0.05f;
    for (size_t i = 0; i < B * d; i++) x[i] = (float)cz_rng_normal(&rng);
    for (size_t b = 0; b < B; b++) {
        y[b] = (int32_t)(b % 3);
        keys[b] = cz_rng_u64(&rng);
    }
    cz_stream_spec ss = {.mode = v->mode, .probes = v->K};
    cz_workspace *ws = cz_workspace_new_stream(&m, B, &ss, &err);
    if (!ws) die("workspace", &err);
    cz_step_opts o = {.lambda = v->lambda, .train = v->dropout > 0, .stream = 1,
                      .stream_input_grad = v->input_grad};
    cz_step_sums sums;
    for (int rep = 0; rep < 2; rep++) {
        if (cz_engine_step(ws, p, x, y, NULL, keys, B, &o, g, &sums, &err)) die("step", &err);
        put(g, m.n_params * sizeof *g);
        put(&sums, sizeof sums);
        for (int l = 1; l <= v->H; l++) put(cz_engine_jacobian_sqnorm(ws, l), B * sizeof(double));
        if (v->input_grad) {
            if (cz_engine_input_grad(ws, p, gin, &err)) die("input gradient", &err);
            put(gin, B * d * sizeof *gin);
        }
        for (size_t i = 0; i < m.n_params; i++) p[i] -= 0.01f * g[i];
    }
    cz_step_opts fwd = {.lambda = 0, .stream = 1};
    if (cz_engine_step(ws, p, x, y, NULL, keys, B, &fwd, NULL, &sums, &err)) die("forward step", &err);
    put(&sums, sizeof sums);
    for (int l = 1; l <= v->H && v->mode != CZ_STREAM_PROBE; l++)
        for (size_t b = 0; b < B; b++) {
            if (cz_engine_jacobian(ws, p, l, b, J, &err)) die("jacobian", &err);
            put(J, v->w[l - 1] * d * sizeof *J);
        }
    cz_workspace_free(ws);
    free(p), free(g), free(x), free(gin), free(J), free(y), free(keys);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: stream_bits OUT [THREADS]\n");
        return 2;
    }
    out = fopen(argv[1], "wb");
    if (!out) {
        perror(argv[1]);
        return 2;
    }
    if (argc > 2) cz_engine_set_threads(atoi(argv[2]));
    static const variant vs[] = {
        {8, 64, 2, {64, 64}, CZ_STREAM_EXACT, 0, 0, 0, 1e-3},     /* the Pima-sized step */
        {8, 64, 2, {64, 64}, CZ_STREAM_EXACT, 0, 1, 0, 1e-3},     /* top layer not fused */
        {8, 37, 2, {64, 64}, CZ_STREAM_EXACT, 0, 0, 0.2, 0.5},    /* dropout, odd batch */
        {8, 20, 1, {64}, CZ_STREAM_EXACT, 0, 1, 0, 1e-2},         /* shared seed on top */
        {8, 50, 3, {32, 48, 16}, CZ_STREAM_EXACT, 0, 0, 0.1, 0.3}, /* a middle layer */
        {8, 50, 3, {32, 48, 16}, CZ_STREAM_EXACT, 0, 1, 0, 0.3},
        {8, 134, 2, {256, 256}, CZ_STREAM_EXACT, 0, 0, 0.2, 0.2}, /* wide enough to thread */
        {13, 40, 3, {32, 48, 16}, CZ_STREAM_PROBE, 8, 0, 0, 0.3}, /* T_0 per sample */
        {13, 40, 1, {64}, CZ_STREAM_PROBE, 8, 0, 0, 0.3},
        {11, 33, 2, {8, 24}, CZ_STREAM_GRAM, 0, 0, 0, 0.3},       /* F = R^T, 8 x 8 */
        {11, 33, 1, {8}, CZ_STREAM_GRAM, 0, 0, 0, 0.3},
        {13, 40, 2, {64, 64}, CZ_STREAM_PROBE, 5, 0, 0, 0.3},     /* controls: k != 8 */
        {5, 50, 3, {32, 48, 16}, CZ_STREAM_EXACT, 0, 1, 0, 0.3},
        {8, 64, 2, {64, 64}, CZ_STREAM_EXACT, 0, 0, 0, 0},         /* stream without DREG */
    };
    for (int a = 0; a < 2; a++)
        for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) run(&vs[i], a ? CZ_ACT_TANH : CZ_ACT_POLY);
    if (fclose(out)) {
        perror(argv[1]);
        return 2;
    }
    return 0;
}
