#include "chainz/checkpoint.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "h5util.h"

uint64_t cz_checksum_more(uint64_t h, const void *data, size_t bytes)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < bytes; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t cz_checksum(const void *data, size_t bytes)
{
    return cz_checksum_more(0xcbf29ce484222325ULL, data, bytes);
}

static uint64_t sum_str(uint64_t h, const char *s)
{
    return cz_checksum_more(h, s ? s : "", (s ? strlen(s) : 0) + (s ? 1 : 0));
}

static uint64_t sum_i64(uint64_t h, int64_t v) { return cz_checksum_more(h, &v, sizeof v); }
static uint64_t sum_f64(uint64_t h, double v) { return cz_checksum_more(h, &v, sizeof v); }

uint64_t cz_ckpt_checksum_all(const cz_checkpoint *c)
{
    const cz_model *m = &c->model;
    uint64_t h = cz_checksum(c->params, m->n_params * sizeof(float));
    if (c->mean) {
        h = cz_checksum_more(h, c->mean, m->spec.d * sizeof(float));
        h = cz_checksum_more(h, c->std, m->spec.d * sizeof(float));
        /* only when set: files written before clipping existed keep their checksum */
        if (c->clip_z > 0) h = cz_checksum_more(h, &c->clip_z, sizeof c->clip_z);
    }
    if (c->opt_state) h = cz_checksum_more(h, c->opt_state, c->opt_len * sizeof(float));
    const cz_train_state *st = &c->state;
    h = sum_i64(h, st->epoch);
    h = sum_i64(h, st->step);
    h = sum_i64(h, st->position);
    h = sum_f64(h, st->lambda);
    h = sum_f64(h, st->lr);
    h = cz_checksum_more(h, st->rng.s, sizeof st->rng.s);
    h = cz_checksum_more(h, st->epoch_sums, sizeof st->epoch_sums);
    /* the histograms in the order of their names: a file lists its groups alphabetically */
    const char *prev = NULL;
    for (int i = 0; i < c->n_tau; i++) {
        int k = -1;
        for (int j = 0; j < c->n_tau; j++)
            if ((!prev || strcmp(c->tau_names[j], prev) > 0) && (k < 0 || strcmp(c->tau_names[j], c->tau_names[k]) < 0))
                k = j;
        if (k < 0) break;
        prev = c->tau_names[k];
        h = sum_str(h, c->tau_names[k]);
        h = cz_checksum_more(h, c->tau[k].counts, CZ_HIST_BINS * sizeof(uint64_t));
        h = cz_checksum_more(h, &c->tau[k].sum, sizeof c->tau[k].sum);
        h = sum_i64(h, (int64_t)c->tau[k].count);
        h = sum_f64(h, c->tau[k].max);
    }
    const cz_data_identity *di = &c->data;
    h = sum_i64(h, (int64_t)di->bytes);
    h = sum_i64(h, (int64_t)di->n);
    h = sum_i64(h, (int64_t)di->d);
    h = sum_i64(h, di->classes);
    h = sum_i64(h, (int64_t)di->labels_checksum);
    h = sum_i64(h, (int64_t)di->rows_checksum);
    h = sum_str(h, c->blas_version);
    h = sum_str(h, c->blas_kernels);
    h = sum_i64(h, c->threads);
    h = sum_i64(h, st->world_size);
    return sum_str(h, c->config_json ? c->config_json : "{}");
}

/* checksum_model: FNV-1a 64 of a canonical text of the spec, the attributes that change what
 * the parameters compute without changing their count (an activation, the head, dropout) */
static uint64_t spec_checksum(const cz_model_spec *s)
{
    char t[1024];
    int w = snprintf(t, sizeof t, "d=%zu;layers=", s->d);
    for (int l = 0; l < s->n_hidden; l++) w += snprintf(t + w, sizeof t - (size_t)w, "%s%zu", l ? "," : "", s->width[l]);
    w += snprintf(t + w, sizeof t - (size_t)w, ";act=");
    for (int l = 0; l < s->n_hidden; l++)
        w += snprintf(t + w, sizeof t - (size_t)w, "%s%s", l ? "," : "", cz_act_name(s->act[l]));
    w += snprintf(t + w, sizeof t - (size_t)w, ";head=%s;classes=%d;dropout=%.17g", cz_head_name(s->head),
                  s->classes, s->dropout);
    return cz_checksum(t, strlen(t));
}

static void hex64(char *buf, size_t len, uint64_t v) { snprintf(buf, len, "%016llx", (unsigned long long)v); }

static int parse_hex64(const char *s, uint64_t *v)
{
    char *end;
    *v = (uint64_t)strtoull(s, &end, 16);
    return *s && !*end ? 0 : -1;
}

static const char *moment_names(cz_optim_kind k, int i)
{
    static const char *adam[] = {"m", "v"}, *sgd[] = {"momentum"};
    return k == CZ_OPT_ADAMW ? adam[i] : sgd[i];
}

static hid_t make_group(hid_t loc, const char *name)
{
    return H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
}

/* Writes (or, with read = 1, reads) one flat buffer as the per-layer tree under grp; read
 * with buf NULL only checks that every dataset has its size. */
static int model_tree(hid_t grp, const cz_model *m, float *buf, int read, const char *file,
                      cz_error *err)
{
    int rc = 0;
    for (int l = 0; l <= m->n_hidden && !rc; l++) {
        const cz_layer *L = &m->layer[l];
        char name[32];
        if (l < m->n_hidden) snprintf(name, sizeof name, "layer_%d", l + 1);
        else snprintf(name, sizeof name, "output");
        hid_t g = read ? H5Gopen2(grp, name, H5P_DEFAULT) : make_group(grp, name);
        if (g < 0) return cz_error_set(err, read ? CZ_EINVAL : CZ_EIO, "%s: group %s missing", file, name);
        size_t wd[2] = {L->n_out, L->n_in}, bd[1] = {L->n_out}, pd[2] = {L->n_out, 4};
        struct {
            const char *name;
            size_t off, count;
            int rank;
            size_t *dims;
        } part[3] = {{"weight", L->w, L->n_out * L->n_in, 2, wd},
                     {"bias", L->b, L->n_out, 1, bd},
                     {"poly", L->poly, 4 * L->n_out, 2, pd}};
        for (int k = 0; k < 3 && !rc; k++) {
            if (part[k].off == CZ_NONE) continue;
            if (read) {
                int r = cz_h5_read(g, part[k].name, H5T_NATIVE_FLOAT, part[k].count,
                                   buf ? buf + part[k].off : NULL, file, err);
                if (r == 1) rc = cz_error_set(err, CZ_EINVAL, "%s: %s/%s missing", file, name, part[k].name);
                else if (r) rc = r;
            } else if (cz_h5_write(g, part[k].name, H5T_NATIVE_FLOAT, part[k].rank, part[k].dims,
                                   buf + part[k].off)) {
                rc = cz_error_set(err, CZ_EIO, "%s: cannot write %s/%s", file, name, part[k].name);
            }
        }
        if (!read && !rc) {
            cz_h5_set_str(g, "activation", cz_act_name(L->act));
            cz_h5_set_str(g, "meaning", l < m->n_hidden
                                            ? "h = act(weight @ h_prev + bias); poly[i] = (a0,a1,a2,a3)"
                                            : "f = weight @ h_H + bias");
        }
        H5Gclose(g);
    }
    return rc;
}

static void join_widths(const cz_model *m, char *layers, size_t ll, char *acts, size_t al)
{
    layers[0] = acts[0] = 0;
    for (int l = 0; l < m->n_hidden; l++) {
        size_t a = strlen(layers), b = strlen(acts);
        snprintf(layers + a, ll - a, "%s%zu", l ? "," : "", m->spec.width[l]);
        snprintf(acts + b, al - b, "%s%s", l ? "," : "", cz_act_name(m->spec.act[l]));
    }
}

/* Testing aid (docs/DESIGN.md section 6): CHAINZ_FAULT_KILL_IN_CKPT=N kills this process
 * with SIGKILL in the middle of its N-th checkpoint write, after the model is on disk and
 * before the file is complete, to prove that a crash there loses nothing. */
static int fault_kill_now(void)
{
    static long count = 0;
    const char *s = getenv("CHAINZ_FAULT_KILL_IN_CKPT");
    return s && ++count == atol(s);
}

int cz_ckpt_save(const char *path, const cz_checkpoint *c, cz_error *err)
{
    cz_h5_quiet();
    cz_h5_clear_cause();
    char tmp[4200];
    cz_tmp_name(tmp, sizeof tmp, path);
    /* built in memory, then written with write(2): a full disk is an ordinary error here,
     * never a half-flushed HDF5 file that its exit handler would crash on */
    hid_t f = cz_h5_create_mem(tmp);
    if (f < 0) {
        const char *why = cz_h5_cause();
        unlink(tmp);
        return cz_error_set(err, CZ_EIO, "%s: cannot create %s%s%s", path, tmp, why[0] ? ": " : "", why);
    }
    const cz_model *m = &c->model;
    int rc = 0;
    hid_t g = make_group(f, "model");
    rc = g < 0 ? cz_error_set(err, CZ_EIO, "%s: cannot create /model in %s", path, tmp)
               : model_tree(g, m, c->params, 0, path, err);
    if (!rc && c->mean) {
        hid_t gi = make_group(g, "input");
        size_t dd[1] = {m->spec.d};
        rc = cz_h5_write(gi, "mean", H5T_NATIVE_FLOAT, 1, dd, c->mean) |
             cz_h5_write(gi, "std", H5T_NATIVE_FLOAT, 1, dd, c->std) |
             cz_h5_set_double(gi, "clip_z", c->clip_z) |
             cz_h5_set_str(gi, "meaning", "x_used = clamp((x_file - mean) / std, -clip_z, clip_z) (clip_z 0: "
                           "no clamp), statistics of the training set");
        if (rc) rc = cz_error_set(err, CZ_EIO, "%s: cannot write /model/input", path);
        H5Gclose(gi);
    }
    if (g >= 0) H5Gclose(g);
    if (fault_kill_now()) { /* a partial file on disk, as a crash in write(2) leaves it */
        cz_h5_save_mem(f, tmp, 1, err);
        raise(SIGKILL);
    }
    if (!rc && c->opt_state) {
        hid_t go = make_group(f, "optimizer");
        if (go < 0 || cz_h5_set_str(go, "kind", cz_optim_name(c->optim)) || cz_h5_set_long(go, "step", c->state.step))
            rc = cz_error_set(err, CZ_EIO, "%s: cannot write /optimizer", path);
        size_t moments = c->opt_len / m->n_params;
        for (size_t k = 0; k < moments && !rc; k++) {
            hid_t gm = make_group(go, moment_names(c->optim, (int)k));
            rc = model_tree(gm, m, c->opt_state + k * m->n_params, 0, path, err);
            H5Gclose(gm);
        }
        H5Gclose(go);
    }
    if (!rc) {
        hid_t gs = make_group(f, "state");
        size_t rd[1] = {4};
        size_t ed[1] = {5};
        /* a checkpoint without its state must never be published: every write is checked */
        rc = cz_h5_write(gs, "rng", H5T_NATIVE_UINT64, 1, rd, c->state.rng.s) |
             cz_h5_write(gs, "epoch_sums", H5T_NATIVE_DOUBLE, 1, ed, c->state.epoch_sums) |
             cz_h5_set_long(gs, "epoch", c->state.epoch) | cz_h5_set_long(gs, "step", c->state.step) |
             cz_h5_set_long(gs, "position", c->state.position) |
             cz_h5_set_double(gs, "lambda", c->state.lambda) | cz_h5_set_double(gs, "lr", c->state.lr) |
             cz_h5_set_str(gs, "meaning", "epoch in progress (0-based), optimizer steps done, batches done in the epoch") |
             cz_h5_set_str(gs, "epoch_sums_meaning", "running sums of the epoch: task loss, dreg, correct, abs error, samples");
        if (rc) rc = cz_error_set(err, CZ_EIO, "%s: cannot write /state", path);
        for (int i = 0; !rc && i < c->n_tau; i++) {
            char name[128];
            snprintf(name, sizeof name, "tau_%s", c->tau_names[i]);
            for (char *p = name; *p; p++)
                if (*p == '/') *p = '_';
            hid_t gt = make_group(gs, name);
            size_t bd[1] = {CZ_HIST_BINS}, sd[1] = {2};
            uint64_t sum[2];
            memcpy(sum, &c->tau[i].sum, sizeof sum);
            rc = gt < 0 ? CZ_EIO
                        : cz_h5_write(gt, "counts", H5T_NATIVE_UINT64, 1, bd, c->tau[i].counts) |
                              cz_h5_write(gt, "sum", H5T_NATIVE_UINT64, 1, sd, sum) |
                              cz_h5_set_double(gt, "count", (double)c->tau[i].count) |
                              cz_h5_set_double(gt, "max", c->tau[i].max) |
                              cz_h5_set_str(gt, "family", c->tau_names[i]);
            if (rc) rc = cz_error_set(err, CZ_EIO, "%s: cannot write /state/%s", path, name);
            if (gt >= 0) H5Gclose(gt);
        }
        H5Gclose(gs);
    }
    if (!rc) {
        char layers[256], acts[256], sum[32], when[64];
        join_widths(m, layers, sizeof layers, acts, sizeof acts);
        snprintf(sum, sizeof sum, "%016llx",
                 (unsigned long long)cz_checksum(c->params, m->n_params * sizeof(float)));
        time_t now = time(NULL);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
        rc = cz_h5_set_str(f, "format", "chainz-checkpoint") | cz_h5_set_str(f, "config", c->config_json ? c->config_json : "{}") |
             cz_h5_set_long(f, "d", (long)m->spec.d) | cz_h5_set_str(f, "layers", layers) |
             cz_h5_set_str(f, "act", acts) | cz_h5_set_str(f, "head", cz_head_name(m->spec.head)) |
             cz_h5_set_long(f, "classes", m->spec.classes) |
             cz_h5_set_double(f, "dropout", m->spec.dropout) |
             cz_h5_set_long(f, "world_size", c->state.world_size) |
             cz_h5_set_str(f, "checksum", sum) |
             cz_h5_set_str(f, "checksum_meaning", "FNV-1a 64 of the flat float32 parameter buffer") |
             cz_h5_set_str(f, "chainz_version", c->version) | cz_h5_set_str(f, "time", when) |
             cz_h5_set_str(f, "slurm", c->state.slurm);
        char all[32], ls[32], rs[32], ms[32];
        hex64(all, sizeof all, cz_ckpt_checksum_all(c));
        hex64(ms, sizeof ms, spec_checksum(&m->spec));
        hex64(ls, sizeof ls, c->data.labels_checksum);
        hex64(rs, sizeof rs, c->data.rows_checksum);
        rc = rc | cz_h5_set_long(f, "version", 2) | cz_h5_set_str(f, "checksum_all", all) |
             cz_h5_set_str(f, "checksum_all_meaning",
                           "FNV-1a 64 over everything a resume reads (docs/DESIGN.md, checkpoints)") |
             cz_h5_set_str(f, "checksum_model", ms) |
             cz_h5_set_str(f, "checksum_model_meaning",
                           "FNV-1a 64 of the text d=..;layers=..;act=..;head=..;classes=..;dropout=%.17g") |
             cz_h5_set_long(f, "data_bytes", (long)c->data.bytes) | cz_h5_set_long(f, "data_n", (long)c->data.n) |
             cz_h5_set_long(f, "data_d", (long)c->data.d) | cz_h5_set_long(f, "data_classes", (long)c->data.classes) |
             cz_h5_set_str(f, "data_labels_checksum", ls) | cz_h5_set_str(f, "data_rows_checksum", rs) |
             cz_h5_set_str(f, "blas_version", c->blas_version) |
             cz_h5_set_str(f, "blas_kernels", c->blas_kernels) | cz_h5_set_long(f, "threads", c->threads);
        if (rc) rc = cz_error_set(err, CZ_EIO, "%s: cannot write attributes", path);
    }
    if (rc) H5Fclose(f);
    else rc = cz_h5_save_mem(f, tmp, 0, err);
    if (rc == CZ_EIO && cz_h5_cause()[0] && !strstr(err->msg, cz_h5_cause())) {
        size_t w = strlen(err->msg);
        snprintf(err->msg + w, sizeof err->msg - w, ": %s", cz_h5_cause());
    }
    if (!rc) rc = cz_file_commit(tmp, path, err);
    if (rc) unlink(tmp);
    return rc;
}

void cz_ckpt_free(cz_checkpoint *c)
{
    if (!c) return;
    free(c->params);
    free(c->opt_state);
    free(c->mean);
    free(c->std);
    free(c->config_json);
    free(c->tau);
    free(c->tau_names);
    memset(c, 0, sizeof *c);
}

/* checksum_model (absent in files written before it existed: nothing to verify) and each
 * hidden layer's own activation attribute, which other readers (h5py, ONNX export checks)
 * take instead of the root act: both must agree with the spec parsed from the root. */
static int check_model_attrs(hid_t f, const cz_model *m, cz_ckpt_verdict *v, const char *path, cz_error *err)
{
    char stored[32] = "", now[32], why[160] = "";
    hex64(now, sizeof now, spec_checksum(&m->spec));
    int r = H5Aexists(f, "checksum_model") > 0 ? cz_h5_attr_str(f, "checksum_model", stored, sizeof stored) : 1;
    int ok = r == 1 ? -1 : !r && !strcmp(stored, now);
    for (int l = 0; l < m->n_hidden && ok != 0; l++) {
        char name[32], act[32] = "";
        snprintf(name, sizeof name, "model/layer_%d", l + 1);
        hid_t g = H5Gopen2(f, name, H5P_DEFAULT);
        if (g < 0) break; /* cannot happen: the structure was read */
        if (H5Aexists(g, "activation") > 0 &&
            (cz_h5_attr_str(g, "activation", act, sizeof act) || strcmp(act, cz_act_name(m->spec.act[l])))) {
            ok = 0;
            snprintf(why, sizeof why, " (/%s says activation '%s', the root act '%s')", name, act,
                     cz_act_name(m->spec.act[l]));
        }
        H5Gclose(g);
    }
    if (v) {
        v->model_ok = ok;
        snprintf(v->model_stored, sizeof v->model_stored, "%s", r == 1 ? "" : stored);
        snprintf(v->model_computed, sizeof v->model_computed, "%s", now);
        return 0;
    }
    if (ok) return 0;
    return cz_error_set(err, CZ_EINVAL, "%s: the model's architecture attributes (activations, head, ...) do not match "
                        "checksum_model%s%s%s%s%s (altered or corrupted)", path, r == 1 ? "" : ": computed ", r == 1 ? "" : now,
                        r == 1 ? "" : ", stored ", r == 1 ? "" : stored, why);
}

/* v == NULL: a checksum mismatch fails the load; otherwise it is recorded in *v. */
static int load(const char *path, cz_checkpoint *c, cz_ckpt_verdict *v, cz_error *err)
{
    memset(c, 0, sizeof *c);
    if (v) *v = (cz_ckpt_verdict){.params_ok = 1, .all_ok = -1, .model_ok = -1};
    cz_h5_quiet();
    /* a FIFO or a device would block open() inside H5Fopen: only a regular file is read */
    struct stat sb;
    if (stat(path, &sb) != 0) return cz_error_set(err, CZ_EINVAL, "%s: cannot read the file: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return cz_error_set(err, CZ_EINVAL, "%s: not a regular file (%s): not a checkpoint", path,
                            S_ISFIFO(sb.st_mode) ? "a FIFO" : S_ISDIR(sb.st_mode) ? "a directory" : "a device or socket");
    if (access(path, R_OK) != 0) return cz_error_set(err, CZ_EINVAL, "%s: cannot read the file", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return cz_error_set(err, CZ_EINVAL, "%s: not an HDF5 file (truncated or damaged?)", path);
    int rc = 0;
    char fmt[64], layers[256], acts[256], head[32], sum[32];
    long version = 0, d = 0, classes = 0;
    double dropout = 0;
    if (cz_h5_attr_str(f, "format", fmt, sizeof fmt) || strcmp(fmt, "chainz-checkpoint")) {
        rc = cz_error_set(err, CZ_EINVAL, "%s: format is '%s', expected 'chainz-checkpoint'", path, fmt);
        goto out;
    }
    if (cz_h5_attr_long(f, "version", &version) || version < 1 || version > 2) {
        rc = cz_error_set(err, CZ_EINVAL, "%s: checkpoint format version %ld, this chainz reads versions 1 and 2%s",
                          path, version, version > 2 ? " (written by a newer chainz)" : "");
        goto out;
    }
    c->format_version = version;
    /* a version-1 file never has the version-2 attributes: the version was edited, and
     * with it the check of checksum_all would be skipped */
    static const char *v2_only[] = {"checksum_all", "data_bytes", "data_n", "data_labels_checksum",
                                    "data_rows_checksum", "blas_version", "blas_kernels", "threads"};
    for (size_t i = 0; version == 1 && i < sizeof v2_only / sizeof *v2_only; i++)
        if (H5Aexists(f, v2_only[i]) > 0) {
            rc = cz_error_set(err, CZ_EINVAL, "%s: says format version 1 but has the version-2 attribute %s "
                              "(altered or corrupted)", path, v2_only[i]);
            goto out;
        }
    if (cz_h5_attr_long(f, "d", &d) || cz_h5_attr_str(f, "layers", layers, sizeof layers) ||
        cz_h5_attr_str(f, "act", acts, sizeof acts) || cz_h5_attr_str(f, "head", head, sizeof head) ||
        cz_h5_attr_long(f, "classes", &classes) || cz_h5_attr_double(f, "dropout", &dropout) ||
        cz_h5_attr_str(f, "checksum", sum, sizeof sum)) {
        rc = cz_error_set(err, CZ_EINVAL, "%s: model attributes (d, layers, act, head, classes, dropout, checksum) incomplete", path);
        goto out;
    }
    if (classes < 0 || classes > INT_MAX) { /* an int: a larger value would wrap to a small one */
        rc = cz_error_set(err, CZ_EINVAL, "%s: attribute classes is %ld (damaged?)", path, classes);
        goto out;
    }
    cz_model_spec s = {.d = (size_t)d, .classes = (int)classes, .dropout = dropout};
    if (cz_head_parse(head, &s.head)) {
        rc = cz_error_set(err, CZ_EINVAL, "%s: unknown head '%s'", path, head);
        goto out;
    }
    char *save = NULL;
    for (char *t = strtok_r(layers, ",", &save); t && s.n_hidden < CZ_MAX_HIDDEN; t = strtok_r(NULL, ",", &save))
        s.width[s.n_hidden++] = (size_t)strtoul(t, NULL, 10);
    int na = 0;
    for (char *t = strtok_r(acts, ",", &save); t && na < CZ_MAX_HIDDEN; t = strtok_r(NULL, ",", &save))
        if (cz_act_parse(t, &s.act[na++])) {
            rc = cz_error_set(err, CZ_EINVAL, "%s: unknown activation '%s'", path, t);
            goto out;
        }
    if (na != s.n_hidden) {
        rc = cz_error_set(err, CZ_EINVAL, "%s: %d activations for %d layers", path, na, s.n_hidden);
        goto out;
    }
    if ((rc = cz_model_init(&c->model, &s, err))) goto out;
    size_t n = c->model.n_params;
    hid_t g = H5Gopen2(f, "model", H5P_DEFAULT);
    if (g < 0) {
        rc = cz_error_set(err, CZ_EINVAL, "%s: group /model missing", path);
        goto out;
    }
    /* the datasets' sizes before any allocation: attributes that promise more parameters
     * than the file holds (a damaged d or layers) are named, not an "out of memory" */
    rc = model_tree(g, &c->model, NULL, 1, path, err);
    if (!rc && !(c->params = malloc(n * sizeof(float)))) rc = cz_error_set(err, CZ_ENOMEM, "%s: out of memory", path);
    if (!rc) rc = model_tree(g, &c->model, c->params, 1, path, err);
    if (!rc && H5Lexists(g, "input", H5P_DEFAULT) > 0) {
        c->mean = malloc(s.d * sizeof(float));
        c->std = malloc(s.d * sizeof(float));
        hid_t gi = H5Gopen2(g, "input", H5P_DEFAULT);
        if (!c->mean || !c->std) rc = cz_error_set(err, CZ_ENOMEM, "%s: out of memory", path);
        else if (cz_h5_read(gi, "mean", H5T_NATIVE_FLOAT, s.d, c->mean, path, err) ||
                 cz_h5_read(gi, "std", H5T_NATIVE_FLOAT, s.d, c->std, path, err))
            rc = cz_error_set(err, CZ_EINVAL, "%s: /model/input/mean or std unreadable", path);
        /* every served row is divided by std: format version 1 has no checksum over them */
        for (size_t j = 0; !rc && j < s.d; j++)
            if (!isfinite(c->mean[j]) || !isfinite(c->std[j]) || !(c->std[j] > 0))
                rc = cz_error_set(err, CZ_EINVAL, "%s: /model/input feature %zu has mean %g, std %g: expected finite "
                                  "values and std > 0 (damaged?)", path, j, c->mean[j], c->std[j]);
        /* absent in files written before clipping existed: no clipping */
        if (!rc && (cz_h5_attr_double(gi, "clip_z", &c->clip_z) < 0 || !(c->clip_z >= 0 && c->clip_z <= 1e6)))
            rc = cz_error_set(err, CZ_EINVAL, "%s: /model/input clip_z attribute unreadable or not in [0, 1e6]", path);
        H5Gclose(gi);
    }
    H5Gclose(g);
    /* after the structure: a damaged d or layers is named by the datasets' sizes */
    if (rc || (rc = check_model_attrs(f, &c->model, v, path, err))) goto out;
    char want[32];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)cz_checksum(c->params, n * sizeof(float)));
    if (v) {
        v->params_ok = !strcmp(want, sum);
        snprintf(v->params_stored, sizeof v->params_stored, "%s", sum);
        snprintf(v->params_computed, sizeof v->params_computed, "%s", want);
    } else if (strcmp(want, sum)) {
        rc = cz_error_set(err, CZ_EINVAL, "%s: parameter checksum %s does not match the stored %s (corrupted)",
                          path, want, sum);
        goto out;
    }
    if (H5Lexists(f, "optimizer", H5P_DEFAULT) > 0) {
        hid_t go = H5Gopen2(f, "optimizer", H5P_DEFAULT);
        char kind[32];
        cz_h5_attr_str(go, "kind", kind, sizeof kind);
        if (cz_optim_parse(kind, &c->optim)) {
            rc = cz_error_set(err, CZ_EINVAL, "%s: unknown optimizer '%s'", path, kind);
        } else {
            cz_optim_spec os = {.kind = c->optim};
            size_t moments = cz_optim_state_len(&os);
            c->opt_len = moments * n;
            c->opt_state = malloc(c->opt_len * sizeof(float));
            if (!c->opt_state) rc = cz_error_set(err, CZ_ENOMEM, "%s: out of memory", path);
            for (size_t k = 0; k < moments && !rc; k++) {
                hid_t gm = H5Gopen2(go, moment_names(c->optim, (int)k), H5P_DEFAULT);
                if (gm < 0) rc = cz_error_set(err, CZ_EINVAL, "%s: optimizer moment %s missing", path,
                                              moment_names(c->optim, (int)k));
                else {
                    rc = model_tree(gm, &c->model, c->opt_state + k * n, 1, path, err);
                    H5Gclose(gm);
                }
            }
        }
        H5Gclose(go);
        if (rc) goto out;
    }
    if (H5Lexists(f, "state", H5P_DEFAULT) > 0) {
        hid_t gs = H5Gopen2(f, "state", H5P_DEFAULT);
        if (cz_h5_read(gs, "rng", H5T_NATIVE_UINT64, 4, c->state.rng.s, path, err) ||
            cz_h5_read(gs, "epoch_sums", H5T_NATIVE_DOUBLE, 5, c->state.epoch_sums, path, err) ||
            cz_h5_attr_long(gs, "epoch", &c->state.epoch) || cz_h5_attr_long(gs, "step", &c->state.step) ||
            cz_h5_attr_long(gs, "position", &c->state.position) ||
            cz_h5_attr_double(gs, "lambda", &c->state.lambda) || cz_h5_attr_double(gs, "lr", &c->state.lr))
            rc = cz_error_set(err, CZ_EINVAL, "%s: /state incomplete", path);
        /* the partial histograms: every subgroup tau_* of /state */
        hsize_t nobj = 0;
        H5Gget_num_objs(gs, &nobj);
        for (hsize_t i = 0; !rc && i < nobj; i++) {
            char name[128];
            H5Gget_objname_by_idx(gs, i, name, sizeof name);
            if (strncmp(name, "tau_", 4)) continue;
            int k = c->n_tau;
            cz_hist *th = realloc(c->tau, (size_t)(k + 1) * sizeof *th);
            if (th) c->tau = th;
            char (*tn)[64] = realloc(c->tau_names, (size_t)(k + 1) * sizeof *tn);
            if (tn) c->tau_names = tn;
            if (!th || !tn) {
                rc = cz_error_set(err, CZ_ENOMEM, "%s: out of memory", path);
                break;
            }
            hid_t gt = H5Gopen2(gs, name, H5P_DEFAULT);
            uint64_t sum[2];
            double count = 0;
            cz_hist_reset(&c->tau[k]);
            if (cz_h5_read(gt, "counts", H5T_NATIVE_UINT64, CZ_HIST_BINS, c->tau[k].counts, path, err) ||
                cz_h5_read(gt, "sum", H5T_NATIVE_UINT64, 2, sum, path, err) ||
                cz_h5_attr_double(gt, "count", &count) || cz_h5_attr_double(gt, "max", &c->tau[k].max) ||
                cz_h5_attr_str(gt, "family", c->tau_names[k], sizeof c->tau_names[k]))
                rc = cz_error_set(err, CZ_EINVAL, "%s: /state/%s incomplete", path, name);
            memcpy(&c->tau[k].sum, sum, sizeof sum);
            c->tau[k].count = (uint64_t)count;
            c->n_tau = k + 1;
            H5Gclose(gt);
        }
        H5Gclose(gs);
        if (rc) goto out;
    }
    long ws = 0;
    cz_h5_attr_long(f, "world_size", &ws);
    c->state.world_size = (int)ws;
    cz_h5_attr_str(f, "slurm", c->state.slurm, sizeof c->state.slurm);
    cz_h5_attr_str(f, "chainz_version", c->version, sizeof c->version);
    char cfg[65536];
    cz_h5_attr_str(f, "config", cfg, sizeof cfg);
    c->config_json = strdup(cfg);
    if (!c->config_json) {
        rc = cz_error_set(err, CZ_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    if (version >= 2) {
        char all[32], ls[32], rs[32];
        long bytes = 0, dn = 0, dd = 0, dc = 0, th = 0;
        uint64_t stored;
        if (cz_h5_attr_str(f, "checksum_all", all, sizeof all) || parse_hex64(all, &stored) ||
            cz_h5_attr_long(f, "data_bytes", &bytes) || cz_h5_attr_long(f, "data_n", &dn) ||
            cz_h5_attr_long(f, "data_d", &dd) || cz_h5_attr_long(f, "data_classes", &dc) ||
            cz_h5_attr_str(f, "data_labels_checksum", ls, sizeof ls) ||
            parse_hex64(ls, &c->data.labels_checksum) ||
            cz_h5_attr_str(f, "data_rows_checksum", rs, sizeof rs) || parse_hex64(rs, &c->data.rows_checksum) ||
            cz_h5_attr_str(f, "blas_version", c->blas_version, sizeof c->blas_version) < 0 ||
            cz_h5_attr_str(f, "blas_kernels", c->blas_kernels, sizeof c->blas_kernels) < 0 ||
            cz_h5_attr_long(f, "threads", &th)) {
            rc = cz_error_set(err, CZ_EINVAL, "%s: version 2 attributes (checksum_all, data_*, blas_*, threads) "
                              "incomplete", path);
            goto out;
        }
        c->data = (cz_data_identity){.bytes = (uint64_t)bytes, .n = (uint64_t)dn, .d = (uint64_t)dd,
                                     .classes = dc, .labels_checksum = c->data.labels_checksum,
                                     .rows_checksum = c->data.rows_checksum};
        c->threads = (int)th;
        c->has_identity = 1;
        uint64_t now = cz_ckpt_checksum_all(c);
        if (v) {
            v->all_ok = now == stored;
            snprintf(v->all_stored, sizeof v->all_stored, "%s", all);
            hex64(v->all_computed, sizeof v->all_computed, now);
        } else if (now != stored) {
            char got[32];
            hex64(got, sizeof got, now);
            rc = cz_error_set(err, CZ_EINVAL, "%s: checksum %s of the checkpoint's contents does not match the "
                              "stored %s (corrupted)", path, got, all);
            goto out;
        }
    }
out:
    H5Fclose(f);
    if (rc) cz_ckpt_free(c);
    /* the file opened as a chainz checkpoint: a dataset that cannot be opened or read (a
     * group or a dangling link in its place, a damaged header) is a damaged file, an input
     * error like a truncated one, not a failure of this machine */
    if (rc == CZ_EIO) {
        rc = CZ_EINVAL;
        if (err) err->code = rc;
    }
    return rc;
}

int cz_ckpt_load(const char *path, cz_checkpoint *c, cz_error *err)
{
    return load(path, c, NULL, err);
}

int cz_ckpt_load_unverified(const char *path, cz_checkpoint *c, cz_ckpt_verdict *v, cz_error *err)
{
    return load(path, c, v, err);
}
