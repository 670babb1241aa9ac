/* libchainz_infer's speed on a checkpoint (issue 16; docs/BENCHMARKS.md, "Inference
 * library"): single-sample latency (B = 1, one czi_predict per call) and batch throughput
 * (B = 256), without and with the norms, on one thread. The rows are the data file's, or
 * N(0, 3) when none is given. bench/infer_bench.sh runs it interleaved with
 * bench/torch_infer.py on the same weights.
 *
 *   infer_bench MODEL [--seconds S] [--labels OUT.txt] [--batch B]
 *
 * Prints one line per measurement: "chainz <latency_us|throughput_rows_s> <norms> value", norms
 * 0 (prediction only), 1 (input and layer norms), 2 (layer norms only), 3 (input norm only);
 * latency as the median of single calls. --labels writes the predicted classes of the
 * first 256 generated rows (the seed is fixed), to check PyTorch's forward against. */
#include <chainz/infer.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* the same rows as torch_infer.py: x[i] = 3 * sin(i * 0.7 + 0.3) (no RNG to match) */
static void rows(float *x, size_t n) { for (size_t i = 0; i < n; i++) x[i] = (float)(3 * sin((double)i * 0.7 + 0.3)); }

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL [--seconds S] [--labels OUT] [--batch B]\n", argv[0]);
        return 2;
    }
    double secs = 1.0;
    const char *labels_out = NULL;
    size_t BT = 256;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--seconds")) secs = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--labels")) labels_out = argv[i + 1];
        else if (!strcmp(argv[i], "--batch")) BT = (size_t)atol(argv[i + 1]);
    }
    czi_error err;
    czi_set_threads(1);
    czi_model *m = czi_model_load(argv[1], &err);
    if (!m) {
        fprintf(stderr, "infer_bench: %s\n", err.message);
        return 1;
    }
    const czi_info *in = czi_model_info(m);
    size_t d = in->d, H = (size_t)in->n_hidden, K = (size_t)in->classes;
    float *x = malloc(BT * d * sizeof *x), *prob = malloc(BT * K * sizeof *prob), *value = malloc(BT * sizeof *value);
    int32_t *label = malloc(BT * sizeof *label);
    double *inorm = malloc(BT * sizeof *inorm), *lnorm = malloc(BT * H * sizeof *lnorm);
    rows(x, BT * d);
    size_t nlat = 200000;
    double *lat = malloc(4 * nlat * sizeof *lat);
    /* four sessions, measured call by call in turn, so that the machine's load falls on
     * all of them alike: 0 prediction only; 1 both norms; 2 layer norms only (the Jacobian
     * stream); 3 the input norm only (the reverse pass) */
    enum { NV = 4 };
    czi_session *s[NV];
    czi_outputs out[NV];
    for (int v = 0; v < NV; v++) {
        s[v] = czi_session_new(m, BT, v ? CZI_NORMS : CZI_PREDICT_ONLY, &err);
        if (!s[v]) {
            fprintf(stderr, "infer_bench: %s\n", err.message);
            return 1;
        }
        out[v] = (czi_outputs){label, in->head == CZI_HEAD_REGRESS ? NULL : prob, value,
                               v == 1 || v == 3 ? inorm : NULL, v == 1 || v == 2 ? lnorm : NULL};
    }
    if (labels_out) {
        if (czi_predict(s[0], x, BT, &out[0], &err)) {
            fprintf(stderr, "infer_bench: %s\n", err.message);
            return 1;
        }
        FILE *f = fopen(labels_out, "w");
        for (size_t b = 0; f && b < BT; b++) fprintf(f, "%d\n", label[b]);
        if (f) fclose(f);
    }
    /* single sample: each call timed alone, rows taken in turn */
    size_t n = 0;
    for (int w = 0; w < 50; w++)
        for (int v = 0; v < NV; v++) czi_predict(s[v], x, 1, &out[v], &err);
    double t_end = now() + secs / 2;
    while (n < nlat && now() < t_end) {
        const float *row = x + (n % BT) * d;
        for (int v = 0; v < NV; v++) {
            double t0 = now();
            if (czi_predict(s[v], row, 1, &out[v], &err)) {
                fprintf(stderr, "infer_bench: %s\n", err.message);
                return 1;
            }
            lat[v * nlat + n] = now() - t0;
        }
        n++;
    }
    for (int v = 0; v < NV; v++) {
        qsort(lat + v * nlat, n, sizeof *lat, cmp_d);
        printf("chainz latency_us %d %.3f\n", v, 1e6 * lat[v * nlat + n / 2]);
    }
    /* batches of BT, in turn */
    double busy[NV] = {0};
    size_t calls = 0;
    for (int v = 0; v < NV; v++) czi_predict(s[v], x, BT, &out[v], &err);
    t_end = now() + secs / 2;
    do {
        for (int v = 0; v < NV; v++) {
            double t0 = now();
            czi_predict(s[v], x, BT, &out[v], &err);
            busy[v] += now() - t0;
        }
        calls++;
    } while (now() < t_end);
    for (int v = 0; v < NV; v++) {
        printf("chainz throughput_rows_s %d %.1f\n", v, (double)(calls * BT) / busy[v]);
        czi_session_free(s[v]);
    }
    free(lat);
    free(x);
    free(prob);
    free(value);
    free(label);
    free(inorm);
    free(lnorm);
    czi_model_free(m);
    return 0;
}
