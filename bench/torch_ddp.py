#!/usr/bin/python3
"""torch_ddp.py: end-to-end training samples/s of the yelp-shape model under PyTorch
DistributedDataParallel (gloo, CPU, float32), the reference for `chainz train` (issue 15).

Models (d=300, hidden 512,512, 5 classes, global batch 128 split over the processes):
  cr    CR network (per-neuron cubic activations) with DREG lambda=0.01 in the explicit
        dual-stream form of bench/torch_step.py (S_1 = D_1 W_1 as [b, n_1, d], ...);
  relu  ReLU MLP, lambda 0.
AdamW lr 1e-3, synthetic data of the same shape (a fresh random batch slice per step,
drawn before timing). Each process runs torch.set_num_threads(1) (chainz runs one rank
per core with one BLIS thread). Timed: --steps steps after 2 warm-up steps, between two
barriers; samples/s = steps * 128 / seconds.

  /usr/bin/python3 bench/torch_ddp.py [--model cr|relu] [--procs 1,2] [--steps N] [--json]
"""
import argparse
import json
import os
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as Fn
from torch.nn.parallel import DistributedDataParallel as DDP

D, WIDTHS, CLASSES, GLOBAL_B, LAMBDA = 300, [512, 512], 5, 128, 0.01


class CR(nn.Module):
    """CR network; forward returns (logits, DREG penalty (1/b) sum_b sum_l ||S_l||_F^2)."""

    def __init__(self, d, widths, classes, dreg):
        super().__init__()
        self.lin = nn.ModuleList()
        self.a = nn.ParameterList()
        n_prev = d
        for n in widths:
            self.lin.append(nn.Linear(n_prev, n))
            a = torch.zeros(n, 4)
            a[:, 1] = 1.0
            a[:, 2] = 0.1 * torch.randn(n)
            a[:, 3] = 0.05 * torch.randn(n)
            self.a.append(nn.Parameter(a))
            n_prev = n
        self.out = nn.Linear(n_prev, classes)
        self.dreg = dreg

    def forward(self, x):
        h, S, pen = x, None, x.new_zeros(())
        for lin, a in zip(self.lin, self.a):
            z = lin(h)
            D = a[:, 1] + z * (2 * a[:, 2] + 3 * z * a[:, 3])
            h = a[:, 0] + z * (a[:, 1] + z * (a[:, 2] + z * a[:, 3]))
            if self.dreg:
                S = D.unsqueeze(2) * (lin.weight if S is None else torch.matmul(lin.weight, S))
                pen = pen + S.pow(2).sum()
        return self.out(h), pen / x.shape[0]


class ReLUMLP(nn.Module):
    def __init__(self, d, widths, classes):
        super().__init__()
        layers, n_prev = [], d
        for n in widths:
            layers += [nn.Linear(n_prev, n), nn.ReLU()]
            n_prev = n
        layers.append(nn.Linear(n_prev, classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x), x.new_zeros(())


def worker(rank, world, model_name, steps, port, q):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(1)  # same init on every rank (DDP also broadcasts it)
    if model_name == "cr":
        model, lam = CR(D, WIDTHS, CLASSES, True), LAMBDA
    else:
        model, lam = ReLUMLP(D, WIDTHS, CLASSES), 0.0
    ddp = DDP(model)
    opt = torch.optim.AdamW(ddp.parameters(), lr=1e-3, weight_decay=0.0)
    b = GLOBAL_B // world
    g = torch.Generator().manual_seed(100 + rank)
    n_batches = 4
    xs = torch.randn(n_batches, b, D, generator=g)
    ys = torch.randint(0, CLASSES, (n_batches, b), generator=g)

    def step(i):
        x, y = xs[i % n_batches], ys[i % n_batches]
        opt.zero_grad(set_to_none=True)
        logits, pen = ddp(x)
        loss = Fn.cross_entropy(logits, y) + lam * pen
        loss.backward()
        opt.step()
        return loss.item()

    for i in range(2):
        step(i)
    dist.barrier()
    t0 = time.perf_counter()
    for i in range(steps):
        loss = step(i)
    dist.barrier()
    dt = time.perf_counter() - t0
    if rank == 0:
        q.put({"dt": dt, "loss": loss})
    dist.destroy_process_group()


def run(model_name, world, steps):
    ctx = mp.get_context("spawn")
    q = ctx.SimpleQueue()
    port = 29500 + (os.getpid() % 1000) + 7 * world
    mp.start_processes(worker, args=(world, model_name, steps, port, q), nprocs=world,
                       join=True, start_method="spawn")
    r = q.get()
    return {"model": model_name, "procs": world, "threads_per_proc": 1, "global_batch": GLOBAL_B,
            "steps": steps, "seconds": round(r["dt"], 4),
            "samples_per_s": round(steps * GLOBAL_B / r["dt"], 2),
            "lambda": LAMBDA if model_name == "cr" else 0.0, "backend": "gloo",
            "torch": torch.__version__}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="cr,relu")
    ap.add_argument("--procs", default="1,2")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    for m in a.model.split(","):
        if m not in ("cr", "relu"):
            ap.error(f"unknown model {m}")
        for w in (int(s) for s in a.procs.split(",")):
            r = run(m, w, a.steps)
            if a.json:
                print(json.dumps(r), flush=True)
            else:
                print(f"{m:5s} {w} proc(s): {r['samples_per_s']:10.1f} samples/s "
                      f"({r['steps']} steps in {r['seconds']:.2f} s)", flush=True)


if __name__ == "__main__":
    main()
