/* The engine's scalar type. Production builds use float32; the test suite also builds
 * the same sources as a double-precision engine (CZ_REAL_DOUBLE) for finite-difference
 * gradient checks. The two libraries export the same names and are never linked
 * together. */
#ifndef CHAINZ_REAL_H
#define CHAINZ_REAL_H

#ifdef CZ_REAL_DOUBLE
typedef double cz_real;
#define CZ_REAL_NAME "float64"
#else
typedef float cz_real;
#define CZ_REAL_NAME "float32"
#endif

#endif
