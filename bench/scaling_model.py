#!/usr/bin/python3
"""Scaling model of chainz's data-parallel step for 1-256 nodes (issue 15), checked
against measured step times. Plain Python 3 (no numpy needed).

    /usr/bin/python3 bench/scaling_model.py [--measure FILE] [--netns FILE] [--allreduce FILE]
        [--bpp-exact 4] [--rate-op-exact 8e9] [--node-speedup 1] [--micro-batch 32]
        [--batches 128,4096] [--weak-batches 32,128] [--nodes 1,2,3,16,...] [--no-ms]

--measure: output of bench/scaling_measure.sh (RESULT lines: 1-3 ranks on this machine);
--netns: output of bench/netns_3hosts.sh (RESULT3H and ALLREDUCE lines: 3 hosts over TCP).
--allreduce: output of allreduce_bw on ranks of this machine (shared memory), repeatable.
Without options the files measured on 2026-11-30 in bench/scaling-2026-11-30/ are used.

Model of one optimizer step on p ranks, one rank per node, global batch B, chunk size M
(--micro-batch, fixed whatever p), C = ceil(B / M) chunks per step:

  T(p, B) = t_chunk * ceil(C / p)  +  t_net(p)  (+ t_fixed, not separated: in t_chunk)
  t_chunk = T_measured(1 rank, B = 128) / 4       (per mode and reduce: exact adds the local
                                                   fixed-point conversion of every chunk)
  t_net(p) = 2 (p-1)/p * S / bw  +  2 (p-1) * lat  +  (p-1)/p * S / rate_op
  S = parameters * bytes per parameter (exact: 4 since the fixed tree of float sums, a
      reduce-scatter and an allgather of floats as a ring allreduce moves; 16 before, with
      the 128-bit user-defined MPI_Op; float: 4); rate_op: the reduction's local combine
      rate (float additions in both modes now). Not modelled: the exact mode's optimizer
      split over the owners (it divides the optimizer's work by p: conservative).

A rank computes whole chunks, so once p > C extra ranks do not cut the compute term (the
rank with the most chunks sets the step time; chainz rotates the shares so none idles
for a whole run, but a step still waits for ceil(C/p) chunks).
Efficiency: strong (fixed B): E = T(1, B) / (p T(p, B)); weak (fixed per-rank batch b,
B = p b): E = T(1, b) / T(p, p b). --node-speedup S divides the compute term by S (a
cluster node with more threads or faster kernels than this machine's one rank x one
thread): the network term then weighs S times more.
"""
import argparse
import math
import os
import sys

# parameters of the Yelp-like model: d = 300, 512,512, ordinal head with 5 classes
# (4 cumulative logits); poly adds 4 coefficients per hidden neuron
D, WIDTHS, HEAD_OUT = 300, (512, 512), 4


def n_params(poly):
    n, prev = 0, D
    for w in WIDTHS:
        n += prev * w + w + (4 * w if poly else 0)
        prev = w
    return n + prev * HEAD_OUT + HEAD_OUT


PARAMS = {"exact": n_params(True), "probe": n_params(True), "relu": n_params(False)}

# Measured on this machine, 2026-11-30 (bench/scaling_measure.sh, 3 reps, min over reps),
# ms per step at B = 128: {(mode, reduce): {ranks: ms}}. Overwritten by --measure.
MEASURED = {}
# 3 hosts over TCP in network namespaces (bench/netns_3hosts.sh): {(mode, reduce): (ms3, ms1)}
MEASURED_3H = {}
# bare allreduces (bench/allreduce_bw.c): {(where, ranks, kind, bytes): us}
ALLREDUCE = {}
CONF = {"bpp": {"exact": 4.0, "float": 4.0}, "rate": {"exact": 8.0e9, "float": 8.0e9}}

NETWORKS = {
    # name: (bandwidth in bytes/s, latency in s)
    "IB-100G": (100e9 / 8, 2e-6),
    "25GbE": (25e9 / 8, 20e-6),
}


def parse_measure(path):
    rows = {}
    for line in open(path):
        f = line.split()
        if len(f) >= 6 and f[0] == "RESULT":
            rows.setdefault((f[1], f[2]), {}).setdefault(int(f[3]), []).append(float(f[5]))
    return rows


def parse_netns(path, where=None):
    """RESULT3H lines, and ALLREDUCE lines of allreduce_bw runs (after a 'ranks P' line);
    the setting is named by a '3 hosts over TCP' / '3 ranks in host 1' line, else `where`."""
    r3, ar, p = {}, {}, None
    for line in open(path):
        if "3 hosts over TCP" in line:
            where = "3hosts"
        elif "3 ranks in host 1" in line:
            where = "1host-tcp"
        f = line.split()
        if f[:1] == ["ranks"]:
            p = int(f[1].rstrip(","))
        elif len(f) >= 5 and f[0] == "RESULT3H":
            r3.setdefault((f[1], f[2]), []).append((float(f[3]), float(f[4])))
        elif len(f) == 5 and f[0] == "ALLREDUCE" and where and p:
            ar[(where, p, f[1], int(f[3]))] = float(f[4])
    return r3, ar


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def cell(eff, t, no_ms):
    return f" {eff:6.1f}" if no_ms else f" {eff:6.1f}[{t * 1000:6.1f}]"


def t_net(p, nbytes, bw, lat, rate_op):
    if p == 1:
        return 0.0
    return 2 * (p - 1) / p * nbytes / bw + 2 * (p - 1) * lat + (p - 1) / p * nbytes / rate_op


def step_time(p, batch, t_chunk, nbytes, net, rate_op, micro):
    chunks = math.ceil(batch / micro)
    bw, lat = net
    return t_chunk * math.ceil(chunks / p) + t_net(p, nbytes, bw, lat, rate_op)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--measure")
    ap.add_argument("--netns")
    ap.add_argument("--allreduce", action="append",
                    help="output of allreduce_bw run with ranks on this machine (repeatable)")
    ap.add_argument("--bpp-exact", type=float, default=4.0,
                    help="bytes per parameter of the exact reduction (4: the fixed tree of floats, a "
                         "reduce-scatter and an allgather; 16: the 128-bit and two-limb versions before)")
    ap.add_argument("--bpp-float", type=float, default=4.0)
    ap.add_argument("--rate-op-exact", type=float, default=8.0e9,
                    help="bytes/s the exact reduction combines on one core (float additions since the "
                         "fixed tree; 0.5e9 fitted for the 128-bit user op before)")
    ap.add_argument("--rate-op-float", type=float, default=8.0e9,
                    help="bytes/s MPI_SUM on floats combines on one core")
    ap.add_argument("--node-speedup", type=float, default=1.0,
                    help="cluster node compute speed / this machine's 1 rank x 1 thread")
    ap.add_argument("--micro-batch", type=int, default=32)
    ap.add_argument("--nodes", default="1,2,3,16,32,64,128,256", help="node counts to predict")
    ap.add_argument("--no-ms", action="store_true", help="efficiencies only, no step times")
    ap.add_argument("--batches", default="128,4096", help="global batches (strong scaling)")
    ap.add_argument("--weak-batches", default="32,128", help="per-rank batches (weak scaling)")
    ap.add_argument("--stat", choices=["min", "median"], default="min",
                    help="statistic of the repeated measurements")
    a = ap.parse_args()
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scaling-2026-11-30")
    if not (a.measure or a.netns or a.allreduce) and os.path.isdir(here):
        a.measure = os.path.join(here, "measure.out")
        a.netns = os.path.join(here, "netns.out")
        a.allreduce = [os.path.join(here, f) for f in ("allreduce-local2.out", "allreduce-local3.out")]
        a.allreduce = [f for f in a.allreduce if os.path.exists(f)]
        if not os.path.exists(a.netns):
            a.netns = None

    global MEASURED, MEASURED_3H, ALLREDUCE
    stat = min if a.stat == "min" else median
    if a.measure:
        MEASURED = {k: {p: stat(v) for p, v in d.items()} for k, d in parse_measure(a.measure).items()}
    for path in a.allreduce or []:
        ALLREDUCE.update(parse_netns(path, "local")[1])
    if a.netns:
        r3, ar = parse_netns(a.netns)
        ALLREDUCE.update(ar)
        MEASURED_3H = {k: (stat([x[0] for x in v]), stat([x[1] for x in v])) for k, v in r3.items()}
    if not MEASURED:
        sys.exit("no measurements: pass --measure (output of bench/scaling_measure.sh)")

    bpp = CONF["bpp"] = {"exact": a.bpp_exact, "float": a.bpp_float}
    rate = CONF["rate"] = {"exact": a.rate_op_exact, "float": a.rate_op_float}
    M = a.micro_batch
    print(f"parameters: poly {PARAMS['exact']}, relu {PARAMS['relu']}; "
          f"bytes/parameter exact {a.bpp_exact:g}, float {a.bpp_float:g}; micro-batch {M}")
    print(f"allreduce payload: exact {PARAMS['exact'] * a.bpp_exact / 1e6:.2f} MB, "
          f"float {PARAMS['exact'] * a.bpp_float / 1e6:.2f} MB per step")

    # per-chunk compute from the 1-rank step at B = 128 (4 chunks)
    tchunk = {}
    for (mode, red), d in sorted(MEASURED.items()):
        if 1 in d:
            tchunk[(mode, red)] = d[1] / 1000.0 / math.ceil(128 / M) / a.node_speedup

    # ---- check against measurements -------------------------------------------------
    print("\n== check: predicted vs measured ms per step, B = 128 (4 chunks). Compute term:"
          " the 1-rank step's chunk time x the chunks of the busiest rank, on this 2-core"
          " machine at least 4 chunks / 2 cores; network term: the bare allreduce of the"
          " gradient timed in the same setting where available, else the ring formula with"
          " a nominal 5 GB/s, 1 us (shared memory)")
    print(f"{'mode':6s} {'reduce':6s} {'ranks':>10s} {'measured':>9s} {'predicted':>9s} {'error':>7s}  network term")
    for (mode, red), d in sorted(MEASURED.items()):
        for p in sorted(d):
            if p == 1:
                continue
            comp = tchunk[(mode, red)] * a.node_speedup * max(math.ceil(4 / p), 4 / 2)
            net, src = net_term("local", red, p, (5e9, 1e-6))
            pred = (comp + net) * 1000
            m = d[p]
            note = ", 3 ranks on 2 cores" if p > 2 else ""
            print(f"{mode:6s} {red:6s} {p:>4d} local {m:9.1f} {pred:9.1f} {100 * (pred - m) / m:+6.0f}%"
                  f"  {net * 1000:.1f} ms ({src}{note})")
        if (mode, red) in MEASURED_3H:
            m3, m1 = MEASURED_3H[(mode, red)]
            comp = m1 / 1000 / 4 * 2
            net, src = net_term("3hosts", red, 3, (10e9 / 8, 30e-6))
            pred = (comp + net) * 1000
            comm = m3 - m1 / 2
            print(f"{mode:6s} {red:6s}    3 hosts {m3:9.1f} {pred:9.1f} {100 * (pred - m3) / m3:+6.0f}%"
                  f"  {net * 1000:.1f} ms ({src}); measured comm = 3-host step - 1-rank step x 2/4"
                  f" = {m3:.1f} - {m1:.1f}/2 = {comm:.1f} ms")
    for where in ("local", "1host-tcp", "3hosts"):
        for p in (2, 3):
            f = fit_ring(where, p)
            if f:
                te, tf = bare(where, "exact", p), bare(where, "float", p)
                # the exact allreduce moves 4x the float bytes; what it takes beyond 4x
                # the float time is its user op's combine: (p-1)/p S_exact bytes
                extra = te - tf * CONF["bpp"]["exact"] / CONF["bpp"]["float"]
                op = ((p - 1) / p * PARAMS["exact"] * CONF["bpp"]["exact"] / extra) if extra > 0 else float("inf")
                print(f"ring fit of the bare allreduces, {where}, {p} ranks: "
                      f"{f[0] * 8 / 1e9:.2f} Gb/s, {f[1] * 1e6:.1f} us per hop; "
                      f"exact/float time {te / tf:.1f}x, exact op combine rate {op / 1e9:.2f} GB/s")

    # ---- predictions --------------------------------------------------------------
    P = [int(x) for x in a.nodes.split(",")]
    cases = [("exact", "exact"), ("exact", "float"), ("probe", "exact"), ("probe", "float"),
             ("relu", "exact"), ("relu", "float")]
    for name, net in NETWORKS.items():
        print(f"\n== predictions, {name} (bandwidth {net[0] * 8 / 1e9:g} Gb/s, latency "
              f"{net[1] * 1e6:g} us), node = this machine's rank x {a.node_speedup:g}")
        for B in [int(x) for x in a.batches.split(",")]:
            C = math.ceil(B / M)
            print(f"-- strong scaling, global batch {B} ({C} chunks; more than {C} ranks cannot "
                  f"cut the compute): efficiency % [ms per step]")
            print(f"{'mode':6s} {'reduce':6s}" + "".join(f" {'p=' + str(p):>{7 if a.no_ms else 14}s}" for p in P))
            for mode, red in cases:
                if (mode, red) not in tchunk:
                    continue
                nb = PARAMS[mode] * bpp[red]
                t1 = step_time(1, B, tchunk[(mode, red)], nb, net, rate[red], M)
                row = ""
                for p in P:
                    t = step_time(p, B, tchunk[(mode, red)], nb, net, rate[red], M)
                    row += cell(100 * t1 / (p * t), t, a.no_ms)
                print(f"{mode:6s} {red:6s}" + row)
        for b in [int(x) for x in a.weak_batches.split(",")]:
            print(f"-- weak scaling, {b} samples per rank (global batch {b} p): efficiency % "
                  f"[ms per step]")
            print(f"{'mode':6s} {'reduce':6s}" + "".join(f" {'p=' + str(p):>{7 if a.no_ms else 14}s}" for p in P))
            for mode, red in cases:
                if (mode, red) not in tchunk:
                    continue
                nb = PARAMS[mode] * bpp[red]
                t1 = step_time(1, b, tchunk[(mode, red)], nb, net, rate[red], M)
                row = ""
                for p in P:
                    t = step_time(p, b * p, tchunk[(mode, red)], nb, net, rate[red], M)
                    row += cell(100 * t1 / t, t, a.no_ms)
                print(f"{mode:6s} {red:6s}" + row)

def bare(where, red, p):
    """Seconds of a bare allreduce of the model's gradient (exact or float) on p ranks
    in setting `where`, as bench/allreduce_bw timed it, or None."""
    full = [v for (w, q, k, b), v in ALLREDUCE.items()
            if w == where and q == p and k == red and b >= 4 * 100000]
    return max(full) * 1e-6 if full else None


def fit_ring(where, p):
    """(bandwidth, latency) of the ring formula fitted to the bare allreduces of one
    setting: latency from the 4-byte float allreduce (= 2 (p-1) lat), bandwidth from the
    full-size float one (the op term of float is small)."""
    small = ALLREDUCE.get((where, p, "float", 4))
    big = [(b, v) for (w, q, k, b), v in ALLREDUCE.items() if w == where and q == p and k == "float" and b > 4]
    if small is None or not big:
        return None
    b, v = max(big)
    lat = small * 1e-6 / (2 * (p - 1))
    rest = v * 1e-6 - 2 * (p - 1) * lat - (p - 1) / p * b / CONF["rate"]["float"]
    return (2 * (p - 1) / p * b / max(rest, 1e-9), lat)


def net_term(where, red, p, default_net):
    """(seconds, source) of the network term: the measured bare allreduce if any, else the
    ring formula with default_net."""
    if p == 1:
        return 0.0, "none"
    t = bare(where, red, p)
    if t is not None:
        return t, "bare allreduce measured"
    nb = PARAMS["exact"] * CONF["bpp"][red]
    return t_net(p, nb, default_net[0], default_net[1], CONF["rate"][red]), "ring formula, nominal"


if __name__ == "__main__":
    main()
