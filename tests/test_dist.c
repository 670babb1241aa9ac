/* MPI wrappers (include/chainz/dist.h), run with 3 ranks under mpiexec: the exact
 * fixed-point allreduce, the reducer's one allreduce, agreement on the first failure, the replica drift check and the
 * plain reductions. Every rank holds different data.
 *
 * Each test makes all its collective calls before its first check of a result: a failed
 * assertion leaves the test on one rank only, and the other ranks must not be waiting
 * for it in a collective. The ranks then agree on the number of failures, so every rank
 * exits non-zero if any rank saw a failure. Only rank 0 prints cmocka's progress;
 * failures (stderr) are printed by every rank. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chainz/dist.h"
#include "chainz/reducer.h"
#include "chainz/rng.h"

static cz_dist g_dist;

enum { N_VALUES = 3000, SLOTS = 4 };

/* All values are drawn from one seeded stream, so every rank can rebuild all of them;
 * rank r owns a contiguous, uneven share. */
static double value_at(cz_rng *r)
{
    double mag = pow(10.0, -12.0 + 18.0 * cz_rng_uniform(r));
    return (cz_rng_u64(r) & 1) ? -mag : mag;
}

static size_t share_begin(int rank, int size)
{
    /* uneven: rank r gets a share proportional to r + 1 */
    size_t total_w = (size_t)size * (size_t)(size + 1) / 2, w = (size_t)rank * (size_t)(rank + 1) / 2;
    return N_VALUES * w / total_w;
}

static void test_dist_sum_fixed_equals_single_accumulator(void **state)
{
    (void)state;
    const cz_dist *d = &g_dist;
    double *all = malloc(N_VALUES * sizeof *all);
    assert_non_null(all);
    cz_rng r;
    cz_rng_seed(&r, 31337);
    for (size_t i = 0; i < N_VALUES; i++) all[i] = value_at(&r);
    all[17] = NAN; /* rank 0 holds it */
    all[N_VALUES - 5] = INFINITY; /* the last rank holds it */

    cz_fixed_acc ref, mine;
    assert_int_equal(cz_fixed_init(&ref, SLOTS), 0);
    assert_int_equal(cz_fixed_init(&mine, SLOTS), 0);
    for (size_t i = 0; i < N_VALUES; i++) cz_fixed_add_double(&ref, i % SLOTS, &all[i], 1);

    /* this rank's share, added back to front: a different order than the reference */
    size_t b = share_begin(d->rank, d->size), e = share_begin(d->rank + 1, d->size);
    for (size_t i = e; i-- > b;) cz_fixed_add_double(&mine, i % SLOTS, &all[i], 1);
    cz_fixed local0 = mine.v[0];
    long local_bad = mine.bad;

    cz_error err = {0};
    int rc = cz_dist_sum_fixed(d, &mine, &err);
    /* and the local partial really was partial */
    assert_int_equal(rc, 0);
    assert_true(e > b);
    assert_memory_not_equal(&local0, &ref.v[0], sizeof local0);
    assert_true(local_bad < 2);
    assert_memory_equal(mine.v, ref.v, SLOTS * sizeof(cz_fixed));
    assert_int_equal(mine.bad, 2);
    assert_int_equal(ref.bad, 2);
    for (size_t s = 0; s < SLOTS; s++) {
        double x = cz_fixed_value(&mine, s), y = cz_fixed_value(&ref, s);
        assert_memory_equal(&x, &y, sizeof x);
    }
    cz_fixed_free(&ref);
    cz_fixed_free(&mine);
    free(all);
}

/* One process adding all NC chunks (the reference): a reducer of one rank needs no MPI. */
static int reduce_alone(const float *g, const double *sc, size_t NC, size_t NV, size_t NS, double samples,
                        const cz_bucket *bk, size_t nbk, float *want, double *want_sc, cz_reduced *wr)
{
    cz_reducer ref;
    cz_error err = {0};
    cz_dist one = {0, 1};
    size_t c0, c1;
    int rc = cz_reducer_init(&ref, NV, NS, NC, 0, 1, 0, 1, &err);
    if (!rc && bk) rc = cz_reducer_set_buckets(&ref, bk, nbk, &err); /* the same blocks of the sum of squares */
    if (rc) return rc;
    rc = cz_reducer_begin(&ref, NC, 0, &c0, &c1, &err);
    if (rc) return rc;
    for (size_t c = c0; c < c1; c++) {
        memcpy(cz_reducer_buffer(&ref), g + c * NV, NV * sizeof *g);
        cz_reducer_add(&ref, c, sc + c * NS);
    }
    rc = cz_reducer_finish(&ref, &one, samples, want, want_sc, wr, &err);
    cz_reducer_free(&ref);
    return rc;
}

/* The reducer's exchange: 3 ranks holding uneven, rotated shares of 7 chunks of 12589
 * values (4 blocks of the sum of squares, split over the owners) give the bytes of one
 * process that added all 7: gradient, scalars and sum of squares; a value of 1e30 (far
 * beyond the old fixed-point range) sums like any other; in the second round a NaN passes
 * through to the sum (training stops on it), and one rank's failure flag and another's stop
 * request are seen by all. */
static void test_dist_reducer_equals_single_process(void **state)
{
    (void)state;
    enum { NV = 3 * CZ_REDUCER_BLOCK + 301, NC = 7, NS = 4 };
    const cz_dist *d = &g_dist;
    float *g = malloc((size_t)NC * NV * sizeof *g), *want = malloc(NV * sizeof *want), *got = malloc(NV * sizeof *got);
    double sc[NC * NS];
    assert_true(g && want && got);
    for (int round = 0; round < 2; round++) {
        cz_rng r;
        cz_rng_seed(&r, 4242 + (uint64_t)round);
        for (size_t i = 0; i < (size_t)NC * NV; i++) g[i] = (float)value_at(&r);
        for (size_t i = 0; i < NC * NS; i++) sc[i] = value_at(&r);
        g[6 * NV + 9] = 1e30f; /* chunk 6 */
        if (round) g[2 * NV + 5] = NAN; /* chunk 2 */
        double want_sc[NS], got_sc[NS];
        cz_reduced wr, gr;
        int rc1 = reduce_alone(g, sc, NC, NV, NS, 12.0, NULL, 0, want, want_sc, &wr);
        cz_reducer mine;
        cz_error err = {0};
        size_t b, e;
        int rc2 = cz_reducer_init(&mine, NV, NS, NC, 0, 1, d->rank, d->size, &err);
        rc2 |= cz_reducer_begin(&mine, NC, 1 + round, &b, &e, &err); /* shares rotated */
        for (size_t c = b; c < e; c++) {
            memcpy(cz_reducer_buffer(&mine), g + c * NV, NV * sizeof *g);
            cz_reducer_add(&mine, c, sc + c * NS);
        }
        if (round && d->rank == 2) cz_reducer_fail(&mine);
        if (round && d->rank == 1) cz_reducer_stop(&mine); /* a signal on one rank */
        int rc = cz_reducer_finish(&mine, d, 12.0, got, got_sc, &gr, &err);
        rc |= cz_reducer_gather(&mine, d, got, &err); /* each rank held its slices */
        assert_int_equal(rc1 | rc2 | rc, 0);
        assert_true(isfinite(got[9]) && got[9] > 1e28f); /* 1e30 / 12 */
        assert_memory_equal(got, want, NV * sizeof *got);
        assert_memory_equal(got_sc, want_sc, sizeof got_sc);
        if (round) assert_true(isnan(got[5]) && isnan(gr.sumsq) && isnan(wr.sumsq));
        else assert_memory_equal(&gr.sumsq, &wr.sumsq, sizeof gr.sumsq);
        assert_int_equal(gr.failed, round);
        assert_int_equal(gr.stop, round);
        assert_int_equal(wr.stop, 0);
        assert_int_equal(wr.failed, 0);
        cz_reducer_free(&mine);
    }
    free(g);
    free(want);
    free(got);
}

/* The overlapped (bucketed) exchange: each rank adds its chunks but the last whole, the
 * last bucket by bucket (starting each at once), a rank without a chunk sends nothing:
 * the bytes of one process that added every chunk, for 7 chunks and for 2 (a rank idle),
 * with the shares rotated. */
static void test_dist_reducer_buckets_equal_one_message(void **state)
{
    (void)state;
    enum { NV = 301, NS = 4 };
    const cz_dist *d = &g_dist;
    const cz_bucket bk[3] = {{{200, 0}, {101, 0}}, {{50, 180}, {130, 20}}, {{0, 0}, {50, 0}}};
    const size_t ncs[2] = {7, 2};
    for (int t = 0; t < 2; t++) {
        size_t NC = ncs[t];
        float *g = malloc(NC * NV * sizeof *g);
        double *sc = malloc(NC * NS * sizeof *sc);
        assert_true(g && sc);
        cz_rng r;
        cz_rng_seed(&r, 77 + NC);
        for (size_t i = 0; i < NC * NV; i++) g[i] = (float)value_at(&r);
        for (size_t i = 0; i < NC * NS; i++) sc[i] = value_at(&r);
        float want[NV], got[NV];
        double want_sc[NS], got_sc[NS];
        cz_reduced wr, gr;
        int rc = reduce_alone(g, sc, NC, NV, NS, 9.0, bk, 3, want, want_sc, &wr);
        cz_reducer mine;
        cz_error err = {0};
        size_t b, e;
        rc |= cz_reducer_init(&mine, NV, NS, NC, 0, 1, d->rank, d->size, &err) |
              cz_reducer_set_buckets(&mine, bk, 3, &err);
        rc |= cz_reducer_begin(&mine, NC, 2 + t, &b, &e, &err);
        for (size_t c = b; c < e; c++) {
            float *buf = cz_reducer_buffer(&mine);
            if (c + 1 < e) {
                memcpy(buf, g + c * NV, NV * sizeof *g);
                cz_reducer_add(&mine, c, sc + c * NS);
                continue;
            }
            /* the last chunk: each bucket's values arrive just before it is started */
            for (int k = 0; k < 3 && !rc; k++) {
                for (int j = 0; j < 2; j++)
                    memcpy(buf + bk[k].off[j], g + c * NV + bk[k].off[j], bk[k].len[j] * sizeof *g);
                cz_reducer_post_next(&mine, d, &rc, &err);
            }
            cz_reducer_add(&mine, c, sc + c * NS);
        }
        rc |= cz_reducer_finish(&mine, d, 9.0, got, got_sc, &gr, &err);
        /* my slices are the final values; the rest is gathered */
        float part[NV];
        memcpy(part, got, sizeof part);
        size_t nsl = cz_reducer_slices(&mine), owned = 0;
        rc |= cz_reducer_gather(&mine, d, got, &err);
        assert_int_equal(rc, 0);
        for (size_t k = 0; k < nsl; k++) {
            size_t off, len;
            cz_reducer_slice(&mine, k, &off, &len);
            assert_memory_equal(part + off, want + off, len * sizeof(float));
            owned += len;
        }
        assert_true(owned < NV); /* sharded: each rank owns a share */
        assert_memory_equal(got, want, sizeof got);
        /* the sum of squares of 3 ranks' blocks has the single process's bits */
        assert_memory_equal(&gr.sumsq, &wr.sumsq, sizeof gr.sumsq);
        assert_memory_equal(got_sc, want_sc, sizeof got_sc);
        assert_int_equal(gr.failed, 0);
        cz_reducer_free(&mine);
        free(g);
        free(sc);
    }
}

typedef struct {
    int rc;
    cz_error err;
    char rank0_msg[sizeof ((cz_error *)0)->msg];
} agree_result;

/* Calls cz_dist_agree with this rank's status and message, then fetches rank 0's message
 * so that every rank can check that all ranks hold the same one. */
static void agree(int status, const char *msg, agree_result *out)
{
    memset(out, 0, sizeof *out);
    if (status) cz_error_set(&out->err, status, "%s", msg);
    else snprintf(out->err.msg, sizeof out->err.msg, "untouched");
    out->rc = cz_dist_agree(&g_dist, status, &out->err);
    memcpy(out->rank0_msg, out->err.msg, sizeof out->rank0_msg);
    cz_error berr = {0};
    if (cz_dist_bcast(&g_dist, out->rank0_msg, sizeof out->rank0_msg, 0, &berr)) out->rc = 12345;
}

static void test_dist_agree_one_rank_fails(void **state)
{
    (void)state;
    agree_result a;
    agree(g_dist.rank == 1 ? CZ_EIO : 0, "cannot write shard 7: disk full", &a);
    assert_int_equal(a.rc, CZ_EIO);
    assert_int_equal(a.err.code, CZ_EIO);
    assert_non_null(strstr(a.err.msg, "rank 1:"));
    assert_non_null(strstr(a.err.msg, "cannot write shard 7: disk full"));
    assert_string_equal(a.err.msg, a.rank0_msg);
}

static void test_dist_agree_lowest_failing_rank_wins(void **state)
{
    (void)state;
    agree_result a;
    int status = g_dist.rank == 1 ? CZ_EINVAL : g_dist.rank == 2 ? CZ_ERUNTIME : 0;
    const char *msg = g_dist.rank == 1 ? "bad value in row 12" : "loss is NaN at step 9";
    agree(status, msg, &a);
    assert_int_equal(a.rc, CZ_EINVAL);
    assert_int_equal(a.err.code, CZ_EINVAL);
    assert_non_null(strstr(a.err.msg, "rank 1:"));
    assert_non_null(strstr(a.err.msg, "bad value in row 12"));
    assert_null(strstr(a.err.msg, "NaN"));
    assert_string_equal(a.err.msg, a.rank0_msg);
}

static void test_dist_agree_all_ok(void **state)
{
    (void)state;
    agree_result a;
    agree(0, "", &a);
    assert_int_equal(a.rc, 0);
    assert_string_equal(a.err.msg, "untouched");
    /* a failure of rank 0 alone (the root of the broadcast) */
    agree(g_dist.rank == 0 ? CZ_ENOMEM : 0, "out of memory for 3 GB", &a);
    assert_int_equal(a.rc, CZ_ENOMEM);
    assert_non_null(strstr(a.err.msg, "rank 0: out of memory for 3 GB"));
    assert_string_equal(a.err.msg, a.rank0_msg);
}

static void test_dist_check_replicas(void **state)
{
    (void)state;
    const cz_dist *d = &g_dist;
    cz_error e1 = {0}, e2 = {0};
    uint64_t same = 0x0123456789abcdefULL;
    int rc1 = cz_dist_check_replicas(d, same, &e1);
    uint64_t mine = d->rank == 2 ? same ^ 0x10 : same;
    int rc2 = cz_dist_check_replicas(d, mine, &e2);
    /* a higher checksum on rank 0 only: not fooled by which side is larger */
    cz_error e3 = {0};
    int rc3 = cz_dist_check_replicas(d, d->rank == 0 ? UINT64_MAX : 1, &e3);
    assert_int_equal(rc1, 0);
    assert_int_equal(rc2, CZ_ERUNTIME);
    assert_int_equal(e2.code, CZ_ERUNTIME);
    assert_non_null(strstr(e2.msg, "drifted"));
    assert_int_equal(rc3, CZ_ERUNTIME);
    assert_non_null(strstr(e3.msg, "drifted"));
}

/* 1 if msg names `rank` as a rank: "rank 2", "ranks 0, 2", "rank(s) 2", ... */
static int names_rank(const char *msg, int rank)
{
    for (const char *p = strstr(msg, "rank"); p; p = strstr(p + 1, "rank")) {
        const char *q = p + 4;
        while (*q && strchr("s() :", *q)) q++;
        while (*q >= '0' && *q <= '9') {
            char *end;
            long v = strtol(q, &end, 10);
            if (v == rank) return 1;
            q = end;
            while (*q == ',' || *q == ' ') q++;
            if (!strncmp(q, "and ", 4)) q += 4;
        }
    }
    return 0;
}

/* dist.h: "a mismatch is CZ_ERUNTIME naming the ranks that drifted"; and as for every
 * cross-rank failure, all ranks should report the same message. With checksums
 * (A, A, B) the rank that drifted is 2. */
static void test_dist_check_replicas_names_drifted_rank(void **state)
{
    (void)state;
    const cz_dist *d = &g_dist;
    cz_error e = {0};
    uint64_t same = 0xfeedfacecafebeefULL;
    int rc = cz_dist_check_replicas(d, d->rank == 2 ? same + 1 : same, &e);
    char rank0_msg[sizeof e.msg];
    memcpy(rank0_msg, e.msg, sizeof rank0_msg);
    cz_error berr = {0};
    int brc = cz_dist_bcast(d, rank0_msg, sizeof rank0_msg, 0, &berr);
    assert_int_equal(brc, 0);
    assert_int_equal(rc, CZ_ERUNTIME);
    if (!names_rank(e.msg, 2)) print_error("rank %d: message does not name rank 2: %s\n", d->rank, e.msg);
    assert_true(names_rank(e.msg, 2));
    assert_string_equal(e.msg, rank0_msg);
}

static void test_dist_sum_u64_and_max_int(void **state)
{
    (void)state;
    const cz_dist *d = &g_dist;
    cz_error err = {0};
    uint64_t u[3] = {(uint64_t)d->rank + 1, 1ULL << 40, (uint64_t)d->rank * 1000000000000ULL};
    int rc1 = cz_dist_sum_u64(d, u, 3, &err);
    int m[3] = {d->rank, -d->rank, d->rank == 1 ? 77 : -5};
    int rc2 = cz_dist_max_int(d, m, 3, &err);
    double x[2] = {(double)d->rank, d->rank == 2 ? -0.5 : -1.5};
    int rc3 = cz_dist_max_double(d, x, 2, &err);
    uint64_t n = (uint64_t)d->size;
    assert_int_equal(rc1, 0);
    assert_int_equal(rc2, 0);
    assert_int_equal(rc3, 0);
    assert_int_equal(d->size, 3);
    assert_true(u[0] == n * (n + 1) / 2);
    assert_true(u[1] == n << 40);
    assert_true(u[2] == 3000000000000ULL); /* beyond 32 bits */
    assert_int_equal(m[0], d->size - 1);
    assert_int_equal(m[1], 0);
    assert_int_equal(m[2], 77);
    assert_true(x[0] == 2.0 && x[1] == -0.5);
}

static void test_dist_bcast_from_each_root(void **state)
{
    (void)state;
    const cz_dist *d = &g_dist;
    cz_error err = {0};
    char got[3][32];
    int rc = 0;
    for (int root = 0; root < 3; root++) {
        snprintf(got[root], sizeof got[root], "from rank %d", d->rank);
        rc |= cz_dist_bcast(d, got[root], sizeof got[root], root, &err);
    }
    assert_int_equal(rc, 0);
    assert_string_equal(got[0], "from rank 0");
    assert_string_equal(got[1], "from rank 1");
    assert_string_equal(got[2], "from rank 2");
}

/* Records of 24 bytes, rank r sending 2 r + 1 of them (rank r's first is 100 r): rank 0
 * receives them in rank order; a total beyond the room is refused on every rank. */
static void test_dist_gather_in_rank_order(void **state)
{
    (void)state;
    const cz_dist *d = &g_dist;
    cz_error err = {0}, err2 = {0};
    enum { W = 3 };
    size_t n = 2 * (size_t)d->rank + 1, cap = (size_t)d->size * (size_t)d->size, total = 0, total2 = 0;
    uint64_t send[2 * 8 + 1][W], *recv = d->rank == 0 ? calloc(cap * W, sizeof *recv) : NULL;
    for (size_t k = 0; k < n; k++)
        for (int w = 0; w < W; w++) send[k][w] = 100 * (uint64_t)d->rank + k + 1000 * (uint64_t)w;
    int rc = cz_dist_gather(d, send, n, sizeof send[0], recv, cap, &total, &err);
    int rc2 = cz_dist_gather(d, send, n, sizeof send[0], recv, cap - 1, &total2, &err2);
    assert_int_equal(rc, 0);
    assert_int_equal(total, cap); /* sum of 2 r + 1 over r < P is P^2 */
    assert_int_equal(rc2, CZ_EINVAL);
    assert_non_null(strstr(err2.msg, "cannot gather"));
    if (d->rank == 0) {
        size_t k = 0;
        for (int r = 0; r < d->size; r++)
            for (size_t j = 0; j < 2 * (size_t)r + 1; j++, k++)
                for (int w = 0; w < W; w++)
                    assert_int_equal(recv[k * W + (size_t)w], 100 * (uint64_t)r + j + 1000 * (uint64_t)w);
    }
    free(recv);
}

int main(int argc, char **argv)
{
    cz_error err = {0};
    if (cz_dist_init(&argc, &argv, &g_dist, &err)) {
        fprintf(stderr, "test_dist: %s\n", err.msg);
        return 1;
    }
    if (g_dist.size != 3) {
        if (g_dist.rank == 0) fprintf(stderr, "test_dist: run with 3 ranks, not %d\n", g_dist.size);
        cz_dist_finalize();
        return 1;
    }
    /* cmocka 1.1.5 prints progress on stdout and failures on stderr: keep rank 0's
     * progress and everyone's failures */
    if (g_dist.rank != 0 && !freopen("/dev/null", "w", stdout)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dist_sum_fixed_equals_single_accumulator),
        cmocka_unit_test(test_dist_reducer_equals_single_process),
        cmocka_unit_test(test_dist_reducer_buckets_equal_one_message),
        cmocka_unit_test(test_dist_agree_one_rank_fails),
        cmocka_unit_test(test_dist_agree_lowest_failing_rank_wins),
        cmocka_unit_test(test_dist_agree_all_ok),
        cmocka_unit_test(test_dist_check_replicas),
        cmocka_unit_test(test_dist_check_replicas_names_drifted_rank),
        cmocka_unit_test(test_dist_sum_u64_and_max_int),
        cmocka_unit_test(test_dist_bcast_from_each_root),
        cmocka_unit_test(test_dist_gather_in_rank_order),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    /* every rank exits with the worst count, so no rank reports success alone */
    int worst = failed;
    if (cz_dist_max_int(&g_dist, &worst, 1, &err)) worst = failed ? failed : 1;
    if (g_dist.rank == 0 && worst != failed)
        fprintf(stderr, "test_dist: another rank had %d failed test(s)\n", worst);
    cz_dist_finalize();
    return worst;
}
