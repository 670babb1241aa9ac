#!/usr/bin/python3
"""torch_infer.py: PyTorch eager inference on a chainz checkpoint's weights (read with h5py),
timed as bench/infer_bench.c times libchainz_infer: single-sample latency (median of single
calls, B = 1) and throughput (B = 256), 1 thread, float32, torch.no_grad().

The forward is the one a PyTorch user would write for a CR network: standardize and clip,
z = h W^T + b (torch.nn.functional.linear), h = a0 + a1 z + a2 z^2 + a3 z^3, the output
layer, then softmax (classify) or sigmoids (ordinal) and the predicted class.

  /usr/bin/python3 bench/torch_infer.py CKPT [--seconds S] [--labels CHAINZ_LABELS.txt]

--labels compares the predicted classes of the first 256 rows with chainz's (exit 1 if any
differs). Prints "torch latency_us 0 VALUE" and "torch throughput_rows_s 0 VALUE".
"""
import argparse
import math
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn.functional as Fn


def load(path):
    with h5py.File(path, "r") as f:
        mdl = f["model"]
        hidden = []
        l = 1
        while "layer_%d" % l in mdl:
            g = mdl["layer_%d" % l]
            poly = torch.from_numpy(g["poly"][:]) if "poly" in g else None
            hidden.append((torch.from_numpy(g["weight"][:]), torch.from_numpy(g["bias"][:]), poly))
            l += 1
        out = (torch.from_numpy(mdl["output/weight"][:]), torch.from_numpy(mdl["output/bias"][:]))
        mean = std = None
        clip = 0.0
        if "input" in mdl:
            mean = torch.from_numpy(mdl["input/mean"][:])
            std = torch.from_numpy(mdl["input/std"][:])
            clip = float(mdl["input"].attrs.get("clip_z", 0.0))
        head = f.attrs["head"]
        head = head.decode() if isinstance(head, bytes) else str(head)
    return hidden, out, mean, std, clip, head


def forward(x, hidden, out, mean, std, clip, head):
    if mean is not None:
        x = (x - mean) / std
        if clip > 0:
            x = x.clamp(-clip, clip)
    h = x
    for w, b, p in hidden:
        z = Fn.linear(h, w, b)
        h = p[:, 0] + z * (p[:, 1] + z * (p[:, 2] + z * p[:, 3])) if p is not None else z
    f = Fn.linear(h, *out)
    if head == "classify":
        prob = torch.softmax(f, dim=1)
        return prob.argmax(dim=1), prob
    if head == "ordinal":
        s = torch.sigmoid(f)
        return (f > 0).sum(dim=1), s
    return f[:, 0].round(), f


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt")
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--labels")
    a = ap.parse_args()
    torch.set_num_threads(1)
    hidden, out, mean, std, clip, head = load(a.ckpt)
    d = hidden[0][0].shape[1]
    BT = 256
    i = np.arange(BT * d, dtype=np.float64)
    x = torch.from_numpy((3 * np.sin(i * 0.7 + 0.3)).astype(np.float32).reshape(BT, d))
    with torch.no_grad():
        if a.labels:
            want = np.loadtxt(a.labels, dtype=np.int64)
            got = forward(x, hidden, out, mean, std, clip, head)[0].numpy()
            bad = int((got != want).sum())
            print("torch labels_differ 0 %d" % bad)
            if bad:
                sys.exit(1)
        rows = [x[k : k + 1] for k in range(BT)]
        for k in range(50):
            forward(rows[k % BT], hidden, out, mean, std, clip, head)
        lat = []
        t_end = time.perf_counter() + a.seconds / 2
        n = 0
        while time.perf_counter() < t_end:
            r = rows[n % BT]
            t0 = time.perf_counter()
            forward(r, hidden, out, mean, std, clip, head)
            lat.append(time.perf_counter() - t0)
            n += 1
        lat.sort()
        print("torch latency_us 0 %.3f" % (1e6 * lat[len(lat) // 2]))
        forward(x, hidden, out, mean, std, clip, head)
        calls = 0
        t0 = time.perf_counter()
        t_end = t0 + a.seconds / 2
        while True:
            forward(x, hidden, out, mean, std, clip, head)
            calls += 1
            if time.perf_counter() >= t_end:
                break
        print("torch throughput_rows_s 0 %.1f" % (calls * BT / (time.perf_counter() - t0)))


if __name__ == "__main__":
    main()
