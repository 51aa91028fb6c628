"""Benchmarks that print their figures: `python -m textrnn.bench COMMAND ...`.

    python -m textrnn.bench tokenizers --corpus ../shared/data/tinyshakespeare.txt --budget 120
    python -m textrnn.bench train --corpus ../shared/data/tinyshakespeare.txt [--nproc 2]
    python -m textrnn.bench comm [--nproc 2]              (data-parallel cost model)
    python -m textrnn.bench generate [--checkpoints checkpoints]
    python -m textrnn.bench app [--concurrent 16,48,200]     (see loadtest.py)
    python -m textrnn.bench data [--size 1000]              (see prepbench.py)

`tokenizers` trains a char, a byte and BPE models of a few vocabulary sizes for the same
training time on the benchmark protocol (first 90% of the text to train, the last 10% read as
one stream to validate), every other setting at its default, one after another, and prints
validation nats and bits per character beside training throughput. Run it on an otherwise idle
machine: the runs share its cores with nothing else.

`generate` times sampling for each shipped checkpoint and for random 2x256 GRU and vanilla RNN and
2x512 and 3x512 LSTM models: the naive baseline (`nn.LSTM` called once per character, batch 1), the
plain path textrnn falls back to without its kernel (oneDNN off, the state carried, one PyTorch
forward per token: the best plain-PyTorch step, so "over plain" says what the kernel itself adds),
textrnn's `LM.generate` at batch 1 and `LM.samples` with 64 streams. Beside them it prints what the
hardware allows, measured in the same run: the rate at which batch 1 reads the weights (and the
rate `torch.sum` reads as many bytes), the share of the fp32 matmul rate that 64 streams reach
(FLOPs from the model's shapes), and the time and memory the kernel's weight packing costs.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from . import checkpoint
from .config import TrainConfig
from .model import ModelConfig
from .train import train


def bench_tokenizers(corpus: str, budget: float, vocab_sizes: list[int], seed: int) -> list[dict]:
    runs = [("char", None), ("byte", None), *[("bpe", v) for v in vocab_sizes]]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, vocab in runs:
            out = Path(tmp) / f"{kind}{vocab or ''}"
            # one fixed model for every tokenizer, so that only the tokens differ
            cfg = TrainConfig(corpus=corpus, out=str(out), tokenizer=kind, vocab_size=vocab,
                              time_budget=budget, seed=seed, lr=1e-2, batch_size=64, seq_len=50,
                              model=ModelConfig(hidden=256, layers=2, dropout=0.0))
            train(cfg, log=lambda m: None, progress=False)
            summary = checkpoint.read_config(out)["training"]
            val = [m for m in checkpoint.read_metrics(out) if "val_loss" in m][-1]
            rows.append({
                "tokenizer": kind, "vocab": summary["vocab_size"],
                "chars_per_token": summary["chars_per_token"], "steps": summary["steps"],
                "chars_per_s": summary["chars_seen"] / summary["train_time_s"],
                "val_nats_per_char": val["val_loss"], "val_bpc": val["val_bpc"],
                "val_nats_per_token": val["val_nats_per_token"],
            })
            print(_row(rows[-1]), flush=True)
    return rows


def _median_time(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def read_bandwidth(n_bytes: int) -> float:
    """Bytes/s at which this machine reads a buffer of `n_bytes` that stays in cache: the rate
    a batch-1 step, which reads every weight once, cannot beat."""
    buf = torch.ones(max(n_bytes // 4, 1))
    buf.sum()
    return 50 * n_bytes / _median_time(lambda: [buf.sum() for _ in range(50)], 5)


def matmul_rate() -> float:
    """fp32 FLOP/s of a 1024x1024 matrix product, measured now."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    return 2 * 1024**3 / (_median_time(lambda: [a @ b for _ in range(10)], 3) / 10)


def _naive_per_step(model, n: int) -> None:
    """What a first version does: nn.LSTM on one character at a time, full softmax, batch 1."""
    g = torch.Generator().manual_seed(0)
    idx, state = torch.tensor([[1]]), None
    with torch.inference_mode():
        for _ in range(n):
            logits, _, state = model(idx, state=state)
            probs = torch.softmax(logits[0, -1] / 0.8, -1)
            idx = torch.multinomial(probs, 1, generator=g)[None]


def _matmul_weights(model) -> int:
    """Multiply-adds one token costs in a forward pass: every weight matrix of the recurrent
    layers and the head (the embedding is a lookup)."""
    matrices = [p for n, p in model.rnn.named_parameters() if n.startswith("weight")]
    return sum(p.numel() for p in matrices) + model.head.weight.numel()


def _step_cost(model) -> tuple[int, int]:
    """(bytes of weights read, FLOPs) per step of one stream, from the model's shapes. Layer 0's
    input weights are left out of the bytes: the kernel reads a table row instead."""
    weights = _matmul_weights(model)
    return 4 * (weights - model.rnn.weight_ih_l0.numel()), 2 * weights


GENERATE_HEADER = (
    "| model | naive `nn.LSTM` per step, batch 1 | plain path (oneDNN off), batch 1 | textrnn, "
    "batch 1 | over naive | over plain | batch 1 reads the weights at (share of `torch.sum`'s "
    "rate) | textrnn, 64 streams | 64 streams' GFLOP/s (share of torch's matmul rate) | "
    "packing: time, memory |\n"
    "|---|---|---|---|---|---|---|---|---|---|")


def _plain_path(lm, n: int) -> None:
    """The best plain-PyTorch step there is, the kernel's own fallback: textrnn's generation
    with the kernel turned off (oneDNN off, state carried, one forward per token), batch 1."""
    from .sample import generate
    tok = lm.tokenizer
    steps = generate(lm.model, tok.encode("A"), n, generator=torch.Generator().manual_seed(0),
                     fast=False, temperature=0.8, guard=tok.utf8_guard(),
                     banned=[] if tok.unk_id is None else [tok.unk_id])
    for _ in steps:
        pass


def bench_generate(names_and_lms, n1: int = 2000, n64: int = 200, n_naive: int = 300
                   ) -> list[dict]:
    """Time each model's generation four ways and print a table row per model. Every rate is
    in characters per second (a BPE step writes `chars_per_token` of them)."""
    from . import fast
    flops = matmul_rate()
    print(f"machine: {flops / 1e9:.0f} GFLOP/s fp32 matmul (1024x1024), measured now\n")
    print(GENERATE_HEADER, flush=True)
    rows = []
    for name, lm in names_and_lms:
        model = lm.model
        byte_cost, flop_cost = _step_cost(model)
        cpt = lm.config.get("training", {}).get("chars_per_token", 1.0)  # BPE: >1 char a step
        pack_s = _median_time(lambda: fast.Weights(model))
        extra = fast.Weights(model).nbytes
        naive = n_naive * cpt / _median_time(lambda: _naive_per_step(model, n_naive))
        plain = n_naive * cpt / _median_time(lambda: _plain_path(lm, n_naive))
        one = n1 / _median_time(lambda: lm.generate("A", n1, seed=0), 5)
        many = 64 * n64 / _median_time(lambda: lm.samples("A", n64, num_samples=64, seed=0))
        read, achieved = one / cpt * byte_cost, many / cpt * flop_cost
        row = {"model": name, "naive": naive, "plain": plain, "batch1": one,
               "ratio": one / naive, "over_plain": one / plain,
               "read_GBps": read / 1e9, "read_share": read / read_bandwidth(byte_cost),
               "batch64": many, "GFLOPs": achieved / 1e9, "flop_share": achieved / flops,
               "pack_ms": pack_s * 1e3, "extra_MB": extra / 1e6}
        rows.append(row)
        print(f"| {name} | {naive:,.0f} | {plain:,.0f} | {one:,.0f} | {one / naive:.1f}x | "
              f"{one / plain:.1f}x | "
              f"{row['read_GBps']:.0f} GB/s ({row['read_share']:.0%}) | {many:,.0f} | "
              f"{row['GFLOPs']:.0f} ({row['flop_share']:.0%}) | "
              f"{row['pack_ms']:.1f} ms, {row['extra_MB']:.1f} MB |", flush=True)
    return rows


LOAD_HEADER = ("| model | threads | idle, s | under load, s | load / idle | load / idle of "
               "all threads |\n|---|---|---|---|---|---|")


def _hogs() -> list:
    """One busy process per core this process may use, at normal priority: other work on the
    machine, as on a shared Space."""
    import subprocess
    import sys
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def bench_under_load(names_and_lms, chars: int = 3000, repeats: int = 9) -> list[dict]:
    """Batch-1 generation of `chars` characters, idle and with a hog on every core, for the
    kernel's thread choices: all intra-op threads, one, and the adaptive `fast.Team`. Medians
    of `repeats`; the idle figure of all threads is the baseline."""
    from . import fast
    most = torch.get_num_threads()
    print(LOAD_HEADER, flush=True)
    rows = []
    for name, lm in names_and_lms:
        lm.generate("A", 200, seed=0)  # the kernel built and the weights packed
        times = {}
        for load in ("idle", "load"):
            hogs = _hogs() if load == "load" else []
            try:
                time.sleep(0.5 if hogs else 0)
                for team in (most, 1, None):
                    fast.team_size = team
                    lm.generate("A", chars, seed=0)  # warm: a Team learns its costs
                    ts = []
                    for i in range(repeats):
                        t = time.perf_counter()
                        lm.generate("A", chars, seed=i)
                        ts.append(time.perf_counter() - t)
                    times[load, team] = (statistics.median(ts), max(ts))
            finally:
                fast.team_size = None
                for h in hogs:
                    h.kill()
                    h.wait()
        base = times["idle", most][0]
        for team in (most, 1, None):
            (idle, _), (loaded, worst) = times["idle", team], times["load", team]
            label = "adaptive" if team is None else str(team)
            rows.append({"model": name, "threads": label, "idle_s": idle, "load_s": loaded,
                         "load_max_s": worst, "ratio": loaded / idle, "over_base": loaded / base})
            print(f"| {name} | {label} | {idle:.3f} | {loaded:.3f} (max {worst:.2f}) | "
                  f"{loaded / idle:.2f}x | {loaded / base:.2f}x |", flush=True)
    return rows


def protocol_split(corpus: str, folder: Path) -> tuple[Path, Path]:
    """The benchmark protocol's files: the first 90% of the text to train, the last 10% to
    validate (by characters, as nanoGPT's shakespeare_char splits it)."""
    from .data import read_corpus
    text = read_corpus(corpus)
    cut = int(len(text) * 0.9)
    train_path, val_path = folder / "train.txt", folder / "val.txt"
    train_path.write_text(text[:cut], encoding="utf-8")
    val_path.write_text(text[cut:], encoding="utf-8")
    return train_path, val_path


def train_flops_per_token(model) -> int:
    """FLOPs one training token costs: each weight matrix's multiply-adds, twice forward (a
    multiply and an add) and four times backward (the gradients of inputs and of weights)."""
    return 6 * _matmul_weights(model)


TRAIN_HEADER = ("| run | processes x threads | model | dropout | weight decay | batch x seq | lr "
                "| precision | steps | val nats/char | val bits/char | training chars/s | "
                "GFLOP/s (share of fp32 matmul rate) |\n" + "|---" * 13 + "|")


def bench_train(corpus: str, budget: float, runs: int = 1, flags: list[str] = (),
                nproc: int = 1) -> list[dict]:
    """`textrnn train train.txt --val-file val.txt --time-budget BUDGET [flags]` on the
    protocol split, `runs` times; prints a row per run and the medians. With `nproc` > 1, each
    run is followed by the same run under `torchrun` on `nproc` processes of one thread each,
    with the model, batch and lr the first one chose (rank 0 would time models on one thread)."""
    from .cli import train_config
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        train_path, val_path = protocol_split(corpus, Path(tmp))
        for i in range(runs):
            flops = matmul_rate()
            seed = [] if "--seed" in flags else ["--seed", str(1337 + i)]  # a new draw per run
            argv = [str(train_path), "--val-file", str(val_path), "--time-budget",
                    f"{budget:g}", "--no-progress", *seed, *flags]
            said = []
            out = train(train_config([*argv, "--out", str(Path(tmp) / f"run{i}")]),
                        log=said.append, progress=False)
            rows.append(_train_row(out, i + 1, flops, said, f"1 x {torch.get_num_threads()}"))
            if nproc > 1:
                out = Path(tmp) / f"run{i}-ddp"
                _torchrun(nproc, [*argv, *_chosen(rows[-1]), "--out", str(out)])
                rows.append(_train_row(out, i + 1, flops, [], f"{nproc} x 1"))
    return rows


def _chosen(row: dict) -> list[str]:
    """Flags that fix what a run's adaptive defaults chose, so another run trains the same."""
    return ["--hidden", str(row["hidden"]), "--layers", str(row["layers"]), "--dropout",
            f"{row['dropout']:g}", "--weight-decay", f"{row['weight_decay']:g}", "--batch-size",
            str(row["batch"]), "--seq-len", str(row["seq_len"]), "--lr", f"{row['lr']:g}",
            "--precision", row["precision"]]


def _torchrun(nproc: int, argv: list[str]) -> None:
    """`torchrun --standalone --nproc-per-node N -m textrnn train ARGV`, one thread a process."""
    import os
    import subprocess
    import sys
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           str(nproc), "-m", "textrnn", "train", *argv]
    done = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True)
    if done.returncode:
        raise RuntimeError(f"torchrun failed ({done.returncode}): {done.stderr[-2000:]}")


def _train_row(out: Path, run: int, flops: float, said: list[str], layout: str) -> dict:
    """A finished run's figures, as a table row (printed)."""
    model, _, config = checkpoint.load(out / "last")
    summary = config["training"]
    vals = [m for m in checkpoint.read_metrics(out) if "val_loss" in m]
    val = vals[-1]  # at the end of the budget
    tokens_per_s = summary["tokens_seen"] / summary["train_time_s"]
    achieved = train_flops_per_token(model) * tokens_per_s
    m, tc = model.config, summary["train_config"]
    row = {"run": run, "layout": layout, "model": f"{m.layers}x{m.hidden} {m.cell.upper()}",
           "hidden": m.hidden, "layers": m.layers,
           "dropout": m.dropout, "weight_decay": tc["weight_decay"],
           "precision": summary["precision"],
           "batch": tc["batch_size"], "seq_len": tc["seq_len"], "lr": tc["lr"],
           "steps": summary["steps"], "val_nats_per_char": val["val_loss"],
           "val_bpc": val["val_bpc"],
           "chars_per_s": summary["chars_seen"] / summary["train_time_s"],
           "GFLOPs": achieved / 1e9, "matmul_GFLOPs": flops / 1e9,
           "chose": next((m for m in said if m.startswith("chose")), ""),
           "val_curve": [(m["step"], m["val_loss"]) for m in vals]}
    print(f"| {run} | {layout} | {row['model']} | {row['dropout']:g} | "
          f"{row['weight_decay']:g} | {row['batch']} x "
          f"{row['seq_len']} | {row['lr']:g} | {row['precision']} | {row['steps']:,} | "
          f"{row['val_nats_per_char']:.4f} | "
          f"{row['val_bpc']:.4f} | {row['chars_per_s']:,.0f} | {row['GFLOPs']:.0f} "
          f"({row['GFLOPs'] / row['matmul_GFLOPs']:.0%} of {row['matmul_GFLOPs']:.0f}) |",
          flush=True)
    return row


def bench_allreduce(sizes: list[int], nproc: int = 2, repeats: int = 10) -> list[dict]:
    """Median seconds of a gloo all-reduce of n fp32 numbers across `nproc` local processes,
    for each n in `sizes` (DDP all-reduces every gradient, 4 bytes a parameter, each step)."""
    import socket
    import torch.multiprocessing as mp
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
    from .config import pick_precision, train_speed
    from .model import num_params
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
    print("\non paper (assumed link speeds, see bench.PAPER_LINKS):\n")
    print("| model | link | ring all-reduce a step | step compute for 90% efficiency (no "
          "overlap) |\n|---|---|---|---|")
    for name, r in zip(models, reduce):
        for link, bw in PAPER_LINKS.items():
            t = 2 * 7 / 8 * 4 * r["params"] / bw
            print(f"| {name} | {link} | {1e3 * t:.2f} ms | >= {9e3 * t:.1f} ms |")


def _allreduce_worker(rank, nproc, port, sizes, repeats, queue) -> None:
    import os
    import torch.distributed as dist
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


HEADER = ("| tokenizer | vocabulary | chars/token | steps | training chars/s | val nats/char "
          "| val bits/char | val nats/token |\n|---|---|---|---|---|---|---|---|")


def _row(r: dict) -> str:
    return (f"| {r['tokenizer']} | {r['vocab']:,} | {r['chars_per_token']:.2f} | {r['steps']:,} "
            f"| {r['chars_per_s']:,.0f} | {r['val_nats_per_char']:.4f} | {r['val_bpc']:.4f} "
            f"| {r['val_nats_per_token']:.4f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m textrnn.bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("tokenizers", help="char vs byte vs BPE at equal training time")
    p.add_argument("--corpus", required=True, help="the benchmark text, e.g. tinyshakespeare.txt")
    p.add_argument("--budget", type=float, default=120, help="seconds of training per run (120)")
    p.add_argument("--vocab-sizes", default="512,1024,4096", help="BPE sizes (512,1024,4096)")
    p.add_argument("--seed", type=int, default=1337)
    p = sub.add_parser("train", help="the training protocol: val loss after a time budget")
    p.add_argument("--corpus", required=True, help="the benchmark text, e.g. tinyshakespeare.txt")
    p.add_argument("--budget", type=float, default=300, help="seconds of training per run (300)")
    p.add_argument("--runs", type=int, default=1, help="runs, for a median (1)")
    p.add_argument("--nproc", type=int, default=1, help="also run each on this many processes "
                   "of one thread under torchrun, with what the first run chose (1: no)")
    p.add_argument("flags", nargs=argparse.REMAINDER,
                   help="after --: more `textrnn train` flags, for sweeps")
    p = sub.add_parser("comm", help="data-parallel training's cost model: all-reduce vs compute")
    p.add_argument("--nproc", type=int, default=2, help="local processes to all-reduce over (2)")
    p = sub.add_parser("generate", help="sampling speed against the naive per-step baseline")
    p.add_argument("--checkpoints", default="checkpoints", help="folder of checkpoints to time")
    p.add_argument("--chars", type=int, default=2000,
                   help="characters per batch-1 run (2000)")
    p.add_argument("--under-load", action="store_true", help="instead, batch 1 on the shipped "
                   "checkpoints with a CPU hog on every core, against idle, per thread choice")
    p = sub.add_parser("data", help="preparing a big corpus: MB/s, peak RSS, first step")
    p.add_argument("--size", type=float, default=1000, help="corpus size in MB (1000)")
    p.add_argument("--sources", default="corpora", help="folder of .txt files to build it from")
    p.add_argument("--before", metavar="DIR", help="a checkout of older textrnn code to time "
                   "beside this one")
    p.add_argument("--before-size", type=float, default=50, help="MB for that comparison (50)")
    p.add_argument("--tokenizers", default="char,byte,bpe")
    p = sub.add_parser("app", help="the web app under a flood of concurrent requests")
    p.add_argument("--app", default="app.py", help="the app script to start (app.py)")
    p.add_argument("--checkpoints", help="its --checkpoints (default: the app's own)")
    p.add_argument("--queue-size", help="its --queue-size (default: the app's own)")
    p.add_argument("--concurrent", default="16,48,200", help="requests at once, per level "
                   "(16,48,200)")
    p.add_argument("--length", type=int, default=300, help="characters per request (300)")
    p.add_argument("--model", default="shakespeare-char-lstm", help="checkpoint to generate "
                   "from (shakespeare-char-lstm)")
    args = parser.parse_args(argv)
    if args.command == "data":
        from .prepbench import bench_data
        bench_data(args.size, sorted(Path(args.sources).glob("*.txt")), args.before,
                   args.before_size, args.tokenizers.split(","))
        return 0
    if args.command == "app":
        from .loadtest import bench_app
        flags = [f"--{k.replace('_', '-')}={getattr(args, k)}"
                 for k in ("checkpoints", "queue_size") if getattr(args, k) is not None]
        bench_app(args.app, [int(n) for n in args.concurrent.split(",") if n], args.length,
                  args.model, flags)
        return 0
    if args.command == "generate":
        return _main_generate(args)
    if args.command == "comm":
        bench_comm(args.nproc)
        return 0
    if args.command == "train":
        return _main_train(args)
    sizes = [int(v) for v in args.vocab_sizes.split(",") if v]
    print(f"corpus {args.corpus}, {args.budget:g} s of training per run, defaults otherwise\n")
    print(HEADER, flush=True)
    rows = bench_tokenizers(args.corpus, args.budget, sizes, args.seed)
    best = min(rows, key=lambda r: r["val_bpc"])
    print(f"\nbest: {best['tokenizer']} {best['vocab']:,} at {best['val_bpc']:.4f} bits/char "
          f"({best['val_nats_per_char']:.4f} nats/char, {math.exp(best['val_nats_per_char']):.3f} "
          "perplexity per char)")
    return 0


def _main_train(args) -> int:
    flags = args.flags[1:] if args.flags[:1] == ["--"] else args.flags
    print(f"textrnn train train.txt --val-file val.txt --time-budget {args.budget:g} "
          f"{' '.join(flags)}\n(train.txt, val.txt: the first 90% and last 10% of {args.corpus}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads)\n")
    print(TRAIN_HEADER, flush=True)
    rows = bench_train(args.corpus, args.budget, args.runs, flags, args.nproc)
    for r in rows:
        if r["chose"]:
            print(f"\nrun {r['run']}: {r['chose']}", end="")
    for r in rows:  # over- or underfitting shows here: a rise, or a fall still steep at the end
        curve = ", ".join(f"{v:.4f} at {step:,}" for step, v in r["val_curve"])
        print(f"\nrun {r['run']} ({r['layout']}): val nats/char {curve}", end="")
    print()
    med = statistics.median
    for layout in dict.fromkeys(r["layout"] for r in rows):
        rs = [r for r in rows if r["layout"] == layout]
        if len(rs) > 1 or len(rows) > len(rs):
            print(f"\n{layout}, median of {len(rs)}: val "
                  f"{med(r['val_nats_per_char'] for r in rs):.4f} nats/char = "
                  f"{med(r['val_bpc'] for r in rs):.4f} bits/char, "
                  f"{med(r['chars_per_s'] for r in rs):,.0f} chars/s, "
                  f"{med(r['GFLOPs'] / r['matmul_GFLOPs'] for r in rs):.0%} of the matmul rate")
    return 0


def _main_generate(args) -> int:
    from . import fast
    from .lm import LM, load
    from .model import RNNLM
    from .tokenizer import CharTokenizer
    lms = [(p.name, load(p)) for p in sorted(Path(args.checkpoints).iterdir())
           if checkpoint.is_checkpoint(p)]
    if args.under_load:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, generation path: "
              f"{fast.status()}\nbatch 1, {args.chars} characters, median of 9 (max in "
              "brackets); under load: a busy process on every core\n")
        bench_under_load(lms, args.chars)
        return 0
    chars = CharTokenizer([chr(32 + i) for i in range(65)])  # 66 ids with <unk>, as a char model
    for cell, layers, hidden in [("gru", 2, 256), ("rnn_tanh", 2, 256), ("lstm", 2, 512),
                                 ("lstm", 3, 512)]:
        torch.manual_seed(0)
        model = RNNLM(ModelConfig(vocab_size=chars.vocab_size, cell=cell, hidden=hidden,
                                  layers=layers, dropout=0.0)).eval()
        lms.append((f"random {layers}x{hidden} {cell.upper().replace('_', '-')}",
                    LM(model, chars)))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, generation path: "
          f"{fast.status()}\nchars/s: batch 1 over {args.chars} chars (median of 5); 64 streams "
          "over 200 steps, naive over 300 chars (medians of 3)")
    bench_generate(lms, n1=args.chars)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
