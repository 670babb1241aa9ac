/* libFuzzer target: word vectors in the GloVe text format. The first byte picks skip_bad
 * (0..3); the rest is the vector file. When it loads: every word found by a lookup has
 * finite values, the counts agree, and the embedding featurizer on the same bytes as text
 * gives finite features (also when float32 sums would overflow). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chainz/prep.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static const cz_vocab *vocab_seen;
static size_t found;

static void lookup(void *ctx, const char *tok, size_t len)
{
    (void)ctx;
    const float *v = cz_vocab_find(vocab_seen, tok, len);
    if (!v) return;
    found++;
    for (size_t j = 0; j < cz_vocab_get_info(vocab_seen)->dim; j++) CHECK(isfinite(v[j]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    cz_vocab *v;
    cz_error err;
    if (cz_vocab_load_mem(&v, "fuzz.vec", data + 1, size - 1, data[0] & 3, &err)) {
        CHECK(strstr(err.msg, "fuzz.vec"));
        return 0;
    }
    const cz_vocab_info *vi = cz_vocab_get_info(v);
    CHECK(vi->words >= 1 && vi->dim >= 1 && vi->bad_lines <= (size_t)(data[0] & 3));
    char *text = malloc(size);
    CHECK(text);
    memcpy(text, data + 1, size - 1);
    vocab_seen = v;
    found = 0;
    cz_text_tokenize(text, size - 1, lookup, NULL);
    memcpy(text, data + 1, size - 1);
    size_t dim = vi->dim;
    cz_featurizer *f;
    if (cz_featurizer_embed(&f, v, data[0] & 4, &err)) abort();
    float *x = malloc(dim * sizeof *x);
    CHECK(x);
    cz_featurizer_apply(f, x, text, size - 1);
    for (size_t j = 0; j < dim; j++) CHECK(isfinite(x[j]));
    const cz_text_counts *tc = cz_featurizer_counts(f);
    CHECK(tc->tokens - tc->oov_tokens == found);
    free(x);
    free(text);
    cz_featurizer_free(f);
    return 0;
}
