#!/usr/bin/python3
"""Checks an ONNX model written by `chainz export` (tests/test_export.sh).

usage: onnx_check.py MODEL.onnx CKPT.h5 DATA.h5 EVAL.json OPSET

1. onnx.checker.check_model(full_check=True) and strict shape inference: the declared and
   inferred outputs are the head's names with shapes [batch, K] / [batch].
2. The graph contract: input "x" [batch, d], producer chainz, the opset asked for, the
   checkpoint's epoch and step in the doc string and metadata.
3. A tiny numpy evaluator of the ops chainz uses, walking the graph's nodes in order in
   float32, against an independent float64 forward of the checkpoint's weights read with
   h5py (standardization, per-layer activation, output layer, head). Tolerance: every
   float output within 1e-5 * max(1, |ref|) of the reference; labels equal except on rows
   whose decision margin in the reference is below 1e-4 (counted, and at most 1 %).
4. Against chainz itself: the labels' confusion matrix (classify), the count of correct
   labels and the sum of |label - y| (ordinal) equal `chainz eval --json`'s exactly; the
   regression MAE within 1e-5 relative.
5. Sensitivity: mutated copies of the model (poly coefficients in reverse order, std
   replaced by ones, the clip bounds doubled, softmax over the wrong axis, tanh for erf in
   GELU, layer 1's bias dropped; each where the model has it) must fail step 3,
   so the comparison is shown to catch such a break.
Exit status 0 when every check passes, 1 otherwise.
"""
import copy
import json
import math
import sys

import h5py
import numpy as np
import onnx
from onnx import numpy_helper

RTOL = 1e-5
MARGIN = 1e-4
fails = 0


def check(cond, what):
    global fails
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        fails += 1
    return cond


# ---- the numpy evaluator: only the ops of the contract, float32 like a runtime ----
_erf = np.vectorize(math.erf, otypes=[np.float64])


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def run_graph(model, x):
    g = model.graph
    env = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    env[g.input[0].name] = x.astype(np.float32)
    for n in g.node:
        a = attrs(n)
        i = [env[name] for name in n.input]
        op = n.op_type
        if op == "Sub":
            y = i[0] - i[1]
        elif op == "Div":
            y = i[0] / i[1]
        elif op == "Add":
            y = i[0] + i[1]
        elif op == "Mul":
            y = i[0] * i[1]
        elif op == "Clip":
            y = np.minimum(np.maximum(i[0], i[1]), i[2])
        elif op == "Gemm":
            A = i[0].T if a.get("transA", 0) else i[0]
            B = i[1].T if a.get("transB", 0) else i[1]
            y = np.float32(a.get("alpha", 1.0)) * (A @ B)
            if len(i) > 2:
                y = y + np.float32(a.get("beta", 1.0)) * i[2]
        elif op == "Relu":
            y = np.maximum(i[0], np.float32(0))
        elif op == "Tanh":
            y = np.tanh(i[0])
        elif op == "Erf":
            y = _erf(i[0]).astype(np.float32)
        elif op == "Sigmoid":
            y = (1.0 / (1.0 + np.exp(-i[0].astype(np.float64)))).astype(np.float32)
        elif op == "Softmax":
            ax = a.get("axis", -1)
            e = np.exp(i[0] - i[0].max(axis=ax, keepdims=True))
            y = e / e.sum(axis=ax, keepdims=True)
        elif op == "ArgMax":
            assert not a.get("select_last_index", 0)
            y = np.argmax(i[0], axis=a.get("axis", 0))
            if a.get("keepdims", 1):
                y = np.expand_dims(y, a.get("axis", 0))
            y = y.astype(np.int64)
        elif op == "ReduceSum":
            axes = tuple(int(v) for v in i[1]) if len(i) > 1 else None
            y = i[0].sum(axis=axes, keepdims=bool(a.get("keepdims", 1))).astype(i[0].dtype)
        elif op == "Greater":
            y = i[0] > i[1]
        elif op == "Cast":
            y = i[0].astype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[a["to"]])
        elif op == "Squeeze":
            y = np.squeeze(i[0], axis=tuple(int(v) for v in i[1]))
        else:
            raise ValueError("the evaluator has no op " + op)
        env[n.output[0]] = y
    return {o.name: env[o.name] for o in g.output}


# ---- the reference: the checkpoint's weights, float64, written from DESIGN's formulas ----
def reference(ck, x):
    m = ck["model"]
    h = x.astype(np.float64)
    if "input" in m:
        h = (h - m["input/mean"][()]) / m["input/std"][()]
        c = float(m["input"].attrs.get("clip_z", 0))
        if c > 0:
            h = np.clip(h, -c, c)
    l = 1
    while "layer_%d" % l in m:
        L = m["layer_%d" % l]
        z = h @ L["weight"][()].astype(np.float64).T + L["bias"][()]
        act = L.attrs["activation"]
        act = act.decode() if isinstance(act, bytes) else act
        if act == "poly":
            p = L["poly"][()].astype(np.float64)
            h = p[:, 0] + p[:, 1] * z + p[:, 2] * z**2 + p[:, 3] * z**3
        elif act == "relu":
            h = np.maximum(z, 0)
        elif act == "tanh":
            h = np.tanh(z)
        elif act == "gelu":
            h = z * 0.5 * (1 + _erf(z / math.sqrt(2)))
        else:
            h = z
        l += 1
    return h @ m["output/weight"][()].astype(np.float64).T + m["output/bias"][()]


def close(a, b):
    err = np.abs(a.astype(np.float64) - b) / np.maximum(1.0, np.abs(b))
    return float(err.max()) if err.size else 0.0


def compare(out, f, head, say):
    """Every output of the graph against the reference logits f; True if all agree."""
    ok = True
    worst = {}
    if head == "regress":
        worst["value"] = close(out["value"], f[:, 0])
    else:
        worst["logits"] = close(out["logits"], f)
    if head == "classify":
        e = np.exp(f - f.max(axis=1, keepdims=True))
        worst["prob"] = close(out["prob"], e / e.sum(axis=1, keepdims=True))
        top2 = np.sort(f, axis=1)[:, -2:]
        ambiguous = top2[:, 1] - top2[:, 0] < MARGIN
        ref_label = np.argmax(f, axis=1)
    elif head == "ordinal":
        s = 1 / (1 + np.exp(-f))
        worst["exceed"] = close(out["exceed"], s)
        worst["value"] = close(out["value"], s.sum(axis=1))
        ambiguous = (np.abs(f) < MARGIN).any(axis=1)
        ref_label = (f > 0).sum(axis=1)
    for k, v in worst.items():
        good = v <= RTOL
        ok &= good
        if say:
            check(good, "%s within %.0e of the float64 reference (worst %.2e relative)" % (k, RTOL, v))
    if head != "regress":
        bad = (out["label"] != ref_label) & ~ambiguous
        good = out["label"].dtype == np.int64 and not bad.any() and ambiguous.mean() <= 0.01
        ok &= good
        if say:
            check(good, "label (int64) equals the reference's on every row (%d of %d rows within %.0e of a tie)"
                  % (ambiguous.sum(), len(f), MARGIN))
    return ok


def main():
    path, ckpt, data, evaljs, opset = sys.argv[1:6]
    model = onnx.load(path)
    try:
        onnx.checker.check_model(model, full_check=True)
        check(True, "onnx.checker.check_model(full_check=True)")
    except Exception as e:  # noqa: BLE001 - the checker's message is the finding
        check(False, "onnx.checker: %s" % e)
    with h5py.File(ckpt, "r") as ck, h5py.File(data, "r") as ds:
        head = ck.attrs["head"]
        head = head.decode() if isinstance(head, bytes) else head
        K = int(ck.attrs["classes"]) if head != "regress" else 1
        d = int(ck.attrs["d"])
        epoch, step = int(ck["state"].attrs["epoch"]), int(ck["state"].attrs["step"])
        x = ds["features"][()]
        y = ds["labels"][()]
        f = reference(ck, x)

        # 1. outputs as declared and as inferred
        want = {"classify": {"logits": [K], "prob": [K], "label": []},
                "ordinal": {"logits": [K - 1], "exceed": [K - 1], "value": [], "label": []},
                "regress": {"value": []}}[head]

        def shapes(outs):
            return {o.name: [dd.dim_param or dd.dim_value for dd in o.type.tensor_type.shape.dim] for o in outs}
        declared = shapes(model.graph.output)
        check(declared == {k: ["batch"] + v for k, v in want.items()},
              "outputs %s declared as the contract says" % declared)
        try:
            inf = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
            vi = {v.name: v for v in list(inf.graph.value_info) + list(inf.graph.output)}
            got = shapes(vi[k] for k in want)
            check(got == {k: ["batch"] + v for k, v in want.items()}, "shape inference (strict) gives %s" % got)
        except Exception as e:  # noqa: BLE001
            check(False, "shape inference: %s" % e)

        # 2. the contract
        inp = model.graph.input[0]
        check(len(model.graph.input) == 1 and inp.name == "x" and
              [dd.dim_param or dd.dim_value for dd in inp.type.tensor_type.shape.dim] == ["batch", d]
              and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT, "input x float [batch, %d]" % d)
        check(model.producer_name == "chainz" and model.opset_import[0].version == int(opset)
              and model.ir_version == (7 if int(opset) <= 14 else 8),
              "producer %s %s, opset %d, IR %d" % (model.producer_name, model.producer_version,
                                                   model.opset_import[0].version, model.ir_version))
        meta = {p.key: p.value for p in model.metadata_props}
        cfg = ck.attrs["config"]
        cfg = cfg.decode() if isinstance(cfg, bytes) else cfg
        check("epoch %d, step %d" % (epoch, step) in model.doc_string and meta.get("chainz.step") == str(step)
              and meta.get("chainz.head") == head and meta.get("chainz.config") == cfg and cfg in model.doc_string,
              "doc string and metadata name epoch %d, step %d and the config" % (epoch, step))

        # 3. the graph against the reference
        out = run_graph(model, x)
        compare(out, f, head, True)
        one = run_graph(model, x[:1])  # a batch of one: the batch dimension is free
        check(all(np.array_equal(one[k][:1], out[k][:1]) or close(one[k][:1], out[k][:1].astype(np.float64)) <= RTOL
                  for k in out), "a batch of 1 row gives that row's outputs")

        # 4. against chainz eval
        rep = json.load(open(evaljs))
        n = len(y)
        if head == "classify":
            conf = np.zeros((K, K), dtype=np.int64)
            np.add.at(conf, (y.astype(np.int64), out["label"]), 1)
            check(conf.tolist() == rep["confusion"], "confusion of the ONNX labels equals chainz eval's %s"
                  % rep["confusion"])
        elif head == "ordinal":
            correct = int((out["label"] == y).sum())
            abserr = int(np.abs(out["label"] - y).sum())
            check(correct == round(rep["acc"] * n) and abserr == round(rep["mae"] * n),
                  "ONNX labels: %d correct, sum |error| %d; chainz eval: acc %.9g, mae %.9g of %d"
                  % (correct, abserr, rep["acc"], rep["mae"], n))
        else:
            mae = float(np.abs(out["value"].astype(np.float64) - y).mean())
            check(abs(mae - rep["mae"]) <= RTOL * max(1.0, rep["mae"]),
                  "ONNX value's MAE %.9g, chainz eval's %.9g" % (mae, rep["mae"]))

        # 5. the comparison catches a broken graph
        def mutated(fn):
            m2 = copy.deepcopy(model)
            return fn(m2)

        def set_init(m2, name, fn):
            for t in m2.graph.initializer:
                if t.name == name:
                    t.CopyFrom(numpy_helper.from_array(fn(numpy_helper.to_array(t)).astype(np.float32), name))
                    return True
            return False

        def reverse_poly(m2):
            names = [t.name for t in m2.graph.initializer if "/poly_a" in t.name]
            if not names:
                return None
            vals = {t.name: numpy_helper.to_array(t).copy() for t in m2.graph.initializer if "/poly_a" in t.name}
            for nme in names:
                k = int(nme[-1])
                src = vals[nme[:-1] + str(3 - k)]
                set_init(m2, nme, lambda _a, s=src: s)
            return m2

        def no_std(m2):
            return m2 if set_init(m2, "model/input/std", np.ones_like) else None

        def wide_clip(m2):
            ok = set_init(m2, "model/input/clip_lo", lambda a: a * 2) and \
                 set_init(m2, "model/input/clip_hi", lambda a: a * 2)
            z = (x - ck["model/input/mean"][()]) / ck["model/input/std"][()] if ok else None
            # only a break if some input was clipped
            return m2 if ok and (np.abs(z) > float(ck["model/input"].attrs["clip_z"])).any() else None

        def erf_as_tanh(m2):  # a GELU of the wrong formula
            hit = [nd for nd in m2.graph.node if nd.op_type == "Erf"]
            for nd in hit:
                nd.op_type = "Tanh"
            return m2 if hit else None

        def no_bias1(m2):
            return m2 if set_init(m2, "model/layer_1/bias", np.zeros_like) else None

        def softmax_axis0(m2):
            for nd in m2.graph.node:
                if nd.op_type == "Softmax":
                    nd.attribute[0].i = 0
                    return m2
            return None
        tried = 0
        for name, fn in [("poly coefficients reversed", reverse_poly), ("std replaced by ones", no_std),
                         ("clip bounds doubled", wide_clip), ("softmax over the batch", softmax_axis0),
                         ("erf replaced by tanh in GELU", erf_as_tanh), ("layer 1 bias dropped", no_bias1)]:
            m2 = mutated(fn)
            if m2 is None:
                continue
            tried += 1
            check(not compare(run_graph(m2, x), f, head, False), "mutant '%s' is caught by the comparison" % name)
        check(tried > 0, "%d mutants tried" % tried)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
