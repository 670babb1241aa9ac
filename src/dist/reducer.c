/* The per-step gradient reduction (reducer.h): a fixed tree of float sums over the chunks,
 * finished slice by slice by the owners (exact), or plain float sums (float). */
#include "chainz/reducer.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define TAIL 2 /* [failed][stop] before the scalars */

static size_t tail_len(const cz_reducer *r, size_t chunks) { return TAIL + chunks * r->n_sc; }

/* What steps of C chunks need over every share a rank can be given (the shares rotate):
 * the deepest stack, the most cover nodes of one rank, and of all ranks together. */
static void needs(size_t C, int P, size_t *slots, size_t *kmax, size_t *total)
{
    for (int s = 0; s < P && C; s++) {
        size_t a, b;
        cz_chunk_share(C, s, P, &a, &b);
        size_t dp = cz_tree_depth(C, a, b), k = cz_tree_cover(C, a, b, NULL);
        if (dp > *slots) *slots = dp;
        if (k > *kmax) *kmax = k;
        *total += k;
    }
}

typedef struct {
    size_t slots, kmax, all;
} plan;

static plan make_plan(size_t max_chunks, size_t last_chunks, int exact, int size)
{
    plan p = {1, 1, 1};
    if (!exact) return p;
    size_t t1 = 0, t2 = 0;
    needs(max_chunks, size, &p.slots, &p.kmax, &t1);
    needs(last_chunks, size, &p.slots, &p.kmax, &t2);
    p.all = t1 > t2 ? t1 : t2;
    if (!p.all) p.all = 1;
    return p;
}

void cz_reducer_plan(size_t max_chunks, size_t last_chunks, int exact, int size, size_t *slots, size_t *nodes)
{
    plan p = make_plan(max_chunks, last_chunks, exact, size);
    *slots = p.slots;
    *nodes = exact && size > 1 ? p.all : 0;
}

size_t cz_reducer_slice_bound(size_t n, size_t n_ranges, int size)
{
    /* a part of range len is at most ceil(nblk / P) blocks <= (len - 1) / P + B, and at most len */
    size_t P = size > 1 ? (size_t)size : 1, per = n / P + n_ranges * CZ_REDUCER_BLOCK;
    return (per < n ? per : n) + n_ranges;
}

static void free_ranges(cz_reducer *r)
{
    for (size_t j = 0; j < r->n_ranges; j++) {
        cz_reducer_range *R = &r->ranges[j];
        free(R->sc);
        free(R->sd);
        free(R->rc);
        free(R->rd);
        free(R->recv);
    }
    free(r->req);
    free(r->bsq);
    free(r->bmine);
    free(r->bpacked);
    free(r->bsrc);
    free(r->bcount);
    free(r->bdispl);
    r->req = NULL;
    r->bsq = r->bmine = r->bpacked = NULL;
    r->bsrc = NULL;
    r->bcount = r->bdispl = NULL;
    r->n_ranges = 0;
}

/* part s of range j's blocks belongs to rank (s + j) mod P: small ranges spread */
static int owner_of(size_t j, size_t s, size_t P) { return (int)((s + j) % P); }

/* The ranges of the buckets, each cut into P slices of whole blocks, with their buffers;
 * the blocks of the sum of squares and where each lands in the gather. */
static int set_ranges(cz_reducer *r, cz_error *err)
{
    free_ranges(r);
    size_t P = (size_t)r->size, B = CZ_REDUCER_BLOCK, nb = 0;
    int mpi = r->sharded;
    for (size_t k = 0; k < r->n_buckets; k++) {
        r->bucket_range[k] = r->n_ranges;
        for (int h = 0; h < 2; h++) {
            size_t off = r->buckets[k].off[h], len = r->buckets[k].len[h], j = r->n_ranges;
            if (!len) continue;
            cz_reducer_range *R = &r->ranges[r->n_ranges++];
            memset(R, 0, sizeof *R);
            R->off = off;
            R->len = len;
            R->blk0 = nb;
            R->nblk = (len + B - 1) / B;
            nb += R->nblk;
            if (mpi && len > (size_t)INT_MAX)
                return cz_error_set(err, CZ_EINVAL, "a range of %zu values is too large for one MPI exchange: use "
                                    "--reduce float", len);
            R->sc = malloc(P * sizeof(int));
            R->sd = malloc(P * sizeof(int));
            if (!R->sc || !R->sd) return cz_error_set(err, CZ_ENOMEM, "out of memory for the reduction's slices");
            for (size_t t = 0; t < P; t++) {
                size_t a = R->nblk * t / P * B, b = R->nblk * (t + 1) / P * B;
                a = a < len ? a : len;
                b = b < len ? b : len;
                R->sd[owner_of(j, t, P)] = (int)a;
                R->sc[owner_of(j, t, P)] = (int)(b - a);
            }
            if (!mpi) continue;
            size_t mine = (size_t)R->sc[r->rank];
            if (r->all_cap * (mine + 1) > (size_t)INT_MAX)
                return cz_error_set(err, CZ_EINVAL, "a range of %zu values is too large for one MPI exchange on %d "
                                    "ranks: use --reduce float", len, r->size);
            R->rc = malloc(r->kmax * P * sizeof(int));
            R->rd = malloc(r->kmax * P * sizeof(int));
            R->recv = malloc(r->all_cap * (mine ? mine : 1) * sizeof(float));
            if (!R->rc || !R->rd || !R->recv)
                return cz_error_set(err, CZ_ENOMEM, "out of memory for the reduction's exchange");
        }
    }
    r->bucket_range[r->n_buckets] = r->n_ranges;
    r->n_blocks = nb;
    r->bsq = malloc((nb ? nb : 1) * sizeof(double));
    r->req = malloc((r->n_ranges * (r->kmax + 1) + 1) * sizeof *r->req);
    if (!r->bsq || !r->req) return cz_error_set(err, CZ_ENOMEM, "out of memory for the reduction");
    cz_dist_req_clear(r->req, r->n_ranges * (r->kmax + 1) + 1);
    if (!mpi) return 0;
    /* the block sums gathered: rank q's blocks packed in range order */
    r->bcount = calloc(P, sizeof(int));
    r->bdispl = calloc(P, sizeof(int));
    r->bpacked = malloc((nb ? nb : 1) * sizeof(double));
    r->bsrc = malloc((nb ? nb : 1) * sizeof(size_t));
    size_t *next = calloc(P, sizeof(size_t));
    if (!r->bcount || !r->bdispl || !r->bpacked || !r->bsrc || !next) {
        free(next);
        return cz_error_set(err, CZ_ENOMEM, "out of memory for the reduction");
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t q = 1; pass && q < P; q++) r->bdispl[q] = r->bdispl[q - 1] + r->bcount[q - 1];
        for (size_t j = 0; j < r->n_ranges; j++) {
            const cz_reducer_range *R = &r->ranges[j];
            for (size_t t = 0; t < P; t++) {
                int q = owner_of(j, t, P);
                for (size_t b = R->nblk * t / P; b < R->nblk * (t + 1) / P; b++) {
                    if (!pass) r->bcount[q]++;
                    else r->bsrc[R->blk0 + b] = (size_t)r->bdispl[q] + next[q]++;
                }
            }
        }
    }
    free(next);
    r->n_mine = (size_t)r->bcount[r->rank];
    r->bmine = malloc((r->n_mine ? r->n_mine : 1) * sizeof(double));
    if (!r->bmine) return cz_error_set(err, CZ_ENOMEM, "out of memory for the reduction");
    return 0;
}

int cz_reducer_init(cz_reducer *r, size_t n, size_t n_sc, size_t max_chunks, size_t last_chunks, int exact, int rank,
                    int size, cz_error *err)
{
    memset(r, 0, sizeof *r);
    r->exact = exact;
    r->rank = rank;
    r->size = size;
    r->n = n;
    r->n_sc = n_sc;
    r->max_chunks = max_chunks;
    r->last_chunks = last_chunks < max_chunks ? last_chunks : 0;
    if (max_chunks > CZ_REDUCER_MAX_CHUNKS)
        return cz_error_set(err, CZ_EINVAL, "%zu chunks per step: at most %d are supported; raise --micro-batch or "
                            "lower --batch", max_chunks, CZ_REDUCER_MAX_CHUNKS);
    plan p = make_plan(max_chunks, r->last_chunks, exact, size);
    r->n_slots = p.slots;
    r->kmax = p.kmax;
    r->all_cap = p.all;
    r->slots = malloc((n ? n : 1) * p.slots * sizeof(float));
    r->tail = malloc(tail_len(r, max_chunks) * sizeof(uint64_t));
    if (!exact) r->fsum = malloc((n ? n : 1) * sizeof(float));
    int ok = r->slots && r->tail && (exact || r->fsum);
    r->sharded = exact && size > 1;
    if (ok && exact && size > 1) {
        size_t P = (size_t)size;
        r->cover_n = malloc(P * sizeof(size_t));
        r->cover_at = malloc(P * sizeof(size_t));
        r->zeros = calloc(P, sizeof(int));
        r->all = malloc(p.all * sizeof(cz_span));
        r->sorted = malloc(p.all * sizeof(cz_span));
        r->order = malloc(p.all * sizeof(size_t));
        r->parts = malloc(p.all * sizeof(float *));
        ok = r->cover_n && r->cover_at && r->zeros && r->all && r->sorted && r->order && r->parts;
    }
    if (!ok) return cz_error_set(err, CZ_ENOMEM, "out of memory for the reduction of %zu values", n);
    /* without buckets, one: [0, n) */
    r->buckets[0] = (cz_bucket){.off = {0, 0}, .len = {n, 0}};
    r->n_buckets = 1;
    int rc = set_ranges(r, err);
    if (rc) return rc;
    size_t c0, c1;
    return cz_reducer_begin(r, 0, 0, &c0, &c1, err);
}

void cz_reducer_free(cz_reducer *r)
{
    if (!r) return;
    free_ranges(r);
    free(r->slots);
    free(r->tail);
    free(r->fsum);
    free(r->cover_n);
    free(r->cover_at);
    free(r->zeros);
    free(r->all);
    free(r->sorted);
    free(r->order);
    free(r->parts);
    memset(r, 0, sizeof *r);
}

int cz_reducer_begin(cz_reducer *r, size_t chunks, long rot, size_t *c0, size_t *c1, cz_error *err)
{
    int P = r->size;
    *c0 = *c1 = 0;
    if (chunks && chunks != r->max_chunks && chunks != r->last_chunks)
        return cz_error_set(err, CZ_EINVAL, "a step of %zu chunks: the reduction was planned for %zu and %zu",
                            chunks, r->max_chunks, r->last_chunks);
    r->chunks = chunks;
    r->depth = 0;
    r->pushed = 0;
    r->posted = 0;
    cz_chunk_share(chunks, (int)(((long)r->rank + rot) % P), P, &r->c0, &r->c1);
    *c0 = r->c0;
    *c1 = r->c1;
    memset(r->tail, 0, tail_len(r, chunks) * sizeof(uint64_t));
    if (!r->exact) memset(r->fsum, 0, r->n * sizeof(float));
    if (!r->exact || P == 1) return 0;
    /* every rank's cover, rank by rank, and the same nodes in chunk order (share order) */
    size_t at = 0, i = 0;
    r->kstep = 0;
    for (int q = 0; q < P; q++) {
        size_t a, b;
        cz_chunk_share(chunks, (int)(((long)q + rot) % P), P, &a, &b);
        r->cover_at[q] = at;
        r->cover_n[q] = cz_tree_cover(chunks, a, b, r->all + at);
        at += r->cover_n[q];
        if (r->cover_n[q] > r->kstep) r->kstep = r->cover_n[q];
    }
    r->n_all = at;
    for (int s = 0; s < P; s++) {
        int q = (int)((((long)s - rot) % P + P) % P);
        for (size_t k = 0; k < r->cover_n[q]; k++, i++) {
            r->order[i] = r->cover_at[q] + k;
            r->sorted[i] = r->all[r->order[i]];
        }
    }
    for (size_t j = 0; j < r->n_ranges; j++) {
        cz_reducer_range *R = &r->ranges[j];
        size_t mine = (size_t)R->sc[r->rank];
        for (size_t k = 0; k < r->kstep; k++)
            for (int q = 0; q < P; q++) {
                R->rc[k * (size_t)P + (size_t)q] = k < r->cover_n[q] ? (int)mine : 0;
                R->rd[k * (size_t)P + (size_t)q] = (int)((r->cover_at[q] + k) * mine);
            }
    }
    return 0;
}

float *cz_reducer_buffer(cz_reducer *r)
{
    size_t k = r->exact && r->depth < r->n_slots ? r->depth : r->exact ? r->n_slots - 1 : 0;
    return r->slots + k * r->n;
}

/* chunk's leaf on the stack, then the merges the tree allows (on spans only) */
static void push(cz_reducer *r, size_t chunk)
{
    if (r->depth >= r->n_slots) return; /* not a share this reducer was planned for */
    r->push_at = r->depth;
    r->stack[r->depth++] = (cz_span){chunk, chunk + 1};
    r->merges = 0;
    while (r->depth >= 2 &&
           cz_tree_siblings(r->chunks, r->stack[r->depth - 2].lo, r->stack[r->depth - 1].lo, r->stack[r->depth - 1].hi)) {
        r->stack[r->depth - 2].hi = r->stack[r->depth - 1].hi;
        r->depth--;
        r->merges++;
    }
}

/* the last push's merges on values [off, off + len): the same additions in the same order
 * whatever the ranges */
static void merge_values(cz_reducer *r, size_t off, size_t len)
{
    for (size_t i = 1; i <= r->merges; i++)
        cz_tree_add(r->slots + (r->push_at - i) * r->n + off, r->slots + (r->push_at - i + 1) * r->n + off, len);
}

void cz_reducer_add(cz_reducer *r, size_t chunk, const double *sc)
{
    memcpy(r->tail + TAIL + chunk * r->n_sc, sc, r->n_sc * sizeof(double)); /* the double's bits */
    if (!r->exact) {
        cz_tree_add(r->fsum, r->slots, r->n);
    } else if (!r->pushed) {
        push(r, chunk);
        merge_values(r, 0, r->n);
    }
    r->pushed = 0;
}

void cz_reducer_fail(cz_reducer *r) { r->tail[0] = 1; }

void cz_reducer_stop(cz_reducer *r) { r->tail[1] = 1; }

size_t cz_reducer_cover(const cz_reducer *r, cz_span *nodes)
{
    memcpy(nodes, r->stack, r->depth * sizeof(cz_span));
    return r->depth;
}

const float *cz_reducer_node(const cz_reducer *r, size_t k) { return r->slots + k * r->n; }

int cz_reducer_set_buckets(cz_reducer *r, const cz_bucket *b, size_t n, cz_error *err)
{
    if (n > CZ_REDUCER_MAX_BUCKETS) return cz_error_set(err, CZ_EINVAL, "bucketed reduction: %zu buckets", n);
    /* every value in exactly one bucket: the exchange must carry the whole gradient */
    size_t total = 0;
    for (size_t k = 0; k < n; k++)
        for (int j = 0; j < 2; j++) {
            if (b[k].off[j] > r->n || b[k].len[j] > r->n - b[k].off[j])
                return cz_error_set(err, CZ_EINVAL, "bucketed reduction: a range beyond the values");
            total += b[k].len[j];
        }
    unsigned char *seen = calloc(r->n ? r->n : 1, 1);
    if (!seen) return cz_error_set(err, CZ_ENOMEM, "out of memory");
    int once = total == r->n;
    for (size_t k = 0; once && k < n; k++)
        for (int j = 0; j < 2; j++)
            for (size_t i = b[k].off[j]; once && i < b[k].off[j] + b[k].len[j]; i++) once = !seen[i]++;
    free(seen);
    if (!once) return cz_error_set(err, CZ_EINVAL, "bucketed reduction: the buckets do not cover every value once");
    memcpy(r->buckets, b, n * sizeof *b);
    r->n_buckets = n;
    r->overlap = r->sharded; /* with one rank or float sums there is nothing to overlap */
    return set_ranges(r, err);
}

/* starts range j's exchange: my cover's slices to their owners, one exchange per cover index */
static int send_range(cz_reducer *r, const cz_dist *d, size_t j, cz_error *err)
{
    cz_reducer_range *R = &r->ranges[j];
    size_t P = (size_t)r->size, K = r->cover_n[r->rank];
    cz_dist_req *q = r->req + j * (r->kmax + 1);
    for (size_t k = 0; k < r->kstep; k++) {
        int rc = cz_dist_iexchange_float(d, r->slots + (k < K ? k : 0) * r->n + R->off, k < K ? R->sc : r->zeros,
                                         R->sd, R->recv, R->rc + k * P, R->rd + k * P, &q[k], err);
        if (rc) return rc;
    }
    cz_dist_progress(r->req, (j + 1) * (r->kmax + 1)); /* the earlier ranges move on meanwhile */
    return 0;
}

void cz_reducer_post_next(cz_reducer *r, const cz_dist *d, int *rc, cz_error *err)
{
    *rc = 0;
    if (!r->sharded || r->posted >= r->n_buckets) return;
    if (!r->pushed && r->c1 > r->c0) { /* the first bucket of the last chunk: its leaf */
        push(r, r->c1 - 1);
        r->pushed = 1;
    }
    size_t k = r->posted++;
    for (size_t j = r->bucket_range[k]; j < r->bucket_range[k + 1] && !*rc; j++) {
        merge_values(r, r->ranges[j].off, r->ranges[j].len);
        *rc = send_range(r, d, j, err);
    }
}

/* the sum of squares of g [len]: eight lanes in index order, then the lanes in order, then
 * the rest (fixed whatever the compiler vectorises) */
static double block_sq(const float *g, size_t len)
{
    double a[8] = {0};
    size_t i = 0;
    for (; i + 8 <= len; i += 8)
        for (int k = 0; k < 8; k++) a[k] += (double)g[i + k] * (double)g[i + k];
    double s = a[0];
    for (int k = 1; k < 8; k++) s += a[k];
    for (; i < len; i++) s += (double)g[i] * (double)g[i];
    return s;
}

/* the sums of squares of range j's blocks [b0, b1) of grad into out, in order */
static void range_blocks(const cz_reducer *r, size_t j, size_t b0, size_t b1, const float *grad, double *out)
{
    const cz_reducer_range *R = &r->ranges[j];
    for (size_t b = b0; b < b1; b++) {
        size_t a = b * CZ_REDUCER_BLOCK, e = a + CZ_REDUCER_BLOCK < R->len ? a + CZ_REDUCER_BLOCK : R->len;
        out[b - b0] = block_sq(grad + R->off + a, e - a);
    }
}

/* range j's blocks of my slice into out, in order; @return how many */
static size_t my_blocks(const cz_reducer *r, size_t j, const float *grad, double *out)
{
    size_t P = (size_t)r->size, k = 0, nb = r->ranges[j].nblk;
    for (size_t t = 0; t < P; t++) {
        if (owner_of(j, t, P) != r->rank) continue;
        range_blocks(r, j, nb * t / P, nb * (t + 1) / P, grad, out + k);
        k += nb * (t + 1) / P - nb * t / P;
    }
    return k;
}

/* range j: the owner completes the tree on its slice of every cover node, divides, and sums
 * the squares of its blocks */
static int finish_range(cz_reducer *r, size_t j, double inv, float *grad, size_t *packed, cz_error *err)
{
    cz_reducer_range *R = &r->ranges[j];
    cz_dist_req *q = r->req + j * (r->kmax + 1);
    int rc = cz_dist_wait(q, r->kstep, err);
    if (rc) return rc;
    size_t mine = (size_t)R->sc[r->rank];
    float *out = grad + R->off + (size_t)R->sd[r->rank];
    for (size_t i = 0; i < r->n_all; i++) r->parts[i] = R->recv + r->order[i] * mine;
    const float *root = mine ? cz_tree_sum(r->chunks, r->sorted, r->parts, r->n_all, mine) : NULL;
    for (size_t i = 0; i < mine; i++) out[i] = root ? (float)((double)root[i] * inv) : 0.0f;
    *packed += my_blocks(r, j, grad, r->bmine + *packed);
    return 0;
}

static void scalars(const cz_reducer *r, double *sc, cz_reduced *res)
{
    /* the same doubles in the same order on any number of ranks */
    for (size_t k = 0; k < r->n_sc; k++) sc[k] = 0;
    for (size_t c = 0; c < r->chunks; c++)
        for (size_t k = 0; k < r->n_sc; k++) {
            double v;
            memcpy(&v, r->tail + TAIL + c * r->n_sc + k, sizeof v);
            sc[k] += v;
        }
    res->failed = r->tail[0] != 0;
    res->stop = r->tail[1] != 0;
}

int cz_reducer_finish(cz_reducer *r, const cz_dist *d, double samples, float *grad, double *sc, cz_reduced *res,
                      cz_error *err)
{
    double inv = 1.0 / samples;
    int rc = 0;
    if (r->exact && r->size > 1) {
        /* the buckets not started yet (a rank without chunks, a failure: its cover as it is) */
        while (!rc && r->posted < r->n_buckets) {
            size_t k = r->posted++;
            for (size_t j = r->bucket_range[k]; j < r->bucket_range[k + 1] && !rc; j++) rc = send_range(r, d, j, err);
        }
        cz_dist_req *tq = r->req + r->n_ranges * (r->kmax + 1);
        if (!rc) rc = cz_dist_isum_u64(d, r->tail, tail_len(r, r->chunks), tq, err);
        size_t packed = 0;
        for (size_t j = 0; j < r->n_ranges && !rc; j++) rc = finish_range(r, j, inv, grad, &packed, err);
        /* every request was started in the same order on every rank, so an MPI failure is
         * the same on every rank too */
        int wrc = cz_dist_wait(r->req, r->n_ranges * (r->kmax + 1) + 1, err);
        if (!rc) rc = wrc;
        if (!rc) rc = cz_dist_gather_all_double(d, r->bmine, (int)r->n_mine, r->bpacked, r->bcount, r->bdispl, err);
        for (size_t b = 0; !rc && b < r->n_blocks; b++) r->bsq[b] = r->bpacked[r->bsrc[b]];
    } else {
        if (r->exact) {
            int whole = r->depth == 1 && r->stack[0].lo == 0 && r->stack[0].hi == r->chunks;
            for (size_t i = 0; i < r->n; i++) grad[i] = whole ? (float)((double)r->slots[i] * inv) : 0.0f;
        } else {
            rc = cz_dist_sum_float(d, r->fsum, r->n, err);
            if (!rc) rc = cz_dist_sum_u64(d, r->tail, tail_len(r, r->chunks), err);
            for (size_t i = 0; !rc && i < r->n; i++) grad[i] = (float)((double)r->fsum[i] * inv);
        }
        for (size_t j = 0; !rc && j < r->n_ranges; j++) /* one rank's view: every block is mine */
            range_blocks(r, j, 0, r->ranges[j].nblk, grad, r->bsq + r->ranges[j].blk0);
    }
    r->pushed = 0;
    if (rc) return rc;
    scalars(r, sc, res);
    res->sumsq = 0;
    for (size_t b = 0; b < r->n_blocks; b++) res->sumsq += r->bsq[b];
    return 0;
}

size_t cz_reducer_slices(const cz_reducer *r) { return r->n_ranges; }

void cz_reducer_slice(const cz_reducer *r, size_t k, size_t *off, size_t *len)
{
    const cz_reducer_range *R = &r->ranges[k];
    *off = R->off + (r->sharded ? (size_t)R->sd[r->rank] : 0);
    *len = r->sharded ? (size_t)R->sc[r->rank] : R->len;
}

int cz_reducer_gather(cz_reducer *r, const cz_dist *d, float *x, cz_error *err)
{
    if (!r->sharded) return 0;
    int rc = 0;
    for (size_t j = 0; j < r->n_ranges && !rc; j++)
        rc = cz_dist_igather_all_float(d, x + r->ranges[j].off, r->ranges[j].sc, r->ranges[j].sd,
                                       &r->req[j * (r->kmax + 1) + r->kmax], err);
    int wrc = cz_dist_wait(r->req, r->n_ranges * (r->kmax + 1) + 1, err);
    return rc ? rc : wrc;
}
