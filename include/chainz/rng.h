/* Portable, seedable random numbers. xoshiro256** for streams whose state is saved in
 * checkpoints (initialisation, shuffling), and a stateless counter-based hash for values
 * that must depend only on their coordinates (dropout masks keyed by sample, layer and
 * neuron), so that results do not depend on which rank or thread draws them. */
#ifndef CHAINZ_RNG_H
#define CHAINZ_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} cz_rng;

/* Seeds all 256 bits from one 64-bit seed through splitmix64 (never all-zero). */
void cz_rng_seed(cz_rng *r, uint64_t seed);
uint64_t cz_rng_u64(cz_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double cz_rng_uniform(cz_rng *r);
/* Standard normal (Box-Muller; uses two uniforms per call, no cached value so that the
 * whole state is s[4]). */
double cz_rng_normal(cz_rng *r);
/* Uniform integer in [0, n) without modulo bias; n > 0. */
uint64_t cz_rng_below(cz_rng *r, uint64_t n);
/* Fisher-Yates permutation of 0..n-1 into perm. */
void cz_rng_permutation(cz_rng *r, uint64_t *perm, size_t n);

/* Stateless mix of a key and a counter (splitmix64 finaliser applied twice). */
uint64_t cz_hash64(uint64_t key, uint64_t counter);
/* cz_hash64 mapped to a uniform double in [0, 1). */
double cz_hash_uniform(uint64_t key, uint64_t counter);

#endif
