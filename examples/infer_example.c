/* libchainz_infer in a program: load a trained model, predict rows read as CSV (one row
 * of d raw features per line, from a file or stdin), print each row's class, its
 * probability or value, and the label-free norms.
 *
 *   cc infer_example.c $(pkg-config --cflags --libs chainz-infer) -o infer_example
 *   ./infer_example run/ rows.csv
 */
#include <chainz/infer.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL(.h5 or run directory) [ROWS.csv]\n", argv[0]);
        return 2;
    }
    czi_error err;
    czi_model *m = czi_model_load(argv[1], &err);
    if (!m) {
        fprintf(stderr, "infer_example: %s\n", err.message);
        return 1;
    }
    const czi_info *info = czi_model_info(m);
    size_t d = info->d, H = (size_t)info->n_hidden, K = (size_t)info->classes, B = 64;
    czi_session *s = czi_session_new(m, B, CZI_NORMS, &err); /* one per thread */
    float *x = malloc(B * d * sizeof *x), *prob = malloc(B * K * sizeof *prob), value[64];
    int32_t label[64];
    double input_norm[64], *layer_norm = malloc(B * H * sizeof *layer_norm);
    czi_outputs out = {label, info->head == CZI_HEAD_REGRESS ? NULL : prob, value, input_norm, layer_norm};
    FILE *f = NULL;
    int rc = 1, eof = 0;
    if (!s || !x || !prob || !layer_norm)
        fprintf(stderr, "infer_example: %s\n", s ? "out of memory" : err.message);
    else if (!(f = argc > 2 ? fopen(argv[2], "r") : stdin))
        fprintf(stderr, "infer_example: cannot open %s\n", argv[2]);
    else
        rc = 0;
    char line[1 << 16];
    size_t n = 0, row = 0;
    while (!rc && !eof) {
        eof = !fgets(line, sizeof line, f);
        if (!eof) { /* one row of exactly d comma-separated numbers */
            char *p = line, *end = line;
            size_t j = 0;
            for (; j < d; j++, p = end + (*end == ',')) {
                x[n * d + j] = strtof(p, &end);
                if (end == p) break;
            }
            end += strspn(end, " \t\r\n");
            if (j < d || *end || (!strchr(line, '\n') && !feof(f))) { /* too few, too many, a cut line */
                fprintf(stderr, "infer_example: line %zu: expected %zu numbers\n", row + n + 1, d);
                rc = 1;
                break;
            }
            n++;
        }
        if (n == B || (eof && n)) { /* a full batch, or the last one */
            rc = czi_predict(s, x, n, &out, &err);
            if (rc) /* its row numbers count from the batch's first row */
                fprintf(stderr, "infer_example: lines %zu..%zu: %s\n", row + 1, row + n, err.message);
            for (size_t b = 0; !rc && b < n; b++) {
                printf("%zu class %d %s %.6g input_norm %.6g layer_norm", row + b, label[b],
                       info->head == CZI_HEAD_CLASSIFY ? "p" : "value", value[b], input_norm[b]);
                for (size_t l = 0; l < H; l++) printf(" %.6g", layer_norm[b * H + l]);
                printf("\n");
            }
            row += n;
            n = 0;
        }
    }
    if (f && f != stdin) fclose(f);
    free(x);
    free(prob);
    free(layer_norm);
    czi_session_free(s);
    czi_model_free(m);
    return rc ? 1 : 0;
}
