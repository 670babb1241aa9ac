/* ONNX export of a trained CR model's forward pass (docs/DESIGN.md section 7, "ONNX export").
 *
 * The graph, for a checkpoint with d inputs, hidden layers 1..H and a head:
 *   input  x [batch, d] float, in the units of the training data
 *   (x - mean) / std, clipped to +-clip_z   when the checkpoint holds a standardization
 *   per hidden layer: Gemm (transB = 1) then the activation: poly as Horner's rule
 *     ((a3 z + a2) z + a1) z + a0 with plain Mul/Add and per-neuron coefficient vectors
 *     (the order chainz evaluates it), relu Relu, tanh Tanh, gelu z * 0.5 (1 + erf(z / sqrt 2))
 *     (chainz's exact GELU), identity nothing
 *   output Gemm, then the head:
 *     classify  logits [batch, K], prob = Softmax(logits) [batch, K], label = ArgMax [batch] int64
 *     ordinal   logits [batch, K-1] (cumulative: logit_k for y > k), exceed = Sigmoid(logits),
 *               value = ReduceSum(exceed) [batch] (the expected class), label = number of
 *               logits > 0 [batch] int64 (as chainz counts accuracy)
 *     regress   value [batch]
 * Names follow the checkpoint's groups (model/layer_1/weight, ...). The file is one
 * protobuf message written with libprotobuf-c from the ONNX schema vendored in
 * third_party/onnx (protoc-c at build time); this module reads only the cz_checkpoint in
 * memory: no HDF5, no MPI. */
#ifndef CHAINZ_EXPORT_H
#define CHAINZ_EXPORT_H

#include <stddef.h>
#include "chainz/checkpoint.h"
#include "chainz/error.h"

#define CZ_ONNX_OPSET_MIN 13     /* every op used has its current semantics from opset 13 */
#define CZ_ONNX_OPSET_MAX 17     /* the newest opset Debian's onnx 1.12 checker knows */
#define CZ_ONNX_OPSET_DEFAULT 13

typedef struct {
    int opset;                   /* CZ_ONNX_OPSET_MIN..MAX; 0: the default */
    const char *source;          /* the checkpoint's path, recorded in the model (may be NULL) */
} cz_onnx_opts;

typedef struct {                 /* what was written, for the command's report */
    size_t nodes, initializers, bytes;
    int opset;
    long ir_version;
} cz_onnx_info;

/* Writes c's forward pass to path as an ONNX model: under a temporary name in the same
 * directory, fsynced, then renamed over path, so an existing file is replaced only by a
 * complete one. info may be NULL.
 * @return 0; CZ_EINVAL (opset out of range, a model above protobuf's 2 GiB limit, path an
 * existing non-regular file: a symbolic link, device, FIFO or directory, or a symbolic link's
 * temporary); CZ_EIO naming the file and the system's reason; CZ_ENOMEM. */
int cz_onnx_write(const char *path, const cz_checkpoint *c, const cz_onnx_opts *o, cz_onnx_info *info,
                  cz_error *err);

/* `chainz export` (src/cli/cmd_export.c): runs without MPI. @return the exit status. */
int cz_cmd_export(int argc, char **argv);

#endif
