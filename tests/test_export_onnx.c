/* The ONNX writer (include/chainz/export.h) on in-memory checkpoints, read back with the
 * same protobuf-c schema: the node sequence per activation and head, the weights'
 * bytes, the opset/IR pairs, the refusals (opset range, no parameters) leaving an existing
 * file untouched, and no temporary file left. The numeric meaning of the graph is checked
 * by tests/test_export.sh (onnx.checker and a numpy evaluation). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "chainz/export.h"
#include "onnx.pb-c.h"

typedef struct {
    cz_checkpoint c;
    char path[96];
} fixture;

/* A checkpoint of d = 3, layers 4,2 with the given activations and head, random weights,
 * distinct poly coefficients, and a standardization. */
static void make_ckpt(fixture *f, cz_act a1, cz_act a2, cz_head head, int classes)
{
    memset(&f->c, 0, sizeof f->c);
    cz_model_spec s = {.d = 3, .n_hidden = 2, .width = {4, 2}, .act = {a1, a2}, .head = head, .classes = classes};
    cz_error err = {0};
    assert_int_equal(cz_model_init(&f->c.model, &s, &err), 0);
    f->c.params = calloc(f->c.model.n_params, sizeof(float));
    assert_non_null(f->c.params);
    cz_rng r;
    cz_rng_seed(&r, 7);
    cz_model_params_init(&f->c.model, f->c.params, &r);
    for (int l = 0; l < 2; l++)
        if (f->c.model.layer[l].poly != CZ_NONE)
            for (size_t i = 0; i < 4 * f->c.model.layer[l].n_out; i++)
                f->c.params[f->c.model.layer[l].poly + i] = (float)(i + 1) / 8;
    f->c.mean = calloc(3, sizeof(float));
    f->c.std = calloc(3, sizeof(float));
    for (int j = 0; j < 3; j++) f->c.mean[j] = (float)j, f->c.std[j] = 2.0f;
    f->c.clip_z = 3;
    f->c.state.epoch = 4;
    f->c.state.step = 99;
    f->c.config_json = strdup("{\"layers\": \"4,2\"}");
    snprintf(f->c.version, sizeof f->c.version, "0.1.0");
}

/* (cz_ckpt_free lives in src/io, which this test does not link) */
static void free_ckpt(cz_checkpoint *c)
{
    free(c->params);
    free(c->mean);
    free(c->std);
    free(c->config_json);
    memset(c, 0, sizeof *c);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->path, sizeof f->path, "/tmp/chainz-test-onnx-%ld.onnx", (long)getpid());
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    unlink(f->path);
    free_ckpt(&f->c);
    free(f);
    return 0;
}

static Onnx__ModelProto *read_model(const char *path)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    rewind(fp);
    uint8_t *buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, (size_t)n, buf);
    free(buf);
    assert_non_null(m);
    return m;
}

/* The op types of the graph, space-separated. */
static void ops(const Onnx__ModelProto *m, char *out, size_t len)
{
    out[0] = 0;
    for (size_t i = 0; i < m->graph->n_node; i++) {
        size_t k = strlen(out);
        snprintf(out + k, len - k, "%s%s", i ? " " : "", m->graph->node[i]->op_type);
    }
}

static const Onnx__TensorProto *init(const Onnx__ModelProto *m, const char *name)
{
    for (size_t i = 0; i < m->graph->n_initializer; i++)
        if (!strcmp(m->graph->initializer[i]->name, name)) return m->graph->initializer[i];
    fail_msg("no initializer %s", name);
    return NULL;
}

static void test_export_onnx_poly_gelu_classify(void **state)
{
    fixture *f = *state;
    make_ckpt(f, CZ_ACT_POLY, CZ_ACT_GELU, CZ_HEAD_CLASSIFY, 3);
    cz_error err = {0};
    cz_onnx_info info;
    assert_int_equal(cz_onnx_write(f->path, &f->c, &(cz_onnx_opts){.opset = 0, .source = "x.h5"}, &info, &err), 0);
    Onnx__ModelProto *m = read_model(f->path);
    char o[1024];
    ops(m, o, sizeof o);
    assert_string_equal(o, "Sub Div Clip Gemm Mul Add Mul Add Mul Add Gemm Mul Erf Add Mul Mul Gemm Softmax ArgMax");
    assert_int_equal(info.nodes, m->graph->n_node);
    assert_int_equal(m->ir_version, 7);
    assert_int_equal(m->opset_import[0]->version, CZ_ONNX_OPSET_DEFAULT);
    assert_string_equal(m->producer_name, "chainz");
    assert_int_equal(m->model_version, 99);
    assert_non_null(strstr(m->doc_string, "epoch 4, step 99"));
    /* Horner from the top coefficient: z * a3 first, a0 added last */
    assert_string_equal(m->graph->node[4]->input[1], "model/layer_1/poly_a3");
    assert_string_equal(m->graph->node[9]->input[1], "model/layer_1/poly_a0");
    /* poly_ak holds column k of the interleaved [n x 4] block */
    const Onnx__TensorProto *a2 = init(m, "model/layer_1/poly_a2");
    assert_int_equal(a2->n_float_data, 4);
    for (size_t i = 0; i < 4; i++) assert_true(a2->float_data[i] == (float)(4 * i + 2 + 1) / 8);
    /* the weights are the checkpoint's bytes, [n_out, n_in] */
    const Onnx__TensorProto *w = init(m, "model/layer_2/weight");
    assert_int_equal(w->n_dims, 2);
    assert_int_equal(w->dims[0], 2);
    assert_int_equal(w->dims[1], 4);
    assert_memory_equal(w->float_data, f->c.params + f->c.model.layer[1].w, 8 * sizeof(float));
    assert_true(init(m, "model/input/clip_hi")->float_data[0] == 3.0f);
    assert_int_equal(m->graph->n_output, 3);
    assert_string_equal(m->graph->output[2]->name, "label");
    onnx__model_proto__free_unpacked(m, NULL);
}

static void test_export_onnx_heads_and_opsets(void **state)
{
    fixture *f = *state;
    make_ckpt(f, CZ_ACT_TANH, CZ_ACT_IDENTITY, CZ_HEAD_ORDINAL, 4);
    free(f->c.mean);
    free(f->c.std);
    f->c.mean = f->c.std = NULL; /* --no-standardize: x goes straight into the first Gemm */
    cz_error err = {0};
    assert_int_equal(cz_onnx_write(f->path, &f->c, &(cz_onnx_opts){.opset = 17}, NULL, &err), 0);
    Onnx__ModelProto *m = read_model(f->path);
    char o[1024];
    ops(m, o, sizeof o);
    assert_string_equal(o, "Gemm Tanh Gemm Gemm Sigmoid ReduceSum Greater Cast ReduceSum");
    assert_string_equal(m->graph->node[0]->input[0], "x");
    assert_int_equal(m->ir_version, 8);
    assert_int_equal(m->graph->output[0]->type->tensor_type->shape->dim[1]->dim_value, 3); /* K - 1 */
    onnx__model_proto__free_unpacked(m, NULL);
    free_ckpt(&f->c);

    make_ckpt(f, CZ_ACT_RELU, CZ_ACT_RELU, CZ_HEAD_REGRESS, 0);
    assert_int_equal(cz_onnx_write(f->path, &f->c, &(cz_onnx_opts){.opset = 14}, NULL, &err), 0);
    m = read_model(f->path);
    ops(m, o, sizeof o);
    assert_string_equal(o, "Sub Div Clip Gemm Relu Gemm Relu Gemm Squeeze");
    assert_int_equal(m->ir_version, 7);
    assert_int_equal(m->graph->n_output, 1);
    assert_string_equal(m->graph->output[0]->name, "value");
    onnx__model_proto__free_unpacked(m, NULL);
}

static void test_export_onnx_refusals_keep_the_file(void **state)
{
    fixture *f = *state;
    make_ckpt(f, CZ_ACT_POLY, CZ_ACT_POLY, CZ_HEAD_CLASSIFY, 2);
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs("keep me", fp);
    fclose(fp);
    cz_error err = {0};
    int bad[] = {12, 18, -1};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(cz_onnx_write(f->path, &f->c, &(cz_onnx_opts){.opset = bad[i]}, NULL, &err), CZ_EINVAL);
        assert_non_null(strstr(err.msg, "13..17"));
    }
    float *p = f->c.params;
    f->c.params = NULL;
    assert_int_equal(cz_onnx_write(f->path, &f->c, NULL, NULL, &err), CZ_EINVAL);
    f->c.params = p;
    char buf[16] = "";
    fp = fopen(f->path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(buf, sizeof buf, fp));
    fclose(fp);
    assert_string_equal(buf, "keep me");
    /* a directory that does not exist: CZ_EIO naming the output, nothing created */
    assert_int_equal(cz_onnx_write("/nonexistent-chainz-dir/m.onnx", &f->c, NULL, NULL, &err), CZ_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent-chainz-dir/m.onnx: cannot create"));
    /* a success replaces it and leaves no temporary file */
    assert_int_equal(cz_onnx_write(f->path, &f->c, NULL, NULL, &err), 0);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", f->path, (long)getpid());
    assert_int_equal(access(tmp, F_OK), -1);
    Onnx__ModelProto *m = read_model(f->path);
    assert_int_equal(m->graph->n_node, 3 + 7 + 7 + 1 + 2);
    onnx__model_proto__free_unpacked(m, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_export_onnx_poly_gelu_classify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_onnx_heads_and_opsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_onnx_refusals_keep_the_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
