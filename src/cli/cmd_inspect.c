/* `chainz inspect FILE [--json]`: what a chainz file or run directory holds, for a user
 * who has one in hand (which model, which step, is it intact, how is the data stored).
 * No MPI: it runs anywhere, like prep and tau. The file's kind comes from its root
 * `format` attribute (src/io/h5probe.c); the checkpoint is loaded without refusing a bad
 * checksum (cz_ckpt_load_unverified) so that a corrupt file is described and the failed
 * checksum named. Everything is loaded before anything is printed: an error leaves stdout
 * empty (--json never prints half an object).
 * Exit status: 0 described; 1 usage or input error: a missing or non-HDF5 file, a chainz
 * file that does not read, or a checkpoint (also a run directory's latest) whose checksum
 * fails, after the full description; 2 runtime failure (out of memory, standard output
 * not written). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chainz/checkpoint.h"
#include "chainz/data.h"
#include "chainz/h5probe.h"
#include "chainz/json.h"
#include "chainz/metrics_read.h"
#include "chainz/runstate.h"
#include "inspect_internal.h"

enum { EXIT_USAGE = 1, EXIT_RUNTIME = 2 };

static void inspect_usage(FILE *f)
{
    fprintf(f,
"usage: chainz inspect FILE|RUN_DIR [--json]\n"
"\n"
"Describes a chainz file by its kind (the root attribute `format`):\n"
"  checkpoint   architecture, parameter count, epoch/step/position, lambda, lr, optimizer,\n"
"               the key configuration, world size, versions, BLIS kernels and threads, the\n"
"               training data's identity, SLURM fields, and the three checksums verified\n"
"  chainz-data  N, d, task, classes, class counts, label range, standardization statistics,\n"
"               the storage layout of /features (chunked files: what it costs, the fix)\n"
"  metrics.h5   families, epochs recorded, each family's last epoch (count, mean, p99, tau)\n"
"  RUN_DIR      its config.json, its latest checkpoint and its metrics.h5\n"
"Another HDF5 file is named unknown, with its root attributes and members.\n"
"\n"
"  --json       print one JSON object with the same facts (keys: docs/DESIGN.md section 5)\n"
"  -h, --help   print this help and exit\n"
"\n"
"Exit status: 0 described; 1 usage or input error (missing file, not HDF5, a chainz file\n"
"that does not read), also a checkpoint whose checksum fails (described first, the failed\n"
"checksum named; in JSON checksum.ok is false); 2 runtime failure.\n");
}

static int status_of(int rc) { return rc == 0 ? 0 : rc == CZ_EINVAL ? EXIT_USAGE : EXIT_RUNTIME; }

/* ---- configuration (config.json or a checkpoint's config attribute) ---- */

/* the keys a reader of a run wants first; all of them are in the JSON itself */
static const char *const config_keys[] = {
    "data", "val", "holdout", "standardize", "clip_z", "layers", "act", "head", "dropout", "dreg",
    "dreg_schedule", "dreg_mode", "dreg_probes", "tau_jacobian_fraction", "optim", "lr", "lr_schedule",
    "weight_decay", "clip_grad_norm", "epochs", "batch", "micro_batch", "seed", "threads", "reduce",
    "max_steps", "tau"};

/* 1 if both configurations give the same text for every key shown */
static int config_same(const cz_json *a, const cz_json *b)
{
    for (size_t i = 0; i < sizeof config_keys / sizeof *config_keys; i++) {
        const cz_json *x = cz_json_get(a, config_keys[i]), *y = cz_json_get(b, config_keys[i]);
        if (!x != !y) return 0;
        if (!x) continue;
        if (x->type != y->type || x->boolean != y->boolean || !x->str != !y->str || (x->str && strcmp(x->str, y->str)))
            return 0;
    }
    return 1;
}

static void emit_config(cz_emit *e, const char *key, const cz_json *cfg)
{
    em_obj(e, key);
    for (size_t i = 0; i < sizeof config_keys / sizeof *config_keys; i++) {
        const cz_json *v = cz_json_get(cfg, config_keys[i]);
        if (!v) continue;
        if (v->type == CZ_JSON_STRING) {
            if (v->str[0]) em_str(e, config_keys[i], v->str);
        } else if (v->type == CZ_JSON_NUMBER) {
            em_raw(e, config_keys[i], v->str, v->str);
        } else if (v->type == CZ_JSON_BOOL) {
            em_bool(e, config_keys[i], v->boolean);
        }
    }
    em_end(e);
}

/* ---- checkpoint ---- */

typedef struct {
    char path[4600];
    int loaded;
    char error[1024];
    cz_checkpoint c;
    cz_ckpt_verdict v;
    cz_json cfg;
    int has_cfg;
    uint64_t bytes;
    char time[96]; /* root attribute time: when it was written */
    int same_config; /* a run directory's view: the config equals config.json's keys */
} ckpt_view;

static int ckpt_read(ckpt_view *k, const char *path, cz_error *err)
{
    memset(k, 0, sizeof *k);
    snprintf(k->path, sizeof k->path, "%s", path);
    cz_h5_probe p;
    int rc = cz_h5_probe_file(path, &p, err);
    if (rc) return rc;
    k->bytes = p.bytes;
    for (int i = 0; i < p.n_attrs; i++)
        if (!strcmp(p.attr_name[i], "time")) snprintf(k->time, sizeof k->time, "%s", p.attr_value[i]);
    rc = cz_ckpt_load_unverified(path, &k->c, &k->v, err);
    if (rc) return rc;
    k->loaded = 1;
    cz_error cerr = {0};
    if (k->c.config_json && k->c.config_json[0] &&
        !cz_json_parse(&k->cfg, k->c.config_json, strlen(k->c.config_json), "config attribute", &cerr))
        k->has_cfg = 1;
    return 0;
}

static void ckpt_free(ckpt_view *k)
{
    if (k->loaded) cz_ckpt_free(&k->c);
    if (k->has_cfg) cz_json_free(&k->cfg);
    k->loaded = k->has_cfg = 0;
}

/* one checksum's row {ok, stored, computed}, or null when the file has none (ok < 0) */
static void em_checksum(cz_emit *e, const char *name, int ok, const char *stored, const char *computed)
{
    if (ok < 0) {
        em_str(e, name, NULL);
        return;
    }
    em_row(e, name);
    em_bool(e, "ok", ok);
    em_str(e, "stored", stored);
    em_str(e, "computed", computed);
    em_end(e);
}

static int ckpt_ok(const ckpt_view *k) { return k->v.params_ok && k->v.all_ok != 0 && k->v.model_ok != 0; }

/* the failure in words, for stderr */
static void ckpt_failure(const ckpt_view *k, char *buf, size_t len)
{
    const char *part[3] = {k->v.params_ok ? NULL : "the parameter checksum",
                           k->v.all_ok == 0 ? "checksum_all (everything a resume reads)" : NULL,
                           k->v.model_ok == 0 ? "checksum_model (the model's architecture attributes: "
                                                "activations, head, ...)" : NULL};
    char names[256] = "";
    int n = 0;
    for (int i = 0; i < 3; i++)
        if (part[i]) {
            size_t w = strlen(names);
            snprintf(names + w, sizeof names - w, "%s%s", n++ ? " and " : "", part[i]);
        }
    snprintf(buf, len, "%s: %s does not match the stored value: the file is corrupted (do not train or "
             "evaluate from it; chainz train --resume auto sets such a file aside)", k->path, names);
}

static void emit_ckpt(cz_emit *e, const ckpt_view *k)
{
    const cz_checkpoint *c = &k->c;
    const cz_model *m = &c->model;
    em_str(e, "kind", "checkpoint");
    em_str(e, "path", k->path);
    em_int(e, "file_bytes", (long long)k->bytes);
    em_int(e, "format_version", c->format_version);
    em_str(e, "chainz_version", c->version[0] ? c->version : NULL);
    em_str(e, "time", k->time[0] ? k->time : NULL);
    em_obj(e, "model");
    em_int(e, "d", (long long)m->spec.d);
    em_arr(e, "layers");
    for (int l = 0; l < m->spec.n_hidden; l++) {
        em_obj(e, NULL);
        em_int(e, "width", (long long)m->spec.width[l]);
        em_str(e, "act", cz_act_name(m->spec.act[l]));
        em_end(e);
    }
    em_end(e);
    em_str(e, "head", cz_head_name(m->spec.head));
    em_int(e, "classes", m->spec.classes);
    em_int(e, "outputs", (long long)m->layer[m->n_hidden].n_out);
    em_num(e, "dropout", m->spec.dropout);
    em_int(e, "params", (long long)m->n_params);
    em_bool(e, "standardized_input", c->mean != NULL);
    em_num(e, "clip_z", c->clip_z);
    em_end(e);
    /* epoch is the epoch in progress, 0-based: with position 0 it is also the epochs done */
    em_obj(e, "state");
    em_int(e, "epoch", c->state.epoch);
    em_int(e, "step", c->state.step);
    em_int(e, "position", c->state.position);
    em_num(e, "lambda", c->state.lambda);
    em_num(e, "lr", c->state.lr);
    em_end(e);
    em_str(e, "optimizer", c->opt_state ? cz_optim_name(c->optim) : NULL);
    em_int(e, "world_size", c->state.world_size);
    /* text: a run's config.json was just shown; JSON keeps every part whole */
    if (k->same_config && !e->json) em_str(e, "config", "the same as the run's config.json");
    else if (k->has_cfg) emit_config(e, "config", &k->cfg);
    else em_str(e, "config", NULL);
    em_row(e, "blas");
    em_str(e, "version", c->has_identity ? c->blas_version : NULL);
    em_str(e, "kernels", c->has_identity ? c->blas_kernels : NULL);
    if (c->has_identity) em_int(e, "threads", c->threads);
    else em_str(e, "threads", NULL);
    em_end(e);
    if (c->has_identity) {
        char ls[24], rs[24];
        snprintf(ls, sizeof ls, "%016llx", (unsigned long long)c->data.labels_checksum);
        snprintf(rs, sizeof rs, "%016llx", (unsigned long long)c->data.rows_checksum);
        em_row(e, "training_data");
        em_int(e, "n", (long long)c->data.n);
        em_int(e, "d", (long long)c->data.d);
        em_int(e, "classes", (long long)c->data.classes);
        em_int(e, "bytes", (long long)c->data.bytes);
        em_str(e, "labels_checksum", ls);
        em_str(e, "rows_checksum", rs);
        em_end(e);
    } else {
        em_str(e, "training_data", NULL); /* format version 1 did not record it */
    }
    em_str(e, "slurm", c->state.slurm[0] ? c->state.slurm : NULL);
    em_obj(e, "checksum");
    em_bool(e, "ok", ckpt_ok(k));
    em_checksum(e, "params", k->v.params_ok, k->v.params_stored, k->v.params_computed);
    em_checksum(e, "all", k->v.all_ok, k->v.all_stored, k->v.all_computed); /* -1: format 1 */
    /* -1: written before checksum_model existed */
    em_checksum(e, "model", k->v.model_ok, k->v.model_stored, k->v.model_computed);
    em_end(e);
}

/* ---- chainz-data ---- */

static const char *human(size_t b, char *buf, size_t len)
{
    const char *unit[] = {"B", "KB", "MB", "GB", "TB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 4) v /= 1024, u++;
    snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
    return buf;
}

typedef struct {
    cz_data *ds;
    cz_h5_probe probe;
    cz_data_layout lay;
    uint64_t *counts; /* [classes] */
    double lo, hi;    /* label range */
} data_view;

static int data_read(data_view *v, const char *path, cz_error *err)
{
    memset(v, 0, sizeof *v);
    int rc = cz_h5_probe_file(path, &v->probe, err);
    if (!rc) rc = cz_data_open(&v->ds, path, err);
    if (rc) return rc;
    const cz_data_info *in = cz_data_get_info(v->ds);
    cz_data_get_layout(v->ds, &v->lay);
    const int32_t *yc = cz_data_labels_class(v->ds);
    const float *yv = cz_data_labels_value(v->ds);
    if (yc) {
        v->counts = calloc((size_t)in->classes, sizeof *v->counts);
        if (!v->counts) return cz_error_set(err, CZ_ENOMEM, "%s: out of memory", path);
        /* cz_data_open checked every label is in 0..classes-1 */
        for (size_t i = 0; i < in->n; i++) v->counts[yc[i]]++;
    }
    v->lo = in->n ? (yc ? yc[0] : yv[0]) : 0;
    v->hi = v->lo;
    for (size_t i = 0; i < in->n; i++) {
        double y = yc ? yc[i] : yv[i];
        if (y < v->lo) v->lo = y;
        if (y > v->hi) v->hi = y;
    }
    return 0;
}

static void data_free(data_view *v)
{
    cz_data_close(v->ds);
    free(v->counts);
    memset(v, 0, sizeof *v);
}

static void emit_data(cz_emit *e, const data_view *v, const char *path)
{
    const cz_data_info *in = cz_data_get_info(v->ds);
    em_str(e, "kind", "data");
    em_str(e, "path", path);
    em_int(e, "file_bytes", (long long)v->probe.bytes);
    em_int(e, "version", v->probe.version);
    em_int(e, "n", (long long)in->n);
    em_int(e, "d", (long long)in->d);
    em_str(e, "task", cz_head_name(in->task));
    em_int(e, "classes", in->classes);
    if (v->counts) {
        em_arr(e, "class_counts");
        for (int k = 0; k < in->classes; k++) em_int(e, NULL, (long long)v->counts[k]);
        em_end(e);
    }
    em_row(e, "label_range");
    em_num(e, "min", v->lo);
    em_num(e, "max", v->hi);
    em_end(e);
    /* written by chainz prep for a training split; chainz train computes its own anyway */
    em_bool(e, "standardization_stats", cz_h5_probe_has(&v->probe, "stats"));
    em_str(e, "source", in->source[0] ? in->source : NULL);
    em_obj(e, "layout");
    em_str(e, "storage", v->lay.chunked ? "chunked" : "contiguous");
    if (v->lay.chunked) {
        em_arr(e, "chunk");
        em_int(e, NULL, (long long)v->lay.chunk[0]);
        em_int(e, NULL, (long long)v->lay.chunk[1]);
        em_end(e);
        em_str(e, "filters", v->lay.filters);
    }
    em_int(e, "matrix_bytes", (long long)v->lay.bytes);
    em_bool(e, "mapped", cz_data_is_mapped(v->ds));
    em_end(e);
    if (v->lay.chunked) {
        /* the wording of chainz train's refusal (src/train/share.c), and its fix */
        char fixed[4200], advice[9000], size[32];
        size_t n = strlen(path);
        const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
        int ext = dot && (!slash || dot > slash);
        if (ext) n = (size_t)(dot - path);
        snprintf(fixed, sizeof fixed, "%.*s-contiguous%s", (int)n, path, ext ? dot : ".h5");
        snprintf(advice, sizeof advice,
                 "/features is chunked: rows read in random order would each decompress a whole chunk "
                 "(about 100x slower), so chainz train and eval load the whole matrix (%s) once per node "
                 "into memory first, and refuse when it does not fit; rewrite the file contiguous and train on "
                 "the copy: h5repack -l /features:CONTI %s %s (Debian package hdf5-tools; rows are then "
                 "mapped from the file)", human(v->lay.bytes, size, sizeof size), path, fixed);
        em_str(e, "advice", advice);
        snprintf(advice, sizeof advice, "h5repack -l /features:CONTI %s %s", path, fixed);
        em_str(e, "fix", advice);
    }
}

/* ---- a run directory ---- */

typedef struct {
    cz_json cfg;
    int has_cfg;
    ckpt_view ck;
    cz_metrics_data md;
    int has_md;
    char cfg_err[1200], ck_err[5200], md_err[1200]; /* "" when fine or absent */
    char ck_path[4600];
    int any;    /* something of a run was found */
    int status; /* the worst exit status of the parts */
} run_view;

static int exists(const char *dir, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", dir, name);
    return access(out, F_OK) == 0;
}

static void run_read(run_view *r, const char *dir)
{
    memset(r, 0, sizeof *r);
    char p[4400];
    cz_error err = {0};
    int rc;
    if (exists(dir, "config.json", p, sizeof p)) {
        r->any = 1;
        if ((rc = cz_json_read_file(&r->cfg, p, &err))) {
            snprintf(r->cfg_err, sizeof r->cfg_err, "%s", err.msg);
            r->status = EXIT_USAGE;
        } else {
            r->has_cfg = 1;
        }
    }
    /* a run directory, or its checkpoints directory itself */
    if (exists(dir, "checkpoints/latest", p, sizeof p) || exists(dir, "latest", p, sizeof p)) {
        r->any = 1;
        rc = cz_run_resolve(dir, r->ck_path, sizeof r->ck_path, &err);
        if (!rc) rc = ckpt_read(&r->ck, r->ck_path, &err);
        if (rc) {
            snprintf(r->ck_err, sizeof r->ck_err, "%s", err.msg);
            if (status_of(rc) > r->status) r->status = status_of(rc);
        } else if (!ckpt_ok(&r->ck)) {
            ckpt_failure(&r->ck, r->ck_err, sizeof r->ck_err);
            r->status = r->status ? r->status : EXIT_USAGE;
        }
    }
    if (r->has_cfg && r->ck.has_cfg) r->ck.same_config = config_same(&r->cfg, &r->ck.cfg);
    if (exists(dir, CZ_METRICS_FILE, p, sizeof p)) {
        r->any = 1;
        if ((rc = cz_metrics_load(p, &r->md, &err))) {
            snprintf(r->md_err, sizeof r->md_err, "%s", err.msg);
            if (status_of(rc) > r->status) r->status = status_of(rc);
        } else {
            r->has_md = 1;
        }
    }
}

static void run_free(run_view *r)
{
    if (r->has_cfg) cz_json_free(&r->cfg);
    ckpt_free(&r->ck);
    cz_metrics_data_free(&r->md);
}

static void emit_part_error(cz_emit *e, const char *key, const char *msg)
{
    em_obj(e, key);
    em_str(e, "error", msg);
    em_end(e);
}

static void emit_run(cz_emit *e, const run_view *r, const char *dir)
{
    em_str(e, "kind", "run");
    em_str(e, "path", dir);
    if (r->has_cfg) emit_config(e, "config", &r->cfg);
    else if (r->cfg_err[0]) emit_part_error(e, "config", r->cfg_err);
    else em_str(e, "config", NULL);
    if (r->ck.loaded) {
        em_obj(e, "checkpoint");
        emit_ckpt(e, &r->ck);
        em_end(e);
    } else if (r->ck_err[0]) {
        emit_part_error(e, "checkpoint", r->ck_err);
    } else {
        em_str(e, "checkpoint", NULL);
    }
    if (r->has_md) {
        em_obj(e, "metrics");
        cz_inspect_emit_metrics(e, &r->md);
        em_end(e);
    } else if (r->md_err[0]) {
        emit_part_error(e, "metrics", r->md_err);
    } else {
        em_str(e, "metrics", NULL);
    }
}

/* ---- the command ---- */

static int fail(const char *msg, int status)
{
    fprintf(stderr, "chainz inspect: error: %s\n", msg);
    return status;
}

#define EXPECTED "expected a chainz checkpoint, a chainz-data set, a metrics.h5 or a run directory"

static int inspect_main(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    char msg[5200];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            inspect_usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            snprintf(msg, sizeof msg, "unknown option '%s' (see chainz inspect --help)", argv[i]);
            return fail(msg, EXIT_USAGE);
        } else if (path) {
            snprintf(msg, sizeof msg, "one FILE only, got '%s' and '%s' (see chainz inspect --help)", path, argv[i]);
            return fail(msg, EXIT_USAGE);
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        inspect_usage(stderr);
        return EXIT_USAGE;
    }
    cz_emit e;
    cz_error err = {0};
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(msg, sizeof msg, "%s: %s (%s)", path, strerror(errno), EXPECTED);
        return fail(msg, EXIT_USAGE);
    }
    if (S_ISDIR(st.st_mode)) {
        run_view r;
        run_read(&r, path);
        if (!r.any) {
            run_free(&r);
            snprintf(msg, sizeof msg, "%s: a directory without config.json, checkpoints/latest or %s: not a run "
                     "directory (%s)", path, CZ_METRICS_FILE, EXPECTED);
            return fail(msg, EXIT_USAGE);
        }
        em_begin(&e, stdout, json);
        emit_run(&e, &r, path);
        em_finish(&e);
        /* the parts that failed, where a user reading stderr sees them */
        if (r.cfg_err[0]) fail(r.cfg_err, r.status);
        if (r.ck_err[0]) fail(r.ck_err, r.status);
        if (r.md_err[0]) fail(r.md_err, r.status);
        int s = r.status;
        run_free(&r);
        return s;
    }
    cz_h5_probe p;
    int rc = cz_h5_probe_file(path, &p, &err);
    if (rc) {
        snprintf(msg, sizeof msg, "%s (%s)", err.msg, EXPECTED);
        return fail(msg, status_of(rc));
    }
    if (!p.is_hdf5) {
        snprintf(msg, sizeof msg, "%s: not an HDF5 file (%s)", path, EXPECTED);
        return fail(msg, EXIT_USAGE);
    }
    if (!strcmp(p.format, "chainz-checkpoint")) {
        ckpt_view k;
        if ((rc = ckpt_read(&k, path, &err))) return fail(err.msg, status_of(rc));
        em_begin(&e, stdout, json);
        emit_ckpt(&e, &k);
        em_finish(&e);
        int s = 0;
        if (!ckpt_ok(&k)) {
            ckpt_failure(&k, msg, sizeof msg);
            s = fail(msg, EXIT_USAGE);
        }
        ckpt_free(&k);
        return s;
    }
    if (!strcmp(p.format, "chainz-data")) {
        data_view v;
        rc = data_read(&v, path, &err);
        if (!rc) {
            em_begin(&e, stdout, json);
            emit_data(&e, &v, path);
            em_finish(&e);
        }
        data_free(&v);
        return rc ? fail(err.msg, status_of(rc)) : 0;
    }
    if (!strcmp(p.format, CZ_METRICS_FORMAT)) {
        cz_metrics_data md;
        if ((rc = cz_metrics_load(path, &md, &err))) {
            cz_metrics_data_free(&md);
            return fail(err.msg, status_of(rc));
        }
        em_begin(&e, stdout, json);
        cz_inspect_emit_metrics(&e, &md);
        em_finish(&e);
        cz_metrics_data_free(&md);
        return 0;
    }
    em_begin(&e, stdout, json);
    cz_inspect_emit_unknown(&e, &p, path);
    em_finish(&e);
    return 0;
}

int cz_cmd_inspect(int argc, char **argv)
{
    int s = inspect_main(argc, argv);
    /* a description that did not reach its reader (a full disk under `> info.json`, a closed
     * pipe) is a failure, not a success with an empty or cut file */
    if (fflush(stdout) != 0 || ferror(stdout))
        return fail("cannot write the description to standard output (a full disk, a closed pipe?)", EXIT_RUNTIME);
    return s;
}
