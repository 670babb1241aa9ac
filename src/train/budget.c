#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "chainz/budget.h"

#include "chainz/reducer.h"

#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "chainz/hist.h"
#include "chainz/jacnorm.h"

int cz_size_mul(size_t a, size_t b, size_t *out)
{
    if (__builtin_mul_overflow(a, b, out)) {
        *out = SIZE_MAX;
        return -1;
    }
    return 0;
}

int cz_size_add(size_t a, size_t b, size_t *out)
{
    if (__builtin_add_overflow(a, b, out)) {
        *out = SIZE_MAX;
        return -1;
    }
    return 0;
}

/* *sum += a * b * c, saturating; *over set on overflow */
static void madd(size_t *sum, int *over, size_t a, size_t b, size_t c)
{
    size_t p, q;
    if (cz_size_mul(a, b, &p) || cz_size_mul(p, c, &q) || cz_size_add(*sum, q, sum)) {
        *over = 1;
        *sum = SIZE_MAX;
    }
}

/* the engine's workspace, buffer by buffer as src/engine/engine.c and stream.c carve it
 * (each buffer rounded up to 64 bytes): an upper bound that must not drift below the real
 * figure */
static size_t workspace_bytes(const cz_model *m, size_t B, const cz_stream_spec *ss, int *over)
{
    size_t d = m->spec.d, H = (size_t)m->n_hidden, W = m->n_out, s = 0, n0 = m->layer[0].n_out;
    size_t R = sizeof(cz_real), k = cz_stream_width(m, ss);
    int probe = ss->mode == CZ_STREAM_PROBE;
    for (size_t l = 0; l < H; l++)
        if (m->layer[l].n_out > W) W = m->layer[l].n_out;
    for (size_t l = 0; l < H; l++) {
        size_t n = m->layer[l].n_out;
        madd(&s, over, 6 * R, B, n);   /* z, h, dphi, mask, D, dz */
        madd(&s, over, sizeof(double), B, 1);
        /* the Jacobian stream at width k: S_l (l < H-1) and T_l (l >= 1; l = 0 for probes) */
        if (l + 1 < H) madd(&s, over, n * R, B, k);
        if (l >= 1 || probe) madd(&s, over, n * R, B, k);
    }
    madd(&s, over, 2 * R, B, m->n_out);            /* outputs, dtask/df */
    madd(&s, over, R, B, m->layer[H - 1].n_out);   /* gH */
    madd(&s, over, (H > 3 ? H + 1 : 4) * R, B, W); /* g[max(H-1, 2)], q, d2phi */
    madd(&s, over, R, B, d);                       /* gtask */
    if (ss->mode == CZ_STREAM_EXACT || ss->mode == CZ_STREAM_GRAM) madd(&s, over, R, B, k); /* gin */
    if (ss->mode == CZ_STREAM_GRAM) {              /* Q^T and W_0's copy, F, dF, LAPACK's */
        madd(&s, over, 2 * R, n0, d);
        madd(&s, over, 2 * R, n0, n0);
        madd(&s, over, 65 * R, n0, 1);
    }
    if (probe) madd(&s, over, R * B, k, d);        /* the directions */
    madd(&s, over, 64, 10 * H + 16, 1);            /* alignment of every buffer */
    return s;
}

void cz_mem_estimate_run(const cz_mem_request *r, cz_mem_estimate *e)
{
    memset(e, 0, sizeof *e);
    const cz_model *m = r->m;
    size_t n = m->n_params, d = m->spec.d, M = r->micro_batch, R = sizeof(cz_real);
    int *ov = &e->overflow;
    /* parameters; training adds the gradient and the moments */
    madd(&e->params, ov, n, R, r->batch ? 2 + r->opt_moments : 1 + r->opt_moments + (r->tau ? 1 : 0));
    if (r->batch) {
        /* the steps the reducer is planned for: of the training rows, a batch larger than
         * them takes them all, and the last step takes the rest */
        size_t rows = r->train_rows ? r->train_rows : r->rows, nb = r->batch < rows ? r->batch : rows;
        size_t chunks = (nb + M - 1) / M;
        size_t last = rows > nb ? ((rows % nb) + M - 1) / M : 0, slots = 1, nodes = 0;
        int P = r->ranks > 1 ? r->ranks : 1;
        /* the reducer's partial sums (float mode: one chunk buffer and the sum) and the
         * owners' receive buffers (a weight range and a bias range per layer); beyond the
         * chunk bound the reducer refuses the run */
        if (chunks <= CZ_REDUCER_MAX_CHUNKS) cz_reducer_plan(chunks, last, r->exact, P, &slots, &nodes);
        madd(&e->reduce, ov, n, R, slots + (r->exact ? 0 : 1));
        madd(&e->reduce, ov, nodes, cz_reducer_slice_bound(n, 2 * ((size_t)m->n_hidden + 1), P) * R, 1);
        madd(&e->reduce, ov, chunks, 4 * sizeof(double), 1);
    }
    /* an evaluation pass keeps its per-chunk sums too (validation, chainz eval) */
    madd(&e->reduce, ov, r->rows / M + 1, 4 * sizeof(double), 1);
    e->workspace = workspace_bytes(m, M, &r->stream, ov);
    /* the Jacobian subsample (probe mode, lambda 0): one sample's products */
    if (r->tau_sampled) {
        int any = r->tau_sampled == CZ_STREAM_AUTO; /* either width, not yet planned: the larger */
        size_t sw = cz_jacnorm_bytes(m, any ? CZ_STREAM_EXACT : r->tau_sampled);
        size_t sg = any ? cz_jacnorm_bytes(m, CZ_STREAM_GRAM) : 0;
        if (sg > sw) sw = sg;
        if (!sw || cz_size_add(e->workspace, sw, &e->workspace)) *ov = 1;
    }
    /* two chunk buffers (training and validation) and the hyperslab scratch of the data
     * module, each M x d floats plus labels, keys and row indices */
    madd(&e->data, ov, 3 * sizeof(float), M, d);
    madd(&e->data, ov, 3 * (4 + 4 + 8 + 8), M, 1);
    /* labels (as int32 or float) and up to three [rows] index arrays; statistics over d */
    madd(&e->data, ov, 4 + 3 * 8, r->rows, 1);
    madd(&e->data, ov, 2 * sizeof(float) + 2 * sizeof(double) + 256 * sizeof(float), d, 1);
    /* a step's row indices: a batch beyond the training rows takes them all */
    size_t rows = r->train_rows ? r->train_rows : r->rows;
    madd(&e->data, ov, 8, r->batch < rows ? r->batch : rows, 1);
    madd(&e->data, ov, 8, r->confusion, r->confusion);
    if (r->tau) {
        size_t nf = 3 + (size_t)m->n_hidden;
        madd(&e->tau, ov, nf, sizeof(cz_hist) + (CZ_HIST_BINS + 1) * 8 + 64 + 32, 1);
        madd(&e->tau, ov, 2 * sizeof(double), M, 1);
        /* rank 0 (the worst): its share, the gathered records, the placed columns, the file image */
        if (r->tau_norms) madd(&e->tau, ov, 4 * 8 * nf, r->rows, 1);
    }
    size_t t = 0;
    int o = cz_size_add(e->params, e->reduce, &t) || cz_size_add(t, e->workspace, &t) ||
            cz_size_add(t, e->data, &t) || cz_size_add(t, e->tau, &t);
    if (o || e->overflow) {
        e->overflow = 1;
        t = SIZE_MAX;
    }
    e->total = t;
}

void cz_mem_format(size_t bytes, char *buf, size_t len)
{
    double b = (double)bytes;
    if (bytes == SIZE_MAX) snprintf(buf, len, "more than 2^64 bytes");
    else if (b < 1e3) snprintf(buf, len, "%zu B", bytes);
    else if (b < 1e6) snprintf(buf, len, "%.1f KB", b / 1e3);
    else if (b < 1e9) snprintf(buf, len, "%.1f MB", b / 1e6);
    else if (b < 1e12) snprintf(buf, len, "%.1f GB", b / 1e9);
    else snprintf(buf, len, "%.3g TB", b / 1e12);
}

/* a number of bytes from the first line of a file ("max" or unreadable: 0) */
static size_t read_bytes_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    unsigned long long v = 0;
    int ok = fscanf(f, "%llu", &v) == 1;
    fclose(f);
    return ok ? (size_t)v : 0;
}

static size_t mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    unsigned long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    if (f) fclose(f);
    if (kb) return (size_t)kb * 1024;
    long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (size_t)pages * (size_t)page : 0;
}

/* room left in this process's memory cgroup (v2, else v1), 0 if unlimited or unknown */
static size_t cgroup_room(void)
{
    char rel[1100] = "", path[1400], line[1024];
    FILE *f = fopen("/proc/self/cgroup", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "0::", 3)) {
            snprintf(rel, sizeof rel, "%s", line + 3);
            rel[strcspn(rel, "\n")] = 0;
        }
    if (f) fclose(f);
    size_t max = 0, cur = 0;
    if (rel[0]) {
        snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.max", strcmp(rel, "/") ? rel : "");
        max = read_bytes_file(path);
        snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.current", strcmp(rel, "/") ? rel : "");
        cur = read_bytes_file(path);
    }
    if (!max) {
        max = read_bytes_file("/sys/fs/cgroup/memory/memory.limit_in_bytes");
        cur = read_bytes_file("/sys/fs/cgroup/memory/memory.usage_in_bytes");
        if (max >= ((size_t)1 << 60)) max = 0; /* v1's "unlimited" */
    }
    if (!max) return 0;
    return max > cur ? max - cur : 1;
}

size_t cz_mem_limit(size_t max_memory, int local_ranks, char *source, size_t len)
{
    char a[32], b[32];
    if (max_memory) {
        snprintf(source, len, "--max-memory");
        return max_memory;
    }
    if (local_ranks < 1) local_ranks = 1;
    size_t avail = mem_available(), room = cgroup_room(), node = avail;
    const char *what = "MemAvailable";
    if (room && (!node || room < node)) {
        node = room;
        what = "the cgroup's memory.max less its usage";
    }
    size_t lim = node / (size_t)local_ranks;
    cz_mem_format(node, a, sizeof a);
    snprintf(source, len, "%s %s / %d rank%s on the node", what, a, local_ranks, local_ranks > 1 ? "s" : "");
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (size_t)rl.rlim_cur < lim) {
        lim = (size_t)rl.rlim_cur;
        cz_mem_format(lim, b, sizeof b);
        snprintf(source, len, "RLIMIT_AS (ulimit -v) %s", b);
    }
    return node ? lim : 0;
}

int cz_mem_check(const cz_mem_estimate *e, size_t limit, const char *source, cz_error *err)
{
    if (!e->overflow && (limit == 0 || e->total <= limit)) return 0;
    char t[32], l[32], p[32], w[32], dd[32], h[32];
    cz_mem_format(e->total, t, sizeof t);
    cz_mem_format(limit, l, sizeof l);
    cz_mem_format(e->params + e->reduce, p, sizeof p);
    cz_mem_format(e->workspace, w, sizeof w);
    cz_mem_format(e->data, dd, sizeof dd);
    cz_mem_format(e->tau, h, sizeof h);
    if (e->overflow)
        return cz_error_set(err, CZ_EINVAL, "the run is too large: its memory estimate overflows (parameters %s, "
                            "workspace %s, data %s); lower --layers or --micro-batch", p, w, dd);
    return cz_error_set(err, CZ_EINVAL,
                        "the run needs about %s per rank (memory estimate: parameters, gradients and moments %s, "
                        "workspace with the Jacobian stream %s, data buffers %s, histograms %s) but the limit is %s (%s); "
                        "lower --layers or --micro-batch, use fewer ranks per node, or set --max-memory",
                        t, p, w, dd, h, l, source);
}

/* the estimate of r with another stream or micro-batch; 0 when over the limit */
static size_t fits(const cz_mem_request *r, const cz_stream_spec *ss, size_t micro_batch, size_t limit)
{
    cz_mem_request q = *r;
    cz_mem_estimate e;
    if (ss) { /* with tau, an exact or gram stream gives the Jacobian families; probe a subsample */
        q.stream = *ss;
        q.tau_sampled = r->tau && ss->mode == CZ_STREAM_PROBE ? CZ_STREAM_AUTO : CZ_STREAM_NONE;
    }
    q.micro_batch = micro_batch;
    cz_mem_estimate_run(&q, &e);
    return !e.overflow && e.total <= limit ? e.total : 0;
}

/* the largest K in [1, hi] whose probe stream fits (the estimate grows with K), or 0 */
static int largest_probes(const cz_mem_request *r, int hi, size_t limit, size_t *bytes)
{
    int lo = 0;
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        cz_stream_spec ss = {.mode = CZ_STREAM_PROBE, .probes = mid};
        if (fits(r, &ss, r->micro_batch, limit)) lo = mid;
        else hi = mid - 1;
    }
    cz_stream_spec ss = {.mode = CZ_STREAM_PROBE, .probes = lo};
    *bytes = lo ? fits(r, &ss, r->micro_batch, limit) : 0;
    return lo;
}

int cz_mem_check_train(const cz_mem_request *r, const cz_mem_estimate *e, size_t limit, const char *source,
                       cz_error *err)
{
    int rc = cz_mem_check(e, limit, source, err);
    if (!rc || e->overflow || !err) return rc;
    char opts[600] = "", b[32];
    size_t w = 0, bytes;
#define CZ_OPT(...) w += (size_t)snprintf(opts + w, w < sizeof opts ? sizeof opts - w : 0, __VA_ARGS__)
    const cz_stream_spec *ss = &r->stream;
    const cz_model *m = r->m;
    if (ss->mode == CZ_STREAM_PROBE && ss->probes > 1) {
        int k = largest_probes(r, ss->probes - 1, limit, &bytes);
        cz_mem_format(bytes, b, sizeof b);
        if (k) CZ_OPT("%s--dreg-probes %d (about %s; now %d)", w ? "; " : "", k, b, ss->probes);
    }
    if (ss->mode == CZ_STREAM_EXACT) {
        cz_stream_spec gram = {.mode = CZ_STREAM_GRAM};
        if (m->layer[0].n_out < m->spec.d && (bytes = fits(r, &gram, r->micro_batch, limit))) {
            cz_mem_format(bytes, b, sizeof b);
            CZ_OPT("%s--dreg-mode gram (the same penalty at stream width %zu: about %s)", w ? "; " : "",
                   m->layer[0].n_out, b);
        }
        int k = largest_probes(r, CZ_STREAM_DEFAULT_PROBES, limit, &bytes);
        char kopt[40] = ""; /* the default K needs no option */
        if (k != CZ_STREAM_DEFAULT_PROBES) snprintf(kopt, sizeof kopt, " --dreg-probes %d", k);
        cz_mem_format(bytes, b, sizeof b);
        if (k) CZ_OPT("%s--dreg-mode probe%s (an unbiased estimate at width %d: about %s)", w ? "; " : "", kopt, k, b);
    }
    size_t lo = 0, hi = r->micro_batch ? r->micro_batch - 1 : 0;
    while (lo < hi) { /* the largest micro-batch that fits as configured */
        size_t mid = lo + (hi - lo + 1) / 2;
        if (fits(r, NULL, mid, limit)) lo = mid;
        else hi = mid - 1;
    }
    if (lo && (bytes = fits(r, NULL, lo, limit))) {
        cz_mem_format(bytes, b, sizeof b);
        CZ_OPT("%s--micro-batch %zu (about %s; the last bits then differ from runs at %zu)", w ? "; " : "", lo, b,
               r->micro_batch);
    }
#undef CZ_OPT
    if (w) {
        char msg[2 * sizeof err->msg]; /* cz_error_set truncates it to the message size */
        snprintf(msg, sizeof msg, "%s. These would fit the limit per rank: %s", err->msg, opts);
        cz_error_set(err, rc, "%s", msg);
    }
    return rc;
}

int cz_node_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int cz_affinity_cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return cz_node_cores();
    int n = CPU_COUNT(&set);
    return n > 0 ? n : 1;
}
