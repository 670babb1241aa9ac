/* Threads for the engine's own loops (everything outside BLIS: activations, dropout masks,
 * the stream's elementwise passes and norms, probe directions, the optimizer).
 *
 * The rule that keeps the bits independent of the thread count: a loop is split only over
 * an index whose outputs are disjoint (the sample b or the neuron i), with OpenMP's static
 * schedule, and every output element is computed by one thread with the same operations in
 * the same order as on one thread. A sum over the split index is never split: it gets its
 * own pass, split over the index it produces (see cz_stream_forward's ||S_l||^2). */
#ifndef CHAINZ_ENGINE_PAR_H
#define CHAINZ_ENGINE_PAR_H

#include <stddef.h>

/* Loops with fewer elements than this run on one thread: waking a second thread costs a few
 * microseconds, more than a pass of this size (Pima-sized layers, B = 64 x 64 neurons). */
#define CZ_PAR_MIN_WORK ((size_t)1 << 14)

/* The thread count for a loop touching `work` elements: cz_engine_threads(), or 1 when the
 * loop is small. The result never changes the bits, only the speed. */
int cz_par_threads(size_t work);

/* CZ_PAR_FOR(for-statement): the loop split with OpenMP's static schedule over T threads
 * (a variable named T in scope, from cz_par_threads) when T > 1, and plain code otherwise:
 * libgomp sets up a team even for a region whose if() clause is false, about a
 * microsecond per entry, which a Pima-sized step pays some 15 times. The same loop either
 * way, so the bits are the same. */
#define CZ_PAR_FOR(...)                                                        \
    do {                                                                       \
        if (T > 1) {                                                           \
            _Pragma("omp parallel for schedule(static) num_threads(T)")       \
            __VA_ARGS__                                                        \
        } else {                                                               \
            __VA_ARGS__                                                        \
        }                                                                      \
    } while (0)

#endif
