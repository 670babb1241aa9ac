/* ONNX export (chainz/export.h): the checkpoint's forward pass as an ONNX graph, built as
 * protobuf-c messages of the vendored schema (third_party/onnx/onnx.proto) and packed
 * straight into the temporary file. */
#include "chainz/export.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx.pb-c.h"

#ifndef CHAINZ_VERSION
#define CHAINZ_VERSION "unknown"
#endif

/* At most 3 standardization nodes, 7 per hidden layer (gelu: 5, poly: 6), the output Gemm
 * and 5 for a head; initializers: 4, 6 per layer, 2 and 2. */
#define MAX_NODES (3 + 7 * CZ_MAX_HIDDEN + 1 + 5)
#define MAX_INITS (4 + 6 * CZ_MAX_HIDDEN + 2 + 2)
#define MAX_OUTPUTS 4
#define MAX_PROPS 8

/* The messages of one graph. Every allocation is kept in `mem` and freed together, so a
 * failure anywhere needs no unwinding: `oom` is checked once before packing. */
typedef struct {
    void **mem;
    size_t n_mem, cap_mem;
    int oom;
    Onnx__NodeProto *node[MAX_NODES];
    size_t n_node;
    Onnx__TensorProto *init[MAX_INITS];
    size_t n_init;
    Onnx__ValueInfoProto *out[MAX_OUTPUTS];
    size_t n_out;
    Onnx__StringStringEntryProto *prop[MAX_PROPS];
    size_t n_prop;
} graph;

static void *g_alloc(graph *g, size_t bytes)
{
    if (g->oom) return NULL;
    if (g->n_mem == g->cap_mem) {
        size_t cap = g->cap_mem ? 2 * g->cap_mem : 256;
        void **m = realloc(g->mem, cap * sizeof *m);
        if (!m) { g->oom = 1; return NULL; }
        g->mem = m;
        g->cap_mem = cap;
    }
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) { g->oom = 1; return NULL; }
    g->mem[g->n_mem++] = p;
    return p;
}

static void g_free(graph *g)
{
    for (size_t i = 0; i < g->n_mem; i++) free(g->mem[i]);
    free(g->mem);
}

static char *g_fmt(graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *g_fmt(graph *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n < 0 ? NULL : g_alloc(g, (size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* A float initializer. data is referenced, not copied: it must outlive the packing (the
 * checkpoint's parameters, or a buffer of g). protobuf-c only reads it. */
static const char *init_f(graph *g, const char *name, const int64_t *dims, size_t nd, const float *data, size_t n)
{
    Onnx__TensorProto *t = g_alloc(g, sizeof *t);
    int64_t *dv = g_alloc(g, (nd ? nd : 1) * sizeof *dv);
    if (!t || !dv || g->n_init == MAX_INITS) { g->oom = 1; return name; }
    onnx__tensor_proto__init(t);
    if (nd) memcpy(dv, dims, nd * sizeof *dv); /* a scalar has no dims */
    t->n_dims = nd;
    t->dims = dv;
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->n_float_data = n;
    t->float_data = (float *)data;
    t->name = (char *)name;
    g->init[g->n_init++] = t;
    return name;
}

static const char *init_scalar_f(graph *g, const char *name, float v)
{
    float *p = g_alloc(g, sizeof *p);
    if (p) *p = v;
    return init_f(g, name, NULL, 0, p, 1);
}

static const char *init_i64(graph *g, const char *name, int64_t v)
{
    Onnx__TensorProto *t = g_alloc(g, sizeof *t);
    int64_t *data = g_alloc(g, sizeof *data), *dims = g_alloc(g, sizeof *dims);
    if (!t || !data || !dims || g->n_init == MAX_INITS) { g->oom = 1; return name; }
    onnx__tensor_proto__init(t);
    *data = v;
    *dims = 1;
    t->n_dims = 1;
    t->dims = dims;
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    t->n_int64_data = 1;
    t->int64_data = data;
    t->name = (char *)name;
    g->init[g->n_init++] = t;
    return name;
}

/* A node with one output; returns the output's name so that nodes chain as expressions. */
static const char *node(graph *g, const char *op, const char *name, const char *out, const char *in0,
                        const char *in1)
{
    Onnx__NodeProto *n = g_alloc(g, sizeof *n);
    char **in = g_alloc(g, 2 * sizeof *in), **o = g_alloc(g, sizeof *o);
    if (!n || !in || !o || g->n_node == MAX_NODES) { g->oom = 1; return out; }
    onnx__node_proto__init(n);
    in[0] = (char *)in0;
    in[1] = (char *)in1;
    o[0] = (char *)out;
    n->n_input = in1 ? 2 : 1;
    n->input = in;
    n->n_output = 1;
    n->output = o;
    n->name = (char *)name;
    n->op_type = (char *)op;
    g->node[g->n_node++] = n;
    return out;
}

static const char *node3(graph *g, const char *op, const char *name, const char *out, const char *in0,
                         const char *in1, const char *in2)
{
    node(g, op, name, out, in0, in1);
    if (g->oom) return out;
    Onnx__NodeProto *n = g->node[g->n_node - 1];
    char **in = g_alloc(g, 3 * sizeof *in);
    if (!in) return out;
    in[0] = (char *)in0;
    in[1] = (char *)in1;
    in[2] = (char *)in2;
    n->n_input = 3;
    n->input = in;
    return out;
}

/* An int attribute on the last node. */
static void attr_i(graph *g, const char *name, int64_t v)
{
    if (g->oom) return;
    Onnx__NodeProto *n = g->node[g->n_node - 1];
    Onnx__AttributeProto *a = g_alloc(g, sizeof *a);
    Onnx__AttributeProto **list = g_alloc(g, (n->n_attribute + 1) * sizeof *list);
    if (!a || !list) return;
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1;
    a->i = v;
    if (n->n_attribute) memcpy(list, n->attribute, n->n_attribute * sizeof *list);
    list[n->n_attribute++] = a;
    n->attribute = list;
}

/* A graph input or output: elem type and shape [batch, k] (k 0: [batch]). */
static Onnx__ValueInfoProto *value_info(graph *g, const char *name, int32_t elem, size_t k, const char *doc)
{
    Onnx__ValueInfoProto *v = g_alloc(g, sizeof *v);
    Onnx__TypeProto *tp = g_alloc(g, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = g_alloc(g, sizeof *tt);
    Onnx__TensorShapeProto *sh = g_alloc(g, sizeof *sh);
    Onnx__TensorShapeProto__Dimension *dim[2] = {g_alloc(g, sizeof **dim), g_alloc(g, sizeof **dim)};
    Onnx__TensorShapeProto__Dimension **dl = g_alloc(g, 2 * sizeof *dl);
    if (g->oom) return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    for (int i = 0; i < 2; i++) onnx__tensor_shape_proto__dimension__init(dim[i]);
    dim[0]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
    dim[0]->dim_param = "batch";
    dim[1]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    dim[1]->dim_value = (int64_t)k;
    dl[0] = dim[0];
    dl[1] = dim[1];
    sh->n_dim = k ? 2 : 1;
    sh->dim = dl;
    tt->has_elem_type = 1;
    tt->elem_type = elem;
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    v->name = (char *)name;
    v->type = tp;
    v->doc_string = (char *)doc;
    return v;
}

static void output(graph *g, const char *name, int32_t elem, size_t k, const char *doc)
{
    Onnx__ValueInfoProto *v = value_info(g, name, elem, k, doc);
    if (v && g->n_out < MAX_OUTPUTS) g->out[g->n_out++] = v;
}

static void prop(graph *g, const char *key, char *value)
{
    Onnx__StringStringEntryProto *p = g_alloc(g, sizeof *p);
    if (!p || !value || g->n_prop == MAX_PROPS) { g->oom = 1; return; }
    onnx__string_string_entry_proto__init(p);
    p->key = (char *)key;
    p->value = value;
    g->prop[g->n_prop++] = p;
}

/* The activation of hidden layer l (1-based) on z; returns the output's name. */
static const char *activation(graph *g, const cz_checkpoint *c, const cz_layer *L, int l, const char *z)
{
    size_t n = L->n_out;
    int64_t dn = (int64_t)n;
    switch (L->act) {
    case CZ_ACT_POLY: {
        /* per-coefficient vectors from the interleaved [n x 4] block of the flat buffer */
        const char *a[4];
        for (int k = 0; k < 4; k++) {
            float *v = g_alloc(g, n * sizeof *v);
            if (!v) return z;
            for (size_t i = 0; i < n; i++) v[i] = c->params[L->poly + 4 * i + (size_t)k];
            a[k] = init_f(g, g_fmt(g, "model/layer_%d/poly_a%d", l, k), &dn, 1, v, n);
        }
        /* chainz: a0 + z (a1 + z (a2 + z a3)), the same roundings in the same order */
        const char *t = node(g, "Mul", g_fmt(g, "layer_%d/poly_mul3", l), g_fmt(g, "layer_%d/poly_t3", l), z, a[3]);
        t = node(g, "Add", g_fmt(g, "layer_%d/poly_add2", l), g_fmt(g, "layer_%d/poly_s2", l), t, a[2]);
        t = node(g, "Mul", g_fmt(g, "layer_%d/poly_mul2", l), g_fmt(g, "layer_%d/poly_t2", l), t, z);
        t = node(g, "Add", g_fmt(g, "layer_%d/poly_add1", l), g_fmt(g, "layer_%d/poly_s1", l), t, a[1]);
        t = node(g, "Mul", g_fmt(g, "layer_%d/poly_mul1", l), g_fmt(g, "layer_%d/poly_t1", l), t, z);
        return node(g, "Add", g_fmt(g, "layer_%d/poly_add0", l), g_fmt(g, "layer_%d/h", l), t, a[0]);
    }
    case CZ_ACT_RELU: return node(g, "Relu", g_fmt(g, "layer_%d/relu", l), g_fmt(g, "layer_%d/h", l), z, NULL);
    case CZ_ACT_TANH: return node(g, "Tanh", g_fmt(g, "layer_%d/tanh", l), g_fmt(g, "layer_%d/h", l), z, NULL);
    case CZ_ACT_GELU: {
        /* chainz's exact GELU, z Phi(z) = z * 0.5 (1 + erf(z / sqrt 2)) (ONNX has no Gelu op
         * before opset 20) */
        const char *r = init_scalar_f(g, g_fmt(g, "layer_%d/gelu_rsqrt2", l), (float)M_SQRT1_2);
        const char *one = init_scalar_f(g, g_fmt(g, "layer_%d/gelu_one", l), 1.0f);
        const char *half = init_scalar_f(g, g_fmt(g, "layer_%d/gelu_half", l), 0.5f);
        const char *t = node(g, "Mul", g_fmt(g, "layer_%d/gelu_scale", l), g_fmt(g, "layer_%d/gelu_u", l), z, r);
        t = node(g, "Erf", g_fmt(g, "layer_%d/gelu_erf", l), g_fmt(g, "layer_%d/gelu_e", l), t, NULL);
        t = node(g, "Add", g_fmt(g, "layer_%d/gelu_add1", l), g_fmt(g, "layer_%d/gelu_p", l), t, one);
        t = node(g, "Mul", g_fmt(g, "layer_%d/gelu_halve", l), g_fmt(g, "layer_%d/gelu_phi", l), t, half);
        return node(g, "Mul", g_fmt(g, "layer_%d/gelu_mul", l), g_fmt(g, "layer_%d/h", l), z, t);
    }
    default: return z; /* identity: no node */
    }
}

/* The whole graph into g; returns the model's doc string. */
static char *build(graph *g, const cz_checkpoint *c, const cz_onnx_opts *o)
{
    const cz_model *m = &c->model;
    const char *cur = "x";
    int64_t dd = (int64_t)m->spec.d;
    if (c->mean && c->std) {
        const char *mean = init_f(g, "model/input/mean", &dd, 1, c->mean, m->spec.d);
        const char *sd = init_f(g, "model/input/std", &dd, 1, c->std, m->spec.d);
        cur = node(g, "Sub", "input/center", "input/centered", cur, mean);
        cur = node(g, "Div", "input/scale", "input/z", cur, sd);
        if (c->clip_z > 0) { /* chainz clamps in float: the same bound */
            const char *lo = init_scalar_f(g, "model/input/clip_lo", (float)-c->clip_z);
            const char *hi = init_scalar_f(g, "model/input/clip_hi", (float)c->clip_z);
            cur = node3(g, "Clip", "input/clip", "input/clipped", cur, lo, hi);
        }
    }
    char layers[16 * 24] = "", acts[16 * 12] = "";
    for (int l = 0; l <= m->n_hidden; l++) {
        const cz_layer *L = &m->layer[l];
        int64_t wd[2] = {(int64_t)L->n_out, (int64_t)L->n_in}, bd = (int64_t)L->n_out;
        int out = l == m->n_hidden;
        const char *w = out ? init_f(g, "model/output/weight", wd, 2, c->params + L->w, L->n_out * L->n_in)
                            : init_f(g, g_fmt(g, "model/layer_%d/weight", l + 1), wd, 2, c->params + L->w,
                                     L->n_out * L->n_in);
        const char *b = out ? init_f(g, "model/output/bias", &bd, 1, c->params + L->b, L->n_out)
                            : init_f(g, g_fmt(g, "model/layer_%d/bias", l + 1), &bd, 1, c->params + L->b, L->n_out);
        /* W is [n_out x n_in] row-major: z = h W^T + b is Gemm with transB = 1 */
        const char *zname = out ? "logits" : g_fmt(g, "layer_%d/z", l + 1);
        if (out && m->spec.head == CZ_HEAD_REGRESS) zname = "output/f";
        cur = node3(g, "Gemm", out ? "output/gemm" : g_fmt(g, "layer_%d/gemm", l + 1), zname, cur, w, b);
        attr_i(g, "transB", 1);
        if (!out) {
            cur = activation(g, c, L, l + 1, cur);
            size_t k = strlen(layers);
            snprintf(layers + k, sizeof layers - k, "%s%zu", l ? "," : "", L->n_out);
            k = strlen(acts);
            snprintf(acts + k, sizeof acts - k, "%s%s", l ? "," : "", cz_act_name(L->act));
        }
    }
    size_t K = m->n_out;
    const int32_t F = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, I64 = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    switch (m->spec.head) {
    case CZ_HEAD_CLASSIFY:
        output(g, "logits", F, K, "the output layer's scores, one per class");
        node(g, "Softmax", "head/softmax", "prob", "logits", NULL);
        attr_i(g, "axis", 1);
        output(g, "prob", F, K, "class probabilities, softmax of the logits");
        node(g, "ArgMax", "head/argmax", "label", "logits", NULL);
        attr_i(g, "axis", 1);
        attr_i(g, "keepdims", 0);
        output(g, "label", I64, 0, "the predicted class (the first of equal maxima, as chainz)");
        break;
    case CZ_HEAD_ORDINAL: {
        const char *axes = init_i64(g, "head/axes", 1);
        const char *zero = init_scalar_f(g, "head/zero", 0.0f);
        output(g, "logits", F, K, "cumulative logits: logit_k scores y > k, k = 0..K-2");
        node(g, "Sigmoid", "head/sigmoid", "exceed", "logits", NULL);
        output(g, "exceed", F, K, "P(y > k), the sigmoids of the cumulative logits");
        node(g, "ReduceSum", "head/expected", "value", "exceed", axes);
        attr_i(g, "keepdims", 0);
        output(g, "value", F, 0, "the expected class, sum_k P(y > k)");
        node(g, "Greater", "head/positive", "head/positive", "logits", zero);
        node(g, "Cast", "head/count_cast", "head/positive_i64", "head/positive", NULL);
        attr_i(g, "to", I64);
        node(g, "ReduceSum", "head/count", "label", "head/positive_i64", axes);
        attr_i(g, "keepdims", 0);
        output(g, "label", I64, 0, "the predicted class: the number of logits > 0 (as chainz)");
        break;
    }
    case CZ_HEAD_REGRESS: {
        const char *axes = init_i64(g, "head/axes", 1);
        node(g, "Squeeze", "head/squeeze", "value", "output/f", axes);
        output(g, "value", F, 0, "the predicted value, in the units of the training labels");
        break;
    }
    }
    char *head = m->spec.head == CZ_HEAD_REGRESS ? g_fmt(g, "regress")
                                                  : g_fmt(g, "%s, %d classes", cz_head_name(m->spec.head), m->spec.classes);
    prop(g, "chainz.head", g_fmt(g, "%s", cz_head_name(m->spec.head)));
    prop(g, "chainz.classes", g_fmt(g, "%d", m->spec.head == CZ_HEAD_REGRESS ? 0 : m->spec.classes));
    prop(g, "chainz.layers", g_fmt(g, "%s", layers));
    prop(g, "chainz.act", g_fmt(g, "%s", acts));
    prop(g, "chainz.epoch", g_fmt(g, "%ld", c->state.epoch));
    prop(g, "chainz.step", g_fmt(g, "%ld", c->state.step));
    prop(g, "chainz.source", g_fmt(g, "%s", o && o->source ? o->source : ""));
    prop(g, "chainz.config", g_fmt(g, "%s", c->config_json ? c->config_json : "{}"));
    return g_fmt(g,
                 "chainz CR model: %zu inputs, hidden layers %s (%s), head %s; %s; checkpoint %s "
                 "(chainz %s, epoch %ld, step %ld); config %s",
                 m->spec.d, layers, acts, head,
                 c->mean ? (c->clip_z > 0 ? g_fmt(g, "inputs standardized and clipped to +-%g", c->clip_z)
                                          : g_fmt(g, "inputs standardized"))
                         : "inputs used as given",
                 o && o->source ? o->source : "(memory)", c->version, c->state.epoch, c->state.step,
                 c->config_json ? c->config_json : "{}");
}

/* Packing straight into the file: no copy of the whole message in memory. */
typedef struct {
    ProtobufCBuffer base;
    FILE *f;
    int err; /* the first errno of a failed write */
} file_buffer;

static void file_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
    file_buffer *fb = (file_buffer *)b;
    if (!fb->err && len && fwrite(data, 1, len, fb->f) != len) fb->err = errno ? errno : EIO;
}

static int write_file(const char *path, const Onnx__ModelProto *model, cz_error *err)
{
    char tmp[4200];
    /* the rename would replace whatever path is: a device (--onnx /dev/null, as root, would
     * leave the system a regular file there), a FIFO or a symbolic link must stay as it is */
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return cz_error_set(err, CZ_EINVAL, "%s exists and is %s: chainz replaces only a regular file (give "
                            "another file name)", path,
                            S_ISLNK(st.st_mode) ? "a symbolic link" : S_ISDIR(st.st_mode) ? "a directory"
                            : S_ISFIFO(st.st_mode) ? "a FIFO" : "a device or socket");
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return cz_error_set(err, CZ_EINVAL, "--onnx path too long (%zu characters)", strlen(path));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644); /* never through a link */
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        int e = errno;
        if (fd >= 0) close(fd);
        return cz_error_set(err, e == ELOOP ? CZ_EINVAL : CZ_EIO, "%s: cannot create its temporary file %s: %s",
                            path, tmp, e == ELOOP ? "a symbolic link (chainz writes through no link)" : strerror(e));
    }
    file_buffer fb = {.base = {.append = file_append}, .f = f};
    onnx__model_proto__pack_to_buffer(model, &fb.base);
    if (!fb.err && fflush(f) != 0) fb.err = errno;
    if (!fb.err && fsync(fileno(f)) != 0) fb.err = errno;
    if (fclose(f) != 0 && !fb.err) fb.err = errno;
    if (fb.err) {
        unlink(tmp);
        return cz_error_set(err, CZ_EIO, "%s: cannot write: %s", path, strerror(fb.err));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return cz_error_set(err, CZ_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(e));
    }
    char dirbuf[4200];
    snprintf(dirbuf, sizeof dirbuf, "%s", path);
    int dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) { /* the rename itself must survive a crash */
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

int cz_onnx_write(const char *path, const cz_checkpoint *c, const cz_onnx_opts *o, cz_onnx_info *info,
                  cz_error *err)
{
    int opset = o && o->opset ? o->opset : CZ_ONNX_OPSET_DEFAULT;
    if (opset < CZ_ONNX_OPSET_MIN || opset > CZ_ONNX_OPSET_MAX)
        return cz_error_set(err, CZ_EINVAL, "--opset %d: chainz writes opsets %d..%d", opset, CZ_ONNX_OPSET_MIN,
                            CZ_ONNX_OPSET_MAX);
    if (!c->params || c->model.n_params == 0)
        return cz_error_set(err, CZ_EINVAL, "the checkpoint holds no parameters");
    graph g;
    memset(&g, 0, sizeof g);
    char *doc = build(&g, c, o);
    Onnx__ValueInfoProto *x = value_info(&g, "x", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, c->model.spec.d,
                                         "features in the units of the training data (standardized inside)");
    Onnx__OperatorSetIdProto ops = ONNX__OPERATOR_SET_ID_PROTO__INIT, *opl = &ops;
    ops.domain = "";
    ops.has_version = 1;
    ops.version = opset;
    Onnx__GraphProto gp = ONNX__GRAPH_PROTO__INIT;
    gp.name = "chainz_cr";
    gp.n_node = g.n_node;
    gp.node = g.node;
    gp.n_initializer = g.n_init;
    gp.initializer = g.init;
    gp.n_input = 1;
    gp.input = &x;
    gp.n_output = g.n_out;
    gp.output = g.out;
    Onnx__ModelProto mp = ONNX__MODEL_PROTO__INIT;
    mp.has_ir_version = 1;
    mp.ir_version = opset <= 14 ? 7 : 8; /* the IR version that introduced the opset */
    mp.n_opset_import = 1;
    mp.opset_import = &opl;
    mp.producer_name = "chainz";
    mp.producer_version = CHAINZ_VERSION;
    mp.has_model_version = 1;
    mp.model_version = c->state.step;
    mp.doc_string = doc;
    mp.graph = &gp;
    mp.n_metadata_props = g.n_prop;
    mp.metadata_props = g.prop;
    int rc = 0;
    size_t bytes = 0;
    if (g.oom || !x || !doc) rc = cz_error_set(err, CZ_ENOMEM, "out of memory building the ONNX graph");
    if (!rc) {
        bytes = onnx__model_proto__get_packed_size(&mp);
        /* protobuf's own parsers refuse a message above 2 GiB (ONNX then needs external data) */
        if (bytes > (size_t)INT32_MAX)
            rc = cz_error_set(err, CZ_EINVAL,
                              "the model needs %zu bytes as one ONNX protobuf, above protobuf's 2 GiB limit "
                              "(%zu parameters); chainz does not write ONNX external data",
                              bytes, c->model.n_params);
    }
    if (!rc) rc = write_file(path, &mp, err);
    if (!rc && info) {
        info->nodes = g.n_node;
        info->initializers = g.n_init;
        info->bytes = bytes;
        info->opset = opset;
        info->ir_version = (long)mp.ir_version;
    }
    g_free(&g);
    return rc;
}
