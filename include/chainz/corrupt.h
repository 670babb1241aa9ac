/* chainz prep corrupt: seeded image corruptions of a chainz-data image set, in the manner
 * of Hendrycks and Dietterich's CIFAR-10-C (ICLR 2019), adapted to 28x28 grayscale
 * (Fashion-MNIST made by `chainz prep idx`). docs/PREP.md has the parameter table and
 * measured numbers.
 *
 * Invariants:
 *   - an image is rows x cols float32 pixels in [0, 1], row-major (feature r*cols + c is
 *     pixel (r, c)); every corrupted pixel is clipped to [0, 1];
 *   - the random kinds draw from one cz_rng per image, seeded with
 *     cz_hash64(cz_hash64(cz_hash64(seed, CZ_CORRUPT_KEY + kind), severity), row), where
 *     row is the image's 0-based index in its file and kind its number below: the output
 *     depends on (seed, kind, severity, row) and the pixels only, never on the order in
 *     which images are processed;
 *   - no libm function whose last bit may differ between machines (glibc picks FMA or
 *     non-FMA variants of exp, log and cos at run time) is used: the normal deviates
 *     (Marsaglia's polar method) and the blur weights use a log and an exp written with
 *     + - * / only, and sqrt (exact in IEEE 754); corrupt.c is compiled with
 *     -ffp-contract=off. The same inputs therefore give the same bytes on every machine;
 *   - the deterministic kinds (blur, contrast, pixelate) ignore the seed.
 *
 * Kinds, numbered for the RNG key (never renumber):
 *   0 gaussian_noise  x + sigma * z, z standard normal per pixel
 *   1 gaussian_blur   separable Gaussian kernel of std sigma pixels, radius
 *                     floor(4 sigma + 0.5) (scipy's truncate 4), weights normalised to sum
 *                     1, edges clamped (the nearest pixel is repeated)
 *   2 contrast        (x - m) * c + m, m the image's mean
 *   3 pixelate        every b x b block (from the top-left; the last row and column of
 *                     blocks may be smaller) replaced by its mean
 *   4 impulse_noise   salt and pepper: with one uniform u per pixel, u < a/2 -> 0,
 *                     a/2 <= u < a -> 1, else unchanged */
#ifndef CHAINZ_CORRUPT_H
#define CHAINZ_CORRUPT_H

#include <stddef.h>
#include <stdint.h>
#include "chainz/error.h"

typedef enum {
    CZ_CORRUPT_GAUSSIAN_NOISE = 0,
    CZ_CORRUPT_GAUSSIAN_BLUR = 1,
    CZ_CORRUPT_CONTRAST = 2,
    CZ_CORRUPT_PIXELATE = 3,
    CZ_CORRUPT_IMPULSE_NOISE = 4,
    CZ_CORRUPT_KINDS = 5
} cz_corrupt_kind;

#define CZ_CORRUPT_SEVERITIES 5
#define CZ_CORRUPT_KEY 0x636f727275707400ULL /* "corrupt\0" */

/* "gaussian_noise", ...; NULL for a kind out of range. */
const char *cz_corrupt_kind_name(cz_corrupt_kind k);
/* @return 0 and *out, or -1 for an unknown name. */
int cz_corrupt_kind_parse(const char *name, cz_corrupt_kind *out);
/* "gaussian_noise, gaussian_blur, contrast, pixelate, impulse_noise" */
const char *cz_corrupt_kind_list(void);
/* The table value of (kind, severity 1..5): sigma, sigma in pixels, c, block b, amount a;
 * and the name of the parameter ("sigma", "blur sigma", "c", "block", "amount").
 * @return the value, or -1 when kind or severity is out of range. */
double cz_corrupt_param(cz_corrupt_kind k, int severity);
const char *cz_corrupt_param_name(cz_corrupt_kind k);
/* 1 if the kind draws random numbers (the seed matters), else 0. */
int cz_corrupt_is_random(cz_corrupt_kind k);

/* One corruption, ready to apply to images of one shape (the blur's kernel and scratch are
 * made here: nothing is allocated per image). */
typedef struct cz_corrupt cz_corrupt;

/* @return 0, CZ_EINVAL (kind unknown, severity outside 1..5, rows or cols 0 or too
 * large), CZ_ENOMEM. */
int cz_corrupt_init(cz_corrupt **out, cz_corrupt_kind k, int severity, uint64_t seed,
                    size_t rows, size_t cols, cz_error *err);
void cz_corrupt_free(cz_corrupt *c); /* NULL-safe */

/* out [rows*cols] = the corruption of in [rows*cols] (pixels in [0, 1]), clipped to
 * [0, 1]; row keys the random numbers (the image's index in its file). out and in must
 * not overlap. */
void cz_corrupt_apply(cz_corrupt *c, float *out, const float *in, uint64_t row);

/* ---- files ---- */

typedef struct {
    cz_corrupt_kind kind;
    int severity;                   /* 1..5 */
    uint64_t seed;
    size_t image_rows, image_cols;  /* 0, 0: the file's image_rows / image_cols attributes */
} cz_corrupt_opts;

typedef struct {
    size_t n, d, rows, cols;
    double mean_abs_change; /* mean over all n*d pixels of |corrupted - clean| */
    double seconds;
} cz_corrupt_report;

/* Reads the chainz-data image set `in` and writes its corruption to `out` (temporary name,
 * then rename: no partial file ever appears): /features [N, d] corrupted, /labels copied,
 * task and classes kept, attributes image_rows, image_cols and corruption (kind, severity,
 * parameter, seed) added, no /stats (a corrupted set is an evaluation set). The image shape
 * comes from the file's image_rows / image_cols attributes (chainz prep idx writes them) or
 * from o->image_rows x o->image_cols; when both exist they must agree, and rows * cols must
 * equal d. Every input feature must lie in [0, 1].
 * @return 0, CZ_EINVAL (bad options or not an image set: the message names the file and
 * what was expected), CZ_EIO, CZ_ENOMEM. rep (may be NULL) is filled on success. */
int cz_corrupt_file(const char *in, const char *out, const cz_corrupt_opts *o,
                    cz_corrupt_report *rep, cz_error *err);

/* `chainz prep corrupt IN.h5 -o OUT.h5 --kind K --severity S [--seed N] [--image RxC]`
 * and `--all-kinds --severities A-B -o PREFIX` (chainz prep corrupt --help): argv[0] is
 * "corrupt". @return the exit status: 0 done, 1 usage or input error, 2 out of memory. */
int cz_cmd_prep_corrupt(int argc, char **argv);

#endif
