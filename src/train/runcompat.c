/* Whether a checkpoint fits this run: the data identity and the configuration compared
 * field by field (include/chainz/runstate.h). One process, no MPI. */
#include "chainz/runstate.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runstate_internal.h"

/* ---- data identity ---- */

int cz_run_data_identity(cz_data *ds, const char *path, cz_data_identity *id, cz_error *err)
{
    memset(id, 0, sizeof *id);
    const cz_data_info *di = cz_data_get_info(ds);
    struct stat st;
    if (stat(path, &st) != 0) return cz_error_set(err, CZ_EIO, "%s: cannot stat: %s", path, strerror(errno));
    id->bytes = (uint64_t)st.st_size;
    id->n = di->n;
    id->d = di->d;
    id->classes = di->classes;
    const int32_t *yc = cz_data_labels_class(ds);
    const float *yv = cz_data_labels_value(ds);
    id->labels_checksum = yc ? cz_checksum(yc, di->n * sizeof *yc) : yv ? cz_checksum(yv, di->n * sizeof *yv) : 0;
    enum { SAMPLE = 64 };
    size_t k = di->n < SAMPLE ? di->n : SAMPLE;
    uint64_t rows[SAMPLE];
    for (size_t i = 0; i < k; i++) rows[i] = k > 1 ? i * (di->n - 1) / (k - 1) : 0;
    float *x = malloc((k ? k : 1) * di->d * sizeof(float));
    if (!x) return cz_error_set(err, CZ_ENOMEM, "out of memory");
    int rc = k ? cz_data_read_rows(ds, rows, k, x, err) : 0;
    if (!rc) id->rows_checksum = cz_checksum(x, k * di->d * sizeof(float));
    free(x);
    return rc;
}

/* ---- configuration, field by field ---- */

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

/* a JSON string at p (after the quote) into out; @return the character after the closing quote */
static const char *parse_str(const char *p, char *out, size_t len)
{
    size_t n = 0;
    while (*p && *p != '"') {
        char c = *p++;
        if (c == '\\') {
            c = *p++;
            if (c == 'n') c = '\n';
            else if (c == 't') c = '\t';
            else if (c == 'u') { /* \u00XX: the control characters cz_config_json drops anyway */
                unsigned v = 0;
                for (int i = 0; i < 4 && *p; i++, p++) v = v * 16 + (unsigned)(*p <= '9' ? *p - '0' : (*p | 32) - 'a' + 10);
                c = (char)v;
            } else if (!c) return NULL;
        }
        if (n + 1 < len) out[n++] = c;
    }
    out[n] = 0;
    return *p == '"' ? p + 1 : NULL;
}

int cz_run_parse_flat(const char *json, flat_json *o)
{
    o->n = 0;
    const char *p = skip_ws(json ? json : "");
    if (*p++ != '{') return -1;
    p = skip_ws(p);
    if (*p == '}') return 0;
    for (;;) {
        if (*p++ != '"' || o->n == 64) return -1;
        int k = o->n;
        if (!(p = parse_str(p, o->key[k], sizeof o->key[k]))) return -1;
        p = skip_ws(p);
        if (*p++ != ':') return -1;
        p = skip_ws(p);
        if (*p == '"') {
            if (!(p = parse_str(p + 1, o->val[k], sizeof o->val[k]))) return -1;
            o->is_str[k] = 1;
        } else {
            size_t n = 0;
            while (*p && *p != ',' && *p != '}' && *p != ' ' && n + 1 < sizeof o->val[k]) o->val[k][n++] = *p++;
            o->val[k][n] = 0;
            if (!n) return -1;
            o->is_str[k] = 0;
        }
        o->n++;
        p = skip_ws(p);
        if (*p == '}') return 0;
        if (*p++ != ',') return -1;
        p = skip_ws(p);
    }
}

const char *cz_run_field(const flat_json *o, const char *key, int *is_str)
{
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->key[i], key)) {
            if (is_str) *is_str = o->is_str[i];
            return o->val[i];
        }
    return NULL;
}

/* Equal as values: strings by text, numbers by value (integers exactly, reals as doubles). */
static int same_value(const char *a, int astr, const char *b, int bstr)
{
    if (astr || bstr) return astr == bstr && !strcmp(a, b);
    if (!strcmp(a, b)) return 1;
    int ai = !strpbrk(a, ".eEnN"), bi = !strpbrk(b, ".eEnN");
    if (ai && bi) return strtoull(a, NULL, 10) == strtoull(b, NULL, 10) && (a[0] == '-') == (b[0] == '-');
    char *ea, *eb;
    double x = strtod(a, &ea), y = strtod(b, &eb);
    return !*ea && !*eb && (x == y || (isnan(x) && isnan(y)));
}

int cz_run_check_compatible(const cz_run_info *run, const cz_checkpoint *c, const char *path, FILE *log,
                            cz_error *err)
{
    const cz_model_spec *a = run->spec, *b = &c->model.spec;
    if (a->d != b->d || a->classes != b->classes || a->head != b->head)
        return cz_error_set(err, CZ_EINVAL,
                            "%s: the checkpoint's model has d = %zu, %d classes, head %s; this run has "
                            "d = %zu, %d classes, head %s", path, b->d, b->classes,
                            cz_head_name(b->head), a->d, a->classes, cz_head_name(a->head));
    flat_json *mine = malloc(sizeof *mine), *theirs = malloc(sizeof *theirs);
    int rc = 0;
    if (!mine || !theirs) rc = cz_error_set(err, CZ_ENOMEM, "out of memory");
    else if (cz_run_parse_flat(run->config_json, mine))
        rc = cz_error_set(err, CZ_EINVAL, "this run's configuration is not a flat JSON object");
    else if (cz_run_parse_flat(c->config_json, theirs))
        rc = cz_error_set(err, CZ_EINVAL, "%s: the checkpoint's config attribute is not a flat JSON object", path);
    if (rc) goto out;
    int same = a->n_hidden == b->n_hidden;
    for (int l = 0; same && l < a->n_hidden; l++) same = a->width[l] == b->width[l];
    if (!same) {
        const char *ck = cz_run_field(theirs, "layers", NULL), *mk = cz_run_field(mine, "layers", NULL);
        rc = cz_error_set(err, CZ_EINVAL, "%s: the checkpoint has --layers %s, this run asks for --layers %s",
                          path, ck ? ck : "?", mk ? mk : "?");
        goto out;
    }
    for (int l = 0; l < a->n_hidden; l++)
        if (a->act[l] != b->act[l]) {
            rc = cz_error_set(err, CZ_EINVAL, "%s: layer %d of the checkpoint is %s, this run asks for %s", path,
                              l + 1, cz_act_name(b->act[l]), cz_act_name(a->act[l]));
            goto out;
        }
    if (c->optim != run->optim) {
        rc = cz_error_set(err, CZ_EINVAL, "%s: the checkpoint was trained with --optim %s, this run asks for %s",
                          path, cz_optim_name(c->optim), cz_optim_name(run->optim));
        goto out;
    }
    /* the data order and the sample set must not change under a resumed run */
    static const char *fixed_keys[] = {"batch", "seed", "holdout", "holdout_split", "standardize", "dropout"};
    for (size_t k = 0; k < sizeof fixed_keys / sizeof *fixed_keys; k++) {
        int ts = 0, ms = 0;
        const char *tv = cz_run_field(theirs, fixed_keys[k], &ts), *mv = cz_run_field(mine, fixed_keys[k], &ms);
        if (!tv || !mv) continue; /* a field an older chainz did not write */
        if (!same_value(tv, ts, mv, ms)) {
            rc = cz_error_set(err, CZ_EINVAL, "%s: the checkpoint has %s = %s, this run asks for %s = %s "
                              "(it cannot change within a run)", path, fixed_keys[k], tv, fixed_keys[k], mv);
            goto out;
        }
    }
    { /* a run of a chainz before the stratified holdout drew its validation rows at random */
        const char *th = cz_run_field(theirs, "holdout", NULL), *mh = cz_run_field(mine, "holdout_split", NULL);
        if (th && strcmp(th, "0") && !cz_run_field(theirs, "holdout_split", NULL) && mh && !strcmp(mh, "stratified")) {
            rc = cz_error_set(err, CZ_EINVAL, "%s: the run held out --holdout %s of the rows at random (a chainz "
                              "before the stratified holdout): resume it with --holdout-split random", path, th);
            goto out;
        }
    }
    /* the tau histograms cover every epoch of a run or none: switched on midway, metrics.h5
     * has no families to continue; switched off, the earlier epochs' histograms would go */
    {
        int ts = 0, ms = 0;
        const char *tv = cz_run_field(theirs, "tau", &ts), *mv = cz_run_field(mine, "tau", &ms);
        if (tv && mv && !same_value(tv, ts, mv, ms)) {
            int was_on = strcmp(tv, "0") != 0;
            rc = cz_error_set(err, CZ_EINVAL, "%s: the checkpoint's run was trained %s --no-tau, this run asks %s "
                              "it: tau (--no-tau) cannot change within a run; resume with the same setting (%s "
                              "--no-tau), or start a new run in another --out", path, was_on ? "without" : "with",
                              was_on ? "for" : "to drop", was_on ? "without" : "with");
            goto out;
        }
    }
    /* the data by content (N, d, classes, the labels' checksum, sampled rows): the same
     * file under another path or in another layout resumes, another file at the same path
     * does not */
    if (c->has_identity && run->data) {
        const cz_data_identity *x = &c->data, *y = run->data;
        char what[256] = "";
        size_t w = 0;
#define CZ_DIFF(cond, ...) \
    if (cond) w += (size_t)snprintf(what + w, w < sizeof what ? sizeof what - w : 0, __VA_ARGS__)
        CZ_DIFF(x->n != y->n, "%s%llu rows -> %llu", w ? ", " : "", (unsigned long long)x->n, (unsigned long long)y->n);
        CZ_DIFF(x->d != y->d, "%sd %llu -> %llu", w ? ", " : "", (unsigned long long)x->d, (unsigned long long)y->d);
        CZ_DIFF(x->classes != y->classes, "%s%lld classes -> %lld", w ? ", " : "", (long long)x->classes,
                (long long)y->classes);
        CZ_DIFF(x->labels_checksum != y->labels_checksum, "%slabels differ (checksum %016llx -> %016llx)",
                w ? ", " : "", (unsigned long long)x->labels_checksum, (unsigned long long)y->labels_checksum);
        CZ_DIFF(x->rows_checksum != y->rows_checksum, "%ssampled feature rows differ", w ? ", " : "");
#undef CZ_DIFF
        if (w) {
            const char *tp = cz_run_field(theirs, "data", NULL);
            rc = cz_error_set(err, CZ_EINVAL, "%s: the training data changed since the checkpoint (%s): %s was %s "
                              "(a run must resume on the same data)", path, what, run->data_path,
                              tp ? tp : "?");
            goto out;
        }
        /* the byte size is informative only: h5repack, another chunking or compression
         * stores the same rows in another number of bytes */
        if (x->bytes != y->bytes)
            cz_run_say(log, "chainz: resume: %s holds the same data as at the checkpoint (rows, labels and "
                       "sampled rows match) in %llu bytes instead of %llu (repacked?): resuming\n",
                       run->data_path, (unsigned long long)y->bytes, (unsigned long long)x->bytes);
    } else if (!c->has_identity) {
        cz_run_say(log, "chainz: resume: %s is format %ld, which does not identify its data: not checked\n", path,
            c->format_version);
    }
    /* every other field that changed is logged; the ones that change how the sums are
     * formed (chunk boundaries, the reduction) also end bitwise equality with an
     * uninterrupted run of the new options, as a kernel set does. threads and the rank
     * count do not (the chunks and the exact reduction stay the same). */
    static const char *bit_keys[] = {"micro_batch", "reduce"};
    for (int pass = 0; pass < 2; pass++) {
        const flat_json *x = pass ? mine : theirs, *y = pass ? theirs : mine;
        for (int i = 0; i < x->n; i++) {
            const char *k = x->key[i];
            int skip = !strcmp(k, "blas_version") || !strcmp(k, "blas_kernels") || /* warned below */
                       !strcmp(k, "resume") || /* how this run started, not how it computes */
                       !strcmp(k, "tau");       /* refused above */
            for (size_t f = 0; f < sizeof fixed_keys / sizeof *fixed_keys; f++) skip |= !strcmp(k, fixed_keys[f]);
            int ys = 0;
            const char *yv = cz_run_field(y, k, &ys);
            if (skip || (pass && yv)) continue; /* the second pass: fields only this run has */
            const char *tv = pass ? "(absent)" : x->val[i], *mv = pass ? x->val[i] : yv ? yv : "(absent)";
            if (yv && same_value(x->val[i], x->is_str[i], yv, ys)) continue;
            cz_run_say(log, "chainz: resume: %s changes from %s to %s\n", k, tv, mv);
            for (size_t f = 0; f < sizeof bit_keys / sizeof *bit_keys; f++)
                if (!strcmp(k, bit_keys[f]))
                    cz_run_say(log, "chainz: warning: resume: %s changes from %s to %s: from here on the last bits "
                        "differ from an uninterrupted run\n", k, tv, mv);
        }
    }
    if (c->state.world_size != run->world_size)
        cz_run_say(log, "chainz: resume: written by %d rank%s, continuing on %d\n", c->state.world_size,
            c->state.world_size > 1 ? "s" : "", run->world_size);
    if (c->has_identity && run->blas_kernels && run->blas_version &&
        (strcmp(c->blas_kernels, run->blas_kernels) || strcmp(c->blas_version, run->blas_version)))
        cz_run_say(log, "chainz: warning: resume: the checkpoint was written with BLIS %s, kernels %s; this run uses "
            "BLIS %s, kernels %s: from here on the last bits differ from an uninterrupted run\n",
            c->blas_version, c->blas_kernels, run->blas_version, run->blas_kernels);
out:
    free(mine);
    free(theirs);
    return rc;
}

int cz_run_same_run(const char *mine_json, const char *theirs_json, char *why, size_t why_len)
{
    why[0] = 0;
    flat_json *mine = malloc(sizeof *mine), *theirs = malloc(sizeof *theirs);
    int rc = 0;
    if (!mine || !theirs) rc = CZ_ENOMEM;
    else if (cz_run_parse_flat(mine_json, mine) || cz_run_parse_flat(theirs_json, theirs)) {
        snprintf(why, why_len, "its config attribute is not a flat JSON object");
    } else {
        /* what no resume may change: a file differing in one of them is another run's (not
         * head: the option as given, "auto" or the task, may be spelled either way) */
        static const char *keys[] = {"batch", "seed", "holdout", "holdout_split", "standardize", "clip_z",
                                     "dropout", "tau", "optim", "layers"};
        for (size_t k = 0; k < sizeof keys / sizeof *keys && !why[0]; k++) {
            int ts = 0, ms = 0;
            const char *tv = cz_run_field(theirs, keys[k], &ts), *mv = cz_run_field(mine, keys[k], &ms);
            if (!tv || !mv) continue;
            char a[4200], b[4200]; /* "16, 16" and "16,16" are the same layers */
            size_t na = 0, nb = 0;
            for (const char *p = tv; *p; p++) if (*p != ' ') a[na++] = *p;
            for (const char *p = mv; *p; p++) if (*p != ' ') b[nb++] = *p;
            a[na] = b[nb] = 0;
            if (!same_value(a, ts, b, ms))
                snprintf(why, why_len, "it is another run's: its config has %s = %s, this run's %s", keys[k], tv, mv);
        }
    }
    free(mine);
    free(theirs);
    return rc;
}
