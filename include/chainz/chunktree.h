/* The fixed summation tree over a step's chunks (docs/DESIGN.md section 2, "Exact
 * reduction"). The chunk gradients of a step are added in one binary tree over the chunk
 * indices [0, C) that depends on C alone: node [lo, hi) has the children [lo, lo + h) and
 * [lo + h, hi), h the largest power of two below hi - lo. Float addition is commutative, so
 * a node's sum depends only on its children's sums; whichever rank computes a node, and
 * however the chunks are spread over ranks, every node has the same bits: the sum does not
 * depend on the number of ranks. A rank computing chunks [a, b) holds the maximal nodes
 * inside [a, b) (its cover); the owner of a slice of the parameters finishes the tree from
 * every rank's cover. Pure functions, no MPI. */
#ifndef CHAINZ_CHUNKTREE_H
#define CHAINZ_CHUNKTREE_H

#include <stddef.h>

typedef struct {
    size_t lo, hi; /* chunks [lo, hi) */
} cz_span;

/* The chunks [c0, c1) of share s of P: consecutive, in share order, sizes differing by at
 * most one. Rank q computes share (q + step) mod P in training (the shares rotate). */
void cz_chunk_share(size_t C, int s, int P, size_t *c0, size_t *c1);
/* The split point of node [lo, hi) (hi - lo >= 2). */
size_t cz_tree_mid(size_t lo, size_t hi);
/* 1 when [lo, hi) is a node of the tree over [0, C) with children [lo, mid) and [mid, hi). */
int cz_tree_siblings(size_t C, size_t lo, size_t mid, size_t hi);
/* The maximal nodes inside [a, b), left to right, into out (may be NULL); @return their
 * number (0 for an empty range). */
size_t cz_tree_cover(size_t C, size_t a, size_t b, cz_span *out);
/* The most nodes a rank holds at once while it adds chunks a, a+1, ..., b-1 one by one,
 * merging siblings as soon as both are complete (the chunk being computed included): the
 * buffers it needs. */
size_t cz_tree_depth(size_t C, size_t a, size_t b);
/* Finishes the tree over [0, C) from `count` nodes that partition [0, C), sorted by lo,
 * with their sums in parts[i] (len floats each): the sums of the nodes above them are
 * formed in place in the parts (left += right). @return the part that holds the root's
 * sum (NULL when count is 0 or the nodes do not partition [0, C)). */
float *cz_tree_sum(size_t C, const cz_span *nodes, float *const *parts, size_t count, size_t len);
/* dst[i] += src[i] for i < len: a node from its two children (the one addition of the tree). */
void cz_tree_add(float *restrict dst, const float *restrict src, size_t len);

#endif
