#!/usr/bin/python3
"""torch_step.py: one CR-network training step in PyTorch, written the ways a PyTorch user
would write it, timed for comparison with chainz's build/bench_step (issue 15).

A step = forward + DREG penalty + softmax cross-entropy + backward, float32, CPU.
CR network (docs/DESIGN.md section 1): z_l = W_l h_{l-1} + b_l, h_l = a0 + a1 z + a2 z^2 + a3 z^3
per neuron, logits = W_o h_H + b_o; DREG = lambda * (1/B) sum_b sum_l ||S_l||_F^2 with
S_l = dh_l/dx.

Forms (one function each):
  plain      the MLP step without DREG (lambda 0), for reference;
  dual       explicit batched dual stream: S_1 = D_1 W_1 as a [B, n_1, d] tensor,
             S_l = D_l (W_l S_{l-1}) by torch.matmul, autograd backward;
  gram       the same stream seeded with F = R^T (n_1 x n_1) from torch.linalg.qr(W_1^T):
             Q is DETACHED and F is formed as W_1 @ Q (= R^T in value), so autograd adds
             exactly DESIGN's first-layer term dW_1 += (sum_b V'_1) Q^T and never
             differentiates through the QR; exact (checked by --check); only run when n_1 < d;
  probe      K Rademacher directions per sample scaled by 1/sqrt(K): stream width K,
             an unbiased estimate of the penalty;
  vmap       functorch.vmap(functorch.jacfwd(hidden layers)) per sample (torch 1.13 ships
             functorch; torch.func arrived in 2.0), penalty, autograd backward.

Timing: median (and min) of --reps steps after 1 warm-up, per (config, form, K). A form
whose warm-up step is not done within --cap seconds (interrupted by SIGALRM) is reported as "too_slow" instead of timed.

  /usr/bin/python3 bench/torch_step.py [--config yelp|fmnist|pima|all] [--forms a,b,..]
        [--probes 8,16,32] [--threads T] [--reps N] [--cap SECONDS] [--json] [--check]
"""
import argparse
import json
import math
import signal
import sys
import time

import torch
import torch.nn.functional as Fn

CONFIGS = {
    "yelp": dict(d=300, widths=[512, 512], classes=5, B=128),
    "fmnist": dict(d=784, widths=[256, 256], classes=10, B=128),
    "pima": dict(d=8, widths=[64, 64], classes=2, B=64),
}
LAMBDA = 1e-3  # any lambda > 0 costs the same
ALL_FORMS = ["plain", "dual", "gram", "probe", "vmap"]

try:
    import functorch  # torch 1.13

    HAVE_FUNCTORCH = True
except Exception:  # pragma: no cover
    HAVE_FUNCTORCH = False


def make_params(d, widths, classes, dtype=torch.float32, seed=1):
    g = torch.Generator().manual_seed(seed)
    p = {"W": [], "b": [], "a": []}
    n_prev = d
    for n in widths:
        p["W"].append(torch.randn(n, n_prev, generator=g, dtype=dtype) / math.sqrt(n_prev))
        p["b"].append(0.1 * torch.randn(n, generator=g, dtype=dtype))
        a = torch.zeros(n, 4, dtype=dtype)
        a[:, 1] = 1.0
        a[:, 2] = 0.1 * torch.randn(n, generator=g, dtype=dtype)
        a[:, 3] = 0.05 * torch.randn(n, generator=g, dtype=dtype)
        p["a"].append(a)
        n_prev = n
    p["Wo"] = torch.randn(classes, n_prev, generator=g, dtype=dtype) / math.sqrt(n_prev)
    p["bo"] = torch.zeros(classes, dtype=dtype)
    for t in all_tensors(p):
        t.requires_grad_(True)
    return p


def all_tensors(p):
    return p["W"] + p["b"] + p["a"] + [p["Wo"], p["bo"]]


def zero_grads(p):
    for t in all_tensors(p):
        t.grad = None


def poly(a, z):
    return a[:, 0] + z * (a[:, 1] + z * (a[:, 2] + z * a[:, 3]))


def dpoly(a, z):
    return a[:, 1] + z * (2 * a[:, 2] + 3 * z * a[:, 3])


def forward_values(p, x):
    """Value stream; returns logits and the per-layer phi'(z_l) [B, n_l]."""
    h, Ds = x, []
    for W, b, a in zip(p["W"], p["b"], p["a"]):
        z = h @ W.t() + b
        Ds.append(dpoly(a, z))
        h = poly(a, z)
    return h @ p["Wo"].t() + p["bo"], Ds


def stream_penalty(p, Ds, seed_mat):
    """Jacobian stream from S_1 = D_1 seed (seed_mat: [n_1, w] shared, or [B, n_1, w] per
    sample); returns (1/B) sum_b sum_l ||S_l||_F^2."""
    B = Ds[0].shape[0]
    S = Ds[0].unsqueeze(2) * seed_mat  # [B, n_1, w]
    pen = S.pow(2).sum()
    for W, D in zip(p["W"][1:], Ds[1:]):
        S = D.unsqueeze(2) * torch.matmul(W, S)  # [n_l, n_{l-1}] @ [B, n_{l-1}, w]
        pen = pen + S.pow(2).sum()
    return pen / B


def step_plain(p, x, y, lam, K=None):
    logits, _ = forward_values(p, x)
    loss = Fn.cross_entropy(logits, y)
    loss.backward()
    return loss.detach(), torch.zeros(())


def pen_dual(p, x):
    _, Ds = forward_values(p, x)
    return stream_penalty(p, Ds, p["W"][0])


def step_dual(p, x, y, lam, K=None):
    logits, Ds = forward_values(p, x)
    pen = stream_penalty(p, Ds, p["W"][0])
    loss = Fn.cross_entropy(logits, y) + lam * pen
    loss.backward()
    return loss.detach(), pen.detach()


def gram_seed(W1):
    """F = R^T with W_1^T = Q R; formed as W_1 Q with Q detached (W_1 Q = R^T Q^T Q = R^T),
    so the backward gives dW_1 = dF Q^T (DESIGN's first-layer term) without a QR backward."""
    with torch.no_grad():
        Q, _ = torch.linalg.qr(W1.t())  # [d, n_1], reduced
    return W1 @ Q  # [n_1, n_1]


def gram_seed_qr_autograd(W1):
    """Alternative: differentiate through torch.linalg.qr (used by --check only)."""
    Q, R = torch.linalg.qr(W1.t())
    return R.t()


def pen_gram(p, x, seed_fn=gram_seed):
    _, Ds = forward_values(p, x)
    return stream_penalty(p, Ds, seed_fn(p["W"][0]))


def step_gram(p, x, y, lam, K=None):
    logits, Ds = forward_values(p, x)
    pen = stream_penalty(p, Ds, gram_seed(p["W"][0]))
    loss = Fn.cross_entropy(logits, y) + lam * pen
    loss.backward()
    return loss.detach(), pen.detach()


def rademacher(B, d, K, dtype, gen=None):
    v = torch.randint(0, 2, (B, d, K), generator=gen, dtype=torch.int8).to(dtype)
    return (2 * v - 1) / math.sqrt(K)


def pen_probe(p, x, K, gen=None):
    _, Ds = forward_values(p, x)
    V = rademacher(x.shape[0], x.shape[1], K, x.dtype, gen)
    return stream_penalty(p, Ds, torch.matmul(p["W"][0], V))  # W_1 V: [B, n_1, K]


def step_probe(p, x, y, lam, K):
    logits, Ds = forward_values(p, x)
    V = rademacher(x.shape[0], x.shape[1], K, x.dtype)
    pen = stream_penalty(p, Ds, torch.matmul(p["W"][0], V))
    loss = Fn.cross_entropy(logits, y) + lam * pen
    loss.backward()
    return loss.detach(), pen.detach()


def hidden_concat(p):
    """x [d] -> all hidden outputs concatenated [sum n_l] (one sample, for jacfwd)."""

    def f(x):
        h, outs = x, []
        for W, b, a in zip(p["W"], p["b"], p["a"]):
            h = poly(a, W @ h + b)
            outs.append(h)
        return torch.cat(outs)

    return f


def pen_vmap(p, x):
    J = functorch.vmap(functorch.jacfwd(hidden_concat(p)))(x)  # [B, sum n_l, d]
    return J.pow(2).sum() / x.shape[0]


def step_vmap(p, x, y, lam, K=None):
    logits, _ = forward_values(p, x)
    pen = pen_vmap(p, x)
    loss = Fn.cross_entropy(logits, y) + lam * pen
    loss.backward()
    return loss.detach(), pen.detach()


STEPS = {"plain": step_plain, "dual": step_dual, "gram": step_gram, "probe": step_probe,
         "vmap": step_vmap}


def make_batch(cfg, dtype=torch.float32, seed=2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(cfg["B"], cfg["d"], generator=g, dtype=dtype)
    y = torch.randint(0, cfg["classes"], (cfg["B"],), generator=g)
    return x, y


class _CapExceeded(Exception):
    pass


def _on_alarm(signum, frame):
    raise _CapExceeded()


def time_form(name, cfg, form, K, reps, cap):
    p = make_params(cfg["d"], cfg["widths"], cfg["classes"])
    x, y = make_batch(cfg)
    rec = {"config": name, "form": form, "K": K, "d": cfg["d"], "widths": cfg["widths"],
           "B": cfg["B"], "threads": torch.get_num_threads(), "reps": 0, "statistic": "median"}
    if form == "gram" and cfg["widths"][0] >= cfg["d"]:
        rec.update(status="skipped", note="n_1 >= d: Gram mode gives no narrower stream")
        return rec
    if form == "vmap" and not HAVE_FUNCTORCH:
        rec.update(status="unavailable", note="functorch not importable")
        return rec
    fn = STEPS[form]
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, cap)  # interrupts the warm-up between torch ops
    t0 = time.perf_counter()
    try:
        zero_grads(p)
        fn(p, x, y, LAMBDA if form != "plain" else 0.0, K)
        warm = time.perf_counter() - t0
    except _CapExceeded:
        rec.update(status="too_slow",
                   note=f"warm-up step stopped after {time.perf_counter() - t0:.1f} s (cap {cap:g} s)")
        return rec
    except Exception as e:  # report, do not fail the whole run
        rec.update(status="error", note=f"{type(e).__name__}: {e}"[:200])
        return rec
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    rec["warmup_ms"] = round(1e3 * warm, 3)
    if warm > cap:
        rec.update(status="too_slow", note=f"warm-up {warm:.1f} s > cap {cap:g} s")
        return rec
    ts, spent = [], 0.0
    for _ in range(reps):
        zero_grads(p)
        t0 = time.perf_counter()
        fn(p, x, y, LAMBDA if form != "plain" else 0.0, K)
        dt = time.perf_counter() - t0
        ts.append(dt)
        spent += dt
        if spent > cap * max(reps, 1):
            break
    ts.sort()
    n = len(ts)
    med = ts[n // 2] if n % 2 else 0.5 * (ts[n // 2 - 1] + ts[n // 2])
    rec.update(status="ok", reps=n, median_ms=round(1e3 * med, 3), min_ms=round(1e3 * ts[0], 3))
    return rec


def check():
    """dual == gram == mean of probe draws == vmap on the penalty; gram's (both variants)
    gradients == dual's. Small shape with n_1 < d so that Gram mode is meaningful."""
    ok = True
    small = dict(d=20, widths=[8, 12], classes=3, B=16)

    def report(what, good, detail):
        nonlocal ok
        ok = ok and good
        print(f"check {'ok  ' if good else 'FAIL'} {what}: {detail}")

    for dtype, rtol in ((torch.float64, 1e-12), (torch.float32, 2e-5)):
        tn = str(dtype).replace("torch.", "")
        p = make_params(small["d"], small["widths"], small["classes"], dtype=dtype, seed=5)
        x, y = make_batch(small, dtype=dtype, seed=6)
        with torch.no_grad():
            pd = pen_dual(p, x).item()
            pg = pen_gram(p, x).item()
            pq = pen_gram(p, x, gram_seed_qr_autograd).item()
        report(f"{tn} penalty gram vs dual", abs(pg - pd) <= rtol * abs(pd) * 10,
               f"dual {pd:.10g} gram {pg:.10g} rel {abs(pg - pd) / abs(pd):.2e}")
        report(f"{tn} penalty gram(QR autograd) vs dual", abs(pq - pd) <= rtol * abs(pd) * 10,
               f"rel {abs(pq - pd) / abs(pd):.2e}")
        if HAVE_FUNCTORCH:
            pv = pen_vmap(p, x).item()
            report(f"{tn} penalty vmap(jacfwd) vs dual", abs(pv - pd) <= rtol * abs(pd) * 10,
                   f"vmap {pv:.10g} rel {abs(pv - pd) / abs(pd):.2e}")
        # gradients: full loss (CE + lambda * penalty), lambda = 1 so the penalty dominates
        grads = {}
        for nm, pen_fn in (("dual", pen_dual), ("gram", pen_gram),
                           ("gram_qr", lambda p, x: pen_gram(p, x, gram_seed_qr_autograd))):
            zero_grads(p)
            logits, _ = forward_values(p, x)
            (Fn.cross_entropy(logits, y) + 1.0 * pen_fn(p, x)).backward()
            grads[nm] = [t.grad.clone() for t in all_tensors(p)]
        for nm in ("gram", "gram_qr"):
            worst = max(((g1 - g0).abs().max() / g0.abs().max().clamp_min(1e-30)).item()
                        for g0, g1 in zip(grads["dual"], grads[nm]))
            tol = 1e-10 if dtype == torch.float64 else 1e-4
            report(f"{tn} gradients {nm} vs dual (every block, max |diff| / max |g|)",
                   worst <= tol, f"{worst:.2e} (tol {tol:g})")
    # probe: unbiased; mean of many draws within 4 standard errors (and 1 % of exact)
    p = make_params(small["d"], small["widths"], small["classes"], dtype=torch.float64, seed=5)
    x, _ = make_batch(small, dtype=torch.float64, seed=6)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        exact = pen_dual(p, x).item()
        for K in (8, 32):
            draws = torch.tensor([pen_probe(p, x, K, gen).item() for _ in range(20000)])
            m, se = draws.mean().item(), draws.std().item() / math.sqrt(len(draws))
            good = abs(m - exact) <= 4 * se and abs(m - exact) <= 1e-2 * exact
            report(f"probe K={K} mean of 20000 draws vs exact",
                   good, f"exact {exact:.6g} mean {m:.6g} +- {se:.2g} (rel {abs(m - exact) / exact:.1e})")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="all", choices=list(CONFIGS) + ["all"])
    ap.add_argument("--forms", default=",".join(ALL_FORMS))
    ap.add_argument("--probes", default="8,16,32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--cap", type=float, default=60.0,
                    help="seconds a form's warm-up may take before it is reported too_slow")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    if a.check:
        good = check()
        print("torch_step --check:", "all agree" if good else "MISMATCH")
        sys.exit(0 if good else 1)
    forms = [f for f in a.forms.split(",") if f]
    for f in forms:
        if f not in STEPS:
            ap.error(f"unknown form {f}")
    Ks = [int(k) for k in a.probes.split(",") if k]
    names = list(CONFIGS) if a.config == "all" else [a.config]
    if not a.json:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), float32, "
              f"{a.reps} reps after 1 warm-up, medians")
    for name in names:
        cfg = CONFIGS[name]
        for form in forms:
            for K in (Ks if form == "probe" else [None]):
                r = time_form(name, cfg, form, K, a.reps, a.cap)
                if a.json:
                    print(json.dumps(r), flush=True)
                else:
                    lab = f"{form}{'' if K is None else ' K=%d' % K}"
                    if r["status"] == "ok":
                        print(f"{name:7s} {lab:10s} {r['median_ms']:10.2f} ms  (min {r['min_ms']:.2f})",
                              flush=True)
                    else:
                        print(f"{name:7s} {lab:10s} {r['status']}: {r.get('note', '')}", flush=True)


if __name__ == "__main__":
    main()
