/* In-memory prep sets: freeing, the stratified split and the stratified fraction of its
 * train part. Pure (no files): the writes are in h5out.c. The streamed readers use the
 * same functions on the labels alone, so both give the same rows. */
#include "chainz/prep.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chainz/rng.h"

static const char *const split_names[CZ_SPLIT_COUNT] = {"train", "val", "test"};

const char *cz_split_name(int which)
{
    return which >= 0 && which < CZ_SPLIT_COUNT ? split_names[which] : "?";
}

void cz_prep_set_free(cz_prep_set *s)
{
    if (!s) return;
    free(s->x);
    free(s->y_class);
    free(s->y_value);
    if (s->class_names)
        for (int k = 0; k < s->classes; k++) free(s->class_names[k]);
    free(s->class_names);
    memset(s, 0, sizeof *s);
}

int cz_prep_split_parse(const char *spec, double frac[CZ_SPLIT_COUNT], cz_error *err)
{
    int seen[CZ_SPLIT_COUNT] = {0};
    for (int i = 0; i < CZ_SPLIT_COUNT; i++) frac[i] = 0;
    const char *p = spec;
    double sum = 0;
    for (;;) {
        const char *end = strchr(p, ','), *eq = strchr(p, '=');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (!eq || eq >= p + len)
            return cz_error_set(err, CZ_EINVAL,
                                "split '%s': part '%.*s' is not NAME=FRACTION (e.g. train=0.8,val=0.1,test=0.1)",
                                spec, (int)len, p);
        size_t nlen = (size_t)(eq - p);
        int which = -1;
        for (int i = 0; i < CZ_SPLIT_COUNT; i++)
            if (strlen(split_names[i]) == nlen && !strncmp(p, split_names[i], nlen)) which = i;
        if (which < 0)
            return cz_error_set(err, CZ_EINVAL, "split '%s': unknown part '%.*s', expected train, val or test",
                                spec, (int)nlen, p);
        if (seen[which]++)
            return cz_error_set(err, CZ_EINVAL, "split '%s': '%s' is given twice", spec, split_names[which]);
        char num[64];
        size_t vlen = len - nlen - 1;
        if (vlen == 0 || vlen >= sizeof num)
            return cz_error_set(err, CZ_EINVAL, "split '%s': '%s' needs a fraction in [0, 1]", spec,
                                split_names[which]);
        memcpy(num, eq + 1, vlen);
        num[vlen] = '\0';
        char *e;
        double v = strtod(num, &e);
        if (e == num || *e || !(v >= 0 && v <= 1))
            return cz_error_set(err, CZ_EINVAL, "split '%s': %s=%s is not a fraction in [0, 1]", spec,
                                split_names[which], num);
        frac[which] = v;
        sum += v;
        if (!end) break;
        p = end + 1;
    }
    if (fabs(sum - 1) > 1e-6)
        return cz_error_set(err, CZ_EINVAL, "split '%s': the fractions add up to %g, expected 1", spec, sum);
    return 0;
}

void cz_prep_split_free(cz_prep_split *sp)
{
    if (!sp) return;
    for (int i = 0; i < CZ_SPLIT_COUNT; i++) free(sp->rows[i]);
    memset(sp, 0, sizeof *sp);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Cut points of a stratum of nc rows: split j takes shuffled positions [cut[j], cut[j+1]). */
static void strata_cuts(size_t cut[CZ_SPLIT_COUNT + 1], size_t nc, const double frac[CZ_SPLIT_COUNT])
{
    int last = 0;
    for (int j = 0; j < CZ_SPLIT_COUNT; j++)
        if (frac[j] > 0) last = j;
    double cum = 0;
    cut[0] = 0;
    for (int j = 0; j < CZ_SPLIT_COUNT; j++) {
        cum += frac[j];
        size_t c = j >= last ? nc : (size_t)floor(cum * (double)nc + 0.5);
        if (c > nc) c = nc;
        if (c < cut[j]) c = cut[j];
        cut[j + 1] = c;
    }
}

int cz_prep_split_make(cz_prep_split *out, const cz_prep_set *s,
                       const double frac[CZ_SPLIT_COUNT], uint64_t seed, cz_error *err)
{
    memset(out, 0, sizeof *out);
    size_t K = s->task == CZ_HEAD_REGRESS ? 1 : (size_t)s->classes, n = s->n;
    size_t *start = calloc(K + 1, sizeof *start);
    uint64_t *members = malloc((n ? n : 1) * sizeof *members); /* row ids grouped by class */
    uint64_t *perm = malloc((n ? n : 1) * sizeof *perm);
    int rc = 0;
    if (!start || !members || !perm) {
        rc = cz_error_set(err, CZ_ENOMEM, "split: out of memory for %zu rows", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (K > 1 && (s->y_class[i] < 0 || (size_t)s->y_class[i] >= K)) {
            rc = cz_error_set(err, CZ_EINVAL, "split: row %zu has class %d, expected 0..%zu", i,
                              (int)s->y_class[i], K - 1);
            goto done;
        }
        start[(K > 1 ? (size_t)s->y_class[i] : 0) + 1]++;
    }
    for (size_t c = 0; c < K; c++) start[c + 1] += start[c];
    for (size_t i = 0; i < n; i++) {
        size_t c = K > 1 ? (size_t)s->y_class[i] : 0;
        members[start[c]++] = i;
    }
    for (size_t c = K; c > 0; c--) start[c] = start[c - 1]; /* the fill advanced each start to the next */
    start[0] = 0;
    for (size_t c = 0; c < K; c++) {
        size_t cut[CZ_SPLIT_COUNT + 1];
        strata_cuts(cut, start[c + 1] - start[c], frac);
        for (int j = 0; j < CZ_SPLIT_COUNT; j++) out->n[j] += cut[j + 1] - cut[j];
    }
    for (int j = 0; j < CZ_SPLIT_COUNT; j++)
        if (!(out->rows[j] = malloc((out->n[j] ? out->n[j] : 1) * sizeof *out->rows[j]))) {
            rc = cz_error_set(err, CZ_ENOMEM, "split: out of memory for %zu rows", n);
            goto done;
        }
    cz_rng rng;
    cz_rng_seed(&rng, seed);
    size_t fill[CZ_SPLIT_COUNT] = {0};
    for (size_t c = 0; c < K; c++) {
        size_t nc = start[c + 1] - start[c], cut[CZ_SPLIT_COUNT + 1];
        const uint64_t *m = members + start[c];
        cz_rng_permutation(&rng, perm, nc);
        strata_cuts(cut, nc, frac);
        for (int j = 0; j < CZ_SPLIT_COUNT; j++)
            for (size_t i = cut[j]; i < cut[j + 1]; i++) out->rows[j][fill[j]++] = m[perm[i]];
    }
    for (int j = 0; j < CZ_SPLIT_COUNT; j++) qsort(out->rows[j], out->n[j], sizeof(uint64_t), cmp_u64);
done:
    free(start);
    free(members);
    free(perm);
    if (rc) cz_prep_split_free(out);
    return rc;
}

int cz_prep_subsample_is_all(const cz_prep_subsample *sub)
{
    return !sub->per_class && !sub->count && sub->fraction >= 1;
}

void cz_prep_subsample_describe(char *buf, size_t len, const cz_prep_subsample *sub)
{
    if (!len) return;
    buf[0] = '\0';
    if (sub->per_class) {
        int w = snprintf(buf, len, "count per class ");
        for (int c = 0; c < sub->n_per_class && w > 0 && (size_t)w < len; c++)
            w += snprintf(buf + w, len - (size_t)w, "%s%zu", c ? "," : "", sub->per_class[c]);
    } else if (sub->count) {
        snprintf(buf, len, "count %zu", sub->count);
    } else {
        snprintf(buf, len, "fraction %g", sub->fraction);
    }
}

/* a[c] rows per class for a total T of m rows, counts mc[c]: largest remainder one row
 * at a time (see prep.h). Remainders are compared as integers t*mc[c] - a[c]*m. */
static void allocate_total(size_t *a, const size_t *mc, size_t K, size_t m, size_t T)
{
    for (size_t c = 0; c < K; c++) a[c] = 0;
    for (size_t t = 1; t <= T; t++) {
        size_t best = K;
        long double best_r = 0;
        for (size_t c = 0; c < K; c++) {
            if (a[c] >= mc[c]) continue;
            long double r = (long double)t * (long double)mc[c] - (long double)a[c] * (long double)m;
            if (best == K || r > best_r) {
                best = c;
                best_r = r;
            }
        }
        if (best == K) break; /* T > m: cannot happen after the checks */
        a[best]++;
    }
}

int cz_prep_split_subsample(cz_prep_split *sp, const cz_prep_set *s, const cz_prep_subsample *sub,
                            uint64_t seed, size_t *dropped, cz_error *err)
{
    if (dropped) *dropped = 0;
    if (!sub->per_class && !sub->count && !(sub->fraction > 0 && sub->fraction <= 1))
        return cz_error_set(err, CZ_EINVAL, "fraction %g: expected a number in (0, 1]", sub->fraction);
    size_t K = s->task == CZ_HEAD_REGRESS ? 1 : (size_t)s->classes, m = sp->n[CZ_SPLIT_TRAIN];
    if (sub->per_class && (s->task == CZ_HEAD_REGRESS || (size_t)sub->n_per_class != K))
        return cz_error_set(err, CZ_EINVAL, "count per class: %d counts given, the data have %s%zu classes",
                            sub->n_per_class, s->task == CZ_HEAD_REGRESS ? "no classes (regress), not " : "",
                            K);
    if (!sub->per_class && sub->count > m)
        return cz_error_set(err, CZ_EINVAL, "count %zu: the train split has only %zu rows", sub->count, m);
    uint64_t *rows = sp->rows[CZ_SPLIT_TRAIN];
    size_t *start = calloc(K + 1, sizeof *start), *alloc = calloc(K, sizeof *alloc);
    uint64_t *members = malloc((m ? m : 1) * sizeof *members); /* positions in rows, by class */
    uint64_t *perm = malloc((m ? m : 1) * sizeof *perm);
    unsigned char *keep = calloc(m ? m : 1, 1);
    int rc = 0;
    if (!start || !alloc || !members || !perm || !keep) {
        rc = cz_error_set(err, CZ_ENOMEM, "subsample: out of memory for %zu rows", m);
        goto done;
    }
    for (size_t i = 0; i < m; i++) {
        size_t c = 0;
        if (K > 1) {
            if (rows[i] >= s->n || s->y_class[rows[i]] < 0 || (size_t)s->y_class[rows[i]] >= K) {
                rc = cz_error_set(err, CZ_EINVAL, "subsample: train row %llu has no valid class",
                                  (unsigned long long)rows[i]);
                goto done;
            }
            c = (size_t)s->y_class[rows[i]];
        }
        start[c + 1]++;
    }
    if (sub->per_class) {
        for (size_t c = 0; c < K; c++) {
            if (sub->per_class[c] > start[c + 1]) {
                rc = cz_error_set(err, CZ_EINVAL, "count per class: class %zu: %zu rows asked, the train split "
                                  "has only %zu", c, sub->per_class[c], start[c + 1]);
                goto done;
            }
            alloc[c] = sub->per_class[c];
        }
    } else {
        size_t T = sub->count;
        if (!T) {
            T = (size_t)floor(sub->fraction * (double)m + 0.5);
            if (T < 1 && m) T = 1;
            if (T > m) T = m;
        }
        size_t *mc = start + 1; /* class counts, before the prefix sum below */
        allocate_total(alloc, mc, K, m, T);
    }
    for (size_t c = 0; c < K; c++) start[c + 1] += start[c];
    for (size_t i = 0; i < m; i++) {
        size_t c = K > 1 ? (size_t)s->y_class[rows[i]] : 0;
        members[start[c]++] = i;
    }
    for (size_t c = K; c > 0; c--) start[c] = start[c - 1];
    start[0] = 0;
    cz_rng rng;
    cz_rng_seed(&rng, cz_hash64(seed, CZ_PREP_FRACTION_KEY));
    for (size_t c = 0; c < K; c++) {
        size_t mc = start[c + 1] - start[c];
        if (!mc) continue;
        /* drawn whatever the size is, so that smaller subsamples keep subsets of larger ones */
        cz_rng_permutation(&rng, perm, mc);
        for (size_t i = 0; i < alloc[c]; i++) keep[members[start[c] + perm[i]]] = 1;
    }
    size_t w = 0;
    for (size_t i = 0; i < m; i++)
        if (keep[i]) rows[w++] = rows[i];
    if (dropped) *dropped = m - w;
    sp->n[CZ_SPLIT_TRAIN] = w;
done:
    free(start);
    free(alloc);
    free(members);
    free(perm);
    free(keep);
    return rc;
}

int cz_prep_split_fraction(cz_prep_split *sp, const cz_prep_set *s, double f, uint64_t seed,
                           size_t *dropped, cz_error *err)
{
    cz_prep_subsample sub = {.fraction = f};
    return cz_prep_split_subsample(sp, s, &sub, seed, dropped, err);
}
