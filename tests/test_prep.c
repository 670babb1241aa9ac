/* chainz prep readers: ARFF parsing and its error messages, one-hot nominal features, the
 * regress class, IDX (plain and gzip) and its checks, the stratified split, and the
 * chainz-data files they write. Temporary files live in one mkdtemp folder, removed at
 * the end. */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "chainz/data.h"
#include "chainz/prep.h"

static char tmpdir[256];

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "%s/cz-prep-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    DIR *dir = opendir(tmpdir);
    if (!dir) return -1;
    struct dirent *e;
    char path[512];
    while ((e = readdir(dir))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
        unlink(path);
    }
    closedir(dir);
    return rmdir(tmpdir);
}

static const char *tpath(const char *name)
{
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static const char *write_file(const char *name, const void *data, size_t len)
{
    const char *p = tpath(name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return p;
}

static const char *write_gz(const char *name, const void *data, size_t len)
{
    const char *p = tpath(name);
    gzFile g = gzopen(p, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, data, (unsigned)len), (int)len);
    assert_int_equal(gzclose(g), Z_OK);
    return p;
}

static void expect_msg(const cz_error *err, const char *want)
{
    if (!strstr(err->msg, want)) fail_msg("message \"%s\" does not contain \"%s\"", err->msg, want);
}

static int arff_text(cz_prep_set *s, const char *text, const cz_arff_opts *o, cz_error *err)
{
    const char *p = write_file("t.arff", text, strlen(text));
    return cz_prep_arff_read(s, p, o, err);
}

/* expects a failure with CZ_EINVAL whose message holds each of the given parts */
static void arff_fails(const char *text, const cz_arff_opts *o, const char *a, const char *b)
{
    cz_prep_set s;
    cz_error err = {0};
    assert_int_equal(arff_text(&s, text, o, &err), CZ_EINVAL);
    expect_msg(&err, "t.arff");
    if (a) expect_msg(&err, a);
    if (b) expect_msg(&err, b);
    assert_null(s.x); /* freed on error */
}

/* ---- ARFF ---- */

static void test_prep_arff_comments_quotes_crlf_onehot(void **state)
{
    (void)state;
    const char *text =
        "% leading comment\r\n"
        "@RELATION 'tiny set'\r\n"
        "\r\n"
        "@Attribute width NUMERIC\r\n"
        "@attribute 'my color' {red, 'dark blue', \"light, green\"}   % trailing comment\r\n"
        "@attribute height Integer\r\n"
        "@ATTRIBUTE class {'class a','class b'}\r\n"
        "@DATA\r\n"
        "% comment among the rows\r\n"
        "1.5, red, 2, 'class a'\r\n"
        "-3e-1,'dark blue',4,'class b'\r\n"
        "  7 , \"light, green\" , 0.25 , 'class b'   \r\n";
    cz_prep_set s;
    cz_error err = {0};
    assert_int_equal(arff_text(&s, text, NULL, &err), 0);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.d, 5); /* width, color one-hot x3, height */
    assert_int_equal(s.task, CZ_HEAD_CLASSIFY);
    assert_int_equal(s.classes, 2);
    assert_string_equal(s.class_names[0], "class a");
    assert_string_equal(s.class_names[1], "class b");
    assert_null(s.y_value);
    const float want[3][5] = {{1.5f, 1, 0, 0, 2}, {-0.3f, 0, 1, 0, 4}, {7, 0, 0, 1, 0.25f}};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 5; j++) assert_true(s.x[i * 5 + j] == want[i][j]);
    assert_int_equal(s.y_class[0], 0);
    assert_int_equal(s.y_class[1], 1);
    assert_int_equal(s.y_class[2], 1);
    assert_non_null(strstr(s.source, "tiny set"));
    cz_prep_set_free(&s);
    cz_prep_set_free(&s); /* safe twice */
}

static void test_prep_arff_missing_value(void **state)
{
    (void)state;
    const char *text = "@relation r\n@attribute a numeric\n@attribute b numeric\n"
                       "@attribute c {x,y}\n@data\n1,2,x\n3,?,y\n5,6,y\n?,8,x\n";
    arff_fails(text, NULL, "t.arff:7:", "column 2 (attribute 'b'): missing value");
    cz_arff_opts o;
    cz_arff_opts_default(&o);
    o.drop_missing = 1;
    cz_prep_set s;
    cz_error err = {0};
    assert_int_equal(arff_text(&s, text, &o, &err), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.dropped, 2);
    assert_true(s.x[0] == 1 && s.x[1] == 2 && s.x[2] == 5 && s.x[3] == 6);
    assert_int_equal(s.y_class[1], 1);
    cz_prep_set_free(&s);
    /* a quoted '?' is a value, not a missing one */
    const char *quoted = "@relation r\n@attribute a numeric\n@attribute c {'?',y}\n@data\n1,'?'\n";
    assert_int_equal(arff_text(&s, quoted, NULL, &err), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.y_class[0], 0);
    cz_prep_set_free(&s);
    /* every row missing, dropped: nothing left */
    arff_fails("@relation r\n@attribute a numeric\n@attribute c {x,y}\n@data\n?,x\n", &o,
               "all 1 data rows had missing values", NULL);
}

static void test_prep_arff_bad_values(void **state)
{
    (void)state;
    const char *head = "@relation r\n@attribute a numeric\n@attribute 'b b' real\n@attribute c {x,y}\n@data\n";
    char text[512];
    snprintf(text, sizeof text, "%s1,2,x\n3,abc,y\n", head);
    arff_fails(text, NULL, "t.arff:7: column 2 (attribute 'b b')", "'abc' is not a number");
    snprintf(text, sizeof text, "%s1,2x,x\n", head);
    arff_fails(text, NULL, "t.arff:6: column 2", "'2x'");
    snprintf(text, sizeof text, "%s1,nan,x\n", head);
    arff_fails(text, NULL, "t.arff:6: column 2", "not finite");
    snprintf(text, sizeof text, "%s1,1e300,x\n", head);
    arff_fails(text, NULL, "t.arff:6: column 2", "not finite in float32");
    snprintf(text, sizeof text, "%s1,2\n", head);
    arff_fails(text, NULL, "t.arff:6:", "found 2 value(s), expected 3");
    snprintf(text, sizeof text, "%s1,2,x,4\n", head);
    arff_fails(text, NULL, "t.arff:6:", "found 4 value(s), expected 3");
    snprintf(text, sizeof text, "%s1,,x\n", head);
    arff_fails(text, NULL, "t.arff:6: column 2", "empty value");
    snprintf(text, sizeof text, "%s1,2,x\n1,2,z\n", head);
    arff_fails(text, NULL, "t.arff:7: column 3 (attribute 'c')", "'z' is not one of {x,y}");
    snprintf(text, sizeof text, "%s1,2,'x\n", head);
    arff_fails(text, NULL, "t.arff:6:", "unterminated");
    snprintf(text, sizeof text, "%s{0 1, 2 x}\n", head);
    arff_fails(text, NULL, "t.arff:6:", "sparse");
    snprintf(text, sizeof text, "%s1,2,x,{3}\n", head);
    arff_fails(text, NULL, "t.arff:6:", "instance weights");
}

static void test_prep_arff_bad_headers(void **state)
{
    (void)state;
    arff_fails("", NULL, "empty file", NULL);
    arff_fails("% only a comment\n\n   \n", NULL, "empty file", NULL);
    arff_fails("@relation r\n@attribute a numeric\n@attribute c {x,y}\n", NULL, "no @data section",
               "line 3");
    arff_fails("@relation r\n@attribute a numeric\n@attribute c {x,y}\n@data\n% nothing\n", NULL,
               "no data rows after @data (line 4)", NULL);
    arff_fails("@relation r\n@attribute a numeric\n@attribute t string\n@attribute c {x,y}\n@data\n",
               NULL, "t.arff:3: attribute 't' has type string", NULL);
    arff_fails("@relation r\n@attribute d date 'yyyy'\n@attribute c {x,y}\n@data\n", NULL,
               "t.arff:2:", "type date");
    arff_fails("@relation r\n@attribute a numbr\n", NULL, "t.arff:2:", "unknown type 'numbr'");
    arff_fails("@relation r\n@attribute a numeric\n@attribute a real\n", NULL, "t.arff:3:",
               "already declared at line 2");
    arff_fails("@relation r\n@attribute c {x,y\n", NULL, "t.arff:2:", "not closed");
    arff_fails("@relation r\n@attribute c {}\n", NULL, "t.arff:2:", "has no values");
    arff_fails("@relation r\n@attribute a numeric\n@attribute c {x,x}\n", NULL, "t.arff:3:", "twice");
    arff_fails("@relation r\n1,2\n", NULL, "t.arff:2: expected @relation, @attribute or @data", NULL);
    arff_fails("@relation r\n@attrib a numeric\n", NULL, "t.arff:2: unknown header keyword", NULL);
    arff_fails("@relation r\n@data\n1\n", NULL, "t.arff:2: @data before any @attribute", NULL);
    arff_fails("@relation r\n@attribute c {x,y}\n@data\nx\n", NULL, "no features", NULL);
    arff_fails("@relation r\n@attribute a numeric\n@attribute c {x}\n@data\n1,x\n", NULL,
               "class attribute 'c' has 1 value(s)", NULL);
    cz_prep_set s;
    cz_error err = {0};
    const char *bin = write_file("bin.arff", "@relation r\n\0\1", 14);
    assert_int_equal(cz_prep_arff_read(&s, bin, NULL, &err), CZ_EINVAL);
    expect_msg(&err, "bin.arff:2: binary data");
    assert_int_equal(cz_prep_arff_read(&s, tpath("does-not-exist.arff"), NULL, &err), CZ_EIO);
    expect_msg(&err, "does-not-exist.arff: cannot open");
}

static void test_prep_arff_regress_and_class_choice(void **state)
{
    (void)state;
    const char *text = "@relation houses\n"
                       "@attribute kind {flat,house}\n"
                       "@attribute rooms integer\n"
                       "@attribute grade {low,mid,high}\n"
                       "@attribute price numeric\n"
                       "@data\n"
                       "flat,2,mid,100.5\n"
                       "house,5,high,320\n"
                       "flat,1,low,80\n";
    cz_prep_set s;
    cz_error err = {0};
    /* default: the last attribute, numeric -> regress */
    assert_int_equal(arff_text(&s, text, NULL, &err), 0);
    assert_int_equal(s.task, CZ_HEAD_REGRESS);
    assert_int_equal(s.classes, 0);
    assert_null(s.y_class);
    assert_int_equal(s.d, 2 + 1 + 3);
    assert_true(s.y_value[0] == 100.5f && s.y_value[1] == 320 && s.y_value[2] == 80);
    const float row1[6] = {0, 1, 5, 0, 0, 1};
    for (int j = 0; j < 6; j++) assert_true(s.x[6 + j] == row1[j]);
    cz_prep_set_free(&s);

    /* the nominal 'grade' as an ordinal class: price becomes a feature */
    cz_arff_opts o;
    cz_arff_opts_default(&o);
    o.class_name = "grade";
    o.task = CZ_HEAD_ORDINAL;
    assert_int_equal(arff_text(&s, text, &o, &err), 0);
    assert_int_equal(s.task, CZ_HEAD_ORDINAL);
    assert_int_equal(s.classes, 3);
    assert_int_equal(s.d, 2 + 1 + 1);
    assert_int_equal(s.y_class[0], 1);
    assert_int_equal(s.y_class[1], 2);
    assert_int_equal(s.y_class[2], 0);
    assert_true(s.x[4 + 0] == 0 && s.x[4 + 1] == 1 && s.x[4 + 2] == 5 && s.x[4 + 3] == 320);
    cz_prep_set_free(&s);

    o.task = CZ_HEAD_REGRESS;
    arff_fails(text, &o, "task regress needs a numeric class attribute", "'grade' is nominal");
    o.class_name = "price";
    o.task = CZ_HEAD_CLASSIFY;
    arff_fails(text, &o, "task classify needs a nominal class attribute", NULL);
    o.class_name = "Price";
    o.task = -1;
    arff_fails(text, &o, "no attribute named 'Price'", "kind, rooms, grade, price");
}

/* string attributes: each value goes through the csv featurizer (the same function) into
 * its own block of D columns, in attribute order; rows dropped for '?' are not counted */
static void ref_apply(cz_featurizer *ref, float *x, const char *text)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    cz_featurizer_apply(ref, x, buf, strlen(buf));
}

static void test_prep_arff_string_attributes(void **state)
{
    (void)state;
    const char *text = "@relation news\n"
                       "@attribute id numeric\n"
                       "@attribute Text string\n"
                       "@attribute title STRING % a comment\n"
                       "@attribute class {no,yes}\n"
                       "@data\n"
                       "1,'Corn prices ROSE, as the \\'USDA\\' said\\nyes','a b',yes\n"
                       "2,\"maize % up\",x,no\n"
                       "3,'',  '' ,yes\n"
                       "4,?,'dropped',no\n";
    cz_featurizer *f, *ref;
    cz_error err = {0};
    assert_int_equal(cz_featurizer_hash(&f, 16, 0, &err), 0);
    assert_int_equal(cz_featurizer_hash(&ref, 16, 0, &err), 0);
    cz_arff_opts o;
    cz_arff_opts_default(&o);
    assert_null(o.text);
    o.text = f;
    o.drop_missing = 1;
    cz_prep_set s;
    int rc = arff_text(&s, text, &o, &err);
    if (rc) fail_msg("%s", err.msg);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.d, 1 + 16 + 16);
    assert_int_equal(s.dropped, 1);
    assert_int_equal(s.task, CZ_HEAD_CLASSIFY);
    assert_int_equal(s.classes, 2);
    assert_int_equal(s.y_class[0], 1);
    assert_int_equal(s.y_class[1], 0);
    assert_int_equal(s.y_class[2], 1);
    const char *texts[3][2] = {{"Corn prices ROSE, as the 'USDA' said\nyes", "a b"},
                               {"maize % up", "x"},
                               {"", ""}};
    float want[16];
    for (size_t i = 0; i < 3; i++) {
        assert_true(s.x[i * s.d] == (float)(i + 1));
        for (int k = 0; k < 2; k++) {
            ref_apply(ref, want, texts[i][k]);
            assert_memory_equal(s.x + i * s.d + 1 + 16 * k, want, sizeof want);
        }
    }
    /* not all zero: the text really was hashed */
    float ss = 0;
    for (size_t j = 1; j < 17; j++) ss += s.x[j] * s.x[j];
    assert_true(ss > 0);
    const cz_text_counts *c = cz_featurizer_counts(f), *rc_ = cz_featurizer_counts(ref);
    assert_int_equal(c->rows, 6);
    assert_int_equal(c->tokens, rc_->tokens);
    assert_int_equal(c->features, rc_->features);
    assert_int_equal(c->empty_rows, 2);
    if (!strstr(s.featurizer, "signed hashing") || !strstr(s.featurizer, "'Text' columns 1..16") ||
        !strstr(s.featurizer, "'title' columns 17..32"))
        fail_msg("featurizer: %s", s.featurizer);
    if (!strstr(s.source, "1 numeric") || !strstr(s.source, "2 string (16 columns each)"))
        fail_msg("source: %s", s.source);
    /* the featurizer attribute reaches the file */
    assert_int_equal(cz_prep_write(&s, NULL, 0, tpath("str.h5"), NULL, 1, &err), 0);
    cz_prep_set_free(&s);

    /* no featurizer: an error naming the file, line and attribute and the options */
    arff_fails(text, NULL, "t.arff:3: attribute 'Text' has type string", "--hash-dim D or --embeddings");
    /* a string class, a featurizer without string attributes, '?' without drop_missing */
    o.drop_missing = 0;
    arff_fails("@relation r\n@attribute c {a,b}\n@attribute t string\n@data\na,'x'\n", &o,
               "t.arff:3: the class attribute 't' has type string", NULL);
    arff_fails("@relation r\n@attribute a numeric\n@attribute c {a,b}\n@data\n1,a\n", &o,
               "t.arff:4:", "no attribute has type string");
    arff_fails(text, &o, "t.arff:10: column 2 (attribute 'Text'): missing value", NULL);
    cz_featurizer_free(f);
    cz_featurizer_free(ref);

    /* embeddings: the same mean of word vectors as csv, OOV tokens counted */
    static const char vec[] = "corn 1 2\nprices 3 -4\nmaize 0.5 0.5\n";
    cz_vocab *v1, *v2;
    assert_int_equal(cz_vocab_load_mem(&v1, "v", vec, sizeof vec - 1, 0, &err), 0);
    assert_int_equal(cz_vocab_load_mem(&v2, "v", vec, sizeof vec - 1, 0, &err), 0);
    assert_int_equal(cz_featurizer_embed(&f, v1, 1, &err), 0);
    assert_int_equal(cz_featurizer_embed(&ref, v2, 1, &err), 0);
    o.text = f;
    o.drop_missing = 1;
    rc = arff_text(&s, text, &o, &err);
    if (rc) fail_msg("%s", err.msg);
    assert_int_equal(s.d, 1 + 2 + 2);
    float w2[2];
    for (size_t i = 0; i < 3; i++)
        for (int k = 0; k < 2; k++) {
            ref_apply(ref, w2, texts[i][k]);
            assert_memory_equal(s.x + i * s.d + 1 + 2 * k, w2, sizeof w2);
        }
    assert_true(fabsf(s.x[1] * s.x[1] + s.x[2] * s.x[2] - 1) < 1e-6f); /* L2-normalized */
    assert_int_equal(cz_featurizer_counts(f)->oov_tokens, cz_featurizer_counts(ref)->oov_tokens);
    assert_true(cz_featurizer_counts(f)->oov_tokens > 0);
    assert_non_null(strstr(s.featurizer, "embeddings: mean of the 2-d word vectors"));
    cz_prep_set_free(&s);
    cz_featurizer_free(f);
    cz_featurizer_free(ref);
}

static void test_prep_arff_gzip(void **state)
{
    (void)state;
    const char *text = "@relation r\n@attribute a numeric\n@attribute c {x,y}\n@data\n1,x\n2,y\n";
    const char *p = write_gz("g.arff.gz", text, strlen(text));
    cz_prep_set s;
    cz_error err = {0};
    assert_int_equal(cz_prep_arff_read(&s, p, NULL, &err), 0);
    assert_int_equal(s.n, 2);
    assert_true(s.x[1] == 2);
    assert_int_equal(s.y_class[1], 1);
    cz_prep_set_free(&s);
}

static void test_prep_arff_diabetes(void **state)
{
    (void)state;
    const char *cands[] = {getenv("CHAINZ_DIABETES_ARFF"), "/usr/share/doc/weka/examples/diabetes.arff",
                           "/usr/share/doc/weka/examples/diabetes.arff.gz"};
    const char *path = NULL;
    for (size_t i = 0; i < sizeof cands / sizeof *cands && !path; i++)
        if (cands[i] && *cands[i] && access(cands[i], R_OK) == 0) path = cands[i];
    if (!path) {
        print_message("diabetes.arff not found (set CHAINZ_DIABETES_ARFF or install weka's "
                      "examples): skipping the real-data check\n");
        skip();
        return;
    }
    cz_prep_set s;
    cz_error err = {0};
    if (cz_prep_arff_read(&s, path, NULL, &err)) fail_msg("%s", err.msg);
    assert_int_equal(s.n, 768);
    assert_int_equal(s.d, 8);
    assert_int_equal(s.classes, 2);
    assert_string_equal(s.class_names[0], "tested_negative");
    size_t count[2] = {0, 0};
    for (size_t i = 0; i < s.n; i++) count[s.y_class[i]]++;
    assert_int_equal(count[0], 500);
    assert_int_equal(count[1], 268);
    /* first row of the UCI file: 6,148,72,35,0,33.6,0.627,50,tested_positive */
    assert_true(s.x[0] == 6 && s.x[1] == 148 && s.x[5] == 33.6f && s.y_class[0] == 1);
    cz_prep_set_free(&s);
}

/* ---- IDX ---- */

static size_t idx_header(unsigned char *b, int ndims, const uint32_t *dims)
{
    b[0] = b[1] = 0;
    b[2] = 0x08;
    b[3] = (unsigned char)ndims;
    for (int i = 0; i < ndims; i++) {
        b[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        b[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        b[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        b[7 + 4 * i] = (unsigned char)dims[i];
    }
    return 4 + 4 * (size_t)ndims;
}

enum { IN = 5, IR = 3, IC = 4 };

static void make_idx(unsigned char *img, size_t *img_len, unsigned char *lab, size_t *lab_len,
                     uint32_t n_labels)
{
    uint32_t idim[3] = {IN, IR, IC}, ldim[1] = {n_labels};
    size_t h = idx_header(img, 3, idim);
    for (size_t i = 0; i < (size_t)IN * IR * IC; i++) img[h + i] = (unsigned char)(i * 37 % 256);
    img[h] = 255;
    img[h + 1] = 0;
    *img_len = h + (size_t)IN * IR * IC;
    h = idx_header(lab, 1, ldim);
    for (size_t i = 0; i < n_labels; i++) lab[h + i] = (unsigned char)(i * 3 % 10);
    *lab_len = h + n_labels;
}

static void check_idx_set(const cz_prep_set *s, const unsigned char *img)
{
    assert_int_equal(s->n, IN);
    assert_int_equal(s->d, IR * IC);
    assert_int_equal(s->classes, 10);
    assert_int_equal(s->task, CZ_HEAD_CLASSIFY);
    for (size_t i = 0; i < (size_t)IN * IR * IC; i++) assert_true(s->x[i] == (float)img[16 + i] / 255.0f);
    assert_true(s->x[0] == 1.0f && s->x[1] == 0.0f);
    for (size_t i = 0; i < IN; i++) assert_int_equal(s->y_class[i], (int)(i * 3 % 10));
}

static void test_prep_idx_round_trip_plain_and_gzip(void **state)
{
    (void)state;
    unsigned char img[16 + IN * IR * IC], lab[8 + IN];
    size_t il, ll;
    make_idx(img, &il, lab, &ll, IN);
    cz_prep_set s;
    cz_error err = {0};
    const char *pi = write_file("i.idx3", img, il), *pl = write_file("l.idx1", lab, ll);
    assert_int_equal(cz_prep_idx_read(&s, pi, pl, &err), 0);
    check_idx_set(&s, img);
    cz_prep_set_free(&s);
    pi = write_gz("i.idx3.gz", img, il);
    pl = write_gz("l.idx1.gz", lab, ll);
    assert_int_equal(cz_prep_idx_read(&s, pi, pl, &err), 0);
    check_idx_set(&s, img);
    cz_prep_set_free(&s);
    /* mixed: gzip images, plain labels */
    pl = write_file("l.idx1", lab, ll);
    assert_int_equal(cz_prep_idx_read(&s, pi, pl, &err), 0);
    check_idx_set(&s, img);
    cz_prep_set_free(&s);
}

static void idx_fails(const unsigned char *img, size_t il, const unsigned char *lab, size_t ll,
                      const char *a, const char *b)
{
    const char *pi = write_file("bi.idx3", img, il), *pl = write_gz("bl.idx1.gz", lab, ll);
    cz_prep_set s;
    cz_error err = {0};
    assert_int_equal(cz_prep_idx_read(&s, pi, pl, &err), CZ_EINVAL);
    if (a) expect_msg(&err, a);
    if (b) expect_msg(&err, b);
    assert_null(s.x);
}

static void test_prep_idx_errors(void **state)
{
    (void)state;
    unsigned char img[16 + IN * IR * IC + 1], lab[8 + IN + 1];
    size_t il, ll;
    make_idx(img, &il, lab, &ll, IN);
    /* labels file given as images: wrong dimension count */
    idx_fails(lab, ll, lab, ll, "bi.idx3: IDX file has 1 dimension(s), expected 3", NULL);
    /* images given as labels */
    idx_fails(img, il, img, il, "bl.idx1.gz: IDX file has 3 dimension(s), expected 1", NULL);
    /* not IDX at all */
    idx_fails((const unsigned char *)"\x89PNG\r\n\x1a\n", 8, lab, ll, "not an IDX file", "89504e47");
    /* int32 elements instead of bytes */
    img[2] = 0x0C;
    idx_fails(img, il, lab, ll, "element type 0x0c, expected 0x08", NULL);
    img[2] = 0x08;
    /* count mismatch */
    make_idx(img, &il, lab, &ll, IN - 1);
    idx_fails(img, il, lab, ll, "has 5 images but", "has 4 labels");
    make_idx(img, &il, lab, &ll, IN);
    /* truncated images, trailing bytes, bad label */
    idx_fails(img, il - 3, lab, ll, "bi.idx3: file ends in images", NULL);
    img[il] = 9;
    idx_fails(img, il + 1, lab, ll, "extra bytes after the images", NULL);
    idx_fails(img, il, lab, ll - 1, "bl.idx1.gz: file ends in the labels", NULL);
    lab[8 + 2] = 10;
    idx_fails(img, il, lab, ll, "label 2 (0-based) is 10, expected 0..9", NULL);
    idx_fails(img, 2, lab, ll, "file ends in the IDX magic number", NULL);
}

/* ---- split ---- */

static void test_prep_split_parse(void **state)
{
    (void)state;
    double f[CZ_SPLIT_COUNT];
    cz_error err = {0};
    assert_int_equal(cz_prep_split_parse("train=0.8,val=0.1,test=0.1", f, &err), 0);
    assert_true(f[CZ_SPLIT_TRAIN] == 0.8 && f[CZ_SPLIT_VAL] == 0.1 && f[CZ_SPLIT_TEST] == 0.1);
    assert_int_equal(cz_prep_split_parse("test=0.25,train=0.75", f, &err), 0);
    assert_true(f[CZ_SPLIT_VAL] == 0 && f[CZ_SPLIT_TEST] == 0.25);
    assert_int_equal(cz_prep_split_parse("train=0.8,val=0.1", f, &err), CZ_EINVAL);
    expect_msg(&err, "add up to 0.9");
    assert_int_equal(cz_prep_split_parse("train=0.8,dev=0.2", f, &err), CZ_EINVAL);
    expect_msg(&err, "unknown part 'dev'");
    assert_int_equal(cz_prep_split_parse("train=0.5,train=0.5", f, &err), CZ_EINVAL);
    expect_msg(&err, "twice");
    assert_int_equal(cz_prep_split_parse("train=1.5,test=-0.5", f, &err), CZ_EINVAL);
    expect_msg(&err, "train=1.5");
    assert_int_equal(cz_prep_split_parse("train", f, &err), CZ_EINVAL);
    assert_int_equal(cz_prep_split_parse("train=,test=1", f, &err), CZ_EINVAL);
    assert_int_equal(cz_prep_split_parse("train=0.5x,test=0.5", f, &err), CZ_EINVAL);
}

/* a classify set with class sizes given; features = row index */
static void make_set(cz_prep_set *s, const size_t *sizes, int K)
{
    memset(s, 0, sizeof *s);
    size_t n = 0;
    for (int k = 0; k < K; k++) n += sizes[k];
    s->n = n;
    s->d = 2;
    s->task = CZ_HEAD_CLASSIFY;
    s->classes = K;
    s->x = malloc(n * 2 * sizeof *s->x);
    s->y_class = malloc(n * sizeof *s->y_class);
    assert_non_null(s->x);
    assert_non_null(s->y_class);
    /* interleave classes so that their rows are not contiguous */
    size_t left[8];
    memcpy(left, sizes, (size_t)K * sizeof *left);
    for (size_t i = 0, k = 0; i < n; k = (k + 1) % (size_t)K) {
        if (!left[k]) continue;
        left[k]--;
        s->y_class[i] = (int32_t)k;
        s->x[2 * i] = (float)i;
        s->x[2 * i + 1] = (float)k * 10;
        i++;
    }
    snprintf(s->source, sizeof s->source, "synthetic");
}

static void test_prep_split_stratified_and_seeded(void **state)
{
    (void)state;
    const size_t sizes[3] = {500, 268, 9};
    cz_prep_set s;
    make_set(&s, sizes, 3);
    const double frac[CZ_SPLIT_COUNT] = {0.8, 0.1, 0.1};
    cz_prep_split a, b, c;
    cz_error err = {0};
    assert_int_equal(cz_prep_split_make(&a, &s, frac, 7, &err), 0);
    assert_int_equal(cz_prep_split_make(&b, &s, frac, 7, &err), 0);
    assert_int_equal(cz_prep_split_make(&c, &s, frac, 8, &err), 0);
    assert_int_equal(a.n[0] + a.n[1] + a.n[2], s.n);
    int *seen = calloc(s.n, sizeof *seen);
    assert_non_null(seen);
    for (int j = 0; j < CZ_SPLIT_COUNT; j++) {
        size_t count[3] = {0, 0, 0};
        for (size_t i = 0; i < a.n[j]; i++) {
            uint64_t r = a.rows[j][i];
            assert_true(r < s.n);
            assert_int_equal(seen[r]++, 0); /* disjoint */
            if (i) assert_true(a.rows[j][i - 1] < r); /* ascending */
            count[s.y_class[r]]++;
        }
        for (int k = 0; k < 3; k++)
            assert_true(fabs((double)count[k] - frac[j] * (double)sizes[k]) <= 1.0);
        assert_int_equal(a.n[j], b.n[j]);
        assert_memory_equal(a.rows[j], b.rows[j], a.n[j] * sizeof(uint64_t));
    }
    for (size_t i = 0; i < s.n; i++) assert_int_equal(seen[i], 1); /* covering */
    size_t differ = 0;
    for (size_t i = 0; i < a.n[CZ_SPLIT_TEST] && i < c.n[CZ_SPLIT_TEST]; i++)
        differ += a.rows[CZ_SPLIT_TEST][i] != c.rows[CZ_SPLIT_TEST][i];
    assert_true(differ > a.n[CZ_SPLIT_TEST] / 2);
    free(seen);
    cz_prep_split_free(&a);
    cz_prep_split_free(&b);
    cz_prep_split_free(&c);

    /* regress: one stratum; a zero fraction gets nothing */
    cz_prep_set r = s;
    r.task = CZ_HEAD_REGRESS;
    r.y_class = NULL;
    const double f2[CZ_SPLIT_COUNT] = {0.7, 0, 0.3};
    assert_int_equal(cz_prep_split_make(&a, &r, f2, 1, &err), 0);
    assert_int_equal(a.n[CZ_SPLIT_VAL], 0);
    assert_true(fabs((double)a.n[CZ_SPLIT_TRAIN] - 0.7 * (double)s.n) <= 1.0);
    assert_int_equal(a.n[CZ_SPLIT_TRAIN] + a.n[CZ_SPLIT_TEST], s.n);
    cz_prep_split_free(&a);
    cz_prep_set_free(&s);
}

/* ---- writing ---- */

static void check_file(const char *path, const cz_prep_set *s, const uint64_t *rows, size_t n)
{
    cz_data *ds;
    cz_error err = {0};
    if (cz_data_open(&ds, path, &err)) fail_msg("%s", err.msg);
    const cz_data_info *info = cz_data_get_info(ds);
    assert_int_equal(info->n, n);
    assert_int_equal(info->d, s->d);
    assert_int_equal(info->task, s->task);
    assert_int_equal(info->classes, s->classes);
    assert_non_null(strstr(info->source, "synthetic"));
    uint64_t *idx = malloc(n * sizeof *idx);
    float *x = malloc(n * s->d * sizeof *x);
    assert_non_null(idx);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) idx[i] = i;
    assert_int_equal(cz_data_read_rows(ds, idx, n, x, &err), 0);
    for (size_t i = 0; i < n; i++) {
        size_t r = rows ? rows[i] : i;
        assert_memory_equal(x + i * s->d, s->x + r * s->d, s->d * sizeof *x);
        if (s->task == CZ_HEAD_REGRESS) assert_true(cz_data_labels_value(ds)[i] == s->y_value[r]);
        else assert_int_equal(cz_data_labels_class(ds)[i], s->y_class[r]);
    }
    free(idx);
    free(x);
    cz_data_close(ds);
}

static void test_prep_write_round_trip(void **state)
{
    (void)state;
    const size_t sizes[2] = {30, 12};
    cz_prep_set s;
    make_set(&s, sizes, 2);
    cz_error err = {0};
    const char *whole = tpath("whole.h5");
    assert_int_equal(cz_prep_write(&s, NULL, 0, whole, NULL, 1, &err), 0);
    check_file(whole, &s, NULL, s.n);
    const double frac[CZ_SPLIT_COUNT] = {0.6, 0.2, 0.2};
    cz_prep_split sp;
    assert_int_equal(cz_prep_split_make(&sp, &s, frac, 3, &err), 0);
    for (int j = 0; j < CZ_SPLIT_COUNT; j++) {
        char name[32];
        snprintf(name, sizeof name, "out-%s.h5", cz_split_name(j));
        const char *p = tpath(name);
        assert_int_equal(cz_prep_write(&s, sp.rows[j], sp.n[j], p, "split", j == 0, &err), 0);
        check_file(p, &s, sp.rows[j], sp.n[j]);
    }
    assert_int_equal(cz_prep_write(&s, sp.rows[0], 0, tpath("empty.h5"), NULL, 0, &err), CZ_EINVAL);
    expect_msg(&err, "no rows");
    assert_int_equal(access(tpath("empty.h5"), F_OK), -1);
    cz_prep_split_free(&sp);

    /* regress labels round-trip as floats */
    free(s.y_class);
    s.y_class = NULL;
    s.task = CZ_HEAD_REGRESS;
    s.classes = 0;
    s.y_value = malloc(s.n * sizeof *s.y_value);
    assert_non_null(s.y_value);
    for (size_t i = 0; i < s.n; i++) s.y_value[i] = 0.5f * (float)i - 3;
    const char *reg = tpath("reg.h5");
    assert_int_equal(cz_prep_write(&s, NULL, 0, reg, NULL, 1, &err), 0);
    check_file(reg, &s, NULL, s.n);
    cz_prep_set_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prep_arff_comments_quotes_crlf_onehot),
        cmocka_unit_test(test_prep_arff_missing_value),
        cmocka_unit_test(test_prep_arff_bad_values),
        cmocka_unit_test(test_prep_arff_bad_headers),
        cmocka_unit_test(test_prep_arff_regress_and_class_choice),
        cmocka_unit_test(test_prep_arff_string_attributes),
        cmocka_unit_test(test_prep_arff_gzip),
        cmocka_unit_test(test_prep_arff_diabetes),
        cmocka_unit_test(test_prep_idx_round_trip_plain_and_gzip),
        cmocka_unit_test(test_prep_idx_errors),
        cmocka_unit_test(test_prep_split_parse),
        cmocka_unit_test(test_prep_split_stratified_and_seeded),
        cmocka_unit_test(test_prep_write_round_trip),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
