/* Learning-rate and DREG-coefficient schedules: pure functions of the global step, so a
 * resumed run (on any number of ranks) sees exactly the values it would have seen. */
#ifndef CHAINZ_SCHEDULE_H
#define CHAINZ_SCHEDULE_H

#include "chainz/error.h"

typedef enum { CZ_SHAPE_CONSTANT, CZ_SHAPE_LINEAR, CZ_SHAPE_COSINE, CZ_SHAPE_EXP } cz_shape;

/* value(t): 0 for t < warmup (lambda) -- or a linear ramp to start (lr, ramp = 1);
 * then start -> end by shape as t goes from `from` to `to` (clamped outside). Steps are
 * global optimizer steps, counted from 0. exp: start * (end/start)^u, needs start, end > 0. */
typedef struct {
    cz_shape shape;
    double start, end;
    double from, to;     /* steps */
    double warmup;       /* steps */
    int ramp;            /* 1: warmup ramps linearly from 0 to start; 0: warmup holds 0 */
} cz_schedule;

double cz_schedule_value(const cz_schedule *s, double step);
int cz_shape_parse(const char *name, cz_shape *out);
const char *cz_shape_name(cz_shape s);
/* "SHAPE:START:END" (e.g. "cosine:0.1:0.001"); sets shape, start and end only. */
int cz_schedule_parse(const char *spec, cz_schedule *out, cz_error *err);
/* "A:B" in epochs, or "As:Bs" in steps; converted to steps with steps_per_epoch. */
int cz_range_parse(const char *spec, double steps_per_epoch, double *from, double *to, cz_error *err);

#endif
