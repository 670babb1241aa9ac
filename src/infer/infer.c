/* libchainz_infer (include/chainz/infer.h, docs/DESIGN.md section 7): a checkpoint loaded
 * once into an immutable model, sessions that own an engine workspace each, and the
 * prediction with its label-free norms.
 *
 * Hidden state, and why it is safe: BLIS is initialised once (pthread_once) and its
 * engine runtime objects are only read afterwards; the Gram QR cache lives in each
 * session's workspace and is filled once, at session creation, under a mutex, because
 * LAPACK's QR changes BLIS's process-wide thread count while it runs; HDF5 (serial build,
 * not thread-safe) is entered under the same mutex. Nothing else is global. */
#include "chainz/infer.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chainz/checkpoint.h"
#include "chainz/engine.h"
#include "chainz/loss.h"
#include "chainz/standardize.h"
#include "infer_internal.h"

/* A session's Jacobian stream takes at most this much (CHAINZ_INFER_STREAM_MB overrides it,
 * for a service short of memory); larger batches go through it in chunks of rows. */
#define CZI_STREAM_MB 128.0

static size_t stream_budget(void)
{
    const char *e = getenv("CHAINZ_INFER_STREAM_MB");
    char *end;
    double mb = e ? strtod(e, &end) : CZI_STREAM_MB;
    if (!e || end == e || *end || !(mb >= 0) || mb > 1e9) mb = CZI_STREAM_MB;
    return (size_t)(mb * 1048576.0);
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static cz_error init_err;
static int init_rc;
static pthread_mutex_t lib_lock = PTHREAD_MUTEX_INITIALIZER;

static void init_engine(void) { init_rc = cz_engine_init(NULL, &init_err); }

static int engine_ready(czi_error *err)
{
    pthread_once(&init_once, init_engine);
    if (init_rc) return cz_infer_fail(err, init_rc, "chainz_infer: BLIS initialisation failed: %s", init_err.msg);
    return 0;
}

int cz_infer_fail(czi_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

static int from_cz(czi_error *err, const cz_error *e)
{
    return cz_infer_fail(err, e->code ? e->code : CZ_EINVAL, "%s", e->msg);
}

/* A run directory (its checkpoints/latest, or a checkpoints directory's latest), a `latest`
 * pointer file (one line "ckpt-<step>.h5", relative to its directory) or a checkpoint. */
static int resolve(const char *path, char *out, size_t len, czi_error *err)
{
    struct stat st;
    char ptr[4400];
    if (!path || !path[0]) return cz_infer_fail(err, CZ_EINVAL, "czi_model_load: empty path");
    if (strlen(path) > 4000) return cz_infer_fail(err, CZ_EINVAL, "czi_model_load: path too long");
    if (stat(path, &st) != 0) /* missing, a symbolic link loop, no permission: the system says which */
        return cz_infer_fail(err, CZ_EINVAL, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        snprintf(ptr, sizeof ptr, "%s/checkpoints/latest", path);
        if (stat(ptr, &st) != 0) snprintf(ptr, sizeof ptr, "%s/latest", path);
        if (stat(ptr, &st) != 0)
            return cz_infer_fail(err, CZ_EINVAL, "%s: a directory without checkpoints/latest (give a run directory "
                            "or a checkpoint file)", path);
    } else {
        snprintf(ptr, sizeof ptr, "%s", path);
    }
    if (!S_ISREG(st.st_mode)) return cz_infer_fail(err, CZ_EINVAL, "%s: not a regular file", ptr);
    /* an HDF5 checkpoint starts with its signature; a pointer is one short line of text */
    char buf[300] = "";
    FILE *f = fopen(ptr, "rb");
    if (!f) return cz_infer_fail(err, CZ_EIO, "%s: cannot open", ptr);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    if (n < sizeof buf - 1 && !strncmp(buf, "ckpt-", 5)) {
        buf[strcspn(buf, "\r\n")] = 0;
        if (strchr(buf, '/')) return cz_infer_fail(err, CZ_EINVAL, "%s: names '%s', not a checkpoint of its directory", ptr, buf);
        const char *slash = strrchr(ptr, '/');
        int dl = slash ? (int)(slash - ptr) : 1;
        snprintf(out, len, "%.*s/%s", dl, slash ? ptr : ".", buf);
        return 0;
    }
    snprintf(out, len, "%s", ptr);
    return 0;
}

czi_model *czi_model_load(const char *path, czi_error *err)
{
    if (engine_ready(err)) return NULL;
    char file[4400];
    if (resolve(path, file, sizeof file, err)) return NULL;
    czi_model *m = calloc(1, sizeof *m);
    if (!m) {
        cz_infer_fail(err, CZ_ENOMEM, "czi_model_load: out of memory");
        return NULL;
    }
    cz_checkpoint c;
    memset(&c, 0, sizeof c);
    cz_error e = {0};
    pthread_mutex_lock(&lib_lock); /* HDF5 is not thread-safe */
    int rc = cz_ckpt_load(file, &c, &e);
    pthread_mutex_unlock(&lib_lock);
    if (rc) {
        from_cz(err, &e);
        cz_ckpt_free(&c);
        free(m);
        return NULL;
    }
    /* keep what serving needs; the optimizer moments and histograms go */
    m->m = c.model;
    m->params = c.params;
    m->mean = c.mean;
    m->std = c.std;
    c.params = NULL;
    c.mean = c.std = NULL;
    m->clip = m->mean ? (float)c.clip_z : 0;
    snprintf(m->path, sizeof m->path, "%s", file);
    czi_info *in = &m->info;
    in->d = m->m.spec.d;
    in->n_hidden = m->m.n_hidden;
    for (int l = 0; l < m->m.n_hidden; l++) {
        in->width[l] = m->m.layer[l].n_out;
        snprintf(in->act[l], sizeof in->act[l], "%s", cz_act_name(m->m.layer[l].act));
    }
    in->head = (czi_head)m->m.spec.head;
    in->classes = m->m.spec.head == CZ_HEAD_REGRESS ? 1 : m->m.spec.classes;
    in->n_params = m->m.n_params;
    in->standardized = m->mean != NULL;
    in->clip_z = m->clip;
    in->epoch = c.state.epoch;
    in->step = c.state.step;
    cz_ckpt_free(&c);
    /* the norms' stream: exact, or Gram at width n_1 when the first layer is narrower than
     * the input (the same norms, cheaper); never probes, which only estimate them */
    m->ss.mode = m->m.layer[0].n_out < m->m.spec.d ? CZ_STREAM_GRAM : CZ_STREAM_EXACT;
    if (cz_stream_check(&m->m, &m->ss, &e)) {
        from_cz(err, &e);
        czi_model_free(m);
        return NULL;
    }
    return m;
}

void czi_model_free(czi_model *m)
{
    if (!m) return;
    free(m->params);
    free(m->mean);
    free(m->std);
    free(m);
}

const czi_info *czi_model_info(const czi_model *m) { return m ? &m->info : NULL; }

czi_session *czi_session_new(const czi_model *m, size_t max_batch, int what, czi_error *err)
{
    if (!m) {
        cz_infer_fail(err, CZ_EINVAL, "czi_session_new: no model");
        return NULL;
    }
    if (max_batch == 0 || max_batch > ((size_t)1 << 30)) {
        cz_infer_fail(err, CZ_EINVAL, "czi_session_new: max_batch must be in [1, 2^30], got %zu", max_batch);
        return NULL;
    }
    if (what != CZI_PREDICT_ONLY && what != CZI_NORMS) {
        cz_infer_fail(err, CZ_EINVAL, "czi_session_new: what must be CZI_PREDICT_ONLY or CZI_NORMS, got %d", what);
        return NULL;
    }
    czi_session *s = calloc(1, sizeof *s);
    if (!s) {
        cz_infer_fail(err, CZ_ENOMEM, "czi_session_new: out of memory");
        return NULL;
    }
    s->m = m;
    s->what = what;
    s->max_batch = max_batch;
    const cz_model *cm = &m->m;
    cz_stream_spec none = {.mode = CZ_STREAM_NONE};
    const cz_stream_spec *ss = what == CZI_NORMS ? &m->ss : &none;
    size_t C = max_batch, budget = stream_budget();
    while (what == CZI_NORMS && C > 1 && cz_workspace_bytes_for(cm, C, ss) > budget) C /= 2;
    s->chunk = C;
    size_t d = cm->spec.d, no = cm->n_out;
    s->x = malloc(C * d * sizeof *s->x);
    s->seed = malloc(C * no * sizeof *s->seed);
    s->yc = calloc(C, sizeof *s->yc);
    s->yv = calloc(C, sizeof *s->yv);
    s->pred = malloc(C * sizeof *s->pred);
    cz_error e = {0};
    if (!s->x || !s->seed || !s->yc || !s->yv || !s->pred) {
        cz_infer_fail(err, CZ_ENOMEM, "czi_session_new: out of memory for %zu rows of %zu features", C, d);
        czi_session_free(s);
        return NULL;
    }
    if (!(s->ws = cz_workspace_new_stream(cm, C, ss, &e))) {
        from_cz(err, &e);
        czi_session_free(s);
        return NULL;
    }
    if (what == CZI_NORMS && m->ss.mode == CZ_STREAM_GRAM) {
        /* one step now fills the workspace's QR cache (see the top of this file) */
        cz_step_opts o = {.stream = 1};
        cz_step_sums sums;
        memset(s->x, 0, d * sizeof *s->x);
        pthread_mutex_lock(&lib_lock);
        int rc = cz_engine_step(s->ws, m->params, s->x, s->yc, s->yv, NULL, 1, &o, NULL, &sums, &e);
        pthread_mutex_unlock(&lib_lock);
        if (rc) {
            from_cz(err, &e);
            czi_session_free(s);
            return NULL;
        }
    }
    return s;
}

void czi_session_free(czi_session *s)
{
    if (!s) return;
    cz_workspace_free(s->ws);
    free(s->x);
    free(s->seed);
    free(s->yc);
    free(s->yv);
    free(s->pred);
    free(s);
}

/* rows [b0, b0 + nb) of a checked batch: standardize, forward (and stream), outputs */
static int predict_chunk(czi_session *s, const float *x, size_t b0, size_t nb, czi_outputs *out, czi_error *err)
{
    const czi_model *m = s->m;
    const cz_model *cm = &m->m;
    size_t d = cm->spec.d, H = (size_t)cm->n_hidden;
    int norms = s->what == CZI_NORMS && out && (out->input_norm || out->layer_norm);
    memcpy(s->x, x + b0 * d, nb * d * sizeof *s->x);
    if (m->mean) cz_standardize(s->x, nb, d, m->mean, m->std, m->clip);
    cz_step_opts o = {.stream = out && out->layer_norm && s->what == CZI_NORMS};
    cz_step_sums sums;
    cz_error e = {0};
    if (cz_engine_step(s->ws, m->params, s->x, s->yc, s->yv, NULL, nb, &o, NULL, &sums, &e)) return from_cz(err, &e);
    const cz_real *f = cz_engine_outputs(s->ws);
    cz_loss_sums ls = {0};
    /* the label as `chainz eval` counts it correct: the loss code's own prediction; with the
     * input norm asked of a classifier, the same call (no labels: the prediction is the label)
     * also gives its seed q = the task loss at the predicted class, in its gradient in f */
    int seeded = norms && out->input_norm && cm->spec.head != CZ_HEAD_REGRESS;
    if (seeded) cz_loss_eval(s->seed, NULL, s->pred, &ls, cm, f, NULL, s->yv, nb);
    else cz_loss_eval(NULL, NULL, s->pred, &ls, cm, f, s->yc, s->yv, nb);
    if (!out) return 0;
    if (out->label) memcpy(out->label + b0, s->pred, nb * sizeof *s->pred);
    size_t K = cm->spec.head == CZ_HEAD_REGRESS ? 0 : (size_t)cm->spec.classes; /* prob is [B x K] */
    cz_infer_heads(cm, f, s->pred, nb, out->prob && K ? out->prob + b0 * K : NULL, out->value ? out->value + b0 : NULL);
    if (!norms) return 0;
    if (out->layer_norm)
        for (size_t l = 0; l < H; l++) {
            const double *sq = cz_engine_jacobian_sqnorm(s->ws, (int)l + 1);
            for (size_t b = 0; b < nb; b++) out->layer_norm[(b0 + b) * H + l] = sqrt(sq[b]);
        }
    if (out->input_norm) {
        /* q = the task loss with the predicted class as label (seeded above), or the
         * regression output itself (df/df = 1) */
        if (!seeded)
            for (size_t b = 0; b < nb; b++) s->seed[b] = 1;
        /* with the stream at hand (layer norms asked for) the norm is read off it, else one
         * reverse pass over the activations */
        int rc = o.stream ? cz_engine_input_norm_stream(s->ws, m->params, s->seed, out->input_norm + b0, &e)
                          : cz_engine_input_grad_seeded(s->ws, m->params, s->seed, NULL, out->input_norm + b0, &e);
        if (rc) return from_cz(err, &e);
    }
    return 0;
}

int czi_predict(czi_session *s, const float *x, size_t B, czi_outputs *out, czi_error *err)
{
    if (!s) return cz_infer_fail(err, CZ_EINVAL, "czi_predict: no session");
    if (B > s->max_batch)
        return cz_infer_fail(err, CZ_EINVAL, "czi_predict: batch of %zu rows exceeds the session's max_batch %zu", B,
                        s->max_batch);
    if (B == 0) return 0;
    if (!x) return cz_infer_fail(err, CZ_EINVAL, "czi_predict: x is NULL");
    if (out && s->what != CZI_NORMS && (out->input_norm || out->layer_norm))
        return cz_infer_fail(err, CZ_EINVAL, "czi_predict: norms requested from a session made without CZI_NORMS");
    size_t d = s->m->m.spec.d;
    for (size_t b = 0; b < B; b++)
        for (size_t j = 0; j < d; j++)
            if (!isfinite(x[b * d + j]))
                return cz_infer_fail(err, CZ_EINVAL, "czi_predict: row %zu, feature %zu is %s: inputs must be finite", b,
                                j, isnan(x[b * d + j]) ? "NaN" : "infinite");
    for (size_t b0 = 0; b0 < B; b0 += s->chunk) {
        size_t nb = B - b0 < s->chunk ? B - b0 : s->chunk;
        int rc = predict_chunk(s, x, b0, nb, out, err);
        if (rc) return rc;
    }
    return 0;
}

void czi_set_threads(int n)
{
    czi_error e;
    if (engine_ready(&e)) return;
    cz_engine_set_threads(n > 0 ? n : 1);
}

const char *czi_version(void) { return CZI_VERSION; }

const char *czi_blas_kernels(void)
{
    czi_error e;
    if (engine_ready(&e)) return "unavailable";
    return cz_engine_blas_arch();
}
