/* The fixed summation tree over a step's chunks (chunktree.h). */
#include "chainz/chunktree.h"

void cz_chunk_share(size_t C, int s, int P, size_t *c0, size_t *c1)
{
    *c0 = C * (size_t)s / (size_t)P;
    *c1 = C * (size_t)(s + 1) / (size_t)P;
}

size_t cz_tree_mid(size_t lo, size_t hi)
{
    size_t s = hi - lo, h = 1;
    while (h < s - h) h <<= 1; /* largest power of two below s (s >= 2) */
    return lo + h;
}

int cz_tree_siblings(size_t C, size_t lo, size_t mid, size_t hi)
{
    size_t nlo = 0, nhi = C;
    if (!(lo < mid && mid < hi && hi <= C)) return 0;
    while (nhi - nlo >= 2) {
        size_t m = cz_tree_mid(nlo, nhi);
        if (nlo == lo && nhi == hi) return m == mid;
        if (hi <= m) nhi = m;
        else if (lo >= m) nlo = m;
        else return 0; /* [lo, hi) straddles a split: not a node */
    }
    return 0;
}

static void cover(size_t lo, size_t hi, size_t a, size_t b, cz_span *out, size_t *n)
{
    if (hi <= a || lo >= b) return;
    if (a <= lo && hi <= b) {
        if (out) out[*n] = (cz_span){lo, hi};
        (*n)++;
        return;
    }
    size_t m = cz_tree_mid(lo, hi);
    cover(lo, m, a, b, out, n);
    cover(m, hi, a, b, out, n);
}

size_t cz_tree_cover(size_t C, size_t a, size_t b, cz_span *out)
{
    size_t n = 0;
    if (a < b && b <= C) cover(0, C, a, b, out, &n);
    return n;
}

size_t cz_tree_depth(size_t C, size_t a, size_t b)
{
    /* the same pushes and merges as the reducer, on spans only; the stack is never deeper
     * than two nodes per tree level (at most 2 * 64 + 1) */
    cz_span st[130];
    size_t depth = 0, most = 0;
    for (size_t c = a; c < b; c++) {
        if (depth + 1 > most) most = depth + 1; /* the chunk's own buffer while it is computed */
        st[depth++] = (cz_span){c, c + 1};
        while (depth >= 2 && cz_tree_siblings(C, st[depth - 2].lo, st[depth - 1].lo, st[depth - 1].hi)) {
            st[depth - 2].hi = st[depth - 1].hi;
            depth--;
        }
    }
    return most;
}

void cz_tree_add(float *restrict dst, const float *restrict src, size_t len)
{
    for (size_t i = 0; i < len; i++) dst[i] += src[i];
}

/* the part holding node [lo, hi)'s sum: its own if it is one of the nodes, else formed
 * from its children's */
static float *sum_node(size_t lo, size_t hi, const cz_span *nodes, float *const *parts, size_t count, size_t len)
{
    size_t a = 0, b = count;
    while (a < b) { /* the first node with nodes[i].lo >= lo */
        size_t m = a + (b - a) / 2;
        if (nodes[m].lo < lo) a = m + 1;
        else b = m;
    }
    if (a < count && nodes[a].lo == lo && nodes[a].hi == hi) return parts[a];
    if (hi - lo < 2) return NULL; /* a chunk no node covers */
    size_t m = cz_tree_mid(lo, hi);
    float *l = sum_node(lo, m, nodes, parts, count, len);
    float *r = l ? sum_node(m, hi, nodes, parts, count, len) : NULL;
    if (!r) return NULL;
    cz_tree_add(l, r, len);
    return l;
}

float *cz_tree_sum(size_t C, const cz_span *nodes, float *const *parts, size_t count, size_t len)
{
    if (!count || C == 0) return NULL;
    return sum_node(0, C, nodes, parts, count, len);
}
