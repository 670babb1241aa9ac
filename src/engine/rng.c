/* xoshiro256** (Blackman and Vigna) seeded by splitmix64. */
#include "chainz/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void cz_rng_seed(cz_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3])) r->s[0] = 1;
}

uint64_t cz_rng_u64(cz_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double cz_rng_uniform(cz_rng *r) { return (double)(cz_rng_u64(r) >> 11) * 0x1.0p-53; }

double cz_rng_normal(cz_rng *r)
{
    double u1 = 1.0 - cz_rng_uniform(r); /* (0, 1]: log is finite */
    double u2 = cz_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

uint64_t cz_rng_below(cz_rng *r, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n; /* reject the biased tail */
    uint64_t x;
    do x = cz_rng_u64(r);
    while (x >= limit);
    return x % n;
}

void cz_rng_permutation(cz_rng *r, uint64_t *perm, size_t n)
{
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)cz_rng_below(r, i);
        uint64_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

uint64_t cz_hash64(uint64_t key, uint64_t counter)
{
    uint64_t x = key ^ 0x6a09e667f3bcc909ULL;
    uint64_t h = splitmix64(&x);
    x = h ^ counter;
    return splitmix64(&x);
}

double cz_hash_uniform(uint64_t key, uint64_t counter)
{
    return (double)(cz_hash64(key, counter) >> 11) * 0x1.0p-53;
}
