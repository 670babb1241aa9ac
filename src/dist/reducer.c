/* The per-step gradient reduction (reducer.h): exact two-limb carry-save sums, or floats. */
#include "chainz/reducer.h"

#include <stdlib.h>
#include <string.h>

#define B CZ_REDUCER_LIMB_BITS
#define TAIL 2 /* [bad][failed] before the scalars */

/* x + 1.5 * 2^52 rounds x (|x| < 2^51) to an integer, ties to even, and leaves it in the
 * low mantissa bits: the bits minus MAGIC's bits are that integer in two's complement.
 * Plain double and integer operations, so the loops below vectorise (SSE2 and up). */
static const double MAGIC = 0x1.8p52;
static const double TWO52 = 0x1p52;

static inline uint64_t bits_of(double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline double double_of(uint64_t u)
{
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* u < 2^52 exactly as a double */
static inline double small_u64(uint64_t u) { return double_of(bits_of(TWO52) | u) - TWO52; }

static size_t tail_offset(const cz_reducer *r) { return r->exact ? 2 * r->n : 0; }

static size_t msg_len(const cz_reducer *r, size_t chunks) { return tail_offset(r) + TAIL + chunks * r->n_sc; }

int cz_reducer_init(cz_reducer *r, size_t n, size_t n_sc, size_t max_chunks, int exact, cz_error *err)
{
    memset(r, 0, sizeof *r);
    r->exact = exact;
    r->n = n;
    r->n_sc = n_sc;
    r->max_chunks = max_chunks;
    /* the limb sums of more chunks could leave int64 (reducer.h, "Capacity") */
    if (exact && max_chunks > CZ_REDUCER_MAX_CHUNKS)
        return cz_error_set(err, CZ_EINVAL, "%zu chunks per step: the exact reduction sums at most %d chunks per "
                            "step (its 64-bit limbs could overflow); raise --micro-batch, lower --batch or use "
                            "--reduce float", max_chunks, CZ_REDUCER_MAX_CHUNKS);
    r->msg = malloc(msg_len(r, max_chunks) * sizeof(uint64_t));
    if (!exact) r->fsum = malloc((n ? n : 1) * sizeof(float));
    if (!r->msg || (!exact && !r->fsum))
        return cz_error_set(err, CZ_ENOMEM, "out of memory for the reduction of %zu values", n);
    cz_reducer_begin(r, 0);
    return 0;
}

void cz_reducer_free(cz_reducer *r)
{
    if (!r) return;
    free(r->msg);
    free(r->fsum);
    r->msg = NULL;
    r->fsum = NULL;
}

void cz_reducer_begin(cz_reducer *r, size_t chunks)
{
    r->chunks = chunks;
    r->posted = 0;
    r->fresh = 1; /* the limbs are zeroed lazily: stored by the first chunk, or in finish */
    memset(r->msg + tail_offset(r), 0, (TAIL + chunks * r->n_sc) * sizeof(uint64_t));
    if (!r->exact) memset(r->fsum, 0, r->n * sizeof(float));
}

/* The limbs of round(g * 2^50) (reducer.h), 0 for a bad value (counted in *bad). The
 * range test is on the float's bits, in integers like the rest: a float compare or a
 * select in double kept GCC from vectorising the loop. 0x54800000 is 2^42 as a float, and
 * NaN and Inf, whose exponent is all ones, lie above it. */
static inline void split(float g, uint64_t *ql, uint64_t *qh, uint64_t *bad)
{
    uint32_t fb;
    memcpy(&fb, &g, sizeof fb);
    uint32_t out = (fb & 0x7fffffffu) >= 0x54800000u;
    *bad += out;
    fb &= out - 1u; /* +0 when out of range */
    float f;
    memcpy(&f, &fb, sizeof f);
    double v = (double)f;
    double y = v * 0x1p4 + MAGIC;               /* 0x1p4 = 2^(50 - 46) */
    double h = y - MAGIC;                       /* round(v * 2^4), exact */
    double l = v * 0x1p50 - h * 0x1p46 + MAGIC; /* exact, then rounded to an integer */
    *qh = bits_of(y) - bits_of(MAGIC);
    *ql = bits_of(l) - bits_of(MAGIC);
}

/* lo[i] (+)= low limb, hi[i] (+)= high limb of g[i]; returns the bad count. `store`
 * writes instead of adding (the first chunk: saves zeroing the limbs). Two loops without
 * a branch inside, so that both vectorise. */
static long add_exact(uint64_t *restrict lo, uint64_t *restrict hi, const float *restrict g, size_t n, int store)
{
    uint64_t bad = 0, ql, qh;
    if (store) {
        for (size_t i = 0; i < n; i++) {
            split(g[i], &ql, &qh, &bad);
            lo[i] = ql;
            hi[i] = qh;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            split(g[i], &ql, &qh, &bad);
            lo[i] += ql;
            hi[i] += qh;
        }
    }
    return (long)bad;
}

long cz_reducer_add(cz_reducer *r, size_t chunk, const float *g, const double *sc)
{
    uint64_t *tail = r->msg + tail_offset(r);
    memcpy(tail + TAIL + chunk * r->n_sc, sc, r->n_sc * sizeof(double)); /* the double's bits */
    long bad = 0;
    if (r->exact) {
        bad = add_exact(r->msg, r->msg + r->n, g, r->n, r->fresh);
        tail[0] += (uint64_t)bad;
    } else {
        for (size_t i = 0; i < r->n; i++) r->fsum[i] += g[i];
    }
    r->fresh = 0;
    return bad;
}

void cz_reducer_fail(cz_reducer *r) { r->msg[tail_offset(r) + 1] = 1; }

void cz_reducer_merge(cz_reducer *dst, const cz_reducer *src)
{
    if (dst->exact && dst->fresh) memset(dst->msg, 0, 2 * dst->n * sizeof(uint64_t));
    dst->fresh = 0;
    size_t off = tail_offset(dst), len = msg_len(dst, dst->chunks);
    /* a fresh source's limbs are zero, whatever the buffer holds */
    for (size_t i = src->exact && src->fresh ? off : 0; i < len; i++) dst->msg[i] += src->msg[i];
    for (size_t i = 0; !dst->exact && i < dst->n; i++) dst->fsum[i] += src->fsum[i];
}

/* The carry-save limbs of a sum, normalised: lo into [0, 2^46), its carry into hi. |lo| <
 * 2^62 by the capacity bound, so lo + 2^62 is non-negative and a logical shift (which SSE2
 * has, unlike a 64-bit arithmetic one) gives the floor. */
static inline void normalise(uint64_t lo, uint64_t hi, uint64_t *nlo, uint64_t *nhi)
{
    const uint64_t bias = (uint64_t)1 << 62, mask = ((uint64_t)1 << B) - 1;
    uint64_t u = lo + bias;
    *nhi = hi + (u >> B) - (bias >> B);
    *nlo = u & mask;
}

/* grad[i] = (hi * 2^46 + lo) * 2^-50 * inv, normalised on the fly (one pass, nothing
 * written back). hi goes to double through its two 32-bit halves (each exact, then one
 * rounding), the magic-number way: vectorisable, where int64 -> double is not before
 * AVX-512. */
static void to_float(float *restrict grad, const uint64_t *restrict lo, const uint64_t *restrict hi, size_t n,
                     double inv)
{
    const uint64_t sign = (uint64_t)1 << 63;
    for (size_t i = 0; i < n; i++) {
        uint64_t nlo, nhi;
        normalise(lo[i], hi[i], &nlo, &nhi);
        uint64_t u = nhi ^ sign; /* hi + 2^63 as unsigned */
        double dh = (small_u64(u >> 32) * 0x1p32 - 0x1p63) + small_u64(u & 0xffffffffu);
        double total = dh * 0x1p46 + small_u64(nlo);
        grad[i] = (float)(total * 0x1p-50 * inv);
    }
}

void cz_reducer_result(cz_reducer *r, double samples, float *grad, double *sc, cz_reduced *res)
{
    const uint64_t *tail = r->msg + tail_offset(r);
    double inv = 1.0 / samples;
    if (r->exact) {
        if (r->fresh) memset(r->msg, 0, 2 * r->n * sizeof(uint64_t));
        r->fresh = 0;
        to_float(grad, r->msg, r->msg + r->n, r->n, inv);
    } else {
        for (size_t i = 0; i < r->n; i++) grad[i] = (float)(r->fsum[i] * inv);
    }
    /* the same doubles in the same order on any number of ranks */
    for (size_t k = 0; k < r->n_sc; k++) sc[k] = 0;
    for (size_t c = 0; c < r->chunks; c++)
        for (size_t k = 0; k < r->n_sc; k++) {
            double v;
            memcpy(&v, tail + TAIL + c * r->n_sc + k, sizeof v);
            sc[k] += v;
        }
    res->bad = (long)tail[0];
    res->failed = tail[1] != 0;
}

void cz_reducer_limbs(const cz_reducer *r, size_t i, int64_t *hi, uint64_t *lo)
{
    uint64_t h;
    normalise(r->msg[i], r->msg[r->n + i], lo, &h);
    *hi = (int64_t)h;
}

int cz_reducer_set_buckets(cz_reducer *r, const cz_bucket *b, size_t n, cz_error *err)
{
    if (!r->exact) return cz_error_set(err, CZ_EINVAL, "bucketed reduction: exact mode only");
    if (n > CZ_REDUCER_MAX_BUCKETS) return cz_error_set(err, CZ_EINVAL, "bucketed reduction: %zu buckets", n);
    memcpy(r->buckets, b, n * sizeof *b);
    r->n_buckets = n;
    cz_dist_req_clear(r->req, 4 * n);
    return 0;
}

/* starts the sums of bucket k's limbs; with g, its values are added first (stored into a
 * fresh accumulator); without, a fresh accumulator's ranges are zeroed */
static long post(cz_reducer *r, const cz_dist *d, size_t k, const float *g, int *rc, cz_error *err)
{
    const cz_bucket *bk = &r->buckets[k];
    long bad = 0;
    for (int j = 0; j < 2 && !*rc; j++) {
        size_t off = bk->off[j], len = bk->len[j];
        if (!len) continue;
        uint64_t *lo = r->msg + off, *hi = r->msg + r->n + off;
        if (g) {
            bad += add_exact(lo, hi, g + off, len, r->fresh);
        } else if (r->fresh) {
            memset(lo, 0, len * sizeof *lo);
            memset(hi, 0, len * sizeof *hi);
        }
        size_t q = 4 * k + 2 * (size_t)j;
        *rc = cz_dist_isum_u64(d, lo, len, &r->req[q], err);
        if (!*rc) *rc = cz_dist_isum_u64(d, hi, len, &r->req[q + 1], err);
    }
    r->msg[tail_offset(r)] += (uint64_t)bad;
    cz_dist_progress(r->req, 4 * (k + 1)); /* the earlier buckets move on meanwhile */
    return bad;
}

long cz_reducer_post_next(cz_reducer *r, const cz_dist *d, const float *g, int *rc, cz_error *err)
{
    *rc = 0;
    if (r->posted >= r->n_buckets) return 0;
    return post(r, d, r->posted++, g, rc, err);
}

void cz_reducer_chunk_done(cz_reducer *r, size_t chunk, const double *sc)
{
    memcpy(r->msg + tail_offset(r) + TAIL + chunk * r->n_sc, sc, r->n_sc * sizeof(double));
    r->fresh = 0;
}

/* bucketed finish: the buckets not yet posted (this rank's accumulated chunks as they are,
 * zeros without any), the tail, then every request */
static int finish_buckets(cz_reducer *r, const cz_dist *d, cz_error *err)
{
    int rc = 0;
    while (!rc && r->posted < r->n_buckets) post(r, d, r->posted++, NULL, &rc, err);
    r->fresh = 0;
    /* requests are started in the same order on every rank, so an MPI failure is the
     * same on every rank too */
    if (!rc) rc = cz_dist_sum_u64(d, r->msg + tail_offset(r), msg_len(r, r->chunks) - tail_offset(r), err);
    int wrc = cz_dist_wait(r->req, 4 * r->n_buckets, err);
    r->posted = 0;
    return rc ? rc : wrc;
}

int cz_reducer_finish(cz_reducer *r, const cz_dist *d, double samples, float *grad, double *sc, cz_reduced *res,
                      cz_error *err)
{
    int rc;
    if (r->exact && r->n_buckets) {
        rc = finish_buckets(r, d, err);
    } else if (r->exact) {
        if (r->fresh) memset(r->msg, 0, 2 * r->n * sizeof(uint64_t)); /* this rank had no chunk */
        r->fresh = 0;
        rc = cz_dist_sum_u64(d, r->msg, msg_len(r, r->chunks), err);
    } else {
        rc = cz_dist_sum_float(d, r->fsum, r->n, err);
        if (!rc) rc = cz_dist_sum_u64(d, r->msg, msg_len(r, r->chunks), err);
    }
    if (rc) return rc;
    cz_reducer_result(r, samples, grad, sc, res);
    return 0;
}
