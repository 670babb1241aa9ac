/* libFuzzer target: the CSV record reader, the text row rules (label, field count, join
 * with backslash-n) and the hashing featurizer, on arbitrary bytes. The first byte picks
 * the options (label column, base, classes, task, dimension); the rest is the file.
 * Checks what must hold for every input: fields are NUL-terminated at their length, a
 * record has at least one field, a good row's class is in range, features are finite. */
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
    cz_rowfmt fmt = {.kind = CZ_PREP_CSV_TEXT, .path = "fuzz.csv"};
    fmt.label_col1 = opt & 3;               /* 0 (default 1) .. 3 */
    fmt.base = (opt >> 2) & 1;
    fmt.classes = (opt & 8) ? 5 : 0;
    fmt.task = (opt & 16) ? CZ_HEAD_ORDINAL : CZ_HEAD_CLASSIFY;
    size_t dim = (opt & 32) ? 1 : 17;
    int l2 = (opt >> 6) & 1;
    cz_csv *c;
    cz_error err;
    if (cz_csv_open_mem(&c, "fuzz.csv", data + 1, size - 1, &err)) return 0;
    cz_featurizer *f;
    if (cz_featurizer_hash(&f, dim, l2, &err)) abort();
    float *x = malloc(dim * sizeof *x);
    char *text = NULL;
    size_t cap = 0;
    CHECK(x);
    for (int records = 0; records < 100000; records++) {
        int rc = cz_csv_next(c, &err);
        if (rc == 0) break;
        if (rc < 0) {
            CHECK(rc == CZ_EINVAL);
            CHECK(strstr(err.msg, "fuzz.csv:"));
            if (cz_csv_broken(c)) break;
            continue;
        }
        size_t nf;
        const cz_csv_field *fl = cz_csv_fields(c, &nf);
        CHECK(nf >= 1);
        for (size_t i = 0; i < nf; i++) CHECK(fl[i].s[fl[i].len] == '\0');
        int32_t yc = -1;
        float yv = 0;
        if (cz_row_parse(&fmt, fl, nf, cz_csv_line(c), &yc, &yv, NULL, &err)) continue;
        CHECK(yc >= 0 && (!fmt.classes || yc < fmt.classes));
        size_t len;
        if (cz_row_text(&fmt, fl, nf, &text, &cap, &len)) abort();
        CHECK(text[len] == '\0');
        cz_featurizer_apply(f, x, text, len);
        for (size_t j = 0; j < dim; j++) CHECK(isfinite(x[j]));
    }
    free(x);
    free(text);
    cz_featurizer_free(f);
    cz_csv_close(c);
    return 0;
}
