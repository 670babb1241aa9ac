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

#endif
