#include "chainz/config.h"

#include <math.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cz_config_defaults(cz_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->layers, sizeof c->layers, "256,256");
    snprintf(c->acts, sizeof c->acts, "poly");
    c->model.head = CZ_HEAD_CLASSIFY;
    c->dreg = 0.01;
    c->dreg_by_default = 1;
    c->optim = (cz_optim_spec){.kind = CZ_OPT_ADAMW, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                               .momentum = 0.9, .weight_decay = 0.0};
    c->lr = 1e-3;
    c->lr_min = 0.0;
    c->clip_grad_norm = 1.0; /* CR on Fashion-MNIST diverged in epoch 5 without it (DESIGN section 6) */
    c->lr_shape = CZ_SHAPE_CONSTANT;
    c->epochs = 10;
    c->batch = 128;
    c->micro_batch = 32;
    c->seed = 1;
    c->threads = 1;
    c->standardize = 1;
    c->clip_z = 3.0;
    c->dreg_mode = CZ_STREAM_AUTO;
    c->dreg_probes = CZ_STREAM_DEFAULT_PROBES;
    c->divergence_factor = 100.0;
    c->reduce = CZ_REDUCE_EXACT;
    c->log_seconds = 10;
    c->ckpt_every_epochs = 1;
    c->keep = 3;
    c->tau = 1;
}

/* The next comma-separated item of *p into tok (an empty item is returned as ""), or -1 at
 * the end. Unlike strtok, "5,,5" and "5,5," show their empty items, which are refused. */
static int next_item(const char **p, char *tok, size_t len)
{
    if (!*p) return -1;
    const char *comma = strchr(*p, ',');
    size_t n = comma ? (size_t)(comma - *p) : strlen(*p);
    snprintf(tok, len, "%.*s", (int)(n < len ? n : len - 1), *p);
    *p = comma ? comma + 1 : NULL;
    return 0;
}

int cz_config_parse_model(cz_config *c, cz_error *err)
{
    cz_model_spec *m = &c->model;
    char t[64];
    m->n_hidden = 0;
    if (!c->layers[0]) return cz_error_set(err, CZ_EINVAL, "--layers is empty: give widths like 256,256");
    for (const char *p = c->layers; next_item(&p, t, sizeof t) == 0;) {
        char *end;
        errno = 0;
        long w = strtol(t, &end, 10);
        if (!t[0] || *end || errno || w <= 0 || t[0] == '+' || t[0] == ' ')
            return cz_error_set(err, CZ_EINVAL, "--layers '%s': '%s' is not a positive width", c->layers, t);
        if (m->n_hidden == CZ_MAX_HIDDEN)
            return cz_error_set(err, CZ_EINVAL, "--layers '%s': at most %d hidden layers", c->layers, CZ_MAX_HIDDEN);
        m->width[m->n_hidden++] = (size_t)w;
    }
    int n = 0;
    for (const char *p = c->acts; next_item(&p, t, sizeof t) == 0;) {
        if (n == CZ_MAX_HIDDEN || cz_act_parse(t, &m->act[n]))
            return cz_error_set(err, CZ_EINVAL, "--act '%s': '%s' is not poly, relu, tanh, gelu or identity",
                                c->acts, t);
        n++;
    }
    if (n == 1)
        for (int l = 1; l < m->n_hidden; l++) m->act[l] = m->act[0];
    else if (n != m->n_hidden)
        return cz_error_set(err, CZ_EINVAL, "--act '%s' names %d activations for %d hidden layers",
                            c->acts, n, m->n_hidden);
    if (c->dreg_by_default) {
        int all_poly = 1;
        for (int l = 0; l < m->n_hidden; l++) all_poly &= m->act[l] == CZ_ACT_POLY;
        c->dreg = all_poly ? 0.01 : 0.0;
    }
    return 0;
}

/* JSON string escaping for paths */
static void put_str(char **p, size_t *left, size_t *need, const char *key, const char *v, int comma)
{
    char tmp[8300];
    size_t k = 0;
    for (const char *s = v; *s && k < sizeof tmp - 8; s++) {
        if (*s == '"' || *s == '\\') tmp[k++] = '\\';
        if ((unsigned char)*s < 0x20) continue;
        tmp[k++] = *s;
    }
    tmp[k] = 0;
    int w = snprintf(*p, *left, "%s\"%s\": \"%s\"", comma ? ", " : "", key, tmp);
    *need += (size_t)w;
    size_t adv = (size_t)w < *left ? (size_t)w : (*left ? *left - 1 : 0);
    *p += adv;
    *left -= adv;
}

static void put_fmt(char **p, size_t *left, size_t *need, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(*p, *left, fmt, ap);
    va_end(ap);
    *need += (size_t)w;
    size_t adv = (size_t)w < *left ? (size_t)w : (*left ? *left - 1 : 0);
    *p += adv;
    *left -= adv;
}

/* a JSON number: %.17g, or null for nan and inf (which JSON cannot hold) */
static const char *jnum(char *tmp, size_t len, double v)
{
    if (isfinite(v)) snprintf(tmp, len, "%.17g", v);
    else snprintf(tmp, len, "null");
    return tmp;
}

size_t cz_config_json(const cz_config *c, char *buf, size_t len)
{
    char t[8][32];
    char *p = buf;
    size_t left = len, need = 0;
    if (len) buf[0] = 0;
    put_fmt(&p, &left, &need, "{");
    put_str(&p, &left, &need, "data", c->data, 0);
    put_str(&p, &left, &need, "val", c->val, 1);
    put_str(&p, &left, &need, "out", c->out, 1);
    put_str(&p, &left, &need, "resume", c->resume, 1);
    put_fmt(&p, &left, &need, ", \"holdout\": %s, \"holdout_split\": \"%s\", \"standardize\": %d, \"clip_z\": %s",
            jnum(t[0], 32, c->holdout), c->holdout_random ? "random" : "stratified", c->standardize,
            jnum(t[1], 32, c->standardize ? c->clip_z : 0.0));
    put_str(&p, &left, &need, "layers", c->layers, 1);
    put_str(&p, &left, &need, "act", c->acts, 1);
    put_str(&p, &left, &need, "head", cz_head_name(c->model.head), 1);
    put_fmt(&p, &left, &need, ", \"dropout\": %s, \"weight_decay\": %s, \"dreg\": %s",
            jnum(t[0], 32, c->model.dropout), jnum(t[1], 32, c->optim.weight_decay), jnum(t[2], 32, c->dreg));
    put_str(&p, &left, &need, "dreg_schedule", c->dreg_schedule, 1);
    put_str(&p, &left, &need, "dreg_range", c->dreg_range, 1);
    put_str(&p, &left, &need, "dreg_warmup", c->dreg_warmup, 1);
    put_str(&p, &left, &need, "optim", cz_optim_name(c->optim.kind), 1);
    put_fmt(&p, &left, &need,
            ", \"lr\": %s, \"lr_min\": %s, \"lr_schedule\": \"%s\", \"warmup_steps\": %ld, \"clip_grad_norm\": %s, "
            "\"beta1\": %s, \"beta2\": %s, \"eps\": %s, \"momentum\": %s, "
            "\"epochs\": %d, \"batch\": %ld, \"micro_batch\": %ld, \"seed\": %llu, \"threads\": %d, "
            "\"reduce\": \"%s\", \"max_steps\": %ld, \"tau\": %d, \"divergence_factor\": %s, \"ckpt_every_steps\": %ld, "
            "\"ckpt_every_epochs\": %d, \"keep\": %d, \"keep_every\": %ld}",
            jnum(t[0], 32, c->lr), jnum(t[1], 32, c->lr_min), cz_shape_name(c->lr_shape), c->warmup_steps,
            jnum(t[6], 32, c->clip_grad_norm), jnum(t[2], 32, c->optim.beta1), jnum(t[3], 32, c->optim.beta2), jnum(t[4], 32, c->optim.eps),
            jnum(t[5], 32, c->optim.momentum), c->epochs, c->batch, c->micro_batch,
            (unsigned long long)c->seed, c->threads, c->reduce == CZ_REDUCE_EXACT ? "exact" : "float",
            c->max_steps, c->tau, jnum(t[7], 32, c->divergence_factor), c->ckpt_every_steps, c->ckpt_every_epochs, c->keep, c->keep_every);
    return need;
}
