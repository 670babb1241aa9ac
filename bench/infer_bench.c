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
    double *lat = malloc(nlat * sizeof *lat);
    /* norms: 0 prediction only; 1 both norms; 2 layer norms only (the Jacobian stream); 3 the
     * input norm only (the reverse pass) */
    for (int norms = 0; norms <= 3; norms++) {
        czi_session *s = czi_session_new(m, BT, norms ? CZI_NORMS : CZI_PREDICT_ONLY, &err);
        if (!s) {
            fprintf(stderr, "infer_bench: %s\n", err.message);
            return 1;
        }
        czi_outputs out = {label, in->head == CZI_HEAD_REGRESS ? NULL : prob, value,
                           norms == 1 || norms == 3 ? inorm : NULL, norms == 1 || norms == 2 ? lnorm : NULL};
        if (!norms && labels_out) {
            czi_predict(s, x, BT, &out, &err);
            FILE *f = fopen(labels_out, "w");
            for (size_t b = 0; f && b < BT; b++) fprintf(f, "%d\n", label[b]);
            if (f) fclose(f);
        }
        /* single sample: each call timed alone, rows taken in turn */
        size_t n = 0;
        double t_end = now() + secs / 2;
        for (int w = 0; w < 50; w++) czi_predict(s, x, 1, &out, &err);
        while (n < nlat && now() < t_end) {
            const float *row = x + (n % BT) * d;
            double t0 = now();
            if (czi_predict(s, row, 1, &out, &err)) {
                fprintf(stderr, "infer_bench: %s\n", err.message);
                return 1;
            }
            lat[n++] = now() - t0;
        }
        qsort(lat, n, sizeof *lat, cmp_d);
        printf("chainz latency_us %d %.3f\n", norms, 1e6 * lat[n / 2]);
        /* batches of BT */
        size_t calls = 0;
        czi_predict(s, x, BT, &out, &err);
        double t0 = now();
        t_end = t0 + secs / 2;
        do {
            czi_predict(s, x, BT, &out, &err);
            calls++;
        } while (now() < t_end);
        printf("chainz throughput_rows_s %d %.1f\n", norms, (double)(calls * BT) / (now() - t0));
        czi_session_free(s);
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
