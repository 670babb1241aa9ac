/* The study spec: JSON -> cz_proto_spec, with every key checked (unknown keys refused),
 * and the cells' folders, keys and grid points. docs/PROTOCOL.md is the reference. */
#include "chainz/protocol.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chainz/json.h"

typedef struct {
    const char *file;
    cz_error *err;
} ctx;

static int bad(ctx *c, const cz_json *v, const char *key, const char *what)
{
    return cz_error_set(c->err, CZ_EINVAL, "%s:%d: \"%s\": expected %s", c->file, v ? v->line : 1, key, what);
}

/* 1 if s holds a control character: a newline in a name or path would reach the report's
 * gnuplot script, the SLURM scripts and the logs as a line of its own */
static int has_ctrl(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    return 0;
}

/* the value of option `opt` in args (the last one given), or NULL */
static const char *opt_value(char *const *args, int n, const char *opt)
{
    const char *v = NULL;
    size_t l = strlen(opt);
    for (int i = 0; i < n; i++) {
        if (!strcmp(args[i], opt) && i + 1 < n) v = args[i + 1];
        else if (!strncmp(args[i], opt, l) && args[i][l] == '=') v = args[i] + l + 1;
    }
    return v;
}

/* refuses keys of obj not in allowed (NULL-terminated) */
static int only_keys(ctx *c, const cz_json *obj, const char *where, const char *const *allowed)
{
    for (size_t i = 0; i < obj->n; i++) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++) ok |= !strcmp(*a, obj->keys[i]);
        if (!ok) {
            char list[512] = "";
            size_t w = 0;
            for (const char *const *a = allowed; *a && w < sizeof list; a++)
                w += (size_t)snprintf(list + w, sizeof list - w, "%s%s", a == allowed ? "" : ", ", *a);
            return cz_error_set(c->err, CZ_EINVAL, "%s:%d: unknown key \"%s\" in %s (known: %s)", c->file,
                                obj->items[i].line, obj->keys[i], where, list);
        }
    }
    return 0;
}

static char *dupstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* an integer in [lo, hi] */
static int get_long(ctx *c, const cz_json *v, const char *key, long lo, long hi, long *out)
{
    char what[96];
    snprintf(what, sizeof what, "an integer in %ld..%ld", lo, hi);
    if (!v || v->type != CZ_JSON_NUMBER || v->num != floor(v->num) || v->num < (double)lo || v->num > (double)hi)
        return bad(c, v, key, what);
    *out = (long)v->num;
    return 0;
}

/* path relative to the spec's folder unless absolute */
static char *resolve(const cz_proto_spec *s, const char *p)
{
    if (p[0] == '/' || !strcmp(s->dir, ".")) return dupstr(p);
    size_t n = strlen(s->dir) + strlen(p) + 2;
    char *d = malloc(n);
    if (d) snprintf(d, n, "%s/%s", s->dir, p);
    return d;
}

/* an array of strings -> argv; refuses options the runner sets itself */
static int get_args(ctx *c, const cz_json *v, const char *key, char ***out, int *n, int train)
{
    static const char *const reserved[] = {"--data", "--val", "--out", "--seed", "--resume", "--epochs",
                                           "--max-steps", "--threads", "--holdout", NULL};
    if (v->type != CZ_JSON_ARRAY) return bad(c, v, key, "an array of strings (options, e.g. [\"--act\", \"poly\"])");
    if (!(*out = calloc(v->n ? v->n : 1, sizeof **out))) return cz_error_set(c->err, CZ_ENOMEM, "out of memory");
    for (size_t i = 0; i < v->n; i++) {
        const cz_json *a = &v->items[i];
        if (a->type != CZ_JSON_STRING || !a->str[0])
            return bad(c, a, key, "non-empty strings only (one option or value per string)");
        if (train)
            for (const char *const *r = reserved; *r; r++) {
                size_t rl = strlen(*r);
                if (!strncmp(a->str, *r, rl) && (a->str[rl] == '\0' || a->str[rl] == '='))
                    return cz_error_set(c->err, CZ_EINVAL,
                                        "%s:%d: \"%s\": %s is set by the protocol (data, seed, budget, threads, "
                                        "run folder, resume); remove it",
                                        c->file, a->line, key, *r);
            }
        if (!((*out)[(*n)++] = dupstr(a->str))) return cz_error_set(c->err, CZ_ENOMEM, "out of memory");
    }
    return 0;
}

static int name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (!n || n > max || s[0] == '.' || s[0] == '-') return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
              *p == '_' || *p == '.'))
            return 0;
    return 1;
}

static int parse_data(ctx *c, cz_proto_spec *s, const cz_json *d)
{
    static const char *const keys[] = {"arff", "idx", "numeric", "csv", "prep", "train", "val", "test", NULL};
    if (d->type != CZ_JSON_OBJECT)
        return bad(c, d, "data", "an object: {\"arff\": PATH} or {\"idx\": [IMAGES, LABELS]} or {\"train\": H5, \"test\": H5}");
    int rc = only_keys(c, d, "\"data\"", keys);
    if (rc) return rc;
    const char *fmts[] = {"arff", "idx", "numeric", "csv"};
    int given = 0;
    for (int i = 0; i < 4; i++) {
        const cz_json *v = cz_json_get(d, fmts[i]);
        if (!v) continue;
        if (given++) return bad(c, v, fmts[i], "one source only (arff, idx, numeric or csv)");
        snprintf(s->prep_format, sizeof s->prep_format, "%s", fmts[i]);
        s->data_kind = CZ_PROTO_DATA_PREP;
        if (i == 1) {
            if (v->type != CZ_JSON_ARRAY || v->n != 2 || v->items[0].type != CZ_JSON_STRING ||
                v->items[1].type != CZ_JSON_STRING)
                return bad(c, v, "idx", "[IMAGES, LABELS]: two file names");
            for (int k = 0; k < 2; k++)
                if (!(s->prep_inputs[k] = resolve(s, v->items[k].str))) return CZ_ENOMEM;
            s->n_prep_inputs = 2;
        } else {
            if (v->type != CZ_JSON_STRING || !v->str[0]) return bad(c, v, fmts[i], "a file name");
            if (!(s->prep_inputs[0] = resolve(s, v->str))) return CZ_ENOMEM;
            s->n_prep_inputs = 1;
        }
    }
    const cz_json *pa = cz_json_get(d, "prep");
    if (pa) {
        if (!given) return bad(c, pa, "prep", "a prep source (arff, idx, numeric or csv) beside it");
        static const char *const reserved[] = {"-o", "--output", "--split", "--seed", "--fraction", "--count",
                                               "--count-per-class", NULL};
        if ((rc = get_args(c, pa, "prep", &s->prep_args, &s->n_prep_args, 0))) return rc;
        for (int i = 0; i < s->n_prep_args; i++)
            for (const char *const *r = reserved; *r; r++) {
                size_t rl = strlen(*r);
                if (!strncmp(s->prep_args[i], *r, rl) && (s->prep_args[i][rl] == '\0' || s->prep_args[i][rl] == '='))
                    return cz_error_set(c->err, CZ_EINVAL, "%s:%d: \"prep\": %s is set by the protocol; remove it",
                                        c->file, pa->line, *r);
            }
    }
    const char *fk[3] = {"train", "val", "test"};
    int files = 0;
    for (int j = 0; j < 3; j++) {
        const cz_json *v = cz_json_get(d, fk[j]);
        if (!v) continue;
        if (given) return bad(c, v, fk[j], "either a prep source or data files, not both");
        if (v->type != CZ_JSON_STRING || !v->str[0]) return bad(c, v, fk[j], "a chainz-data .h5 file name");
        if (!(s->files[j] = resolve(s, v->str))) return CZ_ENOMEM;
        files++;
    }
    if (files) {
        s->data_kind = CZ_PROTO_DATA_FILES;
        if (!s->files[0] || !s->files[2]) return bad(c, d, "data", "both \"train\" and \"test\" files");
    } else if (!given) {
        return bad(c, d, "data", "a source: arff, idx, numeric, csv, or train + test files");
    }
    return 0;
}

static int parse_fraction(ctx *c, cz_proto_fraction *f, const cz_json *v)
{
    if (v->type == CZ_JSON_NUMBER) {
        if (!(v->num > 0 && v->num <= 1)) return bad(c, v, "fractions", "numbers in (0, 1]");
        f->fraction = v->num;
        snprintf(f->label, sizeof f->label, "frac-%s", v->str);
        return 0;
    }
    if (v->type != CZ_JSON_OBJECT || v->n != 1)
        return bad(c, v, "fractions", "entries 0.05, {\"count\": N} or {\"per_class\": [A, B, ...]}");
    if (!strcmp(v->keys[0], "count")) {
        int rc = get_long(c, &v->items[0], "count", 1, LONG_MAX / 2, &f->count);
        if (rc) return rc;
        snprintf(f->label, sizeof f->label, "count-%ld", f->count);
        return 0;
    }
    if (strcmp(v->keys[0], "per_class"))
        return cz_error_set(c->err, CZ_EINVAL, "%s:%d: unknown key \"%s\" in a fraction (known: count, per_class)",
                            c->file, v->items[0].line, v->keys[0]);
    const cz_json *a = &v->items[0];
    if (a->type != CZ_JSON_ARRAY || a->n < 2 || a->n > 64)
        return bad(c, a, "per_class", "an array of 2..64 counts, one per class");
    if (!(f->per_class = calloc(a->n, sizeof *f->per_class))) return CZ_ENOMEM;
    int w = snprintf(f->label, sizeof f->label, "per-class");
    for (size_t k = 0; k < a->n; k++) {
        int rc = get_long(c, &a->items[k], "per_class", 0, LONG_MAX / 2, &f->per_class[k]);
        if (rc) return rc;
        if (w > 0 && (size_t)w < sizeof f->label)
            w += snprintf(f->label + w, sizeof f->label - (size_t)w, "-%ld", f->per_class[k]);
    }
    if (w <= 0 || (size_t)w >= sizeof f->label) return bad(c, a, "per_class", "shorter counts (the label is too long)");
    f->n_per_class = (int)a->n;
    return 0;
}

static int parse_model(ctx *c, cz_proto_model *m, const cz_json *v)
{
    static const char *const keys[] = {"name", "train", "grid", NULL};
    if (v->type != CZ_JSON_OBJECT) return bad(c, v, "models", "objects {\"name\": ..., \"train\": [...]}");
    int rc = only_keys(c, v, "a model", keys);
    if (rc) return rc;
    const cz_json *n = cz_json_get(v, "name"), *t = cz_json_get(v, "train"), *g = cz_json_get(v, "grid");
    if (!n || n->type != CZ_JSON_STRING || !name_ok(n->str, 48))
        return bad(c, n ? n : v, "name", "a model name of letters, digits, '-', '_', '.' (1..48 characters)");
    if (!(m->name = dupstr(n->str))) return CZ_ENOMEM;
    if (t && (rc = get_args(c, t, "train", &m->args, &m->n_args, 1))) return rc;
    m->n_points = 1;
    if (!g) return 0;
    if (g->type != CZ_JSON_OBJECT || !g->n) return bad(c, g, "grid", "an object {\"OPTION\": [VALUES]} with one key or more");
    m->grid_keys = calloc(g->n, sizeof *m->grid_keys);
    m->grid_vals = calloc(g->n, sizeof *m->grid_vals);
    m->n_grid_vals = calloc(g->n, sizeof *m->n_grid_vals);
    if (!m->grid_keys || !m->grid_vals || !m->n_grid_vals) return CZ_ENOMEM;
    for (size_t k = 0; k < g->n; k++) {
        const cz_json *a = &g->items[k];
        const char *key = g->keys[k];
        if (!name_ok(key, 40) || key[0] == '-')
            return cz_error_set(c->err, CZ_EINVAL, "%s:%d: grid key \"%s\": expected a train option without \"--\" (e.g. dreg)",
                                c->file, a->line, key);
        char opt[64];
        snprintf(opt, sizeof opt, "--%s", key);
        for (int i = 0; i < m->n_args; i++)
            if (!strcmp(m->args[i], opt))
                return cz_error_set(c->err, CZ_EINVAL, "%s:%d: grid key \"%s\": the model's \"train\" sets %s too",
                                    c->file, a->line, key, opt);
        static const char *const reserved[] = {"data", "val", "out", "seed", "resume", "epochs", "max-steps", "threads",
                                               "holdout", NULL};
        for (const char *const *r = reserved; *r; r++)
            if (!strcmp(key, *r))
                return cz_error_set(c->err, CZ_EINVAL, "%s:%d: grid key \"%s\" is set by the protocol", c->file,
                                    a->line, key);
        if (a->type != CZ_JSON_ARRAY || !a->n || a->n > 64)
            return bad(c, a, key, "an array of 1..64 values (numbers or strings)");
        if (!(m->grid_keys[k] = dupstr(key)) || !(m->grid_vals[k] = calloc(a->n, sizeof(char *)))) return CZ_ENOMEM;
        m->n_grid_keys++;
        for (size_t i = 0; i < a->n; i++) {
            if ((a->items[i].type != CZ_JSON_NUMBER && a->items[i].type != CZ_JSON_STRING) || !a->items[i].str[0])
                return bad(c, &a->items[i], key, "numbers or non-empty strings");
            if (!(m->grid_vals[k][m->n_grid_vals[k]++] = dupstr(a->items[i].str))) return CZ_ENOMEM;
        }
        if (g->n > 64 || m->n_points * (long)a->n > 4096) return bad(c, a, "grid", "at most 4096 points in all");
        m->n_points *= (int)a->n;
    }
    return 0;
}

static int parse_top(ctx *c, cz_proto_spec *s, const cz_json *j)
{
    static const char *const keys[] = {"name", "run_root", "data", "split", "seeds", "fractions", "models", "budget",
                                       "train", "ranks", "threads", "metric", "tau", "alpha", "slurm", NULL};
    if (j->type != CZ_JSON_OBJECT) return bad(c, j, "(top level)", "an object");
    int rc = only_keys(c, j, "the spec", keys);
    if (rc) return rc;
    const cz_json *v;
    if ((v = cz_json_get(j, "name"))) {
        if (v->type != CZ_JSON_STRING || strlen(v->str) >= sizeof s->name || has_ctrl(v->str))
            return bad(c, v, "name", "a short string without control characters (newlines, tabs)");
        snprintf(s->name, sizeof s->name, "%s", v->str);
    }
    if (!(v = cz_json_get(j, "run_root")) || v->type != CZ_JSON_STRING || !v->str[0] || has_ctrl(v->str))
        return bad(c, v ? v : j, "run_root", "the folder of the runs and the report (a string without control characters; relative to the spec's folder)");
    char *rr = resolve(s, v->str);
    if (!rr) return CZ_ENOMEM;
    if (strlen(rr) >= sizeof s->run_root - 200) {
        free(rr);
        return bad(c, v, "run_root", "a shorter path");
    }
    snprintf(s->run_root, sizeof s->run_root, "%s", rr);
    free(rr);
    if (!(v = cz_json_get(j, "data"))) return bad(c, j, "data", "a data source (key missing)");
    if ((rc = parse_data(c, s, v))) return rc;
    if ((v = cz_json_get(j, "split"))) {
        static const char *const sk[] = {"train", "val", "test", NULL};
        if (s->data_kind == CZ_PROTO_DATA_FILES) return bad(c, v, "split", "no split with data files (they are split)");
        if (v->type != CZ_JSON_OBJECT) return bad(c, v, "split", "an object {\"train\": 0.8, \"test\": 0.2}");
        if ((rc = only_keys(c, v, "\"split\"", sk))) return rc;
        double sum = 0;
        for (int i = 0; i < 3; i++) {
            const cz_json *f = cz_json_get(v, sk[i]);
            if (!f) continue;
            if (f->type != CZ_JSON_NUMBER || !(f->num >= 0 && f->num <= 1)) return bad(c, f, sk[i], "a fraction in [0, 1]");
            s->split[i] = f->num;
            sum += f->num;
        }
        if (fabs(sum - 1) > 1e-6) return bad(c, v, "split", "fractions adding up to 1");
        if (!(s->split[0] > 0 && s->split[2] > 0)) return bad(c, v, "split", "train and test fractions > 0");
    } else if (s->data_kind == CZ_PROTO_DATA_PREP) {
        return bad(c, j, "split", "a split for a prep source, e.g. {\"train\": 0.8, \"test\": 0.2} (key missing)");
    }
    if (!(v = cz_json_get(j, "seeds")) || v->type != CZ_JSON_ARRAY || !v->n || v->n > 1000)
        return bad(c, v ? v : j, "seeds", "a list of 1..1000 seeds");
    if (!(s->seeds = calloc(v->n, sizeof *s->seeds))) return CZ_ENOMEM;
    for (size_t i = 0; i < v->n; i++) {
        long x;
        if ((rc = get_long(c, &v->items[i], "seeds", 0, 2147483647L, &x))) return rc;
        for (int k = 0; k < s->n_seeds; k++)
            if (s->seeds[k] == (uint64_t)x) return bad(c, &v->items[i], "seeds", "distinct seeds");
        s->seeds[s->n_seeds++] = (uint64_t)x;
    }
    v = cz_json_get(j, "fractions");
    if (v && (v->type != CZ_JSON_ARRAY || !v->n || v->n > 100)) return bad(c, v, "fractions", "a list of 1..100 entries");
    size_t nf = v ? v->n : 1;
    if (!(s->fractions = calloc(nf, sizeof *s->fractions))) return CZ_ENOMEM;
    for (size_t i = 0; i < nf; i++) {
        cz_proto_fraction *f = &s->fractions[s->n_fractions++];
        if (!v) {
            f->fraction = 1;
            snprintf(f->label, sizeof f->label, "frac-1");
        } else if ((rc = parse_fraction(c, f, &v->items[i]))) {
            return rc;
        }
        if (s->data_kind == CZ_PROTO_DATA_FILES && !(f->fraction == 1 && !f->count && !f->per_class))
            return bad(c, v ? &v->items[i] : j, "fractions", "only 1 with data files (subsamples need a prep source)");
        for (int k = 0; k + 1 < s->n_fractions; k++)
            if (!strcmp(s->fractions[k].label, f->label)) return bad(c, v ? &v->items[i] : j, "fractions", "distinct entries");
    }
    if (!(v = cz_json_get(j, "models")) || v->type != CZ_JSON_ARRAY || !v->n || v->n > 100)
        return bad(c, v ? v : j, "models", "a list of 1..100 models (the first is compared with each other one)");
    if (!(s->models = calloc(v->n, sizeof *s->models))) return CZ_ENOMEM;
    for (size_t i = 0; i < v->n; i++) {
        cz_proto_model *m = &s->models[s->n_models++];
        if ((rc = parse_model(c, m, &v->items[i]))) return rc;
        for (int k = 0; k + 1 < s->n_models; k++)
            if (!strcmp(s->models[k].name, m->name)) return bad(c, &v->items[i], "name", "distinct model names");
        if (!strcmp(m->name, "data") || !strcmp(m->name, "slurm") || !strcmp(m->name, "corruption") ||
            !strncmp(m->name, "report.", 7))
            return bad(c, &v->items[i], "name", "a model name other than data, slurm, corruption and report.* (names "
                       "the run root uses)");
        if (m->n_points > 1 && s->data_kind == CZ_PROTO_DATA_PREP && !(s->split[1] > 0))
            return bad(c, &v->items[i], "grid", "a validation split to choose on (\"split\": {\"val\": ...})");
        if (m->n_points > 1 && s->data_kind == CZ_PROTO_DATA_FILES && !s->files[1])
            return bad(c, &v->items[i], "grid", "a validation file to choose on (\"data\": {\"val\": ...})");
    }
    static const char *const bk[] = {"epochs", "max_steps", NULL};
    if (!(v = cz_json_get(j, "budget")) || v->type != CZ_JSON_OBJECT)
        return bad(c, v ? v : j, "budget", "an object {\"epochs\": E} or {\"max_steps\": N} (or both)");
    if ((rc = only_keys(c, v, "\"budget\"", bk))) return rc;
    const cz_json *e = cz_json_get(v, "epochs"), *ms = cz_json_get(v, "max_steps");
    if (!e && !ms) return bad(c, v, "budget", "epochs or max_steps");
    if (e && (rc = get_long(c, e, "epochs", 1, 1000000, &s->epochs))) return rc;
    if (ms && (rc = get_long(c, ms, "max_steps", 1, 1000000000L, &s->max_steps))) return rc;
    if ((v = cz_json_get(j, "train")) && (rc = get_args(c, v, "train", &s->train_args, &s->n_train_args, 1))) return rc;
    long x = 1;
    if ((v = cz_json_get(j, "ranks")) && (rc = get_long(c, v, "ranks", 1, 4096, &x))) return rc;
    s->ranks = (int)x;
    x = 1;
    if ((v = cz_json_get(j, "threads")) && (rc = get_long(c, v, "threads", 1, 256, &x))) return rc;
    s->threads = (int)x;
    if ((v = cz_json_get(j, "metric"))) {
        if (v->type != CZ_JSON_STRING || (strcmp(v->str, "acc") && strcmp(v->str, "mae")))
            return bad(c, v, "metric", "\"acc\" (higher is better) or \"mae\" (ordinal heads, lower is better)");
        s->metric = strcmp(v->str, "acc") ? CZ_PROTO_METRIC_MAE : CZ_PROTO_METRIC_ACC;
    }
    /* the metric must mean something for every model's head: eval reports mae 0 for a
     * classifier and acc 0 for a regression, which would compare zeros */
    for (int k = 0; k < s->n_models; k++) {
        const char *h = opt_value(s->models[k].args, s->models[k].n_args, "--head");
        if (!h) h = opt_value(s->train_args, s->n_train_args, "--head");
        int ordinal = h && !strcmp(h, "ordinal"), regress = h && !strcmp(h, "regress");
        if (s->metric == CZ_PROTO_METRIC_MAE && !ordinal && !regress)
            return bad(c, v ? v : j, "metric", "\"acc\" here: \"mae\" needs --head ordinal (or regress) in \"train\" "
                       "or in every model's options (eval reports MAE for those heads only)");
        if (s->metric == CZ_PROTO_METRIC_ACC && regress)
            return bad(c, v ? v : j, "metric", "a metric for --head regress: \"acc\" is 0 for every regression");
    }
    s->tau = 1;
    if ((v = cz_json_get(j, "tau"))) {
        if (v->type != CZ_JSON_BOOL) return bad(c, v, "tau", "true or false");
        s->tau = v->boolean;
    }
    s->alpha = 0.05;
    if ((v = cz_json_get(j, "alpha"))) {
        if (v->type != CZ_JSON_NUMBER || !(v->num > 0 && v->num < 1)) return bad(c, v, "alpha", "a number in (0, 1)");
        s->alpha = v->num;
    }
    if ((v = cz_json_get(j, "slurm"))) {
        static const char *const sk[] = {"time", "partition", NULL};
        if (v->type != CZ_JSON_OBJECT) return bad(c, v, "slurm", "an object {\"time\": \"1:00:00\", \"partition\": P}");
        if ((rc = only_keys(c, v, "\"slurm\"", sk))) return rc;
        const cz_json *t = cz_json_get(v, "time"), *p = cz_json_get(v, "partition");
        if (t && (t->type != CZ_JSON_STRING || !t->str[0] || strlen(t->str) > 30 ||
                  strspn(t->str, "0123456789:-") != strlen(t->str)))
            return bad(c, t, "time", "a SLURM time limit such as \"2:00:00\" or \"1-00:00:00\"");
        if (p && (p->type != CZ_JSON_STRING || !name_ok(p->str, 60))) return bad(c, p, "partition", "a partition name");
        if (t) snprintf(s->slurm_time, sizeof s->slurm_time, "%s", t->str);
        if (p) snprintf(s->slurm_partition, sizeof s->slurm_partition, "%s", p->str);
    }
    return 0;
}

int cz_proto_spec_load(cz_proto_spec *s, const char *path, cz_error *err)
{
    memset(s, 0, sizeof *s);
    if (strlen(path) >= sizeof s->path - 1) return cz_error_set(err, CZ_EINVAL, "spec path too long");
    snprintf(s->path, sizeof s->path, "%s", path);
    const char *slash = strrchr(path, '/');
    char given[CZ_PROTO_PATH];
    if (slash) snprintf(given, sizeof given, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    else snprintf(given, sizeof given, ".");
    /* absolute, so that a run's key (its data paths) is the same from any working folder:
     * a local run and a SLURM task of the same spec agree */
    char real[PATH_MAX];
    if (!realpath(given, real)) return cz_error_set(err, CZ_EIO, "%s: %s", given, strerror(errno));
    if (strlen(real) >= sizeof s->dir - 256) return cz_error_set(err, CZ_EINVAL, "%s: path too long", real);
    snprintf(s->dir, sizeof s->dir, "%s", real);
    cz_json j;
    int rc = cz_json_read_file(&j, path, err);
    if (rc) return rc;
    ctx c = {path, err};
    rc = parse_top(&c, s, &j);
    if (rc == CZ_ENOMEM) cz_error_set(err, rc, "%s: out of memory", path);
    cz_json_free(&j);
    if (rc) cz_proto_spec_free(s);
    return rc;
}

static void free_argv(char **a, int n)
{
    for (int i = 0; a && i < n; i++) free(a[i]);
    free(a);
}

void cz_proto_spec_free(cz_proto_spec *s)
{
    if (!s) return;
    for (int i = 0; i < 2; i++) free(s->prep_inputs[i]);
    for (int i = 0; i < 3; i++) free(s->files[i]);
    free_argv(s->prep_args, s->n_prep_args);
    free_argv(s->train_args, s->n_train_args);
    free(s->seeds);
    for (int i = 0; s->fractions && i < s->n_fractions; i++) free(s->fractions[i].per_class);
    free(s->fractions);
    for (int i = 0; s->models && i < s->n_models; i++) {
        cz_proto_model *m = &s->models[i];
        free(m->name);
        free_argv(m->args, m->n_args);
        for (int k = 0; k < m->n_grid_keys; k++) free_argv(m->grid_vals[k], m->n_grid_vals[k]);
        free_argv(m->grid_keys, m->n_grid_keys);
        free(m->grid_vals);
        free(m->n_grid_vals);
    }
    free(s->models);
    memset(s, 0, sizeof *s);
}

size_t cz_proto_cells(const cz_proto_spec *s)
{
    return (size_t)s->n_models * (size_t)s->n_fractions * (size_t)s->n_seeds;
}

void cz_proto_cell_coords(const cz_proto_spec *s, size_t I, int *model, int *fraction, int *seed)
{
    *seed = (int)(I % (size_t)s->n_seeds);
    I /= (size_t)s->n_seeds;
    *fraction = (int)(I % (size_t)s->n_fractions);
    *model = (int)(I / (size_t)s->n_fractions);
}

int cz_proto_cell_dir(const cz_proto_spec *s, size_t I, char *buf, size_t len)
{
    int m, f, k;
    cz_proto_cell_coords(s, I, &m, &f, &k);
    int n = snprintf(buf, len, "%s/%s/%s/seed-%llu", s->run_root, s->models[m].name, s->fractions[f].label,
                     (unsigned long long)s->seeds[k]);
    return n > 0 && (size_t)n < len ? 0 : CZ_EINVAL;
}

int cz_proto_grid_point(const cz_proto_model *m, int g, const char **argv, char *desc, size_t len)
{
    int n = 0;
    size_t w = 0;
    if (len) desc[0] = '\0';
    static char opt[64][48]; /* "--key": grid keys are at most 40 characters */
    int idx[64] = {0}, rest = g;
    for (int k = m->n_grid_keys - 1; k >= 0; k--) { /* the last key varies fastest */
        idx[k] = rest % m->n_grid_vals[k];
        rest /= m->n_grid_vals[k];
    }
    for (int k = 0; k < m->n_grid_keys && k < 64; k++) {
        snprintf(opt[k], sizeof opt[k], "--%s", m->grid_keys[k]);
        argv[n++] = opt[k];
        argv[n++] = m->grid_vals[k][idx[k]];
        if (w < len) w += (size_t)snprintf(desc + w, len - w, "%s%s=%s", k ? " " : "", m->grid_keys[k], m->grid_vals[k][idx[k]]);
    }
    return n;
}

static size_t add(char *buf, size_t len, size_t w, const char *fmt, const char *a)
{
    if (w >= len) return w;
    int n = snprintf(buf + w, len - w, fmt, a);
    return n > 0 ? w + (size_t)n : w;
}

int cz_proto_cell_key(const cz_proto_spec *s, size_t I, char *buf, size_t len)
{
    int m, f, k;
    cz_proto_cell_coords(s, I, &m, &f, &k);
    const cz_proto_model *md = &s->models[m];
    char num[160];
    size_t w = 0;
    buf[0] = '\0';
    w = add(buf, len, w, "model=%s", md->name);
    w = add(buf, len, w, "%s", " train=[");
    for (int i = 0; i < s->n_train_args; i++) w = add(buf, len, w, i ? ",%s" : "%s", s->train_args[i]);
    w = add(buf, len, w, "%s", "] model_train=[");
    for (int i = 0; i < md->n_args; i++) w = add(buf, len, w, i ? ",%s" : "%s", md->args[i]);
    w = add(buf, len, w, "%s", "] grid={");
    for (int g = 0; g < md->n_grid_keys; g++) {
        w = add(buf, len, w, g ? ";%s:" : "%s:", md->grid_keys[g]);
        for (int i = 0; i < md->n_grid_vals[g]; i++) w = add(buf, len, w, i ? ",%s" : "%s", md->grid_vals[g][i]);
    }
    w = add(buf, len, w, "%s", "}");
    w = add(buf, len, w, " fraction=%s", s->fractions[f].label);
    snprintf(num, sizeof num, "%llu", (unsigned long long)s->seeds[k]);
    w = add(buf, len, w, " seed=%s", num);
    if (s->data_kind == CZ_PROTO_DATA_PREP) {
        w = add(buf, len, w, " data=%s", s->prep_format);
        for (int i = 0; i < s->n_prep_inputs; i++) w = add(buf, len, w, ":%s", s->prep_inputs[i]);
        for (int i = 0; i < s->n_prep_args; i++) w = add(buf, len, w, i ? ",%s" : " prep=%s", s->prep_args[i]);
        snprintf(num, sizeof num, "%.17g,%.17g,%.17g", s->split[0], s->split[1], s->split[2]);
        w = add(buf, len, w, " split=%s", num);
    } else {
        for (int i = 0; i < 3; i++) w = add(buf, len, w, " file=%s", s->files[i] ? s->files[i] : "-");
    }
    /* not ranks or threads: with --reduce exact they give the same bits (DESIGN section 6) */
    snprintf(num, sizeof num, " epochs=%ld max_steps=%ld metric=%s tau=%d", s->epochs, s->max_steps,
             s->metric == CZ_PROTO_METRIC_MAE ? "mae" : "acc", s->tau);
    w = add(buf, len, w, "%s", num);
    return w < len ? 0 : CZ_EINVAL;
}
