#include "chainz/schedule.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *shape_names[] = {"constant", "linear", "cosine", "exp"};

const char *cz_shape_name(cz_shape s) { return shape_names[s]; }

int cz_shape_parse(const char *name, cz_shape *out)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, shape_names[i])) { *out = (cz_shape)i; return 0; }
    if (!strcmp(name, "exponential")) { *out = CZ_SHAPE_EXP; return 0; }
    return CZ_EINVAL;
}

double cz_schedule_value(const cz_schedule *s, double t)
{
    if (t < s->warmup) return s->ramp ? s->start * (t + 1) / s->warmup : 0.0;
    double u = s->to > s->from ? (t - s->from) / (s->to - s->from) : 1.0;
    if (t < s->from) u = 0;
    if (u < 0) u = 0;
    if (u > 1) u = 1;
    switch (s->shape) {
    case CZ_SHAPE_LINEAR: return s->start + (s->end - s->start) * u;
    case CZ_SHAPE_COSINE: return s->end + (s->start - s->end) * 0.5 * (1 + cos(M_PI * u));
    case CZ_SHAPE_EXP: return s->start * pow(s->end / s->start, u);
    default: return s->start;
    }
}

int cz_schedule_parse(const char *spec, cz_schedule *out, cz_error *err)
{
    char name[32];
    double a, b;
    char tail;
    if (sscanf(spec, "%31[a-z]:%lf:%lf%c", name, &a, &b, &tail) != 3 || cz_shape_parse(name, &out->shape))
        return cz_error_set(err, CZ_EINVAL,
                            "schedule '%s': expected SHAPE:START:END with SHAPE constant, linear, "
                            "cosine or exp (e.g. cosine:0.1:0.001)", spec);
    if (!isfinite(a) || !isfinite(b) || a < 0 || b < 0)
        return cz_error_set(err, CZ_EINVAL, "schedule '%s': values must be finite and >= 0", spec);
    if (out->shape == CZ_SHAPE_EXP && (a <= 0 || b <= 0))
        return cz_error_set(err, CZ_EINVAL, "schedule '%s': exp needs START and END > 0", spec);
    out->start = a;
    out->end = b;
    return 0;
}

static int parse_point(const char *s, double spe, double *out)
{
    /* decimal only (strtod would take hex and "inf"), and no more than 1e12 epochs or steps */
    for (const char *c = s; *c; c++)
        if (!strchr("0123456789.eE+-s", *c)) return -1;
    char *end;
    double v = strtod(s, &end);
    if (end == s || !isfinite(v) || v < 0 || v > 1e12) return -1;
    if (*end == 's' && end[1] == 0) *out = v;
    else if (*end == 0) *out = v * spe;
    else return -1;
    return 0;
}

int cz_range_parse(const char *spec, double spe, double *from, double *to, cz_error *err)
{
    char a[64], b[64];
    const char *colon = strchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof a || strlen(colon + 1) >= sizeof b) goto bad;
    memcpy(a, spec, (size_t)(colon - spec));
    a[colon - spec] = 0;
    strcpy(b, colon + 1);
    if (parse_point(a, spe, from) || parse_point(b, spe, to) || *to < *from) goto bad;
    return 0;
bad:
    return cz_error_set(err, CZ_EINVAL,
                        "range '%s': expected FROM:TO in epochs (e.g. 2:8) or steps (e.g. 100s:900s)", spec);
}
