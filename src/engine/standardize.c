/* Standardization of raw features (chainz/standardize.h). */
#include "chainz/standardize.h"

void cz_standardize(float *x, size_t n, size_t d, const float *mean, const float *std, float clip)
{
    for (size_t b = 0; b < n; b++)
        for (size_t j = 0; j < d; j++) {
            float z = (x[b * d + j] - mean[j]) / std[j];
            if (clip > 0) z = z > clip ? clip : z < -clip ? -clip : z;
            x[b * d + j] = z;
        }
}
