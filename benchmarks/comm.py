"""Data-parallel training's cost model: `python -m benchmarks comm [--nproc 2]`.

DDP all-reduces every gradient each step. This measures what that costs here (a gloo all-reduce
across local processes) against one training step's compute here, and works out on paper what
it would cost on 8 GPUs, with assumed link speeds (`PAPER_LINKS`).
"""

from __future__ import annotations

import os
import socket
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from textrnn import ModelConfig
from textrnn.plan import pick_precision, train_speed
from textrnn.model import num_params


def bench_allreduce(sizes: list[int], nproc: int = 2, repeats: int = 10) -> list[dict]:
    """Median seconds of a gloo all-reduce of n fp32 numbers across `nproc` local processes,
    for each n in `sizes` (DDP all-reduces every gradient, 4 bytes a parameter, each step)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    mp.spawn(_allreduce_worker, args=(nproc, port, sizes, repeats, queue), nprocs=nproc)
    seconds = queue.get()
    return [{"params": n, "MB": 4 * n / 1e6, "ms": 1e3 * t} for n, t in zip(sizes, seconds)]


# What one all-reduce of fp32 gradients costs on 8 GPUs, on paper: a ring all-reduce sends and
# receives 2 (N - 1) / N of the bytes through each GPU's link. The bus bandwidths are assumptions
# (NCCL's all_reduce_perf reaches roughly these on 8 GPUs of one NVLink node, and on a 100 Gb/s
# NIC between nodes), not measurements of this project.
PAPER_LINKS = {"8 GPUs, NVLink (~200 GB/s bus bandwidth)": 200e9,
               "8 GPUs over 100 Gb/s Ethernet (~10 GB/s)": 10e9}


def bench_comm(nproc: int = 2) -> None:
    """DDP's cost model with measured inputs: the bytes all-reduced per step (4 per parameter)
    and a gloo all-reduce of that size here, against one training step's compute here; then
    the all-reduce on 8 GPUs on paper, and the step time a GPU would need for 90% efficiency."""
    cpu = torch.device("cpu")
    models = {f"{layers}x{hidden} LSTM": ModelConfig(vocab_size=83, hidden=hidden, layers=layers,
                                                      embed=64, dropout=0.0)
              for layers, hidden in [(2, 384), (3, 1024)]}  # the shipped char model's shape
    params = [num_params(m) for m in models.values()]
    reduce = bench_allreduce(params, nproc)
    precision = pick_precision("auto", cpu)
    print(f"torch {torch.__version__}; gloo all-reduce across {nproc} local processes (median "
          f"of 10); a training step at batch 64 x 50, {precision}, {torch.get_num_threads()} "
          "threads, one process\n")
    print("| model | parameters | all-reduced a step | gloo all-reduce here | step compute here | "
          "all-reduce / compute |\n|---|---|---|---|---|---|")
    for (name, m), r in zip(models.items(), reduce):
        step = 64 * 50 / train_speed(m, 64, 50, cpu, precision)
        print(f"| {name} | {r['params'] / 1e6:.2f}M | {r['MB']:.1f} MB | {r['ms']:.1f} ms | "
              f"{1e3 * step:.0f} ms | {r['ms'] / (1e3 * step):.1%} |", flush=True)
    print("\non paper (assumed link speeds, see benchmarks.comm.PAPER_LINKS):\n")
    print("| model | link | ring all-reduce a step | step compute for 90% efficiency (no "
          "overlap) |\n|---|---|---|---|")
    for name, r in zip(models, reduce):
        for link, bw in PAPER_LINKS.items():
            t = 2 * 7 / 8 * 4 * r["params"] / bw
            print(f"| {name} | {link} | {1e3 * t:.2f} ms | >= {9e3 * t:.1f} ms |")


def _allreduce_worker(rank, nproc, port, sizes, repeats, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=nproc)
    out = []
    for n in sizes:
        t = torch.ones(n)
        dist.all_reduce(t)  # untimed: connections and buffers
        times = []
        for _ in range(repeats):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(t)
            times.append(time.perf_counter() - t0)
        out.append(statistics.median(times))
    if rank == 0:
        queue.put(out)
    dist.barrier()
    dist.destroy_process_group()



def add_parser(sub) -> None:
    p = sub.add_parser("comm", help="data-parallel training's cost model: all-reduce vs compute")
    p.add_argument("--nproc", type=int, default=2, help="local processes to all-reduce over (2)")


def run(args) -> int:
    bench_comm(args.nproc)
    return 0
