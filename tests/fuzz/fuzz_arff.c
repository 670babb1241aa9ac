/* libFuzzer target: the ARFF reader on arbitrary bytes (through its buffer entry point).
 * The first byte picks the options (drop_missing, task, class by name "class"). When it
 * reads: labels are in range, features finite, and a stratified split covers every row. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    cz_arff_opts o;
    cz_arff_opts_default(&o);
    o.drop_missing = data[0] & 1;
    o.task = (data[0] & 2) ? (int)CZ_HEAD_ORDINAL : -1;
    if (data[0] & 4) o.class_name = "class";
    cz_prep_set s;
    cz_error err;
    if (cz_prep_arff_read_mem(&s, "fuzz.arff", data + 1, size - 1, &o, &err)) {
        CHECK(strstr(err.msg, "fuzz.arff"));
        CHECK(!s.x && !s.y_class && !s.y_value);
        return 0;
    }
    CHECK(s.n >= 1 && s.d >= 1);
    for (size_t i = 0; i < s.n * s.d; i++) CHECK(isfinite(s.x[i]));
    if (s.task != CZ_HEAD_REGRESS)
        for (size_t i = 0; i < s.n; i++) CHECK(s.y_class[i] >= 0 && s.y_class[i] < s.classes);
    const double frac[CZ_SPLIT_COUNT] = {0.6, 0.2, 0.2};
    cz_prep_split sp;
    if (cz_prep_split_make(&sp, &s, frac, 1, &err) == 0) {
        CHECK(sp.n[0] + sp.n[1] + sp.n[2] == s.n);
        cz_prep_split_fraction(&sp, &s, 0.5, 1, NULL, &err);
        cz_prep_split_free(&sp);
    }
    cz_prep_set_free(&s);
    return 0;
}
