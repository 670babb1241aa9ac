/* libFuzzer target: numeric CSV (a header naming the columns, then numbers), through the
 * record reader and the numeric row rules. The first byte picks the label column (by
 * position, by the name "y", or the last) and the task; the rest is the file. Checks: a
 * good row's features and label are finite float32 values and its class is in range. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned opt = data[0];
    cz_rowfmt fmt = {.kind = CZ_PREP_CSV_NUMERIC, .path = "fuzz.csv"};
    fmt.label_col1 = opt & 3;
    const char *label_name = (opt & 4) ? "y" : NULL;
    fmt.task = (opt & 8) ? CZ_HEAD_REGRESS : CZ_HEAD_CLASSIFY;
    fmt.base = (opt & 16) ? -1 : 0;
    fmt.classes = (opt & 32) ? 3 : 0;
    if (label_name) fmt.label_col1 = 0;
    cz_csv *c;
    cz_error err;
    if (cz_csv_open_mem(&c, "fuzz.csv", data + 1, size - 1, &err)) return 0;
    int rc = cz_csv_next(c, &err);
    float *x = NULL;
    if (rc == 1) {
        size_t nf;
        const cz_csv_field *fl = cz_csv_fields(c, &nf);
        char name[128];
        rc = cz_row_header(&fmt, fl, nf, cz_csv_line(c), label_name, name, sizeof name, &err);
        if (rc == 0) {
            CHECK(fmt.nfields == nf && nf >= 2 && fmt.label_col < nf);
            x = malloc((nf - 1) * sizeof *x);
            CHECK(x);
        }
    }
    for (int records = 0; x && records < 100000; records++) {
        rc = cz_csv_next(c, &err);
        if (rc == 0) break;
        if (rc < 0) {
            if (cz_csv_broken(c)) break;
            continue;
        }
        size_t nf;
        const cz_csv_field *fl = cz_csv_fields(c, &nf);
        int32_t yc = -1;
        float yv = NAN;
        if (cz_row_parse(&fmt, fl, nf, cz_csv_line(c), &yc, &yv, x, &err)) {
            CHECK(strstr(err.msg, "fuzz.csv:"));
            continue;
        }
        CHECK(nf == fmt.nfields);
        for (size_t j = 0; j + 1 < nf; j++) CHECK(isfinite(x[j]) && fabsf(x[j]) <= FLT_MAX);
        if (fmt.task == CZ_HEAD_REGRESS) CHECK(isfinite(yv));
        else CHECK(yc >= 0 && yc < (fmt.classes ? fmt.classes : CZ_PREP_MAX_CLASSES));
    }
    free(x);
    cz_rowfmt_free(&fmt);
    cz_csv_close(c);
    return 0;
}
