/* `chainz export`: a checkpoint's forward pass as an ONNX model (src/export/onnx.c).
 * One process, no MPI: the checkpoint is read and verified (src/io), the graph written. */
#include "chainz/export.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chainz/checkpoint.h"
#include "chainz/runstate.h"

enum { EXIT_USAGE = 1, EXIT_RUNTIME = 2 };

static void export_usage(FILE *f)
{
    fprintf(f,
"usage: chainz export --model CKPT|RUN_DIR --onnx OUT.onnx [--opset N]\n"
"\n"
"Writes the model's forward pass as an ONNX model any ONNX runtime can serve: input\n"
"\"x\" [batch, d] float32 in the units of the training data; the standardization\n"
"(mean, std, clip_z) of the checkpoint, the hidden layers (Gemm, then the activation;\n"
"the cubic poly as plain Mul/Add) and the output layer, then the head's outputs:\n"
"  classify  logits [batch, K], prob [batch, K] (softmax), label [batch] int64 (argmax)\n"
"  ordinal   logits [batch, K-1], exceed [batch, K-1] (sigmoids, P(y > k)),\n"
"            value [batch] (expected class), label [batch] int64 (logits > 0 counted)\n"
"  regress   value [batch]\n"
"The checkpoint's epoch, step and configuration go into the model's doc string and\n"
"metadata (keys chainz.*).\n"
"\n"
"options:\n"
"  --model CKPT|RUN_DIR  a checkpoint file, or a run directory (its newest checkpoint\n"
"                        that verifies, as chainz eval)\n"
"  --onnx OUT.onnx       the file to write (replaced only by a complete new one)\n"
"  --opset N             ONNX opset to declare, %d..%d (default %d; every op used has\n"
"                        the same meaning in all of them)\n"
"  -h, --help            print this help and exit\n"
"\n"
"Exit status: 0 done, 1 usage or input error, 2 runtime failure (a write failed).\n",
            CZ_ONNX_OPSET_MIN, CZ_ONNX_OPSET_MAX, CZ_ONNX_OPSET_DEFAULT);
}

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "chainz export: %s%s%s%s (see chainz export --help)\n", msg, arg ? " '" : "", arg ? arg : "",
            arg ? "'" : "");
    return EXIT_USAGE;
}

/* 1 if path exists and starts with HDF5's signature: a data set, checkpoint or metrics file
 * given as --onnx by mistake (an ONNX file never does) */
static int is_hdf5(const char *path)
{
    unsigned char sig[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(sig, 1, sizeof sig, f);
    fclose(f);
    return n == sizeof sig && !memcmp(sig, "\x89HDF\r\n\x1a\n", sizeof sig);
}

static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int cz_cmd_export(int argc, char **argv)
{
    enum { O_MODEL = 256, O_ONNX, O_OPSET };
    static const struct option long_opts[] = {
        {"model", required_argument, NULL, O_MODEL},
        {"onnx", required_argument, NULL, O_ONNX},
        {"opset", required_argument, NULL, O_OPSET},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *model = NULL, *onnx = NULL;
    int opset = CZ_ONNX_OPSET_DEFAULT, c;
#ifdef __GLIBC__
    optind = 0; /* full re-initialisation: the caller may have parsed other options */
#else
    optind = 1;
#endif
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
        switch (c) {
        case O_MODEL: model = optarg; break;
        case O_ONNX: onnx = optarg; break;
        case O_OPSET: {
            char *end;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || v < CZ_ONNX_OPSET_MIN || v > CZ_ONNX_OPSET_MAX) {
                fprintf(stderr, "chainz export: --opset '%s': expected an integer in %d..%d\n", optarg,
                        CZ_ONNX_OPSET_MIN, CZ_ONNX_OPSET_MAX);
                return EXIT_USAGE;
            }
            opset = (int)v;
            break;
        }
        case 'h': export_usage(stdout); return 0;
        case ':': return usage_error("missing value for option", argv[optind - 1]);
        default: return usage_error("unknown option", argv[optind - 1]);
        }
    }
    if (optind < argc) return usage_error("unexpected argument", argv[optind]);
    if (!model || !*model) return usage_error("--model CKPT|RUN_DIR is required", NULL);
    if (!onnx || !*onnx) return usage_error("--onnx OUT.onnx is required", NULL);
#ifndef CHAINZ_HAVE_ONNX
    (void)opset;
    fprintf(stderr, "chainz export: this chainz was built without ONNX export (cmake -DCHAINZ_ONNX=ON, "
                    "with Debian's libprotobuf-c-dev and protobuf-c-compiler)\n");
    return EXIT_USAGE;
#else
    struct stat st;
    int exists = stat(onnx, &st) == 0;
    if (exists && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "chainz export: --onnx %s is a directory: give a file name\n", onnx);
        return EXIT_USAGE;
    }
    cz_error err = {0};
    char path[4600];
    /* the chosen file is named in the report line (the resolver's own log says "eval") */
    int rc = cz_run_resolve_newest(model, path, sizeof path, NULL, &err);
    /* the checkpoint (or the model argument itself) would be replaced by the export */
    if (!rc && (same_file(onnx, path) || same_file(onnx, model) || !strcmp(onnx, path)))
        rc = cz_error_set(&err, CZ_EINVAL, "--onnx %s is the checkpoint %s: refused", onnx, path);
    if (!rc && exists && S_ISREG(st.st_mode) && is_hdf5(onnx))
        rc = cz_error_set(&err, CZ_EINVAL, "--onnx %s is an HDF5 file (a data set, checkpoint or metrics.h5?), not an "
                          "ONNX model: refused (remove it first to reuse the name)", onnx);
    cz_checkpoint ck;
    memset(&ck, 0, sizeof ck);
    if (!rc) rc = cz_ckpt_load(path, &ck, &err);
    cz_onnx_info info = {0};
    if (!rc) {
        cz_onnx_opts o = {.opset = opset, .source = path};
        rc = cz_onnx_write(onnx, &ck, &o, &info, &err);
    }
    if (!rc) {
        const cz_model *m = &ck.model;
        const char *outs = m->spec.head == CZ_HEAD_CLASSIFY  ? "logits, prob, label"
                           : m->spec.head == CZ_HEAD_ORDINAL ? "logits, exceed, value, label"
                                                              : "value";
        printf("chainz export: %s -> %s: %zu parameters, %zu nodes, opset %d (IR %ld), %zu bytes; "
               "input x [batch, %zu], outputs %s\n",
               path, onnx, m->n_params, info.nodes, info.opset, info.ir_version, info.bytes, m->spec.d, outs);
    }
    cz_ckpt_free(&ck);
    if (rc) fprintf(stderr, "chainz export: error: %s\n", err.msg);
    return rc == 0 ? 0 : rc == CZ_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
#endif
}
