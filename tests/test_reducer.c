/* The per-step reducer (include/chainz/reducer.h) and its chunk tree (chunktree.h) without
 * MPI. Ranks are simulated: each simulated rank adds its share of the chunks to its own
 * reducer, and the owners' step (cz_tree_sum over every rank's cover) is done here, as the
 * exchange does it slice by slice. The sums give the same bytes for 1 to 6 ranks and every
 * rotation of the shares, and equal an independent recursive float tree written here; the
 * tree's covers, depths and plan; the scalars in chunk order; the failure flag; misuse
 * refused. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chainz/reducer.h"

enum { N = 257, CHUNKS = 23, NSC = 4 };

static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s) { return (double)(mix(s) >> 11) * 0x1p-53; }

/* |x| log-uniform over 1e-30..1e30, random sign: float sums whose order matters */
static void random_chunks(float *g, double *sc, size_t chunks, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < chunks * N; i++) {
        double mag = pow(10.0, -30.0 + 60.0 * uniform(&s));
        g[i] = (float)((mix(&s) & 1) ? -mag : mag);
    }
    for (size_t i = 0; i < chunks * NSC; i++) sc[i] = (uniform(&s) - 0.3) * pow(10.0, 20.0 * uniform(&s));
}

/* the reference, written independently of chunktree.c: the sum of chunks [lo, hi) of
 * value i, split at the largest power of two below hi - lo */
static float ref_tree(const float *g, size_t lo, size_t hi, size_t i)
{
    if (hi - lo == 1) return g[lo * N + i];
    size_t h = 1;
    while (2 * h < hi - lo) h *= 2;
    return ref_tree(g, lo, lo + h, i) + ref_tree(g, lo + h, hi, i);
}

/* P simulated ranks with the shares rotated by rot: each adds its chunks; then the owner's
 * step over the whole vector. grad = sum / samples as the reducer divides. */
static void reduce_simulated(const float *g, size_t chunks, int P, long rot, float *grad)
{
    cz_reducer rk[6];
    cz_error err;
    cz_span nodes[6 * 130];
    float *parts[6 * 130];
    size_t total = 0;
    assert_true(P <= 6);
    for (int q = 0; q < P; q++) {
        size_t c0, c1;
        assert_int_equal(cz_reducer_init(&rk[q], N, NSC, chunks, 0, 1, q, P, &err), 0);
        assert_int_equal(cz_reducer_begin(&rk[q], chunks, rot, &c0, &c1, &err), 0);
        double sc[NSC] = {0};
        for (size_t c = c0; c < c1; c++) {
            memcpy(cz_reducer_buffer(&rk[q]), g + c * N, N * sizeof(float));
            cz_reducer_add(&rk[q], c, sc);
        }
        /* what a rank holds at the end is the tree's cover of its share */
        cz_span cov[130], mine[130];
        size_t k = cz_reducer_cover(&rk[q], mine);
        assert_int_equal(k, cz_tree_cover(chunks, c0, c1, cov));
        for (size_t i = 0; i < k; i++) {
            assert_true(mine[i].lo == cov[i].lo && mine[i].hi == cov[i].hi);
            nodes[total] = mine[i];
            parts[total] = malloc(N * sizeof(float));
            memcpy(parts[total++], cz_reducer_node(&rk[q], i), N * sizeof(float));
        }
    }
    /* the owner's step: the nodes by chunk (insertion sort on lo) */
    for (size_t i = 1; i < total; i++)
        for (size_t j = i; j > 0 && nodes[j - 1].lo > nodes[j].lo; j--) {
            cz_span t = nodes[j];
            nodes[j] = nodes[j - 1];
            nodes[j - 1] = t;
            float *p = parts[j];
            parts[j] = parts[j - 1];
            parts[j - 1] = p;
        }
    const float *root = cz_tree_sum(chunks, nodes, parts, total, N);
    assert_non_null(root);
    for (size_t i = 0; i < N; i++) grad[i] = (float)((double)root[i] * (1.0 / 96.0));
    for (size_t i = 0; i < total; i++) free(parts[i]);
    for (int q = 0; q < P; q++) cz_reducer_free(&rk[q]);
}

static void test_reducer_any_ranks_and_rotation_give_identical_bytes(void **state)
{
    (void)state;
    float *g = malloc((size_t)CHUNKS * N * sizeof(float));
    double sc[CHUNKS * NSC];
    random_chunks(g, sc, CHUNKS, 7);
    const size_t counts[3] = {CHUNKS, 8, 3};
    for (int t = 0; t < 3; t++) {
        size_t C = counts[t];
        float want[N], got[N], seq[N];
        for (size_t i = 0; i < N; i++) want[i] = (float)((double)ref_tree(g, 0, C, i) * (1.0 / 96.0));
        /* the order matters for these values: chunk-order sums differ from the tree's */
        int differ = 0;
        for (size_t i = 0; i < N; i++) {
            float s = 0;
            for (size_t c = 0; c < C; c++) s += g[c * N + i];
            seq[i] = (float)((double)s * (1.0 / 96.0));
            differ |= memcmp(&seq[i], &want[i], sizeof(float)) != 0;
        }
        if (C > 3) assert_true(differ);
        for (int P = 1; P <= 6; P++)
            for (long rot = 0; rot < P; rot++) {
                reduce_simulated(g, C, P, rot, got);
                assert_memory_equal(got, want, sizeof got);
            }
    }
    free(g);
}

/* One rank through the reducer's own finish (no MPI with one rank): the root divided, the
 * scalars summed in chunk order (the same doubles in the same order), the failure flag. */
static void test_reducer_one_rank_finish_scalars_and_flag(void **state)
{
    (void)state;
    float *g = malloc((size_t)CHUNKS * N * sizeof(float));
    double sc[CHUNKS * NSC];
    random_chunks(g, sc, CHUNKS, 11);
    cz_reducer r;
    cz_error err;
    cz_dist one = {0, 1};
    size_t c0, c1;
    assert_int_equal(cz_reducer_init(&r, N, NSC, CHUNKS, 5, 1, 0, 1, &err), 0);
    for (int round = 0; round < 2; round++) {
        size_t C = round ? 5 : CHUNKS; /* the last step of an epoch has fewer chunks */
        assert_int_equal(cz_reducer_begin(&r, C, 3, &c0, &c1, &err), 0);
        assert_true(c0 == 0 && c1 == C);
        for (size_t c = c0; c < c1; c++) {
            memcpy(cz_reducer_buffer(&r), g + c * N, N * sizeof(float));
            cz_reducer_add(&r, c, sc + c * NSC);
        }
        if (round) cz_reducer_fail(&r);
        float grad[N];
        double got[NSC];
        cz_reduced res;
        assert_int_equal(cz_reducer_finish(&r, &one, 96.0, grad, got, &res, &err), 0);
        for (size_t i = 0; i < N; i++) {
            float w = (float)((double)ref_tree(g, 0, C, i) * (1.0 / 96.0));
            assert_memory_equal(&grad[i], &w, sizeof w);
        }
        for (size_t k = 0; k < NSC; k++) {
            double w = 0;
            for (size_t c = 0; c < C; c++) w += sc[c * NSC + k];
            assert_memory_equal(&got[k], &w, sizeof w);
        }
        assert_int_equal(res.failed, round);
    }
    cz_reducer_free(&r);
    free(g);
}

/* The tree: every share's cover partitions it into tree nodes; siblings are recognised
 * only as children of one node; the stack depth stays within two nodes per level, and the
 * plan reserves exactly the deepest share. */
static void test_reducer_tree_covers_depths_and_plan(void **state)
{
    (void)state;
    cz_span cov[300];
    for (size_t C = 1; C <= 70; C++) {
        size_t levels = 0;
        while (((size_t)1 << levels) < C) levels++;
        for (size_t a = 0; a < C; a++)
            for (size_t b = a + 1; b <= C; b++) {
                size_t k = cz_tree_cover(C, a, b, cov), at = a;
                for (size_t i = 0; i < k; i++) {
                    assert_int_equal(cov[i].lo, at);
                    at = cov[i].hi;
                    /* a node: a single chunk, or two siblings */
                    if (cov[i].hi - cov[i].lo > 1)
                        assert_true(cz_tree_siblings(C, cov[i].lo, cz_tree_mid(cov[i].lo, cov[i].hi), cov[i].hi));
                }
                assert_int_equal(at, b);
                assert_true(cz_tree_depth(C, a, b) <= 2 * levels + 1);
            }
        if (C >= 3) assert_false(cz_tree_siblings(C, 1, 2, 3)); /* [1, 3) straddles [0, 2) | [2, ...) */
        for (int P = 1; P <= 5; P++) {
            size_t slots, nodes, most = 1, all = 0;
            cz_reducer_plan(C, 0, 1, P, &slots, &nodes);
            for (int s = 0; s < P; s++) {
                size_t a, b;
                cz_chunk_share(C, s, P, &a, &b);
                if (cz_tree_depth(C, a, b) > most) most = cz_tree_depth(C, a, b);
                all += cz_tree_cover(C, a, b, NULL);
            }
            assert_int_equal(slots, most);
            assert_int_equal(nodes, P > 1 ? all : 0);
        }
    }
    assert_int_equal(cz_tree_mid(0, 7), 4);
    assert_int_equal(cz_tree_mid(4, 7), 6);
    assert_int_equal(cz_tree_mid(0, 8), 4);
}

static void test_reducer_refuses_misuse(void **state)
{
    (void)state;
    cz_reducer r;
    cz_error err;
    assert_int_equal(cz_reducer_init(&r, 8, NSC, CZ_REDUCER_MAX_CHUNKS + 1, 0, 1, 0, 1, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "chunks per step"));
    cz_reducer_free(&r);
    assert_int_equal(cz_reducer_init(&r, 10, NSC, 4, 0, 1, 0, 2, &err), 0);
    size_t c0, c1;
    assert_int_equal(cz_reducer_begin(&r, 3, 0, &c0, &c1, &err), CZ_EINVAL); /* not planned */
    assert_true(c0 == 0 && c1 == 0);
    const cz_bucket gap[2] = {{{0, 0}, {4, 0}}, {{5, 0}, {5, 0}}};
    const cz_bucket twice[2] = {{{0, 0}, {6, 0}}, {{5, 0}, {5, 0}}};
    const cz_bucket beyond[1] = {{{0, 8}, {8, 5}}};
    const cz_bucket good[2] = {{{6, 0}, {4, 0}}, {{0, 0}, {6, 0}}};
    assert_int_equal(cz_reducer_set_buckets(&r, gap, 2, &err), CZ_EINVAL);
    assert_int_equal(cz_reducer_set_buckets(&r, twice, 2, &err), CZ_EINVAL);
    assert_int_equal(cz_reducer_set_buckets(&r, beyond, 1, &err), CZ_EINVAL);
    assert_int_equal(cz_reducer_set_buckets(&r, good, 2, &err), 0);
    cz_reducer_free(&r);
    assert_int_equal(cz_reducer_init(&r, 10, NSC, 4, 0, 0, 0, 2, &err), 0);
    assert_int_equal(cz_reducer_set_buckets(&r, good, 2, &err), 0); /* float mode: the ranges of the blocks */
    assert_int_equal(r.overlap, 0);
    cz_reducer_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reducer_any_ranks_and_rotation_give_identical_bytes),
        cmocka_unit_test(test_reducer_one_rank_finish_scalars_and_flag),
        cmocka_unit_test(test_reducer_tree_covers_depths_and_plan),
        cmocka_unit_test(test_reducer_refuses_misuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
